//! Events of the [`Conversation`](super::Conversation) aggregate: past-tense facts.
//!
//! Every variant is listed in `docs/events.md` with its version and fields; a test fails when the
//! catalog and this file disagree. A change to a variant's fields bumps its version and ships with
//! an upcaster for the stored older version.

use chrono::{DateTime, Utc};
use std::sync::LazyLock;

use cqrs_es::DomainEvent;
use cqrs_es::persist::{EventUpcaster, SemanticVersionEventUpcaster};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::types::{Attachment, ChannelKind, DeliveryStatus, MessageKind, ReplyAttachment, ReplyOrigin, Status};
use crate::codec::EventSchema;
use crate::media::{MediaRefusal, NotReadReason, PhotoReading, StoredMedia};
use crate::pii::{ErasureCause, Fields};
use crate::reply::Decision;
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
        kind: MessageKind,
        reply_to: Option<String>,
    },
    /// Another identifier of the same customer on the same channel (e.g. a MAX internal id next to
    /// the phone chat id).
    CustomerAliasLinked { alias: String },
    /// A VIN or FRAME number was found in a customer message with a score high enough to look the
    /// vehicle up.
    VehicleIdDetected { message_id: Uuid, id_type: IdType, value: String, score: f64, reasons: Vec<String> },
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
        /// A stored file sent with the reply (its text is then the caption).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attachment: Option<ReplyAttachment>,
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
    ReplyDelivered { reply_id: Uuid, provider_message_id: String, status: DeliveryStatus, at: DateTime<Utc> },
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
    /// A lead of the customer is answered in this conversation (its first message went here).
    LeadLinked { lead_id: Uuid },
    /// An attachment of a customer message (`index` in its list) was downloaded from the provider
    /// and stored, content-addressed.
    AttachmentStored { message_id: Uuid, index: u32, media: StoredMedia },
    /// An attachment was not stored: too large, of a refused type, or the provider would not give
    /// it. Nothing of it is kept.
    AttachmentRefused { message_id: Uuid, index: u32, reason: MediaRefusal, size: Option<u64>, detail: Option<String> },
    /// A stored photo was read: what it shows, with what confidence, and the identifiers found
    /// (scored as detection candidates; the VIN or code among them starts the same lookups as a
    /// typed one).
    PhotoRead { message_id: Uuid, index: u32, sha256: String, reading: PhotoReading },
    /// A stored photo was not read (no AI key, switched off for the tenant, an answer that was not
    /// the JSON asked for).
    PhotoNotRead { message_id: Uuid, index: u32, sha256: String, reason: NotReadReason },
    /// The team was told through the escalation bot about the escalation recorded at
    /// `escalation` (the sequence number of its `ConversationEscalated`).
    TeamNotified { escalation: u64, chat_id: String },
    /// The escalation bot could not tell the team (no bot configured, or the bot's sends failed
    /// after their retries).
    TeamNotificationFailed { escalation: u64, error: String },
    /// The customer's data was erased: their data key is destroyed, so every customer-data field
    /// of this conversation reads `[erased]` from now on. Holds no customer data itself.
    CustomerErased { customer_id: Uuid, erased_by: String, cause: ErasureCause, erased_at: DateTime<Utc> },
}

impl DomainEvent for ConversationEvent {
    fn event_type(&self) -> String {
        self.name().to_string()
    }

    fn event_version(&self) -> String {
        match self {
            ConversationEvent::MessageReceived { .. } | ConversationEvent::ReplyDelivered { .. } => "2",
            _ => "1",
        }
        .to_string()
    }
}

impl EventSchema for ConversationEvent {
    const AGGREGATE: &'static str = "conversation";

    fn upcasters() -> &'static [Box<dyn EventUpcaster>] {
        static UPCASTERS: LazyLock<Vec<Box<dyn EventUpcaster>>> = LazyLock::new(|| {
            vec![
                Box::new(SemanticVersionEventUpcaster::new(
                    "MessageReceived",
                    "2",
                    Box::new(message_received_v1_to_v2),
                )),
                Box::new(SemanticVersionEventUpcaster::new("ReplyDelivered", "2", Box::new(reply_delivered_v1_to_v2))),
            ]
        });
        &UPCASTERS
    }

    /// Customer data: the customer's chat ids, name and phone, every text written by or to them,
    /// file names and links, free text people wrote about them (escalation and rejection reasons)
    /// and errors that may quote any of these (provider and AI errors). The vehicle's identifiers
    /// and data, ids, enum names and fixed reasons are not.
    fn fields() -> &'static [Fields] {
        static FIELDS: &[Fields] = &[
            Fields {
                event: "ConversationStarted",
                pii: &["chat_id", "customer_name", "customer_phone"],
                safe: &["account_id", "channel", "customer_id", "started_at", "tenant_id"],
            },
            // The provider's file id fetches the customer's file as well as its link does.
            Fields {
                event: "MessageReceived",
                pii: &["text", "sender_name", "attachments/*/url", "attachments/*/file_name", "attachments/*/file_id"],
                safe: &[
                    "attachments/*/kind",
                    "attachments/*/mime_type",
                    "kind",
                    "message_id",
                    "provider_message_id",
                    "received_at",
                    "reply_to",
                    "sent_at",
                ],
            },
            Fields { event: "CustomerAliasLinked", pii: &["alias"], safe: &[] },
            Fields { event: "VehicleIdDetected", pii: &[], safe: &["id_type", "message_id", "reasons/*", "value"] },
            Fields { event: "TransmissionCodeDetected", pii: &[], safe: &["code", "message_id"] },
            Fields {
                event: "VehicleLookupRequested",
                pii: &[],
                safe: &["id_type", "lookup_id", "message_id", "request_id", "requested_by", "source", "value"],
            },
            Fields {
                event: "VehicleDataAttached",
                pii: &[],
                safe: &[
                    "data/confirmed/confirmed_by",
                    "data/confirmed/factory_code",
                    "data/confirmed/model",
                    "data/confirmed/oem",
                    "data/confirmed/verification",
                    "data/decoder/check_digit",
                    "data/decoder/country",
                    "data/decoder/manufacturer",
                    "data/decoder/plant",
                    "data/decoder/region",
                    "data/decoder/serial",
                    "data/decoder/vds",
                    "data/decoder/vin",
                    "data/decoder/wmi",
                    "data/gearbox/factory_code",
                    "data/gearbox/model",
                    "data/gearbox/oem",
                    "data/gearbox/oem_candidates/*/name",
                    "data/gearbox/oem_candidates/*/oem",
                    "data/gearbox/oem_search/failure/kind",
                    "data/gearbox/oem_search/failure/reason",
                    "data/gearbox/oem_search/failure/step",
                    "data/gearbox/oem_search/paths/*/detail",
                    "data/gearbox/oem_search/paths/*/outcome",
                    "data/gearbox/oem_search/paths/*/path",
                    "data/gearbox/oem_search/paths/*/step",
                    "data/gearbox/oem_search/paths/*/url",
                    "data/gearbox/oem_search/site",
                    "data/id_type",
                    "data/note",
                    "data/source",
                    "data/status",
                    "data/value",
                    "data/vehicle/body",
                    "data/vehicle/drive",
                    "data/vehicle/engine",
                    "data/vehicle/make",
                    "data/vehicle/model",
                    "data/vehicle/modification",
                    "data/vehicle/transmission",
                    "data/vehicle/year",
                    "lookup_id",
                ],
            },
            Fields { event: "VehicleLookupFailed", pii: &[], safe: &["id_type", "lookup_id", "reason", "value"] },
            Fields {
                event: "SuggestionRequested",
                pii: &[],
                safe: &["not_before", "request_id", "trigger_message_id"],
            },
            Fields {
                event: "SuggestionGenerated",
                pii: &["text"],
                safe: &[
                    "autosend_block_reason",
                    "decision",
                    "explanations/*",
                    "intent",
                    "model",
                    "request_id",
                    "source",
                    "suggestion_id",
                ],
            },
            // AI errors may quote the model's answer.
            Fields { event: "SuggestionFailed", pii: &["reason"], safe: &["request_id"] },
            Fields { event: "SuggestionSuperseded", pii: &[], safe: &["by_message_id", "suggestion_id"] },
            Fields { event: "SuggestionApproved", pii: &[], safe: &["suggestion_id"] },
            Fields { event: "SuggestionEdited", pii: &["text"], safe: &["suggestion_id"] },
            // An operator's words, or a fixed reason.
            Fields { event: "SuggestionRejected", pii: &["reason"], safe: &["suggestion_id"] },
            Fields { event: "OperatorReplied", pii: &["text"], safe: &["reply_id"] },
            Fields {
                event: "ReplyQueued",
                pii: &["text", "attachment/file_name"],
                safe: &[
                    "attachment/mime_type",
                    "attachment/sha256",
                    "origin",
                    "reply_id",
                    "send_after",
                    "suggestion_id",
                ],
            },
            Fields { event: "ReplySendStarted", pii: &[], safe: &["reply_id", "started_at"] },
            Fields { event: "ReplySent", pii: &[], safe: &["provider_message_id", "reply_id", "sent_at"] },
            // Provider errors may quote the chat id or the message.
            Fields { event: "ReplySendRetryScheduled", pii: &["reason"], safe: &["reply_id", "retry_at"] },
            // Provider errors may quote the chat id or the message.
            Fields { event: "ReplyFailed", pii: &["reason"], safe: &["reply_id"] },
            Fields { event: "ReplyRetryRequested", pii: &[], safe: &["reply_id"] },
            // Provider errors may quote the chat id or the message.
            Fields {
                event: "ReplyDelivered",
                pii: &["status/failed/reason"],
                safe: &["at", "provider_message_id", "reply_id", "status"],
            },
            // An operator's words, or a fixed reason of the reply policy.
            Fields { event: "ConversationEscalated", pii: &["reason"], safe: &["suggestion_id"] },
            Fields { event: "ConversationReopened", pii: &[], safe: &["reason"] },
            // An escalation's reason is an operator's words.
            Fields { event: "StatusChanged", pii: &["reason"], safe: &["from", "to"] },
            Fields { event: "OperatorAssigned", pii: &[], safe: &["operator"] },
            Fields { event: "LeadLinked", pii: &[], safe: &["lead_id"] },
            Fields {
                event: "AttachmentStored",
                pii: &[],
                safe: &["media/mime_type", "media/sha256", "media/thumbnail_sha256", "message_id"],
            },
            // The provider's error may name the file.
            Fields { event: "AttachmentRefused", pii: &["detail"], safe: &["message_id", "reason"] },
            Fields {
                event: "PhotoRead",
                pii: &[],
                safe: &[
                    "message_id",
                    "reading/candidates/*/reasons/*",
                    "reading/candidates/*/type",
                    "reading/candidates/*/value",
                    "reading/candidates/*/vin_info/check_digit",
                    "reading/candidates/*/vin_info/country",
                    "reading/candidates/*/vin_info/manufacturer",
                    "reading/candidates/*/vin_info/plant",
                    "reading/candidates/*/vin_info/region",
                    "reading/candidates/*/vin_info/serial",
                    "reading/candidates/*/vin_info/vds",
                    "reading/candidates/*/vin_info/vin",
                    "reading/candidates/*/vin_info/wmi",
                    "reading/flags/*",
                    "reading/kind",
                    "sha256",
                ],
            },
            Fields { event: "PhotoNotRead", pii: &[], safe: &["message_id", "reason", "sha256"] },
            Fields { event: "TeamNotified", pii: &[], safe: &["chat_id"] },
            // Telegram errors may quote the notice, which holds the customer's name and last message.
            Fields { event: "TeamNotificationFailed", pii: &["error"], safe: &[] },
            Fields { event: "CustomerErased", pii: &[], safe: &["cause", "customer_id", "erased_at", "erased_by"] },
        ];
        FIELDS
    }
}

/// `MessageReceived` v1 → v2: adds `kind` and `reply_to`.
pub fn message_received_v1_to_v2(mut payload: serde_json::Value) -> serde_json::Value {
    if let Some(body) = payload.get_mut("MessageReceived").and_then(|b| b.as_object_mut()) {
        let has_files = body.get("attachments").and_then(|a| a.as_array()).is_some_and(|a| !a.is_empty());
        body.entry("kind").or_insert_with(|| serde_json::json!(if has_files { "document" } else { "text" }));
        body.entry("reply_to").or_insert(serde_json::Value::Null);
    }
    payload
}

/// `ReplyDelivered` v1 → v2: the status text (`delivered`, `read`, `failed: <reason>`) becomes a
/// [`DeliveryStatus`].
pub fn reply_delivered_v1_to_v2(mut payload: serde_json::Value) -> serde_json::Value {
    if let Some(body) = payload.get_mut("ReplyDelivered").and_then(|b| b.as_object_mut())
        && let Some(serde_json::Value::String(text)) = body.get("status")
    {
        let status = DeliveryStatus::from_legacy(text);
        body.insert("status".into(), serde_json::to_value(status).expect("a status serializes"));
    }
    payload
}
