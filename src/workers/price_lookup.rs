//! The price-lookup worker: records requests on the `PriceLookup` of their search key, runs each
//! round's search over the sources in order, concludes it and offers the answer to every
//! conversation waiting for it, with the tenant's margin, through the usual suggestion flow.
//!
//! Sources, in order, each recorded with its queries, URLs and outcome (a failing source is
//! recorded as failed, never replaced by a made-up price):
//!
//! 1. the tenant's own price list;
//! 2. a fresh market snapshot of the same search key (shared by tenants: market 7 d, not found
//!    24 h, estimate 2 h — checked against the configured clock on every read); when there is
//!    one, the web search is skipped;
//! 3. Yandex Cloud Search (one record per query, retried once when the API says it may help), then
//!    the best listing pages it found, fetched at once within a timeout each (a 5xx or a timeout is
//!    tried once more), parsed by the site parsers;
//! 4. an AI estimate, only when nothing above priced it and the tenant enables it.
//!
//! Then `Conclude`: priced, estimated, or not found (escalated when the tenant wants it), and a
//! snapshot of what the search found for other lookups of the key.
//!
//! Jobs (`payload.action`): `from_vehicle_lookup` and `from_message` record a request; `search`
//! runs a round and offers its answer; `offer` offers a fresh recorded answer to a conversation
//! that asked for it again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aisales_domain::conversation::{Conversation, ConversationCommand, Decision, Drafted, PriceReport};
use aisales_domain::detect;
use aisales_domain::price::{
    Listing, PriceSubject, Rates, RawListing as DomainListing, ReplyContext, SubjectInput, build_yandex_queries,
    price_suggestions, select_pages,
};
use aisales_domain::price_lookup::{
    PriceBasis, PriceLookup, PriceLookupCommand, PriceLookupError, PriceLookupStatus, PriceOutcome, Requester,
    SourceKind, SourceOutcome, SourceReport,
};
use aisales_domain::reply::{self, DelayPlan, DraftAssessment};
use aisales_domain::vehicle_lookup::VehicleLookup;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use uuid::Uuid;

use super::Services;
use crate::application::price_lookups::{self as service, TenantPriceSettings};
use crate::bus::jobs::PriceLookupJob;
use crate::bus::worker::JobHandler;
use crate::bus::{Job, Kind};
use crate::price::estimate::PriceEstimator;
use crate::price::{FetchError, ListingPages, PageFetcher, PageListings, YandexError, YandexSearchClient};
use crate::store::{EventMetadata, ExecuteError};

/// Pause before asking the search API again after a retryable failure (at most).
const SEARCH_RETRY_WAIT: Duration = Duration::from_secs(2);
/// Pause before fetching a listing page again after a 5xx or a timeout.
const PAGE_RETRY_WAIT: Duration = Duration::from_millis(300);

pub struct PriceHandler {
    services: Services,
    yandex: YandexSearchClient,
    pages: ListingPages,
    estimator: PriceEstimator,
    rates: tokio::sync::Mutex<Option<(Instant, Rates)>>,
}

impl PriceHandler {
    pub fn new(services: Services) -> Self {
        let cfg = &services.settings.prices;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(cfg.sources.yandex_timeout + Duration::from_secs(5))
            .build()
            .expect("HTTP client builds");
        let fetcher = PageFetcher::new(&cfg.sources).expect("page fetcher builds");
        PriceHandler {
            yandex: YandexSearchClient::new(http, &cfg.sources),
            pages: ListingPages::new(fetcher, None, cfg.sources.render_timeout),
            estimator: PriceEstimator::from_settings(&services.settings),
            rates: tokio::sync::Mutex::new(None),
            services,
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.services.settings.prices.clock.now()
    }

    fn meta(&self, job: &Job) -> EventMetadata {
        job.metadata(super::actor(Kind::PriceLookup))
    }

    async fn load(&self, id: Uuid) -> anyhow::Result<PriceLookup> {
        Ok(self.services.store.load::<PriceLookup>(&id.to_string()).await?.state)
    }

    async fn command(
        &self,
        job: &Job,
        id: Uuid,
        cmd: PriceLookupCommand,
    ) -> Result<(), ExecuteError<PriceLookupError>> {
        self.services.store.execute::<PriceLookup>(&id.to_string(), cmd, &(), &self.meta(job)).await.map(|_| ())
    }

    /// Records a command whose refusal means the round is over (another delivery finished it).
    async fn record(&self, job: &Job, id: Uuid, cmd: PriceLookupCommand) -> anyhow::Result<bool> {
        match self.command(job, id, cmd).await {
            Ok(()) => Ok(true),
            Err(ExecuteError::Rejected(PriceLookupError::StaleRound(_) | PriceLookupError::NotSearching(_))) => {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A job that ends without an event (a request that cannot be priced): its work item is closed
    /// with the reason, so it is not dispatched again.
    async fn close(&self, job: &Job, reason: &str) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE work_items SET status = 'failed', last_error = $2, updated_at = now() \
              WHERE job_id = $1 AND status IN ('requested', 'started')",
        )
        .bind(&job.job_id)
        .bind(reason)
        .execute(&self.services.pool)
        .await?;
        Ok(())
    }

    /// Marks an offer job done when there was nothing (more) to offer.
    async fn finish(&self, job: &Job) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE work_items SET status = 'done', updated_at = now() \
              WHERE job_id = $1 AND status IN ('requested', 'started')",
        )
        .bind(&job.job_id)
        .execute(&self.services.pool)
        .await?;
        Ok(())
    }

    // ----------------------------------------------------------------------------------------
    // requests

    async fn request(
        &self,
        job: &Job,
        request_id: Uuid,
        input: SubjectInput,
        requester: Requester,
    ) -> anyhow::Result<()> {
        let tenant = job.tenant_id.ok_or_else(|| anyhow::anyhow!("price request job without tenant"))?;
        let meta = self.meta(job);
        match service::request(&self.services.ctx, tenant, input, requester, false, request_id, &meta).await {
            Ok(_) => Ok(()),
            Err(crate::application::CommandError::Invalid { message, .. }) => {
                tracing::info!(job = %job.job_id, reason = %message, "price request not taken");
                self.close(job, &message).await
            }
            Err(e) => Err(anyhow::anyhow!(e)),
        }
    }

    async fn request_for_vehicle_lookup(
        &self,
        job: &Job,
        request_id: Uuid,
        vehicle_lookup_id: Uuid,
        oem: String,
        model: Option<String>,
    ) -> anyhow::Result<()> {
        let vl = self.services.store.load::<VehicleLookup>(&vehicle_lookup_id.to_string()).await?.state;
        let data = vl.data.as_ref();
        let vehicle = data.map(|d| d.vehicle.clone()).unwrap_or_default();
        let gearbox_type = vehicle.transmission.as_deref().and_then(|t| detect::detect(t).gearbox_type);
        let input = SubjectInput {
            oem: Some(oem),
            transmission_code: None,
            make: data.and_then(|d| d.make().map(str::to_string)),
            model: vehicle.model.clone(),
            gearbox_type,
            model_name_hint: model,
            year: vehicle.year.clone(),
            engine: vehicle.engine.clone(),
            drive: vehicle.drive.clone(),
        };
        let requester = Requester::VehicleLookup { lookup_id: vehicle_lookup_id, conversation_id: vl.conversation_id };
        self.request(job, request_id, input, requester).await
    }

    // ----------------------------------------------------------------------------------------
    // search

    /// Currency rates: from `PRICE_RATES_URL` (reused for `rates_ttl`), else offline.
    async fn rates(&self) -> Rates {
        let cfg = &self.services.settings.prices;
        let Some(url) = &cfg.rates_url else { return Rates::offline() };
        let mut cached = self.rates.lock().await;
        if let Some((at, rates)) = cached.as_ref()
            && at.elapsed() < cfg.rates_ttl
        {
            return rates.clone();
        }
        let fetched = async {
            let resp = self.services.http.get(url).timeout(Duration::from_secs(5)).send().await?;
            let text = resp.error_for_status()?.text().await?;
            anyhow::Ok(Rates::from_currency_api(&text)?)
        }
        .await;
        match fetched {
            Ok(rates) => {
                *cached = Some((Instant::now(), rates.clone()));
                rates
            }
            Err(e) => {
                tracing::warn!(error = %e, "currency rates unavailable; the offline rates are used");
                cached.as_ref().map(|(_, r)| r.clone()).unwrap_or_else(Rates::offline)
            }
        }
    }

    async fn search(&self, job: &Job, lookup_id: Uuid, round: u32) -> anyhow::Result<()> {
        let state = self.load(lookup_id).await?;
        let Some(status) = state.status else { anyhow::bail!("price lookup {lookup_id} does not exist yet") };
        if state.round != round || status.is_final() {
            // A redelivered job of a round that ended: only the offers may be left.
            return self.offer_waiting(job, lookup_id).await;
        }
        if status == PriceLookupStatus::Searching {
            let limit = chrono::Duration::from_std(self.services.settings.bus.job_timeout)?;
            if state.started_at.is_some_and(|t| self.now() - t < limit) {
                // Another worker is on it.
                return Ok(());
            }
            tracing::warn!(lookup = %lookup_id, round, "taking over an abandoned price search");
        } else {
            let rates = self.rates().await;
            if !self.record(job, lookup_id, PriceLookupCommand::StartSearch { round, rates, at: self.now() }).await? {
                return Ok(());
            }
        }
        let started = Instant::now();
        let tenant = service::tenant_settings(&self.services.pool, state.tenant_id).await?;
        let subject = state.subject.clone().unwrap_or_default();
        let key = state.key.as_ref().map(|k| k.as_str().to_string()).unwrap_or_default();
        let bound = self.services.settings.prices.lookup_timeout;
        let searched =
            match tokio::time::timeout(bound, self.ask_sources(job, lookup_id, round, &subject, &key, &tenant)).await {
                Ok(result) => result?,
                Err(_) => {
                    tracing::warn!(lookup = %lookup_id, bound_s = bound.as_secs(), "price search cut at its bound");
                    let report = SourceReport::new(
                        SourceKind::ListingPage,
                        SourceOutcome::Failed {
                            reason: format!("the search did not finish within {} s", bound.as_secs()),
                            http_status: None,
                        },
                        self.now(),
                    );
                    self.record(job, lookup_id, PriceLookupCommand::RecordSource { round, report: Box::new(report) })
                        .await?;
                    Searched { fresh_market: false, search_answered: false }
                }
            };
        let concluded = self
            .record(
                job,
                lookup_id,
                PriceLookupCommand::Conclude { round, escalate: tenant.escalation_enabled, at: self.now() },
            )
            .await?;
        metrics::histogram!("aisales_price_lookup_seconds").record(started.elapsed().as_secs_f64());
        let state = self.load(lookup_id).await?;
        if concluded {
            let outcome = state.status.map_or("unknown", PriceLookupStatus::as_str);
            metrics::counter!("aisales_price_lookups_total", "outcome" => outcome).increment(1);
            tracing::info!(lookup = %lookup_id, round, outcome, elapsed_ms = started.elapsed().as_millis() as u64, "price lookup concluded");
            if searched.fresh_market {
                self.save_snapshot(&key, &state, searched.search_answered).await?;
            }
        }
        self.offer_waiting(job, lookup_id).await
    }

    async fn report(&self, job: &Job, lookup_id: Uuid, round: u32, report: SourceReport) -> anyhow::Result<()> {
        let label = report.outcome.status();
        metrics::counter!("aisales_price_source_total", "source" => report.source.as_str(), "outcome" => label)
            .increment(1);
        if !self.record(job, lookup_id, PriceLookupCommand::RecordSource { round, report: Box::new(report) }).await? {
            anyhow::bail!("the round ended while its sources were being asked");
        }
        Ok(())
    }

    async fn ask_sources(
        &self,
        job: &Job,
        lookup_id: Uuid,
        round: u32,
        subject: &PriceSubject,
        key: &str,
        tenant: &TenantPriceSettings,
    ) -> anyhow::Result<Searched> {
        let tenant_id = job.tenant_id.unwrap_or_default();
        // 1. The tenant's own price list.
        let offers = service::own_offers(&self.services.pool, tenant_id, subject).await?;
        let mut own =
            SourceReport::new(SourceKind::OwnPriceList, SourceOutcome::Ok { results: offers.len() as u32 }, self.now());
        own.queries = subject.codes().into_iter().map(service::list_code).collect();
        own.offers = offers;
        self.report(job, lookup_id, round, own).await?;

        // 2. A fresh snapshot of the market for this key.
        let mut searched = Searched { fresh_market: true, search_answered: false };
        let snapshot = self.snapshot(key).await?;
        let mut market_known = false;
        if let Some(s) = &snapshot {
            searched.fresh_market = false;
            let mut report = SourceReport::new(
                SourceKind::MarketSnapshot,
                SourceOutcome::Ok { results: s.listings.len() as u32 },
                self.now(),
            );
            report.queries = vec![format!(
                "{} result of {}, until {}",
                s.kind,
                s.created_at.to_rfc3339(),
                s.expires_at.to_rfc3339()
            )];
            report.urls = s.urls_checked.clone();
            report.listings = s.listings.iter().map(listing_as_raw).collect();
            self.report(job, lookup_id, round, report).await?;
            market_known = true;
            let reason = format!(
                "the market of this key was searched at {} ({}); searched again after {}",
                s.created_at.to_rfc3339(),
                s.kind,
                s.expires_at.to_rfc3339()
            );
            self.report(job, lookup_id, round, skipped(SourceKind::YandexSearch, reason, self.now())).await?;
        }

        // 3. The web search and the listing pages it finds.
        if !market_known {
            let urls = self.web_search(job, lookup_id, round, subject, &mut searched).await?;
            self.read_pages(job, lookup_id, round, urls).await?;
        }

        // 4. The AI estimate, when nothing priced it and the tenant enables it.
        let state = self.load(lookup_id).await?;
        let priced = state.market_analysis().is_priced();
        let reason = if priced {
            Some("the market listings priced it".to_string())
        } else if !state.own_offers.is_empty() {
            Some("the tenant's own price list priced it".to_string())
        } else if !tenant.ai_estimate_enabled {
            Some("the tenant does not enable AI estimates".to_string())
        } else if !self.estimator.is_configured() {
            Some("no AI key is configured (AI_INTEGRATIONS_OPENAI_API_KEY)".to_string())
        } else {
            None
        };
        match (reason, &snapshot) {
            (Some(reason), _) => {
                self.report(job, lookup_id, round, skipped(SourceKind::AiEstimate, reason, self.now())).await?
            }
            (None, Some(s)) if s.kind == "estimate" && s.min.is_some() && s.max.is_some() => {
                let mut report = SourceReport::new(
                    SourceKind::AiEstimate,
                    SourceOutcome::Estimate { min: s.min.unwrap_or_default(), max: s.max.unwrap_or_default() },
                    self.now(),
                );
                report.queries =
                    vec![format!("estimate of {}, until {}", s.created_at.to_rfc3339(), s.expires_at.to_rfc3339())];
                self.report(job, lookup_id, round, report).await?;
            }
            (None, _) => {
                let outcome = match self.estimator.estimate(subject).await {
                    Ok((min, max)) => SourceOutcome::Estimate { min, max },
                    Err(e) => SourceOutcome::Failed { http_status: e.http_status(), reason: e.to_string() },
                };
                let mut report = SourceReport::new(SourceKind::AiEstimate, outcome, self.now());
                report.queries = vec![PriceEstimator::question(subject)];
                self.report(job, lookup_id, round, report).await?;
                // The estimate is fresh work: it is worth keeping for other lookups of the key.
                searched.fresh_market = true;
            }
        }
        Ok(searched)
    }

    /// Asks the search API each query (once more when it may help); answers the result URLs.
    async fn web_search(
        &self,
        job: &Job,
        lookup_id: Uuid,
        round: u32,
        subject: &PriceSubject,
        searched: &mut Searched,
    ) -> anyhow::Result<Vec<String>> {
        if !self.yandex.is_configured() {
            let reason = "the web search is not configured (YANDEX_SEARCH_API_KEY, YANDEX_FOLDER_ID)".to_string();
            self.report(job, lookup_id, round, skipped(SourceKind::YandexSearch, reason, self.now())).await?;
            return Ok(Vec::new());
        }
        let queries = build_yandex_queries(&subject.query_input(false));
        let mut urls: Vec<String> = Vec::new();
        let mut refused: Option<String> = None;
        for query in queries {
            if let Some(reason) = &refused {
                let mut r = skipped(SourceKind::YandexSearch, reason.clone(), self.now());
                r.queries = vec![query];
                self.report(job, lookup_id, round, r).await?;
                continue;
            }
            let mut result = self.yandex.search(&query).await;
            if let Err(e) = &result
                && e.is_retryable()
            {
                tokio::time::sleep(e.retry_after().unwrap_or(SEARCH_RETRY_WAIT).min(SEARCH_RETRY_WAIT)).await;
                result = self.yandex.search(&query).await;
            }
            let mut report = match result {
                Ok(answer) => {
                    searched.search_answered = true;
                    let found: Vec<String> = answer.results.into_iter().map(|r| r.url).collect();
                    let mut r = SourceReport::new(
                        SourceKind::YandexSearch,
                        SourceOutcome::Ok { results: found.len() as u32 },
                        self.now(),
                    );
                    for u in &found {
                        if !urls.contains(u) {
                            urls.push(u.clone());
                        }
                    }
                    r.urls = found;
                    r
                }
                Err(e) => {
                    if matches!(e, YandexError::Unauthorized { .. } | YandexError::NotConfigured) {
                        refused = Some(format!("not asked: the search API refused the previous query ({})", e.kind()));
                    }
                    SourceReport::new(
                        SourceKind::YandexSearch,
                        SourceOutcome::Failed { reason: e.to_string(), http_status: yandex_status(&e) },
                        self.now(),
                    )
                }
            };
            report.queries = vec![query];
            self.report(job, lookup_id, round, report).await?;
        }
        Ok(urls)
    }

    /// Reads the best pages at once (each within the fetcher's timeout) and records each.
    async fn read_pages(&self, job: &Job, lookup_id: Uuid, round: u32, urls: Vec<String>) -> anyhow::Result<()> {
        let cfg = &self.services.settings.prices;
        let pages = select_pages(urls, cfg.max_pages);
        let this = Arc::new(self.pages.clone());
        let mut fetched = futures::stream::iter(pages.into_iter().map(|(url, _score)| {
            let pages = this.clone();
            async move {
                let mut result = pages.listings(&url).await;
                if let Err(e) = &result
                    && e.is_retryable()
                    && !matches!(e, FetchError::Timeout { .. })
                {
                    tokio::time::sleep(PAGE_RETRY_WAIT).await;
                    result = pages.listings(&url).await;
                }
                (url, result)
            }
        }))
        .buffer_unordered(cfg.page_concurrency);
        while let Some((url, result)) = fetched.next().await {
            let report = match result {
                Ok(page) => page_report(url, page, self.now()),
                Err(e) => {
                    let mut r = SourceReport::new(
                        SourceKind::ListingPage,
                        SourceOutcome::Failed {
                            reason: e.to_string(),
                            http_status: match &e {
                                FetchError::Status { status, .. } => Some(*status),
                                _ => None,
                            },
                        },
                        self.now(),
                    );
                    r.urls = vec![url];
                    r
                }
            };
            self.report(job, lookup_id, round, report).await?;
        }
        Ok(())
    }

    // ----------------------------------------------------------------------------------------
    // snapshots

    async fn snapshot(&self, key: &str) -> anyhow::Result<Option<Snapshot>> {
        if key.is_empty() {
            return Ok(None);
        }
        let row: Option<SnapshotRow> = sqlx::query_as(
            "UPDATE price_snapshots SET hits = hits + 1 WHERE search_key = $1 AND expires_at > $2 \
                 RETURNING kind, min_price, max_price, listings, urls_checked, created_at, expires_at",
        )
        .bind(key)
        .bind(self.now())
        .fetch_optional(&self.services.pool)
        .await?;
        Ok(row.map(|(kind, min, max, listings, urls_checked, created_at, expires_at)| Snapshot {
            kind,
            min: min.map(|v| v as u64),
            max: max.map(|v| v as u64),
            listings: serde_json::from_value(listings).unwrap_or_default(),
            urls_checked,
            created_at,
            expires_at,
        }))
    }

    /// Keeps what this round's search found for other lookups of the key (any tenant): market
    /// listings, an estimate, or — when the search API answered — that nothing was found.
    async fn save_snapshot(&self, key: &str, state: &PriceLookup, search_answered: bool) -> anyhow::Result<()> {
        let (Some(outcome), Some(expires_at)) = (&state.outcome, state.expires_at) else { return Ok(()) };
        let (kind, min, max, median, listings, at): (&str, Option<u64>, Option<u64>, Option<u64>, Vec<Listing>, _) =
            match outcome {
                PriceOutcome::Priced { basis: PriceBasis::Market, summary, listings, at, .. } => {
                    ("market", Some(summary.min), Some(summary.max), Some(summary.median), listings.clone(), *at)
                }
                PriceOutcome::Estimated { min, max, at, .. } => ("estimate", Some(*min), Some(*max), None, vec![], *at),
                PriceOutcome::NotFound { at, .. } if search_answered => ("not_found", None, None, None, vec![], *at),
                _ => return Ok(()),
            };
        sqlx::query(
            "INSERT INTO price_snapshots (search_key, kind, min_price, max_price, median_price, listings, urls_checked, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (search_key) DO UPDATE SET kind = EXCLUDED.kind, min_price = EXCLUDED.min_price, \
               max_price = EXCLUDED.max_price, median_price = EXCLUDED.median_price, listings = EXCLUDED.listings, \
               urls_checked = EXCLUDED.urls_checked, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at, hits = 0",
        )
        .bind(key)
        .bind(kind)
        .bind(min.map(|v| v as i64))
        .bind(max.map(|v| v as i64))
        .bind(median.map(|v| v as i64))
        .bind(serde_json::to_value(&listings)?)
        .bind(&state.urls_checked)
        .bind(at)
        .bind(expires_at)
        .execute(&self.services.pool)
        .await?;
        Ok(())
    }

    // ----------------------------------------------------------------------------------------
    // offers

    /// Offers the lookup's current answer to every conversation waiting for it; answers how many.
    async fn offer_waiting(&self, job: &Job, lookup_id: Uuid) -> anyhow::Result<()> {
        let state = self.load(lookup_id).await?;
        let waiting = state.pending_offers().to_vec();
        let Some(answer) = state.answer() else { return Ok(()) };
        if waiting.is_empty() {
            return Ok(());
        }
        let tenant_id = state.tenant_id;
        let prices = service::tenant_settings(&self.services.pool, tenant_id).await?;
        let Some(tenant) = self.services.tenancy.tenant(&self.services.pool, tenant_id).await? else {
            anyhow::bail!("tenant {tenant_id} is gone");
        };
        let subject = state.subject.clone().unwrap_or_default();
        let now = self.now();
        let ctx = ReplyContext {
            subject: &subject,
            settings: &prices.price,
            templates: &prices.templates,
            payment_methods: &prices.payment_methods,
            now,
        };
        let suggestions = price_suggestions(&ctx, answer);
        for problem in suggestions.iter().filter_map(|s| s.template_problem.as_deref()) {
            tracing::warn!(tenant = %tenant_id, problem, "price template not used");
        }
        let kinds: Vec<_> = suggestions.iter().map(|s| s.kind).collect();
        let revision = state.revision;
        let working = reply::is_working_time(
            &tenant.timezone,
            tenant.working_hours_start,
            tenant.working_hours_end,
            &tenant.working_days,
            Utc::now(),
        );
        for conversation in waiting {
            let drafted: Vec<Drafted> = suggestions
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let outcome = reply::decide(
                        &tenant.settings.decision,
                        self.services.settings.bus.autosend_enabled,
                        &DraftAssessment {
                            intent: s.intent,
                            confidence: s.confidence,
                            reply: &s.text,
                            needs_handoff: false,
                            offline: false,
                        },
                    );
                    let mut block = s.autosend_block_reason.map(str::to_string).or(outcome.autosend_block_reason);
                    let mut decision = outcome.decision;
                    if decision == Decision::AutoSend && s.autosend_block_reason.is_some() {
                        decision = Decision::NeedApproval;
                    }
                    let mut send_after = Utc::now();
                    match reply::plan_delay(
                        &tenant.settings,
                        s.text.chars().count(),
                        working,
                        rand::random(),
                        rand::random::<f64>() * 2.0 - 1.0,
                    ) {
                        DelayPlan::SendAfter { delay_ms, .. } => {
                            send_after += chrono::Duration::milliseconds(delay_ms as i64)
                        }
                        DelayPlan::AutoReply { .. } | DelayPlan::Hold => {
                            if block.is_none() && decision == Decision::AutoSend {
                                block = Some("OUTSIDE_WORKING_HOURS".into());
                            }
                        }
                    }
                    let mut explanations = outcome.explanations;
                    explanations.push(format!(
                        "{} from price lookup {lookup_id} (answer {revision}, {})",
                        s.kind.as_str(),
                        state.status.map_or("", PriceLookupStatus::as_str)
                    ));
                    let id = |what: &str| {
                        Uuid::new_v5(&lookup_id, format!("{conversation}:{revision}:{i}:{what}").as_bytes())
                    };
                    Drafted {
                        request_id: lookup_id,
                        suggestion_id: id("suggestion"),
                        text: s.text.clone(),
                        intent: s.intent.to_string(),
                        confidence: outcome.confidence,
                        decision,
                        explanations,
                        source: "price_lookup".into(),
                        model: None,
                        autosend_block_reason: block,
                        reply_id: id("reply"),
                        send_after,
                    }
                })
                .collect();
            let report = PriceReport { lookup_id, revision, suggestions: drafted };
            let cmd = ConversationCommand::RecordPriceSuggestions(Box::new(report));
            match self
                .services
                .store
                .execute::<Conversation>(&conversation.to_string(), cmd, &(), &self.meta(job))
                .await
            {
                Ok(_) => {}
                Err(ExecuteError::Rejected(e)) => {
                    tracing::warn!(lookup = %lookup_id, conversation = %conversation, error = %e, "price suggestions not recorded")
                }
                Err(e) => return Err(e.into()),
            }
            let offered = PriceLookupCommand::RecordSuggestionOffered {
                conversation_id: conversation,
                revision,
                kinds: kinds.clone(),
                at: now,
            };
            match self.command(job, lookup_id, offered).await {
                Ok(()) | Err(ExecuteError::Rejected(PriceLookupError::StaleRevision { .. })) => {}
                Err(e) => return Err(e.into()),
            }
            metrics::counter!("aisales_price_suggestions_offered_total", "answer" => state.status.map_or("unknown", PriceLookupStatus::as_str))
                .increment(1);
        }
        Ok(())
    }
}

/// What the search of a round did.
struct Searched {
    /// The market was searched (not answered from a snapshot): what it found may be kept.
    fresh_market: bool,
    /// At least one search query answered (so "nothing found" is a real answer, not a failure).
    search_answered: bool,
}

/// A `price_snapshots` row: kind, min, max, listings, URLs checked, created, expires.
type SnapshotRow = (String, Option<i64>, Option<i64>, serde_json::Value, Vec<String>, DateTime<Utc>, DateTime<Utc>);

/// A stored market result.
struct Snapshot {
    kind: String,
    min: Option<u64>,
    max: Option<u64>,
    listings: Vec<Listing>,
    urls_checked: Vec<String>,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

fn skipped(source: SourceKind, reason: String, at: DateTime<Utc>) -> SourceReport {
    SourceReport::new(source, SourceOutcome::Skipped { reason }, at)
}

fn yandex_status(e: &YandexError) -> Option<u16> {
    match e {
        YandexError::Unauthorized { message } => Some(if message.starts_with("HTTP 403") { 403 } else { 401 }),
        YandexError::RateLimited { .. } => Some(429),
        YandexError::Server { status, .. } => *status,
        YandexError::Rejected { status, .. } => Some(*status),
        _ => None,
    }
}

/// A listing a snapshot kept, as a page would show it (its price in roubles).
fn listing_as_raw(l: &Listing) -> DomainListing {
    DomainListing {
        url: l.url.clone(),
        site: Some(l.site.clone()),
        title: l.title.clone(),
        price_text: None,
        structured_price: Some(l.price.to_string()),
        structured_currency: Some("RUB".into()),
        mileage_text: l.mileage_km.map(|m| format!("{m} км")),
    }
}

/// The record of one listing page read.
fn page_report(url: String, page: PageListings, at: DateTime<Utc>) -> SourceReport {
    let listings: Vec<DomainListing> = page
        .listings
        .into_iter()
        .map(|l| DomainListing {
            url: l.url,
            site: Some(l.site),
            title: l.title,
            price_text: l.price_text,
            structured_price: l.structured_price.as_ref().map(|p| p.amount.to_string()),
            structured_currency: l.structured_price.map(|p| p.currency),
            mileage_text: l.mileage_text,
        })
        .collect();
    let mut r = SourceReport::new(SourceKind::ListingPage, SourceOutcome::Ok { results: listings.len() as u32 }, at);
    r.urls = vec![url];
    r.listings = listings;
    r
}

#[async_trait]
impl JobHandler for PriceHandler {
    fn kind(&self) -> Kind {
        Kind::PriceLookup
    }

    async fn handle(&self, job: &Job) -> anyhow::Result<()> {
        match job.payload::<PriceLookupJob>()? {
            PriceLookupJob::FromVehicleLookup { request_id, vehicle_lookup_id, oem, model } => {
                self.request_for_vehicle_lookup(job, request_id, vehicle_lookup_id, oem, model).await
            }
            PriceLookupJob::FromMessage { request_id, conversation_id, message_id, code } => {
                let input = SubjectInput { transmission_code: Some(code), ..SubjectInput::default() };
                self.request(job, request_id, input, Requester::CustomerMessage { conversation_id, message_id }).await
            }
            PriceLookupJob::Search { lookup_id, round } => self.search(job, lookup_id, round).await,
            PriceLookupJob::Offer { lookup_id, .. } => {
                self.offer_waiting(job, lookup_id).await?;
                self.finish(job).await
            }
        }
    }

    async fn dead_letter(&self, job: &Job, reason: &str) -> anyhow::Result<()> {
        match job.payload::<PriceLookupJob>()? {
            PriceLookupJob::Search { lookup_id, round } => {
                let fail = PriceLookupCommand::Fail { round, reason: reason.to_string(), at: self.now() };
                self.record(job, lookup_id, fail).await?;
                metrics::counter!("aisales_price_lookups_total", "outcome" => "failed").increment(1);
                self.offer_waiting(job, lookup_id).await
            }
            PriceLookupJob::Offer { .. } => self.finish(job).await,
            _ => self.close(job, reason).await,
        }
    }

    async fn retry(&self, job: &Job) -> anyhow::Result<()> {
        self.handle(job).await
    }
}
