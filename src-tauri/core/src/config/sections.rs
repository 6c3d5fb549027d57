//! The typed section of each capability (`[server]`, `[twitch]`, `[obs]`, ...), as the
//! defaults file and the user's file spell them. Each capability is handed its own section.

use serde::Deserialize;

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
