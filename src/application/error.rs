//! Why a command of the application layer was not carried out. Transport-neutral: the HTTP
//! layer turns it into a status and a JSON body (`From<CommandError> for ApiError`), the CLI into
//! a sentence and an exit code, a worker into a retry or a recorded failure.

use aisales_domain::conversation::ConversationError;
use aisales_domain::vehicle_lookup::VehicleLookupError;
use aisales_projections::Position;

use crate::store::{ExecuteError, StoreError};

/// A command that could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The thing does not exist for the caller (another tenant's id included).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The input is not acceptable; nothing was changed.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// The state does not allow it (a business rule, or a concurrent change that kept winning).
    #[error("{0}")]
    Conflict(String),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// A read model has not reached the position the caller asked to read at.
    #[error("the read model has not reached position {position} yet; retry shortly")]
    Lagging { position: Position },
    /// Something out of the caller's hands (database, store, a bug); logged where answered.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl CommandError {
    /// An [`Invalid`](CommandError::Invalid) with its code.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        CommandError::Invalid { code, message: message.into() }
    }
}

impl From<sqlx::Error> for CommandError {
    fn from(e: sqlx::Error) -> Self {
        CommandError::Unexpected(anyhow::Error::new(e))
    }
}

impl From<StoreError> for CommandError {
    fn from(e: StoreError) -> Self {
        CommandError::Unexpected(anyhow::Error::new(e))
    }
}

/// The text of the store's answer when a command kept conflicting.
fn busy(what: &str) -> CommandError {
    CommandError::Conflict(format!("the {what} is being changed by someone else; try again"))
}

impl From<ExecuteError<ConversationError>> for CommandError {
    fn from(e: ExecuteError<ConversationError>) -> Self {
        use ConversationError as C;
        match e {
            ExecuteError::Rejected(C::NotFound) => CommandError::NotFound("conversation"),
            ExecuteError::Rejected(C::SuggestionNotFound) => CommandError::NotFound("suggestion"),
            ExecuteError::Rejected(C::ReplyNotFound) => CommandError::NotFound("reply"),
            ExecuteError::Rejected(e @ (C::EmptyText | C::TextTooLong | C::ControlCharacter)) => {
                CommandError::invalid("invalid_text", e.to_string())
            }
            ExecuteError::Rejected(e @ C::ReasonTooLong) => CommandError::invalid("invalid_reason", e.to_string()),
            ExecuteError::Rejected(e) => CommandError::Conflict(e.to_string()),
            ExecuteError::Conflict => busy("conversation"),
            ExecuteError::Store(e) => e.into(),
        }
    }
}

impl From<ExecuteError<VehicleLookupError>> for CommandError {
    fn from(e: ExecuteError<VehicleLookupError>) -> Self {
        match e {
            ExecuteError::Rejected(VehicleLookupError::NotFound | VehicleLookupError::WrongTenant) => {
                CommandError::NotFound("vehicle lookup")
            }
            ExecuteError::Rejected(VehicleLookupError::EmptyModel) => {
                CommandError::invalid("invalid_model", "model is required")
            }
            ExecuteError::Rejected(e) => CommandError::Conflict(e.to_string()),
            ExecuteError::Conflict => busy("vehicle lookup"),
            ExecuteError::Store(e) => e.into(),
        }
    }
}

/// Whether a database error is a unique-constraint violation (SQLSTATE 23505): the one place the
/// code reads that state.
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"))
}

/// Maps a unique-constraint violation of a query's result to a chosen error.
pub trait OnUnique<T> {
    /// `Err(f())` when the query broke a unique constraint; other errors pass through.
    fn on_unique<E: From<sqlx::Error>>(self, f: impl FnOnce() -> E) -> Result<T, E>;
}

impl<T> OnUnique<T> for Result<T, sqlx::Error> {
    fn on_unique<E: From<sqlx::Error>>(self, f: impl FnOnce() -> E) -> Result<T, E> {
        match self {
            Err(e) if is_unique_violation(&e) => Err(f()),
            other => other.map_err(E::from),
        }
    }
}
