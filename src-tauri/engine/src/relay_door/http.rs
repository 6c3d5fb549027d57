//! The HTTP replay: a moderator's request, its body taken within the credit this engine
//! grants, sent to the local server with the door's mark, and the answer streamed back within
//! the relay's credit.

use std::collections::VecDeque;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::StreamExt as _;
use stagehand_protocol::relay::{
    EngineMessage, HttpRequest, HttpResponse, RelayMessage, STREAM_CHUNK, STREAM_WINDOW,
    StreamClose, StreamData, StreamWindow,
};
use tokio::sync::mpsc;

use super::{
    Inbox, RELAY_CLIENT_HEADER, RELAY_HEADER, forwarded, local_unreachable, local_url, refuse,
    response_headers, send,
};
use crate::Engine;

/// Largest request body taken from the relay. The moderator surface takes one form (the
/// link's key), so this is small; bodies are credited as they arrive, and this is what bounds
/// a stream's body in memory.
const MAX_BODY: usize = 64 * 1024;

pub(super) async fn http(
    engine: &Engine,
    out: &mpsc::Sender<EngineMessage>,
    target: &str,
    token: &str,
    request: HttpRequest,
    mut rx: Inbox,
) {
    let stream = request.stream;
    let mut body = Vec::new();
    if request.has_body {
        loop {
            match rx.recv().await {
                Some(RelayMessage::Data(data)) => {
                    let Ok(chunk) = STANDARD.decode(&data.data_b64) else {
                        refuse(
                            out,
                            stream,
                            400,
                            "body_unreadable",
                            "the body could not be read",
                        )
                        .await;
                        return;
                    };
                    if body.len() + chunk.len() > MAX_BODY {
                        refuse(
                            out,
                            stream,
                            413,
                            "payload_too_large",
                            "the body is too large",
                        )
                        .await;
                        return;
                    }
                    body.extend_from_slice(&chunk);
                    let bytes = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
                    rx.owed.credited(bytes);
                    let credit = EngineMessage::Window(StreamWindow { stream, bytes });
                    if !send(out, credit).await {
                        return;
                    }
                    if data.fin {
                        break;
                    }
                }
                Some(RelayMessage::Close(_)) | None => return,
                Some(_) => {}
            }
        }
    }
    // The moderator surface takes GET, HEAD and POST; whatever else a relay names stops here.
    let method = match request.method.as_str() {
        "GET" => reqwest::Method::GET,
        "HEAD" => reqwest::Method::HEAD,
        "POST" => reqwest::Method::POST,
        _ => {
            refuse(
                out,
                stream,
                405,
                "method_not_allowed",
                "GET, HEAD and POST only",
            )
            .await;
            return;
        }
    };
    let Some(client) = engine.door_client() else {
        refuse(
            out,
            stream,
            503,
            "streamer_offline",
            "Stagehand cannot answer through the relay",
        )
        .await;
        return;
    };
    let mut builder = client.request(method, local_url(target, &request));
    for (name, value) in forwarded(&request.headers) {
        builder = builder.header(name, value);
    }
    builder = builder.header(RELAY_HEADER, token);
    if let Some(client) = &request.client {
        builder = builder.header(RELAY_CLIENT_HEADER, client);
    }
    if !body.is_empty() {
        builder = builder.body(body);
    }
    let response = tokio::select! {
        response = builder.send() => response,
        // The moderator went away before Stagehand answered.
        () = closed(&mut rx) => return,
    };
    let response = match response {
        Ok(response) => response,
        Err(e) => {
            // Without the URL: it may carry a one-time key or a session.
            tracing::warn!(error = %e.without_url(), "the relay door could not reach the local server");
            local_unreachable(out, stream).await;
            return;
        }
    };
    let head = EngineMessage::HttpResponse(HttpResponse {
        stream,
        status: response.status().as_u16(),
        headers: response_headers(response.headers()),
    });
    if !send(out, head).await {
        return;
    }
    let mut chunks = response.bytes_stream();
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
            from_relay = rx.recv() => match from_relay {
                Some(RelayMessage::Window(w)) => credit += i64::from(w.bytes),
                Some(RelayMessage::Close(_)) | None => return,
                Some(_) => {}
            },
            chunk = chunks.next(), if !ended && queue.is_empty() => match chunk {
                Some(Ok(bytes)) => queue.extend(bytes.chunks(STREAM_CHUNK).map(<[u8]>::to_vec)),
                Some(Err(e)) => {
                    tracing::warn!(error = %e.without_url(), "a relayed answer broke off");
                    let _ = send(out, EngineMessage::Close(StreamClose { stream, code: None, reason: "the answer broke off".into() })).await;
                    return;
                }
                None => ended = true,
            },
        }
    }
}

/// Resolves when the relay ends the stream (or the link goes); other messages are dropped.
async fn closed(rx: &mut Inbox) {
    loop {
        match rx.recv().await {
            Some(RelayMessage::Close(_)) | None => return,
            Some(_) => {}
        }
    }
}
