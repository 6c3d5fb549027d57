//! What the public door and the engine door refuse, and that refused webhooks are not stored.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use stagehand_protocol::relay::RelayMessage;
use stagehand_relay::TRADINGVIEW_ADDRESSES;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::support::{ManualClock, TestRelay, config, refused_status};

async fn error_code(resp: reqwest::Response) -> String {
    let json: serde_json::Value = resp.json().await.expect("a JSON error body");
    json["error"]["code"].as_str().expect("a code").to_owned()
}

#[tokio::test]
async fn engine_links_need_the_right_secret() {
    let (_dir, config) = config();
    let relay = TestRelay::start(config).await;
    let tunnel = relay.tunnel().await;
    let wrong = relay
        .try_connect(tunnel.tunnel_id.as_str(), "wrong", Some(0))
        .await
        .err()
        .expect("refused");
    assert_eq!(refused_status(&wrong), 401);
    let missing = relay
        .try_connect(tunnel.tunnel_id.as_str(), "", Some(0))
        .await
        .err()
        .expect("refused");
    assert_eq!(refused_status(&missing), 401);
    let unknown = relay
        .try_connect("no-such-tunnel", tunnel.secret.expose(), Some(0))
        .await
        .err()
        .expect("refused");
    assert_eq!(
        refused_status(&unknown),
        401,
        "ids are not probed via connect"
    );

    let resp = relay
        .http
        .get(relay.url(&format!("/tunnel/{}/connect", tunnel.tunnel_id)))
        .header("authorization", "Bearer wrong")
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 401);
    assert_eq!(error_code(resp).await, "invalid_credentials");
    relay.stop().await;
}

#[tokio::test]
async fn unknown_tunnels_and_paths_outside_webhooks_are_404() {
    let (_dir, config) = config();
    let relay = TestRelay::start(config).await;
    let tunnel = relay.tunnel().await;
    let resp = relay
        .http
        .post(relay.url("/h/nosuchtunnel/webhooks/x"))
        .body("x")
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 404);
    assert_eq!(error_code(resp).await, "unknown_tunnel");
    for path in ["api/overlays", "webhooks/../api/overlays", "webhooks"] {
        let resp = relay
            .http
            .post(relay.url(&format!("/h/{}/{path}", tunnel.tunnel_id)))
            .body("x")
            .send()
            .await
            .expect("sent");
        assert_eq!(resp.status(), 404, "{path} is not a webhook path");
    }
    let resp = relay
        .http
        .get(relay.url("/nothing"))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 404);
    assert_eq!(error_code(resp).await, "not_found");
    relay.stop().await;
}

#[tokio::test]
async fn oversized_bodies_are_413_and_not_stored() {
    let (_dir, mut config) = config();
    config.limits.max_body_bytes = 1024;
    let relay = TestRelay::start(config).await;
    let tunnel = relay.tunnel().await;

    let resp = relay.post(&tunnel, "x", &[b'a'; 2048]).await;
    assert_eq!(resp.status(), 413, "refused by Content-Length");
    assert_eq!(error_code(resp).await, "body_too_large");

    // Chunked, no Content-Length: refused while reading.
    let mut tcp = tokio::net::TcpStream::connect(relay.addr)
        .await
        .expect("tcp");
    let chunk = "a".repeat(700);
    let request = format!(
        "POST /h/{}/webhooks/x HTTP/1.1\r\nhost: relay\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{chunk}\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        tunnel.tunnel_id,
        chunk.len(),
        chunk.len()
    );
    tcp.write_all(request.as_bytes()).await.expect("written");
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "got {answer}");

    assert_eq!(
        relay.post(&tunnel, "x", &[b'a'; 1024]).await.status(),
        202,
        "the limit itself fits"
    );
    let mut engine = relay.connect(&tunnel, 0).await;
    assert!(
        matches!(
            engine.next().await,
            RelayMessage::Welcome { head_seq: 1, .. }
        ),
        "only the fitting webhook got a seq"
    );
    relay.stop().await;
}

#[tokio::test]
async fn posts_over_the_tunnel_rate_are_429_with_retry_after() {
    let (_dir, mut config) = config();
    let clock = Arc::new(ManualClock::default());
    clock.0.store(1_000_000, Ordering::SeqCst);
    config.clock = clock.clone();
    config.limits.rate_per_sec = 1;
    config.limits.rate_burst = 3;
    let relay = TestRelay::start(config).await;
    let tunnel = relay.tunnel().await;
    let other = relay.tunnel().await;
    for _ in 0..3 {
        relay.post_ok(&tunnel, b"x").await;
    }
    let resp = relay.post(&tunnel, "x", b"x").await;
    assert_eq!(resp.status(), 429);
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert_eq!(error_code(resp).await, "rate_limited");
    relay.post_ok(&other, b"x").await;
    clock.0.fetch_add(1_000, Ordering::SeqCst);
    relay.post_ok(&tunnel, b"x").await;
    relay.stop().await;
}

#[tokio::test]
async fn allowlisted_paths_refuse_other_sources() {
    let (_dir, config) = config();
    let relay = TestRelay::start(config).await;
    let tunnel = relay.tunnel().await;
    relay
        .relay
        .set_allowlist(
            &tunnel.tunnel_id,
            "webhooks/tv",
            vec!["10.0.0.1".parse().expect("ip")],
        )
        .await
        .expect("set");
    let resp = relay.post(&tunnel, "tv", b"x").await;
    assert_eq!(resp.status(), 403);
    assert_eq!(error_code(resp).await, "forbidden_source");
    assert_eq!(
        relay.post(&tunnel, "other", b"x").await.status(),
        202,
        "an allow list binds only its own path"
    );
    relay
        .relay
        .set_allowlist(
            &tunnel.tunnel_id,
            "webhooks/tv",
            vec!["127.0.0.1".parse().expect("ip")],
        )
        .await
        .expect("set");
    assert_eq!(relay.post(&tunnel, "tv", b"x").await.status(), 202);
    relay.stop().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_is_checked_and_stored() {
    let (_dir, mut config) = config();
    config.trusted_proxies = vec!["127.0.0.1".parse().expect("ip")];
    let relay = TestRelay::start(config).await;
    let tunnel = relay.tunnel().await;
    relay
        .relay
        .set_allowlist(
            &tunnel.tunnel_id,
            "webhooks/tv",
            TRADINGVIEW_ADDRESSES.to_vec(),
        )
        .await
        .expect("set");
    let post = |xff: &'static str| {
        relay
            .http
            .post(relay.url(&format!("/h/{}/webhooks/tv", tunnel.tunnel_id)))
            .header("x-forwarded-for", xff)
            .body("x")
            .send()
    };
    assert_eq!(post("52.89.214.238").await.expect("sent").status(), 202);
    assert_eq!(
        post("52.89.214.238, 9.9.9.9").await.expect("sent").status(),
        403,
        "only the entry the proxy appended counts"
    );
    let mut engine = relay.connect(&tunnel, 0).await;
    engine.next().await;
    assert_eq!(
        engine.delivery().await.remote_addr.as_deref(),
        Some("52.89.214.238")
    );
    relay.stop().await;
}
