//! Leads: the board (a column per lead status, filters by status, kind and source, cursor paging)
//! and one lead with its fields, first message and timeline. Reads are the `/api/leads` handlers
//! themselves; every action (qualify, won, lost with a reason, retry the outreach, assign) runs
//! `application::leads::act`, the command behind `POST /api/leads/{id}/…`.

use std::collections::HashMap;

use aisales_domain::lead::{LeadKind, LeadStatus};
use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::conversation::UserOpt;
use super::format;
use super::i18n::Tr;
use super::inbox::{Opt, phone_for, user_names};
use super::page::{self, Chrome};
use super::session::{Operator, redirect};
use crate::application::CommandError;
use crate::application::leads::{self as commands, Action};
use crate::auth::Permission;
use crate::http::api::leads::{self as api, LeadView};
use crate::http::{ApiError, ApiQuery, AppState};

/// Leads per column of the board.
const COLUMN_SIZE: i64 = 20;
/// Leads per page of one status.
const PAGE_SIZE: i64 = 50;

/// Label of a lead status.
pub fn status_label(tr: &Tr, s: &str) -> &'static str {
    match s {
        "received" => tr.ls_received,
        "scheduled" => tr.ls_scheduled,
        "contacting" => tr.ls_contacting,
        "contacted" => tr.ls_contacted,
        "failed" => tr.ls_failed,
        "replied" => tr.ls_replied,
        "no_reply" => tr.ls_no_reply,
        "qualified" => tr.ls_qualified,
        "won" => tr.ls_won,
        "lost" => tr.ls_lost,
        _ => tr.none,
    }
}

/// Label of a lead kind.
pub fn kind_label(tr: &Tr, k: &str) -> &'static str {
    match k {
        "gearbox" => tr.lk_gearbox,
        "engine" => tr.lk_engine,
        "tires" => tr.lk_tires,
        _ => tr.none,
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct BoardQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    cursor: String,
}

/// A lead as a card of the board.
pub struct CardView {
    pub id: Uuid,
    pub name: String,
    pub phone: String,
    pub kind_label: &'static str,
    pub car: String,
    pub source: String,
    pub time: String,
    pub assignee: String,
}

/// One column of the board.
pub struct ColumnView {
    pub status: &'static str,
    pub label: &'static str,
    pub cards: Vec<CardView>,
    /// The next page of this status (with the same filters).
    pub more_url: Option<String>,
}

#[derive(Template)]
#[template(path = "dashboard/leads.html")]
struct BoardPage {
    chrome: Chrome,
    status: Vec<Opt>,
    kind: Vec<Opt>,
    source: Vec<SourceOpt>,
    columns: Vec<ColumnView>,
    /// One status shown alone (paged), or the whole board.
    single: bool,
    first_url: Option<String>,
    key: String,
}

/// A source of the filter (form kinds and the names of the tenant's quizzes and forms).
pub struct SourceOpt {
    pub value: String,
    pub selected: bool,
}

fn query_string(status: Option<LeadStatus>, kind: Option<LeadKind>, source: &str, cursor: Option<&str>) -> String {
    let mut parts = Vec::new();
    if let Some(s) = status {
        parts.push(format!("status={}", s.as_str()));
    }
    if let Some(k) = kind {
        parts.push(format!("kind={}", k.as_str()));
    }
    if !source.is_empty() {
        parts.push(format!("source={}", format::urlencode(source)));
    }
    if let Some(c) = cursor {
        parts.push(format!("cursor={c}"));
    }
    parts.join("&")
}

/// One page of leads through `GET /api/leads` itself.
async fn list(
    state: &AppState,
    op: &Operator,
    status: Option<LeadStatus>,
    kind: Option<LeadKind>,
    source: &str,
    cursor: Option<&str>,
    limit: i64,
) -> Result<(Vec<LeadView>, Option<String>), ApiError> {
    let q = json!({
        "status": status.map(LeadStatus::as_str),
        "kind": kind.map(LeadKind::as_str),
        "source": Some(source).filter(|s| !s.is_empty()),
        "cursor": cursor,
        "limit": limit,
    });
    let q = serde_json::from_value(q).map_err(|e| ApiError::Unexpected(e.into()))?;
    let page = api::list(State(state.clone()), op.caller.clone(), HeaderMap::new(), ApiQuery(q)).await?.0;
    Ok((page.items, page.next_cursor))
}

fn card(l: &LeadView, op: &Operator, names: &HashMap<String, String>) -> CardView {
    let tr = op.lang.tr();
    CardView {
        id: l.id,
        name: l.name.clone().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| tr.customer.to_string()),
        phone: phone_for(op.caller.role, l.phone.as_deref()),
        kind_label: kind_label(tr, &l.kind),
        car: l.car.clone().unwrap_or_default(),
        source: l.source.clone(),
        time: format::short_time(l.received_at, Utc::now()),
        assignee: l
            .assigned_to
            .as_ref()
            .map(|a| names.get(a).cloned().unwrap_or_else(|| a.clone()))
            .unwrap_or_default(),
    }
}

/// `GET /leads`: the board.
pub async fn board(State(state): State<AppState>, op: Operator, Query(q): Query<BoardQuery>) -> Response {
    if !op.can(Permission::ViewConversations) {
        return page::forbidden(&op);
    }
    let tr = op.lang.tr();
    let status = LeadStatus::parse(&q.status);
    let kind = LeadKind::parse(&q.kind);
    let source = q.source.trim().to_string();
    let cursor = Some(q.cursor.as_str()).filter(|c| !c.is_empty() && status.is_some());
    let names = match user_names(&state.pool, op.tenant()).await {
        Ok(n) => n,
        Err(e) => return page::server_error(&op, e),
    };
    let shown: Vec<LeadStatus> = match status {
        Some(s) => vec![s],
        None => LeadStatus::ALL.to_vec(),
    };
    let limit = if status.is_some() { PAGE_SIZE } else { COLUMN_SIZE };
    let mut columns = Vec::new();
    for s in shown {
        let (items, next) = match list(&state, &op, Some(s), kind, &source, cursor, limit).await {
            Ok(page) => page,
            Err(ApiError::BadRequest(_) | ApiError::Coded { .. }) => {
                // A cursor from elsewhere: the first page instead.
                return redirect(&format!("/leads?{}", query_string(status, kind, &source, None)));
            }
            Err(e) => return page::server_error(&op, e),
        };
        columns.push(ColumnView {
            status: s.as_str(),
            label: status_label(tr, s.as_str()),
            cards: items.iter().map(|l| card(l, &op, &names)).collect(),
            more_url: next.map(|c| format!("/leads?{}", query_string(Some(s), kind, &source, Some(&c)))),
        });
    }
    let sources: Vec<String> =
        match sqlx::query_scalar("SELECT DISTINCT source FROM rm_leads WHERE tenant_id = $1 ORDER BY source LIMIT 100")
            .bind(op.tenant())
            .fetch_all(&state.pool)
            .await
        {
            Ok(s) => s,
            Err(e) => return page::server_error(&op, e),
        };
    let mut source_opts: Vec<SourceOpt> = ["marquiz", "generic"]
        .into_iter()
        .map(String::from)
        .chain(sources)
        .map(|value| SourceOpt { selected: value == source, value })
        .collect();
    source_opts.dedup_by(|a, b| a.value == b.value);
    let mut status_opts = vec![Opt { value: "", label: tr.all, selected: status.is_none() }];
    status_opts.extend(LeadStatus::ALL.into_iter().map(|s| Opt {
        value: s.as_str(),
        label: status_label(tr, s.as_str()),
        selected: status == Some(s),
    }));
    let mut kind_opts = vec![Opt { value: "", label: tr.all, selected: kind.is_none() }];
    kind_opts.extend([LeadKind::Gearbox, LeadKind::Engine, LeadKind::Tires].into_iter().map(|k| Opt {
        value: k.as_str(),
        label: kind_label(tr, k.as_str()),
        selected: kind == Some(k),
    }));
    let key =
        format::fingerprint(columns.iter().flat_map(|c| c.cards.iter().map(move |k| format!("{}:{}", c.status, k.id))));
    page::ok(&BoardPage {
        chrome: Chrome::of(&op, "leads"),
        status: status_opts,
        kind: kind_opts,
        source: source_opts,
        single: status.is_some(),
        first_url: cursor.map(|_| format!("/leads?{}", query_string(status, kind, &source, None))),
        columns,
        key,
    })
}

/// An event of the lead's timeline.
pub struct EntryView {
    pub at: String,
    pub event_type: String,
    pub actor: String,
    pub details: String,
}

#[derive(Template)]
#[template(path = "dashboard/lead.html")]
struct LeadPage {
    chrome: Chrome,
    l: LeadView,
    status_label: &'static str,
    kind_label: &'static str,
    phone: String,
    assignee: String,
    facts: Vec<(String, String)>,
    text: String,
    timeline: Vec<EntryView>,
    users: Vec<UserOpt>,
    can_manage: bool,
    closed: bool,
    can_retry: bool,
    notice: Option<&'static str>,
    notice_error: bool,
}

/// Every scalar of the extracted fields, as `label: value`.
fn facts(v: &Value, prefix: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                facts(v, &path, out);
            }
        }
        Value::Array(items) => {
            let text: Vec<String> = items
                .iter()
                .map(|i| match i {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            if !text.is_empty() {
                out.push((prefix.to_string(), text.join("; ")));
            }
        }
        Value::String(s) if !s.trim().is_empty() => out.push((prefix.to_string(), s.clone())),
        Value::Number(n) => out.push((prefix.to_string(), n.to_string())),
        Value::Bool(b) => out.push((prefix.to_string(), b.to_string())),
        _ => {}
    }
}

/// The data of an event in one line (long values cut).
fn details(v: &Value) -> String {
    let mut parts = Vec::new();
    if let Value::Object(map) = v {
        for (k, v) in map {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Null => continue,
                Value::Object(_) | Value::Array(_) => continue,
                other => other.to_string(),
            };
            parts.push(format!("{k}: {text}"));
        }
    }
    let line = parts.join(" · ");
    if line.chars().count() > 300 { format!("{}…", line.chars().take(300).collect::<String>()) } else { line }
}

#[derive(Debug, Default, Deserialize)]
pub struct NoticeQuery {
    ok: Option<String>,
    e: Option<String>,
}

fn notice(tr: &'static Tr, q: &NoticeQuery) -> (Option<&'static str>, bool) {
    match q.e.as_deref() {
        Some("not_found") => (Some(tr.err_not_found), true),
        Some("conflict") => (Some(tr.err_lead_conflict), true),
        Some("invalid") => (Some(tr.err_invalid), true),
        Some("reason") => (Some(tr.err_lost_reason), true),
        Some("forbidden") => (Some(tr.err_forbidden), true),
        Some("csrf") => (Some(tr.form_expired), true),
        Some(_) => (Some(tr.server_error), true),
        None if q.ok.is_some() => (Some(tr.done_ok), false),
        None => (None, false),
    }
}

/// `GET /leads/{id}`: one lead (another tenant's is "not found").
pub async fn show(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<Uuid>,
    Query(q): Query<NoticeQuery>,
) -> Response {
    if !op.can(Permission::ViewConversations) {
        return page::forbidden(&op);
    }
    let tr = op.lang.tr();
    let query = match serde_json::from_value(json!({})) {
        Ok(q) => q,
        Err(e) => return page::server_error(&op, e),
    };
    let detail =
        match api::show(State(state.clone()), op.caller.clone(), HeaderMap::new(), Path(id), ApiQuery(query)).await {
            Ok(d) => d.0,
            Err(ApiError::NotFound(_)) => return page::not_found(&op),
            Err(e) => return page::server_error(&op, e),
        };
    let names = match user_names(&state.pool, op.tenant()).await {
        Ok(n) => n,
        Err(e) => return page::server_error(&op, e),
    };
    let l = detail.lead;
    let mut fact_rows = Vec::new();
    facts(&detail.fields, "", &mut fact_rows);
    // The phone is shown (masked by role) apart; the extracted fields do not repeat it.
    fact_rows.retain(|(k, _)| !k.contains("phone"));
    let now = Utc::now();
    let timeline = detail
        .timeline
        .iter()
        .map(|e| EntryView {
            at: format::short_time(e.at, now),
            event_type: e.event_type.clone(),
            actor: e.actor.clone().map(|a| user_label(&a, &names)).unwrap_or_default(),
            details: details(&e.data),
        })
        .collect();
    let mut users: Vec<UserOpt> = names
        .iter()
        .map(|(uid, email)| UserOpt {
            id: uid.clone(),
            email: email.clone(),
            selected: l.assigned_to.as_deref() == Some(uid),
        })
        .collect();
    users.sort_by(|a, b| a.email.cmp(&b.email));
    let (notice, notice_error) = notice(tr, &q);
    let assignee =
        l.assigned_to.as_ref().map(|a| names.get(a).cloned().unwrap_or_else(|| a.clone())).unwrap_or(tr.nobody.into());
    page::ok(&LeadPage {
        chrome: Chrome::of(&op, "leads"),
        status_label: status_label(tr, &l.status),
        kind_label: kind_label(tr, &l.kind),
        phone: phone_for(op.caller.role, l.phone.as_deref()),
        assignee,
        facts: fact_rows,
        text: detail.text,
        timeline,
        users,
        can_manage: op.can(Permission::ManageConversations),
        closed: l.status == "won" || l.status == "lost",
        can_retry: matches!(l.status.as_str(), "failed" | "no_reply"),
        notice,
        notice_error,
        l,
    })
}

/// `user:<id>` as the user's email when it is one of the tenant's users.
fn user_label(actor: &str, names: &HashMap<String, String>) -> String {
    actor.strip_prefix("user:").and_then(|id| names.get(id)).cloned().unwrap_or_else(|| actor.to_string())
}

#[derive(Deserialize)]
pub struct ActForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    op: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    operator: String,
}

/// `POST /leads/{id}/act`: qualify, won, lost (with a reason), retry the outreach, assign.
pub async fn act(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    Form(f): Form<ActForm>,
) -> Response {
    let back = |outcome: &str| redirect(&format!("/leads/{id}?{outcome}"));
    if !op.csrf_ok(&f.csrf) {
        return back("e=csrf");
    }
    if !op.can(Permission::ManageConversations) {
        return back("e=forbidden");
    }
    let text = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let action = match f.op.as_str() {
        "qualify" => Action::Qualify,
        "won" => Action::Win { note: text(&f.note) },
        "lost" => match text(&f.reason) {
            Some(reason) => Action::Lose { reason },
            None => return back("e=reason"),
        },
        "retry" => Action::Retry,
        "assign" => Action::Assign { operator: text(&f.operator) },
        _ => return back("e=invalid"),
    };
    match commands::act(&state, op.tenant(), id, action, &op.metadata(&headers)).await {
        Ok(_) => back("ok=1"),
        Err(CommandError::NotFound(_)) => back("e=not_found"),
        Err(CommandError::Invalid { .. }) => back("e=invalid"),
        Err(CommandError::Conflict(_)) => back("e=conflict"),
        Err(CommandError::Forbidden(_)) => back("e=forbidden"),
        Err(e) => {
            tracing::error!(error = %e, "a lead action failed");
            back("e=server")
        }
    }
}
