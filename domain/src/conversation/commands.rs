//! What can be asked of a conversation, and why a request can be refused.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::types::{Attachment, ChannelKind, DeliveryStatus, MessageKind, ReplyAttachment, Status};
use crate::media::{MediaRefusal, NotReadReason, PhotoReading, StoredMedia};
use crate::reply::Decision;
use crate::vehicle_lookup::{IdType, VehicleData, VehicleId};

/// Longest text accepted for a message or reply (Telegram's limit is 4096).
pub const MAX_TEXT: usize = 4096;

/// A customer message as it arrives from a channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    pub tenant_id: Uuid,
    pub channel: ChannelKind,
    pub account_id: Uuid,
    pub chat_id: String,
    pub customer_id: Uuid,
    pub customer_name: Option<String>,
    pub customer_phone: Option<String>,
    pub message_id: Uuid,
    pub provider_message_id: String,
    pub text: String,
    pub attachments: Vec<Attachment>,
    pub kind: MessageKind,
    /// Provider id of the message this one quotes.
    pub reply_to: Option<String>,
    pub sent_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    /// Id for the suggestion request this message may open.
    pub request_id: Uuid,
    /// How long to wait for more messages of a burst before drafting.
    pub debounce: chrono::Duration,
    /// VIN/FRAME found in the text, at or above the lookup threshold.
    pub vehicle_id: Option<DetectedVehicleId>,
    /// Transmission code found in the text, at or above the price-lookup threshold.
    pub transmission_code: Option<DetectedCode>,
}

/// A VIN or FRAME number found in a customer message.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectedVehicleId {
    pub id_type: IdType,
    pub value: String,
    pub score: f64,
    pub reasons: Vec<String>,
    /// Id of the vehicle lookup of this identifier (see `vehicle_lookup::lookup_id`), when the
    /// value is a well-formed identifier; the message's id is the request's id.
    pub lookup_id: Option<Uuid>,
}

/// A transmission code found in a customer message.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectedCode {
    pub code: String,
    pub score: f64,
}

/// A drafted suggestion coming back from the generator.
#[derive(Debug, Clone, PartialEq)]
pub struct Drafted {
    pub request_id: Uuid,
    pub suggestion_id: Uuid,
    pub text: String,
    pub intent: String,
    pub confidence: f64,
    pub decision: Decision,
    pub explanations: Vec<String>,
    pub source: String,
    pub model: Option<String>,
    /// Why an AUTO_SEND decision may not be sent automatically (None when it may).
    pub autosend_block_reason: Option<String>,
    /// Reply id used when the suggestion is sent automatically.
    pub reply_id: Uuid,
    /// When an automatic reply may go out (human-like delay).
    pub send_after: DateTime<Utc>,
}

/// A reply suggestion rendered from a tenant template (not tied to a drafting request).
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateSuggestion {
    pub suggestion_id: Uuid,
    /// Template key, e.g. `gearboxLookupFound`.
    pub template: String,
    pub text: String,
    pub intent: String,
    pub confidence: f64,
}

/// What a vehicle lookup tells the conversation.
#[derive(Debug, Clone, PartialEq)]
pub enum LookupReportOutcome {
    /// Found, model only, decoder only, not found, or a gearbox confirmed from its tag.
    Data(Box<VehicleData>),
    /// The lookup gave up.
    Failed { id_type: IdType, value: String, reason: String },
}

/// A vehicle lookup's outcome for the conversation, with the reply suggestion it produced.
#[derive(Debug, Clone, PartialEq)]
pub struct LookupReport {
    pub lookup_id: Uuid,
    /// The lookup's outcome counter: outcomes are applied in order, each once.
    pub revision: u32,
    pub outcome: LookupReportOutcome,
    pub suggestion: Option<TemplateSuggestion>,
}

/// The first message to a lead, written into the customer's conversation (opened by it when the
/// customer has none on that channel yet).
#[derive(Debug, Clone, PartialEq)]
pub struct LeadMessage {
    pub lead_id: Uuid,
    pub tenant_id: Uuid,
    pub channel: ChannelKind,
    pub account_id: Uuid,
    pub chat_id: String,
    pub customer_id: Uuid,
    pub customer_name: Option<String>,
    pub customer_phone: Option<String>,
    /// The message's id on the delivery path (the lead's outreach reply id).
    pub reply_id: Uuid,
    pub text: String,
    pub send_after: DateTime<Utc>,
    pub at: DateTime<Utc>,
}

/// The reply suggestions of a price lookup's answer, each with the decision the reply policy took
/// (`request_id` of each is the lookup's id). Recorded once per suggestion id.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceReport {
    pub lookup_id: Uuid,
    /// The lookup's answer the suggestions are for.
    pub revision: u32,
    pub suggestions: Vec<Drafted>,
}

/// What storing an attachment came to.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaOutcome {
    Stored(StoredMedia),
    Refused { reason: MediaRefusal, size: Option<u64>, detail: Option<String> },
}

/// What reading a stored photo came to, with what it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct PhotoReport {
    pub message_id: Uuid,
    pub index: u32,
    pub sha256: String,
    pub outcome: Result<PhotoReading, NotReadReason>,
    /// The VIN or FRAME read, at or above the lookup threshold, with its lookup id.
    pub vehicle_id: Option<DetectedVehicleId>,
    /// The gearbox code read, at or above the price-lookup threshold.
    pub transmission_code: Option<DetectedCode>,
    /// The request for a clearer photo, when nothing usable was read.
    pub clearer_photo: Option<TemplateSuggestion>,
}

/// What can be asked of a conversation.
#[derive(Debug, Clone, PartialEq)]
pub enum ConversationCommand {
    ReceiveMessage(Box<Inbound>),
    LinkAlias {
        alias: String,
    },
    RecordSuggestion(Box<Drafted>),
    FailSuggestion {
        request_id: Uuid,
        reason: String,
    },
    /// Ask for a (new) suggestion now, e.g. after a failure; no-op while one is being drafted.
    RequestSuggestion {
        request_id: Uuid,
        trigger_message_id: Uuid,
        at: DateTime<Utc>,
    },
    Approve {
        suggestion_id: Uuid,
        reply_id: Uuid,
        send_after: DateTime<Utc>,
    },
    Edit {
        suggestion_id: Uuid,
        reply_id: Uuid,
        text: String,
        send_after: DateTime<Utc>,
    },
    Reject {
        suggestion_id: Uuid,
        reason: Option<String>,
    },
    Reply {
        reply_id: Uuid,
        /// The text, or the caption of `attachment` (which may then be empty).
        text: String,
        send_after: DateTime<Utc>,
        attachment: Option<ReplyAttachment>,
    },
    StartSend {
        reply_id: Uuid,
        at: DateTime<Utc>,
    },
    RecordSent {
        reply_id: Uuid,
        provider_message_id: String,
        at: DateTime<Utc>,
        reconciled: bool,
    },
    ScheduleRetry {
        reply_id: Uuid,
        retry_at: DateTime<Utc>,
        reason: String,
    },
    FailReply {
        reply_id: Uuid,
        reason: String,
        permanent: bool,
    },
    RetryReply {
        reply_id: Uuid,
    },
    RecordDelivery {
        provider_message_id: String,
        status: DeliveryStatus,
        at: DateTime<Utc>,
    },
    Escalate {
        reason: String,
        suggestion_id: Option<Uuid>,
    },
    Resolve,
    Reopen,
    Mute {
        muted: bool,
    },
    Assign {
        operator: Option<String>,
    },
    MarkRead,
    /// The customer's data is erased (the caller destroys the data key); a second time records
    /// nothing. The conversation takes no other command after it.
    EraseCustomer {
        by: String,
        cause: crate::pii::ErasureCause,
        at: DateTime<Utc>,
    },
    /// An operator asks for a vehicle lookup (a no-op while one for the identifier is active or
    /// has answered).
    RequestVehicleLookup {
        lookup_id: Uuid,
        request_id: Uuid,
        id: VehicleId,
        requested_by: String,
    },
    /// A vehicle lookup reports its outcome.
    RecordVehicleLookup(Box<LookupReport>),
    /// Writes a lead's first message (opening the conversation when needed); the same reply id
    /// twice is one message.
    WriteToLead(Box<LeadMessage>),
    /// A price lookup offers its answer as reply suggestions (through the reply policy: approval,
    /// autosend and escalation apply as to any draft).
    RecordPriceSuggestions(Box<PriceReport>),
    /// Records what storing attachment `index` of a customer message came to (once).
    RecordAttachment {
        message_id: Uuid,
        index: u32,
        outcome: MediaOutcome,
    },
    /// Records what reading a stored photo came to (once), and starts what it found.
    RecordPhotoReading(Box<PhotoReport>),
    /// Records that the escalation bot told the team of the escalation at sequence `escalation`
    /// (once per escalation).
    RecordTeamNotified {
        escalation: u64,
        chat_id: String,
    },
    /// Records that the team could not be told of the escalation at sequence `escalation`.
    RecordTeamNotifyFailed {
        escalation: u64,
        error: String,
    },
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversationError {
    #[error("the conversation does not exist")]
    NotFound,
    #[error("the text is empty")]
    EmptyText,
    #[error("the text is longer than {MAX_TEXT} characters")]
    TextTooLong,
    #[error("the text holds a control character (only line breaks and tabs are allowed)")]
    ControlCharacter,
    #[error("the reason is longer than {MAX_REASON} characters")]
    ReasonTooLong,
    #[error("the suggestion does not exist in this conversation")]
    SuggestionNotFound,
    #[error("the suggestion is already {0}")]
    SuggestionNotPending(&'static str),
    #[error("no suggestion is being drafted for this request")]
    RequestNotPending,
    #[error("the reply does not exist in this conversation")]
    ReplyNotFound,
    #[error("the reply is already {0}")]
    ReplyNotInState(&'static str),
    #[error("a conversation cannot go from {from} to {to}")]
    InvalidTransition { from: Status, to: Status },
    #[error("the conversation is resolved; reopen it first")]
    Resolved,
    #[error("the conversation is already {0}")]
    Already(&'static str),
    #[error("the customer's data was erased; the conversation is closed for good")]
    Erased,
}

/// Longest reason accepted for a rejection or an escalation.
pub const MAX_REASON: usize = 1000;

/// An operator's (or the generator's) text: trimmed, not empty, not too long, no control
/// characters (see [`crate::text`]).
pub(super) fn check_text(text: &str) -> Result<String, ConversationError> {
    let text = crate::text::check_operator(text).map_err(|()| ConversationError::ControlCharacter)?;
    let t = text.trim();
    if t.is_empty() {
        return Err(ConversationError::EmptyText);
    }
    if t.chars().count() > MAX_TEXT {
        return Err(ConversationError::TextTooLong);
    }
    Ok(t.to_string())
}

/// A reason given by an operator: trimmed, not too long, no control characters.
pub(super) fn check_reason(reason: &str) -> Result<String, ConversationError> {
    let reason = crate::text::check_operator(reason).map_err(|()| ConversationError::ControlCharacter)?;
    let r = reason.trim();
    if r.chars().count() > MAX_REASON {
        return Err(ConversationError::ReasonTooLong);
    }
    Ok(r.to_string())
}
