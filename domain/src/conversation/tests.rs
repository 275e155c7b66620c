//! Given / when / then tests of the conversation rules (no IO).

use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

use super::state::{KEEP_DECIDED, RECENT_PROVIDER_IDS};
use super::*;
use crate::codec::EventSchema;
use crate::vehicle_lookup::IdType;

use ConversationEvent as E;

fn t(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_790_000_000 + s, 0).unwrap()
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn inbound(provider_id: &str, text: &str, at: i64) -> Inbound {
    Inbound {
        tenant_id: id(1),
        channel: ChannelKind::GreenApi,
        account_id: id(2),
        chat_id: "79001234567@c.us".into(),
        customer_id: id(3),
        customer_name: Some("Иван".into()),
        customer_phone: Some("79001234567".into()),
        message_id: Uuid::from_u128(1000 + at as u128),
        provider_message_id: provider_id.into(),
        text: text.into(),
        attachments: vec![],
        kind: MessageKind::Text,
        reply_to: None,
        sent_at: t(at),
        received_at: t(at),
        request_id: Uuid::from_u128(5000 + at as u128),
        debounce: Duration::seconds(3),
        vehicle_id: None,
        transmission_code: None,
    }
}

fn run(c: &mut Conversation, cmd: ConversationCommand) -> Result<Vec<ConversationEvent>, ConversationError> {
    let events = c.decide(cmd)?;
    for e in events.clone() {
        c.evolve(e);
    }
    Ok(events)
}

fn names(events: &[ConversationEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.name()).collect()
}

fn started() -> Conversation {
    let mut c = Conversation::default();
    run(&mut c, ConversationCommand::ReceiveMessage(Box::new(inbound("m1", "Здравствуйте", 0)))).unwrap();
    c
}

fn drafted(request_id: Uuid, suggestion: u128, decision: Decision, block: Option<&str>) -> ConversationCommand {
    ConversationCommand::RecordSuggestion(Box::new(Drafted {
        request_id,
        suggestion_id: id(suggestion),
        text: "Добрый день! Пришлите VIN, пожалуйста.".into(),
        intent: "other".into(),
        confidence: 0.9,
        decision,
        explanations: vec![],
        source: "ai".into(),
        model: Some("gpt-4o-mini".into()),
        autosend_block_reason: block.map(String::from),
        reply_id: id(suggestion + 100),
        send_after: t(10),
    }))
}

#[test]
fn the_first_message_starts_the_conversation_and_asks_for_a_suggestion_after_the_burst_window() {
    let mut c = Conversation::default();
    let events =
        run(&mut c, ConversationCommand::ReceiveMessage(Box::new(inbound("m1", "  Нужна АКПП  ", 0)))).unwrap();
    assert_eq!(names(&events), ["ConversationStarted", "MessageReceived", "SuggestionRequested"]);
    match &events[1] {
        E::MessageReceived { text, .. } => assert_eq!(text, "Нужна АКПП"),
        other => panic!("{other:?}"),
    }
    match &events[2] {
        E::SuggestionRequested { not_before, .. } => assert_eq!(*not_before, t(3)),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.status, Status::Open);
    assert!(c.started);
}

#[test]
fn a_provider_message_id_delivered_twice_is_one_message() {
    let mut c = started();
    let events = run(&mut c, ConversationCommand::ReceiveMessage(Box::new(inbound("m1", "Здравствуйте", 0)))).unwrap();
    assert!(events.is_empty());
    assert_eq!(c.messages, 1);
}

#[test]
fn a_burst_of_messages_yields_one_request() {
    let mut c = started();
    let events = run(&mut c, ConversationCommand::ReceiveMessage(Box::new(inbound("m2", "Камри 2008", 1)))).unwrap();
    assert_eq!(names(&events), ["MessageReceived"]);
    assert_eq!(c.messages, 2);
}

#[test]
fn approve_queues_exactly_one_reply_and_cannot_be_repeated() {
    let mut c = started();
    let request = c.pending_request.unwrap();
    run(&mut c, drafted(request, 10, Decision::NeedApproval, None)).unwrap();
    assert_eq!(c.suggestions[&id(10)].status, SuggestionStatus::Pending);
    let approve = ConversationCommand::Approve { suggestion_id: id(10), reply_id: id(20), send_after: t(5) };
    let events = run(&mut c, approve.clone()).unwrap();
    assert_eq!(names(&events), ["SuggestionApproved", "ReplyQueued"]);
    match &events[1] {
        E::ReplyQueued { text, origin, .. } => {
            assert_eq!(text, "Добрый день! Пришлите VIN, пожалуйста.");
            assert_eq!(*origin, ReplyOrigin::Suggestion);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(run(&mut c, approve), Err(ConversationError::SuggestionNotPending("approved")));
    let reject = ConversationCommand::Reject { suggestion_id: id(10), reason: None };
    assert_eq!(run(&mut c, reject), Err(ConversationError::SuggestionNotPending("approved")));
    assert_eq!(
        run(&mut c, ConversationCommand::Reject { suggestion_id: id(99), reason: None }),
        Err(ConversationError::SuggestionNotFound)
    );
}

#[test]
fn a_suggestion_result_for_a_request_already_answered_is_refused() {
    let mut c = started();
    let request = c.pending_request.unwrap();
    run(&mut c, drafted(request, 10, Decision::NeedApproval, None)).unwrap();
    assert_eq!(
        run(&mut c, drafted(request, 11, Decision::NeedApproval, None)),
        Err(ConversationError::RequestNotPending)
    );
    assert_eq!(
        run(&mut c, ConversationCommand::FailSuggestion { request_id: request, reason: "x".into() }),
        Err(ConversationError::RequestNotPending)
    );
}

#[test]
fn edits_need_text() {
    let mut c = started();
    let request = c.pending_request.unwrap();
    run(&mut c, drafted(request, 10, Decision::NeedApproval, None)).unwrap();
    let edit = |text: &str| ConversationCommand::Edit {
        suggestion_id: id(10),
        reply_id: id(20),
        text: text.into(),
        send_after: t(5),
    };
    assert_eq!(run(&mut c, edit("   ")), Err(ConversationError::EmptyText));
    assert_eq!(run(&mut c, edit(&"я".repeat(MAX_TEXT + 1))), Err(ConversationError::TextTooLong));
    let events = run(&mut c, edit(" Исправленный ответ ")).unwrap();
    assert_eq!(names(&events), ["SuggestionEdited", "ReplyQueued"]);
    assert_eq!(c.replies[&id(20)].text, "Исправленный ответ");
}

#[test]
fn a_new_customer_message_supersedes_the_pending_draft_and_asks_again() {
    let mut c = started();
    let request = c.pending_request.unwrap();
    run(&mut c, drafted(request, 10, Decision::NeedApproval, None)).unwrap();
    let events =
        run(&mut c, ConversationCommand::ReceiveMessage(Box::new(inbound("m2", "VIN пришлю позже", 60)))).unwrap();
    assert_eq!(names(&events), ["MessageReceived", "SuggestionSuperseded", "SuggestionRequested"]);
    assert_eq!(
        run(&mut c, ConversationCommand::Approve { suggestion_id: id(10), reply_id: id(20), send_after: t(70) }),
        Err(ConversationError::SuggestionNotPending("superseded"))
    );
}

#[test]
fn auto_send_really_sends_when_nothing_blocks_it() {
    let mut c = started();
    let request = c.pending_request.unwrap();
    let events = run(&mut c, drafted(request, 10, Decision::AutoSend, None)).unwrap();
    assert_eq!(names(&events), ["SuggestionGenerated", "SuggestionApproved", "ReplyQueued"]);
    assert!(matches!(events[1], E::SuggestionApproved { automatic: true, .. }));
    assert!(matches!(events[2], E::ReplyQueued { origin: ReplyOrigin::Auto, .. }));

    let mut c = started();
    let request = c.pending_request.unwrap();
    let events = run(&mut c, drafted(request, 10, Decision::AutoSend, Some("SETTING_OFF"))).unwrap();
    assert_eq!(names(&events), ["SuggestionGenerated"]);
    assert_eq!(c.suggestions[&id(10)].status, SuggestionStatus::Pending);
}

#[test]
fn an_escalate_decision_escalates_the_conversation() {
    let mut c = started();
    let request = c.pending_request.unwrap();
    let events = run(&mut c, drafted(request, 10, Decision::Escalate, None)).unwrap();
    assert_eq!(names(&events), ["SuggestionGenerated", "ConversationEscalated", "StatusChanged"]);
    assert_eq!(c.status, Status::Escalated);
    assert_eq!(
        run(&mut c, ConversationCommand::Escalate { reason: "again".into(), suggestion_id: None }),
        Err(ConversationError::Already("escalated"))
    );
}

#[test]
fn the_status_machine_is_enforced() {
    let mut c = started();
    assert_eq!(
        run(&mut c, ConversationCommand::Reopen),
        Err(ConversationError::InvalidTransition { from: Status::Open, to: Status::Open })
    );
    let request = c.pending_request.unwrap();
    run(&mut c, ConversationCommand::FailSuggestion { request_id: request, reason: "AI unavailable".into() }).unwrap();
    run(&mut c, ConversationCommand::Resolve).unwrap();
    assert_eq!(c.status, Status::Resolved);
    assert_eq!(run(&mut c, ConversationCommand::Resolve), Err(ConversationError::Already("resolved")));
    assert_eq!(
        run(&mut c, ConversationCommand::Escalate { reason: "x".into(), suggestion_id: None }),
        Err(ConversationError::Resolved)
    );
    // A customer message reopens the same conversation (no second conversation for one person).
    let events = run(&mut c, ConversationCommand::ReceiveMessage(Box::new(inbound("m9", "Ещё вопрос", 100)))).unwrap();
    assert_eq!(names(&events), ["ConversationReopened", "StatusChanged", "MessageReceived", "SuggestionRequested"]);
    assert_eq!(c.status, Status::Open);
}

#[test]
fn resolving_rejects_pending_drafts() {
    let mut c = started();
    let request = c.pending_request.unwrap();
    run(&mut c, drafted(request, 10, Decision::NeedApproval, None)).unwrap();
    let events = run(&mut c, ConversationCommand::Resolve).unwrap();
    assert_eq!(names(&events), ["SuggestionRejected", "ConversationResolved", "StatusChanged"]);
}

#[test]
fn a_reply_is_sent_once() {
    let mut c = started();
    run(
        &mut c,
        ConversationCommand::Reply {
            reply_id: id(20), text: "Добрый день".into(), send_after: t(1), attachment: None
        },
    )
    .unwrap();
    assert_eq!(c.replies[&id(20)].status, ReplyStatus::Queued);
    let start = ConversationCommand::StartSend { reply_id: id(20), at: t(2) };
    run(&mut c, start.clone()).unwrap();
    assert_eq!(run(&mut c, start), Err(ConversationError::ReplyNotInState("sending")));
    let sent = ConversationCommand::RecordSent {
        reply_id: id(20),
        provider_message_id: "BAE5".into(),
        at: t(3),
        reconciled: false,
    };
    let events = run(&mut c, sent.clone()).unwrap();
    assert_eq!(names(&events), ["ReplySent", "StatusChanged"]);
    assert_eq!(c.status, Status::WaitingCustomer);
    assert_eq!(run(&mut c, sent), Err(ConversationError::ReplyNotInState("sent")));
    let delivered = ConversationCommand::RecordDelivery {
        provider_message_id: "BAE5".into(),
        status: DeliveryStatus::Delivered,
        at: t(4),
    };
    assert_eq!(names(&run(&mut c, delivered.clone()).unwrap()), ["ReplyDelivered"]);
    assert!(run(&mut c, delivered).unwrap().is_empty(), "a repeated status changes nothing");
    assert_eq!(
        run(
            &mut c,
            ConversationCommand::RecordDelivery {
                provider_message_id: "other".into(),
                status: DeliveryStatus::Read,
                at: t(5)
            }
        ),
        Err(ConversationError::ReplyNotFound)
    );
    // The customer answers: open again.
    run(&mut c, ConversationCommand::ReceiveMessage(Box::new(inbound("m2", "Спасибо", 50)))).unwrap();
    assert_eq!(c.status, Status::Open);
}

#[test]
fn transient_failures_are_retried_and_permanent_ones_are_final() {
    let mut c = started();
    run(
        &mut c,
        ConversationCommand::Reply { reply_id: id(20), text: "Ответ".into(), send_after: t(1), attachment: None },
    )
    .unwrap();
    run(&mut c, ConversationCommand::StartSend { reply_id: id(20), at: t(2) }).unwrap();
    run(&mut c, ConversationCommand::ScheduleRetry { reply_id: id(20), retry_at: t(30), reason: "503".into() })
        .unwrap();
    assert_eq!(c.replies[&id(20)].status, ReplyStatus::Queued);
    let events = run(&mut c, ConversationCommand::StartSend { reply_id: id(20), at: t(31) }).unwrap();
    assert!(matches!(events[0], E::ReplySendStarted { attempt: 2, .. }));
    run(&mut c, ConversationCommand::FailReply { reply_id: id(20), reason: "chat not found".into(), permanent: true })
        .unwrap();
    assert_eq!(
        run(&mut c, ConversationCommand::StartSend { reply_id: id(20), at: t(32) }),
        Err(ConversationError::ReplyNotInState("failed"))
    );
    run(&mut c, ConversationCommand::RetryReply { reply_id: id(20) }).unwrap();
    assert_eq!(c.replies[&id(20)].status, ReplyStatus::Queued);
}

#[test]
fn muted_conversations_record_messages_but_draft_nothing() {
    let mut c = started();
    run(&mut c, ConversationCommand::Mute { muted: true }).unwrap();
    assert!(run(&mut c, ConversationCommand::Mute { muted: true }).unwrap().is_empty());
    // The first request is still pending; answer it so a new one could be opened.
    let request = c.pending_request.unwrap();
    run(&mut c, ConversationCommand::FailSuggestion { request_id: request, reason: "x".into() }).unwrap();
    let events = run(&mut c, ConversationCommand::ReceiveMessage(Box::new(inbound("m2", "Алло", 10)))).unwrap();
    assert_eq!(names(&events), ["MessageReceived"]);
}

#[test]
fn commands_on_a_conversation_that_never_started_are_refused() {
    let c = Conversation::default();
    assert_eq!(c.decide(ConversationCommand::Resolve), Err(ConversationError::NotFound));
    assert_eq!(c.decide(ConversationCommand::MarkRead), Err(ConversationError::NotFound));
}

#[test]
fn operator_reply_on_a_resolved_conversation_reopens_it_and_rejects_drafts() {
    let mut c = started();
    let request = c.pending_request.unwrap();
    run(&mut c, drafted(request, 10, Decision::NeedApproval, None)).unwrap();
    let events = run(
        &mut c,
        ConversationCommand::Reply {
            reply_id: id(20), text: "Сам отвечу".into(), send_after: t(1), attachment: None
        },
    )
    .unwrap();
    assert_eq!(names(&events), ["SuggestionRejected", "OperatorReplied", "ReplyQueued"]);
    run(&mut c, ConversationCommand::Resolve).unwrap();
    let events = run(
        &mut c,
        ConversationCommand::Reply { reply_id: id(21), text: "Ещё".into(), send_after: t(2), attachment: None },
    )
    .unwrap();
    assert_eq!(names(&events), ["ConversationReopened", "StatusChanged", "OperatorReplied", "ReplyQueued"]);
}

#[test]
fn vehicle_ids_found_in_a_message_are_recorded() {
    let mut c = Conversation::default();
    let mut m = inbound("m1", "VIN JTNBE46K803123456", 0);
    m.vehicle_id = Some(DetectedVehicleId {
        id_type: IdType::Vin,
        value: "JTNBE46K803123456".into(),
        score: 0.95,
        reasons: vec!["vin_17".into()],
        lookup_id: None,
    });
    let events = run(&mut c, ConversationCommand::ReceiveMessage(Box::new(m))).unwrap();
    assert_eq!(names(&events), ["ConversationStarted", "MessageReceived", "VehicleIdDetected", "SuggestionRequested"]);
}

#[test]
fn state_stays_bounded_in_long_conversations() {
    let mut c = started();
    for i in 0..2000u128 {
        let reply = id(100_000 + i);
        run(
            &mut c,
            ConversationCommand::Reply { reply_id: reply, text: "ok".into(), send_after: t(1), attachment: None },
        )
        .unwrap();
        run(&mut c, ConversationCommand::StartSend { reply_id: reply, at: t(2) }).unwrap();
        run(
            &mut c,
            ConversationCommand::RecordSent {
                reply_id: reply,
                provider_message_id: format!("p{i}"),
                at: t(3),
                reconciled: false,
            },
        )
        .unwrap();
        run(&mut c, ConversationCommand::ReceiveMessage(Box::new(inbound(&format!("in{i}"), "да", 10 + i as i64))))
            .unwrap();
    }
    assert!(c.replies.len() <= KEEP_DECIDED + 2, "{}", c.replies.len());
    assert!(c.recent_provider_ids.len() <= RECENT_PROVIDER_IDS);
    assert_eq!(c.messages, 2001);
    let json = serde_json::to_string(&c).unwrap();
    assert!(json.len() < 100_000, "snapshot size {}", json.len());
}

#[test]
fn every_event_type_round_trips_through_json_with_its_name() {
    let mut c = Conversation::default();
    let mut m = inbound("m1", "VIN JTNBE46K803123456 код U660E", 0);
    m.vehicle_id = Some(DetectedVehicleId {
        id_type: IdType::Vin,
        value: "JTNBE46K803123456".into(),
        score: 0.95,
        reasons: vec![],
        lookup_id: None,
    });
    m.transmission_code = Some(DetectedCode { code: "U660E".into(), score: 0.9 });
    let mut all = run(&mut c, ConversationCommand::ReceiveMessage(Box::new(m))).unwrap();
    let request = c.pending_request.unwrap();
    all.extend(run(&mut c, drafted(request, 10, Decision::NeedApproval, None)).unwrap());
    for e in &all {
        let json = serde_json::to_value(e).unwrap();
        assert!(json.get(e.name()).is_some() || json == serde_json::json!(e.name()), "{json}");
        let back: ConversationEvent = serde_json::from_value(json).unwrap();
        assert_eq!(&back, e);
        assert!(ConversationEvent::types().contains(&e.name()));
    }
}

#[test]
fn a_stored_version_1_message_is_upcast_to_version_2() {
    let v1 = r#"{"MessageReceived":{"message_id":"01a21a96-a2c1-71ff-b897-f6ca13d9ee53","provider_message_id":"BAE5","text":"Привет","attachments":[],"sender_name":"Иван","sent_at":"2026-11-27T01:20:09Z","received_at":"2026-11-27T01:20:09.4Z"}}"#;
    assert!(serde_json::from_str::<ConversationEvent>(v1).is_err(), "v1 lacks the v2 fields");
    match ConversationEvent::decode("MessageReceived", "1", v1).unwrap() {
        E::MessageReceived { kind, reply_to, text, .. } => {
            assert_eq!((kind.as_str(), reply_to, text.as_str()), ("text", None, "Привет"));
        }
        other => panic!("{other:?}"),
    }
    let with_file = v1.replace(
        r#""attachments":[]"#,
        r#""attachments":[{"kind":"image","url":null,"file_name":null,"mime_type":null}]"#,
    );
    assert!(
        matches!(ConversationEvent::decode("MessageReceived", "1", &with_file).unwrap(), E::MessageReceived { kind, .. } if kind == MessageKind::Document)
    );
    // Current versions pass through untouched.
    let m = E::MessageReceived {
        message_id: id(1),
        provider_message_id: "x".into(),
        text: "t".into(),
        attachments: vec![],
        sender_name: None,
        sent_at: t(0),
        received_at: t(0),
        kind: MessageKind::Contact,
        reply_to: Some("y".into()),
    };
    let json = serde_json::to_string(&m).unwrap();
    assert_eq!(
        ConversationEvent::decode("MessageReceived", &cqrs_es::DomainEvent::event_version(&m), &json).unwrap(),
        m
    );
}

#[test]
fn a_stored_version_1_delivery_status_is_upcast_to_its_enum() {
    let v1 = |status: &str| {
        format!(
            r#"{{"ReplyDelivered":{{"reply_id":"01a21a96-a2c1-71ff-b897-f6ca13d9ee53","provider_message_id":"BAE5","status":"{status}","at":"2026-11-27T01:20:09Z"}}}}"#
        )
    };
    let status = |text: &str| match ConversationEvent::decode("ReplyDelivered", "1", &v1(text)).unwrap() {
        E::ReplyDelivered { status, .. } => status,
        other => panic!("{other:?}"),
    };
    assert_eq!(status("delivered"), DeliveryStatus::Delivered);
    assert_eq!(status("read"), DeliveryStatus::Read);
    assert_eq!(
        status("failed: the recipient has no account on this messenger"),
        DeliveryStatus::Failed { reason: "the recipient has no account on this messenger".into() }
    );
    // Version 2 stores the enum and reads back unchanged.
    let e = E::ReplyDelivered {
        reply_id: id(1),
        provider_message_id: "p".into(),
        status: DeliveryStatus::Failed { reason: "blocked".into() },
        at: t(0),
    };
    let json = serde_json::to_string(&e).unwrap();
    assert!(json.contains(r#""status":{"failed":{"reason":"blocked"}}"#), "{json}");
    assert_eq!(ConversationEvent::decode("ReplyDelivered", "2", &json).unwrap(), e);
}

// ---------------------------------------------------------------------------------------------
// Vehicle lookups

const VIN: &str = "JTNBK40K203012345";

fn with_vin(provider_id: &str, at: i64) -> Inbound {
    let mut m = inbound(provider_id, &format!("VIN {VIN}"), at);
    m.vehicle_id = Some(DetectedVehicleId {
        id_type: IdType::Vin,
        value: VIN.into(),
        score: 0.95,
        reasons: vec!["checksum_valid".into()],
        lookup_id: Some(id(700)),
    });
    m
}

fn data(status: crate::vehicle_lookup::VehicleDataStatus) -> crate::vehicle_lookup::VehicleData {
    use crate::vehicle_lookup::*;
    VehicleData {
        id_type: IdType::Vin,
        value: VIN.into(),
        status,
        vehicle: VehicleMeta { make: Some("TOYOTA".into()), ..Default::default() },
        gearbox: GearboxInfo { model: Some("U241E".into()), oem: Some("30500-33570".into()), ..Default::default() },
        source: Some("podzamenu".into()),
        confidence: 0.9,
        decoder: None,
        confirmed: None,
        note: None,
    }
}

fn report(revision: u32, outcome: LookupReportOutcome, suggestion: Option<&str>) -> ConversationCommand {
    ConversationCommand::RecordVehicleLookup(Box::new(LookupReport {
        lookup_id: id(700),
        revision,
        outcome,
        suggestion: suggestion.map(|text| TemplateSuggestion {
            suggestion_id: id(800 + u128::from(revision)),
            template: "gearboxLookupFound".into(),
            text: text.into(),
            intent: "other".into(),
            confidence: 0.9,
        }),
    }))
}

#[test]
fn a_vin_in_a_message_asks_for_one_lookup_while_it_is_active() {
    let mut c = started();
    let events = run(&mut c, ConversationCommand::ReceiveMessage(Box::new(with_vin("m2", 1)))).unwrap();
    assert_eq!(names(&events), ["MessageReceived", "VehicleIdDetected", "VehicleLookupRequested"]);
    match &events[2] {
        E::VehicleLookupRequested { lookup_id, request_id, message_id, value, source, .. } => {
            assert_eq!((*lookup_id, value.as_str()), (id(700), VIN));
            assert_eq!(Some(*request_id), *message_id, "the message is the request");
            assert_eq!(*source, crate::vehicle_lookup::LookupSource::Detected);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.vehicle_lookups[&id(700)].progress, LookupProgress::Active);
    // The customer repeats the VIN: detected again, no second lookup.
    let again = run(&mut c, ConversationCommand::ReceiveMessage(Box::new(with_vin("m3", 2)))).unwrap();
    assert!(names(&again).contains(&"VehicleIdDetected"));
    assert!(!names(&again).contains(&"VehicleLookupRequested"));
    // An operator asking for the same identifier changes nothing either.
    let op = ConversationCommand::RequestVehicleLookup {
        lookup_id: id(700),
        request_id: id(701),
        id: crate::vehicle_lookup::VehicleId::parse(crate::vehicle_lookup::IdType::Vin, VIN).unwrap(),
        requested_by: "user:1".into(),
    };
    assert!(run(&mut c, op.clone()).unwrap().is_empty());

    // Not found: the next mention (or the operator) asks again.
    let nf =
        report(1, LookupReportOutcome::Data(Box::new(data(crate::vehicle_lookup::VehicleDataStatus::NotFound))), None);
    assert_eq!(names(&run(&mut c, nf).unwrap()), ["VehicleDataAttached"]);
    assert_eq!(c.vehicle_lookups[&id(700)].progress, LookupProgress::NotFound);
    let e = run(&mut c, op).unwrap();
    assert!(matches!(
        &e[0],
        E::VehicleLookupRequested { source: crate::vehicle_lookup::LookupSource::Operator, message_id: None, .. }
    ));
}

#[test]
fn a_lookup_outcome_attaches_vehicle_data_and_a_template_suggestion_once() {
    let mut c = started();
    let drafting = c.pending_request.unwrap();
    run(&mut c, ConversationCommand::ReceiveMessage(Box::new(with_vin("m2", 1)))).unwrap();
    let found = || LookupReportOutcome::Data(Box::new(data(crate::vehicle_lookup::VehicleDataStatus::Found)));
    let events = run(&mut c, report(1, found(), Some("По вашему VIN-коду определяется модель КПП: U241E"))).unwrap();
    assert_eq!(names(&events), ["VehicleDataAttached", "SuggestionGenerated"]);
    match &events[1] {
        E::SuggestionGenerated { request_id, decision, source, autosend_block_reason, .. } => {
            assert_eq!(*request_id, id(700));
            assert_eq!(*decision, Decision::NeedApproval);
            assert_eq!(source, "template");
            assert_eq!(*autosend_block_reason, None);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.suggestions[&id(801)].status, SuggestionStatus::Pending);
    assert_eq!(c.pending_request, Some(drafting), "the drafting request is still open");
    assert_eq!(c.vehicle_lookups[&id(700)].progress, LookupProgress::Answered);
    // The same outcome delivered twice is applied once.
    assert!(
        run(&mut c, report(1, found(), Some("По вашему VIN-коду определяется модель КПП: U241E"))).unwrap().is_empty()
    );
    // An answered lookup is not asked again when the VIN comes back.
    let again = run(&mut c, ConversationCommand::ReceiveMessage(Box::new(with_vin("m3", 2)))).unwrap();
    assert!(!names(&again).contains(&"VehicleLookupRequested"));
    // A failure of a later round is recorded; a muted conversation gets no suggestion.
    run(&mut c, ConversationCommand::Mute { muted: true }).unwrap();
    let failed = LookupReportOutcome::Failed {
        id_type: crate::vehicle_lookup::IdType::Vin,
        value: VIN.into(),
        reason: "catalogues unavailable".into(),
    };
    assert_eq!(names(&run(&mut c, report(2, failed, Some("Текст"))).unwrap()), ["VehicleLookupFailed"]);
    assert_eq!(c.vehicle_lookups[&id(700)].progress, LookupProgress::Failed);
}

#[test]
fn an_identical_pending_suggestion_is_not_repeated() {
    let mut c = started();
    run(&mut c, ConversationCommand::ReceiveMessage(Box::new(with_vin("m2", 1)))).unwrap();
    let found = || LookupReportOutcome::Data(Box::new(data(crate::vehicle_lookup::VehicleDataStatus::Found)));
    run(&mut c, report(1, found(), Some("Одинаковый текст"))).unwrap();
    assert_eq!(names(&run(&mut c, report(2, found(), Some("Одинаковый текст"))).unwrap()), ["VehicleDataAttached"]);
}

#[test]
fn provider_keys_are_stable_fnv1a() {
    // Snapshots hold these keys: the function must never change.
    assert_eq!(provider_key(""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(provider_key("a"), 0xaf63_dc4c_8601_ec8c);
    assert_ne!(provider_key("BAE5F4886AB5D2C4"), provider_key("BAE5F4886AB5D2C5"));
}

#[test]
fn operator_text_with_control_characters_is_refused() {
    let mut c = started();
    let reply = |text: &str| ConversationCommand::Reply {
        reply_id: id(30),
        text: text.into(),
        send_after: t(5),
        attachment: None,
    };
    for bad in ["x\u{0}", "a\u{1b}[31mb", "\u{7}ring", "tab\u{b}vertical"] {
        assert!(
            matches!(run(&mut c, reply(bad)), Err(ConversationError::ControlCharacter)),
            "{bad:?} should be refused"
        );
    }
    // Line breaks and tabs are text; a Windows line end becomes a plain one.
    let events = run(&mut c, reply("строка 1\r\nстрока 2\tконец")).unwrap();
    assert!(events.iter().any(|e| matches!(e, E::OperatorReplied { text, .. } if text == "строка 1\nстрока 2\tконец")));
}

#[test]
fn edited_suggestions_and_reasons_with_control_characters_are_refused() {
    let mut c = started();
    let request = c.pending_request.unwrap();
    run(&mut c, drafted(request, 10, Decision::NeedApproval, None)).unwrap();
    let edit =
        ConversationCommand::Edit { suggestion_id: id(10), reply_id: id(20), text: "x\u{0}".into(), send_after: t(5) };
    assert_eq!(run(&mut c, edit), Err(ConversationError::ControlCharacter));
    let reject = ConversationCommand::Reject { suggestion_id: id(10), reason: Some("bad\u{0}".into()) };
    assert_eq!(run(&mut c, reject), Err(ConversationError::ControlCharacter));
    let escalate = ConversationCommand::Escalate { reason: "why\u{0}".into(), suggestion_id: None };
    assert_eq!(run(&mut c, escalate), Err(ConversationError::ControlCharacter));
    // Nothing changed: the suggestion is still pending.
    assert_eq!(c.suggestions[&id(10)].status, SuggestionStatus::Pending);
}

#[test]
fn customer_text_loses_its_control_characters_but_is_kept() {
    let mut c = Conversation::default();
    let mut m = inbound("m1", "VIN\u{0} please\u{1b}\r\nsecond\tline\u{7f}", 0);
    m.customer_name = Some("Ив\u{0}ан".into());
    let events = run(&mut c, ConversationCommand::ReceiveMessage(Box::new(m))).unwrap();
    let text = events.iter().find_map(|e| match e {
        E::MessageReceived { text, sender_name, .. } => Some((text.clone(), sender_name.clone())),
        _ => None,
    });
    assert_eq!(text, Some(("VIN please\nsecond\tline".to_string(), Some("Иван".to_string()))));
    let started = events.iter().find_map(|e| match e {
        E::ConversationStarted { customer_name, .. } => Some(customer_name.clone()),
        _ => None,
    });
    assert_eq!(started, Some(Some("Иван".to_string())));
    // A message of nothing but control characters is still a message (maybe with attachments).
    let events = run(&mut c, ConversationCommand::ReceiveMessage(Box::new(inbound("m2", "\u{0}\u{0}", 1)))).unwrap();
    assert!(events.iter().any(|e| matches!(e, E::MessageReceived { text, .. } if text.is_empty())));
}
