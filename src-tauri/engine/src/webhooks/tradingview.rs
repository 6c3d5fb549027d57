//! TradingView alerts (`POST /webhooks/tradingview`).
//!
//! TradingView posts the alert's message as `application/json` when it parses as JSON and as
//! `text/plain` otherwise. Both are read:
//!
//! * a JSON object (either content type) is structured: `symbol`, `side`, `timeframe`, `note`,
//!   `price` (number or numeric string), `extras` (object) and `passphrase`; anything else, or
//!   a field of the wrong type or size, is refused with `invalid_webhook` naming the field;
//! * `application/json` that is not a JSON object is refused with `invalid_json`;
//! * `text/plain` (or no content type) that is not a JSON object is a plain note: the whole
//!   text becomes `{note}`, with no structured fields.
//!
//! At least one credential must be sent and every credential sent must be right: the URL
//! token (`?token=`, created at first start), `X-Signature` (base64 of HMAC-SHA256 of the raw
//! body, when an HMAC secret is configured) or the `passphrase` field (when one is
//! configured). All comparisons are constant time.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use sha2::Sha256;

use super::template::render;
use super::{
    Announcement, ChartSpec, MAX_KEY_CHARS, RefusalCode, Verified, WebhookError, WebhookRefusal,
    WebhookRequest, clip, tidy,
};
use crate::audit::{AuditEntry, Outcome};
use crate::{Engine, EngineError, Secret};

/// Secret-store name of the URL token.
pub(super) const TOKEN_SECRET: &str = "webhook-tradingview-token";
/// Secret-store name of the HMAC secret.
pub(super) const HMAC_SECRET: &str = "webhook-tradingview-hmac";
/// Secret-store name of the passphrase.
pub(super) const PASSPHRASE_SECRET: &str = "webhook-tradingview-passphrase";

const DEFAULT_TITLE: &str = "{symbol} {side}";
const DEFAULT_MESSAGE: &str = "{note}";
/// The title shown when the template renders to nothing.
const FALLBACK_TITLE: &str = "TradingView alert";

const SIDES: &[&str] = &["buy", "sell", "long", "short", "flat", "close", "exit"];

/// How TradingView alerts are shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TradingViewSettings {
    /// Only this overlay; every overlay when `None`.
    pub overlay_id: Option<String>,
    /// Title template over `{symbol} {side} {price} {timeframe} {note}`.
    pub title: String,
    /// Message template, same placeholders.
    pub message: String,
    /// Whether an alert with a symbol and a price also adds a point to chart layers.
    pub chart: bool,
}

impl Default for TradingViewSettings {
    fn default() -> Self {
        Self {
            overlay_id: None,
            title: DEFAULT_TITLE.into(),
            message: DEFAULT_MESSAGE.into(),
            chart: true,
        }
    }
}

/// Which TradingView credentials are configured (never their values).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TradingViewAuth {
    /// The URL token (always: it is created at first start).
    pub token: bool,
    /// An HMAC secret for `X-Signature`.
    pub hmac: bool,
    /// The HMAC secret comes from `STAGEHAND_TRADINGVIEW_HMAC_SECRET`.
    pub hmac_from_env: bool,
    /// A passphrase.
    pub passphrase: bool,
}

/// The TradingView credentials, revealed to the streamer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TradingViewSecrets {
    /// The URL token (`?token=`).
    pub token: Secret,
    /// The HMAC secret, if any.
    pub hmac_secret: Option<Secret>,
    /// The passphrase, if any.
    pub passphrase: Option<Secret>,
}

/// One of the TradingView credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradingViewSecretKind {
    /// The URL token.
    Token,
    /// The HMAC secret.
    Hmac,
    /// The passphrase.
    Passphrase,
}

impl TradingViewSecretKind {
    /// Parses `token`, `hmac` or `passphrase`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "token" => Some(Self::Token),
            "hmac" => Some(Self::Hmac),
            "passphrase" => Some(Self::Passphrase),
            _ => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Hmac => "hmac",
            Self::Passphrase => "passphrase",
        }
    }

    fn secret_name(self) -> &'static str {
        match self {
            Self::Token => TOKEN_SECRET,
            Self::Hmac => HMAC_SECRET,
            Self::Passphrase => PASSPHRASE_SECRET,
        }
    }
}

/// The body as read.
enum Body {
    Structured(serde_json::Map<String, serde_json::Value>),
    Note(String),
}

/// The validated fields.
#[derive(Debug, Default)]
struct Fields {
    symbol: Option<String>,
    side: Option<String>,
    timeframe: Option<String>,
    note: Option<String>,
    /// As sent (for templates) and as a number (for the chart).
    price: Option<(String, f64)>,
}

fn read_body(request: &WebhookRequest) -> Result<Body, WebhookRefusal> {
    let content_type = request
        .header("content-type")
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let json = match content_type.as_str() {
        "application/json" => true,
        "text/plain" | "" => false,
        _ => {
            return Err(WebhookRefusal::new(
                RefusalCode::UnsupportedMediaType,
                "send the alert as application/json or text/plain",
            ));
        }
    };
    let parsed = serde_json::from_slice::<serde_json::Value>(&request.body);
    match parsed {
        Ok(serde_json::Value::Object(map)) => Ok(Body::Structured(map)),
        _ if json => Err(WebhookRefusal::new(
            RefusalCode::InvalidJson,
            "an application/json alert must be a JSON object",
        )),
        _ => {
            let text = std::str::from_utf8(&request.body)
                .map_err(|_| WebhookRefusal::field("note", "a text alert must be UTF-8"))?
                .trim();
            if text.chars().count() > 1000 {
                return Err(WebhookRefusal::field(
                    "note",
                    "a text alert must be at most 1000 characters",
                ));
            }
            Ok(Body::Note(text.to_owned()))
        }
    }
}

fn string_field(
    map: &serde_json::Map<String, serde_json::Value>,
    name: &str,
    max: usize,
) -> Result<Option<String>, WebhookRefusal> {
    match map.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) if s.chars().count() <= max => {
            Ok(Some(s.trim().to_owned()).filter(|s| !s.is_empty()))
        }
        Some(serde_json::Value::String(_)) => Err(WebhookRefusal::field(
            name,
            format!("`{name}` must be at most {max} characters"),
        )),
        Some(_) => Err(WebhookRefusal::field(
            name,
            format!("`{name}` must be a string"),
        )),
    }
}

fn validate(map: &serde_json::Map<String, serde_json::Value>) -> Result<Fields, WebhookRefusal> {
    for key in map.keys() {
        if !matches!(
            key.as_str(),
            "symbol" | "side" | "timeframe" | "note" | "price" | "extras" | "passphrase"
        ) {
            return Err(WebhookRefusal::field(
                key,
                format!(
                    "unknown field `{}`; put your own data under `extras`",
                    clip(key, 40)
                ),
            ));
        }
    }
    let symbol = string_field(map, "symbol", 32)?;
    if let Some(s) = &symbol
        && !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":._-/!".contains(&b))
    {
        return Err(WebhookRefusal::field(
            "symbol",
            "`symbol` must be 1-32 of A-Z a-z 0-9 : . _ - / !",
        ));
    }
    let side = string_field(map, "side", 16)?
        .map(|s| s.to_ascii_lowercase())
        .map(|s| {
            if SIDES.contains(&s.as_str()) {
                Ok(s)
            } else {
                Err(WebhookRefusal::field(
                    "side",
                    format!("`side` must be one of {}", SIDES.join(", ")),
                ))
            }
        })
        .transpose()?;
    let timeframe = match map.get("timeframe") {
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => string_field(map, "timeframe", 16)?,
    };
    if let Some(t) = &timeframe
        && !t.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(WebhookRefusal::field(
            "timeframe",
            "`timeframe` must be 1-16 of A-Z a-z 0-9 (e.g. 5, 60, 1D)",
        ));
    }
    let note = string_field(map, "note", 1000)?;
    let bad_price = || WebhookRefusal::field("price", "`price` must be a finite number");
    let price = match map.get("price") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) => {
            let v = n.as_f64().filter(|v| v.is_finite()).ok_or_else(bad_price)?;
            Some((n.to_string(), v))
        }
        Some(serde_json::Value::String(s)) => {
            let s = s.trim();
            let v: f64 = s.parse().map_err(|_| bad_price())?;
            if !v.is_finite() || s.len() > 32 {
                return Err(bad_price());
            }
            Some((s.to_owned(), v))
        }
        Some(_) => return Err(bad_price()),
    };
    match map.get("extras") {
        None | Some(serde_json::Value::Null) => {}
        Some(extras @ serde_json::Value::Object(_)) => {
            if extras.to_string().len() > 8 * 1024 {
                return Err(WebhookRefusal::field(
                    "extras",
                    "`extras` must be at most 8 KiB of JSON",
                ));
            }
        }
        Some(_) => {
            return Err(WebhookRefusal::field(
                "extras",
                "`extras` must be a JSON object",
            ));
        }
    }
    Ok(Fields {
        symbol,
        side,
        timeframe,
        note,
        price,
    })
}

fn check_signature(secret: &Secret, body: &[u8], given: &str) -> bool {
    let Ok(given) = STANDARD.decode(given.trim()) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose().as_bytes()) else {
        return false;
    };
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&given).is_ok()
}

fn check_template(what: &str, template: &str, max: usize) -> Result<String, WebhookError> {
    let template = template.trim();
    if template.chars().count() > max || (what == "title" && template.is_empty()) {
        return Err(WebhookError::Invalid(format!(
            "{what} must be {} characters",
            if what == "title" {
                format!("1-{max}")
            } else {
                format!("at most {max}")
            }
        )));
    }
    Ok(template.to_owned())
}

impl Engine {
    fn webhook_keys(&self) -> std::sync::RwLockReadGuard<'_, super::Keys> {
        self.inner
            .webhook_keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The HMAC secret in force: the environment's, else the secret store's.
    fn tradingview_hmac(&self) -> Option<Secret> {
        self.config()
            .tradingview_hmac_secret
            .clone()
            .or_else(|| self.webhook_keys().hmac.clone())
    }

    /// Authenticates: at least one credential sent, and every credential sent right.
    fn tradingview_auth(
        &self,
        request: &WebhookRequest,
        body: &Body,
    ) -> Result<(), WebhookRefusal> {
        let signature = request.header("x-signature");
        let token = request.query_param("token");
        let passphrase = match body {
            Body::Structured(map) => map.get("passphrase"),
            Body::Note(_) => None,
        }
        .filter(|v| !v.is_null());
        if signature.is_none() && token.is_none() && passphrase.is_none() {
            return Err(WebhookRefusal::new(
                RefusalCode::WebhookAuthRequired,
                "this webhook needs a credential: the URL token (?token=), an X-Signature or \
                 the passphrase; Stagehand's webhook settings show them",
            ));
        }
        if let Some(signature) = signature
            && !self
                .tradingview_hmac()
                .is_some_and(|secret| check_signature(&secret, &request.body, signature))
        {
            return Err(WebhookRefusal::new(
                RefusalCode::InvalidSignature,
                "the X-Signature does not match the body (or no HMAC secret is configured)",
            ));
        }
        let keys = self.webhook_keys();
        if let Some(token) = token
            && !keys.token.ct_eq(token.as_bytes())
        {
            return Err(WebhookRefusal::new(
                RefusalCode::InvalidToken,
                "the URL token is not valid; copy the webhook URL again from Stagehand",
            ));
        }
        if let Some(passphrase) = passphrase {
            let right = match (passphrase.as_str(), &keys.passphrase) {
                (Some(given), Some(expected)) => expected.ct_eq(given.as_bytes()),
                _ => false,
            };
            if !right {
                return Err(WebhookRefusal::new(
                    RefusalCode::InvalidPassphrase,
                    "the passphrase is not valid (or no passphrase is configured)",
                ));
            }
        }
        Ok(())
    }

    pub(super) async fn tradingview_check(
        &self,
        request: &WebhookRequest,
        now: i64,
        checks: &super::Checks,
    ) -> Result<Result<Verified, WebhookRefusal>, EngineError> {
        let body = match read_body(request) {
            Ok(body) => body,
            Err(refusal) => return Ok(Err(refusal)),
        };
        // Authentication first: an unauthenticated sender learns nothing about validation.
        if let Err(refusal) = self.tradingview_auth(request, &body) {
            return Ok(Err(refusal));
        }
        let fields = match &body {
            Body::Structured(map) => match validate(map) {
                Ok(fields) => fields,
                Err(refusal) => return Ok(Err(refusal)),
            },
            Body::Note(text) => Fields {
                note: Some(text.clone()).filter(|t| !t.is_empty()),
                ..Fields::default()
            },
        };
        let key = match request.header("x-idempotency-key") {
            None => None,
            Some(k) if !k.trim().is_empty() && k.chars().count() <= MAX_KEY_CHARS => {
                Some(k.trim().to_owned())
            }
            Some(_) => {
                return Ok(Err(WebhookRefusal::field(
                    "x-idempotency-key",
                    format!("X-Idempotency-Key must be 1-{MAX_KEY_CHARS} characters"),
                )));
            }
        };
        let settings = checks
            .tradingview
            .get_or_try_init(|| self.webhook_tradingview_settings())
            .await?;
        let lookup = |name: &str| -> Option<String> {
            Some(match name {
                "symbol" => fields.symbol.clone().unwrap_or_default(),
                "side" => fields
                    .side
                    .as_deref()
                    .map(str::to_ascii_uppercase)
                    .unwrap_or_default(),
                "price" => fields
                    .price
                    .as_ref()
                    .map(|p| p.0.clone())
                    .unwrap_or_default(),
                "timeframe" => fields.timeframe.clone().unwrap_or_default(),
                "note" => fields.note.clone().unwrap_or_default(),
                _ => return None,
            })
        };
        let title = clip(&tidy(&render(&settings.title, "{", "}", lookup)), 200);
        let message = clip(render(&settings.message, "{", "}", lookup).trim(), 1000);
        let chart = match (&fields.symbol, &fields.price, settings.chart) {
            (Some(symbol), Some((_, value)), true) => Some(ChartSpec {
                symbol: symbol.clone(),
                time: now.div_euclid(1000),
                value: *value,
            }),
            _ => None,
        };
        Ok(Ok(Verified {
            idempotency_key: key,
            announcement: Announcement {
                overlay_id: settings.overlay_id.clone(),
                kind: "tradingview".into(),
                title: if title.is_empty() {
                    FALLBACK_TITLE.into()
                } else {
                    title
                },
                message,
                chart,
            },
        }))
    }

    /// How TradingView alerts are shown (the defaults until the streamer changes them).
    pub async fn webhook_tradingview_settings(&self) -> Result<TradingViewSettings, EngineError> {
        Ok(self
            .store()
            .call(|conn| {
                Ok(conn
                    .query_row(
                        "SELECT overlay_id, title, message, chart FROM webhook_tradingview
                         WHERE id = 1",
                        [],
                        |r| {
                            Ok(TradingViewSettings {
                                overlay_id: r.get(0)?,
                                title: r.get(1)?,
                                message: r.get(2)?,
                                chart: r.get(3)?,
                            })
                        },
                    )
                    .optional()?
                    .unwrap_or_default())
            })
            .await?)
    }

    /// Replaces how TradingView alerts are shown. Templates use `{symbol}`, `{side}`,
    /// `{price}`, `{timeframe}` and `{note}`.
    pub async fn webhook_tradingview_configure(
        &self,
        settings: TradingViewSettings,
    ) -> Result<TradingViewSettings, EngineError> {
        let title = check_template("title", &settings.title, 200)?;
        let message = check_template("message", &settings.message, 1000)?;
        if let Some(id) = &settings.overlay_id {
            self.overlays().get(id).await?;
        }
        let saved = TradingViewSettings {
            overlay_id: settings.overlay_id,
            title,
            message,
            chart: settings.chart,
        };
        let row = saved.clone();
        let now = self.now_ms();
        self.store()
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO webhook_tradingview (id, overlay_id, title, message, chart, updated_ms)
                     VALUES (1, ?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (id) DO UPDATE SET overlay_id = excluded.overlay_id,
                       title = excluded.title, message = excluded.message,
                       chart = excluded.chart, updated_ms = excluded.updated_ms",
                    params![row.overlay_id, row.title, row.message, row.chart, now],
                )?;
                Ok(())
            })
            .await?;
        self.audit()
            .record(
                AuditEntry::new("streamer", "webhook.tradingview.configure", Outcome::Ok).detail(
                    serde_json::json!({ "overlayId": saved.overlay_id, "chart": saved.chart }),
                ),
            )
            .await?;
        Ok(saved)
    }

    /// Which TradingView credentials are configured.
    pub fn webhook_tradingview_auth(&self) -> TradingViewAuth {
        let keys = self.webhook_keys();
        let from_env = self.config().tradingview_hmac_secret.is_some();
        TradingViewAuth {
            token: true,
            hmac: from_env || keys.hmac.is_some(),
            hmac_from_env: from_env,
            passphrase: keys.passphrase.is_some(),
        }
    }

    /// Reveals the TradingView credentials to the streamer (audited, without the values).
    pub async fn webhook_tradingview_secrets(&self) -> Result<TradingViewSecrets, EngineError> {
        let secrets = {
            let keys = self.webhook_keys();
            TradingViewSecrets {
                token: keys.token.clone(),
                hmac_secret: self
                    .config()
                    .tradingview_hmac_secret
                    .clone()
                    .or_else(|| keys.hmac.clone()),
                passphrase: keys.passphrase.clone(),
            }
        };
        self.audit()
            .record(AuditEntry::new(
                "streamer",
                "webhook.tradingview.secrets.reveal",
                Outcome::Ok,
            ))
            .await?;
        Ok(secrets)
    }

    /// Replaces one TradingView credential with a new random one and returns it (shown once
    /// here; revealable later). Rotating the token changes the webhook URL.
    pub async fn webhook_tradingview_rotate(
        &self,
        which: TradingViewSecretKind,
    ) -> Result<Secret, EngineError> {
        if which == TradingViewSecretKind::Hmac && self.config().tradingview_hmac_secret.is_some() {
            return Err(WebhookError::Invalid(
                "the HMAC secret is set by STAGEHAND_TRADINGVIEW_HMAC_SECRET; change it there"
                    .into(),
            )
            .into());
        }
        let value = Secret::new(crate::random::token(match which {
            TradingViewSecretKind::Token => 24,
            TradingViewSecretKind::Hmac => 32,
            TradingViewSecretKind::Passphrase => 18,
        })?);
        self.secrets()
            .set(which.secret_name(), value.clone())
            .await?;
        {
            let mut keys = self
                .inner
                .webhook_keys
                .write()
                .unwrap_or_else(|p| p.into_inner());
            match which {
                TradingViewSecretKind::Token => keys.token = value.clone(),
                TradingViewSecretKind::Hmac => keys.hmac = Some(value.clone()),
                TradingViewSecretKind::Passphrase => keys.passphrase = Some(value.clone()),
            }
        }
        self.audit()
            .record(
                AuditEntry::new("streamer", "webhook.tradingview.rotate", Outcome::Ok)
                    .target(which.as_str()),
            )
            .await?;
        Ok(value)
    }

    /// Removes the HMAC secret or the passphrase (the URL token cannot be removed, only
    /// rotated: a webhook endpoint always has a credential).
    pub async fn webhook_tradingview_clear(
        &self,
        which: TradingViewSecretKind,
    ) -> Result<(), EngineError> {
        if which == TradingViewSecretKind::Token {
            return Err(WebhookError::Invalid(
                "the URL token cannot be removed, only rotated".into(),
            )
            .into());
        }
        self.secrets().delete(which.secret_name()).await?;
        {
            let mut keys = self
                .inner
                .webhook_keys
                .write()
                .unwrap_or_else(|p| p.into_inner());
            match which {
                TradingViewSecretKind::Hmac => keys.hmac = None,
                _ => keys.passphrase = None,
            }
        }
        self.audit()
            .record(
                AuditEntry::new("streamer", "webhook.tradingview.clear", Outcome::Ok)
                    .target(which.as_str()),
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        match value {
            serde_json::Value::Object(map) => map,
            _ => serde_json::Map::new(),
        }
    }

    #[test]
    fn fields_are_validated_with_the_field_named() {
        let ok = validate(&object(serde_json::json!({
            "symbol": "BINANCE:BTCUSDT", "side": "Buy", "price": "42000.5", "timeframe": 5,
            "extras": {"x": 1}
        })))
        .expect("valid");
        assert_eq!(ok.side.as_deref(), Some("buy"));
        assert_eq!(ok.price, Some(("42000.5".into(), 42000.5)));
        assert_eq!(ok.timeframe.as_deref(), Some("5"));
        for (body, field) in [
            (serde_json::json!({"side": "moon"}), "side"),
            (serde_json::json!({"price": "lots"}), "price"),
            (serde_json::json!({"price": true}), "price"),
            (serde_json::json!({"symbol": "<b>"}), "symbol"),
            (serde_json::json!({"symbol": 5}), "symbol"),
            (serde_json::json!({"extras": []}), "extras"),
            (serde_json::json!({"colour": "red"}), "colour"),
            (serde_json::json!({"note": "x".repeat(1001)}), "note"),
        ] {
            let refusal = validate(&object(body.clone())).expect_err("invalid");
            assert_eq!(refusal.code, RefusalCode::InvalidWebhook, "{body}");
            assert_eq!(refusal.field.as_deref(), Some(field), "{body}");
        }
    }

    #[test]
    fn signatures_are_hmac_sha256_of_the_raw_body() {
        let secret = Secret::new("s3cret");
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"s3cret").expect("any key length");
        mac.update(b"{\"a\":1}");
        let good = STANDARD.encode(mac.finalize().into_bytes());
        assert!(check_signature(&secret, b"{\"a\":1}", &good));
        assert!(
            !check_signature(&secret, b"{\"a\":2}", &good),
            "tampered body"
        );
        assert!(!check_signature(&secret, b"{\"a\":1}", "not base64!"));
    }
}
