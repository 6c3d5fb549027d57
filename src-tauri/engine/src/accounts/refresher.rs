//! Keeping links alive: renewal before expiry, Twitch's validation at start and hourly, and
//! what happens when a provider refuses.
//!
//! One watcher task per provider sleeps (by the engine's clock) until the link's next renewal
//! or validation is due, or until the link changes. Every renewal, the watcher's or a manual
//! one, goes through [`Engine::account_refresh`]: it holds the link's lock for the whole
//! refresh, and a caller that had to wait for the lock while another refresh ran gets that
//! refresh's outcome instead of sending a second one. A refresh the provider refuses
//! (`invalid_grant`, Twitch's "Invalid refresh token") marks the link `needs_relogin`, tells
//! the UI (`account.status` with a `notice`) and the watcher then sleeps until the streamer
//! links again: no retries. A provider that cannot be reached is retried with backoff (5 s,
//! doubling, at most 5 minutes), and the link shows `refreshing` meanwhile.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use rusqlite::params;

use super::{
    AccountError, AccountLink, Failure, LINK_COLUMNS, LinkState, LinkStatus, Provider, Tokens,
    clip, discord, expiry, oauth, row_to_link, twitch, youtube,
};
use crate::audit::{AuditEntry, Outcome};
use crate::{Engine, EngineError, EngineInner};

/// Twitch asks apps to validate tokens hourly (and at start).
const VALIDATE_EVERY_MS: i64 = 3_600_000;
const BACKOFF_START_MS: i64 = 5_000;
const BACKOFF_CAP_MS: i64 = 300_000;

/// What a validation found.
enum Validity {
    Valid,
    Invalid,
}

impl Engine {
    /// Starts one watcher per provider (once, at engine start).
    pub(crate) fn accounts_start(&self) {
        for provider in Provider::ALL {
            tokio::spawn(account_watch(Arc::downgrade(&self.inner), provider));
        }
    }

    /// Renews a link's tokens now. One refresh per link at a time: a call that arrives while
    /// another is under way waits for it and answers its outcome. A link that needs the
    /// streamer to sign in again is not sent to the provider.
    pub async fn account_refresh(&self, provider: Provider) -> Result<AccountLink, EngineError> {
        let state = self.accounts().link(provider);
        let seen = state.attempts.load(Ordering::SeqCst);
        let mut last = state.refresh.lock().await;
        if state.attempts.load(Ordering::SeqCst) != seen {
            // Another refresh (or a relink) finished while this call waited: it is this
            // call's refresh too.
            return match last.clone() {
                Some(Err(e)) => Err(e.into()),
                Some(Ok(())) | None => Ok(self
                    .account_get(provider)
                    .await?
                    .ok_or(AccountError::not_linked(provider))?),
            };
        }
        let result = self.account_refresh_locked(provider).await;
        *last = Some(match &result {
            Ok(_) => Ok(()),
            Err(EngineError::Account(e)) => Err(e.clone()),
            Err(e) => {
                tracing::error!(provider = provider.as_str(), error = %e, "a token refresh failed inside Stagehand");
                Err(AccountError::Interrupted)
            }
        });
        state.attempts.fetch_add(1, Ordering::SeqCst);
        result
    }

    async fn account_refresh_locked(&self, provider: Provider) -> Result<AccountLink, EngineError> {
        let link = self
            .account_get(provider)
            .await?
            .ok_or(AccountError::not_linked(provider))?;
        if link.status == LinkStatus::NeedsRelogin {
            return Err(AccountError::NeedsRelogin {
                title: provider.title(),
                reason: link.status_reason.unwrap_or_default(),
            }
            .into());
        }
        let Some(tokens) = self.account_tokens(provider).await? else {
            return self
                .account_relogin(provider, "its tokens are missing from the secret store")
                .await;
        };
        let Some(refresh_token) = tokens.refresh.as_ref() else {
            return self
                .account_relogin(provider, "the provider gave no refresh token")
                .await;
        };
        self.account_set_status(provider, LinkStatus::Refreshing, None)
            .await?;
        let http = &self.accounts().http;
        let client_id = self.account_client_id(provider)?;
        let secret = self.account_client_secret(provider).await?;
        // The new token's lifetime counts from when it was asked for.
        let sent = self.now_ms();
        let answer = match provider {
            Provider::Twitch => {
                twitch::refresh(
                    http,
                    &self.config().twitch,
                    &client_id,
                    secret.as_ref(),
                    refresh_token,
                )
                .await
            }
            Provider::YouTube => {
                match youtube::client(&self.config().google, &client_id, secret.as_ref()) {
                    Ok(client) => oauth::refresh(http, &client, refresh_token).await,
                    Err(e) => Err(Failure::Rejected(e)),
                }
            }
            Provider::Discord => match discord::client(&self.config().discord, &client_id) {
                Ok(client) => oauth::refresh(http, &client, refresh_token).await,
                Err(e) => Err(Failure::Rejected(e)),
            },
        };
        match answer {
            Ok(grant) => {
                let now = sent;
                let fresh = Tokens {
                    access: grant.access,
                    // Providers that rotate refresh tokens send a new one; the others keep
                    // the old one working.
                    refresh: grant.refresh.or(tokens.refresh),
                };
                self.secrets()
                    .set(&provider.secret_name(), fresh.seal()?)
                    .await?;
                let expires_ms = expiry(now, grant.expires_in);
                let scopes = grant.scopes.map(|s| s.join(" "));
                let link = self
                    .store()
                    .call(move |conn| {
                        conn.execute(
                            "UPDATE account_links SET status = 'ok', status_reason = NULL,
                                 token_ms = ?2, expires_ms = ?3, refreshed_ms = ?2,
                                 scopes = COALESCE(?4, scopes)
                             WHERE provider = ?1",
                            params![provider.as_str(), now, expires_ms, scopes],
                        )?;
                        Ok(conn.query_row(
                            &format!(
                                "SELECT {LINK_COLUMNS} FROM account_links WHERE provider = ?1"
                            ),
                            [provider.as_str()],
                            row_to_link,
                        )?)
                    })
                    .await?;
                self.accounts()
                    .link(provider)
                    .validated_ms
                    .store(now, Ordering::SeqCst);
                tracing::info!(provider = provider.as_str(), "renewed an access token");
                self.account_publish(&link, None);
                Ok(link)
            }
            Err(Failure::Rejected(detail)) => {
                tracing::warn!(provider = provider.as_str(), detail = %clip(&detail), "the provider refused the refresh token");
                self.account_relogin(
                    provider,
                    &format!(
                        "{} refused the refresh token ({})",
                        provider.title(),
                        clip(&detail)
                    ),
                )
                .await
            }
            Err(Failure::Transient(detail)) => {
                tracing::warn!(provider = provider.as_str(), detail = %clip(&detail), "could not renew a token; will retry");
                self.account_set_status(
                    provider,
                    LinkStatus::Refreshing,
                    Some(format!(
                        "{} could not be reached to renew the token; retrying",
                        provider.title()
                    )),
                )
                .await?;
                Err(AccountError::provider(provider, detail).into())
            }
        }
    }

    /// Marks a link `needs_relogin`, tells the UI and the audit log; answers the error.
    async fn account_relogin(
        &self,
        provider: Provider,
        reason: &str,
    ) -> Result<AccountLink, EngineError> {
        self.account_set_status(provider, LinkStatus::NeedsRelogin, Some(reason.to_owned()))
            .await?;
        self.audit()
            .record(
                AuditEntry::new("system", "account.refresh", Outcome::Failed)
                    .target(provider.as_str())
                    .detail(serde_json::json!({ "status": "needs_relogin", "reason": reason })),
            )
            .await?;
        Err(AccountError::NeedsRelogin {
            title: provider.title(),
            reason: reason.to_owned(),
        }
        .into())
    }

    /// Sets a link's status and publishes it (with a notice for `needs_relogin`).
    async fn account_set_status(
        &self,
        provider: Provider,
        status: LinkStatus,
        reason: Option<String>,
    ) -> Result<(), EngineError> {
        let link = self
            .store()
            .call(move |conn| {
                conn.execute(
                    "UPDATE account_links SET status = ?2, status_reason = ?3 WHERE provider = ?1",
                    params![provider.as_str(), status.as_str(), reason],
                )?;
                Ok(conn
                    .query_row(
                        &format!("SELECT {LINK_COLUMNS} FROM account_links WHERE provider = ?1"),
                        [provider.as_str()],
                        row_to_link,
                    )
                    .ok())
            })
            .await?;
        if let Some(link) = link {
            let notice = (status == LinkStatus::NeedsRelogin).then(|| {
                format!(
                    "Your {} account {} needs you to sign in again: {}",
                    provider.title(),
                    link.account_name,
                    link.status_reason
                        .as_deref()
                        .unwrap_or("the link stopped working")
                )
            });
            self.account_publish(&link, notice.as_deref());
        }
        Ok(())
    }

    /// Asks Twitch whether the token still works. A token Twitch calls invalid is renewed at
    /// once (which marks the link `needs_relogin` if that is refused too).
    async fn account_validate(&self, provider: Provider) -> Result<Validity, Failure> {
        let tokens = self
            .account_tokens(provider)
            .await
            .map_err(|e| Failure::Transient(e.to_string()))?
            .ok_or_else(|| Failure::Rejected("no tokens stored".into()))?;
        // Valid as of when Twitch was asked.
        let now = self.now_ms();
        let answer =
            twitch::validate(&self.accounts().http, &self.config().twitch, &tokens.access).await?;
        let Some(validation) = answer else {
            tracing::info!(
                provider = provider.as_str(),
                "Twitch says the access token is no longer valid"
            );
            return Ok(Validity::Invalid);
        };
        self.accounts()
            .link(provider)
            .validated_ms
            .store(now, Ordering::SeqCst);
        // Twitch says how long the token has left; keep the renewal schedule honest.
        if let Some(expires_ms) = expiry(now, validation.expires_in) {
            let _ = self
                .store()
                .call(move |conn| {
                    conn.execute(
                        "UPDATE account_links SET expires_ms = MIN(COALESCE(expires_ms, ?2), ?2)
                         WHERE provider = ?1",
                        params![provider.as_str(), expires_ms],
                    )?;
                    Ok(())
                })
                .await;
        }
        Ok(Validity::Valid)
    }

    /// One step of a provider's watcher: does what is due, or says how long to wait.
    async fn account_watch_step(
        &self,
        provider: Provider,
        state: &LinkState,
        watch: &mut Watch,
    ) -> Wait {
        let link = match self.account_get(provider).await {
            Ok(link) => link,
            Err(e) => {
                tracing::warn!(provider = provider.as_str(), error = %e, "could not read an account link");
                return Wait::Until(self.now_ms() + watch.back_off());
            }
        };
        let Some(link) = link.filter(|l| l.status != LinkStatus::NeedsRelogin) else {
            // Nothing to keep alive (no link, or it waits for the streamer).
            return Wait::Changed;
        };
        let now = self.now_ms();
        let lead_ms = i64::try_from(self.config().accounts.refresh_lead_seconds)
            .unwrap_or(300)
            .saturating_mul(1000);
        let refresh_at = watch
            .retry_refresh_at
            .or_else(|| link.refresh_due_ms(lead_ms))
            .unwrap_or(i64::MAX);
        let validate_at = if provider == Provider::Twitch {
            watch
                .retry_validate_at
                .unwrap_or_else(|| state.validated_ms.load(Ordering::SeqCst) + VALIDATE_EVERY_MS)
        } else {
            i64::MAX
        };
        let next = refresh_at.min(validate_at);
        if next > now {
            return Wait::Until(next);
        }
        let mut refresh_now = refresh_at <= now;
        if !refresh_now {
            match self.account_validate(provider).await {
                Ok(Validity::Valid) => {
                    watch.retry_validate_at = None;
                    watch.backoff = BACKOFF_START_MS;
                }
                Ok(Validity::Invalid) => {
                    watch.retry_validate_at = None;
                    refresh_now = true;
                }
                Err(failure) => {
                    tracing::info!(provider = provider.as_str(), detail = %clip(failure.detail()), "could not validate a token; will retry");
                    watch.retry_validate_at = Some(now + watch.back_off());
                }
            }
        }
        if refresh_now {
            match self.account_refresh(provider).await {
                Ok(_) => {
                    watch.retry_refresh_at = None;
                    watch.backoff = BACKOFF_START_MS;
                }
                Err(EngineError::Account(
                    AccountError::NeedsRelogin { .. } | AccountError::NotLinked { .. },
                )) => watch.retry_refresh_at = None,
                Err(e) => {
                    tracing::info!(provider = provider.as_str(), error = %e, "token renewal failed; will retry");
                    watch.retry_refresh_at = Some(self.now_ms() + watch.back_off());
                }
            }
        }
        Wait::Now
    }
}

/// What a watcher remembers between steps.
struct Watch {
    backoff: i64,
    retry_refresh_at: Option<i64>,
    retry_validate_at: Option<i64>,
}

impl Watch {
    fn new() -> Self {
        Self {
            backoff: BACKOFF_START_MS,
            retry_refresh_at: None,
            retry_validate_at: None,
        }
    }

    /// The current backoff, doubled for next time.
    fn back_off(&mut self) -> i64 {
        let now = self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF_CAP_MS);
        now
    }
}

/// What a watcher does after a step.
enum Wait {
    /// Step again at once (something was just done).
    Now,
    /// Until this time, or until the link changes.
    Until(i64),
    /// Until the link changes.
    Changed,
}

/// The watcher of one provider's link. It holds the engine only while it works, so an engine
/// that is dropped (a restart in tests, a shutdown) takes its watchers with it.
async fn account_watch(engine: Weak<EngineInner>, provider: Provider) {
    let Some((state, clock)) = engine.upgrade().map(|inner| {
        let engine = Engine { inner };
        (
            engine.accounts().link(provider),
            Arc::clone(&engine.inner.core.clock),
        )
    }) else {
        return;
    };
    let mut watch = Watch::new();
    loop {
        let changed = state.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let wait = {
            let Some(inner) = engine.upgrade() else {
                return;
            };
            Engine { inner }
                .account_watch_step(provider, &state, &mut watch)
                .await
        };
        let woke_by_change = match wait {
            Wait::Now => false,
            Wait::Until(until) => tokio::select! {
                () = clock.sleep_until(until) => false,
                () = &mut changed => true,
            },
            Wait::Changed => {
                changed.await;
                true
            }
        };
        if woke_by_change {
            // Relinked or unlinked: start over from the row.
            watch = Watch::new();
        }
    }
}
