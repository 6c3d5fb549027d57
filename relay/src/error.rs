//! The one error type of the relay's HTTP edge: every refusal becomes
//! `{"error":{"code":"...","message":"..."}}` with a fitting status and a stable code.
//!
//! Internal details are logged where they happen, never sent.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use stagehand_protocol::ErrorBody;

use crate::RelayError;

/// An error answered to a client.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Plain message for people.
    pub message: String,
    /// Seconds for `Retry-After`, on 429 and 503.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// Builds an error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 404 for any route or path the relay does not serve.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "nothing here")
    }

    /// 404 for a tunnel id that does not exist.
    pub fn unknown_tunnel() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "unknown_tunnel",
            "no tunnel with this id",
        )
    }

    /// 404 for a path outside `webhooks/`.
    pub fn unknown_path() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "unknown_path",
            "the relay only accepts webhooks under /h/{tunnel}/webhooks/",
        )
    }

    /// 403 for a sender outside the path's allow list.
    pub fn forbidden_source() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden_source",
            "this sender's address is not allowed for this webhook path",
        )
    }

    /// 413.
    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body is larger than {limit} bytes"),
        )
    }

    /// 408 for a body that took too long to arrive.
    pub fn body_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            "the body took too long to arrive",
        )
    }

    /// 400 for a body that broke off.
    pub fn body_unreadable() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "body_unreadable",
            "the body could not be read",
        )
    }

    /// 429 with `Retry-After`.
    pub fn rate_limited(retry_after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many webhooks for this tunnel; retry later",
        );
        e.retry_after = Some(retry_after);
        e
    }

    /// 429 with `Retry-After` and a message for the door it was refused at.
    pub fn rate_limited_as(retry_after: u64, message: &str) -> Self {
        let mut e = Self::rate_limited(retry_after);
        e.message = message.to_owned();
        e
    }

    /// 401: no `Authorization: Bearer`.
    pub fn auth_required() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "auth_required",
            "connecting needs the tunnel secret as Authorization: Bearer",
        )
    }

    /// 401: wrong tunnel or secret (the two are not told apart).
    pub fn invalid_credentials() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "the tunnel id or secret is not valid",
        )
    }

    /// 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 503 when the relay cannot store or is stopping.
    pub fn unavailable(err: &RelayError) -> Self {
        tracing::error!(error = %err, "storage unavailable");
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            "the relay cannot store webhooks right now; retry later",
        );
        e.retry_after = Some(1);
        e
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Json(ErrorBody::new(self.code, self.message))).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}
