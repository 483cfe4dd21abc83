//! A local directory as the object store (`file:///DIR`): the embedded
//! default. Keys are paths relative to the directory and can never escape it;
//! a `bucket` names a subdirectory.

use super::{ObjectMeta, ObjectReader, ObjectStore, StoreError};
use async_trait::async_trait;
use bytes::Bytes;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
    root_display: String,
}

impl FileStore {
    /// A store rooted at `root` (created if missing).
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        let root = root.canonicalize()?;
        let root_display = root.display().to_string();
        Ok(Self { root, root_display })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of `key` (in `bucket`), refusing anything that could leave the root.
    fn resolve(&self, bucket: Option<&str>, key: &str) -> Result<PathBuf, StoreError> {
        let mut path = self.root.clone();
        for part in bucket.into_iter().chain(std::iter::once(key)) {
            let relative = Path::new(part);
            if part.is_empty() || part.contains('\0') {
                return Err(StoreError::InvalidKey(key.to_string()));
            }
            for component in relative.components() {
                match component {
                    Component::Normal(name) => path.push(name),
                    Component::CurDir => {}
                    _ => return Err(StoreError::InvalidKey(key.to_string())),
                }
            }
        }
        Ok(path)
    }

    /// Like [`Self::resolve`], and also refuses symlinks that lead outside the root.
    fn resolve_existing(&self, bucket: Option<&str>, key: &str) -> Result<PathBuf, StoreError> {
        let path = self.resolve(bucket, key)?;
        let real = path
            .canonicalize()
            .map_err(|_| StoreError::NotFound(key.to_string()))?;
        if !real.starts_with(&self.root) {
            return Err(StoreError::InvalidKey(key.to_string()));
        }
        if !real.is_file() {
            return Err(StoreError::NotFound(key.to_string()));
        }
        Ok(real)
    }
}

#[async_trait]
impl ObjectStore for FileStore {
    fn kind(&self) -> &'static str {
        "file"
    }

    fn bucket(&self) -> &str {
        &self.root_display
    }

    fn own_key(&self, relative: &str) -> String {
        relative.to_string()
    }

    async fn get(&self, bucket: Option<&str>, key: &str) -> Result<ObjectReader, StoreError> {
        let path = self.resolve_existing(bucket, key)?;
        let file = tokio::fs::File::open(&path).await?;
        let size = file.metadata().await?.len();
        Ok(ObjectReader {
            size: Some(size),
            body: Box::pin(file),
        })
    }

    async fn head(&self, bucket: Option<&str>, key: &str) -> Result<ObjectMeta, StoreError> {
        let path = self.resolve_existing(bucket, key)?;
        let meta = tokio::fs::metadata(&path).await?;
        // A directory has no ETags: size, modification time and inode change
        // whenever the file is rewritten or replaced.
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        #[cfg(not(unix))]
        let inode = 0u64;
        Ok(ObjectMeta {
            size: meta.len(),
            etag: Some(format!("{}-{modified}-{inode}", meta.len())),
        })
    }

    fn local_path(&self, bucket: Option<&str>, key: &str) -> Result<Option<PathBuf>, StoreError> {
        self.resolve_existing(bucket, key).map(Some)
    }

    async fn put_file(
        &self,
        key: &str,
        path: &Path,
        _content_type: &str,
    ) -> Result<u64, StoreError> {
        let dest = self.resolve(None, key)?;
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        // Copy to a temporary name, then rename: readers never see half a zip.
        let partial = dest.with_extension("partial");
        let size = tokio::fs::copy(path, &partial).await?;
        tokio::fs::rename(&partial, &dest).await?;
        Ok(size)
    }

    async fn erase(&self, key: &str) -> Result<u64, StoreError> {
        let path = self.resolve(None, key)?;
        let mut removed = 0;
        for leftover in [path.clone(), path.with_extension("partial")] {
            match tokio::fs::remove_file(&leftover).await {
                Ok(()) => removed += 1,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(err.into()),
            }
        }
        // A directory store keeps one version, and a partial copy counts as
        // an unfinished upload: only the object itself is counted.
        Ok(removed.min(1))
    }

    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let (dir, name_prefix) = match prefix.rsplit_once('/') {
            Some((dir, rest)) => (dir.to_string(), rest.to_string()),
            None => (String::new(), prefix.to_string()),
        };
        let path = if dir.is_empty() {
            self.root.clone()
        } else {
            self.resolve(None, &dir)?
        };
        let mut keys = Vec::new();
        let mut entries = match tokio::fs::read_dir(&path).await {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(keys),
            Err(err) => return Err(err.into()),
        };
        while let Some(entry) = entries.next_entry().await? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&name_prefix) && entry.file_type().await?.is_file() {
                keys.push(if dir.is_empty() {
                    name
                } else {
                    format!("{dir}/{name}")
                });
            }
        }
        keys.sort();
        Ok(keys)
    }

    async fn erase_prefix(&self, prefix: &str) -> Result<u64, StoreError> {
        let (dir, name_prefix) = match prefix.rsplit_once('/') {
            Some((dir, rest)) => (self.resolve(None, dir)?, rest.to_string()),
            None => (self.root.clone(), prefix.to_string()),
        };
        let mut removed = 0;
        let mut entries = match tokio::fs::read_dir(&dir).await {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(err) => return Err(err.into()),
        };
        while let Some(entry) = entries.next_entry().await? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with(&name_prefix) {
                continue;
            }
            if entry.file_type().await?.is_dir() {
                tokio::fs::remove_dir_all(entry.path()).await?;
            } else {
                tokio::fs::remove_file(entry.path()).await?;
            }
            removed += 1;
        }
        Ok(removed)
    }

    async fn put_bytes(
        &self,
        key: &str,
        bytes: Bytes,
        _content_type: &str,
    ) -> Result<(), StoreError> {
        let dest = self.resolve(None, key)?;
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        let partial = dest.with_extension("partial");
        tokio::fs::write(&partial, &bytes).await?;
        tokio::fs::rename(&partial, &dest).await?;
        Ok(())
    }

    async fn download_url(&self, key: &str, _expires: Duration) -> Result<String, StoreError> {
        let path = self.resolve(None, key)?;
        url::Url::from_file_path(&path)
            .map(String::from)
            .map_err(|()| StoreError::InvalidKey(key.to_string()))
    }

    async fn check(&self) -> Result<(), StoreError> {
        tokio::fs::metadata(&self.root).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn keys_cannot_escape_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), b"s").unwrap();
        let store = FileStore::new(dir.path().join("store")).unwrap();
        for key in ["../secret", "/etc/passwd", "a/../../secret", ""] {
            assert!(
                matches!(store.get(None, key).await, Err(StoreError::InvalidKey(_))),
                "{key}"
            );
        }
        assert!(matches!(
            store.get(Some(".."), "secret").await,
            Err(StoreError::InvalidKey(_))
        ));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn symlinks_out_of_the_directory_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), b"s").unwrap();
        let store = FileStore::new(dir.path().join("store")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), store.root().join("link")).unwrap();
        assert!(matches!(
            store.get(None, "link").await,
            Err(StoreError::InvalidKey(_))
        ));
    }

    #[tokio::test]
    async fn put_get_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path()).unwrap();
        let src = dir.path().join("src.bin");
        std::fs::write(&src, b"hello").unwrap();
        assert_eq!(
            store
                .put_file("zips/j.zip", &src, "application/zip")
                .await
                .unwrap(),
            5
        );
        let mut reader = store.get(None, "zips/j.zip").await.unwrap();
        assert_eq!(reader.size, Some(5));
        let mut body = String::new();
        reader.body.read_to_string(&mut body).await.unwrap();
        assert_eq!(body, "hello");
        assert!(matches!(
            store.get(None, "zips/none.zip").await,
            Err(StoreError::NotFound(_))
        ));
        let url = store
            .download_url("zips/j.zip", Duration::from_secs(1))
            .await
            .unwrap();
        assert!(
            url.starts_with("file:///") && url.ends_with("/zips/j.zip"),
            "{url}"
        );
    }
}
