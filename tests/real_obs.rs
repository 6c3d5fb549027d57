//! The real OBS Studio 30.2, headless: what the fake cannot prove.
//!
//! `#[ignore]`d in a plain `cargo test`: they need root and a Debian 13 chroot with OBS
//! (`scripts/setup obs`). The `real-obs` tier: a test binary of its own, so that
//! `scripts/test` runs it one at a time (`--features real-obs --test real_obs --
//! --test-threads=1`) when it can, and says plainly when it cannot.

#![allow(missing_docs)]
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::json;
use support::real_obs::RealObs;
use support::{Events, Options, TestApp, error_code, event_within, obs_status_within};

const PASSWORD: &str = "real-obs-test-pw";

async fn engine_for(obs: &RealObs) -> (TestApp, Events) {
    let app = TestApp::start_with(
        Options::default()
            .env("STAGEHAND_OBS_ENABLED", "true")
            .env("STAGEHAND_OBS_PORT", &obs.port().to_string())
            .env("STAGEHAND_OBS_PASSWORD", PASSWORD),
    )
    .await;
    let mut events = app.engine.events().subscribe();
    app.engine.obs_start();
    obs_status_within(&mut events, "identified", 20).await;
    (app, events)
}

async fn source(app: &TestApp, body: serde_json::Value) -> reqwest::Response {
    app.post_as_streamer("/api/obs/sources")
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
#[cfg_attr(
    not(feature = "real-obs"),
    ignore = "tier `real-obs`: needs OBS 30.2 (sudo scripts/setup obs, then scripts/test)"
)]
async fn real_obs_identifies_and_reports_its_versions() {
    let obs = RealObs::start(PASSWORD).await;
    let (app, _events) = engine_for(&obs).await;
    let status = app.get_json("/api/obs/status").await;
    assert_eq!(status["state"], "identified");
    assert!(
        status["obsVersion"].as_str().unwrap().starts_with("30."),
        "Debian 13's OBS is 30.2: {status}"
    );
    assert_eq!(
        status["websocketVersion"], obs.websocket_version,
        "the version OBS announced in its Hello"
    );
}

#[tokio::test]
#[cfg_attr(
    not(feature = "real-obs"),
    ignore = "tier `real-obs`: needs OBS 30.2 (sudo scripts/setup obs, then scripts/test)"
)]
async fn real_obs_without_the_browser_plugin_gets_the_plain_error() {
    let obs = RealObs::start(PASSWORD).await;
    let (app, _events) = engine_for(&obs).await;
    let overlay = app.create_overlay("Alerts").await;
    let id = overlay["overlayId"].as_str().unwrap();
    let refused = source(&app, json!({ "scene": "Live", "overlayId": id })).await;
    let status = refused.status().as_u16();
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "obs_no_browser_source");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("browser source"),
        "the message names what is missing: {body}"
    );
    let items = obs
        .client()
        .await
        .scene_items()
        .list("Live".into())
        .await
        .unwrap();
    assert!(items.is_empty(), "nothing half-made was left in the scene");
}

#[tokio::test]
#[cfg_attr(
    not(feature = "real-obs"),
    ignore = "tier `real-obs`: needs OBS 30.2 (sudo scripts/setup obs, then scripts/test)"
)]
async fn real_obs_gets_colour_and_text_sources_once_each() {
    let obs = RealObs::start(PASSWORD).await;
    let (app, _events) = engine_for(&obs).await;
    let colour = json!({
        "scene": "Live", "kind": "color", "color": "#ff0000", "name": "Backdrop",
        "w": 320, "h": 180, "x": 10.0, "y": 20.0
    });
    let first: serde_json::Value = source(&app, colour.clone()).await.json().await.unwrap();
    assert_eq!(first["created"], true, "{first}");
    let again: serde_json::Value = source(&app, colour).await.json().await.unwrap();
    assert_eq!(again["created"], false, "the same name updates: {again}");
    assert_eq!(again["sceneItemId"], first["sceneItemId"]);
    let text = source(
        &app,
        json!({ "scene": "Live", "kind": "text", "text": "Be right back", "name": "BRB" }),
    )
    .await;
    assert_eq!(text.status(), 200);

    let client = obs.client().await;
    let items = client.scene_items().list("Live".into()).await.unwrap();
    let names: Vec<&str> = items.iter().map(|i| i.source_name.as_str()).collect();
    assert_eq!(names, ["Backdrop", "BRB"], "one item each, in order");
    let settings = client
        .inputs()
        .settings::<serde_json::Value>("Backdrop".into())
        .await
        .unwrap();
    assert_eq!(
        settings.settings["color"], 0xff00_00ff_u32,
        "red as OBS stores it"
    );
    let transform = client
        .scene_items()
        .transform("Live".into(), first["sceneItemId"].as_i64().unwrap())
        .await
        .unwrap();
    assert_eq!((transform.position_x, transform.position_y), (10.0, 20.0));
    let text_settings = client
        .inputs()
        .settings::<serde_json::Value>("BRB".into())
        .await
        .unwrap();
    assert_eq!(text_settings.settings["text"], "Be right back");

    let missing_scene = source(
        &app,
        json!({ "scene": "Nope", "kind": "color", "color": "#00ff00" }),
    )
    .await;
    assert_eq!(error_code(missing_scene).await.0, 502, "OBS refused it");
}

#[tokio::test]
#[cfg_attr(
    not(feature = "real-obs"),
    ignore = "tier `real-obs`: needs OBS 30.2 (sudo scripts/setup obs, then scripts/test)"
)]
async fn real_obs_switches_scenes_and_the_event_follows_the_transition() {
    let obs = RealObs::start(PASSWORD).await;
    let (app, mut events) = engine_for(&obs).await;
    obs.client()
        .await
        .scenes()
        .create("Starting soon")
        .await
        .unwrap();
    let scenes = app.get_json("/api/obs/scenes").await;
    assert_eq!(scenes["current"], "Live");
    assert!(
        scenes["scenes"]
            .as_array()
            .unwrap()
            .contains(&json!("Starting soon")),
        "{scenes}"
    );
    let switched = app
        .post_as_streamer("/api/obs/scenes/current")
        .json(&json!({ "scene": "Starting soon" }))
        .send()
        .await
        .unwrap();
    assert_eq!(switched.status(), 204);
    // The event arrives after the transition (300 ms fade here), so wait for it.
    let changed = event_within(&mut events, "obs.scene.changed", 10).await;
    assert_eq!(changed["scene"], "Starting soon");
    assert_eq!(
        app.get_json("/api/obs/scenes").await["current"],
        "Starting soon"
    );
}

#[tokio::test]
#[cfg_attr(
    not(feature = "real-obs"),
    ignore = "tier `real-obs`: needs OBS 30.2 (sudo scripts/setup obs, then scripts/test)"
)]
async fn real_obs_records_a_file_that_plays_back() {
    let obs = RealObs::start(PASSWORD).await;
    let (app, mut events) = engine_for(&obs).await;
    // Something to record besides black.
    source(
        &app,
        json!({ "scene": "Live", "kind": "color", "color": "#3366ff", "w": 640, "h": 360 }),
    )
    .await;
    let started = app
        .post_as_streamer("/api/obs/record/start")
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 200);
    loop {
        let state = event_within(&mut events, "obs.record.state", 20).await;
        if state["active"] == true {
            break;
        }
    }
    // Let OBS encode about a second of frames; the file is checked below, not the timing.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stopped: serde_json::Value = app
        .post_as_streamer("/api/obs/record/stop")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let path = std::path::PathBuf::from(stopped["path"].as_str().expect("a path"));
    assert!(
        path.starts_with(obs.recordings()),
        "OBS wrote where its profile says: {}",
        path.display()
    );
    let probe = tokio::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames",
        ])
        .args(["-of", "json"])
        .arg(&path)
        .output()
        .await
        .expect("ffprobe runs (scripts/setup test installs ffmpeg)");
    assert!(
        probe.status.success(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
    let video = &info["streams"][0];
    assert_eq!(video["codec_name"], "h264", "{info}");
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(640), Some(360))
    );
    let frames: u64 = video["nb_read_frames"].as_str().unwrap().parse().unwrap();
    assert!(frames >= 5, "the recording holds real frames: {info}");
}

#[tokio::test]
#[cfg_attr(
    not(feature = "real-obs"),
    ignore = "tier `real-obs`: needs OBS 30.2 (sudo scripts/setup obs, then scripts/test)"
)]
async fn real_obs_killed_and_restarted_is_followed_without_help() {
    let mut obs = RealObs::start(PASSWORD).await;
    let (app, mut events) = engine_for(&obs).await;
    obs.kill();
    let lost = obs_status_within(&mut events, "lost", 20).await;
    assert!(
        lost["lastError"].is_string(),
        "the loss is explained: {lost}"
    );
    assert_eq!(
        error_code(app.get_as_streamer("/api/obs/scenes").send().await.unwrap()).await,
        (503, "obs_not_connected".into())
    );
    obs.restart().await;
    obs_status_within(&mut events, "identified", 20).await;
    // Events flow on the new connection: a scene switch is seen.
    obs.client()
        .await
        .scenes()
        .create("After restart")
        .await
        .unwrap();
    app.post_as_streamer("/api/obs/scenes/current")
        .json(&json!({ "scene": "After restart" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        event_within(&mut events, "obs.scene.changed", 10).await["scene"],
        "After restart"
    );
}
