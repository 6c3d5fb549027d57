//! Configuration: one typed struct, layered from the embedded defaults, a TOML file and
//! `STAGEHAND_*` environment variables.
//!
//! The defaults file (`defaults.toml`) names every key there is, so anything in a user's file
//! or environment that is not in it is reported as unknown instead of being ignored. The
//! environment is passed in, never read from the process here, so tests can layer their own.
//!
//! This file holds the whole [`Config`] and its errors; `sections.rs` the typed section of
//! each capability, `load.rs` the sources and how their layers combine, `validate.rs` the
//! checks a loaded configuration must pass.

mod load;
mod sections;
mod validate;

use std::path::PathBuf;

use serde::Deserialize;

pub use load::ConfigSources;
pub use sections::{
    AccountsConfig, DiscordConfig, GoogleConfig, LimitsConfig, LogFormat, LoggingConfig,
    MediaConfig, ModeratorsConfig, ObsConfig, RelayConfig, SecretBackendKind, SecretsConfig,
    SecurityConfig, ServerConfig, TtsConfig, TtsEngineChoice, TwitchConfig, WebhooksConfig,
};

/// The embedded defaults; also the reference list of every key.
pub const DEFAULTS_TOML: &str = include_str!("../../defaults.toml");

/// Everything that can go wrong while loading configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file exists but could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not valid TOML.
    #[error("config file {path} is not valid TOML: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's explanation (line and column included).
        message: String,
    },
    /// An environment variable holds a value of the wrong type.
    #[error("environment variable {var} must be {expected} (for {key})")]
    EnvValue {
        /// The variable.
        var: String,
        /// The config key it sets.
        key: String,
        /// What kind of value was expected.
        expected: &'static str,
    },
    /// The merged configuration has a value of the wrong type or out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// No data directory was given and the OS has no home directory to derive one from.
    #[error("no data directory: pass --data-dir or set STAGEHAND_DATA_DIR")]
    NoDataDir,
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Format version of the configuration.
    pub version: u32,
    /// HTTP server.
    pub server: ServerConfig,
    /// Browser-facing defences.
    pub security: SecurityConfig,
    /// Secret storage.
    pub secrets: SecretsConfig,
    /// Logs.
    pub logging: LoggingConfig,
    /// Quotas.
    pub limits: LimitsConfig,
    /// Moderator links and sessions.
    pub moderators: ModeratorsConfig,
    /// OBS Studio connection.
    pub obs: ObsConfig,
    /// Uploaded media.
    pub media: MediaConfig,
    /// Text to speech.
    pub tts: TtsConfig,
    /// Incoming webhooks (TradingView, custom endpoints).
    pub webhooks: WebhooksConfig,
    /// The relay link.
    pub relay: RelayConfig,
    /// Linked platform accounts (all providers).
    pub accounts: AccountsConfig,
    /// Twitch: the client id of the streamer's application, endpoints, scopes.
    pub twitch: TwitchConfig,
    /// Google (YouTube): the client id of the streamer's desktop OAuth client, endpoints, scopes.
    pub google: GoogleConfig,
    /// Discord: the client id of the streamer's application, API base, scopes.
    pub discord: DiscordConfig,
    /// Resolved data directory (not a config key).
    #[serde(skip)]
    pub data_dir: PathBuf,
    /// The config file that was read, if any (not a config key).
    #[serde(skip)]
    pub config_file: Option<PathBuf>,
    /// Keys and variables that were present but not understood.
    #[serde(skip)]
    pub warnings: Vec<String>,
    /// The key for the file secret backend from `STAGEHAND_SECRETS_KEY`, if set.
    #[serde(skip)]
    pub secrets_key: Option<crate::Secret>,
    /// The OBS password from `STAGEHAND_OBS_PASSWORD`, if set (beats the secret store).
    #[serde(skip)]
    pub obs_password: Option<crate::Secret>,
    /// The TradingView HMAC secret from `STAGEHAND_TRADINGVIEW_HMAC_SECRET`, if set (beats the
    /// secret store).
    #[serde(skip)]
    pub tradingview_hmac_secret: Option<crate::Secret>,
    /// The relay tunnel secret from `STAGEHAND_RELAY_SECRET`, if set (beats the secret store).
    #[serde(skip)]
    pub relay_secret: Option<crate::Secret>,
    /// The Twitch client secret from `STAGEHAND_TWITCH_CLIENT_SECRET`, if set (beats the secret
    /// store); with one, Twitch's Authorization Code flow is offered besides the device flow.
    #[serde(skip)]
    pub twitch_client_secret: Option<crate::Secret>,
    /// The Google client secret from `STAGEHAND_GOOGLE_CLIENT_SECRET`, if set (beats the secret
    /// store). Google gives desktop clients one that it does not treat as confidential.
    #[serde(skip)]
    pub google_client_secret: Option<crate::Secret>,
}

impl Config {
    /// The key file of the file secret backend.
    pub fn secrets_key_file(&self) -> PathBuf {
        if self.secrets.key_file.is_empty() {
            self.data_dir.join("secrets.key")
        } else {
            PathBuf::from(&self.secrets.key_file)
        }
    }

    /// The SQLite database file.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("stagehand.db")
    }

    /// The directory holding rotated log files.
    pub fn log_dir(&self) -> PathBuf {
        self.data_dir.join("logs")
    }
}
