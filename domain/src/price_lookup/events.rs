//! Events of the [`PriceLookup`](super::PriceLookup) aggregate: the whole story of a price, from
//! who asked to what each source answered, which listings counted and why others did not, and how
//! it ended.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::codec::EventSchema;
use crate::pii::Fields;

use super::commands::{Requester, SourceKind, SourceOutcome};
use super::state::{PriceBasis, PriceLookupStatus};
use crate::price::{
    DroppedListing, Escalation, Listing, OwnOffer, PriceConfidence, PriceSubject, PriceSummary, Rates, SearchKey,
    SuggestionKind,
};

/// What happened to a price lookup. Listed in `docs/price-lookup.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PriceLookupEvent {
    /// A round was asked for: the first, or again after the result expired or failed, or an
    /// operator's refresh.
    PriceLookupRequested {
        request_id: Uuid,
        round: u32,
        tenant_id: Uuid,
        key: SearchKey,
        subject: PriceSubject,
        requester: Requester,
        #[serde(default)]
        refresh: bool,
        requested_at: DateTime<Utc>,
    },
    /// Asked while a round runs (it joins it), or while the recorded result is fresh
    /// (`answered_from` names the result's revision).
    PriceLookupJoined {
        request_id: Uuid,
        round: u32,
        subject: PriceSubject,
        requester: Requester,
        status: PriceLookupStatus,
        #[serde(default)]
        answered_from: Option<u32>,
        joined_at: DateTime<Utc>,
    },
    /// A worker started the round's search, with the currency rates it converts with.
    PriceSearchStarted { round: u32, rates: Rates, started_at: DateTime<Utc> },
    /// One source was asked (or skipped), with its queries, URLs and outcome.
    PriceSourceQueried {
        round: u32,
        source: SourceKind,
        #[serde(default)]
        queries: Vec<String>,
        #[serde(default)]
        urls: Vec<String>,
        outcome: SourceOutcome,
        /// Matching rows of the tenant's price list.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        offers: Vec<OwnOffer>,
        queried_at: DateTime<Utc>,
    },
    /// The listings of one page: kept (whole used gearboxes with a price) and dropped with the
    /// reason. `ignored` listings beyond the per-page limit were not read.
    PriceListingsRecorded {
        round: u32,
        source: SourceKind,
        #[serde(default)]
        url: Option<String>,
        kept: Vec<Listing>,
        dropped: Vec<DroppedListing>,
        #[serde(default)]
        ignored: u32,
    },
    /// The statistics dropped these listings (floor, median share, foreign cap, outliers).
    PriceListingsDiscarded { round: u32, dropped: Vec<DroppedListing> },
    /// A price was found: market statistics over the kept listings, or the tenant's own offers.
    /// Prices are market prices in whole roubles, before the tenant's margin.
    PriceLookupPriced {
        round: u32,
        revision: u32,
        basis: PriceBasis,
        summary: PriceSummary,
        confidence: PriceConfidence,
        listings: Vec<Listing>,
        #[serde(default)]
        own_offers: Vec<OwnOffer>,
        /// Sources that gave the prices.
        sources: Vec<SourceKind>,
        #[serde(default)]
        urls_checked: Vec<String>,
        expires_at: DateTime<Utc>,
        priced_at: DateTime<Utc>,
    },
    /// No market price, but an AI estimate (shown as an estimate, never as a market price).
    PriceLookupEstimated {
        round: u32,
        revision: u32,
        min: u64,
        max: u64,
        confidence: PriceConfidence,
        #[serde(default)]
        urls_checked: Vec<String>,
        expires_at: DateTime<Utc>,
        estimated_at: DateTime<Utc>,
    },
    /// Nothing found: the pages checked, ready queries for a manual search, and the escalation
    /// when the tenant wants one (the lookup is then `escalated`). Kept as a negative result until
    /// `expires_at`, so the same request does not search again at once.
    PriceLookupNotFound {
        round: u32,
        revision: u32,
        urls_checked: Vec<String>,
        ready_queries: Vec<String>,
        #[serde(default)]
        escalation: Option<Escalation>,
        expires_at: DateTime<Utc>,
        concluded_at: DateTime<Utc>,
    },
    /// The round was given up.
    PriceLookupFailed { round: u32, revision: u32, reason: String, failed_at: DateTime<Utc> },
    /// A conversation was offered the answer of `revision` (once per conversation and answer).
    PriceSuggestionOffered {
        conversation_id: Uuid,
        revision: u32,
        kinds: Vec<SuggestionKind>,
        offered_at: DateTime<Utc>,
    },
}

impl EventSchema for PriceLookupEvent {
    const AGGREGATE: &'static str = "price_lookup";

    /// No customer data: gearbox codes, the vehicle, the listings and sources searched.
    fn fields() -> &'static [Fields] {
        static FIELDS: &[Fields] = &[
            Fields {
                event: "PriceLookupRequested",
                pii: &[],
                safe: &[
                    "key",
                    "request_id",
                    "requested_at",
                    "requester/actor",
                    "requester/conversation_id",
                    "requester/kind",
                    "requester/lookup_id",
                    "requester/message_id",
                    "subject/drive",
                    "subject/engine",
                    "subject/gearbox_type",
                    "subject/make",
                    "subject/model",
                    "subject/model_name_hint",
                    "subject/oem",
                    "subject/transmission_code",
                    "subject/year",
                    "tenant_id",
                ],
            },
            Fields {
                event: "PriceLookupJoined",
                pii: &[],
                safe: &[
                    "joined_at",
                    "request_id",
                    "requester/actor",
                    "requester/conversation_id",
                    "requester/kind",
                    "status",
                    "subject/drive",
                    "subject/engine",
                    "subject/gearbox_type",
                    "subject/make",
                    "subject/model",
                    "subject/model_name_hint",
                    "subject/oem",
                    "subject/transmission_code",
                    "subject/year",
                ],
            },
            Fields {
                event: "PriceSearchStarted",
                pii: &[],
                safe: &["rates/date", "rates/defaulted/*", "rates/source", "started_at"],
            },
            Fields {
                event: "PriceSourceQueried",
                pii: &[],
                safe: &[
                    "offers/*/condition",
                    "offers/*/supplier",
                    "outcome/reason",
                    "outcome/status",
                    "queried_at",
                    "queries/*",
                    "source",
                    "urls/*",
                ],
            },
            Fields {
                event: "PriceListingsRecorded",
                pii: &[],
                safe: &[
                    "dropped/*/reason/code",
                    "dropped/*/reason/currency",
                    "dropped/*/reason/keyword",
                    "dropped/*/site",
                    "dropped/*/title",
                    "dropped/*/url",
                    "kept/*/market",
                    "kept/*/original/currency",
                    "kept/*/site",
                    "kept/*/title",
                    "kept/*/url",
                    "source",
                    "url",
                ],
            },
            Fields {
                event: "PriceListingsDiscarded",
                pii: &[],
                safe: &[
                    "dropped/*/reason/code",
                    "dropped/*/reason/currency",
                    "dropped/*/reason/keyword",
                    "dropped/*/site",
                    "dropped/*/title",
                    "dropped/*/url",
                ],
            },
            Fields {
                event: "PriceLookupPriced",
                pii: &[],
                safe: &[
                    "basis",
                    "confidence/level",
                    "expires_at",
                    "listings/*/market",
                    "listings/*/original/currency",
                    "listings/*/site",
                    "listings/*/title",
                    "listings/*/url",
                    "own_offers/*/condition",
                    "own_offers/*/supplier",
                    "priced_at",
                    "sources/*",
                    "summary/currency",
                    "urls_checked/*",
                ],
            },
            Fields {
                event: "PriceLookupEstimated",
                pii: &[],
                safe: &["confidence/level", "estimated_at", "expires_at", "urls_checked/*"],
            },
            Fields {
                event: "PriceLookupNotFound",
                pii: &[],
                safe: &[
                    "concluded_at",
                    "escalation/ready_queries/*",
                    "escalation/reason",
                    "escalation/suggested_sites/*",
                    "escalation/urls_checked/*",
                    "expires_at",
                    "ready_queries/*",
                    "urls_checked/*",
                ],
            },
            Fields { event: "PriceLookupFailed", pii: &[], safe: &["failed_at", "reason"] },
            Fields { event: "PriceSuggestionOffered", pii: &[], safe: &["conversation_id", "kinds/*", "offered_at"] },
        ];
        FIELDS
    }
}

impl PriceLookupEvent {
    /// What the event means, for the event catalog.
    pub fn meaning(&self) -> &'static str {
        use PriceLookupEvent::*;
        match self {
            PriceLookupRequested { .. } => {
                "a price search round was asked for (first request, expired or failed result, or an operator's refresh)"
            }
            PriceLookupJoined { .. } => {
                "a request joined the running round, or was answered from the fresh recorded result (answered_from)"
            }
            PriceSearchStarted { .. } => "a worker started the round's search with these currency rates",
            PriceSourceQueried { .. } => "one source was asked or skipped: queries, URLs and outcome",
            PriceListingsRecorded { .. } => "the listings of one page, kept and dropped with the reason",
            PriceListingsDiscarded { .. } => {
                "the statistics dropped listings (floor, median share, foreign cap, outliers)"
            }
            PriceLookupPriced { .. } => "a market price (or the tenant's own offers) was found, before the margin",
            PriceLookupEstimated { .. } => "no market price; an AI estimate, shown as an estimate",
            PriceLookupNotFound { .. } => {
                "nothing found: pages checked, ready queries, and the escalation when wanted (a negative result)"
            }
            PriceLookupFailed { .. } => "the round was given up",
            PriceSuggestionOffered { .. } => "a conversation was offered the answer of a revision",
        }
    }

    /// The round a search event belongs to.
    pub fn round(&self) -> Option<u32> {
        use PriceLookupEvent::*;
        match self {
            PriceLookupRequested { round, .. }
            | PriceLookupJoined { round, .. }
            | PriceSearchStarted { round, .. }
            | PriceSourceQueried { round, .. }
            | PriceListingsRecorded { round, .. }
            | PriceListingsDiscarded { round, .. }
            | PriceLookupPriced { round, .. }
            | PriceLookupEstimated { round, .. }
            | PriceLookupNotFound { round, .. }
            | PriceLookupFailed { round, .. } => Some(*round),
            PriceSuggestionOffered { .. } => None,
        }
    }

    /// The revision an ending event records (or an offer refers to).
    pub fn revision(&self) -> Option<u32> {
        use PriceLookupEvent::*;
        match self {
            PriceLookupPriced { revision, .. }
            | PriceLookupEstimated { revision, .. }
            | PriceLookupNotFound { revision, .. }
            | PriceLookupFailed { revision, .. }
            | PriceSuggestionOffered { revision, .. } => Some(*revision),
            _ => None,
        }
    }

    /// Whether the event ends a round.
    pub fn is_end(&self) -> bool {
        matches!(
            self,
            Self::PriceLookupPriced { .. }
                | Self::PriceLookupEstimated { .. }
                | Self::PriceLookupNotFound { .. }
                | Self::PriceLookupFailed { .. }
        )
    }
}

impl DomainEvent for PriceLookupEvent {
    fn event_type(&self) -> String {
        self.name().to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

impl PriceLookupEvent {
    /// One sample of every event, for the event catalog (the values are irrelevant).
    pub fn samples() -> Vec<PriceLookupEvent> {
        use super::state::PriceBasis;
        use crate::price::{ConfidenceBasis, Currency, compute_price_confidence};
        let t = DateTime::<Utc>::UNIX_EPOCH;
        let id = Uuid::nil();
        let subject = PriceSubject::default();
        let requester = Requester::Operator { actor: String::new(), conversation_id: None };
        let confidence = compute_price_confidence(&[], ConfidenceBasis::NotFound);
        vec![
            PriceLookupEvent::PriceLookupRequested {
                request_id: id,
                round: 1,
                tenant_id: id,
                key: SearchKey::of(&subject),
                subject: subject.clone(),
                requester: requester.clone(),
                refresh: false,
                requested_at: t,
            },
            PriceLookupEvent::PriceLookupJoined {
                request_id: id,
                round: 1,
                subject,
                requester,
                status: PriceLookupStatus::Pending,
                answered_from: None,
                joined_at: t,
            },
            PriceLookupEvent::PriceSearchStarted { round: 1, rates: Rates::offline(), started_at: t },
            PriceLookupEvent::PriceSourceQueried {
                round: 1,
                source: SourceKind::YandexSearch,
                queries: vec![],
                urls: vec![],
                outcome: SourceOutcome::Ok { results: 0 },
                offers: vec![OwnOffer { price: 1, condition: None, supplier: None, stock: None }],
                queried_at: t,
            },
            PriceLookupEvent::PriceListingsRecorded {
                round: 1,
                source: SourceKind::ListingPage,
                url: None,
                kept: Vec::<Listing>::new(),
                dropped: Vec::<DroppedListing>::new(),
                ignored: 0,
            },
            PriceLookupEvent::PriceListingsDiscarded { round: 1, dropped: vec![] },
            PriceLookupEvent::PriceLookupPriced {
                round: 1,
                revision: 1,
                basis: PriceBasis::Market,
                summary: PriceSummary {
                    min: 0,
                    max: 0,
                    median: 0,
                    mean: 0,
                    count: 0,
                    sites: 0,
                    currency: Currency::Rub,
                    mileage_min: None,
                    mileage_max: None,
                },
                confidence: confidence.clone(),
                listings: vec![],
                own_offers: vec![],
                sources: vec![],
                urls_checked: vec![],
                expires_at: t,
                priced_at: t,
            },
            PriceLookupEvent::PriceLookupEstimated {
                round: 1,
                revision: 1,
                min: 0,
                max: 0,
                confidence,
                urls_checked: vec![],
                expires_at: t,
                estimated_at: t,
            },
            PriceLookupEvent::PriceLookupNotFound {
                round: 1,
                revision: 1,
                urls_checked: vec![],
                ready_queries: vec![],
                escalation: None::<Escalation>,
                expires_at: t,
                concluded_at: t,
            },
            PriceLookupEvent::PriceLookupFailed { round: 1, revision: 1, reason: String::new(), failed_at: t },
            PriceLookupEvent::PriceSuggestionOffered {
                conversation_id: id,
                revision: 1,
                kinds: Vec::<SuggestionKind>::new(),
                offered_at: t,
            },
        ]
    }
}
