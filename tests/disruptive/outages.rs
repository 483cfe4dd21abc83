//! Backends that vanish, tried as an operator would: RabbitMQ stopped for
//! 20 s under idle workers (they must use next to no CPU, log a handful of
//! lines, stop promptly on SIGTERM and carry on when it returns) and Redis
//! flushed in the middle of a burst (every job still ends `succeeded`, once),
//! and S3 unreachable (SIGSTOPped) while a zip uploads (it lands, once, when
//! S3 returns).
//! In the disruptive binary: it stops services other tests use.

use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant};
use zipfleet_shared::status::{JobState, JobStatus};
use zipfleet_tests::fleet::{amqp_url, spawn_fleet_on, Fleet, TOKEN};
use zipfleet_tests::http::{Route, TestServer};
use zipfleet_tests::images;

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

/// Run a service's control command, time-limited (rabbitmqctl can hang while a node is half up).
fn run(program: &str, args: &[&str]) {
    let status = Command::new("timeout")
        .arg("120")
        .arg(program)
        .args(args)
        .status()
        .unwrap_or_else(|err| panic!("{program} runs: {err}"));
    assert!(status.success(), "{program} {args:?} failed");
}

/// User + system CPU seconds a process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the worker is running");
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn line_count(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path)
        .map(|text| text.lines().count())
        .unwrap_or(0)
}

async fn code_of(url: &str) -> u16 {
    match reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
    {
        Ok(response) => response.status().as_u16(),
        Err(_) => 0,
    }
}

async fn wait_for_code(url: &str, code: u16, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    while code_of(url).await != code {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{url} never answered {code}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The status, tolerating a status store that lost it for a while.
async fn status_if_known(fleet: &Fleet, job_id: &str) -> Option<JobStatus> {
    let response = fleet
        .client
        .get(fleet.url(&format!("/v1/jobs/{job_id}")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .ok()?;
    if response.status() == 200 {
        response.json().await.ok()
    } else {
        None
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_workers_wait_out_a_broker_outage_quietly() {
    let _alone = crate::alone().await;
    let mut fleet = spawn_fleet_on(&amqp_url(), 0).await;
    let dir = tempfile::tempdir().unwrap();
    let logs = [dir.path().join("w0.log"), dir.path().join("w1.log")];
    let workers = [
        fleet.add_worker_logging(Some(&logs[0]), Some("info")),
        fleet.add_worker_logging(Some(&logs[1]), Some("info")),
    ];
    for worker in workers {
        wait_for_code(
            &format!("{}/readyz", fleet.worker_endpoint(worker)),
            200,
            Duration::from_secs(30),
        )
        .await;
    }
    let pid = fleet.worker_pid(workers[0]);
    let (cpu_before, lines_before) = (cpu_seconds(pid), line_count(&logs[0]));

    run("rabbitmqctl", &["stop_app"]);
    let outage_started = Instant::now();
    let outage = std::panic::AssertUnwindSafe(async {
        wait_for_code(
            &format!("{}/readyz", fleet.worker_endpoint(workers[0])),
            503,
            Duration::from_secs(15),
        )
        .await;
        assert_eq!(
            code_of(&format!("{}/healthz", fleet.worker_endpoint(workers[0]))).await,
            200,
            "waiting out an outage is not being stuck"
        );

        // SIGTERM one worker in the middle of the outage: it must not wait for the broker.
        tokio::time::sleep(Duration::from_secs(8)).await;
        fleet.signal_worker(workers[1]);
        let signalled = Instant::now();
        while !fleet.worker_exited(workers[1]) {
            assert!(
                signalled.elapsed() < Duration::from_secs(10),
                "a SIGTERM'd worker did not exit during the outage"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let exit_after = signalled.elapsed();

        tokio::time::sleep(Duration::from_secs(20).saturating_sub(outage_started.elapsed())).await;
        let cpu = cpu_seconds(pid) - cpu_before;
        let lines = line_count(&logs[0]) - lines_before;
        eprintln!("broker outage of {:.1} s: idle worker used {cpu:.2} s CPU, wrote {lines} log lines; SIGTERM exit after {:.2} s", outage_started.elapsed().as_secs_f64(), exit_after.as_secs_f64());
        (cpu, lines, exit_after)
    });
    let measured = futures::FutureExt::catch_unwind(outage).await;
    run("rabbitmqctl", &["start_app"]);
    run("rabbitmqctl", &["await_startup"]);
    let (cpu, lines, exit_after) =
        measured.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    assert!(
        cpu < 0.5,
        "an idle worker used {cpu:.2} s of CPU during a 20 s outage"
    );
    assert!(
        lines < 20,
        "an idle worker wrote {lines} log lines during a 20 s outage:\n{}",
        std::fs::read_to_string(&logs[0]).unwrap()
    );
    assert!(
        exit_after < Duration::from_secs(3),
        "SIGTERM during the outage took {exit_after:?}"
    );

    // The survivor carries on by itself.
    wait_for_code(
        &format!("{}/readyz", fleet.worker_endpoint(workers[0])),
        200,
        Duration::from_secs(60),
    )
    .await;
    let server = TestServer::start().await;
    let job_id = unique("after-outage");
    let url = server.image(
        &format!("/{job_id}.jpg"),
        "image/jpeg",
        images::jpeg(300, 200, 4),
    );
    fleet
        .post_until_accepted(
            &json!({"job_id": job_id, "images": [{"id": "1", "label": "a", "url": url}]}),
        )
        .await;
    let status = fleet.wait_final(&job_id, Duration::from_secs(90)).await;
    assert_eq!(status.state, JobState::Succeeded, "{status:?}");
    assert_eq!(status.attempt, 1, "{status:?}");
    let text = std::fs::read_to_string(&logs[0]).unwrap();
    assert!(
        text.contains("backend reachable again"),
        "the end of the outage is logged:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_finish_once_when_redis_loses_everything_mid_burst() {
    let _alone = crate::alone().await;
    let fleet = spawn_fleet_on(&amqp_url(), 2).await;
    let server = TestServer::start().await;
    let mut ids = Vec::new();
    for n in 0..8u8 {
        let job_id = unique(&format!("flush{n}"));
        let slow = server.route(
            &format!("/{job_id}/slow.jpg"),
            Route::Drip {
                body: images::jpeg(40, 40, n),
                interval: Duration::from_millis(2),
            },
        );
        let quick = server.image(
            &format!("/{job_id}/quick.jpg"),
            "image/jpeg",
            images::jpeg(320, 240, n),
        );
        let body = json!({"job_id": job_id, "images": [{"id": "slow", "label": "a", "url": slow}, {"id": "quick", "label": "b", "url": quick}]});
        assert_eq!(fleet.post_job(&body).await.status(), 202);
        ids.push(job_id);
    }
    // Some jobs are running, the rest queued, when Redis forgets everything.
    fleet
        .wait_for(&ids[0], Duration::from_secs(60), |s| {
            s.state == JobState::Running
        })
        .await;
    run("redis-cli", &["-p", "6379", "FLUSHALL"]);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    for job_id in &ids {
        loop {
            if let Some(status) = status_if_known(&fleet, job_id).await {
                if status.state.is_final() {
                    assert_eq!(status.state, JobState::Succeeded, "{job_id}: {status:?}");
                    assert_eq!(status.result.as_ref().unwrap().images, 2, "{status:?}");
                    break;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{job_id} never reached a final state after the flush"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        assert_eq!(fleet.zip_count(job_id).await, 1, "{job_id}");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let completions = fleet
        .drain_queue(fleet.config.completed_queue.as_deref().unwrap())
        .await;
    for job_id in &ids {
        let copies = completions
            .iter()
            .filter(|raw| {
                serde_json::from_slice::<JobStatus>(raw).is_ok_and(|s| &s.job_id == job_id)
            })
            .count();
        assert!(copies >= 1, "{job_id} has no completion message");
    }
}

/// The SeaweedFS server processes (`weed mini`/`server`/`s3`), found by their command line.
fn seaweed_pids() -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|arg| String::from_utf8_lossy(arg).into_owned())
            .collect();
        let is_weed = args
            .first()
            .is_some_and(|program| program.rsplit('/').next() == Some("weed"));
        if is_weed
            && args
                .iter()
                .skip(1)
                .any(|arg| matches!(arg.as_str(), "mini" | "server" | "s3"))
        {
            pids.push(pid);
        }
    }
    pids
}

/// SIGSTOPs processes; SIGCONTs them when dropped (a panic included). A
/// stopped server still accepts TCP connections but never answers.
struct Frozen(Vec<u32>);

impl Frozen {
    fn new(pids: Vec<u32>) -> Self {
        for pid in &pids {
            run("kill", &["-STOP", &pid.to_string()]);
        }
        Self(pids)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        for pid in &self.0 {
            let _ = Command::new("kill")
                .args(["-CONT", &pid.to_string()])
                .status();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zip_uploaded_while_s3_is_down_lands_once_it_returns() {
    let _alone = crate::alone().await;
    let pids = seaweed_pids();
    assert!(!pids.is_empty(), "no SeaweedFS (`weed`) process found: this test stops the S3 server infra/services.sh starts");
    let mut fleet = spawn_fleet_on(&amqp_url(), 0).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("worker.log");
    // Cache off: its reads and writes (each bounded by its own timeout) would
    // meet the outage first; here the zip's upload is what must wait it out.
    fleet.add_worker_with(Some(&log), Some("info"), &[("ZIPFLEET_CACHE", "off")]);
    let server = TestServer::start().await;
    let job_id = unique("s3-down");
    // One image at once, one trickling in for about 4 s: S3 goes away between them.
    let quick = server.image(
        &format!("/{job_id}/quick.jpg"),
        "image/jpeg",
        images::jpeg(320, 240, 6),
    );
    let slow_body = images::jpeg(40, 40, 6);
    let interval = (Duration::from_secs(4) / slow_body.len() as u32).max(Duration::from_millis(1));
    let slow = server.route(
        &format!("/{job_id}/slow.jpg"),
        Route::Drip {
            body: slow_body,
            interval,
        },
    );
    let body = json!({"job_id": job_id, "images": [{"id": "quick", "label": "a", "url": quick}, {"id": "slow", "label": "b", "url": slow}]});
    assert_eq!(fleet.post_job(&body).await.status(), 202);
    fleet
        .wait_for(&job_id, Duration::from_secs(60), |s| {
            s.state == JobState::Running && s.progress.done >= 1
        })
        .await;

    let frozen = Frozen::new(pids);
    let outage_started = Instant::now();
    let outage = std::panic::AssertUnwindSafe(async {
        // The last image renders, the zip is built — and its upload cannot complete.
        let status = fleet
            .wait_for(&job_id, Duration::from_secs(30), |s| {
                s.progress.done == 2 || s.state.is_final()
            })
            .await;
        assert_eq!(status.state, JobState::Running, "{status:?}");
        tokio::time::sleep(Duration::from_secs(6)).await;
        let status = fleet.get_status(&job_id).await;
        assert_eq!(
            status.state,
            JobState::Running,
            "the job cannot finish while S3 is down: {status:?}"
        );
    });
    let measured = futures::FutureExt::catch_unwind(outage).await;
    drop(frozen);
    let outage = outage_started.elapsed();
    let resumed_at = zipfleet_shared::status::now();
    measured.unwrap_or_else(|panic| {
        eprintln!(
            "worker log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::panic::resume_unwind(panic)
    });

    let status = fleet.wait_final(&job_id, Duration::from_secs(120)).await;
    assert_eq!(status.state, JobState::Succeeded, "{status:?}");
    assert_eq!(status.result.as_ref().unwrap().images, 2, "{status:?}");
    assert_eq!(
        status.attempt, 1,
        "the upload waited the outage out in place: {status:?}"
    );
    assert_eq!(fleet.zip_count(&job_id).await, 1);
    let finished_after = (status.finished_at.unwrap() - resumed_at).num_milliseconds();
    assert!(
        finished_after > -500,
        "the job finished {finished_after} ms before S3 came back"
    );
    let zip = fleet.download(&status.result.as_ref().unwrap().url).await;
    assert!(zip.starts_with(b"PK"), "the uploaded zip downloads");
    let text = std::fs::read_to_string(&log).unwrap();
    eprintln!(
        "S3 stopped (SIGSTOP) for {:.1} s during the upload: the job succeeded {:.1} s after S3 came back, attempt 1, one zip; the worker logged the outage: {}",
        outage.as_secs_f64(),
        finished_after as f64 / 1000.0,
        text.contains("uploading a zip")
    );
}
