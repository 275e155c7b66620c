//! Events of the [`Conversation`](super::Conversation) aggregate: past-tense facts.
//!
//! Every variant is listed in `docs/events.md` with its version and fields; a test fails when the
//! catalog and this file disagree. A change to a variant's fields bumps its version and ships with
//! an upcaster for the stored older version.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::types::{Attachment, ChannelKind, Decision, ReplyOrigin, Status};
use crate::vehicle_lookup::{IdType, LookupSource, VehicleData};

/// What happened in a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ConversationEvent {
    /// The first message of a customer on a channel opened the conversation.
    ConversationStarted {
        tenant_id: Uuid,
        channel: ChannelKind,
        account_id: Uuid,
        chat_id: String,
        customer_id: Uuid,
        customer_name: Option<String>,
        customer_phone: Option<String>,
        started_at: DateTime<Utc>,
    },
    /// A customer message arrived (deduplicated by the provider's message id).
    ///
    /// Version 2 added `kind` (text, image, document, contact, location, …) and `reply_to` (the
    /// provider id of the quoted message); version 1 events are upcast with kind `text` (or `file`
    /// when they carry attachments) and no `reply_to`.
    MessageReceived {
        message_id: Uuid,
        provider_message_id: String,
        text: String,
        #[serde(default)]
        attachments: Vec<Attachment>,
        sender_name: Option<String>,
        sent_at: DateTime<Utc>,
        received_at: DateTime<Utc>,
        kind: String,
        reply_to: Option<String>,
    },
    /// Another identifier of the same customer on the same channel (e.g. a MAX internal id next to
    /// the phone chat id).
    CustomerAliasLinked { alias: String },
    /// A VIN or FRAME number was found in a customer message with a score high enough to look the
    /// vehicle up.
    VehicleIdDetected { message_id: Uuid, id_type: String, value: String, score: f64, reasons: Vec<String> },
    /// A transmission code was found in a customer message.
    TransmissionCodeDetected { message_id: Uuid, code: String, score: f64 },
    /// The conversation asked for a vehicle lookup (a VIN/FRAME of a customer message, or an
    /// operator's request); at most one per identifier is active.
    VehicleLookupRequested {
        lookup_id: Uuid,
        request_id: Uuid,
        message_id: Option<Uuid>,
        id_type: IdType,
        value: String,
        source: LookupSource,
        requested_by: String,
    },
    /// A vehicle lookup answered (found, model only, decoder only or not found), or a gearbox was
    /// confirmed from its tag: the vehicle data the conversation now holds. `revision` orders the
    /// lookup's outcomes.
    VehicleDataAttached { lookup_id: Uuid, revision: u32, data: Box<VehicleData> },
    /// A vehicle lookup gave up.
    VehicleLookupFailed { lookup_id: Uuid, revision: u32, id_type: IdType, value: String, reason: String },
    /// A reply suggestion is wanted; drafted once no new customer message came for the burst window.
    SuggestionRequested { request_id: Uuid, trigger_message_id: Uuid, not_before: DateTime<Utc> },
    /// A reply suggestion was drafted (by the drafter for `request_id`, or from a template, e.g.
    /// after a vehicle lookup; then `request_id` is the lookup's id and `source` is `template`).
    SuggestionGenerated {
        suggestion_id: Uuid,
        request_id: Uuid,
        text: String,
        intent: String,
        confidence: f64,
        decision: Decision,
        explanations: Vec<String>,
        source: String,
        model: Option<String>,
        autosend_block_reason: Option<String>,
    },
    /// Drafting a suggestion failed; the conversation waits for an operator.
    SuggestionFailed { request_id: Uuid, reason: String },
    /// A newer customer message made a pending suggestion obsolete.
    SuggestionSuperseded { suggestion_id: Uuid, by_message_id: Uuid },
    /// An operator (or the autosend policy, `automatic`) approved a suggestion as drafted.
    SuggestionApproved { suggestion_id: Uuid, automatic: bool },
    /// An operator approved a suggestion with changed text.
    SuggestionEdited { suggestion_id: Uuid, text: String },
    /// An operator rejected a suggestion.
    SuggestionRejected { suggestion_id: Uuid, reason: Option<String> },
    /// An operator wrote a reply themselves.
    OperatorReplied { reply_id: Uuid, text: String },
    /// A reply is to be delivered to the customer, not before `send_after`.
    ReplyQueued {
        reply_id: Uuid,
        suggestion_id: Option<Uuid>,
        text: String,
        origin: ReplyOrigin,
        send_after: DateTime<Utc>,
    },
    /// A worker is about to hand the reply to the provider (the durable claim of that send).
    ReplySendStarted { reply_id: Uuid, attempt: u32, started_at: DateTime<Utc> },
    /// The provider accepted the reply.
    ReplySent { reply_id: Uuid, provider_message_id: String, sent_at: DateTime<Utc>, reconciled: bool },
    /// A send failed for a transient reason and will be tried again at `retry_at`.
    ReplySendRetryScheduled { reply_id: Uuid, attempt: u32, retry_at: DateTime<Utc>, reason: String },
    /// The reply could not be delivered; final.
    ReplyFailed { reply_id: Uuid, reason: String, permanent: bool },
    /// An operator asked to try a failed reply again.
    ReplyRetryRequested { reply_id: Uuid },
    /// The provider reported the reply delivered or read.
    ReplyDelivered { reply_id: Uuid, provider_message_id: String, status: String, at: DateTime<Utc> },
    /// The conversation needs a person.
    ConversationEscalated { reason: String, suggestion_id: Option<Uuid> },
    /// An operator closed the conversation.
    ConversationResolved,
    /// The conversation was opened again.
    ConversationReopened { reason: String },
    /// Automatic drafting was switched off (or back on) for this conversation.
    ConversationMuted { muted: bool },
    /// The conversation's status changed (every change, with the reason).
    StatusChanged { from: Status, to: Status, reason: String },
    /// An operator took the conversation.
    OperatorAssigned { operator: Option<String> },
    /// An operator read the conversation up to now.
    ConversationRead,
}

impl DomainEvent for ConversationEvent {
    fn event_type(&self) -> String {
        self.name().to_string()
    }

    fn event_version(&self) -> String {
        match self {
            ConversationEvent::MessageReceived { .. } => "2",
            _ => "1",
        }
        .to_string()
    }
}

/// Upcasters for stored conversation events of older versions.
pub fn upcasters() -> Vec<Box<dyn cqrs_es::persist::EventUpcaster>> {
    vec![Box::new(cqrs_es::persist::SemanticVersionEventUpcaster::new(
        "MessageReceived",
        "2",
        Box::new(message_received_v1_to_v2),
    ))]
}

/// `MessageReceived` v1 → v2: adds `kind` and `reply_to`.
pub fn message_received_v1_to_v2(mut payload: serde_json::Value) -> serde_json::Value {
    if let Some(body) = payload.get_mut("MessageReceived").and_then(|b| b.as_object_mut()) {
        let has_files = body.get("attachments").and_then(|a| a.as_array()).is_some_and(|a| !a.is_empty());
        body.entry("kind").or_insert_with(|| serde_json::json!(if has_files { "file" } else { "text" }));
        body.entry("reply_to").or_insert(serde_json::Value::Null);
    }
    payload
}

/// Why a stored event could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("{event_type} v{version}: {source}")]
    Invalid { event_type: String, version: String, source: serde_json::Error },
}

/// Reads a stored conversation event of any known version (older versions are upcast first).
pub fn decode_stored(event_type: &str, version: &str, payload: &str) -> Result<ConversationEvent, DecodeError> {
    let invalid =
        |source| DecodeError::Invalid { event_type: event_type.to_string(), version: version.to_string(), source };
    let upcasters = upcasters();
    if !upcasters.iter().any(|u| u.can_upcast(event_type, version)) {
        return serde_json::from_str(payload).map_err(invalid);
    }
    let mut event = cqrs_es::persist::SerializedEvent::new(
        String::new(),
        0,
        String::new(),
        event_type.to_string(),
        version.to_string(),
        serde_json::from_str(payload).map_err(invalid)?,
        serde_json::Value::Null,
    );
    for u in &upcasters {
        if u.can_upcast(&event.event_type, &event.event_version) {
            event = u.upcast(event);
        }
    }
    serde_json::from_value(event.payload).map_err(invalid)
}

impl ConversationEvent {
    /// Every event type name, in catalog order.
    pub const TYPES: &'static [&'static str] = &[
        "ConversationStarted",
        "MessageReceived",
        "CustomerAliasLinked",
        "VehicleIdDetected",
        "TransmissionCodeDetected",
        "VehicleLookupRequested",
        "VehicleDataAttached",
        "VehicleLookupFailed",
        "SuggestionRequested",
        "SuggestionGenerated",
        "SuggestionFailed",
        "SuggestionSuperseded",
        "SuggestionApproved",
        "SuggestionEdited",
        "SuggestionRejected",
        "OperatorReplied",
        "ReplyQueued",
        "ReplySendStarted",
        "ReplySent",
        "ReplySendRetryScheduled",
        "ReplyFailed",
        "ReplyRetryRequested",
        "ReplyDelivered",
        "ConversationEscalated",
        "ConversationResolved",
        "ConversationReopened",
        "ConversationMuted",
        "StatusChanged",
        "OperatorAssigned",
        "ConversationRead",
    ];

    /// The event's type name (the serde variant name).
    pub fn name(&self) -> &'static str {
        use ConversationEvent::*;
        match self {
            ConversationStarted { .. } => "ConversationStarted",
            MessageReceived { .. } => "MessageReceived",
            CustomerAliasLinked { .. } => "CustomerAliasLinked",
            VehicleIdDetected { .. } => "VehicleIdDetected",
            TransmissionCodeDetected { .. } => "TransmissionCodeDetected",
            VehicleLookupRequested { .. } => "VehicleLookupRequested",
            VehicleDataAttached { .. } => "VehicleDataAttached",
            VehicleLookupFailed { .. } => "VehicleLookupFailed",
            SuggestionRequested { .. } => "SuggestionRequested",
            SuggestionGenerated { .. } => "SuggestionGenerated",
            SuggestionFailed { .. } => "SuggestionFailed",
            SuggestionSuperseded { .. } => "SuggestionSuperseded",
            SuggestionApproved { .. } => "SuggestionApproved",
            SuggestionEdited { .. } => "SuggestionEdited",
            SuggestionRejected { .. } => "SuggestionRejected",
            OperatorReplied { .. } => "OperatorReplied",
            ReplyQueued { .. } => "ReplyQueued",
            ReplySendStarted { .. } => "ReplySendStarted",
            ReplySent { .. } => "ReplySent",
            ReplySendRetryScheduled { .. } => "ReplySendRetryScheduled",
            ReplyFailed { .. } => "ReplyFailed",
            ReplyRetryRequested { .. } => "ReplyRetryRequested",
            ReplyDelivered { .. } => "ReplyDelivered",
            ConversationEscalated { .. } => "ConversationEscalated",
            ConversationResolved => "ConversationResolved",
            ConversationReopened { .. } => "ConversationReopened",
            ConversationMuted { .. } => "ConversationMuted",
            StatusChanged { .. } => "StatusChanged",
            OperatorAssigned { .. } => "OperatorAssigned",
            ConversationRead => "ConversationRead",
        }
    }
}
