//! The streamer's control panel in real headless Chromium, against the real engine: every page
//! renders behind the session (and sends you to sign in without one), and the main flows work by
//! clicking: create an overlay, give it text in the shared scene editor, copy its link and open
//! it; invite a moderator, see the session, revoke it; reveal and rotate the TradingView token
//! (the old one is then refused, the new one accepted); errors from the API are shown in words.
//! Ignored in a plain `cargo test`; `scripts/test` runs them.

use serde_json::{Value, json};
use support::{Browser, TestApp};

const PAGES: &[(&str, &str)] = &[
    ("/", "Home"),
    ("/panel/overlays", "Overlays"),
    ("/panel/moderators", "Moderators"),
    ("/panel/accounts", "Accounts"),
    ("/panel/webhooks", "Webhooks"),
    ("/panel/settings", "Settings"),
];

async fn eval(browser: &mut Browser, name: &str, js: &str) -> Value {
    browser
        .cmd(json!({"cmd": "eval", "name": name, "js": js}))
        .await["value"]
        .clone()
}

async fn wait_until(browser: &mut Browser, name: &str, js: &str) -> Value {
    browser
        .cmd(json!({"cmd": "waitEval", "name": name, "js": js, "timeout_ms": 15000}))
        .await["value"]
        .clone()
}

async fn click(browser: &mut Browser, name: &str, selector: &str) {
    browser
        .cmd(json!({"cmd": "click", "name": name, "selector": selector}))
        .await;
}

async fn fill(browser: &mut Browser, name: &str, selector: &str, value: &str) {
    browser
        .cmd(json!({"cmd": "fill", "name": name, "selector": selector, "value": value}))
        .await;
}

/// Signs in with the token form, as a person would, in a fresh page `name`.
async fn sign_in(browser: &mut Browser, app: &TestApp, name: &str) {
    let landed = browser
        .cmd(json!({"cmd": "goto", "name": name, "url": app.at("/"), "width": 1280, "height": 900}))
        .await;
    assert!(
        landed["url"].as_str().unwrap().ends_with("/login"),
        "signed out, the panel sends you to sign in: {landed}"
    );
    fill(browser, name, "#token", &app.token).await;
    click(browser, name, "#login button[type=submit]").await;
    browser
        .cmd(json!({"cmd": "waitPath", "name": name, "path": "/"}))
        .await;
}

async fn open_page(browser: &mut Browser, app: &TestApp, name: &str, path: &str) {
    let loaded = browser
        .cmd(json!({"cmd": "navigate", "name": name, "url": app.at(path)}))
        .await;
    assert_eq!(loaded["status"], 200, "{path} loads: {loaded}");
    // The page's scripts ran under the CSP (no inline script, `script-src 'self'`).
    wait_until(
        browser,
        name,
        "typeof window.Stagehand === 'object' && window.__stagehandPanel",
    )
    .await;
}

async fn clipboard(browser: &mut Browser, name: &str) -> String {
    browser.cmd(json!({"cmd": "clipboard", "name": name})).await["text"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
#[cfg_attr(
    not(feature = "chromium"),
    ignore = "tier `chromium`: needs Chromium and node (scripts/test runs it)"
)]
async fn browser_panel_pages_need_a_session_and_render_behind_it() {
    let app = TestApp::start().await;
    let mut browser = Browser::start().await;
    for (path, _) in PAGES {
        let landed = browser
            .cmd(json!({"cmd": "goto", "name": "anon", "url": app.at(path)}))
            .await;
        assert!(
            landed["url"].as_str().unwrap().ends_with("/login"),
            "{path} without a session redirects to sign in: {landed}"
        );
    }

    sign_in(&mut browser, &app, "p").await;
    for (path, title) in PAGES {
        open_page(&mut browser, &app, "p", path).await;
        let page = eval(
            &mut browser,
            "p",
            "({ title: document.querySelector('h1.page-title').textContent, \
               current: document.querySelector('nav a[aria-current=page]').getAttribute('href'), \
               links: [...document.querySelectorAll('nav a')].map((a) => a.textContent), \
               signOut: document.querySelector('form[action=\"/session/logout\"] button') !== null, \
               unlabelled: [...document.querySelectorAll('input:not([type=hidden]), select, textarea')] \
                 .filter((el) => !el.closest('#editor .layer-row') && !el.labels?.length && !el.getAttribute('aria-label')) \
                 .map((el) => el.id) })",
        )
        .await;
        assert_eq!(page["title"], *title, "{path}: {page}");
        assert_eq!(
            page["current"], *path,
            "the navigation marks {path}: {page}"
        );
        assert_eq!(
            page["links"],
            json!([
                "Home",
                "Overlays",
                "Moderators",
                "Accounts",
                "Webhooks",
                "Settings"
            ]),
            "{page}"
        );
        assert_eq!(page["signOut"], true);
        assert_eq!(
            page["unlabelled"],
            json!([]),
            "every field on {path} has a label"
        );
    }

    // Home follows the engine live.
    open_page(&mut browser, &app, "p", "/").await;
    browser
        .cmd(json!({"cmd": "waitText", "name": "p", "selector": "#live", "text": "connected"}))
        .await;

    // Accounts without client ids: each provider names the variable to set.
    open_page(&mut browser, &app, "p", "/panel/accounts").await;
    let accounts = eval(
        &mut browser,
        "p",
        "document.querySelector('[data-part=accounts]').textContent",
    )
    .await;
    for var in [
        "STAGEHAND_TWITCH_CLIENT_ID",
        "STAGEHAND_GOOGLE_CLIENT_ID",
        "STAGEHAND_DISCORD_CLIENT_ID",
    ] {
        assert!(
            accounts.as_str().unwrap().contains(var),
            "{var}: {accounts}"
        );
    }

    // Settings: the OBS password goes into the secret store from its form.
    open_page(&mut browser, &app, "p", "/panel/settings").await;
    fill(&mut browser, "p", "#obs-password-input", "hunter2-obs").await;
    click(&mut browser, "p", "#obs-password button[type=submit]").await;
    browser
        .cmd(json!({"cmd": "waitText", "name": "p", "selector": "#notice", "text": "OBS password saved"}))
        .await;
    let stored = app.engine.secrets().get("obs-password").await.unwrap();
    assert_eq!(
        stored.as_ref().map(|s| s.expose().to_owned()).as_deref(),
        Some("hunter2-obs"),
        "the form stored the password"
    );
    assert_eq!(
        eval(
            &mut browser,
            "p",
            "document.getElementById('obs-password-input').value"
        )
        .await,
        "",
        "the field is cleared once saved"
    );

    // Signing out from the navigation ends the session: pages send you to sign in again.
    click(&mut browser, "p", "form[action=\"/session/logout\"] button").await;
    browser
        .cmd(json!({"cmd": "waitPath", "name": "p", "path": "/login"}))
        .await;
    let again = browser
        .cmd(json!({"cmd": "navigate", "name": "p", "url": app.at("/panel/webhooks")}))
        .await;
    assert!(
        again["url"].as_str().unwrap().ends_with("/login"),
        "{again}"
    );
    browser.quit().await;
}

#[tokio::test]
#[cfg_attr(
    not(feature = "chromium"),
    ignore = "tier `chromium`: needs Chromium and node (scripts/test runs it)"
)]
async fn browser_panel_overlay_is_created_edited_copied_and_opened_by_clicking() {
    let app = TestApp::start().await;
    let mut browser = Browser::start().await;
    sign_in(&mut browser, &app, "p").await;
    open_page(&mut browser, &app, "p", "/panel/overlays").await;

    fill(&mut browser, "p", "#new-name", "Main <scene>").await;
    browser
        .cmd(json!({"cmd": "select", "name": "p", "selector": "#new-size", "value": "1280x720"}))
        .await;
    click(&mut browser, "p", "#overlay-create button[type=submit]").await;
    let id = wait_until(
        &mut browser,
        "p",
        "document.querySelector('.overlay-row')?.dataset.overlayId",
    )
    .await
    .as_str()
    .unwrap()
    .to_owned();
    let listed = app.get_json("/api/overlays").await;
    assert_eq!(listed["overlays"][0]["overlayId"], id.as_str());
    assert_eq!(listed["overlays"][0]["name"], "Main <scene>");
    assert_eq!(listed["overlays"][0]["width"], 1280);
    let row = format!(".overlay-row[data-overlay-id=\"{id}\"]");
    let heading = eval(
        &mut browser,
        "p",
        &format!("document.querySelector('{row} h3').textContent"),
    )
    .await;
    assert_eq!(heading, "Main <scene>", "the name is shown as text");

    // The shared editor: add a text layer, type its words; the saves go through the API.
    let versions = format!("window.__stagehandOverlays.versions[{id:?}]");
    wait_until(&mut browser, "p", &format!("{versions} === 1")).await;
    click(&mut browser, "p", "#add-text").await;
    wait_until(
        &mut browser,
        "p",
        &format!("{versions} === 2 && document.querySelector('#layers .layer-row[data-layer-id=\"text-1\"]')"),
    )
    .await;
    fill(
        &mut browser,
        "p",
        "#layers .layer-row[data-layer-id=\"text-1\"] input[type=text]",
        "Hello from the panel",
    )
    .await;
    wait_until(
        &mut browser,
        "p",
        &format!("window.__stagehandOverlays.pendingSaves === 0 && {versions} === 3"),
    )
    .await;
    let scene = app.get_json(&format!("/api/overlays/{id}/scene")).await;
    assert_eq!(scene["version"], 3, "{scene}");
    assert_eq!(
        scene["scene"]["layers"][0]["props"]["text"],
        "Hello from the panel"
    );

    // Copy the link with its button: the clipboard holds the field's link, and it opens the
    // overlay page, which shows the scene.
    click(&mut browser, "p", &format!("{row} [data-action=copy]")).await;
    browser
        .cmd(json!({"cmd": "waitText", "name": "p", "selector": "#notice", "text": "Copied"}))
        .await;
    let copied = clipboard(&mut browser, "p").await;
    let field = eval(
        &mut browser,
        "p",
        &format!("document.getElementById('link-{id}').value"),
    )
    .await;
    assert_eq!(
        copied,
        field.as_str().unwrap(),
        "the button copies the visible link"
    );
    assert!(
        copied.starts_with(&app.at(&format!("/o/{id}?sig="))),
        "{copied}"
    );
    let opened = browser
        .cmd(json!({"cmd": "open", "name": "ov", "url": copied, "width": 1280, "height": 720}))
        .await;
    assert_eq!(opened["version"], 3, "the page applied the saved scene");
    browser
        .cmd(json!({"cmd": "waitText", "name": "ov", "selector": "[data-layer-id=\"text-1\"]", "text": "Hello from the panel"}))
        .await;
    // The row says where it is open as soon as the page connects (an `overlay.pages` event;
    // the fallback poll is a minute, past this wait).
    browser
        .cmd(json!({"cmd": "waitText", "name": "p", "selector": format!("{row} [data-pages]"), "text": "open in 1 place"}))
        .await;

    // An edit in the panel reaches the open overlay page.
    fill(
        &mut browser,
        "p",
        "#layers .layer-row[data-layer-id=\"text-1\"] input[type=text]",
        "Live now",
    )
    .await;
    browser
        .cmd(json!({"cmd": "waitText", "name": "ov", "selector": "[data-layer-id=\"text-1\"]", "text": "Live now"}))
        .await;

    // Add to OBS without OBS: the error is shown in words with what to do.
    click(
        &mut browser,
        "p",
        &format!("{row} [data-action=add-to-obs]"),
    )
    .await;
    browser
        .cmd(json!({"cmd": "waitText", "name": "p", "selector": &format!("{row} .row-status"), "text": "Start OBS"}))
        .await;
    let problem = eval(&mut browser, "p", "({ hidden: document.getElementById('problem').hidden, code: window.__stagehandPanel.problem?.code })").await;
    assert_eq!(problem["hidden"], false, "the error box shows: {problem}");
    assert_eq!(problem["code"], "obs_not_connected", "{problem}");

    // Rename through the dialog.
    click(&mut browser, "p", &format!("{row} [data-action=rename]")).await;
    fill(&mut browser, "p", "#ask-input", "Stream").await;
    click(&mut browser, "p", "#ask-ok").await;
    wait_until(
        &mut browser,
        "p",
        "document.querySelector('.overlay-row')?.dataset.name === 'Stream'",
    )
    .await;
    assert_eq!(
        app.get_json(&format!("/api/overlays/{id}")).await["name"],
        "Stream"
    );

    // Delete asks first: Cancel keeps it, Confirm deletes it and the open page closes.
    click(&mut browser, "p", &format!("{row} [data-action=delete]")).await;
    click(&mut browser, "p", "#confirm-cancel").await;
    browser
        .cmd(json!({"cmd": "waitText", "name": "p", "selector": "#notice", "text": "Nothing deleted"}))
        .await;
    assert_eq!(
        app.get_json("/api/overlays").await["overlays"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    click(&mut browser, "p", &format!("{row} [data-action=delete]")).await;
    click(&mut browser, "p", "#confirm-ok").await;
    wait_until(
        &mut browser,
        "p",
        "document.querySelectorAll('.overlay-row').length === 0 && document.getElementById('no-overlay-yet')",
    )
    .await;
    assert_eq!(app.get_json("/api/overlays").await["overlays"], json!([]));
    let closed = browser
        .cmd(json!({"cmd": "waitState", "name": "ov", "state": "closed"}))
        .await;
    assert_eq!(closed["state"]["closeCode"], 4403, "{closed}");
    browser.quit().await;
}

#[tokio::test]
#[cfg_attr(
    not(feature = "chromium"),
    ignore = "tier `chromium`: needs Chromium and node (scripts/test runs it)"
)]
async fn browser_panel_moderator_link_is_made_opened_listed_and_revoked_by_clicking() {
    let app = TestApp::start().await;
    app.create_overlay("Main").await;
    let mut browser = Browser::start().await;
    sign_in(&mut browser, &app, "p").await;
    open_page(&mut browser, &app, "p", "/panel/moderators").await;
    wait_until(&mut browser, "p", "document.getElementById('no-sessions')").await;

    fill(&mut browser, "p", "#mod-label", "Sam <mod>").await;
    browser
        .cmd(json!({"cmd": "check", "name": "p", "selector": "#scope-alerts"}))
        .await;
    browser
        .cmd(json!({"cmd": "select", "name": "p", "selector": "#mod-ttl", "value": "900"}))
        .await;
    click(&mut browser, "p", "#invite button[type=submit]").await;
    wait_until(
        &mut browser,
        "p",
        "!document.getElementById('invite-result').hidden",
    )
    .await;
    click(&mut browser, "p", "#invite-result [data-action=copy]").await;
    browser
        .cmd(json!({"cmd": "waitText", "name": "p", "selector": "#notice", "text": "Copied"}))
        .await;
    let link = clipboard(&mut browser, "p").await;
    let shown = eval(
        &mut browser,
        "p",
        "document.getElementById('invite-link').value",
    )
    .await;
    assert_eq!(
        link,
        shown.as_str().unwrap(),
        "the copy button copies the shown link"
    );
    assert!(link.starts_with(&app.at("/m/")), "{link}");

    // The moderator opens it in their own browser: a session with the chosen scopes.
    browser
        .cmd(json!({"cmd": "goto", "name": "mod", "url": link, "width": 1280, "height": 900}))
        .await;
    browser
        .cmd(json!({"cmd": "waitPath", "name": "mod", "path": "/moderator"}))
        .await;
    wait_until(
        &mut browser,
        "mod",
        "window.__stagehandModerator?.state === 'open'",
    )
    .await;
    let sessions = app.get_json("/api/moderator-sessions").await;
    assert_eq!(sessions["sessions"][0]["label"], "Sam <mod>");
    assert_eq!(
        sessions["sessions"][0]["scopes"],
        json!(["scene.edit", "alerts"]),
        "{sessions}"
    );

    // The streamer's page lists it without a reload.
    let row = wait_until(
        &mut browser,
        "p",
        "document.querySelector('.session-row h3')?.textContent",
    )
    .await;
    assert_eq!(row, "Sam <mod>");
    let words = eval(
        &mut browser,
        "p",
        "document.querySelector('.session-row').textContent",
    )
    .await;
    assert!(
        words
            .as_str()
            .unwrap()
            .contains("Edit overlay scenes, Fire test alerts"),
        "scopes in words: {words}"
    );

    // Revoke, confirmed: gone from the list, from the API, and the moderator's panel ends.
    click(&mut browser, "p", ".session-row [data-action=revoke]").await;
    click(&mut browser, "p", "#confirm-ok").await;
    wait_until(
        &mut browser,
        "p",
        "document.querySelectorAll('.session-row').length === 0",
    )
    .await;
    assert_eq!(
        app.get_json("/api/moderator-sessions").await["sessions"],
        json!([])
    );
    wait_until(
        &mut browser,
        "mod",
        "window.__stagehandModerator.state === 'ended'",
    )
    .await;
    browser.quit().await;
}

async fn tradingview(app: &TestApp, token: &str) -> reqwest::Response {
    app.post(&format!("/webhooks/tradingview?token={token}"))
        .json(&json!({ "symbol": "BTCUSD", "side": "buy", "price": 64000 }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
#[cfg_attr(
    not(feature = "chromium"),
    ignore = "tier `chromium`: needs Chromium and node (scripts/test runs it)"
)]
async fn browser_panel_webhook_token_is_revealed_and_rotated_by_clicking() {
    let app = TestApp::start().await;
    let mut browser = Browser::start().await;
    sign_in(&mut browser, &app, "p").await;
    open_page(&mut browser, &app, "p", "/panel/webhooks").await;

    let hidden = eval(
        &mut browser,
        "p",
        "[document.getElementById('tv-url').value, document.getElementById('secret-token').value]",
    )
    .await;
    let before = app.tradingview_token().await;
    assert!(
        !hidden.to_string().contains(&before),
        "the token is hidden until revealed: {hidden}"
    );

    click(&mut browser, "p", "#reveal").await;
    let old = wait_until(
        &mut browser,
        "p",
        "document.getElementById('secret-token').dataset.hidden === '0' && document.getElementById('secret-token').value",
    )
    .await
    .as_str()
    .unwrap()
    .to_owned();
    assert_eq!(old, before, "reveal shows the real token");
    let url = eval(&mut browser, "p", "document.getElementById('tv-url').value").await;
    assert_eq!(url, app.at(&format!("/webhooks/tradingview?token={old}")));
    click(&mut browser, "p", "[data-copy-from=tv-url]").await;
    browser
        .cmd(json!({"cmd": "waitText", "name": "p", "selector": "#notice", "text": "Copied"}))
        .await;
    assert_eq!(clipboard(&mut browser, "p").await, url.as_str().unwrap());

    // Rotate the token, confirmed: the new value is shown once; the old one is refused.
    click(&mut browser, "p", "[data-action=rotate][data-which=token]").await;
    click(&mut browser, "p", "#confirm-ok").await;
    let new = wait_until(
        &mut browser,
        "p",
        "!document.getElementById('rotated').hidden && document.getElementById('rotated-value').value",
    )
    .await
    .as_str()
    .unwrap()
    .to_owned();
    assert_ne!(new, old);
    let masked = eval(
        &mut browser,
        "p",
        "document.getElementById('secret-token').dataset.hidden",
    )
    .await;
    assert_eq!(masked, "1", "after rotating, the secrets are hidden again");

    let refused = tradingview(&app, &old).await;
    assert_eq!(
        support::error_code(refused).await,
        (401, "invalid_token".to_owned())
    );
    let accepted = tradingview(&app, &new).await;
    assert_eq!(accepted.status(), 200);
    let body: Value = accepted.json().await.unwrap();
    assert_eq!(body["status"], "accepted");

    // Both deliveries appear in the list, the refusal with its reason.
    wait_until(
        &mut browser,
        "p",
        "document.querySelectorAll('#deliveries tbody tr').length === 2 && \
         document.querySelector('#deliveries tbody').textContent.includes('invalid_token')",
    )
    .await;

    // Revealing again shows the new token.
    click(&mut browser, "p", "#reveal").await;
    wait_until(
        &mut browser,
        "p",
        &format!("document.getElementById('secret-token').value === {new:?}"),
    )
    .await;
    browser.quit().await;
}

#[tokio::test]
#[cfg_attr(
    not(feature = "chromium"),
    ignore = "tier `chromium`: needs Chromium and node (scripts/test runs it)"
)]
async fn browser_panel_add_to_obs_asks_which_scene_and_creates_the_source_there() {
    let obs = support::fake_obs::FakeObs::start(Some("pw")).await;
    let app = TestApp::start_with(
        support::Options::default()
            .env("STAGEHAND_OBS_ENABLED", "true")
            .env("STAGEHAND_OBS_PORT", &obs.port().to_string())
            .env("STAGEHAND_OBS_PASSWORD", "pw"),
    )
    .await;
    let mut events = app.engine.events().subscribe();
    app.engine.obs_start();
    support::obs_status_within(&mut events, "identified", 10).await;
    let created = app.create_overlay("Main").await;
    let id = created["overlayId"].as_str().unwrap().to_owned();
    let mut browser = Browser::start().await;
    sign_in(&mut browser, &app, "p").await;
    open_page(&mut browser, &app, "p", "/panel/overlays").await;

    // OBS has two scenes ("Scene" on air, "Live"): the panel asks, the one on air chosen first.
    let row = format!(".overlay-row[data-overlay-id=\"{id}\"]");
    click(
        &mut browser,
        "p",
        &format!("{row} [data-action=add-to-obs]"),
    )
    .await;
    let offered = wait_until(
        &mut browser,
        "p",
        "document.getElementById('choose').open && \
         [...document.querySelectorAll('#choose-select option')].map((o) => `${o.value}${o.selected ? '*' : ''}`).join(',')",
    )
    .await;
    assert_eq!(offered, "Scene*,Live");
    browser
        .cmd(json!({"cmd": "select", "name": "p", "selector": "#choose-select", "value": "Live"}))
        .await;
    click(&mut browser, "p", "#choose-ok").await;
    browser
        .cmd(json!({"cmd": "waitText", "name": "p", "selector": format!("{row} .row-status"), "text": "Added to the OBS scene “Live”"}))
        .await;
    let state = obs.state();
    let sources: Vec<(&str, &str)> = state
        .inputs
        .iter()
        .filter(|i| i.kind == "browser_source")
        .map(|i| {
            (
                i.scene.as_str(),
                i.settings["url"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(sources.len(), 1, "{sources:?}");
    assert_eq!(sources[0].0, "Live", "the chosen scene, not the one on air");
    assert!(
        sources[0].1.contains(&format!("/o/{id}?sig=")),
        "the source loads the overlay's signed link: {sources:?}"
    );

    // Cancelling the question adds nothing.
    click(
        &mut browser,
        "p",
        &format!("{row} [data-action=add-to-obs]"),
    )
    .await;
    wait_until(&mut browser, "p", "document.getElementById('choose').open").await;
    browser
        .cmd(json!({"cmd": "click", "name": "p", "selector": "#choose button[value=cancel]"}))
        .await;
    wait_until(&mut browser, "p", "!document.getElementById('choose').open").await;
    assert_eq!(
        obs.state()
            .inputs
            .iter()
            .filter(|i| i.kind == "browser_source")
            .count(),
        1
    );
    browser.quit().await;
}
