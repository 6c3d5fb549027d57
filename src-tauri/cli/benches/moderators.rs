//! Moderator benchmark.
//!
//! Run: `cargo bench -p stagehand --bench moderators` (release build). It starts the real
//! `stagehand serve` (consume rate limit raised, since every request comes from 127.0.0.1) and
//! measures:
//! - 1,000 concurrent consumes of 1,000 distinct keys: throughput and p50/p99 latency;
//! - moderator edit → overlay: 10 moderators, each editing its own overlay shown on 10 pages
//!   (100 overlay pages), all editing at once for 50 rounds; the time from a moderator's
//!   `scene.save` to the moment every page of that overlay has the new version, p50/p99.

#![allow(missing_docs)]
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

mod common;

use common::pct;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_json(socket: &mut Socket) -> serde_json::Value {
    loop {
        if let Some(Ok(Message::Text(t))) = socket.next().await {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let served = common::Served::start(&[(
        "STAGEHAND_MODERATORS_CONSUME_ATTEMPTS_PER_MINUTE",
        "1000000",
    )]);
    let (port, base, token) = (served.port, served.base.clone(), served.token.clone());
    let client = reqwest::Client::new();
    let generate = |scopes: serde_json::Value| {
        client
            .post(format!("{base}/api/moderator-keys/generate"))
            .header("x-streamer-token", &token)
            .json(&serde_json::json!({ "label": "bench", "scopes": scopes }))
            .send()
    };

    // 1. Consumes.
    let mut keys = Vec::new();
    for _ in 0..1000 {
        let made: serde_json::Value = generate(serde_json::json!(["alerts"]))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        keys.push(made["key"].as_str().unwrap().to_owned());
    }
    let started = Instant::now();
    let tasks: Vec<_> = keys
        .into_iter()
        .map(|key| {
            let client = client.clone();
            let url = format!("{base}/api/moderator-keys/consume");
            tokio::spawn(async move {
                let t0 = Instant::now();
                let r = client
                    .post(url)
                    .json(&serde_json::json!({ "key": key }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                t0.elapsed()
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.push(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    println!("1,000 concurrent consumes of 1,000 keys (release, loopback):");
    println!(
        "  {:.0} consumes/s, latency p50 {:.2} ms, p99 {:.2} ms",
        1000.0 / elapsed.as_secs_f64(),
        pct(&latencies, 0.5),
        pct(&latencies, 0.99)
    );

    // 2. Edits: 10 moderators, 10 overlays, 10 pages each.
    let mut overlays = Vec::new();
    let mut pages: Vec<Vec<Socket>> = Vec::new();
    for i in 0..10 {
        let o = common::create_overlay(&client, &base, &token, &format!("bench {i}")).await;
        let url = o["signedUrl"]
            .as_str()
            .unwrap()
            .replacen("http://", "ws://", 1)
            .replacen("/o/", "/ws/overlay/", 1);
        let mut these = Vec::new();
        for _ in 0..10 {
            let (mut s, _) = tokio_tungstenite::connect_async(url.as_str())
                .await
                .unwrap();
            next_json(&mut s).await;
            these.push(s);
        }
        pages.push(these);
        overlays.push(o["overlayId"].as_str().unwrap().to_owned());
    }
    let mut moderators = Vec::new();
    for _ in 0..10 {
        let made: serde_json::Value = generate(serde_json::json!(["scene.edit"]))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let opened: serde_json::Value = client
            .post(format!("{base}/api/moderator-keys/consume"))
            .json(&serde_json::json!({ "key": made["key"] }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let url = format!(
            "ws://127.0.0.1:{port}/ws/moderator?session={}",
            opened["session"].as_str().unwrap()
        );
        let (s, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        moderators.push(s);
    }
    let mut edits = Vec::new();
    let mut versions = [1i64; 10];
    for round in 0..50 {
        let t0 = Instant::now();
        for (m, socket) in moderators.iter_mut().enumerate() {
            let action = serde_json::json!({ "type": "scene.save", "ref": format!("{round}-{m}"), "overlayId": overlays[m],
                "version": versions[m], "scene": { "layers": [{ "id": "t", "kind": "text", "x": round, "y": m, "w": 100, "h": 40 }] } });
            socket
                .send(Message::Text(action.to_string().into()))
                .await
                .unwrap();
        }
        for (m, these) in pages.iter_mut().enumerate() {
            let want = versions[m] + 1;
            let mut last = t0;
            for page in these.iter_mut() {
                loop {
                    let msg = next_json(page).await;
                    // `scene.full` says `version`, `scene.patch` `to_version`.
                    let version = msg["version"].as_i64().or(msg["to_version"].as_i64());
                    if version == Some(want) {
                        last = last.max(Instant::now());
                        break;
                    }
                }
            }
            edits.push(last - t0);
            versions[m] = want;
        }
        // Drain the moderators' results and scene echoes.
        for socket in moderators.iter_mut() {
            loop {
                let msg = next_json(socket).await;
                if msg["type"] == "result" {
                    assert_eq!(msg["ok"], true, "{msg}");
                    break;
                }
            }
        }
    }
    edits.sort();
    println!(
        "moderator edit -> every page of that overlay has the version (10 moderators, 100 pages):"
    );
    println!(
        "  p50 {:.2} ms, p99 {:.2} ms over {} edits",
        pct(&edits, 0.5),
        pct(&edits, 0.99),
        edits.len()
    );
}
