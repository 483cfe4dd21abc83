//! The broker conformance suite: one set of behaviours every [`Broker`] must
//! show — the in-process one, RabbitMQ and SQS alike. Each check is a plain
//! async function over a [`Subject`] (how to open a broker on a fresh set of
//! queues and read what landed on its side queues); `tests/conformance.rs`
//! instantiates every check for every broker.

use async_trait::async_trait;
use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zipfleet_shared::broker::memory::MemoryBroker;
use zipfleet_shared::broker::{Broker, Consumer, Delivery, QueueNames};
use zipfleet_shared::config::BackendConfig;
use zipfleet_shared::message::{JobMessage, SpecPayload};
use zipfleet_shared::store::ObjectStore;

/// Deliveries before a message is dead-lettered, in every check.
pub const MAX_DELIVERIES: u32 = 2;

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
    /// A broker on `names`, as a separate client (its own connection): two
    /// calls behave like two workers.
    async fn open(&self, names: &QueueNames) -> Arc<dyn Broker>;
    /// Take up to `expected` messages off a side queue, waiting at most `within`.
    async fn drain(
        &self,
        names: &QueueNames,
        queue: SideQueue,
        expected: usize,
        within: Duration,
    ) -> Vec<Bytes>;
    /// How long before a delivery whose consumer vanished comes back.
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
                .or_insert_with(|| MemoryBroker::new(MAX_DELIVERIES))
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
}

impl ServiceSubject {
    fn config(&self, names: &QueueNames, create: bool) -> BackendConfig {
        let mut config = BackendConfig::embedded(std::path::Path::new("/tmp"));
        config.broker = self.broker_url.clone().into();
        config.jobs_queue = Some(names.jobs.clone());
        config.completed_queue = Some(names.completed.clone());
        config.dead_letter_queue = Some(names.dead_letter.clone());
        config.create_queues = create;
        config.max_deliveries = MAX_DELIVERIES;
        config.sqs_visibility_timeout = self.visibility;
        config
    }
}

#[async_trait]
impl Subject for ServiceSubject {
    fn fresh_names(&self) -> QueueNames {
        names_with(if self.broker_url.starts_with("sqs") {
            "-"
        } else {
            "."
        })
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
        // Read the side queue by consuming it as if it were a jobs queue.
        let side = match queue {
            SideQueue::Completed => &names.completed,
            SideQueue::DeadLetter => &names.dead_letter,
        };
        let reader_names = QueueNames {
            jobs: side.clone(),
            completed: names.completed.clone(),
            dead_letter: names.dead_letter.clone(),
        };
        let reader = zipfleet_backends::connect_broker(&self.config(&reader_names, false))
            .await
            .expect("side queue reachable");
        let mut consumer = reader.consumer(10).await.expect("consume side queue");
        let mut bodies = Vec::new();
        let deadline = tokio::time::Instant::now() + within;
        while bodies.len() < expected {
            let Ok(delivery) = tokio::time::timeout_at(deadline, consumer.next()).await else {
                break;
            };
            let delivery = delivery.expect("side queue delivery");
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

/// The next delivery within `within`, or `None`.
async fn next_within(consumer: &mut Box<dyn Consumer>, within: Duration) -> Option<Delivery> {
    match tokio::time::timeout(within, consumer.next()).await {
        Ok(delivery) => Some(delivery.expect("consumer works")),
        Err(_) => None,
    }
}

async fn expect_next(consumer: &mut Box<dyn Consumer>, what: &str) -> Delivery {
    next_within(consumer, Duration::from_secs(30))
        .await
        .unwrap_or_else(|| panic!("no delivery: {what}"))
}

/// Published messages arrive, and an acknowledged message is gone for good.
pub async fn publish_receive_ack(subject: &dyn Subject) {
    let names = subject.fresh_names();
    let broker = subject.open(&names).await;
    let sent: HashSet<Bytes> = (0..3)
        .map(|i| Bytes::from(format!("{{\"n\":{i}}}")))
        .collect();
    for (i, body) in sent.iter().enumerate() {
        broker.publish_job(&format!("job{i}"), body).await.unwrap();
    }
    let mut consumer = broker.consumer(3).await.unwrap();
    let mut received = HashSet::new();
    for _ in 0..3 {
        let delivery = expect_next(&mut consumer, "published message").await;
        assert_eq!(delivery.attempt, 1, "first delivery");
        received.insert(delivery.body.clone());
        delivery.ack().await.unwrap();
    }
    assert_eq!(received, sent);
    let again = next_within(&mut consumer, Duration::from_secs(3) + subject.lease()).await;
    assert!(
        again.is_none(),
        "an acknowledged message came back: {again:?}"
    );
}

/// A handed-back message is redelivered with a higher attempt number.
pub async fn hand_back_redelivers_with_higher_attempt(subject: &dyn Subject) {
    let names = subject.fresh_names();
    let broker = subject.open(&names).await;
    broker
        .publish_job("job", b"{\"hand\":\"back\"}")
        .await
        .unwrap();
    let mut consumer = broker.consumer(1).await.unwrap();
    let first = expect_next(&mut consumer, "first delivery").await;
    assert_eq!(first.attempt, 1);
    first.hand_back().await.unwrap();
    let second = expect_next(&mut consumer, "redelivery after hand-back").await;
    assert_eq!(&second.body[..], b"{\"hand\":\"back\"}");
    assert_eq!(second.attempt, 2, "the attempt counts up");
    second.ack().await.unwrap();
}

/// A consumer that disappears without settling loses nothing: another
/// client gets the message again.
pub async fn vanished_consumer_loses_nothing(subject: &dyn Subject) {
    let names = subject.fresh_names();
    let doomed = subject.open(&names).await;
    doomed
        .publish_job("job", b"{\"survives\":true}")
        .await
        .unwrap();
    {
        let mut consumer = doomed.consumer(1).await.unwrap();
        let delivery = expect_next(&mut consumer, "first delivery").await;
        assert_eq!(delivery.attempt, 1);
        // Dropped unsettled, with its consumer and its client.
        drop(delivery);
        drop(consumer);
        drop(doomed);
    }
    let survivor = subject.open(&names).await;
    let mut consumer = survivor.consumer(1).await.unwrap();
    let delivery = next_within(&mut consumer, subject.lease() + Duration::from_secs(30))
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
/// back lands in the dead-letter queue instead of looping forever.
pub async fn delivery_limit_dead_letters(subject: &dyn Subject) {
    let names = subject.fresh_names();
    let broker = subject.open(&names).await;
    broker
        .publish_job("job", b"{\"keeps\":\"failing\"}")
        .await
        .unwrap();
    let mut consumer = broker.consumer(1).await.unwrap();
    for attempt in 1..=MAX_DELIVERIES {
        let delivery = expect_next(&mut consumer, "delivery within the limit").await;
        assert_eq!(delivery.attempt, attempt);
        delivery.hand_back().await.unwrap();
    }
    // SQS moves it on the next receive attempt; the others already have.
    let extra = next_within(&mut consumer, Duration::from_secs(3)).await;
    assert!(extra.is_none(), "delivered beyond the limit: {extra:?}");
    let dead = subject
        .drain(&names, SideQueue::DeadLetter, 1, Duration::from_secs(15))
        .await;
    assert_eq!(dead, vec![Bytes::from_static(b"{\"keeps\":\"failing\"}")]);
}

/// A message the worker cannot use is moved to the dead-letter queue at once.
pub async fn malformed_message_goes_to_dead_letter_queue(subject: &dyn Subject) {
    let names = subject.fresh_names();
    let broker = subject.open(&names).await;
    broker
        .publish_job("", b"this is not a job {")
        .await
        .unwrap();
    let mut consumer = broker.consumer(1).await.unwrap();
    let delivery = expect_next(&mut consumer, "the malformed message").await;
    assert!(JobMessage::parse(&delivery.body).is_err());
    delivery.dead_letter("not a job message").await.unwrap();
    let dead = subject
        .drain(&names, SideQueue::DeadLetter, 1, Duration::from_secs(15))
        .await;
    assert_eq!(dead, vec![Bytes::from_static(b"this is not a job {")]);
    let again = next_within(&mut consumer, Duration::from_secs(3) + subject.lease()).await;
    assert!(
        again.is_none(),
        "a dead-lettered message stayed on the jobs queue"
    );
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

/// The depth autoscalers read counts waiting messages and drops as they are taken.
pub async fn queue_depth_counts_waiting_messages(subject: &dyn Subject) {
    let names = subject.fresh_names();
    let broker = subject.open(&names).await;
    assert_eq!(broker.queue_depth().await.unwrap().ready, 0);
    for i in 0..4 {
        broker
            .publish_job(&format!("job{i}"), format!("{{\"n\":{i}}}").as_bytes())
            .await
            .unwrap();
    }
    // SQS's figures are approximate and settle within a moment.
    wait_for_depth(broker.as_ref(), 4).await;
    let mut consumer = broker.consumer(1).await.unwrap();
    let delivery = expect_next(&mut consumer, "one of four").await;
    wait_for_depth(broker.as_ref(), 3).await;
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
        .publish_job("job", b"{\"long\":\"job\"}")
        .await
        .unwrap();
    let mut holder = first.consumer(1).await.unwrap();
    let held = expect_next(&mut holder, "the long job").await;

    // The job runs for three leases (at least 6 s), renewing as the worker does.
    let hold_for = (subject.lease() * 3).max(Duration::from_secs(6));
    let renew_every = held.lease_renewal_interval();
    let mut rival = second.consumer(1).await.unwrap();
    let rival_got = {
        let watch = next_within(&mut rival, hold_for);
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
    let after = next_within(&mut rival, Duration::from_secs(3) + subject.lease()).await;
    assert!(after.is_none(), "the acknowledged long job came back");
}

/// Two clients consuming the same queue at once share the work: every
/// message is processed, none twice.
pub async fn concurrent_consumers_share_without_duplicates(subject: &dyn Subject) {
    let names = subject.fresh_names();
    let brokers = [subject.open(&names).await, subject.open(&names).await];
    let count = 20;
    for i in 0..count {
        brokers[0]
            .publish_job(&format!("job{i}"), format!("{{\"n\":{i}}}").as_bytes())
            .await
            .unwrap();
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for broker in brokers {
        let seen = seen.clone();
        tasks.push(tokio::spawn(async move {
            let mut consumer = broker.consumer(4).await.unwrap();
            while let Some(delivery) = next_within(&mut consumer, Duration::from_secs(4)).await {
                seen.lock().unwrap().push(delivery.body.clone());
                tokio::time::sleep(Duration::from_millis(20)).await;
                delivery.ack().await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let seen = seen.lock().unwrap().clone();
    let distinct: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(distinct.len(), count, "every message was received");
    assert_eq!(seen.len(), count, "no message was received twice");
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
    broker.publish_job(&job_id, &body).await.unwrap();

    let mut consumer = broker.consumer(1).await.unwrap();
    let delivery = expect_next(&mut consumer, "the claim-checked job").await;
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

/// A receive raced against other events and dropped mid-wait loses nothing:
/// a message published while calls to `next()` keep being abandoned (as the
/// worker's `select!` does whenever a job finishes first) is still handed to
/// the next call promptly, on its first delivery — not left invisible in an
/// abandoned long poll until a visibility timeout brings it back.
pub async fn a_dropped_receive_loses_nothing(subject: &dyn Subject) {
    let names = subject.fresh_names();
    let broker = subject.open(&names).await;
    let mut consumer = broker.consumer(2).await.unwrap();
    let mut arrived = None;
    // Calls of 150 ms each, abandoned when nothing came; the message is
    // published after the third. Six seconds in all: far below a visibility timeout.
    for round in 0..40 {
        if round == 3 {
            broker
                .publish_job("dropped", b"{\"dropped\":true}")
                .await
                .unwrap();
        }
        if let Some(delivery) = next_within(&mut consumer, Duration::from_millis(150)).await {
            assert!(round >= 3, "a delivery before anything was published");
            arrived = Some(delivery);
            break;
        }
    }
    let delivery =
        arrived.expect("the message published during abandoned receives arrives promptly");
    assert_eq!(&delivery.body[..], b"{\"dropped\":true}");
    assert_eq!(
        delivery.attempt, 1,
        "it was never taken by an abandoned receive"
    );
    delivery.ack().await.unwrap();
}
