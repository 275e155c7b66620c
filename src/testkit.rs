//! Support shared by the test suite and the benchmarks: throwaway databases created from a
//! migrated template, and a trivial aggregate for exercising the event store.

use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

use crate::store::StoredAggregate;

pub mod history;

/// Admin URL used to create test databases: `TEST_DATABASE_URL`, else the local default.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://aisales:aisales@127.0.0.1:5432/postgres".to_string())
}

/// `base` with its database name replaced by `name` (query parameters kept).
pub fn database_url(base: &str, name: &str) -> String {
    let (head, query) = base.split_once('?').map_or((base, None), |(h, q)| (h, Some(q)));
    let head = head.rsplit_once('/').map_or(head, |(h, _)| h);
    match query {
        Some(q) => format!("{head}/{name}?{q}"),
        None => format!("{head}/{name}"),
    }
}

/// Name of the migrated template database for this build's migrations: checkouts with different
/// migrations (branches, older builds) get templates of their own instead of fighting over one.
fn template_name() -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for m in crate::infra::db::MIGRATOR.iter() {
        h.update(m.version.to_le_bytes());
        h.update(&m.checksum);
    }
    format!("aisales_test_template_{}", &hex::encode(h.finalize())[..12])
}

/// A database of its own for one test or benchmark, created from a migrated template.
#[derive(Debug, Clone)]
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    /// Creates a fresh, migrated database. Databases left by earlier runs (older than two hours)
    /// are dropped on the way.
    pub async fn create() -> anyhow::Result<TestDb> {
        let admin = PgConnectOptions::from_str(&admin_url())?.disable_statement_logging();
        let mut conn = PgConnection::connect_with(&admin).await?;
        // One creator of the template at a time, across test processes.
        sqlx::query("SELECT pg_advisory_lock(4242, 1)").execute(&mut conn).await?;
        let result = Self::prepare_template(&admin, &mut conn).await;
        sqlx::query("SELECT pg_advisory_unlock(4242, 1)").execute(&mut conn).await?;
        result?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let stale: Vec<String> = sqlx::query_scalar(
            "SELECT datname FROM pg_database WHERE datname LIKE 'aisales_t\\_%' AND split_part(datname, '_', 3)::bigint < $1",
        )
        .bind((now - 7200) as i64)
        .fetch_all(&mut conn)
        .await
        .unwrap_or_default();
        for db in stale {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)")).execute(&mut conn).await;
        }
        let name = format!("aisales_t_{now}_{}", crate::config::random_token(10).to_lowercase());
        // CREATE DATABASE … TEMPLATE needs the template to have no other sessions; retry briefly.
        let mut attempt = 0;
        loop {
            match sqlx::query(&format!("CREATE DATABASE \"{name}\" TEMPLATE {}", template_name()))
                .execute(&mut conn)
                .await
            {
                Ok(_) => break,
                Err(e) if attempt < 50 => {
                    attempt += 1;
                    tracing::debug!(error = %e, "template busy; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let url = database_url(&admin_url(), &name);
        Ok(TestDb { name, url })
    }

    async fn prepare_template(admin: &PgConnectOptions, conn: &mut PgConnection) -> anyhow::Result<()> {
        let template = template_name();
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&template)
            .fetch_one(&mut *conn)
            .await?;
        if !exists {
            sqlx::query(&format!("CREATE DATABASE {template}")).execute(&mut *conn).await?;
        }
        // Bring the template up to date (a no-op when it is).
        let opts = admin.clone().database(&template);
        let pool = PgPoolOptions::new().max_connections(1).connect_with(opts).await?;
        let pending = crate::infra::db::pending(&pool).await?;
        if !pending.is_empty() {
            crate::infra::db::migrate(&pool).await?;
        }
        pool.close().await;
        Ok(())
    }

    /// A pool on this database.
    pub async fn pool(&self, max_connections: u32) -> anyhow::Result<PgPool> {
        let opts = PgConnectOptions::from_str(&self.url)?.disable_statement_logging();
        Ok(PgPoolOptions::new().test_before_acquire(false).max_connections(max_connections).connect_with(opts).await?)
    }

    /// Drops the database (sessions still connected are terminated).
    pub async fn drop_db(self) -> anyhow::Result<()> {
        let admin = PgConnectOptions::from_str(&admin_url())?.disable_statement_logging();
        let mut conn = PgConnection::connect_with(&admin).await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name)).execute(&mut conn).await?;
        Ok(())
    }
}

/// A trivial aggregate: a counter that can be opened and incremented.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counter {
    pub opened: bool,
    pub total: i64,
    pub increments: i64,
}

/// Commands of [`Counter`].
#[derive(Debug, Clone)]
pub enum CounterCommand {
    Open,
    Increment { by: i64 },
}

/// Events of [`Counter`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CounterEvent {
    Opened,
    Incremented { by: i64 },
}

/// Errors of [`Counter`].
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CounterError {
    #[error("the counter is already open")]
    AlreadyOpen,
    #[error("the counter is not open")]
    NotOpen,
}

impl DomainEvent for CounterEvent {
    fn event_type(&self) -> String {
        match self {
            CounterEvent::Opened => "CounterOpened",
            CounterEvent::Incremented { .. } => "CounterIncremented",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

impl aisales_domain::codec::EventSchema for CounterEvent {
    const AGGREGATE: &'static str = "counter";
}

impl Aggregate for Counter {
    const TYPE: &'static str = "counter";
    type Command = CounterCommand;
    type Event = CounterEvent;
    type Error = CounterError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &cqrs_es::event_sink::EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            CounterCommand::Open if self.opened => return Err(CounterError::AlreadyOpen),
            CounterCommand::Open => sink.write(CounterEvent::Opened, self).await,
            CounterCommand::Increment { .. } if !self.opened => return Err(CounterError::NotOpen),
            CounterCommand::Increment { by } => sink.write(CounterEvent::Incremented { by }, self).await,
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            CounterEvent::Opened => self.opened = true,
            CounterEvent::Incremented { by } => {
                self.total += by;
                self.increments += 1;
            }
        }
    }
}

impl StoredAggregate for Counter {
    const SNAPSHOT_EVERY: i64 = 50;
}
