//! [`Lead::decide`]: checks a command against the state and returns the events it produces.
//! Pure: no clock, no IO; a command delivered twice produces nothing the second time.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::commands::{LeadCommand, LeadError, NewSubmission};
use super::events::LeadEvent;
use super::routing::FailureReason;
use super::state::{Lead, LeadStatus};

use LeadEvent as E;
use LeadStatus as S;

/// Who asks for the first round.
const FORM: &str = "form";

/// The note of a round waiting for the opening.
fn outside_hours_note(opening: DateTime<Utc>, tz: Tz) -> String {
    let local = opening.with_timezone(&tz);
    format!(
        "Received outside working hours; the first message goes out at the opening, {} ({}).",
        local.format("%a %d.%m.%Y %H:%M"),
        tz.name()
    )
}

impl Lead {
    /// Checks a command against the state and returns the events it produces.
    pub fn decide(&self, command: LeadCommand) -> Result<Vec<LeadEvent>, LeadError> {
        use LeadCommand as C;
        let Some(status) = self.status else {
            return match command {
                C::Receive(s) => Self::received(*s),
                _ => Err(LeadError::NotFound),
            };
        };
        if self.erased {
            return match command {
                C::Erase { .. } => Ok(vec![]),
                _ => Err(LeadError::Erased),
            };
        }
        match command {
            C::Erase { by, cause, at } => Ok(vec![E::LeadErased { erased_by: by, cause, erased_at: at }]),
            C::Receive(s) => {
                if s.tenant_id != self.tenant_id {
                    return Err(LeadError::WrongTenant);
                }
                if self.recent_submissions.contains(&s.submission_id) {
                    return Ok(vec![]);
                }
                Ok(vec![E::SubmissionRepeated { submission_id: s.submission_id, received_at: s.received_at }])
            }
            C::StartOutreach { round, at } => {
                self.current_round(round)?;
                match status {
                    S::Received | S::Scheduled => {
                        if let Some(due) = self.due_at.filter(|due| at < *due) {
                            return Err(LeadError::NotDue(due));
                        }
                        Ok(vec![E::OutreachStarted { round, started_at: at }])
                    }
                    // Claimed already (a job delivered again, a worker resuming): go on.
                    S::Contacting => Ok(vec![]),
                    other => Err(LeadError::NotRunnable(other.as_str())),
                }
            }
            C::RecordAttempt { round, attempt, reply_id, conversation_id, at } => {
                self.running_round(round, status)?;
                if self.attempt(reply_id).is_some() {
                    return Ok(vec![]);
                }
                Ok(vec![E::OutreachAttempted {
                    round,
                    attempt: self.attempts.len() as u32 + 1,
                    channel: attempt.channel,
                    account_id: attempt.account_id,
                    recipient: attempt.recipient,
                    reply_id,
                    conversation_id,
                    attempted_at: at,
                }])
            }
            C::RecordAttemptFailed { round, reply_id, error, at } => {
                self.running_round(round, status)?;
                let a = self.attempt(reply_id).ok_or(LeadError::UnknownAttempt)?;
                if a.error.is_some() {
                    return Ok(vec![]);
                }
                Ok(vec![E::OutreachAttemptFailed {
                    round,
                    attempt: a.attempt,
                    channel: a.channel,
                    reply_id,
                    error: one_line(&error),
                    failed_at: at,
                }])
            }
            C::RecordContacted { round, reply_id, conversation_id, provider_message_id, no_reply_after, at } => {
                if status == S::Contacted && self.contact.as_ref().is_some_and(|c| c.reply_id == reply_id) {
                    return Ok(vec![]);
                }
                self.running_round(round, status)?;
                let a = self.attempt(reply_id).ok_or(LeadError::UnknownAttempt)?;
                if a.error.is_some() {
                    return Err(LeadError::AttemptFailed);
                }
                let mut out = vec![E::LeadContacted {
                    round,
                    attempt: a.attempt,
                    channel: a.channel,
                    account_id: a.account_id,
                    conversation_id,
                    reply_id,
                    provider_message_id,
                    contacted_at: at,
                }];
                if let Some(after) = no_reply_after.filter(|d| d.num_seconds() > 0) {
                    out.push(E::NoReplyCheckScheduled {
                        check: self.checks + 1,
                        conversation_id,
                        channel: a.channel,
                        due_at: at + after,
                        after_secs: after.num_seconds(),
                    });
                }
                Ok(out)
            }
            C::RecordDeliveryFailed { reply_id, error, at } => {
                let error = one_line(&error);
                match (&self.contact, status) {
                    (Some(c), S::Contacted) if c.reply_id == reply_id => {
                        let mut out = self.cancel_check("the first message was not delivered");
                        out.push(E::ContactDeliveryFailed {
                            round: c.round,
                            attempt: c.attempt,
                            reply_id,
                            error,
                            failed_at: at,
                        });
                        Ok(out)
                    }
                    (_, S::Contacting) => match self.attempt(reply_id) {
                        Some(a) if a.error.is_none() => Ok(vec![E::OutreachAttemptFailed {
                            round: self.round,
                            attempt: a.attempt,
                            channel: a.channel,
                            reply_id,
                            error,
                            failed_at: at,
                        }]),
                        _ => Ok(vec![]),
                    },
                    // Too late to matter (the customer answered, the lead moved on).
                    _ => Ok(vec![]),
                }
            }
            C::RecordFailed { round, reason, at } => {
                self.current_round(round)?;
                match status {
                    S::Received | S::Scheduled | S::Contacting => Ok(vec![E::LeadFailed {
                        round,
                        reason,
                        text: self.text.clone(),
                        attempts: self.attempts.len() as u32,
                        failed_at: at,
                    }]),
                    S::Failed => Ok(vec![]),
                    other => Err(LeadError::NotRunnable(other.as_str())),
                }
            }
            C::RecordReply { conversation_id, message_id, at } => match status {
                S::Contacted | S::NoReply => {
                    let mut out = self.cancel_check("the customer replied");
                    out.push(E::CustomerReplied { conversation_id, message_id, replied_at: at });
                    Ok(out)
                }
                _ => Ok(vec![]),
            },
            C::FireNoReplyCheck { check, at } => match &self.pending_check {
                Some(p) if p.check == check => {
                    if at < p.due_at {
                        return Err(LeadError::NotDue(p.due_at));
                    }
                    Ok(vec![E::NoReplyDetected {
                        check,
                        conversation_id: p.conversation_id,
                        channel: p.channel,
                        after_secs: p.after_secs,
                        detected_at: at,
                    }])
                }
                // Cancelled or fired already.
                _ => Ok(vec![]),
            },
            C::Qualify { by, at } => {
                if status.is_closed() {
                    return Err(LeadError::Closed(status.as_str()));
                }
                if status == S::Qualified {
                    return Ok(vec![]);
                }
                let mut out = self.stop_follow_ups(status, "the lead was qualified");
                out.push(E::LeadQualified { qualified_by: by, qualified_at: at });
                Ok(out)
            }
            C::Win { by, note, at } => match status {
                S::Won => Ok(vec![]),
                S::Lost => Err(LeadError::Closed(status.as_str())),
                _ => {
                    let mut out = self.stop_follow_ups(status, "the lead was won");
                    let note = note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
                    out.push(E::LeadWon { won_by: by, note, won_at: at });
                    Ok(out)
                }
            },
            C::Lose { by, reason, at } => {
                let reason = reason.trim().to_string();
                if reason.is_empty() {
                    return Err(LeadError::EmptyReason);
                }
                match status {
                    S::Lost if self.lost_reason.as_deref() == Some(reason.as_str()) => Ok(vec![]),
                    S::Won | S::Lost => Err(LeadError::Closed(status.as_str())),
                    _ => {
                        let mut out = self.stop_follow_ups(status, "the lead was lost");
                        out.push(E::LeadLost { lost_by: by, reason, lost_at: at });
                        Ok(out)
                    }
                }
            }
            C::Assign { operator, by, at } => {
                let operator = operator.map(|o| o.trim().to_string()).filter(|o| !o.is_empty());
                if operator == self.assigned_to {
                    return Ok(vec![]);
                }
                Ok(vec![E::LeadAssigned { operator, assigned_by: by, assigned_at: at }])
            }
            C::RetryOutreach { by, at } => match status {
                S::Failed | S::NoReply => {
                    if !self.fields.contact().is_reachable() {
                        return Err(LeadError::NoContactInfo);
                    }
                    Ok(vec![E::OutreachScheduled {
                        round: self.round + 1,
                        due_at: at,
                        outside_hours: false,
                        note: None,
                        requested_by: by,
                        scheduled_at: at,
                    }])
                }
                other => Err(LeadError::CannotRetry(other.as_str())),
            },
            C::RecordNotified { notice, chat_id, at } => {
                if self.notices.contains(&notice) {
                    return Ok(vec![]);
                }
                Ok(vec![E::TeamNotified { notice, chat_id, notified_at: at }])
            }
            C::RecordNotifyFailed { notice, error, at } => {
                if self.notices.contains(&notice) {
                    return Ok(vec![]);
                }
                Ok(vec![E::TeamNotificationFailed { notice, error: one_line(&error), failed_at: at }])
            }
        }
    }

    /// The first submission: the lead, then its first round (now, or at the opening), or its
    /// failure when there is no way to reach the customer.
    fn received(s: NewSubmission) -> Result<Vec<LeadEvent>, LeadError> {
        if s.text.trim().is_empty() {
            return Err(LeadError::EmptyText);
        }
        let reachable = s.fields.contact().is_reachable();
        let at = s.received_at;
        let text = s.text.clone();
        let mut out = vec![E::LeadReceived {
            tenant_id: s.tenant_id,
            form_id: s.form_id,
            form_kind: s.form_kind,
            submission_id: s.submission_id,
            format: s.format,
            fingerprint: s.fingerprint,
            kind: s.kind,
            fields: Box::new(s.fields),
            text: s.text,
            received_at: at,
        }];
        if !reachable {
            out.push(E::LeadFailed {
                round: 0,
                reason: FailureReason::NoContactInfo,
                text,
                attempts: 0,
                failed_at: at,
            });
            return Ok(out);
        }
        let opening = s.hours.next_opening(at);
        out.push(E::OutreachScheduled {
            round: 1,
            due_at: opening.unwrap_or(at),
            outside_hours: opening.is_some(),
            note: opening.map(|o| outside_hours_note(o, s.hours.timezone())),
            requested_by: FORM.to_string(),
            scheduled_at: at,
        });
        Ok(out)
    }

    fn current_round(&self, round: u32) -> Result<(), LeadError> {
        if round != self.round || round == 0 {
            return Err(LeadError::StaleRound(round));
        }
        Ok(())
    }

    /// The round is the current one and its worker has claimed it.
    fn running_round(&self, round: u32, status: LeadStatus) -> Result<(), LeadError> {
        self.current_round(round)?;
        if status != S::Contacting {
            return Err(LeadError::NotRunnable(status.as_str()));
        }
        Ok(())
    }

    fn cancel_check(&self, reason: &str) -> Vec<LeadEvent> {
        self.pending_check
            .iter()
            .map(|p| E::NoReplyCheckCancelled { check: p.check, reason: reason.to_string() })
            .collect()
    }

    /// An operator's decision ends a pending round and a pending check.
    fn stop_follow_ups(&self, status: LeadStatus, reason: &str) -> Vec<LeadEvent> {
        let mut out = self.cancel_check(reason);
        if status.is_reaching_out() {
            out.push(E::OutreachCancelled { round: self.round, reason: reason.to_string() });
        }
        out
    }
}

fn one_line(s: &str) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    s.chars().take(500).collect()
}
