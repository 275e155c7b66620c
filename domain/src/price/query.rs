//! What is searched for and where: the kind of a code (OEM part number or transmission code), the
//! market-model-name validator, gearbox type labels (never a code), the Yandex queries, and the
//! scores and exclusions of search results.

use serde::{Deserialize, Serialize};

use super::listing::{host_of, site_of};
use crate::detect::GearboxType;

/// What a code identifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeKind {
    /// An OEM part number of the gearbox assembly (`31020-3VX2D`, `A 204 270 84 04`).
    OemPartNumber,
    /// A gearbox model code (`JF011E`, `A245E`, `AW55-51SN`).
    TransmissionCode,
}

/// Classifies a code the way the old system did (a digit next to a dash makes a part number:
/// `31020-3VX2D`, `FWLB-03-000`), with three corrections: digit groups separated by spaces
/// (`A 204 270 84 04`) and runs of four or more digits (`2500A230`, `3102085X00`) are part numbers
/// too, and a code of a known gearbox family (`AW55-51SN`, `RE4F04A-B41`) is a transmission code
/// whatever its dashes.
pub fn classify_code(code: &str) -> CodeKind {
    let trimmed = code.trim().to_uppercase();
    let compact: String = trimmed.chars().filter(|c| !c.is_whitespace()).collect();
    if crate::detect::known_family(&compact).is_some() {
        return CodeKind::TransmissionCode;
    }
    let chars: Vec<char> = trimmed.chars().collect();
    let digit_by_dash =
        chars.windows(2).any(|w| (w[0].is_ascii_digit() && w[1] == '-') || (w[0] == '-' && w[1].is_ascii_digit()));
    let spaced_groups = trimmed.split_whitespace().count() > 1;
    let long_digit_run = max_digit_run(&compact) >= 4;
    if digit_by_dash || spaced_groups || long_digit_run { CodeKind::OemPartNumber } else { CodeKind::TransmissionCode }
}

fn max_digit_run(s: &str) -> usize {
    let mut best = 0;
    let mut run = 0;
    for c in s.chars() {
        run = if c.is_ascii_digit() { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// Type labels written instead of a model code.
const TYPE_LABELS: &[&str] = &[
    "AT",
    "MT",
    "CVT",
    "DCT",
    "AMT",
    "DSG",
    "АКПП",
    "МКПП",
    "РКПП",
    "КПП",
    "ВАРИАТОР",
    "АВТОМАТ",
    "МЕХАНИКА",
    "РОБОТ",
    "AUTO",
    "MANUAL",
    "AUTOMATIC",
    "A/T",
    "M/T",
    "4WD",
    "2WD",
    "AWD",
    "FWD",
    "RWD",
    "4X4",
    "4X2",
    "ECVT",
    "E-CVT",
    "M-CVT",
    "I-CVT",
    "CVT-M",
    "XTRONIC",
    "X-TRONIC",
    "MULTITRONIC",
    "TIPTRONIC",
    "STEPTRONIC",
    "POWERSHIFT",
    "S-TRONIC",
    "STRONIC",
    "HYBRID",
];

/// Whether `s` is a gearbox type, drive or gear-count label rather than a model code: `AT`, `CVT`,
/// `M-CVT`, `4AT`, `6DCT`, `DSG7`, `АКПП`, `4WD` … (case-insensitive). Such labels are never keys
/// and never model names: one vehicle's answer must not be reused for every "CVT".
pub fn is_gearbox_type_label(s: &str) -> bool {
    let upper: String = s.trim().to_uppercase().chars().filter(|c| !c.is_whitespace()).collect();
    if upper.is_empty() {
        return false;
    }
    // "4AT", "10AT", "7DCT", "5MT", "6DSG", "DSG7", "CVT8" (but not the VAG code "0AM").
    TYPE_LABELS.contains(&upper.as_str()) || crate::detect::label_type(upper.as_bytes()).is_some()
}

/// Whether `name` may stand as a market model name of a gearbox (`JF011E`, `W5MBB`, `U660E`,
/// `RE0F11A`): upper case Latin letters and digits (and `-()`), 2–12 characters, starting with a
/// letter or digit, no run of four digits (that is a part number), and not a type label.
pub fn is_valid_market_model_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (2..=12).contains(&bytes.len())
        && (bytes[0].is_ascii_uppercase() || bytes[0].is_ascii_digit())
        && bytes.iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || matches!(b, b'-' | b'(' | b')'))
        && max_digit_run(name) < 4
        && !is_gearbox_type_label(name)
}

/// How listing queries name a gearbox type: АКПП, МКПП, вариатор, DSG, РКПП; `КПП` when unknown.
pub fn gearbox_label(gearbox_type: Option<GearboxType>) -> &'static str {
    gearbox_type.map_or("КПП", GearboxType::human_ru)
}

/// Inputs of [`build_yandex_queries`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryInput<'a> {
    /// The code searched for (OEM part number or transmission code).
    pub oem: Option<&'a str>,
    /// The market model name (`JF011E`), when known.
    pub model_name: Option<&'a str>,
    pub make: Option<&'a str>,
    pub model: Option<&'a str>,
    pub gearbox_type: Option<GearboxType>,
    /// What `oem` is.
    pub kind: Option<CodeKind>,
    /// Search by the model name rather than the code when the name is valid (the old
    /// `YANDEX_PREFER_MODELNAME`).
    pub prefer_model_name: bool,
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

/// At most four search queries, as the old system built them:
/// 1. `<label> <anchor> купить`;
/// 2. with make and model `<label> <make> <model> <anchor>[ <oem>] контрактная`, with the make only
///    `<label> <make> <anchor>[ <oem>] контрактная`;
/// 3. when a model name other than the code is known (and has no four-digit run)
///    `<label> <model name>[ <make>] купить` (never "null" for a missing make) and
/// 4. `<label> <model name> цена`;
///
/// duplicates skipped. The anchor is the code, or the valid model name when preferred (always
/// for a part number; for a code only when they differ). Without any code, the vehicle is the
/// anchor: `<label> <make> <model> купить` and `… контрактная`. Nothing to search for gives none.
pub fn build_yandex_queries(input: &QueryInput<'_>) -> Vec<String> {
    let label = gearbox_label(input.gearbox_type);
    let oem = non_empty(input.oem);
    let model_name = non_empty(input.model_name);
    let make = non_empty(input.make);
    let model = non_empty(input.model);
    let valid_name = model_name.filter(|n| is_valid_market_model_name(n));
    let anchor = match (oem, valid_name) {
        (Some(o), Some(n)) if input.prefer_model_name && (input.kind == Some(CodeKind::OemPartNumber) || n != o) => {
            Some(n)
        }
        (Some(o), _) => Some(o),
        (None, name) => name,
    };
    let mut queries: Vec<String> = Vec::new();
    let mut push = |q: String| {
        if !queries.contains(&q) && queries.len() < 4 {
            queries.push(q);
        }
    };
    let Some(anchor) = anchor else {
        if let (Some(make), Some(model)) = (make, model) {
            push(format!("{label} {make} {model} купить"));
            push(format!("{label} {make} {model} контрактная"));
        }
        return queries;
    };
    let with_oem = match oem {
        Some(o) if o != anchor => format!("{anchor} {o}"),
        _ => anchor.to_string(),
    };
    push(format!("{label} {anchor} купить"));
    match (make, model) {
        (Some(make), Some(model)) => push(format!("{label} {make} {model} {with_oem} контрактная")),
        (Some(make), None) => push(format!("{label} {make} {with_oem} контрактная")),
        _ => {}
    }
    if let Some(name) = model_name
        && Some(name) != oem
        && max_digit_run(name) < 4
    {
        match make {
            Some(make) => push(format!("{label} {name} {make} купить")),
            None => push(format!("{label} {name} купить")),
        }
        push(format!("{label} {name} цена"));
    }
    queries
}

/// Sites that sell used gearboxes, best first, with the old system's scores; any other site 2,
/// avito 1 (its pages rarely parse without a browser).
pub const DOMAIN_SCORES: &[(&str, u8)] = &[
    ("baza.drom.ru", 10),
    ("farpost.ru", 10),
    ("japancar.ru", 9),
    ("dvsavto.ru", 9),
    ("qx9.ru", 8),
    ("kor-motor.ru", 8),
    ("avtgr.ru", 8),
    ("exist.ru", 7),
    ("emex.ru", 7),
    ("abcp.ru", 7),
    ("bibika.ru", 6),
    ("avito.ru", 1),
];

/// Score of an unlisted site.
pub const OTHER_DOMAIN_SCORE: u8 = 2;

/// Pages with no listings: video, encyclopaedia, catalogues, forums and magazines.
const EXCLUDED_DOMAINS: &[&str] = &["youtube.com", "wikipedia.org", "drive2.ru", "zr.ru", "autodata.ru"];

fn host_is(host: &str, domain: &str) -> bool {
    host == domain || host.strip_suffix(domain).is_some_and(|rest| rest.ends_with('.'))
}

/// Score of a search result's site (the host or a subdomain of a listed site; `notfarpost.ru`
/// is not farpost).
pub fn domain_score(url: &str) -> u8 {
    let Some(host) = host_of(url) else { return 0 };
    DOMAIN_SCORES.iter().find(|(d, _)| host_is(&host, d)).map_or(OTHER_DOMAIN_SCORE, |(_, s)| *s)
}

/// Whether a search result is never fetched: YouTube, Wikipedia, auto.ru's catalogue, drive2, zr.ru,
/// autodata, and anything that is not an http(s) URL.
pub fn is_excluded_url(url: &str) -> bool {
    let url = url.trim();
    let lower = url.to_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return true;
    }
    let Some(host) = host_of(url) else { return true };
    if EXCLUDED_DOMAINS.iter().any(|d| host_is(&host, d)) {
        return true;
    }
    let path = lower.split_once("://").map_or("", |(_, r)| r).split_once('/').map_or("", |(_, p)| p);
    host_is(&host, "auto.ru") && path.starts_with("catalog")
}

/// Listing pages to fetch: distinct URLs (in first-seen order), excluded ones removed, best
/// domain first (stable among equals), at most `limit` (the old system fetched 8).
pub fn select_pages(urls: impl IntoIterator<Item = String>, limit: usize) -> Vec<(String, u8)> {
    let mut seen = std::collections::HashSet::new();
    let mut pages: Vec<(String, u8)> = urls
        .into_iter()
        .map(|u| u.trim().to_string())
        .filter(|u| !is_excluded_url(u) && seen.insert(u.clone()))
        .map(|u| {
            let score = domain_score(&u);
            (u, score)
        })
        .collect();
    pages.sort_by_key(|p| std::cmp::Reverse(p.1));
    pages.truncate(limit);
    pages
}

/// The site name of a URL for display (`baza.drom.ru`).
pub fn display_site(url: &str) -> String {
    site_of(url).unwrap_or_else(|| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified() {
        for pn in ["31020-3VX2D", "FWLB-03-000", "A 204 270 84 04", "2500A230", "3102085X00", "31020-1XF0C"] {
            assert_eq!(classify_code(pn), CodeKind::OemPartNumber, "{pn}");
        }
        for tc in ["JF011E", "A245E", "U660E", "AW55-51SN", "RE4F04A-B41", "6HP19", "W5MBB", "09G"] {
            assert_eq!(classify_code(tc), CodeKind::TransmissionCode, "{tc}");
        }
    }

    #[test]
    fn type_labels_are_not_codes() {
        for label in [
            "AT",
            "cvt",
            "M-CVT",
            "4AT",
            "10AT",
            "5MT",
            "7DCT",
            "6dsg",
            "DSG7",
            "АКПП",
            "вариатор",
            "4WD",
            "A/T",
            "E-CVT",
        ] {
            assert!(is_gearbox_type_label(label), "{label}");
        }
        for code in ["JF011E", "A245E", "U660E", "W5MBB", "09G", "0AM", "DQ250", "6HP19", ""] {
            assert!(!is_gearbox_type_label(code), "{code}");
        }
    }

    #[test]
    fn market_model_names() {
        for ok in ["JF011E", "W5MBB", "F4A42", "U660E", "RE0F11A", "KCK(6S)", "A6MF1", "QCE"] {
            assert!(is_valid_market_model_name(ok), "{ok}");
        }
        for bad in [
            "",
            "J",
            "jf011e",
            "CVT",
            "AT",
            "4AT",
            "7DCT",
            "M-CVT",
            "АКПП",
            "AWD",
            "31020-3VX2D",
            "2500A230",
            "ABCDEFGHIJKLM",
            "-JF011E",
            "JF 011E",
        ] {
            assert!(!is_valid_market_model_name(bad), "{bad}");
        }
    }

    #[test]
    fn queries_of_the_old_system() {
        let q = build_yandex_queries(&QueryInput {
            oem: Some("31020-3VX2D"),
            model_name: Some("JF011E"),
            make: Some("NISSAN"),
            model: Some("QASHQAI"),
            gearbox_type: Some(GearboxType::Cvt),
            kind: Some(CodeKind::OemPartNumber),
            prefer_model_name: false,
        });
        assert_eq!(
            q,
            [
                "вариатор 31020-3VX2D купить",
                "вариатор NISSAN QASHQAI 31020-3VX2D контрактная",
                "вариатор JF011E NISSAN купить",
                "вариатор JF011E цена",
            ]
        );
    }

    #[test]
    fn queries_prefer_the_model_name_when_asked() {
        let q = build_yandex_queries(&QueryInput {
            oem: Some("31020-3VX2D"),
            model_name: Some("JF011E"),
            make: Some("NISSAN"),
            model: None,
            gearbox_type: None,
            kind: Some(CodeKind::OemPartNumber),
            prefer_model_name: true,
        });
        assert_eq!(
            q,
            [
                "КПП JF011E купить",
                "КПП NISSAN JF011E 31020-3VX2D контрактная",
                "КПП JF011E NISSAN купить",
                "КПП JF011E цена"
            ]
        );
    }

    #[test]
    fn a_missing_make_is_left_out_not_printed_as_null() {
        let q = build_yandex_queries(&QueryInput {
            oem: Some("A245E"),
            model_name: Some("U340E"),
            gearbox_type: Some(GearboxType::Automatic),
            ..Default::default()
        });
        assert_eq!(q, ["АКПП A245E купить", "АКПП U340E купить", "АКПП U340E цена"]);
        assert!(q.iter().all(|q| !q.contains("null") && !q.contains("undefined") && !q.contains("  ")));
        // The model name equal to the code adds nothing; a model name with a digit run is a part number.
        let q =
            build_yandex_queries(&QueryInput { oem: Some("A245E"), model_name: Some("A245E"), ..Default::default() });
        assert_eq!(q, ["КПП A245E купить"]);
        let q = build_yandex_queries(&QueryInput {
            oem: Some("A245E"),
            model_name: Some("35010-1234"),
            ..Default::default()
        });
        assert_eq!(q, ["КПП A245E купить"]);
    }

    #[test]
    fn queries_without_a_code_search_the_vehicle() {
        let q = build_yandex_queries(&QueryInput {
            make: Some("Nissan"),
            model: Some("X-Trail"),
            gearbox_type: Some(GearboxType::Cvt),
            ..Default::default()
        });
        assert_eq!(q, ["вариатор Nissan X-Trail купить", "вариатор Nissan X-Trail контрактная"]);
        assert!(build_yandex_queries(&QueryInput { make: Some("Nissan"), ..Default::default() }).is_empty());
        let q = build_yandex_queries(&QueryInput {
            model_name: Some("JF011E"),
            make: Some("NISSAN"),
            ..Default::default()
        });
        assert_eq!(q[0], "КПП JF011E купить");
    }

    #[test]
    fn domain_scores_and_exclusions() {
        assert_eq!(domain_score("https://baza.drom.ru/sell/1"), 10);
        assert_eq!(domain_score("https://www.farpost.ru/x"), 10);
        assert_eq!(domain_score("https://japancar.ru/"), 9);
        assert_eq!(domain_score("https://www.avito.ru/moskva"), 1);
        assert_eq!(domain_score("https://notfarpost.ru/"), 2);
        assert_eq!(domain_score("https://drom.ru/"), 2);
        assert_eq!(domain_score("garbage"), 2);
        for url in [
            "https://www.youtube.com/watch?v=1",
            "https://ru.wikipedia.org/wiki/АКПП",
            "https://auto.ru/catalog/cars/",
            "https://www.drive2.ru/l/1",
            "https://www.zr.ru/content/1",
            "https://autodata.ru/x",
            "ftp://files.ru/x",
            "",
        ] {
            assert!(is_excluded_url(url), "{url}");
        }
        assert!(!is_excluded_url("https://auto.ru/cars/used/"));
        assert!(!is_excluded_url("https://baza.drom.ru/sell/1"));
    }

    #[test]
    fn pages_are_chosen_by_domain() {
        let urls = [
            "https://www.avito.ru/1",
            "https://shop.ru/a",
            "https://baza.drom.ru/2",
            "https://www.youtube.com/3",
            "https://shop.ru/a",
            "https://japancar.ru/4",
        ]
        .map(String::from);
        let pages = select_pages(urls, 3);
        assert_eq!(
            pages,
            [
                ("https://baza.drom.ru/2".to_string(), 10),
                ("https://japancar.ru/4".to_string(), 9),
                ("https://shop.ru/a".to_string(), 2)
            ]
        );
        assert_eq!(display_site("https://www.avito.ru/1"), "avito.ru");
    }
}
