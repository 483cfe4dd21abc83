//! Memory is bounded by design: a job of 200 multi-megapixel images runs in a
//! `zipfleet run` child process under a small budget, and the child's peak
//! RSS (VmHWM, sampled from /proc while it runs) stays under that budget.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use zipfleet_tests::images;

const BUDGET_MIB: u64 = 128;

/// Peak resident memory of a running process, in KiB.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn write_corpus(dir: &Path) -> serde_json::Value {
    // A few distinct images, each reused many times: decoding cost and memory
    // are the same as for distinct files, generating them is not.
    let jpegs: Vec<Vec<u8>> = (0..4).map(|seed| images::jpeg(3000, 2000, seed)).collect();
    let pngs: Vec<Vec<u8>> = (0..2).map(|seed| images::png(2400, 1600, seed)).collect();
    let mut list = Vec::new();
    for i in 0..200 {
        let (name, bytes) = if i % 4 == 3 {
            (format!("img-{i}.png"), &pngs[i % 2])
        } else {
            (format!("img-{i}.jpg"), &jpegs[i % 4])
        };
        std::fs::write(dir.join(&name), bytes).unwrap();
        list.push(serde_json::json!({"id": i.to_string(), "label": format!("class-{}", i % 5), "object": {"key": name}}));
    }
    serde_json::json!({"job_id": "memory", "images": list})
}

#[test]
fn a_large_job_stays_within_the_memory_budget() {
    let dir = tempfile::tempdir().unwrap();
    let job = write_corpus(dir.path());
    let job_path = dir.path().join("job.json");
    std::fs::write(&job_path, job.to_string()).unwrap();
    let out = dir.path().join("out.zip");

    let started = Instant::now();
    let mut child = Command::new(zipfleet_tests::binary("zipfleet"))
        .arg("run")
        .arg(&job_path)
        .arg("--out")
        .arg(&out)
        .arg("--memory-budget")
        .arg(format!("{BUDGET_MIB}MiB"))
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("zipfleet runs");
    let pid = child.id();
    let mut peak_kib = 0;
    let status = loop {
        if let Some(kib) = vm_hwm_kib(pid) {
            peak_kib = peak_kib.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the job took too long"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(status.success(), "zipfleet run failed: {stdout}");
    assert!(stdout.contains("200 images"), "{stdout}");

    let peak_mib = peak_kib as f64 / 1024.0;
    eprintln!(
        "peak RSS {peak_mib:.1} MiB under a {BUDGET_MIB} MiB budget, 200 images in {:.1?}",
        started.elapsed()
    );
    assert!(peak_kib > 0, "VmHWM was sampled");
    assert!(
        peak_mib < BUDGET_MIB as f64,
        "peak RSS {peak_mib:.1} MiB exceeds the {BUDGET_MIB} MiB budget"
    );

    let archive = zip::ZipArchive::new(std::fs::File::open(&out).unwrap()).unwrap();
    assert_eq!(archive.len(), 201, "200 images and the manifest");
}
