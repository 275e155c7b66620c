//! Field names as forms spell them: normalisation, the roles of well-known names, and the keyword
//! matching of the extraction table.
//!
//! A name is compared after [`normalize_key`]: lower case, `ё` read as `е`, and underscores,
//! dashes, dots, brackets and other punctuation read as spaces (`Марка_авто`, `марка авто` and
//! `МАРКА-АВТО` are one name).

use std::collections::HashMap;
use std::sync::LazyLock;

/// Lower case, `ё`→`е`, punctuation → space, whitespace collapsed.
pub fn normalize_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut space = false;
    let lower = |c: char| -> char {
        if c.is_ascii() {
            c.to_ascii_lowercase()
        } else if ('А'..='Я').contains(&c) {
            char::from_u32(c as u32 + 32).unwrap_or(c)
        } else if c == 'Ё' || c == 'ё' {
            'е'
        } else {
            c.to_lowercase().next().unwrap_or(c)
        }
    };
    for c in key.chars().map(lower) {
        if c.is_ascii_alphanumeric() || (!c.is_ascii() && c.is_alphanumeric()) {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
        } else {
            space = true;
        }
    }
    out
}

/// Trims and collapses whitespace (line breaks included).
pub fn collapse(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// How a keyword matches a (normalised) question or field name. Keywords are written normalised
/// (lower case, `е` for `ё`, single spaces; a test checks the tables), so matching allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    /// Anywhere in the name, as the old system matched (`авто` matches `марка авто`).
    Sub(&'static str),
    /// As whole words (`car` matches `car model`, not `card`).
    Word(&'static str),
    /// The whole name (`engine`, not `engine volume`).
    Exact(&'static str),
}

impl Keyword {
    /// The keyword's text.
    pub fn text(self) -> &'static str {
        match self {
            Keyword::Sub(k) | Keyword::Word(k) | Keyword::Exact(k) => k,
        }
    }

    /// Whether the normalised name `key` matches.
    pub fn matches(self, key: &str) -> bool {
        let k = self.text();
        match self {
            Keyword::Sub(_) => key.contains(k),
            Keyword::Exact(_) => key == k,
            Keyword::Word(_) => key.match_indices(k).any(|(at, _)| {
                let before = key[..at].chars().next_back();
                let after = key[at + k.len()..].chars().next();
                before.is_none_or(|c| c == ' ') && after.is_none_or(|c| c == ' ')
            }),
        }
    }
}

/// What a field of a generic form is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    Name,
    FirstName,
    LastName,
    Phone,
    Email,
    Telegram,
    Max,
    Whatsapp,
    /// The messenger the customer chose.
    Messenger,
    /// The form's or quiz's name.
    FormName,
    /// Tracking and transport data (UTM tags, page, transaction ids): kept apart, never part of the
    /// answers or the duplicate fingerprint.
    Technical,
    /// Cookies, tokens, captcha answers: not kept at all.
    Dropped,
    /// Anything else: an answer.
    Answer,
}

const NAME: &[&str] = &[
    "name",
    "имя",
    "фио",
    "ф и о",
    "fio",
    "full name",
    "fullname",
    "client name",
    "clientname",
    "customer name",
    "contact name",
    "your name",
    "ваше имя",
    "имя клиента",
    "как к вам обращаться",
    "как вас зовут",
];
const FIRST_NAME: &[&str] = &["first name", "firstname", "given name"];
const LAST_NAME: &[&str] = &["last name", "lastname", "surname", "family name", "фамилия"];
const PHONE: &[&str] = &[
    "phone",
    "tel",
    "telephone",
    "mobile",
    "phone number",
    "phonenumber",
    "contact phone",
    "your phone",
    "телефон",
    "тел",
    "моб",
    "мобильный",
    "номер",
    "номер телефона",
    "ваш телефон",
    "ваш номер",
    "контактный телефон",
    "телефон клиента",
];
const EMAIL: &[&str] =
    &["email", "e mail", "mail", "почта", "емейл", "имейл", "электронная почта", "эл почта", "your email"];
const TELEGRAM: &[&str] =
    &["telegram", "telegram username", "tg", "телеграм", "телеграмм", "ник в телеграм", "ник в telegram"];
const MAX: &[&str] = &["max", "макс", "номер max", "max phone", "телефон max"];
const WHATSAPP: &[&str] = &["whatsapp", "ватсап", "вотсап", "номер whatsapp", "whatsapp phone"];
const MESSENGER: &[&str] = &[
    "messenger",
    "мессенджер",
    "preferred channel",
    "channel",
    "способ связи",
    "удобный способ связи",
    "удобный мессенджер",
    "куда написать",
    "где удобнее общаться",
];
const FORM_NAME: &[&str] = &[
    "formname",
    "form name",
    "form title",
    "form",
    "quiz",
    "quiz name",
    "quizname",
    "название формы",
    "название квиза",
];
const TECHNICAL: &[&str] = &[
    "tranid",
    "formid",
    "form id",
    "quiz id",
    "quizid",
    "lead id",
    "leadid",
    "id",
    "referer",
    "referrer",
    "href",
    "url",
    "page",
    "page url",
    "pageurl",
    "ip",
    "ip address",
    "user agent",
    "useragent",
    "created",
    "created at",
    "submitted at",
    "timestamp",
    "lang",
    "language",
    "timezone",
    "yclid",
    "gclid",
    "fbclid",
    "source",
    "utm",
    "meta",
    "metadata",
    "tracking",
    "analytics",
];
const TECHNICAL_PREFIXES: &[&str] = &["utm ", "tilda", "roistat", "ym ", "ga "];
const DROPPED: &[&str] = &[
    "cookies",
    "cookie",
    "token",
    "secret",
    "password",
    "api key",
    "apikey",
    "csrf",
    "csrf token",
    "captcha",
    "recaptcha",
    "g recaptcha response",
    "smart token",
];

/// Exact names and their roles, normalised once (a role listed earlier wins).
static ROLES: LazyLock<HashMap<String, KeyRole>> = LazyLock::new(|| {
    let lists: [(&[&str], KeyRole); 12] = [
        (DROPPED, KeyRole::Dropped),
        (TECHNICAL, KeyRole::Technical),
        (NAME, KeyRole::Name),
        (FIRST_NAME, KeyRole::FirstName),
        (LAST_NAME, KeyRole::LastName),
        (TELEGRAM, KeyRole::Telegram),
        (MAX, KeyRole::Max),
        (WHATSAPP, KeyRole::Whatsapp),
        (PHONE, KeyRole::Phone),
        (EMAIL, KeyRole::Email),
        (MESSENGER, KeyRole::Messenger),
        (FORM_NAME, KeyRole::FormName),
    ];
    let mut roles = HashMap::new();
    for (list, role) in lists {
        for name in list {
            roles.entry(normalize_key(name)).or_insert(role);
        }
    }
    roles
});

/// The role of a field named `raw` (the name as sent).
pub fn key_role(raw: &str) -> KeyRole {
    let key = normalize_key(raw);
    if raw.trim_start().starts_with('_') || key.contains("password") || key.contains("captcha") {
        return KeyRole::Dropped;
    }
    if let Some(role) = ROLES.get(&key) {
        return *role;
    }
    if TECHNICAL_PREFIXES.iter().any(|p| key.starts_with(p)) {
        KeyRole::Technical
    } else if is_phone_like(&key) {
        KeyRole::Phone
    } else if key.split(' ').any(|w| w == "email") {
        KeyRole::Email
    } else {
        KeyRole::Answer
    }
}

/// `Phone_2`, `Ваш телефон для связи`: a phone field unless it names a messenger.
fn is_phone_like(key: &str) -> bool {
    let messenger = ["max", "макс", "telegram", "телеграм", "whatsapp", "ватсап"].iter().any(|m| key.contains(m));
    (key.contains("phone") || key.contains("телефон")) && !messenger
}

/// Names whose nested objects are wrappers (`{"data": {...}}`), not one composite answer.
pub fn is_wrapper(raw: &str) -> bool {
    const WRAPPERS: &[&str] = &[
        "data",
        "fields",
        "lead",
        "contact",
        "contacts",
        "form",
        "payload",
        "body",
        "answers",
        "values",
        "params",
        "customer",
        "client",
        "user",
        "request",
        "order",
        "submission",
        "result",
        "results",
    ];
    let key = normalize_key(raw);
    WRAPPERS.contains(&key.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_compared_without_case_spacing_or_punctuation() {
        assert_eq!(normalize_key("Марка_авто"), "марка авто");
        assert_eq!(normalize_key("  МАРКА-АВТО?? "), "марка авто");
        assert_eq!(normalize_key("Объём двигателя"), "объем двигателя");
        assert_eq!(normalize_key("E-mail"), "e mail");
        assert_eq!(normalize_key("contacts[name]"), "contacts name");
        assert_eq!(collapse("  Toyota \n Camry\t2015 "), "Toyota Camry 2015");
    }

    #[test]
    fn keywords_match_as_substrings_words_or_whole_names() {
        assert!(Keyword::Sub("авто").matches("марка авто"));
        assert!(Keyword::Sub("объем").matches(&normalize_key("Объём двигателя")), "ё and е are one letter");
        assert!(Keyword::Word("car").matches("car model"));
        assert!(!Keyword::Word("car").matches("card number"));
        assert!(!Keyword::Word("car").matches("sidecar"));
        assert!(Keyword::Exact("engine").matches("engine"));
        assert!(!Keyword::Exact("engine").matches("engine volume"));
    }

    #[test]
    fn well_known_field_names_have_roles() {
        use KeyRole::*;
        for (key, role) in [
            ("Name", Name),
            ("Имя", Name),
            ("ФИО", Name),
            ("first_name", FirstName),
            ("Фамилия", LastName),
            ("Phone", Phone),
            ("Телефон", Phone),
            ("phone_2", Phone),
            ("Ваш телефон для связи", Phone),
            ("Email", Email),
            ("E-mail", Email),
            ("Почта", Email),
            ("telegram", Telegram),
            ("Телеграм", Telegram),
            ("max", Max),
            ("Номер MAX", Max),
            ("Телефон в MAX", Answer),
            ("WhatsApp", Whatsapp),
            ("messenger", Messenger),
            ("Способ связи", Messenger),
            ("formname", FormName),
            ("tranid", Technical),
            ("formid", Technical),
            ("utm_source", Technical),
            ("UTM_CAMPAIGN", Technical),
            ("COOKIES", Dropped),
            ("_ym_uid", Dropped),
            ("g-recaptcha-response", Dropped),
            ("Марка_авто", Answer),
            ("VIN", Answer),
            ("Город", Answer),
            ("Комментарий", Answer),
        ] {
            assert_eq!(key_role(key), role, "{key}");
        }
    }
}
