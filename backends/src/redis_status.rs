//! Job status in Redis (`ZIPFLEET_STATUS=redis://HOST:PORT/DB`).
//!
//! One hash per job, `zipfleet:job:{id}`, with fields `doc` (the status
//! document as JSON), `state`, `fp` (spec fingerprint), `published`, `cancel`,
//! and the progress counters `done`/`failed` (atomic `HINCRBY`). Every
//! transition is a Lua script that checks `state` first, so a late `running`
//! can never overwrite a final state and the first final state wins. Every
//! write renews the key's TTL.

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
use std::collections::HashMap;
use std::time::Duration;
use zipfleet_shared::status::{JobState, JobStatus};
use zipfleet_shared::status_store::{
    job_seconds, BeginOutcome, CancelOutcome, CreateOutcome, Histogram, Stats, StatusError,
    StatusStore, IMAGE_SECONDS_BOUNDS, JOB_SECONDS_BOUNDS,
};

const FINAL: &str = "state == 'succeeded' or state == 'failed' or state == 'cancelled'";
/// The fleet-wide counters behind `/metrics`: `entered:STATE`, and for the
/// `job` and `image` histograms `PREFIX:bN` (bucket N), `PREFIX:sum_ms`, `PREFIX:count`.
const STATS_KEY: &str = "zipfleet:stats";

pub struct RedisStatusStore {
    connection: ConnectionManager,
    ttl_seconds: u64,
    create: Script,
    begin: Script,
    progress: Script,
    finish: Script,
    cancel: Script,
}

fn key(job_id: &str) -> String {
    format!("zipfleet:job:{job_id}")
}

fn unavailable(err: redis::RedisError) -> StatusError {
    StatusError::Unavailable(err.to_string())
}

impl RedisStatusStore {
    pub async fn connect(url: &str, ttl: Duration) -> Result<Self, StatusError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(5))
            .set_response_timeout(Duration::from_secs(5))
            .set_number_of_retries(3);
        let connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(unavailable)?;
        let ttl_seconds = ttl.as_secs().max(60);
        Ok(Self {
            connection,
            ttl_seconds,
            // KEYS[1]=job; ARGV: doc, fingerprint, ttl
            create: Script::new(
                r"if redis.call('EXISTS', KEYS[1]) == 1 then
                    return redis.call('HMGET', KEYS[1], 'doc', 'fp', 'published', 'done', 'failed')
                  end
                  redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'state', 'queued', 'fp', ARGV[2], 'published', '0', 'done', 0, 'failed', 0)
                  redis.call('EXPIRE', KEYS[1], ARGV[3])
                  redis.call('HINCRBY', KEYS[2], 'entered:queued', 1)
                  return false",
            ),
            // ARGV: running doc, ttl. Returns the final doc if already final, else false.
            begin: Script::new(&format!(
                r"local state = redis.call('HGET', KEYS[1], 'state')
                  if {FINAL} then return redis.call('HGET', KEYS[1], 'doc') end
                  redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'state', 'running', 'done', 0, 'failed', 0)
                  if not state then redis.call('HSET', KEYS[1], 'published', '1', 'fp', '') end
                  redis.call('EXPIRE', KEYS[1], ARGV[2])
                  redis.call('HINCRBY', KEYS[2], 'entered:running', 1)
                  return false"
            )),
            // ARGV: done, failed, image bucket field, image milliseconds
            progress: Script::new(
                r"if redis.call('HGET', KEYS[1], 'state') == 'running' then
                    redis.call('HINCRBY', KEYS[1], 'done', ARGV[1])
                    redis.call('HINCRBY', KEYS[1], 'failed', ARGV[2])
                  end
                  redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
                  redis.call('HINCRBY', KEYS[2], 'image:sum_ms', ARGV[4])
                  redis.call('HINCRBY', KEYS[2], 'image:count', 1)
                  return true",
            ),
            // ARGV: final doc, final state, ttl, job bucket field, job milliseconds. Returns the stored final doc.
            finish: Script::new(&format!(
                r"local state = redis.call('HGET', KEYS[1], 'state')
                  if {FINAL} then return redis.call('HGET', KEYS[1], 'doc') end
                  redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'state', ARGV[2])
                  if not state then redis.call('HSET', KEYS[1], 'published', '1', 'fp', '') end
                  redis.call('EXPIRE', KEYS[1], ARGV[3])
                  redis.call('HINCRBY', KEYS[2], 'entered:' .. ARGV[2], 1)
                  redis.call('HINCRBY', KEYS[2], ARGV[4], 1)
                  redis.call('HINCRBY', KEYS[2], 'job:sum_ms', ARGV[5])
                  redis.call('HINCRBY', KEYS[2], 'job:count', 1)
                  return ARGV[1]"
            )),
            // ARGV: cancelled doc (built from the queued one), ttl.
            cancel: Script::new(
                r"local state = redis.call('HGET', KEYS[1], 'state')
                  if not state then return 'not_found' end
                  if state == 'queued' then
                    redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'state', 'cancelled')
                    redis.call('EXPIRE', KEYS[1], ARGV[2])
                    redis.call('HINCRBY', KEYS[2], 'entered:cancelled', 1)
                    return 'cancelled'
                  end
                  if state == 'running' then
                    redis.call('HSET', KEYS[1], 'cancel', '1')
                    return 'requested'
                  end
                  return 'final'",
            ),
        })
    }

    fn parse(job_id: &str, doc: &str) -> Result<JobStatus, StatusError> {
        serde_json::from_str(doc).map_err(|err| StatusError::Corrupt {
            job_id: job_id.to_string(),
            reason: err.to_string(),
        })
    }

    fn encode(status: &JobStatus) -> String {
        serde_json::to_string(status).expect("a status always serializes")
    }
}

#[async_trait]
impl StatusStore for RedisStatusStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn create(
        &self,
        status: &JobStatus,
        fingerprint: &str,
    ) -> Result<CreateOutcome, StatusError> {
        let mut connection = self.connection.clone();
        let existing: Option<(String, String, String, u32, u32)> = self
            .create
            .key(key(&status.job_id))
            .key(STATS_KEY)
            .arg(Self::encode(status))
            .arg(fingerprint)
            .arg(self.ttl_seconds)
            .invoke_async(&mut connection)
            .await
            .map_err(unavailable)?;
        Ok(match existing {
            None => CreateOutcome::Created,
            Some((doc, fingerprint, published, done, failed)) => {
                let mut status = Self::parse(&status.job_id, &doc)?;
                if status.state == JobState::Running {
                    status.progress.done = done;
                    status.progress.failed = failed;
                }
                CreateOutcome::Existing {
                    status,
                    fingerprint,
                    published: published == "1",
                }
            }
        })
    }

    async fn mark_published(&self, job_id: &str) -> Result<(), StatusError> {
        let mut connection = self.connection.clone();
        let _: () = connection
            .hset(key(job_id), "published", "1")
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn get(&self, job_id: &str) -> Result<Option<JobStatus>, StatusError> {
        let mut connection = self.connection.clone();
        let fields: HashMap<String, String> =
            connection.hgetall(key(job_id)).await.map_err(unavailable)?;
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

    async fn begin(
        &self,
        job_id: &str,
        project_id: Option<&str>,
        attempt: u32,
        total: u32,
    ) -> Result<BeginOutcome, StatusError> {
        let existing = self.get(job_id).await?;
        let mut status = existing
            .unwrap_or_else(|| JobStatus::queued(job_id, project_id.map(str::to_string), total));
        if status.state.is_final() {
            return Ok(BeginOutcome::AlreadyFinal(status));
        }
        status.start(attempt, total);
        let mut connection = self.connection.clone();
        let final_doc: Option<String> = self
            .begin
            .key(key(job_id))
            .key(STATS_KEY)
            .arg(Self::encode(&status))
            .arg(self.ttl_seconds)
            .invoke_async(&mut connection)
            .await
            .map_err(unavailable)?;
        match final_doc {
            Some(doc) => Ok(BeginOutcome::AlreadyFinal(Self::parse(job_id, &doc)?)),
            None => Ok(BeginOutcome::Started(status)),
        }
    }

    async fn add_progress(
        &self,
        job_id: &str,
        done: u32,
        failed: u32,
        took: Duration,
    ) -> Result<(), StatusError> {
        let mut connection = self.connection.clone();
        let bucket = format!(
            "image:b{}",
            Histogram::bucket(&IMAGE_SECONDS_BOUNDS, took.as_secs_f64())
        );
        let _: bool = self
            .progress
            .key(key(job_id))
            .key(STATS_KEY)
            .arg(done)
            .arg(failed)
            .arg(bucket)
            .arg(took.as_millis() as u64)
            .invoke_async(&mut connection)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn finish(&self, status: &JobStatus) -> Result<JobStatus, StatusError> {
        let mut connection = self.connection.clone();
        let stored: String = self
            .finish
            .key(key(&status.job_id))
            .key(STATS_KEY)
            .arg(Self::encode(status))
            .arg(status.state.as_str())
            .arg(self.ttl_seconds)
            .arg(format!(
                "job:b{}",
                Histogram::bucket(&JOB_SECONDS_BOUNDS, job_seconds(status))
            ))
            .arg((job_seconds(status) * 1000.0) as u64)
            .invoke_async(&mut connection)
            .await
            .map_err(unavailable)?;
        Self::parse(&status.job_id, &stored)
    }

    async fn cancel(&self, job_id: &str) -> Result<CancelOutcome, StatusError> {
        let Some(mut status) = self.get(job_id).await? else {
            return Ok(CancelOutcome::NotFound);
        };
        let mut cancelled = status.clone();
        cancelled.cancel();
        let mut connection = self.connection.clone();
        let outcome: String = self
            .cancel
            .key(key(job_id))
            .key(STATS_KEY)
            .arg(Self::encode(&cancelled))
            .arg(self.ttl_seconds)
            .invoke_async(&mut connection)
            .await
            .map_err(unavailable)?;
        Ok(match outcome.as_str() {
            "cancelled" => CancelOutcome::Cancelled(cancelled),
            "requested" => CancelOutcome::Requested(status),
            "not_found" => CancelOutcome::NotFound,
            _ => {
                status = self.get(job_id).await?.unwrap_or(status);
                CancelOutcome::AlreadyFinal(status)
            }
        })
    }

    async fn cancel_requested(&self, job_id: &str) -> Result<bool, StatusError> {
        let mut connection = self.connection.clone();
        let (cancel, state): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(key(job_id))
            .arg("cancel")
            .arg("state")
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        Ok(cancel.as_deref() == Some("1") || state.as_deref() == Some("cancelled"))
    }

    async fn stats(&self) -> Result<Stats, StatusError> {
        let mut connection = self.connection.clone();
        let fields: HashMap<String, u64> =
            connection.hgetall(STATS_KEY).await.map_err(unavailable)?;
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
        let mut connection = self.connection.clone();
        let _: String = redis::cmd("PING")
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
