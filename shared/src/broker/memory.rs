//! The in-process broker: the embedded default (`memory://`) and the
//! reference the broker conformance suite holds the real brokers to.

use super::{Broker, BrokerError, Consumer, Delivery, QueueDepth, Settle};
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
    dead_letters: Vec<Bytes>,
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
            shared: Arc::new(Shared { queues: Mutex::default(), arrived: Notify::new(), max_deliveries: max_deliveries.max(1) }),
        }
    }

    /// Messages published on the completed queue so far (for tests and the embedded CLI).
    pub fn completions(&self) -> Vec<Bytes> {
        self.shared.queues.lock().unwrap().completed.clone()
    }

    /// Messages moved to the dead-letter queue so far.
    pub fn dead_letters(&self) -> Vec<Bytes> {
        self.shared.queues.lock().unwrap().dead_letters.clone()
    }
}

#[async_trait]
impl Broker for MemoryBroker {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn publish_job(&self, _job_id: &str, body: &[u8]) -> Result<(), BrokerError> {
        let message = Message { body: Bytes::copy_from_slice(body), deliveries: 0 };
        self.shared.queues.lock().unwrap().ready.push_back(message);
        self.shared.arrived.notify_one();
        Ok(())
    }

    async fn publish_completion(&self, _job_id: &str, body: &[u8]) -> Result<(), BrokerError> {
        self.shared.queues.lock().unwrap().completed.push(Bytes::copy_from_slice(body));
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
        Ok(QueueDepth { ready: queues.ready.len() as u64, in_flight: Some(queues.in_flight.len() as u64) })
    }

    async fn check(&self) -> Result<(), BrokerError> {
        Ok(())
    }
}

struct MemoryConsumer {
    shared: Arc<Shared>,
    prefetch: Arc<Semaphore>,
}

#[async_trait]
impl Consumer for MemoryConsumer {
    async fn next(&mut self) -> Result<Delivery, BrokerError> {
        let permit = self.prefetch.clone().acquire_owned().await.expect("prefetch semaphore is never closed");
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
                    let settle = MemorySettle { shared: self.shared.clone(), tag, _permit: permit };
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
                queues.dead_letters.push(message.body);
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
        self.shared.queues.lock().unwrap().in_flight.remove(&self.tag);
        Ok(())
    }

    async fn hand_back(&self) -> Result<(), BrokerError> {
        self.requeue();
        Ok(())
    }

    async fn dead_letter(&self, _reason: &str) -> Result<(), BrokerError> {
        let mut queues = self.shared.queues.lock().unwrap();
        if let Some(message) = queues.in_flight.remove(&self.tag) {
            queues.dead_letters.push(message.body);
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
        assert_eq!(broker.queue_depth().await.unwrap(), QueueDepth { ready: 0, in_flight: Some(1) });
        delivery.ack().await.unwrap();
        assert_eq!(broker.queue_depth().await.unwrap(), QueueDepth { ready: 0, in_flight: Some(0) });
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
    async fn prefetch_bounds_unsettled_deliveries() {
        let broker = MemoryBroker::new(5);
        for _ in 0..3 {
            broker.publish_job("a", b"x").await.unwrap();
        }
        let mut consumer = broker.consumer(2).await.unwrap();
        let _one = consumer.next().await.unwrap();
        let _two = consumer.next().await.unwrap();
        let third = tokio::time::timeout(Duration::from_millis(50), consumer.next()).await;
        assert!(third.is_err(), "a third delivery must wait for the prefetch window");
    }
}
