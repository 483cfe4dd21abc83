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
pub(crate) enum ZipError {
    #[error("writing the zip failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("writing the zip failed: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("the zip would be larger than the {limit_mib} MiB limit")]
    TooLarge { limit_mib: u64 },
}

/// A zip being written to a temporary file.
pub(crate) struct ZipSpool {
    writer: ZipWriter<File>,
    path: TempPath,
    written: u64,
    max_bytes: u64,
}

impl ZipSpool {
    pub(crate) fn create(dir: &Path, max_bytes: u64) -> Result<Self, ZipError> {
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
    pub(crate) fn add(&mut self, name: &str, bytes: &[u8]) -> Result<(), ZipError> {
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
    pub(crate) fn finish(mut self, manifest: &Manifest) -> Result<(TempPath, u64), ZipError> {
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
pub(crate) struct Manifest {
    pub(crate) job_id: String,
    pub(crate) project_id: Option<String>,
    /// The school or class the job is for (`"default"` when the spec named none).
    pub(crate) tenant: Tenant,
    pub(crate) output: OutputSpec,
    pub(crate) images: Vec<ManifestImage>,
    pub(crate) skipped: Vec<SkippedImage>,
    /// The dataset report, the same object as the status `result.report`.
    pub(crate) report: DatasetReport,
}

/// One image's line in the manifest. `id` and `label` are the originals;
/// `entry` is the sanitized name inside the zip.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ManifestImage {
    pub(crate) id: String,
    pub(crate) label: String,
    pub(crate) entry: Option<String>,
    pub(crate) source: ManifestSource,
    /// The source image's size, upright.
    pub(crate) width: Option<u32>,
    pub(crate) height: Option<u32>,
    pub(crate) status: ManifestStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) code: Option<ImageErrorCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) message: Option<String>,
    /// What the cache gave instead of new work: `render` (the image as
    /// rendered before) or `source` (the download, rendered again); absent
    /// when nothing was reused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cache: Option<CacheUse>,
}

/// Whether an image made it into the zip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ManifestStatus {
    Ok,
    Skipped,
}

/// What the cache gave an image instead of new work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CacheUse {
    /// The image as rendered before.
    Render,
    /// The download, rendered again.
    Source,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ManifestSource {
    Url(String),
    Object { key: String, bucket: Option<String> },
}

impl ManifestImage {
    pub(crate) fn pending(image: &Image) -> Self {
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
