//! A moderator's WebSocket, carried both ways once the engine accepts the upgrade: each
//! direction within the stream's credit window, the moderator's messages paced, their socket
//! pinged and dropped when silent.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::{SinkExt as _, StreamExt as _};
use stagehand_protocol::relay::{
    EngineMessage, RelayMessage, STREAM_WINDOW, StreamClose, StreamId, StreamWsMessage,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{CLOSE_OFFLINE, Stream, credit};
use crate::link::{LinkShared, Pending};

/// How often the relay pings a moderator's socket; one silent for three pings is dropped.
const MODERATOR_PING: Duration = Duration::from_secs(15);
const MODERATOR_SILENCE: Duration = Duration::from_secs(45);

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
pub(super) async fn pump(
    socket: WebSocket,
    mut stream: Stream,
    door: crate::config::DoorLimits,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    // Why the link ended, in the close the moderator's panel gets: the streamer's app went
    // away (try again soon), or this relay is stopping (going away).
    let link_gone = || {
        if *shutdown.borrow() {
            (1001, "the relay is restarting".to_owned())
        } else {
            (CLOSE_OFFLINE, "the streamer's app went offline".to_owned())
        }
    };
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
                    break Some(link_gone());
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
                        break Some(link_gone());
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
    id: StreamId,
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
