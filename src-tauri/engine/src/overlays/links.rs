//! Signed overlay links: OBS cannot send headers, so the link is the credential. The
//! signature is HMAC-SHA256 over the overlay id and expiry with a key kept in the secret store;
//! rotating the key invalidates every link at once and closes the pages open on old links.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::hub::CloseReason;
use super::{Overlay, OverlayError, Overlays, SIGNING_KEY_SECRET};
use crate::{EngineError, Secret};

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

impl Overlays {
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
}
