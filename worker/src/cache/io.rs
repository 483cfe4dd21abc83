//! Cache entries to and from the object store: reads that turn every
//! problem (missing, unreadable, damaged, stale, slow) into a miss, and
//! writes that are best effort and guarded against erasure — asked of the
//! job's tombstone before and after, undone if the job was erased meanwhile.
//! The cache never fails a job.

use super::entry::{self, HEADER, MAX_META};
use super::{Cache, ContentId};
use crate::erasure::JobContext;
use crate::fetch::Fetched;
use sha2::{Digest, Sha256};
use std::future::Future;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::debug;
use zipfleet_shared::store::{read_small, StoreError};

/// A cache read or write that takes longer is given up (a miss, a skipped
/// write): a slow store must not hold an image up for longer than the work.
pub(super) const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// An entry read whole: metadata, body, age.
pub(super) struct Read {
    pub(super) meta: Vec<u8>,
    pub(super) body: Vec<u8>,
    pub(super) age: Duration,
}

impl Cache {
    /// The store key of the entry `key` (relative to `cache/`, as
    /// `zipfleet_shared::cache_keys` lays them out).
    fn entry_key(&self, key: &str) -> String {
        self.store.own_key(&format!("cache/{key}"))
    }

    /// Read the small entry `key` (relative to `cache/`) whole; `None` for
    /// missing, unreadable, damaged or older than `ttl` (and than the cache TTL).
    pub(super) async fn read_entry(&self, key: &str, max_body: u64, ttl: Duration) -> Option<Read> {
        let key = self.entry_key(key);
        let max = HEADER as u64 + u64::from(MAX_META) + max_body;
        let read = tokio::time::timeout(IO_TIMEOUT, read_small(self.store.as_ref(), &key, max))
            .await
            .unwrap_or_else(|_| Err(StoreError::Unavailable("timed out".into())));
        let bytes = match read {
            Ok(bytes) => bytes,
            Err(err) => {
                debug!(key, %err, "cache miss");
                return None;
            }
        };
        let Some((created, meta, body)) = entry::decode(&bytes) else {
            debug!(key, "damaged cache entry ignored");
            return None;
        };
        let age = entry::age_of(created, self.settings.cache_ttl.min(ttl))?;
        Some(Read {
            meta: meta.to_vec(),
            body: body.to_vec(),
            age,
        })
    }

    /// A kept download (`key`), streamed to a temporary file and verified
    /// against `content`.
    pub(super) async fn read_file(&self, key: &str, content: &ContentId) -> Option<Fetched> {
        let key = self.entry_key(key);
        // Sized like a download: the same timeout as one.
        let read = tokio::time::timeout(IO_TIMEOUT * 3, self.stream_to_spool(&key, content));
        let fetched = read.await.ok().flatten();
        if fetched.is_none() {
            debug!(key, "source entry missing, stale or damaged");
        }
        fetched
    }

    async fn stream_to_spool(&self, key: &str, content: &ContentId) -> Option<Fetched> {
        let mut body = self.store.get(None, key).await.ok()?.body;
        let mut header = [0u8; HEADER];
        body.read_exact(&mut header).await.ok()?;
        let parsed = entry::parse_header(&header)?;
        if parsed.body_len != content.size || parsed.body_sha != content.sha256 {
            return None;
        }
        entry::age_of(parsed.created, self.settings.cache_ttl)?;
        let mut meta = vec![0u8; parsed.meta_len as usize];
        body.read_exact(&mut meta).await.ok()?;
        if Sha256::digest(&meta).as_slice() != parsed.meta_sha {
            return None;
        }
        let (file, path) = tempfile::NamedTempFile::new_in(&self.spool_dir)
            .ok()?
            .into_parts();
        let mut file =
            tokio::io::BufWriter::with_capacity(256 * 1024, tokio::fs::File::from_std(file));
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 64 * 1024];
        let mut size = 0u64;
        loop {
            let n = body.read(&mut buffer).await.ok()?;
            if n == 0 {
                break;
            }
            size += n as u64;
            if size > content.size {
                return None;
            }
            hasher.update(&buffer[..n]);
            file.write_all(&buffer[..n]).await.ok()?;
        }
        file.flush().await.ok()?;
        if size != content.size || hasher.finalize().as_slice() != content.sha256 {
            return None;
        }
        Some(Fetched::Spooled { file: path, size })
    }

    /// Write a small entry for `job`; a refusal is logged and forgotten.
    pub(super) async fn write_entry(
        &self,
        job: &JobContext<'_>,
        key: &str,
        meta: &[u8],
        body: &[u8],
    ) -> bool {
        let key = self.entry_key(key);
        let bytes = entry::encode(meta, body);
        let put = self
            .store
            .put_bytes(&key, bytes.into(), "application/octet-stream");
        self.guarded(job, &key, IO_TIMEOUT, async { put.await.map(|()| 0) })
            .await
    }

    /// Write a file's bytes as an entry for `job` (header and body in a
    /// temporary file, then uploaded).
    pub(super) async fn write_file(
        &self,
        job: &JobContext<'_>,
        key: &str,
        path: &Path,
        content: &ContentId,
    ) -> bool {
        let key = self.entry_key(key);
        let temp_path = match self.spool_entry(path, content).await {
            Ok(temp_path) => temp_path,
            Err(err) => {
                debug!(key, %err, "cache write skipped");
                return false;
            }
        };
        let put = self
            .store
            .put_file(&key, &temp_path, "application/octet-stream");
        self.guarded(job, &key, IO_TIMEOUT * 3, put).await
    }

    async fn spool_entry(
        &self,
        path: &Path,
        content: &ContentId,
    ) -> std::io::Result<tempfile::TempPath> {
        let (file, temp_path) = tempfile::NamedTempFile::new_in(&self.spool_dir)?.into_parts();
        let mut file = tokio::fs::File::from_std(file);
        file.write_all(&entry::header_for(b"{}", content.size, &content.sha256))
            .await?;
        file.write_all(b"{}").await?;
        let mut source = tokio::fs::File::open(path).await?;
        tokio::io::copy(&mut source, &mut file).await?;
        file.flush().await?;
        Ok(temp_path)
    }

    /// Run the write `put` of `key` for `job` unless the job is erased, and
    /// undo it if the job was erased while it ran (contract: no
    /// resurrection). Whether the entry is in the store now.
    async fn guarded<T>(
        &self,
        job: &JobContext<'_>,
        key: &str,
        limit: Duration,
        put: impl Future<Output = Result<T, StoreError>>,
    ) -> bool {
        if job.erased().await {
            debug!(key, "cache write skipped: the job was erased");
            return false;
        }
        match tokio::time::timeout(limit, put).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => {
                debug!(key, %err, "cache write skipped");
                return false;
            }
            Err(_) => {
                debug!(key, "cache write timed out");
                return false;
            }
        }
        if job.erased().await {
            debug!(key, "the job was erased during a cache write; removing it");
            if let Err(err) = self.store.erase(key).await {
                tracing::warn!(%err, "a cache entry written for an erased job could not be removed");
            }
            return false;
        }
        true
    }
}
