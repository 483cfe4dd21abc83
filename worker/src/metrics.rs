//! This worker's own counters, rendered as Prometheus text on its `/metrics`
//! (the fleet-wide job figures live in the status store and are on the API's).
//! Plain atomics: recording costs a relaxed add, never a lock; a scrape
//! snapshots them into a `prometheus-client` registry, which writes the
//! exposition format.

use crate::budget::{MemoryBudget, BASELINE_MEMORY};
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;
use zipfleet_shared::{ImageErrorCode, JobState};

/// A step of an image's or a job's way, for the time-per-stage counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    Fetch,
    Probe,
    Render,
    Upload,
}

impl Stage {
    pub(crate) const ALL: [Stage; 4] = [Stage::Fetch, Stage::Probe, Stage::Render, Stage::Upload];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Fetch => "fetch",
            Self::Probe => "probe",
            Self::Render => "render",
            Self::Upload => "upload",
        }
    }
}

/// What the cache can reuse; the hit/miss counters are kept per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CacheKind {
    /// A rendered training image.
    Render,
    /// A downloaded web image.
    Source,
    /// A URL known to fail.
    Failure,
}

impl CacheKind {
    pub(crate) const ALL: [CacheKind; 3] =
        [CacheKind::Render, CacheKind::Source, CacheKind::Failure];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Render => "render",
            Self::Source => "source",
            Self::Failure => "failure",
        }
    }
}

/// Final job states a worker can reach.
const FINISHED: [JobState; 3] = [JobState::Succeeded, JobState::Failed, JobState::Cancelled];

/// The counters of one worker process.
#[derive(Debug, Default)]
pub struct WorkerMetrics {
    jobs_running: AtomicI64,
    jobs_finished: [AtomicU64; 3],
    images_ok: AtomicU64,
    images_skipped: [AtomicU64; ImageErrorCode::ALL.len()],
    download_bytes: AtomicU64,
    stage_micros: [AtomicU64; Stage::ALL.len()],
    cache_hits: [AtomicU64; CacheKind::ALL.len()],
    cache_misses: [AtomicU64; CacheKind::ALL.len()],
    /// Jobs taken from a lane the fair order named, and from a sweep.
    dispatched: [AtomicU64; 2],
}

/// How a job was found: on a lane the fair-share order named, or by a sweep
/// of the lanes it did not name (the ledger did not know that job).
const DISPATCH_DECISIONS: [&str; 2] = ["fair", "sweep"];

/// Decrements the running-jobs gauge when the job's handling ends, however it ends.
#[derive(Debug)]
pub(crate) struct RunningJob<'a>(&'a WorkerMetrics);

impl Drop for RunningJob<'_> {
    fn drop(&mut self) {
        self.0.jobs_running.fetch_sub(1, Ordering::Relaxed);
    }
}

impl WorkerMetrics {
    pub(crate) fn job_started(&self) -> RunningJob<'_> {
        self.jobs_running.fetch_add(1, Ordering::Relaxed);
        RunningJob(self)
    }

    pub(crate) fn jobs_running(&self) -> i64 {
        self.jobs_running.load(Ordering::Relaxed)
    }

    pub(crate) fn job_finished(&self, state: JobState) {
        if let Some(index) = FINISHED.iter().position(|s| *s == state) {
            self.jobs_finished[index].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn image_ok(&self) {
        self.images_ok.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn image_skipped(&self, code: ImageErrorCode) {
        let index = ImageErrorCode::ALL
            .iter()
            .position(|c| *c == code)
            .expect("every code is in ALL");
        self.images_skipped[index].fetch_add(1, Ordering::Relaxed);
    }

    /// Images finished so far, whatever their outcome (the worker's heartbeat).
    pub(crate) fn images_total(&self) -> u64 {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        load(&self.images_ok) + self.images_skipped.iter().map(load).sum::<u64>()
    }

    /// A job was taken: from a lane the fair order named (`fair`), or not.
    pub(crate) fn dispatched(&self, fair: bool) {
        self.dispatched[usize::from(!fair)].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn downloaded(&self, bytes: u64) {
        self.download_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn stage(&self, stage: Stage, took: Duration) {
        let index = Stage::ALL
            .iter()
            .position(|s| *s == stage)
            .expect("every stage is in ALL");
        self.stage_micros[index].fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub(crate) fn cache(&self, kind: CacheKind, hit: bool) {
        let index = CacheKind::ALL
            .iter()
            .position(|k| *k == kind)
            .expect("every kind is in ALL");
        let counters = if hit {
            &self.cache_hits
        } else {
            &self.cache_misses
        };
        counters[index].fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text exposition (format 0.0.4) of every counter, the
    /// memory budget and readiness, encoded by `prometheus-client` from a
    /// snapshot of the atomics (recording stays a relaxed add).
    pub fn render(&self, budget: &MemoryBudget, ready: bool) -> String {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mut registry = Registry::default();
        registry.register(
            "zipfleet_worker_ready",
            "1 when the broker, object store and status store are reachable",
            gauge(u64::from(ready)),
        );
        registry.register(
            "zipfleet_worker_jobs_running",
            "Jobs this worker is running now",
            ConstGauge::new(self.jobs_running().max(0)),
        );
        let states = FINISHED.iter().map(|state| state.as_str());
        registry.register(
            "zipfleet_worker_jobs_finished",
            "Jobs this worker finished, by final state",
            counters("state", states.zip(self.jobs_finished.iter().map(load))),
        );
        register_budget(&mut registry, budget);
        let outcomes = std::iter::once(("ok", load(&self.images_ok))).chain(
            ImageErrorCode::ALL
                .iter()
                .map(|code| code.as_str())
                .zip(self.images_skipped.iter().map(load)),
        );
        registry.register(
            "zipfleet_worker_images",
            "Images processed, by outcome (ok or the image error code)",
            counters("outcome", outcomes),
        );
        registry.register(
            "zipfleet_worker_download_bytes",
            "Bytes downloaded from web sources and the object store",
            ConstCounter::new(load(&self.download_bytes)),
        );
        let stage_seconds: Family<Label, Counter<f64, AtomicU64>> = Family::default();
        for (stage, counter) in Stage::ALL.iter().zip(&self.stage_micros) {
            let seconds = load(counter) as f64 / 1e6;
            stage_seconds
                .get_or_create(&[("stage", stage.as_str())])
                .inc_by(seconds);
        }
        registry.register(
            "zipfleet_worker_stage_seconds",
            "Time spent in each stage, summed over images (upload: per job)",
            stage_seconds,
        );
        let kinds = || CacheKind::ALL.iter().map(|kind| kind.as_str());
        registry.register(
            "zipfleet_worker_cache_hits",
            "Cache hits, by kind",
            counters("kind", kinds().zip(self.cache_hits.iter().map(load))),
        );
        registry.register(
            "zipfleet_worker_cache_misses",
            "Cache misses, by kind",
            counters("kind", kinds().zip(self.cache_misses.iter().map(load))),
        );
        registry.register(
            "zipfleet_fair_dispatch",
            "Jobs this worker took, by how they were found: on a lane the fair-share order named, or by a sweep",
            counters(
                "decision",
                DISPATCH_DECISIONS
                    .into_iter()
                    .zip(self.dispatched.iter().map(load)),
            ),
        );
        let mut text = String::new();
        prometheus_text::encode(&mut text, &registry).expect("writing to a String never fails");
        text
    }
}

/// The budget is ZIPFLEET_MEMORY_BUDGET: a fixed baseline for the process
/// itself plus the pool images reserve from.
fn register_budget(registry: &mut Registry, budget: &MemoryBudget) {
    let (baseline, pool) = (BASELINE_MEMORY, budget.total_bytes());
    let reserved = pool.saturating_sub(budget.available_bytes());
    registry.register(
        "zipfleet_worker_memory_budget_bytes",
        "The worker's memory budget (baseline + image pool)",
        gauge(baseline + pool),
    );
    registry.register(
        "zipfleet_worker_memory_budget_used_bytes",
        "Budget in use: the baseline plus image memory reserved now",
        gauge(baseline + reserved),
    );
    registry.register(
        "zipfleet_worker_image_memory_reserved_bytes",
        "Image memory reserved right now (decodes in flight)",
        gauge(reserved),
    );
}

fn gauge(value: u64) -> ConstGauge {
    ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX))
}

/// One label's name and value.
type Label = [(&'static str, &'static str); 1];

/// A counter family with one label, from (label value, count) pairs.
fn counters(
    label: &'static str,
    values: impl Iterator<Item = (&'static str, u64)>,
) -> Family<Label, Counter> {
    let family = Family::<Label, Counter>::default();
    for (value, count) in values {
        family.get_or_create(&[(label, value)]).inc_by(count);
    }
    family
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_the_recorded_values() {
        let metrics = WorkerMetrics::default();
        let budget = MemoryBudget::new(64 << 20);
        {
            let _running = metrics.job_started();
            metrics.image_ok();
            metrics.image_ok();
            metrics.image_skipped(ImageErrorCode::HttpStatus);
            metrics.downloaded(1234);
            metrics.stage(Stage::Render, Duration::from_millis(1500));
            metrics.cache(CacheKind::Source, true);
            let text = metrics.render(&budget, true);
            assert!(text.contains("zipfleet_worker_jobs_running 1\n"), "{text}");
        }
        metrics.job_finished(JobState::Succeeded);
        let text = metrics.render(&budget, false);
        for line in [
            "zipfleet_worker_ready 0",
            "zipfleet_worker_jobs_running 0",
            "zipfleet_worker_jobs_finished_total{state=\"succeeded\"} 1",
            "zipfleet_worker_images_total{outcome=\"ok\"} 2",
            "zipfleet_worker_images_total{outcome=\"http_status\"} 1",
            "zipfleet_worker_download_bytes_total 1234",
            "zipfleet_worker_stage_seconds_total{stage=\"render\"} 1.5",
            "zipfleet_worker_cache_hits_total{kind=\"source\"} 1",
            "zipfleet_worker_memory_budget_bytes 117440512",
            "zipfleet_worker_memory_budget_used_bytes 50331648",
            "zipfleet_worker_image_memory_reserved_bytes 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // The names and types the hand-written renderer gave (dashboards and
        // alerts depend on them): prometheus-client adds `_total` itself.
        for (name, kind) in [
            ("zipfleet_worker_ready", "gauge"),
            ("zipfleet_worker_jobs_running", "gauge"),
            ("zipfleet_worker_jobs_finished_total", "counter"),
            ("zipfleet_worker_memory_budget_bytes", "gauge"),
            ("zipfleet_worker_memory_budget_used_bytes", "gauge"),
            ("zipfleet_worker_image_memory_reserved_bytes", "gauge"),
            ("zipfleet_worker_images_total", "counter"),
            ("zipfleet_worker_download_bytes_total", "counter"),
            ("zipfleet_worker_stage_seconds_total", "counter"),
            ("zipfleet_worker_cache_hits_total", "counter"),
            ("zipfleet_worker_cache_misses_total", "counter"),
        ] {
            let type_line = format!("# TYPE {name} {kind}");
            assert!(
                text.lines().any(|l| l == type_line),
                "{type_line} in\n{text}"
            );
        }
        let families = text.lines().filter(|l| l.starts_with("# TYPE")).count();
        assert_eq!(families, 12, "{text}");
        let samples = text.lines().filter(|l| !l.starts_with('#')).count();
        let expected = 6 + FINISHED.len() + 1 + ImageErrorCode::ALL.len() + Stage::ALL.len();
        let dispatch = DISPATCH_DECISIONS.len();
        assert_eq!(
            samples,
            expected + 2 * CacheKind::ALL.len() + dispatch,
            "{text}"
        );
    }
}
