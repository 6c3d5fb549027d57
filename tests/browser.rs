//! Overlay pages in real headless Chromium (Debian's `chromium`, driven by playwright-core).
//! Ignored in a plain `cargo test`; `scripts/test` runs them after installing the browser.

use support::{Browser, TestApp};

async fn overlay_with_scene(app: &TestApp) -> (String, String) {
    let created: serde_json::Value = app
        .post("/overlays")
        .header("x-streamer-token", &app.token)
        .json(&serde_json::json!({ "name": "Main", "width": 1280, "height": 720 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["overlayId"].as_str().unwrap().to_owned();
    let scene = serde_json::json!({ "version": 1, "scene": { "layers": [
        { "id": "title", "kind": "text", "x": 40, "y": 40, "w": 800, "h": 90, "z": 2,
          "style": { "color": "#ffffff", "fontSize": 56, "fontWeight": "700" },
          "props": { "text": "Hello <b>Stagehand</b>" } },
        { "id": "alerts", "kind": "alert_box", "x": 340, "y": 200, "w": 600, "h": 220, "z": 5 },
        { "id": "hidden", "kind": "text", "x": 0, "y": 600, "w": 300, "h": 50, "visible": false,
          "props": { "text": "not shown" } }
    ] } });
    let saved = app
        .client
        .put(app.at(&format!("/api/overlays/{id}/scene")))
        .header("x-streamer-token", &app.token)
        .json(&scene)
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 200);
    (id, created["signedUrl"].as_str().unwrap().to_owned())
}

#[tokio::test]
#[ignore = "needs Chromium and node; run by scripts/test"]
async fn browser_overlay_shows_the_scene_and_alerts_on_every_page() {
    let app = TestApp::start().await;
    let (id, signed) = overlay_with_scene(&app).await;
    let mut browser = Browser::start().await;

    let a = browser.cmd(serde_json::json!({"cmd": "open", "name": "a", "url": signed, "width": 1280, "height": 720})).await;
    assert_eq!(a["version"], 2, "the page applied the saved scene");
    browser.cmd(serde_json::json!({"cmd": "open", "name": "b", "url": signed, "width": 1280, "height": 720})).await;
    browser
        .cmd(serde_json::json!({"cmd": "waitText", "name": "a", "selector": "[data-layer-id=\"title\"]", "text": "Hello <b>Stagehand</b>"}))
        .await;

    let sent: serde_json::Value = app
        .post("/api/alerts")
        .header("x-streamer-token", &app.token)
        .json(&serde_json::json!({ "overlayId": id, "kind": "follow", "title": "New follower", "message": "ada_lovelace" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sent["pages"], 2);
    for page in ["a", "b"] {
        let shown = browser
            .cmd(serde_json::json!({"cmd": "waitAlert", "name": page, "title": "New follower"}))
            .await;
        assert_eq!(
            shown["alertId"], sent["id"],
            "page {page} shows the alert that was sent"
        );
    }
    let shot = std::env::temp_dir().join("stagehand-overlay-test.png");
    browser
        .cmd(serde_json::json!({"cmd": "screenshot", "name": "a", "path": shot, "background": "#3a3f4b"}))
        .await;
    let state = browser
        .cmd(serde_json::json!({"cmd": "state", "name": "b"}))
        .await;
    assert_eq!(state["state"]["state"], "open");
    assert_eq!(state["state"]["applied"], 2);

    // An edit is pushed and drawn without reloading.
    let edit = serde_json::json!({ "version": 2, "scene": { "layers": [
        { "id": "title", "kind": "text", "x": 60, "y": 40, "w": 800, "h": 90, "props": { "text": "Live now" } }
    ] } });
    let saved = app
        .client
        .put(app.at(&format!("/api/overlays/{id}/scene")))
        .header("x-streamer-token", &app.token)
        .json(&edit)
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 200);
    browser
        .cmd(serde_json::json!({"cmd": "waitApplied", "name": "a", "version": 3}))
        .await;
    browser
        .cmd(serde_json::json!({"cmd": "waitText", "name": "a", "selector": "[data-layer-id=\"title\"]", "text": "Live now"}))
        .await;

    // Forged and deleted links are refused by the page itself.
    let forged = browser
        .cmd(serde_json::json!({"cmd": "status", "url": signed.replace("sig=", "sig=A")}))
        .await;
    assert_eq!(forged["status"], 403);
    let deleted = app
        .client
        .delete(app.at(&format!("/overlays/{id}")))
        .header("x-streamer-token", &app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let closed = browser
        .cmd(serde_json::json!({"cmd": "waitState", "name": "a", "state": "closed"}))
        .await;
    assert_eq!(
        closed["state"]["state"], "closed",
        "deleting the overlay closes the open page: {closed}"
    );
    assert_eq!(closed["state"]["closeCode"], 4403);
    browser.quit().await;
}
