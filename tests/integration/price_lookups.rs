//! Price lookups end to end on local fakes: the fake Yandex Cloud Search API and fake classifieds
//! sites (through `PRICE_SITE_ORIGINS`), projectors, dispatcher and workers in-process. An
//! operator's request priced from eight listing pages; a gearbox code in a customer message and a
//! customer's VIN (through the vehicle lookup in a real browser) ending as a price suggestion with
//! the tenant's margin; every failing source recorded and no made-up price; twenty identical
//! requests sharing one search; results expiring by the configured clock; another tenant answered
//! from the shared market snapshot.

use std::time::Duration;

use aisales::auth::Role;
use aisales_domain::price::{PriceSubject, SubjectInput, build_yandex_queries};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::fakes::green_api::{FakeGreenApi, green_api_incoming_text};
use crate::fakes::yandex::YandexMode;
use crate::fakes::{FakeDoc, FakeListingSites, FakeOpenAi, FakeYandexSearch};
use crate::helpers::{TestApp, TestTenant, app_with, eventually, fast, green_account, post_green, tenant};

/// Sites of the search results, as ranked by the page selection; all served by the fake sites.
const SITES: [&str; 8] =
    ["baza.drom.ru", "farpost.ru", "japancar.ru", "dvsavto.ru", "qx9.ru", "kor-motor.ru", "avtgr.ru", "exist.ru"];

struct Env {
    app: TestApp,
    t: TestTenant,
    yandex: FakeYandexSearch,
    sites: FakeListingSites,
    #[allow(dead_code)]
    openai: Option<FakeOpenAi>,
    /// The price variables the app runs with (for a worker process configured like it).
    vars: Vec<(&'static str, String)>,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.app.cancel.cancel();
    }
}

async fn env(extra: &[(&'static str, String)]) -> Env {
    env_with(extra, false).await
}

async fn env_with(extra: &[(&'static str, String)], with_ai: bool) -> Env {
    env_opts(extra, with_ai, true).await
}

/// Without `in_process_worker` the price-lookup worker is left to a separate process.
async fn env_opts(extra: &[(&'static str, String)], with_ai: bool, in_process_worker: bool) -> Env {
    let yandex = FakeYandexSearch::start().await;
    let sites = FakeListingSites::start().await;
    let origins: Vec<String> = SITES.iter().map(|d| format!("{d}={}", sites.url())).collect();
    let mut vars: Vec<(&'static str, String)> = vec![
        ("YANDEX_SEARCH_API_URL", yandex.base_url()),
        ("YANDEX_SEARCH_API_KEY", FakeYandexSearch::API_KEY.into()),
        ("YANDEX_FOLDER_ID", FakeYandexSearch::FOLDER_ID.into()),
        ("YANDEX_SEARCH_TIMEOUT_SECS", "2".into()),
        ("PRICE_SITE_ORIGINS", origins.join(",")),
        ("PRICE_PAGE_TIMEOUT_SECS", "2".into()),
        ("PRICE_LOOKUP_TIMEOUT_SECS", "30".into()),
    ];
    let openai = if with_ai {
        let fake = FakeOpenAi::start().await;
        vars.push(("AI_INTEGRATIONS_OPENAI_API_KEY", FakeOpenAi::API_KEY.into()));
        vars.push(("AI_INTEGRATIONS_OPENAI_BASE_URL", fake.base_url()));
        Some(fake)
    } else {
        None
    };
    vars.extend(extra.iter().cloned());
    let app = app_with(&fast(&vars)).await;
    if in_process_worker {
        app.start_background();
    } else {
        app.start_background_except(&[aisales::bus::Kind::PriceLookup]);
    }
    let t = tenant(&app).await;
    Env { app, t, yandex, sites, openai, vars }
}

/// A listing page: schema.org Product microdata per item (title, price in roubles, mileage).
pub fn listing_page(items: &[(&str, u64, Option<u32>)]) -> String {
    let mut html = String::from(
        "<!DOCTYPE html><html lang=\"ru\"><head><meta charset=\"utf-8\"><title>Контрактные КПП</title></head><body><ul>",
    );
    for (i, (title, price, mileage)) in items.iter().enumerate() {
        let description =
            mileage.map(|m| format!("<p itemprop=\"description\">Б/у, пробег {m} км</p>")).unwrap_or_default();
        html.push_str(&format!(
            "<li itemscope itemtype=\"https://schema.org/Product\"><a itemprop=\"url\" href=\"/item/{i}/\">\
             <span itemprop=\"name\">{title}</span></a>{description}\
             <div itemprop=\"offers\" itemscope itemtype=\"https://schema.org/Offer\">\
             <meta itemprop=\"priceCurrency\" content=\"RUB\"><meta itemprop=\"price\" content=\"{price}\"><b>{price} ₽</b></div></li>"
        ));
    }
    html.push_str("</ul></body></html>");
    html
}

/// The real URL of page `i` (on site `i`), and its path on the fake sites.
fn page_url(code: &str, i: usize) -> (String, String) {
    let path = format!("/{}/{}-{i}.html", code.to_lowercase(), SITES[i].replace('.', "-"));
    (format!("https://{}{path}", SITES[i]), path)
}

/// The queries the worker sends for `input`.
fn queries(input: SubjectInput) -> Vec<String> {
    build_yandex_queries(&PriceSubject::parse(input).unwrap().query_input(false))
}

impl Env {
    fn op(&self) -> &str {
        self.t.token(Role::Operator)
    }

    /// Serves `pages` (one per site, in order) and has the first two queries find them (five results
    /// per query at most, as the real API answers with five groups).
    fn market(&self, code: &str, queries: &[String], pages: &[Vec<(&str, u64, Option<u32>)>]) -> Vec<String> {
        let mut docs = Vec::new();
        let mut urls = Vec::new();
        for (i, items) in pages.iter().enumerate() {
            let (url, path) = page_url(code, i);
            self.sites.serve_bytes(&path, "text/html; charset=utf-8", listing_page(items));
            docs.push(FakeDoc::new(&url, &format!("АКПП {code} купить")));
            urls.push(url);
        }
        for (query, chunk) in queries.iter().zip(docs.chunks(5)) {
            self.yandex.set_results(query, chunk.to_vec());
        }
        urls
    }

    async fn ask(&self, body: Value) -> (StatusCode, Value) {
        let r = self.app.request(Method::POST, "/api/price-lookups", Some(self.op())).json(&body).send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap())
    }

    /// The lookup once its round has ended and the system is at rest.
    async fn settled(&self, id: &str) -> Value {
        self.settled_round(id, 1).await
    }

    /// Like [`Env::settled`], for round `round`.
    async fn settled_round(&self, id: &str, round: u64) -> Value {
        let path = format!("/api/price-lookups/{id}");
        eventually(Duration::from_secs(60), "the price lookup's round ended", || async {
            let v = crate::helpers::try_get(&self.app, &path, self.op()).await?;
            (v["round"].as_u64() >= Some(round) && !matches!(v["status"].as_str(), Some("pending" | "searching")))
                .then_some(())
        })
        .await;
        self.app.drain().await;
        self.app.get_json(&path, self.op()).await
    }

    async fn customer_says(
        &self,
        green: &FakeGreenApi,
        path: &str,
        token: &str,
        chat: &str,
        id: &str,
        text: &str,
    ) -> String {
        let _ = green;
        let body = green_api_incoming_text(FakeGreenApi::ID_INSTANCE, chat, "Иван", id, text);
        let r = post_green(&self.app, path, token, &body).await;
        assert_eq!(r.status(), StatusCode::OK);
        let answer: Value = r.json().await.unwrap();
        answer["result"]["messages"][0]["conversation_id"].as_str().unwrap().to_string()
    }

    /// Pending suggestions of `conversation` made by price lookups, once there are `n`.
    async fn price_suggestions(&self, conversation: &str, n: usize) -> Vec<Value> {
        let path = format!("/api/conversations/{conversation}");
        eventually(Duration::from_secs(30), &format!("{n} price suggestion(s)"), || async {
            let c = crate::helpers::try_get(&self.app, &path, self.t.owner()).await?;
            let list: Vec<Value> = c["pending_suggestions_list"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|s| s["source"] == "price_lookup")
                .collect();
            (list.len() >= n).then_some(list)
        })
        .await
    }

    fn sources<'a>(&self, lookup: &'a Value, source: &str) -> Vec<&'a Value> {
        lookup["sources"].as_array().unwrap().iter().filter(|s| s["source"] == source).collect()
    }
}

fn plain(text: &str) -> String {
    text.replace('\u{a0}', " ")
}

fn u660e() -> SubjectInput {
    SubjectInput {
        transmission_code: Some("U660E".into()),
        make: Some("Toyota".into()),
        model: Some("Camry".into()),
        gearbox_type: Some(aisales_domain::detect::GearboxType::Automatic),
        ..SubjectInput::default()
    }
}

fn u660e_body() -> Value {
    json!({"transmission_code": "U660E", "make": "Toyota", "model": "Camry", "gearbox_type": "AT"})
}

/// Eight pages, one or two whole gearboxes each, plus a hydroblock and a gearbox "на запчасти".
fn eight_pages() -> Vec<Vec<(&'static str, u64, Option<u32>)>> {
    vec![
        vec![("АКПП U660E Toyota Camry контрактная", 80_000, Some(70_000)), ("Гидроблок АКПП U660E", 15_000, None)],
        vec![("АКПП U660E 3.5 в сборе", 85_000, None)],
        vec![("Коробка U660E Toyota", 90_000, Some(95_000))],
        vec![("АКПП U660E Camry ACV40 б/у", 95_000, None), ("АКПП U660E на запчасти", 20_000, None)],
        vec![("Контрактная АКПП U660E", 100_000, Some(40_000))],
        vec![("АКПП U660E из Японии", 88_000, None)],
        vec![("АКПП U660E с гарантией", 92_000, None)],
        vec![("АКПП U660E Toyota Camry 2GR", 97_000, None)],
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operator_request_is_priced_from_eight_listing_pages() {
    let env = env(&[]).await;
    let qs = queries(u660e());
    assert_eq!(qs[0], "АКПП U660E купить");
    let urls = env.market("U660E", &qs, &eight_pages());

    let (status, asked) = env.ask(u660e_body()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{asked}");
    let id = asked["id"].as_str().unwrap().to_string();
    let v = env.settled(&id).await;
    assert_eq!(v["status"], "priced", "{v:#}");
    // Market prices before any margin: the hydroblock and the broken unit do not count.
    assert_eq!(v["min_price"], 80_000);
    assert_eq!(v["max_price"], 100_000);
    assert_eq!(v["median_price"], 91_000);
    assert_eq!(v["currency"], "RUB");
    assert_eq!(v["basis"], "market");
    assert!(v["confidence"].as_f64().unwrap() >= 0.7, "{}", v["confidence"]);
    assert_eq!(v["confidence_level"], "high");
    let listings = v["listings"].as_array().unwrap();
    assert_eq!(listings.len(), 8);
    for l in listings {
        assert!(l["url"].as_str().unwrap().starts_with("https://"), "{l}");
        assert!(SITES.contains(&l["site"].as_str().unwrap()), "{l}");
        assert!(l["title"].as_str().unwrap().contains("U660E"), "{l}");
        assert!(l["price"].as_u64().unwrap() >= 80_000);
    }
    assert_eq!(v["dropped_listings"], 2);
    // Every source asked, in order, with its queries, URLs and outcome.
    let own = env.sources(&v, "own_price_list");
    assert_eq!(own.len(), 1);
    assert_eq!(own[0]["status"], "ok");
    let searches = env.sources(&v, "yandex_search");
    assert_eq!(searches.len(), qs.len());
    assert_eq!(searches[0]["queries"], json!([qs[0]]));
    assert_eq!(searches[0]["results"], 5);
    let pages = env.sources(&v, "listing_page");
    assert_eq!(pages.len(), 8);
    assert!(pages.iter().all(|p| p["status"] == "ok"), "{pages:#?}");
    let mut read: Vec<&str> = pages.iter().map(|p| p["urls"][0].as_str().unwrap()).collect();
    read.sort();
    let mut expected: Vec<&str> = urls.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(read, expected);
    let ai = env.sources(&v, "ai_estimate");
    assert_eq!(ai[0]["status"], "skipped");
    assert_eq!(ai[0]["reason"], "the market listings priced it");
    for (_, path) in (0..8).map(|i| page_url("U660E", i)) {
        assert_eq!(env.sites.hits(&path), 1, "{path}");
    }

    // Asked again while fresh: the same lookup answers at once, nothing is searched again.
    let searched = env.yandex.total_searches();
    let (status, again) = env.ask(u660e_body()).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["id"], id.as_str());
    assert_eq!(again["status"], "priced");
    env.app.drain().await;
    assert_eq!(env.yandex.total_searches(), searched);

    // The list, and a lookup of another tenant is not found.
    let list = env.app.get_json("/api/price-lookups", env.op()).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let other = crate::helpers::create_tenant(&env.app.pool, "Другой магазин").await;
    let r =
        env.app.request(Method::GET, &format!("/api/price-lookups/{id}"), Some(other.owner())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let bad = env
        .app
        .request(Method::POST, "/api/price-lookups", Some(env.op()))
        .json(&json!({"gearbox_type": "AT"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_price_subject");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_identical_requests_run_one_search() {
    let env = env(&[]).await;
    let qs = queries(u660e());
    env.market("U660E", &qs, &eight_pages());
    // Slow pages keep the search in flight while the requests arrive.
    env.sites.set_latency(Duration::from_millis(300));
    let asks = (0..20).map(|_| env.ask(u660e_body()));
    let answers = futures::future::join_all(asks).await;
    let ids: std::collections::BTreeSet<String> =
        answers.iter().map(|(_, v)| v["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), 1, "one lookup: {answers:?}");
    let started = answers.iter().filter(|(s, _)| *s == StatusCode::ACCEPTED).count();
    let joined = answers.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    assert_eq!((started, joined), (1, 19), "{answers:?}");
    let id = ids.into_iter().next().unwrap();
    let v = env.settled(&id).await;
    assert_eq!(v["status"], "priced");
    assert_eq!(v["round"], 1);
    // One search: each query once, each page once.
    for q in &qs {
        assert_eq!(env.yandex.searches(q), 1, "{q}");
    }
    assert_eq!(env.yandex.total_searches(), qs.len());
    for (_, path) in (0..8).map(|i| page_url("U660E", i)) {
        assert_eq!(env.sites.hits(&path), 1, "{path}");
    }
    assert_eq!(v["requesters"].as_array().unwrap().len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn results_expire_by_the_clock_and_another_tenant_reads_the_shared_market() {
    let env = env(&[]).await;
    let qs = queries(u660e());
    env.market("U660E", &qs, &eight_pages());
    let clock = env.app.state.settings.prices.clock.clone();

    let (_, asked) = env.ask(u660e_body()).await;
    let id = asked["id"].as_str().unwrap().to_string();
    assert_eq!(env.settled(&id).await["status"], "priced");
    let searched = env.yandex.total_searches();

    // Another tenant, same gearbox: its own lookup, answered from the shared market snapshot.
    let other = tenant(&env.app).await;
    let r = env
        .app
        .request(Method::POST, "/api/price-lookups", Some(other.token(Role::Operator)))
        .json(&u660e_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let theirs: Value = r.json().await.unwrap();
    assert_ne!(theirs["id"], id.as_str(), "lookups are per tenant");
    let path = format!("/api/price-lookups/{}", theirs["id"].as_str().unwrap());
    let theirs = eventually(Duration::from_secs(60), "the other tenant's lookup ended", || async {
        let v = crate::helpers::try_get(&env.app, &path, other.owner()).await?;
        (!matches!(v["status"].as_str(), Some("pending" | "searching"))).then_some(v)
    })
    .await;
    assert_eq!(theirs["status"], "priced", "{theirs:#}");
    assert_eq!(theirs["min_price"], 80_000);
    assert_eq!(theirs["max_price"], 100_000);
    assert_eq!(env.sources(&theirs, "market_snapshot")[0]["status"], "ok");
    assert_eq!(env.sources(&theirs, "yandex_search")[0]["status"], "skipped");
    assert_eq!(env.yandex.total_searches(), searched, "the market was not searched again");

    // Six days on: still fresh.
    clock.advance(chrono::Duration::days(6));
    let (status, _) = env.ask(u660e_body()).await;
    assert_eq!(status, StatusCode::OK);
    env.app.drain().await;
    assert_eq!(env.yandex.total_searches(), searched);

    // Past seven days: a new round searches again.
    clock.advance(chrono::Duration::days(1) + chrono::Duration::minutes(1));
    let (status, again) = env.ask(u660e_body()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    let v = env.settled_round(&id, 2).await;
    assert_eq!(v["round"], 2);
    assert_eq!(v["status"], "priced");
    assert_eq!(env.yandex.total_searches(), searched * 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_found_is_not_found_with_an_escalation_and_is_not_searched_again_for_a_day() {
    let env = env(&[]).await;
    let green = FakeGreenApi::start().await;
    let (_, path, token) = green_account(&env.app, &env.t, &green).await;
    let conversation = env.customer_says(&green, &path, &token, "79001112233@c.us", "PL-NF1", "Здравствуйте").await;
    let clock = env.app.state.settings.prices.clock.clone();
    // The search API knows nothing of this code (its error 15), the tenant enables no AI.
    let body = json!({"transmission_code": "ZX999Q", "make": "Nissan", "conversation_id": conversation});
    let (status, asked) = env.ask(body.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let id = asked["id"].as_str().unwrap().to_string();
    let v = env.settled(&id).await;
    assert_eq!(v["status"], "escalated", "{v:#}");
    assert!(v["min_price"].is_null() && v["max_price"].is_null() && v["median_price"].is_null());
    assert!(!v["ready_queries"].as_array().unwrap().is_empty());
    assert_eq!(env.sources(&v, "ai_estimate")[0]["reason"], "the tenant does not enable AI estimates");
    let searched = env.yandex.total_searches();
    assert!(searched > 0);

    // The conversation gets the not-found reply and the operator's escalation note; no price.
    let s = env.price_suggestions(&conversation, 2).await;
    let texts: Vec<String> = s.iter().map(|s| plain(s["text"].as_str().unwrap())).collect();
    assert!(texts.iter().all(|t| !t.contains(" 0 ₽") && !t.contains("900 ₽")), "{texts:?}");
    let escalation = s.iter().find(|s| s["intent"] == "escalation").expect("an escalation note");
    assert!(escalation["text"].as_str().unwrap().contains("ZX999Q"), "{escalation}");
    assert_ne!(escalation["decision"], "AUTO_SEND");

    // A negative result: asked again within a day, nothing is searched.
    let (status, _) = env.ask(body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    env.app.drain().await;
    assert_eq!(env.yandex.total_searches(), searched);
    // After 24 hours it is searched again.
    clock.advance(chrono::Duration::hours(24) + chrono::Duration::minutes(1));
    let (status, _) = env.ask(body).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let v = env.settled_round(&id, 2).await;
    assert_eq!(v["round"], 2);
    assert!(env.yandex.total_searches() > searched);
}

async fn with_search_mode(mode: YandexMode) -> (Env, Value) {
    let env = env(&[]).await;
    let qs = queries(u660e());
    env.market("U660E", &qs, &eight_pages());
    env.yandex.set_mode(mode);
    let (status, asked) = env.ask(u660e_body()).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let v = env.settled(asked["id"].as_str().unwrap()).await;
    (env, v)
}

/// A lookup whose search failed: an honest status, no price, the failure recorded.
fn assert_no_price(v: &Value) {
    assert!(matches!(v["status"].as_str(), Some("not_found" | "escalated")), "{v:#}");
    assert!(v["min_price"].is_null() && v["max_price"].is_null(), "{v:#}");
    assert!(v["listings"].as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_search_key_is_recorded_and_not_asked_again_in_the_round() {
    let (env, v) = with_search_mode(YandexMode::Unauthorized).await;
    assert_no_price(&v);
    let searches = env.sources(&v, "yandex_search");
    assert_eq!(searches[0]["status"], "failed");
    assert_eq!(searches[0]["http_status"], 401);
    assert!(searches[1..].iter().all(|s| s["status"] == "skipped"), "{searches:#?}");
    assert_eq!(env.yandex.total_searches(), 1, "a 401 is not retried");
    assert!(env.sources(&v, "listing_page").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rate_limited_search_is_retried_once_then_recorded() {
    let (env, v) = with_search_mode(YandexMode::RateLimited).await;
    assert_no_price(&v);
    let searches = env.sources(&v, "yandex_search");
    assert!(searches.iter().all(|s| s["status"] == "failed" && s["http_status"] == 429), "{searches:#?}");
    let qs = queries(u660e());
    assert_eq!(env.yandex.searches(&qs[0]), 2, "retried once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_search_that_never_answers_times_out() {
    let started = std::time::Instant::now();
    let (env, v) = with_search_mode(YandexMode::Hang).await;
    assert_no_price(&v);
    let searches = env.sources(&v, "yandex_search");
    assert!(searches.iter().all(|s| s["status"] == "failed"), "{searches:#?}");
    assert!(searches[0]["reason"].as_str().unwrap().contains("within"), "{}", searches[0]);
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broken_listing_pages_are_recorded_and_the_rest_price_it() {
    let env = env(&[]).await;
    let qs = queries(u660e());
    env.market("U660E", &qs, &eight_pages());
    let (_, failing) = page_url("U660E", 0);
    let (_, hanging) = page_url("U660E", 1);
    let (_, garbage) = page_url("U660E", 2);
    env.sites.fail(&failing, 500);
    env.sites.hang(&hanging);
    env.sites.garbage(&garbage);
    let (_, asked) = env.ask(u660e_body()).await;
    let v = env.settled(asked["id"].as_str().unwrap()).await;
    assert_eq!(v["status"], "priced", "{v:#}");
    // Priced from the five good pages: 95 000 … 100 000 and 88 000 … 97 000.
    assert_eq!(v["min_price"], 88_000);
    assert_eq!(v["max_price"], 100_000);
    let pages = env.sources(&v, "listing_page");
    let by_url = |path: &str| pages.iter().find(|p| p["urls"][0].as_str().unwrap().ends_with(path)).cloned().unwrap();
    assert_eq!(by_url(&failing)["status"], "failed");
    assert_eq!(by_url(&failing)["http_status"], 500);
    assert_eq!(env.sites.hits(&failing), 2, "a 500 is tried once more");
    assert_eq!(by_url(&hanging)["status"], "failed");
    assert!(by_url(&hanging)["reason"].as_str().unwrap().contains("within"), "{}", by_url(&hanging));
    assert_eq!(env.sites.hits(&hanging), 1, "a timeout is not tried again");
    let g = by_url(&garbage);
    assert!(g["status"] == "failed" || g["results"] == 0, "{g}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ai_estimate_is_asked_only_when_the_tenant_enables_it_and_shown_as_an_estimate() {
    let env = env_with(&[], true).await;
    let openai = env.openai.as_ref().unwrap();
    let r = env
        .app
        .request(Method::PUT, "/api/price-settings", Some(env.t.owner()))
        .json(&json!({"ai_estimate_enabled": true, "escalation_enabled": false, "settings": {"margin_pct": -10, "round_to": 1000}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let before = openai.completion_requests().len();
    openai.push_reply(r#"{"priceMin": 60000, "priceMax": 90000}"#);
    let (_, asked) = env.ask(json!({"transmission_code": "QZ777A"})).await;
    let v = env.settled(asked["id"].as_str().unwrap()).await;
    assert_eq!(v["status"], "estimated", "{v:#}");
    assert_eq!(v["min_price"], 60_000);
    assert_eq!(v["max_price"], 90_000);
    assert!(v["median_price"].is_null());
    assert_eq!(v["confidence_level"], "low");
    assert_eq!(env.sources(&v, "ai_estimate")[0]["status"], "estimate");
    assert_eq!(openai.completion_requests().len(), before + 1);

    // An implausible estimate is a failed source, never a price.
    openai.push_reply(r#"{"priceMin": 500, "priceMax": 900}"#);
    let (_, asked) = env.ask(json!({"transmission_code": "QZ778A"})).await;
    let v = env.settled(asked["id"].as_str().unwrap()).await;
    assert_eq!(v["status"], "not_found", "{v:#}");
    assert!(v["min_price"].is_null());
    assert_eq!(env.sources(&v, "ai_estimate")[0]["status"], "failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gearbox_code_in_a_message_ends_as_a_price_suggestion_with_the_tenants_margin() {
    let env = env(&[]).await;
    let green = FakeGreenApi::start().await;
    let (_, path, token) = green_account(&env.app, &env.t, &green).await;
    let r = env
        .app
        .request(Method::PUT, "/api/price-settings", Some(env.t.owner()))
        .json(&json!({"settings": {"margin_pct": -20, "round_to": 100}, "payment_methods": [{"title": "Наличными при получении"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let input = SubjectInput { transmission_code: Some("A245E".into()), ..SubjectInput::default() };
    let qs = queries(input);
    let pages = vec![
        vec![("АКПП A245E Toyota Corolla", 50_000, None)],
        vec![("АКПП A245E контрактная", 55_000, None)],
        vec![("Коробка A245E б/у", 60_000, None)],
    ];
    env.market("A245E", &qs, &pages);
    let conversation = env
        .customer_says(&green, &path, &token, "79001112244@c.us", "PL-TC1", "Здравствуйте, нужна коробка A245E")
        .await;
    let s = env.price_suggestions(&conversation, 2).await;
    let price = s.iter().find(|s| plain(s["text"].as_str().unwrap()).contains("₽")).expect("a price reply");
    // Market 50 000 … 60 000, margin −20 %: 40 000 … 48 000.
    let text = plain(price["text"].as_str().unwrap());
    assert!(text.contains("от 40 000 до 48 000 ₽"), "{text}");
    assert_eq!(price["intent"], "price");
    assert!(s.iter().any(|s| s["text"].as_str().unwrap().contains("Наличными при получении")));
    // The suggestions and the lookups' list are separate read models: the list may not have
    // applied the lookup's completion yet when the suggestions show.
    env.app.drain().await;
    let list = env.app.get_json(&format!("/api/price-lookups?conversation_id={conversation}"), env.op()).await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list:#}");
    assert_eq!(items[0]["min_price"], 50_000, "the lookup keeps market prices");
    assert_eq!(items[0]["requesters"][0]["kind"], "customer_message");

    // A VIN in the same message as a code: the vehicle lookup asks for the price, not the code.
    let other = env
        .customer_says(&green, &path, &token, "79001112255@c.us", "PL-TC2", "VIN JTNBE46K803123456, коробка U660E")
        .await;
    env.app.drain().await;
    let list = env.app.get_json(&format!("/api/price-lookups?conversation_id={other}"), env.op()).await;
    assert!(list["items"].as_array().unwrap().is_empty(), "{list:#}");
}

#[tokio::test]
async fn the_price_list_import_takes_good_rows_and_the_own_list_prices_first() {
    let env = env(&[]).await;
    let dir = crate::helpers::scratch_dir();
    let file = dir.join("prices.csv");
    std::fs::write(&file, "code;price;condition;supplier;stock\nJF011E;70 000;б/у;Склад;2\n;5000;;;\nCVT;1000;;;\n")
        .unwrap();
    let out =
        env.app.command(&[]).args(["prices", "import", "--tenant", &env.t.id.to_string()]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["taken"], 1);
    assert_eq!(report["refused"].as_array().unwrap().len(), 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 3: the code is empty"), "{stderr}");
    let missing = env
        .app
        .command(&[])
        .args(["prices", "import", "--tenant", &uuid::Uuid::now_v7().to_string()])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));

    // The search finds nothing, the tenant's own list prices it.
    let (_, asked) = env.ask(json!({"transmission_code": "jf011e"})).await;
    let v = env.settled(asked["id"].as_str().unwrap()).await;
    assert_eq!(v["status"], "priced", "{v:#}");
    assert_eq!(v["basis"], "own_price_list");
    assert_eq!(v["min_price"], 70_000);
    assert_eq!(v["own_offers"][0]["supplier"], "Склад");
}

/// The whole chain from a customer's VIN: GREEN-API webhook, the vehicle lookup in a real browser
/// against the catalogue fixtures, the price lookup on the fake search and listing pages, the price
/// suggestion with the market range minus the tenant's margin, and the replay naming each cause.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_customer_vin_ends_as_a_price_suggestion_and_replay_shows_the_chain() {
    use crate::browser::driver::{ChromeDriver, chromium_binary, profile_root};
    use crate::browser::fixture::FixtureSite;

    let driver = ChromeDriver::start().await;
    let podzamenu = FixtureSite::start("podzamenu").await;
    let prof_rf = FixtureSite::start("prof-rf").await;
    let green = FakeGreenApi::start().await;
    let profiles = profile_root("price-e2e");
    let mut vars: Vec<(&'static str, String)> = vec![
        ("GREEN_API_URL", green.url()),
        ("WEBDRIVER_URL", driver.url()),
        ("PODZAMENU_BASE_URL", podzamenu.url()),
        ("PROF_RF_BASE_URL", prof_rf.url()),
        ("BROWSER_PROFILE_DIR", profiles.display().to_string()),
        ("BROWSER_POOL_SIZE", "1".into()),
        ("LOOKUP_STEP_TIMEOUT_SECS", "8".into()),
        ("LOOKUP_TIMEOUT_SECS", "40".into()),
    ];
    if let Some(bin) = chromium_binary() {
        vars.push(("CHROMIUM_BINARY", bin));
    }
    let env = env(&vars).await;
    let (_, path, token) = green_account(&env.app, &env.t, &green).await;
    // Every search finds the same five pages of U241E gearboxes.
    let pages = [60_000u64, 65_000, 70_000, 75_000, 80_000];
    let mut docs = Vec::new();
    for (i, price) in pages.iter().enumerate() {
        let (url, p) = page_url("U241E", i);
        env.sites.serve_bytes(
            &p,
            "text/html; charset=utf-8",
            listing_page(&[("АКПП U241E Toyota Camry контрактная", *price, None), ("Гидроблок U241E", 12_000, None)]),
        );
        docs.push(FakeDoc::new(&url, "АКПП U241E купить"));
    }
    env.yandex.set_fallback_results(docs);

    let conversation = env
        .customer_says(
            &green,
            &path,
            &token,
            "79001113344@c.us",
            "PL-E2E1",
            "Здравствуйте! VIN JTNBK40K203012345, нужна АКПП",
        )
        .await;
    let s = env.price_suggestions(&conversation, 1).await;
    let price = s.iter().find(|s| plain(s["text"].as_str().unwrap()).contains("₽")).expect("a price reply");
    // Market 60 000 … 80 000, the default margin −25 %: 45 000 … 60 000.
    let text = plain(price["text"].as_str().unwrap());
    assert!(text.contains("от 45 000 до 60 000 ₽"), "{text}");
    // The lookups' read model has its own projector: it may be a moment behind the suggestions'.
    let path = format!("/api/price-lookups?conversation_id={conversation}");
    let list = eventually(Duration::from_secs(20), "the conversation's price lookup is listed as priced", || async {
        let list = env.app.get_json(&path, env.op()).await;
        (list["items"][0]["status"] == "priced").then_some(list)
    })
    .await;
    let lookup = &list["items"][0];
    assert_eq!(lookup["status"], "priced", "{list:#}");
    assert_eq!(lookup["subject"]["oem"], "30500-33570");
    assert_eq!(lookup["requesters"][0]["kind"], "vehicle_lookup");
    assert_eq!((lookup["min_price"].as_u64(), lookup["max_price"].as_u64()), (Some(60_000), Some(80_000)));

    // The replay of the customer's chain shows the price lookup's steps, each with its cause.
    env.app.drain().await;
    let events = env.app.get_json(&format!("/api/conversations/{conversation}/events"), env.t.owner()).await;
    let received = events["items"].as_array().unwrap().iter().find(|e| e["type"] == "MessageReceived").unwrap().clone();
    let correlation = received["correlation_id"].as_str().unwrap().to_string();
    let out = env
        .app
        .command(&[])
        .args(["replay", "conversation", &conversation, "--correlation-id", &correlation])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let replay = String::from_utf8(out.stdout).unwrap();
    let line = |kind: &str| replay.lines().find(|l| l.contains(kind)).unwrap_or_else(|| panic!("{kind} in\n{replay}"));
    assert!(line("PriceLookupRequested").contains("PriceLookupWanted"), "{replay}");
    assert!(line("PriceLookupPriced").contains("PriceLookupRequested"), "{replay}");
    assert!(line("PriceSourceQueried").contains("PriceLookupRequested"), "{replay}");
    assert!(
        replay.lines().any(|l| l.contains("SuggestionGenerated")
            && l.contains("price_lookup")
            && l.contains("PriceLookupRequested")),
        "{replay}"
    );
    drop(driver);
    let _ = std::fs::remove_dir_all(&profiles);
}

fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024)
}

fn percentile(sorted: &[u128], p: f64) -> u128 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// A whole price lookup through the bus and a separate `aisales worker price-lookup` process: the
/// request, four searches on the fake search API, eight listing pages of 25 listings each on the
/// fake sites, the statistics, the conclusion and the read model; and the worker's resident memory
/// (no browser). Run by `scripts/bench-price.sh` or
/// `cargo test --test integration price_lookups::bench -- --ignored --nocapture`; `BENCH_LOOKUPS`
/// sets the number of lookups (default 30), each of another code so none is answered from a
/// snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark"]
async fn bench_price_lookup_latency_and_worker_memory() {
    let env = env_opts(&[], false, false).await;
    let log = std::env::temp_dir().join(format!("aisales-bench-price-worker-{}.log", std::process::id()));
    let mut cmd = env.app.command(&[]);
    cmd.args(["worker", "price-lookup"]);
    for (k, v) in &env.vars {
        cmd.env(k, v);
    }
    let worker = crate::helpers::ChildGuard::spawn_logged(cmd, &log);
    let pid = worker.pid();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            while let Some(rss) = rss_of(pid) {
                peak.fetch_max(rss, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let n: usize = std::env::var("BENCH_LOOKUPS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let mut times = Vec::new();
    let started_all = std::time::Instant::now();
    for i in 0..n {
        let code = format!("U{i:03}E");
        let qs = queries(SubjectInput { transmission_code: Some(code.clone()), ..u660e() });
        let titles: Vec<String> = (0..25).map(|j| format!("АКПП {code} контрактная, вариант {j}")).collect();
        let pages: Vec<Vec<(&str, u64, Option<u32>)>> = (0..8)
            .map(|p| {
                titles
                    .iter()
                    .enumerate()
                    .map(|(j, t)| (t.as_str(), 70_000 + (p * 25 + j) as u64 * 300, Some(40_000 + j as u32 * 3_000)))
                    .collect()
            })
            .collect();
        env.market(&code, &qs, &pages);
        let t0 = std::time::Instant::now();
        let (status, asked) =
            env.ask(json!({"transmission_code": code, "make": "Toyota", "model": "Camry", "gearbox_type": "AT"})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{asked}");
        let path = format!("/api/price-lookups/{}", asked["id"].as_str().unwrap());
        let done = loop {
            if let Some(v) = crate::helpers::try_get(&env.app, &path, env.op()).await
                && !matches!(v["status"].as_str(), Some("pending" | "searching"))
            {
                break v;
            }
            assert!(t0.elapsed() < Duration::from_secs(60), "lookup {i} did not finish");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        times.push(t0.elapsed().as_millis());
        assert_eq!(done["status"], "priced", "{done:#}");
        assert_eq!(env.sources(&done, "listing_page").len(), 8);
    }
    let elapsed = started_all.elapsed();
    let idle = rss_of(pid).unwrap_or(0);
    sampler.abort();
    times.sort_unstable();
    let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!("price lookups: {n} sequential, 8 pages of 25 listings each, {:.1} s in all", elapsed.as_secs_f64());
    println!(
        "request to priced answer through the bus and the worker process: p50 {} ms, p95 {} ms, max {} ms",
        percentile(&times, 0.5),
        percentile(&times, 0.95),
        times[times.len() - 1]
    );
    println!(
        "price worker RSS (no browser): peak {:.1} MB, after the run {:.1} MB",
        mb(peak.load(std::sync::atomic::Ordering::Relaxed)),
        mb(idle)
    );
    assert!(percentile(&times, 0.5) <= 1500, "p50 above 1.5 s");
    assert!(peak.load(std::sync::atomic::Ordering::Relaxed) <= 120 * 1024 * 1024, "worker RSS above 120 MB");
    drop(worker);
}

#[tokio::test]
async fn templates_are_previewed_and_unknown_placeholders_refused() {
    let env = env(&[]).await;
    let ok = env
        .app
        .post_json(
            "/api/price-templates/preview",
            env.op(),
            json!({"kind": "price_result", "content": "{{transmission_model}}: {{min_price}} — {{max_price}} ₽"}),
        )
        .await;
    assert!(!ok["rendered"].as_str().unwrap().contains("{{"), "{ok}");
    let bad = env
        .app
        .request(Method::POST, "/api/price-templates/preview", Some(env.op()))
        .json(&json!({"kind": "price_result", "content": "Цена {{cena}}"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let body: Value = bad.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("cena"), "{body}");
    // Saving it is refused too, and nothing changes.
    let r = env
        .app
        .request(Method::PUT, "/api/price-settings", Some(env.t.owner()))
        .json(&json!({"templates": {"price_result": "Цена {{cena}}"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let s = env.app.get_json("/api/price-settings", env.op()).await;
    assert!(s["templates"].as_object().unwrap().is_empty(), "{s}");
    assert_eq!(s["settings"]["margin_pct"], -25.0);
}
