//! What Stagehand asks OBS to do: browser sources for overlays (and plain text or colour
//! sources), stream and record control.

use futures_util::StreamExt;
use obws::error::Error as ObwsError;
use obws::responses::StatusCode;
use serde::{Deserialize, Serialize};

use super::{ObsError, when_ready};
use crate::{Engine, EngineError};

/// `POST /obs/sources`: put a page (an overlay or any URL) into a scene as a browser source,
/// or, with `kind`, a text or a colour source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceRequest {
    /// The scene to put it in.
    pub scene: String,
    /// `browser` (the default), `text` or `color`.
    #[serde(default)]
    pub kind: SourceKind,
    /// The words of a `text` source.
    pub text: Option<String>,
    /// The colour of a `color` source: `#rrggbb` or `#rrggbbaa`.
    pub color: Option<String>,
    /// A URL to show…
    pub url: Option<String>,
    /// …or an overlay, whose signed link and size are used.
    #[serde(rename = "overlayId")]
    pub overlay_id: Option<String>,
    /// Width (default: the overlay's, else 1920).
    pub w: Option<u32>,
    /// Height (default: the overlay's, else 1080).
    pub h: Option<u32>,
    /// Left edge in the scene.
    #[serde(default)]
    pub x: f32,
    /// Top edge in the scene.
    #[serde(default)]
    pub y: f32,
    /// Source name (default: "Stagehand: {overlay name}" or "Stagehand browser source").
    pub name: Option<String>,
}

/// Which kind of source `POST /obs/sources` makes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// A browser source showing an overlay or a URL (needs OBS's browser source plugin).
    #[default]
    Browser,
    /// A text source (FreeType 2 on Linux and macOS, GDI+ on Windows).
    Text,
    /// A solid colour rectangle.
    Color,
}

impl SourceKind {
    /// OBS's input kind for this source on this platform.
    fn input_kind(self) -> &'static str {
        match self {
            Self::Browser => "browser_source",
            Self::Text if cfg!(windows) => "text_gdiplus_v3",
            Self::Text => "text_ft2_source_v2",
            Self::Color => "color_source_v3",
        }
    }
}

/// `#rrggbb` or `#rrggbbaa` as OBS stores colours: one integer, 0xAABBGGRR.
fn obs_color(text: &str) -> Option<u32> {
    let hex = text.strip_prefix('#')?;
    if !(hex.len() == 6 || hex.len() == 8) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let byte = |i: usize| u32::from_str_radix(hex.get(i..i + 2).unwrap_or("00"), 16).ok();
    let (r, g, b) = (byte(0)?, byte(2)?, byte(4)?);
    let a = if hex.len() == 8 { byte(6)? } else { 0xff };
    Some(a << 24 | b << 16 | g << 8 | r)
}

/// What `POST /obs/sources` did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceResult {
    /// The source's name in OBS.
    pub name: String,
    /// `true` when it was created, `false` when an existing one was updated.
    pub created: bool,
    /// The scene item's id.
    pub scene_item_id: i64,
}

/// How long stopping a recording waits for OBS to finish writing the file.
const RECORD_FINISH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

fn refused(e: ObwsError) -> EngineError {
    ObsError::Refused(e.to_string()).into()
}

impl Engine {
    /// Creates the browser source, or updates the one of the same name (idempotent).
    /// `base_url` is where OBS reaches Stagehand (`http://127.0.0.1:{port}`).
    pub async fn obs_source_upsert(
        &self,
        req: SourceRequest,
        base_url: &str,
    ) -> Result<SourceResult, EngineError> {
        let (settings, name) = match req.kind {
            SourceKind::Browser => self.browser_source_settings(&req, base_url).await?,
            SourceKind::Text => {
                let text = req.text.as_deref().unwrap_or_default();
                if text.trim().is_empty() || text.chars().count() > 4096 || req.url.is_some() {
                    return Err(ObsError::Invalid(
                        "a text source needs text (1-4096 characters) and no url".into(),
                    )
                    .into());
                }
                let settings = serde_json::json!({ "text": text });
                (
                    settings,
                    req.name.clone().unwrap_or_else(|| "Stagehand text".into()),
                )
            }
            SourceKind::Color => {
                let color = req.color.as_deref().and_then(obs_color).ok_or_else(|| {
                    ObsError::Invalid("a color source needs color as #rrggbb or #rrggbbaa".into())
                })?;
                let (w, h) = (req.w.unwrap_or(1920), req.h.unwrap_or(1080));
                if !(1..=7680).contains(&w) || !(1..=7680).contains(&h) {
                    return Err(
                        ObsError::Invalid("w and h must be between 1 and 7680".into()).into(),
                    );
                }
                let settings = serde_json::json!({ "color": color, "width": w, "height": h });
                (
                    settings,
                    req.name
                        .clone()
                        .unwrap_or_else(|| "Stagehand colour".into()),
                )
            }
        };
        if name.trim().is_empty() || name.chars().count() > 256 || req.scene.is_empty() {
            return Err(ObsError::Invalid("scene and name must be 1-256 characters".into()).into());
        }
        let client = self.obs_client()?;
        let inputs = client.inputs();
        let created = when_ready(|| {
            inputs.create(obws::requests::inputs::Create {
                scene: req.scene.as_str().into(),
                input: &name,
                kind: req.kind.input_kind(),
                settings: Some(&settings),
                enabled: Some(true),
            })
        })
        .await;
        let (item, was_created) = match created {
            Ok(ids) => (ids.scene_item_id, true),
            Err(ObwsError::Api {
                code: StatusCode::ResourceAlreadyExists,
                ..
            }) => {
                client
                    .inputs()
                    .set_settings(obws::requests::inputs::SetSettings {
                        input: name.as_str().into(),
                        settings: &settings,
                        overlay: Some(true),
                    })
                    .await
                    .map_err(refused)?;
                let item = client
                    .scene_items()
                    .id(obws::requests::scene_items::Id {
                        scene: req.scene.as_str().into(),
                        source: &name,
                        search_offset: None,
                    })
                    .await
                    .map_err(|e| match e {
                        ObwsError::Api { code: StatusCode::ResourceNotFound, .. } => ObsError::Refused(format!(
                            "a source named \"{name}\" exists in OBS but not in scene \"{}\"; pick another name",
                            req.scene
                        ))
                        .into(),
                        other => refused(other),
                    })?;
                (item, false)
            }
            Err(ObwsError::Api {
                code: StatusCode::InvalidInputKind,
                ..
            }) if req.kind == SourceKind::Browser => {
                return Err(ObsError::NoBrowserSource.into());
            }
            Err(e) => return Err(refused(e)),
        };
        client
            .scene_items()
            .set_transform(obws::requests::scene_items::SetTransform {
                scene: req.scene.as_str().into(),
                item_id: item,
                transform: obws::requests::scene_items::SceneItemTransform {
                    position: Some(obws::requests::scene_items::Position {
                        x: Some(req.x),
                        y: Some(req.y),
                    }),
                    ..Default::default()
                },
            })
            .await
            .map_err(refused)?;
        Ok(SourceResult {
            name,
            created: was_created,
            scene_item_id: item,
        })
    }

    /// The settings and name of a browser source for `req` (an overlay's signed link or a URL).
    async fn browser_source_settings(
        &self,
        req: &SourceRequest,
        base_url: &str,
    ) -> Result<(serde_json::Value, String), EngineError> {
        let (url, default_name, w, h) = match (&req.url, &req.overlay_id) {
            (Some(url), None) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() > 2048
                {
                    return Err(ObsError::Invalid("url must be an http(s) URL".into()).into());
                }
                (
                    url.clone(),
                    "Stagehand browser source".to_owned(),
                    req.w.unwrap_or(1920),
                    req.h.unwrap_or(1080),
                )
            }
            (None, Some(id)) => {
                let overlay = self.overlays().get(id).await?;
                let link = format!("{base_url}{}", self.overlays().link_path(id, None));
                (
                    link,
                    format!("Stagehand: {}", overlay.name),
                    req.w.unwrap_or(overlay.width),
                    req.h.unwrap_or(overlay.height),
                )
            }
            _ => {
                return Err(
                    ObsError::Invalid("send exactly one of url or overlayId".into()).into(),
                );
            }
        };
        if !(1..=7680).contains(&w) || !(1..=7680).contains(&h) {
            return Err(ObsError::Invalid("w and h must be between 1 and 7680".into()).into());
        }
        let settings = serde_json::json!({ "url": url, "width": w, "height": h });
        Ok((settings, req.name.clone().unwrap_or(default_name)))
    }

    /// Starts or stops streaming.
    pub async fn obs_stream(&self, start: bool) -> Result<(), EngineError> {
        let client = self.obs_client()?;
        let streaming = client.streaming();
        if start {
            when_ready(|| streaming.start()).await
        } else {
            when_ready(|| streaming.stop()).await
        }
        .map_err(refused)
    }

    /// Starts recording (`None`) or stops it (`Some(path of the file)`, once OBS has finished
    /// writing it).
    pub async fn obs_record(&self, start: bool) -> Result<Option<String>, EngineError> {
        let client = self.obs_client()?;
        let recording = client.recording();
        if start {
            when_ready(|| recording.start()).await.map_err(refused)?;
            Ok(None)
        } else {
            // StopRecord answers while OBS is still finishing the file; the file is whole only
            // once RecordStateChanged says "stopped". Listen before asking, so it can't be missed.
            let mut events = client.events().map_err(refused)?;
            let path = when_ready(|| recording.stop()).await.map_err(refused)?;
            let stopped = async {
                while let Some(event) = events.next().await {
                    if let obws::events::Event::RecordStateChanged {
                        state: obws::events::OutputState::Stopped,
                        ..
                    } = event
                    {
                        return true;
                    }
                }
                false
            };
            match tokio::time::timeout(RECORD_FINISH_TIMEOUT, stopped).await {
                Ok(true) => {}
                Ok(false) => {
                    return Err(ObsError::NotConnected(
                        "the connection to OBS was lost while the recording was being finished"
                            .into(),
                    )
                    .into());
                }
                Err(_) => tracing::warn!(
                    "OBS did not say the recording had stopped within {} s",
                    RECORD_FINISH_TIMEOUT.as_secs()
                ),
            }
            Ok(Some(path))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::obs_color;

    #[test]
    fn colours_are_stored_the_way_obs_reads_them() {
        // OBS keeps colours as 0xAABBGGRR: pure red is 0xff0000ff.
        assert_eq!(obs_color("#ff0000"), Some(0xff00_00ff));
        assert_eq!(obs_color("#00ff0080"), Some(0x8000_ff00));
        assert_eq!(obs_color("#0000FF"), Some(0xffff_0000));
        for bad in ["ff0000", "#ff00", "#gg0000", "#ff00001", ""] {
            assert_eq!(obs_color(bad), None, "{bad:?} is not a colour");
        }
    }
}
