//! Price statistics over 10,000 listings (`analyze`: floor, median check, foreign cap, IQR,
//! summary) and the normalisation of 10,000 raw listings (title filter, price and mileage texts,
//! conversion). Run with `cargo bench -p aisales-domain --bench price_stats`; prints the median
//! and worst of 50 runs. Target: statistics under 50 ms.

use std::hint::black_box;
use std::time::{Duration, Instant};

use aisales_domain::price::{Listing, Market, Rates, RawListing, analyze, normalize_listing};

const LISTINGS: usize = 10_000;
const RUNS: usize = 50;

/// A deterministic spread of prices around 90 000 ₽ with a few outliers, cheap parts and foreign prices.
fn listings() -> Vec<Listing> {
    (0..LISTINGS)
        .map(|i| {
            let jitter = (i as u64).wrapping_mul(2_654_435_761) % 60_000;
            let price = match i % 100 {
                0 => 900_000 + jitter,
                1 => 1_500,
                _ => 60_000 + jitter,
            };
            Listing {
                url: format!("https://site{}.ru/item/{i}", i % 37),
                site: format!("site{}.ru", i % 37),
                title: format!("АКПП U660E контрактная {i}"),
                price,
                price_high: None,
                original: None,
                mileage_km: (i % 3 == 0).then_some(40_000 + (i as u32 % 120) * 1_000),
                market: if i % 10 == 0 { Market::Intl } else { Market::Ru },
            }
        })
        .collect()
}

fn raw() -> Vec<RawListing> {
    (0..LISTINGS)
        .map(|i| RawListing {
            url: format!("https://site{}.ru/item/{i}", i % 37),
            site: Some(format!("site{}.ru", i % 37)),
            title: if i % 7 == 0 {
                format!("Гидроблок АКПП U660E {i}")
            } else {
                format!("АКПП U660E Toyota Camry {i}")
            },
            price_text: Some(format!("{}\u{a0}{:03}\u{a0}₽", 60 + i % 60, i % 1000)),
            structured_price: None,
            structured_currency: None,
            mileage_text: Some(format!("пробег {} тыс. км", 40 + i % 120)),
        })
        .collect()
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed()
        })
        .collect();
    times.sort_unstable();
    (times[runs / 2], times[runs - 1])
}

fn main() {
    let all = listings();
    let (median, worst) = time(RUNS, || analyze(black_box(all.clone())));
    let a = analyze(all.clone());
    println!(
        "statistics over {LISTINGS} listings: median {:.2} ms, worst {:.2} ms ({} kept, {} dropped, median price {})",
        median.as_secs_f64() * 1e3,
        worst.as_secs_f64() * 1e3,
        a.kept.len(),
        a.dropped.len(),
        a.summary.as_ref().map_or(0, |s| s.median)
    );
    let raws = raw();
    let rates = Rates::offline();
    let (median, worst) = time(RUNS / 5, || {
        raws.iter().cloned().map(|r| normalize_listing(r, &rates, &["U660E"])).filter(Result::is_ok).count()
    });
    println!(
        "normalisation of {LISTINGS} raw listings (title filter, price and mileage texts): median {:.2} ms, worst {:.2} ms",
        median.as_secs_f64() * 1e3,
        worst.as_secs_f64() * 1e3
    );
}
