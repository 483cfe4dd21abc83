//! Search and project listing in Redis: sorted-set indexes kept by every
//! transition script, walked newest first by one bounded script.

use super::{unavailable, RedisStatusStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use zipfleet_shared::status::JobState;
use zipfleet_shared::status_store::search::{
    Cursor, IndexKey, JobPage, JobQuery, JobSummary, SEARCH_SCAN,
};
use zipfleet_shared::status_store::{JobIndex, JobRecords, RecentCounts, StatusError};

impl RedisStatusStore {
    /// Summaries of these jobs, in this order (jobs gone meanwhile left out).
    async fn summaries(&self, ids: &[String]) -> Result<Vec<JobSummary>, StatusError> {
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.hgetall(self.job_key(id));
        }
        let hashes: Vec<HashMap<String, String>> = pipe
            .query_async(&mut self.connection())
            .await
            .map_err(unavailable)?;
        let mut summaries = Vec::with_capacity(ids.len());
        for (id, fields) in ids.iter().zip(hashes) {
            let Some(doc) = fields.get("doc") else {
                continue;
            };
            let mut status = Self::parse(id, doc)?;
            if status.state == JobState::Running {
                let count = |name: &str| fields.get(name).and_then(|v| v.parse().ok());
                status.progress.done = count("done").unwrap_or(0);
                status.progress.failed = count("failed").unwrap_or(0);
            }
            summaries.push(JobSummary::from(&status));
        }
        Ok(summaries)
    }
}

#[async_trait]
impl JobIndex for RedisStatusStore {
    async fn search(&self, query: &JobQuery) -> Result<JobPage, StatusError> {
        if let Some(job_id) = &query.job_id {
            let jobs = match self.get(job_id).await? {
                Some(status)
                    if query.matches(
                        status.project_id.as_deref(),
                        &status.tenant,
                        status.state,
                    ) =>
                {
                    vec![JobSummary::from(&status)]
                }
                _ => Vec::new(),
            };
            return Ok(JobPage {
                jobs,
                next_cursor: None,
            });
        }
        let (cursor_score, cursor_id) = match &query.cursor {
            Some(cursor) => (cursor.score.to_string(), cursor.job_id.clone()),
            None => (String::new(), String::new()),
        };
        let reply: Vec<String> = self
            .scripts
            .search
            .arg(self.index_key(&query.index()))
            .arg(cursor_score)
            .arg(cursor_id)
            .arg(query.page_size())
            .arg(SEARCH_SCAN)
            .arg(query.project_id.as_deref().unwrap_or(""))
            .arg(query.tenant.as_deref().unwrap_or(""))
            .arg(query.state.map_or("", JobState::as_str))
            .invoke_async(&mut self.connection())
            .await
            .map_err(unavailable)?;
        let next_cursor = match (reply.first(), reply.get(1)) {
            (Some(score), Some(id)) if !id.is_empty() => Some(
                Cursor {
                    score: score.parse::<f64>().unwrap_or(0.0) as i64,
                    job_id: id.clone(),
                }
                .encode(),
            ),
            _ => None,
        };
        let ids = reply.get(2..).unwrap_or_default();
        Ok(JobPage {
            jobs: self.summaries(ids).await?,
            next_cursor,
        })
    }

    async fn project_jobs(&self, project_id: &str) -> Result<Vec<String>, StatusError> {
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.index_key(&IndexKey::Project(project_id)))
            .arg(0)
            .arg(-1)
            .query_async(&mut self.connection())
            .await
            .map_err(unavailable)?;
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.exists(self.job_key(id));
        }
        let present: Vec<bool> = pipe
            .query_async(&mut self.connection())
            .await
            .map_err(unavailable)?;
        Ok(ids
            .into_iter()
            .zip(present)
            .filter_map(|(id, present)| present.then_some(id))
            .collect())
    }

    async fn recent(&self, since: DateTime<Utc>) -> Result<RecentCounts, StatusError> {
        let counts: Vec<u64> = self
            .scripts
            .recent
            .arg(since.timestamp_millis())
            .invoke_async(&mut self.connection())
            .await
            .map_err(unavailable)?;
        let at = |i: usize| counts.get(i).copied().unwrap_or(0);
        Ok(RecentCounts {
            queued: at(0),
            running: at(1),
            succeeded: at(2),
            failed: at(3),
            cancelled: at(4),
        })
    }
}
