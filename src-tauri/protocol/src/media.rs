//! Media as clients see it: the rows `GET /api/media` lists and `POST /api/media` returns.
//!
//! The engine's media capability stores the files; these types are the JSON shape the panel
//! and scenes read, kept here so the engine and every client agree on one spelling.

use serde::{Deserialize, Serialize};

/// What a medium is, for scenes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    /// A picture (png, jpeg, gif, webp).
    Image,
    /// Video (mp4, webm, ogg with Theora).
    Video,
    /// Sound (mp3, ogg, wav, mp4 audio).
    Audio,
}

impl MediaKind {
    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
        }
    }

    /// The kind a stored spelling names; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "image" => Some(Self::Image),
            "video" => Some(Self::Video),
            "audio" => Some(Self::Audio),
            _ => None,
        }
    }
}

/// A stored medium, as listed and returned by uploads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaItem {
    /// Id: the SHA-256 of the bytes, 64 lowercase hex digits.
    pub media_id: String,
    /// Where pages load it: `/media/{mediaId}`.
    pub url: String,
    /// Content-Type, from the bytes.
    pub mime: String,
    /// Picture, video or sound.
    pub kind: MediaKind,
    /// Size in bytes.
    pub size: u64,
    /// The name it was uploaded with, cleaned; informational only.
    pub original_name: Option<String>,
    /// First uploaded (RFC 3339).
    pub created_at: String,
}

/// `GET /api/media`: every stored medium, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaList {
    /// The media.
    pub media: Vec<MediaItem>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_media_row_keeps_its_documented_shape() {
        let item = MediaItem {
            media_id: "a".repeat(64),
            url: format!("/media/{}", "a".repeat(64)),
            mime: "image/png".into(),
            kind: MediaKind::Image,
            size: 42,
            original_name: None,
            created_at: "2024-01-01T00:00:00Z".into(),
        };
        assert_eq!(
            serde_json::to_value(&item).expect("a media row always serialises"),
            serde_json::json!({
                "mediaId": "a".repeat(64),
                "url": format!("/media/{}", "a".repeat(64)),
                "mime": "image/png",
                "kind": "image",
                "size": 42,
                "originalName": null,
                "createdAt": "2024-01-01T00:00:00Z",
            }),
            "the panel reads these camelCase fields, and null for a missing name"
        );
        assert_eq!(
            serde_json::to_value(MediaList { media: vec![] }).expect("a list always serialises"),
            serde_json::json!({ "media": [] }),
            "the panel reads the rows under `media`"
        );
        for kind in [MediaKind::Image, MediaKind::Video, MediaKind::Audio] {
            assert_eq!(MediaKind::parse(kind.as_str()), Some(kind));
        }
    }
}
