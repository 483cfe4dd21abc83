//! RabbitMQ restarts during a run: no job is lost, and the API and the
//! workers recover without being restarted. In the disruptive binary: it
//! stops the broker every other RabbitMQ test uses.

use serde_json::json;
use std::process::Command;
use std::time::Duration;
use zipfleet_shared::status::JobState;
use zipfleet_tests::fleet::spawn_fleet;
use zipfleet_tests::http::{Route, TestServer};
use zipfleet_tests::images;

fn rabbitmqctl(args: &[&str]) {
    // Time-limited: rabbitmqctl can hang while a node is half up.
    let status = Command::new("timeout")
        .arg("120")
        .arg("rabbitmqctl")
        .args(args)
        .status()
        .expect("rabbitmqctl runs");
    assert!(status.success(), "rabbitmqctl {args:?} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_survive_a_broker_restart() {
    let _alone = crate::alone().await;
    let fleet = spawn_fleet(2).await;
    let server = TestServer::start().await;
    let image = |name: &str, seed: u8| {
        server.image(
            &format!("/{name}.jpg"),
            "image/jpeg",
            images::jpeg(320, 240, seed),
        )
    };

    // A job that is running (slow image) when the broker goes down.
    let slow = server.route(
        "/slow.jpg",
        Route::Drip {
            body: images::jpeg(40, 40, 9),
            interval: Duration::from_millis(4),
        },
    );
    let in_flight = json!({"job_id": "restart-inflight-".to_string() + &uuid::Uuid::new_v4().simple().to_string()[..8],
        "images": [{"id": "slow", "label": "a", "url": slow}, {"id": "x", "label": "b", "url": image("x", 1)}]});
    let in_flight_id = in_flight["job_id"].as_str().unwrap().to_string();
    assert_eq!(fleet.post_job(&in_flight).await.status(), 202);
    fleet
        .wait_for(&in_flight_id, Duration::from_secs(60), |s| {
            s.state == JobState::Running
        })
        .await;

    rabbitmqctl(&["stop_app"]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    rabbitmqctl(&["start_app"]);
    rabbitmqctl(&["await_startup"]);

    // The API reconnects on its own: a client retrying a 503 gets its 202.
    let after_id = "restart-after-".to_string() + &uuid::Uuid::new_v4().simple().to_string()[..8];
    let after =
        json!({"job_id": after_id, "images": [{"id": "1", "label": "a", "url": image("y", 2)}]});
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let status = fleet.post_job(&after).await.status();
        if status == 202 {
            break;
        }
        assert_eq!(status, 503, "while the broker recovers the API answers 503");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the API did not recover"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // The workers reconnect on their own and both jobs end, once each.
    for job_id in [&in_flight_id, &after_id] {
        let status = fleet.wait_final(job_id, Duration::from_secs(120)).await;
        assert_eq!(status.state, JobState::Succeeded, "{job_id}: {status:?}");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let completions = fleet
        .drain_queue(fleet.config.completed_queue.as_deref().unwrap())
        .await;
    let ids: Vec<String> = completions
        .iter()
        .map(|raw| {
            serde_json::from_slice::<serde_json::Value>(raw).unwrap()["job_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        ids.contains(&in_flight_id) && ids.contains(&after_id),
        "{ids:?}"
    );
}
