//! The Stagehand engine: everything Stagehand does, with no Tauri and no HTTP in it.
//!
//! [`Engine::open`] brings up the store, the secret store and the streamer token, and builds
//! one service per capability from `stagehand_core::Core` (overlays, media, speech, accounts);
//! the HTTP server, the desktop shell and the command line reach each through its handle
//! (`engine.overlays().create(..)`). Moderators, OBS, webhooks, the relay link and notices are
//! still methods on `Engine`, to become services the same way.

pub mod auth;
pub mod media;
pub mod moderators;
pub mod notices;
pub mod obs;
pub mod overlays;
pub mod relay_door;
pub mod relay_link;
pub mod summary;
pub mod tts;
pub mod webhooks;

use std::path::Path;
use std::sync::Arc;

pub use stagehand_accounts as accounts;
pub use stagehand_core::{
    Core, Secret, VERSION, audit, clock, config, events, logging, metrics, random, ratelimit,
    secrets, store,
};
pub use stagehand_protocol as protocol;

use crate::accounts::Accounts;
use crate::audit::Audit;
use crate::auth::{AuthError, LoginCodes, ensure_streamer_token};
use crate::clock::{Clock, rfc3339};
use crate::config::Config;
use crate::events::EventBus;
use crate::metrics::Metrics;
use crate::secrets::{SecretError, SecretStore, Secrets};
use crate::store::{Store, StoreError};

/// Errors of engine operations. The HTTP edge maps each variant to a status and stable code.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Configuration problem.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// Store problem.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Secret storage problem.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// Authentication refused.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Randomness unavailable.
    #[error(transparent)]
    Random(#[from] random::RandomError),
    /// OBS operation failed.
    #[error(transparent)]
    Obs(#[from] obs::ObsError),
    /// Moderator operation refused.
    #[error(transparent)]
    Moderator(#[from] moderators::ModeratorError),
    /// Overlay operation refused.
    #[error(transparent)]
    Overlay(#[from] overlays::OverlayError),
    /// Media upload refused or media missing.
    #[error(transparent)]
    Media(#[from] media::MediaError),
    /// Speech request refused or its rendering failed.
    #[error(transparent)]
    Tts(#[from] tts::TtsError),
    /// Webhook settings operation refused.
    #[error(transparent)]
    Webhook(#[from] webhooks::WebhookError),
    /// A relay setting was refused.
    #[error(transparent)]
    Relay(#[from] relay_link::RelayLinkError),
    /// An account operation was refused or failed.
    #[error(transparent)]
    Account(#[from] accounts::AccountError),
    /// A blocking task failed.
    #[error("background task failed: {0}")]
    Task(String),
}

struct EngineInner {
    core: Core,
    streamer_token: Secret,
    login_codes: LoginCodes,
    overlays: overlays::Overlays,
    moderator_revocations: tokio::sync::broadcast::Sender<String>,
    moderator_limits: moderators::ActionLimits,
    obs: obs::ObsLink,
    relay: relay_link::RelayLink,
    relay_door: relay_door::DoorState,
    media: media::Media,
    speech: tts::Speech,
    webhook_keys: std::sync::RwLock<webhooks::Keys>,
    webhook_backlog: std::sync::Mutex<webhooks::Backlog>,
    accounts: Accounts,
    started_ms: i64,
    started: std::time::Instant,
}

/// The running engine; cheap to clone, shared by every door into it.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("data_dir", &self.inner.core.config.data_dir)
            .field("instance", &self.inner.core.instance_id)
            .finish_non_exhaustive()
    }
}

/// Opens the store and returns it with this data directory's instance id (blocking).
pub fn open_store_blocking(config: &Config) -> Result<(Store, String), EngineError> {
    let store = Store::open_blocking(&config.database_path())?;
    let instance = store.call_blocking(|conn| {
        store::meta_get_or_insert(conn, "instance_id", || {
            random::token(12).unwrap_or_else(|_| "default".into())
        })
    })?;
    Ok((store, instance))
}

/// Opens the configured secret store for this data directory (blocking).
pub fn open_secrets_blocking(
    config: &Config,
    instance: &str,
) -> Result<Arc<dyn SecretStore>, EngineError> {
    Ok(secrets::open(config, instance)?)
}

impl Engine {
    /// Starts the engine: data dir, store (migrations, integrity check), secret store,
    /// streamer token. Blocking work runs on the blocking pool.
    pub async fn open(config: Config, clock: Arc<dyn Clock>) -> Result<Self, EngineError> {
        let started = std::time::Instant::now();
        let cfg = config.clone();
        let (store, instance_id, secrets, streamer_token, overlay_key, webhook_keys) =
            tokio::task::spawn_blocking(move || -> Result<_, EngineError> {
                let (store, instance) = open_store_blocking(&cfg)?;
                let secrets = open_secrets_blocking(&cfg, &instance)?;
                let token = ensure_streamer_token(secrets.as_ref())?;
                let overlay_key = overlays::ensure_signing_key(secrets.as_ref())?;
                let webhook_keys = webhooks::load_keys(secrets.as_ref())?;
                Ok((store, instance, secrets, token, overlay_key, webhook_keys))
            })
            .await
            .map_err(|e| EngineError::Task(e.to_string()))??;
        for warning in &config.warnings {
            tracing::warn!(%warning, "configuration");
        }
        let metrics = Metrics::new();
        metrics.gauge_set(
            "stagehand_build_info",
            "Stagehand build information.",
            &[("version", VERSION)],
            1.0,
        );
        let started_ms = clock.now_ms();
        let moderator_limits = moderators::ActionLimits::new(&config.moderators);
        let obs_link = obs::ObsLink::new(
            format!("{}:{}", config.obs.host, config.obs.port),
            config.obs.enabled,
            started_ms,
        );
        let relay_link = relay_link::RelayLink::new(&config.relay, started_ms);
        let events = EventBus::new(256, Arc::clone(&clock));
        let audit = Audit::new(
            store.clone(),
            Arc::clone(&clock),
            events.clone(),
            config.logging.audit_retention_days,
        );
        let core = Core {
            config: Arc::new(config),
            store,
            secrets: Secrets::new(secrets),
            clock,
            events,
            audit,
            metrics,
            instance_id: instance_id.into(),
        };
        let accounts = Accounts::new(&core)?;
        let overlays = overlays::Overlays::new(&core, overlay_key);
        let media = media::Media::new(&core);
        let speech = tts::Speech::open(&core, Arc::new(overlays.clone())).await?;
        let engine = Self {
            inner: Arc::new(EngineInner {
                overlays,
                core,
                streamer_token,
                login_codes: LoginCodes::default(),
                moderator_revocations: moderators::revocations(),
                moderator_limits,
                obs: obs_link,
                relay: relay_link,
                relay_door: relay_door::DoorState::default(),
                media,
                speech,
                webhook_keys: std::sync::RwLock::new(webhook_keys),
                webhook_backlog: std::sync::Mutex::default(),
                accounts,
                started_ms,
                started,
            }),
        };
        engine.notices_start();
        engine.webhooks_start().await?;
        engine.inner.accounts.spawn();
        Ok(engine)
    }

    /// Media: uploads, the library, serving and deleting.
    pub fn media(&self) -> &media::Media {
        &self.inner.media
    }

    /// Speech: `tts.speak` to overlay pages and the rendered audio.
    pub fn speech(&self) -> &tts::Speech {
        &self.inner.speech
    }

    /// The shared parts every capability is built from.
    pub fn core(&self) -> &Core {
        &self.inner.core
    }

    /// Platform accounts: links, tokens, destinations, the Discord webhook.
    pub fn accounts(&self) -> &Accounts {
        &self.inner.accounts
    }

    /// The configuration the engine runs with.
    pub fn config(&self) -> &Config {
        &self.inner.core.config
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.core.store
    }

    /// The event bus.
    pub fn events(&self) -> &EventBus {
        &self.inner.core.events
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.core.metrics
    }

    /// Overlays, scenes, alerts and the pages showing them.
    pub fn overlays(&self) -> &overlays::Overlays {
        &self.inner.overlays
    }

    /// The audit log.
    pub fn audit(&self) -> &Audit {
        &self.inner.core.audit
    }

    /// Now, by the engine's clock (Unix ms).
    pub fn now_ms(&self) -> i64 {
        self.inner.core.clock.now_ms()
    }

    /// The data directory's instance id.
    pub fn instance_id(&self) -> &str {
        &self.inner.core.instance_id
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.inner.core.config.data_dir
    }

    /// The secret store.
    pub fn secrets(&self) -> &Secrets {
        &self.inner.core.secrets
    }

    /// Whether the engine can serve: the store answers.
    pub async fn ready(&self) -> Result<(), EngineError> {
        self.store()
            .call(|conn| Ok(conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
            .await?;
        Ok(())
    }

    /// What the home page and `GET /api/status` show.
    pub fn status(&self, local_url: &str) -> protocol::EngineStatus {
        protocol::EngineStatus {
            version: VERSION.to_owned(),
            data_dir: self.inner.core.config.data_dir.display().to_string(),
            secret_backend: self.inner.core.secrets.backend().kind().as_str().to_owned(),
            secret_location: self.inner.core.secrets.backend().location(),
            started_at: rfc3339(self.inner.started_ms),
            uptime_seconds: self.inner.started.elapsed().as_secs(),
            local_url: local_url.to_owned(),
            config_warnings: self.inner.core.config.warnings.clone(),
            tts_engine: self.inner.speech.renderer().map(str::to_owned),
        }
    }
}
