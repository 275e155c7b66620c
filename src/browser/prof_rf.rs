//! prof-rf (catalogue of Chinese cars): VIN search page with vehicle facts and OEM blocks
//! (`Оригинал`, `Аналоги`, `Копии`).

use std::time::Instant;

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::BrowserError;
use super::facts::Facts;
use super::lookup::{ScrapeSettings, SiteAnswer, search_url};
use super::outcome::{GearboxInfo, OemFailureKind, OemSearch, OemStepFailure, StepOutcome, VehicleQuery};
use super::page::{BLOCKS_JS, PROBE_JS, Page, short};
use super::rules;

/// Selectors, keywords and patterns for prof-rf. Defaults match the live site as documented in
/// `docs/vehicle-lookup-sites.md`; every field can be overridden from configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProfRfSelectors {
    /// Search URL path; `{id}` is replaced by the URL-encoded VIN.
    pub search_path: String,
    /// Any visible one means the result has rendered.
    pub result_ready: Vec<String>,
    /// Content root (first match) for visible-text checks and block parsing.
    pub text_root: Vec<String>,
    /// Visible markers of "VIN not in the database".
    pub not_found_selectors: Vec<String>,
    /// Regexes on the visible text meaning "not found" (JavaScript `RegExp`, case-insensitive;
    /// `\b` only knows Latin letters there, so Cyrillic words are matched without it).
    pub not_found_patterns: Vec<String>,
    /// Visible markers of a site error.
    pub error_selectors: Vec<String>,
    /// Regexes (JavaScript, case-insensitive) on the visible text meaning a site error (retryable).
    pub error_patterns: Vec<String>,
    /// Headings that start blocks.
    pub heading_selectors: Vec<String>,
    /// Rust regex on headings whose second group is the gearbox OEM (`Коробка передач 3000100XGW51A`);
    /// at least 9 characters so a model code (`7DCT300`) in a heading is not taken for an OEM.
    pub header_oem_pattern: String,
    /// Heading fragments of the original-parts block.
    pub original_block: Vec<String>,
    /// Heading fragments of blocks never used for the gearbox OEM (analogues, copies).
    pub other_blocks: Vec<String>,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

impl Default for ProfRfSelectors {
    fn default() -> Self {
        Self {
            search_path: "/search?query={id}&type=vin".into(),
            result_ready: strings(&["article table", "article dl", ".car-info", "[class*=\"vehicle-info\"]"]),
            text_root: strings(&["main", "article", ".content", "#content", "body"]),
            not_found_selectors: strings(&[".not-found", "[class*=\"notFound\"]"]),
            not_found_patterns: strings(&[
                r"отсутствует\s+в\s+базе\s+данных",
                r"vin\s+код\s+отсутствует",
                r"данный\s+vin\s+код\s+отсутствует",
                r"ничего\s+не\s+найдено",
                r"не\s+найден",
            ]),
            error_selectors: strings(&[".server-error"]),
            error_patterns: strings(&[
                r"временно\s+недоступ",
                r"ошибка\s+сервера",
                r"попробуйте\s+позже",
                r"bad\s+gateway",
            ]),
            heading_selectors: strings(&["h1", "h2", "h3", "h4", "h5", "[class*=\"block-title\"]"]),
            header_oem_pattern: r"(?i)(коробка\s+передач|трансмиссия)\s+([A-Z0-9][A-Z0-9\-]{8,19})\b".into(),
            original_block: strings(&["оригинал"]),
            other_blocks: strings(&["аналог", "копи", "замен"]),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Blocks {
    href: String,
    blocks: Vec<Block>,
    lines: Vec<String>,
    pairs: Vec<(String, String)>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Block {
    heading: String,
    tables: Vec<Vec<Vec<String>>>,
}

/// Runs the prof-rf steps on `page`.
pub(crate) async fn lookup(
    page: &mut Page<'_>,
    base_url: &str,
    query: &VehicleQuery,
    sel: &ProfRfSelectors,
    settings: &ScrapeSettings,
) -> Result<SiteAnswer, BrowserError> {
    let url = search_url(base_url, &sel.search_path, query.value())?;
    page.goto(&url).await?;

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
        Ok(Some(state)) => state,
        Ok(None) => {
            let err = BrowserError::timeout("prof_rf.wait_result", bound);
            page.record("wait_result", started, StepOutcome::Failed, Some(err.to_string()));
            return Err(err);
        }
        Err(err) => {
            page.record("wait_result", started, StepOutcome::Failed, Some(err.to_string()));
            return Err(err);
        }
    };
    let matched = state.get("matched").and_then(Value::as_str).unwrap_or("").to_owned();
    match state.get("state").and_then(Value::as_str).unwrap_or("") {
        "not_found" => {
            page.record("wait_result", started, StepOutcome::Ok, Some(format!("not found: {matched}")));
            page.used(format!("not_found:{matched}"));
            return Ok(SiteAnswer::NotFound { vehicle: None });
        }
        "error" => {
            page.record("wait_result", started, StepOutcome::Failed, Some(format!("site error: {matched}")));
            return Err(BrowserError::Navigation { url, reason: format!("site error page: {matched}") });
        }
        _ => page.record("wait_result", started, StepOutcome::Ok, Some(format!("result: {matched}"))),
    }

    let started = Instant::now();
    let value = page
        .exec("read_result", BLOCKS_JS, json!({ "root": sel.text_root, "headings": sel.heading_selectors }))
        .await?;
    let data: Blocks = serde_json::from_value(value).unwrap_or_default();
    tracing::trace!(href = %data.href, blocks = data.blocks.len(), "prof-rf blocks read");
    let all_tables: Vec<Vec<Vec<String>>> = data.blocks.iter().flat_map(|b| b.tables.iter().cloned()).collect();
    let facts = Facts::collect(&settings.labels, &[], &data.pairs, &data.lines);
    let vehicle = facts.meta.clone();
    let body = vehicle.body.as_deref();

    // OEM rows: the original-parts block, else every block except analogues/copies.
    let lower = |s: &str| s.to_lowercase();
    let is_original = |b: &Block| sel.original_block.iter().any(|k| lower(&b.heading).contains(k.as_str()));
    let is_other = |b: &Block| sel.other_blocks.iter().any(|k| lower(&b.heading).contains(k.as_str()));
    let original: Vec<Vec<Vec<String>>> =
        data.blocks.iter().filter(|b| is_original(b)).flat_map(|b| b.tables.iter().cloned()).collect();
    let (rows, rows_from) = if original.is_empty() {
        let usable: Vec<Vec<Vec<String>>> =
            data.blocks.iter().filter(|b| !is_other(b)).flat_map(|b| b.tables.iter().cloned()).collect();
        (rules::oem_rows_from_tables(&usable), "tables")
    } else {
        (rules::oem_rows_from_tables(&original), "block:оригинал")
    };
    let (mut candidates, _codes) = settings.oem_scoring.candidates(&rows, settings.max_candidates);

    let header_oem = Regex::new(&sel.header_oem_pattern).ok().and_then(|re| {
        data.blocks
            .iter()
            .find_map(|b| re.captures(&b.heading).and_then(|c| c.get(2)).map(|m| rules::normalize_oem(m.as_str())))
    });
    let mut gearbox = GearboxInfo::default();
    if let Some(oem) = header_oem.filter(|o| rules::is_valid_oem(o)) {
        page.used("oem:heading");
        if !candidates.iter().any(|c| c.oem == oem) {
            let name =
                data.blocks.iter().find(|b| b.heading.contains(&oem)).map(|b| b.heading.clone()).unwrap_or_default();
            candidates.insert(
                0,
                super::outcome::OemCandidate { score: settings.oem_scoring.score(&name), oem: oem.clone(), name },
            );
        }
        gearbox.oem = Some(oem);
    } else {
        gearbox.oem = settings.oem_scoring.choose(&candidates).map(|c| c.oem.clone());
        if gearbox.oem.is_some() {
            page.used(format!("oem:{rows_from}"));
        }
    }

    // Model: the vehicle's gearbox field, else a code in the chosen part's name.
    if let Some((model, label)) = facts.gearbox_model() {
        page.used(format!("gearbox.model:label:{}", label.to_lowercase()));
        gearbox.model = Some(model);
    } else if let Some(name) =
        gearbox.oem.as_ref().and_then(|o| candidates.iter().find(|c| &c.oem == o)).map(|c| &c.name)
        && let Some(model) = rules::model_from_text(name, body)
    {
        page.used("gearbox.model:oem_name");
        gearbox.model = Some(model);
    }
    gearbox.factory_code = facts.factory_code();
    if gearbox.oem.is_none() {
        let (kind, reason) = if rows.is_empty() {
            (OemFailureKind::NoOemNumbers, "the result page shows no OEM heading and no parts table".to_owned())
        } else if candidates.is_empty() {
            (OemFailureKind::OnlyInvalidNumbers, format!("{} rows from {rows_from}, no valid OEM number", rows.len()))
        } else {
            (
                OemFailureKind::OnlyAncillaryParts,
                format!("{} candidates from {rows_from}, all ancillary parts", candidates.len()),
            )
        };
        let failure = OemStepFailure { kind, step: "prof_rf.extract".into(), reason, transient: false, attempts: 1 };
        gearbox.oem_search =
            Some(Box::new(OemSearch { site: "prof_rf".into(), paths: Vec::new(), failure: Some(failure) }));
    }
    gearbox.oem_candidates = candidates;
    page.record(
        "extract",
        started,
        if gearbox.oem.is_some() || gearbox.model.is_some() { StepOutcome::Ok } else { StepOutcome::Miss },
        Some(format!(
            "{} tables, {} candidates, oem {}, model {}",
            all_tables.len(),
            gearbox.oem_candidates.len(),
            gearbox.oem.as_deref().unwrap_or("-"),
            short(gearbox.model.as_deref().unwrap_or("-"))
        )),
    );
    Ok(SiteAnswer::from_parts(vehicle, gearbox))
}
