//! `zipfleet run` reads the dataset report's thresholds from the environment
//! (`ZIPFLEET_MIN_IMAGES_PER_LABEL`, `ZIPFLEET_MAX_LABEL_RATIO`), writes the
//! report into `manifest.json` and prints it.

use std::path::Path;
use std::process::Command;
use zipfleet_tests::{images, zipcheck};

/// Label "a" with 5 pictures, "b" with 2; the report's codes, and stdout.
fn run(dir: &Path, env: &[(&str, &str)]) -> (Vec<String>, String) {
    let mut list = Vec::new();
    for i in 0..7u8 {
        let name = format!("img-{i}.jpg");
        std::fs::write(
            dir.join(&name),
            images::jpeg(300 + u32::from(i) * 40, 260, i * 37),
        )
        .unwrap();
        list.push(serde_json::json!({"id": i.to_string(), "label": if i < 5 { "a" } else { "b" }, "object": {"key": name}}));
    }
    let job = dir.join("job.json");
    std::fs::write(
        &job,
        serde_json::json!({"job_id": "report", "images": list}).to_string(),
    )
    .unwrap();
    let out = dir.join("out.zip");
    let mut command = Command::new(zipfleet_tests::binary("zipfleet"));
    command
        .arg("run")
        .arg(&job)
        .arg("--out")
        .arg(&out)
        .env_remove("RUST_LOG");
    for var in ["ZIPFLEET_MIN_IMAGES_PER_LABEL", "ZIPFLEET_MAX_LABEL_RATIO"] {
        command.env_remove(var);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("zipfleet runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "zipfleet run failed: {stdout}");
    let manifest = zipcheck::manifest(&zipcheck::entries(&out));
    let codes = manifest["report"]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        manifest["report"]["labels"],
        serde_json::json!({"a": 5, "b": 2})
    );
    (codes, stdout)
}

#[test]
fn thresholds_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let (codes, stdout) = run(dir.path(), &[]);
    assert!(codes.contains(&"too_few_images".to_string()), "{codes:?}");
    assert!(
        !codes.contains(&"imbalanced_labels".to_string()),
        "5 is not more than 3 × 2: {codes:?}"
    );
    assert!(
        stdout.contains("b has only 2 pictures; add at least 3 more"),
        "{stdout}"
    );

    let (codes, _) = run(
        dir.path(),
        &[
            ("ZIPFLEET_MIN_IMAGES_PER_LABEL", "2"),
            ("ZIPFLEET_MAX_LABEL_RATIO", "2"),
        ],
    );
    assert!(!codes.contains(&"too_few_images".to_string()), "{codes:?}");
    assert!(
        codes.contains(&"imbalanced_labels".to_string()),
        "5 > 2 × 2: {codes:?}"
    );
}
