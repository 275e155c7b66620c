//! Who and what caused a command: persisted with every event it produces, and carried by the
//! jobs those events ask for, so every event of a chain names its cause.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where an event is in the log: `<aggregate_type>:<aggregate_id>:<sequence>`. This is what a
/// `causation_id` names when the cause is an event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventRef {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
}

impl EventRef {
    pub fn new(aggregate_type: impl Into<String>, aggregate_id: impl Into<String>, sequence: i64) -> Self {
        EventRef { aggregate_type: aggregate_type.into(), aggregate_id: aggregate_id.into(), sequence }
    }
}

impl fmt::Display for EventRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.aggregate_type, self.aggregate_id, self.sequence)
    }
}

impl FromStr for EventRef {
    type Err = ();

    /// Reads `<aggregate_type>:<aggregate_id>:<sequence>`; any other causation (a provider's
    /// message id such as `green_api:BAE5…`, an older `job:…`) is not an event reference.
    fn from_str(s: &str) -> Result<Self, ()> {
        let (rest, sequence) = s.rsplit_once(':').ok_or(())?;
        let (aggregate_type, aggregate_id) = rest.split_once(':').ok_or(())?;
        let sequence: i64 = sequence.parse().map_err(|_| ())?;
        if aggregate_type.is_empty() || aggregate_id.is_empty() || sequence < 1 {
            return Err(());
        }
        Ok(EventRef::new(aggregate_type, aggregate_id, sequence))
    }
}

/// The event that caused a command, as a job carries it: the chain it belongs to (correlation)
/// and the event itself. Commands a worker issues for the job keep the correlation and name the
/// event as their causation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cause {
    pub correlation_id: Uuid,
    /// [`EventRef`] of the causing event, as text.
    pub event: String,
    /// The request that started the chain, when an HTTP request did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Cause {
    /// The cause that event `event`, stored with `metadata`, is for what it asks.
    pub fn of(event: &EventRef, metadata: &EventMetadata) -> Self {
        Cause {
            correlation_id: metadata.correlation_id,
            event: event.to_string(),
            request_id: metadata.request_id.clone(),
        }
    }
}

/// Who and what caused a command; persisted with every event it produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMetadata {
    pub tenant_id: Option<Uuid>,
    /// `user:<id>`, `token:<id>`, `customer`, `system`, `worker:<kind>`, …
    pub actor: String,
    pub correlation_id: Uuid,
    pub causation_id: Option<String>,
    pub request_id: Option<String>,
    pub occurred_at: chrono::DateTime<chrono::Utc>,
}

impl EventMetadata {
    /// Metadata for work started by the system itself.
    pub fn system(tenant_id: Option<Uuid>, actor: impl Into<String>) -> Self {
        EventMetadata {
            tenant_id,
            actor: actor.into(),
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            request_id: None,
            occurred_at: chrono::Utc::now(),
        }
    }

    /// Metadata for a command caused by an earlier event (same correlation, causation = that event).
    pub fn caused_by(&self, causation: impl Into<String>, actor: impl Into<String>) -> Self {
        EventMetadata {
            tenant_id: self.tenant_id,
            actor: actor.into(),
            correlation_id: self.correlation_id,
            causation_id: Some(causation.into()),
            request_id: self.request_id.clone(),
            occurred_at: chrono::Utc::now(),
        }
    }

    /// Metadata for a command of `tenant_id` that `cause` led to, issued by `actor`.
    pub fn from_cause(cause: &Cause, tenant_id: Option<Uuid>, actor: impl Into<String>) -> Self {
        EventMetadata {
            tenant_id,
            actor: actor.into(),
            correlation_id: cause.correlation_id,
            causation_id: Some(cause.event.clone()),
            request_id: cause.request_id.clone(),
            occurred_at: chrono::Utc::now(),
        }
    }

    /// The same metadata with the chain of `cause` (a command acting on what an earlier event
    /// produced, e.g. an operator approving a drafted suggestion).
    pub fn continuing(mut self, cause: &Cause) -> Self {
        self.correlation_id = cause.correlation_id;
        self.causation_id = Some(cause.event.clone());
        self
    }

    pub fn to_map(&self) -> HashMap<String, String> {
        let mut m = HashMap::with_capacity(6);
        if let Some(t) = self.tenant_id {
            m.insert("tenant_id".into(), t.to_string());
        }
        m.insert("actor".into(), self.actor.clone());
        m.insert("correlation_id".into(), self.correlation_id.to_string());
        if let Some(c) = &self.causation_id {
            m.insert("causation_id".into(), c.clone());
        }
        if let Some(r) = &self.request_id {
            m.insert("request_id".into(), r.clone());
        }
        m.insert("occurred_at".into(), self.occurred_at.to_rfc3339());
        m
    }

    /// Reads metadata back from its stored map (unknown keys are ignored).
    pub fn from_map(m: &HashMap<String, String>) -> Self {
        EventMetadata {
            tenant_id: m.get("tenant_id").and_then(|s| s.parse().ok()),
            actor: m.get("actor").cloned().unwrap_or_default(),
            correlation_id: m.get("correlation_id").and_then(|s| s.parse().ok()).unwrap_or_default(),
            causation_id: m.get("causation_id").cloned(),
            request_id: m.get("request_id").cloned(),
            occurred_at: m
                .get("occurred_at")
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                .map(|d| d.with_timezone(&chrono::Utc))
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_refs_read_back_and_other_causes_are_not_events() {
        let r = EventRef::new("conversation", "0194f0c2-0000-7000-8000-000000000001", 7);
        assert_eq!(r.to_string().parse::<EventRef>(), Ok(r));
        assert!("green_api:BAE5F4886F3E".parse::<EventRef>().is_err());
        assert!("job:send:0194f0c2-0000-7000-8000-000000000002".parse::<EventRef>().is_err());
        assert!("conversation:x:0".parse::<EventRef>().is_err());
        assert!("x".parse::<EventRef>().is_err());
    }

    #[test]
    fn a_command_from_a_cause_keeps_the_chain() {
        let first = EventMetadata::system(Some(Uuid::nil()), "customer");
        let cause = Cause::of(&EventRef::new("conversation", "c", 3), &first);
        let next = EventMetadata::from_cause(&cause, first.tenant_id, "worker:reply-suggestion");
        assert_eq!(next.correlation_id, first.correlation_id);
        assert_eq!(next.causation_id.as_deref(), Some("conversation:c:3"));
        let operator = EventMetadata::system(Some(Uuid::nil()), "user:u").continuing(&cause);
        assert_eq!((operator.correlation_id, operator.actor.as_str()), (first.correlation_id, "user:u"));
    }
}
