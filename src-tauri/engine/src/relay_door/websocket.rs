//! A relayed WebSocket, once the door's handler accepted it: a [`Stream`] and [`Sink`] of
//! [`SocketFrame`]s that the server's moderator-socket loop runs over exactly as it runs over a
//! local socket. A pump task carries the frames over the relay stream within each side's
//! credit: what the relay sends is credited back as the handler takes it, and what the handler
//! sends waits for the relay's credit, so a moderator who stops reading holds up only their
//! own socket.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::stream::BoxStream;
use futures_util::{Sink, Stream};
use stagehand_protocol::relay::{
    EngineMessage, HttpResponse, RelayMessage, STREAM_WINDOW, StreamClose, StreamId, StreamWindow,
    StreamWsMessage,
};
use tokio::sync::mpsc;

use super::{Inbox, Owed, send};

/// One message of a relayed WebSocket, either way. Pings stay on each hop: the relay answers
/// the moderator's, and the link has its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketFrame {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// The socket closes, with a code and reason when one was given.
    Close(Option<(u16, String)>),
}

/// The relayed socket has ended: nothing more can be sent on it.
#[derive(Debug, thiserror::Error)]
#[error("the relayed socket has ended")]
pub struct SocketEnded;

/// A moderator's WebSocket through the relay: frames from the moderator as a [`Stream`],
/// frames to the moderator as a [`Sink`]. Dropped, it closes the socket (1011 unless a close
/// was sent).
pub struct RelayedSocket {
    incoming: BoxStream<'static, SocketFrame>,
    outgoing: Pin<Box<dyn Sink<SocketFrame, Error = SocketEnded> + Send>>,
}

impl std::fmt::Debug for RelayedSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayedSocket").finish_non_exhaustive()
    }
}

impl Stream for RelayedSocket {
    type Item = SocketFrame;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SocketFrame>> {
        self.incoming.as_mut().poll_next(cx)
    }
}

impl Sink<SocketFrame> for RelayedSocket {
    type Error = SocketEnded;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SocketEnded>> {
        self.outgoing.as_mut().poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, frame: SocketFrame) -> Result<(), SocketEnded> {
        self.outgoing.as_mut().start_send(frame)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SocketEnded>> {
        self.outgoing.as_mut().poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SocketEnded>> {
        self.outgoing.as_mut().poll_close(cx)
    }
}

/// A close code that may be sent in a close frame (1005, 1006 and 1015 may not).
fn sendable(code: u16) -> u16 {
    match code {
        1000..=1004 | 1007..=1014 | 3000..=4999 => code,
        _ => 1011,
    }
}

/// Tells the relay the socket is accepted (101) and starts carrying it.
pub(super) async fn accept(
    stream: StreamId,
    out: mpsc::Sender<EngineMessage>,
    inbox: Inbox,
) -> Option<RelayedSocket> {
    let accepted = EngineMessage::HttpResponse(HttpResponse {
        stream,
        status: 101,
        headers: Vec::new(),
    });
    if !send(&out, accepted).await {
        return None;
    }
    let owed = Arc::clone(&inbox.owed);
    // From the relay: unbounded, since the relay's window bounds it. To the relay: one frame
    // waits here while the pump holds another for credit, so a handler sending to a
    // moderator who does not read waits, as it would on a full local socket.
    let (to_handler, from_relay) = mpsc::unbounded_channel();
    let (to_relay, from_handler) = mpsc::channel(1);
    tokio::spawn(pump(stream, out.clone(), inbox, to_handler, from_handler));
    let incoming = futures_util::stream::unfold(
        (from_relay, out, owed),
        move |(mut rx, out, owed)| async move {
            let (frame, cost) = rx.recv().await?;
            credit(&out, &owed, stream, cost).await;
            Some((frame, (rx, out, owed)))
        },
    );
    let outgoing = futures_util::sink::unfold(
        to_relay,
        |tx: mpsc::Sender<SocketFrame>, frame| async move {
            tx.send(frame).await.map_err(|_| SocketEnded)?;
            Ok::<_, SocketEnded>(tx)
        },
    );
    Some(RelayedSocket {
        incoming: Box::pin(incoming),
        outgoing: Box::pin(outgoing),
    })
}

/// Gives the relay back `cost` bytes of credit for a message passed on.
async fn credit(out: &mpsc::Sender<EngineMessage>, owed: &Owed, stream: StreamId, cost: u32) {
    if cost == 0 {
        return;
    }
    owed.credited(cost);
    let _ = send(
        out,
        EngineMessage::Window(StreamWindow {
            stream,
            bytes: cost,
        }),
    )
    .await;
}

/// Carries one socket's frames between the relay stream and the handler until either closes.
async fn pump(
    stream: StreamId,
    out: mpsc::Sender<EngineMessage>,
    mut inbox: Inbox,
    to_handler: mpsc::UnboundedSender<(SocketFrame, u32)>,
    mut from_handler: mpsc::Receiver<SocketFrame>,
) {
    let mut credit_left = i64::from(STREAM_WINDOW);
    let mut pending: Option<StreamWsMessage> = None;
    loop {
        let cost = pending.as_ref().map_or(0, |m| i64::from(m.cost()));
        let can_send = pending.is_some() && credit_left >= cost.min(i64::from(STREAM_WINDOW));
        tokio::select! {
            from_relay = inbox.recv() => match from_relay {
                Some(RelayMessage::WsMessage(m)) => {
                    let cost = m.cost();
                    match from_wire(m) {
                        Some(frame) => {
                            let _ = to_handler.send((frame, cost));
                        }
                        // Nothing to pass on, but the relay still gets its credit back.
                        None => credit(&out, &inbox.owed, stream, cost).await,
                    }
                }
                Some(RelayMessage::Window(w)) => credit_left += i64::from(w.bytes),
                Some(RelayMessage::Close(close)) => {
                    let code = sendable(close.code.unwrap_or(1000));
                    let _ = to_handler.send((SocketFrame::Close(Some((code, close.reason))), 0));
                    break;
                }
                Some(_) => {}
                None => {
                    let _ = to_handler.send((SocketFrame::Close(None), 0));
                    break;
                }
            },
            frame = from_handler.recv(), if pending.is_none() => match frame {
                Some(SocketFrame::Text(text)) => {
                    pending = Some(StreamWsMessage { stream, text: Some(text), binary_b64: None });
                }
                Some(SocketFrame::Binary(bytes)) => {
                    pending = Some(StreamWsMessage { stream, text: None, binary_b64: Some(STANDARD.encode(&bytes)) });
                }
                Some(SocketFrame::Close(frame)) => {
                    let (code, reason) = frame.unwrap_or((1000, String::new()));
                    closed_by_stagehand(&out, stream, sendable(code), reason).await;
                    break;
                }
                None => {
                    closed_by_stagehand(&out, stream, 1011, "Stagehand closed the socket".into()).await;
                    break;
                }
            },
            () = std::future::ready(()), if can_send => {
                if let Some(message) = pending.take() {
                    credit_left -= i64::from(message.cost());
                    if !send(&out, EngineMessage::WsMessage(message)).await {
                        break;
                    }
                }
            }
        }
    }
}

async fn closed_by_stagehand(
    out: &mpsc::Sender<EngineMessage>,
    stream: StreamId,
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

/// A relayed WebSocket message as a frame; `None` when it holds nothing readable.
fn from_wire(m: StreamWsMessage) -> Option<SocketFrame> {
    match (m.text, m.binary_b64) {
        (Some(text), _) => Some(SocketFrame::Text(text)),
        (None, Some(b64)) => STANDARD.decode(b64).ok().map(SocketFrame::Binary),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_close_codes_are_not_sent() {
        assert_eq!(sendable(4401), 4401);
        assert_eq!(sendable(1000), 1000);
        assert_eq!(sendable(1006), 1011);
        assert_eq!(sendable(1005), 1011);
        assert_eq!(sendable(0), 1011);
    }
}
