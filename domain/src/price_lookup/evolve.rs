//! Folding events into the state: [`PriceLookup::evolve`].

use uuid::Uuid;

use super::commands::{Requester, SourceKind, SourceOutcome};
use super::decide::RECENT_REQUESTS;
use super::events::PriceLookupEvent;
use super::state::{PriceLookup, PriceLookupStatus, PriceOutcome, SourceRecord};

impl PriceLookup {
    /// Folds one event into the state.
    pub fn evolve(&mut self, event: PriceLookupEvent) {
        use PriceLookupEvent as E;
        match event {
            E::PriceLookupRequested {
                request_id, round, tenant_id, key, mut subject, requester, requested_at, ..
            } => {
                self.status = Some(PriceLookupStatus::Pending);
                self.tenant_id = tenant_id;
                self.key = Some(key);
                if let Some(previous) = &self.subject {
                    subject.merge(previous);
                }
                self.subject = Some(subject);
                self.round = round;
                self.requested_at = Some(requested_at);
                self.started_at = None;
                self.rates = None;
                self.sources.clear();
                self.listings.clear();
                self.listing_keys.clear();
                self.listing_sources.clear();
                self.dropped_count = 0;
                self.own_offers.clear();
                self.estimate = None;
                self.urls_checked.clear();
                self.wait(&requester, false);
                self.remember(request_id);
            }
            E::PriceLookupJoined { request_id, subject, requester, answered_from, .. } => {
                if let Some(current) = &mut self.subject {
                    current.merge(&subject);
                }
                self.wait(&requester, answered_from.is_some());
                self.remember(request_id);
            }
            E::PriceSearchStarted { rates, started_at, .. } => {
                self.status = Some(PriceLookupStatus::Searching);
                self.rates = Some(rates);
                self.started_at = Some(started_at);
            }
            E::PriceSourceQueried { source, urls, outcome, offers, .. } => {
                if let SourceOutcome::Estimate { min, max } = outcome {
                    self.estimate = Some((min, max));
                }
                if matches!(source, SourceKind::ListingPage | SourceKind::MarketSnapshot) {
                    for url in urls {
                        if !self.urls_checked.contains(&url) {
                            self.urls_checked.push(url);
                        }
                    }
                }
                self.own_offers.extend(offers);
                self.sources.push(SourceRecord { source, outcome });
            }
            E::PriceListingsRecorded { source, kept, dropped, .. } => {
                self.dropped_count += u32::try_from(dropped.len()).unwrap_or(u32::MAX);
                for listing in kept {
                    self.listing_keys.insert(listing.key());
                    self.listing_sources.insert(listing.key(), source);
                    self.listings.push(listing);
                }
            }
            E::PriceListingsDiscarded { dropped, .. } => {
                self.dropped_count += u32::try_from(dropped.len()).unwrap_or(u32::MAX);
            }
            E::PriceLookupPriced {
                revision,
                basis,
                summary,
                confidence,
                listings,
                own_offers,
                expires_at,
                priced_at,
                ..
            } => {
                self.end(PriceLookupStatus::Priced, revision, Some(expires_at));
                self.outcome =
                    Some(PriceOutcome::Priced { basis, summary, confidence, listings, own_offers, at: priced_at });
            }
            E::PriceLookupEstimated { revision, min, max, confidence, expires_at, estimated_at, .. } => {
                self.end(PriceLookupStatus::Estimated, revision, Some(expires_at));
                self.outcome = Some(PriceOutcome::Estimated { min, max, confidence, at: estimated_at });
            }
            E::PriceLookupNotFound {
                revision,
                urls_checked,
                ready_queries,
                escalation,
                expires_at,
                concluded_at,
                ..
            } => {
                let status =
                    if escalation.is_some() { PriceLookupStatus::Escalated } else { PriceLookupStatus::NotFound };
                self.end(status, revision, Some(expires_at));
                self.outcome =
                    Some(PriceOutcome::NotFound { urls_checked, ready_queries, escalation, at: concluded_at });
            }
            E::PriceLookupFailed { revision, reason, failed_at, .. } => {
                self.end(PriceLookupStatus::Failed, revision, None);
                self.outcome = Some(PriceOutcome::Failed { reason, at: failed_at });
            }
            E::PriceSuggestionOffered { conversation_id, .. } => {
                self.waiting.retain(|c| *c != conversation_id);
                if !self.offered.contains(&conversation_id) {
                    self.offered.push(conversation_id);
                }
            }
        }
    }

    fn end(&mut self, status: PriceLookupStatus, revision: u32, expires_at: Option<chrono::DateTime<chrono::Utc>>) {
        self.status = Some(status);
        self.revision = revision;
        self.expires_at = expires_at;
        self.offered.clear();
    }

    /// Adds the requester's conversation to those waiting for an answer, unless it is already
    /// waiting, or it was already offered the recorded answer it joins.
    fn wait(&mut self, requester: &Requester, answered_from_record: bool) {
        let Some(conversation) = requester.conversation_id() else { return };
        let already_offered = answered_from_record && self.offered.contains(&conversation);
        if !already_offered && !self.waiting.contains(&conversation) {
            self.waiting.push(conversation);
        }
    }

    fn remember(&mut self, request_id: Uuid) {
        self.recent_requests.push_back(request_id);
        while self.recent_requests.len() > RECENT_REQUESTS {
            self.recent_requests.pop_front();
        }
    }
}
