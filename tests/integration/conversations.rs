//! Conversations end to end: a customer writes on a channel, the conversation and message appear in
//! the API, a suggestion is drafted, an operator approves it, and the provider (a local fake that
//! speaks its wire format) receives exactly one send.

use std::time::Duration;

use aisales::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::fakes::green_api::{FakeGreenApi, green_api_incoming_text, green_api_status};
use crate::fakes::openai::FakeOpenAi;
use crate::fakes::telegram::{FakeTelegram, telegram_text_update};
use crate::fakes::whatsapp::{FakeWhatsApp, whatsapp_signature, whatsapp_text_webhook};
use crate::helpers::{
    TestApp, TestTenant, app_with, create_tenant, eventually, fast, green_account, outbound, post_green, secret,
    suggestions, tenant, try_get,
};

/// The reply shows as sent, the provider got exactly one send (also a few seconds later), and the
/// send was recorded from the provider's journal rather than made again.
async fn sent_once_from_the_journal(app: &TestApp, t: &TestTenant, fake: &FakeGreenApi, conversation: &str) {
    let sent = outbound(app, t.owner(), conversation, "sent").await;
    assert_eq!(fake.sent_messages().len(), 1, "exactly one send");
    assert_eq!(sent["provider_message_id"], fake.sent_messages()[0].2.as_str());
    let reconciled: bool = sqlx::query_scalar(
        "SELECT (payload->'ReplySent'->>'reconciled')::boolean FROM events WHERE aggregate_id = $1 AND event_type = 'ReplySent'",
    )
    .bind(conversation)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(reconciled, "recorded from the provider's journal, not sent again");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(fake.sent_messages().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn green_api_message_to_approved_reply_sent_exactly_once_and_delivered() {
    let fake = FakeGreenApi::start().await;
    let app = app_with(&fast(&[("GREEN_API_URL", fake.url())])).await;
    app.start_background();
    let t = tenant(&app).await;
    let (_, path, token) = green_account(&app, &t, &fake).await;

    let body = green_api_incoming_text(
        FakeGreenApi::ID_INSTANCE,
        "79001234567@c.us",
        "Иван",
        "BAE5F4C1D2",
        "Здравствуйте! Нужна АКПП на Камри",
    );
    let r = post_green(&app, &path, &token, &body).await;
    assert_eq!(r.status(), StatusCode::OK);
    let answer: Value = r.json().await.unwrap();
    let conversation = answer["result"]["messages"][0]["conversation_id"].as_str().unwrap().to_string();
    let position = answer["result"]["messages"][0]["position"].as_str().unwrap().to_string();

    // Read-your-writes: the list waits for the position the webhook produced.
    let list = app.get_json(&format!("/api/conversations?min_position={position}"), t.token(Role::Viewer)).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let c = &list["items"][0];
    assert_eq!(c["id"], conversation.as_str());
    assert_eq!(c["channel"], "green_api");
    assert_eq!(c["customer"]["name"], "Иван");
    assert_eq!(c["status"], "open");
    assert_eq!(c["unread_count"], 1);
    // The messages read model is waited for as well (`min_position` on this endpoint covers it).
    let msgs =
        app.get_json(&format!("/api/conversations/{conversation}/messages?min_position={position}"), t.owner()).await;
    assert_eq!(msgs["items"][0]["text"], "Здравствуйте! Нужна АКПП на Камри");
    assert_eq!(msgs["items"][0]["direction"], "in");

    // The offline responder (no AI key) drafts a reply that needs approval.
    let pending = suggestions(&app, t.owner(), &conversation, "pending", 1).await;
    let suggestion = &pending[0];
    assert_eq!(suggestion["decision"], "NEED_APPROVAL");
    assert_eq!(suggestion["source"], "offline");
    let text = suggestion["text"].as_str().unwrap().to_string();
    assert!(text.contains("VIN"), "{text}");

    let approved = app
        .post_json(
            &format!("/api/suggestions/{}/approve", suggestion["id"].as_str().unwrap()),
            t.token(Role::Operator),
            json!({}),
        )
        .await;
    assert!(approved["position"].is_string());
    // A second approval is refused and sends nothing.
    let again = app
        .request(
            Method::POST,
            &format!("/api/suggestions/{}/approve", suggestion["id"].as_str().unwrap()),
            Some(t.owner()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);

    let sent = outbound(&app, t.owner(), &conversation, "sent").await;
    assert_eq!(sent["text"], text.as_str());
    assert_eq!(sent["author"], "assistant");
    assert!(sent["actor"].as_str().unwrap().starts_with("token:"), "the approver is recorded: {sent}");
    let sends = fake.sent_messages();
    assert_eq!(sends.len(), 1, "{sends:?}");
    assert_eq!(sends[0].0, "79001234567@c.us");
    assert_eq!(sends[0].1, text);
    assert_eq!(sent["provider_message_id"], sends[0].2.as_str());

    // The provider reports delivery.
    let status = green_api_status(FakeGreenApi::ID_INSTANCE, "79001234567@c.us", &sends[0].2, "delivered");
    assert_eq!(post_green(&app, &path, &token, &status).await.status(), StatusCode::OK);
    outbound(&app, t.owner(), &conversation, "delivered").await;
    let path = format!("/api/conversations/{conversation}");
    eventually(Duration::from_secs(20), "the conversation to wait for the customer", || async {
        (try_get(&app, &path, t.owner()).await?["status"] == "waiting_customer").then_some(())
    })
    .await;

    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(fake.sent_messages().len(), 1, "still exactly one send after redispatch windows passed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn telegram_message_to_approved_reply() {
    let fake = FakeTelegram::start().await;
    let app = app_with(&fast(&[("TELEGRAM_API_URL", fake.url())])).await;
    app.start_background();
    let t = tenant(&app).await;
    let acc =
        app.post_json("/api/channels", t.owner(), json!({"kind": "telegram", "bot_token": FakeTelegram::TOKEN})).await;
    let account = acc["id"].as_str().unwrap();
    let webhook_secret = secret(&app, t.id, account, "webhook_secret").await;
    let path = format!("/webhooks/telegram/{}", t.id);

    let update = telegram_text_update(1001, 555111, 555111, "Пётр", 42, "Привет, есть МКПП на Ниву?");
    let wrong = app
        .client
        .post(format!("{}{path}", app.address))
        .header("x-telegram-bot-api-secret-token", "nope")
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let r = app
        .client
        .post(format!("{}{path}", app.address))
        .header("x-telegram-bot-api-secret-token", &webhook_secret)
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let answer: Value = r.json().await.unwrap();
    let conversation = answer["result"]["messages"][0]["conversation_id"].as_str().unwrap().to_string();

    let pending = suggestions(&app, t.owner(), &conversation, "pending", 1).await;
    let id = pending[0]["id"].as_str().unwrap();
    app.post_json(
        &format!("/api/suggestions/{id}/edit"),
        t.owner(),
        json!({"text": "Здравствуйте! Пришлите VIN, проверим наличие."}),
    )
    .await;
    let sent = outbound(&app, t.owner(), &conversation, "sent").await;
    assert_eq!(sent["text"], "Здравствуйте! Пришлите VIN, проверим наличие.");
    let sends = fake.sent_messages();
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].0, 555111);
    assert_eq!(sends[0].1, "Здравствуйте! Пришлите VIN, проверим наличие.");
    suggestions(&app, t.owner(), &conversation, "edited", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn whatsapp_cloud_message_to_approved_reply() {
    let fake = FakeWhatsApp::start().await;
    let app = app_with(&fast(&[("WHATSAPP_API_URL", fake.api_url())])).await;
    app.start_background();
    let t = tenant(&app).await;
    let acc = app
        .post_json(
            "/api/channels",
            t.owner(),
            json!({"kind": "whatsapp", "phone_number_id": FakeWhatsApp::PHONE_NUMBER_ID, "access_token": FakeWhatsApp::ACCESS_TOKEN,
                   "app_secret": "app-secret-123", "verify_token": "verify-me"}),
        )
        .await;
    assert!(acc["id"].is_string());
    let path = format!("/webhooks/whatsapp/{}", t.id);

    // Meta's verification challenge.
    let ok = app
        .client
        .get(format!("{}{path}?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.text().await.unwrap(), "1158201444");
    let bad = app
        .client
        .get(format!("{}{path}?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::FORBIDDEN);

    let body = serde_json::to_vec(&whatsapp_text_webhook(
        FakeWhatsApp::PHONE_NUMBER_ID,
        "79161234567",
        "Анна",
        "wamid.HBgL123",
        "Добрый день, нужен вариатор",
    ))
    .unwrap();
    let unsigned = app
        .client
        .post(format!("{}{path}", app.address))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    let r = app
        .client
        .post(format!("{}{path}", app.address))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", whatsapp_signature(&body, "app-secret-123"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let answer: Value = r.json().await.unwrap();
    let conversation = answer["result"]["messages"][0]["conversation_id"].as_str().unwrap().to_string();
    let pending = suggestions(&app, t.owner(), &conversation, "pending", 1).await;
    app.post_json(&format!("/api/suggestions/{}/approve", pending[0]["id"].as_str().unwrap()), t.owner(), json!({}))
        .await;
    outbound(&app, t.owner(), &conversation, "sent").await;
    let sends = fake.sent_messages();
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].0, "79161234567");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_webhook_posted_ten_times_at_once_is_one_message() {
    let fake = FakeGreenApi::start().await;
    let app = app_with(&fast(&[("GREEN_API_URL", fake.url())])).await;
    let t = tenant(&app).await;
    let (_, path, token) = green_account(&app, &t, &fake).await;
    let body = green_api_incoming_text(
        FakeGreenApi::ID_INSTANCE,
        "79005550000@c.us",
        "Олег",
        "BAE5DUPLICATE",
        "Нужна коробка",
    );
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (client, url, token, body) =
            (app.client.clone(), format!("{}{path}", app.address), token.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            client.post(url).bearer_auth(token).json(&body).send().await.unwrap().status()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::OK);
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'MessageReceived'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 1, "one message for ten deliveries");
    let conversations: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT aggregate_id) FROM events WHERE aggregate_type = 'conversation'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(conversations, 1);
    let identities: i64 =
        sqlx::query_scalar("SELECT count(*) FROM channel_identities").fetch_one(&app.pool).await.unwrap();
    assert_eq!(identities, 1, "one customer");
}

#[tokio::test]
async fn bad_webhooks_are_refused_or_dead_lettered_and_store_nothing() {
    let fake = FakeGreenApi::start().await;
    let app = app_with(&fast(&[("GREEN_API_URL", fake.url())])).await;
    let t = tenant(&app).await;
    let other = tenant(&app).await;
    let (account, path, token) = green_account(&app, &t, &fake).await;
    let body = green_api_incoming_text(FakeGreenApi::ID_INSTANCE, "79001112233@c.us", "Кто-то", "BAE5X1", "Текст");

    let count = |app: &TestApp| {
        let pool = app.pool.clone();
        async move {
            let e: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&pool).await.unwrap();
            let d: i64 =
                sqlx::query_scalar("SELECT count(*) FROM webhook_dead_letters").fetch_one(&pool).await.unwrap();
            (e, d)
        }
    };
    // Wrong or missing token.
    assert_eq!(post_green(&app, &path, "wrong-token", &body).await.status(), StatusCode::UNAUTHORIZED);
    let r = app.client.post(format!("{}{path}", app.address)).json(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Another tenant's path, an unknown account, a malformed id: not found.
    let foreign = format!("/webhooks/green-api/{}/{account}", other.id);
    assert_eq!(post_green(&app, &foreign, &token, &body).await.status(), StatusCode::NOT_FOUND);
    let unknown = format!("/webhooks/green-api/{}/{}", t.id, Uuid::now_v7());
    assert_eq!(post_green(&app, &unknown, &token, &body).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        post_green(&app, &format!("/webhooks/green-api/{}/not-a-uuid", t.id), &token, &body).await.status(),
        StatusCode::NOT_FOUND
    );
    // Malformed bodies: 400 with a clear error.
    for bad in ["not json", "[1,2,3]", r#"{"typeWebhook": "incomingMessageReceived"}"#] {
        let r = app
            .client
            .post(format!("{}{path}", app.address))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], "invalid_notification");
    }
    assert_eq!(count(&app).await, (0, 0), "nothing stored");
    // An unknown notification type: 200, kept for inspection.
    let odd = json!({"typeWebhook": "quantumEntanglementNotice", "instanceData": {"idInstance": FakeGreenApi::ID_INSTANCE}, "timestamp": 1});
    let r = post_green(&app, &path, &token, &odd).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(count(&app).await, (0, 1));
    // Reactions are acknowledged and ignored.
    let reaction = json!({"typeWebhook": "incomingMessageReceived", "instanceData": {"idInstance": FakeGreenApi::ID_INSTANCE},
        "timestamp": 1, "idMessage": "R1", "senderData": {"chatId": "79001112233@c.us", "sender": "79001112233@c.us"},
        "messageData": {"typeMessage": "reactionMessage", "extendedTextMessageData": {"text": "👍"}}});
    assert_eq!(post_green(&app, &path, &token, &reaction).await.status(), StatusCode::OK);
    assert_eq!(count(&app).await, (0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ai_drafts_and_auto_sends_when_every_lock_allows_it() {
    let green = FakeGreenApi::start().await;
    let ai = FakeOpenAi::start().await;
    let app = app_with(&fast(&[
        ("GREEN_API_URL", green.url()),
        ("AI_INTEGRATIONS_OPENAI_API_KEY", FakeOpenAi::API_KEY.into()),
        ("AI_INTEGRATIONS_OPENAI_BASE_URL", ai.base_url()),
        ("AI_MODEL", "gpt-4o-mini".into()),
        ("AI_AUTOSEND_ENABLED", "true".into()),
        ("RATE_LIMIT_AI_PER_MINUTE", "0".into()),
    ]))
    .await;
    app.start_background();
    let t = tenant(&app).await;
    let r = app
        .request(Method::PATCH, "/api/tenant", Some(t.owner()))
        .json(&json!({"working_days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "working_hours_start": "00:00:00", "working_hours_end": "23:59:59",
                      "settings": {"decision": {"autosend_allowed": true, "intents_autosend_allowed": ["greeting", "other"]}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let (_, path, token) = green_account(&app, &t, &green).await;
    ai.push_reply(r#"{"reply_text": "Добрый день! Подскажите VIN автомобиля.", "intent": "greeting", "confidence": 0.93, "needs_handoff": false}"#);
    let body =
        green_api_incoming_text(FakeGreenApi::ID_INSTANCE, "79007770000@c.us", "Марина", "BAE5AI1", "Здравствуйте");
    let answer: Value = post_green(&app, &path, &token, &body).await.json().await.unwrap();
    let conversation = answer["result"]["messages"][0]["conversation_id"].as_str().unwrap().to_string();

    let sent = outbound(&app, t.owner(), &conversation, "sent").await;
    assert_eq!(sent["text"], "Добрый день! Подскажите VIN автомобиля.");
    assert_eq!(sent["author"], "auto");
    assert_eq!(green.sent_messages().len(), 1);
    let s = suggestions(&app, t.owner(), &conversation, "auto_sent", 1).await;
    assert_eq!(s[0]["decision"], "AUTO_SEND");
    assert_eq!(s[0]["status"], "auto_sent");
    assert_eq!(s[0]["source"], "ai");
    // What the model was asked.
    let requests = ai.completion_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["response_format"]["type"], "json_object");
    assert_eq!(requests[0]["model"], "gpt-4o-mini");
    let system = requests[0]["messages"][0]["content"].as_str().unwrap();
    assert!(system.contains("Компания: Коробки") && system.contains("reply_text"), "{system}");
    assert_eq!(requests[0]["messages"].as_array().unwrap().last().unwrap()["content"], "Здравствуйте");

    // A failing model: bounded retries, then a failed suggestion; nothing is sent.
    ai.fail_next_status(10, 500);
    let body = green_api_incoming_text(FakeGreenApi::ID_INSTANCE, "79007770000@c.us", "Марина", "BAE5AI2", "Алло?");
    assert_eq!(post_green(&app, &path, &token, &body).await.status(), StatusCode::OK);
    let mut failed = false;
    for _ in 0..300 {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'SuggestionFailed'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
        if n == 1 {
            failed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !failed {
        let events: Vec<(String, String)> =
            sqlx::query_as("SELECT event_type, payload::text FROM events WHERE aggregate_id = $1 ORDER BY sequence")
                .bind(&conversation)
                .fetch_all(&app.pool)
                .await
                .unwrap();
        panic!("no failed suggestion; AI requests: {}; events: {events:#?}", ai.completion_requests().len());
    }
    assert_eq!(green.sent_messages().len(), 1);
    assert_eq!(ai.completion_requests().len(), 5, "one draft, then one job: a request and three retries");
    let c = app.get_json(&format!("/api/conversations/{conversation}"), t.owner()).await;
    assert_eq!(c["status"], "open", "the conversation waits for an operator");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_messages_gets_one_suggestion() {
    let fake = FakeGreenApi::start().await;
    let app = app_with(&fast(&[("GREEN_API_URL", fake.url())])).await;
    app.start_background();
    let t = tenant(&app).await;
    app.request(Method::PATCH, "/api/tenant", Some(t.owner()))
        .json(&json!({"settings": {"suggestion_debounce_secs": 2}}))
        .send()
        .await
        .unwrap();
    let (_, path, token) = green_account(&app, &t, &fake).await;
    let mut conversation = String::new();
    for (i, text) in ["Здравствуйте", "Нужна коробка", "На Тойоту Камри 2008"].iter().enumerate()
    {
        let body =
            green_api_incoming_text(FakeGreenApi::ID_INSTANCE, "79003330000@c.us", "Ира", &format!("BURST{i}"), text);
        let a: Value = post_green(&app, &path, &token, &body).await.json().await.unwrap();
        conversation = a["result"]["messages"][0]["conversation_id"].as_str().unwrap().to_string();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    suggestions(&app, t.owner(), &conversation, "pending", 1).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all = app.get_json(&format!("/api/conversations/{conversation}/suggestions"), t.owner()).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 1, "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operator_actions_are_recorded_with_the_acting_user() {
    let fake = FakeGreenApi::start().await;
    let app = app_with(&fast(&[("GREEN_API_URL", fake.url())])).await;
    app.start_background();
    let t = tenant(&app).await;
    let (_, path, token) = green_account(&app, &t, &fake).await;
    let body =
        green_api_incoming_text(FakeGreenApi::ID_INSTANCE, "79001010101@c.us", "Гоша", "OPS1", "Жалоба на коробку");
    let a: Value = post_green(&app, &path, &token, &body).await.json().await.unwrap();
    let c = a["result"]["messages"][0]["conversation_id"].as_str().unwrap().to_string();
    let pending = suggestions(&app, t.owner(), &c, "pending", 1).await;
    let op = t.token(Role::Operator);
    app.post_json(
        &format!("/api/suggestions/{}/reject", pending[0]["id"].as_str().unwrap()),
        op,
        json!({"reason": "не то"}),
    )
    .await;
    app.post_json(
        &format!("/api/conversations/{c}/messages"),
        op,
        json!({"text": "Передаю вопрос старшему менеджеру."}),
    )
    .await;
    app.post_json(&format!("/api/conversations/{c}/escalate"), op, json!({"reason": "жалоба"})).await;
    let r = app.request(Method::POST, &format!("/api/conversations/{c}/escalate"), Some(op)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT, "already escalated");
    app.post_json(&format!("/api/conversations/{c}/resolve"), op, json!({})).await;
    let r = app.request(Method::POST, &format!("/api/conversations/{c}/resolve"), Some(op)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT, "already resolved");
    app.post_json(&format!("/api/conversations/{c}/reopen"), op, json!({})).await;
    app.post_json(&format!("/api/conversations/{c}/mute"), op, json!({"muted": true})).await;
    let empty = app
        .request(Method::POST, &format!("/api/conversations/{c}/messages"), Some(op))
        .json(&json!({"text": "  "}))
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), StatusCode::BAD_REQUEST);
    // Viewers may look but not act.
    let r = app
        .request(Method::POST, &format!("/api/conversations/{c}/resolve"), Some(t.token(Role::Viewer)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT event_type, metadata->>'actor' FROM events WHERE aggregate_id = $1 AND event_type IN \
         ('SuggestionRejected', 'OperatorReplied', 'ConversationEscalated', 'ConversationResolved', 'ConversationReopened', 'ConversationMuted') ORDER BY sequence",
    )
    .bind(&c)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 6, "{rows:?}");
    let token_id: Uuid = sqlx::query_scalar("SELECT id FROM api_tokens WHERE tenant_id = $1 AND role = 'operator'")
        .bind(t.id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    for (event, actor) in rows {
        assert_eq!(actor, format!("token:{token_id}"), "{event}");
    }
    let sent = outbound(&app, t.owner(), &c, "sent").await;
    assert_eq!(sent["author"], "operator");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_between_send_and_ack_still_sends_exactly_once() {
    let fake = FakeGreenApi::start().await;
    let app = app_with(&fast(&[("GREEN_API_URL", fake.url())])).await;
    app.start_background_except(&[aisales::bus::Kind::MessageSend]);
    let t = tenant(&app).await;
    let (_, path, token) = green_account(&app, &t, &fake).await;
    let body = green_api_incoming_text(FakeGreenApi::ID_INSTANCE, "79004440000@c.us", "Лена", "KILL1", "Здравствуйте");
    let a: Value = post_green(&app, &path, &token, &body).await.json().await.unwrap();
    let conversation = a["result"]["messages"][0]["conversation_id"].as_str().unwrap().to_string();
    let pending = suggestions(&app, t.owner(), &conversation, "pending", 1).await;

    // The provider accepts the send but the answer never reaches the worker: it is killed first.
    fake.hang_next(Duration::from_secs(60));
    let worker = || {
        let mut cmd = app.command(&[]);
        cmd.args(["worker", "message-send"]);
        cmd
    };
    let mut first = crate::helpers::ChildGuard::spawn(worker());
    app.post_json(&format!("/api/suggestions/{}/approve", pending[0]["id"].as_str().unwrap()), t.owner(), json!({}))
        .await;
    fake.wait_for_requests(1, Duration::from_secs(20)).await;
    eventually(Duration::from_secs(10), "the provider to accept the send", || async {
        (fake.sent_messages().len() == 1).then_some(())
    })
    .await;
    first.kill();

    // A new worker takes the job over, finds the send in the provider's journal and records it.
    let _second = crate::helpers::ChildGuard::spawn(worker());
    sent_once_from_the_journal(&app, &t, &fake, &conversation).await;
}

/// Anyone who knows a webhook URL can post to it, but requests that fail the credential check are
/// counted apart: they cannot use up the limit that the provider's real notifications need.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unauthenticated_webhook_floods_do_not_use_up_the_accounts_limit() {
    let fake = FakeGreenApi::start().await;
    let app = app_with(&fast(&[("GREEN_API_URL", fake.url()), ("RATE_LIMIT_WEBHOOK_PER_MINUTE", "3".into())])).await;
    let t = tenant(&app).await;
    let (_, path, token) = green_account(&app, &t, &fake).await;
    crate::helpers::room_in_this_rate_window(Duration::from_secs(30)).await;
    let mut flood = Vec::new();
    for i in 0..6 {
        let body =
            green_api_incoming_text(FakeGreenApi::ID_INSTANCE, "79001112233@c.us", "Кто-то", &format!("F{i}"), "x");
        flood.push(post_green(&app, &path, "wrong-token", &body).await.status());
    }
    assert_eq!(flood[..3], [StatusCode::UNAUTHORIZED; 3]);
    assert_eq!(flood[3..], [StatusCode::TOO_MANY_REQUESTS; 3], "the flood is limited in its own bucket");
    for i in 0..3 {
        let body =
            green_api_incoming_text(FakeGreenApi::ID_INSTANCE, "79001112233@c.us", "Анна", &format!("OK{i}"), "Привет");
        assert_eq!(post_green(&app, &path, &token, &body).await.status(), StatusCode::OK, "real notification {i}");
    }
    let body = green_api_incoming_text(FakeGreenApi::ID_INSTANCE, "79001112233@c.us", "Анна", "OK3", "Привет");
    assert_eq!(post_green(&app, &path, &token, &body).await.status(), StatusCode::TOO_MANY_REQUESTS);
}

/// The provider takes the send but its answer does not come back in time. Sending again would
/// deliver the message twice: the reply stays "sending", and once its claim is stale the job is
/// reconciled from the provider's journal instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_send_without_an_answer_is_reconciled_not_repeated() {
    let fake = FakeGreenApi::start().await;
    let app = app_with(&fast(&[("GREEN_API_URL", fake.url()), ("CHANNEL_TIMEOUT_SECS", "1".into())])).await;
    app.start_background();
    let t = tenant(&app).await;
    let (_, path, token) = green_account(&app, &t, &fake).await;
    let body = green_api_incoming_text(FakeGreenApi::ID_INSTANCE, "79004441111@c.us", "Олег", "SLOW1", "Здравствуйте");
    let a: Value = post_green(&app, &path, &token, &body).await.json().await.unwrap();
    let conversation = a["result"]["messages"][0]["conversation_id"].as_str().unwrap().to_string();
    let pending = suggestions(&app, t.owner(), &conversation, "pending", 1).await;

    fake.hang_next(Duration::from_secs(5));
    app.post_json(&format!("/api/suggestions/{}/approve", pending[0]["id"].as_str().unwrap()), t.owner(), json!({}))
        .await;
    sent_once_from_the_journal(&app, &t, &fake, &conversation).await;
}

/// Adding an account points the provider at its webhook (GREEN-API `setSettings` with the
/// `webhookUrlToken`, Telegram `setWebhook` with the `secret_token`), so real notifications pass
/// the webhook's authentication; when that cannot be done, the credential is shown once so that an
/// operator can configure it by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn adding_an_account_points_the_provider_at_its_webhook() {
    let green = FakeGreenApi::start().await;
    let telegram = FakeTelegram::start().await;
    let app =
        app_with(&fast(&[("APP_URL", "https://sales.example.com".into()), ("TELEGRAM_API_URL", telegram.url())])).await;
    let t = tenant(&app).await;

    let acc = app
        .post_json(
            "/api/channels",
            t.owner(),
            json!({"kind": "green_api", "id_instance": FakeGreenApi::ID_INSTANCE.to_string(), "api_token": FakeGreenApi::TOKEN, "api_url": green.url()}),
        )
        .await;
    assert_eq!(acc["webhook_registration"]["status"], "registered", "{acc}");
    assert!(acc.get("webhook_credentials").is_none(), "nothing to configure by hand: {acc}");
    let settings = green.settings();
    assert_eq!(settings["webhookUrl"], acc["webhook_url"]);
    assert!(acc["webhook_url"].as_str().unwrap().starts_with("https://sales.example.com/webhooks/green-api/"));
    let token = settings["webhookUrlToken"].as_str().unwrap().to_string();
    let path = acc["webhook_url"].as_str().unwrap().trim_start_matches("https://sales.example.com").to_string();
    let body = green_api_incoming_text(FakeGreenApi::ID_INSTANCE, "79001112233@c.us", "Анна", "REG-1", "Здравствуйте");
    assert_eq!(post_green(&app, &path, &token, &body).await.status(), StatusCode::OK);

    // Registering again (say, after APP_URL changed) rotates the token on both sides.
    let green_id = acc["id"].as_str().unwrap().to_string();
    let again = app.post_json(&format!("/api/channels/{green_id}/webhook"), t.owner(), json!({})).await;
    assert_eq!(again["webhook_registration"]["status"], "registered", "{again}");
    let rotated = green.settings()["webhookUrlToken"].as_str().unwrap().to_string();
    assert_ne!(rotated, token);
    let body = green_api_incoming_text(FakeGreenApi::ID_INSTANCE, "79001112233@c.us", "Анна", "REG-2", "Ещё вопрос");
    assert_eq!(post_green(&app, &path, &token, &body).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(post_green(&app, &path, &rotated, &body).await.status(), StatusCode::OK);
    // Another tenant's account answers 404 like a missing one, and nothing changes.
    let stranger = create_tenant(&app.pool, "Чужой магазин").await;
    let r = app
        .request(Method::POST, &format!("/api/channels/{green_id}/webhook"), Some(stranger.owner()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(green.settings()["webhookUrlToken"], rotated.as_str());
    // A registration the provider refuses changes nothing.
    green.fail_next_status(1, 500);
    let refused = app.post_json(&format!("/api/channels/{green_id}/webhook"), t.owner(), json!({})).await;
    assert_eq!(refused["webhook_registration"]["status"], "failed", "{refused}");
    assert!(refused.get("webhook_credentials").is_none());
    assert_eq!(green.settings()["webhookUrlToken"], rotated.as_str());
    let body = green_api_incoming_text(FakeGreenApi::ID_INSTANCE, "79001112233@c.us", "Анна", "REG-3", "И ещё");
    assert_eq!(post_green(&app, &path, &rotated, &body).await.status(), StatusCode::OK);

    let acc =
        app.post_json("/api/channels", t.owner(), json!({"kind": "telegram", "bot_token": FakeTelegram::TOKEN})).await;
    assert_eq!(acc["webhook_registration"]["status"], "registered", "{acc}");
    let (url, secret_token) = telegram.webhook().expect("setWebhook was called");
    assert_eq!(url, acc["webhook_url"].as_str().unwrap());
    let update = telegram_text_update(2001, 555222, 555222, "Пётр", 7, "Привет");
    let r = app
        .client
        .post(format!("{}/webhooks/telegram/{}", app.address, t.id))
        .header("x-telegram-bot-api-secret-token", &secret_token)
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Without a public address nothing can be registered: the credential is shown this once.
    let local = app_with(&fast(&[("TELEGRAM_API_URL", telegram.url())])).await;
    let lt = tenant(&local).await;
    let acc = local
        .post_json(
            "/api/channels",
            lt.owner(),
            json!({"kind": "green_api", "id_instance": FakeGreenApi::ID_INSTANCE.to_string(), "api_token": FakeGreenApi::TOKEN, "api_url": green.url()}),
        )
        .await;
    assert_eq!(acc["webhook_registration"]["status"], "manual", "{acc}");
    assert!(acc["webhook_registration"]["message"].as_str().unwrap().contains("APP_URL"));
    let id = acc["id"].as_str().unwrap();
    let shown = acc["webhook_credentials"]["webhook_token"].as_str().unwrap().to_string();
    assert_eq!(shown, secret(&local, lt.id, id, "webhook_token").await);
    let again = local.get_json(&format!("/api/channels/{id}"), lt.owner()).await;
    assert!(!again.to_string().contains(&shown), "afterwards only masked: {again}");
    // Registering again without a public address: a fresh credential to configure by hand.
    let again = local.post_json(&format!("/api/channels/{id}/webhook"), lt.owner(), json!({})).await;
    assert_eq!(again["webhook_registration"]["status"], "manual", "{again}");
    let fresh = again["webhook_credentials"]["webhook_token"].as_str().unwrap();
    assert_ne!(fresh, shown);
    assert_eq!(fresh, secret(&local, lt.id, id, "webhook_token").await);
}
