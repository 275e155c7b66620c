//! Checking commands against the state: [`PriceLookup::decide`].

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::commands::{PriceLookupCommand, PriceRequest, SourceKind, SourceOutcome, SourceReport};
use super::events::PriceLookupEvent;
use super::state::{PriceBasis, PriceLookup, PriceLookupStatus};
use crate::price::{
    ConfidenceBasis, Currency, DropReason, DroppedListing, MAX_PRICE_RUB, MIN_PRICE_RUB, PriceSummary, SearchKey,
    compute_price_confidence, escalation, normalize_listing, ready_queries,
};

/// How long a market price answers new requests.
pub const MARKET_TTL: Duration = Duration::days(7);
/// How long a price from the tenant's own list answers (the list may be re-imported at any time).
pub const OWN_PRICE_TTL: Duration = Duration::hours(1);
/// How long a not-found result keeps identical requests from searching again.
pub const NOT_FOUND_TTL: Duration = Duration::hours(24);
/// How long an AI estimate answers.
pub const ESTIMATE_TTL: Duration = Duration::hours(2);
/// Listings read from one page at most; the rest are counted as ignored.
pub const MAX_LISTINGS_PER_PAGE: usize = 300;
/// An AI estimate's maximum may be at most this multiple of its minimum.
pub const ESTIMATE_MAX_RATIO: u64 = 3;

/// Request ids remembered to recognise a request delivered twice.
pub(super) const RECENT_REQUESTS: usize = 64;

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceLookupError {
    #[error("the price lookup does not exist")]
    NotFound,
    #[error("the price lookup belongs to another tenant")]
    WrongTenant,
    #[error("the request is for `{got}`, this lookup prices `{expected}`")]
    KeyMismatch { expected: String, got: String },
    #[error("round {0} of this lookup is over")]
    StaleRound(u32),
    #[error("the lookup is {0}; no search is running")]
    NotSearching(&'static str),
    #[error("{0}")]
    SourceMismatch(&'static str),
    #[error("revision {revision} is not the lookup's current answer ({current})")]
    StaleRevision { revision: u32, current: u32 },
    #[error("the lookup has no answer yet")]
    NoAnswer,
    #[error("the conversation did not ask this lookup for a price")]
    NotRequested,
}

type Events = Result<Vec<PriceLookupEvent>, PriceLookupError>;

impl PriceLookup {
    /// Checks a command against the state and returns the events it produces.
    pub fn decide(&self, command: PriceLookupCommand) -> Events {
        use PriceLookupCommand as C;
        match command {
            C::Request(r) => self.request(*r),
            C::StartSearch { round, rates, at } => {
                let status = self.current_round(round)?;
                match status {
                    PriceLookupStatus::Pending => {
                        Ok(vec![PriceLookupEvent::PriceSearchStarted { round, rates, started_at: at }])
                    }
                    // A redelivered job starts again: nothing new to record.
                    _ => Ok(vec![]),
                }
            }
            C::RecordSource { round, report } => {
                self.searching(round)?;
                self.record_source(round, *report)
            }
            C::Conclude { round, escalate, at } => {
                self.searching(round)?;
                Ok(self.conclude(round, escalate, at))
            }
            C::Fail { round, reason, at } => {
                self.current_round(round)?;
                let reason = Some(reason.trim().to_string()).filter(|r| !r.is_empty());
                Ok(vec![PriceLookupEvent::PriceLookupFailed {
                    round,
                    revision: self.revision + 1,
                    reason: reason.unwrap_or_else(|| "no reason given".to_string()),
                    failed_at: at,
                }])
            }
            C::RecordSuggestionOffered { conversation_id, revision, kinds, at } => {
                self.offer(conversation_id, revision)?;
                if self.offered.contains(&conversation_id) {
                    return Ok(vec![]);
                }
                Ok(vec![PriceLookupEvent::PriceSuggestionOffered { conversation_id, revision, kinds, offered_at: at }])
            }
        }
    }

    fn request(&self, r: PriceRequest) -> Events {
        let key = SearchKey::of(&r.subject);
        let Some(status) = self.status else {
            return Ok(vec![requested(r, key, 1)]);
        };
        if r.tenant_id != self.tenant_id {
            return Err(PriceLookupError::WrongTenant);
        }
        if let Some(expected) = &self.key
            && expected != &key
        {
            return Err(PriceLookupError::KeyMismatch { expected: expected.to_string(), got: key.to_string() });
        }
        if self.recent_requests.contains(&r.request_id) {
            return Ok(vec![]);
        }
        let joined = |answered_from| PriceLookupEvent::PriceLookupJoined {
            request_id: r.request_id,
            round: self.round,
            subject: r.subject.clone(),
            requester: r.requester.clone(),
            status,
            answered_from,
            joined_at: r.at,
        };
        if !status.is_final() {
            return Ok(vec![joined(None)]);
        }
        if !r.refresh && self.is_fresh(r.at) {
            return Ok(vec![joined(Some(self.revision))]);
        }
        Ok(vec![requested(r, key, self.round + 1)])
    }

    /// The status of the current round, if `round` is it.
    fn current_round(&self, round: u32) -> Result<PriceLookupStatus, PriceLookupError> {
        let status = self.status.ok_or(PriceLookupError::NotFound)?;
        if round != self.round || status.is_final() {
            return Err(PriceLookupError::StaleRound(round));
        }
        Ok(status)
    }

    fn searching(&self, round: u32) -> Result<(), PriceLookupError> {
        match self.current_round(round)? {
            PriceLookupStatus::Searching => Ok(()),
            other => Err(PriceLookupError::NotSearching(other.as_str())),
        }
    }

    fn offer(&self, conversation_id: Uuid, revision: u32) -> Result<(), PriceLookupError> {
        let status = self.status.ok_or(PriceLookupError::NotFound)?;
        if !status.is_final() || self.revision == 0 {
            return Err(PriceLookupError::NoAnswer);
        }
        if revision != self.revision {
            return Err(PriceLookupError::StaleRevision { revision, current: self.revision });
        }
        if !self.waiting.contains(&conversation_id) && !self.offered.contains(&conversation_id) {
            return Err(PriceLookupError::NotRequested);
        }
        Ok(())
    }

    fn record_source(&self, round: u32, report: SourceReport) -> Events {
        use SourceKind as K;
        let SourceReport { source, queries, urls, outcome, listings, offers, at } = report;
        if !listings.is_empty() && !matches!(source, K::ListingPage | K::MarketSnapshot) {
            return Err(PriceLookupError::SourceMismatch("listings come only from listing pages or a market snapshot"));
        }
        if !offers.is_empty() && source != K::OwnPriceList {
            return Err(PriceLookupError::SourceMismatch("offers come only from the own price list"));
        }
        let outcome = match outcome {
            SourceOutcome::Estimate { .. } if source != K::AiEstimate => {
                return Err(PriceLookupError::SourceMismatch("an estimate comes only from the AI estimate"));
            }
            SourceOutcome::Estimate { min, max } => match implausible(min, max) {
                Some(reason) => SourceOutcome::Failed { reason, http_status: None },
                None => SourceOutcome::Estimate { min, max },
            },
            other => other,
        };
        let offers: Vec<_> = offers.into_iter().filter(|o| o.price > 0).collect();
        let page = urls.first().cloned();
        let mut events = vec![PriceLookupEvent::PriceSourceQueried {
            round,
            source,
            queries,
            urls,
            outcome,
            offers,
            queried_at: at,
        }];
        if !listings.is_empty() {
            events.push(self.listings_recorded(round, source, page, listings));
        }
        Ok(events)
    }

    /// Normalises a page's listings: title filter, price and mileage, conversion, duplicates.
    fn listings_recorded(
        &self,
        round: u32,
        source: SourceKind,
        page: Option<String>,
        mut raw: Vec<crate::price::RawListing>,
    ) -> PriceLookupEvent {
        let ignored = raw.len().saturating_sub(MAX_LISTINGS_PER_PAGE);
        raw.truncate(MAX_LISTINGS_PER_PAGE);
        let default_rates = crate::price::Rates::offline();
        let rates = self.rates.as_ref().unwrap_or(&default_rates);
        let subject = self.subject.clone().unwrap_or_default();
        let codes = subject.codes();
        let mut keys = std::collections::BTreeSet::new();
        let mut kept = Vec::new();
        let mut dropped = Vec::new();
        for listing in raw {
            match normalize_listing(listing, rates, &codes) {
                Ok(l) => {
                    let key = l.key();
                    if self.listing_keys.contains(&key) || !keys.insert(key) {
                        dropped.push(DroppedListing::of(l, DropReason::Duplicate));
                    } else {
                        kept.push(l);
                    }
                }
                Err(d) => dropped.push(d),
            }
        }
        PriceLookupEvent::PriceListingsRecorded {
            round,
            source,
            url: page,
            kept,
            dropped,
            ignored: u32::try_from(ignored).unwrap_or(u32::MAX),
        }
    }

    fn conclude(&self, round: u32, escalate: bool, at: DateTime<Utc>) -> Vec<PriceLookupEvent> {
        let analysis = self.market_analysis();
        let mut events = Vec::new();
        if !analysis.dropped.is_empty() {
            events.push(PriceLookupEvent::PriceListingsDiscarded { round, dropped: analysis.dropped.clone() });
        }
        let revision = self.revision + 1;
        let urls_checked = self.urls_checked.clone();
        let own: Vec<_> = self.own_offers.iter().filter(|o| o.price > 0).cloned().collect();
        if let (true, Some(summary)) = (analysis.is_priced(), analysis.summary.clone()) {
            let confidence = compute_price_confidence(&analysis.kept, ConfidenceBasis::Market);
            let mut sources = vec![];
            if !own.is_empty() {
                sources.push(SourceKind::OwnPriceList);
            }
            for kind in [SourceKind::ListingPage, SourceKind::MarketSnapshot] {
                if analysis.kept.iter().any(|l| self.listing_sources.get(&l.key()) == Some(&kind)) {
                    sources.push(kind);
                }
            }
            events.push(PriceLookupEvent::PriceLookupPriced {
                round,
                revision,
                basis: PriceBasis::Market,
                summary,
                confidence,
                listings: analysis.kept,
                own_offers: own,
                sources,
                urls_checked,
                expires_at: at + MARKET_TTL,
                priced_at: at,
            });
        } else if let Some(summary) = own_summary(&own) {
            events.push(PriceLookupEvent::PriceLookupPriced {
                round,
                revision,
                basis: PriceBasis::OwnPriceList,
                summary,
                confidence: compute_price_confidence(&[], ConfidenceBasis::OwnPriceList),
                listings: analysis.kept,
                own_offers: own,
                sources: vec![SourceKind::OwnPriceList],
                urls_checked,
                expires_at: at + OWN_PRICE_TTL,
                priced_at: at,
            });
        } else if let Some((min, max)) = self.estimate {
            events.push(PriceLookupEvent::PriceLookupEstimated {
                round,
                revision,
                min,
                max,
                confidence: compute_price_confidence(&[], ConfidenceBasis::AiEstimate),
                urls_checked,
                expires_at: at + ESTIMATE_TTL,
                estimated_at: at,
            });
        } else {
            let subject = self.subject.clone().unwrap_or_default();
            events.push(PriceLookupEvent::PriceLookupNotFound {
                round,
                revision,
                ready_queries: ready_queries(&subject),
                escalation: escalate.then(|| escalation(&subject, &urls_checked)),
                urls_checked,
                expires_at: at + NOT_FOUND_TTL,
                concluded_at: at,
            });
        }
        events
    }
}

fn requested(r: PriceRequest, key: SearchKey, round: u32) -> PriceLookupEvent {
    PriceLookupEvent::PriceLookupRequested {
        request_id: r.request_id,
        round,
        tenant_id: r.tenant_id,
        key,
        subject: r.subject,
        requester: r.requester,
        refresh: r.refresh,
        requested_at: r.at,
    }
}

/// Why an AI estimate cannot be taken, if it cannot: outside the price bounds, upside down, or a
/// range wider than [`ESTIMATE_MAX_RATIO`].
fn implausible(min: u64, max: u64) -> Option<String> {
    if min < MIN_PRICE_RUB || max > MAX_PRICE_RUB {
        Some(format!("implausible estimate {min}..{max} RUB: outside {MIN_PRICE_RUB}..{MAX_PRICE_RUB}"))
    } else if max < min {
        Some(format!("implausible estimate {min}..{max} RUB: the maximum is below the minimum"))
    } else if max > min.saturating_mul(ESTIMATE_MAX_RATIO) {
        Some(format!("implausible estimate {min}..{max} RUB: wider than {ESTIMATE_MAX_RATIO} times"))
    } else {
        None
    }
}

/// Summary of the tenant's own offers (one "site").
fn own_summary(offers: &[crate::price::OwnOffer]) -> Option<PriceSummary> {
    let mut prices: Vec<u64> = offers.iter().map(|o| o.price).filter(|p| *p > 0).collect();
    prices.sort_unstable();
    let n = prices.len() as u64;
    let (&min, &max) = (prices.first()?, prices.last()?);
    let median = if n % 2 == 1 {
        prices[prices.len() / 2]
    } else {
        (prices[prices.len() / 2 - 1] + prices[prices.len() / 2]).div_ceil(2)
    };
    let mean = (prices.iter().sum::<u64>() + n / 2) / n;
    Some(PriceSummary {
        min,
        max,
        median,
        mean,
        count: u32::try_from(n).unwrap_or(u32::MAX),
        sites: 1,
        currency: Currency::Rub,
        mileage_min: None,
        mileage_max: None,
    })
}
