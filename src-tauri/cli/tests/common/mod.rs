//! What the CLI's end-to-end tests share: the real `stagehand` binary pointed at an
//! in-process relay, on its own data dir and a free port, through the helpers the benches use
//! too (`support::cli`).

#![allow(dead_code)]

use std::path::Path;

use support::relay::TestRelay;
use tokio::process::Child;

pub const BIN: &str = env!("CARGO_BIN_EXE_stagehand");

/// Starts `stagehand serve` on a free port and returns once its banner says it is running.
pub async fn serve(dir: &Path, relay: &TestRelay) -> (Child, String) {
    support::cli::serve(BIN, dir, &relay.engine_env()).await
}

pub async fn streamer_token(dir: &Path, relay: &TestRelay) -> String {
    support::cli::streamer_token(BIN, dir, &relay.engine_env()).await
}

/// Creates a 1280×720 overlay called "Main" on the engine at `base`; returns its JSON (with
/// `overlayId` and `signedUrl`).
pub async fn create_overlay(http: &reqwest::Client, base: &str, token: &str) -> serde_json::Value {
    let body = serde_json::json!({ "name": "Main", "width": 1280, "height": 720 });
    support::cli::create_overlay(http, base, token, &body).await
}
