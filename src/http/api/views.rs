//! What the API answers, as typed views of the read models' rows. Timestamps are cut to
//! microseconds (what Postgres keeps), so a row read back and a row folded in memory (audit
//! replay) look the same.

use aisales_projections::conversation::{ConversationRow, SuggestionRow};
use aisales_projections::vehicle_lookup_views::{HistoryEntry, LookupRow};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(t)
}

fn micros_opt(t: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    t.map(micros)
}

/// The customer a conversation is with.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerRef {
    pub id: Uuid,
    pub name: Option<String>,
    pub phone: Option<String>,
}

/// The newest message of a conversation.
#[derive(Debug, Clone, Serialize)]
pub struct LastMessage {
    pub preview: Option<String>,
    pub at: Option<DateTime<Utc>>,
    pub direction: Option<String>,
}

/// A conversation in the list and in the detail.
#[derive(Debug, Clone, Serialize)]
pub struct ConversationView {
    pub id: Uuid,
    pub channel: String,
    pub account_id: Uuid,
    pub chat_id: String,
    pub customer: CustomerRef,
    pub status: String,
    pub muted: bool,
    pub assigned_operator: Option<String>,
    pub last_message: LastMessage,
    pub unread_count: i32,
    pub pending_suggestions: i32,
    pub has_pending_suggestion: bool,
    pub messages_count: i32,
    /// Since when the customer has been waiting for an answer.
    pub waiting_since: Option<DateTime<Utc>>,
    pub vehicle: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub sequence: i64,
}

impl From<&ConversationRow> for ConversationView {
    fn from(r: &ConversationRow) -> Self {
        ConversationView {
            id: r.conversation_id,
            channel: r.channel.clone(),
            account_id: r.account_id,
            chat_id: r.chat_id.clone(),
            customer: CustomerRef { id: r.customer_id, name: r.customer_name.clone(), phone: r.customer_phone.clone() },
            status: r.status.clone(),
            muted: r.muted,
            assigned_operator: r.assigned_operator.clone(),
            last_message: LastMessage {
                preview: r.last_message_preview.clone(),
                at: micros_opt(r.last_message_at),
                direction: r.last_message_direction.clone(),
            },
            unread_count: r.unread_count,
            pending_suggestions: r.pending_suggestions,
            has_pending_suggestion: r.pending_suggestions > 0,
            messages_count: r.messages_count,
            waiting_since: micros_opt(r.awaiting_reply_since),
            vehicle: r.vehicle.clone(),
            created_at: micros(r.created_at),
            updated_at: micros(r.updated_at),
            sequence: r.last_sequence,
        }
    }
}

/// A drafted reply and what became of it.
#[derive(Debug, Clone, Serialize)]
pub struct SuggestionView {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub request_id: Uuid,
    pub text: String,
    pub intent: String,
    pub confidence: f64,
    pub decision: String,
    /// Why the policy decided as it did.
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

impl From<&SuggestionRow> for SuggestionView {
    fn from(r: &SuggestionRow) -> Self {
        SuggestionView {
            id: r.suggestion_id,
            conversation_id: r.conversation_id,
            request_id: r.request_id,
            text: r.text.clone(),
            intent: r.intent.clone(),
            confidence: r.confidence,
            decision: r.decision.clone(),
            explanations: r.explanations.clone(),
            source: r.source.clone(),
            model: r.model.clone(),
            autosend_block_reason: r.autosend_block_reason.clone(),
            status: r.status.clone(),
            final_text: r.final_text.clone(),
            reply_id: r.reply_id,
            decided_by: r.decided_by.clone(),
            decided_at: micros_opt(r.decided_at),
            created_at: micros(r.created_at),
        }
    }
}

/// One conversation with its pending suggestions, oldest first.
#[derive(Debug, Clone, Serialize)]
pub struct ConversationDetail {
    #[serde(flatten)]
    pub conversation: ConversationView,
    pub pending_suggestions_list: Vec<SuggestionView>,
}

impl ConversationDetail {
    pub fn new<'a>(conversation: &ConversationRow, suggestions: impl IntoIterator<Item = &'a SuggestionRow>) -> Self {
        let mut pending: Vec<&SuggestionRow> = suggestions.into_iter().filter(|s| s.status == "pending").collect();
        pending.sort_by_key(|s| (micros(s.created_at), s.suggestion_id));
        ConversationDetail {
            conversation: conversation.into(),
            pending_suggestions_list: pending.into_iter().map(SuggestionView::from).collect(),
        }
    }
}

/// What a command on a conversation did: the position to wait for (also in `X-Position`), the
/// conversation's status and sequence after it, and what the command created.
#[derive(Debug, Clone, Serialize)]
pub struct Accepted<T: Serialize> {
    pub position: Option<String>,
    pub status: &'static str,
    pub sequence: i64,
    #[serde(flatten)]
    pub created: T,
}

/// A vehicle lookup in the list: where it stands and the vehicle and gearbox it found.
#[derive(Debug, Clone, Serialize)]
pub struct VehicleLookupSummary {
    pub id: Uuid,
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
    pub vehicle: Option<Value>,
    pub gearbox: Option<Value>,
    /// The step that stopped the search for the gearbox OEM (model-only answers), with why.
    pub oem_failure: Option<Value>,
    pub source: Option<Value>,
    pub confidence: Option<Value>,
    pub verification: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<&LookupRow> for VehicleLookupSummary {
    fn from(r: &LookupRow) -> Self {
        VehicleLookupSummary {
            id: r.lookup_id,
            conversation_id: r.conversation_id,
            message_id: r.message_id,
            id_type: r.id_type.clone(),
            value: r.value.clone(),
            status: r.status.clone(),
            result_status: r.result_status.clone(),
            request_source: r.request_source.clone(),
            requested_by: r.requested_by.clone(),
            round: r.round,
            attempts: r.attempts,
            attempts_total: r.attempts_total,
            last_error: r.last_error.clone(),
            retry_at: r.retry_at,
            vehicle: r.result_at(&["vehicle"]).cloned(),
            gearbox: r.result_at(&["gearbox"]).cloned(),
            oem_failure: r.oem_failure().cloned(),
            source: r.result_at(&["source"]).cloned(),
            confidence: r.result_at(&["confidence"]).cloned(),
            verification: r.verification.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
            completed_at: r.completed_at,
        }
    }
}

/// One attempt of a lookup, from its history.
#[derive(Debug, Clone, Serialize)]
pub struct LookupAttempt {
    pub round: Option<u32>,
    pub attempt: Option<u32>,
    pub outcome: String,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
    pub evidence: Vec<aisales_domain::vehicle_lookup::EvidenceRef>,
}

/// A stored evidence file of a lookup, without its bytes.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct EvidenceItem {
    pub id: Uuid,
    pub kind: String,
    pub content_type: String,
    pub size_bytes: i32,
    pub round: i32,
    pub attempt: i32,
    pub created_at: DateTime<Utc>,
    /// Where the file is served (`GET`, same credentials).
    #[sqlx(skip)]
    pub url: String,
}

/// A lookup with its answer, history (attempts, reasons, evidence) and confirmations.
#[derive(Debug, Clone, Serialize)]
pub struct VehicleLookupDetail {
    #[serde(flatten)]
    pub summary: VehicleLookupSummary,
    pub result: Option<Value>,
    pub confirmed: Option<Value>,
    pub price_lookup_wanted: Value,
    pub history: Vec<HistoryEntry>,
    pub attempts_log: Vec<LookupAttempt>,
    pub evidence: Vec<EvidenceItem>,
}

impl VehicleLookupDetail {
    pub fn new(r: &LookupRow, evidence: Vec<EvidenceItem>) -> Self {
        let attempts_log = r
            .history
            .iter()
            .filter(|h| matches!(h.event.as_str(), "completed" | "not_found" | "retry_scheduled" | "failed"))
            .map(|h| LookupAttempt {
                round: h.round,
                attempt: h.attempt,
                outcome: h.event.clone(),
                reason: h.detail.clone(),
                at: h.at,
                evidence: h.evidence.clone(),
            })
            .collect();
        VehicleLookupDetail {
            summary: r.into(),
            result: r.result.clone(),
            confirmed: r.confirmed.clone(),
            price_lookup_wanted: r.price_lookup_wanted.clone(),
            history: r.history.clone(),
            attempts_log,
            evidence,
        }
    }
}
