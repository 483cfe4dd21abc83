//! The API's errors, each mapped to one HTTP status and the contract's JSON
//! shape `{"error": {"code", "message", "details"}}` in one place.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use zipfleet_shared::spec::{FieldError, SpecError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the job spec is invalid")]
    InvalidSpec(Vec<FieldError>),
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("no job {0:?}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("{0} is unavailable; try again shortly")]
    Unavailable(String),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::InvalidSpec(_) => (StatusCode::BAD_REQUEST, "invalid_spec"),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
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
        let details: Vec<serde_json::Value> = match &self {
            Self::InvalidSpec(problems) => problems.iter().map(|p| json!({"field": p.field, "message": p.message})).collect(),
            _ => Vec::new(),
        };
        let message = match &self {
            Self::InvalidSpec(problems) => problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
            other => other.to_string(),
        };
        if status.is_server_error() {
            tracing::warn!(%message, "request failed");
        }
        let mut response = (status, Json(json!({"error": {"code": code, "message": message, "details": details}}))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert("www-authenticate", axum::http::HeaderValue::from_static("Bearer"));
        }
        response
    }
}
