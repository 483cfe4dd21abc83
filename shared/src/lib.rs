//! Types both sides of zipfleet share, and the small traits every backend
//! implements.
//!
//! # Layout
//!
//! - [`spec`]: the job spec a web backend posts (`JobSpec`, the wire shape),
//!   its defaults, and its validation into a `Job` that cannot be invalid
//!   (every problem reported with the field it concerns).
//! - [`cache_keys`]: where the fleet's cache keeps each kind of entry, for
//!   the worker that writes them and the erasure that finds them.
//! - [`status`]: the status document (also the completion message) and job states.
//! - [`codes`]: per-image error codes and job-level error codes.
//! - [`names`]: turning labels and ids into safe zip entry names.
//! - [`report`]: the dataset report's shape (label counts, warnings).
//! - [`reachability`]: the backends check behind every `/readyz`.
//! - [`retry`]: backoff with jitter and once-per-outage logging for vanished backends.
//! - [`message`]: the job message carried by the broker (inline spec or claim check).
//! - [`schema`]: JSON Schemas generated from these types (OpenAPI components, `shared/schema/`).
//! - [`secret`]: tokens and credential-carrying URLs that `Debug` cannot print.
//! - [`config`]: every setting, as environment variables that are also CLI flags.
//! - [`broker`], [`store`], [`status_store`]: the backend traits, with the
//!   in-process implementations (in-memory queue, local directory, in-memory status);
//!   [`backends::Backends`]: the three of one process.
//! - [`erase`]: erasing a job or a project and everything derived from its
//!   pictures — the one way zipfleet forgets on request.
//! - [`cache_keys`]: where the fleet-wide cache keeps each kind of entry.
//! - [`accept`]: accepting a job (status, publish, mark published) — the one
//!   way a job enters zipfleet, for the API, `zipfleet run` and the tests.
//!
//! This crate knows nothing of HTTP, image formats or any particular service.

pub mod accept;
pub mod backends;
pub mod broker;
pub mod cache_keys;
pub mod codes;
pub mod config;
pub mod erase;
pub mod message;
pub mod names;
pub mod reachability;
pub mod report;
pub mod retry;
pub mod schema;
pub mod secret;
pub mod spec;
pub mod status;
pub mod status_store;
pub mod store;

pub use backends::Backends;
pub use codes::{ImageErrorCode, JobErrorCode, JobFailureCode};
pub use spec::{
    Fit, Image, ImageSpec, Job, JobSpec, OnImageError, OutputFormat, OutputSpec, Source, SpecError,
    Tenant,
};
pub use status::{JobState, JobStatus, Progress};
