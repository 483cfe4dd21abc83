//! `GET /v1/fleet`: the fleet at a glance for the operator page — jobs by
//! state, the queue's lanes, dead letters, workers and how busy they are,
//! images per second, and the tenants waiting.

use crate::errors::{ApiError, ErrorBody};
use crate::startup::AppState;
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::ToSchema;
use zipfleet_shared::status::now;

/// How long each backend has to answer one part of the view.
const PART_TIMEOUT: Duration = Duration::from_secs(3);

/// Jobs queued and running now, and finished in the last hour.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FleetJobs {
    pub queued: u64,
    pub running: u64,
    pub succeeded_last_hour: u64,
    pub failed_last_hour: u64,
    pub cancelled_last_hour: u64,
}

/// One lane of the jobs queue.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QueueView {
    /// The broker's name for it.
    pub name: String,
    /// 0 is the jobs queue itself.
    pub lane: u16,
    /// Jobs waiting in it.
    pub ready: u64,
    /// Jobs taken by workers and not yet acknowledged, where the broker tells.
    #[schema(required = true)]
    pub in_flight: Option<u64>,
}

/// A worker seen in the last 30 seconds.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WorkerView {
    pub worker_id: String,
    /// Jobs it runs at once.
    pub slots: u32,
    /// Jobs it runs now.
    pub busy: u32,
    pub last_seen: DateTime<Utc>,
    pub images_per_second: f64,
}

/// A tenant with jobs waiting or running.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TenantView {
    pub tenant: String,
    pub queued: u32,
    pub running: u32,
    /// How long its oldest queued job has waited.
    pub oldest_wait_s: f64,
}

/// `GET /v1/fleet`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FleetView {
    pub generated_at: DateTime<Utc>,
    pub jobs: FleetJobs,
    /// Every lane of the jobs queue.
    pub queues: Vec<QueueView>,
    /// Jobs waiting over all lanes: the same number as `/metrics`' `zipfleet_queue_depth`.
    pub queue_depth: u64,
    /// Messages in the dead-letter queue, where the broker tells.
    #[schema(required = true)]
    pub dead_letters: Option<u64>,
    pub workers: Vec<WorkerView>,
    /// Over every worker seen.
    pub images_per_second: f64,
    /// Tenants with jobs waiting or running, the longest-waiting first.
    pub tenants: Vec<TenantView>,
}

fn status_down(err: impl std::fmt::Display) -> ApiError {
    tracing::warn!(%err, "status store unavailable");
    ApiError::Unavailable("the status store".into())
}

/// The fleet
///
/// Jobs by state (queued and running now; succeeded, failed and cancelled in
/// the last hour), each lane of the jobs queue, the dead letters, the
/// workers seen in the last 30 s and how busy they are, images per second,
/// and the tenants with jobs waiting or running. The broker's part is left
/// empty (lanes) or null (dead letters) when the broker does not answer.
#[utoipa::path(get, path = "/v1/fleet", operation_id = "getFleet", tag = "operations",
    responses(
        (status = 200, description = "The fleet now.", body = FleetView),
        (status = 401, description = "Missing or wrong bearer token.", body = ErrorBody),
        (status = 503, description = "The status store is unreachable.", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn fleet(State(state): State<AppState>) -> Result<Json<FleetView>, ApiError> {
    let status = &state.backends.status;
    let broker = &state.backends.broker;
    let hour_ago = now() - chrono::Duration::hours(1);
    let (recent, workers, tenants, depth, dead_letters) = tokio::join!(
        status.recent(hour_ago),
        status.workers(),
        status.tenants(),
        tokio::time::timeout(PART_TIMEOUT, broker.lane_depths()),
        async {
            match broker.dead_letter_queue() {
                Some(dlq) => tokio::time::timeout(PART_TIMEOUT, dlq.depth())
                    .await
                    .ok()
                    .and_then(Result::ok),
                None => None,
            }
        },
    );
    let recent = recent.map_err(status_down)?;
    let workers = workers.map_err(status_down)?;
    let mut tenants = tenants.map_err(status_down)?;
    tenants.sort_by_key(|tenant| std::cmp::Reverse(tenant.oldest_wait));
    let queues: Vec<QueueView> = match depth {
        Ok(Ok(lanes)) => lanes
            .into_iter()
            .map(|lane| QueueView {
                name: lane.queue,
                lane: lane.lane.0,
                ready: lane.ready,
                in_flight: lane.in_flight,
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(Json(FleetView {
        generated_at: now(),
        jobs: FleetJobs {
            queued: recent.queued,
            running: recent.running,
            succeeded_last_hour: recent.succeeded,
            failed_last_hour: recent.failed,
            cancelled_last_hour: recent.cancelled,
        },
        queue_depth: queues.iter().map(|q| q.ready).sum(),
        queues,
        dead_letters,
        // Folded from 0.0: a float sum of nothing is -0.0.
        images_per_second: workers.iter().fold(0.0, |sum, w| sum + w.images_per_second),
        workers: workers
            .into_iter()
            .map(|w| WorkerView {
                worker_id: w.worker_id,
                slots: w.slots,
                busy: w.busy,
                last_seen: w.last_seen,
                images_per_second: w.images_per_second,
            })
            .collect(),
        tenants: tenants
            .into_iter()
            .map(|t| TenantView {
                tenant: t.tenant,
                queued: t.queued,
                running: t.running,
                oldest_wait_s: t.oldest_wait.as_secs_f64(),
            })
            .collect(),
    }))
}
