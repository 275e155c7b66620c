//! [`Lead::evolve`]: folds one event into the state.

use super::events::LeadEvent;
use super::state::{AttemptRecord, ContactRecord, Lead, LeadStatus, PendingCheck, RECENT_SUBMISSIONS};

use LeadEvent as E;
use LeadStatus as S;

impl Lead {
    /// Folds one event into the state.
    pub fn evolve(&mut self, event: LeadEvent) {
        match event {
            E::LeadReceived {
                tenant_id,
                form_id,
                form_kind,
                submission_id,
                fingerprint,
                kind,
                fields,
                text,
                received_at,
                ..
            } => {
                self.status = Some(S::Received);
                self.tenant_id = tenant_id;
                self.form_id = form_id;
                self.form_kind = Some(form_kind);
                self.fingerprint = fingerprint;
                self.kind = kind;
                self.fields = *fields;
                self.text = text;
                self.received_at = Some(received_at);
                self.submissions = 1;
                self.remember(submission_id);
            }
            E::SubmissionRepeated { submission_id, .. } => {
                self.submissions += 1;
                self.remember(submission_id);
            }
            E::OutreachScheduled { round, due_at, outside_hours, scheduled_at, .. } => {
                self.status = Some(if due_at > scheduled_at { S::Scheduled } else { S::Received });
                self.round = round;
                self.due_at = Some(due_at);
                self.outside_hours = outside_hours;
                self.attempts.clear();
                self.contact = None;
                self.failure = None;
            }
            E::OutreachStarted { .. } => self.status = Some(S::Contacting),
            E::OutreachAttempted { attempt, channel, account_id, recipient, reply_id, conversation_id, .. } => {
                self.attempts.push(AttemptRecord {
                    attempt,
                    channel,
                    account_id,
                    recipient,
                    reply_id,
                    conversation_id,
                    error: None,
                });
            }
            E::OutreachAttemptFailed { reply_id, error, .. } => self.attempt_failed(reply_id, error),
            E::LeadContacted {
                round,
                attempt,
                channel,
                account_id,
                conversation_id,
                reply_id,
                provider_message_id,
                contacted_at,
            } => {
                self.status = Some(S::Contacted);
                self.conversation_id = Some(conversation_id);
                self.contact = Some(ContactRecord {
                    round,
                    attempt,
                    channel,
                    account_id,
                    conversation_id,
                    reply_id,
                    provider_message_id,
                    contacted_at,
                });
            }
            E::ContactDeliveryFailed { reply_id, error, .. } => {
                self.status = Some(S::Contacting);
                self.contact = None;
                self.attempt_failed(reply_id, error);
            }
            E::LeadFailed { reason, .. } => {
                self.status = Some(S::Failed);
                self.failure = Some(reason);
            }
            E::OutreachCancelled { .. } => self.due_at = None,
            E::NoReplyCheckScheduled { check, conversation_id, channel, due_at, after_secs } => {
                self.checks = self.checks.max(check);
                self.pending_check = Some(PendingCheck { check, conversation_id, channel, due_at, after_secs });
            }
            E::NoReplyCheckCancelled { check, .. } => {
                if self.pending_check.as_ref().is_some_and(|p| p.check == check) {
                    self.pending_check = None;
                }
            }
            E::NoReplyDetected { check, .. } => {
                if self.pending_check.as_ref().is_some_and(|p| p.check == check) {
                    self.pending_check = None;
                }
                if self.status == Some(S::Contacted) {
                    self.status = Some(S::NoReply);
                }
            }
            E::CustomerReplied { replied_at, .. } => {
                self.status = Some(S::Replied);
                self.replied_at.get_or_insert(replied_at);
            }
            E::LeadQualified { qualified_at, .. } => {
                self.status = Some(S::Qualified);
                self.qualified_at = Some(qualified_at);
            }
            E::LeadWon { .. } => self.status = Some(S::Won),
            E::LeadLost { reason, .. } => {
                self.status = Some(S::Lost);
                self.lost_reason = Some(reason);
            }
            E::LeadAssigned { operator, .. } => self.assigned_to = operator,
            E::TeamNotified { notice, .. } | E::TeamNotificationFailed { notice, .. } => self.notices.push(notice),
            E::LeadErased { .. } => {
                self.erased = true;
                self.pending_check = None;
                self.fields = Default::default();
                self.text = crate::pii::ERASED.to_string();
                self.lost_reason = None;
            }
        }
    }

    fn attempt_failed(&mut self, reply_id: uuid::Uuid, error: String) {
        if let Some(a) = self.attempts.iter_mut().find(|a| a.reply_id == reply_id) {
            a.error = Some(error);
        }
    }

    fn remember(&mut self, submission_id: uuid::Uuid) {
        self.recent_submissions.push_back(submission_id);
        while self.recent_submissions.len() > RECENT_SUBMISSIONS {
            self.recent_submissions.pop_front();
        }
    }
}
