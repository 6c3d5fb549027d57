//! Relay link routes: its status and the tunnel secret (kept in the secret store).

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use stagehand_engine::Secret;

use crate::auth::Streamer;
use crate::error::ApiError;
use crate::state::AppState;

/// The relay link routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/relay/status", get(status))
        .route("/api/relay/secret", put(secret))
}

/// `GET /api/relay/status`
pub async fn status(
    _: Streamer,
    State(state): State<AppState>,
) -> Json<stagehand_engine::relay_link::RelayStatus> {
    Json(state.engine.relay_status())
}

/// Body of `PUT /api/relay/secret`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetSecret {
    secret: String,
}

/// `PUT /api/relay/secret` — stores the tunnel secret; the link uses it at once.
pub async fn secret(
    _: Streamer,
    State(state): State<AppState>,
    json: Result<Json<SetSecret>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(body) = json?;
    state
        .engine
        .relay_set_secret(Secret::new(body.secret))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
