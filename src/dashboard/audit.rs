//! The audit page: the conversation's events with actor, cause and correlation, and a "state at"
//! slider that shows the conversation as it was after any event (the replay the API's
//! `/api/conversations/{id}/state?until_sequence=N` uses).

use aisales_projections::conversation;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use uuid::Uuid;

use super::i18n::Tr;
use super::inbox::{phone_for, status_label};
use super::page::{self, Chrome};
use super::session::Operator;
use crate::application::replay::{self, Replay, Until};
use crate::auth::{Permission, Role};
use crate::http::AppState;

/// One event row of the log.
pub struct EventView {
    pub sequence: i64,
    pub at: String,
    pub event_type: String,
    pub what: String,
    pub actor: String,
    pub correlation: String,
    pub cause: String,
}

/// The conversation as it was after one event.
pub struct StateView {
    pub sequence: i64,
    pub event_type: String,
    pub status_label: &'static str,
    pub assignee: String,
    pub unread: i32,
    pub messages: i32,
    pub pending: usize,
    pub last_message: String,
    pub muted: bool,
    pub customer: String,
}

impl StateView {
    fn of(r: &Replay, tr: &'static Tr, role: Role) -> StateView {
        let c = r.folded.conversation.as_ref();
        StateView {
            sequence: r.sequence(),
            event_type: r.events.last().map(|e| e.event_type.clone()).unwrap_or_default(),
            status_label: c.map_or(tr.none, |c| status_label(tr, &c.status)),
            assignee: c.and_then(|c| c.assigned_operator.clone()).unwrap_or_else(|| tr.nobody.to_string()),
            unread: c.map_or(0, |c| c.unread_count),
            messages: c.map_or(0, |c| c.messages_count),
            pending: r.folded.suggestions.values().filter(|s| s.status == "pending").count(),
            last_message: c.and_then(|c| c.last_message_preview.clone()).unwrap_or_default(),
            muted: c.is_some_and(|c| c.muted),
            customer: c
                .map(|c| {
                    let name = c.customer_name.clone().unwrap_or_default();
                    let phone = phone_for(role, c.customer_phone.as_deref());
                    format!("{name} {phone}").trim().to_string()
                })
                .unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "dashboard/audit.html")]
struct AuditPage {
    chrome: Chrome,
    id: Uuid,
    max: i64,
    events: Vec<EventView>,
    state: StateView,
}

#[derive(Template)]
#[template(path = "dashboard/audit_state.html")]
struct StateFragment {
    chrome: Chrome,
    state: StateView,
}

#[derive(Debug, Default, Deserialize)]
pub struct SeqQuery {
    seq: Option<i64>,
}

/// `GET /c/{id}/audit?seq=N`.
pub async fn page(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<Uuid>,
    Query(q): Query<SeqQuery>,
) -> Response {
    if !op.can(Permission::ViewAuditLogs) {
        return page::forbidden(&op);
    }
    let full = match replay::load(&state.pool, Some(op.tenant()), id, Until::End).await {
        Ok(Some(r)) if !r.events.is_empty() => r,
        Ok(_) => return page::not_found(&op),
        Err(e) => return page::server_error(&op, e),
    };
    let max = full.sequence();
    let seq = q.seq.unwrap_or(max).clamp(1, max.max(1));
    let events = full
        .stored
        .iter()
        .zip(&full.events)
        .map(|(stored, e)| EventView {
            sequence: e.sequence,
            at: e.recorded_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            event_type: e.event_type.clone(),
            what: conversation::event_of(stored).map_or_else(|err| format!("({err})"), replay::describe),
            actor: e.metadata.get("actor").cloned().unwrap_or_default(),
            correlation: e.correlation_id.as_deref().map(|c| c.chars().take(8).collect()).unwrap_or_default(),
            cause: e.caused_by.as_ref().map(|c| replay::cause_text(e, c)).unwrap_or_default(),
        })
        .collect();
    let at = if seq == max {
        StateView::of(&full, op.lang.tr(), op.caller.role)
    } else {
        match replay::load(&state.pool, Some(op.tenant()), id, Until::Sequence(seq)).await {
            Ok(Some(r)) => StateView::of(&r, op.lang.tr(), op.caller.role),
            Ok(None) => return page::not_found(&op),
            Err(e) => return page::server_error(&op, e),
        }
    };
    page::ok(&AuditPage { chrome: Chrome::of(&op, "inbox"), id, max, events, state: at })
}

/// `GET /c/{id}/audit/state?seq=N`: the state after event N (the slider's fragment).
pub async fn state(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<Uuid>,
    Query(q): Query<SeqQuery>,
) -> Response {
    if !op.can(Permission::ViewAuditLogs) {
        return page::forbidden(&op);
    }
    let until = match q.seq {
        Some(n) if n >= 1 => Until::Sequence(n),
        _ => Until::End,
    };
    match replay::load(&state.pool, Some(op.tenant()), id, until).await {
        Ok(Some(r)) if !r.events.is_empty() => page::ok(&StateFragment {
            state: StateView::of(&r, op.lang.tr(), op.caller.role),
            chrome: Chrome::of(&op, "inbox"),
        }),
        Ok(_) => page::not_found(&op),
        Err(e) => page::server_error(&op, e),
    }
}
