//! The fleet on real services: API + worker processes, RabbitMQ, SeaweedFS
//! (S3), Redis, images served over loopback HTTP.

use serde_json::json;
use std::time::Duration;
use zipfleet_shared::status::{JobState, JobStatus};
use zipfleet_tests::fleet::{amqp_url, spawn_fleet_on, Fleet, TOKEN};
use zipfleet_tests::http::{Route, TestServer};
use zipfleet_tests::{images, zipcheck};

const LIMIT: Duration = Duration::from_secs(90);

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

/// A job of `web` URL images and `stored` object images, 2 labels.
async fn job_body(
    fleet: &Fleet,
    server: &TestServer,
    job_id: &str,
    web: usize,
    stored: usize,
) -> serde_json::Value {
    let mut list = Vec::new();
    for i in 0..web {
        let url = server.image(
            &format!("/{job_id}/{i}.jpg"),
            "image/jpeg",
            images::jpeg(640 + i as u32, 480, i as u8),
        );
        list.push(json!({"id": format!("w{i}"), "label": if i % 2 == 0 { "cats" } else { "dogs" }, "url": url}));
    }
    for i in 0..stored {
        let key = format!("uploads-{job_id}/{i}.png");
        fleet
            .put_object(&key, images::png(500, 400 + i as u32, i as u8))
            .await;
        list.push(json!({"id": format!("s{i}"), "label": if i % 2 == 0 { "cats" } else { "dogs" }, "object": {"key": key}}));
    }
    json!({"job_id": job_id, "project_id": "class-7b", "images": list})
}

fn parse_completions(raw: Vec<Vec<u8>>) -> Vec<JobStatus> {
    raw.iter()
        .map(|bytes| serde_json::from_slice(bytes).expect("a completion is a status document"))
        .collect()
}

async fn a_job_goes_from_post_to_zip_with_a_completion_message(broker: &str) {
    let fleet = spawn_fleet_on(broker, 2).await;
    let server = TestServer::start().await;
    let job_id = unique("e2e");
    let body = job_body(&fleet, &server, &job_id, 6, 4).await;

    let response = fleet.post_job(&body).await;
    assert_eq!(response.status(), 202);
    let accepted: serde_json::Value = response.json().await.unwrap();
    assert_eq!(accepted["job_id"], job_id.as_str());
    assert_eq!(accepted["state"], "queued");
    assert_eq!(accepted["status_url"], format!("/v1/jobs/{job_id}"));

    let status = fleet.wait_final(&job_id, LIMIT).await;
    assert_eq!(status.state, JobState::Succeeded, "{status:?}");
    assert_eq!(
        (
            status.progress.total,
            status.progress.done,
            status.progress.failed
        ),
        (10, 10, 0)
    );
    assert_eq!(status.project_id.as_deref(), Some("class-7b"));
    let result = status.result.clone().unwrap();
    assert_eq!(result.location.bucket, "zipfleet");
    assert!(
        result
            .location
            .key
            .ends_with(&format!("/zips/{job_id}.zip")),
        "{}",
        result.location.key
    );
    assert!(
        result.url.contains("X-Amz-Signature"),
        "a presigned URL: {}",
        result.url
    );

    let zip = fleet.download(&result.url).await;
    assert_eq!(zip.len() as u64, result.size_bytes);
    let entries = zipcheck::entries_from_bytes(zip);
    assert_eq!(entries.len(), 11);
    for (name, bytes) in &entries {
        if name != "manifest.json" {
            assert!(
                name.starts_with("cats/") || name.starts_with("dogs/"),
                "{name}"
            );
            assert_eq!(zipcheck::rgb_size(bytes), (224, 224), "{name}");
        }
    }
    let manifest = zipcheck::manifest(&entries);
    assert_eq!(manifest["images"].as_array().unwrap().len(), 10);

    let completions = parse_completions(
        fleet
            .drain_queue(fleet.config.completed_queue.as_deref().unwrap())
            .await,
    );
    assert_eq!(completions.len(), 1, "exactly one completion message");
    let mut completion = completions[0].clone();
    let mut expected = status.clone();
    // The URL is presigned afresh on each read; everything else is the same document.
    completion.result.as_mut().unwrap().url.clear();
    expected.result.as_mut().unwrap().url.clear();
    assert_eq!(completion, expected);

    // Fleet-wide metrics saw the job and its images (other tests share the counters: at least).
    let metrics = fleet
        .client
        .get(fleet.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |prefix: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    assert!(
        value("zipfleet_jobs_total{state=\"succeeded\"}") >= 1,
        "{metrics}"
    );
    assert!(
        value("zipfleet_image_duration_seconds_count") >= 10,
        "{metrics}"
    );
    assert!(
        value("zipfleet_job_duration_seconds_count") >= 1,
        "{metrics}"
    );
}

async fn the_api_refuses_what_it_must(broker: &str) {
    let fleet = spawn_fleet_on(broker, 0).await;
    let job_id = unique("api");
    let body = json!({"job_id": job_id, "images": [{"id": "1", "label": "a", "url": "https://example.org/a.jpg"}]});

    // 401 without or with a wrong token
    let response = fleet
        .client
        .post(fleet.url("/v1/jobs"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let error: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "unauthorized");
    let response = fleet
        .client
        .get(fleet.url("/v1/jobs/x"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // 400 naming every bad field
    let bad = json!({"images": [{"id": "1", "label": "a", "url": "ftp://x/a"}, {"id": "1", "label": "b"}], "output": {"fit": "squash"}});
    let response = fleet.post_job(&bad).await;
    assert_eq!(response.status(), 400);
    let error: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "invalid_spec");
    assert!(
        error["error"]["details"][0]["field"]
            .as_str()
            .unwrap()
            .starts_with("output.fit"),
        "{error}"
    );
    let bad = json!({"images": [{"id": "1", "label": "a", "url": "ftp://x/a"}, {"id": "1", "label": "b"}]});
    let error: serde_json::Value = fleet.post_job(&bad).await.json().await.unwrap();
    let fields: Vec<&str> = error["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["images[0].url", "images[1].id", "images[1]"]);

    // 202 and the same job on an identical re-post; 409 on a different spec
    let first = fleet.post_job(&body).await;
    assert_eq!(first.status(), 202);
    let again = fleet.post_job(&body).await;
    assert_eq!(again.status(), 202);
    let again: serde_json::Value = again.json().await.unwrap();
    assert_eq!(again["job_id"], job_id.as_str());
    let mut different = body.clone();
    different["images"][0]["label"] = json!("b");
    let conflict = fleet.post_job(&different).await;
    assert_eq!(conflict.status(), 409);
    assert_eq!(
        conflict.json::<serde_json::Value>().await.unwrap()["error"]["code"],
        "conflict"
    );
    let queued = fleet.drain_jobs().await;
    assert_eq!(queued.len(), 1, "the re-post did not enqueue the job twice");

    // 404 for an unknown job
    let response = fleet
        .client
        .get(fleet.url("/v1/jobs/no-such-job"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap()["error"]["code"],
        "not_found"
    );

    // health, readiness, metrics, OpenAPI
    assert_eq!(
        fleet
            .client
            .get(fleet.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let ready = fleet.client.get(fleet.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "{:?}", ready.text().await);
    let metrics = fleet
        .client
        .get(fleet.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("zipfleet_queue_depth"), "{metrics}");
    assert!(
        metrics.contains("zipfleet_api_jobs_accepted_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("zipfleet_jobs_total{state=\"queued\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("zipfleet_image_duration_seconds_bucket{le=\"+Inf\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("zipfleet_job_duration_seconds_count"),
        "{metrics}"
    );
    let openapi: serde_json::Value = fleet
        .client
        .get(fleet.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(openapi["paths"]["/v1/jobs/{id}"]["delete"].is_object());

    // 413 for a body over the limit. Its own client: the server answers before
    // reading the body and closes the connection, which must not be reused.
    let huge = json!({"images": [{"id": "1", "label": "x".repeat(2 * 1024 * 1024), "url": "https://example.org/a.jpg"}]});
    let response = reqwest::Client::new()
        .post(fleet.url("/v1/jobs"))
        .bearer_auth(TOKEN)
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap()["error"]["code"],
        "payload_too_large"
    );
}

async fn queued_and_running_jobs_can_be_cancelled(broker: &str) {
    let mut fleet = spawn_fleet_on(broker, 0).await;
    let server = TestServer::start().await;

    // Queued: no worker yet.
    let queued_id = unique("cancel-q");
    let body = job_body(&fleet, &server, &queued_id, 2, 0).await;
    assert_eq!(fleet.post_job(&body).await.status(), 202);
    let response = fleet
        .call(
            reqwest::Method::POST,
            &format!("/v1/jobs/{queued_id}/cancel"),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<JobStatus>().await.unwrap().state,
        JobState::Cancelled
    );

    // Running: an image that trickles in keeps the job busy.
    let running_id = unique("cancel-r");
    let slow = server.route(
        "/slow.jpg",
        Route::Drip {
            body: images::jpeg(64, 64, 1),
            interval: Duration::from_millis(5),
        },
    );
    let body = json!({"job_id": running_id, "images": [
        {"id": "slow", "label": "a", "url": slow},
        {"id": "fast", "label": "a", "url": server.image("/fast.jpg", "image/jpeg", images::jpeg(64, 64, 2))}
    ]});
    assert_eq!(fleet.post_job(&body).await.status(), 202);
    fleet.add_worker();
    fleet
        .wait_for(&running_id, LIMIT, |s| s.state == JobState::Running)
        .await;
    let response = fleet
        .call(
            reqwest::Method::POST,
            &format!("/v1/jobs/{running_id}/cancel"),
        )
        .await;
    assert_eq!(response.status(), 202);
    let status = fleet.wait_final(&running_id, LIMIT).await;
    assert_eq!(status.state, JobState::Cancelled);
    assert_eq!(status.error.unwrap().code, "cancelled");

    // The queued one was skipped by the worker and its completion published.
    let status = fleet.get_status(&queued_id).await;
    assert_eq!(status.state, JobState::Cancelled);
    let again = fleet
        .call(
            reqwest::Method::POST,
            &format!("/v1/jobs/{queued_id}/cancel"),
        )
        .await;
    assert_eq!(again.status(), 409, "an ended job cannot be cancelled");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let completions = parse_completions(
        fleet
            .drain_queue(fleet.config.completed_queue.as_deref().unwrap())
            .await,
    );
    let mut ids: Vec<&str> = completions.iter().map(|c| c.job_id.as_str()).collect();
    ids.sort();
    let mut expected = vec![queued_id.as_str(), running_id.as_str()];
    expected.sort();
    assert_eq!(ids, expected);
    assert!(completions.iter().all(|c| c.state == JobState::Cancelled));
}

async fn a_killed_worker_s_job_is_finished_by_another_exactly_once(broker: &str) {
    let mut fleet = spawn_fleet_on(broker, 0).await;
    let server = TestServer::start().await;
    let job_id = unique("kill");
    // The slow image holds the job for a few seconds.
    let slow = server.route(
        "/slow-kill.jpg",
        Route::Drip {
            body: images::jpeg(48, 48, 3),
            interval: Duration::from_millis(3),
        },
    );
    let mut body = job_body(&fleet, &server, &job_id, 3, 2).await;
    body["images"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "slow", "label": "cats", "url": slow}));
    let first = fleet.add_worker();
    assert_eq!(fleet.post_job(&body).await.status(), 202);
    fleet
        .wait_for(&job_id, LIMIT, |s| s.state == JobState::Running)
        .await;
    fleet.kill_worker(first);
    fleet.add_worker();

    let status = fleet.wait_final(&job_id, LIMIT).await;
    assert_eq!(status.state, JobState::Succeeded, "{status:?}");
    if broker.starts_with("sqs") {
        // A receive the killed worker had under way (its free slot sweeps
        // the lanes) can outlive it on the server and take the message once
        // more (into a closed socket) before the second worker receives it,
        // so SQS may count an extra receive.
        assert!(status.attempt >= 2, "the job was redelivered: {status:?}");
    } else {
        assert_eq!(status.attempt, 2, "the job was redelivered once");
    }
    assert_eq!(status.result.as_ref().unwrap().images, 6);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let completions = parse_completions(
        fleet
            .drain_queue(fleet.config.completed_queue.as_deref().unwrap())
            .await,
    );
    assert_eq!(completions.len(), 1, "one completion message");
    let zips = fleet.zip_count(&job_id).await;
    assert_eq!(zips, 1, "one zip object");
}

async fn a_poison_message_is_dead_lettered_and_the_next_job_succeeds(broker: &str) {
    let fleet = spawn_fleet_on(broker, 1).await;
    let server = TestServer::start().await;
    fleet
        .publish_raw("definitely not json \u{1F4A5}".as_bytes())
        .await;
    fleet.publish_raw(br#"{"hello": "world"}"#).await;
    let job_id = unique("after-poison");
    let body = job_body(&fleet, &server, &job_id, 1, 1).await;
    assert_eq!(fleet.post_job(&body).await.status(), 202);
    let status = fleet.wait_final(&job_id, LIMIT).await;
    assert_eq!(status.state, JobState::Succeeded);
    // The job went on its tenant's lane and may have run first; the poison
    // on lane 0 is found by the next sweep of every lane (every 2 s).
    let dlq = fleet.config.dead_letter_queue.clone().unwrap();
    let mut dead = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while dead.len() < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        dead.extend(fleet.drain_queue(&dlq).await);
    }
    assert_eq!(
        dead.len(),
        2,
        "both poison messages are in the dead-letter queue"
    );
    assert!(
        dead.contains(&"definitely not json \u{1F4A5}".as_bytes().to_vec()),
        "{dead:?}"
    );
}

async fn sigterm_hands_back_a_job_that_cannot_finish_in_the_grace_period(broker: &str) {
    let mut fleet = spawn_fleet_on(broker, 0).await;
    let server = TestServer::start().await;
    let job_id = unique("sigterm");
    // About 12 s of trickle: longer than the workers' 5 s grace period.
    let slow = server.route(
        "/slow-term.jpg",
        Route::Drip {
            body: images::jpeg(64, 64, 5),
            interval: Duration::from_millis(12),
        },
    );
    let body = json!({"job_id": job_id, "images": [{"id": "slow", "label": "a", "url": slow}]});
    let first = fleet.add_worker();
    assert_eq!(fleet.post_job(&body).await.status(), 202);
    fleet
        .wait_for(&job_id, LIMIT, |s| s.state == JobState::Running)
        .await;
    let started = std::time::Instant::now();
    fleet.terminate_worker(first);
    let grace_used = started.elapsed();
    assert!(
        grace_used < Duration::from_secs(9),
        "the worker exits after its grace period, took {grace_used:?}"
    );
    assert_eq!(
        fleet.get_status(&job_id).await.state,
        JobState::Running,
        "not finished by the stopped worker"
    );

    fleet.add_worker();
    let status = fleet.wait_final(&job_id, LIMIT).await;
    assert_eq!(status.state, JobState::Succeeded, "{status:?}");
    assert_eq!(status.attempt, 2, "the handed-back job was delivered again");
}

#[tokio::test]
async fn the_api_refuses_to_start_without_a_token() {
    let exe = std::env::current_exe().unwrap();
    let api = exe
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .join("zipfleet-api");
    let output = tokio::process::Command::new(api)
        .env_remove("ZIPFLEET_API_TOKEN")
        .env("ZIPFLEET_BROKER", "memory://")
        .env("ZIPFLEET_STATUS", "memory://")
        .env("ZIPFLEET_STORE", "file:///tmp/zipfleet-no-token")
        .env("ZIPFLEET_LISTEN", "127.0.0.1:0")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("ZIPFLEET_API_TOKEN"));
}

async fn secrets_never_reach_the_logs(broker: &str) {
    let mut fleet = spawn_fleet_on(broker, 0).await;
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("worker.log");
    fleet.add_worker_logging(Some(&log), Some("debug"));
    let job_id = unique("secrets");
    let body = job_body(&fleet, &server, &job_id, 2, 1).await;
    assert_eq!(fleet.post_job(&body).await.status(), 202);
    let status = fleet.wait_final(&job_id, LIMIT).await;
    assert_eq!(status.state, JobState::Succeeded);
    let signature = status
        .result
        .unwrap()
        .url
        .split("X-Amz-Signature=")
        .nth(1)
        .unwrap()
        .to_string();
    drop(fleet); // stops the worker, flushing its log
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains(&job_id),
        "the log is really there ({} bytes)",
        text.len()
    );
    for secret in [
        "zipfleet-secret",
        TOKEN,
        signature.as_str(),
        "X-Amz-Signature",
    ] {
        assert!(
            !text.contains(secret),
            "{secret:?} appears in the worker's debug log"
        );
    }
}

/// Many short jobs through two workers while jobs keep finishing (so the
/// worker loop keeps taking as slots free and going idle in between): no
/// message is ever held by a worker that is not running it, so every job runs
/// on its first delivery and none waits in the queue for a visibility timeout
/// (an idle worker finds a job within its 2 s sweep).
async fn no_job_waits_behind_a_held_message(broker: &str) {
    let fleet = spawn_fleet_on(broker, 2).await;
    let server = TestServer::start().await;
    let mut ids = Vec::new();
    for n in 0..16u8 {
        let job_id = unique(&format!("held{n}"));
        let url = server.image(
            &format!("/{job_id}.jpg"),
            "image/jpeg",
            images::jpeg(64, 48, n),
        );
        let body = json!({"job_id": job_id, "images": [{"id": "1", "label": "a", "url": url}]});
        assert_eq!(fleet.post_job(&body).await.status(), 202);
        ids.push(job_id);
        // Arrivals spread out, so jobs finish while others are being received.
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let mut waits = Vec::new();
    for job_id in &ids {
        let status = fleet.wait_final(job_id, LIMIT).await;
        assert_eq!(status.state, JobState::Succeeded, "{status:?}");
        assert_eq!(
            status.attempt, 1,
            "{job_id} was delivered more than once: {status:?}"
        );
        let waited = (status.started_at.unwrap() - status.created_at)
            .to_std()
            .unwrap_or_default();
        waits.push(waited);
    }
    let longest = waits.iter().max().copied().unwrap_or_default();
    eprintln!("{broker}: longest queue wait of 16 short jobs on 2 workers: {longest:?}");
    assert!(
        longest < Duration::from_secs(5),
        "a job waited {longest:?} in the queue with idle workers (visibility timeout is {:?})",
        zipfleet_tests::fleet::SQS_VISIBILITY
    );
}

/// Every fleet test above, on both real brokers.
macro_rules! on_every_broker {
    ($($test:ident),* $(,)?) => {
        mod rabbitmq {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(&super::amqp_url()).await;
                }
            )*
        }
        mod sqs {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test("sqs://").await;
                }
            )*
        }
    };
}

on_every_broker!(
    a_job_goes_from_post_to_zip_with_a_completion_message,
    the_api_refuses_what_it_must,
    queued_and_running_jobs_can_be_cancelled,
    a_killed_worker_s_job_is_finished_by_another_exactly_once,
    a_poison_message_is_dead_lettered_and_the_next_job_succeeds,
    sigterm_hands_back_a_job_that_cannot_finish_in_the_grace_period,
    secrets_never_reach_the_logs,
    no_job_waits_behind_a_held_message,
);
