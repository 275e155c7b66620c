//! Audit replay over HTTP: a conversation's events with what caused each, one chain of events by
//! correlation id, and the conversation's state at any point.

use aisales_domain::conversation::Conversation;
use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::views::ConversationDetail;
use crate::application::replay::{self, AuditEvent, Replay, Until};
use crate::auth::Caller;
use crate::http::{ApiError, ApiQuery, AppState};

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    after_sequence: Option<i64>,
    limit: Option<usize>,
    /// Only the events of this chain, across the conversation and the lookups it asked for.
    correlation_id: Option<Uuid>,
}

/// A page of the audit log.
#[derive(Debug, Serialize)]
pub struct EventsPage {
    pub items: Vec<AuditEvent>,
    pub next_after_sequence: Option<i64>,
}

/// `GET /api/conversations/{id}/events`: every event with sequence, type, version, payload,
/// metadata (actor, correlation and causation ids, …), its cause and recorded_at; with
/// `correlation_id`, one chain end to end (webhook → draft → approval → send → delivery), in the
/// log's order, including the events of the vehicle lookups it went through.
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<Json<EventsPage>, ApiError> {
    if let Some(correlation) = q.correlation_id {
        let items = replay::chain(&state.pool, Some(caller.tenant_id), id, correlation)
            .await?
            .ok_or(ApiError::NotFound("conversation"))?;
        return Ok(Json(EventsPage { items, next_after_sequence: None }));
    }
    let limit = q.limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::invalid("invalid_limit", "limit must be between 1 and 10000"));
    }
    let (items, more) =
        replay::events_page(&state.pool, Some(caller.tenant_id), id, q.after_sequence.unwrap_or(0), limit)
            .await?
            .ok_or(ApiError::NotFound("conversation"))?;
    let next_after_sequence = if more { items.last().map(|e| e.sequence) } else { None };
    Ok(Json(EventsPage { items, next_after_sequence }))
}

#[derive(Debug, Deserialize)]
pub struct StateQuery {
    until_sequence: Option<i64>,
    at: Option<DateTime<Utc>>,
}

/// The conversation as the API showed it at a point of its history, with the replay's sequence
/// and the aggregate's own state.
#[derive(Debug, Serialize)]
pub struct ReplayedState {
    #[serde(flatten)]
    pub detail: Option<ConversationDetail>,
    pub replayed_to_sequence: i64,
    pub aggregate: Conversation,
}

impl From<&Replay> for ReplayedState {
    fn from(r: &Replay) -> Self {
        ReplayedState {
            detail: r.folded.conversation.as_ref().map(|c| ConversationDetail::new(c, r.folded.suggestions.values())),
            replayed_to_sequence: r.sequence(),
            aggregate: r.aggregate.clone(),
        }
    }
}

/// `GET /api/conversations/{id}/state?until_sequence=N` or `?at=RFC3339`.
pub async fn state_at(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    ApiQuery(q): ApiQuery<StateQuery>,
) -> Result<Json<ReplayedState>, ApiError> {
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
    Ok(Json(ReplayedState::from(&r)))
}
