//! `WS /ws/events`: the engine's event bus for the streamer's panel.
//!
//! The guard has already checked Host and Origin; this checks the streamer's credentials,
//! sends a `hello`, then forwards events until either side closes or the server shuts down.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use stagehand_protocol::ErrorCode;
use tokio::sync::broadcast::error::RecvError;

use crate::auth::{Streamer, token_header};
use crate::cookies;
use crate::error::ApiError;
use crate::state::AppState;

/// The streamer's event socket.
pub fn routes() -> Router<AppState> {
    Router::new().route("/ws/events", get(events))
}

/// How often a cookie-authenticated socket re-checks that its session still exists.
const SESSION_RECHECK: Duration = Duration::from_secs(15);

/// Maps a failed upgrade (no Upgrade header, wrong version) to the JSON error shape, and sizes
/// the socket for what Stagehand's sockets carry: small JSON messages. tungstenite's defaults
/// (128 KiB read and write buffers per socket) would cost more than everything else a
/// connected overlay page holds; incoming messages are capped so a page cannot send megabytes.
pub fn upgrade_or_error(
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<WebSocketUpgrade, ApiError> {
    upgrade_sized(upgrade, 64 * 1024)
}

/// Like [`upgrade_or_error`], accepting incoming messages up to `max_message` bytes (the
/// moderator panel sends whole scenes).
pub fn upgrade_sized(
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    max_message: usize,
) -> Result<WebSocketUpgrade, ApiError> {
    upgrade
        .map(|u| {
            u.read_buffer_size(4 * 1024)
                .write_buffer_size(0)
                .max_message_size(max_message)
                .max_frame_size(max_message)
        })
        .map_err(|e| ApiError::new(ErrorCode::UpgradeRequired, e.body_text()))
}

/// Upgrades to the event stream.
pub async fn events(
    _: Streamer,
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    // A socket opened with the session cookie ends when the session does (sign-out, expiry);
    // one opened with the token lives as long as the token.
    let session = match token_header(&headers) {
        Some(_) => None,
        None => cookies::session(&headers).map(str::to_owned),
    };
    Ok(upgrade_or_error(upgrade)?.on_upgrade(move |socket| forward(socket, state, session)))
}

async fn forward(socket: WebSocket, state: AppState, session: Option<String>) {
    let (mut tx, mut rx) = socket.split();
    let mut events = state.engine.events().subscribe();
    let mut shutdown = state.shutdown.clone();
    let mut recheck = tokio::time::interval_at(
        tokio::time::Instant::now() + SESSION_RECHECK,
        SESSION_RECHECK,
    );
    let hello = serde_json::json!({
        "type": "hello",
        "ts": stagehand_engine::clock::rfc3339(state.engine.now_ms()),
        "data": { "protocol": stagehand_protocol::PROTOCOL_VERSION },
    });
    if tx
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(event) => {
                    let Ok(text) = serde_json::to_string(&event) else { continue };
                    if tx.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    let note = serde_json::json!({"type": "events.lagged", "data": {"missed": missed}});
                    if tx.send(Message::Text(note.to_string().into())).await.is_err() {
                        break;
                    }
                }
                Err(RecvError::Closed) => break,
            },
            incoming = rx.next() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            _ = recheck.tick() => {
                if let Some(session) = &session
                    && !matches!(state.engine.check_session(session).await, Ok(true))
                {
                    let _ = tx
                        .send(Message::Close(Some(CloseFrame { code: 4401, reason: "signed out".into() })))
                        .await;
                    break;
                }
            }
            _ = shutdown.changed() => {
                let _ = tx
                    .send(Message::Close(Some(CloseFrame { code: 1001, reason: "server shutting down".into() })))
                    .await;
                break;
            }
        }
    }
}
