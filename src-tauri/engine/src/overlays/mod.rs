//! Overlays: what OBS shows on top of the stream.
//!
//! An overlay has a name, a size and a scene. OBS loads it from a signed link,
//! `/o/{id}?sig=...[&exp=...]`: OBS cannot send headers, so the link itself is the credential.
//! The signature is HMAC-SHA256 over the overlay id and expiry with a key kept in the secret
//! store; rotating the key invalidates every link at once. Scene saves are versioned: an editor
//! saves against the version it started from, and a stale base is refused. Every change is
//! pushed to the overlay's connected pages through the [`hub::OverlayHub`].

pub mod feed;
pub mod hub;
mod pages;
pub mod scene;

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use sha2::Sha256;

pub use feed::{ChartPoint, ChartUpdate, ChatMessage};
pub(crate) use pages::{Latencies, Published};
pub use scene::{Layer, LayerKind, Scene};

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

/// An alert to show.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRequest {
    /// Only this overlay; all overlays when absent.
    #[serde(rename = "overlayId")]
    pub overlay_id: Option<String>,
    /// `follow`, `sub`, `raid`, `tradingview`, … (1-32 of a-z 0-9 _ -).
    pub kind: String,
    /// Headline.
    pub title: String,
    /// Body text.
    #[serde(default)]
    pub message: String,
    /// Picture URL.
    pub image: Option<String>,
    /// Sound URL.
    pub sound: Option<String>,
    /// How long it shows (500-60000 ms, default 5000).
    pub duration_ms: Option<u32>,
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

/// Signature of a link to `overlay_id` expiring at `exp` (Unix seconds, 0 = never).
fn sign(key: &Secret, overlay_id: &str, exp: u64) -> String {
    URL_SAFE_NO_PAD.encode(mac_for(key, overlay_id, exp).finalize().into_bytes())
}

fn mac_for(key: &Secret, overlay_id: &str, exp: u64) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.expose().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(format!("stagehand-overlay/v1\n{overlay_id}\n{exp}").as_bytes());
    mac
}

/// Loads the signing key, creating it on first use (blocking).
pub(crate) fn ensure_signing_key(
    secrets: &dyn crate::secrets::SecretStore,
) -> Result<Secret, EngineError> {
    if let Some(key) = secrets.get(SIGNING_KEY_SECRET)? {
        return Ok(key);
    }
    let key = Secret::new(crate::random::token(32)?);
    secrets.set(SIGNING_KEY_SECRET, &key)?;
    Ok(key)
}

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

    fn signing_key(&self) -> Secret {
        self.inner
            .key
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The path and query of a signed link (`/o/{id}?sig=...[&exp=...]`).
    pub fn link_path(&self, overlay_id: &str, expires_unix: Option<u64>) -> String {
        let exp = expires_unix.unwrap_or(0);
        let sig = sign(&self.signing_key(), overlay_id, exp);
        if exp == 0 {
            format!("/o/{overlay_id}?sig={sig}")
        } else {
            format!("/o/{overlay_id}?sig={sig}&exp={exp}")
        }
    }

    /// Checks a link's signature (constant time), expiry and that the overlay still exists.
    pub async fn verify_link(
        &self,
        overlay_id: &str,
        sig: Option<&str>,
        exp: Option<&str>,
    ) -> Result<Overlay, EngineError> {
        let sig = sig.ok_or(OverlayError::LinkRefused("no signature"))?;
        let exp: u64 = match exp {
            None => 0,
            Some(e) => e
                .parse()
                .map_err(|_| OverlayError::LinkRefused("bad expiry"))?,
        };
        let given = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| OverlayError::LinkRefused("forged signature"))?;
        mac_for(&self.signing_key(), overlay_id, exp)
            .verify_slice(&given)
            .map_err(|_| OverlayError::LinkRefused("forged signature"))?;
        if exp != 0 && u64::try_from(self.inner.clock.now_ms() / 1000).unwrap_or(0) >= exp {
            return Err(OverlayError::LinkRefused("expired").into());
        }
        match self.get(overlay_id).await {
            Ok(overlay) => Ok(overlay),
            Err(EngineError::Overlay(OverlayError::NotFound)) => {
                Err(OverlayError::LinkRefused("overlay deleted").into())
            }
            Err(e) => Err(e),
        }
    }

    /// Replaces the signing key: every existing link stops working, open pages are closed.
    pub async fn rotate_key(&self) -> Result<(), EngineError> {
        let key = Secret::new(crate::random::token(32)?);
        self.inner
            .secrets
            .set(SIGNING_KEY_SECRET, key.clone())
            .await?;
        *self.inner.key.write().unwrap_or_else(|p| p.into_inner()) = key;
        self.inner.hub.close_all(CloseReason {
            code: 4403,
            reason: "overlay links were rotated",
        });
        Ok(())
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

    /// The `scene.full` message for an overlay.
    pub fn scene_full_message(&self, overlay: &Overlay, scene: &VersionedScene) -> Arc<str> {
        self.record_published(&overlay.overlay_id, scene.version);
        let message = serde_json::json!({
            "type": "scene.full",
            "version": scene.version,
            "server_ts": rfc3339(self.inner.clock.now_ms()),
            "overlay": overlay_summary(overlay),
            "scene": scene.scene,
        });
        Arc::from(message.to_string())
    }

    /// Sends pages a new version: as `scene.patch` from `before` (the version they have) when
    /// that is shorter than the whole scene, else as `scene.full`.
    fn push_scene(&self, overlay: &Overlay, before: Option<(i64, &Scene)>, scene: &VersionedScene) {
        let full = self.scene_full_message(overlay, scene);
        let patch = before.map(|(from, old)| {
            let diff = scene.scene.diff_from(old);
            serde_json::json!({
                "type": "scene.patch",
                "from_version": from,
                "to_version": scene.version,
                "server_ts": rfc3339(self.inner.clock.now_ms()),
                // A rename or resize racing this save may be skipped as older; the page takes
                // the overlay's name and size from here too.
                "overlay": overlay_summary(overlay),
                "layers": diff.layers,
                "order": diff.order,
            })
            .to_string()
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

    async fn push_full_scene(&self, overlay_id: &str) -> Result<(), EngineError> {
        let overlay = self.get(overlay_id).await?;
        let scene = self.scene(overlay_id).await?;
        self.push_scene(&overlay, None, &scene);
        Ok(())
    }

    /// Shows an alert on one overlay or all of them.
    pub async fn show_alert(&self, alert: AlertRequest) -> Result<Delivery, EngineError> {
        let id = format!("al_{}", crate::random::token(9)?);
        Ok(self.show_alert_with_id(id, alert).await?.0)
    }

    /// Shows an alert under a given id (webhooks derive it from the delivery, so a page that
    /// is sent the same alert again after a restart can tell); returns the message sent too.
    pub(crate) async fn show_alert_with_id(
        &self,
        id: String,
        alert: AlertRequest,
    ) -> Result<(Delivery, Arc<str>), EngineError> {
        let kind_ok = !alert.kind.is_empty()
            && alert.kind.len() <= 32
            && alert
                .kind
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !kind_ok {
            return Err(OverlayError::Invalid("kind must be 1-32 of a-z 0-9 _ -".into()).into());
        }
        if alert.title.trim().is_empty() || alert.title.chars().count() > 200 {
            return Err(OverlayError::Invalid("title must be 1-200 characters".into()).into());
        }
        if alert.message.chars().count() > 1000 {
            return Err(
                OverlayError::Invalid("message must be at most 1000 characters".into()).into(),
            );
        }
        for (what, url) in [("image", &alert.image), ("sound", &alert.sound)] {
            if let Some(url) = url
                && !(url.starts_with("/media/")
                    || url.starts_with("https://")
                    || url.starts_with("http://"))
            {
                return Err(OverlayError::Invalid(format!(
                    "{what} must be a /media/ path or an http(s) URL"
                ))
                .into());
            }
        }
        let duration = alert.duration_ms.unwrap_or(5000);
        if !(500..=60_000).contains(&duration) {
            return Err(
                OverlayError::Invalid("duration_ms must be between 500 and 60000".into()).into(),
            );
        }
        if let Some(id) = &alert.overlay_id {
            self.get(id).await?;
        }
        let message: Arc<str> = Arc::from(
            serde_json::json!({
                "type": "alert.show",
                "id": id,
                "kind": alert.kind,
                "title": alert.title,
                "message": alert.message,
                "image": alert.image,
                "sound": alert.sound,
                "duration_ms": duration,
            })
            .to_string(),
        );
        let pages = match &alert.overlay_id {
            Some(overlay) => self.inner.hub.send(overlay, &message),
            None => self.inner.hub.send_all(&message),
        };
        self.inner.metrics.counter_add(
            "stagehand_overlay_alerts_total",
            "Alerts sent to overlays.",
            &[("kind", &alert.kind)],
            1,
        );
        Ok((Delivery { id, pages }, message))
    }
}

/// What a page is told about its overlay with each scene message.
fn overlay_summary(overlay: &Overlay) -> serde_json::Value {
    serde_json::json!({
        "id": overlay.overlay_id,
        "name": overlay.name,
        "width": overlay.width,
        "height": overlay.height,
    })
}
