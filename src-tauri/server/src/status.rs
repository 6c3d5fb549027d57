//! The streamer's view of the running engine as JSON: its status (what the home page shows)
//! and the audit log.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use crate::auth::Streamer;
use crate::error::ApiError;
use crate::state::AppState;

/// The status and audit routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/status", get(status))
        .route("/api/audit", get(audit))
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
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid_query(&e))?;
    let entries = state
        .engine
        .audit()
        .list(q.limit.unwrap_or(100), q.before)
        .await?;
    Ok(Json(serde_json::json!({ "entries": entries })))
}
