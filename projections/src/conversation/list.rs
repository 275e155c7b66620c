//! The conversation list (`rm_conversations`): one row per conversation with its status,
//! customer, last message, unread and pending-suggestion counts, operator and vehicle.

use aisales_domain::conversation::{ConversationEvent as E, Status};
use aisales_domain::vehicle_lookup::{IdType, VehicleDataStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::Decoded;
use super::projection::{Feed, ReadModelProjector, RowFold, RowModel, RowOf};

/// Projector of `rm_conversations`.
pub type ConversationList = ReadModelProjector<ListModel>;

/// The conversation list as a read model.
pub struct ListModel;

/// A row of `rm_conversations`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationRow {
    pub conversation_id: Uuid,
    pub tenant_id: Uuid,
    pub channel: String,
    pub account_id: Uuid,
    pub chat_id: String,
    pub customer_id: Uuid,
    pub customer_name: Option<String>,
    pub customer_phone: Option<String>,
    pub status: String,
    pub muted: bool,
    pub assigned_operator: Option<String>,
    pub last_message_preview: Option<String>,
    pub last_message_at: Option<DateTime<Utc>>,
    pub last_message_direction: Option<String>,
    pub unread_count: i32,
    pub pending_suggestions: i32,
    pub messages_count: i32,
    pub awaiting_reply_since: Option<DateTime<Utc>>,
    pub vehicle: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_sequence: i64,
    pub search_text: String,
}

impl RowModel for ListModel {
    const NAME: &'static str = "conversations";
    const DESCRIPTION: &'static str = "conversation list: status, customer, last message, unread, pending suggestions";
}

impl RowFold for ListModel {
    type Row = ConversationRow;
    const TABLE: &'static str = "rm_conversations";
    const PK: &'static [&'static str] = &["conversation_id"];
    const FEED: Feed<ConversationRow> = Feed::EachRow { entity: "conversation", tenant: |r| r.tenant_id };

    fn key(row: &ConversationRow) -> Uuid {
        row.conversation_id
    }

    /// Every event of a conversation changes its row (at least its sequence and time).
    fn row_of(event: &Decoded) -> Option<RowOf> {
        Some(RowOf::Stored(event.conversation_id))
    }

    /// Starts the row with `ConversationStarted` and applies each later event once: an event at or
    /// below the row's sequence was applied already.
    fn evolve(row: Option<ConversationRow>, d: &Decoded) -> anyhow::Result<Option<ConversationRow>> {
        let mut row = match (row, ConversationRow::start(d)) {
            (Some(row), _) | (None, Some(row)) => row,
            (None, None) => anyhow::bail!("conversation {} has events before it started", d.conversation_id),
        };
        if d.sequence > row.last_sequence || matches!(d.event, E::ConversationStarted { .. }) {
            row.apply(d);
        }
        Ok(Some(row))
    }
}

fn preview(text: &str) -> String {
    let t: String = text.chars().take(140).collect();
    t.replace('\n', " ")
}

impl ConversationRow {
    /// The row a conversation starts with (`ConversationStarted`; `None` for any other event).
    pub fn start(d: &Decoded) -> Option<ConversationRow> {
        let E::ConversationStarted {
            tenant_id,
            channel,
            account_id,
            chat_id,
            customer_id,
            customer_name,
            customer_phone,
            started_at,
        } = d.event
        else {
            return None;
        };
        Some(ConversationRow {
            conversation_id: d.conversation_id,
            tenant_id: *tenant_id,
            channel: channel.as_str().into(),
            account_id: *account_id,
            chat_id: chat_id.clone(),
            customer_id: *customer_id,
            customer_name: customer_name.clone(),
            customer_phone: customer_phone.clone(),
            status: Status::Open.as_str().into(),
            muted: false,
            assigned_operator: None,
            last_message_preview: None,
            last_message_at: None,
            last_message_direction: None,
            unread_count: 0,
            pending_suggestions: 0,
            messages_count: 0,
            awaiting_reply_since: None,
            vehicle: None,
            created_at: *started_at,
            updated_at: d.recorded_at,
            last_sequence: d.sequence,
            search_text: String::new(),
        })
    }

    /// Applies one event (the row exists from `ConversationStarted` on).
    pub fn apply(&mut self, d: &Decoded) {
        self.last_sequence = d.sequence;
        self.updated_at = d.recorded_at;
        match d.event {
            E::ConversationStarted { .. } => {}
            E::MessageReceived { text, received_at, sender_name, .. } => {
                self.messages_count += 1;
                self.unread_count += 1;
                self.last_message_preview = Some(preview(text));
                self.last_message_at = Some(*received_at);
                self.last_message_direction = Some("in".into());
                if self.customer_name.is_none() {
                    self.customer_name = sender_name.clone();
                }
                if self.awaiting_reply_since.is_none() {
                    self.awaiting_reply_since = Some(*received_at);
                }
            }
            E::ReplyQueued { text, .. } => {
                self.messages_count += 1;
                self.last_message_preview = Some(preview(text));
                self.last_message_at = Some(d.recorded_at);
                self.last_message_direction = Some("out".into());
            }
            E::OperatorReplied { .. } => self.unread_count = 0,
            E::ReplySent { .. } => self.awaiting_reply_since = None,
            E::SuggestionGenerated { .. } => self.pending_suggestions += 1,
            E::SuggestionApproved { .. }
            | E::SuggestionEdited { .. }
            | E::SuggestionRejected { .. }
            | E::SuggestionSuperseded { .. } => self.pending_suggestions = (self.pending_suggestions - 1).max(0),
            E::StatusChanged { to, .. } => self.status = to.as_str().to_string(),
            E::ConversationMuted { muted } => self.muted = *muted,
            E::OperatorAssigned { operator } => self.assigned_operator = operator.clone(),
            E::ConversationRead => self.unread_count = 0,
            // The conversation takes no more commands: nothing in it can be answered or read.
            E::CustomerErased { .. } => {
                self.unread_count = 0;
                self.awaiting_reply_since = None;
            }
            E::VehicleLookupRequested { lookup_id, id_type, value, .. } => {
                let mut v = self.vehicle_of(*lookup_id, *id_type, value);
                v["lookup_status"] = json!("requested");
                self.vehicle = Some(v);
            }
            E::VehicleDataAttached { lookup_id, data, .. } => {
                let mut v = serde_json::to_value(data).unwrap_or_default();
                v["lookup_id"] = json!(lookup_id);
                v["lookup_status"] = json!(match data.status {
                    VehicleDataStatus::NotFound => "not_found",
                    _ => "completed",
                });
                self.vehicle = Some(v);
            }
            E::VehicleLookupFailed { lookup_id, id_type, value, reason, .. } => {
                let mut v = self.vehicle_of(*lookup_id, *id_type, value);
                v["lookup_status"] = json!("failed");
                v["failure_reason"] = json!(reason);
                self.vehicle = Some(v);
            }
            _ => {}
        }
        self.refresh_search();
    }

    /// The vehicle as known for `lookup_id` (asked again: kept until the new answer comes), or
    /// the identifier asked about.
    fn vehicle_of(&mut self, lookup_id: Uuid, id_type: IdType, value: &str) -> serde_json::Value {
        match self.vehicle.take() {
            Some(old) if old["lookup_id"] == json!(lookup_id) => old,
            _ => json!({ "lookup_id": lookup_id, "id_type": id_type, "value": value }),
        }
    }

    fn refresh_search(&mut self) {
        self.search_text = format!(
            "{} {} {} {}",
            self.customer_name.as_deref().unwrap_or_default(),
            self.customer_phone.as_deref().unwrap_or_default(),
            self.chat_id,
            self.last_message_preview.as_deref().unwrap_or_default()
        )
        .to_lowercase();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aisales_domain::conversation::{ConversationEvent as E, Decision, ReplyOrigin, Status};
    use aisales_domain::vehicle_lookup::{IdType, LookupSource, VehicleData, VehicleDataStatus};
    use serde_json::json;
    use uuid::Uuid;

    use super::ListModel;
    use crate::conversation::log::{A, B, Log, assert_columns, generated, queued, received, rows, sent, started};
    use crate::conversation::projection::{Change, apply_batch};

    #[test]
    fn a_conversation_shows_its_last_message_counts_and_waiting_time() {
        let mut log = Log::new();
        let t0 = log.clock;
        log.push(A, started(Uuid::from_u128(1), None, t0))
            .push(A, received(Uuid::from_u128(2), "Нужна АКПП\nна Camry", Some("Иван"), t0))
            .push(A, received(Uuid::from_u128(3), "Срочно", Some("Пётр"), t0 + chrono::Duration::seconds(5)))
            .push(A, generated(Uuid::from_u128(4), Decision::NeedApproval))
            .push(A, generated(Uuid::from_u128(5), Decision::NeedApproval))
            .push(A, E::SuggestionApproved { suggestion_id: Uuid::from_u128(4), automatic: false })
            .push(A, queued(Uuid::from_u128(6), Some(Uuid::from_u128(4)), "Есть, 30 000 ₽", ReplyOrigin::Suggestion));
        let queued_at = log.clock - chrono::Duration::seconds(1);
        let row = rows::<ListModel>(&log).remove(&A).unwrap();
        assert_eq!(row.customer_name.as_deref(), Some("Иван"), "the first name a message gives");
        assert_columns(&row);
        assert_eq!((row.messages_count, row.unread_count, row.pending_suggestions), (3, 2, 1));
        assert_eq!(row.last_message_preview.as_deref(), Some("Есть, 30 000 ₽"));
        assert_eq!(row.last_message_direction.as_deref(), Some("out"));
        assert_eq!(row.last_message_at, Some(queued_at), "an outgoing message counts when it is queued");
        assert_eq!(row.awaiting_reply_since, Some(t0), "waiting since the first unanswered message");
        assert_eq!(row.last_sequence, 7);
        assert_eq!(row.search_text, "иван 79990001122 chat-42 есть, 30 000 ₽");

        let t1 = log.clock;
        log.push(A, sent(Uuid::from_u128(6), t1))
            .push(A, E::OperatorReplied { reply_id: Uuid::from_u128(7), text: "ok".into() })
            .push(A, E::StatusChanged { from: Status::Open, to: Status::WaitingCustomer, reason: "replied".into() })
            .push(A, E::ConversationMuted { muted: true })
            .push(A, E::OperatorAssigned { operator: Some("user:olga".into()) })
            .push(A, E::SuggestionRejected { suggestion_id: Uuid::from_u128(5), reason: None })
            .push(A, E::SuggestionSuperseded { suggestion_id: Uuid::from_u128(9), by_message_id: Uuid::from_u128(3) });
        let row = rows::<ListModel>(&log).remove(&A).unwrap();
        assert_eq!(row.awaiting_reply_since, None, "a sent reply ends the wait");
        assert_eq!(row.unread_count, 0, "an operator's reply reads the conversation");
        assert_eq!(row.pending_suggestions, 0, "never below zero");
        assert_eq!(row.status, "waiting_customer");
        assert!(row.muted);
        assert_eq!(row.assigned_operator.as_deref(), Some("user:olga"));
    }

    #[test]
    fn reading_a_conversation_clears_its_unread_count() {
        let mut log = Log::new();
        let t0 = log.clock;
        log.push(A, started(Uuid::from_u128(1), Some("Анна"), t0))
            .push(A, received(Uuid::from_u128(2), "Привет", Some("Иван"), t0))
            .push(A, E::ConversationRead)
            .push(A, received(Uuid::from_u128(3), "Ау", None, t0));
        let row = rows::<ListModel>(&log).remove(&A).unwrap();
        assert_eq!(row.unread_count, 1);
        assert_eq!(row.customer_name.as_deref(), Some("Анна"), "a name known from the start stays");
    }

    #[test]
    fn an_erased_conversation_waits_for_nothing() {
        let mut log = Log::new();
        let t0 = log.clock;
        log.push(A, started(Uuid::from_u128(1), None, t0)).push(A, received(Uuid::from_u128(2), "Привет", None, t0));
        let before = rows::<ListModel>(&log).remove(&A).unwrap();
        assert_eq!((before.unread_count, before.awaiting_reply_since), (1, Some(t0)));
        log.push(
            A,
            E::CustomerErased {
                customer_id: Uuid::from_u128(1),
                erased_by: "user:olga".into(),
                cause: aisales_domain::pii::ErasureCause::Request,
                erased_at: t0,
            },
        );
        let row = rows::<ListModel>(&log).remove(&A).unwrap();
        assert_eq!((row.unread_count, row.awaiting_reply_since, row.last_sequence), (0, None, 3));
        assert_eq!(row.search_text, before.search_text, "what it shows comes from its events as they read");
    }

    #[test]
    fn the_vehicle_follows_its_lookup() {
        let lookup = Uuid::from_u128(0x100);
        let requested = |lookup_id| E::VehicleLookupRequested {
            lookup_id,
            request_id: Uuid::from_u128(0x101),
            message_id: None,
            id_type: IdType::Vin,
            value: "JTDBR32E720012345".into(),
            source: LookupSource::Operator,
            requested_by: "user:olga".into(),
        };
        let data = |status| VehicleData {
            id_type: IdType::Vin,
            value: "JTDBR32E720012345".into(),
            status,
            vehicle: Default::default(),
            gearbox: Default::default(),
            source: Some("catalogue".into()),
            confidence: 0.8,
            decoder: None,
            confirmed: None,
            note: None,
        };
        let mut log = Log::new();
        log.push(A, started(Uuid::from_u128(1), None, log.clock)).push(A, requested(lookup));
        let row = rows::<ListModel>(&log).remove(&A).unwrap();
        assert_eq!(
            row.vehicle,
            Some(
                json!({ "lookup_id": lookup, "id_type": "VIN", "value": "JTDBR32E720012345", "lookup_status": "requested" })
            )
        );

        log.push(
            A,
            E::VehicleDataAttached { lookup_id: lookup, revision: 1, data: Box::new(data(VehicleDataStatus::Found)) },
        )
        .push(A, requested(lookup));
        let v = rows::<ListModel>(&log).remove(&A).unwrap().vehicle.unwrap();
        assert_eq!(v["lookup_status"], "requested", "asked again");
        assert_eq!(v["source"], "catalogue", "what is known stays until the new answer comes");

        log.push(
            A,
            E::VehicleLookupFailed {
                lookup_id: lookup,
                revision: 2,
                id_type: IdType::Vin,
                value: "JTDBR32E720012345".into(),
                reason: "site down".into(),
            },
        );
        let v = rows::<ListModel>(&log).remove(&A).unwrap().vehicle.unwrap();
        assert_eq!((v["lookup_status"].as_str(), v["failure_reason"].as_str()), (Some("failed"), Some("site down")));
        assert_eq!(v["source"], "catalogue");

        log.push(
            A,
            E::VehicleDataAttached {
                lookup_id: lookup,
                revision: 3,
                data: Box::new(data(VehicleDataStatus::NotFound)),
            },
        );
        assert_eq!(rows::<ListModel>(&log).remove(&A).unwrap().vehicle.unwrap()["lookup_status"], "not_found");

        log.push(A, requested(Uuid::from_u128(0x200)));
        let v = rows::<ListModel>(&log).remove(&A).unwrap().vehicle.unwrap();
        assert_eq!(v["lookup_id"], json!(Uuid::from_u128(0x200)), "another lookup starts afresh");
        assert!(v.get("source").is_none());
    }

    #[test]
    fn events_already_in_the_row_are_not_applied_again() {
        let mut log = Log::new();
        let t0 = log.clock;
        log.push(A, started(Uuid::from_u128(1), None, t0))
            .push(A, received(Uuid::from_u128(2), "Привет", None, t0))
            .push(A, received(Uuid::from_u128(3), "Ау", None, t0));
        let all = rows::<ListModel>(&log);
        let decoded = log.decoded();
        let again = apply_batch::<ListModel>(all.clone(), &decoded[1..]).unwrap();
        assert_eq!(again.rows, all);
        assert_eq!(again.changed, vec![A], "the row is still written");
    }

    #[test]
    fn an_event_before_the_start_is_an_error() {
        let mut log = Log::new();
        log.push(A, received(Uuid::from_u128(2), "Привет", None, log.clock));
        let err = apply_batch::<ListModel>(HashMap::new(), &log.decoded()).err().unwrap();
        assert!(err.to_string().contains("has events before it started"), "{err}");
    }

    #[test]
    fn the_feed_hears_one_change_per_conversation_at_its_last_event() {
        let mut log = Log::new();
        let t0 = log.clock;
        log.push(A, started(Uuid::from_u128(1), None, t0))
            .push(B, started(Uuid::from_u128(2), None, t0))
            .push(A, received(Uuid::from_u128(3), "Привет", None, t0));
        let applied = apply_batch::<ListModel>(HashMap::new(), &log.decoded()).unwrap();
        assert_eq!(applied.changed, vec![A, B]);
        let change = |id, position: &str| Change {
            tenant_id: log.tenant,
            entity: "conversation",
            entity_id: id,
            conversation_id: Some(id),
            change: "updated",
            position: position.into(),
        };
        assert_eq!(applied.changes, vec![change(A, "103.3"), change(B, "102.2")]);
    }
}
