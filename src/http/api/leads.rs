//! Leads (HTTP): the board (`GET /api/leads`), one lead with its timeline, the operators' actions
//! (qualify, won, lost, retry the outreach, assign), the funnel per day and source, lead forms and
//! the escalation bot. Every query is scoped to the caller's tenant: another tenant's lead is 404.

use aisales_domain::lead::{LeadFormKind, LeadKind, LeadStatus};
use aisales_projections::lead_views::LeadRow;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::conversations::{consistent, decode_rows};
use super::paging::{Items, Page, TimeKey, decode_cursor, limit};
use crate::application::leads::{self as commands, Action};
use crate::auth::Caller;
use crate::http::command::CommandMeta;
use crate::http::{ApiError, ApiJson, ApiQuery, AppState};

/// Projectors a lead read waits for with `min_position`.
const PROJECTORS: &[&str] = &["leads"];

/// A lead on the board.
#[derive(Debug, Serialize)]
pub struct LeadView {
    pub id: Uuid,
    pub status: String,
    pub kind: String,
    pub source: String,
    pub form_id: Uuid,
    pub form_kind: String,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub telegram: Option<String>,
    pub preferred_channel: Option<String>,
    pub channel: Option<String>,
    pub vin: Option<String>,
    pub car: Option<String>,
    pub gearbox_type: Option<String>,
    pub city: Option<String>,
    pub failure_reason: Option<String>,
    pub note: Option<String>,
    pub conversation_id: Option<Uuid>,
    pub assigned_to: Option<String>,
    pub lost_reason: Option<String>,
    pub submissions: i32,
    pub attempts: i32,
    pub due_at: Option<DateTime<Utc>>,
    pub no_reply_due_at: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
    pub contacted_at: Option<DateTime<Utc>>,
    pub replied_at: Option<DateTime<Utc>>,
    pub won_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl From<LeadRow> for LeadView {
    fn from(r: LeadRow) -> Self {
        LeadView {
            id: r.lead_id,
            status: r.status,
            kind: r.kind,
            source: r.source,
            form_id: r.form_id,
            form_kind: r.form_kind,
            name: r.name,
            phone: r.phone,
            email: r.email,
            telegram: r.telegram,
            preferred_channel: r.preferred_channel,
            channel: r.channel,
            vin: r.vin,
            car: r.car,
            gearbox_type: r.gearbox_type,
            city: r.city,
            failure_reason: r.failure_reason,
            note: r.note,
            conversation_id: r.conversation_id,
            assigned_to: r.assigned_to,
            lost_reason: r.lost_reason,
            submissions: r.submissions,
            attempts: r.attempts,
            due_at: r.due_at,
            no_reply_due_at: r.no_reply_due_at,
            received_at: r.received_at,
            contacted_at: r.contacted_at,
            replied_at: r.replied_at,
            won_at: r.won_at,
            updated_at: r.updated_at,
        }
    }
}

/// One lead with everything extracted and its timeline.
#[derive(Debug, Serialize)]
pub struct LeadDetail {
    #[serde(flatten)]
    pub lead: LeadView,
    pub fields: Value,
    /// The first message.
    pub text: String,
    pub timeline: Vec<TimelineEntry>,
}

/// One event of a lead.
#[derive(Debug, Serialize)]
pub struct TimelineEntry {
    pub sequence: i64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub at: DateTime<Utc>,
    pub actor: Option<String>,
    pub data: Value,
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    kind: Option<String>,
    source: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
    min_position: Option<String>,
}

/// `GET /api/leads`: newest first; filters `status`, `kind`, `source` (the form kind or the quiz's
/// name); cursor pagination.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<LeadView>>, ApiError> {
    consistent(&state, PROJECTORS, q.min_position.as_deref(), &headers).await?;
    let limit = limit(q.limit, 50, 200)?;
    let status = q
        .status
        .as_deref()
        .map(|s| {
            LeadStatus::parse(s).ok_or_else(|| ApiError::invalid("invalid_status", format!("unknown lead status {s}")))
        })
        .transpose()?;
    let kind = q
        .kind
        .as_deref()
        .map(|k| {
            LeadKind::parse(k).ok_or_else(|| ApiError::invalid("invalid_kind", "kind is gearbox, engine or tires"))
        })
        .transpose()?;
    let cursor: Option<TimeKey> = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT row_to_json(t)::text FROM rm_leads t \
          WHERE tenant_id = $1 \
            AND ($2::text IS NULL OR status = $2) \
            AND ($3::text IS NULL OR kind = $3) \
            AND ($4::text IS NULL OR form_kind = $4 OR source = $4) \
            AND ($5::timestamptz IS NULL OR (received_at, lead_id) < ($5, $6)) \
          ORDER BY received_at DESC, lead_id DESC LIMIT $7",
    )
    .bind(caller.tenant_id)
    .bind(status.map(LeadStatus::as_str))
    .bind(kind.map(LeadKind::as_str))
    .bind(q.source.as_deref())
    .bind(cursor.map(|c| c.t))
    .bind(cursor.map(|c| c.id))
    .bind(limit + 1)
    .fetch_all(&state.pool)
    .await?;
    let rows: Vec<LeadRow> = decode_rows(&rows)?;
    Ok(Json(Page::of(rows, limit, |l| Some(TimeKey { t: l.received_at, id: l.lead_id }), LeadView::from)))
}

async fn lead_row(state: &AppState, tenant: Uuid, id: Uuid) -> Result<LeadRow, ApiError> {
    let text: String =
        sqlx::query_scalar("SELECT row_to_json(t)::text FROM rm_leads t WHERE tenant_id = $1 AND lead_id = $2")
            .bind(tenant)
            .bind(id)
            .fetch_optional(&state.pool)
            .await?
            .ok_or(ApiError::NotFound("lead"))?;
    serde_json::from_str(&text).map_err(|e| ApiError::Unexpected(e.into()))
}

#[derive(Debug, Deserialize)]
pub struct ConsistencyQuery {
    min_position: Option<String>,
}

/// `GET /api/leads/{id}`: the lead, its fields, its first message and its timeline.
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    ApiQuery(q): ApiQuery<ConsistencyQuery>,
) -> Result<Json<LeadDetail>, ApiError> {
    consistent(&state, PROJECTORS, q.min_position.as_deref(), &headers).await?;
    let row = lead_row(&state, caller.tenant_id, id).await?;
    let events: Vec<(i64, String, String, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT sequence, event_type, payload::text, metadata::text, recorded_at FROM events \
          WHERE aggregate_type = 'lead' AND aggregate_id = $1 ORDER BY sequence",
    )
    .bind(id.to_string())
    .fetch_all(&state.pool)
    .await?;
    let mut opened = Vec::with_capacity(events.len());
    for (sequence, event_type, payload, metadata, at) in events {
        let payload =
            aisales_projections::pii::opened(&state.pool, &event_type, payload).await.map_err(ApiError::Unexpected)?;
        opened.push((sequence, event_type, payload, metadata, at));
    }
    let timeline = opened
        .into_iter()
        .map(|(sequence, event_type, payload, metadata, at)| {
            let payload: Value = serde_json::from_str(&payload).unwrap_or(Value::Null);
            let metadata: Value = serde_json::from_str(&metadata).unwrap_or(Value::Null);
            TimelineEntry {
                sequence,
                data: payload.get(&event_type).cloned().unwrap_or(payload),
                event_type,
                at,
                actor: metadata.get("actor").and_then(Value::as_str).map(str::to_string),
            }
        })
        .collect();
    let fields = row.fields.clone();
    let text = row.text.clone();
    Ok(Json(LeadDetail { lead: LeadView::from(row), fields, text, timeline }))
}

/// What an action did.
#[derive(Debug, Serialize)]
struct Changed {
    id: Uuid,
    status: Option<&'static str>,
    position: Option<String>,
}

async fn act(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    action: Action,
    meta: &crate::store::EventMetadata,
) -> Result<Response, ApiError> {
    let out = commands::act(state, caller.tenant_id, id, action, meta).await?;
    let position = out.committed.map(|c| c.position.to_string());
    let header = position.as_deref().and_then(|p| HeaderValue::from_str(p).ok());
    let body = Changed { id, status: out.state.status.map(LeadStatus::as_str), position };
    let mut resp = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Some(p) = header {
        resp.headers_mut().insert("x-position", p);
    }
    Ok(resp)
}

/// `POST /api/leads/{id}/qualify`.
pub async fn qualify(
    State(state): State<AppState>,
    caller: Caller,
    CommandMeta(meta): CommandMeta,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    act(&state, &caller, id, Action::Qualify, &meta).await
}

#[derive(Debug, Default, Deserialize)]
pub struct WonBody {
    note: Option<String>,
}

/// `POST /api/leads/{id}/won` with `{"note"?}`.
pub async fn won(
    State(state): State<AppState>,
    caller: Caller,
    CommandMeta(meta): CommandMeta,
    Path(id): Path<Uuid>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let body: WonBody = if body.iter().all(u8::is_ascii_whitespace) {
        WonBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid("invalid_json", e.to_string()))?
    };
    let note = body.note;
    act(&state, &caller, id, Action::Win { note }, &meta).await
}

#[derive(Debug, Deserialize)]
pub struct LostBody {
    #[serde(default)]
    reason: String,
}

/// `POST /api/leads/{id}/lost` with `{"reason"}`.
pub async fn lost(
    State(state): State<AppState>,
    caller: Caller,
    CommandMeta(meta): CommandMeta,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<LostBody>,
) -> Result<Response, ApiError> {
    act(&state, &caller, id, Action::Lose { reason: body.reason }, &meta).await
}

/// `POST /api/leads/{id}/retry`: a new outreach round (after a failure or no reply).
pub async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    CommandMeta(meta): CommandMeta,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    act(&state, &caller, id, Action::Retry, &meta).await
}

#[derive(Debug, Deserialize)]
pub struct AssignBody {
    operator: Option<String>,
}

/// `POST /api/leads/{id}/assign` with `{"operator": user id | null}`.
pub async fn assign(
    State(state): State<AppState>,
    caller: Caller,
    CommandMeta(meta): CommandMeta,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<AssignBody>,
) -> Result<Response, ApiError> {
    act(&state, &caller, id, Action::Assign { operator: body.operator }, &meta).await
}

/// One day and source of the funnel.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct FunnelRow {
    pub day: NaiveDate,
    pub source: String,
    pub received: i64,
    pub contacted: i64,
    pub replied: i64,
    pub won: i64,
    pub failed: i64,
}

#[derive(Debug, Deserialize)]
pub struct StatsQuery {
    days: Option<i64>,
}

/// `GET /api/leads/stats?days=N`: per day (in the tenant's time zone) and source, how many leads
/// came, were contacted, replied and were won (and how many failed).
pub async fn stats(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> Result<Json<Items<FunnelRow>>, ApiError> {
    let days = q.days.unwrap_or(30);
    if !(1..=366).contains(&days) {
        return Err(ApiError::invalid("invalid_days", "days must be between 1 and 366"));
    }
    let tz: String = sqlx::query_scalar("SELECT timezone FROM tenants WHERE id = $1")
        .bind(caller.tenant_id)
        .fetch_optional(&state.pool)
        .await?
        .unwrap_or_else(|| "UTC".into());
    let items: Vec<FunnelRow> = sqlx::query_as(
        "SELECT (received_at AT TIME ZONE $2)::date AS day, source, \
                count(*) AS received, count(contacted_at) AS contacted, count(replied_at) AS replied, \
                count(won_at) AS won, count(*) FILTER (WHERE status = 'failed') AS failed \
           FROM rm_leads WHERE tenant_id = $1 AND received_at >= now() - make_interval(days => $3::int) \
          GROUP BY 1, 2 ORDER BY 1 DESC, 2",
    )
    .bind(caller.tenant_id)
    .bind(&tz)
    .bind(days as i32)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(Items { items }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewFormBody {
    kind: String,
    name: Option<String>,
}

/// `POST /api/lead-forms` with `{"kind": "marquiz"|"generic", "name"?}`: `{"form_id", "webhook_url"}`
/// (the URL carries the form's secret and is shown only here).
pub async fn create_form(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewFormBody>,
) -> Result<(StatusCode, Json<commands::FormCreated>), ApiError> {
    let kind = LeadFormKind::parse(&body.kind)
        .ok_or_else(|| ApiError::invalid("invalid_kind", "kind is marquiz or generic"))?;
    Ok((StatusCode::CREATED, Json(commands::add_form(&state, caller.tenant_id, kind, body.name).await?)))
}

/// `GET /api/lead-forms`: the tenant's forms (without their secrets).
pub async fn list_forms(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Items<commands::Form>>, ApiError> {
    Ok(Json(Items { items: commands::list_forms(&state, caller.tenant_id).await? }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotBody {
    bot_token: String,
    chat_id: String,
}

/// `PUT /api/lead-settings/escalation-bot` with `{"bot_token", "chat_id"}`: the Telegram bot that
/// tells the team about failed leads and leads that do not answer (the token is stored encrypted).
pub async fn set_bot(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<BotBody>,
) -> Result<StatusCode, ApiError> {
    commands::set_escalation_bot(&state, caller.tenant_id, &body.bot_token, &body.chat_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
