//! Given / when / then tests of the vehicle-lookup rules (no IO).

use chrono::{TimeZone, Utc};

use super::*;
use crate::tenant::AgentSettings;

fn t(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_790_000_000 + s, 0).unwrap()
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

const CAMRY: &str = "JTNBK40K203012345";

fn vin(v: &str) -> VehicleId {
    VehicleId::parse(IdType::Vin, v).unwrap()
}

fn request(request: u128) -> VehicleLookupCommand {
    VehicleLookupCommand::Request(Box::new(NewRequest {
        request_id: id(request),
        tenant_id: id(1),
        conversation_id: Some(id(2)),
        message_id: Some(id(3)),
        id: vin(CAMRY),
        source: LookupSource::Detected,
        requested_by: "conversation".into(),
        at: t(0),
    }))
}

fn given(commands: Vec<VehicleLookupCommand>) -> VehicleLookup {
    let mut l = VehicleLookup::default();
    for c in commands {
        run(&mut l, c).unwrap();
    }
    l
}

fn run(l: &mut VehicleLookup, c: VehicleLookupCommand) -> Result<Vec<VehicleLookupEvent>, VehicleLookupError> {
    let events = l.decide(c)?;
    for e in events.clone() {
        l.evolve(e);
    }
    Ok(events)
}

fn names(events: &[VehicleLookupEvent]) -> Vec<&'static str> {
    events.iter().map(VehicleLookupEvent::name).collect()
}

fn found(oem: Option<&str>, status: ResultStatus) -> Box<LookupResult> {
    Box::new(LookupResult {
        status,
        vehicle: VehicleMeta { make: Some("TOYOTA".into()), model: Some("CAMRY".into()), ..Default::default() },
        gearbox: GearboxInfo {
            model: Some("U241E".into()),
            factory_code: Some("U241E-06A".into()),
            oem: oem.map(String::from),
            oem_candidates: vec![],
            oem_search: None,
        },
        source: "podzamenu".into(),
        decoder: crate::vin::decode(CAMRY, 2026),
        confidence: 0.9,
        from_cache: false,
        note: None,
        evidence: vec![],
    })
}

fn not_found() -> Box<NotFoundResult> {
    Box::new(NotFoundResult {
        source: "podzamenu".into(),
        sources_tried: vec!["podzamenu".into(), "prof_rf".into()],
        vehicle: None,
        decoder: None,
        from_cache: false,
        evidence: vec![EvidenceRef { id: id(90), kind: EvidenceKind::Screenshot }],
    })
}

fn start(round: u32) -> VehicleLookupCommand {
    VehicleLookupCommand::Start { round, at: t(1) }
}

#[test]
fn identifiers_are_normalised_and_lookup_ids_are_deterministic() {
    let a = VehicleId::parse(IdType::Vin, " jtnbk40k2 03012345 ").unwrap();
    assert_eq!(a.value(), CAMRY);
    assert_eq!(a.cache_key(), "VIN:JTNBK40K203012345");
    assert_eq!(VehicleId::parse(IdType::Frame, "nt31-012345").unwrap().value(), "NT31-012345");
    assert!(matches!(VehicleId::parse(IdType::Vin, "JTNBK40K20301234O"), Err(IdError::InvalidVin(_))));
    assert_eq!(VehicleId::parse(IdType::Frame, "  "), Err(IdError::Empty));
    assert_eq!(IdType::parse("frame"), Some(IdType::Frame));
    let same = lookup_id(id(1), Some(id(2)), &a);
    assert_eq!(same, lookup_id(id(1), Some(id(2)), &vin(CAMRY)));
    assert_ne!(same, lookup_id(id(1), Some(id(3)), &a), "another conversation, another lookup");
    assert_ne!(same, lookup_id(id(9), Some(id(2)), &a), "another tenant, another lookup");
}

#[test]
fn a_request_is_recorded_once_and_merged_while_a_round_runs() {
    let mut l = VehicleLookup::default();
    assert_eq!(names(&run(&mut l, request(10)).unwrap()), ["LookupRequested"]);
    assert_eq!(l.status, Some(LookupStatus::Requested));
    assert_eq!(l.round, 1);
    assert_eq!(l.id.as_ref().unwrap().value(), CAMRY);
    assert!(run(&mut l, request(10)).unwrap().is_empty(), "the same request delivered twice");
    assert_eq!(names(&run(&mut l, request(11)).unwrap()), ["LookupRequestMerged"]);
    assert!(run(&mut l, request(11)).unwrap().is_empty());
    assert_eq!(l.round, 1);
    let VehicleLookupCommand::Request(mut other) = request(12) else { unreachable!() };
    other.tenant_id = id(99);
    assert_eq!(l.decide(VehicleLookupCommand::Request(other)), Err(VehicleLookupError::WrongTenant));
}

#[test]
fn nothing_but_a_request_creates_a_lookup() {
    let l = VehicleLookup::default();
    assert_eq!(l.decide(start(1)), Err(VehicleLookupError::NotFound));
    assert_eq!(
        l.decide(VehicleLookupCommand::Retry { by: "user:1".into(), at: t(0) }),
        Err(VehicleLookupError::NotFound)
    );
}

#[test]
fn found_completes_the_round_and_asks_for_a_price_once() {
    let mut l = given(vec![request(10)]);
    let e = run(&mut l, start(1)).unwrap();
    assert_eq!(e, [VehicleLookupEvent::LookupStarted { round: 1, attempt: 1, started_at: t(1) }]);
    let done = run(
        &mut l,
        VehicleLookupCommand::Complete { round: 1, result: found(Some("30500-33570"), ResultStatus::Found), at: t(5) },
    )
    .unwrap();
    assert_eq!(names(&done), ["LookupCompleted", "PriceLookupWanted"]);
    match &done[1] {
        VehicleLookupEvent::PriceLookupWanted { oem, model, origin } => {
            assert_eq!((oem.as_str(), model.as_deref(), *origin), ("30500-33570", Some("U241E"), PriceOrigin::Lookup))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(l.status, Some(LookupStatus::Completed));
    assert_eq!(l.revision, 1);
    let data = l.data.as_ref().unwrap();
    assert_eq!((data.status, data.value.as_str()), (VehicleDataStatus::Found, CAMRY));
    assert_eq!(data.make(), Some("TOYOTA"));
    // A late second answer for the same round changes nothing.
    let again = VehicleLookupCommand::Complete { round: 1, result: found(None, ResultStatus::ModelOnly), at: t(6) };
    assert_eq!(l.decide(again), Err(VehicleLookupError::StaleRound(1)));
    // A completed lookup asked again only merges the request.
    assert_eq!(names(&run(&mut l, request(11)).unwrap()), ["LookupRequestMerged"]);
    assert_eq!(
        l.decide(VehicleLookupCommand::Retry { by: "user:1".into(), at: t(9) }),
        Err(VehicleLookupError::CannotRetry("completed"))
    );
}

#[test]
fn retryable_failures_are_scheduled_then_the_round_fails_with_its_attempts() {
    let mut l = given(vec![request(10), start(1)]);
    let retry = VehicleLookupCommand::ScheduleRetry {
        round: 1,
        retry_at: t(20),
        reason: "podzamenu: HTTP 503".into(),
        evidence: vec![EvidenceRef { id: id(50), kind: EvidenceKind::Html }],
    };
    assert_eq!(names(&run(&mut l, retry.clone()).unwrap()), ["LookupRetryScheduled"]);
    assert_eq!((l.status, l.retry_at), (Some(LookupStatus::RetryScheduled), Some(t(20))));
    assert_eq!(l.decide(retry), Err(VehicleLookupError::NotRunnable("retry_scheduled")));
    let e = run(&mut l, start(1)).unwrap();
    assert_eq!(e, [VehicleLookupEvent::LookupStarted { round: 1, attempt: 2, started_at: t(1) }]);
    assert_eq!(l.decide(start(1)), Err(VehicleLookupError::NotRunnable("started")), "one claim per attempt");
    let fail = VehicleLookupCommand::Fail {
        round: 1,
        reason: "gave up after 2 attempts".into(),
        decoder: None,
        evidence: vec![],
        at: t(30),
    };
    let e = run(&mut l, fail).unwrap();
    assert!(matches!(e[0], VehicleLookupEvent::LookupFailed { attempts: 2, .. }), "{e:?}");
    assert_eq!(l.status, Some(LookupStatus::Failed));
    assert_eq!(l.revision, 1);
    assert_eq!(l.decide(start(1)), Err(VehicleLookupError::StaleRound(1)));

    // An operator retries: round 2 starts from attempt 1.
    let e = run(&mut l, VehicleLookupCommand::Retry { by: "user:7".into(), at: t(40) }).unwrap();
    assert_eq!(names(&e), ["LookupRetryRequested"]);
    assert_eq!((l.round, l.attempt, l.status), (2, 0, Some(LookupStatus::Requested)));
    assert_eq!(l.decide(start(1)), Err(VehicleLookupError::StaleRound(1)));
    assert!(matches!(run(&mut l, start(2)).unwrap()[0], VehicleLookupEvent::LookupStarted { attempt: 1, .. }));
}

#[test]
fn not_found_can_be_asked_again_and_decoder_only_answers_can_be_retried() {
    let mut l = given(vec![request(10), start(1)]);
    run(&mut l, VehicleLookupCommand::RecordNotFound { round: 1, result: not_found(), at: t(3) }).unwrap();
    assert_eq!(l.status, Some(LookupStatus::NotFound));
    let data = l.data.as_ref().unwrap();
    assert_eq!(data.status, VehicleDataStatus::NotFound);
    assert_eq!(data.confidence, 0.4, "not found at podzamenu");
    // The customer sends the VIN again: a new round.
    let e = run(&mut l, request(11)).unwrap();
    assert!(matches!(e[0], VehicleLookupEvent::LookupRequested { round: 2, .. }));
    run(&mut l, start(2)).unwrap();
    let mut decoded = found(None, ResultStatus::DecoderOnly);
    decoded.gearbox = GearboxInfo::default();
    decoded.source = "vin_decoder".into();
    let e = run(&mut l, VehicleLookupCommand::Complete { round: 2, result: decoded, at: t(9) }).unwrap();
    assert_eq!(names(&e), ["LookupCompleted"], "no OEM, no price lookup");
    assert_eq!(
        names(&run(&mut l, VehicleLookupCommand::Retry { by: "user:1".into(), at: t(10) }).unwrap()),
        ["LookupRetryRequested"]
    );
    assert_eq!(l.round, 3);
}

#[test]
fn an_operator_corrects_the_identifier_after_the_round_ended() {
    let mut l = given(vec![request(10), start(1)]);
    let correct = |v: &str| VehicleLookupCommand::CorrectId { id: vin(v), by: "user:1".into(), at: t(4) };
    assert_eq!(l.decide(correct("JTNBK40K203012346")), Err(VehicleLookupError::Running("started")));
    run(&mut l, VehicleLookupCommand::RecordNotFound { round: 1, result: not_found(), at: t(3) }).unwrap();
    assert_eq!(l.decide(correct(CAMRY)), Err(VehicleLookupError::SameId));
    let e = run(&mut l, correct("jtnbk40k203012346")).unwrap();
    match &e[0] {
        VehicleLookupEvent::LookupIdCorrected { round, previous_value, value, .. } => {
            assert_eq!((*round, previous_value.as_str(), value.as_str()), (2, CAMRY, "JTNBK40K203012346"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(l.id.as_ref().unwrap().value(), "JTNBK40K203012346");
    assert_eq!(l.status, Some(LookupStatus::Requested));
}

#[test]
fn a_gearbox_confirmed_from_its_tag_is_compared_with_the_lookup() {
    let confirm = |model: &str, oem: Option<&str>| VehicleLookupCommand::ConfirmGearbox {
        model: model.into(),
        oem: oem.map(String::from),
        factory_code: None,
        note: Some("фото шильдика".into()),
        by: "user:1".into(),
        at: t(9),
    };
    let complete =
        VehicleLookupCommand::Complete { round: 1, result: found(Some("30500-33570"), ResultStatus::Found), at: t(5) };
    let mut l = given(vec![request(10), start(1), complete]);
    let e = run(&mut l, confirm(" u241e-06a ", None)).unwrap();
    assert!(
        matches!(&e[0], VehicleLookupEvent::GearboxConfirmed { model, verification: Verification::VerifiedMatch, .. } if model == "U241E-06A"),
        "{e:?}"
    );
    assert_eq!(l.revision, 2);
    assert_eq!(l.data.as_ref().unwrap().gearbox_model(), Some("U241E-06A"));
    // A different gearbox with a new OEM: a mismatch, and a price lookup for the tag's OEM.
    let e = run(&mut l, confirm("U151E", Some("30500-48150"))).unwrap();
    assert_eq!(names(&e), ["GearboxConfirmed", "PriceLookupWanted"]);
    assert!(matches!(e[0], VehicleLookupEvent::GearboxConfirmed { verification: Verification::Mismatch, .. }));
    assert!(matches!(&e[1], VehicleLookupEvent::PriceLookupWanted { origin: PriceOrigin::Tag, .. }));
    // The found OEM was already wanted: confirming it asks for nothing new.
    let e = run(&mut l, confirm("U241E", Some("30500 33570"))).unwrap();
    assert_eq!(names(&e), ["GearboxConfirmed"]);
    assert_eq!(l.decide(confirm("  ", None)), Err(VehicleLookupError::EmptyModel));

    // Nothing to compare with: simply confirmed.
    let mut nf = given(vec![request(10), start(1)]);
    run(&mut nf, VehicleLookupCommand::RecordNotFound { round: 1, result: not_found(), at: t(3) }).unwrap();
    let e = run(&mut nf, confirm("A245E", None)).unwrap();
    assert!(matches!(e[0], VehicleLookupEvent::GearboxConfirmed { verification: Verification::Confirmed, .. }));
}

#[test]
fn confidence_follows_the_old_formula() {
    use VehicleDataStatus as S;
    assert_eq!(confidence(S::Found, true, true, Some("podzamenu"), true), 1.0);
    assert_eq!(confidence(S::Found, true, true, Some("podzamenu"), false), 0.9);
    assert_eq!(confidence(S::Found, true, false, Some("prof_rf"), true), 0.9);
    assert_eq!(confidence(S::ModelOnly, false, true, Some("podzamenu"), false), 0.8);
    assert_eq!(confidence(S::NotFound, false, false, None, false), 0.3);
    assert_eq!(confidence(S::DecoderOnly, false, false, Some("vin_decoder"), false), 0.1);
}

fn data(status: VehicleDataStatus, model: Option<&str>, oem: Option<&str>, confidence: f64) -> VehicleData {
    VehicleData {
        id_type: IdType::Vin,
        value: CAMRY.into(),
        status,
        vehicle: VehicleMeta { make: Some("TOYOTA".into()), model: Some("CAMRY".into()), ..Default::default() },
        gearbox: GearboxInfo {
            model: model.map(String::from),
            factory_code: None,
            oem: oem.map(String::from),
            oem_candidates: vec![],
            oem_search: None,
        },
        source: Some("podzamenu".into()),
        confidence,
        decoder: None,
        confirmed: None,
        note: None,
    }
}

#[test]
fn the_reply_suggestion_comes_from_the_tenant_templates() {
    let s = AgentSettings::default();
    let found =
        gearbox_suggestion(&s, &data(VehicleDataStatus::Found, Some("U241E"), Some("30500-33570"), 1.0), None).unwrap();
    assert_eq!(found.template, "gearboxLookupFound");
    assert!(
        found.text.starts_with("По вашему VIN-коду определяется модель КПП: U241E (OEM: 30500-33570)."),
        "{}",
        found.text
    );
    assert_eq!((found.intent.as_str(), found.confidence), ("other", 1.0));

    let model_only =
        gearbox_suggestion(&s, &data(VehicleDataStatus::ModelOnly, Some("F1CJA"), None, 0.8), None).unwrap();
    assert_eq!(model_only.template, "gearboxLookupModelOnly");
    assert!(model_only.text.starts_with("По VIN-коду определяется модель КПП: F1CJA."), "{}", model_only.text);

    let weak = gearbox_suggestion(&s, &data(VehicleDataStatus::Found, None, None, 0.3), None).unwrap();
    assert_eq!((weak.template, weak.intent.as_str()), ("gearboxTagRequest", "gearbox_tag_request"));

    let mut nf = data(VehicleDataStatus::NotFound, None, None, 0.3);
    nf.vehicle.transmission = Some("A/T 5-SPEED".into());
    let fallback = gearbox_suggestion(&s, &nf, None).unwrap();
    assert_eq!((fallback.template, fallback.intent.as_str()), ("gearboxLookupFallback", "gearbox_fallback_search"));
    assert!(fallback.text.starts_with("По VIN коробка передач АКПП в каталоге не отображается."), "{}", fallback.text);
    assert!(fallback.text.contains("Ищу варианты АКПП TOYOTA CAMRY"), "{}", fallback.text);
    // The customer's own words win over the catalogue.
    let cvt = gearbox_suggestion(&s, &nf, Some(crate::detect::GearboxType::Cvt)).unwrap();
    assert!(cvt.text.contains("CVT (вариатор)"), "{}", cvt.text);

    // A tenant override is used.
    let mut custom = AgentSettings::default();
    custom.templates.insert("gearboxLookupFound".into(), "Ваша КПП {{model}}, OEM {{oem}} ({{make}})".into());
    let text =
        gearbox_suggestion(&custom, &data(VehicleDataStatus::Found, Some("U241E"), Some("30500-33570"), 1.0), None)
            .unwrap()
            .text;
    assert_eq!(text, "Ваша КПП U241E, OEM 30500-33570 (TOYOTA)");
}

#[test]
fn vehicle_data_feeds_the_drafting_prompt() {
    let mut d = data(VehicleDataStatus::Found, Some("U241E"), Some("30500-33570"), 1.0);
    d.confirmed = Some(ConfirmedGearbox {
        model: "U241E-06A".into(),
        oem: None,
        factory_code: None,
        verification: Verification::VerifiedMatch,
        confirmed_by: "user:1".into(),
    });
    let f = d.facts();
    assert_eq!(f.id_value.as_deref(), Some(CAMRY));
    assert_eq!(f.make.as_deref(), Some("TOYOTA"));
    assert_eq!(f.gearbox_model.as_deref(), Some("U241E-06A"), "the tag wins");
    assert_eq!(f.oem.as_deref(), Some("30500-33570"));
}

#[test]
fn answers_recorded_before_the_oem_trail_existed_still_load_and_the_trail_round_trips() {
    // A `LookupCompleted` as stored before `gearbox.oem_search` existed.
    let stored = serde_json::json!({ "LookupCompleted": {
        "round": 1, "attempt": 1, "conversation_id": null, "completed_at": "2025-01-01T00:00:00Z",
        "result": {
            "status": "MODEL_ONLY", "vehicle": { "make": "MITSUBISHI", "model": null, "year": null, "engine": null,
            "body": null, "modification": null, "transmission": null, "drive": null },
            "gearbox": { "model": "F1CJA", "factory_code": null, "oem": null, "oem_candidates": [] },
            "source": "podzamenu", "decoder": null, "confidence": 0.8, "from_cache": false, "note": null,
            "evidence": []
        }
    }});
    let event: VehicleLookupEvent = serde_json::from_value(stored).unwrap();
    let VehicleLookupEvent::LookupCompleted { result, .. } = &event else { panic!("{event:?}") };
    assert_eq!(result.gearbox.model.as_deref(), Some("F1CJA"));
    assert_eq!(result.gearbox.oem_search, None);
    // Without a trail nothing new is written.
    assert!(!serde_json::to_string(&event).unwrap().contains("oem_search"));

    let search = OemSearch {
        site: "podzamenu".into(),
        paths: vec![OemPathTrial {
            path: "accordion".into(),
            attempt: 1,
            outcome: OemPathOutcome::EmptyParts,
            step: "podzamenu.nav.accordion.link".into(),
            detail: Some("Коробка передач: Нет данных".into()),
            url: None,
        }],
        failure: Some(OemStepFailure {
            kind: OemFailureKind::PartsListEmpty,
            step: "podzamenu.nav.accordion.link".into(),
            reason: "the gearbox parts list says it lists nothing".into(),
            transient: false,
            attempts: 1,
        }),
    };
    let json = serde_json::to_value(&search).unwrap();
    assert_eq!(json["failure"]["kind"], "parts_list_empty");
    assert_eq!(json["paths"][0]["outcome"], "empty_parts");
    assert_eq!(serde_json::from_value::<OemSearch>(json).unwrap(), search);
    assert_eq!(
        search.summary().as_deref(),
        Some("parts_list_empty at podzamenu.nav.accordion.link: the gearbox parts list says it lists nothing")
    );
}
