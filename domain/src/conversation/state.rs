//! The conversation's state: small on purpose (recent provider ids, open suggestions and
//! replies), so long conversations load quickly from snapshots.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::commands::{ConversationCommand, ConversationError};
use super::events::ConversationEvent;
use super::types::{ChannelKind, ReplyAttachment, ReplyStatus, Status, SuggestionStatus};

/// Provider message ids remembered for deduplication.
pub(super) const RECENT_PROVIDER_IDS: usize = 512;
/// The deduplication key of a provider message id: its 64-bit FNV-1a hash (stable across builds
/// and processes, as it ends up in snapshots). Two different ids of one conversation's last 512
/// colliding has a probability of about 512 / 2^64 per message.
pub fn provider_key(provider_message_id: &str) -> u64 {
    provider_message_id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// Decided suggestions and final replies remembered (older ones are dropped from the state).
pub(super) const KEEP_DECIDED: usize = 256;

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
    /// A stored file sent with the reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<ReplyAttachment>,
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
    /// Leads answered in this conversation (a customer's reply marks them replied).
    #[serde(default)]
    pub leads: Vec<Uuid>,
    /// Attachments (message id, index) whose storing is recorded.
    #[serde(default)]
    pub media_recorded: BTreeSet<(Uuid, u32)>,
    /// Photos (message id, index) whose reading is recorded.
    #[serde(default)]
    pub photos_recorded: BTreeSet<(Uuid, u32)>,
    /// Escalations (sequence numbers of their `ConversationEscalated`) whose team notification
    /// is recorded, sent or failed.
    #[serde(default)]
    pub team_notices: BTreeSet<u64>,
    /// The customer's data was erased: the conversation takes no more commands.
    #[serde(default)]
    pub erased: bool,
}

crate::impl_aggregate!(Conversation, "conversation", ConversationCommand, ConversationEvent, ConversationError);
