//! Real OBS Studio, headless, for the tests that prove Stagehand against the real program.
//!
//! Debian 12's OBS is too old for obws, so OBS 30.2 runs from a Debian 13 chroot that
//! `scripts/setup obs` builds once (as root) into a cache directory outside the repository.
//! `scripts/test` names that chroot in `STAGEHAND_TEST_OBS_CHROOT`; these tests are
//! `#[ignore]`d in a plain `cargo test` and fail, saying how to run them, when it is missing.

use std::path::{Path, PathBuf};
use std::process::Stdio;

/// The environment variable naming the chroot with OBS 30.2.
pub const CHROOT_ENV: &str = "STAGEHAND_TEST_OBS_CHROOT";

/// One OBS process under its own Xvfb, with obs-websocket on a free port and a password.
#[derive(Debug)]
pub struct RealObs {
    home: PathBuf,
    port: u16,
    password: String,
    obs_pid: u32,
    xvfb_pid: u32,
    /// obs-websocket's version, from its Hello.
    pub websocket_version: String,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/obs-headless")
}

fn chroot() -> PathBuf {
    match std::env::var_os(CHROOT_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => panic!(
            "{CHROOT_ENV} is not set: these tests need real OBS 30.2 from a Debian 13 chroot. \
             As root, run `scripts/setup obs` once, then `scripts/test` (which sets it)."
        ),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl RealObs {
    /// Starts OBS and returns once obs-websocket answers requests.
    pub async fn start(password: &str) -> Self {
        let home = tempfile::Builder::new()
            .prefix("stagehand-obs.")
            .tempdir_in("/tmp") // the chroot shares the host's /tmp, so paths match inside
            .expect("temp dir")
            .keep();
        let mut obs = Self {
            home,
            port: free_port(),
            password: password.to_owned(),
            obs_pid: 0,
            xvfb_pid: 0,
            websocket_version: String::new(),
        };
        obs.launch().await;
        obs
    }

    async fn launch(&mut self) {
        let output = tokio::process::Command::new(script())
            .env(CHROOT_ENV, chroot())
            .env("OBS_CHROOT", chroot())
            .env("OBS_HOME", &self.home)
            .env("OBS_WS_PORT", self.port.to_string())
            .env("OBS_WS_PASSWORD", &self.password)
            .env("OBS_NO_INSTALL", "1")
            .stdin(Stdio::null())
            .output()
            .await
            .expect("scripts/obs-headless runs");
        assert!(
            output.status.success(),
            "OBS did not start:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let value = |key: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .unwrap_or_default()
                .to_owned()
        };
        self.obs_pid = value("OBS_PID").parse().expect("OBS_PID");
        self.xvfb_pid = value("XVFB_PID").parse().expect("XVFB_PID");
        self.websocket_version = value("OBS_WS_VERSION");
    }

    /// obs-websocket's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where OBS writes recordings.
    pub fn recordings(&self) -> PathBuf {
        self.home.join("recordings")
    }

    /// A direct obs-websocket client, for setting up what Stagehand itself does not do.
    pub async fn client(&self) -> obws::Client {
        obws::Client::connect("127.0.0.1", self.port, Some(self.password.as_str()))
            .await
            .expect("obws connects to real OBS")
    }

    /// Kills OBS abruptly (SIGKILL, as a crash would), and its Xvfb.
    pub fn kill(&mut self) {
        for pid in [self.obs_pid, self.xvfb_pid] {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        }
    }

    /// Starts OBS again on the same port (after [`RealObs::kill`]).
    pub async fn restart(&mut self) {
        self.launch().await;
    }
}

impl Drop for RealObs {
    fn drop(&mut self) {
        let _ = std::process::Command::new(script())
            .arg("stop")
            .arg(&self.home)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}
