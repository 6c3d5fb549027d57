//! The moderator panel's socket, `WS /ws/moderator`: admission (a live session), then one
//! loop that greets the moderator with the overlays and scenes their scopes allow, runs their
//! actions, forwards scene updates, and closes on revocation (4401), expiry and shutdown
//! (1001). The loop runs over any socket: axum's local WebSocket, or a relayed one from the
//! relay's door (`relayed_socket`), so both doors behave as one.

use std::collections::HashMap;
use std::time::Duration;

use axum::Extension;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use stagehand_engine::moderators::{ModeratorAction, ModeratorSession};
use stagehand_protocol::ErrorCode;

use crate::auth;
use crate::error::ApiError;
use crate::relayed_socket::RelayedUpgrade;
use crate::state::AppState;

const PING_EVERY: Duration = Duration::from_secs(15);

/// Where a moderator's socket comes from: a local (or LAN) connection, or the relay.
enum SocketDoor {
    Local(WebSocketUpgrade),
    Relayed(RelayedUpgrade),
}

/// `WS /ws/moderator?session=...` (or the cookie), locally or through the relay: the same
/// checks, then the same loop ([`run`]) over either socket.
pub async fn socket(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    relayed: Option<Extension<RelayedUpgrade>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let max = state.engine.config().security.json_body_limit_bytes;
    let door = match relayed {
        Some(Extension(relayed)) => SocketDoor::Relayed(relayed),
        None => SocketDoor::Local(crate::ws::upgrade_sized(upgrade, max)?),
    };
    let session = auth::moderator(&state, &headers, &query)
        .await?
        .ok_or_else(|| {
            ApiError::new(ErrorCode::SessionEnded, "this moderator session has ended")
        })?;
    Ok(match door {
        SocketDoor::Local(upgrade) => upgrade.on_upgrade(move |socket| run(socket, state, session)),
        SocketDoor::Relayed(relayed) => {
            relayed.on_upgrade(move |socket| run(socket, state, session))
        }
    })
}

async fn send_json(
    tx: &mut (impl Sink<Message> + Unpin),
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
    tx: &mut (impl Sink<Message> + Unpin),
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

/// The moderator socket's loop, over any socket: axum's local WebSocket or a relayed one
/// (`relayed_socket`). Admission (session, scopes, origin) happened before; audit says `via` as
/// the session was opened.
async fn run<S, E>(socket: S, state: AppState, session: ModeratorSession)
where
    S: Stream<Item = Result<Message, E>> + Sink<Message> + Send,
{
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
