//! The vehicle-lookup worker: turns a conversation's request into a `VehicleLookup`, runs its
//! rounds in headless Chromium (one [`BrowserPool`] per process), and tells the conversation the
//! outcome with a gearbox reply suggestion from the tenant's templates.
//!
//! One kind, three jobs (`payload.action`):
//!
//! * `request` — records the conversation's request on the lookup (`LookupRequested`, or
//!   `LookupRequestMerged` when a round is already running or answered).
//! * `lookup` — one round: the cache per normalised identifier first; else claim an attempt
//!   (`LookupStarted`) before opening a browser, look up, keep the evidence (trace; screenshot and
//!   HTML for failures and not-found answers), record the answer. A retryable failure schedules the
//!   next attempt with a growing backoff (`LookupRetryScheduled`, durable: the sweeper dispatches
//!   it when due); after the last attempt the offline VIN decoder answers if it knows the make
//!   (`DECODER_ONLY`), else the round fails. An attempt left "started" by a worker that died is
//!   counted as failed by the next delivery, so no lookup stays started.
//! * `report` — tells the conversation the lookup's newest outcome (`RecordVehicleLookup`), once
//!   per outcome, with the reply suggestion rendered from the tenant's templates.

use std::time::{Duration, Instant};

use aisales_domain::conversation::{
    Conversation, ConversationCommand, LookupReport, LookupReportOutcome, TemplateSuggestion,
};
use aisales_domain::detect;
use aisales_domain::vehicle_lookup::{
    self as vl, EvidenceKind, EvidenceRef, IdType, LastOutcome, LookupResult, LookupStatus, NewRequest, NotFoundResult,
    ResultStatus, VehicleDataStatus, VehicleId, VehicleLookup, VehicleLookupCommand, VehicleLookupError, VehicleMeta,
};
use aisales_domain::vin::VinInfo;
use async_trait::async_trait;
use chrono::{Datelike, Utc};
use uuid::Uuid;

use super::Services;
use crate::browser::{
    BrowserConfig, BrowserPool, CachePolicy, Evidence, LookupFailure, LookupOutcome, SiteConfig, VehicleQuery,
    lookup_vehicle,
};
use crate::bus::jobs::{LookupRequest, VehicleLookupJob};
use crate::bus::worker::JobHandler;
use crate::bus::{Job, Kind};
use crate::store::{EventMetadata, ExecuteError};

/// Source name of answers made by the offline VIN decoder alone.
const DECODER_SOURCE: &str = "vin_decoder";

pub struct LookupHandler {
    services: Services,
    pool: BrowserPool,
    sites: SiteConfig,
    cache: CachePolicy,
}

impl LookupHandler {
    /// A handler with its own browser pool (sessions start lazily, on the first lookup).
    pub fn new(services: Services) -> Self {
        let settings = &services.settings;
        let cache = CachePolicy { found_ttl: settings.lookup.found_ttl, not_found_ttl: settings.lookup.not_found_ttl };
        LookupHandler {
            pool: BrowserPool::new(BrowserConfig::from_settings(settings)),
            sites: SiteConfig::from_settings(settings),
            cache,
            services,
        }
    }

    /// The browser pool of this process.
    pub fn pool(&self) -> &BrowserPool {
        &self.pool
    }

    fn meta(&self, job: &Job) -> EventMetadata {
        job.metadata(super::actor(Kind::VehicleLookup))
    }

    async fn command(
        &self,
        job: &Job,
        lookup_id: Uuid,
        cmd: VehicleLookupCommand,
    ) -> Result<(), ExecuteError<VehicleLookupError>> {
        self.services
            .store
            .execute::<VehicleLookup>(&lookup_id.to_string(), cmd, &(), &self.meta(job))
            .await
            .map(|_| ())
    }

    /// Records a command whose refusal means "someone else already moved the lookup on".
    async fn record(&self, job: &Job, lookup_id: Uuid, cmd: VehicleLookupCommand) -> anyhow::Result<()> {
        match self.command(job, lookup_id, cmd).await {
            Ok(())
            | Err(ExecuteError::Rejected(VehicleLookupError::StaleRound(_) | VehicleLookupError::NotRunnable(_))) => {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn load(&self, lookup_id: Uuid) -> anyhow::Result<VehicleLookup> {
        Ok(self.services.store.load::<VehicleLookup>(&lookup_id.to_string()).await?.state)
    }

    // ----------------------------------------------------------------------------------------
    // request

    async fn request(&self, job: &Job, r: &LookupRequest) -> anyhow::Result<()> {
        let tenant_id = job.tenant_id.ok_or_else(|| anyhow::anyhow!("request job without tenant"))?;
        let request = NewRequest {
            request_id: r.request_id,
            tenant_id,
            conversation_id: Some(r.conversation_id),
            message_id: r.message_id,
            id: VehicleId::parse(r.id_type, &r.value)?,
            source: r.source,
            requested_by: r.requested_by.clone(),
            at: Utc::now(),
        };
        self.command(job, r.lookup_id, VehicleLookupCommand::Request(Box::new(request))).await?;
        Ok(())
    }

    // ----------------------------------------------------------------------------------------
    // lookup

    async fn lookup(&self, job: &Job, lookup_id: Uuid, round: u32) -> anyhow::Result<()> {
        let state = self.load(lookup_id).await?;
        let Some(status) = state.status else { anyhow::bail!("vehicle lookup {lookup_id} does not exist yet") };
        if state.round != round || status.is_final() {
            // An old copy of a finished round.
            return Ok(());
        }
        let id = state.id.clone().ok_or_else(|| anyhow::anyhow!("vehicle lookup {lookup_id} has no identifier"))?;
        let now = Utc::now();
        match status {
            LookupStatus::Started => {
                let limit = chrono::Duration::from_std(self.services.settings.bus.job_timeout)?;
                if state.started_at.is_some_and(|t| now - t < limit) {
                    // Another worker is on it.
                    return Ok(());
                }
                let reason = format!("the worker running attempt {} stopped before it finished", state.attempt);
                tracing::warn!(lookup = %lookup_id, attempt = state.attempt, "taking over an abandoned lookup attempt");
                return self.after_failure(job, &state, lookup_id, &id, reason, true, Vec::new()).await;
            }
            LookupStatus::RetryScheduled if state.retry_at.is_some_and(|t| t > now + chrono::Duration::seconds(1)) => {
                // Delivered before its time; the sweeper dispatches it when due.
                return Ok(());
            }
            _ => {}
        }

        if let Some(cached) = self.cache_get(&id).await? {
            metrics::counter!("aisales_vehicle_lookup_cache_total", "result" => "hit").increment(1);
            tracing::info!(lookup = %lookup_id, status = cached.status(), "vehicle lookup answered from the cache");
            return self.record_outcome(job, lookup_id, round, &id, cached, true, Vec::new()).await;
        }
        metrics::counter!("aisales_vehicle_lookup_cache_total", "result" => "miss").increment(1);

        // Claim the attempt before any browser work.
        match self.command(job, lookup_id, VehicleLookupCommand::Start { round, at: Utc::now() }).await {
            Ok(()) => {}
            Err(ExecuteError::Rejected(VehicleLookupError::StaleRound(_) | VehicleLookupError::NotRunnable(_))) => {
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        let attempt = state.attempt + 1;
        let started = Instant::now();
        // The lookup bounds itself; this bound keeps the job below the worker's job timeout so the
        // attempt is recorded rather than cut off.
        let job_bound = self.services.settings.bus.job_timeout.saturating_sub(Duration::from_secs(10));
        let bound = (self.sites.lookup_timeout + Duration::from_secs(10)).min(job_bound).max(Duration::from_secs(5));
        let result =
            match tokio::time::timeout(bound, lookup_vehicle(&self.pool, &self.sites, VehicleQuery::from(id.clone())))
                .await
            {
                Ok(r) => r,
                Err(_) => Err(LookupFailure {
                    retryable: true,
                    reason: format!("the lookup did not finish within {} s", bound.as_secs()),
                    evidence: Box::default(),
                }),
            };
        metrics::histogram!("aisales_vehicle_lookup_seconds").record(started.elapsed().as_secs_f64());
        match result {
            Ok(outcome) => {
                let evidence = self.keep_evidence(&state, lookup_id, attempt, outcome.evidence()).await?;
                self.cache_put(&id, &outcome).await?;
                self.record_outcome(job, lookup_id, round, &id, outcome, false, evidence).await
            }
            Err(failure) => {
                let evidence = self.keep_evidence(&state, lookup_id, attempt, &failure.evidence).await?;
                let mut state = state;
                state.attempt = attempt;
                state.status = Some(LookupStatus::Started);
                self.after_failure(job, &state, lookup_id, &id, failure.reason, failure.retryable, evidence).await
            }
        }
    }

    /// A failed attempt: schedule the next one, or end the round (with the decoder's answer when it
    /// has one).
    #[expect(clippy::too_many_arguments, reason = "one call site per failure kind; a struct would only rename them")]
    async fn after_failure(
        &self,
        job: &Job,
        state: &VehicleLookup,
        lookup_id: Uuid,
        id: &VehicleId,
        reason: String,
        retryable: bool,
        evidence: Vec<EvidenceRef>,
    ) -> anyhow::Result<()> {
        let lookup = &self.services.settings.lookup;
        let round = state.round;
        if retryable && state.attempt < lookup.max_attempts {
            let wait = lookup
                .retry_backoff
                .saturating_mul(1 << state.attempt.saturating_sub(1).min(6))
                .min(Duration::from_secs(3600));
            tracing::warn!(lookup = %lookup_id, attempt = state.attempt, retry_in_s = wait.as_secs(), reason = %reason, "vehicle lookup attempt failed; retrying later");
            metrics::counter!("aisales_vehicle_lookups_total", "outcome" => "retry").increment(1);
            let retry_at = Utc::now() + chrono::Duration::from_std(wait)?;
            return self
                .record(job, lookup_id, VehicleLookupCommand::ScheduleRetry { round, retry_at, reason, evidence })
                .await;
        }
        let reason = if retryable { format!("gave up after {} attempt(s): {reason}", state.attempt) } else { reason };
        let decoder = decode(id);
        if let Some(result) = decoder_answer(decoder.clone(), &reason, evidence.clone()) {
            tracing::warn!(lookup = %lookup_id, reason = %reason, "catalogues unavailable; answering from the VIN decoder");
            metrics::counter!("aisales_vehicle_lookups_total", "outcome" => "decoder_only").increment(1);
            return self
                .record(
                    job,
                    lookup_id,
                    VehicleLookupCommand::Complete { round, result: Box::new(result), at: Utc::now() },
                )
                .await;
        }
        tracing::warn!(lookup = %lookup_id, reason = %reason, "vehicle lookup failed");
        metrics::counter!("aisales_vehicle_lookups_total", "outcome" => "failed").increment(1);
        self.record(job, lookup_id, VehicleLookupCommand::Fail { round, reason, decoder, evidence, at: Utc::now() })
            .await
    }

    /// Records a catalogue answer (fresh or cached), enriched with the VIN decoder.
    #[expect(clippy::too_many_arguments, reason = "the answer and where it goes")]
    async fn record_outcome(
        &self,
        job: &Job,
        lookup_id: Uuid,
        round: u32,
        id: &VehicleId,
        outcome: LookupOutcome,
        from_cache: bool,
        evidence: Vec<EvidenceRef>,
    ) -> anyhow::Result<()> {
        let decoder = decode(id);
        let at = Utc::now();
        let (label, cmd) = match outcome {
            LookupOutcome::Found { vehicle, gearbox, source, .. } => (
                "found",
                VehicleLookupCommand::Complete {
                    round,
                    result: Box::new(answer(
                        ResultStatus::Found,
                        vehicle,
                        gearbox,
                        source.as_str(),
                        decoder,
                        from_cache,
                        evidence,
                    )),
                    at,
                },
            ),
            LookupOutcome::ModelOnly { vehicle, gearbox, source, .. } => (
                "model_only",
                VehicleLookupCommand::Complete {
                    round,
                    result: Box::new(answer(
                        ResultStatus::ModelOnly,
                        vehicle,
                        gearbox,
                        source.as_str(),
                        decoder,
                        from_cache,
                        evidence,
                    )),
                    at,
                },
            ),
            LookupOutcome::NotFound { source, vehicle, evidence: seen } => (
                "not_found",
                VehicleLookupCommand::RecordNotFound {
                    round,
                    result: Box::new(NotFoundResult {
                        source: source.as_str().into(),
                        sources_tried: seen.sources_tried.iter().map(|s| s.as_str().to_string()).collect(),
                        vehicle,
                        decoder,
                        from_cache,
                        evidence,
                    }),
                    at,
                },
            ),
        };
        metrics::counter!("aisales_vehicle_lookups_total", "outcome" => label).increment(1);
        self.record(job, lookup_id, cmd).await
    }

    /// Stores what the browser saw and returns the references for the event: always the step
    /// trace, and the screenshot and HTML when they were captured (failures, not found).
    async fn keep_evidence(
        &self,
        state: &VehicleLookup,
        lookup_id: Uuid,
        attempt: u32,
        evidence: &Evidence,
    ) -> anyhow::Result<Vec<EvidenceRef>> {
        let trace = serde_json::json!({
            "steps": evidence.steps,
            "selectors_used": evidence.selectors_used,
            "sources_tried": evidence.sources_tried,
            "source_url": evidence.source_url,
            "total_millis": evidence.total_millis(),
        });
        let mut items: Vec<(EvidenceKind, Vec<u8>)> = vec![(EvidenceKind::Trace, serde_json::to_vec(&trace)?)];
        if let Some(png) = &evidence.screenshot_png {
            items.push((EvidenceKind::Screenshot, png.clone()));
        }
        if let Some(html) = &evidence.page_html {
            items.push((EvidenceKind::Html, html.clone().into_bytes()));
        }
        let mut refs = Vec::with_capacity(items.len());
        for (kind, bytes) in items {
            let id = Uuid::now_v7();
            sqlx::query(
                "INSERT INTO lookup_evidence (id, tenant_id, lookup_id, round, attempt, kind, content_type, content, size_bytes) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(id)
            .bind(state.tenant_id)
            .bind(lookup_id)
            .bind(state.round as i32)
            .bind(attempt as i32)
            .bind(kind.as_str())
            .bind(kind.content_type())
            .bind(&bytes)
            .bind(i32::try_from(bytes.len()).unwrap_or(i32::MAX))
            .execute(&self.services.pool)
            .await?;
            refs.push(EvidenceRef { id, kind });
        }
        Ok(refs)
    }

    async fn cache_get(&self, id: &VehicleId) -> anyhow::Result<Option<LookupOutcome>> {
        let row: Option<serde_json::Value> = sqlx::query_scalar(
            "UPDATE vehicle_lookup_cache SET hits = hits + 1 WHERE cache_key = $1 AND expires_at > now() RETURNING outcome",
        )
        .bind(id.cache_key())
        .fetch_optional(&self.services.pool)
        .await?;
        match row.map(serde_json::from_value::<LookupOutcome>) {
            Some(Ok(outcome)) => Ok(Some(outcome)),
            Some(Err(e)) => {
                tracing::warn!(key = %id.cache_key(), error = %e, "unreadable cache entry ignored");
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// Caches a catalogue answer without its screenshot and HTML (failures are never cached).
    async fn cache_put(&self, id: &VehicleId, outcome: &LookupOutcome) -> anyhow::Result<()> {
        let mut stored = outcome.clone();
        let seen = stored.evidence_mut();
        *seen = Evidence {
            sources_tried: seen.sources_tried.clone(),
            source_url: seen.source_url.clone(),
            ..Evidence::default()
        };
        let ttl = chrono::Duration::from_std(self.cache.ttl_for(outcome))?;
        sqlx::query(
            "INSERT INTO vehicle_lookup_cache (cache_key, id_type, value, status, outcome, source, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, now() + $7::interval) \
             ON CONFLICT (cache_key) DO UPDATE SET status = EXCLUDED.status, outcome = EXCLUDED.outcome, \
               source = EXCLUDED.source, expires_at = EXCLUDED.expires_at, updated_at = now()",
        )
        .bind(id.cache_key())
        .bind(id.id_type().as_str())
        .bind(id.value())
        .bind(outcome.status())
        .bind(serde_json::to_value(&stored)?)
        .bind(outcome.source().as_str())
        .bind(format!("{} seconds", ttl.num_seconds()))
        .execute(&self.services.pool)
        .await?;
        Ok(())
    }

    // ----------------------------------------------------------------------------------------
    // report

    async fn report(&self, job: &Job, lookup_id: Uuid) -> anyhow::Result<()> {
        let state = self.load(lookup_id).await?;
        let (Some(conversation), Some(last)) = (state.conversation_id, state.last_outcome) else { return Ok(()) };
        let (id_type, value) =
            state.id.as_ref().map_or((IdType::Vin, String::new()), |i| (i.id_type(), i.value().to_string()));
        let outcome = match (last, &state.data) {
            (LastOutcome::Failure, _) | (_, None) => LookupReportOutcome::Failed {
                id_type,
                value,
                reason: state.failure.clone().unwrap_or_else(|| "the lookup failed".into()),
            },
            (_, Some(data)) => LookupReportOutcome::Data(Box::new(data.clone())),
        };
        let suggestion = match (&outcome, last) {
            (LookupReportOutcome::Data(data), LastOutcome::Answer) => {
                self.suggestion(job, conversation, lookup_id, state.revision, data).await?
            }
            _ => None,
        };
        let cmd = ConversationCommand::RecordVehicleLookup(Box::new(LookupReport {
            lookup_id,
            revision: state.revision,
            outcome,
            suggestion,
        }));
        let meta = self.meta(job);
        self.services.store.execute::<Conversation>(&conversation.to_string(), cmd, &(), &meta).await?;
        Ok(())
    }

    /// The gearbox reply suggestion of an answer, from the tenant's templates.
    async fn suggestion(
        &self,
        job: &Job,
        conversation: Uuid,
        lookup_id: Uuid,
        revision: u32,
        data: &vl::VehicleData,
    ) -> anyhow::Result<Option<TemplateSuggestion>> {
        let Some(tenant_id) = job.tenant_id else { return Ok(None) };
        let Some(tenant) = self.services.tenancy.tenant(&self.services.pool, tenant_id).await? else {
            return Ok(None);
        };
        // The gearbox type the customer named wins over the catalogue's.
        let history = super::suggest::history(&self.services.pool, &conversation.to_string(), 20).await?;
        let customer_type = history
            .lines
            .iter()
            .rev()
            .filter(|(who, _)| *who == aisales_domain::prompt::Speaker::Customer)
            .find_map(|(_, text)| detect::detect(text).gearbox_type);
        Ok(vl::gearbox_suggestion(&tenant.settings, data, customer_type).map(|s| TemplateSuggestion {
            suggestion_id: Uuid::new_v5(&lookup_id, format!("suggestion:{revision}").as_bytes()),
            template: s.template.into(),
            text: s.text,
            intent: s.intent,
            confidence: s.confidence,
        }))
    }
}

/// The offline decoding of a VIN (none for FRAME numbers).
fn decode(id: &VehicleId) -> Option<VinInfo> {
    (id.id_type() == IdType::Vin)
        .then(|| aisales_domain::vin::decode(id.value(), Utc::now().year().clamp(1980, 2100) as u16))
        .flatten()
}

/// A decoder-only answer, when the decoder knows the make.
fn decoder_answer(decoder: Option<VinInfo>, reason: &str, evidence: Vec<EvidenceRef>) -> Option<LookupResult> {
    let info = decoder?;
    let make = info.manufacturer.clone()?;
    Some(LookupResult {
        status: ResultStatus::DecoderOnly,
        vehicle: VehicleMeta { make: Some(make), ..VehicleMeta::default() },
        gearbox: Default::default(),
        source: DECODER_SOURCE.into(),
        confidence: vl::confidence(VehicleDataStatus::DecoderOnly, false, false, Some(DECODER_SOURCE), false),
        decoder: Some(info),
        from_cache: false,
        note: Some(format!("the catalogues could not answer ({reason}); vehicle data from the VIN decoder only")),
        evidence,
    })
}

fn answer(
    status: ResultStatus,
    vehicle: VehicleMeta,
    gearbox: vl::GearboxInfo,
    source: &str,
    decoder: Option<VinInfo>,
    from_cache: bool,
    evidence: Vec<EvidenceRef>,
) -> LookupResult {
    let confidence = vl::confidence(
        status.into(),
        gearbox.oem.is_some(),
        gearbox.model.is_some(),
        Some(source),
        !gearbox.oem_candidates.is_empty(),
    );
    LookupResult {
        status,
        vehicle,
        gearbox,
        source: source.into(),
        decoder,
        confidence,
        from_cache,
        note: None,
        evidence,
    }
}

#[async_trait]
impl JobHandler for LookupHandler {
    fn kind(&self) -> Kind {
        Kind::VehicleLookup
    }

    async fn handle(&self, job: &Job) -> anyhow::Result<()> {
        match job.payload::<VehicleLookupJob>()? {
            VehicleLookupJob::Request(r) => self.request(job, &r).await,
            VehicleLookupJob::Lookup { lookup_id, round } => self.lookup(job, lookup_id, round).await,
            VehicleLookupJob::Report { lookup_id } => self.report(job, lookup_id).await,
        }
    }

    async fn dead_letter(&self, job: &Job, reason: &str) -> anyhow::Result<()> {
        let fail = |round: u32| VehicleLookupCommand::Fail {
            round,
            reason: reason.to_string(),
            decoder: None,
            evidence: Vec::new(),
            at: Utc::now(),
        };
        match job.payload::<VehicleLookupJob>()? {
            VehicleLookupJob::Lookup { lookup_id, round } => self.record(job, lookup_id, fail(round)).await,
            VehicleLookupJob::Request(r) => {
                // Record the request, then give its round up at once.
                self.request(job, &r).await?;
                let state = self.load(r.lookup_id).await?;
                if state.status.is_some_and(|s| !s.is_final()) {
                    self.record(job, r.lookup_id, fail(state.round)).await?;
                }
                Ok(())
            }
            VehicleLookupJob::Report { lookup_id } => self.report(job, lookup_id).await,
        }
    }

    async fn retry(&self, job: &Job) -> anyhow::Result<()> {
        match job.payload::<VehicleLookupJob>()? {
            VehicleLookupJob::Lookup { lookup_id, .. } => {
                let cmd = VehicleLookupCommand::Retry { by: "dead-letter retry".into(), at: Utc::now() };
                match self.command(job, lookup_id, cmd).await {
                    Ok(()) | Err(ExecuteError::Rejected(VehicleLookupError::CannotRetry(_))) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            _ => self.handle(job).await,
        }
    }

    async fn shutdown(&self) {
        self.pool.close_all().await;
    }
}
