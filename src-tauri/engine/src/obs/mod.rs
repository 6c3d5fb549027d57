//! OBS Studio over obs-websocket v5 (through obws): a connection that heals itself.
//!
//! A supervisor task owns the connection: connecting → identified → lost → connecting again,
//! with jittered backoff capped at a few seconds, forever. It never panics or blocks when OBS is
//! absent, too old or the password is wrong; it records the state and the last error in plain
//! words for `GET /api/obs/status`. OBS events go onto the engine's event bus. Operations borrow
//! the current client and fail with `obs_not_connected` when there is none.

mod ops;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::Notify;

use crate::clock::rfc3339;
use crate::{Engine, EngineError, Secret};

/// Name of the OBS password in the secret store.
pub const PASSWORD_SECRET: &str = "obs-password";
/// Longest wait between reconnection attempts: OBS is back about a second after a restart, and
/// a refused connection to localhost costs nothing, so waiting longer only delays recovery.
const BACKOFF_CAP: Duration = Duration::from_secs(1);
/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

pub use ops::{SourceKind, SourceRequest, SourceResult};

/// How long a request answered 207 NotReady is retried: OBS opens its websocket port before
/// it has finished loading and answers NotReady for about half a second.
const NOT_READY_PATIENCE: Duration = Duration::from_secs(3);

/// Runs an obs-websocket request, retrying it while OBS answers 207 NotReady (for at most
/// [`NOT_READY_PATIENCE`]); any other answer is returned as it is.
pub(crate) async fn when_ready<T, F, Fut>(mut request: F) -> Result<T, obws::error::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, obws::error::Error>>,
{
    let deadline = tokio::time::Instant::now() + NOT_READY_PATIENCE;
    let mut delay = Duration::from_millis(50);
    loop {
        match request().await {
            Err(obws::error::Error::Api {
                code: obws::responses::StatusCode::NotReady,
                ..
            }) if tokio::time::Instant::now() + delay < deadline => {
                tracing::debug!("OBS is not ready yet; retrying the request");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_millis(400));
            }
            other => return other,
        }
    }
}

/// Errors of OBS operations.
#[derive(Debug, thiserror::Error)]
pub enum ObsError {
    /// No identified connection right now.
    #[error("Stagehand is not connected to OBS right now ({0})")]
    NotConnected(String),
    /// OBS refused the request.
    #[error("OBS refused the request: {0}")]
    Refused(String),
    /// A field is missing or out of range.
    #[error("{0}")]
    Invalid(String),
    /// This OBS was built without the browser source plugin.
    #[error(
        "this OBS has no browser source (the obs-browser plugin is missing); install OBS with \
         browser source support, or add the overlay link by hand as a browser source"
    )]
    NoBrowserSource,
}

/// Where the connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionState {
    /// `obs.enabled = false`.
    Disabled,
    /// Trying to connect.
    Connecting,
    /// Connected and identified; requests and events flow.
    Identified,
    /// Was connected (or never managed to); retrying.
    Lost,
}

/// What `GET /api/obs/status` shows.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObsStatus {
    /// Connection state.
    pub state: ConnectionState,
    /// `host:port` of obs-websocket.
    pub address: String,
    /// OBS Studio version, once identified.
    pub obs_version: Option<String>,
    /// obs-websocket version, once identified.
    pub websocket_version: Option<String>,
    /// The last problem, in plain words.
    pub last_error: Option<String>,
    /// Since when the state holds (RFC 3339).
    pub since: String,
    /// Connection attempts so far.
    pub attempts: u64,
}

/// Stream health, read from OBS every `obs.health_interval_ms` while connected.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObsHealth {
    /// Whether OBS is streaming.
    pub live: bool,
    /// Output bitrate over the last interval (from output bytes), kbit/s; `null` when not live
    /// or on the first reading.
    pub bitrate_kbps: Option<f64>,
    /// Frames the stream output dropped.
    pub dropped_frames: u32,
    /// Frames the stream output handled.
    pub total_frames: u32,
    /// Network congestion, 0-1.
    pub congestion: f32,
    /// Whether the output is reconnecting.
    pub reconnecting: bool,
    /// OBS's CPU use, percent.
    pub cpu_percent: f64,
    /// Frames OBS skipped rendering (render lag).
    pub render_skipped_frames: u32,
    /// Frames rendered.
    pub render_total_frames: u32,
    /// Frames skipped by the encoder (output lag).
    pub output_skipped_frames: u32,
    /// Frames encoded.
    pub output_total_frames: u32,
    /// When read (RFC 3339).
    pub at: String,
}

/// The OBS side of the engine.
pub struct ObsLink {
    status: Mutex<ObsStatus>,
    health: Mutex<Option<ObsHealth>>,
    client: Mutex<Option<Arc<obws::Client>>>,
    wake: Notify,
}

impl std::fmt::Debug for ObsLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObsLink").finish_non_exhaustive()
    }
}

impl ObsLink {
    pub(crate) fn new(address: String, enabled: bool, now_ms: i64) -> Self {
        Self {
            status: Mutex::new(ObsStatus {
                state: if enabled {
                    ConnectionState::Connecting
                } else {
                    ConnectionState::Disabled
                },
                address,
                obs_version: None,
                websocket_version: None,
                last_error: None,
                since: rfc3339(now_ms),
                attempts: 0,
            }),
            client: Mutex::new(None),
            health: Mutex::new(None),
            wake: Notify::new(),
        }
    }

    fn update(&self, f: impl FnOnce(&mut ObsStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()));
    }

    fn client(&self) -> Option<Arc<obws::Client>> {
        self.client
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Explains a connection failure in words a streamer can act on.
fn describe(err: &obws::error::Error, address: &str) -> String {
    use obws::error::Error;
    match err {
        Error::Connect(_) => format!(
            "OBS is not reachable at {address}: is OBS running with its WebSocket server on \
             (Tools → WebSocket Server Settings)?"
        ),
        Error::Timeout => format!("OBS at {address} did not answer in time"),
        Error::Handshake(h) => {
            let text = h.to_string();
            if text.contains("4009") || text.to_lowercase().contains("authentication") {
                "wrong OBS WebSocket password (OBS closed the connection: authentication failed); \
                 set it in Stagehand's settings or STAGEHAND_OBS_PASSWORD"
                    .to_owned()
            } else {
                format!("the handshake with OBS failed: {text}")
            }
        }
        Error::ObsStudioVersion(found, needed) => format!(
            "OBS {found} is too old for Stagehand: it needs OBS Studio {needed} (30.2 or newer)"
        ),
        Error::ObsWebsocketVersion(found, needed) => {
            format!("obs-websocket {found} is too old for Stagehand: it needs {needed}")
        }
        other => other.to_string(),
    }
}

pub(crate) fn jitter(base: Duration) -> Duration {
    let mut b = [0u8; 2];
    let _ = crate::random::fill(&mut b);
    let spread = f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX); // 0..1
    base.mul_f64(0.75 + spread * 0.5)
}

impl Engine {
    /// The OBS connection's status.
    pub fn obs_status(&self) -> ObsStatus {
        self.inner
            .obs
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Stores a new OBS password in the secret store and reconnects with it.
    pub async fn obs_set_password(&self, password: Secret) -> Result<(), EngineError> {
        if password.expose().len() > 256 {
            return Err(
                ObsError::Invalid("the password is longer than 256 characters".into()).into(),
            );
        }
        self.secrets().set(PASSWORD_SECRET, password).await?;
        if let Some(client) = self
            .inner
            .obs
            .client
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            drop(client);
        }
        self.inner.obs.wake.notify_one();
        Ok(())
    }

    async fn obs_password(&self) -> Option<Secret> {
        if let Some(p) = &self.config().obs_password {
            return Some(p.clone());
        }
        self.secrets().get(PASSWORD_SECRET).await.ok().flatten()
    }

    /// Starts the supervisor that keeps Stagehand connected to OBS (does nothing when
    /// `obs.enabled` is false). Call once, from inside the runtime.
    pub fn obs_start(&self) {
        if !self.config().obs.enabled {
            return;
        }
        let engine = self.clone();
        tokio::spawn(async move { engine.obs_supervise().await });
    }

    async fn obs_supervise(self) {
        let link = &self.inner.obs;
        let (host, port) = (self.config().obs.host.clone(), self.config().obs.port);
        let address = format!("{host}:{port}");
        let mut backoff = Duration::from_millis(250);
        loop {
            link.update(|s| s.attempts += 1);
            let password = self.obs_password().await;
            let config = obws::client::ConnectConfig {
                host: host.as_str(),
                port,
                password: password.as_ref().map(Secret::expose),
                event_subscriptions: None,
                broadcast_capacity: 128,
                connect_timeout: CONNECT_TIMEOUT,
                dangerous: None,
            };
            match obws::Client::connect_with_config(config).await {
                Ok(client) => {
                    backoff = Duration::from_millis(250);
                    let client = Arc::new(client);
                    let general = client.general();
                    let version = when_ready(|| general.version()).await.ok();
                    let events = client.events();
                    *link.client.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(Arc::clone(&client));
                    let now = self.now_ms();
                    link.update(|s| {
                        s.state = ConnectionState::Identified;
                        s.last_error = None;
                        s.since = rfc3339(now);
                        s.obs_version = version.as_ref().map(|v| v.obs_studio_version.to_string());
                        s.websocket_version = version
                            .as_ref()
                            .map(|v| v.obs_web_socket_version.to_string());
                    });
                    tracing::info!(address = %address, "connected to OBS");
                    self.obs_publish_status();
                    self.events()
                        .publish("obs.connected", serde_json::json!({ "address": address }));
                    let poller = tokio::spawn(self.clone().obs_poll_health(Arc::clone(&client)));
                    if let Ok(mut events) = events {
                        loop {
                            tokio::select! {
                                event = events.next() => match event {
                                    Some(event) => self.obs_forward(event),
                                    None => break,
                                },
                                () = link.wake.notified() => break,
                            }
                        }
                    }
                    poller.abort();
                    link.client.lock().unwrap_or_else(|p| p.into_inner()).take();
                    drop(client);
                    let now = self.now_ms();
                    link.update(|s| {
                        s.state = ConnectionState::Lost;
                        s.since = rfc3339(now);
                        s.last_error = Some("the connection to OBS was lost; reconnecting".into());
                    });
                    tracing::warn!(address = %address, "lost the connection to OBS");
                    self.obs_publish_status();
                    self.events().publish(
                        "obs.disconnected",
                        serde_json::json!({ "address": address }),
                    );
                }
                Err(e) => {
                    let words = describe(&e, &address);
                    let now = self.now_ms();
                    link.update(|s| {
                        if s.state != ConnectionState::Lost {
                            s.since = rfc3339(now);
                        }
                        s.state = ConnectionState::Lost;
                        s.last_error = Some(words.clone());
                    });
                    tracing::debug!(error = %words, "OBS connection attempt failed");
                    self.obs_publish_status();
                    tokio::select! {
                        () = tokio::time::sleep(jitter(backoff)) => {}
                        () = link.wake.notified() => {}
                    }
                    backoff = (backoff * 2).min(BACKOFF_CAP);
                }
            }
        }
    }

    /// The last stream health reading, if any.
    pub fn obs_health(&self) -> Option<ObsHealth> {
        self.inner
            .obs
            .health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    async fn obs_poll_health(self, client: Arc<obws::Client>) {
        let period = Duration::from_millis(self.config().obs.health_interval_ms);
        let mut tick = tokio::time::interval(period);
        let mut last: Option<(u64, std::time::Instant)> = None;
        loop {
            tick.tick().await;
            let (Ok(stream), Ok(stats)) = (
                client.streaming().status().await,
                client.general().stats().await,
            ) else {
                continue;
            };
            let now = std::time::Instant::now();
            let bitrate = match last {
                Some((bytes, at)) if stream.active && stream.bytes >= bytes => {
                    let secs = now.duration_since(at).as_secs_f64();
                    (secs > 0.0).then(|| (stream.bytes - bytes) as f64 * 8.0 / 1000.0 / secs)
                }
                _ => None,
            };
            last = stream.active.then_some((stream.bytes, now));
            let health = ObsHealth {
                live: stream.active,
                bitrate_kbps: bitrate,
                dropped_frames: stream.skipped_frames,
                total_frames: stream.total_frames,
                congestion: stream.congestion,
                reconnecting: stream.reconnecting,
                cpu_percent: stats.cpu_usage,
                render_skipped_frames: stats.render_skipped_frames,
                render_total_frames: stats.render_total_frames,
                output_skipped_frames: stats.output_skipped_frames,
                output_total_frames: stats.output_total_frames,
                at: rfc3339(self.now_ms()),
            };
            let m = self.metrics();
            let gauges: [(&'static str, &'static str, f64); 7] = [
                (
                    "stagehand_obs_live",
                    "1 while OBS is streaming.",
                    f64::from(u8::from(health.live)),
                ),
                (
                    "stagehand_obs_bitrate_kbps",
                    "Stream output bitrate, kbit/s.",
                    health.bitrate_kbps.unwrap_or(0.0),
                ),
                (
                    "stagehand_obs_dropped_frames",
                    "Frames the stream output dropped.",
                    f64::from(health.dropped_frames),
                ),
                (
                    "stagehand_obs_congestion",
                    "Stream congestion, 0-1.",
                    f64::from(health.congestion),
                ),
                (
                    "stagehand_obs_cpu_percent",
                    "OBS CPU use, percent.",
                    health.cpu_percent,
                ),
                (
                    "stagehand_obs_render_skipped_frames",
                    "Frames OBS skipped rendering (render lag).",
                    f64::from(health.render_skipped_frames),
                ),
                (
                    "stagehand_obs_output_skipped_frames",
                    "Frames the encoder skipped (output lag).",
                    f64::from(health.output_skipped_frames),
                ),
            ];
            for (name, help, value) in gauges {
                m.gauge_set(name, help, &[], value);
            }
            self.events().publish(
                "obs.health",
                serde_json::to_value(&health).unwrap_or_default(),
            );
            *self
                .inner
                .obs
                .health
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(health);
        }
    }

    /// Announces the connection status (state, last error) on the event bus.
    fn obs_publish_status(&self) {
        let status = serde_json::to_value(self.obs_status()).unwrap_or_default();
        self.events().publish("obs.status", status);
    }

    fn obs_forward(&self, event: obws::events::Event) {
        use obws::events::Event;
        let (kind, data) = match event {
            Event::CurrentProgramSceneChanged { id } => {
                ("obs.scene.changed", serde_json::json!({ "scene": id.name }))
            }
            Event::StreamStateChanged { active, .. } => {
                ("obs.stream.state", serde_json::json!({ "active": active }))
            }
            Event::RecordStateChanged { active, path, .. } => (
                "obs.record.state",
                serde_json::json!({ "active": active, "path": path }),
            ),
            Event::ExitStarted => ("obs.exiting", serde_json::json!({})),
            _ => return,
        };
        self.events().publish(kind, data);
    }

    pub(crate) fn obs_client(&self) -> Result<Arc<obws::Client>, EngineError> {
        self.inner.obs.client().ok_or_else(|| {
            let status = self.obs_status();
            ObsError::NotConnected(
                status
                    .last_error
                    .unwrap_or_else(|| "still connecting".into()),
            )
            .into()
        })
    }

    /// OBS's scenes and the current program scene.
    pub async fn obs_scenes(&self) -> Result<serde_json::Value, EngineError> {
        let client = self.obs_client()?;
        let scenes = client.scenes();
        let scenes = when_ready(|| scenes.list())
            .await
            .map_err(|e| ObsError::Refused(e.to_string()))?;
        let mut list: Vec<_> = scenes.scenes.iter().collect();
        // OBS lists scenes bottom-up; show them as the OBS window does.
        list.sort_by_key(|s| std::cmp::Reverse(s.index));
        Ok(serde_json::json!({
            "current": scenes.current_program_scene.map(|s| s.name),
            "scenes": list.iter().map(|s| s.id.name.clone()).collect::<Vec<_>>(),
        }))
    }

    /// Switches the program scene.
    pub async fn obs_switch_scene(&self, scene: &str) -> Result<(), EngineError> {
        if scene.is_empty() || scene.chars().count() > 256 {
            return Err(ObsError::Invalid("scene must be 1-256 characters".into()).into());
        }
        let client = self.obs_client()?;
        let scenes = client.scenes();
        when_ready(|| scenes.set_current_program_scene(scene))
            .await
            .map_err(|e| ObsError::Refused(e.to_string()))?;
        Ok(())
    }
}
