//! `/health`, `/ready`, `/metrics` and the behaviour every route shares.

use std::process::{Command, Stdio};

use crate::helpers::spawn_app;

#[tokio::test]
async fn health_answers_with_version_and_uptime() {
    let app = spawn_app(&[]).await;
    let resp = app.client.get(format!("{}/health", app.address)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-request-id"));
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["uptime_s"].is_u64());
}

#[tokio::test]
async fn request_id_is_kept_when_given() {
    let app = spawn_app(&[]).await;
    let resp =
        app.client.get(format!("{}/health", app.address)).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(resp.headers()["x-request-id"], "abc-123");
}

#[tokio::test]
async fn ready_passes_with_postgres_and_redis_up() {
    let app = spawn_app(&[("AI_INTEGRATIONS_OPENAI_API_KEY", "sk-test")]).await;
    aisales::infra::db::migrate(&app.pool).await.unwrap();
    assert!(app.state.settings.openai_api_key.is_some());
    let resp = app.client.get(format!("{}/ready", app.address)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "ready", "{body}");
    for check in body["checks"].as_array().unwrap() {
        assert_eq!(check["status"], "pass", "{check}");
        assert!(check["latency_ms"].is_u64());
    }
}

#[tokio::test]
async fn ready_without_ai_key_is_degraded_not_failed() {
    let app = spawn_app(&[]).await;
    let resp = app.client.get(format!("{}/ready", app.address)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "degraded");
}

#[tokio::test]
async fn ready_is_503_naming_redis_when_redis_is_unreachable() {
    let app = spawn_app(&[("REDIS_URL", "redis://127.0.0.1:1/")]).await;
    let resp = app.client.get(format!("{}/ready", app.address)).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "unready");
    let failed: Vec<&str> = body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail" && c["name"] != "ai")
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["redis"], "{body}");
}

#[tokio::test]
async fn ready_is_503_when_postgres_is_unreachable() {
    let redis = crate::helpers::redis_url();
    let settings = aisales::config::Settings::for_tests(&[
        ("DATABASE_URL", "postgres://x:secretpw@127.0.0.1:1/none"),
        ("REDIS_URL", &redis),
    ]);
    let pool = aisales::infra::db::pool(&settings).unwrap();
    let redis = aisales::infra::redis::Redis::new(&settings).unwrap();
    let state = aisales::http::AppState::new(std::sync::Arc::new(settings), pool, redis);
    let (code, body) = aisales::http::health::readiness(&state).await;
    let body = serde_json::to_value(&body).unwrap();
    assert_eq!(code, 503);
    assert_eq!(body["checks"][0]["name"], "postgres");
    assert_eq!(body["checks"][0]["status"], "fail");
    assert_eq!(body["checks"][1]["status"], "pass");
    assert!(!body.to_string().contains("secretpw"), "no credentials in the answer: {body}");
}

#[tokio::test]
async fn requests_answer_503_with_retry_after_while_the_database_is_unreachable() {
    let app = spawn_app(&[
        ("DATABASE_URL", "postgres://x:secretpw@127.0.0.1:1/none"),
        ("DATABASE_ACQUIRE_TIMEOUT_SECS", "1"),
    ])
    .await;
    let resp = app
        .client
        .get(format!("{}/api/conversations", app.address))
        .bearer_auth(format!("aisk_{}", "a".repeat(40)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503, "an unreachable database is not an internal error");
    assert_eq!(resp.headers()["retry-after"], "5");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert!(!body.to_string().contains("secretpw"), "no credentials in the answer: {body}");
    // A messenger's webhook delivery is told to come back, not that it failed for good.
    let resp = app
        .client
        .post(format!("{}/webhooks/green-api/{}/{}", app.address, uuid::Uuid::now_v7(), uuid::Uuid::now_v7()))
        .json(&serde_json::json!({"typeWebhook": "incomingMessageReceived", "idMessage": "X1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    // Health still answers: the process is alive, only not ready.
    let resp = app.client.get(format!("{}/health", app.address)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn unknown_routes_answer_json_404() {
    let app = spawn_app(&[]).await;
    let resp = app.client.get(format!("{}/no/such/route", app.address)).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}

/// Path to promtool: `PROMTOOL`, else `promtool` on PATH (the test script installs it).
fn promtool() -> String {
    std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".into())
}

#[tokio::test]
async fn metrics_pass_promtool_and_cover_http_process_and_build() {
    let app = spawn_app(&[]).await;
    for path in ["/health", "/ready", "/nope"] {
        app.client.get(format!("{}{path}", app.address)).send().await.unwrap();
    }
    let resp = app.client.get(format!("{}/metrics", app.address)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = resp.text().await.unwrap();
    for needle in [
        "aisales_http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"}",
        "aisales_http_request_duration_seconds_bucket{method=\"GET\",route=\"/health\",le=\"0.005\"}",
        "process_resident_memory_bytes ",
        "process_cpu_seconds_total ",
        "process_open_fds ",
        "aisales_build_info{version=",
    ] {
        assert!(text.contains(needle), "metrics lack {needle}:\n{text}");
    }
    let mut child = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("promtool not found ({e}); run the tests with scripts/test.sh, which installs it"));
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool rejected the metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn metrics_can_need_a_token_and_can_leave_the_main_port() {
    let app = spawn_app(&[("METRICS_TOKEN", "metrics-token-0123456789")]).await;
    let url = format!("{}/metrics", app.address);
    assert_eq!(app.client.get(&url).send().await.unwrap().status(), 401);
    assert_eq!(app.client.get(&url).bearer_auth("wrong-token-0123456789").send().await.unwrap().status(), 401);
    let ok = app.client.get(&url).bearer_auth("metrics-token-0123456789").send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.text().await.unwrap().contains("# TYPE"));

    // `aisales serve` with METRICS_PORT: the metrics on their own listener, none on the main port.
    let db = aisales::testkit::TestDb::create().await.unwrap();
    let free = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (port, metrics_port) = (free(), free());
    let mut cmd = crate::helpers::aisales(&db.url);
    cmd.arg("serve")
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("METRICS_PORT", metrics_port.to_string())
        .env("METRICS_TOKEN", "metrics-token-0123456789");
    let _server = crate::helpers::ChildGuard::spawn(cmd);
    let client = reqwest::Client::new();
    crate::helpers::eventually(std::time::Duration::from_secs(20), "the metrics listener", || {
        let client = client.clone();
        async move {
            client
                .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
                .bearer_auth("metrics-token-0123456789")
                .send()
                .await
                .ok()
                .filter(|r| r.status() == 200)
        }
    })
    .await;
    let main = client.get(format!("http://127.0.0.1:{port}/metrics")).send().await.unwrap();
    assert_eq!(main.status(), 404);
    let open = client.get(format!("http://127.0.0.1:{metrics_port}/metrics")).send().await.unwrap();
    assert_eq!(open.status(), 401);
}
