//! `/v1/jobs`: create (validate → `queued` status → confirmed publish → 202),
//! read (with a fresh download URL), cancel.

use crate::errors::{ApiError, ErrorBody};
use crate::startup::AppState;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};
use utoipa::ToSchema;
use zipfleet_shared::accept::{accept_job, AcceptError};
use zipfleet_shared::spec::{is_valid_job_id, FieldError, JobSpec, SpecLimits};
use zipfleet_shared::status::{JobState, JobStatus};
use zipfleet_shared::status_store::CancelOutcome;

/// The answer to `POST /v1/jobs`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobAccepted {
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub job_id: String,
    /// `queued` for a new job; a re-post of an existing job answers its current state.
    pub state: JobState,
    /// Where the status document is: `/v1/jobs/{job_id}`.
    pub status_url: String,
}

fn accepted_response(status: &JobStatus) -> Response {
    let body = JobAccepted {
        job_id: status.job_id.clone(),
        state: status.state,
        status_url: format!("/v1/jobs/{}", status.job_id),
    };
    (StatusCode::ACCEPTED, Json(body)).into_response()
}

fn status_store_down(err: impl std::fmt::Display) -> ApiError {
    warn!(%err, "status store unavailable");
    ApiError::Unavailable("the status store".into())
}

/// Submit a job
///
/// Validates the spec, records it `queued` and answers `202` only once the
/// broker confirmed the job message. Re-posting the same `job_id` with the
/// same spec returns the existing job; with a different spec, `409`.
#[utoipa::path(post, path = "/v1/jobs", operation_id = "createJob", tag = "jobs",
    request_body(content = JobSpec, content_type = "application/json"),
    responses(
        (status = 202, description = "The job is durably enqueued (or already was, with this spec).", body = JobAccepted,
            links(
                ("GetJob" = (operation_id = "getJob", parameters(("id" = "$response.body#/job_id")), description = "The job's status document.")),
                ("CancelJob" = (operation_id = "cancelJob", parameters(("id" = "$response.body#/job_id")), description = "Cancel the job."))
            )),
        (status = 400, description = "The spec breaks a rule; `details` names every offending field.", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token.", body = ErrorBody),
        (status = 409, description = "A job with this `job_id` exists with a different spec.", body = ErrorBody),
        (status = 413, description = "The body is larger than the API accepts.", body = ErrorBody),
        (status = 503, description = "The broker, object store or status store is unreachable; retry with the same `job_id`.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn create_job(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(state.settings.max_body_bytes)
        } else {
            ApiError::InvalidSpec(vec![FieldError {
                field: "$".into(),
                message: rejection.body_text(),
            }])
        }
    })?;
    let spec = parse_spec(&body, &state.settings.spec_limits)?;
    let images = spec.images.len();
    let accepted = accept_job(&state.backends, spec, state.settings.claim_check_bytes)
        .await
        .map_err(|err| match err {
            AcceptError::Conflict(_) => ApiError::Conflict(err.to_string()),
            AcceptError::StatusStore(err) => status_store_down(err),
            AcceptError::SpecStore(err) => {
                warn!(%err, "could not store a large spec");
                ApiError::Unavailable("the object store".into())
            }
            AcceptError::Broker(err) => {
                warn!(%err, "could not enqueue a job");
                ApiError::Unavailable("the job queue".into())
            }
        })?;
    if accepted.created {
        state
            .metrics
            .jobs_accepted
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        info!(job_id = accepted.status.job_id, images, "job accepted");
    }
    Ok(accepted_response(&accepted.status))
}

/// The spec in `body`, parsed and validated by the spec's own rules.
fn parse_spec(body: &[u8], limits: &SpecLimits) -> Result<JobSpec, ApiError> {
    Ok(JobSpec::parse(body, limits)?)
}

fn check_id(job_id: &str) -> Result<(), ApiError> {
    if is_valid_job_id(job_id) {
        Ok(())
    } else {
        Err(ApiError::NotFound(job_id.to_string()))
    }
}

/// Read a job's status
///
/// The status document; a succeeded job's `result.url` is a fresh time-limited download URL.
#[utoipa::path(get, path = "/v1/jobs/{id}", operation_id = "getJob", tag = "jobs",
    params(("id" = String, Path, description = "The job id (`[A-Za-z0-9_-]{1,64}`; any other id is unknown: 404).")),
    responses(
        (status = 200, description = "The status document.", body = JobStatus),
        (status = 401, description = "Missing or wrong bearer token.", body = ErrorBody),
        (status = 404, description = "No such job.", body = ErrorBody),
        (status = 503, description = "The status store is unreachable.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_job(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
) -> Result<Json<JobStatus>, ApiError> {
    check_id(&job_id)?;
    let mut status = state
        .backends
        .status
        .get(&job_id)
        .await
        .map_err(status_store_down)?
        .ok_or_else(|| ApiError::NotFound(job_id.clone()))?;
    if let Some(result) = status.result.as_mut() {
        match state
            .backends
            .store
            .download_url(&result.location.key, state.settings.download_url_expiry)
            .await
        {
            Ok(url) => result.url = url,
            Err(err) => warn!(%err, job_id, "could not refresh the download URL"),
        }
    }
    Ok(Json(status))
}

/// Cancel a job
///
/// A queued job is cancelled at once (200); a running one stops at its next
/// image (202); an ended one cannot be cancelled (409).
#[utoipa::path(delete, path = "/v1/jobs/{id}", operation_id = "cancelJob", tag = "jobs",
    params(("id" = String, Path, description = "The job id (`[A-Za-z0-9_-]{1,64}`; any other id is unknown: 404).")),
    responses(
        (status = 200, description = "The queued job is cancelled: its status document.", body = JobStatus),
        (status = 202, description = "The running job was asked to stop: its status document.", body = JobStatus),
        (status = 401, description = "Missing or wrong bearer token.", body = ErrorBody),
        (status = 404, description = "No such job.", body = ErrorBody),
        (status = 409, description = "The job has already ended.", body = ErrorBody),
        (status = 503, description = "The status store is unreachable.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn cancel_job(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
) -> Result<Response, ApiError> {
    check_id(&job_id)?;
    match state
        .backends
        .status
        .cancel(&job_id)
        .await
        .map_err(status_store_down)?
    {
        CancelOutcome::Cancelled(status) => {
            info!(job_id, "queued job cancelled");
            Ok((StatusCode::OK, Json(status)).into_response())
        }
        CancelOutcome::Requested(status) => {
            info!(job_id, "running job asked to stop");
            Ok((StatusCode::ACCEPTED, Json(status)).into_response())
        }
        CancelOutcome::AlreadyFinal(status) => Err(ApiError::Conflict(format!(
            "job {job_id} already ended ({})",
            status.state.as_str()
        ))),
        CancelOutcome::NotFound => Err(ApiError::NotFound(job_id)),
    }
}
