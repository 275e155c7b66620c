//! Messenger channels: inbound webhook parsing and outbound clients.
//!
//! Three providers carry customer conversations:
//!
//! - [`green_api`]: MAX (and WhatsApp) personal accounts through GREEN-API,
//! - [`telegram`]: a Telegram bot through the Bot API,
//! - [`whatsapp`]: a WhatsApp Business number through Meta's Cloud API.
//!
//! Each module turns the provider's raw webhook body into provider-neutral [`Notification`]s
//! (messages, delivery statuses, echoes of our own sends, state changes, deliberately ignored
//! events and unknown events for the dead-letter table), checks the webhook's authentication,
//! and sends text through the provider's HTTP API, classifying every failure as
//! [`SendError::Transient`] (retry later) or [`SendError::Permanent`] (tell the operator).
//!
//! Parsing is pure: it takes the body bytes and never does IO. Clients hold a shared
//! [`reqwest::Client`] and a base URL from the configuration, put a timeout on every request,
//! and never log tokens or full phone numbers. `docs/channels.md` describes the mapping rules.

pub mod green_api;
pub mod telegram;
pub mod whatsapp;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Timeout of every outbound request unless a client is built with another one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// The longest excerpt of a provider's answer kept in an error reason.
const REASON_MAX_CHARS: usize = 300;

pub use aisales_domain::conversation::{AttachmentKind, ChannelKind, MessageKind, UnknownChannelKind};

/// A file attached to an inbound message. Nothing is downloaded while parsing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub kind: AttachmentKind,
    /// A direct download URL (GREEN-API gives one; it expires after a while).
    pub url: Option<String>,
    /// The provider's file or media id (Telegram `file_id`, WhatsApp media id).
    pub file_id: Option<String>,
    pub mime_type: Option<String>,
    pub file_name: Option<String>,
    pub caption: Option<String>,
}

/// An inbound customer message in provider-neutral form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// The provider's id of this message: the idempotency key of the ingest (unique per
    /// provider account; Telegram ids are made unique by prefixing the chat id).
    pub provider_message_id: String,
    /// Where replies go, normalised (GREEN-API: see [`green_api::ChatId`]).
    pub chat_id: String,
    /// Who wrote the message (differs from `chat_id` in groups).
    pub sender_id: String,
    pub sender_name: Option<String>,
    /// The sender's phone number as digits (country code first, no `+`), when the provider gives it.
    pub phone: Option<String>,
    /// Another id of the same sender given next to `chat_id` (WhatsApp's business-scoped user id
    /// next to the phone number): kept as an alias, so that the person stays one customer when a
    /// later message carries only one of them.
    #[serde(default)]
    pub sender_alias: Option<String>,
    /// The text, the caption of a file, or a readable rendering of a contact card, a location or
    /// a file without caption. Never empty.
    pub text: String,
    pub attachments: Vec<Attachment>,
    pub sent_at: DateTime<Utc>,
    pub kind: MessageKind,
    /// The provider id of the message this one replies to (quotes).
    pub reply_to: Option<String>,
    /// Set when this is a new version of an earlier message: the provider id of the original.
    pub edit_of: Option<String>,
}

/// How far an outbound message got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum DeliveryState {
    Sent,
    Delivered,
    Read,
    /// The provider gave up on the message; `reason` is the provider's explanation.
    Failed {
        reason: String,
    },
    /// The recipient has no account on the messenger (GREEN-API `noAccount`).
    NoAccount,
}

/// A delivery status of one of our outbound messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryStatus {
    /// The id the provider returned when the message was sent.
    pub provider_message_id: String,
    /// The chat the message went to, normalised, when the provider says.
    pub chat_id: Option<String>,
    pub status: DeliveryState,
    pub at: DateTime<Utc>,
}

/// The provider's echo of a message sent from the account (GREEN-API `outgoingAPIMessageReceived`
/// for our API sends, `outgoingMessageReceived` for messages typed on the phone).
///
/// The echo of an API send carries the chat id the messenger really uses, which for MAX is the
/// short internal id even when we sent to `<phone>@c.us`: correlating `provider_message_id` with
/// the stored send teaches the alias (see [`green_api::ChatAlias`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingEcho {
    pub provider_message_id: String,
    /// Normalised chat id as the messenger reports it.
    pub chat_id: String,
    pub chat_name: Option<String>,
    pub text: Option<String>,
    /// True for messages sent through the API, false for messages sent from the phone.
    pub sent_by_api: bool,
    pub sent_at: DateTime<Utc>,
}

/// What one webhook notification means.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Notification {
    /// Customer messages to ingest (deduplicated by `provider_message_id`).
    Messages(Vec<InboundMessage>),
    /// Delivery statuses of our outbound messages.
    Statuses(Vec<DeliveryStatus>),
    /// An echo of a message sent from the account.
    OutgoingEcho(OutgoingEcho),
    /// The provider account changed state (GREEN-API `stateInstanceChanged`, e.g. `notAuthorized`).
    StateChanged { state: String },
    /// A known notification that is deliberately not stored (reactions, stickers, polls, calls…).
    Ignored { reason: String },
    /// A notification this code does not know: the caller stores the raw body in the dead-letter
    /// table and answers 200 so the provider does not retry forever.
    Unknown { kind: String },
}

/// A webhook body that cannot be understood: the webhook answers 400 and stores nothing.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("body is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("body is not a JSON object")]
    NotAnObject,
    #[error("missing or invalid field `{0}`")]
    Field(&'static str),
}

/// A message the provider accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMessage {
    /// The provider's id of the sent message; delivery statuses and echoes refer to it.
    pub provider_message_id: String,
}

/// Why a provider call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth retrying later: network errors, timeouts, rate limits, provider outages.
    /// `retry_after` is the provider's own hint when it gave one.
    #[error("transient provider error: {reason}")]
    Transient { reason: String, retry_after: Option<Duration> },
    /// Retrying will not help (bad credentials, unknown or blocked chat, invalid request,
    /// exhausted quota): the operator has to act. `reason` is the provider's own text.
    #[error("permanent provider error: {reason}")]
    Permanent { reason: String },
    /// The request may have reached the provider, but no answer came back (a timeout after the
    /// connection was made, a broken answer): it may or may not have taken effect. For a send,
    /// retrying could deliver the message twice; other calls may treat it as transient.
    #[error("unconfirmed provider call: {reason}")]
    Unconfirmed { reason: String },
}

impl SendError {
    /// Whether a retry may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, SendError::Transient { .. } | SendError::Unconfirmed { .. })
    }

    /// The provider's (or the transport's) explanation.
    pub fn reason(&self) -> &str {
        match self {
            SendError::Transient { reason, .. }
            | SendError::Permanent { reason }
            | SendError::Unconfirmed { reason } => reason,
        }
    }

    /// The provider's retry hint, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SendError::Transient { retry_after, .. } => *retry_after,
            SendError::Permanent { .. } | SendError::Unconfirmed { .. } => None,
        }
    }

    pub(crate) fn transient(reason: impl Into<String>, retry_after: Option<Duration>) -> Self {
        SendError::Transient { reason: reason.into(), retry_after }
    }

    pub(crate) fn permanent(reason: impl Into<String>) -> Self {
        SendError::Permanent { reason: reason.into() }
    }
}

/// Why a webhook request is not accepted as coming from the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WebhookAuthError {
    /// No secret is configured on our side, so nothing can be verified.
    #[error("webhook secret is not configured")]
    NotConfigured,
    /// The request carries no credential.
    #[error("webhook credential is missing")]
    Missing,
    /// The credential is not in the expected shape.
    #[error("webhook credential is malformed")]
    Malformed,
    /// The credential does not match.
    #[error("webhook credential does not match")]
    Mismatch,
}

/// Digits of a phone number when it has 10 to 15 of them (E.164 without `+`), else `None`.
pub fn phone_digits(raw: &str) -> Option<String> {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    (10..=15).contains(&digits.len()).then_some(digits)
}

/// Compares two secrets in time independent of where they differ (and of their lengths).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let (da, db) = (Sha256::digest(a), Sha256::digest(b));
    da.iter().zip(db.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Text shown for a file sent without a caption.
pub(crate) fn file_placeholder(kind: AttachmentKind, file_name: Option<&str>) -> String {
    let label = match kind {
        AttachmentKind::Image => "Фото",
        AttachmentKind::Video => "Видео",
        AttachmentKind::Audio => "Аудио",
        AttachmentKind::Voice => "Голосовое сообщение",
        AttachmentKind::Document => "Документ",
    };
    match file_name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(name) => format!("[{label}: {name}]"),
        None => format!("[{label}]"),
    }
}

/// Readable text of a shared contact card.
pub(crate) fn render_contact(name: Option<&str>, phones: &[String]) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) {
        parts.push(name.to_string());
    }
    parts.extend(phones.iter().map(|p| p.trim()).filter(|p| !p.is_empty()).map(String::from));
    if parts.is_empty() { "Контакт".to_string() } else { format!("Контакт: {}", parts.join(", ")) }
}

/// Readable text of a shared location.
pub(crate) fn render_location(name: Option<&str>, address: Option<&str>, lat: f64, lon: f64) -> String {
    let words: Vec<&str> = [name, address].into_iter().flatten().map(str::trim).filter(|s| !s.is_empty()).collect();
    if words.is_empty() {
        format!("Геопозиция: {lat:.6}, {lon:.6}")
    } else {
        format!("Геопозиция: {} ({lat:.6}, {lon:.6})", words.join(", "))
    }
}

/// Phone numbers of a vCard's `TEL` lines (the value after the last `:`).
pub(crate) fn vcard_phones(vcard: &str) -> Vec<String> {
    vcard
        .lines()
        .filter_map(|line| {
            // `TEL`, `TEL;type=CELL`, or grouped as WhatsApp writes them: `item1.TEL;waid=…:+7 …`.
            // (A card may also leave out the colon and the value: `item1.TEL;waid=7920…`.)
            let line = line.trim();
            let property = line.split_once(':').map_or(line, |(p, _)| p);
            let mut parts = property.split(';');
            let name = parts.next()?.rsplit('.').next()?;
            if !name.eq_ignore_ascii_case("TEL") {
                return None;
            }
            let value = line.split_once(':').map(|(_, v)| v.trim()).unwrap_or_default();
            let value = value.get(..4).filter(|p| p.eq_ignore_ascii_case("tel:")).map_or(value, |_| value[4..].trim());
            if value.chars().filter(char::is_ascii_digit).count() >= 3 {
                return Some(value.to_string());
            }
            // Only the WhatsApp id is given: it is the number.
            parts.find_map(|p| {
                let (k, v) = p.split_once('=')?;
                (k.trim().eq_ignore_ascii_case("waid") && !v.trim().is_empty()).then(|| v.trim().to_string())
            })
        })
        .collect()
}

/// The value at `path` inside `v`.
pub(crate) fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, key| cur.get(key))
}

/// The string at `path`, trimmed, when it is a non-empty string.
pub(crate) fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(v, path).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

/// An id at `path` given either as a string or as a number.
pub(crate) fn id_at(v: &Value, path: &[&str]) -> Option<String> {
    match at(v, path)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A Unix timestamp in seconds at `path`, given as a number or a string of digits.
pub(crate) fn time_at(v: &Value, path: &[&str]) -> Option<DateTime<Utc>> {
    let secs = match at(v, path)? {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    DateTime::from_timestamp(secs, 0)
}

/// Classifies a failure to get an answer at all: always transient.
/// A failed connection never reached the provider (transient); any failure after the connection
/// was made (no answer in time, a broken answer) may have been acted on (unconfirmed).
pub(crate) fn transport_error(err: reqwest::Error, timeout: Duration) -> SendError {
    if err.is_connect() {
        return SendError::transient("could not connect to the provider", None);
    }
    let reason = if err.is_timeout() {
        format!("no answer within {}s", timeout.as_secs_f32())
    } else {
        // Without the URL: its path may carry a token.
        format!("network error: {}", err.without_url())
    };
    SendError::Unconfirmed { reason }
}

/// The `Retry-After` header as a duration (seconds or an HTTP date).
pub(crate) fn retry_after_header(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&Utc);
    (when - Utc::now()).to_std().ok()
}

/// A short single-line excerpt of a provider's answer for error reasons.
pub(crate) fn excerpt(body: &str) -> String {
    let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > REASON_MAX_CHARS {
        let cut: String = one_line.chars().take(REASON_MAX_CHARS).collect();
        format!("{cut}…")
    } else {
        one_line
    }
}

/// A provider's answer: status, headers and body text.
pub(crate) struct Answer {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

/// Sends a request with `timeout` and reads the whole answer; transport failures are transient.
pub(crate) async fn exchange(request: reqwest::RequestBuilder, timeout: Duration) -> Result<Answer, SendError> {
    let response = request.timeout(timeout).send().await.map_err(|e| transport_error(e, timeout))?;
    let status = response.status();
    let headers = response.headers().clone();
    let mut response = response;
    // Read at most MAX_PROVIDER_BODY: a provider (or whatever answers at its address) cannot make a
    // worker hold an unbounded answer in memory. A cut answer fails to parse like any bad one.
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| transport_error(e, timeout))? {
        let room = MAX_PROVIDER_BODY - bytes.len();
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if chunk.len() >= room {
            tracing::warn!(limit = MAX_PROVIDER_BODY, "provider answer cut at the size limit");
            break;
        }
    }
    let body = String::from_utf8_lossy(&bytes).into_owned();
    Ok(Answer { status, headers, body })
}

/// A file sent to a customer: a stored file's bytes with the name and caption it goes with.
#[derive(Debug, Clone)]
pub struct OutgoingFile<'a> {
    pub bytes: bytes::Bytes,
    pub file_name: &'a str,
    pub mime_type: &'a str,
    /// The reply's text; may be empty.
    pub caption: &'a str,
    /// Sent as a photo (shown inline) rather than as a document.
    pub photo: bool,
}

/// A `multipart/form-data` body: text `fields`, then the file as `file_field`. Returns the
/// content type (with its boundary) and the body.
pub(crate) fn multipart(fields: &[(&str, &str)], file_field: &str, file: &OutgoingFile<'_>) -> (String, Vec<u8>) {
    let boundary = format!("aisales{}", uuid::Uuid::new_v4().simple());
    let mut body = Vec::with_capacity(file.bytes.len() + 512);
    // Names cannot break out of their quotes.
    let clean = |s: &str| s.replace(['"', '\r', '\n'], "_");
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{file_field}\"; filename=\"{}\"\r\nContent-Type: {}\r\n\r\n",
            clean(file.file_name),
            clean(file.mime_type)
        )
        .as_bytes(),
    );
    body.extend_from_slice(&file.bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Largest provider answer read (1 MiB; their JSON answers are a few kilobytes).
pub(crate) const MAX_PROVIDER_BODY: usize = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_huge_provider_answer_is_read_only_up_to_the_limit() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "x".repeat(8 << 20) }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let request = reqwest::Client::new().get(format!("http://{addr}/"));
        let answer = exchange(request, Duration::from_secs(10)).await.ok().unwrap();
        assert_eq!(answer.body.len(), MAX_PROVIDER_BODY);
    }

    #[test]
    fn channel_kind_names() {
        for kind in ChannelKind::ALL {
            assert_eq!(kind.as_str().parse::<ChannelKind>(), Ok(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), Value::String(kind.as_str().into()));
            assert_eq!(kind.to_string(), kind.as_str());
        }
        assert_eq!(ChannelKind::Whatsapp.as_str(), "whatsapp");
        assert_eq!(ChannelKind::GreenApi.as_str(), "green_api");
        assert!("max".parse::<ChannelKind>().is_err());
    }

    #[test]
    fn notifications_serialize_with_a_type_tag() {
        let n = Notification::StateChanged { state: "authorized".into() };
        assert_eq!(
            serde_json::to_value(&n).unwrap(),
            serde_json::json!({"type": "state_changed", "state": "authorized"})
        );
        let s = DeliveryState::Failed { reason: "x".into() };
        assert_eq!(serde_json::to_value(&s).unwrap(), serde_json::json!({"state": "failed", "reason": "x"}));
    }

    #[test]
    fn phone_digits_accepts_common_spellings() {
        assert_eq!(phone_digits("+7 (999) 123-45-67").as_deref(), Some("79991234567"));
        assert_eq!(phone_digits("79991234567@c.us").as_deref(), Some("79991234567"));
        assert_eq!(phone_digits("41837581"), None);
        assert_eq!(phone_digits("1234567890123456"), None);
    }

    #[test]
    fn helpers() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert_eq!(
            vcard_phones("BEGIN:VCARD\nTEL;type=CELL;waid=7900:+7 900\ntel:123\nTEL;VALUE=uri:tel:+7901\nEND:VCARD"),
            vec!["+7 900", "123", "+7901"]
        );
        assert_eq!(
            vcard_phones(
                "BEGIN:VCARD\nitem1.TEL;waid=79001234569:+7 900 123-45-69\nitem2.TEL;waid=79001234570:\nTELEX:1\nEND:VCARD"
            ),
            vec!["+7 900 123-45-69", "79001234570"]
        );
        assert_eq!(excerpt("a\n  b\tc"), "a b c");
        assert_eq!(excerpt(&"я".repeat(400)).chars().count(), REASON_MAX_CHARS + 1);
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after_header(&h), Some(Duration::from_secs(7)));
        h.insert(reqwest::header::RETRY_AFTER, "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after_header(&h), None, "a date in the past gives no wait");
        assert_eq!(file_placeholder(AttachmentKind::Image, None), "[Фото]");
        assert_eq!(render_contact(None, &[]), "Контакт");
    }
}
