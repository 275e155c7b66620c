//! What can be asked of a price lookup, and who asks.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::price::{OwnOffer, PriceSubject, Rates, RawListing, SuggestionKind};

/// Who asked for a price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Requester {
    /// A completed vehicle lookup found the gearbox (OEM, model, make, model, gearbox type).
    VehicleLookup {
        lookup_id: Uuid,
        #[serde(default)]
        conversation_id: Option<Uuid>,
    },
    /// A transmission code in a customer message.
    CustomerMessage { conversation_id: Uuid, message_id: Uuid },
    /// An operator (API or dashboard), for a conversation or not.
    Operator {
        /// `user:<id>`, `token:<id>`.
        actor: String,
        #[serde(default)]
        conversation_id: Option<Uuid>,
    },
}

impl Requester {
    /// The conversation that wants the answer, if any.
    pub fn conversation_id(&self) -> Option<Uuid> {
        match self {
            Self::VehicleLookup { conversation_id, .. } | Self::Operator { conversation_id, .. } => *conversation_id,
            Self::CustomerMessage { conversation_id, .. } => Some(*conversation_id),
        }
    }

    /// `vehicle_lookup`, `customer_message` or `operator`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::VehicleLookup { .. } => "vehicle_lookup",
            Self::CustomerMessage { .. } => "customer_message",
            Self::Operator { .. } => "operator",
        }
    }
}

/// A request for a price.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceRequest {
    /// Identifies this request: a request delivered twice is recorded once.
    pub request_id: Uuid,
    pub tenant_id: Uuid,
    /// What to price; its [`crate::price::SearchKey`] must be the lookup's.
    pub subject: PriceSubject,
    pub requester: Requester,
    /// Search again even when the recorded result is still fresh (an operator's "search again").
    pub refresh: bool,
    /// The request's time: it decides whether the recorded result is still fresh.
    pub at: DateTime<Utc>,
}

/// A source of prices, in the order they are asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// The tenant's own price list.
    OwnPriceList,
    /// Yandex Cloud Search API (search results, no prices).
    YandexSearch,
    /// One listing page from the search results.
    ListingPage,
    /// An AI web-search estimate (where the tenant enables it).
    AiEstimate,
    /// A market result another lookup of the same key recorded while it is fresh (shared by
    /// tenants): its listings count as if the pages were read again.
    MarketSnapshot,
}

impl SourceKind {
    /// The snake_case name (metrics label).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OwnPriceList => "own_price_list",
            Self::YandexSearch => "yandex_search",
            Self::ListingPage => "listing_page",
            Self::AiEstimate => "ai_estimate",
            Self::MarketSnapshot => "market_snapshot",
        }
    }
}

/// What a source answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SourceOutcome {
    /// It answered: `results` search results, listings on the page, or matching price-list rows.
    Ok { results: u32 },
    /// The AI's estimate, in market roubles (before the margin).
    Estimate { min: u64, max: u64 },
    /// It failed after the retries that make sense: why, and the HTTP status when there was one.
    Failed {
        reason: String,
        #[serde(default)]
        http_status: Option<u16>,
    },
    /// It was not asked: why (not configured, disabled for the tenant, enough prices already).
    Skipped { reason: String },
}

impl SourceOutcome {
    /// `ok`, `estimate`, `failed` or `skipped` (metrics label).
    pub fn status(&self) -> &'static str {
        match self {
            Self::Ok { .. } => "ok",
            Self::Estimate { .. } => "estimate",
            Self::Failed { .. } => "failed",
            Self::Skipped { .. } => "skipped",
        }
    }
}

/// What a worker learnt from one source.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceReport {
    pub source: SourceKind,
    /// Queries sent (search queries; the AI's question in short).
    pub queries: Vec<String>,
    /// URLs: the search results, or the page read.
    pub urls: Vec<String>,
    pub outcome: SourceOutcome,
    /// Listings a page parser read (listing pages and market snapshots only).
    pub listings: Vec<RawListing>,
    /// Matching rows of the tenant's price list (own price list only).
    pub offers: Vec<OwnOffer>,
    pub at: DateTime<Utc>,
}

impl SourceReport {
    /// A report without listings or offers.
    pub fn new(source: SourceKind, outcome: SourceOutcome, at: DateTime<Utc>) -> Self {
        Self { source, queries: Vec::new(), urls: Vec::new(), outcome, listings: Vec::new(), offers: Vec::new(), at }
    }
}

/// What can be asked of a price lookup.
#[derive(Debug, Clone, PartialEq)]
pub enum PriceLookupCommand {
    /// Price a subject: starts a round, or joins the running one, or is answered from the
    /// recorded result while it is fresh. A no-op for a request already recorded.
    Request(Box<PriceRequest>),
    /// A worker starts the search of `round` with these currency rates (a redelivered job's
    /// second start is a no-op).
    StartSearch { round: u32, rates: Rates, at: DateTime<Utc> },
    /// A worker reports one source.
    RecordSource { round: u32, report: Box<SourceReport> },
    /// The worker has asked every source: the lookup ends priced, estimated or not found.
    /// `escalate`: the tenant wants an operator to search by hand when nothing is found.
    Conclude { round: u32, escalate: bool, at: DateTime<Utc> },
    /// The round is given up (the job failed for good).
    Fail { round: u32, reason: String, at: DateTime<Utc> },
    /// The answer of `revision` was offered to a conversation as suggestions.
    RecordSuggestionOffered { conversation_id: Uuid, revision: u32, kinds: Vec<SuggestionKind>, at: DateTime<Utc> },
}
