//! The worker bus under failure: poison jobs, workers killed mid-job, Redis losing its data.
//! Each test asserts the end state: every requested job done exactly once in effect, nothing stuck.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use aisales::bus::Kind;
use aisales::store::{EventMetadata, EventStore};
use aisales_domain::conversation::{ChannelKind, Conversation, ConversationCommand as C, Inbound};
use chrono::Utc;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::fakes::green_api::FakeGreenApi;
use crate::helpers::{ChildGuard, TestApp, TestTenant, eventually};
use crate::helpers::{app_with, fast, green_account, tenant};

/// A conversation on the fake GREEN-API account with `n` operator replies queued.
async fn queue_replies(
    app: &TestApp,
    t: &TestTenant,
    account: Uuid,
    n: usize,
    delay: chrono::Duration,
) -> (Uuid, Vec<String>) {
    let store = EventStore::new(app.pool.clone());
    let conversation = Uuid::now_v7();
    let meta = EventMetadata::system(Some(t.id), "user:test");
    let inbound = Inbound {
        tenant_id: t.id,
        channel: ChannelKind::GreenApi,
        account_id: account,
        chat_id: "79001230000@c.us".into(),
        customer_id: Uuid::now_v7(),
        customer_name: Some("Тест".into()),
        customer_phone: None,
        message_id: Uuid::now_v7(),
        provider_message_id: format!("in-{conversation}"),
        text: "Здравствуйте".into(),
        attachments: vec![],
        kind: aisales_domain::conversation::MessageKind::Text,
        reply_to: None,
        sent_at: Utc::now(),
        received_at: Utc::now(),
        request_id: Uuid::now_v7(),
        debounce: chrono::Duration::hours(1),
        vehicle_id: None,
        transmission_code: None,
    };
    store
        .execute::<Conversation>(&conversation.to_string(), C::ReceiveMessage(Box::new(inbound)), &(), &meta)
        .await
        .unwrap();
    let mut texts = Vec::new();
    for i in 0..n {
        let text = format!("Ответ номер {i} ({})", &conversation.simple().to_string()[24..]);
        let cmd =
            C::Reply { reply_id: Uuid::now_v7(), text: text.clone(), send_after: Utc::now() + delay, attachment: None };
        store.execute::<Conversation>(&conversation.to_string(), cmd, &(), &meta).await.unwrap();
        texts.push(text);
    }
    (conversation, texts)
}

/// Waits until every outbound message of the conversation is `sent`; returns them.
async fn all_sent(app: &TestApp, conversation: Uuid, n: usize, within: Duration) -> Vec<(String, String)> {
    eventually(within, &format!("{n} replies sent"), || async {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT text, status FROM rm_messages WHERE conversation_id = $1 AND direction = 'out' ORDER BY created_at",
        )
        .bind(conversation)
        .fetch_all(&app.pool)
        .await
        .ok()?;
        (rows.len() == n && rows.iter().all(|(_, s)| s == "sent")).then_some(rows)
    })
    .await
}

fn exactly_once(fake: &FakeGreenApi, texts: &[String]) {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for (_, text, _) in fake.sent_messages() {
        *counts.entry(text).or_default() += 1;
    }
    for t in texts {
        assert_eq!(counts.get(t).copied().unwrap_or(0), 1, "«{t}» was sent {:?} times", counts.get(t));
    }
    assert_eq!(counts.values().sum::<usize>(), texts.len(), "no other sends: {counts:?}");
}

/// No job stays outstanding: once the dispatcher has applied the last events (it may trail the
/// read models by a batch), every job is done.
async fn nothing_stuck(app: &TestApp) {
    let query = "SELECT job_id, status FROM work_items WHERE status IN ('requested', 'started') AND due_at <= now()";
    let settled = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let outstanding: Vec<(String, String)> = sqlx::query_as(query).fetch_all(&app.pool).await.unwrap();
            if outstanding.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    if settled.is_err() {
        let outstanding: Vec<(String, String)> = sqlx::query_as(query).fetch_all(&app.pool).await.unwrap();
        panic!("jobs still outstanding: {outstanding:?}");
    }
}

fn worker_process(app: &TestApp, redis_url: Option<&str>) -> ChildGuard {
    let mut cmd = app.command(&[("WORKER_MAX_DELIVERIES", "3")]);
    if let Some(url) = redis_url {
        cmd.env("REDIS_URL", url);
    }
    cmd.args(["worker", "message-send"]);
    ChildGuard::spawn(cmd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_killed_mid_job_still_deliver_every_reply_exactly_once() {
    let fake = FakeGreenApi::start().await;
    fake.set_latency(Duration::from_millis(250));
    let app = app_with(&fast(&[("GREEN_API_URL", fake.url())])).await;
    app.start_background_except(&[Kind::MessageSend]);
    let t = tenant(&app).await;
    let (account, _, _) = green_account(&app, &t, &fake).await;
    let (conversation, texts) = queue_replies(&app, &t, account.parse().unwrap(), 12, chrono::Duration::zero()).await;
    for _ in 0..3 {
        let mut w = worker_process(&app, None);
        tokio::time::sleep(Duration::from_millis(700)).await;
        w.kill();
    }
    let _w = worker_process(&app, None);
    all_sent(&app, conversation, texts.len(), Duration::from_secs(60)).await;
    exactly_once(&fake, &texts);
    nothing_stuck(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poison_job_is_dead_lettered_listed_and_retried_once_fixed() {
    let fake = FakeGreenApi::start().await;
    let app = app_with(&fast(&[("GREEN_API_URL", fake.url()), ("WORKER_VISIBILITY_TIMEOUT_SECS", "1".into())])).await;
    app.start_background_except(&[Kind::MessageSend]);
    let t = tenant(&app).await;
    let (account, _, _) = green_account(&app, &t, &fake).await;
    // A broken deployment: the account's token was lost. Every delivery fails.
    let name = aisales::tenancy::secret_name(account.parse().unwrap(), "api_token");
    sqlx::query("DELETE FROM integration_secrets WHERE name = $1").bind(&name).execute(&app.pool).await.unwrap();
    let _worker = worker_process(&app, None);
    let (conversation, texts) = queue_replies(&app, &t, account.parse().unwrap(), 1, chrono::Duration::zero()).await;

    let list = |app: &TestApp| {
        let mut cmd = app.command(&[]);
        cmd.args(["streams", "dead-letters", "list", "--kind", "message-send", "--json"]);
        cmd
    };
    let letters: Vec<Value> = eventually(Duration::from_secs(60), "the dead letter", || async {
        let out = list(&app).output().ok()?;
        let v: Vec<Value> = serde_json::from_slice(&out.stdout).ok()?;
        (!v.is_empty()).then_some(v)
    })
    .await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert!(letters[0]["reason"].as_str().unwrap().contains("gave up after"), "{letters:?}");
    assert!(letters[0]["deliveries"].as_u64().unwrap() >= 3);
    // The dashboard shows the failure.
    let failed: String = eventually(Duration::from_secs(10), "the failure on the reply", || async {
        sqlx::query_scalar("SELECT status FROM rm_messages WHERE conversation_id = $1 AND direction = 'out'")
            .bind(conversation)
            .fetch_optional(&app.pool)
            .await
            .ok()
            .flatten()
            .filter(|s: &String| s == "failed")
    })
    .await;
    assert_eq!(failed, "failed");
    assert!(fake.sent_messages().is_empty());

    // The operator fixes the token and retries the dead letters.
    let mut conn = app.pool.acquire().await.unwrap();
    aisales::infra::crypto::put(&mut conn, &app.state.keys, Some(t.id), &name, FakeGreenApi::TOKEN).await.unwrap();
    let mut retry = app.command(&[]);
    retry.args(["streams", "dead-letters", "retry", "message-send", "--all"]);
    let out = retry.stdout(Stdio::piped()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap()["retried"], 1);
    all_sent(&app, conversation, 1, Duration::from_secs(30)).await;
    exactly_once(&fake, &texts);
    let after: Vec<Value> = serde_json::from_slice(&list(&app).output().unwrap().stdout).unwrap();
    assert!(after.is_empty(), "the dead letter is gone after the retry");
    nothing_stuck(&app).await;
}

/// A private Redis server (so it can be restarted and flushed without touching other tests).
struct PrivateRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    fn start(port: u16) -> PrivateRedis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        PrivateRedis { port, child: Some(child) }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_losing_its_data_mid_run_loses_no_job() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut redis = PrivateRedis::start(port);
    let fake = FakeGreenApi::start().await;
    fake.set_latency(Duration::from_millis(150));
    let app = app_with(&fast(&[("GREEN_API_URL", fake.url()), ("REDIS_URL", redis.url())])).await;
    app.start_background();
    let t = tenant(&app).await;
    let (account, _, _) = green_account(&app, &t, &fake).await;
    // Some replies go out now, some after a human-like delay (durable delayed commands).
    let (now_conv, now_texts) = queue_replies(&app, &t, account.parse().unwrap(), 8, chrono::Duration::zero()).await;
    let (later_conv, later_texts) =
        queue_replies(&app, &t, account.parse().unwrap(), 4, chrono::Duration::seconds(3)).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    // FLUSHALL, then a restart without persistence.
    let mut conn = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();
    redis.stop();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let _redis = PrivateRedis::start(port);

    all_sent(&app, now_conv, now_texts.len(), Duration::from_secs(60)).await;
    all_sent(&app, later_conv, later_texts.len(), Duration::from_secs(60)).await;
    let mut all = now_texts;
    all.extend(later_texts);
    exactly_once(&fake, &all);
    nothing_stuck(&app).await;
    let _ = json!({});
}

/// A probe nobody answers (no probe worker running) is given up after a while instead of being
/// pushed to its stream forever; other kinds of work are never given up this way.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unanswered_probes_are_given_up_and_other_work_is_not() {
    let app = app_with(&fast(&[])).await;
    let settings = &app.state.settings;
    for (job, kind, age) in [("probe:old", "probe", 700), ("probe:new", "probe", 5), ("send:old", "message-send", 700)]
    {
        sqlx::query(
            "INSERT INTO work_items (job_id, kind, aggregate_type, aggregate_id, status, due_at, requested_at, updated_at) \
             VALUES ($1, $2, 'probe', 'x', 'requested', now(), now() - make_interval(secs => $3), now())",
        )
        .bind(job)
        .bind(kind)
        .bind(f64::from(age))
        .execute(&app.pool)
        .await
        .unwrap();
    }
    let options = aisales::process::sweeper_options(settings);
    aisales::bus::sweeper::sweep_once(&app.pool, &app.state.redis, &options).await.unwrap();
    let statuses: HashMap<String, String> =
        sqlx::query_as::<_, (String, String)>("SELECT job_id, status FROM work_items")
            .fetch_all(&app.pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    assert_eq!(statuses["probe:old"], "failed");
    assert_eq!(statuses["probe:new"], "requested");
    assert_eq!(statuses["send:old"], "requested");
}
