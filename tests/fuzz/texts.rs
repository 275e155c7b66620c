//! The small parsers of outside text: phones, Telegram usernames, VINs, chat ids, e-mails, prices
//! and mileages written by people or sites, model answers, search results and site pages.

use aisales::channels::green_api::{ChatId, normalize_chat_id};
use aisales::price::{parse_listings, yandex};
use aisales_domain::lead::{Phone, TelegramUsername};
use aisales_domain::media::VisionAnswer;
use aisales_domain::price::{parse_mileage, parse_price, parse_structured_price};
use aisales_domain::prompt::parse_draft;
use aisales_domain::vin::Vin;
use proptest::prelude::*;

use crate::support::{deterministic, hostile_string, run};

const WORDS: &[&str] = &[
    "+7 (999) 123-45-67",
    "8 900 111 22 33",
    "79991234567@c.us",
    "@ivan_k",
    "JTDBR32E720012345",
    "ХТА21099043456789",
    "70 000 ₽",
    "1 200 $",
    "€",
    "руб.",
    "150 000 км",
    "тыс.",
    "ivan@example.com",
    "{\"intent\":",
    "```json",
    "}",
    "\"price_min\": 1",
    "<yandexsearch>",
    "<doc>",
    "<url>",
    "</url>",
    "<title>",
    "<passage>",
    "&amp;",
    "<![CDATA[",
    "<div class=\"price\">",
    "</div>",
    "₽",
    "\u{a0}",
    "-",
    ".",
    ",",
];

fn text() -> BoxedStrategy<String> {
    let piece = hostile_string(WORDS.iter().map(|s| s.to_string()).collect());
    prop_oneof![3 => prop::collection::vec(piece, 1..6).prop_map(|p| p.concat()), 1 => any::<String>()].boxed()
}

#[test]
fn contact_and_id_parsers() {
    run("ids", text(), |s| {
        let _ = deterministic(|| Phone::parse(&s))?;
        let _ = deterministic(|| TelegramUsername::parse(&s))?;
        let _ = deterministic(|| Vin::parse(&s))?;
        let _ = deterministic(|| ChatId::parse(&s))?;
        let _ = deterministic(|| normalize_chat_id(&s))?;
        let _ = deterministic(|| aisales::tenancy::parse_email(&s).map_err(|e| e.to_string()))?;
        Ok(())
    });
}

#[test]
fn price_texts() {
    run("price_texts", (text(), prop::option::of(text())), |(s, currency)| {
        if let Some(p) = deterministic(|| parse_price(&s))? {
            let _ = format!("{p:?}");
        }
        let _ = deterministic(|| parse_mileage(&s))?;
        let _ = deterministic(|| parse_structured_price(&s, currency.as_deref()))?;
        let _ = deterministic(|| aisales::price::estimate::parse_estimate(&s).map_err(|e| e.to_string()))?;
        Ok(())
    });
}

#[test]
fn model_answers() {
    run("model_answers", text(), |s| {
        let _ = deterministic(|| parse_draft(&s).map_err(|e| e.to_string()))?;
        let _ = deterministic(|| VisionAnswer::parse(&s).map_err(|_| ()))?;
        Ok(())
    });
}

#[test]
fn search_results() {
    run("search_results", text(), |s| {
        let _ = deterministic(|| yandex::parse_xml(&s).map_err(|e| e.to_string()))?;
        let _ = deterministic(|| yandex::parse_raw_data(&s).map_err(|e| e.to_string()))?;
        Ok(())
    });
}

/// Site pages, including pages nested far past [`aisales::price::sites::MAX_NESTING`].
#[test]
fn site_pages() {
    let url = reqwest::Url::parse("https://www.farpost.ru/search").expect("a URL");
    run("site_pages", text(), |s| {
        let _ = deterministic(|| parse_listings(&url, &s))?;
        Ok(())
    });
}
