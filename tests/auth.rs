//! The streamer token, sessions and the desktop's one-time login code.

use std::sync::Arc;
use std::time::Duration;

use stagehand_engine::clock::ManualClock;
use support::{Options, TestApp, error_code};

fn session_cookie(response: &reqwest::Response) -> String {
    let header = response
        .headers()
        .get("set-cookie")
        .expect("a successful sign-in sets the session cookie")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        header.contains("HttpOnly"),
        "scripts must not read the session: {header}"
    );
    assert!(
        header.contains("SameSite=Strict"),
        "other sites must not send it: {header}"
    );
    header.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn streamer_endpoints_need_the_token() {
    let app = TestApp::start().await;
    let none = app.get("/api/audit").send().await.unwrap();
    assert_eq!(error_code(none).await, (401, "auth_required".into()));
    let wrong = app
        .get("/api/audit")
        .header("x-streamer-token", "not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(wrong).await, (401, "invalid_credentials".into()));
    let almost = app
        .get("/api/audit")
        .header("x-streamer-token", &app.token[..app.token.len() - 1])
        .send()
        .await
        .unwrap();
    assert_eq!(
        almost.status(),
        401,
        "a prefix of the token is not the token"
    );
    let header = app.get_as_streamer("/api/audit").send().await.unwrap();
    assert_eq!(header.status(), 200);
    let bearer = app
        .get("/api/status")
        .header("authorization", format!("Bearer {}", app.token))
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 200);
    let status: serde_json::Value = bearer.json().await.unwrap();
    assert_eq!(status["secretBackend"], "file");
    assert_eq!(status["dataDir"], app.data_dir().display().to_string());
}

#[tokio::test]
async fn the_home_page_redirects_to_sign_in_then_shows_the_engine() {
    let app = TestApp::start().await;
    let anonymous = app.get("/").send().await.unwrap();
    assert_eq!(anonymous.status(), 303);
    assert_eq!(anonymous.headers()["location"], "/login");
    let login_page = app
        .get("/login")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        login_page.contains("name=\"token\""),
        "the page has a token field"
    );

    let signed_in = app
        .post("/session")
        .header("origin", &app.url)
        .form(&[("token", app.token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        signed_in.status(),
        303,
        "a form sign-in lands on the home page"
    );
    let cookie = session_cookie(&signed_in);
    let home = app.get("/").header("cookie", &cookie).send().await.unwrap();
    assert_eq!(home.status(), 200);
    let html = home.text().await.unwrap();
    assert!(html.contains(stagehand_engine::VERSION));
    assert!(html.contains(&app.data_dir().display().to_string()));
    assert!(html.contains("id=\"secret-backend\""));
    assert!(html.contains("id=\"uptime\""));
    assert!(
        html.contains(r#"href="/panel/moderators""#),
        "the navigation leads to the other pages"
    );

    let api = app
        .get("/api/status")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        api.status(),
        200,
        "the session also opens the API for the panel's scripts"
    );

    let out = app
        .post("/session/logout")
        .header("origin", &app.url)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    let after = app
        .get("/api/status")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(after).await, (401, "invalid_credentials".into()));
}

#[tokio::test]
async fn a_wrong_token_in_the_form_shows_the_page_again() {
    let app = TestApp::start().await;
    let response = app
        .post("/session")
        .form(&[("token", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers().get("set-cookie").is_none());
    assert!(response.text().await.unwrap().contains("not right"));
    let audit = app.engine.audit().list(10, None).await.unwrap();
    assert_eq!(audit[0].action, "auth.login");
    assert_eq!(audit[0].outcome, "denied", "failed sign-ins are audited");
}

#[tokio::test]
async fn a_login_code_works_once() {
    let app = TestApp::start().await;
    let code = app.engine.issue_login_code().unwrap();
    let first = app
        .post("/session")
        .json(&serde_json::json!({ "code": code.expose() }))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    let cookie = session_cookie(&first);
    assert_eq!(
        app.get("/")
            .header("cookie", cookie)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let again = app
        .post("/session")
        .json(&serde_json::json!({ "code": code.expose() }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(again).await,
        (401, "invalid_credentials".into()),
        "single use"
    );
}

#[tokio::test]
async fn login_codes_and_sessions_expire() {
    let clock = ManualClock::new(1_800_000_000_000);
    let app = TestApp::start_with(Options {
        clock: Arc::new(clock.clone()),
        ..Options::default()
    })
    .await;
    let code = app.engine.issue_login_code().unwrap();
    clock.advance(Duration::from_secs(61));
    let late = app
        .post("/session")
        .json(&serde_json::json!({ "code": code.expose() }))
        .send()
        .await
        .unwrap();
    assert_eq!(late.status(), 401, "a code lives 60 s");

    let ok = app
        .post("/session")
        .json(&serde_json::json!({ "token": app.token }))
        .send()
        .await
        .unwrap();
    let cookie = session_cookie(&ok);
    clock.advance(Duration::from_secs(29 * 24 * 3600));
    assert_eq!(
        app.get("/")
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    clock.advance(Duration::from_secs(2 * 24 * 3600));
    assert_eq!(
        app.get("/")
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .status(),
        303,
        "sessions last a fixed 30 days from sign-in"
    );
}

#[tokio::test]
async fn malformed_sign_in_bodies_get_clear_errors() {
    let app = TestApp::start().await;
    let both = app
        .post("/session")
        .json(&serde_json::json!({ "token": "a", "code": "b" }))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(both).await, (400, "invalid_fields".into()));
    let broken = app
        .post("/session")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(broken).await, (400, "invalid_json".into()));
    let wrong_method = app.client.put(app.at("/session")).send().await.unwrap();
    assert_eq!(
        error_code(wrong_method).await,
        (405, "method_not_allowed".into())
    );
}
