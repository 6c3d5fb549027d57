//! The fake's network side: the listener, the WebSocket upgrade with obs-websocket's
//! subprotocol choice, one task per connection, and what the server keeps of each session to
//! push events and close frames to it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::protocol::{close, random_token};
use super::session::{Reply, Session, closing};
use super::state::ObsState;

pub(super) struct Shared {
    pub(super) password: Option<String>,
    pub(super) salt: String,
    pub(super) identified: watch::Sender<usize>,
    pub(super) inner: Mutex<Inner>,
}

pub(super) struct Inner {
    pub(super) state: ObsState,
    pub(super) not_ready: usize,
    pub(super) requests_seen: Vec<String>,
    pub(super) sessions: HashMap<u64, SessionHandle>,
    pub(super) next_session: u64,
}

/// What the server keeps of a connection: where to push events, and what it subscribed to
/// (`None` until it has identified).
pub(super) struct SessionHandle {
    pub(super) outbox: mpsc::UnboundedSender<Push>,
    pub(super) subscriptions: Option<u64>,
}

pub(super) enum Push {
    Text(String),
    Close(u16, String),
}

impl Shared {
    pub(super) fn inner(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    pub(super) fn broadcast(&self, message: &Value) {
        let intent = message["d"]["eventIntent"].as_u64().unwrap_or(0);
        let text = message.to_string();
        for session in self.inner().sessions.values() {
            if session.subscriptions.is_some_and(|mask| mask & intent != 0) {
                let _ = session.outbox.send(Push::Text(text.clone()));
            }
        }
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

pub(super) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    connections: Arc<Mutex<JoinSet<()>>>,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            // Out of file descriptors, say: give the system a moment rather than spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let mut connections = lock(&connections);
        while connections.try_join_next().is_some() {}
        connections.spawn(serve_connection(Arc::clone(&shared), tcp));
    }
}

/// Picks `obswebsocket.json` when the client offers it, as obs-websocket's `onValidate` does.
// The signature is tungstenite's handshake `Callback`; its error type is not ours to shrink.
#[allow(clippy::result_large_err)]
fn negotiate_subprotocol(
    request: &Request,
    mut response: Response,
) -> Result<Response, ErrorResponse> {
    let offers_json = request
        .headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == "obswebsocket.json");
    if offers_json {
        response.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("obswebsocket.json"),
        );
    }
    Ok(response)
}

type Socket = WebSocketStream<TcpStream>;

async fn serve_connection(shared: Arc<Shared>, tcp: TcpStream) {
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, negotiate_subprotocol).await else {
        return;
    };
    let (outbox, mut inbox) = mpsc::unbounded_channel();
    let id = {
        let mut inner = shared.inner();
        inner.next_session += 1;
        let id = inner.next_session;
        inner.sessions.insert(
            id,
            SessionHandle {
                outbox,
                subscriptions: None,
            },
        );
        id
    };
    let mut session = Session {
        challenge: shared.password.as_ref().map(|_| random_token()),
        identified: false,
        incoming: 0,
        outgoing: 0,
    };
    let hello = session.hello(&shared);
    if send(&mut ws, &mut session, hello).await {
        serve_session(&shared, id, &mut ws, &mut session, &mut inbox).await;
    }
    shared.inner().sessions.remove(&id);
}

async fn serve_session(
    shared: &Shared,
    id: u64,
    ws: &mut Socket,
    session: &mut Session,
    inbox: &mut mpsc::UnboundedReceiver<Push>,
) {
    loop {
        tokio::select! {
            incoming = ws.next() => {
                let reply = match incoming {
                    Some(Ok(Message::Text(text))) => {
                        session.incoming += 1;
                        session.receive(shared, text.as_str())
                    }
                    Some(Ok(Message::Binary(_))) => closing(
                        close::MESSAGE_DECODE_ERROR,
                        "Your session encoding is set to Json, but a binary message was received.",
                    ),
                    // tungstenite answers pings on its own while we read.
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                };
                match reply {
                    Reply::Send { message, effects } => {
                        if !send(ws, session, message).await {
                            return;
                        }
                        effects.apply(shared, id).await;
                    }
                    Reply::Close(code, reason) => return close_with(ws, code, reason).await,
                }
            }
            pushed = inbox.recv() => match pushed {
                Some(Push::Text(text)) => {
                    session.outgoing += 1;
                    if ws.send(Message::text(text)).await.is_err() {
                        return;
                    }
                }
                Some(Push::Close(code, reason)) => return close_with(ws, code, reason).await,
                None => return,
            },
        }
    }
}

/// Sends a close frame, then lets the client answer it before the socket goes.
async fn close_with(ws: &mut Socket, code: u16, reason: String) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    };
    if ws.send(Message::Close(Some(frame))).await.is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Some(Ok(_)) = ws.next().await {}
        })
        .await;
    }
}

async fn send(ws: &mut Socket, session: &mut Session, message: Value) -> bool {
    session.outgoing += 1;
    ws.send(Message::text(message.to_string())).await.is_ok()
}
