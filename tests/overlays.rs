//! Overlays: signed links, versioned scenes pushed live, alerts, slow pages.

use std::sync::Arc;
use std::time::Duration;

use futures_util::SinkExt;
use stagehand_engine::clock::ManualClock;
use support::page::PageScene;
use support::{
    Options, Socket, TestApp, closed, connect_overlay, error_code, logs, next_json, socket_url,
};
use tokio_tungstenite::tungstenite::Message;

async fn create(app: &TestApp, name: &str) -> serde_json::Value {
    app.create_overlay(name).await
}

async fn connect(signed: &str) -> Socket {
    connect_overlay(signed).await
}

fn layer(id: &str, text: &str, x: i64) -> serde_json::Value {
    serde_json::json!({"id": id, "kind": "text", "x": x, "y": 10, "w": 400, "h": 80, "z": 1,
                       "style": {"color": "#fff", "fontSize": 40}, "props": {"text": text}})
}

/// `/overlays` and `/overlays/{id}` are the spec's paths, kept as documented aliases of
/// `/api/overlays…`: each must answer exactly as its `/api/` route does.
#[tokio::test]
async fn the_spec_overlay_paths_answer_as_their_api_routes_do() {
    let app = TestApp::start().await;
    let answer = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        (status, response.json::<serde_json::Value>().await.unwrap())
    };
    let (status, made) = answer(
        app.post_as_streamer("/overlays")
            .json(&serde_json::json!({ "name": "Via alias" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "the alias creates: {made}");
    let id = made["overlayId"].as_str().unwrap().to_owned();
    for (alias, api) in [
        ("/overlays".to_owned(), "/api/overlays".to_owned()),
        (format!("/overlays/{id}"), format!("/api/overlays/{id}")),
        (
            "/overlays/ov_missing".to_owned(),
            "/api/overlays/ov_missing".to_owned(),
        ),
    ] {
        let by_alias = answer(app.get_as_streamer(&alias).send().await.unwrap()).await;
        let by_api = answer(app.get_as_streamer(&api).send().await.unwrap()).await;
        assert_eq!(by_alias, by_api, "{alias} answers as {api}");
    }
    let rename = |path: String, name: &'static str| {
        app.client
            .patch(app.at(&path))
            .header("x-streamer-token", &app.token)
            .json(&serde_json::json!({ "name": name }))
            .send()
    };
    // Each save stamps its own time; everything else must match.
    let (status, mut renamed) =
        answer(rename(format!("/overlays/{id}"), "Renamed").await.unwrap()).await;
    assert_eq!((status, renamed["name"].as_str()), (200, Some("Renamed")));
    let (api_status, mut api_renamed) = answer(
        rename(format!("/api/overlays/{id}"), "Renamed")
            .await
            .unwrap(),
    )
    .await;
    for body in [&mut renamed, &mut api_renamed] {
        body.as_object_mut().unwrap().remove("updatedAt");
    }
    assert_eq!(
        (api_status, api_renamed),
        (status, renamed),
        "the same rename through either path gives the same overlay"
    );
    let deleted = app
        .client
        .delete(app.at(&format!("/overlays/{id}")))
        .header("x-streamer-token", &app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let (status, gone) = answer(
        app.get_as_streamer(&format!("/api/overlays/{id}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, gone["error"]["code"].as_str()),
        (404, Some("overlay_not_found"))
    );
    let anonymous = app.get("/overlays").send().await.unwrap();
    assert_eq!(
        error_code(anonymous).await,
        (401, "auth_required".into()),
        "the alias is as closed as the route"
    );
}

#[tokio::test]
async fn overlays_are_created_listed_renamed_and_limited() {
    let app = TestApp::start_with(Options::default().env("STAGEHAND_LIMITS_OVERLAYS", "2")).await;
    let a = create(&app, "Main").await;
    let id = a["overlayId"].as_str().unwrap();
    assert!(id.starts_with("ov_"));
    assert_eq!(a["width"], 1280);
    assert_eq!(a["version"], 1);
    let signed = a["signedUrl"].as_str().unwrap();
    assert!(
        signed.starts_with(&format!("{}/o/{id}?sig=", app.url)),
        "{signed}"
    );

    let renamed = app
        .client
        .patch(app.at(&format!("/api/overlays/{id}")))
        .header("x-streamer-token", &app.token)
        .json(&serde_json::json!({ "name": "Starting soon", "width": 1920 }))
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.status(), 200);
    let renamed: serde_json::Value = renamed.json().await.unwrap();
    assert_eq!(
        (renamed["name"].as_str(), renamed["width"].as_u64()),
        (Some("Starting soon"), Some(1920))
    );

    create(&app, "Second").await;
    let third = app
        .post_as_streamer("/api/overlays")
        .json(&serde_json::json!({ "name": "Third" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(third).await,
        (403, "overlay_limit_reached".into())
    );
    let list: serde_json::Value = app.get_json("/api/overlays").await;
    assert_eq!(
        list["overlays"].as_array().unwrap().len(),
        2,
        "the refused one was not created"
    );

    let bad = app
        .post_as_streamer("/api/overlays")
        .json(&serde_json::json!({ "name": "", "width": 5 }))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(bad).await, (422, "invalid_fields".into()));
    let anonymous = app
        .post("/api/overlays")
        .json(&serde_json::json!({ "name": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn the_page_needs_a_valid_signature() {
    let clock = ManualClock::new(1_800_000_000_000);
    let app = TestApp::start_with(Options {
        clock: Arc::new(clock.clone()),
        ..Options::default()
    })
    .await;
    let overlay = create(&app, "Main").await;
    let id = overlay["overlayId"].as_str().unwrap().to_owned();
    let signed = overlay["signedUrl"].as_str().unwrap().to_owned();

    let ok = app.client.get(&signed).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(
        ok.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    assert!(
        ok.text()
            .await
            .unwrap()
            .contains("/overlay-assets/overlay.js")
    );

    let missing = app.get(&format!("/o/{id}")).send().await.unwrap();
    assert_eq!(
        error_code(missing).await,
        (403, "overlay_link_invalid".into())
    );
    let forged = signed.replace("sig=", "sig=AAAA");
    assert_eq!(app.client.get(&forged).send().await.unwrap().status(), 403);
    let other_overlay = create(&app, "Other").await;
    let swapped = signed.replace(&id, other_overlay["overlayId"].as_str().unwrap());
    assert_eq!(
        app.client.get(&swapped).send().await.unwrap().status(),
        403,
        "a signature is bound to its overlay"
    );

    let expiring: serde_json::Value = app
        .get_json(&format!("/api/overlays/{id}?expires_in=60"))
        .await;
    let expiring = expiring["signedUrl"].as_str().unwrap().to_owned();
    assert!(expiring.contains("&exp="));
    assert_eq!(
        app.client.get(&expiring).send().await.unwrap().status(),
        200
    );
    let stretched = expiring.replace("&exp=", "&exp=9");
    assert_eq!(
        app.client.get(&stretched).send().await.unwrap().status(),
        403,
        "the expiry is signed"
    );
    clock.advance(Duration::from_secs(61));
    let expired = app.client.get(&expiring).send().await.unwrap();
    assert_eq!(
        error_code(expired).await,
        (403, "overlay_link_invalid".into())
    );
    assert_eq!(
        app.client.get(&signed).send().await.unwrap().status(),
        200,
        "links without expiry stay valid"
    );

    let logged = logs().contents();
    let sig = signed.split("sig=").nth(1).unwrap();
    assert!(
        !logged.contains(sig),
        "the link is a credential and never logged"
    );
}

#[tokio::test]
async fn refused_sockets_are_closed_with_a_reason_and_deleting_closes_open_ones() {
    let app = TestApp::start().await;
    let overlay = create(&app, "Main").await;
    let id = overlay["overlayId"].as_str().unwrap().to_owned();
    let signed = overlay["signedUrl"].as_str().unwrap().to_owned();

    let mut forged = connect(&signed.replace("sig=", "sig=x")).await;
    let (code, reason) = closed(&mut forged).await;
    assert_eq!(code, 4403);
    assert!(reason.contains("not valid"), "{reason}");

    let mut open = connect(&signed).await;
    assert_eq!(next_json(&mut open).await["type"], "scene.full");
    let deleted = app
        .client
        .delete(app.at(&format!("/api/overlays/{id}")))
        .header("x-streamer-token", &app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let (code, reason) = closed(&mut open).await;
    assert_eq!(
        (code, reason.as_str()),
        (4403, "overlay deleted"),
        "deleting closes open pages at once"
    );
    assert_eq!(app.client.get(&signed).send().await.unwrap().status(), 403);
    let mut after = connect(&signed).await;
    assert_eq!(closed(&mut after).await.0, 4403);
}

#[tokio::test]
async fn rotating_the_key_invalidates_every_link() {
    let app = TestApp::start().await;
    let overlay = create(&app, "Main").await;
    let signed = overlay["signedUrl"].as_str().unwrap().to_owned();
    let mut open = connect(&signed).await;
    next_json(&mut open).await;
    let rotated = app
        .post_as_streamer("/api/overlays/rotate-key")
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), 204);
    assert_eq!(closed(&mut open).await.0, 4403);
    assert_eq!(app.client.get(&signed).send().await.unwrap().status(), 403);
    let fresh: serde_json::Value = app
        .get_as_streamer(&format!(
            "/api/overlays/{}",
            overlay["overlayId"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        app.client
            .get(fresh["signedUrl"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let old_base = app.url.clone();
    let app = app.restart(Options::default()).await;
    let same_link = fresh["signedUrl"]
        .as_str()
        .unwrap()
        .replacen(&old_base, &app.url, 1);
    assert_eq!(
        app.client.get(&same_link).send().await.unwrap().status(),
        200,
        "the rotated key is kept in the secret store"
    );
}

#[tokio::test]
async fn scene_saves_are_versioned_pushed_and_conflicts_change_nothing() {
    let app = TestApp::start().await;
    let overlay = create(&app, "Main").await;
    let id = overlay["overlayId"].as_str().unwrap().to_owned();
    let mut page = connect(overlay["signedUrl"].as_str().unwrap()).await;
    let first = next_json(&mut page).await;
    assert_eq!(
        (first["type"].as_str(), first["version"].as_i64()),
        (Some("scene.full"), Some(1))
    );
    assert_eq!(first["overlay"]["width"], 1280);
    let mut shown = PageScene::default();
    shown.apply(&first);

    let saved = app
        .save_scene(&id, 1, serde_json::json!([layer("title", "Hello", 10)]))
        .await;
    assert_eq!(saved.status(), 200);
    assert_eq!(saved.headers()["etag"], "\"2\"");
    shown.next(&mut page).await;
    assert_eq!(shown.version, 2);
    assert_eq!(shown.layer("title")["props"]["text"], "Hello");

    let stale = app
        .save_scene(&id, 1, serde_json::json!([layer("title", "Stale", 10)]))
        .await;
    let body: serde_json::Value = stale.json().await.unwrap();
    assert_eq!(body["error"]["code"], "version_conflict");
    assert_eq!(body["error"]["details"]["currentVersion"], 2);
    let current: serde_json::Value = app.get_json(&format!("/api/overlays/{id}/scene")).await;
    assert_eq!(current["version"], 2);
    assert_eq!(
        current["scene"]["layers"][0]["props"]["text"], "Hello",
        "a stale save changed nothing"
    );

    let if_match = app
        .put_as_streamer(&format!("/api/overlays/{id}/scene"))
        .header("if-match", "\"2\"")
        .json(&serde_json::json!({ "scene": { "layers": [layer("title", "Via If-Match", 20)] } }))
        .send()
        .await
        .unwrap();
    assert_eq!(if_match.status(), 200);
    let invalid = app
        .save_scene(
            &id,
            3,
            serde_json::json!([layer("a", "x", 0), layer("a", "y", 0)]),
        )
        .await;
    assert_eq!(error_code(invalid).await, (422, "invalid_fields".into()));
    let no_version = app
        .put_as_streamer(&format!("/api/overlays/{id}/scene"))
        .json(&serde_json::json!({ "scene": { "layers": [] } }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(no_version).await,
        (428, "version_required".into())
    );
}

#[tokio::test]
async fn a_drag_sends_pages_only_what_changed_and_they_end_on_the_stored_scene() {
    let app = TestApp::start().await;
    let overlay = create(&app, "Main").await;
    let id = overlay["overlayId"].as_str().unwrap().to_owned();
    let mut page = connect(overlay["signedUrl"].as_str().unwrap()).await;
    let mut shown = PageScene::default();
    shown.next(&mut page).await;
    let mut layers: Vec<serde_json::Value> = (0..20)
        .map(|i| layer(&format!("l{i}"), &"words ".repeat(80), i))
        .collect();
    assert_eq!(
        app.save_scene(&id, 1, layers.clone().into()).await.status(),
        200
    );
    shown.reach(&mut page, 2).await;
    let scene_path = format!("/api/overlays/{id}/scene");
    let whole = app.get_json(&scene_path).await.to_string().len();

    // One layer dragged: the page is sent that layer and the order, not 20 layers of text.
    layers[7]["x"] = 500.into();
    assert_eq!(
        app.save_scene(&id, 2, layers.clone().into()).await.status(),
        200
    );
    let patch = shown.next(&mut page).await;
    assert_eq!(
        (
            patch["type"].as_str(),
            patch["from_version"].as_i64(),
            patch["to_version"].as_i64()
        ),
        (Some("scene.patch"), Some(2), Some(3))
    );
    assert_eq!(patch["layers"].as_array().unwrap().len(), 1, "{patch}");
    assert_eq!(
        patch["overlay"]["width"], 1280,
        "the overlay's size rides along"
    );
    assert_eq!(patch["layers"][0]["id"], "l7");
    assert!(
        patch.to_string().len() * 10 < whole,
        "a patch of {} bytes for a scene of {whole}",
        patch.to_string().len()
    );

    // Removed, added and reordered layers: what the page builds is what was stored.
    layers.remove(3);
    let first = layers.remove(0);
    layers.push(first);
    layers.insert(5, layer("new", "hello", 9));
    assert_eq!(
        app.save_scene(&id, 3, layers.clone().into()).await.status(),
        200
    );
    shown.reach(&mut page, 4).await;
    let current = app.get_json(&scene_path).await;
    assert_eq!(
        &shown.layers,
        current["scene"]["layers"].as_array().unwrap()
    );

    // A page that finds a gap asks for the whole scene and gets it at once.
    page.send(Message::Text(r#"{"type":"resync"}"#.into()))
        .await
        .unwrap();
    let full = next_json(&mut page).await;
    assert_eq!(
        (full["type"].as_str(), full["version"].as_i64()),
        (Some("scene.full"), Some(4))
    );
    assert_eq!(full["scene"], current["scene"]);
}

#[tokio::test]
async fn pages_opening_and_closing_are_announced_with_the_count() {
    let app = TestApp::start().await;
    let overlay = create(&app, "Main").await;
    let id = overlay["overlayId"].as_str().unwrap().to_owned();
    let signed = overlay["signedUrl"].as_str().unwrap();
    let mut events = app.engine.events().subscribe();
    let mut first = connect(signed).await;
    next_json(&mut first).await;
    let opened = support::event(&mut events, "overlay.pages").await;
    assert_eq!(
        (opened["overlayId"].as_str(), opened["pages"].as_u64()),
        (Some(id.as_str()), Some(1))
    );
    let mut second = connect(signed).await;
    next_json(&mut second).await;
    assert_eq!(
        support::event(&mut events, "overlay.pages").await["pages"],
        2
    );
    first.close(None).await.unwrap();
    assert_eq!(
        support::event(&mut events, "overlay.pages").await["pages"],
        1,
        "a closed page is counted out"
    );
}

#[tokio::test]
async fn a_hundred_quick_edits_leave_every_page_on_the_last_version() {
    let app = TestApp::start().await;
    let overlay = create(&app, "Main").await;
    let id = overlay["overlayId"].as_str().unwrap().to_owned();
    let mut pages = Vec::new();
    for _ in 0..3 {
        let mut page = connect(overlay["signedUrl"].as_str().unwrap()).await;
        let mut shown = PageScene::default();
        shown.next(&mut page).await;
        pages.push((page, shown));
    }
    let mut version = 1;
    for i in 0..100 {
        let response = app
            .save_scene(&id, version, serde_json::json!([layer("title", "drag", i)]))
            .await;
        assert_eq!(response.status(), 200);
        version = response.json::<serde_json::Value>().await.unwrap()["version"]
            .as_i64()
            .unwrap();
    }
    assert_eq!(version, 101);
    for (page, shown) in &mut pages {
        while shown.version < 101 {
            let before = shown.version;
            shown.next(page).await;
            assert!(shown.version > before, "versions arrive in order");
            page.send(Message::Text(
                serde_json::json!({"type": "applied", "version": shown.version})
                    .to_string()
                    .into(),
            ))
            .await
            .unwrap();
        }
        assert_eq!(
            shown.layer("title")["x"],
            99.0,
            "the last edit is what the page shows"
        );
    }
    // Applied reports are handled in order per socket; wait for them through the API.
    let mut figures = serde_json::Value::Null;
    for _ in 0..500 {
        figures = app.get_json("/api/metrics/realtime").await;
        let pages = figures["overlays"][&id]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if pages.len() == 3 && pages.iter().all(|p| p["appliedVersion"] == 101) {
            break;
        }
        tokio::task::yield_now().await;
    }
    let pages = figures["overlays"][&id].as_array().unwrap();
    assert!(
        pages.iter().all(|p| p["appliedVersion"] == 101),
        "{figures}"
    );
    assert!(
        figures["applyLatencyMs"]["p99"].as_f64().is_some(),
        "{figures}"
    );
    let metrics = app
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("stagehand_overlay_apply_seconds_count"),
        "{metrics}"
    );
    assert!(
        metrics.contains("stagehand_overlay_pages_connected 3"),
        "the pages are counted in /metrics too: {metrics}"
    );
}

#[tokio::test]
async fn alerts_reach_every_page_of_the_overlay() {
    let app = TestApp::start().await;
    let main = create(&app, "Main").await;
    let other = create(&app, "Other").await;
    let mut a = connect(main["signedUrl"].as_str().unwrap()).await;
    let mut b = connect(main["signedUrl"].as_str().unwrap()).await;
    let mut c = connect(other["signedUrl"].as_str().unwrap()).await;
    for s in [&mut a, &mut b, &mut c] {
        next_json(s).await;
    }
    let sent = app.post_as_streamer("/api/alerts")
        .json(&serde_json::json!({ "overlayId": main["overlayId"], "kind": "follow", "title": "New follower", "message": "ada" }))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 202);
    let sent: serde_json::Value = sent.json().await.unwrap();
    assert_eq!(sent["pages"], 2);
    for page in [&mut a, &mut b] {
        let alert = next_json(page).await;
        assert_eq!(alert["type"], "alert.show");
        assert_eq!(alert["id"], sent["id"]);
        assert_eq!(alert["title"], "New follower");
        assert_eq!(alert["duration_ms"], 5000);
    }
    let everyone = app
        .post_as_streamer("/api/alerts")
        .json(&serde_json::json!({ "kind": "raid", "title": "Raid!" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        everyone.json::<serde_json::Value>().await.unwrap()["pages"],
        3
    );
    assert_eq!(
        next_json(&mut c).await["title"],
        "Raid!",
        "without overlayId every overlay gets it"
    );
    let bad = app
        .post_as_streamer("/api/alerts")
        .json(&serde_json::json!({ "kind": "Follow!", "title": "" }))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(bad).await, (422, "invalid_fields".into()));
}

#[tokio::test]
async fn a_stalled_page_does_not_delay_a_healthy_one() {
    let app =
        TestApp::start_with(Options::default().env("STAGEHAND_LIMITS_OVERLAY_PAGE_QUEUE", "16"))
            .await;
    let overlay = create(&app, "Main").await;
    let id = overlay["overlayId"].as_str().unwrap().to_owned();
    let signed = overlay["signedUrl"].as_str().unwrap().to_owned();
    // A page that never reads, with a tiny receive window so its socket fills at once.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(app.addr).await.unwrap();
    let (_stalled, _) = tokio_tungstenite::client_async(socket_url(&signed), stream)
        .await
        .unwrap();
    let mut healthy = connect(&signed).await;
    let mut shown = PageScene::default();
    shown.next(&mut healthy).await;
    // ~8 KB changes (every layer moves): the stalled page's socket and its 16-message queue
    // fill within the run.
    let layers = |base: i64| -> serde_json::Value {
        (0..40)
            .map(|i| layer(&format!("l{i}"), &"x".repeat(100), i + base))
            .collect()
    };
    let saves = 300;
    let reader = tokio::spawn(async move {
        while shown.version < 1 + saves {
            let before = shown.version;
            shown.next(&mut healthy).await;
            assert!(
                shown.version > before,
                "the healthy page gets versions in order"
            );
        }
        assert_eq!(shown.layer("l0")["x"], saves as f64);
        healthy
    });
    for base in 1..=saves {
        assert_eq!(app.save_scene(&id, base, layers(base)).await.status(), 200);
    }
    let _healthy = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("the healthy page is not held back by the stalled one")
        .expect("reader ok");
    let figures: serde_json::Value = app.get_json("/api/metrics/realtime").await;
    let pages = figures["overlays"][&id].as_array().unwrap();
    assert_eq!(pages.len(), 2);
    assert!(
        pages.iter().any(|p| p["dropped"].as_u64().unwrap() > 0),
        "the stalled page really was stalled (its queue overflowed): {figures}"
    );
}

#[tokio::test]
async fn chat_and_chart_feeds_reach_pages_and_bad_data_is_refused() {
    let app = TestApp::start().await;
    let overlay = create(&app, "Main").await;
    let mut page = connect(overlay["signedUrl"].as_str().unwrap()).await;
    next_json(&mut page).await;
    let chat = app
        .post_as_streamer("/api/chat/messages")
        .json(&serde_json::json!({ "user": "ada", "text": "hi chat", "color": "#ff0" }))
        .send()
        .await
        .unwrap();
    assert_eq!(chat.status(), 202);
    let line = next_json(&mut page).await;
    assert_eq!(
        (line["type"].as_str(), line["text"].as_str()),
        (Some("chat.message"), Some("hi chat"))
    );

    let chart = app
        .post_as_streamer("/api/chart/updates")
        .json(&serde_json::json!({ "symbol": "ETHUSD", "points": [
            { "time": 10, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5 },
            { "time": 20, "open": 1.5, "high": 2.5, "low": 1.0, "close": 2.0 } ] }))
        .send()
        .await
        .unwrap();
    assert_eq!(chart.status(), 202);
    let update = next_json(&mut page).await;
    assert_eq!(update["type"], "chart.update");
    assert_eq!(update["points"][1]["close"], 2.0);

    for (body, why) in [
        (
            serde_json::json!({ "symbol": "X", "points": [{ "time": 2, "value": 1.0 }, { "time": 1, "value": 1.0 }] }),
            "out of order",
        ),
        (
            serde_json::json!({ "symbol": "X", "points": [{ "time": 1, "value": 1.0, "close": 2.0 }] }),
            "mixed point",
        ),
        (
            serde_json::json!({ "symbol": "X", "points": [] }),
            "no points",
        ),
        (
            serde_json::json!({ "symbol": "has space", "points": [{ "time": 1, "value": 1.0 }] }),
            "bad symbol",
        ),
    ] {
        let refused = app
            .post_as_streamer("/api/chart/updates")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(refused).await,
            (422, "invalid_fields".into()),
            "{why}"
        );
    }
    let bad_chat = app
        .post_as_streamer("/api/chat/messages")
        .json(&serde_json::json!({ "user": "ada", "text": "x", "color": "red;background:url(x)" }))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(bad_chat).await, (422, "invalid_fields".into()));
    // Nothing refused reached the page: the next thing it gets is this alert.
    app.post_as_streamer("/api/alerts")
        .json(&serde_json::json!({ "kind": "test", "title": "marker" }))
        .send()
        .await
        .unwrap();
    assert_eq!(next_json(&mut page).await["title"], "marker");
}
