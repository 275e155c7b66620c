//! Typed browser errors: what went wrong with ChromeDriver, the browser or the page.

use std::time::Duration;

use fantoccini::error::{CmdError, ErrorStatus, NewSessionError};

/// A failure while driving the browser. Every variant says whether a retry can help
/// ([`BrowserError::is_retryable`]) and whether the session that produced it must be discarded
/// ([`BrowserError::breaks_session`]).
#[derive(Debug, Clone, thiserror::Error)]
pub enum BrowserError {
    /// ChromeDriver did not answer: not running, killed, or the connection was lost mid-command.
    #[error("WebDriver unreachable: {0}")]
    WebDriverUnreachable(String),
    /// ChromeDriver answered but refused to start a browser (missing binary, bad capabilities).
    #[error("browser session could not be created: {0}")]
    SessionNotCreated(String),
    /// The browser behind the session crashed or was closed.
    #[error("browser session died: {0}")]
    SessionDied(String),
    /// A bounded step did not finish in time.
    #[error("step `{step}` timed out after {millis} ms")]
    Timeout {
        /// Name of the step that timed out.
        step: String,
        /// The bound that was exceeded.
        millis: u64,
    },
    /// The page could not be loaded: network error, or the site answered with a server error.
    #[error("navigation to {url} failed: {reason}")]
    Navigation {
        /// The URL being loaded.
        url: String,
        /// Network error text or the HTTP status.
        reason: String,
    },
    /// Any other WebDriver command failure.
    #[error("WebDriver command failed: {message}")]
    Command {
        /// WebDriver's error text.
        message: String,
        /// Whether the same command can reasonably succeed on another attempt.
        transient: bool,
    },
    /// The pool was shut down with [`crate::browser::BrowserPool::close_all`].
    #[error("browser pool is closed")]
    PoolClosed,
    /// The pool or site configuration cannot work (bad WebDriver URL, bad base URL).
    #[error("invalid browser configuration: {0}")]
    Config(String),
}

impl BrowserError {
    /// Whether the job that hit this error should be retried later.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::WebDriverUnreachable(_)
            | Self::SessionNotCreated(_)
            | Self::SessionDied(_)
            | Self::Timeout { .. }
            | Self::Navigation { .. }
            | Self::PoolClosed => true,
            Self::Command { transient, .. } => *transient,
            Self::Config(_) => false,
        }
    }

    /// Whether the session must be closed instead of going back to the pool.
    pub fn breaks_session(&self) -> bool {
        matches!(
            self,
            Self::WebDriverUnreachable(_) | Self::SessionDied(_) | Self::Timeout { .. } | Self::SessionNotCreated(_)
        )
    }

    /// A timeout of the named step.
    pub fn timeout(step: &str, after: Duration) -> Self {
        Self::Timeout { step: step.to_owned(), millis: u64::try_from(after.as_millis()).unwrap_or(u64::MAX) }
    }

    /// Maps a fantoccini command error, naming the step for timeouts.
    pub fn from_cmd(step: &str, after: Duration, err: CmdError) -> Self {
        match err {
            CmdError::Failed(e) => Self::WebDriverUnreachable(e.to_string()),
            CmdError::FailedC(e) => Self::WebDriverUnreachable(e.to_string()),
            CmdError::Lost(e) => Self::WebDriverUnreachable(e.to_string()),
            CmdError::WaitTimeout => Self::timeout(step, after),
            CmdError::Standard(w) => {
                let message = w.message.to_string();
                let lower = message.to_lowercase();
                if w.error == ErrorStatus::InvalidSessionId || SESSION_DEAD_MARKERS.iter().any(|m| lower.contains(m)) {
                    Self::SessionDied(message)
                } else if matches!(w.error, ErrorStatus::Timeout | ErrorStatus::ScriptTimeout) {
                    Self::timeout(step, after)
                } else if lower.contains("net::err_") {
                    Self::Navigation { url: String::new(), reason: message }
                } else {
                    let transient = !matches!(
                        w.error,
                        ErrorStatus::JavascriptError
                            | ErrorStatus::InvalidSelector
                            | ErrorStatus::InvalidArgument
                            | ErrorStatus::UnknownCommand
                            | ErrorStatus::UnknownMethod
                    );
                    Self::Command { message, transient }
                }
            }
            other => Self::Command { message: other.to_string(), transient: true },
        }
    }

    /// Maps a fantoccini session-creation error.
    pub fn from_new_session(err: NewSessionError) -> Self {
        match err {
            NewSessionError::BadWebdriverUrl(e) => Self::Config(format!("WebDriver URL: {e}")),
            NewSessionError::Failed(e) => Self::WebDriverUnreachable(e.to_string()),
            NewSessionError::FailedC(e) => Self::WebDriverUnreachable(e.to_string()),
            NewSessionError::Lost(e) => Self::WebDriverUnreachable(e.to_string()),
            NewSessionError::SessionNotCreated(w) => Self::SessionNotCreated(w.message.to_string()),
            NewSessionError::NotW3C(v) => Self::SessionNotCreated(format!("non-W3C answer: {v}")),
            NewSessionError::UnexpectedError(e) => Self::from_cmd("new_session", Duration::ZERO, e),
        }
    }
}

/// Fragments of ChromeDriver messages that mean the browser behind the session is gone.
const SESSION_DEAD_MARKERS: &[&str] = &[
    "chrome not reachable",
    "disconnected",
    "not connected to devtools",
    "session deleted",
    "tab crashed",
    "target window already closed",
    "no such window",
    "browser has closed",
    "target frame detached",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_and_session_breaking_kinds() {
        assert!(BrowserError::WebDriverUnreachable("x".into()).is_retryable());
        assert!(BrowserError::WebDriverUnreachable("x".into()).breaks_session());
        assert!(BrowserError::timeout("goto", Duration::from_secs(2)).breaks_session());
        assert!(!BrowserError::Config("x".into()).is_retryable());
        let nav = BrowserError::Navigation { url: "u".into(), reason: "HTTP 503".into() };
        assert!(nav.is_retryable() && !nav.breaks_session());
        assert!(!BrowserError::Command { message: "js".into(), transient: false }.is_retryable());
    }
}
