//! What every Stagehand capability is built from, and nothing else.
//!
//! The engine's capabilities (overlays, moderators, webhooks, accounts, OBS, …) each own their
//! state and are handed these parts explicitly: the typed [`config::Config`], the SQLite
//! [`store::Store`] and its migrations, the [`secrets::Secrets`] store, the [`clock::Clock`],
//! the [`events::EventBus`], the [`audit::Audit`] log and the [`metrics::Metrics`] registry.
//! [`Core`] carries them together to where a capability is built; a capability keeps only the
//! parts it uses. This crate has no HTTP, no OBS and no OAuth in it, so a change to any of
//! those never recompiles it.

pub mod audit;
pub mod clock;
pub mod config;
pub mod events;
pub mod logging;
pub mod metrics;
pub mod random;
pub mod ratelimit;
mod secret;
pub mod secrets;
pub mod store;

use std::sync::Arc;

pub use secret::Secret;
pub use stagehand_protocol as protocol;

use crate::audit::Audit;
use crate::clock::Clock;
use crate::config::Config;
use crate::events::EventBus;
use crate::metrics::Metrics;
use crate::secrets::Secrets;
use crate::store::Store;

/// Stagehand's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The shared parts a capability is built from. Cheap to clone: every field is a handle.
#[derive(Clone)]
pub struct Core {
    /// The configuration the engine runs with.
    pub config: Arc<Config>,
    /// The SQLite store (one writer).
    pub store: Store,
    /// The secret store.
    pub secrets: Secrets,
    /// Now.
    pub clock: Arc<dyn Clock>,
    /// What happened, for whoever listens.
    pub events: EventBus,
    /// The audit log.
    pub audit: Audit,
    /// The Prometheus registry.
    pub metrics: Metrics,
    /// This data directory's instance id.
    pub instance_id: Arc<str>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("data_dir", &self.config.data_dir)
            .field("instance", &self.instance_id)
            .finish_non_exhaustive()
    }
}

impl Core {
    /// Now, by the engine's clock (Unix ms).
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}
