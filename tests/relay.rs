//! Webhooks end to end through the cloud relay: a sender posts to a real `stagehand-relay`
//! (in process on `127.0.0.1:0`), the engine's relay link receives the delivery over a real
//! WebSocket, and the alert reaches a real overlay socket.
//!
//! As in `webhooks.rs`, "nothing else reached the page" is shown without waiting for silence:
//! after what must not arrive, something that must arrive is sent, and the next alert on the
//! socket must be that one.

use std::sync::Arc;

use stagehand_relay::Limits;
use support::relay::{
    FrozenClock, SeenAlerts, TestRelay, connect_page, next_alert_within, relay_status_within,
    stored_seq,
};
use support::tls_front::TlsFront;
use support::{Events, Socket, TestApp, error_code, event_within};

/// How long a relay link may take to (re)connect and deliver: generous, since the machine
/// running the suite may be busy; every wait ends as soon as the awaited message arrives.
const LINK_SECS: u64 = 30;

/// An engine pointed at `relay` (link not started), with one overlay page connected and
/// subscribed to engine events, and its TradingView URL token.
struct Linked {
    app: TestApp,
    page: Socket,
    events: Events,
    token: String,
}

async fn engine_for(relay: &TestRelay) -> Linked {
    let app = TestApp::start_with(relay.engine_options()).await;
    let overlay = app.create_overlay("Main").await;
    let page = connect_page(overlay["signedUrl"].as_str().unwrap()).await;
    let events = app.engine.events().subscribe();
    let token = app.tradingview_token().await;
    Linked {
        app,
        page,
        events,
        token,
    }
}

/// Starts the engine's relay link and waits until it is linked.
async fn link(linked: &mut Linked) -> serde_json::Value {
    linked.app.engine.relay_start();
    relay_status_within(&mut linked.events, "linked", LINK_SECS).await
}

async fn deliveries(app: &TestApp) -> Vec<serde_json::Value> {
    app.get_json("/api/webhooks/deliveries?limit=50").await["deliveries"]
        .as_array()
        .expect("a list of deliveries")
        .clone()
}

#[tokio::test]
async fn an_alert_posted_to_the_relay_reaches_the_overlay() {
    let relay = TestRelay::start().await;
    let mut linked = engine_for(&relay).await;
    let status = link(&mut linked).await;
    assert_eq!(status["tunnelId"], relay.tunnel_id.as_str());
    assert_eq!(status["url"], relay.url.as_str());

    // The URL the streamer is told to paste is the relay's door for this tunnel.
    let overview = linked.app.get_json("/api/webhooks").await;
    let pasted = overview["tradingview"]["relayUrl"].as_str().unwrap();
    assert_eq!(
        pasted,
        relay.hook_url(support::relay::TRADINGVIEW_PATH, ""),
        "{overview}"
    );
    let response = support::relay::post_note(
        &relay.client,
        &format!("{pasted}?token={}", linked.token),
        "BTC crossed 100k via the relay",
        None,
    )
    .await;
    let seq = stored_seq(response, "posted to the advertised URL").await;
    assert_eq!(seq, 1, "the tunnel's first delivery");
    let alert = next_alert_within(&mut linked.page, LINK_SECS).await;
    assert_eq!(alert["message"], "BTC crossed 100k via the relay");
    assert_eq!(alert["kind"], "tradingview");
    let alert_id = alert["id"].as_str().unwrap();
    assert!(alert_id.starts_with("al_wh_"), "{alert_id}");

    let list = deliveries(&linked.app).await;
    assert_eq!(list.len(), 1, "{list:?}");
    let row = &list[0];
    assert_eq!(row["status"], "accepted");
    assert_eq!(row["source"], "tradingview");
    assert_eq!(
        row["via"], "relay",
        "the row says it came through the relay"
    );
    assert_eq!(row["tunnelId"], relay.tunnel_id.as_str());
    assert_eq!(row["seq"], 1);
    assert_eq!(
        row["alertId"], alert_id,
        "the page got this delivery's alert"
    );
    assert!(
        !serde_json::Value::Array(list)
            .to_string()
            .contains(&linked.token),
        "the URL token that travelled through the relay is never listed"
    );
}

#[tokio::test]
async fn a_wrong_token_through_the_relay_is_stored_then_refused_by_the_engine() {
    let relay = TestRelay::start().await;
    let mut linked = engine_for(&relay).await;
    link(&mut linked).await;

    // The relay does not know the engine's credentials: it stores and forwards anything.
    let forged = relay.post_note("guessed", "forged alert", None).await;
    assert_eq!(stored_seq(forged, "a wrong token").await, 1);
    relay
        .post_note_accepted(&linked.token, "the real alert", None)
        .await;
    let alert = next_alert_within(&mut linked.page, LINK_SECS).await;
    assert_eq!(
        alert["message"], "the real alert",
        "the forged alert never reached the page: the next alert is the good one"
    );

    let list = deliveries(&linked.app).await;
    assert_eq!(list.len(), 2, "{list:?}");
    let refused = &list[1];
    assert_eq!(refused["status"], "refused");
    assert_eq!(refused["via"], "relay");
    assert_eq!(refused["seq"], 1);
    assert_eq!(refused["reasonCode"], "invalid_token");
    assert!(refused["reason"].as_str().is_some_and(|r| !r.is_empty()));
    assert!(refused["alertId"].is_null(), "a refusal shows nothing");
    assert_eq!(list[0]["status"], "accepted");
    assert_eq!(list[0]["alertId"], alert["id"]);
}

#[tokio::test]
async fn a_repeated_idempotency_key_through_the_relay_plays_once() {
    let relay = TestRelay::start().await;
    let mut linked = engine_for(&relay).await;
    link(&mut linked).await;

    let first = relay
        .post_note_accepted(&linked.token, "first", Some("alert-1"))
        .await;
    let again = relay
        .post_note_accepted(
            &linked.token,
            "first, resent by the sender",
            Some("alert-1"),
        )
        .await;
    assert_ne!(
        first, again,
        "the relay stores both: deduplication is the engine's job"
    );
    relay
        .post_note_accepted(&linked.token, "second", Some("alert-2"))
        .await;

    assert_eq!(
        next_alert_within(&mut linked.page, LINK_SECS).await["message"],
        "first"
    );
    assert_eq!(
        next_alert_within(&mut linked.page, LINK_SECS).await["message"],
        "second",
        "the resend pushed nothing: after the first alert comes the next distinct one"
    );
    let list = deliveries(&linked.app).await;
    let seqs: Vec<i64> = list.iter().map(|d| d["seq"].as_i64().unwrap()).collect();
    assert_eq!(
        seqs,
        [3, 1],
        "the duplicate is not recorded again; the others are, newest first"
    );
}

#[tokio::test]
async fn webhooks_stored_while_the_engine_was_away_arrive_once_it_links() {
    let relay = TestRelay::start().await;
    let mut linked = engine_for(&relay).await;
    let notes: Vec<String> = (1..=10).map(|i| format!("while away {i:02}")).collect();
    for note in &notes {
        relay.post_note_accepted(&linked.token, note, None).await;
    }
    assert_eq!(
        relay.relay().connected_links(),
        0,
        "the engine has not linked yet"
    );

    let status = link(&mut linked).await;
    assert_eq!(status["state"], "linked");
    for note in &notes {
        let alert = next_alert_within(&mut linked.page, LINK_SECS).await;
        assert_eq!(
            &alert["message"], note,
            "everything stored while away arrives, in the order it was sent"
        );
    }
    // Sent after linking: also delivered, and the earlier ones are not replayed before it.
    relay
        .post_note_accepted(&linked.token, "after linking", None)
        .await;
    assert_eq!(
        next_alert_within(&mut linked.page, LINK_SECS).await["message"],
        "after linking"
    );
    assert_eq!(deliveries(&linked.app).await.len(), 11);
}

#[tokio::test]
async fn a_relay_restart_mid_stream_loses_and_repeats_nothing() {
    const N: usize = 50;
    let mut relay = TestRelay::start_unthrottled().await;
    let mut linked = engine_for(&relay).await;
    link(&mut linked).await;

    let notes: Vec<String> = (0..2 * N).map(|i| format!("stream {i:03}")).collect();
    post_all(&relay, &linked.token, &notes[..N]).await;
    // Restart at once: the engine is still receiving and acknowledging the first batch.
    relay.restart().await;
    post_all(&relay, &linked.token, &notes[N..]).await;

    let mut seen = SeenAlerts::default();
    seen.collect_until(&mut linked.page, 2 * N, 60).await;
    seen.assert_one_alert_per_note(&notes);
    assert_eq!(
        seen.repeats(),
        0,
        "the engine deduplicates resent deliveries, so each alert is pushed once"
    );
}

#[tokio::test]
async fn deliveries_evicted_while_the_engine_was_away_are_reported() {
    let relay = TestRelay::start_with(Limits {
        max_buffered: 5,
        ..Limits::default()
    })
    .await;
    let mut linked = engine_for(&relay).await;
    let notes: Vec<String> = (1..=8).map(|i| format!("buffered {i}")).collect();
    for note in &notes {
        relay.post_note_accepted(&linked.token, note, None).await;
    }

    linked.app.engine.relay_start();
    let evicted = event_within(&mut linked.events, "relay.evicted", LINK_SECS).await;
    assert_eq!(
        evicted,
        serde_json::json!({"count": 3, "firstSeq": 1, "lastSeq": 3}),
        "the relay kept 5 and dropped the 3 oldest"
    );
    for note in &notes[3..] {
        let alert = next_alert_within(&mut linked.page, LINK_SECS).await;
        assert_eq!(&alert["message"], note, "the 5 kept are delivered in order");
    }
    let status = linked.app.get_json("/api/relay/status").await;
    assert_eq!(status["state"], "linked", "{status}");
    assert_eq!(
        status["evicted"],
        serde_json::json!({"count": 3, "firstSeq": 1, "lastSeq": 3}),
        "the streamer can see what was lost: {status}"
    );
    assert_eq!(deliveries(&linked.app).await.len(), 5);
}

#[tokio::test]
async fn oversized_and_over_rate_webhooks_stop_at_the_relay() {
    // The relay's clock stands still, so the bucket never refills during the test.
    let relay = TestRelay::start_with_clock(
        Limits {
            rate_per_sec: 1,
            rate_burst: 3,
            ..Limits::default()
        },
        Arc::new(FrozenClock(1_800_000_000_000)),
    )
    .await;
    let mut linked = engine_for(&relay).await;
    link(&mut linked).await;

    let big = "x".repeat(300 * 1024);
    let oversized = relay.post_note(&linked.token, &big, None).await;
    assert_eq!(
        error_code(oversized).await,
        (413, "body_too_large".into()),
        "over 256 KiB is refused at the relay's door"
    );
    for i in 1..=3 {
        let seq = relay
            .post_note_accepted(&linked.token, &format!("within the burst {i}"), None)
            .await;
        assert_eq!(seq, i, "the refused body took no sequence number");
    }
    let limited = relay.post_note(&linked.token, "over the rate", None).await;
    assert!(
        limited.headers().contains_key("retry-after"),
        "429 says when to retry"
    );
    assert_eq!(error_code(limited).await, (429, "rate_limited".into()));

    for i in 1..=3 {
        let alert = next_alert_within(&mut linked.page, LINK_SECS).await;
        assert_eq!(
            alert["message"],
            format!("within the burst {i}"),
            "neither the oversized nor the rate-limited webhook reached the page"
        );
    }
    let list = deliveries(&linked.app).await;
    assert_eq!(
        list.len(),
        3,
        "the engine never saw the refused ones: {list:?}"
    );
}

/// Posts every note through the relay at once (16 senders), asserting each 202.
async fn post_all(relay: &TestRelay, token: &str, notes: &[String]) {
    let hook = relay.hook_url(support::relay::TRADINGVIEW_PATH, &format!("token={token}"));
    let mut senders = tokio::task::JoinSet::new();
    for chunk in notes.chunks(notes.len().div_ceil(16).max(1)) {
        let (client, hook, chunk) = (relay.client.clone(), hook.clone(), chunk.to_vec());
        senders.spawn(async move {
            for note in chunk {
                let response = support::relay::post_note(&client, &hook, &note, Some(&note)).await;
                stored_seq(response, &note).await;
            }
        });
    }
    while let Some(done) = senders.join_next().await {
        done.expect("a sender does not panic");
    }
}

/// An engine whose relay URL is the TLS front's `https://` address, trusting `ca_file` when
/// given.
fn engine_options_via(
    relay: &TestRelay,
    front: &TlsFront,
    ca_file: Option<&std::path::Path>,
) -> support::Options {
    let mut options = relay.engine_options();
    options
        .env
        .retain(|(key, _)| key.as_str() != "STAGEHAND_RELAY_URL");
    options
        .env
        .push(("STAGEHAND_RELAY_URL".into(), front.url.clone()));
    if let Some(ca) = ca_file {
        options
            .env
            .push(("STAGEHAND_RELAY_CA_FILE".into(), ca.display().to_string()));
    }
    options
}

#[tokio::test]
async fn the_link_speaks_tls_to_an_https_relay() {
    let relay = TestRelay::start().await;
    let front = TlsFront::start(relay.addr).await;
    let app = TestApp::start_with(engine_options_via(&relay, &front, Some(&front.ca_file))).await;
    let overlay = app.create_overlay("Main").await;
    let page = connect_page(overlay["signedUrl"].as_str().unwrap()).await;
    let events = app.engine.events().subscribe();
    let token = app.tradingview_token().await;
    let mut linked = Linked {
        app,
        page,
        events,
        token,
    };
    let status = link(&mut linked).await;
    assert_eq!(status["url"], front.url.as_str());
    assert_eq!(
        relay.relay().connected_links(),
        1,
        "the relay has the link, through the TLS front"
    );

    relay
        .post_note_accepted(&linked.token, "delivered over wss", None)
        .await;
    let alert = next_alert_within(&mut linked.page, LINK_SECS).await;
    assert_eq!(alert["message"], "delivered over wss");
}

#[tokio::test]
async fn an_https_relay_with_an_unknown_certificate_is_not_linked() {
    let relay = TestRelay::start().await;
    let front = TlsFront::start(relay.addr).await;
    // The front's CA is not among the public roots, and no ca_file says to trust it.
    let app = TestApp::start_with(engine_options_via(&relay, &front, None)).await;
    let mut events = app.engine.events().subscribe();
    app.engine.relay_start();
    let status = relay_status_within(&mut events, "lost", LINK_SECS).await;
    let error = status["lastError"].as_str().unwrap_or_default();
    assert!(
        error.contains("certificate") || error.contains("Certificate"),
        "the status says the certificate was the problem: {error}"
    );
    assert_eq!(
        relay.relay().connected_links(),
        0,
        "a link that failed TLS verification never reaches the relay"
    );
    let overview = app.get_json("/api/relay/status").await;
    assert_eq!(overview["state"], "lost", "{overview}");
}

#[tokio::test]
async fn an_unreadable_relay_ca_file_is_reported() {
    let relay = TestRelay::start().await;
    let front = TlsFront::start(relay.addr).await;
    let missing = front.ca_file.with_file_name("no-such-ca.pem");
    let app = TestApp::start_with(engine_options_via(&relay, &front, Some(&missing))).await;
    let mut events = app.engine.events().subscribe();
    app.engine.relay_start();
    let status = relay_status_within(&mut events, "lost", LINK_SECS).await;
    let error = status["lastError"].as_str().unwrap_or_default();
    assert!(
        error.contains("relay.ca_file") && error.contains("no-such-ca.pem"),
        "the status names the setting and the file: {error}"
    );
}

/// A relay whose clock runs an hour behind the engine's: everything it stored looks, to the
/// engine, like it waited an hour for the desktop to come back.
async fn relay_an_hour_ago() -> TestRelay {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis();
    let an_hour_ago = i64::try_from(now).expect("fits") - 3_600_000;
    TestRelay::start_with_clock(Limits::default(), Arc::new(FrozenClock(an_hour_ago))).await
}

/// Waits until the engine has handled (committed and, if it was to be shown, pushed) the
/// relay's delivery `seq`.
async fn handled(app: &TestApp, seq: u64) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(LINK_SECS);
    while app.engine.relay_status().last_seq < seq {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the engine did not handle relay delivery {seq} within {LINK_SECS} s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_webhook_relayed_an_hour_late_is_listed_as_stale_and_not_played() {
    let relay = relay_an_hour_ago().await;
    let mut linked = engine_for(&relay).await;
    relay
        .post_note_accepted(&linked.token, "last night's alert", None)
        .await;
    link(&mut linked).await;
    handled(&linked.app, 1).await;

    let list = deliveries(&linked.app).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["status"], "accepted", "it was a valid webhook");
    assert_eq!(
        list[0]["stale"], true,
        "an hour late is past stale_after_seconds"
    );
    assert_eq!(
        list[0]["announced"], true,
        "written as announced, so a restart does not play it either"
    );

    // Delivery 1 is fully handled, so had it been played it would be on the page's socket
    // already: the next alert there must be this one.
    let sent = linked
        .app
        .post_as_streamer("/api/alerts")
        .json(&serde_json::json!({"kind": "test", "title": "now", "message": "a fresh alert"}))
        .send()
        .await
        .expect("alert sent");
    assert!(sent.status().is_success(), "{}", sent.status());
    let alert = next_alert_within(&mut linked.page, LINK_SECS).await;
    assert_eq!(
        alert["message"], "a fresh alert",
        "the stale webhook never reached the overlay"
    );

    // And it stays unplayed across a restart.
    let Linked { app, .. } = linked;
    let app = app.restart(relay.engine_options()).await;
    let list = deliveries(&app).await;
    assert_eq!(list[0]["stale"], true);
    assert_eq!(list[0]["announced"], true);
}

#[tokio::test]
async fn play_stale_plays_a_late_webhook() {
    let relay = relay_an_hour_ago().await;
    let mut options = relay.engine_options();
    options
        .env
        .push(("STAGEHAND_WEBHOOKS_PLAY_STALE".into(), "true".into()));
    let app = TestApp::start_with(options).await;
    let overlay = app.create_overlay("Main").await;
    let page = connect_page(overlay["signedUrl"].as_str().unwrap()).await;
    let events = app.engine.events().subscribe();
    let token = app.tradingview_token().await;
    let mut linked = Linked {
        app,
        page,
        events,
        token,
    };
    relay
        .post_note_accepted(&linked.token, "late but wanted", None)
        .await;
    link(&mut linked).await;
    let alert = next_alert_within(&mut linked.page, LINK_SECS).await;
    assert_eq!(alert["message"], "late but wanted");
    let list = deliveries(&linked.app).await;
    assert_eq!(list[0]["stale"], true, "still listed as late");
}
