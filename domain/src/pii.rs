//! Customer data in events: which string fields of each event type hold it.
//!
//! Every string field of every event type is declared once, next to the aggregate's events, as
//! either customer data (`pii`: names, phone numbers, chat ids, message texts, file names and
//! links, form answers) or not (`safe`: ids, enum names, system texts). The event store encrypts
//! the `pii` fields with the customer's own data key; once that key is destroyed they read as
//! [`ERASED`]. A test walks samples of every event type (the catalog's, and richer ones with
//! every optional field set) and fails on a string field that is declared neither way, or both.
//! `docs/privacy-fields.md` lists the customer-data fields ([`markdown`]).
//!
//! A field is named by its path inside the event's fields: names joined by `/`, with `*` for any
//! element of a list or any key of a map (`attachments/*/file_name`, `answers/*/a`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::codec::EventSchema;

/// What a customer-data field reads as once its customer is erased.
pub const ERASED: &str = "[erased]";

/// Why a customer's data was erased.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErasureCause {
    /// Someone asked for it (the customer, through the shop).
    Request,
    /// The tenant's retention: the customer was inactive longer than it keeps data.
    Inactive,
}

/// The string fields of one event type.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    /// The event type (its serde variant name).
    pub event: &'static str,
    /// Paths of the fields holding customer data.
    pub pii: &'static [&'static str],
    /// Paths of the string fields that hold none.
    pub safe: &'static [&'static str],
}

/// The customer-data paths of `event_type` in `fields` (none for an undeclared type).
pub fn pii_paths(fields: &'static [Fields], event_type: &str) -> &'static [&'static str] {
    fields.iter().find(|f| f.event == event_type).map_or(&[], |f| f.pii)
}

/// The fields object of a serialized event (`{"Variant": {…}}`), or `None` for a unit variant.
pub fn body_mut(event: &mut Value) -> Option<&mut Value> {
    match event {
        Value::Object(o) if o.len() == 1 => o.values_mut().next(),
        _ => None,
    }
}

/// Calls `f` with the path and every string found at `pattern` in `body` (nulls and absent fields
/// are skipped). The path is the string's own: list indices written as `*`, map keys as they are,
/// as [`string_paths`] writes it.
pub fn for_each_at(body: &mut Value, pattern: &str, f: &mut impl FnMut(&str, &mut String)) {
    fn walk(v: &mut Value, segments: &[&str], at: &mut Vec<String>, f: &mut impl FnMut(&str, &mut String)) {
        match (segments.split_first(), v) {
            (None, Value::String(s)) => f(&at.join("/"), s),
            (None, _) => {}
            (Some((&"*", rest)), Value::Array(a)) => {
                for x in a {
                    at.push("*".into());
                    walk(x, rest, at, f);
                    at.pop();
                }
            }
            (Some((&"*", rest)), Value::Object(o)) => {
                for (k, x) in o {
                    at.push(k.clone());
                    walk(x, rest, at, f);
                    at.pop();
                }
            }
            (Some((name, rest)), Value::Object(o)) => {
                if let Some(x) = o.get_mut(*name) {
                    at.push((*name).to_string());
                    walk(x, rest, at, f);
                    at.pop();
                }
            }
            (Some(_), _) => {}
        }
    }
    let segments: Vec<&str> = pattern.split('/').collect();
    walk(body, &segments, &mut Vec::new(), f);
}

/// Calls `f` with every customer-data string of a serialized event of `event_type`.
pub fn for_each_pii(event: &mut Value, paths: &[&str], f: &mut impl FnMut(&str, &mut String)) {
    if let Some(body) = body_mut(event) {
        for p in paths {
            for_each_at(body, p, f);
        }
    }
}

/// The path of every string in `body`, list indices written as `*` (map keys as they are).
pub fn string_paths(body: &Value) -> Vec<String> {
    fn walk(v: &Value, at: &mut Vec<String>, out: &mut Vec<String>) {
        match v {
            Value::String(_) => out.push(at.join("/")),
            Value::Array(a) => {
                for x in a {
                    at.push("*".into());
                    walk(x, at, out);
                    at.pop();
                }
            }
            Value::Object(o) => {
                for (k, x) in o {
                    at.push(k.clone());
                    walk(x, at, out);
                    at.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(body, &mut Vec::new(), &mut out);
    out.sort();
    out.dedup();
    out
}

/// Whether `path` (from [`string_paths`]) is matched by `pattern` (`*` matches any one segment).
pub fn matches(pattern: &str, path: &str) -> bool {
    let (mut p, mut q) = (pattern.split('/'), path.split('/'));
    loop {
        match (p.next(), q.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a == "*" || a == b => {}
            _ => return false,
        }
    }
}

/// Every aggregate: its name, event types and declared fields, in the event catalog's order.
fn aggregates() -> [(&'static str, &'static [&'static str], &'static [Fields]); 5] {
    fn of<E: EventSchema>() -> (&'static str, &'static [&'static str], &'static [Fields]) {
        (E::AGGREGATE, E::types(), E::fields())
    }
    [
        of::<crate::conversation::ConversationEvent>(),
        of::<crate::vehicle_lookup::VehicleLookupEvent>(),
        of::<crate::price_lookup::PriceLookupEvent>(),
        of::<crate::lead::LeadEvent>(),
        of::<crate::probe::ProbeEvent>(),
    ]
}

/// The customer-data fields of every event type as Markdown (the text of `docs/privacy-fields.md`).
pub fn markdown() -> String {
    let mut s = String::from(
        "# Customer data in events\n\n\
         The fields of each event type that hold customer data: names, phone numbers, chat ids, message texts, file\n\
         names and links, form answers, what people wrote about the customer, and errors that may quote any of these.\n\
         The event store encrypts them with the customer's own key; once the customer is erased they read `[erased]`.\n\
         Event types not listed hold none. Generated from the code by `aisales events privacy-fields`; a test fails\n\
         when this file and the code disagree.\n\n\
         A field is named by its path inside the event's fields: names joined by `/`, `*` for any element of a list or\n\
         any key of a map.\n\n\
         | aggregate | event | customer-data fields |\n|---|---|---|\n",
    );
    for (aggregate, types, fields) in aggregates() {
        for event in types {
            let pii = pii_paths(fields, event);
            if !pii.is_empty() {
                let paths = pii.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ");
                s.push_str(&format!("| `{aggregate}` | {event} | {paths} |\n"));
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::json;

    use super::*;
    use crate::catalog;
    use crate::lead::LeadEvent;
    use crate::price_lookup::PriceLookupEvent;

    #[test]
    fn paths_reach_lists_maps_and_skip_nulls() {
        let mut e = json!({"MessageReceived": {"text": "привет", "sender_name": null,
            "attachments": [{"file_name": "a.jpg", "kind": "image"}, {"file_name": "b.pdf", "kind": "document"}],
            "answers": {"q1": "Kia", "q2": "Казань"}}});
        let mut seen = Vec::new();
        for_each_pii(&mut e, &["text", "sender_name", "attachments/*/file_name", "answers/*"], &mut |p, s| {
            seen.push(format!("{p}={s}"));
            *s = ERASED.into();
        });
        assert_eq!(
            seen,
            [
                "text=привет",
                "attachments/*/file_name=a.jpg",
                "attachments/*/file_name=b.pdf",
                "answers/q1=Kia",
                "answers/q2=Казань"
            ]
        );
        assert_eq!(e["MessageReceived"]["attachments"][1]["kind"], "document");
        assert_eq!(e["MessageReceived"]["answers"]["q2"], ERASED);
        assert!(e["MessageReceived"]["sender_name"].is_null());
    }

    #[test]
    fn string_paths_write_list_indices_as_stars() {
        let body = json!({"a": "x", "b": [{"c": "y"}, {"c": "z", "d": 1}], "m": {"k": "v"}});
        assert_eq!(string_paths(&body), ["a", "b/*/c", "m/k"]);
        assert!(matches("b/*/c", "b/*/c"));
        assert!(matches("m/*", "m/k"));
        assert!(!matches("m", "m/k"));
        assert!(!matches("b/*/c/d", "b/*/c"));
    }

    /// What is wrong with the declared fields of `E`, checked against the catalog's samples and
    /// the rich ones: a string field declared neither way or both, a declaration no sample has, an
    /// event type without a rich sample, a rich sample that leaves a field empty.
    fn problems<E: EventSchema>(catalog: &[E], rich: &[E]) -> BTreeSet<String> {
        let (aggregate, fields) = (E::AGGREGATE, E::fields());
        let mut out = BTreeSet::new();
        let mut seen = Vec::new();
        for e in catalog.iter().chain(rich) {
            let event = e.name();
            let value = serde_json::to_value(e).expect("events serialize");
            let declared = fields.iter().find(|f| f.event == event);
            for path in value.get(event).map(string_paths).unwrap_or_default() {
                let n = declared.map_or(0, |f| f.pii.iter().chain(f.safe).filter(|p| matches(p, &path)).count());
                if n == 0 {
                    out.insert(format!("{aggregate} {event}: `{path}` is declared neither pii nor safe"));
                } else if n > 1 {
                    out.insert(format!("{aggregate} {event}: `{path}` is declared {n} times"));
                }
                seen.push((event, path));
            }
        }
        for f in fields {
            if !E::types().contains(&f.event) {
                out.insert(format!("{aggregate} {}: declared, but there is no such event type", f.event));
            }
            if fields.iter().filter(|g| g.event == f.event).count() > 1 {
                out.insert(format!("{aggregate} {}: declared more than once", f.event));
            }
            for p in f.pii.iter().chain(f.safe) {
                if !seen.iter().any(|(event, path)| *event == f.event && matches(p, path)) {
                    out.insert(format!("{aggregate} {}: `{p}` is declared but no sample has it", f.event));
                }
            }
        }
        for t in E::types() {
            if !rich.iter().any(|e| e.name() == *t) {
                out.insert(format!("{aggregate} {t}: no rich sample"));
            }
        }
        for e in rich {
            let value = serde_json::to_value(e).expect("events serialize");
            for path in value.get(e.name()).map(empty_paths).unwrap_or_default() {
                out.insert(format!("{aggregate} {}: the rich sample leaves `{path}` empty", e.name()));
            }
        }
        out
    }

    /// Paths of the nulls, empty lists and empty maps in `body`.
    fn empty_paths(body: &Value) -> Vec<String> {
        fn walk(v: &Value, at: &mut Vec<String>, out: &mut Vec<String>) {
            let children: Vec<(String, &Value)> = match v {
                Value::Array(a) => a.iter().map(|x| ("*".to_string(), x)).collect(),
                Value::Object(o) => o.iter().map(|(k, x)| (k.clone(), x)).collect(),
                _ => vec![],
            };
            if v.is_null() || (children.is_empty() && (v.is_array() || v.is_object())) {
                out.push(at.join("/"));
            }
            for (k, x) in children {
                at.push(k);
                walk(x, at, out);
                at.pop();
            }
        }
        let mut out = Vec::new();
        walk(body, &mut Vec::new(), &mut out);
        out
    }

    /// Rich samples whose customer-data fields, set to [`ERASED`], no longer read as events.
    fn unreadable_when_erased<E: EventSchema>(rich: &[E]) -> Vec<String> {
        let mut out = Vec::new();
        for e in rich {
            let mut value = serde_json::to_value(e).expect("events serialize");
            for_each_pii(&mut value, E::pii_paths(e.name()), &mut |_, s| *s = ERASED.into());
            if let Err(err) = serde_json::from_value::<E>(value) {
                out.push(format!("{} {}: unreadable once erased: {err}", E::AGGREGATE, e.name()));
            }
        }
        out
    }

    #[test]
    fn every_string_field_of_every_event_is_declared_once() {
        let mut found = problems(&catalog::conversation_samples(), &rich::conversation());
        found.extend(problems(&catalog::vehicle_lookup_samples(), &rich::vehicle_lookup()));
        found.extend(problems(&PriceLookupEvent::samples(), &rich::price_lookup()));
        found.extend(problems(&LeadEvent::samples(), &rich::lead()));
        found.extend(problems(&catalog::probe_samples(), &rich::probe()));
        let found: Vec<String> = found.into_iter().collect();
        assert!(
            found.is_empty(),
            "declare every string field in the aggregate's `EventSchema::fields` (and fill the rich samples):\n{}",
            found.join("\n")
        );
    }

    #[test]
    fn erased_events_still_read() {
        let mut found = unreadable_when_erased(&rich::conversation());
        found.extend(unreadable_when_erased(&rich::vehicle_lookup()));
        found.extend(unreadable_when_erased(&rich::price_lookup()));
        found.extend(unreadable_when_erased(&rich::lead()));
        found.extend(unreadable_when_erased(&rich::probe()));
        assert!(found.is_empty(), "only plain strings can be customer data:\n{}", found.join("\n"));
    }

    #[test]
    fn the_privacy_fields_doc_matches_the_code() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/privacy-fields.md"))
            .expect("docs/privacy-fields.md");
        assert_eq!(text, markdown(), "docs/privacy-fields.md is `aisales_domain::pii::markdown()`: write it out again");
    }

    /// Samples in which every optional field is set, every list holds an element and every enum
    /// variant that carries strings appears: the catalog's samples leave nested fields out.
    mod rich {
        use chrono::{DateTime, Utc};
        use uuid::Uuid;

        use crate::conversation::{
            Attachment, AttachmentKind, ChannelKind, ConversationEvent as C, Decision, DeliveryStatus, MessageKind,
            ReplyAttachment, ReplyOrigin, Status,
        };
        use crate::detect::{Candidate, CandidateKind, GearboxType};
        use crate::lead::{
            FailureReason, Fingerprint, LeadEvent as L, LeadFields, LeadFormKind, LeadKind, Phone, PreferredChannel,
            Recipient, SubmissionFormat, TelegramUsername,
        };
        use crate::media::{MediaRefusal, NotReadReason, PhotoKind, PhotoReading, StoredMedia};
        use crate::pii::ErasureCause;
        use crate::price::{
            ConfidenceBasis, Currency, DropReason, DroppedListing, Escalation, Listing, Market, OriginalPrice,
            OwnOffer, PriceSubject, PriceSummary, Rates, RatesSource, SearchKey, SuggestionKind,
            compute_price_confidence,
        };
        use crate::price_lookup::{
            PriceBasis, PriceLookupEvent as P, PriceLookupStatus, Requester, SourceKind, SourceOutcome,
        };
        use crate::probe::ProbeEvent;
        use crate::vehicle_lookup::{
            ConfirmedGearbox, EvidenceKind, EvidenceRef, GearboxInfo, IdType, LookupResult, LookupSource, LookupStatus,
            NotFoundResult, OemCandidate, OemFailureKind, OemPathOutcome, OemPathTrial, OemSearch, OemStepFailure,
            PriceOrigin, ResultStatus, VehicleData, VehicleDataStatus, VehicleLookupEvent as V, VehicleMeta,
            Verification,
        };
        use crate::vin::{CheckDigit, Region, VinInfo};

        const T: DateTime<Utc> = DateTime::<Utc>::UNIX_EPOCH;
        const ID: Uuid = Uuid::nil();

        fn s(v: &str) -> String {
            v.to_string()
        }

        fn some(v: &str) -> Option<String> {
            Some(s(v))
        }

        fn vehicle() -> VehicleMeta {
            VehicleMeta {
                make: some("TOYOTA"),
                model: some("CAMRY"),
                year: some("2008"),
                engine: some("2AZ-FE"),
                body: some("ACV40"),
                modification: some("2.4 G"),
                transmission: some("A/T 5-SPEED"),
                drive: some("FF"),
            }
        }

        fn gearbox() -> GearboxInfo {
            GearboxInfo {
                model: some("U250E"),
                factory_code: some("U250E-02A"),
                oem: some("30500-33520"),
                oem_candidates: vec![OemCandidate { oem: s("30500-33520"), name: s("TRANSAXLE ASSY"), score: 2 }],
                oem_search: Some(Box::new(OemSearch {
                    site: s("podzamenu"),
                    paths: vec![OemPathTrial {
                        path: s("accordion"),
                        attempt: 1,
                        outcome: OemPathOutcome::Rows,
                        step: s("podzamenu.nav.accordion.link"),
                        detail: some("ТРАНСМИССИЯ"),
                        url: some("https://podzamenu.ru/catalog/toyota"),
                    }],
                    failure: Some(OemStepFailure {
                        kind: OemFailureKind::SiteError,
                        step: s("podzamenu.oem.choose"),
                        reason: s("HTTP 502"),
                        transient: true,
                        attempts: 2,
                    }),
                })),
            }
        }

        fn decoder() -> VinInfo {
            VinInfo {
                vin: s("JTNBE40K003123456"),
                wmi: s("JTN"),
                vds: s("BE40K0"),
                manufacturer: some("Toyota"),
                country: some("Japan"),
                region: Some(Region::Asia),
                model_year: Some(2008),
                check_digit: CheckDigit::NotApplicable,
                plant: s("0"),
                serial: s("3123456"),
            }
        }

        fn evidence() -> Vec<EvidenceRef> {
            vec![EvidenceRef { id: ID, kind: EvidenceKind::Screenshot }]
        }

        pub fn conversation() -> Vec<C> {
            vec![
                C::ConversationStarted {
                    tenant_id: ID,
                    channel: ChannelKind::Telegram,
                    account_id: ID,
                    chat_id: s("79991234567@c.us"),
                    customer_id: ID,
                    customer_name: some("Иван"),
                    customer_phone: some("+79991234567"),
                    started_at: T,
                },
                C::MessageReceived {
                    message_id: ID,
                    provider_message_id: s("BAE5F4"),
                    text: s("Нужна коробка"),
                    attachments: vec![Attachment {
                        kind: AttachmentKind::Image,
                        url: some("https://api.green-api.com/file/1.jpg"),
                        file_name: some("sts.jpg"),
                        mime_type: some("image/jpeg"),
                        file_id: some("AgACAgIAAxkBAAIB"),
                    }],
                    sender_name: some("Иван"),
                    sent_at: T,
                    received_at: T,
                    kind: MessageKind::Image,
                    reply_to: some("BAE5F3"),
                },
                C::CustomerAliasLinked { alias: s("1234567890") },
                C::VehicleIdDetected {
                    message_id: ID,
                    id_type: IdType::Vin,
                    value: s("JTNBE40K003123456"),
                    score: 0.9,
                    reasons: vec![s("checksum_valid")],
                },
                C::TransmissionCodeDetected { message_id: ID, code: s("U250E"), score: 0.75 },
                C::VehicleLookupRequested {
                    lookup_id: ID,
                    request_id: ID,
                    message_id: Some(ID),
                    id_type: IdType::Frame,
                    value: s("ACV40-3123456"),
                    source: LookupSource::Operator,
                    requested_by: s("user:1"),
                },
                C::VehicleDataAttached {
                    lookup_id: ID,
                    revision: 1,
                    data: Box::new(VehicleData {
                        id_type: IdType::Vin,
                        value: s("JTNBE40K003123456"),
                        status: VehicleDataStatus::Found,
                        vehicle: vehicle(),
                        gearbox: gearbox(),
                        source: some("podzamenu"),
                        confidence: 0.9,
                        decoder: Some(decoder()),
                        confirmed: Some(ConfirmedGearbox {
                            model: s("U250E"),
                            oem: some("30500-33520"),
                            factory_code: some("U250E-02A"),
                            verification: Verification::VerifiedMatch,
                            confirmed_by: s("user:1"),
                        }),
                        note: some("the catalogues could not be reached"),
                    }),
                },
                C::VehicleLookupFailed {
                    lookup_id: ID,
                    revision: 2,
                    id_type: IdType::Vin,
                    value: s("JTNBE40K003123456"),
                    reason: s("timeout"),
                },
                C::SuggestionRequested { request_id: ID, trigger_message_id: ID, not_before: T },
                C::SuggestionGenerated {
                    suggestion_id: ID,
                    request_id: ID,
                    text: s("Здравствуйте, Иван!"),
                    intent: s("price_request"),
                    confidence: 0.8,
                    decision: Decision::AutoSend,
                    explanations: vec![s("confidence 80% ≥ 75% (auto)")],
                    source: s("ai"),
                    model: some("gpt-4o-mini"),
                    autosend_block_reason: some("MENTIONS_PRICE"),
                },
                C::SuggestionFailed { request_id: ID, reason: s("the AI service is unavailable: timeout") },
                C::SuggestionSuperseded { suggestion_id: ID, by_message_id: ID },
                C::SuggestionApproved { suggestion_id: ID, automatic: true },
                C::SuggestionEdited { suggestion_id: ID, text: s("Здравствуйте!") },
                C::SuggestionRejected { suggestion_id: ID, reason: some("клиент уже купил") },
                C::OperatorReplied { reply_id: ID, text: s("Иван, есть в наличии") },
                C::ReplyQueued {
                    reply_id: ID,
                    suggestion_id: Some(ID),
                    text: s("Фото коробки"),
                    origin: ReplyOrigin::Edited,
                    send_after: T,
                    attachment: Some(ReplyAttachment {
                        sha256: s("ab12"),
                        mime_type: s("image/jpeg"),
                        size: 1,
                        file_name: s("invoice-ivanov.pdf"),
                    }),
                },
                C::ReplySendStarted { reply_id: ID, attempt: 1, started_at: T },
                C::ReplySent { reply_id: ID, provider_message_id: s("BAE5F5"), sent_at: T, reconciled: true },
                C::ReplySendRetryScheduled { reply_id: ID, attempt: 1, retry_at: T, reason: s("GREEN-API 502") },
                C::ReplyFailed { reply_id: ID, reason: s("GREEN-API 400: chatId 79991234567@c.us"), permanent: true },
                C::ReplyRetryRequested { reply_id: ID },
                C::ReplyDelivered {
                    reply_id: ID,
                    provider_message_id: s("BAE5F5"),
                    status: DeliveryStatus::Read,
                    at: T,
                },
                C::ReplyDelivered {
                    reply_id: ID,
                    provider_message_id: s("BAE5F5"),
                    status: DeliveryStatus::Failed { reason: s("recipient blocked the number") },
                    at: T,
                },
                C::ConversationEscalated { reason: s("клиент ругается"), suggestion_id: Some(ID) },
                C::ConversationResolved,
                C::ConversationReopened { reason: s("the customer wrote") },
                C::ConversationMuted { muted: true },
                C::StatusChanged {
                    from: Status::Open, to: Status::Escalated, reason: s("клиент ругается")
                },
                C::OperatorAssigned { operator: some("user:1") },
                C::ConversationRead,
                C::LeadLinked { lead_id: ID },
                C::AttachmentStored {
                    message_id: ID,
                    index: 0,
                    media: StoredMedia {
                        sha256: s("ab12"),
                        size: 1,
                        mime_type: s("image/jpeg"),
                        thumbnail_sha256: some("cd34"),
                    },
                },
                C::AttachmentRefused {
                    message_id: ID,
                    index: 0,
                    reason: MediaRefusal::DownloadFailed,
                    size: Some(1),
                    detail: some("404 for sts-ivanov.jpg"),
                },
                C::PhotoRead {
                    message_id: ID,
                    index: 0,
                    sha256: s("ab12"),
                    reading: PhotoReading {
                        kind: PhotoKind::RegistrationDocument,
                        confidence: 0.9,
                        candidates: vec![Candidate {
                            kind: CandidateKind::Vin,
                            value: s("JTNBE40K003123456"),
                            score: 0.85,
                            reasons: vec![s("ocr_registration_doc")],
                            incomplete: true,
                            needs_confirmation: true,
                            vin_info: Some(decoder()),
                        }],
                        flags: vec![s("low_confidence")],
                    },
                },
                C::PhotoNotRead { message_id: ID, index: 0, sha256: s("ab12"), reason: NotReadReason::InvalidAnswer },
                C::TeamNotified { escalation: 1, chat_id: s("-1001234567890") },
                C::TeamNotificationFailed { escalation: 1, error: s("Bad Request: chat not found") },
                C::CustomerErased {
                    customer_id: ID,
                    erased_by: s("user:1"),
                    cause: ErasureCause::Inactive,
                    erased_at: T,
                },
            ]
        }

        pub fn vehicle_lookup() -> Vec<V> {
            let result = LookupResult {
                status: ResultStatus::Found,
                vehicle: vehicle(),
                gearbox: gearbox(),
                source: s("podzamenu"),
                decoder: Some(decoder()),
                confidence: 0.9,
                from_cache: true,
                note: some("from the cache"),
                evidence: evidence(),
            };
            let not_found = NotFoundResult {
                source: s("podzamenu"),
                sources_tried: vec![s("podzamenu"), s("prof_rf")],
                vehicle: Some(vehicle()),
                decoder: Some(decoder()),
                from_cache: false,
                evidence: evidence(),
            };
            vec![
                V::LookupRequested {
                    request_id: ID,
                    round: 1,
                    tenant_id: ID,
                    conversation_id: Some(ID),
                    message_id: Some(ID),
                    id_type: IdType::Vin,
                    value: s("JTNBE40K003123456"),
                    source: LookupSource::Detected,
                    requested_by: s("conversation"),
                    requested_at: T,
                },
                V::LookupRequestMerged {
                    request_id: ID,
                    source: LookupSource::Operator,
                    requested_by: s("user:1"),
                    status: LookupStatus::Started,
                },
                V::LookupStarted { round: 1, attempt: 1, started_at: T },
                V::LookupCompleted { round: 1, attempt: 1, conversation_id: Some(ID), result, completed_at: T },
                V::LookupNotFound {
                    round: 1,
                    attempt: 1,
                    conversation_id: Some(ID),
                    result: not_found,
                    completed_at: T,
                },
                V::LookupRetryScheduled {
                    round: 1,
                    attempt: 1,
                    retry_at: T,
                    reason: s("timeout"),
                    evidence: evidence(),
                },
                V::LookupFailed {
                    round: 1,
                    attempts: 3,
                    conversation_id: Some(ID),
                    reason: s("timeout"),
                    decoder: Some(decoder()),
                    evidence: evidence(),
                    failed_at: T,
                },
                V::LookupRetryRequested { round: 2, requested_by: s("user:1"), requested_at: T },
                V::LookupIdCorrected {
                    round: 2,
                    id_type: IdType::Frame,
                    previous_value: s("ACV40-3123455"),
                    value: s("ACV40-3123456"),
                    corrected_by: s("user:1"),
                    corrected_at: T,
                },
                V::GearboxConfirmed {
                    conversation_id: Some(ID),
                    model: s("U250E"),
                    oem: some("30500-33520"),
                    factory_code: some("U250E-02A"),
                    verification: Verification::Mismatch,
                    note: some("tag photo is sharp"),
                    confirmed_by: s("user:1"),
                    confirmed_at: T,
                },
                V::PriceLookupWanted { oem: s("30500-33520"), model: some("U250E"), origin: PriceOrigin::Tag },
            ]
        }

        pub fn price_lookup() -> Vec<P> {
            let subject = PriceSubject {
                oem: some("30500-33520"),
                transmission_code: some("U250E"),
                make: some("Toyota"),
                model: some("Camry"),
                gearbox_type: Some(GearboxType::Automatic),
                model_name_hint: some("U250E"),
                year: some("2008"),
                engine: some("2AZ-FE"),
                drive: some("FF"),
            };
            let listing = Listing {
                url: s("https://baza.drom.ru/1.html"),
                site: s("baza.drom.ru"),
                title: s("АКПП U250E"),
                price: 50_000,
                price_high: Some(60_000),
                original: Some(OriginalPrice { amount: 100_000.0, currency: Currency::Jpy }),
                mileage_km: Some(80_000),
                market: Market::Intl,
            };
            let dropped = [
                DropReason::NotWholeGearbox { keyword: s("фильтр") },
                DropReason::Defective { keyword: s("на запчасти") },
                DropReason::NewOrRebuilt { keyword: s("новая") },
                DropReason::UnknownCurrency { currency: s("GBP") },
                DropReason::NoPrice,
            ]
            .into_iter()
            .map(|reason| DroppedListing {
                url: s("https://baza.drom.ru/2.html"),
                site: s("baza.drom.ru"),
                title: s("Фильтр АКПП"),
                price: Some(1_000),
                reason,
            })
            .collect::<Vec<_>>();
            let offer =
                OwnOffer { price: 45_000, condition: some("б/у"), supplier: some("склад 1"), stock: Some(1) };
            let confidence = compute_price_confidence(std::slice::from_ref(&listing), ConfidenceBasis::Market);
            let queried = |outcome| P::PriceSourceQueried {
                round: 1,
                source: SourceKind::YandexSearch,
                queries: vec![s("АКПП U250E купить")],
                urls: vec![s("https://baza.drom.ru/1.html")],
                outcome,
                offers: vec![offer.clone()],
                queried_at: T,
            };
            let requested = |requester| P::PriceLookupRequested {
                request_id: ID,
                round: 1,
                tenant_id: ID,
                key: SearchKey::of(&subject),
                subject: subject.clone(),
                requester,
                refresh: true,
                requested_at: T,
            };
            vec![
                requested(Requester::VehicleLookup { lookup_id: ID, conversation_id: Some(ID) }),
                requested(Requester::CustomerMessage { conversation_id: ID, message_id: ID }),
                requested(Requester::Operator { actor: s("user:1"), conversation_id: Some(ID) }),
                P::PriceLookupJoined {
                    request_id: ID,
                    round: 1,
                    subject: subject.clone(),
                    requester: Requester::Operator { actor: s("token:1"), conversation_id: Some(ID) },
                    status: PriceLookupStatus::Pending,
                    answered_from: Some(1),
                    joined_at: T,
                },
                P::PriceSearchStarted {
                    round: 1,
                    rates: Rates {
                        source: RatesSource::CurrencyApi,
                        date: some("2025-01-01"),
                        rub_per_unit: [(Currency::Usd, 88.0)].into(),
                        defaulted: vec![Currency::Krw],
                    },
                    started_at: T,
                },
                queried(SourceOutcome::Ok { results: 1 }),
                queried(SourceOutcome::Estimate { min: 1, max: 2 }),
                queried(SourceOutcome::Failed { reason: s("HTTP 500"), http_status: Some(500) }),
                queried(SourceOutcome::Skipped { reason: s("not configured") }),
                P::PriceListingsRecorded {
                    round: 1,
                    source: SourceKind::ListingPage,
                    url: some("https://baza.drom.ru/1.html"),
                    kept: vec![listing.clone()],
                    dropped: dropped.clone(),
                    ignored: 1,
                },
                P::PriceListingsDiscarded { round: 1, dropped },
                P::PriceLookupPriced {
                    round: 1,
                    revision: 1,
                    basis: PriceBasis::Market,
                    summary: PriceSummary {
                        min: 50_000,
                        max: 60_000,
                        median: 55_000,
                        mean: 55_000,
                        count: 2,
                        sites: 1,
                        currency: Currency::Rub,
                        mileage_min: Some(1),
                        mileage_max: Some(2),
                    },
                    confidence: confidence.clone(),
                    listings: vec![listing],
                    own_offers: vec![offer],
                    sources: vec![SourceKind::ListingPage],
                    urls_checked: vec![s("https://baza.drom.ru/1.html")],
                    expires_at: T,
                    priced_at: T,
                },
                P::PriceLookupEstimated {
                    round: 1,
                    revision: 1,
                    min: 1,
                    max: 2,
                    confidence,
                    urls_checked: vec![s("https://baza.drom.ru/1.html")],
                    expires_at: T,
                    estimated_at: T,
                },
                P::PriceLookupNotFound {
                    round: 1,
                    revision: 1,
                    urls_checked: vec![s("https://baza.drom.ru/1.html")],
                    ready_queries: vec![s("U250E б/у")],
                    escalation: Some(Escalation {
                        reason: s("nothing found"),
                        ready_queries: vec![s("U250E б/у")],
                        urls_checked: vec![s("https://baza.drom.ru/1.html")],
                        suggested_sites: vec![s("farpost.ru")],
                    }),
                    expires_at: T,
                    concluded_at: T,
                },
                P::PriceLookupFailed { round: 1, revision: 1, reason: s("no source answered"), failed_at: T },
                P::PriceSuggestionOffered {
                    conversation_id: ID,
                    revision: 1,
                    kinds: vec![SuggestionKind::Price],
                    offered_at: T,
                },
            ]
        }

        pub fn lead() -> Vec<L> {
            let phone = Phone::parse("+7 999 123-45-67").expect("a phone");
            let fields = LeadFields {
                form_name: s("Квиз"),
                client_name: some("Иван"),
                phone: Some(phone.clone()),
                phone_raw: some("8 999 123-45-67"),
                email: some("ivan@example.com"),
                telegram: Some(TelegramUsername::parse("@ivan_petrov").expect("a username")),
                max_phone: Some(phone),
                preferred_channel: Some(PreferredChannel::Max),
                car: some("Toyota Camry 2008"),
                vin: some("JTNBE40K003123456"),
                vin_type: Some(IdType::Vin),
                gearbox_type: some("Автомат"),
                gearbox_code: Some(GearboxType::Automatic),
                engine_type: some("Бензин"),
                engine_volume: some("2.4"),
                engine_model: some("2AZ-FE"),
                city: some("Казань"),
                tire_season: some("Зима"),
                tire_method: some("Шипы"),
                tire_width: some("205"),
                tire_height: some("55"),
                tire_diameter: some("16"),
                raw_fields: vec![(s("ваше имя"), s("Иван"))],
                tracking: vec![(s("utm source"), s("yandex"))],
            };
            let attempted = |recipient| L::OutreachAttempted {
                round: 1,
                attempt: 1,
                channel: ChannelKind::GreenApi,
                account_id: ID,
                recipient,
                reply_id: ID,
                conversation_id: Some(ID),
                attempted_at: T,
            };
            vec![
                L::LeadReceived {
                    tenant_id: ID,
                    form_id: ID,
                    form_kind: LeadFormKind::Generic,
                    submission_id: ID,
                    format: SubmissionFormat::Marquiz,
                    fingerprint: Fingerprint::default(),
                    kind: LeadKind::Gearbox,
                    fields: Box::new(fields),
                    text: s("Иван, здравствуйте!"),
                    received_at: T,
                },
                L::SubmissionRepeated { submission_id: ID, received_at: T },
                L::OutreachScheduled {
                    round: 1,
                    due_at: T,
                    outside_hours: true,
                    note: some("outside working hours"),
                    requested_by: s("form"),
                    scheduled_at: T,
                },
                L::OutreachStarted { round: 1, started_at: T },
                attempted(Recipient::GreenApiChat { chat_id: s("79991234567@c.us") }),
                attempted(Recipient::TelegramUsername { username: s("ivan_petrov") }),
                attempted(Recipient::TelegramPhone { phone: s("79991234567") }),
                attempted(Recipient::WhatsappPhone { phone: s("79991234567") }),
                L::OutreachAttemptFailed {
                    round: 1,
                    attempt: 1,
                    channel: ChannelKind::Telegram,
                    reply_id: ID,
                    error: s("invalid chat id"),
                    failed_at: T,
                },
                L::LeadContacted {
                    round: 1,
                    attempt: 1,
                    channel: ChannelKind::Whatsapp,
                    account_id: ID,
                    conversation_id: ID,
                    reply_id: ID,
                    provider_message_id: some("BAE5F5"),
                    contacted_at: T,
                },
                L::ContactDeliveryFailed {
                    round: 1,
                    attempt: 1,
                    reply_id: ID,
                    error: s("undeliverable"),
                    failed_at: T,
                },
                L::LeadFailed {
                    round: 1,
                    reason: FailureReason::TelegramFailed,
                    text: s("Иван, здравствуйте!"),
                    attempts: 1,
                    failed_at: T,
                },
                L::OutreachCancelled { round: 1, reason: s("the lead was lost") },
                L::NoReplyCheckScheduled {
                    check: 1,
                    conversation_id: ID,
                    channel: ChannelKind::GreenApi,
                    due_at: T,
                    after_secs: 900,
                },
                L::NoReplyCheckCancelled { check: 1, reason: s("the customer answered") },
                L::NoReplyDetected {
                    check: 1,
                    conversation_id: ID,
                    channel: ChannelKind::GreenApi,
                    after_secs: 900,
                    detected_at: T,
                },
                L::CustomerReplied { conversation_id: ID, message_id: ID, replied_at: T },
                L::LeadQualified { qualified_by: s("user:1"), qualified_at: T },
                L::LeadWon { won_by: s("user:1"), note: some("Иван забрал сам"), won_at: T },
                L::LeadLost { lost_by: s("user:1"), reason: s("купил у соседа"), lost_at: T },
                L::LeadAssigned { operator: some("user:2"), assigned_by: s("user:1"), assigned_at: T },
                L::TeamNotified { notice: s("failed:1"), chat_id: s("-1001234567890"), notified_at: T },
                L::TeamNotificationFailed { notice: s("no_reply:1"), error: s("Bad Request"), failed_at: T },
                L::LeadErased { erased_by: s("user:1"), cause: ErasureCause::Request, erased_at: T },
            ]
        }

        pub fn probe() -> Vec<ProbeEvent> {
            vec![
                ProbeEvent::PingRequested { ping_id: ID, at: T },
                ProbeEvent::PongRecorded { ping_id: ID, worker: s("worker-1"), at: T },
            ]
        }
    }
}
