//! Lead form benchmark (`cargo bench --bench leads`).
//!
//! Starts `aisales serve`, `aisales projector`, `aisales worker leads` and `aisales worker
//! message-send` as processes on a fresh database, with a GREEN-API account pointed at a local fake
//! (`checkWhatsapp`, `sendMessage`) run by the benchmark. Posts Marquiz bodies of distinct customers
//! to a lead form at a fixed rate (open loop: a request starts every 1/rate seconds whether or not
//! the previous ones have answered), then waits until every lead is contacted and checks that the
//! fake received exactly one message per customer.
//!
//! Settings (environment): BENCH_RATE (posts per second, default 1000), BENCH_SECONDS (default
//! 10), BENCH_WARMUP (seconds at the same rate before measuring, default 2), BENCH_CONTACT_TIMEOUT
//! (seconds, default 600), BENCH_NICENESS (the projector's and workers' `BACKGROUND_NICENESS`,
//! default 0), BENCH_OUTREACH (`during`, the default: outreach runs while the posts arrive; or
//! `after`: the projector and workers start once every post has been answered, which measures the
//! form endpoint alone), BENCH_WORKER_CONCURRENCY (jobs each worker runs at once, default 32),
//! BENCH_INTAKE_BURST_RATE (`INTAKE_BURST_RATE` of every process: posts per second from which the
//! leads worker and the projectors give way to the server; default: the product's
//! default, 50; 0 turns it off), BENCH_KEEP_DB=1.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aisales::application::channels::{NewAccount, add_account};
use aisales::testkit::TestDb;
use axum::Json;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};
use support::{Aisales, Summary, env_or, report};
use uuid::Uuid;

/// What the fake GREEN-API saw: messages per chat id.
#[derive(Default)]
struct Fake {
    sent: Mutex<HashMap<String, u32>>,
    checks: AtomicU64,
    next: AtomicU64,
}

async fn fake_green_api(fake: Arc<Fake>) -> anyhow::Result<String> {
    async fn send(State(f): State<Arc<Fake>>, Json(body): Json<Value>) -> Json<Value> {
        let chat = body["chatId"].as_str().unwrap_or_default().to_string();
        *f.sent.lock().unwrap().entry(chat).or_default() += 1;
        let n = f.next.fetch_add(1, Ordering::Relaxed);
        Json(json!({"idMessage": format!("BAE5{n:012X}")}))
    }
    async fn check(State(f): State<Arc<Fake>>) -> Json<Value> {
        f.checks.fetch_add(1, Ordering::Relaxed);
        Json(json!({"existsWhatsapp": true}))
    }
    let app = axum::Router::new()
        .route("/waInstance{id}/sendMessage/{token}", post(send))
        .route("/waInstance{id}/checkWhatsapp/{token}", post(check))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

fn marquiz(n: u64) -> String {
    json!({
        "contacts": {"name": format!("Клиент {n}"), "phone": format!("+7 (9{:02}) {:03}-{:02}-{:02}", n / 10_000_000 % 100, n / 10_000 % 1000, n / 100 % 100, n % 100)},
        "answers": [
            {"q": "Марка и модель автомобиля", "a": "Kia Rio 2015"},
            {"q": "Какой тип коробки передач?", "a": "Автомат"},
            {"q": "Ваш город", "a": "Казань"}
        ],
        "quiz": {"id": "5f1a", "name": "Подбор КПП"}
    })
    .to_string()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rate: u64 = env_or("BENCH_RATE", 1000);
    let seconds: u64 = env_or("BENCH_SECONDS", 10);
    let warmup: u64 = env_or("BENCH_WARMUP", 2);
    let contact_timeout: u64 = env_or("BENCH_CONTACT_TIMEOUT", 600);
    let niceness: u32 = env_or("BENCH_NICENESS", 0);
    let worker_concurrency: u32 = env_or("BENCH_WORKER_CONCURRENCY", 32);
    let outreach_after = std::env::var("BENCH_OUTREACH").is_ok_and(|v| v == "after");
    let db = TestDb::create().await?;
    println!("database {}", db.name);
    let fake = Arc::new(Fake::default());
    let fake_url = fake_green_api(fake.clone()).await?;

    let support::Shop { master_key, pool, state, tenant, .. } = support::shop(&db).await?;
    sqlx::query(
        "UPDATE tenants SET working_hours_start = '00:00', working_hours_end = '00:00', \
                working_days = '{mon,tue,wed,thu,fri,sat,sun}' WHERE id = $1",
    )
    .bind(tenant.id)
    .execute(&pool)
    .await?;
    add_account(
        &state,
        tenant.id,
        NewAccount::GreenApi {
            id_instance: "1101000001".into(),
            api_token: "bench-green-api-token".into(),
            api_url: Some(fake_url),
            media_url: None,
            label: "MAX".into(),
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("adding the account: {e:?}"))?;
    let form = aisales::application::leads::add_form(
        &state,
        tenant.id,
        aisales_domain::lead::LeadFormKind::Marquiz,
        Some("Квиз КПП".into()),
    )
    .await
    .map_err(|e| anyhow::anyhow!("adding the form: {e:?}"))?;

    let port = support::free_port();
    let env = vec![
        ("DATABASE_URL", db.url.clone()),
        ("REDIS_URL", support::redis_url()),
        ("REDIS_PREFIX", format!("bench{}", Uuid::now_v7().simple())),
        ("INTEGRATION_SECRETS_MASTER_KEY", master_key.clone()),
        ("HOST", "127.0.0.1".into()),
        ("PORT", port.to_string()),
        ("RATE_LIMIT_WEBHOOK_PER_MINUTE", "0".into()),
        ("DATABASE_MAX_CONNECTIONS", "24".into()),
        ("WORKER_CONCURRENCY", worker_concurrency.to_string()),
    ];
    let mut env = env;
    if let Ok(rate) = std::env::var("BENCH_INTAKE_BURST_RATE") {
        env.push(("INTAKE_BURST_RATE", rate));
    }
    let server = Aisales::spawn("server", &["serve"], &env)?;
    // Each background process gets its own metrics port (one shared port would stop all but the
    // first to bind it).
    let background = || {
        let mut env = env.clone();
        env.push(("METRICS_PORT", support::free_port().to_string()));
        env.push(("BACKGROUND_NICENESS", niceness.to_string()));
        env
    };
    let start_background = || -> anyhow::Result<[Aisales; 3]> {
        Ok([
            Aisales::spawn("projector", &["projector"], &background())?,
            Aisales::spawn("worker-leads", &["worker", "leads"], &background())?,
            Aisales::spawn("worker-send", &["worker", "message-send"], &background())?,
        ])
    };
    let mut background_processes = if outreach_after { None } else { Some(start_background()?) };
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    support::wait_healthy(&client, &format!("{base}/health"), Duration::from_secs(30)).await?;
    let url = Arc::new(format!("{base}{}", form.webhook_url));

    // Open loop: one post every 1/rate s; each in its own task.
    let measuring = Arc::new(AtomicBool::new(false));
    let latencies = Arc::new(Mutex::new(Vec::<(u64, f64)>::new()));
    let errors = Arc::new(AtomicU64::new(0));
    let total = (warmup + seconds) * rate;
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    let mut measure_start = None;
    for n in 0..total {
        let due = started + Duration::from_secs_f64(n as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
        if n == warmup * rate {
            measuring.store(true, Ordering::Relaxed);
            measure_start = Some(Instant::now());
        }
        let (client, url, measuring, latencies, errors) =
            (client.clone(), url.clone(), measuring.clone(), latencies.clone(), errors.clone());
        tasks.spawn(async move {
            let measured = measuring.load(Ordering::Relaxed);
            let t = Instant::now();
            let r = client.post(url.as_str()).header("content-type", "application/json").body(marquiz(n)).send().await;
            let ok = match r {
                Ok(r) => {
                    let ok = r.status().is_success();
                    let _ = r.bytes().await;
                    ok
                }
                Err(_) => false,
            };
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            if !ok {
                errors.fetch_add(1, Ordering::Relaxed);
            }
            if measured {
                latencies.lock().unwrap().push((n, ms));
            }
        });
    }
    let offered = measure_start.map(|s| s.elapsed().as_secs_f64()).unwrap_or(1.0);
    while tasks.join_next().await.is_some() {}
    let posted_in = started.elapsed().as_secs_f64();
    let timed = std::mem::take(&mut *latencies.lock().unwrap());
    // The p99 of each second of the measured window (by when the post was sent), to tell a
    // steady tail from a stall.
    let mut by_second: std::collections::BTreeMap<u64, Vec<f64>> = std::collections::BTreeMap::new();
    for (n, ms) in &timed {
        by_second.entry(n / rate - warmup).or_default().push(*ms);
    }
    let per_second: Vec<String> = by_second
        .into_values()
        .map(|mut v| {
            v.sort_by(f64::total_cmp);
            format!("{:.0}", v[(v.len() * 99 / 100).min(v.len() - 1)])
        })
        .collect();
    let mut lat: Vec<f64> = timed.into_iter().map(|(_, ms)| ms).collect();
    let measured = lat.len();
    if background_processes.is_none() {
        background_processes = Some(start_background()?);
    }
    report(
        "posts offered",
        format!(
            "{total} at {rate}/s ({warmup} s warm-up, {seconds} s measured); outreach {}, background niceness {niceness}, worker concurrency {worker_concurrency}, intake burst rate {}",
            if outreach_after { "after the posts" } else { "during the posts" },
            std::env::var("BENCH_INTAKE_BURST_RATE").unwrap_or_else(|_| "default".into())
        ),
    );
    report(
        "form posts accepted (measured window)",
        format!("{:.0} posts/s, {} errors in all", measured as f64 / offered, errors.load(Ordering::Relaxed)),
    );
    report("form post latency", Summary::of(&mut lat));
    report("form post p99 per second (ms)", per_second.join(" "));

    // Every lead contacted, each customer written to once.
    let waiting = Instant::now();
    loop {
        let contacted: i64 =
            sqlx::query_scalar("SELECT count(*) FROM rm_leads WHERE status = 'contacted'").fetch_one(&pool).await?;
        if contacted as u64 >= total {
            break;
        }
        if waiting.elapsed() > Duration::from_secs(contact_timeout) {
            report("leads contacted", format!("only {contacted} of {total} after {contact_timeout} s"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let all_contacted_after = started.elapsed().as_secs_f64();
    let leads: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_leads").fetch_one(&pool).await?;
    let contacted: i64 =
        sqlx::query_scalar("SELECT count(*) FROM rm_leads WHERE status = 'contacted'").fetch_one(&pool).await?;
    let sent = fake.sent.lock().unwrap().clone();
    let twice = sent.values().filter(|n| **n > 1).count();
    report("leads stored / contacted", format!("{leads} / {contacted} of {total} posts"));
    report(
        "customers written to",
        format!(
            "{} chats, {} messages, {} chats written to more than once; {} checkWhatsapp",
            sent.len(),
            sent.values().sum::<u32>(),
            twice,
            fake.checks.load(Ordering::Relaxed)
        ),
    );
    report(
        "time to contact every lead",
        format!("{all_contacted_after:.1} s from the first post (posting took {posted_in:.1} s)"),
    );
    if let Some((_, peak)) = support::rss_mib(server.pid()) {
        report("server peak RSS", format!("{peak:.0} MiB"));
    }
    server.stop();
    for p in background_processes.into_iter().flatten() {
        p.stop();
    }
    pool.close().await;
    support::keep_or_drop(db).await?;
    Ok(())
}
