//! What the conversation read models share: a projector made from a [`ReadModel`], and for the
//! read models kept as rows of one table ([`RowFold`]), the whole batch loop: load the rows the
//! batch needs in one query, fold the events into them in memory, write the changed rows back with
//! one upsert, and tell the live-update feed what changed.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Decoded, decode, erasure, ids};
use crate::events::StoredEvent;
use crate::projector::{Projector, Target};
use crate::rows;

/// A read model of conversations: its projector's name and tables, and how a batch of decoded
/// conversation events is written into them.
pub trait ReadModel: Send + Sync + 'static {
    /// Projector name: the checkpoint key and the `projections rebuild NAME` argument.
    const NAME: &'static str;
    /// One line for `projections status`.
    const DESCRIPTION: &'static str;
    /// The tables it owns (emptied by a rebuild).
    const TABLES: &'static [&'static str];

    /// Writes a batch into `target`'s generation of the tables, inside the batch's transaction.
    fn write(
        conn: &mut PgConnection,
        target: Target,
        events: &[Decoded<'_>],
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// The projector of a [`ReadModel`].
pub struct ReadModelProjector<M> {
    target: Target,
    name: &'static str,
    model: PhantomData<fn() -> M>,
}

impl<M: ReadModel> ReadModelProjector<M> {
    /// The projector writing into `target`'s tables.
    pub fn new(target: Target) -> Self {
        ReadModelProjector { target, name: target.name(M::NAME), model: PhantomData }
    }
}

#[async_trait]
impl<M: ReadModel> Projector for ReadModelProjector<M> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn description(&self) -> &'static str {
        M::DESCRIPTION
    }
    fn tables(&self) -> &'static [&'static str] {
        M::TABLES
    }
    fn generation(&self, target: Target) -> Option<Box<dyn Projector>> {
        Some(Box::new(Self::new(target)))
    }

    async fn apply(&self, conn: &mut PgConnection, events: &[StoredEvent]) -> anyhow::Result<()> {
        let decoded = decode(events)?;
        M::write(conn, self.target, &decoded).await
    }
}

/// Which row an event changes, and whether the batch must read it from the table first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowOf {
    /// A row the table may hold already: loaded with the batch's others, then changed.
    Stored(Uuid),
    /// A row the event makes afresh, whatever the table holds: nothing to load.
    New(Uuid),
}

impl RowOf {
    /// The row's key.
    pub fn key(self) -> Uuid {
        match self {
            RowOf::Stored(k) | RowOf::New(k) => k,
        }
    }
}

/// What the live-update feed hears of a batch.
pub enum Feed<R> {
    /// Nothing: the read model has no live view.
    Silent,
    /// One change per event that changed a row, with the event's tenant and position: `created`
    /// for an event that makes its row afresh when `tells_created`, `updated` otherwise.
    EachEvent { entity: &'static str, tells_created: bool },
    /// One `updated` per row the batch changed, with the row's `tenant` and the position of the
    /// last event that changed it.
    EachRow { entity: &'static str, tenant: fn(&R) -> Uuid },
}

/// A read model kept as rows of one table, each row changed by the events that name it: which row
/// an event is about ([`RowFold::row_of`], Emmett's `canHandle`) and what the row becomes
/// ([`RowFold::evolve`]), both pure. [`write_rows`] runs it over a batch.
pub trait RowFold {
    /// A row of the table: its fields are the table's columns (see [`rows::columns`]).
    type Row: Serialize + DeserializeOwned + Send + Sync;
    /// The table (of the live generation).
    const TABLE: &'static str;
    /// Its primary-key columns: the upsert's conflict target.
    const PK: &'static [&'static str];
    /// The column stored rows are loaded by: the key [`RowFold::row_of`] names and
    /// [`RowFold::key`] reads. The primary key unless said otherwise.
    const LOAD_BY: &'static str = Self::PK[0];
    /// What the live-update feed hears.
    const FEED: Feed<Self::Row>;

    /// The row's value of [`RowFold::LOAD_BY`].
    fn key(row: &Self::Row) -> Uuid;

    /// The row `event` changes, if any.
    fn row_of(event: &Decoded) -> Option<RowOf>;

    /// The row after `event`, from the row as the batch holds it (`None` when there is none
    /// yet); `None` when there is still none. An event that needs a row that never was is an error.
    fn evolve(row: Option<Self::Row>, event: &Decoded) -> anyhow::Result<Option<Self::Row>>;
}

/// A read model that is one [`RowFold`]: its projector writes each batch with [`write_rows`].
pub trait RowModel: RowFold + Send + Sync + 'static {
    /// Projector name: the checkpoint key and the `projections rebuild NAME` argument.
    const NAME: &'static str;
    /// One line for `projections status`.
    const DESCRIPTION: &'static str;
}

impl<F: RowModel> ReadModel for F {
    const NAME: &'static str = <F as RowModel>::NAME;
    const DESCRIPTION: &'static str = <F as RowModel>::DESCRIPTION;
    const TABLES: &'static [&'static str] = &[F::TABLE];

    /// The batch through [`write_rows`], then the rows of the conversations it erases written
    /// again from their events as they now read ([`erasure::rewrite`]).
    async fn write(conn: &mut PgConnection, target: Target, events: &[Decoded<'_>]) -> anyhow::Result<()> {
        write_rows::<F>(conn, target, events).await?;
        erasure::rewrite::<F>(conn, target, events).await
    }
}

/// Applies one event to the rows it names; returns the row it changed and whether the event made
/// it afresh.
pub fn apply<F: RowFold>(rows: &mut HashMap<Uuid, F::Row>, event: &Decoded) -> anyhow::Result<Option<RowOf>> {
    let Some(of) = F::row_of(event) else { return Ok(None) };
    let key = of.key();
    let Some(row) = F::evolve(rows.remove(&key), event)? else { return Ok(None) };
    rows.insert(key, row);
    Ok(Some(of))
}

/// A batch folded into its rows: what to write and what to tell the live-update feed.
pub struct Applied<R> {
    /// The rows, as loaded and then changed.
    pub rows: HashMap<Uuid, R>,
    /// Keys of the rows the batch changed, in the order it first changed them.
    pub changed: Vec<Uuid>,
    /// What the live-update feed hears of the batch.
    pub changes: Vec<Change>,
}

impl<R> Applied<R> {
    /// The rows the batch changed.
    pub fn changed_rows(&self) -> Vec<&R> {
        self.changed.iter().filter_map(|k| self.rows.get(k)).collect()
    }
}

/// The keys of the stored rows a batch needs.
pub fn needed<'a, F: RowFold>(events: &[impl Borrow<Decoded<'a>>]) -> Vec<Uuid> {
    ids(events.iter().filter_map(|d| match F::row_of(d.borrow()) {
        Some(RowOf::Stored(key)) => Some(key),
        _ => None,
    }))
}

/// Folds a batch into the `stored` rows it needs (pure: the middle of [`write_rows`]).
pub fn apply_batch<'a, F: RowFold>(
    stored: HashMap<Uuid, F::Row>,
    events: &[impl Borrow<Decoded<'a>>],
) -> anyhow::Result<Applied<F::Row>> {
    let mut rows = stored;
    let mut changed = Vec::new();
    // Per changed row: its index in `changed` and the last event that changed it.
    let mut last: HashMap<Uuid, &Decoded> = HashMap::new();
    let mut changes = Vec::new();
    for d in events.iter().map(Borrow::borrow) {
        let Some(of) = apply::<F>(&mut rows, d)? else { continue };
        let key = of.key();
        if last.insert(key, d).is_none() {
            changed.push(key);
        }
        if let Feed::EachEvent { entity, tells_created } = F::FEED {
            let created = tells_created && matches!(of, RowOf::New(_));
            changes.push(Change {
                tenant_id: d.tenant_id.unwrap_or_default(),
                entity,
                entity_id: key,
                conversation_id: Some(d.conversation_id),
                change: if created { "created" } else { "updated" },
                position: d.position.clone(),
            });
        }
    }
    if let Feed::EachRow { entity, tenant } = F::FEED {
        changes = changed
            .iter()
            .filter_map(|key| {
                let (row, d) = (rows.get(key)?, last.get(key)?);
                Some(Change {
                    tenant_id: tenant(row),
                    entity,
                    entity_id: *key,
                    conversation_id: Some(d.conversation_id),
                    change: "updated",
                    position: d.position.clone(),
                })
            })
            .collect();
    }
    Ok(Applied { rows, changed, changes })
}

/// Writes a batch through `F` into `target`'s generation of its table: one query loads the stored
/// rows the batch needs, the events are folded into them in memory, one upsert writes the changed
/// rows back, and the live-update feed hears what changed.
pub async fn write_rows<'a, F: RowFold>(
    conn: &mut PgConnection,
    target: Target,
    events: &[impl Borrow<Decoded<'a>> + Sync],
) -> anyhow::Result<()> {
    let table = target.table(F::TABLE);
    let stored = rows::load(conn, &table, F::LOAD_BY, &needed::<F>(events), F::key).await?;
    let applied = apply_batch::<F>(stored, events)?;
    rows::upsert(conn, &table, F::PK, rows::columns::<F::Row>(), &applied.changed_rows()).await?;
    record_changes(conn, target, &applied.changes).await
}

/// One change of a read model, for the live-update feed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub tenant_id: Uuid,
    pub entity: &'static str,
    pub entity_id: Uuid,
    pub conversation_id: Option<Uuid>,
    pub change: &'static str,
    pub position: String,
}

/// Writes one change row per touched entity and wakes the live-update listeners.
pub(crate) async fn record_changes(conn: &mut PgConnection, target: Target, changes: &[Change]) -> anyhow::Result<()> {
    if !target.is_live() || changes.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO read_model_changes (tenant_id, entity, entity_id, conversation_id, change, position) \
         SELECT tenant_id, entity, entity_id, conversation_id, change, position \
           FROM jsonb_to_recordset($1::jsonb) AS x(tenant_id uuid, entity text, entity_id uuid, conversation_id uuid, change text, position text)",
    )
    .bind(serde_json::to_string(changes)?)
    .execute(&mut *conn)
    .await?;
    sqlx::query("SELECT pg_notify('read_model_changes', '')").execute(conn).await?;
    Ok(())
}
