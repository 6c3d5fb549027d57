//! YouTube, through a Google account: the installed-app flow of "OAuth 2.0 for Mobile & Desktop
//! Apps" — the system browser, a loopback redirect to this server (RFC 8252), PKCE S256 and a
//! `state` — then the YouTube Data API for the channel's id and title.
//!
//! Google gives desktop clients a "client secret" it does not treat as confidential; when the
//! streamer's client has one it is sent in the request body, as Google's examples do.

use oauth2::basic::BasicClient;
use oauth2::{AuthType, AuthUrl, ClientId, ClientSecret, TokenUrl};
use serde::Deserialize;

use crate::oauth::Client;
use stagehand_core::Secret;
use stagehand_core::config::GoogleConfig;

use crate::{Failure, Identity, http_get_json};

/// The oauth2 client for the configured endpoints.
pub(crate) fn client(
    config: &GoogleConfig,
    client_id: &str,
    secret: Option<&Secret>,
) -> Result<Client, String> {
    let mut client = BasicClient::new(ClientId::new(client_id.to_owned()))
        .set_auth_uri(
            AuthUrl::new(config.auth_url.trim().to_owned())
                .map_err(|e| format!("google.auth_url: {e}"))?,
        )
        .set_token_uri(
            TokenUrl::new(config.token_url.trim().to_owned())
                .map_err(|e| format!("google.token_url: {e}"))?,
        )
        .set_auth_type(AuthType::RequestBody);
    if let Some(secret) = secret {
        client = client.set_client_secret(ClientSecret::new(secret.expose().to_owned()));
    }
    Ok(client)
}

#[derive(Deserialize)]
struct Channels {
    #[serde(default)]
    items: Vec<Channel>,
}

#[derive(Deserialize)]
struct Channel {
    id: String,
    snippet: Snippet,
}

#[derive(Deserialize)]
struct Snippet {
    title: String,
}

/// The channel the token belongs to (`channels?part=snippet&mine=true`).
pub(crate) async fn identity(
    http: &reqwest::Client,
    config: &GoogleConfig,
    access: &Secret,
) -> Result<Identity, Failure> {
    let url = format!(
        "{}/channels?part=snippet&mine=true",
        config.youtube_api_url.trim().trim_end_matches('/')
    );
    let channels: Channels = http_get_json(http.get(url).bearer_auth(access.expose())).await?;
    let channel = channels.items.into_iter().next().ok_or_else(|| {
        Failure::Rejected(
            "this Google account has no YouTube channel; create one, then link again".into(),
        )
    })?;
    Ok(Identity {
        id: channel.id,
        name: channel.snippet.title,
    })
}
