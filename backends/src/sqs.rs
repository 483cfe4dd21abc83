//! AWS SQS (`ZIPFLEET_BROKER=sqs://`), with aws-sdk-sqs. Endpoint, region and
//! credentials come from the AWS SDK's usual sources (`AWS_ENDPOINT_URL_SQS`,
//! `AWS_REGION`, ...).
//!
//! How the broker trait maps onto SQS:
//!
//! - **Lanes**: lane 0 is the jobs queue, lane n the queue `{jobs}-lane{n}`
//!   (a queue URL given for the jobs queue: that URL + `-lane{n}`).
//! - **Take**: `ReceiveMessage` of one message from one lane, waiting
//!   `patience` (whole seconds, at most SQS's 20; 0 asks once). A message is
//!   received only when the worker has a free slot to run it, and the worker
//!   awaits every receive to its end, so no message sits invisible in a buffer
//!   or in an abandoned request. Receives are not retried by the SDK: the
//!   worker loop backs off itself.
//! - **Lease**: a received message is invisible for the visibility timeout.
//!   [`Settle::extend_lease`] renews it with `ChangeMessageVisibility`; the
//!   worker calls it every third of the timeout while the job runs, so a long
//!   job is never delivered to a second worker.
//! - **Ack** = `DeleteMessage`; **hand back** = visibility 0 on its own lane;
//!   **attempt** = `ApproximateReceiveCount`.
//! - **Dead letters**: every lane's redrive policy (`maxReceiveCount` = the
//!   delivery limit) moves a message that keeps coming back to the one
//!   dead-letter queue; a message the worker knows to be hopeless (malformed)
//!   is moved at once (send to the dead-letter queue, then delete) instead of
//!   burning receives. A dead letter's id is its `MessageId`.
//! - **Queues** are names (resolved with `GetQueueUrl`) or full URLs. With
//!   `ZIPFLEET_CREATE_QUEUES=true`, missing queues given by name are created
//!   (lanes with the redrive policy and visibility timeout); queues that exist
//!   are used as they are. A lane that does not exist and is not created is
//!   an error naming it.

use async_trait::async_trait;
use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, MessageAttributeValue, MessageSystemAttributeName,
    QueueAttributeName,
};
use aws_sdk_sqs::Client;
use bytes::Bytes;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use zipfleet_shared::broker::{Broker, BrokerError, Delivery, Lane, LaneDepth, QueueNames, Settle};

/// SQS's queue names unless configured: SQS allows no dots in a standard
/// queue's name, so dashes.
pub fn default_queue_names() -> QueueNames {
    QueueNames {
        jobs: "zipfleet-jobs".into(),
        completed: "zipfleet-completed".into(),
        dead_letter: "zipfleet-jobs-dlq".into(),
    }
}

/// The queue (name or URL) of every lane, lane 0 first: the one place SQS's
/// lane names are made (`zipfleet-jobs`, `zipfleet-jobs-lane1`, …).
pub fn lane_queues(jobs: &str, lanes: u16) -> Vec<String> {
    Lane::all(lanes.max(1))
        .map(|lane| lane.queue_name(jobs, '-'))
        .collect()
}

/// SQS's largest batch for one `ReceiveMessage` or batch call.
const MAX_BATCH: usize = 10;
/// SQS's longest `WaitTimeSeconds`.
pub const MAX_WAIT_SECONDS: u64 = 20;
/// How much longer than its wait a receive may take before it is given up as
/// hung (a connection that died without an answer). Only then is a receive
/// ever abandoned; a message it may have taken comes back after the
/// visibility timeout.
const RECEIVE_HUNG_AFTER: Duration = Duration::from_secs(15);
/// SQS's smallest maximum message size; larger specs travel by claim check.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// Dead letters are kept as long as SQS allows (14 days).
const DEAD_LETTER_RETENTION_SECONDS: &str = "1209600";

/// Resolved queue URLs of one deployment.
#[derive(Debug, Clone)]
struct QueueUrls {
    /// Every lane's URL, lane 0 (the jobs queue) first.
    lanes: Vec<String>,
    completed: String,
    dead_letter: String,
}

struct Inner {
    client: Client,
    urls: QueueUrls,
    visibility: Duration,
}

impl Inner {
    fn lanes(&self) -> u16 {
        u16::try_from(self.urls.lanes.len()).unwrap_or(u16::MAX)
    }
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
    /// Lanes of the jobs queue.
    pub lanes: u16,
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
        let lane_attributes = if options.create_queues {
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
        let mut lanes = Vec::new();
        for (lane, queue) in
            Lane::all(options.lanes.max(1)).zip(lane_queues(&names.jobs, options.lanes))
        {
            let url = resolve_lane(
                &client,
                lane,
                &queue,
                options.create_queues,
                lane_attributes.clone(),
            )
            .await?;
            lanes.push(url);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                urls: QueueUrls {
                    lanes,
                    completed,
                    dead_letter,
                },
                visibility,
            }),
        })
    }
}

/// One lane's URL. Given by name: looked up (created when allowed). Given as
/// a URL (the jobs queue configured as one): checked to exist, since nothing
/// else would notice a missing lane before a publish fails.
async fn resolve_lane(
    client: &Client,
    lane: Lane,
    queue: &str,
    create: bool,
    attributes: Vec<(QueueAttributeName, String)>,
) -> Result<String, BrokerError> {
    let missing = |detail: String| {
        BrokerError::Refused(format!(
            "{lane} of the jobs queue, {queue}, does not exist ({detail}): create it like the jobs \
             queue (same redrive policy and visibility timeout), let zipfleet create queues given \
             by name (ZIPFLEET_CREATE_QUEUES=true), or lower ZIPFLEET_FAIR_LANES"
        ))
    };
    if is_queue_url(queue) {
        return match client
            .get_queue_attributes()
            .queue_url(queue)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
        {
            Ok(_) => Ok(queue.to_string()),
            Err(SdkError::ServiceError(service)) if service.err().is_queue_does_not_exist() => {
                Err(missing("no queue at that URL".into()))
            }
            Err(err) => Err(sdk_error(&format!("checking {lane} at {queue}"), err)),
        };
    }
    if create {
        return resolve(client, queue, true, attributes).await;
    }
    match client.get_queue_url().queue_name(queue).send().await {
        Ok(found) => found
            .queue_url
            .ok_or_else(|| BrokerError::Refused(format!("SQS returned no URL for queue {queue}"))),
        Err(SdkError::ServiceError(service)) if service.err().is_queue_does_not_exist() => {
            Err(missing("and ZIPFLEET_CREATE_QUEUES is false".into()))
        }
        Err(err) => Err(sdk_error(&format!("looking up queue {queue}"), err)),
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

    fn lanes(&self) -> u16 {
        self.inner.lanes()
    }

    async fn publish_job(&self, lane: Lane, job_id: &str, body: &[u8]) -> Result<(), BrokerError> {
        lane.check(self.lanes())?;
        self.inner
            .send(
                &self.inner.urls.lanes[usize::from(lane.0)],
                job_id,
                body,
                None,
            )
            .await
    }

    async fn publish_completion(&self, job_id: &str, body: &[u8]) -> Result<(), BrokerError> {
        self.inner
            .send(&self.inner.urls.completed, job_id, body, None)
            .await
    }

    async fn take(&self, lane: Lane, patience: Duration) -> Result<Option<Delivery>, BrokerError> {
        lane.check(self.lanes())?;
        let url = &self.inner.urls.lanes[usize::from(lane.0)];
        let wait = patience.as_secs().min(MAX_WAIT_SECONDS);
        let no_retries = aws_sdk_sqs::config::Builder::default()
            .retry_config(aws_sdk_sqs::config::retry::RetryConfig::disabled());
        let receive = self
            .inner
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(1)
            .wait_time_seconds(i32::try_from(wait).unwrap_or(0))
            .visibility_timeout(seconds(self.inner.visibility))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_attribute_names("All")
            .customize()
            .config_override(no_retries)
            .send();
        let output = match tokio::time::timeout(
            Duration::from_secs(wait) + RECEIVE_HUNG_AFTER,
            receive,
        )
        .await
        {
            Ok(output) => {
                output.map_err(|err| sdk_error(&format!("receiving from {lane}"), err))?
            }
            Err(_) => {
                tracing::warn!(%lane, "a receive hung without an answer; giving it up (a message it took, if any, returns after the visibility timeout)");
                return Err(BrokerError::Unavailable(format!(
                    "receiving from {lane}: no answer"
                )));
            }
        };
        let mut messages = output.messages.unwrap_or_default().into_iter();
        let Some(message) = messages.next() else {
            return Ok(None);
        };
        // More than asked for would be an SQS bug; never hold one unrun.
        for extra in messages {
            self.inner.release(url, &extra).await;
        }
        Ok(self.inner.delivery(lane, message))
    }

    async fn lane_depths(&self) -> Result<Vec<LaneDepth>, BrokerError> {
        let mut depths = Vec::with_capacity(self.inner.urls.lanes.len());
        for (lane, url) in Lane::all(self.lanes()).zip(&self.inner.urls.lanes) {
            let (ready, in_flight) = self.inner.depth_of(url, &lane.to_string()).await?;
            depths.push(LaneDepth {
                lane,
                queue: url.clone(),
                ready,
                in_flight: Some(in_flight),
            });
        }
        Ok(depths)
    }

    /// One request, whatever the number of lanes: `/readyz` asks every 2 s.
    async fn check(&self) -> Result<(), BrokerError> {
        self.inner
            .depth_of(&self.inner.urls.lanes[0], "the jobs queue")
            .await
            .map(|_| ())
    }

    fn dead_letter_queue(&self) -> Option<&dyn zipfleet_shared::broker::DeadLetters> {
        Some(self)
    }
}

impl Inner {
    /// A queue's approximate (visible, not visible) message counts.
    async fn depth_of(&self, url: &str, what: &str) -> Result<(u64, u64), BrokerError> {
        let output = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|err| sdk_error(&format!("reading the depth of {what}"), err))?;
        let read = |name: &QueueAttributeName| {
            output
                .attributes()
                .and_then(|map| map.get(name))
                .and_then(|value| value.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok((
            read(&QueueAttributeName::ApproximateNumberOfMessages),
            read(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        ))
    }

    /// Make a received message visible to others at once.
    async fn release(&self, url: &str, message: &aws_sdk_sqs::types::Message) {
        if let Some(handle) = message.receipt_handle() {
            let _ = self
                .client
                .change_message_visibility()
                .queue_url(url)
                .receipt_handle(handle)
                .visibility_timeout(0)
                .send()
                .await;
        }
    }

    fn delivery(
        self: &Arc<Self>,
        lane: Lane,
        message: aws_sdk_sqs::types::Message,
    ) -> Option<Delivery> {
        let handle = message.receipt_handle()?.to_string();
        let attempt = message
            .attributes()
            .and_then(|map| map.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|count| count.parse::<u32>().ok())
            .unwrap_or(1)
            .max(1);
        let job_id = message_attribute(&message, "job_id").unwrap_or_default();
        let body = Bytes::from(message.body.unwrap_or_default());
        let settle = SqsSettle {
            inner: self.clone(),
            lane,
            handle,
            body: body.clone(),
            job_id,
        };
        Some(Delivery::new(body, attempt, lane, Box::new(settle)))
    }
}

struct SqsSettle {
    inner: Arc<Inner>,
    /// The lane it came from: its receipt handle is only good there.
    lane: Lane,
    handle: String,
    body: Bytes,
    job_id: String,
}

impl SqsSettle {
    fn url(&self) -> &str {
        &self.inner.urls.lanes[usize::from(self.lane.0)]
    }

    async fn set_visibility(&self, timeout: Duration, what: &str) -> Result<(), BrokerError> {
        self.inner
            .client
            .change_message_visibility()
            .queue_url(self.url())
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
            .queue_url(self.url())
            .receipt_handle(&self.handle)
            .send()
            .await
            .map_err(|err| sdk_error("deleting a finished job", err))?;
        Ok(())
    }

    /// Visible again at once, on its own lane.
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

fn message_attribute(message: &aws_sdk_sqs::types::Message, name: &str) -> Option<String> {
    message
        .message_attributes()
        .and_then(|map| map.get(name))
        .and_then(|value| value.string_value())
        .map(str::to_string)
}

// ---------------------------------------------------------------------------
// Dead letters: what operators see (`GET /v1/dead-letters`), move back to
// lane 0 and delete (all, one by id, or a job's). Moved by hand (receive,
// send to lane 0, delete) rather than with `StartMessageMoveTask`: that runs
// asynchronously with no count to answer with, and moto does not implement it.

use zipfleet_shared::broker::{DeadLetter, DeadLetters, Pick, EXCEEDED_MAX_DELIVERIES};

/// How long dead letters a scan has looked at stay invisible while it goes
/// on (so that it sees each once). Every one it keeps is made visible again
/// at its end; this is only how long one stays away if that fails.
const SCAN_LEASE_SECONDS: i32 = 30;

/// What a scan saw and did.
struct Scanned {
    seen: Vec<DeadLetter>,
    picked: u64,
}

fn describe(message: &aws_sdk_sqs::types::Message) -> DeadLetter {
    let id = message.message_id().unwrap_or_default().to_string();
    // Ours when the worker dead-lettered it; none when the redrive policy did.
    let reason = message_attribute(message, "dead_letter_reason")
        .unwrap_or_else(|| EXCEEDED_MAX_DELIVERIES.to_string());
    let mut letter = DeadLetter::describe(
        id,
        Some(reason),
        message.body().unwrap_or_default().as_bytes(),
    );
    if letter.job_id.is_none() {
        letter.job_id = message_attribute(message, "job_id")
            .filter(|id| zipfleet_shared::spec::is_valid_job_id(id));
    }
    letter
}

impl Inner {
    async fn receive_dead_letters(
        &self,
        count: usize,
    ) -> Result<Vec<aws_sdk_sqs::types::Message>, BrokerError> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.urls.dead_letter)
            .max_number_of_messages(i32::try_from(count.clamp(1, MAX_BATCH)).unwrap_or(1))
            // A short long poll: a zero wait may miss messages on other SQS hosts.
            .wait_time_seconds(1)
            .visibility_timeout(SCAN_LEASE_SECONDS)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|err| sdk_error("receiving from the dead-letter queue", err))?;
        Ok(output.messages.unwrap_or_default())
    }

    /// Go through the dead-letter queue: at most `limit` messages and never
    /// more than it held at the start (plus a batch, its count being
    /// approximate), stopping once `max_picked` were picked (a scan that only
    /// keeps ignores it) or a receive brings nothing new. Messages looked at stay invisible until the end,
    /// then the ones kept are made visible again (also after an error), so
    /// none is lost and each is seen once.
    async fn scan(
        &self,
        limit: usize,
        max_picked: u64,
        pick: impl Fn(&DeadLetter) -> Pick + Send,
    ) -> Result<Scanned, BrokerError> {
        let (visible, invisible) = self
            .depth_of(&self.urls.dead_letter, "the dead-letter queue")
            .await?;
        let bound =
            limit.min(usize::try_from(visible + invisible).unwrap_or(usize::MAX) + MAX_BATCH);
        let mut scanned = Scanned {
            seen: Vec::new(),
            picked: 0,
        };
        let mut seen_ids = HashSet::new();
        let mut kept = Vec::new();
        let mut done = false;
        let result = async {
            while !done && scanned.seen.len() < bound {
                let batch = self
                    .receive_dead_letters(bound - scanned.seen.len())
                    .await?;
                let mut new = 0;
                for message in batch {
                    let Some(handle) = message.receipt_handle().map(str::to_string) else {
                        continue;
                    };
                    let letter = describe(&message);
                    if done || scanned.seen.len() >= bound || !seen_ids.insert(letter.id.clone()) {
                        kept.push(handle);
                        continue;
                    }
                    new += 1;
                    let action = pick(&letter);
                    scanned.seen.push(letter);
                    if action == Pick::Keep {
                        kept.push(handle);
                        continue;
                    }
                    if let Err(err) = self.settle_dead_letter(&message, &handle, action).await {
                        kept.push(handle);
                        return Err(err);
                    }
                    scanned.picked += 1;
                    done = scanned.picked >= max_picked;
                }
                if new == 0 {
                    break;
                }
            }
            Ok(())
        }
        .await;
        self.make_visible(&self.urls.dead_letter, kept).await;
        result.map(|()| scanned)
    }

    /// Redrive (send to lane 0, then delete) or delete one dead letter: a
    /// failure before the delete leaves it in the dead-letter queue.
    async fn settle_dead_letter(
        &self,
        message: &aws_sdk_sqs::types::Message,
        handle: &str,
        action: Pick,
    ) -> Result<(), BrokerError> {
        if action == Pick::Redrive {
            let body = message.body().unwrap_or_default();
            let job_id = message_attribute(message, "job_id")
                .filter(|id| zipfleet_shared::spec::is_valid_job_id(id))
                .or_else(|| DeadLetter::describe("", None, body.as_bytes()).job_id)
                .unwrap_or_default();
            self.send(&self.urls.lanes[0], &job_id, body.as_bytes(), None)
                .await?;
        }
        self.client
            .delete_message()
            .queue_url(&self.urls.dead_letter)
            .receipt_handle(handle)
            .send()
            .await
            .map_err(|err| sdk_error("deleting a dead letter", err))?;
        Ok(())
    }

    /// Visible again at once, ten to a request (else they come back after
    /// [`SCAN_LEASE_SECONDS`] anyway).
    async fn make_visible(&self, url: &str, handles: Vec<String>) {
        for chunk in handles.chunks(MAX_BATCH) {
            let mut request = self.client.change_message_visibility_batch().queue_url(url);
            for (index, handle) in chunk.iter().enumerate() {
                let entry = ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(index.to_string())
                    .receipt_handle(handle)
                    .visibility_timeout(0)
                    .build()
                    .expect("id and receipt handle are set");
                request = request.entries(entry);
            }
            if let Err(err) = request.send().await {
                tracing::debug!(err = %aws_sdk_sqs::error::DisplayErrorContext(&err), "making dead letters visible again");
            }
        }
    }
}

#[async_trait]
impl DeadLetters for SqsBroker {
    async fn list(&self, limit: usize) -> Result<Vec<DeadLetter>, BrokerError> {
        Ok(self.inner.scan(limit, 0, |_| Pick::Keep).await?.seen)
    }

    async fn depth(&self) -> Result<u64, BrokerError> {
        let (visible, invisible) = self
            .inner
            .depth_of(&self.inner.urls.dead_letter, "the dead-letter queue")
            .await?;
        Ok(visible + invisible)
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
    fn lanes_are_named_after_the_jobs_queue_or_its_url() {
        assert_eq!(
            lane_queues("zipfleet-jobs", 2),
            ["zipfleet-jobs", "zipfleet-jobs-lane1"]
        );
        assert_eq!(
            lane_queues("https://sqs.us-east-1.amazonaws.com/1/jobs", 3)[2],
            "https://sqs.us-east-1.amazonaws.com/1/jobs-lane2"
        );
    }
}
