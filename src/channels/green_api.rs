//! MAX (and WhatsApp) personal accounts through GREEN-API: webhook notifications, chat ids,
//! webhook authentication and the REST client.
//!
//! GREEN-API addresses one person in two ways: `79991234567@c.us` (the phone chat id, what we
//! send to when all we know is a phone number) and, on MAX, a short numeric internal id such as
//! `41837581` (what inbound webhooks carry). [`ChatId::parse`] normalises both and never appends
//! `@c.us` to ids with fewer than 10 digits; [`ChatAlias::from_echo`] learns that two ids are one
//! person from the echo of an API send.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{
    Attachment, AttachmentKind, DEFAULT_TIMEOUT, DeliveryState, DeliveryStatus, InboundMessage, MessageKind,
    Notification, OutgoingEcho, ParseError, SendError, SentMessage, WebhookAuthError, at, constant_time_eq, excerpt,
    exchange, file_placeholder, id_at, phone_digits, render_contact, render_location, retry_after_header, str_at,
    time_at, vcard_phones,
};
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

/// Checks the `Authorization` header GREEN-API sends with every webhook when the account's
/// `webhookUrlToken` is set: `Bearer <token>`. A bare `<token>` is accepted too.
pub fn verify_webhook_token(expected: &str, authorization: Option<&str>) -> Result<(), WebhookAuthError> {
    if expected.is_empty() {
        return Err(WebhookAuthError::NotConfigured);
    }
    let header = authorization.map(str::trim).filter(|h| !h.is_empty()).ok_or(WebhookAuthError::Missing)?;
    let token = match header.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        Some(_) => return Err(WebhookAuthError::Malformed),
        None => header,
    };
    if constant_time_eq(token.as_bytes(), expected.as_bytes()) { Ok(()) } else { Err(WebhookAuthError::Mismatch) }
}

/// Parses a GREEN-API webhook notification.
pub fn parse(body: &[u8]) -> Result<Notification, ParseError> {
    let v: Value = serde_json::from_slice(body)?;
    if !v.is_object() {
        return Err(ParseError::NotAnObject);
    }
    let kind = str_at(&v, &["typeWebhook"]).ok_or(ParseError::Field("typeWebhook"))?;
    match kind {
        "incomingMessageReceived" => incoming(&v),
        "outgoingAPIMessageReceived" => echo(&v, true),
        "outgoingMessageReceived" => echo(&v, false),
        "outgoingMessageStatus" => status(&v),
        "stateInstanceChanged" => {
            let state = str_at(&v, &["stateInstance"]).ok_or(ParseError::Field("stateInstance"))?;
            Ok(Notification::StateChanged { state: state.to_string() })
        }
        k if IGNORED_WEBHOOK_TYPES.contains(&k) => Ok(Notification::Ignored { reason: k.to_string() }),
        k => Ok(Notification::Unknown { kind: k.to_string() }),
    }
}

/// What a `messageData` object holds.
enum Content {
    Kept { text: String, kind: MessageKind, attachments: Vec<Attachment>, edit_of: Option<String> },
    Ignored(String),
    Unknown(String),
}

fn content(data: &Value) -> Result<Content, ParseError> {
    let type_message = str_at(data, &["typeMessage"]).ok_or(ParseError::Field("messageData.typeMessage"))?;
    let text_kept =
        |text: &str, kind| Content::Kept { text: text.to_string(), kind, attachments: vec![], edit_of: None };
    let content = match type_message {
        "textMessage" => {
            let text = at(data, &["textMessageData", "textMessage"]).and_then(Value::as_str);
            text_kept(text.ok_or(ParseError::Field("messageData.textMessageData.textMessage"))?, MessageKind::Text)
        }
        "extendedTextMessage" | "quotedMessage" => {
            let text = at(data, &["extendedTextMessageData", "text"]).and_then(Value::as_str);
            text_kept(text.ok_or(ParseError::Field("messageData.extendedTextMessageData.text"))?, MessageKind::Text)
        }
        "imageMessage" | "videoMessage" | "documentMessage" | "audioMessage" | "voiceMessage" => {
            let file = data.get("fileMessageData").filter(|f| f.is_object());
            let file = file.ok_or(ParseError::Field("messageData.fileMessageData"))?;
            let kind = match type_message {
                "imageMessage" => AttachmentKind::Image,
                "videoMessage" => AttachmentKind::Video,
                "audioMessage" => AttachmentKind::Audio,
                "voiceMessage" => AttachmentKind::Voice,
                _ => AttachmentKind::Document,
            };
            let caption = str_at(file, &["caption"]).map(String::from);
            let file_name = str_at(file, &["fileName"]).map(String::from);
            let text = caption.clone().unwrap_or_else(|| file_placeholder(kind, file_name.as_deref()));
            let attachment = Attachment {
                kind,
                url: str_at(file, &["downloadUrl"]).map(String::from),
                file_id: None,
                mime_type: str_at(file, &["mimeType"]).map(String::from),
                file_name,
                caption,
            };
            Content::Kept { text, kind: kind.message_kind(), attachments: vec![attachment], edit_of: None }
        }
        "contactMessage" => {
            let card = data.get("contactMessageData").ok_or(ParseError::Field("messageData.contactMessageData"))?;
            text_kept(&render_card(card), MessageKind::Contact)
        }
        "contactsArrayMessage" => {
            let contacts = at(data, &["messageData", "contacts"])
                .or_else(|| at(data, &["contactsArrayMessageData", "contacts"]))
                .and_then(Value::as_array)
                .ok_or(ParseError::Field("messageData.messageData.contacts"))?;
            let text = contacts.iter().map(render_card).collect::<Vec<_>>().join("\n");
            text_kept(&text, MessageKind::Contact)
        }
        "locationMessage" => {
            let loc = data.get("locationMessageData").ok_or(ParseError::Field("messageData.locationMessageData"))?;
            let lat = at(loc, &["latitude"]).and_then(Value::as_f64);
            let lon = at(loc, &["longitude"]).and_then(Value::as_f64);
            let (Some(lat), Some(lon)) = (lat, lon) else {
                return Err(ParseError::Field("messageData.locationMessageData.latitude"));
            };
            let text = render_location(str_at(loc, &["nameLocation"]), str_at(loc, &["address"]), lat, lon);
            text_kept(&text, MessageKind::Location)
        }
        "buttonsResponseMessage" | "templateButtonsReplyMessage" | "listResponseMessage" => {
            let title = [
                &["buttonsResponseMessage", "selectedButtonText"][..],
                &["templateButtonReplyMessage", "selectedDisplayText"],
                &["templateButtonsReplyMessage", "selectedDisplayText"],
                &["listResponseMessage", "title"],
            ]
            .iter()
            .find_map(|path| str_at(data, path));
            match title {
                Some(title) => text_kept(title, MessageKind::Button),
                None => Content::Unknown(format!("incomingMessageReceived/{type_message}")),
            }
        }
        "editedMessage" => {
            let edit = data.get("editedMessageData").ok_or(ParseError::Field("messageData.editedMessageData"))?;
            let text = str_at(edit, &["textMessage"]).or_else(|| str_at(edit, &["caption"])).unwrap_or_default();
            Content::Kept {
                text: text.to_string(),
                kind: MessageKind::Text,
                attachments: vec![],
                edit_of: str_at(edit, &["stanzaId"]).map(String::from),
            }
        }
        t if IGNORED_MESSAGE_TYPES.contains(&t) => Content::Ignored(t.to_string()),
        t => Content::Unknown(format!("incomingMessageReceived/{t}")),
    };
    Ok(content)
}

fn render_card(card: &Value) -> String {
    let phones = str_at(card, &["vcard"]).map(vcard_phones).unwrap_or_default();
    render_contact(str_at(card, &["displayName"]), &phones)
}

fn required_chat_id(v: &Value, path: &[&str], field: &'static str) -> Result<String, ParseError> {
    let raw = str_at(v, path).ok_or(ParseError::Field(field))?;
    Ok(normalize_chat_id(raw))
}

fn incoming(v: &Value) -> Result<Notification, ParseError> {
    let id = str_at(v, &["idMessage"]).ok_or(ParseError::Field("idMessage"))?;
    let sent_at = time_at(v, &["timestamp"]).ok_or(ParseError::Field("timestamp"))?;
    let chat_id = required_chat_id(v, &["senderData", "chatId"], "senderData.chatId")?;
    let data = v.get("messageData").filter(|d| d.is_object()).ok_or(ParseError::Field("messageData"))?;
    let (text, kind, attachments, edit_of) = match content(data)? {
        Content::Kept { text, kind, attachments, edit_of } => (text, kind, attachments, edit_of),
        Content::Ignored(reason) => return Ok(Notification::Ignored { reason }),
        Content::Unknown(kind) => return Ok(Notification::Unknown { kind }),
    };
    let text = text.trim().to_string();
    if text.is_empty() && attachments.is_empty() {
        return Ok(Notification::Ignored { reason: "empty message".into() });
    }
    let sender_id = str_at(v, &["senderData", "sender"]).map(normalize_chat_id).unwrap_or_else(|| chat_id.clone());
    // In a group the chat name is the group's, not the sender's.
    let in_group = ChatId::parse(&chat_id).is_ok_and(|c| c.kind() == ChatKind::Group);
    let name_fields: &[&str] =
        if in_group { &["senderName", "senderContactName"] } else { &["senderName", "senderContactName", "chatName"] };
    let sender_name = name_fields.iter().find_map(|k| str_at(v, &["senderData", k])).map(String::from);
    let phone = id_at(v, &["senderData", "senderPhoneNumber"])
        .and_then(|p| phone_digits(&p))
        .or_else(|| phone_of(&sender_id))
        .or_else(|| phone_of(&chat_id));
    let provider_message_id = match &edit_of {
        Some(original) if original == id => format!("{id}:edit:{}", sent_at.timestamp()),
        _ => id.to_string(),
    };
    let reply_to = str_at(data, &["quotedMessage", "stanzaId"])
        .or_else(|| str_at(data, &["extendedTextMessageData", "stanzaId"]))
        .map(String::from);
    Ok(Notification::Messages(vec![InboundMessage {
        provider_message_id,
        chat_id,
        sender_id,
        sender_name,
        phone,
        text,
        attachments,
        sent_at,
        kind,
        reply_to,
        edit_of,
    }]))
}

fn echo(v: &Value, sent_by_api: bool) -> Result<Notification, ParseError> {
    let id = str_at(v, &["idMessage"]).ok_or(ParseError::Field("idMessage"))?;
    let sent_at = time_at(v, &["timestamp"]).ok_or(ParseError::Field("timestamp"))?;
    let chat_id = required_chat_id(v, &["senderData", "chatId"], "senderData.chatId")?;
    let own = str_at(v, &["senderData", "sender"]).or_else(|| str_at(v, &["instanceData", "wid"]));
    if own.is_some_and(|own| normalize_chat_id(own) == chat_id) {
        return Ok(Notification::Ignored { reason: "echo of a message to the account itself".into() });
    }
    // The text of an echo is informative only: an odd messageData does not reject the echo.
    let text = match v.get("messageData").filter(|d| d.is_object()).map(content) {
        Some(Ok(Content::Kept { text, .. })) => Some(text.trim().to_string()).filter(|t| !t.is_empty()),
        _ => None,
    };
    Ok(Notification::OutgoingEcho(OutgoingEcho {
        provider_message_id: id.to_string(),
        chat_id,
        chat_name: str_at(v, &["senderData", "chatName"]).map(String::from),
        text,
        sent_by_api,
        sent_at,
    }))
}

fn status(v: &Value) -> Result<Notification, ParseError> {
    let id = str_at(v, &["idMessage"]).ok_or(ParseError::Field("idMessage"))?;
    let at = time_at(v, &["timestamp"]).ok_or(ParseError::Field("timestamp"))?;
    let raw = str_at(v, &["status"]).ok_or(ParseError::Field("status"))?;
    let description = str_at(v, &["description"]);
    let failed = |label: &str| DeliveryState::Failed {
        reason: description.map_or_else(|| label.to_string(), |d| format!("{label}: {d}")),
    };
    let state = match raw {
        "sent" => DeliveryState::Sent,
        "delivered" => DeliveryState::Delivered,
        "read" => DeliveryState::Read,
        "noAccount" => DeliveryState::NoAccount,
        "failed" | "notInGroup" | "yellowCard" | "noActiveSession" => failed(raw),
        "pending" => return Ok(Notification::Ignored { reason: "outgoingMessageStatus/pending".into() }),
        other => return Ok(Notification::Unknown { kind: format!("outgoingMessageStatus/{other}") }),
    };
    Ok(Notification::Statuses(vec![DeliveryStatus {
        provider_message_id: id.to_string(),
        chat_id: str_at(v, &["chatId"]).map(normalize_chat_id),
        status: state,
        at,
    }]))
}

/// Credentials of one GREEN-API account (instance).
#[derive(Debug, Clone)]
pub struct GreenApiCredentials {
    /// The account's own API host (e.g. `https://3100.api.green-api.com/v3` for MAX); `None` uses
    /// the client's default base URL.
    pub api_url: Option<String>,
    pub id_instance: u64,
    pub api_token: SecretString,
}

/// A message from the account's journal of outgoing messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingRecord {
    pub id_message: String,
    /// Normalised chat id.
    pub chat_id: String,
    /// The text (or caption) of the message, when it has one.
    pub text: Option<String>,
    pub timestamp: DateTime<Utc>,
    /// `sent`, `delivered`, `read`, `noAccount`, … as GREEN-API reports it.
    pub status: Option<String>,
    pub sent_by_api: bool,
}

/// The complete settings object sent by [`GreenApiClient::set_settings`].
///
/// GREEN-API resets every toggle a `setSettings` call leaves out, so the whole object is always
/// sent: incoming messages, echoes of API and phone sends, delivery statuses and state changes
/// on; everything else off.
pub fn webhook_settings(webhook_url: &str, webhook_url_token: &str) -> Value {
    json!({
        "webhookUrl": webhook_url,
        "webhookUrlToken": webhook_url_token,
        "incomingWebhook": "yes",
        "outgoingWebhook": "yes",
        "outgoingAPIMessageWebhook": "yes",
        "outgoingMessageWebhook": "yes",
        "stateWebhook": "yes",
        "deviceWebhook": "no",
        "incomingCallWebhook": "no",
        "incomingBlockWebhook": "no",
        "pollMessageWebhook": "no",
        "editedMessageWebhook": "no",
        "deletedMessageWebhook": "no",
        "keepOnlineStatus": "no",
        "markIncomingMessagesReaded": "no",
        "markIncomingMessagesReadedOnReply": "no",
    })
}

/// The GREEN-API REST client.
#[derive(Debug, Clone)]
pub struct GreenApiClient {
    http: reqwest::Client,
    base_url: String,
    timeout: Duration,
}

impl GreenApiClient {
    /// A client using `base_url` (e.g. `https://api.green-api.com`) for accounts without their own.
    pub fn new(http: reqwest::Client, base_url: impl Into<String>) -> Self {
        GreenApiClient { http, base_url: base_url.into(), timeout: DEFAULT_TIMEOUT }
    }

    /// The same client with another request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn url(&self, creds: &GreenApiCredentials, method: &str) -> String {
        let base = creds.api_url.as_deref().unwrap_or(&self.base_url).trim_end_matches('/');
        format!("{base}/waInstance{}/{method}/{}", creds.id_instance, creds.api_token.expose_secret())
    }

    /// Sends a text message. The chat id is normalised first ([`ChatId::parse`]).
    pub async fn send_message(
        &self,
        creds: &GreenApiCredentials,
        chat_id: &str,
        text: &str,
    ) -> Result<SentMessage, SendError> {
        let chat = ChatId::parse(chat_id).map_err(|_| SendError::permanent("invalid chat id"))?;
        let body = json!({ "chatId": chat.as_str(), "message": text });
        let answer = exchange(self.http.post(self.url(creds, "sendMessage")).json(&body), self.timeout).await;
        let value = ok_json(answer).inspect_err(|e| {
            tracing::warn!(op = "sendMessage", chat = %chat.masked(), error = %e, "GREEN-API send failed");
        })?;
        match str_at(&value, &["idMessage"]) {
            Some(id) => Ok(SentMessage { provider_message_id: id.to_string() }),
            None => Err(SendError::permanent("GREEN-API accepted the message but returned no idMessage")),
        }
    }

    /// The account's state: `authorized`, `notAuthorized`, `blocked`, `starting`, `yellowCard`, …
    pub async fn get_state_instance(&self, creds: &GreenApiCredentials) -> Result<String, SendError> {
        let answer = exchange(self.http.get(self.url(creds, "getStateInstance")), self.timeout).await;
        let value = ok_json(answer)?;
        str_at(&value, &["stateInstance"])
            .map(String::from)
            .ok_or_else(|| SendError::permanent("GREEN-API answer has no stateInstance"))
    }

    /// Points the account's webhooks at `webhook_url`, authenticated with `webhook_url_token`,
    /// sending the complete settings object ([`webhook_settings`]). Refuses relative URLs.
    pub async fn set_settings(
        &self,
        creds: &GreenApiCredentials,
        webhook_url: &str,
        webhook_url_token: &str,
    ) -> Result<(), SendError> {
        if !(webhook_url.starts_with("https://") || webhook_url.starts_with("http://")) {
            return Err(SendError::permanent("the webhook URL must be an absolute http(s) URL"));
        }
        let body = webhook_settings(webhook_url, webhook_url_token);
        let answer = exchange(self.http.post(self.url(creds, "setSettings")).json(&body), self.timeout).await;
        let value = ok_json(answer)?;
        match at(&value, &["saveSettings"]).and_then(Value::as_bool) {
            Some(true) => Ok(()),
            _ => Err(SendError::permanent(format!(
                "GREEN-API did not save the settings: {}",
                excerpt(&value.to_string())
            ))),
        }
    }

    /// The account's outgoing messages of the last `minutes` minutes (newest first, as GREEN-API
    /// returns them). Used to reconcile a send whose answer was lost.
    pub async fn last_outgoing_messages(
        &self,
        creds: &GreenApiCredentials,
        minutes: u32,
    ) -> Result<Vec<OutgoingRecord>, SendError> {
        let url = format!("{}?minutes={minutes}", self.url(creds, "lastOutgoingMessages"));
        let value = ok_json(exchange(self.http.get(url), self.timeout).await)?;
        let items = value.as_array().ok_or_else(|| SendError::permanent("GREEN-API journal is not an array"))?;
        Ok(items.iter().filter_map(outgoing_record).collect())
    }
}

fn outgoing_record(item: &Value) -> Option<OutgoingRecord> {
    let text = str_at(item, &["textMessage"])
        .or_else(|| str_at(item, &["extendedTextMessage", "text"]))
        .or_else(|| str_at(item, &["caption"]))
        .map(String::from);
    Some(OutgoingRecord {
        id_message: str_at(item, &["idMessage"])?.to_string(),
        chat_id: normalize_chat_id(str_at(item, &["chatId"])?),
        text,
        timestamp: time_at(item, &["timestamp"])?,
        status: str_at(item, &["statusMessage"]).map(String::from),
        sent_by_api: at(item, &["sendByApi"]).and_then(Value::as_bool).unwrap_or(false),
    })
}

/// The JSON of a 2xx answer, or the classified error.
fn ok_json(answer: Result<super::Answer, SendError>) -> Result<Value, SendError> {
    let answer = answer?;
    if answer.status.is_success() {
        return serde_json::from_str(&answer.body).map_err(|_| {
            SendError::permanent(format!("GREEN-API answered {} with a body that is not JSON", answer.status.as_u16()))
        });
    }
    Err(classify(answer.status.as_u16(), &answer.headers, &answer.body))
}

/// Classifies a GREEN-API error answer.
///
/// 429, 499 and 5xx are transient, and so is a 400 while the instance is (re)starting (it
/// restarts after every `setSettings`). 466 (monthly quota used up), 401 (token), 403
/// (idInstance), 404 and other 400s are permanent.
pub(crate) fn classify(status: u16, headers: &reqwest::header::HeaderMap, body: &str) -> SendError {
    let detail = error_detail(body);
    let reason =
        if detail.is_empty() { format!("GREEN-API {status}") } else { format!("GREEN-API {status}: {detail}") };
    match status {
        429 | 499..=599 => SendError::transient(reason, retry_after_header(headers)),
        400 if body.to_ascii_lowercase().contains("starting") => {
            SendError::transient(reason, retry_after_header(headers).or(Some(Duration::from_secs(5))))
        }
        _ => SendError::permanent(reason),
    }
}

/// The readable part of a GREEN-API error body: plain text, or the description of a 466 quota
/// answer, or a `message` field.
fn error_detail(body: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return if body.trim_start().starts_with('<') { String::new() } else { excerpt(body) };
    };
    let described = [
        &["correspondentsStatus", "description"][..],
        &["invokeStatus", "description"],
        &["message"],
        &["error"],
        &["reason"],
    ]
    .iter()
    .find_map(|path| str_at(&v, path));
    excerpt(described.map_or_else(|| v.to_string(), String::from).as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_json(v: Value) -> Notification {
        parse(v.to_string().as_bytes()).expect("parses")
    }

    fn incoming_body(message_data: Value) -> Value {
        json!({
            "typeWebhook": "incomingMessageReceived",
            "instanceData": {"idInstance": 3100525112u64, "wid": "79990000000@c.us", "typeInstance": "v3"},
            "timestamp": 1714650000,
            "idMessage": "BAE5F4C1D2",
            "senderData": {"chatId": "41837581", "sender": "41837581", "chatName": "Иван", "senderName": "Иван"},
            "messageData": message_data,
        })
    }

    fn one_message(n: Notification) -> InboundMessage {
        match n {
            Notification::Messages(mut m) if m.len() == 1 => m.remove(0),
            other => panic!("expected one message, got {other:?}"),
        }
    }

    #[test]
    fn chat_ids_are_normalised() {
        assert_eq!(normalize_chat_id("79991234567@c.us"), "79991234567@c.us");
        assert_eq!(normalize_chat_id("79991234567"), "79991234567@c.us");
        assert_eq!(normalize_chat_id(" 41837581 "), "41837581");
        assert_eq!(normalize_chat_id("58240096@c.us"), "58240096", "short ids never keep @c.us");
        assert_eq!(normalize_chat_id("123456789@c.us"), "123456789", "nine digits is not a phone");
        assert_eq!(normalize_chat_id("1234567890"), "1234567890@c.us");
        assert_eq!(normalize_chat_id("-1001234567890"), "-1001234567890");
        assert_eq!(normalize_chat_id("120363043968066561@g.us"), "120363043968066561@g.us");
        assert_eq!(normalize_chat_id("79991234567@s.whatsapp.net"), "79991234567@c.us");
        assert!(ChatId::parse("").is_err());
        assert!(ChatId::parse("abc@c.us").is_err());
        assert!(ChatId::parse("7999@x.us").is_err());
        assert!(ChatId::parse("ivan").is_err());
    }

    #[test]
    fn chat_kinds_and_phones() {
        let phone = ChatId::parse("79991234567@c.us").unwrap();
        assert_eq!(phone.kind(), ChatKind::Phone);
        assert_eq!(phone.phone(), Some("79991234567"));
        assert_eq!(ChatId::parse("41837581").unwrap().kind(), ChatKind::Internal);
        assert_eq!(ChatId::parse("-1001234567890").unwrap().kind(), ChatKind::Group);
        assert_eq!(ChatId::parse("1203630@g.us").unwrap().kind(), ChatKind::Group);
        assert_eq!(phone_of("79991234567@c.us").as_deref(), Some("79991234567"));
        assert_eq!(phone_of("41837581"), None);
        assert_eq!(phone_of("-1001234567890"), None);
        assert_eq!(ChatId::from_phone("+7 (999) 123-45-67").unwrap().as_str(), "79991234567@c.us");
        assert!(ChatId::from_phone("12345").is_err());
        assert!(!format!("{phone:?}").contains("9991234"), "Debug masks the phone");
    }

    #[test]
    fn chat_id_round_trips_through_serde() {
        let id: ChatId = serde_json::from_str("\"58240096@c.us\"").unwrap();
        assert_eq!(id.as_str(), "58240096");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"58240096\"");
        assert!(serde_json::from_str::<ChatId>("\"nope\"").is_err());
    }

    #[test]
    fn text_message_from_a_max_internal_id() {
        let m = one_message(parse_json(incoming_body(json!({
            "typeMessage": "textMessage",
            "textMessageData": {"textMessage": "Нужна АКПП на Camry"}
        }))));
        assert_eq!(m.provider_message_id, "BAE5F4C1D2");
        assert_eq!(m.chat_id, "41837581");
        assert_eq!(m.sender_id, "41837581");
        assert_eq!(m.sender_name.as_deref(), Some("Иван"));
        assert_eq!(m.phone, None);
        assert_eq!(m.text, "Нужна АКПП на Camry");
        assert_eq!(m.kind, MessageKind::Text);
        assert_eq!(m.sent_at.timestamp(), 1714650000);
        assert!(m.attachments.is_empty());
    }

    #[test]
    fn phone_comes_from_a_phone_chat_or_sender_phone_number() {
        let mut body =
            incoming_body(json!({"typeMessage": "textMessage", "textMessageData": {"textMessage": "Привет"}}));
        body["senderData"] = json!({"chatId": "79001234567@c.us", "sender": "79001234567@c.us", "senderName": ""});
        let m = one_message(parse_json(body.clone()));
        assert_eq!(m.chat_id, "79001234567@c.us");
        assert_eq!(m.phone.as_deref(), Some("79001234567"));
        assert_eq!(m.sender_name, None, "empty names are no names");

        body["senderData"] = json!({"chatId": "41837581", "sender": "41837581", "senderPhoneNumber": 79001234567u64});
        assert_eq!(one_message(parse_json(body)).phone.as_deref(), Some("79001234567"));
    }

    #[test]
    fn group_messages_reply_to_the_group_and_name_the_member() {
        let mut body = incoming_body(
            json!({"typeMessage": "textMessage", "textMessageData": {"textMessage": "Кто продаёт АКПП?"}}),
        );
        body["senderData"] = json!({"chatId": "-1001234567890", "chatName": "Авторазборка чат",
                                    "sender": "41837581", "senderName": ""});
        let m = one_message(parse_json(body.clone()));
        assert_eq!(m.chat_id, "-1001234567890");
        assert_eq!(m.sender_id, "41837581");
        assert_eq!(m.sender_name, None, "the group's name is not the sender's");
        body["senderData"]["senderName"] = json!("Иван");
        assert_eq!(one_message(parse_json(body)).sender_name.as_deref(), Some("Иван"));
    }

    #[test]
    fn extended_text_keeps_urls() {
        let m = one_message(parse_json(incoming_body(json!({
            "typeMessage": "extendedTextMessage",
            "extendedTextMessageData": {
                "text": "Вот эта коробка https://example.com/akpp/u660e",
                "description": "", "title": "", "jpegThumbnail": "", "isForwarded": false, "forwardingScore": 0
            }
        }))));
        assert_eq!(m.text, "Вот эта коробка https://example.com/akpp/u660e");
        assert_eq!(m.kind, MessageKind::Text);
    }

    #[test]
    fn quoted_message_is_a_reply() {
        let m = one_message(parse_json(incoming_body(json!({
            "typeMessage": "quotedMessage",
            "extendedTextMessageData": {"text": "Да, эту", "stanzaId": "BAE5AA11", "participant": "41837581"},
            "quotedMessage": {"stanzaId": "BAE5AA11", "participant": "79990000000@c.us",
                              "typeMessage": "textMessage", "textMessage": "Вам подходит U660E?"}
        }))));
        assert_eq!(m.text, "Да, эту");
        assert_eq!(m.reply_to.as_deref(), Some("BAE5AA11"));
    }

    #[test]
    fn file_captions_become_text_and_files_become_attachments() {
        let m = one_message(parse_json(incoming_body(json!({
            "typeMessage": "imageMessage",
            "fileMessageData": {
                "downloadUrl": "https://sw-media.storage.yandexcloud.net/1101/abc.jpg",
                "caption": "Шильдик коробки", "fileName": "abc.jpg", "jpegThumbnail": "", "mimeType": "image/jpeg",
                "isForwarded": false, "forwardingScore": 0
            }
        }))));
        assert_eq!(m.text, "Шильдик коробки");
        assert_eq!(m.kind, MessageKind::Image);
        assert_eq!(m.attachments.len(), 1);
        let a = &m.attachments[0];
        assert_eq!(a.kind, AttachmentKind::Image);
        assert_eq!(a.url.as_deref(), Some("https://sw-media.storage.yandexcloud.net/1101/abc.jpg"));
        assert_eq!(a.mime_type.as_deref(), Some("image/jpeg"));
        assert_eq!(a.caption.as_deref(), Some("Шильдик коробки"));

        let m = one_message(parse_json(incoming_body(json!({
            "typeMessage": "documentMessage",
            "fileMessageData": {"downloadUrl": "https://x/sts.pdf", "caption": "", "fileName": "СТС.pdf",
                                "mimeType": "application/pdf"}
        }))));
        assert_eq!(m.text, "[Документ: СТС.pdf]");
        assert_eq!(m.kind, MessageKind::Document);

        for (t, kind, text) in
            [("videoMessage", MessageKind::Video, "[Видео]"), ("audioMessage", MessageKind::Audio, "[Аудио]")]
        {
            let m = one_message(parse_json(incoming_body(json!({
                "typeMessage": t, "fileMessageData": {"downloadUrl": "https://x/f", "mimeType": "x/y"}
            }))));
            assert_eq!((m.kind, m.text.as_str()), (kind, text));
        }
    }

    #[test]
    fn contact_cards_and_locations_become_readable_text() {
        let m = one_message(parse_json(incoming_body(json!({
            "typeMessage": "contactMessage",
            "contactMessageData": {
                "displayName": "Пётр Сервис",
                "vcard": "BEGIN:VCARD\nVERSION:3.0\nN:;Пётр Сервис;;;\nFN:Пётр Сервис\nTEL;type=CELL;waid=79001234567:+7 900 123-45-67\nEND:VCARD",
                "isForwarded": false, "forwardingScore": 0
            }
        }))));
        assert_eq!(m.text, "Контакт: Пётр Сервис, +7 900 123-45-67");
        assert_eq!(m.kind, MessageKind::Contact);

        let m = one_message(parse_json(incoming_body(json!({
            "typeMessage": "contactsArrayMessage",
            "messageData": {"contacts": [
                {"displayName": "А", "vcard": "BEGIN:VCARD\nTEL:+79000000001\nEND:VCARD"},
                {"displayName": "Б", "vcard": "BEGIN:VCARD\nTEL:+79000000002\nEND:VCARD"}
            ]}
        }))));
        assert_eq!(m.text, "Контакт: А, +79000000001\nКонтакт: Б, +79000000002");

        let m = one_message(parse_json(incoming_body(json!({
            "typeMessage": "locationMessage",
            "locationMessageData": {"nameLocation": "Автосервис", "address": "ул. Ленина, 1",
                                    "latitude": 55.751244, "longitude": 37.618423, "jpegThumbnail": ""}
        }))));
        assert_eq!(m.text, "Геопозиция: Автосервис, ул. Ленина, 1 (55.751244, 37.618423)");
        assert_eq!(m.kind, MessageKind::Location);
    }

    #[test]
    fn reactions_stickers_polls_are_ignored() {
        for t in ["reactionMessage", "stickerMessage", "pollMessage", "pollUpdateMessage", "deletedMessage"] {
            let n = parse_json(incoming_body(json!({"typeMessage": t, "extendedTextMessageData": {"text": "👍"}})));
            assert_eq!(n, Notification::Ignored { reason: t.to_string() });
        }
        let n =
            parse_json(incoming_body(json!({"typeMessage": "textMessage", "textMessageData": {"textMessage": "  "}})));
        assert!(matches!(n, Notification::Ignored { .. }), "empty text is not stored: {n:?}");
    }

    #[test]
    fn unknown_message_types_go_to_the_dead_letter() {
        let n = parse_json(incoming_body(json!({"typeMessage": "hologramMessage"})));
        assert_eq!(n, Notification::Unknown { kind: "incomingMessageReceived/hologramMessage".into() });
    }

    #[test]
    fn edits_are_new_versions_of_the_original() {
        let mut body = incoming_body(json!({
            "typeMessage": "editedMessage",
            "editedMessageData": {"textMessage": "Нужна АКПП на Camry 2012", "stanzaId": "BAE5F4C1D2"}
        }));
        body["timestamp"] = json!(1714650100);
        let m = one_message(parse_json(body));
        assert_eq!(m.provider_message_id, "BAE5F4C1D2:edit:1714650100");
        assert_eq!(m.edit_of.as_deref(), Some("BAE5F4C1D2"));
        assert_eq!(m.text, "Нужна АКПП на Camry 2012");
    }

    #[test]
    fn api_echo_reveals_the_internal_id() {
        let n = parse_json(json!({
            "typeWebhook": "outgoingAPIMessageReceived",
            "instanceData": {"idInstance": 3100525112u64, "wid": "79990000000@c.us", "typeInstance": "v3"},
            "timestamp": 1714650001,
            "idMessage": "BAE5AA11",
            "senderData": {"chatId": "58240096@c.us", "sender": "79990000000@c.us", "chatName": "Пётр"},
            "messageData": {"typeMessage": "extendedTextMessage", "extendedTextMessageData": {"text": "Здравствуйте!"}}
        }));
        let Notification::OutgoingEcho(echo) = n else { panic!("expected an echo, got {n:?}") };
        assert_eq!(echo.provider_message_id, "BAE5AA11");
        assert_eq!(echo.chat_id, "58240096");
        assert_eq!(echo.chat_name.as_deref(), Some("Пётр"));
        assert_eq!(echo.text.as_deref(), Some("Здравствуйте!"));
        assert!(echo.sent_by_api);
        let alias = ChatAlias::from_echo("79001234567@c.us", &echo).expect("alias learned");
        assert_eq!(alias, ChatAlias { phone_chat_id: "79001234567@c.us".into(), internal_id: "58240096".into() });
        assert_eq!(ChatAlias::from_echo("58240096", &echo), None, "same id: nothing to learn");
    }

    #[test]
    fn phone_echo_and_self_echo() {
        let body = json!({
            "typeWebhook": "outgoingMessageReceived",
            "instanceData": {"idInstance": 1, "wid": "79990000000@c.us", "typeInstance": "v3"},
            "timestamp": 1714650002, "idMessage": "X1",
            "senderData": {"chatId": "41837581", "sender": "79990000000@c.us", "chatName": ""},
            "messageData": {"typeMessage": "textMessage", "textMessageData": {"textMessage": "Набрал вручную"}}
        });
        let Notification::OutgoingEcho(echo) = parse_json(body.clone()) else { panic!() };
        assert!(!echo.sent_by_api);
        assert_eq!(echo.chat_name, None);
        let mut to_self = body;
        to_self["senderData"]["chatId"] = json!("79990000000@c.us");
        assert!(matches!(parse_json(to_self), Notification::Ignored { .. }));
    }

    #[test]
    fn outgoing_statuses() {
        let body = |status: &str, description: Option<&str>| {
            let mut v = json!({
                "typeWebhook": "outgoingMessageStatus",
                "chatId": "58240096@c.us",
                "instanceData": {"idInstance": 1, "wid": "79990000000@c.us", "typeInstance": "v3"},
                "timestamp": 1714650005, "idMessage": "BAE5AA11", "status": status, "sendByApi": true
            });
            if let Some(d) = description {
                v["description"] = json!(d);
            }
            v
        };
        let state = |n: Notification| match n {
            Notification::Statuses(s) => {
                assert_eq!(s[0].provider_message_id, "BAE5AA11");
                assert_eq!(s[0].chat_id.as_deref(), Some("58240096"));
                assert_eq!(s[0].at.timestamp(), 1714650005);
                s[0].status.clone()
            }
            other => panic!("expected statuses, got {other:?}"),
        };
        assert_eq!(state(parse_json(body("sent", None))), DeliveryState::Sent);
        assert_eq!(state(parse_json(body("delivered", None))), DeliveryState::Delivered);
        assert_eq!(state(parse_json(body("read", None))), DeliveryState::Read);
        assert_eq!(state(parse_json(body("noAccount", None))), DeliveryState::NoAccount);
        assert_eq!(
            state(parse_json(body("failed", Some("Recipient is unavailable")))),
            DeliveryState::Failed { reason: "failed: Recipient is unavailable".into() }
        );
        assert_eq!(state(parse_json(body("notInGroup", None))), DeliveryState::Failed { reason: "notInGroup".into() });
        assert!(matches!(parse_json(body("teleported", None)), Notification::Unknown { .. }));
    }

    #[test]
    fn state_changes_ignored_and_unknown_webhooks() {
        let n = parse_json(json!({
            "typeWebhook": "stateInstanceChanged",
            "instanceData": {"idInstance": 1, "wid": "", "typeInstance": "v3"},
            "timestamp": 1714650010, "stateInstance": "notAuthorized"
        }));
        assert_eq!(n, Notification::StateChanged { state: "notAuthorized".into() });
        let n = parse_json(json!({"typeWebhook": "incomingCall", "from": "79001234567@c.us", "status": "offer"}));
        assert_eq!(n, Notification::Ignored { reason: "incomingCall".into() });
        let n = parse_json(json!({"typeWebhook": "somethingNew", "x": 1}));
        assert_eq!(n, Notification::Unknown { kind: "somethingNew".into() });
    }

    #[test]
    fn garbage_and_missing_fields_are_parse_errors() {
        assert!(matches!(parse(b"not json"), Err(ParseError::Json(_))));
        assert!(matches!(parse(b"[1,2]"), Err(ParseError::NotAnObject)));
        assert!(matches!(parse(b"{}"), Err(ParseError::Field("typeWebhook"))));
        let mut body = incoming_body(json!({"typeMessage": "textMessage", "textMessageData": {"textMessage": "x"}}));
        body["senderData"].as_object_mut().unwrap().remove("chatId");
        assert!(matches!(parse(body.to_string().as_bytes()), Err(ParseError::Field("senderData.chatId"))));
        let mut body = incoming_body(json!({"typeMessage": "textMessage", "textMessageData": {"textMessage": "x"}}));
        body.as_object_mut().unwrap().remove("idMessage");
        assert!(matches!(parse(body.to_string().as_bytes()), Err(ParseError::Field("idMessage"))));
        let body = incoming_body(json!({"typeMessage": "textMessage"}));
        assert!(parse(body.to_string().as_bytes()).is_err());
        let body = incoming_body(json!({"typeMessage": "imageMessage"}));
        assert!(matches!(parse(body.to_string().as_bytes()), Err(ParseError::Field("messageData.fileMessageData"))));
        let status = json!({"typeWebhook": "outgoingMessageStatus", "idMessage": "X", "timestamp": 1});
        assert!(matches!(parse(status.to_string().as_bytes()), Err(ParseError::Field("status"))));
    }

    #[test]
    fn webhook_token_is_checked_as_a_bearer_header() {
        assert_eq!(verify_webhook_token("s3cret-token", Some("Bearer s3cret-token")), Ok(()));
        assert_eq!(verify_webhook_token("s3cret-token", Some("bearer s3cret-token")), Ok(()));
        assert_eq!(verify_webhook_token("s3cret-token", Some("s3cret-token")), Ok(()));
        assert_eq!(verify_webhook_token("s3cret-token", Some("Bearer wrong")), Err(WebhookAuthError::Mismatch));
        assert_eq!(verify_webhook_token("s3cret-token", Some("Basic czNjcmV0")), Err(WebhookAuthError::Malformed));
        assert_eq!(verify_webhook_token("s3cret-token", None), Err(WebhookAuthError::Missing));
        assert_eq!(verify_webhook_token("", Some("Bearer x")), Err(WebhookAuthError::NotConfigured));
    }

    #[test]
    fn settings_are_always_complete() {
        let s = webhook_settings("https://crm.example.com/webhooks/green-api/abc", "tok");
        let obj = s.as_object().unwrap();
        for key in [
            "incomingWebhook",
            "outgoingWebhook",
            "outgoingAPIMessageWebhook",
            "outgoingMessageWebhook",
            "stateWebhook",
        ] {
            assert_eq!(obj[key], "yes", "{key}");
        }
        assert_eq!(obj["webhookUrlToken"], "tok");
        assert!(obj.len() >= 16);
    }

    #[test]
    fn errors_are_classified() {
        let h = reqwest::header::HeaderMap::new();
        assert!(classify(429, &h, "Too Many Requests").is_transient());
        assert!(classify(500, &h, "Internal Server Error").is_transient());
        assert!(classify(502, &h, "<html>Bad Gateway</html>").is_transient());
        assert!(classify(499, &h, "").is_transient());
        let starting = classify(400, &h, "instance in starting process try later");
        assert_eq!(starting.retry_after(), Some(Duration::from_secs(5)));
        let bad = classify(400, &h, "Validation failed. Details: 'chatId' is required");
        assert_eq!(bad, SendError::permanent("GREEN-API 400: Validation failed. Details: 'chatId' is required"));
        let quota = r#"{"correspondentsStatus":{"method":"correspondents","used":3,"total":3,"status":"CORRESPONDENTS_QUOTA_EXCEEDED","description":"Monthly quota has been exceeded."}}"#;
        assert_eq!(classify(466, &h, quota), SendError::permanent("GREEN-API 466: Monthly quota has been exceeded."));
        assert_eq!(classify(401, &h, ""), SendError::permanent("GREEN-API 401"));
        assert!(!classify(403, &h, "Forbidden").is_transient());
    }
}
