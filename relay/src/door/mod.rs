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
use crate::link::{LinkShared, Pending};

/// WebSocket close code for "the streamer's app went offline; try again later".
pub const CLOSE_OFFLINE: u16 = 1013;

/// The response headers passed to the moderator. Every tunnel on a relay shares the relay's
/// web origin, so an engine must not be able to set anything that reaches past its own
/// tunnel (a service worker scope, a cookie for another path, a redirect elsewhere): only
/// these pass, and `set-cookie` and `location` are checked besides.
const RESPONSE_HEADERS: &[&str] = &[
    "content-type",
    "cache-control",
    "content-security-policy",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "retry-after",
    "x-stagehand-offline",
    "set-cookie",
    "location",
];

/// How often the relay pings a moderator's socket; one silent for three pings is dropped.
const MODERATOR_PING: Duration = Duration::from_secs(15);
const MODERATOR_SILENCE: Duration = Duration::from_secs(45);

/// Why a request stops at the door.
enum Refusal {
    /// An error with its stable code.
    Api(ApiError),
    /// No engine is linked.
    Offline,
}

impl Refusal {
    fn into_response(self, path: &str) -> Response {
        match self {
            Refusal::Api(e) => e.into_response(),
            Refusal::Offline => offline(path),
        }
    }
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal::Api(e)
    }
}

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

/// What a request that passed the door's checks carries on.
struct Admitted {
    link: Arc<LinkShared>,
    client: String,
    prefix: String,
}

fn admit(
    relay: &Relay,
    peer: SocketAddr,
    tunnel_id: &str,
    path: &str,
    request: &Request,
) -> Result<Admitted, Refusal> {
    // An unknown tunnel and a path off the surface get the same 404: the door reveals nothing
    // about what lies behind it.
    let tunnel = relay
        .tunnel(tunnel_id)
        .filter(|_| moderator_surface(path))
        .ok_or_else(ApiError::not_found)?;
    let method = request.method();
    if ![Method::GET, Method::HEAD, Method::POST].contains(method) {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "the moderator panel only uses GET, HEAD and POST",
        )
        .into());
    }
    let headers = request.headers();
    let door = &relay.config().door;
    if (method == Method::POST || is_upgrade(headers))
        && !same_origin(headers, door.public_origin.as_deref())
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "requests from other sites are not accepted",
        )
        .into());
    }
    let client = crate::hooks::client_ip(peer.ip(), headers, &relay.config().trusted_proxies);
    let now_ms = relay.config().clock.now_ms();
    // The address first: one client hammering a tunnel's public id must not use up the
    // allowance its moderators share.
    relay
        .take_door_client_token(client, now_ms)
        .and_then(|()| tunnel.take_door_token(door.rate_per_sec, door.rate_burst, now_ms))
        .map_err(|retry_after| {
            ApiError::rate_limited_as(
                retry_after,
                "too many requests for this moderator panel; retry later",
            )
        })?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > door.max_body_bytes as u64) {
        return Err(ApiError::body_too_large(door.max_body_bytes).into());
    }
    let link = tunnel
        .link
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .ok_or(Refusal::Offline)?;
    Ok(Admitted {
        link,
        client: client.to_string(),
        prefix: stagehand_protocol::relay::moderator_prefix(tunnel.id.as_str()),
    })
}

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// A browser's Origin must name this relay: its configured public origin, or else the Host
/// the browser reached. A client that sends no Origin is not a browser page and passes.
fn same_origin(headers: &HeaderMap, public_origin: Option<&str>) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return headers.get(header::ORIGIN).is_none();
    };
    let origin = origin.trim_end_matches('/');
    if let Some(public) = public_origin {
        return origin.eq_ignore_ascii_case(public.trim_end_matches('/'));
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let authority = origin
        .split_once("://")
        .filter(|(scheme, _)| matches!(*scheme, "http" | "https"))
        .map(|(_, rest)| rest);
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
fn credit(link: &LinkShared, id: u64, pending: &Pending, bytes: usize) {
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
        let limit = relay.config().limits.body_timeout;
        match tokio::time::timeout(limit, read_body(body, door.max_body_bytes)).await {
            Ok(Ok(body)) => body,
            Ok(Err(e)) => return e.into_response(),
            Err(_) => return ApiError::body_timeout().into_response(),
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
    let Some(mut stream) = Stream::open(Arc::clone(&admitted.link), door.max_streams) else {
        let mut busy = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            "too many moderator requests are open for this streamer; retry shortly",
        );
        busy.retry_after = Some(1);
        return busy.into_response();
    };
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
    let head = tokio::time::timeout(door.response_timeout, async {
        if let Err(early) = send_body(&mut stream, body).await {
            return early;
        }
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
            let limits = door.clone();
            upgrade
                .max_message_size(door.max_body_bytes)
                .on_upgrade(move |socket| pump(socket, stream, limits))
        }
        _ => respond(stream, head, &admitted.prefix).await,
    }
}

/// Sends a request body in chunks within the engine's credit. `Err` when the stream stopped
/// first: with the engine's answer if it answered before taking the whole body (a refusal).
async fn send_body(stream: &mut Stream, body: Bytes) -> Result<(), Option<HttpResponse>> {
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
                Some(EngineMessage::HttpResponse(head)) => return Err(Some(head)),
                Some(EngineMessage::Close(_)) | None => return Err(None),
                Some(_) => {}
            }
        }
        credit -= chunk.len() as i64;
        let data = RelayMessage::Data(StreamData {
            stream: stream.id,
            data_b64: STANDARD.encode(&chunk),
            fin: i + 1 == last,
        });
        if !stream.link.to_engine(data).await {
            return Err(None);
        }
    }
    Ok(())
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

/// Whether a response header from the engine may reach the moderator: on the list, a cookie
/// only for this tunnel's path and no other domain, a redirect only within the tunnel.
fn header_allowed(name: &str, value: &str, prefix: &str) -> bool {
    if !RESPONSE_HEADERS.contains(&name) {
        return false;
    }
    match name {
        "set-cookie" => {
            let attributes: Vec<String> = value
                .split(';')
                .skip(1)
                .map(|a| a.trim().to_ascii_lowercase())
                .collect();
            let path = format!("path={}/", prefix.to_ascii_lowercase());
            attributes.contains(&path) && !attributes.iter().any(|a| a.starts_with("domain"))
        }
        "location" => value.starts_with(&format!("{prefix}/")),
        _ => true,
    }
}

/// Turns the engine's answer into the moderator's, its body streamed as the engine sends it
/// and credited back as the moderator's connection takes it.
async fn respond(stream: Stream, head: HttpResponse, prefix: &str) -> Response {
    // 1xx answers are not final; an engine that sends one is broken.
    let status = StatusCode::from_u16(head.status)
        .ok()
        .filter(|s| !s.is_informational())
        .unwrap_or(StatusCode::BAD_GATEWAY);
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
                    credit(&stream.link, stream.id, &stream.pending, bytes.len());
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
        let name = name.to_ascii_lowercase();
        if !header_allowed(&name, &value, prefix) {
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
///
/// Writing to the moderator happens in a task of its own, which returns the engine's credit
/// only once a message is written: a moderator who stops reading stops the engine after one
/// window, and this loop keeps reading what they send (and the engine's credits) regardless.
async fn pump(socket: WebSocket, mut stream: Stream, door: crate::config::DoorLimits) {
    let (to_moderator, mut from_moderator) = socket.split();
    let (write, writes) = mpsc::unbounded_channel();
    let mut writer = tokio::spawn(write_to_moderator(
        to_moderator,
        writes,
        Arc::clone(&stream.link),
        stream.id,
        stream.pending.clone(),
    ));
    let mut credit = i64::from(STREAM_WINDOW);
    let mut pending: Option<StreamWsMessage> = None;
    let mut pace = Pace::new(door.ws_messages_per_sec, door.ws_burst);
    let mut heard = Instant::now();
    let mut ping = tokio::time::interval_at(Instant::now() + MODERATOR_PING, MODERATOR_PING);
    let close = loop {
        let cost = pending.as_ref().map_or(0, |m| i64::from(m.cost()));
        // A message larger than the whole window goes when the window is all there.
        let can_send = pending.is_some() && credit >= cost.min(i64::from(STREAM_WINDOW));
        tokio::select! {
            from_engine = stream.rx.recv() => match from_engine {
                Some(EngineMessage::WsMessage(m)) => {
                    if let Some(message) = to_axum(m) {
                        let _ = write.send(message);
                    }
                }
                Some(EngineMessage::Window(w)) => credit += i64::from(w.bytes),
                Some(EngineMessage::Close(close)) => {
                    stream.done = true;
                    break Some((close.code.unwrap_or(1000), close.reason));
                }
                Some(_) => {}
                None => {
                    stream.done = true;
                    break Some((CLOSE_OFFLINE, "the streamer's app went offline".to_owned()));
                }
            },
            incoming = from_moderator.next(), if pending.is_none() => {
                heard = Instant::now();
                match incoming {
                    Some(Ok(Message::Text(text))) => pending = Some(StreamWsMessage {
                        stream: stream.id,
                        text: Some(text.to_string()),
                        binary_b64: None,
                    }),
                    Some(Ok(Message::Binary(bytes))) => pending = Some(StreamWsMessage {
                        stream: stream.id,
                        text: None,
                        binary_b64: Some(STANDARD.encode(&bytes)),
                    }),
                    Some(Ok(Message::Close(frame))) => {
                        stream.done = true;
                        let (code, reason) =
                            frame.map_or((1000, String::new()), |f| (f.code, f.reason.to_string()));
                        let close = StreamClose { stream: stream.id, code: Some(code), reason };
                        stream.link.to_engine_soon(RelayMessage::Close(close));
                        break None;
                    }
                    Some(Ok(_)) => {}
                    // Gone without a close: dropping the stream tells the engine.
                    None | Some(Err(_)) => break None,
                }
            }
            _ = ping.tick() => {
                if heard.elapsed() > MODERATOR_SILENCE {
                    break Some((1001, "no answer from this browser".to_owned()));
                }
                let _ = write.send((Message::Ping(Bytes::new()), 0));
            }
            () = tokio::time::sleep_until(pace.ready_at()), if can_send => {
                if let Some(message) = pending.take() {
                    credit -= i64::from(message.cost());
                    pace.spend();
                    if !stream.link.to_engine(RelayMessage::WsMessage(message)).await {
                        stream.done = true;
                        break Some((CLOSE_OFFLINE, "the streamer's app went offline".to_owned()));
                    }
                }
            }
        }
    };
    if let Some((code, reason)) = close {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = write.send((Message::Close(Some(frame)), 0));
    }
    drop(write);
    // The writer ends after the close frame; a moderator who stopped reading gets a moment.
    if tokio::time::timeout(Duration::from_secs(5), &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
}

/// An engine WebSocket message as axum's, with what it costs against the window.
fn to_axum(m: StreamWsMessage) -> Option<(Message, usize)> {
    let cost = m.cost() as usize;
    let message = match (m.text, m.binary_b64) {
        (Some(text), _) => Message::Text(text.into()),
        (None, Some(b64)) => Message::Binary(STANDARD.decode(b64).ok()?.into()),
        (None, None) => return None,
    };
    Some((message, cost))
}

/// Writes to the moderator in order, crediting the engine for each message written.
async fn write_to_moderator(
    mut to_moderator: futures_util::stream::SplitSink<WebSocket, Message>,
    mut writes: mpsc::UnboundedReceiver<(Message, usize)>,
    link: Arc<LinkShared>,
    id: u64,
    pending: Pending,
) {
    while let Some((message, cost)) = writes.recv().await {
        let last = matches!(message, Message::Close(_));
        if to_moderator.send(message).await.is_err() || last {
            return;
        }
        credit(&link, id, &pending, cost);
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
        assert!(same_origin(&headers(&[("host", "relay.example")]), None));
        assert!(same_origin(
            &headers(&[
                ("host", "relay.example"),
                ("origin", "https://Relay.example")
            ]),
            None
        ));
        assert!(same_origin(
            &headers(&[
                ("host", "127.0.0.1:9000"),
                ("origin", "http://127.0.0.1:9000")
            ]),
            None
        ));
        for origin in [
            "https://evil.example",
            "null",
            "https://relay.example.evil.example",
            "ftp://relay.example",
        ] {
            assert!(
                !same_origin(
                    &headers(&[("host", "relay.example"), ("origin", origin)]),
                    None
                ),
                "{origin}"
            );
        }
        // Behind a proxy that rewrites Host, the configured public origin decides, scheme and
        // all.
        let proxied = |origin| headers(&[("host", "127.0.0.1:8787"), ("origin", origin)]);
        let public = Some("https://relay.example");
        assert!(same_origin(&proxied("https://relay.example"), public));
        assert!(!same_origin(&proxied("http://relay.example"), public));
        assert!(!same_origin(&proxied("http://127.0.0.1:8787"), public));
    }

    #[test]
    fn engine_headers_cannot_reach_past_the_tunnel() {
        let prefix = "/t/abc";
        assert!(header_allowed("content-type", "text/html", prefix));
        assert!(header_allowed(
            "set-cookie",
            "stagehand_moderator=x; HttpOnly; SameSite=Strict; Path=/t/abc/; Max-Age=60",
            prefix
        ));
        for (name, value) in [
            ("set-cookie", "stagehand_moderator=x; Path=/"),
            ("set-cookie", "stagehand_moderator=x; Path=/t/other/"),
            (
                "set-cookie",
                "stagehand_moderator=x; Path=/t/abc/; Domain=relay.example",
            ),
            ("set-cookie", "stagehand_moderator=x"),
            ("location", "/t/other/moderator"),
            ("location", "https://evil.example/"),
            ("service-worker-allowed", "/"),
            ("access-control-allow-origin", "*"),
            ("clear-site-data", "\"*\""),
        ] {
            assert!(!header_allowed(name, value, prefix), "{name}: {value}");
        }
        assert!(header_allowed("location", "/t/abc/moderator", prefix));
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
