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

fn rabbitmq_subject() -> ServiceSubject {
    ServiceSubject::new(zipfleet_tests::fleet::amqp_url(), Duration::ZERO)
}

fn rabbitmq() -> Box<dyn Subject> {
    Box::new(rabbitmq_subject())
}

fn sqs_subject() -> ServiceSubject {
    zipfleet_tests::fleet::aws_test_environment();
    // A short visibility timeout, so that the checks run past it.
    ServiceSubject::new("sqs://", Duration::from_secs(2))
}

fn sqs() -> Box<dyn Subject> {
    Box::new(sqs_subject())
}

/// The object store for the claim-check check: a directory (the S3 store has
/// its own round-trip tests).
fn store() -> (tempfile::TempDir, Arc<dyn ObjectStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::new(dir.path()).unwrap());
    (dir, store)
}

macro_rules! conformance_suite {
    ($broker:ident: $($check:ident),* $(,)?) => {
        mod $broker {
            use super::*;

            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    conformance::$check(super::$broker().as_ref()).await;
                }
            )*

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

macro_rules! every_broker {
    ($($broker:ident),*) => {
        $(
            conformance_suite!($broker:
                publish_take_ack,
                a_lane_gives_only_its_own_messages,
                take_takes_exactly_one,
                an_empty_lane_gives_none_promptly,
                hand_back_redelivers_on_the_same_lane,
                vanished_taker_loses_nothing,
                delivery_limit_dead_letters_from_any_lane,
                malformed_message_goes_to_dead_letter_queue,
                completions_are_published,
                lane_depths_count_waiting_messages,
                a_held_message_is_not_delivered_twice,
                concurrent_takers_share_without_duplicates,
                dead_letters_by_id,
                dead_letters_of_a_job_are_deleted,
            );
        )*
    };
}

every_broker!(memory, rabbitmq, sqs);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_missing_lanes_are_named() {
    conformance::missing_lanes_are_named(&rabbitmq_subject()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_missing_lanes_are_named() {
    conformance::missing_lanes_are_named(&sqs_subject()).await;
}
