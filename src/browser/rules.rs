//! Pure text rules applied to what the catalogue pages show: gearbox model validation and
//! extraction, OEM number validation and the assembly-vs-ancillary name scoring.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::outcome::OemCandidate;

macro_rules! re {
    ($name:ident, $pattern:expr) => {
        static $name: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new($pattern).ok());
    };
}

re!(MODEL_SHAPE, r"^[A-Z0-9][A-Z0-9\-().]{1,11}$");
re!(DIGIT_RUN4, r"\d{4,}");
re!(CSS_HASH, r"^[a-z]{1,6}\d{2,3}[a-z]?$");
re!(CSS_PREFIX, r"(?i)^(css|jss|mui|makestyles|sc)-");
re!(
    TYPE_LABEL,
    r"^(\d{1,2}[-\s]?)?(AT|MT|A/T|M/T|CVT|E-?CVT|M-?CVT|I-?CVT|AMT|DCT|DSG|AUTO|AUTOMATIC|MANUAL|SPEED|SPD|ST)$"
);
re!(DRIVE_LABEL, r"^(2WD|4WD|AWD|FWD|RWD|4X4|4X2|LHD|RHD|EURO\d?|EU\d)$");
re!(DISPLACEMENT, r"^\d\.\d{1,2}L?$");
re!(DATE, r"^\d{1,2}\.\d{2,4}$");
re!(MERCEDES_MODEL, r"\b(\d{3}\.\d{3})\b");
re!(FACTORY_CODE_PAREN, r"(?i)^[A-Z]{2,5}\(\d+[A-Z]?\)$");
re!(FACTORY_CODE_SHORT, r"(?i)^[A-Z]{2,4}\d{1,3}$");
re!(OEM_DIGITS, r"\d{3,}");
re!(BRACKETED, r"\[([A-Za-z0-9\-().]{2,14})\]");
re!(FORD_MARKET_MODEL, r"\b(\d[A-Z]{1,3}\d{1,3}[A-Z]{0,2})\b");
re!(FORD_CODE, r"\b([A-Z]{1,4}\d[A-Z0-9]{0,4})\b");

fn matches(re: &LazyLock<Option<Regex>>, text: &str) -> bool {
    re.as_ref().is_some_and(|r| r.is_match(text))
}

/// Region and market words the catalogues show next to codes.
const GEO_WORDS: &[&str] = &[
    "AMERICA", "EUROPE", "RUSSIA", "ASIA", "JAPAN", "CHINA", "KOREA", "GENERAL", "DOMESTIC", "EXPORT", "USA", "EUR",
    "GCC",
];

/// Why a string is not a gearbox model, or `None` when it is one.
///
/// Accepted: 2–12 characters of `A-Z 0-9 - ( ) .`, no run of 4+ digits (serial numbers), not a
/// gearbox *type* label (`AT`, `5MT`, `CVT`, `M-CVT`, `6AT`…), not a drive/market label, not a
/// lower-case CSS-like token or an all-digit catalogue id, not the vehicle's own body code.
pub fn model_rejection(raw: &str, body: Option<&str>) -> Option<&'static str> {
    let trimmed = raw.trim().trim_matches(|c| c == '[' || c == ']').trim();
    if trimmed.len() < 2 {
        return Some("too short");
    }
    // Class-name hashes are lower case in the DOM; upper-case codes of the same shape (JF011E,
    // U660E, A245E) are real gearbox models.
    if (trimmed.chars().all(|c| !c.is_ascii_uppercase()) && matches(&CSS_HASH, trimmed))
        || matches(&CSS_PREFIX, trimmed)
    {
        return Some("page-internal code");
    }
    let upper = trimmed.to_uppercase();
    if !matches(&MODEL_SHAPE, &upper) {
        return Some("not a code");
    }
    if matches(&DIGIT_RUN4, &upper) {
        return Some("serial number");
    }
    if upper.chars().all(|c| c.is_ascii_digit()) {
        return Some("catalogue id");
    }
    if matches(&TYPE_LABEL, &upper) {
        return Some("gearbox type label");
    }
    if matches(&DRIVE_LABEL, &upper) || GEO_WORDS.contains(&upper.as_str()) {
        return Some("drive/market label");
    }
    if matches(&DISPLACEMENT, &upper) || matches(&DATE, &upper) {
        return Some("number, not a code");
    }
    let has_digit = upper.chars().any(|c| c.is_ascii_digit());
    if !has_digit && !upper.contains('(') {
        // Plain words (TRANSMISSION, MANUAL, QCE without variant) are only accepted when they
        // look like a three-letter VAG code with a variant; bare words are descriptions.
        return Some("word, not a code");
    }
    if let Some(body) = body {
        let body = body.trim().to_uppercase();
        if !body.is_empty() && (body == upper || body.split(|c: char| !c.is_ascii_alphanumeric()).any(|t| t == upper)) {
            return Some("vehicle body code");
        }
    }
    None
}

/// Normalised model code if `raw` is one.
pub fn valid_model(raw: &str, body: Option<&str>) -> Option<String> {
    model_rejection(raw, body)
        .is_none()
        .then(|| raw.trim().trim_matches(|c| c == '[' || c == ']').trim().to_uppercase())
}

/// Model from a cell value: the whole value if it is a model code, else the first code-like
/// token of a description such as `(MFG) TRANSMISSION MAN 5 SPD, Y4M` or `A/T 5-SPEED U241E`.
pub fn model_from_text(raw: &str, body: Option<&str>) -> Option<String> {
    if let Some(model) = valid_model(raw, body) {
        return Some(model);
    }
    if let Some(m) = MERCEDES_MODEL.as_ref().and_then(|r| r.captures(raw)).and_then(|c| c.get(1)) {
        return Some(m.as_str().to_owned());
    }
    raw.split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '|'))
        .map(|t| t.trim_matches(|c: char| matches!(c, '.' | ':' | '"' | '\'' | '«' | '»')))
        .filter(|t| !(t.starts_with('(') && t.ends_with(')')))
        .filter(|t| t.chars().any(|c| c.is_ascii_digit()) && t.chars().any(|c| c.is_ascii_alphabetic()))
        .find_map(|t| valid_model(t, body))
}

/// Bracketed code in a heading, e.g. `Коробка передач в сборе [U241E]`.
pub fn bracketed_model(text: &str, body: Option<&str>) -> Option<String> {
    BRACKETED.as_ref()?.captures_iter(text).filter_map(|c| c.get(1)).find_map(|m| valid_model(m.as_str(), body))
}

/// Ford gearbox model from the vehicle's `Transmission` fact, as the old service's
/// `extract_ford_transmission_model` reads it: the **last** market-model token (`6F35`, `4F27E`,
/// `5R55S`, `6DCT250`: a digit, 1–3 letters, 1–3 digits, up to 2 letters), else the last part
/// between `/` or `-` of 2–8 letters and digits with both (not `AT`, `MT`, `CVT`: `IB5`, `MTX75`),
/// else the last code-like token (`B6`). Candidates must also pass the model rules.
pub fn ford_transmission_model(text: &str) -> Option<String> {
    let upper = text.to_uppercase();
    let last = |re: &LazyLock<Option<Regex>>| {
        re.as_ref()?.captures_iter(&upper).filter_map(|c| c.get(1)).filter_map(|m| valid_model(m.as_str(), None)).last()
    };
    last(&FORD_MARKET_MODEL)
        .or_else(|| {
            upper
                .split(['/', '-'])
                .rev()
                .map(str::trim)
                .filter(|t| {
                    (2..=8).contains(&t.len())
                        && t.chars().all(|c| c.is_ascii_alphanumeric())
                        && t.chars().any(|c| c.is_ascii_digit())
                        && t.chars().any(|c| c.is_ascii_alphabetic())
                        && !matches!(*t, "AT" | "MT" | "CVT")
                })
                .find_map(|t| valid_model(t, None))
        })
        .or_else(|| last(&FORD_CODE))
}

/// Whether `s` looks like a factory code / marking rather than an OEM number.
pub fn is_factory_code(s: &str) -> bool {
    let s = s.trim();
    matches(&FACTORY_CODE_PAREN, s) || (matches(&FACTORY_CODE_SHORT, s) && s.len() <= 6)
}

/// Upper case, single spaces, surrounding punctuation removed.
pub fn normalize_oem(raw: &str) -> String {
    raw.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .trim_matches(|c: char| matches!(c, ',' | ';' | '.' | ':' | '#'))
        .to_uppercase()
}

/// OEM number shape: 6–25 characters, at least three consecutive digits, no parentheses or
/// `; : =` (so `A 204 270 84 04` and `31020-1XF2D` pass, `QCE(6A)` does not).
pub fn is_valid_oem(oem: &str) -> bool {
    let len = oem.chars().count();
    (6..=25).contains(&len)
        && !oem.contains(['(', ')', ';', ':', '='])
        && matches(&OEM_DIGITS, oem)
        && oem.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ' ' || c == '.' || c == '/')
}

/// Name keywords that rank OEM candidates: assembly (2) over neutral (1) over ancillary parts (−1).
/// Exclusion wins over assembly, so `Фильтр АКПП` is ancillary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OemScoring {
    /// Lower-case substrings of ancillary part names.
    pub exclude: Vec<String>,
    /// Lower-case substrings of assembly names.
    pub assembly: Vec<String>,
}

impl Default for OemScoring {
    fn default() -> Self {
        let exclude = [
            "модуль",
            "блок управления",
            "датчик",
            "прокладк",
            "сальник",
            "фильтр",
            "шланг",
            "гайк",
            "болт",
            "кронштейн",
            "крышка",
            "поддон",
            "щуп",
            "трубка",
            "клапан",
            "соленоид",
            "масл",
            "шайб",
            "фиксатор",
            "шумоизоляц",
            "уплотн",
            "крепеж",
            "крепёж",
            "радиатор",
            "опора",
            "подушка",
            "трос",
            "пыльник",
            "кольцо",
            "sensor",
            "module",
            "control unit",
            "bracket",
            "gasket",
            "seal",
            "filter",
            "solenoid",
            "bolt",
            "oil",
        ];
        let assembly = [
            "в сборе",
            "сборе",
            "assembly",
            "assy",
            "коробка передач",
            "кпп",
            "акпп",
            "мкпп",
            "вариатор",
            "cvt",
            "ведущий мост в блоке",
            "автоматическая коробка",
            "механическая коробка",
            "блок с автоматической",
            "трансмиссия",
            "transaxle",
            "transmission",
        ];
        Self {
            exclude: exclude.iter().map(|s| (*s).to_owned()).collect(),
            assembly: assembly.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

impl OemScoring {
    /// Score of a part name: −1 ancillary, 2 assembly, 1 otherwise.
    pub fn score(&self, name: &str) -> i8 {
        let name = name.to_lowercase().replace('ё', "е");
        if self.exclude.iter().any(|k| name.contains(k.as_str())) {
            -1
        } else if self.assembly.iter().any(|k| name.contains(k.as_str())) {
            2
        } else {
            1
        }
    }

    /// Turns raw `(oem, name)` rows into valid, de-duplicated, scored candidates (page order kept,
    /// at most `limit`). Rejected values that look like factory codes are returned separately.
    pub fn candidates(&self, rows: &[(String, String)], limit: usize) -> (Vec<OemCandidate>, Vec<String>) {
        let mut out: Vec<OemCandidate> = Vec::new();
        let mut factory_codes = Vec::new();
        for (raw_oem, raw_name) in rows {
            let oem = normalize_oem(raw_oem);
            if !is_valid_oem(&oem) {
                if is_factory_code(&oem) {
                    factory_codes.push(oem);
                }
                continue;
            }
            let name = raw_name.split_whitespace().collect::<Vec<_>>().join(" ");
            if let Some(existing) = out.iter_mut().find(|c| c.oem.replace(' ', "") == oem.replace(' ', "")) {
                // Same number listed twice: keep the more descriptive name.
                if existing.name.is_empty() && !name.is_empty() {
                    existing.score = self.score(&name);
                    existing.name = name;
                }
                continue;
            }
            if out.len() < limit {
                out.push(OemCandidate { score: self.score(&name), oem, name });
            }
        }
        (out, factory_codes)
    }

    /// The gearbox OEM: first candidate with the highest score, if that score is not negative.
    pub fn choose<'a>(&self, candidates: &'a [OemCandidate]) -> Option<&'a OemCandidate> {
        let best = candidates.iter().map(|c| c.score).max()?;
        (best >= 0).then(|| candidates.iter().find(|c| c.score == best)).flatten()
    }
}

/// `(oem, name)` rows of the first table that has an OEM column: a header naming it (артикул,
/// номер детали, OEM…), else a column where at least two values are valid OEM numbers.
pub fn oem_rows_from_tables(tables: &[Vec<Vec<String>>]) -> Vec<(String, String)> {
    const OEM_HEADERS: &[&str] =
        &["oem", "оем", "артикул", "каталожный номер", "каталожный №", "part number", "p/n", "номер детали", "oemcode"];
    const NUMBER_HEADERS: &[&str] = &["номер", "код", "№"];
    const NOT_NUMBER: &[&str] = &["заказ", "п/п", "строк", "серийн", "телефон", "на схеме", "позиц"];
    const NAME_HEADERS: &[&str] =
        &["наименование", "название", "name", "описание", "description", "деталь", "запчасть"];
    for table in tables {
        let Some(header) = table.first() else { continue };
        let lower: Vec<String> = header.iter().map(|h| h.to_lowercase()).collect();
        let find = |keys: &[&str], not: &[&str]| {
            lower.iter().position(|h| keys.iter().any(|k| h.contains(k)) && !not.iter().any(|n| h.contains(n)))
        };
        let name_col = find(NAME_HEADERS, &["номер"]);
        let mut oem_col = find(OEM_HEADERS, &[]).or_else(|| find(NUMBER_HEADERS, NOT_NUMBER));
        let body = &table[1..];
        if oem_col.is_none() {
            let width = table.iter().map(Vec::len).max().unwrap_or(0);
            oem_col = (0..width).find(|col| {
                body.iter().filter(|row| row.get(*col).is_some_and(|v| is_valid_oem(&normalize_oem(v)))).count() >= 2
            });
        }
        let Some(oem_col) = oem_col else { continue };
        let name_col = name_col.or_else(|| (header.len() == 2).then_some(1 - oem_col.min(1)));
        let rows: Vec<(String, String)> = body
            .iter()
            .filter_map(|row| {
                let oem = row.get(oem_col)?.trim();
                let name = name_col.and_then(|c| row.get(c)).map(|n| n.trim()).unwrap_or("");
                (!oem.is_empty()).then(|| (oem.chars().take(100).collect(), name.chars().take(500).collect()))
            })
            .collect();
        if !rows.is_empty() {
            return rows;
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_accepted_and_rejected() {
        for ok in
            ["U241E", "JF011E", "A245E", "U660E", "QCE(6A)", "5R55S", "6DCT450", "09G", "DQ250", "722.964", "F1CJA"]
        {
            assert_eq!(model_rejection(ok, None), None, "{ok}");
        }
        for (bad, why) in [
            ("EDDVA4480773", "serial number"),
            ("S3SCD958948", "serial number"),
            ("AT", "gearbox type label"),
            ("A", "too short"),
            ("5MT", "gearbox type label"),
            ("6AT", "gearbox type label"),
            ("CVT", "gearbox type label"),
            ("M-CVT", "gearbox type label"),
            ("jss123", "page-internal code"),
            ("123456", "serial number"),
            ("4WD", "drive/market label"),
            ("TRANSMISSION", "word, not a code"),
            ("(MFG) TRANSMISSION MAN 5 SPD, Y4M", "not a code"),
        ] {
            assert_eq!(model_rejection(bad, None), Some(why), "{bad}");
        }
        assert_eq!(model_rejection("ACV40", Some("ACV40")), Some("vehicle body code"));
    }

    #[test]
    fn models_from_descriptions() {
        assert_eq!(model_from_text("(MFG) TRANSMISSION MAN 5 SPD, Y4M", None).as_deref(), Some("Y4M"));
        assert_eq!(model_from_text("A/T 5-SPEED U241E", None).as_deref(), Some("U241E"));
        assert_eq!(model_from_text("(MDG) F17 (CR) ТРАНСМИССИЯ РУЧНОГО УПРАВЛЕНИЯ", None).as_deref(), Some("F17"));
        assert_eq!(model_from_text("КП: 722964 (722.964 5-ступ.)", None).as_deref(), Some("722.964"));
        assert_eq!(model_from_text("EDDVA4480773", None), None);
        assert_eq!(model_from_text("CVT", None), None);
        assert_eq!(bracketed_model("Коробка передач в сборе [U241E]", None).as_deref(), Some("U241E"));
    }

    #[test]
    fn ford_models_are_the_last_market_model_token() {
        for (text, model) in [
            ("DPS6 6-SPEED POWERSHIFT / 6DCT250", Some("6DCT250")),
            ("6F35 6-SPEED AUTOMATIC", Some("6F35")),
            ("4F27E", Some("4F27E")),
            ("Automatic 5R55S", Some("5R55S")),
            ("IB5 / MANUAL", Some("IB5")),
            ("MTX75 - 5 SPEED", Some("MTX75")),
            ("AUTOMATIC TRANSMISSION", None),
            ("AT", None),
        ] {
            assert_eq!(ford_transmission_model(text).as_deref(), model, "{text}");
        }
    }

    #[test]
    fn oem_rules_and_scoring() {
        assert!(is_valid_oem("A 204 270 84 04"));
        assert!(is_valid_oem("31020-1XF2D"));
        assert!(!is_valid_oem("QCE(6A)"));
        assert!(!is_valid_oem("AB12"));
        assert!(is_factory_code("QCE(6A)"));
        let scoring = OemScoring::default();
        assert_eq!(scoring.score("Фильтр АКПП"), -1);
        assert_eq!(scoring.score("АКПП в сборе"), 2);
        assert_eq!(scoring.score("Кожух"), 1);
        let rows: Vec<(String, String)> = [
            ("35330-33050", "Фильтр АКПП"),
            ("35168-33080", "Прокладка поддона АКПП"),
            ("QCE(6A)", ""),
            ("30500-33570", "АКПП в сборе"),
            ("30500-33570 ", "дубль"),
        ]
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
        let (candidates, codes) = scoring.candidates(&rows, 10);
        assert_eq!(candidates.len(), 3);
        assert_eq!(codes, vec!["QCE(6A)".to_owned()]);
        assert_eq!(scoring.choose(&candidates).map(|c| c.oem.as_str()), Some("30500-33570"));
        let only_ancillary = &candidates[..2];
        assert_eq!(scoring.choose(only_ancillary), None);
    }

    #[test]
    fn oem_tables() {
        let t = |rows: &[&[&str]]| -> Vec<Vec<String>> {
            rows.iter().map(|r| r.iter().map(|c| (*c).to_owned()).collect()).collect()
        };
        let named = t(&[
            &["№", "Наименование", "Артикул"],
            &["1", "Фильтр", "1700100XGW01A"],
            &["2", "КПП в сборе", "3000100XGW02A"],
        ]);
        let rows = oem_rows_from_tables(&[named]);
        assert_eq!(rows[1], ("3000100XGW02A".to_owned(), "КПП в сборе".to_owned()));
        let unnamed = t(&[&["", ""], &["Коробка", "31020-1XF2D"], &["Фильтр", "31728-1XF00"]]);
        assert_eq!(oem_rows_from_tables(&[unnamed])[0].0, "31020-1XF2D");
    }
}
