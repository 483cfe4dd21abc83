//! `zipfleet submit --wait` and `zipfleet status` against a live fleet.

use std::process::Command;
use std::time::Duration;
use zipfleet_tests::fleet::{spawn_fleet, TOKEN};
use zipfleet_tests::http::TestServer;
use zipfleet_tests::images;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_waits_for_the_job_and_status_shows_it() {
    let fleet = spawn_fleet(1).await;
    let server = TestServer::start().await;
    let job_id = format!("cli-{}", &uuid_like());
    let url = server.image("/cli.jpg", "image/jpeg", images::jpeg(400, 300, 7));
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.json");
    std::fs::write(
        &job,
        serde_json::json!({"job_id": job_id, "images": [{"id": "1", "label": "a", "url": url}]})
            .to_string(),
    )
    .unwrap();

    let api_url = fleet.api_url.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(zipfleet_tests::binary("zipfleet"))
            .args(["submit", job.to_str().unwrap(), "--wait"])
            .env("ZIPFLEET_API_URL", &api_url)
            .env("ZIPFLEET_API_TOKEN", TOKEN)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "submit failed: {stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("job {job_id} succeeded: 1 images")),
        "{stdout}"
    );

    let api_url = fleet.api_url.clone();
    let id = job_id.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(zipfleet_tests::binary("zipfleet"))
            .args(["status", &id, "--api-url", &api_url, "--api-token", TOKEN])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let status: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("status prints the JSON document");
    assert_eq!(status["state"], "succeeded");
    assert_eq!(status["job_id"], job_id.as_str());
    tokio::time::sleep(Duration::from_millis(10)).await;
}

fn uuid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}
