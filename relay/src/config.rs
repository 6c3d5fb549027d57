//! What a relay needs to run: where its data lives, its limits, whom to trust for client
//! addresses, and its clock.
//!
//! Defaults live here, as constants, in one place; the binary maps its flags and
//! `STAGEHAND_RELAY_*` variables onto [`RelayConfig`] and documents the same numbers.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Largest webhook body accepted: 256 KiB (TradingView alerts are a few hundred bytes).
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;
/// Sustained webhooks per second per tunnel.
pub const DEFAULT_RATE_PER_SEC: u32 = 20;
/// Webhooks a tunnel may send at once before the sustained rate applies.
pub const DEFAULT_RATE_BURST: u32 = 100;
/// Unacknowledged deliveries kept per tunnel before the oldest are evicted.
pub const DEFAULT_MAX_BUFFERED: u64 = 1_000;
/// Bytes of unacknowledged bodies kept per tunnel before the oldest are evicted.
pub const DEFAULT_MAX_BUFFERED_BYTES: u64 = 5 * 1024 * 1024;
/// How long an unacknowledged delivery is kept before it is evicted.
pub const DEFAULT_MAX_BUFFERED_AGE: Duration = Duration::from_secs(24 * 3600);
/// Deliveries in flight on one engine link before the relay waits for acknowledgements.
pub const DEFAULT_LINK_WINDOW: u64 = 1_000;
/// How often the relay pings the engine.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(15);
/// How long the relay waits for any sign of life from the engine before dropping the link.
pub const DEFAULT_PONG_TIMEOUT: Duration = Duration::from_secs(45);
/// How long a sender may take to upload one body.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// How often `serve` looks for tunnels or allow lists changed by another process (the CLI).
pub const DEFAULT_CONFIG_POLL: Duration = Duration::from_secs(2);
/// Default moderator door requests per second per tunnel.
pub const DEFAULT_DOOR_RATE_PER_SEC: u32 = 20;
/// Default moderator door burst per tunnel (a panel load is four requests).
pub const DEFAULT_DOOR_RATE_BURST: u32 = 60;
/// Default largest moderator request body or WebSocket message (the engine's JSON limit).
pub const DEFAULT_DOOR_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Default time the engine has to start answering a moderator request.
pub const DEFAULT_DOOR_RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default sustained WebSocket messages per second per moderator socket.
pub const DEFAULT_DOOR_WS_MESSAGES_PER_SEC: u32 = 30;
/// Default WebSocket message burst per moderator socket.
pub const DEFAULT_DOOR_WS_BURST: u32 = 2 * DEFAULT_DOOR_WS_MESSAGES_PER_SEC;
/// Default moderator door requests per second from one client address.
pub const DEFAULT_DOOR_CLIENT_RATE_PER_SEC: u32 = 10;
/// Default moderator door burst from one client address.
pub const DEFAULT_DOOR_CLIENT_RATE_BURST: u32 = 30;
/// Default streams open at once on one engine link.
pub const DEFAULT_DOOR_MAX_STREAMS: usize = 256;

/// The time source; injected so rate limits are testable without sleeping.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// Per-tunnel limits on the public side.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Largest accepted body in bytes (413 above).
    pub max_body_bytes: usize,
    /// Sustained requests per second per tunnel (429 above).
    pub rate_per_sec: u32,
    /// Burst size per tunnel.
    pub rate_burst: u32,
    /// Unacknowledged deliveries kept per tunnel; the oldest are evicted beyond this.
    pub max_buffered: u64,
    /// Bytes of unacknowledged bodies kept per tunnel; the oldest are evicted beyond this
    /// (the newest delivery is always kept).
    pub max_buffered_bytes: u64,
    /// Age past which an unacknowledged delivery is evicted.
    pub max_buffered_age: Duration,
    /// How long one body upload may take (408 after).
    pub body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            rate_per_sec: DEFAULT_RATE_PER_SEC,
            rate_burst: DEFAULT_RATE_BURST,
            max_buffered: DEFAULT_MAX_BUFFERED,
            max_buffered_bytes: DEFAULT_MAX_BUFFERED_BYTES,
            max_buffered_age: DEFAULT_MAX_BUFFERED_AGE,
            body_timeout: DEFAULT_BODY_TIMEOUT,
        }
    }
}

/// Limits of the moderator door (`/t/{tunnel_id}/…`), which forwards the moderator panel over
/// the engine link and stores nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct DoorLimits {
    /// Sustained requests (and WebSocket opens) per second per tunnel (429 above).
    pub rate_per_sec: u32,
    /// Burst size per tunnel.
    pub rate_burst: u32,
    /// Largest request body, and largest WebSocket message from a moderator, in bytes.
    pub max_body_bytes: usize,
    /// How long the engine may take to start answering (504 after).
    pub response_timeout: Duration,
    /// Sustained WebSocket messages per second from one moderator socket; faster senders are
    /// slowed down (their messages wait), not dropped.
    pub ws_messages_per_sec: u32,
    /// Burst of WebSocket messages per socket.
    pub ws_burst: u32,
    /// Sustained requests per second from one client address, across tunnels (429 above).
    pub client_rate_per_sec: u32,
    /// Burst per client address.
    pub client_rate_burst: u32,
    /// Streams (requests and sockets) open at once on one engine link (503 above).
    pub max_streams: usize,
    /// The relay's public origin as browsers name it (`https://relay.example.com`). Browsers'
    /// `Origin` must equal it; without it, it must equal the request's `Host`.
    pub public_origin: Option<String>,
}

impl Default for DoorLimits {
    fn default() -> Self {
        Self {
            rate_per_sec: DEFAULT_DOOR_RATE_PER_SEC,
            rate_burst: DEFAULT_DOOR_RATE_BURST,
            max_body_bytes: DEFAULT_DOOR_MAX_BODY_BYTES,
            response_timeout: DEFAULT_DOOR_RESPONSE_TIMEOUT,
            ws_messages_per_sec: DEFAULT_DOOR_WS_MESSAGES_PER_SEC,
            ws_burst: DEFAULT_DOOR_WS_BURST,
            client_rate_per_sec: DEFAULT_DOOR_CLIENT_RATE_PER_SEC,
            client_rate_burst: DEFAULT_DOOR_CLIENT_RATE_BURST,
            max_streams: DEFAULT_DOOR_MAX_STREAMS,
            public_origin: None,
        }
    }
}

/// Settings of the engine link.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkSettings {
    /// Deliveries sent ahead of acknowledgements.
    pub window: u64,
    /// Ping period.
    pub ping_interval: Duration,
    /// Silence after which the link is dropped.
    pub pong_timeout: Duration,
}

impl Default for LinkSettings {
    fn default() -> Self {
        Self {
            window: DEFAULT_LINK_WINDOW,
            ping_interval: DEFAULT_PING_INTERVAL,
            pong_timeout: DEFAULT_PONG_TIMEOUT,
        }
    }
}

/// Everything [`crate::Relay::open`] needs.
#[derive(Clone)]
pub struct RelayConfig {
    /// Directory of the relay's SQLite file (created if missing).
    pub data_dir: PathBuf,
    /// Public-side limits.
    pub limits: Limits,
    /// Engine link settings.
    pub link: LinkSettings,
    /// Moderator door limits.
    pub door: DoorLimits,
    /// Peers whose `X-Forwarded-For` is believed (the TLS proxy in front, e.g. `127.0.0.1`).
    /// Empty: the TCP peer is the client.
    pub trusted_proxies: Vec<IpAddr>,
    /// `synchronous=FULL` instead of `NORMAL`: survives power loss too, at some throughput.
    pub sync_full: bool,
    /// How often `serve` reloads tunnels and allow lists changed by another process.
    pub config_poll: Duration,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Bearer token for `GET /metrics`; `None`: only clients on the relay's own machine.
    pub metrics_token: Option<String>,
}

impl RelayConfig {
    /// Default limits over `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            limits: Limits::default(),
            link: LinkSettings::default(),
            door: DoorLimits::default(),
            trusted_proxies: Vec::new(),
            sync_full: false,
            config_poll: DEFAULT_CONFIG_POLL,
            clock: Arc::new(SystemClock),
            metrics_token: None,
        }
    }
}

impl fmt::Debug for RelayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelayConfig")
            .field("data_dir", &self.data_dir)
            .field("limits", &self.limits)
            .field("link", &self.link)
            .field("door", &self.door)
            .field("trusted_proxies", &self.trusted_proxies)
            .field(
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "<redacted>"),
            )
            .field("sync_full", &self.sync_full)
            .field("config_poll", &self.config_poll)
            .finish_non_exhaustive()
    }
}
