//! Given / when / then tests of the price-lookup rules (no IO; the clock is in the commands).

use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

use super::*;
use crate::codec::EventSchema;
use crate::detect::GearboxType;
use crate::price::{
    DropReason, OwnOffer, PriceAnswer, PriceSettings, PriceSubject, Rates, RawListing, ReplyContext, SubjectInput,
    SuggestionKind, TemplateOverrides, price_suggestions,
};

fn t(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_790_000_000 + s, 0).unwrap()
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

const TENANT: u128 = 1;

fn subject() -> PriceSubject {
    PriceSubject::parse(SubjectInput {
        transmission_code: Some("JF011E".into()),
        make: Some("NISSAN".into()),
        model: Some("QASHQAI".into()),
        gearbox_type: Some(GearboxType::Cvt),
        ..Default::default()
    })
    .unwrap()
}

fn key() -> crate::price::SearchKey {
    crate::price::SearchKey::of(&subject())
}

fn customer(conversation: u128) -> Requester {
    Requester::CustomerMessage { conversation_id: id(conversation), message_id: id(conversation + 1000) }
}

fn request_by(request: u128, requester: Requester, at: DateTime<Utc>) -> PriceLookupCommand {
    PriceLookupCommand::Request(Box::new(PriceRequest {
        request_id: id(request),
        tenant_id: id(TENANT),
        subject: subject(),
        requester,
        refresh: false,
        at,
    }))
}

fn request(request: u128, at: DateTime<Utc>) -> PriceLookupCommand {
    request_by(request, customer(50), at)
}

fn run(l: &mut PriceLookup, c: PriceLookupCommand) -> Result<Vec<PriceLookupEvent>, PriceLookupError> {
    let events = l.decide(c)?;
    for e in events.clone() {
        // Every event survives storage.
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<PriceLookupEvent>(&json).unwrap(), e);
        l.evolve(e);
    }
    Ok(events)
}

fn given(commands: Vec<PriceLookupCommand>) -> PriceLookup {
    let mut l = PriceLookup::default();
    for c in commands {
        run(&mut l, c).unwrap();
    }
    l
}

fn names(events: &[PriceLookupEvent]) -> Vec<&'static str> {
    events.iter().map(PriceLookupEvent::name).collect()
}

fn start(round: u32) -> PriceLookupCommand {
    PriceLookupCommand::StartSearch { round, rates: Rates::offline(), at: t(1) }
}

fn source(round: u32, report: SourceReport) -> PriceLookupCommand {
    PriceLookupCommand::RecordSource { round, report: Box::new(report) }
}

fn conclude(round: u32, escalate: bool, at: DateTime<Utc>) -> PriceLookupCommand {
    PriceLookupCommand::Conclude { round, escalate, at }
}

fn raw(url: &str, title: &str, price: &str) -> RawListing {
    RawListing { url: url.into(), title: title.into(), price_text: Some(price.into()), ..Default::default() }
}

fn page(url: &str, listings: Vec<RawListing>) -> SourceReport {
    let mut r = SourceReport::new(
        SourceKind::ListingPage,
        SourceOutcome::Ok { results: u32::try_from(listings.len()).unwrap() },
        t(3),
    );
    r.urls = vec![url.into()];
    r.listings = listings;
    r
}

fn drom_page() -> SourceReport {
    page(
        "https://baza.drom.ru/sell/jf011e",
        vec![
            raw("https://baza.drom.ru/1.html", "Вариатор JF011E Nissan Qashqai, пробег 70 000 км", "60 000 ₽"),
            raw("https://baza.drom.ru/2.html", "Вариатор JF011E контрактный", "70 000 ₽"),
            raw("https://baza.drom.ru/3.html", "Насос вариатора JF011E", "8 000 ₽"),
            raw("https://baza.drom.ru/4.html", "Вариатор JF011E на запчасти", "20 000 ₽"),
            raw("https://baza.drom.ru/5.html", "Вариатор JF011E", "цена по запросу"),
            raw("https://baza.drom.ru/6.html", "Вариатор JF011E, 2 шт", "650 000 ₽"),
        ],
    )
}

fn japancar_page() -> SourceReport {
    let mut structured = raw("https://japancar.ru/7", "КПП JF011E б/у", "");
    structured.price_text = None;
    structured.structured_price = Some("75000".into());
    page(
        "https://japancar.ru/jf011e",
        vec![
            structured,
            raw("https://japancar.ru/8", "Контрактный вариатор JF011E", "¥130,000"),
            // Already read on drom: the same listing found twice.
            raw("https://baza.drom.ru/1.html", "Вариатор JF011E Nissan Qashqai, пробег 70 000 км", "60 000 ₽"),
        ],
    )
}

fn yandex() -> SourceReport {
    let mut r = SourceReport::new(SourceKind::YandexSearch, SourceOutcome::Ok { results: 3 }, t(2));
    r.queries = crate::price::build_yandex_queries(&subject().query_input(false));
    r.urls = vec![
        "https://baza.drom.ru/sell/jf011e".into(),
        "https://japancar.ru/jf011e".into(),
        "https://shop.ru/x".into(),
    ];
    r
}

fn failed_page() -> SourceReport {
    let mut r = SourceReport::new(
        SourceKind::ListingPage,
        SourceOutcome::Failed { reason: "HTTP 500 after 2 attempts".into(), http_status: Some(500) },
        t(3),
    );
    r.urls = vec!["https://shop.ru/x".into()];
    r
}

/// A lookup that searched and is ready to conclude with a market price.
fn searched() -> PriceLookup {
    given(vec![
        request(10, t(0)),
        start(1),
        source(1, SourceReport::new(SourceKind::OwnPriceList, SourceOutcome::Ok { results: 0 }, t(2))),
        source(1, yandex()),
        source(1, drom_page()),
        source(1, japancar_page()),
        source(1, failed_page()),
    ])
}

fn priced() -> PriceLookup {
    let mut l = searched();
    run(&mut l, conclude(1, true, t(10))).unwrap();
    l
}

#[test]
fn ids_are_deterministic_per_tenant_and_key() {
    let same = PriceSubject::parse(SubjectInput {
        transmission_code: Some(" jf011e".into()),
        make: Some("nissan".into()),
        model: Some("Qashqai".into()),
        ..Default::default()
    })
    .unwrap();
    let a = price_lookup_id(id(TENANT), &key());
    assert_eq!(a, price_lookup_id(id(TENANT), &crate::price::SearchKey::of(&same)));
    assert_ne!(a, price_lookup_id(id(2), &key()), "another tenant, another lookup");
    assert_eq!(key().as_str(), "tc::jf011e::nissan::qashqai");
}

#[test]
fn twenty_identical_requests_run_one_search() {
    let mut l = PriceLookup::default();
    let mut all = Vec::new();
    for n in 0..20 {
        all.extend(run(&mut l, request_by(100 + n, customer(200 + n), t(i64::try_from(n).unwrap()))).unwrap());
    }
    let requested = all.iter().filter(|e| e.name() == "PriceLookupRequested").count();
    let joined = all.iter().filter(|e| e.name() == "PriceLookupJoined").count();
    assert_eq!((requested, joined), (1, 19));
    assert_eq!(l.round, 1);
    assert_eq!(l.status, Some(PriceLookupStatus::Pending));
    assert_eq!(l.waiting.len(), 20, "every conversation waits for the one answer");
    // Delivered twice: recorded once.
    assert!(run(&mut l, request_by(100, customer(200), t(30))).unwrap().is_empty());
    // Joining a running search, also once it has started.
    run(&mut l, start(1)).unwrap();
    let e = run(&mut l, request(300, t(40))).unwrap();
    assert!(matches!(
        &e[0],
        PriceLookupEvent::PriceLookupJoined { status: PriceLookupStatus::Searching, answered_from: None, .. }
    ));
}

#[test]
fn requests_for_another_tenant_or_key_are_refused() {
    let l = given(vec![request(10, t(0))]);
    let PriceLookupCommand::Request(mut other) = request(11, t(1)) else { unreachable!() };
    other.tenant_id = id(99);
    assert_eq!(l.decide(PriceLookupCommand::Request(other)), Err(PriceLookupError::WrongTenant));
    let PriceLookupCommand::Request(mut other) = request(12, t(1)) else { unreachable!() };
    other.subject.transmission_code = Some("A245E".into());
    assert!(matches!(l.decide(PriceLookupCommand::Request(other)), Err(PriceLookupError::KeyMismatch { .. })));
    assert_eq!(PriceLookup::default().decide(start(1)), Err(PriceLookupError::NotFound));
}

#[test]
fn the_whole_story_of_a_market_price() {
    let mut l = searched();
    assert_eq!(l.status, Some(PriceLookupStatus::Searching));
    assert_eq!(l.urls_checked, ["https://baza.drom.ru/sell/jf011e", "https://japancar.ru/jf011e", "https://shop.ru/x"]);
    assert_eq!(l.sources.len(), 5);
    // Kept: 60 000, 70 000, 650 000 (drom); 75 000 structured, ¥130 000 = 65 000 (japancar).
    let mut kept: Vec<u64> = l.listings.iter().map(|x| x.price).collect();
    kept.sort_unstable();
    assert_eq!(kept, [60_000, 65_000, 70_000, 75_000, 650_000]);
    // Dropped on the pages: pump, for parts, no price, the duplicate.
    assert_eq!(l.dropped_count, 4);
    let events = run(&mut l, conclude(1, true, t(10))).unwrap();
    assert_eq!(names(&events), ["PriceListingsDiscarded", "PriceLookupPriced"]);
    let PriceLookupEvent::PriceListingsDiscarded { dropped, .. } = &events[0] else { unreachable!() };
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].price, Some(650_000));
    assert_eq!(dropped[0].reason.code(), "outlier");
    let PriceLookupEvent::PriceLookupPriced {
        revision, basis, summary, confidence, listings, sources, expires_at, ..
    } = &events[1]
    else {
        unreachable!()
    };
    assert_eq!((*revision, *basis), (1, PriceBasis::Market));
    assert_eq!(
        (summary.min, summary.max, summary.median, summary.count, summary.sites),
        (60_000, 75_000, 67_500, 4, 2)
    );
    // 4 listings 0.25, 2 sites 0.18, spread 1.25 → 0.25, mixed market 0.05.
    assert_eq!(confidence.score, 0.73);
    assert_eq!(listings.len(), 4);
    assert_eq!(sources, &[SourceKind::ListingPage]);
    assert_eq!(*expires_at, t(10) + Duration::days(7));
    assert_eq!(l.status, Some(PriceLookupStatus::Priced));
    assert_eq!(l.price_range(), Some((60_000, 75_000, Some(67_500))));
    assert_eq!(l.dropped_count, 5);
}

#[test]
fn the_page_events_say_why_each_listing_was_dropped() {
    let mut l = given(vec![request(10, t(0)), start(1)]);
    let events = run(&mut l, source(1, drom_page())).unwrap();
    assert_eq!(names(&events), ["PriceSourceQueried", "PriceListingsRecorded"]);
    let PriceLookupEvent::PriceListingsRecorded { url, kept, dropped, ignored, .. } = &events[1] else {
        unreachable!()
    };
    assert_eq!(url.as_deref(), Some("https://baza.drom.ru/sell/jf011e"));
    assert_eq!((kept.len(), *ignored), (3, 0));
    assert_eq!(kept[0].mileage_km, Some(70_000));
    let reasons: Vec<&DropReason> = dropped.iter().map(|d| &d.reason).collect();
    assert_eq!(
        reasons,
        [
            &DropReason::NotWholeGearbox { keyword: "насос".into() },
            &DropReason::Defective { keyword: "на запчасти".into() },
            &DropReason::NoPrice,
        ]
    );
    // A failed page is recorded with its HTTP status.
    let events = run(&mut l, source(1, failed_page())).unwrap();
    let PriceLookupEvent::PriceSourceQueried { outcome, .. } = &events[0] else { unreachable!() };
    assert_eq!(outcome, &SourceOutcome::Failed { reason: "HTTP 500 after 2 attempts".into(), http_status: Some(500) });
}

#[test]
fn pages_are_read_up_to_a_limit() {
    let mut l = given(vec![request(10, t(0)), start(1)]);
    let listings = (0..=MAX_LISTINGS_PER_PAGE).map(|i| raw(&format!("https://a.ru/{i}"), "АКПП", "50 000 ₽")).collect();
    let events = run(&mut l, source(1, page("https://a.ru/", listings))).unwrap();
    let PriceLookupEvent::PriceListingsRecorded { kept, ignored, .. } = &events[1] else { unreachable!() };
    assert_eq!((kept.len(), *ignored), (MAX_LISTINGS_PER_PAGE, 1));
}

#[test]
fn a_fresh_result_answers_and_an_expired_one_searches_again() {
    let mut l = priced();
    let e = run(&mut l, request_by(20, customer(60), t(10) + Duration::days(7) - Duration::seconds(1))).unwrap();
    assert!(matches!(&e[0], PriceLookupEvent::PriceLookupJoined { answered_from: Some(1), .. }));
    assert_eq!(l.pending_offers(), [id(50), id(60)]);
    let e = run(&mut l, request_by(21, customer(61), t(10) + Duration::days(7))).unwrap();
    assert!(matches!(&e[0], PriceLookupEvent::PriceLookupRequested { round: 2, .. }));
    assert_eq!(l.status, Some(PriceLookupStatus::Pending));
    assert!(l.listings.is_empty() && l.urls_checked.is_empty(), "a new round starts clean");
    assert!(l.pending_offers().is_empty(), "nothing is offered while the round runs");
    assert_eq!(l.price_range(), None, "no price while searching");
}

#[test]
fn an_operator_can_refresh_a_fresh_result() {
    let mut l = priced();
    let PriceLookupCommand::Request(mut r) =
        request_by(30, Requester::Operator { actor: "user:7".into(), conversation_id: None }, t(20))
    else {
        unreachable!()
    };
    r.refresh = true;
    let e = run(&mut l, PriceLookupCommand::Request(r)).unwrap();
    assert!(matches!(&e[0], PriceLookupEvent::PriceLookupRequested { round: 2, refresh: true, .. }));
}

#[test]
fn nothing_found_is_a_negative_result_for_a_day() {
    let mut l = given(vec![
        request(10, t(0)),
        start(1),
        source(1, yandex()),
        source(1, failed_page()),
        source(
            1,
            SourceReport::new(
                SourceKind::AiEstimate,
                SourceOutcome::Skipped { reason: "disabled for the tenant".into() },
                t(4),
            ),
        ),
    ]);
    let e = run(&mut l, conclude(1, false, t(10))).unwrap();
    let PriceLookupEvent::PriceLookupNotFound { urls_checked, ready_queries, escalation, expires_at, .. } = &e[0]
    else {
        unreachable!()
    };
    assert_eq!(urls_checked, &["https://shop.ru/x"]);
    assert_eq!(ready_queries[0], "купить вариатор JF011E б/у");
    assert_eq!(escalation, &None);
    assert_eq!(*expires_at, t(10) + Duration::hours(24));
    assert_eq!(l.status, Some(PriceLookupStatus::NotFound));
    assert_eq!(l.price_range(), None);
    // The next identical request does not search again for 24 hours.
    let e = run(&mut l, request_by(11, customer(51), t(10) + Duration::hours(23))).unwrap();
    assert!(matches!(&e[0], PriceLookupEvent::PriceLookupJoined { answered_from: Some(1), .. }));
    let e = run(&mut l, request_by(12, customer(52), t(10) + Duration::hours(24))).unwrap();
    assert!(matches!(&e[0], PriceLookupEvent::PriceLookupRequested { round: 2, .. }));
}

#[test]
fn escalation_when_the_tenant_wants_it() {
    let mut l = given(vec![request(10, t(0)), start(1), source(1, failed_page())]);
    run(&mut l, conclude(1, true, t(10))).unwrap();
    assert_eq!(l.status, Some(PriceLookupStatus::Escalated));
    let Some(PriceOutcome::NotFound { escalation: Some(e), .. }) = &l.outcome else { panic!("{:?}", l.outcome) };
    assert_eq!(e.urls_checked, ["https://shop.ru/x"]);
    let settings = PriceSettings::default();
    let templates = TemplateOverrides::new();
    let subject = l.subject.clone().unwrap();
    let ctx = ReplyContext {
        subject: &subject,
        settings: &settings,
        templates: &templates,
        payment_methods: &[],
        now: t(11),
    };
    let kinds: Vec<SuggestionKind> = price_suggestions(&ctx, l.answer().unwrap()).iter().map(|s| s.kind).collect();
    assert_eq!(kinds, [SuggestionKind::NotFound, SuggestionKind::Escalation]);
}

#[test]
fn an_ai_estimate_is_an_estimate_for_two_hours() {
    let mut ai = SourceReport::new(SourceKind::AiEstimate, SourceOutcome::Estimate { min: 60_000, max: 90_000 }, t(4));
    ai.queries = vec!["JF011E used price".into()];
    let mut l = given(vec![request(10, t(0)), start(1), source(1, failed_page()), source(1, ai)]);
    let e = run(&mut l, conclude(1, true, t(10))).unwrap();
    let PriceLookupEvent::PriceLookupEstimated { min, max, confidence, expires_at, .. } = &e[0] else { unreachable!() };
    assert_eq!((*min, *max), (60_000, 90_000));
    assert_eq!(confidence.level, crate::price::ConfidenceLevel::Low);
    assert_eq!(*expires_at, t(10) + Duration::hours(2));
    assert_eq!(l.status, Some(PriceLookupStatus::Estimated));
    assert_eq!(l.price_range(), Some((60_000, 90_000, None)));
    assert!(matches!(l.answer(), Some(PriceAnswer::Estimate { min: 60_000, max: 90_000 })));
}

#[test]
fn implausible_estimates_are_recorded_as_failed() {
    for (min, max) in [(0, 90_000), (60_000, 50_000), (10_000, 90_000), (60_000, 20_000_000)] {
        let mut l = given(vec![request(10, t(0)), start(1)]);
        let report = SourceReport::new(SourceKind::AiEstimate, SourceOutcome::Estimate { min, max }, t(4));
        let e = run(&mut l, source(1, report)).unwrap();
        let PriceLookupEvent::PriceSourceQueried { outcome, .. } = &e[0] else { unreachable!() };
        assert!(
            matches!(outcome, SourceOutcome::Failed { reason, .. } if reason.starts_with("implausible estimate")),
            "{min}..{max}"
        );
        run(&mut l, conclude(1, false, t(10))).unwrap();
        assert_eq!(l.status, Some(PriceLookupStatus::NotFound), "{min}..{max}: never a made-up price");
    }
}

#[test]
fn a_market_price_wins_over_an_estimate() {
    let ai = SourceReport::new(SourceKind::AiEstimate, SourceOutcome::Estimate { min: 10_000, max: 20_000 }, t(4));
    let mut l = searched();
    run(&mut l, source(1, ai)).unwrap();
    run(&mut l, conclude(1, false, t(10))).unwrap();
    assert_eq!(l.status, Some(PriceLookupStatus::Priced));
}

#[test]
fn the_own_price_list_prices_when_the_market_does_not() {
    let mut own = SourceReport::new(SourceKind::OwnPriceList, SourceOutcome::Ok { results: 2 }, t(2));
    own.offers = vec![
        OwnOffer { price: 80_000, condition: Some("б/у".into()), supplier: None, stock: Some(1) },
        OwnOffer { price: 0, condition: None, supplier: None, stock: None },
    ];
    let mut l = given(vec![request(10, t(0)), start(1), source(1, own)]);
    let e = run(&mut l, conclude(1, false, t(10))).unwrap();
    let PriceLookupEvent::PriceLookupPriced { basis, summary, own_offers, expires_at, sources, .. } = &e[0] else {
        unreachable!()
    };
    assert_eq!(*basis, PriceBasis::OwnPriceList);
    assert_eq!((summary.min, summary.max, summary.count), (80_000, 80_000, 1));
    assert_eq!(own_offers.len(), 1, "a zero price is no offer");
    assert_eq!(sources, &[SourceKind::OwnPriceList]);
    assert_eq!(*expires_at, t(10) + Duration::hours(1));
    assert!(matches!(l.answer(), Some(PriceAnswer::Own { .. })));
}

#[test]
fn failures_end_the_round_without_a_negative_result() {
    let mut l = given(vec![request(10, t(0)), start(1)]);
    let e = run(&mut l, PriceLookupCommand::Fail { round: 1, reason: "  ".into(), at: t(5) }).unwrap();
    assert!(
        matches!(&e[0], PriceLookupEvent::PriceLookupFailed { revision: 1, reason, .. } if reason == "no reason given")
    );
    assert_eq!(l.status, Some(PriceLookupStatus::Failed));
    assert_eq!(l.expires_at, None);
    let e = run(&mut l, request_by(11, customer(51), t(6))).unwrap();
    assert!(matches!(&e[0], PriceLookupEvent::PriceLookupRequested { round: 2, .. }));
    // The subject learnt from earlier requests is kept.
    assert_eq!(l.subject.as_ref().unwrap().transmission_code.as_deref(), Some("JF011E"));
}

#[test]
fn redelivered_and_late_worker_commands() {
    let mut l = given(vec![request(10, t(0))]);
    assert_eq!(
        l.decide(source(1, yandex())),
        Err(PriceLookupError::NotSearching("pending")),
        "sources only once the search started"
    );
    assert_eq!(l.decide(conclude(1, false, t(1))), Err(PriceLookupError::NotSearching("pending")));
    run(&mut l, start(1)).unwrap();
    assert!(run(&mut l, start(1)).unwrap().is_empty(), "a redelivered start");
    assert_eq!(l.decide(start(2)), Err(PriceLookupError::StaleRound(2)));
    run(&mut l, conclude(1, false, t(10))).unwrap();
    assert_eq!(l.decide(source(1, yandex())), Err(PriceLookupError::StaleRound(1)));
    assert_eq!(l.decide(conclude(1, false, t(11))), Err(PriceLookupError::StaleRound(1)));
    assert_eq!(l.decide(start(1)), Err(PriceLookupError::StaleRound(1)));
}

#[test]
fn sources_carry_only_their_own_kind_of_data() {
    let l = given(vec![request(10, t(0)), start(1)]);
    let mut r = yandex();
    r.listings = vec![raw("https://a.ru/1", "АКПП", "50 000 ₽")];
    assert!(matches!(l.decide(source(1, r)), Err(PriceLookupError::SourceMismatch(_))));
    let mut r = drom_page();
    r.offers = vec![OwnOffer { price: 1, condition: None, supplier: None, stock: None }];
    assert!(matches!(l.decide(source(1, r)), Err(PriceLookupError::SourceMismatch(_))));
    let r = SourceReport::new(SourceKind::YandexSearch, SourceOutcome::Estimate { min: 50_000, max: 60_000 }, t(2));
    assert!(matches!(l.decide(source(1, r)), Err(PriceLookupError::SourceMismatch(_))));
}

#[test]
fn each_conversation_is_offered_each_answer_once() {
    let mut l = given(vec![
        request_by(10, customer(50), t(0)),
        request_by(11, Requester::VehicleLookup { lookup_id: id(7), conversation_id: Some(id(51)) }, t(1)),
        request_by(12, Requester::Operator { actor: "user:1".into(), conversation_id: None }, t(1)),
    ]);
    let offer = |conversation: u128, revision: u32| PriceLookupCommand::RecordSuggestionOffered {
        conversation_id: id(conversation),
        revision,
        kinds: vec![SuggestionKind::Price, SuggestionKind::PaymentOptions],
        at: t(20),
    };
    assert_eq!(l.decide(offer(50, 1)), Err(PriceLookupError::NoAnswer));
    for c in [start(1), source(1, drom_page()), conclude(1, false, t(10))] {
        run(&mut l, c).unwrap();
    }
    assert_eq!(l.pending_offers(), [id(50), id(51)]);
    assert_eq!(names(&run(&mut l, offer(50, 1)).unwrap()), ["PriceSuggestionOffered"]);
    assert!(run(&mut l, offer(50, 1)).unwrap().is_empty(), "offered once");
    assert_eq!(l.decide(offer(51, 2)), Err(PriceLookupError::StaleRevision { revision: 2, current: 1 }));
    assert_eq!(l.decide(offer(99, 1)), Err(PriceLookupError::NotRequested));
    run(&mut l, offer(51, 1)).unwrap();
    assert!(l.pending_offers().is_empty());
    // The same conversation asking again while the answer is fresh already has it.
    run(&mut l, request_by(13, customer(50), t(30))).unwrap();
    assert!(l.pending_offers().is_empty());
    // Another conversation is answered from the record.
    run(&mut l, request_by(14, customer(52), t(31))).unwrap();
    assert_eq!(l.pending_offers(), [id(52)]);
}

#[test]
fn later_requests_fill_in_the_subject() {
    let mut l = given(vec![request(10, t(0))]);
    let mut richer = subject();
    richer.oem = Some("31020-3VX2D".into());
    richer.year = Some("2012".into());
    let e = run(
        &mut l,
        PriceLookupCommand::Request(Box::new(PriceRequest {
            request_id: id(11),
            tenant_id: id(TENANT),
            subject: richer,
            requester: Requester::VehicleLookup { lookup_id: id(7), conversation_id: None },
            refresh: false,
            at: t(1),
        })),
    )
    .unwrap();
    assert_eq!(names(&e), ["PriceLookupJoined"]);
    let s = l.subject.as_ref().unwrap();
    assert_eq!((s.oem.as_deref(), s.year.as_deref()), (Some("31020-3VX2D"), Some("2012")));
}

#[test]
fn replies_from_the_recorded_answer_apply_the_margin() {
    let l = priced();
    let settings = PriceSettings::default();
    let templates = TemplateOverrides::new();
    let subject = l.subject.clone().unwrap();
    let ctx = ReplyContext {
        subject: &subject,
        settings: &settings,
        templates: &templates,
        payment_methods: &[],
        now: t(11),
    };
    let out = price_suggestions(&ctx, l.answer().unwrap());
    assert_eq!(out.len(), 1);
    // 60 000 and 75 000 less 25 %: 45 000 and 56 300 (56 250 rounded to hundreds).
    assert!(out[0].text.contains("от 45\u{a0}000 до 56\u{a0}300 ₽"), "{}", out[0].text);
}

#[test]
fn statuses_and_event_names() {
    for s in PriceLookupStatus::ALL {
        assert_eq!(PriceLookupStatus::parse(s.as_str()), Some(s));
        assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
    }
    assert!(PriceLookupStatus::Escalated.is_final() && !PriceLookupStatus::Searching.is_final());
    assert!(PriceLookupStatus::Estimated.has_price() && !PriceLookupStatus::NotFound.has_price());
    // Every event type of a full story is a type the enum declares, in order.
    let mut l = PriceLookup::default();
    let mut seen: Vec<&str> = Vec::new();
    let mut ai = SourceReport::new(SourceKind::AiEstimate, SourceOutcome::Estimate { min: 60_000, max: 90_000 }, t(4));
    ai.queries = vec!["q".into()];
    for c in [
        request(10, t(0)),
        request(11, t(1)),
        start(1),
        source(1, drom_page()),
        conclude(1, false, t(10)),
        PriceLookupCommand::RecordSuggestionOffered { conversation_id: id(50), revision: 1, kinds: vec![], at: t(11) },
        request(12, t(10) + Duration::days(8)),
        start(2),
        source(2, ai),
        conclude(2, false, t(10) + Duration::days(8)),
        request(13, t(10) + Duration::days(9)),
        start(3),
        conclude(3, false, t(10) + Duration::days(9)),
        request(14, t(10) + Duration::days(10)),
        PriceLookupCommand::Fail { round: 4, reason: "gave up".into(), at: t(10) + Duration::days(10) },
    ] {
        for e in run(&mut l, c).unwrap() {
            if !seen.contains(&e.name()) {
                seen.push(e.name());
            }
            assert!(!e.meaning().is_empty());
            use cqrs_es::DomainEvent;
            assert_eq!((e.event_type(), e.event_version()), (e.name().to_string(), "1".to_string()));
        }
    }
    let mut expected: Vec<&str> = PriceLookupEvent::types().to_vec();
    expected.sort_unstable();
    seen.sort_unstable();
    assert_eq!(seen, expected);
}
