//! Webhooks per second through a relay on a two-worker runtime (client and relay share it),
//! and resident memory per idle tunnel. `cargo bench -p stagehand-relay --bench throughput`.

#![allow(missing_docs)]

use std::sync::Arc;
use std::time::Instant;

use stagehand_relay::{Relay, RelayConfig};

const TUNNELS: usize = 10;
const POSTS: usize = 20_000;
const CONCURRENCY: usize = 64;
const IDLE_TUNNELS: usize = 10_000;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = RelayConfig::new(dir.path());
    config.limits.rate_per_sec = 1_000_000;
    config.limits.rate_burst = 1_000_000;
    config.limits.max_buffered = 1_000_000;
    let relay = Relay::open(config)?;
    let mut tunnels = Vec::new();
    for _ in 0..TUNNELS {
        tunnels.push(relay.create_tunnel().await?.tunnel_id);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(stagehand_relay::serve(relay.clone(), listener, async {
        let _ = stopped.await;
    }));

    let http = reqwest::Client::new();
    let urls: Arc<Vec<String>> = Arc::new(
        tunnels
            .iter()
            .map(|t| format!("http://{addr}/h/{t}/webhooks/tradingview"))
            .collect(),
    );
    let body = r#"{"ticker":"BTCUSD","action":"buy","price":"64123.5"}"#;
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..CONCURRENCY {
        let http = http.clone();
        let urls = Arc::clone(&urls);
        workers.push(tokio::spawn(async move {
            let mut worst = std::time::Duration::ZERO;
            for i in (w..POSTS).step_by(CONCURRENCY) {
                let t = Instant::now();
                let resp = http
                    .post(&urls[i % urls.len()])
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await?;
                anyhow::ensure!(resp.status() == 202, "status {}", resp.status());
                worst = worst.max(t.elapsed());
            }
            Ok::<_, anyhow::Error>(worst)
        }));
    }
    let mut worst = std::time::Duration::ZERO;
    for w in workers {
        worst = worst.max(w.await??);
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "throughput: {POSTS} webhooks in {secs:.2} s = {:.0}/s (2 workers, {CONCURRENCY} concurrent senders, slowest answer {} ms)",
        POSTS as f64 / secs,
        worst.as_millis()
    );

    let before = rss_kib();
    let mut creates = Vec::new();
    for _ in 0..IDLE_TUNNELS {
        let relay = relay.clone();
        creates.push(tokio::spawn(async move { relay.create_tunnel().await }));
    }
    for c in creates {
        c.await??;
    }
    let after = rss_kib();
    println!(
        "idle tunnels: {IDLE_TUNNELS} more raised RSS by {} KiB = {:.0} bytes per tunnel (includes SQLite page cache growth)",
        after.saturating_sub(before),
        (after.saturating_sub(before) * 1024) as f64 / IDLE_TUNNELS as f64
    );
    let _ = stop.send(());
    server.await??;
    Ok(())
}
