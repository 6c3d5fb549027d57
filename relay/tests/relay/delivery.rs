//! Webhooks reach the engine exactly as sent; acknowledgements delete them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use stagehand_protocol::relay::{EngineMessage, RelayMessage};

use crate::support::{TestRelay, config};

#[tokio::test]
async fn a_webhook_reaches_the_engine_with_its_exact_bytes_and_only_forwarded_headers() {
    let (_dir, config) = config();
    let relay = TestRelay::start(config).await;
    let tunnel = relay.tunnel().await;
    let body = b"{\"ticker\":\"BTCUSD\",\"raw\":\"\xff\x00\"}".to_vec();
    let resp = relay
        .http
        .post(relay.url(&format!(
            "/h/{}/webhooks/tradingview?strategy=a&x=1",
            tunnel.tunnel_id
        )))
        .header("content-type", "application/json")
        .header("x-signature", "sig-123")
        .header("cookie", "session=abc")
        .header("authorization", "Bearer not-for-the-engine")
        .header("webhook-id", "msg_1")
        .body(body.clone())
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 202);
    let json: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(json["seq"], 1, "the first webhook of a tunnel is seq 1");
    assert_eq!(json["deliveryId"], format!("{}-1", tunnel.tunnel_id));

    let mut engine = relay.connect(&tunnel, 0).await;
    assert_eq!(
        engine.next().await,
        RelayMessage::Welcome {
            tunnel_id: tunnel.tunnel_id.to_string(),
            head_seq: 1
        }
    );
    let d = engine.delivery().await;
    assert_eq!(d.seq, 1);
    assert_eq!(d.delivery_id, format!("{}-1", tunnel.tunnel_id));
    assert_eq!(d.path, "webhooks/tradingview");
    assert_eq!(d.query, "strategy=a&x=1");
    assert_eq!(
        STANDARD.decode(&d.body_b64).expect("base64"),
        body,
        "the engine checks signatures on the original bytes"
    );
    let names: Vec<&str> = d.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"content-type"));
    assert!(
        d.headers
            .contains(&("x-signature".into(), "sig-123".into()))
    );
    assert!(d.headers.contains(&("webhook-id".into(), "msg_1".into())));
    assert!(
        !names.contains(&"cookie") && !names.contains(&"authorization"),
        "credentials of the sender never travel to the engine: {names:?}"
    );
    assert_eq!(d.remote_addr.as_deref(), Some("127.0.0.1"));

    engine.send(EngineMessage::Ack { seq: 1 }).await;
    engine.close().await;

    // Reconnecting as if the engine had nothing must not resend what it acknowledged: the next
    // delivery it sees is the one posted after.
    let mut engine = relay.connect(&tunnel, 0).await;
    assert!(matches!(
        engine.next().await,
        RelayMessage::Welcome { head_seq: 1, .. }
    ));
    assert_eq!(relay.post_ok(&tunnel, b"second").await, 2);
    assert_eq!(
        engine.delivery().await.seq,
        2,
        "seq 1 was acknowledged and deleted"
    );
    relay.stop().await;
}

#[tokio::test]
async fn unacknowledged_deliveries_are_resent_on_reconnect_above_last_seq_only() {
    let (_dir, config) = config();
    let relay = TestRelay::start(config).await;
    let tunnel = relay.tunnel().await;
    for i in 1..=3 {
        assert_eq!(relay.post_ok(&tunnel, format!("#{i}").as_bytes()).await, i);
    }

    let mut engine = relay.connect(&tunnel, 0).await;
    assert!(matches!(
        engine.next().await,
        RelayMessage::Welcome { head_seq: 3, .. }
    ));
    for i in 1..=3 {
        assert_eq!(engine.delivery().await.seq, i);
    }
    engine.close().await;

    let mut engine = relay.connect(&tunnel, 0).await;
    engine.next().await;
    for i in 1..=3 {
        assert_eq!(
            engine.delivery().await.seq,
            i,
            "nothing was acknowledged, so everything comes again, in order"
        );
    }
    engine.close().await;

    let mut engine = relay.connect(&tunnel, 2).await;
    engine.next().await;
    assert_eq!(
        engine.delivery().await.seq,
        3,
        "the engine said it has up to 2"
    );
    engine.close().await;

    let mut engine = relay.connect(&tunnel, 0).await;
    engine.next().await;
    assert_eq!(
        engine.delivery().await.seq,
        3,
        "last_seq 2 counted as an acknowledgement: 1 and 2 are gone"
    );
    relay.stop().await;
}

#[tokio::test]
async fn new_webhooks_are_pushed_to_a_connected_engine_in_order() {
    let (_dir, config) = config();
    let relay = TestRelay::start(config).await;
    let tunnel = relay.tunnel().await;
    let mut engine = relay.connect(&tunnel, 0).await;
    assert!(matches!(
        engine.next().await,
        RelayMessage::Welcome { head_seq: 0, .. }
    ));
    for i in 1..=5u64 {
        relay.post_ok(&tunnel, b"x").await;
        assert_eq!(engine.delivery().await.seq, i);
    }
    relay.stop().await;
}

#[tokio::test]
async fn the_window_pauses_sending_until_acks_arrive_then_resumes() {
    let (_dir, mut config) = config();
    config.link.window = 2;
    let relay = TestRelay::start(config).await;
    let tunnel = relay.tunnel().await;
    for _ in 0..5 {
        relay.post_ok(&tunnel, b"x").await;
    }
    let mut engine = relay.connect(&tunnel, 0).await;
    engine.next().await;
    assert_eq!(engine.delivery().await.seq, 1);
    assert_eq!(engine.delivery().await.seq, 2);
    engine.send(EngineMessage::Ack { seq: 2 }).await;
    assert_eq!(engine.delivery().await.seq, 3);
    assert_eq!(engine.delivery().await.seq, 4);
    engine.send(EngineMessage::Ack { seq: 4 }).await;
    assert_eq!(engine.delivery().await.seq, 5);
    relay.stop().await;
}

#[tokio::test]
async fn concurrent_posts_get_distinct_gapless_seqs() {
    let (_dir, mut config) = config();
    config.limits.rate_burst = 1_000;
    let relay = TestRelay::start(config).await;
    let tunnel = relay.tunnel().await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let http = relay.http.clone();
        let url = relay.url(&format!("/h/{}/webhooks/load", tunnel.tunnel_id));
        tasks.push(tokio::spawn(async move {
            let resp = http
                .post(url)
                .body(format!("{i}"))
                .send()
                .await
                .expect("sent");
            assert_eq!(resp.status(), 202);
            let json: serde_json::Value = resp.json().await.expect("json");
            json["seq"].as_u64().expect("seq")
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.expect("task"));
    }
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=200).collect::<Vec<u64>>(),
        "group commit assigns every webhook its own seq, without gaps"
    );
    relay.stop().await;
}

#[tokio::test]
async fn healthz_answers_without_secrets() {
    let (_dir, config) = config();
    let relay = TestRelay::start(config).await;
    let tunnel = relay.tunnel().await;
    let resp = relay
        .http
        .get(relay.url("/healthz"))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.expect("text");
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(json["status"], "ok");
    assert!(!text.contains(tunnel.secret.expose()));
    relay.stop().await;
}

#[tokio::test]
async fn logs_never_contain_secrets_or_bodies() {
    let (_dir, config) = config();
    let relay = TestRelay::start(config).await;
    let tunnel = relay.tunnel().await;
    let marker = "body-marker-5f1c2a";
    relay.post_ok(&tunnel, marker.as_bytes()).await;
    let mut engine = relay.connect(&tunnel, 0).await;
    engine.next().await;
    engine.delivery().await;
    engine.close().await;
    assert!(
        relay
            .try_connect(tunnel.tunnel_id.as_str(), "wrong-secret-77", None)
            .await
            .is_err()
    );
    relay.stop().await;
    let logs = crate::support::logs();
    let logs =
        String::from_utf8_lossy(&logs.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
    // The test's own engine client is tungstenite's client handshake, which traces the whole
    // request, Authorization included; that is the engine's concern, not the relay's.
    let logs: String = logs
        .lines()
        .filter(|l| !l.contains("tungstenite::handshake::client"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        logs.contains(tunnel.tunnel_id.as_str()),
        "the capture works"
    );
    assert!(
        !logs.contains(tunnel.secret.expose()),
        "the secret never reaches a relay log"
    );
    assert!(
        !logs.contains("wrong-secret-77"),
        "nor a presented wrong one"
    );
    assert!(!logs.contains(marker), "bodies are never logged");
}
