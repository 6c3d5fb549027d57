//! What connected pages are sent when a scene changes: the whole scene, or a patch from the
//! version they have when that is shorter, serialised once for every page. Editors (the
//! streamer's panel, moderators) follow the change through the event bus.

use std::sync::Arc;

use stagehand_protocol::overlay::{OverlayInfo, ToPage};

use super::{Overlay, Overlays, Scene, VersionedScene, hub};
use crate::EngineError;
use crate::clock::rfc3339;

impl Overlays {
    /// The `scene.full` message for an overlay.
    pub fn scene_full_message(&self, overlay: &Overlay, scene: &VersionedScene) -> Arc<str> {
        self.record_published(&overlay.overlay_id, scene.version);
        let message = ToPage::SceneFull {
            version: scene.version,
            server_ts: rfc3339(self.inner.clock.now_ms()),
            overlay: overlay_info(overlay),
            scene: scene.scene.clone(),
        };
        Arc::from(message.to_text())
    }

    /// Sends pages a new version: as `scene.patch` from `before` (the version they have) when
    /// that is shorter than the whole scene, else as `scene.full`.
    pub(super) fn push_scene(
        &self,
        overlay: &Overlay,
        before: Option<(i64, &Scene)>,
        scene: &VersionedScene,
    ) {
        let full = self.scene_full_message(overlay, scene);
        let patch = before.map(|(from, old)| {
            let diff = scene.scene.diff_from(old);
            ToPage::ScenePatch {
                from_version: from,
                to_version: scene.version,
                server_ts: rfc3339(self.inner.clock.now_ms()),
                overlay: overlay_info(overlay),
                layers: diff.layers.into_iter().cloned().collect(),
                order: diff.order.into_iter().map(str::to_owned).collect(),
            }
            .to_text()
        });
        let (message, kind) = match patch {
            Some(patch) if patch.len() < full.len() => {
                (Arc::from(patch), hub::QueuedKind::Patch(scene.version))
            }
            _ => (full, hub::QueuedKind::Full(scene.version)),
        };
        self.inner
            .hub
            .send_scene(&overlay.overlay_id, &message, kind);
        // Editors (the streamer's panel, moderators) follow changes through the event bus.
        self.inner.events.publish(
            "scene.updated",
            serde_json::json!({ "overlayId": overlay.overlay_id, "version": scene.version }),
        );
    }

    pub(super) async fn push_full_scene(&self, overlay_id: &str) -> Result<(), EngineError> {
        let overlay = self.get(overlay_id).await?;
        let scene = self.scene(overlay_id).await?;
        self.push_scene(&overlay, None, &scene);
        Ok(())
    }
}

/// What a page is told about its overlay with each scene message.
fn overlay_info(overlay: &Overlay) -> OverlayInfo {
    OverlayInfo {
        id: overlay.overlay_id.clone(),
        name: overlay.name.clone(),
        width: overlay.width,
        height: overlay.height,
    }
}
