//! OBS: the connection that heals itself, its status in plain words, and the operations.

use support::{Options, TestApp, error_code};

/// Waits for the next `obs.status` event whose state is `state`.
async fn status_event(
    events: &mut tokio::sync::broadcast::Receiver<stagehand_engine::protocol::EventEnvelope>,
    state: &str,
) -> serde_json::Value {
    loop {
        let event = tokio::time::timeout(std::time::Duration::from_secs(10), events.recv())
            .await
            .expect("an OBS status within 10 s")
            .expect("bus open");
        if event.kind == "obs.status" && event.data["state"] == state {
            return event.data;
        }
    }
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
