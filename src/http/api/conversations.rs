//! Conversations: the list, one conversation, its messages and suggestions (read models), and the
//! operator's actions (commands on the aggregate).

use std::time::Duration;

use aisales_domain::conversation::ConversationCommand as C;
use aisales_domain::reply::{self, DelayPlan};
use aisales_projections::Position;
use aisales_projections::conversation_views::{
    ConversationRow, SuggestionRow, conversation_json, detail_json, suggestion_json,
};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::Caller;
use crate::conversations::{self, CommandMeta};
use crate::http::{ApiError, ApiJson, ApiQuery, AppState};

/// How long a read waits for `min_position`.
const CONSISTENCY_WAIT: Duration = Duration::from_secs(5);

/// `min_position` from the query or the `X-Min-Position` header.
fn min_position(query: Option<&str>, headers: &HeaderMap) -> Result<Option<Position>, ApiError> {
    let raw = query
        .map(str::to_string)
        .or_else(|| headers.get("x-min-position").and_then(|v| v.to_str().ok()).map(str::to_string));
    match raw {
        None => Ok(None),
        Some(s) => s.parse::<Position>().map(Some).map_err(|e| ApiError::invalid("invalid_position", e.to_string())),
    }
}

pub(crate) async fn consistent(
    state: &AppState,
    projectors: &[&str],
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    if let Some(p) = min_position(query, headers)? {
        conversations::wait_for(&state.pool, projectors, p, CONSISTENCY_WAIT).await?;
    }
    Ok(())
}

pub(crate) fn encode_cursor(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

pub(crate) fn decode_cursor<T: for<'de> Deserialize<'de>>(s: &str) -> Result<T, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| ApiError::invalid("invalid_cursor", "the cursor is not one this API returned"))
}

pub(crate) fn limit(l: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    match l {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::invalid("invalid_limit", format!("limit must be between 1 and {max}"))),
    }
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    channel: Option<String>,
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
    min_position: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct ListCursor {
    t: DateTime<Utc>,
    id: Uuid,
}

/// `GET /api/conversations`: newest activity first, stable order, cursor pagination.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    consistent(&state, &["conversations"], q.min_position.as_deref(), &headers).await?;
    let limit = limit(q.limit, 50, 200)?;
    if let Some(s) = &q.status
        && aisales_domain::conversation::Status::parse(s).is_none()
    {
        return Err(ApiError::invalid(
            "invalid_status",
            "status is one of open, waiting_customer, escalated, resolved",
        ));
    }
    if let Some(c) = &q.channel
        && aisales_domain::conversation::ChannelKind::parse(c).is_none()
    {
        return Err(ApiError::invalid("invalid_channel", "channel is one of green_api, telegram, whatsapp"));
    }
    let cursor: Option<ListCursor> = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let search = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(|s| {
        let escaped = s.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        format!("%{escaped}%")
    });
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT row_to_json(t)::text FROM rm_conversations t \
          WHERE tenant_id = $1 \
            AND ($2::text IS NULL OR status = $2) \
            AND ($3::text IS NULL OR channel = $3) \
            AND ($4::text IS NULL OR search_text LIKE $4) \
            AND ($5::timestamptz IS NULL OR (last_message_at, conversation_id) < ($5, $6)) \
          ORDER BY last_message_at DESC, conversation_id DESC LIMIT $7",
    )
    .bind(caller.tenant_id)
    .bind(&q.status)
    .bind(&q.channel)
    .bind(&search)
    .bind(cursor.as_ref().map(|c| c.t))
    .bind(cursor.as_ref().map(|c| c.id))
    .bind(limit + 1)
    .fetch_all(&state.pool)
    .await?;
    let rows: Vec<ConversationRow> = rows
        .iter()
        .map(|r| serde_json::from_str(r))
        .collect::<Result<_, _>>()
        .map_err(|e| ApiError::Unexpected(e.into()))?;
    let has_more = rows.len() as i64 > limit;
    let page: Vec<&ConversationRow> = rows.iter().take(limit as usize).collect();
    let next_cursor = if has_more {
        page.last()
            .and_then(|l| l.last_message_at.map(|t| encode_cursor(&json!(ListCursor { t, id: l.conversation_id }))))
    } else {
        None
    };
    let items: Vec<Value> = page.into_iter().map(conversation_json).collect();
    Ok(Json(json!({ "items": items, "next_cursor": next_cursor })))
}

#[derive(Debug, Deserialize)]
pub struct ConsistencyQuery {
    min_position: Option<String>,
}

async fn conversation_row(state: &AppState, tenant: Uuid, id: Uuid) -> Result<ConversationRow, ApiError> {
    let text: String = sqlx::query_scalar(
        "SELECT row_to_json(t)::text FROM rm_conversations t WHERE tenant_id = $1 AND conversation_id = $2",
    )
    .bind(tenant)
    .bind(id)
    .fetch_optional(&state.pool)
    .await?
    .ok_or(ApiError::NotFound("conversation"))?;
    serde_json::from_str(&text).map_err(|e| ApiError::Unexpected(e.into()))
}

async fn suggestion_rows(
    state: &AppState,
    tenant: Uuid,
    conversation: Uuid,
    status: Option<&str>,
) -> Result<Vec<SuggestionRow>, ApiError> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT row_to_json(t)::text FROM rm_suggestions t WHERE tenant_id = $1 AND conversation_id = $2 \
            AND ($3::text IS NULL OR status = $3) ORDER BY created_at, suggestion_id",
    )
    .bind(tenant)
    .bind(conversation)
    .bind(status)
    .fetch_all(&state.pool)
    .await?;
    rows.iter().map(|r| serde_json::from_str(r)).collect::<Result<_, _>>().map_err(|e| ApiError::Unexpected(e.into()))
}

/// `GET /api/conversations/{id}`: the conversation with its pending suggestions.
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    ApiQuery(q): ApiQuery<ConsistencyQuery>,
) -> Result<Json<Value>, ApiError> {
    consistent(&state, &["conversations", "suggestions"], q.min_position.as_deref(), &headers).await?;
    let conversation = conversation_row(&state, caller.tenant_id, id).await?;
    let pending = suggestion_rows(&state, caller.tenant_id, id, Some("pending")).await?;
    Ok(Json(detail_json(&conversation, &pending.iter().collect::<Vec<_>>())))
}

/// One message (either direction).
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct MessageItem {
    pub id: Uuid,
    pub direction: String,
    pub author: String,
    pub text: String,
    pub attachments: Value,
    pub status: String,
    pub provider_message_id: Option<String>,
    pub suggestion_id: Option<Uuid>,
    pub failure_reason: Option<String>,
    pub actor: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub sequence: i64,
}

#[derive(Debug, Deserialize)]
pub struct MessagesQuery {
    cursor: Option<String>,
    limit: Option<i64>,
    min_position: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct MessageCursor {
    t: DateTime<Utc>,
    id: Uuid,
}

/// `GET /api/conversations/{id}/messages`: oldest first, cursor pagination.
pub async fn messages(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    ApiQuery(q): ApiQuery<MessagesQuery>,
) -> Result<Json<Value>, ApiError> {
    consistent(&state, &["conversations", "messages"], q.min_position.as_deref(), &headers).await?;
    conversation_row(&state, caller.tenant_id, id).await?;
    let limit = limit(q.limit, 50, 200)?;
    let cursor: Option<MessageCursor> = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let rows: Vec<MessageItem> = sqlx::query_as(
        "SELECT message_id AS id, direction, author, text, attachments, status, provider_message_id, suggestion_id, \
                failure_reason, actor, created_at, sent_at, delivered_at, sequence \
           FROM rm_messages WHERE tenant_id = $1 AND conversation_id = $2 \
            AND ($3::timestamptz IS NULL OR (created_at, message_id) > ($3, $4)) \
          ORDER BY created_at, message_id LIMIT $5",
    )
    .bind(caller.tenant_id)
    .bind(id)
    .bind(cursor.as_ref().map(|c| c.t))
    .bind(cursor.as_ref().map(|c| c.id))
    .bind(limit + 1)
    .fetch_all(&state.pool)
    .await?;
    let has_more = rows.len() as i64 > limit;
    let items: Vec<MessageItem> = rows.into_iter().take(limit as usize).collect();
    let next_cursor = has_more
        .then(|| items.last().map(|m| encode_cursor(&json!(MessageCursor { t: m.created_at, id: m.id }))))
        .flatten();
    Ok(Json(json!({ "items": items, "next_cursor": next_cursor })))
}

#[derive(Debug, Deserialize)]
pub struct SuggestionsQuery {
    status: Option<String>,
    min_position: Option<String>,
}

/// `GET /api/conversations/{id}/suggestions`: oldest first (the operator answers in order).
pub async fn suggestions(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    ApiQuery(q): ApiQuery<SuggestionsQuery>,
) -> Result<Json<Value>, ApiError> {
    consistent(&state, &["conversations", "suggestions"], q.min_position.as_deref(), &headers).await?;
    conversation_row(&state, caller.tenant_id, id).await?;
    let rows = suggestion_rows(&state, caller.tenant_id, id, q.status.as_deref()).await?;
    Ok(Json(json!({ "items": rows.iter().map(suggestion_json).collect::<Vec<_>>() })))
}

/// The answer of a command endpoint: what changed and the position to wait for.
pub(crate) fn accepted(
    outcome: &crate::store::Outcome<aisales_domain::conversation::Conversation>,
    extra: Value,
) -> Response {
    let position = conversations::position_of(outcome);
    let mut body =
        json!({ "position": position, "status": outcome.state.status.as_str(), "sequence": outcome.sequence });
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    let mut resp = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Some(p) = position.and_then(|p| HeaderValue::from_str(&p).ok()) {
        resp.headers_mut().insert("x-position", p);
    }
    resp
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextBody {
    text: String,
}

/// When a reply should go out for the tenant's delay settings (or why it may not).
async fn send_plan(state: &AppState, tenant: Uuid, text: &str) -> Result<(DateTime<Utc>, Option<String>), ApiError> {
    let t = crate::tenancy::get_tenant(&state.pool, tenant).await?.ok_or(ApiError::NotFound("tenant"))?;
    let now = Utc::now();
    let working = reply::is_working_time(&t.timezone, t.working_hours_start, t.working_hours_end, &t.working_days, now);
    let (base, jitter) = (rand::random::<f64>(), rand::random::<f64>() * 2.0 - 1.0);
    match reply::plan_delay(&t.settings, text.chars().count(), working, base, jitter) {
        DelayPlan::SendAfter { delay_ms, .. } => Ok((now + chrono::Duration::milliseconds(delay_ms as i64), None)),
        DelayPlan::AutoReply { text } => Ok((now, Some(text))),
        DelayPlan::Hold => Err(ApiError::Conflict("sending is disabled outside working hours".into())),
    }
}

/// `POST /api/conversations/{id}/messages`: the operator's own reply.
pub async fn reply(
    State(state): State<AppState>,
    caller: Caller,
    CommandMeta(meta): CommandMeta,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<TextBody>,
) -> Result<Response, ApiError> {
    let reply_id = Uuid::now_v7();
    let send_after = Utc::now();
    let out =
        conversations::execute(&state, caller.tenant_id, id, C::Reply { reply_id, text: body.text, send_after }, &meta)
            .await?;
    Ok(accepted(&out, json!({ "message_id": reply_id })))
}

async fn suggestion_conversation(state: &AppState, tenant: Uuid, suggestion: Uuid) -> Result<Uuid, ApiError> {
    sqlx::query_scalar("SELECT conversation_id FROM rm_suggestions WHERE tenant_id = $1 AND suggestion_id = $2")
        .bind(tenant)
        .bind(suggestion)
        .fetch_optional(&state.pool)
        .await?
        .ok_or(ApiError::NotFound("suggestion"))
}

/// `POST /api/suggestions/{id}/approve`.
pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    CommandMeta(meta): CommandMeta,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let conversation = suggestion_conversation(&state, caller.tenant_id, id).await?;
    let text: String = sqlx::query_scalar("SELECT text FROM rm_suggestions WHERE suggestion_id = $1")
        .bind(id)
        .fetch_one(&state.pool)
        .await?;
    let reply_id = Uuid::now_v7();
    let (send_after, night_text) = send_plan(&state, caller.tenant_id, &text).await?;
    let command = match night_text {
        // Outside working hours with an auto-reply configured, the auto-reply goes out instead.
        Some(text) => C::Edit { suggestion_id: id, reply_id, text, send_after },
        None => C::Approve { suggestion_id: id, reply_id, send_after },
    };
    let out = conversations::execute(&state, caller.tenant_id, conversation, command, &meta).await?;
    Ok(accepted(&out, json!({ "conversation_id": conversation, "message_id": reply_id, "send_after": send_after })))
}

/// `POST /api/suggestions/{id}/edit` with `{"text"}`.
pub async fn edit(
    State(state): State<AppState>,
    caller: Caller,
    CommandMeta(meta): CommandMeta,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<TextBody>,
) -> Result<Response, ApiError> {
    let conversation = suggestion_conversation(&state, caller.tenant_id, id).await?;
    let reply_id = Uuid::now_v7();
    let (send_after, _) = send_plan(&state, caller.tenant_id, &body.text).await?;
    let out = conversations::execute(
        &state,
        caller.tenant_id,
        conversation,
        C::Edit { suggestion_id: id, reply_id, text: body.text, send_after },
        &meta,
    )
    .await?;
    Ok(accepted(&out, json!({ "conversation_id": conversation, "message_id": reply_id, "send_after": send_after })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    reason: Option<String>,
}

fn optional_body<T: Default + for<'de> Deserialize<'de>>(body: &axum::body::Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::invalid("invalid_json", format!("the body is not valid: {e}")))
}

/// `POST /api/suggestions/{id}/reject` with optional `{"reason"}`.
pub async fn reject(
    State(state): State<AppState>,
    caller: Caller,
    CommandMeta(meta): CommandMeta,
    Path(id): Path<Uuid>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let ReasonBody { reason } = optional_body(&body)?;
    let conversation = suggestion_conversation(&state, caller.tenant_id, id).await?;
    let out =
        conversations::execute(&state, caller.tenant_id, conversation, C::Reject { suggestion_id: id, reason }, &meta)
            .await?;
    Ok(accepted(&out, json!({ "conversation_id": conversation })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalateBody {
    reason: Option<String>,
    suggestion_id: Option<Uuid>,
}

/// `POST /api/conversations/{id}/escalate`.
pub async fn escalate(
    State(state): State<AppState>,
    caller: Caller,
    CommandMeta(meta): CommandMeta,
    Path(id): Path<Uuid>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let b: EscalateBody = optional_body(&body)?;
    let reason = b.reason.unwrap_or_else(|| "escalated by an operator".into());
    let out = conversations::execute(
        &state,
        caller.tenant_id,
        id,
        C::Escalate { reason, suggestion_id: b.suggestion_id },
        &meta,
    )
    .await?;
    Ok(accepted(&out, json!({})))
}

/// `POST /api/conversations/{id}/resolve`.
pub async fn resolve(
    State(state): State<AppState>,
    caller: Caller,
    CommandMeta(meta): CommandMeta,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let out = conversations::execute(&state, caller.tenant_id, id, C::Resolve, &meta).await?;
    Ok(accepted(&out, json!({})))
}

/// `POST /api/conversations/{id}/reopen`.
pub async fn reopen(
    State(state): State<AppState>,
    caller: Caller,
    CommandMeta(meta): CommandMeta,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let out = conversations::execute(&state, caller.tenant_id, id, C::Reopen, &meta).await?;
    Ok(accepted(&out, json!({})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MuteBody {
    muted: bool,
}

/// `POST /api/conversations/{id}/mute` with `{"muted": bool}`.
pub async fn mute(
    State(state): State<AppState>,
    caller: Caller,
    CommandMeta(meta): CommandMeta,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<MuteBody>,
) -> Result<Response, ApiError> {
    let out = conversations::execute(&state, caller.tenant_id, id, C::Mute { muted: b.muted }, &meta).await?;
    Ok(accepted(&out, json!({ "muted": b.muted })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    operator: Option<String>,
}

/// `POST /api/conversations/{id}/assign` with `{"operator": user id or null}`.
pub async fn assign(
    State(state): State<AppState>,
    caller: Caller,
    CommandMeta(meta): CommandMeta,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<AssignBody>,
) -> Result<Response, ApiError> {
    if let Some(op) = &b.operator {
        let user: Uuid = op.parse().map_err(|_| ApiError::invalid("invalid_operator", "operator is a user id"))?;
        crate::tenancy::get_user(&state.pool, caller.tenant_id, user).await?.ok_or(ApiError::NotFound("user"))?;
    }
    let out = conversations::execute(&state, caller.tenant_id, id, C::Assign { operator: b.operator }, &meta).await?;
    Ok(accepted(&out, json!({})))
}

/// `POST /api/conversations/{id}/read`.
pub async fn mark_read(
    State(state): State<AppState>,
    caller: Caller,
    CommandMeta(meta): CommandMeta,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let out = conversations::execute(&state, caller.tenant_id, id, C::MarkRead, &meta).await?;
    Ok(accepted(&out, json!({})))
}

/// `POST /api/conversations/{id}/suggestions`: ask for a new draft now.
pub async fn request_suggestion(
    State(state): State<AppState>,
    caller: Caller,
    CommandMeta(meta): CommandMeta,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let last: Option<Uuid> = sqlx::query_scalar(
        "SELECT message_id FROM rm_messages WHERE tenant_id = $1 AND conversation_id = $2 AND direction = 'in' \
         ORDER BY created_at DESC, message_id DESC LIMIT 1",
    )
    .bind(caller.tenant_id)
    .bind(id)
    .fetch_optional(&state.pool)
    .await?;
    let trigger = last.ok_or_else(|| ApiError::Conflict("there is no customer message to answer".into()))?;
    let request_id = Uuid::now_v7();
    let out = conversations::execute(
        &state,
        caller.tenant_id,
        id,
        C::RequestSuggestion { request_id, trigger_message_id: trigger, at: Utc::now() },
        &meta,
    )
    .await?;
    Ok(accepted(&out, json!({ "request_id": request_id })))
}

/// `POST /api/conversations/{id}/replies/{reply_id}/retry`: try a failed reply again.
pub async fn retry_reply(
    State(state): State<AppState>,
    caller: Caller,
    CommandMeta(meta): CommandMeta,
    Path((id, reply_id)): Path<(Uuid, Uuid)>,
) -> Result<Response, ApiError> {
    let out = conversations::execute(&state, caller.tenant_id, id, C::RetryReply { reply_id }, &meta).await?;
    Ok(accepted(&out, json!({ "message_id": reply_id })))
}
