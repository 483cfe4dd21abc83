//! Accepting a job — the one way a job enters zipfleet, used by the API's
//! `POST /v1/jobs`, by `zipfleet run` and by the tests.
//!
//! The order is what makes "accepted" durable: the `queued` status (with the
//! spec's fingerprint) is written first, then the job message is published
//! (its spec by claim check when large), and only after the broker confirmed
//! it is the job marked published. A publish that fails leaves the job
//! unpublished; the client's retry with the same `job_id` finds it so and
//! publishes it then. The same `job_id` with a different spec is a conflict.

use crate::backends::Backends;
use crate::broker::BrokerError;
use crate::message::JobMessage;
use crate::spec::{new_job_id, JobSpec};
use crate::status::{JobState, JobStatus};
use crate::status_store::{CreateOutcome, StatusError};
use crate::store::StoreError;
use tracing::warn;

/// A job that is (now, or already was) durably enqueued.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// `queued` for a new job; an existing job's current status.
    pub status: JobStatus,
    /// Whether this call created the job (false: it existed with this spec).
    pub created: bool,
}

/// Why a job could not be accepted. Every variant but `Conflict` is a
/// backend that could not be reached: the caller may retry with the same id.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("job {0} already exists with a different spec")]
    Conflict(String),
    #[error("the status store is unavailable: {0}")]
    StatusStore(#[source] StatusError),
    #[error("the object store could not hold the job's spec: {0}")]
    SpecStore(#[source] StoreError),
    #[error("the job queue is unavailable: {0}")]
    Broker(#[source] BrokerError),
}

/// Accept `spec` (already validated): give it an id if it has none, record
/// it `queued`, publish it, mark it published. Idempotent per `job_id`.
pub async fn accept_job(
    backends: &Backends,
    mut spec: JobSpec,
    claim_check_bytes: u64,
) -> Result<Accepted, AcceptError> {
    let job_id = spec.job_id.clone().unwrap_or_else(new_job_id);
    spec.job_id = Some(job_id.clone());
    let fingerprint = spec.fingerprint();
    let queued = JobStatus::queued(&job_id, spec.project_id.clone(), spec.images.len() as u32);
    let created = backends
        .status
        .create(&queued, &fingerprint)
        .await
        .map_err(AcceptError::StatusStore)?;
    match created {
        CreateOutcome::Created => {
            publish(backends, &job_id, &spec, claim_check_bytes).await?;
            Ok(Accepted {
                status: queued,
                created: true,
            })
        }
        CreateOutcome::Existing {
            status,
            fingerprint: existing,
            published,
        } => {
            if existing != fingerprint {
                return Err(AcceptError::Conflict(job_id));
            }
            // A first post whose publish failed left the job unpublished: finish it now.
            if !published && status.state == JobState::Queued {
                publish(backends, &job_id, &spec, claim_check_bytes).await?;
            }
            Ok(Accepted {
                status,
                created: false,
            })
        }
    }
}

/// Publish the job message (claim-checked when large), then note it published.
async fn publish(
    backends: &Backends,
    job_id: &str,
    spec: &JobSpec,
    claim_check_bytes: u64,
) -> Result<(), AcceptError> {
    let message = JobMessage::pack(backends.store.as_ref(), job_id, spec, claim_check_bytes)
        .await
        .map_err(AcceptError::SpecStore)?;
    backends
        .broker
        // TODO(lead): the ledger's lane
        .publish_job(crate::broker::Lane(0), job_id, &message)
        .await
        .map_err(AcceptError::Broker)?;
    // Only an optimisation for retries: a job left "unpublished" is at worst
    // published twice, which the worker tolerates (first final state wins).
    if let Err(err) = backends.status.mark_published(job_id).await {
        warn!(%err, job_id, "could not mark a job published");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::memory::MemoryBroker;
    use crate::broker::Broker;
    use crate::status_store::memory::MemoryStatusStore;
    use crate::store::file::FileStore;
    use std::sync::Arc;

    fn spec(json: serde_json::Value) -> JobSpec {
        JobSpec::parse(json.to_string().as_bytes(), &Default::default()).unwrap()
    }

    fn backends(dir: &std::path::Path) -> (Backends, MemoryBroker) {
        let broker = MemoryBroker::new(5);
        let backends = Backends {
            broker: Arc::new(broker.clone()),
            store: Arc::new(FileStore::new(dir).unwrap()),
            status: Arc::new(MemoryStatusStore::new()),
        };
        (backends, broker)
    }

    #[tokio::test]
    async fn accepts_once_per_id_and_refuses_another_spec_under_it() {
        let dir = tempfile::tempdir().unwrap();
        let (backends, broker) = backends(dir.path());
        let one = spec(serde_json::json!({"job_id": "j1", "images": [
            {"id": "1", "label": "a", "url": "https://example.com/a.jpg"}]}));
        let first = accept_job(&backends, one.clone(), 128 * 1024)
            .await
            .unwrap();
        assert!(first.created);
        assert_eq!(first.status.state, JobState::Queued);
        let again = accept_job(&backends, one, 128 * 1024).await.unwrap();
        assert!(!again.created);
        let depth = broker.queue_depth().await.unwrap();
        assert_eq!(depth.ready, 1, "a re-post publishes nothing");

        let other = spec(serde_json::json!({"job_id": "j1", "images": [
            {"id": "1", "label": "b", "url": "https://example.com/a.jpg"}]}));
        assert!(matches!(
            accept_job(&backends, other, 128 * 1024).await,
            Err(AcceptError::Conflict(id)) if id == "j1"
        ));
    }

    #[tokio::test]
    async fn a_job_without_an_id_gets_one() {
        let dir = tempfile::tempdir().unwrap();
        let (backends, _broker) = backends(dir.path());
        let anonymous = spec(serde_json::json!({"images": [
            {"id": "1", "label": "a", "url": "https://example.com/a.jpg"}]}));
        let accepted = accept_job(&backends, anonymous, 128 * 1024).await.unwrap();
        assert!(crate::spec::is_valid_job_id(&accepted.status.job_id));
        let stored = backends.status.get(&accepted.status.job_id).await.unwrap();
        assert_eq!(stored.unwrap().state, JobState::Queued);
    }
}
