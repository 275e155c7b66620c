//! Tests of the GREEN-API webhook parsing, chat ids and client.

use std::time::Duration;

use super::client::*;
use super::webhook::*;
use super::*;
use serde_json::{Value, json};

use crate::channels::{
    AttachmentKind, DeliveryState, InboundMessage, MessageKind, Notification, ParseError, SendError, WebhookAuthError,
};

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
    let mut body = incoming_body(json!({"typeMessage": "textMessage", "textMessageData": {"textMessage": "Привет"}}));
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
    let mut body =
        incoming_body(json!({"typeMessage": "textMessage", "textMessageData": {"textMessage": "Кто продаёт АКПП?"}}));
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
    let n = parse_json(incoming_body(json!({"typeMessage": "textMessage", "textMessageData": {"textMessage": "  "}})));
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
    for key in
        ["incomingWebhook", "outgoingWebhook", "outgoingAPIMessageWebhook", "outgoingMessageWebhook", "stateWebhook"]
    {
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
