//! Currencies of listings and their conversion to roubles.
//!
//! Foreign listings (Japanese auctions, eBay, European sellers) are converted with a [`Rates`]
//! table: the offline defaults of the old system, or a table built from the fawazahmed0
//! currency-api answer (`{"date": "2026-05-01", "rub": {"jpy": 1.74, "usd": 0.0114, …}}`, i.e.
//! units of each currency per rouble). Fetching that answer is the worker's job; a missing,
//! broken or implausible rate falls back to the default and is listed in [`Rates::defaulted`].

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A currency a listing can be priced in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Currency {
    #[serde(rename = "RUB")]
    Rub,
    #[serde(rename = "USD")]
    Usd,
    #[serde(rename = "EUR")]
    Eur,
    #[serde(rename = "JPY")]
    Jpy,
    #[serde(rename = "KRW")]
    Krw,
}

impl Currency {
    /// Every currency other than the rouble.
    pub const FOREIGN: [Currency; 4] = [Self::Jpy, Self::Usd, Self::Eur, Self::Krw];

    /// ISO 4217 code: `RUB`, `USD`, `EUR`, `JPY`, `KRW`.
    pub fn code(self) -> &'static str {
        match self {
            Self::Rub => "RUB",
            Self::Usd => "USD",
            Self::Eur => "EUR",
            Self::Jpy => "JPY",
            Self::Krw => "KRW",
        }
    }

    /// Parses an ISO code (case-insensitive; the old Soviet `RUR` is the rouble too).
    pub fn parse_code(code: &str) -> Option<Self> {
        match code.trim().to_ascii_uppercase().as_str() {
            "RUB" | "RUR" => Some(Self::Rub),
            "USD" => Some(Self::Usd),
            "EUR" => Some(Self::Eur),
            "JPY" => Some(Self::Jpy),
            "KRW" => Some(Self::Krw),
            _ => None,
        }
    }

    /// Roubles per unit when no current rate is known (the old system's defaults).
    pub fn default_rate(self) -> f64 {
        match self {
            Self::Rub => 1.0,
            Self::Jpy => 0.50,
            Self::Eur => 95.0,
            Self::Usd => 88.0,
            Self::Krw => 0.065,
        }
    }

    /// Decimal places a rate of this currency is rounded to (a yen costs about half a rouble, a
    /// won a few kopecks).
    fn rate_decimals(self) -> i32 {
        match self {
            Self::Rub | Self::Eur | Self::Usd => 2,
            Self::Jpy => 3,
            Self::Krw => 4,
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Where a rate table came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RatesSource {
    /// The built-in defaults.
    Offline,
    /// The fawazahmed0 currency-api.
    CurrencyApi,
}

/// Why a currency-api answer could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RatesError {
    #[error("the currency rates are not JSON: {0}")]
    NotJson(String),
    #[error("the currency rates have no `rub` object")]
    NoRubTable,
}

/// Roubles per unit of each foreign currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    pub source: RatesSource,
    /// The date the rates are for, as the source gave it.
    #[serde(default)]
    pub date: Option<String>,
    /// Roubles per unit, by currency.
    pub rub_per_unit: BTreeMap<Currency, f64>,
    /// Currencies whose rate the source lacked or gave implausibly: these use the default.
    #[serde(default)]
    pub defaulted: Vec<Currency>,
}

impl Default for Rates {
    fn default() -> Self {
        Self::offline()
    }
}

/// A fetched rate further than this factor from the default is taken for garbage.
const PLAUSIBLE_FACTOR: f64 = 10.0;

fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

impl Rates {
    /// The built-in defaults: JPY 0.50, EUR 95.0, USD 88.0, KRW 0.065 roubles.
    pub fn offline() -> Self {
        Self {
            source: RatesSource::Offline,
            date: None,
            rub_per_unit: Currency::FOREIGN.into_iter().map(|c| (c, c.default_rate())).collect(),
            defaulted: Vec::new(),
        }
    }

    /// Reads a currency-api answer for the rouble (`…/currencies/rub.json`): `rub.<ccy>` is units of
    /// the currency per rouble, so the rate is its inverse, rounded (JPY to 3 decimals, EUR and USD
    /// to 2, KRW to 4). A currency that is missing, not a positive number, or more than ten times
    /// off the default keeps the default and is listed in [`Rates::defaulted`].
    pub fn from_currency_api(json: &str) -> Result<Self, RatesError> {
        let value: serde_json::Value = serde_json::from_str(json).map_err(|e| RatesError::NotJson(e.to_string()))?;
        let table = value.get("rub").and_then(|r| r.as_object()).ok_or(RatesError::NoRubTable)?;
        let date = value.get("date").and_then(|d| d.as_str()).map(str::to_string);
        let mut rates = Self { source: RatesSource::CurrencyApi, date, ..Self::offline() };
        for currency in Currency::FOREIGN {
            let key = currency.code().to_ascii_lowercase();
            let per_rub = table.get(&key).and_then(serde_json::Value::as_f64);
            let rate =
                per_rub.filter(|v| v.is_finite() && *v > 0.0).map(|v| round_to(1.0 / v, currency.rate_decimals()));
            let default = currency.default_rate();
            match rate {
                Some(r) if r > 0.0 && r <= default * PLAUSIBLE_FACTOR && r >= default / PLAUSIBLE_FACTOR => {
                    rates.rub_per_unit.insert(currency, r);
                }
                _ => rates.defaulted.push(currency),
            }
        }
        Ok(rates)
    }

    /// Roubles per unit of `currency` (1 for the rouble).
    pub fn rate(&self, currency: Currency) -> f64 {
        if currency == Currency::Rub {
            return 1.0;
        }
        self.rub_per_unit.get(&currency).copied().unwrap_or_else(|| currency.default_rate())
    }

    /// `amount` of `currency` in whole roubles (rounded), or `None` for a negative or non-finite
    /// amount.
    pub fn to_rub(&self, amount: f64, currency: Currency) -> Option<u64> {
        let rub = (amount * self.rate(currency)).round();
        (rub.is_finite() && rub >= 0.0 && rub < u64::MAX as f64).then_some(rub as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_defaults_are_the_old_systems() {
        let r = Rates::offline();
        assert_eq!(r.rate(Currency::Jpy), 0.50);
        assert_eq!(r.rate(Currency::Eur), 95.0);
        assert_eq!(r.rate(Currency::Usd), 88.0);
        assert_eq!(r.rate(Currency::Krw), 0.065);
        assert_eq!(r.rate(Currency::Rub), 1.0);
        assert_eq!(r.to_rub(170_000.0, Currency::Jpy), Some(85_000));
        assert_eq!(r.to_rub(1200.0, Currency::Usd), Some(105_600));
        assert_eq!(r.to_rub(-1.0, Currency::Usd), None);
        assert_eq!(r.to_rub(f64::NAN, Currency::Rub), None);
    }

    #[test]
    fn currency_api_rates_are_inverted_and_rounded() {
        let json = r#"{"date":"2026-05-01","rub":{"jpy":1.7391,"usd":0.01234,"eur":0.0105,"krw":16.1,"gbp":0.0098}}"#;
        let r = Rates::from_currency_api(json).unwrap();
        assert_eq!(r.source, RatesSource::CurrencyApi);
        assert_eq!(r.date.as_deref(), Some("2026-05-01"));
        assert_eq!(r.rate(Currency::Jpy), 0.575);
        assert_eq!(r.rate(Currency::Usd), 81.04);
        assert_eq!(r.rate(Currency::Eur), 95.24);
        assert_eq!(r.rate(Currency::Krw), 0.0621);
        assert!(r.defaulted.is_empty());
    }

    #[test]
    fn missing_or_implausible_rates_keep_the_default() {
        let json = r#"{"date":"2026-05-01","rub":{"jpy":0,"usd":"x","eur":0.00001}}"#;
        let r = Rates::from_currency_api(json).unwrap();
        assert_eq!(r.rate(Currency::Jpy), 0.50);
        assert_eq!(r.rate(Currency::Usd), 88.0);
        assert_eq!(r.rate(Currency::Eur), 95.0, "100 000 roubles per euro is garbage");
        assert_eq!(r.rate(Currency::Krw), 0.065);
        assert_eq!(r.defaulted, [Currency::Jpy, Currency::Usd, Currency::Eur, Currency::Krw]);
    }

    #[test]
    fn unreadable_answers_are_errors() {
        assert!(matches!(Rates::from_currency_api("<html>"), Err(RatesError::NotJson(_))));
        assert_eq!(Rates::from_currency_api(r#"{"date":"x","usd":{}}"#), Err(RatesError::NoRubTable));
    }

    #[test]
    fn rates_round_trip_through_json() {
        let r = Rates::from_currency_api(r#"{"date":"d","rub":{"jpy":2}}"#).unwrap();
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains(r#""JPY":0.5"#), "{json}");
        assert_eq!(serde_json::from_str::<Rates>(&json).unwrap(), r);
        assert_eq!(Currency::parse_code(" rur "), Some(Currency::Rub));
        assert_eq!(Currency::parse_code("GBP"), None);
    }
}
