//! How a lead can be reached: a normalised phone number, a Telegram username, a MAX number and
//! the channel the customer chose.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A phone number in international form, stored as its digits (E.164 without `+`).
///
/// Built only by [`Phone::parse`], which reads the ways Russian customers write numbers:
/// `+7 (999) 123-45-67`, `8 999 123 45 67` (a leading 8 of an 11-digit number is the domestic
/// prefix of +7), `9991234567` (a 10-digit number without a country code is Russian), and foreign
/// numbers with `+` or `00`. `Debug` masks all but the last two digits, so a phone in a log line
/// stays private.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

/// Why a string is not a phone number. The value is not kept: it may be one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("the phone number is empty")]
    Empty,
    #[error("a phone number has 10 to 15 digits")]
    Length,
    #[error("a phone number holds digits, spaces, dashes, dots, brackets and a leading +")]
    Characters,
}

impl Phone {
    /// Normalises a phone number written in any common way.
    pub fn parse(raw: &str) -> Result<Phone, PhoneError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(PhoneError::Empty);
        }
        let body = s.strip_prefix('+').unwrap_or(s);
        if !body.chars().all(|c| c.is_ascii_digit() || " \t-–—.()/\u{a0}".contains(c)) {
            return Err(PhoneError::Characters);
        }
        let plus = s.starts_with('+');
        let mut digits: String = body.chars().filter(char::is_ascii_digit).collect();
        if !plus && digits.starts_with("00") && digits.len() >= 13 {
            // `00` is the international prefix written instead of `+`.
            digits.drain(..2);
        }
        match digits.len() {
            // A domestic 8 instead of +7 (also written as "+8 …").
            11 if digits.starts_with('8') => digits.replace_range(..1, "7"),
            // A Russian number without its country code.
            10 if !plus => digits.insert(0, '7'),
            _ => {}
        }
        // +7 numbers (Russia, Kazakhstan) have exactly 11 digits.
        let bad_seven = digits.starts_with('7') && digits.len() != 11;
        if !(10..=15).contains(&digits.len()) || digits.starts_with('0') || bad_seven {
            return Err(PhoneError::Length);
        }
        Ok(Phone(digits))
    }

    /// The digits, e.g. `79991234567`.
    pub fn digits(&self) -> &str {
        &self.0
    }

    /// `+79991234567`.
    pub fn e164(&self) -> String {
        if self.0 == crate::pii::ERASED {
            return self.0.clone();
        }
        format!("+{}", self.0)
    }

    /// The GREEN-API chat id of the number: `79991234567@c.us`.
    pub fn green_api_chat_id(&self) -> String {
        format!("{}@c.us", self.0)
    }

    /// All digits but the last two masked (`+*********67`), for logs.
    pub fn masked(&self) -> String {
        let keep = &self.0[self.0.len() - 2..];
        format!("+{}{keep}", "*".repeat(self.0.len() - 2))
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Phone").field(&self.masked()).finish()
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{}", self.0)
    }
}

impl TryFrom<String> for Phone {
    type Error = PhoneError;

    /// Reads a stored number; a number whose customer was erased reads as `[erased]`.
    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value == crate::pii::ERASED {
            return Ok(Phone(value));
        }
        Phone::parse(&value)
    }
}

impl From<Phone> for String {
    fn from(p: Phone) -> String {
        p.0
    }
}

/// Whether a value typed into a messenger-username field is really a phone number: a `+` or a
/// digit, then at least six more digits, spaces, dashes or brackets (as the old system checked).
pub fn looks_like_phone(raw: &str) -> bool {
    let s = raw.trim();
    let mut chars = s.chars();
    let Some(first) = chars.next() else { return false };
    (first == '+' || first.is_ascii_digit())
        && s.chars().count() >= 7
        && chars.all(|c| c.is_ascii_digit() || c.is_whitespace() || "-()".contains(c))
}

/// A Telegram username without `@`: 5 to 32 Latin letters, digits and underscores, starting with
/// a letter and not ending with an underscore. Telegram compares usernames without case; the
/// spelling the customer typed is kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TelegramUsername(String);

/// Why a value is not a Telegram username.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TelegramUsernameError {
    #[error("the Telegram username is empty")]
    Empty,
    #[error("a phone number was typed instead of a Telegram username")]
    LooksLikePhone,
    #[error("a Telegram username has at least 5 characters")]
    TooShort,
    #[error("a Telegram username has at most 32 characters")]
    TooLong,
    #[error("a Telegram username holds Latin letters, digits and underscores and starts with a letter")]
    Characters,
}

impl TelegramUsername {
    /// Reads a username as customers type it: `@ivan_petrov`, `ivan_petrov`, `t.me/ivan_petrov`
    /// or `https://t.me/ivan_petrov`. A phone number typed there is refused.
    pub fn parse(raw: &str) -> Result<TelegramUsername, TelegramUsernameError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(TelegramUsernameError::Empty);
        }
        if looks_like_phone(s) {
            return Err(TelegramUsernameError::LooksLikePhone);
        }
        let mut name = s;
        for prefix in ["https://", "http://"] {
            if let Some(rest) = name.strip_prefix(prefix) {
                name = rest;
            }
        }
        for prefix in ["www.", "t.me/", "telegram.me/"] {
            if let Some(rest) = name.strip_prefix(prefix) {
                name = rest;
            }
        }
        let name = name.trim_end_matches('/').trim_start_matches('@').trim();
        let chars = name.chars().count();
        if chars == 0 {
            return Err(TelegramUsernameError::Empty);
        }
        if chars < 5 {
            return Err(TelegramUsernameError::TooShort);
        }
        if chars > 32 {
            return Err(TelegramUsernameError::TooLong);
        }
        let valid = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && name.starts_with(|c: char| c.is_ascii_alphabetic())
            && !name.ends_with('_');
        if !valid {
            return Err(TelegramUsernameError::Characters);
        }
        Ok(TelegramUsername(name.to_string()))
    }

    /// The username without `@`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `@username`.
    pub fn handle(&self) -> String {
        format!("@{}", self.0)
    }
}

impl fmt::Display for TelegramUsername {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}", self.0)
    }
}

impl TryFrom<String> for TelegramUsername {
    type Error = TelegramUsernameError;

    /// Reads a stored username; one whose customer was erased reads as `[erased]`.
    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value == crate::pii::ERASED {
            return Ok(TelegramUsername(value));
        }
        TelegramUsername::parse(&value)
    }
}

impl From<TelegramUsername> for String {
    fn from(u: TelegramUsername) -> String {
        u.0
    }
}

/// The messenger a customer chose on the form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PreferredChannel {
    Telegram,
    /// MAX (through GREEN-API).
    Max,
    /// WhatsApp (through GREEN-API, else WhatsApp Cloud).
    Whatsapp,
}

impl PreferredChannel {
    pub const ALL: [PreferredChannel; 3] = [Self::Telegram, Self::Max, Self::Whatsapp];

    /// `telegram`, `max` or `whatsapp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Telegram => "telegram",
            Self::Max => "max",
            Self::Whatsapp => "whatsapp",
        }
    }

    /// Reads what forms send for a messenger choice: `telegram`, `tg`, `Телеграм`, `max`, `МАКС`,
    /// `whatsapp`, `WA`, `Ватсап`, … (any case, surrounding words allowed: "Написать в Telegram").
    pub fn parse_loose(raw: &str) -> Option<Self> {
        let s = raw.trim().to_lowercase();
        let words: Vec<&str> = s.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
        let any = |names: &[&str]| words.iter().any(|w| names.contains(w));
        if s.contains("telegram") || s.contains("телеграм") || any(&["tg", "тг", "телега"]) {
            Some(Self::Telegram)
        } else if s.contains("whatsapp") || any(&["wa", "ватсап", "вотсап", "вацап", "whats"]) {
            Some(Self::Whatsapp)
        } else if any(&["max", "макс", "мах"]) {
            Some(Self::Max)
        } else {
            None
        }
    }

    /// How the escalation bot names it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Telegram => "Telegram",
            Self::Max => "MAX",
            Self::Whatsapp => "WhatsApp",
        }
    }
}

impl fmt::Display for PreferredChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every way a lead can be reached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactInfo {
    pub phone: Option<Phone>,
    /// The number for MAX when the form asked for one (else the phone is used).
    pub max_phone: Option<Phone>,
    pub telegram: Option<TelegramUsername>,
}

impl ContactInfo {
    /// The number to write to through GREEN-API (MAX/WhatsApp).
    pub fn green_api_phone(&self) -> Option<&Phone> {
        self.max_phone.as_ref().or(self.phone.as_ref())
    }

    /// Whether any messenger can be tried.
    pub fn is_reachable(&self) -> bool {
        self.phone.is_some() || self.max_phone.is_some() || self.telegram.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_normalised_from_every_common_spelling() {
        let ok = |raw: &str| Phone::parse(raw).map(|p| p.digits().to_string());
        for raw in [
            "+7 (999) 123-45-67",
            "8 999 123 45 67",
            "89991234567",
            "9991234567",
            "+79991234567",
            "7-999-123-45-67",
            "8(999)123-45-67",
            " +7 999 123 45 67 ",
            "+8 999 123-45-67",
            "8.999.123.45.67",
        ] {
            assert_eq!(ok(raw).as_deref(), Ok("79991234567"), "{raw}");
        }
        assert_eq!(ok("+380 50 123 4567").as_deref(), Ok("380501234567"));
        assert_eq!(ok("00 380 50 123 4567").as_deref(), Ok("380501234567"));
        assert_eq!(ok("4951234567").as_deref(), Ok("74951234567"), "a 10-digit landline is Russian too");
        assert_eq!(ok(""), Err(PhoneError::Empty));
        assert_eq!(ok("12345"), Err(PhoneError::Length));
        assert_eq!(ok("1234567890123456"), Err(PhoneError::Length));
        assert_eq!(ok("+7 999 123 45 6"), Err(PhoneError::Length), "a +7 number missing a digit");
        assert_eq!(ok("ivan_petrov"), Err(PhoneError::Characters));
        assert_eq!(ok("+7 999 123 45 67 доб. 5"), Err(PhoneError::Characters));
    }

    #[test]
    fn phone_forms_and_privacy() {
        let p = Phone::parse("8 (999) 123-45-67").unwrap();
        assert_eq!(p.e164(), "+79991234567");
        assert_eq!(p.to_string(), "+79991234567");
        assert_eq!(p.green_api_chat_id(), "79991234567@c.us");
        assert_eq!(p.masked(), "+*********67");
        assert!(!format!("{p:?}").contains("999123"), "Debug masks the number");
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, "\"79991234567\"");
        assert_eq!(serde_json::from_str::<Phone>(&json).unwrap(), p);
        assert!(serde_json::from_str::<Phone>("\"123\"").is_err());
    }

    #[test]
    fn telegram_usernames_follow_telegrams_rules() {
        let ok = |raw: &str| TelegramUsername::parse(raw).map(|u| u.as_str().to_string());
        assert_eq!(ok("@ivan_petrov").as_deref(), Ok("ivan_petrov"));
        assert_eq!(ok("  Ivan_Petrov ").as_deref(), Ok("Ivan_Petrov"));
        assert_eq!(ok("https://t.me/ivan_petrov").as_deref(), Ok("ivan_petrov"));
        assert_eq!(ok("t.me/ivan_petrov/").as_deref(), Ok("ivan_petrov"));
        assert_eq!(ok("@ivan"), Err(TelegramUsernameError::TooShort), "cleaned length below 5");
        assert_eq!(ok("@"), Err(TelegramUsernameError::Empty));
        assert_eq!(ok("+7 999 123-45-67"), Err(TelegramUsernameError::LooksLikePhone));
        assert_eq!(ok("89991234567"), Err(TelegramUsernameError::LooksLikePhone));
        assert_eq!(
            ok("(999) 123-45-67"),
            Err(TelegramUsernameError::Characters),
            "not a phone by the rule, not a name"
        );
        assert_eq!(ok("иван_петров"), Err(TelegramUsernameError::Characters));
        assert_eq!(ok("1ivan_petrov"), Err(TelegramUsernameError::Characters));
        assert_eq!(ok("ivan_petrov_"), Err(TelegramUsernameError::Characters));
        assert_eq!(ok("ivan petrov"), Err(TelegramUsernameError::Characters));
        assert_eq!(ok(&"a".repeat(33)), Err(TelegramUsernameError::TooLong));
        assert_eq!(TelegramUsername::parse("@ivan_petrov").unwrap().handle(), "@ivan_petrov");
    }

    #[test]
    fn the_phone_shape_rule_is_the_old_one() {
        assert!(looks_like_phone("+7 999 1234567"));
        assert!(looks_like_phone("1234567"));
        assert!(looks_like_phone("8 (999) 123-45-67"));
        assert!(!looks_like_phone("123456"), "six characters are too few");
        assert!(!looks_like_phone("ivan1234567"));
        assert!(!looks_like_phone(""));
    }

    #[test]
    fn preferred_channels_are_read_loosely() {
        use PreferredChannel::*;
        for (raw, want) in [
            ("telegram", Some(Telegram)),
            ("Telegram", Some(Telegram)),
            ("TG", Some(Telegram)),
            ("Телеграм", Some(Telegram)),
            ("Написать в Telegram", Some(Telegram)),
            ("max", Some(Max)),
            ("MAX", Some(Max)),
            ("Макс", Some(Max)),
            ("WhatsApp", Some(Whatsapp)),
            ("Ватсап", Some(Whatsapp)),
            ("wa", Some(Whatsapp)),
            ("Позвонить", None),
            ("maximum", None),
            ("", None),
        ] {
            assert_eq!(PreferredChannel::parse_loose(raw), want, "{raw}");
        }
    }

    #[test]
    fn green_api_uses_the_max_number_first() {
        let phone = Phone::parse("+79990000001").ok();
        let max = Phone::parse("+79990000002").ok();
        let c = ContactInfo { phone: phone.clone(), max_phone: max.clone(), telegram: None };
        assert_eq!(c.green_api_phone(), max.as_ref());
        let c = ContactInfo { phone: phone.clone(), ..Default::default() };
        assert_eq!(c.green_api_phone(), phone.as_ref());
        assert!(c.is_reachable());
        assert!(!ContactInfo::default().is_reachable());
    }
}
