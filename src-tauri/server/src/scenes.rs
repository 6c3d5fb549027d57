//! What overlays show, for the streamer: each overlay's scene (read, and saved whole against
//! the version it started from), alerts, chat lines and chart points pushed to the pages, and
//! the live figures of the pages (`/api/metrics/realtime`).

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use stagehand_engine::overlays::{AlertRequest, ChartUpdate, ChatMessage, Scene};
use stagehand_protocol::ErrorCode;

use crate::auth::Streamer;
use crate::error::ApiError;
use crate::state::AppState;

/// The scene, alert and figure routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/overlays/{id}/scene", get(scene_get).put(scene_put))
        .route("/api/alerts", post(alert))
        .route("/api/chat/messages", post(chat))
        .route("/api/chart/updates", post(chart))
        .route("/api/metrics/realtime", get(realtime))
}

fn body<T>(json: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    json.map(|Json(v)| v).map_err(ApiError::from)
}

fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// `GET /api/overlays/{id}/scene`
pub async fn scene_get(
    _: Streamer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let scene = state.engine.overlays().scene(&id).await?;
    Ok(([(header::ETAG, etag(scene.version))], Json(scene)).into_response())
}

/// `PUT /api/overlays/{id}/scene` body: the whole scene (a batch of edits is one save).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutScene {
    /// The version the edit started from (or send `If-Match`).
    version: Option<i64>,
    scene: Scene,
}

/// `PUT /api/overlays/{id}/scene`
pub async fn scene_put(
    _: Streamer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    json: Result<Json<PutScene>, JsonRejection>,
) -> Result<Response, ApiError> {
    let req = body(json)?;
    let if_match = headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.trim()
                .trim_start_matches("W/")
                .trim_matches('"')
                .parse::<i64>()
        });
    let base = match (req.version, if_match) {
        (Some(v), None) => v,
        (None, Some(Ok(v))) => v,
        (Some(v), Some(Ok(m))) if v == m => v,
        (Some(_), Some(Ok(_))) => {
            return Err(ApiError::malformed("`version` and If-Match disagree"));
        }
        (_, Some(Err(_))) => {
            return Err(ApiError::malformed("If-Match must be a version number"));
        }
        (None, None) => {
            return Err(ApiError::new(
                ErrorCode::VersionRequired,
                "send the version the edit started from, as `version` or If-Match",
            ));
        }
    };
    let saved = state
        .engine
        .overlays()
        .save_scene(&id, base, req.scene)
        .await?;
    Ok(([(header::ETAG, etag(saved.version))], Json(saved)).into_response())
}

/// `POST /api/alerts`
pub async fn alert(
    _: Streamer,
    State(state): State<AppState>,
    json: Result<Json<AlertRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let delivery = state.engine.overlays().show_alert(body(json)?).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery)).into_response())
}

/// `POST /api/chat/messages` — a chat line for chat boxes (test data now; chat later).
pub async fn chat(
    _: Streamer,
    State(state): State<AppState>,
    json: Result<Json<ChatMessage>, JsonRejection>,
) -> Result<Response, ApiError> {
    let delivery = state.engine.overlays().chat_message(body(json)?).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery)).into_response())
}

/// `POST /api/chart/updates` — points for chart layers (test data now; webhooks later).
pub async fn chart(
    _: Streamer,
    State(state): State<AppState>,
    json: Result<Json<ChartUpdate>, JsonRejection>,
) -> Result<Response, ApiError> {
    let delivery = state.engine.overlays().chart_update(body(json)?).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery)).into_response())
}

/// `GET /api/metrics/realtime`
pub async fn realtime(
    _: Streamer,
    State(state): State<AppState>,
) -> Json<stagehand_engine::protocol::overlay::Realtime> {
    Json(state.engine.overlays().realtime())
}
