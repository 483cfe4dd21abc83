//! S3-compatible object storage (`ZIPFLEET_STORE=s3://BUCKET/PREFIX`): AWS
//! S3, SeaweedFS, MinIO, Ceph RGW. Endpoint, region and credentials come from
//! the AWS SDK's usual sources (`AWS_ENDPOINT_URL_S3`, `AWS_REGION`, ...);
//! path-style addressing is used whenever a custom endpoint is set.
//!
//! Zips are uploaded from their spool file in 8 MiB parts (one part in memory
//! at a time); a failed multipart upload is aborted so no orphan parts remain.

use async_trait::async_trait;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use bytes::Bytes;
use futures::StreamExt;
use std::path::Path;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use zipfleet_shared::store::{ObjectMeta, ObjectReader, ObjectStore, StoreError};

/// Part size for multipart uploads (S3's minimum is 5 MiB).
const PART_BYTES: usize = 8 * 1024 * 1024;

pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
}

impl S3Store {
    /// `url` is `s3://BUCKET/PREFIX` (prefix optional).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| StoreError::Refused(format!("not an s3:// URL: {url}")))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(StoreError::Refused("the s3:// URL names no bucket".into()));
        }
        let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let custom_endpoint = std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL").is_some();
        // Every request is time-limited: a store that accepts connections but
        // never answers must count as unreachable (and be retried with
        // backoff), not hang a job forever.
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(60))
            .operation_attempt_timeout(Duration::from_secs(300))
            .build();
        let config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(custom_endpoint)
            .timeout_config(timeouts)
            .build();
        Ok(Self {
            client: Client::from_conf(config),
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }

    async fn upload_parts(
        &self,
        key: &str,
        upload_id: &str,
        path: &Path,
    ) -> Result<Vec<CompletedPart>, StoreError> {
        let mut file = tokio::fs::File::open(path).await?;
        let mut parts = Vec::new();
        for number in 1.. {
            let mut buffer = Vec::with_capacity(PART_BYTES);
            (&mut file)
                .take(PART_BYTES as u64)
                .read_to_end(&mut buffer)
                .await?;
            if buffer.is_empty() && number > 1 {
                break;
            }
            let last = buffer.len() < PART_BYTES;
            let uploaded = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(buffer))
                .send()
                .await
                .map_err(store_error)?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(uploaded.e_tag)
                    .build(),
            );
            if last {
                break;
            }
        }
        Ok(parts)
    }
}

/// Deletions in flight at once while erasing.
const ERASE_CONCURRENCY: usize = 8;

impl S3Store {
    /// Every version (and delete marker) of `key` — or of every key under
    /// it, unless `exact` — deleted one by one (`DeleteObjects` needs a
    /// Content-MD5 some S3 servers reject from this SDK), then every
    /// unfinished multipart upload aborted. Counts the keys that had a version.
    async fn erase_matching(&self, key: &str, exact: bool) -> Result<u64, StoreError> {
        let mut doomed: Vec<(String, Option<String>)> = Vec::new();
        let mut erased_keys = std::collections::BTreeSet::new();
        let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
        loop {
            let page = self
                .client
                .list_object_versions()
                .bucket(&self.bucket)
                .prefix(key)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(store_error)?;
            fn wanted<'a>(found: Option<&'a str>, key: &str, exact: bool) -> Option<&'a str> {
                found.filter(|found| !exact || *found == key)
            }
            for version in page.versions() {
                if let Some(found) = wanted(version.key(), key, exact) {
                    erased_keys.insert(found.to_string());
                    doomed.push((found.to_string(), version.version_id().map(str::to_string)));
                }
            }
            for marker in page.delete_markers() {
                if let Some(found) = wanted(marker.key(), key, exact) {
                    doomed.push((found.to_string(), marker.version_id().map(str::to_string)));
                }
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            version_marker = page.next_version_id_marker().map(str::to_string);
            if key_marker.is_none() {
                break;
            }
        }
        let deletions = futures::stream::iter(doomed)
            .map(|(found, version)| async move {
                let request = self
                    .client
                    .delete_object()
                    .bucket(&self.bucket)
                    .key(&found)
                    .set_version_id(version.filter(|v| v != "null"));
                request.send().await.map(|_| ()).map_err(store_error)
            })
            .buffer_unordered(ERASE_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        deletions.into_iter().collect::<Result<Vec<()>, _>>()?;
        self.abort_uploads(key, exact).await?;
        Ok(erased_keys.len() as u64)
    }

    /// Abort the unfinished multipart uploads of `key` (or under it).
    async fn abort_uploads(&self, key: &str, exact: bool) -> Result<(), StoreError> {
        let listed = self
            .client
            .list_multipart_uploads()
            .bucket(&self.bucket)
            .prefix(key)
            .send()
            .await
            .map_err(store_error)?;
        for upload in listed.uploads() {
            let (Some(found), Some(upload_id)) = (upload.key(), upload.upload_id()) else {
                continue;
            };
            if exact && found != key {
                continue;
            }
            self.client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(found)
                .upload_id(upload_id)
                .send()
                .await
                .map_err(store_error)?;
        }
        Ok(())
    }
}

/// Sort the SDK's errors into not-found, refused (permanent) and unavailable (transient).
fn store_error<E: ProvideErrorMetadata + std::fmt::Debug, R>(err: SdkError<E, R>) -> StoreError {
    match &err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("Unknown").to_string();
            let message = service.err().message().unwrap_or("").to_string();
            match code.as_str() {
                "NoSuchKey" | "NotFound" | "NoSuchUpload" => {
                    StoreError::NotFound(format!("{code}: {message}"))
                }
                "NoSuchBucket"
                | "AccessDenied"
                | "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "InvalidBucketName"
                | "EntityTooLarge"
                | "InvalidRequest"
                | "InvalidArgument" => StoreError::Refused(format!("{code}: {message}")),
                _ => StoreError::Unavailable(format!("{code}: {message}")),
            }
        }
        _ => StoreError::Unavailable(format!("{err}")),
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    fn kind(&self) -> &'static str {
        "s3"
    }

    fn bucket(&self) -> &str {
        &self.bucket
    }

    fn own_key(&self, relative: &str) -> String {
        if self.prefix.is_empty() {
            relative.to_string()
        } else {
            format!("{}/{relative}", self.prefix)
        }
    }

    async fn get(&self, bucket: Option<&str>, key: &str) -> Result<ObjectReader, StoreError> {
        let response = self
            .client
            .get_object()
            .bucket(bucket.unwrap_or(&self.bucket))
            .key(key)
            .send()
            .await
            .map_err(|err| {
                // S3 answers a missing key with NoSuchKey; some gateways with a bare 404.
                if matches!(&err, SdkError::ServiceError(s) if s.raw().status().as_u16() == 404) {
                    StoreError::NotFound(key.to_string())
                } else {
                    store_error(err)
                }
            })?;
        let size = response
            .content_length()
            .and_then(|len| u64::try_from(len).ok());
        Ok(ObjectReader {
            size,
            body: Box::pin(response.body.into_async_read()),
        })
    }

    async fn head(&self, bucket: Option<&str>, key: &str) -> Result<ObjectMeta, StoreError> {
        let response = self
            .client
            .head_object()
            .bucket(bucket.unwrap_or(&self.bucket))
            .key(key)
            .send()
            .await
            .map_err(|err| {
                // HEAD has no body, so a missing key is only a bare 404.
                if matches!(&err, SdkError::ServiceError(s) if s.raw().status().as_u16() == 404) {
                    StoreError::NotFound(key.to_string())
                } else {
                    store_error(err)
                }
            })?;
        let size = response
            .content_length()
            .and_then(|len| u64::try_from(len).ok())
            .unwrap_or(0);
        Ok(ObjectMeta {
            size,
            etag: response.e_tag().map(str::to_string),
        })
    }

    async fn put_file(
        &self,
        key: &str,
        path: &Path,
        content_type: &str,
    ) -> Result<u64, StoreError> {
        let size = tokio::fs::metadata(path).await?.len();
        if size <= PART_BYTES as u64 {
            let body = ByteStream::from_path(path)
                .await
                .map_err(|err| StoreError::Unavailable(err.to_string()))?;
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .content_type(content_type)
                .body(body)
                .send()
                .await
                .map_err(store_error)?;
            return Ok(size);
        }
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .map_err(store_error)?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| StoreError::Unavailable("no upload id".into()))?
            .to_string();
        let completed = match self.upload_parts(key, &upload_id, path).await {
            Ok(parts) => self
                .client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map_err(store_error),
            Err(err) => Err(err),
        };
        if let Err(err) = completed {
            let aborted = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .send()
                .await;
            if let Err(abort_err) = aborted {
                tracing::warn!(%abort_err, key, "could not abort a failed multipart upload");
            }
            return Err(err);
        }
        Ok(size)
    }

    async fn put_bytes(
        &self,
        key: &str,
        bytes: Bytes,
        content_type: &str,
    ) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn erase(&self, key: &str) -> Result<u64, StoreError> {
        self.erase_matching(key, true).await
    }

    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        let mut token = None::<String>;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(store_error)?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_string()),
                _ => break,
            }
        }
        Ok(keys)
    }

    async fn erase_prefix(&self, prefix: &str) -> Result<u64, StoreError> {
        self.erase_matching(prefix, false).await
    }

    async fn download_url(&self, key: &str, expires: Duration) -> Result<String, StoreError> {
        let config = PresigningConfig::expires_in(expires)
            .map_err(|err| StoreError::Refused(err.to_string()))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(store_error)?;
        Ok(request.uri().to_string())
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}
