//! Messages (`rm_messages`): every message of every conversation, both directions, with its
//! delivery status.

use aisales_domain::conversation::{ConversationEvent as E, DeliveryStatus, ReplyOrigin};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Decoded;
use super::projection::{Feed, ReadModelProjector, RowFold, RowModel, RowOf};

/// Projector of `rm_messages`.
pub type Messages = ReadModelProjector<MessagesModel>;

/// Messages as a read model.
pub struct MessagesModel;

/// A row of `rm_messages`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRow {
    pub message_id: Uuid,
    pub tenant_id: Uuid,
    pub conversation_id: Uuid,
    pub direction: String,
    pub author: String,
    pub text: String,
    pub attachments: serde_json::Value,
    pub provider_message_id: Option<String>,
    pub suggestion_id: Option<Uuid>,
    pub status: String,
    pub failure_reason: Option<String>,
    pub actor: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub sequence: i64,
}

impl RowModel for MessagesModel {
    const NAME: &'static str = "messages";
    const DESCRIPTION: &'static str = "messages of every conversation, both directions, with delivery status";
}

/// The reply a delivery event is about.
fn reply_id_of(e: &E) -> Option<Uuid> {
    match e {
        E::ReplySendStarted { reply_id, .. }
        | E::ReplySent { reply_id, .. }
        | E::ReplySendRetryScheduled { reply_id, .. }
        | E::ReplyFailed { reply_id, .. }
        | E::ReplyRetryRequested { reply_id }
        | E::ReplyDelivered { reply_id, .. } => Some(*reply_id),
        _ => None,
    }
}

impl RowFold for MessagesModel {
    type Row = MessageRow;
    const TABLE: &'static str = "rm_messages";
    const PK: &'static [&'static str] = &["message_id"];
    const FEED: Feed<MessageRow> = Feed::EachEvent { entity: "message", tells_created: true };

    fn key(row: &MessageRow) -> Uuid {
        row.message_id
    }

    /// A customer message or a queued reply makes its row; the delivery events of a reply change it.
    fn row_of(event: &Decoded) -> Option<RowOf> {
        match event.event {
            E::MessageReceived { message_id, .. } => Some(RowOf::New(*message_id)),
            E::ReplyQueued { reply_id, .. } => Some(RowOf::New(*reply_id)),
            other => reply_id_of(other).map(RowOf::Stored),
        }
    }

    fn evolve(row: Option<MessageRow>, d: &Decoded) -> anyhow::Result<Option<MessageRow>> {
        let tenant_id = d.tenant_id.unwrap_or_default();
        match d.event {
            E::MessageReceived { message_id, provider_message_id, text, attachments, received_at, .. } => {
                return Ok(Some(MessageRow {
                    message_id: *message_id,
                    tenant_id,
                    conversation_id: d.conversation_id,
                    direction: "in".into(),
                    author: "customer".into(),
                    text: text.clone(),
                    attachments: serde_json::to_value(attachments)?,
                    provider_message_id: Some(provider_message_id.clone()),
                    suggestion_id: None,
                    status: "received".into(),
                    failure_reason: None,
                    actor: None,
                    created_at: *received_at,
                    sent_at: None,
                    delivered_at: None,
                    sequence: d.sequence,
                }));
            }
            E::ReplyQueued { reply_id, suggestion_id, text, origin, .. } => {
                let author = match origin {
                    ReplyOrigin::Operator => "operator",
                    ReplyOrigin::Auto => "auto",
                    ReplyOrigin::Lead => "lead",
                    ReplyOrigin::Suggestion | ReplyOrigin::Edited => "assistant",
                };
                return Ok(Some(MessageRow {
                    message_id: *reply_id,
                    tenant_id,
                    conversation_id: d.conversation_id,
                    direction: "out".into(),
                    author: author.into(),
                    text: text.clone(),
                    attachments: serde_json::Value::Array(vec![]),
                    provider_message_id: None,
                    suggestion_id: *suggestion_id,
                    status: "queued".into(),
                    failure_reason: None,
                    actor: d.actor(),
                    created_at: d.recorded_at,
                    sent_at: None,
                    delivered_at: None,
                    sequence: d.sequence,
                }));
            }
            _ => {}
        }
        let Some(reply_id) = reply_id_of(d.event) else { return Ok(row) };
        let Some(mut row) = row else {
            anyhow::bail!("reply {reply_id} of conversation {} was never queued", d.conversation_id)
        };
        match d.event {
            E::ReplySendStarted { .. } => row.status = "sending".into(),
            E::ReplySent { provider_message_id, sent_at, .. } => {
                row.status = "sent".into();
                row.provider_message_id = Some(provider_message_id.clone());
                row.sent_at = Some(*sent_at);
                row.failure_reason = None;
            }
            E::ReplySendRetryScheduled { reason, .. } => {
                row.status = "queued".into();
                row.failure_reason = Some(reason.clone());
            }
            E::ReplyRetryRequested { .. } => row.status = "queued".into(),
            E::ReplyFailed { reason, .. } => {
                row.status = "failed".into();
                row.failure_reason = Some(reason.clone());
            }
            E::ReplyDelivered { status, at, .. } => {
                row.status = status.as_str().into();
                if let DeliveryStatus::Failed { reason } = status {
                    row.failure_reason = Some(reason.clone());
                }
                row.delivered_at.get_or_insert(*at);
            }
            _ => {}
        }
        Ok(Some(row))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aisales_domain::conversation::{ConversationEvent as E, DeliveryStatus, ReplyOrigin};
    use uuid::Uuid;

    use super::MessagesModel;
    use crate::conversation::log::{A, Log, assert_columns, queued, received, rows, sent};
    use crate::conversation::projection::{apply_batch, needed};

    const IN: Uuid = Uuid::from_u128(1);
    const OUT: Uuid = Uuid::from_u128(2);

    #[test]
    fn a_customer_message_and_a_reply_become_rows_with_their_authors() {
        let mut log = Log::new();
        let t0 = log.clock;
        log.push(A, received(IN, "Нужна АКПП", Some("Иван"), t0)).push_by(
            A,
            "user:olga",
            queued(OUT, Some(Uuid::from_u128(3)), "Есть", ReplyOrigin::Edited),
        );
        let all = rows::<MessagesModel>(&log);
        let m = &all[&IN];
        assert_columns(m);
        assert_eq!((m.direction.as_str(), m.author.as_str(), m.status.as_str()), ("in", "customer", "received"));
        assert_eq!((m.created_at, m.sequence, m.tenant_id), (t0, 1, log.tenant));
        assert_eq!(m.provider_message_id.as_deref(), Some(format!("p-{IN}").as_str()));
        assert_eq!(m.attachments, serde_json::json!([]));
        let r = &all[&OUT];
        assert_eq!((r.direction.as_str(), r.author.as_str(), r.status.as_str()), ("out", "assistant", "queued"));
        assert_eq!(r.actor.as_deref(), Some("user:olga"));
        assert_eq!(r.suggestion_id, Some(Uuid::from_u128(3)));
        assert_eq!(r.created_at, t0 + chrono::Duration::seconds(1), "queued when recorded");

        for (origin, author) in
            [(ReplyOrigin::Operator, "operator"), (ReplyOrigin::Auto, "auto"), (ReplyOrigin::Suggestion, "assistant")]
        {
            let mut log = Log::new();
            log.push(A, queued(OUT, None, "Есть", origin));
            assert_eq!(rows::<MessagesModel>(&log)[&OUT].author, author);
        }
    }

    #[test]
    fn a_reply_follows_its_delivery() {
        let mut log = Log::new();
        let t0 = log.clock;
        let status = |log: &Log| {
            let r = rows::<MessagesModel>(log).remove(&OUT).unwrap();
            (r.status, r.failure_reason)
        };
        log.push(A, queued(OUT, None, "Есть", ReplyOrigin::Operator))
            .push(A, E::ReplySendStarted { reply_id: OUT, attempt: 1, started_at: t0 });
        assert_eq!(status(&log), ("sending".into(), None));
        log.push(A, E::ReplySendRetryScheduled { reply_id: OUT, attempt: 1, retry_at: t0, reason: "timeout".into() });
        assert_eq!(status(&log), ("queued".into(), Some("timeout".into())));
        log.push(A, E::ReplyFailed { reply_id: OUT, reason: "blocked".into(), permanent: true });
        assert_eq!(status(&log), ("failed".into(), Some("blocked".into())));
        log.push(A, E::ReplyRetryRequested { reply_id: OUT });
        assert_eq!(status(&log), ("queued".into(), Some("blocked".into())));
        log.push(A, sent(OUT, t0 + chrono::Duration::seconds(30)));
        let r = rows::<MessagesModel>(&log).remove(&OUT).unwrap();
        assert_eq!((r.status.as_str(), r.failure_reason), ("sent", None));
        assert_eq!(r.sent_at, Some(t0 + chrono::Duration::seconds(30)));
        assert_eq!(r.provider_message_id, Some(format!("p-{OUT}")));

        let delivered = |status: DeliveryStatus, secs| E::ReplyDelivered {
            reply_id: OUT,
            provider_message_id: format!("p-{OUT}"),
            status,
            at: t0 + chrono::Duration::seconds(secs),
        };
        log.push(A, delivered(DeliveryStatus::Delivered, 40)).push(A, delivered(DeliveryStatus::Read, 50));
        let r = rows::<MessagesModel>(&log).remove(&OUT).unwrap();
        assert_eq!(r.status, "read");
        assert_eq!(r.delivered_at, Some(t0 + chrono::Duration::seconds(40)), "delivered when first reported");
    }

    #[test]
    fn a_batch_loads_only_the_replies_it_changes_and_says_what_it_created() {
        let mut log = Log::new();
        let t0 = log.clock;
        let earlier = Uuid::from_u128(9);
        log.push(A, received(IN, "Привет", None, t0))
            .push(A, queued(OUT, None, "Есть", ReplyOrigin::Operator))
            .push(A, sent(OUT, t0))
            .push(A, sent(earlier, t0));
        let decoded = log.decoded();
        let mut need = needed::<MessagesModel>(&decoded);
        need.sort();
        assert_eq!(need, vec![OUT, earlier], "new rows are not loaded");

        let err = apply_batch::<MessagesModel>(HashMap::new(), &decoded).err().unwrap();
        assert!(err.to_string().contains(&format!("reply {earlier} of conversation {A} was never queued")), "{err}");

        let mut stored = rows::<MessagesModel>(&{
            let mut l = Log::new();
            l.push(A, queued(earlier, None, "Раньше", ReplyOrigin::Operator));
            l
        });
        stored.remove(&OUT);
        let applied = apply_batch::<MessagesModel>(stored, &decoded).unwrap();
        assert_eq!(applied.changed, vec![IN, OUT, earlier]);
        let said: Vec<(Uuid, &str, &str)> = applied.changes.iter().map(|c| (c.entity_id, c.entity, c.change)).collect();
        assert_eq!(
            said,
            vec![
                (IN, "message", "created"),
                (OUT, "message", "created"),
                (OUT, "message", "updated"),
                (earlier, "message", "updated")
            ]
        );
        assert!(applied.changes.iter().all(|c| c.tenant_id == log.tenant && c.conversation_id == Some(A)));
        assert_eq!(applied.rows[&earlier].status, "sent");
    }

    #[test]
    fn other_events_make_no_message() {
        let mut log = Log::new();
        log.push(A, E::ConversationRead).push(A, E::OperatorReplied { reply_id: OUT, text: "ok".into() });
        let applied = apply_batch::<MessagesModel>(HashMap::new(), &log.decoded()).unwrap();
        assert!(applied.rows.is_empty() && applied.changes.is_empty());
    }
}
