//! This worker's own counters, rendered as Prometheus text on its `/metrics`
//! (the fleet-wide job figures live in the status store and are on the API's).
//! Plain atomics: recording costs a relaxed add, never a lock.

use crate::budget::MemoryBudget;
use std::fmt::Write;
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
}

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

    /// Prometheus text exposition of every counter, the memory budget and readiness.
    pub fn render(&self, budget: &MemoryBudget, ready: bool) -> String {
        let mut out = String::new();
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        header(
            &mut out,
            "zipfleet_worker_ready",
            "gauge",
            "1 when the broker, object store and status store are reachable.",
        );
        let _ = writeln!(out, "zipfleet_worker_ready {}", u8::from(ready));
        header(
            &mut out,
            "zipfleet_worker_jobs_running",
            "gauge",
            "Jobs this worker is running now.",
        );
        let _ = writeln!(
            out,
            "zipfleet_worker_jobs_running {}",
            self.jobs_running().max(0)
        );
        header(
            &mut out,
            "zipfleet_worker_jobs_finished_total",
            "counter",
            "Jobs this worker finished, by final state.",
        );
        for (state, counter) in FINISHED.iter().zip(&self.jobs_finished) {
            let _ = writeln!(
                out,
                "zipfleet_worker_jobs_finished_total{{state=\"{}\"}} {}",
                state.as_str(),
                load(counter)
            );
        }
        // The budget is ZIPFLEET_MEMORY_BUDGET: a fixed baseline for the
        // process itself plus the pool images reserve from.
        let (baseline, pool) = (crate::budget::BASELINE_MEMORY, budget.total_bytes());
        let reserved = pool.saturating_sub(budget.available_bytes());
        header(
            &mut out,
            "zipfleet_worker_memory_budget_bytes",
            "gauge",
            "The worker's memory budget (baseline + image pool).",
        );
        let _ = writeln!(
            out,
            "zipfleet_worker_memory_budget_bytes {}",
            baseline + pool
        );
        header(
            &mut out,
            "zipfleet_worker_memory_budget_used_bytes",
            "gauge",
            "Budget in use: the baseline plus image memory reserved now.",
        );
        let _ = writeln!(
            out,
            "zipfleet_worker_memory_budget_used_bytes {}",
            baseline + reserved
        );
        header(
            &mut out,
            "zipfleet_worker_image_memory_reserved_bytes",
            "gauge",
            "Image memory reserved right now (decodes in flight).",
        );
        let _ = writeln!(
            out,
            "zipfleet_worker_image_memory_reserved_bytes {reserved}"
        );
        header(
            &mut out,
            "zipfleet_worker_images_total",
            "counter",
            "Images processed, by outcome (ok or the image error code).",
        );
        let _ = writeln!(
            out,
            "zipfleet_worker_images_total{{outcome=\"ok\"}} {}",
            load(&self.images_ok)
        );
        for (code, counter) in ImageErrorCode::ALL.iter().zip(&self.images_skipped) {
            let _ = writeln!(
                out,
                "zipfleet_worker_images_total{{outcome=\"{}\"}} {}",
                code.as_str(),
                load(counter)
            );
        }
        header(
            &mut out,
            "zipfleet_worker_download_bytes_total",
            "counter",
            "Bytes downloaded from web sources and the object store.",
        );
        let _ = writeln!(
            out,
            "zipfleet_worker_download_bytes_total {}",
            load(&self.download_bytes)
        );
        header(
            &mut out,
            "zipfleet_worker_stage_seconds_total",
            "counter",
            "Time spent in each stage, summed over images (upload: per job).",
        );
        for (stage, counter) in Stage::ALL.iter().zip(&self.stage_micros) {
            let _ = writeln!(
                out,
                "zipfleet_worker_stage_seconds_total{{stage=\"{}\"}} {:.6}",
                stage.as_str(),
                load(counter) as f64 / 1e6
            );
        }
        header(
            &mut out,
            "zipfleet_worker_cache_hits_total",
            "counter",
            "Cache hits, by kind.",
        );
        for (kind, counter) in CacheKind::ALL.iter().zip(&self.cache_hits) {
            let _ = writeln!(
                out,
                "zipfleet_worker_cache_hits_total{{kind=\"{}\"}} {}",
                kind.as_str(),
                load(counter)
            );
        }
        header(
            &mut out,
            "zipfleet_worker_cache_misses_total",
            "counter",
            "Cache misses, by kind.",
        );
        for (kind, counter) in CacheKind::ALL.iter().zip(&self.cache_misses) {
            let _ = writeln!(
                out,
                "zipfleet_worker_cache_misses_total{{kind=\"{}\"}} {}",
                kind.as_str(),
                load(counter)
            );
        }
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
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
            "zipfleet_worker_stage_seconds_total{stage=\"render\"} 1.500000",
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
    }
}
