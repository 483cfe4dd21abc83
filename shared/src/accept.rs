//! Accepting a job — the one way a job enters zipfleet, used by the API's
//! `POST /v1/jobs`, by `zipfleet run` and by the tests.
//!
//! The order is what makes "accepted" durable: the `queued` status (with the
//! spec's fingerprint, its tenant's place in the fair-share ledger and the
//! lane its message goes on) is written first, then the job message is
//! published on that lane (its spec by claim check when large), and only
//! after the broker confirmed it is the job marked published. A publish that
//! fails leaves the job unpublished; the client's retry with the same
//! `job_id` finds it so and publishes it then. The same `job_id` with a
//! different spec is a conflict; a tenant with its quota of jobs queued is
//! refused; an erased job's id cannot be reused until its tombstone expires.

use crate::backends::Backends;
use crate::broker::BrokerError;
use crate::cache_keys;
use crate::config::{ApiPolicy, BackendConfig};
use crate::message::JobMessage;
use crate::spec::{new_job_id, JobSpec};
use crate::status::{JobState, JobStatus};
use crate::status_store::{CreateOutcome, FairLimits, NewJob, StatusError};
use crate::store::StoreError;
use std::time::Duration;
use tracing::warn;

/// A job that is (now, or already was) durably enqueued.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// `queued` for a new job; an existing job's current status.
    pub status: JobStatus,
    /// Whether this call created the job (false: it existed with this spec).
    pub created: bool,
}

/// How jobs are accepted.
#[derive(Debug, Clone, Copy)]
pub struct AcceptSettings {
    /// Specs larger than this travel by claim check.
    pub claim_check_bytes: u64,
    pub limits: FairLimits,
}

impl AcceptSettings {
    /// From the settings that configure them (one place, for the API,
    /// `zipfleet run` and the tests).
    pub fn from_config(backend: &BackendConfig, policy: &ApiPolicy) -> Self {
        Self {
            claim_check_bytes: backend.claim_check_bytes,
            limits: FairLimits {
                lanes: backend.fair_lanes,
                max_queued_per_tenant: policy.max_queued_per_tenant,
            },
        }
    }
}

/// Why a job could not be accepted. `Conflict`, `Erased` and `OverQuota`
/// are answers about the job; the rest are backends that could not be
/// reached: the caller may retry with the same id.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("job {0} already exists with a different spec")]
    Conflict(String),
    #[error("job {0} was erased; its id cannot be used again yet")]
    Erased(String),
    #[error("tenant {tenant} has {queued} jobs queued, its limit; try again in {} s", retry_after.as_secs())]
    OverQuota {
        tenant: String,
        queued: u32,
        retry_after: Duration,
    },
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
    settings: &AcceptSettings,
) -> Result<Accepted, AcceptError> {
    let job_id = spec.job_id.clone().unwrap_or_else(new_job_id);
    spec.job_id = Some(job_id.clone());
    let fingerprint = spec.fingerprint();
    let tenant = spec.tenant().to_string();
    let queued = JobStatus::queued(
        &job_id,
        spec.project_id.clone(),
        &tenant,
        spec.images.len() as u32,
    );
    let pictures = picture_keys(&spec);
    let created = backends
        .status
        .create(&NewJob {
            status: &queued,
            fingerprint: &fingerprint,
            pictures: &pictures,
            limits: settings.limits,
        })
        .await
        .map_err(AcceptError::StatusStore)?;
    match created {
        CreateOutcome::Created { lane } => {
            publish(backends, &job_id, &spec, lane, settings).await?;
            Ok(Accepted {
                status: queued,
                created: true,
            })
        }
        CreateOutcome::Existing {
            status,
            fingerprint: existing,
            published,
            lane,
        } => {
            if existing != fingerprint {
                return Err(AcceptError::Conflict(job_id));
            }
            // A first post whose publish failed left the job unpublished: finish it now.
            if !published && status.state == JobState::Queued {
                publish(backends, &job_id, &spec, lane, settings).await?;
            }
            Ok(Accepted {
                status,
                created: false,
            })
        }
        CreateOutcome::QuotaExceeded { queued } => {
            let pace = backends
                .status
                .pace()
                .await
                .map_err(AcceptError::StatusStore)?;
            Err(AcceptError::OverQuota {
                tenant,
                queued,
                retry_after: pace.retry_after(),
            })
        }
        CreateOutcome::Erased => Err(AcceptError::Erased(job_id)),
    }
}

/// The cache keys an erasure of this job must look at: each URL's record
/// and each object source's records.
fn picture_keys(spec: &JobSpec) -> Vec<String> {
    let mut keys: Vec<String> = spec
        .images
        .iter()
        .filter_map(|image| match (&image.url, &image.object) {
            (Some(url), _) => Some(cache_keys::url_record(url)),
            (None, Some(object)) => Some(cache_keys::object_records(
                object.bucket.as_deref(),
                &object.key,
            )),
            (None, None) => None,
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// Publish the job message on its lane (claim-checked when large), then
/// note it published.
async fn publish(
    backends: &Backends,
    job_id: &str,
    spec: &JobSpec,
    lane: u16,
    settings: &AcceptSettings,
) -> Result<(), AcceptError> {
    let message = JobMessage::pack(
        backends.store.as_ref(),
        job_id,
        spec,
        settings.claim_check_bytes,
    )
    .await
    .map_err(AcceptError::SpecStore)?;
    backends
        .broker
        .publish_job(crate::broker::Lane(lane), job_id, &message)
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

    const SETTINGS: AcceptSettings = AcceptSettings {
        claim_check_bytes: 128 * 1024,
        limits: FairLimits {
            lanes: 8,
            max_queued_per_tenant: 2,
        },
    };

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
        let first = accept_job(&backends, one.clone(), &SETTINGS).await.unwrap();
        assert!(first.created);
        assert_eq!(first.status.state, JobState::Queued);
        assert_eq!(first.status.tenant, "default");
        let again = accept_job(&backends, one, &SETTINGS).await.unwrap();
        assert!(!again.created);
        let depth = broker.queue_depth().await.unwrap();
        assert_eq!(depth.ready, 1, "a re-post publishes nothing");

        let other = spec(serde_json::json!({"job_id": "j1", "images": [
            {"id": "1", "label": "b", "url": "https://example.com/a.jpg"}]}));
        assert!(matches!(
            accept_job(&backends, other, &SETTINGS).await,
            Err(AcceptError::Conflict(id)) if id == "j1"
        ));
    }

    #[tokio::test]
    async fn each_tenant_s_jobs_go_on_the_lane_the_ledger_gives_it() {
        use crate::broker::{Broker, Lane};
        let dir = tempfile::tempdir().unwrap();
        let (backends, broker) = backends(dir.path());
        for (job_id, tenant) in [("a1", "school-a"), ("b1", "school-b"), ("a2", "school-a")] {
            let job = spec(
                serde_json::json!({"job_id": job_id, "tenant": tenant, "images": [
                {"id": "1", "label": "a", "url": "https://example.com/a.jpg"}]}),
            );
            accept_job(&backends, job, &SETTINGS).await.unwrap();
        }
        let depths = broker.lane_depths().await.unwrap();
        let used: Vec<(Lane, u64)> = depths
            .iter()
            .filter(|d| d.ready > 0)
            .map(|d| (d.lane, d.ready))
            .collect();
        assert_eq!(used.len(), 2, "one lane per tenant: {depths:?}");
        assert!(
            used.iter().all(|(lane, _)| lane.0 >= 1),
            "lane 0 is for what the ledger does not know: {depths:?}"
        );
        let mut counts: Vec<u64> = used.iter().map(|(_, ready)| *ready).collect();
        counts.sort_unstable();
        assert_eq!(counts, [1, 2]);
    }

    #[tokio::test]
    async fn a_job_without_an_id_gets_one() {
        let dir = tempfile::tempdir().unwrap();
        let (backends, _broker) = backends(dir.path());
        let anonymous = spec(serde_json::json!({"images": [
            {"id": "1", "label": "a", "url": "https://example.com/a.jpg"}]}));
        let accepted = accept_job(&backends, anonymous, &SETTINGS).await.unwrap();
        assert!(crate::spec::is_valid_job_id(&accepted.status.job_id));
        let stored = backends.status.get(&accepted.status.job_id).await.unwrap();
        assert_eq!(stored.unwrap().state, JobState::Queued);
    }

    #[tokio::test]
    async fn a_tenant_over_its_quota_is_refused_with_a_time_to_retry() {
        let dir = tempfile::tempdir().unwrap();
        let (backends, broker) = backends(dir.path());
        let job = |id: &str, tenant: &str| {
            spec(
                serde_json::json!({"job_id": id, "tenant": tenant, "images": [
                {"id": "1", "label": "a", "url": "https://example.com/a.jpg"}]}),
            )
        };
        for id in ["a1", "a2"] {
            accept_job(&backends, job(id, "big"), &SETTINGS)
                .await
                .unwrap();
        }
        match accept_job(&backends, job("a3", "big"), &SETTINGS).await {
            Err(AcceptError::OverQuota {
                tenant,
                queued,
                retry_after,
            }) => {
                assert_eq!((tenant.as_str(), queued), ("big", 2));
                assert!(retry_after >= Duration::from_secs(1));
            }
            other => panic!("expected the quota, got {other:?}"),
        }
        accept_job(&backends, job("b1", "small"), &SETTINGS)
            .await
            .expect("another tenant is not affected");
        assert_eq!(broker.queue_depth().await.unwrap().ready, 3);
    }
}
