//! The headers every `/ui` response carries, in one place.
//!
//! The Content-Security-Policy allows only the page's own scripts, styles,
//! images and API calls (`'self'`), no inline script or style, no `eval`, no
//! plugins, no `<base>`, no form posts and no framing: a label or message
//! that slipped into the DOM as markup still could not run or load anything.
//! The assets are revalidated on every load (`no-cache` with an `ETag`), so
//! an upgraded API never serves a stale script next to a new one.

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::HeaderValue;
use axum::response::Response;

/// The page's Content-Security-Policy.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// Adds the security and caching headers to a `/ui` response (replacing any
/// a handler set, so no route can weaken them).
pub async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_VALUE),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (REFERRER_POLICY, "no-referrer"),
        (X_FRAME_OPTIONS, "DENY"),
        (CACHE_CONTROL, "no-cache"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
