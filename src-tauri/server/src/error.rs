//! The one error type of the HTTP edge: every failure becomes
//! `{"error":{"code":"...","message":"..."}}` with a fitting status.
//!
//! Handlers return `Result<_, ApiError>`; engine errors convert with `?`. Internal details are
//! logged here, never sent: the client gets a stable code and a plain message.

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use stagehand_engine::EngineError;
use stagehand_engine::accounts::AccountError;
use stagehand_engine::moderators::ModeratorError;
use stagehand_engine::obs::ObsError;
use stagehand_engine::overlays::OverlayError;
use stagehand_engine::secrets::SecretError;
use stagehand_engine::webhooks::{RefusalCode, WebhookError, WebhookRefusal};
use stagehand_protocol::ErrorBody;

/// The stable code of an error response, attached to the response for metrics.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

/// An error answered to a client.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Plain message for people.
    pub message: String,
    /// Machine-readable extras.
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    /// Builds an error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    /// Adds machine-readable details.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 401: no credentials.
    pub fn auth_required() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "auth_required",
            "this endpoint needs the streamer token (x-streamer-token or Authorization: Bearer) or a signed-in session",
        )
    }

    /// 401: credentials present but wrong.
    pub fn invalid_credentials() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "the token, code or session is not valid",
        )
    }

    /// 404.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "nothing here")
    }

    fn internal(code: &'static str, err: &dyn std::fmt::Display) -> Self {
        tracing::error!(code, error = %err, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            code,
            "Stagehand hit an internal error; details are in its log",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = ErrorBody::new(self.code, self.message);
        body.error.details = self.details;
        let mut response = (self.status, Json(body)).into_response();
        response.extensions_mut().insert(ErrorCode(self.code));
        response
    }
}

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
                    StatusCode::SERVICE_UNAVAILABLE,
                    "secrets_unavailable",
                    "the secret store cannot be reached; see `stagehand secrets doctor`",
                )
            }
            EngineError::Secret(SecretError::InvalidName(_)) => {
                Self::bad_request("invalid_secret_name", err.to_string())
            }
            EngineError::Overlay(e) => overlay_error(e),
            EngineError::Moderator(e) => moderator_error(e),
            EngineError::Relay(e) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_fields",
                e.to_string(),
            ),
            EngineError::Obs(e) => {
                let message = e.to_string();
                match e {
                    ObsError::NotConnected(_) => Self::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "obs_not_connected",
                        message,
                    ),
                    ObsError::Refused(_) => {
                        Self::new(StatusCode::BAD_GATEWAY, "obs_refused", message)
                    }
                    ObsError::Invalid(_) => {
                        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_fields", message)
                    }
                    ObsError::NoBrowserSource => {
                        Self::new(StatusCode::CONFLICT, "obs_no_browser_source", message)
                    }
                }
            }
            EngineError::Media(e) => media_error(e),
            EngineError::Tts(e) => crate::tts::error(e),
            EngineError::Webhook(e) => webhook_error(e),
            EngineError::Account(e) => account_error(e),
            EngineError::Store(ref e) => Self::internal("store_error", e),
            other => Self::internal("internal_error", &other),
        }
    }
}

fn moderator_error(err: ModeratorError) -> ApiError {
    let message = err.to_string();
    let (status, code) = match &err {
        ModeratorError::InvalidKey => (StatusCode::UNAUTHORIZED, "invalid_key"),
        ModeratorError::SessionEnded => (StatusCode::UNAUTHORIZED, "session_ended"),
        ModeratorError::ScopeDenied(_) => (StatusCode::FORBIDDEN, "scope_denied"),
        ModeratorError::NotAvailable(_) => (StatusCode::NOT_IMPLEMENTED, "not_available"),
        ModeratorError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_fields"),
        ModeratorError::NotFound => (StatusCode::NOT_FOUND, "moderator_session_not_found"),
        ModeratorError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
    };
    let error = ApiError::new(status, code, message);
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
        OverlayError::NotFound => {
            ApiError::new(StatusCode::NOT_FOUND, "overlay_not_found", message)
        }
        OverlayError::LimitReached { limit } => {
            ApiError::new(StatusCode::FORBIDDEN, "overlay_limit_reached", message)
                .with_details(serde_json::json!({ "limit": limit }))
        }
        OverlayError::Invalid(_) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_fields", message)
        }
        OverlayError::Conflict { current, .. } => {
            ApiError::new(StatusCode::CONFLICT, "version_conflict", message)
                .with_details(serde_json::json!({ "currentVersion": current }))
        }
        OverlayError::LinkRefused(_) => {
            ApiError::new(StatusCode::FORBIDDEN, "overlay_link_invalid", message)
        }
    }
}

fn webhook_error(err: WebhookError) -> ApiError {
    let message = err.to_string();
    let (status, code) = match err {
        WebhookError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_fields"),
        WebhookError::NotFound => (StatusCode::NOT_FOUND, "webhook_not_found"),
        WebhookError::Exists => (StatusCode::CONFLICT, "webhook_exists"),
        WebhookError::LimitReached(_) => (StatusCode::FORBIDDEN, "webhook_limit_reached"),
    };
    ApiError::new(status, code, message)
}

impl From<AccountError> for ApiError {
    fn from(err: AccountError) -> Self {
        account_error(err)
    }
}

fn account_error(err: AccountError) -> ApiError {
    let (status, details) = match &err {
        AccountError::Store(e) => return ApiError::internal("store_error", e),
        AccountError::Secret(_) | AccountError::Internal(_) => {
            return ApiError::internal("internal_error", &err);
        }
        AccountError::UnknownProvider(_)
        | AccountError::NoDeviceFlow { .. }
        | AccountError::NotLinked { .. }
        | AccountError::DestinationNotFound => (StatusCode::NOT_FOUND, None),
        AccountError::NotConfigured { var, .. } => (
            StatusCode::CONFLICT,
            Some(serde_json::json!({ "envVar": var })),
        ),
        AccountError::FlowUnavailable(_)
        | AccountError::NeedsRelogin { .. }
        | AccountError::DestinationExists => (StatusCode::CONFLICT, None),
        AccountError::StateInvalid | AccountError::CodeRejected { .. } => {
            (StatusCode::BAD_REQUEST, None)
        }
        AccountError::AccessDenied { .. } => (StatusCode::FORBIDDEN, None),
        AccountError::DeviceCodeExpired => (StatusCode::GONE, None),
        AccountError::Provider { .. } => (StatusCode::BAD_GATEWAY, None),
        AccountError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, None),
        AccountError::Interrupted => (StatusCode::SERVICE_UNAVAILABLE, None),
    };
    let error = ApiError::new(status, err.code(), err.to_string());
    match details {
        Some(details) => error.with_details(details),
        None => error,
    }
}

/// A refused webhook as the sender sees it: the refusal's stable code with its status (401
/// for every credential problem, 400 for bad input, 404 unknown endpoint, 403 from a web page,
/// 413 too large, 415 wrong content type) and, in `details`, the field and the delivery id
/// the streamer finds it under.
pub fn webhook_refusal(refusal: &WebhookRefusal, delivery_id: i64) -> ApiError {
    let status = match refusal.code {
        RefusalCode::UnknownWebhook => StatusCode::NOT_FOUND,
        RefusalCode::OriginNotAllowed => StatusCode::FORBIDDEN,
        RefusalCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        RefusalCode::WebhookAuthRequired
        | RefusalCode::InvalidSignature
        | RefusalCode::InvalidToken
        | RefusalCode::InvalidPassphrase
        | RefusalCode::StaleTimestamp => StatusCode::UNAUTHORIZED,
        RefusalCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        RefusalCode::InvalidJson | RefusalCode::InvalidWebhook => StatusCode::BAD_REQUEST,
    };
    let mut details = serde_json::json!({ "deliveryId": delivery_id });
    if let Some(field) = &refusal.field {
        details["field"] = field.clone().into();
    }
    ApiError::new(status, refusal.code.as_str(), refusal.message.clone()).with_details(details)
}

fn media_error(err: stagehand_engine::media::MediaError) -> ApiError {
    use stagehand_engine::media::MediaError;
    let message = err.to_string();
    match err {
        MediaError::Unsupported => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        ),
        MediaError::TooLarge { limit } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
                .with_details(serde_json::json!({ "limit": limit }))
        }
        MediaError::NotFound => ApiError::new(StatusCode::NOT_FOUND, "media_not_found", message),
        MediaError::Io(ref e) => ApiError::internal("media_storage_error", e),
    }
}

impl From<axum::extract::multipart::MultipartRejection> for ApiError {
    fn from(rejection: axum::extract::multipart::MultipartRejection) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "send the upload as multipart/form-data with one field named `file` ({})",
                rejection.body_text()
            ),
        )
    }
}

impl From<axum::extract::multipart::MultipartError> for ApiError {
    fn from(err: axum::extract::multipart::MultipartError) -> Self {
        if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is larger than this endpoint accepts (media.max_upload_bytes)",
            )
        } else {
            Self::bad_request("invalid_multipart", err.body_text())
        }
    }
}

fn from_bytes_rejection(rejection: &BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is larger than this endpoint accepts",
        )
    } else {
        ApiError::bad_request("bad_body", rejection.body_text())
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        from_bytes_rejection(&rejection)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::BytesRejection(b) => from_bytes_rejection(&b),
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ),
            JsonRejection::JsonSyntaxError(e) => Self::bad_request("invalid_json", e.body_text()),
            JsonRejection::JsonDataError(e) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_fields",
                e.body_text(),
            ),
            other => Self::bad_request("bad_body", other.body_text()),
        }
    }
}
