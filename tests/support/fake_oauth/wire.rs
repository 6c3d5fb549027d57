//! The HTTP pieces every fake provider shares: form bodies, `Authorization` headers, RFC 6749
//! error bodies, PKCE's S256 and the loopback redirect rule.

use std::collections::HashMap;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use sha2::{Digest, Sha256};

pub(super) fn form(headers: &HeaderMap, body: &[u8]) -> Option<HashMap<String, String>> {
    let urlencoded = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !urlencoded {
        return None;
    }
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()
        .map(|pairs| pairs.into_iter().collect())
}

pub(super) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

pub(super) fn bearer(headers: &HeaderMap, scheme: &str) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (s, token) = value.split_once(' ')?;
    s.eq_ignore_ascii_case(scheme)
        .then(|| token.trim().to_owned())
}

pub(super) fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// RFC 8252 §7.3: a loopback IP literal with any port; Twitch additionally accepts localhost.
pub(super) fn loopback(redirect: &str) -> bool {
    redirect.starts_with("http://127.0.0.1:") || redirect.starts_with("http://localhost:")
}

pub(super) fn redirect_with(redirect: &str, params: &[(&str, &str)]) -> String {
    let query = serde_urlencoded::to_string(params).unwrap_or_default();
    let sep = if redirect.contains('?') { '&' } else { '?' };
    format!("{redirect}{sep}{query}")
}
