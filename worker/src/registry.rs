//! The worker's heartbeat in the fleet's registry (the status store): every
//! few seconds its id, job slots, jobs running and images done, so that the
//! API can tell how many slots the fleet has (for a queued job's estimated
//! wait) and the operator page can show the workers and their pace.

use crate::consumer::Worker;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::debug;
use zipfleet_shared::status_store::WorkerBeat;

/// How often a worker tells the registry it is there (well within the
/// registry's `WORKER_SEEN_FOR`).
const BEAT_EVERY: Duration = Duration::from_secs(5);

/// This process's id in the registry: host name and process id.
fn worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|name| !name.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|name| name.trim().to_string())
        })
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "worker".into());
    format!("{host}-{}", std::process::id())
}

/// Beat until `stop`. A registry that cannot be reached is skipped quietly:
/// it only feeds estimates and the operator page.
pub(crate) async fn announce(worker: Arc<Worker>, stop: CancellationToken) {
    let id = worker_id();
    let mut ticker = tokio::time::interval(BEAT_EVERY);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let metrics = &worker.env.metrics;
        let beat = WorkerBeat {
            worker_id: id.clone(),
            slots: u32::from(worker.concurrency),
            busy: u32::try_from(metrics.jobs_running().max(0)).unwrap_or(0),
            images: metrics.images_total(),
        };
        if let Err(err) = worker.env.status.worker_seen(&beat).await {
            debug!(%err, "could not beat in the worker registry");
        }
    }
}
