//! Read models, live updates and audit replay: the API shows what the events say, at any point.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use aisales::store::{EventMetadata, EventStore};
use aisales_domain::conversation::{
    ChannelKind, Conversation, ConversationCommand as C, Decision, Drafted, Inbound, ReplyStatus, SuggestionStatus,
};
use chrono::Utc;
use rand::Rng;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{ChildGuard, TestApp, create_tenant, eventually};
use crate::helpers::{app_with, fast, tenant};

pub(crate) fn inbound(tenant: Uuid, account: Uuid, customer: Uuid, provider_id: &str, text: &str) -> Box<Inbound> {
    Box::new(Inbound {
        tenant_id: tenant,
        channel: ChannelKind::GreenApi,
        account_id: account,
        chat_id: format!(
            "7900{}@c.us",
            &customer.simple().to_string()[..7]
                .chars()
                .map(|c| if c.is_ascii_digit() { c } else { '5' })
                .collect::<String>()
        ),
        customer_id: customer,
        customer_name: Some("Клиент".into()),
        customer_phone: None,
        message_id: Uuid::now_v7(),
        provider_message_id: provider_id.into(),
        text: text.into(),
        attachments: vec![],
        kind: aisales_domain::conversation::MessageKind::Text,
        reply_to: None,
        sent_at: Utc::now(),
        received_at: Utc::now(),
        request_id: Uuid::now_v7(),
        debounce: chrono::Duration::zero(),
        vehicle_id: None,
        transmission_code: None,
    })
}

pub(crate) fn drafted(request_id: Uuid, decision: Decision) -> Box<Drafted> {
    Box::new(Drafted {
        request_id,
        suggestion_id: Uuid::now_v7(),
        text: "Здравствуйте! Пришлите VIN, пожалуйста.".into(),
        intent: "other".into(),
        confidence: 0.7,
        decision,
        explanations: vec!["test".into()],
        source: "ai".into(),
        model: Some("test".into()),
        autosend_block_reason: None,
        reply_id: Uuid::now_v7(),
        send_after: Utc::now(),
    })
}

/// Runs a command as an operator of `tenant`; returns the state and the position written.
async fn run(store: &EventStore, tenant: Uuid, id: Uuid, cmd: C) -> Option<(Conversation, String)> {
    let meta = EventMetadata::system(Some(tenant), "user:test");
    match store.execute::<Conversation>(&id.to_string(), cmd, &(), &meta).await {
        Ok(o) => o.committed.map(|c| (o.state, c.position.to_string())),
        Err(_) => None,
    }
}

fn strip(mut v: Value) -> Value {
    if let Value::Object(o) = &mut v {
        o.remove("replayed_to_sequence");
        o.remove("aggregate");
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_state_at_event_k_is_what_the_api_showed_right_after_it() {
    let app = app_with(&fast(&[])).await;
    app.start_background_except(&aisales::bus::Kind::ALL);
    let t = tenant(&app).await;
    let store = EventStore::new(app.pool.clone());
    let (account, customer, conversation) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let mut shown: BTreeMap<i64, Value> = BTreeMap::new();
    async fn observe(app: &TestApp, token: &str, conversation: Uuid, pos: String, shown: &mut BTreeMap<i64, Value>) {
        let v = app.get_json(&format!("/api/conversations/{conversation}?min_position={pos}"), token).await;
        shown.insert(v["sequence"].as_i64().unwrap(), v);
    }
    let (state, pos) =
        run(&store, t.id, conversation, C::ReceiveMessage(inbound(t.id, account, customer, "m1", "Здравствуйте")))
            .await
            .unwrap();
    observe(&app, t.owner(), conversation, pos, &mut shown).await;
    let request = state.pending_request.unwrap();
    let (state, pos) =
        run(&store, t.id, conversation, C::RecordSuggestion(drafted(request, Decision::NeedApproval))).await.unwrap();
    observe(&app, t.owner(), conversation, pos, &mut shown).await;
    let suggestion = *state.suggestions.keys().next().unwrap();
    let (_, pos) =
        run(&store, t.id, conversation, C::ReceiveMessage(inbound(t.id, account, customer, "m2", "Камри 2008")))
            .await
            .unwrap();
    observe(&app, t.owner(), conversation, pos, &mut shown).await;
    let refused =
        run(&store, t.id, conversation, C::RecordSuggestion(drafted(Uuid::nil(), Decision::NeedApproval))).await;
    assert!(refused.is_none(), "a result for an unknown request is refused");
    let loaded = store.load::<Conversation>(&conversation.to_string()).await.unwrap().state;
    let (state, pos) = run(
        &store,
        t.id,
        conversation,
        C::RecordSuggestion(drafted(loaded.pending_request.unwrap(), Decision::NeedApproval)),
    )
    .await
    .unwrap();
    observe(&app, t.owner(), conversation, pos, &mut shown).await;
    assert_eq!(state.suggestions[&suggestion].status, SuggestionStatus::Superseded);
    let pending = *state.suggestions.iter().find(|(_, s)| s.status == SuggestionStatus::Pending).unwrap().0;
    let (state, pos) = run(
        &store,
        t.id,
        conversation,
        C::Edit {
            suggestion_id: pending, reply_id: Uuid::now_v7(), text: "Исправлено".into(), send_after: Utc::now()
        },
    )
    .await
    .unwrap();
    observe(&app, t.owner(), conversation, pos, &mut shown).await;
    let reply = *state.replies.keys().next().unwrap();
    for cmd in [
        C::StartSend { reply_id: reply, at: Utc::now() },
        C::RecordSent { reply_id: reply, provider_message_id: "P1".into(), at: Utc::now(), reconciled: false },
        C::Escalate { reason: "test".into(), suggestion_id: None },
        C::Mute { muted: true },
        C::Resolve,
    ] {
        let (_, pos) = run(&store, t.id, conversation, cmd).await.unwrap();
        observe(&app, t.owner(), conversation, pos, &mut shown).await;
    }
    assert!(shown.len() >= 9, "{}", shown.len());
    for (k, api) in &shown {
        let replayed =
            app.get_json(&format!("/api/conversations/{conversation}/state?until_sequence={k}"), t.owner()).await;
        assert_eq!(replayed["replayed_to_sequence"], *k);
        assert_eq!(strip(replayed), *api, "state at event {k}");
    }
    // The same by instant: the state at the time of the last event equals the final state.
    let events = app.get_json(&format!("/api/conversations/{conversation}/events"), t.owner()).await;
    let last = events["items"].as_array().unwrap().last().unwrap().clone();
    let at = last["recorded_at"].as_str().unwrap();
    let by_time =
        app.get_json(&format!("/api/conversations/{conversation}/state?at={}", urlencode(at)), t.owner()).await;
    assert_eq!(strip(by_time), *shown.values().last().unwrap());
}

fn urlencode(s: &str) -> String {
    s.replace(':', "%3A").replace('+', "%2B")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_audit_log_shows_every_event_with_its_metadata_and_is_tenant_scoped() {
    let app = app_with(&fast(&[])).await;
    app.start_background_except(&aisales::bus::Kind::ALL);
    let t = tenant(&app).await;
    let other = create_tenant(&app.pool, "Other").await;
    let store = EventStore::new(app.pool.clone());
    let conversation = Uuid::now_v7();
    run(&store, t.id, conversation, C::ReceiveMessage(inbound(t.id, Uuid::now_v7(), Uuid::now_v7(), "m1", "Привет")))
        .await
        .unwrap();
    run(&store, t.id, conversation, C::Escalate { reason: "жалоба".into(), suggestion_id: None }).await.unwrap();
    let v = app.get_json(&format!("/api/conversations/{conversation}/events"), t.owner()).await;
    let items = v["items"].as_array().unwrap();
    let types: Vec<&str> = items.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["ConversationStarted", "MessageReceived", "SuggestionRequested", "ConversationEscalated", "StatusChanged"]
    );
    let e = &items[3];
    assert_eq!(e["sequence"], 4);
    assert_eq!(e["version"], "1");
    assert_eq!(e["payload"]["ConversationEscalated"]["reason"], "жалоба");
    assert_eq!(e["metadata"]["actor"], "user:test");
    assert_eq!(e["metadata"]["tenant_id"], t.id.to_string());
    assert!(e["metadata"]["correlation_id"].is_string() && e["recorded_at"].is_string() && e["position"].is_string());
    assert_eq!(items[1]["version"], "2");
    // Paging.
    let page =
        app.get_json(&format!("/api/conversations/{conversation}/events?after_sequence=2&limit=2"), t.owner()).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["next_after_sequence"], 4);
    // Operators have no audit permission; another tenant sees nothing.
    let r = app
        .request(
            Method::GET,
            &format!("/api/conversations/{conversation}/events"),
            Some(t.token(aisales::auth::Role::Operator)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    for path in [
        format!("/api/conversations/{conversation}/events"),
        format!("/api/conversations/{conversation}/state?until_sequence=2"),
    ] {
        let r = app.request(Method::GET, &path, Some(other.owner())).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    // The escalation shows in the escalations list of its tenant only.
    eventually(Duration::from_secs(10), "the escalation", || async {
        let v = crate::helpers::try_get(&app, "/api/escalations?status=open", t.owner()).await?;
        (v["items"].as_array()?.len() == 1).then_some(())
    })
    .await;
    let theirs = app.get_json("/api/escalations", other.owner()).await;
    assert_eq!(theirs["items"].as_array().unwrap().len(), 0);
    // The customers read model is a projector of its own: it may trail the escalations one.
    let customers = eventually(Duration::from_secs(10), "the customer", || async {
        let v = crate::helpers::try_get(&app, "/api/customers?q=клиент", t.owner()).await?;
        (v["items"].as_array()?.len() == 1).then_some(v)
    })
    .await;
    let cid = customers["items"][0]["id"].as_str().unwrap();
    assert_eq!(
        app.request(Method::GET, &format!("/api/customers/{cid}"), Some(other.owner())).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get_json("/api/customers", other.owner()).await["items"].as_array().unwrap().len(), 0);
    // So is the statistics one.
    eventually(Duration::from_secs(10), "the day's statistics", || async {
        let stats = crate::helpers::try_get(&app, "/api/stats/daily", t.owner()).await?;
        (stats["days"][0]["messages_in"] == 1 && stats["days"][0]["escalations"] == 1).then_some(())
    })
    .await;
    assert_eq!(app.get_json("/api/stats/daily", other.owner()).await["days"].as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_updates_stream_the_tenants_changes_and_resume_after_last_event_id() {
    let app = app_with(&fast(&[])).await;
    app.start_background_except(&aisales::bus::Kind::ALL);
    let t = tenant(&app).await;
    let other = create_tenant(&app.pool, "Other").await;
    let store = EventStore::new(app.pool.clone());
    let mut stream = app.request(Method::GET, "/api/events/stream", Some(t.owner())).send().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(stream.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let mut theirs = app.request(Method::GET, "/api/events/stream", Some(other.owner())).send().await.unwrap();

    let conversation = Uuid::now_v7();
    run(&store, t.id, conversation, C::ReceiveMessage(inbound(t.id, Uuid::now_v7(), Uuid::now_v7(), "m1", "Привет")))
        .await
        .unwrap();
    let mut text = String::new();
    let mut last_id = String::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(chunk) = stream.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if text.contains("event: conversation") && text.contains("event: message") {
                break;
            }
        }
    })
    .await
    .expect("changes arrive on the stream");
    for line in text.lines() {
        if let Some(id) = line.strip_prefix("id:") {
            last_id = id.trim().to_string();
        }
    }
    assert!(text.contains(&conversation.to_string()));
    assert!(!last_id.is_empty());
    // The other tenant's stream carries nothing of this tenant.
    let other_text = tokio::time::timeout(Duration::from_millis(800), theirs.chunk()).await;
    if let Ok(Ok(Some(chunk))) = other_text {
        assert!(!String::from_utf8_lossy(&chunk).contains(&conversation.to_string()));
    }
    drop(stream);

    // Missed while disconnected, received after reconnecting with Last-Event-ID.
    run(&store, t.id, conversation, C::Mute { muted: true }).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut resumed = app
        .request(Method::GET, "/api/events/stream", Some(t.owner()))
        .header("last-event-id", &last_id)
        .send()
        .await
        .unwrap();
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(chunk) = resumed.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if text.contains("event: conversation") {
                break;
            }
        }
    })
    .await
    .expect("the missed change arrives after resuming");
    let first_id: i64 = text.lines().find_map(|l| l.strip_prefix("id:")).unwrap().trim().parse().unwrap();
    assert!(first_id > last_id.parse::<i64>().unwrap());
    let bad = app
        .request(Method::GET, "/api/events/stream", Some(t.owner()))
        .header("last-event-id", "abc")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

/// Change ids come from a sequence, so a projector transaction holding a lower id can commit after
/// one holding a higher id. The stream must deliver both: a reader that only remembers the last id
/// it sent (`id > last`, the first version of this feed) sends the higher one and skips the lower
/// one for good, which this test catches.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_updates_never_skip_a_change_whose_transaction_commits_late() {
    let app = app_with(&fast(&[])).await;
    let t = tenant(&app).await;
    let mut stream = app.request(Method::GET, "/api/events/stream", Some(t.owner())).send().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let insert = "INSERT INTO read_model_changes (tenant_id, entity, entity_id, change, position) \
                  VALUES ($1, 'conversation', $2, 'updated', '0/0') RETURNING id";
    let (early, late) = (Uuid::now_v7(), Uuid::now_v7());
    let mut slow = app.pool.begin().await.unwrap();
    let low: i64 = sqlx::query_scalar(insert).bind(t.id).bind(early).fetch_one(&mut *slow).await.unwrap();
    let high: i64 = sqlx::query_scalar(insert).bind(t.id).bind(late).fetch_one(&app.pool).await.unwrap();
    assert!(low < high);
    sqlx::query("SELECT pg_notify('read_model_changes', '')").execute(&app.pool).await.unwrap();
    // Give the stream time to read what is committed (and, if it were naive, to move past `low`).
    let mut text = String::new();
    let _ = tokio::time::timeout(Duration::from_millis(1500), async {
        while let Some(chunk) = stream.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    slow.commit().await.unwrap();
    sqlx::query("SELECT pg_notify('read_model_changes', '')").execute(&app.pool).await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        while !(text.contains(&early.to_string()) && text.contains(&late.to_string())) {
            let Some(chunk) = stream.chunk().await.unwrap() else { break };
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("both changes arrive; the stream sent:\n{text}"));
    assert!(
        text.find(&early.to_string()).unwrap() < text.find(&late.to_string()).unwrap(),
        "in commit-safe order: {text}"
    );
}

/// One random step of a conversation, chosen from what its state allows.
fn random_command(state: &Conversation, tenant: Uuid, account: Uuid, customer: Uuid, n: usize) -> C {
    let mut rng = rand::rng();
    let roll = rng.random_range(0..100);
    let pending_suggestion =
        state.suggestions.iter().find(|(_, s)| s.status == SuggestionStatus::Pending).map(|(id, _)| *id);
    let queued = state.replies.iter().find(|(_, r)| r.status == ReplyStatus::Queued).map(|(id, _)| *id);
    let sending = state.replies.iter().find(|(_, r)| r.status == ReplyStatus::Sending).map(|(id, _)| *id);
    let sent = state
        .replies
        .iter()
        .find(|(_, r)| r.status == ReplyStatus::Sent)
        .and_then(|(_, r)| r.provider_message_id.clone());
    match roll {
        _ if !state.started => C::ReceiveMessage(inbound(tenant, account, customer, &format!("p{n}"), "Здравствуйте")),
        0..30 => C::ReceiveMessage(inbound(tenant, account, customer, &format!("p{n}"), &format!("Сообщение {n}"))),
        30..45 if state.pending_request.is_some() => {
            let decision = [Decision::NeedApproval, Decision::AutoSend, Decision::Escalate][rng.random_range(0..3)];
            C::RecordSuggestion(drafted(state.pending_request.unwrap(), decision))
        }
        45..55 if pending_suggestion.is_some() => match rng.random_range(0..3) {
            0 => C::Approve {
                suggestion_id: pending_suggestion.unwrap(),
                reply_id: Uuid::now_v7(),
                send_after: Utc::now(),
            },
            1 => C::Edit {
                suggestion_id: pending_suggestion.unwrap(),
                reply_id: Uuid::now_v7(),
                text: format!("Правка {n}"),
                send_after: Utc::now(),
            },
            _ => C::Reject { suggestion_id: pending_suggestion.unwrap(), reason: Some("нет".into()) },
        },
        55..63 if queued.is_some() => C::StartSend { reply_id: queued.unwrap(), at: Utc::now() },
        63..72 if sending.is_some() => match rng.random_range(0..4) {
            0 => C::ScheduleRetry { reply_id: sending.unwrap(), retry_at: Utc::now(), reason: "503".into() },
            1 => C::FailReply { reply_id: sending.unwrap(), reason: "blocked".into(), permanent: true },
            _ => C::RecordSent {
                reply_id: sending.unwrap(),
                provider_message_id: format!("out{n}"),
                at: Utc::now(),
                reconciled: false,
            },
        },
        72..76 if sent.is_some() => C::RecordDelivery {
            provider_message_id: sent.unwrap(),
            status: aisales_domain::conversation::DeliveryStatus::Delivered,
            at: Utc::now(),
        },
        76..80 => {
            C::Reply {
                reply_id: Uuid::now_v7(), text: format!("Ответ {n}"), send_after: Utc::now(), attachment: None
            }
        }
        80..84 => C::Escalate { reason: "random".into(), suggestion_id: None },
        84..87 => C::Resolve,
        87..90 => C::Reopen,
        90..93 => C::Mute { muted: rng.random_bool(0.5) },
        93..96 => C::Assign { operator: Some(format!("op{}", rng.random_range(0..3))) },
        _ => C::MarkRead,
    }
}

/// Copies every rebuildable read-model table, for comparison after a rebuild.
async fn snapshot_tables(app: &TestApp, tables: &[&str]) {
    for t in tables {
        sqlx::query(&format!("DROP TABLE IF EXISTS snap_{t}")).execute(&app.pool).await.unwrap();
        sqlx::query(&format!("CREATE TABLE snap_{t} AS SELECT * FROM {t}")).execute(&app.pool).await.unwrap();
    }
}

async fn differ(app: &TestApp, a: &str, b: &str) -> i64 {
    sqlx::query_scalar(&format!(
        "SELECT (SELECT count(*) FROM (SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b}) x) + (SELECT count(*) FROM (SELECT * FROM {b} EXCEPT ALL SELECT * FROM {a}) y)"
    ))
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// 10,000 commands over 200 conversations from 8 concurrent writers while `aisales projector`
/// processes are SIGKILLed and restarted; afterwards `projections verify` finds no difference and a
/// rebuild of every read model yields identical tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn randomized_commands_with_projector_crashes_leave_read_models_exact() {
    let app = app_with(&fast(&[])).await;
    let tenant_id = create_tenant(&app.pool, "Random").await.id;
    let store = EventStore::new(app.pool.clone());
    let done = Arc::new(AtomicBool::new(false));
    let attempted = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for w in 0..8 {
        let (store, attempted) = (store.clone(), attempted.clone());
        writers.push(tokio::spawn(async move {
            let convs: Vec<(Uuid, Uuid, Uuid)> =
                (0..25).map(|_| (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7())).collect();
            let mut states: Vec<Conversation> = vec![Conversation::default(); convs.len()];
            for n in 0..1250 {
                let i = rand::rng().random_range(0..convs.len());
                let (id, account, customer) = convs[i];
                let cmd = random_command(&states[i], tenant_id, account, customer, w * 10_000 + n);
                attempted.fetch_add(1, Ordering::Relaxed);
                let meta = EventMetadata::system(Some(tenant_id), format!("user:writer{w}"));
                if let Ok(o) = store.execute::<Conversation>(&id.to_string(), cmd, &(), &meta).await {
                    states[i] = o.state;
                }
            }
        }));
    }
    let crasher = {
        let (app_db, done, prefix) = (app.db.clone(), done.clone(), app.state.settings.bus.redis_prefix.clone());
        tokio::spawn(async move {
            let mut kills = 0;
            while !done.load(Ordering::SeqCst) {
                let mut cmd = crate::helpers::aisales(&app_db.url);
                cmd.arg("projector")
                    .env("INTEGRATION_SECRETS_MASTER_KEY", crate::helpers::MASTER_KEY)
                    .env("PROJECTOR_BATCH_SIZE", "150")
                    .env("PROJECTOR_POLL_INTERVAL_MS", "50")
                    .env("REDIS_PREFIX", &prefix);
                let mut p = ChildGuard::spawn(cmd);
                let pause = rand::rng().random_range(400..1200);
                tokio::time::sleep(Duration::from_millis(pause)).await;
                p.kill();
                kills += 1;
            }
            kills
        })
    };
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let kills = crasher.await.unwrap();
    assert!(kills >= 3, "the projector was killed {kills} times during the run");
    assert_eq!(attempted.load(Ordering::Relaxed), 10_000);

    // A last projector process catches up.
    let mut cmd = crate::helpers::aisales(&app.db.url);
    cmd.arg("projector")
        .env("INTEGRATION_SECRETS_MASTER_KEY", crate::helpers::MASTER_KEY)
        .env("PROJECTOR_POLL_INTERVAL_MS", "50")
        .env("REDIS_PREFIX", &app.state.settings.bus.redis_prefix);
    let mut last = ChildGuard::spawn(cmd);
    let projectors = aisales::projection::registry::all(&app.state.settings, &app.pool, &app.state.redis);
    eventually(Duration::from_secs(120), "every projector to catch up", || async {
        let rows = aisales::projection::runtime::status(&app.pool, &projectors).await.ok()?;
        rows.iter().all(|r| r.lag_events == 0).then_some(())
    })
    .await;
    last.kill();

    let reports = aisales::projection::ops::verify(&app.pool, &projectors, None, true).await.unwrap();
    assert!(reports.len() >= 7);
    for r in &reports {
        assert!(r.differences.is_empty(), "{}: {:#?}", r.projector, r.differences);
    }
    let messages: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_messages").fetch_one(&app.pool).await.unwrap();
    assert!(messages > 1000, "the run produced real traffic ({messages} messages)");

    // Rebuilding every read model from zero yields the same tables.
    let mut tables: Vec<&str> = Vec::new();
    for p in &projectors {
        if p.generation(aisales_projections::Target::NEXT).is_some() {
            tables.extend(p.tables());
        }
    }
    snapshot_tables(&app, &tables).await;
    for p in &projectors {
        if p.generation(aisales_projections::Target::NEXT).is_some() {
            aisales::projection::ops::rebuild(&app.pool, &projectors, p.name(), true).await.unwrap();
        }
    }
    for t in &tables {
        assert_eq!(differ(&app, t, &format!("snap_{t}")).await, 0, "{t} after rebuild");
    }
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&app.pool).await.unwrap();
    let applied: i64 =
        sqlx::query_scalar("SELECT events_applied FROM projector_checkpoints WHERE name = 'conversations'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(applied, total);
    let _ = json!({});
}

/// Customers are counted in place (deltas) except where an alias is linked (rows written whole):
/// one event per batch, as live traffic arrives, and one batch for everything, as a rebuild
/// reads, must give the same rows, and the rows the events say.
#[tokio::test]
async fn customers_are_the_same_whatever_the_batches() {
    use aisales::testkit::TestDb;
    use aisales_projections::conversation::Customers;
    use aisales_projections::{Projector, Target, apply_next_batch};

    let db = TestDb::create().await.unwrap();
    let pool = db.pool(5).await.unwrap();
    let store = EventStore::new(pool.clone());
    let (tenant, account) = (Uuid::now_v7(), Uuid::now_v7());
    let meta = EventMetadata::system(Some(tenant), "customer");
    let base = chrono::DurationRound::duration_trunc(Utc::now(), chrono::TimeDelta::seconds(1)).unwrap()
        - chrono::Duration::hours(1)
        + chrono::Duration::nanoseconds(123_456_789);
    // Names given per message: none at all; none first, then two; a name from the start.
    let names: [[Option<&str>; 4]; 3] =
        [[None, None, None, None], [None, Some("Иван"), Some("Пётр"), None], [Some("Анна"), None, None, Some("Ира")]];
    let mut expected = Vec::new();
    for (c, names) in names.iter().enumerate() {
        let (id, customer) = (Uuid::now_v7(), Uuid::now_v7());
        for (m, name) in names.iter().enumerate() {
            let mut msg = inbound(tenant, account, customer, &format!("c{c}-m{m}"), "Нужна АКПП");
            msg.customer_name = name.map(str::to_string);
            // The third message arrives with the latest time: the last seen time is the latest, not the last.
            msg.received_at = base + chrono::Duration::seconds(if m == 2 { 100 } else { m as i64 });
            store.execute::<Conversation>(&id.to_string(), C::ReceiveMessage(msg), &(), &meta).await.unwrap();
            if c == 2 && m == 1 {
                store
                    .execute::<Conversation>(&id.to_string(), C::LinkAlias { alias: "max:123".into() }, &(), &meta)
                    .await
                    .unwrap();
            }
        }
        let name = names.iter().flatten().next().map(|n| n.to_string());
        let aliases: Vec<String> = if c == 2 { vec!["max:123".into()] } else { vec![] };
        expected.push((id, name, 4, aliases));
    }
    expected.sort();

    type Row = (Uuid, Option<String>, i32, Vec<String>, chrono::DateTime<Utc>);
    let stored = || async {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT conversation_id, name, messages_count, aliases, last_seen_at FROM rm_customers ORDER BY conversation_id",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        rows
    };
    let customers = Customers::new(Target::LIVE);
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&pool).await.unwrap();
    // Applies batches of `size` until every event is applied. Events become readable only once no
    // older transaction of the cluster is in flight (other tests run alongside), so a batch can
    // find nothing for a moment.
    let apply_all = |size: i64| {
        let (pool, customers) = (pool.clone(), &customers);
        async move {
            let (mut applied, started) = (0, std::time::Instant::now());
            while applied < events as usize {
                assert!(started.elapsed() < Duration::from_secs(30), "only {applied} of {events} events applied");
                let n = apply_next_batch(&pool, customers, Some(size)).await.unwrap().applied;
                if n == 0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                applied += n;
            }
        }
    };
    // One event per batch, as a projector following live traffic sees them.
    apply_all(1).await;
    let small = stored().await;
    sqlx::query("TRUNCATE rm_customers").execute(&pool).await.unwrap();
    sqlx::query("DELETE FROM projector_checkpoints WHERE name = $1")
        .bind(customers.name())
        .execute(&pool)
        .await
        .unwrap();
    // Everything in one batch, as a rebuild reads.
    apply_all(10_000).await;
    let large = stored().await;
    assert_eq!(small, large);
    // Stored times are cut to microseconds (the base time has 789 ns more, which rounding would not cut).
    let latest = base + chrono::Duration::seconds(100) - chrono::Duration::nanoseconds(789);
    let want: Vec<Row> = expected.into_iter().map(|(id, name, n, aliases)| (id, name, n, aliases, latest)).collect();
    assert_eq!(small, want);
    db.drop_db().await.unwrap();
}
