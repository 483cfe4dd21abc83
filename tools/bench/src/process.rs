//! The child processes the bench runs: finding the binaries built next to
//! it, and measuring a run's wall time, CPU time and peak RSS.

use anyhow::{bail, Context};
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A binary of the workspace built next to this one (`target/release/NAME`
/// for `cargo run --release -p zipfleet-bench`).
pub fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the zipfleet-bench binary")?;
    let path = exe.with_file_name(name);
    if !path.exists() {
        bail!(
            "{} is missing: build every binary first (`cargo build --release --bins`)",
            path.display()
        );
    }
    Ok(path)
}

/// The peak RSS of a running process (`None` once it is gone).
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .as_deref()
        .and_then(high_water_mark_kib)
}

/// Wall time and peak RSS of one child process.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    pub wall: Duration,
    pub max_rss_kib: u64,
}

/// Run a command to completion, measuring wall time and the child's peak RSS
/// (its `VmHWM` high-water mark, sampled every 10 ms until it exits; `taskset`
/// execs its program, so the PID stays the same).
pub fn measure(command: &mut Command) -> anyhow::Result<Measured> {
    let started = Instant::now();
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {command:?}"))?;
    let mut stderr = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut max_rss_kib = 0;
    let status = loop {
        if let Some(hwm) = peak_rss_kib(child.id()) {
            max_rss_kib = max_rss_kib.max(hwm);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let wall = started.elapsed();
    let errors = reader.join().unwrap_or_default();
    if !status.success() {
        bail!("{command:?} failed: {}", errors.trim());
    }
    Ok(Measured { wall, max_rss_kib })
}

/// CPU seconds (user + sys) of this process's waited-for children so far.
pub fn children_cpu() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the parenthesised command name; cutime and cstime are the 16th and 17th.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("reading /proc/self/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields
        .get(13)
        .and_then(|f| f.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(14)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0);
    Ok(ticks / 100.0)
}

/// The `VmHWM` (peak resident set) of a `/proc/PID/status` text, in KiB.
pub fn high_water_mark_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
