//! Fixed-window rate limits in Redis, shared by every process: per IP on login, per tenant on
//! `/api` and AI generation, per channel account on webhooks.
//!
//! When Redis does not answer, requests are let through (and counted in
//! `aisales_rate_limit_unavailable_total`): an outage of the limiter must not take the API down.

use std::time::Duration;

use crate::infra::redis::Redis;

/// Which limit is being checked (also the key prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    LoginPerIp,
    ApiPerTenant,
    AiPerTenant,
    WebhookPerAccount,
}

impl Limit {
    fn key(self) -> &'static str {
        match self {
            Limit::LoginPerIp => "login:ip",
            Limit::ApiPerTenant => "api:tenant",
            Limit::AiPerTenant => "ai:tenant",
            Limit::WebhookPerAccount => "webhook:account",
        }
    }
}

const WINDOW: Duration = Duration::from_secs(60);

static SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        "local n = redis.call('INCR', KEYS[1]) \
         if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end \
         return n",
    )
});

/// A limit was reached: retry after this many seconds (the start of the next window).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many requests; retry in {retry_after_s} s")]
pub struct Limited {
    pub retry_after_s: u64,
}

/// Counts one hit against `limit` for `subject`; `Err(Limited)` when over `per_minute`.
/// A limit of 0 disables the check.
pub async fn check(redis: &Redis, limit: Limit, subject: &str, per_minute: u32) -> Result<(), Limited> {
    let prefix = redis.prefix();
    if per_minute == 0 {
        return Ok(());
    }
    let window_index = chrono::Utc::now().timestamp() / WINDOW.as_secs() as i64;
    let key = format!("{prefix}:rl:{}:{subject}:{window_index}", limit.key());
    let mut conn = redis.conn();
    let result: redis::RedisResult<u64> =
        SCRIPT.key(&key).arg(WINDOW.as_millis() as u64 + 1000).invoke_async(&mut conn).await;
    match result {
        Ok(n) if n > u64::from(per_minute) => {
            metrics::counter!("aisales_rate_limited_total", "limit" => limit.key()).increment(1);
            let window = WINDOW.as_secs() as i64;
            let retry_after_s = (window - chrono::Utc::now().timestamp().rem_euclid(window)).max(1) as u64;
            Err(Limited { retry_after_s })
        }
        Ok(_) => Ok(()),
        Err(e) => {
            metrics::counter!("aisales_rate_limit_unavailable_total").increment(1);
            tracing::warn!(error = %e, limit = limit.key(), "rate limiter unavailable; request allowed");
            Ok(())
        }
    }
}
