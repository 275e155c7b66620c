//! Customers' stored files: a signed, expiring link to one (`GET /api/media/{sha256}`) and the
//! file behind such a link (`GET /api/media/{sha256}/file`). The file route wants both the link's
//! signature and the caller's own credentials of the tenant the link names: another tenant's
//! caller gets 403 even with a valid link, and so does everyone once the link has expired.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::Caller;
use crate::http::{ApiError, ApiQuery, AppState};
use crate::media::sign::{LinkError, LinkSigner};
use crate::media::{MediaStore, is_sha256};
use secrecy::ExposeSecret;

/// A stored file with its signed links.
#[derive(Debug, Serialize)]
pub struct MediaView {
    pub sha256: String,
    pub size: i64,
    pub mime_type: String,
    pub url: String,
    pub thumbnail_url: Option<String>,
    pub expires_at: DateTime<Utc>,
}

fn signer(state: &AppState) -> LinkSigner {
    LinkSigner::new(state.ctx.settings.session_secret.expose_secret().as_bytes())
}

fn link(signer: &LinkSigner, tenant: Uuid, sha256: &str, variant: &str, expires: i64) -> String {
    let signature = signer.sign(tenant, sha256, variant, expires);
    format!("/api/media/{sha256}/file?tenant={tenant}&variant={variant}&expires={expires}&signature={signature}")
}

/// `GET /api/media/{sha256}`: the caller's tenant's file, with links valid for `MEDIA_LINK_TTL_SECS`.
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(sha256): Path<String>,
) -> Result<Json<MediaView>, ApiError> {
    if !is_sha256(&sha256) {
        return Err(ApiError::NotFound("media"));
    }
    let row: Option<(i64, String, Option<String>)> = sqlx::query_as(
        "SELECT size, mime_type, thumbnail_sha256 FROM media_objects WHERE tenant_id = $1 AND sha256 = $2",
    )
    .bind(caller.tenant_id)
    .bind(&sha256)
    .fetch_optional(&state.ctx.pool)
    .await
    .map_err(|e| ApiError::Unexpected(anyhow::Error::new(e).context("loading a media object")))?;
    let Some((size, mime_type, thumbnail)) = row else { return Err(ApiError::NotFound("media")) };
    let ttl = chrono::Duration::from_std(state.ctx.settings.media.link_ttl).unwrap_or(chrono::Duration::minutes(15));
    let expires_at = Utc::now() + ttl;
    let s = signer(&state);
    let expires = expires_at.timestamp();
    Ok(Json(MediaView {
        url: link(&s, caller.tenant_id, &sha256, "original", expires),
        thumbnail_url: thumbnail.is_some().then(|| link(&s, caller.tenant_id, &sha256, "thumbnail", expires)),
        sha256,
        size,
        mime_type,
        expires_at,
    }))
}

#[derive(Debug, Deserialize)]
pub struct FileQuery {
    tenant: Uuid,
    variant: String,
    expires: i64,
    signature: String,
}

/// `GET /api/media/{sha256}/file?tenant&variant&expires&signature`: the file behind a signed link.
pub async fn file(
    State(state): State<AppState>,
    caller: Caller,
    Path(sha256): Path<String>,
    ApiQuery(q): ApiQuery<FileQuery>,
) -> Result<Response, ApiError> {
    match signer(&state).verify(q.tenant, &sha256, &q.variant, q.expires, &q.signature, Utc::now().timestamp()) {
        Ok(()) => {}
        Err(LinkError::Expired) => return Err(ApiError::Forbidden("the link has expired".into())),
        Err(LinkError::BadSignature) => return Err(ApiError::Forbidden("the link is not valid".into())),
    }
    if q.tenant != caller.tenant_id {
        return Err(ApiError::Forbidden("the link belongs to another tenant".into()));
    }
    let row: Option<(String, Option<String>)> =
        sqlx::query_as("SELECT mime_type, thumbnail_sha256 FROM media_objects WHERE tenant_id = $1 AND sha256 = $2")
            .bind(caller.tenant_id)
            .bind(&sha256)
            .fetch_optional(&state.ctx.pool)
            .await
            .map_err(|e| ApiError::Unexpected(anyhow::Error::new(e).context("loading a media object")))?;
    let Some((mime_type, thumbnail)) = row else { return Err(ApiError::NotFound("media")) };
    let (name, mime_type) = match q.variant.as_str() {
        "original" => (sha256.clone(), mime_type),
        "thumbnail" => (thumbnail.ok_or(ApiError::NotFound("thumbnail"))?, "image/jpeg".to_string()),
        _ => return Err(ApiError::BadRequest("variant must be original or thumbnail".into())),
    };
    let store = MediaStore::shared(&state.ctx.settings.media)?;
    let bytes = store.get(caller.tenant_id, &name).await?.ok_or(ApiError::NotFound("media"))?;
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&mime_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    let disposition = if mime_type.starts_with("image/") { "inline" } else { "attachment" };
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static(disposition));
    Ok(response)
}
