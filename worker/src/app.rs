//! Building a worker from configuration: the backends, the memory budget,
//! the CPU slots and the fetcher, wired into a [`Worker`].

use crate::budget::{image_budget, CpuPool, MemoryBudget};
use crate::cache::Cache;
use crate::consumer::Worker;
use crate::dispatch::FairOrder;
use crate::ecs::Protection;
use crate::erasure::StatusTombstones;
use crate::fetch::Fetcher;
use crate::health::Liveness;
use crate::job::JobEnv;
use crate::metrics::WorkerMetrics;
use std::sync::Arc;
use zipfleet_backends::Backends;
use zipfleet_shared::config::{BackendConfig, Limits, ReportSettings, SourcePolicy, WorkerTuning};
use zipfleet_shared::retry::Outages;
use zipfleet_shared::spec::SpecLimits;

/// Everything a worker is configured with.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub backend: BackendConfig,
    pub policy: SourcePolicy,
    pub limits: Limits,
    pub tuning: WorkerTuning,
    /// Thresholds of the dataset report.
    pub report: ReportSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the work directory {path} is not usable: {source}")]
    WorkDir {
        path: String,
        source: std::io::Error,
    },
    #[error("the HTTP client could not be built: {0}")]
    Http(#[from] reqwest::Error),
}

/// Wire a worker over already-connected backends.
pub fn build_worker(
    backends: &Backends,
    settings: &WorkerSettings,
) -> Result<Arc<Worker>, BuildError> {
    let tuning = &settings.tuning;
    let spool_dir = tuning.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&spool_dir).map_err(|source| BuildError::WorkDir {
        path: spool_dir.display().to_string(),
        source,
    })?;
    let cache_settings = tuning.cache;
    let fetcher = Fetcher::new(
        &settings.policy,
        &settings.limits,
        backends.store.clone(),
        spool_dir.clone(),
        tuning.per_host_concurrency,
    )?;
    let budget = MemoryBudget::new(image_budget(tuning.memory_budget));
    let metrics = Arc::new(WorkerMetrics::default());
    let cache = cache_settings.enabled.then(|| {
        let store = backends.store.clone();
        Cache::new(
            store,
            cache_settings,
            spool_dir.clone(),
            budget.clone(),
            metrics.clone(),
        )
    });
    let env = JobEnv {
        fetcher,
        budget,
        cpu: CpuPool::new(tuning.cpu_threads),
        store: backends.store.clone(),
        status: backends.status.clone(),
        limits: settings.limits.clone(),
        spool_dir,
        fetch_concurrency: tuning.fetch_concurrency,
        download_url_expiry: settings.backend.download_url_expiry,
        report: settings.report,
        metrics,
        outages: Arc::new(Outages::default()),
        cache,
        tombstones: Arc::new(StatusTombstones(backends.status.clone())),
    };
    Ok(Arc::new(Worker {
        env: Arc::new(env),
        broker: backends.broker.clone(),
        lanes: Arc::new(FairOrder::new(backends.status.clone(), &backends.broker)),
        concurrency: tuning.concurrency.max(1),
        max_deliveries: settings.backend.max_deliveries,
        shutdown_grace: tuning.shutdown_grace,
        spec_limits: SpecLimits::from(&settings.limits),
        liveness: Arc::new(Liveness::new(tuning.liveness_timeout)),
        readiness: Arc::default(),
        protection: Protection::from_env(),
    }))
}
