//! A lazily connecting, auto-reconnecting Redis handle shared by a process.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::ExposeSecret;

use crate::config::Settings;

/// Shared Redis connection (multiplexed). Creating it never touches the network, so a process
/// starts while Redis is down and reconnects when it comes back.
#[derive(Clone)]
pub struct Redis {
    client: redis::Client,
    manager: ConnectionManager,
    prefix: std::sync::Arc<str>,
}

impl Redis {
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        Self::from_url(settings.redis_url.expose_secret(), &settings.bus.redis_prefix)
    }

    pub fn from_url(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).map_err(|e| anyhow::anyhow!("REDIS_URL cannot be used: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        Ok(Redis { client, manager, prefix: prefix.into() })
    }

    /// Prefix of every key this deployment uses (`REDIS_PREFIX`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The shared multiplexed connection (cheap to clone).
    pub fn conn(&self) -> ConnectionManager {
        self.manager.clone()
    }

    /// A dedicated connection, for blocking reads that must not hold up the shared one.
    pub async fn dedicated(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        let cfg = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(None);
        self.client.get_multiplexed_async_connection_with_config(&cfg).await
    }

    pub async fn ping(&self) -> anyhow::Result<()> {
        let mut c = self.conn();
        let pong: String = redis::cmd("PING").query_async(&mut c).await?;
        anyhow::ensure!(pong == "PONG", "unexpected PING answer");
        Ok(())
    }
}
