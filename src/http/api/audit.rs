//! Audit replay over HTTP: a conversation's events and its state at any point.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::Caller;
use crate::http::{ApiError, ApiQuery, AppState};
use crate::replay::{self, Until};

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    after_sequence: Option<i64>,
    limit: Option<usize>,
}

/// `GET /api/conversations/{id}/events`: every event with sequence, type, version, payload,
/// metadata (actor, correlation and causation ids, …) and recorded_at.
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::invalid("invalid_limit", "limit must be between 1 and 10000"));
    }
    let r = replay::load(&state.pool, Some(caller.tenant_id), id, Until::End)
        .await?
        .ok_or(ApiError::NotFound("conversation"))?;
    let after = q.after_sequence.unwrap_or(0);
    let page: Vec<_> = r.events.into_iter().filter(|e| e.sequence > after).take(limit + 1).collect();
    let more = page.len() > limit;
    let items: Vec<_> = page.into_iter().take(limit).collect();
    let next = if more { items.last().map(|e| e.sequence) } else { None };
    Ok(Json(json!({ "items": items, "next_after_sequence": next })))
}

#[derive(Debug, Deserialize)]
pub struct StateQuery {
    until_sequence: Option<i64>,
    at: Option<DateTime<Utc>>,
}

/// `GET /api/conversations/{id}/state?until_sequence=N` or `?at=RFC3339`.
pub async fn state_at(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    ApiQuery(q): ApiQuery<StateQuery>,
) -> Result<Json<Value>, ApiError> {
    let until = match (q.until_sequence, q.at) {
        (Some(_), Some(_)) => return Err(ApiError::invalid("invalid_query", "give until_sequence or at, not both")),
        (Some(n), None) if n < 1 => return Err(ApiError::invalid("invalid_query", "until_sequence starts at 1")),
        (Some(n), None) => Until::Sequence(n),
        (None, Some(at)) => Until::Instant(at),
        (None, None) => Until::End,
    };
    let r = replay::load(&state.pool, Some(caller.tenant_id), id, until)
        .await?
        .ok_or(ApiError::NotFound("conversation"))?;
    if r.events.is_empty() {
        return Err(ApiError::NotFound("conversation state at that point"));
    }
    Ok(Json(r.state_json()))
}
