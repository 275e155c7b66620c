//! Dashboard login and logout (outside `/api`: login is what makes `/api` reachable).

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde::Deserialize;

use crate::auth::attempts::{self, Account};
use crate::auth::{passwords, sessions};
use crate::http::{ApiError, AppState};
use crate::infra::ratelimit::{self, Limit};

#[derive(Deserialize)]
pub struct Login {
    email: String,
    password: String,
}

/// The client's address: the last `X-Forwarded-For` hop when behind a trusted proxy, else the peer.
/// The last hop of the last header line is the one the trusted proxy added: some proxies append a
/// line of their own rather than extend the client's, and whatever the client sent comes first.
pub fn client_ip(headers: &HeaderMap, peer: Option<SocketAddr>, trust_proxy: bool) -> String {
    if trust_proxy
        && let Some(ip) = headers
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next_back())
            .map(str::trim)
            .filter(|s| !s.is_empty())
    {
        return ip.to_string();
    }
    peer.map(|p| p.ip().to_string()).unwrap_or_else(|| "unknown".into())
}

fn invalid_credentials() -> ApiError {
    // One answer for a wrong password, an unknown email, a locked or a disabled account.
    ApiError::invalid_with_status(
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        "the email or password is wrong, or the account is temporarily locked",
    )
}

fn cookie_header(state: &AppState, value: &str, max_age_s: i64) -> HeaderValue {
    let secure = state.settings.secure_cookies();
    let mut c =
        format!("{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_s}", state.settings.session_cookie());
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).expect("cookie value is ASCII")
}

/// Verifies under the process's hashing cap; busy becomes the 503 answer.
pub async fn verify_or_busy(limits: &crate::config::Limits, password: String, phc: String) -> Result<bool, ApiError> {
    attempts::verify(limits, password, phc)
        .await
        .map_err(|e| if e.is::<attempts::Busy>() { ApiError::Busy } else { ApiError::Unexpected(e) })
}

/// A login that succeeded: who, and the CSRF token of the session set in the cookie.
#[derive(Debug, serde::Serialize)]
pub struct LoggedIn {
    pub user_id: uuid::Uuid,
    pub tenant_id: uuid::Uuid,
    pub role: String,
    pub must_change_password: bool,
    pub csrf_token: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let ip = client_ip(&headers, Some(peer), state.settings.trust_proxy);
    ratelimit::check(&state.redis, Limit::LoginPerIp, &ip, state.settings.limits.login_per_minute).await?;
    // JSON only: a cross-site form (text/plain, form-urlencoded) cannot post this, so another site
    // cannot log a visitor into an account of its choosing.
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(ApiError::invalid_with_status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the credentials as JSON with Content-Type: application/json",
        ));
    }
    let Login { email, password } = serde_json::from_slice(&body)
        .map_err(|_| ApiError::invalid("invalid_json", "send {\"email\": \"...\", \"password\": \"...\"}"))?;
    let email = email.trim().to_lowercase();

    // The attempt is counted before the password is verified (see `auth::attempts`): parallel
    // guesses cannot get round the lockout, and a locked account costs no hashing.
    let limits = &state.settings.limits;
    let Some(counted) = attempts::count(&state.pool, limits, Account::Email(&email)).await? else {
        if !attempts::exists(&state.pool, &email).await? {
            // The same work for an unknown email as for a wrong password.
            verify_or_busy(limits, password, passwords::dummy_hash().to_string()).await?;
        }
        return Err(invalid_credentials());
    };
    if !verify_or_busy(limits, password, counted.password_hash.clone()).await? {
        return Err(invalid_credentials());
    }
    let attempts::Counted { id: user_id, tenant_id, role, must_change_password: must_change, .. } = counted;
    let mut tx = state.pool.begin().await?;
    attempts::succeeded(&mut tx, user_id).await?;
    sqlx::query("UPDATE users SET last_login_at = now() WHERE id = $1").bind(user_id).execute(&mut *tx).await?;
    let secret = state.settings.session_secret.expose_secret().as_bytes();
    let s = sessions::create(&mut tx, secret, user_id, tenant_id, state.settings.limits.session_ttl).await?;
    tx.commit().await?;
    let mut resp = Json(LoggedIn {
        user_id,
        tenant_id,
        role,
        must_change_password: must_change,
        csrf_token: s.csrf_token,
        expires_at: s.expires_at,
    })
    .into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        cookie_header(&state, &s.cookie_value, state.settings.limits.session_ttl.num_seconds()),
    );
    Ok(resp)
}

/// Ends the cookie's session (CSRF-checked like every unsafe cookie request).
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let caller = crate::http::authn::resolve(&state, &headers, &axum::http::Method::POST).await?;
    if !caller.is_session() {
        return Err(ApiError::invalid("not_a_session", "logout ends a dashboard session; revoke API tokens instead"));
    }
    let secret = state.settings.session_secret.expose_secret().as_bytes();
    if let Some(id) =
        crate::http::authn::cookie(&headers, state.settings.session_cookie()).and_then(|v| sessions::verify(secret, v))
    {
        sessions::revoke(&state.pool, &id).await?;
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(header::SET_COOKIE, cookie_header(&state, "", 0));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_ip_is_the_hop_the_trusted_proxy_added() {
        let peer: SocketAddr = "10.0.0.2:40000".parse().unwrap();
        let mut headers = HeaderMap::new();
        // The client's own (forged) header line first, the proxy's line after it.
        headers.append("x-forwarded-for", "6.6.6.6".parse().unwrap());
        headers.append("x-forwarded-for", "1.2.3.4, 203.0.113.9".parse().unwrap());
        assert_eq!(client_ip(&headers, Some(peer), true), "203.0.113.9");
        assert_eq!(client_ip(&headers, Some(peer), false), "10.0.0.2", "not trusted without TRUST_PROXY");
        assert_eq!(client_ip(&HeaderMap::new(), Some(peer), true), "10.0.0.2");
    }
}
