//! Events of the [`Lead`](super::Lead) aggregate: past-tense facts. A change to a variant's fields
//! bumps its version and ships with an upcaster for the stored older version.
//!
//! Timers are events too: `OutreachScheduled` (the round's `due_at`) and `NoReplyCheckScheduled`
//! are picked up by the dispatcher as jobs due at that time, so they survive restarts and a lost
//! Redis; `NoReplyCheckCancelled`, `NoReplyDetected` and `OutreachCancelled` close them.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::codec::EventSchema;
use crate::pii::{ErasureCause, Fields};

use super::fields::{LeadFields, LeadKind};
use super::routing::{FailureReason, Recipient};
use super::submission::{Fingerprint, LeadFormKind, SubmissionFormat};
use crate::conversation::ChannelKind;

/// What happened to a lead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LeadEvent {
    /// A form submission opened the lead.
    LeadReceived {
        tenant_id: Uuid,
        form_id: Uuid,
        form_kind: LeadFormKind,
        submission_id: Uuid,
        format: SubmissionFormat,
        fingerprint: Fingerprint,
        kind: LeadKind,
        fields: Box<LeadFields>,
        /// The first message to send.
        text: String,
        received_at: DateTime<Utc>,
    },
    /// The same form was submitted again within the duplicate window: recorded, nothing else.
    SubmissionRepeated { submission_id: Uuid, received_at: DateTime<Utc> },
    /// An outreach round is due at `due_at` (now, or the opening when the lead came outside
    /// working hours; `note` says so).
    OutreachScheduled {
        round: u32,
        due_at: DateTime<Utc>,
        outside_hours: bool,
        note: Option<String>,
        /// `form` for the first round, else the operator.
        requested_by: String,
        scheduled_at: DateTime<Utc>,
    },
    /// The outreach worker claimed the round.
    OutreachStarted { round: u32, started_at: DateTime<Utc> },
    /// An attempt's message was handed to the delivery path (before it is sent).
    OutreachAttempted {
        round: u32,
        attempt: u32,
        channel: ChannelKind,
        account_id: Uuid,
        recipient: Recipient,
        reply_id: Uuid,
        conversation_id: Option<Uuid>,
        attempted_at: DateTime<Utc>,
    },
    /// An attempt failed; the next one is tried.
    OutreachAttemptFailed {
        round: u32,
        attempt: u32,
        channel: ChannelKind,
        reply_id: Uuid,
        error: String,
        failed_at: DateTime<Utc>,
    },
    /// The customer was written to.
    LeadContacted {
        round: u32,
        attempt: u32,
        channel: ChannelKind,
        account_id: Uuid,
        conversation_id: Uuid,
        reply_id: Uuid,
        provider_message_id: Option<String>,
        contacted_at: DateTime<Utc>,
    },
    /// The channel reported later that the message was not delivered; the round goes on.
    ContactDeliveryFailed { round: u32, attempt: u32, reply_id: Uuid, error: String, failed_at: DateTime<Utc> },
    /// Nobody could be reached; `text` is what would have been sent.
    LeadFailed { round: u32, reason: FailureReason, text: String, attempts: u32, failed_at: DateTime<Utc> },
    /// A pending round will not run (the lead was qualified, won or lost first).
    OutreachCancelled { round: u32, reason: String },
    /// The team is to be told if the customer has not answered by `due_at`.
    NoReplyCheckScheduled {
        check: u32,
        conversation_id: Uuid,
        channel: ChannelKind,
        due_at: DateTime<Utc>,
        after_secs: i64,
    },
    /// A pending no-reply check will not fire (the customer answered, or the lead moved on).
    NoReplyCheckCancelled { check: u32, reason: String },
    /// The customer had not answered when the check fired: the team is told.
    NoReplyDetected {
        check: u32,
        conversation_id: Uuid,
        channel: ChannelKind,
        after_secs: i64,
        detected_at: DateTime<Utc>,
    },
    /// The customer answered the first message.
    CustomerReplied { conversation_id: Uuid, message_id: Uuid, replied_at: DateTime<Utc> },
    /// An operator marked the lead as a real opportunity.
    LeadQualified { qualified_by: String, qualified_at: DateTime<Utc> },
    /// An operator marked the lead as won.
    LeadWon { won_by: String, note: Option<String>, won_at: DateTime<Utc> },
    /// An operator marked the lead as lost.
    LeadLost { lost_by: String, reason: String, lost_at: DateTime<Utc> },
    /// An operator took the lead (or gave it back: `None`).
    LeadAssigned { operator: Option<String>, assigned_by: String, assigned_at: DateTime<Utc> },
    /// The escalation bot told the team (`notice`: `failed:<round>`, `no_reply:<check>`).
    TeamNotified { notice: String, chat_id: String, notified_at: DateTime<Utc> },
    /// The escalation bot could not tell the team, after its retries.
    TeamNotificationFailed { notice: String, error: String, failed_at: DateTime<Utc> },
    /// The customer's data in this lead was erased: its data key is destroyed, so every
    /// customer-data field of the lead reads `[erased]` from now on. Holds no customer data itself.
    LeadErased { erased_by: String, cause: ErasureCause, erased_at: DateTime<Utc> },
}

impl EventSchema for LeadEvent {
    const AGGREGATE: &'static str = "lead";

    /// Customer data: the first message, every form answer, the recipient's address, free text
    /// operators wrote (won note, lost reason) and errors that may quote an address or a message.
    /// The normalised `phone`, `max_phone` and `telegram` are typed; an erased one reads as
    /// `[erased]` (their types accept it when read back).
    fn fields() -> &'static [Fields] {
        static FIELDS: &[Fields] = &[
            // Every answer as typed, and the page's tracking data (which may identify the visitor).
            Fields {
                event: "LeadReceived",
                pii: &[
                    "text",
                    "fields/client_name",
                    "fields/phone_raw",
                    "fields/email",
                    "fields/car",
                    "fields/city",
                    "fields/gearbox_type",
                    "fields/engine_type",
                    "fields/engine_volume",
                    "fields/engine_model",
                    "fields/tire_season",
                    "fields/tire_method",
                    "fields/tire_width",
                    "fields/tire_height",
                    "fields/tire_diameter",
                    "fields/raw_fields/*/*",
                    "fields/tracking/*/*",
                    "fields/phone",
                    "fields/max_phone",
                    "fields/telegram",
                ],
                safe: &[
                    "fields/form_name",
                    "fields/gearbox_code",
                    "fields/preferred_channel",
                    "fields/vin",
                    "fields/vin_type",
                    "fingerprint",
                    "form_id",
                    "form_kind",
                    "format",
                    "kind",
                    "received_at",
                    "submission_id",
                    "tenant_id",
                ],
            },
            Fields { event: "SubmissionRepeated", pii: &[], safe: &["received_at", "submission_id"] },
            Fields { event: "OutreachScheduled", pii: &[], safe: &["due_at", "note", "requested_by", "scheduled_at"] },
            Fields { event: "OutreachStarted", pii: &[], safe: &["started_at"] },
            Fields {
                event: "OutreachAttempted",
                pii: &["recipient/chat_id", "recipient/username", "recipient/phone"],
                safe: &["account_id", "attempted_at", "channel", "conversation_id", "recipient/kind", "reply_id"],
            },
            // Provider errors may quote the chat id or the message.
            Fields { event: "OutreachAttemptFailed", pii: &["error"], safe: &["channel", "failed_at", "reply_id"] },
            Fields {
                event: "LeadContacted",
                pii: &[],
                safe: &["account_id", "channel", "contacted_at", "conversation_id", "provider_message_id", "reply_id"],
            },
            // Provider errors may quote the chat id or the message.
            Fields { event: "ContactDeliveryFailed", pii: &["error"], safe: &["failed_at", "reply_id"] },
            Fields { event: "LeadFailed", pii: &["text"], safe: &["failed_at", "reason"] },
            Fields { event: "OutreachCancelled", pii: &[], safe: &["reason"] },
            Fields { event: "NoReplyCheckScheduled", pii: &[], safe: &["channel", "conversation_id", "due_at"] },
            Fields { event: "NoReplyCheckCancelled", pii: &[], safe: &["reason"] },
            Fields { event: "NoReplyDetected", pii: &[], safe: &["channel", "conversation_id", "detected_at"] },
            Fields { event: "CustomerReplied", pii: &[], safe: &["conversation_id", "message_id", "replied_at"] },
            Fields { event: "LeadQualified", pii: &[], safe: &["qualified_at", "qualified_by"] },
            Fields { event: "LeadWon", pii: &["note"], safe: &["won_at", "won_by"] },
            Fields { event: "LeadLost", pii: &["reason"], safe: &["lost_at", "lost_by"] },
            Fields { event: "LeadAssigned", pii: &[], safe: &["assigned_at", "assigned_by", "operator"] },
            Fields { event: "TeamNotified", pii: &[], safe: &["chat_id", "notice", "notified_at"] },
            // Telegram errors may quote the notice, which holds the customer's name and contacts.
            Fields { event: "TeamNotificationFailed", pii: &["error"], safe: &["failed_at", "notice"] },
            Fields { event: "LeadErased", pii: &[], safe: &["cause", "erased_at", "erased_by"] },
        ];
        FIELDS
    }
}

impl LeadEvent {
    /// What the event means, for the event catalog.
    pub fn meaning(&self) -> &'static str {
        use LeadEvent::*;
        match self {
            LeadReceived { .. } => "a form submission opened the lead (its fields, kind and first message)",
            SubmissionRepeated { .. } => "the same form was submitted again within the duplicate window",
            OutreachScheduled { .. } => {
                "an outreach round is due at due_at (the opening when the lead came outside working hours)"
            }
            OutreachStarted { .. } => "the outreach worker claimed the round",
            OutreachAttempted { .. } => "an attempt's message was handed to the delivery path (before sending)",
            OutreachAttemptFailed { .. } => "an attempt failed; the next one is tried",
            LeadContacted { .. } => "the customer was written to (channel, account, conversation, message)",
            ContactDeliveryFailed { .. } => "the channel reported the message undelivered later; the round goes on",
            LeadFailed { .. } => "nobody could be reached (reason, and the text that would have been sent)",
            OutreachCancelled { .. } => "a pending round will not run (the lead was closed first)",
            NoReplyCheckScheduled { .. } => "the team is to be told if the customer has not answered by due_at",
            NoReplyCheckCancelled { .. } => "a pending no-reply check will not fire",
            NoReplyDetected { .. } => "the customer had not answered when the check fired; the team is told",
            CustomerReplied { .. } => "the customer answered the first message",
            LeadQualified { .. } => "an operator marked the lead as a real opportunity",
            LeadWon { .. } => "an operator marked the lead as won",
            LeadLost { .. } => "an operator marked the lead as lost, with a reason",
            LeadAssigned { .. } => "an operator took the lead (or gave it back)",
            TeamNotified { .. } => "the escalation bot told the team (a failed lead, no reply)",
            TeamNotificationFailed { .. } => "the escalation bot could not tell the team, after its retries",
            LeadErased { .. } => {
                "the customer's data in the lead was erased (its key destroyed); its fields read [erased]"
            }
        }
    }

    /// The outreach round an event belongs to.
    pub fn round(&self) -> Option<u32> {
        use LeadEvent::*;
        match self {
            OutreachScheduled { round, .. }
            | OutreachStarted { round, .. }
            | OutreachAttempted { round, .. }
            | OutreachAttemptFailed { round, .. }
            | LeadContacted { round, .. }
            | ContactDeliveryFailed { round, .. }
            | LeadFailed { round, .. }
            | OutreachCancelled { round, .. } => Some(*round),
            _ => None,
        }
    }

    /// One sample of every event, in catalog order (the values are irrelevant; the shapes are
    /// what the catalog documents).
    pub fn samples() -> Vec<LeadEvent> {
        use LeadEvent::*;
        let t = DateTime::<Utc>::UNIX_EPOCH;
        let id = Uuid::nil();
        let recipient = Recipient::GreenApiChat { chat_id: String::new() };
        vec![
            LeadReceived {
                tenant_id: id,
                form_id: id,
                form_kind: LeadFormKind::Marquiz,
                submission_id: id,
                format: SubmissionFormat::Marquiz,
                fingerprint: Fingerprint::default(),
                kind: LeadKind::Gearbox,
                fields: Box::default(),
                text: String::new(),
                received_at: t,
            },
            SubmissionRepeated { submission_id: id, received_at: t },
            OutreachScheduled {
                round: 1,
                due_at: t,
                outside_hours: false,
                note: None,
                requested_by: String::new(),
                scheduled_at: t,
            },
            OutreachStarted { round: 1, started_at: t },
            OutreachAttempted {
                round: 1,
                attempt: 1,
                channel: ChannelKind::GreenApi,
                account_id: id,
                recipient,
                reply_id: id,
                conversation_id: None,
                attempted_at: t,
            },
            OutreachAttemptFailed {
                round: 1,
                attempt: 1,
                channel: ChannelKind::GreenApi,
                reply_id: id,
                error: String::new(),
                failed_at: t,
            },
            LeadContacted {
                round: 1,
                attempt: 1,
                channel: ChannelKind::GreenApi,
                account_id: id,
                conversation_id: id,
                reply_id: id,
                provider_message_id: None,
                contacted_at: t,
            },
            ContactDeliveryFailed { round: 1, attempt: 1, reply_id: id, error: String::new(), failed_at: t },
            LeadFailed {
                round: 1,
                reason: FailureReason::AllChannelsFailed,
                text: String::new(),
                attempts: 0,
                failed_at: t,
            },
            OutreachCancelled { round: 1, reason: String::new() },
            NoReplyCheckScheduled {
                check: 1,
                conversation_id: id,
                channel: ChannelKind::GreenApi,
                due_at: t,
                after_secs: 0,
            },
            NoReplyCheckCancelled { check: 1, reason: String::new() },
            NoReplyDetected {
                check: 1,
                conversation_id: id,
                channel: ChannelKind::GreenApi,
                after_secs: 0,
                detected_at: t,
            },
            CustomerReplied { conversation_id: id, message_id: id, replied_at: t },
            LeadQualified { qualified_by: String::new(), qualified_at: t },
            LeadWon { won_by: String::new(), note: None, won_at: t },
            LeadLost { lost_by: String::new(), reason: String::new(), lost_at: t },
            LeadAssigned { operator: None, assigned_by: String::new(), assigned_at: t },
            TeamNotified { notice: String::new(), chat_id: String::new(), notified_at: t },
            TeamNotificationFailed { notice: String::new(), error: String::new(), failed_at: t },
            LeadErased { erased_by: String::new(), cause: ErasureCause::Request, erased_at: t },
        ]
    }
}

impl DomainEvent for LeadEvent {
    fn event_type(&self) -> String {
        self.name().to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}
