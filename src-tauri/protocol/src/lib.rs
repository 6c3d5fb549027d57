//! Wire types shared by the engine, the HTTP server and the relay.
//!
//! Everything here is what crosses a process boundary as JSON: error bodies and codes, the event
//! envelope pushed over WebSockets, and the small status documents. Keeping them in one crate
//! means the relay and the UI's JavaScript see exactly one shape per message.

use serde::{Deserialize, Serialize};

pub mod error;
pub mod overlay;
pub mod relay;

pub use error::{ErrorBody, ErrorCode, ErrorDetail};

/// Version of the wire protocol; bumped when a message changes incompatibly.
pub const PROTOCOL_VERSION: u32 = 1;

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
