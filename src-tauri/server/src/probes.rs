//! Probes for supervisors and monitoring: `/healthz` (the process answers), `/readyz` (the
//! store answers) and `/metrics` (Prometheus text). No credentials: they reveal nothing
//! private, and the LAN guard keeps `/metrics` on loopback.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use stagehand_protocol::ErrorCode;

use crate::error::ApiError;
use crate::state::AppState;

/// The probe routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// `GET /healthz` — the process answers.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// `GET /readyz` — the engine can serve (the store answers).
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.engine.ready().await {
        Ok(()) => Json(serde_json::json!({ "status": "ready" })).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "readiness check failed");
            ApiError::new(ErrorCode::NotReady, "the store is not answering").into_response()
        }
    }
}

/// `GET /metrics` — Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let engine = &state.engine;
    // Refreshes the overlay gauges (pages connected, sent, dropped).
    engine.overlays().realtime();
    engine.metrics().gauge_set(
        "stagehand_uptime_seconds",
        "Seconds since the engine started.",
        &[],
        engine.status(&state.local_url).uptime_seconds as f64,
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        engine.metrics().render(),
    )
        .into_response()
}
