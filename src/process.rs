//! What a process runs: supervised long-lived tasks (HTTP server, projectors, sweeper, retention, workers),
//! with their options built from the settings in one place, for the CLI and the tests alike.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::Settings;

/// Lowers this process's CPU priority to `niceness` (`BACKGROUND_NICENESS`), through util-linux
/// `renice`. Call it before any thread starts: on Linux a priority belongs to a thread, and threads
/// started later inherit it.
pub fn lower_cpu_priority(niceness: i32) -> Result<(), String> {
    let out = std::process::Command::new("renice")
        .args(["--priority", &niceness.to_string(), "-p", &std::process::id().to_string()])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("renice cannot be run: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("renice failed: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Runs named long-lived tasks until one of them ends or a signal arrives, then stops the rest.
pub struct Supervisor {
    cancel: CancellationToken,
    tasks: tokio::task::JoinSet<(&'static str, anyhow::Result<()>)>,
}

impl Supervisor {
    pub fn new() -> Self {
        let cancel = CancellationToken::new();
        crate::http::server::cancel_on_signals(cancel.clone());
        Supervisor { cancel, tasks: tokio::task::JoinSet::new() }
    }

    pub fn token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    pub fn spawn<F>(&mut self, name: &'static str, fut: F)
    where
        F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.tasks.spawn(async move { (name, fut.await) });
    }

    /// Waits for a signal or for the first task to stop; then cancels the others and waits for
    /// them. A task that stops on its own before shutdown is reported as a failure.
    pub async fn wait(mut self, grace: std::time::Duration) -> anyhow::Result<()> {
        let mut failure: Option<anyhow::Error> = None;
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => {}
            Some(res) = self.tasks.join_next() => {
                // A task that stopped because a stop was asked for (SIGTERM arriving while this
                // select was being polled) is not a failure.
                let asked = self.cancel.is_cancelled();
                let err = match res {
                    Ok((name, Ok(()))) if asked => {
                        tracing::debug!(task = name, "task stopped");
                        None
                    }
                    Ok((name, Ok(()))) => Some(anyhow::anyhow!("{name} stopped unexpectedly")),
                    Ok((name, Err(e))) => Some(e.context(format!("{name} failed"))),
                    Err(e) => Some(anyhow::anyhow!("a task panicked: {e}")),
                };
                if let Some(err) = err {
                    tracing::error!(error = format!("{err:#}"), "stopping every task");
                    failure = Some(err);
                }
                self.cancel.cancel();
            }
        }
        let drain = async {
            while let Some(res) = self.tasks.join_next().await {
                match res {
                    Ok((name, Err(e))) => {
                        tracing::error!(task = name, error = format!("{e:#}"), "task ended with an error")
                    }
                    Ok((name, Ok(()))) => tracing::debug!(task = name, "task stopped"),
                    Err(e) => tracing::error!(error = %e, "task panicked"),
                }
            }
        };
        if tokio::time::timeout(grace + std::time::Duration::from_secs(5), drain).await.is_err() {
            tracing::warn!("tasks still running after the shutdown deadline; exiting anyway");
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new()
    }
}

pub fn spawn_projectors(
    sup: &mut Supervisor,
    settings: &Arc<Settings>,
    pool: sqlx::PgPool,
    redis: crate::infra::redis::Redis,
) -> anyhow::Result<()> {
    let options = crate::projection::runtime::RuntimeOptions {
        burst: crate::infra::intake::BurstSignal::watch(redis.clone(), settings.intake_burst_max_defer, sup.token()),
        ..crate::projection::registry::runtime_options(settings)
    };
    let runtime = crate::projection::runtime::ProjectorRuntime::new(
        pool.clone(),
        crate::infra::db::connect_options(settings)?,
        crate::projection::registry::all(settings, &pool, &redis),
        options,
    );
    let token = sup.token();
    sup.spawn("projectors", runtime.run(token));
    let sweeper = sweeper_options(settings);
    let token = sup.token();
    sup.spawn(
        "work sweeper",
        crate::bus::sweeper::run(
            pool.clone(),
            crate::infra::db::connect_options(settings)?,
            redis.clone(),
            sweeper,
            token,
        ),
    );
    let token = sup.token();
    sup.spawn(
        "retention",
        crate::privacy::retention::run(
            crate::application::Context::new(settings.clone(), pool, redis),
            crate::infra::db::connect_options(settings)?,
            retention_options(settings),
            token,
        ),
    );
    Ok(())
}

/// Starts workers for `only` (or every kind that has a handler).
pub fn spawn_workers(
    sup: &mut Supervisor,
    settings: &Arc<Settings>,
    pool: sqlx::PgPool,
    redis: crate::infra::redis::Redis,
    only: Option<crate::bus::Kind>,
) -> anyhow::Result<()> {
    let services = crate::workers::Services::new(settings.clone(), pool, redis.clone());
    let kinds: Vec<crate::bus::Kind> = match only {
        Some(k) => vec![k],
        None => crate::bus::Kind::ALL.to_vec(),
    };
    // Lead outreach can wait out a burst of intake; replies, lookups and drafts cannot.
    let burst = if kinds.contains(&crate::bus::Kind::Leads) {
        crate::infra::intake::BurstSignal::watch(redis.clone(), settings.intake_burst_max_defer, sup.token())
    } else {
        crate::infra::intake::BurstSignal::off()
    };
    for kind in kinds {
        let handler = crate::workers::handler(kind, &services)?;
        let mut options = worker_options(settings, kind);
        if kind == crate::bus::Kind::Leads {
            options.burst = burst.clone();
        }
        let token = sup.token();
        let name: &'static str = Box::leak(format!("{kind} worker").into_boxed_str());
        sup.spawn(name, crate::bus::worker::run(redis.clone(), handler, options, token));
    }
    Ok(())
}

/// The options of a worker of `kind`, from the settings.
pub fn worker_options(settings: &Settings, kind: crate::bus::Kind) -> crate::bus::worker::WorkerOptions {
    crate::bus::worker::WorkerOptions {
        prefix: settings.bus.redis_prefix.clone(),
        consumer: crate::infra::instance_name(&format!("worker-{kind}")),
        concurrency: settings.bus.concurrency,
        visibility_timeout: settings.bus.visibility_timeout,
        max_deliveries: settings.bus.max_deliveries,
        job_timeout: settings.bus.job_timeout,
        shutdown_grace: settings.shutdown_grace,
        burst: crate::infra::intake::BurstSignal::off(),
    }
}

/// The options of the scheduled retention pass, from the settings.
pub fn retention_options(settings: &Settings) -> crate::privacy::retention::RetentionOptions {
    crate::privacy::retention::RetentionOptions {
        interval: settings.retention_interval,
        instance: crate::infra::instance_name("retention"),
    }
}

/// The options of the sweeper (jobs due later, jobs Redis lost), from the settings.
pub fn sweeper_options(settings: &Settings) -> crate::bus::sweeper::SweeperOptions {
    crate::bus::sweeper::SweeperOptions {
        prefix: settings.bus.redis_prefix.clone(),
        interval: settings.bus.sweep_interval,
        redispatch_after: settings.bus.redispatch_after,
        stream_max_len: settings.bus.stream_max_len,
        instance: crate::infra::instance_name("sweeper"),
    }
}
