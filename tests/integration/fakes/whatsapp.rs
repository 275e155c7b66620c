//! A fake WhatsApp Cloud API: `POST /{version}/{phone-number-id}/messages` (text, and `image` or
//! `document` naming an uploaded media id) and `POST /{version}/{phone-number-id}/media`
//! (multipart upload) with a Bearer token, the real success bodies and Graph API error bodies.

use std::ops::Deref;
use std::sync::{Arc, Mutex};

use base64::Engine;
use chrono::Utc;
use hmac::{Hmac, Mac};
use secrecy::SecretString;
use serde_json::{Value, json};
use sha2::Sha256;

use super::{FakeServer, Handler, RecordedRequest, Reply, lock, next_seq};

#[derive(Default)]
struct WhatsAppState {
    sent: Vec<(String, String, String)>,
    /// The business number each send went out from, in the order of `sent`.
    sent_from: Vec<String>,
    /// Uploaded media by id: `(file name, mime type, bytes)`.
    uploads: std::collections::HashMap<String, (String, String, Vec<u8>)>,
    /// File messages sent: `(to, type, caption, filename, bytes of the named upload)`.
    files: Vec<SentFile>,
}

/// A file message the fake sent: `(to, type, caption, filename, bytes of the named upload)`.
pub type SentFile = (String, String, String, Option<String>, Vec<u8>);

/// A fake WhatsApp Business number.
pub struct FakeWhatsApp {
    server: FakeServer,
    state: Arc<Mutex<WhatsAppState>>,
}

impl Deref for FakeWhatsApp {
    type Target = FakeServer;

    fn deref(&self) -> &FakeServer {
        &self.server
    }
}

impl FakeWhatsApp {
    /// The Graph API version in the paths.
    pub const API_VERSION: &'static str = "v21.0";
    /// The business phone number's id.
    pub const PHONE_NUMBER_ID: &'static str = "106540352242922";
    /// A second business number of the same app.
    pub const PHONE_NUMBER_ID2: &'static str = "106540352242923";
    /// The system user access token.
    pub const ACCESS_TOKEN: &'static str = "EAAJB1vZCfakeTESTtokenZBwZDZD";

    pub async fn start() -> FakeWhatsApp {
        let state = Arc::new(Mutex::new(WhatsAppState::default()));
        let handler_state = state.clone();
        let handler: Handler = Arc::new(move |req| handle(&handler_state, req));
        FakeWhatsApp { server: FakeServer::start(handler).await, state }
    }

    /// The base URL including the version, as `WHATSAPP_API_URL` takes it.
    pub fn api_url(&self) -> String {
        format!("{}/{}", self.url(), Self::API_VERSION)
    }

    /// The access token as the client takes it.
    pub fn access_token(&self) -> SecretString {
        Self::ACCESS_TOKEN.into()
    }

    /// What was sent, oldest first: `(to, text, wamid)`.
    pub fn sent_messages(&self) -> Vec<(String, String, String)> {
        lock(&self.state).sent.clone()
    }

    /// File messages sent, oldest first: `(to, type, caption, filename, bytes)`.
    pub fn sent_files(&self) -> Vec<SentFile> {
        lock(&self.state).files.clone()
    }

    /// How many files were uploaded to `/media`.
    pub fn uploads(&self) -> usize {
        lock(&self.state).uploads.len()
    }

    /// The business number (`phone_number_id`) of every send, oldest first.
    pub fn sent_from(&self) -> Vec<String> {
        lock(&self.state).sent_from.clone()
    }

    /// The next `n` calls fail with a Graph API error.
    pub fn fail_next_graph(&self, n: usize, http_status: u16, code: u64, message: &str) {
        self.fail_next(n, Self::error(http_status, code, message, None));
    }

    /// `{"error":{"message","type","code","error_subcode"?,"fbtrace_id"}}`.
    pub fn error(http_status: u16, code: u64, message: &str, subcode: Option<u64>) -> Reply {
        let error_type = if code == 100 && subcode.is_some() { "GraphMethodException" } else { "OAuthException" };
        let mut error =
            json!({"message": message, "type": error_type, "code": code, "fbtrace_id": "AZ3bRdE1xQ9kT7cHfakeTRACE"});
        if let Some(subcode) = subcode {
            error["error_subcode"] = json!(subcode);
        }
        Reply::json(http_status, json!({ "error": error }))
    }
}

fn handle(state: &Mutex<WhatsAppState>, req: &RecordedRequest) -> Reply {
    let parts: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    let [version, phone_number_id, edge @ ("messages" | "media")] = parts.as_slice() else {
        return FakeWhatsApp::error(400, 2500, &format!("Unknown path components: {}", req.path), None);
    };
    if !version.starts_with('v') || req.method != "POST" {
        return FakeWhatsApp::error(400, 2500, &format!("Unknown path components: /{version}"), None);
    }
    if req.header("authorization") != Some(&format!("Bearer {}", FakeWhatsApp::ACCESS_TOKEN)) {
        return FakeWhatsApp::error(401, 190, "Invalid OAuth access token - Cannot parse access token", None);
    }
    if *phone_number_id != FakeWhatsApp::PHONE_NUMBER_ID && *phone_number_id != FakeWhatsApp::PHONE_NUMBER_ID2 {
        let message = format!(
            "Unsupported post request. Object with ID '{phone_number_id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api"
        );
        return FakeWhatsApp::error(400, 100, &message, Some(33));
    }
    let required =
        |name: &str| FakeWhatsApp::error(400, 100, &format!("(#100) The parameter {name} is required."), None);
    if *edge == "media" {
        let Some(parts) = req.multipart() else { return required("file") };
        let field = |name: &str| parts.iter().find(|p| p.name == name);
        if field("messaging_product").map(|p| p.text()).as_deref() != Some("whatsapp") {
            return required("messaging_product");
        }
        let Some(file) = field("file").filter(|p| !p.data.is_empty()) else { return required("file") };
        let mime = field("type").map(|p| p.text()).or_else(|| file.content_type.clone()).unwrap_or_default();
        let id = format!("{}", 1_037_543_291_543_000 + next_seq());
        lock(state).uploads.insert(id.clone(), (file.file_name.clone().unwrap_or_default(), mime, file.data.clone()));
        return Reply::json(200, json!({"id": id}));
    }
    let body = &req.body;
    if body.get("messaging_product").and_then(Value::as_str) != Some("whatsapp") {
        return required("messaging_product");
    }
    // `to` (a phone number) or `recipient` (a business-scoped user id).
    let Some(to) =
        ["to", "recipient"].iter().find_map(|k| body.get(*k).and_then(Value::as_str).filter(|t| !t.is_empty()))
    else {
        return required("to");
    };
    let kind = body.get("type").and_then(Value::as_str).unwrap_or("text");
    if kind == "image" || kind == "document" {
        let Some(media_id) = body.pointer(&format!("/{kind}/id")).and_then(Value::as_str) else {
            return required(&format!("{kind}['id']"));
        };
        let mut state = lock(state);
        let Some((_, _, bytes)) = state.uploads.get(media_id).cloned() else {
            return FakeWhatsApp::error(400, 131053, "Media upload error: the media id is not valid", None);
        };
        let caption = body.pointer(&format!("/{kind}/caption")).and_then(Value::as_str).unwrap_or_default();
        let filename = body.pointer(&format!("/{kind}/filename")).and_then(Value::as_str).map(String::from);
        let wa_id: String = to.chars().filter(char::is_ascii_digit).collect();
        let raw_id = format!("{wa_id}:{}:{}", Utc::now().timestamp_millis(), next_seq());
        let wamid = format!("wamid.HBgL{}", base64::engine::general_purpose::STANDARD.encode(raw_id));
        state.files.push((to.to_string(), kind.to_string(), caption.to_string(), filename, bytes));
        state.sent.push((to.to_string(), caption.to_string(), wamid.clone()));
        state.sent_from.push(phone_number_id.to_string());
        return Reply::json(
            200,
            json!({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": wa_id}], "messages": [{"id": wamid}]}),
        );
    }
    if kind != "text" {
        return FakeWhatsApp::error(
            400,
            100,
            "(#100) Param type must be one of {TEXT, IMAGE, DOCUMENT} in this fake",
            None,
        );
    }
    let Some(text) = body.pointer("/text/body").and_then(Value::as_str).filter(|t| !t.is_empty()) else {
        return required("text['body']");
    };
    if text.chars().count() > 4096 {
        return FakeWhatsApp::error(400, 100, "(#100) Param text['body'] must be at most 4096 characters long.", None);
    }
    let wa_id: String = to.chars().filter(char::is_ascii_digit).collect();
    let raw_id = format!("{wa_id}:{}:{}", Utc::now().timestamp_millis(), next_seq());
    let wamid = format!("wamid.HBgL{}", base64::engine::general_purpose::STANDARD.encode(raw_id));
    let mut state = lock(state);
    state.sent.push((to.to_string(), text.to_string(), wamid.clone()));
    state.sent_from.push(phone_number_id.to_string());
    drop(state);
    Reply::json(
        200,
        json!({
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": wa_id}],
            "messages": [{"id": wamid}],
        }),
    )
}

/// The webhook body Meta posts for a customer's text message.
pub fn whatsapp_text_webhook(phone_number_id: &str, from: &str, name: &str, wamid: &str, text: &str) -> Value {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "102290129340398",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_number_id},
                    "contacts": [{"profile": {"name": name}, "wa_id": from}],
                    "messages": [{
                        "from": from,
                        "id": wamid,
                        "timestamp": Utc::now().timestamp().to_string(),
                        "type": "text",
                        "text": {"body": text},
                    }],
                },
            }],
        }],
    })
}

/// The `X-Hub-Signature-256` header Meta sends with `raw_body` for an app with `app_secret`.
pub fn whatsapp_signature(raw_body: &[u8], app_secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes()).expect("any key length");
    mac.update(raw_body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}
