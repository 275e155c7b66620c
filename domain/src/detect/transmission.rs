//! Transmission (gearbox) codes: `JF011E`, `A245E`, `U660E`, `6HP19`, `09G`, `RE4F04A-B41`, …
//!
//! A token is judged by its shape (alternating letter and digit groups), by a table of known code
//! families, and by a table of look-alikes that are not gearbox codes (car models, engine codes,
//! gear-count labels, units, tyre sizes, number plates). The surrounding words decide the rest.

use super::keywords::{GEARBOX_CONTEXT, MONEY_MARKER};
use super::normalize::{Cell, FOREIGN_ALNUM, IdWord, Scanned};
use super::{Candidate, CandidateKind, round_score};
use crate::detect::gearbox_type::label_type;

/// Characters either side of a code searched for gearbox words.
const CONTEXT_RADIUS: usize = 50;
/// Characters either side of a code searched for money words.
const MONEY_RADIUS: usize = 20;
/// Longest code core (without the dash suffix).
const MAX_CORE: usize = 10;
/// Longest dash suffix (`-B41`, `-02A`, `-EL`).
const MAX_SUFFIX: usize = 5;

/// How much a token looks like a gearbox code by shape alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strength {
    /// At least three alternating letter/digit groups and four characters (`A245E`, `6HP19`).
    Strong,
    /// Two groups (`09G`, `DP0`) or a three-character `digit-letter-digit` (`0B5`).
    Weak,
}

/// A code family: name used in reasons, and fixed-length patterns. In a pattern `#` is a digit,
/// `@` a letter, `[..]` one of the listed characters, anything else itself.
const FAMILIES: &[(&str, &[&str])] = &[
    ("aisin", &["A###[EFHL]", "A@##[EFHL]", "U###[EFH]", "K###", "AW##-##@@", "TF-##@@", "AF##", "AF##-#"]),
    ("jatco", &["JF###@", "JR###@", "RE#@##@"]),
    ("zf", &["#HP##", "#HP##@", "GA#HP##@"]),
    ("gm", &["#L##", "#L##@", "#T##", "#T##@"]),
    ("ford", &["#F##", "#F##@", "#R##", "#R##@", "CD4E", "AX4N", "AX4S", "A4LD", "DPS6", "MPS6", "#DCT###"]),
    ("chrysler", &["##RFE", "###RFE", "##RLE", "##TE", "##LE"]),
    ("hyundai_kia", &["A#@@#", "D#@@#", "M#@@#"]),
    ("mitsubishi", &["F#A##", "W#A##", "F#C#@", "W#C#@", "F#M##"]),
    ("vag", &["DQ###", "DL###", "0@@", "0#@", "0@#", "VL###"]),
    (
        "renault_psa",
        &[
            "AL4", "AM6", "AT6", "AT8", "DP0", "DP2", "DP4", "DP8", "EAT#", "JH3", "JR5", "TL4", "ND4", "PK6", "BE4",
            "MA5",
        ],
    ),
    ("mercedes", &["722.#", "NAG#", "W#A###"]),
    ("subaru", &["TR###", "#EAT"]),
    ("mazda", &["FN4A", "FS5A", "FW6A", "AW6A", "FNR5"]),
];

/// Car models, engine codes and other tokens shaped like gearbox codes.
const NOT_CODES: &[&str] = &[
    // Car models with two to four letters and one or two digits.
    "RAV4", "CX3", "CX5", "CX7", "CX9", "CX30", "CX50", "CX60", "CX90", "MX5", "RX7", "RX8", "SX4", "IX35", "IX55",
    "XC40", "XC60", "XC70", "XC90", "DS3", "DS4", "DS5", "DS7", "DS9", "QX4", "QX50", "QX56", "QX60", "QX70", "QX80",
    "FX35", "FX37", "FX45", "FX50", "EX35", "EX37", "JX35", "RS3", "RS4", "RS5", "RS6", "RS7", "SQ5", "SQ7", "SQ8",
    "GT86", "BT50", "XT5", "XT6", "CT6", "CS35", "CS55", "CS75", "CS85", "CS95", "GS3", "GS4", "GS5", "GS8", "MG5",
    "MG6", "HS5", "HS7", "UX5", "TT8", // Wheel formulas.
    "4X4", "4X2", "6X4", "6X6", "8X8",
];

/// Patterns of look-alikes that are not gearbox codes (same syntax as [`FAMILIES`]).
const NOT_CODE_PATTERNS: &[&str] = &[
    // Russian number plates: А123ВС77, А123ВС777.
    "[ABEKMHOPCTYX]###[ABEKMHOPCTYX][ABEKMHOPCTYX]##",
    "[ABEKMHOPCTYX]###[ABEKMHOPCTYX][ABEKMHOPCTYX]###",
    // Tyre sizes: 55R16, 195R15.
    "##R##",
    "###R##",
    // Hyundai/Kia engines: G4KD, D4CB, G6DA.
    "[GDL][3-6]@@",
    // Mitsubishi engines: 4G63, 4B11, 6G72.
    "[46][ABDGJMN]##",
    // BMW engines: N52B30, M54B25, B48A20.
    "[BMNS]##@##",
    "[BMNS]##@##@",
    // Honda engines: K24A, F23A, R18A2.
    "[BDFHJKLR]##@",
    "[BDFHJKLR]##@#",
];

/// First two letters of Nissan, Subaru and Toyota-JZ style engine codes (`QR25DE`, `EJ255`, `VQ35HR`).
const ENGINE_PREFIXES: &[&[u8; 2]] = &[
    b"QR", b"MR", b"HR", b"VQ", b"SR", b"RB", b"KA", b"CR", b"QG", b"YD", b"VK", b"ZD", b"TD", b"GA", b"CG", b"EJ",
    b"EZ", b"FB", b"FA",
];

/// Mercedes, Lexus and Infiniti model names written as one token (`E220CDI`, `RX350H`, `FX35S`).
const MODEL_LETTERS_3_DIGITS: &[&[u8]] = &[
    b"C", b"E", b"S", b"G", b"A", b"B", b"CL", b"CLA", b"CLC", b"CLK", b"CLS", b"GL", b"GLA", b"GLB", b"GLC", b"GLE",
    b"GLK", b"GLS", b"ML", b"SL", b"SLC", b"SLK", b"RX", b"GX", b"LX", b"ES", b"IS", b"GS", b"LS", b"NX", b"UX", b"HS",
    b"CT", b"RC", b"LC", b"TX",
];
const MODEL_SUFFIXES: &[&[u8]] = &[b"", b"D", b"CDI", b"K", b"T", b"I", b"H", b"TD", b"HYBRID"];
const MODEL_LETTERS_2_DIGITS: &[&[u8]] = &[b"FX", b"QX", b"EX", b"JX", b"G", b"M", b"Q"];

/// Units written after a two-digit number (`16V`, `60AH`, `10AM`).
const UNITS: &[&[u8]] =
    &[b"V", b"A", b"AH", b"AM", b"PM", b"KW", b"HP", b"KG", b"MM", b"CM", b"L", b"KM", b"GB", b"MB", b"W", b"S", b"X"];

/// Looks for a transmission code in `word` and keeps it in `best` if it beats what is there.
pub(crate) fn collect(scan: &Scanned, word: &IdWord, best: &mut Option<Candidate>) {
    if let Some(candidate) = evaluate(scan, word) {
        let better = best.as_ref().is_none_or(|current| candidate.score > current.score);
        if better {
            *best = Some(candidate);
        }
    }
}

fn evaluate(scan: &Scanned, word: &IdWord) -> Option<Candidate> {
    let parts = word.parts();
    if word.count > 2 {
        // Three or more dash-joined parts are part numbers (`FWLB-03-000`), not codes.
        return None;
    }
    let (start, end) = (word.start(), word.end());
    let before = scan.before(start);
    let after = scan.at(end);
    // Glued to a Russian word: "фокус3" reads as "фOKYC3" and must not give "OKYC3" or "3".
    let glued = |c: Cell| c.byte == FOREIGN_ALNUM || c.is_lowercase_cyrillic();
    if glued(before) || glued(after) {
        return None;
    }
    // Continuation of a number: "1.6T", "2,0TDI", "205/55R16".
    if matches!(before.byte, b'.' | b',' | b'/') && scan.before(start - 1).byte.is_ascii_digit() {
        return None;
    }
    // Lowercase Cyrillic letters inside the token belong to a Russian word ("25т", "от25т").
    if scan.cells[start..end].iter().any(|c| c.is_lowercase_cyrillic()) {
        return None;
    }

    let mut value = [0u8; MAX_CORE + 1 + MAX_SUFFIX];
    let core_range = parts[0];
    let core_len = core_range.1 - core_range.0;
    if !(2..=MAX_CORE).contains(&core_len) {
        return None;
    }
    for (slot, cell) in value.iter_mut().zip(&scan.cells[core_range.0..core_range.1]) {
        *slot = cell.byte;
    }
    let core = &value[..core_len];

    // Mercedes 722.x: the only code family written with a dot.
    if parts.len() == 1 && core == b"722" && after.byte == b'.' {
        let minor = scan.at(end + 1);
        if minor.byte.is_ascii_digit() && !scan.at(end + 2).is_id() {
            let text = format!("722.{}", char::from(minor.byte));
            return Some(score(scan, start, end + 2, text, Strength::Strong, Some("mercedes")));
        }
    }
    if matches!(after.byte, b'.' | b',') && scan.at(end + 1).is_id() {
        return None;
    }
    if core.iter().all(u8::is_ascii_digit) {
        // Pure numbers, and part numbers such as 31020-3VX2D or 90919-01253.
        return None;
    }

    let mut len = core_len;
    if let [_, suffix] = parts {
        let suffix_len = suffix.1 - suffix.0;
        let suffix_digits = scan.cells[suffix.0..suffix.1].iter().all(|c| c.byte.is_ascii_digit());
        if suffix_len > MAX_SUFFIX || (suffix_digits && suffix_len >= 4) {
            // A FRAME (`NZE141-6012345`) or another numbered thing.
            return None;
        }
        value[len] = b'-';
        for (slot, cell) in value[len + 1..].iter_mut().zip(&scan.cells[suffix.0..suffix.1]) {
            *slot = cell.byte;
        }
        len += 1 + suffix_len;
    }
    let full = &value[..len];
    let core = &value[..core_len];
    if !full.iter().any(u8::is_ascii_digit) {
        // Words; every code has digits.
        return None;
    }

    let family = family_of(full).or_else(|| family_of(core));
    // Shape of the whole code without its dash for families written with one (`TF-80SC`).
    let mut joined = [0u8; MAX_CORE + MAX_SUFFIX];
    let mut joined_len = 0;
    for &b in full.iter().filter(|&&b| b != b'-') {
        joined[joined_len] = b;
        joined_len += 1;
    }
    let strength = match (family, shape_strength(core)) {
        (Some(_), core_shape) => {
            let strong = Some(Strength::Strong);
            if core_shape == strong || shape_strength(&joined[..joined_len]) == strong {
                Strength::Strong
            } else {
                Strength::Weak
            }
        }
        (None, None) => return None,
        (None, Some(shape)) => {
            if is_not_code(core) {
                return None;
            }
            shape
        }
    };
    if family.is_none() && scan.has_context(start, end, MONEY_RADIUS, MONEY_MARKER) {
        // "30т.р. за коробку", "От 25 т.р.": prices, not codes.
        return None;
    }
    let text = String::from_utf8_lossy(full).into_owned();
    Some(score(scan, start, end, text, strength, family))
}

fn score(
    scan: &Scanned,
    start: usize,
    end: usize,
    value: String,
    strength: Strength,
    family: Option<&str>,
) -> Candidate {
    let context = scan.context(start, end, CONTEXT_RADIUS, GEARBOX_CONTEXT, 3);
    let has_context = !context.is_empty();
    let score = match (strength, family.is_some(), has_context) {
        (Strength::Strong, true, true) => 0.85,
        (Strength::Strong, true, false) => 0.75,
        (Strength::Strong, false, true) => 0.70,
        (Strength::Strong, false, false) => 0.60,
        (Strength::Weak, true, true) => 0.75,
        (Strength::Weak, true, false) | (Strength::Weak, false, true) => 0.55,
        (Strength::Weak, false, false) => 0.20,
    };
    let mut reasons = Vec::with_capacity(3);
    reasons.push(
        match strength {
            Strength::Strong => "strength:strong",
            Strength::Weak => "strength:weak",
        }
        .to_owned(),
    );
    if let Some(family) = family {
        reasons.push(format!("known_family:{family}"));
    }
    if has_context {
        reasons.push(format!("context:{}", context.join(",")));
    } else {
        reasons.push("no_gearbox_context".to_owned());
    }
    Candidate::new(CandidateKind::TransmissionCode, value, round_score(score), reasons)
}

/// Strength by shape alone; `None` when the token cannot be a code.
fn shape_strength(token: &[u8]) -> Option<Strength> {
    let mut groups = [(false, 0u8); 8];
    let mut count = 0;
    let (mut letters, mut digits) = (0, 0);
    for &b in token {
        let is_digit = b.is_ascii_digit();
        if is_digit {
            digits += 1;
        } else {
            letters += 1;
        }
        if count > 0 && groups[count - 1].0 == is_digit {
            groups[count - 1].1 += 1;
        } else {
            if count == groups.len() {
                return None;
            }
            groups[count] = (is_digit, 1);
            count += 1;
        }
    }
    if letters == 0 || digits == 0 || token.len() > MAX_CORE {
        return None;
    }
    if groups[..count].iter().any(|&(is_digit, len)| is_digit && len > 4) {
        return None;
    }
    match (count, token.len()) {
        (3.., 4..) => Some(Strength::Strong),
        (2, _) => {
            let (first_is_digit, first_len) = groups[0];
            let second_len = groups[1].1;
            let weak = if first_is_digit {
                (1..=2).contains(&first_len) && (1..=3).contains(&second_len)
            } else {
                (2..=4).contains(&first_len) && (1..=2).contains(&second_len)
            };
            weak.then_some(Strength::Weak)
        }
        (3, 3) if groups[0].0 => Some(Strength::Weak),
        _ => None,
    }
}

/// The known gearbox family of a whole code (`JF011E` → `jatco`, `AW55-51SN` → `aisin`), read
/// upper case without spaces.
pub(crate) fn known_family(code: &str) -> Option<&'static str> {
    let token: Vec<u8> = code.bytes().filter(|b| !b.is_ascii_whitespace()).map(|b| b.to_ascii_uppercase()).collect();
    family_of(&token)
}

fn family_of(token: &[u8]) -> Option<&'static str> {
    FAMILIES.iter().find(|(_, patterns)| patterns.iter().any(|p| matches_pattern(p.as_bytes(), token))).map(|f| f.0)
}

fn is_not_code(token: &[u8]) -> bool {
    if label_type(token).is_some() || NOT_CODES.iter().any(|m| m.as_bytes() == token) {
        return true;
    }
    if NOT_CODE_PATTERNS.iter().any(|p| matches_pattern(p.as_bytes(), token)) {
        return true;
    }
    let letters = token.iter().take_while(|b| b.is_ascii_uppercase()).count();
    let digits = token[letters..].iter().take_while(|b| b.is_ascii_digit()).count();
    let (head, number, tail) = (&token[..letters], digits, &token[letters + digits..]);
    // Toyota engines and labels: 1NZ, 2AZ, 3S, 4WD, 2WD.
    if letters == 0 {
        let lead = token.iter().take_while(|b| b.is_ascii_digit()).count();
        let rest = &token[lead..];
        let all_letters = rest.iter().all(u8::is_ascii_uppercase);
        if lead == 1 && token[0] != b'0' && all_letters && rest.len() <= 3 {
            return true;
        }
        // Units after a number: 16V, 60AH, 10AM.
        return lead == 2 && all_letters && UNITS.contains(&rest);
    }
    // Engine codes: QR25DE, EJ255, VQ35HR.
    if letters == 2 && number == 2 && ENGINE_PREFIXES.iter().any(|p| p.as_slice() == head) {
        return true;
    }
    // Model names: E220CDI, GLE350D, RX350H, FX35S.
    let model3 = number == 3 && MODEL_LETTERS_3_DIGITS.contains(&head) && MODEL_SUFFIXES.contains(&tail);
    let model2 = number == 2 && MODEL_LETTERS_2_DIGITS.contains(&head) && tail.len() <= 1;
    model3 || model2
}

/// Fixed-length pattern match; see [`FAMILIES`] for the syntax.
fn matches_pattern(pattern: &[u8], token: &[u8]) -> bool {
    let mut p = 0;
    let mut t = 0;
    while p < pattern.len() {
        let Some(&b) = token.get(t) else { return false };
        let ok = match pattern[p] {
            b'#' => b.is_ascii_digit(),
            b'@' => b.is_ascii_uppercase(),
            b'[' => {
                let Some(close) = pattern[p..].iter().position(|&c| c == b']') else { return false };
                let class = &pattern[p + 1..p + close];
                p += close;
                class_contains(class, b)
            }
            literal => literal == b,
        };
        if !ok {
            return false;
        }
        p += 1;
        t += 1;
    }
    t == token.len()
}

fn class_contains(class: &[u8], b: u8) -> bool {
    let mut i = 0;
    while i < class.len() {
        if i + 2 < class.len() && class[i + 1] == b'-' {
            if (class[i]..=class[i + 2]).contains(&b) {
                return true;
            }
            i += 3;
        } else {
            if class[i] == b {
                return true;
            }
            i += 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(matches_pattern(b"A###[EFHL]", b"A245E"));
        assert!(!matches_pattern(b"A###[EFHL]", b"A180D"));
        assert!(matches_pattern(b"[GDL][3-6]@@", b"G4KD"));
        assert!(!matches_pattern(b"[GDL][3-6]@@", b"G4KD1"));
        assert!(matches_pattern(b"AW##-##@@", b"AW55-50SN"));
    }

    #[test]
    fn shapes() {
        let strength = |s: &str| shape_strength(s.as_bytes());
        for strong in ["A245E", "JF011E", "6HP19", "4L60E", "RE4F04A", "CD4E", "AX4N", "A4CF1", "F4A42", "QR523MHA"] {
            assert_eq!(strength(strong), Some(Strength::Strong), "{strong}");
        }
        for weak in ["09G", "01M", "0AM", "DP0", "0B5", "AL4"] {
            assert_eq!(strength(weak), Some(Strength::Weak), "{weak}");
        }
        for none in ["A2042708404", "K4M", "ABCDEF", "123456", "AB123456", "X5"] {
            assert_eq!(strength(none), None, "{none}");
        }
    }

    #[test]
    fn known_families() {
        for (code, family) in [
            ("JF011E", "jatco"),
            ("A245E", "aisin"),
            ("U660E", "aisin"),
            ("6HP19", "zf"),
            ("5HP24", "zf"),
            ("09G", "vag"),
            ("DQ250", "vag"),
            ("RE4F04A", "jatco"),
            ("CD4E", "ford"),
            ("AX4N", "ford"),
            ("4L60E", "gm"),
            ("A4CF1", "hyundai_kia"),
            ("F4A42", "mitsubishi"),
            ("722.6", "mercedes"),
            ("TF-80SC", "aisin"),
        ] {
            assert_eq!(family_of(code.as_bytes()), Some(family), "{code}");
        }
        assert_eq!(family_of(b"QR523MHA"), None);
    }

    #[test]
    fn look_alikes_are_not_codes() {
        for s in
            ["RAV4", "QR25DE", "G4KD", "4G63", "N52B30", "K24A", "1NZ", "4WD", "16V", "55R16", "A123BC77", "E220CDI"]
        {
            assert!(is_not_code(s.as_bytes()), "{s}");
        }
        for s in ["A245E", "QR523MHA", "W5MBB1"] {
            assert!(!is_not_code(s.as_bytes()), "{s}");
        }
    }
}
