//! `/v1/jobs`: create (validate → `queued` status → confirmed publish → 202),
//! read (with a fresh download URL and, while queued, its place in line),
//! cancel, and search. Erasure is in [`crate::erasure`].

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
use zipfleet_shared::status_store::search::{Cursor, DEFAULT_PAGE, MAX_PAGE};
use zipfleet_shared::status_store::{CancelOutcome, JobPage, JobQuery};

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
                ("CancelJob" = (operation_id = "cancelJob", parameters(("id" = "$response.body#/job_id")), description = "Cancel the job.")),
                ("EraseJob" = (operation_id = "eraseJob", parameters(("id" = "$response.body#/job_id")), description = "Erase the job and what was derived from its pictures."))
            )),
        (status = 400, description = "The spec breaks a rule; `details` names every offending field.", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token.", body = ErrorBody),
        (status = 409, description = "A job with this `job_id` exists with a different spec (`conflict`), or was erased and its id cannot be used yet (`erased`).", body = ErrorBody),
        (status = 413, description = "The body is larger than the API accepts.", body = ErrorBody),
        (status = 429, description = "The job's tenant has `ZIPFLEET_MAX_QUEUED_PER_TENANT` jobs queued (`tenant_quota`); retry after `Retry-After` seconds. Other tenants are not affected.", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before posting again."))),
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
    let accepted = accept_job(&state.backends, spec, &state.settings.accept)
        .await
        .map_err(|err| match err {
            AcceptError::Conflict(_) => ApiError::Conflict(err.to_string()),
            AcceptError::Erased(job_id) => ApiError::Erased(job_id),
            AcceptError::OverQuota { retry_after, .. } => ApiError::TenantQuota {
                message: err.to_string(),
                retry_after,
            },
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
    if status.state == JobState::Queued {
        // Where it stands is advisory: a ledger that cannot answer leaves it out.
        match state.backends.status.place_in_line(&job_id).await {
            Ok(place) => status.queue = place,
            Err(err) => warn!(%err, job_id, "could not tell a queued job's place in line"),
        }
    }
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
/// image (202); an ended one cannot be cancelled (409). The status stays
/// readable (`cancelled`); to forget the job, erase it (`DELETE`).
#[utoipa::path(post, path = "/v1/jobs/{id}/cancel", operation_id = "cancelJob", tag = "jobs",
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

/// Query of `GET /v1/jobs`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// Exactly this job.
    pub job_id: Option<String>,
    /// Jobs of this project.
    pub project_id: Option<String>,
    /// Jobs of this tenant.
    pub tenant: Option<String>,
    /// Jobs in this state.
    pub state: Option<JobState>,
    /// Jobs per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Find jobs
///
/// Jobs matching every filter given, newest first (by creation; with a
/// `state` filter alone, by when they entered it), a page at a time. Served
/// from indexes kept as jobs change; one page examines a bounded number of
/// jobs, so a page may hold fewer than `limit` and still have a `next_cursor`.
#[utoipa::path(get, path = "/v1/jobs", operation_id = "searchJobs", tag = "jobs",
    params(SearchParams),
    responses(
        (status = 200, description = "A page of jobs.", body = JobPage),
        (status = 400, description = "A parameter is invalid; `details` names it.", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token.", body = ErrorBody),
        (status = 503, description = "The status store is unreachable.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn search_jobs(
    State(state): State<AppState>,
    query: Result<axum::extract::Query<SearchParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<JobPage>, ApiError> {
    let invalid = |field: &str, message: String| {
        ApiError::InvalidRequest(vec![FieldError {
            field: field.into(),
            message,
        }])
    };
    let axum::extract::Query(mut params) = query.map_err(|err| invalid("$", err.body_text()))?;
    // An empty field of a search form is no filter.
    params.job_id = params.job_id.filter(|id| !id.is_empty());
    let limit = params.limit.unwrap_or(DEFAULT_PAGE as u32);
    if !(1..=MAX_PAGE as u32).contains(&limit) {
        return Err(invalid(
            "limit",
            format!("must be between 1 and {MAX_PAGE}, not {limit}"),
        ));
    }
    let cursor = match params.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(text) => Some(
            Cursor::decode(text)
                .ok_or_else(|| invalid("cursor", "is not a cursor this API handed out".into()))?,
        ),
    };
    // An id outside the pattern names no job: an empty page.
    if params
        .job_id
        .as_deref()
        .is_some_and(|id| !is_valid_job_id(id))
    {
        return Ok(Json(JobPage {
            jobs: Vec::new(),
            next_cursor: None,
        }));
    }
    let query = JobQuery {
        job_id: params.job_id,
        project_id: params.project_id.filter(|p| !p.is_empty()),
        tenant: params.tenant.filter(|t| !t.is_empty()),
        state: params.state,
        limit: limit as usize,
        cursor,
    };
    let page = state
        .backends
        .status
        .search(&query)
        .await
        .map_err(status_store_down)?;
    Ok(Json(page))
}
