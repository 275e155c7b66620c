//! podzamenu.ru: VIN/FRAME search, vehicle card, navigation to the gearbox parts list, OEM numbers.
//!
//! The site is a React/MUI single-page app. Its tabs and accordions ignore a bare `element.click()`,
//! so controls are clicked with dispatched mouse events first (see [`ClickStrategy`]) and every
//! click is checked by its effect (`aria-expanded`, `aria-selected`, content appearing).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::BrowserError;
use super::facts::{Facts, split_title};
use super::lookup::{ScrapeSettings, SiteAnswer, search_url};
use super::outcome::{GearboxInfo, StepOutcome, VehicleMeta, VehicleQuery};
use super::page::{CHOOSE_CARD_JS, ClickStrategy, EFFECT_JS, Effect, Found, PAGE_DATA_JS, PROBE_JS, Page, short};
use super::rules;

/// Ways to reach the gearbox parts list from the vehicle card, tried in the configured order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NavPath {
    /// Sidebar: `Трансмиссия` accordion → gearbox sub-accordion → parts-list link.
    Accordion,
    /// `СХЕМЫ УЗЛОВ` tab → transmission section → gearbox card (action area or plain link).
    SchemesTab,
    /// A content link named exactly like the gearbox assembly.
    ContentLink,
    /// Any link whose text contains a gearbox word.
    TextLink,
}

/// Selectors, keywords and patterns for podzamenu.ru. Defaults match the live site as documented in
/// `docs/vehicle-lookup-sites.md`; all of it can be overridden from configuration (serde, every
/// field optional) without code changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PodzamenuSelectors {
    /// Search URL path; `{id}` is replaced by the URL-encoded VIN/FRAME.
    pub search_path: String,
    /// Any visible one means the vehicle card has rendered.
    pub result_ready: Vec<String>,
    /// Content root whose visible text is checked for not-found/error wording (first match).
    pub text_root: Vec<String>,
    /// Visible markers of "vehicle not found".
    pub not_found_selectors: Vec<String>,
    /// Regexes on the visible text meaning "vehicle not found" (JavaScript `RegExp`, case-insensitive;
    /// `\b` only knows Latin letters there, so Cyrillic words are matched without it).
    pub not_found_patterns: Vec<String>,
    /// Visible markers of a site error.
    pub error_selectors: Vec<String>,
    /// Regexes (JavaScript, case-insensitive) on the visible text meaning a site error (retryable).
    pub error_patterns: Vec<String>,
    /// Vehicle title candidates (`TOYOTA / CAMRY`).
    pub title_selectors: Vec<String>,
    /// Titles inside these are skipped (accordion headings).
    pub title_skip: String,
    /// WMIs whose vehicles are answered model-only without opening the parts list (VAG group: the
    /// catalogue shows the gearbox code but its parts tree is not usable).
    pub model_only_wmis: Vec<String>,
    /// Navigation paths in the order tried.
    pub nav_paths: Vec<NavPath>,
    /// Accordion header buttons.
    pub accordion_summary: Vec<String>,
    /// Accordion container (scope of a header's content).
    pub accordion_root: String,
    /// Text of the top-level transmission accordion (contains).
    pub transmission_group: Vec<String>,
    /// Text of gearbox sub-accordions (contains).
    pub gearbox_group: Vec<String>,
    /// Parts-list links inside accordions and scheme pages.
    pub content_links: Vec<String>,
    /// Parts-list link texts (exact first, then contains), in priority order.
    pub gearbox_links: Vec<String>,
    /// Tab-like controls.
    pub tab_selectors: Vec<String>,
    /// `СХЕМЫ УЗЛОВ` tab text (exact).
    pub schemes_tab_exact: Vec<String>,
    /// Fallback tab text fragments.
    pub schemes_tab_contains: Vec<String>,
    /// Section links on the schemes tab.
    pub section_selectors: Vec<String>,
    /// Transmission section names (exact first, then contains).
    pub section_keywords: Vec<String>,
    /// Scheme cards.
    pub card_selectors: Vec<String>,
    /// Card texts naming the gearbox.
    pub card_keywords: Vec<String>,
    /// Card texts naming an assembly (preferred together with a gearbox word).
    pub card_assembly_words: Vec<String>,
    /// Clickable part of a card, in order: MUI action area, plain `ПОСМОТРЕТЬ СХЕМУ` link, button.
    pub card_actions: Vec<String>,
    /// Generic links for the last-resort path.
    pub text_link_selectors: Vec<String>,
    /// Texts for the last-resort path (contains).
    pub text_link_keywords: Vec<String>,
    /// Any visible one means the parts list has rendered.
    pub detail_ready: Vec<String>,
    /// Regexes (JavaScript, case-insensitive) on the visible text of a parts page that lists nothing.
    pub detail_empty_patterns: Vec<String>,
    /// OEM links in the parts list, first selector with matches wins.
    pub oem_links: Vec<String>,
    /// Query parameter of an OEM link carrying the number.
    pub oem_query_param: String,
    /// Row container of an OEM link.
    pub oem_row: String,
    /// Part-name cells (in the row, else by index).
    pub oem_names: Vec<String>,
    /// Headings of the parts page (model hint in brackets).
    pub detail_headings: Vec<String>,
    /// Click strategies in order; each must show its effect before the next is tried.
    pub click_strategies: Vec<ClickStrategy>,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

impl Default for PodzamenuSelectors {
    fn default() -> Self {
        Self {
            search_path: "/search-vehicle?vin={id}".into(),
            result_ready: strings(&["table", "button.MuiAccordionSummary-root", "[role=\"tab\"]"]),
            text_root: strings(&["main", "#root", "body"]),
            not_found_selectors: strings(&["[class*=\"notFound\"]", "[class*=\"NotFound\"]"]),
            not_found_patterns: strings(&[
                r"ничего\s+не\s+найдено",
                r"автомобиль\s+не\s+найден",
                r"данные\s+не\s+найдены",
                r"не\s+найден",
                r"vehicle\s+not\s+found",
                r"no\s+results",
            ]),
            error_selectors: strings(&["[class*=\"errorPage\"]"]),
            error_patterns: strings(&[
                r"временно\s+недоступ",
                r"ошибка\s+сервера",
                r"попробуйте\s+позже",
                r"service\s+unavailable",
                r"bad\s+gateway",
            ]),
            title_selectors: strings(&["h6", "h1", "h2", "h4"]),
            title_skip: "[class*=\"Accordion\"]".into(),
            model_only_wmis: strings(&[
                "WVW", "WV1", "WV2", "WV3", "WV6", "WAU", "WA1", "TMB", "XW8", "VSS", "VS6", "VS7", "WP0", "WP1",
                "9BW", "8AW", "1VW",
            ]),
            nav_paths: vec![NavPath::Accordion, NavPath::SchemesTab, NavPath::ContentLink, NavPath::TextLink],
            accordion_summary: strings(&["button.MuiAccordionSummary-root", "[class*=\"AccordionSummary-root\"]"]),
            accordion_root: ".MuiAccordion-root, [class*=\"Accordion-root\"]".into(),
            transmission_group: strings(&["трансмисси"]),
            gearbox_group: strings(&["коробк", "кпп", "акпп", "мкпп", "вариатор", "transmission", "gearbox"]),
            content_links: strings(&["[class*=\"selectorPaperContentLink\"]", "[class*=\"ContentLink\"]"]),
            gearbox_links: strings(&[
                "коробка передач в сборе",
                "акпп в сборе",
                "коробка передач",
                "акпп",
                "мкпп",
                "вариатор",
                "ведущий мост",
                "transaxle",
                "transmission",
            ]),
            tab_selectors: strings(&["[role=\"tab\"]", "button", "a", "[class*=\"Tab\"]", "[class*=\"tab\"]"]),
            schemes_tab_exact: strings(&["схемы узлов"]),
            schemes_tab_contains: strings(&["схем", "узлов"]),
            section_selectors: strings(&[
                "[class*=\"selectorLink\"]",
                "[class*=\"menuItem\"]",
                "[class*=\"categoryLink\"]",
                "[class*=\"navLink\"]",
                "[class*=\"selectorPaperContentLink\"]",
                "[class*=\"ContentLink\"]",
                "[role=\"button\"]",
                "[role=\"link\"]",
                "a",
                "button",
            ]),
            section_keywords: strings(&[
                "коробка передач",
                "трансмиссия",
                "ходовая часть и трансмиссия",
                "трансмиссия/шасси",
                "автоматическая коробка передач",
                "механическая коробка передач",
                "акпп",
                "мкпп",
                "вариатор",
                "transmission",
                "transaxle",
                "power train",
                "powertrain",
                "drivetrain",
                "drive train",
                "gearbox",
                "getriebe",
            ]),
            card_selectors: strings(&["[class*=\"Card-root\"]", "[class*=\"schemeCard\"]"]),
            card_keywords: strings(&[
                "коробка передач в сборе",
                "акпп в сборе",
                "сборка коробки передач",
                "transaxle assy",
                "transmission assy",
                "a/t assy",
                "m/t assy",
                "cvt assy",
                "t/m & t/c attachment",
                "part 1 d",
                "part 2 d",
                "ведущий мост",
                "коробка передач",
                "вариатор",
                "акпп",
                "мкпп",
                "transaxle",
                "transmission",
                "getriebe",
            ]),
            card_assembly_words: strings(&["сборка", "в сборе", "assembly", "assy", "part 1", "m/t", "a/t", "cvt"]),
            card_actions: strings(&[
                "button.MuiCardActionArea-root",
                "[class*=\"CardActionArea\"]",
                "a[href]",
                "button",
            ]),
            text_link_selectors: strings(&["a", "[role=\"link\"]"]),
            text_link_keywords: strings(&["коробка передач", "кпп"]),
            detail_ready: strings(&["[class*=\"searchDetailCell\"]", "a[href*=\"/search?query=\"]"]),
            detail_empty_patterns: strings(&[r"нет\s+данных", r"детали\s+не\s+найдены", r"список\s+деталей\s+пуст"]),
            oem_links: strings(&[
                "[class*=\"searchDetailCell\"] a[href*=\"/search?query=\"]",
                "a[href*=\"/search?query=\"]",
            ]),
            oem_query_param: "query".into(),
            oem_row: "tr, li, [class*=\"Row\"], [class*=\"row\"]".into(),
            oem_names: strings(&["[class*=\"vehicleCell\"]", "[class*=\"nameCell\"]"]),
            detail_headings: strings(&["h1", "h2", "h3", "h4", "h5", "h6"]),
            click_strategies: vec![ClickStrategy::Dispatch, ClickStrategy::Native, ClickStrategy::Js],
        }
    }
}

/// Page data returned by `page_data.js`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PageData {
    href: String,
    titles: Vec<String>,
    tables: Vec<Vec<Vec<String>>>,
    pairs: Vec<(String, String)>,
    headings: Vec<String>,
    links: Vec<LinkRow>,
    #[serde(rename = "linkSelector")]
    link_selector: Option<String>,
    text: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LinkRow {
    oem: String,
    name: String,
}

/// Words that disqualify a heading as the vehicle title.
const TITLE_STOP_WORDS: &[&str] = &[
    "найден",
    "поиск",
    "фильтр",
    "схемы",
    "результат",
    "каталог",
    "запчаст",
    "корзин",
    "вход",
    "регистр",
    "детал",
    "двигател",
    "трансмисс",
    "тормоз",
    "кузов",
    "систем",
    "заказ",
    "город",
    "помощ",
    "оригинал",
    "спецификац",
];

fn pick_title(titles: &[String]) -> Option<&String> {
    let upper_run =
        |t: &str| t.chars().collect::<Vec<_>>().windows(2).any(|w| w.iter().all(|c| c.is_ascii_uppercase()));
    titles.iter().find(|t| t.contains(" / ") && t.chars().count() <= 60).or_else(|| {
        titles.iter().find(|t| {
            let lower = t.to_lowercase();
            upper_run(t) && t.chars().count() <= 50 && !TITLE_STOP_WORDS.iter().any(|w| lower.contains(w))
        })
    })
}

/// Runs the podzamenu steps on `page`.
pub(crate) async fn lookup(
    page: &mut Page<'_>,
    base_url: &str,
    query: &VehicleQuery,
    sel: &PodzamenuSelectors,
    settings: &ScrapeSettings,
) -> Result<SiteAnswer, BrowserError> {
    let url = search_url(base_url, &sel.search_path, query.value())?;
    page.goto(&url).await?;

    // 1. Wait for the SPA to render the vehicle card or a not-found / error message.
    let started = Instant::now();
    let probe = json!({
        "ready": sel.result_ready,
        "textRoot": sel.text_root,
        "notFoundSelectors": sel.not_found_selectors,
        "notFoundPatterns": sel.not_found_patterns,
        "errorSelectors": sel.error_selectors,
        "errorPatterns": sel.error_patterns,
    });
    let bound = page.bound();
    let state = match page.poll("wait_result", PROBE_JS, &probe, bound).await {
        Ok(state) => state,
        Err(err) => {
            page.record("wait_result", started, StepOutcome::Failed, Some(err.to_string()));
            return Err(err);
        }
    };
    let Some(state) = state else {
        let err = BrowserError::timeout("podzamenu.wait_result", bound);
        page.record("wait_result", started, StepOutcome::Failed, Some(err.to_string()));
        return Err(err);
    };
    let kind = state.get("state").and_then(Value::as_str).unwrap_or("");
    let matched = state.get("matched").and_then(Value::as_str).unwrap_or("").to_owned();
    match kind {
        "not_found" => {
            page.record("wait_result", started, StepOutcome::Ok, Some(format!("not found: {matched}")));
            page.used(format!("not_found:{matched}"));
            return Ok(SiteAnswer::NotFound { vehicle: None });
        }
        "error" => {
            page.record("wait_result", started, StepOutcome::Failed, Some(format!("site error: {matched}")));
            return Err(BrowserError::Navigation { url, reason: format!("site error page: {matched}") });
        }
        _ => page.record("wait_result", started, StepOutcome::Ok, Some(format!("vehicle card: {matched}"))),
    }

    // 2. Vehicle card: title, tables, label/value pairs.
    let started = Instant::now();
    let data = read_page(page, sel, false).await?;
    let mut facts = Facts::collect(&settings.labels, &data.tables, &data.pairs, &[]);
    if let Some(title) = pick_title(&data.titles) {
        let (make, model) = split_title(title);
        if make.is_some() {
            facts.meta.make = make;
        }
        if facts.meta.model.is_none() {
            facts.meta.model = model;
        }
        page.used(format!("title:{}", short(title)));
    }
    let mut gearbox = GearboxInfo::default();
    if let Some((model, label)) = facts.gearbox_model() {
        page.used(format!("gearbox.model:table:{}", label.to_lowercase()));
        gearbox.model = Some(model);
    }
    gearbox.factory_code = facts.factory_code();
    if gearbox.factory_code.is_some() {
        page.used("gearbox.factory_code:table");
    }
    let vehicle = facts.meta.clone();
    page.record(
        "vehicle_info",
        started,
        if vehicle.is_empty() && gearbox.model.is_none() { StepOutcome::Miss } else { StepOutcome::Ok },
        Some(format!(
            "{} {} model={}",
            vehicle.make.as_deref().unwrap_or("?"),
            vehicle.model.as_deref().unwrap_or("?"),
            gearbox.model.as_deref().unwrap_or("-")
        )),
    );

    // 3. Catalogue parts tree unusable for some makes: answer with the model.
    if let (Some(wmi), Some(_)) = (query.wmi(), gearbox.model.as_ref())
        && sel.model_only_wmis.iter().any(|w| w.eq_ignore_ascii_case(wmi))
    {
        page.used(format!("early_exit:model_only_wmi:{wmi}"));
        if gearbox.factory_code.is_none() {
            gearbox.factory_code = gearbox.model.clone();
        }
        return Ok(SiteAnswer::ModelOnly { vehicle, gearbox });
    }

    // 4. Gearbox parts list: try the navigation paths until one yields OEM numbers.
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut detail_headings: Vec<String> = Vec::new();
    for path in &sel.nav_paths {
        if page.bound().is_zero() {
            break;
        }
        let started = Instant::now();
        let reached = match path {
            NavPath::Accordion => via_accordion(page, sel, settings).await,
            NavPath::SchemesTab => via_schemes_tab(page, sel, settings).await,
            NavPath::ContentLink => via_link(page, sel, settings, "content_link", &sel.content_links, true).await,
            NavPath::TextLink => via_link(page, sel, settings, "text_link", &sel.text_link_selectors, false).await,
        };
        let name = format!("nav.{}", nav_name(*path));
        let reached = match reached {
            Ok(reached) => reached,
            // A command failing on this page's markup (script error, stale element): try the next
            // path. Timeouts and a lost browser end the visit.
            Err(err @ BrowserError::Command { .. }) => {
                page.record(&name, started, StepOutcome::Failed, Some(err.to_string()));
                continue;
            }
            Err(err) => {
                page.record(&name, started, StepOutcome::Failed, Some(err.to_string()));
                return Err(err);
            }
        };
        let Some(how) = reached else {
            page.record(&name, started, StepOutcome::Miss, None);
            continue;
        };
        let detail = read_page(page, sel, true).await?;
        let (found, how_rows) = detail_rows(&detail);
        detail_headings = detail.headings;
        if found.is_empty() {
            page.record(&name, started, StepOutcome::Miss, Some(format!("{how}: no OEM rows")));
            continue;
        }
        page.used(format!("nav:{}:{how}", nav_name(*path)));
        page.used(format!("oem:{how_rows}"));
        page.record(&name, started, StepOutcome::Ok, Some(format!("{how}: {} rows", found.len())));
        rows = found;
        break;
    }

    // 5. OEM candidates and the gearbox OEM by name score.
    let started = Instant::now();
    let (candidates, factory_codes) = settings.oem_scoring.candidates(&rows, settings.max_candidates);
    if gearbox.factory_code.is_none() {
        gearbox.factory_code = factory_codes.into_iter().next();
    }
    if gearbox.model.is_none() {
        let body = vehicle.body.as_deref();
        gearbox.model = detail_headings.iter().find_map(|h| rules::bracketed_model(h, body));
        if gearbox.model.is_some() {
            page.used("gearbox.model:detail_heading");
        }
    }
    if gearbox.factory_code.is_none() && gearbox.model.as_deref().is_some_and(rules::is_factory_code) {
        gearbox.factory_code = gearbox.model.clone();
    }
    gearbox.oem = settings.oem_scoring.choose(&candidates).map(|c| c.oem.clone());
    page.record(
        "oem_choice",
        started,
        if gearbox.oem.is_some() { StepOutcome::Ok } else { StepOutcome::Miss },
        Some(format!("{} candidates, chosen {}", candidates.len(), gearbox.oem.as_deref().unwrap_or("none"))),
    );
    gearbox.oem_candidates = candidates;
    Ok(SiteAnswer::from_parts(vehicle, gearbox))
}

fn nav_name(path: NavPath) -> &'static str {
    match path {
        NavPath::Accordion => "accordion",
        NavPath::SchemesTab => "schemes_tab",
        NavPath::ContentLink => "content_link",
        NavPath::TextLink => "text_link",
    }
}

async fn read_page(page: &Page<'_>, sel: &PodzamenuSelectors, detail: bool) -> Result<PageData, BrowserError> {
    let arg = json!({
        "titles": if detail { Vec::new() } else { sel.title_selectors.clone() },
        "titleSkip": sel.title_skip,
        "root": sel.text_root,
        "headings": if detail { sel.detail_headings.clone() } else { Vec::new() },
        "links": if detail { sel.oem_links.clone() } else { Vec::new() },
        "queryParam": sel.oem_query_param,
        "row": sel.oem_row,
        "names": sel.oem_names,
    });
    let value = page.exec(if detail { "read_detail" } else { "read_vehicle" }, PAGE_DATA_JS, arg).await?;
    let data: PageData = serde_json::from_value(value).unwrap_or_default();
    tracing::trace!(href = %data.href, chars = data.text.len(), "page data read");
    Ok(data)
}

/// OEM rows of a parts page: OEM links with their name cells, else an OEM table.
fn detail_rows(data: &PageData) -> (Vec<(String, String)>, String) {
    if !data.links.is_empty() {
        let rows = data.links.iter().map(|l| (l.oem.clone(), l.name.clone())).collect();
        return (rows, format!("links:{}", data.link_selector.as_deref().unwrap_or("?")));
    }
    (rules::oem_rows_from_tables(&data.tables), "table".into())
}

fn detail_effect(sel: &PodzamenuSelectors) -> Effect<'_> {
    Effect::Appears { selectors: &sel.detail_ready, patterns: &sel.detail_empty_patterns, text_root: &sel.text_root }
}

/// Path A: `Трансмиссия` accordion → gearbox sub-accordion → parts-list link.
async fn via_accordion(
    page: &mut Page<'_>,
    sel: &PodzamenuSelectors,
    settings: &ScrapeSettings,
) -> Result<Option<String>, BrowserError> {
    let headers = page
        .find(
            "nav.accordion.find",
            json!({ "selectors": sel.accordion_summary, "contains": sel.transmission_group, "maxLen": 80, "limit": 1 }),
        )
        .await?;
    let Some(header) = headers.into_iter().next() else { return Ok(None) };
    if header.expanded.as_deref() != Some("true")
        && page
            .click(
                "nav.accordion.open",
                &header,
                &sel.click_strategies,
                &Effect::Expanded,
                settings.click_effect_timeout,
                settings.click_effect_timeout,
            )
            .await?
            .is_none()
    {
        return Ok(None);
    }
    let mut groups = page
        .find(
            "nav.accordion.groups",
            json!({
                "scope": header.token, "scopeUp": sel.accordion_root, "selectors": sel.accordion_summary,
                "contains": sel.gearbox_group, "exclude": sel.transmission_group, "maxLen": 80, "limit": 4,
            }),
        )
        .await?;
    if groups.is_empty() {
        groups.push(header.clone());
    }
    for group in &groups {
        if group.token != header.token
            && group.expanded.as_deref() != Some("true")
            && page
                .click(
                    "nav.accordion.group",
                    group,
                    &sel.click_strategies,
                    &Effect::Expanded,
                    settings.click_effect_timeout,
                    settings.click_effect_timeout,
                )
                .await?
                .is_none()
        {
            continue;
        }
        let links = page
            .find(
                "nav.accordion.links",
                json!({
                    "scope": group.token, "scopeUp": sel.accordion_root, "selectors": sel.content_links,
                    "exact": sel.gearbox_links, "contains": sel.gearbox_links, "maxLen": 200, "limit": 2,
                }),
            )
            .await?;
        for link in &links {
            let effect = detail_effect(sel);
            if let Some(strategy) = page
                .click(
                    "nav.accordion.link",
                    link,
                    &sel.click_strategies,
                    &effect,
                    settings.detail_timeout,
                    settings.click_effect_timeout,
                )
                .await?
            {
                return Ok(Some(format!(
                    "{} > {} > {} ({strategy:?})",
                    short(&header.text),
                    short(&group.text),
                    short(&link.text)
                )));
            }
        }
    }
    Ok(None)
}

/// Path C: `СХЕМЫ УЗЛОВ` tab → transmission section → gearbox card.
async fn via_schemes_tab(
    page: &mut Page<'_>,
    sel: &PodzamenuSelectors,
    settings: &ScrapeSettings,
) -> Result<Option<String>, BrowserError> {
    let mut tabs = page
        .find(
            "nav.tab.find",
            json!({ "selectors": sel.tab_selectors, "exact": sel.schemes_tab_exact, "leaf": true, "maxLen": 30, "limit": 1 }),
        )
        .await?;
    if tabs.is_empty() {
        tabs = page
            .find(
                "nav.tab.find",
                json!({ "selectors": sel.tab_selectors, "contains": sel.schemes_tab_contains, "maxLen": 30, "limit": 1 }),
            )
            .await?;
    }
    let Some(tab) = tabs.into_iter().next() else { return Ok(None) };
    if page
        .click(
            "nav.tab.open",
            &tab,
            &sel.click_strategies,
            &Effect::Selected,
            settings.click_effect_timeout,
            settings.click_effect_timeout,
        )
        .await?
        .is_none()
    {
        return Ok(None);
    }
    let sections = page
        .find(
            "nav.tab.sections",
            json!({
                "selectors": sel.section_selectors, "exact": sel.section_keywords, "contains": sel.section_keywords,
                "maxLen": 120, "visibleOnly": true, "limit": 1, "skipToken": tab.token,
            }),
        )
        .await?;
    let Some(section) = sections.into_iter().next() else { return Ok(None) };
    let mut cards_or_detail: Vec<String> = sel.card_selectors.clone();
    cards_or_detail.extend(sel.detail_ready.iter().cloned());
    let cards_effect = Effect::Appears { selectors: &cards_or_detail, patterns: &[], text_root: &sel.text_root };
    if page
        .click(
            "nav.tab.section",
            &section,
            &sel.click_strategies,
            &cards_effect,
            settings.click_effect_timeout,
            settings.click_effect_timeout,
        )
        .await?
        .is_none()
    {
        return Ok(None);
    }
    let card = page
        .exec(
            "nav.tab.card",
            CHOOSE_CARD_JS,
            json!({
                "cards": sel.card_selectors, "keywords": sel.card_keywords,
                "assembly": sel.card_assembly_words, "actions": sel.card_actions,
            }),
        )
        .await?;
    let card: Option<Found> = serde_json::from_value(card).ok();
    let Some(card) = card else {
        // A section page without cards may itself list the parts.
        let arg = json!({ "kind": "appears", "selectors": sel.detail_ready });
        let seen = page.poll("nav.tab.section_detail", EFFECT_JS, &arg, Duration::from_millis(300)).await?;
        return Ok(seen.map(|_| format!("{} > {}", short(&tab.text), short(&section.text))));
    };
    let effect = detail_effect(sel);
    let strategy = page
        .click(
            "nav.tab.card_open",
            &card,
            &sel.click_strategies,
            &effect,
            settings.detail_timeout,
            settings.click_effect_timeout,
        )
        .await?;
    Ok(strategy.map(|s| {
        format!(
            "{} > {} > {} [{}] ({s:?})",
            short(&tab.text),
            short(&section.text),
            short(card.card.as_deref().unwrap_or("")),
            short(&card.text)
        )
    }))
}

/// Paths B and D: a link named like the gearbox assembly.
async fn via_link(
    page: &mut Page<'_>,
    sel: &PodzamenuSelectors,
    settings: &ScrapeSettings,
    name: &str,
    selectors: &[String],
    exact: bool,
) -> Result<Option<String>, BrowserError> {
    let arg = if exact {
        json!({ "selectors": selectors, "exact": sel.gearbox_links, "maxLen": 200, "limit": 1 })
    } else {
        json!({ "selectors": selectors, "contains": sel.text_link_keywords, "maxLen": 200, "limit": 1 })
    };
    let links = page.find(&format!("nav.{name}.find"), arg).await?;
    let Some(link) = links.into_iter().next() else { return Ok(None) };
    let effect = detail_effect(sel);
    let strategy = page
        .click(
            &format!("nav.{name}.open"),
            &link,
            &sel.click_strategies,
            &effect,
            settings.detail_timeout,
            settings.click_effect_timeout,
        )
        .await?;
    Ok(strategy.map(|s| format!("{} ({s:?})", short(&link.text))))
}

impl SiteAnswer {
    /// Found with an OEM, model-only with a model, else not found (vehicle known).
    pub(crate) fn from_parts(vehicle: VehicleMeta, gearbox: GearboxInfo) -> Self {
        if gearbox.oem.is_some() {
            Self::Found { vehicle, gearbox }
        } else if gearbox.model.is_some() {
            Self::ModelOnly { vehicle, gearbox }
        } else {
            Self::NotFound { vehicle: (!vehicle.is_empty()).then_some(vehicle) }
        }
    }
}
