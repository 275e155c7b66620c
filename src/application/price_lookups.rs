//! Price lookups: a request from an operator, a completed vehicle lookup or a transmission code in
//! a customer message goes to the one `PriceLookup` of the tenant and search key, so identical
//! requests share one search (single flight) and a fresh answer answers them all. Also the tenant's
//! price settings, its own price list and the reads of the API.

use aisales_domain::price::{
    OwnOffer, PaymentMethod, PriceSettings, PriceSubject, SearchKey, SubjectInput, TemplateKind, TemplateOverrides,
};
use aisales_domain::price_lookup::{
    PriceLookup, PriceLookupCommand, PriceLookupError, PriceLookupStatus, PriceRequest, Requester, price_lookup_id,
};
use aisales_projections::price_lookups::{PRICE_LOOKUP, PriceLookupRow};
use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::conversations::owner_of;
use super::{CommandError, Context};
use crate::store::{EventMetadata, ExecuteError};

/// How a tenant answers price questions (`tenant_price_settings`; defaults without a row).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantPriceSettings {
    pub price: PriceSettings,
    /// An AI estimate may be asked when no market price is found.
    pub ai_estimate_enabled: bool,
    /// Nothing found: an operator is asked to search by hand (escalation suggestion).
    pub escalation_enabled: bool,
    pub templates: TemplateOverrides,
    pub payment_methods: Vec<PaymentMethod>,
}

/// The price settings of `tenant`.
pub async fn tenant_settings(pool: &PgPool, tenant: Uuid) -> anyhow::Result<TenantPriceSettings> {
    let row: Option<(serde_json::Value, bool, bool, serde_json::Value, serde_json::Value)> = sqlx::query_as(
        "SELECT settings, ai_estimate_enabled, escalation_enabled, templates, payment_methods \
           FROM tenant_price_settings WHERE tenant_id = $1",
    )
    .bind(tenant)
    .fetch_optional(pool)
    .await?;
    let Some((settings, ai, escalation, templates, payments)) = row else {
        return Ok(TenantPriceSettings { escalation_enabled: true, ..TenantPriceSettings::default() });
    };
    let templates: std::collections::BTreeMap<String, String> = serde_json::from_value(templates).unwrap_or_default();
    let mut payment_methods: Vec<PaymentMethod> = serde_json::from_value(payments).unwrap_or_default();
    payment_methods.retain(|m| m.active);
    payment_methods.sort_by_key(|m| m.order);
    Ok(TenantPriceSettings {
        price: serde_json::from_value(settings).unwrap_or_default(),
        ai_estimate_enabled: ai,
        escalation_enabled: escalation,
        templates: templates.into_iter().filter_map(|(k, v)| TemplateKind::parse(&k).map(|k| (k, v))).collect(),
        payment_methods,
    })
}

/// Stores the price settings of `tenant` (validated first; nothing is changed when they break a rule).
pub async fn save_tenant_settings(pool: &PgPool, tenant: Uuid, s: &TenantPriceSettings) -> Result<(), CommandError> {
    s.price.validate().map_err(|e| CommandError::invalid("invalid_price_settings", e.to_string()))?;
    for (kind, content) in &s.templates {
        aisales_domain::price::validate_template(*kind, content)
            .map_err(|e| CommandError::invalid("invalid_template", e.to_string()))?;
    }
    let templates: std::collections::BTreeMap<&str, &String> =
        s.templates.iter().map(|(k, v)| (k.as_str(), v)).collect();
    sqlx::query(
        "INSERT INTO tenant_price_settings (tenant_id, settings, ai_estimate_enabled, escalation_enabled, templates, payment_methods, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, now()) \
         ON CONFLICT (tenant_id) DO UPDATE SET settings = EXCLUDED.settings, ai_estimate_enabled = EXCLUDED.ai_estimate_enabled, \
           escalation_enabled = EXCLUDED.escalation_enabled, templates = EXCLUDED.templates, \
           payment_methods = EXCLUDED.payment_methods, updated_at = now()",
    )
    .bind(tenant)
    .bind(serde_json::to_value(&s.price).map_err(anyhow::Error::from)?)
    .bind(s.ai_estimate_enabled)
    .bind(s.escalation_enabled)
    .bind(serde_json::to_value(templates).map_err(anyhow::Error::from)?)
    .bind(serde_json::to_value(&s.payment_methods).map_err(anyhow::Error::from)?)
    .execute(pool)
    .await?;
    Ok(())
}

/// A code as the price list keys it: upper case, without whitespace.
pub fn list_code(code: &str) -> String {
    code.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_uppercase()
}

/// The rows of the tenant's own price list that match the subject's codes.
pub async fn own_offers(pool: &PgPool, tenant: Uuid, subject: &PriceSubject) -> anyhow::Result<Vec<OwnOffer>> {
    let codes: Vec<String> = subject.codes().into_iter().map(list_code).collect();
    if codes.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(i64, String, String, Option<i32>)> = sqlx::query_as(
        "SELECT price, condition, supplier, stock FROM price_list_items \
          WHERE tenant_id = $1 AND code = ANY($2) AND currency = 'RUB' AND (stock IS NULL OR stock > 0) \
          ORDER BY price, condition, supplier",
    )
    .bind(tenant)
    .bind(&codes)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter(|(price, ..)| *price > 0)
        .map(|(price, condition, supplier, stock)| OwnOffer {
            price: price as u64,
            condition: Some(condition).filter(|c| !c.is_empty()),
            supplier: Some(supplier).filter(|s| !s.is_empty()),
            stock: stock.and_then(|s| u32::try_from(s).ok()),
        })
        .collect())
}

/// What a request asks to price, as the API takes it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceLookupBody {
    #[serde(default)]
    pub oem: Option<String>,
    #[serde(default)]
    pub transmission_code: Option<String>,
    #[serde(default)]
    pub make: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub gearbox_type: Option<aisales_domain::detect::GearboxType>,
    #[serde(default)]
    pub conversation_id: Option<Uuid>,
    /// Search again even when the recorded answer is still fresh.
    #[serde(default)]
    pub refresh: bool,
}

/// What asking for a price did.
#[derive(Debug, Clone)]
pub struct Requested {
    pub lookup_id: Uuid,
    /// The request joined a running search, or was answered from the fresh recorded answer.
    pub joined: bool,
    pub status: PriceLookupStatus,
    pub position: Option<aisales_projections::Position>,
}

fn price_error(e: ExecuteError<PriceLookupError>) -> CommandError {
    match e {
        ExecuteError::Rejected(PriceLookupError::NotFound | PriceLookupError::WrongTenant) => {
            CommandError::NotFound("price lookup")
        }
        ExecuteError::Rejected(e) => CommandError::Conflict(e.to_string()),
        ExecuteError::Conflict => CommandError::Conflict("the price lookup is being changed; try again".into()),
        ExecuteError::Store(e) => e.into(),
    }
}

/// Asks for the price of `input` for `tenant`. A request joins the lookup of its search key: the
/// running search, or the recorded answer while it is fresh (by the configured clock).
pub async fn request(
    ctx: &Context,
    tenant: Uuid,
    input: SubjectInput,
    requester: Requester,
    refresh: bool,
    request_id: Uuid,
    meta: &EventMetadata,
) -> Result<Requested, CommandError> {
    let subject =
        PriceSubject::parse(input).map_err(|e| CommandError::invalid("invalid_price_subject", e.to_string()))?;
    if let Some(conversation) = requester.conversation_id()
        && owner_of(&ctx.pool, "conversation", conversation).await? != Some(tenant)
    {
        return Err(CommandError::NotFound("conversation"));
    }
    let key = SearchKey::of(&subject);
    let lookup_id = price_lookup_id(tenant, &key);
    let at = ctx.settings.prices.clock.now();
    let cmd = PriceLookupCommand::Request(Box::new(PriceRequest {
        request_id,
        tenant_id: tenant,
        subject,
        requester,
        refresh,
        at,
    }));
    let out = ctx.store.execute::<PriceLookup>(&lookup_id.to_string(), cmd, &(), meta).await.map_err(price_error)?;
    let joined = out.state.requested_at != Some(at);
    metrics::counter!("aisales_price_lookup_requests_total", "result" => if joined { "joined" } else { "started" })
        .increment(1);
    Ok(Requested {
        lookup_id,
        joined,
        status: out.state.status.unwrap_or(PriceLookupStatus::Pending),
        position: out.committed.map(|c| c.position),
    })
}

/// The operator's request of the API body.
pub async fn request_from_api(
    ctx: &Context,
    tenant: Uuid,
    body: PriceLookupBody,
    meta: &EventMetadata,
) -> Result<Requested, CommandError> {
    let requester = Requester::Operator { actor: meta.actor.clone(), conversation_id: body.conversation_id };
    let input = SubjectInput {
        oem: body.oem,
        transmission_code: body.transmission_code,
        make: body.make,
        model: body.model,
        gearbox_type: body.gearbox_type,
        ..SubjectInput::default()
    };
    request(ctx, tenant, input, requester, body.refresh, Uuid::now_v7(), meta).await
}

/// A lookup of `tenant` as the read model shows it; a lookup the projector has not reached yet is
/// folded from its events with the same rules.
pub async fn find(pool: &PgPool, tenant: Uuid, id: Uuid) -> Result<Option<PriceLookupRow>, CommandError> {
    let text: Option<String> =
        sqlx::query_scalar("SELECT row_to_json(t)::text FROM rm_price_lookups t WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .fetch_optional(pool)
            .await?;
    if let Some(text) = text {
        return Ok(Some(serde_json::from_str(&text).map_err(anyhow::Error::from)?));
    }
    if owner_of(pool, PRICE_LOOKUP, id).await? != Some(tenant) {
        return Ok(None);
    }
    let events: Vec<(i64, String, String, String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT sequence, event_type, event_version, payload::text, recorded_at FROM events \
          WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence",
    )
    .bind(PRICE_LOOKUP)
    .bind(id.to_string())
    .fetch_all(pool)
    .await?;
    Ok(PriceLookupRow::fold(id, tenant, &events)?)
}
