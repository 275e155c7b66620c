//! Tenants, users and channel accounts: plain tables, every query scoped by tenant.

pub mod accounts;

use aisales_domain::tenant::AgentSettings;
use chrono::{DateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::auth::Role;

/// A tenant (one shop).
#[derive(Debug, Clone, Serialize)]
pub struct Tenant {
    pub id: Uuid,
    pub name: String,
    pub timezone: String,
    pub working_hours_start: NaiveTime,
    pub working_hours_end: NaiveTime,
    pub working_days: Vec<String>,
    pub settings: AgentSettings,
    pub retention: Retention,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

/// How long the tenant keeps personal data that lives outside the event log (`docs/privacy.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Retention {
    /// Vehicle-lookup evidence older than this many days is deleted by the retention pass.
    pub lookup_evidence_days: u32,
    /// Customers inactive for this many months are erased by customer erasure; `None`: never.
    pub erase_inactive_customers_months: Option<u32>,
}

/// The days `lookup_evidence_days` may take (the migration checks the same range).
pub const LOOKUP_EVIDENCE_DAYS: std::ops::RangeInclusive<u32> = 1..=3650;
/// The months `erase_inactive_customers_months` may take (the migration checks the same range).
pub const INACTIVE_CUSTOMER_MONTHS: std::ops::RangeInclusive<u32> = 1..=600;

type TenantRow = (
    Uuid,
    String,
    String,
    NaiveTime,
    NaiveTime,
    Vec<String>,
    serde_json::Value,
    i32,
    Option<i32>,
    String,
    DateTime<Utc>,
);

fn tenant_from(row: TenantRow) -> Tenant {
    let (
        id,
        name,
        timezone,
        working_hours_start,
        working_hours_end,
        working_days,
        settings,
        evidence_days,
        inactive_months,
        status,
        created_at,
    ) = row;
    Tenant {
        id,
        name,
        timezone,
        working_hours_start,
        working_hours_end,
        working_days,
        // Stored settings were validated on write; unknown or missing fields take their defaults.
        settings: serde_json::from_value(settings).unwrap_or_default(),
        // Both columns are checked positive by the database.
        retention: Retention {
            lookup_evidence_days: evidence_days.unsigned_abs(),
            erase_inactive_customers_months: inactive_months.map(i32::unsigned_abs),
        },
        status,
        created_at,
    }
}

const TENANT_COLUMNS: &str = "id, name, timezone, working_hours_start, working_hours_end, working_days, settings, \
     lookup_evidence_retention_days, erase_inactive_customers_months, status, created_at";

pub async fn create_tenant(conn: &mut PgConnection, name: &str) -> sqlx::Result<Tenant> {
    let row: TenantRow =
        sqlx::query_as(&format!("INSERT INTO tenants (id, name) VALUES ($1, $2) RETURNING {TENANT_COLUMNS}"))
            .bind(Uuid::now_v7())
            .bind(name)
            .fetch_one(conn)
            .await?;
    Ok(tenant_from(row))
}

pub async fn get_tenant(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<Tenant>> {
    let row: Option<TenantRow> = sqlx::query_as(&format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(tenant_from))
}

/// Changes to a tenant (absent fields are kept).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantPatch {
    pub name: Option<String>,
    pub timezone: Option<String>,
    pub working_hours_start: Option<NaiveTime>,
    pub working_hours_end: Option<NaiveTime>,
    pub working_days: Option<Vec<String>>,
    /// Merged into the stored settings (JSON merge: objects merge, other values replace).
    pub settings: Option<serde_json::Value>,
    pub retention: Option<RetentionPatch>,
}

/// Changes to a tenant's retention (absent fields are kept).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionPatch {
    pub lookup_evidence_days: Option<u32>,
    /// A number of months, or `null` to erase no customer for inactivity.
    #[serde(default, deserialize_with = "present")]
    pub erase_inactive_customers_months: Option<Option<u32>>,
}

/// A field that is present, `null` included (`Some(None)`); an absent one stays `None` by default.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Why a tenant update was refused.
#[derive(Debug, thiserror::Error)]
pub enum TenantPatchError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Applies a validated patch; returns the updated tenant (None when it does not exist).
pub async fn update_tenant(
    conn: &mut PgConnection,
    id: Uuid,
    patch: TenantPatch,
) -> Result<Option<Tenant>, TenantPatchError> {
    let row: Option<TenantRow> =
        sqlx::query_as(&format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1 FOR UPDATE"))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(row) = row else { return Ok(None) };
    let mut raw_settings = row.6.clone();
    let mut t = tenant_from(row);
    if let Some(name) = patch.name {
        let name = name.trim().to_string();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(TenantPatchError::Invalid("name must have 1 to 200 characters".into()));
        }
        t.name = name;
    }
    if let Some(tz) = patch.timezone {
        if tz.parse::<chrono_tz::Tz>().is_err() {
            return Err(TenantPatchError::Invalid(format!(
                "timezone `{tz}` is not an IANA time zone such as Europe/Moscow"
            )));
        }
        t.timezone = tz;
    }
    if let Some(s) = patch.working_hours_start {
        t.working_hours_start = s;
    }
    if let Some(e) = patch.working_hours_end {
        t.working_hours_end = e;
    }
    if let Some(days) = patch.working_days {
        if let Some(bad) = days.iter().find(|d| !DAYS.contains(&d.as_str())) {
            return Err(TenantPatchError::Invalid(format!("working day `{bad}` is not one of mon..sun")));
        }
        t.working_days = days;
    }
    if let Some(changes) = patch.settings {
        if !changes.is_object() {
            return Err(TenantPatchError::Invalid("settings must be a JSON object".into()));
        }
        merge(&mut raw_settings, changes);
        let parsed: AgentSettings = serde_json::from_value(raw_settings.clone())
            .map_err(|e| TenantPatchError::Invalid(format!("settings: {e}")))?;
        parsed.validate().map_err(|e| TenantPatchError::Invalid(format!("settings.{e}")))?;
        t.settings = parsed;
    }
    if let Some(r) = patch.retention {
        if let Some(days) = r.lookup_evidence_days {
            if !LOOKUP_EVIDENCE_DAYS.contains(&days) {
                return Err(TenantPatchError::Invalid(format!(
                    "retention.lookup_evidence_days must be {} to {}",
                    LOOKUP_EVIDENCE_DAYS.start(),
                    LOOKUP_EVIDENCE_DAYS.end()
                )));
            }
            t.retention.lookup_evidence_days = days;
        }
        if let Some(months) = r.erase_inactive_customers_months {
            if months.is_some_and(|m| !INACTIVE_CUSTOMER_MONTHS.contains(&m)) {
                return Err(TenantPatchError::Invalid(format!(
                    "retention.erase_inactive_customers_months must be {} to {}, or null to keep customers",
                    INACTIVE_CUSTOMER_MONTHS.start(),
                    INACTIVE_CUSTOMER_MONTHS.end()
                )));
            }
            t.retention.erase_inactive_customers_months = months;
        }
    }
    sqlx::query(
        "UPDATE tenants SET name = $2, timezone = $3, working_hours_start = $4, working_hours_end = $5, \
         working_days = $6, settings = $7, lookup_evidence_retention_days = $8, \
         erase_inactive_customers_months = $9, updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(&t.name)
    .bind(&t.timezone)
    .bind(t.working_hours_start)
    .bind(t.working_hours_end)
    .bind(&t.working_days)
    .bind(serde_json::to_value(&t.settings).expect("settings serialize"))
    .bind(t.retention.lookup_evidence_days as i32)
    .bind(t.retention.erase_inactive_customers_months.map(|m| m as i32))
    .execute(&mut *conn)
    .await?;
    Ok(Some(t))
}

/// JSON merge patch (RFC 7396 without null-deletes: null resets a field to its default).
fn merge(target: &mut serde_json::Value, patch: serde_json::Value) {
    match (target, patch) {
        (serde_json::Value::Object(t), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(&k);
                } else {
                    merge(t.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
        }
        (t, p) => *t = p,
    }
}

/// A dashboard user as shown by the API.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct User {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub email: String,
    pub role: String,
    pub must_change_password: bool,
    pub locked_until: Option<DateTime<Utc>>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

const USER_COLUMNS: &str =
    "id, tenant_id, email, role, must_change_password, locked_until, last_login_at, disabled_at, created_at";

/// Why a user could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("`{0}` is not an email address")]
    BadEmail(String),
    #[error("a user with this email already exists")]
    EmailTaken,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Normalises and checks an email address (lower case, one @, a dot in the domain).
pub fn parse_email(email: &str) -> Result<String, CreateUserError> {
    let e = email.trim().to_lowercase();
    let ok = e.len() <= 254
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !e.contains(char::is_whitespace)
        && e.matches('@').count() == 1;
    if ok { Ok(e) } else { Err(CreateUserError::BadEmail(email.to_string())) }
}

/// Creates a user with an already hashed password.
pub async fn create_user(
    conn: &mut PgConnection,
    tenant: Uuid,
    email: &str,
    role: Role,
    password_hash: &str,
    must_change_password: bool,
) -> Result<User, CreateUserError> {
    let email = parse_email(email)?;
    let r = sqlx::query_as::<_, User>(&format!(
        "INSERT INTO users (id, tenant_id, email, password_hash, role, must_change_password) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {USER_COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(tenant)
    .bind(&email)
    .bind(password_hash)
    .bind(role.as_str())
    .bind(must_change_password)
    .fetch_one(conn)
    .await;
    match r {
        Ok(u) => Ok(u),
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("23505") => Err(CreateUserError::EmailTaken),
        Err(e) => Err(e.into()),
    }
}

pub async fn list_users(pool: &PgPool, tenant: Uuid) -> sqlx::Result<Vec<User>> {
    sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 ORDER BY created_at"))
        .bind(tenant)
        .fetch_all(pool)
        .await
}

pub async fn get_user(pool: &PgPool, tenant: Uuid, id: Uuid) -> sqlx::Result<Option<User>> {
    sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND id = $2"))
        .bind(tenant)
        .bind(id)
        .fetch_optional(pool)
        .await
}

pub use aisales_domain::conversation::ChannelKind;

/// Path segment of a kind's webhook URL.
pub fn webhook_segment(kind: ChannelKind) -> &'static str {
    match kind {
        ChannelKind::GreenApi => "green-api",
        ChannelKind::Telegram => "telegram",
        ChannelKind::Whatsapp => "whatsapp",
    }
}

/// A messenger account of a tenant (secrets are stored separately, encrypted).
#[derive(Debug, Clone, Serialize)]
pub struct ChannelAccount {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub kind: ChannelKind,
    pub external_key: String,
    pub label: String,
    pub config: serde_json::Value,
    pub status: String,
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

type AccountRow = (Uuid, Uuid, String, String, String, serde_json::Value, String, Option<DateTime<Utc>>, DateTime<Utc>);

fn account_from(r: AccountRow) -> Option<ChannelAccount> {
    Some(ChannelAccount {
        id: r.0,
        tenant_id: r.1,
        kind: ChannelKind::parse(&r.2)?,
        external_key: r.3,
        label: r.4,
        config: r.5,
        status: r.6,
        disabled_at: r.7,
        created_at: r.8,
    })
}

const ACCOUNT_COLUMNS: &str = "id, tenant_id, kind, external_key, label, config, status, disabled_at, created_at";

/// Name of a channel account's secret in `integration_secrets`.
pub fn secret_name(account: Uuid, what: &str) -> String {
    format!("channel:{account}:{what}")
}

/// Creates an account, or returns a conflict error when the tenant already has it.
pub async fn create_channel_account(
    conn: &mut PgConnection,
    tenant: Uuid,
    kind: ChannelKind,
    external_key: &str,
    label: &str,
    config: serde_json::Value,
) -> sqlx::Result<Option<ChannelAccount>> {
    let row: Option<AccountRow> = sqlx::query_as(&format!(
        "INSERT INTO channel_accounts (id, tenant_id, kind, external_key, label, config) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (tenant_id, kind, external_key) DO NOTHING RETURNING {ACCOUNT_COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(tenant)
    .bind(kind.as_str())
    .bind(external_key)
    .bind(label)
    .bind(config)
    .fetch_optional(conn)
    .await?;
    Ok(row.and_then(account_from))
}

/// One account of `tenant` (None for another tenant's account, exactly as for a missing one).
pub async fn channel_account(pool: &PgPool, tenant: Uuid, id: Uuid) -> sqlx::Result<Option<ChannelAccount>> {
    let row: Option<AccountRow> =
        sqlx::query_as(&format!("SELECT {ACCOUNT_COLUMNS} FROM channel_accounts WHERE tenant_id = $1 AND id = $2"))
            .bind(tenant)
            .bind(id)
            .fetch_optional(pool)
            .await?;
    Ok(row.and_then(account_from))
}

/// The active account of a kind for `tenant` (the first one when there are several).
pub async fn active_account_of_kind(
    pool: &PgPool,
    tenant: Uuid,
    kind: ChannelKind,
) -> sqlx::Result<Option<ChannelAccount>> {
    let row: Option<AccountRow> = sqlx::query_as(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM channel_accounts WHERE tenant_id = $1 AND kind = $2 AND disabled_at IS NULL \
         ORDER BY created_at LIMIT 1"
    ))
    .bind(tenant)
    .bind(kind.as_str())
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(account_from))
}

pub async fn list_channel_accounts(pool: &PgPool, tenant: Uuid) -> sqlx::Result<Vec<ChannelAccount>> {
    let rows: Vec<AccountRow> = sqlx::query_as(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM channel_accounts WHERE tenant_id = $1 ORDER BY created_at"
    ))
    .bind(tenant)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().filter_map(account_from).collect())
}

/// Disables an account of `tenant`; false when it does not exist there.
pub async fn disable_channel_account(pool: &PgPool, tenant: Uuid, id: Uuid) -> sqlx::Result<bool> {
    let r = sqlx::query(
        "UPDATE channel_accounts SET disabled_at = COALESCE(disabled_at, now()), updated_at = now() \
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(parse_email(" Ops@Shop.RU ").unwrap(), "ops@shop.ru");
        for bad in ["", "a", "a@b", "a@@b.ru", "a b@c.ru", "@c.ru", "a@.ru"] {
            assert!(parse_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn merge_patches_nested_objects() {
        let mut t = serde_json::json!({"tone": "formal", "decision": {"t_auto": 0.8, "t_escalate": 0.4}});
        merge(&mut t, serde_json::json!({"decision": {"t_auto": 0.9}, "tone": null}));
        assert_eq!(t, serde_json::json!({"decision": {"t_auto": 0.9, "t_escalate": 0.4}}));
    }
}
