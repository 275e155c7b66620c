//! Vehicle lookup against local fixture copies of podzamenu.ru and prof-rf, driven by real headless
//! Chromium through a ChromeDriver started per test. Fixture identifiers and what they yield are
//! listed in `tests/fixtures/sites/README.md`.

pub mod driver;
pub mod fixture;
pub mod paths;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aisales::browser::{
    BrowserConfig, BrowserPool, ClickStrategy, IdType, LookupFailure, LookupOutcome, Source, StepOutcome, VehicleQuery,
    lookup_vehicle, processes_using,
};
use aisales::browser::{SiteConfig, kill_browsers_using};

use driver::{ChromeDriver, chromium_binary, profile_root};
use fixture::FixtureSite;

const CAMRY_VIN: &str = "JTNBK40K203012345";
const MAZDA_VIN: &str = "JMZGH12F701234567";
const XTRAIL_FRAME: &str = "NT31-012345";
const LANCER_VIN: &str = "JMBSRCY2A8U012345";
const UNKNOWN_VIN: &str = "XTA210990Y2765432";
const JOLION_VIN: &str = "XZGFF06A1PA012345";
const F7_VIN: &str = "LGWEF6A59NH012345";

/// ChromeDriver, both fixture sites and a pool, per test.
struct Harness {
    driver: ChromeDriver,
    podzamenu: FixtureSite,
    prof_rf: FixtureSite,
    pool: BrowserPool,
    sites: SiteConfig,
    profiles: PathBuf,
    _cleanup: ProfileGuard,
}

/// Kills browsers and removes profiles of a test even when it panics.
struct ProfileGuard(PathBuf);

impl Drop for ProfileGuard {
    fn drop(&mut self) {
        kill_browsers_using(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn browser_config(webdriver_url: String, profiles: &Path) -> BrowserConfig {
    let mut config = BrowserConfig::new(webdriver_url);
    config.chromium_binary = chromium_binary();
    config.max_sessions = 2;
    config.session_max_uses = 20;
    config.step_timeout = Duration::from_secs(8);
    config.session_start_timeout = Duration::from_secs(20);
    config.acquire_timeout = Duration::from_secs(30);
    config.profile_root = profiles.to_path_buf();
    config
}

impl Harness {
    async fn start(name: &str, tune: impl FnOnce(&mut BrowserConfig, &mut SiteConfig)) -> Harness {
        let driver = ChromeDriver::start().await;
        let podzamenu = FixtureSite::start("podzamenu").await;
        let prof_rf = FixtureSite::start("prof-rf").await;
        let profiles = profile_root(name);
        let mut config = browser_config(driver.url(), &profiles);
        let mut sites = SiteConfig::new(podzamenu.url(), prof_rf.url());
        sites.lookup_timeout = Duration::from_secs(45);
        sites.scrape.detail_timeout = Duration::from_secs(5);
        sites.scrape.click_effect_timeout = Duration::from_millis(1000);
        tune(&mut config, &mut sites);
        let pool = BrowserPool::new(config);
        let _cleanup = ProfileGuard(profiles.clone());
        Harness { driver, podzamenu, prof_rf, pool, sites, profiles, _cleanup }
    }

    async fn lookup(&self, id_type: IdType, value: &str) -> Result<LookupOutcome, LookupFailure> {
        let query = VehicleQuery::parse(id_type, value).expect("fixture id parses");
        lookup_vehicle(&self.pool, &self.sites, query).await
    }

    /// Closes the pool, checks no browser or profile is left, stops ChromeDriver.
    async fn finish(self) {
        self.pool.close_all().await;
        // Killed processes take a moment to go (a helper Chromium was starting may appear late):
        // whatever is still there after a few seconds was left behind.
        let mut leftovers = processes_using(&self.profiles);
        for _ in 0..50 {
            if leftovers.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            leftovers = processes_using(&self.profiles);
        }
        drop(self);
        assert!(leftovers.is_empty(), "browser processes left after close_all: {leftovers:?}");
    }
}

fn found(outcome: &Result<LookupOutcome, LookupFailure>) -> &LookupOutcome {
    match outcome {
        Ok(o @ LookupOutcome::Found { .. }) => o,
        other => panic!("expected FOUND, got {}", describe(other)),
    }
}

fn describe(outcome: &Result<LookupOutcome, LookupFailure>) -> String {
    match outcome {
        Ok(o) => format!(
            "{} via {:?}: {:?}\nsteps: {:#?}\nselectors: {:?}",
            o.status(),
            o.source(),
            o.gearbox(),
            o.evidence().steps,
            o.evidence().selectors_used
        ),
        Err(f) => format!("failure {f}\nsteps: {:#?}", f.evidence.steps),
    }
}

fn step_detail<'a>(outcome: &'a LookupOutcome, name: &str) -> Vec<&'a str> {
    outcome.evidence().steps.iter().filter(|s| s.name == name).filter_map(|s| s.detail.as_deref()).collect()
}

fn is_png(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn found_by_vin_on_podzamenu() {
    let h = Harness::start("found-vin", |_, _| {}).await;

    // Camry: sidebar accordions (mousedown-only) → "Коробка передач в сборе"; ancillaries listed
    // before the assembly, so only name scoring picks the right OEM.
    let camry = h.lookup(IdType::Vin, CAMRY_VIN).await;
    let LookupOutcome::Found { vehicle, gearbox, source, evidence } = found(&camry) else { unreachable!() };
    assert_eq!(*source, Source::Podzamenu);
    assert_eq!(vehicle.make.as_deref(), Some("TOYOTA"));
    assert_eq!(vehicle.model.as_deref(), Some("CAMRY"));
    assert_eq!(vehicle.engine.as_deref(), Some("2AZ-FE"));
    assert_eq!(vehicle.body.as_deref(), Some("ACV40"));
    assert_eq!(vehicle.year.as_deref(), Some("06.2008"));
    assert_eq!(gearbox.model.as_deref(), Some("U241E"));
    assert_eq!(gearbox.factory_code.as_deref(), Some("U241E-06A"));
    assert_eq!(gearbox.oem.as_deref(), Some("30500-33570"));
    let oems: Vec<&str> = gearbox.oem_candidates.iter().map(|c| c.oem.as_str()).collect();
    assert_eq!(oems.len(), 8, "{oems:?}");
    assert_eq!(oems[0], "35330-33050");
    let assembly = gearbox.oem_candidates.iter().find(|c| c.oem == "30500-33570").unwrap();
    assert_eq!((assembly.name.as_str(), assembly.score), ("АКПП в сборе", 2));
    assert!(gearbox.oem_candidates.iter().filter(|c| c.oem != "30500-33570").all(|c| c.score < 0));
    assert!(
        evidence.selectors_used.iter().any(|s| s.starts_with("podzamenu:nav:accordion:Трансмиссия")),
        "{:?}",
        evidence.selectors_used
    );
    assert!(evidence.steps.iter().any(|s| s.name == "podzamenu.nav.accordion.open"
        && s.detail.as_deref().is_some_and(|d| d.ends_with("via dispatch"))));
    assert!(evidence.source_url.as_deref().is_some_and(|u| u.contains("/vehicle/JTNBK40K203012345/scheme/kpp")));
    assert!(evidence.screenshot_png.is_none() && evidence.page_html.is_none(), "success keeps no screenshot");
    assert_eq!(evidence.sources_tried, vec![Source::Podzamenu]);

    // Mazda: no transmission accordion; "СХЕМЫ УЗЛОВ" tab → section → card whose only action is a
    // plain "ПОСМОТРЕТЬ СХЕМУ" link; the model comes from the parts-page heading ("6MT" is a label).
    let mazda = h.lookup(IdType::Vin, MAZDA_VIN).await;
    let LookupOutcome::Found { vehicle, gearbox, evidence, .. } = found(&mazda) else { unreachable!() };
    assert_eq!(vehicle.make.as_deref(), Some("MAZDA"));
    assert_eq!(vehicle.transmission.as_deref(), Some("6MT"));
    assert_eq!(gearbox.model.as_deref(), Some("A65M-R"));
    assert_eq!(gearbox.oem.as_deref(), Some("AJ72-03-000"));
    assert!(
        evidence.selectors_used.iter().any(|s| s.contains("nav:schemes_tab:") && s.contains("[ПОСМОТРЕТЬ СХЕМУ]")),
        "{:?}",
        evidence.selectors_used
    );
    assert!(evidence.steps.iter().any(|s| s.name == "podzamenu.nav.accordion" && s.outcome == StepOutcome::Miss));
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn found_by_frame_via_schemes_tab() {
    let h = Harness::start("found-frame", |_, _| {}).await;
    let outcome = h.lookup(IdType::Frame, "nt31-012345").await;
    let LookupOutcome::Found { vehicle, gearbox, source, evidence } = found(&outcome) else { unreachable!() };
    assert_eq!(*source, Source::Podzamenu);
    assert_eq!(vehicle.make.as_deref(), Some("NISSAN"));
    assert_eq!(vehicle.model.as_deref(), Some("X-TRAIL"));
    // JF011E has the shape of a CSS class hash; it is a real gearbox model and must survive.
    assert_eq!(gearbox.model.as_deref(), Some("JF011E"));
    assert_eq!(gearbox.oem.as_deref(), Some("31020-1XF2D"));
    assert_eq!(gearbox.oem_candidates.len(), 5);
    // The card naming the gearbox *and* an assembly is opened, not the mounting card.
    assert!(
        evidence.selectors_used.iter().any(|s| s.contains("Вариатор в сборе (CVT)")),
        "{:?}",
        evidence.selectors_used
    );
    assert!(h.podzamenu.requests().iter().any(|r| r == &format!("/search-vehicle?vin={XTRAIL_FRAME}")));
    // FRAME numbers are not sent to prof-rf.
    assert_eq!(evidence.sources_tried, vec![Source::Podzamenu]);
    assert!(h.prof_rf.requests().is_empty());
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_only_when_the_oem_block_is_absent() {
    let h = Harness::start("model-only", |_, _| {}).await;
    let outcome = h.lookup(IdType::Vin, LANCER_VIN).await;
    let Ok(LookupOutcome::ModelOnly { vehicle, gearbox, source, evidence }) = &outcome else {
        panic!("expected MODEL_ONLY, got {}", describe(&outcome));
    };
    assert_eq!(*source, Source::Podzamenu);
    assert_eq!(vehicle.make.as_deref(), Some("MITSUBISHI"));
    // From "(MFG) TRANSMISSION CVT, F1CJA": not the "CVT" label, not the serial EDDVA4480773.
    assert_eq!(gearbox.model.as_deref(), Some("F1CJA"));
    assert_eq!(gearbox.oem, None);
    assert!(gearbox.oem_candidates.is_empty());
    // The operator sees where the search for the OEM stopped: the parts list says it is empty.
    let failure = gearbox.oem_search.as_ref().and_then(|s| s.failure.as_ref()).expect("the failed step");
    assert_eq!(failure.kind, aisales::browser::OemFailureKind::PartsListEmpty);
    assert_eq!(failure.step, "podzamenu.nav.accordion.link");
    assert!(failure.reason.contains("Нет данных"), "{}", failure.reason);
    assert!(!failure.transient);
    // podzamenu had no OEM, so prof-rf was asked too; it does not know the VIN.
    assert_eq!(evidence.sources_tried, vec![Source::Podzamenu, Source::ProfRf]);
    assert!(evidence.steps.iter().any(|s| s.name == "prof_rf.wait_result"));
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_keeps_screenshot_and_html() {
    let h = Harness::start("not-found", |_, _| {}).await;
    let outcome = h.lookup(IdType::Vin, UNKNOWN_VIN).await;
    let Ok(LookupOutcome::NotFound { source, vehicle, evidence }) = &outcome else {
        panic!("expected NOT_FOUND, got {}", describe(&outcome));
    };
    assert_eq!(*source, Source::Podzamenu);
    assert_eq!(*vehicle, None);
    assert_eq!(evidence.sources_tried, vec![Source::Podzamenu, Source::ProfRf]);
    let png = evidence.screenshot_png.as_deref().expect("screenshot kept");
    assert!(is_png(png) && png.len() > 1000, "{} bytes", png.len());
    let html = evidence.page_html.as_deref().expect("html kept");
    assert!(html.contains("Автомобиль не найден"), "{}", &html[..html.len().min(500)]);
    assert!(evidence.source_url.as_deref().is_some_and(|u| u.contains(UNKNOWN_VIN)));
    assert!(step_detail(outcome.as_ref().unwrap(), "podzamenu.wait_result")[0].starts_with("not found"));
    // The stored form is JSON with the screenshot in base64.
    let json = serde_json::to_value(outcome.as_ref().unwrap()).unwrap();
    assert_eq!(json["status"], "NOT_FOUND");
    assert!(json["evidence"]["screenshot_png"].as_str().is_some_and(|s| s.starts_with("iVBORw0KGgo")));

    // A vehicle page carries "не найдено" only in hidden markup and scripts: still found.
    let camry = h.lookup(IdType::Vin, CAMRY_VIN).await;
    found(&camry);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falls_back_to_prof_rf_when_podzamenu_has_nothing() {
    let h = Harness::start("fallback", |_, _| {}).await;

    // Russian-assembled Haval: podzamenu does not know it, prof-rf does. Its "Оригинал" table lists
    // the oil filter and gasket first; analogues and copies must not be used.
    let jolion = h.lookup(IdType::Vin, JOLION_VIN).await;
    let LookupOutcome::Found { vehicle, gearbox, source, evidence } = found(&jolion) else { unreachable!() };
    assert_eq!(*source, Source::ProfRf);
    assert_eq!(evidence.sources_tried, vec![Source::Podzamenu, Source::ProfRf]);
    assert_eq!(vehicle.make.as_deref(), Some("HAVAL"));
    assert_eq!(vehicle.model.as_deref(), Some("JOLION"));
    assert_eq!(gearbox.oem.as_deref(), Some("3000100XGW02A"));
    assert_eq!(gearbox.model.as_deref(), Some("7DCT300"));
    assert_eq!(gearbox.oem_candidates.len(), 4);
    assert!(
        evidence
            .steps
            .iter()
            .any(|s| s.name == "podzamenu.wait_result"
                && s.detail.as_deref().is_some_and(|d| d.starts_with("not found")))
    );

    // Chinese VIN: prof-rf is asked first and answers; podzamenu is not visited.
    let before = h.podzamenu.requests().len();
    let f7 = h.lookup(IdType::Vin, F7_VIN).await;
    let LookupOutcome::Found { gearbox, source, evidence, .. } = found(&f7) else { unreachable!() };
    assert_eq!(*source, Source::ProfRf);
    assert_eq!(evidence.sources_tried, vec![Source::ProfRf]);
    assert_eq!(gearbox.oem.as_deref(), Some("3000100XGW51A"));
    assert_eq!(gearbox.model.as_deref(), Some("7DCT450"));
    assert!(evidence.selectors_used.iter().any(|s| s == "prof_rf:oem:heading"));
    assert_eq!(h.podzamenu.requests().len(), before);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_page_within_the_step_timeout_succeeds_beyond_it_fails_retryable() {
    let h = Harness::start("slow", |config, _| config.step_timeout = Duration::from_secs(8)).await;

    // Slow catalogue data (the SPA shows a spinner meanwhile): within the bound.
    h.podzamenu.set_delay("/data/", Duration::from_millis(1500));
    let started = Instant::now();
    let outcome = h.lookup(IdType::Vin, CAMRY_VIN).await;
    let LookupOutcome::Found { gearbox, evidence, .. } = found(&outcome) else { unreachable!() };
    assert_eq!(gearbox.oem.as_deref(), Some("30500-33570"));
    let wait = evidence.steps.iter().find(|s| s.name == "podzamenu.wait_result").unwrap();
    assert!(matches!(wait.outcome, StepOutcome::Ok), "{wait:?}");
    // The data came 1.5 s late and the lookup waited for it (rather than reading the spinner).
    assert!(started.elapsed() >= Duration::from_millis(1500), "{wait:?}");
    assert!(started.elapsed() < Duration::from_secs(40));

    // The page itself takes longer than the step bound.
    h.podzamenu.set_delay("/search-vehicle", Duration::from_secs(16));
    let started = Instant::now();
    let outcome = h.lookup(IdType::Vin, CAMRY_VIN).await;
    let elapsed = started.elapsed();
    let Err(failure) = &outcome else { panic!("expected a failure, got {}", describe(&outcome)) };
    assert!(failure.retryable, "{failure}");
    assert!(failure.reason.contains("podzamenu: step `podzamenu.goto` timed out"), "{}", failure.reason);
    let goto = failure.evidence.steps.iter().find(|s| s.name == "podzamenu.goto").unwrap();
    assert_eq!(goto.outcome, StepOutcome::Failed);
    assert!(goto.millis >= 7900 && goto.millis < 14_000, "{goto:?}");
    assert!(elapsed < Duration::from_secs(45), "{elapsed:?}");
    h.podzamenu.clear_delay();

    // The pool is still usable afterwards.
    found(&h.lookup(IdType::Vin, CAMRY_VIN).await);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_down_is_a_retryable_failure_with_evidence() {
    let h = Harness::start("site-down", |_, _| {}).await;
    h.podzamenu.set_status(503);
    h.prof_rf.set_drop_connections(true);
    let outcome = h.lookup(IdType::Vin, CAMRY_VIN).await;
    let Err(failure) = &outcome else { panic!("expected a failure, got {}", describe(&outcome)) };
    assert!(failure.retryable, "{failure}");
    assert!(failure.reason.contains("HTTP 503"), "{}", failure.reason);
    assert!(failure.reason.contains("prof_rf: navigation"), "{}", failure.reason);
    assert!(failure.evidence.screenshot_png.as_deref().is_some_and(is_png));
    assert!(failure.evidence.page_html.as_deref().is_some_and(|h| h.contains("503 Service Temporarily Unavailable")));
    assert_eq!(failure.evidence.sources_tried, vec![Source::Podzamenu, Source::ProfRf]);

    // Back up: the same pool answers.
    h.podzamenu.set_status(0);
    h.prof_rf.set_drop_connections(false);
    found(&h.lookup(IdType::Vin, CAMRY_VIN).await);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromedriver_killed_mid_lookup_is_retryable_and_nothing_stays_stuck() {
    let mut h = Harness::start("killed", |config, _| config.step_timeout = Duration::from_secs(10)).await;
    let port = h.driver.port();
    h.podzamenu.set_delay("/data/", Duration::from_secs(6));
    let pool = h.pool.clone();
    let sites = h.sites.clone();
    let query = VehicleQuery::parse(IdType::Vin, CAMRY_VIN).unwrap();
    let lookup = tokio::spawn(async move { lookup_vehicle(&pool, &sites, query).await });
    // Wait until the lookup is waiting for the (slow) catalogue data, then kill ChromeDriver.
    let started = Instant::now();
    while !h.podzamenu.requests().iter().any(|r| r.starts_with("/data/")) {
        assert!(started.elapsed() < Duration::from_secs(15), "lookup never reached the site");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    h.driver.kill().await;
    let killed_at = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(20), lookup).await.expect("lookup returns").unwrap();
    let Err(failure) = &outcome else { panic!("expected a failure, got {}", describe(&outcome)) };
    assert!(failure.retryable, "{failure}");
    assert!(failure.reason.contains("WebDriver unreachable"), "{}", failure.reason);
    // Noticed at once, not after a step timeout (generous for a loaded machine).
    assert!(killed_at.elapsed() < Duration::from_secs(15), "took {:?} after the kill", killed_at.elapsed());
    // prof-rf is not tried without a browser.
    assert_eq!(failure.evidence.sources_tried, vec![Source::Podzamenu]);

    // The browser ChromeDriver left behind is killed and its profile removed.
    let started = Instant::now();
    while !processes_using(&h.profiles).is_empty() || dir_has_entries(&h.profiles) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "orphaned browser or profile left behind: {:?} {:?}",
            processes_using(&h.profiles),
            std::fs::read_dir(&h.profiles).map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect::<Vec<_>>())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // ChromeDriver restarted (as a supervisor would): the same pool recovers, the retry succeeds.
    h.podzamenu.clear_delay();
    h.driver = ChromeDriver::start_on(port).await;
    let retry = h.lookup(IdType::Vin, CAMRY_VIN).await;
    let LookupOutcome::Found { gearbox, .. } = found(&retry) else { unreachable!() };
    assert_eq!(gearbox.oem.as_deref(), Some("30500-33570"));
    assert_eq!(h.pool.sessions_created(), 2);
    h.finish().await;
}

fn dir_has_entries(dir: &Path) -> bool {
    std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_reuses_sessions_and_replaces_a_dead_browser() {
    let h = Harness::start("pool", |config, _| {
        config.max_sessions = 1;
        config.session_max_uses = 3;
    })
    .await;

    // Two lookups, one session: the second skips the browser start.
    let first = h.lookup(IdType::Vin, CAMRY_VIN).await;
    let second = h.lookup(IdType::Vin, CAMRY_VIN).await;
    let (first, second) = (found(&first), found(&second));
    let acquire = |o: &LookupOutcome| {
        o.evidence().steps.iter().find(|s| s.name == "podzamenu.acquire_session").cloned().expect("acquire step")
    };
    let (a1, a2) = (acquire(first), acquire(second));
    let id_of = |detail: &str| detail.split_whitespace().nth(2).unwrap_or_default().to_owned();
    let (d1, d2) = (a1.detail.clone().unwrap(), a2.detail.clone().unwrap());
    assert!(d1.starts_with("new session") && d2.starts_with("reused session"), "{d1} / {d2}");
    assert_eq!(id_of(&d1), id_of(&d2));
    assert!(a2.millis < a1.millis, "reuse ({} ms) should beat a fresh start ({} ms)", a2.millis, a1.millis);
    assert_eq!(h.pool.sessions_created(), 1);

    // The slot bound holds: with the only session lent out, a second acquire waits.
    let lent = h.pool.acquire().await.expect("acquire");
    assert_eq!(lent.uses(), 3);
    let profile = lent.profile_dir().unwrap().to_path_buf();
    let old_id = lent.id().to_owned();
    let waiting = {
        let pool = h.pool.clone();
        tokio::spawn(async move { pool.acquire().await.map(|s| s.id().to_owned()) })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!waiting.is_finished(), "acquire must wait for the only slot");
    drop(lent);
    // Third use reached: the session is retired, the waiter gets a fresh one.
    let next_id = tokio::time::timeout(Duration::from_secs(20), waiting).await.unwrap().unwrap().expect("acquire");
    assert_ne!(next_id, old_id);
    assert_eq!(h.pool.sessions_created(), 2);
    assert!(!profile.exists() || processes_using(&profile).is_empty());

    // The browser of the idle session dies: the next lookup notices and starts a new one.
    let session = h.pool.acquire().await.unwrap();
    let (dead_id, dead_profile) = (session.id().to_owned(), session.profile_dir().unwrap().to_path_buf());
    drop(session);
    assert!(kill_browsers_using(&dead_profile) > 0, "browser process found");
    let after = h.lookup(IdType::Vin, CAMRY_VIN).await;
    let after = found(&after);
    let detail = acquire(after).detail.unwrap();
    assert!(detail.starts_with("new session"), "{detail}");
    assert_ne!(id_of(&detail), dead_id);
    assert_eq!(h.pool.sessions_created(), 3);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixture_tabs_and_accordions_ignore_plain_clicks() {
    // With plain element.click() only, the MUI controls never open: the OEM stays unknown.
    let h = Harness::start("plain-click", |_, sites| {
        sites.podzamenu.click_strategies = vec![ClickStrategy::Js];
        sites.scrape.click_effect_timeout = Duration::from_millis(500);
    })
    .await;
    let outcome = h.lookup(IdType::Vin, CAMRY_VIN).await;
    let Ok(LookupOutcome::ModelOnly { gearbox, evidence, .. }) = &outcome else {
        panic!("expected MODEL_ONLY, got {}", describe(&outcome));
    };
    assert_eq!(gearbox.model.as_deref(), Some("U241E"));
    assert!(evidence.steps.iter().any(|s| s.name == "podzamenu.nav.accordion.open" && s.outcome == StepOutcome::Miss));
    assert!(evidence.steps.iter().any(|s| s.name == "podzamenu.nav.tab.open" && s.outcome == StepOutcome::Miss));
    h.finish().await;
}

/// Lookup latency on the fixture, session acquisition included. Run with
/// `cargo test --test integration browser::lookup_latency -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn lookup_latency_on_fixture() {
    let h = Harness::start("latency", |config, _| config.max_sessions = 1).await;
    let cases =
        [(IdType::Vin, CAMRY_VIN), (IdType::Frame, XTRAIL_FRAME), (IdType::Vin, MAZDA_VIN), (IdType::Vin, F7_VIN)];
    let mut millis = Vec::new();
    for round in 0..5 {
        for (id_type, value) in cases {
            let started = Instant::now();
            let outcome = h.lookup(id_type, value).await;
            found(&outcome);
            millis.push(started.elapsed().as_millis());
            if round == 0 {
                println!("{value}: {} ms", started.elapsed().as_millis());
            }
        }
    }
    millis.sort_unstable();
    let pct = |p: f64| millis[((millis.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "lookups: {}, p50 {} ms, p95 {} ms, max {} ms",
        millis.len(),
        pct(0.5),
        pct(0.95),
        millis[millis.len() - 1]
    );
    assert!(pct(0.5) <= 3000, "p50 {} ms", pct(0.5));
    h.finish().await;
}
