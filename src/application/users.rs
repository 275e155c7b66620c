//! Dashboard users.

use uuid::Uuid;

use super::CommandError;
use crate::auth::{Role, passwords};
use crate::tenancy::{self, CreateUserError, User};

/// Creates a dashboard user with a one-time password (changed at first login); the user and the
/// password, shown once.
pub async fn add_user(
    pool: &sqlx::PgPool,
    tenant: Uuid,
    email: &str,
    role: Role,
) -> Result<(User, String), CommandError> {
    let password = passwords::one_time();
    let p = password.clone();
    let hash = tokio::task::spawn_blocking(move || passwords::hash(&p))
        .await
        .map_err(|e| CommandError::Unexpected(e.into()))?;
    let mut conn = pool.acquire().await?;
    match tenancy::create_user(&mut conn, tenant, email, role, &hash, true).await {
        Ok(u) => Ok((u, password)),
        Err(CreateUserError::BadEmail(e)) => {
            Err(CommandError::invalid("invalid_email", format!("`{e}` is not an email address")))
        }
        Err(CreateUserError::EmailTaken) => Err(CommandError::Conflict("a user with this email already exists".into())),
        Err(CreateUserError::Database(e)) => Err(e.into()),
    }
}
