//! Listing pages over HTTP: one bounded GET per page.
//!
//! Every fetch has one deadline for connecting, redirects and the body; the body is read up to a
//! size cap; the request looks like a browser's (the sites answer bots with captchas). A URL
//! whose domain is listed in `PRICE_SITE_ORIGINS` is fetched from its origin with the same path
//! and query, and redirects are followed by hand so a redirect inside the origin stays there while
//! the page keeps its real URL. Bodies are decoded from the charset the answer names (header, BOM
//! or `<meta charset>`); undeclared bytes that are not UTF-8 are read as windows-1251, the usual
//! legacy charset of Russian sites. Failures are typed ([`FetchError`]) so the caller can record
//! why a page gave nothing.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use encoding_rs::Encoding;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};

use super::sites::site_of;
use super::{PriceSourceSettings, SiteOrigins};

/// The User-Agent of a desktop Chrome: listing sites answer unknown agents with captchas.
pub const USER_AGENT: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
const ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
const ACCEPT_LANGUAGE: &str = "ru-RU,ru;q=0.9,en;q=0.5";
/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 5;

/// Why a page gave no HTML.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("`{url}` is not an http(s) URL")]
    InvalidUrl { url: String },
    #[error("the page answered HTTP {status}")]
    Status { status: u16, retry_after: Option<Duration> },
    #[error("no complete answer within {}s", after.as_secs_f32())]
    Timeout { after: Duration },
    #[error("the page is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the answer is not an HTML page: {reason}")]
    NotHtml { content_type: Option<String>, reason: String },
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
    #[error("could not reach the site: {reason}")]
    Unreachable { reason: String },
}

impl FetchError {
    /// A short stable name for metrics and events (`status`, `timeout`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::InvalidUrl { .. } => "invalid_url",
            FetchError::Status { .. } => "status",
            FetchError::Timeout { .. } => "timeout",
            FetchError::TooLarge { .. } => "too_large",
            FetchError::NotHtml { .. } => "not_html",
            FetchError::TooManyRedirects => "too_many_redirects",
            FetchError::Unreachable { .. } => "unreachable",
        }
    }

    /// Whether trying the same page again later may help.
    pub fn is_retryable(&self) -> bool {
        match self {
            FetchError::Status { status, .. } => *status == 429 || *status >= 500,
            FetchError::Timeout { .. } | FetchError::Unreachable { .. } => true,
            _ => false,
        }
    }
}

/// A fetched and decoded page.
#[derive(Debug, Clone)]
pub struct FetchedPage {
    /// The page's real URL, after redirects (links are resolved against it).
    pub url: Url,
    /// The URL actually requested last (differs from `url` under `PRICE_SITE_ORIGINS`).
    pub fetched_from: Url,
    /// The real domain, without `www.`.
    pub site: String,
    pub status: u16,
    pub content_type: Option<String>,
    /// The charset the body was decoded from (`UTF-8`, `windows-1251`, …).
    pub charset: &'static str,
    pub html: String,
    /// Size of the body as received.
    pub bytes: usize,
    pub elapsed: Duration,
}

/// Fetches listing pages. Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct PageFetcher {
    http: reqwest::Client,
    origins: SiteOrigins,
    timeout: Duration,
    max_bytes: usize,
}

impl PageFetcher {
    /// A fetcher with its own HTTP client (redirects are followed by hand).
    pub fn new(settings: &PriceSourceSettings) -> Result<Self, reqwest::Error> {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(ACCEPT));
        headers.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static(ACCEPT_LANGUAGE));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.page_timeout.min(Duration::from_secs(5)))
            .user_agent(USER_AGENT)
            .default_headers(headers)
            .build()?;
        Ok(PageFetcher {
            http,
            origins: settings.site_origins.clone(),
            timeout: settings.page_timeout,
            max_bytes: settings.page_max_bytes,
        })
    }

    /// The domain-to-origin mapping in use.
    pub fn origins(&self) -> &SiteOrigins {
        &self.origins
    }

    /// The deadline of one page.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Fetches the listing page at `url` (its real URL).
    pub async fn fetch(&self, url: &str) -> Result<FetchedPage, FetchError> {
        let real = listing_url(url)?;
        let started = Instant::now();
        let result = match tokio::time::timeout(self.timeout, self.fetch_following(real.clone(), started)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout { after: self.timeout }),
        };
        match &result {
            Ok(page) => tracing::debug!(
                site = %page.site, status = page.status, bytes = page.bytes, charset = page.charset,
                elapsed_ms = page.elapsed.as_millis() as u64, "listing page fetched"
            ),
            Err(error) => tracing::debug!(site = %site_of(&real), error = %error, "listing page not fetched"),
        }
        result
    }

    async fn fetch_following(&self, mut real: Url, started: Instant) -> Result<FetchedPage, FetchError> {
        let mut target = self.origins.map(&real);
        for _ in 0..=MAX_REDIRECTS {
            let mut request = self.http.get(target.clone());
            if target.origin() != real.origin()
                && let Some(host) = real.host_str()
            {
                // Lets a replica serving several sites from one origin tell them apart.
                request = request.header("X-Forwarded-Host", host).header("X-Forwarded-Proto", real.scheme());
            }
            let response = request.send().await.map_err(transport_error)?;
            let status = response.status();
            if status.is_redirection()
                && let Some(location) = response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok())
            {
                let next = target
                    .join(location.trim())
                    .map_err(|_| FetchError::Status { status: status.as_u16(), retry_after: None })?;
                (real, target) = self.redirected(&real, &target, next);
                continue;
            }
            if !status.is_success() {
                return Err(FetchError::Status {
                    status: status.as_u16(),
                    retry_after: retry_after(&response, status),
                });
            }
            let content_type =
                response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
            if let Some(ct) = &content_type
                && !is_text_type(ct)
            {
                return Err(FetchError::NotHtml {
                    content_type: content_type.clone(),
                    reason: format!("the content type is {}", ct.split(';').next().unwrap_or(ct).trim()),
                });
            }
            let body = read_capped(response, self.max_bytes).await.map_err(|e| match e {
                ReadError::TooLarge => FetchError::TooLarge { limit: self.max_bytes },
                ReadError::Transport(e) => transport_error(e),
            })?;
            let (html, charset) = decode_html(&body, content_type.as_deref());
            if !looks_like_html(&html) {
                return Err(FetchError::NotHtml { content_type, reason: "the body is not HTML".into() });
            }
            return Ok(FetchedPage {
                site: site_of(&real),
                url: real,
                fetched_from: target,
                status: status.as_u16(),
                content_type,
                charset,
                bytes: body.len(),
                html,
                elapsed: started.elapsed(),
            });
        }
        Err(FetchError::TooManyRedirects)
    }

    /// The (real, target) pair after a redirect from `target` to `next`: a redirect within the
    /// origin moves the real URL along the same path; any other goes to `next` (mapped again).
    fn redirected(&self, real: &Url, target: &Url, next: Url) -> (Url, Url) {
        if target.origin() != real.origin()
            && next.origin() == target.origin()
            && let Some(origin) = self.origins.origin_for(real)
        {
            let prefix = origin.path().trim_end_matches('/');
            let path = next.path().strip_prefix(prefix).filter(|p| p.starts_with('/')).unwrap_or(next.path());
            let mut moved = real.clone();
            moved.set_path(path);
            moved.set_query(next.query());
            moved.set_fragment(None);
            return (moved, next);
        }
        let mapped = self.origins.map(&next);
        (next, mapped)
    }
}

/// A listing URL: absolute http(s) with a host.
fn listing_url(raw: &str) -> Result<Url, FetchError> {
    match Url::parse(raw.trim()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => Ok(url),
        _ => Err(FetchError::InvalidUrl { url: raw.chars().take(200).collect() }),
    }
}

fn transport_error(error: reqwest::Error) -> FetchError {
    if error.is_timeout() {
        // Only the connect timeout fires here; the page deadline is the caller's.
        return FetchError::Unreachable { reason: "the connection timed out".into() };
    }
    if error.is_connect() {
        return FetchError::Unreachable { reason: "the connection was refused or failed".into() };
    }
    FetchError::Unreachable { reason: error.without_url().to_string() }
}

fn retry_after(response: &reqwest::Response, status: StatusCode) -> Option<Duration> {
    if status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::SERVICE_UNAVAILABLE {
        return None;
    }
    retry_after_header(response.headers())
}

/// The `Retry-After` header in seconds (an HTTP date counts from now).
pub(crate) fn retry_after_header(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&chrono::Utc);
    (when - chrono::Utc::now()).to_std().ok()
}

/// Why a body could not be read whole.
pub(crate) enum ReadError {
    TooLarge,
    Transport(reqwest::Error),
}

/// Reads a body of at most `max` bytes (a longer one is abandoned as soon as it is seen).
pub(crate) async fn read_capped(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, ReadError> {
    if response.content_length().is_some_and(|len| len > max as u64) {
        return Err(ReadError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Transport)? {
        if body.len() + chunk.len() > max {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// HTML and plain text (some servers label HTML so); anything else is not a listing page.
fn is_text_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    matches!(essence.as_str(), "text/html" | "application/xhtml+xml" | "text/plain" | "")
}

static META_CHARSET: LazyLock<regex::bytes::Regex> = LazyLock::new(|| {
    regex::bytes::Regex::new(r#"(?i)<meta[^>]+charset\s*=\s*["']?\s*([a-z0-9_\-:.]+)"#).expect("valid regex")
});

/// Decodes a page: BOM, else the header's charset, else `<meta charset>` in the first 4 KiB,
/// else UTF-8 when the bytes are UTF-8, else windows-1251. Answers the text and the charset name.
pub fn decode_html(bytes: &[u8], content_type: Option<&str>) -> (String, &'static str) {
    let encoding = Encoding::for_bom(bytes)
        .map(|(encoding, _)| encoding)
        .or_else(|| content_type.and_then(charset_param).and_then(|label| Encoding::for_label(label.as_bytes())))
        .or_else(|| {
            let head = &bytes[..bytes.len().min(4096)];
            let label = META_CHARSET.captures(head)?.get(1)?.as_bytes();
            // A document that could be read as ASCII cannot be UTF-16 (HTML's rule).
            Encoding::for_label(label)
                .map(|e| if e == encoding_rs::UTF_16LE || e == encoding_rs::UTF_16BE { encoding_rs::UTF_8 } else { e })
        })
        .unwrap_or_else(|| {
            if std::str::from_utf8(bytes).is_ok() { encoding_rs::UTF_8 } else { encoding_rs::WINDOWS_1251 }
        });
    let (text, used, _) = encoding.decode(bytes);
    (text.into_owned(), used.name())
}

fn charset_param(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.trim().eq_ignore_ascii_case("charset").then(|| value.trim().trim_matches(['"', '\'']))
    })
}

/// Whether decoded text is plausibly an HTML document (not binary or random bytes).
pub fn looks_like_html(text: &str) -> bool {
    let head: String = text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']).chars().take(4096).collect();
    if head.is_empty() || head.contains('\0') {
        return false;
    }
    let replaced = head.chars().filter(|c| *c == '\u{fffd}').count();
    if replaced * 20 > head.chars().count() {
        return false;
    }
    let lower = head.to_lowercase();
    lower.starts_with('<') && (lower.starts_with("<!doctype") || lower.starts_with("<html") || lower.contains("</"))
        || ["<html", "<body", "<head", "<div", "<table", "<p>", "<p "].iter().any(|tag| lower.contains(tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charset_from_header_meta_bom_or_bytes() {
        let (cp1251, _, _) = encoding_rs::WINDOWS_1251.encode("<p>АКПП 85 000 руб.</p>");
        let (text, charset) = decode_html(&cp1251, Some("text/html; charset=windows-1251"));
        assert_eq!((text.as_str(), charset), ("<p>АКПП 85 000 руб.</p>", "windows-1251"));

        let with_meta = [
            b"<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=Windows-1251\">".as_slice(),
            &cp1251,
        ]
        .concat();
        let (text, charset) = decode_html(&with_meta, Some("text/html"));
        assert!(text.ends_with("<p>АКПП 85 000 руб.</p>"), "{text}");
        assert_eq!(charset, "windows-1251");

        let (text, charset) = decode_html(&cp1251, None);
        assert_eq!((text.as_str(), charset), ("<p>АКПП 85 000 руб.</p>", "windows-1251"), "undeclared non-UTF-8 bytes");

        let utf8 = "<p>Коробка 90 000 ₽</p>".as_bytes();
        assert_eq!(decode_html(utf8, None), ("<p>Коробка 90 000 ₽</p>".to_string(), "UTF-8"));
        let bom = [b"\xEF\xBB\xBF".as_slice(), utf8].concat();
        assert_eq!(decode_html(&bom, Some("text/html; charset=windows-1251")).1, "UTF-8", "a BOM wins over the header");
        let meta16 = b"<meta charset=\"utf-16\"><p>x</p>";
        assert_eq!(decode_html(meta16, None).1, "UTF-8");
    }

    #[test]
    fn html_sniffing() {
        assert!(looks_like_html("<!DOCTYPE html><html><body></body></html>"));
        assert!(looks_like_html("\n  <div class=\"x\">АКПП</div>"));
        assert!(looks_like_html("Привет <p>мир</p>"));
        assert!(!looks_like_html("{\"error\":\"not found\"}"));
        assert!(!looks_like_html("\u{0}\u{1}binary<html>"));
        assert!(!looks_like_html(""));
        assert!(!looks_like_html(&"\u{fffd}".repeat(100)));
        assert!(!looks_like_html("random garbage ☃ with no markup at all"));
    }

    #[test]
    fn content_types() {
        assert!(is_text_type("text/html; charset=utf-8"));
        assert!(is_text_type("TEXT/HTML"));
        assert!(is_text_type("application/xhtml+xml"));
        assert!(!is_text_type("application/json"));
        assert!(!is_text_type("image/jpeg"));
        assert_eq!(charset_param("text/html; Charset=\"windows-1251\""), Some("windows-1251"));
        assert_eq!(charset_param("text/html"), None);
    }

    #[test]
    fn errors_say_what_happened() {
        assert_eq!(FetchError::Status { status: 500, retry_after: None }.to_string(), "the page answered HTTP 500");
        assert_eq!(
            FetchError::Timeout { after: Duration::from_millis(1500) }.to_string(),
            "no complete answer within 1.5s"
        );
        assert!(FetchError::Status { status: 503, retry_after: None }.is_retryable());
        assert!(!FetchError::Status { status: 404, retry_after: None }.is_retryable());
        assert!(!FetchError::TooLarge { limit: 1 }.is_retryable());
        assert_eq!(listing_url("ftp://x.ru/a"), Err(FetchError::InvalidUrl { url: "ftp://x.ru/a".into() }));
        assert!(listing_url(" https://www.avito.ru/a?q=1 ").is_ok());
    }
}
