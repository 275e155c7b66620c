//! The stylesheet and the script, embedded in the binary and served under URLs that carry a hash
//! of their content, so browsers may keep them for a year and still get a new version at once.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

const CSS: &str = include_str!("../../assets/dashboard/app.css");
const JS: &str = include_str!("../../assets/dashboard/app.js");

struct Asset {
    url: String,
    file: String,
    body: &'static str,
    content_type: &'static str,
}

fn asset(stem: &str, ext: &str, body: &'static str, content_type: &'static str) -> Asset {
    let hash = hex::encode(&Sha256::digest(body.as_bytes())[..5]);
    let file = format!("{stem}.{hash}.{ext}");
    Asset { url: format!("/assets/{file}"), file, body, content_type }
}

static ASSETS: LazyLock<[Asset; 2]> = LazyLock::new(|| {
    [asset("app", "css", CSS, "text/css; charset=utf-8"), asset("app", "js", JS, "text/javascript; charset=utf-8")]
});

/// URL of the stylesheet.
pub fn css_url() -> &'static str {
    &ASSETS[0].url
}

/// URL of the script (an ES module).
pub fn js_url() -> &'static str {
    &ASSETS[1].url
}

/// `GET /assets/{file}`: an embedded file by its hashed name (404 for any other name).
pub async fn serve(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.file == file) {
        Some(a) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(a.content_type)),
                (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable")),
            ],
            a.body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
