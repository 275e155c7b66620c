//! Settings (channel accounts, users and roles, API tokens, decision / autosend / delay settings)
//! and operations (readiness checks, projector lag and owners, the job backlog, dead letters) for
//! owners and admins. Every change runs the same code as the matching `/api` route.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::page::{self, Chrome};
use super::session::{Operator, redirect};
use aisales_domain::price::TemplateKind;

use crate::auth::{Permission, Role};
use crate::http::{ApiError, ApiJson, AppState};

/// A channel account as listed.
pub struct AccountRow {
    pub id: Uuid,
    pub label: String,
    pub kind: String,
    pub status: String,
    pub webhook_url: String,
    pub disabled: bool,
}

/// A user as listed.
pub struct UserRow {
    pub email: String,
    pub role: String,
    pub last_login: String,
    pub pending: bool,
    pub blocked: bool,
}

/// A token as listed.
pub struct TokenRow {
    pub id: Uuid,
    pub name: String,
    pub role: String,
    pub prefix: String,
    pub created: String,
    pub last_used: String,
    pub revoked: bool,
}

/// One editable setting: its path in the settings object, its kind and current value.
pub struct SettingRow {
    pub path: String,
    /// `bool`, `number` or `text`.
    pub kind: &'static str,
    pub value: String,
    pub checked: bool,
}

/// A day of the working week as a checkbox.
pub struct DayOpt {
    pub code: &'static str,
    pub label: &'static str,
    pub checked: bool,
}

/// The working hours form.
pub struct HoursView {
    pub timezone: String,
    pub start: String,
    pub end: String,
    pub days: Vec<DayOpt>,
}

/// A price reply template with its preview (rendered with sample values).
pub struct TemplateView {
    pub kind: &'static str,
    pub label: &'static str,
    pub content: String,
    pub preview: String,
    pub variables: String,
}

/// The price settings form.
pub struct PriceView {
    pub margin_pct: String,
    pub round_to: Vec<(u32, bool)>,
    pub mileage_low: u32,
    pub mileage_mid: u32,
    pub show_market_range: bool,
    pub price_note: String,
    pub ai_estimate_enabled: bool,
    pub escalation_enabled: bool,
    pub templates: Vec<TemplateView>,
}

#[derive(Template)]
#[template(path = "dashboard/settings.html")]
struct SettingsPage {
    hours: HoursView,
    prices: PriceView,
    chrome: Chrome,
    notice: Option<String>,
    notice_error: bool,
    secret_label: &'static str,
    secret: Option<String>,
    accounts: Vec<AccountRow>,
    manage_users: bool,
    users: Vec<UserRow>,
    tokens: Vec<TokenRow>,
    settings: Vec<SettingRow>,
    roles: [&'static str; 4],
}

fn when(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_default()
}

/// The days of the week as the tenant stores them.
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// `HH:MM` from a time input as the API takes it (`HH:MM:SS`).
fn time_of(s: &str) -> String {
    let s = s.trim();
    if s.len() == 5 { format!("{s}:00") } else { s.to_string() }
}

/// The price settings form as the body of `PUT /api/price-settings` (payment methods kept; a
/// template left as the built-in text is not stored as an override).
async fn price_body(state: &AppState, tenant: Uuid, form: &HashMap<String, String>) -> Result<Value, ApiError> {
    let current = crate::application::price_lookups::tenant_settings(&state.pool, tenant).await?;
    let field = |k: &str| form.get(k).map(|s| s.trim().to_string()).unwrap_or_default();
    let number = |k: &str| -> Result<Value, ApiError> {
        let raw = field(k).replace(',', ".").replace([' ', '\u{a0}'], "");
        let n: f64 = raw.parse().map_err(|_| ApiError::invalid("invalid_price_settings", format!("{k}: {raw}")))?;
        Ok(serde_json::json!(n))
    };
    let whole = |k: &str| -> Result<Value, ApiError> {
        let raw = field(k).replace([' ', '\u{a0}'], "");
        let n: u32 = raw.parse().map_err(|_| ApiError::invalid("invalid_price_settings", format!("{k}: {raw}")))?;
        Ok(serde_json::json!(n))
    };
    let mut templates = serde_json::Map::new();
    for kind in TemplateKind::ALL {
        let content = form.get(&format!("t:{}", kind.as_str())).map(|c| c.replace("\r\n", "\n")).unwrap_or_default();
        if !content.trim().is_empty() && content.trim() != kind.default_content().trim() {
            templates.insert(kind.as_str().to_string(), Value::String(content));
        }
    }
    Ok(serde_json::json!({
        "settings": {
            "margin_pct": number("margin_pct")?,
            "round_to": whole("round_to")?,
            "mileage_low": whole("mileage_low")?,
            "mileage_mid": whole("mileage_mid")?,
            "show_market_range": form.contains_key("show_market_range"),
            "price_note": field("price_note"),
        },
        "ai_estimate_enabled": form.contains_key("ai_estimate_enabled"),
        "escalation_enabled": form.contains_key("escalation_enabled"),
        "templates": templates,
        "payment_methods": current.payment_methods,
    }))
}

/// Every scalar leaf of a JSON object with its dotted path.
fn leaves(prefix: &str, v: &Value, out: &mut Vec<SettingRow>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                leaves(&path, v, out);
            }
        }
        Value::Bool(b) => out.push(SettingRow { path: prefix.into(), kind: "bool", value: String::new(), checked: *b }),
        Value::Number(n) => {
            out.push(SettingRow { path: prefix.into(), kind: "number", value: n.to_string(), checked: false })
        }
        Value::String(s) => {
            out.push(SettingRow { path: prefix.into(), kind: "text", value: s.clone(), checked: false })
        }
        _ => {}
    }
}

/// The settings object with the form's values put in place of its scalar leaves (types kept).
fn apply_form(current: &Value, form: &HashMap<String, String>, prefix: &str) -> Result<Value, String> {
    Ok(match current {
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                out.insert(k.clone(), apply_form(v, form, &path)?);
            }
            Value::Object(out)
        }
        Value::Bool(_) => Value::Bool(form.contains_key(&format!("s:{prefix}"))),
        Value::Number(n) => match form.get(&format!("s:{prefix}")).map(|s| s.trim()) {
            Some(s) if n.is_f64() => {
                let x: f64 = s.replace(',', ".").parse().map_err(|_| format!("{prefix}: {s}"))?;
                serde_json::Number::from_f64(x).map(Value::Number).ok_or_else(|| format!("{prefix}: {s}"))?
            }
            Some(s) => Value::Number(s.parse::<i64>().map_err(|_| format!("{prefix}: {s}"))?.into()),
            None => current.clone(),
        },
        Value::String(_) => {
            form.get(&format!("s:{prefix}")).map(|s| Value::String(s.clone())).unwrap_or(current.clone())
        }
        other => other.clone(),
    })
}

async fn settings_page(
    state: &AppState,
    op: &Operator,
    notice: Option<String>,
    notice_error: bool,
    secret: Option<(&'static str, String)>,
) -> Result<Response, anyhow::Error> {
    let tenant = op.tenant();
    let mut accounts = Vec::new();
    for a in crate::tenancy::list_channel_accounts(&state.pool, tenant).await? {
        let webhook_url = crate::application::channels::webhook_url(state.settings.public_base_url(), &a);
        accounts.push(AccountRow {
            id: a.id,
            label: a.label.clone(),
            kind: a.kind.as_str().to_string(),
            status: a.status.clone(),
            webhook_url,
            disabled: a.disabled_at.is_some(),
        });
    }
    let manage_users = op.can(Permission::ManageUsers);
    let (users, tokens) = if manage_users {
        let users = crate::tenancy::list_users(&state.pool, tenant)
            .await?
            .into_iter()
            .map(|u| UserRow {
                email: u.email,
                role: u.role,
                last_login: when(u.last_login_at),
                pending: u.must_change_password,
                blocked: u.disabled_at.is_some() || u.locked_until.is_some_and(|t| t > chrono::Utc::now()),
            })
            .collect();
        let mut conn = state.pool.acquire().await?;
        let tokens = crate::auth::tokens::list(&mut conn, tenant)
            .await?
            .into_iter()
            .map(|t| TokenRow {
                id: t.id,
                name: t.name,
                role: t.role,
                prefix: t.prefix,
                created: when(Some(t.created_at)),
                last_used: when(t.last_used_at),
                revoked: t.revoked_at.is_some(),
            })
            .collect();
        (users, tokens)
    } else {
        (Vec::new(), Vec::new())
    };
    let t = crate::tenancy::get_tenant(&state.pool, tenant)
        .await?
        .ok_or_else(|| anyhow::anyhow!("tenant {tenant} is gone"))?;
    let mut settings = Vec::new();
    leaves("", &serde_json::to_value(&t.settings)?, &mut settings);
    let tr = op.lang.tr();
    let day_labels = [tr.mon, tr.tue, tr.wed, tr.thu, tr.fri, tr.sat, tr.sun];
    let hours = HoursView {
        timezone: t.timezone.clone(),
        start: t.working_hours_start.format("%H:%M").to_string(),
        end: t.working_hours_end.format("%H:%M").to_string(),
        days: DAYS
            .iter()
            .zip(day_labels)
            .map(|(code, label)| DayOpt { code, label, checked: t.working_days.iter().any(|d| d == code) })
            .collect(),
    };
    let p = crate::application::price_lookups::tenant_settings(&state.pool, tenant).await?;
    let now = state.settings.prices.clock.now();
    let templates = TemplateKind::ALL
        .into_iter()
        .map(|kind| {
            let content = p.templates.get(&kind).cloned().unwrap_or_else(|| kind.default_content().to_string());
            let preview = match aisales_domain::price::preview(kind, &content, now) {
                Ok(r) => r.text,
                Err(e) => e.to_string(),
            };
            TemplateView {
                label: match kind {
                    TemplateKind::PriceResult => tr.tpl_price_result,
                    TemplateKind::PriceOptions => tr.tpl_price_options,
                    TemplateKind::NotFound => tr.tpl_not_found,
                    TemplateKind::PaymentOptions => tr.tpl_payment_options,
                },
                kind: kind.as_str(),
                content,
                preview,
                variables: kind.variables().iter().map(|v| format!("{{{{{v}}}}}")).collect::<Vec<_>>().join(" "),
            }
        })
        .collect();
    let prices = PriceView {
        margin_pct: p.price.margin_pct.to_string(),
        round_to: [1, 10, 100, 1000].into_iter().map(|r| (r, r == p.price.round_to)).collect(),
        mileage_low: p.price.mileage_low,
        mileage_mid: p.price.mileage_mid,
        show_market_range: p.price.show_market_range,
        price_note: p.price.price_note.clone(),
        ai_estimate_enabled: p.ai_estimate_enabled,
        escalation_enabled: p.escalation_enabled,
        templates,
    };
    let (secret_label, secret) = match secret {
        Some((l, s)) => (l, Some(s)),
        None => ("", None),
    };
    Ok(page::ok(&SettingsPage {
        hours,
        prices,
        chrome: Chrome::of(op, "settings"),
        notice,
        notice_error,
        secret_label,
        secret,
        accounts,
        manage_users,
        users,
        tokens,
        settings,
        roles: Role::ALL.map(Role::as_str),
    }))
}

#[derive(Debug, Default, Deserialize)]
pub struct SettingsQuery {
    ok: Option<String>,
    e: Option<String>,
}

/// `GET /settings`.
pub async fn settings(State(state): State<AppState>, op: Operator, Query(q): Query<SettingsQuery>) -> Response {
    if !op.is_admin() {
        return page::forbidden(&op);
    }
    let tr = op.lang.tr();
    let (notice, error) = match (q.ok.is_some(), q.e.as_deref()) {
        (_, Some("csrf")) => (Some(tr.form_expired.to_string()), true),
        (_, Some("forbidden")) => (Some(tr.err_forbidden.to_string()), true),
        (_, Some("not_found")) => (Some(tr.err_not_found.to_string()), true),
        (_, Some(_)) => (Some(tr.server_error.to_string()), true),
        (true, None) => (Some(tr.done_ok.to_string()), false),
        (false, None) => (None, false),
    };
    settings_page(&state, &op, notice, error, None).await.unwrap_or_else(|e| page::server_error(&op, e))
}

/// The sentence of an API failure on the settings page.
fn sentence(op: &Operator, e: &ApiError) -> String {
    let tr = op.lang.tr();
    match e {
        ApiError::Forbidden(_) => tr.err_forbidden.to_string(),
        ApiError::NotFound(_) => tr.err_not_found.to_string(),
        ApiError::Conflict(m) | ApiError::BadRequest(m) | ApiError::Unprocessable(m) => {
            format!("{} {m}.", tr.settings_refused)
        }
        ApiError::Coded { message, .. } => format!("{} {message}.", tr.settings_refused),
        _ => {
            tracing::error!(error = %e, "a settings change failed");
            tr.server_error.to_string()
        }
    }
}

/// `POST /settings`: every form of the settings page, told apart by `op`.
pub async fn change(
    State(state): State<AppState>,
    op: Operator,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !op.is_admin() {
        return page::forbidden(&op);
    }
    if !op.csrf_ok(form.get("csrf").map(String::as_str).unwrap_or_default()) {
        return redirect("/settings?e=csrf");
    }
    let tr = op.lang.tr();
    let field = |k: &str| form.get(k).map(|s| s.trim().to_string()).unwrap_or_default();
    let needs = match field("op").as_str() {
        "add_user" | "create_token" => Permission::ManageUsers,
        _ => Permission::ManageTenantSettings,
    };
    if !op.can(needs) {
        return redirect("/settings?e=forbidden");
    }
    let outcome: Result<Option<(&'static str, String)>, ApiError> = match field("op").as_str() {
        "settings" => {
            let current = match crate::tenancy::get_tenant(&state.pool, op.tenant()).await {
                Ok(Some(t)) => serde_json::to_value(&t.settings).unwrap_or(Value::Null),
                Ok(None) => return page::not_found(&op),
                Err(e) => return page::server_error(&op, e),
            };
            match apply_form(&current, &form, "") {
                Ok(settings) => {
                    let patch = serde_json::from_value(serde_json::json!({ "settings": settings }));
                    match patch {
                        Ok(p) => crate::http::api::tenant::update(State(state.clone()), op.caller.clone(), ApiJson(p))
                            .await
                            .map(|_| None),
                        Err(e) => Err(ApiError::Unexpected(e.into())),
                    }
                }
                Err(m) => Err(ApiError::invalid("invalid_settings", m)),
            }
        }
        "hours" => {
            let days: Vec<&str> = DAYS.into_iter().filter(|d| form.contains_key(&format!("day:{d}"))).collect();
            let patch = serde_json::from_value(serde_json::json!({
                "timezone": field("timezone"),
                "working_hours_start": time_of(&field("start")),
                "working_hours_end": time_of(&field("end")),
                "working_days": days,
            }));
            match patch {
                Ok(p) => crate::http::api::tenant::update(State(state.clone()), op.caller.clone(), ApiJson(p))
                    .await
                    .map(|_| None),
                Err(_) => Err(ApiError::invalid("invalid_hours", tr.hours_invalid)),
            }
        }
        "prices" => match price_body(&state, op.tenant(), &form).await {
            Ok(body) => match serde_json::from_value(body) {
                Ok(body) => crate::http::api::price_lookups::update_settings(
                    State(state.clone()),
                    op.caller.clone(),
                    ApiJson(body),
                )
                .await
                .map(|_| None),
                Err(e) => Err(ApiError::invalid("invalid_price_settings", e.to_string())),
            },
            Err(e) => Err(e),
        },
        "add_user" => match serde_json::from_value(serde_json::json!({"email": field("email"), "role": field("role")}))
        {
            Ok(body) => crate::http::api::users::create(State(state.clone()), op.caller.clone(), ApiJson(body))
                .await
                .map(|(_, created)| Some((tr.one_time_password_is, created.0.one_time_password.clone()))),
            Err(e) => Err(ApiError::Unexpected(e.into())),
        },
        "create_token" => {
            match serde_json::from_value(serde_json::json!({"name": field("name"), "role": field("role")})) {
                Ok(body) => crate::http::api::tokens::create(State(state.clone()), op.caller.clone(), ApiJson(body))
                    .await
                    .map(|(_, created)| Some((tr.new_token_is, created.0.api_token.clone()))),
                Err(e) => Err(ApiError::Unexpected(e.into())),
            }
        }
        _ => Err(ApiError::invalid("unknown_action", "unknown action")),
    };
    let result = match outcome {
        Ok(secret) => {
            let saved = if secret.is_none() { Some(tr.settings_saved.to_string()) } else { None };
            settings_page(&state, &op, saved, false, secret).await
        }
        Err(e) => settings_page(&state, &op, Some(sentence(&op, &e)), true, None).await,
    };
    result.unwrap_or_else(|e| page::server_error(&op, e))
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /settings/tokens/{id}/revoke`.
pub async fn revoke_token(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<Uuid>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if !op.csrf_ok(&f.csrf) {
        return redirect("/settings?e=csrf");
    }
    if !op.can(Permission::ManageUsers) {
        return redirect("/settings?e=forbidden");
    }
    match crate::http::api::tokens::revoke(State(state), op.caller.clone(), Path(id)).await {
        Ok(_) => redirect("/settings?ok=1"),
        Err(ApiError::NotFound(_)) => redirect("/settings?e=not_found"),
        Err(e) => page::server_error(&op, e),
    }
}

/// `POST /settings/channels/{id}/webhook`: points the provider at the account's webhook again.
pub async fn reregister(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<Uuid>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if !op.csrf_ok(&f.csrf) {
        return redirect("/settings?e=csrf");
    }
    if !op.can(Permission::ManageChannels) {
        return redirect("/settings?e=forbidden");
    }
    match crate::http::api::channels::register_webhook(State(state.clone()), op.caller.clone(), Path(id)).await {
        Ok(_) => redirect("/settings?ok=1"),
        Err(ApiError::NotFound(_)) => redirect("/settings?e=not_found"),
        Err(e) => {
            let s = sentence(&op, &e);
            settings_page(&state, &op, Some(s), true, None).await.unwrap_or_else(|e| page::server_error(&op, e))
        }
    }
}

/// A projector as the operations page shows it.
pub struct ProjectorRow {
    pub name: String,
    pub lag: i64,
    pub owner: String,
    pub updated: String,
}

/// A check of `/ready`.
pub struct CheckRow {
    pub name: &'static str,
    pub status: &'static str,
    pub message: String,
    pub latency_ms: u64,
}

/// Jobs of one kind and status.
pub struct BacklogRow {
    pub kind: String,
    pub status: String,
    pub count: i64,
}

/// A dead-lettered webhook.
pub struct DeadLetterRow {
    pub provider: String,
    pub kind: String,
    pub reason: String,
    pub received: String,
}

/// A dead-lettered job of the tenant (a Redis dead-letter stream entry).
pub struct DeadJobRow {
    pub kind: &'static str,
    pub id: String,
    pub aggregate: String,
    pub reason: String,
    pub deliveries: u64,
    pub failed: String,
}

#[derive(Template)]
#[template(path = "dashboard/ops.html")]
struct OpsPage {
    chrome: Chrome,
    notice: Option<&'static str>,
    notice_error: bool,
    ready: &'static str,
    checks: Vec<CheckRow>,
    projectors: Vec<ProjectorRow>,
    backlog: Vec<BacklogRow>,
    dead_jobs: Vec<DeadJobRow>,
    dead: Vec<DeadLetterRow>,
}

/// Dead letters read per kind (the newest are kept by the stream's cap).
const DEAD_JOBS_READ: usize = 1000;

/// The tenant's dead-lettered jobs of every kind.
async fn dead_jobs(state: &AppState, tenant: Uuid) -> anyhow::Result<Vec<DeadJobRow>> {
    let mut conn = state.redis.conn();
    let prefix = state.settings.bus.redis_prefix.as_str();
    let mut out = Vec::new();
    for kind in crate::bus::Kind::ALL {
        for d in crate::bus::streams::dead_letters(&mut conn, prefix, kind, DEAD_JOBS_READ).await? {
            let Some(job) = d.job.as_ref().filter(|j| j.tenant_id == Some(tenant)) else { continue };
            out.push(DeadJobRow {
                kind: kind.as_str(),
                aggregate: format!("{}:{}", job.aggregate_type, job.aggregate_id),
                id: d.id.clone(),
                reason: d.reason.clone(),
                deliveries: d.deliveries,
                failed: when(d.failed_at),
            });
        }
    }
    Ok(out)
}

async fn ops_page(state: &AppState, op: &Operator, q: &SettingsQuery) -> anyhow::Result<Response> {
    let tr = op.lang.tr();
    let (notice, notice_error) = match (q.ok.is_some(), q.e.as_deref()) {
        (_, Some("csrf")) => (Some(tr.form_expired), true),
        (_, Some("forbidden")) => (Some(tr.err_forbidden), true),
        (_, Some("not_found")) => (Some(tr.err_dead_letter_gone), true),
        (_, Some("unreadable")) => (Some(tr.err_dead_letter_unreadable), true),
        (_, Some(_)) => (Some(tr.server_error), true),
        (true, None) => (Some(tr.dead_letter_retried), false),
        (false, None) => (None, false),
    };
    let (_, readiness) = crate::http::health::readiness(state).await;
    let projectors = crate::projection::registry::all(&state.settings, &state.pool, &state.redis);
    let projectors = crate::projection::runtime::status(&state.pool, &projectors)
        .await?
        .into_iter()
        .map(|p| ProjectorRow {
            name: p.name,
            lag: p.lag_events,
            owner: p.owner.unwrap_or_default(),
            updated: when(p.updated_at),
        })
        .collect();
    let backlog: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT kind, status, count(*) FROM work_items WHERE tenant_id = $1 AND status IN ('requested', 'started', 'failed') \
          GROUP BY kind, status ORDER BY kind, status",
    )
    .bind(op.tenant())
    .fetch_all(&state.pool)
    .await?;
    let dead: Vec<(String, String, String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT provider, kind, reason, received_at FROM webhook_dead_letters WHERE tenant_id = $1 \
          ORDER BY received_at DESC LIMIT 100",
    )
    .bind(op.tenant())
    .fetch_all(&state.pool)
    .await?;
    let dead_jobs = dead_jobs(state, op.tenant()).await?;
    Ok(page::ok(&OpsPage {
        chrome: Chrome::of(op, "ops"),
        notice,
        notice_error,
        dead_jobs,
        ready: readiness.status,
        checks: readiness
            .checks
            .into_iter()
            .map(|c| CheckRow { name: c.name, status: c.status, message: c.message, latency_ms: c.latency_ms })
            .collect(),
        projectors,
        backlog: backlog.into_iter().map(|(kind, status, count)| BacklogRow { kind, status, count }).collect(),
        dead: dead
            .into_iter()
            .map(|(provider, kind, reason, at)| DeadLetterRow { provider, kind, reason, received: when(Some(at)) })
            .collect(),
    }))
}

/// `GET /ops`.
pub async fn operations(State(state): State<AppState>, op: Operator, Query(q): Query<SettingsQuery>) -> Response {
    if !op.is_admin() {
        return page::forbidden(&op);
    }
    ops_page(&state, &op, &q).await.unwrap_or_else(|e| page::server_error(&op, e))
}

/// `POST /ops/dead-letters/{kind}/{id}/retry`: puts one of the tenant's dead-lettered jobs back,
/// as `aisales streams dead-letters retry <kind> <id>` does: the job's handler records the retry
/// on its aggregate (which asks for the work again through the usual path), then the dead letter
/// is removed. Another tenant's dead letter is "not found".
pub async fn retry_dead_letter(
    State(state): State<AppState>,
    op: Operator,
    Path((kind, id)): Path<(String, String)>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if !op.csrf_ok(&f.csrf) {
        return redirect("/ops?e=csrf");
    }
    if !op.is_admin() || !op.can(Permission::ManageTenantSettings) {
        return redirect("/ops?e=forbidden");
    }
    let Ok(kind) = kind.parse::<crate::bus::Kind>() else { return redirect("/ops?e=not_found") };
    let mut conn = state.redis.conn();
    let prefix = state.settings.bus.redis_prefix.clone();
    let letter = match crate::bus::streams::dead_letter_by_id(&mut conn, &prefix, kind, &id).await {
        Ok(Some(d)) => d,
        Ok(None) => return redirect("/ops?e=not_found"),
        Err(e) => return page::server_error(&op, e),
    };
    let Some(job) = letter.job.as_ref() else {
        // Only a readable job says whose it is; an unreadable one stays for the CLI.
        return redirect("/ops?e=unreadable");
    };
    if job.tenant_id != Some(op.tenant()) {
        return redirect("/ops?e=not_found");
    }
    let services = crate::workers::Services::with_context(state.ctx.clone());
    let handler = match crate::workers::handler(kind, &services) {
        Ok(h) => h,
        Err(e) => return page::server_error(&op, e),
    };
    if let Err(e) = handler.retry(job).await {
        tracing::error!(error = format!("{e:#}"), kind = kind.as_str(), "a dead-letter retry failed");
        return redirect("/ops?e=server");
    }
    handler.shutdown().await;
    match crate::bus::streams::remove_dead_letter(&mut conn, &prefix, kind, &id).await {
        Ok(()) => redirect("/ops?ok=1"),
        Err(e) => page::server_error(&op, e),
    }
}
