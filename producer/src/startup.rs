//! Building and running the API: [`Application::build`] wires the router over
//! connected backends and binds the listener (port 0 picks a free port, for
//! tests); [`Application::run_until_stopped`] serves until shutdown.

use crate::errors::ApiError;
use crate::health::{self, Metrics};
use crate::{auth, dead_letters, erasure, fleet, jobs, ui};
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use zipfleet_backends::Backends;
use zipfleet_shared::accept::AcceptSettings;
use zipfleet_shared::secret::Secret;
use zipfleet_shared::spec::SpecLimits;

/// What the API needs besides its backends.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Bearer token for `/v1`; `None` only with `--no-auth`.
    pub token: Option<Secret>,
    pub max_body_bytes: usize,
    pub spec_limits: SpecLimits,
    /// How jobs are accepted: claim check, lanes, the tenant quota.
    pub accept: AcceptSettings,
    /// How long an erased job's id stays erased.
    pub tombstone_ttl: Duration,
    pub download_url_expiry: Duration,
}

/// Shared by every request.
#[derive(Clone)]
pub struct AppState {
    pub backends: Backends,
    pub settings: Arc<ApiSettings>,
    pub token: Option<Arc<str>>,
    pub metrics: Arc<Metrics>,
    /// The OpenAPI document, rendered once.
    pub openapi: Arc<str>,
}

pub struct Application {
    listener: TcpListener,
    router: Router,
}

impl Application {
    pub async fn build(
        listen: &str,
        backends: Backends,
        settings: ApiSettings,
    ) -> std::io::Result<Self> {
        let state = AppState {
            backends,
            token: settings
                .token
                .as_ref()
                .map(|token| Arc::from(token.expose())),
            settings: Arc::new(settings.clone()),
            metrics: Arc::new(Metrics::default()),
            openapi: Arc::from(crate::openapi::document(&settings.spec_limits).to_string()),
        };
        let v1 = Router::new()
            .route(
                "/jobs",
                axum::routing::post(jobs::create_job).get(jobs::search_jobs),
            )
            .route("/jobs/{id}", get(jobs::get_job).delete(erasure::erase_job))
            .route("/jobs/{id}/cancel", axum::routing::post(jobs::cancel_job))
            .route(
                "/projects/{project_id}",
                axum::routing::delete(erasure::erase_project),
            )
            .route("/fleet", get(fleet::fleet))
            .route("/dead-letters", get(dead_letters::list))
            .route(
                "/dead-letters/redrive",
                axum::routing::post(dead_letters::redrive),
            )
            .route(
                "/dead-letters/{id}",
                axum::routing::delete(dead_letters::delete_one),
            )
            .route(
                "/dead-letters/{id}/redrive",
                axum::routing::post(dead_letters::redrive_one),
            )
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                auth::require_token,
            ))
            .layer(DefaultBodyLimit::max(settings.max_body_bytes));
        let router = Router::new()
            .nest("/v1", v1)
            .route("/healthz", get(health::healthz))
            .route("/readyz", get(health::readyz))
            .route("/metrics", get(health::metrics))
            .route("/openapi.json", get(health::openapi))
            // The operator page (public assets; its data comes from /v1).
            .merge(ui::router())
            // Unknown paths answer in the error shape, like every other error.
            .fallback(|| async { ApiError::NoRoute })
            .with_state(state)
            .layer(tower_http::trace::TraceLayer::new_for_http());
        let listener = TcpListener::bind(listen).await?;
        Ok(Self { listener, router })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(address = %self.listener.local_addr()?, "zipfleet API listening");
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
    }
}
