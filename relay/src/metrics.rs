//! `GET /metrics`: what a relay operator graphs and alerts on, in the Prometheus text format.
//!
//! Totals across tunnels only: a per-tunnel label would grow with every tunnel and publish
//! which ones are busy. Without `--metrics-token` the page is served only to a client on the
//! relay's own machine (as [`crate::hooks::client_ip`] sees it, so behind a trusted proxy a
//! public visitor is not local); with a token, to whoever presents it as a bearer.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::Relay;
use crate::error::ApiError;

/// The relay's counters.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    stored: AtomicU64,
    stored_bytes: AtomicU64,
    evicting_inserts: AtomicU64,
    sent: AtomicU64,
    links_opened: AtomicU64,
    refused: Mutex<BTreeMap<&'static str, u64>>,
    /// Moderator door answers by status.
    door: Mutex<BTreeMap<u16, u64>>,
    /// Bytes the engines sent for moderators that are not yet written to them.
    pub(crate) moderator_pending: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

impl Metrics {
    pub(crate) fn stored(&self, bytes: usize, evicted: bool) {
        self.stored.fetch_add(1, Ordering::Relaxed);
        self.stored_bytes
            .fetch_add(u64::try_from(bytes).unwrap_or(u64::MAX), Ordering::Relaxed);
        if evicted {
            self.evicting_inserts.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn refused(&self, code: &'static str) {
        let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        *refused.entry(code).or_default() += 1;
    }

    pub(crate) fn sent(&self, n: u64) {
        self.sent.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn door(&self, status: u16) {
        let mut door = self.door.lock().unwrap_or_else(|p| p.into_inner());
        *door.entry(status).or_default() += 1;
    }

    pub(crate) fn link_opened(&self) {
        self.links_opened.fetch_add(1, Ordering::Relaxed);
    }
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
    );
}

fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
}

/// `GET /metrics`.
pub(crate) async fn metrics(
    State(relay): State<Relay>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let allowed = match &relay.config().metrics_token {
        Some(token) => headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| bool::from(given.as_bytes().ct_eq(token.as_bytes()))),
        None => crate::hooks::client_ip(peer.ip(), &headers, &relay.config().trusted_proxies)
            .is_loopback(),
    };
    if !allowed {
        return Err(ApiError::not_found());
    }
    let buffered = relay
        .readers()
        .read(|c| {
            Ok(c.query_row(
                "SELECT COALESCE(SUM(head_seq - floor_seq), 0), COALESCE(SUM(buffered_bytes), 0)
                 FROM tunnels",
                [],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
            )?)
        })
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    let m = relay.metrics();
    let mut out = String::new();
    counter(
        &mut out,
        "stagehand_relay_webhooks_stored_total",
        "Webhooks stored and answered 202.",
        m.stored.load(Ordering::Relaxed),
    );
    counter(
        &mut out,
        "stagehand_relay_webhook_bytes_stored_total",
        "Body bytes of stored webhooks.",
        m.stored_bytes.load(Ordering::Relaxed),
    );
    let _ = writeln!(
        out,
        "# HELP stagehand_relay_webhooks_refused_total Webhooks refused, by error code.\n\
         # TYPE stagehand_relay_webhooks_refused_total counter"
    );
    for (code, n) in m.refused.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        let _ = writeln!(
            out,
            "stagehand_relay_webhooks_refused_total{{code=\"{code}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP stagehand_relay_moderator_requests_total Moderator door requests (WebSocket opens included), by status.\n\
         # TYPE stagehand_relay_moderator_requests_total counter"
    );
    for (status, n) in m.door.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        let _ = writeln!(
            out,
            "stagehand_relay_moderator_requests_total{{status=\"{status}\"}} {n}"
        );
    }
    gauge(
        &mut out,
        "stagehand_relay_moderator_bytes_pending",
        "Bytes engines sent for moderators and not yet written to them (bounded by each stream's window).",
        u64::try_from(m.moderator_pending.load(Ordering::Relaxed)).unwrap_or(0),
    );
    counter(
        &mut out,
        "stagehand_relay_evicting_stores_total",
        "Stores that evicted older deliveries to stay within a tunnel's buffer bound.",
        m.evicting_inserts.load(Ordering::Relaxed),
    );
    counter(
        &mut out,
        "stagehand_relay_deliveries_sent_total",
        "Deliveries written to engine links (resends included).",
        m.sent.load(Ordering::Relaxed),
    );
    counter(
        &mut out,
        "stagehand_relay_links_opened_total",
        "Engine links accepted.",
        m.links_opened.load(Ordering::Relaxed),
    );
    gauge(
        &mut out,
        "stagehand_relay_tunnels",
        "Tunnels.",
        u64::try_from(relay.tunnel_count()).unwrap_or(0),
    );
    gauge(
        &mut out,
        "stagehand_relay_links_connected",
        "Engine links connected now.",
        u64::try_from(relay.connected_links()).unwrap_or(0),
    );
    gauge(
        &mut out,
        "stagehand_relay_buffered_deliveries",
        "Deliveries stored and not yet acknowledged, all tunnels.",
        u64::try_from(buffered.0).unwrap_or(0),
    );
    gauge(
        &mut out,
        "stagehand_relay_buffered_bytes",
        "Body bytes stored and not yet acknowledged, all tunnels.",
        u64::try_from(buffered.1).unwrap_or(0),
    );
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        out,
    )
        .into_response())
}
