//! The status store: one status document per job, and the fleet-wide
//! records that hang off job statuses. Implementations: in-memory here
//! ([`memory::MemoryStatusStore`], the embedded default and the reference),
//! Redis in the backends crate. Each concern is a small trait; a status store
//! is all of them ([`StatusStore`]), because each transition must update
//! them in one atomic step:
//!
//! - [`JobRecords`]: a job's life. Transitions never go backwards (a late
//!   `running` never overwrites `succeeded`; the first final state wins).
//! - [`FairLedger`]: fair share between tenants (contract, "Fair share"):
//!   which tenant's jobs wait and run, which lane of the jobs queue each
//!   waiting job's message is on, and so the order workers take lanes in
//!   and a queued job's place in line. The broker stays the record of every
//!   job: a ledger that lost its data only makes dispatch less fair.
//! - [`Erasure`]: tombstones and forgetting a job (contract, "Erasure and
//!   retention").
//! - [`JobIndex`]: finding jobs by project, tenant and state without a scan
//!   of every key (operator page, project erasure).
//! - [`FleetRegistry`]: the workers seen lately, their slots and pace.

pub mod fair;
pub mod memory;
pub mod search;

use crate::status::{JobState, JobStatus, QueuePlace};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::time::Duration;

pub use fair::{DispatchOrder, FairLimits, Pace, TenantLoad};
pub use search::{JobPage, JobQuery, JobSummary};

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("status store unavailable: {0}")]
    Unavailable(String),
    #[error("status of job {job_id} is unreadable: {reason}")]
    Corrupt { job_id: String, reason: String },
    /// A request the store cannot answer (a malformed search cursor).
    #[error("{0}")]
    Invalid(String),
}

impl crate::retry::Transient for StatusError {
    /// Whether trying again later may help (the store was unreachable).
    fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// A job being accepted: its `queued` status and what the ledger needs.
#[derive(Debug, Clone, Copy)]
pub struct NewJob<'a> {
    /// `queued`, with the job's tenant.
    pub status: &'a JobStatus,
    /// Tells a re-post of the same spec from a conflicting one.
    pub fingerprint: &'a str,
    /// The cache keys of the job's pictures (URL records, object record
    /// prefixes: `zipfleet_shared::cache_keys`), so that erasing the job
    /// finds what was derived from them even if it never ran.
    pub pictures: &'a [String],
    pub limits: FairLimits,
}

/// What [`JobRecords::create`] found.
#[derive(Debug, Clone, PartialEq)]
// A short-lived return value: boxing the status would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum CreateOutcome {
    /// Recorded; publish its message on `lane`.
    Created { lane: u16 },
    /// A job with this id exists already (its message is, or goes, on `lane`).
    Existing {
        status: JobStatus,
        fingerprint: String,
        published: bool,
        lane: u16,
    },
    /// The tenant has this many jobs queued already: its quota.
    QuotaExceeded { queued: u32 },
    /// The id belongs to an erased job (its tombstone has not expired).
    Erased,
}

/// A job a worker is about to run.
#[derive(Debug, Clone, Copy)]
pub struct BeginJob<'a> {
    pub job_id: &'a str,
    pub project_id: Option<&'a str>,
    pub tenant: &'a str,
    /// The delivery attempt (1 on first delivery).
    pub attempt: u32,
    /// Images in the job.
    pub total: u32,
}

/// What [`JobRecords::begin`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum BeginOutcome {
    /// The job is now `running` at this attempt (progress reset).
    Started(JobStatus),
    /// The job already ended; it must not run again.
    AlreadyFinal(JobStatus),
    /// The job was erased: nothing of it may be written again.
    Erased,
}

/// What [`JobRecords::finish`] stored.
#[derive(Debug, Clone, PartialEq)]
// A short-lived return value: boxing the status would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum FinishOutcome {
    /// The final status now stored: this one, or an earlier final one.
    Stored(JobStatus),
    /// The job was erased meanwhile; nothing was written.
    Erased,
}

/// What [`JobRecords::cancel`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum CancelOutcome {
    /// The job was queued and is now `cancelled`.
    Cancelled(JobStatus),
    /// The job is running; the worker stops at its next image.
    Requested(JobStatus),
    AlreadyFinal(JobStatus),
    NotFound,
}

/// What a running job's worker must do, polled while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobSignal {
    CarryOn,
    /// Stop and finish the job `cancelled`.
    Cancel,
    /// Stop and write nothing more: the job was erased.
    Erased,
}

/// A job's life, from acceptance to its final status.
#[async_trait]
pub trait JobRecords: Send + Sync {
    fn kind(&self) -> &'static str;
    /// Record a new `queued` job unless one with this id exists, its tenant
    /// is over its quota, or the id is erased; choose its lane.
    async fn create(&self, job: &NewJob<'_>) -> Result<CreateOutcome, StatusError>;
    /// Note that the job's message was confirmed by the broker.
    async fn mark_published(&self, job_id: &str) -> Result<(), StatusError>;
    /// The status document (without its `queue` place: [`FairLedger::place_in_line`]).
    /// `None` for unknown and erased jobs.
    async fn get(&self, job_id: &str) -> Result<Option<JobStatus>, StatusError>;
    /// Move a job to `running` for this attempt, unless it already ended or
    /// was erased. A job never seen (posted straight to the broker, or a
    /// store that lost its data) is created.
    async fn begin(&self, job: &BeginJob<'_>) -> Result<BeginOutcome, StatusError>;
    /// Count finished images (atomic increments) and how long the last took;
    /// `content` is the SHA-256 (hex) of a picture the job used, kept so an
    /// erasure finds the cache entries derived from it.
    async fn add_progress(
        &self,
        job_id: &str,
        done: u32,
        failed: u32,
        took: Duration,
        content: Option<&str>,
    ) -> Result<(), StatusError>;
    /// Store a final status. If the job already ended, the earlier final
    /// status is kept and returned; an erased job stores nothing.
    async fn finish(&self, status: &JobStatus) -> Result<FinishOutcome, StatusError>;
    async fn cancel(&self, job_id: &str) -> Result<CancelOutcome, StatusError>;
    /// Whether the running job was cancelled or erased.
    async fn signal(&self, job_id: &str) -> Result<JobSignal, StatusError>;
    /// Fleet-wide counters for `/metrics`.
    async fn stats(&self) -> Result<Stats, StatusError>;
    /// Cheap reachability check for `/readyz`.
    async fn check(&self) -> Result<(), StatusError>;
}

/// Fair share between tenants (contract, "Fair share"; ARCHITECTURE.md).
#[async_trait]
pub trait FairLedger: Send + Sync {
    /// The lanes a worker with a free slot should take from, best first.
    async fn dispatch_order(&self, lanes: u16) -> Result<DispatchOrder, StatusError>;
    /// Whether any job the ledger knows of waits (cheap: idle workers ask often).
    async fn work_waiting(&self) -> Result<bool, StatusError>;
    /// Keep a running job counted as this tenant's work in flight (its
    /// lease lapses if its worker dies and stops renewing it).
    async fn renew(&self, job_id: &str, tenant: &str) -> Result<(), StatusError>;
    /// A running job's message went back to `lane`: it waits again.
    async fn hand_back(&self, job_id: &str, tenant: &str, lane: u16) -> Result<(), StatusError>;
    /// Where a queued job stands; `None` if it is not waiting.
    async fn place_in_line(&self, job_id: &str) -> Result<Option<QueuePlace>, StatusError>;
    /// Every tenant with jobs waiting or running.
    async fn tenants(&self) -> Result<Vec<TenantLoad>, StatusError>;
    /// How fast the fleet works through jobs (for estimates and `Retry-After`).
    async fn pace(&self) -> Result<Pace, StatusError>;
}

/// How long a running job counts as its tenant's work in flight without a
/// renewal ([`FairLedger::renew`]): its worker renews every third of this
/// while it runs, so a worker that died stops counting within a minute.
pub const RUNNING_LEASE: Duration = Duration::from_secs(60);

/// What an erasure must delete, as the store knew the job.
#[derive(Debug, Clone, PartialEq)]
pub struct ErasedJob {
    pub status: JobStatus,
    /// The cache keys of the job's pictures given at acceptance.
    pub pictures: Vec<String>,
    /// SHA-256 (hex) of every picture content the job used.
    pub contents: Vec<String>,
}

/// Forgetting a job on request (contract, "Erasure and retention").
#[async_trait]
pub trait Erasure: Send + Sync {
    /// Mark the job erased (a tombstone for `tombstone_ttl`, checked by
    /// every later write), take it off the ledger, tell a running worker to
    /// stop; return what must be deleted. `None` if there is no such job (or
    /// it was forgotten already). Repeatable until [`Erasure::forget`].
    async fn erase(
        &self,
        job_id: &str,
        tombstone_ttl: Duration,
    ) -> Result<Option<ErasedJob>, StatusError>;
    /// Delete the job's status, idempotency and index records (the tombstone stays).
    async fn forget(&self, job_id: &str) -> Result<(), StatusError>;
    /// Whether the job is erased (tombstoned).
    async fn is_erased(&self, job_id: &str) -> Result<bool, StatusError>;
}

/// Counts of jobs by state: queued and running now, finished recently.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecentCounts {
    pub queued: u64,
    pub running: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub cancelled: u64,
}

/// Finding jobs (operator page) and a project's jobs (project erasure),
/// from indexes kept as jobs change — never a scan of every key.
#[async_trait]
pub trait JobIndex: Send + Sync {
    /// Jobs matching the query, newest first, examining a bounded number of entries.
    async fn search(&self, query: &JobQuery) -> Result<JobPage, StatusError>;
    /// Every job id of a project (still known to the store).
    async fn project_jobs(&self, project_id: &str) -> Result<Vec<String>, StatusError>;
    /// Jobs queued and running now; succeeded, failed and cancelled since `since`.
    async fn recent(&self, since: DateTime<Utc>) -> Result<RecentCounts, StatusError>;
}

/// A worker's heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerBeat {
    pub worker_id: String,
    /// Jobs it runs at once.
    pub slots: u32,
    /// Jobs it runs now.
    pub busy: u32,
    /// Images it has finished since it started.
    pub images: u64,
}

/// A worker as the fleet last saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerSeen {
    pub worker_id: String,
    pub slots: u32,
    pub busy: u32,
    pub last_seen: DateTime<Utc>,
    /// Between its last two heartbeats.
    pub images_per_second: f64,
}

/// How long a worker counts as seen after its last heartbeat.
pub const WORKER_SEEN_FOR: Duration = Duration::from_secs(30);

/// The workers of the fleet.
#[async_trait]
pub trait FleetRegistry: Send + Sync {
    async fn worker_seen(&self, beat: &WorkerBeat) -> Result<(), StatusError>;
    /// Workers seen within [`WORKER_SEEN_FOR`].
    async fn workers(&self) -> Result<Vec<WorkerSeen>, StatusError>;
}

/// The traits a caller of a status store brings into scope
pub mod prelude {
    pub use super::{Erasure, FairLedger, FleetRegistry, JobIndex, JobRecords, StatusStore};
}

/// A status store: every concern above, updated together.
pub trait StatusStore: JobRecords + FairLedger + Erasure + JobIndex + FleetRegistry {}

impl<T: JobRecords + FairLedger + Erasure + JobIndex + FleetRegistry> StatusStore for T {}

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

/// Seconds a final job ran (start → finish), if it started.
pub fn run_seconds(status: &JobStatus) -> Option<f64> {
    let (started, finished) = (status.started_at?, status.finished_at?);
    Some((finished - started).num_milliseconds().max(0) as f64 / 1000.0)
}
