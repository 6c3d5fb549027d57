//! Who Stagehand is to each provider and who the streamer is there: the client ids (from
//! config) and client secrets (environment first, then the secret store), the flows each
//! provider offers, naming the account behind a token, and revoking tokens at the provider.

use stagehand_core::Secret;
use stagehand_core::audit::{AuditEntry, Outcome};

use crate::tokens::{Identity, Tokens};
use crate::{AccountError, Accounts, Failure, Flow, Provider, discord, oauth, twitch, youtube};

impl Accounts {
    /// The client secret for a provider: the environment beats the secret store.
    pub(crate) async fn client_secret(
        &self,
        provider: Provider,
    ) -> Result<Option<Secret>, AccountError> {
        let from_env = match provider {
            Provider::Twitch => self.config().twitch_client_secret.clone(),
            Provider::YouTube => self.config().google_client_secret.clone(),
            Provider::Discord => return Ok(None),
        };
        if from_env.is_some() {
            return Ok(from_env);
        }
        Ok(self.secrets().get(&client_secret_name(provider)).await?)
    }

    pub(crate) fn client_id(&self, provider: Provider) -> Result<String, AccountError> {
        let id = match provider {
            Provider::Twitch => &self.config().twitch.client_id,
            Provider::YouTube => &self.config().google.client_id,
            Provider::Discord => &self.config().discord.client_id,
        };
        let id = id.trim();
        if id.is_empty() {
            Err(AccountError::NotConfigured {
                title: provider.title(),
                var: provider.client_id_var(),
            })
        } else {
            Ok(id.to_owned())
        }
    }

    /// Stores (or clears) the client secret of a provider in the secret store. Twitch's turns
    /// on its Authorization Code flow; Google's is sent with YouTube token requests.
    pub async fn set_client_secret(
        &self,
        provider: Provider,
        secret: Option<Secret>,
    ) -> Result<(), AccountError> {
        if provider == Provider::Discord {
            return Err(AccountError::Invalid(
                "Discord links as a public client with PKCE; it needs no client secret".into(),
            ));
        }
        let name = client_secret_name(provider);
        let action = match secret {
            Some(secret) => {
                let value = secret.expose().trim();
                if value.is_empty() || value.len() > 512 {
                    return Err(AccountError::Invalid(
                        "the client secret must be 1-512 characters".into(),
                    ));
                }
                self.secrets().set(&name, Secret::new(value)).await?;
                "account.client_secret.set"
            }
            None => {
                self.secrets().delete(&name).await?;
                "account.client_secret.delete"
            }
        };
        self.audit()
            .record(AuditEntry::new("streamer", action, Outcome::Ok).target(provider.as_str()))
            .await?;
        Ok(())
    }

    /// Which flows a provider offers now.
    pub(crate) async fn flows(&self, provider: Provider) -> Result<Vec<Flow>, AccountError> {
        Ok(match provider {
            Provider::Twitch => {
                if self.client_secret(provider).await?.is_some() {
                    vec![Flow::Device, Flow::Code]
                } else {
                    vec![Flow::Device]
                }
            }
            Provider::YouTube | Provider::Discord => vec![Flow::Code],
        })
    }

    /// Who owns an access token.
    pub(super) async fn identity(
        &self,
        provider: Provider,
        access: &Secret,
    ) -> Result<Identity, Failure> {
        let http = &self.inner.http;
        match provider {
            Provider::Twitch => {
                let client_id = self
                    .client_id(provider)
                    .map_err(|e| Failure::Rejected(e.to_string()))?;
                twitch::identity(http, &self.config().twitch, &client_id, access).await
            }
            Provider::YouTube => youtube::identity(http, &self.config().google, access).await,
            Provider::Discord => discord::identity(http, &self.config().discord, access).await,
        }
    }

    /// Revokes tokens at the provider (the refresh token where the provider revokes the
    /// grant with it, Twitch's access token otherwise).
    pub(super) async fn revoke_at_provider(
        &self,
        provider: Provider,
        tokens: &Tokens,
    ) -> Result<(), Failure> {
        let http = &self.inner.http;
        let client_id = self
            .client_id(provider)
            .map_err(|e| Failure::Rejected(e.to_string()))?;
        match provider {
            Provider::Twitch => {
                twitch::revoke(http, &self.config().twitch, &client_id, &tokens.access).await
            }
            Provider::YouTube => {
                let secret = self
                    .client_secret(provider)
                    .await
                    .map_err(|e| Failure::Transient(e.to_string()))?;
                oauth::revoke(
                    http,
                    self.config().google.revoke_url.trim(),
                    &client_id,
                    secret.as_ref(),
                    tokens,
                )
                .await
            }
            Provider::Discord => {
                oauth::revoke(
                    http,
                    &discord::revoke_url(&self.config().discord),
                    &client_id,
                    None,
                    tokens,
                )
                .await
            }
        }
    }
}

fn client_secret_name(provider: Provider) -> String {
    format!("{}-client-secret", provider.as_str())
}
