//! `/v1/dead-letters`: the operators' view of the dead-letter queue, moving
//! its messages back to the jobs queue (after fixing what made them fail) —
//! all of them or one by its id — and deleting one.

use crate::errors::{ApiError, ErrorBody};
use crate::startup::AppState;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::Json;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};
use utoipa::ToSchema;
use zipfleet_shared::broker::{BrokerError, DeadLetter, DeadLetters};
use zipfleet_shared::spec::FieldError;

/// Most messages one listing shows.
pub const LIST_LIMIT: usize = 100;
/// Most messages one redrive moves.
pub const MAX_REDRIVE: u32 = 10_000;

/// `GET /v1/dead-letters`
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeadLetterList {
    /// Messages in the dead-letter queue (approximate on SQS).
    pub depth: u64,
    /// The first messages of the queue, at most 100; they stay in the queue.
    #[schema(max_items = 100)]
    pub messages: Vec<DeadLetter>,
}

/// Body of `POST /v1/dead-letters/redrive`; the body itself is optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedriveRequest {
    /// Move at most this many; absent or null: all of them, up to 10,000 a request.
    #[serde(default, deserialize_with = "integral")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 10000)]
    pub max: Option<u64>,
}

/// Any JSON number without a fraction (`5` or `5.0`, as JSON Schema's
/// `integer` has it), or null.
fn integral<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    if let Some(value) = number.as_u64() {
        return Ok(Some(value));
    }
    match number.as_f64() {
        Some(value) if value.fract() == 0.0 && (0.0..=1e15).contains(&value) => {
            Ok(Some(value as u64))
        }
        _ => Err(serde::de::Error::custom(format!(
            "must be a whole number between 1 and {MAX_REDRIVE}, not {number}"
        ))),
    }
}

/// Answer of `POST /v1/dead-letters/redrive`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RedriveResult {
    /// Messages now back on the jobs queue.
    pub moved: u64,
}

/// Answer of `DELETE /v1/dead-letters/{id}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeleteResult {
    /// Messages deleted (1).
    pub deleted: u64,
}

fn queue(state: &AppState) -> Result<&dyn DeadLetters, ApiError> {
    state.backends.broker.dead_letter_queue().ok_or_else(|| {
        ApiError::Unsupported(format!(
            "the {} broker cannot list or move dead letters",
            state.backends.broker.kind()
        ))
    })
}

fn broker_down(err: BrokerError) -> ApiError {
    warn!(%err, "dead-letter queue unavailable");
    ApiError::Unavailable("the dead-letter queue".into())
}

/// List dead letters
///
/// The first messages of the dead-letter queue (at most 100), with why each
/// was dead-lettered where the broker kept it; they stay in the queue.
#[utoipa::path(get, path = "/v1/dead-letters", operation_id = "listDeadLetters", tag = "dead letters",
    responses(
        (status = 200, description = "The dead-letter queue's depth and first messages.", body = DeadLetterList),
        (status = 401, description = "Missing or wrong bearer token.", body = ErrorBody),
        (status = 501, description = "The configured broker cannot list dead letters.", body = ErrorBody),
        (status = 503, description = "The broker is unreachable.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>) -> Result<Json<DeadLetterList>, ApiError> {
    let dlq = queue(&state)?;
    // Depth first: on RabbitMQ the listed messages are back in the count only a moment after.
    let depth = dlq.depth().await.map_err(broker_down)?;
    let messages = dlq.list(LIST_LIMIT).await.map_err(broker_down)?;
    Ok(Json(DeadLetterList {
        depth: depth.max(messages.len() as u64),
        messages,
    }))
}

/// Redrive dead letters
///
/// Moves messages from the dead-letter queue back to the jobs queue as first
/// deliveries, each confirmed on the jobs queue before it leaves the
/// dead-letter queue. The body is optional.
#[utoipa::path(post, path = "/v1/dead-letters/redrive", operation_id = "redriveDeadLetters", tag = "dead letters",
    request_body(content = RedriveRequest, content_type = "application/json", description = "Optional; without it every message moves (up to 10,000)."),
    responses(
        (status = 200, description = "How many messages moved.", body = RedriveResult),
        (status = 400, description = "The body is invalid; `details` names the field.", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token.", body = ErrorBody),
        (status = 413, description = "The body is larger than the API accepts.", body = ErrorBody),
        (status = 501, description = "The configured broker cannot move dead letters.", body = ErrorBody),
        (status = 503, description = "The broker is unreachable (messages moved until then stay moved).", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn redrive(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<RedriveResult>, ApiError> {
    let invalid = |field: &str, message: String| {
        ApiError::InvalidRequest(vec![FieldError {
            field: field.into(),
            message,
        }])
    };
    let body = body.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(state.settings.max_body_bytes)
        } else {
            invalid("$", rejection.body_text())
        }
    })?;
    let request = if body.is_empty() {
        RedriveRequest::default()
    } else {
        parse_request(&body).map_err(|(field, message)| invalid(&field, message))?
    };
    if let Some(max) = request.max {
        if !(1..=u64::from(MAX_REDRIVE)).contains(&max) {
            return Err(invalid(
                "max",
                format!("must be between 1 and {MAX_REDRIVE}, not {max}"),
            ));
        }
    }
    let dlq = queue(&state)?;
    // No more than were there at the start: a message that fails again at
    // once (a poison message) comes straight back and must not be moved round
    // and round.
    let present = dlq.depth().await.map_err(broker_down)?;
    let max = request.max.unwrap_or(u64::from(MAX_REDRIVE)).min(present);
    let moved = if max == 0 {
        0
    } else {
        dlq.redrive(max as usize).await.map_err(broker_down)?
    };
    info!(moved, "dead letters moved back to the jobs queue");
    Ok(Json(RedriveResult { moved }))
}

fn parse_request(body: &[u8]) -> Result<RedriveRequest, (String, String)> {
    // serde's derived structs also read an array (`[5]` as `{"max": 5}`).
    if serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|v| v.is_array()) {
        return Err(("$".into(), "must be an object, not an array".into()));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let request: RedriveRequest = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        (
            if path == "." || path.is_empty() {
                "$".to_string()
            } else {
                path
            },
            err.into_inner().to_string(),
        )
    })?;
    de.end().map_err(|err| ("$".to_string(), err.to_string()))?;
    Ok(request)
}

/// Redrive one dead letter
///
/// Moves the dead letter with this id (as `GET /v1/dead-letters` lists it)
/// back to the jobs queue as a first delivery, confirmed there before it
/// leaves the dead-letter queue. The other dead letters stay as they are.
#[utoipa::path(post, path = "/v1/dead-letters/{id}/redrive", operation_id = "redriveDeadLetter", tag = "dead letters",
    params(("id" = String, Path, description = "The dead letter's id, as listed.")),
    responses(
        (status = 200, description = "The message moved.", body = RedriveResult),
        (status = 401, description = "Missing or wrong bearer token.", body = ErrorBody),
        (status = 404, description = "No dead letter has this id.", body = ErrorBody),
        (status = 501, description = "The configured broker cannot move dead letters.", body = ErrorBody),
        (status = 503, description = "The broker is unreachable.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn redrive_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RedriveResult>, ApiError> {
    if !queue(&state)?.redrive_one(&id).await.map_err(broker_down)? {
        return Err(ApiError::NoDeadLetter(id));
    }
    info!(id, "a dead letter moved back to the jobs queue");
    Ok(Json(RedriveResult { moved: 1 }))
}

/// Delete one dead letter
///
/// Deletes the dead letter with this id (as `GET /v1/dead-letters` lists
/// it) for good. The other dead letters stay as they are.
#[utoipa::path(delete, path = "/v1/dead-letters/{id}", operation_id = "deleteDeadLetter", tag = "dead letters",
    params(("id" = String, Path, description = "The dead letter's id, as listed.")),
    responses(
        (status = 200, description = "The message is deleted.", body = DeleteResult),
        (status = 401, description = "Missing or wrong bearer token.", body = ErrorBody),
        (status = 404, description = "No dead letter has this id.", body = ErrorBody),
        (status = 501, description = "The configured broker cannot delete dead letters.", body = ErrorBody),
        (status = 503, description = "The broker is unreachable.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn delete_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DeleteResult>, ApiError> {
    if !queue(&state)?.delete_one(&id).await.map_err(broker_down)? {
        return Err(ApiError::NoDeadLetter(id));
    }
    info!(id, "a dead letter deleted");
    Ok(Json(DeleteResult { deleted: 1 }))
}
