//! Cards found from their prices, for sites whose markup varies from page to page.
//!
//! Every innermost price element (`[class*=price]`, `[class*=cost]`, `itemprop=price`,
//! `data-price`; struck-out prices skipped) is a listing's anchor; its card is the nearest
//! enclosing element with a title, preferring one that matches the family's card selector, a few
//! levels up at most and never a page section (so a cart total in the header is no listing). A
//! card holding the prices of several items (a list wrapper) is split into its children. The title is the card's
//! name, heading or title-like element, else its most telling link text; a table row's title is
//! its wordiest cell.

use std::collections::HashSet;

use scraper::{ElementRef, Selector};

use super::{
    Page, RawListing, clip_title, collapse, first_link, has_digit, has_letters, is_old_price, itemprop_value,
    mileage_of, selector, structured, text_of,
};

selector!(
    PRICE,
    "[itemprop='price'], [class*='price'], [class*='Price'], [class*='cost'], [class*='Cost'], [data-price]"
);
selector!(NAME, "[itemprop='name']");
selector!(HEADING, "h1, h2, h3, h4, h5");
selector!(TITLE_CLASS, "[class*='title'], [class*='Title'], [class*='name'], [class*='Name']");
selector!(ANCHOR, "a[href]");
selector!(CELL, "td, th");
selector!(CURRENCY_ITEMPROP, "[itemprop='priceCurrency']");

/// Listings of the cards matching `card` that carry a price.
pub(super) fn parse(page: &Page<'_>, card: &Selector) -> Vec<RawListing> {
    let root = page.doc.root_element();
    let candidates: Vec<ElementRef<'_>> = root.select(&PRICE).filter(|e| has_digit(*e) && !is_old_price(*e)).collect();
    let ids: HashSet<_> = candidates.iter().map(|e| e.id()).collect();
    let leaves = candidates.into_iter().filter(|e| !e.descendants().skip(1).any(|d| ids.contains(&d.id())));

    let mut groups: Vec<(ElementRef<'_>, Vec<ElementRef<'_>>)> = Vec::new();
    for leaf in leaves {
        let Some(owner) = owner_of(leaf, card) else {
            continue;
        };
        match groups.iter_mut().find(|(c, _)| c.id() == owner.id()) {
            Some((_, leaves)) => leaves.push(leaf),
            None => groups.push((owner, vec![leaf])),
        }
    }

    let mut out: Vec<RawListing> = Vec::new();
    for (owner, leaves) in groups {
        for (card, leaf) in split(owner, &leaves) {
            let Some(listing) = listing(page, card, leaf) else {
                continue;
            };
            if !out
                .iter()
                .any(|o| o.url == listing.url && o.title == listing.title && o.price_text == listing.price_text)
            {
                out.push(listing);
            }
        }
    }
    out
}

/// How many levels above its price a card may start.
const MAX_CARD_DEPTH: usize = 6;
/// A block with more text than this (bytes) is a page section, not one item.
const MAX_CARD_TEXT_BYTES: usize = 3000;

/// The card of a price: the nearest enclosing element with a title that matches the family's card
/// selector, else the nearest with a title; never a page section (body, header, footer, …).
fn owner_of<'a>(leaf: ElementRef<'a>, card: &Selector) -> Option<ElementRef<'a>> {
    let mut first_titled = None;
    for candidate in leaf.ancestors().filter_map(ElementRef::wrap).take(MAX_CARD_DEPTH) {
        let section = matches!(
            candidate.value().name(),
            "body" | "html" | "main" | "header" | "footer" | "nav" | "aside" | "form" | "table" | "tbody"
        );
        if section || candidate.text().map(str::len).sum::<usize>() > MAX_CARD_TEXT_BYTES {
            break;
        }
        if card_title(candidate).is_none() {
            continue;
        }
        if card.matches(&candidate) {
            return Some(candidate);
        }
        first_titled.get_or_insert(candidate);
    }
    first_titled
}

/// One (card, price) per item: a card whose prices sit in different children, each with a title
/// of its own, is a list wrapper and is split into those children; otherwise its first price.
fn split<'a>(owner: ElementRef<'a>, leaves: &[ElementRef<'a>]) -> Vec<(ElementRef<'a>, ElementRef<'a>)> {
    if leaves.len() > 1 {
        let children: Vec<Option<ElementRef<'a>>> = leaves
            .iter()
            .map(|leaf| {
                leaf.ancestors().filter_map(ElementRef::wrap).find(|a| a.parent().is_some_and(|p| p.id() == owner.id()))
            })
            .collect();
        let distinct: HashSet<_> = children.iter().flatten().map(|c| c.id()).collect();
        if distinct.len() == leaves.len() && children.iter().flatten().all(|c| card_title(*c).is_some()) {
            return children.into_iter().flatten().zip(leaves.iter().copied()).collect();
        }
    }
    vec![(owner, leaves[0])]
}

fn listing(page: &Page<'_>, card: ElementRef<'_>, leaf: ElementRef<'_>) -> Option<RawListing> {
    let (title_el, title) = card_title(card)?;
    let url = title_el.and_then(|t| link_of(page, t)).or_else(|| first_link(page, card));
    let price_text = page.price_text_of(leaf, Some(card));
    let currency = card.select(&CURRENCY_ITEMPROP).find_map(itemprop_value);
    let amount = leaf.attr("data-price").or_else(|| leaf.attr("itemprop").and(leaf.attr("content")));
    let structured_price = structured(page, amount, currency.as_deref());
    if price_text.is_none() && structured_price.is_none() {
        return None;
    }
    Some(page.listing(url, clip_title(title), price_text, structured_price, mileage_of(card)))
}

/// Whether `el` is (inside) a price element.
fn in_price(el: ElementRef<'_>) -> bool {
    PRICE.matches(&el) || el.ancestors().filter_map(ElementRef::wrap).any(|a| PRICE.matches(&a))
}

/// The card's title and the element it came from (`None` for a table row's cell text).
fn card_title(card: ElementRef<'_>) -> Option<(Option<ElementRef<'_>>, String)> {
    let usable = |el: &ElementRef<'_>| !in_price(*el) && el.select(&PRICE).next().is_none();
    for sel in [&*NAME, &*HEADING, &*TITLE_CLASS] {
        for el in card.select(sel).filter(usable) {
            let text = if el.attr("itemprop").is_some() { itemprop_value(el) } else { Some(text_of(el)) };
            if let Some(text) = text.filter(|t| has_letters(t)) {
                return Some((Some(el), text));
            }
        }
    }
    // The link saying the most: "АКПП Toyota Camry 2.5" over "Подробнее".
    let best_link = card
        .select(&ANCHOR)
        .filter(usable)
        .map(|a| (letters(&text_of(a)), a))
        .filter(|(n, _)| *n >= 8)
        .max_by_key(|(n, _)| *n);
    if let Some((_, a)) = best_link {
        return Some((Some(a), text_of(a)));
    }
    if card.value().name() == "tr" {
        let best_cell = card.select(&CELL).filter(usable).map(text_of).max_by_key(|t| letters(t))?;
        return has_letters(&best_cell).then(|| (None, collapse(&best_cell)));
    }
    None
}

fn letters(s: &str) -> usize {
    s.chars().filter(|c| c.is_alphabetic()).count()
}

/// The link wrapping or inside a title element.
fn link_of(page: &Page<'_>, el: ElementRef<'_>) -> Option<String> {
    if el.value().name() == "a" {
        return el.attr("href").and_then(|h| page.absolute(h));
    }
    el.ancestors()
        .filter_map(ElementRef::wrap)
        .take(3)
        .find(|a| a.value().name() == "a")
        .or_else(|| el.select(&ANCHOR).next())
        .and_then(|a| a.attr("href"))
        .and_then(|h| page.absolute(h))
}
