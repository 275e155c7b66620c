//! A fake Telegram Bot API: `POST /bot{token}/sendMessage`, `sendPhoto` and `sendDocument`
//! (multipart uploads) and `setWebhook` with the real
//! `{"ok":true,"result":…}` answers and `{"ok":false,"error_code":…,"description":…}` errors.

use std::collections::{HashMap, HashSet};
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use secrecy::SecretString;
use serde_json::{Value, json};

use super::{FakeServer, Handler, RecordedRequest, Reply, lock};

#[derive(Default)]
struct TelegramState {
    next_message_id: HashMap<i64, i64>,
    sent: Vec<(i64, String, i64)>,
    /// The bot token each send came with, in the order of `sent`.
    sent_by: Vec<String>,
    blocked: HashSet<i64>,
    webhook: Option<(String, String)>,
    /// Files uploaded with `sendPhoto` / `sendDocument`: `(method, chat_id, file name, caption, bytes)`.
    files: Vec<(String, i64, String, String, Vec<u8>)>,
}

/// A fake bot.
pub struct FakeTelegram {
    server: FakeServer,
    state: Arc<Mutex<TelegramState>>,
}

impl Deref for FakeTelegram {
    type Target = FakeServer;

    fn deref(&self) -> &FakeServer {
        &self.server
    }
}

impl FakeTelegram {
    /// The bot's token.
    pub const TOKEN: &'static str = "7000000001:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0";
    /// The bot's user id.
    pub const BOT_ID: i64 = 7000000001;
    /// A second bot of the same shop, served by the same fake.
    pub const TOKEN2: &'static str = "7000000002:AAGsecondBotTokenForRoutingTests0000";

    pub async fn start() -> FakeTelegram {
        let state = Arc::new(Mutex::new(TelegramState::default()));
        let handler_state = state.clone();
        let handler: Handler = Arc::new(move |req| handle(&handler_state, req));
        FakeTelegram { server: FakeServer::start(handler).await, state }
    }

    /// The bot token as the client takes it.
    pub fn token(&self) -> SecretString {
        Self::TOKEN.into()
    }

    /// What was sent, oldest first: `(chat_id, text, message_id)`.
    pub fn sent_messages(&self) -> Vec<(i64, String, i64)> {
        lock(&self.state).sent.clone()
    }

    /// Files sent, oldest first: `(method, chat_id, file name, caption, bytes)`.
    pub fn sent_files(&self) -> Vec<(String, i64, String, String, Vec<u8>)> {
        lock(&self.state).files.clone()
    }

    /// The bot token of every send, oldest first.
    pub fn sent_by(&self) -> Vec<String> {
        lock(&self.state).sent_by.clone()
    }

    /// The webhook set by `setWebhook`: `(url, secret_token)`.
    pub fn webhook(&self) -> Option<(String, String)> {
        lock(&self.state).webhook.clone()
    }

    /// From now on the user of `chat_id` has blocked the bot (403 on every send).
    pub fn block_chat(&self, chat_id: i64) {
        lock(&self.state).blocked.insert(chat_id);
    }

    /// The next `n` calls fail with the Bot API's error body.
    pub fn fail_next_telegram(&self, n: usize, error_code: u16, description: &str, retry_after: Option<u64>) {
        self.fail_next(n, Self::error(error_code, description, retry_after));
    }

    /// `{"ok":false,"error_code":…,"description":…}` with `parameters.retry_after` when given.
    pub fn error(error_code: u16, description: &str, retry_after: Option<u64>) -> Reply {
        let mut body = json!({"ok": false, "error_code": error_code, "description": description});
        if let Some(secs) = retry_after {
            body["parameters"] = json!({"retry_after": secs});
        }
        Reply::json(error_code, body)
    }
}

fn handle(state: &Mutex<TelegramState>, req: &RecordedRequest) -> Reply {
    let Some((token, method)) = req.path.strip_prefix("/bot").and_then(|rest| rest.split_once('/')) else {
        return FakeTelegram::error(404, "Not Found", None);
    };
    if token != FakeTelegram::TOKEN && token != FakeTelegram::TOKEN2 {
        return FakeTelegram::error(401, "Unauthorized", None);
    }
    match method {
        "sendMessage" => {
            let mut state = lock(state);
            let reply = send_message(&mut state, &req.body);
            if state.sent_by.len() < state.sent.len() {
                state.sent_by.push(token.to_string());
            }
            reply
        }
        "sendPhoto" | "sendDocument" => send_file(&mut lock(state), method, req),
        "setWebhook" => set_webhook(&mut lock(state), &req.body),
        _ => FakeTelegram::error(404, "Not Found", None),
    }
}

/// `sendPhoto` (field `photo`) / `sendDocument` (field `document`) with an uploaded file.
fn send_file(state: &mut TelegramState, method: &str, req: &RecordedRequest) -> Reply {
    let bad = |description: &str| FakeTelegram::error(400, description, None);
    let Some(parts) = req.multipart() else { return bad("Bad Request: there is no file in the request") };
    let field = |name: &str| parts.iter().find(|p| p.name == name);
    let Some(chat_id) = field("chat_id").and_then(|p| p.text().parse::<i64>().ok()) else {
        return bad("Bad Request: chat not found");
    };
    let file_field = if method == "sendPhoto" { "photo" } else { "document" };
    let Some(file) = field(file_field).filter(|p| !p.data.is_empty()) else {
        return bad(&format!("Bad Request: there is no {file_field} in the request"));
    };
    if state.blocked.contains(&chat_id) {
        return FakeTelegram::error(403, "Forbidden: bot was blocked by the user", None);
    }
    let caption = field("caption").map(|p| p.text()).unwrap_or_default();
    let next = state.next_message_id.entry(chat_id).or_insert(100);
    *next += 1;
    let message_id = *next;
    let name = file.file_name.clone().unwrap_or_default();
    state.files.push((method.to_string(), chat_id, name.clone(), caption.clone(), file.data.clone()));
    let media = if method == "sendPhoto" {
        json!({"photo": [{"file_id": format!("AgACAgIAAxk{message_id}"), "file_unique_id": "AQAD", "width": 320, "height": 240}]})
    } else {
        json!({"document": {"file_name": name, "file_id": format!("BQACAgIAAxk{message_id}"), "file_unique_id": "AgAD"}})
    };
    let mut result = json!({
        "message_id": message_id,
        "from": {"id": FakeTelegram::BOT_ID, "is_bot": true, "first_name": "Автозапчасти", "username": "autoparts_test_bot"},
        "chat": {"id": chat_id, "first_name": "Иван", "type": "private"},
        "date": Utc::now().timestamp(),
        "caption": caption,
    });
    for (k, v) in media.as_object().unwrap() {
        result[k] = v.clone();
    }
    Reply::json(200, json!({"ok": true, "result": result}))
}

/// `setWebhook` as Telegram checks it: an HTTPS URL, and a secret token of 1–256 characters
/// from `A-Z a-z 0-9 _ -`.
fn set_webhook(state: &mut TelegramState, body: &Value) -> Reply {
    let bad = |description: &str| FakeTelegram::error(400, description, None);
    let url = body.get("url").and_then(Value::as_str).unwrap_or_default();
    if url.is_empty() {
        return bad("Bad Request: bad webhook: URL must be provided");
    }
    if !url.starts_with("https://") {
        return bad("Bad Request: bad webhook: An HTTPS URL must be provided for webhook");
    }
    let secret = body.get("secret_token").and_then(Value::as_str).unwrap_or_default();
    if secret.len() > 256 || !secret.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return bad("Bad Request: secret token contains unallowed characters");
    }
    state.webhook = Some((url.to_string(), secret.to_string()));
    Reply::json(200, json!({"ok": true, "result": true, "description": "Webhook was set"}))
}

fn send_message(state: &mut TelegramState, body: &Value) -> Reply {
    let bad = |description: &str| FakeTelegram::error(400, description, None);
    let chat_id = match body.get("chat_id") {
        None | Some(Value::Null) => return bad("Bad Request: chat_id is empty"),
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        Some(_) => None,
    };
    let Some(chat_id) = chat_id else { return bad("Bad Request: chat not found") };
    let text = body.get("text").and_then(Value::as_str).unwrap_or_default();
    if text.trim().is_empty() {
        return bad("Bad Request: message text is empty");
    }
    if text.chars().count() > 4096 {
        return bad("Bad Request: message is too long");
    }
    if state.blocked.contains(&chat_id) {
        return FakeTelegram::error(403, "Forbidden: bot was blocked by the user", None);
    }
    let next = state.next_message_id.entry(chat_id).or_insert(100);
    *next += 1;
    let message_id = *next;
    state.sent.push((chat_id, text.to_string(), message_id));
    let chat = if chat_id < 0 {
        json!({"id": chat_id, "title": "Автозапчасти", "type": "supergroup"})
    } else {
        json!({"id": chat_id, "first_name": "Иван", "type": "private"})
    };
    Reply::json(
        200,
        json!({"ok": true, "result": {
            "message_id": message_id,
            "from": {"id": FakeTelegram::BOT_ID, "is_bot": true, "first_name": "Автозапчасти", "username": "autoparts_test_bot"},
            "chat": chat,
            "date": Utc::now().timestamp(),
            "text": text,
        }}),
    )
}

/// The `Update` Telegram posts to the bot's webhook for a private text message.
pub fn telegram_text_update(
    update_id: i64,
    chat_id: i64,
    from_id: i64,
    first_name: &str,
    message_id: i64,
    text: &str,
) -> Value {
    json!({
        "update_id": update_id,
        "message": {
            "message_id": message_id,
            "from": {"id": from_id, "is_bot": false, "first_name": first_name, "language_code": "ru"},
            "chat": {"id": chat_id, "first_name": first_name, "type": "private"},
            "date": Utc::now().timestamp(),
            "text": text,
        },
    })
}
