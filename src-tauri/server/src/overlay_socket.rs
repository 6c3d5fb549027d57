//! `WS /ws/overlay/{id}?sig=...`: the live channel of one overlay page.
//!
//! The signature is checked before anything is sent; a refused link gets the socket closed
//! with code 4403 and the reason, so the page can stop reconnecting and say why. An accepted
//! page gets `scene.full` at once, then everything queued for it by the hub: scene changes as
//! `scene.full` or `scene.patch`, and events. If its queue overflowed it gets a fresh
//! `scene.full` instead of what it missed; a page that finds a gap in its versions asks for one
//! with `resync`. Pings every 15 s; a page silent for 45 s is dropped.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use stagehand_engine::EngineError;
use stagehand_engine::overlays::Overlay;
use stagehand_engine::protocol::overlay::FromPage;
use tokio::time::{Instant, interval_at};

use crate::error::ApiError;
use crate::state::AppState;

const PING_EVERY: Duration = Duration::from_secs(15);
const SILENT_LIMIT: Duration = Duration::from_secs(45);
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Upgrades, then checks the link.
pub async fn upgrade(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let upgrade = crate::ws::upgrade_or_error(upgrade)?;
    let verdict = state
        .engine
        .overlays()
        .verify_link(
            &id,
            query.get("sig").map(String::as_str),
            query.get("exp").map(String::as_str),
        )
        .await;
    Ok(upgrade.on_upgrade(move |socket| run(socket, state, verdict)))
}

/// Sends a close frame, then waits (briefly) for the peer's reply so the TCP connection ends
/// with a clean closing handshake instead of a reset.
async fn close(
    tx: &mut SplitSink<WebSocket, Message>,
    rx: &mut SplitStream<WebSocket>,
    code: u16,
    reason: &str,
) {
    let sent = tx
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.to_owned().into(),
        })))
        .await;
    if sent.is_ok() {
        let _ = tokio::time::timeout(CLOSE_GRACE, async {
            while let Some(Ok(message)) = rx.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
}

/// Sends the stored scene whole and notes its version in `shown`.
async fn send_full(
    state: &AppState,
    overlay_id: &str,
    tx: &mut SplitSink<WebSocket, Message>,
    shown: &mut i64,
) -> Result<(), ()> {
    let overlay = state
        .engine
        .overlays()
        .get(overlay_id)
        .await
        .map_err(|_| ())?;
    let scene = state
        .engine
        .overlays()
        .scene(overlay_id)
        .await
        .map_err(|_| ())?;
    *shown = scene.version;
    let message = state.engine.overlays().scene_full_message(&overlay, &scene);
    tx.send(Message::Text(message.as_ref().into()))
        .await
        .map_err(|_| ())
}

async fn run(socket: WebSocket, state: AppState, verdict: Result<Overlay, EngineError>) {
    let (mut tx, mut rx) = socket.split();
    let overlay = match verdict {
        Ok(overlay) => overlay,
        Err(e) => {
            let reason = match &e {
                EngineError::Overlay(o) => o.to_string(),
                _ => "the overlay cannot be checked right now".to_owned(),
            };
            tracing::info!(reason = %reason, "refused an overlay socket");
            close(&mut tx, &mut rx, 4403, &reason).await;
            return;
        }
    };
    let mut page = state.engine.overlays().page_open(&overlay.overlay_id);
    let mut shutdown = state.shutdown.clone();
    let mut last_heard = Instant::now();
    let mut ping = interval_at(Instant::now() + PING_EVERY, PING_EVERY);

    // The scene version this socket last sent: queued scene messages it covers are skipped.
    let mut shown = 0;
    let mut ready = send_full(&state, &overlay.overlay_id, &mut tx, &mut shown).await;
    // Alerts accepted just before a restart, announced while no page was connected yet.
    for message in state.engine.overlay_backlog(&overlay.overlay_id) {
        if ready.is_ok() {
            ready = tx
                .send(Message::Text(message.as_ref().into()))
                .await
                .map_err(|_| ());
        }
    }
    if ready.is_ok() {
        loop {
            tokio::select! {
                biased;
                reason = &mut page.closed => {
                    if let Ok(reason) = reason {
                        close(&mut tx, &mut rx, reason.code, reason.reason).await;
                    }
                    break;
                }
                queued = page.rx.recv() => {
                    let Some(message) = queued else {
                        // The hub dropped this page; it sent the reason just before.
                        if let Ok(reason) = page.closed.try_recv() {
                            close(&mut tx, &mut rx, reason.code, reason.reason).await;
                        }
                        break;
                    };
                    let mut sent = Ok(());
                    if page.state.needs_resync.swap(false, Ordering::AcqRel) {
                        sent = send_full(&state, &overlay.overlay_id, &mut tx, &mut shown).await;
                    }
                    if sent.is_ok() && message.still_news(&mut shown) {
                        sent = tx
                            .send(Message::Text(message.text.as_ref().into()))
                            .await
                            .map_err(|_| ());
                    }
                    if sent.is_err() {
                        break;
                    }
                }
                incoming = rx.next() => {
                    last_heard = Instant::now();
                    match incoming {
                        Some(Ok(Message::Text(text))) => {
                            if from_page(&state, &page, &overlay.overlay_id, &text) == Asked::Resync
                                && send_full(&state, &overlay.overlay_id, &mut tx, &mut shown)
                                    .await
                                    .is_err()
                            {
                                break;
                            }
                        }
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                        Some(Ok(_)) => {}
                    }
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() > SILENT_LIMIT {
                        tracing::info!(overlay = %overlay.overlay_id, "dropped a silent overlay page");
                        break;
                    }
                    if tx.send(Message::Ping(Vec::new().into())).await.is_err() {
                        break;
                    }
                }
                _ = shutdown.changed() => {
                    close(&mut tx, &mut rx, 1001, "Stagehand is shutting down").await;
                    break;
                }
            }
        }
    }
    state
        .engine
        .overlays()
        .page_closed(&overlay.overlay_id, page.id);
}

/// What a page's message asks of its socket.
#[derive(Debug, PartialEq, Eq)]
enum Asked {
    Nothing,
    /// The page missed a version: send it the whole scene.
    Resync,
}

/// Handles a message from a page: `applied`, `alert.seen` or `resync`.
fn from_page(
    state: &AppState,
    page: &stagehand_engine::overlays::hub::PageConnection,
    overlay_id: &str,
    text: &str,
) -> Asked {
    let Ok(message) = serde_json::from_str::<FromPage>(text) else {
        return Asked::Nothing;
    };
    match message {
        FromPage::Applied { version } => {
            state
                .engine
                .overlays()
                .applied(overlay_id, &page.state, version);
        }
        FromPage::AlertSeen { id } if id.len() <= 64 => {
            let engine = state.engine.clone();
            tokio::spawn(async move {
                if let Err(e) = engine.webhook_alert_seen(&id).await {
                    tracing::warn!(error = %e, "could not record that a page has an alert");
                }
            });
        }
        FromPage::Resync => return Asked::Resync,
        FromPage::AlertSeen { .. } | FromPage::Other => {}
    }
    Asked::Nothing
}
