//! The real `stagehand` binary as a child process, shared by the CLI's end-to-end tests and its
//! benches: the command on a data dir of its own with no keychain and no OBS, `stagehand serve`
//! on a free port until its banner says it runs, the streamer token, and the overlay both
//! create first.
//!
//! The binary's path comes from the caller (`env!("CARGO_BIN_EXE_stagehand")` in the package
//! that builds it), since only that package's tests and benches are told where it is.

use std::ffi::OsStr;
use std::io::BufRead as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};

/// A free TCP port on 127.0.0.1 (free when asked; the server binds it a moment later).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds 127.0.0.1:0");
    listener
        .local_addr()
        .expect("a bound listener has an address")
        .port()
}

/// `bin` on the data dir `dir` with only the environment a test chooses: `PATH`, `HOME` in
/// `dir`, the file secret backend (no keychain), OBS off, then `env`.
pub fn command<K, V>(bin: &str, dir: &Path, env: impl IntoIterator<Item = (K, V)>) -> Command
where
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let mut command = Command::new(bin);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("STAGEHAND_SECRETS", "file")
        .env("STAGEHAND_OBS_ENABLED", "false")
        .envs(env)
        .arg("--data-dir")
        .arg(dir);
    command
}

/// Whether a line of `stagehand serve`'s output is the last of its banner: the server answers
/// by then.
fn ends_banner(line: &str) -> bool {
    line.contains("Ctrl-C")
}

/// The token a `stagehand token` run printed.
fn printed_token(out: Output) -> String {
    assert!(
        out.status.success(),
        "stagehand token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Starts `stagehand serve` on a free port (its stderr in `dir/serve-stderr.log`) and returns
/// once its banner says it is running, with the server's base URL. The child is killed when
/// dropped.
pub async fn serve(
    bin: &str,
    dir: &Path,
    env: &[(String, String)],
) -> (tokio::process::Child, String) {
    let port = free_port();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("serve-stderr.log"))
        .expect("the serve log opens in the data dir");
    let mut child = tokio::process::Command::from(command(bin, dir, env.iter().cloned()))
        .args(["serve", "--port", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("stagehand serve spawns");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let banner = async {
        while let Some(line) = lines.next_line().await.expect("stdout reads") {
            if ends_banner(&line) {
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

/// The streamer token `stagehand token` prints for `dir`.
pub async fn streamer_token(bin: &str, dir: &Path, env: &[(String, String)]) -> String {
    let out = tokio::process::Command::from(command(bin, dir, env.iter().cloned()))
        .arg("token")
        .output()
        .await
        .expect("stagehand token runs");
    printed_token(out)
}

/// A `stagehand serve` started from blocking code (the benches' measurements) on a fresh data
/// dir, with warnings-only logs; stopped with SIGTERM when dropped.
pub struct Served {
    /// The server process.
    pub child: std::process::Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// `http://127.0.0.1:{port}`.
    pub base: String,
    /// The streamer token.
    pub token: String,
    _dir: tempfile::TempDir,
}

impl Served {
    /// Starts `bin` with `env` and waits for its banner.
    pub fn start(bin: &str, env: &[(&str, &str)]) -> Served {
        let dir = tempfile::tempdir().expect("a temp data dir");
        let port = free_port();
        let mut child = command(bin, dir.path(), env.iter().copied())
            .env("STAGEHAND_LOG", "warn")
            .args(["serve", "--port", &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("stagehand serve spawns");
        // Read through a borrow: the pipe stays open, so the server's later lines never fail.
        let stdout = child.stdout.as_mut().expect("stdout is piped");
        let mut banner = std::io::BufReader::new(stdout).lines();
        loop {
            match banner.next() {
                Some(Ok(line)) if ends_banner(&line) => break,
                Some(Ok(_)) => {}
                Some(Err(_)) | None => panic!("stagehand serve exited before it was ready"),
            }
        }
        let out = command(bin, dir.path(), env.iter().copied())
            .arg("token")
            .output()
            .expect("stagehand token runs");
        Served {
            child,
            port,
            base: format!("http://127.0.0.1:{port}"),
            token: printed_token(out),
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

/// Creates an overlay from `body` (`name`, optionally `width` and `height`) on the engine at
/// `base`; returns its JSON (with `overlayId` and `signedUrl`).
pub async fn create_overlay(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    body: &serde_json::Value,
) -> serde_json::Value {
    http.post(format!("{base}/api/overlays"))
        .header("x-streamer-token", token)
        .json(body)
        .send()
        .await
        .expect("POST /api/overlays")
        .json()
        .await
        .expect("the overlay as JSON")
}
