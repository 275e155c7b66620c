//! Local fake servers speaking the wire formats of the third-party services the program calls:
//! GREEN-API ([`FakeGreenApi`]), the Telegram Bot API ([`FakeTelegram`]), the WhatsApp Cloud API
//! ([`FakeWhatsApp`]), OpenAI chat completions ([`FakeOpenAi`]), the Yandex Cloud Search API
//! ([`FakeYandexSearch`]) and classifieds sites serving listing pages ([`FakeListingSites`]).
//!
//! Each fake is an axum server on `127.0.0.1:0` started with `start().await`. It records every
//! request ([`RecordedRequest`]) and answers with the provider's real success and error bodies and
//! status codes. The shared knobs live on [`FakeServer`] (every fake derefs to it):
//!
//! - [`FakeServer::fail_next`] / [`FakeServer::fail_next_on`]: the next N calls answer a scripted
//!   [`Reply`] (each fake has helpers building its provider-shaped error bodies);
//! - [`FakeServer::hang_next`]: the next call is recorded and processed (a send is accepted and
//!   shows up in the provider's journal), then its answer is held back for a while — a worker
//!   killed meanwhile never learns the outcome;
//! - [`FakeServer::set_latency`]: every answer is delayed (after processing), e.g. to trigger a
//!   client timeout; [`FakeServer::set_latency_on`] delays only the answers to some paths.
//!
//! The modules also build the inbound webhook bodies tests post to our server.

pub mod green_api;
pub mod listings;
pub mod openai;
pub mod telegram;
pub mod whatsapp;
pub mod yandex;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::task::AbortHandle;

pub use green_api::{FakeGreenApi, green_api_incoming_text, green_api_outgoing_echo, green_api_status};
pub use listings::FakeListingSites;
pub use openai::FakeOpenAi;
pub use telegram::{FakeTelegram, telegram_text_update};
pub use whatsapp::{FakeWhatsApp, whatsapp_signature, whatsapp_text_webhook};
pub use yandex::{FakeDoc, FakeYandexSearch, YandexMode};

/// One request a fake received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    /// The body as JSON; `Value::Null` when it is empty or not JSON.
    pub body: Value,
    /// The body as sent (a multipart upload).
    pub raw: Bytes,
    pub at: DateTime<Utc>,
}

/// One part of a `multipart/form-data` body.
#[derive(Debug, Clone)]
pub struct Part {
    pub name: String,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

impl Part {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|i| i + from)
}

fn disposition_param(line: &str, key: &str) -> Option<String> {
    let at = line.find(&format!("{key}=\""))? + key.len() + 2;
    let end = line[at..].find('"')? + at;
    Some(line[at..end].to_string())
}

impl RecordedRequest {
    /// The parts of a `multipart/form-data` body (`None` when the body is not one), parsed as
    /// a provider does: the boundary from the content type, headers of each part, then its data.
    pub fn multipart(&self) -> Option<Vec<Part>> {
        let ct = self.header("content-type")?;
        let boundary = ct.strip_prefix("multipart/form-data")?.split("boundary=").nth(1)?.trim_matches('"');
        let delimiter = format!("--{boundary}").into_bytes();
        let body = &self.raw[..];
        let mut parts = Vec::new();
        let mut at = find(body, &delimiter, 0)? + delimiter.len();
        loop {
            if body.get(at..at + 2) == Some(b"--") {
                return Some(parts);
            }
            at += 2; // CRLF after the delimiter
            let head_end = find(body, b"\r\n\r\n", at)?;
            let head = String::from_utf8_lossy(&body[at..head_end]).into_owned();
            let next = find(body, &[b"\r\n".as_slice(), &delimiter].concat(), head_end + 4)?;
            let mut part = Part { name: String::new(), file_name: None, content_type: None, data: Vec::new() };
            for line in head.split("\r\n") {
                let lower = line.to_ascii_lowercase();
                if lower.starts_with("content-disposition:") {
                    part.name = disposition_param(line, "name")?;
                    part.file_name = disposition_param(line, "filename");
                } else if let Some(v) = lower.strip_prefix("content-type:") {
                    part.content_type = Some(v.trim().to_string());
                }
            }
            part.data = body[head_end + 4..next].to_vec();
            parts.push(part);
            at = next + 2 + delimiter.len();
        }
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A query-string parameter (values here are plain: no percent-decoding).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.as_deref()?.split('&').find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
    }
}

/// An HTTP answer of a fake.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

impl Reply {
    fn with_type(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
        let status = StatusCode::from_u16(status).expect("valid status code");
        Reply {
            status,
            headers: vec![(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
            body: body.into(),
        }
    }

    /// A JSON answer.
    pub fn json(status: u16, body: Value) -> Reply {
        Reply::with_type(status, "application/json; charset=utf-8", body.to_string())
    }

    /// A plain-text answer.
    pub fn text(status: u16, body: impl Into<String>) -> Reply {
        Reply::with_type(status, "text/plain; charset=utf-8", body.into())
    }

    /// An HTML answer (what reverse proxies answer for unknown paths and gateway errors).
    pub fn html(status: u16, body: impl Into<String>) -> Reply {
        Reply::with_type(status, "text/html", body.into())
    }

    /// An answer without a body.
    pub fn empty(status: u16) -> Reply {
        Reply { status: StatusCode::from_u16(status).expect("valid status code"), headers: vec![], body: Bytes::new() }
    }

    /// The same answer with one more header.
    pub fn with_header(mut self, name: &'static str, value: &str) -> Reply {
        self.headers.push((HeaderName::from_static(name), HeaderValue::from_str(value).expect("valid header value")));
        self
    }

    /// The nginx page answered for unknown paths.
    pub fn nginx_not_found() -> Reply {
        Reply::html(
            404,
            "<html><head><title>404 Not Found</title></head><body><center><h1>404 Not Found</h1></center><hr><center>nginx</center></body></html>",
        )
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body).into_response();
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

/// Turns a recorded request into the provider's answer. It runs before any scripted delay, so
/// whatever it "does" (accepting a message) has happened even if the caller never gets the answer.
pub type Handler = Arc<dyn Fn(&RecordedRequest) -> Reply + Send + Sync>;

struct ScriptedFailure {
    remaining: usize,
    path_contains: Option<String>,
    reply: Reply,
}

#[derive(Default)]
struct Knobs {
    failures: VecDeque<ScriptedFailure>,
    hang_next: Option<Duration>,
    latency: Duration,
    /// (path fragment, delay): answers to matching paths are delayed.
    path_latency: Vec<(String, Duration)>,
}

impl Knobs {
    fn take_failure(&mut self, path: &str) -> Option<Reply> {
        let index = self
            .failures
            .iter()
            .position(|f| f.path_contains.as_deref().is_none_or(|fragment| path.contains(fragment)))?;
        let failure = &mut self.failures[index];
        failure.remaining -= 1;
        let reply = failure.reply.clone();
        if failure.remaining == 0 {
            self.failures.remove(index);
        }
        Some(reply)
    }
}

struct Shared {
    handler: Handler,
    requests: Mutex<Vec<RecordedRequest>>,
    knobs: Mutex<Knobs>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running fake: an axum server on a random local port. Stops when dropped.
pub struct FakeServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: AbortHandle,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeServer {
    /// Starts a server answering every request with `handler`.
    pub async fn start(handler: Handler) -> FakeServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a local port");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared { handler, requests: Mutex::default(), knobs: Mutex::default() });
        let app = Router::new().fallback(serve).with_state(shared.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("fake server runs");
        });
        FakeServer { addr, shared, task: task.abort_handle() }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// The requests whose path contains `fragment`.
    pub fn requests_to(&self, fragment: &str) -> Vec<RecordedRequest> {
        self.requests().into_iter().filter(|r| r.path.contains(fragment)).collect()
    }

    /// The next `n` requests (to any path) get `reply` instead of being processed.
    pub fn fail_next(&self, n: usize, reply: Reply) {
        if n > 0 {
            lock(&self.shared.knobs).failures.push_back(ScriptedFailure { remaining: n, path_contains: None, reply });
        }
    }

    /// The next `n` requests whose path contains `fragment` get `reply` instead of being processed.
    pub fn fail_next_on(&self, fragment: &str, n: usize, reply: Reply) {
        if n > 0 {
            let path_contains = Some(fragment.to_string());
            lock(&self.shared.knobs).failures.push_back(ScriptedFailure { remaining: n, path_contains, reply });
        }
    }

    /// The next request is recorded and processed, then answered only after `delay`.
    pub fn hang_next(&self, delay: Duration) {
        lock(&self.shared.knobs).hang_next = Some(delay);
    }

    /// Every later answer is delayed by `latency` (zero turns it off).
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.shared.knobs).latency = latency;
    }

    /// Later answers to paths containing `fragment` are delayed by `latency` (zero turns it off).
    pub fn set_latency_on(&self, fragment: &str, latency: Duration) {
        let mut knobs = lock(&self.shared.knobs);
        knobs.path_latency.retain(|(f, _)| f != fragment);
        if !latency.is_zero() {
            knobs.path_latency.push((fragment.to_string(), latency));
        }
    }

    /// Waits until at least `n` requests arrived and returns them; panics after `timeout`.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<RecordedRequest> {
        let deadline = Instant::now() + timeout;
        loop {
            let requests = self.requests();
            if requests.len() >= n {
                return requests;
            }
            assert!(Instant::now() < deadline, "expected {n} requests within {timeout:?}, got {}", requests.len());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn serve(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = RecordedRequest {
        method,
        path: uri.path().to_string(),
        query: uri.query().map(String::from),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw: body,
        at: Utc::now(),
    };
    lock(&shared.requests).push(request.clone());
    let (scripted, delay) = {
        let mut knobs = lock(&shared.knobs);
        let scripted = knobs.take_failure(&request.path);
        let path_delay = knobs.path_latency.iter().find(|(f, _)| request.path.contains(f.as_str())).map(|(_, d)| *d);
        let delay = knobs.hang_next.take().or(path_delay).unwrap_or(knobs.latency);
        (scripted, delay)
    };
    let reply = scripted.unwrap_or_else(|| (shared.handler)(&request));
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    reply.into_response()
}

/// A number that never repeats within the test process (message ids of the fakes).
fn next_seq() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}
