//! Stagehand's cloud relay.
//!
//! Outside services (TradingView alerts, custom webhooks) need a public URL; a streamer's PC
//! has none. The relay runs on a small VM, accepts webhooks at `POST /h/{tunnel}/webhooks/…`,
//! stores each one in its own SQLite file before answering 202, and hands them to the desktop
//! engine over the one WebSocket the engine opens (`GET /tunnel/{tunnel}/connect`, protocol in
//! [`stagehand_protocol::relay`]). Nothing answered 202 is lost: deliveries stay stored until
//! the engine acknowledges them (or the per-tunnel buffer bound evicts them, which the engine
//! is told about).
//!
//! In-process use (tests, benches, other crates' tests):
//!
//! ```no_run
//! # async fn demo() -> Result<(), stagehand_relay::RelayError> {
//! use stagehand_relay::{Relay, RelayConfig};
//! let relay = Relay::open(RelayConfig::new("/tmp/relay-data"))?;
//! let tunnel = relay.create_tunnel().await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = tokio::spawn(stagehand_relay::serve(relay.clone(), listener, async {
//!     let _ = stopped.await;
//! }));
//! // … POST http://{addr}/h/{tunnel.tunnel_id}/webhooks/x, connect the engine …
//! let _ = stop.send(());
//! # let _ = (addr, server);
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod config;
mod door;
mod error;
mod hooks;
mod link;
mod metrics;
mod store;
pub mod tunnel;

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use axum::Router;
use axum::routing::{any, get, post};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use crate::config::{Clock, DoorLimits, Limits, LinkSettings, RelayConfig, SystemClock};
pub use crate::door::CLOSE_OFFLINE;
pub use crate::error::ApiError;
pub use crate::tunnel::{NewTunnel, TRADINGVIEW_ADDRESSES, TunnelId, TunnelSecret};

use crate::link::LinkShared;
use crate::store::{Readers, TunnelRow, Writer};
use crate::tunnel::SecretDigest;

/// Everything that can go wrong inside the relay.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// SQLite failed.
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// A write transaction failed to commit; nothing in it was stored.
    #[error("database commit failed: {0}")]
    Commit(String),
    /// The database was written by a newer relay.
    #[error("database schema {found} is newer than this relay knows ({known}); upgrade the relay")]
    SchemaTooNew {
        /// Schema version found.
        found: i64,
        /// Newest version this build knows.
        known: i64,
    },
    /// The writer thread is gone (the relay is shutting down).
    #[error("the relay's writer has stopped")]
    WriterGone,
    /// The OS random source failed.
    #[error("no randomness available: {0}")]
    Random(String),
    /// No such tunnel.
    #[error("unknown tunnel")]
    UnknownTunnel,
    /// A path outside `webhooks/`.
    #[error("the path must lie under webhooks/ (got {0:?})")]
    InvalidPath(String),
    /// A value could not be encoded.
    #[error("cannot encode: {0}")]
    Encode(String),
    /// Socket or OS error.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Per-tunnel token bucket state: (tokens, last refill ms).
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last_ms: i64,
}

/// What the relay keeps in memory per tunnel. Kept small: an idle tunnel is this struct and a
/// map entry, with no task and no channel.
pub(crate) struct TunnelState {
    pub(crate) key: i64,
    pub(crate) id: TunnelId,
    digest: SecretDigest,
    /// Path → allowed source addresses; a path absent here is open.
    allow: RwLock<Vec<(String, Vec<IpAddr>)>>,
    bucket: Mutex<Option<Bucket>>,
    /// The moderator door's bucket, apart from the webhooks' so neither starves the other.
    door_bucket: Mutex<Option<Bucket>>,
    /// The engine link currently attached, if any.
    pub(crate) link: Mutex<Option<Arc<LinkShared>>>,
}

impl TunnelState {
    fn from_row(row: TunnelRow) -> Self {
        Self {
            key: row.key,
            id: row.id,
            digest: row.digest,
            allow: RwLock::new(row.allowlists),
            bucket: Mutex::new(None),
            door_bucket: Mutex::new(None),
            link: Mutex::new(None),
        }
    }

    /// Whether `ip` may post to `path`.
    pub(crate) fn allows(&self, path: &str, ip: IpAddr) -> bool {
        let allow = self.allow.read().unwrap_or_else(|p| p.into_inner());
        match allow.iter().find(|(p, _)| p == path) {
            Some((_, ips)) => ips.contains(&ip),
            None => true,
        }
    }

    /// Takes one token; `Err(seconds)` says when to retry.
    pub(crate) fn take_token(&self, limits: &Limits, now_ms: i64) -> Result<(), u64> {
        take(&self.bucket, limits.rate_per_sec, limits.rate_burst, now_ms)
    }

    /// Takes one token from the moderator door's bucket; `Err(seconds)` says when to retry.
    pub(crate) fn take_door_token(&self, rate: u32, burst: u32, now_ms: i64) -> Result<(), u64> {
        take(&self.door_bucket, rate, burst, now_ms)
    }

    /// Tells the attached link, if any, that there is something new to send.
    pub(crate) fn wake_link(&self, evicted: bool) {
        let link = self.link.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(link) = link {
            link.wake(evicted);
        }
    }

    pub(crate) fn secret_matches(&self, presented: &TunnelSecret) -> bool {
        self.digest.matches(presented)
    }
}

/// Takes one token from `bucket` (`rate` a second, `burst` at most); `Err(seconds)` says when
/// to retry.
fn take(bucket: &Mutex<Option<Bucket>>, rate: u32, burst: u32, now_ms: i64) -> Result<(), u64> {
    let mut slot = bucket.lock().unwrap_or_else(|p| p.into_inner());
    take_from(&mut slot, rate, burst, now_ms)
}

/// [`take`] on a bucket the caller holds.
fn take_from(slot: &mut Option<Bucket>, rate: u32, burst: u32, now_ms: i64) -> Result<(), u64> {
    let rate_per_ms = f64::from(rate.max(1)) / 1000.0;
    let burst = f64::from(burst.max(1));
    let bucket = slot.get_or_insert(Bucket {
        tokens: burst,
        last_ms: now_ms,
    });
    let elapsed = (now_ms - bucket.last_ms).max(0) as f64;
    bucket.tokens = (bucket.tokens + elapsed * rate_per_ms).min(burst);
    bucket.last_ms = now_ms.max(bucket.last_ms);
    if bucket.tokens >= 1.0 {
        bucket.tokens -= 1.0;
        Ok(())
    } else {
        let wait_ms = (1.0 - bucket.tokens) / rate_per_ms;
        Err((wait_ms / 1000.0).ceil().max(1.0) as u64)
    }
}

struct Inner {
    config: RelayConfig,
    writer: Writer,
    readers: Arc<Readers>,
    tunnels: RwLock<HashMap<TunnelId, Arc<TunnelState>>>,
    config_version: AtomicI64,
    shutdown: watch::Sender<bool>,
    next_link_id: AtomicU64,
    metrics: metrics::Metrics,
    /// Held while tunnel settings are changed in process or reloaded from the database, so a
    /// reload that read the database before an in-process change cannot apply its older
    /// snapshot after it.
    settings_lock: tokio::sync::Mutex<()>,
    /// The moderator door's per-address buckets (all tunnels), so one client cannot use up a
    /// tunnel's whole allowance and lock its moderators out.
    door_clients: Mutex<HashMap<IpAddr, Option<Bucket>>>,
}

/// Addresses tracked by the door's per-address limit before idle ones are forgotten.
const MAX_DOOR_CLIENTS: usize = 10_000;

/// A running relay: its database, tunnels and attached engine links. Cheap to clone.
#[derive(Clone)]
pub struct Relay {
    inner: Arc<Inner>,
}

impl Relay {
    /// Opens (creating if needed) the relay's database in `config.data_dir`, migrates it,
    /// loads the tunnels and starts the writer thread. Blocking; call it at startup.
    pub fn open(config: RelayConfig) -> Result<Self, RelayError> {
        let (writer, readers) = store::open(
            &config.data_dir,
            config.sync_full,
            store::Bounds {
                count: config.limits.max_buffered,
                bytes: config.limits.max_buffered_bytes,
                age_ms: i64::try_from(config.limits.max_buffered_age.as_millis())
                    .unwrap_or(i64::MAX),
            },
        )?;
        let (version, rows) =
            readers.read_blocking(|c| Ok((store::config_version(c)?, store::load_tunnels(c)?)))?;
        let tunnels = rows
            .into_iter()
            .map(|row| (row.id.clone(), Arc::new(TunnelState::from_row(row))))
            .collect();
        let (shutdown, _) = watch::channel(false);
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                writer,
                readers: Arc::new(readers),
                tunnels: RwLock::new(tunnels),
                config_version: AtomicI64::new(version),
                shutdown,
                next_link_id: AtomicU64::new(1),
                metrics: metrics::Metrics::default(),
                settings_lock: tokio::sync::Mutex::new(()),
                door_clients: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &RelayConfig {
        &self.inner.config
    }

    /// Creates a tunnel with a random id and secret. The secret is returned this once; only
    /// its SHA-256 is stored.
    pub async fn create_tunnel(&self) -> Result<NewTunnel, RelayError> {
        let tunnel_id = TunnelId::generate()?;
        let secret = TunnelSecret::generate()?;
        let digest = secret.digest();
        let now_ms = self.inner.config.clock.now_ms();
        let key = self
            .inner
            .writer
            .create_tunnel(tunnel_id.clone(), digest, now_ms)
            .await?;
        let state = TunnelState::from_row(TunnelRow {
            key,
            id: tunnel_id.clone(),
            digest,
            allowlists: Vec::new(),
        });
        self.tunnels_mut()
            .insert(tunnel_id.clone(), Arc::new(state));
        Ok(NewTunnel { tunnel_id, secret })
    }

    /// Replaces the source-address allow list of one engine path (`webhooks/…`) of a tunnel.
    /// An empty list lifts the restriction.
    pub async fn set_allowlist(
        &self,
        tunnel_id: &TunnelId,
        path: &str,
        ips: Vec<IpAddr>,
    ) -> Result<(), RelayError> {
        let path =
            tunnel::webhook_path(path).ok_or_else(|| RelayError::InvalidPath(path.into()))?;
        let tunnel = self
            .tunnel(tunnel_id.as_str())
            .ok_or(RelayError::UnknownTunnel)?;
        let mut ips: Vec<IpAddr> = ips.into_iter().map(|ip| ip.to_canonical()).collect();
        ips.sort();
        ips.dedup();
        let _settings = self.inner.settings_lock.lock().await;
        self.inner
            .writer
            .set_allowlist(tunnel.key, path.clone(), ips.clone())
            .await?;
        let mut allow = tunnel.allow.write().unwrap_or_else(|p| p.into_inner());
        allow.retain(|(p, _)| *p != path);
        if !ips.is_empty() {
            allow.push((path, ips));
        }
        Ok(())
    }

    /// The ids of all tunnels.
    pub fn tunnel_ids(&self) -> Vec<TunnelId> {
        let tunnels = self.inner.tunnels.read().unwrap_or_else(|p| p.into_inner());
        let mut ids: Vec<TunnelId> = tunnels.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Picks up tunnels and allow lists another process (the CLI) changed since the last
    /// look. `serve` calls this periodically; cheap when nothing changed.
    pub async fn reload(&self) -> Result<(), RelayError> {
        let _settings = self.inner.settings_lock.lock().await;
        let seen = self.inner.config_version.load(Ordering::Acquire);
        let current = self.inner.readers.read(store::config_version).await?;
        if current == seen {
            return Ok(());
        }
        let rows = self.inner.readers.read(store::load_tunnels).await?;
        let mut tunnels = self.tunnels_mut();
        for row in rows {
            match tunnels.get(row.id.as_str()) {
                Some(existing) => {
                    *existing.allow.write().unwrap_or_else(|p| p.into_inner()) = row.allowlists;
                }
                None => {
                    tunnels.insert(row.id.clone(), Arc::new(TunnelState::from_row(row)));
                }
            }
        }
        self.inner.config_version.store(current, Ordering::Release);
        tracing::info!(tunnels = tunnels.len(), "reloaded tunnels and allow lists");
        Ok(())
    }

    /// Closes every engine link (close code 1001) and refuses new ones. `serve` calls this
    /// when its shutdown future completes.
    pub fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }

    /// Evicts deliveries older than `limits.max_buffered_age` from every tunnel, and tells
    /// the linked engines of those that evicted. `serve` runs it every minute; inserts apply
    /// the bound to their own tunnel as they go.
    pub async fn sweep(&self) -> Result<(), RelayError> {
        let evicted = self.writer().sweep(self.config().clock.now_ms()).await?;
        if evicted.is_empty() {
            return Ok(());
        }
        let tunnels: Vec<Arc<TunnelState>> = {
            let all = self.inner.tunnels.read().unwrap_or_else(|p| p.into_inner());
            all.values()
                .filter(|t| evicted.contains(&t.key))
                .cloned()
                .collect()
        };
        for tunnel in tunnels {
            tracing::warn!(tunnel = %tunnel.id, "evicted deliveries older than the age bound");
            tunnel.wake_link(true);
        }
        Ok(())
    }

    /// How many engine links are attached now.
    pub fn connected_links(&self) -> usize {
        let tunnels = self.inner.tunnels.read().unwrap_or_else(|p| p.into_inner());
        tunnels
            .values()
            .filter(|t| t.link.lock().unwrap_or_else(|p| p.into_inner()).is_some())
            .count()
    }

    /// Takes one token from `client`'s moderator door bucket; `Err(seconds)` says when to
    /// retry.
    pub(crate) fn take_door_client_token(&self, client: IpAddr, now_ms: i64) -> Result<(), u64> {
        let door = &self.inner.config.door;
        let mut clients = self
            .inner
            .door_clients
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if clients.len() >= MAX_DOOR_CLIENTS && !clients.contains_key(&client) {
            // A bucket untouched for a minute is full again: forgetting it changes nothing.
            clients.retain(|_, b| b.as_ref().is_some_and(|b| now_ms - b.last_ms < 60_000));
        }
        let slot = clients.entry(client).or_insert(None);
        take_from(
            slot,
            door.client_rate_per_sec,
            door.client_rate_burst,
            now_ms,
        )
    }

    pub(crate) fn tunnel(&self, id: &str) -> Option<Arc<TunnelState>> {
        let tunnels = self.inner.tunnels.read().unwrap_or_else(|p| p.into_inner());
        tunnels.get(id).cloned()
    }

    fn tunnels_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<TunnelId, Arc<TunnelState>>> {
        self.inner
            .tunnels
            .write()
            .unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn tunnel_count(&self) -> usize {
        self.inner
            .tunnels
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    pub(crate) fn writer(&self) -> &Writer {
        &self.inner.writer
    }

    pub(crate) fn metrics(&self) -> &metrics::Metrics {
        &self.inner.metrics
    }

    pub(crate) fn readers(&self) -> &Arc<Readers> {
        &self.inner.readers
    }

    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }

    pub(crate) fn next_link_id(&self) -> u64 {
        self.inner.next_link_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// How often `serve` applies the age bound to tunnels that receive nothing new.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// The whole relay as an axum app. Serve it with connect info (`SocketAddr`), as [`serve`]
/// does: the allow lists need the peer address.
pub fn router(relay: Relay) -> Router {
    Router::new()
        .route("/h/{tunnel_id}/{*path}", post(hooks::receive))
        .route("/tunnel/{tunnel_id}/connect", get(link::connect))
        .route("/t/{tunnel_id}/{*path}", any(door::door))
        .route("/healthz", get(hooks::healthz))
        .route("/metrics", get(metrics::metrics))
        .fallback(hooks::not_found)
        .with_state(relay)
}

/// Serves the relay on `listener` until `shutdown` completes; then closes engine links and
/// finishes in-flight requests. Also reloads tunnels changed by the CLI every
/// `config.config_poll`.
pub async fn serve(
    relay: Relay,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RelayError> {
    let poller = tokio::spawn(poll_config(relay.clone()));
    let app = router(relay.clone());
    let on_shutdown = relay.clone();
    // Moderator panels and engine links carry small frames both ways: Nagle's algorithm
    // against the peer's delayed acknowledgements would hold each one back up to 40 ms.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let result = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        on_shutdown.shutdown();
    })
    .await;
    relay.shutdown();
    poller.abort();
    result.map_err(RelayError::Io)
}

async fn poll_config(relay: Relay) {
    let mut stop = relay.shutdown_signal();
    let mut tick = tokio::time::interval(relay.config().config_poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = async { let _ = stop.wait_for(|s| *s).await; } => return,
            _ = tick.tick() => {
                if let Err(e) = relay.reload().await {
                    tracing::warn!(error = %e, "cannot reload tunnels");
                }
            }
            _ = sweep.tick() => {
                if let Err(e) = relay.sweep().await {
                    tracing::warn!(error = %e, "cannot apply the buffer's age bound");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> TunnelState {
        TunnelState::from_row(TunnelRow {
            key: 1,
            id: TunnelId::parse("t").expect("valid"),
            digest: TunnelSecret::new("s").digest(),
            allowlists: vec![("webhooks/tv".into(), vec![[10, 0, 0, 1].into()])],
        })
    }

    #[test]
    fn bucket_allows_a_burst_then_refills_at_the_rate() {
        let t = state();
        let limits = Limits {
            rate_per_sec: 2,
            rate_burst: 3,
            ..Limits::default()
        };
        for _ in 0..3 {
            assert!(t.take_token(&limits, 1_000).is_ok());
        }
        assert_eq!(
            t.take_token(&limits, 1_000),
            Err(1),
            "empty bucket: retry in 1 s"
        );
        assert!(
            t.take_token(&limits, 1_500).is_ok(),
            "2/s refills one token in 500 ms"
        );
        assert!(t.take_token(&limits, 1_500).is_err());
    }

    #[test]
    fn allowlists_restrict_only_their_path() {
        let t = state();
        assert!(t.allows("webhooks/tv", [10, 0, 0, 1].into()));
        assert!(!t.allows("webhooks/tv", [10, 0, 0, 2].into()));
        assert!(t.allows("webhooks/other", [10, 0, 0, 2].into()));
    }
}
