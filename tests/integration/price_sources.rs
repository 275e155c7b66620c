//! The price sources against local fakes: the Yandex search client against the fake search API,
//! the listing pages against the fake classifieds sites through `PRICE_SITE_ORIGINS`, and every
//! failure ending in its typed error within its deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aisales::price::pages::RenderStatus;
use aisales::price::{
    FetchError, ListingPages, PageFetcher, PageRenderer, PriceSourceSettings, RenderError, RenderReason, SearchResult,
    StructuredPrice, YandexError, YandexSearchClient,
};
use async_trait::async_trait;
use reqwest::Url;

use crate::fakes::{FakeDoc, FakeListingSites, FakeYandexSearch, YandexMode};

fn search_settings(fake: &FakeYandexSearch, key: &str, timeout_secs: &str) -> PriceSourceSettings {
    let vars = [
        ("YANDEX_SEARCH_API_URL", fake.base_url()),
        ("YANDEX_SEARCH_API_KEY", key.to_string()),
        ("YANDEX_FOLDER_ID", FakeYandexSearch::FOLDER_ID.to_string()),
        ("YANDEX_SEARCH_TIMEOUT_SECS", timeout_secs.to_string()),
    ];
    PriceSourceSettings::load(&|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())).unwrap()
}

fn u660e_docs() -> Vec<FakeDoc> {
    vec![
        FakeDoc::new(
            "https://baza.drom.ru/moskva/sell_spare_parts/akpp-u660e-1.html",
            "<hlword>АКПП</hlword> Toyota Camry <hlword>U660E</hlword> — <hlword>купить</hlword> в Москве",
        )
        .passage("Контрактная <hlword>АКПП</hlword>, пробег 65 000 км. Цена 85 000 ₽.")
        .passage("Доставка &amp; установка"),
        FakeDoc::new(
            "https://www.avito.ru/moskva/zapchasti_i_aksessuary/akpp_u660e_2",
            "<hlword>АКПП</hlword> U660E | Авито",
        ),
        FakeDoc::new("https://japancar.ru/?code=parts&mode=old&cl_model=u660e", "Japancar — <hlword>U660E</hlword>"),
        FakeDoc::new("https://www.farpost.ru/vladivostok/akpp-u660e-4.html", "<hlword>U660E</hlword> Фарпост"),
        FakeDoc::new("https://dvsavto.ru/catalog/u660e-5/", "ДВС Авто: <hlword>АКПП</hlword> <hlword>U660E</hlword>"),
        FakeDoc::new("https://kor-motor.ru/u660e-6/", "sixth result, past groupsOnPage"),
    ]
}

#[tokio::test]
async fn the_search_client_speaks_the_wire_format_and_reads_highlighted_results() {
    let fake = FakeYandexSearch::start().await;
    let query = "АКПП U660E купить";
    fake.set_results(query, u660e_docs());
    let client =
        YandexSearchClient::new(reqwest::Client::new(), &search_settings(&fake, FakeYandexSearch::API_KEY, "5"));

    let answer = client.search(query).await.unwrap();
    assert_eq!(answer.results.len(), 5, "five groups asked, five answered");
    assert_eq!(
        answer.results[0],
        SearchResult {
            url: "https://baza.drom.ru/moskva/sell_spare_parts/akpp-u660e-1.html".into(),
            domain: "baza.drom.ru".into(),
            title: "АКПП Toyota Camry U660E — купить в Москве".into(),
            headline: None,
            passages: vec!["Контрактная АКПП, пробег 65 000 км. Цена 85 000 ₽.".into(), "Доставка & установка".into()],
        }
    );
    let urls: Vec<&str> = answer.results.iter().map(|r| r.url.as_str()).collect();
    assert_eq!(
        urls,
        vec![
            "https://baza.drom.ru/moskva/sell_spare_parts/akpp-u660e-1.html",
            "https://www.avito.ru/moskva/zapchasti_i_aksessuary/akpp_u660e_2",
            "https://japancar.ru/?code=parts&mode=old&cl_model=u660e",
            "https://www.farpost.ru/vladivostok/akpp-u660e-4.html",
            "https://dvsavto.ru/catalog/u660e-5/",
        ]
    );
    let titles: Vec<&str> = answer.results.iter().map(|r| r.title.as_str()).collect();
    assert_eq!(titles[1..], ["АКПП U660E | Авито", "Japancar — U660E", "U660E Фарпост", "ДВС Авто: АКПП U660E"]);
    assert_eq!(answer.found, Some(6 * 37));

    let request = &fake.requests_to(FakeYandexSearch::PATH)[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.header("authorization"), Some(format!("Api-Key {}", FakeYandexSearch::API_KEY).as_str()));
    assert_eq!(
        fake.search_bodies()[0],
        serde_json::json!({
            "query": {"searchType": "SEARCH_TYPE_RU", "queryText": query, "familyMode": "FAMILY_MODE_NONE", "page": 0},
            "sortSpec": {"sortMode": "SORT_MODE_BY_RELEVANCE"},
            "groupSpec": {"groupMode": "GROUP_MODE_FLAT", "groupsOnPage": 5, "docsInGroup": 1},
            "maxPassages": 2,
            "folderId": FakeYandexSearch::FOLDER_ID,
            "region": "225",
        })
    );

    // Nothing known for a query: Yandex's error 15, which is an empty answer.
    let nothing = client.search("АКПП ZZ999 купить").await.unwrap();
    assert!(nothing.results.is_empty());
    assert_eq!(fake.searches(query), 1);
    assert_eq!(fake.searches("АКПП ZZ999 купить"), 1);
    assert_eq!(fake.total_searches(), 2);
}

#[tokio::test]
async fn search_failures_are_typed_and_never_hang() {
    let fake = FakeYandexSearch::start().await;
    let query = "вариатор JF011E цена";
    fake.set_results(query, u660e_docs());

    // A wrong key: the API's 401.
    let wrong_key =
        YandexSearchClient::new(reqwest::Client::new(), &search_settings(&fake, "AQVNwrong-key-1234567890", "5"));
    let err = wrong_key.search(query).await.unwrap_err();
    assert_eq!(err, YandexError::Unauthorized { message: "HTTP 401: Unauthenticated".into() });
    assert!(!err.is_retryable());

    let client =
        YandexSearchClient::new(reqwest::Client::new(), &search_settings(&fake, FakeYandexSearch::API_KEY, "1"));
    fake.set_mode(YandexMode::Unauthorized);
    assert_eq!(client.search(query).await.unwrap_err().kind(), "unauthorized", "a revoked key");

    fake.set_mode(YandexMode::RateLimited);
    let err = client.search(query).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(20)));
    assert_eq!(err.kind(), "rate_limited");
    assert!(err.is_retryable());

    fake.set_mode(YandexMode::ServerError);
    assert_eq!(
        client.search(query).await.unwrap_err(),
        YandexError::Server { status: Some(500), message: "Internal".into() }
    );

    for (mode, reason) in [
        (YandexMode::GarbageNotJson, "the answer is not JSON"),
        (YandexMode::GarbageBase64, "rawData is not base64"),
        (YandexMode::GarbageXml, "the XML is malformed"),
    ] {
        fake.set_mode(mode);
        match client.search(query).await {
            Err(YandexError::Garbage { reason: got }) => assert!(got.contains(reason), "{mode:?}: {got}"),
            other => panic!("{mode:?}: {other:?}"),
        }
    }

    fake.set_mode(YandexMode::Hang);
    let started = Instant::now();
    assert_eq!(client.search(query).await, Err(YandexError::Timeout { after: Duration::from_secs(1) }));
    assert!(started.elapsed() < Duration::from_secs(4), "gave up after {:?}", started.elapsed());

    fake.set_mode(YandexMode::Normal);
    assert_eq!(client.search(query).await.unwrap().results.len(), 5, "the same client recovers");
    assert_eq!(fake.searches(query), 9, "every attempt reached the API once");

    // Without credentials nothing is sent.
    let unconfigured = YandexSearchClient::new(
        reqwest::Client::new(),
        &PriceSourceSettings { yandex_api_url: fake.base_url(), ..PriceSourceSettings::default() },
    );
    assert_eq!(unconfigured.search(query).await, Err(YandexError::NotConfigured));
    assert_eq!(fake.searches(query), 9);

    // Nobody listening: unreachable, quickly.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        format!("http://127.0.0.1:{port}")
    };
    let nowhere = YandexSearchClient::new(
        reqwest::Client::new(),
        &PriceSourceSettings { yandex_api_url: closed, ..search_settings(&fake, FakeYandexSearch::API_KEY, "5") },
    );
    assert_eq!(nowhere.search(query).await.unwrap_err().kind(), "unreachable");
}

fn page_settings(origins: &str, page_timeout: &str) -> PriceSourceSettings {
    let vars = [("PRICE_SITE_ORIGINS", origins.to_string()), ("PRICE_PAGE_TIMEOUT_SECS", page_timeout.to_string())];
    PriceSourceSettings::load(&|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())).unwrap()
}

fn pages(settings: &PriceSourceSettings, renderer: Option<Arc<dyn PageRenderer>>) -> ListingPages {
    ListingPages::new(PageFetcher::new(settings).unwrap(), renderer, settings.render_timeout)
}

#[tokio::test]
async fn listing_pages_are_fetched_from_their_origins_and_parsed_as_the_real_sites() {
    let sites = FakeListingSites::start().await;
    sites.serve_fixture("/moskva/zapchasti_i_aksessuary", "avito_search.html");
    sites.serve_fixture("/habarovsk/sell_spare_parts/", "drom_bulls_old_cp1251.html");
    sites.serve_fixture("/catalog/akpp/toyota/", "catalog_dvsavto.html");
    sites.redirect("/old/akpp", 301, "/catalog/akpp/toyota/");
    let origins = format!("avito.ru={0},baza.drom.ru={0},dvsavto.ru={0}/", sites.url());
    let pages = pages(&page_settings(&origins, "5"), None);

    let avito = pages
        .listings("https://www.avito.ru/moskva/zapchasti_i_aksessuary?q=%D0%B0%D0%BA%D0%BF%D0%BF&p=1")
        .await
        .unwrap();
    assert_eq!(avito.site, "avito.ru");
    assert_eq!(avito.url.as_str(), "https://www.avito.ru/moskva/zapchasti_i_aksessuary?q=%D0%B0%D0%BA%D0%BF%D0%BF&p=1");
    assert_eq!(avito.render, RenderStatus::NotNeeded);
    assert_eq!(avito.listings.len(), 4);
    assert_eq!(
        avito.listings[0].url,
        "https://www.avito.ru/moskva/zapchasti_i_aksessuary/akpp_toyota_camry_2.5_u660e_3456789012",
        "links resolve against the real site, not the origin"
    );
    assert!(avito.listings.iter().all(|l| l.site == "avito.ru"));
    assert_eq!(avito.listings[0].structured_price, Some(StructuredPrice { amount: 85_000, currency: "RUB".into() }));
    let request = &sites.requests()[0];
    assert_eq!(request.path, "/moskva/zapchasti_i_aksessuary");
    assert_eq!(request.query.as_deref(), Some("q=%D0%B0%D0%BA%D0%BF%D0%BF&p=1"));
    assert_eq!(request.header("x-forwarded-host"), Some("www.avito.ru"));
    assert!(request.header("user-agent").is_some_and(|ua| ua.starts_with("Mozilla/5.0") && ua.contains("Chrome/")));
    assert_eq!(request.header("accept-language"), Some("ru-RU,ru;q=0.9,en;q=0.5"));

    let drom = pages.listings("https://baza.drom.ru/habarovsk/sell_spare_parts/?query=u241e").await.unwrap();
    let titles: Vec<&str> = drom.listings.iter().map(|l| l.title.as_str()).collect();
    assert_eq!(
        titles,
        ["АКПП Toyota Camry ACV40 2AZ-FE U241E", "Автоматическая коробка U241E, 4WD", "АКПП U241E на запчасти"],
        "the windows-1251 page is decoded"
    );
    let fetched = pages.fetcher().fetch("https://baza.drom.ru/habarovsk/sell_spare_parts/").await.unwrap();
    assert_eq!(fetched.charset, "windows-1251");
    assert_eq!(fetched.site, "baza.drom.ru");
    assert_eq!(fetched.fetched_from.as_str(), format!("{}/habarovsk/sell_spare_parts/", sites.url()));

    // A redirect inside the origin moves the real URL along.
    let moved = pages.listings("https://dvsavto.ru/old/akpp").await.unwrap();
    assert_eq!(moved.url.as_str(), "https://dvsavto.ru/catalog/akpp/toyota/");
    assert_eq!(moved.listings.len(), 2);
    assert_eq!(moved.listings[0].url, "https://dvsavto.ru/catalog/akpp/toyota/u660e-camry-5501/");
    assert_eq!(sites.hits("/old/akpp"), 1);
    assert_eq!(sites.hits("/catalog/akpp/toyota/"), 1);
}

#[tokio::test]
async fn listing_page_failures_are_typed_and_never_hang() {
    let sites = FakeListingSites::start().await;
    sites.fail("/broken", 500);
    sites.hang("/slow");
    sites.garbage("/noise");
    sites.serve_bytes("/api", "application/json", r#"{"items":[]}"#);
    sites.serve_bytes("/huge", "text/html", format!("<html><body>{}</body></html>", "АКПП 85 000 ₽ ".repeat(20_000)));
    sites.serve_bytes("/json-as-html", "text/html; charset=utf-8", r#"{"price": 85000}"#);
    sites.fail("/busy", 503);
    let mut settings = page_settings(&format!("farpost.ru={}", sites.url()), "1");
    settings.page_max_bytes = 64 * 1024;
    let pages = pages(&settings, None);
    let get = |path: &str| {
        let pages = pages.clone();
        let url = format!("https://www.farpost.ru{path}");
        async move { pages.listings(&url).await }
    };

    assert_eq!(get("/broken").await.unwrap_err(), FetchError::Status { status: 500, retry_after: None });
    assert_eq!(get("/missing").await.unwrap_err(), FetchError::Status { status: 404, retry_after: None });
    assert!(get("/busy").await.unwrap_err().is_retryable());

    let started = Instant::now();
    assert_eq!(get("/slow").await.unwrap_err(), FetchError::Timeout { after: Duration::from_secs(1) });
    assert!(started.elapsed() < Duration::from_secs(4), "gave up after {:?}", started.elapsed());

    assert_eq!(
        get("/noise").await.unwrap_err(),
        FetchError::NotHtml { content_type: Some("text/html".into()), reason: "the body is not HTML".into() }
    );
    assert_eq!(get("/json-as-html").await.unwrap_err().kind(), "not_html");
    assert_eq!(
        get("/api").await.unwrap_err(),
        FetchError::NotHtml {
            content_type: Some("application/json".into()),
            reason: "the content type is application/json".into()
        }
    );
    assert_eq!(get("/huge").await.unwrap_err(), FetchError::TooLarge { limit: 64 * 1024 });
    assert_eq!(
        pages.listings("ftp://www.farpost.ru/x").await.unwrap_err(),
        FetchError::InvalidUrl { url: "ftp://www.farpost.ru/x".into() }
    );
    assert_eq!(sites.hits("/slow"), 1);
}

/// A browser stand-in for the render step: answers the HTML a browser would have built after the
/// page's scripts ran (here: a fixture), or never answers.
struct ScriptedBrowser {
    html: Option<String>,
    calls: AtomicUsize,
    last_url: std::sync::Mutex<Option<Url>>,
}

#[async_trait]
impl PageRenderer for ScriptedBrowser {
    async fn render(&self, url: &Url) -> Result<String, RenderError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        *self.last_url.lock().unwrap() = Some(url.clone());
        match &self.html {
            Some(html) => Ok(html.clone()),
            None => std::future::pending().await,
        }
    }
}

#[tokio::test]
async fn pages_that_need_javascript_go_through_the_renderer() {
    let sites = FakeListingSites::start().await;
    sites.serve_fixture("/moskva", "avito_empty_serp.html");
    sites.serve_fixture("/text", "plain_text_prices.html");
    let origins = format!("avito.ru={0},razbor-vostok.ru={0},emex.ru={0}", sites.url());
    let mut settings = page_settings(&origins, "5");
    settings.render_timeout = Duration::from_secs(1);
    let rendered_html = String::from_utf8(FakeListingSites::fixture("avito_search.html")).unwrap();
    let browser = Arc::new(ScriptedBrowser {
        html: Some(rendered_html),
        calls: AtomicUsize::new(0),
        last_url: std::sync::Mutex::new(None),
    });
    let with_browser = pages(&settings, Some(browser.clone()));

    // The empty result list is rendered, through the origin, and parsed as the real site.
    let page = with_browser.listings("https://www.avito.ru/moskva?q=akpp").await.unwrap();
    assert_eq!(page.render, RenderStatus::Rendered { reason: RenderReason::EmptyListingContainer });
    assert_eq!(page.listings.len(), 4);
    assert!(page.listings[0].url.starts_with("https://www.avito.ru/"));
    assert_eq!(
        browser.last_url.lock().unwrap().as_ref().map(Url::to_string),
        Some(format!("{}/moskva?q=akpp", sites.url()))
    );

    // A page whose HTML has its listings is never rendered.
    let text = with_browser.listings("https://razbor-vostok.ru/text").await.unwrap();
    assert_eq!(text.render, RenderStatus::NotNeeded);
    assert_eq!(text.listings.len(), 6);
    assert_eq!(browser.calls.load(Ordering::SeqCst), 1);

    // A site known to render in the browser goes there directly.
    let emex = with_browser.listings("https://emex.ru/products/u660e").await.unwrap();
    assert_eq!(emex.render, RenderStatus::Rendered { reason: RenderReason::JsOnlySite });
    assert_eq!(emex.site, "emex.ru");
    assert_eq!(sites.hits("/products/u660e"), 0);

    // No browser configured: the page says why it gave nothing.
    let without = pages(&settings, None);
    let bare = without.listings("https://www.avito.ru/moskva?q=akpp").await.unwrap();
    assert_eq!(bare.render, RenderStatus::NoRenderer { reason: RenderReason::EmptyListingContainer });
    assert!(bare.listings.is_empty());

    // A browser that never answers is given up at the render deadline.
    let stuck =
        Arc::new(ScriptedBrowser { html: None, calls: AtomicUsize::new(0), last_url: std::sync::Mutex::new(None) });
    let stuck_pages = pages(&settings, Some(stuck));
    let started = Instant::now();
    let failed = stuck_pages.listings("https://www.avito.ru/moskva?q=akpp").await.unwrap();
    assert_eq!(
        failed.render,
        RenderStatus::Failed {
            reason: RenderReason::EmptyListingContainer,
            error: "the page did not render within 1s".into()
        }
    );
    assert!(failed.listings.is_empty());
    assert!(started.elapsed() < Duration::from_secs(4), "gave up after {:?}", started.elapsed());
}
