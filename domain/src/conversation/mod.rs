//! The `Conversation` aggregate: one customer on one channel of a tenant.
//!
//! Commands are checked against the state by [`Conversation::decide`] (pure: ids and times come in
//! the command) and produce events; [`Conversation::evolve`] folds events into state. The state is
//! kept small (recent provider ids, open suggestions and replies) so that long conversations load
//! quickly from snapshots.

mod events;
mod types;

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use events::{ConversationEvent, DecodeError, decode_stored, message_received_v1_to_v2, upcasters};

use crate::vehicle_lookup::{IdType, LookupSource, VehicleData, VehicleDataStatus, VehicleId};
pub use types::{
    Attachment, ChannelKind, Decision, ReplyOrigin, ReplyStatus, Status, SuggestionStatus, UnknownChannelKind,
};

use ConversationEvent as E;

/// Longest text accepted for a message or reply (Telegram's limit is 4096).
pub const MAX_TEXT: usize = 4096;
/// Provider message ids remembered for deduplication.
const RECENT_PROVIDER_IDS: usize = 512;
/// The deduplication key of a provider message id: its 64-bit FNV-1a hash (stable across builds
/// and processes, as it ends up in snapshots). Two different ids of one conversation's last 512
/// colliding has a probability of about 512 / 2^64 per message.
pub fn provider_key(provider_message_id: &str) -> u64 {
    provider_message_id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// Decided suggestions and final replies remembered (older ones are dropped from the state).
const KEEP_DECIDED: usize = 256;

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
    /// text, image, video, audio, voice, document, contact, location, button.
    pub kind: String,
    /// Provider id of the message this one quotes.
    pub reply_to: Option<String>,
    pub sent_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    /// Id for the suggestion request this message may open.
    pub request_id: Uuid,
    /// How long to wait for more messages of a burst before drafting.
    pub debounce: chrono::Duration,
    /// VIN/FRAME found in the text, at or above the lookup threshold: (type, value, score, reasons).
    pub vehicle_id: Option<(String, String, f64, Vec<String>)>,
    /// Transmission code found in the text: (code, score).
    pub transmission_code: Option<(String, f64)>,
    /// Id of the vehicle lookup of `vehicle_id` (see `vehicle_lookup::lookup_id`); the message's id
    /// is the request's id.
    pub vehicle_lookup_id: Option<Uuid>,
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
        text: String,
        send_after: DateTime<Utc>,
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
        status: String,
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
}

/// State of one pending or recent suggestion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuggestionState {
    pub status: SuggestionStatus,
    pub text: String,
}

/// State of one reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplyState {
    pub status: ReplyStatus,
    pub attempts: u32,
    pub started_at: Option<DateTime<Utc>>,
    pub provider_message_id: Option<String>,
    pub text: String,
    /// Not to be sent before this instant: the human-like delay of a queued reply, then the
    /// backoff (or the provider's Retry-After) of a scheduled retry.
    #[serde(default)]
    pub not_before: Option<DateTime<Utc>>,
}

/// Where a vehicle lookup of the conversation stands, as the conversation knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LookupProgress {
    /// Asked for, no outcome since.
    Active,
    /// Found, model only or decoder only: the vehicle is known.
    Answered,
    NotFound,
    Failed,
}

/// A vehicle lookup of the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupRef {
    pub value: String,
    pub progress: LookupProgress,
    /// Revision of the last outcome applied.
    pub revision: u32,
}

/// The aggregate's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub started: bool,
    pub tenant_id: Uuid,
    pub channel: Option<ChannelKind>,
    pub account_id: Uuid,
    pub chat_id: String,
    pub customer_id: Uuid,
    pub customer_name: Option<String>,
    pub customer_phone: Option<String>,
    pub aliases: Vec<String>,
    pub status: Status,
    pub muted: bool,
    pub assigned: Option<String>,
    pub messages: u64,
    pub last_customer_message_at: Option<DateTime<Utc>>,
    /// Keys ([`provider_key`]) of the latest provider message ids, for deduplication: fixed-size
    /// numbers, so that copying the state (every command) allocates nothing for them.
    pub recent_provider_ids: VecDeque<u64>,
    /// The suggestion request being drafted, if any.
    pub pending_request: Option<Uuid>,
    pub suggestions: BTreeMap<Uuid, SuggestionState>,
    pub replies: BTreeMap<Uuid, ReplyState>,
    /// Vehicle lookups asked for by this conversation.
    #[serde(default)]
    pub vehicle_lookups: BTreeMap<Uuid, LookupRef>,
}

fn check_text(text: &str) -> Result<String, ConversationError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(ConversationError::EmptyText);
    }
    if t.chars().count() > MAX_TEXT {
        return Err(ConversationError::TextTooLong);
    }
    Ok(t.to_string())
}

impl Conversation {
    /// Checks a command against the state and returns the events it produces (none: nothing to
    /// do, e.g. a message already received).
    pub fn decide(&self, command: ConversationCommand) -> Result<Vec<ConversationEvent>, ConversationError> {
        use ConversationCommand as C;
        if !self.started && !matches!(command, C::ReceiveMessage(_)) {
            return Err(ConversationError::NotFound);
        }
        match command {
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
                    },
                ])
            }
            C::Reject { suggestion_id, reason } => {
                self.pending_suggestion(suggestion_id)?;
                Ok(vec![E::SuggestionRejected { suggestion_id, reason }])
            }
            C::Reply { reply_id, text, send_after } => {
                let text = check_text(&text)?;
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
                    Some((id, r)) if r.status == ReplyStatus::Delivered && status == "read" => {
                        Ok(vec![E::ReplyDelivered { reply_id: *id, provider_message_id, status, at }])
                    }
                    Some(_) => Ok(vec![]),
                    None => Err(ConversationError::ReplyNotFound),
                }
            }
            C::Escalate { reason, suggestion_id } => {
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
        }
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
                && let Ok(text) = check_text(&s.text)
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
                customer_name: m.customer_name.clone(),
                customer_phone: m.customer_phone.clone(),
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
        let text: String = m.text.trim().chars().take(MAX_TEXT).collect();
        out.push(E::MessageReceived {
            message_id: m.message_id,
            provider_message_id: m.provider_message_id,
            text,
            attachments: m.attachments,
            sender_name: m.customer_name,
            sent_at: m.sent_at,
            received_at: m.received_at,
            kind: m.kind,
            reply_to: m.reply_to,
        });
        if let Some((id_type, value, score, reasons)) = m.vehicle_id {
            let lookup = m
                .vehicle_lookup_id
                .zip(IdType::parse(&id_type))
                .and_then(|(lookup_id, t)| VehicleId::parse(t, &value).ok().map(|id| (lookup_id, id)));
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
        if let Some((code, score)) = m.transmission_code {
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

    fn record_suggestion(&self, d: Drafted) -> Result<Vec<ConversationEvent>, ConversationError> {
        if self.pending_request != Some(d.request_id) {
            return Err(ConversationError::RequestNotPending);
        }
        let text = check_text(&d.text)?;
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
                });
            }
            _ => {}
        }
        Ok(out)
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
            E::ReplyQueued { reply_id, text, send_after, .. } => {
                self.replies.insert(
                    reply_id,
                    ReplyState {
                        status: ReplyStatus::Queued,
                        attempts: 0,
                        started_at: None,
                        provider_message_id: None,
                        text,
                        not_before: Some(send_after),
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

impl Aggregate for Conversation {
    const TYPE: &'static str = "conversation";
    type Command = ConversationCommand;
    type Event = ConversationEvent;
    type Error = ConversationError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &cqrs_es::event_sink::EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.evolve(event);
    }
}

#[cfg(test)]
mod tests;
