//! The read model of price lookups (`rm_price_lookups`): per lookup its status, the market range
//! (before any margin), the listings that count with URL, site and title, confidence, every source
//! asked with its outcome, the conversations that asked and the answers they were offered.
//!
//! [`PriceLookupRow::apply`] is a pure fold of the aggregate's events; the API folds the events of
//! a lookup the projector has not reached yet with the same function.

use std::collections::HashMap;

use aisales_domain::price_lookup::{PriceLookupEvent as E, PriceLookupStatus, SourceOutcome};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::conversation::{Change, record_changes};
use crate::events::StoredEvent;
use crate::projector::{Projector, Target};
use crate::rows;

/// Aggregate type of price lookups in the event log.
pub const PRICE_LOOKUP: &str = "price_lookup";

/// Reads one stored price-lookup event.
pub fn decode_event(event_type: &str, version: &str, payload: &str) -> anyhow::Result<E> {
    Ok(<E as aisales_domain::codec::EventSchema>::decode(event_type, version, payload)?)
}

/// A row of `rm_price_lookups`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceLookupRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub search_key: String,
    /// `pending`, `searching`, `priced`, `estimated`, `not_found`, `escalated`, `failed`.
    pub status: String,
    pub subject: Value,
    pub round: i32,
    pub revision: i32,
    /// `market` or `own_price_list` when priced.
    pub basis: Option<String>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub median_price: Option<i64>,
    pub currency: String,
    pub confidence: Option<f64>,
    pub confidence_level: Option<String>,
    /// `[{url, site, title, price, price_high, mileage_km, market}]`: the listings the price rests on.
    pub listings: Value,
    /// Listings dropped this round (title filter, duplicates, statistics).
    pub dropped: i32,
    pub own_offers: Value,
    /// `[{source, status, results, reason, http_status, queries, urls, at}]` of the current round.
    pub sources: Value,
    pub urls_checked: Value,
    pub ready_queries: Value,
    pub failure: Option<String>,
    pub conversation_ids: Vec<Uuid>,
    /// `[{kind, conversation_id, actor, at, answered_from}]`.
    pub requesters: Value,
    /// `[{conversation_id, revision, kinds, at}]`.
    pub offers: Value,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_sequence: i64,
}

fn push(v: &mut Value, item: Value) {
    if let Value::Array(items) = v {
        items.push(item);
    } else {
        *v = Value::Array(vec![item]);
    }
}

impl PriceLookupRow {
    pub fn new(id: Uuid, tenant_id: Uuid, at: DateTime<Utc>) -> Self {
        PriceLookupRow {
            id,
            tenant_id,
            search_key: String::new(),
            status: PriceLookupStatus::Pending.as_str().into(),
            subject: json!({}),
            round: 0,
            revision: 0,
            basis: None,
            min_price: None,
            max_price: None,
            median_price: None,
            currency: "RUB".into(),
            confidence: None,
            confidence_level: None,
            listings: json!([]),
            dropped: 0,
            own_offers: json!([]),
            sources: json!([]),
            urls_checked: json!([]),
            ready_queries: json!([]),
            failure: None,
            conversation_ids: Vec::new(),
            requesters: json!([]),
            offers: json!([]),
            expires_at: None,
            created_at: at,
            updated_at: at,
            last_sequence: 0,
        }
    }

    fn new_round(&mut self, round: u32) {
        self.status = PriceLookupStatus::Pending.as_str().into();
        self.round = round as i32;
        self.basis = None;
        self.min_price = None;
        self.max_price = None;
        self.median_price = None;
        self.confidence = None;
        self.confidence_level = None;
        self.listings = json!([]);
        self.dropped = 0;
        self.own_offers = json!([]);
        self.sources = json!([]);
        self.urls_checked = json!([]);
        self.ready_queries = json!([]);
        self.failure = None;
        self.expires_at = None;
    }

    fn ask(
        &mut self,
        requester: &aisales_domain::price_lookup::Requester,
        at: DateTime<Utc>,
        answered_from: Option<u32>,
    ) {
        if let Some(c) = requester.conversation_id()
            && !self.conversation_ids.contains(&c)
        {
            self.conversation_ids.push(c);
        }
        let actor = match requester {
            aisales_domain::price_lookup::Requester::Operator { actor, .. } => Some(actor.clone()),
            _ => None,
        };
        push(
            &mut self.requesters,
            json!({
                "kind": requester.kind(),
                "conversation_id": requester.conversation_id(),
                "actor": actor,
                "at": at,
                "answered_from": answered_from,
            }),
        );
    }

    /// Applies one event.
    pub fn apply(&mut self, event: &E, at: DateTime<Utc>, sequence: i64) -> anyhow::Result<()> {
        self.updated_at = at;
        self.last_sequence = sequence;
        match event {
            E::PriceLookupRequested { round, tenant_id, key, subject, requester, requested_at, .. } => {
                self.tenant_id = *tenant_id;
                self.search_key = key.as_str().to_string();
                self.subject = serde_json::to_value(subject)?;
                self.new_round(*round);
                self.ask(requester, *requested_at, None);
            }
            E::PriceLookupJoined { requester, answered_from, joined_at, .. } => {
                self.ask(requester, *joined_at, *answered_from)
            }
            E::PriceSearchStarted { .. } => self.status = PriceLookupStatus::Searching.as_str().into(),
            E::PriceSourceQueried { source, queries, urls, outcome, offers, queried_at, .. } => {
                let (results, reason, http_status) = match outcome {
                    SourceOutcome::Ok { results } => (Some(*results), None, None),
                    SourceOutcome::Estimate { .. } => (Some(1), None, None),
                    SourceOutcome::Failed { reason, http_status } => (None, Some(reason.clone()), *http_status),
                    SourceOutcome::Skipped { reason } => (None, Some(reason.clone()), None),
                };
                if !offers.is_empty() {
                    self.own_offers = serde_json::to_value(offers)?;
                }
                push(
                    &mut self.sources,
                    json!({
                        "source": source.as_str(),
                        "status": outcome.status(),
                        "results": results,
                        "reason": reason,
                        "http_status": http_status,
                        "queries": queries,
                        "urls": urls,
                        "at": queried_at,
                    }),
                );
            }
            E::PriceListingsRecorded { dropped, .. } | E::PriceListingsDiscarded { dropped, .. } => {
                self.dropped += i32::try_from(dropped.len()).unwrap_or(i32::MAX);
            }
            E::PriceLookupPriced {
                revision,
                basis,
                summary,
                confidence,
                listings,
                own_offers,
                urls_checked,
                expires_at,
                ..
            } => {
                self.status = PriceLookupStatus::Priced.as_str().into();
                self.revision = *revision as i32;
                self.basis = Some(serde_json::to_value(basis)?.as_str().unwrap_or_default().to_string());
                self.min_price = Some(summary.min as i64);
                self.max_price = Some(summary.max as i64);
                self.median_price = Some(summary.median as i64);
                self.currency = summary.currency.code().to_string();
                self.confidence = Some(confidence.score);
                self.confidence_level = Some(confidence.level.as_str().to_string());
                self.listings = Value::Array(
                    listings
                        .iter()
                        .map(|l| {
                            json!({
                                "url": l.url,
                                "site": l.site,
                                "title": l.title,
                                "price": l.price,
                                "price_high": l.price_high,
                                "mileage_km": l.mileage_km,
                                "market": l.market,
                            })
                        })
                        .collect(),
                );
                self.own_offers = serde_json::to_value(own_offers)?;
                self.urls_checked = serde_json::to_value(urls_checked)?;
                self.expires_at = Some(*expires_at);
            }
            E::PriceLookupEstimated { revision, min, max, confidence, urls_checked, expires_at, .. } => {
                self.status = PriceLookupStatus::Estimated.as_str().into();
                self.revision = *revision as i32;
                self.min_price = Some(*min as i64);
                self.max_price = Some(*max as i64);
                self.median_price = None;
                self.confidence = Some(confidence.score);
                self.confidence_level = Some(confidence.level.as_str().to_string());
                self.urls_checked = serde_json::to_value(urls_checked)?;
                self.expires_at = Some(*expires_at);
            }
            E::PriceLookupNotFound { revision, urls_checked, ready_queries, escalation, expires_at, .. } => {
                let status =
                    if escalation.is_some() { PriceLookupStatus::Escalated } else { PriceLookupStatus::NotFound };
                self.status = status.as_str().into();
                self.revision = *revision as i32;
                self.min_price = None;
                self.max_price = None;
                self.median_price = None;
                self.confidence = Some(0.0);
                self.confidence_level = Some("low".into());
                self.urls_checked = serde_json::to_value(urls_checked)?;
                self.ready_queries = serde_json::to_value(ready_queries)?;
                self.expires_at = Some(*expires_at);
            }
            E::PriceLookupFailed { revision, reason, .. } => {
                self.status = PriceLookupStatus::Failed.as_str().into();
                self.revision = *revision as i32;
                self.min_price = None;
                self.max_price = None;
                self.median_price = None;
                self.failure = Some(reason.clone());
                self.expires_at = None;
            }
            E::PriceSuggestionOffered { conversation_id, revision, kinds, offered_at } => push(
                &mut self.offers,
                json!({ "conversation_id": conversation_id, "revision": revision, "kinds": kinds, "at": offered_at }),
            ),
        }
        Ok(())
    }

    /// Folds a lookup's events (oldest first): `(sequence, type, version, payload, recorded_at)`.
    pub fn fold(
        id: Uuid,
        tenant_id: Uuid,
        events: &[(i64, String, String, String, DateTime<Utc>)],
    ) -> anyhow::Result<Option<Self>> {
        let Some(first) = events.first() else { return Ok(None) };
        let mut row = PriceLookupRow::new(id, tenant_id, first.4);
        for (sequence, t, v, p, at) in events {
            row.apply(&decode_event(t, v, p)?, *at, *sequence)?;
        }
        Ok(Some(row))
    }
}

/// Projector of `rm_price_lookups`.
pub struct PriceLookups {
    target: Target,
    name: &'static str,
}

impl PriceLookups {
    pub fn new(target: Target) -> Self {
        PriceLookups { target, name: target.name("price_lookups") }
    }
}

#[async_trait]
impl Projector for PriceLookups {
    fn name(&self) -> &'static str {
        self.name
    }
    fn description(&self) -> &'static str {
        "price lookups: status, market range, listings, confidence, sources, conversations"
    }
    fn tables(&self) -> &'static [&'static str] {
        &["rm_price_lookups"]
    }
    fn generation(&self, target: Target) -> Option<Box<dyn Projector>> {
        Some(Box::new(PriceLookups::new(target)))
    }

    async fn apply(&self, conn: &mut PgConnection, events: &[StoredEvent]) -> anyhow::Result<()> {
        let mut items = Vec::new();
        for e in events.iter().filter(|e| e.aggregate_type == PRICE_LOOKUP) {
            let id: Uuid = e.aggregate_id.parse()?;
            let event = decode_event(&e.event_type, &e.event_version, &e.payload).map_err(|err| {
                anyhow::anyhow!("price lookup {} event {} ({}): {err}", e.aggregate_id, e.sequence, e.event_type)
            })?;
            items.push((e, id, event));
        }
        if items.is_empty() {
            return Ok(());
        }
        let table = self.target.table("rm_price_lookups");
        let keys: Vec<Uuid> = items.iter().map(|(_, id, _)| *id).collect();
        let mut rows: HashMap<Uuid, PriceLookupRow> =
            rows::load(conn, &table, "id", &keys, |r: &PriceLookupRow| r.id).await?;
        let mut touched = Vec::new();
        let mut changes = Vec::new();
        for (e, id, event) in items {
            let row = rows
                .entry(id)
                .or_insert_with(|| PriceLookupRow::new(id, e.tenant_id.unwrap_or_default(), e.recorded_at));
            if e.sequence > row.last_sequence {
                row.apply(&event, e.recorded_at, e.sequence)?;
            }
            touched.push(id);
            changes.push(Change {
                tenant_id: row.tenant_id,
                entity: "price_lookup",
                entity_id: id,
                conversation_id: row.conversation_ids.first().copied(),
                change: "updated",
                position: e.position().to_string(),
            });
        }
        touched.sort();
        touched.dedup();
        let out: Vec<&PriceLookupRow> = touched.iter().filter_map(|id| rows.get(id)).collect();
        rows::upsert(conn, &table, &["id"], rows::columns::<PriceLookupRow>(), &out).await?;
        record_changes(conn, self.target, &changes).await
    }
}

/// Every price-lookup projector, writing into `target`.
pub fn all(target: Target) -> Vec<Box<dyn Projector>> {
    vec![Box::new(PriceLookups::new(target))]
}
