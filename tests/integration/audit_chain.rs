//! The audit chain of one customer message: the webhook, the drafted suggestion, the operator's
//! edit, the send and the delivery carry one correlation id, each event names its cause, and the
//! audit API and the replay CLI show the chain.

use std::collections::HashMap;

use aisales::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::fakes::green_api::{FakeGreenApi, green_api_incoming_text, green_api_status};
use crate::helpers::{app_with, fast, green_account, outbound, post_green, suggestions, tenant};

/// The conversation's events as the audit API lists them: (type, sequence) → event.
fn by_type(items: &[Value]) -> HashMap<String, Vec<&Value>> {
    let mut out: HashMap<String, Vec<&Value>> = HashMap::new();
    for e in items {
        out.entry(e["type"].as_str().unwrap().to_string()).or_default().push(e);
    }
    out
}

/// The one event of `kind`.
fn one<'a>(events: &HashMap<String, Vec<&'a Value>>, kind: &str) -> &'a Value {
    let found = events.get(kind).unwrap_or_else(|| panic!("no {kind} in {events:#?}"));
    assert_eq!(found.len(), 1, "one {kind}");
    found[0]
}

/// Asserts that `event`'s cause is the conversation's event `cause`.
fn caused_by(event: &Value, cause: &Value) {
    let c = &event["caused_by"];
    assert_eq!(c["event"]["sequence"], cause["sequence"], "{} is caused by {}: {c}", event["type"], cause["type"]);
    assert_eq!(c["event"]["type"], cause["type"]);
    assert_eq!(c["event"]["aggregate_type"], "conversation");
    assert_eq!(c["event"]["aggregate_id"], event["aggregate_id"]);
    assert_eq!(c["id"], format!("conversation:{}:{}", event["aggregate_id"].as_str().unwrap(), cause["sequence"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_customer_message_is_one_chain_from_webhook_to_delivery() {
    let fake = FakeGreenApi::start().await;
    let app = app_with(&fast(&[("GREEN_API_URL", fake.url())])).await;
    app.start_background();
    let t = tenant(&app).await;
    let (_, path, token) = green_account(&app, &t, &fake).await;

    let body =
        green_api_incoming_text(FakeGreenApi::ID_INSTANCE, "79001234567@c.us", "Иван", "BAE5CHAIN1", "Нужна АКПП");
    let r = post_green(&app, &path, &token, &body).await;
    assert_eq!(r.status(), StatusCode::OK);
    let answer: Value = r.json().await.unwrap();
    let conversation = answer["result"]["messages"][0]["conversation_id"].as_str().unwrap().to_string();

    // The draft is settled once everything the message asked for has run.
    app.drain().await;
    let pending = suggestions(&app, t.owner(), &conversation, "pending", 1).await;
    let suggestion = pending[0]["id"].as_str().unwrap().to_string();
    // The operator sends the draft with their own words (a new request, a new request id).
    app.post_json(
        &format!("/api/suggestions/{suggestion}/edit"),
        t.token(Role::Operator),
        json!({"text": "Подберём АКПП, пришлите VIN"}),
    )
    .await;
    let sent = outbound(&app, t.owner(), &conversation, "sent").await;
    let provider_id = sent["provider_message_id"].as_str().unwrap().to_string();
    let status = green_api_status(FakeGreenApi::ID_INSTANCE, "79001234567@c.us", &provider_id, "delivered");
    assert_eq!(post_green(&app, &path, &token, &status).await.status(), StatusCode::OK);
    app.drain().await;

    // Every event of the conversation, with its cause.
    let log = app.get_json(&format!("/api/conversations/{conversation}/events"), t.owner()).await;
    let items = log["items"].as_array().unwrap().clone();
    let events = by_type(&items);
    let received = one(&events, "MessageReceived");
    let requested = one(&events, "SuggestionRequested");
    let drafted = one(&events, "SuggestionGenerated");
    let edited = one(&events, "SuggestionEdited");
    let queued = one(&events, "ReplyQueued");
    let started = one(&events, "ReplySendStarted");
    let reply_sent = one(&events, "ReplySent");
    let delivered = one(&events, "ReplyDelivered");

    // One chain: every event carries the correlation id of the customer's message.
    let correlation = received["correlation_id"].as_str().unwrap().to_string();
    for e in &items {
        assert_eq!(e["correlation_id"], correlation.as_str(), "{} belongs to the chain: {e}", e["type"]);
        assert_eq!(e["metadata"]["correlation_id"], correlation.as_str());
    }
    // The webhook's cause is the provider's message; each later event names the one before it.
    assert_eq!(received["caused_by"]["id"], "green_api:BAE5CHAIN1");
    assert!(received["caused_by"]["event"].is_null(), "a provider message is not an event of the log");
    assert_eq!(requested["caused_by"]["id"], "green_api:BAE5CHAIN1");
    caused_by(drafted, requested);
    caused_by(edited, drafted);
    caused_by(queued, drafted);
    caused_by(started, queued);
    caused_by(reply_sent, queued);
    caused_by(delivered, reply_sent);
    assert!(edited["metadata"]["actor"].as_str().unwrap().starts_with("token:"), "the operator acted: {edited}");
    assert_eq!(drafted["metadata"]["actor"], "worker:reply-suggestion");
    assert_eq!(reply_sent["metadata"]["actor"], "worker:message-send");

    // The chain end to end, in the log's order.
    let chain = app
        .get_json(&format!("/api/conversations/{conversation}/events?correlation_id={correlation}"), t.owner())
        .await;
    let types: Vec<&str> = chain["items"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    let position = |kind: &str| types.iter().position(|t| *t == kind).unwrap_or_else(|| panic!("{kind} in {types:?}"));
    assert!(position("MessageReceived") < position("SuggestionGenerated"));
    assert!(position("SuggestionGenerated") < position("SuggestionEdited"));
    assert!(position("SuggestionEdited") < position("ReplySent"));
    assert!(position("ReplySent") < position("ReplyDelivered"));
    // Another chain of the same conversation is not part of it.
    let other = app
        .get_json(
            &format!("/api/conversations/{conversation}/events?correlation_id={}", uuid::Uuid::now_v7()),
            t.owner(),
        )
        .await;
    assert!(other["items"].as_array().unwrap().is_empty());

    // The replay CLI shows the same chain, each line with its cause.
    let out = app
        .command(&[])
        .args(["replay", "conversation", &conversation, "--correlation-id", &correlation])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let line = |kind: &str| text.lines().find(|l| l.contains(kind)).unwrap_or_else(|| panic!("{kind} in\n{text}"));
    assert!(line("ReplyDelivered").contains(&format!("← #{} ReplySent", reply_sent["sequence"])), "{text}");
    assert!(line("SuggestionEdited").contains(&format!("← #{} SuggestionGenerated", drafted["sequence"])), "{text}");
    assert!(line("MessageReceived").contains("← green_api:BAE5CHAIN1"), "{text}");
    let timeline = app.command(&[]).args(["replay", "conversation", &conversation]).output().unwrap();
    let timeline = String::from_utf8(timeline.stdout).unwrap();
    assert!(timeline.contains(&format!("← #{} ReplyQueued", queued["sequence"])), "{timeline}");
}
