//! The fake's own tests: the handshake, close codes and request shapes checked against
//! the protocol text, and obws (the client the engine uses) reading every implemented answer.

#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::Message;

use super::*;
use crate::{closed, next_json};

type Client = crate::Socket;

async fn connect(fake: &FakeObs) -> (Client, Value) {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}", fake.port()))
        .await
        .expect("the fake accepts a websocket");
    let hello = next_json(&mut ws).await;
    (ws, hello)
}

async fn send_json(ws: &mut Client, message: Value) {
    ws.send(Message::text(message.to_string())).await.unwrap();
}

async fn identify(fake: &FakeObs, password: Option<&str>, subscriptions: Option<u64>) -> Client {
    let (mut ws, hello) = connect(fake).await;
    let mut d = json!({ "rpcVersion": 1 });
    if let (Some(password), Some(auth)) = (password, hello["d"].get("authentication")) {
        d["authentication"] = json!(auth_string(
            password,
            auth["salt"].as_str().unwrap(),
            auth["challenge"].as_str().unwrap()
        ));
    }
    if let Some(mask) = subscriptions {
        d["eventSubscriptions"] = json!(mask);
    }
    send_json(&mut ws, json!({ "op": 1, "d": d })).await;
    let identified = next_json(&mut ws).await;
    assert_eq!(
        identified,
        json!({ "op": 2, "d": { "negotiatedRpcVersion": 1 } })
    );
    ws
}

async fn request(ws: &mut Client, id: &str, request_type: &str, data: Value) -> Value {
    let mut d = json!({ "requestType": request_type, "requestId": id });
    if !data.is_null() {
        d["requestData"] = data;
    }
    send_json(ws, json!({ "op": 6, "d": d })).await;
    let response = next_json(ws).await;
    assert_eq!(
        response["op"], 7,
        "a request gets a RequestResponse: {response}"
    );
    assert_eq!(
        response["d"]["requestId"], id,
        "the response mirrors the id"
    );
    response["d"].clone()
}

#[test]
fn auth_string_follows_the_documented_steps() {
    // protocol.md's example Hello (password `supersecretpassword`). The expected values
    // were computed independently (Python hashlib/base64). The Identify example in the
    // same document ("Dj6cLS…") is illustrative only: it is not derived from these.
    let salt = "lM1GncleQOaCu9lT1yeUZhFYnqhsLLP1G5lAGo3ixaI=";
    let challenge = "+IxH4CnCiqpX1rM9scsNynZzbOe4KhDeYcTNS3PDaeY=";
    let secret = BASE64.encode(Sha256::digest(format!("supersecretpassword{salt}")));
    assert_eq!(secret, "H1IfVz1pSREUQzbFTVnX/Tyb+gMhMik5x7yUBCY0PTs=");
    assert_eq!(
        auth_string("supersecretpassword", salt, challenge),
        "1Ct943GAT+6YQUUX47Ia/ncufilbe6+oD6lY+5kaCu4="
    );
}

#[test]
fn scene_uuids_are_stable_and_parse_as_uuids() {
    let uuid = ObsState::scene_uuid("Scene");
    assert_eq!(
        uuid,
        ObsState::scene_uuid("Scene"),
        "a restart keeps scene UUIDs"
    );
    assert_ne!(uuid, ObsState::scene_uuid("Live"));
    assert_eq!(uuid.len(), 36);
    assert_eq!(&uuid[14..15], "4", "version 4 shape: {uuid}");
    assert!(
        matches!(&uuid[19..20], "8" | "9" | "a" | "b"),
        "RFC 4122 variant: {uuid}"
    );
}

#[tokio::test]
async fn hello_carries_a_challenge_and_salt_only_with_a_password() {
    let open = FakeObs::start(None).await;
    let (_ws, hello) = connect(&open).await;
    assert_eq!(hello["op"], 0);
    assert_eq!(hello["d"]["rpcVersion"], 1);
    assert_eq!(hello["d"]["obsWebSocketVersion"], "5.5.2");
    assert!(
        hello["d"].get("authentication").is_none(),
        "no password, no challenge: {hello}"
    );

    let locked = FakeObs::start(Some("hunter2")).await;
    let (_a, first) = connect(&locked).await;
    let (_b, second) = connect(&locked).await;
    let (a, b) = (
        &first["d"]["authentication"],
        &second["d"]["authentication"],
    );
    assert!(
        a["challenge"].is_string() && a["salt"].is_string(),
        "{first}"
    );
    assert_eq!(a["salt"], b["salt"], "one salt per server start");
    assert_ne!(a["challenge"], b["challenge"], "one challenge per session");
}

#[tokio::test]
async fn a_wrong_or_missing_password_closes_with_4009() {
    let fake = FakeObs::start(Some("hunter2")).await;
    let (mut ws, hello) = connect(&fake).await;
    let auth = &hello["d"]["authentication"];
    let wrong = auth_string(
        "hunter3",
        auth["salt"].as_str().unwrap(),
        auth["challenge"].as_str().unwrap(),
    );
    send_json(
        &mut ws,
        json!({ "op": 1, "d": { "rpcVersion": 1, "authentication": wrong } }),
    )
    .await;
    assert_eq!(
        closed(&mut ws).await,
        (4009, "Authentication failed.".into())
    );

    let (mut ws, _) = connect(&fake).await;
    send_json(&mut ws, json!({ "op": 1, "d": { "rpcVersion": 1 } })).await;
    assert_eq!(closed(&mut ws).await.0, close::AUTHENTICATION_FAILED);
    assert_eq!(fake.identified_count(), 0, "nobody got in");
}

#[tokio::test]
async fn requests_before_identify_close_with_4007_and_bad_ops_with_4006() {
    let fake = FakeObs::start(None).await;
    let (mut ws, _) = connect(&fake).await;
    send_json(
        &mut ws,
        json!({ "op": 6, "d": { "requestType": "GetVersion", "requestId": "1" } }),
    )
    .await;
    assert_eq!(closed(&mut ws).await.0, close::NOT_IDENTIFIED);

    let mut ws = identify(&fake, None, None).await;
    send_json(&mut ws, json!({ "op": 4, "d": {} })).await;
    assert_eq!(closed(&mut ws).await, (4006, "Unknown OpCode: 4".into()));

    let mut ws = identify(&fake, None, None).await;
    send_json(&mut ws, json!({ "op": 1, "d": { "rpcVersion": 1 } })).await;
    assert_eq!(closed(&mut ws).await.0, close::ALREADY_IDENTIFIED);
}

#[tokio::test]
async fn raw_round_trip_answers_in_obs_shapes_and_sends_events_after_responses() {
    let fake = FakeObs::start(Some("hunter2")).await;
    let mut ws = identify(&fake, Some("hunter2"), Some(intent::SCENES)).await;
    fake.wait_identified(1).await;
    assert_eq!(fake.subscriptions(), vec![intent::SCENES]);

    let version = request(&mut ws, "v", "GetVersion", Value::Null).await;
    assert_eq!(
        version["requestStatus"],
        json!({ "result": true, "code": 100 })
    );
    assert_eq!(version["responseData"]["obsVersion"], "30.2.3");
    assert_eq!(version["responseData"]["rpcVersion"], 1);

    let scenes = request(&mut ws, "s", "GetSceneList", Value::Null).await;
    let names: Vec<&str> = scenes["responseData"]["scenes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["sceneName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Live", "Scene"], "OBS lists scenes bottom first");

    let set = request(
        &mut ws,
        "p",
        "SetCurrentProgramScene",
        json!({ "sceneName": "Live" }),
    )
    .await;
    assert_eq!(set["requestStatus"]["code"], 100);
    assert!(
        set.get("responseData").is_none(),
        "no data, no responseData key: {set}"
    );
    let event = next_json(&mut ws).await;
    assert_eq!(event["op"], 5);
    assert_eq!(event["d"]["eventType"], "CurrentProgramSceneChanged");
    assert_eq!(event["d"]["eventIntent"], intent::SCENES);
    assert_eq!(event["d"]["eventData"]["sceneName"], "Live");

    let missing = request(
        &mut ws,
        "m",
        "SetCurrentProgramScene",
        json!({ "sceneName": "Nope" }),
    )
    .await;
    assert_eq!(
        missing["requestStatus"],
        json!({
            "result": false,
            "code": 600,
            "comment": "No source was found by the name of `Nope`.",
        })
    );
    let unknown = request(&mut ws, "u", "MakeCoffee", Value::Null).await;
    assert_eq!(
        unknown["requestStatus"]["code"],
        status::UNKNOWN_REQUEST_TYPE
    );

    // Outputs events are not in this client's mask.
    request(&mut ws, "r", "StartStream", Value::Null).await;
    fake.emit("CustomEvent", intent::GENERAL, json!({ "x": 1 }))
        .await;
    fake.emit("SceneListChanged", intent::SCENES, json!({ "scenes": [] }))
        .await;
    let event = next_json(&mut ws).await;
    assert_eq!(
        event["d"]["eventType"], "SceneListChanged",
        "unsubscribed events are skipped"
    );

    assert_eq!(
        fake.requests_seen(),
        [
            "GetVersion",
            "GetSceneList",
            "SetCurrentProgramScene",
            "SetCurrentProgramScene",
            "MakeCoffee",
            "StartStream"
        ]
    );
    assert_eq!(fake.state().program_scene, "Live");
    assert!(fake.state().streaming);
}

#[tokio::test]
async fn not_ready_answers_207_for_the_next_n_requests_then_recovers() {
    let fake = FakeObs::start(None).await;
    let mut ws = identify(&fake, None, None).await;
    fake.set_not_ready_for(2).await;
    for id in ["1", "2"] {
        let response = request(&mut ws, id, "GetSceneList", Value::Null).await;
        assert_eq!(response["requestStatus"]["code"], status::NOT_READY);
        assert_eq!(
            response["requestStatus"]["comment"],
            "OBS is not ready to perform the request."
        );
    }
    let response = request(&mut ws, "3", "GetSceneList", Value::Null).await;
    assert_eq!(response["requestStatus"]["code"], status::SUCCESS);
}

#[tokio::test]
async fn pings_are_answered() {
    let fake = FakeObs::start(None).await;
    let mut ws = identify(&fake, None, None).await;
    ws.send(Message::Ping(b"still there?".to_vec().into()))
        .await
        .unwrap();
    let pong = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("a pong within 10 s")
        .unwrap()
        .unwrap();
    assert_eq!(pong, Message::Pong(b"still there?".to_vec().into()));
}

#[tokio::test]
async fn a_restart_on_the_same_port_keeps_the_state() {
    let fake = FakeObs::start(None).await;
    let port = fake.port();
    let mut ws = identify(&fake, None, None).await;
    let created = request(
        &mut ws,
        "c",
        "CreateInput",
        json!({
            "sceneName": "Scene",
            "inputName": "Alerts",
            "inputKind": "browser_source",
            "inputSettings": { "url": "http://127.0.0.1/o/1", "width": 1280, "height": 720 },
        }),
    )
    .await;
    assert_eq!(created["requestStatus"]["code"], 100, "{created}");

    let state = fake.stop().await;
    // Events already on the wire still arrive; then the socket just ends.
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(_)))) => {}
            Ok(None | Some(Err(_))) => break,
            other => panic!("a crash drops the connection without a close frame: {other:?}"),
        }
    }

    let fake = FakeObs::start_on(port, None, state).await;
    let mut ws = identify(&fake, None, None).await;
    let settings = request(
        &mut ws,
        "g",
        "GetInputSettings",
        json!({ "inputName": "Alerts" }),
    )
    .await;
    assert_eq!(settings["responseData"]["inputSettings"]["width"], 1280);
    assert_eq!(fake.identified_count(), 1, "counts restart with the server");
}

#[tokio::test]
async fn quit_sends_exit_started_then_closes_with_1001() {
    let fake = FakeObs::start(None).await;
    let mut ws = identify(&fake, None, None).await;
    let quitting = tokio::spawn(fake.quit());
    let event = next_json(&mut ws).await;
    assert_eq!(
        event,
        json!({ "op": 5, "d": { "eventType": "ExitStarted", "eventIntent": 1 } })
    );
    assert_eq!(closed(&mut ws).await, (1001, "Server stopping.".into()));
    quitting.await.unwrap();
}

#[tokio::test]
async fn obws_connects_and_reads_every_implemented_response() {
    use obws::requests::inputs::{Create, InputId, SetSettings};
    use obws::requests::scene_items::{Id, Position, SceneItemTransform, SetTransform};
    use obws::requests::scenes::SceneId;

    let fake = FakeObs::start(Some("hunter2")).await;
    let client = obws::Client::connect("127.0.0.1", fake.port(), Some("hunter2"))
        .await
        .expect("obws accepts the handshake and the version check");
    let mut events = client.events().unwrap();

    let version = client.general().version().await.unwrap();
    assert_eq!(version.obs_studio_version.to_string(), "30.2.3");
    client.general().stats().await.unwrap();

    let scenes = client.scenes().list().await.unwrap();
    assert_eq!(scenes.scenes.len(), 2);
    assert_eq!(
        scenes.current_program_scene.map(|s| s.name).as_deref(),
        Some("Scene")
    );
    assert!(scenes.current_preview_scene.is_none(), "no studio mode");
    client
        .scenes()
        .set_current_program_scene("Live")
        .await
        .unwrap();
    let event = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .unwrap()
        .unwrap();
    match event {
        obws::events::Event::CurrentProgramSceneChanged { id } => assert_eq!(id.name, "Live"),
        other => panic!("expected the program scene event, got {other:?}"),
    }
    assert_eq!(
        client
            .scenes()
            .current_program_scene()
            .await
            .unwrap()
            .id
            .name,
        "Live"
    );

    let create = |name| Create {
        scene: SceneId::Name("Scene"),
        input: name,
        kind: "browser_source",
        settings: Some(json!({ "url": "http://127.0.0.1/o/1", "width": 1280, "height": 720 })),
        enabled: Some(true),
    };
    let created = client.inputs().create(create("Alerts")).await.unwrap();
    let again = client.inputs().create(create("Alerts")).await;
    assert!(
        matches!(
            again,
            Err(obws::error::Error::Api {
                code: obws::responses::StatusCode::ResourceAlreadyExists,
                ..
            })
        ),
        "{again:?}"
    );
    let item = client
        .scene_items()
        .id(Id {
            scene: SceneId::Name("Scene"),
            source: "Alerts",
            search_offset: None,
        })
        .await
        .unwrap();
    assert_eq!(item, created.scene_item_id);
    client
        .scene_items()
        .set_transform(SetTransform {
            scene: SceneId::Name("Scene"),
            item_id: item,
            transform: SceneItemTransform {
                position: Some(Position {
                    x: Some(40.0),
                    y: Some(30.0),
                }),
                ..SceneItemTransform::default()
            },
        })
        .await
        .unwrap();
    let transform = client
        .scene_items()
        .transform(SceneId::Name("Scene"), item)
        .await
        .unwrap();
    assert_eq!(
        (transform.position_x, transform.source_width),
        (40.0, 1280.0)
    );
    let items = client
        .scene_items()
        .list(SceneId::Name("Scene"))
        .await
        .unwrap();
    assert_eq!(items[0].source_name, "Alerts");
    client
        .inputs()
        .set_settings(SetSettings {
            input: InputId::Name("Alerts"),
            settings: &json!({ "width": 640 }),
            overlay: Some(true),
        })
        .await
        .unwrap();
    let settings = client
        .inputs()
        .settings::<Value>(InputId::Name("Alerts"))
        .await
        .unwrap();
    assert_eq!(
        (
            settings.settings["width"].clone(),
            settings.settings["height"].clone()
        ),
        (json!(640), json!(720))
    );
    assert_eq!(
        client.inputs().list(None).await.unwrap()[0].id.name,
        "Alerts"
    );
    assert!(
        client
            .inputs()
            .list_kinds(false)
            .await
            .unwrap()
            .contains(&"browser_source".to_owned())
    );

    fake.update(|s| s.browser_source_available = false);
    let no_plugin = client.inputs().create(create("Other")).await;
    assert!(
        matches!(
            no_plugin,
            Err(obws::error::Error::Api {
                code: obws::responses::StatusCode::InvalidInputKind,
                ..
            })
        ),
        "{no_plugin:?}"
    );

    client.streaming().start().await.unwrap();
    fake.update(|s| s.output_bytes = 1_000_000);
    let stream = client.streaming().status().await.unwrap();
    assert!(stream.active);
    assert_eq!(stream.bytes, 1_000_000);
    client.streaming().stop().await.unwrap();

    client.recording().start().await.unwrap();
    assert!(client.recording().status().await.unwrap().active);
    let path = client.recording().stop().await.unwrap();
    assert_eq!(path, "/home/streamer/Videos/fake-recording-1.mkv");
}

#[tokio::test]
async fn obws_sees_a_wrong_password_as_close_4009() {
    let fake = FakeObs::start(Some("hunter2")).await;
    let refused = obws::Client::connect("127.0.0.1", fake.port(), Some("nope")).await;
    match refused {
        Err(obws::error::Error::Handshake(obws::client::HandshakeError::ConnectionClosed(
            Some(details),
        ))) => {
            assert_eq!(u16::from(details.code), 4009);
            assert_eq!(details.reason, "Authentication failed.");
        }
        other => panic!("expected a 4009 close, got {:?}", other.err()),
    }
}
