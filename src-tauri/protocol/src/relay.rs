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
    /// A message type this side does not know (newer peer); ignored.
    #[serde(other)]
    Unknown,
}

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
