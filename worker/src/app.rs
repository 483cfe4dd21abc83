//! Building a worker from configuration: the backends, the memory budget,
//! the CPU slots and the fetcher, wired into a [`Worker`].

use crate::budget::{CpuPool, MemoryBudget};
use crate::cache::Cache;
use crate::consumer::Worker;
use crate::dispatch::Sweep;
use crate::ecs::Protection;
use crate::fetch::Fetcher;
use crate::health::Liveness;
use crate::job::JobEnv;
use crate::metrics::WorkerMetrics;
use std::sync::Arc;
use zipfleet_backends::Backends;
use zipfleet_shared::config::{
    BackendConfig, Limits, ReportSettings, SourcePolicy, WorkerTuning, MIB,
};
use zipfleet_shared::retry::Outages;
use zipfleet_shared::spec::SpecLimits;

/// Memory the worker process needs besides image buffers: runtime, HTTP and
/// broker clients, zip writer, allocator slack. Measured peak RSS with no
/// image in flight is well under this; the rest of the budget is for images.
pub const BASELINE_MEMORY: u64 = 48 * MIB;

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

/// The part of the memory budget images may reserve.
pub fn image_budget(total: u64) -> u64 {
    total.saturating_sub(BASELINE_MEMORY).max(16 * MIB)
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
    let fetcher = Fetcher::with_host_limit(
        &settings.policy,
        &settings.limits,
        backends.store.clone(),
        spool_dir.clone(),
        cache_settings.per_host_concurrency,
    )?;
    let cache = cache_settings
        .enabled
        .then(|| Cache::new(backends.store.clone(), cache_settings, spool_dir.clone()));
    let env = JobEnv {
        fetcher,
        budget: MemoryBudget::new(image_budget(tuning.memory_budget)),
        cpu: CpuPool::new(tuning.cpu_threads),
        store: backends.store.clone(),
        status: backends.status.clone(),
        limits: settings.limits.clone(),
        spool_dir,
        fetch_concurrency: tuning.fetch_concurrency,
        download_url_expiry: settings.backend.download_url_expiry,
        report: settings.report,
        metrics: Arc::new(WorkerMetrics::default()),
        outages: Arc::new(Outages::default()),
        cache,
    };
    Ok(Arc::new(Worker {
        env: Arc::new(env),
        broker: backends.broker.clone(),
        // TODO(lead): the fair-share ledger's order.
        lanes: Arc::new(Sweep::for_broker(&backends.broker)),
        concurrency: tuning.concurrency.max(1),
        max_deliveries: settings.backend.max_deliveries,
        shutdown_grace: tuning.shutdown_grace,
        spec_limits: SpecLimits {
            max_images: settings.limits.max_images,
        },
        liveness: Arc::new(Liveness::new(tuning.liveness_timeout)),
        readiness: Arc::default(),
        protection: Protection::from_env(),
    }))
}
