//! One site visit on a WebDriver session: bounded steps, timing records, JS helpers, evidence.

use std::future::Future;
use std::time::{Duration, Instant};

use fantoccini::error::CmdError;
use fantoccini::{Client, Locator};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::BrowserError;
use super::outcome::{Evidence, Source, StepOutcome, StepRecord};

macro_rules! script {
    ($file:literal) => {
        concat!(include_str!("js/common.js"), "\n", include_str!($file))
    };
}

pub(crate) const STATUS_JS: &str = script!("js/status.js");
pub(crate) const PROBE_JS: &str = script!("js/probe.js");
pub(crate) const FIND_JS: &str = script!("js/find.js");
pub(crate) const CLICK_JS: &str = script!("js/click.js");
pub(crate) const EFFECT_JS: &str = script!("js/effect.js");
pub(crate) const PAGE_DATA_JS: &str = script!("js/page_data.js");
pub(crate) const BLOCKS_JS: &str = script!("js/blocks.js");
pub(crate) const CHOOSE_CARD_JS: &str = script!("js/choose_card.js");
pub(crate) const PREPARE_JS: &str = script!("js/prepare.js");
pub(crate) const CHANGED_JS: &str = script!("js/changed.js");
pub(crate) const SETTLE_JS: &str = script!("js/settle.js");

/// How a control is clicked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClickStrategy {
    /// JS-dispatched `mousedown`, `mouseup`, `click` on the element.
    Dispatch,
    /// WebDriver Element Click (trusted input events at the element's centre).
    Native,
    /// Plain `element.click()`.
    Js,
}

impl ClickStrategy {
    fn as_str(self) -> &'static str {
        match self {
            Self::Dispatch => "dispatch",
            Self::Native => "native",
            Self::Js => "js",
        }
    }
}

/// An element found by `find.js`, marked with a token for later clicks.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Found {
    pub token: String,
    pub text: String,
    #[serde(default)]
    pub expanded: Option<String>,
    #[serde(default)]
    pub card: Option<String>,
    /// How `choose_card.js` found it (`card`, `generic`).
    #[serde(default)]
    pub how: Option<String>,
}

/// What a click must change to count as having worked: the first of these signs that shows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Effect {
    /// `aria-expanded="true"` on the control.
    pub expanded: bool,
    /// `aria-selected="true"` (or a selected class) on the control.
    pub selected: bool,
    /// A shown element of these selectors …
    pub appears: Vec<String>,
    /// … whose text contains one of these (lower case; empty: any text) …
    pub appears_text: Vec<String>,
    /// … inside the closest element of this selector around the control (else anywhere) …
    pub scope_up: Option<String>,
    /// … and that was not on the page before the click.
    pub new_only: bool,
    /// Visible-text patterns; those matching before the click are ignored.
    pub patterns: Vec<String>,
    /// Site error markers shown after the click.
    pub error_selectors: Vec<String>,
    /// Site error patterns on the visible text (those matching before the click are ignored).
    pub error_patterns: Vec<String>,
    /// Elements marked as already seen before the click, so that later reads can tell new content.
    pub mark_seen: Vec<String>,
    /// Mark only those of `mark_seen` that are shown (a hidden panel the click shows counts as new).
    pub mark_shown_only: bool,
    /// Root of the visible text.
    pub text_root: Vec<String>,
}

/// Which sign showed a click's effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sign {
    /// The control's ARIA state changed (`expanded` / `selected`).
    State,
    /// An expected element appeared.
    Appeared,
    /// A visible-text pattern appeared (e.g. an empty parts list).
    Pattern,
    /// An error page or site error message appeared.
    Error,
    /// The page changed but none of the expected signs showed within the wait.
    Changed,
}

/// A click that showed its effect.
#[derive(Debug, Clone)]
pub(crate) struct Clicked {
    pub strategy: ClickStrategy,
    pub sign: Sign,
    /// What showed it (element text, pattern, error message).
    pub seen: String,
    /// The selector of the element that appeared.
    pub selector: Option<String>,
}

/// A visit of one site with one session: every step bounded and recorded.
pub(crate) struct Page<'a> {
    client: &'a Client,
    source: Source,
    step_timeout: Duration,
    deadline: Instant,
    poll_every: Duration,
    pub evidence: Evidence,
    pub last_url: Option<String>,
}

impl<'a> Page<'a> {
    pub fn new(client: &'a Client, source: Source, step_timeout: Duration, deadline: Instant) -> Self {
        Self {
            client,
            source,
            step_timeout,
            deadline,
            poll_every: Duration::from_millis(100),
            evidence: Evidence::default(),
            last_url: None,
        }
    }

    /// The step bound: the configured step timeout, cut by the lookup deadline.
    pub fn bound(&self) -> Duration {
        self.step_timeout.min(self.deadline.saturating_duration_since(Instant::now()))
    }

    pub fn short_bound(&self, limit: Duration) -> Duration {
        self.bound().min(limit)
    }

    fn step_name(&self, name: &str) -> String {
        format!("{}.{name}", self.source.as_str())
    }

    /// Records a step that already ran.
    pub fn record(&mut self, name: &str, started: Instant, outcome: StepOutcome, detail: Option<String>) {
        let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let name = self.step_name(name);
        if outcome == StepOutcome::Failed {
            tracing::debug!(step = %name, millis, detail = ?detail, "lookup step failed");
        }
        self.evidence.steps.push(StepRecord { name, url: self.last_url.clone(), millis, outcome, detail });
    }

    /// Notes which selector, label or strategy produced data.
    pub fn used(&mut self, what: impl Into<String>) {
        let entry = format!("{}:{}", self.source.as_str(), what.into());
        if !self.evidence.selectors_used.contains(&entry) {
            self.evidence.selectors_used.push(entry);
        }
    }

    /// Runs a WebDriver future under `bound`, mapping errors, without recording.
    pub async fn bounded<T, F>(&self, name: &str, bound: Duration, fut: F) -> Result<T, BrowserError>
    where
        F: Future<Output = Result<T, CmdError>>,
    {
        if bound.is_zero() {
            return Err(BrowserError::timeout(&self.step_name(name), bound));
        }
        match tokio::time::timeout(bound, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(BrowserError::from_cmd(&self.step_name(name), bound, e)),
            Err(_) => Err(BrowserError::timeout(&self.step_name(name), bound)),
        }
    }

    /// Executes a script (bounded by the step timeout).
    pub async fn exec(&self, name: &str, script: &str, arg: Value) -> Result<Value, BrowserError> {
        let client = self.client;
        self.bounded(name, self.bound(), client.execute(script, vec![arg])).await
    }

    /// Runs `script` until it returns something other than `null`/`false`, for at most `bound`.
    /// `Ok(None)` when time ran out.
    pub async fn poll(
        &self,
        name: &str,
        script: &str,
        arg: &Value,
        bound: Duration,
    ) -> Result<Option<Value>, BrowserError> {
        let until = Instant::now() + bound;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let value = self.bounded(name, left.max(Duration::from_millis(500)).min(self.bound()), {
                self.client.execute(script, vec![arg.clone()])
            });
            let value = match value.await {
                Ok(v) => v,
                // The probe itself ran past the deadline (a loaded machine): what it waited for
                // did not show in time, which is an answer, not a failure of the browser.
                Err(BrowserError::Timeout { .. }) if Instant::now() >= until => return Ok(None),
                Err(e) => return Err(e),
            };
            if !matches!(value, Value::Null | Value::Bool(false)) {
                return Ok(Some(value));
            }
            if Instant::now() + self.poll_every >= until {
                return Ok(None);
            }
            tokio::time::sleep(self.poll_every).await;
        }
    }

    /// Navigates and rejects network errors and HTTP errors (the SPA shell of a site that is down
    /// answers 5xx).
    pub async fn goto(&mut self, url: &str) -> Result<(), BrowserError> {
        let started = Instant::now();
        self.last_url = Some(url.to_owned());
        let bound = self.bound();
        let client = self.client;
        let result = self.bounded("goto", bound, client.goto(url)).await.map_err(|e| match e {
            BrowserError::Navigation { reason, .. } => BrowserError::Navigation { url: url.to_owned(), reason },
            other => other,
        });
        if let Err(err) = result {
            self.record("goto", started, StepOutcome::Failed, Some(err.to_string()));
            return Err(err);
        }
        let status = self.exec("status", STATUS_JS, json!({})).await;
        let status = match status {
            Ok(v) => v,
            Err(err) => {
                self.record("goto", started, StepOutcome::Failed, Some(err.to_string()));
                return Err(err);
            }
        };
        if let Some(href) = status.get("href").and_then(Value::as_str)
            && !href.starts_with("chrome-error:")
        {
            self.last_url = Some(href.to_owned());
        }
        if let Some(neterror) = status.get("neterror").and_then(Value::as_str) {
            let err = BrowserError::Navigation { url: url.to_owned(), reason: neterror.to_owned() };
            self.record("goto", started, StepOutcome::Failed, Some(err.to_string()));
            return Err(err);
        }
        let code = status.get("status").and_then(Value::as_u64).unwrap_or(0);
        if code >= 500 || code == 429 {
            let err = BrowserError::Navigation { url: url.to_owned(), reason: format!("HTTP {code}") };
            self.record("goto", started, StepOutcome::Failed, Some(err.to_string()));
            return Err(err);
        }
        self.record("goto", started, StepOutcome::Ok, Some(format!("HTTP {code}")));
        Ok(())
    }

    /// Whether the session still answers (a WebDriver command that outlived its bound may still
    /// occupy it).
    pub async fn alive(&self) -> bool {
        let client = self.client;
        tokio::time::timeout(Duration::from_secs(3), client.current_url()).await.is_ok_and(|r| r.is_ok())
    }

    /// Finds up to `limit` elements with `find.js`.
    pub async fn find(&self, name: &str, arg: Value) -> Result<Vec<Found>, BrowserError> {
        let value = self.exec(name, FIND_JS, arg).await?;
        Ok(serde_json::from_value(value).unwrap_or_default())
    }

    /// Whether `effect` shows now for the control `token` (without clicking).
    pub async fn effect_now(&self, name: &str, token: &str, effect: &Effect) -> Result<bool, BrowserError> {
        let arg = effect_arg(token, effect, &effect.patterns, &effect.error_patterns);
        Ok(!matches!(self.exec(name, EFFECT_JS, arg).await?, Value::Null | Value::Bool(false)))
    }

    /// Clicks the marked element with each strategy in turn until `effect` shows. After each
    /// strategy the effect gets `retry_wait`; a click that changed the page (content loading, a
    /// navigation) gets the rest of `effect_wait` and no second click, so a toggle is never clicked
    /// twice: if the effect still does not show, the answer is [`Sign::Changed`]. Only a click that
    /// changed nothing is followed by the next strategy; `None` when none changed anything.
    pub async fn click(
        &mut self,
        name: &str,
        target: &Found,
        strategies: &[ClickStrategy],
        effect: &Effect,
        effect_wait: Duration,
        retry_wait: Duration,
    ) -> Result<Option<Clicked>, BrowserError> {
        let started = Instant::now();
        let mut before = effect.patterns.clone();
        before.extend(effect.error_patterns.iter().cloned());
        let prepared = self
            .exec(
                name,
                PREPARE_JS,
                json!({
                    "seen": effect.mark_seen, "shownOnly": effect.mark_shown_only, "patterns": before,
                    "textRoot": effect.text_root,
                }),
            )
            .await?;
        let already: Vec<String> = serde_json::from_value(prepared).unwrap_or_default();
        let fresh = |list: &[String]| list.iter().filter(|p| !already.contains(p)).cloned().collect::<Vec<_>>();
        let effect_arg = effect_arg(&target.token, effect, &fresh(&effect.patterns), &fresh(&effect.error_patterns));
        let start_href = self.last_url.clone();
        for strategy in strategies {
            match strategy {
                ClickStrategy::Native => {
                    let reset = json!({ "token": target.token, "strategy": "reset" });
                    if self.exec(name, CLICK_JS, reset).await? != Value::Bool(true) {
                        continue;
                    }
                    let selector = format!("[data-aisales-target=\"{}\"]", target.token);
                    let client = self.client;
                    let clicked = self
                        .bounded(name, self.bound(), async move {
                            client.find(Locator::Css(&selector)).await?.click().await
                        })
                        .await;
                    match clicked {
                        Ok(()) => {}
                        // Not interactable / covered / gone: try the next strategy.
                        Err(BrowserError::Command { .. }) => continue,
                        Err(err) => return Err(err),
                    }
                }
                other => {
                    let arg = json!({ "token": target.token, "strategy": other.as_str() });
                    if self.exec(name, CLICK_JS, arg).await? != Value::Bool(true) {
                        continue;
                    }
                }
            }
            let first = retry_wait.min(effect_wait).min(self.bound());
            let mut seen = self.poll(name, EFFECT_JS, &effect_arg, first).await?;
            if seen.is_none() {
                let changed = self.exec(name, CHANGED_JS, json!({})).await?;
                let muts = changed.get("muts").and_then(Value::as_i64).unwrap_or(0);
                let href = changed.get("href").and_then(Value::as_str).map(str::to_owned);
                if muts != 0 || (href.is_some() && href != start_href) {
                    let rest = effect_wait.saturating_sub(first).min(self.bound());
                    seen = self.poll(name, EFFECT_JS, &effect_arg, rest).await?;
                    if seen.is_none() {
                        self.record(
                            name,
                            started,
                            StepOutcome::Miss,
                            Some(format!(
                                "{} via {}: page changed, expected effect not seen",
                                short(&target.text),
                                strategy.as_str()
                            )),
                        );
                        return Ok(Some(Clicked {
                            strategy: *strategy,
                            sign: Sign::Changed,
                            seen: String::new(),
                            selector: None,
                        }));
                    }
                }
            }
            let Some(seen) = seen else { continue };
            if let Some(href) = seen.get("href").and_then(Value::as_str) {
                self.last_url = Some(href.to_owned());
            }
            let sign = match seen.get("by").and_then(Value::as_str).unwrap_or("") {
                "expanded" | "selected" => Sign::State,
                "pattern" => Sign::Pattern,
                "error" => Sign::Error,
                _ => Sign::Appeared,
            };
            let what = seen.get("text").and_then(Value::as_str).unwrap_or("").to_owned();
            let selector = seen.get("sel").and_then(Value::as_str).map(str::to_owned);
            let outcome = if sign == Sign::Error { StepOutcome::Failed } else { StepOutcome::Ok };
            self.record(
                name,
                started,
                outcome,
                Some(format!("{} via {}{}", short(&target.text), strategy.as_str(), sign_detail(sign, &what))),
            );
            return Ok(Some(Clicked { strategy: *strategy, sign, seen: what, selector }));
        }
        self.record(name, started, StepOutcome::Miss, Some(format!("no effect: {}", short(&target.text))));
        Ok(None)
    }

    /// Waits until the page stops loading: no shown loading indicator and no element added or
    /// removed for `quiet`, for at most `bound`. Returns whether it settled.
    pub async fn settle(
        &self,
        name: &str,
        loading: &[String],
        quiet: Duration,
        bound: Duration,
    ) -> Result<bool, BrowserError> {
        let quiet_ms = u64::try_from(quiet.as_millis()).unwrap_or(u64::MAX);
        let arg = json!({ "loading": loading });
        let until = Instant::now() + bound.min(self.bound());
        loop {
            let state = self.exec(name, SETTLE_JS, arg.clone()).await?;
            let busy = state.get("busy").is_some_and(|b| !b.is_null());
            let calm = state.get("quiet").and_then(Value::as_u64).unwrap_or(0);
            if !busy && calm >= quiet_ms {
                return Ok(true);
            }
            if Instant::now() + self.poll_every >= until {
                return Ok(false);
            }
            tokio::time::sleep(self.poll_every).await;
        }
    }

    /// Screenshot and rendered HTML into the evidence, each bounded; failures are ignored.
    pub async fn capture(&mut self, max_html_bytes: usize) {
        let started = Instant::now();
        let bound = self.short_bound(Duration::from_secs(5)).max(Duration::from_secs(2));
        let client = self.client;
        if let Ok(Ok(png)) = tokio::time::timeout(bound, client.screenshot()).await {
            self.evidence.screenshot_png = Some(png);
        }
        if let Ok(Ok(html)) = tokio::time::timeout(bound, client.source()).await {
            self.evidence.page_html = Some(truncate(html, max_html_bytes));
        }
        if let Ok(Ok(url)) = tokio::time::timeout(bound, client.current_url()).await {
            self.last_url = Some(url.to_string());
        }
        let detail = format!(
            "screenshot {} bytes, html {} bytes",
            self.evidence.screenshot_png.as_ref().map_or(0, Vec::len),
            self.evidence.page_html.as_ref().map_or(0, String::len)
        );
        self.record("capture", started, StepOutcome::Ok, Some(detail));
    }

    /// Evidence with the final URL filled in.
    pub fn finish(mut self) -> Evidence {
        self.evidence.source_url = self.last_url.take();
        if !self.evidence.sources_tried.contains(&self.source) {
            self.evidence.sources_tried.push(self.source);
        }
        self.evidence
    }
}

fn effect_arg(token: &str, effect: &Effect, patterns: &[String], error_patterns: &[String]) -> Value {
    json!({
        "token": token,
        "expanded": effect.expanded,
        "selected": effect.selected,
        "appears": effect.appears,
        "appearsText": effect.appears_text,
        "scope": effect.scope_up.as_ref().map(|_| token),
        "scopeUp": effect.scope_up,
        "newOnly": effect.new_only,
        "patterns": patterns,
        "errorSelectors": effect.error_selectors,
        "errorPatterns": error_patterns,
        "textRoot": effect.text_root,
    })
}

fn sign_detail(sign: Sign, what: &str) -> String {
    match sign {
        Sign::State => String::new(),
        Sign::Appeared => format!(" ({})", short(what)),
        Sign::Pattern => format!(" (text: {what})"),
        Sign::Error => format!(" (site error: {})", short(what)),
        Sign::Changed => " (page changed)".into(),
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary.
pub(crate) fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while cut > 0 && !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

pub(crate) fn short(text: &str) -> String {
    text.chars().take(80).collect()
}
