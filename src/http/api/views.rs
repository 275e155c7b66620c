//! What the API answers, as typed views of the read models' rows. Timestamps are cut to
//! microseconds (what Postgres keeps), so a row read back and a row folded in memory (audit
//! replay) look the same.

use aisales_projections::conversation::{ConversationRow, SuggestionRow};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::Serialize;
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
