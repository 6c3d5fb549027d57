//! Which [`ErrorCode`] each engine error answers with, and which details it carries. The
//! status comes from the table in the parent module; messages are the engine's own, except
//! where they may hold internals (those are logged and replaced).

use stagehand_engine::EngineError;
use stagehand_engine::accounts::AccountError;
use stagehand_engine::media::MediaError;
use stagehand_engine::moderators::ModeratorError;
use stagehand_engine::obs::ObsError;
use stagehand_engine::overlays::OverlayError;
use stagehand_engine::secrets::SecretError;
use stagehand_engine::tts::TtsError;
use stagehand_engine::webhooks::{RefusalCode, WebhookError, WebhookRefusal};
use stagehand_protocol::ErrorCode;

use super::ApiError;

impl From<stagehand_engine::store::StoreError> for ApiError {
    fn from(e: stagehand_engine::store::StoreError) -> Self {
        EngineError::from(e).into()
    }
}

impl From<stagehand_engine::secrets::SecretError> for ApiError {
    fn from(e: stagehand_engine::secrets::SecretError) -> Self {
        EngineError::from(e).into()
    }
}

impl From<EngineError> for ApiError {
    fn from(err: EngineError) -> Self {
        match err {
            EngineError::Auth(_) => Self::invalid_credentials(),
            EngineError::Secret(SecretError::Unavailable { .. }) => {
                tracing::error!(error = %err, "secret store unavailable");
                Self::new(
                    ErrorCode::SecretsUnavailable,
                    "the secret store cannot be reached; see `stagehand secrets doctor`",
                )
            }
            EngineError::Secret(SecretError::InvalidName(_)) => {
                Self::new(ErrorCode::InvalidSecretName, err.to_string())
            }
            EngineError::Overlay(e) => overlay_error(e),
            EngineError::Moderator(e) => moderator_error(e),
            EngineError::Relay(e) => Self::invalid_fields(e.to_string()),
            EngineError::Obs(e) => obs_error(e),
            EngineError::Media(e) => media_error(e),
            EngineError::Tts(e) => tts_error(e),
            EngineError::Webhook(e) => webhook_error(e),
            EngineError::Account(e) => e.into(),
            EngineError::Store(ref e) => Self::internal(ErrorCode::StoreError, e),
            other => Self::internal(ErrorCode::InternalError, &other),
        }
    }
}

fn obs_error(err: ObsError) -> ApiError {
    let code = match err {
        ObsError::NotConnected(_) => ErrorCode::ObsNotConnected,
        ObsError::Refused(_) => ErrorCode::ObsRefused,
        ObsError::Invalid(_) => ErrorCode::InvalidFields,
        ObsError::NoBrowserSource => ErrorCode::ObsNoBrowserSource,
    };
    ApiError::new(code, err.to_string())
}

fn moderator_error(err: ModeratorError) -> ApiError {
    let code = match &err {
        ModeratorError::InvalidKey => ErrorCode::InvalidKey,
        ModeratorError::SessionEnded => ErrorCode::SessionEnded,
        ModeratorError::ScopeDenied(_) => ErrorCode::ScopeDenied,
        ModeratorError::NotAvailable(_) => ErrorCode::NotAvailable,
        ModeratorError::Invalid(_) => ErrorCode::InvalidFields,
        ModeratorError::NotFound => ErrorCode::ModeratorSessionNotFound,
        ModeratorError::RateLimited { .. } => ErrorCode::RateLimited,
    };
    let error = ApiError::new(code, err.to_string());
    match err {
        ModeratorError::RateLimited { retry_seconds, .. } => {
            error.with_details(serde_json::json!({ "retryAfterSeconds": retry_seconds }))
        }
        _ => error,
    }
}

fn overlay_error(err: OverlayError) -> ApiError {
    let message = err.to_string();
    match err {
        OverlayError::NotFound => ApiError::new(ErrorCode::OverlayNotFound, message),
        OverlayError::LimitReached { limit } => {
            ApiError::new(ErrorCode::OverlayLimitReached, message)
                .with_details(serde_json::json!({ "limit": limit }))
        }
        OverlayError::Invalid(_) => ApiError::invalid_fields(message),
        OverlayError::Conflict { current, .. } => {
            ApiError::new(ErrorCode::VersionConflict, message)
                .with_details(serde_json::json!({ "currentVersion": current }))
        }
        OverlayError::LinkRefused(_) => ApiError::new(ErrorCode::OverlayLinkInvalid, message),
    }
}

fn webhook_error(err: WebhookError) -> ApiError {
    let code = match err {
        WebhookError::Invalid(_) => ErrorCode::InvalidFields,
        WebhookError::NotFound => ErrorCode::WebhookNotFound,
        WebhookError::Exists => ErrorCode::WebhookExists,
        WebhookError::LimitReached(_) => ErrorCode::WebhookLimitReached,
    };
    ApiError::new(code, err.to_string())
}

/// The code of an account error: the same spelling as [`AccountError::code`], which the
/// engine's events carry (a test keeps the two in step).
fn account_code(err: &AccountError) -> ErrorCode {
    match err {
        AccountError::UnknownProvider(_) => ErrorCode::AccountProviderUnknown,
        AccountError::NotConfigured { .. } => ErrorCode::AccountProviderNotConfigured,
        AccountError::FlowUnavailable(_) => ErrorCode::AccountFlowUnavailable,
        AccountError::StateInvalid => ErrorCode::AccountStateInvalid,
        AccountError::CodeRejected { .. } => ErrorCode::AccountCodeRejected,
        AccountError::AccessDenied { .. } => ErrorCode::AccountAccessDenied,
        AccountError::DeviceCodeExpired => ErrorCode::AccountDeviceCodeExpired,
        AccountError::NoDeviceFlow { .. } => ErrorCode::AccountDeviceFlowNotFound,
        AccountError::Provider { .. } => ErrorCode::AccountProviderError,
        AccountError::NotLinked { .. } => ErrorCode::AccountNotLinked,
        AccountError::NeedsRelogin { .. } => ErrorCode::AccountNeedsRelogin,
        AccountError::Invalid(_) => ErrorCode::InvalidFields,
        AccountError::DestinationNotFound => ErrorCode::DestinationNotFound,
        AccountError::DestinationExists => ErrorCode::DestinationExists,
        AccountError::Interrupted => ErrorCode::AccountInterrupted,
    }
}

impl From<AccountError> for ApiError {
    fn from(err: AccountError) -> Self {
        let error = ApiError::new(account_code(&err), err.to_string());
        match err {
            AccountError::NotConfigured { var, .. } => {
                error.with_details(serde_json::json!({ "envVar": var }))
            }
            _ => error,
        }
    }
}

/// The code of a webhook refusal: the same spelling as [`RefusalCode::as_str`], which the
/// delivery log stores (a test keeps the two in step).
fn refusal_code(code: RefusalCode) -> ErrorCode {
    match code {
        RefusalCode::UnknownWebhook => ErrorCode::UnknownWebhook,
        RefusalCode::OriginNotAllowed => ErrorCode::OriginNotAllowed,
        RefusalCode::PayloadTooLarge => ErrorCode::PayloadTooLarge,
        RefusalCode::WebhookAuthRequired => ErrorCode::WebhookAuthRequired,
        RefusalCode::InvalidSignature => ErrorCode::InvalidSignature,
        RefusalCode::InvalidToken => ErrorCode::InvalidToken,
        RefusalCode::InvalidPassphrase => ErrorCode::InvalidPassphrase,
        RefusalCode::StaleTimestamp => ErrorCode::StaleTimestamp,
        RefusalCode::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
        RefusalCode::InvalidJson => ErrorCode::InvalidJson,
        RefusalCode::InvalidWebhook => ErrorCode::InvalidWebhook,
    }
}

/// A refused webhook as the sender sees it: the refusal's stable code with its status (401
/// for every credential problem, 400 for bad input, 404 unknown endpoint, 403 from a web page,
/// 413 too large, 415 wrong content type) and, in `details`, the field and the delivery id
/// the streamer finds it under.
pub fn webhook_refusal(refusal: &WebhookRefusal, delivery_id: i64) -> ApiError {
    let mut details = serde_json::json!({ "deliveryId": delivery_id });
    if let Some(field) = &refusal.field {
        details["field"] = field.clone().into();
    }
    ApiError::new(refusal_code(refusal.code), refusal.message.clone()).with_details(details)
}

fn media_error(err: MediaError) -> ApiError {
    let message = err.to_string();
    match err {
        MediaError::Unsupported => ApiError::new(ErrorCode::UnsupportedMediaType, message),
        MediaError::TooLarge { limit } => ApiError::new(ErrorCode::PayloadTooLarge, message)
            .with_details(serde_json::json!({ "limit": limit })),
        MediaError::NotFound => ApiError::new(ErrorCode::MediaNotFound, message),
        MediaError::Io(ref e) => ApiError::internal(ErrorCode::MediaStorageError, e),
    }
}

fn tts_error(err: TtsError) -> ApiError {
    let message = err.to_string();
    match err {
        TtsError::Invalid(_) => ApiError::invalid_fields(message),
        TtsError::VoiceUnavailable { .. } => ApiError::new(ErrorCode::TtsVoiceUnavailable, message),
        TtsError::Render { engine, .. } => {
            // The program's stderr may quote paths; it goes to the log only.
            tracing::error!(error = %message, "speech render failed");
            ApiError::new(
                ErrorCode::TtsRenderFailed,
                format!("{engine} could not render the speech; details are in Stagehand's log"),
            )
        }
        TtsError::Timeout { .. } => {
            tracing::warn!(error = %message, "speech render timed out");
            ApiError::new(ErrorCode::TtsRenderTimeout, message)
        }
        TtsError::AudioNotFound => ApiError::new(ErrorCode::TtsAudioNotFound, message),
        TtsError::Cache(e) => {
            tracing::error!(error = %e, "speech cache failed");
            ApiError::new(
                ErrorCode::TtsCacheError,
                "Stagehand could not read or write its speech cache; details are in its log",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_codes_keep_the_spelling_the_delivery_log_stores() {
        for code in [
            RefusalCode::UnknownWebhook,
            RefusalCode::OriginNotAllowed,
            RefusalCode::PayloadTooLarge,
            RefusalCode::WebhookAuthRequired,
            RefusalCode::InvalidSignature,
            RefusalCode::InvalidToken,
            RefusalCode::InvalidPassphrase,
            RefusalCode::StaleTimestamp,
            RefusalCode::UnsupportedMediaType,
            RefusalCode::InvalidJson,
            RefusalCode::InvalidWebhook,
        ] {
            assert_eq!(refusal_code(code).as_str(), code.as_str());
        }
    }

    #[test]
    fn account_codes_keep_the_spelling_the_engine_events_carry() {
        for err in [
            AccountError::UnknownProvider("x".into()),
            AccountError::NotConfigured {
                title: "Twitch",
                var: "V",
            },
            AccountError::FlowUnavailable("x".into()),
            AccountError::StateInvalid,
            AccountError::CodeRejected { title: "Twitch" },
            AccountError::AccessDenied { title: "Twitch" },
            AccountError::DeviceCodeExpired,
            AccountError::NoDeviceFlow {
                title: "Twitch",
                name: "twitch",
            },
            AccountError::Provider {
                title: "Twitch",
                detail: "x".into(),
            },
            AccountError::NotLinked { title: "Twitch" },
            AccountError::NeedsRelogin {
                title: "Twitch",
                reason: "x".into(),
            },
            AccountError::Invalid("x".into()),
            AccountError::DestinationNotFound,
            AccountError::DestinationExists,
            AccountError::Interrupted,
        ] {
            assert_eq!(account_code(&err).as_str(), err.code(), "{err}");
        }
    }
}
