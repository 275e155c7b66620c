//! Text from people: what it may contain.
//!
//! The event log stores payloads as `json`, which accepts any string; read models cast them to
//! `jsonb`, which refuses the NUL character (`\u0000`). Other control characters (escape sequences,
//! bells, form feeds) are no part of a chat message either and can rewrite a terminal or a log
//! line that shows them. So operators' text is refused when it holds one ([`check_operator`]),
//! and customers' text, which must never be lost, is stored without them ([`clean_customer`]).
//! Line breaks and tabs are text: `\r\n` and a lone `\r` become `\n`.

/// Whether `c` is a control character that text may not hold (everything in Unicode's `Cc`
/// category except line feed and tab; carriage returns are turned into line feeds first).
pub fn is_forbidden(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

/// `\r\n` and lone `\r` as `\n`.
fn normalize_line_ends(s: &str) -> String {
    if !s.contains('\r') {
        return s.to_string();
    }
    s.replace("\r\n", "\n").replace('\r', "\n")
}

/// An operator's text with its line ends normalised, or `Err(())` when it holds a control
/// character (the caller answers with a clear refusal and changes nothing).
#[expect(clippy::result_unit_err, reason = "the caller names the error in its own terms")]
pub fn check_operator(s: &str) -> Result<String, ()> {
    let s = normalize_line_ends(s);
    if s.chars().any(is_forbidden) { Err(()) } else { Ok(s) }
}

/// A customer's text without NUL and other control characters (line ends normalised). Nothing
/// else changes: the message is kept.
pub fn clean_customer(s: &str) -> String {
    let s = normalize_line_ends(s);
    if s.chars().any(is_forbidden) { s.chars().filter(|c| !is_forbidden(*c)).collect() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_are_refused_customers_are_cleaned() {
        assert_eq!(check_operator("a\r\nb\rc\td"), Ok("a\nb\nc\td".to_string()));
        for bad in ["\u{0}", "\u{1b}[2J", "\u{7f}", "\u{85}", "\u{c}"] {
            assert_eq!(check_operator(bad), Err(()), "{bad:?}");
        }
        assert_eq!(clean_customer("x\u{0}y\u{1b}z\u{9f}\r\n"), "xyz\n");
        assert_eq!(clean_customer("Привет, мир 👋\t"), "Привет, мир 👋\t");
        // Invisible but printing format characters stay (they are text in many scripts).
        assert_eq!(clean_customer("a\u{200d}b"), "a\u{200d}b");
    }
}
