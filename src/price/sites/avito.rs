//! avito.ru: search result cards and item pages.
//!
//! A result card is `[data-marker=item]` (both the current markup, where the title link carries
//! `data-marker=item-title` and `itemprop=url` around an `h3 itemprop=name`, and the older one,
//! where `data-marker=item-title` sits on the `h3` and the link is inside). The price is a
//! microdata offer, `<meta itemprop=price content=85000>` with `priceCurrency`, next to the shown
//! `data-marker=item-price` text; both are kept, so a card showing its price only in `content`
//! still counts. An item page (no cards) is one listing from its `itemprop` fields.

use scraper::ElementRef;

use super::{
    Page, RawListing, clip_title, first_by, first_link, itemprop_value, mileage_of, outermost, price_element, selector,
    structured, title_in,
};

selector!(CARD, "[data-marker='item']");
selector!(NAME, "[itemprop='name']");
selector!(TITLE_MARKER, "[data-marker='item-title']");
selector!(H3, "h3");
selector!(H2, "h2");
selector!(LINK_TITLE_MARKER, "a[data-marker='item-title'][href]");
selector!(LINK_IN_TITLE_MARKER, "[data-marker='item-title'] a[href]");
selector!(LINK_ITEMPROP_URL, "a[itemprop='url'][href]");
selector!(PRICE_VALUE_MARKER, "[data-marker='item-price-value']");
selector!(PRICE_MARKER, "[data-marker='item-price']");
selector!(PRICE_ITEMPROP, "[itemprop='price']");
selector!(PRICE_CLASS, "[class*='price']");
selector!(CURRENCY_ITEMPROP, "[itemprop='priceCurrency']");
selector!(PARAMS, "[data-marker='item-specific-params'], [itemprop='description'], [class*='description']");
selector!(VIEW_TITLE, "[data-marker='item-view/title-info']");
selector!(H1, "h1");
selector!(VIEW_PRICE, "[data-marker='item-view/item-price']");
selector!(
    VIEW_PARAMS,
    "[data-marker='item-view/item-params'], [data-marker='item-view/item-description'], [itemprop='description']"
);

pub(super) fn parse(page: &Page<'_>) -> Vec<RawListing> {
    let cards = outermost(page.doc.select(&CARD).collect());
    if cards.is_empty() {
        return item_page(page).into_iter().collect();
    }
    cards.into_iter().filter_map(|card| parse_card(page, card)).collect()
}

fn parse_card(page: &Page<'_>, card: ElementRef<'_>) -> Option<RawListing> {
    let title = title_in(card, &[&NAME, &TITLE_MARKER, &H3, &H2])?;
    let url = first_by(card, &[&LINK_TITLE_MARKER, &LINK_IN_TITLE_MARKER, &LINK_ITEMPROP_URL], |_| true)
        .and_then(|a| a.attr("href"))
        .and_then(|h| page.absolute(h))
        .or_else(|| first_link(page, card));
    let (price_text, structured_price) =
        price_of(page, card, &[&PRICE_VALUE_MARKER, &PRICE_MARKER, &PRICE_ITEMPROP, &PRICE_CLASS]);
    let mileage = card.select(&PARAMS).find_map(|p| mileage_of(p)).or_else(|| mileage_of(card));
    Some(page.listing(url, clip_title(title), price_text, structured_price, mileage))
}

/// The shown price text and the microdata price of a card or an item page.
fn price_of(
    page: &Page<'_>,
    scope: ElementRef<'_>,
    shown: &[&scraper::Selector],
) -> (Option<String>, Option<super::StructuredPrice>) {
    let currency = scope.select(&CURRENCY_ITEMPROP).find_map(itemprop_value);
    let structured_price = scope
        .select(&PRICE_ITEMPROP)
        .find_map(|el| structured(page, el.attr("content").or_else(|| el.text().next()), currency.as_deref()));
    let price_text = price_element(scope, shown).and_then(|el| page.price_text_of(el, Some(scope)));
    (price_text, structured_price)
}

/// An item page: the `h1` title and the page's price.
fn item_page(page: &Page<'_>) -> Option<RawListing> {
    let root = page.doc.root_element();
    let has_price = root.select(&PRICE_ITEMPROP).next().is_some() || root.select(&VIEW_PRICE).next().is_some();
    if !has_price {
        return None;
    }
    let title = title_in(root, &[&VIEW_TITLE, &H1, &NAME]).or_else(|| page.heading())?;
    let (price_text, structured_price) = price_of(page, root, &[&VIEW_PRICE, &PRICE_ITEMPROP]);
    if price_text.is_none() && structured_price.is_none() {
        return None;
    }
    let mileage = root.select(&VIEW_PARAMS).find_map(|p| mileage_of(p));
    Some(page.listing(None, clip_title(title), price_text, structured_price, mileage))
}
