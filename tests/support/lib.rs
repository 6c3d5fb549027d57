//! Shared support for Stagehand's integration tests: a real engine and server on
//! `127.0.0.1:0` over a real SQLite file in a temp dir, a client, and captured logs.
//!
//! Later capabilities add their fakes here (OBS, OAuth providers, relay peers).

#![allow(missing_docs)]

pub mod cli;
pub mod fake_oauth;
pub mod fake_obs;
pub mod page;
pub mod real_obs;
pub mod relay;
pub mod tls_front;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use stagehand_app::{Running, StartError};
use stagehand_engine::clock::{Clock, SystemClock};
use stagehand_engine::config::{Config, ConfigSources};
use stagehand_engine::{Engine, EngineError};

/// Everything every test process logs, at TRACE level, for leak checks.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs (once) a global subscriber capturing all logs, and returns the capture.
pub fn logs() -> CapturedLogs {
    static LOGS: OnceLock<CapturedLogs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = CapturedLogs::default();
        let buf = Arc::clone(&logs.0);
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || LogWriter(Arc::clone(&buf)))
            .try_init();
        logs
    })
    .clone()
}

/// How to start a test app.
pub struct Options {
    pub env: Vec<(String, String)>,
    pub clock: Arc<dyn Clock>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            // OBS tests turn it on with a fake's port; elsewhere nothing should dial 4455.
            env: vec![
                ("STAGEHAND_SECRETS".into(), "file".into()),
                ("STAGEHAND_OBS_ENABLED".into(), "false".into()),
            ],
            clock: Arc::new(SystemClock),
        }
    }
}

impl Options {
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
}

/// A running engine + server on 127.0.0.1:0.
pub struct TestApp {
    pub engine: Engine,
    pub addr: SocketAddr,
    pub url: String,
    pub token: String,
    pub client: reqwest::Client,
    data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    running: Running,
}

pub fn config_for(dir: &Path, env: &[(String, String)]) -> Result<Config, EngineError> {
    Ok(Config::load(&ConfigSources {
        data_dir: Some(dir.to_path_buf()),
        env: env.to_vec(),
        ..ConfigSources::default()
    })?)
}

impl TestApp {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        let temp = tempfile::tempdir().expect("temp dir");
        let dir = temp.path().to_path_buf();
        let mut app = Self::start_in(&dir, options)
            .await
            .expect("test app starts");
        app._temp = Some(temp);
        app
    }

    /// Starts on an existing data dir (for restarts), the way the app starts
    /// (`stagehand_app::start`) on a listener bound to `127.0.0.1:0`.
    pub async fn start_in(dir: &Path, options: Options) -> Result<Self, EngineError> {
        logs();
        let config = config_for(dir, &options.env)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds 127.0.0.1:0");
        let start = stagehand_app::Options {
            clock: options.clock,
            listener: Some(listener),
            // OBS and relay tests start the links themselves, after subscribing to events.
            links: false,
        };
        let running = match stagehand_app::start(config, start).await {
            Ok(running) => running,
            Err(StartError::Engine(e)) => return Err(e),
            Err(e) => panic!("the test app starts: {e}"),
        };
        let engine = running.engine().clone();
        let addr = running.addr();
        let url = running.local_url().to_owned();
        let token = engine
            .secrets()
            .get(stagehand_engine::auth::STREAMER_TOKEN_SECRET)
            .await?
            .expect("the engine creates a streamer token at start")
            .expose()
            .to_owned();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Ok(Self {
            engine,
            addr,
            url,
            token,
            client,
            data_dir: dir.to_path_buf(),
            _temp: None,
            running,
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.at(path))
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.at(path))
    }

    /// A GET with the streamer token.
    pub fn get_as_streamer(&self, path: &str) -> reqwest::RequestBuilder {
        self.get(path).header("x-streamer-token", &self.token)
    }

    /// A POST with the streamer token.
    pub fn post_as_streamer(&self, path: &str) -> reqwest::RequestBuilder {
        self.post(path).header("x-streamer-token", &self.token)
    }

    /// A PUT with the streamer token.
    pub fn put_as_streamer(&self, path: &str) -> reqwest::RequestBuilder {
        self.client
            .put(self.at(path))
            .header("x-streamer-token", &self.token)
    }

    /// GETs a streamer endpoint and parses its JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let response = self.get_as_streamer(path).send().await.expect("request");
        response.json().await.expect("a JSON body")
    }

    /// Saves `layers` as the overlay's scene on top of version `base`; returns the response.
    pub async fn save_scene(
        &self,
        overlay_id: &str,
        base: i64,
        layers: serde_json::Value,
    ) -> reqwest::Response {
        self.put_as_streamer(&format!("/api/overlays/{overlay_id}/scene"))
            .json(&serde_json::json!({ "version": base, "scene": { "layers": layers } }))
            .send()
            .await
            .expect("request")
    }

    /// Creates an overlay (asserting 201) and returns it, `signedUrl` included.
    pub async fn create_overlay(&self, name: &str) -> serde_json::Value {
        let response = self
            .post_as_streamer("/api/overlays")
            .json(&serde_json::json!({ "name": name, "width": 1280, "height": 720 }))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 201, "the overlay is created");
        response.json().await.expect("a JSON body")
    }

    /// The TradingView URL token (`?token=`), revealed as the streamer would.
    pub async fn tradingview_token(&self) -> String {
        let secrets = self.get_json("/api/webhooks/tradingview/secrets").await;
        secrets["token"]
            .as_str()
            .expect("the secrets list the URL token")
            .to_owned()
    }

    /// Stops the server and waits for it to finish; the data dir stays.
    pub async fn stop(&mut self) {
        if let Err(e) = self.running.stop().await {
            panic!("server failed: {e}");
        }
    }

    /// Stops, then starts a new engine and server on the same data dir.
    pub async fn restart(mut self, options: Options) -> Self {
        self.stop().await;
        let temp = self._temp.take();
        let dir = self.data_dir.clone();
        drop(self);
        let mut next = Self::start_in(&dir, options).await.expect("restarts");
        next._temp = temp;
        next
    }
}

/// Reads the error code out of an error response.
pub async fn error_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.expect("error bodies are JSON");
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or("<no code>")
        .to_owned();
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "every error carries a message: {body}"
    );
    (status, code)
}

/// Headless Chromium, driven by `tests/browser/overlay-driver.mjs` over stdin/stdout lines.
pub struct Browser {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl Browser {
    /// Starts the driver (needs `npm ci` in tests/browser and Debian's chromium; `scripts/test`
    /// installs both).
    pub async fn start() -> Self {
        use tokio::io::AsyncBufReadExt;
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
        assert!(
            dir.join("node_modules/playwright-core").exists(),
            "playwright-core is missing: run scripts/test (it runs `npm ci` in tests/browser)"
        );
        let mut child = tokio::process::Command::new("node")
            .arg(dir.join("overlay-driver.mjs"))
            .current_dir(&dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs (scripts/setup test installs it)");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = tokio::io::BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        Self {
            child,
            stdin,
            stdout,
        }
    }

    /// Sends one command and returns its result; panics on `ok: false`.
    pub async fn cmd(&mut self, command: serde_json::Value) -> serde_json::Value {
        let result = self.try_cmd(command.clone()).await;
        assert_eq!(
            result["ok"], true,
            "browser command {command} failed: {result}"
        );
        result
    }

    /// Sends one command and returns its result, failed or not.
    pub async fn try_cmd(&mut self, command: serde_json::Value) -> serde_json::Value {
        use tokio::io::AsyncWriteExt;
        let line = format!("{command}\n");
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("driver stdin");
        self.stdin.flush().await.expect("driver stdin");
        let reply = self
            .stdout
            .next_line()
            .await
            .expect("driver stdout")
            .expect("the driver answers every command");
        serde_json::from_str(&reply).expect("the driver answers in JSON")
    }

    /// Closes the browser.
    pub async fn quit(mut self) {
        let _ = self.try_cmd(serde_json::json!({"cmd": "quit"})).await;
        let _ = self.child.wait().await;
    }
}

/// A client WebSocket, as the tests hold it.
pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The socket URL of an overlay's signed page link.
pub fn socket_url(signed: &str) -> String {
    signed
        .replacen("http://", "ws://", 1)
        .replacen("/o/", "/ws/overlay/", 1)
}

/// Opens an overlay's socket from its signed page link.
pub async fn connect_overlay(signed: &str) -> Socket {
    tokio_tungstenite::connect_async(socket_url(signed))
        .await
        .expect("socket opens")
        .0
}

/// The next JSON text message (pings skipped), within 10 s.
pub async fn next_json(socket: &mut Socket) -> serde_json::Value {
    use futures_util::StreamExt;
    loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")
            .expect("socket open")
            .expect("no socket error");
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
            return serde_json::from_str(&text).expect("JSON text");
        }
    }
}

/// Waits for the close frame and returns its code and reason.
pub async fn closed(socket: &mut Socket) -> (u16, String) {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("closes within 10 s")
        {
            Some(Ok(Message::Close(Some(frame)))) => {
                return (u16::from(frame.code), frame.reason.to_string());
            }
            Some(Ok(Message::Close(None))) | None => return (0, String::new()),
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("socket error instead of a close: {e}"),
        }
    }
}

/// The engine's event bus, as a test subscribes to it.
pub type Events = tokio::sync::broadcast::Receiver<stagehand_engine::protocol::EventEnvelope>;

/// Waits for the next engine event of `kind` (within `seconds`).
pub async fn event_within(events: &mut Events, kind: &str, seconds: u64) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        let e = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("no {kind} event within {seconds} s"))
            .expect("bus open");
        if e.kind == kind {
            return e.data;
        }
    }
}

/// Waits for the next engine event of `kind` (within 10 s).
pub async fn event(events: &mut Events, kind: &str) -> serde_json::Value {
    event_within(events, kind, 10).await
}

/// Waits for the next `obs.status` event whose state is `state` (within `seconds`).
pub async fn obs_status_within(
    events: &mut Events,
    state: &str,
    seconds: u64,
) -> serde_json::Value {
    loop {
        let data = event_within(events, "obs.status", seconds).await;
        if data["state"] == state {
            return data;
        }
    }
}
