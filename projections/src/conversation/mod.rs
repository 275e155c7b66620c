//! The dashboard's read models of conversations, one module (and projector) each: the
//! conversation list ([`list`]), messages ([`messages`]), the suggestion queue ([`suggestions`]),
//! escalations ([`escalations`]), customers ([`customers`]) and daily statistics
//! ([`statistics`]).
//!
//! Each read model is a pure fold from decoded events to the rows they change, with its own unit
//! tests, and a [`ReadModel`](projection::ReadModel) that writes a batch: most through the shared
//! load → fold → upsert → change-feed loop of [`projection`], customers and statistics through
//! their own counting writes. [`fold`] folds one conversation the way the projectors write it, for
//! audit replay and verification; [`erasure`] is how they write an erased customer's rows. This
//! module decodes the events once for all of them.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use aisales_domain::conversation::ConversationEvent as E;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::events::StoredEvent;
use crate::projector::{Projector, Target};

pub mod customers;
pub mod erasure;
pub mod escalations;
pub mod fold;
pub mod list;
pub mod messages;
pub mod projection;
pub mod statistics;
pub mod suggestions;

pub use customers::{CustomerRow, Customers};
pub use escalations::{EscalationRow, Escalations};
pub use fold::{Folded, fold};
pub use list::{ConversationList, ConversationRow};
pub use messages::{MessageRow, Messages};
pub(crate) use projection::record_changes;
pub use projection::{Change, ReadModel, ReadModelProjector, RowFold};
pub use statistics::{DailyStats, Statistics};
pub use suggestions::{SuggestionRow, SuggestionState, Suggestions};

/// Aggregate type of conversations in the event log.
pub const CONVERSATION: &str = "conversation";

/// A decoded conversation event with what projectors need from its envelope.
pub struct Decoded<'a> {
    pub conversation_id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub sequence: i64,
    pub recorded_at: DateTime<Utc>,
    pub position: String,
    pub event: &'a E,
    metadata: &'a str,
}

impl Decoded<'_> {
    /// The `actor` of the event's metadata (`user:…`, `token:…`, `customer`, `system`, …).
    pub fn actor(&self) -> Option<String> {
        serde_json::from_str::<HashMap<String, String>>(self.metadata).ok().and_then(|m| m.get("actor").cloned())
    }
}

/// The conversation event a stored event holds, decoded once for every projector that reads it.
pub fn event_of(e: &StoredEvent) -> anyhow::Result<&E> {
    e.decoded(|e| {
        <E as aisales_domain::codec::EventSchema>::decode(&e.event_type, &e.event_version, &e.payload).map_err(|err| {
            anyhow::anyhow!(
                "conversation {} event {} ({} v{}): {err}",
                e.aggregate_id,
                e.sequence,
                e.event_type,
                e.event_version
            )
        })
    })
}

/// Decodes the conversation events of a batch (other aggregates are skipped). An event that cannot
/// be read is an error: a projector never skips what it does not understand.
pub fn decode(events: &[StoredEvent]) -> anyhow::Result<Vec<Decoded<'_>>> {
    let mut out = Vec::with_capacity(events.len());
    for e in events.iter().filter(|e| e.aggregate_type == CONVERSATION) {
        let event = event_of(e)?;
        out.push(Decoded {
            conversation_id: e.aggregate_id.parse()?,
            tenant_id: e.tenant_id,
            sequence: e.sequence,
            recorded_at: e.recorded_at,
            position: e.position().to_string(),
            event,
            metadata: &e.metadata,
        });
    }
    Ok(out)
}

/// The distinct values of `items` (keys of the rows a batch loads).
fn ids<T: Copy + Eq + Hash>(items: impl Iterator<Item = T>) -> Vec<T> {
    let set: HashSet<T> = items.collect();
    set.into_iter().collect()
}

/// Every conversation read-model projector, writing into `target`.
pub fn all(target: Target) -> Vec<Box<dyn Projector>> {
    vec![
        Box::new(ConversationList::new(target)),
        Box::new(Messages::new(target)),
        Box::new(Suggestions::new(target)),
        Box::new(Escalations::new(target)),
        Box::new(Customers::new(target)),
        Box::new(Statistics::new(target)),
    ]
}

/// Conversation events as the event log would hold them, for the read models' unit tests.
#[cfg(test)]
pub(crate) mod log {
    use std::collections::HashMap;

    use aisales_domain::conversation::{ChannelKind, ConversationEvent as E, Decision, ReplyOrigin};
    use chrono::{DateTime, TimeZone, Utc};
    use cqrs_es::DomainEvent;
    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use uuid::Uuid;

    use super::projection::{RowFold, apply_batch};
    use super::{CONVERSATION, Decoded, decode};
    use crate::events::{Position, StoredEvent};

    /// Two conversations.
    pub const A: Uuid = Uuid::from_u128(0xa);
    pub const B: Uuid = Uuid::from_u128(0xb);

    /// The rows `F` folds the log's events into, from none.
    pub fn rows<F: RowFold>(log: &Log) -> HashMap<Uuid, F::Row> {
        apply_batch::<F>(HashMap::new(), &log.decoded()).unwrap().rows
    }

    /// Checks that a row serializes into exactly the columns [`crate::rows::columns`] names.
    pub fn assert_columns<R: Serialize + DeserializeOwned>(row: &R) {
        let value = serde_json::to_value(row).unwrap();
        let mut fields: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
        let mut columns = crate::rows::columns::<R>().to_vec();
        fields.sort_unstable();
        columns.sort_unstable();
        assert_eq!(fields, columns);
    }

    /// Events of one tenant, appended in global order with their stream's next sequence.
    pub struct Log {
        pub tenant: Uuid,
        /// When the next event is recorded (moved on a second per event unless set).
        pub clock: DateTime<Utc>,
        pub events: Vec<StoredEvent>,
        sequences: HashMap<Uuid, i64>,
    }

    impl Default for Log {
        fn default() -> Self {
            Log::new()
        }
    }

    impl Log {
        pub fn new() -> Self {
            Log {
                tenant: Uuid::from_u128(0x7e),
                clock: Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap(),
                events: Vec::new(),
                sequences: HashMap::new(),
            }
        }

        /// Appends `event` to `conversation`'s stream, done by `actor`.
        pub fn push_by(&mut self, conversation: Uuid, actor: &str, event: E) -> &mut Self {
            let sequence = self.sequences.entry(conversation).or_default();
            *sequence += 1;
            let n = self.events.len() as i64 + 1;
            self.events.push(StoredEvent::new(
                Position::new(100 + n, n),
                CONVERSATION,
                &conversation.to_string(),
                *sequence,
                &event.event_type(),
                &event.event_version(),
                serde_json::to_string(&event).unwrap(),
                serde_json::json!({ "actor": actor }).to_string(),
                self.clock,
                Some(self.tenant),
            ));
            self.clock += chrono::Duration::seconds(1);
            self
        }

        /// Appends `event` to `conversation`'s stream, done by the system.
        pub fn push(&mut self, conversation: Uuid, event: E) -> &mut Self {
            self.push_by(conversation, "system", event)
        }

        /// The events decoded as a projector gets them.
        pub fn decoded(&self) -> Vec<Decoded<'_>> {
            decode(&self.events).unwrap()
        }
    }

    /// `ConversationStarted` of the log's tenant for `customer`.
    pub fn started(customer: Uuid, name: Option<&str>, at: DateTime<Utc>) -> E {
        E::ConversationStarted {
            tenant_id: Log::new().tenant,
            channel: ChannelKind::Telegram,
            account_id: Uuid::from_u128(0xacc),
            chat_id: "Chat-42".into(),
            customer_id: customer,
            customer_name: name.map(str::to_string),
            customer_phone: Some("79990001122".into()),
            started_at: at,
        }
    }

    /// A customer message.
    pub fn received(message_id: Uuid, text: &str, sender: Option<&str>, at: DateTime<Utc>) -> E {
        E::MessageReceived {
            message_id,
            provider_message_id: format!("p-{message_id}"),
            text: text.into(),
            attachments: vec![],
            sender_name: sender.map(str::to_string),
            sent_at: at,
            received_at: at,
            kind: aisales_domain::conversation::MessageKind::Text,
            reply_to: None,
        }
    }

    /// A drafted suggestion.
    pub fn generated(suggestion_id: Uuid, decision: Decision) -> E {
        E::SuggestionGenerated {
            suggestion_id,
            request_id: Uuid::from_u128(0xea),
            text: "АКПП есть в наличии".into(),
            intent: "availability".into(),
            confidence: 0.9,
            decision,
            explanations: vec!["in stock".into()],
            source: "model".into(),
            model: Some("m-1".into()),
            autosend_block_reason: None,
        }
    }

    /// A reply queued from `suggestion_id` (or written by an operator).
    pub fn queued(reply_id: Uuid, suggestion_id: Option<Uuid>, text: &str, origin: ReplyOrigin) -> E {
        E::ReplyQueued {
            reply_id,
            suggestion_id,
            text: text.into(),
            origin,
            send_after: Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap(),
            attachment: None,
        }
    }

    /// The provider accepted a reply at `at`.
    pub fn sent(reply_id: Uuid, at: DateTime<Utc>) -> E {
        E::ReplySent { reply_id, provider_message_id: format!("p-{reply_id}"), sent_at: at, reconciled: false }
    }
}
