//! The moderator panel in real headless Chromium: a one-time link opens it, a real mouse drag
//! moves a layer on a live overlay page, list edits are batched into one save, a version
//! conflict is resolved on top of the streamer's change, the link cannot be used twice, and a
//! revoked session ends the panel. Ignored in a plain `cargo test`; `scripts/test` runs it.

use serde_json::{Value, json};
use support::{Browser, TestApp};

const WIDTH: f64 = 1280.0;

async fn overlay_with_text_layers(app: &TestApp) -> (String, String) {
    let created = app.create_overlay("Main").await;
    let id = created["overlayId"].as_str().unwrap().to_owned();
    let scene = json!({ "version": 1, "scene": { "layers": [
        { "id": "title", "kind": "text", "x": 40, "y": 40, "w": 800, "h": 90, "z": 2,
          "style": { "color": "#ffffff", "fontSize": 56 }, "props": { "text": "Hello" } },
        { "id": "badge", "kind": "text", "x": 900, "y": 600, "w": 300, "h": 60, "z": 1,
          "props": { "text": "Subscribe!" } },
        { "id": "alerts", "kind": "alert_box", "x": 340, "y": 200, "w": 600, "h": 220, "z": 5 }
    ] } });
    let saved = app
        .put_as_streamer(&format!("/api/overlays/{id}/scene"))
        .json(&scene)
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 200);
    (id, created["signedUrl"].as_str().unwrap().to_owned())
}

async fn moderator_link(app: &TestApp, scopes: &[&str]) -> String {
    let response = app
        .post_as_streamer("/api/moderator-keys/generate")
        .json(&json!({ "label": "Sam", "scopes": scopes, "ttl_seconds": 600 }))
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "the streamer can make a link: {}",
        response.status()
    );
    let body: Value = response.json().await.unwrap();
    body["link"].as_str().unwrap().to_owned()
}

/// Evaluates `js` in page `name` and returns its value.
async fn eval(browser: &mut Browser, name: &str, js: &str) -> Value {
    browser
        .cmd(json!({"cmd": "eval", "name": name, "js": js}))
        .await["value"]
        .clone()
}

/// Waits until `js` is truthy in page `name`.
async fn wait_until(browser: &mut Browser, name: &str, js: &str) -> Value {
    browser
        .cmd(json!({"cmd": "waitEval", "name": name, "js": js}))
        .await["value"]
        .clone()
}

/// What the overlay page draws for one layer: its position, text and whether it shows.
async fn drawn(browser: &mut Browser, layer: &str) -> Value {
    let js = format!(
        "(() => {{ const el = document.querySelector('[data-layer-id=\"{layer}\"]'); \
         return el && {{ left: el.style.left, top: el.style.top, width: el.style.width, \
         text: el.textContent, shown: el.style.display !== 'none', \
         applied: window.__stagehandOverlay.applied }}; }})()"
    );
    eval(browser, "overlay", &js).await
}

#[tokio::test]
#[cfg_attr(
    not(feature = "chromium"),
    ignore = "tier `chromium`: needs Chromium and node (scripts/test runs it)"
)]
async fn browser_moderator_link_opens_a_panel_whose_edits_reach_the_overlay() {
    let app = TestApp::start().await;
    let (id, signed) = overlay_with_text_layers(&app).await;
    let link = moderator_link(&app, &["scene.edit", "alerts"]).await;
    let mut browser = Browser::start().await;

    let opened = browser
        .cmd(json!({"cmd": "open", "name": "overlay", "url": signed, "width": 1280, "height": 720}))
        .await;
    assert_eq!(
        opened["version"], 2,
        "the overlay page shows the saved scene"
    );

    // The moderator opens the link: its script posts the key and lands on the panel.
    browser
        .cmd(json!({"cmd": "goto", "name": "mod", "url": link, "width": 1280, "height": 900}))
        .await;
    browser
        .cmd(json!({"cmd": "waitPath", "name": "mod", "path": "/moderator"}))
        .await;
    let versions = format!("window.__stagehandModerator?.versions?.[{id:?}]");
    wait_until(
        &mut browser,
        "mod",
        &format!("window.__stagehandModerator?.state === 'open' && {versions} === 2"),
    )
    .await;
    let page = eval(
        &mut browser,
        "mod",
        "({ label: document.getElementById('label').textContent, \
           scopes: document.getElementById('scopes').textContent, \
           tts: document.getElementById('tts-form') !== null, \
           alert: document.getElementById('alert-form') !== null, \
           obs: document.body.textContent.includes('OBS scenes'), \
           boxes: document.querySelectorAll('#stage .box').length, \
           rows: document.querySelectorAll('#layers .layer-row').length })",
    )
    .await;
    assert_eq!(page["label"], "Sam", "the panel says who the moderator is");
    assert!(
        page["scopes"]
            .as_str()
            .unwrap()
            .contains("Edit overlay scenes"),
        "{page}"
    );
    assert_eq!(page["tts"], false, "no tts scope, no TTS form: {page}");
    assert_eq!(
        page["alert"], true,
        "the alerts scope brings the alert form"
    );
    assert_eq!(page["obs"], false, "no obs.scenes scope, no OBS section");
    assert_eq!(page["boxes"], 3, "every layer is drawn on the stage");
    assert_eq!(page["rows"], 3, "every layer is listed");

    // A real mouse drag by (+100, +50) screen pixels moves the layer by that much over the
    // stage's scale, in one save.
    let stage_width = eval(
        &mut browser,
        "mod",
        "document.getElementById('stage').getBoundingClientRect().width",
    )
    .await
    .as_f64()
    .unwrap();
    let scale = stage_width / WIDTH;
    assert!(
        scale > 0.2 && scale <= 1.0,
        "the stage fits the panel: {scale}"
    );
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
    let title = drawn(&mut browser, "title").await;
    assert_eq!(
        title["applied"], 3,
        "the whole drag went out as one save, the next version: {title}"
    );
    let px = |v: &Value| {
        v.as_str()
            .unwrap()
            .trim_end_matches("px")
            .parse::<f64>()
            .unwrap()
    };
    let (want_x, want_y) = (40.0 + 100.0 / scale, 40.0 + 50.0 / scale);
    assert!(
        (px(&title["left"]) - want_x).abs() <= 1.0,
        "moved right by 100 screen px over scale {scale}: {title}"
    );
    assert!(
        (px(&title["top"]) - want_y).abs() <= 1.0,
        "moved down by 50 screen px over scale {scale}: {title}"
    );
    assert_eq!(title["width"], "800px", "a move keeps the size");
    let stored = app.get_json(&format!("/api/overlays/{id}/scene")).await;
    let stored_title = &stored["scene"]["layers"][0];
    assert_eq!(
        stored_title["style"]["fontSize"], 56,
        "fields the panel does not edit survive its save: {stored}"
    );
    assert_eq!(
        stored_title["x"].as_f64().unwrap().fract(),
        0.0,
        "positions are whole pixels: {stored}"
    );

    // Two list edits in quick succession (text, visibility) go out as one save.
    eval(
        &mut browser,
        "mod",
        "(() => { \
           const text = document.querySelector('.layer-row[data-layer-id=\"title\"] input[type=text]'); \
           text.value = 'Live now'; text.dispatchEvent(new Event('input', { bubbles: true })); \
           document.querySelector('.layer-row[data-layer-id=\"badge\"] input[type=checkbox]').click(); \
           return true; })()",
    )
    .await;
    wait_until(
        &mut browser,
        "mod",
        &format!("window.__stagehandModerator.pendingSaves === 0 && {versions} === 4"),
    )
    .await;
    wait_until(
        &mut browser,
        "overlay",
        "window.__stagehandOverlay.applied >= 4",
    )
    .await;
    let (title, badge) = (
        drawn(&mut browser, "title").await,
        drawn(&mut browser, "badge").await,
    );
    assert_eq!(title["applied"], 4, "both edits were batched into one save");
    assert_eq!(title["text"], "Live now");
    assert_eq!(badge["shown"], false, "the badge was hidden: {badge}");

    // A version conflict: the panel's next save is held on the wire while the streamer saves
    // a scene without the badge. The panel lays its edits over the streamer's scene, drops the
    // one for the removed layer, says so, and saves again.
    eval(
        &mut browser,
        "mod",
        "(() => { \
           const send = WebSocket.prototype.send; window.__held = []; window.__hold = true; \
           WebSocket.prototype.send = function (data) { \
             if (window.__hold && String(data).includes('\"scene.save\"')) { window.__held.push([this, data]); return; } \
             return send.call(this, data); }; \
           window.__release = () => { window.__hold = false; \
             for (const [ws, data] of window.__held.splice(0)) send.call(ws, data); }; \
           const text = document.querySelector('.layer-row[data-layer-id=\"title\"] input[type=text]'); \
           text.value = 'Edited by Sam'; text.dispatchEvent(new Event('input', { bubbles: true })); \
           document.querySelector('.layer-row[data-layer-id=\"badge\"] input[type=checkbox]').click(); \
           return true; })()",
    )
    .await;
    wait_until(&mut browser, "mod", "window.__held.length === 1").await;
    let streamer = json!({ "version": 4, "scene": { "layers": [
        { "id": "title", "kind": "text", "x": 10, "y": 10, "w": 800, "h": 90, "z": 2,
          "props": { "text": "Live now" } },
        { "id": "logo", "kind": "text", "x": 1000, "y": 20, "w": 200, "h": 60,
          "props": { "text": "LOGO" } }
    ] } });
    let saved = app
        .put_as_streamer(&format!("/api/overlays/{id}/scene"))
        .json(&streamer)
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 200, "the streamer's save lands first");
    wait_until(&mut browser, "mod", &format!("{versions} === 5")).await;
    eval(&mut browser, "mod", "window.__release()").await;
    wait_until(
        &mut browser,
        "mod",
        &format!("window.__stagehandModerator.pendingSaves === 0 && {versions} === 6"),
    )
    .await;
    wait_until(
        &mut browser,
        "overlay",
        "window.__stagehandOverlay.applied >= 6",
    )
    .await;
    let title = drawn(&mut browser, "title").await;
    assert_eq!(
        title["text"], "Edited by Sam",
        "the moderator's edit survived the conflict"
    );
    assert_eq!(
        title["left"], "10px",
        "on top of the streamer's move: {title}"
    );
    assert!(
        drawn(&mut browser, "logo").await.is_object(),
        "the streamer's new layer stays"
    );
    assert!(
        drawn(&mut browser, "badge").await.is_null(),
        "the removed layer is not brought back"
    );
    let said = eval(
        &mut browser,
        "mod",
        "document.getElementById('status').textContent",
    )
    .await;
    assert!(
        said.as_str().unwrap().contains("“badge” was removed"),
        "the moderator is told their change to the removed layer was dropped: {said}"
    );

    // The same link again, from another browser: already used.
    browser
        .cmd(json!({"cmd": "goto", "name": "again", "url": link}))
        .await;
    browser
        .cmd(json!({"cmd": "waitText", "name": "again", "selector": "#refused", "text": "already used or has expired"}))
        .await;
    let again = eval(&mut browser, "again", "location.pathname").await;
    assert_ne!(again, "/moderator", "a used link opens no panel");

    // On a phone-size screen the panel fits without sideways scrolling.
    browser
        .cmd(json!({"cmd": "resize", "name": "mod", "width": 375, "height": 740}))
        .await;
    wait_until(
        &mut browser,
        "mod",
        "document.documentElement.scrollWidth <= 375 && \
         document.getElementById('stage').getBoundingClientRect().width < 375",
    )
    .await;
    let shot = std::env::temp_dir().join("stagehand-moderator-phone.png");
    browser
        .cmd(json!({"cmd": "screenshot", "name": "mod", "path": shot}))
        .await;

    // The streamer revokes the session: the panel says access has ended and stops.
    let sessions = app.get_json("/api/moderator-sessions").await;
    let session = sessions["sessions"][0]["id"].as_str().unwrap().to_owned();
    let revoked = app
        .client
        .delete(app.at(&format!("/api/moderator-sessions/{session}")))
        .header("x-streamer-token", &app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    wait_until(
        &mut browser,
        "mod",
        "window.__stagehandModerator.state === 'ended' && \
         !document.getElementById('ended').hidden && \
         document.querySelector('#alert-form button').disabled",
    )
    .await;
    browser.quit().await;
}
