//! What can be asked of a lead, and why it may be refused. Ids, times and what workers saw come
//! in the commands, so deciding stays pure.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::fields::{LeadFields, LeadKind};
use super::routing::{FailureReason, PlannedAttempt};
use super::submission::{Fingerprint, LeadFormKind, SubmissionFormat};
use crate::tenant::WorkingHours;

/// A form submission for a lead: the first one opens it, later ones are recorded as repeats.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSubmission {
    /// This delivery's id: the same delivery recorded twice counts once.
    pub submission_id: Uuid,
    pub tenant_id: Uuid,
    pub form_id: Uuid,
    pub form_kind: LeadFormKind,
    pub format: SubmissionFormat,
    pub fingerprint: Fingerprint,
    pub fields: LeadFields,
    pub kind: LeadKind,
    /// The first message (see `texts::auto_response`, without the after-hours line: it goes out
    /// inside working hours).
    pub text: String,
    /// The tenant's working hours: outside them the first message waits for the opening.
    pub hours: WorkingHours,
    pub received_at: DateTime<Utc>,
}

/// What can be asked of a lead.
#[derive(Debug, Clone, PartialEq)]
pub enum LeadCommand {
    /// A form was submitted (opens the lead, or records a repeat).
    Receive(Box<NewSubmission>),
    /// The outreach worker claims `round` (refused before the round is due).
    StartOutreach { round: u32, at: DateTime<Utc> },
    /// The worker hands one attempt's message to the delivery path (recorded before sending;
    /// the same `reply_id` twice is one attempt).
    RecordAttempt {
        round: u32,
        attempt: PlannedAttempt,
        /// The message's id on the delivery path (see `ids::outreach_reply_id`).
        reply_id: Uuid,
        /// The conversation the message goes into, when already known.
        conversation_id: Option<Uuid>,
        at: DateTime<Utc>,
    },
    /// An attempt failed; the worker goes on with the next one.
    RecordAttemptFailed { round: u32, reply_id: Uuid, error: String, at: DateTime<Utc> },
    /// An attempt's message was accepted by the channel.
    RecordContacted {
        round: u32,
        reply_id: Uuid,
        conversation_id: Uuid,
        provider_message_id: Option<String>,
        /// When to tell the team if the customer has not answered (the tenant's setting); `None`
        /// schedules no check.
        no_reply_after: Option<Duration>,
        at: DateTime<Utc>,
    },
    /// The channel reported later that a message it had accepted was not delivered (GREEN-API's
    /// `noAccount`): the round goes on with the next attempt.
    RecordDeliveryFailed { reply_id: Uuid, error: String, at: DateTime<Utc> },
    /// The round ended without contact.
    RecordFailed { round: u32, reason: FailureReason, at: DateTime<Utc> },
    /// The customer wrote in the lead's conversation.
    RecordReply { conversation_id: Uuid, message_id: Uuid, at: DateTime<Utc> },
    /// A no-reply check is due (refused before its time; nothing happens when it was cancelled).
    FireNoReplyCheck { check: u32, at: DateTime<Utc> },
    /// An operator marks the lead as a real sale opportunity.
    Qualify { by: String, at: DateTime<Utc> },
    /// An operator marks the lead as won.
    Win { by: String, note: Option<String>, at: DateTime<Utc> },
    /// An operator marks the lead as lost, saying why.
    Lose { by: String, reason: String, at: DateTime<Utc> },
    /// An operator takes the lead (`None` gives it back).
    Assign { operator: Option<String>, by: String, at: DateTime<Utc> },
    /// An operator asks for a new outreach round (after a failure or no reply).
    RetryOutreach { by: String, at: DateTime<Utc> },
    /// The escalation bot told the team (`notice` names what about: `failed:<round>`,
    /// `no_reply:<check>`); the same notice twice is recorded once.
    RecordNotified { notice: String, chat_id: String, at: DateTime<Utc> },
    /// The escalation bot could not tell the team, after its retries.
    RecordNotifyFailed { notice: String, error: String, at: DateTime<Utc> },
    /// The customer's data is erased (the data key is destroyed by the caller); a second time
    /// records nothing.
    Erase { by: String, cause: crate::pii::ErasureCause, at: DateTime<Utc> },
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeadError {
    #[error("the lead does not exist")]
    NotFound,
    #[error("the lead's customer data was erased")]
    Erased,
    #[error("the lead belongs to another tenant")]
    WrongTenant,
    #[error("the auto-response text is empty")]
    EmptyText,
    #[error("outreach round {0} of this lead is not the current one")]
    StaleRound(u32),
    #[error("the outreach is not due before {0}")]
    NotDue(DateTime<Utc>),
    #[error("the lead is {0}; there is no outreach to run")]
    NotRunnable(&'static str),
    #[error("no attempt of this round has that message id")]
    UnknownAttempt,
    #[error("that attempt was already recorded as failed")]
    AttemptFailed,
    #[error("the lead is {0}; only failed leads and leads that did not reply can be contacted again")]
    CannotRetry(&'static str),
    #[error("the lead has no phone, Telegram username or MAX number to contact")]
    NoContactInfo,
    #[error("the lead is already {0}")]
    Closed(&'static str),
    #[error("a lost lead needs a reason")]
    EmptyReason,
}
