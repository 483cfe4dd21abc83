//! The broker trait: a jobs queue with acknowledgements, a completed queue,
//! and a dead-letter queue.
//!
//! A [`Delivery`] is a leased message: [`Delivery::ack`] removes it,
//! [`Delivery::hand_back`] returns it for another attempt, and
//! [`Delivery::dead_letter`] moves it to the dead-letter queue. A delivery
//! dropped without any of these is redelivered (at-least-once), as a broker
//! does when a consumer's connection dies.
//!
//! Optional abilities (the apalis shape: one required trait, small optional
//! ones): [`DeadLetters`] lists and redrives the dead-letter queue, reached
//! through [`Broker::dead_letter_queue`]; a broker without it answers `None`.

pub mod memory;

use async_trait::async_trait;
use bytes::Bytes;
use std::time::Duration;

/// The three queue names of one deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueNames {
    pub jobs: String,
    pub completed: String,
    pub dead_letter: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The broker cannot be reached or the connection broke; worth retrying.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// The broker refused the operation (bad configuration, message too large).
    #[error("broker refused: {0}")]
    Refused(String),
}

impl crate::retry::Transient for BrokerError {
    fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// Messages waiting on the jobs queue; what autoscalers scale on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Ready to be delivered.
    pub ready: u64,
    /// Delivered and not yet acknowledged, where the broker reports it.
    pub in_flight: Option<u64>,
}

#[async_trait]
pub trait Broker: Send + Sync {
    /// Short name for logs and metrics (`memory`, `rabbitmq`, `sqs`).
    fn kind(&self) -> &'static str;
    /// Durably enqueue a job; returns only once the broker has confirmed it.
    async fn publish_job(&self, job_id: &str, body: &[u8]) -> Result<(), BrokerError>;
    /// Publish a completion document on the completed queue, confirmed.
    async fn publish_completion(&self, job_id: &str, body: &[u8]) -> Result<(), BrokerError>;
    /// Start consuming the jobs queue with at most `prefetch` unacknowledged deliveries.
    async fn consumer(&self, prefetch: u16) -> Result<Box<dyn Consumer>, BrokerError>;
    async fn queue_depth(&self) -> Result<QueueDepth, BrokerError>;
    /// Cheap reachability check for `/readyz`.
    async fn check(&self) -> Result<(), BrokerError>;
    /// The dead-letter queue, for brokers that can show and move its messages.
    fn dead_letter_queue(&self) -> Option<&dyn DeadLetters> {
        None
    }
}

/// Why a message the broker dead-lettered by its delivery limit is there.
pub const EXCEEDED_MAX_DELIVERIES: &str = "exceeded max deliveries";
/// Longest preview of a dead letter's body, in characters.
pub const PREVIEW_CHARS: usize = 200;

/// One message of the dead-letter queue, as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct DeadLetter {
    /// The broker's id of the message (SQS `MessageId`, RabbitMQ delivery position or message id).
    pub id: String,
    /// Why it was dead-lettered, where the broker kept that.
    #[schema(required = true)]
    pub reason: Option<String>,
    /// The start of the body (at most 200 characters, invalid UTF-8 replaced).
    #[schema(max_length = 200)]
    pub preview: String,
    /// The job id, if the body parses as far as a valid `job_id`.
    #[schema(required = true)]
    pub job_id: Option<String>,
}

impl DeadLetter {
    pub fn describe(id: impl Into<String>, reason: Option<String>, body: &[u8]) -> Self {
        let preview: String = String::from_utf8_lossy(body)
            .chars()
            .take(PREVIEW_CHARS)
            .collect();
        let job_id = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|value| {
                value
                    .get("job_id")
                    .and_then(|id| id.as_str())
                    .map(str::to_string)
            })
            .filter(|id| crate::spec::is_valid_job_id(id));
        Self {
            id: id.into(),
            reason,
            preview,
            job_id,
        }
    }
}

/// Reading and redriving the dead-letter queue (operators' `GET
/// /v1/dead-letters` and `POST /v1/dead-letters/redrive`).
#[async_trait]
pub trait DeadLetters: Send + Sync {
    /// Up to `limit` messages, oldest first where the broker keeps an order;
    /// they stay in the queue.
    async fn list(&self, limit: usize) -> Result<Vec<DeadLetter>, BrokerError>;
    /// Messages waiting in the dead-letter queue (approximate on SQS).
    async fn depth(&self) -> Result<u64, BrokerError>;
    /// Move up to `max` messages back to the jobs queue, each as a first
    /// delivery. A message leaves the dead-letter queue only after the jobs
    /// queue confirmed it, so none is lost (one may be duplicated if the
    /// broker fails in between; jobs are idempotent). Returns how many moved.
    /// Callers bound `max` by [`DeadLetters::depth`], so that a message that
    /// fails again at once is not moved round and round.
    async fn redrive(&self, max: usize) -> Result<u64, BrokerError>;
}

#[async_trait]
pub trait Consumer: Send {
    /// The next delivery; waits until one arrives. An error means the
    /// consumer is broken; the caller makes a new one (with backoff).
    ///
    /// Must be cancel-safe: the worker races it against other events, and a
    /// dropped call must lose nothing — a receive already sent to the broker
    /// (which may hold messages) is kept and finished by the next call or by
    /// [`Consumer::stop`], never abandoned to sit out a visibility timeout.
    async fn next(&mut self) -> Result<Delivery, BrokerError>;
    /// Stop receiving new deliveries while those already received can still
    /// be settled (graceful shutdown).
    async fn stop(&mut self) {}
}

/// How a broker settles one delivery.
#[async_trait]
pub trait Settle: Send + Sync {
    async fn ack(&self) -> Result<(), BrokerError>;
    async fn hand_back(&self) -> Result<(), BrokerError>;
    async fn dead_letter(&self, reason: &str) -> Result<(), BrokerError>;
    /// Extend the lease on brokers whose leases expire (SQS visibility).
    async fn extend_lease(&self) -> Result<(), BrokerError> {
        Ok(())
    }
    /// How often [`Settle::extend_lease`] must be called, if at all.
    fn lease_renewal_interval(&self) -> Option<Duration> {
        None
    }
}

/// One leased message from the jobs queue.
pub struct Delivery {
    pub body: Bytes,
    /// 1 on first delivery, counting up on each redelivery.
    pub attempt: u32,
    settle: Box<dyn Settle>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("attempt", &self.attempt)
            .field("bytes", &self.body.len())
            .finish()
    }
}

impl Delivery {
    pub fn new(body: Bytes, attempt: u32, settle: Box<dyn Settle>) -> Self {
        Self {
            body,
            attempt,
            settle,
        }
    }

    pub async fn ack(self) -> Result<(), BrokerError> {
        self.settle.ack().await
    }

    pub async fn hand_back(self) -> Result<(), BrokerError> {
        self.settle.hand_back().await
    }

    pub async fn dead_letter(self, reason: &str) -> Result<(), BrokerError> {
        self.settle.dead_letter(reason).await
    }

    pub async fn extend_lease(&self) -> Result<(), BrokerError> {
        self.settle.extend_lease().await
    }

    pub fn lease_renewal_interval(&self) -> Option<Duration> {
        self.settle.lease_renewal_interval()
    }
}
