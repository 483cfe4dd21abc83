//! Erasure in Redis: the tombstone, taking the job off the ledger, and
//! forgetting its records.

use super::{unavailable, RedisStatusStore};
use async_trait::async_trait;
use std::time::Duration;
use zipfleet_shared::status_store::{ErasedJob, Erasure, StatusError};

#[async_trait]
impl Erasure for RedisStatusStore {
    async fn erase(
        &self,
        job_id: &str,
        tombstone_ttl: Duration,
    ) -> Result<Option<ErasedJob>, StatusError> {
        let reply: Option<Vec<String>> = self
            .scripts
            .erase
            .key(self.job_key(job_id))
            .key(self.tombstone_key(job_id))
            .key(self.contents_key(job_id))
            .arg(tombstone_ttl.as_secs().max(1))
            .arg(job_id)
            .invoke_async(&mut self.connection())
            .await
            .map_err(unavailable)?;
        let Some(reply) = reply else {
            return Ok(None);
        };
        let mut fields = reply.into_iter();
        let status = Self::parse(job_id, &fields.next().unwrap_or_default())?;
        let pictures = fields
            .next()
            .unwrap_or_default()
            .lines()
            .filter(|line| !line.is_empty())
            .map(str::to_string)
            .collect();
        Ok(Some(ErasedJob {
            status,
            pictures,
            contents: fields.collect(),
        }))
    }

    async fn forget(&self, job_id: &str) -> Result<(), StatusError> {
        let _: i64 = self
            .scripts
            .forget
            .key(self.job_key(job_id))
            .key(self.contents_key(job_id))
            .arg(job_id)
            .invoke_async(&mut self.connection())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn is_erased(&self, job_id: &str) -> Result<bool, StatusError> {
        redis::cmd("EXISTS")
            .arg(self.tombstone_key(job_id))
            .query_async(&mut self.connection())
            .await
            .map_err(unavailable)
    }
}
