//! Escalations (`rm_escalations`): why a conversation needed a person, and when it was handled.
//! A row opens with `ConversationEscalated` and closes when the status leaves `escalated`, or when
//! the customer is erased (nobody can handle it then).

use std::collections::HashMap;

use aisales_domain::conversation::{ConversationEvent as E, Status};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::projection::{ReadModel, ReadModelProjector};
use super::{Decoded, decode, erasure, ids};
use crate::projector::Target;
use crate::rows;

/// Projector of `rm_escalations`.
pub type Escalations = ReadModelProjector<EscalationsModel>;

/// Escalations as a read model.
pub struct EscalationsModel;

/// A row of `rm_escalations`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EscalationRow {
    pub conversation_id: Uuid,
    pub sequence: i64,
    pub tenant_id: Uuid,
    pub reason: String,
    pub suggestion_id: Option<Uuid>,
    pub actor: Option<String>,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_reason: Option<String>,
}

const TABLE: &str = "rm_escalations";

impl ReadModel for EscalationsModel {
    const NAME: &'static str = "escalations";
    const DESCRIPTION: &'static str = "escalations: why a conversation needed a person, and when it was handled";
    const TABLES: &'static [&'static str] = &[TABLE];

    /// Loads the open escalations of the conversations the batch escalates or de-escalates, folds
    /// the batch into them and writes them back with those the batch closed or left behind. Then
    /// every escalation of a conversation the batch erases is written again from its events as they
    /// now read ([`erasure`](super::erasure)): the reasons are the customer's words.
    async fn write(conn: &mut PgConnection, target: Target, events: &[Decoded<'_>]) -> anyhow::Result<()> {
        let table = target.table(TABLE);
        let relevant: Vec<&Decoded> = events.iter().filter(|d| concerns(d)).collect();
        if relevant.is_empty() {
            return Ok(());
        }
        let conversations = ids(relevant.iter().map(|d| d.conversation_id));
        // Only the open escalations: a conversation's closed ones stay as they are.
        let sql =
            format!("SELECT row_to_json(t)::text FROM {table} t WHERE conversation_id = ANY($1) AND status = 'open'");
        let mut open = HashMap::new();
        for text in sqlx::query_scalar::<_, String>(&sql).bind(&conversations).fetch_all(&mut *conn).await? {
            let row: EscalationRow = serde_json::from_str(&text)?;
            open.insert(row.conversation_id, row);
        }
        upsert(conn, &table, &apply_batch(open, &relevant)).await?;

        let stream = erasure::erased_streams(conn, events).await?;
        let erased = decode(&stream)?;
        let relevant: Vec<&Decoded> = erased.iter().filter(|d| concerns(d)).collect();
        upsert(conn, &table, &apply_batch(HashMap::new(), &relevant)).await
    }
}

async fn upsert(conn: &mut PgConnection, table: &str, rows: &[EscalationRow]) -> anyhow::Result<()> {
    rows::upsert(conn, table, &["conversation_id", "sequence"], rows::columns::<EscalationRow>(), rows).await
}

/// Whether an event opens or closes an escalation.
fn concerns(d: &Decoded) -> bool {
    matches!(
        d.event,
        E::ConversationEscalated { .. } | E::StatusChanged { from: Status::Escalated, .. } | E::CustomerErased { .. }
    )
}

/// Applies one event to the open escalations (one per conversation); returns the row it took out
/// of them (closed, or left behind by a newer escalation), to be written.
pub fn evolve(open: &mut HashMap<Uuid, EscalationRow>, d: &Decoded) -> Option<EscalationRow> {
    match d.event {
        E::ConversationEscalated { reason, suggestion_id } => open.insert(
            d.conversation_id,
            EscalationRow {
                conversation_id: d.conversation_id,
                sequence: d.sequence,
                tenant_id: d.tenant_id.unwrap_or_default(),
                reason: reason.clone(),
                suggestion_id: *suggestion_id,
                actor: d.actor(),
                status: "open".into(),
                created_at: d.recorded_at,
                closed_at: None,
                closed_reason: None,
            },
        ),
        E::StatusChanged { from: Status::Escalated, to, reason } => {
            close(open, d, format!("{}: {reason}", to.as_str()))
        }
        E::CustomerErased { .. } => close(open, d, "erased".into()),
        _ => None,
    }
}

/// Takes the conversation's open escalation out of `open`, closed by `d` for `reason`.
fn close(open: &mut HashMap<Uuid, EscalationRow>, d: &Decoded, reason: String) -> Option<EscalationRow> {
    let mut row = open.remove(&d.conversation_id)?;
    row.status = "closed".into();
    row.closed_at = Some(d.recorded_at);
    row.closed_reason = Some(reason);
    Some(row)
}

/// Folds a batch into the `open` escalations of its conversations: the rows to write.
pub fn apply_batch(mut open: HashMap<Uuid, EscalationRow>, events: &[&Decoded]) -> Vec<EscalationRow> {
    let mut out: Vec<EscalationRow> = events.iter().filter_map(|d| evolve(&mut open, d)).collect();
    out.extend(open.into_values());
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aisales_domain::conversation::{ConversationEvent as E, Status};
    use uuid::Uuid;

    use super::{EscalationRow, apply_batch, concerns};
    use crate::conversation::log::{A, B, Log, assert_columns};

    fn escalated(reason: &str) -> E {
        E::ConversationEscalated { reason: reason.into(), suggestion_id: Some(Uuid::from_u128(5)) }
    }

    fn status(from: Status, to: Status) -> E {
        E::StatusChanged { from, to, reason: "operator".into() }
    }

    fn written(log: &Log, open: HashMap<Uuid, EscalationRow>) -> Vec<EscalationRow> {
        let decoded = log.decoded();
        let relevant: Vec<_> = decoded.iter().filter(|d| concerns(d)).collect();
        let mut out = apply_batch(open, &relevant);
        out.sort_by_key(|r| (r.conversation_id, r.sequence));
        out
    }

    #[test]
    fn an_escalation_opens_and_closes_when_the_status_leaves_escalated() {
        let mut log = Log::new();
        log.push_by(A, "system", status(Status::Open, Status::Escalated)).push_by(A, "user:olga", escalated("price"));
        let opened_at = log.clock - chrono::Duration::seconds(1);
        let open = written(&log, HashMap::new());
        assert_eq!(open.len(), 1);
        let row = &open[0];
        assert_columns(row);
        assert_eq!((row.sequence, row.status.as_str(), row.reason.as_str()), (2, "open", "price"));
        assert_eq!((row.actor.as_deref(), row.created_at, row.tenant_id), (Some("user:olga"), opened_at, log.tenant));
        assert_eq!(row.suggestion_id, Some(Uuid::from_u128(5)));

        // A later batch closes the stored open row.
        let mut later = Log::new();
        later.clock = opened_at + chrono::Duration::minutes(5);
        later.push(A, status(Status::Escalated, Status::Open));
        let closed = written(&later, HashMap::from([(A, row.clone())]));
        assert_eq!(closed.len(), 1);
        assert_eq!((closed[0].sequence, closed[0].status.as_str()), (2, "closed"));
        assert_eq!(closed[0].closed_at, Some(opened_at + chrono::Duration::minutes(5)));
        assert_eq!(closed[0].closed_reason.as_deref(), Some("open: operator"));
    }

    #[test]
    fn only_escalations_and_the_status_leaving_escalated_concern_it() {
        let mut log = Log::new();
        log.push(A, status(Status::Open, Status::WaitingCustomer))
            .push(A, status(Status::WaitingCustomer, Status::Resolved))
            .push(A, E::ConversationRead);
        assert!(written(&log, HashMap::new()).is_empty());
        // Leaving `escalated` with nothing open changes nothing either.
        log.push(B, status(Status::Escalated, Status::Resolved));
        assert!(written(&log, HashMap::new()).is_empty());
    }

    #[test]
    fn erasing_the_customer_closes_the_open_escalation() {
        let mut log = Log::new();
        log.push(A, escalated("first")).push(A, status(Status::Escalated, Status::Open)).push(A, escalated("second"));
        log.push(
            A,
            E::CustomerErased {
                customer_id: Uuid::from_u128(1),
                erased_by: "user:olga".into(),
                cause: aisales_domain::pii::ErasureCause::Request,
                erased_at: log.clock,
            },
        );
        let erased_at = log.clock - chrono::Duration::seconds(1);
        let rows = written(&log, HashMap::new());
        let seen: Vec<(i64, &str, Option<&str>)> =
            rows.iter().map(|r| (r.sequence, r.status.as_str(), r.closed_reason.as_deref())).collect();
        assert_eq!(seen, vec![(1, "closed", Some("open: operator")), (3, "closed", Some("erased"))]);
        assert_eq!(rows[1].closed_at, Some(erased_at));
    }

    #[test]
    fn a_batch_writes_every_escalation_it_opened_and_closed() {
        let mut log = Log::new();
        log.push(A, escalated("first"))
            .push(A, status(Status::Escalated, Status::Open))
            .push(A, escalated("second"))
            .push(B, escalated("other"));
        let rows = written(&log, HashMap::new());
        let seen: Vec<(Uuid, i64, &str, &str)> =
            rows.iter().map(|r| (r.conversation_id, r.sequence, r.reason.as_str(), r.status.as_str())).collect();
        assert_eq!(seen, vec![(A, 1, "first", "closed"), (A, 3, "second", "open"), (B, 1, "other", "open")]);
    }
}
