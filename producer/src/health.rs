//! Liveness, readiness, metrics and the OpenAPI document.

use crate::startup::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use utoipa::ToSchema;
use zipfleet_shared::reachability::{all_ok, check_backends};
use zipfleet_shared::status_store::{Histogram, IMAGE_SECONDS_BOUNDS, JOB_SECONDS_BOUNDS};

/// Counters of this API process; the fleet-wide figures come from the
/// status store and the broker at scrape time.
#[derive(Debug, Default)]
pub struct Metrics {
    pub jobs_accepted: AtomicU64,
}

/// `GET /healthz`'s answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: HealthStatus,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Ok,
}

/// `GET /readyz`'s answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    /// `ready` when every check is `ok`.
    pub status: ReadyStatus,
    /// Per backend (`broker`, `store`, `status`): `ok`, or what went wrong.
    pub checks: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum ReadyStatus {
    #[serde(rename = "ready")]
    Ready,
    #[serde(rename = "not ready")]
    NotReady,
}

/// Liveness
///
/// The process is alive. No authentication.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "operations",
    responses((status = 200, description = "Alive.", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: HealthStatus::Ok,
    })
}

/// Readiness
///
/// The broker, the object store and the status store are all reachable. No authentication.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready.", body = Readiness),
        (status = 503, description = "A backend is unreachable; `checks` says which.", body = Readiness),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let backends = &state.backends;
    let checks = check_backends(
        backends.broker.as_ref(),
        backends.store.as_ref(),
        backends.status.as_ref(),
    )
    .await;
    let ready = all_ok(&checks);
    let checks =
        checks.map(|(name, verdict)| (name, verdict.err().unwrap_or_else(|| "ok".to_string())));
    let body = Readiness {
        status: if ready {
            ReadyStatus::Ready
        } else {
            ReadyStatus::NotReady
        },
        checks: checks
            .into_iter()
            .map(|(name, verdict)| (name.to_string(), verdict))
            .collect(),
    };
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

/// Prometheus metrics
///
/// Prometheus text format: jobs by state, queue depth, dead-letter depth, job
/// and image latency histograms (fleet-wide, from the status store). No authentication.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4.", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let limit = Duration::from_secs(3);
    let dead_letter_depth = async {
        match state.backends.broker.dead_letter_queue() {
            Some(dlq) => tokio::time::timeout(limit, dlq.depth())
                .await
                .ok()
                .and_then(Result::ok),
            None => None,
        }
    };
    let (depth, stats, dead_letters) = tokio::join!(
        tokio::time::timeout(limit, state.backends.broker.queue_depth()),
        tokio::time::timeout(limit, state.backends.status.stats()),
        dead_letter_depth,
    );
    let mut text = String::new();
    let out = &mut text;
    metric(
        out,
        "zipfleet_api_jobs_accepted_total",
        "counter",
        "Jobs accepted by this API process.",
    );
    let _ = writeln!(
        out,
        "zipfleet_api_jobs_accepted_total {}",
        state.metrics.jobs_accepted.load(Ordering::Relaxed)
    );
    if let Ok(Ok(depth)) = depth {
        metric(
            out,
            "zipfleet_queue_depth",
            "gauge",
            "Jobs waiting on the jobs queue (scale workers on this).",
        );
        let _ = writeln!(out, "zipfleet_queue_depth {}", depth.ready);
        if let Some(in_flight) = depth.in_flight {
            metric(
                out,
                "zipfleet_queue_in_flight",
                "gauge",
                "Jobs delivered and not yet acknowledged.",
            );
            let _ = writeln!(out, "zipfleet_queue_in_flight {in_flight}");
        }
    }
    if let Some(dead_letters) = dead_letters {
        metric(
            out,
            "zipfleet_dead_letter_depth",
            "gauge",
            "Messages in the dead-letter queue (alert when above zero).",
        );
        let _ = writeln!(out, "zipfleet_dead_letter_depth {dead_letters}");
    }
    if let Ok(Ok(stats)) = stats {
        metric(
            out,
            "zipfleet_jobs_total",
            "counter",
            "Jobs that entered each state (a retried job enters running again).",
        );
        for (job_state, count) in &stats.entered {
            let _ = writeln!(
                out,
                "zipfleet_jobs_total{{state=\"{}\"}} {count}",
                job_state.as_str()
            );
        }
        histogram(
            out,
            "zipfleet_job_duration_seconds",
            "Time from acceptance to the end of a job.",
            &JOB_SECONDS_BOUNDS,
            &stats.job_seconds,
        );
        histogram(
            out,
            "zipfleet_image_duration_seconds",
            "Time to fetch and process one image.",
            &IMAGE_SECONDS_BOUNDS,
            &stats.image_seconds,
        );
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn histogram(out: &mut String, name: &str, help: &str, bounds: &[f64], values: &Histogram) {
    metric(out, name, "histogram", help);
    let mut cumulative = 0;
    for (i, bound) in bounds.iter().enumerate() {
        cumulative += values.counts.get(i).copied().unwrap_or(0);
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", values.count);
    let _ = writeln!(out, "{name}_sum {}", values.sum_seconds);
    let _ = writeln!(out, "{name}_count {}", values.count);
}

/// The OpenAPI document
///
/// This document (OpenAPI 3.1), generated from the types the API uses. No authentication.
#[utoipa::path(get, path = "/openapi.json", operation_id = "openapi", tag = "operations",
    responses((status = 200, description = "The OpenAPI document.", body = Object, content_type = "application/json")))]
pub async fn openapi(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi.to_string(),
    )
        .into_response()
}
