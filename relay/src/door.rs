//! The moderator door: `/t/{tunnel_id}/…` carries the moderator panel — and nothing else —
//! to the streamer's engine over the link it keeps open, so moderators anywhere can use a
//! one-time link without the streamer forwarding a port.
//!
//! Checks run before anything reaches the engine: the tunnel exists, the path is on the
//! moderator surface ([`moderator_surface`]; everything else is 404 here), the method, the
//! Origin (a browser's must be this relay's own name), the tunnel's request rate and the body
//! size. Then the request becomes a stream on the link (protocol in
//! [`stagehand_protocol::relay`]): bodies and WebSocket messages flow in both directions
//! within per-stream credit windows, so a moderator who stops reading holds up only their own
//! stream. Nothing is stored. Without an engine linked, the answer is at once a page saying the
//! streamer's app is offline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::{SinkExt as _, StreamExt as _};
use stagehand_protocol::relay::{
    EngineMessage, HttpRequest, HttpResponse, RelayMessage, STREAM_CHUNK, STREAM_WINDOW,
    StreamClose, StreamData, StreamWindow, StreamWsMessage, TUNNELLED_REQUEST_HEADERS,
    moderator_surface,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::Relay;
use crate::error::ApiError;
use crate::link::LinkShared;

/// WebSocket close code for "the streamer's app went offline; try again later".
pub const CLOSE_OFFLINE: u16 = 1013;

/// Response headers never passed on: they describe one connection, not the answer.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "content-length",
];

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
        Err(refusal) => *refusal,
        Ok(admitted) => forward(&relay, admitted, path, upgrade.ok(), request).await,
    };
    relay.metrics().door(response.status().as_u16());
    response
}

/// What a request that passed the door's checks carries on.
struct Admitted {
    link: Arc<LinkShared>,
    client: String,
}

fn admit(
    relay: &Relay,
    peer: SocketAddr,
    tunnel_id: &str,
    path: &str,
    request: &Request,
) -> Result<Admitted, Box<Response>> {
    // An unknown tunnel and a path off the surface get the same 404: the door reveals nothing
    // about what lies behind it.
    let tunnel = relay
        .tunnel(tunnel_id)
        .filter(|_| moderator_surface(path))
        .ok_or_else(|| Box::new(ApiError::not_found().into_response()))?;
    let method = request.method();
    if ![Method::GET, Method::HEAD, Method::POST].contains(method) {
        return Err(Box::new(
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "the moderator panel only uses GET, HEAD and POST",
            )
            .into_response(),
        ));
    }
    let headers = request.headers();
    if (method == Method::POST || is_upgrade(headers)) && !same_origin(headers) {
        return Err(Box::new(
            ApiError::new(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "requests from other sites are not accepted",
            )
            .into_response(),
        ));
    }
    let door = &relay.config().door;
    if let Err(retry_after) = tunnel.take_door_token(
        door.rate_per_sec,
        door.rate_burst,
        relay.config().clock.now_ms(),
    ) {
        let mut e = ApiError::rate_limited(retry_after);
        e.message = "too many requests for this streamer's moderator panel; retry later".into();
        return Err(Box::new(e.into_response()));
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > door.max_body_bytes as u64) {
        return Err(Box::new(
            ApiError::body_too_large(door.max_body_bytes).into_response(),
        ));
    }
    let link = tunnel
        .link
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .ok_or_else(|| Box::new(offline(path)))?;
    let client = crate::hooks::client_ip(peer.ip(), headers, &relay.config().trusted_proxies);
    Ok(Admitted {
        link,
        client: client.to_string(),
    })
}

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// A browser's Origin must name this relay as the browser reached it (its Host); a client
/// that sends no Origin is not a browser page and passes.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let authority = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .filter(|(scheme, _)| matches!(*scheme, "http" | "https"))
        .map(|(_, rest)| rest.trim_end_matches('/'));
    matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
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
    id: u64,
    link: Arc<LinkShared>,
    rx: mpsc::UnboundedReceiver<EngineMessage>,
    /// Set once either side has ended the stream: nothing more to tell the engine.
    done: bool,
}

impl Stream {
    fn open(link: Arc<LinkShared>) -> Self {
        let (id, rx) = link.open_stream();
        Self {
            id,
            link,
            rx,
            done: false,
        }
    }

    /// Returns `bytes` of credit to the engine.
    fn credit(&self, bytes: usize) {
        if bytes > 0 {
            self.link.to_engine_soon(RelayMessage::Window(StreamWindow {
                stream: self.id,
                bytes: u32::try_from(bytes).unwrap_or(u32::MAX),
            }));
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.link.forget_stream(self.id);
        if !self.done {
            self.link.to_engine_soon(RelayMessage::Close(StreamClose {
                stream: self.id,
                code: None,
                reason: "the moderator went away".into(),
            }));
        }
    }
}

async fn forward(
    relay: &Relay,
    admitted: Admitted,
    path: String,
    upgrade: Option<WebSocketUpgrade>,
    request: Request,
) -> Response {
    let door = relay.config().door.clone();
    let (parts, body) = request.into_parts();
    let websocket = upgrade.is_some();
    let body = if websocket || parts.method != Method::POST {
        Bytes::new()
    } else {
        match read_body(body, door.max_body_bytes).await {
            Ok(body) => body,
            Err(e) => return e.into_response(),
        }
    };
    let headers = parts
        .headers
        .iter()
        .filter(|(name, _)| TUNNELLED_REQUEST_HEADERS.contains(&name.as_str()))
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    let mut stream = Stream::open(Arc::clone(&admitted.link));
    let opened = RelayMessage::HttpRequest(HttpRequest {
        stream: stream.id,
        method: parts.method.as_str().to_owned(),
        path: path.clone(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers,
        client: Some(admitted.client),
        websocket,
        has_body: !body.is_empty(),
    });
    if !stream.link.to_engine(opened).await {
        return offline(&path);
    }
    // A body is at most the door's limit; the engine takes it within its window unless the
    // limit was raised past it, in which case the chunks wait for credit.
    let mut credit = i64::from(STREAM_WINDOW);
    let chunks: Vec<Bytes> = body
        .chunks(STREAM_CHUNK)
        .map(Bytes::copy_from_slice)
        .collect();
    let last = chunks.len();
    for (i, chunk) in chunks.into_iter().enumerate() {
        while credit < chunk.len() as i64 {
            match stream.rx.recv().await {
                Some(EngineMessage::Window(w)) => credit += i64::from(w.bytes),
                Some(EngineMessage::HttpResponse(early)) => {
                    // The engine answered before taking the whole body (a refusal).
                    return respond(stream, early).await;
                }
                Some(_) => {}
                None => return offline(&path),
            }
        }
        credit -= chunk.len() as i64;
        let data = RelayMessage::Data(StreamData {
            stream: stream.id,
            data_b64: STANDARD.encode(&chunk),
            fin: i + 1 == last,
        });
        if !stream.link.to_engine(data).await {
            return offline(&path);
        }
    }
    let head = tokio::time::timeout(door.response_timeout, async {
        loop {
            match stream.rx.recv().await {
                Some(EngineMessage::HttpResponse(head)) => return Some(head),
                Some(EngineMessage::Close(_)) | None => return None,
                Some(_) => {}
            }
        }
    })
    .await;
    let head = match head {
        Err(_) => {
            return ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "streamer_timeout",
                "the streamer's app did not answer in time; try again",
            )
            .into_response();
        }
        Ok(None) => {
            stream.done = true;
            return offline(&path);
        }
        Ok(Some(head)) => head,
    };
    let engine_offline = head.status == 503
        && head
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("x-stagehand-offline"));
    if engine_offline {
        // The engine is linked but its local server is not answering (starting, stopping).
        return offline(&path);
    }
    match upgrade {
        Some(upgrade) if head.status == 101 => {
            let ws = door.clone();
            upgrade
                .max_message_size(door.max_body_bytes)
                .on_upgrade(move |socket| pump(socket, stream, ws))
        }
        _ => respond(stream, head).await,
    }
}

async fn read_body(body: Body, max: usize) -> Result<Bytes, ApiError> {
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| ApiError::body_unreadable())?;
        if buf.len() + chunk.len() > max {
            return Err(ApiError::body_too_large(max));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.into())
}

/// Turns the engine's answer into the moderator's, its body streamed as the engine sends it
/// and credited back as the moderator's connection takes it.
async fn respond(stream: Stream, head: HttpResponse) -> Response {
    let status = StatusCode::from_u16(head.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let body = futures_util::stream::unfold(stream, |mut stream| async move {
        if stream.done {
            return None;
        }
        loop {
            match stream.rx.recv().await {
                Some(EngineMessage::Data(data)) => {
                    let Ok(bytes) = STANDARD.decode(&data.data_b64) else {
                        return Some((Err(std::io::Error::other("unreadable body chunk")), stream));
                    };
                    stream.credit(bytes.len());
                    stream.done = data.fin;
                    return Some((Ok(Bytes::from(bytes)), stream));
                }
                Some(EngineMessage::Close(_)) => {
                    stream.done = true;
                    return Some((
                        Err(std::io::Error::other("the engine ended the answer")),
                        stream,
                    ));
                }
                None => {
                    stream.done = true;
                    return Some((
                        Err(std::io::Error::other("the engine went offline")),
                        stream,
                    ));
                }
                Some(_) => {}
            }
        }
    });
    let mut response = Response::new(Body::from_stream(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in head.headers {
        if HOP_BY_HOP.contains(&name.as_str()) {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.append(name, value);
        }
    }
    response
}

/// A per-socket pace: `rate` messages a second with a `burst`, as the time the next message
/// may leave.
struct Pace {
    interval: Duration,
    burst: Duration,
    /// When the next message would be due at the sustained rate.
    due: Instant,
}

impl Pace {
    fn new(rate: u32, burst: u32) -> Self {
        let interval = Duration::from_secs(1) / rate.max(1);
        Self {
            interval,
            // The first message of a burst goes at `due`; the last `burst - 1` intervals later.
            burst: interval * burst.max(1).saturating_sub(1),
            due: Instant::now(),
        }
    }

    /// When the next message may go.
    fn ready_at(&self) -> Instant {
        self.due.checked_sub(self.burst).unwrap_or(self.due)
    }

    fn spend(&mut self) {
        self.due = self.due.max(Instant::now()) + self.interval;
    }
}

/// Carries one moderator WebSocket both ways until either side ends it.
async fn pump(socket: WebSocket, mut stream: Stream, door: crate::config::DoorLimits) {
    let (mut to_moderator, mut from_moderator) = socket.split();
    let mut credit = i64::from(STREAM_WINDOW);
    let mut pending: Option<StreamWsMessage> = None;
    let mut pace = Pace::new(door.ws_messages_per_sec, door.ws_burst);
    loop {
        let cost = pending.as_ref().map_or(0, |m| i64::from(m.cost()));
        // A message larger than the whole window goes when the window is all there.
        let can_send = pending.is_some() && credit >= cost.min(i64::from(STREAM_WINDOW));
        tokio::select! {
            from_engine = stream.rx.recv() => match from_engine {
                Some(EngineMessage::WsMessage(m)) => {
                    let cost = m.cost() as usize;
                    let message = match (m.text, m.binary_b64) {
                        (Some(text), _) => Message::Text(text.into()),
                        (None, Some(b64)) => match STANDARD.decode(b64) {
                            Ok(bytes) => Message::Binary(bytes.into()),
                            Err(_) => continue,
                        },
                        (None, None) => continue,
                    };
                    if to_moderator.send(message).await.is_err() {
                        return;
                    }
                    stream.credit(cost);
                }
                Some(EngineMessage::Window(w)) => credit += i64::from(w.bytes),
                Some(EngineMessage::Close(close)) => {
                    stream.done = true;
                    let frame = CloseFrame {
                        code: close.code.unwrap_or(1000),
                        reason: close.reason.into(),
                    };
                    let _ = to_moderator.send(Message::Close(Some(frame))).await;
                    return;
                }
                Some(_) => {}
                None => {
                    stream.done = true;
                    let frame = CloseFrame {
                        code: CLOSE_OFFLINE,
                        reason: "the streamer's app went offline".into(),
                    };
                    let _ = to_moderator.send(Message::Close(Some(frame))).await;
                    return;
                }
            },
            incoming = from_moderator.next(), if pending.is_none() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    pending = Some(StreamWsMessage { stream: stream.id, text: Some(text.to_string()), binary_b64: None });
                }
                Some(Ok(Message::Binary(bytes))) => {
                    pending = Some(StreamWsMessage { stream: stream.id, text: None, binary_b64: Some(STANDARD.encode(&bytes)) });
                }
                Some(Ok(Message::Close(frame))) => {
                    stream.done = true;
                    let (code, reason) = frame.map_or((1000, String::new()), |f| (f.code, f.reason.to_string()));
                    stream.link.to_engine_soon(RelayMessage::Close(StreamClose { stream: stream.id, code: Some(code), reason }));
                    return;
                }
                Some(Ok(_)) => {}
                // Gone without a close: dropping the stream tells the engine.
                None | Some(Err(_)) => return,
            },
            () = tokio::time::sleep_until(pace.ready_at()), if can_send => {
                if let Some(message) = pending.take() {
                    credit -= i64::from(message.cost());
                    pace.spend();
                    if !stream.link.to_engine(RelayMessage::WsMessage(message)).await {
                        stream.done = true;
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn a_browser_origin_must_be_the_relay_itself() {
        assert!(same_origin(&headers(&[("host", "relay.example")])));
        assert!(same_origin(&headers(&[
            ("host", "relay.example"),
            ("origin", "https://Relay.example")
        ])));
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:9000"),
            ("origin", "http://127.0.0.1:9000")
        ])));
        for origin in [
            "https://evil.example",
            "null",
            "https://relay.example.evil.example",
            "ftp://relay.example",
        ] {
            assert!(
                !same_origin(&headers(&[("host", "relay.example"), ("origin", origin)])),
                "{origin}"
            );
        }
    }

    #[test]
    fn pace_allows_a_burst_then_the_rate() {
        let mut pace = Pace::new(10, 3);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(pace.ready_at() <= Instant::now(), "within the burst");
            pace.spend();
        }
        assert!(
            pace.ready_at() > start,
            "past the burst the next message waits"
        );
    }
}
