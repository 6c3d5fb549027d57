//! The WebSocket replay: a moderator's socket opened against the local server with the door's
//! mark, then carried both ways within each side's credit until either end closes it. A
//! refused upgrade goes back as the plain HTTP answer it was.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::{SinkExt as _, StreamExt as _};
use stagehand_protocol::relay::{
    EngineMessage, HttpRequest, HttpResponse, RelayMessage, STREAM_WINDOW, StreamClose, StreamData,
    StreamId, StreamWindow, StreamWsMessage,
};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::{
    Inbox, Owed, RELAY_CLIENT_HEADER, RELAY_HEADER, forwarded, local_unreachable, local_url,
    refuse, response_headers, send,
};

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

pub(super) async fn websocket(
    out: &mpsc::Sender<EngineMessage>,
    target: &str,
    token: &str,
    request: HttpRequest,
    mut rx: Inbox,
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
            local_unreachable(out, stream).await;
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
    let owed = Arc::clone(&rx.owed);
    let mut writer = tokio::spawn(write_to_local(to_local, writes, out.clone(), stream, owed));
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
    stream: StreamId,
    owed: Arc<Owed>,
) {
    while let Some((message, cost)) = writes.recv().await {
        let last = matches!(message, tungstenite::Message::Close(_));
        if to_local.send(message).await.is_err() || last {
            return;
        }
        owed.credited(cost);
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
