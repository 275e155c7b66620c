//! The read model of vehicle lookups (`rm_vehicle_lookups`): status, rounds, attempts, reasons,
//! the answer, confirmations and a history of everything that happened, with evidence references.
//!
//! A row appears with the conversation's `VehicleLookupRequested` (so the dashboard shows a lookup
//! as soon as it is asked for) and follows the lookup aggregate's own events from then on.

use std::collections::HashMap;

use aisales_domain::conversation::ConversationEvent as CE;
use aisales_domain::vehicle_lookup::{EvidenceRef, VehicleLookupEvent as E};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::conversation::{CONVERSATION, Change, record_changes};
use crate::events::StoredEvent;
use crate::projector::{Projector, Target};
use crate::rows;

/// Aggregate type of vehicle lookups in the event log.
pub const VEHICLE_LOOKUP: &str = "vehicle_lookup";

/// Reads one stored vehicle-lookup event, upcasting older versions.
pub fn decode_event(event_type: &str, version: &str, payload: &str) -> anyhow::Result<E> {
    Ok(<E as aisales_domain::codec::EventSchema>::decode(event_type, version, payload)?)
}

/// One entry of a lookup's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    /// `requested`, `request_merged`, `started`, `completed`, `not_found`, `retry_scheduled`,
    /// `failed`, `retry_requested`, `id_corrected`, `gearbox_confirmed`, `price_lookup_wanted`.
    pub event: String,
    pub round: Option<u32>,
    pub attempt: Option<u32>,
    /// Why (failures, retries), or what (the answer's status, the corrected id, …).
    pub detail: Option<String>,
    pub actor: Option<String>,
    #[serde(default)]
    pub evidence: Vec<EvidenceRef>,
}

/// A row of `rm_vehicle_lookups`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LookupRow {
    pub lookup_id: Uuid,
    pub tenant_id: Uuid,
    pub conversation_id: Option<Uuid>,
    pub message_id: Option<Uuid>,
    pub id_type: String,
    pub value: String,
    pub status: String,
    pub result_status: Option<String>,
    pub request_source: Option<String>,
    pub requested_by: Option<String>,
    pub round: i32,
    pub attempts: i32,
    pub attempts_total: i32,
    pub last_error: Option<String>,
    pub retry_at: Option<DateTime<Utc>>,
    pub result: Option<Value>,
    pub verification: String,
    pub confirmed: Option<Value>,
    pub price_lookup_wanted: Value,
    pub history: Vec<HistoryEntry>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub last_sequence: i64,
}

const COLUMNS: &[&str] = &[
    "lookup_id",
    "tenant_id",
    "conversation_id",
    "message_id",
    "id_type",
    "value",
    "status",
    "result_status",
    "request_source",
    "requested_by",
    "round",
    "attempts",
    "attempts_total",
    "last_error",
    "retry_at",
    "result",
    "verification",
    "confirmed",
    "price_lookup_wanted",
    "history",
    "created_at",
    "updated_at",
    "completed_at",
    "last_sequence",
];

impl LookupRow {
    fn new(lookup_id: Uuid, tenant_id: Uuid, at: DateTime<Utc>) -> Self {
        LookupRow {
            lookup_id,
            tenant_id,
            conversation_id: None,
            message_id: None,
            id_type: String::new(),
            value: String::new(),
            status: "requested".into(),
            result_status: None,
            request_source: None,
            requested_by: None,
            round: 0,
            attempts: 0,
            attempts_total: 0,
            last_error: None,
            retry_at: None,
            result: None,
            verification: "none".into(),
            confirmed: None,
            price_lookup_wanted: Value::Array(vec![]),
            history: Vec::new(),
            created_at: at,
            updated_at: at,
            completed_at: None,
            last_sequence: 0,
        }
    }

    fn log(
        &mut self,
        at: DateTime<Utc>,
        event: &str,
        round: Option<u32>,
        attempt: Option<u32>,
        detail: Option<String>,
    ) {
        self.history.push(HistoryEntry {
            at,
            event: event.into(),
            round,
            attempt,
            detail,
            actor: None,
            evidence: Vec::new(),
        });
    }

    /// Applies one lookup event.
    pub fn apply(&mut self, event: &E, at: DateTime<Utc>, sequence: i64, actor: Option<String>) -> anyhow::Result<()> {
        self.updated_at = at;
        self.last_sequence = sequence;
        let before = self.history.len();
        let mut evidence: Vec<EvidenceRef> = Vec::new();
        match event {
            E::LookupRequested { round, conversation_id, message_id, id_type, value, source, requested_by, .. } => {
                self.status = "requested".into();
                if self.conversation_id.is_none() {
                    self.conversation_id = *conversation_id;
                }
                if message_id.is_some() {
                    self.message_id = *message_id;
                }
                self.id_type = id_type.as_str().into();
                self.value = value.clone();
                self.request_source = Some(source.as_str().into());
                self.requested_by = Some(requested_by.clone());
                self.round = *round as i32;
                self.attempts = 0;
                self.retry_at = None;
                self.completed_at = None;
                self.log(at, "requested", Some(*round), None, Some(format!("{} by {requested_by}", source.as_str())));
            }
            E::LookupRequestMerged { requested_by, status, .. } => self.log(
                at,
                "request_merged",
                None,
                None,
                Some(format!("asked again by {requested_by} while {}", status.as_str())),
            ),
            E::LookupStarted { round, attempt, .. } => {
                self.status = "started".into();
                self.attempts = *attempt as i32;
                self.attempts_total += 1;
                self.retry_at = None;
                self.log(at, "started", Some(*round), Some(*attempt), None);
            }
            E::LookupCompleted { round, attempt, result, .. } => {
                self.status = "completed".into();
                self.result_status = Some(result.status.as_str().into());
                self.result = Some(serde_json::to_value(result)?);
                self.completed_at = Some(at);
                self.last_error = None;
                self.retry_at = None;
                evidence.clone_from(&result.evidence);
                let how = if result.from_cache { " (from cache)" } else { "" };
                let note = result.note.as_deref().map(|n| format!(": {n}")).unwrap_or_default();
                // Without an OEM: where the search for it stopped and why.
                let stop = result
                    .gearbox
                    .oem_search
                    .as_ref()
                    .and_then(|s| s.summary())
                    .map(|s| format!("; OEM not found: {s}"))
                    .unwrap_or_default();
                self.log(
                    at,
                    "completed",
                    Some(*round),
                    Some(*attempt),
                    Some(format!("{} via {}{how}{note}{stop}", result.status.as_str(), result.source)),
                );
            }
            E::LookupNotFound { round, attempt, result, .. } => {
                self.status = "not_found".into();
                self.result_status = None;
                let mut v = serde_json::to_value(result)?;
                v["status"] = json!("NOT_FOUND");
                self.result = Some(v);
                self.completed_at = Some(at);
                self.last_error = None;
                self.retry_at = None;
                evidence.clone_from(&result.evidence);
                let how = if result.from_cache { " (from cache)" } else { "" };
                self.log(
                    at,
                    "not_found",
                    Some(*round),
                    Some(*attempt),
                    Some(format!("not found at {}{how}", result.sources_tried.join(", "))),
                );
            }
            E::LookupRetryScheduled { round, attempt, retry_at, reason, evidence: e } => {
                self.status = "retry_scheduled".into();
                self.retry_at = Some(*retry_at);
                self.last_error = Some(reason.clone());
                evidence.clone_from(e);
                self.log(at, "retry_scheduled", Some(*round), Some(*attempt), Some(reason.clone()));
            }
            E::LookupFailed { round, attempts, reason, evidence: e, .. } => {
                self.status = "failed".into();
                self.result_status = None;
                self.last_error = Some(reason.clone());
                self.completed_at = Some(at);
                self.retry_at = None;
                evidence.clone_from(e);
                self.log(at, "failed", Some(*round), Some(*attempts), Some(reason.clone()));
            }
            E::LookupRetryRequested { round, requested_by, .. } => {
                self.status = "requested".into();
                self.round = *round as i32;
                self.attempts = 0;
                self.completed_at = None;
                self.log(at, "retry_requested", Some(*round), None, Some(format!("by {requested_by}")));
            }
            E::LookupIdCorrected { round, id_type, previous_value, value, corrected_by, .. } => {
                self.status = "requested".into();
                self.round = *round as i32;
                self.attempts = 0;
                self.completed_at = None;
                self.id_type = id_type.as_str().into();
                self.value = value.clone();
                self.log(
                    at,
                    "id_corrected",
                    Some(*round),
                    None,
                    Some(format!("{previous_value} → {value} by {corrected_by}")),
                );
            }
            E::GearboxConfirmed { model, oem, factory_code, verification, note, confirmed_by, .. } => {
                self.verification = verification.as_str().into();
                self.confirmed = Some(json!({
                    "model": model,
                    "oem": oem,
                    "factory_code": factory_code,
                    "verification": verification.as_str(),
                    "note": note,
                    "confirmed_by": confirmed_by,
                    "confirmed_at": at,
                }));
                let oem = oem.as_deref().map(|o| format!(", OEM {o}")).unwrap_or_default();
                self.log(
                    at,
                    "gearbox_confirmed",
                    None,
                    None,
                    Some(format!("{model}{oem}: {} (by {confirmed_by})", verification.as_str())),
                );
            }
            E::PriceLookupWanted { oem, model, origin } => {
                if let Value::Array(items) = &mut self.price_lookup_wanted {
                    items.push(json!({ "oem": oem, "model": model, "origin": origin, "at": at }));
                }
                self.log(at, "price_lookup_wanted", None, None, Some(oem.clone()));
            }
        }
        for entry in &mut self.history[before..] {
            entry.actor.clone_from(&actor);
            entry.evidence.clone_from(&evidence);
        }
        Ok(())
    }
}

fn actor_of(metadata: &str) -> Option<String> {
    serde_json::from_str::<HashMap<String, String>>(metadata).ok().and_then(|m| m.get("actor").cloned())
}

/// Projector of `rm_vehicle_lookups`.
pub struct VehicleLookups {
    target: Target,
    name: &'static str,
}

impl VehicleLookups {
    pub fn new(target: Target) -> Self {
        VehicleLookups { target, name: target.name("vehicle_lookups") }
    }
}

/// What one stored event means for the lookup rows.
enum Relevant {
    Asked { lookup_id: Uuid, conversation_id: Uuid, message_id: Option<Uuid>, id_type: String, value: String },
    Lookup { lookup_id: Uuid, event: Box<E> },
}

fn relevant(e: &StoredEvent) -> anyhow::Result<Option<Relevant>> {
    Ok(match e.aggregate_type.as_str() {
        CONVERSATION if e.event_type == "VehicleLookupRequested" => {
            match <aisales_domain::conversation::ConversationEvent as aisales_domain::codec::EventSchema>::decode(
                &e.event_type,
                &e.event_version,
                &e.payload,
            )? {
                CE::VehicleLookupRequested { lookup_id, message_id, id_type, value, .. } => Some(Relevant::Asked {
                    lookup_id,
                    conversation_id: e.aggregate_id.parse()?,
                    message_id,
                    id_type: id_type.as_str().into(),
                    value,
                }),
                _ => None,
            }
        }
        VEHICLE_LOOKUP => Some(Relevant::Lookup {
            lookup_id: e.aggregate_id.parse()?,
            event: Box::new(decode_event(&e.event_type, &e.event_version, &e.payload).map_err(|err| {
                anyhow::anyhow!("vehicle lookup {} event {} ({}): {err}", e.aggregate_id, e.sequence, e.event_type)
            })?),
        }),
        _ => None,
    })
}

#[async_trait]
impl Projector for VehicleLookups {
    fn name(&self) -> &'static str {
        self.name
    }
    fn description(&self) -> &'static str {
        "vehicle lookups: status, rounds, attempts, reasons, answer, evidence references"
    }
    fn tables(&self) -> &'static [&'static str] {
        &["rm_vehicle_lookups"]
    }
    fn generation(&self, target: Target) -> Option<Box<dyn Projector>> {
        Some(Box::new(VehicleLookups::new(target)))
    }

    async fn apply(&self, conn: &mut PgConnection, events: &[StoredEvent]) -> anyhow::Result<()> {
        let mut items = Vec::new();
        for e in events {
            if let Some(r) = relevant(e)? {
                items.push((e, r));
            }
        }
        if items.is_empty() {
            return Ok(());
        }
        let table = self.target.table("rm_vehicle_lookups");
        let keys: Vec<Uuid> = items
            .iter()
            .map(|(_, r)| match r {
                Relevant::Asked { lookup_id, .. } | Relevant::Lookup { lookup_id, .. } => *lookup_id,
            })
            .collect();
        let mut rows: HashMap<Uuid, LookupRow> =
            rows::load(conn, &table, "lookup_id", &keys, |r: &LookupRow| r.lookup_id).await?;
        let mut touched: Vec<Uuid> = Vec::new();
        let mut changes = Vec::new();
        for (e, r) in items {
            let tenant = e.tenant_id.unwrap_or_default();
            let id = match r {
                Relevant::Asked { lookup_id, conversation_id, message_id, id_type, value } => {
                    rows.entry(lookup_id).or_insert_with(|| {
                        let mut row = LookupRow::new(lookup_id, tenant, e.recorded_at);
                        row.conversation_id = Some(conversation_id);
                        row.message_id = message_id;
                        row.id_type = id_type;
                        row.value = value;
                        row
                    });
                    lookup_id
                }
                Relevant::Lookup { lookup_id, event } => {
                    let row = rows.entry(lookup_id).or_insert_with(|| LookupRow::new(lookup_id, tenant, e.recorded_at));
                    if e.sequence > row.last_sequence {
                        row.apply(&event, e.recorded_at, e.sequence, actor_of(&e.metadata))?;
                    }
                    lookup_id
                }
            };
            touched.push(id);
            if let Some(row) = rows.get(&id) {
                changes.push(Change {
                    tenant_id: row.tenant_id,
                    entity: "vehicle_lookup",
                    entity_id: id,
                    conversation_id: row.conversation_id,
                    change: "updated",
                    position: e.position().to_string(),
                });
            }
        }
        touched.sort();
        touched.dedup();
        let out: Vec<&LookupRow> = touched.iter().filter_map(|id| rows.get(id)).collect();
        rows::upsert(conn, &table, &["lookup_id"], COLUMNS, &out).await?;
        record_changes(conn, self.target, &changes).await
    }
}

impl LookupRow {
    /// A part of the recorded answer (`["gearbox", "oem"]`, …); `None` when absent or null.
    pub fn result_at(&self, path: &[&str]) -> Option<&Value> {
        let mut v = self.result.as_ref()?;
        for p in path {
            v = v.get(*p)?;
        }
        (!v.is_null()).then_some(v)
    }

    /// The step that stopped the search for the gearbox OEM (model-only answers), with why.
    pub fn oem_failure(&self) -> Option<&Value> {
        self.result_at(&["gearbox", "oem_search", "failure"])
    }
}

/// Every vehicle-lookup projector, writing into `target`.
pub fn all(target: Target) -> Vec<Box<dyn Projector>> {
    vec![Box::new(VehicleLookups::new(target))]
}

#[cfg(test)]
mod tests {
    use aisales_domain::vehicle_lookup::{
        GearboxInfo, LookupResult, OemFailureKind, OemSearch, OemStepFailure, ResultStatus, VehicleMeta,
    };

    use super::*;

    fn completed(gearbox: GearboxInfo) -> E {
        E::LookupCompleted {
            round: 1,
            attempt: 1,
            conversation_id: None,
            completed_at: Utc::now(),
            result: LookupResult {
                status: if gearbox.oem.is_some() { ResultStatus::Found } else { ResultStatus::ModelOnly },
                vehicle: VehicleMeta::default(),
                gearbox,
                source: "podzamenu".into(),
                decoder: None,
                confidence: 0.8,
                from_cache: false,
                note: None,
                evidence: vec![],
            },
        }
    }

    #[test]
    fn a_model_only_answer_shows_the_step_that_stopped_the_oem_search() {
        let mut row = LookupRow::new(Uuid::nil(), Uuid::nil(), Utc::now());
        let gearbox = GearboxInfo {
            model: Some("F1CJA".into()),
            oem_search: Some(Box::new(OemSearch {
                site: "podzamenu".into(),
                paths: vec![],
                failure: Some(OemStepFailure {
                    kind: OemFailureKind::SiteError,
                    step: "podzamenu.nav.accordion.link".into(),
                    reason: "site error after clicking \"Коробка передач\": Сервис временно недоступен".into(),
                    transient: true,
                    attempts: 3,
                }),
            })),
            ..GearboxInfo::default()
        };
        row.apply(&completed(gearbox), Utc::now(), 1, None).unwrap();
        let v = row.oem_failure().unwrap();
        assert_eq!(v["kind"], "site_error");
        assert_eq!(v["step"], "podzamenu.nav.accordion.link");
        assert_eq!(v["attempts"], 3);
        let detail = row.history[0].detail.as_deref().unwrap();
        assert!(
            detail.starts_with(
                "MODEL_ONLY via podzamenu; OEM not found: site_error at podzamenu.nav.accordion.link, 3 tries"
            ),
            "{detail}"
        );

        // Answers recorded before the trail existed read as before.
        let mut old = LookupRow::new(Uuid::nil(), Uuid::nil(), Utc::now());
        old.apply(
            &completed(GearboxInfo { model: Some("F1CJA".into()), ..GearboxInfo::default() }),
            Utc::now(),
            1,
            None,
        )
        .unwrap();
        assert!(old.oem_failure().is_none());
        assert_eq!(old.history[0].detail.as_deref(), Some("MODEL_ONLY via podzamenu"));
    }
}
