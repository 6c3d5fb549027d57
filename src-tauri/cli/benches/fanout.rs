//! Alert fan-out benchmark: `POST /api/alerts` to receipt on every connected overlay socket.
//!
//! Run: `cargo bench -p stagehand --bench fanout` (release build; needs `ulimit -n` ≥ 2200 for
//! the 1,000-socket round, since this process and the server each hold one descriptor per
//! socket). It starts the real `stagehand serve`, creates an overlay, connects 1, 100 and 1,000
//! overlay sockets with the signed link, then:
//! - latency: sends alerts one at a time and times each from just before the POST to the moment
//!   the last socket has it (p50/p99), plus the per-socket receipt times;
//! - throughput: sends alerts back to back (8 in flight) and counts deliveries per second;
//! - memory: the server's RSS after the sockets connect, minus its RSS before, per socket.
//!
//! Targets (issue 3): p99 under 2 ms with 100 sockets and under 16 ms with 1,000; under 50 KB
//! per socket.

#![allow(missing_docs)]
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::mpsc;

mod common;

use common::pct;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The server's user + system CPU time so far, in ms (from /proc, 100 Hz ticks).
fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) * 10.0
}

struct Round {
    sockets: usize,
    all_p50: f64,
    all_p99: f64,
    each_p50: f64,
    each_p99: f64,
    per_second: f64,
    kib_per_socket: f64,
    server_cpu_ms_per_alert: f64,
}

async fn round(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    overlay: &str,
    ws_url: &str,
    pid: u32,
    sockets: usize,
) -> Round {
    let before = rss_kib(pid);
    let (tx, mut rx) = mpsc::unbounded_channel::<(u64, Instant)>();
    let mut tasks = Vec::new();
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<()>();
    for _ in 0..sockets {
        let (mut socket, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
        let tx = tx.clone();
        let ready = ready_tx.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(Ok(message)) = socket.next().await {
                let now = Instant::now();
                let Ok(text) = message.to_text() else {
                    continue;
                };
                // No JSON parsing here: this process shares the two cores with the server, and
                // the figure is about the server. The sequence number is the alert's message.
                if text.contains("\"scene.full\"") {
                    let _ = ready.send(());
                } else if let Some(rest) = text.split("\"message\":\"").nth(1) {
                    let seq = rest
                        .split('"')
                        .next()
                        .and_then(|m| m.parse().ok())
                        .unwrap_or(0);
                    let _ = tx.send((seq, now));
                }
            }
        }));
    }
    for _ in 0..sockets {
        ready_rx.recv().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await; // settle before reading RSS
    let after = rss_kib(pid);

    let send = |seq: u64| {
        client
            .post(format!("{base}/api/alerts"))
            .header("x-streamer-token", token)
            .json(&serde_json::json!({ "overlayId": overlay, "kind": "bench", "title": "bench", "message": seq.to_string() }))
            .send()
    };

    // Latency: one alert at a time.
    let alerts = if sockets >= 1000 { 100 } else { 300 };
    let mut all = Vec::new();
    let mut each = Vec::new();
    let cpu_before = cpu_ms(pid);
    for seq in 1..=alerts {
        let t0 = Instant::now();
        let response = send(seq).await.unwrap();
        assert_eq!(response.status(), 202);
        let mut got = 0;
        let mut last = t0;
        while got < sockets {
            let (s, at) = rx.recv().await.unwrap();
            assert_eq!(s, seq, "one alert at a time");
            each.push(at - t0);
            last = last.max(at);
            got += 1;
        }
        all.push(last - t0);
    }
    let server_cpu_ms_per_alert = (cpu_ms(pid) - cpu_before) / alerts as f64;
    all.sort();
    each.sort();

    // Throughput: back to back, 8 requests in flight.
    let burst = if sockets >= 1000 { 200 } else { 1000 };
    let base_seq = 1_000_000;
    let started = Instant::now();
    let sender = {
        let client = client.clone();
        let base = base.to_owned();
        let token = token.to_owned();
        let overlay = overlay.to_owned();
        tokio::spawn(async move {
            let sem = Arc::new(tokio::sync::Semaphore::new(8));
            let mut handles = Vec::new();
            for i in 0..burst {
                let permit = Arc::clone(&sem).acquire_owned().await.unwrap();
                let request = client
                    .post(format!("{base}/api/alerts"))
                    .header("x-streamer-token", &token)
                    .json(&serde_json::json!({ "overlayId": overlay, "kind": "bench", "title": "bench", "message": (base_seq + i).to_string() }));
                handles.push(tokio::spawn(async move {
                    let r = request.send().await.unwrap();
                    assert_eq!(r.status(), 202);
                    drop(permit);
                }));
            }
            for h in handles {
                h.await.unwrap();
            }
        })
    };
    let mut delivered = 0u64;
    let expected = burst * sockets as u64;
    while delivered < expected {
        rx.recv().await.unwrap();
        delivered += 1;
    }
    let elapsed = started.elapsed();
    sender.await.unwrap();
    for t in tasks {
        t.abort();
    }

    Round {
        sockets,
        all_p50: pct(&all, 0.5),
        all_p99: pct(&all, 0.99),
        each_p50: pct(&each, 0.5),
        each_p99: pct(&each, 0.99),
        per_second: delivered as f64 / elapsed.as_secs_f64(),
        kib_per_socket: after.saturating_sub(before) as f64 / sockets as f64,
        server_cpu_ms_per_alert,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let served = common::Served::start(&[]);
    let (base, token) = (served.base.clone(), served.token.clone());
    let client = reqwest::Client::new();
    let overlay: serde_json::Value = client
        .post(format!("{base}/overlays"))
        .header("x-streamer-token", &token)
        .json(&serde_json::json!({ "name": "bench" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = overlay["overlayId"].as_str().unwrap().to_owned();
    let ws_url = overlay["signedUrl"]
        .as_str()
        .unwrap()
        .replacen("http://", "ws://", 1)
        .replacen("/o/", "/ws/overlay/", 1);

    println!("alert fan-out, POST /api/alerts -> overlay sockets (release, loopback)");
    println!(
        "{:>8} {:>14} {:>14} {:>14} {:>14} {:>16} {:>12}",
        "sockets",
        "all p50 ms",
        "all p99 ms",
        "each p50 ms",
        "each p99 ms",
        "deliveries/s",
        "KB/socket"
    );
    for sockets in [1, 100, 1000] {
        let r = round(&client, &base, &token, &id, &ws_url, served.pid(), sockets).await;
        println!(
            "{:>8} {:>14.3} {:>14.3} {:>14.3} {:>14.3} {:>16.0} {:>12.1} {:>16.2}",
            r.sockets,
            r.all_p50,
            r.all_p99,
            r.each_p50,
            r.each_p99,
            r.per_second,
            r.kib_per_socket * 1.024,
            r.server_cpu_ms_per_alert
        );
    }
}
