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

mod handlers;
mod protocol;
mod server;
mod session;
mod state;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

pub use handlers::AVAILABLE_REQUESTS;
pub use protocol::{auth_string, close, intent, op, status};
pub use state::{FakeInput, ObsState};

use protocol::{event_message, random_token};
use server::{Inner, Push, Shared, accept_loop, lock};

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
