//! The `PriceLookup` aggregate: the market price of one gearbox for one tenant.
//!
//! One lookup per tenant and [`SearchKey`] (`tc::jf011e::nissan::qashqai`); its id is
//! [`price_lookup_id`] (UUID v5 of both), so identical requests, from wherever they come, land on
//! the same lookup and share one search.
//!
//! ```text
//!  Request ──▶ PriceLookupRequested{round}            status pending
//!    │            │ worker: StartSearch{rates}
//!    │            ▼
//!    │         PriceSearchStarted                       status searching
//!    │            │ worker, per source: RecordSource
//!    │            ▼
//!    │         PriceSourceQueried (own price list, Yandex search, each listing page, AI estimate:
//!    │            │                queries, URLs, ok / failed (HTTP status) / skipped)
//!    │            │ + PriceListingsRecorded (a page's listings, kept and dropped with the reason)
//!    │            │ worker: Conclude{escalate}
//!    │            ▼
//!    │         PriceListingsDiscarded (floor, median share, foreign cap, outliers)
//!    │         then one end (revision + 1):
//!    │           PriceLookupPriced    market listings (or the tenant's own offers)   priced     TTL 7 d (own list 1 h)
//!    │           PriceLookupEstimated an AI estimate, never a market price           estimated  TTL 2 h
//!    │           PriceLookupNotFound  pages checked, ready queries [, escalation]    not_found / escalated  TTL 24 h
//!    │           PriceLookupFailed    the job gave up                                failed     no TTL
//!    │            │ worker, per waiting conversation: RecordSuggestionOffered{revision}
//!    │            ▼
//!    │         PriceSuggestionOffered (each conversation gets each answer once)
//!    │
//!    ├─ while a round runs ──────────────────▶ PriceLookupJoined (single flight: one search)
//!    ├─ after the end, before it expires ────▶ PriceLookupJoined{answered_from: revision}
//!    └─ after expiry, after a failure, or an operator's refresh ──▶ PriceLookupRequested{round + 1}
//! ```
//!
//! [`PriceLookup::decide`] is pure: times come in the commands (so tests choose the clock), and
//! what the sources answered comes as raw texts the aggregate itself turns into listings with the
//! rules of [`crate::price`]: every path applies the same filter, statistics and conversion. A
//! request delivered twice (same request id) is recorded once; a worker's redelivered job finds its
//! round started (a no-op) or over (`StaleRound`).

mod commands;
mod decide;
mod events;
mod evolve;
mod state;

#[cfg(test)]
mod tests;

use uuid::Uuid;

pub use commands::{PriceLookupCommand, PriceRequest, Requester, SourceKind, SourceOutcome, SourceReport};
pub use decide::{
    ESTIMATE_MAX_RATIO, ESTIMATE_TTL, MARKET_TTL, MAX_LISTINGS_PER_PAGE, NOT_FOUND_TTL, OWN_PRICE_TTL, PriceLookupError,
};
pub use events::PriceLookupEvent;
pub use state::{PriceBasis, PriceLookup, PriceLookupStatus, PriceOutcome, SourceRecord};

use crate::price::SearchKey;

/// Namespace of deterministic price lookup ids.
const PRICE_LOOKUP_NAMESPACE: Uuid = Uuid::from_u128(0x3f0b_9c2e_5a71_4d08_b6e4_81c2_7d95_a0f3);

/// The id of the price lookup of `key` for `tenant`: the same inputs give the same id.
pub fn price_lookup_id(tenant: Uuid, key: &SearchKey) -> Uuid {
    Uuid::new_v5(&PRICE_LOOKUP_NAMESPACE, format!("{tenant}/{}", key.as_str()).as_bytes())
}

crate::impl_aggregate!(PriceLookup, "price_lookup", PriceLookupCommand, PriceLookupEvent, PriceLookupError);
