//! Webhook doors: the endpoints senders post to (`POST /webhooks/tradingview`,
//! `POST /webhooks/custom/{name}`) and the streamer's settings under `/api/webhooks`.
//!
//! The receiving routes hand the raw request to [`Engine::webhook_receive`] — the same
//! operation the relay link calls — and map its outcome: accepted and duplicate are `200`
//! (`{"status":"accepted","deliveryId":..,"alertId":..}` / `{"status":"duplicate"}`), a
//! refusal is its 4xx with the refusal's stable code. Bodies over 256 KiB are `413
//! payload_too_large` before the engine sees them. Query strings (which may carry the URL
//! token) are never logged: the request log records only the route template.
//!
//! [`Engine::webhook_receive`]: stagehand_engine::Engine::webhook_receive

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use stagehand_engine::webhooks::{
    MAX_BODY_BYTES, TradingViewSecretKind, TradingViewSettings, WebhookOutcome, WebhookRequest,
    WebhookVia,
};

use crate::auth::Streamer;
use crate::error::{ApiError, webhook_refusal};
use crate::state::AppState;

/// The webhook routes: the receivers senders post to, with their own body limit, and the
/// streamer's settings.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/webhooks/tradingview", post(receive).layer(body_limit()))
        .route("/webhooks/custom/{name}", post(receive).layer(body_limit()))
        .route("/api/webhooks", get(overview))
        .route("/api/webhooks/deliveries", get(deliveries))
        .route("/api/webhooks/tradingview", put(tradingview_configure))
        .route(
            "/api/webhooks/tradingview/secrets",
            get(tradingview_secrets),
        )
        .route(
            "/api/webhooks/tradingview/secrets/{which}",
            delete(tradingview_clear),
        )
        .route("/api/webhooks/tradingview/rotate", post(tradingview_rotate))
        .route("/api/webhooks/custom", post(custom_create))
        .route("/api/webhooks/custom/{name}", delete(custom_delete))
        .route("/api/webhooks/custom/{name}/rotate", post(custom_rotate))
}

/// The body limit of the receiving routes.
fn body_limit() -> DefaultBodyLimit {
    DefaultBodyLimit::max(MAX_BODY_BYTES)
}

/// `POST /webhooks/tradingview` and `POST /webhooks/custom/{name}`.
pub async fn receive(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body?;
    let request = WebhookRequest {
        path: uri.path().trim_start_matches('/').to_owned(),
        query: uri.query().unwrap_or("").to_owned(),
        headers: headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
        body: body.to_vec(),
        remote_addr: Some(peer.ip().to_string()),
        via: WebhookVia::Local,
    };
    match state.engine.webhook_receive(request).await? {
        WebhookOutcome::Accepted {
            delivery_id,
            alert_id,
            ..
        } => Ok(Json(serde_json::json!({
            "status": "accepted",
            "deliveryId": delivery_id,
            "alertId": alert_id,
        }))
        .into_response()),
        WebhookOutcome::Duplicate => {
            Ok(Json(serde_json::json!({ "status": "duplicate" })).into_response())
        }
        WebhookOutcome::Refused {
            delivery_id,
            refusal,
        } => Err(webhook_refusal(&refusal, delivery_id)),
    }
}

fn no_store(value: serde_json::Value) -> Response {
    let mut response = Json(value).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /api/webhooks` — where to send webhooks and which credentials are configured.
pub async fn overview(
    _: Streamer,
    State(state): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let overview = state.engine.webhooks_overview().await?;
    let mut value = serde_json::to_value(&overview).unwrap_or_default();
    value["tradingview"]["url"] =
        format!("{}{}", state.local_url, overview.tradingview.path).into();
    value["tradingview"]["relayUrl"] = state
        .engine
        .relay_hook_url(&overview.tradingview.path)
        .into();
    if let Some(list) = value["custom"].as_array_mut() {
        for (entry, endpoint) in list.iter_mut().zip(&overview.custom) {
            entry["url"] = format!("{}{}", state.local_url, endpoint.path).into();
            entry["relayUrl"] = state.engine.relay_hook_url(&endpoint.path).into();
        }
    }
    Ok(Json(value))
}

/// Query of `GET /api/webhooks/deliveries`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    limit: Option<u32>,
}

/// `GET /api/webhooks/deliveries?limit=` — recent deliveries, newest first.
pub async fn deliveries(
    _: Streamer,
    State(state): State<AppState>,
    query: Result<Query<DeliveriesQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid_query(&e))?;
    let list = state
        .engine
        .webhook_deliveries(q.limit.unwrap_or(50))
        .await?;
    Ok(Json(serde_json::json!({ "deliveries": list })))
}

/// Body of `PUT /api/webhooks/tradingview`; absent fields take their defaults.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TradingViewBody {
    overlay_id: Option<String>,
    title: Option<String>,
    message: Option<String>,
    chart: Option<bool>,
}

/// `PUT /api/webhooks/tradingview` — how TradingView alerts are shown.
pub async fn tradingview_configure(
    _: Streamer,
    State(state): State<AppState>,
    json: Result<Json<TradingViewBody>, JsonRejection>,
) -> Result<Json<TradingViewSettings>, ApiError> {
    let Json(body) = json?;
    let defaults = TradingViewSettings::default();
    let saved = state
        .engine
        .webhook_tradingview_configure(TradingViewSettings {
            overlay_id: body.overlay_id,
            title: body.title.unwrap_or(defaults.title),
            message: body.message.unwrap_or(defaults.message),
            chart: body.chart.unwrap_or(defaults.chart),
        })
        .await?;
    Ok(Json(saved))
}

/// `GET /api/webhooks/tradingview/secrets` — reveals the URL token (and the URL with it), the
/// HMAC secret and the passphrase. Audited.
pub async fn tradingview_secrets(
    _: Streamer,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    let secrets = state.engine.webhook_tradingview_secrets().await?;
    Ok(no_store(serde_json::json!({
        "token": secrets.token.expose(),
        "url": format!("{}/webhooks/tradingview?token={}", state.local_url, secrets.token.expose()),
        "hmacSecret": secrets.hmac_secret.as_ref().map(|s| s.expose()),
        "passphrase": secrets.passphrase.as_ref().map(|s| s.expose()),
    })))
}

/// Body of `POST /api/webhooks/tradingview/rotate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    which: String,
}

fn secret_kind(which: &str) -> Result<TradingViewSecretKind, ApiError> {
    TradingViewSecretKind::parse(which)
        .ok_or_else(|| ApiError::invalid_fields("`which` must be token, hmac or passphrase"))
}

/// `POST /api/webhooks/tradingview/rotate` — `{which: token|hmac|passphrase}`; a new random
/// value, returned once.
pub async fn tradingview_rotate(
    _: Streamer,
    State(state): State<AppState>,
    json: Result<Json<RotateBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = json?;
    let which = secret_kind(&body.which)?;
    let value = state.engine.webhook_tradingview_rotate(which).await?;
    Ok(no_store(serde_json::json!({
        "which": which.as_str(),
        "value": value.expose(),
    })))
}

/// `DELETE /api/webhooks/tradingview/secrets/{which}` — removes the HMAC secret or the
/// passphrase.
pub async fn tradingview_clear(
    _: Streamer,
    State(state): State<AppState>,
    Path(which): Path<String>,
) -> Result<StatusCode, ApiError> {
    let which = secret_kind(&which)?;
    state.engine.webhook_tradingview_clear(which).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /api/webhooks/custom`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CustomBody {
    name: String,
    overlay_id: Option<String>,
    title: String,
    #[serde(default)]
    message: String,
}

/// `POST /api/webhooks/custom` — `{name, overlayId?, title, message}`; 201 with the secret,
/// shown this once.
pub async fn custom_create(
    _: Streamer,
    State(state): State<AppState>,
    json: Result<Json<CustomBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = json?;
    let made = state
        .engine
        .webhook_custom_create(&body.name, body.overlay_id, &body.title, &body.message)
        .await?;
    let mut value = serde_json::to_value(&made.endpoint).unwrap_or_default();
    value["url"] = format!("{}/webhooks/custom/{}", state.local_url, made.endpoint.name).into();
    value["secret"] = made.secret.expose().into();
    let mut response = no_store(value);
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

/// `DELETE /api/webhooks/custom/{name}`
pub async fn custom_delete(
    _: Streamer,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.engine.webhook_custom_delete(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/webhooks/custom/{name}/rotate` — a new secret, returned once.
pub async fn custom_rotate(
    _: Streamer,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let secret = state.engine.webhook_custom_rotate(&name).await?;
    Ok(no_store(
        serde_json::json!({ "name": name, "secret": secret.expose() }),
    ))
}
