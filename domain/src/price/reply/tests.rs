//! Replies: the texts of the old system, margins on every path, no made-up prices.

use chrono::TimeZone;

use super::*;
use crate::price::listing::Market;
use crate::price::subject::SubjectInput;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 9, 7, 0).unwrap()
}

fn subject(oem: Option<&str>, tc: Option<&str>, gearbox: Option<GearboxType>) -> PriceSubject {
    PriceSubject::parse(SubjectInput {
        oem: oem.map(String::from),
        transmission_code: tc.map(String::from),
        make: Some("NISSAN".into()),
        model: Some("QASHQAI".into()),
        gearbox_type: gearbox,
        ..Default::default()
    })
    .unwrap()
}

fn listing(price: u64, mileage: Option<u32>, site: &str) -> Listing {
    Listing {
        url: format!("https://{site}/{price}"),
        site: site.into(),
        title: "Вариатор JF011E".into(),
        price,
        price_high: None,
        original: None,
        mileage_km: mileage,
        market: Market::Ru,
    }
}

fn summary(listings: &[Listing]) -> PriceSummary {
    let mut sorted = listings.to_vec();
    sorted.sort_by_key(|l| l.price);
    crate::price::stats::summarize(&sorted).unwrap()
}

struct Fixture {
    subject: PriceSubject,
    settings: PriceSettings,
    templates: TemplateOverrides,
    methods: Vec<PaymentMethod>,
}

impl Fixture {
    fn new(subject: PriceSubject) -> Self {
        Self { subject, settings: PriceSettings::default(), templates: TemplateOverrides::new(), methods: Vec::new() }
    }

    fn ctx(&self) -> ReplyContext<'_> {
        ReplyContext {
            subject: &self.subject,
            settings: &self.settings,
            templates: &self.templates,
            payment_methods: &self.methods,
            now: now(),
        }
    }
}

fn nb(s: &str) -> String {
    s.replace("_", "\u{a0}")
}

#[test]
fn the_short_reply_of_the_old_system() {
    assert_eq!(
        short_reply("W5MBB", Some(GearboxType::Manual), 55_000, 95_000),
        nb(
            "Контрактные МКПП W5MBB есть в нескольких вариантах — от 55_000 до 95_000 ₽. Цена зависит от пробега и состояния. Какой бюджет вас интересует?"
        )
    );
    // A name that says what it is gets no label; one price reads as one.
    assert_eq!(
        short_reply("NISSAN QASHQAI вариатор", Some(GearboxType::Cvt), 60_000, 80_000),
        nb(
            "Контрактные NISSAN QASHQAI вариатор есть в нескольких вариантах — от 60_000 до 80_000 ₽. Цена зависит от пробега и состояния. Какой бюджет вас интересует?"
        )
    );
    assert_eq!(
        short_reply("W5MBB", None, 55_000, 55_000),
        nb("Контрактная КПП W5MBB — цена 55_000 ₽. Цена зависит от пробега и состояния. Какой бюджет вас интересует?")
    );
}

#[test]
fn market_prices_get_the_margin_and_the_payment_methods() {
    let mut f = Fixture::new(subject(None, Some("JF011E"), Some(GearboxType::Cvt)));
    f.methods = vec![
        PaymentMethod {
            title: "Перевод на карту".into(),
            description: Some("Сбербанк".into()),
            active: true,
            order: 2,
        },
        PaymentMethod { title: "Наличными".into(), description: None, active: true, order: 1 },
        PaymentMethod { title: "Криптовалюта".into(), description: None, active: false, order: 0 },
    ];
    let listings = [listing(60_000, None, "a.ru"), listing(80_000, None, "b.ru")];
    let s = summary(&listings);
    let out = price_suggestions(&f.ctx(), PriceAnswer::Market { summary: &s, listings: &listings, priced_at: now() });
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].kind, SuggestionKind::Price);
    // −25 %: 60 000 → 45 000, 80 000 → 60 000.
    assert_eq!(
        out[0].text,
        nb(
            "Контрактные вариатор JF011E есть в нескольких вариантах — от 45_000 до 60_000 ₽. Цена зависит от пробега и состояния. Какой бюджет вас интересует?"
        )
    );
    assert_eq!((out[0].intent, out[0].confidence), ("price", 0.8));
    assert_eq!(out[1].kind, SuggestionKind::PaymentOptions);
    assert_eq!(out[1].text, "💳 Варианты оплаты:\n\n• Наличными\n• Перевод на карту\n  Сбербанк");
    assert_eq!(out[1].confidence, 0.9);
}

#[test]
fn the_market_range_and_the_note_when_the_tenant_wants_them() {
    let mut f = Fixture::new(subject(None, Some("JF011E"), Some(GearboxType::Cvt)));
    f.settings.show_market_range = true;
    f.settings.price_note = "Гарантия 30 дней.".into();
    let listings = [listing(60_000, None, "a.ru"), listing(80_000, None, "b.ru")];
    let s = summary(&listings);
    let out = price_suggestions(&f.ctx(), PriceAnswer::Market { summary: &s, listings: &listings, priced_at: now() });
    assert!(
        out[0].text.ends_with(&nb("?\nРыночные цены: от 60_000 до 80_000 ₽ (объявлений: 2).\nГарантия 30 дней.")),
        "{}",
        out[0].text
    );
}

#[test]
fn tiers_by_mileage() {
    let f = Fixture::new(subject(Some("31020-3VX2D"), Some("JF011E"), Some(GearboxType::Cvt)));
    let listings = [
        listing(90_000, Some(40_000), "a.ru"),
        listing(95_000, Some(55_000), "b.ru"),
        listing(70_000, Some(75_000), "a.ru"),
        listing(74_000, Some(85_000), "c.ru"),
        listing(50_000, Some(120_000), "b.ru"),
        listing(52_000, None, "a.ru"),
    ];
    let s = summary(&listings);
    let out = price_suggestions(&f.ctx(), PriceAnswer::Market { summary: &s, listings: &listings, priced_at: now() });
    assert_eq!(out[0].kind, SuggestionKind::PriceOptions);
    assert_eq!(out[0].confidence, 0.85);
    // Budget 50 000 at 120 000 km, middle 70 000 at 80 000 km, best 90 000 at 40 000 km; −25 %.
    assert_eq!(
        out[0].text,
        nb(
            "Нашёл варианты контрактной JF011E (OEM: 31020-3VX2D):\n\n📦 Эконом — от 37_500 ₽\n🔧 Пробег до 120_000 км\n\n📦 Оптимум — от 52_500 ₽\n🔧 Пробег до 80_000 км\n\n📦 Минимальный пробег — от 67_500 ₽\n🔧 Пробег до 40_000 км\n\nВсе контрактные, не использовались в РФ.\nЧто важнее — цена или минимальный пробег?"
        )
    );
    // Without a known budget mileage there are no tiers (no "Пробег до  км").
    let listings = [listing(90_000, Some(40_000), "a.ru"), listing(52_000, None, "b.ru")];
    let s = summary(&listings);
    let out = price_suggestions(&f.ctx(), PriceAnswer::Market { summary: &s, listings: &listings, priced_at: now() });
    assert_eq!(out[0].kind, SuggestionKind::Price);
    // No middle listing: halfway between the others.
    let listings = [listing(90_000, Some(40_000), "a.ru"), listing(50_000, Some(121_000), "b.ru")];
    let tiers = Tiers::of(&listings, &f.settings).unwrap();
    assert_eq!(tiers.mid, (70_000, 80_500));
}

#[test]
fn the_tenants_price_result_template_is_used_when_it_has_one() {
    let mut f = Fixture::new(subject(Some("31020-3VX2D"), None, Some(GearboxType::Cvt)));
    f.templates.insert(
        TemplateKind::PriceResult,
        "{{transmission_model}}: {{min_price}}–{{max_price}} ₽ (рынок {{market_min_price}}–{{market_max_price}}), {{listings_count}} шт. {{price_note}}".into(),
    );
    f.settings.price_note = "Гарантия.".into();
    let listings = [listing(60_000, None, "a.ru"), listing(80_000, None, "b.ru")];
    let s = summary(&listings);
    let out = price_suggestions(&f.ctx(), PriceAnswer::Market { summary: &s, listings: &listings, priced_at: now() });
    assert_eq!(out[0].text, nb("NISSAN QASHQAI вариатор: 45_000–60_000 ₽ (рынок 60_000–80_000), 2 шт. Гарантия."));
    assert_eq!(out[0].template_problem, None);
    // An unusable template falls back to the default and says so.
    f.templates.insert(TemplateKind::PriceResult, "{{price}} ₽".into());
    let out = price_suggestions(&f.ctx(), PriceAnswer::Market { summary: &s, listings: &listings, priced_at: now() });
    assert!(
        out[0].text.starts_with("Нашёл для вас контрактную NISSAN QASHQAI вариатор (OEM: 31020-3VX2D)."),
        "{}",
        out[0].text
    );
    assert!(out[0].template_problem.as_deref().unwrap().contains("{{price}}"));
}

#[test]
fn estimates_say_they_are_estimates() {
    let f = Fixture::new(subject(None, Some("JF011E"), Some(GearboxType::Cvt)));
    let out = price_suggestions(&f.ctx(), PriceAnswer::Estimate { min: 60_000, max: 90_000 });
    assert_eq!(out[0].kind, SuggestionKind::Estimate);
    assert_eq!(
        out[0].text,
        nb(
            "Предварительная оценка для контрактной КПП JF011E: от 45_000 до 67_500 ₽. Это ориентир, точную стоимость уточним и сообщим. Какой бюджет вас интересует?"
        )
    );
    assert_eq!(out[0].confidence, 0.5);
}

#[test]
fn no_made_up_price_ever() {
    let f = Fixture::new(subject(None, Some("JF011E"), None));
    let zero = PriceSummary {
        min: 0,
        max: 0,
        median: 0,
        mean: 0,
        count: 0,
        sites: 0,
        currency: crate::price::Currency::Rub,
        mileage_min: None,
        mileage_max: None,
    };
    for answer in [
        PriceAnswer::Market { summary: &zero, listings: &[], priced_at: now() },
        PriceAnswer::Estimate { min: 0, max: 0 },
        PriceAnswer::Estimate { min: 90_000, max: 60_000 },
        PriceAnswer::Own { offers: &[OwnOffer { price: 0, condition: None, supplier: None, stock: None }] },
        PriceAnswer::NotFound { escalation: None },
        PriceAnswer::Failed,
    ] {
        let out = price_suggestions(&f.ctx(), answer);
        for s in &out {
            assert!(!s.text.contains(" 0 ₽") && !s.text.contains("900 ₽"), "{}", s.text);
            assert!(!s.text.contains('₽'), "no price without a price: {}", s.text);
        }
        assert!(matches!(out[0].kind, SuggestionKind::NotFound | SuggestionKind::Failure));
    }
}

#[test]
fn own_offers_are_quoted_as_they_are() {
    let f = Fixture::new(subject(None, Some("JF011E"), Some(GearboxType::Cvt)));
    let offers = [
        OwnOffer { price: 70_000, condition: Some("б/у, гарантия".into()), supplier: None, stock: Some(1) },
        OwnOffer { price: 99_000, condition: None, supplier: Some("X".into()), stock: Some(0) },
    ];
    let out = price_suggestions(&f.ctx(), PriceAnswer::Own { offers: &offers });
    assert_eq!(out[0].kind, SuggestionKind::OwnOffer);
    assert_eq!(out[0].text, nb("Есть в наличии: JF011E — 70_000 ₽, б/у, гарантия. Готов ответить на все вопросы!"));
    let offers = [
        OwnOffer { price: 80_000, condition: None, supplier: None, stock: None },
        OwnOffer { price: 70_000, condition: Some("б/у".into()), supplier: None, stock: None },
    ];
    let out = price_suggestions(&f.ctx(), PriceAnswer::Own { offers: &offers });
    assert_eq!(out[0].text, nb("Есть в наличии: JF011E\n• 70_000 ₽, б/у\n• 80_000 ₽\nКакой вариант вам подходит?"));
}

#[test]
fn not_found_and_escalation() {
    let mut s = subject(Some("31020-3VX2D"), Some("JF011E"), Some(GearboxType::Cvt));
    s.year = Some("2012".into());
    let f = Fixture::new(s);
    let urls: Vec<String> = (1..=6).map(|i| format!("https://baza.drom.ru/{i}")).collect();
    let e = escalation(&f.subject, &urls);
    assert_eq!(e.reason, "Недостаточно цен в РФ сегменте для OEM 31020-3VX2D");
    assert_eq!(
        e.ready_queries,
        [
            "купить вариатор JF011E б/у",
            "контрактная вариатор NISSAN QASHQAI JF011E",
            "вариатор JF011E цена разборка",
            "used CVT JF011E buy",
        ]
    );
    assert_eq!(e.suggested_sites.len(), 6);
    let out = price_suggestions(&f.ctx(), PriceAnswer::NotFound { escalation: Some(&e) });
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].kind, SuggestionKind::NotFound);
    assert_eq!(out[0].text, "Есть в наличии, уточним стоимость для вас. Оставьте контакт — свяжемся в течение часа.");
    assert_eq!(out[1].kind, SuggestionKind::Escalation);
    assert_eq!((out[1].intent, out[1].confidence), ("escalation", 1.0));
    assert_eq!(out[1].autosend_block_reason, Some("manual_price_search_required"));
    assert_eq!(
        out[1].text,
        "🔍 Требуется ручной поиск цены\nКПП: JF011E (OEM: 31020-3VX2D)\nАвто: NISSAN QASHQAI 2012\n\nГотовые запросы для поиска:\n• купить вариатор JF011E б/у\n• контрактная вариатор NISSAN QASHQAI JF011E\n• вариатор JF011E цена разборка\n\nУже проверено (6 источников):\n• https://baza.drom.ru/1\n• https://baza.drom.ru/2\n• https://baza.drom.ru/3\n• https://baza.drom.ru/4\n• https://baza.drom.ru/5"
    );
    // A part number with a model name adds the international queries; no URLs, no "checked" block.
    let mut s = subject(Some("31020-3VX2D"), None, None);
    s.model_name_hint = Some("JF011E".into());
    let e = escalation(&s, &[]);
    assert_eq!(e.ready_queries[4], "JF011E transmission 31020-3VX2D for sale");
    assert_eq!(e.ready_queries[5], "JDM JF011E gearbox 31020-3VX2D");
    assert!(!escalation_text(&s, &e).contains("Уже проверено"));
    assert_eq!(sources_word(1), "источник");
    assert_eq!(sources_word(3), "источника");
    assert_eq!(sources_word(11), "источников");
    assert_eq!(sources_word(22), "источника");
}

#[test]
fn a_tenants_not_found_template() {
    let mut f = Fixture::new(subject(Some("31020-3VX2D"), None, None));
    f.templates
        .insert(TemplateKind::NotFound, "Уточним цену {{transmission_model}} (OEM: {{oem}}) и перезвоним.".into());
    let out = price_suggestions(&f.ctx(), PriceAnswer::NotFound { escalation: None });
    assert_eq!(out[0].text, "Уточним цену NISSAN QASHQAI КПП (OEM: 31020-3VX2D) и перезвоним.");
    assert_eq!(out.len(), 1);
}
