//! PostgreSQL pool and migrations.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSeverity};
use sqlx::{ConnectOptions, PgPool};

use crate::config::Settings;

/// The SQL files in `migrations/`, embedded in the binary.
/// Advisory-lock key space of projector (and sweeper) ownership (second key: hashtext(name)).
pub const LEASE_SPACE: i32 = 0x4149_534C; // "AISL"

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connection options from the settings (statement logging off: statements can carry customer data).
///
/// A database on this machine (a loopback address) is reached without TLS unless the URL asks for
/// a mode (`sslmode`): encryption there protects nothing and costs both sides CPU on every
/// statement. Any other host keeps the driver's default (`prefer`).
pub fn connect_options(settings: &Settings) -> anyhow::Result<PgConnectOptions> {
    let url = settings.database_url.expose_secret();
    let mut opts = PgConnectOptions::from_str(url)
        .map_err(|e| anyhow::anyhow!("DATABASE_URL cannot be used: {e}"))?
        .application_name("aisales")
        .disable_statement_logging();
    if !ssl_mode_given(url) && is_loopback(opts.get_host()) {
        opts = opts.ssl_mode(sqlx::postgres::PgSslMode::Disable);
    }
    Ok(opts)
}

/// Whether the URL chooses the TLS mode.
fn ssl_mode_given(url: &str) -> bool {
    url.split_once('?').is_some_and(|(_, query)| {
        query.split('&').any(|pair| {
            let key = pair.split_once('=').map_or(pair, |(k, _)| k);
            key.eq_ignore_ascii_case("sslmode") || key.eq_ignore_ascii_case("ssl-mode")
        })
    })
}

/// Whether `host` is this machine: `localhost`, a loopback address, or a Unix socket directory.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.starts_with('/')
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A pool sized by `DATABASE_MAX_CONNECTIONS`. Connects lazily, so a process can start (and
/// answer `/health` and a failing `/ready`) while the database is down.
pub fn pool(settings: &Settings) -> anyhow::Result<PgPool> {
    Ok(PgPoolOptions::new()
        // No ping before every checkout: it is a network round trip in front of each query (it
        // halved event-store appends at 32 writers). A connection that died is found by the
        // query itself, reported as an error, and dropped from the pool.
        .test_before_acquire(false)
        // About a quarter of the connections is left to the event store's held connections
        // (a third of the pool's size, see `HeldConnections::for_pool`): together at most the setting.
        .max_connections((settings.database_max_connections * 3 / 4).max(1))
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

/// Connections kept out of the pool for the event store's single statements (appends and loads),
/// reused without the round trip sqlx makes when a connection goes back to its pool.
///
/// sqlx 0.8 sends `Sync` and waits for `ReadyForQuery` each time a pooled connection is released.
/// An append is one `INSERT`, so that doubled its round trips. A connection here is reused only
/// after a statement finished, successfully or with an error Postgres reported: it then holds no
/// half-read answer, and, since the store runs single statements, no open transaction. After
/// anything else (an I/O error, a FATAL error the server sends before it closes the session, a
/// statement whose future was dropped) it is closed. Up to a third of the pool's size is kept this
/// way, on top of the pool ([`pool`] leaves that share of `DATABASE_MAX_CONNECTIONS` free), one set
/// per pool and process whichever stores use it; when all are busy the store uses the pool as
/// before.
pub struct HeldConnections {
    connect: PgConnectOptions,
    /// Bound on opening a connection, the pool's acquire timeout.
    connect_timeout: std::time::Duration,
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    idle: std::sync::Mutex<Vec<(sqlx::PgConnection, std::time::Instant)>>,
}

/// A connection that is unused this long is closed instead of reused.
const HELD_IDLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

impl HeldConnections {
    /// The held connections of `pool`'s database in this process: up to a third of the pool's
    /// size (none for a pool of one or two), connecting as the pool does. Every store on the same
    /// database shares one set, so that a process running the API and the workers (`serve --all`)
    /// stays within `DATABASE_MAX_CONNECTIONS`.
    pub fn for_pool(pool: &PgPool) -> std::sync::Arc<Self> {
        type Registry = std::sync::Mutex<HashMap<String, std::sync::Weak<HeldConnections>>>;
        static SETS: std::sync::LazyLock<Registry> = std::sync::LazyLock::new(Registry::default);
        let opts = pool.connect_options();
        let key = format!(
            "{}:{}:{:?}:{}:{:?}",
            opts.get_host(),
            opts.get_port(),
            opts.get_socket(),
            opts.get_username(),
            opts.get_database()
        );
        let mut sets = SETS.lock().unwrap_or_else(|p| p.into_inner());
        sets.retain(|_, set| set.strong_count() > 0);
        if let Some(set) = sets.get(&key).and_then(std::sync::Weak::upgrade) {
            return set;
        }
        let n = pool.options().get_max_connections() as usize / 3;
        let set = std::sync::Arc::new(HeldConnections {
            connect: (*pool.connect_options()).clone(),
            connect_timeout: pool.options().get_acquire_timeout(),
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(n)),
            idle: std::sync::Mutex::new(Vec::new()),
        });
        sets.insert(key, std::sync::Arc::downgrade(&set));
        set
    }

    /// A held connection, or `None` when all are in use.
    pub async fn acquire(self: &std::sync::Arc<Self>) -> Option<sqlx::Result<HeldConnection>> {
        let permit = self.permits.clone().try_acquire_owned().ok()?;
        let reused = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.retain(|(_, since)| since.elapsed() < HELD_IDLE_LIMIT);
            idle.pop().map(|(c, _)| c)
        };
        let conn = match reused {
            Some(c) => c,
            // Bounded like an acquire from the pool: an unreachable server is reported (503), not waited on.
            None => {
                match tokio::time::timeout(self.connect_timeout, sqlx::ConnectOptions::connect(&self.connect)).await {
                    Ok(Ok(c)) => c,
                    Ok(Err(e)) => return Some(Err(e)),
                    Err(_) => return Some(Err(sqlx::Error::PoolTimedOut)),
                }
            }
        };
        Some(Ok(HeldConnection { conn: Some(conn), owner: self.clone(), _permit: permit, reusable: false }))
    }
}

/// A connection of [`HeldConnections`]; back to them when dropped after [`HeldConnection::finished`].
pub struct HeldConnection {
    conn: Option<sqlx::PgConnection>,
    owner: std::sync::Arc<HeldConnections>,
    _permit: tokio::sync::OwnedSemaphorePermit,
    reusable: bool,
}

impl HeldConnection {
    /// Records how the statement run on this connection ended: it is reused only when it
    /// completed or Postgres itself reported an error that leaves the session open (not FATAL or
    /// PANIC, which a server shutting down or terminating the backend sends before it hangs up).
    pub fn finished<T>(&mut self, result: &sqlx::Result<T>) {
        self.reusable = match result {
            Ok(_) => true,
            Err(sqlx::Error::Database(e)) => e
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some_and(|e| !matches!(e.severity(), PgSeverity::Fatal | PgSeverity::Panic)),
            Err(_) => false,
        };
    }
}

impl std::ops::Deref for HeldConnection {
    type Target = sqlx::PgConnection;
    fn deref(&self) -> &sqlx::PgConnection {
        self.conn.as_ref().expect("a held connection is present until dropped")
    }
}

impl std::ops::DerefMut for HeldConnection {
    fn deref_mut(&mut self) -> &mut sqlx::PgConnection {
        self.conn.as_mut().expect("a held connection is present until dropped")
    }
}

impl Drop for HeldConnection {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && self.reusable
        {
            let mut idle = self.owner.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.push((conn, std::time::Instant::now()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{is_loopback, ssl_mode_given};

    #[test]
    fn loopback_hosts_are_this_machine() {
        for host in ["localhost", "LOCALHOST", "127.0.0.1", "127.0.1.1", "::1", "[::1]", "/var/run/postgresql"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["db.example.com", "10.0.0.5", "192.168.1.2", "::ffff:10.0.0.1", "localhost.example.com"] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn an_explicit_tls_mode_is_kept() {
        assert!(!ssl_mode_given("postgres://a:b@127.0.0.1/db"));
        assert!(!ssl_mode_given("postgres://a:b@127.0.0.1/db?application_name=x"));
        assert!(ssl_mode_given("postgres://a:b@127.0.0.1/db?sslmode=require"));
        assert!(ssl_mode_given("postgres://a:b@127.0.0.1/db?x=1&SSL-MODE=verify-full"));
    }
}
