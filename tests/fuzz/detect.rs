//! VIN, frame and gearbox code detection in customers' text: never a panic, the same answer for
//! the same text, and every candidate comes from the text (after the documented normalisations:
//! Cyrillic look-alikes, full-width forms, letter case, separators, and one autocorrected character).

use aisales_domain::detect::{detect, normalize_id};
use proptest::prelude::*;

use crate::support::{deterministic, hostile_string, run};

/// The text as detection compares it: look-alikes as Latin, upper case, full-width forms as ASCII,
/// `O`/`Q` as `0` and `I` as `1` (VIN spellings), separators dropped.
fn fold(text: &str) -> Vec<char> {
    normalize_id(text)
        .chars()
        .map(|c| match u32::from(c) {
            0xFF01..=0xFF5E => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c).to_ascii_uppercase(),
            _ => c,
        })
        .filter(char::is_ascii_alphanumeric)
        .map(|c| match c {
            'O' | 'Q' => '0',
            'I' => '1',
            c => c,
        })
        .collect()
}

/// Whether `needle` is in `haystack` with at most `changes` characters different.
fn found_in(haystack: &[char], needle: &[char], changes: usize) -> bool {
    needle.len() <= haystack.len()
        && haystack.windows(needle.len()).any(|w| w.iter().zip(needle).filter(|(a, b)| a != b).count() <= changes)
}

const SAMPLES: &[&str] = &[
    "VIN JTDBR32E720012345",
    "вин ХТА21099043456789 ",
    "XW8ZZZ61ZDG012345, коробка 09G",
    "рама GRX130-6012345",
    "NZE141 0012345",
    "АКПП U660E",
    "акпп а6мф1 Camry 2.5",
    "A245E / U341E, вариатор",
    "JTDBR32E72001234",
    "механика 5 ступ.",
    "JF1 SH5LS 5AG 123456",
    "WVWZZZ1KZ6W123456 DSG DQ250",
    "номер кузова: ZZE122-0123456, мотор 1ZZ",
    "0AM 300 057 F",
];

fn text() -> BoxedStrategy<String> {
    let words: Vec<String> = SAMPLES
        .iter()
        .flat_map(|s| s.split_whitespace())
        .map(String::from)
        .chain(["VIN", "рама", "кузов", "АКПП", "МКПП", "робот", "CVT", "-", "—", "/", "O", "I", "Q"].map(String::from))
        .collect();
    let piece = hostile_string(words);
    prop_oneof![
        2 => prop::sample::select(SAMPLES.to_vec()).prop_map(String::from),
        4 => prop::collection::vec(piece, 1..8).prop_map(|p| p.join(" ")),
        2 => "[A-Z0-9А-Яа-я \\-/.,]{0,80}",
        1 => "[ABCDEFGHJKLMNPRSTUVWXYZ0-9ОIQ]{15,19}",
        1 => any::<String>(),
    ]
    .boxed()
}

#[test]
fn detection() {
    run("detect", text(), |text| {
        let d = deterministic(|| detect(&text))?;
        prop_assert_eq!(&d.input, &text);
        let hay = fold(&text);
        for c in &d.candidates {
            prop_assert!(!c.value.is_empty(), "an empty candidate: {c:?}");
            prop_assert!((0.0..=1.0).contains(&c.score), "score out of range: {c:?}");
            let needle = fold(&c.value);
            prop_assert!(found_in(&hay, &needle, 1), "candidate {:?} is not from the text {:?}", c.value, text);
        }
        if let Some(best) = &d.best {
            prop_assert!(d.candidates.contains(best), "the best candidate is not a candidate");
        }
        if let Some(vin) = &d.incomplete_vin {
            prop_assert!(d.candidates.iter().any(|c| &c.value == vin), "the incomplete VIN is not a candidate");
        }
        let _ = d.with_vin_info(2026);
        Ok(())
    });
}
