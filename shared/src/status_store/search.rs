//! Job search for operators (`GET /v1/jobs`): the query, one result line
//! per job, pages with an opaque cursor, and which index a query walks.
//!
//! Stores keep indexes as jobs change — every job by creation time, and by
//! project, tenant and state — and answer a query by walking the most
//! selective index that applies, newest first, examining at most
//! [`SEARCH_SCAN`] entries per page; a page that stopped early carries a
//! cursor to go on from.

use crate::status::{JobState, JobStatus, Progress};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Most jobs one page holds.
pub const MAX_PAGE: usize = 200;
/// Jobs one page shows unless asked otherwise.
pub const DEFAULT_PAGE: usize = 50;
/// Most index entries one page examines: bounds the work of a query whose
/// filters match little of the index it walks.
pub const SEARCH_SCAN: usize = 2_000;

/// What to look for; every filter given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobQuery {
    pub job_id: Option<String>,
    pub project_id: Option<String>,
    pub tenant: Option<String>,
    pub state: Option<JobState>,
    /// Jobs per page (1 to [`MAX_PAGE`]).
    pub limit: usize,
    /// Where the previous page stopped.
    pub cursor: Option<Cursor>,
}

/// The index a query walks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexKey<'a> {
    /// Every job, by creation time.
    All,
    Project(&'a str),
    Tenant(&'a str),
    /// Jobs in a state, by when they entered it.
    State(JobState),
}

impl JobQuery {
    /// The most selective index for this query: a project (a few jobs), a
    /// tenant, a state, else every job.
    pub fn index(&self) -> IndexKey<'_> {
        if let Some(project) = &self.project_id {
            IndexKey::Project(project)
        } else if let Some(tenant) = &self.tenant {
            IndexKey::Tenant(tenant)
        } else if let Some(state) = self.state {
            IndexKey::State(state)
        } else {
            IndexKey::All
        }
    }

    /// Whether a job matches every filter.
    pub fn matches(&self, project_id: Option<&str>, tenant: &str, state: JobState) -> bool {
        (self.project_id.is_none() || self.project_id.as_deref() == project_id)
            && (self.tenant.is_none() || self.tenant.as_deref() == Some(tenant))
            && (self.state.is_none() || self.state == Some(state))
    }

    /// The page size asked for, within bounds.
    pub fn page_size(&self) -> usize {
        match self.limit {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        }
    }
}

/// A position in an index: the entry's score (milliseconds) and job id.
/// Opaque to clients: `{score}.{job_id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub score: i64,
    pub job_id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}.{}", self.score, self.job_id)
    }

    /// `None` for a string no page ever handed out.
    pub fn decode(text: &str) -> Option<Self> {
        let (score, job_id) = text.split_once('.')?;
        let score = score.parse().ok()?;
        crate::spec::is_valid_job_id(job_id).then(|| Self {
            score,
            job_id: job_id.to_string(),
        })
    }
}

/// One job in a search result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobSummary {
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub job_id: String,
    #[schema(required = true)]
    pub project_id: Option<String>,
    pub tenant: String,
    pub state: JobState,
    pub created_at: DateTime<Utc>,
    #[schema(required = true)]
    pub finished_at: Option<DateTime<Utc>>,
    pub progress: Progress,
}

impl From<&JobStatus> for JobSummary {
    fn from(status: &JobStatus) -> Self {
        Self {
            job_id: status.job_id.clone(),
            project_id: status.project_id.clone(),
            tenant: status.tenant.clone(),
            state: status.state,
            created_at: status.created_at,
            finished_at: status.finished_at,
            progress: status.progress,
        }
    }
}

/// One page of a search, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobPage {
    pub jobs: Vec<JobSummary>,
    /// Pass as `cursor` for the next page; `null` when there is none.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_selective_index_is_walked() {
        let mut query = JobQuery {
            state: Some(JobState::Failed),
            ..Default::default()
        };
        assert_eq!(query.index(), IndexKey::State(JobState::Failed));
        query.tenant = Some("t".into());
        assert_eq!(query.index(), IndexKey::Tenant("t"));
        query.project_id = Some("p".into());
        assert_eq!(query.index(), IndexKey::Project("p"));
        assert!(query.matches(Some("p"), "t", JobState::Failed));
        assert!(!query.matches(Some("p"), "t", JobState::Running));
        assert!(!query.matches(None, "t", JobState::Failed));
        assert_eq!(JobQuery::default().index(), IndexKey::All);
    }

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        let cursor = Cursor {
            score: 1_733_000_000_123,
            job_id: "job-1".into(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(Cursor::decode("x.job"), None);
        assert_eq!(Cursor::decode("12.a/b"), None);
        assert_eq!(Cursor::decode("12"), None);
    }
}
