//! The API's errors, each mapped to one HTTP status and the contract's JSON
//! shape `{"error": {"code", "message", "details"}}` in one place. The body
//! types ([`ErrorBody`]) are the ones the OpenAPI document describes.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use zipfleet_shared::spec::{FieldError, SpecError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the job spec is invalid")]
    InvalidSpec(Vec<FieldError>),
    /// A request body other than a job spec is invalid.
    #[error("the request is invalid")]
    InvalidRequest(Vec<FieldError>),
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("no job {0:?}")]
    NotFound(String),
    #[error("no job of project {0:?} is known")]
    NoProject(String),
    #[error("no dead letter {0:?}")]
    NoDeadLetter(String),
    #[error("{0}")]
    Conflict(String),
    /// The id belongs to an erased job whose tombstone has not expired.
    #[error("job {0} was erased; its id cannot be used again yet")]
    Erased(String),
    /// The tenant has its quota of jobs queued; retry after `retry_after`.
    #[error("{message}")]
    TenantQuota {
        message: String,
        retry_after: std::time::Duration,
    },
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("{0} is unavailable; try again shortly")]
    Unavailable(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("no such route")]
    NoRoute,
}

/// Every error code the API answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the job spec breaks a rule; `details` names every offending field.
    InvalidSpec,
    /// 400: another request body is invalid; `details` names the field.
    InvalidRequest,
    /// 401: missing or wrong bearer token.
    Unauthorized,
    /// 404: no such job (or dead letter).
    NotFound,
    /// 409: the job exists with a different spec, or has already ended.
    Conflict,
    /// 409: the job id belongs to an erased job (until its tombstone expires).
    Erased,
    /// 429: the tenant has `ZIPFLEET_MAX_QUEUED_PER_TENANT` jobs queued; see `Retry-After`.
    TenantQuota,
    /// 413: the request body is too large.
    PayloadTooLarge,
    /// 503: the broker, object store or status store is unreachable; retry.
    Unavailable,
    /// 501: the configured broker cannot do this.
    Unsupported,
}

/// The body of every error answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// Readable summary (for a spec: every problem, `field: message; ...`).
    pub message: String,
    /// One entry per offending field (400 only; empty otherwise).
    pub details: Vec<FieldError>,
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, ErrorCode) {
        match self {
            Self::InvalidSpec(_) => (StatusCode::BAD_REQUEST, ErrorCode::InvalidSpec),
            Self::InvalidRequest(_) => (StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized),
            Self::NotFound(_) | Self::NoProject(_) | Self::NoDeadLetter(_) | Self::NoRoute => {
                (StatusCode::NOT_FOUND, ErrorCode::NotFound)
            }
            Self::Conflict(_) => (StatusCode::CONFLICT, ErrorCode::Conflict),
            Self::Erased(_) => (StatusCode::CONFLICT, ErrorCode::Erased),
            Self::TenantQuota { .. } => (StatusCode::TOO_MANY_REQUESTS, ErrorCode::TenantQuota),
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable),
            Self::Unsupported(_) => (StatusCode::NOT_IMPLEMENTED, ErrorCode::Unsupported),
        }
    }
}

impl From<SpecError> for ApiError {
    fn from(err: SpecError) -> Self {
        Self::InvalidSpec(err.problems)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let retry_after = match &self {
            Self::TenantQuota { retry_after, .. } => Some(retry_after.as_secs().max(1)),
            _ => None,
        };
        let (message, details) = match self {
            Self::InvalidSpec(problems) | Self::InvalidRequest(problems) => (
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
                problems,
            ),
            other => (other.to_string(), Vec::new()),
        };
        if status.is_server_error() {
            tracing::warn!(%message, "request failed");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message,
                details,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                "www-authenticate",
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
