//! What Stagehand asks OBS to do: browser sources for overlays, stream and record control.

use obws::error::Error as ObwsError;
use obws::responses::StatusCode;
use serde::{Deserialize, Serialize};

use super::ObsError;
use crate::{Engine, EngineError};

/// `POST /obs/sources`: put a page (an overlay or any URL) into a scene as a browser source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceRequest {
    /// The scene to put it in.
    pub scene: String,
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
                let overlay = self.overlay_get(id).await?;
                let link = format!("{base_url}{}", self.overlay_link_path(id, None));
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
        let name = req.name.clone().unwrap_or(default_name);
        if name.trim().is_empty() || name.chars().count() > 256 || req.scene.is_empty() {
            return Err(ObsError::Invalid("scene and name must be 1-256 characters".into()).into());
        }
        let client = self.obs_client()?;
        let settings = serde_json::json!({ "url": url, "width": w, "height": h });
        let created = client
            .inputs()
            .create(obws::requests::inputs::Create {
                scene: req.scene.as_str().into(),
                input: &name,
                kind: "browser_source",
                settings: Some(&settings),
                enabled: Some(true),
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
            }) => {
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

    /// Starts or stops streaming.
    pub async fn obs_stream(&self, start: bool) -> Result<(), EngineError> {
        let client = self.obs_client()?;
        let streaming = client.streaming();
        if start {
            streaming.start().await
        } else {
            streaming.stop().await
        }
        .map_err(refused)
    }

    /// Starts recording (`None`) or stops it (`Some(path of the file)`).
    pub async fn obs_record(&self, start: bool) -> Result<Option<String>, EngineError> {
        let client = self.obs_client()?;
        let recording = client.recording();
        if start {
            recording.start().await.map_err(refused)?;
            Ok(None)
        } else {
            recording.stop().await.map(Some).map_err(refused)
        }
    }
}
