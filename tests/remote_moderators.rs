//! Remote moderators through the relay: a one-time link on the relay (`/t/{tunnel}/m/{key}`)
//! opens the moderator panel over the link the engine keeps open, and nothing but the
//! moderator surface is reachable that way. A real `stagehand-relay` in process, the real
//! engine and server, real HTTP and WebSockets on loopback.

use std::time::Duration;

use futures_util::SinkExt;
use serde_json::{Value, json};
use stagehand_relay::DoorLimits;
use support::page::PageScene;
use support::relay::{TestRelay, connect_page, next_json_within, relay_status_within};
use support::{Options, Socket, TestApp, error_code};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Generous: every wait ends as soon as what it waits for happens.
const LINK_SECS: u64 = 30;

/// An engine linked to the relay its `options` name, with an overlay holding one text layer.
async fn linked_engine(options: Options) -> (TestApp, String, String) {
    link_and_fill(TestApp::start_with(options).await).await
}

async fn link_and_fill(app: TestApp) -> (TestApp, String, String) {
    let mut events = app.engine.events().subscribe();
    app.engine.relay_start();
    relay_status_within(&mut events, "linked", LINK_SECS).await;
    let overlay = app.create_overlay("Main").await;
    let id = overlay["overlayId"].as_str().unwrap().to_owned();
    let saved = app
        .save_scene(
            &id,
            1,
            json!([{ "id": "title", "kind": "text", "x": 40, "y": 40, "w": 600, "h": 80, "z": 1,
                     "props": { "text": "Hello" } }]),
        )
        .await;
    assert_eq!(saved.status(), 200);
    (app, id, overlay["signedUrl"].as_str().unwrap().to_owned())
}

/// A client for the relay that keeps cookies to itself (the test reads them) and never
/// follows redirects.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn generate(app: &TestApp, scopes: &[&str]) -> Value {
    let response = app
        .post_as_streamer("/api/moderator-keys/generate")
        .json(&json!({ "label": "Remote Sam", "scopes": scopes, "ttl_seconds": 600 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

/// Posts the key as the link page's form does, from the relay's own origin.
async fn consume(relay: &TestRelay, key: &str) -> reqwest::Response {
    client()
        .post(relay.door_url("/api/moderator-keys/consume"))
        .header("origin", &relay.url)
        .form(&[("key", key)])
        .send()
        .await
        .unwrap()
}

/// The session cookie (`name=value`) and its attributes from a consume answer.
fn session_cookie(response: &reqwest::Response) -> (String, String) {
    let set = response
        .headers()
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .to_owned();
    let pair = set.split(';').next().unwrap().trim().to_owned();
    (pair, set)
}

/// Opens the moderator socket through the relay with the session cookie.
async fn moderator_socket(relay: &TestRelay, cookie: &str) -> Socket {
    let url = relay
        .door_url("/ws/moderator")
        .replacen("http://", "ws://", 1);
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("cookie", cookie.parse().unwrap());
    request
        .headers_mut()
        .insert("origin", relay.url.parse().unwrap());
    let (socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the moderator socket opens through the relay");
    socket
}

/// The next message of `kind` on a socket, within `seconds`.
async fn next_of(socket: &mut Socket, kind: &str, seconds: u64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let message = next_json_within(socket, left.as_secs().max(1)).await;
        if message["type"] == kind {
            return message;
        }
    }
}

/// Requests the engine's server has answered, over every route (from its `/metrics`).
async fn engine_requests(app: &TestApp) -> u64 {
    let text = app
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("stagehand_http_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn a_relay_link_opens_the_panel_once_and_its_edits_reach_the_overlay() {
    let relay = TestRelay::start().await;
    let (app, id, signed) = linked_engine(relay.engine_options()).await;
    let mut page = support::connect_overlay(&signed).await;
    let mut shown = PageScene::default();
    shown.next(&mut page).await;

    let made = generate(&app, &["scene.edit"]).await;
    let key = made["key"].as_str().unwrap();
    assert_eq!(
        made["link"],
        format!("{}/t/{}/m/{key}", relay.url, relay.tunnel_id),
        "with a relay, the link is on the relay: {made}"
    );
    assert_eq!(made["relay_link"], made["link"]);
    assert_eq!(
        made["local_link"],
        format!("{}/m/{key}", app.url),
        "the local link stays available"
    );

    // The link page, through the relay: its form and script stay under the tunnel's prefix.
    let prefix = format!("/t/{}", relay.tunnel_id);
    let link_page = client()
        .get(made["link"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(link_page.status(), 200);
    let html = link_page.text().await.unwrap();
    assert!(
        html.contains(&format!(r#"action="{prefix}/api/moderator-keys/consume""#)),
        "{html}"
    );
    let script = client()
        .get(relay.door_url("/ui/moderator-link.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200, "the panel's assets come through");
    assert!(script.text().await.unwrap().contains("consume"));

    // Opening it: a session cookie scoped to the tunnel's path, and the panel.
    let opened = consume(&relay, key).await;
    assert_eq!(opened.status(), 303);
    assert_eq!(
        opened.headers()["location"],
        format!("{prefix}/moderator").as_str()
    );
    let (cookie, attributes) = session_cookie(&opened);
    assert!(
        attributes.contains(&format!("Path={prefix}/")),
        "the cookie is only sent back to this tunnel's door: {attributes}"
    );
    assert!(attributes.contains("HttpOnly"), "{attributes}");
    let panel = client()
        .get(relay.door_url("/moderator"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(panel.status(), 200);
    let html = panel.text().await.unwrap();
    assert!(html.contains("Remote Sam"), "{html}");
    assert!(
        html.contains(&format!(r#"src="{prefix}/ui/moderator.js""#)),
        "{html}"
    );

    // The panel's socket: the scene, then a save whose next version reaches the overlay.
    let mut socket = moderator_socket(&relay, &cookie).await;
    let hello = next_of(&mut socket, "hello", 10).await;
    assert_eq!(hello["session"]["label"], "Remote Sam");
    let scene = next_of(&mut socket, "scene.full", 10).await;
    assert_eq!(scene["version"], 2);
    let mut layers = scene["scene"]["layers"].clone();
    layers[0]["x"] = json!(300);
    let save = json!({ "type": "scene.save", "ref": 1, "overlayId": id, "version": 2,
                       "scene": { "layers": layers } });
    socket
        .send(Message::Text(save.to_string().into()))
        .await
        .unwrap();
    let result = next_of(&mut socket, "result", 10).await;
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["version"], 3);
    shown.reach(&mut page, 3).await;
    assert_eq!(shown.layers[0]["x"].as_f64(), Some(300.0));

    // The audit log says where the moderator came from.
    let audit = app.get_json("/api/audit?limit=20").await;
    let entries = audit["entries"].as_array().expect("audit entries");
    let consumed = entries
        .iter()
        .find(|e| e["action"] == "moderator.key.consume" && e["outcome"] == "ok")
        .expect("the consume is audited");
    assert_eq!(consumed["detail"]["via"], "relay", "{consumed}");
    let saved = entries
        .iter()
        .find(|e| e["action"] == "moderator.scene.save")
        .expect("the save is audited");
    assert_eq!(saved["detail"]["via"], "relay", "{saved}");
    let sessions = app.get_json("/api/moderator-sessions").await;
    assert_eq!(sessions["sessions"][0]["via"], "relay", "{sessions}");

    // The link works once.
    let again = consume(&relay, key).await;
    assert_eq!(again.status(), 401);
    let html = again.text().await.unwrap();
    assert!(html.contains("already used"), "{html}");
    assert!(
        html.contains(&format!(r#"href="{prefix}/ui/style.css""#)),
        "even the refusal keeps its links under the prefix: {html}"
    );
}

#[tokio::test]
async fn a_hundred_concurrent_consumes_through_the_relay_open_one_session() {
    let relay = TestRelay::start_with_door(DoorLimits {
        rate_per_sec: 10_000,
        rate_burst: 10_000,
        client_rate_per_sec: 10_000,
        client_rate_burst: 10_000,
        ..DoorLimits::default()
    })
    .await;
    // The engine's own per-address limit would otherwise answer most of them 429: this is
    // about the key, not the limiter.
    let options = relay
        .engine_options()
        .env("STAGEHAND_MODERATORS_CONSUME_ATTEMPTS_PER_MINUTE", "1000");
    let (app, _, _) = linked_engine(options).await;
    let made = generate(&app, &["alerts"]).await;
    let key = made["key"].as_str().unwrap().to_owned();
    let attempts = (0..100).map(|_| {
        let url = relay.door_url("/api/moderator-keys/consume");
        let key = key.clone();
        tokio::spawn(async move {
            client()
                .post(url)
                .json(&json!({ "key": key }))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    });
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.unwrap());
    }
    let opened = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 401).count();
    assert_eq!(opened, 1, "exactly one consume wins: {statuses:?}");
    assert_eq!(refused, 99, "every other one is refused: {statuses:?}");
    let sessions = app.get_json("/api/moderator-sessions").await;
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn nothing_but_the_moderator_surface_passes_the_relay_and_the_engine_sees_none_of_it() {
    let relay = TestRelay::start().await;
    let (app, id, signed) = linked_engine(relay.engine_options()).await;
    let query = signed.split_once('?').unwrap().1;
    let before = engine_requests(&app).await;
    let c = client();
    let refused = [
        ("GET", "/".to_owned()),
        ("GET", "/login".to_owned()),
        ("GET", "/api/status".to_owned()),
        ("GET", "/api/overlays".to_owned()),
        ("GET", "/overlays".to_owned()),
        ("GET", format!("/o/{id}?{query}")),
        ("GET", format!("/ws/overlay/{id}?{query}")),
        ("GET", "/media/0000".to_owned()),
        ("POST", "/api/media".to_owned()),
        ("GET", "/metrics".to_owned()),
        ("GET", "/healthz".to_owned()),
        ("GET", "/ws/events".to_owned()),
        ("POST", "/api/moderator-keys/generate".to_owned()),
        ("GET", "/api/moderator-sessions".to_owned()),
        ("GET", "/api/webhooks/tradingview/secrets".to_owned()),
        ("POST", "/webhooks/tradingview".to_owned()),
        ("GET", "/ui/../api/status".to_owned()),
        ("GET", "/ui/%2e%2e/api/status".to_owned()),
        ("GET", "/m/a/../../api/status".to_owned()),
    ];
    for (method, path) in &refused {
        let url = format!("{}/t/{}{path}", relay.url, relay.tunnel_id);
        let request = match *method {
            "POST" => c.post(&url).header("origin", &relay.url).body("{}"),
            _ => c.get(&url),
        };
        let response = request
            .header("x-streamer-token", &app.token)
            .send()
            .await
            .unwrap();
        let (status, code) = error_code(response).await;
        assert_eq!(
            (status, code.as_str()),
            (404, "not_found"),
            "{method} {path}"
        );
    }
    // An unknown tunnel is the same 404.
    let response = c
        .get(format!("{}/t/nope/moderator", relay.url))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(response).await, (404, "not_found".into()));
    let after = engine_requests(&app).await;
    assert_eq!(
        after - before,
        1,
        "only the first /metrics read reached the engine, none of the refused requests"
    );

    // The control: a request on the surface does reach it.
    let page = c.get(relay.door_url("/m/some-key")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(
        engine_requests(&app).await - after,
        2,
        "the link page and the second /metrics read"
    );

    // A browser page elsewhere cannot post through the door.
    let forged = c
        .post(relay.door_url("/api/moderator-keys/consume"))
        .header("origin", "https://evil.example")
        .form(&[("key", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(forged).await, (403, "origin_not_allowed".into()));

    // Nor can anyone on this machine pretend to be the relay: the old relay header is just a
    // header, and the request stays a local one without credentials.
    let spoofed = app
        .get("/api/status")
        .header("x-stagehand-relay", "guess")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(spoofed).await, (401, "auth_required".into()));
}

/// Regression: a request from the network carrying the relay headers (the per-process mark
/// that used to prove a replay, the client address) or the relay's Origin is never taken for
/// relayed. The mark is a request extension now, which only the in-process door sets.
#[tokio::test]
async fn a_request_from_the_network_cannot_pass_itself_off_as_relayed() {
    let relay = TestRelay::start().await;
    let (app, _, _) = linked_engine(relay.engine_options()).await;
    let smuggled = [
        ("x-stagehand-relay", "guess"),
        ("x-stagehand-relay-client", "10.9.9.9"),
    ];

    // The relay's Origin is good for relayed requests only.
    let mut forged = app
        .post("/api/moderator-keys/consume")
        .header("origin", &relay.url)
        .form(&[("key", "x")]);
    for (name, value) in smuggled {
        forged = forged.header(name, value);
    }
    let forged = forged.send().await.unwrap();
    assert_eq!(
        error_code(forged).await,
        (403, "origin_not_allowed".into()),
        "the relay's Origin on a local connection is a foreign page's"
    );

    // A local consume with the headers is a local one: its cookie is for this server's
    // paths, not the tunnel's, and the audit says `via: local`.
    let made = generate(&app, &["scene.edit"]).await;
    let mut local = app
        .post("/api/moderator-keys/consume")
        .form(&[("key", made["key"].as_str().unwrap())]);
    for (name, value) in smuggled {
        local = local.header(name, value);
    }
    let opened = local.send().await.unwrap();
    assert_eq!(opened.status(), 303);
    assert_eq!(opened.headers()["location"], "/moderator");
    let (_, attributes) = session_cookie(&opened);
    assert!(
        attributes.contains("Path=/;"),
        "not scoped to the relay's tunnel: {attributes}"
    );
    let sessions = app.get_json("/api/moderator-sessions").await;
    assert_eq!(sessions["sessions"][0]["via"], "local", "{sessions}");
}

#[tokio::test]
async fn with_the_engine_offline_the_relay_says_so_and_the_session_comes_back_with_it() {
    let relay = TestRelay::start().await;
    let data = tempfile::tempdir().unwrap();
    let app = TestApp::start_in(data.path(), relay.engine_options())
        .await
        .unwrap();
    let (app, _, _) = link_and_fill(app).await;
    let made = generate(&app, &["scene.edit"]).await;
    let opened = consume(&relay, made["key"].as_str().unwrap()).await;
    let (cookie, _) = session_cookie(&opened);
    let mut socket = moderator_socket(&relay, &cookie).await;
    next_of(&mut socket, "hello", 10).await;

    // The engine stops: the moderator's socket is closed (by the engine as it shuts down, or
    // by the relay with "offline" when the link goes first), and the door answers at once
    // with a page that says so. (A killed engine is `browser_remote_moderator_…`'s case.)
    let mut app = app;
    app.stop().await;
    drop(app);
    let (code, reason) = support::closed(&mut socket).await;
    assert!(
        [1001, stagehand_relay::CLOSE_OFFLINE].contains(&code),
        "{code} {reason}"
    );
    let offline = client()
        .get(relay.door_url("/moderator"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(offline.status(), 503);
    assert_eq!(offline.headers()["x-stagehand-offline"], "1");
    assert!(
        offline
            .text()
            .await
            .unwrap()
            .contains("The streamer's app is offline")
    );
    let api = client()
        .post(relay.door_url("/api/moderator-keys/consume"))
        .json(&json!({"key": "k"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(api).await, (503, "streamer_offline".into()));

    // Back again on the same data dir: the same cookie opens the panel and its socket.
    let app = TestApp::start_in(data.path(), relay.engine_options())
        .await
        .unwrap();
    let mut events = app.engine.events().subscribe();
    app.engine.relay_start();
    relay_status_within(&mut events, "linked", LINK_SECS).await;
    let mut socket = moderator_socket(&relay, &cookie).await;
    let hello = next_of(&mut socket, "hello", 10).await;
    assert_eq!(hello["session"]["label"], "Remote Sam");
}

#[tokio::test]
async fn a_moderator_who_stops_reading_holds_up_neither_webhooks_nor_other_moderators() {
    let relay = TestRelay::start().await;
    let (app, id, signed) = linked_engine(relay.engine_options()).await;
    let token = app.tradingview_token().await;
    let mut page = connect_page(&signed).await;
    let made = generate(&app, &["scene.edit"]).await;
    let (stalled_cookie, _) = session_cookie(&consume(&relay, made["key"].as_str().unwrap()).await);
    let made = generate(&app, &["scene.edit"]).await;
    let (cookie, _) = session_cookie(&consume(&relay, made["key"].as_str().unwrap()).await);

    // The stalled moderator: a socket with a tiny receive buffer that is never read.
    let stalled_stream = {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket.connect(relay.addr).await.unwrap()
    };
    let url = relay
        .door_url("/ws/moderator")
        .replacen("http://", "ws://", 1);
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("cookie", stalled_cookie.parse().unwrap());
    let (_stalled, _) = tokio_tungstenite::client_async(request, stalled_stream)
        .await
        .expect("the stalled moderator's socket opens");
    let mut healthy = moderator_socket(&relay, &cookie).await;
    next_of(&mut healthy, "hello", 10).await;

    // Twenty big scenes, 8 MB in all, past what socket buffers hold (4 MB at most for the
    // relay's send side; the stalled reader asked for 4 KiB), go to both. The healthy one
    // reads as they come (answering the relay's pings, however slow the saves).
    let filler = "x".repeat(400_000);
    let mut version = 2;
    let last = version + 20;
    let reader = tokio::spawn(async move {
        loop {
            let message = next_of(&mut healthy, "scene.full", 60).await;
            if message["version"] == last {
                return healthy;
            }
        }
    });
    for i in 0..20 {
        let saved = app
            .save_scene(
                &id,
                version,
                json!([{ "id": "title", "kind": "text", "x": i, "y": 40, "w": 600, "h": 80,
                         "z": 1, "props": { "text": filler } }]),
            )
            .await;
        assert_eq!(saved.status(), 200);
        version += 1;
    }
    assert_eq!(version, last);
    let _healthy = reader.await.expect("the healthy moderator got every scene");

    // The relay holds no more for the stalled moderator than one credit window and the
    // message that crossed it: the engine stopped sending, it did not pile up here.
    let metrics = relay
        .client
        .get(format!("{}/metrics", relay.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let pending: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("stagehand_relay_moderator_bytes_pending "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the relay reports what it holds for moderators");
    let window = u64::from(stagehand_protocol::relay::STREAM_WINDOW);
    assert!(
        pending <= window + 2 * 410_000,
        "{pending} bytes held for the stalled moderator: the window did not hold"
    );

    // A webhook through the same tunnel still arrives.
    relay
        .post_note_accepted(&token, "still flowing", None)
        .await;
    let alert = support::relay::next_alert_within(&mut page, 30).await;
    assert_eq!(alert["message"], "still flowing");
}

#[tokio::test]
async fn the_door_refuses_other_methods_big_bodies_and_too_many_requests_before_the_engine() {
    // A frozen clock: no token comes back while the test runs, however slow the machine.
    let relay = TestRelay::start_configured(|config| {
        config.door = DoorLimits {
            rate_per_sec: 1,
            rate_burst: 4,
            max_body_bytes: 1024,
            ..DoorLimits::default()
        };
        config.clock = std::sync::Arc::new(support::relay::FrozenClock(1_700_000_000_000));
    })
    .await;
    let (app, _, _) = linked_engine(relay.engine_options()).await;
    let before = engine_requests(&app).await;
    let c = client();
    let put = c
        .put(relay.door_url("/moderator"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(put).await, (405, "method_not_allowed".into()));
    let big = c
        .post(relay.door_url("/api/moderator-keys/consume"))
        .header("content-type", "application/json")
        .body(format!("{{\"key\":\"{}\"}}", "k".repeat(2048)))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(big).await, (413, "body_too_large".into()));
    // The burst of four: the oversized body took one (the method is checked first), three
    // remain.
    for _ in 0..3 {
        let page = c.get(relay.door_url("/m/key")).send().await.unwrap();
        assert_eq!(page.status(), 200);
    }
    let limited = c.get(relay.door_url("/m/key")).send().await.unwrap();
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(error_code(limited).await, (429, "rate_limited".into()));
    assert_eq!(
        engine_requests(&app).await - before,
        4,
        "the three link pages and the first /metrics read; nothing refused reached the engine"
    );
}

#[tokio::test]
async fn sockets_from_other_sites_and_smuggled_headers_get_nothing_and_revoking_reaches_the_relay()
{
    let relay = TestRelay::start().await;
    let (app, _, _) = linked_engine(relay.engine_options()).await;
    let made = generate(&app, &["scene.edit"]).await;
    let (cookie, _) = session_cookie(&consume(&relay, made["key"].as_str().unwrap()).await);

    // A page elsewhere cannot open the panel's socket with the moderator's cookie.
    let url = relay
        .door_url("/ws/moderator")
        .replacen("http://", "ws://", 1);
    let mut request = url.clone().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("cookie", cookie.parse().unwrap());
    request
        .headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("a foreign Origin must not open the socket: {other:?}"),
    }

    // Headers only the relay (or the streamer) may set do not pass: the engine neither takes
    // the moderator for the relay's own replay nor for the streamer.
    let page = client()
        .get(relay.door_url("/moderator"))
        .header("cookie", &cookie)
        .header("x-stagehand-relay", "guess")
        .header("x-stagehand-relay-client", "10.9.9.9")
        .header("x-streamer-token", &app.token)
        .header("authorization", format!("Bearer {}", app.token))
        .send()
        .await
        .unwrap();
    assert_eq!(
        page.status(),
        200,
        "headers claiming the relay's mark or the streamer's token are ignored: the moderator gets their own page"
    );

    // The streamer revokes: the moderator's socket through the relay ends with 4401.
    let mut socket = moderator_socket(&relay, &cookie).await;
    next_of(&mut socket, "hello", 10).await;
    let sessions = app.get_json("/api/moderator-sessions").await;
    let id = sessions["sessions"][0]["id"].as_str().unwrap().to_owned();
    let revoked = app
        .client
        .delete(app.at(&format!("/api/moderator-sessions/{id}")))
        .header("x-streamer-token", &app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    let (code, _) = support::closed(&mut socket).await;
    assert_eq!(
        code, 4401,
        "revocation reaches the moderator through the relay"
    );
    let gone = client()
        .head(relay.door_url("/moderator"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        gone.status(),
        401,
        "HEAD through the relay says the session ended"
    );
}

#[tokio::test]
async fn a_message_too_big_for_the_link_closes_only_its_socket() {
    let relay = TestRelay::start().await;
    // A streamer who raised the JSON limit can save a scene whose `scene.full`, escaped into a
    // link frame, is larger than the link takes.
    let options = relay
        .engine_options()
        .env("STAGEHAND_SECURITY_JSON_BODY_LIMIT_BYTES", "4000000");
    let (app, id, signed) = linked_engine(options).await;
    let token = app.tradingview_token().await;
    let mut page = connect_page(&signed).await;
    let made = generate(&app, &["scene.edit"]).await;
    let (cookie, _) = session_cookie(&consume(&relay, made["key"].as_str().unwrap()).await);
    let mut socket = moderator_socket(&relay, &cookie).await;
    next_of(&mut socket, "scene.full", 10).await;

    let quotes = "\"".repeat(1_500_000);
    let saved = app
        .save_scene(
            &id,
            2,
            json!([{ "id": "title", "kind": "text", "x": 0, "y": 0, "w": 10, "h": 10, "z": 1,
                     "props": { "text": quotes } }]),
        )
        .await;
    assert_eq!(saved.status(), 200, "{}", saved.text().await.unwrap());
    let (code, reason) = support::closed(&mut socket).await;
    assert_eq!(code, 1009, "{reason}");

    // The link itself carries on: a webhook still arrives, and the panel opens again.
    relay
        .post_note_accepted(&token, "after the big one", None)
        .await;
    let alert = support::relay::next_alert_within(&mut page, 30).await;
    assert_eq!(alert["message"], "after the big one");
    let panel = client()
        .get(relay.door_url("/moderator"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(panel.status(), 200);
}

#[tokio::test]
async fn a_moderator_saves_scenes_larger_than_the_window_through_the_relay() {
    let relay = TestRelay::start().await;
    let (app, id, _signed) = linked_engine(relay.engine_options()).await;
    let made = generate(&app, &["scene.edit"]).await;
    let (cookie, _) = session_cookie(&consume(&relay, made["key"].as_str().unwrap()).await);
    let mut socket = moderator_socket(&relay, &cookie).await;
    let scene = next_of(&mut socket, "scene.full", 10).await;
    let mut version = scene["version"].as_i64().unwrap();
    // Each save is past the 256 KiB stream window, so the engine owes the relay more than a
    // window while the echoes of the earlier ones (the same size, the other way) earn the
    // relay's credits: those must not be taken for sending past the window. Sent back to
    // back, each on the version the one before makes.
    let filler = "x".repeat(300_000);
    let saves = 8;
    for i in 0..saves {
        let save = json!({ "type": "scene.save", "ref": i, "overlayId": id, "version": version + i,
                           "scene": { "layers": [{ "id": "title", "kind": "text", "x": i, "y": 40,
                                                   "w": 600, "h": 80, "props": { "text": filler } }] } });
        socket
            .send(Message::Text(save.to_string().into()))
            .await
            .unwrap();
    }
    for _ in 0..saves {
        let result = next_of(&mut socket, "result", 30).await;
        assert_eq!(result["ok"], true, "{result}");
    }
    version += saves;
    assert_eq!(
        app.get_json(&format!("/api/overlays/{id}/scene")).await["version"],
        version
    );
}

#[tokio::test]
async fn a_relay_that_stops_tells_moderators_it_is_going_away() {
    let mut relay = TestRelay::start().await;
    let (app, _id, _signed) = linked_engine(relay.engine_options()).await;
    let made = generate(&app, &["scene.edit"]).await;
    let (cookie, _) = session_cookie(&consume(&relay, made["key"].as_str().unwrap()).await);
    let mut socket = moderator_socket(&relay, &cookie).await;
    next_of(&mut socket, "hello", 10).await;
    // Not "the streamer's app went offline" (1013): the relay itself is going.
    let closing = tokio::spawn(async move { support::closed(&mut socket).await });
    relay.stop().await;
    let (code, reason) = closing.await.unwrap();
    assert_eq!((code, reason.as_str()), (1001, "the relay is restarting"));
}
