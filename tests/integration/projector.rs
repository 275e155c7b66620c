//! The projector runtime under crashes and fail-over, run as real `aisales projector` processes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aisales::store::{EventMetadata, EventStore};
use aisales::testkit::{Counter, CounterCommand, TestDb};
use rand::Rng;
use sqlx::PgPool;

use crate::helpers::{ChildGuard, aisales, eventually};

fn projector_process(db: &TestDb) -> ChildGuard {
    let mut cmd = aisales(&db.url);
    cmd.arg("projector").env("PROJECTOR_BATCH_SIZE", "100").env("PROJECTOR_POLL_INTERVAL_MS", "50");
    ChildGuard::spawn(cmd)
}

/// A backlog of events written in one go, so the projector is busy with batches when killed.
async fn backlog(pool: &PgPool, events: i64) {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         SELECT 'counter', 'bulk-' || (g % 500), (g / 500) + 1, 'CounterIncremented', '1', '{\"Incremented\":{\"by\":1}}', '{}' \
           FROM generate_series(0, $1 - 1) g",
    )
    .bind(events)
    .execute(pool)
    .await
    .unwrap();
}

/// Live writers appending through the event store until `stop` is set.
fn live_writers(pool: &PgPool, stop: Arc<AtomicBool>) -> Vec<tokio::task::JoinHandle<u64>> {
    (0..4)
        .map(|w| {
            let store = EventStore::new(pool.clone());
            let stop = stop.clone();
            tokio::spawn(async move {
                let m = EventMetadata::system(None, "test");
                let mut n = 0;
                for a in 0..25 {
                    store.execute::<Counter>(&format!("live-{w}-{a}"), CounterCommand::Open, &(), &m).await.unwrap();
                    n += 1;
                }
                while !stop.load(Ordering::SeqCst) {
                    let a = rand::rng().random_range(0..25);
                    store
                        .execute::<Counter>(&format!("live-{w}-{a}"), CounterCommand::Increment { by: 1 }, &(), &m)
                        .await
                        .unwrap();
                    n += 1;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                n
            })
        })
        .collect()
}

async fn checkpoint_applied(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT COALESCE((SELECT events_applied FROM projector_checkpoints WHERE name = 'stream_stats'), 0)",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Waits until the projector has applied every event, then checks the read model against the log.
async fn assert_exact(pool: &PgPool) {
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(pool).await.unwrap();
    eventually(Duration::from_secs(60), "the projector to catch up", || async {
        (checkpoint_applied(pool).await == total).then_some(())
    })
    .await;
    let wrong: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT aggregate_type, aggregate_id, count(*) AS c, max(sequence) AS m FROM events GROUP BY 1, 2) e \
           FULL JOIN stream_stats s USING (aggregate_type, aggregate_id) \
          WHERE s.events IS DISTINCT FROM e.c OR s.last_sequence IS DISTINCT FROM e.m",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(wrong, 0, "every aggregate counted exactly once per event");
    let summed: i64 =
        sqlx::query_scalar("SELECT COALESCE(sum(events), 0)::bigint FROM stream_stats").fetch_one(pool).await.unwrap();
    assert_eq!(summed, total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn projector_killed_mid_batch_neither_loses_nor_double_applies() {
    let db = TestDb::create().await.unwrap();
    let pool = db.pool(10).await.unwrap();
    backlog(&pool, 60_000).await;
    let stop = Arc::new(AtomicBool::new(false));
    let writers = live_writers(&pool, stop.clone());

    let mut kills = 0;
    for _ in 0..6 {
        let mut p = projector_process(&db);
        let before = checkpoint_applied(&pool).await;
        // Let it get going, then kill it while it is applying batches.
        eventually(Duration::from_secs(30), "the projector to apply a batch", || async {
            (checkpoint_applied(&pool).await > before).then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(rand::rng().random_range(20..200))).await;
        p.kill();
        kills += 1;
    }
    assert_eq!(kills, 6);
    let applied_before_final = checkpoint_applied(&pool).await;
    let total_so_far: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&pool).await.unwrap();
    assert!(applied_before_final < total_so_far, "the kills happened while there was work left");

    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.await.unwrap();
    }
    let _final = projector_process(&db);
    assert_exact(&pool).await;
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_projector_process_takes_over_when_the_owner_dies() {
    let db = TestDb::create().await.unwrap();
    let pool = db.pool(10).await.unwrap();
    backlog(&pool, 30_000).await;
    let settings = aisales::config::Settings::for_tests(&[("DATABASE_URL", &db.url)]);
    let redis = aisales::infra::redis::Redis::new(&settings).unwrap();
    let projectors = aisales::projection::registry::all(&settings, &pool, &redis);
    let owner_of = |pool: PgPool, projectors: Vec<Arc<dyn aisales_projections::Projector>>| async move {
        aisales::projection::runtime::status(&pool, &projectors)
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.name == "stream_stats")
            .and_then(|s| s.owner)
    };

    let mut a = projector_process(&db);
    let a_pid = a.pid();
    // Generous bounds: the suite runs many processes on two cores, and a process start can take a
    // while; what matters is that ownership moves without loss or double application.
    eventually(Duration::from_secs(30), "process A to own the projector", || {
        let (pool, projectors) = (pool.clone(), projectors.clone());
        async move { owner_of(pool, projectors).await.filter(|o| o.ends_with(&format!(":{a_pid}"))) }
    })
    .await;
    let b = projector_process(&db);
    let b_pid = b.pid();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let owner = owner_of(pool.clone(), projectors.clone()).await.unwrap();
    assert!(owner.ends_with(&format!(":{a_pid}")), "A keeps ownership while alive, got {owner}");

    let stop = Arc::new(AtomicBool::new(false));
    let writers = live_writers(&pool, stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.kill();
    let killed_at = Instant::now();
    eventually(Duration::from_secs(30), "process B to take over", || {
        let (pool, projectors) = (pool.clone(), projectors.clone());
        async move { owner_of(pool, projectors).await.filter(|o| o.ends_with(&format!(":{b_pid}"))) }
    })
    .await;
    let takeover = killed_at.elapsed();
    assert!(takeover < Duration::from_secs(15), "takeover took {takeover:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.await.unwrap();
    }
    assert_exact(&pool).await;
    drop(b);
    pool.close().await;
}

/// Advisory locks belong to a database: a projector owned in another database of the same server
/// (staging next to production, or the test databases) is not an owner here.
#[tokio::test]
async fn ownership_is_read_from_this_database_only() {
    let here = TestDb::create().await.unwrap();
    let elsewhere = TestDb::create().await.unwrap();
    let pool = here.pool(2).await.unwrap();
    let other = elsewhere.pool(2).await.unwrap();
    let mut holder = other.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock($1, hashtext('stream_stats'))")
        .bind(aisales::projection::runtime::LEASE_SPACE)
        .execute(&mut *holder)
        .await
        .unwrap();
    let settings = aisales::config::Settings::for_tests(&[("DATABASE_URL", &here.url)]);
    let redis = aisales::infra::redis::Redis::new(&settings).unwrap();
    let projectors = aisales::projection::registry::all(&settings, &pool, &redis);
    let status = aisales::projection::runtime::status(&pool, &projectors).await.unwrap();
    let stream_stats = status.iter().find(|s| s.name == "stream_stats").unwrap();
    assert_eq!(stream_stats.owner, None, "the lock is held in another database");
    drop(holder);
    other.close().await;
    pool.close().await;
    crate::helpers::drop_database_in_background(here);
    crate::helpers::drop_database_in_background(elsewhere);
}
