//! The GREEN-API REST client: sending, the journal of outgoing messages, webhook settings.

use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::super::{
    Answer, DEFAULT_TIMEOUT, OutgoingFile, SendError, SentMessage, at, excerpt, exchange, multipart,
    retry_after_header, str_at, time_at,
};
use super::{ChatId, normalize_chat_id};

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

    /// Sends a file with its caption (`sendFileByUpload`, multipart). The chat id is normalised
    /// first ([`ChatId::parse`]).
    pub async fn send_file_by_upload(
        &self,
        creds: &GreenApiCredentials,
        chat_id: &str,
        file: &OutgoingFile<'_>,
    ) -> Result<SentMessage, SendError> {
        let chat = ChatId::parse(chat_id).map_err(|_| SendError::permanent("invalid chat id"))?;
        let mut fields = vec![("chatId", chat.as_str()), ("fileName", file.file_name)];
        if !file.caption.is_empty() {
            fields.push(("caption", file.caption));
        }
        let (content_type, body) = multipart(&fields, "file", file);
        let request = self
            .http
            .post(self.url(creds, "sendFileByUpload"))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        let answer = exchange(request, self.timeout.max(Duration::from_secs(60))).await;
        let value = ok_json(answer).inspect_err(|e| {
            tracing::warn!(op = "sendFileByUpload", chat = %chat.masked(), error = %e, "GREEN-API send failed");
        })?;
        match str_at(&value, &["idMessage"]) {
            Some(id) => Ok(SentMessage { provider_message_id: id.to_string() }),
            None => Err(SendError::permanent("GREEN-API accepted the file but returned no idMessage")),
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

    /// Whether the phone number (digits) has an account on the instance's messenger
    /// (`checkWhatsapp`), asked before writing to someone who never wrote first.
    pub async fn check_whatsapp(&self, creds: &GreenApiCredentials, phone_digits: &str) -> Result<bool, SendError> {
        let number: u64 = phone_digits.parse().map_err(|_| SendError::permanent("invalid phone number"))?;
        let body = json!({ "phoneNumber": number });
        let answer = exchange(self.http.post(self.url(creds, "checkWhatsapp")).json(&body), self.timeout).await;
        let value = ok_json(answer)?;
        at(&value, &["existsWhatsapp"])
            .and_then(Value::as_bool)
            .ok_or_else(|| SendError::permanent("GREEN-API answer has no existsWhatsapp"))
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

pub(super) fn outgoing_record(item: &Value) -> Option<OutgoingRecord> {
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
pub(super) fn ok_json(answer: Result<Answer, SendError>) -> Result<Value, SendError> {
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
pub(super) fn error_detail(body: &str) -> String {
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
