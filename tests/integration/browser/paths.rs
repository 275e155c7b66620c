//! Every path of the catalogue the old lookup service's description names,
//! one fixture vehicle per variation, each with its own page shape (`tests/fixtures/sites/*/`,
//! listed in the fixtures README), looked up in real headless Chromium. Each test asserts the
//! exact OEM or model, and for model-only answers the step where the search for the OEM stopped.

use std::time::{Duration, Instant};

use aisales::browser::{
    CachePolicy, IdType, LookupFailure, LookupOutcome, OemFailureKind, OemPathOutcome, OemSearch, Source, StepOutcome,
    VehicleQuery, lookup_vehicle,
};

use super::{Harness, describe, found};

pub const KIA_POPULAR_VIN: &str = "KNAPH81ABK7012345";
pub const SUBARU_DEEP_VIN: &str = "JF1SH5LS5AG012345";
pub const SUZUKI_GENERIC_VIN: &str = "JS3TD54V0A4012345";
pub const LEXUS_SECTION_VIN: &str = "JTJBT20X740012345";
pub const CRUZE_TEXT_LINK_VIN: &str = "XUFJA696JC3012345";
pub const MARK2_FRAME: &str = "GX110-6012345";
pub const QASHQAI_LATE_VIN: &str = "SJNFAAJ10U1012345";
pub const SOLARIS_PLAIN_TABLE_VIN: &str = "Z94CT41DBER012345";
pub const SPRINTER_SPACED_OEM_VIN: &str = "WDB9066331S012345";
pub const RAV4_HIDDEN_PHRASES_VIN: &str = "JTMBD33V505012345";
pub const W212_AGGREGATES_VIN: &str = "WDD2120021A012345";
pub const FOCUS_FORD_VIN: &str = "1FADP3F29CL012345";
pub const GOLF_VW_VIN: &str = "WVWZZZ1KZ8W012345";
pub const OUTLANDER_ANCILLARY_VIN: &str = "JMBXTGF2WBZ012345";
pub const ACCORD_FACTORY_CODES_VIN: &str = "JHMCM56557C012345";
pub const COROLLA_FLAKY_VIN: &str = "NMTBZ28E40R012345";
pub const TIGGO_PROF_RF_VIN: &str = "LVVDB21B5MD012345";
pub const COOLRAY_PROF_RF_VIN: &str = "LB37624S5NL012345";

/// The OEM search trail of an answer.
pub fn trail(outcome: &LookupOutcome) -> &OemSearch {
    outcome.gearbox().and_then(|g| g.oem_search.as_deref()).unwrap_or_else(|| panic!("no OEM trail: {outcome:?}"))
}

/// `(path, outcome)` of every path tried.
fn paths(outcome: &LookupOutcome) -> Vec<(String, OemPathOutcome)> {
    trail(outcome).paths.iter().map(|p| (p.path.clone(), p.outcome)).collect()
}

/// A FOUND answer from podzamenu with this OEM and model, the trail ending at the path that found it.
fn assert_found(outcome: &Result<LookupOutcome, LookupFailure>, oem: &str, model: &str, path: &str) {
    let o = found(outcome);
    let gearbox = o.gearbox().unwrap();
    assert_eq!(gearbox.oem.as_deref(), Some(oem), "{}", describe(outcome));
    assert_eq!(gearbox.model.as_deref(), Some(model), "{}", describe(outcome));
    let search = trail(o);
    assert_eq!(search.failure, None);
    let last = search.paths.last().expect("a path was tried");
    assert_eq!((last.path.as_str(), last.outcome), (path, OemPathOutcome::Rows), "{search:#?}");
}

/// A MODEL_ONLY answer with this model whose OEM search stopped with `kind` at `step`.
fn assert_model_only<'a>(
    outcome: &'a Result<LookupOutcome, LookupFailure>,
    model: &str,
    kind: OemFailureKind,
    step: &str,
) -> &'a LookupOutcome {
    let Ok(o @ LookupOutcome::ModelOnly { gearbox, .. }) = outcome else {
        panic!("expected MODEL_ONLY, got {}", describe(outcome));
    };
    assert_eq!(gearbox.model.as_deref(), Some(model), "{}", describe(outcome));
    assert_eq!(gearbox.oem, None);
    let failure = trail(o).failure.as_ref().expect("the step that stopped the search");
    assert_eq!((failure.kind, failure.step.as_str()), (kind, step), "{failure:#?}");
    assert!(!failure.reason.is_empty());
    o
}

async fn start(name: &str) -> Harness {
    Harness::start(name, |_, _| {}).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_b_a_popular_parts_link() {
    let h = start("path-b").await;
    let outcome = h.lookup(IdType::Vin, KIA_POPULAR_VIN).await;
    assert_found(&outcome, "45000-3B650", "A6MF1", "content_link");
    let o = found(&outcome);
    assert_eq!(
        paths(o),
        [
            ("accordion".into(), OemPathOutcome::NoEntry),
            ("schemes_tab".into(), OemPathOutcome::NoEntry),
            ("content_link".into(), OemPathOutcome::Rows),
        ]
    );
    assert!(o.evidence().selectors_used.iter().any(|s| s == "podzamenu:nav:content_link:Коробка передач (Dispatch)"));
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_c_deeper_step_through_an_intermediate_sub_scheme_page() {
    let h = start("path-c-deep").await;
    let outcome = h.lookup(IdType::Vin, SUBARU_DEEP_VIN).await;
    // The card "Вариатор (CVT)" opens a page of sub-schemes without OEM links; "Вариатор в сборе"
    // is opened from there, not the case or the torque converter.
    assert_found(&outcome, "31000AJ280", "TR580", "schemes_tab");
    let o = found(&outcome);
    let last = trail(o).paths.last().unwrap();
    assert_eq!(last.step, "podzamenu.nav.sub_scheme");
    let detail = last.detail.as_deref().unwrap();
    assert!(detail.contains("Вариатор (CVT)") && detail.contains("Вариатор в сборе"), "{detail}");
    assert!(o.evidence().source_url.as_deref().is_some_and(|u| u.ends_with("/scheme/cvt-assy")));
    assert_eq!(o.gearbox().unwrap().oem_candidates.len(), 2);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_c_without_mui_cards_and_a_plain_text_parts_table() {
    let h = start("path-c-generic").await;
    let outcome = h.lookup(IdType::Vin, SUZUKI_GENERIC_VIN).await;
    assert_found(&outcome, "20000-65J10", "JR405E", "schemes_tab");
    let o = found(&outcome);
    let LookupOutcome::Found { vehicle, .. } = o else { unreachable!() };
    // Title from an h4 without " / ", facts from a definition list.
    assert_eq!((vehicle.make.as_deref(), vehicle.model.as_deref()), (Some("SUZUKI"), Some("GRAND VITARA")));
    let used = &o.evidence().selectors_used;
    assert!(used.iter().any(|s| s == "podzamenu:nav:schemes_tab:generic_card"), "{used:?}");
    assert!(used.iter().any(|s| s == "podzamenu:oem:table"), "{used:?}");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_c_section_that_lists_the_parts_itself() {
    let h = start("path-c-section").await;
    let outcome = h.lookup(IdType::Vin, LEXUS_SECTION_VIN).await;
    assert_found(&outcome, "30500-48140", "U151F", "schemes_tab");
    assert_eq!(trail(found(&outcome)).paths.last().unwrap().step, "podzamenu.nav.tab.section");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_d_a_plain_catalogue_link() {
    let h = start("path-d").await;
    let outcome = h.lookup(IdType::Vin, CRUZE_TEXT_LINK_VIN).await;
    assert_found(&outcome, "24265063", "6T40", "text_link");
    let LookupOutcome::Found { vehicle, gearbox, .. } = found(&outcome) else { unreachable!() };
    // Facts from "Label: value" lines; the gearbox assembly beats the sensor and the oil.
    assert_eq!((vehicle.make.as_deref(), vehicle.year.as_deref()), (Some("CHEVROLET"), Some("2012")));
    assert_eq!(gearbox.oem_candidates.len(), 3);
    // The link navigates (a full page load), not the single-page app.
    assert!(h.podzamenu.requests().iter().any(|r| r == &format!("/vehicle/{CRUZE_TEXT_LINK_VIN}/scheme/kpp")));
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_request_on_path_a() {
    let h = start("frame-path-a").await;
    let outcome = h.lookup(IdType::Frame, &MARK2_FRAME.to_lowercase()).await;
    assert_found(&outcome, "35000-22A10", "A42DE", "accordion");
    let o = found(&outcome);
    let LookupOutcome::Found { vehicle, gearbox, source, evidence } = o else { unreachable!() };
    assert_eq!(*source, Source::Podzamenu);
    assert_eq!(vehicle.body.as_deref(), Some("GX110"));
    // Key/value card rows: the marking is the factory code.
    assert_eq!(gearbox.factory_code.as_deref(), Some("A42DE-01A"));
    // The group "Автоматическая трансмиссия (АКПП)" is used although it says "трансмиссия", and of
    // the two "TRANSMISSION" links the assembly is opened, not the case.
    let nav = evidence.selectors_used.iter().find(|s| s.starts_with("podzamenu:nav:accordion:")).unwrap();
    assert!(
        nav.contains("Автоматическая трансмиссия (АКПП)") && nav.ends_with("> TRANSMISSION ASSY, AUTOMATIC (Dispatch)"),
        "{nav}"
    );
    assert!(h.podzamenu.requests().iter().any(|r| r == &format!("/search-vehicle?vin={MARK2_FRAME}")));
    assert_eq!(evidence.sources_tried, vec![Source::Podzamenu]);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_that_renders_seconds_after_the_page_loads() {
    let h = start("late-render").await;
    let started = Instant::now();
    let outcome = h.lookup(IdType::Vin, QASHQAI_LATE_VIN).await;
    assert_found(&outcome, "31020-1XD0A", "RE0F10A", "accordion");
    let o = found(&outcome);
    // The parts tree was not there when the card was read; the lookup waited for it.
    assert!(o.evidence().steps.iter().any(|s| s.name == "podzamenu.nav.late" && s.outcome == StepOutcome::Ok));
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_list_as_a_plain_table_of_search_links() {
    let h = start("plain-table").await;
    let outcome = h.lookup(IdType::Vin, SOLARIS_PLAIN_TABLE_VIN).await;
    assert_found(&outcome, "45000-26010", "A4CF1", "accordion");
    let gearbox = found(&outcome).gearbox().unwrap();
    // Names from the table's "Наименование" column.
    let names: Vec<&str> = gearbox.oem_candidates.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["Прокладка поддона", "Фильтр АКПП", "АКПП в сборе"]);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oem_link_text_written_with_spaces() {
    let h = start("spaced-oem").await;
    let outcome = h.lookup(IdType::Vin, SPRINTER_SPACED_OEM_VIN).await;
    // The link's query, as the catalogue searches it: no spaces, upper-cased.
    assert_found(&outcome, "A9062700100", "722.695", "accordion");
    let oems: Vec<String> = found(&outcome).gearbox().unwrap().oem_candidates.iter().map(|c| c.oem.clone()).collect();
    assert_eq!(oems, ["A1402770995", "A9062700100", "A0009903417"]);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_not_found_phrases_on_a_page_that_shows_the_vehicle() {
    let h = start("hidden-phrases").await;
    let outcome = h.lookup(IdType::Vin, RAV4_HIDDEN_PHRASES_VIN).await;
    assert_found(&outcome, "30500-42160", "U760E", "accordion");
    let o = found(&outcome);
    let wait = o.evidence().steps.iter().find(|s| s.name == "podzamenu.wait_result").unwrap();
    assert!(wait.detail.as_deref().is_some_and(|d| d.starts_with("vehicle card")), "{wait:?}");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_given_only_under_used_aggregates() {
    let h = start("aggregates").await;
    let outcome = h.lookup(IdType::Vin, W212_AGGREGATES_VIN).await;
    assert_found(&outcome, "A2122703000", "722.903", "accordion");
    let used = &found(&outcome).evidence().selectors_used;
    assert!(used.iter().any(|s| s == "podzamenu:gearbox.model:table:используемые агрегаты"), "{used:?}");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ford_early_exit_takes_the_last_market_model_token() {
    let h = start("ford").await;
    let outcome = h.lookup(IdType::Vin, FOCUS_FORD_VIN).await;
    // "DPS6 6-SPEED POWERSHIFT / 6DCT250": not the factory token DPS6.
    let o = assert_model_only(&outcome, "6DCT250", OemFailureKind::Skipped, "podzamenu.early_exit.ford");
    let gearbox = o.gearbox().unwrap();
    assert_eq!(gearbox.factory_code.as_deref(), Some("6DCT250"));
    assert!(trail(o).paths.is_empty());
    assert!(trail(o).failure.as_ref().unwrap().reason.contains("Transmission"));
    // The parts tree is not opened.
    assert!(!h.podzamenu.requests().iter().any(|r| r.contains("/scheme/")));
    assert!(o.evidence().screenshot_png.is_none(), "a deliberate early exit keeps no screenshot");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vw_group_early_exit_answers_with_the_card_model() {
    let h = start("vw").await;
    let outcome = h.lookup(IdType::Vin, GOLF_VW_VIN).await;
    let o = assert_model_only(&outcome, "JQJ(SA)", OemFailureKind::Skipped, "podzamenu.early_exit.model_only_wmi");
    assert_eq!(o.gearbox().unwrap().factory_code.as_deref(), Some("JQJ(SA)"));
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_ancillary_parts_is_model_only_with_the_reason() {
    let h = start("ancillary").await;
    let outcome = h.lookup(IdType::Vin, OUTLANDER_ANCILLARY_VIN).await;
    let o = assert_model_only(&outcome, "F1CJB", OemFailureKind::OnlyAncillaryParts, "podzamenu.oem.choose");
    let gearbox = o.gearbox().unwrap();
    assert_eq!(gearbox.oem_candidates.len(), 3);
    assert!(gearbox.oem_candidates.iter().all(|c| c.score < 0));
    assert!(!trail(o).failure.as_ref().unwrap().transient);
    // The operator sees the page where it stopped.
    assert!(o.evidence().screenshot_png.is_some() && o.evidence().page_html.is_some());
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_factory_codes_on_the_gearbox_page() {
    let h = start("factory-codes").await;
    let outcome = h.lookup(IdType::Vin, ACCORD_FACTORY_CODES_VIN).await;
    let o = assert_model_only(&outcome, "B7XA", OemFailureKind::OnlyInvalidNumbers, "podzamenu.oem.validate");
    assert_eq!(o.gearbox().unwrap().factory_code.as_deref(), Some("MDLA(5A)"));
    assert!(o.gearbox().unwrap().oem_candidates.is_empty());
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_parts_list_is_retried_as_a_step_then_model_only_with_the_reason() {
    let h = start("flaky-parts").await;

    // The parts request fails once: the step is tried again and finds the OEM.
    h.podzamenu.fail_requests("/data/parts/", 1, 503);
    let outcome = h.lookup(IdType::Vin, COROLLA_FLAKY_VIN).await;
    assert_found(&outcome, "30500-12A30", "U341E", "accordion");
    let o = found(&outcome);
    let tries: Vec<(u32, &str, OemPathOutcome)> =
        trail(o).paths.iter().map(|p| (p.attempt, p.path.as_str(), p.outcome)).collect();
    assert_eq!(tries.first(), Some(&(1, "accordion", OemPathOutcome::Failed)), "{tries:?}");
    assert_eq!(tries.last(), Some(&(2, "accordion", OemPathOutcome::Rows)), "{tries:?}");
    // The step was retried, not the lookup: one search page per try, and prof-rf never asked.
    let searches = h.podzamenu.requests().iter().filter(|r| r.starts_with("/search-vehicle")).count();
    assert!(searches >= 2, "{searches}");
    assert_eq!(o.evidence().sources_tried, vec![Source::Podzamenu]);

    // It keeps failing: every try is recorded, then MODEL_ONLY with the failed step.
    h.podzamenu.fail_requests("/data/parts/", u32::MAX, 503);
    let outcome = h.lookup(IdType::Vin, COROLLA_FLAKY_VIN).await;
    h.podzamenu.clear_failures();
    let o = assert_model_only(&outcome, "U341E", OemFailureKind::SiteError, "podzamenu.nav.accordion.link");
    let failure = trail(o).failure.as_ref().unwrap();
    assert!(failure.transient);
    assert_eq!(failure.attempts, 3);
    assert!(failure.reason.contains("Сервис временно недоступен"), "{}", failure.reason);
    let failed: Vec<u32> =
        trail(o).paths.iter().filter(|p| p.outcome == OemPathOutcome::Failed).map(|p| p.attempt).collect();
    assert_eq!(failed, [1, 2, 3]);
    assert!(o.evidence().screenshot_png.is_some());
    // A model-only answer of a failing site is not served from the cache.
    assert_eq!(CachePolicy::default().ttl_for(o), Duration::ZERO);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prof_rf_oem_in_a_transmission_heading() {
    let h = start("prof-rf-heading").await;
    let outcome = h.lookup(IdType::Vin, TIGGO_PROF_RF_VIN).await;
    let LookupOutcome::Found { gearbox, source, .. } = found(&outcome) else { unreachable!() };
    assert_eq!(*source, Source::ProfRf);
    assert_eq!(gearbox.oem.as_deref(), Some("525MHC-1700010"));
    assert_eq!(gearbox.model.as_deref(), Some("CVT25"));
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prof_rf_parts_table_without_blocks() {
    let h = start("prof-rf-plain").await;
    let outcome = h.lookup(IdType::Vin, COOLRAY_PROF_RF_VIN).await;
    let LookupOutcome::Found { gearbox, source, .. } = found(&outcome) else { unreachable!() };
    assert_eq!(*source, Source::ProfRf);
    assert_eq!(gearbox.oem.as_deref(), Some("3043001600"));
    assert_eq!(gearbox.model.as_deref(), Some("7DCT330"));
    h.finish().await;
}

/// What a lookup ended with, for comparing runs.
fn summary(outcome: &Result<LookupOutcome, LookupFailure>) -> String {
    match outcome {
        Ok(o) => {
            let g = o.gearbox();
            let failure = g.and_then(|g| g.oem_search.as_ref()).and_then(|s| s.failure.as_ref());
            format!(
                "{} {:?} model={:?} oem={:?} factory={:?} stop={:?}",
                o.status(),
                o.source(),
                g.and_then(|g| g.model.clone()),
                g.and_then(|g| g.oem.clone()),
                g.and_then(|g| g.factory_code.clone()),
                failure.map(|f| (f.kind, f.step.clone()))
            )
        }
        Err(f) => format!("failure retryable={}", f.retryable),
    }
}

/// The fifteen identifiers of the concurrency checks: every kind of path and answer.
pub const FIFTEEN: [(IdType, &str); 15] = [
    (IdType::Vin, "JTNBK40K203012345"),
    (IdType::Frame, "NT31-012345"),
    (IdType::Vin, "JMBSRCY2A8U012345"),
    (IdType::Vin, "XTA210990Y2765432"),
    (IdType::Vin, KIA_POPULAR_VIN),
    (IdType::Vin, SUBARU_DEEP_VIN),
    (IdType::Vin, SUZUKI_GENERIC_VIN),
    (IdType::Vin, CRUZE_TEXT_LINK_VIN),
    (IdType::Frame, MARK2_FRAME),
    (IdType::Vin, SOLARIS_PLAIN_TABLE_VIN),
    (IdType::Vin, SPRINTER_SPACED_OEM_VIN),
    (IdType::Vin, RAV4_HIDDEN_PHRASES_VIN),
    (IdType::Vin, W212_AGGREGATES_VIN),
    (IdType::Vin, FOCUS_FORD_VIN),
    (IdType::Vin, OUTLANDER_ANCILLARY_VIN),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifteen_lookups_at_once_end_as_fifteen_one_by_one() {
    let h = Harness::start("fifteen", |config, _| config.acquire_timeout = Duration::from_secs(120)).await;
    let mut one_by_one = Vec::new();
    for (id_type, value) in FIFTEEN {
        one_by_one.push(summary(&h.lookup(id_type, value).await));
    }
    let at_once = futures::future::join_all(FIFTEEN.iter().map(|(id_type, value)| {
        let (pool, sites) = (h.pool.clone(), h.sites.clone());
        let query = VehicleQuery::parse(*id_type, value).unwrap();
        async move { summary(&lookup_vehicle(&pool, &sites, query).await) }
    }))
    .await;
    for (((_, value), alone), together) in FIFTEEN.iter().zip(&one_by_one).zip(&at_once) {
        assert_eq!(alone, together, "{value}");
    }
    // Every answer is the expected one, not only the same twice.
    assert!(one_by_one[0].starts_with("FOUND") && one_by_one[0].contains("30500-33570"), "{}", one_by_one[0]);
    assert!(one_by_one[3].starts_with("NOT_FOUND"), "{}", one_by_one[3]);
    assert_eq!(one_by_one.iter().filter(|s| s.starts_with("FOUND")).count(), 11, "{one_by_one:#?}");
    assert_eq!(one_by_one.iter().filter(|s| s.starts_with("MODEL_ONLY")).count(), 3, "{one_by_one:#?}");
    h.finish().await;
}
