//! The embedded fleet: one worker in this process over in-process backends
//! (`memory://` queue and status, a `file://` directory as the store), with
//! jobs accepted exactly as the API accepts them. `zipfleet run` and the
//! end-to-end tests both run jobs through it.

use crate::app::{build_worker, BuildError, WorkerSettings};
use std::path::Path;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use zipfleet_backends::{connect, ConnectError};
use zipfleet_shared::accept::{accept_job, AcceptError, AcceptSettings, Accepted};
use zipfleet_shared::config::{ApiPolicy, BackendConfig};
use zipfleet_shared::spec::JobSpec;
use zipfleet_shared::status::JobStatus;
use zipfleet_shared::status_store::StatusError;
use zipfleet_shared::Backends;

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("the job was not accepted: {0}")]
    Accept(#[from] AcceptError),
    #[error(transparent)]
    Status(#[from] StatusError),
    #[error("the status of job {0} disappeared")]
    StatusLost(String),
}

/// One worker serving in-process backends until [`EmbeddedFleet::stop`].
#[derive(Debug)]
pub struct EmbeddedFleet {
    pub backends: Backends,
    accept: AcceptSettings,
    stop: CancellationToken,
    serving: JoinHandle<()>,
}

impl EmbeddedFleet {
    /// The embedded backend configuration over `store_dir`.
    pub fn config(store_dir: &Path) -> BackendConfig {
        BackendConfig::embedded(store_dir)
    }

    /// Connect the backends `settings.backend` names (the embedded ones:
    /// see [`EmbeddedFleet::config`]) and start a worker on them.
    pub async fn start(settings: &WorkerSettings) -> Result<Self, EmbeddedError> {
        let backends = connect(&settings.backend).await?;
        Self::on(backends, settings)
    }

    /// Start a worker on backends already made (tests keep handles on the
    /// in-memory broker to inspect what it carried).
    pub fn on(backends: Backends, settings: &WorkerSettings) -> Result<Self, EmbeddedError> {
        let worker = build_worker(&backends, settings)?;
        let stop = CancellationToken::new();
        let serving = tokio::spawn(worker.run(stop.clone().cancelled_owned()));
        Ok(Self {
            backends,
            accept: AcceptSettings::from_config(&settings.backend, &ApiPolicy::default()),
            stop,
            serving,
        })
    }

    /// Accept a job as the API does (`queued`, published, marked published).
    pub async fn submit(&self, spec: JobSpec) -> Result<Accepted, EmbeddedError> {
        Ok(accept_job(&self.backends, spec, &self.accept).await?)
    }

    /// The job's status now.
    pub async fn status(&self, job_id: &str) -> Result<JobStatus, EmbeddedError> {
        self.backends
            .status
            .get(job_id)
            .await?
            .ok_or_else(|| EmbeddedError::StatusLost(job_id.to_string()))
    }

    /// Poll the job's status every `every` until it is final, showing each one to `seen`.
    pub async fn follow(
        &self,
        job_id: &str,
        every: Duration,
        mut seen: impl FnMut(&JobStatus),
    ) -> Result<JobStatus, EmbeddedError> {
        loop {
            let status = self.status(job_id).await?;
            seen(&status);
            if status.state.is_final() {
                return Ok(status);
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Stop the worker (running jobs finish within the shutdown grace).
    pub async fn stop(self) {
        self.stop.cancel();
        if let Err(err) = self.serving.await {
            tracing::error!(%err, "the embedded worker ended abnormally");
        }
    }
}
