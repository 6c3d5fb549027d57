//! Host and Origin checks, body limits, rate limits.

use futures_util::StreamExt;
use support::{Options, TestApp, error_code};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

#[tokio::test]
async fn a_foreign_host_is_refused_even_on_public_routes() {
    let app = TestApp::start().await;
    for path in ["/healthz", "/", "/login"] {
        let response = app
            .get(path)
            .header("host", "evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(response).await,
            (403, "host_not_allowed".into()),
            "DNS rebinding: {path} must not answer to another name"
        );
    }
    let wrong_port = app
        .get("/healthz")
        .header("host", "127.0.0.1:1")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_port.status(), 403);
    let ours = app
        .get("/healthz")
        .header("host", format!("localhost:{}", app.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(ours.status(), 200, "localhost with our port is ours");
}

#[tokio::test]
async fn configured_hosts_are_accepted() {
    let app =
        TestApp::start_with(Options::default().env("STAGEHAND_SERVER_ALLOWED_HOSTS", "stream.lan"))
            .await;
    let response = app
        .get("/healthz")
        .header("host", "stream.lan")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_cross_origin_post_is_refused_and_changes_nothing() {
    let app = TestApp::start().await;
    let before = app.engine.audit().list(100, None).await.unwrap().len();
    let response = app
        .post("/session")
        .header("origin", "http://evil.example")
        .json(&serde_json::json!({ "token": app.token }))
        .send()
        .await
        .unwrap();
    assert!(
        response.headers().get("set-cookie").is_none(),
        "no session for a foreign page"
    );
    assert_eq!(
        error_code(response).await,
        (403, "origin_not_allowed".into())
    );
    assert_eq!(
        app.engine.audit().list(100, None).await.unwrap().len(),
        before,
        "the refused request never reached the handler"
    );
    let same_origin = app
        .post("/session")
        .header("origin", &app.url)
        .json(&serde_json::json!({ "token": app.token }))
        .send()
        .await
        .unwrap();
    assert_eq!(same_origin.status(), 200, "our own page may sign in");
}

#[tokio::test]
async fn strict_origin_refuses_browser_writes_without_origin_but_not_api_clients() {
    let app = TestApp::start_with(Options::default().env("ENABLE_STRICT_ORIGIN", "true")).await;
    let bare = app
        .post("/session")
        .json(&serde_json::json!({ "token": app.token }))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(bare).await, (403, "origin_required".into()));
    let api = app
        .post_as_streamer("/api/alerts")
        .json(&serde_json::json!({ "kind": "test", "title": "from a script" }))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 202, "token-header clients are not browsers");
    let wrong_token = app
        .post("/api/alerts")
        .header("x-streamer-token", "not-the-token")
        .json(&serde_json::json!({ "kind": "test", "title": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        wrong_token.status(),
        401,
        "passing the guard is not passing auth"
    );

    // A signed-in browser with a junk Authorization header and no Origin: the junk header
    // neither counts as a token for the guard nor lets the cookie through.
    let login = app
        .post("/session")
        .header("origin", &app.url)
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
    let sneaky = app
        .post("/api/alerts")
        .header("cookie", &cookie)
        .header("authorization", "Basic Zm9vOmJhcg==")
        .json(&serde_json::json!({ "kind": "test", "title": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(sneaky).await, (403, "origin_required".into()));
    let allowed = TestApp::start_with(
        Options::default()
            .env("ENABLE_STRICT_ORIGIN", "true")
            .env("ALLOWED_ORIGINS", "https://panel.example"),
    )
    .await;
    let configured = allowed
        .post("/session")
        .header("origin", "https://panel.example")
        .json(&serde_json::json!({ "token": allowed.token }))
        .send()
        .await
        .unwrap();
    assert_eq!(configured.status(), 200, "ALLOWED_ORIGINS extends the list");
}

fn ws_request(
    app: &TestApp,
    origin: &str,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut request = format!("ws://{}/ws/events", app.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("origin", HeaderValue::from_str(origin).unwrap());
    request.headers_mut().insert(
        "x-streamer-token",
        HeaderValue::from_str(&app.token).unwrap(),
    );
    request
}

#[tokio::test]
async fn a_websocket_upgrade_from_a_foreign_origin_is_refused() {
    let app = TestApp::start().await;
    // What a hostile page can do: its browser sends the streamer's cookie and its own Origin.
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
    let mut request = format!("ws://{}/ws/events", app.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("origin", HeaderValue::from_static("http://evil.example"));
    request
        .headers_mut()
        .insert("cookie", HeaderValue::from_str(&cookie).unwrap());
    let err = tokio_tungstenite::connect_async(request)
        .await
        .expect_err("a foreign page must not open the socket");
    match err {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            assert_eq!(response.status(), 403);
            let body: serde_json::Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(body["error"]["code"], "origin_not_allowed");
        }
        other => panic!("expected an HTTP refusal, got {other}"),
    }
    for origin in ["http://evil.example", "null"] {
        let token_client = tokio_tungstenite::connect_async(ws_request(&app, origin)).await;
        assert!(
            token_client.is_err(),
            "{origin}: a foreign Origin is refused even with the token"
        );
    }
    let plain_get = app.get_as_streamer("/ws/events").send().await.unwrap();
    assert_eq!(
        error_code(plain_get).await,
        (426, "upgrade_required".into())
    );
}

#[tokio::test]
async fn the_event_socket_streams_engine_events_to_our_own_origin() {
    let app = TestApp::start().await;
    let (mut socket, _) = tokio_tungstenite::connect_async(ws_request(&app, &app.url))
        .await
        .expect("our own origin with the token may connect");
    let hello: serde_json::Value =
        serde_json::from_str(socket.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(hello["type"], "hello");
    // A sign-in writes an audit entry, which the socket must deliver.
    let login = app
        .post("/session")
        .json(&serde_json::json!({ "token": app.token }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let event: serde_json::Value =
        serde_json::from_str(socket.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(event["type"], "audit.recorded");
    assert_eq!(event["data"]["action"], "auth.login");
    assert_eq!(event["data"]["outcome"], "ok");
}

#[tokio::test]
async fn the_event_socket_needs_credentials() {
    let app = TestApp::start().await;
    let mut request = format!("ws://{}/ws/events", app.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("origin", HeaderValue::from_str(&app.url).unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401)
        }
        other => panic!("expected 401, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn odd_methods_do_not_create_metric_series() {
    let app = TestApp::start().await;
    for i in 0..5 {
        let method = reqwest::Method::from_bytes(format!("X{i}FOO").as_bytes()).unwrap();
        let response = app
            .client
            .request(method, app.at("/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405);
    }
    let text = app
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !text.contains("X0FOO"),
        "method labels come from a fixed set"
    );
    assert!(text.contains(r#"method="other""#), "{text}");
}

#[tokio::test]
async fn pages_and_responses_carry_security_headers() {
    let app = TestApp::start().await;
    let login = app.get("/login").send().await.unwrap();
    let csp = login.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(login.headers()["x-content-type-options"], "nosniff");
    let api = app.get("/healthz").send().await.unwrap();
    assert_eq!(api.headers()["x-frame-options"], "SAMEORIGIN");
}

#[tokio::test]
async fn a_two_megabyte_body_is_refused_with_413() {
    let app = TestApp::start().await;
    let big = format!("{{\"token\":\"{}\"}}", "a".repeat(2 * 1024 * 1024));
    let response = app
        .post("/session")
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response).await,
        (413, "payload_too_large".into())
    );
    assert!(
        app.engine.audit().list(10, None).await.unwrap().is_empty(),
        "a refused body changes nothing"
    );
}

#[tokio::test]
async fn sign_in_attempts_are_rate_limited_per_address() {
    let app = TestApp::start_with(
        Options::default().env("STAGEHAND_SECURITY_LOGIN_ATTEMPTS_PER_MINUTE", "5"),
    )
    .await;
    for attempt in 0..5 {
        let response = app
            .post("/session")
            .json(&serde_json::json!({ "token": "wrong" }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            401,
            "attempt {attempt} is within the limit"
        );
    }
    let limited = app
        .post("/session")
        .json(&serde_json::json!({ "token": app.token }))
        .send()
        .await
        .unwrap();
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(
        error_code(limited).await,
        (429, "rate_limited".into()),
        "even the right token waits once the limit is reached"
    );
}
