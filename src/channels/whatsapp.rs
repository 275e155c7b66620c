//! A WhatsApp Business number through Meta's Cloud API: webhook parsing, `X-Hub-Signature-256`
//! and verification-challenge checks, and `POST /{phone-number-id}/messages`.
//!
//! One webhook body may carry several messages and statuses (several entries, changes, messages
//! and statuses), so [`parse`] returns a list of notifications.

use std::time::Duration;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{
    Attachment, AttachmentKind, DEFAULT_TIMEOUT, DeliveryState, DeliveryStatus, InboundMessage, MessageKind,
    Notification, OutgoingFile, ParseError, SendError, SentMessage, WebhookAuthError, at, constant_time_eq, excerpt,
    exchange, file_placeholder, id_at, multipart, phone_digits, render_contact, render_location, retry_after_header,
    str_at, time_at,
};
use crate::infra::redact::mask_phone;

/// Message types that are known and deliberately not stored.
const IGNORED_TYPES: &[&str] =
    &["reaction", "sticker", "system", "request_welcome", "ephemeral", "unsupported", "revoke"];

/// Graph API error codes worth retrying: throttling, pair rate limits and temporary outages.
const TRANSIENT_CODES: &[u64] = &[1, 2, 4, 17, 32, 341, 613, 80007, 130429, 131000, 131016, 131056, 133004, 133005];

/// Checks `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body keyed with the app secret>`.
/// The comparison is constant-time.
pub fn verify_signature(app_secret: &[u8], raw_body: &[u8], header: Option<&str>) -> Result<(), WebhookAuthError> {
    if app_secret.is_empty() {
        return Err(WebhookAuthError::NotConfigured);
    }
    let header = header.map(str::trim).filter(|h| !h.is_empty()).ok_or(WebhookAuthError::Missing)?;
    let hex_sig = header.strip_prefix("sha256=").ok_or(WebhookAuthError::Malformed)?;
    let sig = hex::decode(hex_sig).map_err(|_| WebhookAuthError::Malformed)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret).map_err(|_| WebhookAuthError::NotConfigured)?;
    mac.update(raw_body);
    mac.verify_slice(&sig).map_err(|_| WebhookAuthError::Mismatch)
}

/// The `X-Hub-Signature-256` value Meta would send for `raw_body`.
pub fn signature_header(app_secret: &[u8], raw_body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret).expect("HMAC accepts keys of any length");
    mac.update(raw_body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Answers Meta's verification request `GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`:
/// the challenge to echo back when the mode is `subscribe` and the token matches.
pub fn verify_challenge(
    mode: Option<&str>,
    token: Option<&str>,
    challenge: Option<&str>,
    expected_token: &str,
) -> Result<String, WebhookAuthError> {
    if expected_token.is_empty() {
        return Err(WebhookAuthError::NotConfigured);
    }
    if mode != Some("subscribe") {
        return Err(WebhookAuthError::Malformed);
    }
    let token = token.filter(|t| !t.is_empty()).ok_or(WebhookAuthError::Missing)?;
    if !constant_time_eq(token.as_bytes(), expected_token.as_bytes()) {
        return Err(WebhookAuthError::Mismatch);
    }
    challenge.filter(|c| !c.is_empty()).map(String::from).ok_or(WebhookAuthError::Malformed)
}

/// Parses a Cloud API webhook body into notifications, in this order: one
/// [`Notification::Messages`] with every kept message, one [`Notification::Statuses`] with every
/// status, then an `Ignored` or `Unknown` for each message, status or change that is not kept.
/// Never returns an empty list.
pub fn parse(body: &[u8]) -> Result<Vec<Notification>, ParseError> {
    let mut messages = Vec::new();
    let mut statuses = Vec::new();
    let mut others = Vec::new();
    for number in parse_routed(body)? {
        for n in number.notifications {
            match n {
                Notification::Messages(m) => messages.extend(m),
                Notification::Statuses(s) => statuses.extend(s),
                Notification::Ignored { reason } if reason == NOTHING => {}
                other => others.push(other),
            }
        }
    }
    Ok(assemble(messages, statuses, others))
}

const NOTHING: &str = "no messages or statuses";

fn assemble(
    messages: Vec<InboundMessage>,
    statuses: Vec<DeliveryStatus>,
    others: Vec<Notification>,
) -> Vec<Notification> {
    let mut out = Vec::new();
    if !messages.is_empty() {
        out.push(Notification::Messages(messages));
    }
    if !statuses.is_empty() {
        out.push(Notification::Statuses(statuses));
    }
    out.extend(others);
    if out.is_empty() {
        out.push(Notification::Ignored { reason: NOTHING.into() });
    }
    out
}

/// What a webhook body carries for one business number.
#[derive(Debug)]
pub struct ForNumber {
    /// `metadata.phone_number_id` of the changes (`None` when a body leaves it out).
    pub phone_number_id: Option<String>,
    pub notifications: Vec<Notification>,
}

/// Parses a webhook body grouped by the business number each change is for: one Meta app posts
/// the changes of all its numbers to one URL, and each number is its own channel account.
pub fn parse_routed(body: &[u8]) -> Result<Vec<ForNumber>, ParseError> {
    let v: Value = serde_json::from_slice(body)?;
    if !v.is_object() {
        return Err(ParseError::NotAnObject);
    }
    let object = str_at(&v, &["object"]).ok_or(ParseError::Field("object"))?;
    if object != "whatsapp_business_account" {
        return Ok(vec![ForNumber {
            phone_number_id: None,
            notifications: vec![Notification::Unknown { kind: format!("object/{object}") }],
        }]);
    }
    let entries = at(&v, &["entry"]).and_then(Value::as_array).ok_or(ParseError::Field("entry"))?;
    type Parts = (Vec<InboundMessage>, Vec<DeliveryStatus>, Vec<Notification>);
    let mut numbers: Vec<(Option<String>, Parts)> = Vec::new();
    for entry in entries {
        let changes = at(entry, &["changes"]).and_then(Value::as_array).ok_or(ParseError::Field("entry.changes"))?;
        for change in changes {
            let field = str_at(change, &["field"]).ok_or(ParseError::Field("entry.changes.field"))?;
            let value =
                change.get("value").filter(|v| v.is_object()).ok_or(ParseError::Field("entry.changes.value"))?;
            let number = id_at(value, &["metadata", "phone_number_id"]);
            let i = match numbers.iter().position(|(n, _)| *n == number) {
                Some(i) => i,
                None => {
                    numbers.push((number, Default::default()));
                    numbers.len() - 1
                }
            };
            let (messages, statuses, others) = &mut numbers[i].1;
            if field != "messages" {
                others.push(Notification::Unknown { kind: format!("field/{field}") });
                continue;
            }
            let contacts = at(value, &["contacts"]).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            for message in at(value, &["messages"]).and_then(Value::as_array).into_iter().flatten() {
                match parse_message(message, contacts)? {
                    Ok(m) => messages.push(m),
                    Err(other) => others.push(other),
                }
            }
            for status in at(value, &["statuses"]).and_then(Value::as_array).into_iter().flatten() {
                match parse_status(status)? {
                    Ok(s) => statuses.push(s),
                    Err(other) => others.push(other),
                }
            }
            if at(value, &["errors"]).and_then(Value::as_array).is_some_and(|e| !e.is_empty()) {
                others.push(Notification::Unknown { kind: "errors".into() });
            }
        }
    }
    if numbers.is_empty() {
        numbers.push((None, Default::default()));
    }
    Ok(numbers
        .into_iter()
        .map(|(phone_number_id, (messages, statuses, others))| ForNumber {
            phone_number_id,
            notifications: assemble(messages, statuses, others),
        })
        .collect())
}

/// A customer's edit of an earlier message (`type: edit`): the edited message, read like any other
/// under the edit's own id, sender and time, as a new message naming the original (`edit_of`), as
/// Telegram edits are.
fn parse_edit(m: &Value, contacts: &[Value]) -> Result<Result<InboundMessage, Notification>, ParseError> {
    let original =
        str_at(m, &["edit", "original_message_id"]).ok_or(ParseError::Field("messages.edit.original_message_id"))?;
    let Some(Value::Object(inner)) = at(m, &["edit", "message"]) else {
        return Ok(Err(Notification::Unknown { kind: "message/edit".into() }));
    };
    if inner.get("type").and_then(Value::as_str) == Some("edit") {
        return Ok(Err(Notification::Unknown { kind: "message/edit".into() }));
    }
    let mut edited = inner.clone();
    for key in ["id", "from", "from_user_id", "user_id", "timestamp"] {
        match m.get(key) {
            Some(v) => edited.insert(key.to_string(), v.clone()),
            None => edited.remove(key),
        };
    }
    Ok(parse_message(&Value::Object(edited), contacts)?
        .map(|message| InboundMessage { edit_of: Some(original.to_string()), ..message }))
}

/// A coordinate given as a number or as a numeric string.
fn coordinate(m: &Value, field: &str) -> Option<f64> {
    let v = at(m, &["location", field])?;
    v.as_f64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok())).filter(|c: &f64| c.is_finite())
}

fn parse_message(m: &Value, contacts: &[Value]) -> Result<Result<InboundMessage, Notification>, ParseError> {
    let id = str_at(m, &["id"]).ok_or(ParseError::Field("messages.id"))?;
    // The sender: `from` is the phone number, which Meta leaves out for a user with a username;
    // the business-scoped user id (`from_user_id`, or the contact's `user_id`) is always there
    // since the username rollout.
    let phone_from = str_at(m, &["from"]);
    let contact = contacts
        .iter()
        .find(|c| phone_from.is_some() && str_at(c, &["wa_id"]) == phone_from)
        .or(contacts.first().filter(|_| contacts.len() == 1));
    let user_id = str_at(m, &["from_user_id"])
        .or_else(|| str_at(m, &["user_id"]))
        .or_else(|| contact.and_then(|c| str_at(c, &["user_id"])));
    let from = phone_from.or(user_id).ok_or(ParseError::Field("messages.from"))?;
    let sent_at = time_at(m, &["timestamp"]).ok_or(ParseError::Field("messages.timestamp"))?;
    let kind = str_at(m, &["type"]).ok_or(ParseError::Field("messages.type"))?;
    if kind == "edit" {
        return parse_edit(m, contacts);
    }
    let mut attachments = Vec::new();
    let (text, kind) = match kind {
        "text" => {
            let body =
                at(m, &["text", "body"]).and_then(Value::as_str).ok_or(ParseError::Field("messages.text.body"))?;
            (body.to_string(), MessageKind::Text)
        }
        "image" | "video" | "audio" | "document" => {
            let file = m.get(kind).filter(|f| f.is_object()).ok_or(ParseError::Field("messages.<media>"))?;
            let attachment_kind = match kind {
                "image" => AttachmentKind::Image,
                "video" => AttachmentKind::Video,
                "audio" if at(file, &["voice"]).and_then(Value::as_bool) == Some(true) => AttachmentKind::Voice,
                "audio" => AttachmentKind::Audio,
                _ => AttachmentKind::Document,
            };
            let caption = str_at(file, &["caption"]).map(String::from);
            let file_name = str_at(file, &["filename"]).map(String::from);
            let text = caption.clone().unwrap_or_else(|| file_placeholder(attachment_kind, file_name.as_deref()));
            attachments.push(Attachment {
                kind: attachment_kind,
                url: None,
                file_id: str_at(file, &["id"]).map(String::from),
                mime_type: str_at(file, &["mime_type"]).map(String::from),
                file_name,
                caption,
            });
            (text, attachment_kind.message_kind())
        }
        "location" => {
            let (name, address) = (str_at(m, &["location", "name"]), str_at(m, &["location", "address"]));
            // Coordinates that cannot be read do not cost the message: it is stored with what
            // can be read and says what could not.
            let text = match (coordinate(m, "latitude"), coordinate(m, "longitude")) {
                (Some(lat), Some(lon)) => render_location(name, address, lat, lon),
                _ => {
                    let words: Vec<&str> =
                        [name, address].into_iter().flatten().map(str::trim).filter(|s| !s.is_empty()).collect();
                    let place = if words.is_empty() { String::new() } else { format!("{} ", words.join(", ")) };
                    format!("Геопозиция: {place}(координаты не прочитаны)")
                }
            };
            (text, MessageKind::Location)
        }
        "contacts" => {
            let cards = at(m, &["contacts"]).and_then(Value::as_array).ok_or(ParseError::Field("messages.contacts"))?;
            let text = cards
                .iter()
                .map(|card| {
                    let phones: Vec<String> = at(card, &["phones"])
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|p| str_at(p, &["phone"]).map(String::from))
                        .collect();
                    render_contact(str_at(card, &["name", "formatted_name"]), &phones)
                })
                .collect::<Vec<_>>()
                .join("\n");
            (text, MessageKind::Contact)
        }
        "button" => {
            let title = str_at(m, &["button", "text"]).or_else(|| str_at(m, &["button", "payload"]));
            (title.ok_or(ParseError::Field("messages.button.text"))?.to_string(), MessageKind::Button)
        }
        "interactive" => {
            let title = [&["interactive", "button_reply", "title"][..], &["interactive", "list_reply", "title"]]
                .iter()
                .find_map(|path| str_at(m, path));
            match title {
                Some(title) => (title.to_string(), MessageKind::Button),
                None => return Ok(Err(Notification::Unknown { kind: "message/interactive".into() })),
            }
        }
        t if IGNORED_TYPES.contains(&t) => return Ok(Err(Notification::Ignored { reason: format!("message/{t}") })),
        t => return Ok(Err(Notification::Unknown { kind: format!("message/{t}") })),
    };
    let text = text.trim().to_string();
    if text.is_empty() && attachments.is_empty() {
        return Ok(Err(Notification::Ignored { reason: "empty message".into() }));
    }
    let sender_name = contact.and_then(|c| str_at(c, &["profile", "name"])).map(String::from);
    Ok(Ok(InboundMessage {
        provider_message_id: id.to_string(),
        chat_id: from.to_string(),
        sender_id: from.to_string(),
        sender_name,
        phone: phone_from.and_then(phone_digits),
        sender_alias: user_id.filter(|u| phone_from.is_some() && Some(*u) != phone_from).map(String::from),
        text,
        attachments,
        sent_at,
        kind,
        reply_to: str_at(m, &["context", "id"]).map(String::from),
        edit_of: None,
    }))
}

fn parse_status(s: &Value) -> Result<Result<DeliveryStatus, Notification>, ParseError> {
    let id = str_at(s, &["id"]).ok_or(ParseError::Field("statuses.id"))?;
    let at_time = time_at(s, &["timestamp"]).ok_or(ParseError::Field("statuses.timestamp"))?;
    let raw = str_at(s, &["status"]).ok_or(ParseError::Field("statuses.status"))?;
    let status = match raw {
        "sent" => DeliveryState::Sent,
        "delivered" => DeliveryState::Delivered,
        // `played`: a voice message was listened to, which is more than read.
        "read" | "played" => DeliveryState::Read,
        "failed" => DeliveryState::Failed { reason: status_errors(s) },
        other => return Ok(Err(Notification::Unknown { kind: format!("status/{other}") })),
    };
    Ok(Ok(DeliveryStatus {
        provider_message_id: id.to_string(),
        chat_id: str_at(s, &["recipient_id"]).map(String::from),
        status,
        at: at_time,
    }))
}

/// `"131047 Re-engagement message: Message failed to send because more than 24 hours have passed…"`.
fn status_errors(s: &Value) -> String {
    let reasons: Vec<String> = at(s, &["errors"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| {
            let code = id_at(e, &["code"]).unwrap_or_default();
            let title = str_at(e, &["title"]).or_else(|| str_at(e, &["message"])).unwrap_or_default();
            match str_at(e, &["error_data", "details"]) {
                Some(details) if details != title => format!("{code} {title}: {details}"),
                _ => format!("{code} {title}"),
            }
            .trim()
            .to_string()
        })
        .collect();
    if reasons.is_empty() { "failed".to_string() } else { reasons.join("; ") }
}

/// The Cloud API client.
#[derive(Debug, Clone)]
pub struct WhatsAppClient {
    http: reqwest::Client,
    base_url: String,
    timeout: Duration,
}

impl WhatsAppClient {
    /// A client for the Graph API at `base_url`, version included (`https://graph.facebook.com/v21.0`).
    pub fn new(http: reqwest::Client, base_url: impl Into<String>) -> Self {
        WhatsAppClient { http, base_url: base_url.into(), timeout: DEFAULT_TIMEOUT }
    }

    /// The same client with another request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends a text message (no link preview) to `to` (digits with country code). Returns the wamid.
    /// Free-form text is only delivered within 24 hours of the customer's last message; outside
    /// that window Meta reports error 131047 in a `failed` status.
    pub async fn send_text(
        &self,
        access_token: &SecretString,
        phone_number_id: &str,
        to: &str,
        text: &str,
    ) -> Result<SentMessage, SendError> {
        let body = json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "type": "text",
            "text": {"preview_url": false, "body": text},
        });
        self.post_message(access_token, phone_number_id, to, body).await
    }

    /// Sends a file: uploads it (`POST /{phone_number_id}/media`, multipart), then sends an
    /// `image` (a photo) or a `document` message naming the uploaded media id, with the caption.
    /// A failed upload sends nothing; an upload that may have gone through is simply repeated
    /// (an unused media id costs nothing and expires).
    pub async fn send_file(
        &self,
        access_token: &SecretString,
        phone_number_id: &str,
        to: &str,
        file: &OutgoingFile<'_>,
    ) -> Result<SentMessage, SendError> {
        let base = self.base_url.trim_end_matches('/');
        let (content_type, body) =
            multipart(&[("messaging_product", "whatsapp"), ("type", file.mime_type)], "file", file);
        let upload = self
            .http
            .post(format!("{base}/{}/media", phone_number_id.trim()))
            .bearer_auth(access_token.expose_secret())
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        let answer = match exchange(upload, self.timeout.max(std::time::Duration::from_secs(60))).await {
            // Nothing is sent to the customer by an upload: trying again is safe.
            Err(SendError::Unconfirmed { reason }) => return Err(SendError::transient(reason, None)),
            other => other?,
        };
        if !answer.status.is_success() {
            let error = classify(answer.status.as_u16(), &answer.headers, &answer.body);
            tracing::warn!(op = "media", error = %error, "WhatsApp upload failed");
            return Err(match error {
                SendError::Unconfirmed { reason } => SendError::transient(reason, None),
                e => e,
            });
        }
        let value: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
        let media_id = str_at(&value, &["id"])
            .ok_or_else(|| SendError::permanent("WhatsApp accepted the upload but returned no media id"))?
            .to_string();
        let kind = if file.photo { "image" } else { "document" };
        let mut object = json!({"id": media_id});
        if !file.caption.is_empty() {
            object["caption"] = json!(file.caption);
        }
        if !file.photo {
            object["filename"] = json!(file.file_name);
        }
        let mut body = json!({"messaging_product": "whatsapp", "recipient_type": "individual", "type": kind});
        body[kind] = object;
        self.post_message(access_token, phone_number_id, to, body).await
    }

    /// `POST /{phone_number_id}/messages` with `body` addressed to `to`: a customer known only by the
    /// business-scoped user id (`CC.digits`) goes in `recipient`, everyone else by phone number in
    /// `to`. Returns the wamid.
    async fn post_message(
        &self,
        access_token: &SecretString,
        phone_number_id: &str,
        to: &str,
        mut body: Value,
    ) -> Result<SentMessage, SendError> {
        let to = match phone_digits(to) {
            Some(phone) => {
                body["to"] = json!(phone);
                phone
            }
            None if is_user_id(to) => {
                body["recipient"] = json!(to.trim());
                to.trim().to_string()
            }
            None => return Err(SendError::permanent("invalid recipient phone number")),
        };
        let url = format!("{}/{}/messages", self.base_url.trim_end_matches('/'), phone_number_id.trim());
        let request = self.http.post(url).bearer_auth(access_token.expose_secret()).json(&body);
        let answer = exchange(request, self.timeout).await?;
        if answer.status.is_success() {
            let value: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
            let id = at(&value, &["messages"]).and_then(Value::as_array).and_then(|m| m.first());
            return match id.and_then(|m| str_at(m, &["id"])) {
                Some(id) => Ok(SentMessage { provider_message_id: id.to_string() }),
                None => Err(SendError::permanent("WhatsApp accepted the message but returned no message id")),
            };
        }
        let error = classify(answer.status.as_u16(), &answer.headers, &answer.body);
        tracing::warn!(op = "messages", to = %mask_phone(&to), error = %error, "WhatsApp send failed");
        Err(error)
    }
}

/// A WhatsApp business-scoped user id: a two-letter country code, a dot, and up to 128 letters and
/// digits (`BR.1502576394655843`; a parent id has `ENT.` after the country: `US.ENT.1181…`).
pub fn is_user_id(s: &str) -> bool {
    let s = s.trim();
    let Some((country, rest)) = s.split_once('.') else { return false };
    let rest = rest.strip_prefix("ENT.").unwrap_or(rest);
    country.len() == 2
        && country.chars().all(|c| c.is_ascii_uppercase())
        && !rest.is_empty()
        && rest.len() <= 128
        && rest.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Classifies a Graph API error answer `{"error":{"message","type","code","error_subcode",
/// "error_data":{"details"},"fbtrace_id"}}`: HTTP 429 and 5xx and the throttling / temporary
/// codes (4, 80007, 130429, 131000, 131016, 131056, 133004, …) are transient; everything else
/// (190 expired token, 100 invalid parameter, 131030 recipient not allowed, …) is permanent.
pub(crate) fn classify(status: u16, headers: &reqwest::header::HeaderMap, body: &str) -> SendError {
    let value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let error = value.get("error").unwrap_or(&Value::Null);
    let code = at(error, &["code"]).and_then(Value::as_u64);
    let message = str_at(error, &["message"]).map_or_else(|| excerpt(body), String::from);
    let details = str_at(error, &["error_data", "details"]).filter(|d| !message.contains(d));
    let mut reason = match code {
        Some(code) => format!("WhatsApp {status} (#{code}): {message}"),
        None if message.is_empty() => format!("WhatsApp {status}"),
        None => format!("WhatsApp {status}: {message}"),
    };
    if let Some(details) = details {
        reason = format!("{reason} — {details}");
    }
    let transient = status == 429 || status >= 500 || code.is_some_and(|c| TRANSIENT_CODES.contains(&c));
    if transient { SendError::transient(reason, retry_after_header(headers)) } else { SendError::permanent(reason) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(value: Value) -> Value {
        json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}]
        })
    }

    fn meta() -> Value {
        json!({"display_phone_number": "15550783881", "phone_number_id": "106540352242922"})
    }

    fn text_message(id: &str, from: &str, text: &str) -> Value {
        json!({"from": from, "id": id, "timestamp": "1714650000", "type": "text", "text": {"body": text}})
    }

    fn parse_json(v: Value) -> Vec<Notification> {
        parse(v.to_string().as_bytes()).expect("parses")
    }

    fn messages(n: &[Notification]) -> &[InboundMessage] {
        n.iter()
            .find_map(|n| match n {
                Notification::Messages(m) => Some(m.as_slice()),
                _ => None,
            })
            .expect("messages")
    }

    fn one(value: Value) -> InboundMessage {
        let n = parse_json(body(value));
        let m = messages(&n);
        assert_eq!(m.len(), 1, "{n:?}");
        m[0].clone()
    }

    #[test]
    fn text_message_with_profile_name() {
        let m = one(json!({
            "messaging_product": "whatsapp",
            "metadata": meta(),
            "contacts": [{"profile": {"name": "Ivan"}, "wa_id": "79001234567"}],
            "messages": [text_message("wamid.HBgLNzkwMDEyMzQ1NjcVAgASGBQzQTdCRjY5", "79001234567", "Нужна АКПП")]
        }));
        assert_eq!(m.provider_message_id, "wamid.HBgLNzkwMDEyMzQ1NjcVAgASGBQzQTdCRjY5");
        assert_eq!(m.chat_id, "79001234567");
        assert_eq!(m.sender_name.as_deref(), Some("Ivan"));
        assert_eq!(m.phone.as_deref(), Some("79001234567"));
        assert_eq!(m.text, "Нужна АКПП");
        assert_eq!(m.sent_at.timestamp(), 1714650000);
    }

    #[test]
    fn several_messages_and_statuses_in_one_body() {
        let n = parse_json(json!({
            "object": "whatsapp_business_account",
            "entry": [
                {"id": "1", "changes": [{"field": "messages", "value": {
                    "messaging_product": "whatsapp", "metadata": meta(),
                    "contacts": [{"profile": {"name": "A"}, "wa_id": "79000000001"},
                                 {"profile": {"name": "B"}, "wa_id": "79000000002"}],
                    "messages": [text_message("wamid.1", "79000000001", "one"), text_message("wamid.2", "79000000002", "two")],
                    "statuses": [{"id": "wamid.out1", "status": "delivered", "timestamp": "1714650001",
                                  "recipient_id": "79000000003"}]
                }}]},
                {"id": "2", "changes": [{"field": "messages", "value": {
                    "messaging_product": "whatsapp", "metadata": meta(),
                    "statuses": [{"id": "wamid.out2", "status": "read", "timestamp": 1714650002, "recipient_id": "79000000004"}]
                }}]}
            ]
        }));
        assert_eq!(n.len(), 2, "{n:?}");
        let m = messages(&n);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].sender_name.as_deref(), Some("A"));
        assert_eq!(m[1].sender_name.as_deref(), Some("B"));
        let Notification::Statuses(s) = &n[1] else { panic!("{n:?}") };
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].status, DeliveryState::Delivered);
        assert_eq!(s[0].chat_id.as_deref(), Some("79000000003"));
        assert_eq!(s[1].status, DeliveryState::Read);
        assert_eq!(s[1].at.timestamp(), 1714650002);
    }

    #[test]
    fn failed_status_carries_the_error() {
        let n = parse_json(body(json!({
            "messaging_product": "whatsapp", "metadata": meta(),
            "statuses": [{
                "id": "wamid.out", "status": "failed", "timestamp": "1714650003", "recipient_id": "79000000001",
                "errors": [{"code": 131047, "title": "Re-engagement message",
                            "message": "Re-engagement message",
                            "error_data": {"details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."},
                            "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}]
            }, {"id": "wamid.out3", "status": "sent", "timestamp": "1714650004", "recipient_id": "79000000001"}]
        })));
        let Notification::Statuses(s) = &n[0] else { panic!("{n:?}") };
        let DeliveryState::Failed { reason } = &s[0].status else { panic!("{s:?}") };
        assert!(reason.starts_with("131047 Re-engagement message: Message failed to send"), "{reason}");
        assert_eq!(s[1].status, DeliveryState::Sent);
    }

    #[test]
    fn media_captions_contacts_locations_buttons() {
        let m = one(json!({"metadata": meta(), "messages": [{
            "from": "79001234567", "id": "wamid.img", "timestamp": "1714650000", "type": "image",
            "image": {"caption": "Шильдик", "mime_type": "image/jpeg", "sha256": "abc", "id": "1234567890"}
        }]}));
        assert_eq!((m.kind, m.text.as_str()), (MessageKind::Image, "Шильдик"));
        assert_eq!(m.attachments[0].file_id.as_deref(), Some("1234567890"));

        let m = one(json!({"metadata": meta(), "messages": [{
            "from": "79001234567", "id": "wamid.doc", "timestamp": "1714650000", "type": "document",
            "document": {"filename": "sts.pdf", "mime_type": "application/pdf", "sha256": "x", "id": "55"}
        }]}));
        assert_eq!(m.text, "[Документ: sts.pdf]");

        let m = one(json!({"metadata": meta(), "messages": [{
            "from": "79001234567", "id": "wamid.voice", "timestamp": "1714650000", "type": "audio",
            "audio": {"mime_type": "audio/ogg; codecs=opus", "sha256": "x", "id": "56", "voice": true}
        }]}));
        assert_eq!(m.kind, MessageKind::Voice);

        let m = one(json!({"metadata": meta(), "messages": [{
            "from": "79001234567", "id": "wamid.c", "timestamp": "1714650000", "type": "contacts",
            "contacts": [{"name": {"formatted_name": "Пётр Сервис", "first_name": "Пётр"},
                          "phones": [{"phone": "+7 900 765-43-21", "wa_id": "79007654321", "type": "CELL"}]}]
        }]}));
        assert_eq!(m.text, "Контакт: Пётр Сервис, +7 900 765-43-21");

        let m = one(json!({"metadata": meta(), "messages": [{
            "from": "79001234567", "id": "wamid.l", "timestamp": "1714650000", "type": "location",
            "location": {"latitude": 55.751244, "longitude": 37.618423, "name": "Склад", "address": "Москва"}
        }]}));
        assert_eq!(m.text, "Геопозиция: Склад, Москва (55.751244, 37.618423)");

        let m = one(json!({"metadata": meta(), "messages": [{
            "from": "79001234567", "id": "wamid.b", "timestamp": "1714650000", "type": "button",
            "context": {"from": "15550783881", "id": "wamid.template"},
            "button": {"payload": "YES", "text": "Да, интересно"}
        }]}));
        assert_eq!((m.kind, m.text.as_str()), (MessageKind::Button, "Да, интересно"));
        assert_eq!(m.reply_to.as_deref(), Some("wamid.template"));

        let m = one(json!({"metadata": meta(), "messages": [{
            "from": "79001234567", "id": "wamid.i", "timestamp": "1714650000", "type": "interactive",
            "interactive": {"type": "list_reply", "list_reply": {"id": "akpp", "title": "АКПП", "description": "автомат"}}
        }]}));
        assert_eq!(m.text, "АКПП");
    }

    #[test]
    fn reactions_and_stickers_are_ignored_unknown_types_dead_lettered() {
        let n = parse_json(body(json!({"metadata": meta(), "messages": [
            {"from": "79001234567", "id": "wamid.r", "timestamp": "1714650000", "type": "reaction",
             "reaction": {"message_id": "wamid.x", "emoji": "👍"}},
            {"from": "79001234567", "id": "wamid.s", "timestamp": "1714650000", "type": "sticker",
             "sticker": {"mime_type": "image/webp", "id": "9", "animated": false}},
            {"from": "79001234567", "id": "wamid.o", "timestamp": "1714650000", "type": "order", "order": {}}
        ]})));
        assert_eq!(
            n,
            vec![
                Notification::Ignored { reason: "message/reaction".into() },
                Notification::Ignored { reason: "message/sticker".into() },
                Notification::Unknown { kind: "message/order".into() },
            ]
        );
        let n = parse_json(json!({"object": "page", "entry": []}));
        assert_eq!(n, vec![Notification::Unknown { kind: "object/page".into() }]);
        let n = parse_json(json!({"object": "whatsapp_business_account", "entry": [
            {"id": "1", "changes": [{"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}}]}
        ]}));
        assert_eq!(n, vec![Notification::Unknown { kind: "field/account_update".into() }]);
    }

    #[test]
    fn garbage_and_missing_fields_are_parse_errors() {
        assert!(matches!(parse(b"<xml/>"), Err(ParseError::Json(_))));
        assert!(matches!(parse(b"[]"), Err(ParseError::NotAnObject)));
        assert!(matches!(parse(br#"{"entry":[]}"#), Err(ParseError::Field("object"))));
        assert!(matches!(parse(br#"{"object":"whatsapp_business_account"}"#), Err(ParseError::Field("entry"))));
        let mut m = text_message("wamid.1", "79000000001", "x");
        m.as_object_mut().unwrap().remove("from");
        let b = body(json!({"metadata": meta(), "messages": [m]}));
        assert!(matches!(parse(b.to_string().as_bytes()), Err(ParseError::Field("messages.from"))));
        let b =
            body(json!({"metadata": meta(), "messages": [{"from": "1", "id": "w", "timestamp": "1", "type": "text"}]}));
        assert!(matches!(parse(b.to_string().as_bytes()), Err(ParseError::Field("messages.text.body"))));
    }

    #[test]
    fn signature_valid_invalid_missing() {
        let secret = b"app-secret-123";
        let raw = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        let header = signature_header(secret, raw);
        assert!(header.starts_with("sha256=") && header.len() == 7 + 64);
        assert_eq!(verify_signature(secret, raw, Some(&header)), Ok(()));
        assert_eq!(verify_signature(secret, b"{\"tampered\":1}", Some(&header)), Err(WebhookAuthError::Mismatch));
        assert_eq!(verify_signature(b"other", raw, Some(&header)), Err(WebhookAuthError::Mismatch));
        assert_eq!(verify_signature(secret, raw, None), Err(WebhookAuthError::Missing));
        assert_eq!(verify_signature(secret, raw, Some("md5=abc")), Err(WebhookAuthError::Malformed));
        assert_eq!(verify_signature(secret, raw, Some("sha256=zz")), Err(WebhookAuthError::Malformed));
        assert_eq!(verify_signature(secret, raw, Some("sha256=abcd")), Err(WebhookAuthError::Mismatch));
        assert_eq!(verify_signature(b"", raw, Some(&header)), Err(WebhookAuthError::NotConfigured));
    }

    #[test]
    fn verification_challenge() {
        assert_eq!(
            verify_challenge(Some("subscribe"), Some("tok"), Some("1158201444"), "tok"),
            Ok("1158201444".into())
        );
        assert_eq!(verify_challenge(Some("subscribe"), Some("bad"), Some("1"), "tok"), Err(WebhookAuthError::Mismatch));
        assert_eq!(
            verify_challenge(Some("unsubscribe"), Some("tok"), Some("1"), "tok"),
            Err(WebhookAuthError::Malformed)
        );
        assert_eq!(verify_challenge(Some("subscribe"), None, Some("1"), "tok"), Err(WebhookAuthError::Missing));
        assert_eq!(verify_challenge(Some("subscribe"), Some("tok"), None, "tok"), Err(WebhookAuthError::Malformed));
        assert_eq!(
            verify_challenge(Some("subscribe"), Some("tok"), Some("1"), ""),
            Err(WebhookAuthError::NotConfigured)
        );
    }

    #[test]
    fn errors_are_classified() {
        let h = reqwest::header::HeaderMap::new();
        let graph = |code: u64, message: &str| {
            json!({"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbC"}})
                .to_string()
        };
        assert!(classify(400, &h, &graph(130429, "(#130429) Rate limit hit")).is_transient());
        assert!(classify(400, &h, &graph(131056, "(#131056) pair rate limit hit")).is_transient());
        assert!(classify(500, &h, &graph(131000, "Something went wrong")).is_transient());
        assert!(classify(503, &h, "Service Unavailable").is_transient());
        assert!(classify(429, &h, "").is_transient());
        let e = classify(401, &h, &graph(190, "Error validating access token: Session has expired"));
        assert_eq!(e, SendError::permanent("WhatsApp 401 (#190): Error validating access token: Session has expired"));
        let body = json!({"error": {"message": "(#131030) Recipient phone number not in allowed list", "type": "OAuthException",
            "code": 131030, "error_data": {"messaging_product": "whatsapp", "details": "Recipient phone number not in allowed list: Add recipient phone number to recipient list and try again."},
            "fbtrace_id": "A"}});
        let e = classify(400, &h, &body.to_string());
        assert!(!e.is_transient());
        assert!(e.reason().contains("Add recipient phone number"), "{e}");
    }

    #[test]
    fn a_sender_without_from_is_identified_by_the_business_scoped_user_id() {
        // Message-level `from_user_id`.
        let m = one(json!({
            "messaging_product": "whatsapp", "metadata": meta(),
            "contacts": [{"profile": {"name": "Maria", "username": "@maria"}, "user_id": "BR.1502576394655843"}],
            "messages": [{"from_user_id": "BR.1502576394655843", "id": "wamid.u1", "timestamp": "1714650000",
                          "type": "text", "text": {"body": "oi"}}]
        }));
        assert_eq!(m.chat_id, "BR.1502576394655843");
        assert_eq!(m.phone, None);
        assert_eq!(m.sender_alias, None);
        assert_eq!(m.sender_name.as_deref(), Some("Maria"));
        // Only the contact's `user_id`.
        let m = one(json!({
            "messaging_product": "whatsapp", "metadata": meta(),
            "contacts": [{"profile": {"name": "Maria"}, "user_id": "BR.1502576394655843"}],
            "messages": [{"id": "wamid.u2", "timestamp": "1714650000", "type": "text", "text": {"body": "oi"}}]
        }));
        assert_eq!(m.chat_id, "BR.1502576394655843");
        // Both: the phone is the chat, the user id its alias.
        let m = one(json!({
            "messaging_product": "whatsapp", "metadata": meta(),
            "contacts": [{"profile": {"name": "Maria"}, "wa_id": "5511999999999", "user_id": "BR.1502576394655843"}],
            "messages": [{"from": "5511999999999", "from_user_id": "BR.1502576394655843", "id": "wamid.u3",
                          "timestamp": "1714650000", "type": "text", "text": {"body": "oi"}}]
        }));
        assert_eq!(m.chat_id, "5511999999999");
        assert_eq!(m.phone.as_deref(), Some("5511999999999"));
        assert_eq!(m.sender_alias.as_deref(), Some("BR.1502576394655843"));
        // Neither: the body cannot be read.
        let v = body(json!({"messaging_product": "whatsapp", "metadata": meta(),
            "messages": [{"id": "wamid.u4", "timestamp": "1714650000", "type": "text", "text": {"body": "?"}}]}));
        assert!(matches!(parse(v.to_string().as_bytes()), Err(ParseError::Field("messages.from"))));
    }

    #[test]
    fn a_location_keeps_what_can_be_read() {
        let location = |lat: Value, lon: Value| {
            one(json!({"messaging_product": "whatsapp", "metadata": meta(),
                "messages": [{"from": "79001234567", "id": "wamid.l", "timestamp": "1714650000", "type": "location",
                              "location": {"latitude": lat, "longitude": lon, "name": "Склад"}}]}))
            .text
        };
        assert_eq!(location(json!("55.75"), json!(" 37.61 ")), "Геопозиция: Склад (55.750000, 37.610000)");
        assert_eq!(location(json!("север"), json!(37.61)), "Геопозиция: Склад (координаты не прочитаны)");
        assert_eq!(location(json!({}), Value::Null), "Геопозиция: Склад (координаты не прочитаны)");
    }

    #[test]
    fn an_edit_is_a_new_message_naming_the_original_and_a_deletion_is_ignored() {
        let edit = |inner: Value| {
            parse_json(body(json!({"messaging_product": "whatsapp", "metadata": meta(),
                "messages": [{"from": "79001234567", "id": "wamid.e2", "timestamp": "1714650100", "type": "edit",
                              "edit": {"original_message_id": "wamid.e1", "message": inner}}]})))
        };
        let n = edit(json!({"type": "text", "text": {"body": "Нужна АКПП U660E, не U760E"}, "id": "M0"}));
        let m = &messages(&n)[0];
        assert_eq!((m.provider_message_id.as_str(), m.edit_of.as_deref()), ("wamid.e2", Some("wamid.e1")));
        assert_eq!((m.chat_id.as_str(), m.text.as_str()), ("79001234567", "Нужна АКПП U660E, не U760E"));
        assert_eq!(m.sent_at.timestamp(), 1714650100);
        let n = edit(json!({"type": "image", "image": {"id": "55", "mime_type": "image/jpeg", "caption": "Шильдик"}}));
        assert_eq!(messages(&n)[0].attachments[0].file_id.as_deref(), Some("55"));
        assert!(matches!(&edit(json!("not an object"))[0], Notification::Unknown { .. }));
        let revoked = parse_json(body(json!({"messaging_product": "whatsapp", "metadata": meta(),
            "messages": [{"from": "79001234567", "id": "wamid.r", "timestamp": "1714650200", "type": "revoke",
                          "revoke": {"original_message_id": "wamid.e1"}}]})));
        assert!(matches!(&revoked[0], Notification::Ignored { .. }), "{revoked:?}");
    }

    #[test]
    fn changes_are_grouped_by_business_number() {
        let change = |number: &str, id: &str| {
            json!({"field": "messages", "value": {"messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "1", "phone_number_id": number},
                "messages": [text_message(id, "79001234567", "x")]}})
        };
        let v = json!({"object": "whatsapp_business_account", "entry": [
            {"id": "1", "changes": [change("111", "wamid.1"), change("222", "wamid.2")]},
            {"id": "2", "changes": [change("111", "wamid.3")]}
        ]});
        let numbers = parse_routed(v.to_string().as_bytes()).unwrap();
        assert_eq!(numbers.len(), 2);
        assert_eq!(numbers[0].phone_number_id.as_deref(), Some("111"));
        assert!(matches!(&numbers[0].notifications[..], [Notification::Messages(m)] if m.len() == 2));
        assert_eq!(numbers[1].phone_number_id.as_deref(), Some("222"));
        // `parse` still gives them all at once.
        assert!(matches!(&parse(v.to_string().as_bytes()).unwrap()[..], [Notification::Messages(m)] if m.len() == 3));
    }

    #[test]
    fn business_scoped_user_ids() {
        for ok in ["BR.1502576394655843", "US.ENT.11815799212886844830", "RU.abc123"] {
            assert!(is_user_id(ok), "{ok}");
        }
        for bad in ["79001234567", "br.123", "BRA.123", "BR.", "BR.12-3", "BR.ENT.", ""] {
            assert!(!is_user_id(bad), "{bad}");
        }
    }
}
