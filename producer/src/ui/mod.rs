//! The operator page: `GET /ui/` and its assets, served from the binary.
//!
//! The page is a handful of small vanilla ES modules, a style sheet and one
//! HTML shell, embedded with `include_bytes!` (no CDN, no Node.js at run
//! time, nothing to deploy beside `zipfleet-api`). The assets are public;
//! everything the page shows comes from the API's own `/v1` routes, which the
//! page calls with the bearer token the operator typed into its sign-in form
//! (kept in the tab's `sessionStorage`, never in a URL).
//!
//! - [`assets`]: the embedded files, their content types and validators.
//! - [`headers`]: the Content-Security-Policy and the other security and
//!   caching headers every `/ui` response carries, in one place.

pub mod assets;
pub mod headers;

use crate::errors::ApiError;
use axum::extract::Path;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

/// Where the page lives; the startup merges [`router`] at the root so that
/// `/ui` (which redirects) and `/ui/` are both matched exactly.
pub const MOUNT: &str = "/ui";

/// The routes of the operator page: `/ui` redirects to `/ui/` (relative, so
/// it works behind a proxy that adds a path prefix), `/ui/` is the HTML
/// shell, `/ui/{asset}` the embedded files. Every answer, including a `404`
/// for an unknown asset, carries [`headers::security_headers`].
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(MOUNT, get(|| async { Redirect::permanent("ui/") }))
        .route("/ui/", get(|request: HeaderMap| async move {
            serve("index.html", &request)
        }))
        .route(
            "/ui/{*path}",
            get(|Path(path): Path<String>, request: HeaderMap| async move {
                serve(&path, &request)
            }),
        )
        .layer(axum::middleware::map_response(headers::security_headers))
}

/// One embedded asset, or `304` when the browser's copy is current (the
/// assets are revalidated on every load: `Cache-Control: no-cache`).
fn serve(path: &str, request: &HeaderMap) -> Response {
    let Some(asset) = assets::find(path) else {
        return ApiError::NoRoute.into_response();
    };
    let etag = asset.etag();
    let current = request
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag));
    if current {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    (
        [
            (header::CONTENT_TYPE, asset.content_type.to_string()),
            (header::ETAG, etag),
        ],
        asset.body,
    )
        .into_response()
}
