//! RabbitMQ (`ZIPFLEET_BROKER=amqp://…`), with lapin.
//!
//! - Queues are durable quorum queues. Every lane of the jobs queue (lane 0
//!   `zipfleet.jobs`, lane n `zipfleet.jobs.lane{n}`) has the same delivery
//!   limit (`x-delivery-limit`) and dead-letters to the one dead-letter queue
//!   through the default exchange, so a message that keeps failing ends there
//!   instead of looping forever. With `ZIPFLEET_CREATE_QUEUES=false` every
//!   lane must already exist; a missing one is named in the error.
//! - Every publish is persistent, `mandatory` (an unroutable message is an
//!   error, not a silent loss) and waits for the publisher confirm.
//! - **Take** is `basic.get` with manual acknowledgement, one message at a
//!   time. A get that finds nothing leaves its channel for the next get; a get
//!   that brings a message gives its channel to the delivery, which settles on
//!   it (ack, nack-requeue to its own lane) and closes it when dropped — an
//!   unsettled message is then requeued by RabbitMQ. One channel per running
//!   job also means a channel-level error (a consumer timeout, say) touches
//!   only that job.
//! - lapin does not reconnect by itself: a [`Session`] (connection + confirm
//!   channel) is rebuilt on the next use after it broke; the worker loop backs
//!   off while the broker is away.
//! - Long jobs: RabbitMQ closes a channel whose delivery stays unacked past
//!   the consumer timeout (30 min by default), `basic.get` deliveries
//!   included. Every lane is declared with `x-consumer-timeout` (honoured from
//!   RabbitMQ 3.12, for gets too); on older servers set `consumer_timeout` in
//!   rabbitmq.conf above the longest job. A job caught by the timeout is
//!   redelivered and rebuilt idempotently, never lost.

use async_trait::async_trait;
use bytes::Bytes;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::publisher_confirm::Confirmation;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use zipfleet_shared::broker::{Broker, BrokerError, Delivery, Lane, LaneDepth, QueueNames, Settle};

/// RabbitMQ's queue names unless configured: dotted, as AMQP names usually are.
pub fn default_queue_names() -> QueueNames {
    QueueNames {
        jobs: "zipfleet.jobs".into(),
        completed: "zipfleet.completed".into(),
        dead_letter: "zipfleet.jobs.dlq".into(),
    }
}

/// The queue of every lane, lane 0 first: the one place RabbitMQ's lane
/// names are made (`zipfleet.jobs`, `zipfleet.jobs.lane1`, …).
pub fn lane_queues(jobs: &str, lanes: u16) -> Vec<String> {
    Lane::all(lanes.max(1))
        .map(|lane| lane.queue_name(jobs, '.'))
        .collect()
}

/// How long a job may hold its delivery before RabbitMQ (3.12+) takes it back.
const CONSUMER_TIMEOUT_MS: i64 = 6 * 3600 * 1000;
/// How often a `take` with patience asks again: `basic.get` does not wait.
const GET_POLL_EVERY: Duration = Duration::from_millis(100);
/// The header naming a dead letter the worker moved (RabbitMQ has no message ids).
const DEAD_LETTER_ID_HEADER: &str = "x-zipfleet-dead-letter-id";
/// The header saying why the worker moved a dead letter.
const DEAD_LETTER_REASON_HEADER: &str = "x-zipfleet-dead-letter-reason";

struct Session {
    connection: Connection,
    publisher: Channel,
}

struct Inner {
    uri: String,
    names: QueueNames,
    /// Every lane's queue, lane 0 (`names.jobs`) first.
    lanes: Vec<String>,
    max_deliveries: u32,
    create_queues: bool,
    session: Mutex<Option<Arc<Session>>>,
    /// A channel whose last `basic.get` found nothing, kept for the next one.
    idle_getter: std::sync::Mutex<Option<Channel>>,
}

/// A RabbitMQ broker. Cheap to clone.
#[derive(Clone)]
pub struct RabbitBroker {
    inner: Arc<Inner>,
}

fn unavailable(err: lapin::Error) -> BrokerError {
    BrokerError::Unavailable(err.to_string())
}

/// Whether RabbitMQ answered "no such queue" (a soft error: it closed the channel).
fn is_not_found(err: &lapin::Error) -> bool {
    matches!(err, lapin::Error::ProtocolError(amqp)
        if matches!(amqp.kind(), AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND)))
}

/// Settings of a [`RabbitBroker`] beyond the URI and queue names.
#[derive(Debug, Clone, Copy)]
pub struct RabbitOptions {
    /// Deliveries of one message before it is dead-lettered.
    pub max_deliveries: u32,
    /// Declare the queues (with the dead-letter wiring) at start.
    pub create_queues: bool,
    /// Lanes of the jobs queue.
    pub lanes: u16,
}

impl RabbitBroker {
    pub async fn connect(
        uri: &str,
        names: QueueNames,
        options: RabbitOptions,
    ) -> Result<Self, BrokerError> {
        let broker = Self {
            inner: Arc::new(Inner {
                uri: uri.to_string(),
                lanes: lane_queues(&names.jobs, options.lanes),
                names,
                max_deliveries: options.max_deliveries.max(1),
                create_queues: options.create_queues,
                session: Mutex::new(None),
                idle_getter: std::sync::Mutex::new(None),
            }),
        };
        broker.inner.session().await?;
        Ok(broker)
    }
}

impl Inner {
    /// The live session, reconnecting if the last one broke.
    async fn session(&self) -> Result<Arc<Session>, BrokerError> {
        let mut current = self.session.lock().await;
        if let Some(session) = current.as_ref() {
            if session.connection.status().connected() && session.publisher.status().connected() {
                return Ok(session.clone());
            }
        }
        *current = None;
        let properties =
            ConnectionProperties::default().with_connection_name(LongString::from("zipfleet"));
        let connection = tokio::time::timeout(
            Duration::from_secs(10),
            Connection::connect(&self.uri, properties),
        )
        .await
        .map_err(|_| BrokerError::Unavailable("connecting to RabbitMQ timed out".into()))?
        .map_err(unavailable)?;
        let publisher = connection.create_channel().await.map_err(unavailable)?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(unavailable)?;
        if self.create_queues {
            self.declare(&publisher).await?;
        } else {
            self.verify_lanes(&connection).await?;
        }
        let session = Arc::new(Session {
            connection,
            publisher,
        });
        *current = Some(session.clone());
        Ok(session)
    }

    async fn forget_session(&self) {
        *self.session.lock().await = None;
    }

    /// A fresh channel on the live session.
    async fn channel(&self) -> Result<Channel, BrokerError> {
        let session = self.session().await?;
        session
            .connection
            .create_channel()
            .await
            .map_err(unavailable)
    }

    async fn declare(&self, channel: &Channel) -> Result<(), BrokerError> {
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        let mut quorum = FieldTable::default();
        quorum.insert(
            "x-queue-type".into(),
            AMQPValue::LongString(LongString::from("quorum")),
        );
        for queue in [&self.names.dead_letter, &self.names.completed] {
            channel
                .queue_declare(queue, durable, quorum.clone())
                .await
                .map_err(|err| declare_error(queue, err))?;
        }
        let mut jobs = quorum;
        // Dead-lettered once returned more than the limit: max_deliveries in all.
        jobs.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(i64::from(self.max_deliveries) - 1),
        );
        jobs.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(LongString::from("")),
        );
        jobs.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(LongString::from(self.names.dead_letter.as_str())),
        );
        jobs.insert(
            "x-consumer-timeout".into(),
            AMQPValue::LongLongInt(CONSUMER_TIMEOUT_MS),
        );
        for lane in &self.lanes {
            channel
                .queue_declare(lane, durable, jobs.clone())
                .await
                .map_err(|err| declare_error(lane, err))?;
        }
        Ok(())
    }

    /// Where infrastructure owns the queues: every lane must be there. A
    /// passive declare of a missing queue closes its channel, so a throwaway one.
    async fn verify_lanes(&self, connection: &Connection) -> Result<(), BrokerError> {
        let channel = connection.create_channel().await.map_err(unavailable)?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        for (lane, queue) in Lane::all(self.lanes()).zip(&self.lanes) {
            if let Err(err) = channel
                .queue_declare(queue, passive, FieldTable::default())
                .await
            {
                return Err(if is_not_found(&err) {
                    BrokerError::Refused(format!(
                        "{lane} of the jobs queue, {queue}, does not exist and ZIPFLEET_CREATE_QUEUES is false: \
                         create it like the jobs queue (quorum, same x-delivery-limit and dead-letter route) \
                         or lower ZIPFLEET_FAIR_LANES"
                    ))
                } else {
                    unavailable(err)
                });
            }
        }
        let _ = channel.close(200, "lanes verified").await;
        Ok(())
    }

    fn lanes(&self) -> u16 {
        u16::try_from(self.lanes.len()).unwrap_or(u16::MAX)
    }

    /// Publish persistently to `queue` and wait for the confirm; one retry on a fresh connection.
    async fn publish(
        &self,
        queue: &str,
        job_id: &str,
        body: &[u8],
        dead_letter: Option<&DeadLetterMark<'_>>,
    ) -> Result<(), BrokerError> {
        let mut last_error = None;
        for _ in 0..2 {
            let session = self.session().await?;
            match publish_on(&session.publisher, queue, job_id, body, dead_letter).await {
                Ok(()) => return Ok(()),
                Err(err @ BrokerError::Refused(_)) => return Err(err),
                Err(err) => {
                    self.forget_session().await;
                    last_error = Some(err);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| BrokerError::Unavailable("publish failed".into())))
    }

    /// A channel for one `basic.get`: the idle one if it is still open, else a new one.
    async fn getter(&self) -> Result<Channel, BrokerError> {
        let idle = self
            .idle_getter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match idle {
            Some(channel) if channel.status().connected() => Ok(channel),
            _ => self.channel().await,
        }
    }

    /// Keep a channel whose get found nothing for the next get.
    fn park_getter(&self, channel: Channel) {
        let mut idle = self.idle_getter.lock().unwrap_or_else(|p| p.into_inner());
        if idle.is_none() {
            *idle = Some(channel);
        }
        // else: another get parked one first; this one closes when dropped.
    }
}

/// What marks a message the worker dead-letters itself.
struct DeadLetterMark<'a> {
    id: &'a str,
    reason: &'a str,
}

fn declare_error(queue: &str, err: lapin::Error) -> BrokerError {
    BrokerError::Refused(format!(
        "declaring queue {queue} failed (does it exist with other arguments?): {err}"
    ))
}

async fn publish_on(
    channel: &Channel,
    queue: &str,
    job_id: &str,
    body: &[u8],
    dead_letter: Option<&DeadLetterMark<'_>>,
) -> Result<(), BrokerError> {
    let mut headers = FieldTable::default();
    headers.insert(
        "job_id".into(),
        AMQPValue::LongString(LongString::from(job_id)),
    );
    if let Some(mark) = dead_letter {
        headers.insert(
            DEAD_LETTER_REASON_HEADER.into(),
            AMQPValue::LongString(LongString::from(mark.reason)),
        );
        headers.insert(
            DEAD_LETTER_ID_HEADER.into(),
            AMQPValue::LongString(LongString::from(mark.id)),
        );
    }
    let properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type(ShortString::from("application/json"))
        .with_message_id(ShortString::from(job_id))
        .with_headers(headers);
    let options = BasicPublishOptions {
        mandatory: true,
        ..Default::default()
    };
    let confirm = channel
        .basic_publish("", queue, options, body, properties)
        .await
        .map_err(unavailable)?;
    match tokio::time::timeout(Duration::from_secs(30), confirm).await {
        Err(_) => Err(BrokerError::Unavailable(
            "no publisher confirm within 30 s".into(),
        )),
        Ok(Err(err)) => Err(unavailable(err)),
        Ok(Ok(Confirmation::Ack(None))) => Ok(()),
        Ok(Ok(Confirmation::Ack(Some(returned)))) => Err(BrokerError::Refused(format!(
            "queue {queue} does not exist ({})",
            returned.reply_text
        ))),
        Ok(Ok(Confirmation::Nack(_))) => Err(BrokerError::Unavailable(format!(
            "RabbitMQ refused to store the message for {queue}"
        ))),
        Ok(Ok(Confirmation::NotRequested)) => Err(BrokerError::Unavailable(
            "the channel is not in confirm mode".into(),
        )),
    }
}

#[async_trait]
impl Broker for RabbitBroker {
    fn kind(&self) -> &'static str {
        "rabbitmq"
    }

    fn lanes(&self) -> u16 {
        self.inner.lanes()
    }

    async fn publish_job(&self, lane: Lane, job_id: &str, body: &[u8]) -> Result<(), BrokerError> {
        lane.check(self.lanes())?;
        self.inner
            .publish(&self.inner.lanes[usize::from(lane.0)], job_id, body, None)
            .await
    }

    async fn publish_completion(&self, job_id: &str, body: &[u8]) -> Result<(), BrokerError> {
        self.inner
            .publish(&self.inner.names.completed, job_id, body, None)
            .await
    }

    async fn take(&self, lane: Lane, patience: Duration) -> Result<Option<Delivery>, BrokerError> {
        lane.check(self.lanes())?;
        let queue = &self.inner.lanes[usize::from(lane.0)];
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let channel = self.inner.getter().await?;
            match channel
                .basic_get(queue, BasicGetOptions { no_ack: false })
                .await
            {
                Ok(Some(message)) => {
                    return Ok(Some(delivery(
                        self.inner.clone(),
                        lane,
                        channel,
                        message.delivery,
                    )))
                }
                Ok(None) => self.inner.park_getter(channel),
                Err(err) if is_not_found(&err) => {
                    return Err(BrokerError::Refused(format!(
                        "{lane} of the jobs queue, {queue}, does not exist"
                    )))
                }
                Err(err) => return Err(unavailable(err)),
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(GET_POLL_EVERY.min(deadline - now)).await;
        }
    }

    /// On a channel of its own: a passive declare of a missing queue closes
    /// its channel, which must not be the publisher's.
    async fn lane_depths(&self) -> Result<Vec<LaneDepth>, BrokerError> {
        let channel = self.inner.channel().await?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let mut depths = Vec::with_capacity(self.inner.lanes.len());
        for (lane, queue) in Lane::all(self.lanes()).zip(&self.inner.lanes) {
            let declared = channel
                .queue_declare(queue, passive, FieldTable::default())
                .await
                .map_err(|err| {
                    BrokerError::Unavailable(format!("reading the depth of {queue}: {err}"))
                })?;
            depths.push(LaneDepth {
                lane,
                queue: queue.clone(),
                ready: u64::from(declared.message_count()),
                in_flight: None,
            });
        }
        let _ = channel.close(200, "depths read").await;
        Ok(depths)
    }

    async fn check(&self) -> Result<(), BrokerError> {
        self.inner.session().await.map(|_| ())
    }

    fn dead_letter_queue(&self) -> Option<&dyn zipfleet_shared::broker::DeadLetters> {
        Some(self)
    }
}

/// A taken message, settled on the channel that got it.
fn delivery(
    inner: Arc<Inner>,
    lane: Lane,
    channel: Channel,
    delivery: lapin::message::Delivery,
) -> Delivery {
    let attempt = attempt_of(&delivery);
    let job_id = delivery
        .properties
        .message_id()
        .as_ref()
        .map(|id| id.to_string())
        .unwrap_or_default();
    let body = Bytes::from(delivery.data);
    let settle = RabbitSettle {
        inner,
        acker: delivery.acker,
        _channel: channel,
        body: body.clone(),
        job_id,
    };
    Delivery::new(body, attempt, lane, Box::new(settle))
}

/// 1 on first delivery; quorum queues count earlier deliveries in `x-delivery-count`.
fn attempt_of(delivery: &lapin::message::Delivery) -> u32 {
    let previous = delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|headers| headers.inner().get("x-delivery-count"))
        .and_then(|value| match value {
            AMQPValue::LongLongInt(n) => u32::try_from(*n).ok(),
            AMQPValue::LongInt(n) => u32::try_from(*n).ok(),
            AMQPValue::LongUInt(n) => Some(*n),
            AMQPValue::ShortInt(n) => u32::try_from(*n).ok(),
            AMQPValue::ShortUInt(n) => Some(u32::from(*n)),
            AMQPValue::ShortShortUInt(n) => Some(u32::from(*n)),
            _ => None,
        });
    match previous {
        Some(count) => count + 1,
        None if delivery.redelivered => 2,
        None => 1,
    }
}

struct RabbitSettle {
    inner: Arc<Inner>,
    acker: lapin::acker::Acker,
    /// The channel the message came on: it must stay open until the message
    /// is settled, and closing it (when this is dropped) hands back a message
    /// left unsettled.
    _channel: Channel,
    body: Bytes,
    job_id: String,
}

#[async_trait]
impl Settle for RabbitSettle {
    async fn ack(&self) -> Result<(), BrokerError> {
        self.acker
            .ack(BasicAckOptions::default())
            .await
            .map_err(unavailable)
    }

    /// Requeued on the queue it came from: its own lane.
    async fn hand_back(&self) -> Result<(), BrokerError> {
        self.acker
            .nack(BasicNackOptions {
                requeue: true,
                ..Default::default()
            })
            .await
            .map_err(unavailable)
    }

    async fn dead_letter(&self, reason: &str) -> Result<(), BrokerError> {
        // Publish to the dead-letter queue explicitly (confirmed) so the message
        // lands there even where no dead-letter exchange was configured, with
        // an id of its own for operators to name it by.
        let id = zipfleet_shared::broker::new_dead_letter_id();
        self.inner
            .publish(
                &self.inner.names.dead_letter,
                &self.job_id,
                &self.body,
                Some(&DeadLetterMark { id: &id, reason }),
            )
            .await?;
        self.ack().await
    }
}

// ---------------------------------------------------------------------------
// Dead letters: what operators see (`GET /v1/dead-letters`), move back to
// lane 0 and delete (all, one by id, or a job's).

use zipfleet_shared::broker::{
    dead_letter_digest, DeadLetter, DeadLetters, Pick, EXCEEDED_MAX_DELIVERIES,
};

fn header_text(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        _ => None,
    }
}

/// Why RabbitMQ holds a dead letter: the header the worker sets when it
/// dead-letters a message itself, else the broker's own `x-death` record
/// (a quorum queue's delivery limit says `delivery_limit`).
fn dead_letter_reason(properties: &BasicProperties) -> Option<String> {
    let headers = properties.headers().as_ref()?.inner();
    if let Some(reason) = headers.get(DEAD_LETTER_REASON_HEADER).and_then(header_text) {
        return Some(reason);
    }
    let first_death = match headers.get("x-death") {
        Some(AMQPValue::FieldArray(deaths)) => {
            deaths.as_slice().first().and_then(|death| match death {
                AMQPValue::FieldTable(table) => table.inner().get("reason").and_then(header_text),
                _ => None,
            })
        }
        _ => None,
    };
    let reason =
        first_death.or_else(|| headers.get("x-first-death-reason").and_then(header_text))?;
    Some(match reason.as_str() {
        "delivery_limit" => EXCEEDED_MAX_DELIVERIES.to_string(),
        "rejected" => "rejected by a consumer".to_string(),
        "expired" => "expired (message TTL)".to_string(),
        "maxlen" => "dropped by the queue's length limit".to_string(),
        _ => reason,
    })
}

fn message_job_id(delivery: &lapin::message::Delivery) -> String {
    delivery
        .properties
        .message_id()
        .as_ref()
        .map(|id| id.to_string())
        .filter(|id| !id.is_empty())
        .or_else(|| DeadLetter::describe("", None, &delivery.data).job_id)
        .unwrap_or_default()
}

/// A dead letter as operators see it. Its id: the one the worker gave it
/// (header), else a digest of body and reason — the same at every listing,
/// which a position in the queue would not be.
fn describe(delivery: &lapin::message::Delivery) -> DeadLetter {
    let reason = dead_letter_reason(&delivery.properties);
    let id = delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|headers| headers.inner().get(DEAD_LETTER_ID_HEADER))
        .and_then(header_text)
        .unwrap_or_else(|| dead_letter_digest(&delivery.data, reason.as_deref()));
    let mut letter = DeadLetter::describe(id, reason, &delivery.data);
    if letter.job_id.is_none() {
        letter.job_id =
            Some(message_job_id(delivery)).filter(|id| zipfleet_shared::spec::is_valid_job_id(id));
    }
    letter
}

/// What a scan saw and did.
struct Scanned {
    /// Messages in the queue when the scan began.
    present: u64,
    seen: Vec<DeadLetter>,
    picked: u64,
}

impl Inner {
    /// Go through the dead-letter queue on a channel of its own, one
    /// `basic.get` (manual ack) at a time: at most `limit` messages and never
    /// more than the queue held at the start, stopping once `max_picked` were
    /// picked (a scan that only keeps ignores it). `pick` decides for each message; the ones kept stay unacked
    /// until the channel closes, which hands them back (also on any error).
    /// Closing, rather than nack-requeue, does not count as a delivery
    /// attempt on quorum queues (RabbitMQ 4 gives quorum queues a default
    /// delivery limit), so a look changes nothing about a message.
    async fn scan(
        &self,
        limit: usize,
        max_picked: u64,
        pick: impl Fn(&DeadLetter) -> Pick + Send,
    ) -> Result<Scanned, BrokerError> {
        let channel = self.channel().await?;
        let scanned = self.scan_on(&channel, limit, max_picked, pick).await;
        if let Err(err) = channel.close(200, "dead letters read").await {
            tracing::debug!(%err, "closing the dead-letter channel");
        }
        let scanned = scanned?;
        // Closing the channel hands the kept messages back, but the queue
        // takes them back a moment later: wait until it holds what it held
        // at the start less what was picked, so that whatever comes next (a
        // listing, a redrive, a depth) sees them where they were.
        let kept = scanned.seen.len() as u64 - scanned.picked;
        if kept > 0 {
            let expected = scanned.present.saturating_sub(scanned.picked);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
            while self.dead_letter_depth().await? < expected
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(scanned)
    }

    async fn scan_on(
        &self,
        channel: &Channel,
        limit: usize,
        max_picked: u64,
        pick: impl Fn(&DeadLetter) -> Pick + Send,
    ) -> Result<Scanned, BrokerError> {
        let queue = &self.names.dead_letter;
        let present = passive_depth(channel, queue).await?;
        let bound = limit.min(usize::try_from(present).unwrap_or(usize::MAX));
        let mut scanned = Scanned {
            present,
            seen: Vec::new(),
            picked: 0,
        };
        while scanned.seen.len() < bound {
            let Some(message) = channel
                .basic_get(queue, BasicGetOptions { no_ack: false })
                .await
                .map_err(unavailable)?
            else {
                break;
            };
            let delivery = message.delivery;
            let letter = describe(&delivery);
            let action = pick(&letter);
            scanned.seen.push(letter);
            if action == Pick::Keep {
                continue;
            }
            if action == Pick::Redrive {
                let job_id = message_job_id(&delivery);
                self.publish(&self.lanes[0], &job_id, &delivery.data, None)
                    .await?;
            }
            delivery
                .acker
                .ack(BasicAckOptions::default())
                .await
                .map_err(unavailable)?;
            scanned.picked += 1;
            if scanned.picked >= max_picked {
                break;
            }
        }
        Ok(scanned)
    }

    /// On a channel of its own: a passive declare of a missing queue closes
    /// its channel, which must not be the publisher's (every /metrics scrape
    /// would break job publishing where infrastructure has not made the DLQ).
    async fn dead_letter_depth(&self) -> Result<u64, BrokerError> {
        let channel = self.channel().await?;
        let depth = passive_depth(&channel, &self.names.dead_letter).await;
        let _ = channel.close(200, "depth read").await;
        depth
    }
}

async fn passive_depth(channel: &Channel, queue: &str) -> Result<u64, BrokerError> {
    let options = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let declared = channel
        .queue_declare(queue, options, FieldTable::default())
        .await
        .map_err(|err| BrokerError::Unavailable(format!("reading the depth of {queue}: {err}")))?;
    Ok(u64::from(declared.message_count()))
}

#[async_trait]
impl DeadLetters for RabbitBroker {
    async fn list(&self, limit: usize) -> Result<Vec<DeadLetter>, BrokerError> {
        Ok(self.inner.scan(limit, 0, |_| Pick::Keep).await?.seen)
    }

    async fn depth(&self) -> Result<u64, BrokerError> {
        self.inner.dead_letter_depth().await
    }

    async fn pick(
        &self,
        examine: usize,
        at_most: u64,
        pick: &(dyn for<'a> Fn(&'a DeadLetter) -> Pick + Send + Sync),
    ) -> Result<u64, BrokerError> {
        Ok(self.inner.scan(examine, at_most, pick).await?.picked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_are_named_after_the_jobs_queue() {
        assert_eq!(
            lane_queues("zipfleet.jobs", 3),
            [
                "zipfleet.jobs",
                "zipfleet.jobs.lane1",
                "zipfleet.jobs.lane2"
            ]
        );
        assert_eq!(lane_queues("j", 0), ["j"], "at least lane 0");
    }
}
