//! Carrying an admitted request to the engine as a stream on its link, and the engine's
//! answer back to the moderator: the request body within the engine's credit, the response
//! body as the moderator takes it, and only the response headers that cannot reach past the
//! tunnel. A WebSocket upgrade the engine accepts is handed to the pump.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::StreamExt as _;
use stagehand_protocol::relay::{
    EngineMessage, HttpRequest, HttpResponse, RelayMessage, STREAM_CHUNK, STREAM_WINDOW,
    StreamData, TUNNELLED_REQUEST_HEADERS,
};

use super::admit::Admitted;
use super::pump::pump;
use super::{Stream, credit, offline};
use crate::Relay;
use crate::error::ApiError;

/// The response headers passed to the moderator. Every tunnel on a relay shares the relay's
/// web origin, so an engine must not be able to set anything that reaches past its own
/// tunnel (a service worker scope, a cookie for another path, a redirect elsewhere): only
/// these pass, and `set-cookie` and `location` are checked besides.
const RESPONSE_HEADERS: &[&str] = &[
    "content-type",
    "cache-control",
    "content-security-policy",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "retry-after",
    "x-stagehand-offline",
    "set-cookie",
    "location",
];

pub(super) async fn forward(
    relay: &Relay,
    admitted: Admitted,
    path: String,
    upgrade: Option<WebSocketUpgrade>,
    request: Request,
) -> Response {
    let door = relay.config().door.clone();
    let (parts, body) = request.into_parts();
    let websocket = upgrade.is_some();
    let body = if websocket || parts.method != Method::POST {
        Bytes::new()
    } else {
        let limit = relay.config().limits.body_timeout;
        match tokio::time::timeout(limit, read_body(body, door.max_body_bytes)).await {
            Ok(Ok(body)) => body,
            Ok(Err(e)) => return e.into_response(),
            Err(_) => return ApiError::body_timeout().into_response(),
        }
    };
    let headers = parts
        .headers
        .iter()
        .filter(|(name, _)| TUNNELLED_REQUEST_HEADERS.contains(&name.as_str()))
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    let Some(mut stream) = Stream::open(Arc::clone(&admitted.link), door.max_streams) else {
        let mut busy = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            "too many moderator requests are open for this streamer; retry shortly",
        );
        busy.retry_after = Some(1);
        return busy.into_response();
    };
    let opened = RelayMessage::HttpRequest(HttpRequest {
        stream: stream.id,
        method: parts.method.as_str().to_owned(),
        path: path.clone(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers,
        client: Some(admitted.client),
        websocket,
        has_body: !body.is_empty(),
    });
    if !stream.link.to_engine(opened).await {
        return offline(&path);
    }
    let head = tokio::time::timeout(door.response_timeout, async {
        if let Err(early) = send_body(&mut stream, body).await {
            return early;
        }
        loop {
            match stream.rx.recv().await {
                Some(EngineMessage::HttpResponse(head)) => return Some(head),
                Some(EngineMessage::Close(_)) | None => return None,
                Some(_) => {}
            }
        }
    })
    .await;
    let head = match head {
        Err(_) => {
            return ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "streamer_timeout",
                "the streamer's app did not answer in time; try again",
            )
            .into_response();
        }
        Ok(None) => {
            stream.done = true;
            return offline(&path);
        }
        Ok(Some(head)) => head,
    };
    let engine_offline = head.status == 503
        && head
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("x-stagehand-offline"));
    if engine_offline {
        // The engine is linked but its local server is not answering (starting, stopping).
        return offline(&path);
    }
    match upgrade {
        Some(upgrade) if head.status == 101 => {
            let limits = door.clone();
            let shutdown = relay.shutdown_signal();
            upgrade
                .max_message_size(door.max_body_bytes)
                .on_upgrade(move |socket| pump(socket, stream, limits, shutdown))
        }
        _ => respond(stream, head, &admitted.prefix).await,
    }
}

/// Sends a request body in chunks within the engine's credit. `Err` when the stream stopped
/// first: with the engine's answer if it answered before taking the whole body (a refusal).
async fn send_body(stream: &mut Stream, body: Bytes) -> Result<(), Option<HttpResponse>> {
    let mut credit = i64::from(STREAM_WINDOW);
    let chunks: Vec<Bytes> = body
        .chunks(STREAM_CHUNK)
        .map(Bytes::copy_from_slice)
        .collect();
    let last = chunks.len();
    for (i, chunk) in chunks.into_iter().enumerate() {
        while credit < chunk.len() as i64 {
            match stream.rx.recv().await {
                Some(EngineMessage::Window(w)) => credit += i64::from(w.bytes),
                Some(EngineMessage::HttpResponse(head)) => return Err(Some(head)),
                Some(EngineMessage::Close(_)) | None => return Err(None),
                Some(_) => {}
            }
        }
        credit -= chunk.len() as i64;
        let data = RelayMessage::Data(StreamData {
            stream: stream.id,
            data_b64: STANDARD.encode(&chunk),
            fin: i + 1 == last,
        });
        if !stream.link.to_engine(data).await {
            return Err(None);
        }
    }
    Ok(())
}

async fn read_body(body: Body, max: usize) -> Result<Bytes, ApiError> {
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| ApiError::body_unreadable())?;
        if buf.len() + chunk.len() > max {
            return Err(ApiError::body_too_large(max));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.into())
}

/// Whether a response header from the engine may reach the moderator: on the list, a cookie
/// only for this tunnel's path and no other domain, a redirect only within the tunnel.
fn header_allowed(name: &str, value: &str, prefix: &str) -> bool {
    if !RESPONSE_HEADERS.contains(&name) {
        return false;
    }
    match name {
        "set-cookie" => {
            let attributes: Vec<String> = value
                .split(';')
                .skip(1)
                .map(|a| a.trim().to_ascii_lowercase())
                .collect();
            let path = format!("path={}/", prefix.to_ascii_lowercase());
            attributes.contains(&path) && !attributes.iter().any(|a| a.starts_with("domain"))
        }
        "location" => value.starts_with(&format!("{prefix}/")),
        _ => true,
    }
}

/// Turns the engine's answer into the moderator's, its body streamed as the engine sends it
/// and credited back as the moderator's connection takes it.
async fn respond(stream: Stream, head: HttpResponse, prefix: &str) -> Response {
    // 1xx answers are not final; an engine that sends one is broken.
    let status = StatusCode::from_u16(head.status)
        .ok()
        .filter(|s| !s.is_informational())
        .unwrap_or(StatusCode::BAD_GATEWAY);
    let body = futures_util::stream::unfold(stream, |mut stream| async move {
        if stream.done {
            return None;
        }
        loop {
            match stream.rx.recv().await {
                Some(EngineMessage::Data(data)) => {
                    let Ok(bytes) = STANDARD.decode(&data.data_b64) else {
                        return Some((Err(std::io::Error::other("unreadable body chunk")), stream));
                    };
                    credit(&stream.link, stream.id, &stream.pending, bytes.len());
                    stream.done = data.fin;
                    return Some((Ok(Bytes::from(bytes)), stream));
                }
                Some(EngineMessage::Close(_)) => {
                    stream.done = true;
                    return Some((
                        Err(std::io::Error::other("the engine ended the answer")),
                        stream,
                    ));
                }
                None => {
                    stream.done = true;
                    return Some((
                        Err(std::io::Error::other("the engine went offline")),
                        stream,
                    ));
                }
                Some(_) => {}
            }
        }
    });
    let mut response = Response::new(Body::from_stream(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in head.headers {
        let name = name.to_ascii_lowercase();
        if !header_allowed(&name, &value, prefix) {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.append(name, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_headers_cannot_reach_past_the_tunnel() {
        let prefix = "/t/abc";
        assert!(header_allowed("content-type", "text/html", prefix));
        assert!(header_allowed(
            "set-cookie",
            "stagehand_moderator=x; HttpOnly; SameSite=Strict; Path=/t/abc/; Max-Age=60",
            prefix
        ));
        for (name, value) in [
            ("set-cookie", "stagehand_moderator=x; Path=/"),
            ("set-cookie", "stagehand_moderator=x; Path=/t/other/"),
            (
                "set-cookie",
                "stagehand_moderator=x; Path=/t/abc/; Domain=relay.example",
            ),
            ("set-cookie", "stagehand_moderator=x"),
            ("location", "/t/other/moderator"),
            ("location", "https://evil.example/"),
            ("service-worker-allowed", "/"),
            ("access-control-allow-origin", "*"),
            ("clear-site-data", "\"*\""),
        ] {
            assert!(!header_allowed(name, value, prefix), "{name}: {value}");
        }
        assert!(header_allowed("location", "/t/abc/moderator", prefix));
    }
}
