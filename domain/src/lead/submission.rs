//! Reading a form body into a [`Submission`]: contacts, answers and tracking data, whatever the
//! sender's shape.
//!
//! Accepted shapes (detected from the body, whatever kind of lead form received it):
//! - **Marquiz**, current: `contacts{name,email,phone,telegram?,max?,whatsapp?}`,
//!   `answers[{q,a}]` (`a` a string, number, list or object; `raw[…]` when `answers` is missing),
//!   `quiz{id,name}` or a string, `created`, `extra{utm…, messenger?, href, …}`, `result`;
//! - **Marquiz**, legacy: top-level `phone`, `name`, `results[{name,value}]`;
//! - **generic JSON**: flat or nested objects (`{"contact": {...}, "fields": {...}}`), or a list of
//!   `{name, value}` pairs;
//! - **form pairs** (`application/x-www-form-urlencoded`, Tilda style: `Name`, `Phone`, `Email`,
//!   `tranid`, `formid`, `COOKIES`, `Марка_авто`, …), bracketed names (`contacts[name]`) read as
//!   nested JSON.
//!
//! Field names are matched in Russian or English, without case, spacing or underscores (see
//! [`super::keys`]). A body that is not an object, or holds no usable field, is an error; a body
//! with answers but no way to reach the customer is a valid submission (it becomes a failed lead).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::contact::Phone;
use super::keys::{KeyRole, collapse, is_wrapper, key_role, normalize_key};

/// Longest question or field name kept, in characters.
const MAX_QUESTION: usize = 300;
/// Longest answer kept, in characters.
const MAX_ANSWER: usize = 2000;
/// Most answers kept from one body.
const MAX_ANSWERS: usize = 200;
/// Deepest nesting read.
const MAX_DEPTH: usize = 8;

/// Namespace of fingerprints.
const FINGERPRINT_NAMESPACE: Uuid = Uuid::from_u128(0x3f0d_2b6e_91c4_4d7a_b8e5_6c1a_0f9e_2d47);

/// The kind of a tenant's lead form (`aisales lead-form add marquiz|generic`). Either kind reads
/// every shape; the kind says what the form was made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadFormKind {
    Marquiz,
    Generic,
}

impl LeadFormKind {
    pub const ALL: [LeadFormKind; 2] = [Self::Marquiz, Self::Generic];

    /// `marquiz` or `generic`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Marquiz => "marquiz",
            Self::Generic => "generic",
        }
    }

    /// Parses the name [`LeadFormKind::as_str`] gives.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s.trim())
    }
}

impl std::fmt::Display for LeadFormKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The shape a body was read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubmissionFormat {
    /// Marquiz `contacts` / `answers`.
    #[default]
    Marquiz,
    /// Marquiz top-level `phone`, `name`, `results`.
    MarquizLegacy,
    /// Any other JSON object.
    Json,
    /// `application/x-www-form-urlencoded` pairs.
    Form,
}

impl SubmissionFormat {
    /// `marquiz`, `marquiz_legacy`, `json` or `form`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Marquiz => "marquiz",
            Self::MarquizLegacy => "marquiz_legacy",
            Self::Json => "json",
            Self::Form => "form",
        }
    }
}

/// One question and its answer, or one form field and its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub question: String,
    pub answer: String,
}

/// Contact fields exactly as sent (trimmed), before any rule reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawContacts {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub telegram: Option<String>,
    pub max: Option<String>,
    pub whatsapp: Option<String>,
    /// A first name given apart (`first_name`), joined with `last_name` when there is no name.
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

impl RawContacts {
    fn is_empty(&self) -> bool {
        self == &RawContacts::default()
    }

    /// Stores a contact field; `false` when `role` is no contact or the contact is given already.
    fn fill(&mut self, role: KeyRole, value: String) -> bool {
        let slot = match role {
            KeyRole::Name => &mut self.name,
            KeyRole::Phone => &mut self.phone,
            KeyRole::Email => &mut self.email,
            KeyRole::Telegram => &mut self.telegram,
            KeyRole::Max => &mut self.max,
            KeyRole::Whatsapp => &mut self.whatsapp,
            KeyRole::FirstName => &mut self.first_name,
            KeyRole::LastName => &mut self.last_name,
            _ => return false,
        };
        if slot.is_some() {
            return false;
        }
        *slot = Some(value);
        true
    }
}

/// A form body, read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Submission {
    pub format: SubmissionFormat,
    /// The quiz's or form's name as sent (`quiz.name`, `formname`).
    pub form_name: Option<String>,
    /// The sender's id of the quiz or form (`quiz.id`, `formid`).
    pub form_ref: Option<String>,
    pub contacts: RawContacts,
    /// Marquiz answers, or the fields of a generic form, in the order sent.
    pub answers: Vec<Answer>,
    /// Marquiz legacy `results`.
    pub legacy: Vec<Answer>,
    /// The messenger the customer chose (`extra.messenger`, a `messenger` field).
    pub messenger: Option<String>,
    /// Tracking and transport data: UTM tags, page, transaction id (`utm source`, `href`, …).
    pub tracking: Vec<(String, String)>,
    /// When the sender says the form was filled in (`created`), as sent.
    pub submitted_at: Option<String>,
    /// Nested objects read as one answer each (`car: {make, model}` → `car: "Toyota Camry"`):
    /// searched by the extraction rules after `answers`, never shown or fingerprinted.
    pub composites: Vec<Answer>,
}

/// What a body turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormBody {
    /// A lead.
    Submission(Box<Submission>),
    /// The sender checking the webhook (Tilda posts `test=test` when it is connected): answer
    /// 2xx, store nothing.
    Test,
}

/// Why a body is not a submission (the webhook answers 400 and stores nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubmissionError {
    #[error("the form body must be a JSON object or form fields")]
    NotAnObject,
    #[error("the form body holds no field with a value")]
    Empty,
}

/// A duplicate fingerprint: equal for the same contacts and answers, whatever the key order,
/// spacing or letter case; tracking data and timestamps do not count.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// 32 hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads a JSON body.
pub fn parse_json(body: &Value) -> Result<FormBody, SubmissionError> {
    let mut s = Submission::default();
    match body {
        Value::Object(obj) => {
            if is_test(obj.iter().map(|(k, v)| (k.as_str(), text(v, 0)))) {
                return Ok(FormBody::Test);
            }
            if obj.get("results").is_some_and(Value::is_array) {
                s.format = SubmissionFormat::MarquizLegacy;
                read_marquiz(&mut s, obj);
            } else if ["answers", "contacts", "quiz", "raw"].iter().any(|k| obj.contains_key(*k)) {
                s.format = SubmissionFormat::Marquiz;
                read_marquiz(&mut s, obj);
            } else {
                s.format = SubmissionFormat::Json;
                read_object(&mut s, obj, 0);
            }
        }
        Value::Array(items) if !items.is_empty() && items.iter().all(|i| pair_of(i).is_some() || i.is_null()) => {
            s.format = SubmissionFormat::Json;
            for (name, value) in items.iter().filter_map(pair_of) {
                s.field(&name, value);
            }
        }
        _ => return Err(SubmissionError::NotAnObject),
    }
    s.finish()
}

/// Reads `application/x-www-form-urlencoded` pairs, in the order sent.
pub fn parse_form(pairs: &[(String, String)]) -> Result<FormBody, SubmissionError> {
    if pairs.is_empty() {
        return Err(SubmissionError::Empty);
    }
    if is_test(pairs.iter().map(|(k, v)| (k.as_str(), Some(v.trim().to_string())))) {
        return Ok(FormBody::Test);
    }
    if pairs.iter().any(|(k, _)| k.contains('[')) {
        // PHP-style names (`contacts[name]`, `answers[0][q]`): the same data as nested JSON.
        let body = arrayify(nest(pairs));
        return match parse_json(&body)? {
            FormBody::Submission(mut s) => {
                s.format = SubmissionFormat::Form;
                Ok(FormBody::Submission(s))
            }
            test => Ok(test),
        };
    }
    let mut s = Submission { format: SubmissionFormat::Form, ..Default::default() };
    for (k, v) in pairs {
        s.field(k, v.trim().to_string());
    }
    s.finish()
}

/// `test=test` and nothing else.
fn is_test<'a>(mut fields: impl Iterator<Item = (&'a str, Option<String>)>) -> bool {
    let first = fields.next();
    fields.next().is_none()
        && first.is_some_and(|(k, v)| normalize_key(k) == "test" && v.is_some_and(|v| v.eq_ignore_ascii_case("test")))
}

impl Submission {
    /// The duplicate fingerprint (see [`Fingerprint`]).
    pub fn fingerprint(&self) -> Fingerprint {
        let norm = |v: &str| collapse(v).to_lowercase();
        let c = &self.contacts;
        let phone =
            |v: &Option<String>| v.as_deref().map(|p| Phone::parse(p).map_or_else(|_| norm(p), |p| p.digits().into()));
        let telegram = |v: &Option<String>| v.as_deref().map(|t| norm(t).trim_start_matches('@').to_string());
        let mut parts = vec![
            format!("form:{}", self.form_ref.as_deref().map(norm).unwrap_or_default()),
            format!("quiz:{}", self.form_name.as_deref().map(norm).unwrap_or_default()),
            format!("name:{}", c.name.as_deref().map(norm).unwrap_or_default()),
            format!("phone:{}", phone(&c.phone).unwrap_or_default()),
            format!("email:{}", c.email.as_deref().map(norm).unwrap_or_default()),
            format!("telegram:{}", telegram(&c.telegram).unwrap_or_default()),
            format!("max:{}", phone(&c.max).unwrap_or_default()),
            format!("whatsapp:{}", phone(&c.whatsapp).unwrap_or_default()),
            format!("messenger:{}", self.messenger.as_deref().map(norm).unwrap_or_default()),
        ];
        let mut answers: Vec<String> = self
            .answers
            .iter()
            .map(|a| format!("a:{}\u{1f}{}", normalize_key(&a.question), norm(&a.answer)))
            .chain(self.legacy.iter().map(|a| format!("r:{}\u{1f}{}", normalize_key(&a.question), norm(&a.answer))))
            .collect();
        answers.sort();
        parts.extend(answers);
        let id = Uuid::new_v5(&FINGERPRINT_NAMESPACE, parts.join("\u{1e}").as_bytes());
        Fingerprint(id.simple().to_string())
    }

    /// A generic field: a contact, tracking data, the form's name, or an answer.
    fn field(&mut self, name: &str, value: String) {
        let name = cut(name.trim(), MAX_QUESTION);
        if value.is_empty() || name.is_empty() {
            return;
        }
        match key_role(&name) {
            KeyRole::Dropped => {}
            KeyRole::Technical => self.tracking.push((normalize_key(&name), cut(&value, MAX_ANSWER))),
            KeyRole::FormName => {
                self.form_name.get_or_insert(collapse(&value));
            }
            KeyRole::Messenger => {
                self.messenger.get_or_insert(collapse(&value));
                self.answer(name, value);
            }
            // A second phone or name is kept as an answer.
            role => {
                if !self.contacts.fill(role, collapse(&value)) {
                    self.answer(name, value);
                }
            }
        }
    }

    fn answer(&mut self, question: String, answer: String) {
        if self.answers.len() < MAX_ANSWERS && !answer.trim().is_empty() && !question.trim().is_empty() {
            self.answers.push(Answer { question, answer: cut(&answer, MAX_ANSWER) });
        }
    }

    fn finish(mut self) -> Result<FormBody, SubmissionError> {
        let c = &mut self.contacts;
        if c.name.is_none() {
            // `first_name` + `last_name` when there is no single name field.
            let full: Vec<String> = [&c.first_name, &c.last_name].into_iter().flatten().cloned().collect();
            if !full.is_empty() {
                c.name = Some(full.join(" "));
            }
        }
        if self.contacts.is_empty() && self.answers.is_empty() && self.legacy.is_empty() {
            return Err(SubmissionError::Empty);
        }
        Ok(FormBody::Submission(Box::new(self)))
    }
}

/// Marquiz current and legacy bodies.
fn read_marquiz(s: &mut Submission, obj: &Map<String, Value>) {
    if let Some(Value::Object(contacts)) = obj.get("contacts") {
        for (k, v) in contacts {
            let Some(value) = text(v, 0) else { continue };
            match normalize_key(k).as_str() {
                "messenger" => s.messenger = Some(value),
                _ => match key_role(k) {
                    role @ (KeyRole::Name
                    | KeyRole::Phone
                    | KeyRole::Email
                    | KeyRole::Telegram
                    | KeyRole::Max
                    | KeyRole::Whatsapp) => {
                        s.contacts.fill(role, value);
                    }
                    _ => s.field(k, value),
                },
            }
        }
    }
    match obj.get("answers").or_else(|| obj.get("raw")) {
        Some(Value::Array(items)) => {
            for item in items {
                if let Some((q, a)) = question_answer(item).or_else(|| pair_of(item)) {
                    s.answer(q, a);
                }
            }
        }
        // `answers: {"Марка авто": "Kia"}`: question → answer.
        Some(Value::Object(map)) => read_object(s, map, 1),
        _ => {}
    }
    match obj.get("quiz") {
        Some(Value::Object(quiz)) => {
            s.form_name = quiz.get("name").or_else(|| quiz.get("title")).and_then(|v| text(v, 0));
            s.form_ref = quiz.get("id").and_then(|v| text(v, 0));
        }
        Some(v) => s.form_name = text(v, 0),
        None => {}
    }
    s.submitted_at = obj.get("created").and_then(|v| text(v, 0));
    if let Some(Value::Object(extra)) = obj.get("extra") {
        for (k, v) in extra {
            if normalize_key(k) == "messenger" {
                s.messenger = text(v, 0).or(s.messenger.take());
            } else {
                read_technical(s, k, v, 0);
            }
        }
    }
    for item in obj.get("results").and_then(Value::as_array).into_iter().flatten() {
        let name = item.get("name").and_then(|v| text(v, 0));
        let value = item.get("value").and_then(|v| text(v, 0));
        if let (Some(name), Some(value)) = (name, value)
            && s.legacy.len() < MAX_ANSWERS
        {
            s.legacy.push(Answer { question: cut(&name, MAX_QUESTION), answer: cut(&value, MAX_ANSWER) });
        }
    }
    if let Some(result) = obj.get("result").and_then(|v| text(v, 0)) {
        s.tracking.push(("result".into(), cut(&result, MAX_ANSWER)));
    }
    const KNOWN: &[&str] = &["contacts", "answers", "raw", "quiz", "created", "extra", "results", "result"];
    let rest: Map<String, Value> =
        obj.iter().filter(|(k, _)| !KNOWN.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
    read_object(s, &rest, 0);
}

/// A generic object: leaves are fields (named by their own key), nested objects are read in
/// place, objects under tracking names (`utm: {...}`) are tracking data.
fn read_object(s: &mut Submission, obj: &Map<String, Value>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    for (k, v) in obj {
        match v {
            Value::Null => {}
            Value::Object(inner) => match key_role(k) {
                KeyRole::Technical => read_technical(s, k, v, depth),
                KeyRole::Dropped => {}
                KeyRole::FormName => {
                    // `form: {id, name|title}`.
                    let name = ["name", "title"].iter().find_map(|n| inner.get(*n).and_then(|v| text(v, 0)));
                    if let Some(name) = name {
                        s.form_name.get_or_insert(collapse(&name));
                    }
                    if let Some(id) = inner.get("id").and_then(|v| text(v, 0)) {
                        s.form_ref.get_or_insert(id);
                    }
                    let rest = inner.iter().filter(|(n, _)| !["id", "name", "title"].contains(&n.as_str()));
                    read_object(s, &rest.map(|(n, v)| (n.clone(), v.clone())).collect(), depth + 1);
                }
                _ => {
                    read_object(s, inner, depth + 1);
                    // `car: {make, model, year}` is also one answer, "car".
                    let parts: Vec<String> = inner
                        .iter()
                        .filter(|(n, v)| !v.is_object() && !v.is_array() && key_role(n) == KeyRole::Answer)
                        .filter_map(|(_, v)| text(v, 0))
                        .collect();
                    if !is_wrapper(k) && !parts.is_empty() && s.composites.len() < MAX_ANSWERS {
                        s.composites.push(Answer { question: cut(k, MAX_QUESTION), answer: parts.join(" ") });
                    }
                }
            },
            Value::Array(items) if items.iter().any(|i| pair_of(i).is_some() || question_answer(i).is_some()) => {
                for item in items {
                    if let Some((name, value)) = pair_of(item) {
                        s.field(&name, value);
                    } else if let Some((q, a)) = question_answer(item) {
                        s.field(&q, a);
                    } else if let Value::Object(inner) = item {
                        read_object(s, inner, depth + 1);
                    }
                }
            }
            Value::Array(items) if items.iter().any(Value::is_object) => {
                for item in items {
                    if let Value::Object(inner) = item {
                        read_object(s, inner, depth + 1);
                    }
                }
            }
            _ => {
                if let Some(value) = text(v, 0) {
                    s.field(k, value);
                }
            }
        }
    }
}

/// Tracking data under `k`, flattened to `k sub` names; cookies and tokens are dropped.
fn read_technical(s: &mut Submission, k: &str, v: &Value, depth: usize) {
    if depth > MAX_DEPTH || matches!(key_role(k), KeyRole::Dropped) {
        return;
    }
    match v {
        Value::Object(inner) => {
            for (sub, value) in inner {
                read_technical(s, &format!("{k} {sub}"), value, depth + 1);
            }
        }
        other => {
            if let Some(value) = text(other, 0)
                && s.tracking.len() < MAX_ANSWERS
            {
                s.tracking.push((normalize_key(k), cut(&value, MAX_ANSWER)));
            }
        }
    }
}

/// `{name|key|label|title|field, value}` (a form-builder field).
fn pair_of(item: &Value) -> Option<(String, String)> {
    let o = item.as_object()?;
    let name = ["name", "key", "label", "field", "title"].iter().find_map(|k| o.get(*k).and_then(|v| text(v, 0)))?;
    let value = ["value", "val"].iter().find_map(|k| o.get(*k))?;
    Some((name, text(value, 0).unwrap_or_default()))
}

/// `{q|question|title, a|answer|value|answers}` (a Marquiz answer; `q` may be an object).
fn question_answer(item: &Value) -> Option<(String, String)> {
    let o = item.as_object()?;
    let q = ["q", "question", "title", "text"].iter().find_map(|k| o.get(*k).and_then(|v| text(v, 0)))?;
    let a = ["a", "answer", "answers", "value"].iter().find_map(|k| o.get(*k).and_then(|v| text(v, 0)))?;
    Some((cut(&q, MAX_QUESTION), a))
}

/// The text of a value: strings trimmed, numbers and booleans as written, lists joined with
/// `, `, objects by their `text`/`title`/`value`/`label`/`name` or their values joined.
fn text(v: &Value, depth: usize) -> Option<String> {
    if depth > MAX_DEPTH {
        return None;
    }
    let t = match v {
        Value::Null => return None,
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => items.iter().filter_map(|i| text(i, depth + 1)).collect::<Vec<_>>().join(", "),
        Value::Object(o) => {
            let named = ["text", "title", "value", "label", "name", "answer"]
                .iter()
                .find_map(|k| o.get(*k).filter(|v| !v.is_object()).and_then(|v| text(v, depth + 1)));
            named.unwrap_or_else(|| o.values().filter_map(|i| text(i, depth + 1)).collect::<Vec<_>>().join(", "))
        }
    };
    (!t.is_empty()).then_some(t)
}

fn cut(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// `a[b][0][c]=v` pairs as a nested object (`[]` appends).
fn nest(pairs: &[(String, String)]) -> Value {
    let mut root = Value::Object(Map::new());
    for (key, value) in pairs {
        let (head, rest) = key.split_once('[').unwrap_or((key.as_str(), ""));
        let mut path = vec![head.to_string()];
        path.extend(rest.split('[').map(|p| p.trim_end_matches(']').to_string()));
        if rest.is_empty() {
            path.truncate(1);
        }
        // Deeper than anything is read: the rest stays one name, so a key of a million brackets
        // neither nests a million levels nor overflows the stack.
        if path.len() > MAX_DEPTH + 1 {
            let tail = path.split_off(MAX_DEPTH);
            path.push(tail.join("]["));
        }
        let mut node = &mut root;
        for (i, seg) in path.iter().enumerate() {
            let Value::Object(map) = node else { break };
            let seg = if seg.is_empty() { map.len().to_string() } else { seg.clone() };
            if i + 1 == path.len() {
                map.entry(seg).or_insert_with(|| Value::String(value.clone()));
                break;
            }
            node = map.entry(seg).or_insert_with(|| Value::Object(Map::new()));
        }
    }
    root
}

/// Objects whose keys are all numbers become lists, in number order.
fn arrayify(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let numeric = !map.is_empty() && map.keys().all(|k| k.parse::<usize>().is_ok());
            if numeric {
                let mut items: Vec<(usize, Value)> =
                    map.into_iter().map(|(k, v)| (k.parse().unwrap_or(0), arrayify(v))).collect();
                items.sort_by_key(|(i, _)| *i);
                Value::Array(items.into_iter().map(|(_, v)| v).collect())
            } else {
                Value::Object(map.into_iter().map(|(k, v)| (k, arrayify(v))).collect())
            }
        }
        other => other,
    }
}
