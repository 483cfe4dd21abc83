//! The broker conformance suite (`zipfleet_tests::conformance`), run against
//! every broker: in-process, RabbitMQ and SQS (moto's server). The real
//! brokers' addresses come from the environment `infra/test.sh` sets; a
//! broker that cannot be reached fails its tests.

use std::sync::Arc;
use std::time::Duration;
use zipfleet_shared::store::file::FileStore;
use zipfleet_shared::store::ObjectStore;
use zipfleet_tests::conformance::{self, MemorySubject, ServiceSubject, Subject};

fn memory() -> Box<dyn Subject> {
    Box::new(MemorySubject::default())
}

fn rabbitmq() -> Box<dyn Subject> {
    Box::new(ServiceSubject {
        broker_url: zipfleet_tests::fleet::amqp_url(),
        visibility: Duration::ZERO,
    })
}

fn sqs() -> Box<dyn Subject> {
    zipfleet_tests::fleet::aws_test_environment();
    // A short visibility timeout, so that the checks run past it.
    Box::new(ServiceSubject {
        broker_url: "sqs://".into(),
        visibility: Duration::from_secs(2),
    })
}

/// The object store for the claim-check check: a directory (the S3 store has
/// its own round-trip tests).
fn store() -> (tempfile::TempDir, Arc<dyn ObjectStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::new(dir.path()).unwrap());
    (dir, store)
}

macro_rules! conformance_suite {
    ($broker:ident) => {
        mod $broker {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn publish_receive_ack() {
                conformance::publish_receive_ack(super::$broker().as_ref()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn hand_back_redelivers_with_higher_attempt() {
                conformance::hand_back_redelivers_with_higher_attempt(super::$broker().as_ref())
                    .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn vanished_consumer_loses_nothing() {
                conformance::vanished_consumer_loses_nothing(super::$broker().as_ref()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn delivery_limit_dead_letters() {
                conformance::delivery_limit_dead_letters(super::$broker().as_ref()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn malformed_message_goes_to_dead_letter_queue() {
                conformance::malformed_message_goes_to_dead_letter_queue(super::$broker().as_ref())
                    .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn completions_are_published() {
                conformance::completions_are_published(super::$broker().as_ref()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn queue_depth_counts_waiting_messages() {
                conformance::queue_depth_counts_waiting_messages(super::$broker().as_ref()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_held_message_is_not_delivered_twice() {
                conformance::a_held_message_is_not_delivered_twice(super::$broker().as_ref()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_consumers_share_without_duplicates() {
                conformance::concurrent_consumers_share_without_duplicates(
                    super::$broker().as_ref(),
                )
                .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_dropped_receive_loses_nothing() {
                conformance::a_dropped_receive_loses_nothing(super::$broker().as_ref()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn large_spec_travels_by_claim_check() {
                let (_dir, store) = store();
                conformance::large_spec_travels_by_claim_check(
                    super::$broker().as_ref(),
                    store.as_ref(),
                )
                .await;
            }
        }
    };
}

conformance_suite!(memory);
conformance_suite!(rabbitmq);
conformance_suite!(sqs);
