//! The workers' heartbeats in Redis: one hash field per worker, dropped once
//! it has not been seen for a while.

use super::{unavailable, RedisStatusStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use zipfleet_shared::status::now;
use zipfleet_shared::status_store::{
    FleetRegistry, StatusError, WorkerBeat, WorkerSeen, WORKER_SEEN_FOR,
};

/// What one worker's field holds.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    slots: u32,
    busy: u32,
    images: u64,
    seen: DateTime<Utc>,
    images_per_second: f64,
}

#[async_trait]
impl FleetRegistry for RedisStatusStore {
    async fn worker_seen(&self, beat: &WorkerBeat) -> Result<(), StatusError> {
        let mut connection = self.connection();
        let last: Option<String> = redis::cmd("HGET")
            .arg(self.workers_key())
            .arg(&beat.worker_id)
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        let at = now();
        let last: Option<Entry> = last.and_then(|text| serde_json::from_str(&text).ok());
        let images_per_second = match last {
            Some(last) => {
                let seconds = (at - last.seen).num_milliseconds() as f64 / 1000.0;
                if seconds > 0.0 {
                    beat.images.saturating_sub(last.images) as f64 / seconds
                } else {
                    last.images_per_second
                }
            }
            None => 0.0,
        };
        let entry = Entry {
            slots: beat.slots,
            busy: beat.busy,
            images: beat.images,
            seen: at,
            images_per_second,
        };
        let _: () = redis::cmd("HSET")
            .arg(self.workers_key())
            .arg(&beat.worker_id)
            .arg(serde_json::to_string(&entry).expect("serializes"))
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn workers(&self) -> Result<Vec<WorkerSeen>, StatusError> {
        let mut connection = self.connection();
        let all: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.workers_key())
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        let cutoff = now() - chrono::Duration::from_std(WORKER_SEEN_FOR).unwrap_or_default();
        let mut seen = Vec::new();
        let mut gone = Vec::new();
        for (worker_id, text) in all {
            match serde_json::from_str::<Entry>(&text) {
                Ok(entry) if entry.seen >= cutoff => seen.push(WorkerSeen {
                    worker_id,
                    slots: entry.slots,
                    busy: entry.busy,
                    last_seen: entry.seen,
                    images_per_second: entry.images_per_second,
                }),
                _ => gone.push(worker_id),
            }
        }
        if !gone.is_empty() {
            let _: () = redis::cmd("HDEL")
                .arg(self.workers_key())
                .arg(&gone)
                .query_async(&mut connection)
                .await
                .map_err(unavailable)?;
        }
        seen.sort_by(|a, b| a.worker_id.cmp(&b.worker_id));
        Ok(seen)
    }
}
