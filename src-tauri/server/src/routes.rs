//! Routes that are neither sign-in nor sockets: probes, metrics, status, audit, and pages.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use crate::AppState;
use crate::auth::Streamer;
use crate::error::ApiError;

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
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "the store is not answering",
            )
            .into_response()
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

/// `GET /api/status` — what the home page shows, as JSON.
pub async fn status(
    _: Streamer,
    State(state): State<AppState>,
) -> Json<stagehand_protocol::EngineStatus> {
    Json(state.engine.status(&state.local_url))
}

/// Query of `GET /api/audit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    limit: Option<u32>,
    before: Option<i64>,
}

/// `GET /api/audit?limit=&before=` — newest first.
pub async fn audit(
    _: Streamer,
    State(state): State<AppState>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let entries = state
        .engine
        .audit()
        .list(q.limit.unwrap_or(100), q.before)
        .await?;
    Ok(Json(serde_json::json!({ "entries": entries })))
}

/// What the panel's pages may load: only this server.
pub(crate) const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// A rendered page with the panel's CSP, never cached.
pub(crate) fn page(html: String) -> Response {
    (
        [
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Html(html),
    )
        .into_response()
}

/// `GET /login` — the sign-in page.
pub async fn login_page() -> Response {
    page(stagehand_ui::login_page(None))
}

/// `GET /ui/{file}` — the UI's stylesheet and scripts, compiled into the binary.
pub async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let Some((body, kind)) = stagehand_ui::asset(&file) else {
        return ApiError::not_found().into_response();
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}
