//! The outermost layer: every request counted and timed by route template, logged, and its
//! response given the security headers every answer carries.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use stagehand_protocol::ErrorCode;

use crate::state::AppState;

/// Counts and times every request by route template (never the raw path or query, which may
/// carry keys or signatures), and logs it.
pub async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    // A fixed set of labels: any page can send arbitrary method names, and every distinct
    // label would be a series kept forever.
    let method = match *request.method() {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "SAMEORIGIN"),
        // Not `no-referrer`: under it Chromium sends `Origin: null` on form posts, which the
        // Origin guard (rightly) refuses. Overlay pages set `no-referrer` themselves.
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let status = response.status();
    let metrics = state.engine.metrics();
    metrics.counter_add(
        "stagehand_http_requests_total",
        "HTTP requests by route, method and status.",
        &[
            ("route", &route),
            ("method", method),
            ("status", status.as_str()),
        ],
        1,
    );
    metrics.observe(
        "stagehand_http_request_duration_seconds",
        "HTTP request latency by route.",
        &[("route", &route)],
        elapsed,
    );
    if let Some(code) = response.extensions().get::<ErrorCode>() {
        metrics.counter_add(
            "stagehand_http_errors_total",
            "Error responses by stable error code.",
            &[("code", code.as_str())],
            1,
        );
    }
    let ms = (elapsed * 100_000.0).round() / 100.0;
    let code = status.as_u16();
    if status.is_server_error() {
        tracing::warn!(method, route = %route, status = code, ms, "request");
    } else if status.is_client_error() {
        tracing::info!(method, route = %route, status = code, ms, "request");
    } else if method == "GET" && route == "/" && status.is_success() {
        // `/` answers 200 only to a signed-in streamer (anyone else is sent to `/login`): this
        // line is how an operator, and the desktop smoke test, see the panel has opened.
        tracing::info!(method, route = %route, status = code, ms, "panel served to a signed-in streamer");
    } else {
        tracing::debug!(method, route = %route, status = code, ms, "request");
    }
    response
}
