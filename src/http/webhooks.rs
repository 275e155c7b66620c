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
        .route("/webhooks/telegram/{tenant_id}", post(telegram_of_tenant))
        .route("/webhooks/telegram/{tenant_id}/{account_id}", post(telegram))
        .route("/webhooks/whatsapp/{tenant_id}", post(whatsapp_of_tenant).get(whatsapp_verify_of_tenant))
        .route("/webhooks/whatsapp/{tenant_id}/{account_id}", post(whatsapp).get(whatsapp_verify))
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

/// The answer to a request whose credential failed: counted against the unauthenticated bucket.
async fn refused(state: &AppState, account: &ChannelAccount, e: WebhookAuthError) -> ApiError {
    match admit(state, account, Err(e)).await {
        Err(answer) => answer,
        Ok(()) => unauthorized(WebhookAuthError::Mismatch),
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

/// The tenant's active accounts of a kind: the one the URL names, or (the tenant-only URLs of
/// Telegram and WhatsApp, kept for webhooks registered before accounts had their own) all of them.
async fn candidates(
    state: &AppState,
    tenant: &str,
    account: Option<&str>,
    kind: ChannelKind,
) -> Result<Vec<ChannelAccount>, ApiError> {
    if account.is_some() {
        return Ok(vec![find(state, tenant, account, kind).await?]);
    }
    let tenant: Uuid = tenant.parse().map_err(|_| account_not_found())?;
    let accounts: Vec<ChannelAccount> = crate::tenancy::list_channel_accounts(&state.pool, tenant)
        .await?
        .into_iter()
        .filter(|a| a.kind == kind && a.disabled_at.is_none())
        .collect();
    if accounts.is_empty() {
        return Err(account_not_found());
    }
    Ok(accounts)
}

/// A secret of an account, or the deployment-wide fallback from the environment when the account
/// has none stored (accounts added before secrets were kept per account).
async fn secret_or(
    state: &AppState,
    account: &ChannelAccount,
    what: &str,
    fallback: Option<&secrecy::SecretString>,
) -> Result<String, ApiError> {
    Ok(match secret(state, account, what).await? {
        Some(s) => s,
        None => fallback.map(|s| secrecy::ExposeSecret::expose_secret(s).to_string()).unwrap_or_default(),
    })
}

/// `POST /webhooks/telegram/{tenant_id}/{account_id}`.
pub async fn telegram(
    State(state): State<AppState>,
    Path((tenant, account)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    telegram_for(state, &tenant, Some(&account), headers, body).await
}

/// `POST /webhooks/telegram/{tenant_id}`: the bot is the one whose secret token the request carries.
pub async fn telegram_of_tenant(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    telegram_for(state, &tenant, None, headers, body).await
}

async fn telegram_for(
    state: AppState,
    tenant: &str,
    account: Option<&str>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let accounts = candidates(&state, tenant, account, ChannelKind::Telegram).await?;
    let given = headers.get("x-telegram-bot-api-secret-token").and_then(|v| v.to_str().ok());
    let fallback = if accounts.len() == 1 { state.settings.telegram_webhook_secret.as_ref() } else { None };
    let mut matched = None;
    for a in &accounts {
        let expected = secret_or(&state, a, "webhook_secret", fallback).await?;
        if channels::telegram::verify_secret_token(&expected, given).is_ok() {
            matched = Some(a);
            break;
        }
    }
    let Some(account) = matched else {
        let first = &accounts[0];
        let expected = secret_or(&state, first, "webhook_secret", fallback).await?;
        let e = channels::telegram::verify_secret_token(&expected, given).err().unwrap_or(WebhookAuthError::Mismatch);
        return Err(refused(&state, first, e).await);
    };
    admit(&state, account, Ok(())).await?;
    let n = channels::telegram::parse(&body).map_err(malformed)?;
    apply(&state, account, vec![n], &body, &headers).await
}

/// `POST /webhooks/whatsapp/{tenant_id}/{account_id}`: signed with `X-Hub-Signature-256`.
pub async fn whatsapp(
    State(state): State<AppState>,
    Path((tenant, account)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    whatsapp_for(state, &tenant, Some(&account), headers, body).await
}

/// `POST /webhooks/whatsapp/{tenant_id}`: each change goes to the account of its business number
/// (`metadata.phone_number_id`).
pub async fn whatsapp_of_tenant(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    whatsapp_for(state, &tenant, None, headers, body).await
}

async fn whatsapp_for(
    state: AppState,
    tenant: &str,
    account: Option<&str>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let accounts = candidates(&state, tenant, account, ChannelKind::Whatsapp).await?;
    let signature = headers.get("x-hub-signature-256").and_then(|v| v.to_str().ok());
    let fallback = state.settings.whatsapp_app_secret.as_ref();
    // The accounts whose app secret signed the body (numbers of one Meta app share its secret).
    let mut signed = Vec::new();
    let mut failure = None;
    for a in &accounts {
        let app_secret = secret_or(&state, a, "app_secret", fallback).await?;
        match channels::whatsapp::verify_signature(app_secret.as_bytes(), &body, signature) {
            Ok(()) => signed.push(a),
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    let Some(first) = signed.first().copied() else {
        return Err(refused(&state, &accounts[0], failure.unwrap_or(WebhookAuthError::Mismatch)).await);
    };
    admit(&state, first, Ok(())).await?;
    let numbers = channels::whatsapp::parse_routed(&body).map_err(malformed)?;
    let debounce = debounce(&state, first.tenant_id).await?;
    let mut out = WebhookOutcome::default();
    for number in numbers {
        // The account of the number; a change for a number that is not one of these accounts is
        // kept as a dead letter of the account that received it, never put in its conversations.
        let target = match &number.phone_number_id {
            Some(id) => signed.iter().copied().find(|a| a.external_key == *id),
            None if signed.len() == 1 => Some(first),
            None => None,
        };
        let (account, notifications) = match target {
            Some(a) => (a, number.notifications),
            None => {
                let kind = match &number.phone_number_id {
                    Some(id) => format!("for another number/{id}"),
                    None => "without a business number".to_string(),
                };
                (first, vec![channels::Notification::Unknown { kind }])
            }
        };
        for n in notifications {
            ingest::notification(&state, account, n, &body, debounce, request_id(&headers), &mut out)
                .await
                .map_err(ApiError::Unexpected)?;
        }
    }
    Ok((StatusCode::OK, Json(WebhookAnswer { ok: true, result: out })).into_response())
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

/// `GET /webhooks/whatsapp/{tenant_id}/{account_id}`: Meta's verification challenge.
pub async fn whatsapp_verify(
    State(state): State<AppState>,
    Path((tenant, account)): Path<(String, String)>,
    Query(q): Query<Challenge>,
) -> Result<Response, ApiError> {
    verify_for(state, &tenant, Some(&account), q).await
}

/// `GET /webhooks/whatsapp/{tenant_id}`: answered when the token is one of the tenant's accounts'.
pub async fn whatsapp_verify_of_tenant(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    Query(q): Query<Challenge>,
) -> Result<Response, ApiError> {
    verify_for(state, &tenant, None, q).await
}

async fn verify_for(state: AppState, tenant: &str, account: Option<&str>, q: Challenge) -> Result<Response, ApiError> {
    let accounts = candidates(&state, tenant, account, ChannelKind::Whatsapp).await?;
    // Challenges are rare: all of them share the bucket of unauthenticated requests.
    ratelimit::check(
        &state.redis,
        Limit::WebhookPerAccount,
        &format!("unauthenticated:{}", accounts[0].id),
        state.settings.limits.webhook_per_minute,
    )
    .await?;
    let mut failure = None;
    for a in &accounts {
        let expected = secret_or(&state, a, "verify_token", state.settings.whatsapp_verify_token.as_ref()).await?;
        match channels::whatsapp::verify_challenge(
            q.mode.as_deref(),
            q.verify_token.as_deref(),
            q.challenge.as_deref(),
            &expected,
        ) {
            Ok(challenge) => {
                return Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], challenge).into_response());
            }
            Err(e) => failure = Some(e),
        }
    }
    let e = failure.map_or_else(|| "no account".to_string(), |e| e.to_string());
    Err(ApiError::Forbidden(format!("verification failed: {e}")))
}
