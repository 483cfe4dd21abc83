//! The object store trait: where zips are written and `object` images are
//! read. Implementations: a local directory ([`file::FileStore`]) here, S3 in
//! the backends crate. Both report a missing object as [`StoreError::NotFound`].

pub mod file;

use async_trait::async_trait;
use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("object {0} not found")]
    NotFound(String),
    /// The key is not acceptable (escapes the store, empty, ...).
    #[error("invalid object key {0:?}")]
    InvalidKey(String),
    /// The store cannot be reached or failed; worth retrying.
    #[error("object store unavailable: {0}")]
    Unavailable(String),
    /// The store refused the request (permissions, bad bucket); not worth retrying.
    #[error("object store refused: {0}")]
    Refused(String),
}

impl crate::retry::Transient for StoreError {
    fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

impl From<std::io::Error> for StoreError {
    fn from(err: std::io::Error) -> Self {
        match err.kind() {
            std::io::ErrorKind::NotFound => Self::NotFound(err.to_string()),
            std::io::ErrorKind::PermissionDenied => Self::Refused(err.to_string()),
            _ => Self::Unavailable(err.to_string()),
        }
    }
}

/// What the store says about an object without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    /// Changes whenever the object's content may have changed (S3's ETag; a
    /// directory store's size, modification time and inode).
    pub etag: Option<String>,
}

/// An object opened for reading.
pub struct ObjectReader {
    /// Length in bytes, when the store knows it up front.
    pub size: Option<u64>,
    pub body: Pin<Box<dyn AsyncRead + Send>>,
}

impl std::fmt::Debug for ObjectReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectReader")
            .field("size", &self.size)
            .finish()
    }
}

#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Short name for logs (`file`, `s3`).
    fn kind(&self) -> &'static str;
    /// The store's own bucket (for a directory store, the directory).
    fn bucket(&self) -> &str;
    /// The full key of one of zipfleet's own objects: `PREFIX/relative`.
    fn own_key(&self, relative: &str) -> String;
    /// Open an object (`bucket` defaults to the store's own).
    async fn get(&self, bucket: Option<&str>, key: &str) -> Result<ObjectReader, StoreError>;
    /// The object as a local file, when the store is a local directory (saves a copy).
    fn local_path(&self, _bucket: Option<&str>, _key: &str) -> Result<Option<PathBuf>, StoreError> {
        Ok(None)
    }
    /// An object's size and ETag (`bucket` defaults to the store's own).
    async fn head(&self, bucket: Option<&str>, key: &str) -> Result<ObjectMeta, StoreError>;
    /// Upload a local file under `key`, streaming it; returns its size.
    async fn put_file(&self, key: &str, path: &Path, content_type: &str)
        -> Result<u64, StoreError>;
    /// Store a small object (claim-checked specs).
    async fn put_bytes(
        &self,
        key: &str,
        bytes: Bytes,
        content_type: &str,
    ) -> Result<(), StoreError>;
    /// Delete `key` of the store's own bucket for good: every version where
    /// the bucket keeps versions (delete markers included), and every
    /// unfinished multipart upload of it. How many objects (versions) went;
    /// 0 if there was nothing.
    async fn erase(&self, key: &str) -> Result<u64, StoreError>;
    /// The keys under `prefix` in the store's own bucket (current objects).
    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
    /// [`ObjectStore::erase`] for every key under `prefix` (of the store's own bucket).
    async fn erase_prefix(&self, prefix: &str) -> Result<u64, StoreError>;
    /// A time-limited URL to download `key` of the store's own bucket.
    async fn download_url(&self, key: &str, expires: Duration) -> Result<String, StoreError>;
    /// Cheap reachability check for `/readyz`.
    async fn check(&self) -> Result<(), StoreError>;
}

/// Read a small object of the store's own bucket whole, refusing one larger
/// than `max_bytes` (claim-checked specs, object images probed in memory).
pub async fn read_small(
    store: &dyn ObjectStore,
    key: &str,
    max_bytes: u64,
) -> Result<Vec<u8>, StoreError> {
    let reader = store.get(None, key).await?;
    let mut bytes = Vec::new();
    reader
        .body
        .take(max_bytes + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(StoreError::from)?;
    if bytes.len() as u64 > max_bytes {
        return Err(StoreError::Refused(format!(
            "{key} is larger than {max_bytes} bytes"
        )));
    }
    Ok(bytes)
}
