//! The status store trait: one status document per job, with transitions that
//! never go backwards (a late `running` never overwrites `succeeded`; the first
//! final state wins). Implementations: in-memory here, Redis in the backends crate.

pub mod memory;

use crate::status::JobStatus;
use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("status store unavailable: {0}")]
    Unavailable(String),
    #[error("status of job {job_id} is unreadable: {reason}")]
    Corrupt { job_id: String, reason: String },
}

/// What [`StatusStore::create`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum CreateOutcome {
    Created,
    /// A job with this id exists already.
    Existing { status: JobStatus, fingerprint: String, published: bool },
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
    async fn create(&self, status: &JobStatus, fingerprint: &str) -> Result<CreateOutcome, StatusError>;
    /// Note that the job's message was confirmed by the broker.
    async fn mark_published(&self, job_id: &str) -> Result<(), StatusError>;
    async fn get(&self, job_id: &str) -> Result<Option<JobStatus>, StatusError>;
    /// Move a job to `running` for this attempt, unless it already ended. A job
    /// never seen (posted straight to the broker) is created.
    async fn begin(&self, job_id: &str, project_id: Option<&str>, attempt: u32, total: u32) -> Result<BeginOutcome, StatusError>;
    /// Count finished images (atomic increments).
    async fn add_progress(&self, job_id: &str, done: u32, failed: u32) -> Result<(), StatusError>;
    /// Store a final status. If the job already ended, the earlier final status
    /// is kept and returned.
    async fn finish(&self, status: &JobStatus) -> Result<JobStatus, StatusError>;
    async fn cancel(&self, job_id: &str) -> Result<CancelOutcome, StatusError>;
    async fn cancel_requested(&self, job_id: &str) -> Result<bool, StatusError>;
    /// Cheap reachability check for `/readyz`.
    async fn check(&self) -> Result<(), StatusError>;
}
