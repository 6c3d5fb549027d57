//! A real relay on `127.0.0.1:0` over a real SQLite file, an HTTP client for the public side
//! and a WebSocket client that plays the engine.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use stagehand_protocol::relay::{EngineMessage, LAST_SEQ_HEADER, RelayMessage, connect_path};
use stagehand_relay::{Clock, NewTunnel, Relay, RelayConfig};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// A clock tests move by hand.
#[derive(Debug, Default)]
pub struct ManualClock(pub AtomicI64);

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Captured log output of the whole test binary.
pub fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = Arc::clone(&buf);
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || LogWriter(Arc::clone(&writer)))
            .try_init();
        buf
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A temp data dir plus a relay config over it.
pub fn config() -> (tempfile::TempDir, RelayConfig) {
    logs();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = RelayConfig::new(dir.path());
    (dir, config)
}

/// A relay served on 127.0.0.1:0.
pub struct TestRelay {
    pub relay: Relay,
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), stagehand_relay::RelayError>>>,
}

impl TestRelay {
    pub async fn start(config: RelayConfig) -> Self {
        let relay = Relay::open(config).expect("relay opens");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(stagehand_relay::serve(relay.clone(), listener, async {
            let _ = stopped.await;
        }));
        Self {
            relay,
            addr,
            http: reqwest::Client::new(),
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// Stops serving and waits for the server to finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(WAIT, server)
                .await
                .expect("server stops in time")
                .expect("server task")
                .expect("server ran cleanly");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn tunnel(&self) -> NewTunnel {
        self.relay.create_tunnel().await.expect("tunnel created")
    }

    /// Posts `body` to `webhooks/{hook}` of a tunnel.
    pub async fn post(&self, tunnel: &NewTunnel, hook: &str, body: &[u8]) -> reqwest::Response {
        self.http
            .post(self.url(&format!("/h/{}/webhooks/{hook}", tunnel.tunnel_id)))
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .expect("request sent")
    }

    /// Posts and expects 202; returns the seq.
    pub async fn post_ok(&self, tunnel: &NewTunnel, body: &[u8]) -> u64 {
        let resp = self.post(tunnel, "test", body).await;
        assert_eq!(resp.status(), 202, "a valid webhook is accepted");
        let json: serde_json::Value = resp.json().await.expect("json");
        json["seq"].as_u64().expect("seq")
    }

    pub async fn connect(&self, tunnel: &NewTunnel, last_seq: u64) -> EngineLink {
        self.try_connect(
            tunnel.tunnel_id.as_str(),
            tunnel.secret.expose(),
            Some(last_seq),
        )
        .await
        .expect("engine link opens")
    }

    pub async fn try_connect(
        &self,
        tunnel_id: &str,
        secret: &str,
        last_seq: Option<u64>,
    ) -> Result<EngineLink, tungstenite::Error> {
        let url = format!("ws://{}{}", self.addr, connect_path(tunnel_id));
        let mut req = url.into_client_request()?;
        if !secret.is_empty() {
            req.headers_mut().insert(
                "authorization",
                HeaderValue::from_str(&format!("Bearer {secret}")).expect("header"),
            );
        }
        if let Some(seq) = last_seq {
            req.headers_mut()
                .insert(LAST_SEQ_HEADER, HeaderValue::from(seq));
        }
        let (ws, _) = tokio_tungstenite::connect_async(req).await?;
        Ok(EngineLink { ws })
    }
}

/// What a refused WebSocket handshake answered.
pub fn refused_status(err: &tungstenite::Error) -> u16 {
    match err {
        tungstenite::Error::Http(resp) => resp.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

/// The engine's end of a link.
pub struct EngineLink {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl EngineLink {
    /// The next relay message (pings skipped).
    pub async fn next(&mut self) -> RelayMessage {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a relay message in time")
                .expect("the link is open")
                .expect("a readable frame");
            match msg {
                Message::Text(text) => {
                    return serde_json::from_str(text.as_str()).expect("a relay message");
                }
                Message::Close(frame) => panic!("link closed: {frame:?}"),
                _ => {}
            }
        }
    }

    /// The next message, which must be a delivery.
    pub async fn delivery(&mut self) -> stagehand_protocol::relay::Delivery {
        match self.next().await {
            RelayMessage::Delivery(d) => d,
            other => panic!("expected a delivery, got {other:?}"),
        }
    }

    pub async fn send(&mut self, msg: EngineMessage) {
        let text = serde_json::to_string(&msg).expect("json");
        self.ws.send(Message::text(text)).await.expect("sent");
    }

    /// Waits for the relay to close the link; returns the close code.
    pub async fn closed_with(&mut self) -> u16 {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a close in time");
            match msg {
                Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
                Some(Ok(Message::Close(None))) | None => panic!("closed without a code"),
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("link failed instead of closing: {e}"),
            }
        }
    }

    /// Closes from the engine side and waits for the relay's close reply, so everything sent
    /// before has been read by the relay.
    pub async fn close(mut self) {
        self.ws.close(None).await.expect("close sent");
        loop {
            match tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("close handshake in time")
            {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    }
}

/// Runs the relay binary.
pub fn cli(args: &[&str], data_dir: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_stagehand-relay"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("the relay binary runs")
}
