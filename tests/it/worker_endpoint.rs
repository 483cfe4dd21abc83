//! The worker's own endpoint and log format, and ECS scale-in protection:
//! `/healthz` follows the job loop (a wedged loop fails it), `/readyz` the
//! backends, `/metrics` counts a finished job's images by outcome; a worker
//! whose output goes to a file writes one JSON object a line, with no colour
//! codes; the ECS agent is asked for protection while jobs run and an agent
//! that errors never fails a job.

use async_trait::async_trait;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zipfleet_backends::Backends;
use zipfleet_shared::broker::{Broker, BrokerError, Delivery, Lane, LaneDepth};
use zipfleet_shared::config::{BackendConfig, Limits, ReportSettings, SourcePolicy, WorkerTuning};
use zipfleet_shared::status::JobState;
use zipfleet_shared::status_store::memory::MemoryStatusStore;
use zipfleet_shared::store::file::FileStore;
use zipfleet_tests::fleet::{amqp_url, spawn_fleet_on};
use zipfleet_tests::http::{Route, TestServer};
use zipfleet_tests::images;
use zipfleet_worker::app::{build_worker, WorkerSettings};
use zipfleet_worker::ecs::Protection;

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

async fn get(url: &str) -> (u16, String) {
    match reqwest::get(url).await {
        Ok(response) => {
            let code = response.status().as_u16();
            (code, response.text().await.unwrap_or_default())
        }
        Err(_) => (0, String::new()),
    }
}

async fn wait_for_code(url: &str, code: u16, limit: Duration) -> String {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let (got, body) = get(url).await;
        if got == code {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{url} never answered {code} (last: {got} {body})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn metric(text: &str, line_start: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            line.strip_prefix(line_start)
                .map(|rest| rest.trim().parse::<f64>().unwrap())
        })
        .unwrap_or_else(|| panic!("{line_start} not in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_answers_and_counts_and_the_log_is_json_lines() {
    let mut fleet = spawn_fleet_on(&amqp_url(), 0).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("worker.log");
    let worker = fleet.add_worker_logging(Some(&log), Some("info"));
    let endpoint = fleet.worker_endpoint(worker).to_string();

    let health = wait_for_code(&format!("{endpoint}/healthz"), 200, Duration::from_secs(30)).await;
    assert!(health.contains("\"ok\""), "{health}");
    let ready = wait_for_code(&format!("{endpoint}/readyz"), 200, Duration::from_secs(30)).await;
    let ready: serde_json::Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(
        ready["checks"],
        json!({"broker": "ok", "store": "ok", "status": "ok"})
    );

    let server = TestServer::start().await;
    let job_id = unique("metrics");
    let ok1 = server.image(
        &format!("/{job_id}/1.jpg"),
        "image/jpeg",
        images::jpeg(300, 200, 1),
    );
    let ok2 = server.image(
        &format!("/{job_id}/2.png"),
        "image/png",
        images::png(200, 300, 2),
    );
    let missing = server.route(
        &format!("/{job_id}/gone.jpg"),
        Route::Body {
            status: 404,
            content_type: "text/plain",
            body: b"no".to_vec(),
        },
    );
    let body = json!({"job_id": job_id, "images": [
        {"id": "1", "label": "a", "url": ok1}, {"id": "2", "label": "b", "url": ok2}, {"id": "3", "label": "b", "url": missing}]});
    assert_eq!(fleet.post_job(&body).await.status(), 202);
    let status = fleet.wait_final(&job_id, Duration::from_secs(60)).await;
    assert_eq!(status.state, JobState::Succeeded, "{status:?}");

    let (code, text) = get(&format!("{endpoint}/metrics")).await;
    assert_eq!(code, 200);
    assert_eq!(
        metric(&text, "zipfleet_worker_images_total{outcome=\"ok\"}"),
        2.0
    );
    assert_eq!(
        metric(
            &text,
            "zipfleet_worker_images_total{outcome=\"http_status\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "zipfleet_worker_jobs_finished_total{state=\"succeeded\"}"
        ),
        1.0
    );
    assert_eq!(metric(&text, "zipfleet_worker_jobs_running"), 0.0);
    assert_eq!(metric(&text, "zipfleet_worker_ready"), 1.0);
    assert!(
        metric(&text, "zipfleet_worker_download_bytes_total") > 1000.0,
        "{text}"
    );
    assert!(
        metric(
            &text,
            "zipfleet_worker_stage_seconds_total{stage=\"render\"}"
        ) > 0.0,
        "{text}"
    );
    assert!(metric(&text, "zipfleet_worker_memory_budget_bytes") > 0.0);

    fleet.terminate_worker(worker);
    let raw = std::fs::read(&log).unwrap();
    assert!(
        !raw.contains(&0x1b),
        "no terminal escape codes in a log file"
    );
    let text = String::from_utf8(raw).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|err| panic!("not a JSON line ({err}): {line}"))
        })
        .collect();
    assert!(lines.len() >= 3, "{text}");
    let job_lines: Vec<_> = lines
        .iter()
        .filter(|line| line.to_string().contains(&job_id))
        .collect();
    assert!(
        job_lines
            .iter()
            .any(|line| line["fields"]["message"] == "job finished"),
        "the job's lines carry its id:\n{text}"
    );
    assert!(
        job_lines
            .iter()
            .all(|line| line["span"]["job_id"] == job_id.as_str()
                || line["spans"].to_string().contains(&job_id)),
        "{text}"
    );
}

/// A broker whose take blocks its thread (a blocking call in async code:
/// the classic way a job loop wedges while HTTP on other threads still answers).
struct WedgingBroker;

#[async_trait]
impl Broker for WedgingBroker {
    fn kind(&self) -> &'static str {
        "wedging"
    }
    fn lanes(&self) -> u16 {
        1
    }
    async fn publish_job(&self, _: Lane, _: &str, _: &[u8]) -> Result<(), BrokerError> {
        Ok(())
    }
    async fn publish_completion(&self, _: &str, _: &[u8]) -> Result<(), BrokerError> {
        Ok(())
    }
    async fn take(&self, _: Lane, _: Duration) -> Result<Option<Delivery>, BrokerError> {
        tokio::time::sleep(Duration::from_millis(500)).await;
        std::thread::sleep(Duration::from_secs(8));
        Err(BrokerError::Unavailable("woke up".into()))
    }
    async fn lane_depths(&self) -> Result<Vec<LaneDepth>, BrokerError> {
        Ok(Vec::new())
    }
    async fn check(&self) -> Result<(), BrokerError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn healthz_fails_when_the_job_loop_is_wedged() {
    let dir = tempfile::tempdir().unwrap();
    let backends = Backends {
        broker: Arc::new(WedgingBroker),
        store: Arc::new(FileStore::new(dir.path()).unwrap()),
        status: Arc::new(MemoryStatusStore::new()),
    };
    let tuning = WorkerTuning {
        liveness_timeout: Duration::from_secs(2),
        ..WorkerTuning::default()
    };
    let settings = WorkerSettings {
        backend: BackendConfig::embedded(dir.path()),
        policy: SourcePolicy::default(),
        limits: Limits::default(),
        tuning,
        report: ReportSettings::default(),
    };
    let worker = build_worker(&backends, &settings).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let _endpoint = zipfleet_worker::endpoint::spawn(
        listener,
        worker.clone(),
        tokio_util::sync::CancellationToken::new(),
    )
    .unwrap();
    let running = worker.clone();
    let _loop = tokio::spawn(async move { running.run(std::future::pending()).await });

    // Probed with plain blocking sockets from this thread, as a kubelet would:
    // the worker's own runtime is the thing being wedged.
    let (code, body) = blocking_get(&address, "/healthz");
    assert_eq!(code, 200, "a loop that just started is alive: {body}");
    let started = std::time::Instant::now();
    loop {
        let (code, body) = blocking_get(&address, "/healthz");
        if code == 503 {
            assert!(body.contains("stuck"), "{body}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "/healthz still {code} {body} with the loop wedged"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `GET path` over a plain socket, with a short timeout: (status, body).
fn blocking_get(address: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("the endpoint accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let code = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

/// A stand-in for the ECS agent: records each PUT body and answers `status`.
struct FakeAgent {
    uri: String,
    calls: Arc<Mutex<Vec<serde_json::Value>>>,
}

async fn fake_agent(status: u16) -> FakeAgent {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}/api/task-id", listener.local_addr().unwrap());
    let calls: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let recorded = calls.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let recorded = recorded.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = stream.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buffer).to_string();
                    let Some(head_end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let length = text[..head_end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if buffer.len() < head_end + 4 + length {
                        continue;
                    }
                    assert!(
                        text.starts_with("PUT /api/task-id/task-protection/v1/state "),
                        "{text}"
                    );
                    let body: serde_json::Value =
                        serde_json::from_slice(&buffer[head_end + 4..head_end + 4 + length])
                            .unwrap();
                    recorded.lock().unwrap().push(body);
                    let answer = r#"{"protection":{"ProtectionEnabled":true}}"#;
                    let reply = format!("HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}", answer.len());
                    let _ = stream.write_all(reply.as_bytes()).await;
                    buffer.clear();
                }
            });
        }
    });
    FakeAgent { uri, calls }
}

#[tokio::test]
async fn ecs_protection_is_turned_on_renewed_and_off_in_order() {
    let agent = fake_agent(200).await;
    let protection = Protection::with_renewal(agent.uri.clone(), Duration::from_millis(300));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        agent.calls.lock().unwrap().is_empty(),
        "an idle worker asks for nothing"
    );
    protection.set_busy(true);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    protection.set_busy(false);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let calls = agent.calls.lock().unwrap().clone();
    let enabled: Vec<bool> = calls
        .iter()
        .map(|c| c["ProtectionEnabled"].as_bool().unwrap())
        .collect();
    assert!(
        enabled.len() >= 3,
        "on, at least one renewal, off: {calls:?}"
    );
    assert!(
        enabled[..enabled.len() - 1].iter().all(|on| *on),
        "{calls:?}"
    );
    assert!(!enabled[enabled.len() - 1], "off when idle: {calls:?}");
    assert!(
        calls[0]["ExpiresInMinutes"].as_u64().unwrap() >= 60,
        "expiry longer than a job: {calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ecs_agent_that_errors_never_fails_a_job() {
    let agent = fake_agent(500).await;
    let mut fleet = spawn_fleet_on(&amqp_url(), 0).await;
    let worker = fleet.add_worker_with(None, None, &[("ECS_AGENT_URI", agent.uri.as_str())]);
    let server = TestServer::start().await;
    let job_id = unique("ecs");
    let url = server.image(
        &format!("/{job_id}.jpg"),
        "image/jpeg",
        images::jpeg(200, 200, 5),
    );
    let body = json!({"job_id": job_id, "images": [{"id": "1", "label": "a", "url": url}]});
    assert_eq!(fleet.post_job(&body).await.status(), 202);
    let status = fleet.wait_final(&job_id, Duration::from_secs(60)).await;
    assert_eq!(status.state, JobState::Succeeded, "{status:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let calls = agent.calls.lock().unwrap().clone();
    assert_eq!(
        calls.first().map(|c| c["ProtectionEnabled"].clone()),
        Some(json!(true)),
        "asked for protection at the first job: {calls:?}"
    );
    fleet.terminate_worker(worker);
}
