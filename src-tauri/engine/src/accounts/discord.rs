//! Discord: OAuth 2.0 with PKCE as a public client (the application has "Public Client" on, so
//! no secret is sent; Discord's metadata lists `none` as a token endpoint auth method and S256
//! as its challenge method), for `identify`. Every endpoint is under `discord.api_url`.
//!
//! For go-live announcements a streamer may instead paste a channel webhook URL. The URL is
//! its own credential (anyone holding it can post), so it is kept in the secret store like a
//! token and only shown masked.

use oauth2::basic::BasicClient;
use oauth2::{AuthType, AuthUrl, ClientId, TokenUrl};
use rusqlite::params;
use serde::Deserialize;

use super::oauth::Client;
use super::{AccountError, DiscordWebhook, Failure, Identity, http_get_json};
use crate::audit::{AuditEntry, Outcome};
use crate::clock::rfc3339;
use crate::config::DiscordConfig;
use crate::{Engine, EngineError, Secret};

/// Name of the webhook URL in the secret store.
const WEBHOOK_SECRET: &str = "discord-webhook";

/// The oauth2 client for the configured API base.
pub(crate) fn client(config: &DiscordConfig, client_id: &str) -> Result<Client, String> {
    let base = config.api_url.trim().trim_end_matches('/');
    let url = |path: &str| format!("{base}{path}");
    Ok(BasicClient::new(ClientId::new(client_id.to_owned()))
        .set_auth_uri(
            AuthUrl::new(url("/oauth2/authorize")).map_err(|e| format!("discord.api_url: {e}"))?,
        )
        .set_token_uri(
            TokenUrl::new(url("/oauth2/token")).map_err(|e| format!("discord.api_url: {e}"))?,
        )
        .set_auth_type(AuthType::RequestBody))
}

#[derive(Deserialize)]
struct User {
    id: String,
    username: String,
    global_name: Option<String>,
}

/// The user the token belongs to (`/users/@me`).
pub(crate) async fn identity(
    http: &reqwest::Client,
    config: &DiscordConfig,
    access: &Secret,
) -> Result<Identity, Failure> {
    let url = format!("{}/users/@me", config.api_url.trim().trim_end_matches('/'));
    let user: User = http_get_json(http.get(url).bearer_auth(access.expose())).await?;
    Ok(Identity {
        id: user.id,
        name: user
            .global_name
            .filter(|n| !n.is_empty())
            .unwrap_or(user.username),
    })
}

/// The revocation endpoint.
pub(crate) fn revoke_url(config: &DiscordConfig) -> String {
    format!(
        "{}/oauth2/token/revoke",
        config.api_url.trim().trim_end_matches('/')
    )
}

/// `https://discord.com/api/webhooks/{id}/****`.
pub(crate) fn masked_webhook(id: &str) -> String {
    format!("https://discord.com/api/webhooks/{id}/****")
}

/// Checks a pasted webhook URL and returns the webhook's id.
fn webhook_id(url: &str) -> Result<String, AccountError> {
    let invalid = || {
        AccountError::Invalid(
            "paste the channel webhook URL exactly as Discord shows it \
             (https://discord.com/api/webhooks/<id>/<token>)"
                .into(),
        )
    };
    let parsed = reqwest::Url::parse(url.trim()).map_err(|_| invalid())?;
    let host_ok = matches!(
        parsed.host_str(),
        Some("discord.com" | "discordapp.com" | "ptb.discord.com" | "canary.discord.com")
    );
    if parsed.scheme() != "https"
        || !host_ok
        || parsed.port().is_some()
        || !parsed.username().is_empty()
        || parsed.password().is_some()
        || parsed.query().is_some()
        || parsed.fragment().is_some()
    {
        return Err(invalid());
    }
    let segments: Vec<&str> = parsed
        .path_segments()
        .map(Iterator::collect)
        .unwrap_or_default();
    // `/api/webhooks/{id}/{token}`, or with an API version: `/api/v10/webhooks/{id}/{token}`.
    let rest = match segments.as_slice() {
        ["api", "webhooks", rest @ ..] => rest,
        ["api", version, "webhooks", rest @ ..] if version.starts_with('v') => rest,
        _ => return Err(invalid()),
    };
    match rest {
        [id, token]
            if !id.is_empty()
                && id.len() <= 32
                && id.bytes().all(|b| b.is_ascii_digit())
                && (1..=200).contains(&token.len())
                && token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Ok((*id).to_owned())
        }
        _ => Err(invalid()),
    }
}

impl Engine {
    /// Saves the Discord channel webhook for go-live announcements (in the secret store);
    /// answers it masked. Audited.
    pub async fn discord_webhook_set(&self, url: &str) -> Result<DiscordWebhook, EngineError> {
        let id = webhook_id(url)?;
        self.secrets()
            .set(WEBHOOK_SECRET, Secret::new(url.trim()))
            .await?;
        let now = self.now_ms();
        let stored = id.clone();
        self.store()
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO discord_webhook (id, webhook_id, set_ms) VALUES (1, ?1, ?2)
                     ON CONFLICT (id) DO UPDATE SET webhook_id = excluded.webhook_id,
                         set_ms = excluded.set_ms",
                    params![stored, now],
                )?;
                Ok(())
            })
            .await?;
        self.audit()
            .record(
                AuditEntry::new("streamer", "account.discord_webhook.set", Outcome::Ok)
                    .target(id.clone()),
            )
            .await?;
        Ok(DiscordWebhook {
            url: masked_webhook(&id),
            set_at: rfc3339(now),
        })
    }

    /// Removes the Discord webhook; `true` when there was one. Audited.
    pub async fn discord_webhook_clear(&self) -> Result<bool, EngineError> {
        self.secrets().delete(WEBHOOK_SECRET).await?;
        let removed = self
            .store()
            .call(|conn| Ok(conn.execute("DELETE FROM discord_webhook WHERE id = 1", [])? > 0))
            .await?;
        if removed {
            self.audit()
                .record(AuditEntry::new(
                    "streamer",
                    "account.discord_webhook.delete",
                    Outcome::Ok,
                ))
                .await?;
        }
        Ok(removed)
    }

    /// The Discord webhook URL itself, for the go-live announcement.
    pub async fn discord_webhook_url(&self) -> Result<Option<Secret>, EngineError> {
        Ok(self.secrets().get(WEBHOOK_SECRET).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_are_discords_and_well_formed() {
        assert_eq!(
            webhook_id("https://discord.com/api/webhooks/123456/abc-DEF_9").ok(),
            Some("123456".into())
        );
        assert_eq!(
            webhook_id("https://canary.discord.com/api/v10/webhooks/42/tok").ok(),
            Some("42".into())
        );
        for bad in [
            "http://discord.com/api/webhooks/1/t",
            "https://discord.com.evil.example/api/webhooks/1/t",
            "https://evil.example/api/webhooks/1/t",
            "https://discord.com/api/webhooks/abc/t",
            "https://discord.com/api/webhooks/1",
            "https://discord.com/api/webhooks/1/t?wait=true",
            "https://user@discord.com/api/webhooks/1/t",
            "not a url",
        ] {
            assert!(webhook_id(bad).is_err(), "{bad} must be refused");
        }
        assert_eq!(
            masked_webhook("123"),
            "https://discord.com/api/webhooks/123/****"
        );
    }
}
