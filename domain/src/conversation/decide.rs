//! Deciding: a command checked against the state becomes events (pure: ids and times come in
//! the command).

use uuid::Uuid;

use super::commands::{
    ConversationCommand, ConversationError, DetectedCode, DetectedVehicleId, Drafted, Inbound, LookupReport,
    LookupReportOutcome, MAX_TEXT, MediaOutcome, PhotoReport, PriceReport, check_reason, check_text,
};
use super::events::ConversationEvent;
use super::state::{Conversation, LookupProgress, ReplyState, SuggestionState, provider_key};
use super::types::Attachment;
use super::types::{DeliveryStatus, ReplyOrigin, ReplyStatus, Status, SuggestionStatus};
use crate::reply::Decision;
use crate::text::clean_customer;
use crate::vehicle_lookup::{LookupSource, VehicleId};

use ConversationEvent as E;

impl Conversation {
    /// Checks a command against the state and returns the events it produces (none: nothing to
    /// do, e.g. a message already received).
    pub fn decide(&self, command: ConversationCommand) -> Result<Vec<ConversationEvent>, ConversationError> {
        use ConversationCommand as C;
        if !self.started && !matches!(command, C::ReceiveMessage(_) | C::WriteToLead(_)) {
            return Err(ConversationError::NotFound);
        }
        if self.erased {
            return match command {
                C::EraseCustomer { .. } => Ok(vec![]),
                _ => Err(ConversationError::Erased),
            };
        }
        match command {
            C::EraseCustomer { by, cause, at } => {
                Ok(vec![E::CustomerErased { customer_id: self.customer_id, erased_by: by, cause, erased_at: at }])
            }
            C::ReceiveMessage(m) => Ok(self.receive(*m)),
            C::LinkAlias { alias } => {
                let alias = alias.trim().to_string();
                if alias.is_empty() || alias == self.chat_id || self.aliases.contains(&alias) {
                    return Ok(vec![]);
                }
                Ok(vec![E::CustomerAliasLinked { alias }])
            }
            C::RecordSuggestion(d) => self.record_suggestion(*d),
            C::FailSuggestion { request_id, reason } => {
                if self.pending_request != Some(request_id) {
                    return Err(ConversationError::RequestNotPending);
                }
                Ok(vec![E::SuggestionFailed { request_id, reason }])
            }
            C::RequestSuggestion { request_id, trigger_message_id, at } => {
                if self.pending_request.is_some() || self.muted {
                    return Ok(vec![]);
                }
                Ok(vec![E::SuggestionRequested { request_id, trigger_message_id, not_before: at }])
            }
            C::Approve { suggestion_id, reply_id, send_after } => {
                let s = self.pending_suggestion(suggestion_id)?;
                self.not_resolved()?;
                Ok(vec![
                    E::SuggestionApproved { suggestion_id, automatic: false },
                    E::ReplyQueued {
                        reply_id,
                        suggestion_id: Some(suggestion_id),
                        text: s.text.clone(),
                        origin: ReplyOrigin::Suggestion,
                        send_after,
                        attachment: None,
                    },
                ])
            }
            C::Edit { suggestion_id, reply_id, text, send_after } => {
                self.pending_suggestion(suggestion_id)?;
                self.not_resolved()?;
                let text = check_text(&text)?;
                Ok(vec![
                    E::SuggestionEdited { suggestion_id, text: text.clone() },
                    E::ReplyQueued {
                        reply_id,
                        suggestion_id: Some(suggestion_id),
                        text,
                        origin: ReplyOrigin::Edited,
                        send_after,
                        attachment: None,
                    },
                ])
            }
            C::Reject { suggestion_id, reason } => {
                let reason = reason.as_deref().map(check_reason).transpose()?;
                self.pending_suggestion(suggestion_id)?;
                Ok(vec![E::SuggestionRejected { suggestion_id, reason }])
            }
            C::Reply { reply_id, text, send_after, attachment } => {
                // A file may go without a caption.
                let text =
                    if attachment.is_some() && text.trim().is_empty() { String::new() } else { check_text(&text)? };
                let mut out = Vec::new();
                if self.status == Status::Resolved {
                    out.push(E::ConversationReopened { reason: "operator replied".into() });
                    out.push(E::StatusChanged {
                        from: Status::Resolved,
                        to: Status::Open,
                        reason: "operator replied".into(),
                    });
                }
                // A manual answer makes the pending drafts obsolete.
                out.extend(self.pending_suggestion_ids().map(|id| E::SuggestionRejected {
                    suggestion_id: id,
                    reason: Some("an operator answered instead".into()),
                }));
                out.push(E::OperatorReplied { reply_id, text: text.clone() });
                out.push(E::ReplyQueued {
                    reply_id,
                    suggestion_id: None,
                    text,
                    origin: ReplyOrigin::Operator,
                    send_after,
                    attachment,
                });
                Ok(out)
            }
            C::StartSend { reply_id, at } => {
                let r = self.reply(reply_id)?;
                match r.status {
                    ReplyStatus::Queued => {
                        Ok(vec![E::ReplySendStarted { reply_id, attempt: r.attempts + 1, started_at: at }])
                    }
                    other => Err(ConversationError::ReplyNotInState(other.as_str())),
                }
            }
            C::RecordSent { reply_id, provider_message_id, at, reconciled } => {
                let r = self.reply(reply_id)?;
                if r.status.is_final() {
                    return Err(ConversationError::ReplyNotInState(r.status.as_str()));
                }
                let mut out = vec![E::ReplySent { reply_id, provider_message_id, sent_at: at, reconciled }];
                if self.status == Status::Open {
                    out.push(E::StatusChanged {
                        from: Status::Open,
                        to: Status::WaitingCustomer,
                        reason: "reply sent".into(),
                    });
                }
                Ok(out)
            }
            C::ScheduleRetry { reply_id, retry_at, reason } => {
                let r = self.reply(reply_id)?;
                if r.status != ReplyStatus::Sending {
                    return Err(ConversationError::ReplyNotInState(r.status.as_str()));
                }
                Ok(vec![E::ReplySendRetryScheduled { reply_id, attempt: r.attempts, retry_at, reason }])
            }
            C::FailReply { reply_id, reason, permanent } => {
                let r = self.reply(reply_id)?;
                if r.status.is_final() {
                    return Err(ConversationError::ReplyNotInState(r.status.as_str()));
                }
                Ok(vec![E::ReplyFailed { reply_id, reason, permanent }])
            }
            C::RetryReply { reply_id } => {
                let r = self.reply(reply_id)?;
                if r.status != ReplyStatus::Failed {
                    return Err(ConversationError::ReplyNotInState(r.status.as_str()));
                }
                self.not_resolved()?;
                Ok(vec![E::ReplyRetryRequested { reply_id }])
            }
            C::RecordDelivery { provider_message_id, status, at } => {
                let found = self
                    .replies
                    .iter()
                    .find(|(_, r)| r.provider_message_id.as_deref() == Some(provider_message_id.as_str()));
                match found {
                    Some((id, r)) if r.status == ReplyStatus::Sent => {
                        Ok(vec![E::ReplyDelivered { reply_id: *id, provider_message_id, status, at }])
                    }
                    Some((id, r)) if r.status == ReplyStatus::Delivered && status == DeliveryStatus::Read => {
                        Ok(vec![E::ReplyDelivered { reply_id: *id, provider_message_id, status, at }])
                    }
                    Some(_) => Ok(vec![]),
                    None => Err(ConversationError::ReplyNotFound),
                }
            }
            C::Escalate { reason, suggestion_id } => {
                let reason = check_reason(&reason)?;
                match self.status {
                    Status::Resolved => return Err(ConversationError::Resolved),
                    Status::Escalated => return Err(ConversationError::Already("escalated")),
                    _ => {}
                }
                let mut out = Vec::new();
                if let Some(id) = suggestion_id {
                    self.pending_suggestion(id)?;
                    out.push(E::SuggestionRejected { suggestion_id: id, reason: Some("escalated".into()) });
                }
                out.push(E::ConversationEscalated { reason: reason.clone(), suggestion_id });
                out.push(E::StatusChanged { from: self.status, to: Status::Escalated, reason });
                Ok(out)
            }
            C::Resolve => {
                if self.status == Status::Resolved {
                    return Err(ConversationError::Already("resolved"));
                }
                let mut out: Vec<_> = self
                    .pending_suggestion_ids()
                    .map(|id| E::SuggestionRejected { suggestion_id: id, reason: Some("conversation resolved".into()) })
                    .collect();
                out.push(E::ConversationResolved);
                out.push(E::StatusChanged {
                    from: self.status,
                    to: Status::Resolved,
                    reason: "resolved by an operator".into(),
                });
                Ok(out)
            }
            C::Reopen => {
                if !matches!(self.status, Status::Resolved | Status::Escalated) {
                    return Err(ConversationError::InvalidTransition { from: self.status, to: Status::Open });
                }
                Ok(vec![
                    E::ConversationReopened { reason: "reopened by an operator".into() },
                    E::StatusChanged { from: self.status, to: Status::Open, reason: "reopened by an operator".into() },
                ])
            }
            C::Mute { muted } => {
                if self.muted == muted {
                    return Ok(vec![]);
                }
                Ok(vec![E::ConversationMuted { muted }])
            }
            C::Assign { operator } => {
                if self.assigned == operator {
                    return Ok(vec![]);
                }
                Ok(vec![E::OperatorAssigned { operator }])
            }
            C::MarkRead => Ok(vec![E::ConversationRead]),
            C::RequestVehicleLookup { lookup_id, request_id, id, requested_by } => {
                if !self.wants_lookup(lookup_id) {
                    return Ok(vec![]);
                }
                Ok(vec![E::VehicleLookupRequested {
                    lookup_id,
                    request_id,
                    message_id: None,
                    id_type: id.id_type(),
                    value: id.value().to_string(),
                    source: LookupSource::Operator,
                    requested_by,
                }])
            }
            C::RecordVehicleLookup(report) => Ok(self.record_lookup(*report)),
            C::WriteToLead(m) => self.write_to_lead(*m),
            C::RecordPriceSuggestions(report) => Ok(self.record_price(*report)),
            C::RecordAttachment { message_id, index, outcome } => {
                if self.media_recorded.contains(&(message_id, index)) {
                    return Ok(vec![]);
                }
                Ok(vec![match outcome {
                    MediaOutcome::Stored(media) => E::AttachmentStored { message_id, index, media },
                    MediaOutcome::Refused { reason, size, detail } => E::AttachmentRefused {
                        message_id,
                        index,
                        reason,
                        size,
                        detail: detail.as_deref().map(clean_customer),
                    },
                }])
            }
            C::RecordPhotoReading(report) => Ok(self.record_photo(*report)),
            C::RecordTeamNotified { escalation, chat_id } => Ok(if self.team_notices.contains(&escalation) {
                vec![]
            } else {
                vec![E::TeamNotified { escalation, chat_id }]
            }),
            C::RecordTeamNotifyFailed { escalation, error } => Ok(if self.team_notices.contains(&escalation) {
                vec![]
            } else {
                vec![E::TeamNotificationFailed { escalation, error: clean_customer(&error) }]
            }),
        }
    }

    /// A photo's reading, once: the reading, then the lookups it starts as a typed identifier
    /// would, or the request for a clearer photo.
    fn record_photo(&self, r: PhotoReport) -> Vec<ConversationEvent> {
        let PhotoReport { message_id, index, sha256, outcome, vehicle_id, transmission_code, clearer_photo } = r;
        if self.photos_recorded.contains(&(message_id, index)) {
            return vec![];
        }
        let mut out = vec![match outcome {
            Ok(reading) => E::PhotoRead { message_id, index, sha256, reading },
            Err(reason) => return vec![E::PhotoNotRead { message_id, index, sha256, reason }],
        }];
        if let Some(DetectedVehicleId { id_type, value, score, reasons, lookup_id }) = vehicle_id {
            let lookup =
                lookup_id.and_then(|lookup_id| VehicleId::parse(id_type, &value).ok().map(|id| (lookup_id, id)));
            out.push(E::VehicleIdDetected { message_id, id_type, value, score, reasons });
            if let Some((lookup_id, id)) = lookup
                && self.wants_lookup(lookup_id)
            {
                out.push(E::VehicleLookupRequested {
                    lookup_id,
                    request_id: Uuid::new_v5(&message_id, format!("photo:{index}").as_bytes()),
                    message_id: Some(message_id),
                    id_type: id.id_type(),
                    value: id.value().to_string(),
                    source: LookupSource::Detected,
                    requested_by: "photo".into(),
                });
            }
        } else if let Some(DetectedCode { code, score }) = transmission_code {
            out.push(E::TransmissionCodeDetected { message_id, code, score });
        } else if let Some(s) = clearer_photo
            && !self.muted
            && !self.suggestions.contains_key(&s.suggestion_id)
            && let Ok(text) = check_text(&s.text)
        {
            out.push(E::SuggestionGenerated {
                suggestion_id: s.suggestion_id,
                request_id: s.suggestion_id,
                text,
                intent: s.intent,
                confidence: s.confidence,
                decision: Decision::NeedApproval,
                explanations: vec![format!("from the template {} after an unreadable photo", s.template)],
                source: "template".into(),
                model: None,
                autosend_block_reason: None,
            });
        }
        out
    }

    /// A lead's first message: opens the conversation when the customer has none, links the lead,
    /// queues the message (once per reply id).
    fn write_to_lead(&self, m: super::commands::LeadMessage) -> Result<Vec<ConversationEvent>, ConversationError> {
        if self.replies.contains_key(&m.reply_id) {
            return Ok(vec![]);
        }
        let text = check_text(&clean_customer(&m.text))?;
        let mut out = Vec::new();
        if !self.started {
            out.push(E::ConversationStarted {
                tenant_id: m.tenant_id,
                channel: m.channel,
                account_id: m.account_id,
                chat_id: m.chat_id,
                customer_id: m.customer_id,
                customer_name: m.customer_name,
                customer_phone: m.customer_phone,
                started_at: m.at,
            });
        } else if self.status == Status::Resolved {
            out.push(E::ConversationReopened { reason: "a lead of the customer came in".into() });
            out.push(E::StatusChanged {
                from: Status::Resolved,
                to: Status::Open,
                reason: "a lead of the customer came in".into(),
            });
        }
        if !self.leads.contains(&m.lead_id) {
            out.push(E::LeadLinked { lead_id: m.lead_id });
        }
        out.push(E::ReplyQueued {
            reply_id: m.reply_id,
            suggestion_id: None,
            text,
            origin: ReplyOrigin::Lead,
            send_after: m.send_after,
            attachment: None,
        });
        Ok(out)
    }

    /// Whether a (new) request for lookup `lookup_id` is wanted: none was made, or the last one
    /// found nothing or failed.
    fn wants_lookup(&self, lookup_id: Uuid) -> bool {
        self.vehicle_lookups
            .get(&lookup_id)
            .is_none_or(|r| matches!(r.progress, LookupProgress::NotFound | LookupProgress::Failed))
    }

    fn record_lookup(&self, report: LookupReport) -> Vec<ConversationEvent> {
        let LookupReport { lookup_id, revision, outcome, suggestion } = report;
        if self.vehicle_lookups.get(&lookup_id).is_some_and(|r| r.revision >= revision) {
            return vec![];
        }
        let mut out = vec![match outcome {
            LookupReportOutcome::Data(data) => E::VehicleDataAttached { lookup_id, revision, data },
            LookupReportOutcome::Failed { id_type, value, reason } => {
                E::VehicleLookupFailed { lookup_id, revision, id_type, value, reason }
            }
        }];
        if let Some(s) = suggestion {
            let duplicate = self.suggestions.contains_key(&s.suggestion_id)
                || self.suggestions.values().any(|p| p.status == SuggestionStatus::Pending && p.text == s.text.trim());
            if !self.muted
                && !duplicate
                && let Ok(text) = check_text(&clean_customer(&s.text))
            {
                out.push(E::SuggestionGenerated {
                    suggestion_id: s.suggestion_id,
                    request_id: lookup_id,
                    text,
                    intent: s.intent,
                    confidence: s.confidence,
                    decision: Decision::NeedApproval,
                    explanations: vec![format!("from the template {} after vehicle lookup {lookup_id}", s.template)],
                    source: "template".into(),
                    model: None,
                    autosend_block_reason: None,
                });
            }
        }
        out
    }

    fn receive(&self, m: Inbound) -> Vec<ConversationEvent> {
        let key = provider_key(&m.provider_message_id);
        if self.recent_provider_ids.contains(&key) {
            return vec![];
        }
        let mut out = Vec::new();
        if !self.started {
            out.push(E::ConversationStarted {
                tenant_id: m.tenant_id,
                channel: m.channel,
                account_id: m.account_id,
                chat_id: m.chat_id.clone(),
                customer_id: m.customer_id,
                customer_name: m.customer_name.as_deref().map(clean_customer),
                customer_phone: m.customer_phone.as_deref().map(clean_customer),
                started_at: m.received_at,
            });
        }
        match self.status {
            Status::Resolved => {
                out.push(E::ConversationReopened { reason: "the customer wrote".into() });
                out.push(E::StatusChanged {
                    from: Status::Resolved,
                    to: Status::Open,
                    reason: "the customer wrote".into(),
                });
            }
            Status::WaitingCustomer => out.push(E::StatusChanged {
                from: Status::WaitingCustomer,
                to: Status::Open,
                reason: "the customer wrote".into(),
            }),
            Status::Open | Status::Escalated => {}
        }
        // Customers' text is never refused: it is kept without control characters.
        let text: String = clean_customer(&m.text).trim().chars().take(MAX_TEXT).collect();
        let customer_name = m.customer_name.as_deref().map(clean_customer);
        out.push(E::MessageReceived {
            message_id: m.message_id,
            provider_message_id: m.provider_message_id,
            text,
            attachments: m.attachments.into_iter().map(clean_attachment).collect(),
            sender_name: customer_name,
            sent_at: m.sent_at,
            received_at: m.received_at,
            kind: m.kind,
            reply_to: m.reply_to.as_deref().map(clean_customer),
        });
        if let Some(DetectedVehicleId { id_type, value, score, reasons, lookup_id }) = m.vehicle_id {
            let lookup =
                lookup_id.and_then(|lookup_id| VehicleId::parse(id_type, &value).ok().map(|id| (lookup_id, id)));
            out.push(E::VehicleIdDetected { message_id: m.message_id, id_type, value, score, reasons });
            if let Some((lookup_id, id)) = lookup
                && self.wants_lookup(lookup_id)
            {
                out.push(E::VehicleLookupRequested {
                    lookup_id,
                    request_id: m.message_id,
                    message_id: Some(m.message_id),
                    id_type: id.id_type(),
                    value: id.value().to_string(),
                    source: LookupSource::Detected,
                    requested_by: "conversation".into(),
                });
            }
        }
        if let Some(DetectedCode { code, score }) = m.transmission_code {
            out.push(E::TransmissionCodeDetected { message_id: m.message_id, code, score });
        }
        if !self.muted {
            // The newest customer message makes pending drafts obsolete; one request covers a burst.
            out.extend(
                self.pending_suggestion_ids()
                    .map(|id| E::SuggestionSuperseded { suggestion_id: id, by_message_id: m.message_id }),
            );
            if self.pending_request.is_none() {
                out.push(E::SuggestionRequested {
                    request_id: m.request_id,
                    trigger_message_id: m.message_id,
                    not_before: m.received_at + m.debounce,
                });
            }
        }
        out
    }

    /// The suggestions of a price answer: each new one (by id) is recorded with its decision; a
    /// muted conversation gets none, and at most one of them escalates the conversation.
    fn record_price(&self, report: PriceReport) -> Vec<ConversationEvent> {
        let mut out = Vec::new();
        if self.muted {
            return out;
        }
        let mut escalated = false;
        for mut d in report.suggestions {
            let Ok(text) = check_text(&clean_customer(&d.text)) else { continue };
            if self.suggestions.contains_key(&d.suggestion_id) {
                continue;
            }
            d.request_id = report.lookup_id;
            if escalated && d.decision == Decision::Escalate {
                d.decision = Decision::NeedApproval;
            }
            escalated |= d.decision == Decision::Escalate;
            out.extend(self.suggestion_events(d, text));
        }
        out
    }

    fn record_suggestion(&self, d: Drafted) -> Result<Vec<ConversationEvent>, ConversationError> {
        if self.pending_request != Some(d.request_id) {
            return Err(ConversationError::RequestNotPending);
        }
        // A generator's text is cleaned like a customer's: a stray control character in a draft
        // is no reason to lose it.
        let text = check_text(&clean_customer(&d.text))?;
        Ok(self.suggestion_events(d, text))
    }

    /// A drafted suggestion and what its decision does: escalate, or approve and queue it.
    fn suggestion_events(&self, d: Drafted, text: String) -> Vec<ConversationEvent> {
        let mut out = vec![E::SuggestionGenerated {
            suggestion_id: d.suggestion_id,
            request_id: d.request_id,
            text: text.clone(),
            intent: d.intent,
            confidence: d.confidence,
            decision: d.decision,
            explanations: d.explanations,
            source: d.source,
            model: d.model,
            autosend_block_reason: d.autosend_block_reason.clone(),
        }];
        match d.decision {
            Decision::Escalate if matches!(self.status, Status::Open | Status::WaitingCustomer) => {
                out.push(E::ConversationEscalated {
                    reason: "the reply policy asked for a person".into(),
                    suggestion_id: Some(d.suggestion_id),
                });
                out.push(E::StatusChanged {
                    from: self.status,
                    to: Status::Escalated,
                    reason: "the reply policy asked for a person".into(),
                });
            }
            Decision::AutoSend if d.autosend_block_reason.is_none() && self.status != Status::Resolved => {
                out.push(E::SuggestionApproved { suggestion_id: d.suggestion_id, automatic: true });
                out.push(E::ReplyQueued {
                    reply_id: d.reply_id,
                    suggestion_id: Some(d.suggestion_id),
                    text,
                    origin: ReplyOrigin::Auto,
                    send_after: d.send_after,
                    attachment: None,
                });
            }
            _ => {}
        }
        out
    }

    fn not_resolved(&self) -> Result<(), ConversationError> {
        if self.status == Status::Resolved { Err(ConversationError::Resolved) } else { Ok(()) }
    }

    fn pending_suggestion(&self, id: Uuid) -> Result<&SuggestionState, ConversationError> {
        let s = self.suggestions.get(&id).ok_or(ConversationError::SuggestionNotFound)?;
        if s.status != SuggestionStatus::Pending {
            return Err(ConversationError::SuggestionNotPending(s.status.as_str()));
        }
        Ok(s)
    }

    fn pending_suggestion_ids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.suggestions.iter().filter(|(_, s)| s.status == SuggestionStatus::Pending).map(|(id, _)| *id)
    }

    fn reply(&self, id: Uuid) -> Result<&ReplyState, ConversationError> {
        self.replies.get(&id).ok_or(ConversationError::ReplyNotFound)
    }
}

/// An attachment's names as text a read model can hold (see [`crate::text`]).
fn clean_attachment(a: Attachment) -> Attachment {
    Attachment {
        url: a.url.as_deref().map(clean_customer),
        file_name: a.file_name.as_deref().map(clean_customer),
        mime_type: a.mime_type.as_deref().map(clean_customer),
        file_id: a.file_id.as_deref().map(clean_customer),
        ..a
    }
}
