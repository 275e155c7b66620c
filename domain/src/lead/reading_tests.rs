//! Reading form bodies: the shapes senders post (fixtures in `tests/fixtures/leads/`), the
//! old extraction table, lead kinds and duplicate fingerprints.

use serde_json::{Value, json};

use super::*;
use crate::detect::GearboxType;
use crate::vehicle_lookup::IdType;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/leads/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `application/x-www-form-urlencoded` decoding, as the webhook route does it.
fn decode_form(body: &str) -> Vec<(String, String)> {
    fn unescape(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    out.push(u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap(), 16).unwrap());
                    i += 2;
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8(out).unwrap()
    }
    body.trim()
        .split('&')
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .map(|(k, v)| (unescape(k), unescape(v)))
        .collect()
}

fn submission(body: Value) -> Submission {
    match parse_json(&body).unwrap() {
        FormBody::Submission(s) => *s,
        FormBody::Test => panic!("read as a test request"),
    }
}

fn fields(body: Value) -> LeadFields {
    LeadFields::extract(&submission(body), None)
}

fn json_fixture(name: &str) -> LeadFields {
    LeadFields::extract(&submission(serde_json::from_str(&fixture(name)).unwrap()), Some("Форма сайта"))
}

fn phone(f: &LeadFields) -> Option<&str> {
    f.phone.as_ref().map(Phone::digits)
}

#[test]
fn a_current_marquiz_gearbox_quiz_is_read_whole() {
    let body: Value = serde_json::from_str(&fixture("marquiz_gearbox.json")).unwrap();
    let s = submission(body);
    assert_eq!(s.format, SubmissionFormat::Marquiz);
    assert_eq!(s.form_ref.as_deref(), Some("65f1a2b3c4d5e6f7a8b9c0d1"));
    assert_eq!(s.submitted_at.as_deref(), Some("2026-03-02T07:15:23.512Z"));
    assert_eq!(s.answers.len(), 5, "`raw` is only read when `answers` is missing");
    let f = LeadFields::extract(&s, None);
    assert_eq!(f.form_name, "Подбор контрактной КПП");
    assert_eq!(f.client_name.as_deref(), Some("Иван"));
    assert_eq!(phone(&f), Some("79991234567"));
    assert_eq!(f.phone_raw.as_deref(), Some("+7 (999) 123-45-67"));
    assert_eq!(f.email.as_deref(), Some("ivan@example.ru"));
    assert_eq!(f.gearbox_type.as_deref(), Some("Автомат (АКПП)"));
    assert_eq!(f.gearbox_code, Some(GearboxType::Automatic));
    assert_eq!(f.car.as_deref(), Some("Toyota Camry 2015"), "the gearbox question mentions the car but is taken");
    assert_eq!(f.vin.as_deref(), Some("JTNBE46K803123456"), "normalised by the detector");
    assert_eq!(f.vin_type, Some(IdType::Vin));
    assert_eq!(f.city.as_deref(), Some("Казань"));
    assert_eq!(f.preferred_channel, None);
    assert_eq!(f.kind(), LeadKind::Gearbox);
    assert_eq!(f.raw_fields[4], ("что нужно сделать?".into(), "Купить контрактную КПП, Установка".into()));
    let tracking: Vec<&str> = f.tracking.iter().map(|(k, _)| k.as_str()).collect();
    assert!(tracking.contains(&"utm source") && tracking.contains(&"href"), "{tracking:?}");
    assert!(!tracking.iter().any(|k| k.contains("cookie") || k.contains("ym uid")), "cookies are dropped");
}

#[test]
fn marquiz_answers_may_be_numbers_lists_or_objects() {
    let f = json_fixture("marquiz_engine.json");
    assert_eq!(f.form_name, "Подбор двигателя");
    assert_eq!(f.engine_type.as_deref(), Some("Бензиновый"));
    assert_eq!(f.engine_volume.as_deref(), Some("2.4"), "a number answer");
    assert_eq!(f.engine_model.as_deref(), Some("2AZ-FE"));
    assert_eq!(f.car.as_deref(), Some("Toyota RAV4 2008"));
    assert_eq!(f.city.as_deref(), Some("Новосибирск"));
    assert_eq!(f.max_phone.as_ref().map(Phone::digits), Some("79130001122"), "the MAX question");
    assert_eq!(f.preferred_channel, Some(PreferredChannel::Max), "extra.messenger");
    assert_eq!(f.kind(), LeadKind::Engine);

    let f = fields(json!({
        "contacts": {"phone": "+79991234567"},
        "answers": [
            {"q": "Что нужно?", "a": ["АКПП", "Гидроблок"]},
            {"q": {"id": 1, "title": "Коробка"}, "a": {"id": 3, "text": "Робот"}},
            {"q": "Год", "a": 2012},
            {"q": "Пусто", "a": null},
        ],
        "quiz": {"id": 1}
    }));
    assert_eq!(f.raw_fields[0].1, "АКПП, Гидроблок");
    assert_eq!(f.gearbox_type.as_deref(), Some("Робот"));
    assert_eq!(f.raw_fields[2].1, "2012");
    assert_eq!(f.raw_fields.len(), 3, "an empty answer is no answer");
    assert_eq!(f.form_name, "Квиз", "a quiz object without a name");
}

#[test]
fn marquiz_raw_answers_are_read_when_answers_are_missing() {
    let f = fields(json!({
        "contacts": {"phone": "89991234567"},
        "raw": [{"q": {"title": "Тип КПП"}, "a": {"text": "Механика"}}, {"q": "Город", "a": "Омск"}],
        "quiz": "Подбор КПП"
    }));
    assert_eq!(f.gearbox_type.as_deref(), Some("Механика"));
    assert_eq!(f.city.as_deref(), Some("Омск"));
    assert_eq!(f.form_name, "Подбор КПП", "a quiz given as a string");
}

#[test]
fn legacy_marquiz_results_are_read_by_name_prefix() {
    let s = submission(serde_json::from_str(&fixture("marquiz_legacy.json")).unwrap());
    assert_eq!(s.format, SubmissionFormat::MarquizLegacy);
    assert_eq!(s.legacy.len(), 4, "a result without a value is skipped");
    let f = LeadFields::extract(&s, None);
    assert_eq!(phone(&f), Some("79167654321"), "top-level phone");
    assert_eq!(f.client_name.as_deref(), Some("Пётр"), "top-level name");
    assert_eq!(f.gearbox_type.as_deref(), Some("Механика"), "prefix `тип кпп`");
    assert_eq!(f.car.as_deref(), Some("Lada Vesta"));
    assert_eq!(f.vin.as_deref(), Some("XTAGFL110JY123456"));
    assert_eq!(f.city.as_deref(), Some("Тула"), "`Город доставки` starts with `город`");
    assert_eq!(f.form_name, "Подбор КПП");

    let f = fields(json!({"phone": "+79990000000", "results": [
        {"name": "Тип двигателя", "value": "Дизель"},
        {"name": "Объём", "value": "3.0"},
        {"name": "Модель двигателя", "value": "1KD-FTV"},
        {"name": "Сезон", "value": "Лето"},
        {"name": "Удобнее подобрать", "value": "По авто"},
        {"name": "Ширина", "value": "265"},
        {"name": "Высота", "value": "65"},
        {"name": "Диаметр", "value": "17"},
    ]}));
    assert_eq!(f.engine_type.as_deref(), Some("Дизель"));
    assert_eq!(f.engine_volume.as_deref(), Some("3.0"));
    assert_eq!(f.engine_model.as_deref(), Some("1KD-FTV"));
    assert_eq!(f.tire_season.as_deref(), Some("Лето"));
    assert_eq!(f.tire_method.as_deref(), Some("По авто"));
    assert_eq!(
        (f.tire_width.as_deref(), f.tire_height.as_deref(), f.tire_diameter.as_deref()),
        (Some("265"), Some("65"), Some("17"))
    );
    assert_eq!(f.form_name, "Квиз");
}

#[test]
fn answers_win_over_legacy_results_and_keywords_are_tried_in_order() {
    let f = fields(json!({
        "contacts": {"phone": "+79990000000"},
        "answers": [
            {"q": "Коробка передач нужна с установкой?", "a": "Да"},
            {"q": "Тип коробки", "a": "Автомат"},
            {"q": "Ваш город", "a": "Пермь"},
        ],
        "results": [{"name": "Тип КПП", "value": "Механика"}, {"name": "Город", "value": "Уфа"}]
    }));
    assert_eq!(f.gearbox_type.as_deref(), Some("Автомат"), "`тип коробки` is tried before `коробка передач`");
    assert_eq!(f.city.as_deref(), Some("Пермь"), "answers before legacy results");
}

#[test]
fn every_field_of_the_table_has_its_keywords() {
    let f = fields(json!({
        "contacts": {"phone": "+79990000000"},
        "answers": [
            {"q": "Вид двигателя", "a": "Гибрид"},
            {"q": "Объем мотора", "a": "1.8"},
            {"q": "Маркировка двигателя", "a": "2ZR-FXE"},
            {"q": "Марка и год", "a": "Toyota Prius 2016"},
            {"q": "Номер кузова", "a": "ZVW50-6012345"},
            {"q": "Комплект шин", "a": "Всесезонные"},
            {"q": "Способ подбора", "a": "По размеру"},
        ]
    }));
    assert_eq!(f.engine_type.as_deref(), Some("Гибрид"));
    assert_eq!(f.engine_volume.as_deref(), Some("1.8"));
    assert_eq!(f.engine_model.as_deref(), Some("2ZR-FXE"));
    assert_eq!(f.car.as_deref(), Some("Toyota Prius 2016"));
    assert_eq!((f.vin.as_deref(), f.vin_type), (Some("ZVW50-6012345"), Some(IdType::Frame)));
    assert_eq!(f.tire_season.as_deref(), Some("Всесезонные"));
    assert_eq!(f.tire_method.as_deref(), Some("По размеру"));
}

#[test]
fn the_vin_goes_through_the_detector() {
    let vin = |a: &str| fields(json!({"contacts": {"phone": "+79990000000"}, "answers": [{"q": "VIN", "a": a}]})).vin;
    assert_eq!(vin(" xtagfl110jy123456 ").as_deref(), Some("XTAGFL110JY123456"));
    assert_eq!(vin("ХТАGFL110JY123456").as_deref(), Some("XTAGFL110JY123456"), "Cyrillic look-alikes");
    assert_eq!(vin("не знаю"), None, "not a VIN: no VIN");
    assert_eq!(vin("XTAGFL110JY12345"), None, "16 characters: no VIN");
    let f = fields(json!({
        "contacts": {"phone": "+79990000000"},
        "answers": [{"q": "Комментарий", "a": "Нужна коробка, вин XTAGFL110JY123456, срочно"}]
    }));
    assert_eq!(f.vin.as_deref(), Some("XTAGFL110JY123456"), "found in another answer when no VIN field has one");
}

#[test]
fn contacts_follow_the_reference_priorities() {
    // contacts.phone before the top-level phone; contacts.name before the top-level name.
    let f = fields(json!({
        "contacts": {"phone": "8 999 111-22-33", "name": " Иван  Петров "},
        "phone": "+79990000000", "name": "Другой",
        "answers": [{"q": "Марка авто", "a": "Audi"}]
    }));
    assert_eq!(phone(&f), Some("79991112233"));
    assert_eq!(f.client_name.as_deref(), Some("Иван Петров"));
    // No name anywhere.
    let f = fields(json!({"contacts": {"phone": "+79991112233"}, "answers": [{"q": "Марка авто", "a": "Audi"}]}));
    assert_eq!(f.client_name, None);
    // A phone too short is no phone (the old rule: at least 10 digits).
    let f = fields(json!({"contacts": {"phone": "12-34-56"}, "answers": [{"q": "Марка авто", "a": "Audi"}]}));
    assert_eq!((phone(&f), f.phone_raw.as_deref()), (None, Some("12-34-56")));
    // A second phone is kept as an answer.
    let f = fields(json!({"phone": "+79991112233", "phone_2": "+79994445566"}));
    assert_eq!(phone(&f), Some("79991112233"));
    assert_eq!(f.raw_fields, vec![("phone_2".to_string(), "+79994445566".to_string())]);
    // A phone asked as a quiz question.
    let f = fields(json!({"contacts": {}, "answers": [{"q": "Ваш телефон", "a": "+7 999 765 43 21"}]}));
    assert_eq!(phone(&f), Some("79997654321"));
}

#[test]
fn telegram_usernames_are_checked_and_a_phone_there_is_refused() {
    let f = json_fixture("marquiz_telegram_only.json");
    assert_eq!(f.telegram.as_ref().map(TelegramUsername::as_str), Some("anna_qashqai"), "contacts before answers");
    assert_eq!(f.preferred_channel, Some(PreferredChannel::Telegram), "a username and no phone");
    assert_eq!(phone(&f), None);
    assert!(f.contact().is_reachable());

    let f = json_fixture("marquiz_phone_in_telegram.json");
    assert_eq!(f.telegram, None, "a phone typed as the username is refused");
    assert_eq!(phone(&f), None);
    assert!(!f.contact().is_reachable(), "nothing to write to: a failed lead");

    let tg = |contacts: Value, answers: Value| {
        fields(json!({"contacts": contacts, "answers": answers})).telegram.map(|t| t.as_str().to_string())
    };
    assert_eq!(
        tg(json!({"phone": "+79990000000"}), json!([{"q": "Ваш Telegram", "a": "@ivan_k"}])).as_deref(),
        Some("ivan_k")
    );
    assert_eq!(tg(json!({}), json!([{"q": "Юзернейм", "a": "petr_ivanov"}])).as_deref(), Some("petr_ivanov"));
    assert_eq!(tg(json!({}), json!([{"q": "Username", "a": "@abc"}])), None, "shorter than 5");
    assert_eq!(
        tg(json!({"telegram": "@abcd"}), json!([{"q": "Телеграм", "a": "good_name"}])).as_deref(),
        Some("good_name")
    );
}

#[test]
fn the_max_number_comes_from_contacts_then_max_questions() {
    let max = |body: Value| fields(body).max_phone.map(|p| p.digits().to_string());
    assert_eq!(
        max(json!({"contacts": {"phone": "+79990000000", "max": "8 900 111 22 33"}})).as_deref(),
        Some("79001112233")
    );
    assert_eq!(
        max(json!({"contacts": {"phone": "+79990000000"}, "answers": [
            {"q": "Есть ли у вас MAX?", "a": "Да"},
            {"q": "Ваш номер MAX", "a": "+7 900 444 55 66"},
        ]}))
        .as_deref(),
        Some("79004445566"),
        "an answer that is not a number is skipped"
    );
    let f = fields(json!({"contacts": {"phone": "+79990000000"}}));
    assert_eq!(f.max_phone, None);
    assert_eq!(f.contact().green_api_phone().map(Phone::digits), Some("79990000000"), "the phone stands in");
}

#[test]
fn the_preferred_channel_follows_the_reference_rule() {
    let pref = |body: Value| fields(body).preferred_channel;
    let phone = json!("+79990000000");
    assert_eq!(
        pref(json!({"contacts": {"phone": phone}, "extra": {"messenger": "Telegram"}})),
        Some(PreferredChannel::Telegram)
    );
    assert_eq!(
        pref(json!({"contacts": {"telegram": "@ivan_k"}})),
        Some(PreferredChannel::Telegram),
        "username, no phone"
    );
    assert_eq!(
        pref(json!({"contacts": {"telegram": "@ivan_k", "phone": phone}})),
        None,
        "username and phone: automatic"
    );
    assert_eq!(pref(json!({"contacts": {"phone": phone}, "extra": {"messenger": "max"}})), Some(PreferredChannel::Max));
    assert_eq!(pref(json!({"contacts": {"phone": phone, "max": phone}})), Some(PreferredChannel::Max));
    assert_eq!(
        pref(json!({"contacts": {"phone": phone}, "extra": {"messenger": "whatsapp"}})),
        Some(PreferredChannel::Whatsapp)
    );
    assert_eq!(pref(json!({"contacts": {"whatsapp": phone}})), Some(PreferredChannel::Whatsapp));
    assert_eq!(pref(json!({"contacts": {"phone": phone}, "extra": {"messenger": "Позвонить"}})), None);
    assert_eq!(pref(json!({"contacts": {"phone": phone}})), None);
}

#[test]
fn raw_fields_keep_every_answer_lower_cased_and_cut() {
    let long = "Очень длинный вопрос про коробку передач, который никак не помещается в шестьдесят символов";
    let f = fields(
        json!({"contacts": {"phone": "+79990000000"}, "answers": [{"q": long, "a": "Ответ"}, {"q": "VIN", "a": "нет"}]}),
    );
    assert_eq!(f.raw_fields[0].0, long.to_lowercase().chars().take(60).collect::<String>());
    assert_eq!(f.raw_fields[1], ("vin".into(), "нет".into()), "kept as typed even when not a VIN");
}

#[test]
fn lead_kinds_follow_the_form_name_then_the_fields() {
    let kind = |quiz: &str, answers: Value| {
        fields(json!({"contacts": {"phone": "+79990000000"}, "quiz": {"name": quiz}, "answers": answers})).kind()
    };
    let none = json!([]);
    assert_eq!(kind("Подбор шин", none.clone()), LeadKind::Tires);
    assert_eq!(kind("Летняя резина", none.clone()), LeadKind::Tires);
    assert_eq!(kind("Колёса в сборе", none.clone()), LeadKind::Tires);
    assert_eq!(kind("Контрактный двигатель", none.clone()), LeadKind::Engine);
    assert_eq!(kind("Мотор под ключ", none.clone()), LeadKind::Engine);
    assert_eq!(kind("Квиз", json!([{"q": "Ширина", "a": "205"}])), LeadKind::Tires, "a tire field");
    assert_eq!(kind("Квиз", json!([{"q": "Сезон", "a": "Зима"}])), LeadKind::Tires);
    assert_eq!(kind("Квиз", json!([{"q": "Объём двигателя", "a": "2.0"}])), LeadKind::Engine, "an engine field");
    assert_eq!(kind("Квиз", json!([{"q": "Марка авто", "a": "Kia"}])), LeadKind::Gearbox, "the default");
    assert_eq!(
        kind("Подбор АКПП", json!([{"q": "Объём двигателя", "a": "2.0"}])),
        LeadKind::Gearbox,
        "a gearbox quiz asking the engine volume stays a gearbox lead"
    );
    assert_eq!(kind("Подбор двигателя", json!([{"q": "Сезон", "a": "Зима"}])), LeadKind::Engine);
}

#[test]
fn tilda_form_fields_are_read() {
    let FormBody::Submission(s) = parse_form(&decode_form(&fixture("tilda.txt"))).unwrap() else { panic!() };
    assert_eq!(s.format, SubmissionFormat::Form);
    let f = LeadFields::extract(&s, Some("Сайт"));
    assert_eq!(f.client_name.as_deref(), Some("Мария"));
    assert_eq!(phone(&f), Some("79031112233"));
    assert_eq!(f.email.as_deref(), Some("maria@example.ru"));
    assert_eq!(f.car.as_deref(), Some("Kia Sportage 2017"), "`Марка_авто`");
    assert_eq!(f.vin.as_deref(), Some("Z94CB41AAGR323020"));
    assert_eq!(f.city.as_deref(), Some("Самара"));
    assert_eq!((f.gearbox_type.as_deref(), f.gearbox_code), (Some("Робот"), Some(GearboxType::Amt)));
    assert_eq!(f.form_name, "Заявка на КПП", "`formname`");
    let tracking: Vec<&str> = f.tracking.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(tracking, ["tranid", "formid", "utm source", "utm medium"], "COOKIES are dropped");
    assert_eq!(f.raw_fields.len(), 4);
}

#[test]
fn generic_json_is_read_flat_nested_or_as_pairs() {
    let f = json_fixture("generic_nested.json");
    assert_eq!(f.client_name.as_deref(), Some("Алексей Смирнов"), "first and last name");
    assert_eq!(phone(&f), Some("79210001234"));
    assert_eq!(f.email.as_deref(), Some("alex@example.org"));
    assert_eq!(f.car.as_deref(), Some("Volkswagen Tiguan 2019"), "a nested car object is one answer");
    assert_eq!(f.gearbox_code, Some(GearboxType::Dct));
    assert_eq!(f.city.as_deref(), Some("Санкт-Петербург"));
    assert_eq!(f.vin.as_deref(), Some("WVGZZZ5NZKW123456"), "from the comment");
    assert_eq!(f.form_name, "Обратный звонок", "`form.title`");
    assert!(f.tracking.iter().any(|(k, v)| k == "meta page" && v.starts_with("https://")), "{:?}", f.tracking);
    assert!(!f.raw_fields.iter().any(|(k, _)| k.contains("name")), "names are contacts, not answers");

    let f = json_fixture("generic_english.json");
    assert_eq!(f.client_name.as_deref(), Some("John Smith"));
    assert_eq!(phone(&f), Some("442079460958"));
    assert_eq!(f.email.as_deref(), Some("john@example.co.uk"));
    assert_eq!(f.car.as_deref(), Some("BMW X5 E70"));
    assert_eq!(f.gearbox_code, Some(GearboxType::Automatic));
    assert_eq!(f.city.as_deref(), Some("London"));
    assert_eq!(f.telegram.as_ref().map(TelegramUsername::as_str), Some("john_smith_uk"));
    assert_eq!(f.preferred_channel, Some(PreferredChannel::Telegram));
    assert_eq!(f.form_name, "Форма сайта", "the lead form's name");

    let f = json_fixture("generic_pairs.json");
    assert_eq!(f.client_name.as_deref(), Some("Ирина"));
    assert_eq!(phone(&f), Some("79261112233"), "a 10-digit number is Russian");
    assert_eq!(f.car.as_deref(), Some("Renault Logan"));
    assert_eq!(f.gearbox_type.as_deref(), Some("Механика"));
    assert_eq!(f.raw_fields.len(), 2, "`_wpcf7` is the form plugin's, dropped");
}

#[test]
fn a_car_asked_as_make_model_and_year_is_one_car() {
    let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    let car = |p: &[(&str, &str)]| match parse_form(&pairs(p)).unwrap() {
        FormBody::Submission(s) => LeadFields::extract(&s, None).car,
        FormBody::Test => unreachable!(),
    };
    let phone = ("Phone", "+79990000000");
    assert_eq!(
        car(&[phone, ("Марка", "Kia"), ("Модель", "Rio"), ("Год_выпуска", "2015")]).as_deref(),
        Some("Kia Rio 2015")
    );
    assert_eq!(
        car(&[phone, ("car_make", "Toyota"), ("car_model", "Corolla"), ("year", "2012")]).as_deref(),
        Some("Toyota Corolla 2012")
    );
    assert_eq!(
        car(&[phone, ("Марка авто", "Kia Rio 2015"), ("Год выпуска", "2015")]).as_deref(),
        Some("Kia Rio 2015"),
        "a full answer is not extended"
    );
    assert_eq!(
        car(&[phone, ("Марка", "Kia"), ("Модель двигателя", "G4FC")]).as_deref(),
        Some("Kia"),
        "an engine model is not the car's"
    );
}

#[test]
fn marquiz_answers_given_as_an_object_are_read() {
    let f = fields(json!({
        "contacts": {"phone": "+79990000000"},
        "answers": {"Марка авто": "Kia Ceed", "Тип КПП": "Автомат", "Пусто": ""},
        "quiz": {"name": "КПП"}
    }));
    assert_eq!((f.car.as_deref(), f.gearbox_type.as_deref()), (Some("Kia Ceed"), Some("Автомат")));
    assert_eq!(f.raw_fields.len(), 2);
    let f = fields(json!({
        "contacts": {"phone": "+79990000000"},
        "answers": [{"name": "Город", "value": "Томск"}, {"name": "Пусто", "value": ""}]
    }));
    assert_eq!((f.city.as_deref(), f.raw_fields.len()), (Some("Томск"), 1), "name/value answers");
}

#[test]
fn bracketed_form_names_are_read_as_nested_json() {
    let pairs: Vec<(String, String)> = [
        ("contacts[name]", "Олег"),
        ("contacts[phone]", "+7 999 222-33-44"),
        ("answers[0][q]", "Тип КПП"),
        ("answers[0][a]", "Автомат"),
        ("answers[1][q]", "Марка авто"),
        ("answers[1][a]", "Mazda 6"),
        ("quiz[name]", "Подбор КПП"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let FormBody::Submission(s) = parse_form(&pairs).unwrap() else { panic!() };
    assert_eq!(s.format, SubmissionFormat::Form);
    let f = LeadFields::extract(&s, None);
    assert_eq!((f.client_name.as_deref(), phone(&f)), (Some("Олег"), Some("79992223344")));
    assert_eq!((f.gearbox_type.as_deref(), f.car.as_deref()), (Some("Автомат"), Some("Mazda 6")));
    assert_eq!(f.form_name, "Подбор КПП");
}

#[test]
fn field_names_are_matched_without_case_spacing_or_underscores() {
    let pairs: Vec<(String, String)> = [
        ("ИМЯ", "Вера"),
        ("телефон ", "8-999-333-44-55"),
        ("марка  авто", "Ford Focus"),
        ("ТИП_КПП", "Механика"),
        ("ваш-город", "Курск"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let FormBody::Submission(s) = parse_form(&pairs).unwrap() else { panic!() };
    let f = LeadFields::extract(&s, None);
    assert_eq!((f.client_name.as_deref(), phone(&f)), (Some("Вера"), Some("79993334455")));
    assert_eq!((f.car.as_deref(), f.gearbox_type.as_deref()), (Some("Ford Focus"), Some("Механика")));
    assert_eq!(f.city.as_deref(), Some("Курск"));
    assert_eq!(f.form_name, "Заявка");
}

#[test]
fn unreadable_bodies_are_errors_and_readable_ones_without_contacts_are_not() {
    for body in [json!("text"), json!(42), json!(null), json!([1, 2]), json!([])] {
        assert_eq!(parse_json(&body), Err(SubmissionError::NotAnObject), "{body}");
    }
    for body in [
        json!({}),
        json!({"utm_source": "google", "tranid": "1:2"}),
        json!({"name": null, "phone": ""}),
        json!({"contacts": {}, "answers": []}),
        json!({"quiz": {"id": "x", "name": "Квиз"}, "created": "2026-03-02T00:00:00Z"}),
    ] {
        assert_eq!(parse_json(&body), Err(SubmissionError::Empty), "{body}");
    }
    assert_eq!(parse_form(&[]), Err(SubmissionError::Empty));
    assert_eq!(parse_form(&[("COOKIES".into(), "a=b".into())]), Err(SubmissionError::Empty));
    // A comment and no contact: a submission (the lead fails with `no_contact_info`).
    let f = fields(json!({"comment": "Перезвоните"}));
    assert!(!f.contact().is_reachable());
}

#[test]
fn a_webhook_check_is_not_a_lead() {
    assert_eq!(parse_form(&[("test".into(), "test".into())]), Ok(FormBody::Test));
    assert_eq!(parse_json(&json!({"test": "test"})), Ok(FormBody::Test));
    assert!(matches!(
        parse_form(&[("test".into(), "test".into()), ("Phone".into(), "+79990000000".into())]),
        Ok(FormBody::Submission(_))
    ));
}

#[test]
fn fingerprints_ignore_key_order_spacing_case_and_tracking() {
    let a = submission(json!({
        "contacts": {"name": "Иван", "phone": "+7 (999) 123-45-67"},
        "answers": [{"q": "Тип КПП", "a": "Автомат"}, {"q": "Марка авто", "a": "Toyota  Camry"}],
        "quiz": {"id": "q1", "name": "Подбор КПП"},
        "created": "2026-03-02T07:15:23Z",
        "extra": {"utm": {"source": "yandex"}}
    }));
    let b = submission(json!({
        "quiz": {"name": "Подбор КПП", "id": "q1"},
        "answers": [{"q": "марка авто ", "a": "toyota camry"}, {"q": "Тип КПП", "a": " Автомат"}],
        "contacts": {"phone": "89991234567", "name": "иван"},
        "created": "2026-03-02T07:16:40Z",
        "extra": {"utm": {"source": "google"}, "href": "https://other.page/"}
    }));
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_eq!(a.fingerprint().as_str().len(), 32);
    let c = submission(json!({
        "contacts": {"name": "Иван", "phone": "+7 (999) 123-45-67"},
        "answers": [{"q": "Тип КПП", "a": "Механика"}, {"q": "Марка авто", "a": "Toyota Camry"}],
        "quiz": {"id": "q1", "name": "Подбор КПП"}
    }));
    assert_ne!(a.fingerprint(), c.fingerprint(), "another answer");
    let d = submission(json!({
        "contacts": {"name": "Иван", "phone": "+7 (999) 123-45-68"},
        "answers": [{"q": "Тип КПП", "a": "Автомат"}, {"q": "Марка авто", "a": "Toyota Camry"}],
        "quiz": {"id": "q1", "name": "Подбор КПП"}
    }));
    assert_ne!(a.fingerprint(), d.fingerprint(), "another contact");
    let tilda = decode_form(&fixture("tilda.txt"));
    let mut reordered = tilda.clone();
    reordered.reverse();
    reordered.retain(|(k, _)| k != "tranid");
    let fp = |pairs: &[(String, String)]| match parse_form(pairs).unwrap() {
        FormBody::Submission(s) => s.fingerprint(),
        FormBody::Test => unreachable!(),
    };
    assert_eq!(fp(&tilda), fp(&reordered), "field order and the transaction id do not count");
}

#[test]
fn a_form_key_of_a_million_brackets_is_read_without_nesting_that_deep() {
    // Found by fuzzing: `a[[[[…` nested one level per bracket and overflowed the stack.
    let key = format!("a{}", "[".repeat(1_000_000));
    let pairs = vec![("phone".to_string(), "+79991234567".to_string()), (key, "x".to_string())];
    let FormBody::Submission(s) = parse_form(&pairs).expect("read") else { panic!("not a submission") };
    assert_eq!(s.contacts.phone.as_deref(), Some("+79991234567"));

    let deep = vec![("a[b][c][d][e][f][g][h][i][j][k][l]".to_string(), "x".to_string())];
    assert!(parse_form(&deep).is_ok(), "a deep key is kept as one name below the depth read");
}
