//! Logs (tracing, JSON or pretty, honouring `LOG_LEVEL`), Sentry, and Prometheus metrics.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use secrecy::ExposeSecret;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogFormat, Settings};
use crate::infra::redact::RedactingWriter;

/// Keeps Sentry flushing until dropped at exit.
pub struct TelemetryGuard {
    _sentry: Option<sentry::ClientInitGuard>,
}

/// Installs the global tracing subscriber (and Sentry when `SENTRY_DSN` is set). Idempotent.
pub fn init(settings: &Settings, role: &str) -> TelemetryGuard {
    let level = settings.log_level.as_str();
    // Our crates at the chosen level; chatty dependencies one step quieter.
    let directive = format!(
        "{level},aisales={level},aisales_projections={level},aisales_domain={level},sqlx=warn,hyper=warn,tower_http={level},fantoccini=warn,async_openai=warn"
    );
    let filter = EnvFilter::try_new(&directive).unwrap_or_else(|_| EnvFilter::new("info"));
    // Long-running roles log to standard output (PM2's out log); one-shot commands to standard
    // error, so that what they print (JSON for `tenant create`, `channel add`, …) stays parseable.
    let writer = || if role == "cli" { RedactingWriter::stderr() } else { RedactingWriter::stdout() };
    let fmt_layer = match settings.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(writer())
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().with_writer(writer()).with_ansi(false).boxed(),
    };
    let sentry_guard = settings.sentry_dsn.as_ref().map(|dsn| {
        let mut options = sentry::ClientOptions::default();
        options.dsn = dsn.expose_secret().parse().ok();
        options.release = Some(format!("aisales@{}", env!("CARGO_PKG_VERSION")).into());
        options.environment = Some(settings.app_env.as_str().into());
        options.server_name = Some(role.to_string().into());
        options.send_default_pii = false;
        options.attach_stacktrace = true;
        options.before_send = Some(std::sync::Arc::new(redact_sentry_event));
        sentry::init(options)
    });
    let sentry_layers = sentry_guard.as_ref().map(|_| {
        use sentry::integrations::tracing::{BreadcrumbLayer, ErrorLayer};
        use tracing_subscriber::filter::LevelFilter;
        ErrorLayer::new()
            .with_filter(LevelFilter::ERROR)
            .and_then(BreadcrumbLayer::new().with_filter(LevelFilter::INFO))
    });
    let _ = tracing_subscriber::registry().with(filter).with(fmt_layer).with(sentry_layers).try_init();
    TelemetryGuard { _sentry: sentry_guard }
}

/// Masks secrets and phone numbers in everything sent to Sentry, as in the logs.
fn redact_sentry_event(event: sentry::protocol::Event<'static>) -> Option<sentry::protocol::Event<'static>> {
    let text = serde_json::to_string(&event).ok()?;
    let clean = crate::infra::redact::redact(&text);
    match serde_json::from_str(&clean) {
        Ok(e) => Some(e),
        Err(_) => Some(event),
    }
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Seconds buckets for request and job latency histograms.
const LATENCY_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// Finer seconds buckets for the stages of a job's way to its handler (most take milliseconds).
const STAGE_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 60.0];

/// Buckets for the number of appends the event store writes in one statement (at most 64).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

/// The process-wide Prometheus recorder (installed on first use).
pub fn metrics_handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full("aisales_job_stage_seconds".into()), STAGE_BUCKETS)
                .expect("buckets are valid")
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .expect("buckets are valid")
                .set_buckets_for_metric(Matcher::Full("aisales_event_store_batch_appends".into()), BATCH_BUCKETS)
                .expect("buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            // A second recorder can exist in tests that build several apps; the first one wins.
            let _ = metrics::set_global_recorder(recorder);
            describe_metrics();
            metrics::gauge!("aisales_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            handle
        })
        .clone()
}

/// Renders the metrics in Prometheus text format, refreshing process metrics first.
pub fn render_metrics() -> String {
    let handle = metrics_handle();
    crate::infra::process_metrics::collect();
    handle.run_upkeep();
    handle.render()
}

fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!("aisales_build_info", "Build information; the value is always 1");
    describe_counter!("aisales_http_requests_total", "HTTP requests by method, matched route and status");
    describe_histogram!(
        "aisales_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request latency by method and matched route"
    );
    describe_gauge!("aisales_http_requests_in_flight", "HTTP requests being served");
    describe_counter!(
        "aisales_lead_erasures_total",
        "Erasures of leads that never reached a customer, by whether the lead was erased already (already=true: nothing new was done)"
    );
    describe_counter!(
        "aisales_customer_erasures_total",
        "Customer erasures by whether the customer was erased already (already=true: nothing new was done)"
    );
    describe_counter!("aisales_event_store_appends_total", "Successful appends to the event store by aggregate type");
    describe_counter!("aisales_event_store_events_appended_total", "Events appended by aggregate type");
    describe_counter!("aisales_event_store_conflicts_total", "Appends rejected because another writer appended first");
    describe_histogram!(
        "aisales_event_store_batch_appends",
        "Appends of concurrent commands written together in one statement (group commit)"
    );
    describe_counter!(
        "aisales_event_store_batches_split_total",
        "Batches of appends that failed as a whole (a conflict, a deadlock, an error) and were written one by one"
    );
    describe_counter!(
        "aisales_event_store_stale_cache_total",
        "Commands decided again on loaded state because the cached aggregate was behind"
    );
    describe_histogram!(
        "aisales_command_duration_seconds",
        Unit::Seconds,
        "Command latency including retries, by aggregate type"
    );
    describe_gauge!("aisales_projector_position", "Global position of the last event a projector applied");
    describe_gauge!("aisales_projector_lag_events", "Readable events a projector has not applied yet");
    describe_gauge!(
        "aisales_projector_lag_seconds",
        "Age of the newest event applied when the last batch ran (0 when caught up)"
    );
    describe_gauge!("aisales_projector_owned", "1 when this process owns the projector");
    describe_gauge!(
        "aisales_intake_burst",
        "1 while the server takes in more form and messenger webhooks per second than INTAKE_BURST_RATE"
    );
    describe_gauge!("aisales_intake_burst_seen", "1 while this background process sees an intake burst signalled");
    describe_counter!(
        "aisales_worker_gave_way_ms_total",
        "Milliseconds a worker read no new jobs, giving way to an intake burst, by kind"
    );
    describe_counter!("aisales_projector_events_applied_total", "Events applied by a projector in this process");
    describe_counter!("aisales_projector_batch_failures_total", "Projector batches that failed and were rolled back");
    describe_counter!(
        "aisales_projector_feed_events_total",
        "Events projectors took from the shared feed (memory), read for all (shared_read) or read for themselves (own_read)"
    );
    describe_histogram!("aisales_projector_batch_duration_seconds", Unit::Seconds, "Time to apply one projector batch");
    describe_counter!(
        "aisales_projector_after_commit_failures_total",
        "Post-commit steps of a projector (e.g. pushing jobs) that failed and are made up for later"
    );
    describe_gauge!(
        "aisales_projector_parked",
        "Aggregates a projector could not apply and skips until `projections retry-parked` (alert when above 0)"
    );
    describe_counter!("aisales_projector_parked_total", "Aggregates parked by a projector in this process");
    describe_counter!("aisales_password_verifications_total", "Password verifications (argon2) this process ran");
    describe_counter!(
        "aisales_password_hashing_busy_total",
        "Password checks refused with 503 because every hashing permit was taken"
    );
    describe_gauge!("aisales_event_streams_open", "Open /api/events/stream connections of this process");
    describe_counter!("aisales_ai_requests_total", "Requests to the AI model by outcome");
    describe_counter!("aisales_vision_requests_total", "Photos sent to the vision model by outcome");
    describe_counter!("aisales_media_stored_total", "Customers' files stored");
    describe_counter!("aisales_media_stored_bytes_total", "Bytes of customers' files stored");
    describe_counter!("aisales_media_refused_total", "Customers' files not stored, by reason");
    describe_counter!("aisales_photos_read_total", "Photos read by the vision model, by kind");
    describe_counter!("aisales_jobs_dispatched_total", "Jobs pushed onto a worker stream, by kind");
    describe_counter!(
        "aisales_jobs_swept_total",
        "Jobs pushed again by the sweeper (due delayed jobs and jobs Redis lost)"
    );
    describe_counter!("aisales_jobs_processed_total", "Job deliveries handled by workers, by kind and outcome");
    describe_counter!("aisales_jobs_reclaimed_total", "Stream entries taken over from consumers that stopped");
    describe_counter!("aisales_jobs_dead_lettered_total", "Jobs moved to the dead-letter stream, by kind");
    describe_histogram!("aisales_job_duration_seconds", Unit::Seconds, "Time a worker spent on one job, by kind");
    describe_histogram!(
        "aisales_job_start_lag_seconds",
        Unit::Seconds,
        "Time from a job's dispatch to the start of its processing, by kind"
    );
    describe_histogram!(
        "aisales_dispatch_lag_seconds",
        Unit::Seconds,
        "Time from the event that asked for a job to its dispatch, by kind"
    );
    describe_histogram!(
        "aisales_job_stage_seconds",
        Unit::Seconds,
        "Time a job spent in one stage between the event that asked for it and its handler's start, by kind and \
         stage (pickup, batch, xadd, stream, slot, lease)"
    );
    describe_gauge!("aisales_stream_length", "Entries in a worker stream (sampled by `streams status`)");
    describe_gauge!("aisales_stream_pending", "Delivered but unacknowledged entries of a worker stream");
    describe_gauge!("aisales_stream_dead_letters", "Entries in a kind's dead-letter stream");
    describe_counter!(
        "aisales_messages_received_total",
        "Customer messages received, by channel and whether they were duplicates"
    );
    describe_counter!(
        "aisales_webhook_dead_letters_total",
        "Webhook notifications kept for inspection because they could not be used"
    );
    describe_counter!("aisales_replies_sent_total", "Replies the provider accepted, by channel");
    describe_counter!("aisales_replies_failed_total", "Replies the provider refused for good, by channel");
    describe_histogram!(
        "aisales_provider_send_seconds",
        Unit::Seconds,
        "Latency of the provider's send API, by channel"
    );
    describe_counter!("aisales_rate_limited_total", "Requests refused by a rate limit, by limit");
    describe_counter!(
        "aisales_rate_limit_unavailable_total",
        "Requests let through because the rate limiter (Redis) did not answer"
    );
    describe_counter!(
        "aisales_vehicle_lookups_total",
        "Vehicle lookup attempts by outcome (found, model_only, not_found, decoder_only, failed, retry)"
    );
    describe_histogram!(
        "aisales_vehicle_lookup_seconds",
        Unit::Seconds,
        "Time of one browser lookup attempt, browser session acquisition included"
    );
    describe_counter!("aisales_vehicle_lookup_cache_total", "Vehicle lookup cache reads by result (hit, miss)");
    describe_gauge!("process_resident_memory_bytes", Unit::Bytes, "Resident memory size");
    describe_gauge!("process_virtual_memory_bytes", Unit::Bytes, "Virtual memory size");
    describe_counter!("process_cpu_seconds_total", Unit::Seconds, "User and system CPU time");
    describe_gauge!("process_open_fds", "Open file descriptors");
    describe_gauge!("process_max_fds", "Maximum number of open file descriptors");
    describe_gauge!("process_start_time_seconds", Unit::Seconds, "Start time of the process since the Unix epoch");
    describe_gauge!("process_threads", "Operating system threads");
    describe_counter!(
        "aisales_lead_posts_total",
        "Lead form posts by form kind (source) and outcome (the new lead's status, repeated, unreadable)"
    );
    describe_histogram!(
        "aisales_lead_post_seconds",
        Unit::Seconds,
        "Time to read and store a lead form post, by form kind"
    );
    describe_counter!("aisales_leads_contacted_total", "Leads written to, by channel");
    describe_counter!("aisales_lead_attempts_failed_total", "Outreach attempts that failed, by channel");
    describe_counter!("aisales_leads_failed_total", "Leads nobody could be reached for, by reason");
    describe_counter!("aisales_leads_replied_total", "Leads whose customer answered the first message");
    describe_counter!("aisales_leads_no_reply_total", "Leads whose customer did not answer in time");
    describe_counter!("aisales_lead_notices_total", "Escalation bot notices by notice kind and outcome");
    describe_counter!("aisales_price_lookup_requests_total", "Price requests by result (started a search, joined one)");
    describe_counter!(
        "aisales_price_lookups_total",
        "Price lookup rounds ended, by outcome (priced, estimated, not_found, escalated, failed)"
    );
    describe_counter!(
        "aisales_price_source_total",
        "Price sources asked, by source and outcome (ok, estimate, failed, skipped)"
    );
    describe_counter!("aisales_price_suggestions_offered_total", "Price answers offered to conversations, by answer");
    describe_histogram!("aisales_price_lookup_seconds", Unit::Seconds, "Duration of a price search over every source");
}
