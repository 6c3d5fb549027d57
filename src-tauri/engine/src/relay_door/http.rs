//! One stream of the relay's moderator door as its handler sees it: the request the relay
//! forwarded, its body taken within the credit this engine grants, and the answer carried back
//! within the relay's credit. What the request means is the handler's business.

use std::collections::VecDeque;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::{Stream, StreamExt as _};
use stagehand_protocol::relay::{
    EngineMessage, HttpRequest, HttpResponse, RelayMessage, STREAM_CHUNK, STREAM_WINDOW,
    StreamClose, StreamData, StreamWindow,
};
use tokio::sync::mpsc;

use super::websocket::{self, RelayedSocket};
use super::{Inbox, refuse, send};

/// Reading a relayed request's body did not give a body.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body is larger than the handler takes.
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    /// A chunk was not base64.
    #[error("the body could not be read")]
    Unreadable,
    /// The relay ended the stream (the moderator went away); nothing is to be answered.
    #[error("the stream ended before its body did")]
    Ended,
}

/// One request a moderator sent through the relay, waiting for its answer. Dropped without
/// one, the relay's side of the stream waits until the link ends.
pub struct DoorStream {
    request: HttpRequest,
    out: mpsc::Sender<EngineMessage>,
    inbox: Inbox,
}

impl std::fmt::Debug for DoorStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the request itself: its path or cookie may carry a key or a session.
        f.debug_struct("DoorStream")
            .field("stream", &self.request.stream)
            .finish_non_exhaustive()
    }
}

impl DoorStream {
    pub(super) fn new(
        request: HttpRequest,
        out: mpsc::Sender<EngineMessage>,
        inbox: Inbox,
    ) -> Self {
        Self {
            request,
            out,
            inbox,
        }
    }

    /// The request as the relay forwarded it (only the headers the relay tunnels; the relay is
    /// not trusted to have filtered them).
    pub fn request(&self) -> &HttpRequest {
        &self.request
    }

    /// The request's body, up to `max` bytes, credited back to the relay as it arrives (what
    /// bounds a stream's body in memory). Call once.
    pub async fn body(&mut self, max: usize) -> Result<Vec<u8>, BodyError> {
        let stream = self.request.stream;
        let mut body = Vec::new();
        if !self.request.has_body {
            return Ok(body);
        }
        loop {
            match self.inbox.recv().await {
                Some(RelayMessage::Data(data)) => {
                    let chunk = STANDARD
                        .decode(&data.data_b64)
                        .map_err(|_| BodyError::Unreadable)?;
                    if body.len() + chunk.len() > max {
                        return Err(BodyError::TooLarge(max));
                    }
                    body.extend_from_slice(&chunk);
                    let bytes = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
                    self.inbox.owed.credited(bytes);
                    let credit = EngineMessage::Window(StreamWindow { stream, bytes });
                    if !send(&self.out, credit).await {
                        return Err(BodyError::Ended);
                    }
                    if data.fin {
                        return Ok(body);
                    }
                }
                Some(RelayMessage::Close(_)) | None => return Err(BodyError::Ended),
                Some(_) => {}
            }
        }
    }

    /// Resolves when the relay ends the stream (the moderator went away, or the link did);
    /// other messages are dropped. For racing an answer that is still being made.
    pub async fn ended(&mut self) {
        loop {
            match self.inbox.recv().await {
                Some(RelayMessage::Close(_)) | None => return,
                Some(_) => {}
            }
        }
    }

    /// Sends the answer: its head, then its body in chunks within the relay's credit.
    pub async fn respond<S, B, E>(mut self, status: u16, headers: Vec<(String, String)>, body: S)
    where
        S: Stream<Item = Result<B, E>> + Send,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        let stream = self.request.stream;
        let out = &self.out;
        let head = EngineMessage::HttpResponse(HttpResponse {
            stream,
            status,
            headers,
        });
        if !send(out, head).await {
            return;
        }
        let mut chunks = std::pin::pin!(body);
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
                from_relay = self.inbox.recv() => match from_relay {
                    Some(RelayMessage::Window(w)) => credit += i64::from(w.bytes),
                    Some(RelayMessage::Close(_)) | None => return,
                    Some(_) => {}
                },
                chunk = chunks.next(), if !ended && queue.is_empty() => match chunk {
                    Some(Ok(bytes)) => queue.extend(
                        bytes.as_ref().chunks(STREAM_CHUNK).map(<[u8]>::to_vec),
                    ),
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "a relayed answer broke off");
                        let close = StreamClose { stream, code: None, reason: "the answer broke off".into() };
                        let _ = send(out, EngineMessage::Close(close)).await;
                        return;
                    }
                    None => ended = true,
                },
            }
        }
    }

    /// Answers that Stagehand is not serving: the relay shows its offline page.
    pub async fn offline(self) {
        refuse(
            &self.out,
            self.request.stream,
            503,
            "streamer_offline",
            "Stagehand's local server is not answering",
        )
        .await;
    }

    /// Accepts the stream's WebSocket: the relay completes the moderator's upgrade, and the
    /// socket is carried both ways within each side's credit until either end closes it.
    /// `None` when the link went meanwhile.
    pub async fn accept_socket(self) -> Option<RelayedSocket> {
        websocket::accept(self.request.stream, self.out, self.inbox).await
    }
}
