//! The worker's own HTTP endpoint (`ZIPFLEET_WORKER_LISTEN`), for probes and
//! scrapers: `GET /healthz` (the job loop turns), `GET /readyz` (broker,
//! object store and status store reachable) and `GET /metrics`.
//!
//! Liveness is a heartbeat, not "the process answers HTTP": the job loop
//! stamps [`Liveness`](crate::health::Liveness) every time it turns (at least every
//! [`crate::consumer::LOOP_TICK`]), and `/healthz` fails once the stamp is
//! older than the liveness timeout. The endpoint runs on its own thread and
//! runtime and only reads what the worker publishes (the heartbeat, a
//! readiness snapshot refreshed by [`Worker::watch_readiness`], the
//! counters), so it answers even when the worker's runtime is wedged — which
//! is exactly when the probe must say so.

use crate::consumer::Worker;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Serve the endpoint for `worker` on `listener` from a thread of its own
/// until `stop` is cancelled.
pub fn spawn(
    listener: std::net::TcpListener,
    worker: Arc<Worker>,
    stop: CancellationToken,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    listener.set_nonblocking(true)?;
    let address = listener.local_addr()?;
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(worker);
    std::thread::Builder::new()
        .name("worker-endpoint".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(err) => return tracing::error!(%err, "the worker endpoint could not start"),
            };
            runtime.block_on(async move {
                let served = match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => {
                        tracing::info!(%address, "worker endpoint listening");
                        axum::serve(listener, router)
                            .with_graceful_shutdown(stop.cancelled_owned())
                            .await
                    }
                    Err(err) => Err(err),
                };
                if let Err(err) = served {
                    tracing::error!(%err, "the worker endpoint stopped");
                }
            });
        })
}

async fn healthz(State(worker): State<Arc<Worker>>) -> Response {
    let since = worker.liveness.since_last_turn();
    let alive = worker.liveness.is_alive();
    let body = json!({"status": if alive { "ok" } else { "stuck" }, "last_turn_seconds_ago": since.as_secs_f64()});
    let code = if alive {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

async fn readyz(State(worker): State<Arc<Worker>>) -> Response {
    let checks = worker.readiness.snapshot();
    let ready = worker.readiness.is_ready();
    let body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "checks": checks
            .unwrap_or_default()
            .iter()
            .map(|(name, verdict)| (name.to_string(), json!(verdict.as_ref().map_or_else(|err| err.as_str(), |()| "ok"))))
            .collect::<serde_json::Map<_, _>>(),
    });
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

async fn metrics(State(worker): State<Arc<Worker>>) -> Response {
    let text = worker
        .env
        .metrics
        .render(&worker.env.budget, worker.readiness.is_ready());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
