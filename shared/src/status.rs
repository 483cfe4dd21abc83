//! The status document: what `GET /v1/jobs/{id}` answers and what the
//! completion message carries, exactly as the contract fixes it.

use crate::codes::{ImageErrorCode, JobErrorCode, JobFailureCode};
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

/// Where a job is in its life. `Succeeded`, `Failed` and `Cancelled` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 5] = [
        Self::Queued,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::Cancelled,
    ];

    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// Images of the job: all of them, finished, and failed (skipped) so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Progress {
    pub total: u32,
    pub done: u32,
    pub failed: u32,
}

/// A place in the object store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Location {
    pub bucket: String,
    pub key: String,
}

/// An image left out of the zip, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SkippedImage {
    pub id: String,
    pub code: ImageErrorCode,
    pub message: String,
}

/// What a succeeded job produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobResult {
    pub location: Location,
    /// A time-limited download URL; refreshed each time the status is read.
    pub url: String,
    pub size_bytes: u64,
    /// Number of images in the zip.
    pub images: u32,
    pub skipped: Vec<SkippedImage>,
    /// The dataset report, the same as in the zip's manifest.
    #[serde(default)]
    #[schema(required = true)]
    pub report: crate::report::DatasetReport,
}

/// Why a job failed or was cancelled. `code` is a job-level code
/// (`JobErrorCode`) or, when one image failed the job, that image's code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobError {
    /// A job error code or an image error code (see the description above).
    pub code: JobFailureCode,
    pub message: String,
}

impl JobError {
    pub fn new(code: impl Into<JobFailureCode>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }

    /// The error every cancelled job carries.
    pub fn cancelled() -> Self {
        Self::new(JobErrorCode::Cancelled, "the job was cancelled")
    }
}

/// Where a queued job stands in line (contract, "Fair share"): present only
/// while the job is `queued`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QueuePlace {
    /// Jobs that would start before this one if no other job arrived, under
    /// the fair policy (the tenant with the least work in flight goes next).
    pub jobs_ahead: u32,
    /// Expected seconds until it starts, from the fleet's recent job
    /// durations and its worker slots.
    pub estimated_wait_s: u32,
}

/// The tenant of jobs posted without one.
pub const DEFAULT_TENANT: &str = "default";

fn default_tenant() -> String {
    DEFAULT_TENANT.to_string()
}

/// The status document. Every key is always present (`null` when it does not
/// apply yet), so consumers in any language see one shape — except `queue`,
/// which only a queued job has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobStatus {
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub job_id: String,
    #[schema(required = true)]
    pub project_id: Option<String>,
    /// The school or class the job is for (`default` when the spec named none).
    #[serde(default = "default_tenant")]
    #[schema(required = true, pattern = r"^[A-Za-z0-9_.-]{1,64}$")]
    pub tenant: String,
    pub state: JobState,
    /// Only while `queued`: how many jobs are ahead and the expected wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueuePlace>,
    /// Deliveries so far: 0 while queued, 1 on the first run, more on retries.
    pub attempt: u32,
    pub progress: Progress,
    /// RFC 3339, UTC, millisecond precision.
    pub created_at: DateTime<Utc>,
    #[schema(required = true)]
    pub started_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub finished_at: Option<DateTime<Utc>>,
    /// Set when the job succeeded.
    #[schema(required = true)]
    pub result: Option<JobResult>,
    /// Set when the job failed or was cancelled.
    #[schema(required = true)]
    pub error: Option<JobError>,
}

impl JobStatus {
    /// A freshly accepted job.
    pub fn queued(job_id: &str, project_id: Option<String>, tenant: &str, total: u32) -> Self {
        Self {
            job_id: job_id.to_string(),
            project_id,
            tenant: tenant.to_string(),
            state: JobState::Queued,
            queue: None,
            attempt: 0,
            progress: Progress {
                total,
                done: 0,
                failed: 0,
            },
            created_at: now(),
            started_at: None,
            finished_at: None,
            result: None,
            error: None,
        }
    }

    /// `running` for this delivery `attempt`, progress counted afresh
    /// (a redelivered job starts its images over).
    pub fn start(&mut self, attempt: u32, total: u32) {
        self.state = JobState::Running;
        self.queue = None;
        self.attempt = attempt;
        self.progress = Progress {
            total,
            done: 0,
            failed: 0,
        };
        self.started_at = Some(now());
    }

    /// `succeeded` with what the job produced.
    pub fn succeed(&mut self, result: JobResult) {
        self.conclude(JobState::Succeeded);
        self.result = Some(result);
    }

    /// `failed`, and why.
    pub fn fail(&mut self, error: JobError) {
        self.conclude(JobState::Failed);
        self.error = Some(error);
    }

    /// `cancelled` (a queued job by the API, a running one by its worker).
    pub fn cancel(&mut self) {
        self.conclude(JobState::Cancelled);
        self.error = Some(JobError::cancelled());
    }

    fn conclude(&mut self, state: JobState) {
        debug_assert!(state.is_final());
        self.state = state;
        self.queue = None;
        self.finished_at = Some(now());
    }
}

/// The current time at millisecond precision (what RFC 3339 consumers expect).
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

#[cfg(test)]
impl JobStatus {
    /// `succeeded` with a small result, for tests of the stores.
    pub(crate) fn succeed_for_test(&mut self) {
        self.succeed(JobResult {
            location: Location {
                bucket: "b".into(),
                key: format!("zips/{}.zip", self.job_id),
            },
            url: "file:///tmp/x.zip".into(),
            size_bytes: 1,
            images: self.progress.done,
            skipped: Vec::new(),
            report: Default::default(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_document_has_the_contract_shape() {
        let mut status = JobStatus::queued("j1", Some("p".into()), "school-1", 40);
        status.state = JobState::Succeeded;
        status.result = Some(JobResult {
            location: Location {
                bucket: "b".into(),
                key: "zf/zips/j1.zip".into(),
            },
            url: "https://x".into(),
            size_bytes: 10,
            images: 39,
            skipped: vec![SkippedImage {
                id: "7".into(),
                code: ImageErrorCode::FetchTimeout,
                message: "slow".into(),
            }],
            report: Default::default(),
        });
        let value = serde_json::to_value(&status).unwrap();
        let keys: Vec<_> = value.as_object().unwrap().keys().cloned().collect();
        for key in [
            "job_id",
            "project_id",
            "tenant",
            "state",
            "attempt",
            "progress",
            "created_at",
            "started_at",
            "finished_at",
            "result",
            "error",
        ] {
            assert!(keys.contains(&key.to_string()), "{key} missing");
        }
        assert_eq!(value["state"], "succeeded");
        assert_eq!(value["progress"]["total"], 40);
        assert_eq!(value["result"]["skipped"][0]["code"], "fetch_timeout");
        assert!(value["started_at"].is_null());
        let created = value["created_at"].as_str().unwrap();
        assert!(DateTime::parse_from_rfc3339(created).is_ok(), "{created}");
        let back: JobStatus = serde_json::from_value(value).unwrap();
        assert_eq!(back, status);
    }

    #[test]
    fn final_states() {
        let finals: Vec<_> = JobState::ALL.into_iter().filter(|s| s.is_final()).collect();
        assert_eq!(
            finals,
            vec![JobState::Succeeded, JobState::Failed, JobState::Cancelled]
        );
    }
}
