//! Streamer authentication: the streamer token, panel sessions and one-time login codes.
//!
//! The streamer token is created at first start, kept in the secret store and held in memory;
//! API clients send it as `x-streamer-token` or `Authorization: Bearer`. Browsers log in once
//! (with the token, or with a one-time code the desktop shell hands its own window) and then
//! carry an HttpOnly session cookie. Sessions are stored hashed in SQLite, so they survive a
//! restart and a stolen database holds nothing usable. Sessions last a fixed
//! `security.session_ttl_seconds` from login; they do not slide.

use std::collections::HashMap;
use std::sync::Mutex;

use rusqlite::params;

use crate::random::{hash_token, token};
use crate::{Engine, EngineError, Secret};

/// Name of the streamer token in the secret store.
pub const STREAMER_TOKEN_SECRET: &str = "streamer-token";
/// How long a desktop login code stays valid.
pub const LOGIN_CODE_TTL_MS: i64 = 60_000;

/// Why a login was refused. One variant on purpose: callers learn nothing about which part
/// was wrong.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The token, code or session is not valid.
    #[error("invalid or expired credentials")]
    InvalidCredentials,
}

/// A freshly created panel session; the id goes into the cookie and nowhere else.
#[derive(Debug)]
pub struct NewSession {
    /// The cookie value.
    pub id: Secret,
    /// When it expires (Unix ms).
    pub expires_ms: i64,
}

/// In-memory single-use login codes (hash → expiry).
#[derive(Debug, Default)]
pub(crate) struct LoginCodes(Mutex<HashMap<String, i64>>);

/// Reads the streamer token, creating and storing one if there is none (blocking).
pub fn ensure_streamer_token(
    secrets: &dyn crate::secrets::SecretStore,
) -> Result<Secret, EngineError> {
    if let Some(existing) = secrets.get(STREAMER_TOKEN_SECRET)? {
        return Ok(existing);
    }
    let fresh = Secret::new(token(32)?);
    secrets.set(STREAMER_TOKEN_SECRET, &fresh)?;
    tracing::info!("created a new streamer token");
    Ok(fresh)
}

impl Engine {
    /// Whether `candidate` is the streamer token (constant time).
    pub fn check_streamer_token(&self, candidate: &str) -> bool {
        self.inner.streamer_token.ct_eq(candidate.as_bytes())
    }

    /// Whether `cookie` names a live panel session.
    pub async fn check_session(&self, cookie: &str) -> Result<bool, EngineError> {
        let hash = hash_token(cookie);
        let now = self.now_ms();
        Ok(self
            .store()
            .call(move |conn| {
                Ok(conn.query_row(
                    "SELECT EXISTS (SELECT 1 FROM streamer_sessions
                                    WHERE id_hash = ?1 AND expires_ms > ?2)",
                    params![hash, now],
                    |r| r.get::<_, bool>(0),
                )?)
            })
            .await?)
    }

    async fn create_session(&self, client: Option<String>) -> Result<NewSession, EngineError> {
        let id = Secret::new(token(32)?);
        let hash = hash_token(id.expose());
        let now = self.now_ms();
        let ttl_ms = i64::try_from(self.config().security.session_ttl_seconds)
            .unwrap_or(i64::MAX / 2)
            .saturating_mul(1000);
        let expires_ms = now.saturating_add(ttl_ms);
        self.store()
            .call(move |conn| {
                conn.execute(
                    "DELETE FROM streamer_sessions WHERE expires_ms <= ?1",
                    params![now],
                )?;
                conn.execute(
                    "INSERT INTO streamer_sessions (id_hash, created_ms, expires_ms, client)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![hash, now, expires_ms, client],
                )?;
                Ok(())
            })
            .await?;
        Ok(NewSession { id, expires_ms })
    }

    /// Logs in with the streamer token.
    pub async fn login_with_token(
        &self,
        candidate: &str,
        client: Option<String>,
    ) -> Result<NewSession, EngineError> {
        if !self.check_streamer_token(candidate) {
            return Err(AuthError::InvalidCredentials.into());
        }
        self.create_session(client).await
    }

    /// Issues a one-time login code (valid [`LOGIN_CODE_TTL_MS`]) for the desktop shell to
    /// hand its own window, so the token never appears in a URL.
    pub fn issue_login_code(&self) -> Result<Secret, EngineError> {
        let code = Secret::new(token(32)?);
        let now = self.now_ms();
        let mut codes = self
            .inner
            .login_codes
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        codes.retain(|_, expires| *expires > now);
        codes.insert(hash_token(code.expose()), now + LOGIN_CODE_TTL_MS);
        Ok(code)
    }

    /// Logs in with a one-time code; the code is gone after the first attempt that names it.
    pub async fn login_with_code(
        &self,
        code: &str,
        client: Option<String>,
    ) -> Result<NewSession, EngineError> {
        let now = self.now_ms();
        let valid = {
            let mut codes = self
                .inner
                .login_codes
                .0
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            codes
                .remove(&hash_token(code))
                .is_some_and(|expires| expires > now)
        };
        if !valid {
            return Err(AuthError::InvalidCredentials.into());
        }
        self.create_session(client).await
    }

    /// Ends a panel session; `true` when there was one.
    pub async fn logout(&self, cookie: &str) -> Result<bool, EngineError> {
        let hash = hash_token(cookie);
        Ok(self
            .store()
            .call(move |conn| {
                Ok(conn.execute("DELETE FROM streamer_sessions WHERE id_hash = ?1", [hash])? > 0)
            })
            .await?)
    }
}
