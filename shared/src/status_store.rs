//! The status store trait: one status document per job, with transitions that
//! never go backwards (a late `running` never overwrites `succeeded`; the first
//! final state wins). Implementations: in-memory here, Redis in the backends crate.

pub mod memory;

use crate::status::{JobState, JobStatus};
use async_trait::async_trait;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("status store unavailable: {0}")]
    Unavailable(String),
    #[error("status of job {job_id} is unreadable: {reason}")]
    Corrupt { job_id: String, reason: String },
}

impl crate::retry::Transient for StatusError {
    /// Whether trying again later may help (the store was unreachable).
    fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// What [`StatusStore::create`] found.
#[derive(Debug, Clone, PartialEq)]
// A short-lived return value: boxing the status would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum CreateOutcome {
    Created,
    /// A job with this id exists already.
    Existing {
        status: JobStatus,
        fingerprint: String,
        published: bool,
    },
}

/// What [`StatusStore::begin`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum BeginOutcome {
    /// The job is now `running` at this attempt (progress reset).
    Started(JobStatus),
    /// The job already ended; it must not run again.
    AlreadyFinal(JobStatus),
}

/// What [`StatusStore::cancel`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum CancelOutcome {
    /// The job was queued and is now `cancelled`.
    Cancelled(JobStatus),
    /// The job is running; the worker stops at its next image.
    Requested(JobStatus),
    AlreadyFinal(JobStatus),
    NotFound,
}

#[async_trait]
pub trait StatusStore: Send + Sync {
    fn kind(&self) -> &'static str;
    /// Record a new `queued` job unless one with this id exists.
    async fn create(
        &self,
        status: &JobStatus,
        fingerprint: &str,
    ) -> Result<CreateOutcome, StatusError>;
    /// Note that the job's message was confirmed by the broker.
    async fn mark_published(&self, job_id: &str) -> Result<(), StatusError>;
    async fn get(&self, job_id: &str) -> Result<Option<JobStatus>, StatusError>;
    /// Move a job to `running` for this attempt, unless it already ended. A job
    /// never seen (posted straight to the broker) is created.
    async fn begin(
        &self,
        job_id: &str,
        project_id: Option<&str>,
        attempt: u32,
        total: u32,
    ) -> Result<BeginOutcome, StatusError>;
    /// Count one finished image (atomic increments) and how long it took.
    async fn add_progress(
        &self,
        job_id: &str,
        done: u32,
        failed: u32,
        took: Duration,
    ) -> Result<(), StatusError>;
    /// Store a final status. If the job already ended, the earlier final status
    /// is kept and returned.
    async fn finish(&self, status: &JobStatus) -> Result<JobStatus, StatusError>;
    async fn cancel(&self, job_id: &str) -> Result<CancelOutcome, StatusError>;
    async fn cancel_requested(&self, job_id: &str) -> Result<bool, StatusError>;
    /// Fleet-wide counters for `/metrics`.
    async fn stats(&self) -> Result<Stats, StatusError>;
    /// Cheap reachability check for `/readyz`.
    async fn check(&self) -> Result<(), StatusError>;
}

/// Upper bounds (seconds) of the job latency histogram (created → finished).
pub const JOB_SECONDS_BOUNDS: [f64; 10] =
    [1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0];
/// Upper bounds (seconds) of the per-image latency histogram (fetch → encoded).
pub const IMAGE_SECONDS_BOUNDS: [f64; 10] =
    [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A latency histogram: `counts[i]` observations in bucket `i` (not
/// cumulative; the last bucket is +Inf), their sum and count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    pub counts: Vec<u64>,
    pub sum_seconds: f64,
    pub count: u64,
}

impl Histogram {
    /// Index of the bucket `seconds` falls in, given the bounds.
    pub fn bucket(bounds: &[f64], seconds: f64) -> usize {
        bounds
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(bounds.len())
    }

    pub fn observe(&mut self, bounds: &[f64], seconds: f64) {
        if self.counts.len() <= bounds.len() {
            self.counts.resize(bounds.len() + 1, 0);
        }
        self.counts[Self::bucket(bounds, seconds)] += 1;
        self.sum_seconds += seconds;
        self.count += 1;
    }
}

/// What `/metrics` reports from the status store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// How many times jobs entered each state (a retried job enters `running` again).
    pub entered: Vec<(JobState, u64)>,
    pub job_seconds: Histogram,
    pub image_seconds: Histogram,
}

/// Seconds from creation to finish of a final status.
pub fn job_seconds(status: &JobStatus) -> f64 {
    status.finished_at.map_or(0.0, |finished| {
        (finished - status.created_at).num_milliseconds().max(0) as f64 / 1000.0
    })
}
