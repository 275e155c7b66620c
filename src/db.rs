//! PostgreSQL pool and migrations.

use std::collections::HashSet;
use std::str::FromStr;

use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

use crate::config::Settings;

/// The SQL files in `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connection options from the settings (statement logging off: statements can carry customer data).
pub fn connect_options(settings: &Settings) -> anyhow::Result<PgConnectOptions> {
    let opts = PgConnectOptions::from_str(settings.database_url.expose_secret())
        .map_err(|e| anyhow::anyhow!("DATABASE_URL cannot be used: {e}"))?
        .application_name("aisales")
        .disable_statement_logging();
    Ok(opts)
}

/// A pool sized by `DATABASE_MAX_CONNECTIONS`. Connects lazily, so a process can start (and
/// answer `/health` and a failing `/ready`) while the database is down.
pub fn pool(settings: &Settings) -> anyhow::Result<PgPool> {
    Ok(PgPoolOptions::new()
        // No ping before every checkout: it is a network round trip in front of each query (it
        // halved event-store appends at 32 writers). A connection that died is found by the
        // query itself, reported as an error, and dropped from the pool.
        .test_before_acquire(false)
        .max_connections(settings.database_max_connections)
        .min_connections(0)
        .acquire_timeout(settings.database_acquire_timeout)
        .idle_timeout(std::time::Duration::from_secs(300))
        .connect_lazy_with(connect_options(settings)?))
}

/// A migration, as reported by `aisales migrate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationInfo {
    pub version: i64,
    pub description: String,
}

/// Versions already applied (empty when the bookkeeping table does not exist yet).
async fn applied_versions(pool: &PgPool) -> anyhow::Result<HashSet<i64>> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL").fetch_one(pool).await?;
    if !exists {
        return Ok(HashSet::new());
    }
    let rows: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success").fetch_all(pool).await?;
    Ok(rows.into_iter().collect())
}

/// Migrations embedded in the binary that the database has not applied.
pub async fn pending(pool: &PgPool) -> anyhow::Result<Vec<MigrationInfo>> {
    let applied = applied_versions(pool).await?;
    Ok(MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration() && !applied.contains(&m.version))
        .map(|m| MigrationInfo { version: m.version, description: m.description.to_string() })
        .collect())
}

/// Applies pending migrations (under sqlx's advisory lock) and returns those it applied.
/// A migration that was changed after being applied is an error, never silently re-run.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<Vec<MigrationInfo>> {
    let todo = pending(pool).await?;
    MIGRATOR.run(pool).await?;
    Ok(todo)
}
