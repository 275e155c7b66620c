//! Market statistics over the kept listings: duplicates, the price floor and the median sanity
//! check ([`validate_prices`]), foreign prices far above the Russian market ([`cap_foreign`]), IQR
//! outliers with the small-sample guard ([`remove_outliers`]), and the [`PriceSummary`].
//!
//! [`analyze`] sorts the listings by price **once**; every later step works on that order
//! (the floor and the median share cut a prefix, the IQR fences keep a contiguous window, the
//! summary reads both ends and the middle), so 10 000 listings cost one `O(n log n)` sort and a few
//! linear passes. Each step also sorts its input if it is not sorted yet (checked in `O(n)`), so
//! it can be used on its own.

use std::collections::{BTreeSet, HashSet};

use serde::{Deserialize, Serialize};

use super::currency::Currency;
use super::listing::{DropReason, DroppedListing, Listing, Market};

/// Prices below this are parts, deposits or typos, whatever the page says.
pub const PRICE_FLOOR_RUB: u64 = 3_000;
/// Prices below this percentage of the median are dropped (when two or more are left).
pub const MEDIAN_SHARE_PERCENT: u64 = 1;
/// Foreign prices above this multiple of the Russian median are dropped (when two or more Russian
/// prices exist): an auction price plus shipping and customs is another market.
pub const FOREIGN_CAP_RATIO: f64 = 2.5;
/// Tukey's fence factor.
pub const IQR_FACTOR: f64 = 1.5;
/// Below this many listings the quartiles mean nothing; two or three are checked against their
/// median instead (kept within a third to three times it).
pub const IQR_MIN_LISTINGS: usize = 4;
/// A market price needs at least this many listings after cleaning.
pub const MIN_PRICED_LISTINGS: usize = 2;

/// Min, max, median and mean of the kept listings, in whole roubles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceSummary {
    pub min: u64,
    pub max: u64,
    /// The middle price; for an even count the mean of the two middle ones, rounded.
    pub median: u64,
    /// Rounded mean.
    pub mean: u64,
    pub count: u32,
    /// Distinct sites.
    pub sites: u32,
    /// Always RUB.
    pub currency: Currency,
    #[serde(default)]
    pub mileage_min: Option<u32>,
    #[serde(default)]
    pub mileage_max: Option<u32>,
}

impl PriceSummary {
    /// Enough for a market price without asking more sources: three listings, or two sites.
    pub fn is_sufficient(&self) -> bool {
        self.count >= 3 || self.sites >= 2
    }
}

/// The outcome of the statistics.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Analysis {
    /// Listings that count, cheapest first.
    pub kept: Vec<Listing>,
    /// Listings the statistics dropped, with the reason.
    pub dropped: Vec<DroppedListing>,
    /// Summary of `kept` (none when nothing is kept).
    pub summary: Option<PriceSummary>,
}

impl Analysis {
    /// Whether the kept listings make a market price ([`MIN_PRICED_LISTINGS`] or more).
    pub fn is_priced(&self) -> bool {
        self.kept.len() >= MIN_PRICED_LISTINGS
    }
}

/// Runs every step: duplicates (same URL and price), [`validate_prices`], [`cap_foreign`],
/// [`remove_outliers`], then [`summarize`].
pub fn analyze(listings: impl IntoIterator<Item = Listing>) -> Analysis {
    let mut seen = HashSet::new();
    let mut dropped = Vec::new();
    let mut unique = Vec::new();
    for listing in listings {
        if seen.insert(listing.key()) {
            unique.push(listing);
        } else {
            dropped.push(DroppedListing::of(listing, DropReason::Duplicate));
        }
    }
    unique.sort_by_key(|l| l.price);
    let (kept, d) = validate_prices(unique);
    dropped.extend(d);
    let (kept, d) = cap_foreign(kept);
    dropped.extend(d);
    let (kept, d) = remove_outliers(kept);
    dropped.extend(d);
    let summary = summarize(&kept);
    Analysis { kept, dropped, summary }
}

fn sorted(mut listings: Vec<Listing>) -> Vec<Listing> {
    if !listings.is_sorted_by_key(|l| l.price) {
        listings.sort_by_key(|l| l.price);
    }
    listings
}

/// Splits off the first `n` listings as dropped for `reason`.
fn drop_prefix(listings: &mut Vec<Listing>, n: usize, reason: &DropReason, dropped: &mut Vec<DroppedListing>) {
    dropped.extend(listings.drain(..n).map(|l| DroppedListing::of(l, reason.clone())));
}

/// The floor and the median sanity check: drops prices below [`PRICE_FLOOR_RUB`], then, when two
/// or more are left, prices below [`MEDIAN_SHARE_PERCENT`] % of the median (`sorted[n / 2]`).
pub fn validate_prices(listings: Vec<Listing>) -> (Vec<Listing>, Vec<DroppedListing>) {
    let mut listings = sorted(listings);
    let mut dropped = Vec::new();
    let below_floor = listings.partition_point(|l| l.price < PRICE_FLOOR_RUB);
    drop_prefix(&mut listings, below_floor, &DropReason::BelowFloor { floor: PRICE_FLOOR_RUB }, &mut dropped);
    if listings.len() >= 2 {
        let median = listings[listings.len() / 2].price;
        let share = u128::from(median) * u128::from(MEDIAN_SHARE_PERCENT);
        let below = listings.partition_point(|l| u128::from(l.price) * 100 < share);
        let limit = u64::try_from(share.div_ceil(100)).unwrap_or(u64::MAX);
        let reason = DropReason::BelowMedianShare { median, limit };
        drop_prefix(&mut listings, below, &reason, &mut dropped);
    }
    (listings, dropped)
}

/// Drops foreign prices above [`FOREIGN_CAP_RATIO`] × the median of the Russian prices
/// (`sorted[n / 2]`), when there are two or more Russian prices.
pub fn cap_foreign(listings: Vec<Listing>) -> (Vec<Listing>, Vec<DroppedListing>) {
    let listings = sorted(listings);
    let ru: Vec<u64> = listings.iter().filter(|l| l.market == Market::Ru).map(|l| l.price).collect();
    if ru.len() < 2 || ru.len() == listings.len() {
        return (listings, Vec::new());
    }
    let ru_median = ru[ru.len() / 2];
    let limit = (ru_median as f64 * FOREIGN_CAP_RATIO).floor() as u64;
    let reason = DropReason::ForeignAboveRuMedian { ru_median, limit };
    let (kept, over): (Vec<Listing>, Vec<Listing>) =
        listings.into_iter().partition(|l| l.market == Market::Ru || l.price <= limit);
    (kept, over.into_iter().map(|l| DroppedListing::of(l, reason.clone())).collect())
}

/// IQR outlier removal. Four or more listings: `q1 = sorted[⌊n/4⌋]`, `q3 = sorted[⌊3n/4⌋]`, kept
/// within `[q1 − 1.5·IQR, q3 + 1.5·IQR]`. Two or three (the small-sample guard): kept within a
/// third to three times the median `sorted[⌊n/2⌋]`, unless that leaves fewer than two, in which
/// case nothing is dropped. One listing is kept as it is.
pub fn remove_outliers(listings: Vec<Listing>) -> (Vec<Listing>, Vec<DroppedListing>) {
    let listings = sorted(listings);
    let n = listings.len();
    let (low, high) = if n >= IQR_MIN_LISTINGS {
        let q1 = listings[n / 4].price as f64;
        let q3 = listings[3 * n / 4].price as f64;
        let iqr = q3 - q1;
        (q1 - IQR_FACTOR * iqr, q3 + IQR_FACTOR * iqr)
    } else if n >= 2 {
        let median = listings[n / 2].price as f64;
        (median / 3.0, median * 3.0)
    } else {
        return (listings, Vec::new());
    };
    let start = listings.partition_point(|l| (l.price as f64) < low);
    let end = listings.partition_point(|l| (l.price as f64) <= high);
    if n < IQR_MIN_LISTINGS && end - start < 2 {
        return (listings, Vec::new());
    }
    let reason = DropReason::Outlier { low: low.max(0.0).ceil() as u64, high: high.floor() as u64 };
    let mut listings = listings;
    let mut dropped: Vec<DroppedListing> =
        listings.drain(end..).map(|l| DroppedListing::of(l, reason.clone())).collect();
    drop_prefix(&mut listings, start, &reason, &mut dropped);
    (listings, dropped)
}

/// Summary of listings sorted by price; `None` for none.
pub fn summarize(listings: &[Listing]) -> Option<PriceSummary> {
    let first = listings.first()?;
    let last = listings.last()?;
    debug_assert!(listings.is_sorted_by_key(|l| l.price));
    let n = listings.len();
    let sum: u128 = listings.iter().map(|l| u128::from(l.price)).sum();
    let mean = ((sum + n as u128 / 2) / n as u128) as u64;
    let median = if n % 2 == 1 {
        listings[n / 2].price
    } else {
        let (a, b) = (listings[n / 2 - 1].price, listings[n / 2].price);
        a / 2 + b / 2 + (a % 2 + b % 2).div_ceil(2)
    };
    let sites: BTreeSet<&str> = listings.iter().map(|l| l.site.as_str()).collect();
    let mileages = listings.iter().filter_map(|l| l.mileage_km);
    let (mileage_min, mileage_max) = mileages.fold((None, None), |(lo, hi): (Option<u32>, Option<u32>), m| {
        (Some(lo.map_or(m, |x| x.min(m))), Some(hi.map_or(m, |x| x.max(m))))
    });
    Some(PriceSummary {
        min: first.price,
        max: last.price,
        median,
        mean,
        count: u32::try_from(n).unwrap_or(u32::MAX),
        sites: u32::try_from(sites.len()).unwrap_or(u32::MAX),
        currency: Currency::Rub,
        mileage_min,
        mileage_max,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(i: usize, price: u64) -> Listing {
        Listing {
            url: format!("https://site{}.ru/{i}", i % 3),
            site: format!("site{}.ru", i % 3),
            title: "АКПП".into(),
            price,
            price_high: None,
            original: None,
            mileage_km: None,
            market: Market::Ru,
        }
    }

    fn listings(prices: &[u64]) -> Vec<Listing> {
        prices.iter().enumerate().map(|(i, p)| listing(i, *p)).collect()
    }

    fn prices(listings: &[Listing]) -> Vec<u64> {
        listings.iter().map(|l| l.price).collect()
    }

    #[test]
    fn iqr_example_of_the_old_system() {
        let (kept, dropped) = remove_outliers(listings(&[50_000, 55_000, 60_000, 58_000, 500_000]));
        assert_eq!(prices(&kept), [50_000, 55_000, 58_000, 60_000]);
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].price, Some(500_000));
        // q1 = 55 000, q3 = 60 000, IQR 5 000: fences 47 500 and 67 500.
        assert_eq!(dropped[0].reason, DropReason::Outlier { low: 47_500, high: 67_500 });
    }

    #[test]
    fn fences_drop_both_ends() {
        let (kept, dropped) = remove_outliers(listings(&[10_000, 60_000, 62_000, 64_000, 66_000, 68_000, 400_000]));
        assert_eq!(prices(&kept), [60_000, 62_000, 64_000, 66_000, 68_000]);
        assert_eq!(dropped.iter().map(|d| d.price.unwrap()).collect::<Vec<_>>(), [400_000, 10_000]);
        // Equal prices have no spread and nothing is an outlier of itself.
        let (kept, dropped) = remove_outliers(listings(&[70_000; 6]));
        assert_eq!((kept.len(), dropped.len()), (6, 0));
    }

    #[test]
    fn small_samples_are_checked_against_their_median() {
        let (kept, dropped) = remove_outliers(listings(&[50_000, 55_000, 500_000]));
        assert_eq!(prices(&kept), [50_000, 55_000]);
        assert_eq!(dropped[0].reason, DropReason::Outlier { low: 18_334, high: 165_000 });
        // Two far apart: dropping either would leave one, so both stay.
        let (kept, dropped) = remove_outliers(listings(&[50_000, 500_000]));
        assert_eq!((kept.len(), dropped.len()), (2, 0));
        let (kept, dropped) = remove_outliers(listings(&[50_000, 60_000]));
        assert_eq!((kept.len(), dropped.len()), (2, 0));
        let (kept, dropped) = remove_outliers(listings(&[50_000]));
        assert_eq!((kept.len(), dropped.len()), (1, 0));
        assert_eq!(remove_outliers(Vec::new()), (Vec::new(), Vec::new()));
    }

    #[test]
    fn floor_and_median_share() {
        let (kept, dropped) = validate_prices(listings(&[2_999, 3_000, 85_000]));
        assert_eq!(prices(&kept), [3_000, 85_000]);
        assert_eq!(dropped[0].reason, DropReason::BelowFloor { floor: 3_000 });
        // 1% of a 900 000 median is 9 000: a 5 000 "price" is a deposit.
        let (kept, dropped) = validate_prices(listings(&[5_000, 850_000, 900_000, 950_000]));
        assert_eq!(prices(&kept), [850_000, 900_000, 950_000]);
        assert_eq!(dropped[0].reason, DropReason::BelowMedianShare { median: 900_000, limit: 9_000 });
        // One listing left: no median check.
        let (kept, _) = validate_prices(listings(&[2_000, 4_000]));
        assert_eq!(prices(&kept), [4_000]);
    }

    #[test]
    fn foreign_prices_far_above_the_russian_market_are_dropped() {
        let mut all = listings(&[60_000, 70_000, 80_000, 150_000, 200_000]);
        all[3].market = Market::Intl;
        all[4].market = Market::Intl;
        let (kept, dropped) = cap_foreign(all);
        assert_eq!(prices(&kept), [60_000, 70_000, 80_000, 150_000]);
        assert_eq!(dropped[0].reason, DropReason::ForeignAboveRuMedian { ru_median: 70_000, limit: 175_000 });
        // With fewer than two Russian prices there is nothing to compare with.
        let mut all = listings(&[60_000, 500_000]);
        all[1].market = Market::Intl;
        assert_eq!(cap_foreign(all).1.len(), 0);
    }

    #[test]
    fn summary_and_duplicates() {
        let mut all = listings(&[70_000, 50_000, 60_000, 80_000]);
        all[0].mileage_km = Some(90_000);
        all[2].mileage_km = Some(40_000);
        all.push(all[1].clone());
        let a = analyze(all);
        assert_eq!(prices(&a.kept), [50_000, 60_000, 70_000, 80_000]);
        assert_eq!(a.dropped.len(), 1);
        assert_eq!(a.dropped[0].reason, DropReason::Duplicate);
        let s = a.summary.clone().unwrap();
        assert_eq!((s.min, s.max, s.median, s.mean, s.count, s.sites), (50_000, 80_000, 65_000, 65_000, 4, 3));
        assert_eq!((s.mileage_min, s.mileage_max), (Some(40_000), Some(90_000)));
        assert_eq!(s.currency, Currency::Rub);
        assert!(s.is_sufficient());
        assert!(a.is_priced());
        let odd = summarize(&listings(&[1_001, 2_000, 2_001])).unwrap();
        assert_eq!((odd.median, odd.mean), (2_000, 1_667));
        let even = summarize(&listings(&[1_001, 2_000])).unwrap();
        assert_eq!(even.median, 1_501, "the mean of the middle two, rounded half up");
        assert!(summarize(&[]).is_none());
        assert!(!analyze(Vec::new()).is_priced());
    }

    #[test]
    fn sufficiency() {
        let one_site = |n: usize| {
            let mut v = listings(&vec![50_000; n]);
            for (i, l) in v.iter_mut().enumerate() {
                l.site = "a.ru".into();
                l.url = format!("https://a.ru/{i}");
            }
            summarize(&v).unwrap()
        };
        assert!(!one_site(2).is_sufficient());
        assert!(one_site(3).is_sufficient());
        assert!(summarize(&listings(&[50_000, 51_000])).unwrap().is_sufficient(), "two sites");
    }

    #[test]
    fn ten_thousand_listings_in_one_sort() {
        // Deterministic spread around 80 000 with a few far outliers.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let all: Vec<Listing> = (0..10_000)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let price = if i % 1000 == 0 { 2_000_000 } else { 60_000 + state % 40_000 };
                listing(i, price)
            })
            .collect();
        let started = std::time::Instant::now();
        let a = analyze(all);
        let elapsed = started.elapsed();
        assert_eq!(a.kept.len() + a.dropped.len(), 10_000);
        assert!(a.dropped.iter().all(|d| d.price == Some(2_000_000)));
        assert_eq!(a.dropped.len(), 10);
        let s = a.summary.unwrap();
        assert!(s.min >= 60_000 && s.max < 100_000);
        // Generous even for an unoptimised build; the optimised figure is in docs/benchmarks.md.
        assert!(elapsed < std::time::Duration::from_secs(2), "{elapsed:?}");
    }
}
