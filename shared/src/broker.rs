//! The broker trait: a jobs queue in lanes, with acknowledgements, a
//! completed queue, and a dead-letter queue.
//!
//! **Lanes.** The jobs queue is [`Broker::lanes`] queues (`ZIPFLEET_FAIR_LANES`):
//! lane 0 is the jobs queue itself (`ZIPFLEET_JOBS_QUEUE`), lane n ≥ 1 a queue
//! named after it ([`Lane::queue_name`]). Every lane has the same delivery
//! limit and dead-letters into the one dead-letter queue; what the fair-share
//! ledger does not know (redriven dead letters, messages posted straight to
//! the broker) is on lane 0.
//!
//! **Pull, one at a time.** A worker asks for work with [`Broker::take`]: at
//! most one message from one lane, waiting at most `patience` for it. There
//! is no push consumer and no prefetch: a worker calls `take` only when it has
//! a free slot for the job, so it never holds a message it is not running.
//! `take` must not be raced against anything that could drop it midway (an
//! SQS receive dropped mid-flight may already have made a message invisible);
//! the worker loop awaits every `take` to its end, which `patience` bounds.
//!
//! A [`Delivery`] is a leased message: [`Delivery::ack`] removes it,
//! [`Delivery::hand_back`] returns it to its own lane for another attempt, and
//! [`Delivery::dead_letter`] moves it to the dead-letter queue. A delivery
//! dropped without any of these is redelivered (at-least-once), as a broker
//! does when a consumer's connection dies.
//!
//! Optional abilities (the apalis shape: one required trait, small optional
//! ones): [`DeadLetters`] lists, redrives and deletes dead letters, reached
//! through [`Broker::dead_letter_queue`]; a broker without it answers `None`.

mod dead_letters;
pub mod memory;

pub use dead_letters::{
    dead_letter_digest, new_dead_letter_id, DeadLetter, DeadLetters, Pick, EXCEEDED_MAX_DELIVERIES,
    PREVIEW_CHARS,
};

use async_trait::async_trait;
use bytes::Bytes;
use std::time::Duration;

/// The three queue names of one deployment (the jobs queue is lane 0; the
/// other lanes are named after it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueNames {
    pub jobs: String,
    pub completed: String,
    pub dead_letter: String,
}

/// Lanes of the jobs queue unless `ZIPFLEET_FAIR_LANES` says otherwise:
/// lane 0 plus 7 lanes a tenant can have to itself.
pub const DEFAULT_LANES: u16 = 8;
/// Most lanes a deployment may have. Every lane is a queue an idle worker
/// sweeps every couple of seconds, so this also bounds idle traffic.
pub const MAX_LANES: u16 = 64;

/// One lane of the jobs queue: 0 is the jobs queue itself, n ≥ 1 the queue
/// [`Lane::queue_name`] names.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Lane(pub u16);

impl Lane {
    /// Lane 0, the jobs queue itself: where redrives and unknown messages go.
    pub const JOBS: Lane = Lane(0);

    /// Every lane of a broker with `count` lanes, in order.
    pub fn all(count: u16) -> impl DoubleEndedIterator<Item = Lane> + ExactSizeIterator {
        (0..count).map(Lane)
    }

    /// The queue of this lane, for a jobs queue called `jobs` (a name, or an
    /// SQS queue URL): lane 0 is `jobs` itself, lane n is `jobs` followed by
    /// `separator` and `lane{n}` — `zipfleet.jobs.lane3` on RabbitMQ (`.`),
    /// `zipfleet-jobs-lane3` or `https://…/zipfleet-jobs-lane3` on SQS (`-`:
    /// SQS names allow no dots).
    pub fn queue_name(self, jobs: &str, separator: char) -> String {
        if self.0 == 0 {
            jobs.to_string()
        } else {
            format!("{jobs}{separator}lane{}", self.0)
        }
    }

    /// `Ok` if this lane exists on a broker with `lanes` lanes.
    pub fn check(self, lanes: u16) -> Result<(), BrokerError> {
        if self.0 < lanes {
            Ok(())
        } else {
            Err(BrokerError::Refused(format!(
                "{self} does not exist: the jobs queue has {lanes} lanes (ZIPFLEET_FAIR_LANES)"
            )))
        }
    }
}

impl std::fmt::Display for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "lane {}", self.0)
    }
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

/// Messages of the jobs queue (every lane); what autoscalers scale on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Ready to be delivered.
    pub ready: u64,
    /// Delivered and not yet acknowledged, where the broker reports it.
    pub in_flight: Option<u64>,
}

/// The depth of one lane.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct LaneDepth {
    #[schema(value_type = u16)]
    pub lane: Lane,
    /// The lane's queue (name, or URL on SQS).
    pub queue: String,
    /// Ready to be delivered (approximate on SQS).
    pub ready: u64,
    /// Delivered and not yet acknowledged, where the broker reports it
    /// (RabbitMQ's passive declare does not).
    #[schema(required = true)]
    pub in_flight: Option<u64>,
}

/// The whole jobs queue from its lanes: ready messages summed; in-flight
/// ones summed only if every lane reported them.
pub fn total_depth(lanes: &[LaneDepth]) -> QueueDepth {
    QueueDepth {
        ready: lanes.iter().map(|lane| lane.ready).sum(),
        in_flight: lanes.iter().map(|lane| lane.in_flight).sum::<Option<u64>>(),
    }
}

#[async_trait]
pub trait Broker: Send + Sync {
    /// Short name for logs and metrics (`memory`, `rabbitmq`, `sqs`).
    fn kind(&self) -> &'static str;
    /// How many lanes the jobs queue has; lanes are `0..lanes()`.
    fn lanes(&self) -> u16;
    /// Durably enqueue a job on `lane`; returns only once the broker has
    /// confirmed it. A lane out of range is refused.
    async fn publish_job(&self, lane: Lane, job_id: &str, body: &[u8]) -> Result<(), BrokerError>;
    /// Publish a completion document on the completed queue, confirmed.
    async fn publish_completion(&self, job_id: &str, body: &[u8]) -> Result<(), BrokerError>;
    /// At most one message from `lane`, waiting at most `patience` for one
    /// (SQS rounds it down to whole seconds; zero asks once). `None`: the
    /// lane had nothing. Call it only with a free slot for the job, and
    /// await it to its end (see the module doc).
    async fn take(&self, lane: Lane, patience: Duration) -> Result<Option<Delivery>, BrokerError>;
    /// Each lane's depth, lane 0 first.
    async fn lane_depths(&self) -> Result<Vec<LaneDepth>, BrokerError>;
    /// The whole jobs queue: the sum over its lanes.
    async fn queue_depth(&self) -> Result<QueueDepth, BrokerError> {
        Ok(total_depth(&self.lane_depths().await?))
    }
    /// Cheap reachability check for `/readyz`.
    async fn check(&self) -> Result<(), BrokerError>;
    /// The dead-letter queue, for brokers that can show and move its messages.
    fn dead_letter_queue(&self) -> Option<&dyn DeadLetters> {
        None
    }
}

/// How a broker settles one delivery.
#[async_trait]
pub trait Settle: Send + Sync {
    async fn ack(&self) -> Result<(), BrokerError>;
    /// Return the message to the lane it came from.
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

/// One leased message from a lane of the jobs queue.
pub struct Delivery {
    pub body: Bytes,
    /// 1 on first delivery, counting up on each redelivery.
    pub attempt: u32,
    /// The lane it was taken from (and returns to when handed back).
    pub lane: Lane,
    settle: Box<dyn Settle>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("lane", &self.lane)
            .field("attempt", &self.attempt)
            .field("bytes", &self.body.len())
            .finish()
    }
}

impl Delivery {
    pub fn new(body: Bytes, attempt: u32, lane: Lane, settle: Box<dyn Settle>) -> Self {
        Self {
            body,
            attempt,
            lane,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_queue_names() {
        assert_eq!(Lane(0).queue_name("zipfleet.jobs", '.'), "zipfleet.jobs");
        assert_eq!(
            Lane(3).queue_name("zipfleet.jobs", '.'),
            "zipfleet.jobs.lane3"
        );
        assert_eq!(
            Lane(7).queue_name("https://sqs.eu-west-1.amazonaws.com/1/zipfleet-jobs", '-'),
            "https://sqs.eu-west-1.amazonaws.com/1/zipfleet-jobs-lane7"
        );
        assert!(Lane(7).check(8).is_ok());
        assert!(Lane(8).check(8).is_err());
    }

    #[test]
    fn total_depth_knows_in_flight_only_if_every_lane_does() {
        let depth = |lane, ready, in_flight| LaneDepth {
            lane: Lane(lane),
            queue: String::new(),
            ready,
            in_flight,
        };
        assert_eq!(
            total_depth(&[depth(0, 2, Some(1)), depth(1, 3, Some(4))]),
            QueueDepth {
                ready: 5,
                in_flight: Some(5)
            }
        );
        assert_eq!(
            total_depth(&[depth(0, 2, Some(1)), depth(1, 3, None)]).in_flight,
            None
        );
    }
}
