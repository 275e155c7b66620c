//! Password attempts: counted before they are checked, and checked a few at a time.
//!
//! * **Counted first, atomically.** An attempt on an account is one `UPDATE … RETURNING` that adds
//!   it to the account's count of failed attempts (and locks the account when the count reaches
//!   `LOGIN_LOCKOUT_ATTEMPTS`) before the password is verified; a correct password then clears
//!   the count. Row locking serialises the updates, so of any number of parallel guesses at most
//!   `LOGIN_LOCKOUT_ATTEMPTS` get as far as argon2, and the account is locked when they are spent.
//!   A locked or disabled account is refused without verifying anything.
//! * **Capped hashing.** argon2id takes about 19 MiB and tens of milliseconds of a core per hash.
//!   Every hash and verification of the process goes through one semaphore
//!   (`PASSWORD_HASH_CONCURRENCY`, default: the number of cores); a request that cannot get a
//!   permit within [`HASH_WAIT`] is answered 503 with `Retry-After` instead of queueing without
//!   bound, so a login flood cannot exhaust memory or starve the other requests.

use std::sync::OnceLock;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::config::Limits;

/// Longest wait for a hashing permit before the request is refused as busy.
pub const HASH_WAIT: Duration = Duration::from_secs(1);

/// Seconds a client refused as busy is asked to wait.
pub const BUSY_RETRY_AFTER_S: u64 = 1;

/// Every hashing permit is taken: try again shortly.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("too many password checks at once; retry in a moment")]
pub struct Busy;

static HASHING: OnceLock<Semaphore> = OnceLock::new();

/// The process's hashing permits (sized by the first caller's settings).
fn permits(limits: &Limits) -> &'static Semaphore {
    HASHING.get_or_init(|| Semaphore::new(limits.password_hash_concurrency.max(1) as usize))
}

/// Runs `work` (argon2) on a blocking thread while holding a hashing permit.
async fn capped<T: Send + 'static>(limits: &Limits, work: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
    let permit = match tokio::time::timeout(HASH_WAIT, permits(limits).acquire()).await {
        Ok(Ok(p)) => p,
        _ => {
            metrics::counter!("aisales_password_hashing_busy_total").increment(1);
            return Err(Busy.into());
        }
    };
    let out = tokio::task::spawn_blocking(work).await?;
    drop(permit);
    Ok(out)
}

/// Verifies `password` against a stored PHC string under the process's hashing cap.
pub async fn verify(limits: &Limits, password: String, phc: String) -> anyhow::Result<bool> {
    metrics::counter!("aisales_password_verifications_total").increment(1);
    capped(limits, move || super::passwords::verify(&password, &phc)).await
}

/// Hashes `password` under the process's hashing cap.
pub async fn hash(limits: &Limits, password: String) -> anyhow::Result<String> {
    capped(limits, move || super::passwords::hash(&password)).await
}

/// Which account an attempt is on.
#[derive(Debug, Clone, Copy)]
pub enum Account<'a> {
    /// A login: the email, lower-cased.
    Email(&'a str),
    /// A signed-in user confirming their password.
    User(Uuid),
}

/// An attempt that was counted and may now be verified.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Counted {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub password_hash: String,
    pub role: String,
    pub must_change_password: bool,
}

/// Counts one attempt on `account` before its password is verified. `None` when the account does
/// not exist, is disabled, or is locked (no attempt may be verified then).
pub async fn count(pool: &PgPool, limits: &Limits, account: Account<'_>) -> sqlx::Result<Option<Counted>> {
    // After a lockout has run out the count starts again, so one typo does not lock anew.
    let (email, user) = match account {
        Account::Email(e) => (Some(e), None),
        Account::User(id) => (None, Some(id)),
    };
    sqlx::query_as::<_, Counted>(
        "UPDATE users SET \
           failed_logins = CASE WHEN locked_until <= now() THEN 1 ELSE failed_logins + 1 END, \
           locked_until = CASE \
             WHEN (CASE WHEN locked_until <= now() THEN 1 ELSE failed_logins + 1 END) >= $1 \
               THEN now() + make_interval(mins => $2) \
             ELSE NULL END \
         WHERE (lower(email) = $3 OR id = $4) AND disabled_at IS NULL AND (locked_until IS NULL OR locked_until <= now()) \
         RETURNING id, tenant_id, password_hash, role, must_change_password",
    )
    .bind(limits.lockout_attempts as i32)
        .bind(limits.lockout.num_minutes() as i32)
        .bind(email)
        .bind(user)
        .fetch_optional(pool)
        .await
}

/// Whether an account with this (lower-cased) email exists, whatever its state.
pub async fn exists(pool: &PgPool, email: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE lower(email) = $1)").bind(email).fetch_one(pool).await
}

/// The password was right: the count starts again and the account is unlocked.
pub async fn succeeded(conn: &mut sqlx::PgConnection, user: Uuid) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1")
        .bind(user)
        .execute(conn)
        .await?;
    Ok(())
}
