//! Yandex Cloud Search API v2, synchronous web search.
//!
//! `POST {YANDEX_SEARCH_API_URL}/v2/web/search` with `Authorization: Api-Key <key>` and the JSON
//! body of [`request_body`]; the answer is `{"rawData": "<base64 of the Yandex XML>"}`. The XML is
//! read with a real XML reader, so highlight tags (`<hlword>`) nested in titles and passages stay
//! inside their document instead of shifting every later result (the old regex zip did that).
//! `<error code="15">` (nothing found) is an empty answer; other error codes and HTTP failures are
//! typed [`YandexError`]s. Every call has a deadline and the answer is read up to a size cap. The
//! key goes only into the header (marked sensitive) and is cut out of any echoed error text.

use std::time::{Duration, Instant};

use base64::Engine as _;
use quick_xml::events::Event;
use reqwest::header::{self, HeaderValue};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::fetch::{ReadError, read_capped, retry_after_header};
use super::{PriceSourceSettings, YandexCredentials};

/// Longest query the API takes, in characters.
pub const MAX_QUERY_CHARS: usize = 400;
/// Results asked per query (one document per group).
pub const GROUPS_ON_PAGE: u32 = 5;
/// Largest answer read; five results are a few kilobytes.
const MAX_ANSWER_BYTES: usize = 2 * 1024 * 1024;
/// Longest excerpt of an error answer kept in an error.
const EXCERPT_CHARS: usize = 200;

/// One search result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResult {
    pub url: String,
    /// The document's domain as Yandex reports it (e.g. `baza.drom.ru`, `www.avito.ru`).
    pub domain: String,
    /// Title text with highlights flattened.
    pub title: String,
    pub headline: Option<String>,
    pub passages: Vec<String>,
}

/// The results of one query.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResponse {
    /// Yandex's request id (`<reqid>`), for support requests.
    pub request_id: Option<String>,
    /// Yandex's estimate of all matching documents, when given.
    pub found: Option<u64>,
    pub results: Vec<SearchResult>,
}

/// Why a search gave no results.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum YandexError {
    #[error("the web search is not configured: set YANDEX_SEARCH_API_KEY and YANDEX_FOLDER_ID")]
    NotConfigured,
    #[error("the search query {reason}")]
    InvalidQuery { reason: String },
    #[error("the search API refused the credentials: {message}")]
    Unauthorized { message: String },
    #[error("the search API is rate limited{}: {message}", retry_after.map(|d| format!(" (retry after {}s)", d.as_secs())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration>, message: String },
    #[error("the search API failed{}: {message}", status.map(|s| format!(" with HTTP {s}")).unwrap_or_default())]
    Server { status: Option<u16>, message: String },
    #[error("the search API rejected the request: {message}")]
    Rejected { status: u16, code: Option<u32>, message: String },
    #[error("no answer from the search API within {}s", after.as_secs_f32())]
    Timeout { after: Duration },
    #[error("could not reach the search API: {reason}")]
    Unreachable { reason: String },
    #[error("the search API answered something unreadable: {reason}")]
    Garbage { reason: String },
}

impl YandexError {
    /// A short stable name for metrics and events.
    pub fn kind(&self) -> &'static str {
        match self {
            YandexError::NotConfigured => "not_configured",
            YandexError::InvalidQuery { .. } => "invalid_query",
            YandexError::Unauthorized { .. } => "unauthorized",
            YandexError::RateLimited { .. } => "rate_limited",
            YandexError::Server { .. } => "server_error",
            YandexError::Rejected { .. } => "rejected",
            YandexError::Timeout { .. } => "timeout",
            YandexError::Unreachable { .. } => "unreachable",
            YandexError::Garbage { .. } => "garbage",
        }
    }

    /// Whether the same query may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            YandexError::RateLimited { .. }
                | YandexError::Server { .. }
                | YandexError::Timeout { .. }
                | YandexError::Unreachable { .. }
                | YandexError::Garbage { .. }
        )
    }

    /// How long the API asked to wait, when it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            YandexError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// The search client. Cheap to clone.
#[derive(Clone)]
pub struct YandexSearchClient {
    http: reqwest::Client,
    endpoint: String,
    credentials: Option<YandexCredentials>,
    timeout: Duration,
}

impl YandexSearchClient {
    /// A client on a shared HTTP client; the deadline of each call is `YANDEX_SEARCH_TIMEOUT_SECS`.
    pub fn new(http: reqwest::Client, settings: &PriceSourceSettings) -> Self {
        YandexSearchClient {
            http,
            endpoint: format!("{}/v2/web/search", settings.yandex_api_url.trim_end_matches('/')),
            credentials: settings.yandex.clone(),
            timeout: settings.yandex_timeout,
        }
    }

    /// Whether a key and a folder are set.
    pub fn is_configured(&self) -> bool {
        self.credentials.is_some()
    }

    /// `{YANDEX_SEARCH_API_URL}/v2/web/search`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Searches Russian web results for `query`.
    pub async fn search(&self, query: &str) -> Result<SearchResponse, YandexError> {
        let Some(credentials) = &self.credentials else {
            return Err(YandexError::NotConfigured);
        };
        let query = query.trim();
        if query.is_empty() {
            return Err(YandexError::InvalidQuery { reason: "is empty".into() });
        }
        let chars = query.chars().count();
        if chars > MAX_QUERY_CHARS {
            return Err(YandexError::InvalidQuery {
                reason: format!("is {chars} characters long; the API takes at most {MAX_QUERY_CHARS}"),
            });
        }
        let started = Instant::now();
        let result = match tokio::time::timeout(self.timeout, self.exchange(credentials, query)).await {
            Ok(result) => result,
            Err(_) => Err(YandexError::Timeout { after: self.timeout }),
        };
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match &result {
            Ok(answer) => tracing::debug!(query, results = answer.results.len(), elapsed_ms, "web search answered"),
            Err(error) => tracing::warn!(query, kind = error.kind(), error = %error, elapsed_ms, "web search failed"),
        }
        result
    }

    async fn exchange(&self, credentials: &YandexCredentials, query: &str) -> Result<SearchResponse, YandexError> {
        let key = credentials.api_key.expose_secret();
        let mut authorization = HeaderValue::from_str(&format!("Api-Key {key}")).map_err(|_| {
            YandexError::Unauthorized { message: "the API key holds characters a header cannot carry".into() }
        })?;
        authorization.set_sensitive(true);
        let response = self
            .http
            .post(&self.endpoint)
            .header(header::AUTHORIZATION, authorization)
            .header(header::ACCEPT, "application/json")
            .json(&request_body(query, &credentials.folder_id))
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let retry_after = retry_after_header(response.headers());
        let body = read_capped(response, MAX_ANSWER_BYTES).await.map_err(|e| match e {
            ReadError::TooLarge => {
                YandexError::Garbage { reason: format!("the answer is larger than {MAX_ANSWER_BYTES} bytes") }
            }
            ReadError::Transport(e) => transport_error(e),
        })?;
        let text = String::from_utf8_lossy(&body);
        if !status.is_success() {
            let message = redact(&error_message(&text), key);
            return Err(match status.as_u16() {
                401 | 403 => YandexError::Unauthorized { message: format!("HTTP {}: {message}", status.as_u16()) },
                429 => YandexError::RateLimited { retry_after, message },
                s if s >= 500 => YandexError::Server { status: Some(s), message },
                s => YandexError::Rejected { status: s, code: None, message },
            });
        }
        let answer: Value = serde_json::from_str(&text)
            .map_err(|e| YandexError::Garbage { reason: format!("the answer is not JSON ({e})") })?;
        let raw = answer
            .get("rawData")
            .and_then(Value::as_str)
            .ok_or_else(|| YandexError::Garbage { reason: "the answer has no rawData".into() })?;
        parse_raw_data(raw).map_err(|e| match e {
            YandexError::Unauthorized { message } => YandexError::Unauthorized { message: redact(&message, key) },
            other => other,
        })
    }
}

/// The JSON body of one search, as the API takes it.
pub fn request_body(query: &str, folder_id: &str) -> Value {
    json!({
        "query": {
            "searchType": "SEARCH_TYPE_RU",
            "queryText": query,
            "familyMode": "FAMILY_MODE_NONE",
            "page": 0,
        },
        "sortSpec": { "sortMode": "SORT_MODE_BY_RELEVANCE" },
        "groupSpec": { "groupMode": "GROUP_MODE_FLAT", "groupsOnPage": GROUPS_ON_PAGE, "docsInGroup": 1 },
        "maxPassages": 2,
        "folderId": folder_id,
        "region": "225",
    })
}

fn transport_error(error: reqwest::Error) -> YandexError {
    if error.is_connect() {
        return YandexError::Unreachable { reason: "the connection was refused or failed".into() };
    }
    if error.is_timeout() {
        return YandexError::Unreachable { reason: "the connection timed out".into() };
    }
    YandexError::Unreachable { reason: error.without_url().to_string() }
}

/// The `message` of a Yandex Cloud error body (`{"code":16,"message":"…"}`), else an excerpt.
fn error_message(body: &str) -> String {
    let from_json = serde_json::from_str::<Value>(body).ok().and_then(|v| {
        v.get("message")
            .or_else(|| v.get("error").and_then(|e| e.get("message").or(Some(e))))
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let text = from_json.unwrap_or_else(|| body.to_string());
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.is_empty() {
        return "no details".into();
    }
    let mut cut: String = one_line.chars().take(EXCERPT_CHARS).collect();
    if one_line.chars().count() > EXCERPT_CHARS {
        cut.push('…');
    }
    cut
}

/// `text` with the key (and its last characters, which error texts like to quote) masked.
fn redact(text: &str, key: &str) -> String {
    if key.len() < 8 {
        return text.to_string();
    }
    text.replace(key, "[redacted]")
}

/// Decodes `rawData` (base64 of the XML) and reads the results.
pub fn parse_raw_data(raw: &str) -> Result<SearchResponse, YandexError> {
    let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(compact.trim_end_matches('=').as_bytes()))
        .map_err(|e| YandexError::Garbage { reason: format!("rawData is not base64 ({e})") })?;
    let xml = String::from_utf8(bytes).map_err(|_| YandexError::Garbage { reason: "the XML is not UTF-8".into() })?;
    parse_xml(&xml)
}

/// Which text of a document is being read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Url,
    Domain,
    Title,
    Headline,
    Passage,
}

#[derive(Default)]
struct DocDraft {
    url: String,
    domain: String,
    title: String,
    headline: String,
    passages: Vec<String>,
}

/// What the reader has seen so far.
#[derive(Default)]
struct XmlState {
    /// Local names of the open elements, outermost first.
    path: Vec<String>,
    saw_root: bool,
    saw_response: bool,
    /// `<response><error code=…>` and its text.
    error: Option<(Option<u32>, String)>,
    reqid: String,
    /// Inside `<response><found priority="all">`.
    in_found_all: bool,
    found_text: String,
    found_all: Option<u64>,
    doc: Option<DocDraft>,
    /// The document field being read and the depth of its element.
    field: Option<(Field, usize)>,
    results: Vec<SearchResult>,
}

impl XmlState {
    fn parent(&self) -> Option<&str> {
        self.path.last().map(String::as_str)
    }

    fn start(&mut self, start: &quick_xml::events::BytesStart<'_>) {
        let name = start.local_name().into_inner().to_string();
        let attr = |key: &str| {
            start
                .try_get_attribute(key)
                .ok()
                .flatten()
                .and_then(|a| a.normalized_value(quick_xml::XmlVersion::Implicit1_0).ok())
                .map(|v| v.trim().to_string())
        };
        match (self.parent(), name.as_str()) {
            (None, "yandexsearch") => self.saw_root = true,
            (Some("yandexsearch"), "response") => self.saw_response = true,
            (Some("response"), "error") => {
                self.error = Some((attr("code").and_then(|c| c.parse().ok()), String::new()))
            }
            (Some("response"), "found") => {
                self.in_found_all = attr("priority").as_deref() == Some("all");
                self.found_text.clear();
            }
            (Some("group"), "doc") => self.doc = Some(DocDraft::default()),
            _ => {}
        }
        if self.doc.is_some() && self.field.is_none() {
            let depth = self.path.len() + 1;
            let in_doc = self.parent() == Some("doc");
            let in_passages =
                self.parent() == Some("passages") && self.path.iter().rev().nth(1).is_some_and(|p| p == "doc");
            self.field = match name.as_str() {
                "url" if in_doc => Some((Field::Url, depth)),
                "domain" if in_doc => Some((Field::Domain, depth)),
                "title" if in_doc => Some((Field::Title, depth)),
                "headline" if in_doc => Some((Field::Headline, depth)),
                "passage" if in_passages => {
                    if let Some(d) = self.doc.as_mut() {
                        d.passages.push(String::new());
                    }
                    Some((Field::Passage, depth))
                }
                _ => None,
            };
        }
        self.path.push(name);
    }

    fn end(&mut self) {
        let depth = self.path.len();
        let name = self.path.pop().unwrap_or_default();
        if self.field.is_some_and(|(_, d)| d == depth) {
            self.field = None;
        }
        match (self.parent(), name.as_str()) {
            (Some("group"), "doc") => {
                if let Some(result) = self.doc.take().and_then(finish_doc) {
                    self.results.push(result);
                }
            }
            (Some("response"), "found") if self.in_found_all => {
                self.found_all = self.found_text.trim().parse().ok();
                self.in_found_all = false;
            }
            _ => {}
        }
    }

    fn text(&mut self, text: &str) {
        if let (Some(draft), Some((field, _))) = (self.doc.as_mut(), self.field) {
            let target = match field {
                Field::Url => &mut draft.url,
                Field::Domain => &mut draft.domain,
                Field::Title => &mut draft.title,
                Field::Headline => &mut draft.headline,
                Field::Passage => match draft.passages.last_mut() {
                    Some(p) => p,
                    None => return,
                },
            };
            target.push_str(text);
            return;
        }
        let grandparent = self.path.iter().rev().nth(1).map(String::as_str);
        match (grandparent, self.parent()) {
            (Some("response"), Some("error")) => {
                if let Some((_, message)) = self.error.as_mut() {
                    message.push_str(text);
                }
            }
            (Some("response"), Some("found")) if self.in_found_all => self.found_text.push_str(text),
            (Some("response"), Some("reqid")) => self.reqid.push_str(text),
            _ => {}
        }
    }
}

/// Reads a Yandex search XML answer.
pub fn parse_xml(xml: &str) -> Result<SearchResponse, YandexError> {
    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut state = XmlState::default();
    loop {
        let event =
            reader.read_event().map_err(|e| YandexError::Garbage { reason: format!("the XML is malformed ({e})") })?;
        match event {
            Event::Start(start) => state.start(&start),
            Event::End(_) => state.end(),
            Event::Empty(empty) => {
                state.start(&empty);
                state.end();
            }
            Event::Text(text) => state.text(&text.xml10_content()),
            Event::CData(data) => state.text(&data),
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) => Some(c.to_string()),
                    Ok(None) => quick_xml::escape::resolve_xml_entity(&reference).map(str::to_string),
                    Err(_) => None,
                };
                state.text(&resolved.unwrap_or_default());
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !state.path.is_empty() {
        return Err(YandexError::Garbage { reason: "the XML is malformed (it ends inside an element)".into() });
    }
    if !state.saw_root || !state.saw_response {
        return Err(YandexError::Garbage {
            reason: "the XML is not a Yandex search answer (no <yandexsearch><response>)".into(),
        });
    }
    let answer = SearchResponse {
        request_id: Some(state.reqid.trim().to_string()).filter(|r| !r.is_empty()),
        found: state.found_all,
        results: state.results,
    };
    match state.error {
        None => Ok(answer),
        // "Nothing was found for this query": an answer, not a failure.
        Some((Some(15), _)) => Ok(SearchResponse { results: Vec::new(), found: Some(0), ..answer }),
        Some((code, message)) => Err(xml_error(code, flatten(&message))),
    }
}

/// Maps a Yandex XML error code to an error.
fn xml_error(code: Option<u32>, message: String) -> YandexError {
    let Some(code) = code else {
        return YandexError::Rejected { status: 200, code: None, message };
    };
    let message = format!("error {code}: {message}");
    match code {
        // Folder unknown, address not allowed, key invalid, key not authorised, wrong search type.
        31 | 33 | 34 | 42 | 43 | 44 | 48 => YandexError::Unauthorized { message },
        // Daily limit, requests per second, bot check.
        32 | 55 | 100 => YandexError::RateLimited { retry_after: None, message },
        20 => YandexError::Server { status: None, message },
        _ => YandexError::Rejected { status: 200, code: Some(code), message },
    }
}

fn flatten(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A finished document, or `None` without an http(s) URL.
fn finish_doc(draft: DocDraft) -> Option<SearchResult> {
    let url = draft.url.trim().to_string();
    let parsed = reqwest::Url::parse(&url).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return None;
    }
    let domain = Some(flatten(&draft.domain))
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| parsed.host_str().unwrap_or_default().to_string())
        .to_ascii_lowercase();
    Some(SearchResult {
        url,
        domain,
        title: flatten(&draft.title),
        headline: Some(flatten(&draft.headline)).filter(|h| !h.is_empty()),
        passages: draft.passages.iter().map(|p| flatten(p)).filter(|p| !p.is_empty()).collect(),
    })
}

#[cfg(test)]
mod tests;
