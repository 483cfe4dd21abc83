//! What a worker's `info` log may say about children's pictures (contract,
//! "Erasure and retention"; issue 23): jobs and images by id only — never a
//! label, a URL or an object key, which may name a child. `debug` may.

use serde_json::json;
use std::time::Duration;
use zipfleet_shared::status::JobState;
use zipfleet_tests::fleet::spawn_fleet;
use zipfleet_tests::http::{Route, TestServer};
use zipfleet_tests::images;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn info_logs_name_jobs_and_images_by_id_only() {
    let mut fleet = spawn_fleet(0).await;
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("worker.log");
    fleet.add_worker_with(Some(&log), Some("info"), &[("ZIPFLEET_LOG_FORMAT", "json")]);
    let unique = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let job_id = format!("logs-{unique}");
    let label = format!("Emma-Rose-kitten-{unique}");
    let fine = server.image(
        &format!("/emma-{unique}/kitten.jpg"),
        "image/jpeg",
        images::jpeg(320, 240, 3),
    );
    let refused = server.route(
        &format!("/emma-{unique}/private.jpg"),
        Route::Body {
            status: 403,
            content_type: "text/plain",
            body: b"no".to_vec(),
        },
    );
    // Missing: its skip message names the key.
    let missing_key = format!("uploads-{unique}/emma-at-the-beach.png");
    let body = json!({"job_id": job_id, "images": [
        {"id": "1", "label": label, "url": fine},
        {"id": "2", "label": label, "url": refused},
        {"id": "3", "label": label, "object": {"key": missing_key}},
    ]});
    assert_eq!(fleet.post_job(&body).await.status(), 202);
    let status = fleet.wait_final(&job_id, Duration::from_secs(60)).await;
    assert_eq!(status.state, JobState::Succeeded, "{status:?}");
    let skipped = &status.result.as_ref().unwrap().skipped;
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(
        skipped
            .iter()
            .any(|skip| skip.message.contains(&missing_key)),
        "the status tells the teacher which picture: {skipped:?}"
    );
    drop(fleet); // stops the worker, flushing its log

    let text = std::fs::read_to_string(&log).unwrap();
    for line in text.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|err| panic!("not a JSON line ({err}): {line}"));
    }
    assert!(
        text.contains(&job_id) && text.contains("image skipped"),
        "the info log is really there and names the job and its skips:\n{text}"
    );
    for private in [
        label.as_str(),
        fine.as_str(),
        refused.as_str(),
        &format!("emma-{unique}"),
        missing_key.as_str(),
        "emma-at-the-beach",
    ] {
        assert!(
            !text.contains(private),
            "{private:?} appears in the worker's info log:\n{text}"
        );
    }
}
