//! The zip of one job, spooled to a temporary file (never held in memory),
//! and its `manifest.json`.
//!
//! Image entries are stored, not deflated: JPEG and PNG are compressed
//! already, so deflating would cost CPU for nothing. The manifest is deflated
//! and written last.

use serde::Serialize;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use tempfile::TempPath;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};
use zipfleet_shared::report::DatasetReport;
use zipfleet_shared::spec::{Image, OutputSpec, Source, Tenant};
use zipfleet_shared::status::SkippedImage;
use zipfleet_shared::ImageErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum ZipError {
    #[error("writing the zip failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("writing the zip failed: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("the zip would be larger than the {limit_mib} MiB limit")]
    TooLarge { limit_mib: u64 },
}

/// A zip being written to a temporary file.
pub struct ZipSpool {
    writer: ZipWriter<File>,
    path: TempPath,
    written: u64,
    max_bytes: u64,
}

impl ZipSpool {
    pub fn create(dir: &Path, max_bytes: u64) -> Result<Self, ZipError> {
        let (file, path) = tempfile::Builder::new()
            .prefix("zipfleet-")
            .suffix(".zip")
            .tempfile_in(dir)?
            .into_parts();
        Ok(Self {
            writer: ZipWriter::new(file),
            path,
            written: 0,
            max_bytes,
        })
    }

    /// Add one image entry.
    pub fn add(&mut self, name: &str, bytes: &[u8]) -> Result<(), ZipError> {
        // Entry overhead: local header, central directory record, name twice.
        self.written += bytes.len() as u64 + 100 + 2 * name.len() as u64;
        if self.written > self.max_bytes {
            return Err(ZipError::TooLarge {
                limit_mib: self.max_bytes >> 20,
            });
        }
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Stored)
            .large_file(false);
        self.writer.start_file(name, options)?;
        self.writer.write_all(bytes)?;
        Ok(())
    }

    /// Write the manifest, close the archive; the file and its size.
    pub fn finish(mut self, manifest: &Manifest) -> Result<(TempPath, u64), ZipError> {
        let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
        self.writer.start_file("manifest.json", options)?;
        serde_json::to_writer_pretty(&mut self.writer, manifest).map_err(std::io::Error::from)?;
        let file = self.writer.finish()?;
        file.sync_all()?;
        let size = file.metadata()?.len();
        if size > self.max_bytes {
            return Err(ZipError::TooLarge {
                limit_mib: self.max_bytes >> 20,
            });
        }
        Ok((self.path, size))
    }
}

/// `manifest.json`: every image of the job with what became of it.
#[derive(Debug, Serialize)]
pub struct Manifest {
    pub job_id: String,
    pub project_id: Option<String>,
    /// The school or class the job is for (`"default"` when the spec named none).
    pub tenant: Tenant,
    pub output: OutputSpec,
    pub images: Vec<ManifestImage>,
    pub skipped: Vec<SkippedImage>,
    /// The dataset report, the same object as the status `result.report`.
    pub report: DatasetReport,
}

/// One image's line in the manifest. `id` and `label` are the originals;
/// `entry` is the sanitized name inside the zip.
#[derive(Debug, Clone, Serialize)]
pub struct ManifestImage {
    pub id: String,
    pub label: String,
    pub entry: Option<String>,
    pub source: ManifestSource,
    /// The source image's size, upright.
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub status: ManifestStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<ImageErrorCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What the cache gave instead of new work: `render` (the image as
    /// rendered before) or `source` (the download, rendered again); absent
    /// when nothing was reused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheUse>,
}

/// Whether an image made it into the zip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ManifestStatus {
    Ok,
    Skipped,
}

/// What the cache gave an image instead of new work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheUse {
    /// The image as rendered before.
    Render,
    /// The download, rendered again.
    Source,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ManifestSource {
    Url(String),
    Object { key: String, bucket: Option<String> },
}

impl ManifestImage {
    pub fn pending(image: &Image) -> Self {
        let source = match &image.source {
            Source::Url(url) => ManifestSource::Url(url.clone()),
            Source::Object(object) => ManifestSource::Object {
                key: object.key.clone(),
                bucket: object.bucket.clone(),
            },
        };
        Self {
            id: image.id.clone(),
            label: image.label.clone(),
            entry: None,
            source,
            width: None,
            height: None,
            status: ManifestStatus::Skipped,
            code: None,
            message: None,
            cache: None,
        }
    }
}
