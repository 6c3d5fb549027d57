//! Tokens: what a provider grants, how a link's tokens are sealed into one secret-store value
//! (`account-{provider}`, both tokens in one JSON value so a write replaces them together), and
//! when they are due for renewal.

use serde::{Deserialize, Serialize};
use stagehand_core::Secret;

use crate::{AccountError, AccountLink, Provider};

/// The youngest a token is when it is renewed.
const MIN_TOKEN_AGE_MS: i64 = 30_000;

/// Tokens a provider granted.
pub(crate) struct Grant {
    pub(crate) access: Secret,
    pub(crate) refresh: Option<Secret>,
    pub(crate) expires_in: Option<u64>,
    pub(crate) scopes: Option<Vec<String>>,
}

/// Who the tokens belong to.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) id: String,
    pub(crate) name: String,
}

/// A link's tokens, as kept in the secret store.
pub(crate) struct Tokens {
    pub(crate) access: Secret,
    pub(crate) refresh: Option<Secret>,
}

#[derive(Serialize)]
struct TokensOut<'a> {
    access_token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
}

#[derive(Deserialize)]
struct TokensIn {
    access_token: String,
    refresh_token: Option<String>,
}

impl Tokens {
    /// The one secret-store value holding both tokens.
    pub(crate) fn seal(&self) -> Result<Secret, AccountError> {
        serde_json::to_string(&TokensOut {
            access_token: self.access.expose(),
            refresh_token: self.refresh.as_ref().map(Secret::expose),
        })
        .map(Secret::new)
        .map_err(|e| AccountError::Internal(format!("cannot encode tokens: {e}")))
    }

    /// The tokens back from their sealed form; `None` when it is not one.
    pub(crate) fn open(sealed: &Secret) -> Option<Self> {
        let raw: TokensIn = serde_json::from_str(sealed.expose()).ok()?;
        Some(Self {
            access: Secret::new(raw.access_token),
            refresh: raw.refresh_token.map(Secret::new),
        })
    }
}

/// The secret-store name of a provider's tokens.
pub(crate) fn secret_name(provider: Provider) -> String {
    format!("account-{}", provider.as_str())
}

/// When a token that lives `expires_in` seconds from `now` expires (Unix ms).
pub(crate) fn expiry(now: i64, expires_in: Option<u64>) -> Option<i64> {
    expires_in.map(|s| now.saturating_add(i64::try_from(s).unwrap_or(i64::MAX / 2000) * 1000))
}

/// When the refresher renews a link's token: `lead_ms` before it expires, or at half its life
/// if it lives shorter than twice that (so a short-lived token is not renewed in a loop).
/// `None` when the provider gave no expiry.
pub fn refresh_due_ms(link: &AccountLink, lead_ms: i64) -> Option<i64> {
    let expires = link.expires_ms?;
    let half_life = link.token_ms + (expires - link.token_ms) / 2;
    // Never sooner than this after the token was obtained, whatever a provider says about
    // its lifetime: a token "expiring" at once must not turn into a refresh loop.
    Some(
        (expires - lead_ms)
            .max(half_life)
            .max(link.token_ms + MIN_TOKEN_AGE_MS),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Flow, LinkStatus};

    #[test]
    fn tokens_round_trip_through_their_sealed_form() {
        let tokens = Tokens {
            access: Secret::new("acc\"ess"),
            refresh: Some(Secret::new("re/fresh")),
        };
        let sealed = tokens.seal().expect("encodes");
        let back = Tokens::open(&sealed).expect("decodes");
        assert_eq!(back.access.expose(), "acc\"ess");
        assert_eq!(back.refresh.as_ref().map(Secret::expose), Some("re/fresh"));
        assert!(Tokens::open(&Secret::new("not json")).is_none());
    }

    #[test]
    fn refresh_is_due_before_expiry_or_at_half_life() {
        let link = |token_ms, expires_ms| AccountLink {
            provider: Provider::Twitch,
            account_id: String::new(),
            account_name: String::new(),
            scopes: vec![],
            flow: Flow::Device,
            status: LinkStatus::Ok,
            status_reason: None,
            expires_at: None,
            linked_at: String::new(),
            refreshed_at: None,
            expires_ms,
            token_ms,
        };
        assert_eq!(
            refresh_due_ms(&link(0, Some(3_600_000)), 300_000),
            Some(3_300_000),
            "an hour-long token is renewed five minutes early"
        );
        assert_eq!(
            refresh_due_ms(&link(0, Some(60_000)), 300_000),
            Some(30_000),
            "a minute-long token is renewed at half its life, not at once and again and again"
        );
        assert_eq!(
            refresh_due_ms(&link(0, Some(0)), 300_000),
            Some(30_000),
            "a token said to expire at once is still not renewed in a loop"
        );
        assert_eq!(refresh_due_ms(&link(0, None), 300_000), None);
    }
}
