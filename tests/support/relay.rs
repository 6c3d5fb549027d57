//! A real `stagehand-relay` in process on `127.0.0.1:0`, with one tunnel, and the helpers the
//! relay end-to-end tests share: posting TradingView notes through the relay's public door and
//! collecting the `alert.show` messages they become on an overlay socket.
//!
//! Used by `tests/relay.rs` and by the CLI's `relay_kill` test, which runs the real
//! `stagehand serve` binary against this relay.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use stagehand_relay::{Clock, DoorLimits, Limits, Relay, RelayConfig, RelayError, SystemClock};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{Options, Socket};

/// The engine path TradingView alerts go to, behind the relay's `/h/{tunnel}/`.
pub const TRADINGVIEW_PATH: &str = "webhooks/tradingview";

/// A relay clock that never moves.
#[derive(Debug, Clone, Copy)]
pub struct FrozenClock(pub i64);

impl Clock for FrozenClock {
    fn now_ms(&self) -> i64 {
        self.0
    }
}

/// A relay serving on a fixed local address, over a temp data dir, with one tunnel.
pub struct TestRelay {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`: what the engine gets as `STAGEHAND_RELAY_URL`.
    pub url: String,
    pub tunnel_id: String,
    pub secret: String,
    pub client: reqwest::Client,
    relay: Relay,
    config: RelayConfig,
    _temp: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), RelayError>>>,
}

impl TestRelay {
    /// A relay with default limits.
    pub async fn start() -> Self {
        Self::start_with(Limits::default()).await
    }

    /// A relay with these public-side limits (tests that send hundreds raise the rate; the
    /// eviction test lowers `max_buffered`).
    pub async fn start_with(limits: Limits) -> Self {
        Self::start_with_clock(limits, Arc::new(SystemClock)).await
    }

    /// A relay with these limits and this clock (a [`FrozenClock`] makes the rate limit
    /// exact: no token refills while the test runs, however slow the machine).
    pub async fn start_with_clock(limits: Limits, clock: Arc<dyn Clock>) -> Self {
        Self::start_configured(|config| {
            config.limits = limits;
            config.clock = clock;
        })
        .await
    }

    /// A relay with these moderator door limits.
    pub async fn start_with_door(door: DoorLimits) -> Self {
        Self::start_configured(|config| config.door = door).await
    }

    /// A relay with whatever `configure` sets on the default configuration.
    pub async fn start_configured(configure: impl FnOnce(&mut RelayConfig)) -> Self {
        crate::logs();
        let temp = tempfile::tempdir().expect("temp dir");
        let mut config = RelayConfig::new(temp.path());
        configure(&mut config);
        let relay = open(config.clone()).await;
        let tunnel = relay.create_tunnel().await.expect("creates a tunnel");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let addr = listener.local_addr().expect("local addr");
        let (stop, task) = spawn_serve(relay.clone(), listener);
        Self {
            addr,
            url: format!("http://{addr}"),
            tunnel_id: tunnel.tunnel_id.as_str().to_owned(),
            secret: tunnel.secret.expose().to_owned(),
            client: reqwest::Client::new(),
            relay,
            config,
            _temp: temp,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// A relay whose rate limit never gets in the way of a test that sends hundreds at once.
    pub async fn start_unthrottled() -> Self {
        Self::start_with(Limits {
            rate_per_sec: 100_000,
            rate_burst: 100_000,
            ..Limits::default()
        })
        .await
    }

    /// The in-process relay (e.g. `connected_links()`).
    pub fn relay(&self) -> &Relay {
        &self.relay
    }

    /// Where the relay keeps its SQLite file.
    pub fn data_dir(&self) -> PathBuf {
        self.config.data_dir.clone()
    }

    /// The environment that points an engine at this relay's tunnel.
    pub fn engine_env(&self) -> Vec<(String, String)> {
        vec![
            ("STAGEHAND_RELAY_URL".into(), self.url.clone()),
            ("STAGEHAND_RELAY_TUNNEL_ID".into(), self.tunnel_id.clone()),
            ("STAGEHAND_RELAY_SECRET".into(), self.secret.clone()),
        ]
    }

    /// Test-app options (the defaults) plus this relay's environment.
    pub fn engine_options(&self) -> Options {
        let mut options = Options::default();
        options.env.extend(self.engine_env());
        options
    }

    /// The moderator door's URL for an engine path (`/moderator`, `/m/{key}`).
    pub fn door_url(&self, path: &str) -> String {
        format!("{}/t/{}{path}", self.url, self.tunnel_id)
    }

    /// The public URL a sender posts to, for an engine path and a query string (may be empty).
    pub fn hook_url(&self, path: &str, query: &str) -> String {
        let mut url = format!("{}/h/{}/{path}", self.url, self.tunnel_id);
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        url
    }

    /// Posts a plain-text TradingView note through the relay with the URL token; the engine
    /// shows it as an alert whose message is `note`. `key` becomes `X-Idempotency-Key`.
    pub async fn post_note(&self, token: &str, note: &str, key: Option<&str>) -> reqwest::Response {
        post_note(
            &self.client,
            &self.hook_url(TRADINGVIEW_PATH, &format!("token={token}")),
            note,
            key,
        )
        .await
    }

    /// Like [`Self::post_note`], asserting the relay's 202 and returning its `seq`.
    pub async fn post_note_accepted(&self, token: &str, note: &str, key: Option<&str>) -> u64 {
        stored_seq(self.post_note(token, note, key).await, note).await
    }

    /// Stops serving, as the relay process going away would: engine links are closed, the
    /// listener is released, and nothing of this relay stays open.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("the relay task does not panic")
                .expect("the relay stops cleanly");
        }
    }

    /// Stops, then opens the same data dir again and serves on the same address: what a
    /// restarted relay process looks like to senders and to the engine.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.relay = open(self.config.clone()).await;
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("the relay's port is free again after it stopped");
        let (stop, task) = spawn_serve(self.relay.clone(), listener);
        self.stop = Some(stop);
        self.task = Some(task);
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// `Relay::open` reads and migrates SQLite: blocking work, off the runtime.
async fn open(config: RelayConfig) -> Relay {
    tokio::task::spawn_blocking(move || Relay::open(config))
        .await
        .expect("open does not panic")
        .expect("the relay opens its data dir")
}

fn spawn_serve(
    relay: Relay,
    listener: TcpListener,
) -> (oneshot::Sender<()>, JoinHandle<Result<(), RelayError>>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(stagehand_relay::serve(relay, listener, async move {
        let _ = stopped.await;
    }));
    (stop, task)
}

/// Posts a plain-text TradingView note to a relay hook URL (see [`TestRelay::post_note`]).
pub async fn post_note(
    client: &reqwest::Client,
    hook_url: &str,
    note: &str,
    key: Option<&str>,
) -> reqwest::Response {
    let mut request = client
        .post(hook_url)
        .header("content-type", "text/plain")
        .body(note.to_owned());
    if let Some(key) = key {
        request = request.header("x-idempotency-key", key);
    }
    request.send().await.expect("the relay answers")
}

/// Asserts the relay's 202 (stored) and returns the delivery's sequence number.
pub async fn stored_seq(response: reqwest::Response, what: &str) -> u64 {
    let status = response.status();
    let body: serde_json::Value = response.json().await.expect("a JSON body");
    assert_eq!(
        status, 202,
        "the relay stores every webhook within its limits ({what}): {body}"
    );
    body["seq"].as_u64().expect("202 carries the sequence")
}

/// The next JSON text message on a socket (pings skipped), within `seconds`.
pub async fn next_json_within(socket: &mut Socket, seconds: u64) -> serde_json::Value {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .unwrap_or_else(|_| panic!("no message on the socket within {seconds} s"))
            .expect("socket open")
            .expect("no socket error");
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
            return serde_json::from_str(&text).expect("JSON text");
        }
    }
}

/// The next `alert.show` on an overlay socket within `seconds`, skipping other messages
/// (`chart.update`, scene updates).
pub async fn next_alert_within(socket: &mut Socket, seconds: u64) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let message = next_json_within(socket, left.as_secs().max(1)).await;
        if message["type"] == "alert.show" {
            return message;
        }
    }
}

/// What an overlay page was shown, by alert id: the message (our note) and how many times
/// the id was pushed.
#[derive(Debug, Default)]
pub struct SeenAlerts {
    /// alert id → (message, times pushed).
    pub by_id: HashMap<String, (String, usize)>,
}

impl SeenAlerts {
    /// Records one `alert.show`.
    pub fn record(&mut self, alert: &serde_json::Value) {
        let id = alert["id"].as_str().expect("alerts carry an id").to_owned();
        let message = alert["message"].as_str().unwrap_or_default().to_owned();
        let entry = self.by_id.entry(id).or_insert((message, 0));
        entry.1 += 1;
    }

    /// Distinct alert ids seen.
    pub fn distinct(&self) -> usize {
        self.by_id.len()
    }

    /// Pushes of an id beyond its first.
    pub fn repeats(&self) -> usize {
        self.by_id.values().map(|(_, n)| n - 1).sum()
    }

    /// Reads `alert.show` messages until `distinct` alert ids have been seen, allowing
    /// `seconds` in total.
    pub async fn collect_until(&mut self, socket: &mut Socket, distinct: usize, seconds: u64) {
        assert!(
            self.try_collect_until(socket, distinct, seconds).await,
            "only {} of {distinct} alerts reached the page within {seconds} s",
            self.distinct()
        );
    }

    /// Like [`Self::collect_until`], but answers `false` on timeout so the caller can say
    /// more about what is missing.
    pub async fn try_collect_until(
        &mut self,
        socket: &mut Socket,
        distinct: usize,
        seconds: u64,
    ) -> bool {
        use futures_util::StreamExt;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
        while self.distinct() < distinct {
            let Ok(message) = tokio::time::timeout_at(deadline, socket.next()).await else {
                return false;
            };
            let message = message.expect("socket open").expect("no socket error");
            if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
                let message: serde_json::Value = serde_json::from_str(&text).expect("JSON text");
                if message["type"] == "alert.show" {
                    self.record(&message);
                    // As overlay.js does: the page says it has the alert.
                    use futures_util::SinkExt;
                    let seen = serde_json::json!({ "type": "alert.seen", "id": message["id"] });
                    let _ = socket
                        .send(tokio_tungstenite::tungstenite::Message::Text(
                            seen.to_string().into(),
                        ))
                        .await;
                }
            }
        }
        true
    }

    /// Asserts that the notes `expected` map one-to-one onto distinct alert ids: every note
    /// was shown, under exactly one alert id, and nothing else was shown.
    pub fn assert_one_alert_per_note(&self, expected: &[String]) {
        let mut ids_per_note: HashMap<&str, Vec<&str>> = HashMap::new();
        for (id, (message, _)) in &self.by_id {
            ids_per_note.entry(message).or_default().push(id);
        }
        for note in expected {
            match ids_per_note.get(note.as_str()).map(Vec::as_slice) {
                Some([_]) => {}
                Some(ids) => panic!(
                    "webhook {note:?} became {} different alerts {ids:?}: the engine processed \
                     one relay delivery twice",
                    ids.len()
                ),
                None => panic!("webhook {note:?} was stored by the relay but never shown"),
            }
        }
        assert_eq!(
            ids_per_note.len(),
            expected.len(),
            "nothing but the sent webhooks was shown"
        );
    }
}

/// Waits for the next `relay.status` event whose state is `state` (within `seconds`).
pub async fn relay_status_within(
    events: &mut crate::Events,
    state: &str,
    seconds: u64,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(
            !left.is_zero(),
            "the relay link did not reach {state:?} within {seconds} s"
        );
        let data = crate::event_within(events, "relay.status", left.as_secs().max(1)).await;
        if data["state"] == state {
            return data;
        }
    }
}

/// Opens an overlay's socket from its signed page link and reads past its first
/// `scene.full`, so what follows is what the test caused.
pub async fn connect_page(signed: &str) -> Socket {
    let mut page = crate::connect_overlay(signed).await;
    let first = next_json_within(&mut page, 10).await;
    assert_eq!(first["type"], "scene.full", "a page starts with its scene");
    page
}
