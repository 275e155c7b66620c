//! Hostile and broken input: control characters in text, an event no read model can apply.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::fakes::green_api::{FakeGreenApi, green_api_incoming_text};
use crate::helpers::{TestApp, app_with, eventually, fast, green_account, post_green, suggestions, tenant, try_get};

/// Posts one customer message; returns its conversation id.
pub(crate) async fn customer_writes(
    app: &TestApp,
    path: &str,
    token: &str,
    chat: &str,
    id: &str,
    text: &str,
) -> String {
    let body = green_api_incoming_text(FakeGreenApi::ID_INSTANCE, chat, "Иван", id, text);
    let r = post_green(app, path, token, &body).await;
    assert_eq!(r.status(), StatusCode::OK);
    let answer: Value = r.json().await.unwrap();
    answer["result"]["messages"][0]["conversation_id"].as_str().unwrap().to_string()
}

async fn texts(app: &TestApp, token: &str, conversation: &str) -> Vec<String> {
    let v = try_get(app, &format!("/api/conversations/{conversation}/messages"), token).await.unwrap_or_default();
    v["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|m| m["text"].as_str().map(String::from)).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operator_text_with_a_nul_is_refused_and_customer_text_is_cleaned() {
    let fake = FakeGreenApi::start().await;
    let app = app_with(&fast(&[("GREEN_API_URL", fake.url())])).await;
    app.start_background();
    let t = tenant(&app).await;
    let (_, path, token) = green_account(&app, &t, &fake).await;

    // A customer's text keeps everything but the control characters.
    let conversation =
        customer_writes(&app, &path, &token, "79001234567@c.us", "NUL1", "Нужна\u{0} АКПП\u{1b}[31m\r\nна Камри").await;
    app.drain().await;
    assert_eq!(texts(&app, t.owner(), &conversation).await, ["Нужна АКПП[31m\nна Камри"]);
    let pending = suggestions(&app, t.owner(), &conversation, "pending", 1).await;
    let suggestion = pending[0]["id"].as_str().unwrap().to_string();
    let events_before: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&app.pool).await.unwrap();

    // An operator's is refused with a clear 400, and nothing is stored.
    let refusals = [
        (format!("/api/conversations/{conversation}/messages"), json!({"text": "x\u{0}"})),
        (format!("/api/conversations/{conversation}/messages"), json!({"text": "bell\u{7}"})),
        (format!("/api/suggestions/{suggestion}/edit"), json!({"text": "исправлено\u{0}"})),
        (format!("/api/suggestions/{suggestion}/reject"), json!({"reason": "плохо\u{0}"})),
        (format!("/api/conversations/{conversation}/escalate"), json!({"reason": "\u{0}"})),
    ];
    for (route, body) in refusals {
        let r = app.request(Method::POST, &route, Some(t.owner())).json(&body).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{route} {body}");
        let err: Value = r.json().await.unwrap();
        assert!(err["error"]["message"].as_str().unwrap().contains("control character"), "{err}");
    }
    let events_after: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&app.pool).await.unwrap();
    assert_eq!(events_before, events_after, "a refused command stores nothing");

    // Line breaks and tabs are fine.
    let r = app
        .request(Method::POST, &format!("/api/conversations/{conversation}/messages"), Some(t.owner()))
        .json(&json!({"text": "Добрый день!\r\n\tЕсть в наличии."}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
}

/// Writes an event into the log as an old release could have stored it: a customer message whose
/// text holds a NUL (the `json` column takes it; a `jsonb` read model cannot).
pub(crate) async fn store_poisoned_message(app: &TestApp, conversation: &str) {
    let (kind, sequence, payload, metadata, tenant): (String, i64, String, String, Uuid) = sqlx::query_as(
        "SELECT aggregate_type, sequence, payload::text, metadata::text, tenant_id FROM events \
          WHERE aggregate_id = $1 AND event_type = 'MessageReceived' ORDER BY sequence DESC LIMIT 1",
    )
    .bind(conversation)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let mut payload: Value = serde_json::from_str(&payload).unwrap();
    let m = &mut payload["MessageReceived"];
    m["message_id"] = json!(Uuid::now_v7());
    m["provider_message_id"] = json!("POISON");
    m["text"] = json!("яд\u{0}");
    let next: i64 = sqlx::query_scalar("SELECT max(sequence) + 1 FROM events WHERE aggregate_id = $1")
        .bind(conversation)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(next > sequence);
    let version: String = sqlx::query_scalar(
        "SELECT event_version FROM events WHERE aggregate_id = $1 AND event_type = 'MessageReceived' LIMIT 1",
    )
    .bind(conversation)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, tenant_id) \
         VALUES ($7, $1, $2, 'MessageReceived', $3, $4::json, $5::json, $6)",
    )
    .bind(conversation)
    .bind(next)
    .bind(version)
    .bind(serde_json::to_string(&payload).unwrap())
    .bind(metadata)
    .bind(tenant)
    .bind(kind)
    .execute(&app.pool)
    .await
    .unwrap();
}

async fn parked(app: &TestApp) -> Vec<(String, String, i32)> {
    sqlx::query_as("SELECT projector, aggregate_id, attempts FROM projector_parked ORDER BY projector")
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_a_read_model_cannot_apply_parks_its_aggregate_and_the_rest_goes_on() {
    let fake = FakeGreenApi::start().await;
    let app = app_with(&fast(&[("GREEN_API_URL", fake.url())])).await;
    app.start_background();
    let t = tenant(&app).await;
    let (_, path, token) = green_account(&app, &t, &fake).await;
    let poisoned = customer_writes(&app, &path, &token, "79001110001@c.us", "A1", "первое").await;
    let healthy = customer_writes(&app, &path, &token, "79001110002@c.us", "B1", "здравствуйте").await;
    app.drain().await;

    store_poisoned_message(&app, &poisoned).await;
    // Everything else keeps being applied: a message in another conversation, a new conversation,
    // and a new message of the poisoned one (skipped by the read models that parked it).
    customer_writes(&app, &path, &token, "79001110002@c.us", "B2", "есть коробка?").await;
    let newcomer = customer_writes(&app, &path, &token, "79001110003@c.us", "C1", "добрый вечер").await;
    customer_writes(&app, &path, &token, "79001110001@c.us", "A2", "после яда").await;
    app.drain().await;
    assert_eq!(texts(&app, t.owner(), &healthy).await, ["здравствуйте", "есть коробка?"]);
    assert_eq!(texts(&app, t.owner(), &newcomer).await, ["добрый вечер"]);
    assert_eq!(texts(&app, t.owner(), &poisoned).await, ["первое"], "the parked conversation stays as it was");

    let rows = parked(&app).await;
    assert!(rows.iter().any(|(p, _, _)| p == "messages"), "{rows:?}");
    assert!(rows.iter().all(|(_, id, attempts)| *id == poisoned && *attempts == 1), "{rows:?}");

    // Visible in `projections status` and in the metrics.
    let out = app.command(&[]).args(["projections", "status", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let messages = status.as_array().unwrap().iter().find(|p| p["name"] == "messages").unwrap();
    assert_eq!(messages["parked"][0]["aggregate_id"], poisoned.as_str());
    assert_eq!(messages["parked"][0]["event_type"], "MessageReceived");
    assert!(messages["parked"][0]["error"].as_str().unwrap().contains("unsupported Unicode escape"), "{messages}");
    eventually(Duration::from_secs(10), "the parked gauge", || async {
        let body = app.client.get(format!("{}/metrics", app.address)).send().await.ok()?.text().await.ok()?;
        body.contains("aisales_projector_parked{projector=\"messages\"} 1").then_some(())
    })
    .await;

    // A retry before the fix fails again and keeps it parked. (A read model that folds the
    // whole stretch into one row, such as the list's last message, may well apply it now.)
    let names: Vec<String> = rows.iter().map(|(p, _, _)| p.clone()).collect();
    let out = app.command(&[]).args(["projections", "retry-parked", "messages"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("still parked"));
    assert!(parked(&app).await.iter().any(|(p, _, attempts)| p == "messages" && *attempts == 2));

    // The fix: the stored event is corrected. A retry applies the skipped events, in order.
    sqlx::query(
        "UPDATE events SET payload = replace(payload::text, '\\u0000', '')::json \
          WHERE aggregate_id = $1 AND payload::text LIKE '%\\\\u0000%'",
    )
    .bind(&poisoned)
    .execute(&app.pool)
    .await
    .unwrap();
    for name in &names {
        let out = app.command(&[]).args(["projections", "retry-parked", name]).output().unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(parked(&app).await.is_empty());
    customer_writes(&app, &path, &token, "79001110001@c.us", "A3", "снова здесь").await;
    app.drain().await;
    assert_eq!(texts(&app, t.owner(), &poisoned).await, ["первое", "яд", "после яда", "снова здесь"]);

    // The read models agree with the events again.
    let out = app.command(&[]).args(["projections", "verify"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

// -------------------------------------------------------------------------------------------
// Password attempts.

/// The value of a counter in a Prometheus text exposition (0 when absent).
fn counter(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

/// Runs in a process of its own (the `aisales` binary), so that the count of argon2 verifications
/// in its `/metrics` is this test's alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_logins_verify_at_most_the_lockout_threshold_and_lock_the_account() {
    let db = aisales::testkit::TestDb::create().await.unwrap();
    let pool = db.pool(4).await.unwrap();
    let t = crate::helpers::create_tenant(&pool, "Shop").await;
    crate::helpers::create_user(&pool, t.id, "owner@race.example", "Right-Password-1", aisales::auth::Role::Owner)
        .await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cmd = crate::helpers::aisales(&db.url);
    cmd.arg("serve")
        .env("PORT", port.to_string())
        .env("HOST", "127.0.0.1")
        .env("REDIS_PREFIX", format!("t{}", Uuid::now_v7().simple()))
        .env("LOGIN_LOCKOUT_ATTEMPTS", "5")
        .env("RATE_LIMIT_LOGIN_PER_MINUTE", "0")
        .env("PASSWORD_HASH_CONCURRENCY", "2");
    let _server = crate::helpers::ChildGuard::spawn(cmd);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    eventually(Duration::from_secs(30), "the server to answer", || async {
        client.get(format!("{base}/health")).send().await.ok().filter(|r| r.status() == 200)
    })
    .await;
    let login = |password: &'static str| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let r = client
                .post(format!("{base}/auth/login"))
                .json(&json!({"email": "owner@race.example", "password": password}))
                .send()
                .await
                .unwrap();
            (r.status(), r.headers().get("retry-after").is_some())
        }
    };

    let guesses: Vec<_> = (0..20).map(|_| tokio::spawn(login("Wrong-Password-1"))).collect();
    let mut answers = Vec::new();
    for g in guesses {
        answers.push(g.await.unwrap());
    }
    for (status, retry_after) in &answers {
        match *status {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::SERVICE_UNAVAILABLE => assert!(retry_after, "a busy answer says when to retry"),
            other => panic!("unexpected answer {other} in {answers:?}"),
        }
    }
    let metrics = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    let verified = counter(&metrics, "aisales_password_verifications_total");
    assert!((1.0..=5.0).contains(&verified), "{verified} argon2 verifications for 20 parallel guesses");
    let locked: bool = sqlx::query_scalar("SELECT locked_until > now() FROM users WHERE email = 'owner@race.example'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(locked, "the account is locked once its attempts are spent");
    // Locked: the right password is refused too, without any hashing.
    assert_eq!(login("Right-Password-1").await.0, StatusCode::UNAUTHORIZED);
    let metrics = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert_eq!(counter(&metrics, "aisales_password_verifications_total"), verified);
    pool.close().await;
    crate::helpers::drop_database_in_background(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_current_passwords_are_limited_like_logins() {
    let app = crate::helpers::spawn_app(&[("RATE_LIMIT_LOGIN_PER_MINUTE", "0"), ("LOGIN_LOCKOUT_ATTEMPTS", "3")]).await;
    let t = crate::helpers::create_tenant(&app.pool, "Shop").await;
    crate::helpers::create_user(&app.pool, t.id, "owner@me.example", "Right-Password-1", aisales::auth::Role::Owner)
        .await;
    let r = app
        .client
        .post(format!("{}/auth/login", app.address))
        .json(&json!({"email": "owner@me.example", "password": "Right-Password-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let csrf = r.json::<Value>().await.unwrap()["csrf_token"].as_str().unwrap().to_string();
    let change = |current: &'static str| {
        let (client, url, cookie, csrf) =
            (app.client.clone(), format!("{}/api/me/password", app.address), cookie.clone(), csrf.clone());
        async move {
            client
                .post(url)
                .header("cookie", cookie)
                .header("x-csrf-token", csrf)
                .json(&json!({"current_password": current, "new_password": "New-Password-42"}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    for _ in 0..3 {
        assert_eq!(change("Wrong-Password-1").await, StatusCode::FORBIDDEN);
    }
    // The attempts are spent: even the right current password is refused until the lock passes.
    assert_eq!(change("Right-Password-1").await, StatusCode::TOO_MANY_REQUESTS);
    sqlx::query("UPDATE users SET locked_until = now() - interval '1 second'").execute(&app.pool).await.unwrap();
    assert_eq!(change("Right-Password-1").await, StatusCode::OK);
}

// -------------------------------------------------------------------------------------------
// Disabled channel accounts.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reply_through_a_disabled_account_is_not_sent_and_fails_with_the_reason() {
    let fake = FakeGreenApi::start().await;
    let app = app_with(&fast(&[("GREEN_API_URL", fake.url())])).await;
    app.start_background();
    let t = tenant(&app).await;
    let (account, path, token) = green_account(&app, &t, &fake).await;
    let conversation = customer_writes(&app, &path, &token, "79001112233@c.us", "D1", "Есть коробка?").await;
    app.drain().await;

    let r = app.request(Method::DELETE, &format!("/api/channels/{account}"), Some(t.owner())).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let r = app
        .request(Method::POST, &format!("/api/conversations/{conversation}/messages"), Some(t.owner()))
        .json(&json!({"text": "Есть, 25 000 ₽"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let failed = crate::helpers::outbound(&app, t.owner(), &conversation, "failed").await;
    assert!(failed["failure_reason"].as_str().unwrap().contains("disabled"), "{failed}");
    let failures = crate::helpers::opened_events(&app.pool, Some(&conversation), "ReplyFailed").await;
    let reason = failures[0].2["reason"].as_str().unwrap().to_string();
    assert!(reason.contains("channel account is disabled"), "{reason}");
    app.drain().await;
    assert!(fake.sent_messages().is_empty(), "nothing went out through the disabled account");
}

// -------------------------------------------------------------------------------------------
// The live event stream.

/// Reads a stream's body until it ends; `None` when it is still open after `within`.
async fn ends_within(mut r: reqwest::Response, within: Duration) -> Option<String> {
    let mut seen = String::new();
    tokio::time::timeout(within, async {
        while let Ok(Some(chunk)) = r.chunk().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .ok()?;
    Some(seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logging_out_ends_the_event_stream_and_a_revoked_token_too() {
    let app =
        crate::helpers::spawn_app(&[("RATE_LIMIT_LOGIN_PER_MINUTE", "0"), ("EVENT_STREAM_RECHECK_SECS", "1")]).await;
    let t = crate::helpers::create_tenant(&app.pool, "Shop").await;
    crate::helpers::create_user(&app.pool, t.id, "owner@live.example", "Right-Password-1", aisales::auth::Role::Owner)
        .await;
    let r = app
        .client
        .post(format!("{}/auth/login", app.address))
        .json(&json!({"email": "owner@live.example", "password": "Right-Password-1"}))
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let csrf = r.json::<Value>().await.unwrap()["csrf_token"].as_str().unwrap().to_string();
    let stream =
        app.client.get(format!("{}/api/events/stream", app.address)).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let r = app
        .client
        .post(format!("{}/auth/logout", app.address))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let seen = ends_within(stream, Duration::from_secs(10)).await.expect("the stream ends after logout");
    assert!(seen.contains("event: end"), "{seen}");

    // A token revoked while its stream is open.
    let (token_id, token) = {
        let mut conn = app.pool.acquire().await.unwrap();
        let c =
            aisales::auth::tokens::create(&mut conn, t.id, "live", aisales::auth::Role::Viewer, "test").await.unwrap();
        (c.id, c.token)
    };
    let stream = app.request(Method::GET, "/api/events/stream", Some(&token)).send().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let r = app.request(Method::DELETE, &format!("/api/tokens/{token_id}"), Some(t.owner())).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let seen = ends_within(stream, Duration::from_secs(10)).await.expect("the stream ends after revocation");
    assert!(seen.contains("event: end"), "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn event_streams_are_capped_per_token_and_per_tenant() {
    let app =
        crate::helpers::spawn_app(&[("EVENT_STREAMS_PER_CREDENTIAL", "2"), ("EVENT_STREAMS_PER_TENANT", "3")]).await;
    let t = crate::helpers::create_tenant(&app.pool, "Shop").await;
    let open = |token: String| {
        let req = app.request(Method::GET, "/api/events/stream", Some(&token));
        async move { req.send().await.unwrap() }
    };
    let owner = t.owner().to_string();
    let viewer = t.token(aisales::auth::Role::Viewer).to_string();
    let a = open(owner.clone()).await;
    let b = open(owner.clone()).await;
    assert_eq!((a.status(), b.status()), (StatusCode::OK, StatusCode::OK));
    let over = open(owner.clone()).await;
    assert_eq!(over.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(over.json::<Value>().await.unwrap()["error"]["code"], "too_many_streams");
    let c = open(viewer.clone()).await;
    assert_eq!(c.status(), StatusCode::OK);
    assert_eq!(open(viewer.clone()).await.status(), StatusCode::TOO_MANY_REQUESTS, "the tenant's cap");
    // Another tenant is not affected.
    let other = crate::helpers::create_tenant(&app.pool, "Other").await;
    assert_eq!(open(other.owner().to_string()).await.status(), StatusCode::OK);
    // A stream that ends gives its place back.
    drop(a);
    eventually(Duration::from_secs(10), "a place to be given back", || {
        let owner = owner.clone();
        let open = &open;
        async move { (open(owner).await.status() == StatusCode::OK).then_some(()) }
    })
    .await;
    drop((b, c));
}

// -------------------------------------------------------------------------------------------
// Deployment files.

fn repo_root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn start_sh_runs_production_when_the_environment_says_nothing() {
    let dir = crate::helpers::scratch_dir();
    let stub = dir.join("aisales-stub");
    std::fs::write(&stub, "#!/bin/sh\necho \"APP_ENV=${APP_ENV:-unset} $*\"\n").unwrap();
    std::process::Command::new("chmod").arg("+x").arg(&stub).status().unwrap();
    let run = |env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new("sh");
        cmd.arg(repo_root().join("start.sh"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .env("AISALES_BIN", &stub);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert!(run(&[]).contains("APP_ENV=production serve --all"), "{}", run(&[]));
    assert!(run(&[("APP_ENV", "staging")]).contains("APP_ENV=staging serve --all"));
}

#[test]
fn the_pm2_file_refuses_an_environment_that_is_not_production() {
    if std::process::Command::new("node").arg("--version").output().is_err() {
        eprintln!("node is not installed; skipped");
        return;
    }
    let dir = crate::helpers::scratch_dir();
    std::fs::copy(repo_root().join("ecosystem.config.cjs"), dir.join("ecosystem.config.cjs")).unwrap();
    let load = |dotenv: &str| {
        std::fs::write(dir.join(".env"), dotenv).unwrap();
        std::process::Command::new("node")
            .arg("-e")
            .arg("const c = require('./ecosystem.config.cjs'); console.log(c.apps[0].env.APP_ENV)")
            .current_dir(&dir)
            .env_remove("APP_ENV")
            .env_remove("NODE_ENV")
            .output()
            .unwrap()
    };
    let out = load("");
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "production");
    let out = load("APP_ENV=development\n");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("set APP_ENV=production"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_owners_demoted_at_once_leave_one_owner() {
    let app = app_with(&fast(&[])).await;
    for round in 0..6 {
        let t = tenant(&app).await;
        let mut owners = Vec::new();
        for n in 0..2 {
            let created = app
                .post_json(
                    "/api/users",
                    t.owner(),
                    json!({"email": format!("owner{round}-{n}@shop.test"), "role": "owner"}),
                )
                .await;
            owners.push(created["user"]["id"].as_str().unwrap().to_string());
        }
        let demote = |id: String| {
            let (client, url, token) =
                (app.client.clone(), format!("{}/api/users/{id}", app.address), t.owner().to_string());
            tokio::spawn(async move {
                client.patch(url).bearer_auth(token).json(&json!({"role": "admin"})).send().await.unwrap().status()
            })
        };
        let (a, b) = (demote(owners[0].clone()), demote(owners[1].clone()));
        let mut statuses = [a.await.unwrap(), b.await.unwrap()];
        statuses.sort();
        assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT], "round {round}");
        let left: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM users WHERE tenant_id = $1 AND role = 'owner' AND disabled_at IS NULL",
        )
        .bind(t.id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_eq!(left, 1, "round {round}: one active owner is left");
    }
}

#[tokio::test]
async fn a_restricted_tenant_cannot_connect_or_register_channels() {
    let fake = FakeGreenApi::start().await;
    let app = app_with(&fast(&[("GREEN_API_URL", fake.url())])).await;
    let t = tenant(&app).await;
    let (account, _, _) = green_account(&app, &t, &fake).await;
    sqlx::query("UPDATE tenants SET status = 'restricted' WHERE id = $1").bind(t.id).execute(&app.pool).await.unwrap();
    let accounts = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM channel_accounts WHERE tenant_id = $1")
            .bind(t.id)
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    let before = accounts().await;
    let r = app
        .request(Method::POST, "/api/channels", Some(t.owner()))
        .json(&json!({"kind": "telegram", "bot_token": "7000000009:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert!(body.to_string().contains("restricted"), "{body}");
    assert_eq!(accounts().await, before, "nothing stored");
    let r =
        app.request(Method::POST, &format!("/api/channels/{account}/webhook"), Some(t.owner())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

/// Every command route that names a conversation, suggestion, reply, lookup or account answers
/// another tenant's credential as if the thing did not exist, and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_tenant_gets_404_from_every_command_route_and_changes_nothing() {
    let fake = FakeGreenApi::start().await;
    let app = app_with(&fast(&[("GREEN_API_URL", fake.url())])).await;
    app.start_background();
    let t = tenant(&app).await;
    let other = tenant(&app).await;
    let (account, path, token) = green_account(&app, &t, &fake).await;
    let conversation =
        customer_writes(&app, &path, &token, "79001110001@c.us", "BAE5XT1", "VIN JTNBK40K203012345, нужна АКПП").await;
    let suggestion =
        suggestions(&app, t.owner(), &conversation, "pending", 1).await[0]["id"].as_str().unwrap().to_string();
    let reply = app
        .post_json(&format!("/api/conversations/{conversation}/messages"), t.owner(), json!({"text": "Проверим"}))
        .await;
    let reply_id =
        reply["created"]["message_id"].as_str().or(reply["message_id"].as_str()).expect("the reply's id").to_string();
    let lookup: String = eventually(Duration::from_secs(20), "the vehicle lookup", || async {
        sqlx::query_scalar::<_, String>(
            "SELECT aggregate_id FROM events WHERE aggregate_type = 'vehicle_lookup' ORDER BY global_position LIMIT 1",
        )
        .fetch_optional(&app.pool)
        .await
        .unwrap()
    })
    .await;
    // Let the background settle, then nothing may change through the other tenant.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events_of_t = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events WHERE metadata->>'tenant_id' = $1")
            .bind(t.id.to_string())
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    let before = events_of_t().await;
    let c = &conversation;
    let routes: Vec<(String, Value)> = vec![
        (format!("/api/conversations/{c}/escalate"), json!({"reason": "чужой"})),
        (format!("/api/conversations/{c}/reopen"), json!({})),
        (format!("/api/conversations/{c}/mute"), json!({"muted": true})),
        (format!("/api/conversations/{c}/assign"), json!({"operator": null})),
        (format!("/api/conversations/{c}/read"), json!({})),
        (format!("/api/conversations/{c}/suggestions"), json!({})),
        (format!("/api/conversations/{c}/replies/{reply_id}/retry"), json!({})),
        (format!("/api/suggestions/{suggestion}/edit"), json!({"text": "чужой текст"})),
        (format!("/api/channels/{account}/webhook"), json!({})),
        (format!("/api/vehicle-lookups/{lookup}/correct"), json!({"value": "JTNBK40K203012346"})),
        (format!("/api/vehicle-lookups/{lookup}/confirm-gearbox"), json!({"model": "A245E"})),
    ];
    for (route, body) in &routes {
        let r = app.request(Method::POST, route, Some(other.owner())).json(body).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{route}");
    }
    assert_eq!(events_of_t().await, before, "nothing was recorded for the owner of these things");
    let r =
        app.request(Method::GET, &format!("/api/conversations/{c}/events"), Some(other.owner())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_command_retried_with_its_idempotency_key_runs_once_and_gets_the_first_answer() {
    let fake = FakeGreenApi::start().await;
    let app = app_with(&fast(&[("GREEN_API_URL", fake.url())])).await;
    let t = tenant(&app).await;
    let (_, path, token) = green_account(&app, &t, &fake).await;
    let conversation = customer_writes(&app, &path, &token, "79001110002@c.us", "BAE5ID1", "Нужна МКПП").await;
    let route = format!("/api/conversations/{conversation}/messages");
    let replies = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM events WHERE aggregate_id = $1 AND event_type = 'OperatorReplied'",
        )
        .bind(&conversation)
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    let send = |key: &'static str, text: &'static str| {
        app.request(Method::POST, &route, Some(t.owner())).header("idempotency-key", key).json(&json!({"text": text}))
    };

    // Five copies of one command at once: one runs, the others wait their turn or get its answer.
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let req = send("reply-1", "Есть в наличии");
        tasks.push(tokio::spawn(async move {
            let r = req.send().await.unwrap();
            let replayed = r.headers().contains_key("idempotent-replayed");
            (r.status(), replayed, r.text().await.unwrap())
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    assert_eq!(replies().await, 1, "one reply for five copies: {answers:?}");
    let first: Vec<_> = answers.iter().filter(|(s, replayed, _)| *s == StatusCode::ACCEPTED && !replayed).collect();
    assert_eq!(first.len(), 1, "{answers:?}");
    for (status, replayed, body) in &answers {
        assert!(
            (*status == StatusCode::ACCEPTED && (!replayed || body == &first[0].2)) || *status == StatusCode::CONFLICT,
            "{status} {body}"
        );
    }
    // A retry later gets the same answer, marked as replayed, and runs nothing.
    let again = send("reply-1", "Есть в наличии").send().await.unwrap();
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.text().await.unwrap(), first[0].2);
    assert_eq!(replies().await, 1);
    // The same key for another request is refused; a new key runs.
    let other = send("reply-1", "Другой текст").send().await.unwrap();
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(send("reply-2", "Другой текст").send().await.unwrap().status(), StatusCode::ACCEPTED);
    assert_eq!(replies().await, 2);
    // Another tenant's identical key is its own: it cannot read this answer.
    let theirs = app
        .request(Method::POST, &route, Some(_other_owner(&app).await.as_str()))
        .header("idempotency-key", "reply-1")
        .json(&json!({"text": "Есть в наличии"}))
        .send()
        .await
        .unwrap();
    assert_eq!(theirs.status(), StatusCode::NOT_FOUND);
    // A key that is not printable ASCII is refused before anything runs.
    let bad = app
        .request(Method::POST, &route, Some(t.owner()))
        .header("idempotency-key", "")
        .json(&json!({"text": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(replies().await, 2);
}

async fn _other_owner(app: &TestApp) -> String {
    tenant(app).await.owner().to_string()
}

/// A projector skips the events of an aggregate it parked, an erasure's included. Erasing the
/// customer writes `[erased]` over the clear text that made the event fail and retries the
/// aggregate, so its rows are scrubbed like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn erasing_a_customer_reaches_the_rows_a_projector_parked() {
    let fake = FakeGreenApi::start().await;
    let app = app_with(&fast(&[("GREEN_API_URL", fake.url())])).await;
    app.start_background();
    let t = tenant(&app).await;
    let (_, path, token) = green_account(&app, &t, &fake).await;
    let poisoned = customer_writes(&app, &path, &token, "79001110001@c.us", "A1", "первое").await;
    app.drain().await;
    store_poisoned_message(&app, &poisoned).await;
    customer_writes(&app, &path, &token, "79001110001@c.us", "A2", "после яда").await;
    app.drain().await;
    assert_eq!(texts(&app, t.owner(), &poisoned).await, ["первое"], "the conversation is parked");
    assert!(parked(&app).await.iter().any(|(p, id, _)| p == "messages" && *id == poisoned));

    let started = crate::helpers::opened_events(&app.pool, Some(&poisoned), "ConversationStarted").await;
    let customer = started[0].2["customer_id"].as_str().unwrap().to_string();
    let r = app.request(Method::DELETE, &format!("/api/customers/{customer}"), Some(t.owner())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    app.drain().await;

    assert_eq!(parked(&app).await, vec![], "retried and applied");
    assert_eq!(texts(&app, t.owner(), &poisoned).await, ["[erased]", "[erased]", "[erased]"]);
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT row_to_json(m)::text FROM rm_messages m WHERE conversation_id = $1::uuid")
            .bind(&poisoned)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let events: Vec<String> = sqlx::query_scalar("SELECT payload::text FROM events WHERE aggregate_id = $1")
        .bind(&poisoned)
        .fetch_all(&app.pool)
        .await
        .unwrap();
    for held in ["первое", "после яда", "яд"] {
        assert!(!rows.iter().any(|r| r.contains(held)), "{held} in {rows:?}");
        assert!(!events.iter().any(|e| e.contains(held)), "{held} is still stored in clear");
    }
    let out = app.command(&[]).args(["projections", "verify"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}
