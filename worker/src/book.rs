//! A job's bookkeeping while its images run: zip entry names (decided once,
//! up front, so colliding and hostile names are settled before any image
//! finishes), manifest lines, counts, and the facts the dataset report needs
//! of each image in the zip — all by the image's position in the spec.

use crate::dataset_report::{dataset_report, RenderedFacts, ReportImage};
use crate::outcome::Skip;
use crate::zipper::{CacheUse, Manifest, ManifestImage, ManifestStatus};
use zipfleet_imaging::Rendered;
use zipfleet_shared::config::ReportSettings;
use zipfleet_shared::names::EntryNamer;
use zipfleet_shared::report::DatasetReport;
use zipfleet_shared::spec::Job;
use zipfleet_shared::status::{Progress, SkippedImage};

/// One job's bookkeeping (see the module doc).
pub(crate) struct JobBook {
    pub(crate) entries: Vec<String>,
    lines: Vec<ManifestImage>,
    facts: Vec<Option<RenderedFacts>>,
    pub(crate) progress: Progress,
}

impl JobBook {
    pub(crate) fn new(spec: &Job) -> Self {
        let mut namer = EntryNamer::new();
        let extension = spec.output.format.extension();
        Self {
            entries: spec
                .images
                .iter()
                .map(|image| namer.entry_name(&image.label, &image.id, extension))
                .collect(),
            lines: spec.images.iter().map(ManifestImage::pending).collect(),
            facts: vec![None; spec.images.len()],
            progress: Progress {
                total: spec.images.len() as u32,
                done: 0,
                failed: 0,
            },
        }
    }

    pub(crate) fn done(&mut self, index: usize, rendered: &Rendered, cached: Option<CacheUse>) {
        let line = &mut self.lines[index];
        line.entry = Some(self.entries[index].clone());
        line.width = Some(rendered.source_width);
        line.height = Some(rendered.source_height);
        line.status = ManifestStatus::Ok;
        line.cache = cached;
        self.facts[index] = Some(RenderedFacts {
            source_width: rendered.source_width,
            source_height: rendered.source_height,
            signature: rendered.signature,
        });
        self.progress.done += 1;
    }

    pub(crate) fn skipped(&mut self, index: usize, skip: Skip) {
        let line = &mut self.lines[index];
        line.code = Some(skip.code);
        line.message = Some(skip.message);
        self.progress.failed += 1;
    }

    /// The manifest, with the skipped list and the dataset report it holds
    /// (the status document's result carries the same two).
    pub(crate) fn into_manifest(
        self,
        job_id: &str,
        spec: &Job,
        settings: &ReportSettings,
    ) -> (Manifest, Vec<SkippedImage>, DatasetReport) {
        let skipped: Vec<SkippedImage> = self
            .lines
            .iter()
            .filter_map(|line| {
                Some(SkippedImage {
                    id: line.id.clone(),
                    code: line.code?,
                    message: line.message.clone()?,
                })
            })
            .collect();
        let report_images: Vec<ReportImage<'_>> = spec
            .images
            .iter()
            .zip(&self.facts)
            .map(|(image, facts)| ReportImage {
                id: &image.id,
                label: &image.label,
                rendered: *facts,
            })
            .collect();
        let output = spec.output;
        let report = dataset_report(&report_images, output.width, output.height, settings);
        let manifest = Manifest {
            job_id: job_id.to_string(),
            project_id: spec.project_id.clone(),
            tenant: spec.tenant.clone(),
            output,
            images: self.lines,
            skipped: skipped.clone(),
            report: report.clone(),
        };
        (manifest, skipped, report)
    }
}
