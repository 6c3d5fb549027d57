//! What was answered 202 survives a restart.

use stagehand_protocol::relay::RelayMessage;

use crate::support::{TestRelay, config};

#[tokio::test]
async fn deliveries_survive_a_restart() {
    let (_dir, config) = config();
    let relay = TestRelay::start(config.clone()).await;
    let tunnel = relay.tunnel().await;
    for i in 1..=50u64 {
        assert_eq!(relay.post_ok(&tunnel, format!("#{i}").as_bytes()).await, i);
    }
    relay.stop().await;

    let relay = TestRelay::start(config).await;
    let mut engine = relay.connect(&tunnel, 0).await;
    assert!(matches!(
        engine.next().await,
        RelayMessage::Welcome { head_seq: 50, .. }
    ));
    for i in 1..=50u64 {
        let d = engine.delivery().await;
        assert_eq!(d.seq, i);
        assert_eq!(
            d.body_b64,
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("#{i}"))
        );
    }
    assert_eq!(
        relay.post_ok(&tunnel, b"after").await,
        51,
        "seqs continue after a restart"
    );
    relay.stop().await;
}
