//! Customer-data sealing benchmark (`cargo bench --bench privacy`): what encrypting customer data
//! in events costs, measured side by side in one run.
//!
//! - **Ingest**: customer messages stored through the event store (the conversation aggregate's
//!   `ReceiveMessage`, as the webhook ingest runs it) by 32 concurrent writers over 1,000
//!   conversations, in rounds that alternate sealed and clear, on one database: messages/s of
//!   each mode (median of its rounds).
//! - **Catch-up**: two databases seeded with the same generated history (conversations with
//!   customer messages, drafts and replies), one sealed and one in clear; the `conversations`
//!   projector rebuilds each from event zero, alternating which goes first: events/s of each
//!   (median), and the median of each round's cost (the two rebuilds of a round side by side).
//!
//! Settings (environment): BENCH_ROUNDS (rounds per mode, default 7), BENCH_MESSAGES (messages per
//! ingest round, default 6000), BENCH_CONVERSATIONS (conversations per catch-up database, default
//! 1500, of 30 customer messages each), BENCH_KEEP_DB=1.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use aisales::store::{EventMetadata, EventStore};
use aisales::testkit::TestDb;
use aisales::testkit::history::{self, HistorySpec};
use aisales_domain::conversation::{ChannelKind, Conversation, ConversationCommand, Inbound, MessageKind};
use chrono::Utc;
use support::{env_or, report};
use uuid::Uuid;

const WRITERS: u64 = 32;
const CONVERSATIONS: u64 = 1_000;

fn inbound(tenant: Uuid, account: Uuid, customer: Uuid, n: u64, provider_id: &str) -> Box<Inbound> {
    Box::new(Inbound {
        tenant_id: tenant,
        channel: ChannelKind::GreenApi,
        account_id: account,
        chat_id: format!("7900{n:07}@c.us"),
        customer_id: customer,
        customer_name: Some("Ирина Петровна".into()),
        customer_phone: Some(format!("7900{n:07}")),
        message_id: Uuid::now_v7(),
        provider_message_id: provider_id.into(),
        text: "Здравствуйте! Нужна АКПП на Kia Rio 2015, пинается на второй передаче, сколько стоит?".into(),
        attachments: vec![],
        kind: MessageKind::Text,
        reply_to: None,
        sent_at: Utc::now(),
        received_at: Utc::now(),
        request_id: Uuid::now_v7(),
        debounce: chrono::Duration::zero(),
        vehicle_id: None,
        transmission_code: None,
    })
}

/// One ingest round: `messages` customer messages by [`WRITERS`] writers; messages/s.
async fn ingest_round(
    store: &EventStore,
    tenant: Uuid,
    account: Uuid,
    customers: &[Uuid],
    messages: u64,
    round: u64,
) -> f64 {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let writers: Vec<_> = (0..WRITERS)
        .map(|_| {
            let (store, next, customers) = (store.clone(), next.clone(), customers.to_vec());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= messages {
                        break;
                    }
                    let n = i % CONVERSATIONS;
                    let conversation = Uuid::from_u64_pair(tenant.as_u64_pair().0, n);
                    let meta = EventMetadata::system(Some(tenant), "customer");
                    let cmd = ConversationCommand::ReceiveMessage(inbound(
                        tenant,
                        account,
                        customers[n as usize],
                        n,
                        &format!("r{round}-m{i}"),
                    ));
                    store.execute::<Conversation>(&conversation.to_string(), cmd, &(), &meta).await.expect("stored");
                }
            })
        })
        .collect();
    for w in writers {
        w.await.expect("writer");
    }
    messages as f64 / started.elapsed().as_secs_f64()
}

/// Seeds `conversations` generated conversations into `db` (sealed or not); returns the number of
/// events.
async fn seeded(db: &TestDb, conversations: u64, sealed: bool) -> anyhow::Result<u64> {
    aisales_projections::pii::set_sealing(sealed);
    let (tenant, account) = support::tenant_with_account(&db.pool(4).await?).await?;
    let store = EventStore::new(db.pool(8).await?);
    let spec = HistorySpec::new(tenant, account, 30);
    let mut events = 0;
    for n in 0..conversations {
        events += history::seed_conversation(&store, &spec, n).await?.1 as u64;
    }
    aisales_projections::pii::set_sealing(true);
    Ok(events)
}

/// Rebuilds the `conversations` projector of `db` from zero; events/s.
async fn catch_up(db: &TestDb, shop: &support::Shop, events: u64) -> anyhow::Result<f64> {
    let pool = db.pool(8).await?;
    let projectors = aisales::projection::registry::all(&shop.settings, &pool, &shop.redis);
    // Each rebuild starts with no dirty pages left by the one before (the other mode's).
    support::checkpoint(&pool).await;
    let started = Instant::now();
    aisales::projection::ops::rebuild(&pool, &projectors, "conversations", true).await?;
    Ok(events as f64 / started.elapsed().as_secs_f64())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rounds: u64 = env_or("BENCH_ROUNDS", 7);
    let messages: u64 = env_or("BENCH_MESSAGES", 6_000);
    let conversations: u64 = env_or("BENCH_CONVERSATIONS", 1500);

    // Ingest, alternating sealed and clear rounds on one database.
    let db = TestDb::create().await?;
    println!("database {}", db.name);
    let shop = support::shop(&db).await?;
    let (tenant, account) = support::tenant_with_account(&shop.pool).await?;
    let store = EventStore::new(shop.pool.clone());
    let customers: Vec<Uuid> = (0..CONVERSATIONS).map(|_| Uuid::now_v7()).collect();
    // Warm-up: every conversation started (and its key made) before measuring.
    ingest_round(&store, tenant, account, &customers, CONVERSATIONS, 0).await;
    let (mut sealed, mut clear) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        for on in [true, false] {
            aisales_projections::pii::set_sealing(on);
            support::checkpoint(&shop.pool).await;
            let rate = ingest_round(&store, tenant, account, &customers, messages, 1 + r * 2 + u64::from(on)).await;
            println!("ingest round {r} {}: {rate:.0} messages/s", if on { "sealed" } else { "clear" });
            if on { sealed.push(rate) } else { clear.push(rate) }
        }
    }
    aisales_projections::pii::set_sealing(true);
    let (sealed, clear) = (median(sealed), median(clear));
    report("ingest sealed (messages/s)", format!("{sealed:.0}"));
    report("ingest clear (messages/s)", format!("{clear:.0}"));
    report("ingest cost of sealing", format!("{:.1} %", (1.0 - sealed / clear) * 100.0));
    support::keep_or_drop(db).await?;

    // Catch-up over the same history, sealed and in clear.
    let sealed_db = TestDb::create().await?;
    let clear_db = TestDb::create().await?;
    let events = seeded(&sealed_db, conversations, true).await?;
    let clear_events = seeded(&clear_db, conversations, false).await?;
    println!("catch-up: {events} sealed events, {clear_events} clear events");
    let (mut sealed_rates, mut clear_rates, mut costs) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..rounds {
        // Which database goes first alternates, so neither profits from the other's aftermath.
        let (s, c) = if r % 2 == 0 {
            let s = catch_up(&sealed_db, &shop, events).await?;
            (s, catch_up(&clear_db, &shop, clear_events).await?)
        } else {
            let c = catch_up(&clear_db, &shop, clear_events).await?;
            (catch_up(&sealed_db, &shop, events).await?, c)
        };
        println!(
            "catch-up round {r}: sealed {s:.0} events/s, clear {c:.0} events/s, cost {:.1} %",
            (1.0 - s / c) * 100.0
        );
        sealed_rates.push(s);
        clear_rates.push(c);
        costs.push(1.0 - s / c);
    }
    let (s, c) = (median(sealed_rates), median(clear_rates));
    report("catch-up sealed (events/s)", format!("{s:.0}"));
    report("catch-up clear (events/s)", format!("{c:.0}"));
    report("catch-up cost of sealing", format!("{:.1} %", (1.0 - s / c) * 100.0));
    report("catch-up cost of sealing, median of rounds", format!("{:.1} %", median(costs) * 100.0));
    support::keep_or_drop(sealed_db).await?;
    support::keep_or_drop(clear_db).await?;
    Ok(())
}
