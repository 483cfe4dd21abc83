//! The zipfleet HTTP API (producer): validates job specs, enqueues them
//! durably, serves status, cancels, and reports health and metrics.
//!
//! # Layout
//!
//! - [`startup`]: [`startup::Application`] — builds the router over connected
//!   backends, binds (port 0 allowed), runs until a shutdown future completes.
//! - [`jobs`]: the `/v1/jobs` routes (create, read, cancel, search).
//! - [`erasure`]: erasing a job or a project (`DELETE`).
//! - [`fleet`]: `/v1/fleet`, the fleet at a glance for operators.
//! - [`dead_letters`]: `/v1/dead-letters` (list, redrive all or one, delete one) for operators.
//! - [`openapi`]: the OpenAPI document, generated from the routes' types.
//! - [`errors`]: the one error type of every route and its JSON shape.
//! - [`auth`]: the bearer-token check on `/v1`.
//! - [`health`]: `/healthz`, `/readyz`, `/metrics`, `/openapi.json`.
//! - [`ui`]: the operator page at `/ui/`, its assets embedded in the binary.

pub mod auth;
pub mod dead_letters;
pub mod erasure;
pub mod errors;
pub mod fleet;
pub mod health;
pub mod jobs;
pub mod openapi;
pub mod startup;
pub mod ui;
