//! What a moderator's action must pass besides its scopes: the session's rate for that kind
//! of action, and the rule that moderators put only Stagehand's own media on stream.

use super::{ModeratorAction, ModeratorError};
use crate::ratelimit::RateLimiter;
use crate::{Engine, EngineError};

/// How often each moderator session may act, per kind of action (`[moderators]` in the config).
#[derive(Debug)]
pub(crate) struct ActionLimits {
    scene_saves: (u32, RateLimiter<String>),
    tts: (u32, RateLimiter<String>),
    alerts: (u32, RateLimiter<String>),
    obs_scenes: (u32, RateLimiter<String>),
    /// When a refusal was last audited, per session and action, so that a flood of refused
    /// actions is not a flood of audit entries.
    audited: std::sync::Mutex<std::collections::HashMap<(String, &'static str), i64>>,
}

impl ActionLimits {
    pub(crate) fn new(config: &crate::config::ModeratorsConfig) -> Self {
        let limit = |per_minute: u32| (per_minute, RateLimiter::new(per_minute));
        Self {
            scene_saves: limit(config.scene_saves_per_minute),
            tts: limit(config.tts_per_minute),
            alerts: limit(config.alerts_per_minute),
            obs_scenes: limit(config.obs_scenes_per_minute),
            audited: std::sync::Mutex::default(),
        }
    }

    /// Whether a refusal of `action` for `session` at `now_ms` should be audited: the first,
    /// then at most one a minute.
    pub(super) fn audit_refusal(&self, session: &str, action: &'static str, now_ms: i64) -> bool {
        let mut audited = self.audited.lock().unwrap_or_else(|p| p.into_inner());
        if audited.len() > 10_000 {
            audited.retain(|_, at| now_ms - *at < 60_000);
        }
        let last = audited
            .entry((session.to_owned(), action))
            .or_insert(i64::MIN);
        if last.saturating_add(60_000) > now_ms {
            return false;
        }
        *last = now_ms;
        true
    }

    /// Takes one `action` for `session` at `now_ms`.
    pub(super) fn check(
        &self,
        session: &str,
        action: &ModeratorAction,
        now_ms: i64,
    ) -> Result<(), ModeratorError> {
        let (per_minute, limiter) = match action {
            ModeratorAction::SceneSave { .. } => &self.scene_saves,
            ModeratorAction::TtsSpeak(_) => &self.tts,
            ModeratorAction::AlertShow(_) => &self.alerts,
            ModeratorAction::ObsScene { .. } => &self.obs_scenes,
        };
        limiter
            .check(session.to_owned(), now_ms)
            .map_err(|retry_seconds| ModeratorError::RateLimited {
                what: action.scope().1,
                per_minute: *per_minute,
                retry_seconds,
            })
    }
}

impl Engine {
    /// Moderators may only put Stagehand's own media on stream: anything they add that loads from
    /// elsewhere (an alert image or sound, a layer's `src`, a `url(...)` in a style) must be a
    /// `/media/` upload, so a moderator cannot make OBS fetch arbitrary outside content (or learn
    /// the streamer's address). What the streamer already put in a scene may stay.
    pub(super) async fn moderator_content_check(
        &self,
        action: &ModeratorAction,
    ) -> Result<(), EngineError> {
        let local = |url: &str| url.starts_with("/media/");
        match action {
            ModeratorAction::AlertShow(alert) => {
                for (what, url) in [("image", &alert.image), ("sound", &alert.sound)] {
                    if let Some(url) = url
                        && !local(url)
                    {
                        return Err(ModeratorError::Invalid(format!(
                            "a moderator's alert {what} must be an uploaded /media/ file"
                        ))
                        .into());
                    }
                }
                Ok(())
            }
            ModeratorAction::SceneSave {
                overlay_id, scene, ..
            } => {
                let current = self.overlays().scene(overlay_id).await?;
                for layer in &scene.layers {
                    let before = current.scene.layers.iter().find(|l| l.id == layer.id);
                    let src = layer.props.get("src");
                    if let Some(serde_json::Value::String(url)) = src
                        && !local(url)
                        && before.and_then(|b| b.props.get("src")) != src
                    {
                        return Err(ModeratorError::Invalid(format!(
                            "layer `{}`: a moderator may only use uploaded /media/ files",
                            layer.id
                        ))
                        .into());
                    }
                    for (key, value) in &layer.style {
                        let fetches = value
                            .as_str()
                            .is_some_and(|v| v.to_ascii_lowercase().contains("url("));
                        if fetches && before.and_then(|b| b.style.get(key)) != Some(value) {
                            return Err(ModeratorError::Invalid(format!(
                                "layer `{}`: styles may not load outside content",
                                layer.id
                            ))
                            .into());
                        }
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
