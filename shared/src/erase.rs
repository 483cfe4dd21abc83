//! Erasing a job — the one way zipfleet forgets a job on request (contract,
//! "Erasure and retention"), used by the API's `DELETE /v1/jobs/{id}` and
//! `DELETE /v1/projects/{project_id}`.
//!
//! The order is what keeps erased data from coming back:
//!
//! 1. The status store marks the job erased (a tombstone that every later
//!    write checks), takes it off the fair-share ledger and tells a worker
//!    running it to stop; it answers what the job's pictures were (their
//!    cache keys) and which contents the job used.
//! 2. Everything derived from the job is deleted for good — its zip (every
//!    version, unfinished uploads aborted), its claim-checked spec, its dead
//!    letters, and every cache entry derived from its pictures: the URL and
//!    object records, and for each content those records or the job name,
//!    the kept source bytes and its renders for every output setting, even
//!    when other jobs share them (they render again next time).
//! 3. Only then are its status and idempotency records deleted; the
//!    tombstone stays for `ZIPFLEET_ERASURE_TOMBSTONE_TTL`.
//!
//! A worker still running the job writes after a check of the tombstone and
//! checks again after each write, undoing it if the tombstone appeared:
//! either its check sees the tombstone, or its write happened before step 1
//! and step 2 finds it. A failure half-way leaves the job erasable again.

use crate::backends::Backends;
use crate::cache_keys;
use crate::status_store::{ErasedJob, StatusError};
use crate::store::{ObjectStore, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::Duration;

/// What an erasure removed, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Erased {
    /// Zips (each with every version of it).
    pub zips: u64,
    /// Cache entries derived from the job's pictures: renders, source bytes, URL and object records.
    pub cache_entries: u64,
    /// Claim-checked specs.
    pub specs: u64,
    /// Status documents (with their idempotency records).
    pub statuses: u64,
    /// Messages of the job in the dead-letter queue.
    pub dead_letters: u64,
}

impl std::ops::AddAssign for Erased {
    fn add_assign(&mut self, other: Self) {
        self.zips += other.zips;
        self.cache_entries += other.cache_entries;
        self.specs += other.specs;
        self.statuses += other.statuses;
        self.dead_letters += other.dead_letters;
    }
}

/// The receipt of `DELETE /v1/jobs/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobErased {
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub job_id: String,
    pub erased: Erased,
}

/// The receipt of `DELETE /v1/projects/{project_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProjectErased {
    pub project_id: String,
    /// Every job erased.
    pub job_ids: Vec<String>,
    pub erased: Erased,
}

#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    #[error("the status store is unavailable: {0}")]
    Status(#[from] StatusError),
    #[error("the object store could not delete the job's data: {0}")]
    Store(#[from] StoreError),
    #[error("the dead-letter queue could not be cleared of the job: {0}")]
    DeadLetters(String),
}

/// Erase one job; `None` if there is no such job (or it is erased already).
pub async fn erase_job(
    backends: &Backends,
    job_id: &str,
    tombstone_ttl: Duration,
) -> Result<Option<Erased>, EraseError> {
    let Some(job) = backends.status.erase(job_id, tombstone_ttl).await? else {
        return Ok(None);
    };
    let store = backends.store.as_ref();
    let mut erased = Erased {
        zips: store
            .erase(&store.own_key(&format!("zips/{job_id}.zip")))
            .await?,
        specs: store
            .erase(&store.own_key(&format!("specs/{job_id}.json")))
            .await?,
        cache_entries: erase_cache(store, &job).await?,
        dead_letters: erase_dead_letters(backends, job_id).await?,
        statuses: 0,
    };
    backends.status.forget(job_id).await?;
    erased.statuses = 1;
    Ok(Some(erased))
}

/// Erase every job of a project; `None` if the project has no job.
pub async fn erase_project(
    backends: &Backends,
    project_id: &str,
    tombstone_ttl: Duration,
) -> Result<Option<ProjectErased>, EraseError> {
    let job_ids = backends.status.project_jobs(project_id).await?;
    let mut receipt = ProjectErased {
        project_id: project_id.to_string(),
        job_ids: Vec::new(),
        erased: Erased::default(),
    };
    for job_id in job_ids {
        if let Some(erased) = erase_job(backends, &job_id, tombstone_ttl).await? {
            receipt.job_ids.push(job_id);
            receipt.erased += erased;
        }
    }
    Ok((!receipt.job_ids.is_empty()).then_some(receipt))
}

/// Every cache entry derived from the job's pictures.
async fn erase_cache(store: &dyn ObjectStore, job: &ErasedJob) -> Result<u64, StoreError> {
    let cache_key = |relative: &str| store.own_key(&format!("cache/{relative}"));
    let mut contents: BTreeSet<String> = job.contents.iter().cloned().collect();
    let mut records = Vec::new();
    for picture in &job.pictures {
        if picture.ends_with('/') {
            // An object source: one record per ETag it had.
            records.extend(store.list_keys(&cache_key(picture)).await?);
        } else {
            records.push(cache_key(picture));
        }
    }
    let mut erased = 0;
    for record in records {
        if let Ok(bytes) = crate::store::read_small(store, &record, MAX_RECORD_BYTES).await {
            contents.extend(record_content(&bytes));
        }
        erased += store.erase(&record).await?;
    }
    for content in contents.iter().filter(|c| is_sha256_hex(c)) {
        erased += store
            .erase(&cache_key(&cache_keys::source(content)))
            .await?;
        erased += store
            .erase_prefix(&cache_key(&cache_keys::renders_of(content)))
            .await?;
    }
    Ok(erased)
}

/// The job's messages in the dead-letter queue (every one of them: the
/// broker scans the whole queue, leaving the others as they were). A broker
/// without a dead-letter queue it can read has none to delete.
async fn erase_dead_letters(backends: &Backends, job_id: &str) -> Result<u64, EraseError> {
    match backends.broker.dead_letter_queue() {
        Some(dead_letters) => dead_letters
            .delete_job(job_id)
            .await
            .map_err(|err| EraseError::DeadLetters(err.to_string())),
        None => Ok(0),
    }
}

/// The largest URL or object record read back (a header and a little JSON).
const MAX_RECORD_BYTES: u64 = 128 * 1024;

/// The content a URL or object record points at: the `sha256` in its JSON
/// metadata (after the entry's fixed header; see the worker's cache entry
/// format). A failure record, or anything unreadable, points at nothing.
fn record_content(bytes: &[u8]) -> Option<String> {
    const HEADER: usize = 4 + 8 + 4 + 8 + 32 + 32;
    let meta_len = u32::from_le_bytes(bytes.get(12..16)?.try_into().ok()?) as usize;
    let meta = bytes.get(HEADER..HEADER.checked_add(meta_len)?)?;
    let value: serde_json::Value = serde_json::from_slice(meta).ok()?;
    find_sha256(&value)
}

fn find_sha256(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Object(map) => map
            .get("sha256")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .or_else(|| map.values().find_map(find_sha256)),
        serde_json::Value::Array(items) => items.iter().find_map(find_sha256),
        _ => None,
    }
}

fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(meta: &[u8]) -> Vec<u8> {
        let mut bytes = b"ZFC1".to_vec();
        bytes.extend_from_slice(&0u64.to_le_bytes());
        bytes.extend_from_slice(&(meta.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&0u64.to_le_bytes());
        bytes.extend_from_slice(&[0u8; 64]);
        bytes.extend_from_slice(meta);
        bytes
    }

    #[tokio::test]
    async fn a_jobs_dead_letters_are_erased_with_it_and_no_others() {
        use crate::accept::{accept_job, AcceptSettings};
        use crate::broker::memory::MemoryBroker;
        use crate::broker::{Broker, Lane};
        use crate::status_store::memory::MemoryStatusStore;
        use std::sync::Arc;

        let dir = tempfile::tempdir().unwrap();
        let broker = MemoryBroker::new(5);
        let backends = Backends {
            broker: Arc::new(broker.clone()),
            store: Arc::new(crate::store::file::FileStore::new(dir.path()).unwrap()),
            status: Arc::new(MemoryStatusStore::new()),
        };
        let settings = AcceptSettings::from_config(
            &crate::config::BackendConfig::embedded(dir.path()),
            &Default::default(),
        );
        for job_id in ["gone", "kept"] {
            let spec = crate::spec::JobSpec::parse(
                serde_json::json!({"job_id": job_id, "images": [
                    {"id": "1", "label": "a", "url": "https://example.com/a.jpg"}]})
                .to_string()
                .as_bytes(),
                &Default::default(),
            )
            .unwrap();
            accept_job(&backends, spec, &settings).await.unwrap();
        }
        // Both dead-lettered, from whichever lane the ledger put them on.
        for lane in Lane::all(broker.lanes()) {
            while let Some(delivery) = broker.take(lane, Duration::ZERO).await.unwrap() {
                delivery.dead_letter("test").await.unwrap();
            }
        }
        assert_eq!(broker.dead_letters().len(), 2);
        let erased = erase_job(&backends, "gone", Duration::from_secs(60))
            .await
            .unwrap()
            .expect("the job existed");
        assert_eq!(erased.dead_letters, 1);
        let left = broker.dead_letters();
        assert_eq!(left.len(), 1);
        assert!(String::from_utf8_lossy(&left[0]).contains("kept"));
    }

    #[test]
    fn a_records_content_is_read_from_its_metadata() {
        let sha = "ab".repeat(32);
        let url = format!(r#"{{"content":{{"sha256":"{sha}","size":12}}}}"#);
        assert_eq!(record_content(&entry(url.as_bytes())), Some(sha.clone()));
        let object = format!(r#"{{"sha256":"{sha}","size":12}}"#);
        assert_eq!(record_content(&entry(object.as_bytes())), Some(sha));
        let failure = br#"{"failure":{"code":"http_status","message":"no"}}"#;
        assert_eq!(record_content(&entry(failure)), None);
        assert_eq!(record_content(b"short"), None);
    }
}
