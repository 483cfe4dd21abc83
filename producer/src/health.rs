//! Liveness, readiness, metrics and the OpenAPI document.

use crate::startup::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::json;
use std::time::Duration;

/// The API's Prometheus metrics.
pub struct Metrics {
    registry: Registry,
    pub jobs_accepted: Counter,
    queue_ready: Gauge,
    queue_in_flight: Gauge,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("zipfleet");
        let jobs_accepted = Counter::default();
        registry.register("jobs_accepted", "Jobs accepted by this API process", jobs_accepted.clone());
        let queue_ready = Gauge::default();
        registry.register("queue_depth", "Jobs waiting on the jobs queue (scale workers on this)", queue_ready.clone());
        let queue_in_flight = Gauge::default();
        registry.register("queue_in_flight", "Jobs delivered and not yet acknowledged, where the broker reports it", queue_in_flight.clone());
        Self { registry, jobs_accepted, queue_ready, queue_in_flight }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// `GET /healthz`: the process is alive.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: broker, object store and status store all reachable.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let limit = Duration::from_secs(3);
    let backends = &state.backends;
    let (broker, store, status) = tokio::join!(
        tokio::time::timeout(limit, backends.broker.check()),
        tokio::time::timeout(limit, backends.store.check()),
        tokio::time::timeout(limit, backends.status.check()),
    );
    let verdict = |result: Result<Result<(), String>, tokio::time::error::Elapsed>| match result {
        Ok(Ok(())) => "ok".to_string(),
        Ok(Err(err)) => err,
        Err(_) => "timed out".to_string(),
    };
    let checks = [
        ("broker", verdict(broker.map(|r| r.map_err(|e| e.to_string())))),
        ("store", verdict(store.map(|r| r.map_err(|e| e.to_string())))),
        ("status", verdict(status.map(|r| r.map_err(|e| e.to_string())))),
    ];
    let ready = checks.iter().all(|(_, verdict)| verdict == "ok");
    let body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "checks": checks.iter().map(|(name, verdict)| (name.to_string(), json!(verdict))).collect::<serde_json::Map<_, _>>(),
    });
    let code = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(body)).into_response()
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    if let Ok(Ok(depth)) = tokio::time::timeout(Duration::from_secs(3), state.backends.broker.queue_depth()).await {
        state.metrics.queue_ready.set(i64::try_from(depth.ready).unwrap_or(i64::MAX));
        state.metrics.queue_in_flight.set(depth.in_flight.and_then(|n| i64::try_from(n).ok()).unwrap_or(0));
    }
    let mut text = String::new();
    if encode(&mut text, &state.metrics.registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}

/// `GET /openapi.json`
pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], include_str!("openapi.json")).into_response()
}
