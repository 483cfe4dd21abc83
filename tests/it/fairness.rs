//! Fair share on the real fleet (RabbitMQ, SQS, Redis, S3) and on the
//! embedded default: a tenant that posts late is not behind another's
//! backlog; a tenant alone uses every slot; a queued job's place in line
//! shrinks as jobs start; a `kill -9` in a two-tenant burst loses nothing
//! and leaves nothing held.
//!
//! Jobs here are one picture that the test's web server holds for a while,
//! so a job's length is known; starts are read from the status documents.

use chrono::{DateTime, Utc};
use serde_json::json;
use std::time::Duration;
use zipfleet_shared::status::{JobState, JobStatus};
use zipfleet_tests::fleet::{amqp_url, spawn_fleet_on, Fleet};
use zipfleet_tests::http::{Route, TestServer};
use zipfleet_tests::{images, spec, test_settings, Embedded};

const LIMIT: Duration = Duration::from_secs(120);

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// A job of one picture the server holds for `hold` (a distinct URL each).
fn held_job(server: &TestServer, id: &str, tenant: &str, hold: Duration) -> serde_json::Value {
    let url = server.route(
        &format!("/{id}.png"),
        Route::Slow {
            content_type: "image/png",
            body: images::png(32, 24, 7),
            delay: hold,
        },
    );
    json!({"job_id": id, "tenant": tenant, "images": [{"id": "1", "label": "a", "url": url}]})
}

fn started(status: &JobStatus) -> DateTime<Utc> {
    status.started_at.expect("a finished job started")
}

async fn one_slot_workers(fleet: &mut Fleet, count: usize) {
    for _ in 0..count {
        fleet.add_worker_with(None, None, &[("ZIPFLEET_CONCURRENCY", "1")]);
    }
}

/// A has a backlog; B posts two jobs once A is running. Under least work
/// in flight, B's first job is the next to start and B's second starts as
/// soon as B's first is done — first come, first served would start every
/// one of A's waiting jobs before them.
async fn a_late_tenant_is_not_behind_anothers_backlog(broker: &str) {
    let mut fleet = spawn_fleet_on(broker, 0).await;
    let server = TestServer::start().await;
    let hold = Duration::from_millis(1500);
    let (a, b) = (unique("a"), unique("b"));
    let a_ids: Vec<String> = (0..8).map(|i| format!("{a}-{i}")).collect();
    for id in &a_ids {
        assert_eq!(
            fleet
                .post_job(&held_job(&server, id, &a, hold))
                .await
                .status(),
            202
        );
    }
    one_slot_workers(&mut fleet, 2).await;
    fleet
        .wait_for(&a_ids[1], LIMIT, |s| s.state != JobState::Queued)
        .await;
    let b_ids: Vec<String> = (0..2).map(|i| format!("{b}-{i}")).collect();
    let posted = zipfleet_shared::status::now();
    for id in &b_ids {
        assert_eq!(
            fleet
                .post_job(&held_job(&server, id, &b, hold))
                .await
                .status(),
            202
        );
    }
    let mut a_done = Vec::new();
    for id in &a_ids {
        a_done.push(fleet.wait_final(id, LIMIT).await);
    }
    let b_done = [
        fleet.wait_final(&b_ids[0], LIMIT).await,
        fleet.wait_final(&b_ids[1], LIMIT).await,
    ];
    let a_started_before = |at: DateTime<Utc>| {
        a_done
            .iter()
            .filter(|s| started(s) > posted && started(s) < at)
            .count()
    };
    // One A job may slip in: a worker that asked for the order just before B posted.
    assert!(
        a_started_before(started(&b_done[0])) <= 1,
        "B's first job waited for {} of A's",
        a_started_before(started(&b_done[0]))
    );
    assert!(
        a_started_before(started(&b_done[1])) <= 2,
        "B's second job waited for {} of A's (first come, first served: 6)",
        a_started_before(started(&b_done[1]))
    );
    assert!(a_done
        .iter()
        .chain(&b_done)
        .all(|s| s.state == JobState::Succeeded));
}

/// Alone, a tenant gets every slot: two one-slot workers run its jobs two
/// at a time, and no slot idles while one of its jobs waits.
async fn a_lone_tenant_uses_the_whole_fleet(broker: &str) {
    let mut fleet = spawn_fleet_on(broker, 0).await;
    let server = TestServer::start().await;
    let hold = Duration::from_millis(1200);
    let tenant = unique("alone");
    let ids: Vec<String> = (0..6).map(|i| format!("{tenant}-{i}")).collect();
    for id in &ids {
        assert_eq!(
            fleet
                .post_job(&held_job(&server, id, &tenant, hold))
                .await
                .status(),
            202
        );
    }
    one_slot_workers(&mut fleet, 2).await;
    let mut done = Vec::new();
    for id in &ids {
        done.push(fleet.wait_final(id, LIMIT).await);
    }
    let first = done.iter().map(started).min().unwrap();
    let last = done.iter().map(|s| s.finished_at.unwrap()).max().unwrap();
    let busy: f64 = done
        .iter()
        .map(|s| (s.finished_at.unwrap() - started(s)).num_milliseconds() as f64)
        .sum();
    let span = (last - first).num_milliseconds() as f64;
    assert!(
        busy / (2.0 * span) > 0.8,
        "both slots busy: {:.0} % of {span} ms",
        100.0 * busy / (2.0 * span)
    );
}

/// A queued job's place in line shrinks as the jobs ahead of it start.
async fn the_place_in_line_shrinks_as_jobs_start(broker: &str) {
    let mut fleet = spawn_fleet_on(broker, 0).await;
    let server = TestServer::start().await;
    let tenant = unique("line");
    let ids: Vec<String> = (0..5).map(|i| format!("{tenant}-{i}")).collect();
    for id in &ids {
        let job = held_job(&server, id, &tenant, Duration::from_millis(700));
        assert_eq!(fleet.post_job(&job).await.status(), 202);
    }
    let last = &ids[4];
    let queued = fleet.get_status(last).await;
    let place = queued.queue.expect("a queued job says where it stands");
    assert_eq!(place.jobs_ahead, 4);
    one_slot_workers(&mut fleet, 1).await;
    let mut seen = vec![place.jobs_ahead];
    loop {
        let status = fleet.get_status(last).await;
        match status.queue {
            Some(place) if status.state == JobState::Queued => seen.push(place.jobs_ahead),
            _ => break,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        seen.windows(2).all(|pair| pair[1] <= pair[0]),
        "never grows: {seen:?}"
    );
    assert!(
        seen.contains(&0) || seen.contains(&1),
        "reaches the front: {seen:?}"
    );
    assert!(seen.len() > 2, "seen shrinking: {seen:?}");
    assert_eq!(
        fleet.wait_final(last, LIMIT).await.state,
        JobState::Succeeded
    );
}

/// Two tenants burst; a worker is killed mid-way and replaced. Every job
/// succeeds once with one zip, and nothing stays held on any lane.
async fn a_kill_9_in_a_two_tenant_burst_loses_nothing(broker: &str) {
    let mut fleet = spawn_fleet_on(broker, 0).await;
    let server = TestServer::start().await;
    let hold = Duration::from_millis(800);
    let (a, b) = (unique("ka"), unique("kb"));
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push((format!("{a}-{i}"), a.clone()));
    }
    for i in 0..4 {
        ids.push((format!("{b}-{i}"), b.clone()));
    }
    for (id, tenant) in &ids {
        assert_eq!(
            fleet
                .post_job(&held_job(&server, id, tenant, hold))
                .await
                .status(),
            202
        );
    }
    let victim = fleet.add_worker();
    fleet.add_worker();
    fleet
        .wait_for(&ids[0].0, LIMIT, |s| s.state != JobState::Queued)
        .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    fleet.kill_worker(victim);
    fleet.add_worker();
    for (id, _) in &ids {
        let status = fleet.wait_final(id, LIMIT).await;
        assert_eq!(status.state, JobState::Succeeded, "{status:?}");
        assert_eq!(fleet.zip_count(id).await, 1);
    }
    // Nothing left on any lane, and nothing taken and unsettled.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let depth = fleet.backends.broker.queue_depth().await.unwrap();
        if depth.ready == 0 && depth.in_flight.unwrap_or(0) == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "messages left: {depth:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

macro_rules! on_each_broker {
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

on_each_broker!(
    a_late_tenant_is_not_behind_anothers_backlog,
    a_lone_tenant_uses_the_whole_fleet,
    the_place_in_line_shrinks_as_jobs_start,
    a_kill_9_in_a_two_tenant_burst_loses_nothing,
);

/// The embedded default (in-process queue and status) honours `tenant`:
/// one slot, A's backlog of four, then B's one job runs second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_default_honours_the_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    settings.tuning.concurrency = 1;
    let fleet = Embedded::start(dir.path(), &settings);
    let server = TestServer::start().await;
    let hold = Duration::from_millis(400);
    for i in 0..4 {
        let job = held_job(&server, &format!("ea-{i}"), "a", hold);
        fleet.submit(&format!("ea-{i}"), &spec(job)).await;
    }
    fleet.wait_started("ea-0", LIMIT).await;
    fleet
        .submit("eb-0", &spec(held_job(&server, "eb-0", "b", hold)))
        .await;
    let b = fleet.wait("eb-0", LIMIT).await;
    let mut a_before = 0;
    for i in 0..4 {
        let a = fleet.wait(&format!("ea-{i}"), LIMIT).await;
        if started(&a) < started(&b) {
            a_before += 1;
        }
    }
    assert!(
        a_before <= 2,
        "B waited for {a_before} of A's jobs (first come, first served: 4)"
    );
    fleet.stop().await;
}
