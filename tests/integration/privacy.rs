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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_export_holds_everything_about_the_customer_and_nothing_of_another() {
    let tg = FakeTelegram::start().await;
    let app = app_with(&fast(&[("TELEGRAM_API_URL", tg.url())])).await;
    app.start_background();
    let s = shop(&app).await;
    let owner = s.t.owner().to_string();

    // A lead from a quiz, contacted on GREEN-API; the customer answers. Another customer writes.
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
