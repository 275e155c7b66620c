//! Leads end to end on the fakes: a Marquiz post becomes a lead on the board and exactly one
//! GREEN-API `sendMessage` to `<phone>@c.us` with the car and gearbox; the customer's reply marks
//! the lead replied and cancels the no-reply check; without a reply the escalation bot's message
//! reaches a fake Telegram after the (shortened) wait, also when every process was restarted and
//! Redis lost its streams in between; ten identical posts at once are one lead and one message; a
//! wrong or missing secret is 401 with nothing stored; another tenant's lead is 404; outside
//! working hours the first message waits for the opening (an injected clock).

use std::time::Duration;

use aisales::auth::Role;
use chrono::{TimeZone, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::fakes::green_api::{FakeGreenApi, green_api_incoming_text};
use crate::fakes::telegram::FakeTelegram;
use crate::hardening::customer_writes;
use crate::helpers::{
    ChildGuard, TestApp, TestTenant, app_with, create_tenant, create_user, eventually, fast, green_account, post_green,
    tenant, try_get,
};

pub(crate) const PHONE: &str = "+7 (999) 123-45-67";
pub(crate) const CHAT: &str = "79991234567@c.us";
const TEAM_CHAT: &str = "-1001234567890";

pub(crate) fn marquiz(phone: &str) -> Value {
    json!({
        "contacts": {"name": "Иван", "phone": phone},
        "answers": [
            {"q": "Марка и модель автомобиля", "a": "Kia Rio 2015"},
            {"q": "Какой тип коробки передач?", "a": "Автомат"},
            {"q": "Ваш город", "a": "Казань"}
        ],
        "quiz": {"id": "5f1a", "name": "Подбор КПП"},
        "created": "2026-03-02T10:00:00Z",
        "extra": {"utm": {"source": "yandex"}, "href": "https://example.ru/kpp"}
    })
}

/// A tenant open every hour of every day, with the escalation bot pointed at the fake Telegram.
pub(crate) struct Shop {
    pub(crate) t: TestTenant,
    pub(crate) green: FakeGreenApi,
    pub(crate) green_path: String,
    pub(crate) green_token: String,
    pub(crate) form_path: String,
    form_id: String,
}

fn all_week() -> Value {
    json!({
        "timezone": "Europe/Moscow",
        "working_hours_start": "00:00:00",
        "working_hours_end": "00:00:00",
        "working_days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    })
}

pub(crate) async fn shop(app: &TestApp) -> Shop {
    shop_with_hours(app, all_week()).await
}

async fn shop_with_hours(app: &TestApp, hours: Value) -> Shop {
    let t = tenant(app).await;
    let r = app.request(Method::PATCH, "/api/tenant", Some(t.owner())).json(&hours).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let green = FakeGreenApi::start().await;
    let (_, green_path, green_token) = green_account(app, &t, &green).await;
    let r = app
        .request(Method::PUT, "/api/lead-settings/escalation-bot", Some(t.owner()))
        .json(&json!({"bot_token": FakeTelegram::TOKEN, "chat_id": TEAM_CHAT}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT, "{}", r.text().await.unwrap());
    let form = app.post_json("/api/lead-forms", t.owner(), json!({"kind": "marquiz", "name": "Квиз КПП"})).await;
    let url = form["webhook_url"].as_str().unwrap().to_string();
    let form_id = form["form_id"].as_str().unwrap().to_string();
    assert!(url.starts_with(&format!("/webhooks/leads/{form_id}/")), "{url}");
    Shop { t, green, green_path, green_token, form_path: url, form_id }
}

pub(crate) async fn post_form(app: &TestApp, path: &str, body: &Value) -> reqwest::Response {
    app.client.post(format!("{}{path}", app.address)).json(body).send().await.unwrap()
}

async fn leads(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    app.get_json(&format!("/api/leads{query}"), token).await["items"].as_array().cloned().unwrap_or_default()
}

/// The lead once its status on the board is `status` (the board follows the events closely).
async fn lead_with_status(app: &TestApp, token: &str, id: &str, status: &str) -> Value {
    eventually(Duration::from_secs(20), &format!("lead {id} {status}"), || async {
        let v = try_get(app, &format!("/api/leads/{id}"), token).await?;
        (v["status"] == status).then_some(v)
    })
    .await
}

/// The board once it lists `n` leads for `query`.
pub(crate) async fn board(app: &TestApp, token: &str, query: &str, n: usize) -> Vec<Value> {
    eventually(Duration::from_secs(20), &format!("{n} lead(s) for {query}"), || async {
        let v = try_get(app, &format!("/api/leads{query}"), token).await?;
        let items = v["items"].as_array().cloned().unwrap_or_default();
        (items.len() == n).then_some(items)
    })
    .await
}

async fn lead_events(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = 'lead'").fetch_one(&app.pool).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_marquiz_post_reaches_the_customer_once_and_the_reply_cancels_the_no_reply_check() {
    let tg = FakeTelegram::start().await;
    let app = app_with(&fast(&[("TELEGRAM_API_URL", tg.url())])).await;
    app.start_background();
    let s = shop(&app).await;

    let r = post_form(&app, &s.form_path, &marquiz(PHONE)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let posted: Value = r.json().await.unwrap();
    let lead_id = posted["lead_id"].as_str().unwrap().to_string();
    app.drain().await;

    // On the board, contacted through GREEN-API in a conversation of its own.
    let items = board(&app, s.t.owner(), "?status=contacted&kind=gearbox", 1).await;
    let lead = &items[0];
    assert_eq!(lead["id"], lead_id.as_str());
    assert_eq!(lead["kind"], "gearbox");
    assert_eq!(lead["name"], "Иван");
    assert_eq!(lead["phone"], "+79991234567");
    assert_eq!(lead["car"], "Kia Rio 2015");
    assert_eq!(lead["gearbox_type"], "Автомат");
    assert_eq!(lead["city"], "Казань");
    assert_eq!(lead["channel"], "green_api");
    assert!(lead["no_reply_due_at"].is_string(), "a no-reply check is pending: {lead}");
    let conversation = lead["conversation_id"].as_str().unwrap().to_string();

    // Exactly one sendMessage, to the phone's chat, with the car and the gearbox.
    let sent = s.green.sent_messages();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].0, CHAT);
    assert!(sent[0].1.contains("🚗 Автомобиль: Kia Rio 2015"), "{}", sent[0].1);
    assert!(sent[0].1.contains("⚙️ Тип КПП: Автомат"), "{}", sent[0].1);
    assert_eq!(s.green.checked_numbers(), [79991234567], "checkWhatsapp before writing");
    let messages = app.get_json(&format!("/api/conversations/{conversation}/messages"), s.t.owner()).await;
    assert_eq!(messages["items"].as_array().unwrap().len(), 1, "{messages}");

    // The customer answers: the lead is replied, its check cancelled, the team not bothered.
    let body = green_api_incoming_text(FakeGreenApi::ID_INSTANCE, CHAT, "Иван", "IN-1", "Да, всё верно");
    assert!(post_green(&app, &s.green_path, &s.green_token, &body).await.status().is_success());
    app.drain().await;
    let detail = lead_with_status(&app, s.t.owner(), &lead_id, "replied").await;
    assert!(detail["no_reply_due_at"].is_null());
    let types: Vec<&str> = detail["timeline"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    for t in ["LeadReceived", "OutreachScheduled", "OutreachStarted", "OutreachAttempted", "LeadContacted"] {
        assert!(types.contains(&t), "{t} in {types:?}");
    }
    let cancelled = types.iter().position(|t| *t == "NoReplyCheckCancelled").expect("the check is cancelled");
    assert_eq!(types[cancelled + 1], "CustomerReplied");
    eventually(Duration::from_secs(10), "the no-reply check closed", || async {
        let check: String = sqlx::query_scalar("SELECT status FROM work_items WHERE job_id LIKE 'lead-no-reply:%'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
        (check == "done").then_some(())
    })
    .await;
    assert!(tg.sent_messages().is_empty());
    // The same conversation, no second message.
    assert_eq!(s.green.sent_messages().len(), 1);
    let stats = app.get_json("/api/leads/stats", s.t.owner()).await;
    let day = &stats["items"][0];
    assert_eq!(
        (day["received"].as_i64(), day["contacted"].as_i64(), day["replied"].as_i64()),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(day["source"], "Подбор КПП");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_reply_the_team_is_told_even_after_every_process_restarted_and_redis_lost_the_jobs() {
    let tg = FakeTelegram::start().await;
    let app = app_with(&fast(&[("TELEGRAM_API_URL", tg.url()), ("LEADS_NO_REPLY_SECS", "4".into())])).await;
    let s = shop(&app).await;
    let env = [("LEADS_NO_REPLY_SECS", "4"), ("PROJECTOR_POLL_INTERVAL_MS", "100"), ("WORK_SWEEP_INTERVAL_MS", "200")];
    let processes = || {
        let mut projector = app.command(&env);
        projector.arg("projector");
        let mut worker = app.command(&env);
        worker.args(["worker", "all"]);
        (ChildGuard::spawn(projector), ChildGuard::spawn(worker))
    };
    let (mut projector, mut worker) = processes();

    assert_eq!(post_form(&app, &s.form_path, &marquiz(PHONE)).await.status(), StatusCode::CREATED);
    let lead = eventually(Duration::from_secs(30), "the lead to be contacted", || async {
        let v = try_get(&app, "/api/leads?status=contacted", s.t.owner()).await?;
        v["items"].as_array().and_then(|i| i.first().cloned())
    })
    .await;
    let id = lead["id"].as_str().unwrap().to_string();
    assert_eq!(s.green.sent_messages().len(), 1);

    // Every process stops before the check is due; Redis loses the job streams.
    projector.kill();
    worker.kill();
    let prefix = &app.state.settings.bus.redis_prefix;
    let mut redis =
        redis::Client::open(crate::helpers::redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}:*")).query_async(&mut redis).await.unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL").arg(&keys).query_async(&mut redis).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(tg.sent_messages().is_empty(), "nothing is running");

    let (_projector, _worker) = processes();
    let notice =
        eventually(Duration::from_secs(30), "the team's notice", || async { tg.sent_messages().into_iter().next() })
            .await;
    assert_eq!(notice.0.to_string(), TEAM_CHAT);
    assert!(notice.1.contains("Клиент не отвечает"), "{}", notice.1);
    assert!(notice.1.contains("Kia Rio 2015"), "{}", notice.1);
    // The timeline is read from the events, the status from the board, which follows them.
    let detail = eventually(Duration::from_secs(20), "the notice recorded and the board caught up", || async {
        let v = try_get(&app, &format!("/api/leads/{id}"), s.t.owner()).await?;
        let notified = v["timeline"].as_array()?.iter().any(|e| e["type"] == "TeamNotified");
        (notified && v["status"] == "no_reply").then_some(v)
    })
    .await;
    assert_eq!(detail["status"], "no_reply");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(tg.sent_messages().len(), 1, "told once");
    assert_eq!(s.green.sent_messages().len(), 1, "the customer was written to once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_identical_posts_at_once_are_one_lead_and_one_message() {
    let app = app_with(&fast(&[])).await;
    app.start_background();
    let s = shop(&app).await;
    let body = marquiz("8 999 123 45 67");
    let posts = (0..10).map(|_| post_form(&app, &s.form_path, &body));
    let answers = futures::future::join_all(posts).await;
    let mut ids = Vec::new();
    for r in answers {
        assert!(r.status().is_success(), "{}", r.status());
        let v: Value = r.json().await.unwrap();
        ids.push(v["lead_id"].as_str().unwrap().to_string());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one lead id for every post");
    app.drain().await;
    let items = board(&app, s.t.owner(), "?status=contacted", 1).await;
    assert_eq!(items[0]["submissions"], 10);
    assert_eq!(items[0]["status"], "contacted");
    assert_eq!(s.green.sent_messages().len(), 1, "{:?}", s.green.sent_messages());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_or_missing_secrets_and_unreadable_bodies_store_nothing_and_leads_without_contacts_fail() {
    let app = app_with(&fast(&[])).await;
    app.start_background();
    let s = shop(&app).await;
    let body = marquiz(PHONE);
    for path in [
        format!("/webhooks/leads/{}/wrong-secret", s.form_id),
        format!("/webhooks/leads/{}", s.form_id),
        format!("/webhooks/leads/{}/{}", uuid::Uuid::now_v7(), s.form_path.rsplit('/').next().unwrap()),
    ] {
        let r = post_form(&app, &path, &body).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "webhook_unauthorized");
    }
    for bad in [json!("just text"), json!([1, 2]), json!({}), json!({"utm_source": "yandex"})] {
        assert_eq!(post_form(&app, &s.form_path, &bad).await.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    let r = app
        .client
        .post(format!("{}{}", app.address, s.form_path))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Tilda's connection test: accepted, nothing stored.
    let r = app
        .client
        .post(format!("{}{}", app.address, s.form_path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("test=test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(lead_events(&app).await, 0, "nothing stored");

    // Readable, but nobody to write to: a failed lead with its reason, never dropped.
    let r = app
        .client
        .post(format!("{}{}", app.address, s.form_path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("Name=%D0%9E%D0%BB%D1%8F&%D0%9C%D0%B0%D1%80%D0%BA%D0%B0_%D0%B0%D0%B2%D1%82%D0%BE=Lada+Vesta&formname=%D0%97%D0%B0%D1%8F%D0%B2%D0%BA%D0%B0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    app.drain().await;
    let items = board(&app, s.t.owner(), "?status=failed", 1).await;
    assert_eq!(items[0]["failure_reason"], "no_contact_info");
    assert_eq!(items[0]["car"], "Lada Vesta");
    assert!(s.green.sent_messages().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_tenants_lead_answers_404() {
    let app = app_with(&fast(&[])).await;
    app.start_background();
    let s = shop(&app).await;
    assert_eq!(post_form(&app, &s.form_path, &marquiz(PHONE)).await.status(), StatusCode::CREATED);
    app.drain().await;
    let lead = board(&app, s.t.owner(), "?status=contacted", 1).await.remove(0);
    let id = lead["id"].as_str().unwrap().to_string();

    let other = create_tenant(&app.pool, "Другой магазин").await;
    let r = app.request(Method::GET, &format!("/api/leads/{id}"), Some(other.owner())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    for action in ["qualify", "won", "retry"] {
        let r = app
            .request(Method::POST, &format!("/api/leads/{id}/{action}"), Some(other.owner()))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{action}");
    }
    let r = app
        .request(Method::POST, &format!("/api/leads/{id}/lost"), Some(other.owner()))
        .json(&json!({"reason": "дорого"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(leads(&app, other.owner(), "").await.is_empty());

    // The owner's own actions work: assign, qualify, lost with a reason.
    let user = create_user(&app.pool, s.t.id, "ops@shop.example", "Password-123456", Role::Operator).await;
    app.post_json(&format!("/api/leads/{id}/assign"), s.t.owner(), json!({"operator": user.to_string()})).await;
    app.post_json(&format!("/api/leads/{id}/qualify"), s.t.owner(), json!({})).await;
    let r = app
        .request(Method::POST, &format!("/api/leads/{id}/lost"), Some(s.t.owner()))
        .json(&json!({"reason": " "}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    app.post_json(&format!("/api/leads/{id}/lost"), s.t.owner(), json!({"reason": "купил в другом месте"})).await;
    app.drain().await;
    let lead = lead_with_status(&app, s.t.owner(), &id, "lost").await;
    assert_eq!(lead["lost_reason"], "купил в другом месте");
    assert_eq!(lead["assigned_to"], user.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outside_working_hours_the_first_message_goes_out_at_the_opening() {
    let app = app_with(&fast(&[])).await;
    app.start_background();
    let hours = json!({
        "timezone": "Europe/Moscow",
        "working_hours_start": "09:00:00",
        "working_hours_end": "18:00:00",
        "working_days": ["mon", "tue", "wed", "thu", "fri"],
        // The clock is moved, the dispatcher's is not: no check to wait for here.
        "settings": {"leads": {"no_reply_minutes": 0}}
    });
    let s = shop_with_hours(&app, hours).await;
    // Monday 2 March 2026, 08:59:56 in Moscow: four seconds before the opening.
    let opening = Utc.with_ymd_and_hms(2026, 3, 2, 6, 0, 0).unwrap();
    aisales::application::leads::clock::set(s.t.id, opening - chrono::Duration::seconds(4));

    assert_eq!(post_form(&app, &s.form_path, &marquiz(PHONE)).await.status(), StatusCode::CREATED);
    let lead = eventually(Duration::from_secs(10), "the lead scheduled", || async {
        let v = try_get(&app, "/api/leads?status=scheduled", s.t.owner()).await?;
        v["items"].as_array().and_then(|i| i.first().cloned())
    })
    .await;
    assert_eq!(lead["due_at"], "2026-03-02T06:00:00Z");
    let note = lead["note"].as_str().unwrap();
    assert!(note.contains("Mon 02.03.2026 09:00 (Europe/Moscow)"), "{note}");
    assert!(s.green.sent_messages().is_empty(), "nothing before the opening");

    eventually(Duration::from_secs(20), "the message at the opening", || async {
        (s.green.sent_messages().len() == 1).then_some(())
    })
    .await;
    app.drain().await;
    let lead = lead_with_status(&app, s.t.owner(), lead["id"].as_str().unwrap(), "contacted").await;
    let contacted: chrono::DateTime<Utc> = lead["contacted_at"].as_str().unwrap().parse().unwrap();
    assert!(contacted >= opening, "contacted at {contacted}, the opening is {opening}");
    assert_eq!(s.green.sent_messages().len(), 1);
}

#[tokio::test]
async fn the_cli_adds_a_lead_form_and_prints_its_webhook_url() {
    let app = app_with(&fast(&[])).await;
    let t = create_tenant(&app.pool, "Shop").await;
    let out = app
        .command(&[("APP_URL", "https://shop.example")])
        .args(["lead-form", "add", "generic", "--tenant", &t.id.to_string(), "--name", "Сайт"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = v["form_id"].as_str().unwrap();
    let url = v["webhook_url"].as_str().unwrap();
    assert!(url.starts_with(&format!("https://shop.example/webhooks/leads/{id}/")), "{url}");
    let path = url.trim_start_matches("https://shop.example");
    let r = app
        .client
        .post(format!("{}{path}", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("Name=Oleg&Phone=%2B79990001122&Car=Toyota+Camry")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let out = app
        .command(&[])
        .args(["lead-form", "add", "marquiz", "--tenant", &uuid::Uuid::now_v7().to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "an unknown tenant is the caller's mistake");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_number_without_an_account_fails_the_lead_and_the_team_is_told() {
    let tg = FakeTelegram::start().await;
    let app = app_with(&fast(&[("TELEGRAM_API_URL", tg.url())])).await;
    app.start_background();
    let s = shop(&app).await;
    s.green.without_account(79991234567);
    assert_eq!(post_form(&app, &s.form_path, &marquiz(PHONE)).await.status(), StatusCode::CREATED);
    app.drain().await;
    let items = board(&app, s.t.owner(), "?status=failed", 1).await;
    assert_eq!(items[0]["failure_reason"], "all_channels_failed");
    assert!(items[0]["conversation_id"].is_null(), "no stray conversation");
    assert!(s.green.sent_messages().is_empty());
    let sent = eventually(Duration::from_secs(10), "the team's notice", || async {
        Some(tg.sent_messages()).filter(|s| !s.is_empty())
    })
    .await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].1.contains("Не удалось связаться с клиентом"), "{}", sent[0].1);
    let conversations = app.get_json("/api/conversations", s.t.owner()).await;
    assert!(conversations["items"].as_array().unwrap().is_empty(), "{conversations}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_reported_undelivered_later_moves_the_round_on() {
    let tg = FakeTelegram::start().await;
    let app = app_with(&fast(&[("TELEGRAM_API_URL", tg.url())])).await;
    app.start_background();
    let s = shop(&app).await;
    assert_eq!(post_form(&app, &s.form_path, &marquiz(PHONE)).await.status(), StatusCode::CREATED);
    let lead = board(&app, s.t.owner(), "?status=contacted", 1).await.remove(0);
    let id = lead["id"].as_str().unwrap().to_string();
    let sent = s.green.sent_messages();
    assert_eq!(sent.len(), 1);
    // GREEN-API says later that the number has no account: no other channel is left.
    let status = crate::fakes::green_api::green_api_status(FakeGreenApi::ID_INSTANCE, CHAT, &sent[0].2, "noAccount");
    assert!(post_green(&app, &s.green_path, &s.green_token, &status).await.status().is_success());
    let lead = lead_with_status(&app, s.t.owner(), &id, "failed").await;
    assert_eq!(lead["failure_reason"], "all_channels_failed");
    let types: Vec<&str> = lead["timeline"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(types.contains(&"ContactDeliveryFailed"), "{types:?}");
    eventually(Duration::from_secs(10), "the team's notice", || async { tg.sent_messages().into_iter().next() }).await;
    assert_eq!(s.green.sent_messages().len(), 1, "not written to again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn control_characters_in_a_form_post_are_dropped_and_the_lead_goes_on() {
    let app = app_with(&fast(&[])).await;
    app.start_background();
    let s = shop(&app).await;
    let mut body = marquiz(PHONE);
    body["contacts"]["name"] = json!("Ив\u{0}ан 🚗");
    body["answers"][0]["a"] = json!("Kia\u{1b}[31m Rio\u{0} 2015");
    assert_eq!(post_form(&app, &s.form_path, &body).await.status(), StatusCode::CREATED);
    app.drain().await;
    // On the board (a NUL would have stopped the read model at this lead), and written to.
    let lead = board(&app, s.t.owner(), "?status=contacted", 1).await.remove(0);
    assert_eq!(lead["name"], "Иван 🚗");
    assert_eq!(lead["car"], "Kia[31m Rio 2015");
}

/// The sequence numbers of a conversation's events of one type, with their payloads.
async fn conversation_events(app: &TestApp, conversation: &str, event_type: &str) -> Vec<(i64, Value)> {
    crate::helpers::opened_events(&app.pool, Some(conversation), event_type)
        .await
        .into_iter()
        .map(|(_, sequence, fields)| (sequence, fields))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_escalated_conversation_reaches_the_team_once_through_the_bot_and_without_a_bot_the_reason_is_recorded() {
    let tg = FakeTelegram::start().await;
    let app = app_with(&fast(&[("TELEGRAM_API_URL", tg.url())])).await;
    app.start_background();
    let s = shop(&app).await;
    // The bot's first try meets a provider outage: retried, then sent once.
    tg.fail_next_telegram(1, 502, "Bad Gateway", None);
    let conversation = customer_writes(
        &app,
        &s.green_path,
        &s.green_token,
        CHAT,
        "ESC-1",
        "Коробка пинается на холодную, нужен мастер",
    )
    .await;
    app.drain().await;
    let r = app
        .request(Method::POST, &format!("/api/conversations/{conversation}/escalate"), Some(s.t.owner()))
        .json(&json!({"reason": "Клиент просит мастера"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let ours = || {
        tg.sent_messages().into_iter().filter(|(_, text, _)| text.contains("Клиент просит мастера")).collect::<Vec<_>>()
    };
    let sent =
        eventually(Duration::from_secs(20), "the team's notice", || async { Some(ours()).filter(|s| !s.is_empty()) })
            .await;
    assert_eq!(sent[0].0.to_string(), TEAM_CHAT);
    assert!(sent[0].1.contains("Диалог требует внимания оператора"), "{}", sent[0].1);
    assert!(sent[0].1.contains("пинается на холодную"), "the customer's last message is quoted: {}", sent[0].1);
    app.drain().await;
    assert_eq!(ours().len(), 1, "told once");
    // Every escalation of the conversation is recorded as told, by its sequence number.
    let escalations: Vec<i64> =
        conversation_events(&app, &conversation, "ConversationEscalated").await.into_iter().map(|e| e.0).collect();
    let told = eventually(Duration::from_secs(20), "every escalation told", || async {
        let told = conversation_events(&app, &conversation, "TeamNotified").await;
        (told.len() == escalations.len()).then_some(told)
    })
    .await;
    let told_of: Vec<i64> = told.iter().map(|(_, p)| p["escalation"].as_i64().unwrap()).collect();
    assert_eq!(told_of, escalations);
    assert_eq!(told[0].1["chat_id"], TEAM_CHAT);

    // A tenant without a bot: nothing sent, and the audit says why.
    let other = tenant(&app).await;
    let green = FakeGreenApi::start().await;
    let (_, path, token) = green_account(&app, &other, &green).await;
    let conversation = customer_writes(&app, &path, &token, CHAT, "ESC-2", "Позовите человека").await;
    let r = app
        .request(Method::POST, &format!("/api/conversations/{conversation}/escalate"), Some(other.owner()))
        .json(&json!({"reason": "Нужен человек"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let failed = eventually(Duration::from_secs(20), "the failure recorded", || async {
        Some(conversation_events(&app, &conversation, "TeamNotificationFailed").await).filter(|f| !f.is_empty())
    })
    .await;
    assert_eq!(failed[0].1["error"], "no escalation chat is configured");
    assert!(tg.sent_messages().iter().all(|(_, text, _)| !text.contains("Нужен человек")));
}

/// A distinct customer's phone for the `i`-th post of a flood.
fn flood_phone(i: usize) -> String {
    format!("+7 999 200 {:02} {:02}", i / 100, i % 100)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn during_a_burst_of_form_posts_outreach_waits_and_then_reaches_every_lead_once() {
    use aisales::bus::Kind;
    use aisales::infra::intake;

    let app = app_with(&fast(&[])).await;
    app.start_background_except(&[Kind::Leads]);
    let s = shop(&app).await;
    let redis = app.state.redis.clone();
    // The server's burst signal from 5 intake requests a second, and a leads worker that gives way.
    tokio::spawn(intake::report(app.state.intake.clone(), redis.clone(), 5, app.cancel.clone()));
    let settings = app.state.settings.clone();
    let services = aisales::workers::Services::new(settings.clone(), app.pool.clone(), redis.clone());
    let options = aisales::bus::worker::WorkerOptions {
        shutdown_grace: Duration::from_secs(1),
        burst: intake::BurstSignal::watch(redis.clone(), Duration::from_secs(30), app.cancel.clone()),
        ..aisales::process::worker_options(&settings, Kind::Leads)
    };
    let handler = aisales::workers::handler(Kind::Leads, &services).unwrap();
    tokio::spawn(aisales::bus::worker::run(redis.clone(), handler, options, app.cancel.clone()));
    let flag = intake::flag_key(redis.prefix());
    let flag_up = || async {
        let mut c = redis.conn();
        redis::AsyncCommands::exists::<_, bool>(&mut c, &flag).await.unwrap()
    };

    // A flood of posts, 20 a second, from distinct customers.
    let mut posted = 0;
    let post = async |n: usize| {
        let r = post_form(&app, &s.form_path, &marquiz(&flood_phone(n))).await;
        assert_eq!(r.status(), StatusCode::CREATED);
    };
    let mut seen_up = None;
    // The burst is signalled within a second or so; whatever the worker had started by then ends
    // (its replies delivered), after which no message goes out for a second.
    let (mut sent, mut sent_changed) = (0, std::time::Instant::now());
    loop {
        post(posted).await;
        posted += 1;
        if seen_up.is_none() && flag_up().await {
            seen_up = Some(std::time::Instant::now());
        }
        let now_sent = s.green.sent_messages().len();
        if now_sent != sent {
            (sent, sent_changed) = (now_sent, std::time::Instant::now());
        }
        if seen_up.is_some_and(|at| at.elapsed() >= Duration::from_millis(1500))
            && sent_changed.elapsed() >= Duration::from_secs(1)
        {
            break;
        }
        assert!(posted < 300, "no burst was signalled, or outreach never paused (signalled: {})", seen_up.is_some());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = s.green.sent_messages().len();
    assert!(before < posted, "{before} of {posted} leads written to already");
    // Two more seconds of flood: nobody new is written to.
    for _ in 0..40 {
        post(posted).await;
        posted += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(flag_up().await, "the burst goes on");
    assert_eq!(s.green.sent_messages().len(), before, "outreach went on during the burst");

    // The flood ends: the flag expires and every lead is contacted, each exactly once.
    eventually(Duration::from_secs(10), "the burst over", || async { (!flag_up().await).then_some(()) }).await;
    app.drain().await;
    eventually(Duration::from_secs(60), "every lead contacted", || async {
        (s.green.sent_messages().len() >= posted).then_some(())
    })
    .await;
    app.drain().await;
    let sent = s.green.sent_messages();
    let chats: std::collections::HashSet<&str> = sent.iter().map(|(chat, _, _)| chat.as_str()).collect();
    assert_eq!((sent.len(), chats.len()), (posted, posted), "one message per lead");
}

/// The data keys of a lead's subject in `data_keys`: (wrapped key) per row.
async fn lead_keys(app: &crate::helpers::TestApp, lead: uuid::Uuid) -> Vec<Vec<u8>> {
    sqlx::query_scalar("SELECT wrapped FROM data_keys WHERE subject_id = $1")
        .bind(lead)
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_lead_is_sealed_with_a_key_stored_with_its_events_or_with_the_key_it_already_has() {
    use aisales_projections::pii::KeyWrap;
    let app = app_with(&fast(&[])).await;
    let s = shop(&app).await;
    // Half past noon: far from the edges of the duplicate window, which the lead id depends on.
    let at = Utc::now().date_naive().and_hms_opt(12, 30, 0).unwrap().and_utc();
    aisales::application::leads::clock::set(s.t.id, at);

    // A new lead: one key, stored with its first events, and its fields open with it.
    let r = post_form(&app, &s.form_path, &marquiz(PHONE)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let lead: uuid::Uuid = r.json::<Value>().await.unwrap()["lead_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(lead_keys(&app, lead).await.len(), 1);
    let received = crate::helpers::opened_events(&app.pool, Some(&lead.to_string()), "LeadReceived").await;
    assert_eq!(received[0].2["fields"]["car"], "Kia Rio 2015");
    let stored: String =
        sqlx::query_scalar("SELECT payload::text FROM events WHERE aggregate_id = $1 AND sequence = 1")
            .bind(lead.to_string())
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(!stored.contains("Kia Rio"), "the stored event is sealed: {stored}");

    // A key stored for a lead before its first event (an earlier attempt that stopped between
    // the two): the lead's events are sealed with that key, and no second key is made.
    let body = marquiz("+7 (999) 111-22-33");
    let Ok(aisales_domain::lead::FormBody::Submission(submission)) = aisales_domain::lead::parse_json(&body) else {
        panic!("a submission")
    };
    let form: uuid::Uuid = s.form_id.parse().unwrap();
    let expected = aisales_domain::lead::lead_id(s.t.id, form, &submission.fingerprint(), at);
    let (key_id, nonce, wrapped) = app.state.keys.wrap(s.t.id, expected, &[7u8; 32]);
    sqlx::query(
        "INSERT INTO data_keys (subject_id, tenant_id, kind, key_id, nonce, wrapped) VALUES ($1, $2, 'lead', $3, $4, $5)",
    )
    .bind(expected)
    .bind(s.t.id)
    .bind(&key_id)
    .bind(&nonce)
    .bind(&wrapped)
    .execute(&app.pool)
    .await
    .unwrap();
    let r = post_form(&app, &s.form_path, &body).await;
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["lead_id"], expected.to_string());
    assert_eq!(lead_keys(&app, expected).await, [wrapped], "the key that was there is kept");
    let received = crate::helpers::opened_events(&app.pool, Some(&expected.to_string()), "LeadReceived").await;
    assert_eq!(received[0].2["fields"]["client_name"], "Иван", "{}", received[0].2);
    assert_eq!(received[0].2["fields"]["car"], "Kia Rio 2015", "{}", received[0].2);
}
