//! Stagehand's one startup: open the engine, bind its local server, install the server as the
//! relay door's handler, start the background links (OBS, relay) and serve.
//!
//! The desktop shell, `stagehand serve` and the integration tests all start Stagehand through
//! [`start`], so what runs in the app is what the tests run. Tests pass a listener they bound
//! on `127.0.0.1:0` and a clock of their own (atuin's `launch_with_tcp_listener` does the
//! same); the shell and the CLI bind the configured port. The engine's own background tasks
//! (notices, webhook announcements, account token refresh) start inside [`Engine::open`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use stagehand_engine::clock::{Clock, SystemClock};
use stagehand_engine::config::Config;
use stagehand_engine::{Engine, EngineError};
use stagehand_server::{Server, ServerError};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How to start.
pub struct Options {
    /// The engine's clock.
    pub clock: Arc<dyn Clock>,
    /// A listener the caller bound (tests: `127.0.0.1:0`); `None` binds the configured port.
    pub listener: Option<TcpListener>,
    /// Whether to start the OBS connection and the relay link now. Tests that watch them
    /// start them themselves, after subscribing to the engine's events.
    pub links: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            listener: None,
            links: true,
        }
    }
}

/// Starting failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The engine could not open (store, secrets, configuration).
    #[error("starting the engine: {0}")]
    Engine(#[source] EngineError),
    /// The server could not bind (the message says what to do when the port is taken).
    #[error(transparent)]
    Server(#[from] ServerError),
}

/// A started Stagehand: the engine, and its server serving in a task of its own.
pub struct Running {
    engine: Engine,
    addr: SocketAddr,
    local_url: String,
    lan_url: Option<String>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<Result<(), ServerError>>>,
    /// The relay door's handler: the engine holds it weakly (it holds the engine), so it lives
    /// as long as this.
    _relay_door: Arc<stagehand_server::relay_door::RelayDoor>,
}

/// Starts Stagehand: the engine, its server (serving at once), the relay door's handler and,
/// with [`Options::links`], the OBS connection and the relay link.
pub async fn start(config: Config, options: Options) -> Result<Running, StartError> {
    let engine = Engine::open(config, options.clock)
        .await
        .map_err(StartError::Engine)?;
    let server = match options.listener {
        Some(listener) => Server::from_listener(engine.clone(), listener)?,
        None => Server::bind_configured(engine.clone()).await?,
    };
    let addr = server.local_addr();
    let local_url = server.local_url();
    let lan_url = server.lan_url();
    let relay_door = server.relay_door();
    engine.relay_door_install(relay_door.clone());
    if options.links {
        engine.obs_start();
        engine.relay_start();
    }
    let (stop, mut stopping) = watch::channel(false);
    let task = tokio::spawn(server.serve(async move {
        // A dropped sender stops the server as well.
        let _ = stopping.wait_for(|stop| *stop).await;
    }));
    tracing::debug!(url = %local_url, "started");
    Ok(Running {
        engine,
        addr,
        local_url,
        lan_url,
        stop,
        task: Some(task),
        _relay_door: relay_door,
    })
}

impl Running {
    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:{port}`.
    pub fn local_url(&self) -> &str {
        &self.local_url
    }

    /// The LAN address moderators use, when LAN access is on and one exists.
    pub fn lan_url(&self) -> Option<&str> {
        self.lan_url.as_deref()
    }

    /// Asks the server to stop: sockets close (1001), in-flight requests finish, and the relay
    /// door answers that Stagehand is offline. [`Running::stopped`] says when it is done.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }

    /// A future that asks the server to stop when `signal` completes (Ctrl-C, the app quitting).
    pub fn shutdown_on(&self, signal: impl Future<Output = ()> + Send + 'static) {
        let stop = self.stop.clone();
        tokio::spawn(async move {
            signal.await;
            let _ = stop.send(true);
        });
    }

    /// Waits until the server has stopped, whether asked to or because serving failed. Called
    /// again after it returned, it returns `Ok` at once.
    pub async fn stopped(&mut self) -> Result<(), ServerError> {
        let Some(task) = self.task.as_mut() else {
            return Ok(());
        };
        let outcome = task.await;
        self.task = None;
        match outcome {
            Ok(result) => result,
            Err(e) => Err(ServerError::Serve(std::io::Error::other(e.to_string()))),
        }
    }

    /// Stops the server and waits for it.
    pub async fn stop(&mut self) -> Result<(), ServerError> {
        self.shutdown();
        self.stopped().await
    }
}
