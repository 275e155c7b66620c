//! The no-op job: answers a probe's ping with a pong (end-to-end check of the bus).

use aisales_domain::probe::{Probe, ProbeCommand, ProbeError};
use async_trait::async_trait;

use super::Services;
use crate::bus::jobs::Ping;
use crate::bus::worker::JobHandler;
use crate::bus::{Job, Kind};
use crate::store::ExecuteError;

pub struct ProbeHandler {
    pub services: Services,
}

#[async_trait]
impl JobHandler for ProbeHandler {
    fn kind(&self) -> Kind {
        Kind::Probe
    }

    async fn handle(&self, job: &Job) -> anyhow::Result<()> {
        let Ping { ping_id } = job.payload()?;
        let worker = format!("{}:{}", crate::infra::instance_name("worker"), job.kind);
        let cmd = ProbeCommand::RecordPong { ping_id, worker, at: chrono::Utc::now() };
        match self
            .services
            .store
            .execute::<Probe>(&job.aggregate_id, cmd, &(), &job.metadata(super::actor(Kind::Probe)))
            .await
        {
            Ok(_) | Err(ExecuteError::Rejected(ProbeError::AlreadyAnswered)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Nothing to record on the probe; its job is given up so the sweeper stops pushing it.
    async fn dead_letter(&self, job: &Job, reason: &str) -> anyhow::Result<()> {
        crate::bus::sweeper::expire_probes(&self.services.pool, Some(&job.job_id), reason).await?;
        Ok(())
    }

    async fn retry(&self, job: &Job) -> anyhow::Result<()> {
        self.handle(job).await
    }
}
