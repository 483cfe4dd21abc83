//! The in-process broker: the embedded default (`memory://`) and the
//! reference the broker conformance suite holds the real brokers to.

use super::{
    Broker, BrokerError, Consumer, DeadLetter, DeadLetters, Delivery, QueueDepth, Settle,
    EXCEEDED_MAX_DELIVERIES,
};
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

#[derive(Debug, Clone)]
struct Message {
    body: Bytes,
    deliveries: u32,
}

#[derive(Debug, Default)]
struct Queues {
    ready: VecDeque<Message>,
    in_flight: HashMap<u64, Message>,
    next_tag: u64,
    completed: Vec<Bytes>,
    dead_letters: VecDeque<DeadMessage>,
    next_dead_letter: u64,
}

#[derive(Debug, Clone)]
struct DeadMessage {
    id: u64,
    body: Bytes,
    reason: String,
}

impl Queues {
    fn dead_letter(&mut self, body: Bytes, reason: &str) {
        let id = self.next_dead_letter;
        self.next_dead_letter += 1;
        self.dead_letters.push_back(DeadMessage {
            id,
            body,
            reason: reason.to_string(),
        });
    }
}

#[derive(Debug)]
struct Shared {
    queues: Mutex<Queues>,
    arrived: Notify,
    max_deliveries: u32,
}

/// An in-memory broker with the same delivery semantics as the real ones:
/// leases, redelivery of un-acked messages, a delivery limit, a dead-letter queue.
#[derive(Debug, Clone)]
pub struct MemoryBroker {
    shared: Arc<Shared>,
}

impl MemoryBroker {
    /// `max_deliveries`: after this many deliveries a handed-back message is dead-lettered.
    pub fn new(max_deliveries: u32) -> Self {
        Self {
            shared: Arc::new(Shared {
                queues: Mutex::default(),
                arrived: Notify::new(),
                max_deliveries: max_deliveries.max(1),
            }),
        }
    }

    /// Messages published on the completed queue so far (for tests and the embedded CLI).
    pub fn completions(&self) -> Vec<Bytes> {
        self.shared.queues.lock().unwrap().completed.clone()
    }

    /// Messages moved to the dead-letter queue so far.
    pub fn dead_letters(&self) -> Vec<Bytes> {
        self.shared
            .queues
            .lock()
            .unwrap()
            .dead_letters
            .iter()
            .map(|m| m.body.clone())
            .collect()
    }
}

#[async_trait]
impl Broker for MemoryBroker {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn publish_job(&self, _job_id: &str, body: &[u8]) -> Result<(), BrokerError> {
        let message = Message {
            body: Bytes::copy_from_slice(body),
            deliveries: 0,
        };
        self.shared.queues.lock().unwrap().ready.push_back(message);
        self.shared.arrived.notify_one();
        Ok(())
    }

    async fn publish_completion(&self, _job_id: &str, body: &[u8]) -> Result<(), BrokerError> {
        self.shared
            .queues
            .lock()
            .unwrap()
            .completed
            .push(Bytes::copy_from_slice(body));
        Ok(())
    }

    async fn consumer(&self, prefetch: u16) -> Result<Box<dyn Consumer>, BrokerError> {
        Ok(Box::new(MemoryConsumer {
            shared: self.shared.clone(),
            prefetch: Arc::new(Semaphore::new(usize::from(prefetch.max(1)))),
        }))
    }

    async fn queue_depth(&self) -> Result<QueueDepth, BrokerError> {
        let queues = self.shared.queues.lock().unwrap();
        Ok(QueueDepth {
            ready: queues.ready.len() as u64,
            in_flight: Some(queues.in_flight.len() as u64),
        })
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
        let queues = self.shared.queues.lock().unwrap();
        Ok(queues
            .dead_letters
            .iter()
            .take(limit)
            .map(|m| DeadLetter::describe(m.id.to_string(), Some(m.reason.clone()), &m.body))
            .collect())
    }

    async fn depth(&self) -> Result<u64, BrokerError> {
        Ok(self.shared.queues.lock().unwrap().dead_letters.len() as u64)
    }

    async fn redrive(&self, max: usize) -> Result<u64, BrokerError> {
        let mut moved = 0;
        {
            let mut queues = self.shared.queues.lock().unwrap();
            while moved < max {
                let Some(message) = queues.dead_letters.pop_front() else {
                    break;
                };
                queues.ready.push_back(Message {
                    body: message.body,
                    deliveries: 0,
                });
                moved += 1;
            }
        }
        for _ in 0..moved {
            self.shared.arrived.notify_one();
        }
        Ok(moved as u64)
    }
}

struct MemoryConsumer {
    shared: Arc<Shared>,
    prefetch: Arc<Semaphore>,
}

#[async_trait]
impl Consumer for MemoryConsumer {
    async fn next(&mut self) -> Result<Delivery, BrokerError> {
        let permit = self
            .prefetch
            .clone()
            .acquire_owned()
            .await
            .expect("prefetch semaphore is never closed");
        loop {
            let arrived = self.shared.arrived.notified();
            {
                let mut queues = self.shared.queues.lock().unwrap();
                if let Some(mut message) = queues.ready.pop_front() {
                    message.deliveries += 1;
                    let tag = queues.next_tag;
                    queues.next_tag += 1;
                    let delivery_body = message.body.clone();
                    let attempt = message.deliveries;
                    queues.in_flight.insert(tag, message);
                    let settle = MemorySettle {
                        shared: self.shared.clone(),
                        tag,
                        _permit: permit,
                    };
                    return Ok(Delivery::new(delivery_body, attempt, Box::new(settle)));
                }
            }
            arrived.await;
        }
    }
}

struct MemorySettle {
    shared: Arc<Shared>,
    tag: u64,
    /// Held until the delivery is settled or dropped: this is the prefetch window.
    _permit: OwnedSemaphorePermit,
}

impl MemorySettle {
    fn requeue(&self) {
        let mut queues = self.shared.queues.lock().unwrap();
        if let Some(message) = queues.in_flight.remove(&self.tag) {
            if message.deliveries >= self.shared.max_deliveries {
                queues.dead_letter(message.body, EXCEEDED_MAX_DELIVERIES);
            } else {
                queues.ready.push_back(message);
                drop(queues);
                self.shared.arrived.notify_one();
            }
        }
    }
}

#[async_trait]
impl Settle for MemorySettle {
    async fn ack(&self) -> Result<(), BrokerError> {
        self.shared
            .queues
            .lock()
            .unwrap()
            .in_flight
            .remove(&self.tag);
        Ok(())
    }

    async fn hand_back(&self) -> Result<(), BrokerError> {
        self.requeue();
        Ok(())
    }

    async fn dead_letter(&self, reason: &str) -> Result<(), BrokerError> {
        let mut queues = self.shared.queues.lock().unwrap();
        if let Some(message) = queues.in_flight.remove(&self.tag) {
            queues.dead_letter(message.body, reason);
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
    use std::time::Duration;

    #[tokio::test]
    async fn publish_receive_ack() {
        let broker = MemoryBroker::new(3);
        broker.publish_job("a", b"one").await.unwrap();
        let mut consumer = broker.consumer(1).await.unwrap();
        let delivery = consumer.next().await.unwrap();
        assert_eq!(&delivery.body[..], b"one");
        assert_eq!(delivery.attempt, 1);
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
    async fn hand_back_redelivers_then_dead_letters() {
        let broker = MemoryBroker::new(2);
        broker.publish_job("a", b"x").await.unwrap();
        let mut consumer = broker.consumer(1).await.unwrap();
        let first = consumer.next().await.unwrap();
        first.hand_back().await.unwrap();
        let second = consumer.next().await.unwrap();
        assert_eq!(second.attempt, 2);
        second.hand_back().await.unwrap();
        assert_eq!(broker.dead_letters(), vec![Bytes::from_static(b"x")]);
        assert_eq!(broker.queue_depth().await.unwrap().ready, 0);
    }

    #[tokio::test]
    async fn dropped_delivery_is_redelivered() {
        let broker = MemoryBroker::new(5);
        broker.publish_job("a", b"x").await.unwrap();
        let mut consumer = broker.consumer(1).await.unwrap();
        drop(consumer.next().await.unwrap());
        let again = consumer.next().await.unwrap();
        assert_eq!(again.attempt, 2);
    }

    #[tokio::test]
    async fn dead_letters_keep_their_reason_and_redrive_as_first_deliveries() {
        let broker = MemoryBroker::new(1);
        broker
            .publish_job("a", br#"{"job_id":"job-a","spec":{}}"#)
            .await
            .unwrap();
        broker.publish_job("b", b"not json").await.unwrap();
        let mut consumer = broker.consumer(2).await.unwrap();
        consumer.next().await.unwrap().hand_back().await.unwrap();
        consumer
            .next()
            .await
            .unwrap()
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
            (None, "not json")
        );
        assert_eq!(dlq.list(1).await.unwrap().len(), 1);
        assert_eq!(dlq.redrive(1).await.unwrap(), 1);
        assert_eq!(dlq.depth().await.unwrap(), 1);
        let again = consumer.next().await.unwrap();
        assert_eq!(
            (again.attempt, &again.body[..]),
            (1, &br#"{"job_id":"job-a","spec":{}}"#[..])
        );
    }

    #[tokio::test]
    async fn prefetch_bounds_unsettled_deliveries() {
        let broker = MemoryBroker::new(5);
        for _ in 0..3 {
            broker.publish_job("a", b"x").await.unwrap();
        }
        let mut consumer = broker.consumer(2).await.unwrap();
        let _one = consumer.next().await.unwrap();
        let _two = consumer.next().await.unwrap();
        let third = tokio::time::timeout(Duration::from_millis(50), consumer.next()).await;
        assert!(
            third.is_err(),
            "a third delivery must wait for the prefetch window"
        );
    }
}
