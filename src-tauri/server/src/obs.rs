//! OBS routes: status, health, scenes, switching, sources, streaming and recording, and the
//! password (kept in the secret store).

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{MethodRouter, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use stagehand_engine::Secret;

use crate::auth::Streamer;
use crate::error::ApiError;
use crate::state::AppState;

/// The OBS routes.
///
/// `/obs/sources` is the path the spec names: it stays as an alias that answers exactly as
/// `/api/obs/sources` does (the same handler). New clients use the `/api/` path.
pub fn routes() -> Router<AppState> {
    let sources = || -> MethodRouter<AppState> { post(source) };
    Router::new()
        .route("/api/obs/status", get(status))
        .route("/api/obs/health", get(health))
        .route("/api/obs/scenes", get(scenes))
        .route("/api/obs/scenes/current", post(switch))
        .route("/api/obs/password", put(password))
        .route("/api/obs/sources", sources())
        .route("/obs/sources", sources())
        .route("/api/obs/stream/{action}", post(stream))
        .route("/api/obs/record/{action}", post(record))
}

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

/// `POST /api/obs/sources` (alias `/obs/sources`) — `{scene, url | overlayId, w, h, x, y, name?}`; idempotent by name.
pub async fn source(
    _: Streamer,
    State(state): State<AppState>,
    json: Result<Json<stagehand_engine::obs::SourceRequest>, JsonRejection>,
) -> Result<Json<stagehand_engine::obs::SourceResult>, ApiError> {
    let Json(body) = json?;
    Ok(Json(
        state
            .engine
            .obs_source_upsert(body, &state.local_url)
            .await?,
    ))
}

/// `POST /api/obs/stream/start` · `/stop`
pub async fn stream(
    _: Streamer,
    State(state): State<AppState>,
    Path(action): Path<String>,
) -> Result<StatusCode, ApiError> {
    let start = start_or_stop(&action)?;
    state.engine.obs_stream(start).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/obs/record/start` · `/stop` (stop answers `{path}` of the file).
pub async fn record(
    _: Streamer,
    State(state): State<AppState>,
    Path(action): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let start = start_or_stop(&action)?;
    let path = state.engine.obs_record(start).await?;
    Ok(Json(
        serde_json::json!({ "recording": start, "path": path }),
    ))
}

fn start_or_stop(action: &str) -> Result<bool, ApiError> {
    match action {
        "start" => Ok(true),
        "stop" => Ok(false),
        _ => Err(ApiError::not_found()),
    }
}

/// `GET /api/obs/health` — the last stream health reading (`null` before the first).
pub async fn health(_: Streamer, State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::to_value(state.engine.obs_health()).unwrap_or_default())
}
