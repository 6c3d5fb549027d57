//! Webhooks per second through a relay on a two-worker runtime (client and relay share it),
//! resident memory per stored tunnel, and resident memory per idle *linked* tunnel: the real
//! `stagehand-relay serve` binary as a child process with 1,000 engine links connected and
//! quiet. `cargo bench -p stagehand-relay --bench throughput` (needs `ulimit -n` >= 2200).

#![allow(missing_docs)]

use std::sync::Arc;
use std::time::Instant;

use stagehand_relay::{Relay, RelayConfig};

const TUNNELS: usize = 10;
const POSTS: usize = 20_000;
const CONCURRENCY: usize = 64;
const IDLE_TUNNELS: usize = 10_000;
const LINKED_TUNNELS: usize = 1_000;

fn rss_kib() -> u64 {
    rss_kib_of("self")
}

fn rss_kib_of(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
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
    linked_idle().await
}

/// The relay binary with `LINKED_TUNNELS` engine links connected and idle: its RSS before the
/// links and after, per link.
async fn linked_idle() -> anyhow::Result<()> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let dir = tempfile::tempdir()?;
    let relay = Relay::open(RelayConfig::new(dir.path()))?;
    let mut tunnels = Vec::new();
    for _ in 0..LINKED_TUNNELS {
        let t = relay.create_tunnel().await?;
        tunnels.push((t.tunnel_id.to_string(), t.secret.expose().to_owned()));
    }
    relay.shutdown();
    drop(relay);
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_stagehand-relay"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--data-dir",
        ])
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().map(|p| p.to_string()).unwrap_or_default();
    let health = format!("http://127.0.0.1:{port}/healthz");
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..500 {
        if http.get(&health).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    anyhow::ensure!(up, "the relay binary never answered /healthz");
    let before = rss_kib_of(&pid);
    let mut links = Vec::new();
    for (id, secret) in &tunnels {
        let url = format!(
            "ws://127.0.0.1:{port}{}",
            stagehand_protocol::relay::connect_path(id)
        );
        let mut request = url.into_client_request()?;
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {secret}").parse()?);
        request
            .headers_mut()
            .insert(stagehand_protocol::relay::LAST_SEQ_HEADER, "0".parse()?);
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await?;
        // The welcome says the relay has registered the link.
        ws.next().await;
        links.push(ws);
    }
    let after = rss_kib_of(&pid);
    println!(
        "linked idle tunnels: {LINKED_TUNNELS} engine links raised the relay's RSS by {} KiB = {:.1} KiB per linked tunnel",
        after.saturating_sub(before),
        after.saturating_sub(before) as f64 / LINKED_TUNNELS as f64
    );
    // The relay goes first, so it does not log a thousand links dropping.
    child.kill().await?;
    drop(links);
    Ok(())
}
