//! Published webhook bodies fed through the parsers: `tests/fixtures/webhooks/<provider>/*.json`,
//! copied from the providers' documentation and from client libraries' test suites (each file's
//! origin is in `tests/fixtures/webhooks/SOURCES.md`).
//!
//! Every body must be understood without a panic or an error, every message must have an id and
//! a chat, and a body whose published type is a text message must give a message with that text.
//! All failures of a provider are reported together, one line per file; `--nocapture` shows what
//! each body was understood as.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use aisales::channels::{InboundMessage, Notification, ParseError, green_api, telegram, whatsapp};
use serde_json::Value;

/// Fewer files than this means the corpus folder was lost or emptied.
const MIN_GREEN_API: usize = 40;
const MIN_TELEGRAM: usize = 50;
const MIN_WHATSAPP: usize = 50;

/// One corpus file: its name, raw bytes and the same bytes as JSON.
struct Sample {
    name: String,
    body: Vec<u8>,
    json: Value,
}

/// The corpus of `provider`, sorted by file name; fails unless it has at least `min` files.
fn corpus(provider: &str, min: usize) -> Vec<Sample> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/webhooks").join(provider);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    let mut samples: Vec<Sample> = entries
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            let body = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let json = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
            let name = format!("{provider}/{}", path.file_name().expect("a file name").to_string_lossy());
            Sample { name, body, json }
        })
        .collect();
    samples.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(samples.len() >= min, "{} holds {} webhook bodies, expected at least {min}", dir.display(), samples.len());
    samples
}

/// A message the parser must produce: its provider id starts with `id` and its text is `text`.
struct Expected {
    id: String,
    text: String,
}

impl Expected {
    /// Expects `text` (trimmed, as the parsers store it) unless it is blank.
    fn new(id: impl Into<String>, text: &str) -> Option<Self> {
        let text = text.trim();
        (!text.is_empty()).then(|| Expected { id: id.into(), text: text.to_string() })
    }
}

fn str_of<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |cur, key| cur.get(key)).and_then(Value::as_str)
}

fn id_of(v: &Value, path: &[&str]) -> Option<String> {
    match path.iter().try_fold(v, |cur, key| cur.get(key))? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// GREEN-API: an incoming `textMessage` keeps `textMessageData.textMessage`; an incoming
/// `extendedTextMessage` or `quotedMessage` keeps `extendedTextMessageData.text`.
fn green_api_expected(v: &Value) -> Vec<Expected> {
    if str_of(v, &["typeWebhook"]) != Some("incomingMessageReceived") {
        return vec![];
    }
    let id = str_of(v, &["idMessage"]).unwrap_or_default();
    let text = match str_of(v, &["messageData", "typeMessage"]) {
        Some("textMessage") => str_of(v, &["messageData", "textMessageData", "textMessage"]),
        Some("extendedTextMessage" | "quotedMessage") => str_of(v, &["messageData", "extendedTextMessageData", "text"]),
        _ => None,
    };
    text.and_then(|t| Expected::new(id, t)).into_iter().collect()
}

/// Telegram: a message (new, edited or business) with `text` keeps it; its id is `<chat>:<message>`.
fn telegram_expected(v: &Value) -> Vec<Expected> {
    ["message", "edited_message", "business_message"]
        .iter()
        .filter_map(|field| v.get(*field))
        .filter_map(|m| {
            let text = str_of(m, &["text"])?;
            let id = format!("{}:{}", id_of(m, &["chat", "id"])?, id_of(m, &["message_id"])?);
            Expected::new(id, text)
        })
        .collect()
}

/// WhatsApp: every `messages[]` entry of type `text` keeps `text.body` under its own id.
fn whatsapp_expected(v: &Value) -> Vec<Expected> {
    let changes = v.get("entry").and_then(Value::as_array).into_iter().flatten().filter_map(|e| e.get("changes"));
    let values = changes.filter_map(Value::as_array).flatten().filter_map(|c| c.get("value"));
    let messages = values.filter_map(|value| value.get("messages")).filter_map(Value::as_array).flatten();
    messages
        .filter(|m| str_of(m, &["type"]) == Some("text"))
        .filter_map(|m| Expected::new(str_of(m, &["id"])?, str_of(m, &["text", "body"])?))
        .collect()
}

/// Runs `parse` on every sample and returns one line per problem.
fn check_all(
    samples: &[Sample],
    parse: impl Fn(&[u8]) -> Result<Vec<Notification>, ParseError>,
    expected: impl Fn(&Value) -> Vec<Expected>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for sample in samples {
        let outcome = catch_unwind(AssertUnwindSafe(|| parse(&sample.body)));
        let notifications = match outcome {
            Err(_) => {
                problems.push(format!("{}: the parser panicked", sample.name));
                continue;
            }
            Ok(Err(e)) => {
                problems.push(format!("{}: refused: {e}", sample.name));
                continue;
            }
            Ok(Ok(n)) => n,
        };
        println!("{}: {}", sample.name, summary(&notifications));
        let messages: Vec<&InboundMessage> = notifications
            .iter()
            .filter_map(|n| match n {
                Notification::Messages(m) => Some(m),
                _ => None,
            })
            .flatten()
            .collect();
        for m in &messages {
            if m.provider_message_id.is_empty() {
                problems.push(format!("{}: a message without an id: {m:?}", sample.name));
            }
            if m.chat_id.is_empty() {
                problems.push(format!("{}: a message without a chat: {m:?}", sample.name));
            }
        }
        for want in expected(&sample.json) {
            let found = messages.iter().any(|m| m.provider_message_id.starts_with(&want.id) && m.text == want.text);
            if !found {
                problems.push(format!(
                    "{}: no message {:?} with text {:?}; parsed: {notifications:?}",
                    sample.name, want.id, want.text
                ));
            }
        }
    }
    problems
}

/// `messages(2), statuses(1)`, `ignored(reactionMessage)`…: what a body was understood as.
fn summary(notifications: &[Notification]) -> String {
    let parts: Vec<String> = notifications
        .iter()
        .map(|n| match n {
            Notification::Messages(m) => format!("messages({})", m.len()),
            Notification::Statuses(s) => format!("statuses({})", s.len()),
            Notification::OutgoingEcho(_) => "outgoing echo".to_string(),
            Notification::StateChanged { state } => format!("state({state})"),
            Notification::Ignored { reason } => format!("ignored({reason})"),
            Notification::Unknown { kind } => format!("unknown({kind})"),
        })
        .collect();
    parts.join(", ")
}

fn assert_no_problems(provider: &str, count: usize, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{} of {count} {provider} webhook bodies are not understood:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn green_api_corpus() {
    let samples = corpus("green_api", MIN_GREEN_API);
    let problems = check_all(&samples, |b| green_api::parse(b).map(|n| vec![n]), green_api_expected);
    assert_no_problems("GREEN-API", samples.len(), &problems);
}

#[test]
fn telegram_corpus() {
    let samples = corpus("telegram", MIN_TELEGRAM);
    let problems = check_all(&samples, |b| telegram::parse(b).map(|n| vec![n]), telegram_expected);
    assert_no_problems("Telegram", samples.len(), &problems);
}

#[test]
fn whatsapp_corpus() {
    let samples = corpus("whatsapp", MIN_WHATSAPP);
    let problems = check_all(&samples, whatsapp::parse, whatsapp_expected);
    assert_no_problems("WhatsApp", samples.len(), &problems);
    // Grouping by business number sees the same bodies the same way.
    for sample in &samples {
        let routed = whatsapp::parse_routed(&sample.body);
        assert!(routed.is_ok(), "{}: parse_routed refused: {:?}", sample.name, routed.err());
    }
}

/// GREEN-API contact cards: every number of the card (the value of a `TEL` line, grouped as
/// `item1.TEL` or not, else its `waid`) is in the message, so an operator can call it.
#[test]
fn green_api_contact_cards_keep_their_numbers() {
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    let mut cards = 0;
    for sample in corpus("green_api", MIN_GREEN_API) {
        if str_of(&sample.json, &["messageData", "typeMessage"]) != Some("contactMessage") {
            continue;
        }
        cards += 1;
        let vcard = str_of(&sample.json, &["messageData", "contactMessageData", "vcard"]).unwrap_or_default();
        let numbers: Vec<String> = vcard
            .lines()
            .filter(|l| l.to_ascii_uppercase().contains("TEL"))
            .map(|l| {
                let value = digits(l.split_once(':').map(|(_, v)| v).unwrap_or_default());
                let waid =
                    || l.split("waid=").nth(1).unwrap_or_default().chars().take_while(char::is_ascii_digit).collect();
                if value.len() < 3 { waid() } else { value }
            })
            .filter(|n| !n.is_empty())
            .collect();
        assert!(!numbers.is_empty(), "{}: a card without a number", sample.name);
        let Ok(Notification::Messages(messages)) = green_api::parse(&sample.body) else {
            panic!("{}: not a message", sample.name)
        };
        let text = digits(&messages[0].text);
        for n in numbers {
            assert!(text.contains(&n), "{}: {n} missing from {:?}", sample.name, messages[0].text);
        }
    }
    assert!(cards >= 3, "contact cards in the corpus: {cards}");
}

/// WhatsApp statuses: each published status is understood as the state it names (`played`, a
/// voice message listened to, counts as read).
#[test]
fn whatsapp_statuses_are_the_states_they_name() {
    use aisales::channels::DeliveryState;
    for sample in corpus("whatsapp", MIN_WHATSAPP) {
        let Some(name) = sample.name.strip_prefix("whatsapp/status_") else { continue };
        let notifications = whatsapp::parse(&sample.body).expect("a status body parses");
        let states: Vec<&DeliveryState> = notifications
            .iter()
            .filter_map(|n| match n {
                Notification::Statuses(s) => Some(s.iter().map(|s| &s.status)),
                _ => None,
            })
            .flatten()
            .collect();
        let want = |s: &DeliveryState| match name.split(['_', '.']).next() {
            Some("sent") => matches!(s, DeliveryState::Sent),
            Some("delivered") => matches!(s, DeliveryState::Delivered),
            Some("read" | "played") => matches!(s, DeliveryState::Read),
            Some("failed") => matches!(s, DeliveryState::Failed { .. }),
            _ => true,
        };
        assert!(!states.is_empty() && states.iter().all(|s| want(s)), "{}: {states:?}", sample.name);
    }
}
