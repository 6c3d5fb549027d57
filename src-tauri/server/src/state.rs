//! [`AppState`]: what every handler is given, built once when the server binds.

use std::net::IpAddr;
use std::sync::Arc;

use stagehand_engine::Engine;
use stagehand_engine::ratelimit::RateLimiter;
use tokio::sync::watch;

use crate::allowed::{Allowed, RefusalLog};

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// The engine.
    pub engine: Engine,
    /// Host and Origin allow lists.
    pub allowed: Arc<Allowed>,
    /// Sign-in attempts per client.
    pub login_limiter: Arc<RateLimiter<IpAddr>>,
    /// Moderator link openings per client.
    pub consume_limiter: Arc<RateLimiter<IpAddr>>,
    /// Throttles the log lines of refused requests.
    pub refusal_log: Arc<RefusalLog>,
    /// `http://127.0.0.1:{port}`.
    pub local_url: String,
    /// Where moderators reach this server: the LAN address with LAN access on, else local_url.
    pub moderator_url: String,
    /// Flips to `true` when the server shuts down; long-lived sockets watch it.
    pub shutdown: watch::Receiver<bool>,
}
