//! The messenger webhook parsers: any body gives a notification or a `ParseError`, never a
//! panic, and the same body always gives the same answer.

use aisales::channels::{Notification, green_api, telegram, whatsapp};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::support::{body_bytes, deterministic, run};

/// Checks what every parsed notification promises: messages have ids and a chat.
fn check(n: &Notification) -> Result<(), TestCaseError> {
    if let Notification::Messages(messages) = n {
        for m in messages {
            prop_assert!(!m.provider_message_id.is_empty(), "a message without an id: {m:?}");
            prop_assert!(!m.chat_id.is_empty(), "a message without a chat: {m:?}");
        }
    }
    Ok(())
}

fn green_api_seeds() -> Vec<Value> {
    let incoming = |data: Value| {
        json!({
            "typeWebhook": "incomingMessageReceived",
            "instanceData": {"idInstance": 3100525112u64, "wid": "79990000000@c.us", "typeInstance": "v3"},
            "timestamp": 1714650000,
            "idMessage": "BAE5F4C1D2",
            "senderData": {"chatId": "41837581", "sender": "41837581", "chatName": "Иван", "senderName": "Иван",
                           "chatId2": "79991234567@c.us"},
            "messageData": data,
        })
    };
    vec![
        incoming(json!({"typeMessage": "textMessage", "textMessageData": {"textMessage": "Нужна АКПП U660E"}})),
        incoming(json!({"typeMessage": "extendedTextMessage",
            "extendedTextMessageData": {"text": "https://example.com", "description": "", "isForwarded": false}})),
        incoming(json!({"typeMessage": "quotedMessage",
            "extendedTextMessageData": {"text": "Да", "stanzaId": "BAE5AA11", "participant": "41837581"},
            "quotedMessage": {"stanzaId": "BAE5AA11", "typeMessage": "textMessage", "textMessage": "?"}})),
        incoming(json!({"typeMessage": "imageMessage", "fileMessageData": {"downloadUrl": "https://x/a.jpg",
            "caption": "Шильдик", "fileName": "a.jpg", "mimeType": "image/jpeg"}})),
        incoming(json!({"typeMessage": "documentMessage", "fileMessageData": {"downloadUrl": "https://x/s.pdf",
            "caption": "", "fileName": "СТС.pdf", "mimeType": "application/pdf"}})),
        incoming(json!({"typeMessage": "voiceMessage", "fileMessageData": {"downloadUrl": "https://x/v.ogg"}})),
        incoming(json!({"typeMessage": "contactMessage", "contactMessageData": {"displayName": "Пётр",
            "vcard": "BEGIN:VCARD\nTEL;type=CELL;waid=79001234567:+7 900 123-45-67\nEND:VCARD"}})),
        incoming(json!({"typeMessage": "contactsArrayMessage", "messageData": {"contacts": [
            {"displayName": "А", "vcard": "BEGIN:VCARD\nTEL:+79000000001\nEND:VCARD"}]}})),
        incoming(json!({"typeMessage": "locationMessage", "locationMessageData": {"nameLocation": "Склад",
            "address": "ул. Ленина, 1", "latitude": 55.751244, "longitude": 37.618423}})),
        incoming(json!({"typeMessage": "buttonsResponseMessage",
            "buttonsResponseMessage": {"selectedButtonText": "Да", "stanzaId": "X"}})),
        incoming(json!({"typeMessage": "editedMessage",
            "editedMessageData": {"textMessage": "Camry 2012", "stanzaId": "BAE5F4C1D2"}})),
        incoming(json!({"typeMessage": "reactionMessage", "extendedTextMessageData": {"text": "👍"}})),
        json!({"typeWebhook": "outgoingAPIMessageReceived",
            "instanceData": {"idInstance": 1, "wid": "79990000000@c.us", "typeInstance": "v3"},
            "timestamp": 1714650001, "idMessage": "BAE5AA11",
            "senderData": {"chatId": "58240096@c.us", "sender": "79990000000@c.us", "chatName": "Пётр"},
            "messageData": {"typeMessage": "extendedTextMessage", "extendedTextMessageData": {"text": "Здравствуйте!"}}}),
        json!({"typeWebhook": "outgoingMessageReceived", "timestamp": 1714650002, "idMessage": "X1",
            "senderData": {"chatId": "41837581", "sender": "79990000000@c.us", "chatName": ""},
            "messageData": {"typeMessage": "textMessage", "textMessageData": {"textMessage": "Вручную"}}}),
        json!({"typeWebhook": "outgoingMessageStatus", "chatId": "58240096@c.us", "timestamp": 1714650005,
            "idMessage": "BAE5AA11", "status": "failed", "description": "Recipient is unavailable", "sendByApi": true}),
        json!({"typeWebhook": "stateInstanceChanged", "instanceData": {"idInstance": 1}, "stateInstance": "notAuthorized"}),
        json!({"typeWebhook": "incomingCall", "from": "79001234567@c.us", "status": "offer"}),
    ]
}

const GREEN_API_WORDS: &[&str] = &[
    "incomingMessageReceived",
    "outgoingAPIMessageReceived",
    "outgoingMessageReceived",
    "outgoingMessageStatus",
    "stateInstanceChanged",
    "videoMessage",
    "audioMessage",
    "templateButtonsReplyMessage",
    "templateButtonReplyMessage",
    "listResponseMessage",
    "selectedDisplayText",
    "title",
    "contactsArrayMessageData",
    "contacts",
    "sent",
    "delivered",
    "read",
    "noAccount",
    "58240096@c.us",
    "120363043968066561@g.us",
    "-1001234567890",
    "79991234567@s.whatsapp.net",
    "@c.us",
    "@g.us",
    "TEL",
];

fn telegram_seeds() -> Vec<Value> {
    let update = |extra: Value| {
        let mut m = json!({"message_id": 42, "date": 1714650000,
            "from": {"id": 5550001, "is_bot": false, "first_name": "Иван", "last_name": "П", "username": "ivan"},
            "chat": {"id": 5550001, "first_name": "Иван", "type": "private"}});
        if let (Some(m), Value::Object(extra)) = (m.as_object_mut(), extra) {
            m.extend(extra);
        }
        json!({"update_id": 900001, "message": m})
    };
    let mut seeds = vec![
        update(json!({"text": "Нужна АКПП на Camry"})),
        update(json!({"caption": "Шильдик", "photo": [{"file_id": "s", "file_unique_id": "s", "width": 90,
            "height": 90, "file_size": 100}, {"file_id": "b", "file_unique_id": "b", "width": 900, "height": 900}]})),
        update(json!({"document": {"file_id": "d", "file_name": "СТС.pdf", "mime_type": "application/pdf"}})),
        update(json!({"animation": {"file_id": "a"}, "document": {"file_id": "a"}})),
        update(json!({"voice": {"file_id": "v", "duration": 3, "mime_type": "audio/ogg"}})),
        update(json!({"video": {"file_id": "vv"}, "audio": {"file_id": "au"}, "video_note": {"file_id": "n"}})),
        update(json!({"contact": {"phone_number": "+79001234567", "first_name": "Иван", "user_id": 5550001}})),
        update(json!({"location": {"latitude": 55.751244, "longitude": 37.618423}})),
        update(json!({"venue": {"location": {"latitude": 55.7, "longitude": 37.6}, "title": "Склад",
            "address": "Москва"}})),
        update(json!({"text": "ответ", "reply_to_message": {"message_id": 41, "date": 1714650000}})),
        update(json!({"sticker": {"file_id": "s", "type": "regular"}})),
        json!({"update_id": 1, "channel_post": {"message_id": 1}}),
        json!({"update_id": 1, "brand_new_update": {}}),
    ];
    let mut edited = update(json!({"text": "Camry 2012, 2.5", "edit_date": 1714650100}));
    if let Some(m) = edited.as_object_mut().and_then(|o| o.remove("message")) {
        edited["edited_message"] = m;
    }
    seeds.push(edited);
    let mut group = update(json!({"text": "в группе"}));
    group["message"]["chat"] = json!({"id": -1001234567890i64, "title": "Автозапчасти", "type": "supergroup"});
    seeds.push(group);
    seeds
}

const TELEGRAM_WORDS: &[&str] =
    &["message", "edited_message", "business_message", "callback_query", "poll", "new_chat_members", "text"];

fn whatsapp_seeds() -> Vec<Value> {
    let body = |value: Value| {
        json!({"object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}]})
    };
    let meta = json!({"display_phone_number": "15550783881", "phone_number_id": "106540352242922"});
    let message = |kind: &str, content: Value| {
        let mut m = json!({"from": "79001234567", "id": "wamid.HBgL", "timestamp": "1714650000", "type": kind});
        if let (Some(m), Value::Object(c)) = (m.as_object_mut(), content) {
            m.extend(c);
        }
        m
    };
    let messages = vec![
        message("text", json!({"text": {"body": "Нужна АКПП"}})),
        message("image", json!({"image": {"caption": "Шильдик", "mime_type": "image/jpeg", "sha256": "a", "id": "1"}})),
        message("document", json!({"document": {"filename": "sts.pdf", "mime_type": "application/pdf", "id": "55"}})),
        message("audio", json!({"audio": {"mime_type": "audio/ogg; codecs=opus", "id": "56", "voice": true}})),
        message(
            "contacts",
            json!({"contacts": [{"name": {"formatted_name": "Пётр", "first_name": "Пётр"},
            "phones": [{"phone": "+7 900 765-43-21", "wa_id": "79007654321", "type": "CELL"}]}]}),
        ),
        message(
            "location",
            json!({"location": {"latitude": 55.75, "longitude": 37.61, "name": "Склад",
            "address": "Москва"}}),
        ),
        message(
            "button",
            json!({"context": {"from": "15550783881", "id": "wamid.template"},
            "button": {"payload": "YES", "text": "Да, интересно"}}),
        ),
        message(
            "interactive",
            json!({"interactive": {"type": "list_reply",
            "list_reply": {"id": "akpp", "title": "АКПП", "description": "автомат"}}}),
        ),
        message(
            "interactive",
            json!({"interactive": {"type": "button_reply",
            "button_reply": {"id": "y", "title": "Да"}}}),
        ),
        message("reaction", json!({"reaction": {"message_id": "wamid.x", "emoji": "👍"}})),
        message("text", json!({"from_user_id": "US.13491208655302741918", "text": {"body": "oi"}})),
    ];
    let mut seeds: Vec<Value> = messages
        .into_iter()
        .map(|m| {
            body(json!({"messaging_product": "whatsapp", "metadata": meta,
                "contacts": [{"profile": {"name": "Ivan"}, "wa_id": "79001234567", "user_id": "US.1"}],
                "messages": [m]}))
        })
        .collect();
    seeds.push(body(json!({"metadata": meta, "statuses": [
        {"id": "wamid.out1", "status": "delivered", "timestamp": "1714650001", "recipient_id": "79000000003"},
        {"id": "wamid.out2", "status": "failed", "timestamp": 1714650002, "recipient_id": "79000000004",
         "errors": [{"code": 131047, "title": "Re-engagement message",
                     "error_data": {"details": "Message failed to send"}}]}]})));
    seeds.push(body(json!({"metadata": meta, "errors": [{"code": 1, "title": "x"}]})));
    seeds.push(json!({"object": "whatsapp_business_account", "entry": [
        {"id": "1", "changes": [{"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}}]},
        {"id": "2", "changes": [{"field": "messages", "value": {"metadata": {"phone_number_id": 106540352242923u64},
            "messages": [{"id": "w", "timestamp": "1", "type": "text", "text": {"body": "x"}}]}}]}]}));
    seeds.push(json!({"object": "page", "entry": []}));
    seeds
}

const WHATSAPP_WORDS: &[&str] =
    &["whatsapp_business_account", "video", "sticker", "sent", "read", "unsupported", "order", "system", "voice"];

#[test]
fn green_api_webhooks() {
    run("green_api", body_bytes(green_api_seeds(), GREEN_API_WORDS), |body| {
        if let Ok(n) = deterministic(|| green_api::parse(&body))? {
            check(&n)?;
        }
        Ok(())
    });
}

#[test]
fn telegram_webhooks() {
    run("telegram", body_bytes(telegram_seeds(), TELEGRAM_WORDS), |body| {
        if let Ok(n) = deterministic(|| telegram::parse(&body))? {
            check(&n)?;
        }
        Ok(())
    });
}

#[test]
fn whatsapp_webhooks() {
    run("whatsapp", body_bytes(whatsapp_seeds(), WHATSAPP_WORDS), |body| {
        let flat = deterministic(|| whatsapp::parse(&body))?;
        let routed = deterministic(|| whatsapp::parse_routed(&body))?;
        prop_assert_eq!(flat.is_ok(), routed.is_ok(), "parse and parse_routed disagree");
        if let (Ok(flat), Ok(routed)) = (flat, routed) {
            prop_assert!(!flat.is_empty(), "parse promises a non-empty list");
            prop_assert!(!routed.is_empty());
            for n in flat.iter().chain(routed.iter().flat_map(|r| &r.notifications)) {
                check(n)?;
            }
        }
        Ok(())
    });
}
