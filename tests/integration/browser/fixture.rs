//! Local stand-ins for podzamenu.ru and prof-rf: static files from `tests/fixtures/sites/<site>/`
//! served on 127.0.0.1, single-page-app style (extension-less paths get `index.html`), with knobs
//! for slow responses, HTTP errors and dropped connections.

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Behaviour switches of a running fixture site.
#[derive(Default)]
pub struct Knobs {
    /// `(path prefix, delay)`: requests whose path starts with the prefix wait this long first.
    delay: Mutex<Option<(String, Duration)>>,
    /// Non-zero: every request is answered with this status.
    status: AtomicU16,
    /// `(path prefix, times left, status)`: requests under the prefix fail with the status while
    /// times are left (`u32::MAX`: always).
    failures: Mutex<Option<(String, u32, u16)>>,
    /// New connections are closed without an answer.
    drop_connections: AtomicBool,
    /// Paths (with query) requested so far.
    requests: Mutex<Vec<String>>,
}

/// A fixture site on a random port; stopped on drop.
pub struct FixtureSite {
    addr: SocketAddr,
    knobs: Arc<Knobs>,
    stop: CancellationToken,
}

#[derive(Clone)]
struct SiteState {
    dir: Arc<PathBuf>,
    knobs: Arc<Knobs>,
}

impl FixtureSite {
    /// Serves `tests/fixtures/sites/<site>/`.
    pub async fn start(site: &str) -> FixtureSite {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sites").join(site);
        assert!(dir.join("index.html").is_file(), "fixture site {} is missing", dir.display());
        let knobs = Arc::new(Knobs::default());
        let state = SiteState { dir: Arc::new(dir), knobs: knobs.clone() };
        let app = Router::new().fallback(serve).with_state(state);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind fixture site");
        let addr = listener.local_addr().expect("fixture address");
        let stop = CancellationToken::new();
        let listener = DroppingListener { inner: listener, knobs: knobs.clone() };
        let shutdown = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await;
        });
        FixtureSite { addr, knobs, stop }
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Delays requests whose path starts with `prefix`.
    pub fn set_delay(&self, prefix: &str, delay: Duration) {
        *self.knobs.delay.lock().unwrap() = Some((prefix.to_owned(), delay));
    }

    /// Removes the delay.
    pub fn clear_delay(&self) {
        *self.knobs.delay.lock().unwrap() = None;
    }

    /// Answers every request with `status` (0 restores normal service).
    pub fn set_status(&self, status: u16) {
        self.knobs.status.store(status, Ordering::SeqCst);
    }

    /// Answers the next `times` requests whose path starts with `prefix` with `status`
    /// (`u32::MAX`: every one, until [`FixtureSite::clear_failures`]).
    pub fn fail_requests(&self, prefix: &str, times: u32, status: u16) {
        *self.knobs.failures.lock().unwrap() = Some((prefix.to_owned(), times, status));
    }

    /// Ends [`FixtureSite::fail_requests`].
    pub fn clear_failures(&self) {
        *self.knobs.failures.lock().unwrap() = None;
    }

    /// Closes new connections without answering.
    pub fn set_drop_connections(&self, on: bool) {
        self.knobs.drop_connections.store(on, Ordering::SeqCst);
    }

    /// Requests served so far (path and query).
    pub fn requests(&self) -> Vec<String> {
        self.knobs.requests.lock().unwrap().clone()
    }
}

impl Drop for FixtureSite {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Accepts connections unless the site is set to drop them.
struct DroppingListener {
    inner: TcpListener,
    knobs: Arc<Knobs>,
}

impl axum::serve::Listener for DroppingListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    if self.knobs.drop_connections.load(Ordering::SeqCst) {
                        drop(stream);
                        continue;
                    }
                    return (stream, addr);
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

async fn serve(State(state): State<SiteState>, request: Request<Body>) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let full = request.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| path.clone());
    state.knobs.requests.lock().unwrap().push(full);
    let delay = state.knobs.delay.lock().unwrap().clone();
    if let Some((prefix, delay)) = delay
        && path.starts_with(&prefix)
    {
        tokio::time::sleep(delay).await;
    }
    let mut status = state.knobs.status.load(Ordering::SeqCst);
    if let Some((prefix, left, code)) = state.knobs.failures.lock().unwrap().as_mut()
        && path.starts_with(prefix.as_str())
        && *left > 0
    {
        if *left != u32::MAX {
            *left -= 1;
        }
        status = *code;
    }
    if status != 0 {
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let body = format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{status}</title></head>\
             <body><h1>{status} Service Temporarily Unavailable</h1><p>nginx</p></body></html>"
        );
        return respond(code, "text/html; charset=utf-8", body.into_bytes());
    }
    let Some(file) = resolve(&state.dir, &path) else {
        return respond(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", b"not found".to_vec());
    };
    match tokio::fs::read(&file).await {
        Ok(bytes) => respond(StatusCode::OK, content_type(&file), bytes),
        Err(_) => respond(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", b"not found".to_vec()),
    }
}

/// The file for `path`: the file itself, or `index.html` for extension-less (app) routes.
fn resolve(dir: &Path, path: &str) -> Option<PathBuf> {
    let relative = Path::new(path.trim_start_matches('/'));
    if relative.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    let candidate = dir.join(relative);
    if candidate.is_file() {
        return Some(candidate);
    }
    let is_route = relative.extension().is_none();
    is_route.then(|| dir.join("index.html"))
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

fn respond(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // One request per connection, so dropping new connections takes the site down at once.
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
