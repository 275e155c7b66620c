//! `aisales tenant|user|token …`: tenants, dashboard users and API tokens.

use std::sync::Arc;

use clap::Subcommand;

use super::UsageError;
use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and an owner API token; prints {"tenant_id", "api_token"}.
    Create {
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a dashboard user; prints the user and a one-time password.
    Add {
        #[arg(long)]
        tenant: uuid::Uuid,
        #[arg(long)]
        email: String,
        #[arg(long)]
        role: crate::auth::Role,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token (shown once).
    Create {
        #[arg(long)]
        tenant: uuid::Uuid,
        #[arg(long)]
        name: String,
        #[arg(long)]
        role: crate::auth::Role,
    },
    /// Revoke an API token.
    Revoke {
        #[arg(long)]
        tenant: uuid::Uuid,
        token_id: uuid::Uuid,
    },
}

pub(super) async fn require_tenant(pool: &sqlx::PgPool, tenant: uuid::Uuid) -> anyhow::Result<()> {
    match crate::tenancy::get_tenant(pool, tenant).await? {
        Some(_) => Ok(()),
        None => Err(UsageError(format!("there is no tenant {tenant}")).into()),
    }
}

pub(super) async fn tenant_create(settings: &Settings, name: &str) -> anyhow::Result<()> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(UsageError("a tenant name has 1 to 200 characters".into()).into());
    }
    let pool = crate::infra::db::pool(settings)?;
    let mut tx = pool.begin().await?;
    let tenant = crate::tenancy::create_tenant(&mut tx, name).await?;
    let token = crate::auth::tokens::create(
        &mut tx,
        tenant.id,
        "owner token (created by aisales tenant create)",
        crate::auth::Role::Owner,
        "cli",
    )
    .await?;
    tx.commit().await?;
    println!("{}", serde_json::json!({ "tenant_id": tenant.id, "api_token": token.token }));
    Ok(())
}

pub(super) async fn user_add(
    settings: Arc<Settings>,
    tenant: uuid::Uuid,
    email: &str,
    role: crate::auth::Role,
) -> anyhow::Result<()> {
    let pool = crate::infra::db::pool(&settings)?;
    require_tenant(&pool, tenant).await?;
    let (user, password) = crate::application::users::add_user(&pool, tenant, email, role).await?;
    println!(
        "{}",
        serde_json::json!({ "user_id": user.id, "email": user.email, "role": user.role, "one_time_password": password })
    );
    Ok(())
}

pub(super) async fn token(settings: &Settings, cmd: TokenCommand) -> anyhow::Result<()> {
    let pool = crate::infra::db::pool(settings)?;
    match cmd {
        TokenCommand::Create { tenant, name, role } => {
            require_tenant(&pool, tenant).await?;
            let mut conn = pool.acquire().await?;
            let t = crate::auth::tokens::create(&mut conn, tenant, name.trim(), role, "cli").await?;
            println!("{}", serde_json::json!({ "token_id": t.id, "api_token": t.token, "role": role }));
        }
        TokenCommand::Revoke { tenant, token_id } => {
            let mut conn = pool.acquire().await?;
            if !crate::auth::tokens::revoke(&mut conn, tenant, token_id).await? {
                return Err(UsageError(format!("tenant {tenant} has no active token {token_id}")).into());
            }
            println!("{}", serde_json::json!({ "revoked": token_id }));
        }
    }
    Ok(())
}
