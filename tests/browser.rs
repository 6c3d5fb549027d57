//! Overlay pages in real headless Chromium (Debian's `chromium`, driven by playwright-core).
//! Ignored in a plain `cargo test`; `scripts/test` runs them after installing the browser.

use support::{Browser, TestApp};

async fn overlay_with_scene(app: &TestApp) -> (String, String) {
    let created = app.create_overlay("Main").await;
    let id = created["overlayId"].as_str().unwrap().to_owned();
    let layers = serde_json::json!([
        { "id": "title", "kind": "text", "x": 40, "y": 40, "w": 800, "h": 90, "z": 2,
          "style": { "color": "#ffffff", "fontSize": 56, "fontWeight": "700" },
          "props": { "text": "Hello <b>Stagehand</b>" } },
        { "id": "alerts", "kind": "alert_box", "x": 340, "y": 200, "w": 600, "h": 220, "z": 5 },
        { "id": "hidden", "kind": "text", "x": 0, "y": 600, "w": 300, "h": 50, "visible": false,
          "props": { "text": "not shown" } }
    ]);
    assert_eq!(app.save_scene(&id, 1, layers).await.status(), 200);
    (id, created["signedUrl"].as_str().unwrap().to_owned())
}

#[tokio::test]
#[cfg_attr(
    not(feature = "chromium"),
    ignore = "tier `chromium`: needs Chromium and node (scripts/test runs it)"
)]
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

    let sent: serde_json::Value = app.post_as_streamer("/api/alerts")
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

    // Edits are pushed and drawn without reloading. Moving the title in a scene of three is
    // sent as a patch (the title and the order), which the page applies to what it has.
    let drawn_js = "[...document.querySelectorAll('[data-layer-id]')].map((e) => `${e.dataset.layerId}@${e.style.left}`).join(',') + ` patches=${window.__stagehandOverlay.patches}`";
    let mut layers = serde_json::json!([
        { "id": "title", "kind": "text", "x": 60, "y": 40, "w": 800, "h": 90, "z": 2,
          "style": { "color": "#ffffff", "fontSize": 56, "fontWeight": "700" },
          "props": { "text": "Live now" } },
        { "id": "alerts", "kind": "alert_box", "x": 340, "y": 200, "w": 600, "h": 220, "z": 5 },
        { "id": "hidden", "kind": "text", "x": 0, "y": 600, "w": 300, "h": 50, "visible": false,
          "props": { "text": "not shown" } }
    ]);
    assert_eq!(app.save_scene(&id, 2, layers.clone()).await.status(), 200);
    browser
        .cmd(serde_json::json!({"cmd": "waitApplied", "name": "a", "version": 3}))
        .await;
    browser
        .cmd(serde_json::json!({"cmd": "waitText", "name": "a", "selector": "[data-layer-id=\"title\"]", "text": "Live now"}))
        .await;
    let drawn = browser
        .cmd(serde_json::json!({"cmd": "eval", "name": "a", "js": drawn_js}))
        .await;
    assert_eq!(
        drawn["value"], "title@60px,alerts@340px,hidden@0px patches=1",
        "{drawn}"
    );
    // Two layers removed: only the title is left.
    layers.as_array_mut().unwrap().truncate(1);
    assert_eq!(app.save_scene(&id, 3, layers).await.status(), 200);
    browser
        .cmd(serde_json::json!({"cmd": "waitApplied", "name": "a", "version": 4}))
        .await;
    let drawn = browser
        .cmd(serde_json::json!({"cmd": "eval", "name": "a", "js": "[...document.querySelectorAll('[data-layer-id]')].map((e) => e.dataset.layerId).join(',')"}))
        .await;
    assert_eq!(drawn["value"], "title", "{drawn}");

    // Forged and deleted links are refused by the page itself.
    let forged = browser
        .cmd(serde_json::json!({"cmd": "status", "url": signed.replace("sig=", "sig=A")}))
        .await;
    assert_eq!(forged["status"], 403);
    let deleted = app
        .client
        .delete(app.at(&format!("/api/overlays/{id}")))
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

#[tokio::test]
#[cfg_attr(
    not(feature = "chromium"),
    ignore = "tier `chromium`: needs Chromium and node (scripts/test runs it)"
)]
async fn browser_chart_and_chat_widgets_draw_pushed_data() {
    let app = TestApp::start().await;
    let created = app.create_overlay("Trading").await;
    let id = created["overlayId"].as_str().unwrap().to_owned();
    let layers = serde_json::json!([
        { "id": "price", "kind": "chart", "x": 20, "y": 20, "w": 760, "h": 420,
          "props": { "symbol": "BTCUSD", "series": "line", "color": "#f7931a" } },
        { "id": "chat", "kind": "chat_box", "x": 820, "y": 20, "w": 420, "h": 420 }
    ]);
    assert_eq!(app.save_scene(&id, 1, layers).await.status(), 200);
    let mut browser = Browser::start().await;
    let url = created["signedUrl"].as_str().unwrap();
    browser.cmd(serde_json::json!({"cmd": "open", "name": "a", "url": url, "width": 1280, "height": 720})).await;
    browser
        .cmd(serde_json::json!({"cmd": "waitSelector", "name": "a", "selector": "[data-layer-id=\"price\"] canvas"}))
        .await;

    let points: Vec<serde_json::Value> = (0..50)
        .map(|i: i32| serde_json::json!({ "time": 1_800_000_000 + i64::from(i) * 60, "value": 60_000.0 + f64::from(i * 37 % 500) }))
        .collect();
    let pushed = app.post_as_streamer("/api/chart/updates")
        .json(&serde_json::json!({ "overlayId": id, "symbol": "BTCUSD", "replace": true, "points": points }))
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), 202);
    let chat = app.post_as_streamer("/api/chat/messages")
        .json(&serde_json::json!({ "overlayId": id, "user": "grace", "text": "<i>to the moon</i>", "color": "#33ccff" }))
        .send()
        .await
        .unwrap();
    assert_eq!(chat.status(), 202);
    browser
        .cmd(serde_json::json!({"cmd": "waitText", "name": "a", "selector": "[data-layer-id=\"chat\"]", "text": "<i>to the moon</i>"}))
        .await;
    browser
        .cmd(serde_json::json!({"cmd": "waitText", "name": "a", "selector": "[data-layer-id=\"price\"] .chart-attribution", "text": "TradingView"}))
        .await;
    browser
        .cmd(serde_json::json!({"cmd": "waitSelector", "name": "a", "selector": "[data-layer-id=\"price\"] a[href*=\"tradingview.com\"]"}))
        .await;
    let state = browser
        .cmd(serde_json::json!({"cmd": "state", "name": "a"}))
        .await;
    assert_eq!(state["state"]["chartPoints"]["BTCUSD"], 50, "{state}");
    assert_eq!(state["state"]["chartsReady"], 1);
    let shot = std::env::temp_dir().join("stagehand-overlay-chart.png");
    browser
        .cmd(serde_json::json!({"cmd": "screenshot", "name": "a", "path": shot, "background": "#1b1e24"}))
        .await;
    browser.quit().await;
}

/// What the desktop shell does with its window, in a real browser: the sign-in page takes a
/// one-time code (never a URL parameter), lands on the home page, and the live link connects.
#[tokio::test]
#[cfg_attr(
    not(feature = "chromium"),
    ignore = "tier `chromium`: needs Chromium and node (scripts/test runs it)"
)]
async fn browser_panel_signs_in_with_a_one_time_code_and_goes_live() {
    let app = TestApp::start().await;
    let mut browser = Browser::start().await;
    let login = browser
        .cmd(serde_json::json!({"cmd": "goto", "name": "p", "url": app.at("/")}))
        .await;
    assert!(
        login["url"].as_str().unwrap().ends_with("/login"),
        "signed out, / sends you to sign in: {login}"
    );

    let code = app.engine.issue_login_code().unwrap();
    let js = format!(
        "window.__stagehandSignIn({})",
        serde_json::to_string(code.expose()).unwrap()
    );
    browser
        .cmd(serde_json::json!({"cmd": "eval", "name": "p", "js": js}))
        .await;
    browser
        .cmd(serde_json::json!({"cmd": "waitPath", "name": "p", "path": "/"}))
        .await;
    browser
        .cmd(serde_json::json!({"cmd": "waitText", "name": "p", "selector": "#version", "text": stagehand_engine::VERSION}))
        .await;
    browser
        .cmd(serde_json::json!({"cmd": "waitText", "name": "p", "selector": "#live", "text": "connected"}))
        .await;
    // Something happens in the engine: the panel's activity list shows it live.
    let denied = app
        .post("/session")
        .json(&serde_json::json!({ "token": "wrong" }))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);
    browser
        .cmd(serde_json::json!({"cmd": "waitText", "name": "p", "selector": "#activity", "text": "auth.login (denied)"}))
        .await;
    let url = browser
        .cmd(serde_json::json!({"cmd": "eval", "name": "p", "js": "location.href"}))
        .await;
    assert!(
        !url["value"].as_str().unwrap().contains(code.expose()),
        "the code is never in the URL"
    );
    // Signing out with the page's own form, then in again with the token form: real form posts,
    // whose Origin the guard checks.
    browser
        .cmd(serde_json::json!({"cmd": "eval", "name": "p", "js": "document.querySelector('form[action=\"/session/logout\"]').submit()"}))
        .await;
    browser
        .cmd(serde_json::json!({"cmd": "waitPath", "name": "p", "path": "/login"}))
        .await;
    let fill = format!(
        "document.getElementById('token').value = {}; document.getElementById('login').submit()",
        serde_json::to_string(&app.token).unwrap()
    );
    browser
        .cmd(serde_json::json!({"cmd": "eval", "name": "p", "js": fill}))
        .await;
    browser
        .cmd(serde_json::json!({"cmd": "waitPath", "name": "p", "path": "/"}))
        .await;
    browser
        .cmd(serde_json::json!({"cmd": "waitText", "name": "p", "selector": "#version", "text": stagehand_engine::VERSION}))
        .await;
    browser.quit().await;
}
