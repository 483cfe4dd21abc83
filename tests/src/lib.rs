//! Helpers for zipfleet's end-to-end tests: test images made in memory, a
//! way to run one job through the embedded backends, and zip inspection.

pub mod autoscaler;
pub mod conformance;
pub mod fleet;
pub mod http;
pub mod images;
pub mod zipcheck;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use zipfleet_shared::broker::memory::MemoryBroker;
use zipfleet_shared::config::{Limits, SourcePolicy, WorkerTuning};
use zipfleet_shared::spec::JobSpec;
use zipfleet_shared::status::JobStatus;
use zipfleet_shared::status_store::memory::MemoryStatusStore;
use zipfleet_shared::store::file::FileStore;
use zipfleet_shared::Backends;
use zipfleet_worker::app::WorkerSettings;
use zipfleet_worker::embedded::EmbeddedFleet;

/// A binary of the workspace (`zipfleet`, `zipfleet-worker`, `zipfleet-api`)
/// from the target directory this test runs from: `cargo build --workspace
/// --all-targets` (infra/test.sh) builds them beside the test binaries.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let binary = dir.join(name);
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build --workspace --all-targets` (infra/test.sh does)",
        binary.display()
    );
    binary
}

/// Settings for tests: URL images may come from loopback (the tests' own servers).
pub fn test_settings(store_dir: &Path) -> WorkerSettings {
    WorkerSettings {
        backend: EmbeddedFleet::config(store_dir),
        policy: SourcePolicy {
            allow_private_sources: true,
            allowed_source_nets: vec![],
        },
        limits: Limits {
            connect_timeout: Duration::from_secs(2),
            download_timeout: Duration::from_secs(10),
            ..Limits::default()
        },
        tuning: WorkerTuning {
            worker_listen: "off".into(),
            ..WorkerTuning::default()
        },
        report: Default::default(),
    }
}

/// The embedded fleet (`zipfleet_worker::embedded`) with handles on its
/// in-memory broker and status store, for tests to inspect.
pub struct Embedded {
    pub broker: MemoryBroker,
    pub status: Arc<MemoryStatusStore>,
    pub store: Arc<FileStore>,
    fleet: EmbeddedFleet,
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
        let fleet = EmbeddedFleet::on(backends, settings).expect("worker builds");
        Self {
            broker,
            status,
            store,
            fleet,
        }
    }

    /// Accept a job exactly as the API does, under `job_id`.
    pub async fn submit(&self, job_id: &str, spec: &JobSpec) {
        let mut spec = spec.clone();
        spec.job_id = Some(job_id.to_string());
        self.fleet.submit(spec).await.expect("job accepted");
    }

    /// Wait for the job's final status.
    pub async fn wait(&self, job_id: &str, limit: Duration) -> JobStatus {
        tokio::time::timeout(
            limit,
            self.fleet.follow(job_id, Duration::from_millis(20), |_| {}),
        )
        .await
        .unwrap_or_else(|_| panic!("job {job_id} did not finish within {limit:?}"))
        .expect("the job's status is readable")
    }

    /// Wait until the job has left the queue (running or ended).
    pub async fn wait_started(&self, job_id: &str, limit: Duration) -> JobStatus {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let status = self.fleet.status(job_id).await.expect("readable");
            if status.state != zipfleet_shared::JobState::Queued {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "job {job_id} did not start within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(self) {
        self.fleet.stop().await;
    }
}

/// Parse a spec from JSON, panicking on invalid test data.
pub fn spec(value: serde_json::Value) -> JobSpec {
    JobSpec::parse(value.to_string().as_bytes(), &Default::default()).expect("test spec is valid")
}
