//! The worker's pull loop on the in-process broker, watched from outside:
//! an idle worker asks each lane once per sweep and no more, finds what its
//! lane order leaves out within a sweep, holds no message it is not running,
//! and stops at once when idle.

use async_trait::async_trait;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use zipfleet_backends::Backends;
use zipfleet_shared::broker::memory::MemoryBroker;
use zipfleet_shared::broker::{Broker, BrokerError, Delivery, Lane, LaneDepth};
use zipfleet_shared::message::JobMessage;
use zipfleet_shared::status_store::memory::MemoryStatusStore;
use zipfleet_shared::store::file::FileStore;
use zipfleet_tests::http::{Route, TestServer};
use zipfleet_tests::{images, spec, test_settings};
use zipfleet_worker::app::build_worker;
use zipfleet_worker::dispatch::{LaneOrder, Sweep, SWEEP_EVERY};

/// The in-process broker, counting the takes made on it.
struct Counting {
    inner: MemoryBroker,
    takes: AtomicUsize,
}

#[async_trait]
impl Broker for Counting {
    fn kind(&self) -> &'static str {
        // Not "memory": the worker must treat it as a broker whose depth costs a request.
        "counting"
    }
    fn lanes(&self) -> u16 {
        self.inner.lanes()
    }
    async fn publish_job(&self, lane: Lane, job_id: &str, body: &[u8]) -> Result<(), BrokerError> {
        self.inner.publish_job(lane, job_id, body).await
    }
    async fn publish_completion(&self, job_id: &str, body: &[u8]) -> Result<(), BrokerError> {
        self.inner.publish_completion(job_id, body).await
    }
    async fn take(&self, lane: Lane, patience: Duration) -> Result<Option<Delivery>, BrokerError> {
        self.takes.fetch_add(1, Ordering::SeqCst);
        self.inner.take(lane, patience).await
    }
    async fn lane_depths(&self) -> Result<Vec<LaneDepth>, BrokerError> {
        self.inner.lane_depths().await
    }
    async fn check(&self) -> Result<(), BrokerError> {
        self.inner.check().await
    }
}

/// One worker over `broker` with `order` (the `Sweep` the app builds when `None`).
struct Running {
    memory: MemoryBroker,
    broker: Arc<Counting>,
    stop: CancellationToken,
    serving: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

fn start(concurrency: u16, order: Option<Arc<dyn LaneOrder>>) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let memory = MemoryBroker::new(3);
    let broker = Arc::new(Counting {
        inner: memory.clone(),
        takes: AtomicUsize::new(0),
    });
    let backends = Backends {
        broker: broker.clone(),
        store: Arc::new(FileStore::new(dir.path()).unwrap()),
        status: Arc::new(MemoryStatusStore::new()),
    };
    let mut settings = test_settings(dir.path());
    settings.tuning.concurrency = concurrency;
    let mut worker = build_worker(&backends, &settings).unwrap();
    if let Some(order) = order {
        Arc::get_mut(&mut worker).expect("not shared yet").lanes = order;
    }
    let stop = CancellationToken::new();
    let serving = tokio::spawn(worker.run(stop.clone().cancelled_owned()));
    Running {
        memory,
        broker,
        stop,
        serving,
        _dir: dir,
    }
}

impl Running {
    /// Wait until `count` messages are dead letters; how long that took.
    async fn dead_letters(&self, count: usize, within: Duration) -> Duration {
        let started = Instant::now();
        while self.memory.dead_letters().len() < count {
            assert!(
                started.elapsed() < within,
                "{count} dead letters expected within {within:?}, have {}",
                self.memory.dead_letters().len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        started.elapsed()
    }

    /// Stop the worker; how long it took.
    async fn stop(self) -> Duration {
        let started = Instant::now();
        self.stop.cancel();
        self.serving.await.unwrap();
        started.elapsed()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_worker_asks_each_lane_once_a_sweep_and_finds_a_job_within_one() {
    let running = start(2, None);
    let lanes = usize::from(running.broker.lanes());
    // Sweeps at 0, 2 and 4 s.
    tokio::time::sleep(SWEEP_EVERY * 2 + Duration::from_millis(500)).await;
    let takes = running.broker.takes.load(Ordering::SeqCst);
    assert!(
        (lanes * 3..=lanes * 3 + 2).contains(&takes),
        "an idle worker made {takes} takes in 4.5 s on {lanes} lanes"
    );
    running
        .broker
        .publish_job(Lane(5), "", b"not a job")
        .await
        .unwrap();
    let picked = running.dead_letters(1, SWEEP_EVERY * 2).await;
    assert!(
        picked <= SWEEP_EVERY + Duration::from_millis(300),
        "an idle worker found a job after {picked:?}"
    );
    let stopped = running.stop().await;
    assert!(
        stopped < Duration::from_millis(500),
        "stopping took {stopped:?}"
    );
}

/// Lane 1 only, and "work is waiting" always.
struct OnlyLaneOne;

#[async_trait]
impl LaneOrder for OnlyLaneOne {
    async fn order(&self, _lanes: u16) -> Vec<Lane> {
        vec![Lane(1)]
    }
    async fn work_waiting(&self) -> bool {
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_order_leaves_out_is_found_within_a_sweep_and_a_stale_yes_costs_little() {
    let running = start(1, Some(Arc::new(OnlyLaneOne)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = running.broker.takes.load(Ordering::SeqCst);
    tokio::time::sleep(SWEEP_EVERY * 2).await;
    let takes = running.broker.takes.load(Ordering::SeqCst) - before;
    // Two sweeps of 8 lanes, and a handful of looks at lane 1 that the
    // stale "yes" asked for, backing off (not 4 a second).
    assert!(
        takes <= 2 * 8 + 6,
        "{takes} takes in 4 s with an order that always says work is waiting"
    );
    running
        .broker
        .publish_job(Lane(0), "", b"not a job either")
        .await
        .unwrap();
    running
        .dead_letters(1, SWEEP_EVERY + Duration::from_millis(500))
        .await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_holds_no_message_it_is_not_running() {
    let server = TestServer::start().await;
    let running = start(1, Some(Arc::new(Sweep::default())));
    // Three jobs of about 1.5 s each (an image that trickles in).
    for n in 0..3u8 {
        let body = images::jpeg(32, 32, n);
        let interval =
            (Duration::from_millis(1500) / body.len() as u32).max(Duration::from_millis(1));
        let url = server.route(&format!("/slow{n}.jpg"), Route::Drip { body, interval });
        let job_id = format!("slow{n}");
        let spec = spec(json!({"images": [{"id": "1", "label": "a", "url": url}]}));
        running
            .broker
            .publish_job(
                Lane(n.into()),
                &job_id,
                &JobMessage::inline(&job_id, spec).to_bytes(),
            )
            .await
            .unwrap();
    }
    // While jobs run (one at a time), one message is taken; while the first
    // runs, the other two wait on the broker, not in the worker.
    let started = Instant::now();
    let mut seen_running = 0;
    while started.elapsed() < Duration::from_secs(3) {
        let depths = running.broker.lane_depths().await.unwrap();
        let taken: u64 = depths.iter().map(|d| d.in_flight.unwrap()).sum();
        let ready: u64 = depths.iter().map(|d| d.ready).sum();
        assert!(
            taken <= 1,
            "a worker with one slot holds {taken} messages: {depths:?}"
        );
        if taken == 1 {
            seen_running += 1;
            if running.memory.completions().is_empty() {
                assert_eq!(ready, 2, "the first job runs, two wait: {depths:?}");
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen_running > 10, "the jobs ran");
    running.stop().await;
}
