//! Linking and unlinking: starting a flow, completing a code flow at the callback, storing a
//! new link, and revoking one. Each is audited; nothing is stored unless the whole flow worked.

use std::sync::atomic::Ordering;

use rusqlite::params;

use super::{
    AccountError, AccountLink, CODE_FLOW_TTL_MS, CallbackParams, Failure, Flow, FlowStart, Grant,
    Identity, LINK_COLUMNS, LinkProgress, MAX_PENDING_CODE_FLOWS, PendingCode, Provider, Tokens,
    Unlinked, clip, discord, expiry, oauth, row_to_link, twitch, youtube,
};
use crate::audit::{AuditEntry, Outcome};
use crate::random::{hash_token, token};
use crate::{Engine, EngineError, Secret};

impl Engine {
    /// Starts linking `provider`: the device flow's code to show, or the URL to open in the
    /// system browser. `flow` picks one where a provider offers two (Twitch: `device`, the
    /// default, or `code` with a client secret). `local_url` is this server's
    /// `http://127.0.0.1:{port}`, the base of the callback. Audited.
    pub async fn account_start(
        &self,
        provider: Provider,
        flow: Option<Flow>,
        local_url: &str,
        client: Option<String>,
    ) -> Result<FlowStart, EngineError> {
        let result = self.account_start_inner(provider, flow, local_url).await;
        let (outcome, detail) = match &result {
            Ok(started) => (
                Outcome::Ok,
                serde_json::json!({ "flow": match started {
                    FlowStart::Device { .. } => "device",
                    FlowStart::Code { .. } => "code",
                }}),
            ),
            Err(e) => (
                Outcome::Failed,
                serde_json::json!({ "error": e.to_string() }),
            ),
        };
        self.audit()
            .record(
                AuditEntry::new("streamer", "account.start", outcome)
                    .target(provider.as_str())
                    .client(client)
                    .detail(detail),
            )
            .await?;
        result
    }

    pub(super) async fn account_start_inner(
        &self,
        provider: Provider,
        flow: Option<Flow>,
        local_url: &str,
    ) -> Result<FlowStart, EngineError> {
        let client_id = self.account_client_id(provider)?;
        let offered = self.account_flows(provider).await?;
        let default = offered.first().copied().unwrap_or(Flow::Code);
        let flow = flow.unwrap_or(default);
        if !offered.contains(&flow) {
            let why = match (provider, flow) {
                (Provider::Twitch, Flow::Code) => {
                    "Twitch's Authorization Code flow needs your application's client secret \
                     (STAGEHAND_TWITCH_CLIENT_SECRET or PUT /api/accounts/twitch/client-secret); \
                     the device flow needs none"
                        .to_owned()
                }
                _ => format!(
                    "{} links with the {} flow",
                    provider.title(),
                    default.as_str()
                ),
            };
            return Err(AccountError::FlowUnavailable(why).into());
        }
        match flow {
            Flow::Device => self.twitch_device_start(&client_id).await,
            Flow::Code => {
                self.account_code_start(provider, &client_id, local_url)
                    .await
            }
        }
    }

    /// Builds the authorization URL of a code flow and remembers its state and verifier.
    pub(super) async fn account_code_start(
        &self,
        provider: Provider,
        client_id: &str,
        local_url: &str,
    ) -> Result<FlowStart, EngineError> {
        let state = Secret::new(token(32)?);
        let base = match provider {
            // Twitch accepts plain-HTTP redirects only to `localhost`.
            Provider::Twitch => local_url.replacen("://127.0.0.1:", "://localhost:", 1),
            Provider::YouTube | Provider::Discord => local_url.to_owned(),
        };
        let redirect_uri = format!("{base}/auth/{}/callback", provider.as_str());
        let (authorization_url, verifier) = match provider {
            Provider::Twitch => (
                twitch::authorize_url(&self.config().twitch, client_id, &redirect_uri, &state)
                    .map_err(|e| AccountError::provider(provider, e))?,
                None,
            ),
            Provider::YouTube => {
                let secret = self.account_client_secret(provider).await?;
                let client = youtube::client(&self.config().google, client_id, secret.as_ref())
                    .map_err(|e| AccountError::provider(provider, e))?;
                let (url, verifier) = oauth::authorize_url(
                    &client,
                    &self.config().google.scopes,
                    &redirect_uri,
                    &state,
                    // Google returns a refresh token to installed apps; asking for offline
                    // access makes that explicit.
                    &[("access_type", "offline")],
                )
                .map_err(|e| AccountError::provider(provider, e))?;
                (url, Some(verifier))
            }
            Provider::Discord => {
                let client = discord::client(&self.config().discord, client_id)
                    .map_err(|e| AccountError::provider(provider, e))?;
                let (url, verifier) = oauth::authorize_url(
                    &client,
                    &self.config().discord.scopes,
                    &redirect_uri,
                    &state,
                    &[],
                )
                .map_err(|e| AccountError::provider(provider, e))?;
                (url, Some(verifier))
            }
        };
        let now = self.now_ms();
        {
            let mut pending = self
                .accounts()
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            pending.retain(|_, p| p.expires_ms > now);
            if pending.len() >= MAX_PENDING_CODE_FLOWS {
                // The oldest sign-in is the one least likely to come back.
                if let Some(oldest) = pending
                    .iter()
                    .min_by_key(|(_, p)| p.expires_ms)
                    .map(|(k, _)| k.clone())
                {
                    pending.remove(&oldest);
                }
            }
            pending.insert(
                hash_token(state.expose()),
                PendingCode {
                    provider,
                    verifier,
                    redirect_uri,
                    expires_ms: now + CODE_FLOW_TTL_MS,
                },
            );
        }
        Ok(FlowStart::Code {
            provider,
            authorization_url,
            expires_in: u64::try_from(CODE_FLOW_TTL_MS / 1000).unwrap_or(600),
        })
    }

    /// Completes a code flow: checks the single-use `state`, exchanges the code (with the PKCE
    /// verifier), names the account and stores the link. Reached by the system browser, so
    /// the `state` is its only credential. Audited whatever happens; nothing is stored unless
    /// everything worked.
    pub async fn account_callback(
        &self,
        provider: Provider,
        params: CallbackParams,
        client: Option<String>,
    ) -> Result<AccountLink, EngineError> {
        let result = self.account_callback_inner(provider, params).await;
        match &result {
            Ok(link) => self.account_link_publish(
                provider,
                Flow::Code,
                Ok(LinkProgress::Linked {
                    account: link.clone(),
                }),
            ),
            // Anyone can send a forged state; only sign-ins Stagehand started are announced.
            Err(EngineError::Account(AccountError::StateInvalid)) => {}
            Err(EngineError::Account(e)) => self.account_link_publish(provider, Flow::Code, Err(e)),
            Err(_) => {
                self.account_link_publish(provider, Flow::Code, Err(&AccountError::Interrupted))
            }
        }
        let (actor, outcome, detail) = match &result {
            Ok(link) => (
                "streamer",
                Outcome::Ok,
                serde_json::json!({ "accountId": link.account_id, "accountName": link.account_name }),
            ),
            Err(EngineError::Account(AccountError::StateInvalid)) => (
                "anonymous",
                Outcome::Denied,
                serde_json::json!({ "error": "state_invalid" }),
            ),
            Err(e) => (
                "streamer",
                Outcome::Failed,
                serde_json::json!({ "error": e.to_string() }),
            ),
        };
        self.audit()
            .record(
                AuditEntry::new(actor, "account.callback", outcome)
                    .target(provider.as_str())
                    .client(client)
                    .detail(detail),
            )
            .await?;
        result
    }

    pub(super) async fn account_callback_inner(
        &self,
        provider: Provider,
        params: CallbackParams,
    ) -> Result<AccountLink, EngineError> {
        let now = self.now_ms();
        // Removed whatever follows: a state is good for one callback, right or wrong.
        let pending = params.state.as_deref().and_then(|state| {
            self.accounts()
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&hash_token(state))
        });
        let Some(pending) = pending.filter(|p| p.provider == provider && p.expires_ms > now) else {
            return Err(AccountError::StateInvalid.into());
        };
        if let Some(error) = params.error {
            tracing::info!(provider = provider.as_str(), error = %clip(&error), "sign-in declined or failed at the provider");
            return Err(AccountError::AccessDenied {
                title: provider.title(),
            }
            .into());
        }
        let Some(code) = params.code.filter(|c| !c.is_empty() && c.len() <= 2048) else {
            return Err(AccountError::CodeRejected {
                title: provider.title(),
            }
            .into());
        };
        let code = Secret::new(code);
        let client_id = self.account_client_id(provider)?;
        let secret = self.account_client_secret(provider).await?;
        let http = &self.accounts().http;
        let grant = match provider {
            Provider::Twitch => {
                let Some(secret) = secret else {
                    return Err(AccountError::FlowUnavailable(
                        "the Twitch client secret was removed during sign-in".into(),
                    )
                    .into());
                };
                twitch::exchange_code(
                    http,
                    &self.config().twitch,
                    &client_id,
                    &secret,
                    &code,
                    &pending.redirect_uri,
                )
                .await
            }
            Provider::YouTube => {
                let client = youtube::client(&self.config().google, &client_id, secret.as_ref())
                    .map_err(|e| AccountError::provider(provider, e))?;
                oauth::exchange_code(
                    http,
                    &client,
                    &code,
                    pending.verifier.as_ref(),
                    &pending.redirect_uri,
                )
                .await
            }
            Provider::Discord => {
                let client = discord::client(&self.config().discord, &client_id)
                    .map_err(|e| AccountError::provider(provider, e))?;
                oauth::exchange_code(
                    http,
                    &client,
                    &code,
                    pending.verifier.as_ref(),
                    &pending.redirect_uri,
                )
                .await
            }
        };
        let grant = grant.map_err(|failure| match failure {
            Failure::Rejected(detail) => {
                tracing::info!(provider = provider.as_str(), detail = %clip(&detail), "the provider refused an authorization code");
                AccountError::CodeRejected {
                    title: provider.title(),
                }
            }
            Failure::Transient(detail) => AccountError::provider(provider, detail),
        })?;
        self.account_link_finish(provider, Flow::Code, grant).await
    }

    /// Names the account behind fresh tokens and stores the link (tokens first, then the row),
    /// replacing any previous link of that provider.
    pub(super) async fn account_link_finish(
        &self,
        provider: Provider,
        flow: Flow,
        grant: Grant,
    ) -> Result<AccountLink, EngineError> {
        let identity = match self.account_identity(provider, &grant.access).await {
            Ok(identity) => identity,
            Err(failure) => {
                // The tokens are of no use without knowing whose they are; do not leave them
                // valid at the provider.
                let tokens = Tokens {
                    access: grant.access,
                    refresh: grant.refresh,
                };
                let _ = self.account_revoke_at_provider(provider, &tokens).await;
                return Err(AccountError::provider(provider, failure.detail()).into());
            }
        };
        let scopes = grant.scopes.clone().unwrap_or_else(|| match provider {
            Provider::Twitch => self.config().twitch.scopes.clone(),
            Provider::YouTube => self.config().google.scopes.clone(),
            Provider::Discord => self.config().discord.scopes.clone(),
        });
        let state = self.accounts().link(provider);
        let _guard = state.refresh.lock().await;
        let now = self.now_ms();
        let tokens = Tokens {
            access: grant.access,
            refresh: grant.refresh,
        };
        self.secrets()
            .set(&provider.secret_name(), tokens.seal()?)
            .await?;
        let expires_ms = expiry(now, grant.expires_in);
        let (id, name, scope_text) = (identity.id, identity.name, scopes.join(" "));
        let link = self
            .store()
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO account_links (provider, account_id, account_name, scopes, flow,
                         status, status_reason, token_ms, expires_ms, linked_ms, refreshed_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, 'ok', NULL, ?6, ?7, ?6, NULL)
                     ON CONFLICT (provider) DO UPDATE SET
                         account_id = excluded.account_id, account_name = excluded.account_name,
                         scopes = excluded.scopes, flow = excluded.flow, status = 'ok',
                         status_reason = NULL, token_ms = excluded.token_ms,
                         expires_ms = excluded.expires_ms, linked_ms = excluded.linked_ms,
                         refreshed_ms = NULL",
                    params![
                        provider.as_str(),
                        id,
                        name,
                        scope_text,
                        flow.as_str(),
                        now,
                        expires_ms
                    ],
                )?;
                Ok(conn.query_row(
                    &format!("SELECT {LINK_COLUMNS} FROM account_links WHERE provider = ?1"),
                    [provider.as_str()],
                    row_to_link,
                )?)
            })
            .await?;
        // The identity lookup (Twitch: /oauth2/validate) just proved the token valid.
        state.validated_ms.store(now, Ordering::SeqCst);
        state.touch();
        tracing::info!(provider = provider.as_str(), account = %link.account_name, "linked an account");
        self.account_publish(&link, None);
        Ok(link)
    }

    /// Who owns an access token.
    pub(super) async fn account_identity(
        &self,
        provider: Provider,
        access: &Secret,
    ) -> Result<Identity, Failure> {
        let http = &self.accounts().http;
        match provider {
            Provider::Twitch => {
                let client_id = self
                    .account_client_id(provider)
                    .map_err(|e| Failure::Rejected(e.to_string()))?;
                twitch::identity(http, &self.config().twitch, &client_id, access).await
            }
            Provider::YouTube => youtube::identity(http, &self.config().google, access).await,
            Provider::Discord => discord::identity(http, &self.config().discord, access).await,
        }
    }

    /// Revokes tokens at the provider (the refresh token where the provider revokes the
    /// grant with it, Twitch's access token otherwise).
    pub(super) async fn account_revoke_at_provider(
        &self,
        provider: Provider,
        tokens: &Tokens,
    ) -> Result<(), Failure> {
        let http = &self.accounts().http;
        let client_id = self
            .account_client_id(provider)
            .map_err(|e| Failure::Rejected(e.to_string()))?;
        match provider {
            Provider::Twitch => {
                twitch::revoke(http, &self.config().twitch, &client_id, &tokens.access).await
            }
            Provider::YouTube => {
                let secret = self
                    .account_client_secret(provider)
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

    /// Unlinks: revokes the tokens at the provider, then deletes them and the link. A provider
    /// that cannot be reached does not keep the link; the answer says so. Audited.
    pub async fn account_unlink(
        &self,
        provider: Provider,
        client: Option<String>,
    ) -> Result<Unlinked, EngineError> {
        let state = self.accounts().link(provider);
        let _guard = state.refresh.lock().await;
        let link = self
            .account_get(provider)
            .await?
            .ok_or(AccountError::not_linked(provider))?;
        let (revoked, revoke_error) = match self.account_tokens(provider).await? {
            Some(tokens) => match self.account_revoke_at_provider(provider, &tokens).await {
                Ok(()) => (true, None),
                Err(failure) => {
                    tracing::warn!(provider = provider.as_str(), detail = %clip(failure.detail()), "could not revoke tokens while unlinking");
                    (false, Some(clip(failure.detail())))
                }
            },
            None => (false, Some("no tokens were stored".to_owned())),
        };
        self.secrets().delete(&provider.secret_name()).await?;
        self.store()
            .call(move |conn| {
                conn.execute(
                    "DELETE FROM account_links WHERE provider = ?1",
                    [provider.as_str()],
                )?;
                Ok(())
            })
            .await?;
        state.validated_ms.store(0, Ordering::SeqCst);
        state.touch();
        self.events().publish(
            "account.status",
            serde_json::json!({ "provider": provider, "status": "unlinked" }),
        );
        self.audit()
            .record(
                AuditEntry::new("streamer", "account.unlink", Outcome::Ok)
                    .target(provider.as_str())
                    .client(client)
                    .detail(serde_json::json!({
                        "accountId": link.account_id,
                        "revoked": revoked,
                    })),
            )
            .await?;
        Ok(Unlinked {
            provider,
            revoked,
            revoke_error,
        })
    }
}
