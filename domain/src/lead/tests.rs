//! Given / when / then tests of the `Lead` aggregate (no IO).

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc, Weekday};
use uuid::Uuid;

use super::*;
use crate::codec::EventSchema;
use crate::conversation::ChannelKind;
use crate::tenant::WorkingHours;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// Monday 2026-03-02 10:00 Moscow (07:00 UTC) plus `s` seconds.
fn t(s: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 7, 0, 0).unwrap() + Duration::seconds(s)
}

fn hours() -> WorkingHours {
    let hm = |h| NaiveTime::from_hms_opt(h, 0, 0).unwrap();
    WorkingHours::new(
        chrono_tz::Europe::Moscow,
        hm(9),
        hm(18),
        &[Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri],
    )
}

fn lead_fields(phone: bool) -> LeadFields {
    LeadFields {
        form_name: "Подбор КПП".into(),
        client_name: Some("Иван".into()),
        phone: phone.then(|| Phone::parse("+7 999 123-45-67").unwrap()),
        car: Some("Toyota Camry".into()),
        gearbox_type: Some("Автомат".into()),
        ..Default::default()
    }
}

fn submission(n: u128, fields: LeadFields, at: DateTime<Utc>) -> LeadCommand {
    LeadCommand::Receive(Box::new(NewSubmission {
        submission_id: id(100 + n),
        tenant_id: id(1),
        form_id: id(2),
        form_kind: LeadFormKind::Marquiz,
        format: SubmissionFormat::Marquiz,
        fingerprint: Fingerprint::default(),
        kind: LeadKind::Gearbox,
        text: "Здравствуйте! Получили вашу заявку на подбор КПП.".into(),
        fields,
        hours: hours(),
        received_at: at,
    }))
}

fn run(l: &mut Lead, c: LeadCommand) -> Result<Vec<LeadEvent>, LeadError> {
    let events = l.decide(c)?;
    for e in events.clone() {
        l.evolve(e);
    }
    Ok(events)
}

fn given(commands: Vec<LeadCommand>) -> Lead {
    let mut l = Lead::default();
    for c in commands {
        run(&mut l, c).unwrap();
    }
    l
}

fn names(events: &[LeadEvent]) -> Vec<&'static str> {
    events.iter().map(LeadEvent::name).collect()
}

fn green_api(account: u128) -> PlannedAttempt {
    PlannedAttempt {
        channel: ChannelKind::GreenApi,
        account_id: id(account),
        recipient: Recipient::GreenApiChat { chat_id: "79991234567@c.us".into() },
    }
}

fn telegram() -> PlannedAttempt {
    PlannedAttempt {
        channel: ChannelKind::Telegram,
        account_id: id(21),
        recipient: Recipient::TelegramPhone { phone: "79991234567".into() },
    }
}

fn attempt(round: u32, a: PlannedAttempt, reply: u128, at: i64) -> LeadCommand {
    LeadCommand::RecordAttempt { round, attempt: a, reply_id: id(reply), conversation_id: Some(id(50)), at: t(at) }
}

fn contacted(round: u32, reply: u128, at: i64) -> LeadCommand {
    LeadCommand::RecordContacted {
        round,
        reply_id: id(reply),
        conversation_id: id(50),
        provider_message_id: Some("BAE5F4C1D2".into()),
        no_reply_after: Some(Duration::minutes(15)),
        at: t(at),
    }
}

/// A lead contacted through GREEN-API at t(20), with a no-reply check due at t(20) + 15 min.
fn contacted_lead() -> Lead {
    given(vec![
        submission(1, lead_fields(true), t(0)),
        LeadCommand::StartOutreach { round: 1, at: t(1) },
        attempt(1, green_api(11), 900, 2),
        contacted(1, 900, 20),
    ])
}

#[test]
fn a_submission_inside_working_hours_is_due_at_once() {
    let mut l = Lead::default();
    let events = run(&mut l, submission(1, lead_fields(true), t(0))).unwrap();
    assert_eq!(names(&events), ["LeadReceived", "OutreachScheduled"]);
    let LeadEvent::OutreachScheduled { round, due_at, outside_hours, note, requested_by, .. } = &events[1] else {
        panic!()
    };
    assert_eq!((*round, *due_at, *outside_hours, note, requested_by.as_str()), (1, t(0), false, &None, "form"));
    assert_eq!(l.status, Some(LeadStatus::Received));
    assert_eq!(l.round, 1);
    assert_eq!(l.submissions, 1);
    assert_eq!(l.fields.car.as_deref(), Some("Toyota Camry"));
}

#[test]
fn a_submission_outside_working_hours_waits_for_the_opening_with_a_note() {
    // Friday 2026-03-06 20:00 Moscow → Monday 09:00 Moscow (06:00 UTC).
    let friday_evening = Utc.with_ymd_and_hms(2026, 3, 6, 17, 0, 0).unwrap();
    let monday_opening = Utc.with_ymd_and_hms(2026, 3, 9, 6, 0, 0).unwrap();
    let mut l = Lead::default();
    let events = run(&mut l, submission(1, lead_fields(true), friday_evening)).unwrap();
    let LeadEvent::OutreachScheduled { due_at, outside_hours, note, .. } = &events[1] else { panic!() };
    assert_eq!((*due_at, *outside_hours), (monday_opening, true));
    let note = note.as_deref().unwrap();
    assert!(note.contains("outside working hours") && note.contains("09.03.2026 09:00 (Europe/Moscow)"), "{note}");
    assert_eq!(l.status, Some(LeadStatus::Scheduled));

    // The worker may not start before the opening (an injected clock decides), and may at it.
    let early = LeadCommand::StartOutreach { round: 1, at: monday_opening - Duration::seconds(1) };
    assert_eq!(l.decide(early), Err(LeadError::NotDue(monday_opening)));
    let events = run(&mut l, LeadCommand::StartOutreach { round: 1, at: monday_opening }).unwrap();
    assert_eq!(names(&events), ["OutreachStarted"]);
    assert_eq!(l.status, Some(LeadStatus::Contacting));
}

#[test]
fn a_lead_without_any_contact_is_failed_not_dropped() {
    let mut l = Lead::default();
    let events = run(&mut l, submission(1, lead_fields(false), t(0))).unwrap();
    assert_eq!(names(&events), ["LeadReceived", "LeadFailed"]);
    let LeadEvent::LeadFailed { round, reason, text, attempts, .. } = &events[1] else { panic!() };
    assert_eq!((*round, *reason, *attempts), (0, FailureReason::NoContactInfo, 0));
    assert_eq!(text, "Здравствуйте! Получили вашу заявку на подбор КПП.", "the text that would have been sent");
    assert_eq!((l.status, l.failure), (Some(LeadStatus::Failed), Some(FailureReason::NoContactInfo)));
    let retry = LeadCommand::RetryOutreach { by: "user:1".into(), at: t(60) };
    assert_eq!(l.decide(retry), Err(LeadError::NoContactInfo));
}

#[test]
fn repeated_submissions_are_recorded_and_change_nothing_else() {
    let mut l = given(vec![submission(1, lead_fields(true), t(0))]);
    let before = l.clone();
    for n in 2..=10 {
        let events = run(&mut l, submission(n, lead_fields(true), t(n as i64))).unwrap();
        assert_eq!(names(&events), ["SubmissionRepeated"]);
    }
    assert_eq!(l.submissions, 10);
    assert_eq!((l.status, l.round, l.due_at, &l.fields), (before.status, before.round, before.due_at, &before.fields));
    // The same delivery recorded twice counts once.
    assert_eq!(run(&mut l, submission(5, lead_fields(true), t(30))).unwrap(), vec![]);
    // Another tenant never reaches this lead.
    let LeadCommand::Receive(mut other) = submission(11, lead_fields(true), t(40)) else { unreachable!() };
    other.tenant_id = id(9);
    assert_eq!(l.decide(LeadCommand::Receive(other)), Err(LeadError::WrongTenant));
}

#[test]
fn the_first_working_channel_contacts_the_lead_and_schedules_the_no_reply_check() {
    let mut l = given(vec![submission(1, lead_fields(true), t(0)), LeadCommand::StartOutreach { round: 1, at: t(1) }]);
    assert_eq!(run(&mut l, LeadCommand::StartOutreach { round: 1, at: t(2) }).unwrap(), vec![], "claimed already");
    let events = run(&mut l, attempt(1, green_api(11), 900, 2)).unwrap();
    let LeadEvent::OutreachAttempted { attempt: n, channel, reply_id, .. } = &events[0] else { panic!() };
    assert_eq!((*n, *channel, *reply_id), (1, ChannelKind::GreenApi, id(900)));
    assert_eq!(run(&mut l, attempt(1, green_api(11), 900, 3)).unwrap(), vec![], "the same message is one attempt");

    let events = run(
        &mut l,
        LeadCommand::RecordAttemptFailed { round: 1, reply_id: id(900), error: "noAccount".into(), at: t(6) },
    )
    .unwrap();
    assert_eq!(names(&events), ["OutreachAttemptFailed"]);
    run(&mut l, attempt(1, telegram(), 901, 7)).unwrap();
    let events = run(&mut l, contacted(1, 901, 9)).unwrap();
    assert_eq!(names(&events), ["LeadContacted", "NoReplyCheckScheduled"]);
    let LeadEvent::LeadContacted { attempt, channel, account_id, conversation_id, provider_message_id, .. } =
        &events[0]
    else {
        panic!()
    };
    assert_eq!((*attempt, *channel, *account_id, *conversation_id), (2, ChannelKind::Telegram, id(21), id(50)));
    assert_eq!(provider_message_id.as_deref(), Some("BAE5F4C1D2"));
    let LeadEvent::NoReplyCheckScheduled { check, due_at, after_secs, channel, .. } = &events[1] else { panic!() };
    assert_eq!((*check, *due_at, *after_secs, *channel), (1, t(9) + Duration::minutes(15), 900, ChannelKind::Telegram));
    assert_eq!(l.status, Some(LeadStatus::Contacted));
    assert_eq!(l.conversation_id, Some(id(50)));
    assert_eq!(run(&mut l, contacted(1, 901, 10)).unwrap(), vec![], "reported twice");
}

#[test]
fn attempts_are_recorded_only_while_the_round_runs() {
    let l = given(vec![submission(1, lead_fields(true), t(0))]);
    assert_eq!(l.decide(attempt(1, green_api(11), 900, 2)), Err(LeadError::NotRunnable("received")));
    let l = given(vec![submission(1, lead_fields(true), t(0)), LeadCommand::StartOutreach { round: 1, at: t(1) }]);
    assert_eq!(l.decide(attempt(2, green_api(11), 900, 2)), Err(LeadError::StaleRound(2)));
    assert_eq!(l.decide(contacted(1, 999, 3)), Err(LeadError::UnknownAttempt));
    let failed = LeadCommand::RecordAttemptFailed { round: 1, reply_id: id(999), error: "x".into(), at: t(3) };
    assert_eq!(l.decide(failed), Err(LeadError::UnknownAttempt));
    assert_eq!(Lead::default().decide(LeadCommand::StartOutreach { round: 1, at: t(0) }), Err(LeadError::NotFound));
}

#[test]
fn every_attempt_failing_fails_the_lead_with_the_plans_reason() {
    let mut l = given(vec![
        submission(1, lead_fields(true), t(0)),
        LeadCommand::StartOutreach { round: 1, at: t(1) },
        attempt(1, green_api(11), 900, 2),
        LeadCommand::RecordAttemptFailed { round: 1, reply_id: id(900), error: "noAccount".into(), at: t(6) },
    ]);
    let events =
        run(&mut l, LeadCommand::RecordFailed { round: 1, reason: FailureReason::MaxSendFailed, at: t(7) }).unwrap();
    let LeadEvent::LeadFailed { reason, attempts, text, .. } = &events[0] else { panic!() };
    assert_eq!((*reason, *attempts), (FailureReason::MaxSendFailed, 1));
    assert!(text.starts_with("Здравствуйте!"));
    assert_eq!(l.status, Some(LeadStatus::Failed));
    assert!(l.pending_check.is_none(), "a failed lead has no no-reply check");
    let again = LeadCommand::RecordFailed { round: 1, reason: FailureReason::MaxSendFailed, at: t(8) };
    assert_eq!(run(&mut l, again).unwrap(), vec![]);
}

#[test]
fn the_customers_reply_cancels_the_no_reply_check() {
    let mut l = contacted_lead();
    let events =
        run(&mut l, LeadCommand::RecordReply { conversation_id: id(50), message_id: id(60), at: t(300) }).unwrap();
    assert_eq!(names(&events), ["NoReplyCheckCancelled", "CustomerReplied"]);
    assert_eq!(l.status, Some(LeadStatus::Replied));
    assert_eq!(l.replied_at, Some(t(300)));
    // The check's job arrives anyway (it was in flight): nothing happens.
    assert_eq!(run(&mut l, LeadCommand::FireNoReplyCheck { check: 1, at: t(20 + 900) }).unwrap(), vec![]);
    assert_eq!(l.status, Some(LeadStatus::Replied));
    // Further messages of the customer change nothing.
    assert_eq!(
        run(&mut l, LeadCommand::RecordReply { conversation_id: id(50), message_id: id(61), at: t(400) }).unwrap(),
        vec![]
    );
}

#[test]
fn no_reply_in_time_tells_the_team_once() {
    let mut l = contacted_lead();
    let due = t(20) + Duration::minutes(15);
    let early = LeadCommand::FireNoReplyCheck { check: 1, at: due - Duration::seconds(1) };
    assert_eq!(l.decide(early), Err(LeadError::NotDue(due)), "not before its time");
    let events = run(&mut l, LeadCommand::FireNoReplyCheck { check: 1, at: due }).unwrap();
    let LeadEvent::NoReplyDetected { check, conversation_id, channel, after_secs, .. } = &events[0] else { panic!() };
    assert_eq!((*check, *conversation_id, *channel, *after_secs), (1, id(50), ChannelKind::GreenApi, 900));
    assert_eq!(l.status, Some(LeadStatus::NoReply));
    assert_eq!(run(&mut l, LeadCommand::FireNoReplyCheck { check: 1, at: due }).unwrap(), vec![], "fired once");
    // A late answer still counts.
    let events =
        run(&mut l, LeadCommand::RecordReply { conversation_id: id(50), message_id: id(60), at: due }).unwrap();
    assert_eq!(names(&events), ["CustomerReplied"]);
    assert_eq!(l.status, Some(LeadStatus::Replied));
}

#[test]
fn a_tenant_without_the_check_schedules_none() {
    let mut l = given(vec![
        submission(1, lead_fields(true), t(0)),
        LeadCommand::StartOutreach { round: 1, at: t(1) },
        attempt(1, green_api(11), 900, 2),
    ]);
    let command = LeadCommand::RecordContacted {
        round: 1,
        reply_id: id(900),
        conversation_id: id(50),
        provider_message_id: None,
        no_reply_after: None,
        at: t(3),
    };
    assert_eq!(names(&run(&mut l, command).unwrap()), ["LeadContacted"]);
    assert!(l.pending_check.is_none());
}

#[test]
fn a_message_reported_undelivered_later_resumes_the_round() {
    let mut l = contacted_lead();
    let events =
        run(&mut l, LeadCommand::RecordDeliveryFailed { reply_id: id(900), error: "noAccount".into(), at: t(25) })
            .unwrap();
    assert_eq!(names(&events), ["NoReplyCheckCancelled", "ContactDeliveryFailed"]);
    assert_eq!(l.status, Some(LeadStatus::Contacting));
    assert_eq!(l.attempt(id(900)).unwrap().error.as_deref(), Some("noAccount"));
    // The next attempt contacts the customer; its check is a new one (re-schedulable).
    run(&mut l, attempt(1, telegram(), 901, 26)).unwrap();
    let events = run(&mut l, contacted(1, 901, 30)).unwrap();
    let LeadEvent::NoReplyCheckScheduled { check, .. } = &events[1] else { panic!() };
    assert_eq!(*check, 2);
    // A failure report for an old or unknown message does nothing.
    let stale = LeadCommand::RecordDeliveryFailed { reply_id: id(900), error: "noAccount".into(), at: t(31) };
    assert_eq!(run(&mut l, stale).unwrap(), vec![]);
    // Reported while the round still runs: the attempt fails.
    let mut l = given(vec![
        submission(1, lead_fields(true), t(0)),
        LeadCommand::StartOutreach { round: 1, at: t(1) },
        attempt(1, green_api(11), 900, 2),
    ]);
    let early = LeadCommand::RecordDeliveryFailed { reply_id: id(900), error: "noAccount".into(), at: t(3) };
    assert_eq!(names(&run(&mut l, early).unwrap()), ["OutreachAttemptFailed"]);
    assert_eq!(l.decide(contacted(1, 900, 4)), Err(LeadError::AttemptFailed));
}

#[test]
fn operators_qualify_win_or_lose_and_pending_work_stops() {
    let mut l = contacted_lead();
    let events = run(&mut l, LeadCommand::Qualify { by: "user:1".into(), at: t(60) }).unwrap();
    assert_eq!(names(&events), ["NoReplyCheckCancelled", "LeadQualified"]);
    assert_eq!(l.status, Some(LeadStatus::Qualified));
    assert_eq!(run(&mut l, LeadCommand::Qualify { by: "user:1".into(), at: t(61) }).unwrap(), vec![]);
    let events =
        run(&mut l, LeadCommand::Win { by: "user:1".into(), note: Some(" оплачено ".into()), at: t(90) }).unwrap();
    let LeadEvent::LeadWon { note, .. } = &events[0] else { panic!() };
    assert_eq!(note.as_deref(), Some("оплачено"));
    assert_eq!(l.status, Some(LeadStatus::Won));
    let lose = LeadCommand::Lose { by: "user:1".into(), reason: "дорого".into(), at: t(91) };
    assert_eq!(l.decide(lose), Err(LeadError::Closed("won")));
    assert_eq!(l.decide(LeadCommand::Qualify { by: "user:1".into(), at: t(92) }), Err(LeadError::Closed("won")));

    // Lost while the first message still waits for the opening: the round is cancelled.
    let friday_evening = Utc.with_ymd_and_hms(2026, 3, 6, 17, 0, 0).unwrap();
    let mut l = given(vec![submission(1, lead_fields(true), friday_evening)]);
    let blank = LeadCommand::Lose { by: "user:1".into(), reason: "  ".into(), at: friday_evening };
    assert_eq!(l.decide(blank), Err(LeadError::EmptyReason));
    let lose = LeadCommand::Lose {
        by: "user:1".into(), reason: "купил в другом месте".into(), at: friday_evening
    };
    let events = run(&mut l, lose.clone()).unwrap();
    assert_eq!(names(&events), ["OutreachCancelled", "LeadLost"]);
    assert_eq!((l.status, l.lost_reason.as_deref()), (Some(LeadStatus::Lost), Some("купил в другом месте")));
    assert_eq!(run(&mut l, lose).unwrap(), vec![], "the same decision twice");
    let monday = Utc.with_ymd_and_hms(2026, 3, 9, 6, 0, 0).unwrap();
    assert_eq!(l.decide(LeadCommand::StartOutreach { round: 1, at: monday }), Err(LeadError::NotRunnable("lost")));
}

#[test]
fn leads_are_assigned_and_given_back() {
    let mut l = given(vec![submission(1, lead_fields(true), t(0))]);
    let assign =
        |op: Option<&str>| LeadCommand::Assign { operator: op.map(String::from), by: "user:1".into(), at: t(5) };
    assert_eq!(names(&run(&mut l, assign(Some("user:7"))).unwrap()), ["LeadAssigned"]);
    assert_eq!(l.assigned_to.as_deref(), Some("user:7"));
    assert_eq!(run(&mut l, assign(Some(" user:7 "))).unwrap(), vec![], "already theirs");
    assert_eq!(names(&run(&mut l, assign(Some(""))).unwrap()), ["LeadAssigned"]);
    assert_eq!(l.assigned_to, None);
    assert_eq!(l.status, Some(LeadStatus::Received), "assignment is no status");
}

#[test]
fn a_retry_starts_a_new_round_after_a_failure_or_no_reply() {
    let mut l = given(vec![
        submission(1, lead_fields(true), t(0)),
        LeadCommand::StartOutreach { round: 1, at: t(1) },
        LeadCommand::RecordFailed { round: 1, reason: FailureReason::AllChannelsFailed, at: t(2) },
    ]);
    let events = run(&mut l, LeadCommand::RetryOutreach { by: "user:1".into(), at: t(100) }).unwrap();
    let LeadEvent::OutreachScheduled { round, due_at, outside_hours, requested_by, .. } = &events[0] else { panic!() };
    assert_eq!((*round, *due_at, *outside_hours, requested_by.as_str()), (2, t(100), false, "user:1"));
    assert_eq!((l.status, l.round, l.failure), (Some(LeadStatus::Received), 2, None));
    assert_eq!(l.decide(LeadCommand::StartOutreach { round: 1, at: t(101) }), Err(LeadError::StaleRound(1)));
    run(&mut l, LeadCommand::StartOutreach { round: 2, at: t(101) }).unwrap();
    assert!(l.attempts.is_empty(), "a new round has its own attempts");

    let mut l = contacted_lead();
    let due = t(20) + Duration::minutes(15);
    run(&mut l, LeadCommand::FireNoReplyCheck { check: 1, at: due }).unwrap();
    let events = run(&mut l, LeadCommand::RetryOutreach { by: "user:1".into(), at: due }).unwrap();
    assert_eq!(names(&events), ["OutreachScheduled"]);
    assert_eq!((l.round, l.contact.clone()), (2, None));

    let l = contacted_lead();
    let retry = LeadCommand::RetryOutreach { by: "user:1".into(), at: t(30) };
    assert_eq!(l.decide(retry), Err(LeadError::CannotRetry("contacted")));
}

#[test]
fn events_have_stable_names_versions_and_wire_shapes() {
    let samples = LeadEvent::samples();
    assert_eq!(samples.iter().map(|e| e.name()).collect::<Vec<_>>(), LeadEvent::types());
    for e in &samples {
        assert_eq!(cqrs_es::DomainEvent::event_type(e), e.name());
        assert_eq!(cqrs_es::DomainEvent::event_version(e), "1");
        let json = serde_json::to_value(e).unwrap();
        assert!(json.get(e.name()).is_some(), "externally tagged by its name: {json}");
        assert_eq!(&serde_json::from_value::<LeadEvent>(json).unwrap(), e);
        assert!(!e.meaning().is_empty());
    }
    let e = LeadEvent::LeadFailed {
        round: 1,
        reason: FailureReason::NoContactInfo,
        text: String::new(),
        attempts: 0,
        failed_at: t(0),
    };
    assert_eq!(serde_json::to_value(&e).unwrap()["LeadFailed"]["reason"], "no_contact_info");
    for s in LeadStatus::ALL {
        assert_eq!(LeadStatus::parse(s.as_str()), Some(s));
        assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.as_str()));
    }
    assert_eq!(serde_json::to_value(LeadStatus::NoReply).unwrap(), "no_reply");
    for k in LeadKind::ALL {
        assert_eq!(LeadKind::parse(k.as_str()), Some(k));
    }
}

#[test]
fn a_stored_lead_loads_by_replaying_its_events() {
    let mut live = Lead::default();
    let mut log = Vec::new();
    for c in [
        submission(1, lead_fields(true), t(0)),
        submission(2, lead_fields(true), t(1)),
        LeadCommand::StartOutreach { round: 1, at: t(2) },
        attempt(1, green_api(11), 900, 3),
        contacted(1, 900, 4),
        LeadCommand::RecordReply { conversation_id: id(50), message_id: id(60), at: t(60) },
        LeadCommand::Assign { operator: Some("user:7".into()), by: "user:1".into(), at: t(61) },
    ] {
        log.extend(run(&mut live, c).unwrap());
    }
    let stored: Vec<String> = log.iter().map(|e| serde_json::to_string(e).unwrap()).collect();
    let mut loaded = Lead::default();
    for s in stored {
        loaded.evolve(serde_json::from_str(&s).unwrap());
    }
    assert_eq!(loaded, live);
    assert_eq!(loaded.status, Some(LeadStatus::Replied));
}
