//! The four ways from the vehicle card to the gearbox parts list, as the old lookup service walked them:
//! path A (sidebar accordions), path C (`СХЕМЫ УЗЛОВ` tab, with the deeper sub-scheme step),
//! path B (a parts link named like the assembly) and path D (any gearbox link).
//!
//! Every path waits (bounded by `ScrapeSettings::find_wait`) for the controls it needs, since
//! the site renders parts of the page after it loads, and checks each click by its effect.
//! A path ends with a [`PathEnd`] saying how far it got.

use serde_json::{Value, json};

use super::super::error::BrowserError;
use super::super::lookup::ScrapeSettings;
use super::super::page::{CHOOSE_CARD_JS, Clicked, Effect, FIND_JS, Found, Page, Sign, short};
use super::parts::{PathEnd, read_parts};
use super::{NavPath, PodzamenuSelectors};

/// How many intermediate scheme pages (sub-scheme lists) are followed below a card or link.
const SUB_SCHEME_LEVELS: usize = 2;

/// The `find.js` argument of the first control of `path`: what tells that the path exists on the
/// page.
pub(super) fn entry(path: NavPath, sel: &PodzamenuSelectors) -> Value {
    match path {
        NavPath::Accordion => json!({
            "selectors": sel.accordion_summary, "contains": sel.transmission_group, "maxLen": 80, "limit": 2,
        }),
        NavPath::SchemesTab => json!({
            "selectors": sel.tab_selectors, "exact": sel.schemes_tab_exact, "contains": sel.schemes_tab_contains,
            "maxLen": 30, "limit": 1,
        }),
        NavPath::ContentLink => json!({
            "selectors": sel.content_links, "exact": sel.gearbox_links, "maxLen": 200, "limit": 1,
        }),
        NavPath::TextLink => json!({
            "selectors": sel.text_link_selectors, "contains": sel.text_link_keywords,
            "prefer": sel.card_assembly_words, "maxLen": 200, "limit": 1,
        }),
    }
}

/// Runs one path from the vehicle card.
pub(super) async fn run(
    page: &mut Page<'_>,
    path: NavPath,
    sel: &PodzamenuSelectors,
    settings: &ScrapeSettings,
) -> Result<PathEnd, BrowserError> {
    match path {
        NavPath::Accordion => via_accordion(page, sel, settings).await,
        NavPath::SchemesTab => via_schemes_tab(page, sel, settings).await,
        NavPath::ContentLink | NavPath::TextLink => via_link(page, path, sel, settings).await,
    }
}

fn step(name: &str) -> String {
    format!("podzamenu.{name}")
}

/// Polls `find.js` with `arg` until it finds something, for at most `find_wait`.
async fn wait_find(
    page: &Page<'_>,
    name: &str,
    mut arg: Value,
    settings: &ScrapeSettings,
) -> Result<Vec<Found>, BrowserError> {
    arg["nullIfNone"] = json!(true);
    let bound = page.short_bound(settings.find_wait);
    let found = page.poll(name, FIND_JS, &arg, bound).await?;
    Ok(found.and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default())
}

/// What a click leading to a parts list must show: new parts markers, an empty-list message, an
/// error page, or (for `deeper`) a new list of sub-schemes or cards.
pub(super) fn parts_effect(sel: &PodzamenuSelectors, deeper: bool) -> Effect {
    let mut appears = sel.detail_ready.clone();
    // A parts list without OEM links or marked cells: any table the click brought.
    appears.push("table".into());
    if deeper {
        appears.extend(sel.sub_scheme_links.iter().cloned());
        appears.extend(sel.card_selectors.iter().cloned());
    }
    let mut mark_seen = sel.detail_ready.clone();
    mark_seen.push("table".into());
    mark_seen.extend(sel.sub_scheme_links.iter().cloned());
    mark_seen.extend(sel.card_selectors.iter().cloned());
    mark_seen.extend(sel.error_selectors.iter().cloned());
    Effect {
        appears,
        new_only: true,
        patterns: sel.detail_empty_patterns.clone(),
        error_selectors: sel.error_selectors.clone(),
        error_patterns: sel.error_patterns.clone(),
        mark_seen,
        text_root: sel.text_root.clone(),
        ..Effect::default()
    }
}

/// Clicks `target` (a parts link, card or sub-scheme) and reads what it opens: the parts list, or
/// an intermediate page of sub-schemes whose gearbox entry is opened in turn.
async fn open_parts(
    page: &mut Page<'_>,
    name: &str,
    target: &Found,
    trail: String,
    sel: &PodzamenuSelectors,
    settings: &ScrapeSettings,
) -> Result<PathEnd, BrowserError> {
    let mut target = target.clone();
    let mut trail = trail;
    let mut name = name.to_owned();
    let mut level = 0;
    loop {
        let effect = parts_effect(sel, level < SUB_SCHEME_LEVELS);
        let clicked = page
            .click(
                &name,
                &target,
                &sel.click_strategies,
                &effect,
                settings.detail_timeout,
                settings.click_effect_timeout,
            )
            .await?;
        let Some(Clicked { strategy, sign, seen, selector }) = clicked else {
            return Ok(PathEnd::Stopped {
                step: step(&name),
                detail: format!("nothing opened after clicking \"{}\"", short(&target.text)),
            });
        };
        trail = format!("{trail} ({strategy:?})");
        if sign == Sign::Error {
            return Ok(PathEnd::Failed {
                step: step(&name),
                reason: format!("site error after clicking \"{}\": {seen}", short(&target.text)),
                transient: true,
            });
        }
        // Wait for rows only where a parts list is showing up (not for an empty-list message or a
        // list of sub-schemes).
        let parts_page = match sign {
            Sign::Changed => true,
            Sign::Appeared => selector.is_some_and(|s| s == "table" || sel.detail_ready.contains(&s)),
            Sign::State | Sign::Pattern | Sign::Error => false,
        };
        let reached = read_parts(page, sel, settings, &step(&name), trail.clone(), parts_page).await?;
        if !reached.rows.is_empty() {
            return Ok(PathEnd::Reached(reached));
        }
        if sign == Sign::Pattern {
            return Ok(PathEnd::EmptyParts { step: step(&name), detail: format!("{trail}: \"{seen}\"") });
        }
        // No rows: an intermediate page listing sub-schemes (path C's deeper step), or a parts
        // list without numbers.
        if level == SUB_SCHEME_LEVELS {
            return Ok(PathEnd::Reached(reached));
        }
        let Some(next) = choose_sub_scheme(page, &target, sel, settings).await? else {
            return Ok(PathEnd::Reached(reached));
        };
        page.used(format!("nav:sub_scheme:{}", short(&next.text)));
        trail = format!("{trail} > {} [{}]", short(next.card.as_deref().unwrap_or(&next.text)), short(&next.text));
        target = next;
        name = "nav.sub_scheme".into();
        level += 1;
    }
}

/// The gearbox entry of an intermediate scheme page: a card or sub-scheme link naming the gearbox
/// (and an assembly, preferred), else the first new one.
async fn choose_sub_scheme(
    page: &Page<'_>,
    clicked: &Found,
    sel: &PodzamenuSelectors,
    settings: &ScrapeSettings,
) -> Result<Option<Found>, BrowserError> {
    let mut generic = sel.sub_scheme_links.clone();
    generic.extend(sel.generic_cards.iter().cloned());
    let arg = json!({
        "cards": sel.card_selectors, "keywords": sel.card_keywords, "assembly": sel.card_assembly_words,
        "actions": sel.card_actions, "generic": generic, "skipTokens": [clicked.token],
    });
    let bound = page.short_bound(settings.find_wait);
    if let Some(found) = page.poll("nav.sub_scheme.find", CHOOSE_CARD_JS, &arg, bound).await? {
        return Ok(serde_json::from_value(found).ok());
    }
    // Nothing names the gearbox: the first entry the click brought (the old service's choice).
    let any = json!({
        "selectors": sel.sub_scheme_links, "visibleOnly": true, "freshFirst": true, "minLen": 3, "maxLen": 200,
        "limit": 1, "skipToken": clicked.token,
    });
    let found = page.find("nav.sub_scheme.any", any).await?;
    Ok(found.into_iter().next())
}

/// Path A: `Трансмиссия` accordion → gearbox sub-accordion → parts-list link.
async fn via_accordion(
    page: &mut Page<'_>,
    sel: &PodzamenuSelectors,
    settings: &ScrapeSettings,
) -> Result<PathEnd, BrowserError> {
    let headers = page.find("nav.accordion.find", entry(NavPath::Accordion, sel)).await?;
    if headers.is_empty() {
        return Ok(PathEnd::NoEntry { step: step("nav.accordion.find") });
    }
    let mut stop = None;
    for header in &headers {
        // What an open transmission accordion shows inside: gearbox groups or parts links.
        let mut inside = sel.accordion_summary.clone();
        inside.extend(sel.content_links.iter().cloned());
        let mut words = sel.gearbox_group.clone();
        words.extend(sel.gearbox_links.iter().cloned());
        let open = Effect {
            expanded: true,
            appears: inside.clone(),
            appears_text: words.clone(),
            scope_up: Some(sel.accordion_root.clone()),
            text_root: sel.text_root.clone(),
            ..Effect::default()
        };
        let shows = Effect { expanded: false, ..open.clone() };
        if header.expanded.as_deref() != Some("true")
            && !page.effect_now("nav.accordion.open", &header.token, &shows).await?
            && page
                .click(
                    "nav.accordion.open",
                    header,
                    &sel.click_strategies,
                    &open,
                    settings.click_effect_timeout * 2,
                    settings.click_effect_timeout,
                )
                .await?
                .is_none()
        {
            stop = Some(PathEnd::Stopped {
                step: step("nav.accordion.open"),
                detail: format!("\"{}\" did not open", short(&header.text)),
            });
            continue;
        }
        // Its content may load after it opens.
        let arg = json!({
            "scope": header.token, "scopeUp": sel.accordion_root, "selectors": inside, "contains": words,
            "skipToken": header.token, "maxLen": 200, "limit": 1,
        });
        wait_find(page, "nav.accordion.content", arg, settings).await?;
        let mut groups = page
            .find(
                "nav.accordion.groups",
                json!({
                    "scope": header.token, "scopeUp": sel.accordion_root, "selectors": sel.accordion_summary,
                    "contains": sel.gearbox_group, "skipToken": header.token, "maxLen": 80, "limit": 4,
                }),
            )
            .await?;
        if groups.is_empty() {
            groups.push(header.clone());
        }
        for group in &groups {
            let links_arg = json!({
                "scope": group.token, "scopeUp": sel.accordion_root, "selectors": sel.content_links,
                "exact": sel.gearbox_links, "contains": sel.gearbox_links, "prefer": sel.card_assembly_words,
                "maxLen": 200, "limit": 1,
            });
            if group.token != header.token && group.expanded.as_deref() != Some("true") {
                let open_group = Effect {
                    expanded: true,
                    appears: sel.content_links.clone(),
                    appears_text: sel.gearbox_links.clone(),
                    scope_up: Some(sel.accordion_root.clone()),
                    text_root: sel.text_root.clone(),
                    ..Effect::default()
                };
                let shows = Effect { expanded: false, ..open_group.clone() };
                if !page.effect_now("nav.accordion.group", &group.token, &shows).await?
                    && page
                        .click(
                            "nav.accordion.group",
                            group,
                            &sel.click_strategies,
                            &open_group,
                            settings.click_effect_timeout * 2,
                            settings.click_effect_timeout,
                        )
                        .await?
                        .is_none()
                {
                    stop = Some(PathEnd::Stopped {
                        step: step("nav.accordion.group"),
                        detail: format!("\"{}\" did not open", short(&group.text)),
                    });
                    continue;
                }
            }
            let links = wait_find(page, "nav.accordion.links", links_arg, settings).await?;
            let Some(link) = links.into_iter().next() else {
                stop = Some(PathEnd::Stopped {
                    step: step("nav.accordion.links"),
                    detail: format!("no parts link named like the gearbox under \"{}\"", short(&group.text)),
                });
                continue;
            };
            let trail = if group.token == header.token {
                format!("{} > {}", short(&header.text), short(&link.text))
            } else {
                format!("{} > {} > {}", short(&header.text), short(&group.text), short(&link.text))
            };
            return open_parts(page, "nav.accordion.link", &link, trail, sel, settings).await;
        }
    }
    Ok(stop.unwrap_or_else(|| PathEnd::Stopped {
        step: step("nav.accordion.groups"),
        detail: "no gearbox group in the transmission accordion".into(),
    }))
}

/// Path C: `СХЕМЫ УЗЛОВ` tab → transmission section → gearbox card (→ sub-scheme).
async fn via_schemes_tab(
    page: &mut Page<'_>,
    sel: &PodzamenuSelectors,
    settings: &ScrapeSettings,
) -> Result<PathEnd, BrowserError> {
    let tabs = page.find("nav.tab.find", entry(NavPath::SchemesTab, sel)).await?;
    let Some(tab) = tabs.into_iter().next() else {
        return Ok(PathEnd::NoEntry { step: step("nav.tab.find") });
    };
    let sections_shown = Effect {
        selected: true,
        appears: sel.section_selectors.clone(),
        appears_text: sel.section_keywords.clone(),
        new_only: true,
        mark_seen: sel.section_selectors.clone(),
        mark_shown_only: true,
        text_root: sel.text_root.clone(),
        ..Effect::default()
    };
    if page
        .click(
            "nav.tab.open",
            &tab,
            &sel.click_strategies,
            &sections_shown,
            settings.click_effect_timeout * 2,
            settings.click_effect_timeout,
        )
        .await?
        .is_none()
    {
        return Ok(PathEnd::Stopped {
            step: step("nav.tab.open"),
            detail: format!("\"{}\" did not open", short(&tab.text)),
        });
    }
    let arg = json!({
        "selectors": sel.section_selectors, "exact": sel.section_keywords, "contains": sel.section_keywords,
        "maxLen": 120, "visibleOnly": true, "freshFirst": true, "limit": 1, "skipToken": tab.token,
    });
    let Some(section) = wait_find(page, "nav.tab.sections", arg, settings).await?.into_iter().next() else {
        return Ok(PathEnd::Stopped {
            step: step("nav.tab.sections"),
            detail: format!("no transmission section under \"{}\"", short(&tab.text)),
        });
    };
    let mut cards_or_parts = sel.card_selectors.clone();
    cards_or_parts.extend(sel.generic_cards.iter().cloned());
    cards_or_parts.extend(sel.detail_ready.iter().cloned());
    cards_or_parts.push("table".into());
    let cards_shown = Effect {
        appears: cards_or_parts.clone(),
        new_only: true,
        mark_seen: cards_or_parts,
        mark_shown_only: true,
        error_selectors: sel.error_selectors.clone(),
        error_patterns: sel.error_patterns.clone(),
        text_root: sel.text_root.clone(),
        ..Effect::default()
    };
    let opened = page
        .click(
            "nav.tab.section",
            &section,
            &sel.click_strategies,
            &cards_shown,
            settings.click_effect_timeout * 2,
            settings.click_effect_timeout,
        )
        .await?;
    let trail = format!("{} > {}", short(&tab.text), short(&section.text));
    match &opened {
        Some(Clicked { sign: Sign::Error, seen, .. }) => {
            return Ok(PathEnd::Failed {
                step: step("nav.tab.section"),
                reason: format!("site error after opening \"{}\": {seen}", short(&section.text)),
                transient: true,
            });
        }
        // The section itself lists the parts (no cards).
        Some(Clicked { selector: Some(s), .. }) if s == "table" || sel.detail_ready.contains(s) => {
            let reached = read_parts(page, sel, settings, &step("nav.tab.section"), trail.clone(), true).await?;
            if !reached.rows.is_empty() {
                return Ok(PathEnd::Reached(reached));
            }
        }
        _ => {}
    }
    let arg = json!({
        "cards": sel.card_selectors, "keywords": sel.card_keywords, "assembly": sel.card_assembly_words,
        "actions": sel.card_actions, "generic": sel.generic_cards,
        "skipTokens": [tab.token.clone(), section.token.clone()],
    });
    let card = if opened.is_some() {
        page.poll("nav.tab.card", CHOOSE_CARD_JS, &arg, page.short_bound(settings.find_wait)).await?
    } else {
        Some(page.exec("nav.tab.card", CHOOSE_CARD_JS, arg).await?).filter(|v| !v.is_null())
    };
    let card: Option<Found> = card.and_then(|v| serde_json::from_value(v).ok());
    let Some(card) = card else {
        // A section page without cards may itself list the parts.
        let reached = read_parts(page, sel, settings, &step("nav.tab.section"), trail.clone(), false).await?;
        if !reached.rows.is_empty() {
            return Ok(PathEnd::Reached(reached));
        }
        return Ok(PathEnd::Stopped {
            step: step("nav.tab.card"),
            detail: format!("no gearbox card or parts under \"{trail}\""),
        });
    };
    if card.how.as_deref() == Some("generic") {
        page.used("nav:schemes_tab:generic_card");
    }
    let trail = format!("{trail} > {} [{}]", short(card.card.as_deref().unwrap_or("")), short(&card.text));
    open_parts(page, "nav.tab.card_open", &card, trail, sel, settings).await
}

/// Paths B and D: a link named like the gearbox assembly, or any gearbox link.
async fn via_link(
    page: &mut Page<'_>,
    path: NavPath,
    sel: &PodzamenuSelectors,
    settings: &ScrapeSettings,
) -> Result<PathEnd, BrowserError> {
    let name = path.as_str();
    let links = page.find(&format!("nav.{name}.find"), entry(path, sel)).await?;
    let Some(link) = links.into_iter().next() else {
        return Ok(PathEnd::NoEntry { step: step(&format!("nav.{name}.find")) });
    };
    let trail = short(&link.text);
    open_parts(page, &format!("nav.{name}.open"), &link, trail, sel, settings).await
}
