//! Secret storage through the engine: the encrypted file, the OS keychain, and leaks.

use futures_util::StreamExt;
use stagehand_engine::secrets::SecretError;
use stagehand_engine::{EngineError, Secret};
use support::{Options, TestApp, logs};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[tokio::test]
async fn file_backend_round_trip_survives_a_restart() {
    let app = TestApp::start().await;
    app.engine
        .secrets()
        .set("obs-password", Secret::new("s3cret-round-trip"))
        .await
        .unwrap();
    let app = app.restart(Options::default()).await;
    let back = app.engine.secrets().get("obs-password").await.unwrap();
    assert_eq!(back.as_ref().map(Secret::expose), Some("s3cret-round-trip"));
    let raw = std::fs::read(app.data_dir().join("secrets.enc")).unwrap();
    assert!(
        !String::from_utf8_lossy(&raw).contains("s3cret-round-trip"),
        "the file holds ciphertext only"
    );
    assert!(app.engine.secrets().delete("obs-password").await.unwrap());
    assert!(
        app.engine
            .secrets()
            .get("obs-password")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_wrong_key_is_a_clear_error_not_a_crash() {
    let key_a = stagehand_engine::secrets::FileSecretStore::generate_key().unwrap();
    let key_b = stagehand_engine::secrets::FileSecretStore::generate_key().unwrap();
    let mut app =
        TestApp::start_with(Options::default().env("STAGEHAND_SECRETS_KEY", key_a.expose())).await;
    app.stop().await;
    let dir = app.data_dir().to_path_buf();
    let err = TestApp::start_in(
        &dir,
        Options::default().env("STAGEHAND_SECRETS_KEY", key_b.expose()),
    )
    .await
    .err()
    .expect("another key must not open the secrets");
    assert!(
        matches!(err, EngineError::Secret(SecretError::WrongKey { .. })),
        "{err}"
    );
    let message = err.to_string();
    assert!(message.contains("cannot be decrypted"), "{message}");
    assert!(
        !message.contains(key_b.expose()),
        "the message never shows the key"
    );
    let again = TestApp::start_in(
        &dir,
        Options::default().env("STAGEHAND_SECRETS_KEY", key_a.expose()),
    )
    .await
    .expect("the right key still opens it: the failed attempt changed nothing");
    drop(again);
}

#[tokio::test]
async fn secrets_never_appear_in_logs_or_responses() {
    let captured = logs();
    let app = TestApp::start().await;
    let secret = "leak-canary-7f3a9c2e51";
    app.engine
        .secrets()
        .set("obs-password", Secret::new(secret))
        .await
        .unwrap();

    let mut bodies = Vec::new();
    // Sign in with the token (form and JSON), fail with a wrong one, then visit everything.
    let login = app
        .post("/session")
        .json(&serde_json::json!({ "token": app.token }))
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    bodies.push(login.text().await.unwrap());
    let wrong = app
        .post("/session")
        .form(&[("token", format!("{secret}-guess"))])
        .send()
        .await
        .unwrap();
    bodies.push(wrong.text().await.unwrap());
    for path in [
        "/",
        "/login",
        "/api/status",
        "/api/audit",
        "/metrics",
        "/healthz",
        "/readyz",
        "/nope",
    ] {
        let response = app
            .get(path)
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        bodies.push(format!("{:?}", response.headers()));
        bodies.push(response.text().await.unwrap());
    }
    let mut request = format!("ws://{}/ws/events", app.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("cookie", cookie.parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    bodies.push(socket.next().await.unwrap().unwrap().to_string());

    for body in &bodies {
        assert!(
            !body.contains(secret),
            "a response leaked the secret: {body}"
        );
        assert!(
            !body.contains(&app.token),
            "a response leaked the streamer token: {body}"
        );
    }
    let logged = captured.contents();
    assert!(
        logged.contains("/session"),
        "the capture saw this test's requests"
    );
    assert!(!logged.contains(secret), "the logs leaked the secret");
    assert!(
        !logged.contains(&app.token),
        "the logs leaked the streamer token"
    );
    let mut dirs = vec![app.data_dir().to_path_buf()];
    let mut scanned = 0;
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            scanned += 1;
            let raw = std::fs::read(&path).unwrap();
            let text = String::from_utf8_lossy(&raw);
            assert!(
                !text.contains(secret),
                "{} holds the secret in plain",
                path.display()
            );
            assert!(
                !text.contains(&app.token),
                "{} holds the token in plain",
                path.display()
            );
        }
    }
    assert!(
        scanned >= 3,
        "the database, key file and secrets file were scanned"
    );
}

/// The real OS keychain (Secret Service over D-Bus). `scripts/test` runs this under
/// `dbus-run-session` with an unlocked gnome-keyring; elsewhere it is skipped by `#[ignore]`.
#[tokio::test]
#[cfg_attr(
    not(feature = "keychain"),
    ignore = "tier `keychain`: needs a Secret Service on D-Bus (scripts/test runs it)"
)]
async fn keychain_backend_round_trip() {
    let options = || Options {
        env: vec![("STAGEHAND_SECRETS".into(), "keychain".into())],
        ..Options::default()
    };
    let app = TestApp::start_with(options()).await;
    let status: serde_json::Value = app.get_json("/api/status").await;
    assert_eq!(status["secretBackend"], "keychain");
    app.engine
        .secrets()
        .set("obs-password", Secret::new("kc-value"))
        .await
        .unwrap();
    assert!(
        !app.data_dir().join("secrets.enc").exists(),
        "the keychain backend writes no secrets file"
    );
    let other = TestApp::start_with(options()).await;
    assert!(
        other
            .engine
            .secrets()
            .get("obs-password")
            .await
            .unwrap()
            .is_none(),
        "another data dir has its own keychain entries"
    );
    assert_ne!(other.token, app.token);
    let token = app.token.clone();
    let app = app.restart(options()).await;
    assert_eq!(
        app.token, token,
        "the token lives in the keychain across restarts"
    );
    assert_eq!(
        app.engine
            .secrets()
            .get("obs-password")
            .await
            .unwrap()
            .as_ref()
            .map(Secret::expose),
        Some("kc-value")
    );
    assert!(app.engine.secrets().delete("obs-password").await.unwrap());
    assert!(
        app.engine
            .secrets()
            .get("obs-password")
            .await
            .unwrap()
            .is_none()
    );
}
