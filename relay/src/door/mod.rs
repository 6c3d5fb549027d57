//! The moderator door: `/t/{tunnel_id}/…` carries the moderator panel — and nothing else —
//! to the streamer's engine over the link it keeps open, so moderators anywhere can use a
//! one-time link without the streamer forwarding a port.
//!
//! Checks run before anything reaches the engine: the tunnel exists, the path is on the moderator
//! surface ([`moderator_surface`](stagehand_protocol::relay::moderator_surface); everything else is
//! 404 here), the method, the Origin (a browser's must be this relay's own name), the tunnel's
//! request rate and the body size. Then the request becomes a stream on the link (protocol in
//! [`stagehand_protocol::relay`]): bodies and WebSocket messages flow in both directions within
//! per-stream credit windows, so a moderator who stops reading holds up only their own stream.
//! Nothing is stored. Without an engine linked, the answer is at once a page saying the streamer's
//! app is offline.
//!
//! The door is split along its stages: `admit` runs the checks, `forward` carries an admitted
//! request to the engine and its answer back (filtering the engine's response headers), and
//! `pump` carries a moderator's WebSocket both ways once the engine accepts the upgrade. The
//! stream they share, and the offline answer, live here.

mod admit;
mod forward;
mod pump;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use stagehand_protocol::relay::{EngineMessage, RelayMessage, StreamClose, StreamId, StreamWindow};
use tokio::sync::mpsc;

use crate::Relay;
use crate::error::ApiError;
use crate::link::{LinkShared, Pending};

use self::admit::admit;
use self::forward::forward;

/// WebSocket close code for "the streamer's app went offline; try again later".
pub const CLOSE_OFFLINE: u16 = 1013;

/// `/t/{tunnel_id}/{*path}`, any method; every outcome is counted for `/metrics`.
pub(crate) async fn door(
    State(relay): State<Relay>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((tunnel_id, path)): Path<(String, String)>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    request: Request,
) -> Response {
    let path = format!("/{path}");
    let response = match admit(&relay, peer, &tunnel_id, &path, &request) {
        Err(refusal) => refusal.into_response(&path),
        Ok(admitted) => forward(&relay, admitted, path, upgrade.ok(), request).await,
    };
    relay.metrics().door(response.status().as_u16());
    response
}

/// The answer while no engine is linked: a page for people, JSON for the panel's scripts.
fn offline(path: &str) -> Response {
    let mut response = if path.starts_with("/api/") || path.starts_with("/ws/") {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "streamer_offline",
            "the streamer's Stagehand app is offline; try again when it is running",
        )
        .into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Html(OFFLINE_PAGE)).into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        HeaderName::from_static("x-stagehand-offline"),
        HeaderValue::from_static("1"),
    );
    response
}

/// Shown when the streamer's app is not linked; it looks again every ten seconds.
const OFFLINE_PAGE: &str = r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark"><meta http-equiv="refresh" content="10">
<title>The streamer's app is offline · Stagehand</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem}</style>
</head><body><main>
<h1 id="offline">The streamer's app is offline</h1>
<p>Stagehand is not running on the streamer's computer right now, or it cannot reach this relay.
This page tries again every ten seconds; your link still works once the app is back.</p>
</main></body></html>
"#;

/// The door's end of one stream; forgetting it on drop tells the engine to stop.
struct Stream {
    id: StreamId,
    link: Arc<LinkShared>,
    rx: mpsc::UnboundedReceiver<EngineMessage>,
    /// Bytes received for the moderator and not yet written to them.
    pending: Pending,
    /// Set once either side has ended the stream: nothing more to tell the engine.
    done: bool,
}

impl Stream {
    /// A new stream on `link`; `None` when it has `max` open already.
    fn open(link: Arc<LinkShared>, max: usize) -> Option<Self> {
        let (id, rx, pending) = link.open_stream(max)?;
        Some(Self {
            id,
            link,
            rx,
            pending,
            done: false,
        })
    }
}

/// `bytes` of stream `id` were written to the moderator: returns that much credit to the
/// engine.
fn credit(link: &LinkShared, id: StreamId, pending: &Pending, bytes: usize) {
    pending.written(bytes);
    if bytes > 0 {
        link.to_engine_soon(RelayMessage::Window(StreamWindow {
            stream: id,
            bytes: u32::try_from(bytes).unwrap_or(u32::MAX),
        }));
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.link.forget_stream(self.id);
        self.pending.forget();
        if !self.done {
            self.link.to_engine_soon(RelayMessage::Close(StreamClose {
                stream: self.id,
                code: None,
                reason: "the moderator went away".into(),
            }));
        }
    }
}
