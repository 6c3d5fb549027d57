//! Wire types shared by the engine, the HTTP server and the relay.
//!
//! Everything here is what crosses a process boundary as JSON: error bodies, the event
//! envelope pushed over WebSockets, and the small status documents. Keeping them in one crate
//! means the relay and the UI's JavaScript see exactly one shape per message.

use serde::{Deserialize, Serialize};

pub mod accounts;
pub mod relay;

/// Version of the wire protocol; bumped when a message changes incompatibly.
pub const PROTOCOL_VERSION: u32 = 1;

/// The body of every error response: `{"error":{"code":"...","message":"..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error itself.
    pub error: ErrorDetail,
}

/// A stable machine-readable code and a plain message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable code (`snake_case`); clients match on this, never on the message.
    pub code: String,
    /// Human-readable explanation, safe to show (never contains secrets or internals).
    pub message: String,
    /// Machine-readable extras for some codes (e.g. `currentVersion` on `version_conflict`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

impl ErrorBody {
    /// Builds an error body from a code and a message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
                details: None,
            },
        }
    }
}

/// An event pushed to WebSocket clients: `{"type": "...", "ts": "...", "data": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    /// Dotted event name, e.g. `audit.recorded`, `scene.full`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When the server produced the event (RFC 3339, UTC).
    pub ts: String,
    /// Event-specific payload.
    pub data: serde_json::Value,
}

/// What `GET /api/status` and the home page show about the running engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EngineStatus {
    /// Stagehand version.
    pub version: String,
    /// Absolute path of the data directory.
    pub data_dir: String,
    /// Which secret backend is active (`keychain` or `file`).
    pub secret_backend: String,
    /// Where that backend keeps its secrets, in words.
    pub secret_location: String,
    /// When the engine started (RFC 3339, UTC).
    pub started_at: String,
    /// Seconds since the engine started.
    pub uptime_seconds: u64,
    /// The local URL the engine serves on.
    pub local_url: String,
    /// Configuration keys that were present but not understood.
    pub config_warnings: Vec<String>,
    /// The program that renders text to speech (`espeak-ng`, `say`, `sapi`); `None` when
    /// overlay pages fall back to the browser's SpeechSynthesis.
    #[serde(default)]
    pub tts_engine: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_has_the_documented_shape() {
        let body = serde_json::to_value(ErrorBody::new("not_found", "nothing here"))
            .expect("an error body always serialises");
        assert_eq!(
            body,
            serde_json::json!({"error": {"code": "not_found", "message": "nothing here"}}),
            "clients parse error.code and error.message; the shape is a contract"
        );
    }
}
