//! One conversation: the timeline with delivery ticks, the AI suggestion with its reasons and the
//! decisions on it, the operator's composer and actions, the customer card and the vehicle lookups.
//! Every action is a form post that runs the application command the API runs, then redirects
//! back to the page (`?ok` or `?e=<kind>`, shown as a sentence).

use aisales_domain::vehicle_lookup::EvidenceKind;
use aisales_projections::conversation::{ConversationRow, SuggestionRow};
use aisales_projections::vehicle_lookup_views::LookupRow;
use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use uuid::Uuid;

use super::format;
use super::i18n::Tr;
use super::inbox::{channel_label, phone_for, status_label, user_names};
use super::page::{self, Chrome};
use super::session::{Operator, redirect};
use crate::application::CommandError;
use crate::application::conversations as commands;
use crate::auth::Permission;
use crate::http::api::conversations::{MessageItem, conversation_row, suggestion_rows};
use crate::http::api::price_lookups::PriceLookupView;
use crate::http::{ApiError, AppState};

/// Messages shown on the page (the latest ones).
const TIMELINE_LIMIT: i64 = 200;

/// Price lookups shown on the page (the latest changed).
const PRICES_SHOWN: i64 = 5;

/// An attachment of a message.
pub struct AttachmentView {
    pub url: String,
    pub name: String,
    pub image: bool,
}

/// A message of the timeline.
pub struct MessageView {
    pub id: Uuid,
    pub out: bool,
    pub text: String,
    pub author: &'static str,
    pub at: String,
    pub at_iso: String,
    pub status: String,
    pub status_label: &'static str,
    pub tick: &'static str,
    pub failure: Option<String>,
    pub retry: bool,
    pub attachments: Vec<AttachmentView>,
}

/// A reason of a suggestion's decision.
pub struct ReasonView {
    pub text: String,
}

/// The suggestion waiting for the operator.
pub struct SuggestionView {
    pub id: Uuid,
    pub text: String,
    pub confidence: String,
    pub intent: String,
    pub decision: String,
    pub reasons: Vec<ReasonView>,
    pub blocked: Option<String>,
}

/// A user the conversation can be assigned to.
pub struct UserOpt {
    pub id: String,
    pub email: String,
    pub selected: bool,
}

/// An earlier conversation of the same customer.
pub struct EarlierView {
    pub id: Uuid,
    pub status_label: &'static str,
    pub time: String,
    pub preview: String,
}

/// A piece of evidence of a vehicle lookup: a link, shown inline when it is a screenshot.
pub struct EvidenceView {
    pub url: String,
    pub kind: &'static str,
    pub screenshot: bool,
}

/// A vehicle lookup of the conversation.
pub struct LookupView {
    pub id: Uuid,
    pub value: String,
    pub id_type: String,
    pub status: String,
    pub verification: String,
    pub facts: Vec<(String, String)>,
    pub evidence: Vec<EvidenceView>,
    pub error: Option<String>,
}

/// A listing a price rests on.
pub struct ListingView {
    pub url: String,
    pub site: String,
    pub title: String,
    pub price: String,
}

/// A price lookup of the conversation.
pub struct PriceView {
    pub id: Uuid,
    pub subject: String,
    pub status: String,
    pub status_label: &'static str,
    pub range: Option<String>,
    pub median: Option<String>,
    pub confidence: Option<String>,
    pub basis: Option<&'static str>,
    pub listings: Vec<ListingView>,
    pub more_listings: usize,
    pub failure: Option<String>,
    pub updated: String,
    /// A search is running: nothing to re-run yet.
    pub running: bool,
}

/// Everything the conversation page shows.
pub struct ConvView {
    pub id: Uuid,
    pub name: String,
    pub phone: String,
    pub status: String,
    pub status_label: &'static str,
    pub channel_label: &'static str,
    pub assignee: String,
    pub muted: bool,
    pub resolved: bool,
    pub escalated: bool,
    pub can_manage: bool,
    pub can_audit: bool,
    pub head_key: String,
    pub timeline_key: String,
    pub suggestion_key: String,
    pub side_key: String,
    pub messages: Vec<MessageView>,
    pub suggestion: Option<SuggestionView>,
    pub users: Vec<UserOpt>,
    pub earlier: Vec<EarlierView>,
    pub lookups: Vec<LookupView>,
    pub prices: Vec<PriceView>,
    pub unread: i32,
    /// A sentence about the last action, from the redirect (`?ok` / `?e=`).
    pub notice: Option<&'static str>,
    pub notice_error: bool,
}

fn message_status_label(tr: &Tr, s: &str) -> &'static str {
    match s {
        "received" => tr.ms_received,
        "queued" => tr.ms_queued,
        "sending" => tr.ms_sending,
        "sent" => tr.ms_sent,
        "delivered" => tr.ms_delivered,
        "read" => tr.ms_read,
        "failed" => tr.ms_failed,
        _ => tr.none,
    }
}

fn tick(s: &str) -> &'static str {
    match s {
        "queued" | "sending" => "◷",
        "sent" => "✓",
        "delivered" | "read" => "✓✓",
        "failed" => "⚠",
        _ => "",
    }
}

fn attachments(v: &serde_json::Value) -> Vec<AttachmentView> {
    let Some(items) = v.as_array() else { return Vec::new() };
    items
        .iter()
        .filter_map(|a| {
            let s = |k: &str| a.get(k).and_then(|x| x.as_str()).map(str::to_string);
            let url = s("url").or_else(|| s("download_url")).or_else(|| s("downloadUrl"))?;
            if !(url.starts_with("https://") || url.starts_with("http://") || url.starts_with('/')) {
                return None;
            }
            let mime = s("mime_type").or_else(|| s("mimeType")).or_else(|| s("kind")).unwrap_or_default();
            let name = s("file_name").or_else(|| s("fileName")).or_else(|| s("caption")).unwrap_or_else(|| url.clone());
            let image = mime.starts_with("image") || mime == "photo";
            Some(AttachmentView { url, name, image })
        })
        .collect()
}

fn author_label(tr: &Tr, author: &str) -> &'static str {
    match author {
        "customer" => tr.author_customer,
        "assistant" => tr.author_assistant,
        "operator" => tr.author_operator,
        _ => tr.author_system,
    }
}

fn reasons(v: &serde_json::Value) -> Vec<ReasonView> {
    match v {
        serde_json::Value::Array(items) => items
            .iter()
            .map(|i| ReasonView { text: i.as_str().map(str::to_string).unwrap_or_else(|| i.to_string()) })
            .collect(),
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(k, v)| ReasonView {
                text: format!("{k}: {}", v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())),
            })
            .collect(),
        serde_json::Value::Null => Vec::new(),
        other => vec![ReasonView { text: other.to_string() }],
    }
}

fn suggestion_view(s: &SuggestionRow) -> SuggestionView {
    SuggestionView {
        id: s.suggestion_id,
        text: s.text.clone(),
        confidence: format!("{:.0}%", s.confidence * 100.0),
        intent: s.intent.clone(),
        decision: s.decision.clone(),
        reasons: reasons(&s.explanations),
        blocked: s.autosend_block_reason.clone(),
    }
}

fn lookup_view(l: &LookupRow) -> LookupView {
    let mut facts = Vec::new();
    let mut evidence: Vec<EvidenceView> = Vec::new();
    if let Some(serde_json::Value::Object(map)) = &l.result {
        for (k, v) in map {
            match v {
                serde_json::Value::String(s) if !s.is_empty() => facts.push((k.clone(), s.clone())),
                serde_json::Value::Number(n) => facts.push((k.clone(), n.to_string())),
                serde_json::Value::Bool(b) => facts.push((k.clone(), b.to_string())),
                _ => {}
            }
        }
    }
    for h in &l.history {
        for e in &h.evidence {
            evidence.push(EvidenceView {
                url: format!("/api/vehicle-lookups/{}/evidence/{}", l.lookup_id, e.id),
                kind: e.kind.as_str(),
                screenshot: e.kind == EvidenceKind::Screenshot,
            });
        }
    }
    LookupView {
        id: l.lookup_id,
        value: l.value.clone(),
        id_type: l.id_type.clone(),
        status: l.result_status.clone().unwrap_or_else(|| l.status.clone()),
        verification: l.verification.clone(),
        facts,
        evidence,
        error: l.last_error.clone(),
    }
}

/// Label of a price lookup status.
fn price_status_label(tr: &Tr, s: &str) -> &'static str {
    match s {
        "pending" => tr.ps_pending,
        "searching" => tr.ps_searching,
        "priced" => tr.ps_priced,
        "estimated" => tr.ps_estimated,
        "not_found" => tr.ps_not_found,
        "escalated" => tr.ps_escalated,
        "failed" => tr.ps_failed,
        _ => tr.none,
    }
}

/// Listings shown per price lookup (the rest are counted).
const LISTINGS_SHOWN: usize = 10;

fn price_view(tr: &'static Tr, p: &PriceLookupView, now: chrono::DateTime<Utc>) -> PriceView {
    let subject: Vec<String> = ["oem", "transmission_code", "make", "model", "gearbox_type", "year"]
        .iter()
        .filter_map(|k| p.subject.get(*k).and_then(serde_json::Value::as_str).map(str::to_string))
        .collect();
    let listings: Vec<ListingView> = p
        .listings
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|l| {
                    let url = l.get("url")?.as_str()?.to_string();
                    // Only web links: a listing is a page the operator can open.
                    if !(url.starts_with("https://") || url.starts_with("http://")) {
                        return None;
                    }
                    let price = l.get("price").and_then(serde_json::Value::as_u64).map(|p| p as i64);
                    let high = l.get("price_high").and_then(serde_json::Value::as_u64).map(|p| p as i64);
                    Some(ListingView {
                        site: l.get("site").and_then(serde_json::Value::as_str).unwrap_or_default().to_string(),
                        title: l.get("title").and_then(serde_json::Value::as_str).unwrap_or_default().to_string(),
                        price: match (price, high) {
                            (Some(a), Some(b)) if b > a => format!("{}–{}", format::roubles(a), format::roubles(b)),
                            (Some(a), _) => format::roubles(a),
                            _ => String::new(),
                        },
                        url,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let more_listings = listings.len().saturating_sub(LISTINGS_SHOWN);
    PriceView {
        id: p.id,
        subject: subject.join(" · "),
        status: p.status.clone(),
        status_label: price_status_label(tr, &p.status),
        range: match (p.min_price, p.max_price) {
            (Some(a), Some(b)) if a != b => Some(format!("{} – {}", format::roubles(a), format::roubles(b))),
            (Some(a), _) => Some(format::roubles(a)),
            _ => None,
        },
        median: p.median_price.map(format::roubles),
        confidence: p.confidence.map(|c| {
            let level = match p.confidence_level.as_deref() {
                Some("high") => tr.conf_high,
                Some("medium") => tr.conf_medium,
                Some("low") => tr.conf_low,
                _ => "",
            };
            format!("{:.0}% {level}", c * 100.0).trim().to_string()
        }),
        basis: match p.basis.as_deref() {
            Some("market") => Some(tr.basis_market),
            Some("own_price_list") => Some(tr.basis_own),
            _ => None,
        },
        listings: listings.into_iter().take(LISTINGS_SHOWN).collect(),
        more_listings,
        failure: p.failure.clone(),
        updated: format::short_time(p.updated_at, now),
        running: matches!(p.status.as_str(), "pending" | "searching"),
    }
}

/// What a redirect's `?ok` / `?e=` says.
fn notice(tr: &'static Tr, q: &NoticeQuery) -> (Option<&'static str>, bool) {
    match q.e.as_deref() {
        Some("not_found") => (Some(tr.err_not_found), true),
        Some("conflict") => (Some(tr.err_conflict), true),
        Some("invalid") => (Some(tr.err_invalid), true),
        Some("forbidden") => (Some(tr.err_forbidden), true),
        Some("empty") => (Some(tr.err_empty_text), true),
        Some("csrf") => (Some(tr.form_expired), true),
        Some("price_subject") => (Some(tr.err_price_subject), true),
        Some(_) => (Some(tr.server_error), true),
        None if q.ok.is_some() => (Some(tr.done_ok), false),
        None => (None, false),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct NoticeQuery {
    ok: Option<String>,
    e: Option<String>,
}

/// An earlier conversation as read: id, status, last activity, last message.
type EarlierRow = (Uuid, String, Option<chrono::DateTime<Utc>>, Option<String>);

enum LoadError {
    NotFound,
    Failed(anyhow::Error),
}

impl From<sqlx::Error> for LoadError {
    fn from(e: sqlx::Error) -> Self {
        LoadError::Failed(e.into())
    }
}

impl From<ApiError> for LoadError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::NotFound(_) => LoadError::NotFound,
            other => LoadError::Failed(anyhow::anyhow!("{other}")),
        }
    }
}

async fn load(state: &AppState, op: &Operator, id: Uuid, q: &NoticeQuery) -> Result<ConvView, LoadError> {
    let tr = op.lang.tr();
    let tenant = op.tenant();
    let c: ConversationRow = conversation_row(state, tenant, id).await?;
    let mut messages: Vec<MessageItem> = sqlx::query_as(
        "SELECT message_id AS id, direction, author, text, attachments, status, provider_message_id, suggestion_id, \
                failure_reason, actor, created_at, sent_at, delivered_at, sequence \
           FROM rm_messages WHERE tenant_id = $1 AND conversation_id = $2 \
          ORDER BY created_at DESC, message_id DESC LIMIT $3",
    )
    .bind(tenant)
    .bind(id)
    .bind(TIMELINE_LIMIT)
    .fetch_all(&state.pool)
    .await?;
    messages.reverse();
    let pending = suggestion_rows(state, tenant, id, Some("pending")).await?;
    let names = user_names(&state.pool, tenant).await?;
    let earlier: Vec<EarlierRow> = sqlx::query_as(
        "SELECT conversation_id, status, last_message_at, last_message_preview FROM rm_conversations \
          WHERE tenant_id = $1 AND customer_id = $2 AND conversation_id <> $3 \
          ORDER BY last_message_at DESC NULLS LAST LIMIT 10",
    )
    .bind(tenant)
    .bind(c.customer_id)
    .bind(id)
    .fetch_all(&state.pool)
    .await?;
    let lookups: Vec<String> = sqlx::query_scalar(
        "SELECT row_to_json(t)::text FROM rm_vehicle_lookups t WHERE tenant_id = $1 AND conversation_id = $2 \
          ORDER BY created_at DESC LIMIT 5",
    )
    .bind(tenant)
    .bind(id)
    .fetch_all(&state.pool)
    .await?;
    let lookups: Vec<LookupRow> = lookups.iter().filter_map(|r| serde_json::from_str(r).ok()).collect();
    // The conversation's price lookups, through `GET /api/price-lookups?conversation_id=` itself.
    let price_query = serde_json::from_value(serde_json::json!({ "conversation_id": id, "limit": PRICES_SHOWN }))
        .map_err(|e| LoadError::Failed(e.into()))?;
    let prices = crate::http::api::price_lookups::list(
        State(state.clone()),
        op.caller.clone(),
        HeaderMap::new(),
        crate::http::ApiQuery(price_query),
    )
    .await?
    .0
    .items;

    let now = Utc::now();
    let messages: Vec<MessageView> = messages
        .iter()
        .map(|m| MessageView {
            id: m.id,
            out: m.direction == "out",
            text: m.text.clone(),
            author: author_label(tr, &m.author),
            at: format::short_time(m.created_at, now),
            at_iso: m.created_at.to_rfc3339(),
            status: m.status.clone(),
            status_label: message_status_label(tr, &m.status),
            tick: tick(&m.status),
            failure: m.failure_reason.clone().filter(|_| m.status == "failed" || m.status == "queued"),
            retry: m.direction == "out" && m.status == "failed",
            attachments: attachments(&m.attachments),
        })
        .collect();
    let suggestion = pending.last().map(suggestion_view);
    let assignee = match &c.assigned_operator {
        Some(a) => names.get(a).cloned().unwrap_or_else(|| a.clone()),
        None => tr.nobody.to_string(),
    };
    let mut users: Vec<UserOpt> = names
        .iter()
        .map(|(id, email)| UserOpt {
            id: id.clone(),
            email: email.clone(),
            selected: c.assigned_operator.as_deref() == Some(id),
        })
        .collect();
    users.sort_by(|a, b| a.email.cmp(&b.email));
    let (notice, notice_error) = notice(tr, q);
    let head_key =
        format::fingerprint([c.status.clone(), assignee.clone(), c.muted.to_string(), c.unread_count.to_string()]);
    let timeline_key = format::fingerprint(messages.iter().map(|m| format!("{}:{}", m.id, m.status)));
    let suggestion_key = format::fingerprint(pending.iter().map(|s| s.suggestion_id.to_string()));
    let side_key = format::fingerprint(
        lookups
            .iter()
            .map(|l| format!("{}:{}", l.lookup_id, l.last_sequence))
            .chain(prices.iter().map(|p| format!("{}:{}:{}", p.id, p.revision, p.status)))
            .chain(std::iter::once(c.last_sequence.to_string())),
    );
    Ok(ConvView {
        id,
        name: c.customer_name.clone().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| tr.customer.to_string()),
        phone: phone_for(op.caller.role, c.customer_phone.as_deref()),
        status: c.status.clone(),
        status_label: status_label(tr, &c.status),
        channel_label: channel_label(tr, &c.channel),
        assignee,
        muted: c.muted,
        resolved: c.status == "resolved",
        escalated: c.status == "escalated",
        can_manage: op.can(Permission::ManageConversations),
        can_audit: op.can(Permission::ViewAuditLogs),
        head_key,
        timeline_key,
        suggestion_key,
        side_key,
        messages,
        suggestion,
        users,
        earlier: earlier
            .into_iter()
            .map(|(id, status, at, preview)| EarlierView {
                id,
                status_label: status_label(tr, &status),
                time: at.map(|t| format::short_time(t, now)).unwrap_or_default(),
                preview: preview.unwrap_or_default(),
            })
            .collect(),
        lookups: lookups.iter().map(lookup_view).collect(),
        prices: prices.iter().map(|p| price_view(tr, p, now)).collect(),
        unread: c.unread_count,
        notice,
        notice_error,
    })
}

#[derive(Template)]
#[template(path = "dashboard/conversation.html")]
struct ConversationPage {
    chrome: Chrome,
    v: ConvView,
}

#[derive(Template)]
#[template(path = "dashboard/conversation_live.html")]
struct ConversationFragment {
    chrome: Chrome,
    v: ConvView,
}

/// `GET /c/{id}`.
pub async fn page(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<Uuid>,
    Query(q): Query<NoticeQuery>,
) -> Response {
    if !op.can(Permission::ViewConversations) {
        return page::forbidden(&op);
    }
    match load(&state, &op, id, &q).await {
        Ok(v) => page::ok(&ConversationPage { chrome: Chrome::of(&op, "inbox"), v }),
        Err(LoadError::NotFound) => page::not_found(&op),
        Err(LoadError::Failed(e)) => page::server_error(&op, e),
    }
}

/// `GET /c/{id}/live`: the page's regions, for live updates.
pub async fn live(State(state): State<AppState>, op: Operator, Path(id): Path<Uuid>) -> Response {
    if !op.can(Permission::ViewConversations) {
        return page::forbidden(&op);
    }
    match load(&state, &op, id, &NoticeQuery::default()).await {
        Ok(v) => page::ok(&ConversationFragment { chrome: Chrome::of(&op, "inbox"), v }),
        Err(LoadError::NotFound) => page::not_found(&op),
        Err(LoadError::Failed(e)) => page::server_error(&op, e),
    }
}

/// The kind of a command's failure, as the redirect names it.
fn failure_kind(e: &CommandError) -> &'static str {
    match e {
        CommandError::NotFound(_) => "not_found",
        CommandError::Invalid { .. } => "invalid",
        CommandError::Conflict(_) => "conflict",
        CommandError::Forbidden(_) => "forbidden",
        other => {
            tracing::error!(error = %other, "a dashboard action failed");
            "server"
        }
    }
}

/// Back to the conversation with the outcome of an action.
fn back<T>(conversation: Uuid, outcome: Result<T, CommandError>) -> Response {
    match outcome {
        Ok(_) => redirect(&format!("/c/{conversation}?ok=1")),
        Err(e) => redirect(&format!("/c/{conversation}?e={}", failure_kind(&e))),
    }
}

/// Checks shared by every action: the CSRF token and the permission to manage conversations.
fn refused(op: &Operator, csrf: &str, conversation: Uuid) -> Option<Response> {
    if !op.csrf_ok(csrf) {
        return Some(redirect(&format!("/c/{conversation}?e=csrf")));
    }
    if !op.can(Permission::ManageConversations) {
        return Some(redirect(&format!("/c/{conversation}?e=forbidden")));
    }
    None
}

#[derive(Deserialize)]
pub struct ReplyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    text: String,
}

/// `POST /c/{id}/reply`: the operator's own reply.
pub async fn reply(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    Form(f): Form<ReplyForm>,
) -> Response {
    if let Some(r) = refused(&op, &f.csrf, id) {
        return r;
    }
    let text = f.text.trim().to_string();
    if text.is_empty() {
        return redirect(&format!("/c/{id}?e=empty"));
    }
    back(id, commands::reply(&state, op.tenant(), id, text, &op.metadata(&headers)).await)
}

#[derive(Deserialize)]
pub struct ActForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    op: String,
    #[serde(default)]
    operator: String,
    #[serde(default)]
    reason: String,
}

/// `POST /c/{id}/act`: take over, assign, escalate, resolve, reopen, mute, unmute, ask for a draft.
pub async fn act(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    Form(f): Form<ActForm>,
) -> Response {
    if let Some(r) = refused(&op, &f.csrf, id) {
        return r;
    }
    let meta = op.metadata(&headers);
    let (ctx, tenant) = (&state.ctx, op.tenant());
    let reason = Some(f.reason.trim().to_string()).filter(|r| !r.is_empty());
    let outcome = match f.op.as_str() {
        "take_over" => commands::assign(ctx, tenant, id, Some(op.user_id.to_string()), &meta).await.map(|_| ()),
        "assign" => {
            let who = Some(f.operator.trim().to_string()).filter(|o| !o.is_empty());
            commands::assign(ctx, tenant, id, who, &meta).await.map(|_| ())
        }
        "escalate" => commands::escalate(ctx, tenant, id, reason, None, &meta).await.map(|_| ()),
        "resolve" => commands::resolve(ctx, tenant, id, &meta).await.map(|_| ()),
        "reopen" => commands::reopen(ctx, tenant, id, &meta).await.map(|_| ()),
        "mute" => commands::mute(ctx, tenant, id, true, &meta).await.map(|_| ()),
        "unmute" => commands::mute(ctx, tenant, id, false, &meta).await.map(|_| ()),
        "request_draft" => commands::request_suggestion(ctx, tenant, id, &meta).await.map(|_| ()),
        _ => Err(CommandError::invalid("unknown_action", "unknown action")),
    };
    back(id, outcome)
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// `POST /c/{id}/read`: marks the conversation read (sent by the page's script when it opens a
/// conversation with unread messages); 204.
pub async fn read(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    if !op.csrf_ok(&f.csrf) {
        return StatusCode::FORBIDDEN.into_response();
    }
    if !op.can(Permission::ManageConversations) {
        return StatusCode::NO_CONTENT.into_response();
    }
    match commands::mark_read(&state, op.tenant(), id, &op.metadata(&headers)).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// `POST /c/{id}/retry/{reply}`: tries a failed reply again.
pub async fn retry(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    Path((id, reply_id)): Path<(Uuid, Uuid)>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    if let Some(r) = refused(&op, &f.csrf, id) {
        return r;
    }
    back(id, commands::retry_reply(&state, op.tenant(), id, reply_id, &op.metadata(&headers)).await)
}

#[derive(Deserialize)]
pub struct DecideForm {
    #[serde(default)]
    csrf: String,
    /// The conversation to go back to.
    c: Uuid,
    #[serde(default)]
    op: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    reason: String,
}

/// `POST /s/{id}/decide`: approve, edit and send, or reject a suggestion.
pub async fn decide(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    Form(f): Form<DecideForm>,
) -> Response {
    if let Some(r) = refused(&op, &f.csrf, f.c) {
        return r;
    }
    let meta = op.metadata(&headers);
    let tenant = op.tenant();
    let outcome = match f.op.as_str() {
        "approve" => commands::approve_suggestion(&state, tenant, id, &meta).await.map(|_| ()),
        "edit" => {
            let text = f.text.trim().to_string();
            if text.is_empty() {
                return redirect(&format!("/c/{}?e=empty", f.c));
            }
            commands::edit_suggestion(&state, tenant, id, text, &meta).await.map(|_| ())
        }
        "reject" => {
            let reason = Some(f.reason.trim().to_string()).filter(|r| !r.is_empty());
            commands::reject_suggestion(&state, tenant, id, reason, &meta).await.map(|_| ())
        }
        _ => Err(CommandError::invalid("unknown_action", "unknown action")),
    };
    back(f.c, outcome)
}

/// `POST /c/{id}/price/{lookup}/rerun`: searches the price of a lookup's subject again (a fresh
/// round even when the answer is still fresh), for this conversation.
pub async fn rerun_price(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    Path((id, lookup)): Path<(Uuid, Uuid)>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    if let Some(r) = refused(&op, &f.csrf, id) {
        return r;
    }
    let tenant = op.tenant();
    let row = match crate::application::price_lookups::find(&state.pool, tenant, lookup).await {
        Ok(Some(row)) => row,
        Ok(None) => return redirect(&format!("/c/{id}?e=not_found")),
        Err(e) => return back(id, Err::<(), _>(e)),
    };
    let Ok(subject) = serde_json::from_value::<aisales_domain::price::PriceSubject>(row.subject) else {
        return redirect(&format!("/c/{id}?e=price_subject"));
    };
    let input = aisales_domain::price::SubjectInput {
        oem: subject.oem,
        transmission_code: subject.transmission_code,
        make: subject.make,
        model: subject.model,
        gearbox_type: subject.gearbox_type,
        model_name_hint: subject.model_name_hint,
        year: subject.year,
        engine: subject.engine,
        drive: subject.drive,
    };
    let meta = op.metadata(&headers);
    let requester =
        aisales_domain::price_lookup::Requester::Operator { actor: meta.actor.clone(), conversation_id: Some(id) };
    let outcome =
        crate::application::price_lookups::request(&state, tenant, input, requester, true, Uuid::now_v7(), &meta).await;
    match outcome {
        Err(CommandError::Invalid { code: "invalid_price_subject", .. }) => {
            redirect(&format!("/c/{id}?e=price_subject"))
        }
        other => back(id, other),
    }
}

#[derive(Deserialize)]
pub struct VehicleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    op: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    oem: String,
    #[serde(default)]
    factory_code: String,
    #[serde(default)]
    note: String,
}

/// `POST /c/{id}/vehicle/{lookup}`: correct the lookup's identifier, confirm the gearbox from its
/// tag, or retry — through the `/api/vehicle-lookups/{id}/…` handlers themselves.
pub async fn vehicle(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    Path((id, lookup)): Path<(Uuid, Uuid)>,
    Form(f): Form<VehicleForm>,
) -> Response {
    use crate::http::ApiJson;
    use crate::http::api::vehicle_lookups as api;
    use crate::http::command::CommandMeta;
    if let Some(r) = refused(&op, &f.csrf, id) {
        return r;
    }
    let opt = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let meta = CommandMeta(op.metadata(&headers));
    let (st, caller) = (State(state.clone()), op.caller.clone());
    let outcome = match f.op.as_str() {
        "correct" => match serde_json::from_value(serde_json::json!({ "value": f.value.trim() })) {
            Ok(body) => api::correct(st, caller, meta, Path(lookup), ApiJson(body)).await,
            Err(e) => Err(ApiError::Unexpected(e.into())),
        },
        "confirm" => {
            let body = serde_json::json!({
                "model": f.model.trim(), "oem": opt(&f.oem), "factory_code": opt(&f.factory_code), "note": opt(&f.note),
            });
            if f.model.trim().is_empty() {
                return redirect(&format!("/c/{id}?e=invalid"));
            }
            match serde_json::from_value(body) {
                Ok(body) => api::confirm_gearbox(st, caller, meta, Path(lookup), ApiJson(body)).await,
                Err(e) => Err(ApiError::Unexpected(e.into())),
            }
        }
        "retry" => api::retry(st, caller, meta, Path(lookup)).await,
        _ => Err(ApiError::invalid("unknown_action", "unknown action")),
    };
    match outcome {
        Ok(_) => redirect(&format!("/c/{id}?ok=1")),
        Err(ApiError::NotFound(_)) => redirect(&format!("/c/{id}?e=not_found")),
        Err(ApiError::Conflict(_)) => redirect(&format!("/c/{id}?e=conflict")),
        Err(ApiError::Forbidden(_)) => redirect(&format!("/c/{id}?e=forbidden")),
        Err(ApiError::BadRequest(_) | ApiError::Unprocessable(_) | ApiError::Coded { .. }) => {
            redirect(&format!("/c/{id}?e=invalid"))
        }
        Err(e) => {
            tracing::error!(error = %e, "a vehicle lookup action failed");
            redirect(&format!("/c/{id}?e=server"))
        }
    }
}
