//! The event store: commands, optimistic concurrency, snapshots, positions.

use aisales::store::{EventMetadata, EventStore, ExecuteError};
use aisales::testkit::{Counter, CounterCommand, CounterError, TestDb};

fn meta() -> EventMetadata {
    EventMetadata::system(Some(uuid::Uuid::now_v7()), "test")
}

#[tokio::test]
async fn commands_append_events_with_metadata_and_positions() {
    let db = TestDb::create().await.unwrap();
    let pool = db.pool(5).await.unwrap();
    let store = EventStore::new(pool.clone());
    let m = meta();
    let out = store.execute::<Counter>("c-1", CounterCommand::Open, &(), &m).await.unwrap();
    let first = out.committed.unwrap();
    assert_eq!((first.first_sequence, first.last_sequence), (1, 1));
    let out = store.execute::<Counter>("c-1", CounterCommand::Increment { by: 5 }, &(), &m).await.unwrap();
    let second = out.committed.unwrap();
    assert!(second.position > first.position, "positions grow: {first:?} {second:?}");
    assert_eq!(out.state.total, 5);

    let err = store.execute::<Counter>("c-1", CounterCommand::Open, &(), &m).await.unwrap_err();
    assert!(matches!(err, ExecuteError::Rejected(CounterError::AlreadyOpen)), "{err:?}");

    let (tenant, meta_json): (Option<uuid::Uuid>, String) =
        sqlx::query_as("SELECT tenant_id, metadata::text FROM events WHERE aggregate_id = 'c-1' AND sequence = 2")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(tenant, m.tenant_id);
    let map: std::collections::HashMap<String, String> = serde_json::from_str(&meta_json).unwrap();
    assert_eq!(EventMetadata::from_map(&map).correlation_id, m.correlation_id);
    assert_eq!(map["actor"], "test");

    // The rejected command wrote nothing.
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&pool).await.unwrap();
    assert_eq!(count, 2);
    // postgres-es reads the same stream.
    let envelopes = store.load_events::<Counter>("c-1").await.unwrap();
    assert_eq!(envelopes.len(), 2);
    assert_eq!(envelopes[1].metadata["actor"], "test");
    db.drop_db().await.unwrap();
}

#[tokio::test]
async fn snapshots_load_the_same_state_as_the_full_stream() {
    let db = TestDb::create().await.unwrap();
    let pool = db.pool(5).await.unwrap();
    let store = EventStore::new(pool.clone());
    let m = meta();
    store.execute::<Counter>("s-1", CounterCommand::Open, &(), &m).await.unwrap();
    for i in 1..=130 {
        store.execute::<Counter>("s-1", CounterCommand::Increment { by: i }, &(), &m).await.unwrap();
    }
    let (snap_seq, payload): (i64, serde_json::Value) =
        sqlx::query_as("SELECT last_sequence, payload FROM aggregate_snapshots WHERE aggregate_id = 's-1'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(snap_seq, 100, "snapshot every 50 events, the last at 100");
    // The snapshot holds exactly the state after event 100: no event applied twice.
    let at_100: Counter = serde_json::from_value(payload).unwrap();
    assert_eq!(at_100.increments, 99);
    assert_eq!(at_100.total, (1..=99).sum::<i64>());

    let loaded = store.load::<Counter>("s-1").await.unwrap();
    let mut folded = Counter::default();
    for e in store.load_events::<Counter>("s-1").await.unwrap() {
        cqrs_es::Aggregate::apply(&mut folded, e.payload);
    }
    assert_eq!(loaded.sequence, 131);
    assert_eq!(loaded.state, folded);
    assert_eq!(folded.total, (1..=130).sum::<i64>());

    // A snapshot of another state version is ignored, not trusted.
    sqlx::query("UPDATE aggregate_snapshots SET state_version = 99, payload = '{\"opened\":true,\"total\":-1,\"increments\":0}'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(store.load::<Counter>("s-1").await.unwrap().state, folded);
    db.drop_db().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commands_on_one_aggregate_all_land_once() {
    let db = TestDb::create().await.unwrap();
    let pool = db.pool(20).await.unwrap();
    let store = EventStore::new(pool.clone());
    let m = meta();
    store.execute::<Counter>("hot", CounterCommand::Open, &(), &m).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let store = store.clone();
        let m = m.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                store.execute::<Counter>("hot", CounterCommand::Increment { by: 1 }, &(), &m).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let loaded = store.load::<Counter>("hot").await.unwrap();
    assert_eq!(loaded.state.total, 120);
    assert_eq!(loaded.sequence, 121);
    let seqs: Vec<i64> =
        sqlx::query_scalar("SELECT sequence FROM events WHERE aggregate_id = 'hot' ORDER BY tx_id, global_position")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(seqs, (1..=121).collect::<Vec<_>>(), "per-aggregate order holds in the global order");
    db.drop_db().await.unwrap();
}

#[tokio::test]
async fn a_stored_older_event_version_loads_through_its_upcaster() {
    use aisales_domain::conversation::{Conversation, ConversationEvent};
    let db = TestDb::create().await.unwrap();
    let pool = db.pool(5).await.unwrap();
    let store = EventStore::new(pool.clone());
    let id = uuid::Uuid::now_v7();
    let tenant = uuid::Uuid::now_v7();
    // Events as a version-1 writer stored them (MessageReceived had no `kind` or `reply_to`).
    let started = format!(
        r#"{{"ConversationStarted":{{"tenant_id":"{tenant}","channel":"telegram","account_id":"{tenant}","chat_id":"42","customer_id":"{tenant}","customer_name":"Ann","customer_phone":null,"started_at":"2026-11-01T10:00:00Z"}}}}"#
    );
    let v1 = r#"{"MessageReceived":{"message_id":"01a21a96-a2c1-71ff-b897-f6ca13d9ee53","provider_message_id":"42:7","text":"Привет","attachments":[],"sender_name":"Ann","sent_at":"2026-11-01T10:00:00Z","received_at":"2026-11-01T10:00:01Z"}}"#;
    for (seq, ty, ver, payload) in [(1, "ConversationStarted", "1", started.as_str()), (2, "MessageReceived", "1", v1)]
    {
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, tenant_id) \
             VALUES ('conversation', $1, $2, $3, $4, $5::json, '{}', $6)",
        )
        .bind(id.to_string())
        .bind(seq)
        .bind(ty)
        .bind(ver)
        .bind(payload)
        .bind(tenant)
        .execute(&pool)
        .await
        .unwrap();
    }
    let loaded = store.load::<Conversation>(&id.to_string()).await.unwrap();
    assert_eq!(loaded.sequence, 2);
    assert_eq!(loaded.state.messages, 1);
    let envelopes = store.load_events::<Conversation>(&id.to_string()).await.unwrap();
    match &envelopes[1].payload {
        ConversationEvent::MessageReceived { kind, reply_to, .. } => {
            assert_eq!((kind.as_str(), reply_to), ("text", &None))
        }
        other => panic!("{other:?}"),
    }
    // The read models read it too.
    let list = aisales_projections::conversation::ConversationList::new(aisales_projections::Target::LIVE);
    // (Transactions open elsewhere in the cluster hold the readable head back for a moment.)
    let mut applied = 0;
    for _ in 0..200 {
        applied += aisales_projections::apply_next_batch(&pool, &list, None).await.unwrap().applied;
        if applied >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(applied, 2);
    let preview: String =
        sqlx::query_scalar("SELECT last_message_preview FROM rm_conversations").fetch_one(&pool).await.unwrap();
    assert_eq!(preview, "Привет");
    pool.close().await;
    db.drop_db().await.unwrap();
}

/// Two processes write one conversation, each with its own cached copy: a command decided on a
/// copy that is behind never lands on it, and refusals and no-ops are decided on the stored state.
#[tokio::test]
async fn commands_on_a_stale_cached_copy_are_decided_again_on_the_stored_state() {
    use aisales_domain::conversation::{Conversation, ConversationCommand as C, Decision, SuggestionStatus};
    use uuid::Uuid;

    use crate::readmodels::{drafted, inbound};

    let db = TestDb::create().await.unwrap();
    let pool = db.pool(5).await.unwrap();
    let (a, b) = (EventStore::new(pool.clone()), EventStore::new(pool.clone()));
    let m = meta();
    let (tenant, account, customer) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let id = Uuid::now_v7().to_string();
    let msg = |p: &str| C::ReceiveMessage(inbound(tenant, account, customer, p, "Нужна АКПП"));

    // A starts the conversation and keeps a copy; B drafts a suggestion behind A's back.
    let started = a.execute::<Conversation>(&id, msg("m1"), &(), &m).await.unwrap();
    let request = started.state.pending_request.expect("a draft is wanted");
    let draft = drafted(request, Decision::NeedApproval);
    let suggestion = draft.suggestion_id;
    b.execute::<Conversation>(&id, C::RecordSuggestion(draft), &(), &m).await.unwrap();

    // A's copy does not know the suggestion (it would refuse); the stored state does.
    let approve = C::Approve { suggestion_id: suggestion, reply_id: Uuid::now_v7(), send_after: chrono::Utc::now() };
    let out = a.execute::<Conversation>(&id, approve, &(), &m).await.unwrap();
    assert!(out.committed.is_some());
    assert_eq!(out.state.suggestions[&suggestion].status, SuggestionStatus::Approved);

    // B's copy is behind the approval: its append conflicts and the message lands once, after it.
    let out = b.execute::<Conversation>(&id, msg("m2"), &(), &m).await.unwrap();
    let landed = out.committed.expect("stored");
    // A's copy lacks m2: deciding on it would store m2 twice; decided again, it is a duplicate.
    let out = a.execute::<Conversation>(&id, msg("m2"), &(), &m).await.unwrap();
    assert!(out.committed.is_none(), "a duplicate stores nothing");
    assert_eq!(out.sequence, landed.last_sequence);

    // A no-op on a stale copy: A's copy has a draft in progress, B records that drafting failed;
    // asking A for a new draft must not be swallowed by the copy.
    let pending = out.state.pending_request.expect("m2 asked for a draft");
    b.execute::<Conversation>(&id, C::FailSuggestion { request_id: pending, reason: "timeout".into() }, &(), &m)
        .await
        .unwrap();
    let ask =
        C::RequestSuggestion { request_id: Uuid::now_v7(), trigger_message_id: Uuid::now_v7(), at: chrono::Utc::now() };
    let out = a.execute::<Conversation>(&id, ask, &(), &m).await.unwrap();
    assert!(out.committed.is_some(), "the stored state has no draft in progress");

    // What is stored: each provider message once, gapless sequences, and the same state as a load.
    let received: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id = $1 AND event_type = 'MessageReceived'")
            .bind(&id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(received, 2);
    let seqs: Vec<i64> = sqlx::query_scalar("SELECT sequence FROM events WHERE aggregate_id = $1 ORDER BY sequence")
        .bind(&id)
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    let loaded = EventStore::with_cache_capacity(pool.clone(), 0).load::<Conversation>(&id).await.unwrap();
    assert_eq!(loaded.state, out.state);
    assert_eq!(loaded.sequence, out.sequence);
    db.drop_db().await.unwrap();
}

/// The store's held connections are reused after a statement that finished, also with an error
/// Postgres reported, and never after a statement that was abandoned half-way.
#[tokio::test]
async fn held_connections_are_reused_only_after_a_finished_statement() {
    use aisales::infra::db::HeldConnections;
    let db = TestDb::create().await.unwrap();
    let pool = db.pool(4).await.unwrap();
    let held = HeldConnections::for_pool(&pool);
    let backend = |r: &sqlx::Result<i32>| *r.as_ref().unwrap();
    async fn pid(c: &mut sqlx::PgConnection) -> sqlx::Result<i32> {
        sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(c).await
    }

    let mut c = held.acquire().await.unwrap().unwrap();
    let r = pid(&mut c).await;
    c.finished(&r);
    let first = backend(&r);
    drop(c);

    // Reused after success, and after an error Postgres reported; the connection still works.
    let mut c = held.acquire().await.unwrap().unwrap();
    let r = pid(&mut c).await;
    assert_eq!(backend(&r), first, "reused after a statement that succeeded");
    let err = sqlx::query_scalar::<_, i32>("SELECT 1 / 0").fetch_one(&mut *c).await;
    assert!(matches!(err, Err(sqlx::Error::Database(_))), "{err:?}");
    c.finished(&err);
    drop(c);
    let mut c = held.acquire().await.unwrap().unwrap();
    let r = pid(&mut c).await;
    assert_eq!(backend(&r), first, "reused after an error Postgres reported");

    // One held connection for a pool of four, and it is in use: the caller is told to use the pool.
    assert!(held.acquire().await.is_none());

    // A statement abandoned half-way (its future dropped) closes the connection.
    let abandoned =
        tokio::time::timeout(std::time::Duration::from_millis(100), sqlx::query("SELECT pg_sleep(2)").execute(&mut *c))
            .await;
    assert!(abandoned.is_err(), "the statement was still running");
    drop(c);
    let mut c = held.acquire().await.unwrap().unwrap();
    let r = pid(&mut c).await;
    c.finished(&r);
    let second = backend(&r);
    assert_ne!(second, first, "a connection with a half-read answer is never handed out again");
    drop(c);

    // A session the server ends (FATAL before it hangs up, as on a restart) is not reused either.
    sqlx::query("SELECT pg_terminate_backend($1)").bind(second).execute(&pool).await.unwrap();
    let mut c = held.acquire().await.unwrap().unwrap();
    let r = pid(&mut c).await;
    // Postgres reports it as a database error (57P01, FATAL), which alone would count as finished.
    assert!(
        matches!(&r, Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("57P01")),
        "the terminated session answers no more: {r:?}"
    );
    c.finished(&r);
    drop(c);
    let mut c = held.acquire().await.unwrap().unwrap();
    let r = pid(&mut c).await;
    c.finished(&r);
    assert!(r.is_ok(), "{r:?}");
    assert_ne!(backend(&r), second, "the terminated session is not handed out again");
    drop(c);

    // Every store of a process on this database shares the one set.
    assert!(std::sync::Arc::ptr_eq(&held, &HeldConnections::for_pool(&pool)));
    pool.close().await;
    db.drop_db().await.unwrap();
}

/// Opening a held connection is bounded like an acquire from the pool: a server that accepts the
/// connection and never answers is reported as a timeout, not waited on.
#[tokio::test]
async fn opening_a_held_connection_is_bounded_by_the_acquire_timeout() {
    use aisales::infra::db::HeldConnections;
    use std::time::{Duration, Instant};
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let accepted = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let opts = sqlx::postgres::PgConnectOptions::new().host("127.0.0.1").port(port).username("aisales");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_millis(300))
        .connect_lazy_with(opts);
    let held = HeldConnections::for_pool(&pool);
    let started = Instant::now();
    let outcome =
        tokio::time::timeout(Duration::from_secs(30), held.acquire()).await.expect("acquire gave up by itself");
    assert!(matches!(outcome, Some(Err(sqlx::Error::PoolTimedOut))), "{:?}", outcome.map(|r| r.err()));
    assert!(started.elapsed() >= Duration::from_millis(300));
    accepted.abort();
}

#[tokio::test]
async fn appends_written_together_share_a_transaction_and_keep_their_own_outcomes() {
    use aisales::store::{Append, StoreError};
    use aisales::testkit::CounterEvent as E;

    let db = TestDb::create().await.unwrap();
    let pool = db.pool(5).await.unwrap();
    let store = EventStore::new(pool.clone());
    let m = meta();
    store.execute::<Counter>("t-1", CounterCommand::Open, &(), &m).await.unwrap();
    let append = |id: &str, expected: i64, events: &[E]| Append::of::<Counter>(id, expected, events, &m).unwrap();

    let out = store
        .append_together(vec![
            append("t-2", 0, &[E::Opened, E::Incremented { by: 3 }]),
            append("t-1", 1, &[E::Incremented { by: 2 }]),
            append("t-0", 0, &[E::Opened]),
        ])
        .await;
    let committed: Vec<_> = out.into_iter().map(Result::unwrap).collect();
    let sequences: Vec<_> = committed.iter().map(|c| (c.first_sequence, c.last_sequence)).collect();
    assert_eq!(sequences, [(1, 2), (2, 2), (1, 1)], "outcomes in the order asked");
    assert!(
        committed.iter().all(|c| c.position.tx_id == committed[0].position.tx_id),
        "one transaction: {committed:?}"
    );
    // Each outcome points at the last event of its own append.
    for (id, c) in ["t-2", "t-1", "t-0"].iter().zip(&committed) {
        let at: i64 =
            sqlx::query_scalar("SELECT global_position FROM events WHERE aggregate_id = $1 AND sequence = $2")
                .bind(id)
                .bind(c.last_sequence)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(at, c.position.global_position, "{id}");
    }

    // t-1 is at 2 now: an append expecting 1 conflicts, and only that one fails.
    let out = store
        .append_together(vec![
            append("t-4", 0, &[E::Opened]),
            append("t-1", 1, &[E::Incremented { by: 100 }, E::Incremented { by: 100 }]),
            append("t-5", 0, &[E::Opened]),
        ])
        .await;
    assert!(out[0].is_ok() && out[2].is_ok(), "{out:?}");
    assert!(matches!(out[1], Err(StoreError::Conflict)), "{out:?}");
    let stored: Vec<(String, i64)> =
        sqlx::query_as("SELECT aggregate_id, count(*) FROM events GROUP BY aggregate_id ORDER BY aggregate_id")
            .fetch_all(&pool)
            .await
            .unwrap();
    let stored: Vec<(&str, i64)> = stored.iter().map(|(id, n)| (id.as_str(), *n)).collect();
    assert_eq!(stored, [("t-0", 1), ("t-1", 2), ("t-2", 2), ("t-4", 1), ("t-5", 1)]);
    let loaded = store.load::<Counter>("t-1").await.unwrap();
    assert_eq!((loaded.sequence, loaded.state.total), (2, 2));

    // Two appends to one aggregate, the second meant to follow the first: when the first fails,
    // the second fails with it, although on its own it would fit at sequence 3.
    let out = store
        .append_together(vec![
            append("t-1", 2, &[E::Incremented { by: 1000 }]),
            append("t-1", 1, &[E::Incremented { by: 100 }]),
            append("t-6", 0, &[E::Opened]),
        ])
        .await;
    assert!(matches!(out[1], Err(StoreError::Conflict)), "{out:?}");
    assert!(matches!(out[0], Err(StoreError::Conflict)), "{out:?}");
    assert_eq!(out[2].as_ref().unwrap().last_sequence, 1);
    let loaded = store.load::<Counter>("t-1").await.unwrap();
    assert_eq!((loaded.sequence, loaded.state.total), (2, 2));
    db.drop_db().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commands_written_in_batches_lose_nothing() {
    let db = TestDb::create().await.unwrap();
    let pool = db.pool(8).await.unwrap();
    let store = EventStore::new(pool.clone());
    let m = meta();
    store.execute::<Counter>("shared", CounterCommand::Open, &(), &m).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..64 {
        let (store, m) = (store.clone(), m.clone());
        tasks.spawn(async move {
            let id = format!("own-{i}");
            store.execute::<Counter>(&id, CounterCommand::Open, &(), &m).await.unwrap();
            for by in 1..=5 {
                store.execute::<Counter>(&id, CounterCommand::Increment { by }, &(), &m).await.unwrap();
                // A quarter of them also increment a counter they share: these conflict and retry.
                if i % 4 == 0 {
                    store.execute::<Counter>("shared", CounterCommand::Increment { by: 1 }, &(), &m).await.unwrap();
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let uncached = EventStore::with_cache_capacity(pool.clone(), 0);
    let shared = uncached.load::<Counter>("shared").await.unwrap();
    assert_eq!((shared.sequence, shared.state.total), (1 + 16 * 5, 16 * 5));
    for i in 0..64 {
        let own = uncached.load::<Counter>(&format!("own-{i}")).await.unwrap();
        assert_eq!((own.sequence, own.state.total), (6, 15), "own-{i}");
    }
    let gaps: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT sequence - lag(sequence) OVER (PARTITION BY aggregate_id ORDER BY sequence) AS d \
           FROM events) s WHERE d <> 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(gaps, 0);
    db.drop_db().await.unwrap();
}
