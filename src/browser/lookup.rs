//! Vehicle lookup across the two catalogues: routing, session handling, evidence.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::error::BrowserError;
use super::facts::FieldLabels;
use super::outcome::{
    Evidence, GearboxInfo, IdType, LookupFailure, LookupOutcome, OemFailureKind, Source, StepOutcome, StepRecord,
    VehicleMeta, VehicleQuery,
};
use super::page::Page;
use super::podzamenu::PodzamenuSelectors;
use super::pool::{BrowserPool, PooledSession};
use super::prof_rf::ProfRfSelectors;
use super::rules::OemScoring;
use super::{podzamenu, prof_rf};

/// Which catalogues a lookup may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceStrategy {
    /// VIN: podzamenu then prof-rf (prof-rf first for Chinese VINs); FRAME: podzamenu.
    #[default]
    Auto,
    /// podzamenu only.
    Podzamenu,
    /// prof-rf only (VIN only).
    ProfRf,
}

/// Parsing settings shared by both sites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeSettings {
    /// Labels of vehicle and gearbox fields.
    pub labels: FieldLabels,
    /// Assembly-vs-ancillary name scoring of OEM candidates.
    pub oem_scoring: OemScoring,
    /// How long a click may take to show its effect before the next click strategy is tried.
    pub click_effect_timeout: Duration,
    /// How long a navigation click may take to show the parts list.
    pub detail_timeout: Duration,
    /// Most OEM candidates kept.
    pub max_candidates: usize,
    /// How long a step waits for the controls it needs after the previous click (content that
    /// loads after an accordion opens, sections after a tab).
    pub find_wait: Duration,
    /// How long a reached parts list may take to show its rows.
    pub parts_wait: Duration,
    /// The vehicle page counts as rendered after no element was added or removed for this long
    /// (and no loading indicator shows) …
    pub settle_quiet: Duration,
    /// … waiting for that at most this long.
    pub settle_timeout: Duration,
    /// Navigation that is not there yet is waited for until this long after the vehicle card
    /// rendered (the site renders parts of the page seconds after it loads).
    pub late_content_wait: Duration,
    /// Tries of the OEM step (navigation to the parts list and reading it) when the site fails
    /// during it; the lookup itself is not repeated.
    pub oem_step_attempts: u32,
    /// Pause before the second try of the OEM step (doubled before the third, …).
    pub oem_step_backoff: Duration,
    /// A not-found message must stay this long without the vehicle card appearing.
    pub not_found_confirm: Duration,
}

impl Default for ScrapeSettings {
    fn default() -> Self {
        Self {
            labels: FieldLabels::default(),
            oem_scoring: OemScoring::default(),
            click_effect_timeout: Duration::from_millis(1500),
            detail_timeout: Duration::from_secs(10),
            max_candidates: 20,
            find_wait: Duration::from_secs(2),
            parts_wait: Duration::from_millis(1500),
            settle_quiet: Duration::from_millis(200),
            settle_timeout: Duration::from_secs(6),
            late_content_wait: Duration::from_secs(6),
            oem_step_attempts: 3,
            oem_step_backoff: Duration::from_millis(500),
            not_found_confirm: Duration::from_millis(600),
        }
    }
}

/// Where the catalogues are and how they are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteConfig {
    /// `PODZAMENU_BASE_URL`, e.g. `https://podzamenu.ru`.
    pub podzamenu_base_url: String,
    /// `PROF_RF_BASE_URL`.
    pub prof_rf_base_url: String,
    /// Which sites to use.
    pub strategy: SourceStrategy,
    /// podzamenu selectors.
    pub podzamenu: PodzamenuSelectors,
    /// prof-rf selectors.
    pub prof_rf: ProfRfSelectors,
    /// Shared parsing settings.
    pub scrape: ScrapeSettings,
    /// Bound of one whole lookup (all sites, all steps).
    pub lookup_timeout: Duration,
    /// Page HTML kept in evidence is cut to this many bytes.
    pub max_html_bytes: usize,
    /// Also keep a screenshot and the HTML of successful lookups.
    pub capture_on_success: bool,
}

impl SiteConfig {
    /// Defaults for the two base URLs.
    pub fn new(podzamenu_base_url: impl Into<String>, prof_rf_base_url: impl Into<String>) -> Self {
        Self {
            podzamenu_base_url: podzamenu_base_url.into(),
            prof_rf_base_url: prof_rf_base_url.into(),
            strategy: SourceStrategy::Auto,
            podzamenu: PodzamenuSelectors::default(),
            prof_rf: ProfRfSelectors::default(),
            scrape: ScrapeSettings::default(),
            lookup_timeout: Duration::from_secs(90),
            max_html_bytes: 1024 * 1024,
            capture_on_success: false,
        }
    }

    /// `PODZAMENU_BASE_URL` and `PROF_RF_BASE_URL`, bounded by `LOOKUP_TIMEOUT_SECS`.
    pub fn from_settings(settings: &crate::config::Settings) -> Self {
        let mut sites = Self::new(settings.podzamenu_base_url.clone(), settings.prof_rf_base_url.clone());
        sites.lookup_timeout = settings.lookup.lookup_timeout;
        sites
    }

    /// Sites to ask, in order, for `query`.
    pub fn plan(&self, query: &VehicleQuery) -> Vec<Source> {
        match (query.id_type(), self.strategy) {
            (IdType::Frame, SourceStrategy::ProfRf) => Vec::new(),
            (IdType::Frame, _) | (IdType::Vin, SourceStrategy::Podzamenu) => vec![Source::Podzamenu],
            (IdType::Vin, SourceStrategy::ProfRf) => vec![Source::ProfRf],
            (IdType::Vin, SourceStrategy::Auto) if query.is_china_vin() => vec![Source::ProfRf, Source::Podzamenu],
            (IdType::Vin, SourceStrategy::Auto) => vec![Source::Podzamenu, Source::ProfRf],
        }
    }
}

/// A site's answer before evidence is attached.
#[derive(Debug, Clone)]
pub(crate) enum SiteAnswer {
    Found { vehicle: VehicleMeta, gearbox: GearboxInfo },
    ModelOnly { vehicle: VehicleMeta, gearbox: GearboxInfo },
    NotFound { vehicle: Option<VehicleMeta> },
}

/// `base` + `path` with `{id}` replaced by the percent-encoded identifier.
pub(crate) fn search_url(base: &str, path: &str, id: &str) -> Result<String, BrowserError> {
    let parsed = reqwest::Url::parse(base).map_err(|e| BrowserError::Config(format!("base URL {base:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(BrowserError::Config(format!("base URL {base:?} is not http(s)")));
    }
    let encoded: String = id
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect();
    Ok(format!("{}{}", base.trim_end_matches('/'), path.replace("{id}", &encoded)))
}

/// One site visit and what it produced.
struct Attempt {
    source: Source,
    result: Result<SiteAnswer, BrowserError>,
    evidence: Evidence,
}

/// Looks a vehicle up: asks the sites of [`SiteConfig::plan`] in order until one finds the gearbox
/// OEM, reusing one pooled session while it stays healthy.
///
/// The first `Found` answer wins, else the first `ModelOnly`; a retryable failure of any site
/// (site down, timeout, ChromeDriver gone) beats `NotFound`, so a vehicle is only reported as not
/// found when every site asked answered so. Steps of all sites are kept in the evidence.
#[tracing::instrument(skip(pool, sites), fields(id_type = query.id_type().as_str()))]
pub async fn lookup_vehicle(
    pool: &BrowserPool,
    sites: &SiteConfig,
    query: VehicleQuery,
) -> Result<LookupOutcome, LookupFailure> {
    let plan = sites.plan(&query);
    if plan.is_empty() {
        return Err(LookupFailure {
            retryable: false,
            reason: format!("no catalogue is configured for {}", query.id_type().as_str()),
            evidence: Box::default(),
        });
    }
    let mut session: Option<PooledSession> = None;
    // The lookup's time counts from its first session: waiting for a free one (other lookups
    // running) must not shorten the lookup, or lookups submitted together would end differently
    // from lookups submitted one by one.
    let mut deadline: Option<Instant> = None;
    let mut attempts: Vec<Attempt> = Vec::new();
    for source in plan {
        let attempt = visit(pool, sites, &query, source, &mut deadline, &mut session).await;
        let stop = match &attempt.result {
            Ok(SiteAnswer::Found { .. }) => true,
            // Without a browser no other site can be asked either.
            Err(e) => {
                matches!(e, BrowserError::WebDriverUnreachable(_) | BrowserError::PoolClosed | BrowserError::Config(_))
            }
            Ok(_) => false,
        };
        attempts.push(attempt);
        if stop || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
    }
    drop(session);
    let result = combine(attempts);
    match &result {
        Ok(outcome) => tracing::info!(
            status = outcome.status(),
            source = outcome.source().as_str(),
            millis = outcome.evidence().total_millis(),
            "vehicle lookup finished"
        ),
        Err(failure) => {
            tracing::warn!(retryable = failure.retryable, reason = %failure.reason, "vehicle lookup failed")
        }
    }
    result
}

async fn visit(
    pool: &BrowserPool,
    sites: &SiteConfig,
    query: &VehicleQuery,
    source: Source,
    deadline: &mut Option<Instant>,
    slot: &mut Option<PooledSession>,
) -> Attempt {
    let started = Instant::now();
    if slot.as_ref().is_some_and(PooledSession::is_broken) {
        *slot = None;
    }
    if slot.is_none() {
        match pool.acquire().await {
            Ok(session) => *slot = Some(session),
            Err(err) => {
                let evidence = Evidence {
                    steps: vec![StepRecord {
                        name: format!("{}.acquire_session", source.as_str()),
                        url: None,
                        millis: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                        outcome: StepOutcome::Failed,
                        detail: Some(err.to_string()),
                    }],
                    sources_tried: vec![source],
                    ..Evidence::default()
                };
                return Attempt { source, result: Err(err), evidence };
            }
        }
    }
    let Some(session) = slot.as_mut() else {
        return Attempt { source, result: Err(BrowserError::PoolClosed), evidence: Evidence::default() };
    };
    let client = session.client().clone();
    let deadline = *deadline.get_or_insert_with(|| Instant::now() + sites.lookup_timeout);
    let mut page = Page::new(&client, source, pool.config().step_timeout, deadline);
    page.record(
        "acquire_session",
        started,
        StepOutcome::Ok,
        Some(format!(
            "{} session {} (use {})",
            if session.reused() { "reused" } else { "new" },
            session.id(),
            session.uses()
        )),
    );
    let result = match source {
        Source::Podzamenu => {
            podzamenu::lookup(&mut page, &sites.podzamenu_base_url, query, &sites.podzamenu, &sites.scrape).await
        }
        Source::ProfRf => {
            prof_rf::lookup(&mut page, &sites.prof_rf_base_url, query, &sites.prof_rf, &sites.scrape).await
        }
    };
    let capture = match &result {
        Err(err) => {
            session.observe(err);
            !matches!(err, BrowserError::WebDriverUnreachable(_) | BrowserError::SessionDied(_))
        }
        Ok(SiteAnswer::NotFound { .. }) => true,
        // The page where the search for the OEM stopped shows the operator why.
        Ok(SiteAnswer::ModelOnly { gearbox, .. })
            if gearbox
                .oem_search
                .as_ref()
                .and_then(|s| s.failure.as_ref())
                .is_some_and(|f| f.kind != OemFailureKind::Skipped) =>
        {
            true
        }
        Ok(_) => sites.capture_on_success,
    };
    if capture {
        page.capture(sites.max_html_bytes).await;
    }
    Attempt { source, result, evidence: page.finish() }
}

/// Picks the answer (see [`lookup_vehicle`]) and merges the evidence of all attempts.
fn combine(attempts: Vec<Attempt>) -> Result<LookupOutcome, LookupFailure> {
    let mut steps = Vec::new();
    let mut selectors = Vec::new();
    let mut tried = Vec::new();
    let mut summary = Vec::new();
    for a in &attempts {
        steps.extend(a.evidence.steps.iter().cloned());
        selectors.extend(a.evidence.selectors_used.iter().cloned());
        if !tried.contains(&a.source) {
            tried.push(a.source);
        }
        summary.push(match &a.result {
            Ok(SiteAnswer::Found { .. }) => format!("{}: found", a.source.as_str()),
            Ok(SiteAnswer::ModelOnly { .. }) => format!("{}: model only", a.source.as_str()),
            Ok(SiteAnswer::NotFound { .. }) => format!("{}: not found", a.source.as_str()),
            Err(e) => format!("{}: {e}", a.source.as_str()),
        });
    }
    let merge = |mut evidence: Evidence| {
        evidence.steps = steps.clone();
        evidence.selectors_used = selectors.clone();
        evidence.sources_tried = tried.clone();
        evidence
    };
    let pick = |want: fn(&Attempt) -> bool| attempts.iter().position(want);
    let chosen = pick(|a| matches!(a.result, Ok(SiteAnswer::Found { .. })))
        .or_else(|| pick(|a| matches!(a.result, Ok(SiteAnswer::ModelOnly { .. }))));
    let retryable_failure = pick(|a| a.result.as_ref().is_err_and(BrowserError::is_retryable));
    let not_found = pick(|a| matches!(a.result, Ok(SiteAnswer::NotFound { .. })));
    let index = chosen.or(retryable_failure).or(not_found).unwrap_or(0);
    let mut attempts = attempts;
    if index >= attempts.len() {
        return Err(LookupFailure {
            retryable: false,
            reason: "no catalogue was asked".into(),
            evidence: Box::new(merge(Evidence::default())),
        });
    }
    let Attempt { source, result, evidence } = attempts.swap_remove(index);
    let evidence = merge(evidence);
    match result {
        Ok(SiteAnswer::Found { vehicle, gearbox }) => Ok(LookupOutcome::Found { vehicle, gearbox, source, evidence }),
        Ok(SiteAnswer::ModelOnly { vehicle, gearbox }) => {
            Ok(LookupOutcome::ModelOnly { vehicle, gearbox, source, evidence })
        }
        Ok(SiteAnswer::NotFound { vehicle }) => Ok(LookupOutcome::NotFound { source, vehicle, evidence }),
        Err(err) => Err(LookupFailure {
            retryable: err.is_retryable(),
            reason: summary.join("; "),
            evidence: Box::new(evidence),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(source: Source, result: Result<SiteAnswer, BrowserError>) -> Attempt {
        let evidence = Evidence {
            steps: vec![StepRecord {
                name: format!("{}.goto", source.as_str()),
                url: None,
                millis: 5,
                outcome: StepOutcome::Ok,
                detail: None,
            }],
            ..Evidence::default()
        };
        Attempt { source, result, evidence }
    }

    #[test]
    fn routing_plan() {
        let sites = SiteConfig::new("http://a", "http://b");
        let vin = VehicleQuery::parse(IdType::Vin, "JTNBK40K203012345").unwrap();
        let china = VehicleQuery::parse(IdType::Vin, "LGWEF6A59NH012345").unwrap();
        let frame = VehicleQuery::parse(IdType::Frame, "NT31-012345").unwrap();
        assert_eq!(sites.plan(&vin), vec![Source::Podzamenu, Source::ProfRf]);
        assert_eq!(sites.plan(&china), vec![Source::ProfRf, Source::Podzamenu]);
        assert_eq!(sites.plan(&frame), vec![Source::Podzamenu]);
    }

    #[test]
    fn combine_prefers_found_then_model_then_failure_then_not_found() {
        let model_only = SiteAnswer::ModelOnly {
            vehicle: VehicleMeta::default(),
            gearbox: GearboxInfo { model: Some("F1CJA".into()), ..GearboxInfo::default() },
        };
        let out = combine(vec![
            attempt(Source::Podzamenu, Ok(model_only)),
            attempt(Source::ProfRf, Ok(SiteAnswer::NotFound { vehicle: None })),
        ])
        .unwrap();
        assert_eq!(out.status(), "MODEL_ONLY");
        assert_eq!(out.evidence().steps.len(), 2);
        assert_eq!(out.evidence().sources_tried, vec![Source::Podzamenu, Source::ProfRf]);

        let failure = combine(vec![
            attempt(Source::Podzamenu, Err(BrowserError::timeout("podzamenu.goto", Duration::from_secs(3)))),
            attempt(Source::ProfRf, Ok(SiteAnswer::NotFound { vehicle: None })),
        ])
        .unwrap_err();
        assert!(failure.retryable);
        assert!(failure.reason.contains("prof_rf: not found"), "{}", failure.reason);

        let not_found = combine(vec![
            attempt(Source::Podzamenu, Ok(SiteAnswer::NotFound { vehicle: None })),
            attempt(Source::ProfRf, Ok(SiteAnswer::NotFound { vehicle: None })),
        ])
        .unwrap();
        assert_eq!(not_found.source(), Source::Podzamenu);
    }

    #[test]
    fn search_urls() {
        assert_eq!(
            search_url("http://127.0.0.1:1/", "/search-vehicle?vin={id}", "NT31-012345").unwrap(),
            "http://127.0.0.1:1/search-vehicle?vin=NT31-012345"
        );
        assert!(search_url("not a url", "/x", "A").is_err());
    }
}
