//! The control panel's pages over plain HTTP (the clicking is in `panel_browser`): each needs
//! the session, is served with the strict CSP and never cached, loads only scripts the server
//! has, shows what the engine holds, and never puts a secret in the page.

use support::TestApp;

const PAGES: &[&str] = &[
    "/",
    "/panel/overlays",
    "/panel/moderators",
    "/panel/accounts",
    "/panel/webhooks",
    "/panel/settings",
];

async fn signed_in_cookie(app: &TestApp) -> String {
    let response = app
        .post("/session")
        .header("origin", &app.url)
        .form(&[("token", app.token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303, "the form signs in");
    let set = response
        .headers()
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .unwrap();
    set.split(';').next().unwrap().to_owned()
}

async fn page(app: &TestApp, cookie: &str, path: &str) -> String {
    let response = app.get(path).header("cookie", cookie).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path} with a session");
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{path} is served with the panel's CSP: {csp}"
    );
    assert_eq!(response.headers()["cache-control"], "no-store", "{path}");
    response.text().await.unwrap()
}

#[tokio::test]
async fn panel_pages_need_the_session() {
    let app = TestApp::start().await;
    for path in PAGES {
        let response = app.get(path).send().await.unwrap();
        assert!(
            response.status().is_redirection(),
            "{path} without a session: {}",
            response.status()
        );
        assert_eq!(response.headers()["location"], "/login", "{path}");
        let forged = app
            .get(path)
            .header("cookie", "stagehand_session=forged")
            .send()
            .await
            .unwrap();
        assert!(
            forged.status().is_redirection(),
            "{path} with a forged cookie"
        );
    }
}

#[tokio::test]
async fn panel_pages_load_only_scripts_the_server_has() {
    let app = TestApp::start().await;
    let cookie = signed_in_cookie(&app).await;
    for path in PAGES {
        let html = page(&app, &cookie, path).await;
        assert!(!html.contains("<script>"), "{path}: no inline script");
        let scripts: Vec<&str> = html
            .split("<script src=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect();
        assert!(
            scripts.first() == Some(&"/ui/panel.js"),
            "{path} loads the shared helpers first: {scripts:?}"
        );
        for src in scripts {
            let served = app.get(src).send().await.unwrap();
            assert_eq!(served.status(), 200, "{path} loads {src}");
            assert!(
                served.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/javascript"),
                "{src}"
            );
        }
    }
}

#[tokio::test]
async fn panel_pages_show_what_the_engine_holds_and_no_secret() {
    let app = TestApp::start().await;
    let cookie = signed_in_cookie(&app).await;
    let overlay = app.create_overlay("Main <scene>").await;
    let signed = overlay["signedUrl"].as_str().unwrap();
    let overlays = page(&app, &cookie, "/panel/overlays").await;
    assert!(overlays.contains("Main &lt;scene&gt;"), "escaped name");
    let sig = signed.split("sig=").nth(1).unwrap();
    assert!(
        overlays.contains(sig),
        "the signed link is on the page to copy"
    );

    let made: serde_json::Value = app
        .post_as_streamer("/api/moderator-keys/generate")
        .json(&serde_json::json!({ "label": "Sam", "scopes": ["tts"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = made["key"].as_str().unwrap();
    let consumed: serde_json::Value = app
        .post("/api/moderator-keys/consume")
        .json(&serde_json::json!({ "key": key }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session = consumed["session"].as_str().unwrap();
    let moderators = page(&app, &cookie, "/panel/moderators").await;
    assert!(moderators.contains("Sam") && moderators.contains("Send text to speech"));
    assert!(!moderators.contains(key), "the key is never on the page");
    assert!(!moderators.contains(session), "nor the session token");

    let token = app.tradingview_token().await;
    let webhooks = page(&app, &cookie, "/panel/webhooks").await;
    assert!(
        !webhooks.contains(&token),
        "the URL token is hidden until revealed"
    );
    assert!(webhooks.contains(&format!("{}/webhooks/tradingview", app.url)));

    let home = page(&app, &cookie, "/").await;
    assert!(home.contains("Main &lt;scene&gt;"), "home lists overlays");
    let settings = page(&app, &cookie, "/panel/settings").await;
    assert!(settings.contains(&app.url), "settings shows the address");
    for html in [&overlays, &moderators, &webhooks, &home, &settings] {
        assert!(
            !html.contains(&app.token),
            "the streamer token is never on a page"
        );
    }
}
