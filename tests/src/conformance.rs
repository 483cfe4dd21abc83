//! The broker conformance suite: one set of behaviours every [`Broker`] must
//! show — the in-process one, RabbitMQ and SQS alike. Each check is a plain
//! async function over a [`Subject`] (how to open a broker on a fresh set of
//! queues and read what landed on its side queues); `tests/it/conformance.rs`
//! instantiates every check for every broker.
//!
//! The brokers are pull-based: [`Broker::take`] gives at most one message
//! from one lane. That a worker never abandons a take that may hold a message
//! is the worker loop's structure (it never races a take against anything),
//! so there is no check for dropped receives here.

use async_trait::async_trait;
use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zipfleet_shared::broker::memory::MemoryBroker;
use zipfleet_shared::broker::{Broker, DeadLetter, Delivery, Lane, QueueNames};
use zipfleet_shared::config::BackendConfig;
use zipfleet_shared::message::{JobMessage, SpecPayload};
use zipfleet_shared::retry::Transient;
use zipfleet_shared::store::ObjectStore;

/// Deliveries before a message is dead-lettered, in every check.
pub const MAX_DELIVERIES: u32 = 2;
/// Lanes of every broker under test: lane 0 and two more (every lane is a
/// queue to create, so few).
pub const LANES: u16 = 3;
/// The last lane.
const LAST: Lane = Lane(LANES - 1);

/// One of a queue set's side queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SideQueue {
    Completed,
    DeadLetter,
}

/// A broker implementation under test.
#[async_trait]
pub trait Subject: Send + Sync {
    /// A fresh, empty set of queue names (unique per call).
    fn fresh_names(&self) -> QueueNames;
    /// A broker on `names` with [`LANES`] lanes, as a separate client (its
    /// own connection): two calls behave like two workers.
    async fn open(&self, names: &QueueNames) -> Arc<dyn Broker>;
    /// Take up to `expected` messages off a side queue, waiting at most `within`.
    async fn drain(
        &self,
        names: &QueueNames,
        queue: SideQueue,
        expected: usize,
        within: Duration,
    ) -> Vec<Bytes>;
    /// How long before a delivery whose taker vanished comes back.
    fn lease(&self) -> Duration;
}

/// The in-process broker: one shared broker per queue set.
#[derive(Default)]
pub struct MemorySubject {
    brokers: Mutex<HashMap<String, MemoryBroker>>,
}

#[async_trait]
impl Subject for MemorySubject {
    fn fresh_names(&self) -> QueueNames {
        names_with(".")
    }

    async fn open(&self, names: &QueueNames) -> Arc<dyn Broker> {
        let mut brokers = self.brokers.lock().unwrap();
        Arc::new(
            brokers
                .entry(names.jobs.clone())
                .or_insert_with(|| MemoryBroker::with_lanes(MAX_DELIVERIES, LANES))
                .clone(),
        )
    }

    async fn drain(
        &self,
        names: &QueueNames,
        queue: SideQueue,
        _expected: usize,
        _within: Duration,
    ) -> Vec<Bytes> {
        let broker = self
            .brokers
            .lock()
            .unwrap()
            .get(&names.jobs)
            .cloned()
            .expect("opened before");
        match queue {
            SideQueue::Completed => broker.completions(),
            SideQueue::DeadLetter => broker.dead_letters(),
        }
    }

    fn lease(&self) -> Duration {
        Duration::ZERO
    }
}

/// A real broker reached through [`zipfleet_backends::connect_broker`]:
/// RabbitMQ (`amqp://`) or SQS (`sqs://`).
pub struct ServiceSubject {
    pub broker_url: String,
    /// SQS visibility timeout; RabbitMQ leases last as long as the connection.
    pub visibility: Duration,
    /// Every queue set handed out, deleted when the subject is dropped.
    made: Mutex<Vec<QueueNames>>,
}

impl Drop for ServiceSubject {
    /// RabbitMQ's queues are deleted (each quorum queue holds file handles
    /// of a node-wide budget — about 300 queues on a default `ulimit` — and
    /// every check makes five); moto's cost nothing and vanish with it.
    fn drop(&mut self) {
        if !self.broker_url.starts_with("amqp") {
            return;
        }
        let made = std::mem::take(&mut *self.made.lock().unwrap_or_else(|p| p.into_inner()));
        for names in made {
            for queue in zipfleet_backends::rabbitmq::lane_queues(&names.jobs, LANES)
                .iter()
                .chain([&names.completed, &names.dead_letter])
            {
                crate::fleet::delete_rabbitmq_queue(queue);
            }
        }
    }
}

impl ServiceSubject {
    pub fn new(broker_url: impl Into<String>, visibility: Duration) -> Self {
        Self {
            broker_url: broker_url.into(),
            visibility,
            made: Mutex::default(),
        }
    }

    pub fn config(&self, names: &QueueNames, create: bool) -> BackendConfig {
        let mut config = BackendConfig::embedded(std::path::Path::new("/tmp"));
        config.broker = self.broker_url.clone().into();
        config.jobs_queue = Some(names.jobs.clone());
        config.completed_queue = Some(names.completed.clone());
        config.dead_letter_queue = Some(names.dead_letter.clone());
        config.create_queues = create;
        config.max_deliveries = MAX_DELIVERIES;
        config.sqs_visibility_timeout = self.visibility;
        config.fair_lanes = LANES;
        config
    }
}

#[async_trait]
impl Subject for ServiceSubject {
    fn fresh_names(&self) -> QueueNames {
        let names = names_with(if self.broker_url.starts_with("sqs") {
            "-"
        } else {
            "."
        });
        self.made
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(names.clone());
        names
    }

    async fn open(&self, names: &QueueNames) -> Arc<dyn Broker> {
        zipfleet_backends::connect_broker(&self.config(names, true))
            .await
            .unwrap_or_else(|err| {
                panic!(
                    "{} is reachable (run infra/test.sh): {err}",
                    self.broker_url
                )
            })
    }

    async fn drain(
        &self,
        names: &QueueNames,
        queue: SideQueue,
        expected: usize,
        within: Duration,
    ) -> Vec<Bytes> {
        // Read the side queue by taking from it as if it were a one-lane jobs queue.
        let side = match queue {
            SideQueue::Completed => &names.completed,
            SideQueue::DeadLetter => &names.dead_letter,
        };
        let reader_names = QueueNames {
            jobs: side.clone(),
            completed: names.completed.clone(),
            dead_letter: names.dead_letter.clone(),
        };
        let mut config = self.config(&reader_names, false);
        config.fair_lanes = 1;
        let reader = zipfleet_backends::connect_broker(&config)
            .await
            .expect("side queue reachable");
        let mut bodies = Vec::new();
        let deadline = tokio::time::Instant::now() + within;
        while bodies.len() < expected {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(delivery) = take_within(reader.as_ref(), Lane(0), left).await else {
                break;
            };
            bodies.push(delivery.body.clone());
            delivery.ack().await.expect("ack side queue");
        }
        bodies
    }

    fn lease(&self) -> Duration {
        if self.broker_url.starts_with("sqs") {
            self.visibility
        } else {
            Duration::ZERO
        }
    }
}

fn names_with(sep: &str) -> QueueNames {
    let unique = &uuid::Uuid::new_v4().simple().to_string()[..12];
    QueueNames {
        jobs: format!("conformance{sep}jobs{sep}{unique}"),
        completed: format!("conformance{sep}completed{sep}{unique}"),
        dead_letter: format!("conformance{sep}jobs{sep}dlq{sep}{unique}"),
    }
}

/// A message from `lane` within `within` (asking again and again, each take
/// waiting up to a second), or `None`.
pub async fn take_within(broker: &dyn Broker, lane: Lane, within: Duration) -> Option<Delivery> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let patience = left.min(Duration::from_secs(1));
        if let Some(delivery) = broker.take(lane, patience).await.expect("take works") {
            return Some(delivery);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        // A take with less than a second of patience may answer at once (SQS
        // waits whole seconds): do not spin.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A message from whichever lane has one within `within` (every lane asked
/// in turn, without waiting), or `None`: for jobs accepted through the API,
/// which the fair-share ledger puts on a lane of its choosing.
pub async fn take_any_within(broker: &dyn Broker, within: Duration) -> Option<Delivery> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        for lane in Lane::all(broker.lanes()) {
            if let Some(delivery) = broker.take(lane, Duration::ZERO).await.expect("take works") {
                return Some(delivery);
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn expect_take(broker: &dyn Broker, lane: Lane, what: &str) -> Delivery {
    take_within(broker, lane, Duration::from_secs(30))
        .await
        .unwrap_or_else(|| panic!("no delivery from {lane}: {what}"))
}

/// Nothing can be taken from any lane within `within` (each lane asked in turn).
async fn assert_all_lanes_empty(broker: &dyn Broker, within: Duration, what: &str) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        for lane in Lane::all(broker.lanes()) {
            let got = broker.take(lane, Duration::ZERO).await.expect("take works");
            assert!(got.is_none(), "{what}: {got:?} from {lane}");
        }
        if tokio::time::Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Published messages arrive, and an acknowledged message is gone for good.
pub async fn publish_take_ack(subject: &dyn Subject) {
    let names = subject.fresh_names();
    let broker = subject.open(&names).await;
    assert_eq!(broker.lanes(), LANES);
    let sent: HashSet<Bytes> = (0..3)
        .map(|i| Bytes::from(format!("{{\"n\":{i}}}")))
        .collect();
    for (i, body) in sent.iter().enumerate() {
        broker
            .publish_job(Lane(0), &format!("job{i}"), body)
            .await
            .unwrap();
    }
    let mut received = HashSet::new();
    for _ in 0..3 {
        let delivery = expect_take(broker.as_ref(), Lane(0), "published message").await;
        assert_eq!(
            (delivery.attempt, delivery.lane),
            (1, Lane(0)),
            "first delivery"
        );
        received.insert(delivery.body.clone());
        delivery.ack().await.unwrap();
    }
    assert_eq!(received, sent);
    assert_all_lanes_empty(
        broker.as_ref(),
        Duration::from_secs(3) + subject.lease(),
        "an acknowledged message came back",
    )
    .await;
}

/// A message published to lane n is taken from lane n and from no other.
pub async fn a_lane_gives_only_its_own_messages(subject: &dyn Subject) {
    let names = subject.fresh_names();
    let broker = subject.open(&names).await;
    for lane in Lane::all(LANES) {
        broker
            .publish_job(lane, "job", format!("{{\"lane\":{}}}", lane.0).as_bytes())
            .await
            .unwrap();
    }
    // Last lane first, so that no lane is read in publishing order by chance.
    for lane in Lane::all(LANES).rev() {
        let delivery = expect_take(broker.as_ref(), lane, "its own message").await;
        assert_eq!(
            (&delivery.body[..], delivery.lane),
            (format!("{{\"lane\":{}}}", lane.0).as_bytes(), lane)
        );
        delivery.ack().await.unwrap();
        // Nothing else on it: its message was the only one.
        assert!(
            broker.take(lane, Duration::ZERO).await.unwrap().is_none(),
            "{lane} gave a second message"
        );
    }
    let beyond = broker.publish_job(Lane(LANES), "job", b"{}").await;
    assert!(
        matches!(beyond, Err(ref err) if !err.is_transient()),
        "a lane beyond the last is refused: {beyond:?}"
    );
}

/// `take` takes exactly one message and leaves the rest to others: two
/// clients each holding one of three, the third still there for a third take.
pub async fn take_takes_exactly_one(subject: &dyn Subject) {
    let names = subject.fresh_names();
    let first = subject.open(&names).await;
    let second = subject.open(&names).await;
    for i in 0..3 {
        first
            .publish_job(
                LAST,
                &format!("job{i}"),
                format!("{{\"n\":{i}}}").as_bytes(),
            )
            .await
            .unwrap();
    }
    wait_for_depth(first.as_ref(), 3).await;
    let one = expect_take(first.as_ref(), LAST, "one of three").await;
    // SQS's counts are approximate and settle within a moment.
    wait_for_depth(first.as_ref(), 2).await;
    let two = expect_take(second.as_ref(), LAST, "another of three").await;
    let three = expect_take(second.as_ref(), LAST, "the last of three").await;
    let bodies: HashSet<_> = [&one, &two, &three]
        .iter()
        .map(|d| d.body.clone())
        .collect();
    assert_eq!(bodies.len(), 3, "three different messages");
    // (Leases renewed first: SQS's here are only 2 s.)
    for held in [&one, &two, &three] {
        held.extend_lease().await.unwrap();
    }
    assert!(
        first.take(LAST, Duration::ZERO).await.unwrap().is_none(),
        "a fourth take found something while three are held"
    );
    for delivery in [one, two, three] {
        delivery.ack().await.unwrap();
    }
}

/// An empty lane answers `None` at once when asked without patience, and
/// after about its patience otherwise — not after a long poll.
pub async fn an_empty_lane_gives_none_promptly(subject: &dyn Subject) {
    let names = subject.fresh_names();
    let broker = subject.open(&names).await;
    for lane in Lane::all(LANES) {
        let started = std::time::Instant::now();
        assert!(broker.take(lane, Duration::ZERO).await.unwrap().is_none());
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(1),
            "{lane}: {took:?} for nothing"
        );
    }
    let started = std::time::Instant::now();
    assert!(broker
        .take(Lane(1), Duration::from_secs(1))
        .await
        .unwrap()
        .is_none());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "a take with 1 s of patience on an empty lane took {took:?}"
    );
}

/// A handed-back message is redelivered on its own lane with a higher attempt number.
pub async fn hand_back_redelivers_on_the_same_lane(subject: &dyn Subject) {
    let names = subject.fresh_names();
    let broker = subject.open(&names).await;
    broker
        .publish_job(Lane(1), "job", b"{\"hand\":\"back\"}")
        .await
        .unwrap();
    let first = expect_take(broker.as_ref(), Lane(1), "first delivery").await;
    assert_eq!(first.attempt, 1);
    first.hand_back().await.unwrap();
    for other in [Lane(0), LAST] {
        assert!(
            broker.take(other, Duration::ZERO).await.unwrap().is_none(),
            "a handed-back message showed up on {other}"
        );
    }
    let second = expect_take(broker.as_ref(), Lane(1), "redelivery after hand-back").await;
    assert_eq!(&second.body[..], b"{\"hand\":\"back\"}");
    assert_eq!(
        (second.attempt, second.lane),
        (2, Lane(1)),
        "the attempt counts up"
    );
    second.ack().await.unwrap();
}

/// A taker that disappears without settling loses nothing: another
/// client gets the message again, on its lane.
pub async fn vanished_taker_loses_nothing(subject: &dyn Subject) {
    let names = subject.fresh_names();
    let doomed = subject.open(&names).await;
    doomed
        .publish_job(LAST, "job", b"{\"survives\":true}")
        .await
        .unwrap();
    {
        let delivery = expect_take(doomed.as_ref(), LAST, "first delivery").await;
        assert_eq!(delivery.attempt, 1);
        // Dropped unsettled, with its client.
        drop(delivery);
        drop(doomed);
    }
    let survivor = subject.open(&names).await;
    let delivery = take_within(
        survivor.as_ref(),
        LAST,
        subject.lease() + Duration::from_secs(30),
    )
    .await
    .expect("the message came back");
    assert_eq!(&delivery.body[..], b"{\"survives\":true}");
    assert!(
        delivery.attempt >= 2,
        "a redelivery is not a first attempt (got {})",
        delivery.attempt
    );
    delivery.ack().await.unwrap();
}

/// After the configured number of deliveries, a message that keeps coming
/// back lands in the dead-letter queue instead of looping forever — from
/// lane 0 and from any other lane alike.
pub async fn delivery_limit_dead_letters_from_any_lane(subject: &dyn Subject) {
    let names = subject.fresh_names();
    let broker = subject.open(&names).await;
    for lane in [Lane(0), LAST] {
        broker
            .publish_job(
                lane,
                "job",
                format!("{{\"failing\":{}}}", lane.0).as_bytes(),
            )
            .await
            .unwrap();
        for attempt in 1..=MAX_DELIVERIES {
            let delivery = expect_take(broker.as_ref(), lane, "delivery within the limit").await;
            assert_eq!(delivery.attempt, attempt);
            delivery.hand_back().await.unwrap();
        }
        // SQS moves it on the next receive attempt; the others already have.
        let extra = take_within(broker.as_ref(), lane, Duration::from_secs(3)).await;
        assert!(extra.is_none(), "delivered beyond the limit: {extra:?}");
    }
    let mut dead = subject
        .drain(&names, SideQueue::DeadLetter, 2, Duration::from_secs(15))
        .await;
    dead.sort();
    assert_eq!(
        dead,
        vec![
            Bytes::from(format!("{{\"failing\":{}}}", 0)),
            Bytes::from(format!("{{\"failing\":{}}}", LAST.0)),
        ]
    );
}

/// A message the worker cannot use is moved to the dead-letter queue at once.
pub async fn malformed_message_goes_to_dead_letter_queue(subject: &dyn Subject) {
    let names = subject.fresh_names();
    let broker = subject.open(&names).await;
    broker
        .publish_job(Lane(1), "", b"this is not a job {")
        .await
        .unwrap();
    let delivery = expect_take(broker.as_ref(), Lane(1), "the malformed message").await;
    assert!(JobMessage::parse(&delivery.body).is_err());
    delivery.dead_letter("not a job message").await.unwrap();
    let dead = subject
        .drain(&names, SideQueue::DeadLetter, 1, Duration::from_secs(15))
        .await;
    assert_eq!(dead, vec![Bytes::from_static(b"this is not a job {")]);
    assert_all_lanes_empty(
        broker.as_ref(),
        Duration::from_secs(3) + subject.lease(),
        "a dead-lettered message stayed on the jobs queue",
    )
    .await;
}

/// Completion messages reach the completed queue intact.
pub async fn completions_are_published(subject: &dyn Subject) {
    let names = subject.fresh_names();
    let broker = subject.open(&names).await;
    broker
        .publish_completion("job", b"{\"state\":\"succeeded\"}")
        .await
        .unwrap();
    let completed = subject
        .drain(&names, SideQueue::Completed, 1, Duration::from_secs(15))
        .await;
    assert_eq!(
        completed,
        vec![Bytes::from_static(b"{\"state\":\"succeeded\"}")]
    );
}

/// Each lane's depth, and the queue's depth (what autoscalers read) as
/// their sum; a taken message leaves the ready count.
pub async fn lane_depths_count_waiting_messages(subject: &dyn Subject) {
    let names = subject.fresh_names();
    let broker = subject.open(&names).await;
    assert_eq!(broker.queue_depth().await.unwrap().ready, 0);
    for (i, lane) in [Lane(0), Lane(0), LAST, LAST, LAST].into_iter().enumerate() {
        broker
            .publish_job(
                lane,
                &format!("job{i}"),
                format!("{{\"n\":{i}}}").as_bytes(),
            )
            .await
            .unwrap();
    }
    wait_for_depth(broker.as_ref(), 5).await;
    let depths = broker.lane_depths().await.unwrap();
    assert_eq!(
        depths.iter().map(|d| (d.lane, d.ready)).collect::<Vec<_>>(),
        [(Lane(0), 2), (Lane(1), 0), (LAST, 3)]
    );
    assert!(
        depths[2].queue.ends_with("lane2") && !depths[0].queue.contains("lane"),
        "each lane names its queue: {depths:?}"
    );
    let delivery = expect_take(broker.as_ref(), LAST, "one of three").await;
    wait_for_depth(broker.as_ref(), 4).await;
    let depth = broker.queue_depth().await.unwrap();
    if let Some(in_flight) = depth.in_flight {
        assert_eq!(in_flight, 1, "one message is being worked on");
    }
    delivery.ack().await.unwrap();
}

async fn wait_for_depth(broker: &dyn Broker, ready: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let depth = broker.queue_depth().await.unwrap();
        if depth.ready == ready {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "queue depth stayed at {depth:?}, expected {ready} ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// While one client holds a message and keeps its lease alive — for longer
/// than the lease itself — no other client receives it.
pub async fn a_held_message_is_not_delivered_twice(subject: &dyn Subject) {
    let names = subject.fresh_names();
    let first = subject.open(&names).await;
    let second = subject.open(&names).await;
    first
        .publish_job(Lane(1), "job", b"{\"long\":\"job\"}")
        .await
        .unwrap();
    let held = expect_take(first.as_ref(), Lane(1), "the long job").await;

    // The job runs for three leases (at least 6 s), renewing as the worker does.
    let hold_for = (subject.lease() * 3).max(Duration::from_secs(6));
    let renew_every = held.lease_renewal_interval();
    let rival_got = {
        let watch = take_within(second.as_ref(), Lane(1), hold_for);
        let renew = async {
            if let Some(interval) = renew_every {
                let mut ticker = tokio::time::interval(interval);
                loop {
                    ticker.tick().await;
                    held.extend_lease().await.expect("lease renewed");
                }
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            got = watch => got,
            () = renew => unreachable!(),
        }
    };
    assert!(
        rival_got.is_none(),
        "a second client received a message whose lease was alive: {rival_got:?}"
    );
    held.ack().await.unwrap();
    let after = take_within(
        second.as_ref(),
        Lane(1),
        Duration::from_secs(3) + subject.lease(),
    )
    .await;
    assert!(after.is_none(), "the acknowledged long job came back");
}

/// Two clients taking from every lane at once share the work: every message
/// is processed, none twice.
pub async fn concurrent_takers_share_without_duplicates(subject: &dyn Subject) {
    let names = subject.fresh_names();
    let brokers = [subject.open(&names).await, subject.open(&names).await];
    let count = 21;
    for i in 0..count {
        let lane = Lane(i % LANES);
        brokers[0]
            .publish_job(
                lane,
                &format!("job{i}"),
                format!("{{\"n\":{i}}}").as_bytes(),
            )
            .await
            .unwrap();
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for broker in brokers {
        let seen = seen.clone();
        tasks.push(tokio::spawn(async move {
            let mut idle_rounds = 0;
            while idle_rounds < 3 {
                let mut found = false;
                for lane in Lane::all(LANES) {
                    if let Some(delivery) = broker.take(lane, Duration::ZERO).await.unwrap() {
                        found = true;
                        seen.lock().unwrap().push(delivery.body.clone());
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        delivery.ack().await.unwrap();
                    }
                }
                if found {
                    idle_rounds = 0;
                } else {
                    idle_rounds += 1;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let seen = seen.lock().unwrap().clone();
    let distinct: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(
        distinct.len(),
        usize::from(count),
        "every message was received"
    );
    assert_eq!(
        seen.len(),
        usize::from(count),
        "no message was received twice"
    );
}

/// Dead letters of one queue set: `bodies` dead-lettered by the worker
/// (reason given), and one by the delivery limit; returns the listing once
/// all are there.
async fn dead_letters_of(
    subject: &dyn Subject,
    broker: &dyn Broker,
    by_worker: &[(&str, &[u8])],
    by_limit: (&str, &[u8]),
) -> Vec<DeadLetter> {
    for (i, (job_id, body)) in by_worker.iter().enumerate() {
        let lane = Lane(u16::try_from(i).unwrap() % LANES);
        broker.publish_job(lane, job_id, body).await.unwrap();
        let delivery = expect_take(broker, lane, "a message to dead-letter").await;
        delivery
            .dead_letter(&format!("not a job message ({i})"))
            .await
            .unwrap();
    }
    broker
        .publish_job(LAST, by_limit.0, by_limit.1)
        .await
        .unwrap();
    for _ in 0..MAX_DELIVERIES {
        let delivery = expect_take(broker, LAST, "a job that keeps failing").await;
        delivery.hand_back().await.unwrap();
    }
    // SQS moves it on the next receive attempt.
    assert!(
        take_within(broker, LAST, Duration::from_secs(3) + subject.lease())
            .await
            .is_none()
    );
    let dlq = broker.dead_letter_queue().expect("a dead-letter queue");
    let expected = by_worker.len() + 1;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let listed = dlq.list(100).await.unwrap();
        if listed.len() == expected {
            return listed;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected {expected} dead letters, listed {listed:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn ids(letters: &[DeadLetter]) -> Vec<String> {
    let mut ids: Vec<String> = letters.iter().map(|l| l.id.clone()).collect();
    ids.sort();
    ids
}

/// Dead letters have ids that stay the same from one listing to the next;
/// one can be redriven (to lane 0, as a first delivery) or deleted by its id
/// while the others stay where they are, untouched; an unknown id is no
/// message.
pub async fn dead_letters_by_id(subject: &dyn Subject) {
    let names = subject.fresh_names();
    let broker = subject.open(&names).await;
    let listed = dead_letters_of(
        subject,
        broker.as_ref(),
        &[
            ("a", br#"{"job_id":"dl-a"}"#),
            ("b", br#"{"job_id":"dl-b"}"#),
            ("c", br#"{"job_id":"dl-c"}"#),
        ],
        ("d", br#"{"job_id":"dl-d"}"#),
    )
    .await;
    let dlq = broker.dead_letter_queue().unwrap();
    assert_eq!(
        ids(&listed),
        ids(&dlq.list(100).await.unwrap()),
        "ids are stable"
    );
    assert_eq!(
        ids(&listed).into_iter().collect::<HashSet<_>>().len(),
        4,
        "ids are distinct: {listed:?}"
    );
    let by_job = |job: &str| {
        listed
            .iter()
            .find(|l| l.job_id.as_deref() == Some(job))
            .unwrap_or_else(|| panic!("{job} listed: {listed:?}"))
            .clone()
    };
    let (redriven, deleted) = (by_job("dl-b"), by_job("dl-d"));

    assert!(!dlq.redrive_one("no-such-message").await.unwrap());
    assert!(!dlq.delete_one("no-such-message").await.unwrap());
    assert!(dlq.redrive_one(&redriven.id).await.unwrap());
    let back = expect_take(broker.as_ref(), Lane(0), "the redriven dead letter").await;
    assert_eq!(
        (&back.body[..], back.attempt),
        (&br#"{"job_id":"dl-b"}"#[..], 1),
        "a redriven message is a first delivery on lane 0"
    );
    back.ack().await.unwrap();
    assert!(dlq.delete_one(&deleted.id).await.unwrap());
    assert!(
        !dlq.delete_one(&deleted.id).await.unwrap(),
        "deleted means gone"
    );

    let rest = dlq.list(100).await.unwrap();
    let mut expected: Vec<DeadLetter> = listed
        .iter()
        .filter(|l| l.id != redriven.id && l.id != deleted.id)
        .cloned()
        .collect();
    expected.sort_by(|a, b| a.id.cmp(&b.id));
    let mut rest_sorted = rest.clone();
    rest_sorted.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(
        rest_sorted, expected,
        "the others are still there, as they were"
    );
    assert!(
        dlq.depth().await.unwrap() >= 2,
        "depth counts the others again"
    );
    assert_all_lanes_empty(
        broker.as_ref(),
        Duration::from_secs(2),
        "only the redriven message went back",
    )
    .await;
}

/// Erasure's part: every dead letter of one job is deleted, whichever way it
/// got there, and no other.
pub async fn dead_letters_of_a_job_are_deleted(subject: &dyn Subject) {
    let names = subject.fresh_names();
    let broker = subject.open(&names).await;
    dead_letters_of(
        subject,
        broker.as_ref(),
        &[
            ("gone", br#"{"job_id":"gone"}"#),
            ("kept", br#"{"job_id":"kept"}"#),
            ("gone", b"not json, but published under the job's id"),
        ],
        ("gone", br#"{"job_id":"gone","again":true}"#),
    )
    .await;
    let dlq = broker.dead_letter_queue().unwrap();
    assert_eq!(dlq.delete_job("nobody").await.unwrap(), 0);
    assert_eq!(dlq.delete_job("gone").await.unwrap(), 3);
    let rest = dlq.list(100).await.unwrap();
    assert_eq!(
        rest.iter().map(|l| l.job_id.as_deref()).collect::<Vec<_>>(),
        [Some("kept")],
        "{rest:?}"
    );
    assert_eq!(dlq.delete_job("gone").await.unwrap(), 0);
}

/// A spec too large for a message travels by claim check: the API's
/// packing writes it to the store, the message carries only the reference,
/// and the worker's side reads back the same spec.
pub async fn large_spec_travels_by_claim_check(subject: &dyn Subject, store: &dyn ObjectStore) {
    let names = subject.fresh_names();
    let broker = subject.open(&names).await;
    let images: Vec<_> = (0..3000)
        .map(|i| serde_json::json!({"id": format!("image-{i:05}"), "label": format!("label-{}", i % 7), "url": format!("https://example.org/photos/{i}.jpg")}))
        .collect();
    let job_id = format!("claim-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let spec_json = serde_json::json!({"job_id": job_id, "images": images}).to_string();
    let spec = zipfleet_shared::spec::JobSpec::parse_unvalidated(spec_json.as_bytes()).unwrap();
    let threshold = 128 * 1024;
    let body = JobMessage::pack(store, &job_id, &spec, threshold)
        .await
        .expect("packed");
    assert!(
        body.len() < 1024,
        "the message carries a reference, not the spec ({} bytes)",
        body.len()
    );
    broker.publish_job(Lane(0), &job_id, &body).await.unwrap();

    let delivery = expect_take(broker.as_ref(), Lane(0), "the claim-checked job").await;
    let message = JobMessage::parse(&delivery.body).expect("a job message");
    let SpecPayload::ClaimCheck(location) = message.spec else {
        panic!("a spec reference, not the spec: {:?}", message.spec);
    };
    assert!(
        location.key.ends_with(&format!("specs/{job_id}.json")),
        "{}",
        location.key
    );
    let stored = zipfleet_shared::store::read_small(store, &location.key, 16 * 1024 * 1024)
        .await
        .expect("the spec is in the store");
    let read_back = zipfleet_shared::spec::JobSpec::parse_unvalidated(&stored).unwrap();
    assert_eq!(read_back, spec);
    delivery.ack().await.unwrap();

    // Small specs still travel inline.
    let small = crate::spec(
        serde_json::json!({"images": [{"id": "1", "label": "a", "url": "https://example.org/a.jpg"}]}),
    );
    let inline = JobMessage::parse(
        &JobMessage::pack(store, "small", &small, threshold)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(inline.spec, SpecPayload::Inline(small));
}

/// Where infrastructure owns the queues (`ZIPFLEET_CREATE_QUEUES=false`),
/// every lane must exist: a missing one is named in the error, and once it
/// exists the broker connects. Real brokers only.
pub async fn missing_lanes_are_named(subject: &ServiceSubject) {
    let names = subject.fresh_names();
    // Made with two lanes; asked for three.
    let mut config = subject.config(&names, true);
    config.fair_lanes = 2;
    zipfleet_backends::connect_broker(&config)
        .await
        .expect("queues created");
    let err = zipfleet_backends::connect_broker(&subject.config(&names, false))
        .await
        .err()
        .expect("a missing lane is an error");
    let text = err.to_string();
    assert!(
        text.contains("lane 2")
            && text.contains(&LAST.queue_name(
                &names.jobs,
                if subject.broker_url.starts_with("sqs") {
                    '-'
                } else {
                    '.'
                }
            )),
        "{text}"
    );
    assert!(!err.is_transient(), "a missing lane is a misconfiguration");
    zipfleet_backends::connect_broker(&subject.config(&names, true))
        .await
        .expect("created now");
    zipfleet_backends::connect_broker(&subject.config(&names, false))
        .await
        .expect("every lane exists");
}
