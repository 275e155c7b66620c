//! Pages that need JavaScript: the seam to a real browser and the rule that says when to use it.
//!
//! Most listing sites send their listings in the HTML; a few build them in the browser. Rendering
//! costs a browser session and seconds, so a page is rendered only when its plain HTTP answer gave
//! no listings and it looks unfinished: a site known to render in the browser, a listing container
//! left empty, or a script shell with next to no text.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::Url;
use scraper::{ElementRef, Html};
use serde::{Deserialize, Serialize};

use super::domain_matches;
use super::sites::selector;

/// Renders a URL in a real browser and answers the document's HTML once its scripts ran.
/// The browser pool implements it; the caller bounds each call with its own deadline.
#[async_trait]
pub trait PageRenderer: Send + Sync {
    /// Loads `url` (the URL to load: already mapped through `PRICE_SITE_ORIGINS`) and answers
    /// `document.documentElement.outerHTML` after the page settled.
    async fn render(&self, url: &Url) -> Result<String, RenderError>;
}

/// Why a page could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// No browser session could be had (pool exhausted, ChromeDriver down).
    #[error("no browser is available: {0}")]
    Unavailable(String),
    #[error("the page did not render within {}s", .0.as_secs_f32())]
    Timeout(Duration),
    #[error("rendering failed: {0}")]
    Failed(String),
}

/// Why a page is rendered in the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RenderReason {
    /// The site is known to build its listings in the browser.
    JsOnlySite,
    /// The page has the site's listing container, empty.
    EmptyListingContainer,
    /// The page is a script shell: an application mount point or scripts, and almost no text.
    ScriptShell,
}

impl RenderReason {
    /// The wire name (`js_only_site`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            RenderReason::JsOnlySite => "js_only_site",
            RenderReason::EmptyListingContainer => "empty_listing_container",
            RenderReason::ScriptShell => "script_shell",
        }
    }
}

/// Sites that build their result lists in the browser (their HTML carries no listings).
pub const JS_ONLY_SITES: &[&str] = &["emex.ru", "exist.ru", "zzap.ru"];

/// Below this much visible text a page with scripts is a shell.
const SHELL_MAX_TEXT_CHARS: usize = 200;

/// Whether `site` is known to need the browser whatever its HTML says.
pub fn is_js_only_site(site: &str) -> bool {
    let host = site.trim_end_matches('.').to_ascii_lowercase();
    JS_ONLY_SITES.iter().any(|d| domain_matches(&host, d))
}

/// The rule: render when the plain answer gave no listings and the page looks unfinished.
/// `page_url` is the page's real URL, `html` its decoded answer.
pub fn render_reason(page_url: &Url, html: &str, listings_found: usize) -> Option<RenderReason> {
    if listings_found > 0 {
        return None;
    }
    if page_url.host_str().is_some_and(is_js_only_site) {
        return Some(RenderReason::JsOnlySite);
    }
    let doc = Html::parse_document(html);
    if has_empty_listing_container(&doc) {
        return Some(RenderReason::EmptyListingContainer);
    }
    is_script_shell(&doc).then_some(RenderReason::ScriptShell)
}

selector!(
    LISTING_CONTAINER,
    "[data-marker='catalog-serp'], [data-marker='items/list'], [data-ftid='bulls-list'], \
     [data-ftid='component_bulls-list'], #bulls-list, .bull-list, [data-role='listing'], [data-listing]"
);
selector!(
    MOUNT_POINT,
    "#root, #app, #__next, #__nuxt, #___gatsby, [data-reactroot], [ng-app], [ng-version], app-root, [data-server-rendered]"
);
selector!(SCRIPT, "script");
selector!(NOSCRIPT, "noscript");
selector!(BODY, "body");

fn has_empty_listing_container(doc: &Html) -> bool {
    doc.select(&LISTING_CONTAINER).any(|container| visible_text_len(container) < 20)
}

fn is_script_shell(doc: &Html) -> bool {
    let Some(body) = doc.select(&BODY).next() else {
        return false;
    };
    if visible_text_len(body) >= SHELL_MAX_TEXT_CHARS {
        return false;
    }
    let mount_point = doc.select(&MOUNT_POINT).next().is_some();
    let asks_for_js = doc.select(&NOSCRIPT).any(|n| {
        let text = n.text().collect::<String>().to_lowercase();
        text.contains("javascript")
    });
    let scripts = doc.select(&SCRIPT).count();
    mount_point || asks_for_js || scripts > 0
}

/// Characters of text a reader would see under `el` (scripts, styles and `noscript` excluded).
fn visible_text_len(el: ElementRef<'_>) -> usize {
    fn walk(el: ElementRef<'_>, total: &mut usize) {
        for child in el.children() {
            if let Some(text) = child.value().as_text() {
                *total += text.chars().filter(|c| !c.is_whitespace()).count();
            } else if let Some(child_el) = ElementRef::wrap(child)
                && !matches!(child_el.value().name(), "script" | "style" | "noscript" | "template" | "svg")
            {
                walk(child_el, total);
            }
        }
    }
    let mut total = 0;
    walk(el, &mut total);
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn rendering_is_asked_only_for_unfinished_pages() {
        let shell = r#"<!doctype html><html><head><script src="/app.js"></script></head>
            <body><div id="root"></div><noscript>Включите JavaScript</noscript></body></html>"#;
        assert_eq!(render_reason(&url("https://shop.example.ru/akpp"), shell, 0), Some(RenderReason::ScriptShell));
        assert_eq!(render_reason(&url("https://shop.example.ru/akpp"), shell, 2), None, "listings found: no render");

        let empty_serp = r#"<html><body><h1>АКПП б/у</h1><p>Объявления по запросу «АКПП U660E» в Москве — на Авито
            большой выбор контрактных коробок, доставка по всей России, гарантия продавца, удобный поиск.
            Здесь ещё много текста страницы, меню, подвал, ссылки на категории и прочие разделы сайта.</p>
            <div data-marker="catalog-serp" class="items-items"> </div></body></html>"#;
        assert_eq!(
            render_reason(&url("https://www.avito.ru/moskva?q=akpp"), empty_serp, 0),
            Some(RenderReason::EmptyListingContainer)
        );

        let plain = format!("<html><body><p>{}</p></body></html>", "Контрактные коробки передач. ".repeat(20));
        assert_eq!(render_reason(&url("https://shop.example.ru/"), &plain, 0), None, "a text page without listings");
        assert_eq!(render_reason(&url("https://www.emex.ru/products/x"), &plain, 0), Some(RenderReason::JsOnlySite));
        assert!(is_js_only_site("www.exist.ru"));
        assert!(!is_js_only_site("notexist.ru"));
    }
}
