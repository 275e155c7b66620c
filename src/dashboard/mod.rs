//! The operator dashboard: server-rendered pages at `/`, on the same origin as `/api`.
//!
//! Pages are askama templates compiled into the binary; the little behaviour a page has (live
//! updates over `/api/events/stream`, keyboard navigation, the audit slider) is one plain ES
//! module, embedded like the stylesheet under a content-hashed URL. Reads come from the read
//! models; every action is a form post (with the session's CSRF token) that runs the same
//! application command as the API, then redirects back to the page. See `docs/dashboard.md`.

pub mod admin;
pub mod assets;
pub mod audit;
pub mod conversation;
pub mod format;
pub mod i18n;
pub mod inbox;
pub mod leads;
pub mod login;
pub mod page;
pub mod session;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tower_http::timeout::TimeoutLayer;

use crate::http::AppState;

/// The Content-Security-Policy of every dashboard page: scripts, styles and connections only from
/// this origin, no inline script or style, no `eval`; images also from https (attachment previews
/// hosted by the messengers).
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; \
                       connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
                       form-action 'self'; frame-ancestors 'none'";

/// The dashboard's routes (merged into the application router).
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(inbox::page))
        .route("/inbox/rows", get(inbox::rows))
        .route("/login", get(login::form).post(login::submit))
        .route("/password", get(login::password_form).post(login::password_submit))
        .route("/logout", post(login::logout))
        .route("/c/{id}", get(conversation::page))
        .route("/c/{id}/live", get(conversation::live))
        .route("/c/{id}/reply", post(conversation::reply))
        .route("/c/{id}/act", post(conversation::act))
        .route("/c/{id}/read", post(conversation::read))
        .route("/c/{id}/retry/{reply}", post(conversation::retry))
        .route("/c/{id}/price/{lookup}/rerun", post(conversation::rerun_price))
        .route("/c/{id}/vehicle/{lookup}", post(conversation::vehicle))
        .route("/s/{id}/decide", post(conversation::decide))
        .route("/c/{id}/audit", get(audit::page))
        .route("/c/{id}/audit/state", get(audit::state))
        .route("/leads", get(leads::board))
        .route("/leads/{id}", get(leads::show))
        .route("/leads/{id}/act", post(leads::act))
        .route("/settings", get(admin::settings).post(admin::change))
        .route("/settings/tokens/{id}/revoke", post(admin::revoke_token))
        .route("/settings/channels/{id}/webhook", post(admin::reregister))
        .route("/ops", get(admin::operations))
        .route("/ops/dead-letters/{kind}/{id}/retry", post(admin::retry_dead_letter))
        .route("/assets/{file}", get(assets::serve))
        .layer(middleware::from_fn(security_headers))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, state.settings.request_timeout))
}

/// Security headers on every dashboard answer, HTML never cached, and the language cookie set
/// when the query chose a language.
async fn security_headers(req: Request, next: Next) -> Response {
    let chosen = i18n::Lang::from_query(req.uri().query());
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    let html = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/html"));
    if html && !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Some(lang) = chosen {
        let cookie = format!("{}={}; Path=/; SameSite=Lax; Max-Age=31536000", i18n::COOKIE, lang.code());
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            h.append(header::SET_COOKIE, v);
        }
    }
    resp
}
