//! Stagehand's HTTP server on 127.0.0.1: the one door browsers, OBS, the desktop window and
//! API clients use to reach the engine.
//!
//! [`router`] builds the whole app from an [`AppState`]; [`Server`] binds a listener and serves
//! it until a shutdown future completes. Tests bind `127.0.0.1:0` and drive the real router.
//! Every handler is thin: it checks who is calling, calls one engine method and maps the error.

mod accounts;
pub mod auth;
pub mod error;
pub mod guard;
mod media;
mod moderator_socket;
mod moderators;
mod obs;
mod overlay_socket;
mod overlays;
mod pages;
mod relay;
pub mod relay_door;
pub(crate) mod routes;
mod tts;
mod webhooks;
pub mod ws;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use stagehand_engine::Engine;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::error::{ApiError, ErrorCode};
use crate::guard::Allowed;
use stagehand_engine::ratelimit::RateLimiter;

/// Kernel send buffer per connection.
const SEND_BUFFER_BYTES: usize = 64 * 1024;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// The engine.
    pub engine: Engine,
    /// Host and Origin allow lists.
    pub allowed: Arc<Allowed>,
    /// Sign-in attempts per client.
    pub login_limiter: Arc<RateLimiter<std::net::IpAddr>>,
    /// Moderator link openings per client.
    pub consume_limiter: Arc<RateLimiter<std::net::IpAddr>>,
    /// Throttles the log lines of refused requests.
    pub refusal_log: Arc<guard::RefusalLog>,
    /// `http://127.0.0.1:{port}`.
    pub local_url: String,
    /// Where moderators reach this server: the LAN address with LAN access on, else local_url.
    pub moderator_url: String,
    /// Flips to `true` when the server shuts down; long-lived sockets watch it.
    pub shutdown: watch::Receiver<bool>,
}

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

/// Builds the app for an engine served at `addr`.
pub fn router(state: AppState) -> Router {
    let limit = state.engine.config().security.json_body_limit_bytes;
    Router::new()
        .route("/", get(pages::home))
        .route("/panel/overlays", get(pages::overlays))
        .route("/panel/moderators", get(pages::moderators))
        .route("/panel/accounts", get(pages::accounts_page))
        .route("/panel/webhooks", get(pages::webhooks))
        .route("/panel/settings", get(pages::settings))
        .route("/login", get(routes::login_page))
        .route("/session", post(auth::login))
        .route("/session/logout", post(auth::logout))
        .route("/ui/{file}", get(routes::asset))
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/metrics", get(routes::metrics))
        .route("/api/status", get(routes::status))
        .route("/api/audit", get(routes::audit))
        .route("/ws/events", get(ws::events))
        .route("/overlays", get(overlays::list).post(overlays::create))
        .route(
            "/overlays/{id}",
            get(overlays::get_one)
                .patch(overlays::update)
                .delete(overlays::delete),
        )
        .route("/api/overlays/rotate-key", post(overlays::rotate_key))
        .route(
            "/api/overlays/{id}/scene",
            get(overlays::scene_get).put(overlays::scene_put),
        )
        .route("/api/alerts", post(overlays::alert))
        .route("/api/relay/status", get(relay::status))
        .route("/api/relay/secret", axum::routing::put(relay::secret))
        .route("/api/obs/status", get(obs::status))
        .route("/api/obs/health", get(obs::health))
        .route("/api/obs/scenes", get(obs::scenes))
        .route("/api/obs/scenes/current", post(obs::switch))
        .route("/api/obs/password", axum::routing::put(obs::password))
        .route("/obs/sources", post(obs::source))
        .route("/api/obs/stream/{action}", post(obs::stream))
        .route("/api/obs/record/{action}", post(obs::record))
        .route("/api/moderator-keys/generate", post(moderators::generate))
        .route("/api/moderator-keys/consume", post(moderators::consume))
        .route("/api/moderator-sessions", get(moderators::sessions))
        .route(
            "/api/moderator-sessions/{id}",
            axum::routing::delete(moderators::revoke),
        )
        .route("/m/{key}", get(moderators::link_page))
        .route("/moderator", get(moderators::panel))
        .route("/ws/moderator", get(moderator_socket::socket))
        .route("/auth/{provider}/start", get(accounts::start))
        .route("/auth/{provider}/callback", get(accounts::callback))
        .route("/api/accounts", get(accounts::list))
        .route(
            "/api/accounts/discord/webhook",
            axum::routing::put(accounts::discord_webhook_set)
                .delete(accounts::discord_webhook_delete),
        )
        .route(
            "/api/accounts/{provider}",
            axum::routing::delete(accounts::unlink),
        )
        .route("/api/accounts/{provider}/device", get(accounts::device))
        .route("/api/accounts/{provider}/refresh", post(accounts::refresh))
        .route(
            "/api/accounts/{provider}/client-secret",
            axum::routing::put(accounts::client_secret_set).delete(accounts::client_secret_delete),
        )
        .route(
            "/api/destinations",
            get(accounts::destinations).post(accounts::destination_add),
        )
        .route(
            "/api/destinations/{id}",
            axum::routing::delete(accounts::destination_delete),
        )
        .route("/api/tts/speak", post(tts::speak))
        .route("/tts/{file}", get(tts::audio))
        .route("/api/chat/messages", post(overlays::chat))
        .route("/api/chart/updates", post(overlays::chart))
        .route("/api/metrics/realtime", get(overlays::realtime))
        .route("/o/{id}", get(overlays::page))
        .route("/overlay-assets/{file}", get(overlays::asset))
        .route("/ws/overlay/{id}", get(overlay_socket::upgrade))
        .route(
            "/api/media",
            get(media::list)
                .post(media::upload)
                .layer(media::upload_body_limit(&state)),
        )
        .route("/api/media/{id}", axum::routing::delete(media::delete))
        .route("/media/{id}", get(media::serve))
        .route(
            "/webhooks/tradingview",
            post(webhooks::receive).layer(webhooks::body_limit()),
        )
        .route(
            "/webhooks/custom/{name}",
            post(webhooks::receive).layer(webhooks::body_limit()),
        )
        .route("/api/webhooks", get(webhooks::overview))
        .route("/api/webhooks/deliveries", get(webhooks::deliveries))
        .route(
            "/api/webhooks/tradingview",
            axum::routing::put(webhooks::tradingview_configure),
        )
        .route(
            "/api/webhooks/tradingview/secrets",
            get(webhooks::tradingview_secrets),
        )
        .route(
            "/api/webhooks/tradingview/secrets/{which}",
            axum::routing::delete(webhooks::tradingview_clear),
        )
        .route(
            "/api/webhooks/tradingview/rotate",
            post(webhooks::tradingview_rotate),
        )
        .route("/api/webhooks/custom", post(webhooks::custom_create))
        .route(
            "/api/webhooks/custom/{name}",
            axum::routing::delete(webhooks::custom_delete),
        )
        .route(
            "/api/webhooks/custom/{name}/rotate",
            post(webhooks::custom_rotate),
        )
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this path does not accept that method",
            )
        })
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(state.clone(), guard::guard))
        .layer(middleware::from_fn(guard::lan_surface))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Counts and times every request by route template (never the raw path or query, which may
/// carry keys or signatures), and logs it.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    // A fixed set of labels: any page can send arbitrary method names, and every distinct
    // label would be a series kept forever.
    let method = match *request.method() {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "SAMEORIGIN"),
        // Not `no-referrer`: under it Chromium sends `Origin: null` on form posts, which the
        // Origin guard (rightly) refuses. Overlay pages set `no-referrer` themselves.
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let status = response.status();
    let metrics = state.engine.metrics();
    metrics.counter_add(
        "stagehand_http_requests_total",
        "HTTP requests by route, method and status.",
        &[
            ("route", &route),
            ("method", method),
            ("status", status.as_str()),
        ],
        1,
    );
    metrics.observe(
        "stagehand_http_request_duration_seconds",
        "HTTP request latency by route.",
        &[("route", &route)],
        elapsed,
    );
    if let Some(ErrorCode(code)) = response.extensions().get::<ErrorCode>() {
        metrics.counter_add(
            "stagehand_http_errors_total",
            "Error responses by stable error code.",
            &[("code", code)],
            1,
        );
    }
    let ms = (elapsed * 100_000.0).round() / 100.0;
    let code = status.as_u16();
    if status.is_server_error() {
        tracing::warn!(method, route = %route, status = code, ms, "request");
    } else if status.is_client_error() {
        tracing::info!(method, route = %route, status = code, ms, "request");
    } else if method == "GET" && route == "/" && status.is_success() {
        // `/` answers 200 only to a signed-in streamer (anyone else is sent to `/login`): this
        // line is how an operator, and the desktop smoke test, see the panel has opened.
        tracing::info!(method, route = %route, status = code, ms, "panel served to a signed-in streamer");
    } else {
        tracing::debug!(method, route = %route, status = code, ms, "request");
    }
    response
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
    pub fn relay_door(&self) -> Arc<relay_door::RelayDoor> {
        Arc::new(relay_door::RelayDoor::new(self.state.clone()))
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
