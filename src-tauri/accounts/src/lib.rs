//! Platform accounts: Twitch, YouTube and Discord linked once and kept alive, with tokens only
//! in the secret store.
//!
//! Stagehand is a public client: it runs on the streamer's machine and cannot keep a client
//! secret, so each provider gets the flow meant for that:
//!
//! * **Twitch**: the Device Code Grant ([`Accounts::start`] answers the code to show;
//!   a background task polls the token endpoint at Twitch's interval, through
//!   `authorization_pending` and `slow_down`). With a streamer's own confidential app (a client
//!   secret configured) the Authorization Code flow is offered too.
//! * **YouTube** (Google) and **Discord**: Authorization Code with PKCE (S256) and a `state`,
//!   redirected to this server's loopback address (RFC 8252), which
//!   [`Accounts::callback`] completes. The `state` is the credential of the callback:
//!   256 random bits, single use, ten minutes.
//!
//! Tokens go into the secret store (`account-{provider}`, one JSON value holding both tokens,
//! so a write replaces them together); `account_links` in SQLite holds what the streamer sees:
//! account id and name, scopes, expiry and status (`ok`, `refreshing`, `needs_relogin`). The
//! refresher (`refresher.rs`) renews tokens before they expire and validates Twitch tokens at
//! start and hourly; every refresh of one link goes through [`Accounts::refresh`], which
//! runs one at a time per link and hands concurrent callers the outcome of the one in flight.
//! A refused refresh marks the link `needs_relogin` and nothing retries it until the streamer
//! links again.
//!
//! Google and Discord speak standard OAuth 2.0, so the `oauth2` crate builds their URLs and
//! token requests (`oauth.rs`). Twitch does not: its device flow answers
//! `{"status":400,"message":"authorization_pending"}` rather than RFC 8628's `error` field,
//! and its token responses carry `scope` as a JSON array rather than a space-separated string.
//! `oauth2` can parse neither (its device polling gives up, its token parser fails), so
//! `twitch.rs` makes those requests with reqwest directly.
//!
//! This is its own crate because it owns the heavy outbound-HTTP dependencies (`oauth2`,
//! `reqwest` with rustls): a change elsewhere in the engine does not recompile them, and
//! nothing else reaches a provider. [`Accounts`] is the service the engine holds; it is built
//! from the core's config, store, secrets, clock, bus and audit log, and reaches no other
//! capability. Files by responsibility: `tokens.rs` (grants, sealing, renewal schedule),
//! `providers.rs` (client ids and secrets, identity, revocation), `link.rs` and `twitch.rs`
//! (the flows), `publish.rs` (the events), `refresher.rs`, `destinations.rs`, `discord.rs`.

mod destinations;
mod detail;
mod discord;
mod error;
mod http;
mod link;
mod oauth;
mod providers;
mod publish;
mod refresher;
mod state;
mod tokens;
mod twitch;
mod youtube;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use rusqlite::OptionalExtension;
use serde::Deserialize;
use stagehand_core::audit::Audit;
use stagehand_core::clock::{Clock, rfc3339};
use stagehand_core::config::Config;
use stagehand_core::events::EventBus;
use stagehand_core::secrets::Secrets;
use stagehand_core::store::{Store, StoreError};
use stagehand_core::{Core, Secret};
pub use stagehand_protocol::accounts::{
    AccountLink, AccountStatusEvent, AccountsOverview, Destination, DiscordWebhook, Flow,
    FlowStart, LinkEvent, LinkEventState, LinkProgress, LinkStatus, Provider, ProviderInfo,
    Unlinked, UnlinkedStatus,
};

pub(crate) use detail::audit_detail;
pub use error::AccountError;
pub(crate) use error::Failure;
pub(crate) use http::{describe, error_message, http_get_json, http_send};
pub use tokens::refresh_due_ms;

pub(crate) use state::{DeviceFlow, DeviceState, LinkState, PendingCode};
pub(crate) use tokens::{Grant, Identity, Tokens, expiry, secret_name};

/// How long a started authorization-code flow waits for its callback.
const CODE_FLOW_TTL_MS: i64 = 10 * 60 * 1000;
/// Most authorization-code flows waiting at once (each start adds one).
const MAX_PENDING_CODE_FLOWS: usize = 32;
/// Timeouts of every request to a provider.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// What the provider's callback carries (the query of `/auth/{provider}/callback`). `Debug`
/// shows neither the code nor the state.
#[derive(Clone, Default, Deserialize)]
pub struct CallbackParams {
    /// The `state` Stagehand sent.
    pub state: Option<String>,
    /// The authorization code.
    pub code: Option<String>,
    /// The provider's error (`access_denied` when the streamer declined).
    pub error: Option<String>,
}

impl std::fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackParams")
            .field("state", &self.state.as_ref().map(|_| "[redacted]"))
            .field("code", &self.code.as_ref().map(|_| "[redacted]"))
            .field("error", &self.error)
            .finish()
    }
}

/// The accounts capability: linking, tokens, the refresher, destinations and the Discord
/// webhook. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Accounts {
    inner: Arc<Inner>,
}

/// What the handles share.
struct Inner {
    config: Arc<Config>,
    store: Store,
    secrets: Secrets,
    clock: Arc<dyn Clock>,
    events: EventBus,
    audit: Audit,
    http: reqwest::Client,
    links: [Arc<LinkState>; 3],
    pending: std::sync::Mutex<HashMap<String, PendingCode>>,
    device: std::sync::Mutex<Option<DeviceFlow>>,
    device_generation: AtomicU64,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts").finish_non_exhaustive()
    }
}

impl Accounts {
    /// The accounts capability over the core's config, store, secrets, clock, bus and audit
    /// log. Starts nothing: [`Accounts::spawn`] starts the refresher.
    pub fn new(core: &Core) -> Result<Self, AccountError> {
        let http = reqwest::Client::builder()
            // A token endpoint that redirects is either misconfigured or hostile; never follow.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("Stagehand/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| AccountError::Internal(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                config: Arc::clone(&core.config),
                store: core.store.clone(),
                secrets: core.secrets.clone(),
                clock: Arc::clone(&core.clock),
                events: core.events.clone(),
                audit: core.audit.clone(),
                http,
                links: Provider::ALL.map(|_| Arc::new(LinkState::new())),
                pending: std::sync::Mutex::default(),
                device: std::sync::Mutex::default(),
                device_generation: AtomicU64::new(0),
            }),
        })
    }

    fn link(&self, provider: Provider) -> Arc<LinkState> {
        Arc::clone(&self.inner.links[link_index(provider)])
    }

    fn config(&self) -> &Config {
        &self.inner.config
    }

    fn store(&self) -> &Store {
        &self.inner.store
    }

    fn secrets(&self) -> &Secrets {
        &self.inner.secrets
    }

    fn audit(&self) -> &Audit {
        &self.inner.audit
    }

    fn events(&self) -> &EventBus {
        &self.inner.events
    }

    fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    /// The link of a provider, if there is one.
    pub async fn get(&self, provider: Provider) -> Result<Option<AccountLink>, AccountError> {
        Ok(self
            .store()
            .call(move |conn| {
                Ok(conn
                    .query_row(
                        &format!("SELECT {LINK_COLUMNS} FROM account_links WHERE provider = ?1"),
                        [provider.as_str()],
                        row_to_link,
                    )
                    .optional()?)
            })
            .await?)
    }

    /// The linked accounts, what can be linked, and the Discord webhook (masked). Never a
    /// token.
    pub async fn list(&self) -> Result<AccountsOverview, AccountError> {
        let (accounts, webhook) = self
            .store()
            .call(|conn| {
                let mut stmt = conn.prepare(&format!(
                    "SELECT {LINK_COLUMNS} FROM account_links ORDER BY provider"
                ))?;
                let links = stmt
                    .query_map([], row_to_link)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(StoreError::from)?;
                let webhook = conn
                    .query_row(
                        "SELECT webhook_id, set_ms FROM discord_webhook WHERE id = 1",
                        [],
                        |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
                    )
                    .optional()?;
                Ok((links, webhook))
            })
            .await?;
        let mut providers = Vec::new();
        for provider in Provider::ALL {
            providers.push(ProviderInfo {
                provider,
                configured: self.client_id(provider).is_ok(),
                flows: self.flows(provider).await?,
                client_id_var: provider.client_id_var(),
            });
        }
        Ok(AccountsOverview {
            accounts,
            providers,
            discord_webhook: webhook.map(|(id, set_ms)| DiscordWebhook {
                url: discord::masked_webhook(&id),
                set_at: rfc3339(set_ms),
            }),
        })
    }

    /// The current access token of a link, for capabilities that call the provider's API.
    /// Refused while the link needs the streamer to sign in again.
    pub async fn access_token(&self, provider: Provider) -> Result<Secret, AccountError> {
        let link = self
            .get(provider)
            .await?
            .ok_or(AccountError::not_linked(provider))?;
        if link.status == LinkStatus::NeedsRelogin {
            return Err(AccountError::NeedsRelogin {
                title: provider.title(),
                reason: link.status_reason.unwrap_or_default(),
            });
        }
        let tokens = self
            .tokens(provider)
            .await?
            .ok_or(AccountError::not_linked(provider))?;
        Ok(tokens.access)
    }

    async fn tokens(&self, provider: Provider) -> Result<Option<Tokens>, AccountError> {
        Ok(self
            .secrets()
            .get(&secret_name(provider))
            .await?
            .as_ref()
            .and_then(Tokens::open))
    }

    /// Where the Twitch device sign-in stands. A failed one (expired code, declined) is its
    /// error, until the next start.
    pub fn device_progress(&self, provider: Provider) -> Result<LinkProgress, AccountError> {
        let none = || AccountError::NoDeviceFlow {
            title: provider.title(),
            name: provider.as_str(),
        };
        if provider != Provider::Twitch {
            return Err(none());
        }
        let device = self.inner.device.lock().unwrap_or_else(|p| p.into_inner());
        let Some(flow) = device.as_ref() else {
            return Err(none());
        };
        match &flow.state {
            DeviceState::Pending {
                verification_uri,
                user_code,
                expires_ms,
                interval,
            } => Ok(LinkProgress::Pending {
                provider,
                verification_uri: verification_uri.clone(),
                user_code: user_code.clone(),
                expires_in: u64::try_from((expires_ms - self.now_ms()).max(0) / 1000).unwrap_or(0),
                interval: *interval,
            }),
            DeviceState::Linked(link) => Ok(LinkProgress::Linked {
                account: (**link).clone(),
            }),
            DeviceState::Failed(e) => Err(e.clone()),
        }
    }
}

/// A provider's place in per-provider arrays.
fn link_index(provider: Provider) -> usize {
    match provider {
        Provider::Twitch => 0,
        Provider::YouTube => 1,
        Provider::Discord => 2,
    }
}

const LINK_COLUMNS: &str = "provider, account_id, account_name, scopes, flow, status, \
     status_reason, token_ms, expires_ms, linked_ms, refreshed_ms";

fn row_to_link(r: &rusqlite::Row<'_>) -> rusqlite::Result<AccountLink> {
    let provider: String = r.get(0)?;
    let scopes: String = r.get(3)?;
    let flow: String = r.get(4)?;
    let expires_ms: Option<i64> = r.get(8)?;
    let refreshed_ms: Option<i64> = r.get(10)?;
    Ok(AccountLink {
        provider: Provider::parse(&provider).unwrap_or(Provider::Twitch),
        account_id: r.get(1)?,
        account_name: r.get(2)?,
        scopes: scopes
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        flow: Flow::parse(&flow).unwrap_or(Flow::Code),
        status: LinkStatus::parse(&r.get::<_, String>(5)?),
        status_reason: r.get(6)?,
        token_ms: r.get(7)?,
        expires_ms,
        expires_at: expires_ms.map(rfc3339),
        linked_at: rfc3339(r.get(9)?),
        refreshed_at: refreshed_ms.map(rfc3339),
    })
}

/// Cuts what a provider said to a length fit for a status line.
fn clip(text: &str) -> String {
    text.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_params_never_print_the_code_or_state() {
        let params = CallbackParams {
            state: Some("st4te-value".into()),
            code: Some("c0de-value".into()),
            error: None,
        };
        let shown = format!("{params:?}");
        assert!(
            !shown.contains("st4te") && !shown.contains("c0de"),
            "{shown}"
        );
    }
}
