//! Audit replay of one conversation: its events with their metadata, and its state folded up to
//! any sequence number or instant (with the same folding code the read models use, so the state
//! at event k is what the API showed right after event k).

use std::collections::HashMap;

use aisales_domain::conversation::{Conversation, ConversationEvent as E};
use aisales_projections::conversation_views::{self, Folded};
use aisales_projections::events::{self, StoredEvent};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// Up to where to replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    End,
    Sequence(i64),
    Instant(DateTime<Utc>),
}

/// One event as the audit log shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEvent {
    pub sequence: i64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub version: String,
    pub payload: Value,
    pub metadata: HashMap<String, String>,
    pub recorded_at: DateTime<Utc>,
    pub position: String,
}

/// A conversation replayed.
pub struct Replay {
    pub events: Vec<AuditEvent>,
    pub folded: Folded,
    pub aggregate: Conversation,
    /// The stored events replayed (each decoded once, on first use).
    pub stored: Vec<StoredEvent>,
}

/// Reads the conversation's events up to `until`; `None` when it does not exist (or, with
/// `tenant`, belongs to another tenant).
pub async fn load(
    pool: &PgPool,
    tenant: Option<Uuid>,
    conversation: Uuid,
    until: Until,
) -> anyhow::Result<Option<Replay>> {
    let owner = crate::conversations::tenant_of(pool, conversation).await?;
    if owner.is_none() || (tenant.is_some() && owner != tenant) {
        return Ok(None);
    }
    let mut conn = pool.acquire().await?;
    let seq = match until {
        Until::Sequence(n) => Some(n),
        _ => None,
    };
    let mut stored: Vec<StoredEvent> =
        events::read_stream(&mut conn, "conversation", &conversation.to_string(), seq).await?;
    if let Until::Instant(at) = until {
        stored.retain(|e| e.recorded_at <= at);
    }
    let decoded = conversation_views::decode(&stored)?;
    let folded = conversation_views::fold(&decoded)?;
    let mut aggregate = Conversation::default();
    for d in &decoded {
        aggregate.evolve(d.event.clone());
    }
    let events = stored
        .iter()
        .map(|e| -> anyhow::Result<AuditEvent> {
            Ok(AuditEvent {
                sequence: e.sequence,
                event_type: e.event_type.clone(),
                version: e.event_version.clone(),
                payload: serde_json::from_str(&e.payload)?,
                metadata: e.metadata_map()?,
                recorded_at: e.recorded_at,
                position: e.position().to_string(),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Some(Replay { events, folded, aggregate, stored }))
}

impl Replay {
    /// The state as the API shows a conversation (`GET /api/conversations/{id}`), plus the replay's
    /// sequence and the aggregate's own state.
    pub fn state_json(&self) -> Value {
        let mut v = match &self.folded.conversation {
            Some(c) => conversation_views::detail_json(c, &self.folded.suggestions.values().collect::<Vec<_>>()),
            None => serde_json::json!({}),
        };
        v["replayed_to_sequence"] = serde_json::json!(self.events.last().map_or(0, |e| e.sequence));
        v["aggregate"] = serde_json::to_value(&self.aggregate).unwrap_or(Value::Null);
        v
    }

    /// A readable timeline: one line per event, who did what and when.
    pub fn timeline(&self) -> Vec<String> {
        self.stored
            .iter()
            .zip(&self.events)
            .map(|(stored, e)| {
                let what = conversation_views::event_of(stored).map_or_else(|err| format!("({err})"), describe);
                let who = e.metadata.get("actor").cloned().unwrap_or_else(|| "?".into());
                format!(
                    "#{:<5} {}  {:<28} {:<22} {}",
                    e.sequence,
                    e.recorded_at.format("%Y-%m-%d %H:%M:%S%.3f"),
                    who,
                    e.event_type,
                    what
                )
            })
            .collect()
    }
}

fn clip(s: &str) -> String {
    let one_line = s.replace('\n', " ");
    if one_line.chars().count() > 90 {
        format!("{}…", one_line.chars().take(90).collect::<String>())
    } else {
        one_line
    }
}

/// What an event says, in a few words.
pub fn describe(e: &E) -> String {
    match e {
        E::ConversationStarted { channel, customer_name, .. } => {
            format!("{} conversation with {}", channel, customer_name.as_deref().unwrap_or("an unnamed customer"))
        }
        E::MessageReceived { text, .. } => format!("customer: «{}»", clip(text)),
        E::CustomerAliasLinked { alias } => format!("also known as {alias}"),
        E::VehicleIdDetected { id_type, value, score, .. } => format!("{id_type} {value} found (score {score:.2})"),
        E::TransmissionCodeDetected { code, score, .. } => format!("gearbox code {code} found (score {score:.2})"),
        E::VehicleLookupRequested { id_type, value, source, requested_by, .. } => {
            format!("lookup of {} {value} asked for ({}, {requested_by})", id_type.as_str(), source.as_str())
        }
        E::VehicleDataAttached { data, .. } => {
            let vehicle: Vec<&str> = [&data.vehicle.make, &data.vehicle.model, &data.vehicle.year]
                .into_iter()
                .flatten()
                .map(String::as_str)
                .collect();
            let gearbox: Vec<&str> =
                [&data.gearbox.model, &data.gearbox.oem].into_iter().flatten().map(String::as_str).collect();
            format!(
                "vehicle {}: {}; gearbox {}",
                data.status.as_str(),
                if vehicle.is_empty() { "unknown".to_string() } else { vehicle.join(" ") },
                if gearbox.is_empty() { "unknown".to_string() } else { gearbox.join(", ") }
            )
        }
        E::VehicleLookupFailed { id_type, value, reason, .. } => {
            format!("lookup of {} {value} failed: {reason}", id_type.as_str())
        }
        E::SuggestionRequested { not_before, .. } => format!("draft wanted after {}", not_before.format("%H:%M:%S")),
        E::SuggestionGenerated { text, intent, confidence, decision, source, autosend_block_reason, .. } => format!(
            "{source} draft, intent {intent}, confidence {:.0}%, {}{}: «{}»",
            confidence * 100.0,
            decision.as_str(),
            autosend_block_reason.as_ref().map(|r| format!(" (blocked: {r})")).unwrap_or_default(),
            clip(text)
        ),
        E::SuggestionFailed { reason, .. } => format!("drafting failed: {reason}"),
        E::SuggestionSuperseded { .. } => "draft superseded by a newer customer message".into(),
        E::SuggestionApproved { automatic: true, .. } => "draft approved automatically".into(),
        E::SuggestionApproved { automatic: false, .. } => "draft approved".into(),
        E::SuggestionEdited { text, .. } => format!("draft edited to «{}»", clip(text)),
        E::SuggestionRejected { reason, .. } => {
            format!("draft rejected{}", reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())
        }
        E::OperatorReplied { text, .. } => format!("operator: «{}»", clip(text)),
        E::ReplyQueued { origin, send_after, .. } => {
            format!("reply queued ({origin:?}), not before {}", send_after.format("%H:%M:%S"))
        }
        E::ReplySendStarted { attempt, .. } => format!("sending, attempt {attempt}"),
        E::ReplySent { provider_message_id, reconciled, .. } => {
            format!(
                "sent as {provider_message_id}{}",
                if *reconciled { " (found in the provider's journal)" } else { "" }
            )
        }
        E::ReplySendRetryScheduled { attempt, retry_at, reason, .. } => {
            format!("attempt {attempt} failed ({reason}); retry at {}", retry_at.format("%H:%M:%S"))
        }
        E::ReplyFailed { reason, permanent, .. } => {
            format!("delivery failed{}: {reason}", if *permanent { " for good" } else { "" })
        }
        E::ReplyRetryRequested { .. } => "operator asked to send again".into(),
        E::ReplyDelivered { status, .. } => format!("provider reports {status}"),
        E::ConversationEscalated { reason, .. } => format!("escalated: {reason}"),
        E::ConversationResolved => "resolved".into(),
        E::ConversationReopened { reason } => format!("reopened: {reason}"),
        E::ConversationMuted { muted } => {
            if *muted {
                "muted".into()
            } else {
                "unmuted".into()
            }
        }
        E::StatusChanged { from, to, reason } => format!("{from} → {to} ({reason})"),
        E::OperatorAssigned { operator } => format!("assigned to {}", operator.as_deref().unwrap_or("nobody")),
        E::ConversationRead => "read by an operator".into(),
    }
}
