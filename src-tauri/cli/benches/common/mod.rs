//! What the benches share: a real release `stagehand serve` on a fresh data dir and its token
//! (through `support::cli`, which the CLI's tests use too), overlay pages, and percentiles.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use support::relay::connect_page;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// The binary under test (set by cargo for benches of this package).
pub const BIN: &str = env!("CARGO_BIN_EXE_stagehand");

/// A running `stagehand serve` on [`BIN`] (see [`support::cli::Served`]); stopped with SIGTERM
/// on drop.
pub struct Served(support::cli::Served);

impl Served {
    /// Starts the server with the file secret backend plus `env`, and waits for its banner.
    pub fn start(env: &[(&str, &str)]) -> Served {
        Served(support::cli::Served::start(BIN, env))
    }
}

impl std::ops::Deref for Served {
    type Target = support::cli::Served;

    fn deref(&self) -> &Self::Target {
        &self.0
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
    support::cli::create_overlay(http, base, token, &serde_json::json!({ "name": name })).await
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
