//! Each fixture of `tests/fixtures/prices/` parsed into its exact listings.

use super::*;
use crate::price::fetch::decode_html;
use crate::price::render::{RenderReason, render_reason};

const NB: char = '\u{a0}';

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/prices").join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    decode_html(&bytes, None).0
}

fn parse(name: &str, url: &str) -> Vec<RawListing> {
    parse_listings(&Url::parse(url).unwrap(), &fixture(name))
}

fn rub(amount: u64) -> Option<StructuredPrice> {
    Some(StructuredPrice { amount, currency: "RUB".into() })
}

/// `"85 000 ₽"` with NBSPs where the fixture has `&nbsp;`: written with `_` for NBSP.
fn nb(s: &str) -> Option<String> {
    Some(s.replace('_', &NB.to_string()))
}

fn listing(
    url: &str,
    site: &str,
    title: &str,
    price_text: Option<String>,
    structured_price: Option<StructuredPrice>,
    mileage_text: Option<&str>,
) -> RawListing {
    RawListing {
        url: url.into(),
        site: site.into(),
        title: title.into(),
        price_text,
        structured_price,
        mileage_text: mileage_text.map(|m| m.replace('_', &NB.to_string())),
    }
}

#[test]
fn avito_current_markup_cards_with_structured_prices() {
    let got = parse("avito_search.html", "https://www.avito.ru/moskva/zapchasti_i_aksessuary?q=akpp+u660e");
    let site = "avito.ru";
    assert_eq!(
        got,
        vec![
            listing(
                "https://www.avito.ru/moskva/zapchasti_i_aksessuary/akpp_toyota_camry_2.5_u660e_3456789012",
                site,
                "АКПП Toyota Camry 2.5 U660E контрактная",
                nb("85_000_₽"),
                rub(85_000),
                Some("пробег 65_000 км"),
            ),
            listing(
                "https://www.avito.ru/moskva/zapchasti_i_aksessuary/korobka_peredach_u660e_rav4_3456789013?context=H4sIAAAAAAAA",
                site,
                "Коробка передач U660E Toyota RAV4 2.5",
                nb("92_500_₽"),
                rub(92_500),
                Some("Пробег 48 тыс. км"),
            ),
            listing(
                "https://www.avito.ru/moskva/zapchasti_i_aksessuary/gidroblok_akpp_u660e_3456789014",
                site,
                "Гидроблок АКПП U660E",
                nb("18_000_₽"),
                rub(18_000),
                None,
            ),
            // "Цена не указана": a listing without a price, never a made-up one.
            listing(
                "https://www.avito.ru/podolsk/zapchasti_i_aksessuary/akpp_lexus_rx350_u660e_3456789015",
                site,
                "АКПП Lexus RX350 U660E",
                None,
                None,
                None,
            ),
        ]
    );
}

#[test]
fn avito_old_markup_skips_the_struck_out_price() {
    let got = parse("avito_search_old.html", "https://www.avito.ru/novosibirsk/zapchasti_i_aksessuary?q=a245e");
    assert_eq!(
        got,
        vec![
            listing(
                "https://www.avito.ru/novosibirsk/zapchasti_i_aksessuary/akpp_a245e_toyota_corolla_1901234567",
                "avito.ru",
                "АКПП A245E Toyota Corolla 1.6",
                Some("38 000 ₽".into()),
                rub(38_000),
                Some("пробег 92 тыс. км"),
            ),
            listing(
                "https://www.avito.ru/berdsk/zapchasti_i_aksessuary/korobka_avtomat_a245e_1901234568",
                "avito.ru",
                "Коробка автомат A245E",
                Some("41 000 ₽".into()),
                rub(41_000),
                None,
            ),
        ]
    );
}

#[test]
fn avito_price_only_in_content_still_counts() {
    let got = parse("avito_content_only.html", "https://www.avito.ru/rossiya/zapchasti_i_aksessuary?q=jf011e");
    assert_eq!(
        got,
        vec![
            listing(
                "https://www.avito.ru/ekaterinburg/zapchasti_i_aksessuary/variator_jf011e_nissan_qashqai_4011223344",
                "avito.ru",
                "Вариатор JF011E Nissan Qashqai 2.0",
                None,
                rub(72_000),
                None,
            ),
            listing(
                "https://www.avito.ru/chelyabinsk/zapchasti_i_aksessuary/variator_jf011e_x-trail_4011223345",
                "avito.ru",
                "Вариатор JF011E Nissan X-Trail T31",
                None,
                rub(68_500),
                None,
            ),
        ]
    );
}

#[test]
fn avito_item_page_is_one_listing_at_its_own_url() {
    let url = "https://www.avito.ru/sankt-peterburg/zapchasti_i_aksessuary/mkpp_w5mbb_mitsubishi_lancer_4wd_2233445566#photos";
    let got = parse("avito_item.html", url);
    assert_eq!(
        got,
        vec![listing(
            "https://www.avito.ru/sankt-peterburg/zapchasti_i_aksessuary/mkpp_w5mbb_mitsubishi_lancer_4wd_2233445566",
            "avito.ru",
            "МКПП W5MBB Mitsubishi Lancer 4WD",
            nb("95_000_₽"),
            rub(95_000),
            Some("Пробег: 110_000_км"),
        )]
    );
}

#[test]
fn drom_table_markup_in_windows_1251() {
    let bytes = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/prices/drom_bulls_old_cp1251.html"),
    )
    .unwrap();
    assert!(std::str::from_utf8(&bytes).is_err(), "the fixture really is windows-1251");
    let (html, charset) = decode_html(&bytes, Some("text/html"));
    assert_eq!(charset, "windows-1251");
    let got =
        parse_listings(&Url::parse("https://baza.drom.ru/habarovsk/sell_spare_parts/?query=u241e").unwrap(), &html);
    let site = "baza.drom.ru";
    assert_eq!(
        got,
        vec![
            listing(
                "https://baza.drom.ru/habarovsk/sell_spare_parts/akpp-toyota-camry-acv40-2az-fe-u241e-96543210.html",
                site,
                "АКПП Toyota Camry ACV40 2AZ-FE U241E",
                nb("55_000_руб."),
                None,
                Some("Пробег 78 тыс. км"),
            ),
            listing(
                "https://baza.drom.ru/vladivostok/sell_spare_parts/avtomaticheskaja-korobka-u241e-96543211.html",
                site,
                "Автоматическая коробка U241E, 4WD",
                nb("62_000 ₽"),
                None,
                None,
            ),
            listing(
                "https://baza.drom.ru/habarovsk/sell_spare_parts/akpp-u241e-na-zapchasti-96543212.html",
                site,
                "АКПП U241E на запчасти",
                None,
                None,
                None,
            ),
        ]
    );
}

#[test]
fn drom_ftid_and_bull_item_markup() {
    let got = parse("drom_bulls_new.html", "https://baza.drom.ru/sell_spare_parts/mkpp/mitsubishi/");
    let site = "baza.drom.ru";
    assert_eq!(
        got,
        vec![
            // The amount is in `bull_price`, the rouble sign next to it.
            listing(
                "https://baza.drom.ru/moskva/sell_spare_parts/mkpp-mitsubishi-lancer-cy4a-w5mbb-4wd-100200300.html",
                site,
                "МКПП Mitsubishi Lancer CY4A W5MBB 4WD",
                nb("75 000_₽"),
                None,
                Some("пробег 95 тыс. км"),
            ),
            // The card itself is the link.
            listing(
                "https://baza.drom.ru/novosibirsk/sell_spare_parts/mkpp-w5m51-lancer-2wd-100200301.html",
                site,
                "МКПП W5M51 Lancer 2WD",
                Some("48000 ₽".into()),
                None,
                Some("120 000 км"),
            ),
            listing(
                "https://baza.drom.ru/krasnoyarsk/sell_spare_parts/mkpp-mitsubishi-outlander-100200302.html",
                site,
                "МКПП Mitsubishi Outlander 2.0 4WD",
                nb("от 58_000_₽"),
                None,
                None,
            ),
        ]
    );
}

#[test]
fn drom_bulletin_page() {
    let got = parse("drom_bull_page.html", "https://baza.drom.ru/habarovsk/sell_spare_parts/variator-jf011e-55.html");
    assert_eq!(
        got,
        vec![listing(
            "https://baza.drom.ru/habarovsk/sell_spare_parts/variator-jf011e-55.html",
            "baza.drom.ru",
            "Вариатор JF011E Nissan X-Trail T31 MR20DE",
            nb("67_000_₽"),
            rub(67_000),
            Some("пробег 84 000 км"),
        )]
    );
}

#[test]
fn farpost_bulletins_and_lots() {
    let got = parse("farpost_search.html", "https://www.farpost.ru/vladivostok/auto/parts/+/akpp/?query=a245e");
    assert_eq!(
        got,
        vec![
            listing(
                "https://www.farpost.ru/vladivostok/auto/parts/+/akpp/akpp-toyota-corolla-a245e-88001001.html",
                "farpost.ru",
                "АКПП Toyota Corolla A245E 1ZZ-FE",
                nb("32_000_₽"),
                None,
                Some("пробег 57 тыс. км"),
            ),
            listing(
                "https://www.farpost.ru/ussuriisk/auto/parts/+/akpp/korobka-a245e-allion-88001002.html",
                "farpost.ru",
                "Коробка A245E Toyota Allion",
                nb("35_000_₽"),
                None,
                None,
            ),
        ]
    );
    let lots = parse("farpost_lots.html", "https://www.farpost.ru/vladivostok/auto/parts/lots/");
    assert_eq!(
        lots,
        vec![
            listing(
                "https://www.farpost.ru/vladivostok/auto/parts/lot/mkpp-honda-fit-l13a-77001.html",
                "farpost.ru",
                "МКПП Honda Fit L13A",
                Some("18 500 руб.".into()),
                None,
                Some("пробег 80 000 км"),
            ),
            listing(
                "https://www.farpost.ru/artem/auto/parts/lot/variator-honda-fit-77002.html",
                "farpost.ru",
                "Вариатор Honda Fit GE6",
                Some("27 000 руб.".into()),
                None,
                None,
            ),
        ]
    );
}

#[test]
fn catalog_product_cards_skip_old_prices_carts_and_price_on_request() {
    let got = parse("catalog_dvsavto.html", "https://dvsavto.ru/catalog/akpp/toyota/");
    assert_eq!(
        got,
        vec![
            listing(
                "https://dvsavto.ru/catalog/akpp/toyota/u660e-camry-5501/",
                "dvsavto.ru",
                "АКПП U660E Toyota Camry ASV50 2.5",
                Some("87 000 руб.".into()),
                None,
                Some("Пробег: 70 000 км"),
            ),
            listing(
                "https://dvsavto.ru/catalog/akpp/toyota/a750f-land-cruiser-5502/",
                "dvsavto.ru",
                "АКПП A750F Toyota Land Cruiser Prado 4.0",
                nb("от 120_000 ₽"),
                None,
                None,
            ),
        ]
    );
}

#[test]
fn catalog_items_without_card_classes() {
    let got = parse("catalog_list.html", "https://kor-motor.ru/catalog/kpp/");
    assert_eq!(
        got,
        vec![
            listing(
                "https://kor-motor.ru/goods/akpp-a6mf1-hyundai-santa-fe/",
                "kor-motor.ru",
                "АКПП A6MF1 Hyundai Santa Fe 2.4 2WD",
                Some("64 000 руб.".into()),
                None,
                Some("пробег 64 тыс. км"),
            ),
            listing(
                "https://kor-motor.ru/goods/akpp-a6lf2-kia-sorento/",
                "kor-motor.ru",
                "АКПП A6LF2 Kia Sorento 2.2 CRDi 4WD",
                Some("71 500 руб.".into()),
                None,
                None,
            ),
        ]
    );
}

#[test]
fn japancar_price_table_in_windows_1251() {
    let got = parse("japancar_cp1251.html", "https://japancar.ru/?code=parts&mode=old&cl=search_partsold#top");
    assert_eq!(
        got,
        vec![
            listing(
                "https://japancar.ru/jc/view/parts_old/ytPHLjAwNA/P3fc0203165b9918da.html",
                "japancar.ru",
                "АКПП (автоматическая коробка передач)",
                Some("25000 руб.".into()),
                None,
                None,
            ),
            listing(
                "https://japancar.ru/jc/view/parts_old/ytPHLjAwNA/P8aa12bb.html",
                "japancar.ru",
                "АКПП контрактная 4WD",
                Some("33 000 руб.".into()),
                None,
                None,
            ),
            // A row without a link is a listing on the page itself.
            listing(
                "https://japancar.ru/?code=parts&mode=old&cl=search_partsold",
                "japancar.ru",
                "КПП механическая, пробег 70000 км",
                Some("14 000 руб.".into()),
                None,
                Some("пробег 70000 км"),
            ),
        ]
    );
}

#[test]
fn json_ld_product_and_item_list() {
    let got = parse("jsonld_product.html", "https://gearbox-shop.ru/akpp/toyota-u660e-001/?utm=1");
    assert_eq!(
        got,
        vec![listing(
            "https://gearbox-shop.ru/akpp/toyota-u660e-001/",
            "gearbox-shop.ru",
            "АКПП Toyota U660E контрактная",
            None,
            rub(89_000),
            Some("пробег 58 000 км"),
        )]
    );
    let list = parse("jsonld_list.html", "https://variator-center.ru/catalog/jf011e/");
    assert_eq!(
        list,
        vec![
            listing(
                "https://variator-center.ru/p/jf011e-qashqai",
                "variator-center.ru",
                "Вариатор JF011E Nissan Qashqai J10 2.0",
                None,
                rub(74_000),
                None,
            ),
            // AggregateOffer: its lowest price.
            listing(
                "https://variator-center.ru/p/jf011e-outlander",
                "variator-center.ru",
                "Вариатор JF011E Mitsubishi Outlander XL",
                None,
                rub(69_000),
                None,
            ),
            // Price "0" (on request) is no price; a foreign price keeps its currency.
            listing(
                "https://variator-center.ru/en/p/jf011e",
                "variator-center.ru",
                "JF011E used CVT (export)",
                None,
                Some(StructuredPrice { amount: 951, currency: "USD".into() }),
                None,
            ),
        ]
    );
}

#[test]
fn microdata_products() {
    let got = parse("microdata_list.html", "https://avtorazbor.example.ru/mkpp/");
    assert_eq!(
        got,
        vec![
            listing(
                "https://avtorazbor.example.ru/mkpp/s6fa-1/",
                "avtorazbor.example.ru",
                "МКПП S6FA Mitsubishi Pajero Sport",
                Some("54 000 руб.".into()),
                rub(54_000),
                Some("пробег около 100 тыс. км"),
            ),
            listing(
                "https://avtorazbor.example.ru/mkpp/qce-2/",
                "avtorazbor.example.ru",
                "МКПП QCE Toyota Land Cruiser 100",
                Some("135 000 ₽".into()),
                rub(135_000),
                None,
            ),
        ]
    );
}

#[test]
fn open_graph_product_price() {
    let got = parse("opengraph_product.html", "https://transmission-service.ru/catalog/dsg-dq200-0am?ref=ya");
    assert_eq!(
        got,
        vec![listing(
            "https://transmission-service.ru/catalog/dsg-dq200-0am",
            "transmission-service.ru",
            "Робот DSG DQ200 0AM контрактный",
            None,
            rub(76_000),
            Some("пробег 62 000 км"),
        )]
    );
}

#[test]
fn prices_in_text_next_to_gearbox_words() {
    let got = parse("plain_text_prices.html", "https://razbor-vostok.ru/price.html");
    let page = "https://razbor-vostok.ru/price.html";
    let site = "razbor-vostok.ru";
    assert_eq!(
        got,
        vec![
            // "2.5" (the engine) is not the start of a price range.
            listing(
                page,
                site,
                "Контрактная АКПП U660E Toyota Camry 2.5 — 85 000 руб., пробег 65 тыс. км",
                nb("85_000 руб."),
                None,
                Some("пробег 65 тыс. км"),
            ),
            listing(page, site, "АКПП U660E Toyota RAV4, б/у, цена 90 т.р.", Some("90 т.р.".into()), None, None),
            listing(page, site, "Коробка U660E с разборки: от 78000₽", Some("от 78000₽".into()), None, None),
            listing(
                page,
                site,
                "Вариатор K310 Toyota Corolla — 60 000 – 70 000 руб.",
                Some("60 000 – 70 000 руб.".into()),
                None,
                None,
            ),
            // The heading names the gearbox, the next line its price.
            listing(
                page,
                site,
                "МКПП E351 Honda Цена: 35 тыс. руб. (в наличии 2 шт.)",
                Some("35 тыс. руб.".into()),
                None,
                None,
            ),
            // Delivery and a transfer case have no gearbox word: not listings.
            listing(page, site, "КПП 5-ступ. Nissan Almera 22 000 руб.", Some("22 000 руб.".into()), None, None),
        ]
    );
}

#[test]
fn shells_and_empty_lists_give_nothing_and_ask_for_rendering() {
    let shell_url = Url::parse("https://zapchasti.example.ru/search?q=u660e").unwrap();
    let shell = fixture("js_shell.html");
    assert!(parse_listings(&shell_url, &shell).is_empty());
    assert_eq!(render_reason(&shell_url, &shell, 0), Some(RenderReason::ScriptShell));

    let serp_url = Url::parse("https://www.avito.ru/moskva?q=akpp").unwrap();
    let serp = fixture("avito_empty_serp.html");
    assert!(parse_listings(&serp_url, &serp).is_empty());
    assert_eq!(render_reason(&serp_url, &serp, 0), Some(RenderReason::EmptyListingContainer));

    let listing_page = fixture("avito_search.html");
    assert_eq!(render_reason(&serp_url, &listing_page, 4), None);
    let text_page = fixture("plain_text_prices.html");
    assert_eq!(render_reason(&Url::parse("https://razbor-vostok.ru/").unwrap(), &text_page, 0), None);
}

#[test]
fn families_by_domain() {
    assert_eq!(SiteFamily::of("www.avito.ru"), SiteFamily::Avito);
    assert_eq!(SiteFamily::of("m.avito.ru"), SiteFamily::Avito);
    assert_eq!(SiteFamily::of("baza.drom.ru"), SiteFamily::Drom);
    assert_eq!(SiteFamily::of("auto.drom.ru"), SiteFamily::Drom);
    assert_eq!(SiteFamily::of("www.farpost.ru"), SiteFamily::Farpost);
    for d in CATALOG_DOMAINS {
        assert_eq!(SiteFamily::of(d), SiteFamily::Catalog, "{d}");
    }
    assert_eq!(SiteFamily::of("parts.japancar.ru"), SiteFamily::Catalog);
    assert_eq!(SiteFamily::of("avito.ru.example.com"), SiteFamily::Generic);
    assert_eq!(SiteFamily::of("exist.ru"), SiteFamily::Generic);
    assert_eq!(SiteFamily::Catalog.as_str(), "catalog");
    assert_eq!(site_of(&Url::parse("https://WWW.Avito.RU./x").unwrap()), "avito.ru");
}

#[test]
fn links_are_absolute_and_real() {
    let html = r##"<div data-marker="item"><a data-marker="item-title" href="javascript:void(0)"><h3 itemprop="name">АКПП A</h3></a>
        <a href="mailto:x@y.ru">почта</a><a href="#top">наверх</a><a href="../b/akpp_1?x=1#f">АКПП A</a>
        <p data-marker="item-price">10 000 ₽</p></div>"##;
    let got = parse_listings(&Url::parse("https://www.avito.ru/moskva/a/list").unwrap(), html);
    assert_eq!(got[0].url, "https://www.avito.ru/moskva/b/akpp_1?x=1");
}

#[test]
fn amounts_currencies_and_mileage() {
    assert_eq!(parse_amount("85000"), Some(85_000));
    assert_eq!(parse_amount("85000.00"), Some(85_000));
    assert_eq!(parse_amount("68 500,50"), Some(68_501));
    assert_eq!(parse_amount("1,234,567"), Some(1_234_567));
    assert_eq!(parse_amount("85\u{a0}000"), Some(85_000));
    assert_eq!(parse_amount("0"), None);
    assert_eq!(parse_amount("0.00"), None);
    assert_eq!(parse_amount("85 000 ₽"), None);
    assert_eq!(parse_amount("по запросу"), None);
    assert_eq!(parse_amount(""), None);
    assert_eq!(currency_code("rur").as_deref(), Some("RUB"));
    assert_eq!(currency_code(" usd ").as_deref(), Some("USD"));
    assert_eq!(currency_code("рубли"), None);

    assert_eq!(mileage_in("АКПП, пробег: 65 000 км, гарантия").as_deref(), Some("пробег: 65 000 км"));
    assert_eq!(mileage_in("Camry 2008 65 000 км").as_deref(), Some("65 000 км"), "a year is not part of it");
    assert_eq!(mileage_in("пробег 45 т.км").as_deref(), Some("пробег 45 т.км"));
    assert_eq!(mileage_in("120000 km, Japan").as_deref(), Some("120000 km"));
    assert_eq!(mileage_in("доставка 5 кмн"), None);
    assert_eq!(mileage_in("без пробега по РФ"), None);

    assert_eq!(price_chars("  85 \u{a0} 000\n\t₽ "), "85\u{a0}000 ₽");
    assert!(has_currency("90 т.р."));
    assert!(has_currency("45000р"));
    assert!(has_currency("$1200"));
    assert!(!has_currency("85 000"));
    assert_eq!(clip_title("слово ".repeat(80)).chars().count(), 300);
}

#[test]
fn bare_amounts_are_roubles_only_on_rouble_sites() {
    let card = r#"<div data-ftid="bulls-list_bull"><a data-ftid="bull_title" href="/x-1.html">МКПП W5M51</a>
        <div><span data-ftid="bull_price">48 000</span></div></div>"#;
    let drom = parse_listings(&Url::parse("https://baza.drom.ru/sell/").unwrap(), card);
    assert_eq!(drom[0].price_text.as_deref(), Some("48 000 ₽"));

    let shop = r#"<ul><li itemscope itemtype="https://schema.org/Product"><a itemprop="url" href="/p/1">
        <span itemprop="name">CVT JF011E</span></a><span itemprop="price">950</span></li></ul>"#;
    let foreign = parse_listings(&Url::parse("https://cvt-parts.example.com/").unwrap(), shop);
    assert_eq!(foreign[0].price_text.as_deref(), Some("950"), "no currency is made up");
    assert_eq!(foreign[0].structured_price, None, "an amount without a currency is not structured");
    let russian = parse_listings(&Url::parse("https://cvt-parts.example.ru/").unwrap(), shop);
    assert_eq!(russian[0].structured_price, Some(StructuredPrice { amount: 950, currency: "RUB".into() }));
}

#[test]
fn a_page_nested_twenty_thousand_deep_is_refused_without_exhausting_the_stack() {
    let nested = |depth: usize| {
        format!(
            "<html><body>{}<p>Коробка АКПП A245E контрактная, цена 45 000 ₽</p>{}</body></html>",
            "<div class=\"price\">".repeat(depth),
            "</div>".repeat(depth)
        )
    };
    for url in ["https://www.farpost.ru/search", "https://gearbox-parts.example.ru/catalog"] {
        let url = Url::parse(url).unwrap();
        assert_eq!(parse_listings(&url, &nested(20_000)), vec![], "{url}");
        // Past the limit yet not far past it: read, then refused on the tree's depth.
        assert_eq!(parse_listings(&url, &nested(MAX_NESTING + 10)), vec![], "{url}");
        let at_the_limit = nested(MAX_NESTING - 4);
        assert!(nested_deeper_than(&Html::parse_document(&at_the_limit), MAX_NESTING - 1));
        assert!(!nested_deeper_than(&Html::parse_document(&at_the_limit), MAX_NESTING));
    }
    // The text walk of the generic reader needs no stack either (it is also used below the limit).
    let doc = Html::parse_document(&nested(5_000));
    let body = doc.root_element();
    let (mut current, mut lines) = (String::new(), Vec::new());
    super::generic::text_lines(body, &mut current, &mut lines);
    assert!(lines.iter().chain([&current]).any(|l| l.contains("45 000 ₽")));
}

#[test]
fn tag_nesting_counts_what_nests_and_skips_what_html_closes_itself() {
    assert_eq!(tag_nesting("<html><body><div><div><span>x</span></div></div></body></html>", 100), 3);
    assert_eq!(tag_nesting(&"<p>unclosed paragraph ".repeat(5000), 100), 0, "p closes itself");
    assert_eq!(tag_nesting(&"<li>item<br><img src=a.png>".repeat(5000), 100), 0);
    assert_eq!(tag_nesting(&"<a href=/x>never closed ".repeat(5000), 100), 0, "a new link closes the last");
    assert_eq!(tag_nesting("<div><script>if (a<b) { '<div><div>' }</script><!-- <div><div> --></div>", 100), 1);
    assert_eq!(tag_nesting("<div/><DIV><Div></div></DIV>", 100), 2, "self-closed, any case");
    assert_eq!(tag_nesting("</div></div><div>a < b</div>", 100), 1, "stray closers never go below zero");
    assert_eq!(tag_nesting(&"<div>".repeat(1_000_000), 2048), 2049, "stops once past the limit");
    assert_eq!(tag_nesting("<div", 10), 1);
    assert_eq!(tag_nesting("<", 10), 0);
    assert_eq!(tag_nesting("<!-- never closed <div>", 10), 0);
}
