//! Customers (`rm_customers`): the customer of each conversation with its channel identity,
//! aliases, name, phone and activity.
//!
//! Counted in place: a batch inserts the customers its conversations start (unless present) and
//! adds its customer messages as deltas (count, latest time seen, first name given) in one
//! `UPDATE`, reading no rows. Only a conversation whose customer gained an alias in the batch,
//! which is rare, is loaded, folded and written whole. Both ways give the same rows whatever the
//! batches. The customer of a conversation the batch erases is written whole again afterwards, from
//! the conversation's events as they now read ([`erasure`](super::erasure)).

use std::collections::{BTreeMap, HashSet};

use aisales_domain::conversation::ConversationEvent as E;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::list::ConversationRow;
use super::projection::{Feed, ReadModel, ReadModelProjector, RowFold, RowOf, write_rows};
use super::{Decoded, erasure};
use crate::projector::Target;
use crate::rows::{self, micros};

/// Projector of `rm_customers`.
pub type Customers = ReadModelProjector<CustomersModel>;

/// Customers as a read model.
pub struct CustomersModel;

/// A row of `rm_customers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerRow {
    pub customer_id: Uuid,
    pub tenant_id: Uuid,
    pub channel: String,
    pub chat_id: String,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub aliases: Vec<String>,
    pub conversation_id: Uuid,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub messages_count: i32,
}

const TABLE: &str = "rm_customers";

impl ReadModel for CustomersModel {
    const NAME: &'static str = "customers";
    const DESCRIPTION: &'static str = "customers: channel identity, aliases, name, phone, activity";
    const TABLES: &'static [&'static str] = &[TABLE];

    /// New customers are inserted and messages counted in place (one `UPDATE` of deltas, no read
    /// of the rows); conversations whose customer gained an alias in the batch are loaded, changed
    /// in memory and written whole.
    async fn write(conn: &mut PgConnection, target: Target, events: &[Decoded<'_>]) -> anyhow::Result<()> {
        let table = target.table(TABLE);
        let tally = Tally::of(events);
        // A conversation starts before its messages: its row is there for the update below.
        rows::insert_missing(conn, &table, &["customer_id"], rows::columns::<CustomerRow>(), &tally.started).await?;
        add_seen(conn, &table, &tally.seen).await?;
        write_rows::<AliasedCustomers>(conn, target, &tally.whole).await?;
        erasure::rewrite::<AliasedCustomers>(conn, target, events).await
    }
}

/// A batch's customer messages in one conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub messages: i32,
    pub last_seen_at: DateTime<Utc>,
    /// The first name a message of the batch gave.
    pub name: Option<String>,
}

/// What a batch does to the customers, split by how it is written.
pub struct Tally<'e, 'a> {
    /// Customers of the conversations the batch starts (inserted unless present).
    pub started: Vec<CustomerRow>,
    /// Customer messages per conversation (added to the rows in place).
    pub seen: BTreeMap<Uuid, Seen>,
    /// The events of conversations whose customer gained an alias (rows written whole).
    pub whole: Vec<&'e Decoded<'a>>,
}

impl<'e, 'a> Tally<'e, 'a> {
    /// Sorts a batch's events into the three ways of writing them.
    pub fn of(events: &'e [Decoded<'a>]) -> Self {
        let aliased: HashSet<Uuid> = events
            .iter()
            .filter(|d| matches!(d.event, E::CustomerAliasLinked { .. }))
            .map(|d| d.conversation_id)
            .collect();
        let mut tally = Tally { started: Vec::new(), seen: BTreeMap::new(), whole: Vec::new() };
        for d in events {
            if aliased.contains(&d.conversation_id) {
                tally.whole.push(d);
            } else if let Some(row) = CustomerRow::start(d) {
                tally.started.push(row);
            } else if let E::MessageReceived { sender_name, received_at, .. } = d.event {
                tally
                    .seen
                    .entry(d.conversation_id)
                    .and_modify(|s| {
                        s.messages += 1;
                        s.last_seen_at = s.last_seen_at.max(*received_at);
                        if s.name.is_none() {
                            s.name.clone_from(sender_name);
                        }
                    })
                    .or_insert_with(|| Seen { messages: 1, last_seen_at: *received_at, name: sender_name.clone() });
            }
        }
        tally
    }
}

/// Adds the messages seen to the rows of their conversations, in place.
async fn add_seen(conn: &mut PgConnection, table: &str, seen: &BTreeMap<Uuid, Seen>) -> anyhow::Result<()> {
    if seen.is_empty() {
        return Ok(());
    }
    let conversations: Vec<Uuid> = seen.keys().copied().collect();
    let messages: Vec<i32> = seen.values().map(|s| s.messages).collect();
    // Cut to microseconds as the rows written whole are (`rows::upsert`).
    let last_seen: Vec<DateTime<Utc>> = seen.values().map(|s| micros(s.last_seen_at)).collect();
    let names: Vec<Option<&str>> = seen.values().map(|s| s.name.as_deref()).collect();
    let sql = format!(
        "UPDATE {table} c SET messages_count = c.messages_count + d.messages, \
                last_seen_at = GREATEST(c.last_seen_at, d.last_seen_at), \
                name = COALESCE(c.name, d.name) \
           FROM UNNEST($1::uuid[], $2::int[], $3::timestamptz[], $4::text[]) AS d(conversation_id, messages, last_seen_at, name) \
          WHERE c.conversation_id = d.conversation_id"
    );
    sqlx::query(&sql).bind(&conversations).bind(&messages).bind(&last_seen).bind(&names).execute(conn).await?;
    Ok(())
}

/// The customers of conversations that gained an alias: loaded by conversation and written whole.
struct AliasedCustomers;

impl RowFold for AliasedCustomers {
    type Row = CustomerRow;
    const TABLE: &'static str = TABLE;
    const PK: &'static [&'static str] = &["customer_id"];
    const LOAD_BY: &'static str = "conversation_id";
    const FEED: Feed<CustomerRow> = Feed::Silent;

    fn key(row: &CustomerRow) -> Uuid {
        row.conversation_id
    }

    fn row_of(event: &Decoded) -> Option<RowOf> {
        Some(RowOf::Stored(event.conversation_id))
    }

    /// The customer a conversation starts with, then changed by its later events (the first
    /// start wins; events of a conversation without a row change nothing).
    fn evolve(row: Option<CustomerRow>, d: &Decoded) -> anyhow::Result<Option<CustomerRow>> {
        Ok(match row {
            None => CustomerRow::start(d),
            Some(row) if matches!(d.event, E::ConversationStarted { .. }) => Some(row),
            Some(mut row) => {
                row.apply(d);
                Some(row)
            }
        })
    }
}

impl CustomerRow {
    /// The customer a conversation starts with: the conversation's, as its list row has it.
    fn start(d: &Decoded) -> Option<CustomerRow> {
        let c = ConversationRow::start(d)?;
        Some(CustomerRow {
            customer_id: c.customer_id,
            tenant_id: c.tenant_id,
            channel: c.channel,
            chat_id: c.chat_id,
            name: c.customer_name,
            phone: c.customer_phone,
            aliases: vec![],
            conversation_id: c.conversation_id,
            first_seen_at: c.created_at,
            last_seen_at: c.created_at,
            messages_count: 0,
        })
    }

    /// Applies a later event of the conversation.
    fn apply(&mut self, d: &Decoded) {
        match d.event {
            E::MessageReceived { sender_name, received_at, .. } => {
                self.messages_count += 1;
                self.last_seen_at = self.last_seen_at.max(*received_at);
                if self.name.is_none() {
                    self.name.clone_from(sender_name);
                }
            }
            E::CustomerAliasLinked { alias } if !self.aliases.contains(alias) => self.aliases.push(alias.clone()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aisales_domain::conversation::ConversationEvent as E;
    use uuid::Uuid;

    use super::{AliasedCustomers, CustomerRow, Seen, Tally};
    use crate::conversation::log::{A, B, Log, assert_columns, received, started};
    use crate::conversation::projection::apply_batch;
    use crate::rows::micros;

    const CUSTOMER: Uuid = Uuid::from_u128(0xc);

    /// What `add_seen`'s `UPDATE` does to a stored row.
    fn add(row: &mut CustomerRow, s: &Seen) {
        row.messages_count += s.messages;
        row.last_seen_at = row.last_seen_at.max(micros(s.last_seen_at));
        if row.name.is_none() {
            row.name.clone_from(&s.name);
        }
    }

    /// The row as the table holds it after `batches`, each written as `write` writes it.
    fn stored_after(batches: &[&Log]) -> Option<CustomerRow> {
        let mut row: Option<CustomerRow> = None;
        for log in batches {
            let decoded = log.decoded();
            let tally = Tally::of(&decoded);
            for started in tally.started {
                row.get_or_insert(started);
            }
            if let (Some(r), Some(s)) = (row.as_mut(), tally.seen.get(&A)) {
                add(r, s);
            }
            let stored: HashMap<Uuid, CustomerRow> = row.clone().map(|r| (r.conversation_id, r)).into_iter().collect();
            let applied = apply_batch::<AliasedCustomers>(stored, &tally.whole).unwrap();
            if let Some(r) = applied.changed_rows().first() {
                row = Some((*r).clone());
            }
        }
        row.map(|mut r| {
            r.last_seen_at = micros(r.last_seen_at);
            r
        })
    }

    /// Events of conversation `A` (messages named as given, the third one latest), and an alias
    /// linked after the second message when `alias`.
    fn conversation(names: [Option<&str>; 4], alias: bool) -> Vec<E> {
        let t0 = Log::new().clock;
        let mut events = vec![started(CUSTOMER, None, t0)];
        for (m, name) in names.iter().enumerate() {
            let at = t0
                + chrono::Duration::seconds(if m == 2 { 100 } else { m as i64 })
                + chrono::Duration::nanoseconds(123_456_789);
            events.push(received(Uuid::from_u128(m as u128 + 1), "Нужна АКПП", *name, at));
            if alias && m == 1 {
                events.push(E::CustomerAliasLinked { alias: "max:123".into() });
                events.push(E::CustomerAliasLinked { alias: "max:123".into() });
            }
        }
        events
    }

    #[test]
    fn a_batch_is_sorted_into_new_customers_counted_messages_and_rows_written_whole() {
        let mut log = Log::new();
        let t0 = log.clock;
        log.push(A, started(CUSTOMER, Some("Анна"), t0))
            .push(A, received(Uuid::from_u128(1), "Привет", None, t0 + chrono::Duration::seconds(9)))
            .push(A, received(Uuid::from_u128(2), "Ау", Some("Иван"), t0 + chrono::Duration::seconds(5)))
            .push(A, received(Uuid::from_u128(3), "Ещё", Some("Пётр"), t0 + chrono::Duration::seconds(7)))
            .push(B, received(Uuid::from_u128(4), "Здравствуйте", None, t0))
            .push(B, E::CustomerAliasLinked { alias: "max:1".into() });
        let decoded = log.decoded();
        let tally = Tally::of(&decoded);
        assert_eq!(
            tally.started.iter().map(|r| (r.conversation_id, r.name.as_deref())).collect::<Vec<_>>(),
            vec![(A, Some("Анна"))]
        );
        assert_eq!(
            tally.seen.get(&A),
            Some(&Seen { messages: 3, last_seen_at: t0 + chrono::Duration::seconds(9), name: Some("Иван".into()) }),
            "counted, the latest time (not the last), the first name given"
        );
        assert!(!tally.seen.contains_key(&B));
        assert_eq!(tally.whole.iter().map(|d| d.conversation_id).collect::<Vec<_>>(), vec![B, B]);
    }

    #[test]
    fn counted_in_place_or_written_whole_the_rows_are_the_same_whatever_the_batches() {
        let names = [
            [None, None, None, None],
            [None, Some("Иван"), Some("Пётр"), None],
            [Some("Анна"), None, None, Some("Ира")],
        ];
        for names in names {
            for alias in [false, true] {
                let events = conversation(names, alias);
                let batch = |range: std::ops::Range<usize>| {
                    let mut log = Log::new();
                    // Sequences as in one stream: the earlier events of the stream come first.
                    for e in &events[..range.start] {
                        log.push(A, e.clone());
                    }
                    log.events.clear();
                    for e in &events[range] {
                        log.push(A, e.clone());
                    }
                    log
                };
                let one = batch(0..events.len());
                let whole = stored_after(&[&one]).unwrap();
                assert_eq!(whole.messages_count, 4);
                assert_eq!(whole.name, names.iter().flatten().next().map(|n| n.to_string()));
                assert_eq!(whole.aliases, if alias { vec!["max:123".to_string()] } else { vec![] }, "an alias once");
                let single: Vec<Log> = (0..events.len()).map(|i| batch(i..i + 1)).collect();
                assert_eq!(
                    stored_after(&single.iter().collect::<Vec<_>>()).unwrap(),
                    whole,
                    "{names:?} alias {alias}: one per batch"
                );
                for split in 1..events.len() {
                    let (a, b) = (batch(0..split), batch(split..events.len()));
                    assert_eq!(stored_after(&[&a, &b]).unwrap(), whole, "{names:?} alias {alias}: split at {split}");
                }
            }
        }
    }

    #[test]
    fn written_whole_the_first_start_wins_and_events_without_a_row_change_nothing() {
        let mut log = Log::new();
        let t0 = log.clock;
        log.push(A, E::CustomerAliasLinked { alias: "max:1".into() })
            .push(A, started(CUSTOMER, Some("Анна"), t0))
            .push(A, started(Uuid::from_u128(0xd), Some("Ира"), t0))
            .push(A, E::CustomerAliasLinked { alias: "max:2".into() });
        let decoded = log.decoded();
        let applied = apply_batch::<AliasedCustomers>(HashMap::new(), &decoded).unwrap();
        let row = &applied.rows[&A];
        assert_columns(row);
        assert_eq!((row.customer_id, row.name.as_deref()), (CUSTOMER, Some("Анна")));
        assert_eq!(row.aliases, vec!["max:2".to_string()]);
        assert!(applied.changes.is_empty(), "customers have no live view");
    }
}
