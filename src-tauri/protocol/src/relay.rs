//! The tunnel between the desktop engine and the relay.
//!
//! The engine opens one WebSocket to `GET {relay}/tunnel/{tunnel_id}/connect`, with the tunnel
//! secret as `Authorization: Bearer {secret}` and, in [`LAST_SEQ_HEADER`], the highest
//! delivery sequence it has committed (0 when it has none). Each text frame is one JSON
//! message: [`RelayMessage`] from the relay, [`EngineMessage`] from the engine. A newer
//! connection for the same tunnel replaces the older one, which the relay closes with
//! [`CLOSE_REPLACED`].
//!
//! Delivery is at least once. The relay stores each webhook with a per-tunnel sequence
//! number before it answers 202, sends the stored deliveries in sequence order, and deletes
//! them once acknowledged. The engine acknowledges a sequence only after it has committed the
//! delivery; an acknowledgement covers every lower sequence too. On reconnect the relay
//! resends everything above the sequence the engine names.
//!
//! The same link also carries the moderator surface (the relay's `/t/{tunnel_id}/…` door):
//! HTTP requests and WebSocket streams, multiplexed by a stream id the relay picks. The relay
//! opens a stream with [`HttpRequest`]; the engine answers with [`HttpResponse`] (for a
//! WebSocket, status 101 accepts it); bodies travel as [`StreamData`] chunks and WebSocket
//! messages as [`StreamWsMessage`], each side sending at most [`STREAM_WINDOW`] bytes ahead of
//! the [`StreamWindow`] credits the other side returns as it passes them on; either side ends
//! a stream with [`StreamClose`]. Only paths for which [`moderator_surface`] holds are ever
//! opened, and the relay stores none of it.

use serde::{Deserialize, Serialize};

/// The request header that names the highest sequence the engine has committed.
pub const LAST_SEQ_HEADER: &str = "x-stagehand-last-seq";

/// Close code the relay uses when a newer connection for the same tunnel took over.
pub const CLOSE_REPLACED: u16 = 4000;

/// Close code the relay uses when the tunnel id or secret is wrong.
pub const CLOSE_UNAUTHORIZED: u16 = 4001;

/// The path on the relay where the engine connects, for a tunnel id.
pub fn connect_path(tunnel_id: &str) -> String {
    format!("/tunnel/{tunnel_id}/connect")
}

/// A message from the relay to the engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RelayMessage {
    /// Sent first on every connection: what the relay holds for this tunnel.
    Welcome {
        /// The tunnel this connection serves.
        tunnel_id: String,
        /// The highest sequence the relay has assigned so far (0 when none).
        head_seq: u64,
    },
    /// One stored webhook.
    Delivery(Delivery),
    /// Deliveries the relay dropped, oldest first, because the tunnel's buffer was full while
    /// the engine was away. Sent on connect (and when it happens while connected).
    Evicted {
        /// How many deliveries were dropped since the last report.
        count: u64,
        /// The first dropped sequence.
        first_seq: u64,
        /// The last dropped sequence.
        last_seq: u64,
    },
    /// A moderator's request (or WebSocket upgrade) opens a stream.
    HttpRequest(HttpRequest),
    /// A chunk of a request body.
    Data(StreamData),
    /// A message from the moderator's WebSocket.
    WsMessage(StreamWsMessage),
    /// Credit for the engine to send more on a stream.
    Window(StreamWindow),
    /// The moderator went away, or the relay gave up on the stream.
    Close(StreamClose),
    /// A message type this side does not know (newer peer); ignored.
    #[serde(other)]
    Unknown,
}

/// A message from the engine to the relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EngineMessage {
    /// The engine has committed every delivery up to and including `seq`.
    Ack {
        /// Highest committed sequence.
        seq: u64,
    },
    /// The engine has recorded an eviction report up to `last_seq`; the relay may forget it.
    EvictedSeen {
        /// The `last_seq` of the report.
        last_seq: u64,
    },
    /// The status and headers that answer a stream's request.
    HttpResponse(HttpResponse),
    /// A chunk of a response body.
    Data(StreamData),
    /// A message for the moderator's WebSocket.
    WsMessage(StreamWsMessage),
    /// Credit for the relay to send more on a stream.
    Window(StreamWindow),
    /// The engine ended the stream (a WebSocket close, or a failure).
    Close(StreamClose),
    /// A message type this side does not know (newer peer); ignored.
    #[serde(other)]
    Unknown,
}

/// One moderator request or socket carried on the link, numbered by the relay (unique on
/// that link). On the wire it is the bare number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StreamId(pub u64);

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Bytes (body bytes, or WebSocket payload bytes) either side may send on one stream ahead of
/// the other side's [`StreamWindow`] credits.
pub const STREAM_WINDOW: u32 = 256 * 1024;

/// The largest body chunk in one [`StreamData`].
pub const STREAM_CHUNK: usize = 16 * 1024;

/// The largest frame either side sends on the link. A stream message that would be larger
/// (a WebSocket message of a huge scene, escaped into JSON) ends its stream with close code
/// [`CLOSE_TOO_BIG`] instead: it must never cost the link, which carries webhooks too.
pub const MAX_LINK_MESSAGE: usize = 4 * 1024 * 1024;

/// WebSocket close code for "message too big".
pub const CLOSE_TOO_BIG: u16 = 1009;

/// A moderator's request, as the relay received it under `/t/{tunnel_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRequest {
    /// The stream id, unique on this link.
    pub stream: StreamId,
    /// `GET`, `HEAD`, `POST`.
    pub method: String,
    /// The engine path (the part after `/t/{tunnel_id}`), starting with `/`.
    pub path: String,
    /// The query string, without `?` (may be empty).
    #[serde(default)]
    pub query: String,
    /// The headers in [`TUNNELLED_REQUEST_HEADERS`], lower-case names.
    pub headers: Vec<(String, String)>,
    /// The moderator's address as the relay saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// A WebSocket upgrade: the engine answers 101 to accept it.
    #[serde(default)]
    pub websocket: bool,
    /// Whether a body follows in [`StreamData`] chunks (the last has `fin`).
    #[serde(default)]
    pub has_body: bool,
}

/// The engine's answer to an [`HttpRequest`]; the body follows in [`StreamData`] chunks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpResponse {
    /// The stream it answers.
    pub stream: StreamId,
    /// The status; 101 accepts a WebSocket.
    pub status: u16,
    /// Response headers, hop-by-hop ones removed.
    pub headers: Vec<(String, String)>,
}

/// A chunk of a body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamData {
    /// The stream.
    pub stream: StreamId,
    /// Up to [`STREAM_CHUNK`] bytes, standard base64.
    pub data_b64: String,
    /// The body ends with this chunk.
    #[serde(default)]
    pub fin: bool,
}

impl StreamData {
    /// How many bytes the chunk carries (what it counts against the window).
    pub fn byte_len(&self) -> usize {
        let b64 = self.data_b64.as_bytes();
        let padding = b64.iter().rev().take_while(|c| **c == b'=').count();
        (b64.len() / 4 * 3).saturating_sub(padding)
    }
}

/// One WebSocket message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamWsMessage {
    /// The stream.
    pub stream: StreamId,
    /// A text message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// A binary message, standard base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_b64: Option<String>,
}

impl StreamWsMessage {
    /// The bytes this message counts against the stream's window (at least 1).
    pub fn cost(&self) -> u32 {
        let len = self.text.as_ref().map_or(0, String::len)
            + self.binary_b64.as_ref().map_or(0, |b| b.len() / 4 * 3);
        u32::try_from(len).unwrap_or(u32::MAX).max(1)
    }
}

/// Credit: the receiver passed `bytes` on, so the sender may send that many more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamWindow {
    /// The stream.
    pub stream: StreamId,
    /// How many bytes were passed on.
    pub bytes: u32,
}

/// The end of a stream. For a WebSocket, its close code and reason; for a request, an abort.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamClose {
    /// The stream.
    pub stream: StreamId,
    /// WebSocket close code, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    /// Why, in words.
    #[serde(default)]
    pub reason: String,
}

/// The request headers the relay passes through a stream; everything else is dropped (the
/// moderator's browser must not be able to speak for the relay).
pub const TUNNELLED_REQUEST_HEADERS: &[&str] = &[
    "accept",
    "accept-language",
    "cache-control",
    "content-type",
    "cookie",
    "if-match",
    "origin",
    "user-agent",
];

/// The path prefix of a tunnel's moderator door on the relay.
pub fn moderator_prefix(tunnel_id: &str) -> String {
    format!("/t/{tunnel_id}")
}

/// Whether `path` is part of the moderator surface: the one-time link page, consuming a key,
/// the panel, its socket and the panel's static assets. Nothing else is reachable from the
/// LAN or through the relay. Paths with empty, `.` or `..` segments, percent-escapes or
/// backslashes are refused outright, so no spelling of a path can leave the surface.
pub fn moderator_surface(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    let clean = !rest.is_empty()
        && rest.len() <= 512
        && !rest.contains(['%', '\\', '?', '#'])
        && !rest.chars().any(char::is_control)
        && rest
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
    if !clean {
        return false;
    }
    let key = rest
        .strip_prefix("m/")
        .is_some_and(|key| !key.is_empty() && !key.contains('/'));
    key || MODERATOR_ASSETS
        .iter()
        .any(|asset| rest.strip_prefix("ui/") == Some(*asset))
        || matches!(
            rest,
            "moderator" | "ws/moderator" | "api/moderator-keys/consume"
        )
}

/// The files under `/ui/` the moderator pages load; the streamer's panel scripts are not
/// among them.
pub const MODERATOR_ASSETS: &[&str] = &[
    "style.css",
    "moderator-link.js",
    "moderator.js",
    "scene-editor.js",
];

/// A webhook as the relay received it: the bytes and the headers that matter, untouched, so
/// the engine checks signatures on the original body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Per-tunnel sequence number, starting at 1, without gaps.
    pub seq: u64,
    /// Stable delivery id (`{tunnel_id}-{seq}`); the engine deduplicates on it when the
    /// sender gave no idempotency key.
    pub delivery_id: String,
    /// The engine path the webhook is for, without a leading slash (`webhooks/tradingview`).
    pub path: String,
    /// The query string as received, without `?` (may be empty).
    #[serde(default)]
    pub query: String,
    /// The headers that matter (lower-case names), in the order received.
    pub headers: Vec<(String, String)>,
    /// The raw body, standard base64.
    pub body_b64: String,
    /// When the relay stored it, milliseconds since the Unix epoch.
    pub received_at_ms: i64,
    /// The sender's address as the relay saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_addr: Option<String>,
}

/// The headers the relay keeps and forwards; everything else is dropped.
pub const FORWARDED_HEADERS: &[&str] = &[
    "content-type",
    "user-agent",
    "x-signature",
    "x-idempotency-key",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_the_documented_shape() {
        let ack = serde_json::to_value(EngineMessage::Ack { seq: 7 }).expect("serialises");
        assert_eq!(ack, serde_json::json!({"type": "ack", "seq": 7}));
        let welcome: RelayMessage =
            serde_json::from_str(r#"{"type":"welcome","tunnel_id":"t1","head_seq":3}"#)
                .expect("parses");
        assert_eq!(
            welcome,
            RelayMessage::Welcome {
                tunnel_id: "t1".into(),
                head_seq: 3
            }
        );
    }

    #[test]
    fn stream_messages_have_the_documented_shape() {
        let request: RelayMessage = serde_json::from_str(
            r#"{"type":"http_request","stream":3,"method":"GET","path":"/moderator","headers":[["cookie","a=b"]]}"#,
        )
        .expect("parses");
        let RelayMessage::HttpRequest(request) = request else {
            panic!("an http_request: {request:?}");
        };
        assert_eq!(
            (request.stream, request.websocket, request.has_body),
            (StreamId(3), false, false)
        );
        let window = serde_json::to_value(EngineMessage::Window(StreamWindow {
            stream: StreamId(3),
            bytes: 10,
        }))
        .expect("serialises");
        assert_eq!(
            window,
            serde_json::json!({"type": "window", "stream": 3, "bytes": 10})
        );
    }

    #[test]
    fn the_moderator_surface_is_small_and_has_one_spelling() {
        for ok in [
            "/m/abc_DEF-1",
            "/moderator",
            "/ws/moderator",
            "/api/moderator-keys/consume",
            "/ui/moderator.js",
            "/ui/style.css",
        ] {
            assert!(moderator_surface(ok), "{ok}");
        }
        for no in [
            "/",
            "",
            "moderator",
            "/login",
            "/session",
            "/api/status",
            "/metrics",
            "/healthz",
            "/overlays",
            "/o/ov_x",
            "/api/moderator-keys/generate",
            "/api/moderator-sessions",
            "/api/media",
            "/media/x",
            "/ws/events",
            "/ws/overlay/ov_x",
            "/webhooks/tradingview",
            "/m/",
            "/m/a/b",
            "/ui/../api/status",
            "/ui/%2e%2e/api/status",
            "/ui/x%2fy",
            "/m/..",
            "//moderator",
            "/moderator/",
            "/ui/a\\b",
            "/ui/home.js",
            "/ui/webhooks.js",
            "/m/a?b",
            "/m/a#b",
        ] {
            assert!(!moderator_surface(no), "{no:?} must be refused");
        }
    }

    #[test]
    fn unknown_message_types_are_ignored_not_fatal() {
        let m: RelayMessage =
            serde_json::from_str(r#"{"type":"from_the_future","x":1}"#).expect("parses");
        assert_eq!(
            m,
            RelayMessage::Unknown,
            "an older engine must survive a newer relay"
        );
    }
}
