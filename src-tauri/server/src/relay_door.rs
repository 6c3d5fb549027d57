//! The relay's moderator door, served in process. Requests and WebSockets a moderator opens on
//! the relay arrive as streams on the engine's relay link; the engine hands each to
//! [`RelayDoor`], which serves it with this server's own router as a service call (no socket,
//! no HTTP client), and carries an accepted WebSocket with the same moderator-socket loop the
//! local door runs.
//!
//! Such a request carries [`Relayed`] as a request extension: only code in this process can
//! set one, so nothing arriving from the network (whatever headers it carries) can pass for
//! relayed. The guard reads it to accept the relay's Origin for that request only, handlers to
//! scope the session cookie to the relay path and to note `via: relay`.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::extract::ws::{CloseFrame, Message};
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use futures_util::{Sink, Stream};
use stagehand_engine::relay_door::{
    BodyError, DoorStream, RelayDoorService, RelayedSocket, SocketEnded, SocketFrame,
};
use stagehand_protocol::relay::{TUNNELLED_REQUEST_HEADERS, moderator_surface};
use tower::ServiceExt as _;

use crate::AppState;
use crate::error::ApiError;
use crate::guard::Relayed;

/// Largest request body taken from the relay. The moderator surface takes one form (the
/// link's key), so this is small; bodies are credited as they arrive, and this is what bounds a
/// stream's body in memory.
const MAX_BODY: usize = 64 * 1024;

/// What serves the relay door's streams: this server's router, called in process.
#[derive(Clone)]
pub struct RelayDoor {
    state: AppState,
    router: Router,
}

impl RelayDoor {
    /// The door for the server with this state.
    pub fn new(state: AppState) -> Self {
        Self {
            router: crate::router(state.clone()),
            state,
        }
    }
}

impl RelayDoorService for RelayDoor {
    fn serve(&self, stream: DoorStream) -> BoxFuture<'static, ()> {
        Box::pin(serve(self.clone(), stream))
    }
}

/// Why a relayed request does not reach the router.
enum Refused {
    /// Answered here.
    Answer(Response),
    /// The moderator went away; nothing to answer.
    Ended,
}

impl From<ApiError> for Refused {
    fn from(error: ApiError) -> Self {
        Self::Answer(error.into_response())
    }
}

async fn serve(door: RelayDoor, mut stream: DoorStream) {
    // A server that has shut down answers nothing, through the relay either.
    let stopped = *door.state.shutdown.borrow();
    if stopped {
        stream.offline().await;
        return;
    }
    let (request, upgrade) = match request(&door.state, &mut stream).await {
        Ok(request) => request,
        Err(Refused::Answer(response)) => return answer(stream, response).await,
        Err(Refused::Ended) => return,
    };
    let response = tokio::select! {
        response = door.router.oneshot(request) => match response {
            Ok(response) => response,
            Err(never) => match never {},
        },
        // The moderator went away before Stagehand answered.
        () = stream.ended() => return,
    };
    if let Some(upgrade) = upgrade
        && response.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(task) = upgrade.take()
    {
        if let Some(socket) = stream.accept_socket().await {
            let max = door.state.engine.config().security.json_body_limit_bytes;
            task(RelayedWebSocket { socket, max }).await;
        }
        return;
    }
    answer(stream, response).await;
}

/// The router's request for a relayed one, marked [`Relayed`]; a socket's carries the slot
/// its handler accepts it through. Off the moderator surface, other methods and bodies that
/// cannot be taken are answered here.
async fn request(
    state: &AppState,
    stream: &mut DoorStream,
) -> Result<(Request<Body>, Option<RelayedUpgrade>), Refused> {
    let head = stream.request();
    if !moderator_surface(&head.path) {
        return Err(ApiError::not_found().into());
    }
    let Some(door) = state.engine.relay_door() else {
        return Err(ApiError::not_found().into());
    };
    let websocket = head.websocket;
    let body = match stream.body(MAX_BODY).await {
        Ok(body) => body,
        Err(BodyError::TooLarge(_)) => {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the body is too large",
            )
            .into());
        }
        Err(BodyError::Unreadable) => {
            return Err(
                ApiError::bad_request("body_unreadable", "the body could not be read").into(),
            );
        }
        Err(BodyError::Ended) => return Err(Refused::Ended),
    };
    let head = stream.request();
    // The moderator surface takes GET, HEAD and POST; whatever else a relay names stops here.
    let method = match head.method.as_str() {
        "GET" => Method::GET,
        "HEAD" => Method::HEAD,
        "POST" => Method::POST,
        _ => {
            return Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "GET, HEAD and POST only",
            )
            .into());
        }
    };
    let uri = if head.query.is_empty() {
        head.path.clone()
    } else {
        format!("{}?{}", head.path, head.query)
    };
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::from(body))
        .map_err(|_| ApiError::bad_request("invalid_request", "the request cannot be served"))?;
    let headers = request.headers_mut();
    for (name, value) in forwarded(&head.headers) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    let client = head
        .client
        .as_deref()
        .and_then(|c| c.parse::<IpAddr>().ok());
    let extensions = request.extensions_mut();
    extensions.insert(Relayed { door, client });
    // The connection a relayed request came on is this engine's own: the moderator's address
    // is the one the relay names in `Relayed`.
    extensions.insert(ConnectInfo(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))));
    let upgrade = websocket.then(RelayedUpgrade::default);
    if let Some(upgrade) = &upgrade {
        extensions.insert(upgrade.clone());
    }
    Ok((request, upgrade))
}

/// The forwarded headers, checked again against the list (the relay is not trusted to filter).
fn forwarded(headers: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    headers
        .iter()
        .filter(|(name, _)| TUNNELLED_REQUEST_HEADERS.contains(&name.to_ascii_lowercase().as_str()))
        .map(|(name, value)| (name.as_str(), value.as_str()))
}

/// Sends the router's answer back through the relay, without what describes one connection.
async fn answer(stream: DoorStream, response: Response) {
    const HOP_BY_HOP: &[&str] = &[
        "connection",
        "keep-alive",
        "transfer-encoding",
        "upgrade",
        "content-length",
    ];
    let (parts, body) = response.into_parts();
    let headers = parts
        .headers
        .iter()
        .filter(|(name, _)| !HOP_BY_HOP.contains(&name.as_str()))
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    stream
        .respond(parts.status.as_u16(), headers, body.into_data_stream())
        .await;
}

type SocketTask = Box<dyn FnOnce(RelayedWebSocket) -> BoxFuture<'static, ()> + Send>;

/// The slot a relayed socket request carries: its handler leaves there what to run on the
/// socket, the way a local upgrade's `on_upgrade` does, and answers 101; the door then accepts
/// the socket and runs it.
#[derive(Clone, Default)]
pub struct RelayedUpgrade(Arc<Mutex<Option<SocketTask>>>);

impl RelayedUpgrade {
    /// Accepts the socket with `task` to run on it.
    pub fn on_upgrade<F, Fut>(self, task: F) -> Response
    where
        F: FnOnce(RelayedWebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(Box::new(move |socket| Box::pin(task(socket))));
        StatusCode::SWITCHING_PROTOCOLS.into_response()
    }

    fn take(&self) -> Option<SocketTask> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// A relayed socket failed.
#[derive(Debug, thiserror::Error)]
pub enum RelayedSocketError {
    /// The moderator sent a message over the size a local socket takes.
    #[error("a message over {0} bytes")]
    TooBig(usize),
    /// The socket has ended.
    #[error(transparent)]
    Ended(#[from] SocketEnded),
}

/// A relayed socket in axum's messages, so the moderator-socket loop runs over it as over a
/// local one. Pings stay on this side (the relay keeps the moderator's connection alive);
/// messages over `max` bytes end the socket as they would locally.
pub struct RelayedWebSocket {
    socket: RelayedSocket,
    max: usize,
}

impl Stream for RelayedWebSocket {
    type Item = Result<Message, RelayedSocketError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let max = self.max;
        Pin::new(&mut self.socket).poll_next(cx).map(|frame| {
            frame.map(|frame| match frame {
                SocketFrame::Text(text) if text.len() > max => Err(RelayedSocketError::TooBig(max)),
                SocketFrame::Binary(bytes) if bytes.len() > max => {
                    Err(RelayedSocketError::TooBig(max))
                }
                SocketFrame::Text(text) => Ok(Message::Text(text.into())),
                SocketFrame::Binary(bytes) => Ok(Message::Binary(bytes.into())),
                SocketFrame::Close(close) => {
                    Ok(Message::Close(close.map(|(code, reason)| CloseFrame {
                        code,
                        reason: reason.into(),
                    })))
                }
            })
        })
    }
}

impl Sink<Message> for RelayedWebSocket {
    type Error = RelayedSocketError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.socket)
            .poll_ready(cx)
            .map_err(Into::into)
    }

    fn start_send(mut self: Pin<&mut Self>, message: Message) -> Result<(), Self::Error> {
        let frame = match message {
            Message::Text(text) => SocketFrame::Text(text.to_string()),
            Message::Binary(bytes) => SocketFrame::Binary(bytes.to_vec()),
            Message::Close(close) => {
                SocketFrame::Close(close.map(|f| (f.code, f.reason.to_string())))
            }
            Message::Ping(_) | Message::Pong(_) => return Ok(()),
        };
        Pin::new(&mut self.socket)
            .start_send(frame)
            .map_err(Into::into)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.socket)
            .poll_flush(cx)
            .map_err(Into::into)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.socket)
            .poll_close(cx)
            .map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_headers_are_forwarded() {
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
}
