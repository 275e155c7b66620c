//! Telegram and WhatsApp webhooks are routed per account: a tenant with two bots or two business
//! numbers keeps each customer's conversation on the account the customer wrote to, and replies go
//! out from that account. WhatsApp customers known only by their business-scoped user id are
//! stored, and stay one customer when their phone number appears later.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::fakes::telegram::{FakeTelegram, telegram_text_update};
use crate::fakes::whatsapp::{FakeWhatsApp, whatsapp_signature};
use crate::helpers::{TestApp, app_with, fast, outbound, secret, tenant};

async fn post_telegram(app: &TestApp, path: &str, secret: &str, update: &Value) -> reqwest::Response {
    app.client
        .post(format!("{}{path}", app.address))
        .header("x-telegram-bot-api-secret-token", secret)
        .json(update)
        .send()
        .await
        .unwrap()
}

fn conversation_of(answer: &Value) -> String {
    answer["result"]["messages"][0]["conversation_id"].as_str().expect("a stored message").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_telegram_bots_of_one_tenant_keep_their_own_conversations_and_reply_from_themselves() {
    let fake = FakeTelegram::start().await;
    let app = app_with(&fast(&[("TELEGRAM_API_URL", fake.url())])).await;
    app.start_background();
    let t = tenant(&app).await;
    let mut bots = Vec::new();
    for token in [FakeTelegram::TOKEN, FakeTelegram::TOKEN2] {
        let acc = app.post_json("/api/channels", t.owner(), json!({"kind": "telegram", "bot_token": token})).await;
        let id = acc["id"].as_str().unwrap().to_string();
        let url = acc["webhook_url"].as_str().unwrap();
        assert!(url.ends_with(&format!("/webhooks/telegram/{}/{id}", t.id)), "a URL of the account: {url}");
        let secret = secret(&app, t.id, &id, "webhook_secret").await;
        bots.push((id, secret));
    }
    let path = |i: usize| format!("/webhooks/telegram/{}/{}", t.id, bots[i].0);

    // The same person writes to both bots; Telegram numbers messages per bot, so both carry id 42.
    let first = telegram_text_update(1, 555111, 555111, "Пётр", 42, "Первому боту: нужна МКПП");
    let second = telegram_text_update(1, 555111, 555111, "Пётр", 42, "Второму боту: нужна АКПП");
    let r1 = post_telegram(&app, &path(0), &bots[0].1, &first).await;
    assert_eq!(r1.status(), StatusCode::OK);
    let r2 = post_telegram(&app, &path(1), &bots[1].1, &second).await;
    assert_eq!(r2.status(), StatusCode::OK);
    let (c1, c2) = (conversation_of(&r1.json().await.unwrap()), conversation_of(&r2.json().await.unwrap()));
    assert_ne!(c1, c2, "a conversation per bot");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'MessageReceived'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 2, "the second bot's message is not taken for a duplicate of the first's");
    let customers: i64 = sqlx::query_scalar("SELECT count(DISTINCT customer_id) FROM channel_identities")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(customers, 1, "one customer");

    // A bot's secret on the other bot's URL is refused and stores nothing.
    let wrong = post_telegram(&app, &path(1), &bots[0].1, &telegram_text_update(2, 555111, 555111, "П", 43, "x")).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    // The tenant-only URL of earlier registrations finds the bot by its secret token.
    let old_url = format!("/webhooks/telegram/{}", t.id);
    let r = post_telegram(&app, &old_url, &bots[1].1, &telegram_text_update(3, 555111, 555111, "П", 44, "ещё")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(conversation_of(&r.json().await.unwrap()), c2);
    let r = post_telegram(&app, &old_url, "not-a-secret", &telegram_text_update(4, 555111, 555111, "П", 45, "x")).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Replies go out from the bot the customer wrote to.
    app.post_json(&format!("/api/conversations/{c2}/messages"), t.owner(), json!({"text": "Есть АКПП"})).await;
    outbound(&app, t.owner(), &c2, "sent").await;
    app.post_json(&format!("/api/conversations/{c1}/messages"), t.owner(), json!({"text": "Есть МКПП"})).await;
    outbound(&app, t.owner(), &c1, "sent").await;
    let sends: Vec<(String, String)> = fake.sent_messages().into_iter().map(|s| s.1).zip(fake.sent_by()).collect();
    assert_eq!(sends.len(), 2, "{sends:?}");
    assert!(sends.contains(&("Есть АКПП".to_string(), FakeTelegram::TOKEN2.to_string())), "{sends:?}");
    assert!(sends.contains(&("Есть МКПП".to_string(), FakeTelegram::TOKEN.to_string())), "{sends:?}");
}

fn change(phone_number_id: &str, contacts: Value, message: Value) -> Value {
    json!({"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_number_id},
        "contacts": contacts,
        "messages": [message],
    }})
}

fn text(id: &str, from: Option<&str>, user_id: Option<&str>, body: &str) -> Value {
    let mut m = json!({"id": id, "timestamp": chrono::Utc::now().timestamp().to_string(), "type": "text",
                       "text": {"body": body}});
    if let Some(from) = from {
        m["from"] = json!(from);
    }
    if let Some(user_id) = user_id {
        m["from_user_id"] = json!(user_id);
    }
    m
}

async fn post_whatsapp(app: &TestApp, path: &str, body: &Value, app_secret: &str) -> reqwest::Response {
    let raw = serde_json::to_vec(body).unwrap();
    app.client
        .post(format!("{}{path}", app.address))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", whatsapp_signature(&raw, app_secret))
        .body(raw)
        .send()
        .await
        .unwrap()
}

async fn whatsapp_numbers(app: &TestApp, t: &crate::helpers::TestTenant) -> Vec<String> {
    let mut ids = Vec::new();
    for number in [FakeWhatsApp::PHONE_NUMBER_ID, FakeWhatsApp::PHONE_NUMBER_ID2] {
        let acc = app
            .post_json(
                "/api/channels",
                t.owner(),
                json!({"kind": "whatsapp", "phone_number_id": number, "access_token": FakeWhatsApp::ACCESS_TOKEN,
                       "app_secret": "one-app-secret", "verify_token": format!("verify-{number}")}),
            )
            .await;
        let id = acc["id"].as_str().unwrap().to_string();
        assert!(acc["webhook_url"].as_str().unwrap().ends_with(&format!("/webhooks/whatsapp/{}/{id}", t.id)));
        ids.push(id);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_whatsapp_numbers_of_one_app_are_told_apart_by_phone_number_id() {
    let fake = FakeWhatsApp::start().await;
    let app = app_with(&fast(&[("WHATSAPP_API_URL", fake.api_url())])).await;
    app.start_background();
    let t = tenant(&app).await;
    let accounts = whatsapp_numbers(&app, &t).await;
    let contact = json!([{"profile": {"name": "Анна"}, "wa_id": "79161234567"}]);

    // One body of the app carries changes for both numbers and for a number the shop does not have.
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [
        change(FakeWhatsApp::PHONE_NUMBER_ID, contact.clone(), text("wamid.A1", Some("79161234567"), None, "первому номеру")),
        change(FakeWhatsApp::PHONE_NUMBER_ID2, contact.clone(), text("wamid.B1", Some("79161234567"), None, "второму номеру")),
        change("999999999999999", contact.clone(), text("wamid.C1", Some("79161234567"), None, "чужому номеру")),
    ]}]});
    let r = post_whatsapp(&app, &format!("/webhooks/whatsapp/{}", t.id), &body, "one-app-secret").await;
    assert_eq!(r.status(), StatusCode::OK);
    let answer: Value = r.json().await.unwrap();
    let messages = answer["result"]["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{answer}");
    let stored: Vec<(String, String)> = crate::helpers::opened_events(&app.pool, None, "MessageReceived")
        .await
        .into_iter()
        .map(|(id, _, m)| (m["text"].as_str().unwrap().to_string(), id))
        .collect();
    assert_eq!(stored.len(), 2, "{stored:?}");
    let (c1, c2) = (stored[0].1.clone(), stored[1].1.clone());
    assert_ne!(c1, c2, "a conversation per number");
    let started: Vec<(String, String)> = sqlx::query_as(
        "SELECT aggregate_id, payload->'ConversationStarted'->>'account_id' FROM events WHERE event_type = 'ConversationStarted'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(started.contains(&(c1.clone(), accounts[0].clone())), "{started:?}");
    assert!(started.contains(&(c2.clone(), accounts[1].clone())), "{started:?}");
    let dead: i64 =
        sqlx::query_scalar("SELECT count(*) FROM webhook_dead_letters WHERE kind LIKE 'for another number%'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(dead, 1, "the change for a number the shop does not have is kept aside");

    // An account's own URL takes only its number's changes.
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
        change(FakeWhatsApp::PHONE_NUMBER_ID2, contact.clone(), text("wamid.B2", Some("79161234567"), None, "не сюда")),
    ]}]});
    let r = post_whatsapp(&app, &format!("/webhooks/whatsapp/{}/{}", t.id, accounts[0]), &body, "one-app-secret").await;
    assert_eq!(r.status(), StatusCode::OK);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'MessageReceived'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 2, "a change for another number is not stored through this account's URL");
    let wrong = post_whatsapp(&app, &format!("/webhooks/whatsapp/{}/{}", t.id, accounts[1]), &body, "other").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    // Each number's verification challenge on its own URL.
    let ok = app
        .client
        .get(format!(
            "{}/webhooks/whatsapp/{}/{}?hub.mode=subscribe&hub.verify_token=verify-{}&hub.challenge=77",
            app.address,
            t.id,
            accounts[1],
            FakeWhatsApp::PHONE_NUMBER_ID2
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);

    // The reply goes out from the number the customer wrote to.
    app.post_json(&format!("/api/conversations/{c2}/messages"), t.owner(), json!({"text": "Отвечает второй номер"}))
        .await;
    outbound(&app, t.owner(), &c2, "sent").await;
    assert_eq!(fake.sent_from(), vec![FakeWhatsApp::PHONE_NUMBER_ID2.to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_whatsapp_customer_known_by_user_id_alone_is_stored_and_stays_one_customer() {
    let fake = FakeWhatsApp::start().await;
    let app = app_with(&fast(&[("WHATSAPP_API_URL", fake.api_url())])).await;
    app.start_background();
    let t = tenant(&app).await;
    let accounts = whatsapp_numbers(&app, &t).await;
    let path = format!("/webhooks/whatsapp/{}/{}", t.id, accounts[0]);
    let user_id = "RU.1502576394655843";

    // A user with a username: no `from`, no `wa_id`; the business-scoped user id only.
    let contact = json!([{"profile": {"name": "Мария", "username": "@maria"}, "user_id": user_id}]);
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
        change(FakeWhatsApp::PHONE_NUMBER_ID, contact, text("wamid.U1", None, Some(user_id), "Нужна коробка на Солярис")),
    ]}]});
    let r = post_whatsapp(&app, &path, &body, "one-app-secret").await;
    assert_eq!(r.status(), StatusCode::OK);
    let first = conversation_of(&r.json().await.unwrap());

    // Later the phone number comes along with the same user id: the same customer and conversation.
    let contact = json!([{"profile": {"name": "Мария"}, "wa_id": "79031112233", "user_id": user_id}]);
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
        change(FakeWhatsApp::PHONE_NUMBER_ID, contact, text("wamid.U2", Some("79031112233"), Some(user_id), "VIN пришлю")),
    ]}]});
    let r = post_whatsapp(&app, &path, &body, "one-app-secret").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(conversation_of(&r.json().await.unwrap()), first);
    let customers: i64 = sqlx::query_scalar("SELECT count(DISTINCT customer_id) FROM channel_identities")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(customers, 1);

    // The reply is addressed by the user id, the only id the conversation started with.
    app.post_json(&format!("/api/conversations/{first}/messages"), t.owner(), json!({"text": "Ждём VIN"})).await;
    outbound(&app, t.owner(), &first, "sent").await;
    assert_eq!(fake.sent_messages()[0].0, user_id);

    // A location whose coordinates are not numbers is stored with what can be read.
    let location = json!({"id": "wamid.L1", "from": "79031112233", "timestamp": chrono::Utc::now().timestamp().to_string(),
                          "type": "location", "location": {"latitude": "север", "longitude": null, "name": "Склад"}});
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
        change(FakeWhatsApp::PHONE_NUMBER_ID, json!([]), location),
    ]}]});
    let r = post_whatsapp(&app, &path, &body, "one-app-secret").await;
    assert_eq!(r.status(), StatusCode::OK);
    let stored = crate::helpers::opened_events(&app.pool, None, "MessageReceived").await.pop().unwrap().2["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(stored, "Геопозиция: Склад (координаты не прочитаны)");
}
