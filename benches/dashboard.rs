//! Dashboard benchmark (`cargo bench --bench dashboard`).
//!
//! Starts `aisales serve` and `aisales projector` as processes on a fresh database holding
//! 10,000 conversations of one tenant (stored through the real aggregate, then projected), signs
//! in through the login form and measures:
//! - the inbox's server time: sequential `GET /` (first page, 50 rows) and the filtered and
//!   searched variants, timed at the client over loopback (an upper bound of the server time);
//! - what a first load transfers: the inbox page, the stylesheet and the script (bodies, and the
//!   response headers);
//! - live updates: 200 open `/api/events/stream` clients plus one headless Chromium with the
//!   inbox open; GREEN-API webhooks for new customers are posted one at a time and the time until
//!   the new row is in the browser's DOM (and until each SSE client received the change) is taken.
//!
//! Settings (environment): BENCH_CONVERSATIONS (10000), BENCH_INBOX_REQUESTS (500),
//! BENCH_SSE_CLIENTS (200), BENCH_LIVE_WEBHOOKS (50), BENCH_KEEP_DB=1; CHROMEDRIVER and
//! CHROMIUM_BINARY as in the tests.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aisales::application::channels::{NewAccount, add_account};
use aisales::store::EventStore;
use aisales::testkit::TestDb;
use aisales::testkit::history::{self, HistorySpec};
use fantoccini::{ClientBuilder, Locator};
use serde_json::{Value, json};
use support::{Aisales, Summary, env_or, report};
use uuid::Uuid;

const ID_INSTANCE: &str = "1101000001";
const EMAIL: &str = "bench@shop.test";
const PASSWORD: &str = "Bench-Pass-2026";

fn set_cookie_value(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap_or_default().to_string())
}

/// Signs in through the login form; the `Cookie` header of the session.
async fn sign_in(client: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let page = client.get(format!("{base}/login")).send().await?;
    let csrf_cookie =
        set_cookie_value(&page, "aisales_login_csrf").ok_or_else(|| anyhow::anyhow!("no login cookie"))?;
    let csrf = csrf_cookie.split_once('=').map(|(_, v)| v.to_string()).unwrap_or_default();
    let body = format!("email={}&password={}&csrf={csrf}", EMAIL.replace('@', "%40"), PASSWORD);
    let r = client
        .post(format!("{base}/login"))
        .header("cookie", &csrf_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await?;
    anyhow::ensure!(r.status() == reqwest::StatusCode::SEE_OTHER, "login answered {}", r.status());
    set_cookie_value(&r, "aisales_session").ok_or_else(|| anyhow::anyhow!("no session cookie"))
}

async fn time_gets(client: &reqwest::Client, url: &str, cookie: &str, n: usize) -> anyhow::Result<Summary> {
    for _ in 0..20 {
        client.get(url).header("cookie", cookie).send().await?.bytes().await?;
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let r = client.get(url).header("cookie", cookie).send().await?;
        anyhow::ensure!(r.status().is_success(), "{url}: {}", r.status());
        r.bytes().await?;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(Summary::of(&mut samples))
}

/// The 95th percentile of `samples` (nearest rank).
fn p95(samples: &mut [f64]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[((samples.len() as f64 * 0.95).ceil() as usize).clamp(1, samples.len()) - 1]
}

fn headers_len(r: &reqwest::Response) -> usize {
    r.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum::<usize>() + 17
}

/// One SSE client: every (conversation id, arrival) it saw until `stop`.
async fn sse_client(
    client: reqwest::Client,
    url: String,
    cookie: String,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<Vec<(String, Instant)>> {
    let mut resp = client.get(url).header("cookie", cookie).send().await?;
    anyhow::ensure!(resp.status().is_success(), "stream answered {}", resp.status());
    let mut seen = Vec::new();
    let mut buf = String::new();
    loop {
        let chunk = tokio::select! {
            c = resp.chunk() => c?,
            _ = stop.cancelled() => return Ok(seen),
        };
        let Some(chunk) = chunk else { return Ok(seen) };
        let now = Instant::now();
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(i) = buf.find('\n') {
            let line: String = buf.drain(..=i).collect();
            if let Some(data) = line.trim_end().strip_prefix("data:")
                && let Ok(v) = serde_json::from_str::<Value>(data.trim())
                && let Some(id) = v["conversation_id"].as_str().or(v["id"].as_str())
            {
                seen.push((id.to_string(), now));
            }
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let conversations: u64 = env_or("BENCH_CONVERSATIONS", 10_000);
    let inbox_requests: usize = env_or("BENCH_INBOX_REQUESTS", 500);
    let sse_clients: usize = env_or("BENCH_SSE_CLIENTS", 200);
    let webhooks: usize = env_or("BENCH_LIVE_WEBHOOKS", 50);
    let db = TestDb::create().await?;
    println!("database {}", db.name);

    let support::Shop { master_key, settings, pool, redis, state, tenant } = support::shop(&db).await?;
    let account = add_account(
        &state,
        tenant.id,
        NewAccount::GreenApi {
            id_instance: ID_INSTANCE.into(),
            api_token: "bench-green-api-token".into(),
            api_url: Some("http://127.0.0.1:9".into()),
            media_url: None,
            label: "MAX".into(),
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("adding the account: {e:?}"))?;
    let token = {
        let mut conn = pool.acquire().await?;
        aisales::infra::crypto::get(
            &mut conn,
            &state.keys,
            Some(tenant.id),
            &aisales::tenancy::secret_name(account.account.id, "webhook_token"),
        )
        .await?
    };
    {
        let hash = aisales::auth::passwords::hash(PASSWORD);
        let mut conn = pool.acquire().await?;
        aisales::tenancy::create_user(&mut conn, tenant.id, EMAIL, aisales::auth::Role::Owner, &hash, false)
            .await
            .map_err(|e| anyhow::anyhow!("creating the user: {e:?}"))?;
    }

    // The tenant's history: `conversations` conversations of 4 customer messages each.
    let spec = HistorySpec::new(tenant.id, account.account.id, 4);
    let store = EventStore::new(pool.clone());
    let seeded = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (store, spec, next) = (store.clone(), spec.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= conversations {
                    return anyhow::Ok(());
                }
                history::seed_conversation(&store, &spec, n).await?;
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    report("seeded conversations", format!("{conversations} in {:.0} s", seeded.elapsed().as_secs_f64()));

    let read_models: Vec<String> = aisales::projection::registry::all(&settings, &pool, &redis)
        .iter()
        .filter(|p| p.generation(aisales_projections::Target::NEXT).is_some())
        .map(|p| p.name().to_string())
        .collect();
    let port = support::free_port();
    let env = vec![
        ("DATABASE_URL", db.url.clone()),
        ("REDIS_URL", support::redis_url()),
        ("REDIS_PREFIX", format!("bench{}", Uuid::now_v7().simple())),
        ("INTEGRATION_SECRETS_MASTER_KEY", master_key.clone()),
        ("HOST", "127.0.0.1".into()),
        ("PORT", port.to_string()),
        ("RATE_LIMIT_WEBHOOK_PER_MINUTE", "0".into()),
        ("RATE_LIMIT_API_PER_MINUTE", "0".into()),
        ("DATABASE_MAX_CONNECTIONS", "24".into()),
    ];
    let server = Aisales::spawn("server", &["serve"], &env)?;
    let mut projector_env = env.clone();
    projector_env.push(("METRICS_PORT", support::free_port().to_string()));
    let projector = Aisales::spawn("projector", &["projector"], &projector_env)?;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    support::wait_healthy(&client, &format!("{base}/health"), Duration::from_secs(30)).await?;
    let caught = Instant::now();
    support::wait_caught_up(&pool, &read_models, Duration::from_secs(3600)).await?;
    report("projector caught up", format!("{:.0} s", caught.elapsed().as_secs_f64()));
    sqlx::query("VACUUM ANALYZE").execute(&pool).await?;
    let in_inbox: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_conversations WHERE tenant_id = $1")
        .bind(tenant.id)
        .fetch_one(&pool)
        .await?;
    report("conversations in the tenant's inbox", in_inbox);

    // Inbox server time.
    let cookie = sign_in(&client, &base).await?;
    for (name, path) in [
        ("inbox, first page", "/"),
        ("inbox rows fragment (live refresh)", "/inbox/rows?"),
        ("inbox, status=open", "/?status=open"),
        ("inbox, who=unassigned", "/?who=unassigned"),
        ("inbox, who=mine (no match: full scan)", "/?who=mine"),
        ("inbox, search q=7900000", "/?q=7900000"),
    ] {
        let s = time_gets(&client, &format!("{base}{path}"), &cookie, inbox_requests).await?;
        report(name, s);
    }

    // What a first load transfers.
    let page = client.get(format!("{base}/")).header("cookie", &cookie).send().await?;
    let mut total = headers_len(&page);
    let html = page.text().await?;
    total += html.len();
    let mut assets = Vec::new();
    for attr in ["href=\"/assets/", "src=\"/assets/"] {
        if let Some(rest) = html.split(attr).nth(1) {
            let file = rest.split('"').next().unwrap_or_default();
            let r = client.get(format!("{base}/assets/{file}")).send().await?;
            total += headers_len(&r);
            let n = r.bytes().await?.len();
            total += n;
            assets.push(format!("{file} {:.1} KB", n as f64 / 1024.0));
        }
    }
    report(
        "first load transferred (inbox of 50 rows)",
        format!("{:.1} KB: page {:.1} KB, {}", total as f64 / 1024.0, html.len() as f64 / 1024.0, assets.join(", ")),
    );

    // Live updates with `sse_clients` open streams and one browser.
    let stop = tokio_util::sync::CancellationToken::new();
    let mut streams = tokio::task::JoinSet::new();
    let stream_client = reqwest::Client::builder().pool_max_idle_per_host(0).build()?;
    for _ in 0..sse_clients {
        streams.spawn(sse_client(
            stream_client.clone(),
            format!("{base}/api/events/stream"),
            cookie.clone(),
            stop.clone(),
        ));
    }
    let driver_port = support::free_port();
    let mut driver =
        std::process::Command::new(std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into()))
            .arg(format!("--port={driver_port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let profile = support::scratch_dir().join("chromium-profile");
    let mut chrome = json!({ "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--window-size=1280,900", format!("--user-data-dir={}", profile.display())] });
    if let Ok(b) = std::env::var("CHROMIUM_BINARY") {
        chrome["binary"] = json!(b);
    } else if std::path::Path::new("/usr/bin/chromium").is_file() {
        chrome["binary"] = json!("/usr/bin/chromium");
    }
    let Value::Object(caps) = json!({ "browserName": "chrome", "goog:chromeOptions": chrome }) else { unreachable!() };
    let browser =
        ClientBuilder::rustls()?.capabilities(caps).connect(&format!("http://127.0.0.1:{driver_port}")).await?;
    browser.goto(&format!("{base}/login")).await?;
    browser.find(Locator::Css("input[name=email]")).await?.send_keys(EMAIL).await?;
    browser.find(Locator::Css("input[name=password]")).await?.send_keys(PASSWORD).await?;
    browser.find(Locator::Css("form button.primary")).await?.click().await?;
    browser.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css("#conv-list")).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let hook = format!("{base}/webhooks/green-api/{}/{}", tenant.id, account.account.id);
    let mut dom = Vec::new();
    let mut posted: Vec<(String, Instant)> = Vec::new();
    for i in 0..webhooks {
        let name = format!("Live-{i:03}");
        let body = json!({
            "typeWebhook": "incomingMessageReceived",
            "instanceData": { "idInstance": ID_INSTANCE.parse::<u64>()?, "wid": "79990000000@c.us", "typeInstance": "whatsapp" },
            "timestamp": chrono::Utc::now().timestamp(),
            "idMessage": format!("LIVE-{}", Uuid::now_v7().simple()),
            "senderData": { "chatId": format!("7955{i:07}@c.us"), "sender": format!("7955{i:07}@c.us"), "senderName": name, "chatName": name },
            "messageData": { "typeMessage": "textMessage", "textMessageData": { "textMessage": "Нужна коробка" } }
        });
        let t0 = Instant::now();
        let r = client.post(&hook).bearer_auth(&token).json(&body).send().await?;
        anyhow::ensure!(r.status().is_success(), "webhook answered {}", r.status());
        let answer: Value = r.json().await?;
        if let Some(c) = answer["result"]["messages"][0]["conversation_id"].as_str() {
            posted.push((c.to_string(), t0));
        }
        loop {
            let found = browser
                .execute(
                    "const l = document.getElementById('conv-list'); return !!l && l.textContent.includes(arguments[0]);",
                    vec![json!(name)],
                )
                .await?;
            if found == json!(true) {
                dom.push(t0.elapsed().as_secs_f64() * 1000.0);
                break;
            }
            anyhow::ensure!(t0.elapsed() < Duration::from_secs(30), "{name} never reached the DOM");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.cancel();
    let mut sse = Vec::new();
    let mut complete = 0;
    while let Some(r) = streams.join_next().await {
        let seen = r??;
        let first: HashMap<&str, Instant> = seen.iter().rev().map(|(id, t)| (id.as_str(), *t)).collect();
        let mut all = true;
        for (c, t0) in &posted {
            match first.get(c.as_str()) {
                Some(t) => sse.push(t.saturating_duration_since(*t0).as_secs_f64() * 1000.0),
                None => all = false,
            }
        }
        complete += usize::from(all);
    }
    let (dom_p95, sse_p95) = (p95(&mut dom), p95(&mut sse));
    report(&format!("webhook → browser DOM ({sse_clients} SSE clients open)"), Summary::of(&mut dom));
    report("webhook → browser DOM p95", format!("{dom_p95:.1} ms"));
    report(&format!("webhook → SSE event, each of {sse_clients} clients"), Summary::of(&mut sse));
    report("webhook → SSE event p95", format!("{sse_p95:.1} ms"));
    report("SSE clients that saw every change", format!("{complete} of {sse_clients}"));

    let _ = browser.close().await;
    let _ = driver.kill();
    let _ = driver.wait();
    server.stop();
    projector.stop();
    pool.close().await;
    support::keep_or_drop(db).await?;
    Ok(())
}
