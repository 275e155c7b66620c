//! A tenant's price settings: margin, rounding, mileage tiers, whether the market range is shown,
//! and a note added to price replies. [`PriceSettings::sale_price`] is the one place a market price
//! becomes the price offered: every reply path goes through it (the old system applied the margin in
//! one mode and quoted raw market prices in the other).

use serde::{Deserialize, Serialize};

use super::parse::MAX_MILEAGE_KM;
use crate::tenant::SettingsError;

/// Roundings a tenant can choose.
pub const ROUNDINGS: [u32; 4] = [1, 10, 100, 1000];
/// Lowest and highest margin, percent.
pub const MARGIN_RANGE: (f64, f64) = (-50.0, 50.0);
/// Longest price note (characters).
pub const MAX_PRICE_NOTE: usize = 200;

/// How a tenant turns market prices into offers. JSON field names are snake_case; the old
/// camelCase names (`marginPct`, `roundTo`, `priceNote`, `showMarketPrice`, `mileageLow`,
/// `mileageMid`) are accepted too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PriceSettings {
    /// Added to the market price, percent, in `-50..=50` (negative: below the market).
    #[serde(alias = "marginPct")]
    pub margin_pct: f64,
    /// Offers are rounded to this many roubles: 1, 10, 100 or 1000.
    #[serde(alias = "roundTo")]
    pub round_to: u32,
    /// Listings up to this mileage (km) are the best-condition tier.
    #[serde(alias = "mileageLow")]
    pub mileage_low: u32,
    /// Listings above `mileage_low` up to this are the middle tier; above it (or unknown) the
    /// budget tier.
    #[serde(alias = "mileageMid")]
    pub mileage_mid: u32,
    /// Add the market range (before the margin) to price replies.
    #[serde(alias = "showMarketPrice")]
    pub show_market_range: bool,
    /// A line added to price replies (warranty, delivery …); empty for none.
    #[serde(alias = "priceNote")]
    pub price_note: String,
}

impl Default for PriceSettings {
    /// The old system's defaults: margin −25 %, rounding to 100 ₽, tiers 60 000 / 90 000 km.
    fn default() -> Self {
        Self {
            margin_pct: -25.0,
            round_to: 100,
            mileage_low: 60_000,
            mileage_mid: 90_000,
            show_market_range: false,
            price_note: String::new(),
        }
    }
}

impl PriceSettings {
    /// Checks the rules the API enforces on every update; the first broken rule is reported.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let err = |field, message: String| Err(SettingsError { field, message });
        let (lo, hi) = MARGIN_RANGE;
        if !self.margin_pct.is_finite() || !(lo..=hi).contains(&self.margin_pct) {
            return err("margin_pct", format!("must be between {lo} and {hi} percent"));
        }
        if !ROUNDINGS.contains(&self.round_to) {
            return err("round_to", "must be 1, 10, 100 or 1000".to_string());
        }
        if self.mileage_low == 0 || self.mileage_low >= self.mileage_mid {
            return err("mileage_low", "must be above 0 and below mileage_mid".to_string());
        }
        if self.mileage_mid > MAX_MILEAGE_KM {
            return err("mileage_mid", format!("must be at most {MAX_MILEAGE_KM} km"));
        }
        if self.price_note.chars().count() > MAX_PRICE_NOTE {
            return err("price_note", format!("must be at most {MAX_PRICE_NOTE} characters"));
        }
        Ok(())
    }

    /// The price offered for a market price: `round(price × (1 + margin/100) / round_to) × round_to`,
    /// never below one rounding step (a real price never becomes 0 ₽), 0 only for 0.
    pub fn sale_price(&self, market_rub: u64) -> u64 {
        if market_rub == 0 {
            return 0;
        }
        let step = self.round_to.max(1);
        let raw = market_rub as f64 * (1.0 + self.margin_pct / 100.0) / f64::from(step);
        let rounded = if raw.is_finite() && raw > 0.0 { raw.round() as u64 } else { 0 };
        rounded.max(1).saturating_mul(u64::from(step))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_old_systems_and_valid() {
        let s = PriceSettings::default();
        assert_eq!((s.margin_pct, s.round_to, s.mileage_low, s.mileage_mid), (-25.0, 100, 60_000, 90_000));
        assert!(!s.show_market_range);
        assert!(s.validate().is_ok());
    }

    #[test]
    fn margin_and_rounding() {
        let s = PriceSettings::default();
        // 85 000 × 0.75 = 63 750 → 637.5 hundreds → 63 800.
        assert_eq!(s.sale_price(85_000), 63_800);
        assert_eq!(s.sale_price(1_200), 900);
        let s = PriceSettings { margin_pct: 10.0, round_to: 1000, ..Default::default() };
        assert_eq!(s.sale_price(55_000), 61_000, "60 500 rounds half up");
        let s = PriceSettings { margin_pct: 0.0, round_to: 1, ..Default::default() };
        assert_eq!(s.sale_price(85_123), 85_123);
        let s = PriceSettings { margin_pct: -50.0, round_to: 1000, ..Default::default() };
        assert_eq!(s.sale_price(1_000), 1_000, "500 → one step, never 0");
        assert_eq!(s.sale_price(0), 0);
    }

    #[test]
    fn bad_settings_are_refused_with_the_field() {
        let field = |s: PriceSettings| s.validate().unwrap_err().field;
        assert_eq!(field(PriceSettings { margin_pct: 50.5, ..Default::default() }), "margin_pct");
        assert_eq!(field(PriceSettings { margin_pct: f64::NAN, ..Default::default() }), "margin_pct");
        assert_eq!(field(PriceSettings { round_to: 50, ..Default::default() }), "round_to");
        assert_eq!(field(PriceSettings { mileage_low: 90_000, ..Default::default() }), "mileage_low");
        assert_eq!(field(PriceSettings { mileage_mid: 600_000, ..Default::default() }), "mileage_mid");
        assert_eq!(field(PriceSettings { price_note: "x".repeat(201), ..Default::default() }), "price_note");
        assert!(PriceSettings { margin_pct: -50.0, round_to: 1, ..Default::default() }.validate().is_ok());
    }

    #[test]
    fn old_field_names_are_accepted() {
        let s: PriceSettings = serde_json::from_str(
            r#"{"marginPct":-10,"roundTo":1000,"priceNote":"Гарантия 30 дней","showMarketPrice":true}"#,
        )
        .unwrap();
        assert_eq!((s.margin_pct, s.round_to, s.show_market_range), (-10.0, 1000, true));
        assert_eq!(s.price_note, "Гарантия 30 дней");
        assert_eq!(s.mileage_low, 60_000, "missing fields keep the default");
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["margin_pct"], -10.0);
    }
}
