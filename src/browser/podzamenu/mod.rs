//! podzamenu.ru: VIN/FRAME search, vehicle card, navigation to the gearbox parts list, OEM numbers.
//!
//! The site is a React/MUI single-page app. Its tabs and accordions ignore a bare `element.click()`,
//! so controls are clicked with dispatched mouse events first (see [`ClickStrategy`]) and every
//! click is checked by its effect (`aria-expanded`, `aria-selected`, content appearing). Content
//! may render seconds after the page loads, so every step waits (bounded) for what it needs instead
//! of reading the page once. [`nav`] holds the four navigation paths, [`parts`] the search for the
//! OEM over them (with retries of the step when the site fails) and the parts-list parsing.

mod nav;
mod parts;

use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::BrowserError;
use super::facts::{Facts, split_title};
use super::lookup::{ScrapeSettings, SiteAnswer, search_url};
use super::outcome::{GearboxInfo, OemFailureKind, OemSearch, OemStepFailure, StepOutcome, VehicleMeta, VehicleQuery};
use super::page::{ClickStrategy, PAGE_DATA_JS, PROBE_JS, Page, short};
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

impl NavPath {
    /// `accordion`, `schemes_tab`, `content_link` or `text_link`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accordion => "accordion",
            Self::SchemesTab => "schemes_tab",
            Self::ContentLink => "content_link",
            Self::TextLink => "text_link",
        }
    }
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
    /// WMIs (Ford) whose gearbox model is read from the `Transmission` fact (the last market-model
    /// token, see [`rules::ford_transmission_model`]) and answered model-only without opening the
    /// parts list.
    pub ford_wmis: Vec<String>,
    /// Loading indicators: while one is shown the page is still rendering.
    pub loading: Vec<String>,
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
    /// Scheme titles and links of scheme lists without MUI cards (the title's card, link or the
    /// element itself is clicked).
    pub generic_cards: Vec<String>,
    /// Links of an intermediate scheme page that lists sub-schemes instead of parts.
    pub sub_scheme_links: Vec<String>,
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
            result_ready: strings(&[
                "table",
                "button.MuiAccordionSummary-root",
                "[role=\"tab\"]",
                "dl",
                "[class*=\"vehicle-info\"]",
                "[class*=\"vehicleInfo\"]",
            ]),
            text_root: strings(&["body"]),
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
            ford_wmis: strings(&[
                "1FT", "1FA", "1FB", "1FC", "1FD", "1FM", "2FT", "2FA", "2FB", "3FA", "3FB", "3FE", "WF0", "SAJ",
                "SAL", "Z6F", "Z6R", "X9F", "MAJ",
            ]),
            loading: strings(&[
                "[role=\"progressbar\"]",
                "[class*=\"CircularProgress\"]",
                "[class*=\"LinearProgress\"]",
                "[class*=\"Skeleton\"]",
                "[aria-busy=\"true\"]",
                "[class*=\"spinner\"]",
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
            generic_cards: strings(&[
                "[class*=\"selectorPaperContentLink\"]",
                "[class*=\"ContentLink\"]",
                "[class*=\"schemeCard\"]",
                "[class*=\"scheme\"] p",
                "[class*=\"card\"] p",
                "[class*=\"card\"] span",
                "[class*=\"card\"] h3",
                "[class*=\"card\"] h4",
                "h3",
                "h4",
                "[class*=\"title\"]",
                "[class*=\"Title\"]",
            ]),
            sub_scheme_links: strings(&[
                "[class*=\"selectorPaperContentLink\"]",
                "[class*=\"ContentLink\"]",
                "a[class*=\"scheme\"]",
                "a[class*=\"card\"]",
                "button.MuiCardActionArea-root",
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
    tables: Vec<TableData>,
    pairs: Vec<(String, String)>,
    lines: Vec<String>,
    headings: Vec<String>,
    links: Vec<LinkRow>,
    #[serde(rename = "linkSelector")]
    link_selector: Option<String>,
}

/// A table as text rows, and whether it appeared since the last navigation click.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TableData {
    rows: Vec<Vec<String>>,
    fresh: bool,
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
    let loaded_at = match open_vehicle(page, &url, sel, settings).await? {
        Opened::NotFound => return Ok(SiteAnswer::NotFound { vehicle: None }),
        Opened::Card(at) => at,
    };
    let card = read_card(page, sel, settings).await?;
    let Card { vehicle, mut gearbox, transmission } = card;
    if let Some(answer) = early_exit(page, query, sel, &vehicle, &mut gearbox, &transmission) {
        return Ok(answer);
    }
    let search = parts::search(page, &url, loaded_at, sel, settings).await?;
    search.answer(page, settings, vehicle, gearbox, &url)
}

/// What the search page showed.
enum Opened {
    /// The vehicle card, rendered at this instant.
    Card(Instant),
    /// The site says it does not know the identifier.
    NotFound,
}

/// Opens the search page and waits for the single-page app to render the vehicle card (or a
/// not-found / error message), then for it to stop loading.
async fn open_vehicle(
    page: &mut Page<'_>,
    url: &str,
    sel: &PodzamenuSelectors,
    settings: &ScrapeSettings,
) -> Result<Opened, BrowserError> {
    page.goto(url).await?;
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
    let mut state = match page.poll("wait_result", PROBE_JS, &probe, bound).await {
        Ok(Some(state)) => state,
        Ok(None) => {
            let err = BrowserError::timeout("podzamenu.wait_result", bound);
            page.record("wait_result", started, StepOutcome::Failed, Some(err.to_string()));
            return Err(err);
        }
        Err(err) => {
            page.record("wait_result", started, StepOutcome::Failed, Some(err.to_string()));
            return Err(err);
        }
    };
    if state.get("state").and_then(Value::as_str) == Some("not_found") {
        // A not-found message shown while the card is still coming (a placeholder, a message
        // replaced a moment later) must not end the lookup: give the card a moment.
        let ready_only = json!({ "ready": sel.result_ready });
        let confirm = page.short_bound(settings.not_found_confirm);
        if let Some(ready) = page.poll("wait_result", PROBE_JS, &ready_only, confirm).await? {
            state = ready;
        }
    }
    let kind = state.get("state").and_then(Value::as_str).unwrap_or("");
    let matched = state.get("matched").and_then(Value::as_str).unwrap_or("").to_owned();
    match kind {
        "not_found" => {
            page.record("wait_result", started, StepOutcome::Ok, Some(format!("not found: {matched}")));
            page.used(format!("not_found:{matched}"));
            return Ok(Opened::NotFound);
        }
        "error" => {
            page.record("wait_result", started, StepOutcome::Failed, Some(format!("site error: {matched}")));
            return Err(BrowserError::Navigation {
                url: url.to_owned(),
                reason: format!("site error page: {matched}"),
            });
        }
        _ => page.record("wait_result", started, StepOutcome::Ok, Some(format!("vehicle card: {matched}"))),
    }
    let ready_at = Instant::now();
    let started = Instant::now();
    let settled = page.settle("settle", &sel.loading, settings.settle_quiet, settings.settle_timeout).await?;
    page.record(
        "settle",
        started,
        if settled { StepOutcome::Ok } else { StepOutcome::Miss },
        Some(if settled { "rendering done".into() } else { "still rendering; going on".into() }),
    );
    Ok(Opened::Card(ready_at))
}

/// The vehicle card as read.
struct Card {
    vehicle: VehicleMeta,
    gearbox: GearboxInfo,
    /// Gearbox description facts (`Transmission`, `КПП` …) with their labels, in page order.
    transmission: Vec<(String, String)>,
}

/// Title, tables, label/value pairs and `Label: value` lines of the vehicle card.
async fn read_card(
    page: &mut Page<'_>,
    sel: &PodzamenuSelectors,
    settings: &ScrapeSettings,
) -> Result<Card, BrowserError> {
    let started = Instant::now();
    let data = read_page(page, sel, false).await?;
    let tables: Vec<Vec<Vec<String>>> = data.tables.into_iter().map(|t| t.rows).collect();
    let mut facts = Facts::collect(&settings.labels, &tables, &data.pairs, &data.lines);
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
    Ok(Card { vehicle, gearbox, transmission: facts.transmission })
}

/// Makes whose parts tree is not opened: VW group (the catalogue's tree is not usable; the model
/// from the card is the answer) and Ford (the model is the last market-model token of the
/// `Transmission` fact).
fn early_exit(
    page: &mut Page<'_>,
    query: &VehicleQuery,
    sel: &PodzamenuSelectors,
    vehicle: &VehicleMeta,
    gearbox: &mut GearboxInfo,
    transmission: &[(String, String)],
) -> Option<SiteAnswer> {
    let wmi = query.wmi()?;
    let skipped = |step: &str, reason: String| OemSearch {
        site: "podzamenu".into(),
        paths: Vec::new(),
        failure: Some(OemStepFailure {
            kind: OemFailureKind::Skipped,
            step: format!("podzamenu.{step}"),
            reason,
            transient: false,
            attempts: 0,
        }),
    };
    if gearbox.model.is_some() && sel.model_only_wmis.iter().any(|w| w.eq_ignore_ascii_case(wmi)) {
        page.used(format!("early_exit:model_only_wmi:{wmi}"));
        if gearbox.factory_code.is_none() {
            gearbox.factory_code = gearbox.model.clone();
        }
        gearbox.oem_search = Some(Box::new(skipped(
            "early_exit.model_only_wmi",
            format!("{wmi} (VW group): the model comes from the vehicle card; the parts tree is not opened"),
        )));
        return Some(SiteAnswer::ModelOnly { vehicle: vehicle.clone(), gearbox: gearbox.clone() });
    }
    if !sel.ford_wmis.iter().any(|w| w.eq_ignore_ascii_case(wmi)) {
        return None;
    }
    // The `Transmission` fact first (labels naming it exactly), then other gearbox descriptions,
    // then the model already read.
    let named = |label: &str| {
        let l = label.trim().trim_end_matches([':', '：']).trim().to_lowercase();
        l == "transmission" || l == "трансмиссия"
    };
    let from_fact = transmission
        .iter()
        .filter(|(label, _)| named(label))
        .chain(transmission.iter().filter(|(label, _)| !named(label)))
        .find_map(|(label, value)| rules::ford_transmission_model(value).map(|m| (m, label.clone(), value.clone())));
    let (model, why) = match (from_fact, gearbox.model.clone()) {
        (Some((model, label, value)), _) => {
            page.used(format!("early_exit:ford:{}", label.to_lowercase()));
            let why = format!("the last market-model token of \"{label}: {}\"", short(&value));
            (model, why)
        }
        (None, Some(model)) => {
            page.used("early_exit:ford:gearbox_model");
            (model, "the gearbox model of the vehicle card".to_owned())
        }
        (None, None) => return None,
    };
    gearbox.model = Some(model.clone());
    gearbox.factory_code = Some(model.clone());
    gearbox.oem_search = Some(Box::new(skipped(
        "early_exit.ford",
        format!("{wmi} (Ford): gearbox model {model} from {why}; the parts tree is not opened"),
    )));
    Some(SiteAnswer::ModelOnly { vehicle: vehicle.clone(), gearbox: gearbox.clone() })
}

async fn read_page(page: &Page<'_>, sel: &PodzamenuSelectors, detail: bool) -> Result<PageData, BrowserError> {
    let arg = json!({
        "titles": if detail { Vec::new() } else { sel.title_selectors.clone() },
        "titleSkip": sel.title_skip,
        "root": ["body"],
        "lines": !detail,
        "headings": if detail { sel.detail_headings.clone() } else { Vec::new() },
        "links": if detail { sel.oem_links.clone() } else { Vec::new() },
        "queryParam": sel.oem_query_param,
        "row": sel.oem_row,
        "names": sel.oem_names,
    });
    let value = page.exec(if detail { "read_detail" } else { "read_vehicle" }, PAGE_DATA_JS, arg).await?;
    let data: PageData = serde_json::from_value(value).unwrap_or_default();
    tracing::trace!(href = %data.href, tables = data.tables.len(), "page data read");
    Ok(data)
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
