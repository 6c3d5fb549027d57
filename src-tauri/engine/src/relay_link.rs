//! The engine's end of the relay tunnel: one outbound WebSocket that brings in the webhooks
//! the relay received while this machine had no public address.
//!
//! Each delivery goes through [`Engine::webhook_receive`], the same operation as the local
//! `POST /webhooks/*` routes, with the original bytes and headers, so signatures are checked
//! here and never by the relay. The delivery row and the tunnel's cursor are committed in one
//! transaction before the acknowledgement leaves, so a crash at any point means a resend,
//! which the cursor turns into a no-op: nothing the relay answered 202 is lost or doubled.
//! The wire types are in [`stagehand_protocol::relay`].

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine as _;
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde::Serialize;
use stagehand_protocol::relay::{
    CLOSE_REPLACED, CLOSE_UNAUTHORIZED, Delivery, EngineMessage, LAST_SEQ_HEADER, RelayMessage,
    connect_path,
};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::clock::rfc3339;
use crate::webhooks::{WebhookRequest, WebhookVia};
use crate::{Engine, EngineError, Secret};

/// Name of the tunnel secret in the secret store.
pub const SECRET_NAME: &str = "relay-secret";

const BACKOFF_START: Duration = Duration::from_millis(250);
const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// After another engine took the tunnel over, wait this long before trying again, so two
/// machines configured with the same tunnel do not keep knocking each other off.
const REPLACED_BACKOFF: Duration = Duration::from_secs(30);
const PING_EVERY: Duration = Duration::from_secs(15);
/// A link that has said nothing (no frame, no pong) for this long is dead.
const SILENCE_LIMIT: Duration = Duration::from_secs(45);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most deliveries committed in one transaction. The relay keeps up to its window (1,000
/// by default) unacknowledged on the wire; a run is what has already arrived.
const MAX_RUN: usize = 256;
/// Moderator stream messages queued for the relay before a stream waits.
const DOOR_QUEUE: usize = 256;

/// One frame from the relay, read.
enum Frame {
    Message(RelayMessage),
    /// Pings, pongs, binary frames and unreadable text: nothing to answer.
    Skip,
    End(Ended),
}

impl Frame {
    fn read(frame: Option<Result<tungstenite::Message, tungstenite::Error>>) -> Frame {
        match frame {
            None => Frame::End(Ended::Lost("the relay closed the connection".into())),
            Some(Err(e)) => Frame::End(Ended::Lost(format!(
                "the connection to the relay broke ({e})"
            ))),
            Some(Ok(tungstenite::Message::Text(text))) => {
                match serde_json::from_str::<RelayMessage>(&text) {
                    Ok(message) => Frame::Message(message),
                    Err(e) => {
                        tracing::warn!(error = %e, "unreadable message from the relay; ignored");
                        Frame::Skip
                    }
                }
            }
            Some(Ok(tungstenite::Message::Close(frame))) => {
                Frame::End(match frame.map(|f| f.code) {
                    Some(CloseCode::Library(CLOSE_REPLACED)) => Ended::Replaced,
                    Some(CloseCode::Library(CLOSE_UNAUTHORIZED)) => Ended::Refused,
                    _ => Ended::Lost("the relay closed the connection".into()),
                })
            }
            // Pings are answered by tungstenite; pongs just count as heard.
            Some(Ok(_)) => Frame::Skip,
        }
    }
}

/// Where the link stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RelayState {
    /// No relay configured.
    Disabled,
    /// Connecting (first attempt or after a loss).
    Connecting,
    /// Connected and receiving.
    Linked,
    /// Not connected; retrying.
    Lost,
}

/// Deliveries the relay dropped because its buffer for this tunnel was full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Eviction {
    /// How many.
    pub count: u64,
    /// The first dropped sequence.
    pub first_seq: u64,
    /// The last dropped sequence.
    pub last_seq: u64,
}

/// `GET /api/relay/status` and the `relay.status` event.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayStatus {
    /// Where the link stands.
    pub state: RelayState,
    /// The relay's base URL.
    pub url: Option<String>,
    /// The tunnel id.
    pub tunnel_id: Option<String>,
    /// The highest delivery sequence committed here.
    pub last_seq: u64,
    /// What went wrong last, in plain words.
    pub last_error: Option<String>,
    /// Since when the state holds (RFC 3339).
    pub since: String,
    /// Deliveries the relay reported lost since this engine started (summed), if any.
    pub evicted: Option<Eviction>,
}

/// The link's shared state, held by the engine.
#[derive(Debug)]
pub(crate) struct RelayLink {
    status: Mutex<RelayStatus>,
    started: AtomicBool,
    /// Cuts a wait between attempts short (a new secret was saved).
    wake: tokio::sync::Notify,
}

impl RelayLink {
    pub(crate) fn new(config: &crate::config::RelayConfig, now_ms: i64) -> Self {
        let configured = !config.url.trim().is_empty() && !config.tunnel_id.trim().is_empty();
        Self {
            status: Mutex::new(RelayStatus {
                state: if configured {
                    RelayState::Connecting
                } else {
                    RelayState::Disabled
                },
                url: configured.then(|| config.url.trim().trim_end_matches('/').to_owned()),
                tunnel_id: configured.then(|| config.tunnel_id.trim().to_owned()),
                last_seq: 0,
                last_error: None,
                since: rfc3339(now_ms),
                evicted: None,
            }),
            started: AtomicBool::new(false),
            wake: tokio::sync::Notify::new(),
        }
    }

    fn update(&self, f: impl FnOnce(&mut RelayStatus)) -> RelayStatus {
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut status);
        status.clone()
    }
}

/// A relay setting was refused.
#[derive(Debug, thiserror::Error)]
pub enum RelayLinkError {
    /// The value is not acceptable.
    #[error("{0}")]
    Invalid(String),
}

/// The TLS settings for an `https://` relay: the public web roots, plus the CAs in `ca_file`
/// when one is configured. Certificates and names are verified; there is no way to turn
/// that off.
fn tls_config(ca_file: &str) -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let ca_file = ca_file.trim();
    if !ca_file.is_empty() {
        let certs = CertificateDer::pem_file_iter(ca_file)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("relay.ca_file {ca_file} cannot be read: {e}"))?;
        if certs.is_empty() {
            return Err(format!("relay.ca_file {ca_file} holds no certificate"));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("relay.ca_file {ca_file}: {e}"))?;
        }
    }
    // ring rather than aws-lc-rs keeps the build free of a large C library; rustls 0.23.48
    // deprecated ring's provider because it lacks post-quantum key exchange, which matters
    // for long-lived secrets recorded today. The link carries webhooks that are stale within
    // minutes and a tunnel secret that can be rotated; switch to aws-lc-rs when the build
    // can afford it.
    #[allow(deprecated)]
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(std::sync::Arc::new(config))
}

/// Why one connection ended.
enum Ended {
    /// The relay or the network dropped it.
    Lost(String),
    /// Another engine connected to the same tunnel.
    Replaced,
    /// The relay refused the tunnel id or secret.
    Refused,
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl Engine {
    /// The relay link's status.
    pub fn relay_status(&self) -> RelayStatus {
        self.inner
            .relay
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Starts the relay link in the background when a relay is configured (once; later calls
    /// do nothing). Never blocks and never fails: problems show in [`Engine::relay_status`].
    pub fn relay_start(&self) {
        let link = &self.inner.relay;
        if self.relay_status().state == RelayState::Disabled
            || link.started.swap(true, Ordering::SeqCst)
        {
            return;
        }
        tokio::spawn(self.clone().relay_supervise());
    }

    fn relay_set(&self, f: impl FnOnce(&mut RelayStatus)) {
        let status = self.inner.relay.update(f);
        self.events().publish(
            "relay.status",
            serde_json::to_value(status).unwrap_or_default(),
        );
    }

    async fn relay_secret(&self) -> Option<Secret> {
        if let Some(secret) = &self.config().relay_secret {
            return Some(secret.clone());
        }
        match self.secrets().get(SECRET_NAME).await {
            Ok(secret) => secret,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the relay secret");
                None
            }
        }
    }

    async fn relay_supervise(self) {
        let status = self.relay_status();
        let (Some(url), Some(tunnel)) = (status.url, status.tunnel_id) else {
            return;
        };
        let mut backoff = BACKOFF_START;
        loop {
            let ended = match self.relay_connect(&url, &tunnel).await {
                Ok(socket) => {
                    backoff = BACKOFF_START;
                    let now = self.now_ms();
                    self.relay_set(|s| {
                        s.state = RelayState::Linked;
                        s.last_error = None;
                        s.since = rfc3339(now);
                    });
                    tracing::info!(relay = %url, tunnel = %tunnel, "linked to the relay");
                    self.relay_run(socket, &tunnel).await
                }
                Err(ended) => ended,
            };
            let (words, wait) = match ended {
                Ended::Lost(words) => {
                    let wait = crate::obs::jitter(backoff);
                    backoff = (backoff * 2).min(BACKOFF_CAP);
                    (words, wait)
                }
                Ended::Replaced => (
                    "another Stagehand connected to this relay tunnel and took it over".to_owned(),
                    REPLACED_BACKOFF,
                ),
                Ended::Refused => (
                    "the relay refused the tunnel id or secret; check them in the settings"
                        .to_owned(),
                    BACKOFF_CAP,
                ),
            };
            tracing::warn!(relay = %url, error = %words, "relay link down");
            let now = self.now_ms();
            self.relay_set(|s| {
                if s.state != RelayState::Lost {
                    s.since = rfc3339(now);
                }
                s.state = RelayState::Lost;
                s.last_error = Some(words);
            });
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.inner.relay.wake.notified() => {}
            }
        }
    }

    /// Saves the tunnel secret in the secret store; the link uses it at once.
    pub async fn relay_set_secret(&self, secret: Secret) -> Result<(), EngineError> {
        let value = secret.expose();
        if value.is_empty() || value.len() > 256 || value.chars().any(char::is_control) {
            return Err(RelayLinkError::Invalid(
                "the relay secret must be 1-256 printable characters".into(),
            )
            .into());
        }
        self.secrets().set(SECRET_NAME, secret).await?;
        self.audit()
            .record(crate::audit::AuditEntry::new(
                "streamer",
                "relay.secret.set",
                crate::audit::Outcome::Ok,
            ))
            .await?;
        self.inner.relay.wake.notify_one();
        Ok(())
    }

    async fn relay_connect(&self, url: &str, tunnel: &str) -> Result<Socket, Ended> {
        let Some(secret) = self.relay_secret().await else {
            return Err(Ended::Lost(
                "no relay secret: set STAGEHAND_RELAY_SECRET or save it in the settings".into(),
            ));
        };
        let last_seq = self
            .relay_last_seq(tunnel)
            .await
            .map_err(|e| Ended::Lost(format!("could not read the relay cursor: {e}")))?;
        self.inner.relay.update(|s| s.last_seq = last_seq);
        let ws_url = match url.split_once("://") {
            Some(("http", rest)) => format!("ws://{rest}"),
            Some(("https", rest)) => format!("wss://{rest}"),
            _ => {
                return Err(Ended::Lost(
                    "relay.url must start with http:// or https://".into(),
                ));
            }
        };
        let tls = tls_config(&self.config().relay.ca_file).map_err(Ended::Lost)?;
        let mut request = format!("{ws_url}{}", connect_path(tunnel))
            .into_client_request()
            .map_err(|e| Ended::Lost(format!("relay.url is not usable: {e}")))?;
        let headers = request.headers_mut();
        let bearer = format!("Bearer {}", secret.expose());
        match (bearer.parse(), last_seq.to_string().parse()) {
            (Ok(auth), Ok(seq)) => {
                headers.insert("authorization", auth);
                headers.insert(LAST_SEQ_HEADER, seq);
            }
            _ => return Err(Ended::Refused),
        }
        // Deliveries and acknowledgements are small frames: Nagle would hold them back.
        let connect = tokio_tungstenite::connect_async_tls_with_config(
            request,
            None,
            true,
            Some(tokio_tungstenite::Connector::Rustls(tls)),
        );
        match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Err(_) => Err(Ended::Lost("the relay did not answer in time".into())),
            Ok(Ok((socket, _))) => Ok(socket),
            Ok(Err(tungstenite::Error::Http(response)))
                if matches!(response.status().as_u16(), 401 | 403 | 404) =>
            {
                Err(Ended::Refused)
            }
            Ok(Err(tungstenite::Error::Url(e))) => {
                Err(Ended::Lost(format!("relay.url is not usable: {e}")))
            }
            Ok(Err(e)) => Err(Ended::Lost(format!("the relay is not reachable ({e})"))),
        }
    }

    /// Serves one connection until it ends.
    ///
    /// Deliveries that are already waiting on the socket are taken together (up to
    /// [`MAX_RUN`]) and committed in one transaction, then acknowledged with one cumulative
    /// `ack`: a backlog drains at the speed of SQLite, not of one round trip per webhook.
    async fn relay_run(&self, socket: Socket, tunnel: &str) -> Ended {
        let (mut tx, mut rx) = socket.split();
        // Moderator streams answer through this queue; dropping the door ends them all.
        let (door_tx, mut door_rx) = tokio::sync::mpsc::channel(DOOR_QUEUE);
        let mut door = crate::relay_door::Door::new(self.clone(), door_tx);
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        let mut heard = tokio::time::Instant::now();
        // A frame read while gathering a run that is not a delivery: handled next.
        let mut held: Option<Frame> = None;
        loop {
            let frame = match held.take() {
                Some(frame) => frame,
                // Biased: what the relay sends (webhooks) is read before moderators' answers
                // are written.
                None => tokio::select! {
                    biased;
                    frame = rx.next() => {
                        heard = tokio::time::Instant::now();
                        Frame::read(frame)
                    }
                    Some(message) = door_rx.recv() => {
                        // Moderator stream messages: what is queued goes out with one flush.
                        let mut next = Some(message);
                        let mut sent = 0;
                        while let Some(message) = next.take() {
                            let Some(text) = crate::relay_door::frame(&message) else {
                                continue;
                            };
                            if tx.feed(tungstenite::Message::Text(text.into())).await.is_err() {
                                return Ended::Lost("the connection to the relay broke".into());
                            }
                            sent += 1;
                            if sent < 64 {
                                next = door_rx.try_recv().ok();
                            }
                        }
                        if tx.flush().await.is_err() {
                            return Ended::Lost("the connection to the relay broke".into());
                        }
                        continue;
                    }
                    _ = ping.tick() => {
                        if heard.elapsed() > SILENCE_LIMIT {
                            return Ended::Lost("the relay stopped answering".into());
                        }
                        if tx.send(tungstenite::Message::Ping(Vec::new().into())).await.is_err() {
                            return Ended::Lost("the connection to the relay broke".into());
                        }
                        continue;
                    }
                },
            };
            let reply = match frame {
                Frame::End(ended) => return ended,
                Frame::Skip => continue,
                Frame::Message(RelayMessage::Delivery(first)) => {
                    let mut run = vec![first];
                    while run.len() < MAX_RUN {
                        let Some(next) = rx.next().now_or_never() else {
                            break;
                        };
                        match Frame::read(next) {
                            Frame::Message(RelayMessage::Delivery(d)) => run.push(d),
                            Frame::Skip => {}
                            other => {
                                held = Some(other);
                                break;
                            }
                        }
                    }
                    match self.relay_deliver(run, tunnel).await {
                        Ok(seq) => EngineMessage::Ack { seq },
                        Err(e) => {
                            // Not committed, so not acknowledged: the relay resends the run
                            // after the reconnect.
                            tracing::error!(error = %e, "could not record relayed webhooks");
                            return Ended::Lost(format!("could not record a webhook: {e}"));
                        }
                    }
                }
                Frame::Message(RelayMessage::Evicted {
                    count,
                    first_seq,
                    last_seq,
                }) => {
                    self.relay_evicted(count, first_seq, last_seq);
                    EngineMessage::EvictedSeen { last_seq }
                }
                Frame::Message(RelayMessage::Welcome { head_seq, .. }) => {
                    tracing::debug!(head_seq, "relay welcome");
                    continue;
                }
                Frame::Message(RelayMessage::Unknown) => continue,
                Frame::Message(stream_message) => {
                    door.handle(stream_message);
                    continue;
                }
            };
            let reply = serde_json::to_string(&reply).unwrap_or_default();
            if tx
                .send(tungstenite::Message::Text(reply.into()))
                .await
                .is_err()
            {
                return Ended::Lost("the connection to the relay broke".into());
            }
        }
    }

    /// Commits a run of relayed webhooks (accepted, refused or duplicate alike) and returns
    /// the sequence to acknowledge.
    async fn relay_deliver(&self, run: Vec<Delivery>, tunnel: &str) -> Result<u64, EngineError> {
        let requests = run
            .into_iter()
            .map(|delivery| {
                let seq = delivery.seq;
                let body =
                    match base64::engine::general_purpose::STANDARD.decode(&delivery.body_b64) {
                        Ok(body) => body,
                        Err(_) => {
                            // A relay bug, not a sender's: record it as refused so it is not resent
                            // forever.
                            tracing::warn!(seq, "relayed body is not base64");
                            b"\x00undecodable relay body".to_vec()
                        }
                    };
                WebhookRequest {
                    path: delivery.path,
                    query: delivery.query,
                    headers: delivery.headers,
                    body,
                    remote_addr: delivery.remote_addr,
                    via: WebhookVia::Relay {
                        tunnel_id: tunnel.to_owned(),
                        seq,
                        delivery_id: delivery.delivery_id,
                        received_at_ms: delivery.received_at_ms,
                    },
                }
            })
            .collect();
        let seq = self.webhook_receive_relayed(tunnel, requests).await?;
        self.inner
            .relay
            .update(|s| s.last_seq = s.last_seq.max(seq));
        Ok(seq)
    }

    fn relay_evicted(&self, count: u64, first_seq: u64, last_seq: u64) {
        tracing::warn!(
            count,
            first_seq,
            last_seq,
            "the relay dropped webhooks while Stagehand was away (its buffer was full)"
        );
        self.metrics().counter_add(
            "stagehand_relay_evicted_total",
            "Webhooks the relay dropped because its buffer was full.",
            &[],
            count,
        );
        self.inner.relay.update(|s| {
            s.evicted = Some(match s.evicted {
                Some(e) => Eviction {
                    count: e.count + count,
                    first_seq: e.first_seq.min(first_seq),
                    last_seq: e.last_seq.max(last_seq),
                },
                None => Eviction {
                    count,
                    first_seq,
                    last_seq,
                },
            });
        });
        self.events().publish(
            "relay.evicted",
            serde_json::json!({ "count": count, "firstSeq": first_seq, "lastSeq": last_seq }),
        );
    }
}
