//! Evolving: events folded into the state.

use uuid::Uuid;

use super::events::ConversationEvent;
use super::state::{
    Conversation, KEEP_DECIDED, LookupProgress, LookupRef, RECENT_PROVIDER_IDS, ReplyState, SuggestionState,
    provider_key,
};
use super::types::{ReplyStatus, Status, SuggestionStatus};
use crate::vehicle_lookup::VehicleDataStatus;

use ConversationEvent as E;

impl Conversation {
    /// Folds one event into the state.
    pub fn evolve(&mut self, event: ConversationEvent) {
        match event {
            E::ConversationStarted {
                tenant_id,
                channel,
                account_id,
                chat_id,
                customer_id,
                customer_name,
                customer_phone,
                ..
            } => {
                self.started = true;
                self.tenant_id = tenant_id;
                self.channel = Some(channel);
                self.account_id = account_id;
                self.chat_id = chat_id;
                self.customer_id = customer_id;
                self.customer_name = customer_name;
                self.customer_phone = customer_phone;
                self.status = Status::Open;
            }
            E::MessageReceived { provider_message_id, sender_name, received_at, .. } => {
                self.messages += 1;
                self.last_customer_message_at = Some(received_at);
                if self.customer_name.is_none() {
                    self.customer_name = sender_name;
                }
                self.recent_provider_ids.push_back(provider_key(&provider_message_id));
                while self.recent_provider_ids.len() > RECENT_PROVIDER_IDS {
                    self.recent_provider_ids.pop_front();
                }
            }
            E::CustomerAliasLinked { alias } => self.aliases.push(alias),
            E::CustomerErased { .. } => {
                self.erased = true;
                self.chat_id = crate::pii::ERASED.to_string();
                self.customer_name = None;
                self.customer_phone = None;
                self.aliases.clear();
                self.pending_request = None;
                for s in self.suggestions.values_mut() {
                    s.text = crate::pii::ERASED.to_string();
                }
                for r in self.replies.values_mut() {
                    r.text = crate::pii::ERASED.to_string();
                }
            }
            E::AttachmentStored { message_id, index, .. } | E::AttachmentRefused { message_id, index, .. } => {
                self.media_recorded.insert((message_id, index));
            }
            E::PhotoRead { message_id, index, .. } | E::PhotoNotRead { message_id, index, .. } => {
                self.photos_recorded.insert((message_id, index));
            }
            E::TeamNotified { escalation, .. } | E::TeamNotificationFailed { escalation, .. } => {
                self.team_notices.insert(escalation);
            }
            E::VehicleIdDetected { .. } | E::TransmissionCodeDetected { .. } => {}
            E::VehicleLookupRequested { lookup_id, value, .. } => {
                let r = self.vehicle_lookups.entry(lookup_id).or_insert(LookupRef {
                    value: value.clone(),
                    progress: LookupProgress::Active,
                    revision: 0,
                });
                r.value = value;
                r.progress = LookupProgress::Active;
            }
            E::VehicleDataAttached { lookup_id, revision, data } => {
                let progress = match data.status {
                    VehicleDataStatus::NotFound => LookupProgress::NotFound,
                    _ => LookupProgress::Answered,
                };
                self.vehicle_lookups.insert(lookup_id, LookupRef { value: data.value, progress, revision });
            }
            E::VehicleLookupFailed { lookup_id, revision, value, .. } => {
                self.vehicle_lookups.insert(lookup_id, LookupRef { value, progress: LookupProgress::Failed, revision });
            }
            E::SuggestionRequested { request_id, .. } => self.pending_request = Some(request_id),
            E::SuggestionGenerated { suggestion_id, request_id, text, .. } => {
                // Template suggestions are not answers to the pending drafting request.
                if self.pending_request == Some(request_id) {
                    self.pending_request = None;
                }
                self.suggestions.insert(suggestion_id, SuggestionState { status: SuggestionStatus::Pending, text });
            }
            E::SuggestionFailed { .. } => self.pending_request = None,
            E::SuggestionSuperseded { suggestion_id, .. } => {
                self.set_suggestion(suggestion_id, SuggestionStatus::Superseded)
            }
            E::SuggestionApproved { suggestion_id, .. } => {
                self.set_suggestion(suggestion_id, SuggestionStatus::Approved)
            }
            E::SuggestionEdited { suggestion_id, .. } => self.set_suggestion(suggestion_id, SuggestionStatus::Edited),
            E::SuggestionRejected { suggestion_id, .. } => {
                self.set_suggestion(suggestion_id, SuggestionStatus::Rejected)
            }
            E::OperatorReplied { .. } => {}
            E::ReplyQueued { reply_id, text, send_after, attachment, .. } => {
                self.replies.insert(
                    reply_id,
                    ReplyState {
                        status: ReplyStatus::Queued,
                        attempts: 0,
                        started_at: None,
                        provider_message_id: None,
                        text,
                        not_before: Some(send_after),
                        attachment,
                    },
                );
                self.prune_replies();
            }
            E::ReplySendStarted { reply_id, attempt, started_at } => {
                if let Some(r) = self.replies.get_mut(&reply_id) {
                    r.status = ReplyStatus::Sending;
                    r.attempts = attempt;
                    r.started_at = Some(started_at);
                }
            }
            E::ReplySent { reply_id, provider_message_id, .. } => {
                if let Some(r) = self.replies.get_mut(&reply_id) {
                    r.status = ReplyStatus::Sent;
                    r.provider_message_id = Some(provider_message_id);
                    // A sent reply needs only its provider id (for delivery statuses), not its text.
                    r.text = String::new();
                }
            }
            E::ReplySendRetryScheduled { reply_id, retry_at, .. } => {
                if let Some(r) = self.replies.get_mut(&reply_id) {
                    r.status = ReplyStatus::Queued;
                    r.started_at = None;
                    r.not_before = Some(retry_at);
                }
            }
            E::ReplyRetryRequested { reply_id } => {
                if let Some(r) = self.replies.get_mut(&reply_id) {
                    r.status = ReplyStatus::Queued;
                    r.started_at = None;
                    r.not_before = None;
                }
            }
            E::ReplyFailed { reply_id, .. } => {
                if let Some(r) = self.replies.get_mut(&reply_id) {
                    r.status = ReplyStatus::Failed;
                }
            }
            E::ReplyDelivered { reply_id, .. } => {
                if let Some(r) = self.replies.get_mut(&reply_id) {
                    r.status = ReplyStatus::Delivered;
                }
            }
            E::ConversationEscalated { .. } | E::ConversationResolved | E::ConversationReopened { .. } => {}
            E::StatusChanged { to, .. } => self.status = to,
            E::ConversationMuted { muted } => self.muted = muted,
            E::OperatorAssigned { operator } => self.assigned = operator,
            E::ConversationRead => {}
            E::LeadLinked { lead_id } => {
                if !self.leads.contains(&lead_id) {
                    self.leads.push(lead_id);
                }
            }
        }
    }

    fn set_suggestion(&mut self, id: Uuid, status: SuggestionStatus) {
        if let Some(s) = self.suggestions.get_mut(&id) {
            s.status = status;
            // Decided suggestions need only their status, not their text.
            s.text.clear();
        }
        let decided = self.suggestions.values().filter(|s| s.status != SuggestionStatus::Pending).count();
        if decided > KEEP_DECIDED {
            let oldest: Vec<Uuid> = self
                .suggestions
                .iter()
                .filter(|(_, s)| s.status != SuggestionStatus::Pending)
                .map(|(id, _)| *id)
                .take(decided - KEEP_DECIDED)
                .collect();
            for id in oldest {
                self.suggestions.remove(&id);
            }
        }
    }

    fn prune_replies(&mut self) {
        let finals = self.replies.values().filter(|r| r.status.is_final()).count();
        if finals > KEEP_DECIDED {
            let oldest: Vec<Uuid> = self
                .replies
                .iter()
                .filter(|(_, r)| r.status.is_final())
                .map(|(id, _)| *id)
                .take(finals - KEEP_DECIDED)
                .collect();
            for id in oldest {
                self.replies.remove(&id);
            }
        }
    }
}
