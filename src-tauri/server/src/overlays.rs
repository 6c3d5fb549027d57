//! Overlay routes: the streamer's API for overlays themselves (`/api/overlays…`, with the
//! spec's `/overlays…` as aliases) and what OBS loads (the signed page, its assets and its
//! socket, which lives in `overlay_socket`). What is shown on an overlay is in `scenes`.

use std::collections::HashMap;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use stagehand_engine::overlays::{Overlay, OverlayChanges};

use crate::auth::Streamer;
use crate::error::ApiError;
use crate::overlay_socket;
use crate::state::AppState;

/// The overlay routes.
///
/// `/overlays` and `/overlays/{id}` are the paths the spec names: they stay as aliases that
/// answer exactly as `/api/overlays` and `/api/overlays/{id}` do (the same handlers), for
/// scripts written against the spec. New clients use the `/api/` paths.
pub fn routes() -> Router<AppState> {
    let collection = || -> MethodRouter<AppState> { get(list).post(create) };
    let one = || -> MethodRouter<AppState> { get(get_one).patch(update).delete(delete) };
    Router::new()
        .route("/api/overlays", collection())
        .route("/api/overlays/{id}", one())
        .route("/overlays", collection())
        .route("/overlays/{id}", one())
        .route("/api/overlays/rotate-key", post(rotate_key))
        .route("/o/{id}", get(page))
        .route("/overlay-assets/{file}", get(asset))
        .route("/ws/overlay/{id}", get(overlay_socket::upgrade))
}

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
        Some(_) => Err(ApiError::invalid_fields(
            "expires_in must be between 1 second and 1 year",
        )),
    }
}

/// `POST /api/overlays` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateOverlay {
    name: String,
    width: Option<u32>,
    height: Option<u32>,
    #[serde(rename = "expiresInSeconds")]
    expires_in: Option<u64>,
}

/// `POST /api/overlays`
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

/// `GET /api/overlays`
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

/// `GET /api/overlays/{id}`
pub async fn get_one(
    _: Streamer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<LinkQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid_query(&e))?;
    let exp = expiry(&state, q.expires_in)?;
    let overlay = state.engine.overlays().get(&id).await?;
    Ok(Json(with_link(&state, &overlay, exp)))
}

/// `PATCH /api/overlays/{id}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateOverlay {
    name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
}

/// `PATCH /api/overlays/{id}`
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

/// `DELETE /api/overlays/{id}`
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
