//! The cache (contract, "Cache") through the embedded pipeline with a
//! directory store, and on the fleet with real S3: reuse that asks the web
//! nothing and renders nothing, misses when anything that matters changed,
//! damaged entries replaced, a store refusing cache writes, remembered
//! failures, per-host courtesy, Retry-After, and coalesced downloads.

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use zipfleet_backends::Backends;
use zipfleet_shared::broker::memory::MemoryBroker;
use zipfleet_shared::broker::{Broker, Lane};
use zipfleet_shared::config::{CacheSettings, SourcePolicy};
use zipfleet_shared::message::JobMessage;
use zipfleet_shared::status::DEFAULT_TENANT;
use zipfleet_shared::status::{JobState, JobStatus};
use zipfleet_shared::status_store::memory::MemoryStatusStore;
use zipfleet_shared::status_store::{FairLimits, JobRecords, NewJob};
use zipfleet_shared::store::file::FileStore;
use zipfleet_shared::store::{ObjectMeta, ObjectReader, ObjectStore, StoreError};
use zipfleet_tests::http::{Route, TestServer};
use zipfleet_tests::{images, spec, test_settings, zipcheck};
use zipfleet_worker::app::{build_worker, WorkerSettings};
use zipfleet_worker::consumer::Worker;

const LIMIT: Duration = Duration::from_secs(60);

/// One embedded worker over a given store, with its metrics in reach.
struct Run {
    broker: MemoryBroker,
    status: Arc<MemoryStatusStore>,
    worker: Arc<Worker>,
    root: PathBuf,
    stop: CancellationToken,
    serving: tokio::task::JoinHandle<()>,
}

impl Run {
    fn start(root: &Path, store: Arc<dyn ObjectStore>, cache: CacheSettings) -> Self {
        let mut settings: WorkerSettings = test_settings(root);
        settings.tuning.cache = cache;
        Self::with(root, store, settings)
    }

    fn with(root: &Path, store: Arc<dyn ObjectStore>, settings: WorkerSettings) -> Self {
        let broker = MemoryBroker::new(settings.backend.max_deliveries);
        let status = Arc::new(MemoryStatusStore::new());
        let backends = Backends {
            broker: Arc::new(broker.clone()),
            store,
            status: status.clone(),
        };
        let worker = build_worker(&backends, &settings).expect("worker builds");
        let stop = CancellationToken::new();
        let serving = tokio::spawn(worker.clone().run(stop.clone().cancelled_owned()));
        Self {
            broker,
            status,
            worker,
            root: root.to_path_buf(),
            stop,
            serving,
        }
    }

    fn on_dir(root: &Path, cache: CacheSettings) -> Self {
        Self::start(root, Arc::new(FileStore::new(root).unwrap()), cache)
    }

    async fn submit(&self, job_id: &str, job: &Value) {
        let spec = spec(job.clone());
        let queued = JobStatus::queued(job_id, None, DEFAULT_TENANT, spec.images.len() as u32);
        self.status
            .create(&NewJob {
                status: &queued,
                fingerprint: &spec.fingerprint(),
                pictures: &[],
                limits: FairLimits {
                    lanes: 1,
                    max_queued_per_tenant: 1000,
                },
            })
            .await
            .unwrap();
        self.broker
            .publish_job(
                Lane(0),
                job_id,
                &JobMessage::inline(job_id, spec).to_bytes(),
            )
            .await
            .unwrap();
    }

    async fn wait(&self, job_id: &str) -> JobStatus {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            if let Some(status) = self.status.get(job_id).await.unwrap() {
                if status.state.is_final() {
                    return status;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{job_id} did not finish"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Run one job to the end; its zip's entries.
    async fn job(&self, job_id: &str, job: &Value) -> (JobStatus, BTreeMap<String, Vec<u8>>) {
        self.submit(job_id, job).await;
        let status = self.wait(job_id).await;
        assert_eq!(status.state, JobState::Succeeded, "{status:?}");
        let entries = zipcheck::entries(
            &self
                .root
                .join(&status.result.as_ref().unwrap().location.key),
        );
        (status, entries)
    }

    /// A counter of this worker's `/metrics`.
    fn metric(&self, line: &str) -> u64 {
        metric(
            &self
                .worker
                .env
                .metrics
                .render(&self.worker.env.budget, true),
            line,
        )
    }

    async fn stop(self) {
        self.stop.cancel();
        self.serving.await.unwrap();
    }
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| {
            line.strip_prefix(name)
                .and_then(|rest| rest.trim().parse::<f64>().ok())
        })
        .unwrap_or_else(|| panic!("{name} not in\n{text}")) as u64
}

const RENDER_MISSES: &str = "zipfleet_worker_cache_misses_total{kind=\"render\"}";
const RENDER_HITS: &str = "zipfleet_worker_cache_hits_total{kind=\"render\"}";

/// The image entries (without the manifest, which names the job).
fn pictures(mut entries: BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    entries.remove("manifest.json");
    entries
}

/// Four objects in `dir` and four URLs on `server`, one job of all eight.
fn mixed_job(dir: &Path, server: &TestServer) -> Value {
    std::fs::create_dir_all(dir.join("uploads")).unwrap();
    let mut list = Vec::new();
    for i in 0..4u8 {
        let name = format!("uploads/o{i}.{}", if i % 2 == 0 { "jpg" } else { "png" });
        let bytes = if i % 2 == 0 {
            images::jpeg(900, 700, i)
        } else {
            images::png(500, 400, i)
        };
        std::fs::write(dir.join(&name), bytes).unwrap();
        list.push(json!({"id": format!("o{i}"), "label": "objects", "object": {"key": name}}));
    }
    for i in 0..4u8 {
        let url = match i % 2 {
            0 => server.image(
                &format!("/w{i}.jpg"),
                "image/jpeg",
                images::jpeg(800, 600, 40 + i),
            ),
            _ => server.image(
                &format!("/w{i}.webp"),
                "image/webp",
                images::webp(640, 480, 40 + i),
            ),
        };
        list.push(json!({"id": format!("w{i}"), "label": "web", "url": url}));
    }
    json!({"images": list})
}

#[tokio::test]
async fn a_second_run_asks_the_web_nothing_renders_nothing_and_equals_cache_off() {
    let (dir, off_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = TestServer::start().await;
    let job = mixed_job(dir.path(), &server);
    let run = Run::on_dir(dir.path(), CacheSettings::default());

    let (_, cold) = run.job("cold", &job).await;
    assert_eq!(server.requests(), 4);
    assert_eq!(run.metric(RENDER_MISSES), 8);
    let (status, warm) = run.job("warm", &job).await;
    assert_eq!(
        server.requests(),
        4,
        "a re-train makes no request to the site"
    );
    assert_eq!(run.metric(RENDER_MISSES), 8, "and renders nothing");
    assert_eq!(run.metric(RENDER_HITS), 8);
    assert_eq!(
        pictures(warm.clone()),
        pictures(cold.clone()),
        "a hit is byte for byte the fresh render"
    );
    let manifest = zipcheck::manifest(&warm);
    for line in manifest["images"].as_array().unwrap() {
        assert_eq!(line["cache"], "render", "{line}");
    }
    assert!(
        zipcheck::manifest(&cold)["images"][0]
            .get("cache")
            .is_none(),
        "nothing reused on the cold run"
    );
    assert_eq!(
        manifest["report"],
        serde_json::to_value(&status.result.unwrap().report).unwrap()
    );
    assert_eq!(
        manifest["report"],
        zipcheck::manifest(&cold)["report"],
        "the report is the same on hits"
    );
    run.stop().await;

    // The same job with the cache off, on another directory with the same objects.
    std::fs::create_dir_all(off_dir.path().join("uploads")).unwrap();
    for entry in std::fs::read_dir(dir.path().join("uploads")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            off_dir.path().join("uploads").join(entry.file_name()),
        )
        .unwrap();
    }
    let off = Run::on_dir(
        off_dir.path(),
        CacheSettings {
            enabled: false,
            ..CacheSettings::default()
        },
    );
    let (_, uncached) = off.job("off", &job).await;
    assert_eq!(
        pictures(uncached.clone()),
        pictures(cold),
        "ZIPFLEET_CACHE=off gives the same entries"
    );
    assert!(
        !off_dir.path().join("cache").exists(),
        "the cache off writes nothing"
    );
    assert_eq!(off.metric(RENDER_MISSES) + off.metric(RENDER_HITS), 0);
    off.stop().await;
}

#[tokio::test]
async fn new_settings_new_bytes_after_the_source_ttl_and_a_new_etag_miss() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    let url = server.image("/p.jpg", "image/jpeg", images::jpeg(800, 600, 1));
    std::fs::write(dir.path().join("o.png"), images::png(400, 300, 2)).unwrap();
    let job = |output: Value| {
        json!({"images": [
        {"id": "web", "label": "a", "url": url},
        {"id": "obj", "label": "a", "object": {"key": "o.png"}},
    ], "output": output})
    };
    let cache = CacheSettings {
        source_cache_ttl: Duration::from_secs(4),
        ..CacheSettings::default()
    };
    let run = Run::on_dir(dir.path(), cache);
    let (_, first) = run.job("first", &job(json!({}))).await;

    // Other output settings: both rendered again. The URL's bytes are kept
    // from its second download on (the first keeps only what it is).
    let (_, resized) = run
        .job("resized", &job(json!({"width": 100, "height": 80})))
        .await;
    assert_eq!(run.metric(RENDER_MISSES), 4);
    assert_eq!(server.requests_for("/p.jpg"), 2);
    assert_eq!(zipcheck::rgb_size(&resized["a/web.jpg"]), (100, 80));
    let (_, third) = run
        .job("third-size", &job(json!({"width": 64, "height": 64})))
        .await;
    assert_eq!(run.metric(RENDER_MISSES), 6);
    assert_eq!(
        server.requests_for("/p.jpg"),
        2,
        "then the kept download serves new settings"
    );
    assert_eq!(zipcheck::manifest(&third)["images"][0]["cache"], "source");
    assert_eq!(zipcheck::rgb_size(&third["a/web.jpg"]), (64, 64));

    // New bytes behind the URL: still the old picture within the source TTL, the new one after it.
    server.image("/p.jpg", "image/jpeg", images::jpeg(800, 600, 99));
    let (_, within) = run.job("within", &job(json!({}))).await;
    assert_eq!(within["a/web.jpg"], first["a/web.jpg"]);
    assert_eq!(server.requests_for("/p.jpg"), 2);
    tokio::time::sleep(Duration::from_millis(4100)).await;
    let misses = run.metric(RENDER_MISSES);
    let (_, after) = run.job("after", &job(json!({}))).await;
    assert_eq!(
        server.requests_for("/p.jpg"),
        3,
        "after the source TTL the site is asked again"
    );
    assert_ne!(
        after["a/web.jpg"], first["a/web.jpg"],
        "and its new picture is rendered"
    );
    assert_eq!(run.metric(RENDER_MISSES), misses + 1);
    assert_eq!(
        after["a/obj.jpg"], first["a/obj.jpg"],
        "the unchanged object is a hit"
    );

    // A rewritten object (new ETag) misses.
    std::fs::write(dir.path().join("o.png"), images::png(400, 300, 77)).unwrap();
    let (_, rewritten) = run.job("rewritten", &job(json!({}))).await;
    assert_ne!(rewritten["a/obj.jpg"], first["a/obj.jpg"]);
    assert_eq!(run.metric(RENDER_MISSES), misses + 2);
    run.stop().await;
}

/// A directory store that refuses every write under `cache/`.
struct RefusingCacheWrites(FileStore);

#[async_trait]
impl ObjectStore for RefusingCacheWrites {
    fn kind(&self) -> &'static str {
        "refusing"
    }
    fn bucket(&self) -> &str {
        self.0.bucket()
    }
    fn own_key(&self, relative: &str) -> String {
        self.0.own_key(relative)
    }
    async fn get(&self, bucket: Option<&str>, key: &str) -> Result<ObjectReader, StoreError> {
        self.0.get(bucket, key).await
    }
    async fn head(&self, bucket: Option<&str>, key: &str) -> Result<ObjectMeta, StoreError> {
        self.0.head(bucket, key).await
    }
    fn local_path(&self, bucket: Option<&str>, key: &str) -> Result<Option<PathBuf>, StoreError> {
        self.0.local_path(bucket, key)
    }
    async fn erase(&self, key: &str) -> Result<u64, StoreError> {
        self.0.erase(key).await
    }
    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.0.list_keys(prefix).await
    }
    async fn erase_prefix(&self, prefix: &str) -> Result<u64, StoreError> {
        self.0.erase_prefix(prefix).await
    }
    async fn put_file(
        &self,
        key: &str,
        path: &Path,
        content_type: &str,
    ) -> Result<u64, StoreError> {
        if key.starts_with("cache/") {
            return Err(StoreError::Refused("AccessDenied: no cache for you".into()));
        }
        self.0.put_file(key, path, content_type).await
    }
    async fn put_bytes(
        &self,
        key: &str,
        bytes: Bytes,
        content_type: &str,
    ) -> Result<(), StoreError> {
        if key.starts_with("cache/") {
            return Err(StoreError::Refused("AccessDenied: no cache for you".into()));
        }
        self.0.put_bytes(key, bytes, content_type).await
    }
    async fn download_url(&self, key: &str, expires: Duration) -> Result<String, StoreError> {
        self.0.download_url(key, expires).await
    }
    async fn check(&self) -> Result<(), StoreError> {
        self.0.check().await
    }
}

#[tokio::test]
async fn a_truncated_entry_is_replaced_and_a_store_refusing_cache_writes_still_zips() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    let job = mixed_job(dir.path(), &server);
    let run = Run::on_dir(dir.path(), CacheSettings::default());
    let (_, cold) = run.job("cold", &job).await;
    // `cache/renders/{picture}/{settings}`: one folder per picture.
    let renders: Vec<(PathBuf, u64)> = std::fs::read_dir(dir.path().join("cache/renders"))
        .unwrap()
        .flat_map(|picture| std::fs::read_dir(picture.unwrap().path()).unwrap())
        .map(|entry| {
            let path = entry.unwrap().path();
            let size = std::fs::metadata(&path).unwrap().len();
            (path, size)
        })
        .collect();
    assert_eq!(renders.len(), 8);
    for (path, size) in &renders {
        let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        file.set_len(size - 7).unwrap();
    }
    let (_, again) = run.job("again", &job).await;
    assert_eq!(
        pictures(again),
        pictures(cold.clone()),
        "damaged entries are never zipped"
    );
    assert_eq!(
        run.metric(RENDER_MISSES),
        16,
        "every damaged entry is rendered again"
    );
    for (path, size) in &renders {
        assert_eq!(
            std::fs::metadata(path).unwrap().len(),
            *size,
            "and replaced"
        );
    }
    let (_, third) = run.job("third", &job).await;
    assert_eq!(
        run.metric(RENDER_MISSES),
        16,
        "the replaced entries are hits"
    );
    assert_eq!(pictures(third), pictures(cold.clone()));
    run.stop().await;

    let refusing_dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(refusing_dir.path().join("uploads")).unwrap();
    for entry in std::fs::read_dir(dir.path().join("uploads")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            refusing_dir.path().join("uploads").join(entry.file_name()),
        )
        .unwrap();
    }
    let store = Arc::new(RefusingCacheWrites(
        FileStore::new(refusing_dir.path()).unwrap(),
    ));
    let refused = Run::start(refusing_dir.path(), store, CacheSettings::default());
    for id in ["r1", "r2"] {
        let (status, entries) = refused.job(id, &job).await;
        assert_eq!(status.result.unwrap().images, 8);
        assert_eq!(
            pictures(entries),
            pictures(cold.clone()),
            "the work is simply done"
        );
    }
    assert!(!refusing_dir.path().join("cache").exists());
    refused.stop().await;
}

#[tokio::test]
async fn a_refused_url_is_not_asked_again_within_the_failure_ttl_and_is_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    let refused = server.route(
        "/no.jpg",
        Route::Body {
            status: 403,
            content_type: "text/plain",
            body: b"no".to_vec(),
        },
    );
    let fine = server.image("/ok.png", "image/png", images::png(300, 200, 5));
    let job = json!({"images": [{"id": "1", "label": "a", "url": refused}, {"id": "2", "label": "a", "url": fine}]});
    let ttl = Duration::from_secs(5);
    let run = Run::on_dir(
        dir.path(),
        CacheSettings {
            failure_cache_ttl: ttl,
            ..CacheSettings::default()
        },
    );
    let started = std::time::Instant::now();
    let (first, _) = run.job("first", &job).await;
    let (second, _) = run.job("second", &job).await;
    assert!(
        started.elapsed() < ttl,
        "both jobs ran within the failure TTL"
    );
    assert_eq!(
        server.requests_for("/no.jpg"),
        1,
        "a class of 30 does not ask a site that refused 30 times"
    );
    assert_eq!(
        second.result.as_ref().unwrap().skipped,
        first.result.as_ref().unwrap().skipped,
        "the same code and message"
    );
    assert_eq!(
        first.result.unwrap().skipped[0].code.as_str(),
        "http_status"
    );
    assert_eq!(
        run.metric("zipfleet_worker_cache_hits_total{kind=\"failure\"}"),
        1
    );
    tokio::time::sleep(ttl.saturating_sub(started.elapsed()) + Duration::from_millis(200)).await;
    run.job("third", &job).await;
    assert_eq!(
        server.requests_for("/no.jpg"),
        2,
        "after the failure TTL it is asked again"
    );
    assert_eq!(server.requests_for("/ok.png"), 1);
    run.stop().await;
}

/// Issue 23: a refusal decided by the worker (here: a loopback address
/// without `ZIPFLEET_ALLOWED_SOURCE_NETS`) is never failure-cached, so once
/// the operator opens the network, the same store and URL give the picture.
#[tokio::test]
async fn a_blocked_address_is_not_remembered_and_opening_the_network_gets_the_picture() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    let url = server.image("/local.png", "image/png", images::png(320, 240, 11));
    let job = json!({"images": [{"id": "1", "label": "a", "url": url}]});
    let store = || -> Arc<dyn ObjectStore> { Arc::new(FileStore::new(dir.path()).unwrap()) };

    let mut closed = test_settings(dir.path());
    closed.policy = SourcePolicy {
        allow_private_sources: false,
        allowed_source_nets: vec![],
    };
    let run = Run::with(dir.path(), store(), closed.clone());
    let (refused, _) = run.job("closed", &job).await;
    let skipped = &refused.result.as_ref().unwrap().skipped;
    assert_eq!(skipped.len(), 1, "{refused:?}");
    assert_eq!(skipped[0].code.as_str(), "blocked_address");
    assert_eq!(server.requests(), 0, "refused before any connection");
    run.stop().await;

    let mut opened = closed;
    opened.policy.allowed_source_nets = vec!["127.0.0.1/32".parse().unwrap()];
    let run = Run::with(dir.path(), store(), opened);
    let (allowed, entries) = run.job("opened", &job).await;
    assert_eq!(
        allowed.result.as_ref().unwrap().images,
        1,
        "the settings in force decide, not a remembered refusal: {allowed:?}"
    );
    assert!(entries.contains_key("a/1.jpg"), "{:?}", entries.keys());
    assert_eq!(server.requests_for("/local.png"), 1);
    run.stop().await;
}

#[tokio::test]
async fn downloads_per_host_stay_within_the_setting_and_retry_after_is_honoured_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    let mut list = Vec::new();
    for i in 0..12u8 {
        let url = server.route(
            &format!("/s{i}.png"),
            Route::Slow {
                content_type: "image/png",
                body: images::png(64, 48, i),
                delay: Duration::from_millis(150),
            },
        );
        list.push(json!({"id": format!("s{i}"), "label": "a", "url": url}));
    }
    let later = server.route(
        "/later.png",
        Route::Sequence(vec![
            Route::RetryAfter {
                status: 503,
                seconds: 1,
            },
            Route::Body {
                status: 200,
                content_type: "image/png",
                body: images::png(64, 48, 50),
            },
        ]),
    );
    let never = server.route(
        "/never.png",
        Route::RetryAfter {
            status: 429,
            seconds: 1,
        },
    );
    let mut settings = test_settings(dir.path());
    settings.tuning.per_host_concurrency = 3;
    let run = Run::with(
        dir.path(),
        Arc::new(FileStore::new(dir.path()).unwrap()),
        settings,
    );
    let (status, _) = run.job("slow", &json!({"images": list})).await;
    assert_eq!(status.result.unwrap().images, 12);
    assert_eq!(
        server.most_at_once(),
        3,
        "16 downloads in flight, at most 3 at once from one host"
    );

    let started = std::time::Instant::now();
    let (status, entries) = run.job("later", &json!({"images": [{"id": "l", "label": "a", "url": later}, {"id": "n", "label": "a", "url": never}]})).await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the Retry-After was waited out"
    );
    assert!(
        entries.contains_key("a/l.jpg"),
        "the retry after it succeeded"
    );
    assert_eq!(server.requests_for("/later.png"), 2);
    assert_eq!(
        server.requests_for("/never.png"),
        2,
        "retried once, never a third time"
    );
    let skipped = &status.result.unwrap().skipped;
    assert_eq!(
        (skipped[0].id.as_str(), skipped[0].code.as_str()),
        ("n", "http_status")
    );
    run.stop().await;
}

#[tokio::test]
async fn two_concurrent_jobs_on_one_worker_sharing_20_urls_fetch_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    let urls: Vec<String> = (0..20u8)
        .map(|i| {
            server.route(
                &format!("/c{i}.jpg"),
                Route::Slow {
                    content_type: "image/jpeg",
                    body: images::jpeg(320, 240, i),
                    delay: Duration::from_millis(60),
                },
            )
        })
        .collect();
    let job = |offset: usize| {
        // The same 20 URLs in different orders, so the jobs meet mid-download.
        let list: Vec<Value> = (0..20)
            .map(|i| json!({"id": format!("i{i}"), "label": "a", "url": urls[(i + offset) % 20]}))
            .collect();
        json!({"images": list})
    };
    let run = Run::on_dir(dir.path(), CacheSettings::default());
    run.submit("left", &job(0)).await;
    run.submit("right", &job(7)).await;
    let (left, right) = (run.wait("left").await, run.wait("right").await);
    assert_eq!(
        (left.state, right.state),
        (JobState::Succeeded, JobState::Succeeded)
    );
    for i in 0..20 {
        assert_eq!(
            server.requests_for(&format!("/c{i}.jpg")),
            1,
            "URL {i} fetched once"
        );
    }
    assert_eq!(run.metric(RENDER_MISSES), 20, "each picture rendered once");
    assert_eq!(
        run.worker.env.cache.as_ref().unwrap().in_flight(),
        0,
        "no key is left behind"
    );
    run.stop().await;
}

/// The fleet's `/metrics` text of worker `index`.
async fn fleet_metrics(fleet: &zipfleet_tests::fleet::Fleet, index: usize) -> String {
    reqwest::get(format!("{}/metrics", fleet.worker_endpoint(index)))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn fleet_job(
    fleet: &zipfleet_tests::fleet::Fleet,
    job_id: &str,
    images: &Value,
) -> BTreeMap<String, Vec<u8>> {
    let response = fleet
        .post_job(&json!({"job_id": job_id, "images": images}))
        .await;
    assert_eq!(response.status(), 202);
    let status = fleet.wait_final(job_id, LIMIT).await;
    assert_eq!(status.state, JobState::Succeeded, "{status:?}");
    let result = status.result.unwrap();
    assert_eq!(result.images, 6, "{result:?}");
    zipcheck::entries_from_bytes(fleet.download(&result.url).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_the_fleet_a_re_train_comes_from_s3_and_cache_off_gives_the_same_entries() {
    let server = TestServer::start().await;
    let mut fleet = zipfleet_tests::fleet::spawn_fleet(1).await;
    let unique = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let mut list = Vec::new();
    for i in 0..3u8 {
        let key = format!("cache-test-{unique}/o{i}.jpg");
        fleet.put_object(&key, images::jpeg(900, 600, 60 + i)).await;
        list.push(json!({"id": format!("o{i}"), "label": "objects", "object": {"key": key}}));
        let url = server.image(
            &format!("/f{i}.png"),
            "image/png",
            images::png(500, 400, 70 + i),
        );
        list.push(json!({"id": format!("w{i}"), "label": "web", "url": url}));
    }
    let images = Value::Array(list);

    let cold = fleet_job(&fleet, &format!("cold-{unique}"), &images).await;
    assert_eq!(server.requests(), 3);
    let before = fleet_metrics(&fleet, 0).await;
    assert_eq!(metric(&before, RENDER_MISSES), 6);
    let warm = fleet_job(&fleet, &format!("warm-{unique}"), &images).await;
    let after = fleet_metrics(&fleet, 0).await;
    assert_eq!(server.requests(), 3, "the re-train asks the site nothing");
    assert_eq!(metric(&after, RENDER_MISSES), 6, "and renders nothing");
    assert_eq!(metric(&after, RENDER_HITS), 6);
    assert_eq!(pictures(warm), pictures(cold.clone()));

    // A worker with the cache off, on the same fleet: everything again, the same pictures.
    fleet.terminate_worker(0);
    let off = fleet.add_worker_with(None, None, &[("ZIPFLEET_CACHE", "off")]);
    let uncached = fleet_job(&fleet, &format!("off-{unique}"), &images).await;
    assert_eq!(server.requests(), 6, "the cache off downloads again");
    assert_eq!(pictures(uncached), pictures(cold));
    assert_eq!(metric(&fleet_metrics(&fleet, off).await, RENDER_HITS), 0);
}
