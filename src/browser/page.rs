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
}

/// What a click must change to count as having worked.
pub(crate) enum Effect<'a> {
    /// `aria-expanded="true"` on the control.
    Expanded,
    /// `aria-selected="true"` / selected class on the control.
    Selected,
    /// A visible element of these selectors, or one of these visible-text patterns.
    Appears { selectors: &'a [String], patterns: &'a [String], text_root: &'a [String] },
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
            let value = value.await?;
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

    /// Finds up to `limit` elements with `find.js`.
    pub async fn find(&self, name: &str, arg: Value) -> Result<Vec<Found>, BrowserError> {
        let value = self.exec(name, FIND_JS, arg).await?;
        Ok(serde_json::from_value(value).unwrap_or_default())
    }

    /// Clicks the marked element with each strategy in turn until `effect` shows: within
    /// `effect_wait` after the first strategy, within `retry_wait` after the others. Returns the
    /// strategy that worked.
    pub async fn click(
        &mut self,
        name: &str,
        target: &Found,
        strategies: &[ClickStrategy],
        effect: &Effect<'_>,
        effect_wait: Duration,
        retry_wait: Duration,
    ) -> Result<Option<ClickStrategy>, BrowserError> {
        let started = Instant::now();
        let effect_arg = match effect {
            Effect::Expanded => json!({ "token": target.token, "kind": "expanded" }),
            Effect::Selected => json!({ "token": target.token, "kind": "selected" }),
            Effect::Appears { selectors, patterns, text_root } => {
                json!({ "kind": "appears", "selectors": selectors, "patterns": patterns, "textRoot": text_root })
            }
        };
        for (attempt, strategy) in strategies.iter().enumerate() {
            match strategy {
                ClickStrategy::Native => {
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
                    let value = self.exec(name, CLICK_JS, arg).await?;
                    if value != Value::Bool(true) {
                        continue;
                    }
                }
            }
            let wait = if attempt == 0 { effect_wait } else { retry_wait.min(effect_wait) }.min(self.bound());
            if let Some(seen) = self.poll(name, EFFECT_JS, &effect_arg, wait).await? {
                if let Some(href) = seen.get("href").and_then(Value::as_str) {
                    self.last_url = Some(href.to_owned());
                }
                self.record(
                    name,
                    started,
                    StepOutcome::Ok,
                    Some(format!("{} via {}", short(&target.text), strategy.as_str())),
                );
                return Ok(Some(*strategy));
            }
        }
        self.record(name, started, StepOutcome::Miss, Some(format!("no effect: {}", short(&target.text))));
        Ok(None)
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
