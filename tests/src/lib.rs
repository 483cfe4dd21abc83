//! Helpers for zipfleet's end-to-end tests: test images made in memory, a
//! way to run one job through the embedded backends, and zip inspection.

pub mod autoscaler;
pub mod conformance;
pub mod fleet;
pub mod http;
pub mod images;
pub mod zipcheck;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use zipfleet_backends::Backends;
use zipfleet_shared::broker::memory::MemoryBroker;
use zipfleet_shared::config::{BackendConfig, Limits, SourcePolicy, WorkerTuning};
use zipfleet_shared::message::JobMessage;
use zipfleet_shared::spec::JobSpec;
use zipfleet_shared::status::JobStatus;
use zipfleet_shared::status_store::memory::MemoryStatusStore;
use zipfleet_shared::status_store::StatusStore;
use zipfleet_shared::store::file::FileStore;
use zipfleet_worker::app::{build_worker, WorkerSettings};

/// Settings for tests: URL images may come from loopback (the tests' own servers).
pub fn test_settings(store_dir: &Path) -> WorkerSettings {
    WorkerSettings {
        backend: BackendConfig::embedded(store_dir),
        policy: SourcePolicy {
            allow_private_sources: true,
            allowed_source_nets: vec![],
        },
        limits: Limits {
            connect_timeout: Duration::from_secs(2),
            download_timeout: Duration::from_secs(10),
            ..Limits::default()
        },
        tuning: WorkerTuning::default(),
        report: Default::default(),
    }
}

/// An embedded fleet: memory broker, memory status, a directory store, one worker.
pub struct Embedded {
    pub broker: MemoryBroker,
    pub status: Arc<MemoryStatusStore>,
    pub store: Arc<FileStore>,
    stop: CancellationToken,
    serving: tokio::task::JoinHandle<()>,
}

impl Embedded {
    pub fn start(store_dir: &Path, settings: &WorkerSettings) -> Self {
        let broker = MemoryBroker::new(settings.backend.max_deliveries);
        let status = Arc::new(MemoryStatusStore::new());
        let store = Arc::new(FileStore::new(store_dir).expect("store dir"));
        let backends = Backends {
            broker: Arc::new(broker.clone()),
            store: store.clone(),
            status: status.clone(),
        };
        let worker = build_worker(&backends, settings).expect("worker builds");
        let stop = CancellationToken::new();
        let serving = tokio::spawn(worker.run(stop.clone().cancelled_owned()));
        Self {
            broker,
            status,
            store,
            stop,
            serving,
        }
    }

    /// Enqueue a job as the API would: `queued` status first, then the message.
    pub async fn submit(&self, job_id: &str, spec: &JobSpec) {
        let status = JobStatus::queued(job_id, spec.project_id.clone(), spec.images.len() as u32);
        self.status
            .create(&status, &spec.fingerprint())
            .await
            .unwrap();
        use zipfleet_shared::broker::Broker;
        self.broker
            .publish_job(job_id, &JobMessage::inline(job_id, spec.clone()).to_bytes())
            .await
            .unwrap();
    }

    /// Wait for the job's final status.
    pub async fn wait(&self, job_id: &str, limit: Duration) -> JobStatus {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.status.get(job_id).await.unwrap() {
                if status.state.is_final() {
                    return status;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "job {job_id} did not finish within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.serving.await.unwrap();
    }
}

/// Parse a spec from JSON, panicking on invalid test data.
pub fn spec(value: serde_json::Value) -> JobSpec {
    JobSpec::parse(value.to_string().as_bytes(), &Default::default()).expect("test spec is valid")
}
