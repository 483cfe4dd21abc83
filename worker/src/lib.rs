//! The zipfleet worker: pulls jobs from the broker, fetches, decodes, resizes
//! and zips their images, uploads the zip, and reports status and completion.
//!
//! # Layout
//!
//! - [`consumer`]: the worker loop — take a delivery (one, with a free job
//!   slot), run its job, write the final status, publish the completion,
//!   acknowledge; graceful shutdown.
//! - [`dispatch`]: which lane a free slot takes its next job from
//!   ([`dispatch::LaneOrder`], [`dispatch::Sweep`]) and how often an idle
//!   worker looks.
//! - [`job`]: one job end to end — images concurrently through fetch and
//!   render, entries into the zip, manifest, upload.
//! - [`fetch`]: image bytes from the web (behind the SSRF guard in
//!   [`fetch::guard`]) or the object store, spooled to disk.
//! - [`cache`]: work reused across jobs (rendered images, downloads, known
//!   failures, object contents) under `PREFIX/cache/`, and in-flight coalescing.
//! - [`imaging_contract`]: the job spec's output and the contract's error
//!   codes on the `zipfleet-imaging` pipeline's side of the seam.
//! - [`zipper`]: the zip spooled to a temporary file, and the manifest.
//! - [`report`]: the dataset report (label counts, copies, small and blank
//!   pictures) from the images' signatures.
//! - [`budget`]: the memory budget images reserve from, and the CPU slots.
//! - [`app`]: building a worker from configuration.
//! - [`embedded`]: one worker over in-process backends (`zipfleet run`, tests).
//! - [`health`]: the job loop's heartbeat and the backends' last readiness
//!   check; `endpoint` (feature `fleet`): the worker's `/healthz`, `/readyz`
//!   and `/metrics` over them; [`metrics`]: its counters.
//! - [`ecs`]: ECS scale-in protection while jobs run.
//! - [`allocator`]: jemalloc's settings for every decoding process.
//!
//! # Features
//!
//! `fleet` (default): what the `zipfleet-worker` binary needs besides the job
//! pipeline — the HTTP endpoint (axum) and the real backends (RabbitMQ, SQS,
//! S3, Redis). Without it the library still runs jobs in process over the
//! in-memory and `file://` backends: that is how the `zipfleet` CLI's `run`
//! uses it.

pub mod allocator;
pub mod app;
pub mod budget;
pub mod cache;
pub mod consumer;
pub mod dispatch;
pub mod ecs;
pub mod embedded;
#[cfg(feature = "fleet")]
pub mod endpoint;
pub mod fetch;
pub mod health;
pub mod imaging_contract;
pub mod job;
pub mod metrics;
pub mod report;
pub mod zipper;
