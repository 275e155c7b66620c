//! The dashboard's read models of conversations, one projector (and table) each: the
//! conversation list, messages, the suggestion queue, escalations, customers and daily
//! statistics. Each applies a whole batch in memory and writes it back with one upsert per table.

use std::collections::{HashMap, HashSet};

use aisales_domain::conversation::{ConversationEvent as E, Decision, DeliveryStatus, ReplyOrigin, Status};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::events::StoredEvent;
use crate::projector::{Projector, Target};
use crate::rows;

/// Aggregate type of conversations in the event log.
pub const CONVERSATION: &str = "conversation";

/// A decoded conversation event with what projectors need from its envelope.
pub struct Decoded<'a> {
    pub conversation_id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub sequence: i64,
    pub recorded_at: DateTime<Utc>,
    pub position: String,
    pub event: &'a E,
    metadata: &'a str,
}

impl Decoded<'_> {
    /// The `actor` of the event's metadata (`user:…`, `token:…`, `customer`, `system`, …).
    pub fn actor(&self) -> Option<String> {
        serde_json::from_str::<HashMap<String, String>>(self.metadata).ok().and_then(|m| m.get("actor").cloned())
    }
}

/// The conversation event a stored event holds, decoded once for every projector that reads it.
pub fn event_of(e: &StoredEvent) -> anyhow::Result<&E> {
    e.decoded(|e| {
        decode_event(&e.event_type, &e.event_version, &e.payload).map_err(|err| {
            anyhow::anyhow!(
                "conversation {} event {} ({} v{}): {err}",
                e.aggregate_id,
                e.sequence,
                e.event_type,
                e.event_version
            )
        })
    })
}

/// Decodes the conversation events of a batch (other aggregates are skipped). An event that cannot
/// be read is an error: a projector never skips what it does not understand.
pub fn decode(events: &[StoredEvent]) -> anyhow::Result<Vec<Decoded<'_>>> {
    let mut out = Vec::with_capacity(events.len());
    for e in events.iter().filter(|e| e.aggregate_type == CONVERSATION) {
        let event = event_of(e)?;
        out.push(Decoded {
            conversation_id: e.aggregate_id.parse()?,
            tenant_id: e.tenant_id,
            sequence: e.sequence,
            recorded_at: e.recorded_at,
            position: e.position().to_string(),
            event,
            metadata: &e.metadata,
        });
    }
    Ok(out)
}

/// Reads one stored conversation event, upcasting older versions.
pub fn decode_event(event_type: &str, version: &str, payload: &str) -> anyhow::Result<E> {
    Ok(<E as aisales_domain::codec::EventSchema>::decode(event_type, version, payload)?)
}

fn preview(text: &str) -> String {
    let t: String = text.chars().take(140).collect();
    t.replace('\n', " ")
}

fn ids<T: Copy + Eq + std::hash::Hash>(items: impl Iterator<Item = T>) -> Vec<T> {
    let set: HashSet<T> = items.collect();
    set.into_iter().collect()
}

/// One change of a read model, for the live-update feed.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub tenant_id: Uuid,
    pub entity: &'static str,
    pub entity_id: Uuid,
    pub conversation_id: Option<Uuid>,
    pub change: &'static str,
    pub position: String,
}

/// Writes one change row per touched entity and wakes the live-update listeners.
pub(crate) async fn record_changes(conn: &mut PgConnection, target: Target, changes: &[Change]) -> anyhow::Result<()> {
    if !target.is_live() || changes.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO read_model_changes (tenant_id, entity, entity_id, conversation_id, change, position) \
         SELECT tenant_id, entity, entity_id, conversation_id, change, position \
           FROM jsonb_to_recordset($1::jsonb) AS x(tenant_id uuid, entity text, entity_id uuid, conversation_id uuid, change text, position text)",
    )
    .bind(serde_json::to_string(changes)?)
    .execute(&mut *conn)
    .await?;
    sqlx::query("SELECT pg_notify('read_model_changes', '')").execute(conn).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Conversation list

/// A row of `rm_conversations`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationRow {
    pub conversation_id: Uuid,
    pub tenant_id: Uuid,
    pub channel: String,
    pub account_id: Uuid,
    pub chat_id: String,
    pub customer_id: Uuid,
    pub customer_name: Option<String>,
    pub customer_phone: Option<String>,
    pub status: String,
    pub muted: bool,
    pub assigned_operator: Option<String>,
    pub last_message_preview: Option<String>,
    pub last_message_at: Option<DateTime<Utc>>,
    pub last_message_direction: Option<String>,
    pub unread_count: i32,
    pub pending_suggestions: i32,
    pub messages_count: i32,
    pub awaiting_reply_since: Option<DateTime<Utc>>,
    pub vehicle: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_sequence: i64,
    pub search_text: String,
}

const CONVERSATION_COLUMNS: &[&str] = &[
    "conversation_id",
    "tenant_id",
    "channel",
    "account_id",
    "chat_id",
    "customer_id",
    "customer_name",
    "customer_phone",
    "status",
    "muted",
    "assigned_operator",
    "last_message_preview",
    "last_message_at",
    "last_message_direction",
    "unread_count",
    "pending_suggestions",
    "messages_count",
    "awaiting_reply_since",
    "vehicle",
    "created_at",
    "updated_at",
    "last_sequence",
    "search_text",
];

impl ConversationRow {
    fn refresh_search(&mut self) {
        self.search_text = format!(
            "{} {} {} {}",
            self.customer_name.as_deref().unwrap_or_default(),
            self.customer_phone.as_deref().unwrap_or_default(),
            self.chat_id,
            self.last_message_preview.as_deref().unwrap_or_default()
        )
        .to_lowercase();
    }

    /// Applies one event (the row exists from `ConversationStarted` on).
    pub fn apply(&mut self, d: &Decoded) {
        self.last_sequence = d.sequence;
        self.updated_at = d.recorded_at;
        match d.event {
            E::ConversationStarted { .. } => {}
            E::MessageReceived { text, received_at, sender_name, .. } => {
                self.messages_count += 1;
                self.unread_count += 1;
                self.last_message_preview = Some(preview(text));
                self.last_message_at = Some(*received_at);
                self.last_message_direction = Some("in".into());
                if self.customer_name.is_none() {
                    self.customer_name = sender_name.clone();
                }
                if self.awaiting_reply_since.is_none() {
                    self.awaiting_reply_since = Some(*received_at);
                }
            }
            E::ReplyQueued { text, .. } => {
                self.messages_count += 1;
                self.last_message_preview = Some(preview(text));
                self.last_message_at = Some(d.recorded_at);
                self.last_message_direction = Some("out".into());
            }
            E::OperatorReplied { .. } => self.unread_count = 0,
            E::ReplySent { .. } => self.awaiting_reply_since = None,
            E::SuggestionGenerated { .. } => self.pending_suggestions += 1,
            E::SuggestionApproved { .. }
            | E::SuggestionEdited { .. }
            | E::SuggestionRejected { .. }
            | E::SuggestionSuperseded { .. } => self.pending_suggestions = (self.pending_suggestions - 1).max(0),
            E::StatusChanged { to, .. } => self.status = to.as_str().to_string(),
            E::ConversationMuted { muted } => self.muted = *muted,
            E::OperatorAssigned { operator } => self.assigned_operator = operator.clone(),
            E::ConversationRead => self.unread_count = 0,
            E::VehicleLookupRequested { lookup_id, id_type, value, .. } => {
                let mut v = match self.vehicle.take() {
                    // Asked again: keep what is known until the new answer comes.
                    Some(old) if old["lookup_id"] == serde_json::json!(lookup_id) => old,
                    _ => serde_json::json!({ "lookup_id": lookup_id, "id_type": id_type, "value": value }),
                };
                v["lookup_status"] = serde_json::json!("requested");
                self.vehicle = Some(v);
            }
            E::VehicleDataAttached { lookup_id, data, .. } => {
                let mut v = serde_json::to_value(data).unwrap_or_default();
                v["lookup_id"] = serde_json::json!(lookup_id);
                v["lookup_status"] = serde_json::json!(match data.status {
                    aisales_domain::vehicle_lookup::VehicleDataStatus::NotFound => "not_found",
                    _ => "completed",
                });
                self.vehicle = Some(v);
            }
            E::VehicleLookupFailed { lookup_id, id_type, value, reason, .. } => {
                let mut v = match self.vehicle.take() {
                    Some(old) if old["lookup_id"] == serde_json::json!(lookup_id) => old,
                    _ => serde_json::json!({ "lookup_id": lookup_id, "id_type": id_type, "value": value }),
                };
                v["lookup_status"] = serde_json::json!("failed");
                v["failure_reason"] = serde_json::json!(reason);
                self.vehicle = Some(v);
            }
            _ => {}
        }
        self.refresh_search();
    }

    fn start(d: &Decoded) -> Option<ConversationRow> {
        let E::ConversationStarted {
            tenant_id,
            channel,
            account_id,
            chat_id,
            customer_id,
            customer_name,
            customer_phone,
            started_at,
        } = d.event
        else {
            return None;
        };
        Some(ConversationRow {
            conversation_id: d.conversation_id,
            tenant_id: *tenant_id,
            channel: channel.as_str().into(),
            account_id: *account_id,
            chat_id: chat_id.clone(),
            customer_id: *customer_id,
            customer_name: customer_name.clone(),
            customer_phone: customer_phone.clone(),
            status: Status::Open.as_str().into(),
            muted: false,
            assigned_operator: None,
            last_message_preview: None,
            last_message_at: None,
            last_message_direction: None,
            unread_count: 0,
            pending_suggestions: 0,
            messages_count: 0,
            awaiting_reply_since: None,
            vehicle: None,
            created_at: *started_at,
            updated_at: d.recorded_at,
            last_sequence: d.sequence,
            search_text: String::new(),
        })
    }
}

/// Projector of `rm_conversations`.
pub struct ConversationList {
    target: Target,
    name: &'static str,
}

impl ConversationList {
    pub fn new(target: Target) -> Self {
        ConversationList { target, name: target.name("conversations") }
    }
}

#[async_trait]
impl Projector for ConversationList {
    fn name(&self) -> &'static str {
        self.name
    }
    fn description(&self) -> &'static str {
        "conversation list: status, customer, last message, unread, pending suggestions"
    }
    fn tables(&self) -> &'static [&'static str] {
        &["rm_conversations"]
    }
    fn generation(&self, target: Target) -> Option<Box<dyn Projector>> {
        Some(Box::new(ConversationList::new(target)))
    }

    async fn apply(&self, conn: &mut PgConnection, events: &[StoredEvent]) -> anyhow::Result<()> {
        let decoded = decode(events)?;
        if decoded.is_empty() {
            return Ok(());
        }
        let table = self.target.table("rm_conversations");
        let keys = ids(decoded.iter().map(|d| d.conversation_id));
        let mut rows: HashMap<Uuid, ConversationRow> =
            rows::load(conn, &table, "conversation_id", &keys, |r: &ConversationRow| r.conversation_id).await?;
        let mut touched: HashMap<Uuid, String> = HashMap::new();
        for d in &decoded {
            if let Some(row) = ConversationRow::start(d) {
                rows.entry(d.conversation_id).or_insert(row);
            }
            match rows.get_mut(&d.conversation_id) {
                Some(row) if d.sequence > row.last_sequence || matches!(d.event, E::ConversationStarted { .. }) => {
                    row.apply(d)
                }
                Some(_) => {}
                None => anyhow::bail!("conversation {} has events before it started", d.conversation_id),
            }
            touched.insert(d.conversation_id, d.position.clone());
        }
        let out: Vec<&ConversationRow> = touched.keys().filter_map(|id| rows.get(id)).collect();
        rows::upsert(conn, &table, &["conversation_id"], CONVERSATION_COLUMNS, &out).await?;
        let changes: Vec<_> = touched
            .iter()
            .filter_map(|(id, pos)| {
                rows.get(id).map(|r| Change {
                    tenant_id: r.tenant_id,
                    entity: "conversation",
                    entity_id: *id,
                    conversation_id: Some(*id),
                    change: "updated",
                    position: pos.clone(),
                })
            })
            .collect();
        record_changes(conn, self.target, &changes).await
    }
}

// ---------------------------------------------------------------------------------------------
// Messages

/// A row of `rm_messages`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRow {
    pub message_id: Uuid,
    pub tenant_id: Uuid,
    pub conversation_id: Uuid,
    pub direction: String,
    pub author: String,
    pub text: String,
    pub attachments: serde_json::Value,
    pub provider_message_id: Option<String>,
    pub suggestion_id: Option<Uuid>,
    pub status: String,
    pub failure_reason: Option<String>,
    pub actor: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub sequence: i64,
}

const MESSAGE_COLUMNS: &[&str] = &[
    "message_id",
    "tenant_id",
    "conversation_id",
    "direction",
    "author",
    "text",
    "attachments",
    "provider_message_id",
    "suggestion_id",
    "status",
    "failure_reason",
    "actor",
    "created_at",
    "sent_at",
    "delivered_at",
    "sequence",
];

/// Projector of `rm_messages`.
pub struct Messages {
    target: Target,
    name: &'static str,
}

impl Messages {
    pub fn new(target: Target) -> Self {
        Messages { target, name: target.name("messages") }
    }
}

fn reply_id_of(e: &E) -> Option<Uuid> {
    match e {
        E::ReplySendStarted { reply_id, .. }
        | E::ReplySent { reply_id, .. }
        | E::ReplySendRetryScheduled { reply_id, .. }
        | E::ReplyFailed { reply_id, .. }
        | E::ReplyRetryRequested { reply_id }
        | E::ReplyDelivered { reply_id, .. } => Some(*reply_id),
        _ => None,
    }
}

#[async_trait]
impl Projector for Messages {
    fn name(&self) -> &'static str {
        self.name
    }
    fn description(&self) -> &'static str {
        "messages of every conversation, both directions, with delivery status"
    }
    fn tables(&self) -> &'static [&'static str] {
        &["rm_messages"]
    }
    fn generation(&self, target: Target) -> Option<Box<dyn Projector>> {
        Some(Box::new(Messages::new(target)))
    }

    async fn apply(&self, conn: &mut PgConnection, events: &[StoredEvent]) -> anyhow::Result<()> {
        let decoded = decode(events)?;
        let table = self.target.table("rm_messages");
        let referenced = ids(decoded.iter().filter_map(|d| reply_id_of(d.event)));
        let mut rows: HashMap<Uuid, MessageRow> =
            rows::load(conn, &table, "message_id", &referenced, |r: &MessageRow| r.message_id).await?;
        let mut touched: Vec<Uuid> = Vec::new();
        let mut changes = Vec::new();
        for d in &decoded {
            let tenant = d.tenant_id.unwrap_or_default();
            let (id, change) = match d.event {
                E::MessageReceived { message_id, provider_message_id, text, attachments, received_at, .. } => {
                    rows.insert(
                        *message_id,
                        MessageRow {
                            message_id: *message_id,
                            tenant_id: tenant,
                            conversation_id: d.conversation_id,
                            direction: "in".into(),
                            author: "customer".into(),
                            text: text.clone(),
                            attachments: serde_json::to_value(attachments)?,
                            provider_message_id: Some(provider_message_id.clone()),
                            suggestion_id: None,
                            status: "received".into(),
                            failure_reason: None,
                            actor: None,
                            created_at: *received_at,
                            sent_at: None,
                            delivered_at: None,
                            sequence: d.sequence,
                        },
                    );
                    (*message_id, "created")
                }
                E::ReplyQueued { reply_id, suggestion_id, text, origin, .. } => {
                    let author = match origin {
                        ReplyOrigin::Operator => "operator",
                        ReplyOrigin::Auto => "auto",
                        ReplyOrigin::Suggestion | ReplyOrigin::Edited => "assistant",
                    };
                    rows.insert(
                        *reply_id,
                        MessageRow {
                            message_id: *reply_id,
                            tenant_id: tenant,
                            conversation_id: d.conversation_id,
                            direction: "out".into(),
                            author: author.into(),
                            text: text.clone(),
                            attachments: serde_json::Value::Array(vec![]),
                            provider_message_id: None,
                            suggestion_id: *suggestion_id,
                            status: "queued".into(),
                            failure_reason: None,
                            actor: d.actor(),
                            created_at: d.recorded_at,
                            sent_at: None,
                            delivered_at: None,
                            sequence: d.sequence,
                        },
                    );
                    (*reply_id, "created")
                }
                other => {
                    let Some(reply_id) = reply_id_of(other) else { continue };
                    let Some(row) = rows.get_mut(&reply_id) else {
                        anyhow::bail!("reply {reply_id} of conversation {} was never queued", d.conversation_id)
                    };
                    match other {
                        E::ReplySendStarted { .. } => row.status = "sending".into(),
                        E::ReplySent { provider_message_id, sent_at, .. } => {
                            row.status = "sent".into();
                            row.provider_message_id = Some(provider_message_id.clone());
                            row.sent_at = Some(*sent_at);
                            row.failure_reason = None;
                        }
                        E::ReplySendRetryScheduled { reason, .. } => {
                            row.status = "queued".into();
                            row.failure_reason = Some(reason.clone());
                        }
                        E::ReplyRetryRequested { .. } => row.status = "queued".into(),
                        E::ReplyFailed { reason, .. } => {
                            row.status = "failed".into();
                            row.failure_reason = Some(reason.clone());
                        }
                        E::ReplyDelivered { status, at, .. } => {
                            row.status = status.as_str().into();
                            if let DeliveryStatus::Failed { reason } = status {
                                row.failure_reason = Some(reason.clone());
                            }
                            row.delivered_at.get_or_insert(*at);
                        }
                        _ => {}
                    }
                    (reply_id, "updated")
                }
            };
            touched.push(id);
            changes.push(Change {
                tenant_id: tenant,
                entity: "message",
                entity_id: id,
                conversation_id: Some(d.conversation_id),
                change,
                position: d.position.clone(),
            });
        }
        let unique: HashSet<Uuid> = touched.into_iter().collect();
        let out: Vec<&MessageRow> = unique.iter().filter_map(|id| rows.get(id)).collect();
        rows::upsert(conn, &table, &["message_id"], MESSAGE_COLUMNS, &out).await?;
        record_changes(conn, self.target, &changes).await
    }
}

// ---------------------------------------------------------------------------------------------
// Suggestions

/// A row of `rm_suggestions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuggestionRow {
    pub suggestion_id: Uuid,
    pub tenant_id: Uuid,
    pub conversation_id: Uuid,
    pub request_id: Uuid,
    pub text: String,
    pub intent: String,
    pub confidence: f64,
    pub decision: String,
    pub explanations: serde_json::Value,
    pub source: String,
    pub model: Option<String>,
    pub autosend_block_reason: Option<String>,
    pub status: String,
    pub final_text: Option<String>,
    pub reply_id: Option<Uuid>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

const SUGGESTION_COLUMNS: &[&str] = &[
    "suggestion_id",
    "tenant_id",
    "conversation_id",
    "request_id",
    "text",
    "intent",
    "confidence",
    "decision",
    "explanations",
    "source",
    "model",
    "autosend_block_reason",
    "status",
    "final_text",
    "reply_id",
    "decided_by",
    "decided_at",
    "created_at",
];

/// Projector of `rm_suggestions`.
pub struct Suggestions {
    target: Target,
    name: &'static str,
}

impl Suggestions {
    pub fn new(target: Target) -> Self {
        Suggestions { target, name: target.name("suggestions") }
    }
}

fn suggestion_id_of(e: &E) -> Option<Uuid> {
    match e {
        E::SuggestionApproved { suggestion_id, .. }
        | E::SuggestionEdited { suggestion_id, .. }
        | E::SuggestionRejected { suggestion_id, .. }
        | E::SuggestionSuperseded { suggestion_id, .. } => Some(*suggestion_id),
        E::ReplyQueued { suggestion_id, .. } => *suggestion_id,
        _ => None,
    }
}

/// Applies one event to the suggestion rows; returns the id of the suggestion it touched.
pub fn apply_suggestion_event(rows: &mut HashMap<Uuid, SuggestionRow>, d: &Decoded) -> anyhow::Result<Option<Uuid>> {
    let tenant = d.tenant_id.unwrap_or_default();
    let id = match d.event {
        E::SuggestionGenerated {
            suggestion_id,
            request_id,
            text,
            intent,
            confidence,
            decision,
            explanations,
            source,
            model,
            autosend_block_reason,
        } => {
            rows.insert(
                *suggestion_id,
                SuggestionRow {
                    suggestion_id: *suggestion_id,
                    tenant_id: tenant,
                    conversation_id: d.conversation_id,
                    request_id: *request_id,
                    text: text.clone(),
                    intent: intent.clone(),
                    confidence: *confidence,
                    decision: decision.as_str().into(),
                    explanations: serde_json::to_value(explanations)?,
                    source: source.clone(),
                    model: model.clone(),
                    autosend_block_reason: autosend_block_reason.clone(),
                    status: "pending".into(),
                    final_text: None,
                    reply_id: None,
                    decided_by: None,
                    decided_at: None,
                    created_at: d.recorded_at,
                },
            );
            *suggestion_id
        }
        other => {
            let Some(id) = suggestion_id_of(other) else { return Ok(None) };
            let Some(row) = rows.get_mut(&id) else {
                anyhow::bail!("suggestion {id} of conversation {} was never generated", d.conversation_id)
            };
            let decided = |row: &mut SuggestionRow, status: &str| {
                row.status = status.into();
                row.decided_by = d.actor();
                row.decided_at = Some(d.recorded_at);
            };
            match other {
                E::SuggestionApproved { automatic, .. } => {
                    decided(row, if *automatic { "auto_sent" } else { "approved" })
                }
                E::SuggestionEdited { text, .. } => {
                    decided(row, "edited");
                    row.final_text = Some(text.clone());
                }
                E::SuggestionRejected { .. } => decided(row, "rejected"),
                E::SuggestionSuperseded { .. } => decided(row, "superseded"),
                E::ReplyQueued { reply_id, text, .. } => {
                    row.reply_id = Some(*reply_id);
                    row.final_text = Some(text.clone());
                }
                _ => {}
            }
            id
        }
    };
    Ok(Some(id))
}

#[async_trait]
impl Projector for Suggestions {
    fn name(&self) -> &'static str {
        self.name
    }
    fn description(&self) -> &'static str {
        "reply suggestions with intent, confidence, decision and the operator's verdict"
    }
    fn tables(&self) -> &'static [&'static str] {
        &["rm_suggestions"]
    }
    fn generation(&self, target: Target) -> Option<Box<dyn Projector>> {
        Some(Box::new(Suggestions::new(target)))
    }

    async fn apply(&self, conn: &mut PgConnection, events: &[StoredEvent]) -> anyhow::Result<()> {
        let decoded = decode(events)?;
        let table = self.target.table("rm_suggestions");
        let referenced = ids(decoded.iter().filter_map(|d| suggestion_id_of(d.event)));
        let mut rows: HashMap<Uuid, SuggestionRow> =
            rows::load(conn, &table, "suggestion_id", &referenced, |r: &SuggestionRow| r.suggestion_id).await?;
        let mut touched = HashSet::new();
        let mut changes = Vec::new();
        for d in &decoded {
            let tenant = d.tenant_id.unwrap_or_default();
            let Some(id) = apply_suggestion_event(&mut rows, d)? else { continue };
            touched.insert(id);
            changes.push(Change {
                tenant_id: tenant,
                entity: "suggestion",
                entity_id: id,
                conversation_id: Some(d.conversation_id),
                change: "updated",
                position: d.position.clone(),
            });
        }
        let out: Vec<&SuggestionRow> = touched.iter().filter_map(|id| rows.get(id)).collect();
        rows::upsert(conn, &table, &["suggestion_id"], SUGGESTION_COLUMNS, &out).await?;
        record_changes(conn, self.target, &changes).await
    }
}

// ---------------------------------------------------------------------------------------------
// Escalations

/// A row of `rm_escalations`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EscalationRow {
    pub conversation_id: Uuid,
    pub sequence: i64,
    pub tenant_id: Uuid,
    pub reason: String,
    pub suggestion_id: Option<Uuid>,
    pub actor: Option<String>,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_reason: Option<String>,
}

const ESCALATION_COLUMNS: &[&str] = &[
    "conversation_id",
    "sequence",
    "tenant_id",
    "reason",
    "suggestion_id",
    "actor",
    "status",
    "created_at",
    "closed_at",
    "closed_reason",
];

/// Projector of `rm_escalations`.
pub struct Escalations {
    target: Target,
    name: &'static str,
}

impl Escalations {
    pub fn new(target: Target) -> Self {
        Escalations { target, name: target.name("escalations") }
    }
}

#[async_trait]
impl Projector for Escalations {
    fn name(&self) -> &'static str {
        self.name
    }
    fn description(&self) -> &'static str {
        "escalations: why a conversation needed a person, and when it was handled"
    }
    fn tables(&self) -> &'static [&'static str] {
        &["rm_escalations"]
    }
    fn generation(&self, target: Target) -> Option<Box<dyn Projector>> {
        Some(Box::new(Escalations::new(target)))
    }

    async fn apply(&self, conn: &mut PgConnection, events: &[StoredEvent]) -> anyhow::Result<()> {
        let decoded = decode(events)?;
        let relevant: Vec<&Decoded> = decoded
            .iter()
            .filter(|d| {
                matches!(d.event, E::ConversationEscalated { .. } | E::StatusChanged { from: Status::Escalated, .. })
            })
            .collect();
        if relevant.is_empty() {
            return Ok(());
        }
        let table = self.target.table("rm_escalations");
        let convs = ids(relevant.iter().map(|d| d.conversation_id));
        let sql =
            format!("SELECT row_to_json(t)::text FROM {table} t WHERE conversation_id = ANY($1) AND status = 'open'");
        let mut open: HashMap<Uuid, EscalationRow> = HashMap::new();
        for text in sqlx::query_scalar::<_, String>(&sql).bind(&convs).fetch_all(&mut *conn).await? {
            let row: EscalationRow = serde_json::from_str(&text)?;
            open.insert(row.conversation_id, row);
        }
        let mut out: Vec<EscalationRow> = Vec::new();
        for d in relevant {
            match d.event {
                E::ConversationEscalated { reason, suggestion_id } => {
                    let row = EscalationRow {
                        conversation_id: d.conversation_id,
                        sequence: d.sequence,
                        tenant_id: d.tenant_id.unwrap_or_default(),
                        reason: reason.clone(),
                        suggestion_id: *suggestion_id,
                        actor: d.actor(),
                        status: "open".into(),
                        created_at: d.recorded_at,
                        closed_at: None,
                        closed_reason: None,
                    };
                    if let Some(prev) = open.insert(d.conversation_id, row) {
                        out.push(prev);
                    }
                }
                E::StatusChanged { to, reason, .. } => {
                    if let Some(mut row) = open.remove(&d.conversation_id) {
                        row.status = "closed".into();
                        row.closed_at = Some(d.recorded_at);
                        row.closed_reason = Some(format!("{}: {reason}", to.as_str()));
                        out.push(row);
                    }
                }
                _ => {}
            }
        }
        out.extend(open.into_values());
        rows::upsert(conn, &table, &["conversation_id", "sequence"], ESCALATION_COLUMNS, &out).await
    }
}

// ---------------------------------------------------------------------------------------------
// Customers

/// A row of `rm_customers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerRow {
    pub customer_id: Uuid,
    pub tenant_id: Uuid,
    pub channel: String,
    pub chat_id: String,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub aliases: Vec<String>,
    pub conversation_id: Uuid,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub messages_count: i32,
}

const CUSTOMER_COLUMNS: &[&str] = &[
    "customer_id",
    "tenant_id",
    "channel",
    "chat_id",
    "name",
    "phone",
    "aliases",
    "conversation_id",
    "first_seen_at",
    "last_seen_at",
    "messages_count",
];

/// Projector of `rm_customers`.
pub struct Customers {
    target: Target,
    name: &'static str,
}

impl Customers {
    pub fn new(target: Target) -> Self {
        Customers { target, name: target.name("customers") }
    }
}

#[async_trait]
impl Projector for Customers {
    fn name(&self) -> &'static str {
        self.name
    }
    fn description(&self) -> &'static str {
        "customers: channel identity, aliases, name, phone, activity"
    }
    fn tables(&self) -> &'static [&'static str] {
        &["rm_customers"]
    }
    fn generation(&self, target: Target) -> Option<Box<dyn Projector>> {
        Some(Box::new(Customers::new(target)))
    }

    /// New customers are inserted and messages counted in place (one `UPDATE` of deltas, no read
    /// of the rows); conversations whose customer gained an alias in the batch, which is rare, are
    /// loaded, changed in memory and written whole.
    async fn apply(&self, conn: &mut PgConnection, events: &[StoredEvent]) -> anyhow::Result<()> {
        let decoded = decode(events)?;
        let table = self.target.table("rm_customers");
        let aliased: HashSet<Uuid> = decoded
            .iter()
            .filter(|d| matches!(d.event, E::CustomerAliasLinked { .. }))
            .map(|d| d.conversation_id)
            .collect();
        let mut whole = Vec::new();
        let mut started = Vec::new();
        let mut seen: HashMap<Uuid, Seen> = HashMap::new();
        for d in &decoded {
            if aliased.contains(&d.conversation_id) {
                whole.push(d);
                continue;
            }
            if let Some(row) = CustomerRow::start(d) {
                started.push(row);
            } else if let E::MessageReceived { sender_name, received_at, .. } = d.event {
                seen.entry(d.conversation_id)
                    .and_modify(|s| {
                        s.messages += 1;
                        s.last_seen_at = s.last_seen_at.max(*received_at);
                        if s.name.is_none() {
                            s.name.clone_from(sender_name);
                        }
                    })
                    .or_insert_with(|| Seen { messages: 1, last_seen_at: *received_at, name: sender_name.clone() });
            }
        }
        // A conversation starts before its messages: its row is there for the update below.
        rows::insert_missing(conn, &table, &["customer_id"], CUSTOMER_COLUMNS, &started).await?;
        if !seen.is_empty() {
            let mut seen: Vec<(Uuid, Seen)> = seen.into_iter().collect();
            seen.sort_unstable_by_key(|(c, _)| *c);
            let conversations: Vec<Uuid> = seen.iter().map(|(c, _)| *c).collect();
            let messages: Vec<i32> = seen.iter().map(|(_, s)| s.messages).collect();
            // Cut to microseconds as the rows written whole are (`rows::upsert`).
            let last_seen: Vec<DateTime<Utc>> = seen.iter().map(|(_, s)| micros(s.last_seen_at)).collect();
            let names: Vec<Option<&str>> = seen.iter().map(|(_, s)| s.name.as_deref()).collect();
            let sql = format!(
                "UPDATE {table} c SET messages_count = c.messages_count + d.messages, \
                        last_seen_at = GREATEST(c.last_seen_at, d.last_seen_at), \
                        name = COALESCE(c.name, d.name) \
                   FROM UNNEST($1::uuid[], $2::int[], $3::timestamptz[], $4::text[]) AS d(conversation_id, messages, last_seen_at, name) \
                  WHERE c.conversation_id = d.conversation_id"
            );
            sqlx::query(&sql)
                .bind(&conversations)
                .bind(&messages)
                .bind(&last_seen)
                .bind(&names)
                .execute(&mut *conn)
                .await?;
        }
        if whole.is_empty() {
            return Ok(());
        }
        let convs = ids(whole.iter().map(|d| d.conversation_id));
        let mut rows: HashMap<Uuid, CustomerRow> =
            rows::load(conn, &table, "conversation_id", &convs, |r: &CustomerRow| r.conversation_id).await?;
        for d in whole {
            if let Some(row) = CustomerRow::start(d) {
                rows.entry(d.conversation_id).or_insert(row);
            } else if let Some(r) = rows.get_mut(&d.conversation_id) {
                r.apply(d);
            }
        }
        let out: Vec<&CustomerRow> = convs.iter().filter_map(|c| rows.get(c)).collect();
        rows::upsert(conn, &table, &["customer_id"], CUSTOMER_COLUMNS, &out).await
    }
}

/// A batch's customer messages in one conversation.
struct Seen {
    messages: i32,
    last_seen_at: DateTime<Utc>,
    name: Option<String>,
}

impl CustomerRow {
    /// The customer a conversation starts with.
    fn start(d: &Decoded) -> Option<CustomerRow> {
        let E::ConversationStarted {
            tenant_id,
            channel,
            chat_id,
            customer_id,
            customer_name,
            customer_phone,
            started_at,
            ..
        } = d.event
        else {
            return None;
        };
        Some(CustomerRow {
            customer_id: *customer_id,
            tenant_id: *tenant_id,
            channel: channel.as_str().into(),
            chat_id: chat_id.clone(),
            name: customer_name.clone(),
            phone: customer_phone.clone(),
            aliases: vec![],
            conversation_id: d.conversation_id,
            first_seen_at: *started_at,
            last_seen_at: *started_at,
            messages_count: 0,
        })
    }

    /// Applies a later event of the conversation.
    fn apply(&mut self, d: &Decoded) {
        match d.event {
            E::MessageReceived { sender_name, received_at, .. } => {
                self.messages_count += 1;
                self.last_seen_at = self.last_seen_at.max(*received_at);
                if self.name.is_none() {
                    self.name.clone_from(sender_name);
                }
            }
            E::CustomerAliasLinked { alias } if !self.aliases.contains(alias) => self.aliases.push(alias.clone()),
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Daily statistics

/// A row of `rm_daily_stats` (counts of one tenant and UTC day).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DailyStats {
    pub tenant_id: Uuid,
    pub day: NaiveDate,
    pub messages_in: i32,
    pub messages_out: i32,
    pub suggestions_generated: i32,
    pub decided_auto_send: i32,
    pub decided_need_approval: i32,
    pub decided_escalate: i32,
    pub suggestions_failed: i32,
    pub approved: i32,
    pub auto_approved: i32,
    pub edited: i32,
    pub rejected: i32,
    pub superseded: i32,
    pub escalations: i32,
}

const STATS_COUNTERS: &[&str] = &[
    "messages_in",
    "messages_out",
    "suggestions_generated",
    "decided_auto_send",
    "decided_need_approval",
    "decided_escalate",
    "suggestions_failed",
    "approved",
    "auto_approved",
    "edited",
    "rejected",
    "superseded",
    "escalations",
];

/// Projector of `rm_daily_stats` and `rm_response_times` (with its own waiting-since state).
pub struct Statistics {
    target: Target,
    name: &'static str,
}

impl Statistics {
    pub fn new(target: Target) -> Self {
        Statistics { target, name: target.name("daily_stats") }
    }
}

const WAITING_COLUMNS: &[&str] = &["conversation_id", "tenant_id", "waiting_since"];

#[derive(Serialize, Deserialize)]
struct Waiting {
    conversation_id: Uuid,
    tenant_id: Uuid,
    waiting_since: DateTime<Utc>,
}

#[derive(Serialize)]
struct ResponseTime {
    tenant_id: Uuid,
    conversation_id: Uuid,
    sequence: i64,
    day: NaiveDate,
    seconds: f64,
}

#[async_trait]
impl Projector for Statistics {
    fn name(&self) -> &'static str {
        self.name
    }
    fn description(&self) -> &'static str {
        "per-tenant daily statistics and first-response times"
    }
    fn tables(&self) -> &'static [&'static str] {
        &["rm_daily_stats", "rm_response_times", "rm_stats_waiting"]
    }
    fn generation(&self, target: Target) -> Option<Box<dyn Projector>> {
        Some(Box::new(Statistics::new(target)))
    }

    async fn apply(&self, conn: &mut PgConnection, events: &[StoredEvent]) -> anyhow::Result<()> {
        let decoded = decode(events)?;
        if decoded.is_empty() {
            return Ok(());
        }
        let waiting_table = self.target.table("rm_stats_waiting");
        // The stored wait is only needed where a reply ends it. Elsewhere a customer message can
        // only start a wait, and one already stored is older: those are inserted unless present,
        // instead of every customer message loading and rewriting its conversation's row.
        let replied = ids(decoded.iter().filter(|d| matches!(d.event, E::ReplySent { .. })).map(|d| d.conversation_id));
        let mut loaded: HashMap<Uuid, Waiting> =
            rows::load(conn, &waiting_table, "conversation_id", &replied, |r: &Waiting| r.conversation_id).await?;
        let mut waiting: HashMap<Uuid, Option<Waiting>> = replied.iter().map(|id| (*id, loaded.remove(id))).collect();
        let mut started: HashMap<Uuid, Waiting> = HashMap::new();
        let mut stats: HashMap<(Uuid, NaiveDate), DailyStats> = HashMap::new();
        let mut times = Vec::new();
        for d in &decoded {
            let Some(tenant) = d.tenant_id else { continue };
            let day = d.recorded_at.date_naive();
            let s = stats.entry((tenant, day)).or_insert_with(|| DailyStats {
                tenant_id: tenant,
                day,
                ..Default::default()
            });
            match d.event {
                E::MessageReceived { received_at, .. } => {
                    s.messages_in += 1;
                    let w =
                        Waiting { conversation_id: d.conversation_id, tenant_id: tenant, waiting_since: *received_at };
                    match waiting.get_mut(&d.conversation_id) {
                        Some(known) => {
                            known.get_or_insert(w);
                        }
                        None => {
                            started.entry(d.conversation_id).or_insert(w);
                        }
                    }
                }
                E::ReplySent { sent_at, .. } => {
                    s.messages_out += 1;
                    if let Some(Some(w)) = waiting.insert(d.conversation_id, None) {
                        let seconds = (*sent_at - w.waiting_since).num_milliseconds().max(0) as f64 / 1000.0;
                        times.push(ResponseTime {
                            tenant_id: tenant,
                            conversation_id: d.conversation_id,
                            sequence: d.sequence,
                            day,
                            seconds,
                        });
                    }
                }
                E::SuggestionGenerated { decision, .. } => {
                    s.suggestions_generated += 1;
                    match decision {
                        Decision::AutoSend => s.decided_auto_send += 1,
                        Decision::NeedApproval => s.decided_need_approval += 1,
                        Decision::Escalate => s.decided_escalate += 1,
                    }
                }
                E::SuggestionFailed { .. } => s.suggestions_failed += 1,
                E::SuggestionApproved { automatic: true, .. } => s.auto_approved += 1,
                E::SuggestionApproved { automatic: false, .. } => s.approved += 1,
                E::SuggestionEdited { .. } => s.edited += 1,
                E::SuggestionRejected { .. } => s.rejected += 1,
                E::SuggestionSuperseded { .. } => s.superseded += 1,
                E::ConversationEscalated { .. } => s.escalations += 1,
                _ => {}
            }
        }
        let stats_table = self.target.table("rm_daily_stats");
        let rows_out: Vec<&DailyStats> = stats.values().collect();
        let set = STATS_COUNTERS.iter().map(|c| format!("{c} = s.{c} + EXCLUDED.{c}")).collect::<Vec<_>>().join(", ");
        let cols = format!("tenant_id, day, {}", STATS_COUNTERS.join(", "));
        sqlx::query(&format!(
            "INSERT INTO {stats_table} AS s ({cols}) SELECT {cols} FROM jsonb_populate_recordset(NULL::{stats_table}, $1::jsonb) \
             ON CONFLICT (tenant_id, day) DO UPDATE SET {set}"
        ))
        .bind(serde_json::to_string(&rows_out)?)
        .execute(&mut *conn)
        .await?;
        let times_table = self.target.table("rm_response_times");
        rows::upsert(
            conn,
            &times_table,
            &["conversation_id", "sequence"],
            &["tenant_id", "conversation_id", "sequence", "day", "seconds"],
            &times,
        )
        .await?;
        let (keep, clear): (Vec<_>, Vec<_>) = waiting.into_iter().partition(|(_, w)| w.is_some());
        let keep: Vec<Waiting> = keep.into_iter().filter_map(|(_, w)| w).collect();
        rows::upsert(conn, &waiting_table, &["conversation_id"], WAITING_COLUMNS, &keep).await?;
        let started: Vec<&Waiting> = started.values().collect();
        rows::insert_missing(conn, &waiting_table, &["conversation_id"], WAITING_COLUMNS, &started).await?;
        let clear: Vec<Uuid> = clear.into_iter().map(|(id, _)| id).collect();
        if !clear.is_empty() {
            sqlx::query(&format!("DELETE FROM {waiting_table} WHERE conversation_id = ANY($1)"))
                .bind(&clear)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

/// Every conversation read-model projector, writing into `target`.
pub fn all(target: Target) -> Vec<Box<dyn Projector>> {
    vec![
        Box::new(ConversationList::new(target)),
        Box::new(Messages::new(target)),
        Box::new(Suggestions::new(target)),
        Box::new(Escalations::new(target)),
        Box::new(Customers::new(target)),
        Box::new(Statistics::new(target)),
    ]
}

// ---------------------------------------------------------------------------------------------
// Folding one conversation and the API's JSON shapes (shared by the read API, audit replay and
// `projections verify`, so all three show the same thing).

/// A conversation folded from its events, as the projectors would write it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Folded {
    pub conversation: Option<ConversationRow>,
    pub suggestions: std::collections::BTreeMap<Uuid, SuggestionRow>,
}

/// Folds one conversation's events (in sequence order).
pub fn fold(decoded: &[Decoded]) -> anyhow::Result<Folded> {
    let mut conversation: Option<ConversationRow> = None;
    let mut suggestions: HashMap<Uuid, SuggestionRow> = HashMap::new();
    for d in decoded {
        if conversation.is_none() {
            conversation = ConversationRow::start(d);
        }
        if let Some(row) = conversation.as_mut() {
            row.apply(d);
        }
        apply_suggestion_event(&mut suggestions, d)?;
    }
    Ok(Folded { conversation, suggestions: suggestions.into_iter().collect() })
}

/// Timestamps as Postgres stores them (microseconds), so folded and stored rows compare equal.
fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::{DurationRound, TimeDelta};
    t.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(t)
}

fn micros_opt(t: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    t.map(micros)
}

/// A conversation as the API shows it.
pub fn conversation_json(r: &ConversationRow) -> serde_json::Value {
    serde_json::json!({
        "id": r.conversation_id,
        "channel": r.channel,
        "account_id": r.account_id,
        "chat_id": r.chat_id,
        "customer": { "id": r.customer_id, "name": r.customer_name, "phone": r.customer_phone },
        "status": r.status,
        "muted": r.muted,
        "assigned_operator": r.assigned_operator,
        "last_message": {
            "preview": r.last_message_preview,
            "at": micros_opt(r.last_message_at),
            "direction": r.last_message_direction,
        },
        "unread_count": r.unread_count,
        "pending_suggestions": r.pending_suggestions,
        "has_pending_suggestion": r.pending_suggestions > 0,
        "messages_count": r.messages_count,
        "waiting_since": micros_opt(r.awaiting_reply_since),
        "vehicle": r.vehicle,
        "created_at": micros(r.created_at),
        "updated_at": micros(r.updated_at),
        "sequence": r.last_sequence,
    })
}

/// A suggestion as the API shows it.
pub fn suggestion_json(r: &SuggestionRow) -> serde_json::Value {
    serde_json::json!({
        "id": r.suggestion_id,
        "conversation_id": r.conversation_id,
        "request_id": r.request_id,
        "text": r.text,
        "intent": r.intent,
        "confidence": r.confidence,
        "decision": r.decision,
        "explanations": r.explanations,
        "source": r.source,
        "model": r.model,
        "autosend_block_reason": r.autosend_block_reason,
        "status": r.status,
        "final_text": r.final_text,
        "reply_id": r.reply_id,
        "decided_by": r.decided_by,
        "decided_at": micros_opt(r.decided_at),
        "created_at": micros(r.created_at),
    })
}

/// The conversation detail: the conversation and its pending suggestions, oldest first.
pub fn detail_json(conversation: &ConversationRow, suggestions: &[&SuggestionRow]) -> serde_json::Value {
    let mut v = conversation_json(conversation);
    let mut pending: Vec<&&SuggestionRow> = suggestions.iter().filter(|s| s.status == "pending").collect();
    pending.sort_by_key(|s| (micros(s.created_at), s.suggestion_id));
    v["pending_suggestions_list"] = serde_json::Value::Array(pending.into_iter().map(|s| suggestion_json(s)).collect());
    v
}
