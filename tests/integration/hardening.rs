//! Hostile and broken input: control characters in text, an event no read model can apply.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::fakes::green_api::{FakeGreenApi, green_api_incoming_text};
use crate::helpers::{TestApp, app_with, eventually, fast, green_account, post_green, suggestions, tenant, try_get};

/// Posts one customer message; returns its conversation id.
async fn customer_writes(app: &TestApp, path: &str, token: &str, chat: &str, id: &str, text: &str) -> String {
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
async fn store_poisoned_message(app: &TestApp, conversation: &str) {
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
