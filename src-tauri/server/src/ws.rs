//! `WS /ws/events`: the engine's event bus for the streamer's panel.
//!
//! The guard has already checked Host and Origin; this checks the streamer's credentials,
//! sends a `hello`, then forwards events until either side closes or the server shuts down.

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use crate::AppState;
use crate::auth::Streamer;

/// Upgrades to the event stream.
pub async fn events(
    _: Streamer,
    State(state): State<AppState>,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade.on_upgrade(move |socket| forward(socket, state))
}

async fn forward(socket: WebSocket, state: AppState) {
    let (mut tx, mut rx) = socket.split();
    let mut events = state.engine.events().subscribe();
    let mut shutdown = state.shutdown.clone();
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
            _ = shutdown.changed() => {
                let _ = tx
                    .send(Message::Close(Some(CloseFrame { code: 1001, reason: "server shutting down".into() })))
                    .await;
                break;
            }
        }
    }
}
