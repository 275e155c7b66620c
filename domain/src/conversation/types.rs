//! Value types shared by conversation commands, events and state.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Messenger family of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// MAX / WhatsApp through GREEN-API.
    GreenApi,
    Telegram,
    Whatsapp,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 3] = [ChannelKind::GreenApi, ChannelKind::Telegram, ChannelKind::Whatsapp];

    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::GreenApi => "green_api",
            ChannelKind::Telegram => "telegram",
            ChannelKind::Whatsapp => "whatsapp",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A string that names no channel kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown channel kind `{0}`; use green_api, telegram or whatsapp")]
pub struct UnknownChannelKind(pub String);

impl std::str::FromStr for ChannelKind {
    type Err = UnknownChannelKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChannelKind::parse(s).ok_or_else(|| UnknownChannelKind(s.to_string()))
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a conversation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The customer wrote last: the shop owes an answer.
    #[default]
    Open,
    /// The shop answered last.
    WaitingCustomer,
    /// A person has to handle it.
    Escalated,
    /// Closed by an operator; a new customer message reopens it.
    Resolved,
}

impl Status {
    pub const ALL: [Status; 4] = [Status::Open, Status::WaitingCustomer, Status::Escalated, Status::Resolved];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::WaitingCustomer => "waiting_customer",
            Status::Escalated => "escalated",
            Status::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The status machine: which changes are allowed.
    pub fn can_become(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (Open, WaitingCustomer)
                | (Open, Escalated)
                | (Open, Resolved)
                | (WaitingCustomer, Open)
                | (WaitingCustomer, Escalated)
                | (WaitingCustomer, Resolved)
                | (Escalated, Open)
                | (Escalated, Resolved)
                | (Resolved, Open)
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a reply's text came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyOrigin {
    /// An approved suggestion, as drafted.
    Suggestion,
    /// An approved suggestion with text changed by the operator.
    Edited,
    /// Approved automatically by the autosend policy.
    Auto,
    /// Written by an operator.
    Operator,
    /// The first message to a lead from a web form.
    Lead,
}

/// What a customer message mainly is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// Plain text, including text with links and replies quoting another message.
    Text,
    /// A photo (its caption, if any, is the text).
    Image,
    /// A video, video note or animation.
    Video,
    /// An audio file.
    Audio,
    /// A voice note.
    Voice,
    /// A document or any other file (`file` is what the first version of the event called a
    /// message with files of an unknown kind).
    #[serde(alias = "file")]
    Document,
    /// A shared contact card, rendered as text.
    Contact,
    /// A shared location or venue, rendered as text.
    Location,
    /// A tap on a button or list item the business sent; the text is the button's title.
    Button,
}

impl MessageKind {
    pub const ALL: [MessageKind; 9] = [
        Self::Text,
        Self::Image,
        Self::Video,
        Self::Audio,
        Self::Voice,
        Self::Document,
        Self::Contact,
        Self::Location,
        Self::Button,
    ];

    /// The wire name (`text`, `image`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::Voice => "voice",
            Self::Document => "document",
            Self::Contact => "contact",
            Self::Location => "location",
            Self::Button => "button",
        }
    }
}

/// The kind of an attached file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentKind {
    Image,
    Video,
    Audio,
    Voice,
    #[serde(alias = "file")]
    Document,
}

impl AttachmentKind {
    /// The wire name (`image`, `video`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::Voice => "voice",
            Self::Document => "document",
        }
    }

    /// The message kind of a message whose main content is such a file.
    pub fn message_kind(self) -> MessageKind {
        match self {
            Self::Image => MessageKind::Image,
            Self::Video => MessageKind::Video,
            Self::Audio => MessageKind::Audio,
            Self::Voice => MessageKind::Voice,
            Self::Document => MessageKind::Document,
        }
    }
}

/// A file or media item of a message: where the provider keeps it (the media worker downloads and
/// stores it; `AttachmentStored` names the stored copy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub kind: AttachmentKind,
    pub url: Option<String>,
    pub file_name: Option<String>,
    pub mime_type: Option<String>,
    /// The provider's file or media id (Telegram `file_id`, WhatsApp media id); absent on
    /// messages stored before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
}

/// What a provider reported about a reply after it was sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// It reached the customer's device.
    Delivered,
    /// The customer read it.
    Read,
    /// The provider gave up on it.
    Failed { reason: String },
}

impl DeliveryStatus {
    /// `delivered`, `read` or `failed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Failed { .. } => "failed",
        }
    }

    /// Reads the text form the first version of `ReplyDelivered` stored: `delivered`, `read`
    /// or `failed: <reason>`.
    pub fn from_legacy(s: &str) -> Self {
        match s {
            "delivered" => Self::Delivered,
            "read" => Self::Read,
            other => Self::Failed { reason: other.strip_prefix("failed:").map(str::trim).unwrap_or(other).to_string() },
        }
    }
}

/// Lifecycle of a suggestion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuggestionStatus {
    Pending,
    Approved,
    Edited,
    Rejected,
    Superseded,
}

impl SuggestionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SuggestionStatus::Pending => "pending",
            SuggestionStatus::Approved => "approved",
            SuggestionStatus::Edited => "edited",
            SuggestionStatus::Rejected => "rejected",
            SuggestionStatus::Superseded => "superseded",
        }
    }
}

/// Lifecycle of an outgoing reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyStatus {
    Queued,
    Sending,
    Sent,
    Delivered,
    Failed,
}

impl ReplyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyStatus::Queued => "queued",
            ReplyStatus::Sending => "sending",
            ReplyStatus::Sent => "sent",
            ReplyStatus::Delivered => "delivered",
            ReplyStatus::Failed => "failed",
        }
    }

    /// No more sending will happen.
    pub fn is_final(self) -> bool {
        matches!(self, ReplyStatus::Sent | ReplyStatus::Delivered | ReplyStatus::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_machine() {
        assert!(Status::Open.can_become(Status::Escalated));
        assert!(Status::Resolved.can_become(Status::Open));
        assert!(!Status::Resolved.can_become(Status::Escalated));
        assert!(!Status::Resolved.can_become(Status::WaitingCustomer));
        assert!(!Status::Escalated.can_become(Status::WaitingCustomer));
        for s in Status::ALL {
            assert!(!s.can_become(s), "{s} to itself is not a change");
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
    }
}

/// A stored file sent with a reply: named by its content hash in the tenant's media store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyAttachment {
    pub sha256: String,
    pub mime_type: String,
    pub size: u64,
    /// The name the customer sees (documents); made from the hash when not given.
    pub file_name: String,
}

impl ReplyAttachment {
    /// Whether the file is sent as a photo (rather than as a document).
    pub fn is_photo(&self) -> bool {
        matches!(self.mime_type.as_str(), "image/jpeg" | "image/png" | "image/webp")
    }
}
