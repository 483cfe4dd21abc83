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
//! - [`job`]: one job end to end — images concurrently, entries into the
//!   zip, manifest, upload.
//! - `book`: a job's bookkeeping — entry names, manifest lines, counts,
//!   report facts.
//! - `image`: one image's work — fetch, probe, reserve memory, render —
//!   handed to the cache when it is on.
//! - `outcome`: how work stops short — an image `Skip`ped, a job
//!   `Interrupted` — in one vocabulary.
//! - `fetch`: image bytes from the web (behind the SSRF guard in
//!   `fetch::guard`) or the object store, spooled to disk.
//! - `keyed`: per-key semaphores that exist only while used — per-host
//!   download slots and the cache's in-flight key locks.
//! - [`cache`]: work reused across jobs (rendered images, downloads, site
//!   refusals, object contents) under `PREFIX/cache/`, as a layer around an
//!   image's work (`Cache::image`), with in-flight coalescing.
//! - [`erasure`]: the tombstone check every cache write makes (no resurrection).
//! - `imaging_contract`: the job spec's output and the contract's error
//!   codes on the `zipfleet-imaging` pipeline's side of the seam.
//! - `zipper`: the zip spooled to a temporary file, and the manifest.
//! - `dataset_report`: the dataset report (label counts, copies, small and
//!   blank pictures) from the images' signatures.
//! - [`budget`]: the memory budget images reserve from, and the CPU slots.
//! - [`app`]: building a worker from configuration.
//! - [`embedded`]: one worker over in-process backends (`zipfleet run`, tests).
//! - `health`: the job loop's heartbeat and the backends' last readiness
//!   check; `endpoint` (feature `fleet`): the worker's `/healthz`, `/readyz`
//!   and `/metrics` over them; [`metrics`]: its counters.
//! - [`ecs`]: ECS scale-in protection while jobs run.
//! - [`allocator`]: jemalloc's settings for every decoding process.
//!
//! Only what the `zipfleet-worker` binary, the CLI and the tests use is
//! `pub` (`unreachable_pub` is on), so the compiler reports dead code.
//!
//! # Features
//!
//! `fleet` (default): what the `zipfleet-worker` binary needs besides the job
//! pipeline — the HTTP endpoint (axum) and the real backends (RabbitMQ, SQS,
//! S3, Redis). Without it the library still runs jobs in process over the
//! in-memory and `file://` backends: that is how the `zipfleet` CLI's `run`
//! uses it.

#![warn(unreachable_pub)]

pub mod allocator;
pub mod app;
mod book;
pub mod budget;
pub mod cache;
pub mod consumer;
mod dataset_report;
pub mod dispatch;
pub mod ecs;
pub mod embedded;
#[cfg(feature = "fleet")]
pub mod endpoint;
pub mod erasure;
mod fetch;
mod health;
mod image;
mod imaging_contract;
pub mod job;
mod keyed;
pub mod metrics;
mod outcome;
mod registry;
mod zipper;
