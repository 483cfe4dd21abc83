//! Showing a job's progress and outcome to a person: its place in line while
//! it waits, a progress bar on a terminal (plain lines otherwise) while it
//! runs, and a summary at the end.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::process::ExitCode;
use zipfleet_shared::status::{JobState, JobStatus, QueuePlace};

/// Follows a job's progress on stderr.
pub struct ProgressView {
    bar: Option<ProgressBar>,
    /// What the last plain line said (state, place in line, images finished,
    /// total), so that a line is printed only when one of them changes.
    last_line: Option<(JobState, Option<u32>, u32, u32)>,
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
        let place = status.queue.as_ref().map(place_in_line);
        match &self.bar {
            Some(bar) => {
                bar.set_length(u64::from(p.total));
                bar.set_position(u64::from(finished));
                bar.set_message(match (&place, p.failed) {
                    (Some(place), _) => format!("· queued: {place}"),
                    (None, 0) => status.state.as_str().to_string(),
                    (None, failed) => format!("· {failed} skipped · {}", status.state.as_str()),
                });
            }
            None => {
                let line = (
                    status.state,
                    status.queue.map(|q| q.jobs_ahead),
                    finished,
                    p.total,
                );
                if self.last_line != Some(line) {
                    match place {
                        Some(place) => eprintln!("queued: {place} (tenant {})", status.tenant),
                        None => eprintln!(
                            "{}: {finished}/{} images ({} skipped)",
                            status.state.as_str(),
                            p.total,
                            p.failed
                        ),
                    }
                    self.last_line = Some(line);
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

/// Where a queued job stands, as a person says it: "3 jobs ahead of you,
/// about 20 s".
pub fn place_in_line(place: &QueuePlace) -> String {
    let ahead = match place.jobs_ahead {
        0 => "next in line".to_string(),
        1 => "1 job ahead of you".to_string(),
        n => format!("{n} jobs ahead of you"),
    };
    format!("{ahead}, about {}", about(place.estimated_wait_s))
}

/// A wait in the unit a person would use for it.
fn about(seconds: u32) -> String {
    match seconds {
        0..90 => format!("{seconds} s"),
        90..5400 => format!("{} min", (seconds + 30) / 60),
        _ => format!("{} h", (seconds + 1800) / 3600),
    }
}

/// A job in a few lines: who it is for and where it stands (`zipfleet status`).
pub fn describe(status: &JobStatus) -> String {
    let project = status
        .project_id
        .as_deref()
        .map(|project| format!(", project {project}"))
        .unwrap_or_default();
    let mut text = format!(
        "job {} (tenant {}{project}): {}",
        status.job_id,
        status.tenant,
        status.state.as_str()
    );
    let p = status.progress;
    match (&status.queue, status.state) {
        (Some(place), _) => text.push_str(&format!(": {}", place_in_line(place))),
        (None, JobState::Running) => text.push_str(&format!(
            ", {}/{} images ({} skipped)",
            p.done + p.failed,
            p.total,
            p.failed
        )),
        _ => {}
    }
    text
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
