//! Moderators: one-time invite keys, scoped sessions, and the actions a session may take.
//!
//! A streamer generates a key with a label and scopes; the key (128+ bits) is shown once and
//! stored only as its hash. Opening the link consumes it in one conditional `UPDATE … RETURNING`
//! (single use even under concurrency) and opens a session, which lasts a fixed
//! `moderators.session_ttl_seconds` from that moment, survives restarts (SQLite) and can be
//! revoked. Every action a session sends is checked against its scopes here, in the engine,
//! whichever door it came through, and written to the audit log with the session's label.

mod checks;

pub(crate) use checks::ActionLimits;
use std::collections::BTreeSet;

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::audit::{AuditEntry, Outcome};
use crate::clock::rfc3339;
use crate::overlays::{AlertRequest, OverlayError, Scene};
use crate::random::{hash_token, token};
use crate::store::StoreError;
use crate::{Engine, EngineError, Secret};

/// What a moderator may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// Edit overlay scenes.
    #[serde(rename = "scene.edit")]
    SceneEdit,
    /// Send text to speech.
    #[serde(rename = "tts")]
    Tts,
    /// Fire alerts.
    #[serde(rename = "alerts")]
    Alerts,
    /// Moderate chat (once chat lands).
    #[serde(rename = "chat.moderate")]
    ChatModerate,
    /// Switch OBS scenes (once OBS control lands).
    #[serde(rename = "obs.scenes")]
    ObsScenes,
}

impl Scope {
    /// Every scope, in display order.
    pub const ALL: [Scope; 5] = [
        Scope::SceneEdit,
        Scope::Tts,
        Scope::Alerts,
        Scope::ChatModerate,
        Scope::ObsScenes,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::SceneEdit => "scene.edit",
            Scope::Tts => "tts",
            Scope::Alerts => "alerts",
            Scope::ChatModerate => "chat.moderate",
            Scope::ObsScenes => "obs.scenes",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// Errors of moderator operations.
#[derive(Debug, thiserror::Error)]
pub enum ModeratorError {
    /// The key is unknown, used or expired — deliberately one answer for all three.
    #[error("this moderator link was already used or has expired; ask the streamer for a new one")]
    InvalidKey,
    /// The session is unknown, revoked or expired.
    #[error("this moderator session has ended")]
    SessionEnded,
    /// The action needs a scope the session does not have.
    #[error("this moderator may not {0}")]
    ScopeDenied(&'static str),
    /// The action exists but its capability is not built yet.
    #[error("{0} is not available yet")]
    NotAvailable(&'static str),
    /// A field is missing or out of range.
    #[error("{0}")]
    Invalid(String),
    /// No session with that id.
    #[error("no moderator session with that id")]
    NotFound,
    /// The session did this too often in the last minute.
    #[error(
        "too many: a moderator may {what} at most {per_minute} times a minute; try again in {retry_seconds} s"
    )]
    RateLimited {
        /// What was refused ("fire alerts").
        what: &'static str,
        /// The configured limit.
        per_minute: u32,
        /// When a token is back.
        retry_seconds: u64,
    },
}

/// A freshly generated key; `key` is shown once and never stored.
#[derive(Debug)]
pub struct NewModeratorKey {
    /// The key itself.
    pub key: Secret,
    /// Until when it can be opened (Unix ms).
    pub expires_ms: i64,
    /// What the session it opens may do.
    pub scopes: Vec<Scope>,
}

/// A live moderator session.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModeratorSession {
    /// Public id, for listing and revoking (not a credential).
    pub id: String,
    /// Who, as the streamer named them.
    pub label: String,
    /// What they may do.
    pub scopes: Vec<Scope>,
    /// The streamer the key was made for, if given.
    pub streamer_id: Option<String>,
    /// Opened (RFC 3339).
    pub created_at: String,
    /// Ends (RFC 3339).
    pub expires_at: String,
    /// Ends (Unix ms).
    #[serde(skip)]
    pub expires_ms: i64,
    /// How the session was opened.
    pub via: Via,
}

/// How a moderator reached Stagehand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// This machine or the LAN.
    Local,
    /// Through the streamer's relay.
    Relay,
}

impl Via {
    /// The wire and database name.
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Local => "local",
            Via::Relay => "relay",
        }
    }

    fn from_text(text: &str) -> Self {
        if text == "relay" {
            Via::Relay
        } else {
            Via::Local
        }
    }
}

impl ModeratorSession {
    /// Whether the session has `scope`.
    pub fn may(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// The actor name in the audit log.
    pub fn actor(&self) -> String {
        format!("moderator:{}", self.label)
    }
}

/// A session just opened; `token` goes into the cookie and nowhere else.
#[derive(Debug)]
pub struct OpenedSession {
    /// The session credential.
    pub token: Secret,
    /// The session.
    pub session: ModeratorSession,
}

/// What a moderator asks for.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type")]
pub enum ModeratorAction {
    /// Save a scene made from version `version`.
    #[serde(rename = "scene.save")]
    SceneSave {
        /// Overlay.
        #[serde(rename = "overlayId")]
        overlay_id: String,
        /// Base version.
        version: i64,
        /// The whole scene.
        scene: Scene,
    },
    /// Speak text on the overlays.
    #[serde(rename = "tts.speak")]
    TtsSpeak(crate::tts::SpeakRequest),
    /// Fire an alert.
    #[serde(rename = "alert.show")]
    AlertShow(AlertRequest),
    /// Switch the OBS program scene.
    #[serde(rename = "obs.scene")]
    ObsScene {
        /// Scene name.
        scene: String,
    },
}

impl ModeratorAction {
    fn scope(&self) -> (Scope, &'static str) {
        match self {
            ModeratorAction::SceneSave { .. } => (Scope::SceneEdit, "edit scenes"),
            ModeratorAction::TtsSpeak(_) => (Scope::Tts, "send text to speech"),
            ModeratorAction::AlertShow(_) => (Scope::Alerts, "fire alerts"),
            ModeratorAction::ObsScene { .. } => (Scope::ObsScenes, "switch OBS scenes"),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            ModeratorAction::SceneSave { .. } => "scene.save",
            ModeratorAction::TtsSpeak(_) => "tts.speak",
            ModeratorAction::AlertShow(_) => "alert.show",
            ModeratorAction::ObsScene { .. } => "obs.scene",
        }
    }
}

fn scopes_to_text(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

fn scopes_from_text(text: &str) -> Vec<Scope> {
    text.split(' ').filter_map(Scope::parse).collect()
}

fn row_to_session(r: &rusqlite::Row<'_>) -> rusqlite::Result<ModeratorSession> {
    let expires_ms: i64 = r.get(5)?;
    Ok(ModeratorSession {
        id: r.get(0)?,
        label: r.get(1)?,
        scopes: scopes_from_text(&r.get::<_, String>(2)?),
        streamer_id: r.get(3)?,
        created_at: rfc3339(r.get(4)?),
        expires_at: rfc3339(expires_ms),
        expires_ms,
        via: Via::from_text(&r.get::<_, String>(6)?),
    })
}

const SESSION_COLUMNS: &str = "id, label, scopes, streamer_id, created_ms, expires_ms, via";

/// Broadcast of revoked session ids, so open sockets close at once.
pub(crate) fn revocations() -> broadcast::Sender<String> {
    broadcast::channel(64).0
}

impl Engine {
    /// Generates a one-time key. `scopes` are wire names; `ttl_seconds` defaults to
    /// `moderators.key_ttl_seconds`.
    pub async fn moderator_key_generate(
        &self,
        label: &str,
        scopes: &[String],
        ttl_seconds: Option<u64>,
        streamer_id: Option<String>,
    ) -> Result<NewModeratorKey, EngineError> {
        let label = label.trim().to_owned();
        if label.is_empty() || label.chars().count() > 64 {
            return Err(ModeratorError::Invalid("label must be 1-64 characters".into()).into());
        }
        let mut set = BTreeSet::new();
        for name in scopes {
            let scope = Scope::parse(name.trim()).ok_or_else(|| {
                ModeratorError::Invalid(format!(
                    "unknown scope `{}` (scene.edit, tts, alerts, chat.moderate, obs.scenes)",
                    name.chars().take(40).collect::<String>()
                ))
            })?;
            set.insert(scope);
        }
        if set.is_empty() {
            return Err(ModeratorError::Invalid("give at least one scope".into()).into());
        }
        let ttl = ttl_seconds.unwrap_or(self.config().moderators.key_ttl_seconds);
        if !(60..=604_800).contains(&ttl) {
            return Err(ModeratorError::Invalid(
                "ttl_seconds must be between 60 and 604800 (a week)".into(),
            )
            .into());
        }
        if let Some(s) = &streamer_id
            && (s.is_empty() || s.len() > 64)
        {
            return Err(
                ModeratorError::Invalid("streamer_id must be 1-64 characters".into()).into(),
            );
        }
        let scopes: Vec<Scope> = set.into_iter().collect();
        let key = Secret::new(token(24)?); // 192 bits
        let now = self.now_ms();
        let expires_ms = now.saturating_add(i64::try_from(ttl).unwrap_or(0) * 1000);
        let (hash, text, l, sid) = (
            hash_token(key.expose()),
            scopes_to_text(&scopes),
            label.clone(),
            streamer_id.clone(),
        );
        self.store()
            .call(move |conn| {
                // Expired keys and ended sessions are worth nothing; drop them as we go.
                conn.execute("DELETE FROM moderator_keys WHERE expires_ms <= ?1", [now])?;
                conn.execute(
                    "DELETE FROM moderator_sessions WHERE expires_ms <= ?1 OR revoked_ms <= ?1",
                    [now],
                )?;
                conn.execute(
                    "INSERT INTO moderator_keys (key_hash, label, scopes, streamer_id, created_ms, expires_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![hash, l, text, sid, now, expires_ms],
                )?;
                Ok(())
            })
            .await?;
        self.audit()
            .record(
                AuditEntry::new("streamer", "moderator.key.generate", Outcome::Ok)
                    .target(label)
                    .detail(
                        serde_json::json!({ "scopes": scopes_to_text(&scopes), "ttlSeconds": ttl }),
                    ),
            )
            .await?;
        Ok(NewModeratorKey {
            key,
            expires_ms,
            scopes,
        })
    }

    /// Consumes a key and opens its session. Unknown, used and expired keys are one error.
    pub async fn moderator_key_consume(
        &self,
        key: &str,
        client: Option<String>,
        via: Via,
    ) -> Result<OpenedSession, EngineError> {
        let hash = hash_token(key);
        let now = self.now_ms();
        let ttl_ms =
            i64::try_from(self.config().moderators.session_ttl_seconds).unwrap_or(0) * 1000;
        let session_token = Secret::new(token(32)?);
        let token_hash = hash_token(session_token.expose());
        let id = format!("ms_{}", token(12)?);
        let sid = id.clone();
        let who = client.clone();
        let opened = self
            .store()
            .call(move |conn| {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                // The single-use step: only one caller can flip consumed_ms from NULL.
                let claimed: Option<(String, String, Option<String>)> = tx
                    .query_row(
                        "UPDATE moderator_keys SET consumed_ms = ?2, session_id = ?3
                         WHERE key_hash = ?1 AND consumed_ms IS NULL AND expires_ms > ?2
                         RETURNING label, scopes, streamer_id",
                        params![hash, now, sid],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()?;
                let Some((label, scopes, streamer_id)) = claimed else {
                    return Ok(None);
                };
                let expires_ms = now.saturating_add(ttl_ms);
                tx.execute(
                    "INSERT INTO moderator_sessions
                     (id, token_hash, label, scopes, streamer_id, client, created_ms, expires_ms, via)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        sid,
                        token_hash,
                        label,
                        scopes,
                        streamer_id,
                        who,
                        now,
                        expires_ms,
                        via.as_str()
                    ],
                )?;
                tx.commit()?;
                Ok(Some(ModeratorSession {
                    id: sid,
                    label,
                    scopes: scopes_from_text(&scopes),
                    streamer_id,
                    created_at: rfc3339(now),
                    expires_at: rfc3339(expires_ms),
                    expires_ms,
                    via,
                }))
            })
            .await?;
        match opened {
            Some(session) => {
                // The key is spent and the session exists: a failed audit write must not turn
                // that into an error that loses the session token.
                if let Err(e) = self
                    .audit()
                    .record(
                        AuditEntry::new(&session.actor(), "moderator.key.consume", Outcome::Ok)
                            .target(session.id.clone())
                            .client(client)
                            .detail(serde_json::json!({ "via": via.as_str() })),
                    )
                    .await
                {
                    tracing::error!(error = %e, "could not audit a moderator key consumption");
                }
                Ok(OpenedSession {
                    token: session_token,
                    session,
                })
            }
            None => {
                self.audit()
                    .record(
                        AuditEntry::new("anonymous", "moderator.key.consume", Outcome::Denied)
                            .client(client)
                            .detail(serde_json::json!({ "via": via.as_str() })),
                    )
                    .await?;
                Err(ModeratorError::InvalidKey.into())
            }
        }
    }

    /// The live session a token names, if any.
    pub async fn moderator_session(
        &self,
        session_token: &str,
    ) -> Result<Option<ModeratorSession>, EngineError> {
        let hash = hash_token(session_token);
        let now = self.now_ms();
        Ok(self
            .store()
            .call(move |conn| {
                Ok(conn
                    .query_row(
                        &format!(
                            "SELECT {SESSION_COLUMNS} FROM moderator_sessions
                             WHERE token_hash = ?1 AND revoked_ms IS NULL AND expires_ms > ?2"
                        ),
                        params![hash, now],
                        row_to_session,
                    )
                    .optional()?)
            })
            .await?)
    }

    /// Whether the session with this id is still live (for open sockets).
    pub async fn moderator_session_live(&self, id: &str) -> Result<bool, EngineError> {
        let id = id.to_owned();
        let now = self.now_ms();
        Ok(self
            .store()
            .call(move |conn| {
                Ok(conn.query_row(
                    "SELECT EXISTS (SELECT 1 FROM moderator_sessions
                     WHERE id = ?1 AND revoked_ms IS NULL AND expires_ms > ?2)",
                    params![id, now],
                    |r| r.get::<_, bool>(0),
                )?)
            })
            .await?)
    }

    /// Live sessions, newest first.
    pub async fn moderator_sessions(&self) -> Result<Vec<ModeratorSession>, EngineError> {
        let now = self.now_ms();
        Ok(self
            .store()
            .call(move |conn| {
                let mut stmt = conn.prepare(&format!(
                    "SELECT {SESSION_COLUMNS} FROM moderator_sessions
                     WHERE revoked_ms IS NULL AND expires_ms > ?1 ORDER BY created_ms DESC, id"
                ))?;
                let rows = stmt.query_map([now], row_to_session)?;
                rows.collect::<Result<Vec<_>, _>>()
                    .map_err(StoreError::from)
            })
            .await?)
    }

    /// Revokes a session: its next request is refused and its open sockets close at once.
    pub async fn moderator_session_revoke(&self, id: &str) -> Result<(), EngineError> {
        let sid = id.to_owned();
        let now = self.now_ms();
        let label: Option<String> = self
            .store()
            .call(move |conn| {
                Ok(conn
                    .query_row(
                        "UPDATE moderator_sessions SET revoked_ms = ?2
                         WHERE id = ?1 AND revoked_ms IS NULL RETURNING label",
                        params![sid, now],
                        |r| r.get(0),
                    )
                    .optional()?)
            })
            .await?;
        let label = label.ok_or(ModeratorError::NotFound)?;
        let _ = self.inner.moderator_revocations.send(id.to_owned());
        self.audit()
            .record(
                AuditEntry::new("streamer", "moderator.session.revoke", Outcome::Ok)
                    .target(id.to_owned())
                    .detail(serde_json::json!({ "label": label })),
            )
            .await?;
        Ok(())
    }

    /// Ids of sessions revoked from now on.
    pub fn moderator_revocations(&self) -> broadcast::Receiver<String> {
        self.inner.moderator_revocations.subscribe()
    }

    /// Carries out a moderator's action if the session's scopes allow it; audited either way.
    pub async fn moderator_act(
        &self,
        session: &ModeratorSession,
        action: ModeratorAction,
    ) -> Result<serde_json::Value, EngineError> {
        let name = action.name();
        let (scope, what) = action.scope();
        let actor = session.actor();
        if !session.may(scope) {
            self.audit().record(
                AuditEntry::new(&actor, &format!("moderator.{name}"), Outcome::Denied)
                    .target(session.id.clone())
                    .detail(serde_json::json!({ "reason": "scope", "scope": scope.as_str(), "via": session.via.as_str() })),
            )
            .await?;
            return Err(ModeratorError::ScopeDenied(what).into());
        }
        let now = self.now_ms();
        let limits = &self.inner.moderator_limits;
        if let Err(limited) = limits.check(&session.id, &action, now) {
            if !limits.audit_refusal(&session.id, name, now) {
                return Err(limited.into());
            }
            self.audit()
                .record(
                    AuditEntry::new(&actor, &format!("moderator.{name}"), Outcome::Denied)
                        .target(session.id.clone())
                        .detail(
                            serde_json::json!({ "reason": "rate", "via": session.via.as_str() }),
                        ),
                )
                .await?;
            return Err(limited.into());
        }
        if let Err(why) = self.moderator_content_check(&action).await {
            self.audit()
                .record(
                    AuditEntry::new(&actor, &format!("moderator.{name}"), Outcome::Denied).detail(
                        serde_json::json!({ "reason": "content", "via": session.via.as_str() }),
                    ),
                )
                .await?;
            return Err(why);
        }
        let result = match action {
            ModeratorAction::SceneSave {
                overlay_id,
                version,
                scene,
            } => self.overlays().save_scene(&overlay_id, version, scene).await.map(
                |saved| serde_json::json!({ "overlayId": overlay_id, "version": saved.version }),
            ),
            ModeratorAction::TtsSpeak(req) => self.tts_speak(req).await.and_then(|spoken| {
                serde_json::to_value(spoken).map_err(|e| EngineError::Task(e.to_string()))
            }),
            ModeratorAction::AlertShow(alert) => self.overlays().show_alert(alert).await.and_then(|d| {
                serde_json::to_value(d).map_err(|e| EngineError::Task(e.to_string()))
            }),
            ModeratorAction::ObsScene { scene } => self
                .obs_switch_scene(&scene)
                .await
                .map(|()| serde_json::json!({ "scene": scene })),
        };
        let outcome = match &result {
            Ok(_) => Outcome::Ok,
            Err(EngineError::Overlay(OverlayError::Conflict { .. })) => Outcome::Denied,
            Err(_) => Outcome::Failed,
        };
        self.audit()
            .record(
                AuditEntry::new(&actor, &format!("moderator.{name}"), outcome)
                    .target(session.id.clone())
                    .detail(serde_json::json!({ "via": session.via.as_str() })),
            )
            .await?;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_through_text() {
        let all = Scope::ALL.to_vec();
        assert_eq!(scopes_from_text(&scopes_to_text(&all)), all);
        assert_eq!(Scope::parse("scene.edit"), Some(Scope::SceneEdit));
        assert_eq!(Scope::parse("admin"), None);
    }

    #[test]
    fn actions_parse_from_the_panel_protocol() {
        let action: ModeratorAction = serde_json::from_value(serde_json::json!({
            "type": "scene.save", "overlayId": "ov_x", "version": 3, "scene": {"layers": []}
        }))
        .expect("scene.save parses");
        assert_eq!(action.scope().0, Scope::SceneEdit);
        let alert: ModeratorAction = serde_json::from_value(serde_json::json!({
            "type": "alert.show", "kind": "test", "title": "Hi"
        }))
        .expect("alert.show parses");
        assert_eq!(alert.scope().0, Scope::Alerts);
    }
}
