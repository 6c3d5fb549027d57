//! Configuration: one typed struct, layered from the embedded defaults, a TOML file and
//! `STAGEHAND_*` environment variables.
//!
//! The defaults file (`defaults.toml`) names every key there is, so anything in a user's file
//! or environment that is not in it is reported as unknown instead of being ignored. The
//! environment is passed in, never read from the process here, so tests can layer their own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The embedded defaults; also the reference list of every key.
pub const DEFAULTS_TOML: &str = include_str!("../defaults.toml");

/// Environment variables read by the engine that are not config keys.
const KNOWN_EXTRA_ENV: &[&str] = &[
    "STAGEHAND_DATA_DIR",
    "STAGEHAND_CONFIG",
    "STAGEHAND_SECRETS_KEY",
    "STAGEHAND_OBS_PASSWORD",
    "STAGEHAND_TRADINGVIEW_HMAC_SECRET",
    "STAGEHAND_RELAY_SECRET",
    "STAGEHAND_TWITCH_CLIENT_SECRET",
    "STAGEHAND_GOOGLE_CLIENT_SECRET",
    "STAGEHAND_LOG",
    // Read by `scripts/run` (run headless even with a display), passed on to the engine.
    "STAGEHAND_HEADLESS",
];

/// Short names accepted for the keys people set most (some come from the documents Stagehand
/// was designed from, hence the unprefixed ones).
const ENV_ALIASES: &[(&str, &str)] = &[
    ("STAGEHAND_PORT", "server.port"),
    ("STAGEHAND_LAN_ACCESS", "server.lan_access"),
    ("STAGEHAND_SECRETS", "secrets.backend"),
    ("STAGEHAND_RELAY_URL", "relay.url"),
    ("STAGEHAND_RELAY_TUNNEL_ID", "relay.tunnel_id"),
    ("STAGEHAND_ENABLE_STRICT_ORIGIN", "security.strict_origin"),
    ("ENABLE_STRICT_ORIGIN", "security.strict_origin"),
    ("STAGEHAND_ALLOWED_ORIGINS", "security.allowed_origins"),
    ("ALLOWED_ORIGINS", "security.allowed_origins"),
    ("MODERATOR_KEY_TTL_SECONDS", "moderators.key_ttl_seconds"),
    (
        "MODERATOR_SESSION_TTL_SECONDS",
        "moderators.session_ttl_seconds",
    ),
];

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

/// Where configuration comes from. Built by the binary from its arguments and the process
/// environment; built by tests from whatever they like. `Debug` shows variable names only: the
/// environment holds keys (`STAGEHAND_SECRETS_KEY`).
#[derive(Clone, Default)]
pub struct ConfigSources {
    /// `--data-dir`; when given, `<data dir>/config.toml` is the config file (portable mode).
    pub data_dir: Option<PathBuf>,
    /// `--config`: an explicit config file, which must exist.
    pub config_file: Option<PathBuf>,
    /// `--port`, which beats every other source.
    pub port: Option<u16>,
    /// Environment variables (name, value).
    pub env: Vec<(String, String)>,
}

impl std::fmt::Debug for ConfigSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigSources")
            .field("data_dir", &self.data_dir)
            .field("config_file", &self.config_file)
            .field("port", &self.port)
            .field(
                "env",
                &self.env.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl ConfigSources {
    /// Sources with the current process environment.
    pub fn from_process_env() -> Self {
        Self {
            env: std::env::vars().collect(),
            ..Self::default()
        }
    }

    fn env_var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
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

/// `[accounts]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountsConfig {
    /// Renew an access token this many seconds before it expires (a token that lives less than
    /// twice this is renewed at half its life).
    pub refresh_lead_seconds: u64,
}

/// `[twitch]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwitchConfig {
    /// The application's client id (empty: Twitch linking is off).
    pub client_id: String,
    /// Base of Twitch's OAuth endpoints (`/oauth2/device`, `/oauth2/token`, ...).
    pub id_url: String,
    /// Base of the Helix API.
    pub api_url: String,
    /// Scopes requested when linking.
    pub scopes: Vec<String>,
}

/// `[google]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleConfig {
    /// The desktop OAuth client's id (empty: YouTube linking is off).
    pub client_id: String,
    /// The authorization endpoint (opened in the system browser).
    pub auth_url: String,
    /// The token endpoint.
    pub token_url: String,
    /// The revocation endpoint.
    pub revoke_url: String,
    /// Base of the YouTube Data API (to name the linked channel).
    pub youtube_api_url: String,
    /// Scopes requested when linking.
    pub scopes: Vec<String>,
}

/// `[discord]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscordConfig {
    /// The application's client id (empty: Discord linking is off).
    pub client_id: String,
    /// Base of the API; `/oauth2/authorize`, `/oauth2/token`, `/oauth2/token/revoke` and
    /// `/users/@me` are under it.
    pub api_url: String,
    /// Scopes requested when linking.
    pub scopes: Vec<String>,
}

/// `[relay]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    /// The relay's base URL (`http(s)://host[:port]`); empty: no relay.
    pub url: String,
    /// The tunnel id the relay gave this machine.
    pub tunnel_id: String,
    /// PEM file of extra CA certificates trusted for an `https://` relay (a private CA);
    /// empty: the public web roots only.
    pub ca_file: String,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Port on 127.0.0.1.
    pub port: u16,
    /// Extra accepted Host names.
    pub allowed_hosts: Vec<String>,
    /// Listen on all interfaces and accept LAN addresses.
    pub lan_access: bool,
    /// The LAN address for moderator links (empty: discovered).
    pub lan_address: String,
}

/// `[security]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    /// Refuse browser writes and upgrades without an Origin.
    pub strict_origin: bool,
    /// Extra allowed origins.
    pub allowed_origins: Vec<String>,
    /// Largest JSON body in bytes.
    pub json_body_limit_bytes: usize,
    /// Login attempts per address per minute.
    pub login_attempts_per_minute: u32,
    /// Streamer session lifetime in seconds.
    pub session_ttl_seconds: u64,
}

/// Which secret backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretBackendKind {
    /// The OS keychain.
    Keychain,
    /// The encrypted file in the data dir.
    File,
}

impl SecretBackendKind {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keychain => "keychain",
            Self::File => "file",
        }
    }
}

/// `[secrets]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    /// Backend.
    pub backend: SecretBackendKind,
    /// Key file for the file backend (empty: `<data dir>/secrets.key`).
    pub key_file: String,
}

/// `[obs]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObsConfig {
    /// Whether to connect at all.
    pub enabled: bool,
    /// obs-websocket host.
    pub host: String,
    /// obs-websocket port.
    pub port: u16,
    /// Stream health polling period.
    pub health_interval_ms: u64,
}

/// `[moderators]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModeratorsConfig {
    /// Default lifetime of a link before it is opened.
    pub key_ttl_seconds: u64,
    /// Lifetime of a session, fixed from when the link was opened.
    pub session_ttl_seconds: u64,
    /// Consume attempts per address per minute.
    pub consume_attempts_per_minute: u32,
    /// Alerts one session may show per minute.
    pub alerts_per_minute: u32,
    /// Speech one session may send per minute.
    pub tts_per_minute: u32,
    /// OBS scene switches one session may make per minute.
    pub obs_scenes_per_minute: u32,
    /// Scene saves one session may make per minute.
    pub scene_saves_per_minute: u32,
}

/// `[limits]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Most overlays at once.
    pub overlays: u32,
    /// Most layers in one scene.
    pub scene_layers: usize,
    /// Queue length of one overlay page.
    pub overlay_page_queue: usize,
}

/// `[media]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    /// Largest uploaded file in bytes.
    pub max_upload_bytes: u64,
}

/// Which program renders speech.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TtsEngineChoice {
    /// The platform's program, if on PATH.
    Auto,
    /// espeak-ng.
    EspeakNg,
    /// macOS `say`.
    Say,
    /// SAPI through PowerShell (Windows).
    Sapi,
    /// None: pages use the browser's SpeechSynthesis.
    None,
}

/// `[tts]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TtsConfig {
    /// Renderer.
    pub engine: TtsEngineChoice,
    /// Longest render before the program is stopped (ms).
    pub render_timeout_ms: u64,
    /// Most cached audio files.
    pub cache_max_files: usize,
    /// Most cached audio bytes.
    pub cache_max_bytes: u64,
    /// Cached audio unused this long is deleted (seconds).
    pub cache_max_age_seconds: u64,
}

/// `[webhooks]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    /// How long an idempotency key (or webhook id) is remembered, in hours (at least 72).
    pub idempotency_hours: u64,
    /// Deliveries accepted but not yet shown when Stagehand stopped are shown after a restart
    /// if they are at most this old (seconds); older ones are only listed.
    pub reannounce_window_seconds: u64,
    /// A relayed webhook that reaches the engine more than this many seconds after the relay
    /// received it is stale: recorded and listed, not played.
    pub stale_after_seconds: u64,
    /// Play stale webhooks anyway.
    pub play_stale: bool,
}

/// Log output format on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// `[logging]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    /// tracing filter directive.
    pub level: String,
    /// stderr format.
    pub format: LogFormat,
    /// Daily log files kept.
    pub max_files: usize,
    /// Audit entries older than this many days are deleted.
    pub audit_retention_days: u32,
}

impl Config {
    /// Loads configuration from the given sources.
    pub fn load(sources: &ConfigSources) -> Result<Self, ConfigError> {
        let defaults: toml::Table = toml::from_str(DEFAULTS_TOML)
            .map_err(|e| ConfigError::Invalid(format!("embedded defaults: {e}")))?;
        let mut merged = defaults.clone();
        let mut warnings = Vec::new();

        let data_dir = match (&sources.data_dir, sources.env_var("STAGEHAND_DATA_DIR")) {
            (Some(dir), _) => Some(dir.clone()),
            (None, Some(dir)) if !dir.is_empty() => Some(PathBuf::from(dir)),
            _ => None,
        };
        let explicit_file = sources.config_file.clone().or_else(|| {
            sources
                .env_var("STAGEHAND_CONFIG")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        let (config_file, must_exist) = match (&explicit_file, &data_dir) {
            (Some(file), _) => (Some(file.clone()), true),
            (None, Some(dir)) => (Some(dir.join("config.toml")), false),
            (None, None) => (os_dirs().map(|d| d.config_dir().join("config.toml")), false),
        };
        let mut file_read = None;
        if let Some(path) = &config_file {
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    let table: toml::Table =
                        toml::from_str(&text).map_err(|e| ConfigError::Parse {
                            path: path.clone(),
                            message: e.to_string(),
                        })?;
                    merge_known(&mut merged, &defaults, table, "", &mut warnings, path);
                    file_read = Some(path.clone());
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => {}
                Err(source) => {
                    return Err(ConfigError::Read {
                        path: path.clone(),
                        source,
                    });
                }
            }
        }

        apply_env(&mut merged, &defaults, sources, &mut warnings)?;
        if let Some(port) = sources.port {
            set_path(
                &mut merged,
                "server.port",
                toml::Value::Integer(i64::from(port)),
            );
        }

        let mut config: Config = toml::Value::Table(merged)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().to_owned()))?;
        config.data_dir = match data_dir {
            Some(dir) => dir,
            None => os_dirs()
                .map(|d| d.data_dir().to_path_buf())
                .ok_or(ConfigError::NoDataDir)?,
        };
        config.config_file = file_read;
        config.warnings = warnings;
        config.secrets_key = sources
            .env_var("STAGEHAND_SECRETS_KEY")
            .filter(|v| !v.is_empty())
            .map(crate::Secret::new);
        config.obs_password = sources
            .env_var("STAGEHAND_OBS_PASSWORD")
            .filter(|v| !v.is_empty())
            .map(crate::Secret::new);
        config.tradingview_hmac_secret = sources
            .env_var("STAGEHAND_TRADINGVIEW_HMAC_SECRET")
            .filter(|v| !v.is_empty())
            .map(crate::Secret::new);
        config.relay_secret = sources
            .env_var("STAGEHAND_RELAY_SECRET")
            .filter(|v| !v.is_empty())
            .map(crate::Secret::new);
        config.twitch_client_secret = sources
            .env_var("STAGEHAND_TWITCH_CLIENT_SECRET")
            .filter(|v| !v.is_empty())
            .map(crate::Secret::new);
        config.google_client_secret = sources
            .env_var("STAGEHAND_GOOGLE_CLIENT_SECRET")
            .filter(|v| !v.is_empty())
            .map(crate::Secret::new);
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.version != 1 {
            return Err(ConfigError::Invalid(format!(
                "config version {} is not supported (this build reads version 1)",
                self.version
            )));
        }
        if self.security.json_body_limit_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "security.json_body_limit_bytes must be at least 1024".into(),
            ));
        }
        if !(1..=65_536).contains(&self.limits.overlay_page_queue) {
            return Err(ConfigError::Invalid(
                "limits.overlay_page_queue must be between 1 and 65536".into(),
            ));
        }
        if !(60..=31_536_000).contains(&self.security.session_ttl_seconds) {
            return Err(ConfigError::Invalid(
                "security.session_ttl_seconds must be between 60 and 31536000 (a year)".into(),
            ));
        }
        let relay_url = self.relay.url.trim();
        let web_url = relay_url.starts_with("http://") || relay_url.starts_with("https://");
        if !relay_url.is_empty() && !web_url {
            return Err(ConfigError::Invalid(
                "relay.url must start with http:// or https://".into(),
            ));
        }
        if !(100..=60_000).contains(&self.obs.health_interval_ms) {
            return Err(ConfigError::Invalid(
                "obs.health_interval_ms must be between 100 and 60000".into(),
            ));
        }
        if !(60..=604_800).contains(&self.moderators.key_ttl_seconds)
            || !(60..=2_592_000).contains(&self.moderators.session_ttl_seconds)
            || self.moderators.consume_attempts_per_minute == 0
        {
            return Err(ConfigError::Invalid(
                "moderators: key_ttl_seconds 60..=604800, session_ttl_seconds 60..=2592000, \
                 consume_attempts_per_minute at least 1"
                    .into(),
            ));
        }
        let m = &self.moderators;
        if [
            m.alerts_per_minute,
            m.tts_per_minute,
            m.obs_scenes_per_minute,
            m.scene_saves_per_minute,
        ]
        .contains(&0)
        {
            return Err(ConfigError::Invalid(
                "moderators: alerts_per_minute, tts_per_minute, obs_scenes_per_minute and \
                 scene_saves_per_minute must be at least 1"
                    .into(),
            ));
        }
        if self.security.login_attempts_per_minute == 0 {
            return Err(ConfigError::Invalid(
                "security.login_attempts_per_minute must be at least 1".into(),
            ));
        }
        if !(1024..=4 << 30).contains(&self.media.max_upload_bytes) {
            return Err(ConfigError::Invalid(
                "media.max_upload_bytes must be between 1024 and 4294967296 (4 GiB)".into(),
            ));
        }
        if !(1..=600_000).contains(&self.tts.render_timeout_ms) {
            return Err(ConfigError::Invalid(
                "tts.render_timeout_ms must be between 1 and 600000 (10 minutes)".into(),
            ));
        }
        if !(72..=8760).contains(&self.webhooks.idempotency_hours) {
            return Err(ConfigError::Invalid(
                "webhooks.idempotency_hours must be between 72 and 8760 (a year)".into(),
            ));
        }
        if self.webhooks.reannounce_window_seconds > 86_400 {
            return Err(ConfigError::Invalid(
                "webhooks.reannounce_window_seconds must be at most 86400 (a day)".into(),
            ));
        }
        if !(1..=36_500).contains(&self.logging.audit_retention_days) {
            return Err(ConfigError::Invalid(
                "logging.audit_retention_days must be between 1 and 36500".into(),
            ));
        }
        if self.tts.cache_max_files == 0 || self.tts.cache_max_bytes == 0 {
            return Err(ConfigError::Invalid(
                "tts.cache_max_files and tts.cache_max_bytes must be at least 1".into(),
            ));
        }
        if !(30..=86_400).contains(&self.accounts.refresh_lead_seconds) {
            return Err(ConfigError::Invalid(
                "accounts.refresh_lead_seconds must be between 30 and 86400 (a day)".into(),
            ));
        }
        for (key, url) in [
            ("twitch.id_url", &self.twitch.id_url),
            ("twitch.api_url", &self.twitch.api_url),
            ("google.auth_url", &self.google.auth_url),
            ("google.token_url", &self.google.token_url),
            ("google.revoke_url", &self.google.revoke_url),
            ("google.youtube_api_url", &self.google.youtube_api_url),
            ("discord.api_url", &self.discord.api_url),
        ] {
            let ok = url::Url::parse(url.trim())
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
            if !ok {
                return Err(ConfigError::Invalid(format!(
                    "{key} must be an http:// or https:// URL (STAGEHAND_{})",
                    key.replace('.', "_").to_uppercase()
                )));
            }
        }
        for (key, id) in [
            ("twitch.client_id", &self.twitch.client_id),
            ("google.client_id", &self.google.client_id),
            ("discord.client_id", &self.discord.client_id),
        ] {
            if id.len() > 200 || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(ConfigError::Invalid(format!(
                    "{key} must be the client id exactly as the developer console shows it"
                )));
            }
        }
        Ok(())
    }

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

fn os_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("dev", "Stagehand", "stagehand")
}

/// Copies the keys of `from` that exist in `defaults` into `into`; reports the rest.
fn merge_known(
    into: &mut toml::Table,
    defaults: &toml::Table,
    from: toml::Table,
    prefix: &str,
    warnings: &mut Vec<String>,
    file: &Path,
) {
    for (key, value) in from {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match (defaults.get(&key), value) {
            (Some(toml::Value::Table(def)), toml::Value::Table(sub)) => {
                if let Some(toml::Value::Table(target)) = into.get_mut(&key) {
                    merge_known(target, def, sub, &path, warnings, file);
                }
            }
            (Some(_), value) => {
                into.insert(key, value);
            }
            (None, _) => warnings.push(format!(
                "unknown key `{path}` in {} (ignored)",
                file.display()
            )),
        }
    }
}

/// Leaf keys of the defaults, as dotted paths.
fn leaf_paths(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(sub) => leaf_paths(sub, &path, out),
            _ => out.push(path),
        }
    }
}

fn get_path<'a>(table: &'a toml::Table, path: &str) -> Option<&'a toml::Value> {
    let mut parts = path.split('.');
    let mut value = table.get(parts.next()?)?;
    for part in parts {
        value = value.as_table()?.get(part)?;
    }
    Some(value)
}

fn set_path(table: &mut toml::Table, path: &str, value: toml::Value) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else { return };
    let mut current = table;
    for part in parts {
        let entry = current
            .entry(part.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        match entry {
            toml::Value::Table(t) => current = t,
            _ => return,
        }
    }
    current.insert(last.to_owned(), value);
}

/// `server.port` → `STAGEHAND_SERVER_PORT`.
fn env_name(path: &str) -> String {
    format!("STAGEHAND_{}", path.replace('.', "_").to_uppercase())
}

fn apply_env(
    merged: &mut toml::Table,
    defaults: &toml::Table,
    sources: &ConfigSources,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let mut paths = Vec::new();
    leaf_paths(defaults, "", &mut paths);
    let mut by_var: BTreeMap<String, String> = paths
        .iter()
        .filter(|p| p.as_str() != "version")
        .map(|p| (env_name(p), p.clone()))
        .collect();
    for (var, path) in ENV_ALIASES {
        by_var.insert((*var).to_owned(), (*path).to_owned());
    }
    for (var, raw) in &sources.env {
        let Some(path) = by_var.get(var) else {
            if var.starts_with("STAGEHAND_") && !KNOWN_EXTRA_ENV.contains(&var.as_str()) {
                warnings.push(format!("unknown environment variable {var} (ignored)"));
            }
            continue;
        };
        let Some(default) = get_path(defaults, path) else {
            continue;
        };
        let value = parse_env_value(default, raw).ok_or_else(|| ConfigError::EnvValue {
            var: var.clone(),
            key: path.clone(),
            expected: kind_name(default),
        })?;
        set_path(merged, path, value);
    }
    Ok(())
}

fn kind_name(value: &toml::Value) -> &'static str {
    match value {
        toml::Value::Integer(_) => "a whole number",
        toml::Value::Boolean(_) => "true or false",
        toml::Value::Array(_) => "a comma-separated list",
        _ => "a string",
    }
}

fn parse_env_value(default: &toml::Value, raw: &str) -> Option<toml::Value> {
    let raw = raw.trim();
    Some(match default {
        toml::Value::Integer(_) => toml::Value::Integer(raw.parse().ok()?),
        toml::Value::Boolean(_) => toml::Value::Boolean(match raw.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => return None,
        }),
        toml::Value::Array(_) => toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_owned()))
                .collect(),
        ),
        _ => toml::Value::String(raw.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(dir: &Path, env: &[(&str, &str)]) -> ConfigSources {
        ConfigSources {
            data_dir: Some(dir.to_path_buf()),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..ConfigSources::default()
        }
    }

    #[test]
    fn defaults_load_without_any_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = Config::load(&sources(dir.path(), &[])).expect("defaults are valid");
        assert_eq!(config.server.port, 7420, "the documented default port");
        assert_eq!(config.secrets.backend, SecretBackendKind::Keychain);
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    }

    #[test]
    fn file_then_env_then_flag_override_in_that_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("config.toml"),
            "[server]\nport = 8000\nallowed_hosts = [\"stream.lan\"]\n[security]\nstrict_origin = true\n",
        )
        .expect("write config");
        let mut src = sources(
            dir.path(),
            &[
                ("STAGEHAND_SERVER_PORT", "8100"),
                ("ALLOWED_ORIGINS", "http://a.test, http://b.test"),
                ("ENABLE_STRICT_ORIGIN", "false"),
            ],
        );
        let config = Config::load(&src).expect("valid");
        assert_eq!(config.server.port, 8100, "env beats the file");
        assert_eq!(config.server.allowed_hosts, vec!["stream.lan".to_owned()]);
        assert!(!config.security.strict_origin, "alias env beats the file");
        assert_eq!(
            config.security.allowed_origins,
            vec!["http://a.test".to_owned(), "http://b.test".to_owned()]
        );
        src.port = Some(9000);
        assert_eq!(Config::load(&src).expect("valid").server.port, 9000);
    }

    #[test]
    fn unknown_keys_and_variables_are_reported() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("config.toml"),
            "colour = \"red\"\n[server]\nprot = 1\n",
        )
        .expect("write config");
        let config = Config::load(&sources(
            dir.path(),
            &[("STAGEHAND_POTR", "1"), ("STAGEHAND_HEADLESS", "1")],
        ))
        .expect("unknown keys warn, they do not fail");
        let all = config.warnings.join("\n");
        assert!(
            !all.contains("STAGEHAND_HEADLESS"),
            "scripts/run's own switch is not an unknown setting: {all}"
        );
        assert!(all.contains("`colour`"), "{all}");
        assert!(all.contains("`server.prot`"), "{all}");
        assert!(all.contains("STAGEHAND_POTR"), "{all}");
        assert_eq!(config.server.port, 7420, "a misspelt key changes nothing");
    }

    #[test]
    fn wrong_types_are_errors_that_name_the_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = Config::load(&sources(dir.path(), &[("STAGEHAND_PORT", "lots")]))
            .expect_err("a port must be a number");
        assert!(err.to_string().contains("STAGEHAND_PORT"), "{err}");
        std::fs::write(dir.path().join("config.toml"), "[server]\nport = \"x\"\n")
            .expect("write config");
        let err = Config::load(&sources(dir.path(), &[])).expect_err("wrong type in file");
        assert!(matches!(err, ConfigError::Invalid(_)), "{err}");
        std::fs::write(dir.path().join("config.toml"), "[server\n").expect("write config");
        let err = Config::load(&sources(dir.path(), &[])).expect_err("broken TOML");
        assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
    }

    #[test]
    fn provider_settings_layer_from_env_and_bad_urls_name_their_variable() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = Config::load(&sources(
            dir.path(),
            &[
                ("STAGEHAND_TWITCH_CLIENT_ID", "abc123"),
                ("STAGEHAND_TWITCH_ID_URL", "http://127.0.0.1:9/"),
                ("STAGEHAND_GOOGLE_TOKEN_URL", "http://127.0.0.1:9/token"),
                ("STAGEHAND_DISCORD_API_URL", "http://127.0.0.1:9/api"),
                ("STAGEHAND_TWITCH_SCOPES", "chat:read, bits:read"),
                ("STAGEHAND_TWITCH_CLIENT_SECRET", "shh"),
            ],
        ))
        .expect("valid");
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        assert_eq!(config.twitch.client_id, "abc123");
        assert_eq!(config.twitch.id_url, "http://127.0.0.1:9/");
        assert_eq!(config.twitch.scopes, vec!["chat:read", "bits:read"]);
        assert_eq!(config.google.token_url, "http://127.0.0.1:9/token");
        assert_eq!(config.discord.api_url, "http://127.0.0.1:9/api");
        assert_eq!(
            config.twitch_client_secret.as_ref().map(|s| s.expose()),
            Some("shh")
        );
        let defaults = Config::load(&sources(dir.path(), &[])).expect("valid");
        assert_eq!(defaults.twitch.id_url, "https://id.twitch.tv");
        assert!(defaults.twitch.client_id.is_empty(), "no client id ships");
        let err = Config::load(&sources(
            dir.path(),
            &[("STAGEHAND_GOOGLE_AUTH_URL", "accounts.google.com")],
        ))
        .expect_err("not a URL");
        assert!(
            err.to_string().contains("STAGEHAND_GOOGLE_AUTH_URL"),
            "{err}"
        );
    }

    #[test]
    fn secrets_backend_is_chosen_by_env() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config =
            Config::load(&sources(dir.path(), &[("STAGEHAND_SECRETS", "file")])).expect("valid");
        assert_eq!(config.secrets.backend, SecretBackendKind::File);
        let err = Config::load(&sources(dir.path(), &[("STAGEHAND_SECRETS", "plaintext")]))
            .expect_err("only keychain and file exist");
        assert!(err.to_string().contains("plaintext"), "{err}");
    }
}
