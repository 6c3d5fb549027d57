//! Moderators: one-time keys, scoped sessions, revocation, and the socket's actions.

use std::sync::Arc;
use std::time::Duration;

use futures_util::SinkExt;
use stagehand_engine::clock::ManualClock;
use stagehand_engine::moderators::Via;
use support::page::PageScene;
use support::{Options, Socket, TestApp, closed, connect_overlay, error_code, next_json};
use tokio_tungstenite::tungstenite::Message;

async fn generate(app: &TestApp, scopes: &[&str]) -> serde_json::Value {
    let response = app
        .post_as_streamer("/api/moderator-keys/generate")
        .json(&serde_json::json!({ "label": "Sam", "scopes": scopes, "ttl_seconds": 600 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

async fn consume(app: &TestApp, key: &str) -> reqwest::Response {
    app.post("/api/moderator-keys/consume")
        .json(&serde_json::json!({ "key": key }))
        .send()
        .await
        .unwrap()
}

async fn session(app: &TestApp, scopes: &[&str]) -> String {
    let key = generate(app, scopes).await;
    let opened = consume(app, key["key"].as_str().unwrap()).await;
    assert_eq!(opened.status(), 200);
    let body: serde_json::Value = opened.json().await.unwrap();
    body["session"].as_str().unwrap().to_owned()
}

async fn moderator_socket(app: &TestApp, session: &str) -> Socket {
    let url = format!("ws://{}/ws/moderator?session={session}", app.addr);
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("socket opens");
    assert_eq!(next_json(&mut socket).await["type"], "hello");
    socket
}

async fn act(socket: &mut Socket, action: serde_json::Value) -> serde_json::Value {
    socket
        .send(Message::Text(action.to_string().into()))
        .await
        .unwrap();
    loop {
        let message = next_json(socket).await;
        if message["type"] == "result" {
            return message;
        }
    }
}

#[tokio::test]
async fn generated_keys_are_long_shown_once_and_stored_hashed() {
    let app = TestApp::start().await;
    let made = generate(&app, &["scene.edit", "alerts"]).await;
    let key = made["key"].as_str().unwrap().to_owned();
    assert!(key.len() >= 22, "at least 128 bits of base64url: {key}");
    assert_eq!(made["link"], format!("{}/m/{key}", app.url));
    assert_eq!(made["scopes"], serde_json::json!(["scene.edit", "alerts"]));
    assert!(made["expires_at"].as_str().is_some());
    let db = std::fs::read(app.data_dir().join("stagehand.db")).unwrap();
    let wal = std::fs::read(app.data_dir().join("stagehand.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&key),
            "only the hash is stored"
        );
    }
    let form = app
        .post_as_streamer("/api/moderator-keys/generate")
        .form(&[("label", "Kim"), ("scopes", "tts"), ("scopes", "alerts")])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 201);
    let form: serde_json::Value = form.json().await.unwrap();
    assert_eq!(form["scopes"], serde_json::json!(["tts", "alerts"]));
    for bad in [
        serde_json::json!({ "label": "x", "scopes": ["root"] }),
        serde_json::json!({ "label": "x", "scopes": [] }),
        serde_json::json!({ "label": "", "scopes": ["tts"] }),
        serde_json::json!({ "label": "x", "scopes": ["tts"], "ttl_seconds": 5 }),
    ] {
        let refused = app
            .post_as_streamer("/api/moderator-keys/generate")
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(refused).await,
            (422, "invalid_fields".into()),
            "{bad}"
        );
    }
    let anonymous = app
        .post("/api/moderator-keys/generate")
        .json(&serde_json::json!({ "label": "x", "scopes": ["tts"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn a_hundred_concurrent_consumes_open_exactly_one_session() {
    let app = TestApp::start_with(
        Options::default().env("STAGEHAND_MODERATORS_CONSUME_ATTEMPTS_PER_MINUTE", "1000"),
    )
    .await;
    let key = generate(&app, &["alerts"]).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let attempts: Vec<_> = (0..100)
        .map(|_| {
            let client = app.client.clone();
            let url = app.at("/api/moderator-keys/consume");
            let key = key.clone();
            tokio::spawn(async move {
                client
                    .post(url)
                    .json(&serde_json::json!({ "key": key }))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for a in attempts {
        statuses.push(a.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        99,
        "{statuses:?}"
    );
    let sessions = app.get_json("/api/moderator-sessions").await;
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn unknown_used_and_expired_keys_get_the_same_answer() {
    let clock = ManualClock::new(1_800_000_000_000);
    let app = TestApp::start_with(Options {
        clock: Arc::new(clock.clone()),
        ..Options::default()
    })
    .await;
    let used = generate(&app, &["tts"]).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(consume(&app, &used).await.status(), 200);
    let expiring = generate(&app, &["tts"]).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    clock.advance(Duration::from_secs(601));
    let mut answers = Vec::new();
    for key in [
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        used.as_str(),
        expiring.as_str(),
    ] {
        let response = consume(&app, key).await;
        let status = response.status();
        answers.push((status, response.text().await.unwrap()));
    }
    assert_eq!(answers[0].0, 401);
    assert!(
        answers.iter().all(|a| *a == answers[0]),
        "no oracle: {answers:?}"
    );
    assert!(answers[0].1.contains("invalid_key"));
    let audit = app.engine.audit().list(50, None).await.unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.action == "moderator.key.consume" && e.outcome == "denied")
            .count(),
        3,
        "failed consumption is audited"
    );
}

#[tokio::test]
async fn the_link_page_posts_the_key_and_a_second_opening_is_refused() {
    let app = TestApp::start().await;
    let made = generate(&app, &["alerts"]).await;
    let key = made["key"].as_str().unwrap();
    let page = app
        .client
        .get(made["link"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("/api/moderator-keys/consume")
    );
    assert!(
        app.get_json("/api/moderator-sessions").await["sessions"]
            .as_array()
            .unwrap()
            .is_empty(),
        "a GET consumes nothing"
    );
    let opened = app
        .post("/api/moderator-keys/consume")
        .header("origin", &app.url)
        .form(&[("key", key)])
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 303);
    assert_eq!(opened.headers()["location"], "/moderator");
    let cookie = opened.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let panel = app
        .get("/moderator")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(panel.status(), 200);
    assert!(panel.text().await.unwrap().contains("Sam"));
    let again = app
        .post("/api/moderator-keys/consume")
        .form(&[("key", key)])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 401);
    assert!(
        again
            .text()
            .await
            .unwrap()
            .contains("already used or has expired")
    );
    assert_eq!(
        app.get("/moderator").send().await.unwrap().status(),
        401,
        "no session, no panel"
    );
}

#[tokio::test]
async fn sessions_survive_a_restart_and_revoking_closes_the_socket() {
    let app = TestApp::start().await;
    let token = session(&app, &["alerts"]).await;
    let app = app.restart(Options::default()).await;
    let mut socket = moderator_socket(&app, &token).await;
    let ok = act(
        &mut socket,
        serde_json::json!({ "type": "alert.show", "ref": "a1", "kind": "test", "title": "hi" }),
    )
    .await;
    assert_eq!(
        (ok["ok"].as_bool(), ok["ref"].as_str()),
        (Some(true), Some("a1")),
        "{ok}"
    );

    let sessions = app.get_json("/api/moderator-sessions").await;
    let id = sessions["sessions"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(sessions["sessions"][0]["label"], "Sam");
    let revoked = app
        .client
        .delete(app.at(&format!("/api/moderator-sessions/{id}")))
        .header("x-streamer-token", &app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    assert_eq!(
        closed(&mut socket).await.0,
        4401,
        "the open socket closes at once"
    );
    let url = format!("ws://{}/ws/moderator?session={token}", app.addr);
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
        other => panic!("expected 401, got {:?}", other.map(|_| ())),
    }
    let audit = app.engine.audit().list(50, None).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "moderator.session.revoke"));
    assert!(
        audit
            .iter()
            .any(|e| e.action == "moderator.alert.show" && e.actor == "moderator:Sam")
    );
}

#[tokio::test]
async fn a_moderator_flooding_alerts_is_held_to_the_limit_and_others_are_not() {
    let clock = ManualClock::new(1_800_000_000_000);
    let app = TestApp::start_with(
        Options {
            clock: Arc::new(clock.clone()),
            ..Options::default()
        }
        .env("STAGEHAND_MODERATORS_ALERTS_PER_MINUTE", "3"),
    )
    .await;
    let overlay = app.create_overlay("Main").await;
    let mut page = connect_overlay(overlay["signedUrl"].as_str().unwrap()).await;
    next_json(&mut page).await;
    let flooder = session(&app, &["alerts"]).await;
    let mut flooding = moderator_socket(&app, &flooder).await;
    let alert = |n: u32| serde_json::json!({ "type": "alert.show", "ref": n, "kind": "test", "title": format!("alert {n}") });
    for n in 0..3 {
        assert_eq!(act(&mut flooding, alert(n)).await["ok"], true);
    }
    let refused = act(&mut flooding, alert(3)).await;
    assert_eq!(
        (refused["ok"].as_bool(), refused["error"]["code"].as_str()),
        (Some(false), Some("rate_limited")),
        "{refused}"
    );
    // Flooding on: refused each time, audited once.
    for n in 100..105 {
        assert_eq!(
            act(&mut flooding, alert(n)).await["error"]["code"],
            "rate_limited"
        );
    }
    assert_eq!(
        refused["error"]["details"]["retryAfterSeconds"], 20,
        "3 a minute: one back every 20 s"
    );

    // Another moderator is not held back, and the refused alert never reached the stream.
    let other = session(&app, &["alerts"]).await;
    let mut second = moderator_socket(&app, &other).await;
    assert_eq!(act(&mut second, alert(10)).await["ok"], true);
    for n in [0, 1, 2, 10] {
        assert_eq!(next_json(&mut page).await["title"], format!("alert {n}"));
    }

    clock.advance(Duration::from_secs(20));
    assert_eq!(
        act(&mut flooding, alert(4)).await["ok"],
        true,
        "a token is back"
    );
    assert_eq!(next_json(&mut page).await["title"], "alert 4");
    let audit = app.engine.audit().list(50, None).await.unwrap();
    let limited: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "moderator.alert.show" && e.outcome == "denied")
        .collect();
    assert_eq!(limited.len(), 1, "{audit:?}");
    assert_eq!(limited[0].detail["reason"], "rate");
}

#[tokio::test]
async fn actions_outside_the_scopes_are_refused_and_change_nothing() {
    let app = TestApp::start().await;
    let overlay = app.create_overlay("Main").await;
    let id = overlay["overlayId"].as_str().unwrap().to_owned();
    let mut page = connect_overlay(overlay["signedUrl"].as_str().unwrap()).await;
    next_json(&mut page).await;
    let token = session(&app, &["alerts"]).await;
    let mut socket = moderator_socket(&app, &token).await;
    let refused = act(
        &mut socket,
        serde_json::json!({ "type": "scene.save", "ref": "s1", "overlayId": id, "version": 1,
                            "scene": { "layers": [{ "id": "t", "kind": "text", "x": 0, "y": 0, "w": 10, "h": 10 }] } }),
    )
    .await;
    assert_eq!(refused["ok"], false);
    assert_eq!(refused["error"]["code"], "scope_denied");
    assert_eq!(
        app.get_json(&format!("/api/overlays/{id}/scene")).await["version"],
        1,
        "nothing changed"
    );
    let tts = act(
        &mut socket,
        serde_json::json!({ "type": "tts.speak", "ref": "t1", "text": "hello" }),
    )
    .await;
    assert_eq!(tts["error"]["code"], "scope_denied");
    let bogus = act(
        &mut socket,
        serde_json::json!({ "type": "admin.everything", "ref": "x" }),
    )
    .await;
    assert_eq!(bogus["error"]["code"], "invalid_fields");
    // The page saw nothing but the alert that is in scope.
    act(&mut socket, serde_json::json!({ "type": "alert.show", "ref": "a", "kind": "test", "title": "in scope" })).await;
    assert_eq!(next_json(&mut page).await["title"], "in scope");
    let audit = app.engine.audit().list(50, None).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "moderator.scene.save" && e.outcome == "denied")
    );
}

#[tokio::test]
async fn a_moderator_edit_reaches_the_overlay_and_conflicts_report_the_version() {
    let app = TestApp::start().await;
    let overlay = app.create_overlay("Main").await;
    let id = overlay["overlayId"].as_str().unwrap().to_owned();
    let mut page = connect_overlay(overlay["signedUrl"].as_str().unwrap()).await;
    let mut shown = PageScene::default();
    shown.next(&mut page).await;
    let token = session(&app, &["scene.edit"]).await;
    let mut socket = moderator_socket(&app, &token).await;
    let scene = next_json(&mut socket).await;
    assert_eq!(
        (scene["type"].as_str(), scene["overlayId"].as_str()),
        (Some("scene.full"), Some(id.as_str()))
    );
    let layers = serde_json::json!([{ "id": "t", "kind": "text", "x": 100, "y": 50, "w": 200, "h": 40, "props": { "text": "mod" } }]);
    let saved = act(&mut socket, serde_json::json!({ "type": "scene.save", "ref": "s1", "overlayId": id, "version": 1, "scene": { "layers": layers } })).await;
    assert_eq!(
        (saved["ok"].as_bool(), saved["version"].as_i64()),
        (Some(true), Some(2)),
        "{saved}"
    );
    shown.next(&mut page).await;
    assert_eq!(shown.version, 2);
    assert_eq!(shown.layer("t")["x"], 100.0);
    let stale = act(&mut socket, serde_json::json!({ "type": "scene.save", "ref": "s2", "overlayId": id, "version": 1, "scene": { "layers": [] } })).await;
    assert_eq!(stale["error"]["code"], "version_conflict");
    assert_eq!(stale["currentVersion"], 2);
}

#[tokio::test]
async fn foreign_origin_consumes_are_refused_and_guessing_hits_the_rate_limit() {
    let app = TestApp::start_with(
        Options::default().env("STAGEHAND_MODERATORS_CONSUME_ATTEMPTS_PER_MINUTE", "5"),
    )
    .await;
    let key = generate(&app, &["tts"]).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let foreign = app
        .post("/api/moderator-keys/consume")
        .header("origin", "http://evil.example")
        .form(&[("key", key.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(foreign).await,
        (403, "origin_not_allowed".into())
    );
    for i in 0..5 {
        assert_eq!(consume(&app, &format!("guess{i:027}")).await.status(), 401);
    }
    let limited = consume(&app, &key).await;
    assert_eq!(
        error_code(limited).await,
        (429, "rate_limited".into()),
        "the real key waits too"
    );
    assert!(
        app.get_json("/api/moderator-sessions").await["sessions"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn lan_access_is_off_by_default_and_when_on_links_use_the_lan_address() {
    // A documentation address (TEST-NET-1) stands for the LAN address; nothing is ever sent to
    // it, it only appears in Host headers of requests to 127.0.0.1.
    let ip = "192.0.2.10";
    let off = TestApp::start_with(Options::default().env("STAGEHAND_SERVER_LAN_ADDRESS", ip)).await;
    let made = generate(&off, &["alerts"]).await;
    assert!(
        made["link"].as_str().unwrap().starts_with(&off.url),
        "off: links are local"
    );
    let refused = off
        .get("/healthz")
        .header("host", format!("{ip}:{}", off.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403, "off: the LAN name is not ours");

    let on = TestApp::start_with(
        Options::default()
            .env("STAGEHAND_LAN_ACCESS", "true")
            .env("STAGEHAND_SERVER_LAN_ADDRESS", ip),
    )
    .await;
    let made = generate(&on, &["alerts"]).await;
    let base = format!("http://{ip}:{}", on.addr.port());
    assert!(
        made["link"].as_str().unwrap().starts_with(&base),
        "on: links use the LAN address: {made}"
    );
    assert!(made["local_link"].as_str().unwrap().starts_with(&on.url));
    let accepted = on
        .get("/healthz")
        .header("host", format!("{ip}:{}", on.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        accepted.status(),
        200,
        "on: the LAN name is in the Host allowlist"
    );
    let consumed = on
        .post("/api/moderator-keys/consume")
        .header("host", format!("{ip}:{}", on.addr.port()))
        .header("origin", &base)
        .json(&serde_json::json!({ "key": made["key"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        consumed.status(),
        200,
        "a moderator's browser on the LAN can open it"
    );
}

#[tokio::test]
async fn moderators_cannot_put_outside_content_on_stream() {
    let app = TestApp::start().await;
    let overlay = app.create_overlay("Main").await;
    let id = overlay["overlayId"].as_str().unwrap().to_owned();
    // The streamer's own outside image may stay in the scene.
    let streamer_scene = serde_json::json!({ "version": 1, "scene": { "layers": [
        { "id": "logo", "kind": "image", "x": 0, "y": 0, "w": 10, "h": 10, "props": { "src": "https://cdn.example/logo.png" } } ] } });
    assert_eq!(
        app.put_as_streamer(&format!("/api/overlays/{id}/scene"))
            .json(&streamer_scene)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let token = session(&app, &["scene.edit", "alerts"]).await;
    let mut socket = moderator_socket(&app, &token).await;
    next_json(&mut socket).await; // scene.full
    let alert = act(
        &mut socket,
        serde_json::json!({ "type": "alert.show", "ref": "a", "kind": "test", "title": "x",
        "image": "https://tracker.example/pixel.gif" }),
    )
    .await;
    assert_eq!(alert["error"]["code"], "invalid_fields", "{alert}");
    let keep = act(&mut socket, serde_json::json!({ "type": "scene.save", "ref": "k", "overlayId": id, "version": 2, "scene": { "layers": [
        { "id": "logo", "kind": "image", "x": 50, "y": 0, "w": 10, "h": 10, "props": { "src": "https://cdn.example/logo.png" } } ] } })).await;
    assert_eq!(
        keep["ok"], true,
        "moving the streamer's image is fine: {keep}"
    );
    for (layer, why) in [
        (
            serde_json::json!({ "id": "new", "kind": "image", "x": 0, "y": 0, "w": 1, "h": 1, "props": { "src": "https://tracker.example/x.png" } }),
            "outside src",
        ),
        (
            serde_json::json!({ "id": "bg", "kind": "text", "x": 0, "y": 0, "w": 1, "h": 1, "style": { "background": "URL(https://tracker.example/x.png)" } }),
            "url() in a style",
        ),
    ] {
        let refused = act(
            &mut socket,
            serde_json::json!({ "type": "scene.save", "ref": "r", "overlayId": id, "version": 3,
            "scene": { "layers": [layer] } }),
        )
        .await;
        assert_eq!(
            refused["error"]["code"], "invalid_fields",
            "{why}: {refused}"
        );
    }
    assert_eq!(
        app.get_json(&format!("/api/overlays/{id}/scene")).await["version"],
        3,
        "nothing changed"
    );
}

#[tokio::test]
async fn an_expired_session_stops_receiving_and_acting() {
    let clock = ManualClock::new(1_800_000_000_000);
    let app = TestApp::start_with(Options {
        clock: Arc::new(clock.clone()),
        ..Options::default()
    })
    .await;
    let overlay = app.create_overlay("Main").await;
    let id = overlay["overlayId"].as_str().unwrap().to_owned();
    let token = session(&app, &["scene.edit"]).await;
    let mut socket = moderator_socket(&app, &token).await;
    next_json(&mut socket).await;
    clock.advance(Duration::from_secs(4 * 3600 + 1));
    // The streamer edits: the expired moderator is closed instead of shown the scene.
    let saved = app
        .put_as_streamer(&format!("/api/overlays/{id}/scene"))
        .json(&serde_json::json!({ "version": 1, "scene": { "layers": [] } }))
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 200);
    assert_eq!(closed(&mut socket).await.0, 4401);
    let panel = app
        .get("/moderator")
        .header("cookie", format!("stagehand_moderator={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(panel.status(), 401, "sessions last a fixed 4 h");
    assert!(
        panel
            .text()
            .await
            .unwrap()
            .contains("Your moderator access has ended"),
        "an ended session is told so, not that the link was used"
    );
}

#[tokio::test]
async fn the_moderator_socket_refuses_foreign_origins() {
    let app = TestApp::start().await;
    let token = session(&app, &["alerts"]).await;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{}/ws/moderator", app.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("origin", "http://evil.example".parse().unwrap());
    request.headers_mut().insert(
        "cookie",
        format!("stagehand_moderator={token}").parse().unwrap(),
    );
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
}

/// Two processes on one database (the desktop app and `stagehand`, say) stand for two engines
/// with their own SQLite connections: a key still opens exactly one session.
#[tokio::test]
async fn a_key_is_single_use_across_separate_connections() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default();
    let open = || async {
        let config = support::config_for(dir.path(), &options.env).unwrap();
        stagehand_engine::Engine::open(config, Arc::new(stagehand_engine::clock::SystemClock))
            .await
            .unwrap()
    };
    let (a, b) = (open().await, open().await);
    for _ in 0..20 {
        let key = a
            .moderator_key_generate("Sam", &["alerts".to_owned()], None, None)
            .await
            .unwrap()
            .key;
        let (ra, rb) = tokio::join!(
            a.moderator_key_consume(key.expose(), None, Via::Local),
            b.moderator_key_consume(key.expose(), None, Via::Local)
        );
        assert_eq!(
            usize::from(ra.is_ok()) + usize::from(rb.is_ok()),
            1,
            "exactly one connection wins each key"
        );
    }
}
