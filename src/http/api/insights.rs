//! Escalations, customers, daily statistics and webhook dead letters of the caller's tenant.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::paging::Items;
use crate::auth::Caller;
use crate::http::{ApiError, ApiQuery, AppState};

/// Whether an escalation is still open.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationState {
    Open,
    Closed,
}

impl EscalationState {
    fn as_str(self) -> &'static str {
        match self {
            EscalationState::Open => "open",
            EscalationState::Closed => "closed",
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct EscalationsQuery {
    status: Option<EscalationState>,
    limit: Option<i64>,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Escalation {
    conversation_id: Uuid,
    sequence: i64,
    reason: String,
    suggestion_id: Option<Uuid>,
    actor: Option<String>,
    status: String,
    created_at: DateTime<Utc>,
    closed_at: Option<DateTime<Utc>>,
    closed_reason: Option<String>,
}

/// `GET /api/escalations?status=open|closed`: newest first.
pub async fn escalations(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<EscalationsQuery>,
) -> Result<Json<Items<Escalation>>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let items: Vec<Escalation> = sqlx::query_as(
        "SELECT conversation_id, sequence, reason, suggestion_id, actor, status, created_at, closed_at, closed_reason \
           FROM rm_escalations WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2) ORDER BY created_at DESC LIMIT $3",
    )
    .bind(caller.tenant_id)
    .bind(q.status.map(EscalationState::as_str))
    .bind(limit)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(Items { items }))
}

#[derive(Debug, Deserialize)]
pub struct CustomersQuery {
    q: Option<String>,
    limit: Option<i64>,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Customer {
    id: Uuid,
    channel: String,
    chat_id: String,
    name: Option<String>,
    phone: Option<String>,
    aliases: Vec<String>,
    conversation_id: Uuid,
    first_seen_at: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
    messages_count: i32,
}

const CUSTOMER: &str = "customer_id AS id, channel, chat_id, name, phone, aliases, conversation_id, first_seen_at, last_seen_at, messages_count";

/// `GET /api/customers?q=…`: most recently active first; search by name, phone or chat id.
pub async fn customers(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<CustomersQuery>,
) -> Result<Json<Items<Customer>>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let search =
        q.q.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| format!("%{}%", s.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")));
    let items: Vec<Customer> = sqlx::query_as(&format!(
        "SELECT {CUSTOMER} FROM rm_customers WHERE tenant_id = $1 \
            AND ($2::text IS NULL OR lower(coalesce(name, '') || ' ' || coalesce(phone, '') || ' ' || chat_id) LIKE $2) \
          ORDER BY last_seen_at DESC LIMIT $3"
    ))
    .bind(caller.tenant_id)
    .bind(&search)
    .bind(limit)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(Items { items }))
}

/// `GET /api/customers/{id}`.
pub async fn customer(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<Json<Customer>, ApiError> {
    sqlx::query_as(&format!("SELECT {CUSTOMER} FROM rm_customers WHERE tenant_id = $1 AND customer_id = $2"))
        .bind(caller.tenant_id)
        .bind(id)
        .fetch_optional(&state.pool)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("customer"))
}

/// Suggestions of a day, by outcome of drafting and decision.
#[derive(Debug, Serialize)]
pub struct SuggestionCounts {
    pub generated: i32,
    pub failed: i32,
    pub auto_send: i32,
    pub need_approval: i32,
    pub escalate: i32,
}

/// What operators (and the autosend policy) decided on a day, with the rates.
#[derive(Debug, Serialize)]
pub struct DecisionCounts {
    pub approved: i32,
    pub auto_sent: i32,
    pub edited: i32,
    pub rejected: i32,
    pub approval_rate: Option<f64>,
    pub edit_rate: Option<f64>,
    pub reject_rate: Option<f64>,
}

/// One UTC day of statistics.
#[derive(Debug, Serialize)]
pub struct DayStats {
    pub day: NaiveDate,
    pub messages_in: i32,
    pub messages_out: i32,
    pub suggestions: SuggestionCounts,
    pub decisions: DecisionCounts,
    pub escalations: i32,
    pub median_first_response_seconds: Option<f64>,
}

/// Statistics of a range of days.
#[derive(Debug, Serialize)]
pub struct DailyStats {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub days: Vec<DayStats>,
}

#[derive(Debug, Deserialize)]
pub struct StatsQuery {
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
}

/// `GET /api/stats/daily?from=YYYY-MM-DD&to=YYYY-MM-DD` (UTC days, default the last 30):
/// messages in/out, suggestions by decision, approval/edit/reject rates, median first response.
pub async fn daily(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> Result<Json<DailyStats>, ApiError> {
    let to = q.to.unwrap_or_else(|| Utc::now().date_naive());
    let from = q.from.unwrap_or(to - chrono::Duration::days(29));
    if from > to || (to - from).num_days() > 366 {
        return Err(ApiError::invalid("invalid_range", "from must be before to, and the range at most a year"));
    }
    #[derive(sqlx::FromRow)]
    struct Day {
        day: NaiveDate,
        messages_in: i32,
        messages_out: i32,
        suggestions_generated: i32,
        decided_auto_send: i32,
        decided_need_approval: i32,
        decided_escalate: i32,
        suggestions_failed: i32,
        approved: i32,
        auto_approved: i32,
        edited: i32,
        rejected: i32,
        escalations: i32,
        median: Option<f64>,
    }
    let rows: Vec<Day> = sqlx::query_as(
        "SELECT s.day, s.messages_in, s.messages_out, s.suggestions_generated, s.decided_auto_send, s.decided_need_approval, \
                s.decided_escalate, s.suggestions_failed, s.approved, s.auto_approved, s.edited, s.rejected, s.escalations, \
                (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY r.seconds) FROM rm_response_times r \
                  WHERE r.tenant_id = s.tenant_id AND r.day = s.day) AS median \
           FROM rm_daily_stats s WHERE s.tenant_id = $1 AND s.day BETWEEN $2 AND $3 ORDER BY s.day",
    )
    .bind(caller.tenant_id)
    .bind(from)
    .bind(to)
    .fetch_all(&state.pool)
    .await?;
    let rate = |part: i32, whole: i32| if whole > 0 { Some(f64::from(part) / f64::from(whole)) } else { None };
    let days: Vec<DayStats> = rows
        .into_iter()
        .map(|d| {
            let decided = d.approved + d.auto_approved + d.edited + d.rejected;
            DayStats {
                day: d.day,
                messages_in: d.messages_in,
                messages_out: d.messages_out,
                suggestions: SuggestionCounts {
                    generated: d.suggestions_generated,
                    failed: d.suggestions_failed,
                    auto_send: d.decided_auto_send,
                    need_approval: d.decided_need_approval,
                    escalate: d.decided_escalate,
                },
                decisions: DecisionCounts {
                    approved: d.approved,
                    auto_sent: d.auto_approved,
                    edited: d.edited,
                    rejected: d.rejected,
                    approval_rate: rate(d.approved + d.auto_approved, decided),
                    edit_rate: rate(d.edited, decided),
                    reject_rate: rate(d.rejected, decided),
                },
                escalations: d.escalations,
                median_first_response_seconds: d.median,
            }
        })
        .collect();
    Ok(Json(DailyStats { from, to, days }))
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct DeadLetter {
    id: Uuid,
    account_id: Option<Uuid>,
    provider: String,
    kind: String,
    reason: String,
    body: String,
    received_at: DateTime<Utc>,
}

/// `GET /api/webhook-dead-letters`: notifications that were valid but could not be used.
pub async fn webhook_dead_letters(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Items<DeadLetter>>, ApiError> {
    let items: Vec<DeadLetter> = sqlx::query_as(
        "SELECT id, account_id, provider, kind, reason, body, received_at FROM webhook_dead_letters \
          WHERE tenant_id = $1 ORDER BY received_at DESC LIMIT 200",
    )
    .bind(caller.tenant_id)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(Items { items }))
}
