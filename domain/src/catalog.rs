//! The event catalog: every event type of every aggregate with its version and fields, built from
//! one sample of each event (so it cannot drift from the code). `docs/events.md` is exactly
//! [`markdown`]; a test compares them.

use chrono::{TimeZone, Utc};
use cqrs_es::DomainEvent;
use serde::Serialize;
use uuid::Uuid;

use crate::codec::EventSchema;
use crate::conversation::{
    Attachment, AttachmentKind, ChannelKind, ConversationEvent as C, Decision, DeliveryStatus, MessageKind,
    ReplyOrigin, Status,
};
use crate::probe::ProbeEvent as P;
use crate::vehicle_lookup::{
    GearboxInfo, IdType, LookupResult, LookupSource, LookupStatus, NotFoundResult, PriceOrigin, ResultStatus,
    VehicleData, VehicleDataStatus, VehicleLookupEvent as V, VehicleMeta, Verification,
};

/// One documented event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDoc {
    pub aggregate: &'static str,
    pub event: String,
    pub version: String,
    pub fields: Vec<String>,
    pub meaning: &'static str,
}

/// Fails to compile when a conversation event is added without a catalog entry below.
fn conversation_meaning(e: &C) -> &'static str {
    match e {
        C::ConversationStarted { .. } => "the first message of a customer on a channel opened the conversation",
        C::MessageReceived { .. } => "a customer message arrived (deduplicated by the provider's message id)",
        C::CustomerAliasLinked { .. } => {
            "another id of the same customer on the channel (MAX internal id ↔ phone chat id)"
        }
        C::VehicleIdDetected { .. } => {
            "a VIN or FRAME number scoring at or above the lookup threshold was found in a message"
        }
        C::TransmissionCodeDetected { .. } => {
            "a gearbox code that starts a price lookup was found in a message (not when a VIN or FRAME of it starts a vehicle lookup)"
        }
        C::VehicleLookupRequested { .. } => {
            "a vehicle lookup was asked for (detected in a message, or by an operator); lookup_id names it"
        }
        C::VehicleDataAttached { .. } => {
            "a vehicle lookup answered (or a gearbox was confirmed from its tag): the vehicle data the conversation holds"
        }
        C::VehicleLookupFailed { .. } => "a vehicle lookup gave up",
        C::SuggestionRequested { .. } => "a reply draft is wanted once the customer's burst of messages has ended",
        C::SuggestionGenerated { .. } => "a draft was produced, with intent, confidence and the policy's decision",
        C::SuggestionFailed { .. } => "drafting failed; the conversation waits for an operator",
        C::SuggestionSuperseded { .. } => "a newer customer message made a pending draft obsolete",
        C::SuggestionApproved { .. } => "a draft was approved as written (by an operator, or automatically)",
        C::SuggestionEdited { .. } => "a draft was approved with changed text",
        C::SuggestionRejected { .. } => "a draft was rejected",
        C::OperatorReplied { .. } => "an operator wrote a reply",
        C::ReplyQueued { .. } => "a reply is to be delivered, not before send_after",
        C::ReplySendStarted { .. } => "a worker claimed the send (the durable claim before calling the provider)",
        C::ReplySent { .. } => "the provider accepted the reply (reconciled: found in the provider's journal)",
        C::ReplySendRetryScheduled { .. } => "a send failed transiently and is retried at retry_at",
        C::ReplyFailed { .. } => "the reply could not be delivered",
        C::ReplyRetryRequested { .. } => "an operator asked to send a failed reply again",
        C::ReplyDelivered { .. } => "the provider reported the reply delivered, read or failed",
        C::ConversationEscalated { .. } => "the conversation needs a person",
        C::ConversationResolved => "an operator closed the conversation",
        C::ConversationReopened { .. } => "the conversation was opened again",
        C::ConversationMuted { .. } => "automatic drafting was switched off or on",
        C::StatusChanged { .. } => "the status changed (every change, with its reason)",
        C::OperatorAssigned { .. } => "an operator took the conversation (or gave it back)",
        C::ConversationRead => "an operator read the conversation",
        C::LeadLinked { .. } => "a lead's first message went into this conversation (the customer's reply answers it)",
        C::TeamNotified { .. } => "the escalation bot told the team of an escalation",
        C::TeamNotificationFailed { .. } => "the escalation bot could not tell the team of an escalation",
        C::CustomerErased { .. } => {
            "the customer's data was erased (their key destroyed): every customer-data field of the conversation reads [erased]"
        }
        C::AttachmentStored { .. } => {
            "an attachment was downloaded from the provider and stored, content-addressed (sha256, size, type, thumbnail)"
        }
        C::AttachmentRefused { .. } => {
            "an attachment was not stored: too_large, refused_type or download_failed; nothing of it is kept"
        }
        C::PhotoRead { .. } => {
            "a stored photo was read: its kind, the model's confidence, the identifiers found as detection candidates"
        }
        C::PhotoNotRead { .. } => "a stored photo was not read (no AI key, switched off, an answer that was not JSON)",
    }
}

/// Fails to compile when a vehicle lookup event is added without a catalog entry below.
fn vehicle_lookup_meaning(e: &V) -> &'static str {
    match e {
        V::LookupRequested { .. } => "a lookup round was asked for (the first, or again after not found or failed)",
        V::LookupRequestMerged { .. } => "asked again while a round ran or after it answered: nothing new to do",
        V::LookupStarted { .. } => "a worker claimed an attempt of the round (before opening a browser)",
        V::LookupCompleted { .. } => {
            "the vehicle and gearbox were found (FOUND, MODEL_ONLY, or DECODER_ONLY from the VIN decoder)"
        }
        V::LookupNotFound { .. } => "no catalogue knows the vehicle",
        V::LookupRetryScheduled { .. } => "an attempt failed (evidence kept); the next one is due at retry_at",
        V::LookupFailed { .. } => "the round was given up after its attempts",
        V::LookupRetryRequested { .. } => "an operator asked for another round",
        V::LookupIdCorrected { .. } => "an operator corrected the identifier; the round looks the new one up",
        V::GearboxConfirmed { .. } => "an operator confirmed the gearbox from a photo of its tag",
        V::PriceLookupWanted { .. } => "a gearbox OEM number is known: its price is wanted (once per OEM)",
    }
}

pub(crate) fn vehicle_lookup_samples() -> Vec<V> {
    let t = Utc.timestamp_opt(0, 0).unwrap();
    let id = Uuid::nil();
    let result = LookupResult {
        status: ResultStatus::Found,
        vehicle: VehicleMeta::default(),
        gearbox: GearboxInfo::default(),
        source: String::new(),
        decoder: None,
        confidence: 0.0,
        from_cache: false,
        note: None,
        evidence: vec![],
    };
    let not_found = NotFoundResult {
        source: String::new(),
        sources_tried: vec![],
        vehicle: None,
        decoder: None,
        from_cache: false,
        evidence: vec![],
    };
    vec![
        V::LookupRequested {
            request_id: id,
            round: 1,
            tenant_id: id,
            conversation_id: None,
            message_id: None,
            id_type: IdType::Vin,
            value: String::new(),
            source: LookupSource::Detected,
            requested_by: String::new(),
            requested_at: t,
        },
        V::LookupRequestMerged {
            request_id: id,
            source: LookupSource::Operator,
            requested_by: String::new(),
            status: LookupStatus::Completed,
        },
        V::LookupStarted { round: 1, attempt: 1, started_at: t },
        V::LookupCompleted { round: 1, attempt: 1, conversation_id: None, result, completed_at: t },
        V::LookupNotFound { round: 1, attempt: 1, conversation_id: None, result: not_found, completed_at: t },
        V::LookupRetryScheduled { round: 1, attempt: 1, retry_at: t, reason: String::new(), evidence: vec![] },
        V::LookupFailed {
            round: 1,
            attempts: 1,
            conversation_id: None,
            reason: String::new(),
            decoder: None,
            evidence: vec![],
            failed_at: t,
        },
        V::LookupRetryRequested { round: 1, requested_by: String::new(), requested_at: t },
        V::LookupIdCorrected {
            round: 1,
            id_type: IdType::Vin,
            previous_value: String::new(),
            value: String::new(),
            corrected_by: String::new(),
            corrected_at: t,
        },
        V::GearboxConfirmed {
            conversation_id: None,
            model: String::new(),
            oem: None,
            factory_code: None,
            verification: Verification::default(),
            note: None,
            confirmed_by: String::new(),
            confirmed_at: t,
        },
        V::PriceLookupWanted { oem: String::new(), model: None, origin: PriceOrigin::Lookup },
    ]
}

/// One sample of every probe event.
pub(crate) fn probe_samples() -> Vec<P> {
    let t = Utc.timestamp_opt(0, 0).unwrap();
    vec![
        P::PingRequested { ping_id: Uuid::nil(), at: t },
        P::PongRecorded { ping_id: Uuid::nil(), worker: String::new(), at: t },
    ]
}

fn probe_meaning(e: &P) -> &'static str {
    match e {
        P::PingRequested { .. } => "a no-op job was asked for (bus health check)",
        P::PongRecorded { .. } => "a worker answered the ping",
    }
}

/// One sample of every event (the values are irrelevant; the shapes are what is documented).
pub(crate) fn conversation_samples() -> Vec<C> {
    let t = Utc.timestamp_opt(0, 0).unwrap();
    let id = Uuid::nil();
    vec![
        C::ConversationStarted {
            tenant_id: id,
            channel: ChannelKind::GreenApi,
            account_id: id,
            chat_id: String::new(),
            customer_id: id,
            customer_name: None,
            customer_phone: None,
            started_at: t,
        },
        C::MessageReceived {
            message_id: id,
            provider_message_id: String::new(),
            text: String::new(),
            attachments: vec![Attachment {
                kind: AttachmentKind::Image,
                url: None,
                file_name: None,
                mime_type: None,
                file_id: None,
            }],
            sender_name: None,
            sent_at: t,
            received_at: t,
            kind: MessageKind::Text,
            reply_to: None,
        },
        C::CustomerAliasLinked { alias: String::new() },
        C::VehicleIdDetected {
            message_id: id,
            id_type: IdType::Vin,
            value: String::new(),
            score: 0.0,
            reasons: vec![],
        },
        C::TransmissionCodeDetected { message_id: id, code: String::new(), score: 0.0 },
        C::VehicleLookupRequested {
            lookup_id: id,
            request_id: id,
            message_id: None,
            id_type: IdType::Vin,
            value: String::new(),
            source: LookupSource::Detected,
            requested_by: String::new(),
        },
        C::VehicleDataAttached {
            lookup_id: id,
            revision: 1,
            data: Box::new(VehicleData {
                id_type: IdType::Vin,
                value: String::new(),
                status: VehicleDataStatus::Found,
                vehicle: VehicleMeta::default(),
                gearbox: GearboxInfo::default(),
                source: None,
                confidence: 0.0,
                decoder: None,
                confirmed: None,
                note: None,
            }),
        },
        C::VehicleLookupFailed {
            lookup_id: id,
            revision: 1,
            id_type: IdType::Vin,
            value: String::new(),
            reason: String::new(),
        },
        C::SuggestionRequested { request_id: id, trigger_message_id: id, not_before: t },
        C::SuggestionGenerated {
            suggestion_id: id,
            request_id: id,
            text: String::new(),
            intent: String::new(),
            confidence: 0.0,
            decision: Decision::NeedApproval,
            explanations: vec![],
            source: String::new(),
            model: None,
            autosend_block_reason: None,
        },
        C::SuggestionFailed { request_id: id, reason: String::new() },
        C::SuggestionSuperseded { suggestion_id: id, by_message_id: id },
        C::SuggestionApproved { suggestion_id: id, automatic: false },
        C::SuggestionEdited { suggestion_id: id, text: String::new() },
        C::SuggestionRejected { suggestion_id: id, reason: None },
        C::OperatorReplied { reply_id: id, text: String::new() },
        C::ReplyQueued {
            reply_id: id,
            suggestion_id: None,
            text: String::new(),
            origin: ReplyOrigin::Operator,
            send_after: t,
            attachment: None,
        },
        C::ReplySendStarted { reply_id: id, attempt: 1, started_at: t },
        C::ReplySent { reply_id: id, provider_message_id: String::new(), sent_at: t, reconciled: false },
        C::ReplySendRetryScheduled { reply_id: id, attempt: 1, retry_at: t, reason: String::new() },
        C::ReplyFailed { reply_id: id, reason: String::new(), permanent: false },
        C::ReplyRetryRequested { reply_id: id },
        C::ReplyDelivered {
            reply_id: id,
            provider_message_id: String::new(),
            status: DeliveryStatus::Delivered,
            at: t,
        },
        C::ConversationEscalated { reason: String::new(), suggestion_id: None },
        C::ConversationResolved,
        C::ConversationReopened { reason: String::new() },
        C::ConversationMuted { muted: false },
        C::StatusChanged { from: Status::Open, to: Status::Open, reason: String::new() },
        C::OperatorAssigned { operator: None },
        C::ConversationRead,
        C::LeadLinked { lead_id: id },
        C::AttachmentStored {
            message_id: id,
            index: 0,
            media: crate::media::StoredMedia {
                sha256: String::new(),
                size: 0,
                mime_type: String::new(),
                thumbnail_sha256: None,
            },
        },
        C::AttachmentRefused {
            message_id: id,
            index: 0,
            reason: crate::media::MediaRefusal::TooLarge,
            size: None,
            detail: None,
        },
        C::PhotoRead {
            message_id: id,
            index: 0,
            sha256: String::new(),
            reading: crate::media::PhotoReading {
                kind: crate::media::PhotoKind::Other,
                confidence: 0.0,
                candidates: vec![],
                flags: vec![],
            },
        },
        C::PhotoNotRead {
            message_id: id,
            index: 0,
            sha256: String::new(),
            reason: crate::media::NotReadReason::NoAiKey,
        },
        C::TeamNotified { escalation: 1, chat_id: String::new() },
        C::TeamNotificationFailed { escalation: 1, error: String::new() },
        C::CustomerErased {
            customer_id: Uuid::nil(),
            erased_by: String::new(),
            cause: crate::pii::ErasureCause::Request,
            erased_at: Utc.timestamp_opt(0, 0).unwrap(),
        },
    ]
}

fn fields<E: Serialize>(e: &E, name: &str) -> Vec<String> {
    let v = serde_json::to_value(e).expect("events serialize");
    match v.get(name).and_then(|b| b.as_object()) {
        Some(o) => o.keys().cloned().collect(),
        None => vec![],
    }
}

/// Every event of every aggregate.
pub fn catalog() -> Vec<EventDoc> {
    let mut out = Vec::new();
    for e in conversation_samples() {
        out.push(EventDoc {
            aggregate: "conversation",
            fields: fields(&e, e.name()),
            event: e.event_type(),
            version: e.event_version(),
            meaning: conversation_meaning(&e),
        });
    }
    for e in vehicle_lookup_samples() {
        out.push(EventDoc {
            aggregate: "vehicle_lookup",
            fields: fields(&e, e.name()),
            event: e.event_type(),
            version: e.event_version(),
            meaning: vehicle_lookup_meaning(&e),
        });
    }
    for e in crate::price_lookup::PriceLookupEvent::samples() {
        out.push(EventDoc {
            aggregate: "price_lookup",
            fields: fields(&e, e.name()),
            event: e.event_type(),
            version: e.event_version(),
            meaning: e.meaning(),
        });
    }
    for e in crate::lead::LeadEvent::samples() {
        out.push(EventDoc {
            aggregate: "lead",
            fields: fields(&e, e.name()),
            event: e.event_type(),
            version: e.event_version(),
            meaning: e.meaning(),
        });
    }
    for e in probe_samples() {
        let name = e.event_type();
        out.push(EventDoc {
            aggregate: "probe",
            fields: fields(&e, &name),
            event: name,
            version: e.event_version(),
            meaning: probe_meaning(&e),
        });
    }
    out
}

/// The catalog as Markdown (the text of `docs/events.md`).
pub fn markdown() -> String {
    let mut s = String::from(
        "# Event catalog\n\n\
         Every event the aggregates record, with its current version and fields. Generated from the code by\n\
         `aisales events catalog`; a test fails when this file and the code disagree. A change to an event's fields\n\
         bumps its version and ships with an upcaster for the stored older version (and a test that loads one).\n\n\
         Every event also carries metadata: `tenant_id`, `actor` (`user:<id>`, `token:<id>`, `customer`,\n\
         `worker:<kind>`, `provider:<channel>`, `system`), `correlation_id`, `causation_id`, `request_id`, `occurred_at`.\n\n\
         Upcasters: `MessageReceived` 1 → 2 adds `kind` (`text`, or `file` when it has attachments) and `reply_to` (null).\n",
    );
    let mut aggregate = "";
    for d in catalog() {
        if d.aggregate != aggregate {
            aggregate = d.aggregate;
            s.push_str(&format!("\n## `{aggregate}`\n\n| event | version | fields | meaning |\n|---|---|---|---|\n"));
        }
        let fields = if d.fields.is_empty() {
            "—".to_string()
        } else {
            d.fields.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ")
        };
        s.push_str(&format!("| {} | {} | {} | {} |\n", d.event, d.version, fields, d.meaning));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_conversation_event_type_is_in_the_catalog_once() {
        let names: Vec<String> =
            catalog().into_iter().filter(|d| d.aggregate == "conversation").map(|d| d.event).collect();
        assert_eq!(names, C::types().iter().map(|s| s.to_string()).collect::<Vec<_>>());
    }

    #[test]
    fn every_lead_event_type_is_in_the_catalog_once() {
        let names: Vec<String> = catalog().into_iter().filter(|d| d.aggregate == "lead").map(|d| d.event).collect();
        assert_eq!(names, crate::lead::LeadEvent::types().iter().map(|s| s.to_string()).collect::<Vec<_>>());
    }

    #[test]
    fn every_vehicle_lookup_event_type_is_in_the_catalog_once() {
        let names: Vec<String> =
            catalog().into_iter().filter(|d| d.aggregate == "vehicle_lookup").map(|d| d.event).collect();
        assert_eq!(names, V::types().iter().map(|s| s.to_string()).collect::<Vec<_>>());
    }
}
