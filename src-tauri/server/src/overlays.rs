//! Overlay routes: the streamer's API (overlays, scenes, alerts, figures) and what OBS loads
//! (the signed page and its assets). The socket lives in `overlay_socket`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use stagehand_engine::overlays::{
    AlertRequest, ChartUpdate, ChatMessage, Overlay, OverlayChanges, Scene,
};

use crate::AppState;
use crate::auth::Streamer;
use crate::error::ApiError;

/// The overlay page, sent verbatim.
pub const OVERLAY_HTML: &str = include_str!("../../../overlays/overlay.html");
const OVERLAY_JS: &str = include_str!("../../../overlays/overlay.js");
const OVERLAY_CSS: &str = include_str!("../../../overlays/overlay.css");
/// TradingView Lightweight Charts (Apache-2.0), vendored; see overlays/vendor/lightweight-charts.
const CHART_JS: &str =
    include_str!("../../../overlays/vendor/lightweight-charts/lightweight-charts.js");

/// What overlay pages may load: only this server; media from it too.
const OVERLAY_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data: https:; media-src 'self' data: blob: https:; connect-src 'self'; \
frame-ancestors 'self'; base-uri 'none'; form-action 'none'";

fn body<T>(json: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    json.map(|Json(v)| v).map_err(ApiError::from)
}

/// An overlay with its freshly signed link.
fn with_link(state: &AppState, overlay: &Overlay, expires: Option<u64>) -> serde_json::Value {
    let mut value = serde_json::to_value(overlay).unwrap_or_default();
    let link = format!(
        "{}{}",
        state.local_url,
        state
            .engine
            .overlays()
            .link_path(&overlay.overlay_id, expires)
    );
    if let Some(map) = value.as_object_mut() {
        map.insert("signedUrl".into(), link.into());
    }
    value
}

/// Optional link lifetime on reads.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkQuery {
    /// Seconds until the returned `signedUrl` expires.
    expires_in: Option<u64>,
}

fn expiry(state: &AppState, expires_in: Option<u64>) -> Result<Option<u64>, ApiError> {
    match expires_in {
        None => Ok(None),
        Some(s) if (1..=31_536_000).contains(&s) => {
            let now = u64::try_from(state.engine.now_ms() / 1000).unwrap_or(0);
            Ok(Some(now + s))
        }
        Some(_) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_fields",
            "expires_in must be between 1 second and 1 year",
        )),
    }
}

/// `POST /overlays` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateOverlay {
    name: String,
    width: Option<u32>,
    height: Option<u32>,
    #[serde(rename = "expiresInSeconds")]
    expires_in: Option<u64>,
}

/// `POST /overlays`
pub async fn create(
    _: Streamer,
    State(state): State<AppState>,
    json: Result<Json<CreateOverlay>, JsonRejection>,
) -> Result<Response, ApiError> {
    let req = body(json)?;
    let exp = expiry(&state, req.expires_in)?;
    let overlay = state
        .engine
        .overlays()
        .create(&req.name, req.width, req.height)
        .await?;
    Ok((StatusCode::CREATED, Json(with_link(&state, &overlay, exp))).into_response())
}

/// `GET /overlays`
pub async fn list(
    _: Streamer,
    State(state): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let overlays = state.engine.overlays().list().await?;
    let list: Vec<_> = overlays
        .iter()
        .map(|o| with_link(&state, o, None))
        .collect();
    Ok(Json(serde_json::json!({ "overlays": list })))
}

/// `GET /overlays/{id}`
pub async fn get_one(
    _: Streamer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<LinkQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let exp = expiry(&state, q.expires_in)?;
    let overlay = state.engine.overlays().get(&id).await?;
    Ok(Json(with_link(&state, &overlay, exp)))
}

/// `PATCH /overlays/{id}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateOverlay {
    name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
}

/// `PATCH /overlays/{id}`
pub async fn update(
    _: Streamer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    json: Result<Json<UpdateOverlay>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let req = body(json)?;
    let overlay = state
        .engine
        .overlays()
        .update(
            &id,
            OverlayChanges {
                name: req.name,
                width: req.width,
                height: req.height,
            },
        )
        .await?;
    Ok(Json(with_link(&state, &overlay, None)))
}

/// `DELETE /overlays/{id}`
pub async fn delete(
    _: Streamer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.engine.overlays().delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/overlays/rotate-key`
pub async fn rotate_key(
    _: Streamer,
    State(state): State<AppState>,
) -> Result<StatusCode, ApiError> {
    state.engine.overlays().rotate_key().await?;
    Ok(StatusCode::NO_CONTENT)
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
            return Err(ApiError::bad_request(
                "invalid_fields",
                "`version` and If-Match disagree",
            ));
        }
        (_, Some(Err(_))) => {
            return Err(ApiError::bad_request(
                "invalid_fields",
                "If-Match must be a version number",
            ));
        }
        (None, None) => {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_REQUIRED,
                "version_required",
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
pub async fn realtime(_: Streamer, State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.engine.overlays().realtime())
}

/// `GET /o/{id}?sig=...` — the page OBS loads.
pub async fn page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    state
        .engine
        .overlays()
        .verify_link(
            &id,
            query.get("sig").map(String::as_str),
            query.get("exp").map(String::as_str),
        )
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, OVERLAY_CSP),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        OVERLAY_HTML,
    )
        .into_response())
}

/// `GET /overlay-assets/{file}` — the page's script and stylesheet (no secrets in them).
pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "overlay.js" => (OVERLAY_JS, "text/javascript; charset=utf-8"),
        "overlay.css" => (OVERLAY_CSS, "text/css; charset=utf-8"),
        "lightweight-charts.js" => (CHART_JS, "text/javascript; charset=utf-8"),
        _ => return ApiError::not_found().into_response(),
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
