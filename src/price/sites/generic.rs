//! The fallback for any page: structured data first (JSON-LD `Product`/`Offer`, schema.org
//! microdata, OpenGraph product prices), then prices written in the text next to a gearbox word.

use std::sync::LazyLock;

use regex::Regex;
use scraper::ElementRef;
use scraper::node::Node;
use serde_json::Value;

use super::{
    Page, RawListing, clip_title, collapse, itemprop_value, meta_content, mileage_in, mileage_of, price_chars,
    selector, structured, text_of,
};

/// Listings from structured data, else from price text near gearbox words.
pub(super) fn parse(page: &Page<'_>) -> Vec<RawListing> {
    let structured = structured_data(page);
    if !structured.is_empty() {
        return structured;
    }
    text_prices(page)
}

/// JSON-LD, then microdata, then OpenGraph: the first that gives priced listings.
pub(super) fn structured_data(page: &Page<'_>) -> Vec<RawListing> {
    let from_json = json_ld(page);
    if !from_json.is_empty() {
        return from_json;
    }
    let from_microdata = microdata(page);
    if !from_microdata.is_empty() {
        return from_microdata;
    }
    open_graph(page).into_iter().collect()
}

// ---------------------------------------------------------------------------------------------
// JSON-LD

/// Deepest nesting followed inside one JSON-LD block.
const JSON_MAX_DEPTH: usize = 8;

fn json_ld(page: &Page<'_>) -> Vec<RawListing> {
    selector!(LD_JSON, "script[type='application/ld+json'], script[type='application/ld+json; charset=utf-8']");
    let mut out = Vec::new();
    for script in page.doc.select(&LD_JSON) {
        let text: String = script.text().collect();
        let trimmed = text.trim().trim_start_matches("<!--").trim_end_matches("-->").trim().trim_end_matches(';');
        let Ok(value) = serde_json::from_str::<Value>(trimmed) else {
            continue;
        };
        collect_json(page, &value, 0, &mut out);
    }
    dedup(out)
}

fn types_of(obj: &serde_json::Map<String, Value>) -> Vec<&str> {
    match obj.get("@type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn is_type(types: &[&str], wanted: &[&str]) -> bool {
    types.iter().any(|t| {
        let local = t.rsplit(['/', ':']).next().unwrap_or(t);
        wanted.iter().any(|w| local.eq_ignore_ascii_case(w))
    })
}

const PRODUCT_TYPES: &[&str] = &["Product", "IndividualProduct", "ProductModel", "SomeProducts", "Car", "Vehicle"];
const OFFER_TYPES: &[&str] = &["Offer", "AggregateOffer"];

fn collect_json(page: &Page<'_>, value: &Value, depth: usize, out: &mut Vec<RawListing>) {
    if depth > JSON_MAX_DEPTH {
        return;
    }
    match value {
        Value::Array(items) => items.iter().for_each(|v| collect_json(page, v, depth + 1, out)),
        Value::Object(obj) => {
            let types = types_of(obj);
            if is_type(&types, PRODUCT_TYPES) {
                out.extend(json_product(page, obj, None));
            } else if is_type(&types, OFFER_TYPES) {
                let offered = obj.get("itemOffered").and_then(Value::as_object);
                match offered {
                    Some(product) => out.extend(json_product(page, product, Some(obj))),
                    None => out.extend(json_product(page, obj, Some(obj))),
                }
            } else {
                // ItemList, WebPage, @graph…: look inside.
                for (key, v) in obj {
                    if !key.starts_with("@context") {
                        collect_json(page, v, depth + 1, out);
                    }
                }
            }
        }
        _ => {}
    }
}

fn json_str(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(collapse(s)).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(o) => json_str(o.get("name").or_else(|| o.get("@id"))),
        Value::Array(items) => items.iter().find_map(|v| json_str(Some(v))),
        _ => None,
    }
}

/// (amount, currency) of the first priced offer in `offers` (an object or a list).
fn json_offer_price(offers: &Value) -> Option<(String, Option<String>)> {
    match offers {
        Value::Array(items) => items.iter().find_map(json_offer_price),
        Value::Object(offer) => {
            let currency = json_str(offer.get("priceCurrency"));
            let amount = json_str(offer.get("price"))
                .or_else(|| json_str(offer.get("lowPrice")))
                .filter(|a| super::parse_amount(a).is_some());
            if let Some(amount) = amount {
                return Some((amount, currency));
            }
            let spec = offer.get("priceSpecification")?;
            let (amount, spec_currency) = json_offer_price(spec)?;
            Some((amount, spec_currency.or(currency)))
        }
        _ => None,
    }
}

fn json_product(
    page: &Page<'_>,
    product: &serde_json::Map<String, Value>,
    offer: Option<&serde_json::Map<String, Value>>,
) -> Option<RawListing> {
    let (amount, currency) = match offer {
        Some(offer) => json_offer_price(&Value::Object(offer.clone()))?,
        None => json_offer_price(product.get("offers")?)?,
    };
    let price = structured(page, Some(&amount), currency.as_deref())?;
    let title = json_str(product.get("name")).or_else(|| page.heading())?;
    let url = json_str(product.get("url"))
        .or_else(|| offer.and_then(|o| json_str(o.get("url"))))
        .or_else(|| product.get("offers").and_then(|o| json_str(o.get("url"))))
        .and_then(|u| page.absolute(&u));
    let mileage = product
        .get("mileageFromOdometer")
        .and_then(|m| json_str(m.get("value")).map(|v| format!("{v} км")))
        .or_else(|| json_str(product.get("description")).and_then(|d| mileage_in(&d)));
    Some(page.listing(url, clip_title(title), None, Some(price), mileage))
}

// ---------------------------------------------------------------------------------------------
// Microdata

selector!(
    PRODUCT_SCOPE,
    "[itemscope][itemtype*='schema.org/Product'], [itemscope][itemtype*='schema.org/IndividualProduct'], \
     [itemscope][itemtype*='schema.org/Car'], [itemscope][itemtype*='schema.org/Vehicle']"
);
selector!(OFFER_SCOPE, "[itemscope][itemtype*='schema.org/Offer'], [itemscope][itemtype*='schema.org/AggregateOffer']");
selector!(ITEMPROP, "[itemprop]");

fn has_prop(el: ElementRef<'_>, name: &str) -> bool {
    el.attr("itemprop").is_some_and(|p| p.split_whitespace().any(|n| n == name))
}

/// The nearest `itemscope` element above `el` (not `el` itself).
fn scope_of<'a>(el: ElementRef<'a>) -> Option<ElementRef<'a>> {
    el.ancestors().filter_map(ElementRef::wrap).find(|a| a.attr("itemscope").is_some())
}

/// The properties of `scope`: `[itemprop]` descendants whose nearest scope is `scope`.
fn props_of<'a>(scope: ElementRef<'a>) -> impl Iterator<Item = ElementRef<'a>> {
    scope.select(&ITEMPROP).filter(move |p| scope_of(*p).is_some_and(|s| s.id() == scope.id()))
}

fn microdata(page: &Page<'_>) -> Vec<RawListing> {
    let mut out = Vec::new();
    for product in page.doc.select(&PRODUCT_SCOPE) {
        let offers: Vec<ElementRef<'_>> =
            props_of(product).filter(|p| has_prop(*p, "offers") && p.attr("itemscope").is_some()).collect();
        let name = props_of(product).find(|p| has_prop(*p, "name")).and_then(itemprop_value);
        let Some(price) = microdata_price(page, product, &offers) else {
            continue;
        };
        let Some(title) = name.or_else(|| page.heading()) else {
            continue;
        };
        let url = props_of(product)
            .find(|p| has_prop(*p, "url"))
            .and_then(itemprop_value)
            .and_then(|u| page.absolute(&u))
            .or_else(|| props_of(product).find(|p| has_prop(*p, "name")).and_then(|n| link_around(page, n)))
            .or_else(|| {
                // A product in a list (not the page's own product, which holds the h1) links to its page.
                selector!(PAGE_H1, "h1");
                product.select(&PAGE_H1).next().is_none().then(|| super::first_link(page, product)).flatten()
            });
        let mileage = mileage_of(product);
        out.push(page.listing(url, clip_title(title), price.0, price.1, mileage));
    }
    // Offers that belong to no product: an offer page.
    for offer in page.doc.select(&OFFER_SCOPE) {
        if offer.ancestors().filter_map(ElementRef::wrap).any(|a| PRODUCT_SCOPE.matches(&a)) {
            continue;
        }
        let Some(price) = microdata_price(page, offer, &[offer]) else {
            continue;
        };
        let offered = props_of(offer).find(|p| has_prop(*p, "itemOffered"));
        let name = props_of(offer)
            .find(|p| has_prop(*p, "name"))
            .or_else(|| offered.and_then(|o| props_of(o).find(|p| has_prop(*p, "name"))))
            .and_then(itemprop_value);
        let Some(title) = name.or_else(|| page.heading()) else {
            continue;
        };
        let url =
            props_of(offer).find(|p| has_prop(*p, "url")).and_then(itemprop_value).and_then(|u| page.absolute(&u));
        out.push(page.listing(url, clip_title(title), price.0, price.1, mileage_of(offer)));
    }
    dedup(out)
}

type PricePair = (Option<String>, Option<super::StructuredPrice>);

/// The price of a product (or offer) scope: its `price`/`lowPrice` property, directly or in one of
/// its offers; the visible text and the structured value.
fn microdata_price(page: &Page<'_>, scope: ElementRef<'_>, offers: &[ElementRef<'_>]) -> Option<PricePair> {
    let scopes = std::iter::once(scope).chain(offers.iter().copied());
    for s in scopes {
        let Some(price_el) = props_of(s).find(|p| has_prop(*p, "price") || has_prop(*p, "lowPrice")) else {
            continue;
        };
        let currency = props_of(s).find(|p| has_prop(*p, "priceCurrency")).and_then(itemprop_value);
        let raw = price_el.attr("content").map(str::to_string).or_else(|| Some(text_of(price_el)));
        let structured = structured(page, raw.as_deref(), currency.as_deref());
        let mut text = page.price_text_of(price_el, Some(s));
        if text.is_none() {
            // `<meta itemprop=price content=…>` next to the shown price: the scope's short text.
            let shown = price_chars(&s.text().collect::<String>());
            if shown.chars().any(|c| c.is_ascii_digit()) && shown.chars().count() <= 40 && super::has_currency(&shown) {
                text = Some(shown);
            }
        }
        if text.is_some() || structured.is_some() {
            return Some((text, structured));
        }
    }
    None
}

/// The link wrapping or inside a name element.
fn link_around(page: &Page<'_>, el: ElementRef<'_>) -> Option<String> {
    el.ancestors()
        .filter_map(ElementRef::wrap)
        .take(3)
        .find(|a| a.value().name() == "a")
        .and_then(|a| a.attr("href"))
        .and_then(|h| page.absolute(h))
        .or_else(|| {
            selector!(INNER_A, "a[href]");
            el.select(&INNER_A).next().and_then(|a| a.attr("href")).and_then(|h| page.absolute(h))
        })
}

// ---------------------------------------------------------------------------------------------
// OpenGraph

fn open_graph(page: &Page<'_>) -> Option<RawListing> {
    let amount = ["product:price:amount", "og:price:amount", "product:sale_price:amount"]
        .iter()
        .find_map(|k| meta_content(page.doc, k))?;
    let currency = ["product:price:currency", "og:price:currency", "product:sale_price:currency"]
        .iter()
        .find_map(|k| meta_content(page.doc, k));
    let price = structured(page, Some(&amount), currency.as_deref())?;
    let title = meta_content(page.doc, "og:title").or_else(|| page.heading())?;
    let url = meta_content(page.doc, "og:url").and_then(|u| page.absolute(&u));
    let mileage = meta_content(page.doc, "og:description").and_then(|d| mileage_in(&d));
    Some(page.listing(url, clip_title(title), None, Some(price), mileage))
}

// ---------------------------------------------------------------------------------------------
// Price text near gearbox words

/// Most listings read from the text of one page.
const TEXT_MAX_LISTINGS: usize = 20;

/// Words that say a line is about a gearbox.
pub(crate) const GEARBOX_WORDS: &[&str] =
    &["акпп", "мкпп", "кпп", "вариатор", "коробк", "трансмисси", "робот", "cvt", "dsg", "автомат"];

/// A price in running text: an optional "от", an optional range start, the amount, the currency
/// (`₽`, `руб.`, `р.`, `т.р.`, `тыс. руб.`, `RUB`).
static PRICE_TEXT: LazyLock<Regex> = LazyLock::new(|| {
    let number = r"(?:\d{1,3}(?:[ \u{a0}\u{202f}]\d{3})+|\d+)(?:[.,]\d+)?";
    let range_start = r"(?:\d{1,3}(?:[ \u{a0}\u{202f}]\d{3})+|\d{3,})";
    Regex::new(&format!(
        r"(?i)(?P<from>\bот\s*)?(?:(?P<start>{range_start})\s*(?:[-–—]|до)\s*)?(?P<amount>{number})\s*(?:тыс\.?\s*(?:руб(?:лей|\.)?|р\.?|₽)|т\.\s*р\.?|₽|руб(?:лей|ля|ль|\.)?|р\.|р\b|rub\b|rur\b)"
    ))
    .expect("valid regex")
});

/// The price text of a match; a "range" whose start is a year or far below its end (`2008 -
/// 85 000 руб.`) is cut to its amount.
fn price_match(line: &str) -> Option<String> {
    let caps = PRICE_TEXT.captures(line)?;
    let whole = caps.get(0)?;
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>().parse::<u64>().ok();
    if let (Some(start), Some(amount)) = (caps.name("start"), caps.name("amount")) {
        let start_value = digits(start.as_str()).unwrap_or(0);
        let amount_value = digits(amount.as_str()).unwrap_or(0);
        let year = start.as_str().len() == 4 && (1950..=2035).contains(&start_value);
        if year || start_value.saturating_mul(10) < amount_value {
            return Some(price_chars(&line[amount.start()..whole.end()]));
        }
    }
    Some(price_chars(whole.as_str()))
}

fn mentions_gearbox(line: &str) -> bool {
    let lower = line.to_lowercase();
    GEARBOX_WORDS.iter().any(|w| lower.contains(w))
}

fn text_prices(page: &Page<'_>) -> Vec<RawListing> {
    selector!(BODY, "body");
    let Some(body) = page.doc.select(&BODY).next() else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    let mut current = String::new();
    text_lines(body, &mut current, &mut lines);
    lines.push(current);
    let lines: Vec<String> = lines.iter().map(|l| price_chars(l)).filter(|l| !l.is_empty()).collect();

    let mut out: Vec<RawListing> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(price_text) = price_match(line) else {
            continue;
        };
        let title = if mentions_gearbox(line) {
            collapse(line)
        } else {
            match i.checked_sub(1).map(|p| &lines[p]) {
                Some(prev) if mentions_gearbox(prev) && !PRICE_TEXT.is_match(prev) => {
                    collapse(&format!("{prev} {line}"))
                }
                _ => continue,
            }
        };
        let listing = page.listing(None, clip_title(title), Some(price_text), None, mileage_in(line));
        if !out.iter().any(|l| l.title == listing.title && l.price_text == listing.price_text) {
            out.push(listing);
        }
        if out.len() >= TEXT_MAX_LISTINGS {
            break;
        }
    }
    out
}

/// Elements whose boundaries end a line of text.
fn is_block(name: &str) -> bool {
    matches!(
        name,
        "p" | "div"
            | "li"
            | "ul"
            | "ol"
            | "tr"
            | "table"
            | "tbody"
            | "thead"
            | "section"
            | "article"
            | "header"
            | "footer"
            | "main"
            | "aside"
            | "nav"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "dd"
            | "dt"
            | "dl"
            | "blockquote"
            | "pre"
            | "form"
            | "figure"
            | "figcaption"
            | "address"
            | "hr"
            | "br"
    )
}

pub(super) fn text_lines(el: ElementRef<'_>, current: &mut String, lines: &mut Vec<String>) {
    // Walked without recursion: a page may nest elements tens of thousands deep.
    let root = *el;
    let breaks = |node: &scraper::Node, current: &mut String, lines: &mut Vec<String>| {
        if let Node::Element(e) = node {
            if is_block(e.name()) {
                lines.push(std::mem::take(current));
            } else if matches!(e.name(), "td" | "th") {
                current.push(' ');
            }
        }
    };
    let mut next = root.first_child();
    while let Some(node) = next {
        let entered = match node.value() {
            Node::Text(text) => {
                current.push_str(text);
                false
            }
            Node::Element(e) if !is_hidden(e.name()) => {
                breaks(node.value(), current, lines);
                true
            }
            _ => false,
        };
        if entered {
            if let Some(child) = node.first_child() {
                next = Some(child);
                continue;
            }
            breaks(node.value(), current, lines);
        }
        let mut at = node;
        next = loop {
            if let Some(sibling) = at.next_sibling() {
                break Some(sibling);
            }
            match at.parent() {
                Some(parent) if parent.id() != root.id() => {
                    breaks(parent.value(), current, lines);
                    at = parent;
                }
                _ => break None,
            }
        };
    }
}

/// Elements whose content is never shown as text.
fn is_hidden(name: &str) -> bool {
    matches!(name, "script" | "style" | "noscript" | "template" | "svg" | "head" | "select" | "option")
}

/// The first listing of each URL and title (structured data often repeats a product).
fn dedup(listings: Vec<RawListing>) -> Vec<RawListing> {
    let mut out: Vec<RawListing> = Vec::with_capacity(listings.len());
    for l in listings {
        if !out.iter().any(|o| o.url == l.url && o.title == l.title) {
            out.push(l);
        }
    }
    out
}
