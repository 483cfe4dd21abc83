//! The in-memory status store (`memory://`): the embedded default.

use super::{
    job_seconds, BeginOutcome, CancelOutcome, CreateOutcome, Histogram, Stats, StatusError,
    StatusStore, IMAGE_SECONDS_BOUNDS, JOB_SECONDS_BOUNDS,
};
use crate::status::{JobState, JobStatus};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug)]
struct Record {
    status: JobStatus,
    fingerprint: String,
    published: bool,
    cancel_requested: bool,
}

#[derive(Debug, Default)]
pub struct MemoryStatusStore {
    records: Mutex<HashMap<String, Record>>,
    stats: Mutex<(HashMap<JobState, u64>, Histogram, Histogram)>,
}

impl MemoryStatusStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn entered(&self, state: JobState) {
        *self.stats.lock().unwrap().0.entry(state).or_default() += 1;
    }
}

#[async_trait]
impl StatusStore for MemoryStatusStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn create(
        &self,
        status: &JobStatus,
        fingerprint: &str,
    ) -> Result<CreateOutcome, StatusError> {
        let mut records = self.records.lock().unwrap();
        if let Some(record) = records.get(&status.job_id) {
            return Ok(CreateOutcome::Existing {
                status: record.status.clone(),
                fingerprint: record.fingerprint.clone(),
                published: record.published,
            });
        }
        let record = Record {
            status: status.clone(),
            fingerprint: fingerprint.to_string(),
            published: false,
            cancel_requested: false,
        };
        records.insert(status.job_id.clone(), record);
        self.entered(JobState::Queued);
        Ok(CreateOutcome::Created)
    }

    async fn mark_published(&self, job_id: &str) -> Result<(), StatusError> {
        if let Some(record) = self.records.lock().unwrap().get_mut(job_id) {
            record.published = true;
        }
        Ok(())
    }

    async fn get(&self, job_id: &str) -> Result<Option<JobStatus>, StatusError> {
        Ok(self
            .records
            .lock()
            .unwrap()
            .get(job_id)
            .map(|r| r.status.clone()))
    }

    async fn begin(
        &self,
        job_id: &str,
        project_id: Option<&str>,
        attempt: u32,
        total: u32,
    ) -> Result<BeginOutcome, StatusError> {
        let mut records = self.records.lock().unwrap();
        let record = records.entry(job_id.to_string()).or_insert_with(|| Record {
            status: JobStatus::queued(job_id, project_id.map(str::to_string), total),
            fingerprint: String::new(),
            published: true,
            cancel_requested: false,
        });
        if record.status.state.is_final() {
            return Ok(BeginOutcome::AlreadyFinal(record.status.clone()));
        }
        record.status.start(attempt, total);
        self.entered(JobState::Running);
        Ok(BeginOutcome::Started(record.status.clone()))
    }

    async fn add_progress(
        &self,
        job_id: &str,
        done: u32,
        failed: u32,
        took: Duration,
    ) -> Result<(), StatusError> {
        self.stats
            .lock()
            .unwrap()
            .2
            .observe(&IMAGE_SECONDS_BOUNDS, took.as_secs_f64());
        if let Some(record) = self.records.lock().unwrap().get_mut(job_id) {
            if record.status.state == JobState::Running {
                record.status.progress.done += done;
                record.status.progress.failed += failed;
            }
        }
        Ok(())
    }

    async fn finish(&self, status: &JobStatus) -> Result<JobStatus, StatusError> {
        debug_assert!(status.state.is_final());
        let mut records = self.records.lock().unwrap();
        let record = records
            .entry(status.job_id.clone())
            .or_insert_with(|| Record {
                status: status.clone(),
                fingerprint: String::new(),
                published: true,
                cancel_requested: false,
            });
        if !record.status.state.is_final() {
            record.status = status.clone();
            let mut stats = self.stats.lock().unwrap();
            *stats.0.entry(status.state).or_default() += 1;
            stats.1.observe(&JOB_SECONDS_BOUNDS, job_seconds(status));
        }
        Ok(record.status.clone())
    }

    async fn cancel(&self, job_id: &str) -> Result<CancelOutcome, StatusError> {
        let mut records = self.records.lock().unwrap();
        let Some(record) = records.get_mut(job_id) else {
            return Ok(CancelOutcome::NotFound);
        };
        Ok(match record.status.state {
            JobState::Queued => {
                record.status.cancel();
                self.entered(JobState::Cancelled);
                CancelOutcome::Cancelled(record.status.clone())
            }
            JobState::Running => {
                record.cancel_requested = true;
                CancelOutcome::Requested(record.status.clone())
            }
            _ => CancelOutcome::AlreadyFinal(record.status.clone()),
        })
    }

    async fn cancel_requested(&self, job_id: &str) -> Result<bool, StatusError> {
        Ok(self
            .records
            .lock()
            .unwrap()
            .get(job_id)
            .is_some_and(|r| r.cancel_requested || r.status.state == JobState::Cancelled))
    }

    async fn stats(&self) -> Result<Stats, StatusError> {
        let stats = self.stats.lock().unwrap();
        Ok(Stats {
            entered: JobState::ALL
                .iter()
                .map(|state| (*state, stats.0.get(state).copied().unwrap_or(0)))
                .collect(),
            job_seconds: stats.1.clone(),
            image_seconds: stats.2.clone(),
        })
    }

    async fn check(&self) -> Result<(), StatusError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Progress;

    #[tokio::test]
    async fn transitions_never_go_backwards() {
        let store = MemoryStatusStore::new();
        let queued = JobStatus::queued("j", None, 2);
        assert_eq!(
            store.create(&queued, "f").await.unwrap(),
            CreateOutcome::Created
        );
        assert!(
            matches!(store.create(&queued, "g").await.unwrap(), CreateOutcome::Existing { fingerprint, .. } if fingerprint == "f")
        );
        let BeginOutcome::Started(running) = store.begin("j", None, 1, 2).await.unwrap() else {
            panic!()
        };
        assert_eq!(running.state, JobState::Running);
        store
            .add_progress("j", 1, 0, Duration::from_millis(30))
            .await
            .unwrap();
        store
            .add_progress("j", 0, 1, Duration::from_millis(70))
            .await
            .unwrap();
        assert_eq!(
            store.get("j").await.unwrap().unwrap().progress,
            Progress {
                total: 2,
                done: 1,
                failed: 1
            }
        );

        let mut done = running.clone();
        done.state = JobState::Succeeded;
        assert_eq!(
            store.finish(&done).await.unwrap().state,
            JobState::Succeeded
        );
        let mut late = running;
        late.state = JobState::Failed;
        assert_eq!(
            store.finish(&late).await.unwrap().state,
            JobState::Succeeded,
            "first final state wins"
        );
        assert!(matches!(
            store.begin("j", None, 2, 2).await.unwrap(),
            BeginOutcome::AlreadyFinal(_)
        ));

        let stats = store.stats().await.unwrap();
        let entered: HashMap<JobState, u64> = stats.entered.into_iter().collect();
        assert_eq!(
            (
                entered[&JobState::Queued],
                entered[&JobState::Running],
                entered[&JobState::Succeeded],
                entered[&JobState::Failed]
            ),
            (1, 1, 1, 0)
        );
        assert_eq!(stats.image_seconds.count, 2);
        assert_eq!(
            stats.image_seconds.counts[Histogram::bucket(&IMAGE_SECONDS_BOUNDS, 0.03)],
            1
        );
        assert_eq!(stats.job_seconds.count, 1);
    }

    #[tokio::test]
    async fn cancel_queued_and_running() {
        let store = MemoryStatusStore::new();
        store
            .create(&JobStatus::queued("q", None, 1), "f")
            .await
            .unwrap();
        assert!(
            matches!(store.cancel("q").await.unwrap(), CancelOutcome::Cancelled(s) if s.state == JobState::Cancelled)
        );
        assert!(matches!(
            store.begin("q", None, 1, 1).await.unwrap(),
            BeginOutcome::AlreadyFinal(_)
        ));

        store
            .create(&JobStatus::queued("r", None, 1), "f")
            .await
            .unwrap();
        store.begin("r", None, 1, 1).await.unwrap();
        assert!(!store.cancel_requested("r").await.unwrap());
        assert!(matches!(
            store.cancel("r").await.unwrap(),
            CancelOutcome::Requested(_)
        ));
        assert!(store.cancel_requested("r").await.unwrap());
        assert_eq!(store.cancel("nope").await.unwrap(), CancelOutcome::NotFound);
    }
}
