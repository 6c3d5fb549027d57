//! `GET /metrics`: totals of what the public door did, shown only to the relay's own machine
//! or to the holder of the metrics token.

use crate::support::{TestRelay, config};

/// The value of an unlabelled or labelled sample line, e.g. `name{code="x"}`.
fn sample(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_count_stored_and_refused_webhooks() {
    let (_dir, mut config) = config();
    config.limits.max_body_bytes = 100;
    config.limits.max_buffered = 2;
    let relay = TestRelay::start(config).await;
    let tunnel = relay.tunnel().await;
    for _ in 0..3 {
        relay.post_ok(&tunnel, b"{\"a\":1}").await;
    }
    let big = relay.post(&tunnel, "test", &[b'x'; 200]).await;
    assert_eq!(big.status(), 413);
    let unknown = relay
        .http
        .post(relay.url("/h/no-such-tunnel/webhooks/test"))
        .body("x")
        .send()
        .await
        .expect("sent");
    assert_eq!(unknown.status(), 404);

    let resp = relay
        .http
        .get(relay.url("/metrics"))
        .send()
        .await
        .expect("sent");
    assert_eq!(
        resp.status(),
        200,
        "the test client is on the relay's machine"
    );
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/plain")
    );
    let text = resp.text().await.expect("text");
    assert_eq!(
        sample(&text, "stagehand_relay_webhooks_stored_total"),
        Some(3)
    );
    assert_eq!(
        sample(&text, "stagehand_relay_webhook_bytes_stored_total"),
        Some(21)
    );
    assert_eq!(
        sample(
            &text,
            "stagehand_relay_webhooks_refused_total{code=\"body_too_large\"}"
        ),
        Some(1)
    );
    assert_eq!(
        sample(
            &text,
            "stagehand_relay_webhooks_refused_total{code=\"unknown_tunnel\"}"
        ),
        Some(1)
    );
    assert_eq!(
        sample(&text, "stagehand_relay_evicting_stores_total"),
        Some(1),
        "the third store pushed the first out of a two-delivery buffer"
    );
    assert_eq!(
        sample(&text, "stagehand_relay_buffered_deliveries"),
        Some(2)
    );
    assert_eq!(sample(&text, "stagehand_relay_buffered_bytes"), Some(14));
    assert_eq!(sample(&text, "stagehand_relay_tunnels"), Some(1));
    assert!(
        !text.contains(tunnel.tunnel_id.as_str()),
        "no tunnel is named in the metrics"
    );
}

#[tokio::test]
async fn metrics_are_not_shown_to_the_internet() {
    let (_dir, mut config) = config();
    config.trusted_proxies = vec!["127.0.0.1".parse().expect("ip")];
    let relay = TestRelay::start(config).await;
    // Through the proxy, from a public address: not local.
    let public = relay
        .http
        .get(relay.url("/metrics"))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .expect("sent");
    assert_eq!(public.status(), 404);
    // The proxy host itself scraping: local.
    let local = relay
        .http
        .get(relay.url("/metrics"))
        .send()
        .await
        .expect("sent");
    assert_eq!(local.status(), 200);
}

#[tokio::test]
async fn with_a_token_metrics_need_it() {
    let (_dir, mut config) = config();
    config.metrics_token = Some("scrape-me".into());
    let relay = TestRelay::start(config).await;
    let get = |auth: Option<&'static str>| {
        let mut request = relay.http.get(relay.url("/metrics"));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        request.send()
    };
    assert_eq!(get(None).await.expect("sent").status(), 404);
    assert_eq!(
        get(Some("Bearer scrape-mE")).await.expect("sent").status(),
        404
    );
    assert_eq!(
        get(Some("Bearer scrape-me")).await.expect("sent").status(),
        200
    );
}
