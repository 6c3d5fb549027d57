//! The one error type of the HTTP edge: every failure becomes
//! `{"error":{"code":"...","message":"..."}}` with the status [`status`] gives its code.
//!
//! Handlers return `Result<_, ApiError>`; engine errors convert with `?` (the mapping of each
//! engine error to a code is in [`engine`]). Internal details are logged, never sent: the
//! client gets a stable [`ErrorCode`] and a plain message.

mod engine;

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use stagehand_protocol::{ErrorBody, ErrorCode};

pub use engine::webhook_refusal;

/// The HTTP status of each error code: the one table. A code answers with one status
/// wherever it is raised, with the single exception documented on [`ApiError::malformed`].
pub fn status(code: ErrorCode) -> StatusCode {
    use ErrorCode as C;
    match code {
        C::InvalidJson
        | C::InvalidQuery
        | C::BadBody
        | C::InvalidMultipart
        | C::MissingFile
        | C::InvalidSecretName
        | C::InvalidWebhook
        | C::AccountStateInvalid
        | C::AccountCodeRejected => StatusCode::BAD_REQUEST,
        C::AuthRequired
        | C::InvalidCredentials
        | C::InvalidKey
        | C::SessionEnded
        | C::WebhookAuthRequired
        | C::InvalidSignature
        | C::InvalidToken
        | C::InvalidPassphrase
        | C::StaleTimestamp => StatusCode::UNAUTHORIZED,
        C::HostNotAllowed
        | C::OriginNotAllowed
        | C::OriginRequired
        | C::LanNotAllowed
        | C::OverlayLimitReached
        | C::OverlayLinkInvalid
        | C::ScopeDenied
        | C::WebhookLimitReached
        | C::AccountAccessDenied => StatusCode::FORBIDDEN,
        C::NotFound
        | C::OverlayNotFound
        | C::ModeratorSessionNotFound
        | C::MediaNotFound
        | C::TtsAudioNotFound
        | C::WebhookNotFound
        | C::UnknownWebhook
        | C::AccountProviderUnknown
        | C::AccountDeviceFlowNotFound
        | C::AccountNotLinked
        | C::DestinationNotFound
        | C::DiscordWebhookNotFound => StatusCode::NOT_FOUND,
        C::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        C::VersionConflict
        | C::ObsNoBrowserSource
        | C::WebhookExists
        | C::AccountProviderNotConfigured
        | C::AccountFlowUnavailable
        | C::AccountNeedsRelogin
        | C::DestinationExists => StatusCode::CONFLICT,
        C::AccountDeviceCodeExpired => StatusCode::GONE,
        C::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        C::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        C::RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
        C::InvalidFields | C::TtsVoiceUnavailable => StatusCode::UNPROCESSABLE_ENTITY,
        C::UpgradeRequired => StatusCode::UPGRADE_REQUIRED,
        C::VersionRequired => StatusCode::PRECONDITION_REQUIRED,
        C::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        C::InternalError | C::StoreError | C::MediaStorageError | C::TtsCacheError => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        C::NotAvailable => StatusCode::NOT_IMPLEMENTED,
        C::ObsRefused | C::TtsRenderFailed | C::AccountProviderError => StatusCode::BAD_GATEWAY,
        C::NotReady
        | C::SecretsUnavailable
        | C::ObsNotConnected
        | C::TtsRenderTimeout
        | C::AccountInterrupted => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// An error answered to a client.
#[derive(Debug)]
pub struct ApiError {
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// Plain message for people.
    pub message: String,
    /// Machine-readable extras.
    pub details: Option<serde_json::Value>,
    status: StatusCode,
}

impl ApiError {
    /// An error with `code`, answered with the status the table gives it.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
            status: status(code),
        }
    }

    /// `invalid_fields` answered with 400 rather than the table's 422: the request's shape is
    /// wrong before any one field can be judged (a form that does not parse, both or neither
    /// of two alternatives, two files in a one-file upload, an If-Match that is not a version).
    /// These answered 400 before the table existed, and clients and tests rely on it.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            ..Self::new(ErrorCode::InvalidFields, message)
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Adds machine-readable details.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// A field is wrong: `422 invalid_fields`.
    pub fn invalid_fields(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidFields, message)
    }

    /// No credentials.
    pub fn auth_required() -> Self {
        Self::new(
            ErrorCode::AuthRequired,
            "this endpoint needs the streamer token (x-streamer-token or Authorization: Bearer) or a signed-in session",
        )
    }

    /// Credentials present but wrong.
    pub fn invalid_credentials() -> Self {
        Self::new(
            ErrorCode::InvalidCredentials,
            "the token, code or session is not valid",
        )
    }

    /// Nothing at this path.
    pub fn not_found() -> Self {
        Self::new(ErrorCode::NotFound, "nothing here")
    }

    /// A failure inside Stagehand: logged with its details, answered without them.
    pub(crate) fn internal(code: ErrorCode, err: &dyn std::fmt::Display) -> Self {
        tracing::error!(code = code.as_str(), error = %err, "request failed");
        Self::new(
            code,
            "Stagehand hit an internal error; details are in its log",
        )
    }

    /// A query string that does not parse.
    pub fn invalid_query(rejection: &QueryRejection) -> Self {
        Self::new(ErrorCode::InvalidQuery, rejection.body_text())
    }

    /// Too many attempts: 429 with `Retry-After`.
    pub fn rate_limited(retry_seconds: u64) -> Response {
        let mut response = Self::new(
            ErrorCode::RateLimited,
            format!("too many attempts; try again in {retry_seconds} s"),
        )
        .into_response();
        if let Ok(v) = HeaderValue::from_str(&retry_seconds.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = ErrorBody::new(self.code.as_str(), self.message);
        body.error.details = self.details;
        let mut response = (self.status, Json(body)).into_response();
        // For the request metrics: errors counted by code.
        response.extensions_mut().insert(self.code);
        response
    }
}

impl From<axum::extract::multipart::MultipartRejection> for ApiError {
    fn from(rejection: axum::extract::multipart::MultipartRejection) -> Self {
        Self::new(
            ErrorCode::UnsupportedMediaType,
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
                ErrorCode::PayloadTooLarge,
                "the request body is larger than this endpoint accepts (media.max_upload_bytes)",
            )
        } else {
            Self::new(ErrorCode::InvalidMultipart, err.body_text())
        }
    }
}

fn from_bytes_rejection(rejection: &BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            "the request body is larger than this endpoint accepts",
        )
    } else {
        ApiError::new(ErrorCode::BadBody, rejection.body_text())
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
                ErrorCode::UnsupportedMediaType,
                "send the body as application/json",
            ),
            JsonRejection::JsonSyntaxError(e) => Self::new(ErrorCode::InvalidJson, e.body_text()),
            JsonRejection::JsonDataError(e) => Self::invalid_fields(e.body_text()),
            other => Self::new(ErrorCode::BadBody, other.body_text()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_client_or_server_error_status() {
        for &code in ErrorCode::ALL {
            let status = status(code);
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{code} answers {status}: an error code never answers success"
            );
        }
    }

    #[test]
    fn the_table_keeps_the_statuses_clients_rely_on() {
        for (code, expected) in [
            (ErrorCode::InvalidFields, 422),
            (ErrorCode::InvalidJson, 400),
            (ErrorCode::AuthRequired, 401),
            (ErrorCode::OriginNotAllowed, 403),
            (ErrorCode::VersionConflict, 409),
            (ErrorCode::VersionRequired, 428),
            (ErrorCode::RateLimited, 429),
            (ErrorCode::ObsNotConnected, 503),
            (ErrorCode::AccountDeviceCodeExpired, 410),
        ] {
            assert_eq!(status(code).as_u16(), expected, "{code}");
        }
        assert_eq!(
            ApiError::malformed("x").status(),
            StatusCode::BAD_REQUEST,
            "a malformed request stays 400 although invalid_fields is 422 in the table"
        );
    }

    #[test]
    fn error_responses_carry_their_code_for_the_metrics() {
        let response = ApiError::not_found().into_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            response.extensions().get::<ErrorCode>(),
            Some(&ErrorCode::NotFound)
        );
    }
}
