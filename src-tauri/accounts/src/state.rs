//! What the accounts capability remembers between calls, outside the store: the code flows
//! waiting for their callback, the Twitch device flow under way, and per link the lock that
//! keeps refreshes one at a time.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use stagehand_core::Secret;

use crate::{AccountError, AccountLink, Provider};

/// An authorization-code flow waiting for its callback.
pub(crate) struct PendingCode {
    pub(crate) provider: Provider,
    pub(crate) verifier: Option<Secret>,
    pub(crate) redirect_uri: String,
    pub(crate) expires_ms: i64,
}

/// The Twitch device flow (at most one at a time; a new start replaces it).
pub(crate) struct DeviceFlow {
    pub(crate) generation: u64,
    pub(crate) state: DeviceState,
}

/// Where the device flow stands.
#[derive(Clone)]
pub(crate) enum DeviceState {
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
    pub(crate) refresh: tokio::sync::Mutex<Option<Result<(), AccountError>>>,
    /// Refreshes finished (and links changed); a waiter that sees it move shares that outcome.
    pub(crate) attempts: AtomicU64,
    /// Wakes the refresher when the link changes.
    pub(crate) changed: tokio::sync::Notify,
    /// When a Twitch token was last found valid (Unix ms; 0: not since start).
    pub(crate) validated_ms: AtomicI64,
}

impl LinkState {
    pub(crate) fn new() -> Self {
        Self {
            refresh: tokio::sync::Mutex::new(None),
            attempts: AtomicU64::new(0),
            changed: tokio::sync::Notify::new(),
            validated_ms: AtomicI64::new(0),
        }
    }

    /// Marks a change to the link and wakes the refresher.
    pub(crate) fn touch(&self) {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_one();
    }
}
