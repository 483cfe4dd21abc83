//! A job's life in Redis: create, begin, progress, finish, cancel — each one
//! script (see [`super::scripts`]).

use super::{field, number, reply_word, unavailable, RedisStatusStore};
use async_trait::async_trait;
use redis::AsyncCommands;
use std::collections::HashMap;
use std::time::Duration;
use zipfleet_shared::status::{JobState, JobStatus};
use zipfleet_shared::status_store::RUNNING_LEASE;
use zipfleet_shared::status_store::{
    job_seconds, run_seconds, BeginJob, BeginOutcome, CancelOutcome, CreateOutcome, FinishOutcome,
    Histogram, JobRecords, JobSignal, NewJob, Stats, StatusError, IMAGE_SECONDS_BOUNDS,
    JOB_SECONDS_BOUNDS,
};

#[async_trait]
impl JobRecords for RedisStatusStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn create(&self, job: &NewJob<'_>) -> Result<CreateOutcome, StatusError> {
        let status = job.status;
        let reply: Vec<String> = self
            .scripts
            .create
            .key(self.job_key(&status.job_id))
            .key(self.tombstone_key(&status.job_id))
            .arg(Self::encode(status))
            .arg(job.fingerprint)
            .arg(self.ttl_seconds)
            .arg(&status.tenant)
            .arg(job.limits.max_queued_per_tenant)
            .arg(job.limits.lanes)
            .arg(&status.job_id)
            .arg(status.project_id.as_deref().unwrap_or(""))
            .arg(job.pictures.join("\n"))
            .arg(self.keep_ms())
            .invoke_async(&mut self.connection())
            .await
            .map_err(unavailable)?;
        Ok(match reply_word(&reply) {
            "erased" => CreateOutcome::Erased,
            "quota" => CreateOutcome::QuotaExceeded {
                queued: number(field(&reply, 1)),
            },
            "created" => CreateOutcome::Created {
                lane: number(field(&reply, 1)),
            },
            _ => {
                let mut existing = Self::parse(&status.job_id, field(&reply, 1))?;
                if existing.state == JobState::Running {
                    existing.progress.done = number(field(&reply, 4));
                    existing.progress.failed = number(field(&reply, 5));
                }
                CreateOutcome::Existing {
                    status: existing,
                    fingerprint: field(&reply, 2).to_string(),
                    published: field(&reply, 3) == "1",
                    lane: number(field(&reply, 6)),
                }
            }
        })
    }

    async fn mark_published(&self, job_id: &str) -> Result<(), StatusError> {
        let _: i64 = self
            .scripts
            .mark_published
            .key(self.job_key(job_id))
            .invoke_async(&mut self.connection())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn get(&self, job_id: &str) -> Result<Option<JobStatus>, StatusError> {
        let (fields, erased): (HashMap<String, String>, bool) = redis::pipe()
            .hgetall(self.job_key(job_id))
            .exists(self.tombstone_key(job_id))
            .query_async(&mut self.connection())
            .await
            .map_err(unavailable)?;
        if erased {
            return Ok(None);
        }
        let Some(doc) = fields.get("doc") else {
            return Ok(None);
        };
        let mut status = Self::parse(job_id, doc)?;
        if status.state == JobState::Running {
            let count = |name: &str| fields.get(name).and_then(|v| v.parse().ok()).unwrap_or(0);
            status.progress.done = count("done");
            status.progress.failed = count("failed");
        }
        Ok(Some(status))
    }

    async fn begin(&self, job: &BeginJob<'_>) -> Result<BeginOutcome, StatusError> {
        let existing = self.get(job.job_id).await?;
        let mut status = existing.unwrap_or_else(|| {
            JobStatus::queued(
                job.job_id,
                job.project_id.map(str::to_string),
                job.tenant,
                job.total,
            )
        });
        if status.state.is_final() {
            return Ok(BeginOutcome::AlreadyFinal(status));
        }
        status.start(job.attempt, job.total);
        let reply: Vec<String> = self
            .scripts
            .begin
            .key(self.job_key(job.job_id))
            .key(self.tombstone_key(job.job_id))
            .arg(Self::encode(&status))
            .arg(self.ttl_seconds)
            .arg(job.tenant)
            .arg(job.job_id)
            .arg(job.project_id.unwrap_or(""))
            .arg(RUNNING_LEASE.as_millis() as u64)
            .arg(self.keep_ms())
            .invoke_async(&mut self.connection())
            .await
            .map_err(unavailable)?;
        Ok(match reply_word(&reply) {
            "erased" => BeginOutcome::Erased,
            "final" => BeginOutcome::AlreadyFinal(Self::parse(job.job_id, field(&reply, 1))?),
            _ => BeginOutcome::Started(status),
        })
    }

    async fn add_progress(
        &self,
        job_id: &str,
        done: u32,
        failed: u32,
        took: Duration,
        content: Option<&str>,
    ) -> Result<(), StatusError> {
        let bucket = format!(
            "image:b{}",
            Histogram::bucket(&IMAGE_SECONDS_BOUNDS, took.as_secs_f64())
        );
        let _: i64 = self
            .scripts
            .progress
            .key(self.job_key(job_id))
            .key(self.tombstone_key(job_id))
            .key(self.contents_key(job_id))
            .arg(done)
            .arg(failed)
            .arg(bucket)
            .arg(took.as_millis() as u64)
            .arg(content.unwrap_or(""))
            .invoke_async(&mut self.connection())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn finish(&self, status: &JobStatus) -> Result<FinishOutcome, StatusError> {
        let run_ms = run_seconds(status)
            .map(|seconds| ((seconds * 1000.0) as u64).to_string())
            .unwrap_or_default();
        let reply: Vec<String> = self
            .scripts
            .finish
            .key(self.job_key(&status.job_id))
            .key(self.tombstone_key(&status.job_id))
            .arg(Self::encode(status))
            .arg(status.state.as_str())
            .arg(self.ttl_seconds)
            .arg(format!(
                "job:b{}",
                Histogram::bucket(&JOB_SECONDS_BOUNDS, job_seconds(status))
            ))
            .arg((job_seconds(status) * 1000.0) as u64)
            .arg(&status.tenant)
            .arg(&status.job_id)
            .arg(run_ms)
            .arg(status.project_id.as_deref().unwrap_or(""))
            .arg(self.keep_ms())
            .invoke_async(&mut self.connection())
            .await
            .map_err(unavailable)?;
        Ok(match reply_word(&reply) {
            "erased" => FinishOutcome::Erased,
            _ => FinishOutcome::Stored(Self::parse(&status.job_id, field(&reply, 1))?),
        })
    }

    async fn cancel(&self, job_id: &str) -> Result<CancelOutcome, StatusError> {
        let Some(status) = self.get(job_id).await? else {
            return Ok(CancelOutcome::NotFound);
        };
        let mut cancelled = status.clone();
        cancelled.cancel();
        let outcome: String = self
            .scripts
            .cancel
            .key(self.job_key(job_id))
            .key(self.tombstone_key(job_id))
            .arg(Self::encode(&cancelled))
            .arg(self.ttl_seconds)
            .arg(job_id)
            .invoke_async(&mut self.connection())
            .await
            .map_err(unavailable)?;
        Ok(match outcome.as_str() {
            "cancelled" => CancelOutcome::Cancelled(cancelled),
            "requested" => CancelOutcome::Requested(status),
            "not_found" => CancelOutcome::NotFound,
            _ => match self.get(job_id).await? {
                Some(now) => CancelOutcome::AlreadyFinal(now),
                None => CancelOutcome::NotFound,
            },
        })
    }

    async fn signal(&self, job_id: &str) -> Result<JobSignal, StatusError> {
        let ((cancel, state), erased): ((Option<String>, Option<String>), bool) = redis::pipe()
            .hget(self.job_key(job_id), &["cancel", "state"])
            .exists(self.tombstone_key(job_id))
            .query_async(&mut self.connection())
            .await
            .map_err(unavailable)?;
        Ok(if erased {
            JobSignal::Erased
        } else if cancel.as_deref() == Some("1") || state.as_deref() == Some("cancelled") {
            JobSignal::Cancel
        } else {
            JobSignal::CarryOn
        })
    }

    async fn stats(&self) -> Result<Stats, StatusError> {
        let fields: HashMap<String, u64> = self
            .connection()
            .hgetall(self.stats_key())
            .await
            .map_err(unavailable)?;
        let field = |name: String| fields.get(&name).copied().unwrap_or(0);
        let histogram = |prefix: &str, bounds: &[f64]| Histogram {
            counts: (0..=bounds.len())
                .map(|i| field(format!("{prefix}:b{i}")))
                .collect(),
            sum_seconds: field(format!("{prefix}:sum_ms")) as f64 / 1000.0,
            count: field(format!("{prefix}:count")),
        };
        Ok(Stats {
            entered: JobState::ALL
                .iter()
                .map(|state| (*state, field(format!("entered:{}", state.as_str()))))
                .collect(),
            job_seconds: histogram("job", &JOB_SECONDS_BOUNDS),
            image_seconds: histogram("image", &IMAGE_SECONDS_BOUNDS),
        })
    }

    async fn check(&self) -> Result<(), StatusError> {
        let _: String = redis::cmd("PING")
            .query_async(&mut self.connection())
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
