//! Small formatting helpers of the pages: durations, times, masked phone numbers, URL encoding.

use chrono::{DateTime, Utc};

use super::i18n::Lang;

/// A duration in words: "5 мин", "2 ч 5 мин", "3 дн".
pub fn duration(lang: Lang, d: chrono::Duration) -> String {
    let mins = d.num_minutes().max(0);
    let (m, h, day) = match lang {
        Lang::Ru => ("мин", "ч", "дн"),
        Lang::En => ("min", "h", "d"),
    };
    if mins < 1 {
        format!("<1 {m}")
    } else if mins < 60 {
        format!("{mins} {m}")
    } else if mins < 24 * 60 {
        format!("{} {h} {} {m}", mins / 60, mins % 60)
    } else {
        format!("{} {day}", mins / (24 * 60))
    }
}

/// A time for lists: today's as `HH:MM`, older as `DD.MM HH:MM` (UTC).
pub fn short_time(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if t.date_naive() == now.date_naive() { t.format("%H:%M").to_string() } else { t.format("%d.%m %H:%M").to_string() }
}

/// A phone number with all but its first and last two digits hidden: `+79********67`.
pub fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 5 {
        return "•••".into();
    }
    let n = digits.len();
    let hidden = "•".repeat(n - 4);
    format!("+{}{}{hidden}{}{}", digits[0], digits[1], digits[n - 2], digits[n - 1])
}

/// Whole roubles with thin groups: `91 000 ₽`.
pub fn roubles(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{a0}');
        }
        out.push(c);
    }
    format!("{}{out}\u{a0}₽", if n < 0 { "-" } else { "" })
}

/// Percent-encoding of a query value.
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A short stable fingerprint of some text (region keys of live updates).
pub fn fingerprint(parts: impl IntoIterator<Item = String>) -> String {
    // FNV-1a: not for security, only to tell whether a region changed.
    let mut h: u64 = 0xcbf29ce484222325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0)) {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_masked_but_recognisable() {
        assert_eq!(mask_phone("+7 900 123-45-67"), "+79•••••••67");
        assert_eq!(mask_phone("12"), "•••");
    }

    #[test]
    fn durations_read_as_words() {
        assert_eq!(duration(Lang::En, chrono::Duration::seconds(20)), "<1 min");
        assert_eq!(duration(Lang::Ru, chrono::Duration::minutes(125)), "2 ч 5 мин");
        assert_eq!(duration(Lang::En, chrono::Duration::days(3)), "3 d");
    }

    #[test]
    fn roubles_are_grouped() {
        assert_eq!(roubles(91_000), "91\u{a0}000\u{a0}₽");
        assert_eq!(roubles(1_234_567), "1\u{a0}234\u{a0}567\u{a0}₽");
        assert_eq!(roubles(500), "500\u{a0}₽");
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(urlencode("a b&c=д"), "a%20b%26c%3D%D0%B4");
    }
}
