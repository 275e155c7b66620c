//! Lead forms: a tenant's quizzes and site forms. Each form's webhook URL carries its own secret
//! (Marquiz cannot send headers); only the secret's SHA-256 is stored, compared in constant time.

use std::sync::LazyLock;
use std::time::Duration;

use aisales_domain::lead::LeadFormKind;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::PostError;
use crate::application::{CommandError, Context};
use crate::infra::cache::TtlCache;

/// A lead form.
#[derive(Debug, Clone, Serialize)]
pub struct Form {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub kind: LeadFormKind,
    pub name: String,
    pub created_at: DateTime<Utc>,
    #[serde(skip)]
    secret_hash: Vec<u8>,
}

/// A form just created: its id and the webhook URL to give the quiz or site (shown once).
#[derive(Debug, Clone, Serialize)]
pub struct FormCreated {
    pub form_id: Uuid,
    pub webhook_url: String,
}

/// The webhook path of a form.
pub fn webhook_path(form: Uuid, secret: &str) -> String {
    format!("/webhooks/leads/{form}/{secret}")
}

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Forms read recently (form posts come in bursts); a disabled form is seen within the TTL.
static FORMS: LazyLock<TtlCache<Uuid, Option<Form>>> = LazyLock::new(|| TtlCache::new(10_000, Duration::from_secs(10)));

type FormRow = (Uuid, Uuid, String, String, Vec<u8>, DateTime<Utc>);

fn form_of(r: FormRow) -> Option<Form> {
    Some(Form {
        id: r.0,
        tenant_id: r.1,
        kind: LeadFormKind::parse(&r.2)?,
        name: r.3,
        secret_hash: r.4,
        created_at: r.5,
    })
}

/// Creates a form of `tenant`; the webhook URL (with its secret) is only ever shown here.
pub async fn add_form(
    ctx: &Context,
    tenant: Uuid,
    kind: LeadFormKind,
    name: Option<String>,
) -> Result<FormCreated, CommandError> {
    let name = name.map(|n| n.trim().to_string()).unwrap_or_default();
    if name.chars().count() > 200 {
        return Err(CommandError::invalid("invalid_name", "name is at most 200 characters"));
    }
    crate::tenancy::get_tenant(&ctx.pool, tenant).await?.ok_or(CommandError::NotFound("tenant"))?;
    let id = Uuid::now_v7();
    let secret = crate::config::random_token(40);
    sqlx::query("INSERT INTO lead_forms (id, tenant_id, kind, name, secret_hash) VALUES ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind(tenant)
        .bind(kind.as_str())
        .bind(&name)
        .bind(hash(&secret))
        .execute(&ctx.pool)
        .await?;
    let base = ctx.settings.public_base_url().trim_end_matches('/');
    Ok(FormCreated { form_id: id, webhook_url: format!("{base}{}", webhook_path(id, &secret)) })
}

/// The tenant's active forms, oldest first.
pub async fn list_forms(ctx: &Context, tenant: Uuid) -> sqlx::Result<Vec<Form>> {
    let rows: Vec<FormRow> = sqlx::query_as(
        "SELECT id, tenant_id, kind, name, secret_hash, created_at FROM lead_forms \
          WHERE tenant_id = $1 AND disabled_at IS NULL ORDER BY created_at, id",
    )
    .bind(tenant)
    .fetch_all(&ctx.pool)
    .await?;
    Ok(rows.into_iter().filter_map(form_of).collect())
}

/// The active form `id` when `secret` is its secret.
pub async fn authenticate(ctx: &Context, id: Uuid, secret: &str) -> Result<Form, PostError> {
    let form = match FORMS.get(&id) {
        Some(f) => f,
        None => {
            let row: Option<FormRow> = sqlx::query_as(
                "SELECT id, tenant_id, kind, name, secret_hash, created_at FROM lead_forms \
                  WHERE id = $1 AND disabled_at IS NULL",
            )
            .bind(id)
            .fetch_optional(&ctx.pool)
            .await?;
            let f = row.and_then(form_of);
            FORMS.put(id, f.clone());
            f
        }
    };
    let form = form.ok_or(PostError::Unauthorized)?;
    let given = hash(secret);
    let same = given.len() == form.secret_hash.len()
        && given.iter().zip(&form.secret_hash).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if !same {
        return Err(PostError::Unauthorized);
    }
    Ok(form)
}
