//! The broker trait: a jobs queue with acknowledgements, a completed queue,
//! and a dead-letter queue.
//!
//! A [`Delivery`] is a leased message: [`Delivery::ack`] removes it,
//! [`Delivery::hand_back`] returns it for another attempt, and
//! [`Delivery::dead_letter`] moves it to the dead-letter queue. A delivery
//! dropped without any of these is redelivered (at-least-once), as a broker
//! does when a consumer's connection dies.

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

impl BrokerError {
    pub fn is_transient(&self) -> bool {
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
}

#[async_trait]
pub trait Consumer: Send {
    /// The next delivery; waits until one arrives. An error means the
    /// consumer is broken; the caller makes a new one (with backoff).
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
        f.debug_struct("Delivery").field("attempt", &self.attempt).field("bytes", &self.body.len()).finish()
    }
}

impl Delivery {
    pub fn new(body: Bytes, attempt: u32, settle: Box<dyn Settle>) -> Self {
        Self { body, attempt, settle }
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
