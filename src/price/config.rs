//! Settings of price lookups as a whole: the sources ([`PriceSourceSettings`]), where currency
//! rates come from, how long one lookup may take, how many pages are read at once, and the clock
//! every TTL is checked against.

use std::time::Duration;

use super::PriceSourceSettings;
use crate::infra::clock::Clock;

/// Settings of the `price-lookup` worker and the price lookup service.
#[derive(Debug, Clone)]
pub struct PriceLookupConfig {
    pub sources: PriceSourceSettings,
    /// `PRICE_RATES_URL`: a currency API answering `{"date": …, "rub": {"jpy": …}}`; none: the
    /// offline rates.
    pub rates_url: Option<String>,
    /// How long fetched rates are reused.
    pub rates_ttl: Duration,
    /// `PRICE_LOOKUP_TIMEOUT_SECS`: bound of one whole search (every source).
    pub lookup_timeout: Duration,
    /// `PRICE_PAGE_CONCURRENCY`: listing pages read at once.
    pub page_concurrency: usize,
    /// Listing pages read per lookup at most.
    pub max_pages: usize,
    /// The clock snapshot and result TTLs are checked against.
    pub clock: Clock,
}

impl Default for PriceLookupConfig {
    fn default() -> Self {
        PriceLookupConfig {
            sources: PriceSourceSettings::default(),
            rates_url: None,
            rates_ttl: Duration::from_secs(12 * 3600),
            lookup_timeout: Duration::from_secs(60),
            page_concurrency: 4,
            max_pages: 8,
            clock: Clock::system(),
        }
    }
}
