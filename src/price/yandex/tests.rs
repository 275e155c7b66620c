//! The Yandex XML samples of `tests/fixtures/prices/yandex/` read into exact results.

use super::*;

fn sample(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/prices/yandex").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn encoded(xml: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(xml)
}

#[test]
fn highlights_stay_inside_their_result() {
    let answer = parse_raw_data(&encoded(&sample("results.xml"))).unwrap();
    assert_eq!(
        answer.request_id.as_deref(),
        Some("1741774530123456-987654321012345678-balancer-l7leveler-kubr-yp-sas-12-BAL")
    );
    assert_eq!(answer.found, Some(1840));
    assert_eq!(
        answer.results,
        vec![
            SearchResult {
                url: "https://baza.drom.ru/moskva/sell_spare_parts/akpp-toyota-camry-u660e-96543210.html".into(),
                domain: "baza.drom.ru".into(),
                title: "АКПП Toyota Camry U660E 2.5 — купить в Москве".into(),
                headline: Some("Контрактная коробка из Японии".into()),
                passages: vec![
                    "Контрактная АКПП U660E, пробег 65 000 км. Цена 85 000 ₽.".into(),
                    "Отправка & установка в день обращения.".into(),
                ],
            },
            SearchResult {
                url: "https://www.avito.ru/moskva/zapchasti_i_aksessuary/akpp_toyota_camry_2.5_u660e_3456789012".into(),
                domain: "www.avito.ru".into(),
                title: "\"АКПП Toyota Camry 2.5 U660E\" — купить в Москве | Авито".into(),
                headline: None,
                passages: vec!["АКПП U660E контрактная: 85 000 ₽".into()],
            },
            SearchResult {
                url: "https://www.youtube.com/watch?v=u660e-test".into(),
                domain: "www.youtube.com".into(),
                title: "Ремонт АКПП U660E своими руками".into(),
                headline: None,
                passages: vec![],
            },
            SearchResult {
                url: "https://japancar.ru/?code=parts&mode=old&cl=search_partsold&cl_model=u660e".into(),
                domain: "japancar.ru".into(),
                title: "Japancar.ru — АКПП U660E".into(),
                headline: None,
                passages: vec!["Поиск контрактных запчастей: U660E — 12 предложений".into()],
            },
            SearchResult {
                url: "https://www.farpost.ru/vladivostok/auto/parts/+/akpp/?query=u660e".into(),
                domain: "www.farpost.ru".into(),
                title: "АКПП U660E во Владивостоке — Фарпост".into(),
                headline: None,
                passages: vec!["Купить АКПП U660E б/у".into()],
            },
        ]
    );
}

#[test]
fn no_results_is_an_empty_answer() {
    let empty = parse_xml(&sample("empty.xml")).unwrap();
    assert_eq!(empty.results, vec![]);
    assert_eq!(empty.found, Some(0));
    let nothing_found = parse_xml(&sample("error_15.xml")).unwrap();
    assert_eq!(nothing_found.results, vec![]);
    assert_eq!(nothing_found.found, Some(0));
    assert_eq!(nothing_found.request_id.as_deref(), Some("1741774530000001-222-balancer-sas-2-BAL"));
}

#[test]
fn error_codes_are_typed() {
    let limited = parse_xml(&sample("error_55.xml")).unwrap_err();
    assert_eq!(
        limited,
        YandexError::RateLimited {
            retry_after: None,
            message: "error 55: Превышено максимально допустимое количество запросов в секунду".into()
        }
    );
    assert!(limited.is_retryable());
    let refused = parse_xml(&sample("error_42.xml")).unwrap_err();
    assert_eq!(refused.kind(), "unauthorized");
    assert!(!refused.is_retryable());
    let bad_query = parse_xml(
        r#"<yandexsearch version="1.0"><response><error code="2">Задан пустой поисковый запрос</error></response></yandexsearch>"#,
    )
    .unwrap_err();
    assert_eq!(
        bad_query,
        YandexError::Rejected {
            status: 200, code: Some(2), message: "error 2: Задан пустой поисковый запрос".into()
        }
    );
}

#[test]
fn garbage_is_typed() {
    for (raw, expected) in [
        ("###not base64###", "rawData is not base64"),
        (&encoded("<yandexsearch><response><results><grouping><group><doc><url>x</url></doc>"), "the XML is malformed"),
        (&encoded("<html><body>502 Bad Gateway</body></html>"), "not a Yandex search answer"),
        (&encoded("just text"), "not a Yandex search answer"),
        (&base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe, 0x00]), "not UTF-8"),
    ] {
        match parse_raw_data(raw) {
            Err(YandexError::Garbage { reason }) => assert!(reason.contains(expected), "{reason} / {expected}"),
            other => panic!("{raw}: {other:?}"),
        }
    }
}

#[test]
fn documents_without_a_web_url_are_skipped() {
    let xml = r#"<yandexsearch><response><results><grouping>
        <group><doc><url>ftp://files.example.ru/a</url><title>a</title></doc></group>
        <group><doc><title>no url</title></doc></group>
        <group><doc><url> https://shop.example.ru/akpp </url><title>АКПП</title></doc></group>
        </grouping></results></response></yandexsearch>"#;
    let answer = parse_xml(xml).unwrap();
    assert_eq!(answer.results.len(), 1);
    assert_eq!(answer.results[0].url, "https://shop.example.ru/akpp");
    assert_eq!(answer.results[0].domain, "shop.example.ru", "the domain defaults to the URL's host");
}

#[test]
fn the_request_body_is_the_wire_format() {
    assert_eq!(
        request_body("АКПП U660E купить", "b1gfolder"),
        json!({
            "query": {"searchType": "SEARCH_TYPE_RU", "queryText": "АКПП U660E купить", "familyMode": "FAMILY_MODE_NONE", "page": 0},
            "sortSpec": {"sortMode": "SORT_MODE_BY_RELEVANCE"},
            "groupSpec": {"groupMode": "GROUP_MODE_FLAT", "groupsOnPage": 5, "docsInGroup": 1},
            "maxPassages": 2,
            "folderId": "b1gfolder",
            "region": "225",
        })
    );
}

#[test]
fn error_bodies_are_summarised_without_the_key() {
    let key = "AQVNsecretKEY123456";
    let body = format!(r#"{{"code":16,"message":"Unknown api key '{key}'","details":[]}}"#);
    assert_eq!(redact(&error_message(&body), key), "Unknown api key '[redacted]'");
    assert_eq!(error_message("<html>\n<h1>502   Bad Gateway</h1></html>"), "<html> <h1>502 Bad Gateway</h1></html>");
    assert_eq!(error_message(""), "no details");
    assert_eq!(error_message(&"x".repeat(500)).chars().count(), EXCERPT_CHARS + 1);
}

#[tokio::test]
async fn searches_without_credentials_or_with_a_bad_query_do_nothing() {
    let client = YandexSearchClient::new(reqwest::Client::new(), &PriceSourceSettings::default());
    assert!(!client.is_configured());
    assert_eq!(client.endpoint(), "https://searchapi.api.cloud.yandex.net/v2/web/search");
    assert_eq!(client.search("АКПП").await, Err(YandexError::NotConfigured));

    let settings = PriceSourceSettings {
        yandex: Some(YandexCredentials { api_key: "k".repeat(40).into(), folder_id: "b1g".into() }),
        yandex_api_url: "http://127.0.0.1:9/".into(),
        ..PriceSourceSettings::default()
    };
    let client = YandexSearchClient::new(reqwest::Client::new(), &settings);
    assert_eq!(client.endpoint(), "http://127.0.0.1:9/v2/web/search");
    assert_eq!(client.search("  ").await, Err(YandexError::InvalidQuery { reason: "is empty".into() }));
    let long = "а".repeat(401);
    assert!(matches!(client.search(&long).await, Err(YandexError::InvalidQuery { .. })));
}
