//! Who is looking at a page: the dashboard session (the same cookie session `/api` accepts),
//! redirects to the login page without one, and the CSRF check of every form.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use uuid::Uuid;

use super::i18n::Lang;
use crate::auth::{Actor, Caller, Permission, Role, sessions};
use crate::http::AppState;
use crate::store::EventMetadata;

/// A signed-in dashboard user.
#[derive(Debug, Clone)]
pub struct Operator {
    pub caller: Caller,
    pub user_id: Uuid,
    pub email: String,
    pub csrf: String,
    pub lang: Lang,
}

/// A signed-in user who may still have to replace a one-time password (the password page only).
pub struct PendingOperator(pub Operator);

/// A `303 See Other` to `to`.
pub fn redirect(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}

/// Where a request without a session is sent: the login page, then back.
fn to_login(parts: &Parts) -> Response {
    let back = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let is_page =
        parts.method == axum::http::Method::GET && !back.starts_with("/inbox/rows") && !back.contains("/live");
    if is_page && back != "/" {
        redirect(&format!("/login?next={}", super::format::urlencode(back)))
    } else if is_page {
        redirect("/login")
    } else {
        // A fragment or a form post: the script (or the user) reloads into the login page.
        (StatusCode::UNAUTHORIZED, "sign in again").into_response()
    }
}

/// The session's operator, or `None` without a valid session.
pub async fn lookup(state: &AppState, headers: &HeaderMap, lang: Lang) -> Result<Option<Operator>, sqlx::Error> {
    let Some(value) = crate::http::authn::cookie(headers, state.settings.session_cookie()) else { return Ok(None) };
    let secret = state.settings.session_secret.expose_secret().as_bytes();
    let Some(id) = sessions::verify(secret, value) else { return Ok(None) };
    let Some(live) = sessions::lookup(&state.pool, &id).await? else { return Ok(None) };
    let Actor::User(user_id) = live.caller.actor else { return Ok(None) };
    let Some(user) = crate::tenancy::get_user(&state.pool, live.caller.tenant_id, user_id).await? else {
        return Ok(None);
    };
    Ok(Some(Operator { caller: live.caller, user_id, email: user.email, csrf: live.csrf_token, lang }))
}

async fn extract(parts: &Parts, state: &AppState) -> Result<Operator, Response> {
    let lang = Lang::of(parts.uri.query(), &parts.headers);
    match lookup(state, &parts.headers, lang).await {
        Ok(Some(op)) => Ok(op),
        Ok(None) => Err(to_login(parts)),
        Err(e) => {
            tracing::error!(error = %e, "could not read the dashboard session");
            Err((StatusCode::SERVICE_UNAVAILABLE, lang.tr().server_error).into_response())
        }
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let op = extract(parts, state).await?;
        if op.caller.must_change_password {
            return Err(redirect("/password"));
        }
        Ok(op)
    }
}

impl FromRequestParts<AppState> for PendingOperator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        extract(parts, state).await.map(PendingOperator)
    }
}

impl Operator {
    /// Whether `sent` is this session's CSRF token.
    pub fn csrf_ok(&self, sent: &str) -> bool {
        !sent.is_empty() && crate::auth::constant_time_eq(sent.as_bytes(), self.csrf.as_bytes())
    }

    pub fn can(&self, p: Permission) -> bool {
        self.caller.role.allows(p)
    }

    pub fn tenant(&self) -> Uuid {
        self.caller.tenant_id
    }

    /// Owners and admins see settings and operations.
    pub fn is_admin(&self) -> bool {
        matches!(self.caller.role, Role::Owner | Role::Admin)
    }

    /// Metadata of a command this operator issues (as the API's command extractor builds it).
    pub fn metadata(&self, headers: &HeaderMap) -> EventMetadata {
        EventMetadata {
            tenant_id: Some(self.caller.tenant_id),
            actor: self.caller.actor.metadata_value(),
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            request_id: headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_string),
            occurred_at: chrono::Utc::now(),
        }
    }
}
