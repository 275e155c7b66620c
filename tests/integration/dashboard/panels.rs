//! The leads board, the price panel of a conversation and tenant isolation of a lead page, in
//! real headless Chromium against the real server, Postgres and Redis: a lead posted through a
//! lead form's webhook shows on the board and is marked won; a price lookup priced from fake
//! search results and listing pages shows its range and listings and is searched again; another
//! shop's operator gets "not found" for the lead. Screenshots and console checks as in `mod.rs`.

use std::time::Duration;

use aisales::auth::Role;
use aisales_domain::price::{PriceSubject, SubjectInput, build_yandex_queries};
use fantoccini::Locator;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Browser, LIVE_BOUND, conversation_of, one_time_user};
use crate::fakes::green_api::{FakeGreenApi, green_api_incoming_text};
use crate::fakes::{FakeDoc, FakeListingSites, FakeYandexSearch};
use crate::helpers::{app_with, create_tenant, eventually, fast, green_account, post_green, tenant, try_get};

/// A form body, URL-encoded.
fn form_body(fields: &[(&str, &str)]) -> String {
    use aisales::dashboard::format::urlencode;
    fields.iter().map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v))).collect::<Vec<_>>().join("&")
}

fn marquiz() -> Value {
    json!({
        "contacts": {"name": "Светлана", "phone": "+7 (999) 765-43-21"},
        "answers": [
            {"q": "Марка и модель автомобиля", "a": "Kia Rio 2015"},
            {"q": "Какой тип коробки передач?", "a": "Автомат"},
            {"q": "Ваш город", "a": "Казань"}
        ],
        "quiz": {"id": "5f1a", "name": "Подбор КПП"},
        "created": "2026-03-02T10:00:00Z"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lead_from_a_form_is_on_the_board_and_is_won_and_another_shop_cannot_open_it() {
    let fake = FakeGreenApi::start().await;
    let app = app_with(&fast(&[("GREEN_API_URL", fake.url())])).await;
    app.start_background();
    let t = tenant(&app).await;
    green_account(&app, &t, &fake).await;
    one_time_user(&app, t.id, "lena@shop.test", "Lena-Pass-2026", Role::Operator, false).await;

    // A site posts its quiz to the lead form's webhook.
    let lead_form = app.post_json("/api/lead-forms", t.owner(), json!({"kind": "marquiz", "name": "Квиз КПП"})).await;
    let hook = lead_form["webhook_url"].as_str().expect("webhook url").to_string();
    let r = app.client.post(format!("{}{hook}", app.address)).json(&marquiz()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "a new lead");
    let posted: Value = r.json().await.unwrap();
    let lead = posted["lead_id"].as_str().expect("a lead").to_string();
    eventually(Duration::from_secs(20), "the lead on the board", || async {
        try_get(&app, &format!("/api/leads/{lead}"), t.owner()).await.map(|_| ())
    })
    .await;
    app.drain().await;

    let b = Browser::start(&app.address, 1400, 900).await;
    b.sign_in("lena@shop.test", "Lena-Pass-2026").await;
    b.css("#inbox").await;

    // The board: the navigation leads to it, the lead is a card in its status's column.
    b.css("header nav a[href='/leads']").await.click().await.unwrap();
    b.css("#board").await;
    assert_eq!(b.path().await, "/leads");
    let card = format!("#board .lead-card[data-id='{lead}']");
    b.wait_for_text(&card, "Светлана", LIVE_BOUND).await;
    assert!(b.text_of(&card).await.contains("+79•••••••21"), "an operator sees the phone masked");
    b.screenshot("14-leads-board").await;
    b.assert_clean_console("leads board", &[]).await;

    // Filters: the status filter shows one column; a kind filter without such leads shows none.
    b.goto("/leads?kind=tires").await;
    assert!(b.client.find_all(Locator::Css(".lead-card")).await.unwrap().is_empty(), "no tyre leads");

    // The lead page: its fields and timeline; marking it won.
    b.goto("/leads").await;
    b.css(&format!("{card} a")).await.click().await.unwrap();
    b.css("#lead-timeline").await;
    assert_eq!(b.path().await, format!("/leads/{lead}"));
    let side = b.text_of(".col-side").await;
    assert!(side.contains("Kia Rio 2015") && side.contains("Казань"), "{side}");
    assert!(b.text_of("#lead-timeline").await.contains("LeadReceived"));
    b.screenshot("15-lead").await;
    // Lost needs a reason: the browser's form insists, and the server says so in a sentence.
    let refused = app
        .client
        .post(format!("{}/leads/{lead}/act", app.address))
        .header("cookie", b.cookie_header().await)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[("csrf", b.csrf().await.as_str()), ("op", "lost"), ("reason", "  ")]))
        .send()
        .await
        .unwrap();
    assert!(refused.url().query().unwrap_or_default().contains("e=reason"), "{}", refused.url());
    assert!(refused.text().await.unwrap().contains("Укажите причину"));
    b.css("input[name=note]").await.send_keys("оплачено по счёту").await.unwrap();
    b.css("#lead-won").await.click().await.unwrap();
    b.css("p.notice").await;
    let v = eventually(Duration::from_secs(20), "the lead won", || async {
        let v = try_get(&app, &format!("/api/leads/{lead}"), t.owner()).await?;
        (v["status"] == "won").then_some(v)
    })
    .await;
    assert_eq!(v["status"], "won");
    let by_user: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = 'lead' AND aggregate_id = $1 AND event_type = 'LeadWon' \
           AND metadata->>'actor' LIKE 'user:%'",
    )
    .bind(&lead)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let won = crate::helpers::opened_events(&app.pool, Some(&lead), "LeadWon").await;
    assert_eq!(by_user, 1, "exactly one LeadWon, by the signed-in user");
    assert_eq!(won.len(), 1);
    assert_eq!(won[0].2["note"], "оплачено по счёту");
    app.drain().await;
    b.goto(&format!("/leads/{lead}")).await;
    assert_eq!(b.text_of("#lead-status").await, "Сделка");
    assert!(b.client.find_all(Locator::Css("#lead-won")).await.unwrap().is_empty(), "a won lead has no won button");
    b.goto("/leads?status=won").await;
    b.wait_for_text(&card, "Светлана", LIVE_BOUND).await;
    b.screenshot("16-leads-won").await;
    b.assert_clean_console("lead", &[]).await;

    // Another shop's operator: the board is empty and the lead page is "not found" (404).
    b.css("form[action='/logout'] button").await.click().await.unwrap();
    b.css("input[name=email]").await;
    let other = create_tenant(&app.pool, "Другой магазин").await;
    one_time_user(&app, other.id, "ivan@other.test", "Other-Pass-2026", Role::Operator, false).await;
    b.sign_in("ivan@other.test", "Other-Pass-2026").await;
    b.css("#inbox").await;
    b.goto("/leads").await;
    b.css("#board").await;
    assert!(b.client.find_all(Locator::Css(".lead-card")).await.unwrap().is_empty(), "another shop's board is empty");
    b.goto(&format!("/leads/{lead}")).await;
    let h1 = b.text_of("main h1").await;
    assert!(h1 == "Не найдено" || h1 == "Not found", "another shop's lead is not found: {h1}");
    let status = app
        .client
        .get(format!("{}/leads/{lead}", app.address))
        .header("cookie", b.cookie_header().await)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Nor can it act on it.
    let r = app
        .client
        .post(format!("{}/leads/{lead}/act", app.address))
        .header("cookie", b.cookie_header().await)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[("csrf", b.csrf().await.as_str()), ("op", "lost"), ("reason", "чужая")]))
        .send()
        .await
        .unwrap();
    assert!(r.url().query().unwrap_or_default().contains("e=not_found"), "{}", r.url());
    let status: String = sqlx::query_scalar("SELECT status FROM rm_leads WHERE lead_id = $1::uuid")
        .bind(&lead)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(status, "won", "the other shop changed nothing");
    b.screenshot("17-other-tenant-lead").await;
    b.assert_clean_console("other tenant's lead", &["status of 404"]).await;
    b.close().await;
}

/// Sites of the search results (served by the fake sites).
const SITES: [&str; 8] =
    ["baza.drom.ru", "farpost.ru", "japancar.ru", "dvsavto.ru", "qx9.ru", "kor-motor.ru", "avtgr.ru", "exist.ru"];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_price_panel_shows_a_priced_lookup_and_searches_it_again() {
    let fake = FakeGreenApi::start().await;
    let yandex = FakeYandexSearch::start().await;
    let sites = FakeListingSites::start().await;
    let origins: Vec<String> = SITES.iter().map(|d| format!("{d}={}", sites.url())).collect();
    let app = app_with(&fast(&[
        ("GREEN_API_URL", fake.url()),
        ("YANDEX_SEARCH_API_URL", yandex.base_url()),
        ("YANDEX_SEARCH_API_KEY", FakeYandexSearch::API_KEY.into()),
        ("YANDEX_FOLDER_ID", FakeYandexSearch::FOLDER_ID.into()),
        ("YANDEX_SEARCH_TIMEOUT_SECS", "2".into()),
        ("PRICE_SITE_ORIGINS", origins.join(",")),
        ("PRICE_PAGE_TIMEOUT_SECS", "2".into()),
        ("PRICE_LOOKUP_TIMEOUT_SECS", "30".into()),
    ]))
    .await;
    app.start_background();
    let t = tenant(&app).await;
    let (_, hook, token) = green_account(&app, &t, &fake).await;
    one_time_user(&app, t.id, "anna@shop.test", "Anna-Pass-2026", Role::Operator, false).await;
    let msg = green_api_incoming_text(FakeGreenApi::ID_INSTANCE, "79001234567@c.us", "Иван", "MSG-1", "Сколько стоит?");
    let r = post_green(&app, &hook, &token, &msg).await;
    assert_eq!(r.status(), StatusCode::OK);
    let conversation = conversation_of(&r.json().await.unwrap());
    app.drain().await;

    // The market: four listing pages found by the first query.
    let input = SubjectInput {
        transmission_code: Some("U660E".into()),
        make: Some("Toyota".into()),
        model: Some("Camry".into()),
        ..SubjectInput::default()
    };
    let queries = build_yandex_queries(&PriceSubject::parse(input).unwrap().query_input(false));
    let pages: [(&str, u64); 4] = [
        ("АКПП U660E Toyota Camry контрактная", 80_000),
        ("АКПП U660E 3.5 в сборе", 85_000),
        ("Коробка U660E Toyota", 90_000),
        ("Контрактная АКПП U660E", 100_000),
    ];
    let mut docs = Vec::new();
    for (i, (title, price)) in pages.iter().enumerate() {
        let path = format!("/u660e/{}-{i}.html", SITES[i].replace('.', "-"));
        sites.serve_bytes(
            &path,
            "text/html; charset=utf-8",
            crate::price_lookups::listing_page(&[(title, *price, None)]),
        );
        docs.push(FakeDoc::new(&format!("https://{}{path}", SITES[i]), "АКПП U660E купить"));
    }
    yandex.set_results(&queries[0], docs);

    // An operator asks for the price in the conversation (as the API lets them).
    let asked = app
        .request(Method::POST, "/api/price-lookups", Some(t.token(Role::Operator)))
        .json(
            &json!({"transmission_code": "U660E", "make": "Toyota", "model": "Camry", "conversation_id": conversation}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), StatusCode::ACCEPTED);
    let id = asked.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let settled = |round: u64| {
        let (app, id, token) = (&app, id.clone(), t.token(Role::Operator).to_string());
        async move {
            eventually(Duration::from_secs(60), "the price lookup's round ended", || async {
                let v = try_get(app, &format!("/api/price-lookups/{id}"), &token).await?;
                (v["round"].as_u64() >= Some(round) && !matches!(v["status"].as_str(), Some("pending" | "searching")))
                    .then_some(v)
            })
            .await
        }
    };
    let v = settled(1).await;
    assert_eq!(v["status"], "priced", "{v:#}");
    app.drain().await;

    let b = Browser::start(&app.address, 1400, 1000).await;
    b.sign_in("anna@shop.test", "Anna-Pass-2026").await;
    b.css("#inbox").await;
    b.goto(&format!("/c/{conversation}")).await;
    let panel = format!("#prices .price-lookup[data-id='{id}']");
    b.wait_for_text(&panel, "U660E", LIVE_BOUND).await;
    b.wait_for_text(&panel, "Цена найдена", LIVE_BOUND).await;
    let text =
        b.client.execute("return document.querySelector(arguments[0]).innerText;", vec![json!(panel)]).await.unwrap();
    let text = text.as_str().unwrap_or_default().replace('\u{a0}', " ");
    assert!(text.contains("80 000 ₽ – 100 000 ₽"), "the market range: {text}");
    assert!(text.contains("Цена найдена"), "the status: {text}");
    // Read in one script: the live stream may replace the panel between two WebDriver calls.
    let hrefs = b
        .client
        .execute(
            "return Array.from(document.querySelectorAll(arguments[0])).map(a => a.getAttribute('href'));",
            vec![json!(format!("{panel} .listings a"))],
        )
        .await
        .unwrap();
    let hrefs: Vec<String> = serde_json::from_value(hrefs).unwrap();
    assert_eq!(hrefs.len(), 4, "every listing the price rests on: {hrefs:?}");
    for href in &hrefs {
        assert!(href.starts_with("https://") && SITES.iter().any(|s| href.contains(s)), "{href}");
    }
    b.screenshot("18-price-panel").await;

    // Search again: a second round of the same lookup (the market's cached pages may answer it).
    b.css(&format!("{panel} .price-rerun")).await;
    b.client
        .execute(
            "document.querySelector(arguments[0]).click(); return null;",
            vec![json!(format!("{panel} .price-rerun"))],
        )
        .await
        .unwrap();
    b.css("p.notice").await;
    let v = settled(2).await;
    assert_eq!(v["status"], "priced", "{v:#}");
    assert_eq!(v["round"], 2, "a second round of the same lookup: {v:#}");
    let asked_by_user = v["requesters"].as_array().unwrap().iter().filter(|r| r["kind"] == "operator").count();
    assert!(asked_by_user >= 2, "the re-run is the signed-in operator's request: {:#}", v["requesters"]);
    b.assert_clean_console("price panel", &[]).await;
    b.close().await;
}
