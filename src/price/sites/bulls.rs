//! Bulletins ("bulls") of the engine behind baza.drom.ru, drom.ru and farpost.ru, in its three
//! markups:
//!
//! - the table list: `tr.bull-item` rows with `.bull-item-content__subject-container a.bulletinLink`
//!   titles and `.price-block__price` / `.price-block__final-price` prices;
//! - the newer list: `[data-ftid=bulls-list_bull]` (or `[data-bull-item]`) cards with
//!   `[data-ftid=bull_title]`, `[data-ftid=bull_price]` (digits only, the `₽` sits outside) and
//!   `[data-ftid=bull_description-item]` lines;
//! - a bulletin page: `[data-field=subject]` / `h1` and `.viewbull-summary-price__value`.

use scraper::ElementRef;

use super::{
    Page, RawListing, clip_title, first_by, first_link, mileage_of, outermost, price_element, selector, structured,
    title_in,
};

selector!(
    CARD,
    "[data-ftid='bulls-list_bull'], [data-bull-item], [data-bull-id], .bull-item, .bull-list-item, .listing-item, div.bull-item-content"
);
selector!(TITLE_FTID, "[data-ftid='bull_title']");
selector!(TITLE_SUBJECT, ".bull-item-content__subject-container a, .bull-item-content__subject-container");
selector!(TITLE_LINK, "a.bulletinLink, a.bull-item__self-link, a.bull-item__link");
selector!(TITLE_CLASS, ".bull-item__subject, .bull-item__title, .item-title, .lot-title");
selector!(H3, "h3");
selector!(PRICE_FTID, "[data-ftid='bull_price']");
selector!(PRICE_FINAL, ".price-block__final-price, .finalPrice");
selector!(PRICE_BLOCK, ".price-block__price, .price-per-quantity__price, [data-role='price']");
selector!(PRICE_BULL, ".bull-item__price-block, .bull-item__price, [data-bulletin-price]");
selector!(PRICE_ANY, ".price, [class*='price'], [class*='Price']");
selector!(DESCRIPTION, "[data-ftid='bull_description-item'], .bull-item__annotation-row, [class*='annotation']");
selector!(
    LINK_FTID,
    "a[data-ftid='bull_title'][href], [data-ftid='bull_title'] a[href], a[data-ftid='bulls-list_bull'][href]"
);
selector!(VIEW_SUBJECT, "[data-field='subject'], h1.subject, .viewbull-header__title, h1");
selector!(
    VIEW_PRICE,
    ".viewbull-summary-price__value, [data-field='price'], [data-bulletin-price], .viewbull-summary-price"
);
selector!(VIEW_TEXT, ".viewbull-field__container, [data-field='text'], .bulletinText, .viewbull-bulletin-text");
selector!(PRICE_ITEMPROP, "[itemprop='price']");
selector!(CURRENCY_ITEMPROP, "[itemprop='priceCurrency']");

/// Listings of a bulletin list, else of a bulletin page.
pub(super) fn parse(page: &Page<'_>) -> Vec<RawListing> {
    let cards = outermost(page.doc.select(&CARD).collect());
    let listings: Vec<RawListing> = cards.into_iter().filter_map(|card| parse_card(page, card)).collect();
    if !listings.is_empty() {
        return listings;
    }
    bulletin_page(page).into_iter().collect()
}

fn parse_card(page: &Page<'_>, card: ElementRef<'_>) -> Option<RawListing> {
    let title = title_in(card, &[&TITLE_FTID, &TITLE_SUBJECT, &TITLE_LINK, &TITLE_CLASS, &H3])?;
    let url = card_link(page, card);
    let price_el = price_element(card, &[&PRICE_FTID, &PRICE_FINAL, &PRICE_BLOCK, &PRICE_BULL, &PRICE_ANY]);
    let price_text = price_el.and_then(|el| page.price_text_of(el, Some(card)));
    let structured_price = price_el
        .and_then(|el| el.attr("data-bulletin-price").or_else(|| el.attr("content")))
        .and_then(|amount| structured(page, Some(amount), None));
    let mileage = card.select(&DESCRIPTION).find_map(|d| mileage_of(d)).or_else(|| mileage_of(card));
    Some(page.listing(url, clip_title(title), price_text, structured_price, mileage))
}

/// The card's own link: the card itself when it is a link, the title link, else the first link.
fn card_link(page: &Page<'_>, card: ElementRef<'_>) -> Option<String> {
    if card.value().name() == "a"
        && let Some(url) = card.attr("href").and_then(|h| page.absolute(h))
    {
        return Some(url);
    }
    let title_link = first_by(card, &[&LINK_FTID, &TITLE_SUBJECT, &TITLE_LINK], |el| el.value().name() == "a")
        .and_then(|a| a.attr("href"))
        .and_then(|h| page.absolute(h));
    title_link
        .or_else(|| {
            // A title inside a link: `<a href><h3 data-ftid=bull_title>…</h3></a>`.
            card.select(&TITLE_FTID)
                .next()
                .and_then(|t| t.ancestors().filter_map(ElementRef::wrap).find(|a| a.value().name() == "a"))
                .and_then(|a| a.attr("href"))
                .and_then(|h| page.absolute(h))
        })
        .or_else(|| first_link(page, card))
}

/// A single bulletin's page.
fn bulletin_page(page: &Page<'_>) -> Option<RawListing> {
    let root = page.doc.root_element();
    let price_el = price_element(root, &[&VIEW_PRICE, &PRICE_ITEMPROP])?;
    let title = title_in(root, &[&VIEW_SUBJECT]).or_else(|| page.heading())?;
    let price_text = page.price_text_of(price_el, None);
    let currency = root.select(&CURRENCY_ITEMPROP).find_map(super::itemprop_value);
    let structured_price = price_el
        .attr("data-bulletin-price")
        .or_else(|| price_el.attr("content"))
        .and_then(|amount| structured(page, Some(amount), currency.as_deref()));
    let mileage = root.select(&VIEW_TEXT).find_map(|t| mileage_of(t));
    Some(page.listing(None, clip_title(title), price_text, structured_price, mileage))
}
