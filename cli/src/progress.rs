//! Showing a job's progress and outcome to a person: a progress bar on a
//! terminal, plain lines otherwise, and a summary at the end.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::process::ExitCode;
use zipfleet_shared::status::{JobState, JobStatus};

/// Follows a job's progress on stderr.
pub struct ProgressView {
    bar: Option<ProgressBar>,
    last_line: Option<(u32, u32)>,
}

impl ProgressView {
    pub fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{bar:32.cyan/blue}] {pos}/{len} images {msg} ({elapsed})",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        Self {
            bar,
            last_line: None,
        }
    }

    pub fn update(&mut self, status: &JobStatus) {
        let p = status.progress;
        let finished = p.done + p.failed;
        match &self.bar {
            Some(bar) => {
                bar.set_length(u64::from(p.total));
                bar.set_position(u64::from(finished));
                bar.set_message(if p.failed > 0 {
                    format!("· {} skipped · {}", p.failed, status.state.as_str())
                } else {
                    status.state.as_str().to_string()
                });
            }
            None => {
                if self.last_line != Some((finished, p.total)) {
                    eprintln!(
                        "{}: {finished}/{} images ({} skipped)",
                        status.state.as_str(),
                        p.total,
                        p.failed
                    );
                    self.last_line = Some((finished, p.total));
                }
            }
        }
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Print the outcome; the exit code says whether the job succeeded.
pub fn summarize(status: &JobStatus, zip_path: Option<&str>) -> ExitCode {
    match status.state {
        JobState::Succeeded => {
            let result = status.result.as_ref();
            let images = result.map_or(0, |r| r.images);
            let size = result.map_or(0, |r| r.size_bytes);
            let location = zip_path
                .map(str::to_string)
                .or_else(|| result.map(|r| r.url.clone()))
                .unwrap_or_default();
            println!(
                "job {} succeeded: {images} images, {} KiB",
                status.job_id,
                size.div_ceil(1024)
            );
            println!("zip: {location}");
            if let Some(result) = result.filter(|r| !r.skipped.is_empty()) {
                println!("skipped {} image(s):", result.skipped.len());
                for skipped in &result.skipped {
                    println!("  {} [{}] {}", skipped.id, skipped.code, skipped.message);
                }
            }
            if let Some(report) = result.map(|r| &r.report) {
                let labels: Vec<String> = report
                    .labels
                    .iter()
                    .map(|(label, count)| format!("{label} {count}"))
                    .collect();
                println!("labels: {}", labels.join(", "));
                for warning in &report.warnings {
                    println!("  [{}] {}", warning.code.as_str(), warning.message);
                }
            }
            ExitCode::SUCCESS
        }
        state => {
            let error = status.error.as_ref();
            println!(
                "job {} {}: {} ({})",
                status.job_id,
                state.as_str(),
                error.map_or("no reason given", |e| e.message.as_str()),
                error.map_or("", |e| e.code.as_str())
            );
            ExitCode::FAILURE
        }
    }
}
