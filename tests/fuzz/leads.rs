//! Lead form bodies (Marquiz, generic JSON, `application/x-www-form-urlencoded`): a submission,
//! a connection test or a `SubmissionError`, never a panic, and the same answer every time.

use aisales::http::lead_webhooks::form_pairs;
use aisales_domain::lead::{FormBody, LeadFields, SubmissionError, parse_form, parse_json};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::support::{body_bytes, deterministic, hostile_string, run, vocabulary};

fn json_seeds() -> Vec<Value> {
    vec![
        json!({
            "contacts": {"name": "Иван", "phone": "+7 913 000-11-22", "email": "ivan@example.com",
                         "telegram": "@ivan_k", "max": "8 900 111 22 33", "whatsapp": "79001112233"},
            "answers": [
                {"q": "Что нужно?", "a": ["АКПП", "Гидроблок"]},
                {"q": {"id": 1, "title": "Коробка"}, "a": {"id": 3, "text": "Робот"}},
                {"q": "Марка авто", "a": "Toyota RAV4 2008"},
                {"q": "VIN", "a": "JTDBR32E720012345"},
                {"q": "Год", "a": 2012},
                {"q": "Пусто", "a": null}
            ],
            "quiz": {"id": 1, "name": "Подбор КПП"},
            "extra": {"utm": {"source": "yandex"}, "messenger": "max", "href": "https://example.com/?a=1"},
            "created": 1714650000
        }),
        json!({"contacts": {"phone": "89991234567"},
               "raw": [{"q": {"title": "Тип КПП"}, "a": {"text": "Механика"}}, {"q": "Город", "a": "Омск"}],
               "quiz": "Подбор КПП"}),
        json!({"phone": "+79990000000", "name": "Пётр", "results": [
            {"name": "Тип двигателя", "value": "Дизель"}, {"name": "Город доставки", "value": "Тула"},
            {"name": "Пусто"}]}),
        json!({"name": "Анна", "phone": "+79991112233", "comment": "Нужна коробка 09G", "form_name": "Заявка",
               "nested": {"car": {"make": "VW", "model": "Golf"}}, "utm_source": "google"}),
        json!([{"name": "phone", "value": "+79991112233"}, {"label": "Имя", "val": "Ольга"}, null]),
        json!({"test": "test"}),
    ]
}

const LEAD_WORDS: &[&str] = &[
    "contacts",
    "answers",
    "raw",
    "results",
    "quiz",
    "phone",
    "telegram",
    "whatsapp",
    "max",
    "email",
    "name",
    "value",
    "question",
    "answer",
    "title",
    "label",
    "text",
    "test",
    "+79991234567",
    "@ivan_k",
    "utm_campaign",
];

/// What the webhook does with a read body: the lead's fields and its duplicate fingerprint.
fn read(parsed: Result<FormBody, SubmissionError>) -> Result<(), TestCaseError> {
    if let Ok(FormBody::Submission(s)) = parsed {
        let fingerprint = s.fingerprint();
        prop_assert_eq!(fingerprint.as_str().len(), 32);
        let fields = LeadFields::extract(&s, s.form_name.as_deref());
        let _ = (fields.kind(), format!("{fields:?}"));
    }
    Ok(())
}

/// A form key: plain, PHP-style (`answers[0][q]`, `contacts[]`), or a long run of brackets.
fn form_key(words: Vec<String>) -> BoxedStrategy<String> {
    let word = hostile_string(words);
    prop_oneof![
        3 => word.clone(),
        2 => (word.clone(), prop::collection::vec(prop_oneof![
                Just(String::new()), "[0-9]{1,20}", prop::sample::select(vec!["q", "a", "name", "phone"]).prop_map(String::from)
            ], 1..5))
            .prop_map(|(head, segs)| format!("{head}{}", segs.iter().map(|s| format!("[{s}]")).collect::<String>())),
        1 => (1..200_000usize, prop::sample::select(vec!["[", "[]", "[0]", "]", "[a"]))
            .prop_map(|(n, s)| format!("a{}", s.repeat(n / s.len()))),
    ]
    .boxed()
}

/// Percent-encodes some bytes of `s` (a few times badly).
fn encode(s: &str, how: u8) -> String {
    match how % 4 {
        0 => s.to_string(),
        1 => s.bytes().map(|b| format!("%{b:02X}")).collect(),
        2 => s.replace(' ', "+"),
        _ => {
            s.bytes().map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { "%".into() }).collect()
        }
    }
}

fn form_body() -> BoxedStrategy<Vec<u8>> {
    let words = vocabulary(&json_seeds(), LEAD_WORDS);
    let pair = (form_key(words.clone()), hostile_string(words), any::<u8>(), any::<u8>());
    prop_oneof![
        5 => prop::collection::vec(pair, 0..10).prop_map(|pairs| {
            pairs.iter().map(|(k, v, hk, hv)| format!("{}={}", encode(k, *hk), encode(v, *hv))).collect::<Vec<_>>()
                .join("&").into_bytes()
        }),
        1 => "[a-z%0-9+=&\\[\\]]{0,64}".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..256),
    ]
    .boxed()
}

#[test]
fn json_lead_forms() {
    run("lead_json", body_bytes(json_seeds(), LEAD_WORDS), |body| {
        if let Ok(v) = serde_json::from_slice::<Value>(&body) {
            read(deterministic(|| parse_json(&v))?)?;
        }
        Ok(())
    });
}

#[test]
fn urlencoded_lead_forms() {
    run("lead_form", form_body(), |body| {
        if let Ok(pairs) = deterministic(|| form_pairs(&body))? {
            read(deterministic(|| parse_form(&pairs))?)?;
        }
        Ok(())
    });
}
