//! Linking and unlinking: starting a flow, completing a code flow at the callback, storing a
//! new link, and revoking one. Each is audited; nothing is stored unless the whole flow worked.

use std::sync::atomic::Ordering;

use rusqlite::params;

use crate::{
    AccountError, AccountLink, CODE_FLOW_TTL_MS, CallbackParams, Failure, Flow, FlowStart, Grant,
    LINK_COLUMNS, LinkProgress, MAX_PENDING_CODE_FLOWS, PendingCode, Provider, Tokens, Unlinked,
    clip, discord, expiry, oauth, row_to_link, secret_name, twitch, youtube,
};
use stagehand_core::Secret;
use stagehand_core::audit::{AuditEntry, Outcome};
use stagehand_core::random::{hash_token, token};

use crate::detail::{FailedDetail, LinkedDetail, StartedDetail, UnlinkedDetail};
use crate::{AccountStatusEvent, Accounts, UnlinkedStatus, audit_detail};

impl Accounts {
    /// Starts linking `provider`: the device flow's code to show, or the URL to open in the
    /// system browser. `flow` picks one where a provider offers two (Twitch: `device`, the
    /// default, or `code` with a client secret). `local_url` is this server's
    /// `http://127.0.0.1:{port}`, the base of the callback. Audited.
    pub async fn start(
        &self,
        provider: Provider,
        flow: Option<Flow>,
        local_url: &str,
        client: Option<String>,
    ) -> Result<FlowStart, AccountError> {
        let result = self.start_inner(provider, flow, local_url).await;
        let (outcome, detail) = match &result {
            Ok(started) => (
                Outcome::Ok,
                audit_detail(&StartedDetail {
                    flow: match started {
                        FlowStart::Device { .. } => Flow::Device,
                        FlowStart::Code { .. } => Flow::Code,
                    },
                }),
            ),
            Err(e) => (
                Outcome::Failed,
                audit_detail(&FailedDetail {
                    flow: None,
                    error: e.to_string(),
                }),
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

    pub(super) async fn start_inner(
        &self,
        provider: Provider,
        flow: Option<Flow>,
        local_url: &str,
    ) -> Result<FlowStart, AccountError> {
        let client_id = self.client_id(provider)?;
        let offered = self.flows(provider).await?;
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
            return Err(AccountError::FlowUnavailable(why));
        }
        match flow {
            Flow::Device => self.device_start(&client_id).await,
            Flow::Code => self.code_start(provider, &client_id, local_url).await,
        }
    }

    /// Builds the authorization URL of a code flow and remembers its state and verifier.
    pub(super) async fn code_start(
        &self,
        provider: Provider,
        client_id: &str,
        local_url: &str,
    ) -> Result<FlowStart, AccountError> {
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
                let secret = self.client_secret(provider).await?;
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
            let mut pending = self.inner.pending.lock().unwrap_or_else(|p| p.into_inner());
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
    pub async fn callback(
        &self,
        provider: Provider,
        params: CallbackParams,
        client: Option<String>,
    ) -> Result<AccountLink, AccountError> {
        let result = self.callback_inner(provider, params).await;
        match &result {
            Ok(link) => self.publish_link(
                provider,
                Flow::Code,
                Ok(LinkProgress::Linked {
                    account: link.clone(),
                }),
            ),
            // Anyone can send a forged state; only sign-ins Stagehand started are announced.
            Err(AccountError::StateInvalid) => {}
            Err(e) => self.publish_link(provider, Flow::Code, Err(&e.shared("a sign-in"))),
        }
        let (actor, outcome, detail) = match &result {
            Ok(link) => (
                "streamer",
                Outcome::Ok,
                audit_detail(&LinkedDetail {
                    flow: None,
                    account_id: &link.account_id,
                    account_name: Some(&link.account_name),
                }),
            ),
            Err(AccountError::StateInvalid) => (
                "anonymous",
                Outcome::Denied,
                audit_detail(&FailedDetail {
                    flow: None,
                    error: "state_invalid".to_owned(),
                }),
            ),
            Err(e) => (
                "streamer",
                Outcome::Failed,
                audit_detail(&FailedDetail {
                    flow: None,
                    error: e.to_string(),
                }),
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

    pub(super) async fn callback_inner(
        &self,
        provider: Provider,
        params: CallbackParams,
    ) -> Result<AccountLink, AccountError> {
        let now = self.now_ms();
        // Removed whatever follows: a state is good for one callback, right or wrong.
        let pending = params.state.as_deref().and_then(|state| {
            self.inner
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&hash_token(state))
        });
        let Some(pending) = pending.filter(|p| p.provider == provider && p.expires_ms > now) else {
            return Err(AccountError::StateInvalid);
        };
        if let Some(error) = params.error {
            tracing::info!(provider = provider.as_str(), error = %clip(&error), "sign-in declined or failed at the provider");
            return Err(AccountError::AccessDenied {
                title: provider.title(),
            });
        }
        let Some(code) = params.code.filter(|c| !c.is_empty() && c.len() <= 2048) else {
            return Err(AccountError::CodeRejected {
                title: provider.title(),
            });
        };
        let code = Secret::new(code);
        let client_id = self.client_id(provider)?;
        let secret = self.client_secret(provider).await?;
        let http = &self.inner.http;
        let grant = match provider {
            Provider::Twitch => {
                let Some(secret) = secret else {
                    return Err(AccountError::FlowUnavailable(
                        "the Twitch client secret was removed during sign-in".into(),
                    ));
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
        self.link_finish(provider, Flow::Code, grant).await
    }

    /// Names the account behind fresh tokens and stores the link (tokens first, then the row),
    /// replacing any previous link of that provider.
    pub(super) async fn link_finish(
        &self,
        provider: Provider,
        flow: Flow,
        grant: Grant,
    ) -> Result<AccountLink, AccountError> {
        let identity = match self.identity(provider, &grant.access).await {
            Ok(identity) => identity,
            Err(failure) => {
                // The tokens are of no use without knowing whose they are; do not leave them
                // valid at the provider.
                let tokens = Tokens {
                    access: grant.access,
                    refresh: grant.refresh,
                };
                let _ = self.revoke_at_provider(provider, &tokens).await;
                return Err(AccountError::provider(provider, failure.detail()));
            }
        };
        let scopes = grant.scopes.clone().unwrap_or_else(|| match provider {
            Provider::Twitch => self.config().twitch.scopes.clone(),
            Provider::YouTube => self.config().google.scopes.clone(),
            Provider::Discord => self.config().discord.scopes.clone(),
        });
        let state = self.link(provider);
        let _guard = state.refresh.lock().await;
        let now = self.now_ms();
        let tokens = Tokens {
            access: grant.access,
            refresh: grant.refresh,
        };
        self.secrets()
            .set(&secret_name(provider), tokens.seal()?)
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
        self.publish_status(&link, None);
        Ok(link)
    }

    /// Unlinks: revokes the tokens at the provider, then deletes them and the link. A provider
    /// that cannot be reached does not keep the link; the answer says so. Audited.
    pub async fn unlink(
        &self,
        provider: Provider,
        client: Option<String>,
    ) -> Result<Unlinked, AccountError> {
        let state = self.link(provider);
        let _guard = state.refresh.lock().await;
        let link = self
            .get(provider)
            .await?
            .ok_or(AccountError::not_linked(provider))?;
        let (revoked, revoke_error) = match self.tokens(provider).await? {
            Some(tokens) => match self.revoke_at_provider(provider, &tokens).await {
                Ok(()) => (true, None),
                Err(failure) => {
                    tracing::warn!(provider = provider.as_str(), detail = %clip(failure.detail()), "could not revoke tokens while unlinking");
                    (false, Some(clip(failure.detail())))
                }
            },
            None => (false, Some("no tokens were stored".to_owned())),
        };
        self.secrets().delete(&secret_name(provider)).await?;
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
            serde_json::to_value(AccountStatusEvent::Unlinked {
                provider,
                status: UnlinkedStatus::Unlinked,
            })
            .unwrap_or_default(),
        );
        self.audit()
            .record(
                AuditEntry::new("streamer", "account.unlink", Outcome::Ok)
                    .target(provider.as_str())
                    .client(client)
                    .detail(audit_detail(&UnlinkedDetail {
                        account_id: &link.account_id,
                        revoked,
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
