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

mod announce;
mod custom;
mod deliveries;
mod overview;
mod receive;
mod template;
mod tradingview;

use serde::{Deserialize, Serialize};

pub(crate) use announce::Backlog;
pub use custom::{CustomEndpoint, NewCustomEndpoint, verify_standard_webhook};
pub use deliveries::WebhookDelivery;
pub use overview::{CustomEndpointOverview, TradingViewOverview, WebhooksOverview};
pub use tradingview::{
    TradingViewAuth, TradingViewSecretKind, TradingViewSecrets, TradingViewSettings,
};

use crate::{EngineError, Secret};

/// Largest webhook body accepted, from any door (bytes).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The longest path or idempotency key looked at.
const MAX_KEY_CHARS: usize = 200;

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

/// What checks read once per run of webhooks rather than once per webhook.
#[derive(Debug, Default)]
pub(crate) struct Checks {
    tradingview: tokio::sync::OnceCell<TradingViewSettings>,
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
