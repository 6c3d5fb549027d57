//! The engine's end of the relay's moderator door: requests and WebSockets a moderator opened
//! at `{relay}/t/{tunnel_id}/…` arrive as streams on the relay link, and each is handed to the
//! door's handler, which the local server installs at startup ([`RelayDoorService`]). The
//! server answers them with its own router and its own moderator-socket loop, so every
//! moderator operation is the one the local and LAN doors use — single-use keys, sessions,
//! scopes, audit — written once, and the engine opens no connection to its own server.
//!
//! What a request means (methods, status codes, cookies, origins) is the server's business;
//! this module keeps to the relay's protocol. Each stream has a credit window both ways (see
//! [`stagehand_protocol::relay`]), so a moderator who stops reading holds up nothing but their
//! own stream; when the link ends, every stream ends with it.
//!
//! Here: the door's handler and the engine's calls about the door, the table of open streams
//! and what they owe the relay. A stream as the handler sees it is in `http` ([`DoorStream`]);
//! a relayed WebSocket, once accepted, in `websocket` ([`RelayedSocket`]).

mod http;
mod websocket;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock, Weak};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::future::BoxFuture;
use stagehand_protocol::ErrorBody;
use stagehand_protocol::relay::{
    CLOSE_TOO_BIG, EngineMessage, HttpResponse, MAX_LINK_MESSAGE, RelayMessage, STREAM_WINDOW,
    StreamClose, StreamData, StreamId, moderator_prefix,
};
use tokio::sync::mpsc;

pub use self::http::{BodyError, DoorStream};
pub use self::websocket::{RelayedSocket, SocketEnded, SocketFrame};
use crate::Engine;

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

/// What serves the streams of the relay's moderator door: the local server, which answers
/// them in process as it answers its own connections. The engine names only this; it knows
/// nothing of routes or HTTP.
pub trait RelayDoorService: Send + Sync + 'static {
    /// Serves one stream to its end: answers its request, or accepts its socket and carries
    /// it until either side closes.
    fn serve(&self, stream: DoorStream) -> BoxFuture<'static, ()>;
}

/// The door's handler, once the server has installed one.
#[derive(Default)]
pub(crate) struct DoorState {
    /// Held weakly: the handler holds the server's state, which holds this engine, so a strong
    /// reference would be a cycle that keeps a stopped engine and its background tasks (the
    /// account watchers among them) alive. The startup's `Running` owns the handler.
    service: RwLock<Option<Weak<dyn RelayDoorService>>>,
}

impl std::fmt::Debug for DoorState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DoorState")
            .field("installed", &self.service().is_some())
            .finish()
    }
}

impl DoorState {
    fn service(&self) -> Option<Arc<dyn RelayDoorService>> {
        self.service
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(Weak::upgrade)
    }
}

impl Engine {
    /// Installs what serves the relay door's streams (the startup does, once the server is
    /// bound, and keeps it). Until then, and once it is dropped, the relay is told Stagehand
    /// is offline.
    pub fn relay_door_install(&self, service: Arc<dyn RelayDoorService>) {
        *self
            .inner
            .relay_door
            .service
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(Arc::downgrade(&service));
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

/// Most streams the engine keeps open for one relay link. The relay holds its own cap (256 by
/// default, `door.max_streams`); this one is the engine's, since it does not take the relay's
/// word for it.
const MAX_STREAMS: usize = 1024;

/// Most bytes the relay may have sent on all the streams of one link that the engine has not
/// credited back yet. A relay keeping to the windows stays far below it (each stream owes at
/// most its window, or one message larger than the window); what passes it is refused.
const LINK_BUDGET: i64 = 32 * 1024 * 1024;

/// What the relay sent on one stream that the engine has not credited back yet, counted in the
/// link's total too.
///
/// The relay sends only while its credit covers a message (or, for one larger than the whole
/// window, while it has the whole window), and the engine's count of what it owes is never
/// above the relay's (it lowers its count before it sends the credit), so a relay that keeps
/// to the window is never refused. One that does not would have the engine queue without
/// bound: its stream is closed instead.
#[derive(Debug)]
pub(super) struct Owed {
    stream: AtomicI64,
    link: Arc<AtomicI64>,
}

impl Owed {
    fn new(link: Arc<AtomicI64>) -> Self {
        Self {
            stream: AtomicI64::new(0),
            link,
        }
    }

    /// Counts `cost` more, if a relay keeping to the window could have sent it. Only
    /// `Door::handle` counts (it has the door to itself), so checking and adding need no
    /// single atomic step; crediting only ever lowers the counts.
    fn take(&self, cost: u32) -> bool {
        if cost == 0 {
            return true;
        }
        let (cost, window) = (i64::from(cost), i64::from(STREAM_WINDOW));
        if self.stream.load(Ordering::Acquire) + cost.min(window) > window
            || self.link.load(Ordering::Acquire) + cost > LINK_BUDGET
        {
            return false;
        }
        self.stream.fetch_add(cost, Ordering::AcqRel);
        self.link.fetch_add(cost, Ordering::AcqRel);
        true
    }

    /// `bytes` are about to be credited back to the relay (call before sending the credit).
    pub(super) fn credited(&self, bytes: u32) {
        self.stream.fetch_sub(i64::from(bytes), Ordering::AcqRel);
        self.link.fetch_sub(i64::from(bytes), Ordering::AcqRel);
    }
}

impl Drop for Owed {
    /// A stream that ends gives back to the link what it still owed.
    fn drop(&mut self) {
        self.link
            .fetch_sub(self.stream.load(Ordering::Acquire), Ordering::AcqRel);
    }
}

/// One open stream: where its messages go, and what it owes the relay.
struct OpenStream {
    tx: mpsc::UnboundedSender<RelayMessage>,
    owed: Arc<Owed>,
}

/// The streams open on one relay connection. Dropped with the connection, which ends them.
pub(crate) struct Door {
    engine: Engine,
    outbound: mpsc::Sender<EngineMessage>,
    streams: HashMap<StreamId, OpenStream>,
    /// What all streams of this link owe the relay.
    owed: Arc<AtomicI64>,
}

impl Door {
    pub(crate) fn new(engine: Engine, outbound: mpsc::Sender<EngineMessage>) -> Self {
        Self {
            engine,
            outbound,
            streams: HashMap::new(),
            owed: Arc::default(),
        }
    }

    /// Takes one stream message from the relay. Never waits.
    pub(crate) fn handle(&mut self, message: RelayMessage) {
        let (stream, cost) = match &message {
            RelayMessage::HttpRequest(request) => {
                // Streams that finished on their own leave a closed sender behind.
                self.streams.retain(|_, open| !open.tx.is_closed());
                let stream = request.stream;
                if self.streams.contains_key(&stream) {
                    tracing::warn!(%stream, "the relay reused an open stream id; ignored");
                    return;
                }
                if self.streams.len() >= MAX_STREAMS {
                    tracing::warn!(streams = MAX_STREAMS, "the relay opened too many streams");
                    let out = self.outbound.clone();
                    tokio::spawn(async move {
                        refuse(
                            &out,
                            stream,
                            503,
                            "too_many_streams",
                            "too many open requests",
                        )
                        .await;
                    });
                    return;
                }
                let (tx, rx) = mpsc::unbounded_channel();
                let owed = Arc::new(Owed::new(Arc::clone(&self.owed)));
                self.streams.insert(
                    stream,
                    OpenStream {
                        tx,
                        owed: Arc::clone(&owed),
                    },
                );
                let RelayMessage::HttpRequest(request) = message else {
                    return;
                };
                let stream = DoorStream::new(request, self.outbound.clone(), Inbox { rx, owed });
                tokio::spawn(serve(self.engine.inner.relay_door.service(), stream));
                return;
            }
            RelayMessage::Data(m) => (m.stream, u32::try_from(m.byte_len()).unwrap_or(u32::MAX)),
            RelayMessage::WsMessage(m) => (m.stream, m.cost()),
            RelayMessage::Window(m) => (m.stream, 0),
            RelayMessage::Close(m) => (m.stream, 0),
            _ => return,
        };
        let Some(open) = self.streams.get(&stream) else {
            return;
        };
        if !open.owed.take(cost) {
            // Dropping its sender ends the stream's task; the relay is told why.
            self.streams.remove(&stream);
            tracing::warn!(
                %stream,
                "the relay sent past a stream's window; it is closed"
            );
            let close = EngineMessage::Close(StreamClose {
                stream,
                code: Some(1008),
                reason: "sent past the stream's window".into(),
            });
            let _ = self.outbound.try_send(close);
            return;
        }
        let last = matches!(message, RelayMessage::Close(_));
        if open.tx.send(message).is_err() || last {
            self.streams.remove(&stream);
        }
    }
}

/// A stream's messages from the relay, and what it owes the relay for them.
pub(super) struct Inbox {
    rx: mpsc::UnboundedReceiver<RelayMessage>,
    /// Credit back through this as messages are passed on.
    pub(super) owed: Arc<Owed>,
}

impl Inbox {
    /// The next message; `None` once the stream is over.
    pub(super) async fn recv(&mut self) -> Option<RelayMessage> {
        self.rx.recv().await
    }
}

/// One stream's task: the installed handler serves it; without one, the relay is told
/// Stagehand is offline.
async fn serve(service: Option<Arc<dyn RelayDoorService>>, stream: DoorStream) {
    match service {
        Some(service) => service.serve(stream).await,
        None => stream.offline().await,
    }
}

async fn send(out: &mpsc::Sender<EngineMessage>, message: EngineMessage) -> bool {
    out.send(message).await.is_ok()
}

/// Header the relay knows: the streamer's app cannot answer (the relay shows its offline page).
const OFFLINE_HEADER: &str = "x-stagehand-offline";

/// The door's own answers, before any handler sees the stream: Stagehand is not serving (the
/// relay then shows its offline page), or the relay opened too many streams. Every other
/// answer is the handler's.
async fn refuse(
    out: &mpsc::Sender<EngineMessage>,
    stream: StreamId,
    status: u16,
    code: &str,
    message: &str,
) {
    let body = match serde_json::to_string(&ErrorBody::new(code, message)) {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(error = %e, "cannot encode the relay door's answer");
            return;
        }
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_owes_no_more_than_a_relay_keeping_to_the_window_can_send() {
        let owed = Owed::new(Arc::default());
        assert!(owed.take(STREAM_WINDOW - 10));
        assert!(owed.take(10), "the window exactly");
        assert!(!owed.take(1), "past it");
        owed.credited(100);
        assert!(!owed.take(101));
        assert!(owed.take(100));
        owed.credited(STREAM_WINDOW);
        assert!(
            owed.take(4 * STREAM_WINDOW),
            "one message larger than the window goes when the window is all there"
        );
        assert!(
            owed.take(0),
            "credits and closes cost nothing, even while a large message is owed"
        );
        assert!(!owed.take(1));
    }

    #[test]
    fn a_link_owes_no_more_than_its_budget_and_ended_streams_give_theirs_back() {
        let link = Arc::new(AtomicI64::new(0));
        let streams: Vec<Owed> = (0..LINK_BUDGET / i64::from(STREAM_WINDOW))
            .map(|_| Owed::new(Arc::clone(&link)))
            .collect();
        for owed in &streams {
            assert!(owed.take(STREAM_WINDOW));
        }
        let one_more = Owed::new(Arc::clone(&link));
        assert!(!one_more.take(1), "the link's budget is spent");
        drop(streams);
        assert_eq!(link.load(Ordering::Acquire), 0);
        assert!(one_more.take(1));
    }
}
