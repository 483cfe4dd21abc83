//! RabbitMQ (`ZIPFLEET_BROKER=amqp://…`), with lapin.
//!
//! - Queues are durable quorum queues. The jobs queue has a delivery limit
//!   (`x-delivery-limit`) and dead-letters to the dead-letter queue through the
//!   default exchange, so a message that keeps failing ends there instead of
//!   looping forever.
//! - Every publish is persistent, `mandatory` (an unroutable message is an
//!   error, not a silent loss) and waits for the publisher confirm.
//! - lapin does not reconnect by itself: a [`Session`] (connection + confirm
//!   channel) is rebuilt on the next use after it broke; the worker loop makes
//!   a new consumer (with backoff) when its consumer errors.
//! - Long jobs: RabbitMQ closes a channel whose delivery stays unacked past
//!   `consumer_timeout` (30 min by default). The jobs queue is declared with
//!   `x-consumer-timeout` (honoured from RabbitMQ 3.12); on older servers set
//!   `consumer_timeout` in rabbitmq.conf above the longest job. A job caught by
//!   the timeout is redelivered and rebuilt idempotently, never lost.

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::publisher_confirm::Confirmation;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use zipfleet_shared::broker::{
    Broker, BrokerError, Consumer, Delivery, QueueDepth, QueueNames, Settle,
};

/// RabbitMQ's queue names unless configured: dotted, as AMQP names usually are.
pub fn default_queue_names() -> QueueNames {
    QueueNames {
        jobs: "zipfleet.jobs".into(),
        completed: "zipfleet.completed".into(),
        dead_letter: "zipfleet.jobs.dlq".into(),
    }
}

/// How long a job may hold its delivery before RabbitMQ (3.12+) takes it back.
const CONSUMER_TIMEOUT_MS: i64 = 6 * 3600 * 1000;

struct Session {
    connection: Connection,
    publisher: Channel,
}

struct Inner {
    uri: String,
    names: QueueNames,
    max_deliveries: u32,
    create_queues: bool,
    session: Mutex<Option<Arc<Session>>>,
}

/// A RabbitMQ broker. Cheap to clone.
#[derive(Clone)]
pub struct RabbitBroker {
    inner: Arc<Inner>,
}

fn unavailable(err: lapin::Error) -> BrokerError {
    BrokerError::Unavailable(err.to_string())
}

impl RabbitBroker {
    pub async fn connect(
        uri: &str,
        names: QueueNames,
        max_deliveries: u32,
        create_queues: bool,
    ) -> Result<Self, BrokerError> {
        let broker = Self {
            inner: Arc::new(Inner {
                uri: uri.to_string(),
                names,
                max_deliveries: max_deliveries.max(1),
                create_queues,
                session: Mutex::new(None),
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
        channel
            .queue_declare(&self.names.jobs, durable, jobs)
            .await
            .map_err(|err| declare_error(&self.names.jobs, err))?;
        Ok(())
    }

    /// Publish persistently to `queue` and wait for the confirm; one retry on a fresh connection.
    async fn publish(
        &self,
        queue: &str,
        job_id: &str,
        body: &[u8],
        reason: Option<&str>,
    ) -> Result<(), BrokerError> {
        let mut last_error = None;
        for _ in 0..2 {
            let session = self.session().await?;
            match publish_on(&session.publisher, queue, job_id, body, reason).await {
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
    reason: Option<&str>,
) -> Result<(), BrokerError> {
    let mut headers = FieldTable::default();
    headers.insert(
        "job_id".into(),
        AMQPValue::LongString(LongString::from(job_id)),
    );
    if let Some(reason) = reason {
        headers.insert(
            "x-zipfleet-dead-letter-reason".into(),
            AMQPValue::LongString(LongString::from(reason)),
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

    async fn publish_job(&self, job_id: &str, body: &[u8]) -> Result<(), BrokerError> {
        self.inner
            .publish(&self.inner.names.jobs, job_id, body, None)
            .await
    }

    async fn publish_completion(&self, job_id: &str, body: &[u8]) -> Result<(), BrokerError> {
        self.inner
            .publish(&self.inner.names.completed, job_id, body, None)
            .await
    }

    async fn consumer(&self, prefetch: u16) -> Result<Box<dyn Consumer>, BrokerError> {
        let session = self.inner.session().await?;
        let channel = session
            .connection
            .create_channel()
            .await
            .map_err(unavailable)?;
        channel
            .basic_qos(prefetch.max(1), BasicQosOptions::default())
            .await
            .map_err(unavailable)?;
        let consumer = channel
            .basic_consume(
                &self.inner.names.jobs,
                "",
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(unavailable)?;
        Ok(Box::new(RabbitConsumer {
            inner: self.inner.clone(),
            consumer,
            channel,
        }))
    }

    async fn queue_depth(&self) -> Result<QueueDepth, BrokerError> {
        let session = self.inner.session().await?;
        let options = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let queue = session
            .publisher
            .queue_declare(&self.inner.names.jobs, options, FieldTable::default())
            .await
            .map_err(|err| {
                BrokerError::Unavailable(format!(
                    "reading the depth of {}: {err}",
                    self.inner.names.jobs
                ))
            })?;
        Ok(QueueDepth {
            ready: u64::from(queue.message_count()),
            in_flight: None,
        })
    }

    async fn check(&self) -> Result<(), BrokerError> {
        self.inner.session().await.map(|_| ())
    }

    fn dead_letter_queue(&self) -> Option<&dyn zipfleet_shared::broker::DeadLetters> {
        Some(self)
    }
}

struct RabbitConsumer {
    inner: Arc<Inner>,
    consumer: lapin::Consumer,
    /// Deliveries are settled on this channel; it lives as long as the consumer.
    channel: Channel,
}

#[async_trait]
impl Consumer for RabbitConsumer {
    async fn next(&mut self) -> Result<Delivery, BrokerError> {
        let delivery = match self.consumer.next().await {
            Some(Ok(delivery)) => delivery,
            Some(Err(err)) => return Err(unavailable(err)),
            None => {
                return Err(BrokerError::Unavailable(
                    "the consumer was cancelled".into(),
                ))
            }
        };
        let attempt = attempt_of(&delivery);
        let body = Bytes::from(delivery.data);
        let job_id = delivery
            .properties
            .message_id()
            .as_ref()
            .map(|id| id.to_string())
            .unwrap_or_default();
        let settle = RabbitSettle {
            inner: self.inner.clone(),
            acker: delivery.acker,
            body: body.clone(),
            job_id,
        };
        Ok(Delivery::new(body, attempt, Box::new(settle)))
    }

    async fn stop(&mut self) {
        let tag = self.consumer.tag();
        if let Err(err) = self
            .channel
            .basic_cancel(tag.as_str(), lapin::options::BasicCancelOptions::default())
            .await
        {
            tracing::warn!(%err, "could not cancel the consumer");
        }
    }
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
        // lands there even where no dead-letter exchange was configured.
        self.inner
            .publish(
                &self.inner.names.dead_letter,
                &self.job_id,
                &self.body,
                Some(reason),
            )
            .await?;
        self.ack().await
    }
}

// ---------------------------------------------------------------------------
// Dead letters: what operators see (`GET /v1/dead-letters`) and move back
// (`POST /v1/dead-letters/redrive`).

use lapin::options::BasicGetOptions;
use zipfleet_shared::broker::{DeadLetter, DeadLetters, EXCEEDED_MAX_DELIVERIES};

/// Why RabbitMQ holds a dead letter: the header the worker sets when it
/// dead-letters a message itself, else the broker's own `x-death` record
/// (a quorum queue's delivery limit says `delivery_limit`).
fn dead_letter_reason(properties: &BasicProperties) -> Option<String> {
    let headers = properties.headers().as_ref()?.inner();
    let text = |value: &AMQPValue| match value {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        _ => None,
    };
    if let Some(reason) = headers.get("x-zipfleet-dead-letter-reason").and_then(text) {
        return Some(reason);
    }
    let first_death = match headers.get("x-death") {
        Some(AMQPValue::FieldArray(deaths)) => {
            deaths.as_slice().first().and_then(|death| match death {
                AMQPValue::FieldTable(table) => table.inner().get("reason").and_then(text),
                _ => None,
            })
        }
        _ => None,
    };
    let reason = first_death.or_else(|| headers.get("x-first-death-reason").and_then(text))?;
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

impl Inner {
    /// A channel of its own for reading the dead-letter queue: closing it
    /// hands back whatever it got and did not ack (also on any error). Closing,
    /// rather than nack-requeue, does not count as a delivery attempt on
    /// quorum queues (RabbitMQ 4 gives quorum queues a default delivery limit).
    async fn with_dead_letter_channel<T, F, Fut>(&self, work: F) -> Result<T, BrokerError>
    where
        F: FnOnce(Channel) -> Fut,
        Fut: std::future::Future<Output = Result<T, BrokerError>>,
    {
        let session = self.session().await?;
        let channel = session
            .connection
            .create_channel()
            .await
            .map_err(unavailable)?;
        let result = work(channel.clone()).await;
        if let Err(err) = channel.close(200, "dead letters read").await {
            tracing::debug!(%err, "closing the dead-letter channel");
        }
        result
    }
}

async fn get_dead_letter(
    channel: &Channel,
    queue: &str,
) -> Result<Option<lapin::message::Delivery>, BrokerError> {
    let message = channel
        .basic_get(queue, BasicGetOptions { no_ack: false })
        .await
        .map_err(unavailable)?;
    Ok(message.map(|message| message.delivery))
}

#[async_trait]
impl DeadLetters for RabbitBroker {
    async fn list(&self, limit: usize) -> Result<Vec<DeadLetter>, BrokerError> {
        let queue = self.inner.names.dead_letter.clone();
        let listed = self
            .inner
            .with_dead_letter_channel(|channel| async move {
                let mut listed = Vec::new();
                while listed.len() < limit {
                    let Some(delivery) = get_dead_letter(&channel, &queue).await? else {
                        break;
                    };
                    // RabbitMQ has no message ids: the position in the queue names it.
                    let id = (listed.len() + 1).to_string();
                    let mut letter = DeadLetter::describe(
                        id,
                        dead_letter_reason(&delivery.properties),
                        &delivery.data,
                    );
                    if letter.job_id.is_none() {
                        letter.job_id = Some(message_job_id(&delivery))
                            .filter(|id| zipfleet_shared::spec::is_valid_job_id(id));
                    }
                    listed.push(letter);
                }
                Ok(listed)
            })
            .await?;
        // Closing the channel hands the messages back, but the queue takes
        // them back a moment later: wait for that, so that a redrive (or a
        // depth) right after a listing sees them where the listing left them.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while self.depth().await? < listed.len() as u64 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(listed)
    }

    /// On a channel of its own: a passive declare of a missing queue closes
    /// its channel, which must not be the publisher's (every /metrics scrape
    /// would break job publishing where infrastructure has not made the DLQ).
    async fn depth(&self) -> Result<u64, BrokerError> {
        let queue = self.inner.names.dead_letter.clone();
        self.inner
            .with_dead_letter_channel(|channel| async move {
                let options = QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                };
                let declared = channel
                    .queue_declare(&queue, options, FieldTable::default())
                    .await
                    .map_err(|err| {
                        BrokerError::Unavailable(format!("reading the depth of {queue}: {err}"))
                    })?;
                Ok(u64::from(declared.message_count()))
            })
            .await
    }

    /// Take one message (manual ack), republish it to the jobs queue and wait
    /// for the confirm, then ack it: a failure anywhere leaves it in the
    /// dead-letter queue.
    async fn redrive(&self, max: usize) -> Result<u64, BrokerError> {
        let inner = self.inner.clone();
        self.inner
            .with_dead_letter_channel(|channel| async move {
                let mut moved = 0u64;
                while (moved as usize) < max {
                    let Some(delivery) =
                        get_dead_letter(&channel, &inner.names.dead_letter).await?
                    else {
                        break;
                    };
                    let job_id = message_job_id(&delivery);
                    inner
                        .publish(&inner.names.jobs, &job_id, &delivery.data, None)
                        .await?;
                    delivery
                        .acker
                        .ack(BasicAckOptions::default())
                        .await
                        .map_err(unavailable)?;
                    moved += 1;
                }
                Ok(moved)
            })
            .await
    }
}
