//! Reply templates a tenant can edit: `price_result`, `price_options`, `not_found` and
//! `payment_options`, with `{{name}}` placeholders.
//!
//! Unlike the old renderer, an unknown placeholder is an error ([`TemplateError::UnknownPlaceholders`]),
//! reported when the template is saved or previewed, never left in a customer text nor silently
//! dropped. A known placeholder without a value renders as nothing and is listed in
//! [`Rendered::missing`]; a parenthesised group whose placeholders are all missing goes with it
//! (`(OEM: {{oem}})` without an OEM), so no "(OEM: )" reaches a customer.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::format::format_date_msk;

/// Longest template (characters).
pub const MAX_TEMPLATE_CHARS: usize = 2000;

/// Kinds of price templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateKind {
    /// A market price range.
    PriceResult,
    /// Three offers by mileage (budget, middle, best condition).
    PriceOptions,
    /// Nothing was found; the price will be given by a person.
    NotFound,
    /// The payment methods.
    PaymentOptions,
}

impl TemplateKind {
    pub const ALL: [TemplateKind; 4] = [Self::PriceResult, Self::PriceOptions, Self::NotFound, Self::PaymentOptions];

    /// `price_result`, `price_options`, `not_found`, `payment_options`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PriceResult => "price_result",
            Self::PriceOptions => "price_options",
            Self::NotFound => "not_found",
            Self::PaymentOptions => "payment_options",
        }
    }

    /// Parses the name [`TemplateKind::as_str`] gives.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s.trim())
    }

    /// The built-in text (the old system's defaults; `payment_options` lists the methods).
    pub fn default_content(self) -> &'static str {
        match self {
            Self::PriceResult => {
                "Нашёл для вас контрактную {{transmission_model}} (OEM: {{oem}}).\n\n💰 Стоимость: {{min_price}} — {{max_price}} ₽\n📊 Средняя цена: {{avg_price}} ₽\n\nЕсть в наличии. Готов ответить на все вопросы!"
            }
            Self::PriceOptions => {
                "Нашёл варианты контрактной {{transmission_model}} (OEM: {{oem}}):\n\n📦 Эконом — от {{budget_price}} ₽\n🔧 Пробег до {{budget_mileage}} км\n\n📦 Оптимум — от {{mid_price}} ₽\n🔧 Пробег до {{mid_mileage}} км\n\n📦 Минимальный пробег — от {{quality_price}} ₽\n🔧 Пробег до {{quality_mileage}} км\n\nВсе контрактные, не использовались в РФ.\nЧто важнее — цена или минимальный пробег?"
            }
            Self::NotFound => "Есть в наличии, уточним стоимость для вас. Оставьте контакт — свяжемся в течение часа.",
            Self::PaymentOptions => "💳 Варианты оплаты:\n\n{{payment_methods}}",
        }
    }

    /// The placeholders this kind knows.
    pub fn variables(self) -> &'static [&'static str] {
        match self {
            Self::PriceResult => &[
                "transmission_model",
                "oem",
                "min_price",
                "max_price",
                "avg_price",
                "median_price",
                "market_min_price",
                "market_max_price",
                "origin",
                "manufacturer",
                "car_brand",
                "date",
                "mileage_min",
                "mileage_max",
                "mileage_range",
                "listings_count",
                "price_note",
            ],
            Self::PriceOptions => &[
                "transmission_model",
                "oem",
                "manufacturer",
                "origin",
                "budget_price",
                "budget_mileage",
                "mid_price",
                "mid_mileage",
                "quality_price",
                "quality_mileage",
                "listings_count",
                "date",
                "price_note",
            ],
            Self::NotFound => &["transmission_model", "oem", "car_brand"],
            Self::PaymentOptions => &["payment_methods"],
        }
    }
}

/// Values of placeholders, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateValues(BTreeMap<String, String>);

impl TemplateValues {
    /// No values.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` (an empty value counts as missing).
    pub fn set(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        self.0.insert(name.to_string(), value.into());
        self
    }

    /// Sets `name` when `value` is given.
    pub fn set_opt(&mut self, name: &str, value: Option<impl Into<String>>) -> &mut Self {
        if let Some(v) = value {
            self.set(name, v);
        }
        self
    }

    /// The value of `name`, if set and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|v| !v.trim().is_empty())
    }
}

/// Why a template cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("the template is empty")]
    Empty,
    #[error("the template is too long ({0} characters; at most {max})", max = MAX_TEMPLATE_CHARS)]
    TooLong(usize),
    #[error("unknown placeholder(s) {}: this template knows {}", list(.unknown), list(.known))]
    UnknownPlaceholders { unknown: Vec<String>, known: Vec<String> },
    #[error("`{0}` is not a placeholder: write {{{{name}}}} with letters, digits and underscores")]
    Malformed(String),
}

fn list(names: &[String]) -> String {
    names.iter().map(|n| format!("{{{{{n}}}}}")).collect::<Vec<_>>().join(", ")
}

/// A rendered template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    /// Known placeholders that had no value (rendered as nothing).
    pub missing: Vec<String>,
}

enum Piece<'a> {
    Char(char),
    Var(&'a str),
}

fn parse(content: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    let mut pieces = Vec::with_capacity(content.len());
    let mut rest = content;
    while let Some(open) = rest.find("{{") {
        pieces.extend(rest[..open].chars().map(Piece::Char));
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err(TemplateError::Malformed(rest[open..].chars().take(24).collect()));
        };
        let name = after[..close].trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(TemplateError::Malformed(format!("{{{{{}}}}}", &after[..close])));
        }
        pieces.push(Piece::Var(name));
        rest = &after[close + 2..];
    }
    pieces.extend(rest.chars().map(Piece::Char));
    Ok(pieces)
}

/// Checks a template of `kind` before it is saved: not empty, not too long, placeholders well
/// formed and known.
pub fn validate_template(kind: TemplateKind, content: &str) -> Result<(), TemplateError> {
    if content.trim().is_empty() {
        return Err(TemplateError::Empty);
    }
    let chars = content.chars().count();
    if chars > MAX_TEMPLATE_CHARS {
        return Err(TemplateError::TooLong(chars));
    }
    let known = kind.variables();
    let mut unknown: Vec<String> = Vec::new();
    for piece in parse(content)? {
        if let Piece::Var(name) = piece
            && !known.contains(&name)
            && !unknown.iter().any(|u| u == name)
        {
            unknown.push(name.to_string());
        }
    }
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(TemplateError::UnknownPlaceholders { unknown, known: known.iter().map(|k| k.to_string()).collect() })
    }
}

/// Renders a template of `kind` (see the module doc for missing values).
pub fn render(kind: TemplateKind, content: &str, values: &TemplateValues) -> Result<Rendered, TemplateError> {
    validate_template(kind, content)?;
    let pieces = parse(content)?;
    let mut missing: Vec<String> = Vec::new();
    let is_missing = |name: &str| values.get(name).is_none();
    // Parenthesised groups (one line, not nested) whose placeholders are all missing.
    let mut skip = vec![false; pieces.len()];
    let mut i = 0;
    while i < pieces.len() {
        if matches!(pieces[i], Piece::Char('(')) {
            let mut j = i + 1;
            let mut vars = 0;
            let mut all_missing = true;
            while j < pieces.len() && !matches!(pieces[j], Piece::Char(')' | '(' | '\n')) {
                if let Piece::Var(name) = pieces[j] {
                    vars += 1;
                    all_missing &= is_missing(name);
                }
                j += 1;
            }
            if j < pieces.len() && matches!(pieces[j], Piece::Char(')')) && vars > 0 && all_missing {
                let start = if i > 0 && matches!(pieces[i - 1], Piece::Char(' ')) { i - 1 } else { i };
                skip[start..=j].iter_mut().for_each(|s| *s = true);
                i = j;
            }
        }
        i += 1;
    }
    let mut out = String::with_capacity(content.len() + 64);
    for (piece, skipped) in pieces.iter().zip(&skip) {
        match piece {
            Piece::Var(name) => match values.get(name) {
                Some(v) if !skipped => out.push_str(v),
                Some(_) => {}
                None => {
                    if !missing.iter().any(|m| m == name) {
                        missing.push(name.to_string());
                    }
                }
            },
            Piece::Char(c) if !skipped => out.push(*c),
            Piece::Char(_) => {}
        }
    }
    Ok(Rendered { text: tidy(&out), missing })
}

/// Collapses runs of ordinary spaces inside lines (indentation is kept) and trims line ends.
fn tidy(text: &str) -> String {
    let lines: Vec<String> = text
        .split('\n')
        .map(|line| {
            let indent = line.len() - line.trim_start_matches(' ').len();
            let mut out = String::from(&line[..indent]);
            let mut previous_space = false;
            for c in line[indent..].chars() {
                if c == ' ' {
                    if !previous_space {
                        out.push(c);
                    }
                    previous_space = true;
                } else {
                    out.push(c);
                    previous_space = false;
                }
            }
            out.trim_end().to_string()
        })
        .collect();
    lines.join("\n").trim().to_string()
}

/// Values used to preview a template of `kind` (prices and mileages written as customers see them).
pub fn sample_values(kind: TemplateKind, now: DateTime<Utc>) -> TemplateValues {
    let mut v = TemplateValues::new();
    let nb = |s: &str| s.replace(' ', "\u{a0}");
    match kind {
        TemplateKind::PriceResult => {
            v.set("transmission_model", "АКПП U760E")
                .set("oem", "3530060360")
                .set("min_price", nb("45 000"))
                .set("max_price", nb("65 000"))
                .set("avg_price", nb("55 000"))
                .set("median_price", nb("54 000"))
                .set("market_min_price", nb("60 000"))
                .set("market_max_price", nb("86 700"))
                .set("origin", "Япония")
                .set("manufacturer", "Toyota")
                .set("car_brand", "Toyota Camry")
                .set("mileage_min", nb("63 000"))
                .set("mileage_max", nb("95 000"))
                .set("mileage_range", nb("63 000 — 95 000 км"))
                .set("listings_count", "7")
                .set("price_note", "Гарантия 30 дней.");
        }
        TemplateKind::PriceOptions => {
            v.set("transmission_model", "АКПП U760E")
                .set("oem", "3530060360")
                .set("manufacturer", "Toyota")
                .set("origin", "Япония")
                .set("budget_price", nb("44 000"))
                .set("budget_mileage", nb("98 000"))
                .set("mid_price", nb("57 000"))
                .set("mid_mileage", nb("74 000"))
                .set("quality_price", nb("71 000"))
                .set("quality_mileage", nb("52 000"))
                .set("listings_count", "7")
                .set("price_note", "Гарантия 30 дней.");
        }
        TemplateKind::NotFound => {
            v.set("transmission_model", "АКПП U760E").set("oem", "3530060360").set("car_brand", "Toyota Camry");
        }
        TemplateKind::PaymentOptions => {
            v.set("payment_methods", "• Наличными при получении\n• Перевод на карту\n  Сбербанк, Т-Банк");
        }
    }
    v.set("date", format_date_msk(now));
    v
}

/// Renders `content` with the sample values of `kind` (the API's preview).
pub fn preview(kind: TemplateKind, content: &str, now: DateTime<Utc>) -> Result<Rendered, TemplateError> {
    render(kind, content, &sample_values(kind, now))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 5, 9, 7, 0).unwrap()
    }

    #[test]
    fn defaults_are_valid_and_preview_without_gaps() {
        for kind in TemplateKind::ALL {
            let r = preview(kind, kind.default_content(), now()).unwrap();
            assert!(r.missing.is_empty(), "{kind:?}: {:?}", r.missing);
            assert!(!r.text.contains("{{"), "{}", r.text);
            assert_eq!(TemplateKind::parse(kind.as_str()), Some(kind));
        }
        let r = preview(TemplateKind::PriceResult, TemplateKind::PriceResult.default_content(), now()).unwrap();
        assert!(r.text.starts_with(
            "Нашёл для вас контрактную АКПП U760E (OEM: 3530060360).\n\n💰 Стоимость: 45\u{a0}000 — 65\u{a0}000 ₽"
        ));
        let r = preview(TemplateKind::PriceResult, "{{date}}", now()).unwrap();
        assert_eq!(r.text, "05.01, 12:07");
    }

    #[test]
    fn unknown_placeholders_are_reported() {
        let err = validate_template(TemplateKind::NotFound, "Цена {{min_price}} и {{foo}}, {{foo}}").unwrap_err();
        assert_eq!(
            err,
            TemplateError::UnknownPlaceholders {
                unknown: vec!["min_price".into(), "foo".into()],
                known: vec!["transmission_model".into(), "oem".into(), "car_brand".into()],
            }
        );
        assert_eq!(
            err.to_string(),
            "unknown placeholder(s) {{min_price}}, {{foo}}: this template knows {{transmission_model}}, {{oem}}, {{car_brand}}"
        );
        assert!(render(TemplateKind::PriceResult, "{{foo}}", &TemplateValues::new()).is_err());
    }

    #[test]
    fn malformed_and_empty_templates_are_refused() {
        assert_eq!(validate_template(TemplateKind::NotFound, "  "), Err(TemplateError::Empty));
        assert_eq!(
            validate_template(TemplateKind::NotFound, "Цена {{ min price }}"),
            Err(TemplateError::Malformed("{{ min price }}".into()))
        );
        assert_eq!(
            validate_template(TemplateKind::NotFound, "Цена {{oem"),
            Err(TemplateError::Malformed("{{oem".into()))
        );
        assert_eq!(validate_template(TemplateKind::NotFound, &"я".repeat(2001)), Err(TemplateError::TooLong(2001)));
        // Spaces inside the braces are forgiven.
        assert!(validate_template(TemplateKind::NotFound, "OEM {{ oem }}").is_ok());
    }

    #[test]
    fn missing_values_leave_no_gaps() {
        let mut v = TemplateValues::new();
        v.set("transmission_model", "JF011E").set("oem", "");
        let r =
            render(TemplateKind::NotFound, "Контрактная {{transmission_model}} (OEM: {{oem}}) для {{car_brand}}.", &v)
                .unwrap();
        assert_eq!(r.text, "Контрактная JF011E для .");
        assert_eq!(r.missing, ["oem", "car_brand"]);
        // A group with a value stays; text in parentheses without placeholders stays.
        v.set("oem", "31020-3VX2D");
        let r = render(TemplateKind::NotFound, "{{transmission_model}} (OEM: {{oem}}) (б/у)", &v).unwrap();
        assert_eq!(r.text, "JF011E (OEM: 31020-3VX2D) (б/у)");
        // Indentation and no-break spaces survive tidying.
        let mut v = TemplateValues::new();
        v.set("payment_methods", "• Карта\n  Сбербанк");
        let r = render(TemplateKind::PaymentOptions, "Оплата:  {{payment_methods}}\u{a0}!", &v).unwrap();
        assert_eq!(r.text, "Оплата: • Карта\n  Сбербанк\u{a0}!");
    }
}
