//! OBS: the connection that heals itself, its status in plain words, and the operations.

use support::{Events, Options, TestApp, error_code, event};

/// Waits for the next `obs.status` event whose state is `state`.
async fn status_event(events: &mut Events, state: &str) -> serde_json::Value {
    support::obs_status_within(events, state, 10).await
}

#[tokio::test]
async fn without_obs_the_engine_reports_it_and_keeps_serving() {
    // A port with nothing listening: bind one, note it, let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = TestApp::start_with(
        Options::default()
            .env("STAGEHAND_OBS_ENABLED", "true")
            .env("STAGEHAND_OBS_PORT", &port.to_string()),
    )
    .await;
    let mut events = app.engine.events().subscribe();
    app.engine.obs_start();
    let lost = status_event(&mut events, "lost").await;
    assert!(
        lost["lastError"]
            .as_str()
            .unwrap()
            .contains("not reachable"),
        "the error says what to check: {lost}"
    );
    let status = app.get_json("/api/obs/status").await;
    assert_eq!(status["state"], "lost");
    assert_eq!(status["address"], format!("127.0.0.1:{port}"));
    let scenes = app.get_as_streamer("/api/obs/scenes").send().await.unwrap();
    assert_eq!(error_code(scenes).await, (503, "obs_not_connected".into()));
    assert_eq!(
        app.get("/healthz").send().await.unwrap().status(),
        200,
        "the engine keeps serving"
    );
    // It keeps trying: another attempt is reported.
    let again = status_event(&mut events, "lost").await;
    assert!(again["attempts"].as_u64().unwrap() > lost["attempts"].as_u64().unwrap());
}

#[tokio::test]
async fn obs_is_off_when_disabled() {
    let app = TestApp::start().await;
    app.engine.obs_start();
    assert_eq!(app.get_json("/api/obs/status").await["state"], "disabled");
}

use support::fake_obs::{FakeObs, ObsState};

fn obs_options(port: u16, password: &str) -> Options {
    Options::default()
        .env("STAGEHAND_OBS_ENABLED", "true")
        .env("STAGEHAND_OBS_PORT", &port.to_string())
        .env("STAGEHAND_OBS_PASSWORD", password)
}

#[tokio::test]
async fn connects_with_the_password_reports_versions_and_switches_scenes() {
    let obs = FakeObs::start(Some("hunter2")).await;
    let app = TestApp::start_with(obs_options(obs.port(), "hunter2")).await;
    let mut events = app.engine.events().subscribe();
    app.engine.obs_start();
    let up = status_event(&mut events, "identified").await;
    assert_eq!(up["obsVersion"], "30.2.3");
    assert_eq!(up["websocketVersion"], "5.5.2");
    assert!(up["lastError"].is_null());

    let scenes = app.get_json("/api/obs/scenes").await;
    let list: Vec<&str> = scenes["scenes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    assert!(list.contains(&"Live"), "{scenes}");
    let switched = app
        .post_as_streamer("/api/obs/scenes/current")
        .json(&serde_json::json!({ "scene": "Live" }))
        .send()
        .await
        .unwrap();
    assert_eq!(switched.status(), 204);
    assert_eq!(obs.state().program_scene, "Live", "OBS really switched");
    assert_eq!(
        event(&mut events, "obs.scene.changed").await["scene"],
        "Live",
        "OBS's event reached the bus"
    );
    let missing = app
        .post_as_streamer("/api/obs/scenes/current")
        .json(&serde_json::json!({ "scene": "No such scene" }))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(missing).await, (502, "obs_refused".into()));
}

#[tokio::test]
async fn a_wrong_password_is_reported_in_plain_words() {
    let obs = FakeObs::start(Some("right-pw-5a1b9c7e")).await;
    let app = TestApp::start_with(obs_options(obs.port(), "wrong")).await;
    let mut events = app.engine.events().subscribe();
    app.engine.obs_start();
    let lost = status_event(&mut events, "lost").await;
    assert!(
        lost["lastError"]
            .as_str()
            .unwrap()
            .contains("wrong OBS WebSocket password"),
        "{lost}"
    );
    assert_eq!(obs.identified_count(), 0);
    let logged = support::logs().contents();
    assert!(
        !logged.contains("right-pw-5a1b9c7e"),
        "the password is never logged"
    );
}

#[tokio::test]
async fn an_obs_too_old_is_named_with_the_version_needed() {
    let obs = FakeObs::start_on(
        0,
        None,
        ObsState {
            obs_version: "30.1.2".into(),
            ..ObsState::default()
        },
    )
    .await;
    let app = TestApp::start_with(obs_options(obs.port(), "")).await;
    let mut events = app.engine.events().subscribe();
    app.engine.obs_start();
    let lost = status_event(&mut events, "lost").await;
    let error = lost["lastError"].as_str().unwrap();
    assert!(
        error.contains("30.1.2") && error.contains("30.2"),
        "{error}"
    );
}

#[tokio::test]
async fn reconnects_after_obs_dies_and_comes_back_with_events_flowing() {
    let obs = FakeObs::start(Some("pw")).await;
    let port = obs.port();
    let app = TestApp::start_with(obs_options(port, "pw")).await;
    let mut events = app.engine.events().subscribe();
    app.engine.obs_start();
    status_event(&mut events, "identified").await;

    let state = obs.stop().await; // like a crash: no goodbye
    status_event(&mut events, "lost").await;
    assert_eq!(
        error_code(app.get_as_streamer("/api/obs/scenes").send().await.unwrap())
            .await
            .1,
        "obs_not_connected"
    );

    let obs = FakeObs::start_on(port, Some("pw"), state).await;
    obs.set_not_ready_for(2).await; // OBS answers 207 NotReady in its first moments
    let up = status_event(&mut events, "identified").await;
    assert_eq!(
        up["obsVersion"], "30.2.3",
        "GetVersion was retried past NotReady, not given up: {up}"
    );
    assert!(
        !obs.subscriptions().is_empty() && obs.subscriptions()[0] != 0,
        "events resubscribed"
    );
    obs.emit(
        "CurrentProgramSceneChanged",
        1 << 2,
        serde_json::json!({
        "sceneName": "Live", "sceneUuid": support::fake_obs::ObsState::scene_uuid("Live") }),
    )
    .await;
    assert_eq!(
        event(&mut events, "obs.scene.changed").await["scene"],
        "Live"
    );
    // A request answered NotReady after the handshake is retried too.
    obs.set_not_ready_for(2).await;
    let scenes = app.get_as_streamer("/api/obs/scenes").send().await.unwrap();
    assert_eq!(scenes.status(), 200, "retried past two NotReady answers");
}

async fn connected(obs: &FakeObs) -> TestApp {
    let app = TestApp::start_with(obs_options(obs.port(), "pw")).await;
    let mut events = app.engine.events().subscribe();
    app.engine.obs_start();
    status_event(&mut events, "identified").await;
    app
}

#[tokio::test]
async fn adding_an_overlay_to_obs_is_one_idempotent_call() {
    let obs = FakeObs::start(Some("pw")).await;
    let app = connected(&obs).await;
    let overlay = app.create_overlay("Main").await;
    let body =
        serde_json::json!({ "scene": "Live", "overlayId": overlay["overlayId"], "x": 10, "y": 20 });
    let first: serde_json::Value = app
        .post_as_streamer("/api/obs/sources")
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["created"], true, "{first}");
    assert_eq!(first["name"], "Stagehand: Main");
    let input = obs
        .state()
        .input("Stagehand: Main")
        .cloned()
        .expect("the source exists in OBS");
    assert_eq!(input.kind, "browser_source");
    assert_eq!(input.scene, "Live");
    let url = input.settings["url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with(&format!("{}/o/", app.url)) && url.contains("sig="),
        "the signed link: {url}"
    );
    assert_eq!(input.settings["width"], 1280, "the overlay's size");
    assert_eq!(
        app.client.get(&url).send().await.unwrap().status(),
        200,
        "OBS can load that link"
    );

    let again: serde_json::Value = app
        .post_as_streamer("/api/obs/sources")
        .json(&serde_json::json!({ "scene": "Live", "overlayId": overlay["overlayId"], "x": 50, "y": 60 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["created"], false, "the second call updates: {again}");
    assert_eq!(again["sceneItemId"], first["sceneItemId"]);
    let state = obs.state();
    assert_eq!(
        state
            .inputs
            .iter()
            .filter(|i| i.name == "Stagehand: Main")
            .count(),
        1,
        "no duplicate source"
    );
    assert_eq!(
        state.input("Stagehand: Main").unwrap().transform["positionX"],
        50.0
    );

    let both = app
        .post_as_streamer("/api/obs/sources")
        .json(&serde_json::json!({ "scene": "Live", "overlayId": overlay["overlayId"], "url": "http://x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(both).await, (422, "invalid_fields".into()));
}

/// `/obs/sources` is the spec's path, kept as a documented alias of `/api/obs/sources`: it
/// must answer exactly as the `/api/` route does.
#[tokio::test]
async fn the_spec_sources_path_answers_as_its_api_route_does() {
    let obs = FakeObs::start(Some("pw")).await;
    let app = connected(&obs).await;
    let overlay = app.create_overlay("Main").await;
    let body =
        serde_json::json!({ "scene": "Live", "overlayId": overlay["overlayId"], "x": 10, "y": 20 });
    let send = |path: &'static str, body: serde_json::Value| {
        let request = app.post_as_streamer(path).json(&body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, first) = send("/api/obs/sources", body.clone()).await;
    assert_eq!(
        (status, &first["created"]),
        (200, &serde_json::json!(true)),
        "{first}"
    );
    let by_api = send("/api/obs/sources", body.clone()).await;
    let by_alias = send("/obs/sources", body).await;
    assert_eq!(
        by_api.1["created"], false,
        "the second call updates: {}",
        by_api.1
    );
    assert_eq!(
        by_alias, by_api,
        "the alias updates the same source and says the same"
    );
    let invalid = serde_json::json!({ "scene": "Live", "overlayId": overlay["overlayId"], "url": "http://x" });
    assert_eq!(
        send("/obs/sources", invalid.clone()).await,
        send("/api/obs/sources", invalid).await,
        "and refuses the same way"
    );
}

#[tokio::test]
async fn without_the_browser_source_plugin_obs_says_so() {
    let obs = FakeObs::start_on(
        0,
        Some("pw"),
        ObsState {
            browser_source_available: false,
            ..ObsState::default()
        },
    )
    .await;
    let app = connected(&obs).await;
    let response = app
        .post_as_streamer("/api/obs/sources")
        .json(&serde_json::json!({ "scene": "Live", "url": "http://127.0.0.1:9/x" }))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "obs_no_browser_source");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("browser source")
    );
}

#[tokio::test]
async fn streaming_and_recording_are_controlled_and_followed() {
    let obs = FakeObs::start(Some("pw")).await;
    let app = connected(&obs).await;
    let mut events = app.engine.events().subscribe();
    assert_eq!(
        app.post_as_streamer("/api/obs/stream/start")
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert!(obs.state().streaming);
    loop {
        if event(&mut events, "obs.stream.state").await["active"] == true {
            break;
        }
    }
    assert_eq!(
        app.post_as_streamer("/api/obs/record/start")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let stopped: serde_json::Value = app
        .post_as_streamer("/api/obs/record/stop")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        stopped["path"].as_str().is_some_and(|p| !p.is_empty()),
        "stop returns the file: {stopped}"
    );
    assert!(!obs.state().recording);
    assert_eq!(
        app.post_as_streamer("/api/obs/stream/sideways")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn stream_health_is_read_while_live_and_exported() {
    let obs = FakeObs::start(Some("pw")).await;
    let app = TestApp::start_with(
        obs_options(obs.port(), "pw").env("STAGEHAND_OBS_HEALTH_INTERVAL_MS", "100"),
    )
    .await;
    let mut events = app.engine.events().subscribe();
    app.engine.obs_start();
    status_event(&mut events, "identified").await;
    assert_eq!(
        app.post_as_streamer("/api/obs/stream/start")
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    // OBS sends 1 MB between two readings, 10 frames dropped.
    let mut readings = 0;
    let mut bumped = false;
    let health = loop {
        let h = event(&mut events, "obs.health").await;
        readings += 1;
        if h["live"] == true && !bumped {
            bumped = true;
            obs.update(|s| {
                s.output_bytes += 1_000_000;
                s.skipped_frames += 10;
                s.cpu_usage = 12.5;
            });
        }
        if h["live"] == true
            && h["bitrateKbps"].as_f64().is_some_and(|b| b > 0.0)
            && h["droppedFrames"] == 10
        {
            break h;
        }
        assert!(readings < 50, "no live reading with a bitrate: {h}");
    };
    assert_eq!(health["cpuPercent"], 12.5);
    let api = app.get_json("/api/obs/health").await;
    assert_eq!(api["live"], true);
    let metrics = app
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("stagehand_obs_live 1"), "{metrics}");
    assert!(
        metrics.contains("stagehand_obs_dropped_frames 10"),
        "{metrics}"
    );
}
