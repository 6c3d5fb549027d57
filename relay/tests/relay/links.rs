//! One link per tunnel, and eviction reports.

use stagehand_protocol::relay::{CLOSE_REPLACED, EngineMessage, RelayMessage};

use crate::support::{TestRelay, config};

#[tokio::test]
async fn a_newer_connection_replaces_the_older() {
    let (_dir, config) = config();
    let relay = TestRelay::start(config).await;
    let tunnel = relay.tunnel().await;
    let mut older = relay.connect(&tunnel, 0).await;
    assert!(matches!(older.next().await, RelayMessage::Welcome { .. }));
    let mut newer = relay.connect(&tunnel, 0).await;
    assert_eq!(older.closed_with().await, CLOSE_REPLACED);
    assert!(matches!(newer.next().await, RelayMessage::Welcome { .. }));
    relay.post_ok(&tunnel, b"x").await;
    assert_eq!(
        newer.delivery().await.seq,
        1,
        "the newer link gets new deliveries"
    );
    relay.stop().await;
}

#[tokio::test]
async fn evictions_past_the_bound_are_reported_on_connect_and_while_connected() {
    let (_dir, mut config) = config();
    config.limits.max_buffered = 3;
    let relay = TestRelay::start(config).await;
    let tunnel = relay.tunnel().await;
    for _ in 0..5 {
        relay.post_ok(&tunnel, b"x").await;
    }
    let mut engine = relay.connect(&tunnel, 0).await;
    assert!(matches!(
        engine.next().await,
        RelayMessage::Welcome { head_seq: 5, .. }
    ));
    assert_eq!(
        engine.next().await,
        RelayMessage::Evicted {
            count: 2,
            first_seq: 1,
            last_seq: 2
        },
        "5 posted, 3 kept: the two oldest were dropped"
    );
    for i in 3..=5 {
        assert_eq!(engine.delivery().await.seq, i);
    }

    relay.post_ok(&tunnel, b"x").await;
    // The link may read the new delivery before it handles the eviction signal, so the
    // report and the delivery come in either order; both come at once.
    let (mut report, mut delivered) = (None, None);
    for _ in 0..2 {
        match engine.next().await {
            RelayMessage::Delivery(d) => delivered = Some(d.seq),
            other => report = Some(other),
        }
    }
    assert_eq!(
        report,
        Some(RelayMessage::Evicted {
            count: 1,
            first_seq: 3,
            last_seq: 3
        }),
        "reported right away, and only what is new since the last report"
    );
    assert_eq!(delivered, Some(6));

    engine
        .send(EngineMessage::EvictedSeen { last_seq: 2 })
        .await;
    engine.close().await;
    let mut engine = relay.connect(&tunnel, 0).await;
    engine.next().await;
    assert_eq!(
        engine.next().await,
        RelayMessage::Evicted {
            count: 1,
            first_seq: 3,
            last_seq: 3
        },
        "a report the engine has not seen is repeated on connect"
    );
    engine
        .send(EngineMessage::EvictedSeen { last_seq: 3 })
        .await;
    engine.close().await;
    let mut engine = relay.connect(&tunnel, 0).await;
    engine.next().await;
    assert_eq!(
        engine.delivery().await.seq,
        4,
        "seen reports are forgotten; the buffer follows"
    );
    relay.stop().await;
}
