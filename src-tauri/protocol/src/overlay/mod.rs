//! What travels between Stagehand and an overlay page (the OBS browser source) over
//! `WS /ws/overlay/{id}`, and the API bodies that put things on it.
//!
//! One shape per message: the engine builds [`ToPage`] values and serialises each once for every
//! connected page; the server reads [`FromPage`]; `overlays/overlay.js` speaks both. The moderator
//! panel's `scene.full` is this same message.

use serde::{Deserialize, Serialize};

pub mod feed;
pub mod scene;

pub use feed::{
    AlertRequest, AlertShow, ChartFeed, ChartPoint, ChartUpdate, ChatLine, ChatMessage,
};
pub use scene::{Layer, LayerKind, Scene, SceneDiff};

/// What a page is told about its overlay with each scene message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlayInfo {
    /// Overlay id (`ov_…`).
    pub id: String,
    /// Name shown to the streamer.
    pub name: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// A message Stagehand sends to an overlay page, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ToPage {
    /// The whole scene at `version`.
    #[serde(rename = "scene.full")]
    SceneFull {
        /// Scene version.
        version: i64,
        /// When the server sent it (RFC 3339, UTC).
        server_ts: String,
        /// The overlay's name and size.
        overlay: OverlayInfo,
        /// Every layer.
        scene: Scene,
    },
    /// What changed from `from_version` to `to_version`; a page at another version asks for
    /// `resync` instead of applying it.
    #[serde(rename = "scene.patch")]
    ScenePatch {
        /// The version the patch applies to.
        from_version: i64,
        /// The version it brings the page to.
        to_version: i64,
        /// When the server sent it (RFC 3339, UTC).
        server_ts: String,
        /// A rename or resize racing this save may be skipped as older; the page takes the
        /// overlay's name and size from here too.
        overlay: OverlayInfo,
        /// New or changed layers, whole.
        layers: Vec<Layer>,
        /// Every layer id of the new scene, in order (a layer missing from it was removed).
        order: Vec<String>,
    },
    /// An alert to play in the alert box.
    #[serde(rename = "alert.show")]
    AlertShow(AlertShow),
    /// A chat line for the chat box.
    #[serde(rename = "chat.message")]
    ChatMessage(ChatLine),
    /// Points for the chart.
    #[serde(rename = "chart.update")]
    ChartUpdate(ChartFeed),
}

impl ToPage {
    /// The JSON text sent on the socket.
    pub fn to_text(&self) -> String {
        // Every field is a string, number, bool or map with string keys: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A message an overlay page sends, tagged by `type`. Unknown types are [`FromPage::Other`]
/// (a newer page talking to an older Stagehand is ignored, not disconnected).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum FromPage {
    /// The page now shows scene `version` (for apply latency).
    #[serde(rename = "applied")]
    Applied {
        /// The version applied.
        version: i64,
    },
    /// The page started playing alert `id`.
    #[serde(rename = "alert.seen")]
    AlertSeen {
        /// The alert's id, as in [`AlertShow::id`].
        id: String,
    },
    /// The page missed a version and wants the whole scene.
    #[serde(rename = "resync")]
    Resync,
    /// Any other type.
    #[serde(other)]
    Other,
}

/// Connected pages and apply latency, for `GET /api/metrics/realtime`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Realtime {
    /// Connected pages by overlay id (overlays with none absent).
    pub overlays: std::collections::BTreeMap<String, Vec<PageFigures>>,
    /// Pages connected now.
    pub pages_connected: usize,
    /// Messages queued for pages since start.
    pub messages_sent: u64,
    /// Messages dropped for stalled pages since start.
    pub messages_dropped: u64,
    /// Percentiles of the time from publishing a version to a page applying it; `null` before
    /// the first page reported one.
    pub apply_latency_ms: Option<Percentiles>,
}

/// One connected page, as `GET /api/metrics/realtime` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageFigures {
    /// The page's connection id.
    pub page_id: u64,
    /// The last scene version it reported applied (0 before the first).
    pub applied_version: i64,
    /// Messages dropped for it because it fell behind.
    pub dropped: u64,
}

/// Latency percentiles in milliseconds, over the last `samples` measurements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// How many measurements.
    pub samples: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_messages_keep_the_shapes_overlay_js_reads() {
        let full = ToPage::SceneFull {
            version: 3,
            server_ts: "2026-01-01T00:00:00.000Z".into(),
            overlay: OverlayInfo {
                id: "ov_1".into(),
                name: "Main".into(),
                width: 1920,
                height: 1080,
            },
            scene: Scene::default(),
        };
        let value: serde_json::Value =
            serde_json::from_str(&full.to_text()).expect("scene.full is JSON");
        assert_eq!(value["type"], "scene.full");
        assert_eq!(value["version"], 3);
        assert_eq!(value["server_ts"], "2026-01-01T00:00:00.000Z");
        assert_eq!(value["overlay"]["width"], 1920);
        assert_eq!(value["scene"]["layers"], serde_json::json!([]));
        let back: ToPage = serde_json::from_value(value).expect("it reads back");
        assert_eq!(back, full);
    }

    #[test]
    fn page_messages_are_read_by_type_and_unknown_types_are_other() {
        let read = |s: &str| serde_json::from_str::<FromPage>(s).expect(s);
        assert_eq!(
            read(r#"{"type":"applied","version":7}"#),
            FromPage::Applied { version: 7 }
        );
        assert_eq!(
            read(r#"{"type":"alert.seen","id":"al_x","extra":1}"#),
            FromPage::AlertSeen { id: "al_x".into() }
        );
        assert_eq!(read(r#"{"type":"resync"}"#), FromPage::Resync);
        assert_eq!(read(r#"{"type":"hello"}"#), FromPage::Other);
        assert!(
            serde_json::from_str::<FromPage>(r#"{"type":"applied"}"#).is_err(),
            "applied without a version is malformed, not silently zero"
        );
    }
}
