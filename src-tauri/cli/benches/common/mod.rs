//! What the benches share: a real release `stagehand serve` on a fresh data dir, its token, and
//! percentiles.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use support::relay::connect_page;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// The binary under test (set by cargo for benches of this package).
pub const BIN: &str = env!("CARGO_BIN_EXE_stagehand");

/// A running `stagehand serve`; stopped with SIGTERM on drop.
pub struct Served {
    pub child: Child,
    pub port: u16,
    pub base: String,
    pub token: String,
    _dir: tempfile::TempDir,
}

impl Served {
    /// Starts the server with the file secret backend plus `env`, and waits for its banner.
    pub fn start(env: &[(&str, &str)]) -> Served {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--port", &port.to_string(), "--data-dir"])
            .arg(dir.path())
            .env("STAGEHAND_SECRETS", "file")
            .env("STAGEHAND_LOG", "warn")
            .env("STAGEHAND_OBS_ENABLED", "false")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        // The first line of stdout says the server is listening.
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.contains("running"), "{line}");
        let token = Command::new(BIN)
            .args(["token", "--data-dir"])
            .arg(dir.path())
            .env("STAGEHAND_SECRETS", "file")
            .output()
            .unwrap();
        let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
        Served {
            child,
            port,
            base: format!("http://127.0.0.1:{port}"),
            token,
            _dir: dir,
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// The `p` percentile of sorted durations, in ms.
pub fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Creates an overlay called `name` on the engine at `base`; returns its JSON (`overlayId`,
/// `signedUrl`).
pub async fn create_overlay(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    name: &str,
) -> serde_json::Value {
    http.post(format!("{base}/overlays"))
        .header("x-streamer-token", token)
        .json(&serde_json::json!({ "name": name }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits until the engine at `base` is linked to its relay.
pub async fn wait_linked(http: &reqwest::Client, base: &str, token: &str) {
    for _ in 0..1_000 {
        let status: serde_json::Value = http
            .get(format!("{base}/api/relay/status"))
            .header("x-streamer-token", token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if status["state"] == "linked" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the engine never linked to the relay");
}

/// The overlay page: a task reads its socket, answers `alert.seen` as overlay.js does, and
/// passes each `alert.show` message (its text) with the instant it arrived.
pub async fn page_alerts(signed: &str) -> mpsc::UnboundedReceiver<(String, Instant)> {
    let mut page = connect_page(signed).await;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(message)) = page.next().await {
            let Message::Text(text) = message else {
                continue;
            };
            let at = Instant::now();
            let message: serde_json::Value = serde_json::from_str(&text).unwrap();
            if message["type"] != "alert.show" {
                continue;
            }
            let note = message["message"].as_str().unwrap_or_default().to_owned();
            let seen = serde_json::json!({ "type": "alert.seen", "id": message["id"] });
            let _ = page.send(Message::Text(seen.to_string().into())).await;
            if tx.send((note, at)).is_err() {
                return;
            }
        }
    });
    rx
}

/// The instant the page had the alert whose message is `note`.
pub async fn wait_for(
    alerts: &mut mpsc::UnboundedReceiver<(String, Instant)>,
    note: &str,
) -> Instant {
    loop {
        let (message, at) = tokio::time::timeout(Duration::from_secs(10), alerts.recv())
            .await
            .unwrap_or_else(|_| panic!("{note:?} never reached the overlay"))
            .expect("the page is open");
        if message == note {
            return at;
        }
    }
}
