//! A moderator's WebSocket through the relay, as the server's handlers see it. The door
//! ([`crate::relay_door`]) gives a relayed socket request a [`RelayedUpgrade`], which the
//! socket's handler accepts the way it accepts a local upgrade; the door then runs the
//! handler's task over a [`RelayedWebSocket`], a `Stream + Sink` of axum's messages, so the
//! moderator-socket loop is one loop for both doors.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::extract::ws::{CloseFrame, Message};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use futures_util::{Sink, Stream};
use stagehand_engine::relay_door::{RelayedSocket, SocketEnded, SocketFrame};

pub(crate) type SocketTask = Box<dyn FnOnce(RelayedWebSocket) -> BoxFuture<'static, ()> + Send>;

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

    /// The task the handler left, once (the door runs it on the accepted socket).
    pub(crate) fn take(&self) -> Option<SocketTask> {
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

impl RelayedWebSocket {
    /// `socket` with messages over `max` bytes refused, as a local socket refuses them.
    pub(crate) fn new(socket: RelayedSocket, max: usize) -> Self {
        Self { socket, max }
    }
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
