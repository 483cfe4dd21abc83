//! `DELETE /v1/jobs/{id}` and `DELETE /v1/projects/{project_id}`: forgetting
//! a job, or every job of a project, on request (contract, "Erasure and
//! retention"). The work is `zipfleet_shared::erase`; here, the routes.

use crate::errors::{ApiError, ErrorBody};
use crate::startup::AppState;
use axum::extract::{Path, State};
use axum::Json;
use tracing::{info, warn};
use zipfleet_shared::erase::{erase_job as erase_one, erase_project as erase_all, EraseError};
use zipfleet_shared::erase::{JobErased, ProjectErased};
use zipfleet_shared::spec::{is_valid_job_id, MAX_TEXT_LEN};

fn erase_failed(err: EraseError) -> ApiError {
    warn!(%err, "an erasure could not finish; it can be asked for again");
    match err {
        EraseError::Status(_) => ApiError::Unavailable("the status store".into()),
        EraseError::Store(_) => ApiError::Unavailable("the object store".into()),
        EraseError::DeadLetters(_) => ApiError::Unavailable("the dead-letter queue".into()),
    }
}

/// Erase a job
///
/// Cancels the job if it is queued or running, then deletes its zip (every
/// version, unfinished uploads aborted), its claim-checked spec, its status
/// and idempotency records, its dead letters and every cache entry derived
/// from its pictures (renders for any output settings, source bytes, URL and
/// object records), even where other jobs share them. Afterwards `GET` and
/// `DELETE` answer 404, and the id cannot be posted again until
/// `ZIPFLEET_ERASURE_TOMBSTONE_TTL` has passed. A 503 leaves the erasure
/// unfinished: ask again.
#[utoipa::path(delete, path = "/v1/jobs/{id}", operation_id = "eraseJob", tag = "jobs",
    params(("id" = String, Path, description = "The job id (`[A-Za-z0-9_-]{1,64}`; any other id is unknown: 404).")),
    responses(
        (status = 200, description = "Erased: what was removed, by kind.", body = JobErased),
        (status = 401, description = "Missing or wrong bearer token.", body = ErrorBody),
        (status = 404, description = "No such job (or it is erased already).", body = ErrorBody),
        (status = 503, description = "A backend is unreachable; the erasure is unfinished, ask again.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn erase_job(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
) -> Result<Json<JobErased>, ApiError> {
    if !is_valid_job_id(&job_id) {
        return Err(ApiError::NotFound(job_id));
    }
    let erased = erase_one(&state.backends, &job_id, state.settings.tombstone_ttl)
        .await
        .map_err(erase_failed)?
        .ok_or_else(|| ApiError::NotFound(job_id.clone()))?;
    info!(
        job_id,
        zips = erased.zips,
        cache_entries = erased.cache_entries,
        "job erased"
    );
    Ok(Json(JobErased { job_id, erased }))
}

/// Erase a project
///
/// Erases every job of the project as `DELETE /v1/jobs/{id}` does, with one
/// receipt for all of them.
#[utoipa::path(delete, path = "/v1/projects/{project_id}", operation_id = "eraseProject", tag = "jobs",
    params(("project_id" = String, Path, description = "The project id the jobs were posted with.")),
    responses(
        (status = 200, description = "Erased: every job of the project, and what was removed, by kind.", body = ProjectErased),
        (status = 401, description = "Missing or wrong bearer token.", body = ErrorBody),
        (status = 404, description = "The project has no job (left).", body = ErrorBody),
        (status = 503, description = "A backend is unreachable; the erasure is unfinished, ask again.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn erase_project(
    State(state): State<AppState>,
    Path(project_id): Path<String>,
) -> Result<Json<ProjectErased>, ApiError> {
    if project_id.is_empty() || project_id.chars().count() > MAX_TEXT_LEN {
        return Err(ApiError::NoProject(project_id));
    }
    let receipt = erase_all(&state.backends, &project_id, state.settings.tombstone_ttl)
        .await
        .map_err(erase_failed)?
        .ok_or_else(|| ApiError::NoProject(project_id.clone()))?;
    info!(
        jobs = receipt.job_ids.len(),
        zips = receipt.erased.zips,
        cache_entries = receipt.erased.cache_entries,
        "project erased"
    );
    Ok(Json(receipt))
}
