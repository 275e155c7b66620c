//! Listing-page parsers, one per site family, and a generic fallback.
//!
//! [`parse_listings`] picks the family from the page's real domain ([`SiteFamily::of`]), runs its
//! parser and, when that finds nothing, the generic one (JSON-LD, microdata, OpenGraph, then price
//! text near gearbox words). Every parser answers [`RawListing`]s: absolute URL, the real site,
//! the title, and the price and mileage as the page wrote them. Structured prices (`itemprop=price
//! content=…`, JSON-LD `price`) are kept as numbers in [`StructuredPrice`], so a price the page
//! shows only in an attribute is not lost. Judging the texts (is it a whole gearbox, is the price
//! plausible) is left to `aisales_domain::price`.
//!
//! Parsing is pure and synchronous: `&str` in, listings out.

mod avito;
mod bulls;
mod cards;
mod catalog;
mod drom;
mod farpost;
mod generic;

use std::sync::LazyLock;

use regex::Regex;
use reqwest::Url;
use scraper::{ElementRef, Html, Selector};
use serde::{Deserialize, Serialize};

use super::domain_matches;

/// One listing as a page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawListing {
    /// Absolute URL of the listing (the page's own URL when the listing has no link of its own).
    pub url: String,
    /// The real domain of the page the listing was read from, without `www.`.
    pub site: String,
    /// The listing's title, whitespace collapsed.
    pub title: String,
    /// The price as the page shows it (`"85 000 ₽"`, `"от 70 000 руб."`, `"90 т.р."`), NBSP kept.
    /// A bare number in a dedicated price field of a site that quotes in roubles gets ` ₽`.
    pub price_text: Option<String>,
    /// A machine-readable price (microdata `content`, JSON-LD, OpenGraph), when the page has one.
    pub structured_price: Option<StructuredPrice>,
    /// A mileage fragment found in the listing (`"пробег 65 000 км"`, `"45 тыс. км"`), NBSP kept.
    pub mileage_text: Option<String>,
}

/// A price given as data rather than text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StructuredPrice {
    /// Whole units of `currency` (fractions rounded); never zero.
    pub amount: u64,
    /// ISO 4217 code, upper case (`RUR` is read as `RUB`).
    pub currency: String,
}

/// The site families with a parser of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SiteFamily {
    /// avito.ru: item cards (`[data-marker=item]`) and item pages.
    Avito,
    /// baza.drom.ru and drom.ru: bulletins, old table markup and the newer `data-ftid` markup.
    Drom,
    /// farpost.ru: the same bulletin engine as drom, plus its own list markup.
    Farpost,
    /// Contract-parts catalogues (japancar.ru, dvsavto.ru, kor-motor.ru, avtgr.ru, qx9.ru,
    /// bibika.ru): product cards and price tables.
    Catalog,
    /// Anything else: structured data and price text only.
    Generic,
}

/// Domains read as catalogues.
pub const CATALOG_DOMAINS: &[&str] = &["japancar.ru", "dvsavto.ru", "kor-motor.ru", "avtgr.ru", "qx9.ru", "bibika.ru"];

impl SiteFamily {
    /// The family of a site (a host, with or without `www.`).
    pub fn of(site: &str) -> SiteFamily {
        let host = site.trim_end_matches('.').to_ascii_lowercase();
        if domain_matches(&host, "avito.ru") {
            SiteFamily::Avito
        } else if domain_matches(&host, "drom.ru") {
            SiteFamily::Drom
        } else if domain_matches(&host, "farpost.ru") {
            SiteFamily::Farpost
        } else if CATALOG_DOMAINS.iter().any(|d| domain_matches(&host, d)) {
            SiteFamily::Catalog
        } else {
            SiteFamily::Generic
        }
    }

    /// The wire name (`avito`, `drom`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            SiteFamily::Avito => "avito",
            SiteFamily::Drom => "drom",
            SiteFamily::Farpost => "farpost",
            SiteFamily::Catalog => "catalog",
            SiteFamily::Generic => "generic",
        }
    }

    /// Whether the family's sites quote prices in roubles, so a bare number in a price field is
    /// roubles.
    fn quotes_roubles(self) -> bool {
        !matches!(self, SiteFamily::Generic)
    }
}

/// The site name of a URL: its host, lower case, without `www.` and a trailing dot.
pub fn site_of(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default().trim_end_matches('.').to_ascii_lowercase();
    host.strip_prefix("www.").map(str::to_string).unwrap_or(host)
}

/// A page nested deeper than this many elements has no listings: real listing pages stay far
/// below it (browsers' own HTML parsers stop nesting at 512), and the card heuristics look at an
/// element's whole subtree, which on such a page would cost the square of its size.
pub const MAX_NESTING: usize = 512;

/// Reads the listings of a page. `page_url` is the page's real URL (links are made absolute
/// against it and the site is its domain), `html` the decoded document.
pub fn parse_listings(page_url: &Url, html: &str) -> Vec<RawListing> {
    let too_deep = || {
        tracing::warn!(site = %site_of(page_url), "page nested deeper than {MAX_NESTING} elements; not read");
        Vec::new()
    };
    // The HTML reader spends time in proportion to size × depth, so a page whose tags alone
    // nest far too deep is not even read.
    if tag_nesting(html, 4 * MAX_NESTING) > 4 * MAX_NESTING {
        return too_deep();
    }
    let doc = Html::parse_document(html);
    if nested_deeper_than(&doc, MAX_NESTING) {
        return too_deep();
    }
    let page = Page::new(page_url, &doc);
    let own = match page.family {
        SiteFamily::Avito => avito::parse(&page),
        SiteFamily::Drom => drom::parse(&page),
        SiteFamily::Farpost => farpost::parse(&page),
        SiteFamily::Catalog => catalog::parse(&page),
        SiteFamily::Generic => Vec::new(),
    };
    if !own.is_empty() {
        return own;
    }
    generic::parse(&page)
}

/// How deep the elements of `html` nest, read from its tags alone (stopping once past `stop_at`):
/// elements that HTML closes by itself (void ones, `p`, `li`, table cells, a new `a`, …) and raw text
/// (`script`, `style`, comments) do not count, so a well-formed page never reads deeper than its
/// tree, and unbalanced closing tags only make the figure smaller.
pub(crate) fn tag_nesting(html: &str, stop_at: usize) -> usize {
    const NOT_NESTING: &[&str] = &[
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr", "param",
        "keygen", "p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup", "thead", "tbody", "tfoot", "colgroup",
        "rp", "rt", "html", "head", "body",
        // A new one closes an open one (HTML's parsing rules), so sloppy pages that never close them
        // do not nest them either.
        "a", "nobr", "button", "form",
    ];
    const RAW_TEXT: &[&str] = &["script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes"];
    let bytes = html.as_bytes();
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    let name_at = |from: usize| {
        let end = bytes[from..].iter().position(|b| !b.is_ascii_alphanumeric()).map_or(bytes.len(), |n| from + n);
        (html[from..end].to_ascii_lowercase(), end)
    };
    let find = |from: usize, needle: &[u8]| {
        bytes[from..].windows(needle.len()).position(|w| w.eq_ignore_ascii_case(needle)).map(|n| from + n)
    };
    while let Some(lt) = bytes[i..].iter().position(|&b| b == b'<').map(|n| i + n) {
        let next = bytes.get(lt + 1).copied().unwrap_or(0);
        if bytes[lt..].starts_with(b"<!--") {
            i = find(lt + 4, b"-->").map_or(bytes.len(), |n| n + 3);
        } else if next == b'/' && bytes.get(lt + 2).is_some_and(u8::is_ascii_alphabetic) {
            let (name, end) = name_at(lt + 2);
            if !NOT_NESTING.contains(&name.as_str()) {
                depth = depth.saturating_sub(1);
            }
            i = find(end, b">").map_or(bytes.len(), |n| n + 1);
        } else if next.is_ascii_alphabetic() {
            let (name, end) = name_at(lt + 1);
            let close = find(end, b">").unwrap_or(bytes.len());
            let self_closing = close > 0 && bytes.get(close - 1) == Some(&b'/');
            i = (close + 1).min(bytes.len());
            if RAW_TEXT.contains(&name.as_str()) {
                let closing = format!("</{name}");
                i = find(i, closing.as_bytes()).unwrap_or(bytes.len());
            } else if !self_closing && !NOT_NESTING.contains(&name.as_str()) {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest > stop_at {
                    return deepest;
                }
            }
        } else if next == b'!' || next == b'?' {
            i = find(lt + 1, b">").map_or(bytes.len(), |n| n + 1);
        } else {
            i = lt + 1;
        }
    }
    deepest
}

/// Whether any node of `doc` lies more than `limit` levels below the root (walked without
/// recursion, stopping at the first such node).
fn nested_deeper_than(doc: &Html, limit: usize) -> bool {
    let root = doc.tree.root();
    let mut next = root.first_child().map(|c| (c, 1usize));
    while let Some((node, depth)) = next {
        if depth > limit {
            return true;
        }
        if let Some(child) = node.first_child() {
            next = Some((child, depth + 1));
            continue;
        }
        let mut at = node;
        let mut level = depth;
        next = loop {
            if let Some(sibling) = at.next_sibling() {
                break Some((sibling, level));
            }
            match at.parent() {
                Some(parent) if parent.id() != root.id() => {
                    at = parent;
                    level -= 1;
                }
                _ => break None,
            }
        };
    }
    false
}

/// A parsed page and what every parser needs to know about it.
pub(crate) struct Page<'a> {
    pub url: &'a Url,
    pub site: String,
    pub family: SiteFamily,
    pub doc: &'a Html,
}

impl<'a> Page<'a> {
    fn new(url: &'a Url, doc: &'a Html) -> Self {
        let site = site_of(url);
        Page { url, family: SiteFamily::of(&site), site, doc }
    }

    /// A listing of this page.
    fn listing(
        &self,
        url: Option<String>,
        title: String,
        price_text: Option<String>,
        structured_price: Option<StructuredPrice>,
        mileage_text: Option<String>,
    ) -> RawListing {
        RawListing {
            url: url.unwrap_or_else(|| self.own_url()),
            site: self.site.clone(),
            title,
            price_text,
            structured_price,
            mileage_text,
        }
    }

    /// The page's URL without its fragment.
    fn own_url(&self) -> String {
        let mut url = self.url.clone();
        url.set_fragment(None);
        url.to_string()
    }

    /// `href` made absolute against the page; `None` for empty, fragment-only and non-http links.
    fn absolute(&self, href: &str) -> Option<String> {
        let href = href.trim();
        if href.is_empty() || href.starts_with('#') {
            return None;
        }
        let mut url = self.url.join(href).ok()?;
        if !matches!(url.scheme(), "http" | "https") {
            return None;
        }
        url.set_fragment(None);
        Some(url.to_string())
    }

    /// The page's heading: `h1`, else `og:title`, else `<title>`.
    fn heading(&self) -> Option<String> {
        first_text(self.doc.root_element(), &H1)
            .or_else(|| meta_content(self.doc, "og:title"))
            .or_else(|| first_text(self.doc.root_element(), &TITLE))
    }

    /// A price field's text: the element's own text, or its parent's when only the parent shows
    /// the currency (`<span>85 000</span> ₽`); ` ₽` is added to a bare number on rouble sites.
    fn price_text_of(&self, el: ElementRef<'_>, card: Option<ElementRef<'_>>) -> Option<String> {
        let own = shown_text(el);
        if !own.chars().any(|c| c.is_ascii_digit()) {
            return None;
        }
        if has_currency(&own) {
            return Some(own);
        }
        let inside_card =
            |p: &ElementRef<'_>| card.is_none_or(|c| p.id() == c.id() || p.ancestors().any(|a| a.id() == c.id()));
        let parent = el.parent().and_then(ElementRef::wrap).filter(inside_card);
        if let Some(parent) = parent {
            let wider = shown_text(parent);
            if wider.len() <= own.len() + 24 && wider.contains(own.as_str()) && has_currency(&wider) {
                return Some(wider);
            }
        }
        if self.family.quotes_roubles() && is_bare_amount(&own) {
            return Some(format!("{own} ₽"));
        }
        Some(own)
    }
}

/// Compiles a constant selector once.
macro_rules! selector {
    ($name:ident, $css:expr) => {
        static $name: std::sync::LazyLock<scraper::Selector> =
            std::sync::LazyLock::new(|| scraper::Selector::parse($css).expect(concat!("valid selector: ", $css)));
    };
}
pub(crate) use selector;

selector!(H1, "h1");
selector!(TITLE, "title");
selector!(ANCHOR, "a[href]");
selector!(OLD_PRICE, "s, del, strike, [class*='old'], [class*='Old'], [class*='discount']");

/// The text of an element, whitespace (NBSP included) collapsed to single spaces.
pub(crate) fn text_of(el: ElementRef<'_>) -> String {
    collapse(&el.text().collect::<String>())
}

/// The text of an element as shown: whitespace collapsed, NBSP kept ([`price_chars`]).
pub(crate) fn shown_text(el: ElementRef<'_>) -> String {
    price_chars(&el.text().collect::<String>())
}

/// The first mileage fragment in an element's text.
pub(crate) fn mileage_of(el: ElementRef<'_>) -> Option<String> {
    mileage_in(&shown_text(el))
}

/// `s` with every whitespace run (NBSP included) made one space, trimmed.
pub(crate) fn collapse(s: &str) -> String {
    s.split(|c: char| c.is_whitespace()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

/// A price text cleaned for reading: whitespace runs collapsed, but a run holding a non-breaking
/// space stays one NBSP (thousands separators of `ru-RU`).
pub(crate) fn price_chars(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending: Option<char> = None;
    for c in s.chars() {
        if c.is_whitespace() {
            let nb = matches!(c, '\u{a0}' | '\u{202f}' | '\u{2009}');
            pending = Some(match pending {
                Some(p) if p != ' ' => p,
                _ if nb => '\u{a0}',
                _ => ' ',
            });
        } else {
            if let Some(p) = pending.take()
                && !out.is_empty()
            {
                out.push(p);
            }
            out.push(c);
        }
    }
    out
}

/// The first element matching `sel` under `scope` with non-empty text.
pub(crate) fn first_text(scope: ElementRef<'_>, sel: &Selector) -> Option<String> {
    scope.select(sel).map(text_of).find(|t| !t.is_empty())
}

/// `<meta property|name=… content=…>` of the document.
pub(crate) fn meta_content(doc: &Html, key: &str) -> Option<String> {
    selector!(META, "meta[content]");
    doc.select(&META)
        .find(|m| m.attr("property").or_else(|| m.attr("name")).is_some_and(|k| k.eq_ignore_ascii_case(key)))
        .and_then(|m| m.attr("content"))
        .map(collapse)
        .filter(|s| !s.is_empty())
}

/// Whether `el` sits inside `s`/`del` or carries an "old price" class (struck-out prices).
pub(crate) fn is_old_price(el: ElementRef<'_>) -> bool {
    let own = OLD_PRICE.matches(&el);
    own || el.ancestors().filter_map(ElementRef::wrap).take(4).any(|a| OLD_PRICE.matches(&a))
}

static CURRENCY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(₽|\bруб|\bр\.|\d\s*р\b|т\.\s*р|\bтыс\.?\s*р|\brub\b|\brur\b|[$€¥£]|\busd\b|\beur\b|\bjpy\b|\bkrw\b)",
    )
    .unwrap()
});

/// Whether a price text names a currency.
pub(crate) fn has_currency(s: &str) -> bool {
    CURRENCY.is_match(s)
}

/// `85 000`, `205000`, `от 70 000`: digits, spaces and an optional "from" only.
fn is_bare_amount(s: &str) -> bool {
    let s = s.trim();
    let s = s.strip_prefix("от").map(str::trim_start).unwrap_or(s);
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c.is_whitespace())
}

static MILEAGE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:пробег(?:ом)?\s*(?:[:\-–—]\s*)?(?:до\s+|около\s+|~\s*)?)?(?:\d{1,3}(?:[ \u{a0}\u{202f}]\d{3})+|\d+)(?:[.,]\d+)?\s*(?:тыс\.?\s*|т\.\s*)?(?:км|km)(?:\b|\.|$)",
    )
    .unwrap()
});

/// The first mileage fragment of a text (`пробег 65 000 км`, `45 тыс. км`, `120000 km`).
pub(crate) fn mileage_in(text: &str) -> Option<String> {
    MILEAGE.find(text).map(|m| m.as_str().trim().trim_end_matches('.').trim().to_string()).filter(|m| !m.is_empty())
}

/// Parses a machine-readable amount (`85000`, `85000.00`, `85 000`, `1,234.50`) into whole units;
/// zero and garbage give `None`.
pub(crate) fn parse_amount(raw: &str) -> Option<u64> {
    let cleaned: String = raw.chars().filter(|c| !c.is_whitespace() && *c != '\u{a0}').collect();
    if cleaned.is_empty() || !cleaned.chars().all(|c| c.is_ascii_digit() || c == '.' || c == ',') {
        return None;
    }
    // The last separator followed by one or two digits is the decimal point; others group thousands.
    let (int_part, frac_part) = match cleaned.rfind(['.', ',']) {
        Some(i) if (1..=2).contains(&(cleaned.len() - i - 1)) => (&cleaned[..i], &cleaned[i + 1..]),
        _ => (cleaned.as_str(), ""),
    };
    let digits: String = int_part.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    let whole: u64 = digits.parse().ok()?;
    let round_up = frac_part.chars().next().is_some_and(|d| d >= '5');
    let amount = whole + u64::from(round_up);
    (amount > 0).then_some(amount)
}

/// An ISO currency code from a `priceCurrency` value; `None` when it is not a 3-letter code.
pub(crate) fn currency_code(raw: &str) -> Option<String> {
    let code = raw.trim().to_ascii_uppercase();
    match code.as_str() {
        "RUR" | "РУБ" | "₽" => Some("RUB".into()),
        _ if code.len() == 3 && code.chars().all(|c| c.is_ascii_uppercase()) => Some(code),
        _ => None,
    }
}

/// A structured price from an amount and an optional currency; without a currency the page's
/// own currency is assumed only for rouble sites and Russian domains.
pub(crate) fn structured(page: &Page<'_>, amount: Option<&str>, currency: Option<&str>) -> Option<StructuredPrice> {
    let amount = parse_amount(amount?)?;
    let currency = match currency.and_then(currency_code) {
        Some(code) => code,
        None if page.family.quotes_roubles() || is_russian_domain(&page.site) => "RUB".into(),
        None => return None,
    };
    Some(StructuredPrice { amount, currency })
}

fn is_russian_domain(site: &str) -> bool {
    [".ru", ".su", ".рф", ".xn--p1ai"].iter().any(|tld| site.ends_with(tld))
}

/// Keeps the elements that have no ancestor among the others (cards nested in cards).
pub(crate) fn outermost<'a>(elements: Vec<ElementRef<'a>>) -> Vec<ElementRef<'a>> {
    let ids: std::collections::HashSet<_> = elements.iter().map(|e| e.id()).collect();
    elements.into_iter().filter(|e| !e.ancestors().any(|a| ids.contains(&a.id()))).collect()
}

/// The first link of `scope` pointing somewhere real, made absolute.
pub(crate) fn first_link(page: &Page<'_>, scope: ElementRef<'_>) -> Option<String> {
    if scope.value().name() == "a"
        && let Some(url) = scope.attr("href").and_then(|h| page.absolute(h))
    {
        return Some(url);
    }
    scope.select(&ANCHOR).find_map(|a| a.attr("href").and_then(|h| page.absolute(h)))
}

/// The value of a microdata property element: `content`, else the URL attribute of links and
/// media, else its text.
pub(crate) fn itemprop_value(el: ElementRef<'_>) -> Option<String> {
    if let Some(content) = el.attr("content") {
        return Some(collapse(content)).filter(|s| !s.is_empty());
    }
    let attr = match el.value().name() {
        "a" | "link" | "area" => el.attr("href"),
        "img" | "source" | "iframe" | "embed" => el.attr("src"),
        "meta" => None,
        "data" | "meter" => el.attr("value"),
        "time" => el.attr("datetime"),
        _ => None,
    };
    attr.map(collapse).or_else(|| Some(text_of(el))).filter(|s| !s.is_empty())
}

/// The first element under `scope` matching the first selector (in priority order) that has one
/// passing `keep`.
pub(crate) fn first_by<'a>(
    scope: ElementRef<'a>,
    selectors: &[&Selector],
    mut keep: impl FnMut(ElementRef<'a>) -> bool,
) -> Option<ElementRef<'a>> {
    selectors.iter().find_map(|sel| scope.select(sel).find(|e| keep(*e)))
}

/// The price element of `scope`: for the first selector (in priority order) with a match, the
/// innermost element whose text holds a digit, that is not a struck-out price and holds no other
/// such element (a price row holding the current and the old price gives the current one).
pub(crate) fn price_element<'a>(scope: ElementRef<'a>, selectors: &[&Selector]) -> Option<ElementRef<'a>> {
    selectors.iter().find_map(|sel| {
        let shown = |e: &ElementRef<'_>| e.text().any(|t| t.chars().any(|c| c.is_ascii_digit()));
        let matches: Vec<ElementRef<'a>> = scope.select(sel).filter(|e| shown(e) && !is_old_price(*e)).collect();
        let ids: std::collections::HashSet<_> = matches.iter().map(|e| e.id()).collect();
        matches.iter().copied().find(|e| !e.descendants().skip(1).any(|d| ids.contains(&d.id())))
    })
}

/// A title from the first selector (in priority order) giving a text with letters: microdata
/// `content`, else the text, else the `title` attribute.
pub(crate) fn title_in(scope: ElementRef<'_>, selectors: &[&Selector]) -> Option<String> {
    selectors.iter().find_map(|sel| {
        scope.select(sel).find_map(|el| {
            let value = if el.attr("itemprop").is_some() { itemprop_value(el) } else { Some(text_of(el)) };
            value.filter(|t| has_letters(t)).or_else(|| el.attr("title").map(collapse).filter(|t| has_letters(t)))
        })
    })
}

/// At least two letters: a title, not a number or a symbol.
pub(crate) fn has_letters(s: &str) -> bool {
    s.chars().filter(|c| c.is_alphabetic()).take(2).count() == 2
}

/// Whether the element's text (or `content`) holds a digit.
pub(crate) fn has_digit(el: ElementRef<'_>) -> bool {
    el.attr("content").is_some_and(|c| c.chars().any(|c| c.is_ascii_digit()))
        || el.text().any(|t| t.chars().any(|c| c.is_ascii_digit()))
}

/// Cuts an overlong title at a word boundary (listing titles, not page dumps).
pub(crate) fn clip_title(title: String) -> String {
    const MAX: usize = 300;
    if title.chars().count() <= MAX {
        return title;
    }
    let cut: String = title.chars().take(MAX).collect();
    match cut.rfind(' ') {
        Some(i) if i > MAX / 2 => format!("{}…", &cut[..i]),
        _ => format!("{cut}…"),
    }
}

#[cfg(test)]
mod tests;
