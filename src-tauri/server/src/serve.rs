//! Binding and serving: [`Server::bind`] picks the address and builds the [`AppState`] (allow
//! lists, rate limiters, the URLs moderators and OBS are given); [`Server::serve`] runs the
//! router until shutdown; [`Server::relay_door`] serves the relay's moderator door with the
//! same router, in process.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::serve::ListenerExt as _;
use stagehand_engine::Engine;
use stagehand_engine::ratelimit::RateLimiter;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::allowed::Allowed;
use crate::relay_door::RelayDoor;
use crate::routes::router;
use crate::state::AppState;

/// Kernel send buffer per connection.
const SEND_BUFFER_BYTES: usize = 64 * 1024;

/// Errors starting or running the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The port could not be bound.
    #[error("cannot listen on {addr}: {reason}{hint}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error, in words.
        reason: String,
        /// What to do about it.
        hint: &'static str,
    },
    /// Serving failed.
    #[error("server error: {0}")]
    Serve(#[from] std::io::Error),
}

/// This machine's private LAN IPv4 addresses: 192.168.x first (home networks), then 10.x, then
/// 172.16-31.x (often Docker or VPN bridges). Public and shared (CGNAT, VPN) addresses are
/// never offered. Nothing is sent anywhere to find them.
pub fn lan_addresses() -> Vec<std::net::Ipv4Addr> {
    let mut found: Vec<std::net::Ipv4Addr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| match i.ip() {
            std::net::IpAddr::V4(v4) if v4.is_private() => Some(v4),
            _ => None,
        })
        .collect();
    found.sort_by_key(|ip| {
        (
            match ip.octets()[0] {
                192 => 0,
                10 => 1,
                _ => 2,
            },
            *ip,
        )
    });
    found.dedup();
    found
}

/// A bound, not yet serving, server.
pub struct Server {
    listener: TcpListener,
    state: AppState,
    shutdown_tx: watch::Sender<bool>,
}

impl Server {
    /// Binds the configured port: on 127.0.0.1, or on every interface with LAN access on.
    pub async fn bind_configured(engine: Engine) -> Result<Self, ServerError> {
        let port = engine.config().server.port;
        let ip = if engine.config().server.lan_access {
            Ipv4Addr::UNSPECIFIED
        } else {
            Ipv4Addr::LOCALHOST
        };
        Self::bind(engine, SocketAddr::from((ip, port))).await
    }

    /// Binds `addr` (tests use `127.0.0.1:0`).
    pub async fn bind(engine: Engine, addr: SocketAddr) -> Result<Self, ServerError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| ServerError::Bind {
                addr,
                hint: if e.kind() == std::io::ErrorKind::AddrInUse {
                    " (is Stagehand already running? Stop it, or pick another port: --port, \
                 STAGEHAND_PORT or server.port in config.toml)"
                } else {
                    ""
                },
                reason: e.to_string(),
            })?;
        Self::from_listener(engine, listener)
    }

    /// Serves on a listener the caller bound (tests bind `127.0.0.1:0`).
    pub fn from_listener(engine: Engine, listener: TcpListener) -> Result<Self, ServerError> {
        let local = listener.local_addr()?;
        let config = engine.config();
        let lan: Vec<String> = if !config.server.lan_access {
            Vec::new()
        } else if !config.server.lan_address.trim().is_empty() {
            vec![config.server.lan_address.trim().to_owned()]
        } else {
            lan_addresses().iter().map(ToString::to_string).collect()
        };
        let mut hosts = config.server.allowed_hosts.clone();
        hosts.extend(lan.iter().map(|ip| format!("{ip}:{}", local.port())));
        let local_url = format!("http://127.0.0.1:{}", local.port());
        let moderator_url = lan.first().map_or_else(
            || local_url.clone(),
            |ip| format!("http://{ip}:{}", local.port()),
        );
        let allowed = Allowed::new(
            local.port(),
            &hosts,
            &config.security.allowed_origins,
            config.security.strict_origin,
        );
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let state = AppState {
            login_limiter: Arc::new(RateLimiter::new(config.security.login_attempts_per_minute)),
            allowed: Arc::new(allowed),
            refusal_log: Arc::default(),
            consume_limiter: Arc::new(RateLimiter::new(
                config.moderators.consume_attempts_per_minute,
            )),
            local_url,
            moderator_url,
            shutdown: shutdown_rx,
            engine,
        };
        Ok(Self {
            listener,
            state,
            shutdown_tx,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
    }

    /// `http://127.0.0.1:{port}`.
    pub fn local_url(&self) -> String {
        self.state.local_url.clone()
    }

    /// What serves the relay's moderator door in process: this server's router, with its
    /// state (the startup installs it in the engine).
    pub fn relay_door(&self) -> Arc<RelayDoor> {
        Arc::new(RelayDoor::new(self.state.clone()))
    }

    /// The LAN address moderators use, when LAN access is on and one exists.
    pub fn lan_url(&self) -> Option<String> {
        (self.state.moderator_url != self.state.local_url).then(|| self.state.moderator_url.clone())
    }

    /// Serves until `shutdown` completes, then closes sockets and finishes in-flight requests.
    ///
    /// Accepted connections get TCP_NODELAY (overlay messages are small and latency-bound) and
    /// a bounded kernel send buffer, so a page that stops reading backs up into its own queue,
    /// where the hub notices it, instead of into megabytes of kernel memory.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let app = router(self.state);
        let tx = self.shutdown_tx;
        let listener = self.listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
            let _ = socket2::SockRef::from(&*tcp).set_send_buffer_size(SEND_BUFFER_BYTES);
        });
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = tx.send(true);
        })
        .await?;
        Ok(())
    }
}
