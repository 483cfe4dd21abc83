//! Fair share in Redis: the ledger's numbers come from scripts, the policy
//! from `zipfleet_shared::status_store::fair` (the same functions the
//! in-memory store uses).

use super::{unavailable, RedisStatusStore};
use async_trait::async_trait;
use std::time::Duration;
use zipfleet_shared::status::QueuePlace;
use zipfleet_shared::status_store::fair::{self, Pace, TenantLoad};
use zipfleet_shared::status_store::RUNNING_LEASE;
use zipfleet_shared::status_store::{DispatchOrder, FairLedger, FleetRegistry, StatusError};

impl RedisStatusStore {
    async fn loads(&self) -> Result<Vec<TenantLoad>, StatusError> {
        let rows: Vec<String> = self
            .scripts
            .loads
            .invoke_async(&mut self.connection())
            .await
            .map_err(unavailable)?;
        Ok(rows
            .chunks_exact(5)
            .map(|row| TenantLoad {
                tenant: row[0].clone(),
                queued: row[1].parse().unwrap_or(0),
                running: row[2].parse().unwrap_or(0),
                oldest_wait: Duration::from_millis(row[3].parse().unwrap_or(0)),
                oldest_lane: row[4].parse().ok(),
            })
            .collect())
    }
}

#[async_trait]
impl FairLedger for RedisStatusStore {
    async fn dispatch_order(&self, lanes: u16) -> Result<DispatchOrder, StatusError> {
        Ok(fair::dispatch_order(&self.loads().await?, lanes))
    }

    async fn work_waiting(&self) -> Result<bool, StatusError> {
        let waiting: i64 = self
            .scripts
            .work_waiting
            .invoke_async(&mut self.connection())
            .await
            .map_err(unavailable)?;
        Ok(waiting == 1)
    }

    async fn renew(&self, job_id: &str, tenant: &str) -> Result<(), StatusError> {
        let _: i64 = self
            .scripts
            .renew
            .arg(tenant)
            .arg(job_id)
            .arg(RUNNING_LEASE.as_millis() as u64)
            .invoke_async(&mut self.connection())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn hand_back(&self, job_id: &str, tenant: &str, lane: u16) -> Result<(), StatusError> {
        let _: i64 = self
            .scripts
            .hand_back
            .key(self.job_key(job_id))
            .key(self.tombstone_key(job_id))
            .arg(tenant)
            .arg(job_id)
            .arg(lane)
            .invoke_async(&mut self.connection())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn place_in_line(&self, job_id: &str) -> Result<Option<QueuePlace>, StatusError> {
        let rank: i64 = self
            .scripts
            .rank
            .arg(job_id)
            .invoke_async(&mut self.connection())
            .await
            .map_err(unavailable)?;
        let Ok(position) = u32::try_from(rank) else {
            return Ok(None);
        };
        let tenant: Option<String> = redis::cmd("HGET")
            .arg(self.job_key(job_id))
            .arg("tenant")
            .query_async(&mut self.connection())
            .await
            .map_err(unavailable)?;
        let Some(tenant) = tenant else {
            return Ok(None);
        };
        let (loads, pace) = tokio::try_join!(self.loads(), self.pace())?;
        let jobs_ahead = fair::jobs_ahead(&loads, &tenant, position);
        Ok(Some(QueuePlace {
            jobs_ahead,
            estimated_wait_s: pace.wait_seconds(jobs_ahead),
        }))
    }

    async fn tenants(&self) -> Result<Vec<TenantLoad>, StatusError> {
        self.loads().await
    }

    async fn pace(&self) -> Result<Pace, StatusError> {
        let runs: Vec<u64> = redis::cmd("LRANGE")
            .arg(self.runs_key())
            .arg(0)
            .arg(-1)
            .query_async(&mut self.connection())
            .await
            .map_err(unavailable)?;
        let slots = self.workers().await?.iter().map(|w| w.slots).sum();
        Ok(Pace::from_runs(
            runs.into_iter().map(|ms| ms as f64 / 1000.0).collect(),
            slots,
        ))
    }
}
