//! Price replies: what a conversation is offered once a price lookup ends, and the operator's
//! escalation note. [`price_suggestions`] is the one entry point, so every path applies the tenant's
//! margin and rounding ([`PriceSettings::sale_price`]) the same way.
//!
//! * a market price: three offers by mileage (`price_options`) when the listings allow it, else the
//!   tenant's `price_result` template when it has one, else the short reply;
//! * the tenant's own price list: its offers as they are (its prices are the shop's own);
//! * an AI estimate: said to be an estimate, never a market price;
//! * nothing found: the `not_found` reply, and, when escalation is wanted, an escalation note for
//!   an operator with ready queries and the pages already checked;
//! * after a price: the payment methods.
//!
//! No reply is ever built from a zero or made-up price: an answer without a real price gives the
//! not-found reply.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::format::{format_date_msk, format_number};
use super::listing::Listing;
use super::query::gearbox_label;
use super::settings::PriceSettings;
use super::stats::PriceSummary;
use super::subject::PriceSubject;
use super::template::{TemplateError, TemplateKind, TemplateValues, render};
use crate::detect::GearboxType;

/// What a suggestion says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuggestionKind {
    /// A market price range (short reply or `price_result`).
    Price,
    /// Offers by mileage (`price_options`).
    PriceOptions,
    /// Offers from the tenant's own price list.
    OwnOffer,
    /// An AI estimate.
    Estimate,
    /// Nothing found (`not_found`).
    NotFound,
    /// A note for an operator to search by hand.
    Escalation,
    /// The payment methods.
    PaymentOptions,
    /// The lookup failed; the customer is told the price will follow.
    Failure,
}

impl SuggestionKind {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Price => "price",
            Self::PriceOptions => "price_options",
            Self::OwnOffer => "own_offer",
            Self::Estimate => "estimate",
            Self::NotFound => "not_found",
            Self::Escalation => "escalation",
            Self::PaymentOptions => "payment_options",
            Self::Failure => "failure",
        }
    }
}

/// A reply suggestion for a conversation (it goes through the usual decision policy and approval).
#[derive(Debug, Clone, PartialEq)]
pub struct PriceSuggestion {
    pub kind: SuggestionKind,
    pub text: String,
    /// Drafting intent: `price` (price replies, not found, payment methods) or `escalation`.
    pub intent: &'static str,
    pub confidence: f64,
    /// Never sent automatically, whatever the tenant's autosend settings: `manual_price_search_required`.
    pub autosend_block_reason: Option<&'static str>,
    /// The tenant's template could not be used (the default was): why.
    pub template_problem: Option<String>,
}

/// One row of the tenant's own price list that matches the subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnOffer {
    /// Whole roubles (the shop's own price: no margin is applied).
    pub price: u64,
    #[serde(default)]
    pub condition: Option<String>,
    #[serde(default)]
    pub supplier: Option<String>,
    /// Units in stock, when the list says.
    #[serde(default)]
    pub stock: Option<u32>,
}

/// A payment method of the tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentMethod {
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default)]
    pub order: i32,
}

fn yes() -> bool {
    true
}

/// The tenant's active template per kind (the lowest `order` among active ones); a kind without
/// one uses the default.
pub type TemplateOverrides = BTreeMap<TemplateKind, String>;

/// Everything a reply depends on besides the answer.
#[derive(Debug, Clone, Copy)]
pub struct ReplyContext<'a> {
    pub subject: &'a PriceSubject,
    pub settings: &'a PriceSettings,
    pub templates: &'a TemplateOverrides,
    pub payment_methods: &'a [PaymentMethod],
    pub now: DateTime<Utc>,
}

/// How a price lookup ended, as the replies need it.
#[derive(Debug, Clone, Copy)]
pub enum PriceAnswer<'a> {
    /// A market price from listings.
    Market { summary: &'a PriceSummary, listings: &'a [Listing], priced_at: DateTime<Utc> },
    /// Offers from the tenant's own price list.
    Own { offers: &'a [OwnOffer] },
    /// An AI estimate (market roubles, before the margin).
    Estimate { min: u64, max: u64 },
    /// Nothing found; `escalation` when an operator should search by hand.
    NotFound { escalation: Option<&'a Escalation> },
    /// The lookup failed.
    Failed,
}

/// The suggestions for `answer`, in the order they are offered: the reply, then the payment
/// methods after a price, or the escalation note after a not-found reply.
pub fn price_suggestions(ctx: &ReplyContext<'_>, answer: PriceAnswer<'_>) -> Vec<PriceSuggestion> {
    let mut out = Vec::new();
    match answer {
        PriceAnswer::Market { summary, listings, priced_at } if summary.min > 0 && summary.max > 0 => {
            out.push(market_reply(ctx, summary, listings, priced_at));
            out.extend(payment_reply(ctx));
        }
        PriceAnswer::Own { offers } if offers.iter().any(|o| o.price > 0) => {
            out.push(own_reply(ctx, offers));
            out.extend(payment_reply(ctx));
        }
        PriceAnswer::Estimate { min, max } if min > 0 && max >= min => {
            out.push(estimate_reply(ctx, min, max));
            out.extend(payment_reply(ctx));
        }
        PriceAnswer::NotFound { escalation } => {
            out.push(not_found_reply(ctx));
            out.extend(escalation.map(|e| escalation_suggestion(ctx.subject, e)));
        }
        PriceAnswer::Failed => out.push(failure_reply(ctx)),
        // An answer without a real price is no price.
        _ => out.push(not_found_reply(ctx)),
    }
    out
}

/// The template of `kind` to use: the tenant's when it is valid, else the default with the reason.
fn template(ctx: &ReplyContext<'_>, kind: TemplateKind, values: &TemplateValues) -> (String, Option<String>) {
    if let Some(content) = ctx.templates.get(&kind).filter(|c| !c.trim().is_empty()) {
        match render(kind, content, values) {
            Ok(r) => return (r.text, None),
            Err(e) => {
                let problem =
                    format!("the tenant's {} template is unusable ({e}); the default was used", kind.as_str());
                return (render_default(kind, values), Some(problem));
            }
        }
    }
    (render_default(kind, values), None)
}

fn render_default(kind: TemplateKind, values: &TemplateValues) -> String {
    render(kind, kind.default_content(), values).map(|r| r.text).unwrap_or_else(|e: TemplateError| e.to_string())
}

fn suggestion(kind: SuggestionKind, text: String, confidence: f64, problem: Option<String>) -> PriceSuggestion {
    PriceSuggestion { kind, text, intent: "price", confidence, autosend_block_reason: None, template_problem: problem }
}

/// Type words that make a name say what it is (no "Контрактные АКПП АКПП …").
const TYPE_WORDS: &[&str] = &["АКПП", "МКПП", "РКПП", "ВАРИАТОР", "CVT", "DSG", "РОБОТ", "КПП"];

fn names_type(name: &str) -> bool {
    let upper = name.to_uppercase();
    TYPE_WORDS.iter().any(|w| upper.contains(w))
}

/// The short reply: `Контрактные МКПП W5MBB есть в нескольких вариантах — от 55 000 до 95 000 ₽.
/// Цена зависит от пробега и состояния. Какой бюджет вас интересует?`; with one price `Контрактная КПП
/// W5MBB — цена 55 000 ₽. …`. Prices are offers (after the margin).
pub fn short_reply(display_name: &str, gearbox_type: Option<GearboxType>, min: u64, max: u64) -> String {
    let tail = "Цена зависит от пробега и состояния. Какой бюджет вас интересует?";
    if min >= max {
        let kpp = if names_type(display_name) { "" } else { " КПП" };
        format!("Контрактная{kpp} {display_name} — цена {} ₽. {tail}", format_number(min))
    } else {
        let label = if names_type(display_name) { String::new() } else { format!(" {}", gearbox_label(gearbox_type)) };
        format!(
            "Контрактные{label} {display_name} есть в нескольких вариантах — от {} до {} ₽. {tail}",
            format_number(min),
            format_number(max)
        )
    }
}

/// Whether the template used for `kind` places the price note itself.
fn places_note(ctx: &ReplyContext<'_>, kind: TemplateKind) -> bool {
    let content =
        ctx.templates.get(&kind).filter(|c| !c.trim().is_empty()).map_or(kind.default_content(), String::as_str);
    content.contains("price_note")
}

/// Lines added to price replies: the market range when the tenant shows it, and its note (unless
/// the template placed it).
fn extras(ctx: &ReplyContext<'_>, market: Option<(u64, u64, u32)>, with_note: bool) -> String {
    let mut s = String::new();
    if ctx.settings.show_market_range
        && let Some((min, max, count)) = market
    {
        s.push_str(&format!(
            "\nРыночные цены: от {} до {} ₽ (объявлений: {count}).",
            format_number(min),
            format_number(max)
        ));
    }
    let note = ctx.settings.price_note.trim();
    if with_note && !note.is_empty() {
        s.push('\n');
        s.push_str(note);
    }
    s
}

fn mileage_range(summary: &PriceSummary) -> Option<String> {
    match (summary.mileage_min, summary.mileage_max) {
        (Some(a), Some(b)) if a < b => {
            Some(format!("{} — {} км", format_number(u64::from(a)), format_number(u64::from(b))))
        }
        (Some(a), _) => Some(format!("до {} км", format_number(u64::from(a)))),
        _ => None,
    }
}

fn market_reply(
    ctx: &ReplyContext<'_>,
    summary: &PriceSummary,
    listings: &[Listing],
    priced_at: DateTime<Utc>,
) -> PriceSuggestion {
    let s = ctx.settings;
    let market = Some((summary.min, summary.max, summary.count));
    let name = ctx.subject.display_name();
    if let Some(tiers) = Tiers::of(listings, s) {
        let mut v = TemplateValues::new();
        v.set("transmission_model", name.as_str())
            .set_opt("oem", ctx.subject.oem.as_deref())
            .set("budget_price", format_number(s.sale_price(tiers.budget.0)))
            .set("budget_mileage", format_number(u64::from(tiers.budget.1)))
            .set("mid_price", format_number(s.sale_price(tiers.mid.0)))
            .set("mid_mileage", format_number(u64::from(tiers.mid.1)))
            .set("quality_price", format_number(s.sale_price(tiers.quality.0)))
            .set("quality_mileage", format_number(u64::from(tiers.quality.1)))
            .set("listings_count", summary.count.to_string())
            .set("date", format_date_msk(priced_at))
            .set("price_note", s.price_note.trim());
        let (text, problem) = template(ctx, TemplateKind::PriceOptions, &v);
        let text = format!("{text}{}", extras(ctx, market, !places_note(ctx, TemplateKind::PriceOptions)));
        return suggestion(SuggestionKind::PriceOptions, text, 0.85, problem);
    }
    let (min, max) = (s.sale_price(summary.min), s.sale_price(summary.max));
    if ctx.templates.get(&TemplateKind::PriceResult).is_some_and(|c| !c.trim().is_empty()) {
        let mut v = TemplateValues::new();
        v.set("transmission_model", name.as_str())
            .set_opt("oem", ctx.subject.oem.as_deref())
            .set("min_price", format_number(min))
            .set("max_price", format_number(max))
            .set("avg_price", format_number(s.sale_price(summary.mean)))
            .set("median_price", format_number(s.sale_price(summary.median)))
            .set("market_min_price", format_number(summary.min))
            .set("market_max_price", format_number(summary.max))
            .set_opt("car_brand", Some(ctx.subject.vehicle_line()).filter(|v| !v.is_empty()))
            .set("date", format_date_msk(priced_at))
            .set_opt("mileage_min", summary.mileage_min.map(|m| format_number(u64::from(m))))
            .set_opt("mileage_max", summary.mileage_max.map(|m| format_number(u64::from(m))))
            .set_opt("mileage_range", mileage_range(summary))
            .set("listings_count", summary.count.to_string())
            .set("price_note", s.price_note.trim());
        let (text, problem) = template(ctx, TemplateKind::PriceResult, &v);
        let text = format!("{text}{}", extras(ctx, market, !places_note(ctx, TemplateKind::PriceResult)));
        return suggestion(SuggestionKind::Price, text, 0.8, problem);
    }
    let text = format!("{}{}", short_reply(&name, ctx.subject.gearbox_type, min, max), extras(ctx, market, true));
    suggestion(SuggestionKind::Price, text, 0.8, None)
}

/// Offers by mileage: budget (unknown or above the middle tier), middle, best condition (up to the
/// low tier). Each is `(market price, mileage)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tiers {
    budget: (u64, u32),
    mid: (u64, u32),
    quality: (u64, u32),
}

impl Tiers {
    /// The tiers, when the listings have both best-condition and budget offers with a known
    /// mileage: budget = cheapest budget listing at the highest known budget mileage; quality =
    /// cheapest best-condition listing at the lowest mileage; middle = cheapest middle listing at
    /// the mean middle mileage, or halfway between the other two when there is none.
    fn of(listings: &[Listing], s: &PriceSettings) -> Option<Self> {
        let mut budget: Option<(u64, Option<u32>)> = None;
        let mut mid: Option<(u64, u64, u64)> = None; // (min price, mileage sum, count)
        let mut quality: Option<(u64, u32)> = None;
        for l in listings {
            match l.mileage_km {
                Some(m) if m <= s.mileage_low => {
                    quality = Some(quality.map_or((l.price, m), |(p, qm)| (p.min(l.price), qm.min(m))));
                }
                Some(m) if m <= s.mileage_mid => {
                    mid =
                        Some(mid.map_or((l.price, u64::from(m), 1), |(p, sum, n)| {
                            (p.min(l.price), sum + u64::from(m), n + 1)
                        }));
                }
                m => {
                    budget = Some(budget.map_or((l.price, m), |(p, bm)| (p.min(l.price), bm.max(m))));
                }
            }
        }
        let (budget_price, budget_mileage) = budget?;
        let budget = (budget_price, budget_mileage?);
        let quality = quality?;
        let mid = match mid {
            Some((price, sum, n)) => (price, u32::try_from((sum + n / 2) / n).unwrap_or(u32::MAX)),
            None => {
                let mileage = (u64::from(budget.1) + u64::from(quality.1)).div_ceil(2);
                ((budget.0 + quality.0).div_ceil(2), u32::try_from(mileage).unwrap_or(u32::MAX))
            }
        };
        Some(Self { budget, mid, quality })
    }
}

fn own_reply(ctx: &ReplyContext<'_>, offers: &[OwnOffer]) -> PriceSuggestion {
    let mut offers: Vec<&OwnOffer> = offers.iter().filter(|o| o.price > 0 && o.stock != Some(0)).collect();
    offers.sort_by_key(|o| o.price);
    let name = ctx.subject.display_name();
    let line = |o: &OwnOffer| {
        let condition = o.condition.as_deref().map(str::trim).filter(|c| !c.is_empty());
        match condition {
            Some(c) => format!("{} ₽, {c}", format_number(o.price)),
            None => format!("{} ₽", format_number(o.price)),
        }
    };
    let text = match offers.as_slice() {
        [] => return not_found_reply(ctx),
        [one] => format!("Есть в наличии: {name} — {}. Готов ответить на все вопросы!", line(one)),
        many => {
            let lines: Vec<String> = many.iter().take(3).map(|o| format!("• {}", line(o))).collect();
            format!("Есть в наличии: {name}\n{}\nКакой вариант вам подходит?", lines.join("\n"))
        }
    };
    suggestion(SuggestionKind::OwnOffer, format!("{text}{}", extras(ctx, None, true)), 0.9, None)
}

fn estimate_reply(ctx: &ReplyContext<'_>, min: u64, max: u64) -> PriceSuggestion {
    let s = ctx.settings;
    let (lo, hi) = (s.sale_price(min), s.sale_price(max));
    let name = ctx.subject.display_name();
    let kpp = if names_type(&name) { "" } else { " КПП" };
    let range = if lo >= hi {
        format!("около {} ₽", format_number(lo))
    } else {
        format!("от {} до {} ₽", format_number(lo), format_number(hi))
    };
    let text = format!(
        "Предварительная оценка для контрактной{kpp} {name}: {range}. Это ориентир, точную стоимость уточним и сообщим. Какой бюджет вас интересует?{}",
        extras(ctx, None, true)
    );
    suggestion(SuggestionKind::Estimate, text, 0.5, None)
}

fn not_found_reply(ctx: &ReplyContext<'_>) -> PriceSuggestion {
    let mut v = TemplateValues::new();
    v.set("transmission_model", ctx.subject.display_name())
        .set_opt("oem", ctx.subject.oem.as_deref())
        .set_opt("car_brand", Some(ctx.subject.vehicle_line()).filter(|v| !v.is_empty()));
    let (text, problem) = template(ctx, TemplateKind::NotFound, &v);
    suggestion(SuggestionKind::NotFound, text, 0.5, problem)
}

fn failure_reply(ctx: &ReplyContext<'_>) -> PriceSuggestion {
    let mut s = not_found_reply(ctx);
    s.kind = SuggestionKind::Failure;
    s.confidence = 0.3;
    s
}

/// The active payment methods by `order` as a list: `• title` with the description indented on
/// the next line. `None` when the tenant has none.
pub fn payment_methods_list(methods: &[PaymentMethod]) -> Option<String> {
    let mut active: Vec<&PaymentMethod> = methods.iter().filter(|m| m.active && !m.title.trim().is_empty()).collect();
    active.sort_by_key(|m| m.order);
    let lines: Vec<String> = active
        .iter()
        .map(|m| match m.description.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
            Some(d) => format!("• {}\n  {d}", m.title.trim()),
            None => format!("• {}", m.title.trim()),
        })
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

fn payment_reply(ctx: &ReplyContext<'_>) -> Option<PriceSuggestion> {
    let list = payment_methods_list(ctx.payment_methods)?;
    let mut v = TemplateValues::new();
    v.set("payment_methods", list);
    let (text, problem) = template(ctx, TemplateKind::PaymentOptions, &v);
    Some(suggestion(SuggestionKind::PaymentOptions, text, 0.9, problem))
}

/// What an operator needs to find a price by hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalation {
    pub reason: String,
    /// Queries to paste into a search engine.
    pub ready_queries: Vec<String>,
    /// Pages the automatic search already read.
    pub urls_checked: Vec<String>,
    /// Sites worth a manual look.
    pub suggested_sites: Vec<String>,
}

/// Sites an operator is pointed to.
pub const SUGGESTED_SITES: &[&str] = &[
    "baza.drom.ru — поиск по OEM",
    "farpost.ru — особенно для регионов ДВ",
    "japancar.ru — японские КПП",
    "ebay.com — международный поиск",
    "aucfree.com — Yahoo Auctions Japan",
    "jdmbuysell.com — JDM запчасти",
];

fn english_label(t: Option<GearboxType>) -> &'static str {
    match t {
        Some(GearboxType::Automatic) => "automatic transmission",
        Some(GearboxType::Manual) => "manual transmission",
        Some(GearboxType::Cvt) => "CVT",
        Some(GearboxType::Dct) => "DSG",
        Some(GearboxType::Amt) => "automated manual transmission",
        None => "transmission",
    }
}

/// The ready queries of the old manual-search escalation, without gaps for what is unknown: `купить <L> <code> б/у`,
/// `контрактная <L> <make> <model> <code>`, `<L> <code> цена разборка`, `used <type> <code> buy`,
/// and with a model name other than the code `<name> transmission <code> for sale` and `JDM <name>
/// gearbox <code>`.
pub fn ready_queries(subject: &PriceSubject) -> Vec<String> {
    let label = gearbox_label(subject.gearbox_type);
    let code = subject.code().map(str::to_string).unwrap_or_else(|| subject.vehicle_line());
    let vehicle =
        [subject.make.as_deref(), subject.model.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(" ");
    let name = subject.model_name().filter(|n| Some(*n) != subject.code());
    let mut queries = vec![
        format!("купить {label} {code} б/у"),
        format!("контрактная {label} {vehicle} {code}"),
        format!("{label} {code} цена разборка"),
        format!("used {} {code} buy", english_label(subject.gearbox_type)),
    ];
    if let Some(name) = name {
        queries.push(format!("{name} transmission {code} for sale"));
        queries.push(format!("JDM {name} gearbox {code}"));
    }
    let mut out: Vec<String> = Vec::new();
    for q in queries {
        let q = q.split_whitespace().collect::<Vec<_>>().join(" ");
        if !out.contains(&q) {
            out.push(q);
        }
    }
    out
}

/// The escalation for `subject` after checking `urls_checked`.
pub fn escalation(subject: &PriceSubject, urls_checked: &[String]) -> Escalation {
    let what = match &subject.oem {
        Some(oem) => format!("OEM {oem}"),
        None => subject.display_name(),
    };
    Escalation {
        reason: format!("Недостаточно цен в РФ сегменте для {what}"),
        ready_queries: ready_queries(subject),
        urls_checked: urls_checked.to_vec(),
        suggested_sites: SUGGESTED_SITES.iter().map(|s| s.to_string()).collect(),
    }
}

/// `1 источник`, `3 источника`, `5 источников`.
fn sources_word(n: usize) -> &'static str {
    match (n % 10, n % 100) {
        (1, r) if r != 11 => "источник",
        (2..=4, r) if !(12..=14).contains(&r) => "источника",
        _ => "источников",
    }
}

/// The operator's note: what to search, for which vehicle, three ready queries, and up to five
/// pages already checked.
pub fn escalation_text(subject: &PriceSubject, e: &Escalation) -> String {
    let name = subject.model_name().map(str::to_string).or_else(|| subject.code().map(str::to_string));
    let mut s = String::from("🔍 Требуется ручной поиск цены\n");
    match (name, &subject.oem) {
        (Some(name), Some(oem)) if &name != oem => s.push_str(&format!("КПП: {name} (OEM: {oem})\n")),
        (Some(name), _) => s.push_str(&format!("КПП: {name}\n")),
        (None, _) => s.push_str(&format!("КПП: {}\n", subject.display_name())),
    }
    let vehicle = subject.vehicle_line();
    if !vehicle.is_empty() {
        s.push_str(&format!("Авто: {vehicle}\n"));
    }
    s.push_str("\nГотовые запросы для поиска:\n");
    for q in e.ready_queries.iter().take(3) {
        s.push_str(&format!("• {q}\n"));
    }
    if !e.urls_checked.is_empty() {
        let n = e.urls_checked.len();
        s.push_str(&format!("\nУже проверено ({n} {}):\n", sources_word(n)));
        for url in e.urls_checked.iter().take(5) {
            s.push_str(&format!("• {url}\n"));
        }
    }
    s.trim_end().to_string()
}

fn escalation_suggestion(subject: &PriceSubject, e: &Escalation) -> PriceSuggestion {
    PriceSuggestion {
        kind: SuggestionKind::Escalation,
        text: escalation_text(subject, e),
        intent: "escalation",
        confidence: 1.0,
        autosend_block_reason: Some("manual_price_search_required"),
        template_problem: None,
    }
}

#[cfg(test)]
mod tests;
