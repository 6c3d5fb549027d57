//! What the CLI's end-to-end tests share: the real `stagehand` binary pointed at an
//! in-process relay, on its own data dir and a free port.

#![allow(dead_code)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use support::relay::TestRelay;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_stagehand");

pub fn stagehand(dir: &Path, relay: &TestRelay) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("STAGEHAND_SECRETS", "file")
        .env("STAGEHAND_OBS_ENABLED", "false")
        .envs(relay.engine_env())
        .arg("--data-dir")
        .arg(dir)
        .kill_on_drop(true);
    cmd
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Starts `stagehand serve` on a free port and returns once its banner says it is running.
pub async fn serve(dir: &Path, relay: &TestRelay) -> (Child, String) {
    let port = free_port();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("serve-stderr.log"))
        .unwrap();
    let mut child = stagehand(dir, relay)
        .args(["serve", "--port", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let banner = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("Ctrl-C") {
                return;
            }
        }
        panic!("stagehand serve exited before it was ready");
    };
    tokio::time::timeout(Duration::from_secs(30), banner)
        .await
        .expect("stagehand serve starts within 30 s");
    // Keep reading so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, format!("http://127.0.0.1:{port}"))
}

pub async fn streamer_token(dir: &Path, relay: &TestRelay) -> String {
    let out = stagehand(dir, relay).arg("token").output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Creates a 1280×720 overlay called "Main" on the engine at `base`; returns its JSON (with
/// `overlayId` and `signedUrl`).
pub async fn create_overlay(http: &reqwest::Client, base: &str, token: &str) -> serde_json::Value {
    http.post(format!("{base}/api/overlays"))
        .header("x-streamer-token", token)
        .json(&serde_json::json!({ "name": "Main", "width": 1280, "height": 720 }))
        .send()
        .await
        .expect("POST /api/overlays")
        .json()
        .await
        .expect("the overlay as JSON")
}
