//! Authentication of `/api` requests and per-route permission checks.
//!
//! [`authenticate`] runs once for the whole `/api` tree: it turns a bearer token or a session
//! cookie into a [`Caller`] (401 otherwise), enforces CSRF for cookie-authenticated unsafe
//! requests and the per-tenant rate limit. [`guard`] runs per route with the permission the route
//! declared (403 when the caller's role lacks it).

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::auth::{AuthMethod, Caller, Permission, sessions, tokens};
use crate::http::{ApiError, AppState};
use crate::infra::ratelimit::{self, Limit};

/// Header carrying the CSRF token of a cookie session on unsafe requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Value of a cookie in the `Cookie` header.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The caller of a request, from its bearer token or session cookie.
pub async fn resolve(state: &AppState, headers: &HeaderMap, method: &Method) -> Result<Caller, ApiError> {
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let value = auth.to_str().map_err(|_| ApiError::Unauthorized)?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or(ApiError::Unauthorized)?
            .trim();
        return tokens::authenticate(&state.pool, token).await?.ok_or(ApiError::Unauthorized);
    }
    if let Some(value) = cookie(headers, state.settings.session_cookie()) {
        use secrecy::ExposeSecret;
        let secret = state.settings.session_secret.expose_secret().as_bytes();
        let id = sessions::verify(secret, value).ok_or(ApiError::Unauthorized)?;
        let live = sessions::lookup(&state.pool, &id).await?.ok_or(ApiError::Unauthorized)?;
        if !is_safe(method) {
            let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
            let ok = crate::auth::constant_time_eq(sent.as_bytes(), live.csrf_token.as_bytes());
            if !ok || sent.is_empty() {
                return Err(ApiError::invalid_with_status(
                    axum::http::StatusCode::FORBIDDEN,
                    "csrf_failed",
                    "the X-CSRF-Token header is missing or does not match the session",
                ));
            }
        }
        return Ok(live.caller);
    }
    Err(ApiError::Unauthorized)
}

/// Middleware for the `/api` tree: authenticates, checks CSRF and the tenant's rate limit.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Result<Response, ApiError> {
    let caller = resolve(&state, req.headers(), req.method()).await?;
    ratelimit::check(
        &state.redis,
        Limit::ApiPerTenant,
        &caller.tenant_id.to_string(),
        state.settings.limits.api_per_minute,
    )
    .await?;
    tracing::Span::current().record("tenant_id", tracing::field::display(caller.tenant_id));
    req.extensions_mut().insert(caller);
    Ok(next.run(req).await)
}

/// Per-route check of the declared permission (`None`: any authenticated caller).
pub async fn guard(
    permission: Option<Permission>,
    allow_pending_password: bool,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let caller = req.extensions().get::<Caller>().ok_or(ApiError::Unauthorized)?;
    if caller.must_change_password && !allow_pending_password {
        return Err(ApiError::invalid_with_status(
            axum::http::StatusCode::FORBIDDEN,
            "password_change_required",
            "replace the one-time password first (POST /api/me/password)",
        ));
    }
    if let Some(p) = permission
        && !caller.role.allows(p)
    {
        return Err(ApiError::Forbidden(format!(
            "the {} role does not have the {} permission",
            caller.role,
            p.as_str()
        )));
    }
    Ok(next.run(req).await)
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Caller>().cloned().ok_or(ApiError::Unauthorized)
    }
}

impl Caller {
    /// Whether this caller came in with a session cookie (and so may log out).
    pub fn is_session(&self) -> bool {
        self.method == AuthMethod::Session
    }
}
