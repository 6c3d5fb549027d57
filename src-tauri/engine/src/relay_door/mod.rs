//! The engine's end of the relay's moderator door: requests and WebSockets a moderator opened
//! at `{relay}/t/{tunnel_id}/…` arrive as streams on the relay link, and each is replayed
//! against this engine's own local server, so every moderator operation is the one the local
//! and LAN doors use — single-use keys, sessions, scopes, audit — written once.
//!
//! A replayed request carries [`RELAY_HEADER`] with a random value made at start that only
//! this process knows; the server sees it, accepts the relay's Origin for that request only,
//! scopes the session cookie to the relay path and notes `via: relay`. Only the moderator
//! surface is replayed, and the server checks that again. Each stream has a credit window both
//! ways (see [`stagehand_protocol::relay`]), so a moderator who stops reading holds up
//! nothing but their own stream; when the link ends, every stream ends with it.

use std::collections::{HashMap, VecDeque};
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::{SinkExt as _, StreamExt as _};
use stagehand_protocol::relay::{
    CLOSE_TOO_BIG, EngineMessage, HttpRequest, HttpResponse, MAX_LINK_MESSAGE, RelayMessage,
    STREAM_CHUNK, STREAM_WINDOW, StreamClose, StreamData, StreamWindow, StreamWsMessage,
    TUNNELLED_REQUEST_HEADERS, moderator_prefix, moderator_surface,
};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::{Engine, Secret};

/// The header that marks a request replayed from the relay (its value is the door token).
pub const RELAY_HEADER: &str = "x-stagehand-relay";
/// The header with the moderator's address as the relay saw it (believed only with the token).
pub const RELAY_CLIENT_HEADER: &str = "x-stagehand-relay-client";

/// Largest request body taken from the relay (the server's own JSON limit applies after).
const MAX_BODY: usize = 2 * 1024 * 1024;

/// What the server needs to know about the relay door.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayDoor {
    /// The relay's origin as browsers name it (`https://relay.example.com`).
    pub origin: String,
    /// The path prefix of this tunnel's door on the relay (`/t/{tunnel_id}`).
    pub prefix: String,
    /// Whether the relay is reached over TLS (cookies are then `Secure`).
    pub secure: bool,
}

/// The door's settings, held by the relay link.
#[derive(Debug)]
pub(crate) struct DoorState {
    /// Proves a request was replayed by this process.
    token: Secret,
    /// The local server's base URL, once it is bound.
    target: OnceLock<String>,
    /// The client that replays requests, made on first use.
    client: OnceLock<Option<reqwest::Client>>,
}

impl DoorState {
    pub(crate) fn new() -> Result<Self, crate::random::RandomError> {
        Ok(Self {
            token: Secret::new(crate::random::token(32)?),
            target: OnceLock::new(),
            client: OnceLock::new(),
        })
    }
}

impl Engine {
    /// Where the relay door's streams are replayed: the local server's base URL
    /// (`http://127.0.0.1:{port}`). The server calls this once it is bound.
    pub fn relay_door_target(&self, local_url: &str) {
        let _ = self
            .inner
            .relay_door
            .target
            .set(local_url.trim_end_matches('/').to_owned());
    }

    /// The client that replays requests; `None` if it cannot be built (never a default one,
    /// which would follow proxy settings from the environment and hand them the door mark).
    fn door_client(&self) -> Option<reqwest::Client> {
        self.inner
            .relay_door
            .client
            .get_or_init(|| {
                // Straight to our own loopback server: never through a proxy from the
                // environment, and redirects go back to the moderator as they are.
                reqwest::Client::builder()
                    .no_proxy()
                    .redirect(reqwest::redirect::Policy::none())
                    .connect_timeout(std::time::Duration::from_secs(5))
                    .build()
                    .inspect_err(
                        |e| tracing::error!(error = %e, "cannot build the relay door's client"),
                    )
                    .ok()
            })
            .clone()
    }

    /// Whether `presented` is this process's door token (constant time).
    pub fn relay_door_token_matches(&self, presented: &str) -> bool {
        self.inner.relay_door.token.ct_eq(presented.as_bytes())
    }

    /// The relay door, when a relay is configured.
    pub fn relay_door(&self) -> Option<RelayDoor> {
        let status = self.relay_status();
        let (url, tunnel) = (status.url?, status.tunnel_id?);
        let (scheme, rest) = url.split_once("://")?;
        let authority = rest.split('/').next().unwrap_or(rest);
        Some(RelayDoor {
            origin: format!(
                "{}://{}",
                scheme.to_ascii_lowercase(),
                authority.to_ascii_lowercase()
            ),
            prefix: moderator_prefix(&tunnel),
            secure: scheme.eq_ignore_ascii_case("https"),
        })
    }

    /// The relay's public URL for a webhook path on this engine (`/webhooks/tradingview`),
    /// when a relay is configured: what a streamer pastes into TradingView.
    pub fn relay_hook_url(&self, path: &str) -> Option<String> {
        let status = self.relay_status();
        let (url, tunnel) = (status.url?, status.tunnel_id?);
        Some(format!("{url}/h/{tunnel}/{}", path.trim_start_matches('/')))
    }

    /// The public moderator link for `key` on the relay, when a relay is configured.
    pub fn relay_moderator_link(&self, key: &str) -> Option<String> {
        let status = self.relay_status();
        let url = status.url?;
        Some(format!("{url}{}/m/{key}", self.relay_door()?.prefix))
    }
}

/// The text frame for a stream message. One that would pass the link's size limit is
/// replaced by a close of its stream (code 1009): a huge scene costs that moderator's socket,
/// never the link, which carries webhooks too.
pub(crate) fn frame(message: &EngineMessage) -> Option<String> {
    let text = serde_json::to_string(message)
        .inspect_err(|e| tracing::error!(error = %e, "cannot encode a relay stream message"))
        .ok()?;
    if text.len() <= MAX_LINK_MESSAGE {
        return Some(text);
    }
    let stream = match message {
        EngineMessage::WsMessage(m) => m.stream,
        EngineMessage::Data(m) => m.stream,
        _ => return None,
    };
    tracing::warn!(
        bytes = text.len(),
        "a moderator message is too big for the relay link; its socket is closed"
    );
    let close = EngineMessage::Close(StreamClose {
        stream,
        code: Some(CLOSE_TOO_BIG),
        reason: "message too big for the relay".into(),
    });
    serde_json::to_string(&close).ok()
}

/// The streams open on one relay connection. Dropped with the connection, which ends them.
pub(crate) struct Door {
    engine: Engine,
    outbound: mpsc::Sender<EngineMessage>,
    streams: HashMap<u64, mpsc::UnboundedSender<RelayMessage>>,
}

impl Door {
    pub(crate) fn new(engine: Engine, outbound: mpsc::Sender<EngineMessage>) -> Self {
        Self {
            engine,
            outbound,
            streams: HashMap::new(),
        }
    }

    /// Takes one stream message from the relay. Never waits.
    pub(crate) fn handle(&mut self, message: RelayMessage) {
        let stream = match &message {
            RelayMessage::HttpRequest(request) => {
                // Streams that finished on their own leave a closed sender behind.
                self.streams.retain(|_, tx| !tx.is_closed());
                let (tx, rx) = mpsc::unbounded_channel();
                self.streams.insert(request.stream, tx);
                let RelayMessage::HttpRequest(request) = message else {
                    return;
                };
                tokio::spawn(serve(
                    self.engine.clone(),
                    self.outbound.clone(),
                    request,
                    rx,
                ));
                return;
            }
            RelayMessage::Data(m) => m.stream,
            RelayMessage::WsMessage(m) => m.stream,
            RelayMessage::Window(m) => m.stream,
            RelayMessage::Close(m) => m.stream,
            _ => return,
        };
        let last = matches!(message, RelayMessage::Close(_));
        if let Some(tx) = self.streams.get(&stream)
            && (tx.send(message).is_err() || last)
        {
            self.streams.remove(&stream);
        }
    }
}

/// One stream's task: replays the request against the local server and carries the answer
/// back within the relay's credit.
async fn serve(
    engine: Engine,
    out: mpsc::Sender<EngineMessage>,
    request: HttpRequest,
    rx: mpsc::UnboundedReceiver<RelayMessage>,
) {
    let stream = request.stream;
    let Some(target) = engine.inner.relay_door.target.get().cloned() else {
        refuse(
            &out,
            stream,
            503,
            "streamer_offline",
            "Stagehand is still starting",
        )
        .await;
        return;
    };
    if !moderator_surface(&request.path) {
        refuse(&out, stream, 404, "not_found", "nothing here").await;
        return;
    }
    let token = engine.inner.relay_door.token.expose().to_owned();
    if request.websocket {
        websocket(&out, &target, &token, request, rx).await;
    } else {
        http(&engine, &out, &target, &token, request, rx).await;
    }
}

async fn send(out: &mpsc::Sender<EngineMessage>, message: EngineMessage) -> bool {
    out.send(message).await.is_ok()
}

/// Header the relay knows: the streamer's app cannot answer (the relay shows its offline page).
const OFFLINE_HEADER: &str = "x-stagehand-offline";

async fn refuse(
    out: &mpsc::Sender<EngineMessage>,
    stream: u64,
    status: u16,
    code: &str,
    message: &str,
) {
    let body = serde_json::json!({ "error": { "code": code, "message": message } }).to_string();
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    if code == "streamer_offline" {
        headers.push((OFFLINE_HEADER.to_owned(), "1".to_owned()));
    }
    if send(
        out,
        EngineMessage::HttpResponse(HttpResponse {
            stream,
            status,
            headers,
        }),
    )
    .await
    {
        let _ = send(
            out,
            EngineMessage::Data(StreamData {
                stream,
                data_b64: STANDARD.encode(body),
                fin: true,
            }),
        )
        .await;
    }
}

/// The forwarded headers, checked again against the list (the relay is not trusted to filter).
fn forwarded(headers: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    headers
        .iter()
        .filter(|(name, _)| TUNNELLED_REQUEST_HEADERS.contains(&name.to_ascii_lowercase().as_str()))
        .map(|(name, value)| (name.as_str(), value.as_str()))
}

fn local_url(target: &str, request: &HttpRequest) -> String {
    if request.query.is_empty() {
        format!("{target}{}", request.path)
    } else {
        format!("{target}{}?{}", request.path, request.query)
    }
}

/// The response headers passed back: everything but what describes one connection.
fn response_headers(headers: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
    const HOP_BY_HOP: &[&str] = &[
        "connection",
        "keep-alive",
        "transfer-encoding",
        "upgrade",
        "content-length",
    ];
    headers
        .iter()
        .filter(|(name, _)| !HOP_BY_HOP.contains(&name.as_str()))
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect()
}

async fn http(
    engine: &Engine,
    out: &mpsc::Sender<EngineMessage>,
    target: &str,
    token: &str,
    request: HttpRequest,
    mut rx: mpsc::UnboundedReceiver<RelayMessage>,
) {
    let stream = request.stream;
    let mut body = Vec::new();
    if request.has_body {
        loop {
            match rx.recv().await {
                Some(RelayMessage::Data(data)) => {
                    let Ok(chunk) = STANDARD.decode(&data.data_b64) else {
                        refuse(
                            out,
                            stream,
                            400,
                            "body_unreadable",
                            "the body could not be read",
                        )
                        .await;
                        return;
                    };
                    if body.len() + chunk.len() > MAX_BODY {
                        refuse(
                            out,
                            stream,
                            413,
                            "payload_too_large",
                            "the body is too large",
                        )
                        .await;
                        return;
                    }
                    body.extend_from_slice(&chunk);
                    let credit = EngineMessage::Window(StreamWindow {
                        stream,
                        bytes: u32::try_from(chunk.len()).unwrap_or(u32::MAX),
                    });
                    if !send(out, credit).await {
                        return;
                    }
                    if data.fin {
                        break;
                    }
                }
                Some(RelayMessage::Close(_)) | None => return,
                Some(_) => {}
            }
        }
    }
    // The moderator surface takes GET, HEAD and POST; whatever else a relay names stops here.
    let method = match request.method.as_str() {
        "GET" => reqwest::Method::GET,
        "HEAD" => reqwest::Method::HEAD,
        "POST" => reqwest::Method::POST,
        _ => {
            refuse(
                out,
                stream,
                405,
                "method_not_allowed",
                "GET, HEAD and POST only",
            )
            .await;
            return;
        }
    };
    let Some(client) = engine.door_client() else {
        refuse(
            out,
            stream,
            503,
            "streamer_offline",
            "Stagehand cannot answer through the relay",
        )
        .await;
        return;
    };
    let mut builder = client.request(method, local_url(target, &request));
    for (name, value) in forwarded(&request.headers) {
        builder = builder.header(name, value);
    }
    builder = builder.header(RELAY_HEADER, token);
    if let Some(client) = &request.client {
        builder = builder.header(RELAY_CLIENT_HEADER, client);
    }
    if !body.is_empty() {
        builder = builder.body(body);
    }
    let response = tokio::select! {
        response = builder.send() => response,
        // The moderator went away before Stagehand answered.
        () = closed(&mut rx) => return,
    };
    let response = match response {
        Ok(response) => response,
        Err(e) => {
            // Without the URL: it may carry a one-time key or a session.
            tracing::warn!(error = %e.without_url(), "the relay door could not reach the local server");
            refuse(
                out,
                stream,
                503,
                "streamer_offline",
                "Stagehand's local server is not answering",
            )
            .await;
            return;
        }
    };
    let head = EngineMessage::HttpResponse(HttpResponse {
        stream,
        status: response.status().as_u16(),
        headers: response_headers(response.headers()),
    });
    if !send(out, head).await {
        return;
    }
    let mut chunks = response.bytes_stream();
    let mut queue: VecDeque<Vec<u8>> = VecDeque::new();
    let mut credit = i64::from(STREAM_WINDOW);
    let mut ended = false;
    loop {
        while let Some(piece) = queue.front() {
            if credit < piece.len() as i64 {
                break;
            }
            credit -= piece.len() as i64;
            let data = StreamData {
                stream,
                data_b64: STANDARD.encode(piece),
                fin: false,
            };
            queue.pop_front();
            if !send(out, EngineMessage::Data(data)).await {
                return;
            }
        }
        if ended && queue.is_empty() {
            let fin = StreamData {
                stream,
                data_b64: String::new(),
                fin: true,
            };
            let _ = send(out, EngineMessage::Data(fin)).await;
            return;
        }
        tokio::select! {
            from_relay = rx.recv() => match from_relay {
                Some(RelayMessage::Window(w)) => credit += i64::from(w.bytes),
                Some(RelayMessage::Close(_)) | None => return,
                Some(_) => {}
            },
            chunk = chunks.next(), if !ended && queue.is_empty() => match chunk {
                Some(Ok(bytes)) => queue.extend(bytes.chunks(STREAM_CHUNK).map(<[u8]>::to_vec)),
                Some(Err(e)) => {
                    tracing::warn!(error = %e.without_url(), "a relayed answer broke off");
                    let _ = send(out, EngineMessage::Close(StreamClose { stream, code: None, reason: "the answer broke off".into() })).await;
                    return;
                }
                None => ended = true,
            },
        }
    }
}

/// Resolves when the relay ends the stream (or the link goes); other messages are dropped.
async fn closed(rx: &mut mpsc::UnboundedReceiver<RelayMessage>) {
    loop {
        match rx.recv().await {
            Some(RelayMessage::Close(_)) | None => return,
            Some(_) => {}
        }
    }
}

/// The payload of an HTTP/1.1 chunked body; `None` when it is not one.
fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&raw[..line_end]).ok()?;
        let size_text = size_text.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}

/// A close code that may be sent in a close frame (1005, 1006 and 1015 may not).
fn sendable(code: u16) -> u16 {
    match code {
        1000..=1004 | 1007..=1014 | 3000..=4999 => code,
        _ => 1011,
    }
}

async fn websocket(
    out: &mpsc::Sender<EngineMessage>,
    target: &str,
    token: &str,
    request: HttpRequest,
    mut rx: mpsc::UnboundedReceiver<RelayMessage>,
) {
    let stream = request.stream;
    let url = local_url(target, &request).replacen("http://", "ws://", 1);
    let Ok(mut local) = url.into_client_request() else {
        refuse(
            out,
            stream,
            400,
            "invalid_request",
            "the request cannot be replayed",
        )
        .await;
        return;
    };
    let headers = local.headers_mut();
    for (name, value) in forwarded(&request.headers) {
        if let (Ok(name), Ok(value)) = (
            tungstenite::http::HeaderName::from_bytes(name.as_bytes()),
            tungstenite::http::HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    let marks = [
        (RELAY_HEADER, Some(token)),
        (RELAY_CLIENT_HEADER, request.client.as_deref()),
    ];
    for (name, value) in marks {
        if let Some(Ok(value)) = value.map(tungstenite::http::HeaderValue::from_str) {
            headers.insert(name, value);
        }
    }
    // Small frames both ways: no Nagle.
    let socket = match tokio_tungstenite::connect_async_with_config(local, None, true).await {
        Ok((socket, _)) => socket,
        Err(tungstenite::Error::Http(refused)) => {
            let (parts, body) = refused.into_parts();
            // tungstenite hands over the body as it came off the wire.
            let chunked = parts
                .headers
                .get("transfer-encoding")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
            let body = body.unwrap_or_default();
            let body = if chunked {
                dechunk(&body).unwrap_or_default()
            } else {
                body
            };
            let head = EngineMessage::HttpResponse(HttpResponse {
                stream,
                status: parts.status.as_u16(),
                headers: response_headers(&parts.headers),
            });
            if send(out, head).await {
                let data = StreamData {
                    stream,
                    data_b64: STANDARD.encode(body),
                    fin: true,
                };
                let _ = send(out, EngineMessage::Data(data)).await;
            }
            return;
        }
        Err(e) => {
            // I/O and TLS errors only: other errors may quote the URL, which may carry a
            // session.
            let detail = match &e {
                tungstenite::Error::Io(io) => io.to_string(),
                other => format!("{:?}", std::mem::discriminant(other)),
            };
            tracing::warn!(error = %detail, "the relay door could not open a local socket");
            refuse(
                out,
                stream,
                503,
                "streamer_offline",
                "Stagehand's local server is not answering",
            )
            .await;
            return;
        }
    };
    let accepted = EngineMessage::HttpResponse(HttpResponse {
        stream,
        status: 101,
        headers: Vec::new(),
    });
    if !send(out, accepted).await {
        return;
    }
    let (to_local, mut from_local) = socket.split();
    // Writing to the local socket happens in a task of its own, which returns the relay's
    // credit once a message is written: this loop never waits on the server, so it keeps
    // reading the server's messages (which the server may be waiting to send) meanwhile.
    let (write, writes) = mpsc::unbounded_channel();
    let mut writer = tokio::spawn(write_to_local(to_local, writes, out.clone(), stream));
    let mut credit = i64::from(STREAM_WINDOW);
    let mut pending: Option<StreamWsMessage> = None;
    loop {
        let cost = pending.as_ref().map_or(0, |m| i64::from(m.cost()));
        let can_send = pending.is_some() && credit >= cost.min(i64::from(STREAM_WINDOW));
        tokio::select! {
            from_relay = rx.recv() => match from_relay {
                Some(RelayMessage::WsMessage(m)) => {
                    if let Some(message) = to_tungstenite(m) {
                        let _ = write.send(message);
                    }
                }
                Some(RelayMessage::Window(w)) => credit += i64::from(w.bytes),
                Some(RelayMessage::Close(close)) => {
                    let frame = CloseFrame {
                        code: CloseCode::from(sendable(close.code.unwrap_or(1000))),
                        reason: close.reason.into(),
                    };
                    let _ = write.send((tungstenite::Message::Close(Some(frame)), 0));
                    break;
                }
                Some(_) => {}
                None => {
                    let _ = write.send((tungstenite::Message::Close(None), 0));
                    break;
                }
            },
            local = from_local.next(), if pending.is_none() => match local {
                Some(Ok(tungstenite::Message::Text(text))) => {
                    pending = Some(StreamWsMessage { stream, text: Some(text.to_string()), binary_b64: None });
                }
                Some(Ok(tungstenite::Message::Binary(bytes))) => {
                    pending = Some(StreamWsMessage { stream, text: None, binary_b64: Some(STANDARD.encode(&bytes)) });
                }
                Some(Ok(tungstenite::Message::Close(frame))) => {
                    let (code, reason) = frame.map_or((1000, String::new()), |f| (u16::from(f.code), f.reason.to_string()));
                    closed_by_stagehand(out, stream, sendable(code), reason).await;
                    break;
                }
                Some(Ok(_)) => {}
                None | Some(Err(_)) => {
                    closed_by_stagehand(out, stream, 1011, "Stagehand closed the socket".into()).await;
                    break;
                }
            },
            () = std::future::ready(()), if can_send => {
                if let Some(message) = pending.take() {
                    credit -= i64::from(message.cost());
                    if !send(out, EngineMessage::WsMessage(message)).await {
                        break;
                    }
                }
            }
        }
    }
    drop(write);
    if tokio::time::timeout(std::time::Duration::from_secs(5), &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
}

async fn closed_by_stagehand(
    out: &mpsc::Sender<EngineMessage>,
    stream: u64,
    code: u16,
    reason: String,
) {
    let close = StreamClose {
        stream,
        code: Some(code),
        reason,
    };
    let _ = send(out, EngineMessage::Close(close)).await;
}

/// A relayed WebSocket message as tungstenite's, with what it costs against the window.
fn to_tungstenite(m: StreamWsMessage) -> Option<(tungstenite::Message, u32)> {
    let cost = m.cost();
    let message = match (m.text, m.binary_b64) {
        (Some(text), _) => tungstenite::Message::Text(text.into()),
        (None, Some(b64)) => tungstenite::Message::Binary(STANDARD.decode(b64).ok()?.into()),
        (None, None) => return None,
    };
    Some((message, cost))
}

type LocalSink = futures_util::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    tungstenite::Message,
>;

/// Writes to the local socket in order, crediting the relay for each message written.
async fn write_to_local(
    mut to_local: LocalSink,
    mut writes: mpsc::UnboundedReceiver<(tungstenite::Message, u32)>,
    out: mpsc::Sender<EngineMessage>,
    stream: u64,
) {
    while let Some((message, cost)) = writes.recv().await {
        let last = matches!(message, tungstenite::Message::Close(_));
        if to_local.send(message).await.is_err() || last {
            return;
        }
        let credit = EngineMessage::Window(StreamWindow {
            stream,
            bytes: cost,
        });
        if !send(&out, credit).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_headers_are_replayed() {
        let headers = vec![
            ("Cookie".to_owned(), "a=b".to_owned()),
            ("x-stagehand-relay".to_owned(), "forged".to_owned()),
            ("authorization".to_owned(), "Bearer x".to_owned()),
            ("origin".to_owned(), "https://relay.example".to_owned()),
        ];
        let kept: Vec<_> = forwarded(&headers).collect();
        assert_eq!(
            kept,
            vec![("Cookie", "a=b"), ("origin", "https://relay.example")]
        );
    }

    #[test]
    fn chunked_bodies_are_unwrapped() {
        assert_eq!(
            dechunk(b"4\r\nWiki\r\n6;x=y\r\npedia \r\n0\r\n\r\n").as_deref(),
            Some(&b"Wikipedia "[..])
        );
        assert_eq!(dechunk(b"zz\r\n"), None);
        assert_eq!(dechunk(b"5\r\nab"), None, "a body cut short is not a body");
    }

    #[test]
    fn reserved_close_codes_are_not_sent() {
        assert_eq!(sendable(4401), 4401);
        assert_eq!(sendable(1000), 1000);
        assert_eq!(sendable(1006), 1011);
        assert_eq!(sendable(1005), 1011);
        assert_eq!(sendable(0), 1011);
    }
}
