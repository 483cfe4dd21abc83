//! AWS SQS (`ZIPFLEET_BROKER=sqs://`), with aws-sdk-sqs. Endpoint, region and
//! credentials come from the AWS SDK's usual sources (`AWS_ENDPOINT_URL_SQS`,
//! `AWS_REGION`, ...).
//!
//! How the broker trait maps onto SQS:
//!
//! - **Receive**: long polling (`WaitTimeSeconds` 20, never a busy loop),
//!   asking for as many messages as the consumer has free capacity (at most
//!   10, SQS's batch limit). A message is received only when a slot is free to
//!   work on it, so no message sits invisible in a buffer.
//! - **Lease**: a received message is invisible for the visibility timeout.
//!   [`Settle::extend_lease`] renews it with `ChangeMessageVisibility`; the
//!   worker calls it every third of the timeout while the job runs, so a long
//!   job is never delivered to a second worker.
//! - **Ack** = `DeleteMessage`; **hand back** = visibility 0; **attempt** =
//!   `ApproximateReceiveCount`.
//! - **Dead letters**: the jobs queue's redrive policy (`maxReceiveCount` =
//!   the delivery limit) moves a message that keeps coming back; a message the
//!   worker knows to be hopeless (malformed) is moved at once (send to the
//!   dead-letter queue, then delete) instead of burning receives.
//! - **Queues** are names (resolved with `GetQueueUrl`) or full URLs. With
//!   `ZIPFLEET_CREATE_QUEUES=true`, missing queues are created with the
//!   redrive wiring; queues that exist are used as they are.

use async_trait::async_trait;
use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName};
use aws_sdk_sqs::Client;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use zipfleet_shared::broker::{
    Broker, BrokerError, Consumer, Delivery, QueueDepth, QueueNames, Settle,
};

/// SQS's queue names unless configured: SQS allows no dots in a standard
/// queue's name, so dashes.
pub fn default_queue_names() -> QueueNames {
    QueueNames {
        jobs: "zipfleet-jobs".into(),
        completed: "zipfleet-completed".into(),
        dead_letter: "zipfleet-jobs-dlq".into(),
    }
}

/// SQS's largest batch for one `ReceiveMessage`.
const MAX_BATCH: usize = 10;
/// How long one receive waits for messages. SQS allows up to 20 s; a short
/// poll keeps shutdown prompt, because a receive in progress is never
/// abandoned (it may already hold a message) but waited for and its messages
/// handed back. At 3 s an idle worker makes one request every 3 s.
pub const LONG_POLL_SECONDS: i32 = 3;
/// How long [`Consumer::stop`] waits for a receive in progress.
const STOP_WAIT: Duration = Duration::from_secs(LONG_POLL_SECONDS as u64 + 5);
/// SQS's smallest maximum message size; larger specs travel by claim check.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// Dead letters are kept as long as SQS allows (14 days).
const DEAD_LETTER_RETENTION_SECONDS: &str = "1209600";

/// Resolved queue URLs of one deployment.
#[derive(Debug, Clone)]
struct QueueUrls {
    jobs: String,
    completed: String,
    dead_letter: String,
}

struct Inner {
    client: Client,
    urls: QueueUrls,
    visibility: Duration,
}

/// An SQS broker. Cheap to clone.
#[derive(Clone)]
pub struct SqsBroker {
    inner: Arc<Inner>,
}

/// Settings of an [`SqsBroker`] beyond the queue names.
#[derive(Debug, Clone)]
pub struct SqsOptions {
    /// Deliveries of one message before the redrive policy dead-letters it.
    pub max_deliveries: u32,
    /// Create missing queues (with the redrive policy).
    pub create_queues: bool,
    /// How long a received message stays invisible between heartbeats.
    pub visibility_timeout: Duration,
}

/// Server-side trouble and throttling are worth retrying; anything else the
/// service refused (missing queue, bad credentials, message too large) is not.
fn sdk_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    what: &str,
    err: SdkError<E, HttpResponse>,
) -> BrokerError {
    match &err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("Unknown");
            let message = service.err().message().unwrap_or("");
            let throttled = matches!(
                code,
                "ThrottlingException"
                    | "RequestThrottled"
                    | "ServiceUnavailable"
                    | "InternalError"
                    | "InternalFailure"
            );
            let text = format!("{what}: {code}: {message}");
            if throttled || service.raw().status().is_server_error() {
                BrokerError::Unavailable(text)
            } else {
                BrokerError::Refused(text)
            }
        }
        _ => BrokerError::Unavailable(format!(
            "{what}: {}",
            aws_sdk_sqs::error::DisplayErrorContext(&err)
        )),
    }
}

fn is_queue_url(name: &str) -> bool {
    name.starts_with("https://") || name.starts_with("http://")
}

fn seconds(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs())
        .unwrap_or(i32::MAX)
        .clamp(0, 43_200)
}

impl SqsBroker {
    pub async fn connect(names: QueueNames, options: SqsOptions) -> Result<Self, BrokerError> {
        let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::with_client(Client::new(&shared), names, options).await
    }

    /// Build on an existing client (tests, custom endpoints).
    pub async fn with_client(
        client: Client,
        names: QueueNames,
        options: SqsOptions,
    ) -> Result<Self, BrokerError> {
        let visibility = Duration::from_secs(options.visibility_timeout.as_secs().clamp(1, 43_200));
        let dead_letter = resolve(
            &client,
            &names.dead_letter,
            options.create_queues,
            Vec::new(),
        )
        .await?;
        let completed =
            resolve(&client, &names.completed, options.create_queues, Vec::new()).await?;
        let jobs_attributes = if options.create_queues && !is_queue_url(&names.jobs) {
            let arn = queue_arn(&client, &dead_letter).await?;
            let redrive = serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": options.max_deliveries.max(1)});
            vec![
                (QueueAttributeName::RedrivePolicy, redrive.to_string()),
                (
                    QueueAttributeName::VisibilityTimeout,
                    seconds(visibility).to_string(),
                ),
            ]
        } else {
            Vec::new()
        };
        let jobs = resolve(&client, &names.jobs, options.create_queues, jobs_attributes).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                urls: QueueUrls {
                    jobs,
                    completed,
                    dead_letter,
                },
                visibility,
            }),
        })
    }
}

/// A queue's URL: the name as given when it is a URL, else looked up, creating
/// the queue (with `attributes`) when allowed and missing.
async fn resolve(
    client: &Client,
    name: &str,
    create: bool,
    attributes: Vec<(QueueAttributeName, String)>,
) -> Result<String, BrokerError> {
    if is_queue_url(name) {
        return Ok(name.to_string());
    }
    match client.get_queue_url().queue_name(name).send().await {
        Ok(found) => {
            return found.queue_url.ok_or_else(|| {
                BrokerError::Refused(format!("SQS returned no URL for queue {name}"))
            })
        }
        Err(SdkError::ServiceError(service))
            if service.err().is_queue_does_not_exist() && create => {}
        Err(err) => return Err(sdk_error(&format!("looking up queue {name}"), err)),
    }
    let mut request = client.create_queue().queue_name(name);
    if name.ends_with("-dlq") || name.ends_with(".dlq") {
        request = request.attributes(
            QueueAttributeName::MessageRetentionPeriod,
            DEAD_LETTER_RETENTION_SECONDS,
        );
    }
    for (key, value) in attributes {
        request = request.attributes(key, value);
    }
    match request.send().await {
        Ok(created) => {
            tracing::info!(queue = name, "created SQS queue");
            created.queue_url.ok_or_else(|| {
                BrokerError::Refused(format!("SQS returned no URL for the new queue {name}"))
            })
        }
        // Created meanwhile by another process (with other attributes): use it.
        Err(SdkError::ServiceError(service)) if service.err().is_queue_name_exists() => {
            let found = client
                .get_queue_url()
                .queue_name(name)
                .send()
                .await
                .map_err(|err| sdk_error(&format!("looking up queue {name}"), err))?;
            found.queue_url.ok_or_else(|| {
                BrokerError::Refused(format!("SQS returned no URL for queue {name}"))
            })
        }
        Err(err) => Err(sdk_error(&format!("creating queue {name}"), err)),
    }
}

async fn queue_arn(client: &Client, url: &str) -> Result<String, BrokerError> {
    let attributes = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|err| sdk_error("reading the dead-letter queue's ARN", err))?;
    attributes
        .attributes()
        .and_then(|map| map.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| BrokerError::Refused("SQS returned no ARN for the dead-letter queue".into()))
}

impl Inner {
    async fn send(
        &self,
        url: &str,
        job_id: &str,
        body: &[u8],
        reason: Option<&str>,
    ) -> Result<(), BrokerError> {
        let body = std::str::from_utf8(body)
            .map_err(|_| BrokerError::Refused("SQS messages must be UTF-8 text".into()))?;
        if body.len() > MAX_MESSAGE_BYTES {
            return Err(BrokerError::Refused(format!(
                "a {} byte message is larger than SQS accepts ({MAX_MESSAGE_BYTES})",
                body.len()
            )));
        }
        let mut request = self.client.send_message().queue_url(url).message_body(body);
        if !job_id.is_empty() {
            request = request.message_attributes("job_id", string_attribute(job_id));
        }
        if let Some(reason) = reason {
            let reason: String = reason.chars().take(1000).collect();
            request = request.message_attributes("dead_letter_reason", string_attribute(&reason));
        }
        request
            .send()
            .await
            .map_err(|err| sdk_error("sending a message", err))?;
        Ok(())
    }
}

fn string_attribute(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .expect("data type is set")
}

#[async_trait]
impl Broker for SqsBroker {
    fn kind(&self) -> &'static str {
        "sqs"
    }

    async fn publish_job(&self, job_id: &str, body: &[u8]) -> Result<(), BrokerError> {
        self.inner
            .send(&self.inner.urls.jobs, job_id, body, None)
            .await
    }

    async fn publish_completion(&self, job_id: &str, body: &[u8]) -> Result<(), BrokerError> {
        self.inner
            .send(&self.inner.urls.completed, job_id, body, None)
            .await
    }

    async fn consumer(&self, prefetch: u16) -> Result<Box<dyn Consumer>, BrokerError> {
        Ok(Box::new(SqsConsumer {
            inner: self.inner.clone(),
            capacity: Arc::new(Semaphore::new(usize::from(prefetch.max(1)))),
            received: VecDeque::new(),
            pending: None,
            stopped: false,
        }))
    }

    async fn queue_depth(&self) -> Result<QueueDepth, BrokerError> {
        let output = self
            .inner
            .client
            .get_queue_attributes()
            .queue_url(&self.inner.urls.jobs)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|err| sdk_error("reading the jobs queue's depth", err))?;
        let read = |name: &QueueAttributeName| {
            output
                .attributes()
                .and_then(|map| map.get(name))
                .and_then(|value| value.parse::<u64>().ok())
        };
        Ok(QueueDepth {
            ready: read(&QueueAttributeName::ApproximateNumberOfMessages).unwrap_or(0),
            in_flight: read(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        })
    }

    async fn check(&self) -> Result<(), BrokerError> {
        self.queue_depth().await.map(|_| ())
    }

    fn dead_letter_queue(&self) -> Option<&dyn zipfleet_shared::broker::DeadLetters> {
        Some(self)
    }
}

struct SqsConsumer {
    inner: Arc<Inner>,
    /// One permit per message this consumer may hold unsettled.
    capacity: Arc<Semaphore>,
    /// Received, each with its slot, not yet handed out.
    received: VecDeque<(aws_sdk_sqs::types::Message, OwnedSemaphorePermit)>,
    /// The receive in progress, in its own task so that dropping a `next()`
    /// future (the worker races it against other events) never abandons a
    /// request that may already have taken messages: the next call, or
    /// `stop`, picks it up.
    pending: Option<PendingReceive>,
    stopped: bool,
}

struct PendingReceive {
    request: tokio::task::JoinHandle<Result<Vec<aws_sdk_sqs::types::Message>, BrokerError>>,
    /// The free job slots the receive asked messages for.
    slots: Vec<OwnedSemaphorePermit>,
}

#[async_trait]
impl Consumer for SqsConsumer {
    async fn next(&mut self) -> Result<Delivery, BrokerError> {
        loop {
            if let Some((message, slot)) = self.received.pop_front() {
                if let Some(delivery) = self.delivery(message, slot) {
                    return Ok(delivery);
                }
                continue;
            }
            if self.stopped {
                std::future::pending::<()>().await;
            }
            if self.pending.is_none() {
                let first = self
                    .capacity
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| BrokerError::Unavailable("consumer closed".into()))?;
                let mut slots = vec![first];
                while slots.len() < MAX_BATCH {
                    match self.capacity.clone().try_acquire_owned() {
                        Ok(slot) => slots.push(slot),
                        Err(_) => break,
                    }
                }
                let request = self.receive(i32::try_from(slots.len()).unwrap_or(1));
                self.pending = Some(PendingReceive {
                    request: tokio::spawn(request),
                    slots,
                });
            }
            // Cancel-safe: if this future is dropped while waiting here, the
            // receive carries on in its task and stays in `self.pending`.
            let pending = self.pending.as_mut().expect("a receive is in progress");
            let finished = (&mut pending.request).await;
            let PendingReceive { mut slots, .. } =
                self.pending.take().expect("a receive is in progress");
            let messages = finished.map_err(|err| {
                BrokerError::Unavailable(format!("the receive task failed: {err}"))
            })??;
            for message in messages {
                let Some(slot) = slots.pop() else {
                    // More than asked for: leave the extra for someone else.
                    self.release(&message).await;
                    continue;
                };
                self.received.push_back((message, slot));
            }
        }
    }

    async fn stop(&mut self) {
        self.stopped = true;
        // A receive in progress may bring messages: wait for it (it ends
        // within the long poll) rather than let them sit out a visibility timeout.
        if let Some(mut pending) = self.pending.take() {
            match tokio::time::timeout(STOP_WAIT, &mut pending.request).await {
                Ok(Ok(Ok(messages))) => {
                    for message in messages {
                        self.release(&message).await;
                    }
                }
                Ok(_) => {}
                Err(_) => tracing::warn!("a receive did not end in time at shutdown; its messages (if any) return after the visibility timeout"),
            }
        }
        // Received but not started: make them visible to other workers now.
        let received: Vec<_> = self.received.drain(..).collect();
        for (message, _slot) in received {
            self.release(&message).await;
        }
    }
}

impl SqsConsumer {
    /// One long-poll receive for up to `batch` messages. Not retried by the
    /// SDK: the worker loop backs off itself, and a quick answer during an
    /// outage keeps shutdown prompt.
    fn receive(
        &self,
        batch: i32,
    ) -> impl std::future::Future<Output = Result<Vec<aws_sdk_sqs::types::Message>, BrokerError>>
           + Send
           + 'static {
        let inner = self.inner.clone();
        async move {
            let no_retries = aws_sdk_sqs::config::Builder::default()
                .retry_config(aws_sdk_sqs::config::retry::RetryConfig::disabled());
            let output = inner
                .client
                .receive_message()
                .queue_url(&inner.urls.jobs)
                .max_number_of_messages(batch)
                .wait_time_seconds(LONG_POLL_SECONDS)
                .visibility_timeout(seconds(inner.visibility))
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .message_attribute_names("All")
                .customize()
                .config_override(no_retries)
                .send()
                .await
                .map_err(|err| sdk_error("receiving from the jobs queue", err))?;
            Ok(output.messages.unwrap_or_default())
        }
    }

    /// Make a received message visible to other workers at once.
    async fn release(&self, message: &aws_sdk_sqs::types::Message) {
        if let Some(handle) = message.receipt_handle() {
            let _ = self
                .inner
                .client
                .change_message_visibility()
                .queue_url(&self.inner.urls.jobs)
                .receipt_handle(handle)
                .visibility_timeout(0)
                .send()
                .await;
        }
    }

    fn delivery(
        &self,
        message: aws_sdk_sqs::types::Message,
        slot: OwnedSemaphorePermit,
    ) -> Option<Delivery> {
        let handle = message.receipt_handle()?.to_string();
        let attempt = message
            .attributes()
            .and_then(|map| map.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|count| count.parse::<u32>().ok())
            .unwrap_or(1)
            .max(1);
        let job_id = message
            .message_attributes()
            .and_then(|map| map.get("job_id"))
            .and_then(|value| value.string_value())
            .unwrap_or_default()
            .to_string();
        let body = Bytes::from(message.body.unwrap_or_default());
        let settle = SqsSettle {
            inner: self.inner.clone(),
            handle,
            body: body.clone(),
            job_id,
            _slot: slot,
        };
        Some(Delivery::new(body, attempt, Box::new(settle)))
    }
}

struct SqsSettle {
    inner: Arc<Inner>,
    handle: String,
    body: Bytes,
    job_id: String,
    /// Frees the consumer's slot when the delivery is settled or dropped.
    _slot: OwnedSemaphorePermit,
}

impl SqsSettle {
    async fn set_visibility(&self, timeout: Duration, what: &str) -> Result<(), BrokerError> {
        self.inner
            .client
            .change_message_visibility()
            .queue_url(&self.inner.urls.jobs)
            .receipt_handle(&self.handle)
            .visibility_timeout(seconds(timeout))
            .send()
            .await
            .map_err(|err| sdk_error(what, err))?;
        Ok(())
    }
}

#[async_trait]
impl Settle for SqsSettle {
    async fn ack(&self) -> Result<(), BrokerError> {
        self.inner
            .client
            .delete_message()
            .queue_url(&self.inner.urls.jobs)
            .receipt_handle(&self.handle)
            .send()
            .await
            .map_err(|err| sdk_error("deleting a finished job", err))?;
        Ok(())
    }

    async fn hand_back(&self) -> Result<(), BrokerError> {
        self.set_visibility(Duration::ZERO, "handing a job back")
            .await
    }

    async fn dead_letter(&self, reason: &str) -> Result<(), BrokerError> {
        self.inner
            .send(
                &self.inner.urls.dead_letter,
                &self.job_id,
                &self.body,
                Some(reason),
            )
            .await?;
        self.ack().await
    }

    async fn extend_lease(&self) -> Result<(), BrokerError> {
        self.set_visibility(self.inner.visibility, "extending a job's visibility")
            .await
    }

    fn lease_renewal_interval(&self) -> Option<Duration> {
        Some(self.inner.visibility / 3)
    }
}

// ---------------------------------------------------------------------------
// Dead letters: what operators see (`GET /v1/dead-letters`) and move back
// (`POST /v1/dead-letters/redrive`). Moved by hand (receive, send to the jobs
// queue, delete) rather than with `StartMessageMoveTask`: that runs
// asynchronously with no count to answer with, and moto does not implement it.

use zipfleet_shared::broker::{DeadLetter, DeadLetters, EXCEEDED_MAX_DELIVERIES};

/// How long a listed dead letter stays invisible if making it visible again fails.
const LIST_PEEK_SECONDS: i32 = 5;
/// How long a dead letter being moved stays invisible before another try may take it.
const REDRIVE_LEASE_SECONDS: i32 = 60;

fn message_attribute(message: &aws_sdk_sqs::types::Message, name: &str) -> Option<String> {
    message
        .message_attributes()
        .and_then(|map| map.get(name))
        .and_then(|value| value.string_value())
        .map(str::to_string)
}

impl Inner {
    async fn receive_dead_letters(
        &self,
        count: usize,
        visibility: i32,
    ) -> Result<Vec<aws_sdk_sqs::types::Message>, BrokerError> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.urls.dead_letter)
            .max_number_of_messages(i32::try_from(count.clamp(1, MAX_BATCH)).unwrap_or(1))
            // A short long poll: a zero wait may miss messages on other SQS hosts.
            .wait_time_seconds(1)
            .visibility_timeout(visibility)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|err| sdk_error("receiving from the dead-letter queue", err))?;
        Ok(output.messages.unwrap_or_default())
    }
}

#[async_trait]
impl DeadLetters for SqsBroker {
    async fn list(&self, limit: usize) -> Result<Vec<DeadLetter>, BrokerError> {
        let inner = &self.inner;
        let mut listed: Vec<DeadLetter> = Vec::new();
        let mut handles = Vec::new();
        let mut result = Ok(());
        while listed.len() < limit {
            let batch = match inner
                .receive_dead_letters(limit - listed.len(), LIST_PEEK_SECONDS)
                .await
            {
                Ok(batch) => batch,
                Err(err) => {
                    result = Err(err);
                    break;
                }
            };
            let before = listed.len();
            for message in batch {
                let id = message.message_id().unwrap_or_default().to_string();
                if let Some(handle) = message.receipt_handle() {
                    handles.push(handle.to_string());
                }
                if listed.iter().any(|letter| letter.id == id) {
                    continue;
                }
                // Ours when the worker dead-lettered it; none when the redrive policy did.
                let reason = message_attribute(&message, "dead_letter_reason")
                    .unwrap_or_else(|| EXCEEDED_MAX_DELIVERIES.to_string());
                let mut letter = DeadLetter::describe(
                    id,
                    Some(reason),
                    message.body().unwrap_or_default().as_bytes(),
                );
                if letter.job_id.is_none() {
                    letter.job_id = message_attribute(&message, "job_id")
                        .filter(|id| zipfleet_shared::spec::is_valid_job_id(id));
                }
                listed.push(letter);
            }
            if listed.len() == before {
                break;
            }
        }
        // Visible again at once (else they come back after LIST_PEEK_SECONDS anyway).
        for handle in handles {
            let _ = inner
                .client
                .change_message_visibility()
                .queue_url(&inner.urls.dead_letter)
                .receipt_handle(handle)
                .visibility_timeout(0)
                .send()
                .await;
        }
        result.map(|()| listed)
    }

    async fn depth(&self) -> Result<u64, BrokerError> {
        let output = self
            .inner
            .client
            .get_queue_attributes()
            .queue_url(&self.inner.urls.dead_letter)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|err| sdk_error("reading the dead-letter queue's depth", err))?;
        let read = |name: &QueueAttributeName| {
            output
                .attributes()
                .and_then(|map| map.get(name))
                .and_then(|value| value.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(read(&QueueAttributeName::ApproximateNumberOfMessages)
            + read(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
    }

    /// Receive from the dead-letter queue, send to the jobs queue, then delete
    /// from the dead-letter queue: a failure in between leaves the message
    /// where it was (visible again after the lease).
    async fn redrive(&self, max: usize) -> Result<u64, BrokerError> {
        let inner = &self.inner;
        let mut moved = 0u64;
        while (moved as usize) < max {
            let batch = inner
                .receive_dead_letters(max - moved as usize, REDRIVE_LEASE_SECONDS)
                .await?;
            if batch.is_empty() {
                break;
            }
            for message in batch {
                let Some(handle) = message.receipt_handle() else {
                    continue;
                };
                let body = message.body().unwrap_or_default();
                let job_id = message_attribute(&message, "job_id")
                    .filter(|id| zipfleet_shared::spec::is_valid_job_id(id))
                    .or_else(|| DeadLetter::describe("", None, body.as_bytes()).job_id)
                    .unwrap_or_default();
                inner
                    .send(&inner.urls.jobs, &job_id, body.as_bytes(), None)
                    .await?;
                inner
                    .client
                    .delete_message()
                    .queue_url(&inner.urls.dead_letter)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .map_err(|err| sdk_error("deleting a redriven dead letter", err))?;
                moved += 1;
            }
        }
        Ok(moved)
    }
}
