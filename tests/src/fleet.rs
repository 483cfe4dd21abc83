//! `spawn_fleet()`: the production shape on the real services — the API
//! in-process on a free port, workers as real `zipfleet-worker` processes (so
//! a test can kill one), RabbitMQ, SeaweedFS (S3) and Redis. Every fleet gets
//! its own queue names and key prefix, so tests run in parallel.
//!
//! The services' addresses come from the environment `infra/test.sh` sets;
//! a test that cannot reach them fails (it never skips).

use lapin::options::{BasicAckOptions, BasicGetOptions};
use lapin::{Connection, ConnectionProperties};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use zipfleet_api::startup::{ApiSettings, Application};
use zipfleet_shared::accept::AcceptSettings;
use zipfleet_shared::config::{ApiPolicy, BackendConfig};
use zipfleet_shared::spec::SpecLimits;
use zipfleet_shared::status::JobStatus;

pub const TOKEN: &str = "test-token-5f1c";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

pub fn amqp_url() -> String {
    env_or(
        "ZIPFLEET_TEST_AMQP",
        "amqp://guest:guest@127.0.0.1:5672/%2f",
    )
}

/// The AWS SDK's settings for the test services (SeaweedFS for S3, moto for
/// SQS), unless the environment already has them (`infra/test.sh` exports
/// the same values).
pub fn aws_test_environment() {
    for (key, value) in [
        ("AWS_ACCESS_KEY_ID", "zipfleet"),
        ("AWS_SECRET_ACCESS_KEY", "zipfleet-secret"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:8333"),
        ("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:5055"),
    ] {
        if std::env::var_os(key).is_none() {
            // Tests set their own process environment before any thread reads it.
            std::env::set_var(key, value);
        }
    }
}

/// An S3 client on the test store (SeaweedFS), for what the object-store
/// trait does not do (versioned buckets, listing versions and uploads).
pub async fn s3_client() -> aws_sdk_s3::Client {
    aws_test_environment();
    let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let config = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// The SQS visibility timeout of test fleets: short, so that a killed
/// worker's job comes back quickly and long jobs need heartbeats.
pub const SQS_VISIBILITY: Duration = Duration::from_secs(4);

/// The configuration one fleet shares: unique queues, a unique prefix.
pub fn fleet_config(broker: &str) -> BackendConfig {
    aws_test_environment();
    let unique = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let bucket = env_or("ZIPFLEET_TEST_BUCKET", "zipfleet");
    let mut config = BackendConfig::embedded(std::path::Path::new("/tmp"));
    config.broker = broker.into();
    let sep = if broker.starts_with("sqs") { "-" } else { "." };
    config.jobs_queue = Some(format!("zipfleet{sep}jobs{sep}{unique}"));
    config.completed_queue = Some(format!("zipfleet{sep}completed{sep}{unique}"));
    config.dead_letter_queue = Some(format!("zipfleet{sep}jobs{sep}dlq{sep}{unique}"));
    config.store = format!("s3://{bucket}/test-{unique}");
    config.status = env_or("ZIPFLEET_TEST_REDIS", "redis://127.0.0.1:6379/0").into();
    // Fleets share one Redis: each keeps its statuses, fair-share ledger and
    // worker registry under its own prefix, as separate deployments would.
    config.status_prefix = format!("zipfleet-test-{unique}");
    config.max_deliveries = 3;
    config.sqs_visibility_timeout = SQS_VISIBILITY;
    config
}

pub struct Fleet {
    pub config: BackendConfig,
    pub api_url: String,
    pub client: reqwest::Client,
    pub backends: zipfleet_backends::Backends,
    workers: Vec<Child>,
    /// Each worker's endpoint (`/healthz`, `/readyz`, `/metrics`), by index.
    worker_endpoints: Vec<String>,
    stop_api: CancellationToken,
}

/// A free loopback port (bound and released; the worker binds it right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Start the API and `workers` worker processes.
pub async fn spawn_fleet(workers: usize) -> Fleet {
    spawn_fleet_on(&amqp_url(), workers).await
}

/// Start the API and `workers` worker processes on the broker at `broker_url`
/// (`amqp://…` or `sqs://`).
pub async fn spawn_fleet_on(broker_url: &str, workers: usize) -> Fleet {
    spawn_fleet_with(fleet_config(broker_url), workers).await
}

pub async fn spawn_fleet_with(config: BackendConfig, workers: usize) -> Fleet {
    let backends = zipfleet_backends::connect(&config)
        .await
        .expect("the fleet's services are reachable (run infra/test.sh)");
    let settings = ApiSettings {
        token: Some(TOKEN.into()),
        max_body_bytes: 1024 * 1024,
        spec_limits: SpecLimits { max_images: 500 },
        accept: AcceptSettings::from_config(&config, &ApiPolicy::default()),
        tombstone_ttl: ApiPolicy::default().erasure_tombstone_ttl,
        download_url_expiry: Duration::from_secs(600),
    };
    let app = Application::build("127.0.0.1:0", backends.clone(), settings)
        .await
        .unwrap();
    let api_url = format!("http://127.0.0.1:{}", app.port());
    let stop_api = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(stop_api.clone().cancelled_owned()));
    let mut fleet = Fleet {
        config,
        api_url,
        client: reqwest::Client::new(),
        backends,
        workers: Vec::new(),
        worker_endpoints: Vec::new(),
        stop_api,
    };
    for _ in 0..workers {
        fleet.add_worker();
    }
    fleet
}

impl Fleet {
    /// Start one more worker process.
    pub fn add_worker(&mut self) -> usize {
        self.add_worker_logging(None, None)
    }

    /// Start a worker whose log (stdout and stderr) goes to `log`, at `level`.
    pub fn add_worker_logging(
        &mut self,
        log: Option<&std::path::Path>,
        level: Option<&str>,
    ) -> usize {
        self.add_worker_with(log, level, &[])
    }

    /// Start a worker with extra environment variables.
    pub fn add_worker_with(
        &mut self,
        log: Option<&std::path::Path>,
        level: Option<&str>,
        extra_env: &[(&str, &str)],
    ) -> usize {
        let c = &self.config;
        let (stdout, stderr) = match log {
            Some(path) => {
                let file = std::fs::File::create(path).expect("log file");
                (
                    Stdio::from(file.try_clone().expect("log file")),
                    Stdio::from(file),
                )
            }
            None => (Stdio::inherit(), Stdio::inherit()),
        };
        let endpoint = format!("127.0.0.1:{}", free_port());
        let level = level
            .map(str::to_string)
            .unwrap_or_else(|| std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()));
        let child = Command::new(crate::binary("zipfleet-worker"))
            .envs(c.to_env())
            .env("ZIPFLEET_ALLOW_PRIVATE_SOURCES", "true")
            .env("ZIPFLEET_SHUTDOWN_GRACE", "5s")
            .env("ZIPFLEET_WORKER_LISTEN", &endpoint)
            .env("RUST_LOG", level)
            .envs(extra_env.iter().copied())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("zipfleet-worker starts");
        self.workers.push(child);
        self.worker_endpoints.push(format!("http://{endpoint}"));
        self.workers.len() - 1
    }

    /// The base URL of a worker's own endpoint.
    pub fn worker_endpoint(&self, index: usize) -> &str {
        &self.worker_endpoints[index]
    }

    /// The process id of a worker (for CPU and log measurements).
    pub fn worker_pid(&self, index: usize) -> u32 {
        self.workers[index].id()
    }

    /// Whether a worker process has exited.
    pub fn worker_exited(&mut self, index: usize) -> bool {
        matches!(self.workers[index].try_wait(), Ok(Some(_)))
    }

    /// Send SIGTERM without waiting.
    pub fn signal_worker(&mut self, index: usize) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.workers[index].id().to_string())
            .status();
    }

    /// SIGTERM a worker and wait for it to exit (graceful shutdown).
    pub fn terminate_worker(&mut self, index: usize) {
        terminate(&mut self.workers[index]);
    }

    /// SIGKILL a worker: no chance to settle anything.
    pub fn kill_worker(&mut self, index: usize) {
        let child = &mut self.workers[index];
        child.kill().ok();
        child.wait().ok();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api_url)
    }

    pub async fn post_job(&self, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url("/v1/jobs"))
            .bearer_auth(TOKEN)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Post until the API accepts: it answers 503 while a backend recovers,
    /// and a client retries (within a minute, or the test fails).
    pub async fn post_until_accepted(&self, body: &serde_json::Value) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let status = self.post_job(body).await.status();
            if status == 202 {
                return;
            }
            assert_eq!(status, 503, "while a backend recovers the API answers 503");
            assert!(
                tokio::time::Instant::now() < deadline,
                "the API did not recover"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    pub async fn get_status(&self, job_id: &str) -> JobStatus {
        let response = self
            .client
            .get(self.url(&format!("/v1/jobs/{job_id}")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "status of {job_id}");
        response.json().await.unwrap()
    }

    /// Poll until the job is final (or `limit` passes, which fails the test).
    pub async fn wait_final(&self, job_id: &str, limit: Duration) -> JobStatus {
        self.wait_for(job_id, limit, |s| s.state.is_final()).await
    }

    pub async fn wait_for(
        &self,
        job_id: &str,
        limit: Duration,
        done: impl Fn(&JobStatus) -> bool,
    ) -> JobStatus {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let status = self.get_status(job_id).await;
            if done(&status) {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "job {job_id} stuck at {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A request to the API with the token.
    pub async fn call(&self, method: reqwest::Method, path: &str) -> reqwest::Response {
        self.client
            .request(method, self.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
    }

    /// Every object under the fleet's prefix, with its bytes (for searching
    /// the store for data that must be gone).
    pub async fn stored_objects(&self) -> Vec<(String, Vec<u8>)> {
        let store = self.backends.store.as_ref();
        let mut objects = Vec::new();
        for key in store.list_keys(&store.own_key("")).await.expect("listing") {
            if let Ok(bytes) =
                zipfleet_shared::store::read_small(store, &key, 256 * 1024 * 1024).await
            {
                objects.push((key, bytes));
            }
        }
        objects
    }

    /// Put an image where `object` sources find it (the bucket root, not our prefix).
    pub async fn put_object(&self, key: &str, bytes: Vec<u8>) {
        self.backends
            .store
            .put_bytes(key, bytes.into(), "application/octet-stream")
            .await
            .expect("object stored");
    }

    /// Every lane of the fleet's jobs queue (lane 0, the jobs queue itself, first).
    pub fn lane_queues(&self) -> Vec<String> {
        let jobs = self
            .config
            .jobs_queue
            .as_deref()
            .expect("fleets name their queues");
        if self.config.broker.scheme() == "sqs" {
            zipfleet_backends::sqs::lane_queues(jobs, self.config.fair_lanes)
        } else {
            zipfleet_backends::rabbitmq::lane_queues(jobs, self.config.fair_lanes)
        }
    }

    /// Take every message off every lane of the jobs queue.
    pub async fn drain_jobs(&self) -> Vec<Vec<u8>> {
        let mut messages = Vec::new();
        for lane in self.lane_queues() {
            messages.extend(self.drain_queue(&lane).await);
        }
        messages
    }

    /// Take every message off one of the fleet's queues (by name).
    pub async fn drain_queue(&self, queue: &str) -> Vec<Vec<u8>> {
        if self.config.broker.scheme() == "sqs" {
            drain_sqs_queue(queue).await
        } else {
            drain_rabbit_queue(self.config.broker.expose(), queue).await
        }
    }

    /// Put raw bytes on the jobs queue (lane 0), bypassing the API.
    pub async fn publish_raw(&self, body: &[u8]) {
        self.backends
            .broker
            .publish_job(zipfleet_shared::broker::Lane(0), "", body)
            .await
            .expect("published");
    }

    /// Download a zip through its (presigned) URL.
    pub async fn download(&self, url: &str) -> Vec<u8> {
        let response = reqwest::get(url).await.unwrap();
        assert_eq!(response.status(), 200, "download {url}");
        response.bytes().await.unwrap().to_vec()
    }
}

async fn drain_rabbit_queue(url: &str, queue: &str) -> Vec<Vec<u8>> {
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let mut messages = Vec::new();
    while let Some(message) = channel
        .basic_get(queue, BasicGetOptions::default())
        .await
        .unwrap()
    {
        message.ack(BasicAckOptions::default()).await.unwrap();
        messages.push(message.delivery.data.clone());
    }
    connection.close(200, "done").await.ok();
    messages
}

/// Short polls until SQS has nothing more to give.
async fn drain_sqs_queue(queue: &str) -> Vec<Vec<u8>> {
    let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_sqs::Client::new(&shared);
    let url = client
        .get_queue_url()
        .queue_name(queue)
        .send()
        .await
        .expect("queue exists")
        .queue_url
        .unwrap();
    let mut messages = Vec::new();
    loop {
        let received = client
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let batch = received.messages.unwrap_or_default();
        if batch.is_empty() {
            return messages;
        }
        for message in batch {
            client
                .delete_message()
                .queue_url(&url)
                .receipt_handle(message.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
            messages.push(message.body.unwrap_or_default().into_bytes());
        }
    }
}

/// Delete a RabbitMQ queue through the management API (plain blocking HTTP,
/// usable from `Drop`). Test fleets make fresh quorum queues; left behind,
/// hundreds of them make every broker restart slower until it wedges.
pub fn delete_rabbitmq_queue(name: &str) {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(
        &([127, 0, 0, 1], 15672).into(),
        Duration::from_secs(2),
    ) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    // guest:guest
    let request = format!("DELETE /api/queues/%2f/{name} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic Z3Vlc3Q6Z3Vlc3Q=\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_ok() {
        let _ = stream.read_to_end(&mut Vec::new());
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop_api.cancel();
        for child in &mut self.workers {
            // SIGTERM first: the graceful path, then make sure.
            terminate(child);
        }
        if self.config.broker.scheme().starts_with("amqp") {
            let c = &self.config;
            // Every lane of the jobs queue (lane 0 is the jobs queue itself).
            let lanes = c
                .jobs_queue
                .as_deref()
                .map(|jobs| zipfleet_backends::rabbitmq::lane_queues(jobs, c.fair_lanes))
                .unwrap_or_default();
            for queue in lanes.iter().chain(
                [&c.completed_queue, &c.dead_letter_queue]
                    .into_iter()
                    .flatten(),
            ) {
                delete_rabbitmq_queue(queue);
            }
        }
    }
}

/// Ask a worker process to stop (SIGTERM), then wait briefly, then kill it.
fn terminate(child: &mut Child) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    for _ in 0..150 {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().ok();
    child.wait().ok();
}

impl Fleet {
    /// How many zip objects exist for a job (expected: one, whatever the retries).
    pub async fn zip_count(&self, job_id: &str) -> usize {
        let key = self.backends.store.own_key(&format!("zips/{job_id}.zip"));
        match self.backends.store.get(None, &key).await {
            Ok(_) => 1,
            Err(zipfleet_shared::store::StoreError::NotFound(_)) => 0,
            Err(err) => panic!("reading {key}: {err}"),
        }
    }
}
