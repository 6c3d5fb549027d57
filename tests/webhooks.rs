//! Webhooks: TradingView and custom (Standard Webhooks) endpoints through the real server to a
//! real overlay socket, relay deliveries through the engine operation, and restarts.
//!
//! "Nothing else was pushed" is shown without waiting for silence: after the request that
//! must not reach the overlay, a good one is sent, and the next message on the socket must be
//! the good one.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use stagehand_engine::clock::ManualClock;
use stagehand_engine::webhooks::{RefusalCode, WebhookOutcome, WebhookRequest, WebhookVia};
use support::{Options, Socket, TestApp, connect_overlay, error_code, logs, next_json};

const HMAC_SECRET: &str = "tv-hmac-secret-for-tests";

fn hmac_b64(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    for part in parts {
        mac.update(part);
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

fn tv_signature(body: &[u8]) -> String {
    hmac_b64(HMAC_SECRET.as_bytes(), &[body])
}

fn standard_signature(secret: &str, id: &str, ts: i64, body: &[u8]) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let ts = ts.to_string();
    format!(
        "v1,{}",
        hmac_b64(&key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body])
    )
}

async fn with_hmac() -> TestApp {
    TestApp::start_with(Options::default().env("STAGEHAND_TRADINGVIEW_HMAC_SECRET", HMAC_SECRET))
        .await
}

/// An overlay and one connected page, past its first `scene.full`.
async fn overlay_page(app: &TestApp) -> (serde_json::Value, Socket) {
    let overlay = app.create_overlay("Main").await;
    let mut page = connect_overlay(overlay["signedUrl"].as_str().unwrap()).await;
    assert_eq!(next_json(&mut page).await["type"], "scene.full");
    (overlay, page)
}

async fn post_tv(app: &TestApp, content_type: &str, body: &str, signed: bool) -> reqwest::Response {
    let mut request = app
        .post("/webhooks/tradingview")
        .header("content-type", content_type)
        .body(body.to_owned());
    if signed {
        request = request.header("x-signature", tv_signature(body.as_bytes()));
    }
    request.send().await.unwrap()
}

async fn accepted(response: reqwest::Response) -> serde_json::Value {
    assert_eq!(response.status(), 200, "the webhook is accepted");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "accepted", "{body}");
    body
}

async fn deliveries(app: &TestApp) -> serde_json::Value {
    app.get_json("/api/webhooks/deliveries?limit=50").await
}

async fn url_token(app: &TestApp) -> String {
    let secrets = app.get_json("/api/webhooks/tradingview/secrets").await;
    secrets["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_signed_tradingview_alert_shows_the_mapped_alert_and_a_chart_point() {
    let app = with_hmac().await;
    let (_, mut page) = overlay_page(&app).await;
    let mapped = app
        .put_as_streamer("/api/webhooks/tradingview")
        .json(&serde_json::json!({
            "title": "{side} {symbol} @ {price}",
            "message": "{note} ({timeframe})"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(mapped.status(), 200);

    let mut events = app.engine.events().subscribe();
    let body = r#"{"symbol":"BINANCE:BTCUSDT","side":"buy","price":"42000.5","timeframe":"5","note":"breakout","extras":{"rsi":71}}"#;
    let sent = accepted(post_tv(&app, "application/json", body, true).await).await;
    assert_eq!(
        support::event(&mut events, "webhook.deliveries").await["count"],
        1,
        "the panel's lists hear of the new delivery"
    );
    let alert = next_json(&mut page).await;
    assert_eq!(alert["type"], "alert.show");
    assert_eq!(
        alert["id"], sent["alertId"],
        "the page gets the delivery's alert id"
    );
    assert!(alert["id"].as_str().unwrap().starts_with("al_wh_"));
    assert_eq!(alert["title"], "BUY BINANCE:BTCUSDT @ 42000.5");
    assert_eq!(alert["message"], "breakout (5)");
    assert_eq!(alert["kind"], "tradingview");
    let chart = next_json(&mut page).await;
    assert_eq!(chart["type"], "chart.update");
    assert_eq!(chart["symbol"], "BINANCE:BTCUSDT");
    assert_eq!(
        chart["points"][0]["value"], 42000.5,
        "the price is the point"
    );

    // TradingView sends JSON as text/plain when the alert message is not declared as JSON.
    let plain = r#"{"symbol":"NASDAQ:AAPL","side":"sell","price":190}"#;
    let sent = accepted(post_tv(&app, "text/plain; charset=utf-8", plain, true).await).await;
    let alert = next_json(&mut page).await;
    assert_eq!(alert["id"], sent["alertId"]);
    assert_eq!(alert["title"], "SELL NASDAQ:AAPL @ 190");
    assert_eq!(next_json(&mut page).await["points"][0]["value"], 190.0);
    assert_eq!(
        app.engine.metrics().value(
            "stagehand_webhooks_total",
            &[("source", "tradingview"), ("status", "accepted")]
        ),
        Some(2.0)
    );
}

#[tokio::test]
async fn a_plain_text_note_is_accepted_with_the_url_token_which_is_never_logged() {
    let app = TestApp::start().await;
    let overview = app.get_json("/api/webhooks").await;
    assert_eq!(
        overview["tradingview"]["auth"]["token"], true,
        "a fresh install has a URL token"
    );
    assert_eq!(overview["tradingview"]["auth"]["hmac"], false);
    let token = url_token(&app).await;
    assert!(token.len() >= 32, "the token is unguessable: {token}");
    assert!(
        !overview.to_string().contains(&token),
        "the overview never shows the token"
    );
    let (_, mut page) = overlay_page(&app).await;

    let response = app
        .post(&format!("/webhooks/tradingview?token={token}"))
        .header("content-type", "text/plain")
        .body("BTC crossed 100k")
        .send()
        .await
        .unwrap();
    let sent = accepted(response).await;
    let alert = next_json(&mut page).await;
    assert_eq!(alert["id"], sent["alertId"]);
    assert_eq!(
        alert["title"], "TradingView alert",
        "no fields: the default title"
    );
    assert_eq!(alert["message"], "BTC crossed 100k", "the text is the note");

    let wrong = app
        .post("/webhooks/tradingview?token=guessed")
        .header("content-type", "text/plain")
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(wrong).await, (401, "invalid_token".into()));
    let listed = deliveries(&app).await.to_string();
    assert!(!listed.contains(&token), "deliveries never hold the token");
    assert!(
        !logs().contents().contains(&token),
        "the token in the query string is never logged"
    );
}

#[tokio::test]
async fn a_bad_signature_is_refused_recorded_and_never_shown() {
    let app = with_hmac().await;
    let (_, mut page) = overlay_page(&app).await;
    let body = r#"{"symbol":"BTCUSD","side":"buy"}"#;
    let forged = app
        .post("/webhooks/tradingview")
        .header("content-type", "application/json")
        .header("x-signature", tv_signature(b"{\"other\":1}"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(forged).await, (401, "invalid_signature".into()));

    let good = accepted(post_tv(&app, "application/json", body, true).await).await;
    assert_eq!(
        next_json(&mut page).await["id"],
        good["alertId"],
        "the forged alert never reached the page: the next message is the good one"
    );
    let list = deliveries(&app).await;
    let refused = &list["deliveries"][1];
    assert_eq!(refused["status"], "refused");
    assert_eq!(refused["source"], "tradingview");
    assert_eq!(refused["via"], "local");
    assert_eq!(refused["reasonCode"], "invalid_signature");
    assert!(refused["reason"].as_str().is_some_and(|r| !r.is_empty()));
    assert!(refused["alertId"].is_null());
    assert_eq!(list["deliveries"][0]["status"], "accepted");
    assert!(
        !list.to_string().contains(HMAC_SECRET),
        "deliveries never hold the secret"
    );
}

#[tokio::test]
async fn webhooks_without_credentials_or_from_web_pages_are_refused() {
    let app = with_hmac().await;
    let body = r#"{"symbol":"BTCUSD","side":"buy"}"#;
    let bare = post_tv(&app, "application/json", body, false).await;
    assert_eq!(
        error_code(bare).await,
        (401, "webhook_auth_required".into())
    );

    // A page of ours (own Origin) reaches the engine, which refuses any webhook with an Origin.
    let own = app
        .post("/webhooks/tradingview")
        .header("content-type", "application/json")
        .header("origin", &app.url)
        .header("x-signature", tv_signature(body.as_bytes()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(own).await, (403, "origin_not_allowed".into()));
    let foreign = app
        .post("/webhooks/tradingview")
        .header("content-type", "application/json")
        .header("origin", "https://evil.example")
        .header("x-signature", tv_signature(body.as_bytes()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(foreign).await,
        (403, "origin_not_allowed".into())
    );

    let codes: Vec<String> = deliveries(&app).await["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["reasonCode"].as_str().unwrap_or("-").to_owned())
        .collect();
    assert_eq!(
        codes,
        ["origin_not_allowed", "webhook_auth_required"],
        "both reached the engine and were recorded (the foreign Origin stops at the guard)"
    );
}

#[tokio::test]
async fn the_passphrase_authenticates_and_a_wrong_one_is_refused() {
    let app = TestApp::start().await;
    let (_, mut page) = overlay_page(&app).await;
    let body = serde_json::json!({"symbol": "ETHUSD", "side": "long", "passphrase": "guess"});
    let unset = post_tv(&app, "application/json", &body.to_string(), false).await;
    assert_eq!(
        error_code(unset).await,
        (401, "invalid_passphrase".into()),
        "no passphrase is configured yet"
    );
    let rotated: serde_json::Value = app
        .post_as_streamer("/api/webhooks/tradingview/rotate")
        .json(&serde_json::json!({"which": "passphrase"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let passphrase = rotated["value"].as_str().unwrap();
    let good = serde_json::json!({"symbol": "ETHUSD", "side": "long", "passphrase": passphrase});
    let sent = accepted(post_tv(&app, "application/json", &good.to_string(), false).await).await;
    let alert = next_json(&mut page).await;
    assert_eq!(alert["id"], sent["alertId"]);
    assert_eq!(alert["title"], "ETHUSD LONG");
    let wrong = post_tv(&app, "application/json", &body.to_string(), false).await;
    assert_eq!(error_code(wrong).await, (401, "invalid_passphrase".into()));

    let audit = app.get_json("/api/audit?limit=20").await.to_string();
    assert!(audit.contains("webhook.tradingview.rotate"), "{audit}");
    assert!(
        !audit.contains(passphrase),
        "the audit log never holds the value"
    );
}

#[tokio::test]
async fn invalid_fields_are_400_with_a_stable_code_and_the_field() {
    let app = with_hmac().await;
    for (body, field) in [
        (r#"{"symbol":"BTCUSD","side":"moon"}"#, "side"),
        (r#"{"symbol":"BTCUSD","price":"lots"}"#, "price"),
        (r#"{"symbol":"<script>"}"#, "symbol"),
        (r#"{"extras":[1]}"#, "extras"),
        (r#"{"colour":"red"}"#, "colour"),
    ] {
        let response = post_tv(&app, "application/json", body, true).await;
        assert_eq!(response.status(), 400, "{body}");
        let error: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], "invalid_webhook", "{body}");
        assert_eq!(error["error"]["details"]["field"], field, "{body}");
    }
    let not_json = post_tv(&app, "application/json", "buy BTC", true).await;
    assert_eq!(error_code(not_json).await, (400, "invalid_json".into()));
    let form = post_tv(&app, "application/x-www-form-urlencoded", "a=b", true).await;
    assert_eq!(
        error_code(form).await,
        (415, "unsupported_media_type".into())
    );
}

#[tokio::test]
async fn a_repeated_idempotency_key_is_a_duplicate_shown_once() {
    let app = with_hmac().await;
    let (_, mut page) = overlay_page(&app).await;
    let send = |body: &'static str, key: &'static str| {
        app.post("/webhooks/tradingview")
            .header("content-type", "application/json")
            .header("x-signature", tv_signature(body.as_bytes()))
            .header("x-idempotency-key", key)
            .body(body)
            .send()
    };
    let first = accepted(
        send(r#"{"symbol":"BTCUSD","side":"buy"}"#, "alert-1")
            .await
            .unwrap(),
    )
    .await;
    let again = send(r#"{"symbol":"BTCUSD","side":"buy"}"#, "alert-1")
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(
        again.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"status": "duplicate"})
    );
    let next = accepted(
        send(r#"{"symbol":"BTCUSD","side":"sell"}"#, "alert-2")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(next_json(&mut page).await["id"], first["alertId"]);
    assert_eq!(
        next_json(&mut page).await["id"],
        next["alertId"],
        "the duplicate pushed nothing: after the first alert comes the third"
    );
    assert_eq!(
        deliveries(&app).await["deliveries"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "a duplicate is not recorded again"
    );
}

#[tokio::test]
async fn an_oversized_body_is_413_in_json() {
    let app = with_hmac().await;
    let big = format!(r#"{{"note":"{}"}}"#, "x".repeat(300 * 1024));
    let response = post_tv(&app, "application/json", &big, true).await;
    assert_eq!(
        error_code(response).await,
        (413, "payload_too_large".into())
    );
}

#[tokio::test]
async fn custom_endpoints_verify_standard_webhooks_signatures() {
    let start = 1_800_000_000_000;
    let clock = ManualClock::new(start);
    let app = TestApp::start_with(Options {
        clock: Arc::new(clock.clone()),
        ..Options::default()
    })
    .await;
    let (_, mut page) = overlay_page(&app).await;
    let created = app
        .post_as_streamer("/api/webhooks/custom")
        .json(&serde_json::json!({
            "name": "kofi", "title": "{{from}} tipped {{amount}}", "message": "{{message}}"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert!(
        created["url"]
            .as_str()
            .unwrap()
            .ends_with("/webhooks/custom/kofi")
    );

    let now_s = start / 1000;
    let body = br#"{"from":"Ana","amount":5,"message":"keep going"}"#;
    let send = |id: &str, ts: i64, body: &[u8], signature: String| {
        app.post("/webhooks/custom/kofi")
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(body.to_vec())
            .send()
    };
    let sent = accepted(
        send(
            "msg_1",
            now_s,
            body,
            standard_signature(&secret, "msg_1", now_s, body),
        )
        .await
        .unwrap(),
    )
    .await;
    let alert = next_json(&mut page).await;
    assert_eq!(alert["id"], sent["alertId"]);
    assert_eq!(alert["title"], "Ana tipped 5");
    assert_eq!(alert["message"], "keep going");

    let replay = send(
        "msg_1",
        now_s,
        body,
        standard_signature(&secret, "msg_1", now_s, body),
    )
    .await
    .unwrap();
    assert_eq!(
        replay.json::<serde_json::Value>().await.unwrap()["status"],
        "duplicate",
        "webhook-id deduplicates"
    );
    let tampered = send(
        "msg_2",
        now_s,
        br#"{"from":"Eve","amount":5000}"#,
        standard_signature(&secret, "msg_2", now_s, body),
    )
    .await
    .unwrap();
    assert_eq!(
        error_code(tampered).await,
        (401, "invalid_signature".into())
    );
    let other_secret = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let wrong_key = send(
        "msg_3",
        now_s,
        body,
        standard_signature(other_secret, "msg_3", now_s, body),
    )
    .await
    .unwrap();
    assert_eq!(
        error_code(wrong_key).await,
        (401, "invalid_signature".into())
    );
    let old = now_s - 301;
    let stale = send(
        "msg_4",
        old,
        body,
        standard_signature(&secret, "msg_4", old, body),
    )
    .await
    .unwrap();
    assert_eq!(error_code(stale).await, (401, "stale_timestamp".into()));
    // The engine's clock decides: five minutes on, a signature made "now" is stale too.
    clock.advance(Duration::from_secs(301));
    let late = send(
        "msg_5",
        now_s,
        body,
        standard_signature(&secret, "msg_5", now_s, body),
    )
    .await
    .unwrap();
    assert_eq!(error_code(late).await, (401, "stale_timestamp".into()));
    let unknown = app
        .post("/webhooks/custom/nope")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(unknown).await, (404, "unknown_webhook".into()));

    let later_s = now_s + 301;
    let rotated: serde_json::Value = app
        .post_as_streamer("/api/webhooks/custom/kofi/rotate")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    let old_key = send(
        "msg_6",
        later_s,
        body,
        standard_signature(&secret, "msg_6", later_s, body),
    )
    .await
    .unwrap();
    assert_eq!(
        error_code(old_key).await,
        (401, "invalid_signature".into()),
        "the rotated-out secret stops working"
    );
    let sent = accepted(
        send(
            "msg_7",
            later_s,
            body,
            standard_signature(&new_secret, "msg_7", later_s, body),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        next_json(&mut page).await["id"],
        sent["alertId"],
        "nothing refused reached the page in between"
    );

    let listed = deliveries(&app).await.to_string();
    for s in [&secret, &new_secret] {
        let key = s.strip_prefix("whsec_").unwrap();
        assert!(!listed.contains(key), "deliveries never hold a secret");
    }
    let overview = app.get_json("/api/webhooks").await.to_string();
    assert!(overview.contains("/webhooks/custom/kofi") && !overview.contains(&new_secret));
    let deleted = app
        .client
        .delete(app.at("/api/webhooks/custom/kofi"))
        .header("x-streamer-token", &app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let gone = send(
        "msg_8",
        later_s,
        body,
        standard_signature(&new_secret, "msg_8", later_s, body),
    )
    .await
    .unwrap();
    assert_eq!(error_code(gone).await, (404, "unknown_webhook".into()));
}

/// Now, as the relay's clock would have it when it received a delivery just now.
fn app_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn relay(path: &str, query: &str, seq: u64, body: &str) -> WebhookRequest {
    WebhookRequest {
        path: path.into(),
        query: query.into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.as_bytes().to_vec(),
        remote_addr: Some("203.0.113.7".into()),
        via: WebhookVia::Relay {
            tunnel_id: "tun_1".into(),
            seq,
            delivery_id: format!("tun_1-{seq}"),
            received_at_ms: app_now_ms(),
        },
    }
}

#[tokio::test]
async fn relay_deliveries_advance_the_cursor_once_refused_ones_included() {
    let app = TestApp::start().await;
    let (_, mut page) = overlay_page(&app).await;
    let token = url_token(&app).await;
    let query = format!("token={token}");
    assert_eq!(app.engine.relay_last_seq("tun_1").await.unwrap(), 0);
    let mut alert_ids = Vec::new();
    for seq in 1..=3 {
        let body = format!(r#"{{"symbol":"BTCUSD","note":"relay {seq}"}}"#);
        match app
            .engine
            .webhook_receive(relay("webhooks/tradingview", &query, seq, &body))
            .await
            .unwrap()
        {
            WebhookOutcome::Accepted { alert_id, .. } => alert_ids.push(alert_id),
            other => panic!("seq {seq} should be accepted: {other:?}"),
        }
        assert_eq!(app.engine.relay_last_seq("tun_1").await.unwrap(), seq);
    }
    for id in &alert_ids {
        assert_eq!(&next_json(&mut page).await["id"], id);
    }
    let resent = app
        .engine
        .webhook_receive(relay("webhooks/tradingview", &query, 2, "{}"))
        .await
        .unwrap();
    assert_eq!(
        resent,
        WebhookOutcome::Duplicate,
        "seq 2 is committed already"
    );
    assert_eq!(app.engine.relay_last_seq("tun_1").await.unwrap(), 3);

    let refused = app
        .engine
        .webhook_receive(relay("webhooks/tradingview", "token=wrong", 4, "{}"))
        .await
        .unwrap();
    match refused {
        WebhookOutcome::Refused { refusal, .. } => {
            assert_eq!(refusal.code, RefusalCode::InvalidToken);
        }
        other => panic!("a wrong token is refused: {other:?}"),
    }
    assert_eq!(
        app.engine.relay_last_seq("tun_1").await.unwrap(),
        4,
        "a refused delivery is committed too, so the relay can be acknowledged"
    );
    let unknown = app
        .engine
        .webhook_receive(relay("webhooks/nowhere", "", 5, "{}"))
        .await
        .unwrap();
    assert!(matches!(unknown, WebhookOutcome::Refused { .. }));
    assert_eq!(app.engine.relay_last_seq("tun_1").await.unwrap(), 5);

    let WebhookOutcome::Accepted { alert_id, .. } = app
        .engine
        .webhook_receive(relay(
            "webhooks/tradingview",
            &query,
            6,
            r#"{"note":"six"}"#,
        ))
        .await
        .unwrap()
    else {
        panic!("seq 6 is accepted");
    };
    assert_eq!(
        next_json(&mut page).await["id"],
        alert_id,
        "the duplicate and the refusals pushed nothing"
    );
    let list = deliveries(&app).await;
    let newest = &list["deliveries"][0];
    assert_eq!(
        (
            newest["via"].as_str(),
            newest["tunnelId"].as_str(),
            newest["seq"].as_i64()
        ),
        (Some("relay"), Some("tun_1"), Some(6))
    );
    assert!(!list.to_string().contains(&token));
}

#[tokio::test]
async fn a_delivery_committed_but_not_announced_is_shown_after_a_restart() {
    let app = TestApp::start().await;
    let overlay = app.create_overlay("Main").await;
    let token = url_token(&app).await;
    let outcome = app
        .engine
        .webhook_receive_unannounced(WebhookRequest {
            path: "webhooks/tradingview".into(),
            query: format!("token={token}"),
            headers: vec![("content-type".into(), "text/plain".into())],
            body: b"committed, then the power went out".to_vec(),
            remote_addr: None,
            via: WebhookVia::Local,
        })
        .await
        .unwrap();
    let WebhookOutcome::Accepted { alert_id, .. } = outcome else {
        panic!("accepted: {outcome:?}");
    };
    assert_eq!(deliveries(&app).await["deliveries"][0]["announced"], false);

    let old_base = app.url.clone();
    let app = app.restart(Options::default()).await;
    let link = overlay["signedUrl"]
        .as_str()
        .unwrap()
        .replacen(&old_base, &app.url, 1);
    let mut page = connect_overlay(&link).await;
    assert_eq!(next_json(&mut page).await["type"], "scene.full");
    let alert = next_json(&mut page).await;
    assert_eq!(alert["type"], "alert.show");
    assert_eq!(
        alert["id"],
        alert_id.as_str(),
        "the same alert id as before the restart"
    );
    assert_eq!(alert["message"], "committed, then the power went out");
    assert_eq!(
        deliveries(&app).await["deliveries"][0]["announced"],
        false,
        "pushed is not shown: only a page saying it has the alert counts"
    );
    use futures_util::SinkExt;
    page.send(tokio_tungstenite::tungstenite::Message::Text(
        serde_json::json!({ "type": "alert.seen", "id": alert_id })
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    // The page's report is recorded in the background; wait (bounded) until it lands.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while deliveries(&app).await["deliveries"][0]["announced"] != true {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the page's alert.seen marks the delivery announced"
        );
        tokio::task::yield_now().await;
    }
}
