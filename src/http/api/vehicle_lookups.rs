//! Vehicle lookups: the list and one lookup (read model), its evidence files, and the operator's
//! actions (a lookup for a conversation, retry, corrected identifier, gearbox confirmed from its
//! tag).

use aisales_domain::vehicle_lookup::{IdType, LookupStatus, VehicleId, VehicleLookupCommand};
use aisales_projections::vehicle_lookup_views::LookupRow;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::conversations::decode_rows;
use super::conversations::{accepted, consistent};
use super::paging::{Page, TimeKey, decode_cursor, limit};
use super::views::{EvidenceItem, VehicleLookupDetail, VehicleLookupSummary};
use crate::application::vehicle_lookups as commands;
use crate::auth::Caller;
use crate::http::command::CommandMeta;
use crate::http::{ApiError, ApiJson, ApiQuery, AppState};

/// Projectors a lookup read waits for with `min_position`.
const PROJECTORS: &[&str] = &["vehicle_lookups"];

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    status: Option<LookupStatus>,
    conversation_id: Option<Uuid>,
    cursor: Option<String>,
    limit: Option<i64>,
    min_position: Option<String>,
}

/// `GET /api/vehicle-lookups`: newest first, filters `status` and `conversation_id`, cursor pagination.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<VehicleLookupSummary>>, ApiError> {
    consistent(&state, PROJECTORS, q.min_position.as_deref(), &headers).await?;
    let limit = limit(q.limit, 50, 200)?;
    let cursor: Option<TimeKey> = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT row_to_json(t)::text FROM rm_vehicle_lookups t \
          WHERE tenant_id = $1 \
            AND ($2::text IS NULL OR status = $2) \
            AND ($3::uuid IS NULL OR conversation_id = $3) \
            AND ($4::timestamptz IS NULL OR (created_at, lookup_id) < ($4, $5)) \
          ORDER BY created_at DESC, lookup_id DESC LIMIT $6",
    )
    .bind(caller.tenant_id)
    .bind(q.status.map(LookupStatus::as_str))
    .bind(q.conversation_id)
    .bind(cursor.map(|c| c.t))
    .bind(cursor.map(|c| c.id))
    .bind(limit + 1)
    .fetch_all(&state.pool)
    .await?;
    let rows: Vec<LookupRow> = decode_rows(&rows)?;
    Ok(Json(Page::of(
        rows,
        limit,
        |l| Some(TimeKey { t: l.created_at, id: l.lookup_id }),
        |l| VehicleLookupSummary::from(&l),
    )))
}

async fn lookup_row(state: &AppState, tenant: Uuid, id: Uuid) -> Result<LookupRow, ApiError> {
    let text: String = sqlx::query_scalar(
        "SELECT row_to_json(t)::text FROM rm_vehicle_lookups t WHERE tenant_id = $1 AND lookup_id = $2",
    )
    .bind(tenant)
    .bind(id)
    .fetch_optional(&state.pool)
    .await?
    .ok_or(ApiError::NotFound("vehicle lookup"))?;
    serde_json::from_str(&text).map_err(|e| ApiError::Unexpected(e.into()))
}

#[derive(Debug, Deserialize)]
pub struct ConsistencyQuery {
    min_position: Option<String>,
}

/// `GET /api/vehicle-lookups/{id}`: the lookup with its answer, history, attempts and evidence.
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    ApiQuery(q): ApiQuery<ConsistencyQuery>,
) -> Result<Json<VehicleLookupDetail>, ApiError> {
    consistent(&state, PROJECTORS, q.min_position.as_deref(), &headers).await?;
    let row = lookup_row(&state, caller.tenant_id, id).await?;
    let mut evidence: Vec<EvidenceItem> = sqlx::query_as(
        "SELECT id, kind, content_type, size_bytes, round, attempt, created_at FROM lookup_evidence \
          WHERE tenant_id = $1 AND lookup_id = $2 ORDER BY created_at, id",
    )
    .bind(caller.tenant_id)
    .bind(id)
    .fetch_all(&state.pool)
    .await?;
    for e in &mut evidence {
        e.url = format!("/api/vehicle-lookups/{id}/evidence/{}", e.id);
    }
    Ok(Json(VehicleLookupDetail::new(&row, evidence)))
}

/// `GET /api/vehicle-lookups/{id}/evidence/{evidence_id}`: the screenshot (PNG), page HTML or step
/// trace (JSON). The HTML is served sandboxed: the scraped page's scripts never run in our origin.
pub async fn evidence(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, evidence_id)): Path<(Uuid, Uuid)>,
) -> Result<Response, ApiError> {
    let row: Option<(String, Vec<u8>)> = sqlx::query_as(
        "SELECT content_type, content FROM lookup_evidence WHERE tenant_id = $1 AND lookup_id = $2 AND id = $3",
    )
    .bind(caller.tenant_id)
    .bind(id)
    .bind(evidence_id)
    .fetch_optional(&state.pool)
    .await?;
    let (content_type, content) = row.ok_or(ApiError::NotFound("evidence"))?;
    let mut resp = Response::new(Body::from(content));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=3600"));
    Ok(resp)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewLookupBody {
    id_type: String,
    value: String,
}

fn parse_id(id_type: &str, value: &str) -> Result<VehicleId, ApiError> {
    let id_type =
        IdType::parse(id_type).ok_or_else(|| ApiError::invalid("invalid_id_type", "id_type is VIN or FRAME"))?;
    VehicleId::parse(id_type, value).map_err(|e| ApiError::invalid("invalid_vehicle_id", e.to_string()))
}

/// What asking for a lookup did.
#[derive(Debug, Serialize)]
struct LookupAsked {
    lookup_id: Uuid,
    /// False when a lookup of the identifier is already running or has answered.
    requested: bool,
    id_type: IdType,
    value: String,
}

/// `POST /api/conversations/{id}/vehicle-lookups` with `{"id_type", "value"}`: asks for a lookup
/// (nothing new while one for the identifier is running or has answered; `requested` says which).
pub async fn request(
    State(state): State<AppState>,
    caller: Caller,
    CommandMeta(meta): CommandMeta,
    Path(conversation): Path<Uuid>,
    ApiJson(body): ApiJson<NewLookupBody>,
) -> Result<Response, ApiError> {
    let id = parse_id(&body.id_type, &body.value)?;
    let r = commands::request(&state, caller.tenant_id, conversation, &id, &meta).await?;
    let asked = LookupAsked {
        lookup_id: r.lookup_id,
        requested: r.requested,
        id_type: id.id_type(),
        value: id.value().to_string(),
    };
    Ok(accepted(&r.done, asked))
}

/// What an operator's command on a lookup did.
#[derive(Debug, Serialize)]
struct LookupChanged {
    lookup_id: Uuid,
    position: Option<String>,
    status: Option<&'static str>,
    round: u32,
    verification: Option<&'static str>,
}

/// Runs an operator's command on a lookup of the caller's tenant; answers 202 with the position
/// to wait for.
async fn execute(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    cmd: VehicleLookupCommand,
    meta: &crate::store::EventMetadata,
) -> Result<Response, ApiError> {
    let out = commands::execute(state, caller.tenant_id, id, cmd, meta).await?;
    let position = out.committed.map(|c| c.position.to_string());
    let header = position.as_deref().and_then(|p| HeaderValue::from_str(p).ok());
    let body = LookupChanged {
        lookup_id: id,
        position,
        status: out.state.status.map(LookupStatus::as_str),
        round: out.state.round,
        verification: out.state.confirmed.as_ref().map(|c| c.verification.as_str()),
    };
    let mut resp = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Some(p) = header {
        resp.headers_mut().insert("x-position", p);
    }
    Ok(resp)
}

/// `POST /api/vehicle-lookups/{id}/retry`: another round after not found, failed or decoder-only.
pub async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    CommandMeta(meta): CommandMeta,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let cmd = VehicleLookupCommand::Retry { by: meta.actor.clone(), at: Utc::now() };
    execute(&state, &caller, id, cmd, &meta).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorrectBody {
    value: String,
    id_type: Option<String>,
}

/// `POST /api/vehicle-lookups/{id}/correct` with `{"value", "id_type"?}`: look the corrected
/// identifier up (the type stays unless given).
pub async fn correct(
    State(state): State<AppState>,
    caller: Caller,
    CommandMeta(meta): CommandMeta,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<CorrectBody>,
) -> Result<Response, ApiError> {
    let id_type = match body.id_type {
        Some(t) => t,
        None => lookup_row(&state, caller.tenant_id, id).await?.id_type,
    };
    let vehicle_id = parse_id(&id_type, &body.value)?;
    let cmd = VehicleLookupCommand::CorrectId { id: vehicle_id, by: meta.actor.clone(), at: Utc::now() };
    execute(&state, &caller, id, cmd, &meta).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    model: String,
    oem: Option<String>,
    factory_code: Option<String>,
    note: Option<String>,
}

/// `POST /api/vehicle-lookups/{id}/confirm-gearbox` with `{"model", "oem"?, "factory_code"?,
/// "note"?}`: the gearbox read from a photo of its tag; compared with what the lookup found.
pub async fn confirm_gearbox(
    State(state): State<AppState>,
    caller: Caller,
    CommandMeta(meta): CommandMeta,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<ConfirmBody>,
) -> Result<Response, ApiError> {
    let too_long = |s: &Option<String>| s.as_deref().is_some_and(|v| v.chars().count() > 200);
    if body.model.chars().count() > 100 || too_long(&body.oem) || too_long(&body.factory_code) {
        return Err(ApiError::invalid("invalid_gearbox", "model, oem and factory_code are short codes"));
    }
    let cmd = VehicleLookupCommand::ConfirmGearbox {
        model: body.model,
        oem: body.oem,
        factory_code: body.factory_code,
        note: body.note,
        by: meta.actor.clone(),
        at: Utc::now(),
    };
    execute(&state, &caller, id, cmd, &meta).await
}
