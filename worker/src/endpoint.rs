//! The worker's own HTTP endpoint (`ZIPFLEET_WORKER_LISTEN`), for probes and
//! scrapers: `GET /healthz` (the job loop turns), `GET /readyz` (broker,
//! object store and status store reachable) and `GET /metrics`.
//!
//! Liveness is a heartbeat, not "the process answers HTTP": the job loop
//! stamps [`Liveness`] every time it turns (at least every
//! [`crate::consumer::LOOP_TICK`]), and `/healthz` fails once the stamp is
//! older than the liveness timeout — a loop wedged in a blocking call fails
//! its probe and gets restarted, while HTTP on other threads still answers.

use crate::consumer::Worker;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// When the job loop last turned.
#[derive(Debug)]
pub struct Liveness {
    origin: Instant,
    last_turn_ms: AtomicU64,
    timeout: Duration,
}

impl Liveness {
    pub fn new(timeout: Duration) -> Self {
        Self { origin: Instant::now(), last_turn_ms: AtomicU64::new(0), timeout }
    }

    /// The loop turned just now.
    pub fn beat(&self) {
        let now = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_turn_ms.store(now, Ordering::Relaxed);
    }

    /// How long since the loop last turned (since start if it never did).
    pub fn since_last_turn(&self) -> Duration {
        let now = self.origin.elapsed();
        now.saturating_sub(Duration::from_millis(self.last_turn_ms.load(Ordering::Relaxed)))
    }

    pub fn is_alive(&self) -> bool {
        self.since_last_turn() <= self.timeout
    }
}

/// Bind the endpoint's listener (port 0 picks a free one, for tests).
pub async fn bind(address: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind(address).await
}

/// Serve the endpoint for `worker` until `shutdown` completes.
pub async fn serve(listener: TcpListener, worker: Arc<Worker>, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(worker);
    tracing::info!(address = %listener.local_addr()?, "worker endpoint listening");
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

async fn healthz(State(worker): State<Arc<Worker>>) -> Response {
    let since = worker.liveness.since_last_turn();
    let body = json!({"status": if worker.liveness.is_alive() { "ok" } else { "stuck" }, "last_turn_seconds_ago": since.as_secs_f64()});
    let code = if worker.liveness.is_alive() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(body)).into_response()
}

async fn readyz(State(worker): State<Arc<Worker>>) -> Response {
    let checks = worker.reachability().await;
    let ready = checks.iter().all(|(_, verdict)| verdict.is_ok());
    let body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "checks": checks
            .iter()
            .map(|(name, verdict)| (name.to_string(), json!(verdict.as_ref().map_or_else(|err| err.as_str(), |()| "ok"))))
            .collect::<serde_json::Map<_, _>>(),
    });
    let code = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(body)).into_response()
}

async fn metrics(State(worker): State<Arc<Worker>>) -> Response {
    let ready = worker.reachability().await.iter().all(|(_, verdict)| verdict.is_ok());
    let text = worker.env.metrics.render(&worker.env.budget, ready);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness_goes_stale_without_beats() {
        let liveness = Liveness::new(Duration::from_millis(50));
        liveness.beat();
        assert!(liveness.is_alive());
        std::thread::sleep(Duration::from_millis(80));
        assert!(!liveness.is_alive(), "no beat for longer than the timeout must fail liveness");
        liveness.beat();
        assert!(liveness.is_alive());
    }
}
