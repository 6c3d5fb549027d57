//! Platform accounts: Twitch, YouTube and Discord linked once and kept alive, with tokens only
//! in the secret store.
//!
//! Stagehand is a public client: it runs on the streamer's machine and cannot keep a client
//! secret, so each provider gets the flow meant for that:
//!
//! * **Twitch**: the Device Code Grant ([`Engine::account_start`] answers the code to show;
//!   a background task polls the token endpoint at Twitch's interval, through
//!   `authorization_pending` and `slow_down`). With a streamer's own confidential app (a client
//!   secret configured) the Authorization Code flow is offered too.
//! * **YouTube** (Google) and **Discord**: Authorization Code with PKCE (S256) and a `state`,
//!   redirected to this server's loopback address (RFC 8252), which
//!   [`Engine::account_callback`] completes. The `state` is the credential of the callback:
//!   256 random bits, single use, ten minutes.
//!
//! Tokens go into the secret store (`account-{provider}`, one JSON value holding both tokens,
//! so a write replaces them together); `account_links` in SQLite holds what the streamer sees:
//! account id and name, scopes, expiry and status (`ok`, `refreshing`, `needs_relogin`). The
//! refresher (`refresher.rs`) renews tokens before they expire and validates Twitch tokens at
//! start and hourly; every refresh of one link goes through [`Engine::account_refresh`], which
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

mod destinations;
mod discord;
mod http;
mod link;
mod oauth;
mod refresher;
mod twitch;
mod youtube;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};

pub use destinations::Destination;
pub(crate) use http::{describe, error_message, http_get_json, http_send};

use crate::audit::{AuditEntry, Outcome};
use crate::clock::rfc3339;
use crate::store::StoreError;
use crate::{Engine, EngineError, Secret};

/// The youngest a token is when it is renewed.
const MIN_TOKEN_AGE_MS: i64 = 30_000;
/// How long a started authorization-code flow waits for its callback.
const CODE_FLOW_TTL_MS: i64 = 10 * 60 * 1000;
/// Most authorization-code flows waiting at once (each start adds one).
const MAX_PENDING_CODE_FLOWS: usize = 32;
/// Timeouts of every request to a provider.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// A platform an account can be linked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Twitch.
    Twitch,
    /// YouTube, through a Google account.
    #[serde(rename = "youtube")]
    YouTube,
    /// Discord.
    Discord,
}

impl Provider {
    /// Every provider.
    pub const ALL: [Provider; 3] = [Provider::Twitch, Provider::YouTube, Provider::Discord];

    /// The wire name (`twitch`, `youtube`, `discord`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Twitch => "twitch",
            Self::YouTube => "youtube",
            Self::Discord => "discord",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// The name people know it by.
    pub fn title(self) -> &'static str {
        match self {
            Self::Twitch => "Twitch",
            Self::YouTube => "YouTube",
            Self::Discord => "Discord",
        }
    }

    /// The environment variable that sets the client id.
    pub fn client_id_var(self) -> &'static str {
        match self {
            Self::Twitch => "STAGEHAND_TWITCH_CLIENT_ID",
            Self::YouTube => "STAGEHAND_GOOGLE_CLIENT_ID",
            Self::Discord => "STAGEHAND_DISCORD_CLIENT_ID",
        }
    }

    /// Its place in per-provider arrays.
    fn index(self) -> usize {
        match self {
            Self::Twitch => 0,
            Self::YouTube => 1,
            Self::Discord => 2,
        }
    }

    fn secret_name(self) -> String {
        format!("account-{}", self.as_str())
    }
}

/// How an account is linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flow {
    /// Device Code Grant: the streamer types a code on the provider's site (Twitch).
    Device,
    /// Authorization Code: the provider redirects the browser back to this server.
    Code,
}

impl Flow {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Device => "device",
            Self::Code => "code",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "device" => Some(Self::Device),
            "code" => Some(Self::Code),
            _ => None,
        }
    }
}

/// Where a link stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkStatus {
    /// The token works (as far as Stagehand knows).
    Ok,
    /// A renewal is under way, or being retried after the provider could not be reached.
    Refreshing,
    /// The provider refused the refresh token: the streamer has to link again.
    NeedsRelogin,
}

impl LinkStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Refreshing => "refreshing",
            Self::NeedsRelogin => "needs_relogin",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "ok" => Self::Ok,
            "refreshing" => Self::Refreshing,
            _ => Self::NeedsRelogin,
        }
    }
}

/// A linked account as the streamer sees it: never a token.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountLink {
    /// Which platform.
    pub provider: Provider,
    /// The platform's id of the account (Twitch user id, YouTube channel id, Discord user id).
    pub account_id: String,
    /// Its name (display name, channel title).
    pub account_name: String,
    /// Scopes granted.
    pub scopes: Vec<String>,
    /// How it was linked.
    pub flow: Flow,
    /// Where it stands.
    pub status: LinkStatus,
    /// Why, in plain words, when not `ok`.
    pub status_reason: Option<String>,
    /// When the access token expires (RFC 3339), if the provider said.
    pub expires_at: Option<String>,
    /// When it was linked (RFC 3339).
    pub linked_at: String,
    /// When the token was last renewed (RFC 3339).
    pub refreshed_at: Option<String>,
    /// When the token expires (Unix ms).
    #[serde(skip)]
    pub expires_ms: Option<i64>,
    /// When the current access token was obtained (Unix ms).
    #[serde(skip)]
    pub token_ms: i64,
}

impl AccountLink {
    /// When the refresher renews the token: `lead_ms` before it expires, or at half its life
    /// if it lives shorter than twice that (so a short-lived token is not renewed in a loop).
    /// `None` when the provider gave no expiry.
    pub fn refresh_due_ms(&self, lead_ms: i64) -> Option<i64> {
        let expires = self.expires_ms?;
        let half_life = self.token_ms + (expires - self.token_ms) / 2;
        // Never sooner than this after the token was obtained, whatever a provider says about
        // its lifetime: a token "expiring" at once must not turn into a refresh loop.
        Some(
            (expires - lead_ms)
                .max(half_life)
                .max(self.token_ms + MIN_TOKEN_AGE_MS),
        )
    }
}

/// Errors of account operations. Messages are plain and never hold a token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AccountError {
    /// No such provider.
    #[error("there is no account provider called `{0}` (twitch, youtube, discord)")]
    UnknownProvider(String),
    /// The provider has no client id configured.
    #[error(
        "{title} linking is not set up: register your own application and set its client id \
         in {var} (see the README, \"Platform accounts\")"
    )]
    NotConfigured {
        /// The provider's name.
        title: &'static str,
        /// The variable to set.
        var: &'static str,
    },
    /// The provider does not offer that flow (or not without a client secret).
    #[error("{0}")]
    FlowUnavailable(String),
    /// The callback's `state` is unknown, used, expired or for another provider.
    #[error(
        "this sign-in response does not match a sign-in Stagehand started, or it was already \
         used or has expired; start linking again"
    )]
    StateInvalid,
    /// The provider refused the authorization code (used before, expired, or not issued for
    /// this redirect and verifier).
    #[error(
        "{title} refused the sign-in code (it may have been used already); start linking again"
    )]
    CodeRejected {
        /// The provider's name.
        title: &'static str,
    },
    /// The streamer declined on the provider's page.
    #[error("{title} sign-in was declined; nothing was linked")]
    AccessDenied {
        /// The provider's name.
        title: &'static str,
    },
    /// The device code timed out before the streamer entered it.
    #[error("the Twitch code expired before it was entered; start linking again for a new code")]
    DeviceCodeExpired,
    /// No device flow was started (or the engine restarted since).
    #[error("no {title} device sign-in is under way; start one with GET /auth/{name}/start")]
    NoDeviceFlow {
        /// The provider's name.
        title: &'static str,
        /// Its wire name.
        name: &'static str,
    },
    /// The provider could not be reached or answered something unusable.
    #[error("{title} could not be reached or gave an unusable answer: {detail}")]
    Provider {
        /// The provider's name.
        title: &'static str,
        /// What went wrong (never a token).
        detail: String,
    },
    /// No account is linked for that provider.
    #[error("no {title} account is linked")]
    NotLinked {
        /// The provider's name.
        title: &'static str,
    },
    /// The link needs the streamer to sign in again; nothing is retried until then.
    #[error("the {title} link needs you to sign in again: {reason}")]
    NeedsRelogin {
        /// The provider's name.
        title: &'static str,
        /// Why.
        reason: String,
    },
    /// A field is missing or malformed.
    #[error("{0}")]
    Invalid(String),
    /// No destination with that id.
    #[error("no stream destination with that id")]
    DestinationNotFound,
    /// A destination with that name exists already.
    #[error("a stream destination with that name exists already")]
    DestinationExists,
    /// Stagehand itself failed part-way (the store or the secret store), in a place where the
    /// error is shared with other waiters or reported later; the log has the details.
    #[error(
        "Stagehand could not finish this because its database or secret store failed; its log \
         has the details"
    )]
    Interrupted,
}

impl AccountError {
    /// The stable machine-readable code clients match on (HTTP errors and events carry it).
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownProvider(_) => "account_provider_unknown",
            Self::NotConfigured { .. } => "account_provider_not_configured",
            Self::FlowUnavailable(_) => "account_flow_unavailable",
            Self::StateInvalid => "account_state_invalid",
            Self::CodeRejected { .. } => "account_code_rejected",
            Self::AccessDenied { .. } => "account_access_denied",
            Self::DeviceCodeExpired => "account_device_code_expired",
            Self::NoDeviceFlow { .. } => "account_device_flow_not_found",
            Self::Provider { .. } => "account_provider_error",
            Self::NotLinked { .. } => "account_not_linked",
            Self::NeedsRelogin { .. } => "account_needs_relogin",
            Self::Invalid(_) => "invalid_fields",
            Self::DestinationNotFound => "destination_not_found",
            Self::DestinationExists => "destination_exists",
            Self::Interrupted => "account_interrupted",
        }
    }

    fn not_linked(provider: Provider) -> Self {
        Self::NotLinked {
            title: provider.title(),
        }
    }

    fn provider(provider: Provider, detail: impl Into<String>) -> Self {
        Self::Provider {
            title: provider.title(),
            detail: detail.into(),
        }
    }
}

/// How a provider request failed: for good, or worth retrying.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    /// The provider refused (invalid grant, invalid token, bad client); retrying will not help.
    Rejected(String),
    /// Network trouble, a timeout, a 5xx or 429, or an answer that did not parse.
    Transient(String),
}

impl Failure {
    fn detail(&self) -> &str {
        match self {
            Self::Rejected(d) | Self::Transient(d) => d,
        }
    }
}

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
    fn seal(&self) -> Result<Secret, EngineError> {
        serde_json::to_string(&TokensOut {
            access_token: self.access.expose(),
            refresh_token: self.refresh.as_ref().map(Secret::expose),
        })
        .map(Secret::new)
        .map_err(|e| EngineError::Task(format!("cannot encode tokens: {e}")))
    }

    fn open(sealed: &Secret) -> Option<Self> {
        let raw: TokensIn = serde_json::from_str(sealed.expose()).ok()?;
        Some(Self {
            access: Secret::new(raw.access_token),
            refresh: raw.refresh_token.map(Secret::new),
        })
    }
}

/// What `GET /auth/{provider}/start` answers. Field names are the OAuth ones (RFC 8628 for the
/// device flow), snake_case.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "flow", rename_all = "snake_case")]
pub enum FlowStart {
    /// Show `user_code` and open `verification_uri`; Stagehand polls meanwhile.
    Device {
        /// Which provider.
        provider: Provider,
        /// Where the streamer enters the code.
        verification_uri: String,
        /// The code to show.
        user_code: String,
        /// Seconds until the code expires.
        expires_in: u64,
        /// Seconds between polls.
        interval: u64,
    },
    /// Open `authorization_url` in the system browser (never a webview); the provider sends
    /// the browser back to `/auth/{provider}/callback`.
    Code {
        /// Which provider.
        provider: Provider,
        /// The URL to open.
        authorization_url: String,
        /// Seconds the sign-in may take before its callback is refused.
        expires_in: u64,
    },
}

/// Where a sign-in stands: `GET /api/accounts/{provider}/device` for Twitch's device flow, and
/// the `account.link` events of every flow. A failed one is an [`AccountError`] instead.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LinkProgress {
    /// Waiting for the streamer to enter the code.
    Pending {
        /// Which provider.
        provider: Provider,
        /// Where the streamer enters the code.
        verification_uri: String,
        /// The code to show.
        user_code: String,
        /// Seconds until the code expires.
        expires_in: u64,
        /// Seconds between polls now (raised by `slow_down`).
        interval: u64,
    },
    /// Linked.
    Linked {
        /// The link.
        account: AccountLink,
    },
}

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

/// One provider as the accounts page shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderInfo {
    /// Which provider.
    pub provider: Provider,
    /// Whether a client id is configured.
    pub configured: bool,
    /// The flows `GET /auth/{provider}/start?flow=` offers now.
    pub flows: Vec<Flow>,
    /// The variable that sets the client id.
    pub client_id_var: &'static str,
}

/// The Discord channel webhook, masked.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscordWebhook {
    /// `https://discord.com/api/webhooks/{id}/****`.
    pub url: String,
    /// When it was saved (RFC 3339).
    pub set_at: String,
}

/// `GET /api/accounts`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountsOverview {
    /// Linked accounts.
    pub accounts: Vec<AccountLink>,
    /// What can be linked.
    pub providers: Vec<ProviderInfo>,
    /// The Discord channel webhook, if one is saved.
    pub discord_webhook: Option<DiscordWebhook>,
}

/// What unlinking did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Unlinked {
    /// Which provider.
    pub provider: Provider,
    /// Whether the provider confirmed the revocation (or said the token was dead already).
    pub revoked: bool,
    /// Why not, when it could not be reached. The link is removed here either way; revoke it
    /// on the provider's site too in that case.
    pub revoke_error: Option<String>,
}

/// An authorization-code flow waiting for its callback.
struct PendingCode {
    provider: Provider,
    verifier: Option<Secret>,
    redirect_uri: String,
    expires_ms: i64,
}

/// The Twitch device flow (at most one at a time; a new start replaces it).
struct DeviceFlow {
    generation: u64,
    state: DeviceState,
}

#[derive(Clone)]
enum DeviceState {
    Pending {
        verification_uri: String,
        user_code: String,
        expires_ms: i64,
        interval: u64,
    },
    Linked(Box<AccountLink>),
    Failed(AccountError),
}

/// Per-link coordination: one refresh at a time, and a wake-up for the refresher.
pub(crate) struct LinkState {
    /// Held for the whole of a refresh, link or unlink; keeps the last refresh's outcome.
    refresh: tokio::sync::Mutex<Option<Result<(), AccountError>>>,
    /// Refreshes finished (and links changed); a waiter that sees it move shares that outcome.
    attempts: AtomicU64,
    /// Wakes the refresher when the link changes.
    changed: tokio::sync::Notify,
    /// When a Twitch token was last found valid (Unix ms; 0: not since start).
    validated_ms: std::sync::atomic::AtomicI64,
}

impl LinkState {
    fn new() -> Self {
        Self {
            refresh: tokio::sync::Mutex::new(None),
            attempts: AtomicU64::new(0),
            changed: tokio::sync::Notify::new(),
            validated_ms: std::sync::atomic::AtomicI64::new(0),
        }
    }

    /// Marks a change to the link and wakes the refresher.
    fn touch(&self) {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_one();
    }
}

/// The engine's account state.
pub(crate) struct Accounts {
    http: reqwest::Client,
    links: [Arc<LinkState>; 3],
    pending: std::sync::Mutex<HashMap<String, PendingCode>>,
    device: std::sync::Mutex<Option<DeviceFlow>>,
    device_generation: AtomicU64,
}

impl Accounts {
    pub(crate) fn new() -> Result<Self, EngineError> {
        let http = reqwest::Client::builder()
            // A token endpoint that redirects is either misconfigured or hostile; never follow.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("Stagehand/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| EngineError::Task(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            links: Provider::ALL.map(|_| Arc::new(LinkState::new())),
            pending: std::sync::Mutex::default(),
            device: std::sync::Mutex::default(),
            device_generation: AtomicU64::new(0),
        })
    }

    fn link(&self, provider: Provider) -> Arc<LinkState> {
        Arc::clone(&self.links[provider.index()])
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

fn expiry(now: i64, expires_in: Option<u64>) -> Option<i64> {
    expires_in.map(|s| now.saturating_add(i64::try_from(s).unwrap_or(i64::MAX / 2000) * 1000))
}

/// Cuts what a provider said to a length fit for a status line.
fn clip(text: &str) -> String {
    text.chars().take(200).collect()
}

impl Engine {
    fn accounts(&self) -> &Accounts {
        &self.inner.accounts
    }

    /// The client secret for a provider: the environment beats the secret store.
    async fn account_client_secret(
        &self,
        provider: Provider,
    ) -> Result<Option<Secret>, EngineError> {
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

    fn account_client_id(&self, provider: Provider) -> Result<String, AccountError> {
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
    pub async fn account_client_secret_set(
        &self,
        provider: Provider,
        secret: Option<Secret>,
    ) -> Result<(), EngineError> {
        if provider == Provider::Discord {
            return Err(AccountError::Invalid(
                "Discord links as a public client with PKCE; it needs no client secret".into(),
            )
            .into());
        }
        let name = client_secret_name(provider);
        let action = match secret {
            Some(secret) => {
                let value = secret.expose().trim();
                if value.is_empty() || value.len() > 512 {
                    return Err(AccountError::Invalid(
                        "the client secret must be 1-512 characters".into(),
                    )
                    .into());
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
    async fn account_flows(&self, provider: Provider) -> Result<Vec<Flow>, EngineError> {
        Ok(match provider {
            Provider::Twitch => {
                if self.account_client_secret(provider).await?.is_some() {
                    vec![Flow::Device, Flow::Code]
                } else {
                    vec![Flow::Device]
                }
            }
            Provider::YouTube | Provider::Discord => vec![Flow::Code],
        })
    }
    /// Publishes `account.link`: how a sign-in stands (`pending` with the code to show,
    /// `linked` with the account, or `failed` with the error's stable code and message).
    fn account_link_publish(
        &self,
        provider: Provider,
        flow: Flow,
        progress: Result<LinkProgress, &AccountError>,
    ) {
        let mut data = match progress {
            Ok(progress) => serde_json::to_value(progress).unwrap_or_default(),
            Err(e) => serde_json::json!({
                "state": "failed",
                "code": e.code(),
                "message": e.to_string(),
            }),
        };
        data["provider"] = serde_json::json!(provider);
        data["flow"] = flow.as_str().into();
        self.events().publish("account.link", data);
    }

    /// Publishes `account.status` with the link as the UI shows it, and a notice in plain words
    /// when the streamer has to act.
    fn account_publish(&self, link: &AccountLink, notice: Option<&str>) {
        let mut data = serde_json::to_value(link).unwrap_or_default();
        if let Some(notice) = notice {
            data["notice"] = notice.into();
        }
        self.events().publish("account.status", data);
    }

    /// The link of a provider, if there is one.
    pub async fn account_get(
        &self,
        provider: Provider,
    ) -> Result<Option<AccountLink>, EngineError> {
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
    pub async fn accounts_list(&self) -> Result<AccountsOverview, EngineError> {
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
                configured: self.account_client_id(provider).is_ok(),
                flows: self.account_flows(provider).await?,
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
    pub async fn account_access_token(&self, provider: Provider) -> Result<Secret, EngineError> {
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
        let tokens = self
            .account_tokens(provider)
            .await?
            .ok_or(AccountError::not_linked(provider))?;
        Ok(tokens.access)
    }

    async fn account_tokens(&self, provider: Provider) -> Result<Option<Tokens>, EngineError> {
        Ok(self
            .secrets()
            .get(&provider.secret_name())
            .await?
            .as_ref()
            .and_then(Tokens::open))
    }

    /// Where the Twitch device sign-in stands. A failed one (expired code, declined) is its
    /// error, until the next start.
    pub fn account_device_progress(&self, provider: Provider) -> Result<LinkProgress, EngineError> {
        let none = || AccountError::NoDeviceFlow {
            title: provider.title(),
            name: provider.as_str(),
        };
        if provider != Provider::Twitch {
            return Err(none().into());
        }
        let device = self
            .accounts()
            .device
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let Some(flow) = device.as_ref() else {
            return Err(none().into());
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
            DeviceState::Failed(e) => Err(e.clone().into()),
        }
    }
}

fn client_secret_name(provider: Provider) -> String {
    format!("{}-client-secret", provider.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

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
            link(0, Some(3_600_000)).refresh_due_ms(300_000),
            Some(3_300_000),
            "an hour-long token is renewed five minutes early"
        );
        assert_eq!(
            link(0, Some(60_000)).refresh_due_ms(300_000),
            Some(30_000),
            "a minute-long token is renewed at half its life, not at once and again and again"
        );
        assert_eq!(
            link(0, Some(0)).refresh_due_ms(300_000),
            Some(30_000),
            "a token said to expire at once is still not renewed in a loop"
        );
        assert_eq!(link(0, None).refresh_due_ms(300_000), None);
    }

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
