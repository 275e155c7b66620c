//! MAX (and WhatsApp) personal accounts through GREEN-API: webhook notifications, chat ids,
//! webhook authentication and the REST client.
//!
//! GREEN-API addresses one person in two ways: `79991234567@c.us` (the phone chat id, what we
//! send to when all we know is a phone number) and, on MAX, a short numeric internal id such as
//! `41837581` (what inbound webhooks carry). [`ChatId::parse`] normalises both and never appends
//! `@c.us` to ids with fewer than 10 digits; [`ChatAlias::from_echo`] learns that two ids are one
//! person from the echo of an API send.

mod client;
mod webhook;

pub use client::{GreenApiClient, GreenApiCredentials, OutgoingRecord, webhook_settings};
pub use webhook::{parse, verify_webhook_token};

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{OutgoingEcho, phone_digits};
use crate::infra::redact::mask_phone;

/// Ids with at least this many digits are phone numbers; shorter ones are MAX internal ids.
const MIN_PHONE_DIGITS: usize = 10;

/// Message types that are known and deliberately not stored (they would be empty bubbles).
const IGNORED_MESSAGE_TYPES: &[&str] = &[
    "reactionMessage",
    "stickerMessage",
    "pollMessage",
    "pollUpdateMessage",
    "deletedMessage",
    "groupInviteMessage",
    "callMessage",
];

/// Notification types that are known and deliberately not stored.
const IGNORED_WEBHOOK_TYPES: &[&str] =
    &["incomingCall", "deviceInfo", "incomingBlock", "quotaExceeded", "statusInstanceChanged"];

/// What a chat id addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatKind {
    /// `<10+ digits>@c.us`: a person addressed by phone number.
    Phone,
    /// A bare short number: a MAX user's internal id.
    Internal,
    /// A group chat: a negative number (MAX) or `…@g.us` (WhatsApp).
    Group,
}

/// A normalised GREEN-API chat id.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChatId(String);

/// A string that is not a GREEN-API chat id. The value is not kept: it may be a phone number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a GREEN-API chat id")]
pub struct ChatIdError;

impl ChatId {
    /// Parses and normalises a chat id:
    ///
    /// - `79991234567@c.us` stays, and bare 10+ digit numbers get `@c.us` (phone chats);
    /// - MAX internal ids stay bare, and `@c.us` is stripped from ids with fewer than 10 digits
    ///   (GREEN-API answers 400 to `41837581@c.us`);
    /// - group ids (`-1001234567890`, `…@g.us`) stay as they are;
    /// - `@s.whatsapp.net` becomes `@c.us`.
    pub fn parse(raw: &str) -> Result<ChatId, ChatIdError> {
        let s = raw.trim();
        let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if let Some((local, domain)) = s.split_once('@') {
            return match domain {
                "c.us" | "s.whatsapp.net" if all_digits(local) => Ok(ChatId::from_digits(local)),
                "g.us" if !local.is_empty() && local.bytes().all(|b| b.is_ascii_digit() || b == b'-') => {
                    Ok(ChatId(s.to_string()))
                }
                _ => Err(ChatIdError),
            };
        }
        if let Some(rest) = s.strip_prefix('-') {
            return if all_digits(rest) { Ok(ChatId(s.to_string())) } else { Err(ChatIdError) };
        }
        if all_digits(s) { Ok(ChatId::from_digits(s)) } else { Err(ChatIdError) }
    }

    /// The phone chat id of a phone number written in any common way (`+7 999 123-45-67`).
    pub fn from_phone(phone: &str) -> Result<ChatId, ChatIdError> {
        let digits = phone_digits(phone).ok_or(ChatIdError)?;
        Ok(ChatId(format!("{digits}@c.us")))
    }

    fn from_digits(digits: &str) -> ChatId {
        if digits.len() >= MIN_PHONE_DIGITS { ChatId(format!("{digits}@c.us")) } else { ChatId(digits.to_string()) }
    }

    /// The id as GREEN-API expects it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the id addresses.
    pub fn kind(&self) -> ChatKind {
        if self.0.ends_with("@g.us") || self.0.starts_with('-') {
            ChatKind::Group
        } else if self.0.ends_with("@c.us") {
            ChatKind::Phone
        } else {
            ChatKind::Internal
        }
    }

    /// The phone number (digits) of a phone chat id.
    pub fn phone(&self) -> Option<&str> {
        self.0.strip_suffix("@c.us")
    }

    /// The id with all but the last two digits masked, for logs.
    pub fn masked(&self) -> String {
        mask_phone(&self.0)
    }
}

impl fmt::Debug for ChatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ChatId").field(&self.masked()).finish()
    }
}

impl TryFrom<String> for ChatId {
    type Error = ChatIdError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        ChatId::parse(&value)
    }
}

impl From<ChatId> for String {
    fn from(id: ChatId) -> String {
        id.0
    }
}

/// Normalises a chat id ([`ChatId::parse`]); a string that is no chat id is returned trimmed.
pub fn normalize_chat_id(raw: &str) -> String {
    ChatId::parse(raw).map(String::from).unwrap_or_else(|_| raw.trim().to_string())
}

/// The phone number (digits) of a phone chat id, `None` for internal and group ids.
pub fn phone_of(chat_id: &str) -> Option<String> {
    ChatId::parse(chat_id).ok()?.phone().map(String::from)
}

/// One MAX person's two ids: the phone chat id we sent to and the internal id MAX uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatAlias {
    /// `79991234567@c.us`.
    pub phone_chat_id: String,
    /// `41837581`.
    pub internal_id: String,
}

impl ChatAlias {
    /// Learns an alias from the echo of one of our API sends. `sent_to` is the chat id of the
    /// stored send whose provider message id equals `echo.provider_message_id` (so the outbound
    /// message id must be stored before the echo can arrive). Returns `None` when the echo does
    /// not reveal a second id.
    pub fn from_echo(sent_to: &str, echo: &OutgoingEcho) -> Option<ChatAlias> {
        let sent = ChatId::parse(sent_to).ok()?;
        let seen = ChatId::parse(&echo.chat_id).ok()?;
        (echo.sent_by_api && sent.kind() == ChatKind::Phone && seen.kind() == ChatKind::Internal)
            .then_some(ChatAlias { phone_chat_id: sent.0, internal_id: seen.0 })
    }
}

#[cfg(test)]
mod tests;
