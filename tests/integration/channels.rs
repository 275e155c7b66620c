//! The real channel clients against the local fakes, and the fakes' webhook bodies through our
//! parsers.

use std::time::Duration;

use aisales::channels::green_api::{self, ChatAlias, GreenApiClient};
use aisales::channels::telegram::{self, TelegramClient};
use aisales::channels::whatsapp::{self, WhatsAppClient};
use aisales::channels::{DeliveryState, MessageKind, Notification, SendError};
use serde_json::json;

use crate::fakes::{
    FakeGreenApi, FakeOpenAi, FakeTelegram, FakeWhatsApp, Reply, green_api_incoming_text, green_api_outgoing_echo,
    green_api_status, telegram_text_update, whatsapp_signature, whatsapp_text_webhook,
};

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

fn green_client(fake: &FakeGreenApi) -> GreenApiClient {
    GreenApiClient::new(http(), fake.url()).with_timeout(Duration::from_secs(5))
}

#[tokio::test]
async fn green_api_send_returns_the_provider_id() {
    let fake = FakeGreenApi::start().await;
    let client = green_client(&fake);
    let creds = fake.credentials();

    let sent = client.send_message(&creds, "79001234567@c.us", "Здравствуйте! АКПП есть в наличии.").await.unwrap();
    let by_internal_id = client.send_message(&creds, "58240096@c.us", "Цена 85 000 ₽").await.unwrap();

    let sent_by_fake = fake.sent_messages();
    assert_eq!(sent_by_fake.len(), 2);
    assert_eq!(
        sent_by_fake[0],
        ("79001234567@c.us".into(), "Здравствуйте! АКПП есть в наличии.".into(), sent.provider_message_id.clone())
    );
    assert_eq!(sent_by_fake[1].0, "58240096", "short MAX ids are sent bare");
    assert_eq!(sent_by_fake[1].2, by_internal_id.provider_message_id);
    assert_ne!(sent.provider_message_id, by_internal_id.provider_message_id);

    // Accounts without their own API URL use the client's; MAX hosts put `/v3` before the path.
    let mut default_host = creds.clone();
    default_host.api_url = None;
    client.send_message(&default_host, "41837581", "1").await.unwrap();
    let mut v3 = creds.clone();
    v3.api_url = Some(format!("{}/v3/", fake.url()));
    client.send_message(&v3, "41837581", "2").await.unwrap();
    assert_eq!(fake.sent_messages().len(), 4);

    let requests = fake.requests_to("/sendMessage/");
    assert!(requests[3].path.starts_with("/v3/waInstance"), "{}", requests[3].path);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(
        requests[0].path,
        format!("/waInstance{}/sendMessage/{}", FakeGreenApi::ID_INSTANCE, FakeGreenApi::TOKEN)
    );
    assert_eq!(
        requests[0].body,
        json!({"chatId": "79001234567@c.us", "message": "Здравствуйте! АКПП есть в наличии."})
    );
}

#[tokio::test]
async fn green_api_rate_limit_is_transient_with_retry_after() {
    let fake = FakeGreenApi::start().await;
    let client = green_client(&fake);
    fake.fail_next(1, FakeGreenApi::error(429).with_header("retry-after", "3"));

    let err = client.send_message(&fake.credentials(), "41837581", "Добрый день").await.unwrap_err();
    assert_eq!(
        err,
        SendError::Transient {
            reason: "GREEN-API 429: Too Many Requests".into(),
            retry_after: Some(Duration::from_secs(3))
        }
    );
    assert!(fake.sent_messages().is_empty());

    client.send_message(&fake.credentials(), "41837581", "Добрый день").await.expect("the failure was used up");
    assert_eq!(fake.sent_messages().len(), 1);
}

#[tokio::test]
async fn green_api_server_errors_are_transient() {
    let fake = FakeGreenApi::start().await;
    let client = green_client(&fake);
    fake.fail_next_status(1, 500);
    fake.fail_next_status(1, 502);
    for _ in 0..2 {
        let err = client.send_message(&fake.credentials(), "41837581", "x").await.unwrap_err();
        assert!(err.is_transient(), "{err:?}");
    }
}

#[tokio::test]
async fn green_api_rejections_are_permanent_with_the_provider_reason() {
    let fake = FakeGreenApi::start().await;
    let client = green_client(&fake);

    fake.fail_next_status(1, 466);
    let err = client.send_message(&fake.credentials(), "41837581", "x").await.unwrap_err();
    assert!(!err.is_transient());
    assert!(err.reason().starts_with("GREEN-API 466: Monthly quota has been exceeded."), "{err}");

    let err = client.send_message(&fake.credentials(), "41837581", "").await.unwrap_err();
    assert_eq!(
        err,
        SendError::Permanent {
            reason: "GREEN-API 400: Validation failed. Details: 'message' is not allowed to be empty".into()
        }
    );

    let mut wrong_token = fake.credentials();
    wrong_token.api_token = "0000".into();
    let err = client.send_message(&wrong_token, "41837581", "x").await.unwrap_err();
    assert_eq!(err, SendError::Permanent { reason: "GREEN-API 401".into() });

    let mut wrong_instance = fake.credentials();
    wrong_instance.id_instance = 1;
    let err = client.get_state_instance(&wrong_instance).await.unwrap_err();
    assert_eq!(err, SendError::Permanent { reason: "GREEN-API 403: Forbidden".into() });

    let err = client.send_message(&fake.credentials(), "not a chat", "x").await.unwrap_err();
    assert_eq!(err, SendError::Permanent { reason: "invalid chat id".into() });
    assert!(fake.sent_messages().is_empty());
}

#[tokio::test]
async fn green_api_timeout_is_transient_and_the_journal_shows_the_send() {
    let fake = FakeGreenApi::start().await;
    let client = green_client(&fake).with_timeout(Duration::from_millis(500));
    fake.set_latency(Duration::from_secs(5));

    let err = client.send_message(&fake.credentials(), "79001234567", "Вы ещё ищете коробку?").await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(err.reason().contains("no answer within"), "{err}");
    // It may have been taken: a send must not simply be repeated.
    assert!(matches!(err, SendError::Unconfirmed { .. }), "{err:?}");

    // The provider did accept it: a worker reconciles through the journal before retrying.
    fake.set_latency(Duration::ZERO);
    let journal = green_client(&fake).last_outgoing_messages(&fake.credentials(), 10).await.unwrap();
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].chat_id, "79001234567@c.us");
    assert_eq!(journal[0].text.as_deref(), Some("Вы ещё ищете коробку?"));
    assert_eq!(journal[0].id_message, fake.sent_messages()[0].2);
}

#[tokio::test]
async fn green_api_hang_next_accepts_the_send_before_answering() {
    let fake = FakeGreenApi::start().await;
    let client = green_client(&fake).with_timeout(Duration::from_millis(500));
    fake.hang_next(Duration::from_secs(30));

    let creds = fake.credentials();
    let send = tokio::spawn(async move { client.send_message(&creds, "41837581", "Отправляю счёт").await });
    let requests = fake.wait_for_requests(1, Duration::from_secs(5)).await;
    assert!(requests[0].at <= chrono::Utc::now());
    assert_eq!(fake.sent_messages().len(), 1, "accepted while the answer is held back");
    assert!(send.await.unwrap().unwrap_err().is_transient());

    // Only the next call hangs.
    green_client(&fake).send_message(&fake.credentials(), "41837581", "Ещё раз").await.unwrap();
}

#[tokio::test]
async fn green_api_last_outgoing_messages_reflects_sends() {
    let fake = FakeGreenApi::start().await;
    let client = green_client(&fake);
    let creds = fake.credentials();
    let first = client.send_message(&creds, "79001234567@c.us", "Первое").await.unwrap();
    let second = client.send_message(&creds, "41837581", "Каталог: https://example.com/akpp").await.unwrap();

    let journal = client.last_outgoing_messages(&creds, 60).await.unwrap();
    let ids: Vec<&str> = journal.iter().map(|r| r.id_message.as_str()).collect();
    assert_eq!(ids, [second.provider_message_id.as_str(), first.provider_message_id.as_str()], "newest first");
    assert_eq!(journal[0].text.as_deref(), Some("Каталог: https://example.com/akpp"));
    assert_eq!(journal[0].chat_id, "41837581");
    assert_eq!(journal[1].chat_id, "79001234567@c.us");
    assert_eq!(journal[1].status.as_deref(), Some("sent"));
    assert!(journal.iter().all(|r| r.sent_by_api));
    let request = fake.requests_to("/lastOutgoingMessages/").remove(0);
    assert_eq!(request.query_param("minutes"), Some("60"));
}

#[tokio::test]
async fn green_api_state_and_complete_settings() {
    let fake = FakeGreenApi::start().await;
    let client = green_client(&fake);
    let creds = fake.credentials();
    assert_eq!(client.get_state_instance(&creds).await.unwrap(), "authorized");
    fake.set_state("notAuthorized");
    assert_eq!(client.get_state_instance(&creds).await.unwrap(), "notAuthorized");

    client.set_settings(&creds, "https://crm.example.com/webhooks/green-api/acc-1", "hook-token-1").await.unwrap();
    let settings = fake.settings();
    assert_eq!(settings["webhookUrl"], "https://crm.example.com/webhooks/green-api/acc-1");
    assert_eq!(settings["webhookUrlToken"], "hook-token-1");
    for toggle in
        ["incomingWebhook", "outgoingWebhook", "outgoingAPIMessageWebhook", "outgoingMessageWebhook", "stateWebhook"]
    {
        assert_eq!(settings[toggle], "yes", "{toggle}");
    }
    let sent = &fake.requests_to("/setSettings/")[0].body;
    assert_eq!(sent, &green_api::webhook_settings("https://crm.example.com/webhooks/green-api/acc-1", "hook-token-1"));

    let err = client.set_settings(&creds, "/webhooks/green-api/acc-1", "t").await.unwrap_err();
    assert!(!err.is_transient(), "relative webhook URLs are refused");

    // A partial setSettings resets the other toggles: what the complete object protects against.
    let partial = reqwest::Client::new()
        .post(format!("{}/waInstance{}/setSettings/{}", fake.url(), FakeGreenApi::ID_INSTANCE, FakeGreenApi::TOKEN))
        .json(&json!({"webhookUrl": "https://crm.example.com/other"}))
        .send()
        .await
        .unwrap();
    assert!(partial.status().is_success());
    assert_eq!(fake.settings()["incomingWebhook"], "no");
}

#[tokio::test]
async fn green_api_fake_bodies_round_trip_through_the_parser() {
    let fake = FakeGreenApi::start().await;
    let sent =
        green_client(&fake).send_message(&fake.credentials(), "79001234567@c.us", "Здравствуйте!").await.unwrap();

    let body = green_api_incoming_text(FakeGreenApi::ID_INSTANCE, "41837581", "Иван", "BAE5IN0001", "Нужна АКПП");
    let Notification::Messages(messages) = green_api::parse(body.to_string().as_bytes()).unwrap() else { panic!() };
    assert_eq!(messages[0].provider_message_id, "BAE5IN0001");
    assert_eq!(messages[0].chat_id, "41837581");
    assert_eq!(messages[0].sender_name.as_deref(), Some("Иван"));
    assert_eq!(messages[0].text, "Нужна АКПП");
    assert_eq!(messages[0].kind, MessageKind::Text);

    let echo_body = green_api_outgoing_echo(
        FakeGreenApi::ID_INSTANCE,
        "58240096@c.us",
        "Пётр",
        &sent.provider_message_id,
        "Здравствуйте!",
    );
    let Notification::OutgoingEcho(echo) = green_api::parse(echo_body.to_string().as_bytes()).unwrap() else {
        panic!()
    };
    assert_eq!(echo.provider_message_id, sent.provider_message_id);
    let alias = ChatAlias::from_echo(&fake.sent_messages()[0].0, &echo).unwrap();
    assert_eq!((alias.phone_chat_id.as_str(), alias.internal_id.as_str()), ("79001234567@c.us", "58240096"));

    let status = green_api_status(FakeGreenApi::ID_INSTANCE, "58240096", &sent.provider_message_id, "noAccount");
    let Notification::Statuses(statuses) = green_api::parse(status.to_string().as_bytes()).unwrap() else { panic!() };
    assert_eq!(statuses[0].status, DeliveryState::NoAccount);
    let status = green_api_status(FakeGreenApi::ID_INSTANCE, "58240096", &sent.provider_message_id, "read");
    let Notification::Statuses(statuses) = green_api::parse(status.to_string().as_bytes()).unwrap() else { panic!() };
    assert_eq!(statuses[0].status, DeliveryState::Read);
}

fn telegram_client(fake: &FakeTelegram) -> TelegramClient {
    TelegramClient::new(http(), fake.url()).with_timeout(Duration::from_secs(5))
}

#[tokio::test]
async fn telegram_send_returns_chat_and_message_id() {
    let fake = FakeTelegram::start().await;
    let client = telegram_client(&fake);
    let sent = client.send_message(&fake.token(), "5550001", "Здравствуйте! <b>не разметка</b>").await.unwrap();
    let again = client.send_message(&fake.token(), "5550001", "Второе").await.unwrap();
    let sent_by_fake = fake.sent_messages();
    assert_eq!(sent.provider_message_id, format!("5550001:{}", sent_by_fake[0].2));
    assert_eq!(again.provider_message_id, format!("5550001:{}", sent_by_fake[1].2));
    assert_eq!(sent_by_fake[0].1, "Здравствуйте! <b>не разметка</b>");
    let request = &fake.requests_to("/sendMessage")[0];
    assert_eq!(request.path, format!("/bot{}/sendMessage", FakeTelegram::TOKEN));
    assert_eq!(
        request.body,
        json!({"chat_id": 5550001, "text": "Здравствуйте! <b>не разметка</b>"}),
        "plain text, no parse_mode"
    );
}

#[tokio::test]
async fn telegram_429_is_transient_with_retry_after() {
    let fake = FakeTelegram::start().await;
    fake.fail_next_telegram(1, 429, "Too Many Requests: retry after 5", Some(5));
    let err = telegram_client(&fake).send_message(&fake.token(), "5550001", "x").await.unwrap_err();
    assert_eq!(
        err,
        SendError::Transient {
            reason: "Telegram 429: Too Many Requests: retry after 5".into(),
            retry_after: Some(Duration::from_secs(5))
        }
    );
}

#[tokio::test]
async fn telegram_5xx_is_transient() {
    let fake = FakeTelegram::start().await;
    fake.fail_next_on("/sendMessage", 1, Reply::html(502, "<html><body><h1>502 Bad Gateway</h1></body></html>"));
    fake.fail_next_telegram(1, 500, "Internal Server Error", None);
    for _ in 0..2 {
        let err = telegram_client(&fake).send_message(&fake.token(), "5550001", "x").await.unwrap_err();
        assert!(err.is_transient(), "{err:?}");
    }
}

#[tokio::test]
async fn telegram_rejections_are_permanent_with_the_provider_reason() {
    let fake = FakeTelegram::start().await;
    let client = telegram_client(&fake);
    fake.block_chat(5550002);
    let err = client.send_message(&fake.token(), "5550002", "x").await.unwrap_err();
    assert_eq!(err, SendError::Permanent { reason: "Telegram 403: Forbidden: bot was blocked by the user".into() });
    let err = client.send_message(&fake.token(), "5550001", " ").await.unwrap_err();
    assert_eq!(err, SendError::Permanent { reason: "Telegram 400: Bad Request: message text is empty".into() });
    fake.fail_next_telegram(1, 400, "Bad Request: chat not found", None);
    let err = client.send_message(&fake.token(), "5550003", "x").await.unwrap_err();
    assert_eq!(err, SendError::Permanent { reason: "Telegram 400: Bad Request: chat not found".into() });
    let err = client.send_message(&"1:wrong".into(), "5550001", "x").await.unwrap_err();
    assert_eq!(err, SendError::Permanent { reason: "Telegram 401: Unauthorized".into() });
    let err = client.send_message(&fake.token(), "@someone", "x").await.unwrap_err();
    assert_eq!(err.reason(), "invalid chat id");
    assert!(fake.sent_messages().is_empty());
}

#[tokio::test]
async fn telegram_timeout_is_transient() {
    let fake = FakeTelegram::start().await;
    fake.set_latency(Duration::from_secs(5));
    let err = telegram_client(&fake)
        .with_timeout(Duration::from_millis(500))
        .send_message(&fake.token(), "5550001", "x")
        .await
        .unwrap_err();
    assert!(err.is_transient() && err.retry_after().is_none(), "{err:?}");
}

#[tokio::test]
async fn telegram_fake_update_round_trips_through_the_parser() {
    let body = telegram_text_update(900001, 5550001, 5550001, "Иван", 42, "Нужна АКПП");
    let Notification::Messages(messages) = telegram::parse(body.to_string().as_bytes()).unwrap() else { panic!() };
    assert_eq!(messages[0].provider_message_id, "5550001:42");
    assert_eq!(messages[0].chat_id, "5550001");
    assert_eq!(messages[0].sender_name.as_deref(), Some("Иван"));
    assert_eq!(messages[0].text, "Нужна АКПП");
}

fn whatsapp_client(fake: &FakeWhatsApp) -> WhatsAppClient {
    WhatsAppClient::new(http(), fake.api_url()).with_timeout(Duration::from_secs(5))
}

#[tokio::test]
async fn whatsapp_send_returns_the_wamid() {
    let fake = FakeWhatsApp::start().await;
    let sent = whatsapp_client(&fake)
        .send_text(&fake.access_token(), FakeWhatsApp::PHONE_NUMBER_ID, "+7 900 123-45-67", "Здравствуйте!")
        .await
        .unwrap();
    assert!(sent.provider_message_id.starts_with("wamid."), "{sent:?}");
    assert_eq!(fake.sent_messages(), vec![("79001234567".into(), "Здравствуйте!".into(), sent.provider_message_id)]);
    let request = &fake.requests()[0];
    assert_eq!(request.path, format!("/{}/{}/messages", FakeWhatsApp::API_VERSION, FakeWhatsApp::PHONE_NUMBER_ID));
    assert_eq!(request.header("authorization"), Some(format!("Bearer {}", FakeWhatsApp::ACCESS_TOKEN).as_str()));
    assert_eq!(
        request.body,
        json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "79001234567",
               "type": "text", "text": {"preview_url": false, "body": "Здравствуйте!"}})
    );
}

#[tokio::test]
async fn whatsapp_throttling_and_outages_are_transient() {
    let fake = FakeWhatsApp::start().await;
    let client = whatsapp_client(&fake);
    fake.fail_next_graph(1, 400, 130429, "(#130429) Rate limit hit");
    fake.fail_next(
        1,
        FakeWhatsApp::error(429, 80007, "(#80007) Rate limit issues", None).with_header("retry-after", "30"),
    );
    fake.fail_next_graph(1, 500, 131000, "(#131000) Something went wrong");

    let err =
        client.send_text(&fake.access_token(), FakeWhatsApp::PHONE_NUMBER_ID, "79001234567", "x").await.unwrap_err();
    assert_eq!(
        err,
        SendError::Transient { reason: "WhatsApp 400 (#130429): (#130429) Rate limit hit".into(), retry_after: None }
    );
    let err =
        client.send_text(&fake.access_token(), FakeWhatsApp::PHONE_NUMBER_ID, "79001234567", "x").await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    let err =
        client.send_text(&fake.access_token(), FakeWhatsApp::PHONE_NUMBER_ID, "79001234567", "x").await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(fake.sent_messages().is_empty());
}

#[tokio::test]
async fn whatsapp_rejections_are_permanent_with_the_provider_reason() {
    let fake = FakeWhatsApp::start().await;
    let client = whatsapp_client(&fake);
    let err =
        client.send_text(&"EAAwrong".into(), FakeWhatsApp::PHONE_NUMBER_ID, "79001234567", "x").await.unwrap_err();
    assert_eq!(
        err,
        SendError::Permanent {
            reason: "WhatsApp 401 (#190): Invalid OAuth access token - Cannot parse access token".into()
        }
    );
    let err = client.send_text(&fake.access_token(), "999", "79001234567", "x").await.unwrap_err();
    assert!(!err.is_transient() && err.reason().starts_with("WhatsApp 400 (#100): Unsupported post request."), "{err}");
    fake.fail_next_graph(1, 400, 131030, "(#131030) Recipient phone number not in allowed list");
    let err =
        client.send_text(&fake.access_token(), FakeWhatsApp::PHONE_NUMBER_ID, "79001234567", "x").await.unwrap_err();
    assert_eq!(err.reason(), "WhatsApp 400 (#131030): (#131030) Recipient phone number not in allowed list");
    assert!(!err.is_transient());
}

#[tokio::test]
async fn whatsapp_timeout_is_transient() {
    let fake = FakeWhatsApp::start().await;
    fake.set_latency(Duration::from_secs(5));
    let err = whatsapp_client(&fake)
        .with_timeout(Duration::from_millis(500))
        .send_text(&fake.access_token(), FakeWhatsApp::PHONE_NUMBER_ID, "79001234567", "x")
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(fake.sent_messages().len(), 1, "the provider accepted it before the client gave up");
}

#[tokio::test]
async fn whatsapp_fake_webhook_round_trips_with_its_signature() {
    let body = whatsapp_text_webhook(FakeWhatsApp::PHONE_NUMBER_ID, "79001234567", "Ivan", "wamid.IN1", "Нужна АКПП");
    let raw = serde_json::to_vec(&body).unwrap();
    let header = whatsapp_signature(&raw, "app-secret");
    assert_eq!(whatsapp::verify_signature(b"app-secret", &raw, Some(&header)), Ok(()));
    assert_eq!(header, whatsapp::signature_header(b"app-secret", &raw));
    assert!(whatsapp::verify_signature(b"another-secret", &raw, Some(&header)).is_err());

    let notifications = whatsapp::parse(&raw).unwrap();
    let [Notification::Messages(messages)] = notifications.as_slice() else { panic!("{notifications:?}") };
    assert_eq!(messages[0].provider_message_id, "wamid.IN1");
    assert_eq!(messages[0].chat_id, "79001234567");
    assert_eq!(messages[0].phone.as_deref(), Some("79001234567"));
    assert_eq!(messages[0].sender_name.as_deref(), Some("Ivan"));
    assert_eq!(messages[0].text, "Нужна АКПП");
}

#[tokio::test]
async fn openai_fake_serves_scripted_completions() {
    use async_openai::config::OpenAIConfig;
    use async_openai::types::chat::CreateChatCompletionRequest;

    let fake = FakeOpenAi::start().await;
    fake.push_reply(r#"{"reply":"Есть в наличии","confidence":0.92}"#);
    let client = async_openai::Client::with_config(
        OpenAIConfig::new().with_api_base(fake.base_url()).with_api_key(FakeOpenAi::API_KEY),
    );
    let request: CreateChatCompletionRequest = serde_json::from_value(json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": "Ты продавец автозапчастей."},
                     {"role": "user", "content": "Есть АКПП U660E?"}],
        "response_format": {"type": "json_object"},
    }))
    .unwrap();

    let first = client.chat().create(request.clone()).await.unwrap();
    assert_eq!(first.object, "chat.completion");
    assert_eq!(first.choices[0].message.content.as_deref(), Some(r#"{"reply":"Есть в наличии","confidence":0.92}"#));
    let second = client.chat().create(request.clone()).await.unwrap();
    assert_eq!(second.choices[0].message.content.as_deref(), Some(FakeOpenAi::DEFAULT_REPLY));
    fake.set_default_reply("{}");
    let third = client.chat().create(request).await.unwrap();
    assert_eq!(third.choices[0].message.content.as_deref(), Some("{}"));
    assert_ne!(first.id, second.id);

    let bodies = fake.completion_requests();
    assert_eq!(bodies.len(), 3);
    assert_eq!(bodies[0]["response_format"], json!({"type": "json_object"}));
    assert_eq!(bodies[0]["messages"][1]["content"], "Есть АКПП U660E?");

    // Errors in OpenAI's shape (checked with a plain client: async-openai retries 429s itself).
    let raw = reqwest::Client::new();
    let post = |key: &str| {
        raw.post(format!("{}/chat/completions", fake.base_url()))
            .bearer_auth(key)
            .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}))
            .send()
    };
    fake.fail_next_status(1, 429);
    let answer = post(FakeOpenAi::API_KEY).await.unwrap();
    assert_eq!(answer.status(), 429);
    assert_eq!(answer.headers()["retry-after"], "20");
    let error: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(error["error"]["code"], "rate_limit_exceeded");
    assert_eq!(error["error"]["type"], "requests");
    fake.fail_next_status(1, 500);
    let error: serde_json::Value = post(FakeOpenAi::API_KEY).await.unwrap().json().await.unwrap();
    assert_eq!(error["error"]["type"], "server_error");
    let answer = post("sk-wrong").await.unwrap();
    assert_eq!(answer.status(), 401);
    let error: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(error["error"]["code"], "invalid_api_key");
}
