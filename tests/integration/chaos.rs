//! The chaos run: two processes of each role (`serve`, `projector`, `worker all`) against one
//! PostgreSQL and one Redis, with a fake GREEN-API; customers of 500 chats write while an operator
//! approves drafts through the API, and meanwhile a random process is killed with SIGKILL every
//! 5–10 s and started again, Redis loses the bus's data, and a poison event lands in the store.
//! At the end every accepted webhook must be exactly one message, every approved reply must have
//! reached the fake exactly once, `projections verify` must be clean, no job may be left pending,
//! and the poison event must be parked and reported.
//!
//! In the normal test run it lasts 30 s (`CHAOS_SECONDS` changes it) and Redis loses only this
//! run's keys, since other tests share the server. `scripts/chaos.sh` runs it alone for three
//! minutes with `CHAOS_FULL=1`: PostgreSQL is restarted once, and Redis is restarted once with
//! nothing kept. It prints one line of figures, which `docs/benchmarks.md` quotes.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::Value;

use crate::fakes::green_api::{FakeGreenApi, green_api_incoming_text};
use crate::hardening::store_poisoned_message;
use crate::helpers::{ChildGuard, TestApp, app_with, fast, green_account, tenant};

/// How long and how hard: from `CHAOS_SECONDS` and `CHAOS_FULL`.
struct Plan {
    seconds: u64,
    full: bool,
    chats: u64,
    /// Webhooks per second offered (spread over the chats).
    rate: u64,
}

impl Plan {
    fn from_env() -> Plan {
        let seconds = std::env::var("CHAOS_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
        let full = std::env::var("CHAOS_FULL").is_ok_and(|v| v == "1");
        let rate = std::env::var("CHAOS_RATE").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
        Plan { seconds, full, chats: 500, rate }
    }
}

/// One supervised process, started again whenever it is found dead (as PM2 would).
struct Proc {
    name: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    child: Option<ChildGuard>,
    log: PathBuf,
}

impl Proc {
    fn start(&mut self, app: &TestApp) {
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut cmd = app.command(&env);
        cmd.args(&self.args);
        self.child = Some(ChildGuard::spawn_logged(cmd, &self.log));
    }

    /// Whether the process has exited (killed or fallen over).
    fn exited(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.0.try_wait(), Ok(Some(_))),
            None => true,
        }
    }
}

#[derive(Default)]
struct Tally {
    /// Provider message ids whose webhook was answered 2xx.
    accepted: HashSet<String>,
    /// Suggestions whose approval was answered 2xx.
    approved: HashSet<String>,
    kills: u64,
    /// Processes found dead without having been killed (after a database or Redis restart).
    restarts: u64,
    max_lag_ms: f64,
}

/// The oldest event the slowest projector has not applied yet, in milliseconds (0 when none).
async fn projection_lag_ms(pool: &sqlx::PgPool) -> Option<f64> {
    sqlx::query_scalar::<_, f64>(
        "SELECT COALESCE(EXTRACT(EPOCH FROM (clock_timestamp() - min(e.recorded_at))) * 1000, 0)::float8 \
           FROM events e, projector_checkpoints c \
          WHERE c.name NOT LIKE '%verify%' AND (e.tx_id, e.global_position) > (c.tx_id, c.position)",
    )
    .fetch_one(pool)
    .await
    .ok()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn run_quietly(program: &str, args: &[&str]) {
    let status = std::process::Command::new(program).args(args).status();
    assert!(status.is_ok_and(|s| s.success()), "{program} {args:?}");
}

/// Restarts the local PostgreSQL cluster (the full run only: every test database goes with it).
fn restart_postgres() {
    let versions = std::fs::read_dir("/etc/postgresql").expect("a Debian PostgreSQL cluster");
    let version = versions.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().to_string()).max().unwrap();
    run_quietly("pg_ctlcluster", &["--skip-systemctl-redirect", &version, "main", "restart"]);
}

/// Stops Redis without saving and starts it empty (the full run only).
fn restart_redis_empty() {
    let _ = std::process::Command::new("redis-cli").args(["shutdown", "nosave"]).status();
    std::thread::sleep(Duration::from_millis(300));
    run_quietly(
        "redis-server",
        &["--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379", "--save", "", "--appendonly", "no"],
    );
    for _ in 0..100 {
        let pong = std::process::Command::new("redis-cli").arg("ping").output();
        if pong.is_ok_and(|o| o.stdout.starts_with(b"PONG")) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("Redis did not come back");
}

/// Deletes this run's Redis keys: what the bus loses when Redis restarts empty.
async fn flush_own_keys(prefix: &str) {
    let client = redis::Client::open(crate::helpers::redis_url()).unwrap();
    let Ok(mut redis) = client.get_multiplexed_async_connection().await else { return };
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{prefix}:*")).query_async(&mut redis).await.unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<(), _> = redis::cmd("DEL").arg(&keys).query_async(&mut redis).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_run_loses_nothing_and_sends_nothing_twice() {
    let plan = Plan::from_env();
    let fake = FakeGreenApi::start().await;
    let app = app_with(&fast(&[("GREEN_API_URL", fake.url())])).await;
    let t = tenant(&app).await;
    let (_, path, token) = green_account(&app, &t, &fake).await;

    let logs = std::env::temp_dir().join(format!("aisales-chaos-{}", std::process::id()));
    std::fs::create_dir_all(&logs).unwrap();
    // Six processes share PostgreSQL's 100 connections with the rest of the tests.
    let connections = if plan.full { "12" } else { "4" };
    let common = [
        ("DATABASE_MAX_CONNECTIONS", connections),
        ("PROJECTOR_POLL_INTERVAL_MS", "100"),
        ("WORK_SWEEP_INTERVAL_MS", "200"),
        ("RATE_LIMIT_API_PER_MINUTE", "0"),
        ("RATE_LIMIT_WEBHOOK_PER_MINUTE", "0"),
        ("SHUTDOWN_GRACE_SECS", "2"),
    ];
    let ports = [free_port(), free_port()];
    let mut procs: Vec<Proc> = Vec::new();
    for (role, args) in [("serve", vec!["serve"]), ("projector", vec!["projector"]), ("worker", vec!["worker", "all"])]
    {
        for (i, port) in ports.iter().enumerate() {
            let mut env: Vec<(String, String)> = common.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            if role == "serve" {
                env.push(("PORT".into(), port.to_string()));
                env.push(("HOST".into(), "127.0.0.1".into()));
            }
            let name = format!("{role}-{}", i + 1);
            procs.push(Proc {
                log: logs.join(format!("{name}.log")),
                name,
                args: args.iter().map(|s| s.to_string()).collect(),
                env,
                child: None,
            });
        }
    }
    for p in &mut procs {
        p.start(&app);
    }
    let bases: Vec<String> = ports.iter().map(|p| format!("http://127.0.0.1:{p}")).collect();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    for base in &bases {
        crate::helpers::eventually(Duration::from_secs(30), "serve to answer", || {
            let client = client.clone();
            let url = format!("{base}/health");
            async move { client.get(url).send().await.ok().filter(|r| r.status().is_success()) }
        })
        .await;
    }

    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let sequence = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(plan.seconds);

    // Customers: webhooks at the planned rate, each retried (on either server) until answered
    // 2xx, as GREEN-API retries a webhook that failed.
    let posters = 4;
    let mut load = Vec::new();
    for p in 0..posters {
        let (client, bases, path, token, tally, stop, sequence) =
            (client.clone(), bases.clone(), path.clone(), token.clone(), tally.clone(), stop.clone(), sequence.clone());
        let chats = plan.chats;
        let pause = Duration::from_millis(1000 * posters / plan.rate.max(1));
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let n = sequence.fetch_add(1, Ordering::Relaxed);
                let chat = format!("7900{:07}@c.us", rand::rng().random_range(0..chats));
                let id = format!("CHAOS{n:08}");
                // One poison message from a customer: a NUL and escape codes, cleaned and kept.
                let text = if n == 7 {
                    "яд\u{0}\u{1b}[2J в тексте".to_string()
                } else {
                    format!("Нужна АКПП, заявка {n}")
                };
                let body = green_api_incoming_text(FakeGreenApi::ID_INSTANCE, &chat, "Клиент", &id, &text);
                let started = Instant::now();
                let mut attempt = 0usize;
                while started.elapsed() < Duration::from_secs(60) {
                    let base = &bases[(p as usize + attempt) % bases.len()];
                    attempt += 1;
                    let r = client.post(format!("{base}{path}")).bearer_auth(&token).json(&body).send().await;
                    if r.is_ok_and(|r| r.status().is_success()) {
                        tally.lock().unwrap().accepted.insert(id.clone());
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                tokio::time::sleep(pause).await;
            }
        }));
    }

    // The operator: approves pending drafts through the API, a few at a time.
    {
        let (client, bases, tally, stop, pool) =
            (client.clone(), bases.clone(), tally.clone(), stop.clone(), app.pool.clone());
        let (tenant_id, owner) = (t.id, t.owner().to_string());
        load.push(tokio::spawn(async move {
            let mut round = 0usize;
            while !stop.load(Ordering::Relaxed) {
                round += 1;
                let pending: Vec<uuid::Uuid> = sqlx::query_scalar(
                    "SELECT suggestion_id FROM rm_suggestions WHERE tenant_id = $1 AND status = 'pending' \
                      ORDER BY created_at LIMIT 5",
                )
                .bind(tenant_id)
                .fetch_all(&pool)
                .await
                .unwrap_or_default();
                for id in pending {
                    let base = &bases[round % bases.len()];
                    let r = client
                        .post(format!("{base}/api/suggestions/{id}/approve"))
                        .bearer_auth(&owner)
                        .json(&serde_json::json!({}))
                        .send()
                        .await;
                    if r.is_ok_and(|r| r.status().is_success()) {
                        tally.lock().unwrap().approved.insert(id.to_string());
                    }
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }));
    }

    // The lag, sampled.
    {
        let (tally, stop, pool) = (tally.clone(), stop.clone(), app.pool.clone());
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Some(lag) = projection_lag_ms(&pool).await {
                    let mut t = tally.lock().unwrap();
                    t.max_lag_ms = t.max_lag_ms.max(lag);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }));
    }

    // Faults, and the supervisor that starts again whatever died.
    let started = Instant::now();
    let total = Duration::from_secs(plan.seconds);
    let (mut postgres_done, mut redis_done, mut poison) = (false, false, None::<String>);
    let mut next_kill = Instant::now() + Duration::from_millis(rand::rng().random_range(5_000..10_000));
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        for p in &mut procs {
            if p.exited() {
                tally.lock().unwrap().restarts += 1;
                p.start(&app);
            }
        }
        if Instant::now() >= next_kill {
            let victim = rand::rng().random_range(0..procs.len());
            if let Some(c) = &mut procs[victim].child {
                c.kill();
            }
            procs[victim].start(&app);
            tally.lock().unwrap().kills += 1;
            eprintln!("chaos: killed {} at {:?}", procs[victim].name, started.elapsed());
            next_kill = Instant::now() + Duration::from_millis(rand::rng().random_range(5_000..10_000));
        }
        let elapsed = started.elapsed();
        if poison.is_none() && elapsed > total / 2 {
            // A stored event that a read model cannot apply (as one written before the domain
            // cleaned text would be): parked, the rest goes on.
            let victim: Option<String> = sqlx::query_scalar(
                "SELECT aggregate_id FROM events WHERE aggregate_type = 'conversation' AND event_type = 'MessageReceived' \
                  ORDER BY global_position LIMIT 1",
            )
            .fetch_optional(&app.pool)
            .await
            .ok()
            .flatten();
            if let Some(v) = victim {
                store_poisoned_message(&app, &v).await;
                eprintln!("chaos: poison event stored in conversation {v} at {elapsed:?}");
                poison = Some(v);
            }
        }
        if !postgres_done && elapsed > total / 3 {
            postgres_done = true;
            if plan.full {
                eprintln!("chaos: restarting PostgreSQL at {elapsed:?}");
                tokio::task::spawn_blocking(restart_postgres).await.unwrap();
            }
        }
        if !redis_done && elapsed > total * 2 / 3 {
            redis_done = true;
            if plan.full {
                eprintln!("chaos: restarting Redis empty at {elapsed:?}");
                tokio::task::spawn_blocking(restart_redis_empty).await.unwrap();
            } else {
                eprintln!("chaos: Redis loses this run's keys at {elapsed:?}");
                flush_own_keys(&app.state.settings.bus.redis_prefix).await;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }

    // Every process up again, then at rest.
    for p in &mut procs {
        if p.exited() {
            tally.lock().unwrap().restarts += 1;
            p.start(&app);
        }
    }
    let rest = Instant::now();
    loop {
        let behind: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM projector_checkpoints c, \
               (SELECT tx_id, global_position FROM events ORDER BY tx_id DESC, global_position DESC LIMIT 1) h \
              WHERE c.name NOT LIKE '%verify%' AND (c.tx_id, c.position) < (h.tx_id, h.global_position)",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap_or(1);
        let working: i64 =
            sqlx::query_scalar("SELECT count(*) FROM work_items WHERE status IN ('requested', 'started')")
                .fetch_one(&app.pool)
                .await
                .unwrap_or(1);
        if behind == 0 && working == 0 {
            break;
        }
        if rest.elapsed() > Duration::from_secs(120) {
            let open: Vec<(String, String)> = sqlx::query_as(
                "SELECT job_id, status FROM work_items WHERE status IN ('requested', 'started') LIMIT 20",
            )
            .fetch_all(&app.pool)
            .await
            .unwrap_or_default();
            panic!("not at rest 120 s after the load: {behind} projector(s) behind, jobs still open: {open:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Every webhook answered 2xx is exactly one message.
    let stored: Vec<(String, i64)> = sqlx::query_as(
        "SELECT payload -> 'MessageReceived' ->> 'provider_message_id', count(*) FROM events \
          WHERE aggregate_type = 'conversation' AND event_type = 'MessageReceived' \
            AND strpos(payload::text, '\\u0000') = 0 GROUP BY 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let stored: HashMap<String, i64> = stored.into_iter().collect();
    let tally = std::mem::take(&mut *tally.lock().unwrap());
    let lost: Vec<&String> = tally.accepted.iter().filter(|id| !stored.contains_key(*id)).collect();
    let doubled: Vec<(&String, &i64)> = stored.iter().filter(|(_, n)| **n > 1).collect();

    // Every approved reply reached the fake exactly once: the messages the fake took are exactly
    // the ones recorded as sent, one each.
    let replies: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT q.aggregate_id, q.payload -> 'ReplyQueued' ->> 'reply_id', \
                q.payload -> 'ReplyQueued' ->> 'suggestion_id' \
           FROM events q WHERE q.event_type = 'ReplyQueued'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let sent: Vec<(String, String)> = sqlx::query_as(
        "SELECT payload -> 'ReplySent' ->> 'reply_id', payload -> 'ReplySent' ->> 'provider_message_id' \
           FROM events WHERE event_type = 'ReplySent'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let failed: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'ReplyFailed'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let queued_for: HashSet<String> = replies.iter().filter_map(|(_, _, s)| s.clone()).collect();
    let not_queued: Vec<&String> = tally.approved.iter().filter(|s| !queued_for.contains(*s)).collect();
    let mut sends_of: HashMap<&String, usize> = HashMap::new();
    for (reply, _) in &sent {
        *sends_of.entry(reply).or_default() += 1;
    }
    let unsent: Vec<&String> = replies.iter().map(|(_, r, _)| r).filter(|r| !sends_of.contains_key(r)).collect();
    let recorded_twice = sends_of.values().filter(|n| **n > 1).count();
    let at_fake: Vec<String> = fake.sent_messages().into_iter().map(|(_, _, id)| id).collect();
    let recorded_ids: HashSet<&String> = sent.iter().map(|(_, id)| id).collect();
    let fake_ids: HashSet<&String> = at_fake.iter().collect();
    let sent_twice = at_fake.len() - fake_ids.len() + fake_ids.iter().filter(|id| !recorded_ids.contains(*id)).count();

    // `projections verify` is clean; the poison is parked and reported.
    let verify = app.command(&[]).args(["projections", "verify"]).output().unwrap();
    let status = app.command(&[]).args(["projections", "status", "--json"]).output().unwrap();
    let status: Value = serde_json::from_slice(&status.stdout).unwrap_or(Value::Null);
    let poison = poison.expect("the poison event was stored");
    let parked_for_poison = status
        .as_array()
        .map(|ps| {
            ps.iter()
                .flat_map(|p| p["parked"].as_array().cloned().unwrap_or_default())
                .any(|r| r["aggregate_id"] == poison.as_str())
        })
        .unwrap_or(false);
    let cleaned: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_messages WHERE text = 'яд[2J в тексте'")
        .fetch_one(&app.pool)
        .await
        .unwrap();

    println!(
        "chaos: {} s{}, messages {}, replies {} (approved {}), kills {}, restarts {}, duplicates {}, losses {}, \
         max projection lag {:.0} ms",
        plan.seconds,
        if plan.full { " with PostgreSQL and Redis restarts" } else { "" },
        tally.accepted.len(),
        sent.len(),
        tally.approved.len(),
        tally.kills,
        tally.restarts,
        doubled.len() + recorded_twice + sent_twice,
        lost.len() + unsent.len() + not_queued.len(),
        tally.max_lag_ms,
    );
    assert!(tally.accepted.len() as u64 > plan.seconds * plan.rate / 4, "the load ran: {}", tally.accepted.len());
    assert!(tally.kills >= 2, "processes were killed");
    assert!(lost.is_empty(), "accepted webhooks without a message: {lost:?}");
    assert!(doubled.is_empty(), "messages stored twice: {doubled:?}");
    assert!(!tally.approved.is_empty(), "drafts were approved");
    assert!(not_queued.is_empty(), "approvals without a reply: {not_queued:?}");
    assert!(unsent.is_empty(), "replies never sent: {unsent:?}");
    assert_eq!(failed, 0, "no reply failed");
    assert_eq!(recorded_twice, 0, "a reply recorded as sent twice");
    assert_eq!(sent_twice, 0, "the fake took a reply twice (or one not recorded): {at_fake:?}");
    assert!(
        verify.status.success(),
        "projections verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(parked_for_poison, "the poison event is parked and reported: {status}");
    assert_eq!(cleaned, 1, "the customer's NUL and escape codes were cleaned and the message kept");
}
