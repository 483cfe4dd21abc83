//! The in-process broker: the embedded default (`memory://`) and the
//! reference the broker conformance suite holds the real brokers to. Lanes,
//! leases, redelivery of un-acked messages to their own lane, a delivery
//! limit per message and one dead-letter queue, as on the real brokers.

use super::{
    Broker, BrokerError, DeadLetter, DeadLetters, Delivery, Lane, LaneDepth, Pick, Settle,
    DEFAULT_LANES, EXCEEDED_MAX_DELIVERIES,
};
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Debug, Clone)]
struct Message {
    body: Bytes,
    /// The job id it was published under (may be empty).
    job_id: String,
    deliveries: u32,
}

#[derive(Debug, Default)]
struct Queues {
    /// Ready messages, one queue per lane.
    ready: Vec<VecDeque<Message>>,
    /// Taken and not settled, by tag, with the lane each returns to.
    in_flight: HashMap<u64, (Lane, Message)>,
    next_tag: u64,
    completed: Vec<Bytes>,
    dead_letters: VecDeque<DeadMessage>,
    next_dead_letter: u64,
}

#[derive(Debug, Clone)]
struct DeadMessage {
    id: u64,
    body: Bytes,
    job_id: String,
    reason: String,
}

impl DeadMessage {
    fn describe(&self) -> DeadLetter {
        let mut letter =
            DeadLetter::describe(self.id.to_string(), Some(self.reason.clone()), &self.body);
        if letter.job_id.is_none() && crate::spec::is_valid_job_id(&self.job_id) {
            letter.job_id = Some(self.job_id.clone());
        }
        letter
    }
}

impl Queues {
    fn dead_letter(&mut self, message: Message, reason: &str) {
        let id = self.next_dead_letter;
        self.next_dead_letter += 1;
        self.dead_letters.push_back(DeadMessage {
            id,
            body: message.body,
            job_id: message.job_id,
            reason: reason.to_string(),
        });
    }

    /// Put a dead letter back on lane 0 as a first delivery.
    fn revive(&mut self, dead: DeadMessage) {
        self.ready[0].push_back(Message {
            body: dead.body,
            job_id: dead.job_id,
            deliveries: 0,
        });
    }
}

#[derive(Debug)]
struct Shared {
    queues: Mutex<Queues>,
    /// One per lane: a message became ready there.
    arrived: Vec<Notify>,
    max_deliveries: u32,
}

impl Shared {
    fn queues(&self) -> std::sync::MutexGuard<'_, Queues> {
        // A panic while holding the lock leaves the queues consistent (every
        // change is one push or pop), so a poisoned lock is still usable.
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An in-memory broker with the same delivery semantics as the real ones:
/// lanes, leases, redelivery of un-acked messages, a delivery limit, a
/// dead-letter queue.
#[derive(Debug, Clone)]
pub struct MemoryBroker {
    shared: Arc<Shared>,
}

impl MemoryBroker {
    /// What [`Broker::kind`] answers.
    pub const KIND: &'static str = "memory";

    /// [`DEFAULT_LANES`] lanes; `max_deliveries`: after this many deliveries
    /// a handed-back message is dead-lettered.
    pub fn new(max_deliveries: u32) -> Self {
        Self::with_lanes(max_deliveries, DEFAULT_LANES)
    }

    /// `lanes` lanes (at least one).
    pub fn with_lanes(max_deliveries: u32, lanes: u16) -> Self {
        let lanes = lanes.max(1);
        let queues = Queues {
            ready: (0..lanes).map(|_| VecDeque::new()).collect(),
            ..Queues::default()
        };
        Self {
            shared: Arc::new(Shared {
                queues: Mutex::new(queues),
                arrived: (0..lanes).map(|_| Notify::new()).collect(),
                max_deliveries: max_deliveries.max(1),
            }),
        }
    }

    /// Messages published on the completed queue so far (for tests and the embedded CLI).
    pub fn completions(&self) -> Vec<Bytes> {
        self.shared.queues().completed.clone()
    }

    /// Messages moved to the dead-letter queue so far.
    pub fn dead_letters(&self) -> Vec<Bytes> {
        self.shared
            .queues()
            .dead_letters
            .iter()
            .map(|m| m.body.clone())
            .collect()
    }

    fn pop(&self, lane: Lane) -> Option<Delivery> {
        let mut queues = self.shared.queues();
        let mut message = queues.ready[usize::from(lane.0)].pop_front()?;
        message.deliveries += 1;
        let tag = queues.next_tag;
        queues.next_tag += 1;
        let body = message.body.clone();
        let attempt = message.deliveries;
        queues.in_flight.insert(tag, (lane, message));
        let settle = MemorySettle {
            shared: self.shared.clone(),
            tag,
        };
        Some(Delivery::new(body, attempt, lane, Box::new(settle)))
    }
}

#[async_trait]
impl Broker for MemoryBroker {
    fn kind(&self) -> &'static str {
        Self::KIND
    }

    fn lanes(&self) -> u16 {
        self.shared.arrived.len() as u16
    }

    async fn publish_job(&self, lane: Lane, job_id: &str, body: &[u8]) -> Result<(), BrokerError> {
        lane.check(self.lanes())?;
        let message = Message {
            body: Bytes::copy_from_slice(body),
            job_id: job_id.to_string(),
            deliveries: 0,
        };
        self.shared.queues().ready[usize::from(lane.0)].push_back(message);
        self.shared.arrived[usize::from(lane.0)].notify_one();
        Ok(())
    }

    async fn publish_completion(&self, _job_id: &str, body: &[u8]) -> Result<(), BrokerError> {
        self.shared
            .queues()
            .completed
            .push(Bytes::copy_from_slice(body));
        Ok(())
    }

    async fn take(&self, lane: Lane, patience: Duration) -> Result<Option<Delivery>, BrokerError> {
        lane.check(self.lanes())?;
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            // Registered before looking, so a publish in between is not missed.
            let arrived = self.shared.arrived[usize::from(lane.0)].notified();
            if let Some(delivery) = self.pop(lane) {
                return Ok(Some(delivery));
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return Ok(None);
            }
        }
    }

    async fn lane_depths(&self) -> Result<Vec<LaneDepth>, BrokerError> {
        let queues = self.shared.queues();
        Ok(Lane::all(self.lanes())
            .map(|lane| LaneDepth {
                lane,
                queue: lane.queue_name("memory", '.'),
                ready: queues.ready[usize::from(lane.0)].len() as u64,
                in_flight: Some(
                    queues
                        .in_flight
                        .values()
                        .filter(|(taken_from, _)| *taken_from == lane)
                        .count() as u64,
                ),
            })
            .collect())
    }

    async fn check(&self) -> Result<(), BrokerError> {
        Ok(())
    }

    fn dead_letter_queue(&self) -> Option<&dyn DeadLetters> {
        Some(self)
    }
}

#[async_trait]
impl DeadLetters for MemoryBroker {
    async fn list(&self, limit: usize) -> Result<Vec<DeadLetter>, BrokerError> {
        Ok(self
            .shared
            .queues()
            .dead_letters
            .iter()
            .take(limit)
            .map(DeadMessage::describe)
            .collect())
    }

    async fn depth(&self) -> Result<u64, BrokerError> {
        Ok(self.shared.queues().dead_letters.len() as u64)
    }

    async fn pick(
        &self,
        examine: usize,
        at_most: u64,
        pick: &(dyn for<'a> Fn(&'a DeadLetter) -> Pick + Send + Sync),
    ) -> Result<u64, BrokerError> {
        let mut queues = self.shared.queues();
        let (mut picked, mut revived) = (0u64, 0usize);
        let mut kept = std::collections::VecDeque::new();
        let mut examined = 0usize;
        while let Some(message) = queues.dead_letters.pop_front() {
            let action = if picked < at_most && examined < examine {
                examined += 1;
                pick(&message.describe())
            } else {
                Pick::Keep
            };
            match action {
                Pick::Keep => kept.push_back(message),
                Pick::Delete => picked += 1,
                Pick::Redrive => {
                    queues.revive(message);
                    picked += 1;
                    revived += 1;
                }
            }
        }
        queues.dead_letters = kept;
        drop(queues);
        for _ in 0..revived {
            self.shared.arrived[0].notify_one();
        }
        Ok(picked)
    }
}

struct MemorySettle {
    shared: Arc<Shared>,
    tag: u64,
}

impl MemorySettle {
    fn requeue(&self) {
        let mut queues = self.shared.queues();
        if let Some((lane, message)) = queues.in_flight.remove(&self.tag) {
            if message.deliveries >= self.shared.max_deliveries {
                queues.dead_letter(message, EXCEEDED_MAX_DELIVERIES);
            } else {
                queues.ready[usize::from(lane.0)].push_back(message);
                drop(queues);
                self.shared.arrived[usize::from(lane.0)].notify_one();
            }
        }
    }
}

#[async_trait]
impl Settle for MemorySettle {
    async fn ack(&self) -> Result<(), BrokerError> {
        self.shared.queues().in_flight.remove(&self.tag);
        Ok(())
    }

    async fn hand_back(&self) -> Result<(), BrokerError> {
        self.requeue();
        Ok(())
    }

    async fn dead_letter(&self, reason: &str) -> Result<(), BrokerError> {
        let mut queues = self.shared.queues();
        if let Some((_, message)) = queues.in_flight.remove(&self.tag) {
            queues.dead_letter(message, reason);
        }
        Ok(())
    }
}

impl Drop for MemorySettle {
    /// A delivery dropped unsettled is redelivered, like a message whose
    /// consumer's channel closed.
    fn drop(&mut self) {
        self.requeue();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::QueueDepth;

    const NOW: Duration = Duration::ZERO;

    async fn take(broker: &MemoryBroker, lane: u16) -> Delivery {
        broker
            .take(Lane(lane), NOW)
            .await
            .unwrap()
            .expect("a message")
    }

    #[tokio::test]
    async fn publish_take_ack() {
        let broker = MemoryBroker::new(3);
        broker.publish_job(Lane(0), "a", b"one").await.unwrap();
        let delivery = take(&broker, 0).await;
        assert_eq!(&delivery.body[..], b"one");
        assert_eq!((delivery.attempt, delivery.lane), (1, Lane(0)));
        assert_eq!(
            broker.queue_depth().await.unwrap(),
            QueueDepth {
                ready: 0,
                in_flight: Some(1)
            }
        );
        delivery.ack().await.unwrap();
        assert_eq!(
            broker.queue_depth().await.unwrap(),
            QueueDepth {
                ready: 0,
                in_flight: Some(0)
            }
        );
    }

    #[tokio::test]
    async fn hand_back_redelivers_on_its_lane_then_dead_letters() {
        let broker = MemoryBroker::new(2);
        broker.publish_job(Lane(3), "a", b"x").await.unwrap();
        let first = take(&broker, 3).await;
        first.hand_back().await.unwrap();
        assert!(broker.take(Lane(0), NOW).await.unwrap().is_none());
        let second = take(&broker, 3).await;
        assert_eq!(second.attempt, 2);
        second.hand_back().await.unwrap();
        assert_eq!(broker.dead_letters(), vec![Bytes::from_static(b"x")]);
        assert_eq!(broker.queue_depth().await.unwrap().ready, 0);
    }

    #[tokio::test]
    async fn dropped_delivery_is_redelivered() {
        let broker = MemoryBroker::new(5);
        broker.publish_job(Lane(1), "a", b"x").await.unwrap();
        drop(take(&broker, 1).await);
        let again = take(&broker, 1).await;
        assert_eq!(again.attempt, 2);
    }

    #[tokio::test]
    async fn take_waits_at_most_its_patience_and_wakes_on_a_publish() {
        let broker = MemoryBroker::new(5);
        let started = tokio::time::Instant::now();
        assert!(broker
            .take(Lane(2), Duration::from_millis(50))
            .await
            .unwrap()
            .is_none());
        assert!(started.elapsed() >= Duration::from_millis(50));
        let publisher = broker.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            publisher.publish_job(Lane(2), "a", b"x").await.unwrap();
        });
        let got = broker.take(Lane(2), Duration::from_secs(5)).await.unwrap();
        assert!(got.is_some());
        assert!(
            broker.take(Lane(8), NOW).await.is_err(),
            "no such lane: refused"
        );
    }

    #[tokio::test]
    async fn dead_letters_keep_their_reason_and_redrive_to_lane_0_as_first_deliveries() {
        let broker = MemoryBroker::new(1);
        broker
            .publish_job(Lane(4), "a", br#"{"job_id":"job-a","spec":{}}"#)
            .await
            .unwrap();
        broker.publish_job(Lane(0), "b", b"not json").await.unwrap();
        take(&broker, 4).await.hand_back().await.unwrap();
        take(&broker, 0)
            .await
            .dead_letter("not a job message")
            .await
            .unwrap();
        let dlq = broker
            .dead_letter_queue()
            .expect("the memory broker has a dead-letter queue");
        assert_eq!(dlq.depth().await.unwrap(), 2);
        let listed = dlq.list(10).await.unwrap();
        assert_eq!(listed[0].reason.as_deref(), Some(EXCEEDED_MAX_DELIVERIES));
        assert_eq!(listed[0].job_id.as_deref(), Some("job-a"));
        assert_eq!(listed[1].reason.as_deref(), Some("not a job message"));
        assert_eq!(
            (listed[1].job_id.as_deref(), listed[1].preview.as_str()),
            (Some("b"), "not json")
        );
        assert_eq!(dlq.list(1).await.unwrap().len(), 1);
        assert_eq!(dlq.redrive(1).await.unwrap(), 1);
        assert_eq!(dlq.depth().await.unwrap(), 1);
        let again = take(&broker, 0).await;
        assert_eq!(
            (again.attempt, &again.body[..]),
            (1, &br#"{"job_id":"job-a","spec":{}}"#[..])
        );
    }

    #[tokio::test]
    async fn dead_letters_by_id_and_by_job() {
        let broker = MemoryBroker::with_lanes(1, 2);
        for (job, lane) in [("j1", 1), ("j2", 1), ("j1", 0), ("j3", 0)] {
            let body = format!(r#"{{"job_id":"{job}"}}"#);
            broker
                .publish_job(Lane(lane), job, body.as_bytes())
                .await
                .unwrap();
            take(&broker, lane).await.hand_back().await.unwrap();
        }
        let dlq = broker.dead_letter_queue().unwrap();
        let ids: Vec<String> = dlq
            .list(10)
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.id)
            .collect();
        assert_eq!(ids.len(), 4);
        assert!(!dlq.redrive_one("no-such-id").await.unwrap());
        assert!(dlq.redrive_one(&ids[1]).await.unwrap());
        assert!(!dlq.redrive_one(&ids[1]).await.unwrap(), "moved once");
        let back = take(&broker, 0).await;
        assert_eq!(
            (&back.body[..], back.attempt),
            (&br#"{"job_id":"j2"}"#[..], 1)
        );
        back.ack().await.unwrap();
        assert!(dlq.delete_one(&ids[3]).await.unwrap());
        assert!(!dlq.delete_one(&ids[3]).await.unwrap());
        assert_eq!(dlq.delete_job("j1").await.unwrap(), 2);
        assert_eq!(dlq.depth().await.unwrap(), 0);
        assert_eq!(broker.lanes(), 2);
    }
}
