//! Masking of secrets and customer phone numbers in everything the program logs.
//!
//! Every log line goes through [`redact`] before it is written, so a token or a phone number that
//! slips into a message or a field is still not printed in clear.

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::LazyLock;

use regex::{Captures, Regex};
use tracing_subscriber::fmt::MakeWriter;

struct Rule {
    re: Regex,
    replace: fn(&Captures<'_>) -> String,
}

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    let rule =
        |re: &str, replace: fn(&Captures<'_>) -> String| Rule { re: Regex::new(re).expect("valid regex"), replace };
    vec![
        // Authorization headers and bearer tokens.
        rule(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{6,}", |c| format!("{} [redacted]", &c[1])),
        // Our API tokens (prefix aisk_) wherever they appear.
        rule(r"\baisk_[A-Za-z0-9]{8,}", |_| "aisk_[redacted]".into()),
        // Telegram bot tokens: <bot id>:<secret>.
        // `bot` glued in front in Bot API URLs (`/bot123456:AA…/sendMessage`), where `\b` does not match.
        rule(r"(\bbot|\b)\d{6,12}:[A-Za-z0-9_\-]{30,}", |c| format!("{}[redacted-bot-token]", &c[1])),
        // GREEN-API token in a request path: /waInstance<id>/<method>/<token>.
        rule(r"(/waInstance\d+/[A-Za-z]+/)[A-Za-z0-9]{16,}", |c| format!("{}[redacted]", &c[1])),
        // key=value or "key":"value" pairs whose key names a secret.
        rule(
            // Quotes may come escaped (`\"key\":\"value\"`) when the pair sits inside a JSON log line.
            r#"(?i)((?:\\?")?(?:password|passwd|secret|token|api[_-]?key|apitokeninstance|access[_-]?token|authorization|cookie|set-cookie|session)[A-Za-z_]*(?:\\?")?\s*[:=]\s*(?:\\?")?)([^"\\&,;\s}]{3,})"#,
            |c| format!("{}[redacted]", &c[1]),
        ),
        // Session cookies.
        rule(r"(aisales_session=)[^;,\s]+", |c| format!("{}[redacted]", &c[1])),
    ]
});

/// Phone-like digit runs: optional +, digits with spaces, dashes or parentheses between them.
static PHONE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\+?\(?\d[\d\s\-()]{7,}\d").expect("valid regex"));

/// Masks a phone number, keeping its last two digits: `+7******67`.
pub fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    if digits.len() <= 4 {
        return "*".repeat(digits.len());
    }
    let keep: String = digits[digits.len() - 2..].iter().collect();
    let plus = if phone.trim_start().starts_with('+') { "+" } else { "" };
    format!("{plus}{}{keep}", "*".repeat(digits.len() - 2))
}

fn mask_phones(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    PHONE.replace_all(text, |c: &Captures<'_>| {
        let m = c.get(0).expect("whole match");
        let before = m.start().checked_sub(1).map(|i| bytes[i]);
        let after = bytes.get(m.end()).copied();
        let glued = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        let digits = m.as_str().bytes().filter(u8::is_ascii_digit).count();
        let s = m.as_str();
        // Not glued to identifiers (uuids, hashes, decimals), and shaped like a phone number.
        if glued(before) || glued(after) || !(10..=15).contains(&digits) || looks_like_timestamp(s) {
            s.to_string()
        } else {
            let trimmed = s.trim_end();
            let tail = &s[trimmed.len()..];
            format!("{}{tail}", mask_phone(trimmed))
        }
    })
}

fn looks_like_timestamp(s: &str) -> bool {
    // 2026-11-27 12:00 style dates: four digits, dash, two digits, dash.
    let b = s.as_bytes();
    b.len() >= 10 && b[4] == b'-' && b[7] == b'-' && b[..4].iter().all(u8::is_ascii_digit)
}

/// Returns `text` with secrets and phone numbers masked.
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut out: Cow<'_, str> = Cow::Borrowed(text);
    for rule in RULES.iter() {
        if rule.re.is_match(&out) {
            out = Cow::Owned(rule.re.replace_all(&out, |c: &Captures<'_>| (rule.replace)(c)).into_owned());
        }
    }
    match mask_phones(&out) {
        Cow::Borrowed(_) => out,
        Cow::Owned(s) => Cow::Owned(s),
    }
}

/// A `MakeWriter` that masks every formatted log line before writing it to the inner sink.
#[derive(Clone)]
pub struct RedactingWriter {
    sink: Sink,
}

#[derive(Clone)]
enum Sink {
    Stdout,
    Stderr,
    Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>),
}

impl RedactingWriter {
    pub fn stdout() -> Self {
        RedactingWriter { sink: Sink::Stdout }
    }

    /// Standard error: one-shot commands keep standard output for their result.
    pub fn stderr() -> Self {
        RedactingWriter { sink: Sink::Stderr }
    }

    /// Writes into a shared buffer (tests capture logs with it).
    pub fn buffer(buf: std::sync::Arc<std::sync::Mutex<Vec<u8>>>) -> Self {
        RedactingWriter { sink: Sink::Buffer(buf) }
    }
}

/// One log line being written.
pub struct LineWriter {
    sink: Sink,
}

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let clean = redact(&text);
        match &self.sink {
            Sink::Stdout => io::stdout().lock().write_all(clean.as_bytes())?,
            Sink::Stderr => io::stderr().lock().write_all(clean.as_bytes())?,
            Sink::Buffer(b) => b.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(clean.as_bytes()),
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match &self.sink {
            Sink::Stdout => io::stdout().flush(),
            Sink::Stderr => io::stderr().flush(),
            Sink::Buffer(_) => Ok(()),
        }
    }
}

impl<'a> MakeWriter<'a> for RedactingWriter {
    type Writer = LineWriter;
    fn make_writer(&'a self) -> Self::Writer {
        LineWriter { sink: self.sink.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_masked() {
        assert_eq!(redact("from +7 (900) 123-45-67 now"), "from +*********67 now");
        assert_eq!(redact(r#"{"chat_id":"79001234567@c.us"}"#), r#"{"chat_id":"*********67@c.us"}"#);
        assert_eq!(redact("phone=89161234567"), "phone=*********67");
    }

    #[test]
    fn identifiers_and_dates_are_kept() {
        let s = "id 550e8400-e29b-41d4-a716-446655440000 at 2026-11-27 12:00:01 took 12ms pos 1234.5678";
        assert_eq!(redact(s), s);
        let vin = "VIN WVWZZZ1JZXW000001";
        assert_eq!(redact(vin), vin);
    }

    #[test]
    fn secrets_are_masked() {
        let line = r#"Authorization: Bearer aisk_abcdefgh12345678 token=abc123secret "password":"hunter22" 123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"#;
        let out = redact(line);
        assert!(!out.contains("abcdefgh12345678"), "{out}");
        assert!(!out.contains("abc123secret"), "{out}");
        assert!(!out.contains("hunter22"), "{out}");
        assert!(!out.contains("AAHdqTcvCH1vGWJx"), "{out}");
        let url = "POST https://api.green-api.com/waInstance1101000001/sendMessage/d75b3a66374942c5b3c019c698abc2067e151558acbd412345";
        assert!(!redact(url).contains("d75b3a66374942c5"), "{}", redact(url));
        assert!(!redact("cookie aisales_session=xyz.abc").contains("xyz.abc"));
    }

    #[test]
    fn bot_tokens_in_bot_api_urls_are_masked() {
        let url = "POST https://api.telegram.org/bot7000000001:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0/sendMessage";
        let out = redact(url);
        assert!(!out.contains("AAHdqTcvCH1vGWJx"), "{out}");
        assert!(out.contains("/bot[redacted-bot-token]/sendMessage"), "{out}");
    }

    #[test]
    fn secret_pairs_inside_json_log_lines_are_masked() {
        // What a JSON log line holds when a message quoted a pair: the quotes are escaped.
        let line = r#"{"fields":{"message":"body {\"password\":\"hunter22\",\"api_token\":\"d75b3a66\"}"}}"#;
        let out = redact(line);
        assert!(!out.contains("hunter22"), "{out}");
        assert!(!out.contains("d75b3a66"), "{out}");
    }
}
