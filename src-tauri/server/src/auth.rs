//! Who is calling: the [`Streamer`] extractor, and the sign-in/sign-out routes that trade the
//! streamer token (or the desktop's one-time code) for an HttpOnly session cookie.

use std::net::SocketAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use stagehand_engine::audit::{AuditEntry, Outcome};
use stagehand_engine::{EngineError, Secret};

use crate::AppState;
use crate::error::ApiError;

/// Name of the streamer session cookie.
pub const SESSION_COOKIE: &str = "stagehand_session";

/// Proof that the caller is the streamer (token header or session cookie).
#[derive(Debug, Clone, Copy)]
pub struct Streamer;

/// The token a non-browser client sent, if it sent a token header at all: `Some(None)` means
/// a header was there but is unusable (another scheme, not text). The guard and the extractor
/// both use this, so they always agree on who is an API client.
pub fn token_header(headers: &HeaderMap) -> Option<Option<&str>> {
    if let Some(v) = headers.get("x-streamer-token") {
        return Some(v.to_str().ok());
    }
    let auth = headers.get(header::AUTHORIZATION)?;
    let bearer = auth.to_str().ok().and_then(|auth| {
        let (scheme, rest) = auth.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    });
    Some(bearer)
}

/// The value of cookie `name`, if sent.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl Streamer {
    /// Checks the request's credentials; `Ok(false)` when none were sent.
    async fn check(headers: &HeaderMap, state: &AppState) -> Result<bool, ApiError> {
        // A token header, usable or not, is the whole credential: no falling back to a cookie.
        if let Some(token) = token_header(headers) {
            return if token.is_some_and(|t| state.engine.check_streamer_token(t)) {
                Ok(true)
            } else {
                Err(ApiError::invalid_credentials())
            };
        }
        if let Some(session) = cookie(headers, SESSION_COOKIE) {
            return if state.engine.check_session(session).await? {
                Ok(true)
            } else {
                Err(ApiError::invalid_credentials())
            };
        }
        Ok(false)
    }

    /// Whether the request is signed in (for pages that redirect instead of refusing).
    pub async fn signed_in(headers: &HeaderMap, state: &AppState) -> bool {
        matches!(Self::check(headers, state).await, Ok(true))
    }
}

impl FromRequestParts<AppState> for Streamer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if Self::check(&parts.headers, state).await? {
            Ok(Streamer)
        } else {
            Err(ApiError::auth_required())
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginForm {
    token: Option<String>,
    code: Option<String>,
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

fn session_cookie(value: &str, max_age: Option<u64>) -> Result<HeaderValue, ApiError> {
    let age = max_age.map_or_else(|| "Max-Age=0".to_owned(), |s| format!("Max-Age={s}"));
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; {age}"
    ))
    .map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "bad cookie",
        )
    })
}

/// 429 with `Retry-After`.
pub fn rate_limited(retry_seconds: u64) -> Response {
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many attempts; try again in {retry_seconds} s"),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&retry_seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

/// `POST /session` — sign in with `token` or `code`, as JSON or a form.
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let engine = &state.engine;
    if let Err(retry) = state.login_limiter.check(peer.ip(), engine.now_ms()) {
        return Ok(rate_limited(retry));
    }
    let body = body?;
    let form = is_form(&headers);
    let parsed: LoginForm = if form {
        serde_urlencoded::from_bytes(&body).map_err(|e| {
            ApiError::bad_request("invalid_fields", format!("invalid sign-in form: {e}"))
        })?
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request("invalid_json", format!("invalid sign-in body: {e}"))
        })?
    };
    let client = Some(peer.ip().to_string());
    let (method, result) = match (parsed.token.map(Secret::new), parsed.code.map(Secret::new)) {
        (Some(token), None) => (
            "token",
            engine
                .login_with_token(token.expose(), client.clone())
                .await,
        ),
        (None, Some(code)) => (
            "code",
            engine.login_with_code(code.expose(), client.clone()).await,
        ),
        _ => {
            return Err(ApiError::bad_request(
                "invalid_fields",
                "send exactly one of `token` or `code`",
            ));
        }
    };
    let outcome = if result.is_ok() {
        Outcome::Ok
    } else {
        Outcome::Denied
    };
    engine
        .audit()
        .record(
            AuditEntry::new("streamer", "auth.login", outcome)
                .client(client)
                .detail(serde_json::json!({ "method": method })),
        )
        .await?;
    let session = match result {
        Ok(session) => session,
        Err(EngineError::Auth(_)) if form => {
            return Ok((
                StatusCode::UNAUTHORIZED,
                Html(stagehand_ui::login_page(Some(
                    "That token is not right. Print it with `stagehand token`.",
                ))),
            )
                .into_response());
        }
        Err(e) => return Err(e.into()),
    };
    let ttl = state.engine.config().security.session_ttl_seconds;
    let cookie = session_cookie(session.id.expose(), Some(ttl))?;
    let mut response = if form {
        Redirect::to("/").into_response()
    } else {
        Json(serde_json::json!({
            "ok": true,
            "expiresAt": stagehand_engine::clock::rfc3339(session.expires_ms),
        }))
        .into_response()
    };
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(response)
}

/// `POST /session/logout` — ends the session and clears the cookie.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(session) = cookie(&headers, SESSION_COOKIE)
        && state.engine.logout(session).await?
    {
        state
            .engine
            .audit()
            .record(AuditEntry::new("streamer", "auth.logout", Outcome::Ok))
            .await?;
    }
    let mut response = Redirect::to("/login").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie("", None)?);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_headers_are_recognised_even_when_unusable() {
        let mut headers = HeaderMap::new();
        assert_eq!(token_header(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(
            token_header(&headers),
            Some(None),
            "another scheme is a header, not a token"
        );
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer  t0k "),
        );
        assert_eq!(token_header(&headers), Some(Some("t0k")));
        headers.insert("x-streamer-token", HeaderValue::from_static("x"));
        assert_eq!(
            token_header(&headers),
            Some(Some("x")),
            "x-streamer-token wins"
        );
    }

    #[test]
    fn cookie_lookup_finds_the_named_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; stagehand_session=xyz; b=2"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&headers, "c"), None);
    }
}
