//! The global order is gap-safe.
//!
//! Writers append in transactions that stay open for different times. A transaction takes its
//! `global_position` when it inserts, but becomes visible only when it commits, so a later,
//! faster transaction can commit a *higher* position first. A reader that orders by
//! `global_position` alone and remembers the highest position it saw then never reads the slower
//! event: `naive_reader_loses_the_slow_transaction` shows exactly that, and the randomized test
//! below checks that the naive reader does lose events in the same scenario in which the tracking
//! reader (ordered by `(tx_id, global_position)`, never past `pg_snapshot_xmin`) delivers every
//! event exactly once, each aggregate in sequence.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aisales::testkit::TestDb;
use aisales_projections::events::{read_after, read_after_naive};
use aisales_projections::{EventFeed, Position};
use rand::Rng;
use sqlx::PgPool;

async fn insert(conn: &mut sqlx::PgConnection, agg: &str, seq: i64) {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('probe', $1, $2, 'Probed', '1', '{}', '{}')",
    )
    .bind(agg)
    .bind(seq)
    .execute(conn)
    .await
    .unwrap();
}

#[tokio::test]
async fn naive_reader_loses_the_slow_transaction() {
    let db = TestDb::create().await.unwrap();
    let pool = db.pool(5).await.unwrap();

    let mut slow = pool.begin().await.unwrap();
    insert(&mut slow, "slow", 1).await; // takes the lower global_position
    let mut fast = pool.acquire().await.unwrap();
    insert(&mut fast, "fast", 1).await; // higher position, committed first

    let mut c = pool.acquire().await.unwrap();
    let naive = read_after_naive(&mut c, 0, 100).await.unwrap();
    assert_eq!(naive.iter().map(|e| e.aggregate_id.as_str()).collect::<Vec<_>>(), ["fast"]);
    let naive_checkpoint = naive.last().unwrap().global_position;
    let tracked = read_after(&mut c, Position::START, 100).await.unwrap();
    assert!(tracked.is_empty(), "the tracking reader waits for the open transaction");

    slow.commit().await.unwrap();
    let naive_after = read_after_naive(&mut c, naive_checkpoint, 100).await.unwrap();
    assert!(naive_after.is_empty(), "the naive reader never sees the slow event: it is lost");
    // The guard is cluster-wide: a short transaction of some other session may hold it back for a
    // moment, never reorder it.
    let mut tracked = Vec::new();
    for _ in 0..200 {
        tracked = read_after(&mut c, Position::START, 100).await.unwrap();
        if tracked.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(tracked.iter().map(|e| e.aggregate_id.as_str()).collect::<Vec<_>>(), ["slow", "fast"]);
    drop(c);
    drop(fast);
    pool.close().await;
    db.drop_db().await.unwrap();
}

async fn committed(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(pool).await.unwrap()
}

const WRITERS: usize = 12;
const AGGREGATES_PER_WRITER: usize = 10;
const EVENTS_PER_AGGREGATE: i64 = 20;

/// Checks what a reader delivered: no event twice, every event, each aggregate in sequence.
fn assert_every_event_once_in_order(delivered: &[(String, i64)], expected: usize, reader: &str) {
    let unique: HashSet<&(String, i64)> = delivered.iter().collect();
    assert_eq!(unique.len(), delivered.len(), "no event delivered twice to {reader}");
    assert_eq!(delivered.len(), expected, "every event delivered to {reader}");
    let mut last_seq: HashMap<&str, i64> = HashMap::new();
    for (agg, seq) in delivered {
        let prev = last_seq.insert(agg, *seq).unwrap_or(0);
        assert_eq!(*seq, prev + 1, "events of {agg} delivered in sequence to {reader}");
    }
}

async fn writer(pool: PgPool, w: usize) {
    let mut next: HashMap<String, i64> = (0..AGGREGATES_PER_WRITER).map(|a| (format!("w{w}-a{a}"), 1)).collect();
    let total = AGGREGATES_PER_WRITER as i64 * EVENTS_PER_AGGREGATE;
    for _ in 0..total {
        let (agg, hold_ms) = {
            let mut rng = rand::rng();
            let open: Vec<&String> = next.iter().filter(|(_, s)| **s <= EVENTS_PER_AGGREGATE).map(|(k, _)| k).collect();
            let agg = open[rng.random_range(0..open.len())].clone();
            let hold = if rng.random_bool(0.2) { rng.random_range(10..50) } else { 0 };
            (agg, hold)
        };
        let seq = next[&agg];
        let mut tx = pool.begin().await.unwrap();
        insert(&mut tx, &agg, seq).await;
        if hold_ms > 0 {
            tokio::time::sleep(Duration::from_millis(hold_ms)).await;
        }
        tx.commit().await.unwrap();
        *next.get_mut(&agg).unwrap() += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tracking_reader_delivers_every_event_once_and_in_order_under_concurrent_writers() {
    let db = TestDb::create().await.unwrap();
    let pool = db.pool(WRITERS as u32 + 6).await.unwrap();
    let done = Arc::new(AtomicBool::new(false));

    let tracking = {
        let (pool, done) = (pool.clone(), done.clone());
        tokio::spawn(async move {
            let mut conn = pool.acquire().await.unwrap();
            let mut checkpoint = Position::START;
            let mut delivered: Vec<(String, i64)> = Vec::new();
            loop {
                let finished = done.load(Ordering::SeqCst);
                let batch = read_after(&mut conn, checkpoint, 50).await.unwrap();
                if let Some(last) = batch.last() {
                    checkpoint = last.position();
                }
                let empty = batch.is_empty();
                delivered.extend(batch.into_iter().map(|e| (e.aggregate_id, e.sequence)));
                // Other sessions of the cluster can hold the guard back for a moment: stop only once
                // the writers are done and everything committed has been read.
                if finished && empty && delivered.len() as i64 >= committed(&pool).await {
                    return delivered;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let naive = {
        let (pool, done) = (pool.clone(), done.clone());
        tokio::spawn(async move {
            let mut conn = pool.acquire().await.unwrap();
            let mut checkpoint = 0i64;
            let mut delivered = 0usize;
            loop {
                let finished = done.load(Ordering::SeqCst);
                let batch = read_after_naive(&mut conn, checkpoint, 50).await.unwrap();
                if let Some(last) = batch.last() {
                    checkpoint = last.global_position;
                }
                let empty = batch.is_empty();
                delivered += batch.len();
                // The naive reader has no guard to wait for: once it finds nothing, it is done.
                if finished && empty {
                    return delivered;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };

    let writers: Vec<_> = (0..WRITERS).map(|w| tokio::spawn(writer(pool.clone(), w))).collect();
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let delivered = tokio::time::timeout(Duration::from_secs(60), tracking)
        .await
        .expect("the tracking reader delivers every committed event")
        .unwrap();
    let naive_delivered = naive.await.unwrap();

    let expected = WRITERS * AGGREGATES_PER_WRITER * EVENTS_PER_AGGREGATE as usize;
    assert_every_event_once_in_order(&delivered, expected, "the tracking reader");
    assert!(
        naive_delivered < expected,
        "the naive reader should lose events in this scenario (it delivered {naive_delivered} of {expected})"
    );
    pool.close().await;
    db.drop_db().await.unwrap();
}

/// The tracking reader's query walks the `(tx_id, global_position)` index from the checkpoint,
/// also as the generic plan a prepared statement ends up with: a plan that scans and sorts the
/// table makes every batch cost the whole backlog, and catch-up quadratic.
#[tokio::test]
async fn the_tracking_read_is_served_by_the_index() {
    let db = TestDb::create().await.unwrap();
    let pool = db.pool(1).await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    // Enough rows (and statistics) that the planner would rather sort than walk a useless index.
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         SELECT 'probe', 'p' || (g / 10), g % 10 + 1, 'Probed', '1', '{}', '{}' FROM generate_series(0, 49999) g",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    sqlx::query("ANALYZE events").execute(&mut *conn).await.unwrap();
    sqlx::query("SET plan_cache_mode = force_generic_plan").execute(&mut *conn).await.unwrap();
    let sql = aisales_projections::events::read_after_sql();
    sqlx::query(&format!("PREPARE tracking_read(text, bigint, bigint) AS {sql}")).execute(&mut *conn).await.unwrap();
    let plan: Vec<String> =
        sqlx::query_scalar("EXPLAIN EXECUTE tracking_read('0', 0, 1000)").fetch_all(&mut *conn).await.unwrap();
    let plan = plan.join("\n");
    assert!(plan.contains("events_tx_position"), "the read must use the (tx_id, global_position) index:\n{plan}");
    assert!(!plan.contains("Sort"), "the read must not sort the table:\n{plan}");
    drop(conn);
    pool.close().await;
    db.drop_db().await.unwrap();
}

/// Projectors of one process share their reads through an [`EventFeed`]. Readers of different
/// paces and batch sizes, on a feed small enough that slow ones fall off its start and read for
/// themselves, each still get every event exactly once and every aggregate in sequence.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_sharing_a_feed_each_get_every_event_once_and_in_order() {
    let db = TestDb::create().await.unwrap();
    let pool = db.pool(WRITERS as u32 + 8).await.unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let feed = Arc::new(EventFeed::new(120));
    // (batch limit, pause between batches in ms)
    let paces = [(1000, 1), (7, 0), (50, 5), (300, 40)];
    let readers: Vec<_> = paces
        .iter()
        .map(|&(limit, pause)| {
            let (pool, done, feed) = (pool.clone(), done.clone(), feed.clone());
            tokio::spawn(async move {
                let mut conn = pool.acquire().await.unwrap();
                let mut checkpoint = Position::START;
                let mut delivered: Vec<(String, i64)> = Vec::new();
                loop {
                    let finished = done.load(Ordering::SeqCst);
                    let batch = feed.read_after(&mut conn, checkpoint, limit).await.unwrap();
                    assert!(batch.len() <= limit as usize, "a batch never exceeds its limit");
                    if let Some(last) = batch.last() {
                        assert!(last.position() > checkpoint);
                        checkpoint = last.position();
                    }
                    delivered.extend(batch.iter().map(|e| (e.aggregate_id.clone(), e.sequence)));
                    if finished && batch.is_empty() && delivered.len() as i64 >= committed(&pool).await {
                        return delivered;
                    }
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
            })
        })
        .collect();

    let writers: Vec<_> = (0..WRITERS).map(|w| tokio::spawn(writer(pool.clone(), w))).collect();
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let expected = WRITERS * AGGREGATES_PER_WRITER * EVENTS_PER_AGGREGATE as usize;
    for (reader, pace) in readers.into_iter().zip(paces) {
        let delivered = tokio::time::timeout(Duration::from_secs(60), reader)
            .await
            .expect("every reader delivers every committed event")
            .unwrap();
        assert_every_event_once_in_order(&delivered, expected, &format!("the reader {pace:?}"));
    }
    pool.close().await;
    db.drop_db().await.unwrap();
}
