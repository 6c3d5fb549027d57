//! Tunnels: the public name a streamer's webhooks are sent to, and the secret only the engine
//! holds.
//!
//! The relay stores only the SHA-256 of a secret and compares digests in constant time, so a
//! copy of the relay's database does not let anyone impersonate the engine.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::RelayError;

/// TradingView's published webhook source addresses.
pub const TRADINGVIEW_ADDRESSES: [IpAddr; 4] = [
    IpAddr::V4(Ipv4Addr::new(52, 89, 214, 238)),
    IpAddr::V4(Ipv4Addr::new(34, 212, 75, 30)),
    IpAddr::V4(Ipv4Addr::new(54, 218, 53, 128)),
    IpAddr::V4(Ipv4Addr::new(52, 32, 178, 7)),
];

/// The only engine paths the relay accepts webhooks for.
pub const WEBHOOK_PREFIX: &str = "webhooks/";

const MAX_ID_LEN: usize = 64;
const MAX_PATH_LEN: usize = 512;

/// A tunnel's public id: 16 random bytes, base64url without padding.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TunnelId(String);

impl TunnelId {
    /// Parses an id from a URL or the command line; `None` when it cannot be one.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = !s.is_empty()
            && s.len() <= MAX_ID_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self(s.to_owned()))
    }

    /// A fresh random id.
    /// Never starts with `-`: an id that does reads as an option to the command line (and
    /// to most shells' tools), so `stagehand-relay tunnel allow -x…` would fail.
    pub fn generate() -> Result<Self, RelayError> {
        loop {
            let id = random_token::<16>()?;
            if !id.starts_with('-') {
                return Ok(Self(id));
            }
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for TunnelId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TunnelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tunnel secret in the clear; only ever shown once, when the tunnel is created.
///
/// `Debug` and `Display` redact it so it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct TunnelSecret(String);

impl TunnelSecret {
    /// Wraps a secret presented by a client.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// A fresh random secret: 32 random bytes, base64url without padding.
    pub fn generate() -> Result<Self, RelayError> {
        Ok(Self(random_token::<32>()?))
    }

    /// The secret itself, for the one place that must show or send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the relay stores.
    pub fn digest(&self) -> SecretDigest {
        SecretDigest(Sha256::digest(self.0.as_bytes()).into())
    }
}

impl fmt::Debug for TunnelSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TunnelSecret(****)")
    }
}

impl fmt::Display for TunnelSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

impl Serialize for TunnelSecret {
    /// Serialises the secret in the clear: only `tunnel create` output uses this.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// The SHA-256 of a tunnel secret.
#[derive(Clone, Copy)]
pub struct SecretDigest(pub [u8; 32]);

impl SecretDigest {
    /// Whether `presented` is the secret this digest was made from, in constant time.
    pub fn matches(&self, presented: &TunnelSecret) -> bool {
        self.0.ct_eq(&presented.digest().0).into()
    }
}

impl fmt::Debug for SecretDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretDigest(****)")
    }
}

/// A tunnel just created: the id to put in URLs and the secret to give the engine.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewTunnel {
    /// The public id.
    pub tunnel_id: TunnelId,
    /// The secret, shown this once.
    pub secret: TunnelSecret,
}

/// Checks an engine path: it must lie under `webhooks/`, without empty, `.` or `..`
/// segments. A leading `/` is dropped. `None` when the relay does not accept it.
pub fn webhook_path(path: &str) -> Option<String> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let rest = path.strip_prefix(WEBHOOK_PREFIX)?;
    let ok = path.len() <= MAX_PATH_LEN
        && !rest.is_empty()
        && rest
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
        && !path.chars().any(char::is_control);
    ok.then(|| path.to_owned())
}

fn random_token<const N: usize>() -> Result<String, RelayError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| RelayError::Random(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let secret = TunnelSecret::new("hunter2-very-secret");
        assert!(!format!("{secret:?} {secret}").contains("hunter2"));
        let digest = secret.digest();
        assert!(!format!("{digest:?}").contains(&format!("{}", digest.0[0])));
    }

    #[test]
    fn digest_matches_only_its_secret() {
        let secret = TunnelSecret::generate().expect("random");
        let digest = secret.digest();
        assert!(digest.matches(&secret));
        assert!(!digest.matches(&TunnelSecret::new("nope")));
        assert!(!digest.matches(&TunnelSecret::new("")));
    }

    #[test]
    fn generated_ids_are_url_safe_and_parse() {
        let id = TunnelId::generate().expect("random");
        assert_eq!(id.as_str().len(), 22, "16 bytes in unpadded base64url");
        assert_eq!(TunnelId::parse(id.as_str()), Some(id));
        assert_eq!(TunnelId::parse("a/b"), None);
        assert_eq!(TunnelId::parse(""), None);
    }

    #[test]
    fn generated_ids_never_look_like_a_command_line_option() {
        // One id in 64 would start with '-' by chance; 2,000 tries all but guarantee a catch.
        for _ in 0..2_000 {
            let id = TunnelId::generate().expect("random");
            assert!(!id.as_str().starts_with('-'), "{}", id.as_str());
        }
    }

    #[test]
    fn only_paths_under_webhooks_are_accepted() {
        assert_eq!(
            webhook_path("webhooks/tradingview").as_deref(),
            Some("webhooks/tradingview")
        );
        assert_eq!(
            webhook_path("/webhooks/a/b").as_deref(),
            Some("webhooks/a/b")
        );
        for bad in [
            "webhooks/",
            "webhooks",
            "api/overlays",
            "webhooks/../api",
            "webhooks//x",
            "webhooks/./x",
        ] {
            assert_eq!(webhook_path(bad), None, "{bad} must be refused");
        }
    }
}
