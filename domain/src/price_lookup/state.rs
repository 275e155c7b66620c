//! The state of a price lookup, folded from its events, and what workers and read models ask of it.

use std::collections::{BTreeSet, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::commands::{SourceKind, SourceOutcome};
use crate::price::{
    Analysis, Escalation, Listing, OwnOffer, PriceAnswer, PriceConfidence, PriceSubject, PriceSummary, Rates,
    SearchKey, analyze,
};

/// Where a price lookup stands (the contract's statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceLookupStatus {
    /// A round is asked for; no worker has started it.
    Pending,
    /// A worker is asking the sources.
    Searching,
    /// A price was found.
    Priced,
    /// Only an AI estimate.
    Estimated,
    /// Nothing found.
    NotFound,
    /// Nothing found and an operator was asked to search by hand.
    Escalated,
    /// The round was given up.
    Failed,
}

impl PriceLookupStatus {
    pub const ALL: [PriceLookupStatus; 7] =
        [Self::Pending, Self::Searching, Self::Priced, Self::Estimated, Self::NotFound, Self::Escalated, Self::Failed];

    /// `pending`, `searching`, `priced`, `estimated`, `not_found`, `escalated` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Searching => "searching",
            Self::Priced => "priced",
            Self::Estimated => "estimated",
            Self::NotFound => "not_found",
            Self::Escalated => "escalated",
            Self::Failed => "failed",
        }
    }

    /// Parses the name [`PriceLookupStatus::as_str`] gives.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether the round has ended.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Pending | Self::Searching)
    }

    /// Whether the status carries a price (`min_price`/`max_price` are shown only then).
    pub fn has_price(self) -> bool {
        matches!(self, Self::Priced | Self::Estimated)
    }
}

/// What a price rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceBasis {
    /// Market listings.
    Market,
    /// The tenant's own price list (no market listings were enough).
    OwnPriceList,
}

/// How the last round ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PriceOutcome {
    Priced {
        basis: PriceBasis,
        summary: PriceSummary,
        confidence: PriceConfidence,
        listings: Vec<Listing>,
        own_offers: Vec<OwnOffer>,
        at: DateTime<Utc>,
    },
    Estimated {
        min: u64,
        max: u64,
        confidence: PriceConfidence,
        at: DateTime<Utc>,
    },
    NotFound {
        urls_checked: Vec<String>,
        ready_queries: Vec<String>,
        escalation: Option<Escalation>,
        at: DateTime<Utc>,
    },
    Failed {
        reason: String,
        at: DateTime<Utc>,
    },
}

/// One source asked in the current round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRecord {
    pub source: SourceKind,
    pub outcome: SourceOutcome,
}

/// The aggregate's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PriceLookup {
    /// `None` until the first request.
    pub status: Option<PriceLookupStatus>,
    pub tenant_id: Uuid,
    pub key: Option<SearchKey>,
    /// What is priced (later requests fill what the first did not know).
    pub subject: Option<PriceSubject>,
    pub round: u32,
    /// Ends recorded so far; each conversation is offered each revision at most once.
    pub revision: u32,
    pub requested_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    /// Rates of the current round's search.
    pub rates: Option<Rates>,
    /// Sources asked in the current round.
    pub sources: Vec<SourceRecord>,
    /// Listings kept so far in the current round (before the statistics).
    pub listings: Vec<Listing>,
    /// [`Listing::key`] of every listing kept this round.
    pub listing_keys: BTreeSet<String>,
    /// Where each listing kept this round came from (a listing page or a market snapshot).
    #[serde(default)]
    pub listing_sources: std::collections::BTreeMap<String, SourceKind>,
    /// Listings dropped this round (title, price, duplicates, statistics).
    pub dropped_count: u32,
    /// Own price-list offers of the current round.
    pub own_offers: Vec<OwnOffer>,
    /// The AI estimate of the current round, `(min, max)`.
    pub estimate: Option<(u64, u64)>,
    /// Listing pages read this round.
    pub urls_checked: Vec<String>,
    /// How the last round ended.
    pub outcome: Option<PriceOutcome>,
    /// Until when the last result answers new requests (none for a failure).
    pub expires_at: Option<DateTime<Utc>>,
    /// Conversations that asked and have not been offered the current answer.
    pub waiting: Vec<Uuid>,
    /// Conversations offered the current revision.
    pub offered: Vec<Uuid>,
    pub recent_requests: VecDeque<Uuid>,
}

impl PriceLookup {
    /// Whether the recorded result still answers requests at `now`.
    pub fn is_fresh(&self, now: DateTime<Utc>) -> bool {
        self.status.is_some_and(|s| s.is_final()) && self.expires_at.is_some_and(|e| now < e)
    }

    /// Conversations to offer the current answer to (empty while a round runs).
    pub fn pending_offers(&self) -> &[Uuid] {
        if self.status.is_some_and(PriceLookupStatus::is_final) { &self.waiting } else { &[] }
    }

    /// The statistics over the listings kept so far this round (what [`super::PriceLookupCommand::Conclude`]
    /// would find; a worker uses it to decide whether more sources are needed).
    pub fn market_analysis(&self) -> Analysis {
        analyze(self.listings.iter().cloned())
    }

    /// The last answer as the replies need it ([`crate::price::price_suggestions`]).
    pub fn answer(&self) -> Option<PriceAnswer<'_>> {
        Some(match self.outcome.as_ref()? {
            PriceOutcome::Priced { basis: PriceBasis::OwnPriceList, own_offers, .. } => {
                PriceAnswer::Own { offers: own_offers }
            }
            PriceOutcome::Priced { summary, listings, at, .. } => {
                PriceAnswer::Market { summary, listings, priced_at: *at }
            }
            PriceOutcome::Estimated { min, max, .. } => PriceAnswer::Estimate { min: *min, max: *max },
            PriceOutcome::NotFound { escalation, .. } => PriceAnswer::NotFound { escalation: escalation.as_ref() },
            PriceOutcome::Failed { .. } => PriceAnswer::Failed,
        })
    }

    /// `(min, max, median)` market prices while the status carries a price (estimates have no
    /// median); `None` otherwise, as the contract wants.
    pub fn price_range(&self) -> Option<(u64, u64, Option<u64>)> {
        if !self.status?.has_price() {
            return None;
        }
        match self.outcome.as_ref()? {
            PriceOutcome::Priced { summary, .. } => Some((summary.min, summary.max, Some(summary.median))),
            PriceOutcome::Estimated { min, max, .. } => Some((*min, *max, None)),
            _ => None,
        }
    }
}
