//! Messenger webhooks. Each checks that the URL names a stored, active account of the tenant and
//! the channel's own proof (GREEN-API `webhookUrlToken`, Telegram's secret token, WhatsApp's
//! app-secret HMAC), applies the per-account rate limit, parses the body (400 and nothing stored
//! when it is malformed) and stores what it carries before answering.

use aisales_domain::conversation::ChannelKind;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use uuid::Uuid;

use crate::application::ingest::{self, WebhookOutcome};
use crate::channels::{self, WebhookAuthError};
use crate::http::{ApiError, AppState};
use crate::infra::ratelimit::{self, Limit};
use crate::tenancy::ChannelAccount;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks/green-api/{tenant_id}/{account_id}", post(green_api))
        .route("/webhooks/telegram/{tenant_id}", post(telegram))
        .route("/webhooks/whatsapp/{tenant_id}", post(whatsapp).get(whatsapp_verify))
}

fn account_not_found() -> ApiError {
    ApiError::NotFound("channel account")
}

fn unauthorized(e: WebhookAuthError) -> ApiError {
    ApiError::invalid_with_status(
        StatusCode::UNAUTHORIZED,
        "webhook_unauthorized",
        format!("the webhook is not authenticated: {e}"),
    )
}

fn malformed(e: channels::ParseError) -> ApiError {
    ApiError::invalid("invalid_notification", format!("the notification cannot be read: {e}"))
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_string)
}

async fn find(
    state: &AppState,
    tenant: &str,
    account: Option<&str>,
    kind: ChannelKind,
) -> Result<ChannelAccount, ApiError> {
    let tenant: Uuid = tenant.parse().map_err(|_| account_not_found())?;
    let found = match account {
        Some(id) => {
            let id: Uuid = id.parse().map_err(|_| account_not_found())?;
            state.tenancy.active_account(&state.pool, tenant, id).await?
        }
        None => state.tenancy.active_account_of_kind(&state.pool, tenant, kind).await?,
    };
    found.filter(|a| a.kind == kind).ok_or_else(account_not_found)
}

/// Counts a webhook request against the account's limit once its credential has been checked.
/// Requests that fail the check have a bucket of their own, so that anyone who knows a webhook URL
/// cannot use up the limit of the provider's real notifications.
async fn admit(
    state: &AppState,
    account: &ChannelAccount,
    checked: Result<(), channels::WebhookAuthError>,
) -> Result<(), ApiError> {
    let limit = state.settings.limits.webhook_per_minute;
    match checked {
        Ok(()) => Ok(ratelimit::check(&state.redis, Limit::WebhookPerAccount, &account.id.to_string(), limit).await?),
        Err(e) => {
            let key = format!("unauthenticated:{}", account.id);
            ratelimit::check(&state.redis, Limit::WebhookPerAccount, &key, limit).await?;
            Err(unauthorized(e))
        }
    }
}

async fn secret(state: &AppState, account: &ChannelAccount, what: &str) -> Result<Option<String>, ApiError> {
    match state.tenancy.secret(&state.pool, &state.keys, account, what).await {
        Ok(v) => Ok(Some(v)),
        Err(crate::infra::crypto::SecretError::Missing { .. }) => Ok(None),
        Err(e) => Err(ApiError::Unexpected(e.into())),
    }
}

async fn debounce(state: &AppState, tenant: Uuid) -> Result<u32, ApiError> {
    Ok(state.tenancy.tenant(&state.pool, tenant).await?.map_or(3, |t| t.settings.suggestion_debounce_secs))
}

async fn apply(
    state: &AppState,
    account: &ChannelAccount,
    notifications: Vec<channels::Notification>,
    raw: &[u8],
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let debounce = debounce(state, account.tenant_id).await?;
    let mut out = WebhookOutcome::default();
    for n in notifications {
        ingest::notification(state, account, n, raw, debounce, request_id(headers), &mut out)
            .await
            .map_err(ApiError::Unexpected)?;
    }
    Ok((StatusCode::OK, Json(WebhookAnswer { ok: true, result: out })).into_response())
}

/// The answer to a provider's notification: what it did.
#[derive(Debug, serde::Serialize)]
pub struct WebhookAnswer {
    pub ok: bool,
    pub result: WebhookOutcome,
}

/// `POST /webhooks/green-api/{tenant_id}/{account_id}`.
pub async fn green_api(
    State(state): State<AppState>,
    Path((tenant, account)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let account = find(&state, &tenant, Some(&account), ChannelKind::GreenApi).await?;
    let expected = secret(&state, &account, "webhook_token").await?;
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    admit(&state, &account, channels::green_api::verify_webhook_token(expected.as_deref().unwrap_or_default(), auth))
        .await?;
    let n = channels::green_api::parse(&body).map_err(malformed)?;
    apply(&state, &account, vec![n], &body, &headers).await
}

/// `POST /webhooks/telegram/{tenant_id}`.
pub async fn telegram(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let account = find(&state, &tenant, None, ChannelKind::Telegram).await?;
    let expected = match secret(&state, &account, "webhook_secret").await? {
        Some(s) => s,
        None => state
            .settings
            .telegram_webhook_secret
            .as_ref()
            .map(|s| secrecy::ExposeSecret::expose_secret(s).to_string())
            .unwrap_or_default(),
    };
    let given = headers.get("x-telegram-bot-api-secret-token").and_then(|v| v.to_str().ok());
    admit(&state, &account, channels::telegram::verify_secret_token(&expected, given)).await?;
    let n = channels::telegram::parse(&body).map_err(malformed)?;
    apply(&state, &account, vec![n], &body, &headers).await
}

/// `POST /webhooks/whatsapp/{tenant_id}`: signed with `X-Hub-Signature-256`.
pub async fn whatsapp(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let account = find(&state, &tenant, None, ChannelKind::Whatsapp).await?;
    let app_secret = match secret(&state, &account, "app_secret").await? {
        Some(s) => s,
        None => state
            .settings
            .whatsapp_app_secret
            .as_ref()
            .map(|s| secrecy::ExposeSecret::expose_secret(s).to_string())
            .unwrap_or_default(),
    };
    let signature = headers.get("x-hub-signature-256").and_then(|v| v.to_str().ok());
    admit(&state, &account, channels::whatsapp::verify_signature(app_secret.as_bytes(), &body, signature)).await?;
    let notifications = channels::whatsapp::parse(&body).map_err(malformed)?;
    apply(&state, &account, notifications, &body, &headers).await
}

#[derive(Deserialize)]
pub struct Challenge {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

/// `GET /webhooks/whatsapp/{tenant_id}`: Meta's verification challenge.
pub async fn whatsapp_verify(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    Query(q): Query<Challenge>,
) -> Result<Response, ApiError> {
    let account = find(&state, &tenant, None, ChannelKind::Whatsapp).await?;
    // Challenges are rare: all of them share the bucket of unauthenticated requests.
    ratelimit::check(
        &state.redis,
        Limit::WebhookPerAccount,
        &format!("unauthenticated:{}", account.id),
        state.settings.limits.webhook_per_minute,
    )
    .await?;
    let expected = match secret(&state, &account, "verify_token").await? {
        Some(s) => s,
        None => state
            .settings
            .whatsapp_verify_token
            .as_ref()
            .map(|s| secrecy::ExposeSecret::expose_secret(s).to_string())
            .unwrap_or_default(),
    };
    match channels::whatsapp::verify_challenge(
        q.mode.as_deref(),
        q.verify_token.as_deref(),
        q.challenge.as_deref(),
        &expected,
    ) {
        Ok(challenge) => Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], challenge).into_response()),
        Err(e) => Err(ApiError::Forbidden(format!("verification failed: {e}"))),
    }
}
