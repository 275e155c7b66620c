//! The inbox: the tenant's conversations, newest activity first, with filters, search, cursor
//! paging and a fragment the page's script fetches again when the live stream reports a change.

use std::collections::HashMap;

use aisales_domain::conversation::{ChannelKind, Status};
use aisales_projections::conversation::ConversationRow;
use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use chrono::Utc;
use serde::Deserialize;
use uuid::Uuid;

use super::format;
use super::i18n::{Lang, Tr};
use super::page::{self, Chrome};
use super::session::Operator;
use crate::auth::{Permission, Role};
use crate::http::AppState;
use crate::http::api::paging::{TimeKey, decode_cursor, encode_cursor};

/// Conversations on one page of the inbox.
pub const PAGE_SIZE: i64 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct InboxQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    channel: String,
    /// `mine`, `unassigned` or empty (everyone's).
    #[serde(default)]
    who: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    cursor: String,
}

/// The filters of the inbox, parsed (unknown values mean "all").
#[derive(Debug, Default, Clone)]
pub struct Filters {
    pub status: Option<Status>,
    pub channel: Option<ChannelKind>,
    pub mine: bool,
    pub unassigned: bool,
    pub q: String,
    pub cursor: Option<TimeKey>,
}

impl Filters {
    pub fn parse(q: &InboxQuery) -> Filters {
        Filters {
            status: Status::parse(&q.status),
            channel: ChannelKind::parse(&q.channel),
            mine: q.who == "mine",
            unassigned: q.who == "unassigned",
            q: q.q.trim().to_string(),
            cursor: (!q.cursor.is_empty()).then(|| decode_cursor::<TimeKey>(&q.cursor).ok()).flatten(),
        }
    }

    /// The query string of these filters (without the cursor).
    fn query(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = self.status {
            parts.push(format!("status={}", s.as_str()));
        }
        if let Some(c) = self.channel {
            parts.push(format!("channel={}", c.as_str()));
        }
        if self.mine {
            parts.push("who=mine".into());
        } else if self.unassigned {
            parts.push("who=unassigned".into());
        }
        if !self.q.is_empty() {
            parts.push(format!("q={}", format::urlencode(&self.q)));
        }
        parts.join("&")
    }

    fn with_cursor(&self, cursor: Option<&str>) -> String {
        let mut q = self.query();
        if let Some(c) = cursor {
            if !q.is_empty() {
                q.push('&');
            }
            q.push_str("cursor=");
            q.push_str(c);
        }
        q
    }
}

/// One page of the inbox from the read model: rows and the cursor of the next page.
pub async fn load(
    pool: &sqlx::PgPool,
    tenant: Uuid,
    me: Uuid,
    f: &Filters,
) -> Result<(Vec<ConversationRow>, Option<String>), sqlx::Error> {
    let search = (!f.q.is_empty()).then(|| {
        let escaped = f.q.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        format!("%{escaped}%")
    });
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT row_to_json(t)::text FROM rm_conversations t \
          WHERE tenant_id = $1 \
            AND ($2::text IS NULL OR status = $2) \
            AND ($3::text IS NULL OR channel = $3) \
            AND ($4::text IS NULL OR search_text LIKE $4) \
            AND ($5::timestamptz IS NULL OR (last_message_at, conversation_id) < ($5, $6)) \
            AND ($7::text IS NULL OR assigned_operator = $7) \
            AND (NOT $8 OR assigned_operator IS NULL) \
          ORDER BY last_message_at DESC, conversation_id DESC LIMIT $9",
    )
    .bind(tenant)
    .bind(f.status.map(Status::as_str))
    .bind(f.channel.map(ChannelKind::as_str))
    .bind(&search)
    .bind(f.cursor.map(|c| c.t))
    .bind(f.cursor.map(|c| c.id))
    .bind(f.mine.then(|| me.to_string()))
    .bind(f.unassigned)
    .bind(PAGE_SIZE + 1)
    .fetch_all(pool)
    .await?;
    let mut rows: Vec<ConversationRow> = rows
        .iter()
        .map(|r| serde_json::from_str(r))
        .collect::<Result<_, _>>()
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    let more = rows.len() as i64 > PAGE_SIZE;
    rows.truncate(PAGE_SIZE as usize);
    let next = if more {
        rows.last().and_then(|r| r.last_message_at.map(|t| encode_cursor(&TimeKey { t, id: r.conversation_id })))
    } else {
        None
    };
    Ok((rows, next))
}

/// Label of a conversation status.
pub fn status_label(tr: &Tr, status: &str) -> &'static str {
    match status {
        "open" => tr.st_open,
        "waiting_customer" => tr.st_waiting_customer,
        "escalated" => tr.st_escalated,
        "resolved" => tr.st_resolved,
        _ => tr.none,
    }
}

/// Label of a channel.
pub fn channel_label(tr: &Tr, channel: &str) -> &'static str {
    match channel {
        "green_api" => tr.ch_green_api,
        "telegram" => tr.ch_telegram,
        "whatsapp" => tr.ch_whatsapp,
        _ => tr.none,
    }
}

/// A phone as the caller's role may see it: whole for owners and admins, masked for others.
pub fn phone_for(role: Role, phone: Option<&str>) -> String {
    match (role, phone) {
        (_, None) => String::new(),
        (Role::Owner | Role::Admin, Some(p)) => p.to_string(),
        (_, Some(p)) => format::mask_phone(p),
    }
}

/// Emails of the tenant's users by id (to name assignees).
pub async fn user_names(pool: &sqlx::PgPool, tenant: Uuid) -> Result<HashMap<String, String>, sqlx::Error> {
    Ok(crate::tenancy::list_users(pool, tenant).await?.into_iter().map(|u| (u.id.to_string(), u.email)).collect())
}

/// A conversation as a row of the inbox.
pub struct RowView {
    pub id: Uuid,
    pub name: String,
    pub phone: String,
    pub status: String,
    pub status_label: &'static str,
    pub channel_label: &'static str,
    pub unread: i32,
    pub preview: String,
    pub outgoing: bool,
    pub assignee: String,
    pub waiting: String,
    pub time: String,
    pub pending: bool,
}

impl RowView {
    fn of(r: &ConversationRow, lang: Lang, role: Role, names: &HashMap<String, String>) -> RowView {
        let tr = lang.tr();
        let now = Utc::now();
        RowView {
            id: r.conversation_id,
            name: r.customer_name.clone().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| tr.customer.to_string()),
            phone: phone_for(role, r.customer_phone.as_deref()),
            status: r.status.clone(),
            status_label: status_label(tr, &r.status),
            channel_label: channel_label(tr, &r.channel),
            unread: r.unread_count,
            preview: r.last_message_preview.clone().unwrap_or_default(),
            outgoing: r.last_message_direction.as_deref() == Some("out"),
            assignee: match &r.assigned_operator {
                Some(id) => names.get(id).cloned().unwrap_or_else(|| id.clone()),
                None => tr.nobody.to_string(),
            },
            waiting: r
                .awaiting_reply_since
                .filter(|_| r.status == "open" || r.status == "escalated")
                .map(|t| format!("{} {}", tr.waiting, format::duration(lang, now - t)))
                .unwrap_or_default(),
            time: r.last_message_at.map(|t| format::short_time(t, now)).unwrap_or_default(),
            pending: r.pending_suggestions > 0,
        }
    }
}

/// The list part of the inbox (also the live fragment).
pub struct ListView {
    pub rows: Vec<RowView>,
    pub key: String,
    pub next_url: Option<String>,
    pub first_url: Option<String>,
    pub fragment_url: String,
}

#[derive(Template)]
#[template(path = "dashboard/inbox.html")]
struct InboxPage {
    chrome: Chrome,
    f: FilterView,
    list: ListView,
}

#[derive(Template)]
#[template(path = "dashboard/inbox_list.html")]
struct InboxFragment {
    chrome: Chrome,
    list: ListView,
}

/// An option of a filter's select.
pub struct Opt {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

/// The filter form as shown.
pub struct FilterView {
    pub q: String,
    pub status: Vec<Opt>,
    pub channel: Vec<Opt>,
    pub who: Vec<Opt>,
}

impl FilterView {
    fn of(f: &Filters, tr: &'static Tr) -> FilterView {
        let mut status = vec![Opt { value: "", label: tr.all, selected: f.status.is_none() }];
        status.extend(Status::ALL.into_iter().map(|s| Opt {
            value: s.as_str(),
            label: status_label(tr, s.as_str()),
            selected: f.status == Some(s),
        }));
        let mut channel = vec![Opt { value: "", label: tr.all, selected: f.channel.is_none() }];
        channel.extend(ChannelKind::ALL.into_iter().map(|c| Opt {
            value: c.as_str(),
            label: channel_label(tr, c.as_str()),
            selected: f.channel == Some(c),
        }));
        let who = vec![
            Opt { value: "", label: tr.all, selected: !f.mine && !f.unassigned },
            Opt { value: "mine", label: tr.mine, selected: f.mine },
            Opt { value: "unassigned", label: tr.unassigned, selected: f.unassigned },
        ];
        FilterView { q: f.q.clone(), status, channel, who }
    }
}

async fn list_view(state: &AppState, op: &Operator, q: &InboxQuery) -> Result<(Filters, ListView), sqlx::Error> {
    let f = Filters::parse(q);
    let (rows, next) = load(&state.pool, op.tenant(), op.user_id, &f).await?;
    let names = user_names(&state.pool, op.tenant()).await?;
    let rows: Vec<RowView> = rows.iter().map(|r| RowView::of(r, op.lang, op.caller.role, &names)).collect();
    let key = format::fingerprint(
        rows.iter().map(|r| format!("{}|{}|{}|{}|{}|{}", r.id, r.status, r.unread, r.preview, r.assignee, r.pending)),
    );
    let current = f.with_cursor(f.cursor.map(|c| encode_cursor(&c)).as_deref());
    Ok((
        f.clone(),
        ListView {
            rows,
            key,
            next_url: next.map(|c| format!("/?{}", f.with_cursor(Some(&c)))),
            first_url: f.cursor.map(|_| format!("/?{}", f.query())),
            fragment_url: format!("/inbox/rows?{current}"),
        },
    ))
}

/// `GET /`: the inbox.
pub async fn page(State(state): State<AppState>, op: Operator, Query(q): Query<InboxQuery>) -> Response {
    if !op.can(Permission::ViewConversations) {
        return page::forbidden(&op);
    }
    match list_view(&state, &op, &q).await {
        Ok((f, list)) => {
            page::ok(&InboxPage { f: FilterView::of(&f, op.lang.tr()), chrome: Chrome::of(&op, "inbox"), list })
        }
        Err(e) => page::server_error(&op, e),
    }
}

/// `GET /inbox/rows`: the list alone, for live updates.
pub async fn rows(State(state): State<AppState>, op: Operator, Query(q): Query<InboxQuery>) -> Response {
    if !op.can(Permission::ViewConversations) {
        return page::forbidden(&op);
    }
    match list_view(&state, &op, &q).await {
        Ok((_, list)) => page::ok(&InboxFragment { chrome: Chrome::of(&op, "inbox"), list }),
        Err(e) => page::server_error(&op, e),
    }
}
