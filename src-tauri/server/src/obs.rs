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

/// `POST /obs/sources` — `{scene, url | overlayId, w, h, x, y, name?}`; idempotent by name.
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
    axum::extract::Path(action): axum::extract::Path<String>,
) -> Result<StatusCode, ApiError> {
    let start = start_or_stop(&action)?;
    state.engine.obs_stream(start).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/obs/record/start` · `/stop` (stop answers `{path}` of the file).
pub async fn record(
    _: Streamer,
    State(state): State<AppState>,
    axum::extract::Path(action): axum::extract::Path<String>,
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
