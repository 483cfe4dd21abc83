//! Liveness, readiness, metrics and the OpenAPI document.

use crate::startup::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use prometheus_client::encoding::{prometheus_text, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use utoipa::ToSchema;
use zipfleet_shared::reachability::{all_ok, check_backends};
use zipfleet_shared::status_store::{
    Histogram, Stats, TenantLoad, IMAGE_SECONDS_BOUNDS, JOB_SECONDS_BOUNDS,
};

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
    let (depth, stats, dead_letters, tenants) = tokio::join!(
        tokio::time::timeout(limit, state.backends.broker.queue_depth()),
        tokio::time::timeout(limit, state.backends.status.stats()),
        dead_letter_depth,
        tokio::time::timeout(limit, state.backends.status.tenants()),
    );
    let mut registry = Registry::default();
    registry.register(
        "zipfleet_api_jobs_accepted",
        "Jobs accepted by this API process",
        ConstCounter::new(state.metrics.jobs_accepted.load(Ordering::Relaxed)),
    );
    if let Ok(Ok(depth)) = depth {
        registry.register(
            "zipfleet_queue_depth",
            "Jobs waiting on the jobs queue (scale workers on this)",
            gauge(depth.ready),
        );
        if let Some(in_flight) = depth.in_flight {
            registry.register(
                "zipfleet_queue_in_flight",
                "Jobs delivered and not yet acknowledged",
                gauge(in_flight),
            );
        }
    }
    if let Some(dead_letters) = dead_letters {
        registry.register(
            "zipfleet_dead_letter_depth",
            "Messages in the dead-letter queue (alert when above zero)",
            gauge(dead_letters),
        );
    }
    if let Ok(Ok(stats)) = stats {
        register_stats(&mut registry, stats);
    }
    if let Ok(Ok(tenants)) = tenants {
        register_fair_share(&mut registry, &tenants);
    }
    let mut text = String::new();
    prometheus_text::encode(&mut text, &registry).expect("writing to a String never fails");
    (
        [(header::CONTENT_TYPE, prometheus_text::CONTENT_TYPE)],
        text,
    )
        .into_response()
}

/// Fair share at a glance, with no label per tenant (their number is
/// unbounded): how many tenants have jobs queued, and the longest wait.
fn register_fair_share(registry: &mut Registry, tenants: &[TenantLoad]) {
    let waiting = tenants.iter().filter(|tenant| tenant.queued > 0).count();
    let oldest = tenants
        .iter()
        .map(|tenant| tenant.oldest_wait)
        .max()
        .unwrap_or_default();
    registry.register(
        "zipfleet_tenants_waiting",
        "Tenants with jobs queued",
        gauge(waiting as u64),
    );
    registry.register(
        "zipfleet_oldest_wait_seconds",
        "How long the oldest queued job has waited",
        ConstGauge::new(oldest.as_secs_f64()),
    );
}

/// The fleet-wide figures the status store keeps: jobs by state, latencies.
fn register_stats(registry: &mut Registry, stats: Stats) {
    let entered = Family::<[(&'static str, &'static str); 1], Counter>::default();
    for (job_state, count) in &stats.entered {
        entered
            .get_or_create(&[("state", job_state.as_str())])
            .inc_by(*count);
    }
    registry.register(
        "zipfleet_jobs",
        "Jobs that entered each state (a retried job enters running again)",
        entered,
    );
    registry.register(
        "zipfleet_job_duration_seconds",
        "Time from acceptance to the end of a job",
        StoredHistogram {
            bounds: &JOB_SECONDS_BOUNDS,
            values: stats.job_seconds,
        },
    );
    registry.register(
        "zipfleet_image_duration_seconds",
        "Time to fetch and process one image",
        StoredHistogram {
            bounds: &IMAGE_SECONDS_BOUNDS,
            values: stats.image_seconds,
        },
    );
}

fn gauge(value: u64) -> ConstGauge {
    ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX))
}

/// A histogram the status store aggregated for the whole fleet (per-bucket
/// counts, sum and count), exposed as it is rather than observed here.
#[derive(Debug)]
struct StoredHistogram {
    bounds: &'static [f64],
    values: Histogram,
}

impl EncodeMetric for StoredHistogram {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> = self
            .bounds
            .iter()
            .enumerate()
            .map(|(i, bound)| (*bound, self.values.counts.get(i).copied().unwrap_or(0)))
            .collect();
        encoder.encode_histogram::<NoLabelSet>(
            self.values.sum_seconds,
            self.values.count,
            &buckets,
            None,
        )
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use zipfleet_shared::JobState;

    #[test]
    fn fleet_figures_keep_their_names_types_buckets_and_values() {
        let mut job_seconds = Histogram::default();
        for seconds in [0.5, 1.5, 4.0, 900.0] {
            job_seconds.observe(&JOB_SECONDS_BOUNDS, seconds);
        }
        let stats = Stats {
            entered: vec![(JobState::Queued, 4), (JobState::Succeeded, 3)],
            job_seconds,
            image_seconds: Histogram::default(),
        };
        let mut registry = Registry::default();
        register_stats(&mut registry, stats);
        let mut text = String::new();
        prometheus_text::encode(&mut text, &registry).unwrap();
        for line in [
            "# TYPE zipfleet_jobs_total counter",
            "zipfleet_jobs_total{state=\"queued\"} 4",
            "zipfleet_jobs_total{state=\"succeeded\"} 3",
            "# TYPE zipfleet_job_duration_seconds histogram",
            // Cumulative, as the exposition format wants them.
            "zipfleet_job_duration_seconds_bucket{le=\"1\"} 1",
            "zipfleet_job_duration_seconds_bucket{le=\"2\"} 2",
            "zipfleet_job_duration_seconds_bucket{le=\"5\"} 3",
            "zipfleet_job_duration_seconds_bucket{le=\"600\"} 3",
            "zipfleet_job_duration_seconds_bucket{le=\"+Inf\"} 4",
            "zipfleet_job_duration_seconds_sum 906.0",
            "zipfleet_job_duration_seconds_count 4",
            "# TYPE zipfleet_image_duration_seconds histogram",
            "zipfleet_image_duration_seconds_bucket{le=\"0.01\"} 0",
            "zipfleet_image_duration_seconds_count 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");
        }
    }
}
