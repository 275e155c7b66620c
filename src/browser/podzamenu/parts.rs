//! The search for the gearbox OEM over the navigation paths, and the parts list itself.
//!
//! [`search`] tries the paths of [`PodzamenuSelectors::nav_paths`] from the vehicle card until a
//! parts list shows a gearbox OEM. It reopens the card between paths, waits for navigation that
//! renders late, and retries the whole step (not the lookup) when the site failed during it. Every
//! path tried is kept in the answer's [`OemSearch`] trail, and without an OEM the trail names the
//! step that stopped the search and why.

use std::time::{Duration, Instant};

use super::super::error::BrowserError;
use super::super::facts::{Field, FieldLabels};
use super::super::lookup::{ScrapeSettings, SiteAnswer};
use super::super::outcome::{
    GearboxInfo, OemCandidate, OemFailureKind, OemPathOutcome, OemPathTrial, OemSearch, OemStepFailure, StepOutcome,
    VehicleMeta,
};
use super::super::page::{Page, short};
use super::super::rules;
use super::{NavPath, Opened, PageData, PodzamenuSelectors, nav, open_vehicle, read_page};

/// How one navigation path ended.
pub(super) enum PathEnd {
    /// The path's first control is not on the page.
    NoEntry { step: String },
    /// A later step found nothing to click, or a click had no effect.
    Stopped { step: String, detail: String },
    /// A parts list (or a page taken for one) was reached; its rows may be empty.
    Reached(Reached),
    /// The parts list says it lists nothing.
    EmptyParts { step: String, detail: String },
    /// A step failed: a site error, or a browser error that did not end the session.
    Failed { step: String, reason: String, transient: bool },
}

/// A parts list that was reached.
pub(super) struct Reached {
    /// The step that opened it.
    pub step: String,
    /// What was clicked on the way.
    pub trail: String,
    /// `(oem, name)` rows as shown.
    pub rows: Vec<(String, String)>,
    /// Where the rows came from (`links:<selector>`, `table`).
    pub rows_from: String,
    /// Headings of the page (a bracketed model code).
    pub headings: Vec<String>,
}

/// Reads the OEM rows of the current page; with `wait`, waits briefly for a list that is still
/// rendering.
pub(super) async fn read_parts(
    page: &mut Page<'_>,
    sel: &PodzamenuSelectors,
    settings: &ScrapeSettings,
    step: &str,
    trail: String,
    wait: bool,
) -> Result<Reached, BrowserError> {
    let started = Instant::now();
    let wait = if wait { page.short_bound(settings.parts_wait) } else { Duration::ZERO };
    page.settle("read_parts", &sel.loading, Duration::from_millis(100), wait).await?;
    let until = Instant::now() + wait;
    let (data, rows, rows_from) = loop {
        let data = read_page(page, sel, true).await?;
        let (rows, rows_from) = detail_rows(&data, &settings.labels);
        if !rows.is_empty() || Instant::now() >= until {
            break (data, rows, rows_from);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    if !data.href.is_empty() {
        page.last_url = Some(data.href.clone());
    }
    page.record(
        "read_parts",
        started,
        if rows.is_empty() { StepOutcome::Miss } else { StepOutcome::Ok },
        Some(format!("{}: {} rows from {rows_from}", short(&trail), rows.len())),
    );
    Ok(Reached { step: step.to_owned(), trail, rows, rows_from, headings: data.headings })
}

/// OEM rows of a parts page: OEM links (new since the click) with their names, else the first OEM
/// table, tables that appeared since the click first; the vehicle card's own table is never one.
fn detail_rows(data: &PageData, labels: &FieldLabels) -> (Vec<(String, String)>, String) {
    if !data.links.is_empty() {
        let rows = data.links.iter().map(|l| (l.oem.clone(), l.name.clone())).collect();
        return (rows, format!("links:{}", data.link_selector.as_deref().unwrap_or("?")));
    }
    let tables: Vec<Vec<Vec<String>>> = data
        .tables
        .iter()
        .filter(|t| t.fresh)
        .chain(data.tables.iter().filter(|t| !t.fresh))
        .filter(|t| !is_vehicle_table(&t.rows, labels))
        .map(|t| t.rows.clone())
        .collect();
    (rules::oem_rows_from_tables(&tables), "table".into())
}

/// Whether a table describes the vehicle (at least two vehicle labels in its header row or first
/// column) rather than listing parts.
fn is_vehicle_table(rows: &[Vec<String>], labels: &FieldLabels) -> bool {
    let vehicle = |label: &str| {
        labels.classify(label).is_some_and(|f| !matches!(f, Field::Ignore | Field::FactoryCode | Field::GearboxModel))
    };
    let header = rows.first().map_or(0, |r| r.iter().filter(|c| vehicle(c)).count());
    let column = rows.iter().filter(|r| r.len() == 2 && vehicle(&r[0])).count();
    header >= 2 || column >= 2
}

/// What the search saw.
pub(super) struct Search {
    trail: Vec<OemPathTrial>,
    /// The parts list whose rows gave a gearbox OEM.
    found: Option<Reached>,
    /// Parts lists reached without a gearbox OEM, and empty-list ends, in order.
    reached: Vec<Reached>,
    empty: Option<(String, String)>,
    stopped: Option<(String, String)>,
    /// The last transient failure, when the last try of the step ended with one.
    transient: Option<(String, String)>,
    attempts: u32,
}

/// Tries the navigation paths from the vehicle card at `url` until one reaches a parts list with
/// a gearbox OEM. A site failure during the step is retried (the vehicle page is reopened) up to
/// `ScrapeSettings::oem_step_attempts` tries; a lost browser ends the lookup with the error.
pub(super) async fn search(
    page: &mut Page<'_>,
    url: &str,
    loaded_at: Instant,
    sel: &PodzamenuSelectors,
    settings: &ScrapeSettings,
) -> Result<Search, BrowserError> {
    let mut search = Search {
        trail: Vec::new(),
        found: None,
        reached: Vec::new(),
        empty: None,
        stopped: None,
        transient: None,
        attempts: 0,
    };
    let mut loaded_at = loaded_at;
    let tries = settings.oem_step_attempts.max(1);
    for attempt in 1..=tries {
        search.attempts = attempt;
        search.transient = None;
        if attempt > 1 {
            tokio::time::sleep(page.short_bound(settings.oem_step_backoff * (attempt - 1))).await;
            match reopen(page, url, sel, settings).await {
                Ok(at) => loaded_at = at,
                Err(err) => {
                    fatal(page, err.clone()).await?;
                    search.transient = Some(("podzamenu.nav.reopen".into(), err.to_string()));
                    continue;
                }
            }
        }
        let present = wait_for_entries(page, &sel.nav_paths, loaded_at, sel, settings).await?;
        let mut paths: Vec<NavPath> = sel.nav_paths.clone();
        let mut dirty = false;
        for pass in 0..2 {
            for path in paths.clone() {
                if page.bound().is_zero() {
                    search.transient = Some(("podzamenu.nav".into(), "the lookup's time ran out".into()));
                    break;
                }
                if dirty {
                    match reopen(page, url, sel, settings).await {
                        Ok(at) => loaded_at = at,
                        Err(err) => {
                            fatal(page, err.clone()).await?;
                            search.transient = Some(("podzamenu.nav.reopen".into(), err.to_string()));
                            break;
                        }
                    }
                }
                let started = Instant::now();
                let end = match nav::run(page, path, sel, settings).await {
                    Ok(end) => end,
                    Err(err) => {
                        fatal(page, err.clone()).await?;
                        PathEnd::Failed {
                            step: format!("podzamenu.nav.{}", path.as_str()),
                            reason: err.to_string(),
                            transient: err.is_retryable(),
                        }
                    }
                };
                dirty = !matches!(end, PathEnd::NoEntry { .. });
                if search.note(page, path, attempt, end, started, settings) {
                    return Ok(search);
                }
            }
            if search.transient.is_some() || pass == 1 {
                break;
            }
            // Navigation that renders late: wait (counted from the page load) for the transmission
            // accordion or the schemes tab if either was missing, and try its path.
            let missing: Vec<NavPath> = sel
                .nav_paths
                .iter()
                .copied()
                .filter(|p| matches!(p, NavPath::Accordion | NavPath::SchemesTab) && !present.contains(p))
                .collect();
            if missing.is_empty() {
                break;
            }
            if dirty {
                match reopen(page, url, sel, settings).await {
                    Ok(at) => loaded_at = at,
                    Err(err) => {
                        fatal(page, err.clone()).await?;
                        search.transient = Some(("podzamenu.nav.reopen".into(), err.to_string()));
                        break;
                    }
                }
                dirty = false;
            }
            let started = Instant::now();
            let appeared = wait_for_any(page, &missing, loaded_at + settings.late_content_wait, sel).await?;
            page.record(
                "nav.late",
                started,
                if appeared.is_empty() { StepOutcome::Miss } else { StepOutcome::Ok },
                Some(format!(
                    "{} {}",
                    names(&missing),
                    if appeared.is_empty() { "never rendered" } else { "rendered late" }
                )),
            );
            if appeared.is_empty() {
                break;
            }
            paths = appeared;
        }
        if search.transient.is_none() {
            break;
        }
    }
    Ok(search)
}

/// Paths whose first control shows, after waiting (from the page load, at most
/// `late_content_wait`) until at least one does.
async fn wait_for_entries(
    page: &mut Page<'_>,
    paths: &[NavPath],
    loaded_at: Instant,
    sel: &PodzamenuSelectors,
    settings: &ScrapeSettings,
) -> Result<Vec<NavPath>, BrowserError> {
    let started = Instant::now();
    let present = present_entries(page, paths, sel).await?;
    if !present.is_empty() {
        return Ok(present);
    }
    let present = wait_for_any(page, paths, loaded_at + settings.late_content_wait, sel).await?;
    page.record(
        "nav.wait",
        started,
        if present.is_empty() { StepOutcome::Miss } else { StepOutcome::Ok },
        Some(if present.is_empty() {
            "no navigation to the parts list rendered".into()
        } else {
            format!("{} rendered", names(&present))
        }),
    );
    Ok(present)
}

async fn present_entries(
    page: &Page<'_>,
    paths: &[NavPath],
    sel: &PodzamenuSelectors,
) -> Result<Vec<NavPath>, BrowserError> {
    let mut present = Vec::new();
    for path in paths {
        if !page.find("nav.entry", nav::entry(*path, sel)).await?.is_empty() {
            present.push(*path);
        }
    }
    Ok(present)
}

/// Polls until the first control of one of `paths` shows, or `until`.
async fn wait_for_any(
    page: &Page<'_>,
    paths: &[NavPath],
    until: Instant,
    sel: &PodzamenuSelectors,
) -> Result<Vec<NavPath>, BrowserError> {
    loop {
        let present = present_entries(page, paths, sel).await?;
        let left = until.saturating_duration_since(Instant::now()).min(page.bound());
        if !present.is_empty() || left.is_zero() {
            return Ok(present);
        }
        tokio::time::sleep(left.min(Duration::from_millis(150))).await;
    }
}

fn names(paths: &[NavPath]) -> String {
    paths.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")
}

/// Opens the vehicle page again (to try the next path, or the step again).
async fn reopen(
    page: &mut Page<'_>,
    url: &str,
    sel: &PodzamenuSelectors,
    settings: &ScrapeSettings,
) -> Result<Instant, BrowserError> {
    match open_vehicle(page, url, sel, settings).await? {
        Opened::Card(at) => Ok(at),
        Opened::NotFound => Err(BrowserError::Navigation {
            url: url.to_owned(),
            reason: "the vehicle page showed no vehicle when opened again".into(),
        }),
    }
}

/// Errors after which no step can run on this session (ChromeDriver or the browser gone, a command
/// still hanging) are returned; others are the step's own failure.
async fn fatal(page: &Page<'_>, err: BrowserError) -> Result<(), BrowserError> {
    match err {
        BrowserError::WebDriverUnreachable(_)
        | BrowserError::SessionDied(_)
        | BrowserError::SessionNotCreated(_)
        | BrowserError::PoolClosed
        | BrowserError::Config(_) => Err(err),
        // A command that outlived its bound may still occupy the session.
        BrowserError::Timeout { .. } if !page.alive().await => Err(err),
        _ => Ok(()),
    }
}

impl Search {
    /// Records a path's end in the trail and the evidence; `true` when it found the gearbox OEM.
    fn note(
        &mut self,
        page: &mut Page<'_>,
        path: NavPath,
        attempt: u32,
        end: PathEnd,
        started: Instant,
        settings: &ScrapeSettings,
    ) -> bool {
        let url = page.last_url.clone();
        let name = format!("nav.{}", path.as_str());
        let (outcome, step, detail) = match &end {
            PathEnd::NoEntry { step } => (OemPathOutcome::NoEntry, step.clone(), None),
            PathEnd::Stopped { step, detail } => (OemPathOutcome::Stopped, step.clone(), Some(detail.clone())),
            PathEnd::EmptyParts { step, detail } => (OemPathOutcome::EmptyParts, step.clone(), Some(detail.clone())),
            PathEnd::Failed { step, reason, .. } => (OemPathOutcome::Failed, step.clone(), Some(reason.clone())),
            PathEnd::Reached(r) if r.rows.is_empty() => {
                (OemPathOutcome::NoRows, r.step.clone(), Some(format!("{}: no OEM numbers", r.trail)))
            }
            PathEnd::Reached(r) => {
                (OemPathOutcome::Rows, r.step.clone(), Some(format!("{}: {} rows", r.trail, r.rows.len())))
            }
        };
        let step_outcome = match outcome {
            OemPathOutcome::Rows => StepOutcome::Ok,
            OemPathOutcome::Failed => StepOutcome::Failed,
            _ => StepOutcome::Miss,
        };
        page.record(&name, started, step_outcome, detail.clone().or_else(|| Some(format!("no entry at {step}"))));
        self.trail.push(OemPathTrial { path: path.as_str().into(), attempt, outcome, step: step.clone(), detail, url });
        match end {
            PathEnd::NoEntry { .. } => false,
            PathEnd::Stopped { step, detail } => {
                self.stopped = Some((step, detail));
                false
            }
            PathEnd::EmptyParts { step, detail } => {
                self.empty = Some((step, detail));
                false
            }
            PathEnd::Failed { step, reason, transient } => {
                if transient {
                    self.transient = Some((step, reason));
                } else {
                    self.stopped = Some((step, reason));
                }
                false
            }
            PathEnd::Reached(reached) => {
                let (candidates, _) = settings.oem_scoring.candidates(&reached.rows, settings.max_candidates);
                let chosen = settings.oem_scoring.choose(&candidates).is_some();
                page.used(format!("nav:{}:{}", path.as_str(), reached.trail));
                if chosen {
                    page.used(format!("oem:{}", reached.rows_from));
                    self.found = Some(reached);
                } else {
                    self.reached.push(reached);
                }
                chosen
            }
        }
    }

    /// The site's answer: the gearbox with its OEM (or the step that stopped the search), or an
    /// error when nothing but a transient failure is known.
    pub(super) fn answer(
        self,
        page: &mut Page<'_>,
        settings: &ScrapeSettings,
        vehicle: VehicleMeta,
        mut gearbox: GearboxInfo,
        url: &str,
    ) -> Result<SiteAnswer, BrowserError> {
        let started = Instant::now();
        let body = vehicle.body.clone();
        let source = self.found.as_ref().or_else(|| self.reached.iter().find(|r| !r.rows.is_empty()));
        let (candidates, factory_codes) =
            source.map(|r| settings.oem_scoring.candidates(&r.rows, settings.max_candidates)).unwrap_or_default();
        if gearbox.factory_code.is_none() {
            gearbox.factory_code = factory_codes.first().cloned();
        }
        if gearbox.model.is_none()
            && let Some(model) =
                source.and_then(|r| r.headings.iter().find_map(|h| rules::bracketed_model(h, body.as_deref())))
        {
            page.used("gearbox.model:detail_heading");
            gearbox.model = Some(model);
        }
        if gearbox.factory_code.is_none() && gearbox.model.as_deref().is_some_and(rules::is_factory_code) {
            gearbox.factory_code = gearbox.model.clone();
        }
        gearbox.oem = settings.oem_scoring.choose(&candidates).map(|c| c.oem.clone());
        let failure = if gearbox.oem.is_some() { None } else { Some(self.failure(&candidates, &factory_codes)) };
        page.record(
            "oem_choice",
            started,
            if gearbox.oem.is_some() { StepOutcome::Ok } else { StepOutcome::Miss },
            Some(match (&gearbox.oem, &failure) {
                (Some(oem), _) => format!("{} candidates, chosen {oem}", candidates.len()),
                (None, Some(f)) => {
                    format!("{} candidates, no OEM: {} at {}: {}", candidates.len(), f.kind.as_str(), f.step, f.reason)
                }
                (None, None) => format!("{} candidates, no OEM", candidates.len()),
            }),
        );
        gearbox.oem_candidates = candidates;
        let transient = failure.as_ref().is_some_and(|f| f.transient);
        let reason =
            failure.as_ref().map(|f| format!("gearbox OEM step: {} at {}: {}", f.kind.as_str(), f.step, f.reason));
        gearbox.oem_search = Some(Box::new(OemSearch { site: "podzamenu".into(), paths: self.trail, failure }));
        if gearbox.oem.is_none() && gearbox.model.is_none() && transient {
            // Nothing to answer with and the site failed: a later attempt may do better.
            return Err(BrowserError::Navigation { url: url.to_owned(), reason: reason.unwrap_or_default() });
        }
        Ok(SiteAnswer::from_parts(vehicle, gearbox))
    }

    /// Why no OEM: the furthest the search got.
    fn failure(&self, candidates: &[OemCandidate], factory_codes: &[String]) -> OemStepFailure {
        let attempts = self.attempts;
        let fail = |kind: OemFailureKind, step: &str, reason: String, transient: bool| OemStepFailure {
            kind,
            step: step.to_owned(),
            reason,
            transient,
            attempts,
        };
        let rows_page = self.reached.iter().find(|r| !r.rows.is_empty());
        if let Some((step, reason)) = &self.transient
            && rows_page.is_none()
        {
            return fail(OemFailureKind::SiteError, step, reason.clone(), true);
        }
        if let Some(r) = rows_page {
            if !candidates.is_empty() {
                let names: Vec<String> = candidates.iter().take(4).map(|c| short(&c.name)).collect();
                return fail(
                    OemFailureKind::OnlyAncillaryParts,
                    "podzamenu.oem.choose",
                    format!("{}: only ancillary parts ({})", r.trail, names.join("; ")),
                    false,
                );
            }
            let shown: Vec<&str> = r.rows.iter().take(4).map(|(oem, _)| oem.as_str()).collect();
            let codes = if factory_codes.is_empty() { String::new() } else { " (factory codes)".into() };
            return fail(
                OemFailureKind::OnlyInvalidNumbers,
                "podzamenu.oem.validate",
                format!("{}: no valid OEM number among {}{codes}", r.trail, shown.join(", ")),
                false,
            );
        }
        if let Some((step, detail)) = &self.empty {
            return fail(
                OemFailureKind::PartsListEmpty,
                step,
                format!("the parts list lists nothing: {detail}"),
                false,
            );
        }
        if let Some(r) = self.reached.first() {
            return fail(
                OemFailureKind::NoOemNumbers,
                "podzamenu.oem.read",
                format!("{}: the page shows no OEM numbers", r.trail),
                false,
            );
        }
        if let Some((step, detail)) = &self.stopped {
            return fail(OemFailureKind::PathStopped, step, detail.clone(), false);
        }
        fail(
            OemFailureKind::NoPath,
            "podzamenu.nav",
            "the vehicle page shows no way to the gearbox parts list (transmission accordion, СХЕМЫ УЗЛОВ tab, \
             gearbox parts link)"
                .into(),
            false,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(v: &[&[&str]]) -> Vec<Vec<String>> {
        v.iter().map(|r| r.iter().map(|c| (*c).to_owned()).collect()).collect()
    }

    #[test]
    fn the_vehicle_card_is_not_a_parts_table() {
        let labels = FieldLabels::default();
        let card =
            rows(&[&["Марка", "Модель", "Кузов", "Номер КПП"], &["MITSUBISHI", "LANCER", "CY2A", "EDDVA4480773"]]);
        let kv = rows(&[&["Марка", "TOYOTA"], &["Двигатель", "1G-FE"], &["Маркировка", "A42DE-01A"]]);
        let parts = rows(&[&["Наименование", "Номер детали"], &["АКПП в сборе", "30500-33570"]]);
        assert!(is_vehicle_table(&card, &labels));
        assert!(is_vehicle_table(&kv, &labels));
        assert!(!is_vehicle_table(&parts, &labels));
    }

    #[test]
    fn failure_names_the_furthest_step() {
        let search = |f: &dyn Fn(&mut Search)| {
            let mut s = Search {
                trail: Vec::new(),
                found: None,
                reached: Vec::new(),
                empty: None,
                stopped: None,
                transient: None,
                attempts: 1,
            };
            f(&mut s);
            s
        };
        let none = search(&|_| {});
        assert_eq!(none.failure(&[], &[]).kind, OemFailureKind::NoPath);
        let stopped = search(&|s| s.stopped = Some(("podzamenu.nav.tab.sections".into(), "no section".into())));
        let f = stopped.failure(&[], &[]);
        assert_eq!((f.kind, f.step.as_str()), (OemFailureKind::PathStopped, "podzamenu.nav.tab.sections"));
        let site = search(&|s| {
            s.stopped = Some(("podzamenu.nav.tab.sections".into(), "no section".into()));
            s.transient = Some(("podzamenu.nav.accordion.link".into(), "HTTP 503".into()));
            s.attempts = 3;
        });
        let f = site.failure(&[], &[]);
        assert_eq!((f.kind, f.transient, f.attempts), (OemFailureKind::SiteError, true, 3));
        let reached = |rows: Vec<(String, String)>| Reached {
            step: "podzamenu.nav.accordion.link".into(),
            trail: "Трансмиссия > КПП".into(),
            rows,
            rows_from: "table".into(),
            headings: Vec::new(),
        };
        let codes = search(&|s| s.reached.push(reached(vec![("QCE(6A)".into(), String::new())])));
        assert_eq!(codes.failure(&[], &["QCE(6A)".into()]).kind, OemFailureKind::OnlyInvalidNumbers);
        let filter = OemCandidate { oem: "35330-33050".into(), name: "Фильтр АКПП".into(), score: -1 };
        let ancillary = search(&|s| s.reached.push(reached(vec![("35330-33050".into(), "Фильтр АКПП".into())])));
        assert_eq!(ancillary.failure(&[filter], &[]).kind, OemFailureKind::OnlyAncillaryParts);
        let empty = search(&|s| s.empty = Some(("podzamenu.nav.accordion.link".into(), "Нет данных".into())));
        assert_eq!(empty.failure(&[], &[]).kind, OemFailureKind::PartsListEmpty);
    }
}
