//! Dead letters for operators, on the real fleet and both brokers: a poison
//! message shows in `GET /v1/dead-letters` with the reason it was
//! dead-lettered; a job dead-lettered by the delivery limit, once its cause is
//! gone, runs after `POST /v1/dead-letters/redrive`; the CLI's `zipfleet dlq`
//! shows and moves the same; `/metrics` carries the depth. One dead letter is
//! redriven (`POST /v1/dead-letters/{id}/redrive`) or deleted (`DELETE
//! /v1/dead-letters/{id}`) by its id, the others untouched.

use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;
use zipfleet_shared::broker::{Lane, EXCEEDED_MAX_DELIVERIES};
use zipfleet_shared::status::JobState;
use zipfleet_tests::conformance::{take_any_within, take_within};
use zipfleet_tests::fleet::{amqp_url, spawn_fleet_on, Fleet, TOKEN};
use zipfleet_tests::http::TestServer;
use zipfleet_tests::images;

const POISON: &[u8] = b"this is not a job {";

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

async fn dead_letters(fleet: &Fleet) -> Value {
    let response = fleet
        .client
        .get(fleet.url("/v1/dead-letters"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Poll the listing until `done` holds (or fail after `limit`).
async fn wait_listing(fleet: &Fleet, limit: Duration, done: impl Fn(&[Value]) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let listing = dead_letters(fleet).await;
        if done(listing["messages"].as_array().unwrap()) {
            return listing;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "dead letters never became as expected: {listing}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn is_poison(message: &Value) -> bool {
    message["preview"] == String::from_utf8_lossy(POISON).as_ref()
}

/// The `zipfleet` binary next to this test's executable.
fn zipfleet(fleet: &Fleet, args: &[&str]) -> String {
    let exe = std::env::current_exe().unwrap();
    let binary = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("zipfleet");
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build --workspace --bins`",
        binary.display()
    );
    let output = Command::new(binary)
        .args(args)
        .env("ZIPFLEET_API_URL", &fleet.api_url)
        .env("ZIPFLEET_API_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "zipfleet {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

async fn poison_is_listed_with_its_reason_and_a_redriven_job_runs(broker: &str) {
    let mut fleet = spawn_fleet_on(broker, 0).await;
    let server = TestServer::start().await;

    // A job that keeps failing: the test plays a worker that hands it back
    // until the broker's delivery limit dead-letters it.
    let job_id = unique("dlq");
    let url = server.image(
        &format!("/{job_id}/cat.jpg"),
        "image/jpeg",
        images::jpeg(320, 240, 3),
    );
    let response = fleet
        .post_job(&json!({"job_id": job_id, "images": [{"id": "1", "label": "cats", "url": url}]}))
        .await;
    assert_eq!(response.status(), 202);
    // (On whichever lane the fair-share ledger put it.)
    let broker = fleet.backends.broker.as_ref();
    for _ in 0..fleet.config.max_deliveries {
        let delivery = take_any_within(broker, Duration::from_secs(30))
            .await
            .expect("delivered");
        delivery.hand_back().await.unwrap();
    }
    // SQS moves it on the next receive; RabbitMQ already has.
    let beyond = take_any_within(broker, Duration::from_secs(3)).await;
    assert!(beyond.is_none(), "delivered beyond the delivery limit");

    // A poison message: the worker dead-letters it, saying why.
    fleet.publish_raw(POISON).await;
    fleet.add_worker();
    let listing = wait_listing(&fleet, Duration::from_secs(60), |messages| {
        messages.len() == 2
    })
    .await;
    let messages = listing["messages"].as_array().unwrap();
    assert!(listing["depth"].as_u64().unwrap() >= 2, "{listing}");
    let poison = messages
        .iter()
        .find(|m| is_poison(m))
        .unwrap_or_else(|| panic!("poison not listed: {listing}"));
    assert!(
        poison["reason"]
            .as_str()
            .unwrap()
            .starts_with("not a job message"),
        "{poison}"
    );
    assert!(poison["job_id"].is_null(), "{poison}");
    assert!(!poison["id"].as_str().unwrap().is_empty());
    let stuck = messages
        .iter()
        .find(|m| m["job_id"] == job_id.as_str())
        .unwrap_or_else(|| panic!("job not listed: {listing}"));
    assert_eq!(stuck["reason"], EXCEEDED_MAX_DELIVERIES, "{stuck}");
    // Listing leaves them where they are.
    assert_eq!(
        dead_letters(&fleet).await["messages"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // (Messages a listing just looked at count again a moment later on RabbitMQ.)
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = fleet
            .client
            .get(fleet.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics
            .lines()
            .any(|line| line == "zipfleet_dead_letter_depth 2")
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let cli_listing = zipfleet(&fleet, &["dlq", "list"]);
    assert!(
        cli_listing.contains(&job_id) && cli_listing.contains("this is not a job {"),
        "{cli_listing}"
    );

    // Redrive both: the job (its cause gone: a worker runs now) succeeds on a
    // first attempt; the poison comes straight back, with its reason.
    let response = fleet
        .client
        .post(fleet.url("/v1/dead-letters/redrive"))
        .bearer_auth(TOKEN)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let moved: Value = response.json().await.unwrap();
    assert_eq!(moved["moved"], 2, "{moved}");
    let status = fleet.wait_final(&job_id, Duration::from_secs(90)).await;
    assert_eq!(status.state, JobState::Succeeded, "{status:?}");
    assert_eq!(
        status.attempt, 1,
        "a redriven job starts as a first delivery"
    );
    assert_eq!(fleet.zip_count(&job_id).await, 1);
    wait_listing(&fleet, Duration::from_secs(60), |messages| {
        messages.len() == 1 && is_poison(&messages[0])
    })
    .await;

    // `--max` bounds the move; the CLI says how many moved.
    let redriven = zipfleet(&fleet, &["dlq", "redrive", "--max", "1"]);
    assert_eq!(redriven.trim(), "moved 1 message back to the jobs queue");
    wait_listing(&fleet, Duration::from_secs(60), |messages| {
        messages.len() == 1 && is_poison(&messages[0])
    })
    .await;
    let response = fleet
        .client
        .post(fleet.url("/v1/dead-letters/redrive"))
        .bearer_auth(TOKEN)
        .json(&json!({"max": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(
        (
            error["error"]["code"].as_str(),
            error["error"]["details"][0]["field"].as_str()
        ),
        (Some("invalid_request"), Some("max"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_poison_is_listed_with_its_reason_and_a_redriven_job_runs() {
    poison_is_listed_with_its_reason_and_a_redriven_job_runs(&amqp_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_poison_is_listed_with_its_reason_and_a_redriven_job_runs() {
    poison_is_listed_with_its_reason_and_a_redriven_job_runs("sqs://").await;
}

/// Three poison messages dead-lettered by the worker's path; then one is
/// redriven and one deleted by its id through the API, and the third stays
/// listed under the same id. Unknown ids answer 404 in the error shape; the
/// routes need the token.
async fn one_dead_letter_is_redriven_or_deleted_by_its_id(broker: &str) {
    let fleet = spawn_fleet_on(broker, 0).await;
    let bodies: Vec<String> = (0..3).map(|i| format!("poison {i} {{")).collect();
    for body in &bodies {
        fleet.publish_raw(body.as_bytes()).await;
        let delivery = take_within(
            fleet.backends.broker.as_ref(),
            Lane(0),
            Duration::from_secs(30),
        )
        .await
        .expect("the poison message");
        delivery.dead_letter("not a job message").await.unwrap();
    }
    let listing = wait_listing(&fleet, Duration::from_secs(30), |messages| {
        messages.len() == 3
    })
    .await;
    let id_of = |preview: &str| {
        listing["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["preview"] == preview)
            .unwrap_or_else(|| panic!("{preview} listed: {listing}"))["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (redriven, deleted, kept) = (id_of(&bodies[0]), id_of(&bodies[1]), id_of(&bodies[2]));

    let request = |method: reqwest::Method, path: String| {
        fleet
            .client
            .request(method, fleet.url(&path))
            .bearer_auth(TOKEN)
    };
    let response = fleet
        .client
        .delete(fleet.url(&format!("/v1/dead-letters/{deleted}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "the routes need the token");
    for (method, path) in [
        (reqwest::Method::POST, "/v1/dead-letters/no-such-id/redrive"),
        (reqwest::Method::DELETE, "/v1/dead-letters/no-such-id"),
    ] {
        let response = request(method, path.to_string()).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], "not_found", "{error}");
    }

    let response = request(
        reqwest::Method::POST,
        format!("/v1/dead-letters/{redriven}/redrive"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"moved": 1}));
    let back = take_within(
        fleet.backends.broker.as_ref(),
        Lane(0),
        Duration::from_secs(30),
    )
    .await
    .expect("the redriven message is on lane 0");
    assert_eq!(
        (&back.body[..], back.attempt),
        (bodies[0].as_bytes(), 1),
        "a first delivery"
    );
    back.ack().await.unwrap();

    let response = request(
        reqwest::Method::DELETE,
        format!("/v1/dead-letters/{deleted}"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"deleted": 1})
    );
    let response = request(
        reqwest::Method::DELETE,
        format!("/v1/dead-letters/{deleted}"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 404, "deleted means gone");

    let listing = wait_listing(&fleet, Duration::from_secs(30), |messages| {
        messages.len() == 1
    })
    .await;
    assert_eq!(listing["messages"][0]["id"], kept.as_str(), "{listing}");
    assert_eq!(listing["messages"][0]["preview"], bodies[2].as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_one_dead_letter_is_redriven_or_deleted_by_its_id() {
    one_dead_letter_is_redriven_or_deleted_by_its_id(&amqp_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_one_dead_letter_is_redriven_or_deleted_by_its_id() {
    one_dead_letter_is_redriven_or_deleted_by_its_id("sqs://").await;
}
