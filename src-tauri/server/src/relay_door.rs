//! The relay's moderator door, served in process. Requests and WebSockets a moderator opens on
//! the relay arrive as streams on the engine's relay link; the engine hands each to
//! [`RelayDoor`], which serves it with this server's own router as a service call (no socket,
//! no HTTP client), and carries an accepted WebSocket with the same moderator-socket loop the
//! local door runs (the socket's side is in `relayed_socket`).
//!
//! Such a request carries [`Relayed`] as a request extension: only code in this process can
//! set one, so nothing arriving from the network (whatever headers it carries) can pass for
//! relayed. The guard reads it to accept the relay's Origin for that request only, handlers to
//! scope the session cookie to the relay path and to note `via: relay`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use stagehand_engine::relay_door::{BodyError, DoorStream, RelayDoorService};
use stagehand_protocol::ErrorCode;
use stagehand_protocol::relay::{TUNNELLED_REQUEST_HEADERS, moderator_surface};
use tower::ServiceExt as _;

use crate::error::ApiError;
use crate::guard::Relayed;
use crate::relayed_socket::{RelayedUpgrade, RelayedWebSocket};
use crate::state::AppState;

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
            router: crate::routes::router(state.clone()),
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
            task(RelayedWebSocket::new(socket, max)).await;
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
            return Err(ApiError::new(ErrorCode::PayloadTooLarge, "the body is too large").into());
        }
        Err(BodyError::Unreadable) => {
            return Err(ApiError::new(ErrorCode::BadBody, "the body could not be read").into());
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
            return Err(
                ApiError::new(ErrorCode::MethodNotAllowed, "GET, HEAD and POST only").into(),
            );
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
        .map_err(|_| ApiError::new(ErrorCode::BadBody, "the request cannot be served"))?;
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
