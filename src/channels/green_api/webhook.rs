//! GREEN-API webhook notifications: authentication and parsing into provider-neutral form.

use serde_json::Value;

use super::super::{
    Attachment, AttachmentKind, DeliveryState, DeliveryStatus, InboundMessage, MessageKind, Notification, OutgoingEcho,
    ParseError, WebhookAuthError, at, constant_time_eq, file_placeholder, id_at, phone_digits, render_contact,
    render_location, str_at, time_at, vcard_phones,
};
use super::{ChatId, ChatKind, IGNORED_MESSAGE_TYPES, IGNORED_WEBHOOK_TYPES, normalize_chat_id, phone_of};

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
pub(super) enum Content {
    Kept { text: String, kind: MessageKind, attachments: Vec<Attachment>, edit_of: Option<String> },
    Ignored(String),
    Unknown(String),
}

pub(super) fn content(data: &Value) -> Result<Content, ParseError> {
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

pub(super) fn render_card(card: &Value) -> String {
    let phones = str_at(card, &["vcard"]).map(vcard_phones).unwrap_or_default();
    render_contact(str_at(card, &["displayName"]), &phones)
}

pub(super) fn required_chat_id(v: &Value, path: &[&str], field: &'static str) -> Result<String, ParseError> {
    let raw = str_at(v, path).ok_or(ParseError::Field(field))?;
    Ok(normalize_chat_id(raw))
}

pub(super) fn incoming(v: &Value) -> Result<Notification, ParseError> {
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
        sender_alias: None,
        text,
        attachments,
        sent_at,
        kind,
        reply_to,
        edit_of,
    }]))
}

pub(super) fn echo(v: &Value, sent_by_api: bool) -> Result<Notification, ParseError> {
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

pub(super) fn status(v: &Value) -> Result<Notification, ParseError> {
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
