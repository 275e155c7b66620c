//! Failures of the store, and of running a command through it.

/// Failures of the store itself.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer appended to the aggregate first (SQLSTATE 23505 on the primary key).
    #[error("the aggregate was changed concurrently")]
    Conflict,
    /// The writer of an append stopped (its runtime shut down) before reporting whether the
    /// append was written.
    #[error("the append was interrupted before its outcome was known")]
    Interrupted,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
}

/// Outcome of a command that could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError<E: std::error::Error> {
    /// The aggregate rejected the command (a business rule).
    #[error("{0}")]
    Rejected(E),
    /// Still conflicting after the bounded number of retries.
    #[error("the aggregate is being changed by others; try again")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}
