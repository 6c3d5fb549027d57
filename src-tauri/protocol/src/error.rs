//! The error half of every API answer: the body shape `{"error":{"code","message"}}` and the
//! [`ErrorCode`] enum of every stable code the desktop server sends.
//!
//! The codes are a wire type: the panel's scripts, the moderator panel and API clients match
//! on them, never on messages. Each serialises as the snake_case string it has always had; the
//! server maps each to an HTTP status in one table (`stagehand-server`'s `error` module).

use serde::{Deserialize, Serialize};

/// The body of every error response: `{"error":{"code":"...","message":"..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error itself.
    pub error: ErrorDetail,
}

/// A stable machine-readable code and a plain message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable code (`snake_case`); clients match on this, never on the message. A string here,
    /// not an [`ErrorCode`], because the relay answers with codes of its own in this shape.
    pub code: String,
    /// Human-readable explanation, safe to show (never contains secrets or internals).
    pub message: String,
    /// Machine-readable extras for some codes (e.g. `currentVersion` on `version_conflict`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

impl ErrorBody {
    /// Builds an error body from a code and a message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
                details: None,
            },
        }
    }
}

/// Declares [`ErrorCode`] once: each variant with its wire spelling, so the serde names,
/// [`ErrorCode::as_str`] and [`ErrorCode::ALL`] cannot drift apart.
macro_rules! error_codes {
    ($( $(#[doc = $doc:literal])* $variant:ident = $wire:literal, )*) => {
        /// Every stable error code the desktop server answers with.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum ErrorCode {
            $( $(#[doc = $doc])* #[serde(rename = $wire)] $variant, )*
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The wire spelling (`snake_case`), the same string serde writes.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $wire,)*
                }
            }
        }
    };
}

error_codes! {
    // Requests and bodies.
    /// The path exists nowhere.
    NotFound = "not_found",
    /// The path exists, the method does not.
    MethodNotAllowed = "method_not_allowed",
    /// A field is missing, of the wrong type or out of range.
    InvalidFields = "invalid_fields",
    /// The body is not JSON (or not a JSON object where one is needed).
    InvalidJson = "invalid_json",
    /// The query string does not parse.
    InvalidQuery = "invalid_query",
    /// The body could not be read.
    BadBody = "bad_body",
    /// The body is larger than the endpoint accepts.
    PayloadTooLarge = "payload_too_large",
    /// The body's content type is not one the endpoint reads.
    UnsupportedMediaType = "unsupported_media_type",
    /// A multipart body is broken.
    InvalidMultipart = "invalid_multipart",
    /// An upload without its `file` field.
    MissingFile = "missing_file",
    /// A WebSocket route was called without a usable upgrade.
    UpgradeRequired = "upgrade_required",
    /// Too many attempts; `Retry-After` says when to try again.
    RateLimited = "rate_limited",

    // Who is calling.
    /// No credentials at all.
    AuthRequired = "auth_required",
    /// Credentials sent, and wrong.
    InvalidCredentials = "invalid_credentials",
    /// The Host header is not one of this server's names.
    HostNotAllowed = "host_not_allowed",
    /// A write or upgrade from a foreign page (also a webhook sent from a web page).
    OriginNotAllowed = "origin_not_allowed",
    /// Strict Origin checking is on and the browser request has no Origin.
    OriginRequired = "origin_required",
    /// A device on the LAN asked for something beyond the moderator panel.
    LanNotAllowed = "lan_not_allowed",

    // Stagehand itself.
    /// Something failed inside; the log has the details.
    InternalError = "internal_error",
    /// The database failed.
    StoreError = "store_error",
    /// The store does not answer (readiness probe).
    NotReady = "not_ready",
    /// The secret store cannot be reached.
    SecretsUnavailable = "secrets_unavailable",
    /// A secret name that the secret store refuses.
    InvalidSecretName = "invalid_secret_name",

    // Overlays and scenes.
    /// No overlay with that id.
    OverlayNotFound = "overlay_not_found",
    /// `limits.overlays` reached.
    OverlayLimitReached = "overlay_limit_reached",
    /// The scene changed since the edit started (`details.currentVersion`).
    VersionConflict = "version_conflict",
    /// A scene save without the version it started from.
    VersionRequired = "version_required",
    /// A signed overlay link that is wrong or expired.
    OverlayLinkInvalid = "overlay_link_invalid",

    // Moderators.
    /// A moderator key that is unknown, used or expired.
    InvalidKey = "invalid_key",
    /// The moderator session was revoked or has expired.
    SessionEnded = "session_ended",
    /// The moderator's scopes do not allow that.
    ScopeDenied = "scope_denied",
    /// The action exists but this Stagehand cannot do it.
    NotAvailable = "not_available",
    /// No moderator session with that id.
    ModeratorSessionNotFound = "moderator_session_not_found",

    // OBS.
    /// OBS is not connected.
    ObsNotConnected = "obs_not_connected",
    /// OBS refused the request.
    ObsRefused = "obs_refused",
    /// OBS has no browser source plugin.
    ObsNoBrowserSource = "obs_no_browser_source",

    // Media.
    /// No media file with that id.
    MediaNotFound = "media_not_found",
    /// The media folder failed.
    MediaStorageError = "media_storage_error",
    /// A byte range past the end of the file.
    RangeNotSatisfiable = "range_not_satisfiable",

    // Speech.
    /// The voice asked for is not installed.
    TtsVoiceUnavailable = "tts_voice_unavailable",
    /// The speech program failed.
    TtsRenderFailed = "tts_render_failed",
    /// The speech program took too long.
    TtsRenderTimeout = "tts_render_timeout",
    /// No rendered audio by that name.
    TtsAudioNotFound = "tts_audio_not_found",
    /// The speech cache failed.
    TtsCacheError = "tts_cache_error",

    // Webhook settings.
    /// No custom webhook by that name.
    WebhookNotFound = "webhook_not_found",
    /// A custom webhook by that name exists already.
    WebhookExists = "webhook_exists",
    /// The custom webhook limit is reached.
    WebhookLimitReached = "webhook_limit_reached",

    // Webhook refusals, as the sender sees them.
    /// No webhook endpoint at that path.
    UnknownWebhook = "unknown_webhook",
    /// No signature, token or passphrase at all.
    WebhookAuthRequired = "webhook_auth_required",
    /// The signature does not match.
    InvalidSignature = "invalid_signature",
    /// The URL token is wrong.
    InvalidToken = "invalid_token",
    /// The passphrase is wrong.
    InvalidPassphrase = "invalid_passphrase",
    /// The signed timestamp is too far from now.
    StaleTimestamp = "stale_timestamp",
    /// A webhook field has the wrong type or size.
    InvalidWebhook = "invalid_webhook",

    // Platform accounts and destinations.
    /// No account provider by that name.
    AccountProviderUnknown = "account_provider_unknown",
    /// The provider has no client id configured (`details.envVar`).
    AccountProviderNotConfigured = "account_provider_not_configured",
    /// The provider does not offer that flow now.
    AccountFlowUnavailable = "account_flow_unavailable",
    /// The callback's `state` does not match a sign-in Stagehand started.
    AccountStateInvalid = "account_state_invalid",
    /// The provider refused the authorization code.
    AccountCodeRejected = "account_code_rejected",
    /// The streamer declined on the provider's page.
    AccountAccessDenied = "account_access_denied",
    /// The device code expired before it was entered.
    AccountDeviceCodeExpired = "account_device_code_expired",
    /// No device sign-in is under way.
    AccountDeviceFlowNotFound = "account_device_flow_not_found",
    /// The provider could not be reached or answered something unusable.
    AccountProviderError = "account_provider_error",
    /// No account is linked for that provider.
    AccountNotLinked = "account_not_linked",
    /// The link needs the streamer to sign in again.
    AccountNeedsRelogin = "account_needs_relogin",
    /// Stagehand failed part-way through an account operation.
    AccountInterrupted = "account_interrupted",
    /// No stream destination with that id.
    DestinationNotFound = "destination_not_found",
    /// A stream destination with that name exists already.
    DestinationExists = "destination_exists",
    /// No Discord webhook is saved.
    DiscordWebhookNotFound = "discord_webhook_not_found",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_has_the_documented_shape() {
        let body = serde_json::to_value(ErrorBody::new("not_found", "nothing here"))
            .expect("an error body always serialises");
        assert_eq!(
            body,
            serde_json::json!({"error": {"code": "not_found", "message": "nothing here"}}),
            "clients parse error.code and error.message; the shape is a contract"
        );
    }

    #[test]
    fn every_code_travels_as_its_stable_snake_case_string() {
        let mut seen = std::collections::HashSet::new();
        for &code in ErrorCode::ALL {
            let wire = serde_json::to_value(code).expect("a code always serialises");
            assert_eq!(wire, code.as_str(), "serde and as_str must agree");
            assert!(
                code.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{code} is snake_case"
            );
            assert!(seen.insert(code.as_str()), "{code} is spelled once");
            let back: ErrorCode =
                serde_json::from_value(wire).expect("a client can read every code back");
            assert_eq!(back, code);
        }
    }
}
