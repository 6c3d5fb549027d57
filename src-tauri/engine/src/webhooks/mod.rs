//! Incoming webhooks: TradingView alerts and the streamer's own named endpoints, turned into
//! overlay alerts (and chart points).
//!
//! One operation, [`Engine::webhook_receive`], serves every door: the local HTTP routes
//! (`POST /webhooks/...`) and the relay link, which forwards webhooks sent to the streamer's
//! public relay URL. It authenticates, validates and records the delivery, then shows it:
//!
//! 1. Every delivery that reaches the engine becomes a row in `webhook_deliveries`, accepted
//!    or refused with a stable reason code. A relay delivery's row and the relay cursor are
//!    written in one transaction, so the relay is acknowledged exactly for what is committed and
//!    a refused delivery is acknowledged too (resending it would be refused again forever).
//! 2. An accepted delivery is committed with `announced = 0` *before* its `alert.show` (and
//!    `chart.update`) is pushed, and marked announced when a page reports it has the alert
//!    (`alert.seen`). At start, accepted but unannounced
//!    deliveries are announced again and held for pages that connect soon after
//!    ([`Engine::overlay_backlog`]). The alert id is derived from the delivery row
//!    (`al_wh_{id}`), and overlay pages ignore an alert id they have already shown, so a page
//!    sees each alert once.
//! 3. Idempotency keys (`X-Idempotency-Key`, Standard Webhooks' `webhook-id`, or the relay's
//!    delivery id) of accepted deliveries are kept for `webhooks.idempotency_hours` (≥ 72):
//!    a repeat is a duplicate and changes nothing.
//!
//! Secrets (TradingView URL token, HMAC secret, passphrase; each custom endpoint's `whsec_`
//! key) live in the secret store and travel as [`Secret`]; neither they nor the raw body nor
//! the query string are stored with deliveries or logged.

mod custom;
mod template;
mod tradingview;

use std::sync::Arc;

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

pub use custom::{CustomEndpoint, NewCustomEndpoint, verify_standard_webhook};
pub use tradingview::{
    TradingViewAuth, TradingViewSecretKind, TradingViewSecrets, TradingViewSettings,
};

use crate::clock::rfc3339;
use crate::overlays::{AlertRequest, ChartPoint, ChartUpdate, OverlayError};
use crate::store::StoreError;
use crate::{Engine, EngineError, Secret};

/// Largest webhook body accepted, from any door (bytes).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The longest path or idempotency key looked at.
const MAX_KEY_CHARS: usize = 200;

/// How many refused deliveries are kept (accepted ones are kept for the idempotency period).
const REFUSED_KEPT: i64 = 1000;

/// Errors of the streamer's webhook settings operations (not of receiving: a refused webhook
/// is an [`WebhookOutcome::Refused`], not an error).
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// A field is missing or out of range.
    #[error("{0}")]
    Invalid(String),
    /// No custom endpoint with that name.
    #[error("no webhook endpoint with that name")]
    NotFound,
    /// A custom endpoint with that name exists already.
    #[error("a webhook endpoint with that name exists already")]
    Exists,
    /// The configured number of custom endpoints exists already.
    #[error("you already have {0} webhook endpoints, the most allowed; delete one first")]
    LimitReached(u32),
}

/// How a webhook reached the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookVia {
    /// Straight to the local HTTP server.
    Local,
    /// Through the relay tunnel.
    Relay {
        /// The tunnel it came through.
        tunnel_id: String,
        /// The relay's per-tunnel sequence number (from 1, no gaps).
        seq: u64,
        /// The relay's stable delivery id; the idempotency key when the sender gave none.
        delivery_id: String,
        /// When the relay received it (the relay's clock, ms since the epoch).
        received_at_ms: i64,
    },
}

/// A webhook as it arrived: the raw bytes and the headers, so signatures are checked on the
/// original body. `Debug` shows neither the query (it may hold the URL token) nor the body.
pub struct WebhookRequest {
    /// The engine path, with or without a leading slash: `webhooks/tradingview` or
    /// `webhooks/custom/{name}`.
    pub path: String,
    /// The query string without `?` (may be empty).
    pub query: String,
    /// Headers with lower-case names.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
    /// The sender's address, when known.
    pub remote_addr: Option<String>,
    /// Which door.
    pub via: WebhookVia,
}

impl std::fmt::Debug for WebhookRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRequest")
            .field("path", &self.path)
            .field("query", &"[redacted]")
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("body_len", &self.body.len())
            .field("remote_addr", &self.remote_addr)
            .field("via", &self.via)
            .finish()
    }
}

impl WebhookRequest {
    /// The first header called `name` (lower-case).
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first query parameter called `name`.
    fn query_param(&self, name: &str) -> Option<String> {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&self.query)
            .ok()?
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// Why a webhook was refused; the stable code clients and the deliveries list show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    /// No endpoint at that path (or no custom endpoint with that name).
    UnknownWebhook,
    /// The request came from a web page (it carries `Origin`).
    OriginNotAllowed,
    /// The body is larger than [`MAX_BODY_BYTES`].
    PayloadTooLarge,
    /// No credential at all (no signature, token or passphrase).
    WebhookAuthRequired,
    /// A signature was sent and does not match (or no secret to check it is configured).
    InvalidSignature,
    /// The URL token is wrong.
    InvalidToken,
    /// The passphrase is wrong (or none is configured).
    InvalidPassphrase,
    /// The Standard Webhooks timestamp is more than five minutes away from now.
    StaleTimestamp,
    /// A content type the endpoint does not read.
    UnsupportedMediaType,
    /// The body should be JSON and is not.
    InvalidJson,
    /// A field has the wrong type or size.
    InvalidWebhook,
}

impl RefusalCode {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownWebhook => "unknown_webhook",
            Self::OriginNotAllowed => "origin_not_allowed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::WebhookAuthRequired => "webhook_auth_required",
            Self::InvalidSignature => "invalid_signature",
            Self::InvalidToken => "invalid_token",
            Self::InvalidPassphrase => "invalid_passphrase",
            Self::StaleTimestamp => "stale_timestamp",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::InvalidJson => "invalid_json",
            Self::InvalidWebhook => "invalid_webhook",
        }
    }
}

/// A refusal: code, plain message, and the offending field for `invalid_webhook`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookRefusal {
    /// Stable code.
    pub code: RefusalCode,
    /// Plain message (never holds a secret).
    pub message: String,
    /// The field that was wrong, for `invalid_webhook`.
    pub field: Option<String>,
}

impl WebhookRefusal {
    fn new(code: RefusalCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
        }
    }

    fn field(field: &str, message: impl Into<String>) -> Self {
        Self {
            code: RefusalCode::InvalidWebhook,
            message: message.into(),
            field: Some(field.chars().take(40).collect()),
        }
    }
}

/// What became of a webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// Recorded and shown.
    Accepted {
        /// The delivery row.
        delivery_id: i64,
        /// The alert shown on the overlays (`al_wh_{delivery_id}`).
        alert_id: String,
        /// Relayed long after the relay received it (`webhooks.stale_after_seconds`): listed,
        /// and not shown unless `webhooks.play_stale`.
        stale: bool,
    },
    /// Seen before (idempotency key, webhook-id, or a relay sequence already committed):
    /// nothing was recorded or shown.
    Duplicate,
    /// Recorded as refused; nothing was shown.
    Refused {
        /// The delivery row.
        delivery_id: i64,
        /// Why.
        refusal: WebhookRefusal,
    },
}

impl WebhookOutcome {
    fn status(&self) -> &'static str {
        match self {
            Self::Accepted { stale: true, .. } => "stale",
            Self::Accepted { .. } => "accepted",
            Self::Duplicate => "duplicate",
            Self::Refused { .. } => "refused",
        }
    }
}

/// A recorded delivery, as the streamer's list shows it (no secrets, no body, no query).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDelivery {
    /// Row id.
    pub id: i64,
    /// When it arrived (RFC 3339).
    pub received_at: String,
    /// `tradingview`, `custom:{name}` or `unknown`.
    pub source: String,
    /// `local` or `relay`.
    pub via: String,
    /// The relay tunnel, for relay deliveries.
    pub tunnel_id: Option<String>,
    /// The relay sequence, for relay deliveries.
    pub seq: Option<i64>,
    /// `accepted` or `refused`.
    pub status: String,
    /// The refusal code.
    pub reason_code: Option<String>,
    /// The refusal message.
    pub reason: Option<String>,
    /// The alert shown, for accepted deliveries.
    pub alert_id: Option<String>,
    /// Whether the alert has been pushed to the overlays.
    pub announced: bool,
    /// Relayed too late to be played (see `webhooks.stale_after_seconds`).
    pub stale: bool,
}

/// What the streamer's webhook settings page shows: where to send webhooks and which
/// credentials exist (never their values).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhooksOverview {
    /// TradingView.
    pub tradingview: TradingViewOverview,
    /// The custom endpoints.
    pub custom: Vec<CustomEndpointOverview>,
}

/// The TradingView endpoint.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TradingViewOverview {
    /// `/webhooks/tradingview` (the URL token is revealed separately).
    pub path: String,
    /// Which credentials are configured.
    pub auth: TradingViewAuth,
    /// How alerts are shown.
    pub settings: TradingViewSettings,
}

/// A custom endpoint with its path.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomEndpointOverview {
    /// `/webhooks/custom/{name}`.
    pub path: String,
    /// The endpoint.
    #[serde(flatten)]
    pub endpoint: CustomEndpoint,
}

/// Where a webhook was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    TradingView,
    Custom(String),
    Unknown,
}

impl Source {
    fn of(path: &str) -> Self {
        let path = path.split('?').next().unwrap_or("").trim_matches('/');
        match path.strip_prefix("webhooks/") {
            Some("tradingview") => Self::TradingView,
            Some(rest) => match rest.strip_prefix("custom/") {
                Some(name) if custom::name_ok(name) => Self::Custom(name.to_owned()),
                _ => Self::Unknown,
            },
            None => Self::Unknown,
        }
    }

    fn label(&self) -> String {
        match self {
            Self::TradingView => "tradingview".into(),
            Self::Custom(name) => format!("custom:{name}"),
            Self::Unknown => "unknown".into(),
        }
    }

    /// The metrics label: bounded, so endpoint names never become series.
    fn metric(&self) -> &'static str {
        match self {
            Self::TradingView => "tradingview",
            Self::Custom(_) => "custom",
            Self::Unknown => "unknown",
        }
    }
}

/// What a verified webhook puts on the overlays; stored with the delivery so that a restart
/// can show it again exactly as it would have been shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Announcement {
    overlay_id: Option<String>,
    kind: String,
    title: String,
    message: String,
    chart: Option<ChartSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ChartSpec {
    symbol: String,
    time: i64,
    value: f64,
}

/// A webhook that passed authentication and validation.
#[derive(Debug)]
struct Verified {
    idempotency_key: Option<String>,
    announcement: Announcement,
}

/// The row to commit.
struct Record {
    now: i64,
    source: Source,
    via: &'static str,
    relay: Option<(String, i64)>,
    key: Option<String>,
    verdict: Result<Announcement, WebhookRefusal>,
    remote_addr: Option<String>,
    key_ttl_ms: i64,
    /// Relayed too late (`webhooks.stale_after_seconds`).
    stale: bool,
    /// Stale and not to be played (`webhooks.play_stale` off): written as announced, so no
    /// restart plays it either.
    hold: bool,
}

/// A webhook ready to commit, or one the relay cursor shows was handled already.
enum Prepared {
    Record(Box<Record>),
    Duplicate(Source),
}

enum Committed {
    Duplicate,
    Stored { id: i64, alert_id: Option<String> },
}

/// What checks read once per run of webhooks rather than once per webhook.
#[derive(Debug, Default)]
pub(crate) struct Checks {
    tradingview: tokio::sync::OnceCell<TradingViewSettings>,
}

/// Writes one webhook inside the caller's transaction. A duplicate writes nothing, except that
/// a relay duplicate by key still moves the cursor: it was handled.
fn commit(tx: &rusqlite::Transaction<'_>, record: &Record) -> Result<Committed, StoreError> {
    if let Some((tunnel, seq)) = &record.relay {
        let last: i64 = tx
            .query_row(
                "SELECT last_seq FROM relay_cursor WHERE tunnel_id = ?1",
                [tunnel],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        if *seq <= last {
            return Ok(Committed::Duplicate);
        }
        tx.execute(
            "INSERT INTO relay_cursor (tunnel_id, last_seq) VALUES (?1, ?2)
             ON CONFLICT (tunnel_id) DO UPDATE SET last_seq = excluded.last_seq",
            params![tunnel, seq],
        )?;
    }
    if let Some(key) = &record.key {
        tx.execute(
            "DELETE FROM webhook_idempotency_keys WHERE key = ?1 AND created_ms <= ?2",
            params![key, record.now - record.key_ttl_ms],
        )?;
        let seen: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM webhook_idempotency_keys WHERE key = ?1)",
            [key],
            |r| r.get(0),
        )?;
        if seen {
            return Ok(Committed::Duplicate);
        }
    }
    let (tunnel, seq) = record.relay.clone().unzip();
    let (status, code, reason, announcement) = match &record.verdict {
        Ok(a) => (
            "accepted",
            None,
            None,
            Some(serde_json::to_string(a).map_err(|e| StoreError::Task(e.to_string()))?),
        ),
        Err(r) => (
            "refused",
            Some(r.code.as_str()),
            Some(r.message.clone()),
            None,
        ),
    };
    tx.execute(
        "INSERT INTO webhook_deliveries
         (received_ms, source, via, tunnel_id, seq, status, reason_code, reason, announcement,
          remote_addr, stale, announced)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            record.now,
            record.source.label(),
            record.via,
            tunnel,
            seq,
            status,
            code,
            reason,
            announcement,
            record.remote_addr,
            record.stale,
            record.hold,
        ],
    )?;
    let id = tx.last_insert_rowid();
    let alert_id = record.verdict.is_ok().then(|| format!("al_wh_{id}"));
    if let Some(alert) = &alert_id {
        tx.execute(
            "UPDATE webhook_deliveries SET alert_id = ?2 WHERE id = ?1",
            params![id, alert],
        )?;
        if let Some(key) = &record.key {
            tx.execute(
                "INSERT INTO webhook_idempotency_keys (key, delivery_id, created_ms)
                 VALUES (?1, ?2, ?3)",
                params![key, id, record.now],
            )?;
        }
    } else {
        // Refusals are cheap to send; keep only the most recent ones.
        tx.execute(
            "DELETE FROM webhook_deliveries WHERE status = 'refused' AND id <=
             (SELECT id FROM webhook_deliveries WHERE status = 'refused'
              ORDER BY id DESC LIMIT 1 OFFSET ?1)",
            [REFUSED_KEPT],
        )?;
    }
    Ok(Committed::Stored { id, alert_id })
}

/// Messages held for pages that connect soon after a restart.
#[derive(Debug, Default)]
pub(crate) struct Backlog(Vec<Held>);

#[derive(Debug)]
struct Held {
    until_ms: i64,
    overlay_id: Option<String>,
    messages: Vec<Arc<str>>,
}

/// The TradingView credentials, loaded at start and kept in memory (the secret store may be a
/// D-Bus round trip away).
#[derive(Debug)]
pub(crate) struct Keys {
    token: Secret,
    hmac: Option<Secret>,
    passphrase: Option<Secret>,
}

/// Loads the TradingView credentials, creating the URL token on first start (blocking): a
/// fresh install never accepts unauthenticated webhooks.
pub(crate) fn load_keys(secrets: &dyn crate::secrets::SecretStore) -> Result<Keys, EngineError> {
    let token = match secrets.get(tradingview::TOKEN_SECRET)? {
        Some(token) => token,
        None => {
            let token = Secret::new(crate::random::token(24)?);
            secrets.set(tradingview::TOKEN_SECRET, &token)?;
            token
        }
    };
    Ok(Keys {
        token,
        hmac: secrets.get(tradingview::HMAC_SECRET)?,
        passphrase: secrets.get(tradingview::PASSPHRASE_SECRET)?,
    })
}

impl Engine {
    /// Receives one webhook from any door: authenticates, validates, records and shows it.
    ///
    /// `Ok` for every webhook that was handled, including refused ones (recorded, with a
    /// reason); `Err` only when it could not be recorded (then nothing was committed, and a
    /// relay delivery must not be acknowledged).
    pub async fn webhook_receive(
        &self,
        request: WebhookRequest,
    ) -> Result<WebhookOutcome, EngineError> {
        self.receive(request, true).await
    }

    /// Test hook: records a webhook exactly like [`Engine::webhook_receive`] but does not
    /// announce it, as if the engine stopped between the commit and the push.
    #[doc(hidden)]
    pub async fn webhook_receive_unannounced(
        &self,
        request: WebhookRequest,
    ) -> Result<WebhookOutcome, EngineError> {
        self.receive(request, false).await
    }

    async fn receive(
        &self,
        request: WebhookRequest,
        announce: bool,
    ) -> Result<WebhookOutcome, EngineError> {
        let now = self.now_ms();
        let checks = Checks::default();
        let cursor = match &request.via {
            WebhookVia::Local => None,
            WebhookVia::Relay { tunnel_id, .. } => Some(self.relay_cursor(tunnel_id).await?),
        };
        let prepared = self.prepare(request, now, cursor, &checks).await?;
        let Prepared::Record(record) = prepared else {
            return self.finish(prepared, None, announce).await;
        };
        let committed = self
            .store()
            .call(move |conn| {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let committed = commit(&tx, &record)?;
                tx.commit()?;
                Ok((record, committed))
            })
            .await?;
        let (record, committed) = committed;
        let stored = matches!(committed, Committed::Stored { .. });
        let outcome = self
            .finish(Prepared::Record(record), Some(committed), announce)
            .await;
        if stored {
            self.publish_deliveries(1);
        }
        outcome
    }

    /// Announces that `count` deliveries were stored (`webhook.deliveries`, which the panel's
    /// lists follow): once per commit, not per webhook, so a burst is one event.
    fn publish_deliveries(&self, count: usize) {
        self.events()
            .publish("webhook.deliveries", serde_json::json!({ "count": count }));
    }

    /// Records a run of relayed webhooks from one tunnel, in sequence order, in one
    /// transaction (cursor included), then shows them: what [`Engine::webhook_receive`] does
    /// for each, with one commit for the run. Returns the highest sequence handled, which the
    /// caller acknowledges. On `Err` nothing of the run was committed.
    pub(crate) async fn webhook_receive_relayed(
        &self,
        tunnel_id: &str,
        requests: Vec<WebhookRequest>,
    ) -> Result<u64, EngineError> {
        let now = self.now_ms();
        let checks = Checks::default();
        let cursor = self.relay_cursor(tunnel_id).await?;
        let mut highest = u64::try_from(cursor).unwrap_or(0);
        let mut prepared = Vec::with_capacity(requests.len());
        for request in requests {
            if let WebhookVia::Relay { seq, .. } = &request.via {
                highest = highest.max(*seq);
            }
            prepared.push(self.prepare(request, now, Some(cursor), &checks).await?);
        }
        let committed = self
            .store()
            .call(move |conn| {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let mut committed = Vec::with_capacity(prepared.len());
                for p in &prepared {
                    committed.push(match p {
                        Prepared::Record(record) => Some(commit(&tx, record)?),
                        Prepared::Duplicate(_) => None,
                    });
                }
                tx.commit()?;
                Ok((prepared, committed))
            })
            .await?;
        let stored = committed
            .1
            .iter()
            .filter(|c| matches!(c, Some(Committed::Stored { .. })))
            .count();
        for (p, c) in committed.0.into_iter().zip(committed.1) {
            let outcome = self.finish(p, c, true).await?;
            tracing::debug!(?outcome, "relayed webhook");
        }
        if stored > 0 {
            self.publish_deliveries(stored);
        }
        Ok(highest)
    }

    /// Authenticates and validates one webhook and turns it into the row to commit, or into a
    /// duplicate when the relay cursor (`cursor`, for relayed ones) is already past it.
    async fn prepare(
        &self,
        request: WebhookRequest,
        now: i64,
        cursor: Option<i64>,
        checks: &Checks,
    ) -> Result<Prepared, EngineError> {
        let source = Source::of(&request.path);
        let relay = match &request.via {
            WebhookVia::Local => None,
            WebhookVia::Relay { tunnel_id, seq, .. } => {
                Some((tunnel_id.clone(), i64::try_from(*seq).unwrap_or(i64::MAX)))
            }
        };
        if let (Some((_, seq)), Some(cursor)) = (&relay, cursor)
            && *seq <= cursor
        {
            return Ok(Prepared::Duplicate(source));
        }
        let verdict = self.webhook_check(&source, &request, now, checks).await?;
        let key = match (&verdict, &request.via) {
            (Err(_), _) => None,
            (Ok(v), via) => v.idempotency_key.clone().or_else(|| match via {
                WebhookVia::Relay { delivery_id, .. } => Some(delivery_id.clone()),
                WebhookVia::Local => None,
            }),
        }
        .map(|k| format!("{}\n{k}", source.label()));
        let stale = match &request.via {
            WebhookVia::Relay { received_at_ms, .. } => {
                let limit = self.config().webhooks.stale_after_seconds;
                now.saturating_sub(*received_at_ms)
                    > i64::try_from(limit.saturating_mul(1000)).unwrap_or(i64::MAX)
            }
            WebhookVia::Local => false,
        };
        let hold = stale && verdict.is_ok() && !self.config().webhooks.play_stale;
        Ok(Prepared::Record(Box::new(Record {
            now,
            source,
            via: if relay.is_some() { "relay" } else { "local" },
            relay,
            key,
            verdict: verdict.map(|v| v.announcement),
            remote_addr: request.remote_addr,
            key_ttl_ms: self.idempotency_ttl_ms(),
            stale,
            hold,
        })))
    }

    /// After the commit: shows an accepted webhook (when `announce`), logs a refusal, counts.
    async fn finish(
        &self,
        prepared: Prepared,
        committed: Option<Committed>,
        announce: bool,
    ) -> Result<WebhookOutcome, EngineError> {
        let (record, committed) = match (prepared, committed) {
            (Prepared::Duplicate(source), _) => {
                self.count(&source, "duplicate");
                return Ok(WebhookOutcome::Duplicate);
            }
            (Prepared::Record(record), Some(committed)) => (record, committed),
            (Prepared::Record(_), None) => {
                return Err(EngineError::Task("a webhook was not committed".into()));
            }
        };
        let outcome = match committed {
            Committed::Duplicate => WebhookOutcome::Duplicate,
            Committed::Stored { id, alert_id } => match (record.verdict, alert_id) {
                (Ok(announcement), Some(alert_id)) => {
                    if record.hold {
                        tracing::info!(
                            delivery_id = id,
                            "a relayed webhook arrived too late to play; listed as stale"
                        );
                    } else if announce {
                        self.announce(id, &alert_id, &announcement).await?;
                    }
                    WebhookOutcome::Accepted {
                        delivery_id: id,
                        alert_id,
                        stale: record.stale,
                    }
                }
                (Err(refusal), _) => WebhookOutcome::Refused {
                    delivery_id: id,
                    refusal,
                },
                (Ok(_), None) => {
                    return Err(EngineError::Task(
                        "an accepted delivery has no alert".into(),
                    ));
                }
            },
        };
        if let WebhookOutcome::Refused { refusal, .. } = &outcome {
            tracing::info!(
                source = %record.source.label(),
                code = refusal.code.as_str(),
                "refused a webhook"
            );
        }
        self.count(&record.source, outcome.status());
        Ok(outcome)
    }

    fn count(&self, source: &Source, status: &str) {
        self.metrics().counter_add(
            "stagehand_webhooks_total",
            "Webhooks received, by source and outcome (accepted, duplicate, refused).",
            &[("source", source.metric()), ("status", status)],
            1,
        );
    }

    fn idempotency_ttl_ms(&self) -> i64 {
        i64::try_from(self.config().webhooks.idempotency_hours)
            .unwrap_or(72)
            .saturating_mul(3_600_000)
    }

    /// Checks everything about a webhook that can refuse it.
    async fn webhook_check(
        &self,
        source: &Source,
        request: &WebhookRequest,
        now: i64,
        checks: &Checks,
    ) -> Result<Result<Verified, WebhookRefusal>, EngineError> {
        if matches!(source, Source::Unknown) {
            return Ok(Err(WebhookRefusal::new(
                RefusalCode::UnknownWebhook,
                "there is no webhook endpoint at this path",
            )));
        }
        // Webhook senders are servers; a request with an Origin comes from a web page, which
        // could otherwise make the streamer's browser post to localhost.
        if request.header("origin").is_some() {
            return Ok(Err(WebhookRefusal::new(
                RefusalCode::OriginNotAllowed,
                "webhooks are not accepted from web pages",
            )));
        }
        if request.body.len() > MAX_BODY_BYTES {
            return Ok(Err(WebhookRefusal::new(
                RefusalCode::PayloadTooLarge,
                format!("the body is larger than {MAX_BODY_BYTES} bytes"),
            )));
        }
        match source {
            Source::TradingView => self.tradingview_check(request, now, checks).await,
            Source::Custom(name) => self.custom_check(name, request, now).await,
            Source::Unknown => Err(EngineError::Task("unreachable: unknown source".into())),
        }
    }

    /// Pushes a committed delivery's alert (and chart point) and marks it announced.
    /// Returns the messages pushed.
    async fn announce(
        &self,
        delivery_id: i64,
        alert_id: &str,
        announcement: &Announcement,
    ) -> Result<Vec<Arc<str>>, EngineError> {
        let mut messages = Vec::new();
        let alert = AlertRequest {
            overlay_id: announcement.overlay_id.clone(),
            kind: announcement.kind.clone(),
            title: announcement.title.clone(),
            message: announcement.message.clone(),
            image: None,
            sound: None,
            duration_ms: None,
        };
        match self.alert_show_with_id(alert_id.to_owned(), alert).await {
            Ok((_, message)) => messages.push(message),
            // The target overlay was deleted since: nothing to show, and nothing to retry.
            Err(EngineError::Overlay(OverlayError::NotFound)) => {
                tracing::warn!(delivery_id, "a webhook's overlay no longer exists");
            }
            Err(e) => return Err(e),
        }
        if let Some(chart) = &announcement.chart {
            let update = ChartUpdate {
                overlay_id: announcement.overlay_id.clone(),
                symbol: chart.symbol.clone(),
                replace: false,
                points: vec![ChartPoint {
                    time: chart.time,
                    value: Some(chart.value),
                    open: None,
                    high: None,
                    low: None,
                    close: None,
                }],
            };
            match self
                .chart_update_with_id(format!("cu_wh_{delivery_id}"), update)
                .await
            {
                Ok((_, message)) => messages.push(message),
                Err(EngineError::Overlay(_)) => {}
                Err(e) => return Err(e),
            }
        }
        // `announced` is set when a page says it has the alert (`alert.seen`, see
        // [`Engine::webhook_alert_seen`]), not here: a message queued for a page dies with the
        // process if the engine is killed before the socket writes it.
        Ok(messages)
    }

    /// An overlay page reports that it has the alert `alert_id`: a webhook's alert is then
    /// not shown again after a restart. Ids that are not webhook alerts are ignored.
    pub async fn webhook_alert_seen(&self, alert_id: &str) -> Result<(), EngineError> {
        let Some(id) = alert_id
            .strip_prefix("al_wh_")
            .and_then(|n| n.parse::<i64>().ok())
        else {
            return Ok(());
        };
        self.store()
            .call(move |conn| {
                conn.execute(
                    "UPDATE webhook_deliveries SET announced = 1 WHERE id = ?1 AND announced = 0",
                    [id],
                )?;
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// At start: forgets expired idempotency keys and old deliveries, and announces deliveries
    /// that were accepted but not yet shown when the engine stopped. Those recent enough
    /// (`webhooks.reannounce_window_seconds`) are also held for pages connecting in that window,
    /// since no page is connected yet.
    pub(crate) async fn webhooks_start(&self) -> Result<(), EngineError> {
        let now = self.now_ms();
        let cutoff = now - self.idempotency_ttl_ms();
        let window = i64::try_from(self.config().webhooks.reannounce_window_seconds)
            .unwrap_or(0)
            .saturating_mul(1000);
        let pending: Vec<(i64, i64, String, String)> = self
            .store()
            .call(move |conn| {
                let tx = conn.transaction()?;
                tx.execute(
                    "DELETE FROM webhook_idempotency_keys WHERE created_ms <= ?1",
                    [cutoff],
                )?;
                tx.execute(
                    "DELETE FROM webhook_deliveries WHERE received_ms <= ?1 AND announced = 1",
                    [cutoff],
                )?;
                let pending = {
                    let mut stmt = tx.prepare(
                        "SELECT id, received_ms, alert_id, announcement FROM webhook_deliveries
                         WHERE status = 'accepted' AND announced = 0 ORDER BY id",
                    )?;
                    let rows =
                        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
                    rows.collect::<Result<Vec<_>, _>>()?
                };
                tx.commit()?;
                Ok(pending)
            })
            .await?;
        for (id, received_ms, alert_id, text) in pending {
            let announcement: Announcement = match serde_json::from_str(&text) {
                Ok(a) => a,
                Err(e) => {
                    tracing::error!(delivery_id = id, error = %e, "a stored webhook announcement does not parse");
                    continue;
                }
            };
            if now - received_ms > window {
                tracing::info!(
                    delivery_id = id,
                    "a webhook accepted before the last stop is too old to show now"
                );
                self.store()
                    .call(move |conn| {
                        conn.execute(
                            "UPDATE webhook_deliveries SET announced = 1 WHERE id = ?1",
                            [id],
                        )?;
                        Ok(())
                    })
                    .await?;
                continue;
            }
            let messages = self.announce(id, &alert_id, &announcement).await?;
            self.inner
                .webhook_backlog
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .0
                .push(Held {
                    until_ms: received_ms + window,
                    overlay_id: announcement.overlay_id,
                    messages,
                });
            tracing::info!(
                delivery_id = id,
                "announced a webhook accepted before the last stop"
            );
        }
        Ok(())
    }

    /// Messages an overlay page should get right after connecting: alerts accepted just before
    /// a restart and announced while no page was connected. Pages ignore alert ids they have
    /// shown, so sending them to every page that connects in the window is safe.
    pub fn overlay_backlog(&self, overlay_id: &str) -> Vec<Arc<str>> {
        let now = self.now_ms();
        let mut backlog = self
            .inner
            .webhook_backlog
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        backlog.0.retain(|h| h.until_ms > now);
        backlog
            .0
            .iter()
            .filter(|h| h.overlay_id.as_deref().is_none_or(|o| o == overlay_id))
            .flat_map(|h| h.messages.iter().cloned())
            .collect()
    }

    async fn relay_cursor(&self, tunnel_id: &str) -> Result<i64, EngineError> {
        let tunnel = tunnel_id.to_owned();
        Ok(self
            .store()
            .call(move |conn| {
                Ok(conn
                    .query_row(
                        "SELECT last_seq FROM relay_cursor WHERE tunnel_id = ?1",
                        [tunnel],
                        |r| r.get::<_, i64>(0),
                    )
                    .optional()?
                    .unwrap_or(0))
            })
            .await?)
    }

    /// The highest relay sequence committed for a tunnel (0 when none): what the relay link
    /// sends on connect, and the sequence it acknowledges.
    pub async fn relay_last_seq(&self, tunnel_id: &str) -> Result<u64, EngineError> {
        Ok(u64::try_from(self.relay_cursor(tunnel_id).await?).unwrap_or(0))
    }

    /// Where to send webhooks and which credentials are configured.
    pub async fn webhooks_overview(&self) -> Result<WebhooksOverview, EngineError> {
        Ok(WebhooksOverview {
            tradingview: TradingViewOverview {
                path: "/webhooks/tradingview".into(),
                auth: self.webhook_tradingview_auth(),
                settings: self.webhook_tradingview_settings().await?,
            },
            custom: self
                .webhook_custom_list()
                .await?
                .into_iter()
                .map(|endpoint| CustomEndpointOverview {
                    path: format!("/webhooks/custom/{}", endpoint.name),
                    endpoint,
                })
                .collect(),
        })
    }

    /// Recent deliveries, newest first (at most 500).
    pub async fn webhook_deliveries(
        &self,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>, EngineError> {
        let limit = limit.clamp(1, 500);
        Ok(self
            .store()
            .call(move |conn| {
                let mut stmt = conn.prepare(
                    "SELECT id, received_ms, source, via, tunnel_id, seq, status, reason_code,
                            reason, alert_id, announced, stale
                     FROM webhook_deliveries ORDER BY id DESC LIMIT ?1",
                )?;
                let rows = stmt.query_map([limit], |r| {
                    Ok(WebhookDelivery {
                        id: r.get(0)?,
                        received_at: rfc3339(r.get(1)?),
                        source: r.get(2)?,
                        via: r.get(3)?,
                        tunnel_id: r.get(4)?,
                        seq: r.get(5)?,
                        status: r.get(6)?,
                        reason_code: r.get(7)?,
                        reason: r.get(8)?,
                        alert_id: r.get(9)?,
                        announced: r.get(10)?,
                        stale: r.get(11)?,
                    })
                })?;
                rows.collect::<Result<Vec<_>, _>>()
                    .map_err(StoreError::from)
            })
            .await?)
    }
}

/// Cuts `text` to at most `max` characters.
fn clip(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// Collapses runs of whitespace (left by empty placeholders) and trims.
fn tidy(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_source() {
        assert_eq!(Source::of("webhooks/tradingview"), Source::TradingView);
        assert_eq!(Source::of("/webhooks/tradingview"), Source::TradingView);
        assert_eq!(
            Source::of("webhooks/custom/kofi"),
            Source::Custom("kofi".into())
        );
        assert_eq!(Source::of("webhooks/custom/Bad Name"), Source::Unknown);
        assert_eq!(Source::of("webhooks/custom/"), Source::Unknown);
        assert_eq!(Source::of("api/status"), Source::Unknown);
    }

    #[test]
    fn request_debug_hides_the_query_and_body() {
        let request = WebhookRequest {
            path: "webhooks/tradingview".into(),
            query: "token=sekrit-token".into(),
            headers: vec![("x-signature".into(), "sekrit-sig".into())],
            body: b"{\"passphrase\":\"sekrit-pass\"}".to_vec(),
            remote_addr: None,
            via: WebhookVia::Local,
        };
        let shown = format!("{request:?}");
        assert!(!shown.contains("sekrit"), "leaked: {shown}");
        assert_eq!(
            request.query_param("token").as_deref(),
            Some("sekrit-token")
        );
    }

    #[test]
    fn tidy_collapses_what_empty_placeholders_leave() {
        assert_eq!(tidy("  BTCUSD   buy  "), "BTCUSD buy");
        assert_eq!(clip("ééé", 2), "éé");
    }
}
