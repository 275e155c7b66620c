//! How prices, mileages and dates read in customer texts: Russian number formatting (thousands
//! separated by a no-break space, as `toLocaleString("ru-RU")` writes them) and Moscow time.

use chrono::{DateTime, Utc};
use chrono_tz::Europe::Moscow;

/// No-break space, the Russian thousands separator.
pub const NBSP: char = '\u{a0}';

/// `85000` → `"85 000"` (with a no-break space); numbers below 10 000 too (`"5 000"`).
pub fn format_number(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 * 2);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(NBSP);
        }
        out.push(c);
    }
    out
}

/// `at` in Moscow time as `dd.mm, HH:MM` (`"05.01, 12:07"`).
pub fn format_date_msk(at: DateTime<Utc>) -> String {
    at.with_timezone(&Moscow).format("%d.%m, %H:%M").to_string()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn numbers_use_no_break_spaces() {
        assert_eq!(format_number(0), "0");
        assert_eq!(format_number(999), "999");
        assert_eq!(format_number(5000), "5\u{a0}000");
        assert_eq!(format_number(85_000), "85\u{a0}000");
        assert_eq!(format_number(1_250_000), "1\u{a0}250\u{a0}000");
    }

    #[test]
    fn dates_are_moscow_time() {
        let at = Utc.with_ymd_and_hms(2026, 1, 5, 9, 7, 0).unwrap();
        assert_eq!(format_date_msk(at), "05.01, 12:07");
    }
}
