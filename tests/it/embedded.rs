//! The whole pipeline in one process: memory broker, memory status, a
//! directory store, a real worker, real HTTP on loopback.

use serde_json::json;
use std::time::Duration;
use zipfleet_shared::broker::{Broker, Lane};
use zipfleet_shared::status::JobState;
use zipfleet_shared::status_store::JobRecords;
use zipfleet_tests::http::{closed_port_url, TestServer};
use zipfleet_tests::{images, spec, test_settings, zipcheck, Embedded};

const LIMIT: Duration = Duration::from_secs(60);

/// Objects and URLs for a job mixing good and bad images.
async fn mixed_sources(dir: &std::path::Path, server: &TestServer) -> serde_json::Value {
    std::fs::create_dir_all(dir.join("uploads")).unwrap();
    std::fs::write(dir.join("uploads/cat.jpg"), images::jpeg(1200, 900, 1)).unwrap();
    std::fs::write(dir.join("uploads/dog.png"), images::png(640, 480, 2)).unwrap();
    std::fs::write(
        dir.join("uploads/login.html"),
        b"<!DOCTYPE html><html><body>Please sign in</body></html>",
    )
    .unwrap();
    let web_cat = server.image("/cat.webp", "image/webp", images::webp(800, 600, 3));
    json!([
        {"id": "1", "label": "cats", "object": {"key": "uploads/cat.jpg"}},
        {"id": "2", "label": "dogs", "object": {"key": "uploads/dog.png"}},
        {"id": "3", "label": "cats", "url": web_cat},
        {"id": "4", "label": "dogs", "object": {"key": "uploads/missing.jpg"}},
        {"id": "5", "label": "cats", "object": {"key": "uploads/login.html"}},
        {"id": "6", "label": "dogs", "url": closed_port_url().await},
    ])
}

#[tokio::test]
async fn mixed_job_with_skip_keeps_the_good_images() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    let fleet = Embedded::start(dir.path(), &test_settings(dir.path()));
    let images = mixed_sources(dir.path(), &server).await;
    fleet
        .submit(
            "mixed-skip",
            &spec(json!({"project_id": "p1", "images": images, "on_image_error": "skip"})),
        )
        .await;
    let status = fleet.wait("mixed-skip", LIMIT).await;

    assert_eq!(status.state, JobState::Succeeded, "{status:?}");
    assert_eq!(
        (
            status.progress.total,
            status.progress.done,
            status.progress.failed
        ),
        (6, 3, 3)
    );
    assert_eq!(status.attempt, 1);
    let result = status.result.clone().unwrap();
    assert_eq!(result.images, 3);
    assert_eq!(result.location.key, "zips/mixed-skip.zip");
    assert!(result.url.starts_with("file:///"), "{}", result.url);
    let skipped: Vec<(&str, &str)> = result
        .skipped
        .iter()
        .map(|s| (s.id.as_str(), s.code.as_str()))
        .collect();
    assert_eq!(
        skipped,
        vec![
            ("4", "not_found"),
            ("5", "unsupported_format"),
            ("6", "fetch_failed")
        ]
    );

    let zip_path = dir.path().join(&result.location.key);
    assert_eq!(
        std::fs::metadata(&zip_path).unwrap().len(),
        result.size_bytes
    );
    let entries = zipcheck::entries(&zip_path);
    let names: Vec<&str> = entries.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        vec!["cats/1.jpg", "cats/3.jpg", "dogs/2.jpg", "manifest.json"]
    );
    for (name, bytes) in &entries {
        if name != "manifest.json" {
            assert_eq!(zipcheck::rgb_size(bytes), (224, 224), "{name}");
        }
    }
    let manifest = zipcheck::manifest(&entries);
    assert_eq!(manifest["job_id"], "mixed-skip");
    assert_eq!(manifest["project_id"], "p1");
    let lines = manifest["images"].as_array().unwrap();
    assert_eq!(lines.len(), 6, "the manifest lists every image");
    assert_eq!(lines[0]["entry"], "cats/1.jpg");
    assert_eq!(
        (lines[0]["width"].as_u64(), lines[0]["height"].as_u64()),
        (Some(1200), Some(900))
    );
    assert_eq!(lines[0]["source"]["object"]["key"], "uploads/cat.jpg");
    assert_eq!(lines[2]["source"]["url"], server.url("/cat.webp"));
    assert_eq!(lines[3]["status"], "skipped");
    assert_eq!(lines[3]["code"], "not_found");
    assert_eq!(manifest["skipped"].as_array().unwrap().len(), 3);

    let completions = fleet.broker.completions();
    assert_eq!(completions.len(), 1, "one completion message");
    let completion: zipfleet_shared::JobStatus = serde_json::from_slice(&completions[0]).unwrap();
    assert_eq!(
        completion, status,
        "the completion message is the final status document"
    );
    fleet.stop().await;
}

#[tokio::test]
async fn mixed_job_with_fail_fails_naming_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    let fleet = Embedded::start(dir.path(), &test_settings(dir.path()));
    let mut images = mixed_sources(dir.path(), &server).await;
    // Only one bad image, so the failing one is known.
    images.as_array_mut().unwrap().truncate(4);
    fleet
        .submit(
            "mixed-fail",
            &spec(json!({"images": images, "on_image_error": "fail"})),
        )
        .await;
    let status = fleet.wait("mixed-fail", LIMIT).await;
    assert_eq!(status.state, JobState::Failed);
    let error = status.error.unwrap();
    assert_eq!(error.code, "not_found");
    assert!(error.message.contains("\"4\""), "{}", error.message);
    assert!(status.result.is_none());
    assert!(
        !dir.path().join("zips/mixed-fail.zip").exists(),
        "a failed job leaves no zip"
    );
    fleet.stop().await;
}

#[tokio::test]
async fn colliding_and_hostile_names_all_survive_inside_the_zip() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.png"), images::png(50, 40, 9)).unwrap();
    let fleet = Embedded::start(dir.path(), &test_settings(dir.path()));
    let source = json!({"key": "a.png"});
    let job = spec(json!({"images": [
        {"id": "a/b", "label": "../../etc", "object": source},
        {"id": "a\\b", "label": "../../etc", "object": source},
        {"id": "CON", "label": "x\u{0000}y", "object": source},
    ], "output": {"format": "png", "width": 32, "height": 16}}));
    fleet.submit("names", &job).await;
    let status = fleet.wait("names", LIMIT).await;
    assert_eq!(status.state, JobState::Succeeded, "{status:?}");
    let entries = zipcheck::entries(&dir.path().join("zips/names.zip"));
    let names: Vec<&str> = entries.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        vec![
            "_.._etc/a_b.png",
            "_.._etc/a_b~2.png",
            "manifest.json",
            "x_y/_CON.png"
        ]
    );
    assert_eq!(zipcheck::rgb_size(&entries["x_y/_CON.png"]), (32, 16));
    let manifest = zipcheck::manifest(&entries);
    assert_eq!(
        manifest["images"][1]["id"], "a\\b",
        "the manifest keeps the original id"
    );
    assert_eq!(manifest["images"][0]["label"], "../../etc");
    fleet.stop().await;
}

#[tokio::test]
async fn a_malformed_message_is_dead_lettered_and_the_worker_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.jpg"), images::jpeg(300, 200, 4)).unwrap();
    let fleet = Embedded::start(dir.path(), &test_settings(dir.path()));
    fleet
        .broker
        .publish_job(Lane(0), "junk", b"this is not json")
        .await
        .unwrap();
    fleet
        .broker
        .publish_job(Lane(0), "junk2", br#"{"job_id": "x", "something": "else"}"#)
        .await
        .unwrap();
    fleet
        .submit(
            "after-junk",
            &spec(json!({"images": [{"id": "1", "label": "a", "object": {"key": "a.jpg"}}]})),
        )
        .await;
    let status = fleet.wait("after-junk", LIMIT).await;
    assert_eq!(status.state, JobState::Succeeded);
    // The job went on its tenant's lane and may have run first; the junk on
    // lane 0 is found by the next sweep of every lane.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while fleet.broker.dead_letters().len() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(fleet.broker.dead_letters().len(), 2);
    fleet.stop().await;
}

#[tokio::test]
async fn a_redelivered_finished_job_is_not_run_again() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.jpg"), images::jpeg(300, 200, 4)).unwrap();
    let fleet = Embedded::start(dir.path(), &test_settings(dir.path()));
    let job = spec(json!({"images": [{"id": "1", "label": "a", "object": {"key": "a.jpg"}}]}));
    fleet.submit("twice", &job).await;
    let first = fleet.wait("twice", LIMIT).await;
    // The same message again, as after a worker died between publish and ack.
    let message = zipfleet_shared::message::JobMessage::inline("twice", job);
    fleet
        .broker
        .publish_job(Lane(0), "twice", &message.to_bytes())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + LIMIT;
    while fleet.broker.completions().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let again: zipfleet_shared::JobStatus =
        serde_json::from_slice(&fleet.broker.completions()[1]).unwrap();
    assert_eq!(again, first, "the completion is re-published unchanged");
    assert_eq!(
        fleet.status.get("twice").await.unwrap().unwrap().attempt,
        1,
        "not run a second time"
    );
    fleet.stop().await;
}
