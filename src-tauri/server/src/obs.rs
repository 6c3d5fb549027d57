//! OBS routes: status, scenes, switching, and the password (kept in the secret store).

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use serde::Deserialize;
use stagehand_engine::Secret;

use crate::AppState;
use crate::auth::Streamer;
use crate::error::ApiError;

/// `GET /api/obs/status`
pub async fn status(
    _: Streamer,
    State(state): State<AppState>,
) -> Json<stagehand_engine::obs::ObsStatus> {
    Json(state.engine.obs_status())
}

/// `GET /api/obs/scenes`
pub async fn scenes(
    _: Streamer,
    State(state): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(state.engine.obs_scenes().await?))
}

/// Body of `POST /api/obs/scenes/current`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchScene {
    scene: String,
}

/// `POST /api/obs/scenes/current` — switches the program scene.
pub async fn switch(
    _: Streamer,
    State(state): State<AppState>,
    json: Result<Json<SwitchScene>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(body) = json?;
    state.engine.obs_switch_scene(&body.scene).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `PUT /api/obs/password`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    password: String,
}

/// `PUT /api/obs/password` — stores the password in the secret store and reconnects.
pub async fn password(
    _: Streamer,
    State(state): State<AppState>,
    json: Result<Json<SetPassword>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(body) = json?;
    state
        .engine
        .obs_set_password(Secret::new(body.password))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
