//! zipfleet's integration tests, in one binary so that the workspace links
//! it once: end-to-end runs on the embedded backends and on the real
//! services (RabbitMQ, SeaweedFS for S3, moto's SQS, Redis), the API, the
//! CLI, hostile input, the cache and the dataset report. They run in
//! parallel; each makes its own queues and key prefix. The tests that stop
//! shared services, or need the machine to themselves, are in
//! `tests/disruptive/`.
//!
//! A test that needs a service and cannot reach it fails; none skips.

mod api;
mod backends;
mod cache;
mod cli_memory;
mod cli_remote;
mod cli_report;
mod conformance;
mod dead_letters;
mod dispatch;
mod embedded;
mod erasure;
mod fairness;
mod fleet;
mod hostile;
mod logs;
mod report;
mod schema;
mod status_stores;
mod worker_endpoint;
