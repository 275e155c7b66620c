//! A fake classifieds site: serves the listing pages of `tests/fixtures/prices/` by path (with
//! the charset a page is written in), and per path can answer an error status, garbage, a
//! redirect, or nothing at all. Point `PRICE_SITE_ORIGINS` at it (`avito.ru=<url>,…`) so the
//! real sites' URLs are fetched from here.

use std::collections::HashMap;
use std::ops::Deref;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode, header};

use super::{FakeServer, Handler, RecordedRequest, Reply, lock};

/// A fake listing site.
pub struct FakeListingSites {
    server: FakeServer,
    pages: Arc<Mutex<HashMap<String, Reply>>>,
}

impl Deref for FakeListingSites {
    type Target = FakeServer;

    fn deref(&self) -> &FakeServer {
        &self.server
    }
}

impl FakeListingSites {
    pub async fn start() -> FakeListingSites {
        let pages: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
        let handler_pages = pages.clone();
        let handler: Handler = Arc::new(move |req| handle(&handler_pages, req));
        FakeListingSites { server: FakeServer::start(handler).await, pages }
    }

    /// The bytes of a fixture page of `tests/fixtures/prices/`.
    pub fn fixture(name: &str) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/prices").join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
    }

    /// Answers `path` (with `?query` to match only that query) with a fixture page; pages named
    /// `*_cp1251.html` are sent as windows-1251, the others as UTF-8.
    pub fn serve_fixture(&self, path: &str, fixture: &str) {
        let charset = if fixture.contains("cp1251") { "windows-1251" } else { "utf-8" };
        self.serve_bytes(path, &format!("text/html; charset={charset}"), Self::fixture(fixture));
    }

    /// Answers `path` with 200, `content_type` and `body`.
    pub fn serve_bytes(&self, path: &str, content_type: &str, body: impl Into<Bytes>) {
        let reply = Reply {
            status: StatusCode::OK,
            headers: vec![(header::CONTENT_TYPE, HeaderValue::from_str(content_type).expect("valid content type"))],
            body: body.into(),
        };
        self.serve(path, reply);
    }

    /// Answers `path` with `reply` (any status), until told otherwise.
    pub fn serve(&self, path: &str, reply: Reply) {
        lock(&self.pages).insert(path.to_string(), reply);
    }

    /// `path` answers the nginx 500 page.
    pub fn fail(&self, path: &str, status: u16) {
        self.serve(
            path,
            Reply::html(
                status,
                format!("<html><head><title>{status} Internal Server Error</title></head><body><center><h1>{status} Internal Server Error</h1></center><hr><center>nginx</center></body></html>"),
            ),
        );
    }

    /// `path` answers 200 `text/html` with bytes that are no page at all.
    pub fn garbage(&self, path: &str) {
        let noise: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        self.serve_bytes(path, "text/html", noise);
    }

    /// `path` redirects to `location` with `status` (301, 302, …).
    pub fn redirect(&self, path: &str, status: u16, location: &str) {
        self.serve(path, Reply::empty(status).with_header("location", location));
    }

    /// Requests to `path` are recorded and never answered (an hour's delay).
    pub fn hang(&self, path: &str) {
        self.serve_bytes(path, "text/html", "<html><body>too late</body></html>");
        self.set_latency_on(path, Duration::from_secs(3600));
    }

    /// Requests received for `path` (any query).
    pub fn hits(&self, path: &str) -> usize {
        self.requests().iter().filter(|r| r.path == path).count()
    }
}

fn handle(pages: &Mutex<HashMap<String, Reply>>, req: &RecordedRequest) -> Reply {
    if req.method != "GET" && req.method != "HEAD" {
        return Reply::html(405, "<html><body><h1>405 Not Allowed</h1></body></html>");
    }
    let pages = lock(pages);
    let with_query = req.query.as_ref().map(|q| format!("{}?{q}", req.path));
    with_query
        .and_then(|key| pages.get(&key))
        .or_else(|| pages.get(&req.path))
        .cloned()
        .unwrap_or_else(Reply::nginx_not_found)
}
