//! A fake GREEN-API account (MAX instance): `sendMessage`, `sendFileByUpload` (multipart),
//! `getStateInstance`, `setSettings`, `getSettings`, `lastOutgoingMessages`, with the real paths
//! (`[/v3]/waInstance{id}/{method}/{token}`), status codes and error bodies.

use std::ops::Deref;
use std::sync::{Arc, Mutex};

use aisales::channels::green_api::GreenApiCredentials;
use chrono::Utc;
use serde_json::{Map, Value, json};

use super::{FakeServer, Handler, RecordedRequest, Reply, lock, next_seq};

/// What the fake sent.
#[derive(Debug, Clone)]
struct Sent {
    chat_id: String,
    text: String,
    id_message: String,
    timestamp: i64,
    /// A file sent with `sendFileByUpload`: its name and bytes (`text` is then the caption).
    file: Option<(String, Vec<u8>)>,
}

/// A file the fake received.
#[derive(Debug, Clone)]
pub struct SentFile {
    pub chat_id: String,
    pub file_name: String,
    pub caption: String,
    pub bytes: Vec<u8>,
    pub id_message: String,
}

struct GreenState {
    /// Phone numbers `checkWhatsapp` says have no account.
    without_account: Vec<u64>,
    checked: Vec<u64>,
    state_instance: String,
    settings: Map<String, Value>,
    sent: Vec<Sent>,
    /// Files served under `/media/{name}` (what `downloadUrl` points at): bytes and type.
    files: std::collections::HashMap<String, (Vec<u8>, String)>,
}

/// Every toggle of the account; `setSettings` sets what it is given and resets the rest
/// (as the production account did when settings were sent partially).
fn default_settings() -> Map<String, Value> {
    let mut s = Map::new();
    s.insert("wid".into(), json!(FakeGreenApi::WID));
    s.insert("webhookUrl".into(), json!(""));
    s.insert("webhookUrlToken".into(), json!(""));
    s.insert("delaySendMessagesMilliseconds".into(), json!(5000));
    for key in [
        "markIncomingMessagesReaded",
        "markIncomingMessagesReadedOnReply",
        "outgoingWebhook",
        "outgoingMessageWebhook",
        "outgoingAPIMessageWebhook",
        "incomingWebhook",
        "deviceWebhook",
        "stateWebhook",
        "keepOnlineStatus",
        "pollMessageWebhook",
        "incomingBlockWebhook",
        "incomingCallWebhook",
        "editedMessageWebhook",
        "deletedMessageWebhook",
    ] {
        s.insert(key.into(), json!("no"));
    }
    s
}

/// A fake GREEN-API account.
pub struct FakeGreenApi {
    server: FakeServer,
    state: Arc<Mutex<GreenState>>,
}

impl Deref for FakeGreenApi {
    type Target = FakeServer;

    fn deref(&self) -> &FakeServer {
        &self.server
    }
}

impl FakeGreenApi {
    /// The account's idInstance.
    pub const ID_INSTANCE: u64 = 3100525112;
    /// The account's apiTokenInstance.
    pub const TOKEN: &'static str = "d75b3a66374942c5b3c019c698abc2067e151558acbd4b7e";
    /// The account's own chat id.
    pub const WID: &'static str = "79990000000@c.us";

    /// Starts an authorized account.
    pub async fn start() -> FakeGreenApi {
        let state = Arc::new(Mutex::new(GreenState {
            without_account: Vec::new(),
            checked: Vec::new(),
            state_instance: "authorized".into(),
            settings: default_settings(),
            sent: Vec::new(),
            files: std::collections::HashMap::new(),
        }));
        let handler_state = state.clone();
        let handler: Handler = Arc::new(move |req| handle(&handler_state, req));
        FakeGreenApi { server: FakeServer::start(handler).await, state }
    }

    /// Credentials pointing a client at this fake.
    pub fn credentials(&self) -> GreenApiCredentials {
        GreenApiCredentials { api_url: Some(self.url()), id_instance: Self::ID_INSTANCE, api_token: Self::TOKEN.into() }
    }

    /// Serves `bytes` as `name` from the media host; returns its download URL.
    pub fn put_file(&self, name: &str, bytes: Vec<u8>, mime_type: &str) -> String {
        lock(&self.state).files.insert(name.to_string(), (bytes, mime_type.to_string()));
        format!("{}/media/{name}", self.url())
    }

    /// What was sent, oldest first: `(chat_id, text, id_message)`.
    pub fn sent_messages(&self) -> Vec<(String, String, String)> {
        lock(&self.state).sent.iter().map(|s| (s.chat_id.clone(), s.text.clone(), s.id_message.clone())).collect()
    }

    /// The files sent with `sendFileByUpload`, oldest first.
    pub fn sent_files(&self) -> Vec<SentFile> {
        lock(&self.state)
            .sent
            .iter()
            .filter_map(|s| {
                s.file.as_ref().map(|(name, bytes)| SentFile {
                    chat_id: s.chat_id.clone(),
                    file_name: name.clone(),
                    caption: s.text.clone(),
                    bytes: bytes.clone(),
                    id_message: s.id_message.clone(),
                })
            })
            .collect()
    }

    /// From now on `checkWhatsapp` says `phone` (digits) has no account.
    pub fn without_account(&self, phone: u64) {
        lock(&self.state).without_account.push(phone);
    }

    /// The numbers `checkWhatsapp` was asked about, oldest first.
    pub fn checked_numbers(&self) -> Vec<u64> {
        lock(&self.state).checked.clone()
    }

    /// The account's current settings.
    pub fn settings(&self) -> Value {
        Value::Object(lock(&self.state).settings.clone())
    }

    /// Changes the account state (`authorized`, `notAuthorized`, `blocked`, `starting`, …).
    pub fn set_state(&self, state: &str) {
        lock(&self.state).state_instance = state.to_string();
    }

    /// The next `n` calls get GREEN-API's answer for `status` ([`FakeGreenApi::error`]).
    pub fn fail_next_status(&self, n: usize, status: u16) {
        self.fail_next(n, Self::error(status));
    }

    /// GREEN-API's error answer for a status: 400 validation text, 401 empty, 403 `Forbidden`,
    /// 429 `Too Many Requests`, 466 the correspondents quota body, 500 and 502 plain text.
    pub fn error(status: u16) -> Reply {
        match status {
            400 => Reply::text(400, "Validation failed. Details: 'chatId' is required"),
            401 => Reply::empty(401),
            403 => Reply::text(403, "Forbidden"),
            404 => Reply::nginx_not_found(),
            429 => Reply::text(429, "Too Many Requests"),
            466 => Reply::json(
                466,
                json!({"correspondentsStatus": {
                    "method": "correspondents", "used": 3, "total": 3,
                    "status": "CORRESPONDENTS_QUOTA_EXCEEDED",
                    "description": "Monthly quota has been exceeded. You can only send or receive messages from following chats: 41837581, 58240096, 79001234567@c.us. Please go to your personal account and change the tariff to business https://console.green-api.com"
                }}),
            ),
            502 => {
                Reply::html(502, "<html><head><title>502 Bad Gateway</title></head><body>502 Bad Gateway</body></html>")
            }
            other => Reply::text(other, "Internal Server Error"),
        }
    }
}

fn validation(details: &str) -> Reply {
    Reply::text(400, format!("Validation failed. Details: {details}"))
}

/// Chat ids GREEN-API accepts: a phone chat (10+ digits `@c.us`), a bare MAX id or a group.
/// `41837581@c.us` is refused, as production did.
fn acceptable_chat_id(chat_id: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match chat_id.split_once('@') {
        Some((local, "c.us")) => digits(local) && (10..=15).contains(&local.len()),
        Some((local, "g.us")) => !local.is_empty(),
        Some(_) => false,
        None => digits(chat_id.strip_prefix('-').unwrap_or(chat_id)),
    }
}

fn handle(state: &Mutex<GreenState>, req: &RecordedRequest) -> Reply {
    if let Some(name) = req.path.strip_prefix("/media/") {
        return match lock(state).files.get(name) {
            Some((bytes, mime)) => Reply {
                status: axum::http::StatusCode::OK,
                headers: vec![(
                    axum::http::header::CONTENT_TYPE,
                    axum::http::HeaderValue::from_str(mime).expect("a valid type"),
                )],
                body: bytes.clone().into(),
            },
            None => Reply::text(404, "Not Found"),
        };
    }
    let path = req.path.strip_prefix("/v3").unwrap_or(&req.path);
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let [instance, method, token] = parts.as_slice() else {
        return Reply::nginx_not_found();
    };
    if instance.strip_prefix("waInstance").and_then(|id| id.parse::<u64>().ok()) != Some(FakeGreenApi::ID_INSTANCE) {
        return FakeGreenApi::error(403);
    }
    if *token != FakeGreenApi::TOKEN {
        return FakeGreenApi::error(401);
    }
    let verb = req.method.as_str();
    let mut state = lock(state);
    match (method.to_ascii_lowercase().as_str(), verb) {
        ("sendmessage", "POST") => send_message(&mut state, &req.body),
        ("sendfilebyupload", "POST") => send_file_by_upload(&mut state, req),
        ("checkwhatsapp", "POST") => {
            let Some(phone) = req.body.get("phoneNumber").and_then(Value::as_u64) else {
                return validation("'phoneNumber' must be a number");
            };
            state.checked.push(phone);
            Reply::json(200, json!({"existsWhatsapp": !state.without_account.contains(&phone)}))
        }
        ("getstateinstance", "GET") => Reply::json(200, json!({"stateInstance": state.state_instance})),
        ("getsettings", "GET") => Reply::json(200, Value::Object(state.settings.clone())),
        ("setsettings", "POST") => {
            let Some(body) = req.body.as_object().filter(|b| !b.is_empty()) else {
                return validation("at least one setting is required");
            };
            let mut settings = default_settings();
            for (key, value) in body {
                if !settings.contains_key(key) || key == "wid" {
                    return validation(&format!("'{key}' is not allowed"));
                }
                settings.insert(key.clone(), value.clone());
            }
            state.settings = settings;
            Reply::json(200, json!({"saveSettings": true}))
        }
        ("lastoutgoingmessages", "GET") => {
            let minutes: i64 = req.query_param("minutes").and_then(|m| m.parse().ok()).unwrap_or(1440);
            let since = Utc::now().timestamp() - minutes * 60;
            let journal: Vec<Value> =
                state.sent.iter().rev().filter(|s| s.timestamp >= since).map(journal_entry).collect();
            Reply::json(200, Value::Array(journal))
        }
        _ => Reply::nginx_not_found(),
    }
}

fn send_message(state: &mut GreenState, body: &Value) -> Reply {
    let Some(chat_id) = body.get("chatId") else { return validation("'chatId' is required") };
    let Some(chat_id) = chat_id.as_str() else { return validation("'chatId' must be a string") };
    let Some(message) = body.get("message") else { return validation("'message' is required") };
    let Some(message) = message.as_str() else { return validation("'message' must be a string") };
    if message.is_empty() {
        return validation("'message' is not allowed to be empty");
    }
    if message.chars().count() > 20000 {
        return validation("'message' length must be less than or equal to 20000 characters long");
    }
    if !acceptable_chat_id(chat_id) {
        return validation("'chatId' must be one of the next formats: 'phone_number@c.us' or 'chatId'");
    }
    if state.state_instance != "authorized" {
        return Reply::text(400, "instance is starting or not authorized");
    }
    let id_message = format!("BAE5{:012X}", 0x5A_0000_0000 + next_seq());
    state.sent.push(Sent {
        chat_id: chat_id.to_string(),
        text: message.to_string(),
        id_message: id_message.clone(),
        timestamp: Utc::now().timestamp(),
        file: None,
    });
    Reply::json(200, json!({"idMessage": id_message}))
}

/// `sendFileByUpload`: multipart with `chatId`, `file`, optional `fileName` and `caption`.
fn send_file_by_upload(state: &mut GreenState, req: &RecordedRequest) -> Reply {
    let Some(parts) = req.multipart() else {
        return validation("'file' is required");
    };
    let field = |name: &str| parts.iter().find(|p| p.name == name);
    let Some(chat_id) = field("chatId").map(|p| p.text()) else { return validation("'chatId' is required") };
    let Some(file) = field("file").filter(|p| !p.data.is_empty()) else { return validation("'file' is required") };
    if !acceptable_chat_id(&chat_id) {
        return validation("'chatId' must be one of the next formats: 'phone_number@c.us' or 'chatId'");
    }
    if state.state_instance != "authorized" {
        return Reply::text(400, "instance is starting or not authorized");
    }
    let name = field("fileName").map(|p| p.text()).or_else(|| file.file_name.clone()).unwrap_or_default();
    let caption = field("caption").map(|p| p.text()).unwrap_or_default();
    let id_message = format!("BAE5{:012X}", 0x5B_0000_0000 + next_seq());
    state.sent.push(Sent {
        chat_id: chat_id.clone(),
        text: caption,
        id_message: id_message.clone(),
        timestamp: Utc::now().timestamp(),
        file: Some((name.clone(), file.data.clone())),
    });
    Reply::json(
        200,
        json!({"idMessage": id_message, "urlFile": format!("https://sw-media-out.green-api.com/{}/{name}", FakeGreenApi::ID_INSTANCE)}),
    )
}

fn journal_entry(sent: &Sent) -> Value {
    if let Some((name, _)) = &sent.file {
        let image = name.ends_with(".jpg") || name.ends_with(".png");
        return json!({
            "type": "outgoing",
            "idMessage": sent.id_message,
            "timestamp": sent.timestamp,
            "typeMessage": if image { "imageMessage" } else { "documentMessage" },
            "chatId": sent.chat_id,
            "downloadUrl": format!("https://sw-media-out.green-api.com/{}/{name}", FakeGreenApi::ID_INSTANCE),
            "caption": sent.text,
            "fileName": name,
            "statusMessage": "sent",
            "sendByApi": true,
        });
    }
    let mut entry = json!({
        "type": "outgoing",
        "idMessage": sent.id_message,
        "timestamp": sent.timestamp,
        "typeMessage": "textMessage",
        "chatId": sent.chat_id,
        "textMessage": sent.text,
        "statusMessage": "sent",
        "sendByApi": true,
    });
    if sent.text.contains("http://") || sent.text.contains("https://") {
        entry["typeMessage"] = json!("extendedTextMessage");
        entry["extendedTextMessage"] = json!({
            "text": sent.text, "description": "", "title": "", "previewType": "None",
            "jpegThumbnail": "", "forwardingScore": 0, "isForwarded": false
        });
    }
    entry
}

fn instance_data(id_instance: u64) -> Value {
    json!({"idInstance": id_instance, "wid": FakeGreenApi::WID, "typeInstance": "v3"})
}

/// The `incomingMessageReceived` notification GREEN-API posts for a customer's text message.
pub fn green_api_incoming_text(
    id_instance: u64,
    chat_id: &str,
    sender_name: &str,
    id_message: &str,
    text: &str,
) -> Value {
    json!({
        "typeWebhook": "incomingMessageReceived",
        "instanceData": instance_data(id_instance),
        "timestamp": Utc::now().timestamp(),
        "idMessage": id_message,
        "senderData": {
            "chatId": chat_id,
            "chatName": sender_name,
            "sender": chat_id,
            "senderName": sender_name,
            "senderContactName": "",
        },
        "messageData": {
            "typeMessage": "textMessage",
            "textMessageData": {"textMessage": text},
        },
    })
}

/// The `outgoingAPIMessageReceived` echo GREEN-API posts after one of our sends; `chat_id` is the
/// id MAX really uses (the short internal id even when we sent to `<phone>@c.us`).
pub fn green_api_outgoing_echo(
    id_instance: u64,
    chat_id: &str,
    chat_name: &str,
    id_message: &str,
    text: &str,
) -> Value {
    json!({
        "typeWebhook": "outgoingAPIMessageReceived",
        "instanceData": instance_data(id_instance),
        "timestamp": Utc::now().timestamp(),
        "idMessage": id_message,
        "senderData": {"chatId": chat_id, "chatName": chat_name, "sender": FakeGreenApi::WID, "senderName": ""},
        "messageData": {
            "typeMessage": "extendedTextMessage",
            "extendedTextMessageData": {"text": text, "description": "", "title": "", "jpegThumbnail": "",
                                        "forwardingScore": 0, "isForwarded": false},
        },
    })
}

/// The `outgoingMessageStatus` notification (`sent`, `delivered`, `read`, `failed`, `noAccount`, …).
pub fn green_api_status(id_instance: u64, chat_id: &str, id_message: &str, status: &str) -> Value {
    let mut body = json!({
        "typeWebhook": "outgoingMessageStatus",
        "chatId": chat_id,
        "instanceData": instance_data(id_instance),
        "timestamp": Utc::now().timestamp(),
        "idMessage": id_message,
        "status": status,
        "sendByApi": true,
    });
    if status == "noAccount" {
        body["description"] = json!("The recipient does not have a MAX account");
    }
    body
}

/// The `incomingMessageReceived` notification for a customer's photo (`imageMessage`): the file is
/// at `download_url` (GREEN-API's media storage), with an optional caption.
pub fn green_api_incoming_image(
    id_instance: u64,
    chat_id: &str,
    id_message: &str,
    download_url: &str,
    mime_type: &str,
) -> Value {
    json!({
        "typeWebhook": "incomingMessageReceived",
        "instanceData": instance_data(id_instance),
        "timestamp": Utc::now().timestamp(),
        "idMessage": id_message,
        "senderData": {"chatId": chat_id, "chatName": "Иван", "sender": chat_id, "senderName": "Иван", "senderContactName": ""},
        "messageData": {
            "typeMessage": "imageMessage",
            "fileMessageData": {
                "downloadUrl": download_url,
                "caption": "",
                "fileName": format!("{id_message}.jpg"),
                "jpegThumbnail": "",
                "mimeType": mime_type,
                "isAnimated": false,
                "forwardingScore": 0,
                "isForwarded": false
            },
        },
    })
}
