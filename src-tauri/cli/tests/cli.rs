//! The `stagehand` binary itself: help, serve, token, doctor, and what a streamer sees when the
//! keychain is missing. These run the real executable as a child process.

#![allow(missing_docs)]
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_stagehand");

fn stagehand(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("STAGEHAND_SECRETS", "file")
        .arg("--data-dir")
        .arg(dir);
    cmd
}

fn http_get(port: u16, path: &str, token: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let auth = token
        .map(|t| format!("x-streamer-token: {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    (status, response)
}

#[test]
fn help_documents_every_subcommand() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for sub in ["serve", "token", "secrets", "config", "--data-dir"] {
        assert!(help.contains(sub), "--help must mention {sub}: {help}");
    }
    let secrets = Command::new(BIN)
        .args(["secrets", "--help"])
        .output()
        .unwrap();
    let secrets = String::from_utf8(secrets.stdout).unwrap();
    assert!(
        secrets.contains("doctor") && secrets.contains("genkey"),
        "{secrets}"
    );
}

#[test]
fn serve_prints_where_it_runs_answers_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = stagehand(dir.path())
        .args(["serve", "--port", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(
        first.contains(&format!("http://127.0.0.1:{port}")),
        "the first line says where it runs: {first}"
    );
    let mut banner = vec![first];
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.contains("Ctrl-C");
        banner.push(line);
        if done {
            break;
        }
    }
    let banner = banner.join("\n");
    assert!(
        banner.contains("stagehand token"),
        "says how to get the token: {banner}"
    );

    let (status, _) = http_get(port, "/healthz", None);
    assert_eq!(status, 200);
    let token = stagehand(dir.path()).arg("token").output().unwrap();
    assert!(token.status.success());
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
    assert_eq!(token.len(), 43, "32 random bytes, base64url");
    assert!(
        !banner.contains(&token),
        "the banner says where the token is, not what"
    );
    let (status, body) = http_get(port, "/api/status", Some(&token));
    assert_eq!(
        status, 200,
        "`stagehand token` prints the token the server accepts: {body}"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "SIGTERM is a clean shutdown: {exit}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
}

#[test]
fn token_is_stable_and_doctor_reports_the_file_backend() {
    let dir = tempfile::tempdir().unwrap();
    let a = stagehand(dir.path()).arg("token").output().unwrap();
    let b = stagehand(dir.path()).arg("token").output().unwrap();
    assert!(a.status.success() && b.status.success());
    assert_eq!(a.stdout, b.stdout, "the token is created once and kept");

    let doctor = stagehand(dir.path())
        .args(["secrets", "doctor"])
        .output()
        .unwrap();
    let text = String::from_utf8(doctor.stdout).unwrap();
    assert!(doctor.status.success(), "{text}");
    assert!(text.contains("backend: file"), "{text}");
    assert!(text.contains("status: works"), "{text}");
}

#[test]
fn a_missing_keychain_says_how_to_choose_the_file_backend() {
    let dir = tempfile::tempdir().unwrap();
    let out = stagehand(dir.path())
        .env("STAGEHAND_SECRETS", "keychain")
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/stagehand-test-bus",
        )
        .arg("token")
        .output()
        .unwrap();
    assert!(!out.status.success(), "no keychain, no token");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("keychain secret backend is not available"),
        "{err}"
    );
    assert!(
        err.contains("STAGEHAND_SECRETS=file"),
        "tells how to pick the file backend: {err}"
    );
    assert!(
        !dir.path().join("secrets.enc").exists(),
        "never falls back to a file on its own"
    );
    let doctor = stagehand(dir.path())
        .env("STAGEHAND_SECRETS", "keychain")
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/stagehand-test-bus",
        )
        .args(["secrets", "doctor"])
        .output()
        .unwrap();
    assert!(!doctor.status.success());
    assert!(
        String::from_utf8(doctor.stdout)
            .unwrap()
            .contains("NOT AVAILABLE")
    );
}

#[test]
fn genkey_prints_a_usable_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = Command::new(BIN)
        .args(["secrets", "genkey"])
        .output()
        .unwrap();
    let key = String::from_utf8(key.stdout).unwrap().trim().to_owned();
    let out = stagehand(dir.path())
        .env("STAGEHAND_SECRETS_KEY", &key)
        .arg("token")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !dir.path().join("secrets.key").exists(),
        "the env key replaces the key file"
    );
    let wrong = stagehand(dir.path())
        .env("STAGEHAND_SECRETS_KEY", "dG9vIHNob3J0")
        .arg("token")
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8(wrong.stderr)
            .unwrap()
            .contains("32 bytes")
    );
}

#[test]
fn unknown_config_keys_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), "[server]\nprot = 1\n").unwrap();
    let out = stagehand(dir.path()).arg("config").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("server.prot"), "{text}");
}
