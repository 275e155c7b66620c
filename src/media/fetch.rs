//! Downloading an attachment from its provider: GREEN-API's `downloadUrl`, Telegram's `getFile`
//! then the file path, WhatsApp Cloud's media id then its URL (both with the bearer token). The
//! body is read up to the size limit and no further: a file over it is refused without being
//! read whole, and nothing of it is kept.

use bytes::{Bytes, BytesMut};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

/// Why a download did not give a file.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Larger than the limit (`size` when the provider said).
    #[error("the file is larger than the limit")]
    TooLarge { size: Option<u64> },
    /// The provider will not give it (gone, refused): trying again will not help.
    #[error("the provider refused the file: {0}")]
    Permanent(String),
    /// Worth trying again (5xx, 429, timeout, network).
    #[error("the provider is unavailable: {0}")]
    Transient(String),
}

/// Where a file is and how to ask for it.
pub enum Source<'a> {
    /// A direct URL (GREEN-API `downloadUrl`).
    Url(&'a str),
    /// A Telegram `file_id` and the bot's token.
    Telegram { api_url: &'a str, token: &'a SecretString, file_id: &'a str },
    /// A WhatsApp Cloud media id and the access token.
    Whatsapp { api_url: &'a str, token: &'a SecretString, media_id: &'a str },
}

fn status_error(status: reqwest::StatusCode, what: &str) -> FetchError {
    if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
        FetchError::Transient(format!("{what} answered {status}"))
    } else {
        FetchError::Permanent(format!("{what} answered {status}"))
    }
}

fn network(e: reqwest::Error, what: &str) -> FetchError {
    FetchError::Transient(format!("{what}: {}", if e.is_timeout() { "timed out" } else { "network error" }))
}

/// Reads a response body up to `max` bytes.
async fn body(resp: reqwest::Response, max: u64) -> Result<Bytes, FetchError> {
    if let Some(len) = resp.content_length()
        && len > max
    {
        return Err(FetchError::TooLarge { size: Some(len) });
    }
    let mut resp = resp;
    let mut out = BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| network(e, "the download"))? {
        if (out.len() + chunk.len()) as u64 > max {
            return Err(FetchError::TooLarge { size: None });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

async fn get(
    http: &reqwest::Client,
    url: &str,
    bearer: Option<&SecretString>,
) -> Result<reqwest::Response, FetchError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| FetchError::Permanent("the file URL is not a URL".into()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(FetchError::Permanent("the file URL is not http(s)".into()));
    }
    let mut rb = http.get(parsed);
    if let Some(t) = bearer {
        rb = rb.bearer_auth(t.expose_secret());
    }
    let resp = rb.send().await.map_err(|e| network(e, "the download"))?;
    if !resp.status().is_success() {
        return Err(status_error(resp.status(), "the provider"));
    }
    Ok(resp)
}

async fn json(http: &reqwest::Client, url: &str, bearer: Option<&SecretString>) -> Result<Value, FetchError> {
    let resp = get(http, url, bearer).await?;
    let bytes = body(resp, 1024 * 1024).await?;
    serde_json::from_slice(&bytes).map_err(|_| FetchError::Permanent("the provider's answer is not JSON".into()))
}

/// Downloads a file, at most `max` bytes.
pub async fn download(http: &reqwest::Client, source: Source<'_>, max: u64) -> Result<Bytes, FetchError> {
    match source {
        Source::Url(url) => body(get(http, url, None).await?, max).await,
        Source::Telegram { api_url, token, file_id } => {
            let base = api_url.trim_end_matches('/');
            let secret = token.expose_secret();
            let meta = json(http, &format!("{base}/bot{secret}/getFile?file_id={}", urlencode(file_id)), None).await?;
            let result = &meta["result"];
            if let Some(size) = result["file_size"].as_u64()
                && size > max
            {
                return Err(FetchError::TooLarge { size: Some(size) });
            }
            let path = result["file_path"]
                .as_str()
                .ok_or_else(|| FetchError::Permanent("getFile gave no file_path".into()))?;
            body(get(http, &format!("{base}/file/bot{secret}/{path}"), None).await?, max).await
        }
        Source::Whatsapp { api_url, token, media_id } => {
            let base = api_url.trim_end_matches('/');
            let meta = json(http, &format!("{base}/{}", urlencode(media_id)), Some(token)).await?;
            if let Some(size) = meta["file_size"].as_u64()
                && size > max
            {
                return Err(FetchError::TooLarge { size: Some(size) });
            }
            let url = meta["url"].as_str().ok_or_else(|| FetchError::Permanent("the media has no url".into()))?;
            body(get(http, url, Some(token)).await?, max).await
        }
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
