//! A remote moderator in real headless Chromium, through a real relay, against the real
//! `stagehand serve` binary: the relay link opens the panel, a mouse drag moves a layer that an
//! overlay page on the streamer's side then shows, the link cannot be opened twice, and when
//! the engine is killed the panel says the streamer's app is offline and reconnects by itself
//! once it is back. Ignored in a plain `cargo test` (needs Chromium and node); `scripts/test`
//! runs it.

#![allow(missing_docs)]
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use support::Browser;
use support::relay::TestRelay;
use tokio::process::Child;

mod common;

use common::{create_overlay, serve, streamer_token};

/// Starts `stagehand serve` and returns once the engine is linked to the relay.
async fn serve_linked(dir: &Path, relay: &TestRelay) -> (Child, String) {
    let served = serve(dir, relay).await;
    // The relay counts the link once it is attached; wait for that, not for a time.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while relay.relay().connected_links() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the engine links to the relay within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    served
}

async fn eval(browser: &mut Browser, name: &str, js: &str) -> Value {
    browser
        .cmd(json!({"cmd": "eval", "name": name, "js": js}))
        .await["value"]
        .clone()
}

async fn wait_until(browser: &mut Browser, name: &str, js: &str) -> Value {
    browser
        .cmd(json!({"cmd": "waitEval", "name": name, "js": js, "timeout_ms": 30_000}))
        .await["value"]
        .clone()
}

#[tokio::test]
#[cfg_attr(
    not(feature = "chromium"),
    ignore = "tier `chromium`: needs Chromium and node (scripts/test runs it)"
)]
async fn browser_remote_moderator_moves_a_layer_through_the_relay_and_survives_a_killed_engine() {
    let relay = TestRelay::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut engine, url) = serve_linked(dir.path(), &relay).await;
    let token = streamer_token(dir.path(), &relay).await;
    let http = reqwest::Client::new();

    let overlay = create_overlay(&http, &url, &token).await;
    let id = overlay["overlayId"].as_str().unwrap().to_owned();
    let saved = http
        .put(format!("{url}/api/overlays/{id}/scene"))
        .header("x-streamer-token", &token)
        .json(&json!({ "version": 1, "scene": { "layers": [
            { "id": "title", "kind": "text", "x": 40, "y": 40, "w": 800, "h": 90, "z": 1,
              "props": { "text": "Hello" } }
        ] } }))
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 200);
    let made: Value = http
        .post(format!("{url}/api/moderator-keys/generate"))
        .header("x-streamer-token", &token)
        .json(&json!({ "label": "Remote Sam", "scopes": ["scene.edit"], "ttl_seconds": 600 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let link = made["link"].as_str().unwrap().to_owned();
    let prefix = format!("/t/{}", relay.tunnel_id);
    assert!(
        link.starts_with(&format!("{}{prefix}/m/", relay.url)),
        "the link is on the relay: {link}"
    );

    let mut browser = Browser::start().await;
    let opened = browser
        .cmd(json!({"cmd": "open", "name": "overlay", "url": overlay["signedUrl"], "width": 1280, "height": 720}))
        .await;
    assert_eq!(opened["version"], 2);

    // The moderator opens the relay link and lands on the panel, under the tunnel's prefix.
    browser
        .cmd(json!({"cmd": "goto", "name": "mod", "url": link, "width": 1280, "height": 900}))
        .await;
    browser
        .cmd(json!({"cmd": "waitPath", "name": "mod", "path": format!("{prefix}/moderator"), "timeout_ms": 30_000}))
        .await;
    let versions = format!("window.__stagehandModerator?.versions?.[{id:?}]");
    wait_until(
        &mut browser,
        "mod",
        &format!("window.__stagehandModerator?.state === 'open' && {versions} === 2"),
    )
    .await;
    assert_eq!(
        eval(
            &mut browser,
            "mod",
            "document.getElementById('label').textContent"
        )
        .await,
        "Remote Sam"
    );

    // A real drag moves the title; the overlay on the streamer's side shows the next version.
    browser
        .cmd(json!({"cmd": "drag", "name": "mod", "selector": "#stage .box[data-layer-id=\"title\"]", "dx": 100, "dy": 50}))
        .await;
    wait_until(
        &mut browser,
        "mod",
        &format!("window.__stagehandModerator.pendingSaves === 0 && {versions} === 3"),
    )
    .await;
    wait_until(
        &mut browser,
        "overlay",
        "window.__stagehandOverlay.applied >= 3 && \
         document.querySelector('[data-layer-id=\"title\"]').style.left !== '40px'",
    )
    .await;
    let left = eval(
        &mut browser,
        "overlay",
        "parseFloat(document.querySelector('[data-layer-id=\"title\"]').style.left)",
    )
    .await;
    assert!(
        left.as_f64().unwrap() > 100.0,
        "moved right by the drag: {left}"
    );

    // The same link again, through the relay: the "already used" page.
    browser
        .cmd(json!({"cmd": "goto", "name": "again", "url": link}))
        .await;
    let refused = wait_until(
        &mut browser,
        "again",
        "document.getElementById('refused')?.textContent",
    )
    .await;
    assert!(
        refused.as_str().unwrap().contains("already used"),
        "{refused}"
    );

    // The engine is killed: the panel says the streamer's app is offline…
    engine.kill().await.unwrap();
    wait_until(
        &mut browser,
        "mod",
        "window.__stagehandModerator.state === 'offline' && \
         document.getElementById('connection').textContent.includes('offline')",
    )
    .await;
    // …and once it is back (another port: the relay does not care), reconnects by itself.
    let (_engine, _) = serve_linked(dir.path(), &relay).await;
    wait_until(
        &mut browser,
        "mod",
        &format!("window.__stagehandModerator.state === 'open' && {versions} === 3"),
    )
    .await;
    browser.quit().await;
}
