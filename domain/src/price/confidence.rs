//! How much a price can be trusted: sample size, distinct sites, spread and market, with the
//! old system's exact weights.
//!
//! | signal | weight |
//! |---|---|
//! | listings | ≥ 5: 0.35, ≥ 3: 0.25, 2: 0.15, else 0 |
//! | distinct sites | ≥ 3: 0.25, 2: 0.18, 1: 0.10, else 0 |
//! | spread max/min (1 for fewer than two prices) | ≤ 1.8: 0.25, ≤ 2.5: 0.18, else 0.05 |
//! | market | Russian only 0.10, mixed 0.05, foreign only (or none) 0 |
//!
//! An AI estimate scores 0.6 × that (it has no listings, so at most 0.15: always low). The sum is
//! clamped to `0..=1` and rounded to six decimals; ≥ 0.7 is `high`, ≥ 0.4 `medium`, else `low`. A
//! not-found result is 0 and `low`; a price from the tenant's own price list is certain (1, `high`).

use serde::{Deserialize, Serialize};

use super::listing::{Listing, Market};

/// Confidence band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfidenceLevel {
    High,
    Medium,
    Low,
}

impl ConfidenceLevel {
    /// `high`, `medium` or `low`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::High => "high",
            Self::Medium => "medium",
            Self::Low => "low",
        }
    }

    /// The band of `score`.
    pub fn of(score: f64) -> Self {
        if score >= 0.7 {
            Self::High
        } else if score >= 0.4 {
            Self::Medium
        } else {
            Self::Low
        }
    }
}

/// What the score was computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfidenceSignals {
    pub sample_size: u32,
    pub unique_domains: u32,
    /// Highest price over lowest (1 for fewer than two prices).
    pub spread_ratio: f64,
    pub ru_count: u32,
    pub intl_count: u32,
}

/// A confidence score with its band and signals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceConfidence {
    pub score: f64,
    pub level: ConfidenceLevel,
    pub signals: ConfidenceSignals,
}

/// What a price rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfidenceBasis {
    /// Market listings.
    Market,
    /// An AI web-search estimate.
    AiEstimate,
    /// The tenant's own price list.
    OwnPriceList,
    /// Nothing was found.
    NotFound,
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The confidence of a price resting on `listings` (see the module doc for the weights).
pub fn compute_price_confidence(listings: &[Listing], basis: ConfidenceBasis) -> PriceConfidence {
    let ru = listings.iter().filter(|l| l.market == Market::Ru).count();
    let intl = listings.len() - ru;
    let mut domains: Vec<&str> = listings.iter().map(|l| l.site.as_str()).collect();
    domains.sort_unstable();
    domains.dedup();
    let min = listings.iter().map(|l| l.price).min().unwrap_or(0);
    let max = listings.iter().map(|l| l.price).max().unwrap_or(0);
    let spread_ratio = if listings.len() < 2 || min == 0 { 1.0 } else { max as f64 / min as f64 };
    let signals = ConfidenceSignals {
        sample_size: count(listings.len()),
        unique_domains: count(domains.len()),
        spread_ratio,
        ru_count: count(ru),
        intl_count: count(intl),
    };
    let score = match basis {
        ConfidenceBasis::NotFound => 0.0,
        ConfidenceBasis::OwnPriceList => 1.0,
        ConfidenceBasis::Market | ConfidenceBasis::AiEstimate => {
            let sample = match listings.len() {
                n if n >= 5 => 0.35,
                n if n >= 3 => 0.25,
                2 => 0.15,
                _ => 0.0,
            };
            let sites = match domains.len() {
                n if n >= 3 => 0.25,
                2 => 0.18,
                1 => 0.10,
                _ => 0.0,
            };
            let spread = if spread_ratio <= 1.8 {
                0.25
            } else if spread_ratio <= 2.5 {
                0.18
            } else {
                0.05
            };
            let market = match (ru, intl) {
                (r, 0) if r > 0 => 0.10,
                (r, i) if r > 0 && i > 0 => 0.05,
                _ => 0.0,
            };
            let raw: f64 = sample + sites + spread + market;
            if basis == ConfidenceBasis::AiEstimate { raw * 0.6 } else { raw }
        }
    };
    let score = (score.clamp(0.0, 1.0) * 1e6).round() / 1e6;
    PriceConfidence { score, level: ConfidenceLevel::of(score), signals }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(site: &str, price: u64, market: Market) -> Listing {
        Listing {
            url: format!("https://{site}/{price}"),
            site: site.into(),
            title: "АКПП".into(),
            price,
            price_high: None,
            original: None,
            mileage_km: None,
            market,
        }
    }

    #[test]
    fn a_broad_tight_russian_market_is_high() {
        let l: Vec<Listing> =
            [("a.ru", 60_000), ("b.ru", 70_000), ("c.ru", 80_000), ("a.ru", 75_000), ("b.ru", 90_000)]
                .into_iter()
                .map(|(s, p)| listing(s, p, Market::Ru))
                .collect();
        let c = compute_price_confidence(&l, ConfidenceBasis::Market);
        assert_eq!(c.score, 0.95);
        assert_eq!(c.level, ConfidenceLevel::High);
        assert_eq!(
            c.signals,
            ConfidenceSignals { sample_size: 5, unique_domains: 3, spread_ratio: 1.5, ru_count: 5, intl_count: 0 }
        );
    }

    #[test]
    fn every_weight() {
        // Two listings, one site, spread 2.0, Russian: 0.15 + 0.10 + 0.18 + 0.10.
        let two = [listing("a.ru", 50_000, Market::Ru), listing("a.ru", 100_000, Market::Ru)];
        let c = compute_price_confidence(&two, ConfidenceBasis::Market);
        assert_eq!((c.score, c.level), (0.53, ConfidenceLevel::Medium));
        // Three listings, two sites, spread 3.0, mixed: 0.25 + 0.18 + 0.05 + 0.05.
        let three = [
            listing("a.ru", 50_000, Market::Ru),
            listing("b.com", 150_000, Market::Intl),
            listing("a.ru", 60_000, Market::Ru),
        ];
        let c = compute_price_confidence(&three, ConfidenceBasis::Market);
        assert_eq!((c.score, c.level), (0.53, ConfidenceLevel::Medium));
        // Foreign only, one listing: 0 + 0.10 + 0.25 + 0.
        let one = [listing("jp.com", 50_000, Market::Intl)];
        let c = compute_price_confidence(&one, ConfidenceBasis::Market);
        assert_eq!((c.score, c.level), (0.35, ConfidenceLevel::Low));
        assert_eq!(c.signals.spread_ratio, 1.0);
    }

    #[test]
    fn estimates_not_found_and_own_prices() {
        let c = compute_price_confidence(&[], ConfidenceBasis::AiEstimate);
        assert_eq!((c.score, c.level), (0.15, ConfidenceLevel::Low));
        let c = compute_price_confidence(&[], ConfidenceBasis::NotFound);
        assert_eq!((c.score, c.level), (0.0, ConfidenceLevel::Low));
        let c = compute_price_confidence(&[], ConfidenceBasis::OwnPriceList);
        assert_eq!((c.score, c.level), (1.0, ConfidenceLevel::High));
        assert_eq!(ConfidenceLevel::of(0.7), ConfidenceLevel::High);
        assert_eq!(ConfidenceLevel::of(0.4), ConfidenceLevel::Medium);
        assert_eq!(ConfidenceLevel::of(0.399_999), ConfidenceLevel::Low);
    }
}
