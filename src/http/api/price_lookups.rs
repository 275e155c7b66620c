//! Price lookups: ask for a price (`POST /api/price-lookups`), list them (per conversation), one
//! lookup with its range, listings and sources; and the tenant's price settings.
//!
//! Prices are market prices in whole roubles, before the tenant's margin; `min_price` and
//! `max_price` are null unless the status is `priced` or `estimated`.

use aisales_domain::price::{PaymentMethod, PriceSettings, TemplateKind};
use aisales_projections::price_lookups::PriceLookupRow;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::conversations::{consistent, decode_rows};
use super::paging::{Page, TimeKey, decode_cursor, limit};
use crate::application::price_lookups::{self as service, PriceLookupBody, TenantPriceSettings};
use crate::auth::Caller;
use crate::http::command::CommandMeta;
use crate::http::{ApiError, ApiJson, ApiQuery, AppState};

/// Projectors a lookup read waits for with `min_position`.
const PROJECTORS: &[&str] = &["price_lookups"];

/// A price lookup as the API shows it.
#[derive(Debug, Serialize)]
pub struct PriceLookupView {
    pub id: Uuid,
    pub status: String,
    pub search_key: String,
    pub subject: Value,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub median_price: Option<i64>,
    pub currency: String,
    pub confidence: Option<f64>,
    pub confidence_level: Option<String>,
    /// `market` or `own_price_list` when priced.
    pub basis: Option<String>,
    pub listings: Value,
    pub own_offers: Value,
    pub dropped_listings: i32,
    pub sources: Value,
    pub urls_checked: Value,
    pub ready_queries: Value,
    pub failure: Option<String>,
    pub conversation_ids: Vec<Uuid>,
    pub requesters: Value,
    pub offers: Value,
    pub round: i32,
    pub revision: i32,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<PriceLookupRow> for PriceLookupView {
    fn from(r: PriceLookupRow) -> Self {
        let priced = matches!(r.status.as_str(), "priced" | "estimated");
        PriceLookupView {
            id: r.id,
            min_price: r.min_price.filter(|_| priced),
            max_price: r.max_price.filter(|_| priced),
            median_price: r.median_price.filter(|_| priced),
            status: r.status,
            search_key: r.search_key,
            subject: r.subject,
            currency: r.currency,
            confidence: r.confidence,
            confidence_level: r.confidence_level,
            basis: r.basis,
            listings: r.listings,
            own_offers: r.own_offers,
            dropped_listings: r.dropped,
            sources: r.sources,
            urls_checked: r.urls_checked,
            ready_queries: r.ready_queries,
            failure: r.failure,
            conversation_ids: r.conversation_ids,
            requesters: r.requesters,
            offers: r.offers,
            round: r.round,
            revision: r.revision,
            expires_at: r.expires_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, Serialize)]
struct Asked {
    id: Uuid,
    /// `started` (a new search) or `joined` (a search in flight, or a fresh answer).
    result: &'static str,
    status: &'static str,
    position: Option<String>,
}

/// `POST /api/price-lookups` with any of `{"oem", "transmission_code", "make", "model",
/// "gearbox_type", "conversation_id", "refresh"}`: 202 with `{"id"}` for a new search, 200 when the
/// request joins one in flight or a fresh answer.
pub async fn request(
    State(state): State<AppState>,
    caller: Caller,
    CommandMeta(meta): CommandMeta,
    ApiJson(body): ApiJson<PriceLookupBody>,
) -> Result<Response, ApiError> {
    let r = service::request_from_api(&state, caller.tenant_id, body, &meta).await?;
    let position = r.position.map(|p| p.to_string());
    let status = if r.joined { StatusCode::OK } else { StatusCode::ACCEPTED };
    let body = Asked {
        id: r.lookup_id,
        result: if r.joined { "joined" } else { "started" },
        status: r.status.as_str(),
        position: position.clone(),
    };
    let mut resp = (status, Json(body)).into_response();
    if let Some(p) = position.as_deref().and_then(|p| HeaderValue::from_str(p).ok()) {
        resp.headers_mut().insert("x-position", p);
    }
    Ok(resp)
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    conversation_id: Option<Uuid>,
    status: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
    min_position: Option<String>,
}

/// `GET /api/price-lookups[?conversation_id=&status=]`: newest change first, cursor pagination.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<PriceLookupView>>, ApiError> {
    consistent(&state, PROJECTORS, q.min_position.as_deref(), &headers).await?;
    if let Some(s) = q.status.as_deref()
        && aisales_domain::price_lookup::PriceLookupStatus::parse(s).is_none()
    {
        return Err(ApiError::invalid(
            "invalid_status",
            "status is pending, searching, priced, estimated, not_found, escalated or failed",
        ));
    }
    let limit = limit(q.limit, 50, 200)?;
    let cursor: Option<TimeKey> = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT row_to_json(t)::text FROM rm_price_lookups t \
          WHERE tenant_id = $1 \
            AND ($2::uuid IS NULL OR $2 = ANY(conversation_ids)) \
            AND ($3::text IS NULL OR status = $3) \
            AND ($4::timestamptz IS NULL OR (updated_at, id) < ($4, $5)) \
          ORDER BY updated_at DESC, id DESC LIMIT $6",
    )
    .bind(caller.tenant_id)
    .bind(q.conversation_id)
    .bind(q.status.as_deref())
    .bind(cursor.map(|c| c.t))
    .bind(cursor.map(|c| c.id))
    .bind(limit + 1)
    .fetch_all(&state.pool)
    .await?;
    let rows: Vec<PriceLookupRow> = decode_rows(&rows)?;
    Ok(Json(Page::of(rows, limit, |r| Some(TimeKey { t: r.updated_at, id: r.id }), PriceLookupView::from)))
}

#[derive(Debug, Deserialize)]
pub struct ShowQuery {
    min_position: Option<String>,
}

/// `GET /api/price-lookups/{id}`.
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    ApiQuery(q): ApiQuery<ShowQuery>,
) -> Result<Json<PriceLookupView>, ApiError> {
    consistent(&state, PROJECTORS, q.min_position.as_deref(), &headers).await?;
    let row = service::find(&state.pool, caller.tenant_id, id).await?.ok_or(ApiError::NotFound("price lookup"))?;
    Ok(Json(row.into()))
}

/// The tenant's price settings as the API shows and takes them.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceSettingsBody {
    #[serde(default)]
    pub settings: PriceSettings,
    #[serde(default)]
    pub ai_estimate_enabled: bool,
    #[serde(default = "yes")]
    pub escalation_enabled: bool,
    /// By kind: `price_result`, `price_options`, `not_found`, `payment_options`.
    #[serde(default)]
    pub templates: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub payment_methods: Vec<PaymentMethod>,
}

fn yes() -> bool {
    true
}

impl From<TenantPriceSettings> for PriceSettingsBody {
    fn from(s: TenantPriceSettings) -> Self {
        PriceSettingsBody {
            settings: s.price,
            ai_estimate_enabled: s.ai_estimate_enabled,
            escalation_enabled: s.escalation_enabled,
            templates: s.templates.into_iter().map(|(k, v)| (k.as_str().to_string(), v)).collect(),
            payment_methods: s.payment_methods,
        }
    }
}

/// `GET /api/price-settings`.
pub async fn settings(State(state): State<AppState>, caller: Caller) -> Result<Json<PriceSettingsBody>, ApiError> {
    Ok(Json(service::tenant_settings(&state.pool, caller.tenant_id).await?.into()))
}

/// `PUT /api/price-settings`: margin, rounding, mileage tiers, market range shown, note, AI
/// estimate and escalation switches, templates (unknown placeholders refused) and payment methods.
pub async fn update_settings(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<PriceSettingsBody>,
) -> Result<Json<PriceSettingsBody>, ApiError> {
    let mut templates = aisales_domain::price::TemplateOverrides::new();
    for (name, content) in body.templates {
        let kind = TemplateKind::parse(&name).ok_or_else(|| {
            ApiError::invalid(
                "invalid_template",
                format!("`{name}` is not a template kind: price_result, price_options, not_found, payment_options"),
            )
        })?;
        templates.insert(kind, content);
    }
    let s = TenantPriceSettings {
        price: body.settings,
        ai_estimate_enabled: body.ai_estimate_enabled,
        escalation_enabled: body.escalation_enabled,
        templates,
        payment_methods: body.payment_methods,
    };
    service::save_tenant_settings(&state.pool, caller.tenant_id, &s).await?;
    Ok(Json(service::tenant_settings(&state.pool, caller.tenant_id).await?.into()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewBody {
    /// `price_result`, `price_options`, `not_found` or `payment_options`.
    kind: String,
    content: String,
}

#[derive(Debug, Serialize)]
pub struct Preview {
    rendered: String,
    /// Known placeholders the sample had no value for (rendered as nothing).
    missing: Vec<String>,
    /// The placeholders the kind knows.
    variables: &'static [&'static str],
}

/// `POST /api/price-templates/preview` with `{"kind", "content"}`: the template rendered with sample
/// values; a template with an unknown placeholder is refused with the unknown and the known names.
pub async fn preview_template(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<PreviewBody>,
) -> Result<Json<Preview>, ApiError> {
    let kind = TemplateKind::parse(&body.kind).ok_or_else(|| {
        ApiError::invalid("invalid_template", "kind is price_result, price_options, not_found or payment_options")
    })?;
    aisales_domain::price::validate_template(kind, &body.content)
        .map_err(|e| ApiError::invalid("invalid_template", e.to_string()))?;
    let r = aisales_domain::price::preview(kind, &body.content, state.settings.prices.clock.now())
        .map_err(|e| ApiError::invalid("invalid_template", e.to_string()))?;
    Ok(Json(Preview { rendered: r.text, missing: r.missing, variables: kind.variables() }))
}
