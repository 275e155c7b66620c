//! `Idempotency-Key` on command requests (`POST`, `PUT`, `PATCH`, `DELETE` under `/api`).
//!
//! A 503 with `Retry-After`, a timeout or a dropped connection invites the client to send the same
//! command again. With the header, the first request's answer is stored (per tenant, caller and
//! key, for 24 hours) and a repeat gets that answer again, marked `Idempotent-Replayed: true`,
//! without running the command twice:
//!
//! - the same key while the first request still runs: 409 with `Retry-After: 1`;
//! - the same key with another method, path or body: 422;
//! - a first request that failed with a 5xx is not stored, so a retry runs it again;
//! - a request without the header behaves as before.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::auth::Caller;
use crate::http::{ApiError, AppState};

pub const HEADER: &str = "idempotency-key";
/// How long an answer is kept.
const KEEP: &str = "24 hours";
/// A first request that has not finished after this long is taken to have died with its process.
const ABANDONED: &str = "2 minutes";
/// Answers larger than this are not kept (command answers are small).
const MAX_STORED: usize = 256 * 1024;

fn refused(status: StatusCode, code: &'static str, message: &str) -> Response {
    ApiError::invalid_with_status(status, code, message.to_string()).into_response()
}

pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH | Method::DELETE) {
        return next.run(req).await;
    }
    let Some(key) = req.headers().get(HEADER) else { return next.run(req).await };
    let key = match key.to_str() {
        Ok(k) if !k.trim().is_empty() && k.len() <= 255 && k.bytes().all(|b| (0x21..0x7f).contains(&b)) => {
            k.to_string()
        }
        _ => {
            return refused(
                StatusCode::BAD_REQUEST,
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            );
        }
    };
    let Some(caller) = req.extensions().get::<Caller>().cloned() else { return next.run(req).await };
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, state.settings.body_limit).await {
        Ok(b) => b,
        Err(_) => return refused(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "the request body is too large"),
    };
    let mut hash = Sha256::new();
    hash.update(parts.method.as_str());
    hash.update([0]);
    hash.update(parts.uri.path());
    hash.update([0]);
    hash.update(&body);
    let request_hash = hash.finalize().to_vec();
    let actor = caller.actor.metadata_value();

    match claim(&state, &caller, &actor, &key, &request_hash).await {
        Ok(Claim::Run) => {}
        Ok(Claim::Replay { status, content_type, body }) => {
            let mut resp = (StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK), body).into_response();
            if let Some(ct) = content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
                resp.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            resp.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            return resp;
        }
        Ok(Claim::Running) => {
            let mut resp = refused(
                StatusCode::CONFLICT,
                "idempotency_key_in_use",
                "a request with this Idempotency-Key is still running; retry shortly",
            );
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return resp;
        }
        Ok(Claim::Different) => {
            return refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was used for another request; use a new key for a new request",
            );
        }
        Err(e) => return ApiError::Unexpected(e.into()).into_response(),
    }

    let resp = next.run(Request::from_parts(parts, Body::from(body))).await;
    let status = resp.status();
    let (resp_parts, resp_body) = resp.into_parts();
    let bytes = match axum::body::to_bytes(resp_body, MAX_STORED).await {
        Ok(b) => b,
        Err(_) => {
            // Too large to keep (or broken): let a retry run the command again.
            let _ = forget(&state, &caller, &actor, &key).await;
            return (resp_parts, Body::empty()).into_response();
        }
    };
    let stored = if status.is_server_error() {
        forget(&state, &caller, &actor, &key).await
    } else {
        let content_type = resp_parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        sqlx::query(
            "UPDATE idempotency_keys SET status = $4, content_type = $5, body = $6 \
              WHERE tenant_id = $1 AND actor = $2 AND key = $3",
        )
        .bind(caller.tenant_id)
        .bind(&actor)
        .bind(&key)
        .bind(status.as_u16() as i16)
        .bind(content_type)
        .bind(bytes.as_ref())
        .execute(&state.pool)
        .await
        .map(|_| ())
    };
    if let Err(e) = stored {
        tracing::warn!(error = %e, "the answer of an idempotent request could not be kept");
    }
    Response::from_parts(resp_parts, Body::from(bytes))
}

/// A kept row: request hash, status (none while running), content type, body.
type StoredAnswer = (Vec<u8>, Option<i16>, Option<String>, Option<Vec<u8>>);

enum Claim {
    Run,
    Running,
    Different,
    Replay { status: i16, content_type: Option<String>, body: Bytes },
}

async fn claim(state: &AppState, caller: &Caller, actor: &str, key: &str, request_hash: &[u8]) -> sqlx::Result<Claim> {
    // A key older than the keeping time, or a first request abandoned by a dead process, is
    // taken over; otherwise the first row stands.
    let claimed: Option<bool> = sqlx::query_scalar(&format!(
        "INSERT INTO idempotency_keys (tenant_id, actor, key, request_hash) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, actor, key) DO UPDATE \
            SET request_hash = EXCLUDED.request_hash, status = NULL, content_type = NULL, body = NULL, created_at = now() \
          WHERE idempotency_keys.created_at < now() - interval '{KEEP}' \
             OR (idempotency_keys.status IS NULL AND idempotency_keys.created_at < now() - interval '{ABANDONED}' \
                 AND idempotency_keys.request_hash = EXCLUDED.request_hash) \
         RETURNING true"
    ))
    .bind(caller.tenant_id)
    .bind(actor)
    .bind(key)
    .bind(request_hash)
    .fetch_optional(&state.pool)
    .await?;
    if claimed.is_some() {
        // Now and then, forget answers past the keeping time.
        if rand::random::<u8>() == 0 {
            let _ = sqlx::query(&format!("DELETE FROM idempotency_keys WHERE created_at < now() - interval '{KEEP}'"))
                .execute(&state.pool)
                .await;
        }
        return Ok(Claim::Run);
    }
    let row: Option<StoredAnswer> = sqlx::query_as(
        "SELECT request_hash, status, content_type, body FROM idempotency_keys \
          WHERE tenant_id = $1 AND actor = $2 AND key = $3",
    )
    .bind(caller.tenant_id)
    .bind(actor)
    .bind(key)
    .fetch_optional(&state.pool)
    .await?;
    Ok(match row {
        // Deleted in between (the first request failed with a 5xx): the caller may retry.
        None => Claim::Running,
        Some((hash, _, _, _)) if hash != request_hash => Claim::Different,
        Some((_, None, _, _)) => Claim::Running,
        Some((_, Some(status), content_type, body)) => {
            Claim::Replay { status, content_type, body: Bytes::from(body.unwrap_or_default()) }
        }
    })
}

async fn forget(state: &AppState, caller: &Caller, actor: &str, key: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM idempotency_keys WHERE tenant_id = $1 AND actor = $2 AND key = $3 AND status IS NULL")
        .bind(caller.tenant_id)
        .bind(actor)
        .bind(key)
        .execute(&state.pool)
        .await
        .map(|_| ())
}
