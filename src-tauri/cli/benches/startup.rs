//! Startup and idle-memory benchmark for `stagehand serve`.
//!
//! Run: `cargo bench -p stagehand --bench startup` (builds in release). For each run it starts
//! the real binary on a fresh or reused data dir with the file secret backend, polls
//! `GET /healthz` until the first 200, and records the wall time from spawn; after the runs it
//! leaves one instance idle for two seconds and reads its resident memory from /proc.
//! Targets (issue 2): start under 100 ms, idle RSS under 20 MB.

#![allow(missing_docs)]
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_stagehand");

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn healthz(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let req =
        format!("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = String::new();
    s.read_to_string(&mut buf).is_ok() && buf.starts_with("HTTP/1.1 200")
}

fn start(dir: &std::path::Path, port: u16) -> (Child, Duration) {
    let t0 = Instant::now();
    let child = Command::new(BIN)
        .args(["serve", "--port", &port.to_string(), "--data-dir"])
        .arg(dir)
        .env("STAGEHAND_SECRETS", "file")
        .env("STAGEHAND_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = t0 + Duration::from_secs(10);
    while !healthz(port) {
        assert!(
            Instant::now() < deadline,
            "stagehand did not answer within 10 s"
        );
        std::thread::yield_now();
    }
    (child, t0.elapsed())
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn main() {
    let runs = 20;
    let mut first = Vec::new();
    let mut warm = Vec::new();
    for _ in 0..runs {
        let dir = tempfile::tempdir().unwrap();
        let (child, cold) = start(dir.path(), free_port());
        stop(child);
        first.push(cold);
        let (child, again) = start(dir.path(), free_port());
        stop(child);
        warm.push(again);
    }
    first.sort();
    warm.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("stagehand serve, spawn to first 200 on /healthz ({runs} runs each):");
    println!(
        "  new data dir (creates DB, key, token): median {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        ms(percentile(&first, 0.5)),
        ms(percentile(&first, 0.9)),
        ms(*first.last().unwrap())
    );
    println!(
        "  existing data dir:                     median {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        ms(percentile(&warm, 0.5)),
        ms(percentile(&warm, 0.9)),
        ms(*warm.last().unwrap())
    );

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (child, _) = start(dir.path(), port);
    for _ in 0..50 {
        assert!(healthz(port));
    }
    std::thread::sleep(Duration::from_secs(2)); // let it go idle; this is a measurement, not sync
    let rss = rss_kib(child.id());
    stop(child);
    match rss {
        Some(kib) => println!(
            "idle RSS after 50 requests and 2 s idle: {:.1} MB",
            kib as f64 / 1024.0
        ),
        None => println!("idle RSS: /proc not available on this OS"),
    }
}
