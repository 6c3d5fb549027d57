//! What the relay adds to a moderator's action, and whether moderators delay webhooks.
//!
//! Run: `cargo bench -p stagehand --bench remote_moderators` (release build). It starts the real
//! `stagehand serve` linked to an in-process `stagehand-relay`, and 10 moderators, each editing
//! an overlay of its own from the panel's socket (`scene.save`, one every 50 ms, the next after
//! the answer), while TradingView alerts go through the same tunnel at 100 a second:
//! - round trip: from sending `scene.save` to its `result`, for 10 moderators connected to the
//!   engine directly, then 10 through the relay's moderator door;
//! - webhooks: POST to the relay to `alert.show` on an overlay socket, with no moderators, then
//!   while the 10 relay moderators work.
//!
//! Targets (issue 9): the relay adds under 5 ms p99 on loopback, and webhooks are not delayed by
//! moderator traffic.

#![allow(missing_docs)]
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use support::relay::{TRADINGVIEW_PATH, TestRelay};
use tokio::sync::{Mutex, mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

mod common;

use common::{Served, page_alerts, pct, wait_for, wait_linked};

const MODERATORS: usize = 10;
/// Actions per moderator per door, after `WARMUP` that are not counted.
const ACTIONS: usize = 200;
const WARMUP: usize = 20;
/// One action per moderator this often.
const ACTION_EVERY: Duration = Duration::from_millis(50);
/// Webhooks per second through the tunnel while moderators work.
const WEBHOOKS_PER_SEC: u64 = 100;

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run())
}

/// What one bench run needs from the engine.
struct Setup {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Setup {
    async fn post(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("x-streamer-token", &self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }
}

async fn run() -> anyhow::Result<()> {
    let relay = TestRelay::start_with(stagehand_relay::Limits {
        rate_per_sec: 1_000_000,
        rate_burst: 1_000_000,
        ..stagehand_relay::Limits::default()
    })
    .await;
    let mut env: Vec<(String, String)> = relay.engine_env();
    env.push((
        "STAGEHAND_MODERATORS_CONSUME_ATTEMPTS_PER_MINUTE".into(),
        "1000".into(),
    ));
    env.push(("STAGEHAND_LIMITS_OVERLAYS".into(), "100".into()));
    let served = tokio::task::block_in_place(|| {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Served::start(&env)
    });
    let setup = Setup {
        http: reqwest::Client::new(),
        base: served.base.clone(),
        token: served.token.clone(),
    };
    wait_linked(&setup.http, &setup.base, &setup.token).await;
    let tv_token = setup
        .http
        .get(format!("{}/api/webhooks/tradingview/secrets", setup.base))
        .header("x-streamer-token", &setup.token)
        .send()
        .await?
        .json::<serde_json::Value>()
        .await?["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let alerts_overlay = setup
        .post("/overlays", serde_json::json!({"name": "Alerts"}))
        .await;
    let alerts = page_alerts(alerts_overlay["signedUrl"].as_str().unwrap()).await;
    let alerts = Arc::new(Mutex::new(alerts));
    let hook = relay.hook_url(TRADINGVIEW_PATH, &format!("token={tv_token}"));

    let alone = webhooks_for(
        &setup.http,
        &hook,
        &alerts,
        Duration::from_secs(10),
        "alone",
    )
    .await;

    let direct = moderators(&setup, &relay, false).await;
    let (through_relay, during) = {
        let work = moderators(&setup, &relay, true);
        let hooks = webhooks_for(
            &setup.http,
            &hook,
            &alerts,
            ACTION_EVERY * (ACTIONS + WARMUP) as u32,
            "busy",
        );
        tokio::join!(work, hooks)
    };

    println!(
        "moderator action round trip (scene.save to result), {MODERATORS} moderators, {ACTIONS} \
         actions each, one per {} ms, {WEBHOOKS_PER_SEC} webhooks/s through the tunnel:",
        ACTION_EVERY.as_millis()
    );
    println!(
        "  direct  p50 {:6.3} ms  p99 {:6.3} ms",
        pct(&direct, 0.50),
        pct(&direct, 0.99)
    );
    println!(
        "  relay   p50 {:6.3} ms  p99 {:6.3} ms",
        pct(&through_relay, 0.50),
        pct(&through_relay, 0.99)
    );
    println!(
        "  relay adds p50 {:+6.3} ms  p99 {:+6.3} ms   (target: under 5 ms p99)",
        pct(&through_relay, 0.50) - pct(&direct, 0.50),
        pct(&through_relay, 0.99) - pct(&direct, 0.99)
    );
    println!("webhook POST to the relay to alert.show on an overlay, {WEBHOOKS_PER_SEC}/s:");
    println!(
        "  no moderators           p50 {:6.3} ms  p99 {:6.3} ms  ({} webhooks)",
        pct(&alone, 0.50),
        pct(&alone, 0.99),
        alone.len()
    );
    println!(
        "  10 relay moderators     p50 {:6.3} ms  p99 {:6.3} ms  ({} webhooks)",
        pct(&during, 0.50),
        pct(&during, 0.99),
        during.len()
    );
    drop(served);
    Ok(())
}

/// Opens `MODERATORS` sessions (through the relay or directly), each with an overlay of its
/// own, runs their actions together, and returns every counted round trip, sorted.
async fn moderators(setup: &Setup, relay: &TestRelay, through_relay: bool) -> Vec<Duration> {
    let mut tasks = tokio::task::JoinSet::new();
    for m in 0..MODERATORS {
        let overlay = setup
            .post("/overlays", serde_json::json!({"name": format!("Mod {m}")}))
            .await;
        let overlay_id = overlay["overlayId"].as_str().unwrap().to_owned();
        let made = setup
            .post(
                "/api/moderator-keys/generate",
                serde_json::json!({"label": format!("Mod {m}"), "scopes": ["scene.edit"]}),
            )
            .await;
        let key = made["key"].as_str().unwrap();
        let (consume, ws) = if through_relay {
            (
                relay.door_url("/api/moderator-keys/consume"),
                relay.door_url("/ws/moderator"),
            )
        } else {
            (
                format!("{}/api/moderator-keys/consume", setup.base),
                format!("{}/ws/moderator", setup.base),
            )
        };
        let opened: serde_json::Value = setup
            .http
            .post(consume)
            .json(&serde_json::json!({ "key": key }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = opened["session"].as_str().unwrap().to_owned();
        let mut request = ws
            .replacen("http://", "ws://", 1)
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "cookie",
            format!("stagehand_moderator={session}").parse().unwrap(),
        );
        let (socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        tasks.spawn(act(socket, overlay_id));
    }
    let mut all = Vec::new();
    while let Some(times) = tasks.join_next().await {
        all.extend(times.unwrap());
    }
    all.sort();
    all
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One moderator: saves its overlay's scene every `ACTION_EVERY`, each after the previous
/// answer, and times send to `result`.
async fn act(mut socket: Socket, overlay_id: String) -> Vec<Duration> {
    let mut version = 1;
    let mut times = Vec::new();
    let mut tick = tokio::time::interval(ACTION_EVERY);
    for i in 0..ACTIONS + WARMUP {
        tick.tick().await;
        let save = serde_json::json!({
            "type": "scene.save", "ref": i, "overlayId": overlay_id, "version": version,
            "scene": { "layers": [{ "id": "t", "kind": "text", "x": i % 500, "y": 40,
                                    "w": 300, "h": 60, "z": 1, "props": { "text": "Hi" } }] }
        });
        let sent = Instant::now();
        socket
            .send(Message::Text(save.to_string().into()))
            .await
            .unwrap();
        loop {
            let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
                .await
                .expect("an answer within 10 s")
                .expect("socket open")
                .expect("no socket error");
            let Message::Text(text) = message else {
                continue;
            };
            let message: serde_json::Value = serde_json::from_str(&text).unwrap();
            if message["type"] == "result" && message["ref"] == i {
                assert_eq!(message["ok"], true, "{message}");
                version = message["version"].as_i64().unwrap();
                if i >= WARMUP {
                    times.push(sent.elapsed());
                }
                break;
            }
        }
    }
    times
}

/// Posts a TradingView alert to the relay `WEBHOOKS_PER_SEC` times a second for `length`, and
/// times each from its POST to `alert.show` on the overlay socket. Returns them sorted.
async fn webhooks_for(
    http: &reqwest::Client,
    hook: &str,
    alerts: &Arc<Mutex<mpsc::UnboundedReceiver<(String, Instant)>>>,
    length: Duration,
    label: &str,
) -> Vec<Duration> {
    let mut alerts = alerts.lock().await;
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / WEBHOOKS_PER_SEC));
    let until = Instant::now() + length;
    let mut times = Vec::new();
    let mut i = 0;
    while Instant::now() < until {
        tick.tick().await;
        let note = format!("{label} {i}");
        i += 1;
        let started = Instant::now();
        let response = http
            .post(hook)
            .header("content-type", "text/plain")
            .body(note.clone())
            .send();
        let (response, shown) = tokio::join!(response, wait_for(&mut alerts, &note));
        assert_eq!(response.unwrap().status(), 202);
        times.push(shown.duration_since(started));
    }
    times.sort();
    times
}
