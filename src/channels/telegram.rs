//! A Telegram bot through the Bot API: `Update` parsing, the secret-token check and `sendMessage`.
//!
//! Telegram message ids are unique only within a chat, so every provider message id here is
//! `<chat id>:<message id>`, both for inbound messages and for what [`TelegramClient`] returns.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::{
    Attachment, AttachmentKind, DEFAULT_TIMEOUT, InboundMessage, MessageKind, Notification, OutgoingFile, ParseError,
    SendError, SentMessage, WebhookAuthError, at, constant_time_eq, excerpt, exchange, file_placeholder, id_at,
    multipart, phone_digits, render_contact, render_location, retry_after_header, str_at, time_at,
};

/// Update fields that carry no customer message and are deliberately not stored.
const IGNORED_UPDATES: &[&str] = &[
    "channel_post",
    "edited_channel_post",
    "business_connection",
    "deleted_business_messages",
    "message_reaction",
    "message_reaction_count",
    "inline_query",
    "chosen_inline_result",
    "callback_query",
    "shipping_query",
    "pre_checkout_query",
    "purchased_paid_media",
    "poll",
    "poll_answer",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "chat_boost",
    "removed_chat_boost",
];

/// Message contents that are known and deliberately not stored (stickers, polls, games, service
/// messages about the chat itself).
const IGNORED_CONTENT: &[&str] = &[
    "sticker",
    "poll",
    "dice",
    "game",
    "story",
    "invoice",
    "successful_payment",
    "refunded_payment",
    "paid_media",
    "new_chat_members",
    "left_chat_member",
    "new_chat_title",
    "new_chat_photo",
    "delete_chat_photo",
    "group_chat_created",
    "supergroup_chat_created",
    "channel_chat_created",
    "message_auto_delete_timer_changed",
    "migrate_to_chat_id",
    "migrate_from_chat_id",
    "pinned_message",
    "users_shared",
    "chat_shared",
    "connected_website",
    "write_access_allowed",
    "passport_data",
    "proximity_alert_triggered",
    "boost_added",
    "chat_background_set",
    "forum_topic_created",
    "forum_topic_edited",
    "forum_topic_closed",
    "forum_topic_reopened",
    "general_forum_topic_hidden",
    "general_forum_topic_unhidden",
    "giveaway_created",
    "giveaway",
    "giveaway_winners",
    "giveaway_completed",
    "video_chat_scheduled",
    "video_chat_started",
    "video_chat_ended",
    "video_chat_participants_invited",
    "web_app_data",
];

/// Checks the `X-Telegram-Bot-Api-Secret-Token` header against the `secret_token` given to
/// `setWebhook`, in constant time.
pub fn verify_secret_token(expected: &str, header: Option<&str>) -> Result<(), WebhookAuthError> {
    if expected.is_empty() {
        return Err(WebhookAuthError::NotConfigured);
    }
    let header = header.filter(|h| !h.is_empty()).ok_or(WebhookAuthError::Missing)?;
    if constant_time_eq(header.as_bytes(), expected.as_bytes()) { Ok(()) } else { Err(WebhookAuthError::Mismatch) }
}

/// Parses a Telegram `Update`. Messages and edited messages in any chat become
/// [`Notification::Messages`]; an edit is a new message whose `edit_of` names the original.
pub fn parse(body: &[u8]) -> Result<Notification, ParseError> {
    let v: Value = serde_json::from_slice(body)?;
    let obj = v.as_object().ok_or(ParseError::NotAnObject)?;
    if !obj.get("update_id").is_some_and(Value::is_i64) {
        return Err(ParseError::Field("update_id"));
    }
    for (field, edited) in [("message", false), ("edited_message", true), ("business_message", false)] {
        if let Some(message) = obj.get(field) {
            return parse_message(message, edited);
        }
    }
    if let Some(field) = IGNORED_UPDATES.iter().find(|f| obj.contains_key(**f)) {
        return Ok(Notification::Ignored { reason: (*field).to_string() });
    }
    let kind = obj.keys().find(|k| *k != "update_id").map_or("empty update", String::as_str);
    Ok(Notification::Unknown { kind: kind.to_string() })
}

fn parse_message(m: &Value, edited: bool) -> Result<Notification, ParseError> {
    if !m.is_object() {
        return Err(ParseError::Field("message"));
    }
    let chat_id = id_at(m, &["chat", "id"]).ok_or(ParseError::Field("message.chat.id"))?;
    let message_id = id_at(m, &["message_id"]).ok_or(ParseError::Field("message.message_id"))?;
    let date = time_at(m, &["date"]).ok_or(ParseError::Field("message.date"))?;
    let sender_id = id_at(m, &["from", "id"]).unwrap_or_else(|| chat_id.clone());
    let sender_name = full_name(m.get("from").unwrap_or(&Value::Null)).or_else(|| chat_title(m));

    let caption = str_at(m, &["caption"]).map(String::from);
    let mut phone = None;
    let (text, kind, attachments) = if let Some(text) = at(m, &["text"]).and_then(Value::as_str) {
        (text.to_string(), MessageKind::Text, vec![])
    } else if let Some((attachment, kind)) = media(m, caption.clone()) {
        let text = caption.clone().unwrap_or_else(|| file_placeholder(kind, attachment.file_name.as_deref()));
        (text, kind.message_kind(), vec![attachment])
    } else if let Some(contact) = m.get("contact") {
        let name = [str_at(contact, &["first_name"]), str_at(contact, &["last_name"])]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        let number = str_at(contact, &["phone_number"]).map(String::from);
        // A contact the sender shares about themselves gives us their phone number.
        if id_at(contact, &["user_id"]).is_some_and(|id| id == sender_id) {
            phone = number.as_deref().and_then(phone_digits);
        }
        (render_contact(Some(&name), number.as_slice()), MessageKind::Contact, vec![])
    } else if let Some(location) = m.get("venue").and_then(|v| v.get("location")).or_else(|| m.get("location")) {
        let lat = at(location, &["latitude"]).and_then(Value::as_f64).ok_or(ParseError::Field("location.latitude"))?;
        let lon =
            at(location, &["longitude"]).and_then(Value::as_f64).ok_or(ParseError::Field("location.longitude"))?;
        let text = render_location(str_at(m, &["venue", "title"]), str_at(m, &["venue", "address"]), lat, lon);
        (text, MessageKind::Location, vec![])
    } else if let Some(field) = IGNORED_CONTENT.iter().find(|f| m.get(**f).is_some()) {
        return Ok(Notification::Ignored { reason: format!("message/{field}") });
    } else {
        return Ok(Notification::Unknown { kind: "message with unknown content".into() });
    };

    let text = text.trim().to_string();
    if text.is_empty() && attachments.is_empty() {
        return Ok(Notification::Ignored { reason: "empty message".into() });
    }
    let original = format!("{chat_id}:{message_id}");
    let (provider_message_id, edit_of, sent_at) = if edited {
        let edit_date = time_at(m, &["edit_date"]).unwrap_or(date);
        (format!("{original}:edit:{}", edit_date.timestamp()), Some(original), edit_date)
    } else {
        (original, None, date)
    };
    let reply_to = id_at(m, &["reply_to_message", "message_id"]).map(|id| format!("{chat_id}:{id}"));
    Ok(Notification::Messages(vec![InboundMessage {
        provider_message_id,
        chat_id,
        sender_id,
        sender_name,
        phone,
        sender_alias: None,
        text,
        attachments,
        sent_at,
        kind,
        reply_to,
        edit_of,
    }]))
}

fn full_name(user: &Value) -> Option<String> {
    let name = [str_at(user, &["first_name"]), str_at(user, &["last_name"])].into_iter().flatten().collect::<Vec<_>>();
    if name.is_empty() { str_at(user, &["username"]).map(|u| format!("@{u}")) } else { Some(name.join(" ")) }
}

fn chat_title(m: &Value) -> Option<String> {
    str_at(m, &["chat", "title"]).map(String::from)
}

/// The file of a media message. Animations come with a `document` too, so they are looked at first.
fn media(m: &Value, caption: Option<String>) -> Option<(Attachment, AttachmentKind)> {
    let attachment = |kind, file: &Value, default_mime: Option<&str>| Attachment {
        kind,
        url: None,
        file_id: str_at(file, &["file_id"]).map(String::from),
        mime_type: str_at(file, &["mime_type"]).or(default_mime).map(String::from),
        file_name: str_at(file, &["file_name"]).map(String::from),
        caption: caption.clone(),
    };
    if let Some(sizes) = m.get("photo").and_then(Value::as_array) {
        let area = |p: &&Value| {
            let dim = |k| at(p, &[k]).and_then(Value::as_u64).unwrap_or(0);
            (dim("file_size"), dim("width") * dim("height"))
        };
        let largest = sizes.iter().max_by_key(area)?;
        return Some((attachment(AttachmentKind::Image, largest, Some("image/jpeg")), AttachmentKind::Image));
    }
    let kinds = [
        ("animation", AttachmentKind::Video, None),
        ("video", AttachmentKind::Video, None),
        ("video_note", AttachmentKind::Video, Some("video/mp4")),
        ("voice", AttachmentKind::Voice, Some("audio/ogg")),
        ("audio", AttachmentKind::Audio, None),
        ("document", AttachmentKind::Document, None),
    ];
    kinds.into_iter().find_map(|(field, kind, mime)| {
        let file = m.get(field).filter(|f| f.is_object())?;
        Some((attachment(kind, file, mime), kind))
    })
}

/// The Telegram Bot API client.
#[derive(Debug, Clone)]
pub struct TelegramClient {
    http: reqwest::Client,
    base_url: String,
    timeout: Duration,
}

impl TelegramClient {
    /// A client for the Bot API at `base_url` (`https://api.telegram.org`).
    pub fn new(http: reqwest::Client, base_url: impl Into<String>) -> Self {
        TelegramClient { http, base_url: base_url.into(), timeout: DEFAULT_TIMEOUT }
    }

    /// The same client with another request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends plain text (no `parse_mode`, so `<`, `*` and `_` in replies are never misread as
    /// markup) to a numeric chat id. Returns `<chat id>:<message id>`.
    pub async fn send_message(
        &self,
        bot_token: &SecretString,
        chat_id: &str,
        text: &str,
    ) -> Result<SentMessage, SendError> {
        let chat: i64 = chat_id.trim().parse().map_err(|_| SendError::permanent("invalid chat id"))?;
        let url = format!("{}/bot{}/sendMessage", self.base_url.trim_end_matches('/'), bot_token.expose_secret());
        let body = json!({ "chat_id": chat, "text": text });
        let answer = exchange(self.http.post(url).json(&body), self.timeout).await?;
        let value: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
        if answer.status.is_success() && value.get("ok") == Some(&Value::Bool(true)) {
            let id = id_at(&value, &["result", "message_id"])
                .ok_or_else(|| SendError::permanent("Telegram accepted the message but returned no message_id"))?;
            return Ok(SentMessage { provider_message_id: format!("{chat}:{id}") });
        }
        let error = classify(answer.status.as_u16(), &answer.headers, &answer.body);
        tracing::warn!(op = "sendMessage", status = answer.status.as_u16(), error = %error, "Telegram send failed");
        Err(error)
    }

    /// Sends a file: `sendPhoto` for a photo, `sendDocument` otherwise (multipart), with the
    /// caption as plain text. Returns `<chat id>:<message id>`.
    pub async fn send_file(
        &self,
        bot_token: &SecretString,
        chat_id: &str,
        file: &OutgoingFile<'_>,
    ) -> Result<SentMessage, SendError> {
        let chat: i64 = chat_id.trim().parse().map_err(|_| SendError::permanent("invalid chat id"))?;
        let (method, field) = if file.photo { ("sendPhoto", "photo") } else { ("sendDocument", "document") };
        let url = format!("{}/bot{}/{method}", self.base_url.trim_end_matches('/'), bot_token.expose_secret());
        let chat_text = chat.to_string();
        let mut fields = vec![("chat_id", chat_text.as_str())];
        if !file.caption.is_empty() {
            fields.push(("caption", file.caption));
        }
        let (content_type, body) = multipart(&fields, field, file);
        let request = self.http.post(url).header(reqwest::header::CONTENT_TYPE, content_type).body(body);
        let answer = exchange(request, self.timeout.max(std::time::Duration::from_secs(60))).await?;
        let value: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
        if answer.status.is_success() && value.get("ok") == Some(&Value::Bool(true)) {
            let id = id_at(&value, &["result", "message_id"])
                .ok_or_else(|| SendError::permanent("Telegram accepted the file but returned no message_id"))?;
            return Ok(SentMessage { provider_message_id: format!("{chat}:{id}") });
        }
        let error = classify(answer.status.as_u16(), &answer.headers, &answer.body);
        tracing::warn!(op = method, status = answer.status.as_u16(), error = %error, "Telegram send failed");
        Err(error)
    }

    /// Sends a notice in Telegram's legacy `Markdown` to a chat given as a numeric id or
    /// `@channel` (the team's chat of the escalation bot).
    pub async fn send_notice(
        &self,
        bot_token: &SecretString,
        chat_id: &str,
        text: &str,
    ) -> Result<SentMessage, SendError> {
        let chat = chat_id.trim();
        let chat_value = match chat.parse::<i64>() {
            Ok(n) => json!(n),
            Err(_) if chat.starts_with('@') => json!(chat),
            Err(_) => return Err(SendError::permanent("invalid chat id")),
        };
        let url = format!("{}/bot{}/sendMessage", self.base_url.trim_end_matches('/'), bot_token.expose_secret());
        let body = json!({ "chat_id": chat_value, "text": text, "parse_mode": "Markdown" });
        let answer = exchange(self.http.post(url).json(&body), self.timeout).await?;
        let value: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
        if answer.status.is_success() && value.get("ok") == Some(&Value::Bool(true)) {
            let id = id_at(&value, &["result", "message_id"])
                .ok_or_else(|| SendError::permanent("Telegram accepted the message but returned no message_id"))?;
            return Ok(SentMessage { provider_message_id: format!("{chat}:{id}") });
        }
        Err(classify(answer.status.as_u16(), &answer.headers, &answer.body))
    }

    /// Points the bot's updates at `webhook_url` (`setWebhook`), with `secret_token` coming back in
    /// `X-Telegram-Bot-Api-Secret-Token` on every update. Telegram only delivers to HTTPS URLs.
    pub async fn set_webhook(
        &self,
        bot_token: &SecretString,
        webhook_url: &str,
        secret_token: &str,
    ) -> Result<(), SendError> {
        if !webhook_url.starts_with("https://") {
            return Err(SendError::permanent("Telegram delivers updates only to an https:// webhook URL"));
        }
        let url = format!("{}/bot{}/setWebhook", self.base_url.trim_end_matches('/'), bot_token.expose_secret());
        let body = json!({
            "url": webhook_url,
            "secret_token": secret_token,
            "allowed_updates": ["message", "edited_message", "business_message"],
        });
        let answer = exchange(self.http.post(url).json(&body), self.timeout).await?;
        let value: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
        if answer.status.is_success() && value.get("ok") == Some(&Value::Bool(true)) {
            return Ok(());
        }
        Err(classify(answer.status.as_u16(), &answer.headers, &answer.body))
    }
}

/// Classifies a Bot API error answer `{"ok":false,"error_code":…,"description":…,"parameters":…}`.
///
/// 429 (with `parameters.retry_after`) and 5xx are transient; 400 ("chat not found", "message is
/// too long"), 401 (token), 403 ("bot was blocked by the user") and 404 are permanent.
pub(crate) fn classify(status: u16, headers: &reqwest::header::HeaderMap, body: &str) -> SendError {
    let value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let code = at(&value, &["error_code"]).and_then(Value::as_u64).map_or(status, |c| c as u16);
    let description = str_at(&value, &["description"]).map_or_else(|| excerpt(body), String::from);
    let reason =
        if description.is_empty() { format!("Telegram {code}") } else { format!("Telegram {code}: {description}") };
    let retry_after = at(&value, &["parameters", "retry_after"])
        .and_then(Value::as_u64)
        .map(Duration::from_secs)
        .or_else(|| retry_after_header(headers));
    if let Some(new_chat) = id_at(&value, &["parameters", "migrate_to_chat_id"]) {
        return SendError::permanent(format!("{reason} (the group moved to chat {new_chat})"));
    }
    match code {
        429 | 500..=599 => SendError::transient(reason, retry_after),
        _ if retry_after.is_some() => SendError::transient(reason, retry_after),
        _ => SendError::permanent(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_json(v: Value) -> Notification {
        parse(v.to_string().as_bytes()).expect("parses")
    }

    fn one_message(n: Notification) -> InboundMessage {
        match n {
            Notification::Messages(mut m) if m.len() == 1 => m.remove(0),
            other => panic!("expected one message, got {other:?}"),
        }
    }

    fn update(message: Value) -> Value {
        let mut m = json!({
            "message_id": 42,
            "from": {"id": 5550001, "is_bot": false, "first_name": "Иван", "last_name": "Петров",
                     "username": "ivan_p", "language_code": "ru"},
            "chat": {"id": 5550001, "first_name": "Иван", "last_name": "Петров", "username": "ivan_p", "type": "private"},
            "date": 1714650000
        });
        m.as_object_mut().unwrap().extend(message.as_object().unwrap().clone());
        json!({"update_id": 900001, "message": m})
    }

    #[test]
    fn text_message() {
        let m = one_message(parse_json(update(json!({"text": "Нужна АКПП на Camry"}))));
        assert_eq!(m.provider_message_id, "5550001:42");
        assert_eq!(m.chat_id, "5550001");
        assert_eq!(m.sender_id, "5550001");
        assert_eq!(m.sender_name.as_deref(), Some("Иван Петров"));
        assert_eq!(m.text, "Нужна АКПП на Camry");
        assert_eq!(m.kind, MessageKind::Text);
        assert_eq!(m.sent_at.timestamp(), 1714650000);
        assert_eq!(m.edit_of, None);
    }

    #[test]
    fn photo_caption_is_the_text_and_the_largest_size_is_kept() {
        let m = one_message(parse_json(update(json!({
            "photo": [
                {"file_id": "small", "file_unique_id": "s", "file_size": 1200, "width": 90, "height": 67},
                {"file_id": "large", "file_unique_id": "l", "file_size": 84000, "width": 1280, "height": 960},
                {"file_id": "medium", "file_unique_id": "m", "file_size": 21000, "width": 320, "height": 240}
            ],
            "caption": "VIN на фото"
        }))));
        assert_eq!(m.text, "VIN на фото");
        assert_eq!(m.kind, MessageKind::Image);
        assert_eq!(m.attachments[0].file_id.as_deref(), Some("large"));
        assert_eq!(m.attachments[0].mime_type.as_deref(), Some("image/jpeg"));
        assert_eq!(m.attachments[0].caption.as_deref(), Some("VIN на фото"));
    }

    #[test]
    fn files_without_caption_get_a_readable_text() {
        let m = one_message(parse_json(update(json!({
            "document": {"file_id": "doc1", "file_unique_id": "d", "file_name": "sts.pdf", "mime_type": "application/pdf"}
        }))));
        assert_eq!(m.text, "[Документ: sts.pdf]");
        assert_eq!(m.attachments[0].mime_type.as_deref(), Some("application/pdf"));
        let m = one_message(parse_json(update(json!({
            "voice": {"file_id": "v1", "file_unique_id": "v", "duration": 3}
        }))));
        assert_eq!((m.kind, m.text.as_str()), (MessageKind::Voice, "[Голосовое сообщение]"));
        assert_eq!(m.attachments[0].mime_type.as_deref(), Some("audio/ogg"));
        let m = one_message(parse_json(update(json!({
            "animation": {"file_id": "a1", "file_unique_id": "a", "mime_type": "video/mp4"},
            "document": {"file_id": "a1", "file_unique_id": "a", "mime_type": "video/mp4"}
        }))));
        assert_eq!(m.kind, MessageKind::Video);
    }

    #[test]
    fn own_contact_gives_the_phone_and_location_is_text() {
        let m = one_message(parse_json(update(json!({
            "contact": {"phone_number": "+79001234567", "first_name": "Иван", "user_id": 5550001}
        }))));
        assert_eq!(m.text, "Контакт: Иван, +79001234567");
        assert_eq!(m.phone.as_deref(), Some("79001234567"));
        assert_eq!(m.kind, MessageKind::Contact);

        let m = one_message(parse_json(update(json!({
            "contact": {"phone_number": "79007654321", "first_name": "Пётр", "last_name": "Сервис"}
        }))));
        assert_eq!(m.text, "Контакт: Пётр Сервис, 79007654321");
        assert_eq!(m.phone, None, "someone else's card is not the sender's phone");

        let m = one_message(parse_json(update(json!({"location": {"latitude": 55.751244, "longitude": 37.618423}}))));
        assert_eq!(m.text, "Геопозиция: 55.751244, 37.618423");
        assert_eq!(m.kind, MessageKind::Location);
        let m = one_message(parse_json(update(json!({
            "venue": {"location": {"latitude": 55.7, "longitude": 37.6}, "title": "Автосервис", "address": "ул. Ленина, 1"},
            "location": {"latitude": 55.7, "longitude": 37.6}
        }))));
        assert_eq!(m.text, "Геопозиция: Автосервис, ул. Ленина, 1 (55.700000, 37.600000)");
    }

    #[test]
    fn edited_message_is_a_new_version() {
        let mut body = update(json!({"text": "Camry 2012, 2.5", "edit_date": 1714650100}));
        let message = body["message"].take();
        body.as_object_mut().unwrap().remove("message");
        body["edited_message"] = message;
        let m = one_message(parse_json(body));
        assert_eq!(m.provider_message_id, "5550001:42:edit:1714650100");
        assert_eq!(m.edit_of.as_deref(), Some("5550001:42"));
        assert_eq!(m.sent_at.timestamp(), 1714650100);
    }

    #[test]
    fn replies_name_the_quoted_message() {
        let m = one_message(parse_json(update(json!({
            "text": "Да",
            "reply_to_message": {"message_id": 41, "chat": {"id": 5550001, "type": "private"}, "date": 1714649990, "text": "?"}
        }))));
        assert_eq!(m.reply_to.as_deref(), Some("5550001:41"));
    }

    #[test]
    fn stickers_polls_service_messages_and_other_updates_are_ignored() {
        let n = parse_json(update(json!({"sticker": {"file_id": "s", "file_unique_id": "s", "type": "regular"}})));
        assert_eq!(n, Notification::Ignored { reason: "message/sticker".into() });
        let n = parse_json(update(json!({"poll": {"id": "1", "question": "?", "options": []}})));
        assert_eq!(n, Notification::Ignored { reason: "message/poll".into() });
        let n = parse_json(update(json!({"new_chat_members": [{"id": 1, "is_bot": false, "first_name": "A"}]})));
        assert!(matches!(n, Notification::Ignored { .. }));
        let n = parse_json(json!({"update_id": 1, "channel_post": {"message_id": 1}}));
        assert_eq!(n, Notification::Ignored { reason: "channel_post".into() });
        let n = parse_json(json!({"update_id": 1, "my_chat_member": {"chat": {"id": 1}}}));
        assert_eq!(n, Notification::Ignored { reason: "my_chat_member".into() });
        let n = parse_json(update(json!({"text": "   "})));
        assert!(matches!(n, Notification::Ignored { .. }));
    }

    #[test]
    fn unknown_updates_and_contents_go_to_the_dead_letter() {
        let n = parse_json(json!({"update_id": 1, "brand_new_update": {}}));
        assert_eq!(n, Notification::Unknown { kind: "brand_new_update".into() });
        let n = parse_json(update(json!({"hologram": {"id": 1}})));
        assert!(matches!(n, Notification::Unknown { .. }));
    }

    #[test]
    fn garbage_and_missing_fields_are_parse_errors() {
        assert!(matches!(parse(b"{oops"), Err(ParseError::Json(_))));
        assert!(matches!(parse(b"\"text\""), Err(ParseError::NotAnObject)));
        assert!(matches!(parse(br#"{"message":{}}"#), Err(ParseError::Field("update_id"))));
        let mut body = update(json!({"text": "x"}));
        body["message"].as_object_mut().unwrap().remove("chat");
        assert!(matches!(parse(body.to_string().as_bytes()), Err(ParseError::Field("message.chat.id"))));
        let mut body = update(json!({"text": "x"}));
        body["message"]["date"] = json!("yesterday");
        assert!(matches!(parse(body.to_string().as_bytes()), Err(ParseError::Field("message.date"))));
    }

    #[test]
    fn secret_token_check() {
        assert_eq!(verify_secret_token("abc_DEF-123", Some("abc_DEF-123")), Ok(()));
        assert_eq!(verify_secret_token("abc_DEF-123", Some("abc_DEF-124")), Err(WebhookAuthError::Mismatch));
        assert_eq!(verify_secret_token("abc_DEF-123", None), Err(WebhookAuthError::Missing));
        assert_eq!(verify_secret_token("", Some("x")), Err(WebhookAuthError::NotConfigured));
    }

    #[test]
    fn errors_are_classified() {
        let h = reqwest::header::HeaderMap::new();
        let e = classify(
            429,
            &h,
            r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 5","parameters":{"retry_after":5}}"#,
        );
        assert_eq!(
            e,
            SendError::transient("Telegram 429: Too Many Requests: retry after 5", Some(Duration::from_secs(5)))
        );
        let e = classify(400, &h, r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#);
        assert_eq!(e, SendError::permanent("Telegram 400: Bad Request: chat not found"));
        let e = classify(
            403,
            &h,
            r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#,
        );
        assert!(!e.is_transient());
        assert!(classify(502, &h, "<html>502 Bad Gateway</html>").is_transient());
        let e = classify(
            400,
            &h,
            r#"{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001234567890}}"#,
        );
        assert!(e.reason().contains("-1001234567890"), "{e}");
    }
}
