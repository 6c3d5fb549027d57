//! Health, readiness and metrics.

use support::TestApp;

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = TestApp::start().await;
    let health = app.get("/healthz").send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.json::<serde_json::Value>().await.unwrap()["status"],
        "ok"
    );
    let ready = app.get("/readyz").send().await.unwrap();
    assert_eq!(
        ready.status(),
        200,
        "a fresh store answers, so the engine is ready"
    );
    assert_eq!(
        ready.json::<serde_json::Value>().await.unwrap()["status"],
        "ready"
    );
}

fn series(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
}

#[tokio::test]
async fn metrics_count_a_request_we_made() {
    let app = TestApp::start().await;
    let key = r#"stagehand_http_requests_total{method="GET",route="/api/status",status="200"}"#;
    let before = app
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        series(&before, key),
        None,
        "nothing counted before the request"
    );
    for _ in 0..3 {
        assert_eq!(
            app.get_as_streamer("/api/status")
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    let missing = app.get("/api/status").send().await.unwrap();
    assert_eq!(missing.status(), 401);

    let response = app.get("/metrics").send().await.unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"),
        "Prometheus scrapes text"
    );
    let text = response.text().await.unwrap();
    assert_eq!(
        series(&text, key),
        Some(3.0),
        "three successful requests: {text}"
    );
    assert_eq!(
        series(
            &text,
            r#"stagehand_http_errors_total{code="auth_required"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        series(
            &text,
            r#"stagehand_http_request_duration_seconds_count{route="/api/status"}"#
        ),
        Some(4.0)
    );
    assert!(text.contains(r#"stagehand_build_info{version=""#), "{text}");
    assert!(text.contains("# TYPE stagehand_http_request_duration_seconds histogram"));
}

#[tokio::test]
async fn unknown_paths_get_a_json_404_and_do_not_explode_metric_labels() {
    let app = TestApp::start().await;
    let response = app.get("/no/such/path-abc123").send().await.unwrap();
    assert_eq!(
        support::error_code(response).await,
        (404, "not_found".into())
    );
    let text = app
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains("abc123"), "raw paths never become labels");
    assert!(text.contains(r#"route="unmatched""#), "{text}");
}
