//! Event store and projections benchmark (`cargo bench --bench event_store`).
//!
//! On a fresh database of its own, in one run:
//! 1. pgbench: single-row INSERTs at 32 clients, the machine's baseline;
//! 2. appends: 32 concurrent writers, each running commands on its own trivial aggregate through
//!    the event store (load + decide + append, one event per command);
//! 3. one command on a conversation that already holds 10,000 events (sequential, latency);
//! 4. a backlog of at least 1,000,000 conversation events (generated through the real aggregate),
//!    then the `aisales projector` process catching up on it from zero: events/s until every
//!    read model is at the head;
//! 5. `aisales projections rebuild NAME` of every read model on that backlog.
//!
//! Settings (environment): BENCH_SECONDS (default 15), BENCH_BACKLOG_EVENTS (default 1000000; 0 stops
//! after step 3),
//! BENCH_KEEP_DB=1 keeps the database for inspection.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aisales::store::{EventMetadata, EventStore};
use aisales::testkit::history::{self, HistorySpec};
use aisales::testkit::{Counter, CounterCommand, TestDb};
use aisales_domain::conversation::{ChannelKind, Conversation, ConversationCommand, Inbound};
use support::{Aisales, Summary, env_or, report};
use uuid::Uuid;

const WRITERS: usize = 32;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u32 = env_or("BENCH_SECONDS", 15);
    let backlog: u64 = env_or("BENCH_BACKLOG_EVENTS", 1_000_000);
    let db = TestDb::create().await?;
    println!("database {}", db.name);

    let pool = db.pool(WRITERS as u32).await?;

    // 1. Baseline.
    support::checkpoint(&pool).await;
    let pg = support::pgbench_insert(&db.url, WRITERS as u32, seconds).await?;
    report("pgbench single-row INSERT, 32 clients", format!("{:.0} tx/s (avg {:.2} ms)", pg.tps, pg.latency_ms));

    // 2. Appends at 32 writers.
    support::checkpoint(&pool).await;
    let store = EventStore::new(pool.clone());
    let meta = EventMetadata::system(None, "bench");
    for w in 0..WRITERS {
        store.execute::<Counter>(&format!("bench-{w}"), CounterCommand::Open, &(), &meta).await?;
    }
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds.into());
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let (store, meta, done) = (store.clone(), meta.clone(), done.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let id = format!("bench-{w}");
            while Instant::now() < deadline {
                let t = Instant::now();
                store.execute::<Counter>(&id, CounterCommand::Increment { by: 1 }, &(), &meta).await?;
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(latencies)
        });
    }
    let mut latencies = Vec::new();
    while let Some(r) = tasks.join_next().await {
        latencies.extend(r??);
    }
    let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    report(
        "event-store appends, 32 writers",
        format!("{rate:.0} commands/s = {:.0}% of pgbench; {}", 100.0 * rate / pg.tps, Summary::of(&mut latencies)),
    );

    // 3. One command on a conversation of 10,000 events.
    let (tenant, account) = support::tenant_with_account(&pool).await?;
    let mut spec = HistorySpec::new(tenant, account, 3_000);
    spec.append_batch = 1_000;
    let (identity, events) = history::seed_conversation(&store, &spec, 9_999_999).await?;
    let long_id = identity.conversation_id.to_string();
    let mut extra = 0;
    while events + extra < 10_000 {
        receive(&store, &spec, identity, extra as u64).await?;
        extra += 1;
    }
    // As a process that has the conversation cached, and as one that loads it for every command
    // (snapshot + newer events).
    let uncached = EventStore::with_cache_capacity(pool.clone(), 0);
    for (name, store, from) in [("cached", &store, 100_000u64), ("loaded each time", &uncached, 200_000)] {
        let mut samples = Vec::new();
        for k in 0..1_000u64 {
            let t = Instant::now();
            receive(store, &spec, identity, from + k).await?;
            samples.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let held = store.load::<Conversation>(&long_id).await?.sequence;
        report(
            &format!("command on a 10,000+ event conversation, {name}"),
            format!("{} (now {held} events)", Summary::of(&mut samples)),
        );
    }

    // 4. Backlog and catch-up.
    if backlog == 0 {
        pool.close().await;
        return support::keep_or_drop(db).await;
    }
    let mut spec = HistorySpec::new(tenant, account, 100);
    spec.append_batch = 500;
    let seeded = Instant::now();
    let head: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&pool).await?;
    let target = head + backlog as i64;
    let next = Arc::new(AtomicU64::new(0));
    let total = Arc::new(AtomicU64::new(head as u64));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (store, spec, next, total) = (store.clone(), spec.clone(), next.clone(), total.clone());
        tasks.spawn(async move {
            while (total.load(Ordering::Relaxed) as i64) < target {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let (_, events) = history::seed_conversation(&store, &spec, n).await?;
                total.fetch_add(events as u64, Ordering::Relaxed);
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&pool).await?;
    let conversations = next.load(Ordering::Relaxed);
    report(
        "backlog seeded",
        format!(
            "{stored} events ({} in {conversations} conversations) in {:.0} s ({:.0} events/s appended in batches)",
            stored - head,
            seeded.elapsed().as_secs_f64(),
            (stored - head) as f64 / seeded.elapsed().as_secs_f64()
        ),
    );
    sqlx::query("VACUUM ANALYZE events").execute(&pool).await?;

    let env = vec![
        ("DATABASE_URL", db.url.clone()),
        ("REDIS_URL", support::redis_url()),
        ("REDIS_PREFIX", format!("bench{}", Uuid::now_v7().simple())),
        ("METRICS_PORT", support::free_port().to_string()),
    ];
    let settings = aisales::config::Settings::for_tests(&[("DATABASE_URL", &db.url)]);
    let redis = aisales::infra::redis::Redis::new(&settings)?;
    let projectors: Vec<String> =
        aisales::projection::registry::all(&settings, &pool, &redis).iter().map(|p| p.name().to_string()).collect();
    let started = Instant::now();
    let projector = Aisales::spawn("projector", &["projector"], &env)?;
    support::wait_caught_up(&pool, &projectors, Duration::from_secs(1800)).await?;
    let took = started.elapsed().as_secs_f64();
    projector.stop();
    report(
        "projector catch-up from zero",
        format!(
            "{stored} events through {} projectors in {took:.1} s = {:.0} events/s",
            projectors.len(),
            stored as f64 / took
        ),
    );

    // 5. Rebuilds.
    let mut rebuild_total = 0.0;
    for name in &projectors {
        let out = Aisales::run(&["projections", "rebuild", name, "--json"], &env);
        match out {
            Ok(out) => {
                let r: serde_json::Value = serde_json::from_str(out.trim())?;
                let s = r["seconds"].as_f64().unwrap_or_default();
                rebuild_total += s;
                report(
                    &format!("rebuild {name}"),
                    format!("{s:.1} s ({:.0} events/s)", r["events_per_second"].as_f64().unwrap_or_default()),
                );
            }
            Err(e) if format!("{e:#}").contains("cannot be rebuilt") => {}
            Err(e) => return Err(e),
        }
    }
    report("rebuild of every read model, one after another", format!("{rebuild_total:.1} s"));

    pool.close().await;
    support::keep_or_drop(db).await?;
    Ok(())
}

/// One customer message on the conversation of `identity`.
async fn receive(
    store: &EventStore,
    spec: &HistorySpec,
    identity: aisales::application::identity::Identity,
    k: u64,
) -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    let inbound = Inbound {
        tenant_id: spec.tenant_id,
        channel: ChannelKind::GreenApi,
        account_id: spec.account_id,
        chat_id: history::chat_id(9_999_999),
        customer_id: identity.customer_id,
        customer_name: Some("Клиент".into()),
        customer_phone: None,
        message_id: Uuid::now_v7(),
        provider_message_id: format!("L{k}"),
        text: "Ещё вопрос по коробке".into(),
        attachments: vec![],
        kind: aisales_domain::conversation::MessageKind::Text,
        reply_to: None,
        sent_at: now,
        received_at: now,
        request_id: Uuid::now_v7(),
        debounce: chrono::Duration::seconds(3),
        vehicle_id: None,
        transmission_code: None,
    };
    let meta = EventMetadata::system(Some(spec.tenant_id), "bench");
    store
        .execute::<Conversation>(
            &identity.conversation_id.to_string(),
            ConversationCommand::ReceiveMessage(Box::new(inbound)),
            &(),
            &meta,
        )
        .await?;
    Ok(())
}
