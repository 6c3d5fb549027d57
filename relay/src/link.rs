//! The engine link: the one WebSocket per tunnel over which stored webhooks reach the engine.
//!
//! A link exists only while an engine is connected; an idle tunnel has no task. New deliveries
//! are pushed: the HTTP side wakes the attached link's `Notify` after each commit, and the
//! link reads what is new from SQLite. At most `window` deliveries are in flight ahead of the
//! engine's acknowledgements, so a slow engine costs the relay nothing but rows on disk.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt as _, StreamExt as _};
use stagehand_protocol::relay::{
    CLOSE_REPLACED, Delivery, EngineMessage, LAST_SEQ_HEADER, RelayMessage, StreamId,
};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;

use crate::error::ApiError;
use crate::store::{self, StoredDelivery};
use crate::{Relay, RelayError, TunnelSecret, TunnelState};

/// Largest message the engine may send: acks are tiny, but a moderator panel's WebSocket
/// message (a whole scene) is large; the engine never sends more than this in one frame.
const MAX_ENGINE_MESSAGE: usize = stagehand_protocol::relay::MAX_LINK_MESSAGE;
/// Initial read buffer of a link (grows for a larger message, up to MAX_ENGINE_MESSAGE).
const LINK_READ_BUFFER: usize = 4 * 1024;
/// Bytes gathered before a write to the link's socket.
const LINK_WRITE_BUFFER: usize = 16 * 1024;
/// Deliveries read from SQLite per round.
const FETCH_BATCH: u64 = 128;
/// Body bytes read from SQLite per round, past the first delivery.
const FETCH_BYTES: usize = 4 * 1024 * 1024;
/// How long a new link waits for the one it replaces to finish its last acknowledgements.
const REPLACE_WAIT: Duration = Duration::from_secs(5);
/// Close code for "the relay is going away".
const CLOSE_GOING_AWAY: u16 = 1001;

/// What an attached link shares with the rest of the relay.
pub(crate) struct LinkShared {
    id: u64,
    /// Woken after each commit for this tunnel.
    notify: Notify,
    /// Set when a commit evicted deliveries.
    evicted: AtomicBool,
    /// Woken when a newer link takes over.
    replaced: Notify,
    /// Flips to true when the link's task has ended.
    finished: watch::Sender<bool>,
    /// Moderator stream messages for the engine, written by the link's task.
    outbound: mpsc::Sender<RelayMessage>,
    /// Open moderator streams: where the engine's messages for each go.
    streams: Mutex<HashMap<StreamId, StreamSlot>>,
    next_stream: AtomicU64,
    /// Bytes received for moderators and not yet written to them, all streams (a gauge).
    pending_total: Arc<AtomicI64>,
}

/// Where one stream's messages go, and how many of its bytes wait to be written.
struct StreamSlot {
    tx: mpsc::UnboundedSender<EngineMessage>,
    pending: Arc<AtomicI64>,
}

/// A stream's count of bytes received for the moderator and not yet written to them.
#[derive(Clone)]
pub(crate) struct Pending {
    stream: Arc<AtomicI64>,
    total: Arc<AtomicI64>,
}

impl Pending {
    /// `bytes` were written to the moderator.
    pub(crate) fn written(&self, bytes: usize) {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        self.stream.fetch_sub(bytes, Ordering::Relaxed);
        self.total.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// The stream is gone: what it still held will never be written.
    pub(crate) fn forget(&self) {
        let left = self.stream.swap(0, Ordering::Relaxed);
        self.total.fetch_sub(left, Ordering::Relaxed);
    }
}

/// Stream messages queued for one link before a sender waits.
const OUTBOUND_QUEUE: usize = 256;

impl LinkShared {
    fn new(id: u64, pending_total: Arc<AtomicI64>) -> (Self, mpsc::Receiver<RelayMessage>) {
        let (outbound, rx) = mpsc::channel(OUTBOUND_QUEUE);
        let link = Self {
            id,
            notify: Notify::new(),
            evicted: AtomicBool::new(false),
            replaced: Notify::new(),
            finished: watch::channel(false).0,
            outbound,
            streams: Mutex::new(HashMap::new()),
            next_stream: AtomicU64::new(1),
            pending_total,
        };
        (link, rx)
    }

    /// Registers a new moderator stream; the engine's messages for it arrive on the receiver,
    /// which closes when the link ends. `None` when `max` streams are open already.
    pub(crate) fn open_stream(
        &self,
        max: usize,
    ) -> Option<(StreamId, mpsc::UnboundedReceiver<EngineMessage>, Pending)> {
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        if streams.len() >= max {
            return None;
        }
        let id = StreamId(self.next_stream.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = mpsc::unbounded_channel();
        let pending = Arc::new(AtomicI64::new(0));
        streams.insert(
            id,
            StreamSlot {
                tx,
                pending: Arc::clone(&pending),
            },
        );
        let pending = Pending {
            stream: pending,
            total: Arc::clone(&self.pending_total),
        };
        Some((id, rx, pending))
    }

    /// Forgets a stream (its handler is done with it).
    pub(crate) fn forget_stream(&self, id: StreamId) {
        self.streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    /// Queues a stream message for the engine; `false` when the link is gone.
    pub(crate) async fn to_engine(&self, message: RelayMessage) -> bool {
        self.outbound.send(message).await.is_ok()
    }

    /// Queues a stream message without waiting (credits, closes from `Drop`); when the queue
    /// is full it is sent from a task of its own.
    pub(crate) fn to_engine_soon(&self, message: RelayMessage) {
        if let Err(mpsc::error::TrySendError::Full(message)) = self.outbound.try_send(message) {
            let outbound = self.outbound.clone();
            tokio::spawn(async move {
                let _ = outbound.send(message).await;
            });
        }
    }

    /// Hands an engine message to its stream; unknown streams (already closed) are ignored.
    fn dispatch(&self, stream: StreamId, message: EngineMessage) {
        let streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = streams.get(&stream) {
            let bytes = match &message {
                EngineMessage::WsMessage(m) => i64::from(m.cost()),
                EngineMessage::Data(d) => i64::try_from(d.byte_len()).unwrap_or(i64::MAX),
                _ => 0,
            };
            if slot.tx.send(message).is_ok() {
                slot.pending.fetch_add(bytes, Ordering::Relaxed);
                self.pending_total.fetch_add(bytes, Ordering::Relaxed);
            }
        }
    }

    /// Ends every stream: their handlers see the engine gone.
    fn drop_streams(&self) {
        self.streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Something new was committed (and maybe evicted) for this tunnel.
    pub(crate) fn wake(&self, evicted: bool) {
        if evicted {
            self.evicted.store(true, Ordering::Release);
        }
        self.notify.notify_one();
    }
}

/// `GET /tunnel/{tunnel_id}/connect`: checks the secret before upgrading.
pub(crate) async fn connect(
    State(relay): State<Relay>,
    Path(tunnel_id): Path<String>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let secret = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|s| TunnelSecret::new(s.trim()))
        .ok_or_else(ApiError::auth_required)?;
    // Unknown tunnel and wrong secret get the same answer: connecting reveals nothing.
    let tunnel = relay
        .tunnel(&tunnel_id)
        .filter(|t| t.secret_matches(&secret))
        .ok_or_else(|| {
            tracing::info!(tunnel = %tunnel_id, "refused engine link: bad credentials");
            ApiError::invalid_credentials()
        })?;
    let last_seq = match headers.get(LAST_SEQ_HEADER) {
        None => 0,
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_last_seq",
                    format!("{LAST_SEQ_HEADER} must be a non-negative integer"),
                )
            })?,
    };
    let ws = ws.map_err(|_| {
        ApiError::bad_request(
            "websocket_required",
            "this endpoint needs a WebSocket upgrade",
        )
    })?;
    Ok(ws
        .max_message_size(MAX_ENGINE_MESSAGE)
        // tungstenite's default buffers are 128 KiB each way, per link. An engine sends only
        // small acknowledgements, and the write buffer only decides how much is gathered
        // before a write to the socket: small buffers keep an idle linked tunnel cheap.
        .read_buffer_size(LINK_READ_BUFFER)
        .write_buffer_size(LINK_WRITE_BUFFER)
        .on_upgrade(move |socket| run(relay, tunnel, last_seq, socket))
        .into_response())
}

/// Why a link ended.
#[derive(Debug)]
enum End {
    Replaced,
    Shutdown,
    EngineClosed,
    Silent,
    Failed(String),
}

async fn run(relay: Relay, tunnel: Arc<TunnelState>, last_seq: u64, socket: WebSocket) {
    relay.metrics().link_opened();
    let (link, mut outbound) = LinkShared::new(
        relay.next_link_id(),
        Arc::clone(&relay.metrics().moderator_pending),
    );
    let link = Arc::new(link);
    let previous = tunnel
        .link
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .replace(Arc::clone(&link));
    if let Some(previous) = previous {
        previous.replaced.notify_one();
        // Its acknowledgements must reach the writer before ours, so that what we resend
        // reflects them.
        let mut done = previous.finished.subscribe();
        let _ = tokio::time::timeout(REPLACE_WAIT, done.wait_for(|d| *d)).await;
    }
    tracing::info!(tunnel = %tunnel.id, last_seq, "engine link attached");
    let end = drive(&relay, &tunnel, &link, last_seq, socket, &mut outbound).await;
    // Refuse new stream messages first, then end the open streams: a handler either fails to
    // queue or sees its stream end, never waits for an answer that cannot come.
    drop(outbound);
    link.drop_streams();
    {
        let mut slot = tunnel.link.lock().unwrap_or_else(|p| p.into_inner());
        if slot.as_ref().is_some_and(|l| l.id == link.id) {
            *slot = None;
        }
    }
    link.finished.send_replace(true);
    match end {
        End::Failed(reason) => {
            tracing::warn!(tunnel = %tunnel.id, %reason, "engine link failed");
        }
        end => tracing::info!(tunnel = %tunnel.id, ?end, "engine link ended"),
    }
}

type Sink = SplitSink<WebSocket, Message>;

async fn send(tx: &mut Sink, msg: &RelayMessage) -> Result<(), End> {
    feed(tx, msg).await?;
    tx.flush().await.map_err(|e| End::Failed(e.to_string()))
}

async fn feed(tx: &mut Sink, msg: &RelayMessage) -> Result<(), End> {
    let text = serde_json::to_string(msg).map_err(|e| End::Failed(e.to_string()))?;
    tx.feed(Message::Text(text.into()))
        .await
        .map_err(|e| End::Failed(e.to_string()))
}

async fn close(tx: &mut Sink, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tx.send(Message::Close(Some(frame))).await;
}

/// The stream an engine message belongs to, for those that belong to one.
fn stream_of(message: &EngineMessage) -> Option<StreamId> {
    match message {
        EngineMessage::HttpResponse(m) => Some(m.stream),
        EngineMessage::Data(m) => Some(m.stream),
        EngineMessage::WsMessage(m) => Some(m.stream),
        EngineMessage::Window(m) => Some(m.stream),
        EngineMessage::Close(m) => Some(m.stream),
        EngineMessage::Ack { .. } | EngineMessage::EvictedSeen { .. } | EngineMessage::Unknown => {
            None
        }
    }
}

fn db(e: RelayError) -> End {
    End::Failed(e.to_string())
}

fn to_delivery(tunnel: &TunnelState, d: StoredDelivery) -> RelayMessage {
    RelayMessage::Delivery(Delivery {
        seq: d.seq,
        delivery_id: format!("{}-{}", tunnel.id, d.seq),
        path: d.path,
        query: d.query,
        headers: d.headers,
        body_b64: STANDARD.encode(&d.body),
        received_at_ms: d.received_at_ms,
        remote_addr: d.remote_addr,
    })
}

async fn report_evictions(
    relay: &Relay,
    tunnel: &TunnelState,
    tx: &mut Sink,
    from_seq: u64,
) -> Result<Option<u64>, End> {
    let key = tunnel.key;
    let report = relay
        .readers()
        .read(move |c| store::eviction_report(c, key, from_seq))
        .await
        .map_err(db)?;
    let Some(r) = report else {
        return Ok(None);
    };
    send(
        tx,
        &RelayMessage::Evicted {
            count: r.count,
            first_seq: r.first_seq,
            last_seq: r.last_seq,
        },
    )
    .await?;
    Ok(Some(r.last_seq))
}

async fn drive(
    relay: &Relay,
    tunnel: &Arc<TunnelState>,
    link: &LinkShared,
    last_seq: u64,
    socket: WebSocket,
    outbound: &mut mpsc::Receiver<RelayMessage>,
) -> End {
    let (mut tx, mut rx) = socket.split();
    let mut shutdown = relay.shutdown_signal();
    if *shutdown.borrow() {
        close(&mut tx, CLOSE_GOING_AWAY, "relay shutting down").await;
        return End::Shutdown;
    }
    let result = async {
        let attached = relay
            .writer()
            .attach(tunnel.key, last_seq)
            .await
            .map_err(db)?;
        send(
            &mut tx,
            &RelayMessage::Welcome {
                tunnel_id: tunnel.id.to_string(),
                head_seq: attached.head_seq,
            },
        )
        .await?;
        let reported = report_evictions(relay, tunnel, &mut tx, 1).await?;
        Ok::<_, End>((attached, reported.unwrap_or(0)))
    }
    .await;
    let (attached, mut reported_through) = match result {
        Ok(v) => v,
        Err(end) => return end,
    };

    let settings = relay.config().link.clone();
    let window = settings.window.max(1);
    // Everything at or below the floor is gone; the engine has it or was told it was evicted.
    let mut acked = attached.floor_seq;
    let mut sent = attached.floor_seq;
    let mut more = attached.head_seq > sent;
    let mut last_heard = Instant::now();
    let mut ping = tokio::time::interval_at(
        Instant::now() + settings.ping_interval,
        settings.ping_interval,
    );
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        let can_send = more && sent.saturating_sub(acked) < window;
        tokio::select! {
            biased;
            () = async { let _ = shutdown.wait_for(|s| *s).await; } => {
                close(&mut tx, CLOSE_GOING_AWAY, "relay shutting down").await;
                return End::Shutdown;
            }
            () = link.replaced.notified() => {
                close(&mut tx, CLOSE_REPLACED, "replaced by a newer connection").await;
                return End::Replaced;
            }
            incoming = rx.next() => {
                last_heard = Instant::now();
                let msg = match incoming {
                    None => return End::EngineClosed,
                    Some(Err(e)) => return End::Failed(e.to_string()),
                    Some(Ok(msg)) => msg,
                };
                let text = match msg {
                    Message::Text(text) => text,
                    Message::Close(_) => return End::EngineClosed,
                    _ => continue,
                };
                match serde_json::from_str::<EngineMessage>(text.as_str()) {
                    Ok(EngineMessage::Ack { seq }) if seq > acked => {
                        acked = seq;
                        sent = sent.max(acked);
                        more = true;
                        if let Err(e) = relay.writer().ack(tunnel.key, seq).await {
                            return db(e);
                        }
                    }
                    Ok(EngineMessage::EvictedSeen { last_seq }) => {
                        if let Err(e) = relay.writer().evicted_seen(tunnel.key, last_seq).await {
                            return db(e);
                        }
                    }
                    Ok(message) => {
                        if let Some(stream) = stream_of(&message) {
                            link.dispatch(stream, message);
                        }
                    }
                    Err(e) => tracing::debug!(tunnel = %tunnel.id, error = %e, "ignored an unreadable engine message"),
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > settings.pong_timeout {
                    return End::Silent;
                }
                if let Err(e) = tx.send(Message::Ping(Default::default())).await {
                    return End::Failed(e.to_string());
                }
            }
            () = link.notify.notified() => {
                more = true;
                if link.evicted.swap(false, Ordering::AcqRel) {
                    match report_evictions(relay, tunnel, &mut tx, reported_through + 1).await {
                        Ok(Some(last)) => reported_through = last,
                        Ok(None) => {}
                        Err(end) => return end,
                    }
                }
            }
            () = std::future::ready(()), if can_send => {
                let key = tunnel.key;
                let limit = (window - sent.saturating_sub(acked)).min(FETCH_BATCH);
                let after = sent;
                let batch = match relay
                    .readers()
                    .read(move |c| store::deliveries_after(c, key, after, limit, FETCH_BYTES))
                    .await
                {
                    Ok(batch) => batch,
                    Err(e) => return db(e),
                };
                let Some(first) = batch.first() else {
                    more = false;
                    continue;
                };
                // A gap means evictions passed us: those seqs no longer count as in flight.
                if first.seq > sent + 1 {
                    acked = acked.max(first.seq - 1);
                }
                relay.metrics().sent(batch.len() as u64);
                for d in batch {
                    sent = d.seq;
                    if let Err(end) = feed(&mut tx, &to_delivery(tunnel, d)).await {
                        return end;
                    }
                }
                if let Err(e) = tx.flush().await {
                    return End::Failed(e.to_string());
                }
            }
            // Last in this biased select: stored webhooks go first, moderators' traffic
            // fills what is left.
            Some(message) = outbound.recv() => {
                // Stream messages: send what is queued together, then flush once.
                let mut batch = 0;
                let mut next = Some(message);
                while let Some(message) = next.take() {
                    if let Err(end) = feed(&mut tx, &message).await {
                        return end;
                    }
                    batch += 1;
                    if batch < 64 {
                        next = outbound.try_recv().ok();
                    }
                }
                if let Err(e) = tx.flush().await {
                    return End::Failed(e.to_string());
                }
            }
        }
    }
}
