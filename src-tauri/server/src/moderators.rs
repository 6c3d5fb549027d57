//! Moderator doors: generating links (streamer), opening them (anyone with the key, rate
//! limited), the panel page and its socket (moderator session), listing and revoking sessions
//! (streamer). Scopes are enforced by the engine; this only finds out who is asking.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Deserializer};
use stagehand_engine::EngineError;
use stagehand_engine::moderators::{ModeratorAction, ModeratorSession, Via};
use stagehand_protocol::ErrorCode;

use crate::auth::Streamer;
use crate::cookies::{self, CookieScope};
use crate::error::ApiError;
use crate::extract::FormOrJson;
use crate::guard::Relayed;
use crate::pages::PAGE_CSP;
use crate::state::AppState;

const PING_EVERY: Duration = Duration::from_secs(15);

/// The moderator routes: links, sessions, the panel and its socket.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/moderator-keys/generate", post(generate))
        .route("/api/moderator-keys/consume", post(consume))
        .route("/api/moderator-sessions", get(sessions))
        .route("/api/moderator-sessions/{id}", delete(revoke))
        .route("/m/{key}", get(link_page))
        .route("/moderator", get(panel))
        .route("/ws/moderator", get(socket))
}

/// Body of `POST /api/moderator-keys/generate`, as JSON or a form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateKey {
    label: String,
    #[serde(deserialize_with = "scope_list")]
    scopes: Vec<String>,
    #[serde(default, deserialize_with = "whole_number")]
    ttl_seconds: Option<u64>,
    #[serde(default)]
    streamer_id: Option<String>,
}

/// Scopes: a JSON array, repeated form fields, or one string; each string may hold several
/// scopes separated by commas or spaces.
fn scope_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let split = |s: &str| {
        s.split([',', ' '])
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    match OneOrMany::deserialize(d) {
        Ok(OneOrMany::One(s)) => Ok(split(&s)),
        Ok(OneOrMany::Many(list)) => Ok(list.iter().flat_map(|s| split(s)).collect()),
        Err(_) => Err(serde::de::Error::custom(
            "`scopes` is a list of strings or one string",
        )),
    }
}

/// A whole number, as a JSON number or its decimal text (a form field); `null` is none.
fn whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumberOrText {
        Number(u64),
        Text(String),
    }
    let invalid = || serde::de::Error::custom("`ttl_seconds` must be a whole number");
    match Option::<NumberOrText>::deserialize(d) {
        Ok(None) => Ok(None),
        Ok(Some(NumberOrText::Number(n))) => Ok(Some(n)),
        Ok(Some(NumberOrText::Text(s))) => s.parse().map(Some).map_err(|_| invalid()),
        Err(_) => Err(invalid()),
    }
}

/// `POST /api/moderator-keys/generate` — `{label, scopes, ttl_seconds?, streamer_id?}`.
pub async fn generate(
    _: Streamer,
    State(state): State<AppState>,
    FormOrJson { value: body, .. }: FormOrJson<GenerateKey>,
) -> Result<Response, ApiError> {
    let GenerateKey {
        label,
        scopes,
        ttl_seconds: ttl,
        streamer_id,
    } = body;
    let made = state
        .engine
        .moderator_key_generate(&label, &scopes, ttl, streamer_id)
        .await?;
    // With a relay configured, moderators anywhere get the relay's link; the local (or LAN)
    // one stays in the answer for someone in the same room.
    let local_link = format!("{}/m/{}", state.moderator_url, made.key.expose());
    let relay_link = state.engine.relay_moderator_link(made.key.expose());
    let link = relay_link.clone().unwrap_or_else(|| local_link.clone());
    let local_link = if state.moderator_url == state.local_url {
        local_link
    } else {
        format!("{}/m/{}", state.local_url, made.key.expose())
    };
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({
            "key": made.key.expose(),
            "link": link,
            "local_link": local_link,
            "relay_link": relay_link,
            "expires_at": stagehand_engine::clock::rfc3339(made.expires_ms),
            "scopes": made.scopes,
        })),
    )
        .into_response())
}

/// The path prefix of a moderator's pages: `/t/{tunnel}` through the relay, else nothing.
fn base(relayed: Option<&Relayed>) -> &str {
    relayed.map_or("", |r| r.door.prefix.as_str())
}

/// Where the moderator's session cookie applies: under the relay's tunnel path (and `Secure`
/// over TLS) when the moderator came through the relay.
fn cookie_scope(relayed: Option<&Relayed>) -> CookieScope<'_> {
    CookieScope {
        prefix: base(relayed),
        secure: relayed.is_some_and(|r| r.door.secure),
    }
}

fn refused_page(status: StatusCode, relayed: Option<&Relayed>) -> Response {
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
        ],
        Html(stagehand_ui::moderator_link_refused_page(base(relayed))),
    )
        .into_response()
}

/// Body of `POST /api/moderator-keys/consume`; other fields are ignored, and a missing key is
/// refused like a wrong one.
#[derive(Debug, Deserialize)]
pub struct ConsumeKey {
    #[serde(default)]
    key: Option<String>,
}

/// `POST /api/moderator-keys/consume` — form or JSON `key`; sets the session cookie.
pub async fn consume(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    relayed: Option<Extension<Relayed>>,
    body: Result<FormOrJson<ConsumeKey>, ApiError>,
) -> Result<Response, ApiError> {
    let relayed = relayed.map(|Extension(r)| r);
    let relayed = relayed.as_ref();
    // Through the relay the TCP peer is this engine; the relay names the moderator. Relayed
    // attempts whose address the relay did not give share a bucket of their own ("::"), never
    // the one of this machine's own browser.
    let client = match relayed {
        Some(r) => r
            .client
            .unwrap_or(std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)),
        None => peer.ip(),
    };
    if let Err(retry) = state.consume_limiter.check(client, state.engine.now_ms()) {
        return Ok(ApiError::rate_limited(retry));
    }
    let FormOrJson { value, form } = body?;
    let key = value.key.unwrap_or_default();
    let via = if relayed.is_some() {
        Via::Relay
    } else {
        Via::Local
    };
    match state
        .engine
        .moderator_key_consume(&key, Some(client.to_string()), via)
        .await
    {
        Ok(opened) => {
            let max_age = (opened.session.expires_ms - state.engine.now_ms()) / 1000;
            let mut response = if form {
                Redirect::to(&format!("{}/moderator", base(relayed))).into_response()
            } else {
                Json(serde_json::json!({
                    "session": opened.token.expose(),
                    "expires_at": opened.session.expires_at,
                    "scopes": opened.session.scopes,
                }))
                .into_response()
            };
            cookies::set_moderator(
                &mut response,
                opened.token.expose(),
                max_age,
                cookie_scope(relayed),
            )?;
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(response)
        }
        Err(EngineError::Moderator(_)) if form => {
            Ok(refused_page(StatusCode::UNAUTHORIZED, relayed))
        }
        Err(e) => Err(e.into()),
    }
}

/// `GET /m/{key}` — a page that opens the panel by posting the key (never consumed by a GET, so
/// link previews cannot burn it).
pub async fn link_page(Path(key): Path<String>, relayed: Option<Extension<Relayed>>) -> Response {
    let relayed = relayed.map(|Extension(r)| r);
    if key.len() > 128
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return refused_page(StatusCode::UNAUTHORIZED, relayed.as_ref());
    }
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
        ],
        Html(stagehand_ui::moderator_link_page(
            &key,
            base(relayed.as_ref()),
        )),
    )
        .into_response()
}

async fn moderator_from(
    state: &AppState,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<Option<ModeratorSession>, ApiError> {
    let token = cookies::moderator(headers).or_else(|| query.get("session").map(String::as_str));
    match token {
        Some(t) => Ok(state.engine.moderator_session(t).await?),
        None => Ok(None),
    }
}

/// `GET /moderator` — the panel, for a live moderator session.
pub async fn panel(
    State(state): State<AppState>,
    relayed: Option<Extension<Relayed>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let relayed = relayed.map(|Extension(r)| r);
    let prefix = base(relayed.as_ref()).to_owned();
    let Some(session) = moderator_from(&state, &headers, &HashMap::new()).await? else {
        // A cookie that no longer opens anything means access ended (revoked or expired);
        // no cookie at all means the link was never opened here.
        if cookies::moderator(&headers).is_some() {
            return Ok((
                StatusCode::UNAUTHORIZED,
                [
                    (header::CACHE_CONTROL, "no-store"),
                    (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
                ],
                Html(stagehand_ui::moderator_access_ended_page(&prefix)),
            )
                .into_response());
        }
        return Ok(refused_page(StatusCode::UNAUTHORIZED, relayed.as_ref()));
    };
    let view = stagehand_ui::ModeratorView {
        label: session.label.clone(),
        scopes: session
            .scopes
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect(),
        expires_at: session.expires_at.clone(),
        base: prefix,
    };
    Ok((
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
        ],
        Html(stagehand_ui::moderator_panel_page(&view)),
    )
        .into_response())
}

/// `GET /api/moderator-sessions`
pub async fn sessions(
    _: Streamer,
    State(state): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let sessions = state.engine.moderator_sessions().await?;
    Ok(Json(serde_json::json!({ "sessions": sessions })))
}

/// `DELETE /api/moderator-sessions/{id}`
pub async fn revoke(
    _: Streamer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.engine.moderator_session_revoke(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `WS /ws/moderator?session=...` (or the cookie).
pub async fn socket(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let max = state.engine.config().security.json_body_limit_bytes;
    let upgrade = crate::ws::upgrade_sized(upgrade, max)?;
    let session = moderator_from(&state, &headers, &query)
        .await?
        .ok_or_else(|| {
            ApiError::new(ErrorCode::SessionEnded, "this moderator session has ended")
        })?;
    Ok(upgrade.on_upgrade(move |socket| run(socket, state, session)))
}

async fn send_json(
    tx: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    value: serde_json::Value,
) -> Result<(), ()> {
    tx.send(Message::Text(value.to_string().into()))
        .await
        .map_err(|_| ())
}

async fn scene_message(state: &AppState, overlay_id: &str) -> Option<serde_json::Value> {
    let scene = state.engine.overlays().scene(overlay_id).await.ok()?;
    Some(serde_json::json!({
        "type": "scene.full",
        "overlayId": overlay_id,
        "version": scene.version,
        "scene": scene.scene,
    }))
}

async fn greet(
    state: &AppState,
    session: &ModeratorSession,
    tx: &mut futures_util::stream::SplitSink<WebSocket, Message>,
) -> Result<(), ()> {
    let overlays = state.engine.overlays().list().await.map_err(|_| ())?;
    let list: Vec<_> = overlays
        .iter()
        .map(|o| serde_json::json!({ "overlayId": o.overlay_id, "name": o.name, "width": o.width, "height": o.height }))
        .collect();
    send_json(
        tx,
        serde_json::json!({
            "type": "hello",
            "session": { "label": session.label, "scopes": session.scopes, "expiresAt": session.expires_at },
            "overlays": list,
        }),
    )
    .await?;
    if session.may(stagehand_engine::moderators::Scope::SceneEdit) {
        for o in &overlays {
            if let Some(message) = scene_message(state, &o.overlay_id).await {
                send_json(tx, message).await?;
            }
        }
    }
    Ok(())
}

/// Runs one action message and builds its `result`.
async fn act(state: &AppState, session: &ModeratorSession, text: &str) -> serde_json::Value {
    let mut value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return serde_json::json!({"type": "result", "ref": null, "ok": false,
                "error": {"code": "invalid_json", "message": e.to_string()}});
        }
    };
    let reference = value
        .as_object_mut()
        .and_then(|m| m.remove("ref"))
        .unwrap_or(serde_json::Value::Null);
    let action: ModeratorAction = match serde_json::from_value(value) {
        Ok(a) => a,
        Err(e) => {
            return serde_json::json!({"type": "result", "ref": reference, "ok": false,
                "error": {"code": "invalid_fields", "message": e.to_string()}});
        }
    };
    // The session may have ended since the socket opened.
    let live = state
        .engine
        .moderator_session_live(&session.id)
        .await
        .unwrap_or(false);
    let outcome = if live {
        state.engine.moderator_act(session, action).await
    } else {
        Err(stagehand_engine::moderators::ModeratorError::SessionEnded.into())
    };
    match outcome {
        Ok(mut result) => {
            if let Some(map) = result.as_object_mut() {
                map.insert("type".into(), "result".into());
                map.insert("ref".into(), reference);
                map.insert("ok".into(), true.into());
            }
            result
        }
        Err(e) => {
            let err = ApiError::from(e);
            let mut out = serde_json::json!({"type": "result", "ref": reference, "ok": false,
                "error": {"code": err.code, "message": err.message}});
            if let Some(current) = err.details.as_ref().and_then(|d| d.get("currentVersion"))
                && let Some(map) = out.as_object_mut()
            {
                map.insert("currentVersion".into(), current.clone());
            }
            if let Some(details) = err.details {
                out["error"]["details"] = details;
            }
            out
        }
    }
}

/// Whether the session is still live (store errors count as ended: fail closed).
async fn live(state: &AppState, session: &ModeratorSession) -> bool {
    state
        .engine
        .moderator_session_live(&session.id)
        .await
        .unwrap_or(false)
}

async fn run(socket: WebSocket, state: AppState, session: ModeratorSession) {
    let (mut tx, mut rx) = socket.split();
    let mut events = state.engine.events().subscribe();
    let mut revoked = state.engine.moderator_revocations();
    let mut shutdown = state.shutdown.clone();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    let left_ms = u64::try_from(session.expires_ms - state.engine.now_ms()).unwrap_or(0);
    let expiry = tokio::time::sleep(Duration::from_millis(left_ms));
    tokio::pin!(expiry);
    let edits = session.may(stagehand_engine::moderators::Scope::SceneEdit);
    if greet(&state, &session, &mut tx).await.is_err() {
        return;
    }
    let close = |code: u16, reason: &'static str| {
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))
    };
    loop {
        tokio::select! {
            incoming = rx.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let result = act(&state, &session, &text).await;
                    if send_json(&mut tx, result).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            event = events.recv() => match event {
                Ok(event) if edits && event.kind == "scene.updated" => {
                    // An ended session (revoked, expired by the engine's clock) sees nothing more.
                    if !live(&state, &session).await {
                        let _ = tx.send(close(4401, "access ended")).await;
                        break;
                    }
                    let Some(id) = event.data.get("overlayId").and_then(|v| v.as_str()) else { continue };
                    if let Some(message) = scene_message(&state, id).await
                        && send_json(&mut tx, message).await.is_err()
                    {
                        break;
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    // Missed updates: send every scene again.
                    if edits && greet(&state, &session, &mut tx).await.is_err() {
                        break;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
            id = revoked.recv() => {
                let ours = match &id {
                    Ok(id) => *id == session.id,
                    // Missed some revocations: ask the store whether ours was one.
                    Err(_) => !live(&state, &session).await,
                };
                if ours {
                    let _ = tx.send(close(4401, "access revoked by the streamer")).await;
                    break;
                }
            }
            () = &mut expiry => {
                let _ = tx.send(close(4401, "access expired")).await;
                break;
            }
            _ = ping.tick() => {
                if !live(&state, &session).await {
                    let _ = tx.send(close(4401, "access ended")).await;
                    break;
                }
                if tx.send(Message::Ping(Vec::new().into())).await.is_err() {
                    break;
                }
            }
            _ = shutdown.changed() => {
                let _ = tx.send(close(1001, "Stagehand is shutting down")).await;
                break;
            }
        }
    }
}
