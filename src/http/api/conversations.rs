//! Conversations: the list, one conversation, its messages and suggestions (read models), and the
//! operator's actions (commands on the aggregate).

use std::time::Duration;

use aisales_domain::conversation::{ChannelKind, Status};
use aisales_projections::Position;
use aisales_projections::conversation::{ConversationRow, SuggestionRow};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::paging::{Items, Page, TimeKey, decode_cursor, limit};
use super::views::{Accepted, ConversationDetail, ConversationView, SuggestionView};
use crate::application::consistency;
use crate::application::conversations::{self as commands, Done, Queued};
use crate::auth::Caller;
use crate::http::command::CommandMeta;
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

/// Waits until `projectors` applied the position the caller asked to read at, if any.
pub(crate) async fn consistent(
    state: &AppState,
    projectors: &[&str],
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    if let Some(p) = min_position(query, headers)? {
        consistency::wait_for(&state.pool, projectors, p, CONSISTENCY_WAIT).await?;
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    status: Option<Status>,
    channel: Option<ChannelKind>,
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
    min_position: Option<String>,
}

/// Rows of a read model, read as JSON text and decoded into their row type.
pub(crate) fn decode_rows<R: for<'de> Deserialize<'de>>(rows: &[String]) -> Result<Vec<R>, ApiError> {
    rows.iter().map(|r| serde_json::from_str(r)).collect::<Result<_, _>>().map_err(|e| ApiError::Unexpected(e.into()))
}

/// `GET /api/conversations`: newest activity first, stable order, cursor pagination.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<ConversationView>>, ApiError> {
    consistent(&state, &["conversations"], q.min_position.as_deref(), &headers).await?;
    let limit = limit(q.limit, 50, 200)?;
    let cursor: Option<TimeKey> = q.cursor.as_deref().map(decode_cursor).transpose()?;
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
    .bind(q.status.map(Status::as_str))
    .bind(q.channel.map(ChannelKind::as_str))
    .bind(&search)
    .bind(cursor.map(|c| c.t))
    .bind(cursor.map(|c| c.id))
    .bind(limit + 1)
    .fetch_all(&state.pool)
    .await?;
    let rows: Vec<ConversationRow> = decode_rows(&rows)?;
    Ok(Json(Page::of(
        rows,
        limit,
        |r| r.last_message_at.map(|t| TimeKey { t, id: r.conversation_id }),
        |r| ConversationView::from(&r),
    )))
}

#[derive(Debug, Deserialize)]
pub struct ConsistencyQuery {
    min_position: Option<String>,
}

/// A conversation of `tenant` from the read model.
pub(crate) async fn conversation_row(state: &AppState, tenant: Uuid, id: Uuid) -> Result<ConversationRow, ApiError> {
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

/// Suggestions of a conversation, oldest first, optionally of one status.
pub(crate) async fn suggestion_rows(
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
    decode_rows(&rows)
}

/// `GET /api/conversations/{id}`: the conversation with its pending suggestions.
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    ApiQuery(q): ApiQuery<ConsistencyQuery>,
) -> Result<Json<ConversationDetail>, ApiError> {
    consistent(&state, &["conversations", "suggestions"], q.min_position.as_deref(), &headers).await?;
    let conversation = conversation_row(&state, caller.tenant_id, id).await?;
    let pending = suggestion_rows(&state, caller.tenant_id, id, Some("pending")).await?;
    Ok(Json(ConversationDetail::new(&conversation, &pending)))
}

/// One message (either direction).
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct MessageItem {
    pub id: Uuid,
    pub direction: String,
    pub author: String,
    pub text: String,
    pub attachments: serde_json::Value,
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

/// `GET /api/conversations/{id}/messages`: oldest first, cursor pagination.
pub async fn messages(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    ApiQuery(q): ApiQuery<MessagesQuery>,
) -> Result<Json<Page<MessageItem>>, ApiError> {
    consistent(&state, &["conversations", "messages"], q.min_position.as_deref(), &headers).await?;
    conversation_row(&state, caller.tenant_id, id).await?;
    let limit = limit(q.limit, 50, 200)?;
    let cursor: Option<TimeKey> = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let rows: Vec<MessageItem> = sqlx::query_as(
        "SELECT message_id AS id, direction, author, text, attachments, status, provider_message_id, suggestion_id, \
                failure_reason, actor, created_at, sent_at, delivered_at, sequence \
           FROM rm_messages WHERE tenant_id = $1 AND conversation_id = $2 \
            AND ($3::timestamptz IS NULL OR (created_at, message_id) > ($3, $4)) \
          ORDER BY created_at, message_id LIMIT $5",
    )
    .bind(caller.tenant_id)
    .bind(id)
    .bind(cursor.map(|c| c.t))
    .bind(cursor.map(|c| c.id))
    .bind(limit + 1)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(Page::of(rows, limit, |m| Some(TimeKey { t: m.created_at, id: m.id }), |m| m)))
}

#[derive(Debug, Deserialize)]
pub struct SuggestionsQuery {
    status: Option<aisales_projections::conversation::SuggestionState>,
    min_position: Option<String>,
}

/// `GET /api/conversations/{id}/suggestions`: oldest first (the operator answers in order).
pub async fn suggestions(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    ApiQuery(q): ApiQuery<SuggestionsQuery>,
) -> Result<Json<Items<SuggestionView>>, ApiError> {
    consistent(&state, &["conversations", "suggestions"], q.min_position.as_deref(), &headers).await?;
    conversation_row(&state, caller.tenant_id, id).await?;
    let rows = suggestion_rows(&state, caller.tenant_id, id, q.status.map(|s| s.as_str())).await?;
    Ok(Json(Items { items: rows.iter().map(SuggestionView::from).collect() }))
}

/// The answer of a command endpoint: 202 with what changed, the position to wait for (also in
/// `X-Position`), and what the command created.
pub(crate) fn accepted<T: Serialize>(done: &Done, created: T) -> Response {
    let position = done.position.map(|p| p.to_string());
    let header = position.as_deref().and_then(|p| HeaderValue::from_str(p).ok());
    let body = Accepted { position, status: done.status.as_str(), sequence: done.sequence, created };
    let mut resp = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Some(p) = header {
        resp.headers_mut().insert("x-position", p);
    }
    resp
}

/// A command that created nothing worth naming.
#[derive(Debug, Serialize)]
pub(crate) struct Nothing {}

/// The reply a command queued.
#[derive(Debug, Serialize)]
struct ReplyCreated {
    message_id: Uuid,
}

/// The reply a decision on a suggestion queued, in its conversation.
#[derive(Debug, Serialize)]
struct DecisionQueued {
    conversation_id: Uuid,
    message_id: Uuid,
    send_after: DateTime<Utc>,
}

impl DecisionQueued {
    fn of(done: &Done, q: Queued) -> Self {
        DecisionQueued { conversation_id: done.conversation_id, message_id: q.reply_id, send_after: q.send_after }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextBody {
    text: String,
}

/// A stored file of the caller's tenant sent with a reply.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentBody {
    sha256: String,
    file_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyBody {
    #[serde(default)]
    text: String,
    attachment: Option<AttachmentBody>,
}

/// `POST /api/conversations/{id}/messages` with `{"text"}` and optionally
/// `"attachment": {"sha256", "file_name"}` (a file of the tenant's media store; the text is then
/// its caption and may be empty): the operator's own reply.
pub async fn reply(
    State(state): State<AppState>,
    caller: Caller,
    CommandMeta(meta): CommandMeta,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<ReplyBody>,
) -> Result<Response, ApiError> {
    let file = body
        .attachment
        .map(|a| crate::application::conversations::FileRef { sha256: a.sha256, file_name: a.file_name });
    let (done, q) = commands::reply_with_file(&state, caller.tenant_id, id, body.text, file, &meta).await?;
    Ok(accepted(&done, ReplyCreated { message_id: q.reply_id }))
}

/// `POST /api/suggestions/{id}/approve`.
pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    CommandMeta(meta): CommandMeta,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let (done, q) = commands::approve_suggestion(&state, caller.tenant_id, id, &meta).await?;
    Ok(accepted(&done, DecisionQueued::of(&done, q)))
}

/// `POST /api/suggestions/{id}/edit` with `{"text"}`.
pub async fn edit(
    State(state): State<AppState>,
    caller: Caller,
    CommandMeta(meta): CommandMeta,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<TextBody>,
) -> Result<Response, ApiError> {
    let (done, q) = commands::edit_suggestion(&state, caller.tenant_id, id, body.text, &meta).await?;
    Ok(accepted(&done, DecisionQueued::of(&done, q)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    reason: Option<String>,
}

/// A JSON body that may be absent (or blank): the default then.
pub(crate) fn optional_body<T: Default + for<'de> Deserialize<'de>>(body: &axum::body::Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::invalid("invalid_json", format!("the body is not valid: {e}")))
}

/// The conversation a command on a suggestion acted on.
#[derive(Debug, Serialize)]
struct InConversation {
    conversation_id: Uuid,
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
    let done = commands::reject_suggestion(&state, caller.tenant_id, id, reason, &meta).await?;
    Ok(accepted(&done, InConversation { conversation_id: done.conversation_id }))
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
    let done = commands::escalate(&state, caller.tenant_id, id, b.reason, b.suggestion_id, &meta).await?;
    Ok(accepted(&done, Nothing {}))
}

/// `POST /api/conversations/{id}/resolve`.
pub async fn resolve(
    State(state): State<AppState>,
    caller: Caller,
    CommandMeta(meta): CommandMeta,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let done = commands::resolve(&state, caller.tenant_id, id, &meta).await?;
    Ok(accepted(&done, Nothing {}))
}

/// `POST /api/conversations/{id}/reopen`.
pub async fn reopen(
    State(state): State<AppState>,
    caller: Caller,
    CommandMeta(meta): CommandMeta,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let done = commands::reopen(&state, caller.tenant_id, id, &meta).await?;
    Ok(accepted(&done, Nothing {}))
}

#[derive(Debug, Serialize, Deserialize)]
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
    let done = commands::mute(&state, caller.tenant_id, id, b.muted, &meta).await?;
    Ok(accepted(&done, b))
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
    let done = commands::assign(&state, caller.tenant_id, id, b.operator, &meta).await?;
    Ok(accepted(&done, Nothing {}))
}

/// `POST /api/conversations/{id}/read`.
pub async fn mark_read(
    State(state): State<AppState>,
    caller: Caller,
    CommandMeta(meta): CommandMeta,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let done = commands::mark_read(&state, caller.tenant_id, id, &meta).await?;
    Ok(accepted(&done, Nothing {}))
}

#[derive(Debug, Serialize)]
struct DraftRequested {
    request_id: Uuid,
}

/// `POST /api/conversations/{id}/suggestions`: ask for a new draft now.
pub async fn request_suggestion(
    State(state): State<AppState>,
    caller: Caller,
    CommandMeta(meta): CommandMeta,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let (done, request_id) = commands::request_suggestion(&state, caller.tenant_id, id, &meta).await?;
    Ok(accepted(&done, DraftRequested { request_id }))
}

/// `POST /api/conversations/{id}/replies/{reply_id}/retry`: try a failed reply again.
pub async fn retry_reply(
    State(state): State<AppState>,
    caller: Caller,
    CommandMeta(meta): CommandMeta,
    Path((id, reply_id)): Path<(Uuid, Uuid)>,
) -> Result<Response, ApiError> {
    let done = commands::retry_reply(&state, caller.tenant_id, id, reply_id, &meta).await?;
    Ok(accepted(&done, ReplyCreated { message_id: reply_id }))
}
