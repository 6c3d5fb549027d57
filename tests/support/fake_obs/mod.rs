//! A fake of obs-websocket v5, the server inside OBS Studio, so tests can make OBS appear,
//! crash, come back on the same port, refuse a password or answer "not ready" on demand.
//!
//! It follows the protocol as obs-websocket 5.5 speaks it, not just as a client would hope:
//! the opcodes, the Hello/Identify handshake with its `base64(sha256(base64(sha256(password +
//! salt)) + challenge))` authentication string, the close codes (4003 MissingDataField, 4004
//! InvalidDataFieldType, 4006 UnknownOpCode, 4007 NotIdentified, 4008 AlreadyIdentified, 4009
//! AuthenticationFailed, 4010 UnsupportedRpcVersion, 1001 "Server stopping." on quit), request
//! statuses with OBS's own comments, responses that omit `responseData` when a request returns
//! nothing (obws deserialises those as `()` and fails on `{}`), events sent only to identified
//! clients whose `eventSubscriptions` include the event's intent, and OBS's quirks where a
//! client could trip on them (scene lists come back reversed, scene and input names share one
//! namespace, the output events arrive after the response).
//!
//! Sources: obsproject/obs-websocket's `docs/generated/protocol.md`, its server
//! (`WebSocketServer.cpp`, `WebSocketServer_Protocol.cpp`), request handler (`Request.cpp`,
//! `RequestHandler_Inputs.cpp`, `RequestHandler_Record.cpp`), event handler and
//! `Utils::Obs::ArrayHelper`; and the types obws 0.15 deserialises (`obws::responses`,
//! `obws::events`), which fail on any missing field.
//!
//! Limits: JSON only (a client asking only for `obswebsocket.msgpack` still gets JSON), one
//! scene item per input, no transitions (the program scene changes at once), and only the
//! requests in [`AVAILABLE_REQUESTS`]; any other answers 204 UnknownRequestType.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// `WebSocketOpCode` values.
pub mod op {
    pub const HELLO: u64 = 0;
    pub const IDENTIFY: u64 = 1;
    pub const IDENTIFIED: u64 = 2;
    pub const REIDENTIFY: u64 = 3;
    pub const EVENT: u64 = 5;
    pub const REQUEST: u64 = 6;
    pub const REQUEST_RESPONSE: u64 = 7;
    pub const REQUEST_BATCH: u64 = 8;
    pub const REQUEST_BATCH_RESPONSE: u64 = 9;
}

/// `WebSocketCloseCode` values, plus the standard 1001 OBS sends when it quits.
pub mod close {
    pub const GOING_AWAY: u16 = 1001;
    pub const UNKNOWN_REASON: u16 = 4000;
    pub const MESSAGE_DECODE_ERROR: u16 = 4002;
    pub const MISSING_DATA_FIELD: u16 = 4003;
    pub const INVALID_DATA_FIELD_TYPE: u16 = 4004;
    pub const INVALID_DATA_FIELD_VALUE: u16 = 4005;
    pub const UNKNOWN_OP_CODE: u16 = 4006;
    pub const NOT_IDENTIFIED: u16 = 4007;
    pub const ALREADY_IDENTIFIED: u16 = 4008;
    pub const AUTHENTICATION_FAILED: u16 = 4009;
    pub const UNSUPPORTED_RPC_VERSION: u16 = 4010;
    pub const SESSION_INVALIDATED: u16 = 4011;
    pub const UNSUPPORTED_FEATURE: u16 = 4012;
}

/// `RequestStatus` values the fake answers with.
pub mod status {
    pub const SUCCESS: u16 = 100;
    pub const MISSING_REQUEST_TYPE: u16 = 203;
    pub const UNKNOWN_REQUEST_TYPE: u16 = 204;
    pub const GENERIC_ERROR: u16 = 205;
    pub const NOT_READY: u16 = 207;
    pub const MISSING_REQUEST_FIELD: u16 = 300;
    pub const MISSING_REQUEST_DATA: u16 = 301;
    pub const INVALID_REQUEST_FIELD: u16 = 400;
    pub const INVALID_REQUEST_FIELD_TYPE: u16 = 401;
    pub const REQUEST_FIELD_OUT_OF_RANGE: u16 = 402;
    pub const REQUEST_FIELD_EMPTY: u16 = 403;
    pub const OUTPUT_RUNNING: u16 = 500;
    pub const OUTPUT_NOT_RUNNING: u16 = 501;
    pub const RESOURCE_NOT_FOUND: u16 = 600;
    pub const RESOURCE_ALREADY_EXISTS: u16 = 601;
    pub const INVALID_RESOURCE_TYPE: u16 = 602;
    pub const INVALID_INPUT_KIND: u16 = 605;
}

/// `EventSubscription` bits: an event reaches a client when its intent is in the client's mask.
pub mod intent {
    pub const GENERAL: u64 = 1 << 0;
    pub const CONFIG: u64 = 1 << 1;
    pub const SCENES: u64 = 1 << 2;
    pub const INPUTS: u64 = 1 << 3;
    pub const TRANSITIONS: u64 = 1 << 4;
    pub const FILTERS: u64 = 1 << 5;
    pub const OUTPUTS: u64 = 1 << 6;
    pub const SCENE_ITEMS: u64 = 1 << 7;
    pub const MEDIA_INPUTS: u64 = 1 << 8;
    pub const VENDORS: u64 = 1 << 9;
    pub const UI: u64 = 1 << 10;
    /// Every non-high-volume category: what a client gets when Identify omits the mask.
    pub const ALL: u64 = (1 << 11) - 1;
    pub const INPUT_VOLUME_METERS: u64 = 1 << 16;
    pub const INPUT_ACTIVE_STATE_CHANGED: u64 = 1 << 17;
    pub const INPUT_SHOW_STATE_CHANGED: u64 = 1 << 18;
    pub const SCENE_ITEM_TRANSFORM_CHANGED: u64 = 1 << 19;
}

/// The requests the fake implements, reported by `GetVersion` as `availableRequests`.
pub const AVAILABLE_REQUESTS: &[&str] = &[
    "GetVersion",
    "GetStats",
    "GetSceneList",
    "GetCurrentProgramScene",
    "SetCurrentProgramScene",
    "GetInputList",
    "GetInputKindList",
    "CreateInput",
    "RemoveInput",
    "GetInputSettings",
    "SetInputSettings",
    "GetSceneItemList",
    "GetSceneItemId",
    "GetSceneItemTransform",
    "SetSceneItemTransform",
    "GetStreamStatus",
    "StartStream",
    "StopStream",
    "GetRecordStatus",
    "StartRecord",
    "StopRecord",
    "GetRecordDirectory",
];

/// The RPC version obs-websocket 5.x speaks.
const RPC_VERSION: u64 = 1;

/// Input kinds of OBS 30.2 on Linux; `browser_source` only while the plugin is "installed".
const INPUT_KINDS: &[&str] = &[
    "image_source",
    "color_source_v3",
    "slideshow",
    "browser_source",
    "ffmpeg_source",
    "text_ft2_source_v2",
    "pipewire-screen-capture-source",
    "pipewire-window-capture-source",
    "pulse_input_capture",
    "pulse_output_capture",
    "v4l2_input",
    "xshm_input_v2",
];

/// The authentication string a client sends in Identify: `base64(sha256(secret + challenge))`
/// where `secret = base64(sha256(password + salt))` (protocol.md, "Creating an authentication
/// string").
pub fn auth_string(password: &str, salt: &str, challenge: &str) -> String {
    let secret = BASE64.encode(Sha256::digest(format!("{password}{salt}")));
    BASE64.encode(Sha256::digest(format!("{secret}{challenge}")))
}

/// One input, as the fake keeps it: a source with exactly one scene item.
#[derive(Clone, Debug, PartialEq)]
pub struct FakeInput {
    pub name: String,
    pub uuid: String,
    /// Versioned kind, e.g. `browser_source`, `color_source_v3`.
    pub kind: String,
    /// The settings object as `GetInputSettings` returns it.
    pub settings: Value,
    /// The scene its scene item is in.
    pub scene: String,
    pub scene_item_id: i64,
    pub enabled: bool,
    /// The `sceneItemTransform` object, every field OBS reports.
    pub transform: Value,
}

impl FakeInput {
    /// An input whose scene item sits at the top left with OBS's default transform.
    pub fn new(name: &str, kind: &str, scene: &str, scene_item_id: i64, settings: Value) -> Self {
        let mut input = Self {
            name: name.to_owned(),
            uuid: uuid_from(&format!("input:{name}:{scene_item_id}")),
            kind: kind.to_owned(),
            settings,
            scene: scene.to_owned(),
            scene_item_id,
            enabled: true,
            transform: default_transform(),
        };
        input.refresh_size();
        input
    }

    /// `sourceWidth`/`sourceHeight` follow the settings (browser and color sources carry
    /// `width`/`height`); `width`/`height` are those times the scale, as in OBS.
    fn refresh_size(&mut self) {
        let (default_w, default_h) = match self.kind.as_str() {
            "browser_source" => (800.0, 600.0),
            "color_source_v3" => (1920.0, 1080.0),
            _ => (0.0, 0.0),
        };
        let w = self.settings["width"].as_f64().unwrap_or(default_w);
        let h = self.settings["height"].as_f64().unwrap_or(default_h);
        if let Some(t) = self.transform.as_object_mut() {
            let scale_x = t.get("scaleX").and_then(Value::as_f64).unwrap_or(1.0);
            let scale_y = t.get("scaleY").and_then(Value::as_f64).unwrap_or(1.0);
            t.insert("sourceWidth".into(), json!(w));
            t.insert("sourceHeight".into(), json!(h));
            t.insert("width".into(), json!(w * scale_x));
            t.insert("height".into(), json!(h * scale_y));
        }
    }
}

/// Everything the fake OBS knows; survives [`FakeObs::stop`] and [`FakeObs::start_on`] the way
/// OBS keeps its scene collection across a restart.
#[derive(Clone, Debug)]
pub struct ObsState {
    /// `obsVersion` in `GetVersion` (and `obsStudioVersion` in Hello).
    pub obs_version: String,
    /// `obsWebSocketVersion` in Hello and `GetVersion`.
    pub websocket_version: String,
    /// Scene names in the order OBS's scene dock shows them, top first.
    pub scenes: Vec<String>,
    pub program_scene: String,
    pub inputs: Vec<FakeInput>,
    /// Whether the obs-browser plugin is loaded; without it `browser_source` is not a kind.
    pub browser_source_available: bool,

    pub streaming: bool,
    /// `GetStreamStatus`: reset to zero by `StartStream`, moved on by tests with
    /// [`FakeObs::update`].
    pub output_bytes: u64,
    pub skipped_frames: u64,
    pub total_frames: u64,
    pub congestion: f64,
    pub reconnecting: bool,
    pub stream_duration_ms: u64,

    pub recording: bool,
    /// Where recordings go; `StartRecord` writes an empty placeholder file there if it can.
    pub record_dir: String,
    /// The file being recorded, while recording.
    pub record_path: Option<String>,
    /// Files of finished recordings, oldest first.
    pub recordings: Vec<String>,
    pub record_bytes: u64,
    pub record_duration_ms: u64,

    /// `GetStats`.
    pub cpu_usage: f64,
    pub memory_usage: f64,
    pub available_disk_space: f64,
    pub active_fps: f64,
    pub average_frame_render_time: f64,
    pub render_skipped_frames: u64,
    pub render_total_frames: u64,
    /// `GetStats`' `outputSkippedFrames`/`outputTotalFrames` (encoder lag), not the stream's.
    pub encoder_skipped_frames: u64,
    pub encoder_total_frames: u64,
}

impl Default for ObsState {
    fn default() -> Self {
        Self {
            obs_version: "30.2.3".into(),
            websocket_version: "5.5.2".into(),
            scenes: vec!["Scene".into(), "Live".into()],
            program_scene: "Scene".into(),
            inputs: Vec::new(),
            browser_source_available: true,
            streaming: false,
            output_bytes: 0,
            skipped_frames: 0,
            total_frames: 0,
            congestion: 0.0,
            reconnecting: false,
            stream_duration_ms: 0,
            recording: false,
            record_dir: "/home/streamer/Videos".into(),
            record_path: None,
            recordings: Vec::new(),
            record_bytes: 0,
            record_duration_ms: 0,
            cpu_usage: 1.5,
            memory_usage: 310.0,
            available_disk_space: 120_000.0,
            active_fps: 60.0,
            average_frame_render_time: 0.9,
            render_skipped_frames: 0,
            render_total_frames: 0,
            encoder_skipped_frames: 0,
            encoder_total_frames: 0,
        }
    }
}

impl ObsState {
    /// The input of that name, if any.
    pub fn input(&self, name: &str) -> Option<&FakeInput> {
        self.inputs.iter().find(|i| i.name == name)
    }

    /// The UUID OBS would give the scene; derived from its name so it survives restarts.
    pub fn scene_uuid(name: &str) -> String {
        uuid_from(&format!("scene:{name}"))
    }

    fn input_kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        INPUT_KINDS
            .iter()
            .copied()
            .filter(|k| *k != "browser_source" || self.browser_source_available)
    }
}

/// A running fake obs-websocket server on 127.0.0.1.
pub struct FakeObs {
    port: u16,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
    connections: Arc<Mutex<JoinSet<()>>>,
}

impl FakeObs {
    /// Starts on a free port with the default state.
    pub async fn start(password: Option<&str>) -> FakeObs {
        Self::start_on(0, password, ObsState::default()).await
    }

    /// Starts on `port` (0 for a free one) with `state`, e.g. the one [`FakeObs::stop`]
    /// returned, to play OBS coming back after a crash.
    pub async fn start_on(port: u16, password: Option<&str>, state: ObsState) -> FakeObs {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .unwrap_or_else(|e| panic!("the fake OBS binds 127.0.0.1:{port}: {e}"));
        let port = listener
            .local_addr()
            .expect("a bound listener has an address")
            .port();
        let shared = Arc::new(Shared {
            password: password.map(str::to_owned),
            // obs-websocket makes one salt per server start and one challenge per session.
            salt: random_token(),
            identified: watch::channel(0).0,
            inner: Mutex::new(Inner {
                state,
                not_ready: 0,
                requests_seen: Vec::new(),
                sessions: HashMap::new(),
                next_session: 0,
            }),
        });
        let connections = Arc::new(Mutex::new(JoinSet::new()));
        let accept = tokio::spawn(accept_loop(
            listener,
            Arc::clone(&shared),
            Arc::clone(&connections),
        ));
        FakeObs {
            port,
            shared,
            accept: Some(accept),
            connections,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the listener and every connection without a close frame, like OBS crashing, and
    /// returns the state for a later [`FakeObs::start_on`].
    pub async fn stop(mut self) -> ObsState {
        self.stop_accepting().await;
        let mut connections = std::mem::take(&mut *lock(&self.connections));
        connections.shutdown().await;
        self.finish()
    }

    /// Quits like OBS does: `ExitStarted` to subscribed clients, then a 1001 "Server
    /// stopping." close to every client; returns the state.
    pub async fn quit(mut self) -> ObsState {
        self.stop_accepting().await;
        self.shared
            .broadcast(&event_message("ExitStarted", intent::GENERAL, &Value::Null));
        for session in self.shared.inner().sessions.values() {
            let _ = session
                .outbox
                .send(Push::Close(close::GOING_AWAY, "Server stopping.".into()));
        }
        let mut connections = std::mem::take(&mut *lock(&self.connections));
        let _ = tokio::time::timeout(Duration::from_secs(3), async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        connections.shutdown().await;
        self.finish()
    }

    /// A snapshot of the state.
    pub fn state(&self) -> ObsState {
        self.shared.inner().state.clone()
    }

    /// Changes the state in place, e.g. to move the stream's byte counter on. Send any events
    /// the change implies with [`FakeObs::emit`].
    pub fn update(&self, change: impl FnOnce(&mut ObsState)) {
        change(&mut self.shared.inner().state);
    }

    /// The next `n` requests answer 207 NotReady, as obs-websocket does while OBS is still
    /// loading (or changing scene collection).
    pub async fn set_not_ready_for(&self, n: usize) {
        self.shared.inner().not_ready = n;
    }

    /// How many times a client has identified since this server started.
    pub fn identified_count(&self) -> usize {
        *self.shared.identified.borrow()
    }

    /// Resolves once `identified_count() >= n`; panics after 10 s so a test cannot hang.
    pub async fn wait_identified(&self, n: usize) {
        let mut count = self.shared.identified.subscribe();
        let waited = tokio::time::timeout(Duration::from_secs(10), count.wait_for(|c| *c >= n));
        if !matches!(waited.await, Ok(Ok(_))) {
            panic!(
                "{n} identified client(s) expected within 10 s, saw {}",
                self.identified_count()
            );
        }
    }

    /// The `eventSubscriptions` masks of the clients identified right now.
    pub fn subscriptions(&self) -> Vec<u64> {
        self.shared
            .inner()
            .sessions
            .values()
            .filter_map(|s| s.subscriptions)
            .collect()
    }

    /// Sends an event to every identified client subscribed to `intent`; a `Null` `data`
    /// leaves `eventData` out, as OBS does for data-less events like `ExitStarted`.
    pub async fn emit(&self, event_type: &str, intent: u64, data: Value) {
        self.shared
            .broadcast(&event_message(event_type, intent, &data));
    }

    /// Every `requestType` received, in order (requests inside batches included).
    pub fn requests_seen(&self) -> Vec<String> {
        self.shared.inner().requests_seen.clone()
    }

    async fn stop_accepting(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
            let _ = accept.await;
        }
    }

    fn finish(&self) -> ObsState {
        let mut inner = self.shared.inner();
        inner.sessions.clear();
        inner.state.clone()
    }
}

impl Drop for FakeObs {
    fn drop(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
        lock(&self.connections).abort_all();
    }
}

struct Shared {
    password: Option<String>,
    salt: String,
    identified: watch::Sender<usize>,
    inner: Mutex<Inner>,
}

struct Inner {
    state: ObsState,
    not_ready: usize,
    requests_seen: Vec<String>,
    sessions: HashMap<u64, SessionHandle>,
    next_session: u64,
}

/// What the server keeps of a connection: where to push events, and what it subscribed to
/// (`None` until it has identified).
struct SessionHandle {
    outbox: mpsc::UnboundedSender<Push>,
    subscriptions: Option<u64>,
}

enum Push {
    Text(String),
    Close(u16, String),
}

impl Shared {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    fn broadcast(&self, message: &Value) {
        let intent = message["d"]["eventIntent"].as_u64().unwrap_or(0);
        let text = message.to_string();
        for session in self.inner().sessions.values() {
            if session.subscriptions.is_some_and(|mask| mask & intent != 0) {
                let _ = session.outbox.send(Push::Text(text.clone()));
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    connections: Arc<Mutex<JoinSet<()>>>,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            // Out of file descriptors, say: give the system a moment rather than spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let mut connections = lock(&connections);
        while connections.try_join_next().is_some() {}
        connections.spawn(serve_connection(Arc::clone(&shared), tcp));
    }
}

/// Picks `obswebsocket.json` when the client offers it, as obs-websocket's `onValidate` does.
// The signature is tungstenite's handshake `Callback`; its error type is not ours to shrink.
#[allow(clippy::result_large_err)]
fn negotiate_subprotocol(
    request: &Request,
    mut response: Response,
) -> Result<Response, ErrorResponse> {
    let offers_json = request
        .headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == "obswebsocket.json");
    if offers_json {
        response.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("obswebsocket.json"),
        );
    }
    Ok(response)
}

type Socket = WebSocketStream<TcpStream>;

async fn serve_connection(shared: Arc<Shared>, tcp: TcpStream) {
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, negotiate_subprotocol).await else {
        return;
    };
    let (outbox, mut inbox) = mpsc::unbounded_channel();
    let id = {
        let mut inner = shared.inner();
        inner.next_session += 1;
        let id = inner.next_session;
        inner.sessions.insert(
            id,
            SessionHandle {
                outbox,
                subscriptions: None,
            },
        );
        id
    };
    let mut session = Session {
        challenge: shared.password.as_ref().map(|_| random_token()),
        identified: false,
        incoming: 0,
        outgoing: 0,
    };
    let hello = session.hello(&shared);
    if send(&mut ws, &mut session, hello).await {
        serve_session(&shared, id, &mut ws, &mut session, &mut inbox).await;
    }
    shared.inner().sessions.remove(&id);
}

async fn serve_session(
    shared: &Shared,
    id: u64,
    ws: &mut Socket,
    session: &mut Session,
    inbox: &mut mpsc::UnboundedReceiver<Push>,
) {
    loop {
        tokio::select! {
            incoming = ws.next() => {
                let reply = match incoming {
                    Some(Ok(Message::Text(text))) => {
                        session.incoming += 1;
                        session.receive(shared, text.as_str())
                    }
                    Some(Ok(Message::Binary(_))) => closing(
                        close::MESSAGE_DECODE_ERROR,
                        "Your session encoding is set to Json, but a binary message was received.",
                    ),
                    // tungstenite answers pings on its own while we read.
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                };
                match reply {
                    Reply::Send { message, effects } => {
                        if !send(ws, session, message).await {
                            return;
                        }
                        effects.apply(shared, id).await;
                    }
                    Reply::Close(code, reason) => return close_with(ws, code, reason).await,
                }
            }
            pushed = inbox.recv() => match pushed {
                Some(Push::Text(text)) => {
                    session.outgoing += 1;
                    if ws.send(Message::text(text)).await.is_err() {
                        return;
                    }
                }
                Some(Push::Close(code, reason)) => return close_with(ws, code, reason).await,
                None => return,
            },
        }
    }
}

/// Sends a close frame, then lets the client answer it before the socket goes.
async fn close_with(ws: &mut Socket, code: u16, reason: String) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    };
    if ws.send(Message::Close(Some(frame))).await.is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Some(Ok(_)) = ws.next().await {}
        })
        .await;
    }
}

async fn send(ws: &mut Socket, session: &mut Session, message: Value) -> bool {
    session.outgoing += 1;
    ws.send(Message::text(message.to_string())).await.is_ok()
}

/// One connection's protocol state.
struct Session {
    /// Present when the server has a password.
    challenge: Option<String>,
    identified: bool,
    incoming: u64,
    outgoing: u64,
}

enum Reply {
    Send { message: Value, effects: Effects },
    Close(u16, String),
}

/// What happens after a reply went out: OBS answers a request before the events it causes.
#[derive(Default)]
struct Effects {
    identified_with: Option<u64>,
    subscriptions: Option<u64>,
    events: Vec<Value>,
    recording_file: Option<String>,
}

impl Effects {
    async fn apply(self, shared: &Shared, id: u64) {
        if let Some(mask) = self.subscriptions.or(self.identified_with)
            && let Some(session) = shared.inner().sessions.get_mut(&id)
        {
            session.subscriptions = Some(mask);
        }
        if self.identified_with.is_some() {
            shared.identified.send_modify(|count| *count += 1);
        }
        for event in &self.events {
            shared.broadcast(event);
        }
        if let Some(path) = self.recording_file {
            // Best effort: OBS opens the file when recording starts.
            let _ = tokio::fs::write(path, b"").await;
        }
    }
}

impl Session {
    fn hello(&self, shared: &Shared) -> Value {
        let inner = shared.inner();
        let state = &inner.state;
        let mut hello = json!({
            "obsStudioVersion": state.obs_version,
            "obsWebSocketVersion": state.websocket_version,
            "rpcVersion": RPC_VERSION,
        });
        if let Some(challenge) = &self.challenge {
            hello["authentication"] = json!({ "challenge": challenge, "salt": shared.salt });
        }
        json!({ "op": op::HELLO, "d": hello })
    }

    /// Handles one text message the way `WebSocketServer::onMessage`/`ProcessMessage` do.
    fn receive(&mut self, shared: &Shared, text: &str) -> Reply {
        let message: Value = match serde_json::from_str(text) {
            Ok(message) => message,
            Err(e) => {
                return closing(
                    close::MESSAGE_DECODE_ERROR,
                    format!("Unable to decode Json: {e}"),
                );
            }
        };
        let Some(message) = message.as_object() else {
            return closing(
                close::MESSAGE_DECODE_ERROR,
                "You sent a non-object payload.",
            );
        };
        if !self.identified && message.contains_key("request-type") {
            return closing(
                close::UNSUPPORTED_RPC_VERSION,
                "You appear to be attempting to connect with the pre-5.0.0 plugin protocol. \
                 Check to make sure your client is updated.",
            );
        }
        let Some(op) = message.get("op") else {
            return closing(close::UNKNOWN_OP_CODE, "Your request is missing an `op`.");
        };
        let Some(op) = op.as_u64() else {
            return closing(close::UNKNOWN_OP_CODE, format!("Unknown OpCode: {op}"));
        };
        let data = match message.get("d") {
            None | Some(Value::Null) => {
                return closing(
                    close::MISSING_DATA_FIELD,
                    "Your payload is missing data (`d`).",
                );
            }
            Some(Value::Object(data)) => data,
            Some(_) => {
                return closing(
                    close::INVALID_DATA_FIELD_TYPE,
                    "Your payload's data (`d`) is not an object.",
                );
            }
        };
        if !self.identified && op != op::IDENTIFY {
            return closing(
                close::NOT_IDENTIFIED,
                "You attempted to send a non-Identify message while not identified.",
            );
        }
        match op {
            op::IDENTIFY => self.identify(shared, data),
            op::REIDENTIFY => match subscriptions(data) {
                Ok(mask) => Reply::Send {
                    message: identified_message(),
                    effects: Effects {
                        subscriptions: Some(mask.unwrap_or(intent::ALL)),
                        ..Effects::default()
                    },
                },
                Err(reply) => reply,
            },
            op::REQUEST => self.request(shared, data),
            op::REQUEST_BATCH => self.request_batch(shared, data),
            other => closing(close::UNKNOWN_OP_CODE, format!("Unknown OpCode: {other}")),
        }
    }

    fn identify(&mut self, shared: &Shared, data: &Map<String, Value>) -> Reply {
        if self.identified {
            return closing(
                close::ALREADY_IDENTIFIED,
                "You are already Identified with the obs-websocket server.",
            );
        }
        if let (Some(password), Some(challenge)) = (&shared.password, &self.challenge) {
            let Some(offered) = data.get("authentication") else {
                return closing(
                    close::AUTHENTICATION_FAILED,
                    "Your payload's data is missing an `authentication` string, however \
                     authentication is required.",
                );
            };
            let Some(offered) = offered.as_str() else {
                return closing(
                    close::AUTHENTICATION_FAILED,
                    "Your `authentication` field is not a string.",
                );
            };
            if offered != auth_string(password, &shared.salt, challenge) {
                return closing(close::AUTHENTICATION_FAILED, "Authentication failed.");
            }
        }
        let Some(rpc_version) = data.get("rpcVersion") else {
            return closing(
                close::MISSING_DATA_FIELD,
                "Your payload's data is missing an `rpcVersion`.",
            );
        };
        let Some(rpc_version) = rpc_version.as_u64() else {
            return closing(
                close::INVALID_DATA_FIELD_TYPE,
                "Your `rpcVersion` is not an unsigned number.",
            );
        };
        if rpc_version != RPC_VERSION {
            return closing(
                close::UNSUPPORTED_RPC_VERSION,
                "Your requested RPC version is not supported by this server.",
            );
        }
        match subscriptions(data) {
            Ok(mask) => {
                self.identified = true;
                Reply::Send {
                    message: identified_message(),
                    effects: Effects {
                        identified_with: Some(mask.unwrap_or(intent::ALL)),
                        ..Effects::default()
                    },
                }
            }
            Err(reply) => reply,
        }
    }

    fn request(&mut self, shared: &Shared, data: &Map<String, Value>) -> Reply {
        let Some(request_id) = data.get("requestId") else {
            return closing(
                close::MISSING_DATA_FIELD,
                "Your payload data is missing a `requestId`.",
            );
        };
        let Some(request_type) = data.get("requestType") else {
            return closing(
                close::MISSING_DATA_FIELD,
                "Your payload's data is missing an `requestType`.",
            );
        };
        let Some(request_type) = request_type.as_str() else {
            return closing(
                close::INVALID_DATA_FIELD_TYPE,
                "Your `requestType` is not a string.",
            );
        };
        let request_data = data.get("requestData").unwrap_or(&Value::Null);
        let mut effects = Effects::default();
        let outcome = {
            let mut inner = shared.inner();
            inner.requests_seen.push(request_type.to_owned());
            if inner.not_ready > 0 {
                inner.not_ready -= 1;
                Err(not_ready())
            } else {
                let stats = SessionStats::of(self);
                process(&mut inner.state, &stats, request_type, request_data)
            }
        };
        let mut d = json!({
            "requestType": request_type,
            "requestId": request_id,
        });
        fill_result(&mut d, outcome, &mut effects);
        Reply::Send {
            message: json!({ "op": op::REQUEST_RESPONSE, "d": d }),
            effects,
        }
    }

    fn request_batch(&mut self, shared: &Shared, data: &Map<String, Value>) -> Reply {
        let Some(request_id) = data.get("requestId") else {
            return closing(
                close::MISSING_DATA_FIELD,
                "Your payload data is missing a `requestId`.",
            );
        };
        if let Some(execution_type) = data.get("executionType").filter(|v| !v.is_null()) {
            let Some(execution_type) = execution_type.as_u64() else {
                return closing(
                    close::INVALID_DATA_FIELD_TYPE,
                    "Your `executionType` is not a number.",
                );
            };
            if execution_type > 2 {
                return closing(
                    close::INVALID_DATA_FIELD_VALUE,
                    "Your `executionType` has an invalid value.",
                );
            }
        }
        let halt_on_failure = match data.get("haltOnFailure") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(halt)) => *halt,
            Some(_) => {
                return closing(
                    close::INVALID_DATA_FIELD_TYPE,
                    "Your `haltOnFailure` is not a boolean.",
                );
            }
        };
        let requests = match data.get("requests") {
            None => {
                return closing(
                    close::MISSING_DATA_FIELD,
                    "Your payload data is missing a `requests`.",
                );
            }
            Some(Value::Array(requests)) => requests,
            Some(_) => {
                return closing(
                    close::INVALID_DATA_FIELD_TYPE,
                    "Your `requests` is not an array.",
                );
            }
        };
        let mut effects = Effects::default();
        let mut results = Vec::new();
        {
            let mut inner = shared.inner();
            let ready = if inner.not_ready > 0 {
                inner.not_ready -= 1;
                false
            } else {
                true
            };
            let stats = SessionStats::of(self);
            for request in requests {
                let request_type = request["requestType"].as_str().unwrap_or("");
                inner.requests_seen.push(request_type.to_owned());
                let outcome = if ready {
                    process(
                        &mut inner.state,
                        &stats,
                        request_type,
                        &request["requestData"],
                    )
                } else {
                    Err(not_ready())
                };
                let failed = outcome.is_err();
                let mut result = json!({ "requestType": request_type });
                if let Some(id) = request.get("requestId").filter(|v| !v.is_null()) {
                    result["requestId"] = id.clone();
                }
                fill_result(&mut result, outcome, &mut effects);
                results.push(result);
                if failed && halt_on_failure {
                    break;
                }
            }
        }
        Reply::Send {
            message: json!({
                "op": op::REQUEST_BATCH_RESPONSE,
                "d": { "requestId": request_id, "results": results },
            }),
            effects,
        }
    }
}

fn closing(code: u16, reason: impl Into<String>) -> Reply {
    Reply::Close(code, reason.into())
}

fn identified_message() -> Value {
    json!({ "op": op::IDENTIFIED, "d": { "negotiatedRpcVersion": RPC_VERSION } })
}

/// The `eventSubscriptions` of an Identify or Reidentify, if given.
fn subscriptions(data: &Map<String, Value>) -> Result<Option<u64>, Reply> {
    match data.get("eventSubscriptions") {
        None => Ok(None),
        Some(mask) => mask.as_u64().map(Some).ok_or_else(|| {
            closing(
                close::INVALID_DATA_FIELD_TYPE,
                "Your `eventSubscriptions` is not an unsigned number.",
            )
        }),
    }
}

fn event_message(event_type: &str, intent: u64, data: &Value) -> Value {
    let mut d = json!({ "eventType": event_type, "eventIntent": intent });
    if data.is_object() {
        d["eventData"] = data.clone();
    }
    json!({ "op": op::EVENT, "d": d })
}

/// Writes `requestStatus` (and `responseData` only when there is some) into a response.
fn fill_result(d: &mut Value, outcome: Result<Done, Failure>, effects: &mut Effects) {
    match outcome {
        Ok(done) => {
            d["requestStatus"] = json!({ "result": true, "code": status::SUCCESS });
            if let Some(data) = done.data {
                d["responseData"] = data;
            }
            effects.events.extend(done.events);
            if done.recording_file.is_some() {
                effects.recording_file = done.recording_file;
            }
        }
        Err(failure) => {
            d["requestStatus"] = json!({ "result": false, "code": failure.code });
            if let Some(comment) = failure.comment {
                d["requestStatus"]["comment"] = json!(comment);
            }
        }
    }
}

/// A request that succeeded: its `responseData` (none for requests that return nothing) and
/// the events it causes.
#[derive(Default)]
struct Done {
    data: Option<Value>,
    events: Vec<Value>,
    recording_file: Option<String>,
}

impl Done {
    fn data(data: Value) -> Self {
        Self {
            data: Some(data),
            ..Self::default()
        }
    }

    fn event(mut self, event_type: &str, intent: u64, data: Value) -> Self {
        self.events.push(event_message(event_type, intent, &data));
        self
    }
}

struct Failure {
    code: u16,
    comment: Option<String>,
}

fn fail(code: u16, comment: impl Into<String>) -> Failure {
    Failure {
        code,
        comment: Some(comment.into()),
    }
}

fn not_ready() -> Failure {
    fail(
        status::NOT_READY,
        "OBS is not ready to perform the request.",
    )
}

struct SessionStats {
    incoming: u64,
    outgoing: u64,
}

impl SessionStats {
    fn of(session: &Session) -> Self {
        Self {
            incoming: session.incoming,
            outgoing: session.outgoing,
        }
    }
}

/// `requestData` checks with obs-websocket's codes and comments (`Request.cpp`).
struct Fields<'a> {
    data: Option<&'a Map<String, Value>>,
}

impl<'a> Fields<'a> {
    fn new(data: &'a Value) -> Self {
        Self {
            data: data.as_object(),
        }
    }

    /// Present and not null (`Request::Contains`).
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.data?.get(key).filter(|v| !v.is_null())
    }

    fn required(&self, key: &str) -> Result<&'a Value, Failure> {
        if self.data.is_none() {
            return Err(fail(
                status::MISSING_REQUEST_DATA,
                "Your request data is missing or invalid (non-object)",
            ));
        }
        self.get(key).ok_or_else(|| {
            fail(
                status::MISSING_REQUEST_FIELD,
                format!("Your request is missing the `{key}` field."),
            )
        })
    }

    fn check_string(key: &str, value: &'a Value) -> Result<&'a str, Failure> {
        let text = value.as_str().ok_or_else(|| {
            fail(
                status::INVALID_REQUEST_FIELD_TYPE,
                format!("The field value of `{key}` must be a string."),
            )
        })?;
        if text.is_empty() {
            return Err(fail(
                status::REQUEST_FIELD_EMPTY,
                format!("The field value of `{key}` must not be empty."),
            ));
        }
        Ok(text)
    }

    fn string(&self, key: &str) -> Result<&'a str, Failure> {
        Self::check_string(key, self.required(key)?)
    }

    fn optional_string(&self, key: &str) -> Result<Option<&'a str>, Failure> {
        self.get(key)
            .map(|v| Self::check_string(key, v))
            .transpose()
    }

    fn optional_bool(&self, key: &str) -> Result<Option<bool>, Failure> {
        self.get(key)
            .map(|v| {
                v.as_bool().ok_or_else(|| {
                    fail(
                        status::INVALID_REQUEST_FIELD_TYPE,
                        format!("The field value of `{key}` must be boolean."),
                    )
                })
            })
            .transpose()
    }

    fn check_object(key: &str, value: &'a Value) -> Result<&'a Map<String, Value>, Failure> {
        value.as_object().ok_or_else(|| {
            fail(
                status::INVALID_REQUEST_FIELD_TYPE,
                format!("The field value of `{key}` must be an object."),
            )
        })
    }

    fn object(&self, key: &str) -> Result<&'a Map<String, Value>, Failure> {
        Self::check_object(key, self.required(key)?)
    }

    fn optional_object(&self, key: &str) -> Result<Option<&'a Map<String, Value>>, Failure> {
        self.get(key)
            .map(|v| Self::check_object(key, v))
            .transpose()
    }

    fn check_number(key: &str, value: &Value, min: f64) -> Result<f64, Failure> {
        let number = value.as_f64().ok_or_else(|| {
            fail(
                status::INVALID_REQUEST_FIELD_TYPE,
                format!("The field value of `{key}` must be a number."),
            )
        })?;
        if number < min {
            return Err(fail(
                status::REQUEST_FIELD_OUT_OF_RANGE,
                format!("The field value of `{key}` is below the minimum of `{min:.6}`"),
            ));
        }
        Ok(number)
    }

    fn number(&self, key: &str, min: f64) -> Result<f64, Failure> {
        Self::check_number(key, self.required(key)?, min)
    }

    fn optional_number(&self, key: &str, min: f64) -> Result<Option<f64>, Failure> {
        self.get(key)
            .map(|v| Self::check_number(key, v, min))
            .transpose()
    }

    /// `Request::ValidateSource`: by name if a usable name is given, else by UUID.
    fn source(&self, state: &ObsState, name_key: &str, uuid_key: &str) -> Result<Source, Failure> {
        if let Ok(name) = self.string(name_key) {
            return find_source(state, |source_name, _| source_name == name).ok_or_else(|| {
                fail(
                    status::RESOURCE_NOT_FOUND,
                    format!("No source was found by the name of `{name}`."),
                )
            });
        }
        if let Ok(uuid) = self.string(uuid_key) {
            return find_source(state, |_, source_uuid| source_uuid == uuid).ok_or_else(|| {
                fail(
                    status::RESOURCE_NOT_FOUND,
                    format!("No source was found by the UUID of `{uuid}`."),
                )
            });
        }
        Err(fail(
            status::MISSING_REQUEST_FIELD,
            format!(
                "Your request must contain at least one of the following fields: `{name_key}` \
                 or `{uuid_key}`."
            ),
        ))
    }

    /// The scene named by `sceneName`/`sceneUuid`.
    fn scene(&self, state: &ObsState) -> Result<String, Failure> {
        match self.source(state, "sceneName", "sceneUuid")? {
            Source::Scene(name) => Ok(name),
            Source::Input(_) => Err(fail(
                status::INVALID_RESOURCE_TYPE,
                "The specified source is not a scene.",
            )),
        }
    }

    /// The index of the input named by `inputName`/`inputUuid`.
    fn input(&self, state: &ObsState) -> Result<usize, Failure> {
        match self.source(state, "inputName", "inputUuid")? {
            Source::Input(index) => Ok(index),
            Source::Scene(_) => Err(fail(
                status::INVALID_RESOURCE_TYPE,
                "The specified source is not an input.",
            )),
        }
    }

    /// The index of the input behind `sceneItemId` in the given scene.
    fn scene_item(&self, state: &ObsState) -> Result<usize, Failure> {
        let scene = self.scene(state)?;
        let id = self.number("sceneItemId", 0.0)?;
        state
            .inputs
            .iter()
            .position(|i| i.scene == scene && i.scene_item_id as f64 == id)
            .ok_or_else(|| {
                fail(
                    status::RESOURCE_NOT_FOUND,
                    format!("No scene items were found in scene `{scene}` with the ID `{id}`."),
                )
            })
    }
}

/// Scenes and inputs are both sources in OBS and share one namespace.
enum Source {
    Scene(String),
    Input(usize),
}

fn find_source(state: &ObsState, matches: impl Fn(&str, &str) -> bool) -> Option<Source> {
    if let Some(scene) = state
        .scenes
        .iter()
        .find(|s| matches(s, &ObsState::scene_uuid(s)))
    {
        return Some(Source::Scene(scene.clone()));
    }
    state
        .inputs
        .iter()
        .position(|i| matches(&i.name, &i.uuid))
        .map(Source::Input)
}

/// Runs one request against the state, as obs-websocket's `RequestHandler` would.
fn process(
    state: &mut ObsState,
    session: &SessionStats,
    request_type: &str,
    data: &Value,
) -> Result<Done, Failure> {
    let fields = Fields::new(data);
    match request_type {
        "GetVersion" => Ok(Done::data(json!({
            "obsVersion": state.obs_version,
            "obsWebSocketVersion": state.websocket_version,
            "rpcVersion": RPC_VERSION,
            "availableRequests": AVAILABLE_REQUESTS,
            "supportedImageFormats":
                ["bmp", "jpeg", "jpg", "pbm", "pgm", "png", "ppm", "xbm", "xpm"],
            "platform": "debian",
            "platformDescription": "Debian GNU/Linux 13 (trixie)",
        }))),
        "GetStats" => Ok(Done::data(json!({
            "cpuUsage": state.cpu_usage,
            "memoryUsage": state.memory_usage,
            "availableDiskSpace": state.available_disk_space,
            "activeFps": state.active_fps,
            "averageFrameRenderTime": state.average_frame_render_time,
            "renderSkippedFrames": state.render_skipped_frames,
            "renderTotalFrames": state.render_total_frames,
            "outputSkippedFrames": state.encoder_skipped_frames,
            "outputTotalFrames": state.encoder_total_frames,
            "webSocketSessionIncomingMessages": session.incoming,
            "webSocketSessionOutgoingMessages": session.outgoing,
        }))),
        "GetSceneList" => {
            // `ArrayHelper::GetSceneList` reverses the frontend's list: index 0 is the bottom
            // scene of the dock.
            let scenes: Vec<Value> = state
                .scenes
                .iter()
                .rev()
                .enumerate()
                .map(|(index, name)| {
                    json!({
                        "sceneIndex": index,
                        "sceneName": name,
                        "sceneUuid": ObsState::scene_uuid(name),
                    })
                })
                .collect();
            Ok(Done::data(json!({
                "currentProgramSceneName": state.program_scene,
                "currentProgramSceneUuid": ObsState::scene_uuid(&state.program_scene),
                "currentPreviewSceneName": null,
                "currentPreviewSceneUuid": null,
                "scenes": scenes,
            })))
        }
        "GetCurrentProgramScene" => {
            let uuid = ObsState::scene_uuid(&state.program_scene);
            Ok(Done::data(json!({
                "sceneName": state.program_scene,
                "sceneUuid": uuid,
                "currentProgramSceneName": state.program_scene,
                "currentProgramSceneUuid": uuid,
            })))
        }
        "SetCurrentProgramScene" => {
            let scene = fields.scene(state)?;
            let done = Done::default();
            if scene == state.program_scene {
                return Ok(done);
            }
            state.program_scene = scene.clone();
            Ok(done.event(
                "CurrentProgramSceneChanged",
                intent::SCENES,
                json!({ "sceneName": scene, "sceneUuid": ObsState::scene_uuid(&scene) }),
            ))
        }
        "GetInputList" => {
            let kind = fields.optional_string("inputKind")?;
            let inputs: Vec<Value> = state
                .inputs
                .iter()
                .filter(|i| kind.is_none_or(|k| k == i.kind))
                .map(|i| {
                    json!({
                        "inputName": i.name,
                        "inputUuid": i.uuid,
                        "inputKind": i.kind,
                        "unversionedInputKind": unversioned(&i.kind),
                        "inputKindCaps": input_caps(&i.kind),
                    })
                })
                .collect();
            Ok(Done::data(json!({ "inputs": inputs })))
        }
        "GetInputKindList" => {
            let unversioned_kinds = fields.optional_bool("unversioned")?.unwrap_or(false);
            let kinds: Vec<&str> = state
                .input_kinds()
                .map(|k| if unversioned_kinds { unversioned(k) } else { k })
                .collect();
            Ok(Done::data(json!({ "inputKinds": kinds })))
        }
        "CreateInput" => create_input(state, &fields),
        "RemoveInput" => {
            let index = fields.input(state)?;
            let input = state.inputs.remove(index);
            Ok(Done::default()
                .event(
                    "SceneItemRemoved",
                    intent::SCENE_ITEMS,
                    json!({
                        "sceneName": input.scene,
                        "sceneUuid": ObsState::scene_uuid(&input.scene),
                        "sourceName": input.name,
                        "sourceUuid": input.uuid,
                        "sceneItemId": input.scene_item_id,
                    }),
                )
                .event(
                    "InputRemoved",
                    intent::INPUTS,
                    json!({ "inputName": input.name, "inputUuid": input.uuid }),
                ))
        }
        "GetInputSettings" => {
            let input = &state.inputs[fields.input(state)?];
            Ok(Done::data(json!({
                "inputSettings": input.settings,
                "inputKind": input.kind,
            })))
        }
        "SetInputSettings" => {
            let index = fields.input(state)?;
            let settings = fields.object("inputSettings")?;
            let overlay = fields.optional_bool("overlay")?.unwrap_or(true);
            let input = &mut state.inputs[index];
            if overlay {
                let mut merged = input.settings.as_object().cloned().unwrap_or_default();
                merged.extend(settings.clone());
                input.settings = Value::Object(merged);
            } else {
                input.settings = Value::Object(settings.clone());
            }
            input.refresh_size();
            Ok(Done::default().event(
                "InputSettingsChanged",
                intent::INPUTS,
                json!({
                    "inputName": input.name,
                    "inputUuid": input.uuid,
                    "inputSettings": input.settings,
                }),
            ))
        }
        "GetSceneItemList" => {
            let scene = fields.scene(state)?;
            let mut items: Vec<&FakeInput> =
                state.inputs.iter().filter(|i| i.scene == scene).collect();
            items.sort_by_key(|i| i.scene_item_id);
            let items: Vec<Value> = items
                .iter()
                .enumerate()
                .map(|(index, i)| {
                    json!({
                        "sceneItemId": i.scene_item_id,
                        "sceneItemIndex": index,
                        "sceneItemEnabled": i.enabled,
                        "sceneItemLocked": false,
                        "sceneItemTransform": i.transform,
                        "sceneItemBlendMode": "OBS_BLEND_NORMAL",
                        "sourceName": i.name,
                        "sourceUuid": i.uuid,
                        "sourceType": "OBS_SOURCE_TYPE_INPUT",
                        "inputKind": i.kind,
                        "isGroup": null,
                    })
                })
                .collect();
            Ok(Done::data(json!({ "sceneItems": items })))
        }
        "GetSceneItemId" => {
            let scene = fields.scene(state)?;
            let source = fields.string("sourceName")?;
            let offset = fields.optional_number("searchOffset", -1.0)?.unwrap_or(0.0);
            // One item per input, so offsets 0 and -1 (the last match) can find it.
            state
                .inputs
                .iter()
                .find(|i| i.scene == scene && i.name == source && (offset == 0.0 || offset == -1.0))
                .map(|i| Done::data(json!({ "sceneItemId": i.scene_item_id })))
                .ok_or_else(|| {
                    fail(
                        status::RESOURCE_NOT_FOUND,
                        "No scene items were found in the specified scene by that name or offset.",
                    )
                })
        }
        "GetSceneItemTransform" => {
            let input = &state.inputs[fields.scene_item(state)?];
            Ok(Done::data(json!({ "sceneItemTransform": input.transform })))
        }
        "SetSceneItemTransform" => {
            let index = fields.scene_item(state)?;
            let changes = fields.object("sceneItemTransform")?;
            let input = &mut state.inputs[index];
            if let Some(transform) = input.transform.as_object_mut() {
                for (key, value) in changes {
                    if SETTABLE_TRANSFORM_KEYS.contains(&key.as_str()) {
                        transform.insert(key.clone(), value.clone());
                    }
                }
            }
            input.refresh_size();
            Ok(Done::default().event(
                "SceneItemTransformChanged",
                intent::SCENE_ITEM_TRANSFORM_CHANGED,
                json!({
                    "sceneName": input.scene,
                    "sceneUuid": ObsState::scene_uuid(&input.scene),
                    "sceneItemId": input.scene_item_id,
                    "sceneItemTransform": input.transform,
                }),
            ))
        }
        "GetStreamStatus" => Ok(Done::data(json!({
            "outputActive": state.streaming,
            "outputReconnecting": state.reconnecting,
            "outputTimecode": timecode(state.stream_duration_ms),
            "outputDuration": state.stream_duration_ms,
            "outputCongestion": state.congestion,
            "outputBytes": state.output_bytes,
            "outputSkippedFrames": state.skipped_frames,
            "outputTotalFrames": state.total_frames,
        }))),
        "StartStream" => {
            if state.streaming {
                return Err(Failure {
                    code: status::OUTPUT_RUNNING,
                    comment: None,
                });
            }
            state.streaming = true;
            state.output_bytes = 0;
            state.skipped_frames = 0;
            state.total_frames = 0;
            state.stream_duration_ms = 0;
            Ok(Done::default()
                .event(
                    "StreamStateChanged",
                    intent::OUTPUTS,
                    output_state(false, "STARTING"),
                )
                .event(
                    "StreamStateChanged",
                    intent::OUTPUTS,
                    output_state(true, "STARTED"),
                ))
        }
        "StopStream" => {
            if !state.streaming {
                return Err(Failure {
                    code: status::OUTPUT_NOT_RUNNING,
                    comment: None,
                });
            }
            state.streaming = false;
            Ok(Done::default()
                .event(
                    "StreamStateChanged",
                    intent::OUTPUTS,
                    output_state(false, "STOPPING"),
                )
                .event(
                    "StreamStateChanged",
                    intent::OUTPUTS,
                    output_state(false, "STOPPED"),
                ))
        }
        "GetRecordStatus" => Ok(Done::data(json!({
            "outputActive": state.recording,
            "outputPaused": false,
            "outputTimecode": timecode(state.record_duration_ms),
            "outputDuration": state.record_duration_ms,
            "outputBytes": state.record_bytes,
        }))),
        "StartRecord" => {
            if state.recording {
                return Err(Failure {
                    code: status::OUTPUT_RUNNING,
                    comment: None,
                });
            }
            let path = format!(
                "{}/fake-recording-{}.mkv",
                state.record_dir.trim_end_matches('/'),
                state.recordings.len() + 1
            );
            state.recording = true;
            state.record_path = Some(path.clone());
            state.record_bytes = 0;
            state.record_duration_ms = 0;
            let mut done = Done::default()
                .event(
                    "RecordStateChanged",
                    intent::OUTPUTS,
                    record_state(false, "STARTING", None),
                )
                .event(
                    "RecordStateChanged",
                    intent::OUTPUTS,
                    record_state(true, "STARTED", Some(&path)),
                );
            done.recording_file = Some(path);
            Ok(done)
        }
        "StopRecord" => {
            let Some(path) = state.record_path.take().filter(|_| state.recording) else {
                return Err(Failure {
                    code: status::OUTPUT_NOT_RUNNING,
                    comment: None,
                });
            };
            state.recording = false;
            state.recordings.push(path.clone());
            Ok(Done::data(json!({ "outputPath": path }))
                .event(
                    "RecordStateChanged",
                    intent::OUTPUTS,
                    record_state(false, "STOPPING", None),
                )
                .event(
                    "RecordStateChanged",
                    intent::OUTPUTS,
                    record_state(false, "STOPPED", Some(&path)),
                ))
        }
        "GetRecordDirectory" => Ok(Done::data(json!({ "recordDirectory": state.record_dir }))),
        _ => Err(fail(
            status::UNKNOWN_REQUEST_TYPE,
            "Your request type is not valid.",
        )),
    }
}

fn create_input(state: &mut ObsState, fields: &Fields<'_>) -> Result<Done, Failure> {
    let scene = fields.scene(state)?;
    let name = fields.string("inputName")?;
    let kind = fields.string("inputKind")?;
    if find_source(state, |source_name, _| source_name == name).is_some() {
        return Err(fail(
            status::RESOURCE_ALREADY_EXISTS,
            "A source already exists by that input name.",
        ));
    }
    if !state.input_kinds().any(|k| k == kind) {
        return Err(fail(
            status::INVALID_INPUT_KIND,
            "Your specified input kind is not supported by OBS. Check that your specified kind is \
             properly versioned and that any necessary plugins are loaded.",
        ));
    }
    let settings = fields.optional_object("inputSettings")?.cloned();
    let enabled = fields.optional_bool("sceneItemEnabled")?.unwrap_or(true);
    let scene_item_id = state
        .inputs
        .iter()
        .map(|i| i.scene_item_id)
        .max()
        .unwrap_or(0)
        + 1;
    let mut input = FakeInput::new(
        name,
        kind,
        &scene,
        scene_item_id,
        Value::Object(settings.unwrap_or_default()),
    );
    input.enabled = enabled;
    // A new source gets a fresh UUID even if an earlier one had the same name and item ID.
    input.uuid = uuid_from(&random_token());
    let index = state.inputs.iter().filter(|i| i.scene == scene).count();
    let done = Done::data(json!({ "inputUuid": input.uuid, "sceneItemId": scene_item_id }))
        .event(
            "InputCreated",
            intent::INPUTS,
            json!({
                "inputName": input.name,
                "inputUuid": input.uuid,
                "inputKind": input.kind,
                "unversionedInputKind": unversioned(&input.kind),
                "inputKindCaps": input_caps(&input.kind),
                "inputSettings": input.settings,
                "defaultInputSettings": default_settings(&input.kind),
            }),
        )
        .event(
            "SceneItemCreated",
            intent::SCENE_ITEMS,
            json!({
                "sceneName": scene,
                "sceneUuid": ObsState::scene_uuid(&scene),
                "sourceName": input.name,
                "sourceUuid": input.uuid,
                "sceneItemId": scene_item_id,
                "sceneItemIndex": index,
            }),
        );
    state.inputs.push(input);
    Ok(done)
}

/// The keys `SetSceneItemTransform` changes; the size fields are derived.
const SETTABLE_TRANSFORM_KEYS: &[&str] = &[
    "positionX",
    "positionY",
    "rotation",
    "scaleX",
    "scaleY",
    "alignment",
    "boundsType",
    "boundsAlignment",
    "boundsWidth",
    "boundsHeight",
    "cropLeft",
    "cropRight",
    "cropTop",
    "cropBottom",
    "cropToBounds",
];

/// A new scene item's transform in OBS: top left, unscaled, aligned top-left (5), no bounds.
fn default_transform() -> Value {
    json!({
        "sourceWidth": 0.0,
        "sourceHeight": 0.0,
        "positionX": 0.0,
        "positionY": 0.0,
        "rotation": 0.0,
        "scaleX": 1.0,
        "scaleY": 1.0,
        "width": 0.0,
        "height": 0.0,
        "alignment": 5,
        "boundsType": "OBS_BOUNDS_NONE",
        "boundsAlignment": 0,
        "boundsWidth": 0.0,
        "boundsHeight": 0.0,
        "cropLeft": 0,
        "cropRight": 0,
        "cropTop": 0,
        "cropBottom": 0,
        "cropToBounds": false,
    })
}

fn default_settings(kind: &str) -> Value {
    match kind {
        "browser_source" => json!({
            "url": "https://obsproject.com/browser-source",
            "width": 800,
            "height": 600,
            "fps": 30,
            "fps_custom": false,
            "reroute_audio": false,
            "restart_when_active": false,
            "shutdown": false,
            "webpage_control_level": 1,
        }),
        _ => json!({}),
    }
}

/// `obs_source_get_output_flags`, roughly: video (1), audio (2), async (4), custom draw (8).
fn input_caps(kind: &str) -> u32 {
    match kind {
        "browser_source" => 1 | 2 | 8,
        "ffmpeg_source" | "v4l2_input" => 1 | 2 | 4,
        "pulse_input_capture" | "pulse_output_capture" => 2,
        _ => 1,
    }
}

/// The kind without its `_vN` suffix, as `obs_source_get_unversioned_id` gives it.
fn unversioned(kind: &str) -> &str {
    match kind.rsplit_once("_v") {
        Some((base, version))
            if !version.is_empty() && version.chars().all(|c| c.is_ascii_digit()) =>
        {
            base
        }
        _ => kind,
    }
}

fn output_state(active: bool, state: &str) -> Value {
    json!({
        "outputActive": active,
        "outputState": format!("OBS_WEBSOCKET_OUTPUT_{state}"),
    })
}

/// `RecordStateChanged` carries the path on STARTED and STOPPED, `null` otherwise.
fn record_state(active: bool, state: &str, path: Option<&str>) -> Value {
    let mut data = output_state(active, state);
    data["outputPath"] = json!(path);
    data
}

/// `HH:MM:SS.mmm`, the `outputTimecode` format obws parses.
fn timecode(ms: u64) -> String {
    let (h, m, s, ms) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    format!("{h:02}:{m:02}:{s:02}.{ms:03}")
}

/// A version-4-shaped UUID derived from `seed`, so names map to stable UUIDs.
fn uuid_from(seed: &str) -> String {
    let fnv = |salt: u64| {
        seed.bytes().fold(0xcbf2_9ce4_8422_2325 ^ salt, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    let bytes = ((u128::from(fnv(0)) << 64) | u128::from(fnv(0x9e37_79b9_7f4a_7c15)))
        & !(0xf000_u128 << 64)
        & !(0xc000_u128 << 48);
    let bytes = bytes | (0x4000_u128 << 64) | (0x8000_u128 << 48);
    let hex = format!("{bytes:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// 32 unpredictable-enough bytes in base64, the shape of obs-websocket's salts and challenges.
fn random_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut bytes = Vec::with_capacity(32);
    for _ in 0..4 {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        bytes.extend_from_slice(&hasher.finish().to_le_bytes());
    }
    BASE64.encode(bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{closed, next_json};

    type Client = crate::Socket;

    async fn connect(fake: &FakeObs) -> (Client, Value) {
        let (mut ws, _) =
            tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}", fake.port()))
                .await
                .expect("the fake accepts a websocket");
        let hello = next_json(&mut ws).await;
        (ws, hello)
    }

    async fn send_json(ws: &mut Client, message: Value) {
        ws.send(Message::text(message.to_string())).await.unwrap();
    }

    async fn identify(
        fake: &FakeObs,
        password: Option<&str>,
        subscriptions: Option<u64>,
    ) -> Client {
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
        assert_eq!(unversioned("color_source_v3"), "color_source");
        assert_eq!(unversioned("browser_source"), "browser_source");
        assert_eq!(timecode(3_723_004), "01:02:03.004");
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
}
