//! The no-op job: answers a probe's ping with a pong (end-to-end check of the bus).

use aisales_domain::probe::{Probe, ProbeCommand, ProbeError};
use async_trait::async_trait;

use super::Services;
use crate::bus::worker::JobHandler;
use crate::bus::{Job, Kind};
use crate::store::CommandError;

pub struct ProbeHandler {
    pub services: Services,
}

#[async_trait]
impl JobHandler for ProbeHandler {
    fn kind(&self) -> Kind {
        Kind::Probe
    }

    async fn handle(&self, job: &Job) -> anyhow::Result<()> {
        let ping_id = job.payload["ping_id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("probe job without ping_id"))?;
        let worker = format!("{}:{}", crate::projector::instance_name("worker"), job.kind);
        let cmd = ProbeCommand::RecordPong { ping_id, worker, at: chrono::Utc::now() };
        match self
            .services
            .store
            .execute::<Probe>(&job.aggregate_id, cmd, &(), &self.services.metadata(job, Kind::Probe))
            .await
        {
            Ok(_) | Err(CommandError::Rejected(ProbeError::AlreadyAnswered)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn dead_letter(&self, _job: &Job, _reason: &str) -> anyhow::Result<()> {
        Ok(())
    }

    async fn retry(&self, job: &Job) -> anyhow::Result<()> {
        self.handle(job).await
    }
}
