//! A customer's data: the export (`GET /api/customers/{id}/export`, `aisales customer export`)
//! holds everything recorded about the customer (conversation, messages, events, the lead with
//! its events) and nothing of another customer; it is for those who may delete customer data,
//! and tenant-bound.

use std::time::Duration;

use aisales::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::fakes::green_api::{FakeGreenApi, green_api_incoming_text};
use crate::fakes::telegram::FakeTelegram;
use crate::helpers::{app_with, eventually, fast, post_green, tenant, try_get};
use crate::leads::{CHAT, PHONE, board, marquiz, post_form, shop};

const REPLY: &str = "Коробка пинается на второй передаче";
const OTHER_CHAT: &str = "70001112233@c.us";
const OTHER_TEXT: &str = "Нужен вариатор на Nissan Qashqai";

/// Every string anywhere in `v`.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// A shop where a quiz lead was contacted on GREEN-API and answered, and another customer wrote.
struct Scene {
    app: crate::helpers::TestApp,
    s: crate::leads::Shop,
    owner: String,
    lead_id: String,
    conversation: String,
    customer: String,
    _telegram: FakeTelegram,
}

async fn scene() -> Scene {
    let tg = FakeTelegram::start().await;
    let app = app_with(&fast(&[("TELEGRAM_API_URL", tg.url())])).await;
    app.start_background();
    let s = shop(&app).await;
    let owner = s.t.owner().to_string();
    let r = post_form(&app, &s.form_path, &marquiz(PHONE)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let lead_id = r.json::<Value>().await.unwrap()["lead_id"].as_str().unwrap().to_string();
    app.drain().await;
    let conversation =
        board(&app, &owner, "?status=contacted", 1).await[0]["conversation_id"].as_str().unwrap().to_string();
    let reply = green_api_incoming_text(FakeGreenApi::ID_INSTANCE, CHAT, "Иван", "IN-1", REPLY);
    assert!(post_green(&app, &s.green_path, &s.green_token, &reply).await.status().is_success());
    let other = green_api_incoming_text(FakeGreenApi::ID_INSTANCE, OTHER_CHAT, "Пётр", "IN-2", OTHER_TEXT);
    assert!(post_green(&app, &s.green_path, &s.green_token, &other).await.status().is_success());
    app.drain().await;
    let customer = eventually(Duration::from_secs(20), "the conversation has the reply", || async {
        let c = try_get(&app, &format!("/api/conversations/{conversation}"), &owner).await?;
        let m = try_get(&app, &format!("/api/conversations/{conversation}/messages"), &owner).await?;
        (m["items"].as_array()?.len() == 2).then(|| c["customer"]["id"].as_str().map(str::to_string))?
    })
    .await;
    eventually(Duration::from_secs(20), "both customers listed", || async {
        let v = try_get(&app, "/api/customers", &owner).await?;
        (v["items"].as_array()?.len() == 2).then_some(())
    })
    .await;
    Scene { app, s, owner, lead_id, conversation, customer, _telegram: tg }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_export_holds_everything_about_the_customer_and_nothing_of_another() {
    // A lead from a quiz, contacted on GREEN-API; the customer answers. Another customer writes.
    let Scene { app, s, owner, lead_id, conversation, customer, .. } = scene().await;

    let path = format!("/api/customers/{customer}/export");
    let r = app.request(Method::GET, &path, Some(&owner)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let disposition = r.headers()[reqwest::header::CONTENT_DISPOSITION].to_str().unwrap().to_string();
    assert_eq!(disposition, format!("attachment; filename=\"customer-{customer}.json\""));
    let export: Value = r.json().await.unwrap();
    assert_eq!(export["format"], "aisales.customer-export.v1");
    assert_eq!(export["customer_id"], customer.as_str());
    assert_eq!(export["customer"]["chat_id"], CHAT);
    assert_eq!(export["identities"][0]["external_id"], CHAT);

    let conversations = export["conversations"].as_array().unwrap();
    assert_eq!(conversations.len(), 1);
    let c = &conversations[0];
    assert_eq!(c["conversation"]["conversation_id"], conversation.as_str());
    let messages: Vec<&str> = c["messages"].as_array().unwrap().iter().filter_map(|m| m["text"].as_str()).collect();
    assert_eq!(messages.len(), 2, "the outreach and the answer: {messages:?}");
    assert!(messages.iter().any(|t| t.contains("Kia Rio 2015")), "{messages:?}");
    assert!(messages.contains(&REPLY), "{messages:?}");
    let events: Vec<&str> = c["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    for t in ["ConversationStarted", "LeadLinked", "ReplyQueued", "ReplySent", "MessageReceived"] {
        assert!(events.contains(&t), "{t} in {events:?}");
    }
    assert!(c["sent_replies"].as_array().unwrap().iter().all(|o| o["chat_id"] == CHAT));
    assert!(!c["sent_replies"].as_array().unwrap().is_empty());
    let received = c["events"].as_array().unwrap().iter().find(|e| e["type"] == "MessageReceived").unwrap();
    assert_eq!(received["payload"]["MessageReceived"]["text"], REPLY);
    assert!(received["metadata"]["actor"].is_string(), "{received}");

    let leads = export["leads"].as_array().unwrap();
    assert_eq!(leads.len(), 1, "{leads:?}");
    assert_eq!(leads[0]["lead"]["lead_id"], lead_id.as_str());
    assert_eq!(leads[0]["lead"]["phone"], "+79991234567");
    let lead_events: Vec<&str> =
        leads[0]["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(lead_events[0], "LeadReceived");
    assert!(lead_events.contains(&"CustomerReplied"), "{lead_events:?}");

    // Nothing of the other customer.
    let mut all = Vec::new();
    strings(&export, &mut all);
    for foreign in [OTHER_CHAT, OTHER_TEXT, "Пётр", "70001112233"] {
        assert!(!all.iter().any(|s| s.contains(foreign)), "{foreign} is in the export");
    }

    // Who may take it: those who may delete customer data, of the same tenant.
    let r = app.request(Method::GET, &path, Some(s.t.token(Role::Operator))).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let stranger = tenant(&app).await;
    let r = app.request(Method::GET, &path, Some(stranger.owner())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .request(Method::GET, &format!("/api/customers/{}/export", uuid::Uuid::now_v7()), Some(&owner))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // The CLI prints the same document.
    let out =
        app.command(&[]).args(["customer", "export", "--tenant", &s.t.id.to_string(), &customer]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["customer"], export["customer"]);
    assert_eq!(printed["conversations"], export["conversations"]);
    assert_eq!(printed["leads"], export["leads"]);
    let out = app
        .command(&[])
        .args(["customer", "export", "--tenant", &stranger.id.to_string(), &customer])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "another tenant's customer is the caller's mistake");
    assert!(out.stdout.is_empty());
}

/// Everything `pg_dump` writes of the test database.
fn dump(app: &crate::helpers::TestApp) -> String {
    let out = std::process::Command::new("pg_dump").args(["--no-owner", "--data-only", &app.db.url]).output().unwrap();
    assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_erased_customer_is_gone_from_the_database_and_the_others_are_intact() {
    let Scene { app, s, owner, lead_id, conversation, customer, .. } = scene().await;

    // At rest, the customer's data in the events is sealed; the export holds it in clear.
    let stored: Vec<String> = sqlx::query_scalar(
        "SELECT payload::text FROM events WHERE aggregate_type = 'conversation' AND aggregate_id = $1",
    )
    .bind(&conversation)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(!stored.iter().any(|p| p.contains("пинается") || p.contains(CHAT)), "{stored:?}");
    let before: Value = app.get_json(&format!("/api/customers/{customer}/export"), &owner).await;
    let mut all = Vec::new();
    strings(&before, &mut all);
    for held in [REPLY, CHAT, "Иван", "+79991234567"] {
        assert!(all.iter().any(|s| s.contains(held)), "{held} is not in the export");
    }

    // Only those who may delete customer data may erase.
    let path = format!("/api/customers/{customer}");
    let r = app.request(Method::DELETE, &path, Some(s.t.token(Role::Operator))).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app.request(Method::DELETE, &path, Some(tenant(&app).await.owner())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app.request(Method::DELETE, &path, Some(&owner)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let erasure: Value = r.json().await.unwrap();
    assert_eq!(erasure["already_erased"], false);
    assert_eq!(erasure["conversations"], serde_json::json!([conversation]));
    assert_eq!(erasure["leads"], serde_json::json!([lead_id]));
    app.drain().await;

    // The read models show [erased] from the answer on; the other customer is intact.
    let messages = app.get_json(&format!("/api/conversations/{conversation}/messages"), &owner).await;
    let texts: Vec<&str> = messages["items"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["[erased]", "[erased]"]);
    let lead = app.get_json(&format!("/api/leads/{lead_id}"), &owner).await;
    assert_eq!(lead["phone"], "[erased]", "{lead}");
    let others = app.get_json("/api/conversations", &owner).await;
    let other = others["items"].as_array().unwrap().iter().find(|c| c["chat_id"] == OTHER_CHAT).unwrap().clone();
    let other_messages =
        app.get_json(&format!("/api/conversations/{}/messages", other["id"].as_str().unwrap()), &owner).await;
    assert_eq!(other_messages["items"][0]["text"], OTHER_TEXT);

    // Replay and the audit API still load every event, with [erased] in place of the data.
    let audit = app.get_json(&format!("/api/conversations/{conversation}/events"), &owner).await;
    let received: Vec<&Value> =
        audit["items"].as_array().unwrap().iter().filter(|e| e["type"] == "MessageReceived").collect();
    assert_eq!(received.len(), 1, "{audit}");
    assert!(received[0].to_string().contains("[erased]"), "{}", received[0]);
    assert!(audit["items"].as_array().unwrap().iter().any(|e| e["type"] == "CustomerErased"));
    let out = app.command(&[]).args(["replay", "conversation", &conversation]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let replay = String::from_utf8_lossy(&out.stdout);
    assert!(replay.contains("[erased]") && !replay.contains("пинается"), "{replay}");

    // Nothing of the customer is left in the database; the other customer is.
    let text = dump(&app);
    for gone in ["79991234567", "Иван", "пинается", "Kia Rio 2015", "Казань"] {
        assert!(!text.contains(gone), "{gone} is still in the database");
    }
    assert!(text.contains(OTHER_TEXT) && text.contains("Пётр"), "the other customer is intact");

    // Rebuilt from zero, the read models are the same; verify finds no difference.
    for name in ["conversations", "leads"] {
        let out = app.command(&[]).args(["projections", "rebuild", name, "--json"]).output().unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let out = app.command(&[]).args(["projections", "verify"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let text = dump(&app);
    for gone in ["79991234567", "Иван", "пинается"] {
        assert!(!text.contains(gone), "{gone} is back after the rebuild");
    }

    // Erasing again is harmless; the CLI says the same.
    let again: Value = app.request(Method::DELETE, &path, Some(&owner)).send().await.unwrap().json().await.unwrap();
    assert_eq!(again["already_erased"], true, "{again}");
    let out =
        app.command(&[]).args(["customer", "erase", "--tenant", &s.t.id.to_string(), &customer]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap()["already_erased"], true);

    // The same person writing again is a new customer.
    let back = green_api_incoming_text(FakeGreenApi::ID_INSTANCE, CHAT, "Иван", "IN-3", "Это снова я");
    assert!(post_green(&app, &s.green_path, &s.green_token, &back).await.status().is_success());
    app.drain().await;
    let list = app.get_json("/api/conversations", &owner).await;
    let new = list["items"].as_array().unwrap().iter().find(|c| c["chat_id"] == CHAT).expect("a new conversation");
    assert_ne!(new["id"], conversation.as_str());
    assert_ne!(new["customer"]["id"], customer.as_str());
}

/// Posts one GREEN-API message until the server takes it (as GREEN-API retries).
async fn deliver(app: &crate::helpers::TestApp, path: &str, token: &str, chat: &str, id: &str, text: &str) {
    let body = green_api_incoming_text(FakeGreenApi::ID_INSTANCE, chat, "Клиент", id, text);
    for _ in 0..10 {
        if post_green(app, path, token, &body).await.status().is_success() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{id} was never taken");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn erasing_while_the_customer_writes_loses_nothing_of_others_and_leaves_nothing_behind() {
    const N: usize = 40;
    let app = app_with(&fast(&[])).await;
    app.start_background();
    let t = tenant(&app).await;
    let green = FakeGreenApi::start().await;
    let (_, path, token) = crate::helpers::green_account(&app, &t, &green).await;
    let chats = ["79990000001@c.us", "79990000002@c.us", "79990000003@c.us"];
    deliver(&app, &path, &token, chats[0], "A-start", "Первое письмо Анны").await;
    app.drain().await;
    let first = crate::helpers::opened_events(&app.pool, None, "ConversationStarted").await;
    let (old_conversation, customer) = (first[0].0.clone(), first[0].2["customer_id"].as_str().unwrap().to_string());

    let writers: Vec<_> = chats
        .iter()
        .enumerate()
        .map(|(c, chat)| {
            let (app, path, token) = (&app, path.clone(), token.clone());
            async move {
                for i in 0..N {
                    let who = ["A", "B", "C"][c];
                    deliver(app, &path, &token, chat, &format!("{who}-{i}"), &format!("{who}-{i} секрет")).await;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        })
        .collect();
    let erase = async {
        tokio::time::sleep(Duration::from_millis(60)).await;
        let r =
            app.request(Method::DELETE, &format!("/api/customers/{customer}"), Some(t.owner())).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    };
    tokio::join!(futures::future::join_all(writers), erase);
    app.drain().await;

    // Every message of the others is stored once, in clear.
    let received = crate::helpers::opened_events(&app.pool, None, "MessageReceived").await;
    for who in ["B", "C"] {
        for i in 0..N {
            let text = format!("{who}-{i} секрет");
            assert_eq!(received.iter().filter(|(_, _, m)| m["text"] == text.as_str()).count(), 1, "{text}");
        }
    }
    // The erased conversation holds nothing readable; what came after went to a new customer.
    let old: Vec<&Value> = received.iter().filter(|(id, _, _)| *id == old_conversation).map(|(_, _, m)| m).collect();
    assert!(old.iter().all(|m| m["text"] == "[erased]"), "{old:?}");
    let later = received
        .iter()
        .filter(|(id, _, m)| *id != old_conversation && m["text"].as_str().is_some_and(|t| t.starts_with("A-")))
        .count();
    assert_eq!(old.len() - 1 + later, N, "every message of the customer is either erased or with the new customer");
    let rows: Vec<String> = sqlx::query_scalar("SELECT text FROM rm_messages WHERE conversation_id = $1::uuid")
        .bind(&old_conversation)
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert!(rows.iter().all(|t| t == "[erased]"), "{rows:?}");
    let text = dump(&app);
    assert!(!text.contains("Первое письмо Анны"));
    let out = app.command(&[]).args(["projections", "verify"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_stored_in_clear_are_sealed_by_the_migration_and_keys_follow_a_master_key_rotation() {
    use aisales_domain::conversation::{Conversation, ConversationCommand};
    let app = app_with(&fast(&[])).await;
    app.start_background();
    let t = tenant(&app).await;
    let (account, customer) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let meta = aisales::store::EventMetadata::system(Some(t.id), "customer");

    // Two conversations written as a release before sealing wrote them: in clear.
    let mut conversations = Vec::new();
    for (i, text) in ["Старое сообщение номер один", "Старое сообщение номер два"].iter().enumerate()
    {
        let id = uuid::Uuid::now_v7().to_string();
        let mut state = Conversation::default();
        let inbound = crate::readmodels::inbound(
            t.id,
            account,
            if i == 0 { customer } else { uuid::Uuid::now_v7() },
            &format!("OLD-{i}"),
            text,
        );
        let events = state.decide(ConversationCommand::ReceiveMessage(inbound)).unwrap();
        for e in events.clone() {
            state.evolve(e);
        }
        app.state.store.append::<Conversation>(&id, 0, &events, &meta, None).await.unwrap();
        conversations.push(id);
    }
    app.drain().await;
    let clear: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE payload::text LIKE '%Старое сообщение%'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(clear, 2);

    // The migration seals them, in batches, and a second run finds nothing to do.
    let out = app.command(&[]).args(["privacy", "migrate", "--batch", "2"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["sealed"].as_u64().unwrap() >= 4, "{report}");
    assert!(report["batches"].as_u64().unwrap() >= 2, "{report}");
    let clear: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE payload::text LIKE '%Старое сообщение%'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(clear, 0, "no event holds the text in clear");
    let texts: Vec<String> = crate::helpers::opened_events(&app.pool, None, "MessageReceived")
        .await
        .into_iter()
        .map(|(_, _, m)| m["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts, ["Старое сообщение номер один", "Старое сообщение номер два"]);
    let out = app.command(&[]).args(["privacy", "migrate"]).output().unwrap();
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["sealed"], 0, "{again}");
    let out = app.command(&[]).args(["projections", "verify"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));

    // Erasing the first customer leaves the second readable.
    let r = app.request(Method::DELETE, &format!("/api/customers/{customer}"), Some(t.owner())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let texts: Vec<String> = crate::helpers::opened_events(&app.pool, None, "MessageReceived")
        .await
        .into_iter()
        .map(|(_, _, m)| m["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts, ["[erased]", "Старое сообщение номер два"]);
    // A new master key: the data keys are wrapped again and the events read with it alone.
    use base64::Engine;
    let new_key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let out = app
        .command(&[])
        .env("INTEGRATION_SECRETS_MASTER_KEY", &new_key)
        .env("INTEGRATION_SECRETS_PREVIOUS_KEYS", crate::helpers::MASTER_KEY)
        .args(["secrets", "rotate-master-key"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rotated: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rotated["data_keys_rewrapped"], 1, "the erased customer has no key left: {rotated}");
    let out = app
        .command(&[])
        .env("INTEGRATION_SECRETS_MASTER_KEY", &new_key)
        .args(["replay", "conversation", &conversations[1]])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Старое сообщение номер два"));
    let out = app.command(&[]).args(["replay", "conversation", &conversations[1]]).output().unwrap();
    assert!(!out.status.success(), "the old master key alone no longer opens the data keys");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn customers_inactive_longer_than_the_tenant_keeps_data_are_erased_by_the_retention_pass() {
    let app = app_with(&fast(&[])).await;
    app.start_background();
    let t = tenant(&app).await;
    let green = FakeGreenApi::start().await;
    let (_, path, token) = crate::helpers::green_account(&app, &t, &green).await;
    deliver(&app, &path, &token, "79990000011@c.us", "OLD", "Писал давно").await;
    deliver(&app, &path, &token, "79990000012@c.us", "NEW", "Пишу сейчас").await;
    app.drain().await;
    sqlx::query(
        "UPDATE rm_customers SET last_seen_at = now() - interval '4 months' WHERE chat_id = '79990000011@c.us'",
    )
    .execute(&app.pool)
    .await
    .unwrap();

    // Off by default: nothing is erased.
    let ctx = &app.state.ctx;
    let none =
        aisales::privacy::retention::erase_inactive(ctx, chrono::Utc::now(), Some(t.id), "system:retention", |_| {})
            .await
            .unwrap();
    assert_eq!(none, 0);
    let r = app
        .request(Method::PATCH, "/api/tenant", Some(t.owner()))
        .json(&serde_json::json!({"retention": {"erase_inactive_customers_months": 3}}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let erased =
        aisales::privacy::retention::erase_inactive(ctx, chrono::Utc::now(), Some(t.id), "system:retention", |_| {})
            .await
            .unwrap();
    assert_eq!(erased, 1);
    app.drain().await;
    let texts: Vec<String> = crate::helpers::opened_events(&app.pool, None, "MessageReceived")
        .await
        .into_iter()
        .map(|(_, _, m)| m["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts, ["[erased]", "Пишу сейчас"]);
    let cause: String = sqlx::query_scalar(
        "SELECT payload->'CustomerErased'->>'cause' FROM events WHERE event_type = 'CustomerErased'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(cause, "inactive");
    let recorded: String = sqlx::query_scalar("SELECT reason FROM data_deletions WHERE kind = 'customer'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(recorded.contains("inactive"), "{recorded}");
    // A second pass finds nobody left to erase.
    let again =
        aisales::privacy::retention::erase_inactive(ctx, chrono::Utc::now(), Some(t.id), "system:retention", |_| {})
            .await
            .unwrap();
    assert_eq!(again, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lead_that_never_reached_a_customer_is_erased_on_its_own() {
    let tg = FakeTelegram::start().await;
    let app = app_with(&fast(&[("TELEGRAM_API_URL", tg.url())])).await;
    app.start_background();
    let s = shop(&app).await;
    let owner = s.t.owner().to_string();
    // One lead fails (the number has no account), one reaches its customer.
    s.green.without_account(79997654321);
    let mut failed_form = marquiz("+7 (999) 765-43-21");
    failed_form["contacts"]["name"] = "Ольга".into();
    failed_form["answers"][0]["a"] = "Lada Vesta 2019".into();
    assert_eq!(post_form(&app, &s.form_path, &failed_form).await.status(), StatusCode::CREATED);
    assert_eq!(post_form(&app, &s.form_path, &marquiz(PHONE)).await.status(), StatusCode::CREATED);
    app.drain().await;
    let failed = board(&app, &owner, "?status=failed", 1).await[0]["id"].as_str().unwrap().to_string();
    let contacted = board(&app, &owner, "?status=contacted", 1).await.remove(0);
    let row = |id: String| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT row_to_json(l)::text FROM rm_leads l WHERE lead_id = $1::uuid")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let before = row(failed.clone()).await;
    assert!(before.contains("Lada Vesta 2019") && before.contains("Ольга"), "{before}");

    let path = format!("/api/leads/{failed}");
    let r = app.request(Method::DELETE, &path, Some(s.t.token(Role::Operator))).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app.request(Method::DELETE, &path, Some(tenant(&app).await.owner())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "another tenant's lead");
    let r = app.request(Method::DELETE, &path, Some(&owner)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let erasure: Value = r.json().await.unwrap();
    assert_eq!(erasure["already_erased"], false, "{erasure}");
    assert_eq!(erasure["read_models_scrubbed"], true, "{erasure}");

    // The lead reads [erased] everywhere: its row, its page and its events.
    let after = row(failed.clone()).await;
    for held in ["Lada Vesta 2019", "Ольга", "7654321", "765-43-21"] {
        assert!(!after.contains(held), "{held} is still in the lead's row: {after}");
    }
    let page = app.get_json(&path, &owner).await;
    assert_eq!(page["phone"], "[erased]", "{page}");
    let received = crate::helpers::opened_events(&app.pool, Some(&failed), "LeadReceived").await;
    assert_eq!(received[0].2["fields"]["client_name"], "[erased]");
    assert_eq!(received[0].2["fields"]["car"], "[erased]");
    assert_eq!(crate::helpers::opened_events(&app.pool, Some(&failed), "LeadErased").await.len(), 1);
    // The other lead is untouched.
    let other = app.get_json(&format!("/api/leads/{}", contacted["id"].as_str().unwrap()), &owner).await;
    assert_eq!(other["car"], "Kia Rio 2015", "{other}");

    // Again: harmless, through the API and the CLI.
    let r = app.request(Method::DELETE, &path, Some(&owner)).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["already_erased"], true);
    let tenant_id = s.t.id.to_string();
    let out = app.command(&[]).args(["customer", "erase-lead", "--tenant", &tenant_id, &failed]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["already_erased"], true);

    // A lead that reached its customer is erased with the customer, not on its own.
    let id = contacted["id"].as_str().unwrap();
    let r = app.request(Method::DELETE, &format!("/api/leads/{id}"), Some(&owner)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let text = r.text().await.unwrap();
    assert!(text.contains("/api/customers/"), "{text}");
    let out = app.command(&[]).args(["customer", "erase-lead", "--tenant", &tenant_id, id]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let r = app.request(Method::DELETE, &format!("/api/leads/{}", uuid::Uuid::now_v7()), Some(&owner)).send().await;
    assert_eq!(r.unwrap().status(), StatusCode::NOT_FOUND);

    // While the outreach is trying the channels, whether the lead reaches a customer is not known
    // yet: the erasure is refused until it has ended.
    s.green.set_latency_on("checkWhatsapp", Duration::from_secs(4));
    let mut third = marquiz("+7 (999) 111-22-33");
    third["contacts"]["name"] = "Семён".into();
    assert_eq!(post_form(&app, &s.form_path, &third).await.status(), StatusCode::CREATED);
    let contacting = board(&app, &owner, "?status=contacting", 1).await[0]["id"].as_str().unwrap().to_string();
    let r = app.request(Method::DELETE, &format!("/api/leads/{contacting}"), Some(&owner)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let text = r.text().await.unwrap();
    assert!(text.contains("under way"), "{text}");
    s.green.set_latency_on("checkWhatsapp", Duration::ZERO);
    app.drain().await;
    let page = app.get_json(&format!("/api/leads/{contacting}"), &owner).await;
    assert_eq!(page["status"], "contacted", "the refused erasure changed nothing: {page}");
}
