//! Overlays: what OBS shows on top of the stream.
//!
//! An overlay has a name, a size and a scene. OBS loads it from a signed link,
//! `/o/{id}?sig=...[&exp=...]`: OBS cannot send headers, so the link itself is the credential.
//! The signature is HMAC-SHA256 over the overlay id and expiry with a key kept in the secret
//! store; rotating the key invalidates every link at once. Scene saves are versioned: an editor
//! saves against the version it started from, and a stale base is refused. Every change is
//! pushed to the overlay's connected pages through the [`hub::OverlayHub`].

mod alerts;
pub mod feed;
pub mod hub;
mod links;
mod pages;
mod publish;

use std::sync::Arc;

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

pub(crate) use links::ensure_signing_key;
pub(crate) use pages::{Latencies, Published};
pub use stagehand_protocol::overlay::{
    AlertRequest, ChartPoint, ChartUpdate, ChatMessage, Layer, LayerKind, Scene,
};

use crate::clock::Clock;
use crate::clock::rfc3339;
use crate::config::LimitsConfig as Limits;
use crate::events::EventBus;
use crate::metrics::Metrics;
use crate::secrets::Secrets;
use crate::store::Store;
use crate::store::StoreError;
use crate::{EngineError, Secret};
use hub::CloseReason;

/// Name of the link-signing key in the secret store.
pub const SIGNING_KEY_SECRET: &str = "overlay-signing-key";

/// Errors of overlay operations.
#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    /// No overlay with that id.
    #[error("no overlay with that id")]
    NotFound,
    /// The configured number of overlays exists already.
    #[error(
        "you already have {limit} overlays, the most allowed (limits.overlays); delete one first"
    )]
    LimitReached {
        /// The limit.
        limit: u32,
    },
    /// A field is missing or out of range.
    #[error("{0}")]
    Invalid(String),
    /// The scene changed since the editor's base version.
    #[error("the scene is at version {current}, not {base}; reload it and apply the edit again")]
    Conflict {
        /// The version the editor started from.
        base: i64,
        /// The version now stored.
        current: i64,
    },
    /// The link's signature is missing, forged, expired or for a deleted overlay.
    #[error("this overlay link is not valid ({0}); copy the link again from Stagehand")]
    LinkRefused(&'static str),
}

/// An overlay, as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Overlay {
    /// Id (`ov_` + 16 characters).
    pub overlay_id: String,
    /// Name shown to the streamer.
    pub name: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Current scene version.
    pub version: i64,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Last changed (RFC 3339).
    pub updated_at: String,
}

/// A scene with its version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionedScene {
    /// Version; increases on every save.
    pub version: i64,
    /// The scene.
    pub scene: Scene,
}

/// What to change on an overlay.
#[derive(Debug, Clone, Default)]
pub struct OverlayChanges {
    /// New name.
    pub name: Option<String>,
    /// New width.
    pub width: Option<u32>,
    /// New height.
    pub height: Option<u32>,
}

/// Result of sending to pages.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Id of what was sent.
    pub id: String,
    /// Pages it was queued for.
    pub pages: usize,
}

fn check_name(name: &str) -> Result<String, OverlayError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(OverlayError::Invalid(
            "name must be 1-100 characters".into(),
        ));
    }
    Ok(name.to_owned())
}

fn check_size(what: &str, value: u32) -> Result<u32, OverlayError> {
    if (16..=7680).contains(&value) {
        Ok(value)
    } else {
        Err(OverlayError::Invalid(format!(
            "{what} must be between 16 and 7680 pixels"
        )))
    }
}

fn check_overlay_id(id: &str) -> Result<(), OverlayError> {
    let ok = id.len() <= 40
        && id.starts_with("ov_")
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(OverlayError::NotFound)
    }
}

fn row_to_overlay(r: &rusqlite::Row<'_>) -> rusqlite::Result<Overlay> {
    Ok(Overlay {
        overlay_id: r.get(0)?,
        name: r.get(1)?,
        width: r.get(2)?,
        height: r.get(3)?,
        version: r.get(4)?,
        created_at: rfc3339(r.get(5)?),
        updated_at: rfc3339(r.get(6)?),
    })
}

const SELECT_OVERLAY: &str =
    "SELECT o.id, o.name, o.width, o.height, s.version, o.created_ms, o.updated_ms
     FROM overlays o JOIN scenes s ON s.overlay_id = o.id";

/// The overlays capability: overlays and their signed links, versioned scenes, alerts and
/// the chat and chart feeds, and the pages connected to each overlay. A cheap handle.
#[derive(Clone)]
pub struct Overlays {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    secrets: Secrets,
    clock: Arc<dyn Clock>,
    events: EventBus,
    metrics: Metrics,
    limits: Limits,
    /// The link-signing key.
    key: std::sync::RwLock<Secret>,
    /// The pages connected to each overlay.
    hub: hub::OverlayHub,
    /// When each scene version was published (for apply latency).
    published: std::sync::Mutex<Published>,
    /// Recent apply latencies.
    latencies: std::sync::Mutex<Latencies>,
}

impl std::fmt::Debug for Overlays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overlays").finish_non_exhaustive()
    }
}

impl Overlays {
    /// The overlays capability over `core`'s store and secrets, signing links with `key`
    /// (from [`ensure_signing_key`]).
    pub fn new(core: &crate::Core, key: Secret) -> Self {
        let limits = core.config.limits.clone();
        Self {
            inner: Arc::new(Inner {
                store: core.store.clone(),
                secrets: core.secrets.clone(),
                clock: Arc::clone(&core.clock),
                events: core.events.clone(),
                metrics: core.metrics.clone(),
                hub: hub::OverlayHub::new(limits.overlay_page_queue),
                limits,
                key: std::sync::RwLock::new(key),
                published: std::sync::Mutex::default(),
                latencies: std::sync::Mutex::default(),
            }),
        }
    }

    /// Creates an overlay with an empty scene (version 1).
    pub async fn create(
        &self,
        name: &str,
        width: Option<u32>,
        height: Option<u32>,
    ) -> Result<Overlay, EngineError> {
        let name = check_name(name)?;
        let width = check_size("width", width.unwrap_or(1920))?;
        let height = check_size("height", height.unwrap_or(1080))?;
        let id = format!("ov_{}", crate::random::token(12)?);
        let limit = self.inner.limits.overlays;
        let now = self.inner.clock.now_ms();
        let empty = serde_json::to_string(&Scene::default())
            .map_err(|e| EngineError::Task(e.to_string()))?;
        let created = id.clone();
        self.inner.store
            .call(move |conn| {
                let tx = conn.transaction()?;
                let count: u32 = tx.query_row("SELECT COUNT(*) FROM overlays", [], |r| r.get(0))?;
                if count >= limit {
                    return Ok(Err(OverlayError::LimitReached { limit }));
                }
                tx.execute(
                    "INSERT INTO overlays (id, name, width, height, created_ms, updated_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                    params![created, name, width, height, now],
                )?;
                tx.execute(
                    "INSERT INTO scenes (overlay_id, version, scene, updated_ms) VALUES (?1, 1, ?2, ?3)",
                    params![created, empty, now],
                )?;
                tx.commit()?;
                Ok(Ok(()))
            })
            .await??;
        self.get(&id).await
    }

    /// All overlays, oldest first.
    pub async fn list(&self) -> Result<Vec<Overlay>, EngineError> {
        Ok(self
            .inner
            .store
            .call(|conn| {
                let mut stmt =
                    conn.prepare(&format!("{SELECT_OVERLAY} ORDER BY o.created_ms, o.id"))?;
                let rows = stmt.query_map([], row_to_overlay)?;
                rows.collect::<Result<Vec<_>, _>>()
                    .map_err(StoreError::from)
            })
            .await?)
    }

    /// One overlay.
    pub async fn get(&self, overlay_id: &str) -> Result<Overlay, EngineError> {
        check_overlay_id(overlay_id)?;
        let id = overlay_id.to_owned();
        self.inner
            .store
            .call(move |conn| {
                Ok(conn
                    .query_row(
                        &format!("{SELECT_OVERLAY} WHERE o.id = ?1"),
                        [id],
                        row_to_overlay,
                    )
                    .optional()?)
            })
            .await?
            .ok_or_else(|| OverlayError::NotFound.into())
    }

    /// Renames or resizes an overlay; open pages get the new size at once.
    pub async fn update(
        &self,
        overlay_id: &str,
        changes: OverlayChanges,
    ) -> Result<Overlay, EngineError> {
        check_overlay_id(overlay_id)?;
        let name = changes.name.as_deref().map(check_name).transpose()?;
        let width = changes.width.map(|w| check_size("width", w)).transpose()?;
        let height = changes
            .height
            .map(|h| check_size("height", h))
            .transpose()?;
        let id = overlay_id.to_owned();
        let now = self.inner.clock.now_ms();
        let changed = self
            .inner
            .store
            .call(move |conn| {
                Ok(conn.execute(
                    "UPDATE overlays SET name = COALESCE(?2, name), width = COALESCE(?3, width),
                     height = COALESCE(?4, height), updated_ms = ?5 WHERE id = ?1",
                    params![id, name, width, height, now],
                )?)
            })
            .await?;
        if changed == 0 {
            return Err(OverlayError::NotFound.into());
        }
        self.push_full_scene(overlay_id).await?;
        self.get(overlay_id).await
    }

    /// Deletes an overlay: its links stop working and its open pages are closed at once.
    pub async fn delete(&self, overlay_id: &str) -> Result<(), EngineError> {
        check_overlay_id(overlay_id)?;
        let id = overlay_id.to_owned();
        let deleted = self
            .inner
            .store
            .call(move |conn| Ok(conn.execute("DELETE FROM overlays WHERE id = ?1", [id])?))
            .await?;
        if deleted == 0 {
            return Err(OverlayError::NotFound.into());
        }
        self.inner.hub.close_overlay(
            overlay_id,
            CloseReason {
                code: 4403,
                reason: "overlay deleted",
            },
        );
        Ok(())
    }

    /// The scene of an overlay.
    pub async fn scene(&self, overlay_id: &str) -> Result<VersionedScene, EngineError> {
        check_overlay_id(overlay_id)?;
        let id = overlay_id.to_owned();
        let row: Option<(i64, String)> = self
            .inner
            .store
            .call(move |conn| {
                Ok(conn
                    .query_row(
                        "SELECT version, scene FROM scenes WHERE overlay_id = ?1",
                        [id],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?)
            })
            .await?;
        let (version, text) = row.ok_or(OverlayError::NotFound)?;
        let scene = serde_json::from_str(&text)
            .map_err(|e| EngineError::Task(format!("stored scene does not parse: {e}")))?;
        Ok(VersionedScene { version, scene })
    }

    /// Saves a scene made from version `base`; a stale base changes nothing.
    pub async fn save_scene(
        &self,
        overlay_id: &str,
        base: i64,
        scene: Scene,
    ) -> Result<VersionedScene, EngineError> {
        check_overlay_id(overlay_id)?;
        scene
            .validate(self.inner.limits.scene_layers)
            .map_err(OverlayError::Invalid)?;
        let text = serde_json::to_string(&scene).map_err(|e| EngineError::Task(e.to_string()))?;
        let id = overlay_id.to_owned();
        let now = self.inner.clock.now_ms();
        // The scene it replaces comes out of the same transaction: pages on `base` are sent
        // only what changed from it.
        let outcome: Result<(i64, String), Option<i64>> = self
            .inner
            .store
            .call(move |conn| {
                let tx = conn.transaction()?;
                let before: Option<String> = tx
                    .query_row(
                        "SELECT scene FROM scenes WHERE overlay_id = ?1 AND version = ?2",
                        params![id, base],
                        |r| r.get(0),
                    )
                    .optional()?;
                let Some(before) = before else {
                    let current = tx
                        .query_row(
                            "SELECT version FROM scenes WHERE overlay_id = ?1",
                            [id],
                            |r| r.get(0),
                        )
                        .optional()?;
                    return Ok(Err(current));
                };
                let version: i64 = tx.query_row(
                    "UPDATE scenes SET version = version + 1, scene = ?3, updated_ms = ?4
                     WHERE overlay_id = ?1 AND version = ?2 RETURNING version",
                    params![id, base, text, now],
                    |r| r.get(0),
                )?;
                tx.commit()?;
                Ok(Ok((version, before)))
            })
            .await?;
        let (version, before) = match outcome {
            Ok(saved) => saved,
            Err(Some(current)) => return Err(OverlayError::Conflict { base, current }.into()),
            Err(None) => return Err(OverlayError::NotFound.into()),
        };
        let saved = VersionedScene { version, scene };
        let overlay = self.get(overlay_id).await?;
        // A stored scene that no longer parses is simply replaced whole.
        let before = serde_json::from_str::<Scene>(&before).ok();
        self.push_scene(&overlay, before.as_ref().map(|b| (base, b)), &saved);
        Ok(saved)
    }
}
