//! Signing in and out, and replacing a one-time password. The form posts here; the credentials go
//! through the same login and password-change code as `/auth/login` and `/api/me/password`
//! (rate limit, lockout, session cookie), called as functions.

use std::net::SocketAddr;

use askama::Template;
use axum::Form;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::i18n::Lang;
use super::page::{self, Chrome};
use super::session::{self, PendingOperator, redirect};
use crate::http::{ApiError, ApiJson, AppState, auth_routes};

/// Cookie holding the login form's CSRF token (before there is a session to hold one).
const LOGIN_CSRF: &str = "aisales_login_csrf";

#[derive(Template)]
#[template(path = "dashboard/login.html")]
struct LoginPage {
    chrome: Chrome,
    csrf: String,
    next: String,
    email: String,
    error: Option<&'static str>,
}

/// Only a path of this site is a place to go back to.
fn safe_next(next: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") {
        next.to_string()
    } else {
        "/".to_string()
    }
}

fn login_page(lang: Lang, next: &str, email: &str, error: Option<&'static str>, status: StatusCode) -> Response {
    let csrf = crate::config::random_token(32);
    let mut resp = page::render(
        status,
        &LoginPage {
            chrome: Chrome::anonymous(lang),
            csrf: csrf.clone(),
            next: safe_next(next),
            email: email.into(),
            error,
        },
    );
    let cookie = format!("{LOGIN_CSRF}={csrf}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=3600");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

#[derive(Deserialize, Default)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

/// `GET /login`.
pub async fn form(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<NextQuery>,
) -> Response {
    let lang = Lang::of(uri.query(), &headers);
    if let Ok(Some(_)) = session::lookup(&state, &headers, lang).await {
        return redirect(&safe_next(&q.next));
    }
    login_page(lang, &q.next, "", None, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

/// Runs the API's login with `email` and `password` as the client at `peer`: the session cookie
/// and whether the password must be changed, or the failure's sentence.
async fn sign_in(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    email: &str,
    password: &str,
) -> Result<(HeaderValue, bool), (&'static str, StatusCode)> {
    let tr = Lang::of(None, headers).tr();
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for v in headers.get_all("x-forwarded-for") {
        h.append("x-forwarded-for", v.clone());
    }
    let body = serde_json::json!({ "email": email, "password": password }).to_string();
    match auth_routes::login(State(state.clone()), ConnectInfo(peer), h, Bytes::from(body)).await {
        Ok(resp) => {
            let cookie = resp.headers().get(header::SET_COOKIE).cloned();
            let bytes = axum::body::to_bytes(resp.into_body(), 64 * 1024).await.unwrap_or_default();
            let must_change = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["must_change_password"].as_bool())
                .unwrap_or(false);
            cookie.map(|c| (c, must_change)).ok_or((tr.server_error, StatusCode::INTERNAL_SERVER_ERROR))
        }
        Err(e) => Err(match e.status() {
            StatusCode::UNAUTHORIZED => (tr.login_failed, StatusCode::UNAUTHORIZED),
            StatusCode::TOO_MANY_REQUESTS => (tr.login_too_many, StatusCode::TOO_MANY_REQUESTS),
            s => {
                tracing::error!(error = %e, "dashboard sign-in failed");
                (tr.server_error, s)
            }
        }),
    }
}

/// `POST /login`.
pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let lang = Lang::of(uri.query(), &headers);
    let sent_csrf = crate::http::authn::cookie(&headers, LOGIN_CSRF).unwrap_or_default();
    if f.csrf.is_empty() || !crate::auth::constant_time_eq(sent_csrf.as_bytes(), f.csrf.as_bytes()) {
        return login_page(lang, &f.next, &f.email, Some(lang.tr().form_expired), StatusCode::FORBIDDEN);
    }
    match sign_in(&state, peer, &headers, &f.email, &f.password).await {
        Ok((cookie, must_change)) => {
            let to = if must_change { "/password".to_string() } else { safe_next(&f.next) };
            let mut resp = redirect(&to);
            resp.headers_mut().append(header::SET_COOKIE, cookie);
            resp
        }
        Err((sentence, status)) => login_page(lang, &f.next, &f.email, Some(sentence), status),
    }
}

#[derive(Template)]
#[template(path = "dashboard/password.html")]
struct PasswordPage {
    chrome: Chrome,
    error: Option<&'static str>,
}

/// `GET /password`.
pub async fn password_form(PendingOperator(op): PendingOperator) -> Response {
    page::ok(&PasswordPage { chrome: Chrome::of(&op, ""), error: None })
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    repeat_password: String,
}

/// `POST /password`: replaces the password (which ends every session of the user, as through the
/// API), then signs in again with the new one.
pub async fn password_submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    PendingOperator(op): PendingOperator,
    Form(f): Form<PasswordForm>,
) -> Response {
    let tr = op.lang.tr();
    let again = |error: &'static str, status: StatusCode| {
        page::render(status, &PasswordPage { chrome: Chrome::of(&op, ""), error: Some(error) })
    };
    if !op.csrf_ok(&f.csrf) {
        return again(tr.form_expired, StatusCode::FORBIDDEN);
    }
    if f.new_password != f.repeat_password {
        return again(tr.passwords_differ, StatusCode::BAD_REQUEST);
    }
    let body = serde_json::json!({ "current_password": f.current_password, "new_password": f.new_password });
    let body = match serde_json::from_value(body) {
        Ok(b) => b,
        Err(e) => return page::server_error(&op, e),
    };
    let changed = crate::http::api::me::change_password(State(state.clone()), op.caller.clone(), ApiJson(body)).await;
    match changed {
        Ok(_) => {}
        Err(ApiError::Coded { code: "weak_password", .. }) => return again(tr.weak_password, StatusCode::BAD_REQUEST),
        Err(ApiError::Coded { code: "wrong_password", .. }) => {
            return again(tr.wrong_current_password, StatusCode::FORBIDDEN);
        }
        Err(e) => return page::server_error(&op, e),
    }
    match sign_in(&state, peer, &headers, &op.email, &f.new_password).await {
        Ok((cookie, _)) => {
            let mut resp = redirect("/");
            resp.headers_mut().append(header::SET_COOKIE, cookie);
            resp
        }
        Err(_) => redirect("/login"),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout`: ends the session through the API's logout.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    PendingOperator(op): PendingOperator,
    Form(f): Form<CsrfForm>,
) -> Response {
    if !op.csrf_ok(&f.csrf) {
        return redirect("/");
    }
    let mut h = headers.clone();
    if let Ok(v) = HeaderValue::from_str(&op.csrf) {
        h.insert(crate::http::authn::CSRF_HEADER, v);
    }
    match auth_routes::logout(State(state), h).await {
        Ok(resp) => {
            let mut out = redirect("/login");
            if let Some(c) = resp.headers().get(header::SET_COOKIE) {
                out.headers_mut().append(header::SET_COOKIE, c.clone());
            }
            out
        }
        Err(e) => e.into_response(),
    }
}
