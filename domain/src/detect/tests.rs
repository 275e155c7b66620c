//! Behaviour of [`detect`] on realistic customer messages.

use super::*;

fn of_kind(d: &Detection, kind: CandidateKind) -> Vec<&Candidate> {
    d.candidates.iter().filter(|c| c.kind == kind).collect()
}

/// The single candidate of `kind`; fails when there is none or more than one.
#[track_caller]
fn single(d: &Detection, kind: CandidateKind) -> &Candidate {
    let found = of_kind(d, kind);
    assert_eq!(found.len(), 1, "expected one {kind:?} in {:?}: {:#?}", d.input, d.candidates);
    found[0]
}

#[track_caller]
fn assert_reasons(c: &Candidate, expected: &[&str]) {
    for reason in expected {
        assert!(c.reasons.iter().any(|r| r == reason), "reason {reason:?} missing from {:?} ({})", c.reasons, c.value);
    }
}

#[track_caller]
fn assert_nothing(text: &str) {
    let d = detect(text);
    assert!(d.candidates.is_empty(), "{text:?} gave {:#?}", d.candidates);
    assert_eq!(d.best, None);
}

fn best_value(d: &Detection) -> Option<&str> {
    d.best.as_ref().map(|b| b.value.as_str())
}

// ---------------------------------------------------------------- VIN

#[test]
fn vin_in_a_request_for_an_automatic_gearbox() {
    let d = detect("Здравствуйте, нужна АКПП на камри, VIN JTNBE46K803123456");
    let vin = single(&d, CandidateKind::Vin);
    assert_eq!(vin.value, "JTNBE46K803123456");
    assert_eq!(vin.score, 0.85);
    assert_eq!(vin.reasons, ["no_checksum_applicable", "context:vin"]);
    assert_eq!(d.best.as_ref(), Some(vin));
    assert_eq!(d.gearbox_type, Some(GearboxType::Automatic));
    assert_eq!(d.vehicle_id(VEHICLE_LOOKUP_MIN_SCORE).map(|c| c.value.as_str()), Some("JTNBE46K803123456"));
    assert!(d.conflicts.is_empty());
    assert_eq!(d.incomplete_vin, None);
    assert!(d.transmission_code(0.0).is_none());
}

#[test]
fn russian_vin_word_and_automatic() {
    let d = detect("вин XW8ZZZ61ZEG012345 коробка автомат");
    let vin = single(&d, CandidateKind::Vin);
    assert_eq!(vin.value, "XW8ZZZ61ZEG012345");
    assert_eq!(vin.score, 0.85);
    assert_reasons(vin, &["no_checksum_applicable", "context:vin"]);
    assert_eq!(d.gearbox_type, Some(GearboxType::Automatic));
}

#[test]
fn vin_without_context_starts_a_lookup_at_the_threshold() {
    let d = detect("XTA210990Y1234567");
    let vin = single(&d, CandidateKind::Vin);
    assert_eq!(vin.score, VEHICLE_LOOKUP_MIN_SCORE);
    assert_eq!(vin.reasons, ["no_checksum_applicable"]);
    assert!(d.vehicle_id(VEHICLE_LOOKUP_MIN_SCORE).is_some());
}

#[test]
fn cyrillic_look_alikes_inside_a_vin_are_latin() {
    // Х, Е and Т below are Cyrillic.
    let d = detect("ВИН: ХW8ZZZ61ZЕG012345, коробка DSG");
    let vin = single(&d, CandidateKind::Vin);
    assert_eq!(vin.value, "XW8ZZZ61ZEG012345");
    assert_reasons(vin, &["cyrillic_homoglyphs", "no_checksum_applicable", "context:vin"]);
    assert_eq!(d.gearbox_type, Some(GearboxType::Dct));
    let lada = detect("хта210990у1234567");
    assert_eq!(single(&lada, CandidateKind::Vin).value, "XTA210990Y1234567");
}

#[test]
fn north_american_vin_with_valid_check_digit() {
    let d = detect("VIN: 1HGCM82633A004352");
    let vin = single(&d, CandidateKind::Vin);
    assert_eq!(vin.score, 0.95);
    assert_eq!(vin.reasons, ["checksum_valid", "context:vin"]);
    let bare = detect("1M8GDM9AXKP042788");
    assert_eq!(single(&bare, CandidateKind::Vin).score, 0.90);
}

#[test]
fn letter_o_instead_of_zero_is_corrected_by_the_check_digit() {
    let d = detect("вот вин 1HGCM82633AOO4352 подскажите по коробке");
    let vin = single(&d, CandidateKind::Vin);
    assert_eq!(vin.value, "1HGCM82633A004352");
    assert_eq!(vin.score, 0.90);
    assert_reasons(vin, &["illegal_chars_replaced", "checksum_valid_after_autocorrect", "context:vin"]);
}

#[test]
fn look_alike_autocorrection_needs_a_unique_valid_result() {
    for (typed, position) in [("1HGCM82633A0043S2", "pos16:S>5"), ("1HGCMB2633A004352", "pos6:B>8")] {
        let d = detect(typed);
        let vin = single(&d, CandidateKind::Vin);
        assert_eq!(vin.value, "1HGCM82633A004352", "{typed}");
        assert_eq!(vin.score, 0.85);
        assert_reasons(vin, &["checksum_valid_after_autocorrect", &format!("autocorrect:{position}")]);
    }
    let d = detect("1HGCM82634A004352");
    let vin = single(&d, CandidateKind::Vin);
    assert_eq!(vin.value, "1HGCM82634A004352");
    assert_eq!(vin.score, 0.25);
    assert_eq!(vin.reasons, ["checksum_invalid_uncorrectable"]);
    assert!(d.vehicle_id(VEHICLE_LOOKUP_MIN_SCORE).is_none());
}

#[test]
fn european_vins_are_not_held_to_the_check_digit() {
    // Position 9 is "Z": VW does not use a check digit. Never autocorrected.
    let d = detect("WVWZZZ1JZ3W386752");
    let vin = single(&d, CandidateKind::Vin);
    assert_eq!((vin.value.as_str(), vin.score), ("WVWZZZ1JZ3W386752", 0.80));
    // A European VIN whose position 9 happens to be a valid check digit scores like a North-American one.
    let d = detect("WVWZZZ1J93W386752");
    assert_eq!(single(&d, CandidateKind::Vin).reasons, ["checksum_valid"]);
}

#[test]
fn illegal_letters_in_a_european_vin_are_replaced_but_not_trusted() {
    let d = detect("вин XTA21O99OY1234567");
    let vin = single(&d, CandidateKind::Vin);
    assert_eq!(vin.value, "XTA210990Y1234567");
    assert_eq!(vin.score, 0.80);
    assert_reasons(vin, &["illegal_chars_replaced", "no_checksum_applicable", "context:vin"]);
    assert_eq!(single(&detect("XTA21O99OY1234567"), CandidateKind::Vin).score, 0.75);
}

#[test]
fn vin_embedded_in_text_and_glued_to_words() {
    for text in [
        "мой вин:JTNBE46K803123456,спасибо",
        "винJTNBE46K803123456",
        "VINJTNBE46K803123456",
        "vin jtnbe46k803123456!",
        "(JTNBE46K803123456)",
    ] {
        let d = detect(text);
        assert_eq!(single(&d, CandidateKind::Vin).value, "JTNBE46K803123456", "{text}");
    }
    assert_reasons(single(&detect("VINJTNBE46K803123456"), CandidateKind::Vin), &["glued_vin_prefix"]);
}

#[test]
fn runs_of_other_lengths_are_not_vins() {
    assert_nothing("JTNBE46K8031234567");
    assert_nothing("ABCDEFGHJKLMNPRST");
    assert_nothing("12345678901234567");
    assert_nothing("VIN 1HGCM 82633 A004352");
}

#[test]
fn vin_with_a_non_numeric_tail_is_reported_low() {
    let d = detect("XW8ZZZ61ZEG01ABCD");
    let vin = single(&d, CandidateKind::Vin);
    assert_eq!(vin.score, 0.50);
    assert_reasons(vin, &["vis_not_numeric"]);
    assert_nothing("INTERNATIONALIZES");
}

#[test]
fn sixteen_characters_is_an_incomplete_vin() {
    let d = detect("вин JTNBE46K80312345");
    let vin = single(&d, CandidateKind::Vin);
    assert_eq!(vin.value, "JTNBE46K80312345");
    assert_eq!(vin.score, 0.15);
    assert!(vin.incomplete);
    assert_reasons(vin, &["incomplete_vin_16chars", "context:vin"]);
    assert_eq!(d.incomplete_vin.as_deref(), Some("JTNBE46K80312345"));
    assert_eq!(d.best.as_ref(), Some(vin));
    assert!(d.vehicle_id(0.0).is_none());
    let json = serde_json::to_value(&d).expect("serialises");
    assert_eq!(json["best"]["incomplete"], true);
    // Sixteen characters that do not look like a VIN.
    assert_nothing("ABCDEFGHJKLMNPRS");
}

#[test]
fn incomplete_vin_is_not_best_when_something_else_was_found() {
    let d = detect("JTNBE46K80312345 коробка A245E");
    assert_eq!(best_value(&d), Some("A245E"));
    assert_eq!(d.incomplete_vin.as_deref(), Some("JTNBE46K80312345"));
}

#[test]
fn two_different_vins_are_a_conflict() {
    let d = detect("вот VIN JTNBE46K803123456 и второй XW8ZZZ61ZEG012345, какой нужен?");
    assert_eq!(of_kind(&d, CandidateKind::Vin).len(), 2);
    assert_eq!(d.conflicts, ["multiple_vin:JTNBE46K803123456|XW8ZZZ61ZEG012345"]);
    // The same VIN twice is one candidate and no conflict.
    let d = detect("JTNBE46K803123456 / jtnbe46k803123456");
    assert_eq!(d.candidates.len(), 1);
    assert!(d.conflicts.is_empty());
}

#[test]
fn a_weak_second_vin_is_not_a_conflict() {
    let d = detect("1HGCM82633A004352 и 1HGCM82634A004352");
    assert_eq!(of_kind(&d, CandidateKind::Vin).len(), 2);
    assert!(d.conflicts.is_empty());
    assert_eq!(best_value(&d), Some("1HGCM82633A004352"));
}

// ---------------------------------------------------------------- FRAME

#[test]
fn frame_number_with_body_word() {
    let d = detect("кузов NZE141-6012345");
    let frame = single(&d, CandidateKind::Frame);
    assert_eq!(frame.value, "NZE141-6012345");
    assert_eq!(frame.score, 0.90);
    assert_eq!(frame.reasons, ["frame_with_dash", "context:кузов"]);
    assert_eq!(d.vehicle_id(VEHICLE_LOOKUP_MIN_SCORE), Some(frame));
}

#[test]
fn frame_numbers_of_several_makes() {
    for (text, value, score) in [
        ("GX110-6012345", "GX110-6012345", 0.85),
        ("номер кузова ZZT240-0012345 рама", "ZZT240-0012345", 0.95),
        ("Subaru GDB-012345", "GDB-012345", 0.75),
        ("кузов GDB-012345", "GDB-012345", 0.80),
        ("ACV30–0123456", "ACV30-0123456", 0.85),
        ("Кузов: НZE141-6012345", "HZE141-6012345", 0.90),
    ] {
        let d = detect(text);
        let frame = single(&d, CandidateKind::Frame);
        assert_eq!((frame.value.as_str(), frame.score), (value, score), "{text}");
    }
}

#[test]
fn unusual_frames_stay_below_the_lookup_threshold() {
    let d = detect("ABC-1234");
    let frame = single(&d, CandidateKind::Frame);
    assert_eq!(frame.score, 0.70);
    assert_reasons(frame, &["frame_serial_unusual_length"]);
    let d = detect("TOYOTA-123456");
    let frame = single(&d, CandidateKind::Frame);
    assert_eq!(frame.score, 0.75);
    assert_reasons(frame, &["frame_model_without_digits"]);
    // Russian abbreviations in capitals are not model codes.
    assert_nothing("СТС-1234567");
}

#[test]
fn dashless_frame_needs_a_frame_word() {
    assert_nothing("AB1234567");
    assert_nothing("заказ AB1234567 оплачен");
    let d = detect("рама AB1234567");
    let frame = single(&d, CandidateKind::Frame);
    assert_eq!((frame.value.as_str(), frame.score), ("AB1234567", 0.80));
    assert_eq!(frame.reasons, ["frame_dashless", "context:рама"]);
}

#[test]
fn part_and_engine_numbers_are_not_frames() {
    assert_nothing("90919-01253");
    assert_nothing("двигатель 1ZZ-1234567");
    assert_nothing("FWLB-03-000");
    assert_nothing("2012-2015");
    assert_nothing("8-916-123-45-67");
}

#[test]
fn two_frames_are_a_conflict() {
    let d = detect("кузов NZE141-6012345 или NZE144-1234567?");
    assert_eq!(d.conflicts, ["multiple_frame:NZE141-6012345|NZE144-1234567"]);
}

// ---------------------------------------------------------------- transmission codes

#[test]
fn gearbox_marking_with_context() {
    let d = detect("маркировка коробки JF011E");
    let code = single(&d, CandidateKind::TransmissionCode);
    assert_eq!(code.value, "JF011E");
    assert_eq!(code.score, 0.85);
    assert_eq!(code.reasons, ["strength:strong", "known_family:jatco", "context:маркировка,короб"]);
    assert_eq!(d.transmission_code(PRICE_LOOKUP_MIN_SCORE), Some(code));
    assert_eq!(d.best.as_ref(), Some(code));
    assert!(d.vehicle_id(0.0).is_none());
}

#[test]
fn known_code_alone_starts_a_price_lookup() {
    for text in ["U660E есть?", "A245E", "JF011E", "6HP19 в наличии?", "RE4F04A", "4L60E", "CD4E", "AX4N", "F4A42"]
    {
        let d = detect(text);
        let code = single(&d, CandidateKind::TransmissionCode);
        assert_eq!(code.score, 0.75, "{text}");
        assert_reasons(code, &["strength:strong", "no_gearbox_context"]);
        assert!(d.transmission_code(PRICE_LOOKUP_MIN_SCORE).is_some());
    }
}

#[test]
fn codes_from_the_reference_list() {
    for (text, value, family) in [
        ("коробка 09G на пассат", "09G", "vag"),
        ("АКПП 5HP24", "5HP24", "zf"),
        ("акпп A4CF1 на солярис", "A4CF1", "hyundai_kia"),
        ("DSG DQ250", "DQ250", "vag"),
        ("вариатор RE0F10A", "RE0F10A", "jatco"),
        ("АКПП 722.6 на мерс", "722.6", "mercedes"),
        ("коробка TF-80SC вольво", "TF-80SC", "aisin"),
        ("АКПП RE4F04A-B41", "RE4F04A-B41", "jatco"),
        ("акпп A245E-02A", "A245E-02A", "aisin"),
        ("коробка 45RFE", "45RFE", "chrysler"),
    ] {
        let d = detect(text);
        let code = single(&d, CandidateKind::TransmissionCode);
        assert_eq!(code.value, value, "{text}");
        assert!(code.score >= PRICE_LOOKUP_MIN_SCORE, "{text}: {}", code.score);
        assert_reasons(code, &[&format!("known_family:{family}")]);
    }
}

#[test]
fn unknown_codes_score_by_shape_and_context() {
    let alone = detect("QR523MHA");
    let code = single(&alone, CandidateKind::TransmissionCode);
    assert_eq!((code.value.as_str(), code.score), ("QR523MHA", 0.60));
    let with_context = detect("механика QR523MHA");
    assert_eq!(single(&with_context, CandidateKind::TransmissionCode).score, 0.70);
    let weak = detect("коробка AB12");
    let code = single(&weak, CandidateKind::TransmissionCode);
    assert_eq!(code.score, CLARIFY_MIN_SCORE);
    assert_eq!(code.reasons, ["strength:weak", "context:короб"]);
    assert_eq!(single(&detect("AB12"), CandidateKind::TransmissionCode).score, 0.20);
}

#[test]
fn only_the_best_code_is_reported() {
    let d = detect("есть QR523MHA или JF011E?");
    assert_eq!(single(&d, CandidateKind::TransmissionCode).value, "JF011E");
    let d = detect("A245E или U660E");
    assert_eq!(single(&d, CandidateKind::TransmissionCode).value, "A245E");
}

#[test]
fn part_numbers_are_not_codes() {
    assert_nothing("31020-3VX2D");
    assert_nothing("нужен вариатор 31020-3VX2D на кашкай");
    assert_nothing("A2042708404");
    assert_nothing("09G300035");
}

#[test]
fn money_is_not_a_code() {
    assert_nothing("От25т.р.");
    assert_nothing("От 25т.р. до 40 т.р.");
    assert_nothing("ОТ25Т.Р.");
    assert_nothing("бюджет 25К");
    assert_nothing("за коробку 30т");
    // An unknown code next to a price is dropped; a known one is kept.
    assert_nothing("цена 25 тыс за QR523MHA");
    let d = detect("30т.р. за коробку A245E");
    assert_eq!(single(&d, CandidateKind::TransmissionCode).value, "A245E");
}

#[test]
fn cyrillic_adjacent_tokens_are_not_codes() {
    let d = detect("у меня фокус3 акпп");
    assert!(d.candidates.is_empty(), "{:?}", d.candidates);
    assert_eq!(d.gearbox_type, Some(GearboxType::Automatic));
    assert_nothing("камри40");
    assert_nothing("мазда6");
    assert_nothing("ваз2110");
}

#[test]
fn car_models_engines_and_labels_are_not_codes() {
    for text in [
        "нужна акпп на RAV4 2.0 4WD",
        "коробка на Mazda CX-5",
        "АКПП на QR25DE",
        "акпп G4KD",
        "мкпп 4G63",
        "акпп N52B30",
        "коробка K24A",
        "1NZ-FE акпп",
        "коробка 6AT",
        "акпп на E220CDI",
        "вариатор на RX350H",
        "ix35 коробка",
        "АКПП 16V",
        "коробка на BMW E90 320i",
        "коробка 4x4",
    ] {
        let d = detect(text);
        assert!(of_kind(&d, CandidateKind::TransmissionCode).is_empty(), "{text}: {:?}", d.candidates);
    }
}

#[test]
fn numbers_plates_tyres_and_decimals_are_not_codes() {
    assert_nothing("Номер А123ВС77");
    assert_nothing("резина 205/55R16");
    assert_nothing("двигатель 1.6T, 2,0TDI");
    assert_nothing("перезвоните на +7 (916) 123-45-67");
    assert_nothing("ТО-2 пройдено");
    assert_nothing("ГАЗ 3302");
    assert_nothing("пишите на ivan.petrov1985@mail.ru");
}

#[test]
fn a_vehicle_id_wins_over_a_higher_scoring_code() {
    let d = detect("XTA210990Y1234567, акпп JF011E");
    assert_eq!(single(&d, CandidateKind::TransmissionCode).score, 0.85);
    assert_eq!(best_value(&d), Some("XTA210990Y1234567"));
    // Below the lookup threshold the code is best.
    let d = detect("1HGCM82634A004352 акпп JF011E");
    assert_eq!(best_value(&d), Some("JF011E"));
}

#[test]
fn candidates_are_ordered_vins_frames_code() {
    let d = detect("акпп U341E, кузов NZE141-6012345, вин JTNBE46K803123456, JTNBE46K80312345");
    let kinds: Vec<(CandidateKind, bool)> = d.candidates.iter().map(|c| (c.kind, c.incomplete)).collect();
    assert_eq!(
        kinds,
        [
            (CandidateKind::Vin, false),
            (CandidateKind::Vin, true),
            (CandidateKind::Frame, false),
            (CandidateKind::TransmissionCode, false)
        ]
    );
    // Equal scores: the VIN goes before the FRAME.
    assert_eq!(best_value(&d), Some("JTNBE46K803123456"));
}

// ---------------------------------------------------------------- gearbox type

#[test]
fn gearbox_type_words() {
    for (text, expected) in [
        ("нужна АКПП", Some(GearboxType::Automatic)),
        ("коробка автомат", Some(GearboxType::Automatic)),
        ("автоматическая коробка", Some(GearboxType::Automatic)),
        ("МКПП", Some(GearboxType::Manual)),
        ("механика 5 ступеней", Some(GearboxType::Manual)),
        ("вариатор", Some(GearboxType::Cvt)),
        ("CVT", Some(GearboxType::Cvt)),
        ("коробка робот", Some(GearboxType::Amt)),
        ("РКПП", Some(GearboxType::Amt)),
        ("AMT", Some(GearboxType::Amt)),
        ("DSG", Some(GearboxType::Dct)),
        ("powershift", Some(GearboxType::Dct)),
        ("AT", Some(GearboxType::Automatic)),
        ("коробка MT", Some(GearboxType::Manual)),
        ("A/T", Some(GearboxType::Automatic)),
        ("М/Т", Some(GearboxType::Manual)),
        ("6AT", Some(GearboxType::Automatic)),
        ("5МТ", Some(GearboxType::Manual)),
        ("DSG7", Some(GearboxType::Dct)),
        ("automatic transmission", Some(GearboxType::Automatic)),
        ("КПП", None),
        ("коробка передач", None),
        ("механик сказал", None),
        ("автомобиль", None),
    ] {
        assert_eq!(detect(text).gearbox_type, expected, "{text}");
    }
}

#[test]
fn latin_at_and_mt_inside_words_are_not_gearbox_types() {
    for text in ["what time", "smtp server", "What is the status", "whatsapp", "Cat", "look at this", "format", "MTS"] {
        assert_eq!(detect(text).gearbox_type, None, "{text}");
    }
    // A VIN containing "AT" or "MT" says nothing about the gearbox.
    assert_eq!(detect("WATZZZ1JZ3W386752").gearbox_type, None);
}

#[test]
fn the_most_specific_gearbox_type_wins() {
    assert_eq!(detect("АКПП вариатор").gearbox_type, Some(GearboxType::Cvt));
    assert_eq!(detect("робот DSG").gearbox_type, Some(GearboxType::Dct));
    assert_eq!(detect("механика или автомат").gearbox_type, Some(GearboxType::Manual));
    assert_eq!(detect("автомат или механика").gearbox_type, Some(GearboxType::Automatic));
}

// ---------------------------------------------------------------- totality and output shape

#[test]
fn empty_and_non_text_input() {
    for text in ["", "   ", "\n\t", "😀😀😀", "👍🏻", "?!", "привет", "\u{0}\u{1}", "\u{200B}"] {
        let d = detect(text);
        assert!(d.candidates.is_empty() && d.best.is_none() && d.gearbox_type.is_none(), "{text:?}");
        assert_eq!(d.input, text);
    }
}

#[test]
fn json_matches_the_cli_contract() {
    let d = detect("маркировка JF011E, вариатор");
    let json = serde_json::to_value(&d).expect("serialises");
    assert_eq!(json["input"], "маркировка JF011E, вариатор");
    assert_eq!(json["gearbox_type"], "CVT");
    let candidate = &json["candidates"][0];
    assert_eq!(candidate["type"], "TRANSMISSION_CODE");
    assert_eq!(candidate["value"], "JF011E");
    assert_eq!(candidate["score"], 0.85);
    assert!(candidate["reasons"].is_array());
    assert!(candidate.get("incomplete").is_none());
    assert!(candidate.get("vin_info").is_none());
    assert_eq!(json["best"], *candidate);
    let nothing = serde_json::to_value(detect("спасибо")).expect("serialises");
    assert!(nothing["best"].is_null());
    assert!(nothing["gearbox_type"].is_null());
    assert_eq!(nothing["candidates"], serde_json::json!([]));
    let back: Detection = serde_json::from_value(json).expect("deserialises");
    assert_eq!(back, d);
}

#[test]
fn vin_info_enriches_vin_candidates() {
    let d = detect("вин 1HGCM82633A004352, кузов NZE141-6012345").with_vin_info(2026);
    let vin = single(&d, CandidateKind::Vin);
    let info = vin.vin_info.as_ref().expect("decoded");
    assert_eq!(info.manufacturer.as_deref(), Some("Honda"));
    assert_eq!(info.model_year, Some(2003));
    assert_eq!(d.best.as_ref().and_then(|b| b.vin_info.as_ref()), Some(info));
    assert!(single(&d, CandidateKind::Frame).vin_info.is_none());
    let json = serde_json::to_value(&d).expect("serialises");
    assert_eq!(json["candidates"][0]["vin_info"]["check_digit"], "valid");
}

/// Xorshift; enough to produce varied input deterministically.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn never_panics_and_keeps_its_invariants_on_arbitrary_input() {
    const POOL: &[&str] = &[
        "A",
        "Z",
        "I",
        "O",
        "Q",
        "0",
        "1",
        "5",
        "9",
        "-",
        "—",
        "–",
        "−",
        "‑",
        ".",
        ",",
        "/",
        ":",
        " ",
        "\n",
        "\t",
        "а",
        "А",
        "в",
        "В",
        "ф",
        "и",
        "н",
        "т",
        "р",
        "ё",
        "Ё",
        "😀",
        "👍🏻",
        "₽",
        "$",
        "€",
        "\u{0}",
        "\u{200B}",
        "\u{301}",
        "ß",
        "ǅ",
        "İ",
        "ﬃ",
        "𝟘",
        "٣",
        "中",
        "ＡＢ",
        "VIN",
        "вин",
        "акпп",
        "AT",
        "MT",
        "722.",
        "JF011E",
        "NZE141-",
        "1HGCM82633A00435",
        "т.р.",
        "кузов",
        "рама",
        "A/T",
        "6AT",
        "-----",
        "\u{FFFD}",
        "\u{10FFFF}",
    ];
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    for _ in 0..20_000 {
        let mut text = String::new();
        for _ in 0..rng.below(40) {
            if rng.below(10) == 0 {
                text.push(char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('?'));
            } else {
                text.push_str(POOL[rng.below(POOL.len())]);
            }
        }
        let d = detect(&text);
        assert_eq!(d.input, text);
        for c in &d.candidates {
            assert!((0.0..=1.0).contains(&c.score), "{text:?}: {c:?}");
            assert!(!c.value.is_empty() && c.value.is_ascii(), "{text:?}: {c:?}");
            assert!(!c.reasons.is_empty(), "{text:?}: {c:?}");
        }
        if let Some(best) = &d.best {
            assert!(d.candidates.contains(best), "{text:?}");
        }
        assert_eq!(d.best.is_none(), d.candidates.is_empty(), "{text:?}");
        assert!(of_kind(&d, CandidateKind::TransmissionCode).len() <= 1);
        assert!(serde_json::to_string(&d).is_ok());
    }
}

#[test]
fn handles_long_input() {
    let long = "коробка JF011E ".repeat(10_000) + "вин JTNBE46K803123456";
    let d = detect(&long);
    assert_eq!(best_value(&d), Some("JTNBE46K803123456"));
    let one_word = "A".repeat(100_000);
    assert_nothing(&one_word);
    let many = "вин JTNBE46K803123456, кузов NZE141-6012345; ".repeat(5_000);
    assert_eq!(detect(&many).candidates.len(), 2);
}

/// Text, expected gearbox type, expected best value and score.
type Case = (&'static str, Option<GearboxType>, Option<(&'static str, f64)>);

#[test]
fn realistic_messages() {
    let cases: &[Case] = &[
        ("Добрый день! Есть ли в наличии АКПП на Kia Rio 2017 1.6 AT?", Some(GearboxType::Automatic), None),
        ("Нужна коробка на Hyundai Solaris 2015, двигатель G4FC, пробег 120 тыс км", None, None),
        ("Toyota Camry ACV40 2.4 2AZ-FE АКПП U241E", Some(GearboxType::Automatic), Some(("U241E", 0.85))),
        ("Nissan Qashqai J10 MR20DE вариатор JF011E", Some(GearboxType::Cvt), Some(("JF011E", 0.85))),
        ("заказ №12345678 от 12.03.2024", None, None),
        ("Номер заказа AB123456789", None, None),
        ("VIN: X7LHSRH8N52345678", None, Some(("X7LHSRH8N52345678", 0.85))),
        ("Тойота Королла 150 кузов, 1ZR, вариатор K311, сколько?", Some(GearboxType::Cvt), Some(("K311", 0.75))),
        ("Лада Веста 1.6 робот AMT 21827", Some(GearboxType::Amt), None),
        ("Ниссан Ноут E11 HR15DE вариатор RE0F11A цена?", Some(GearboxType::Cvt), Some(("RE0F11A", 0.85))),
        ("привет, нужна мкпп 5 ступ. на ладу гранту 2190", Some(GearboxType::Manual), None),
        ("перезвоните 8 (916) 123-45-67, Иван", None, None),
        ("Спасибо, оплатил 45 000 ₽, жду трек-номер", None, None),
    ];
    for (text, gearbox, best) in cases {
        let d = detect(text);
        assert_eq!(d.gearbox_type, *gearbox, "{text}");
        assert_eq!(d.best.as_ref().map(|b| (b.value.as_str(), b.score)), *best, "{text}: {:?}", d.candidates);
    }
}

// ---------------------------------------------------------------- whole-message frames, 18-character VINs

#[test]
fn a_dashless_frame_sent_alone_is_a_frame() {
    for (text, value) in [
        ("EU11105303", "EU11105303"),
        ("SCP110067053", "SCP110067053"),
        (" scp110067053 \n", "SCP110067053"),
        ("EU11105303.", "EU11105303"),
    ] {
        let d = detect(text);
        let frame = single(&d, CandidateKind::Frame);
        assert_eq!((frame.value.as_str(), frame.score), (value, 0.80), "{text:?}");
        assert_eq!(frame.reasons, ["frame_dashless", "frame_whole_message"]);
        assert_eq!(d.vehicle_id(VEHICLE_LOOKUP_MIN_SCORE), Some(frame), "{text:?}");
        assert!(d.transmission_code(0.0).is_none(), "{text:?}: {:?}", d.candidates);
    }
    // With a frame word the usual rule applies.
    let d = detect("рама EU11105303");
    assert_eq!(single(&d, CandidateKind::Frame).reasons, ["frame_dashless", "context:рама"]);
    // Among other words, or too few digits for a model number and a serial: not a frame.
    assert_nothing("AB1234567");
    assert_nothing("заказ EU11105303");
    assert_nothing("EU11105303 и SCP110067053");
}

#[test]
fn a_vin_inside_eighteen_characters_is_a_guess_to_confirm() {
    let d = detect("1HGCM82633A0043527");
    let vin = single(&d, CandidateKind::Vin);
    assert_eq!(vin.value, "1HGCM82633A004352");
    assert_eq!(vin.score, 0.60);
    assert!(vin.needs_confirmation);
    assert_eq!(vin.reasons, ["vin_in_18_char_run", "extra_char:end:7", "checksum_valid", "needs_confirmation"]);
    assert!(d.vehicle_id(0.0).is_none(), "never looked up before the customer confirms");
    assert_eq!(d.vin_to_confirm(), Some(vin));
    assert_eq!(d.best.as_ref(), Some(vin));
    assert!(d.conflicts.is_empty());
    let json = serde_json::to_value(&d).expect("serialises");
    assert_eq!(json["best"]["needs_confirmation"], true);

    let d = detect("VIN: X1HGCM82633A004352");
    let vin = single(&d, CandidateKind::Vin);
    assert_eq!(vin.value, "1HGCM82633A004352");
    assert_eq!(&vin.reasons[..2], ["vin_in_18_char_run", "extra_char:start:X"]);
    assert!(vin.score > 0.60 && vin.score < VEHICLE_LOOKUP_MIN_SCORE, "context raises it, not to a lookup");

    // A real VIN elsewhere in the message wins, and nothing is left to confirm.
    let d = detect("1HGCM82633A0043527 или JTNBE46K803123456");
    assert_eq!(best_value(&d), Some("JTNBE46K803123456"));
    assert!(d.vin_to_confirm().is_none());
    // No window with a valid check digit, or both: nothing.
    assert_nothing("JTNBE46K8031234567");
    let plain = detect("JTNBE46K803123456");
    assert!(!serde_json::to_string(&plain).unwrap().contains("needs_confirmation"));
}

#[test]
fn a_code_alone_starts_a_price_lookup() {
    let d = detect("нужна коробка A245E");
    assert_eq!(d.price_lookup_code().map(|c| c.value.as_str()), Some("A245E"));
    let weak = detect("есть 09G?");
    assert!(weak.price_lookup_code().is_none(), "a weak code is asked about, not priced");
}

#[test]
fn a_vin_that_starts_a_vehicle_lookup_wins_over_a_code() {
    let d = detect("VIN JTNBE46K803123456, коробка A245E");
    assert!(d.vehicle_id(VEHICLE_LOOKUP_MIN_SCORE).is_some());
    assert_eq!(d.transmission_code(PRICE_LOOKUP_MIN_SCORE).map(|c| c.value.as_str()), Some("A245E"));
    assert!(d.price_lookup_code().is_none(), "the vehicle lookup asks for the price with the OEM number");
}

#[test]
fn a_code_next_to_an_incomplete_vin_still_starts_a_price_lookup() {
    let d = detect("JTNBE46K80312345 коробка A245E");
    assert!(d.vehicle_id(VEHICLE_LOOKUP_MIN_SCORE).is_none());
    assert_eq!(d.price_lookup_code().map(|c| c.value.as_str()), Some("A245E"));
}
