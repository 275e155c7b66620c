//! The lead's state: what decisions need, folded from its events by [`Lead::evolve`].

use std::collections::VecDeque;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::fields::{LeadFields, LeadKind};
use super::routing::{FailureReason, Recipient};
use super::submission::{Fingerprint, LeadFormKind};
use crate::conversation::ChannelKind;

/// Submission ids remembered to recognise a delivery recorded twice.
pub(super) const RECENT_SUBMISSIONS: usize = 64;

/// Where a lead stands. The board filters by these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadStatus {
    /// Waiting for the outreach worker (a new lead, or a retry).
    Received,
    /// Came outside working hours: the first message waits for the opening.
    Scheduled,
    /// The worker is trying the channels.
    Contacting,
    /// The first message went out; waiting for the customer.
    Contacted,
    /// Nobody could be reached (see the failure reason).
    Failed,
    /// The customer answered.
    Replied,
    /// The customer did not answer in time; the team was told.
    NoReply,
    /// An operator marked it as a real opportunity.
    Qualified,
    Won,
    Lost,
}

impl LeadStatus {
    pub const ALL: [LeadStatus; 10] = [
        Self::Received,
        Self::Scheduled,
        Self::Contacting,
        Self::Contacted,
        Self::Failed,
        Self::Replied,
        Self::NoReply,
        Self::Qualified,
        Self::Won,
        Self::Lost,
    ];

    /// The serde name: `received`, `scheduled`, `contacting`, `contacted`, `failed`, `replied`,
    /// `no_reply`, `qualified`, `won` or `lost`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Scheduled => "scheduled",
            Self::Contacting => "contacting",
            Self::Contacted => "contacted",
            Self::Failed => "failed",
            Self::Replied => "replied",
            Self::NoReply => "no_reply",
            Self::Qualified => "qualified",
            Self::Won => "won",
            Self::Lost => "lost",
        }
    }

    /// Parses the name [`LeadStatus::as_str`] gives.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Won or lost: operators' final word.
    pub fn is_closed(self) -> bool {
        matches!(self, Self::Won | Self::Lost)
    }

    /// An outreach round is pending or running.
    pub fn is_reaching_out(self) -> bool {
        matches!(self, Self::Received | Self::Scheduled | Self::Contacting)
    }
}

impl fmt::Display for LeadStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One attempt of the current round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    pub attempt: u32,
    pub channel: ChannelKind,
    pub account_id: Uuid,
    pub recipient: Recipient,
    pub reply_id: Uuid,
    pub conversation_id: Option<Uuid>,
    /// Why it failed, once it did.
    pub error: Option<String>,
}

/// How the customer was reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactRecord {
    pub round: u32,
    pub attempt: u32,
    pub channel: ChannelKind,
    pub account_id: Uuid,
    pub conversation_id: Uuid,
    pub reply_id: Uuid,
    pub provider_message_id: Option<String>,
    pub contacted_at: DateTime<Utc>,
}

/// A no-reply check waiting for its time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCheck {
    pub check: u32,
    pub conversation_id: Uuid,
    pub channel: ChannelKind,
    pub due_at: DateTime<Utc>,
    pub after_secs: i64,
}

/// The aggregate's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Lead {
    /// `None` until the first submission.
    pub status: Option<LeadStatus>,
    pub tenant_id: Uuid,
    pub form_id: Uuid,
    pub form_kind: Option<LeadFormKind>,
    pub fingerprint: Fingerprint,
    pub kind: LeadKind,
    pub fields: LeadFields,
    /// The first message.
    pub text: String,
    pub received_at: Option<DateTime<Utc>>,
    /// Submissions recorded (the first included).
    pub submissions: u32,
    /// The current outreach round (0 before any).
    pub round: u32,
    /// When the current round may start.
    pub due_at: Option<DateTime<Utc>>,
    /// The current round waits for the opening.
    pub outside_hours: bool,
    /// Attempts of the current round.
    pub attempts: Vec<AttemptRecord>,
    /// How the customer was reached in the current round.
    pub contact: Option<ContactRecord>,
    /// The conversation the lead was last contacted in.
    pub conversation_id: Option<Uuid>,
    pub failure: Option<FailureReason>,
    /// No-reply checks scheduled so far.
    pub checks: u32,
    pub pending_check: Option<PendingCheck>,
    pub replied_at: Option<DateTime<Utc>>,
    pub qualified_at: Option<DateTime<Utc>>,
    pub lost_reason: Option<String>,
    pub assigned_to: Option<String>,
    pub recent_submissions: VecDeque<Uuid>,
    /// Notices the escalation bot settled (sent, or given up).
    #[serde(default)]
    pub notices: Vec<String>,
    /// The customer's data was erased: the lead takes no more commands.
    #[serde(default)]
    pub erased: bool,
}

impl Lead {
    /// The attempt of the current round with message `reply_id`.
    pub fn attempt(&self, reply_id: Uuid) -> Option<&AttemptRecord> {
        self.attempts.iter().find(|a| a.reply_id == reply_id)
    }
}
