//! A fake Yandex Cloud Search API v2: `POST /v2/web/search` checked like the real one (the
//! `Authorization: Api-Key …` header, the folder, the JSON body), answering
//! `{"rawData": "<base64 of the Yandex XML>"}` built from configured results (with `<hlword>`
//! highlights as the real answers have them), `<error code="15">` when nothing is configured for
//! a query, and Yandex Cloud's error bodies. It counts searches per query and can be told to
//! answer 401, 429, 500, garbage, or nothing at all.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use chrono::Utc;
use serde_json::{Value, json};

use super::{FakeServer, Handler, RecordedRequest, Reply, lock, next_seq};

/// One search result the fake answers.
#[derive(Debug, Clone)]
pub struct FakeDoc {
    pub url: String,
    pub domain: String,
    /// Title as XML: may hold `<hlword>` elements; text must be escaped.
    pub title_xml: String,
    /// Passages as XML, like the title.
    pub passages_xml: Vec<String>,
}

impl FakeDoc {
    /// A result at `url` (its domain is the URL's host) with a title given as XML.
    pub fn new(url: &str, title_xml: &str) -> FakeDoc {
        let domain = reqwest::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default();
        FakeDoc { url: url.into(), domain, title_xml: title_xml.into(), passages_xml: Vec::new() }
    }

    /// The same result with one more passage (XML).
    pub fn passage(mut self, xml: &str) -> FakeDoc {
        self.passages_xml.push(xml.into());
        self
    }
}

/// How the fake answers every search until told otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YandexMode {
    /// Checks the request and answers the configured results.
    Normal,
    /// 401 `Unauthenticated`, whatever the key.
    Unauthorized,
    /// 429 with `Retry-After: 20`.
    RateLimited,
    /// 500 `Internal`.
    ServerError,
    /// 200 with an HTML error page instead of JSON.
    GarbageNotJson,
    /// 200 JSON whose `rawData` is not base64.
    GarbageBase64,
    /// 200 JSON whose `rawData` decodes to broken XML.
    GarbageXml,
    /// Records the request and never answers (an hour's delay).
    Hang,
}

struct YandexState {
    results: HashMap<String, Vec<FakeDoc>>,
    /// Answered for a query without results of its own.
    fallback: Vec<FakeDoc>,
    mode: YandexMode,
    searches: HashMap<String, usize>,
}

/// A fake Yandex Cloud Search API.
pub struct FakeYandexSearch {
    server: FakeServer,
    state: Arc<Mutex<YandexState>>,
}

impl Deref for FakeYandexSearch {
    type Target = FakeServer;

    fn deref(&self) -> &FakeServer {
        &self.server
    }
}

impl FakeYandexSearch {
    /// The API key the fake accepts.
    pub const API_KEY: &'static str = "AQVNfake-search-key-000000000000000000000";
    /// The folder the key may search in.
    pub const FOLDER_ID: &'static str = "b1gfakefolder0000000";
    /// The path searches go to.
    pub const PATH: &'static str = "/v2/web/search";

    pub async fn start() -> FakeYandexSearch {
        let state = Arc::new(Mutex::new(YandexState {
            results: HashMap::new(),
            fallback: Vec::new(),
            mode: YandexMode::Normal,
            searches: HashMap::new(),
        }));
        let handler_state = state.clone();
        let handler: Handler = Arc::new(move |req| handle(&handler_state, req));
        FakeYandexSearch { server: FakeServer::start(handler).await, state }
    }

    /// The base URL, as `YANDEX_SEARCH_API_URL` takes it.
    pub fn base_url(&self) -> String {
        self.url()
    }

    /// The results answered for `query` (trimmed, exact text).
    pub fn set_results(&self, query: &str, docs: Vec<FakeDoc>) {
        lock(&self.state).results.insert(query.trim().to_string(), docs);
    }

    /// The results answered for any query that has none of its own.
    pub fn set_fallback_results(&self, docs: Vec<FakeDoc>) {
        lock(&self.state).fallback = docs;
    }

    /// How every later search is answered.
    pub fn set_mode(&self, mode: YandexMode) {
        lock(&self.state).mode = mode;
        self.server.set_latency(if mode == YandexMode::Hang { Duration::from_secs(3600) } else { Duration::ZERO });
    }

    /// Searches received for `query` (any outcome).
    pub fn searches(&self, query: &str) -> usize {
        lock(&self.state).searches.get(query.trim()).copied().unwrap_or(0)
    }

    /// Searches received for any query.
    pub fn total_searches(&self) -> usize {
        lock(&self.state).searches.values().sum()
    }

    /// The JSON bodies of the searches received, oldest first.
    pub fn search_bodies(&self) -> Vec<Value> {
        self.requests_to(Self::PATH).into_iter().map(|r| r.body).collect()
    }

    /// Yandex Cloud's error answer for `status` (gRPC-gateway shape).
    pub fn error(status: u16) -> Reply {
        let body = |code: u16, message: &str| json!({"code": code, "message": message, "details": [{"@type": "type.googleapis.com/google.rpc.RequestInfo", "requestId": format!("fake-{}", next_seq())}]});
        match status {
            400 => Reply::json(400, body(3, "Request validation error")),
            401 => Reply::json(401, body(16, "Unauthenticated")),
            403 => Reply::json(403, body(7, "Permission denied")),
            429 => Reply::json(429, body(8, "Quota limit searchapi.webSearch.requestsRate exceeded"))
                .with_header("retry-after", "20"),
            other => Reply::json(other, body(13, "Internal")),
        }
    }

    /// The Yandex XML answer for `query` with `docs` (the first `groups` of them).
    pub fn xml(query: &str, docs: &[FakeDoc], groups: usize) -> String {
        let shown = &docs[..docs.len().min(groups)];
        let mut xml = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<yandexsearch version=\"1.0\">\n<request><query>{}</query><page>0</page>\
             <sortby order=\"descending\" priority=\"no\">rlv</sortby><maxpassages>2</maxpassages>\
             <groupings><groupby attr=\"\" mode=\"flat\" groups-on-page=\"{groups}\" docs-in-group=\"1\" curcateg=\"-1\"/></groupings></request>\n\
             <response date=\"{}\">\n<reqid>{}-fake-{}</reqid>\n",
            escape(query),
            Utc::now().format("%Y%m%dT%H%M%S"),
            Utc::now().timestamp_millis(),
            next_seq(),
        );
        if shown.is_empty() {
            xml.push_str("<error code=\"15\">Искомая комбинация слов нигде не встречается</error>\n</response>\n</yandexsearch>\n");
            return xml;
        }
        let found = docs.len() * 37;
        xml.push_str(&format!(
            "<found priority=\"phrase\">{found}</found><found priority=\"strict\">{found}</found><found priority=\"all\">{found}</found>\n\
             <found-human>Нашлось {found} результатов</found-human>\n<results>\n\
             <grouping attr=\"\" mode=\"flat\" groups-on-page=\"{groups}\" docs-in-group=\"1\" curcateg=\"-1\">\n\
             <found priority=\"all\">{}</found><page first=\"1\" last=\"{}\">0</page>\n",
            docs.len(),
            shown.len()
        ));
        for doc in shown {
            let passages: String = doc.passages_xml.iter().map(|p| format!("<passage>{p}</passage>")).collect();
            xml.push_str(&format!(
                "<group><categ attr=\"\" name=\"\"/><doccount>1</doccount><relevance/>\
                 <doc id=\"Z{:016X}\"><relevance/><url>{}</url><domain>{}</domain><title>{}</title>\
                 <modtime>20250301T000000</modtime><size>48211</size><charset>utf-8</charset>\
                 <passages>{passages}</passages><properties><_PassagesType>0</_PassagesType><lang>ru</lang></properties>\
                 <mime-type>text/html</mime-type>\
                 <saved-copy-url>https://hghltd.yandex.net/yandbtm?fmode=inject&amp;url={}&amp;tld=ru&amp;lang=ru&amp;l10n=ru&amp;mime=html&amp;keyno=0</saved-copy-url>\
                 </doc></group>\n",
                next_seq(),
                escape(&doc.url),
                escape(&doc.domain),
                doc.title_xml,
                escape(&doc.url),
            ));
        }
        xml.push_str("</grouping>\n</results>\n</response>\n</yandexsearch>\n");
        xml
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn handle(state: &Mutex<YandexState>, req: &RecordedRequest) -> Reply {
    if req.path != FakeYandexSearch::PATH {
        return Reply::json(404, json!({"code": 5, "message": "Not Found", "details": []}));
    }
    if req.method != "POST" {
        return Reply::json(405, json!({"code": 12, "message": "Method Not Allowed", "details": []}));
    }
    let query = req.body.pointer("/query/queryText").and_then(Value::as_str).unwrap_or_default().trim().to_string();
    let mode = {
        let mut state = lock(state);
        *state.searches.entry(query.clone()).or_default() += 1;
        state.mode
    };
    match mode {
        YandexMode::Normal | YandexMode::Hang => {}
        YandexMode::Unauthorized => return FakeYandexSearch::error(401),
        YandexMode::RateLimited => return FakeYandexSearch::error(429),
        YandexMode::ServerError => return FakeYandexSearch::error(500),
        YandexMode::GarbageNotJson => {
            return Reply::html(200, "<html><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>");
        }
        YandexMode::GarbageBase64 => return Reply::json(200, json!({"rawData": "%%% this is not base64 %%%"})),
        YandexMode::GarbageXml => {
            let broken = "<yandexsearch><response><results><grouping><group><doc><url>https://x.ru";
            return Reply::json(200, json!({"rawData": base64::engine::general_purpose::STANDARD.encode(broken)}));
        }
    }
    if req.header("authorization") != Some(&format!("Api-Key {}", FakeYandexSearch::API_KEY)) {
        return FakeYandexSearch::error(401);
    }
    if req.header("content-type").is_none_or(|ct| !ct.starts_with("application/json")) {
        return Reply::json(400, json!({"code": 3, "message": "Content-Type must be application/json", "details": []}));
    }
    if let Err(problem) = check_body(&req.body) {
        return Reply::json(
            400,
            json!({"code": 3, "message": format!("Request validation error: {problem}"), "details": []}),
        );
    }
    if req.body.get("folderId").and_then(Value::as_str) != Some(FakeYandexSearch::FOLDER_ID) {
        return FakeYandexSearch::error(403);
    }
    let groups = req.body.pointer("/groupSpec/groupsOnPage").and_then(as_count).unwrap_or(10) as usize;
    let docs = {
        let state = lock(state);
        state.results.get(&query).cloned().unwrap_or_else(|| state.fallback.clone())
    };
    let xml = FakeYandexSearch::xml(&query, &docs, groups);
    Reply::json(200, json!({"rawData": base64::engine::general_purpose::STANDARD.encode(xml)}))
}

/// An integer given as a JSON number or a string of digits (proto3 JSON allows both).
fn as_count(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str()?.parse().ok())
}

/// The checks the real API makes on a web search body.
fn check_body(body: &Value) -> Result<(), String> {
    let text = |pointer: &str| body.pointer(pointer).and_then(Value::as_str);
    let one_of = |pointer: &str, allowed: &[&str]| match text(pointer) {
        Some(v) if allowed.contains(&v) => Ok(()),
        None => Ok(()),
        Some(v) => Err(format!("{pointer}: unknown value {v}")),
    };
    match text("/query/searchType") {
        Some(
            "SEARCH_TYPE_RU" | "SEARCH_TYPE_TR" | "SEARCH_TYPE_COM" | "SEARCH_TYPE_KK" | "SEARCH_TYPE_BE"
            | "SEARCH_TYPE_UZ",
        ) => {}
        other => return Err(format!("query.searchType: {other:?}")),
    }
    match text("/query/queryText") {
        Some(q) if !q.trim().is_empty() && q.chars().count() <= 400 => {}
        _ => return Err("query.queryText: required, at most 400 characters".into()),
    }
    one_of("/query/familyMode", &["FAMILY_MODE_MODERATE", "FAMILY_MODE_NONE", "FAMILY_MODE_STRICT"])?;
    if let Some(page) = body.pointer("/query/page")
        && as_count(page).is_none()
    {
        return Err("query.page: not an integer".into());
    }
    one_of("/sortSpec/sortMode", &["SORT_MODE_BY_RELEVANCE", "SORT_MODE_BY_TIME"])?;
    one_of("/groupSpec/groupMode", &["GROUP_MODE_FLAT", "GROUP_MODE_DEEP"])?;
    if let Some(groups) = body.pointer("/groupSpec/groupsOnPage")
        && !as_count(groups).is_some_and(|n| (1..=100).contains(&n))
    {
        return Err("groupSpec.groupsOnPage: 1..100".into());
    }
    if let Some(docs) = body.pointer("/groupSpec/docsInGroup")
        && !as_count(docs).is_some_and(|n| (1..=3).contains(&n))
    {
        return Err("groupSpec.docsInGroup: 1..3".into());
    }
    if let Some(passages) = body.get("maxPassages")
        && !as_count(passages).is_some_and(|n| (1..=5).contains(&n))
    {
        return Err("maxPassages: 1..5".into());
    }
    if text("/folderId").is_none_or(str::is_empty) {
        return Err("folderId: required".into());
    }
    if let Some(region) = body.get("region")
        && !region.as_str().is_some_and(|r| r.chars().all(|c| c.is_ascii_digit()))
    {
        return Err("region: a region id string".into());
    }
    Ok(())
}
