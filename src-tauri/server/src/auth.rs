//! Who is calling: the [`Streamer`] extractor, the moderator session a request carries
//! ([`moderator`]), and the sign-in/sign-out routes that trade the streamer token (or the
//! desktop's one-time code) for an HttpOnly session cookie.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use stagehand_engine::audit::{AuditEntry, Outcome};
use stagehand_engine::moderators::ModeratorSession;
use stagehand_engine::{EngineError, Secret};

use crate::cookies;
use crate::error::ApiError;
use crate::extract::FormOrJson;
use crate::state::AppState;

/// The sign-in and sign-out routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/session", post(login))
        .route("/session/logout", post(logout))
}

/// The live moderator session a request carries, in its cookie or (for the panel's socket) a
/// `session` query parameter; `None` when it carries none or one that has ended.
pub(crate) async fn moderator(
    state: &AppState,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<Option<ModeratorSession>, ApiError> {
    let token = cookies::moderator(headers).or_else(|| query.get("session").map(String::as_str));
    match token {
        Some(t) => Ok(state.engine.moderator_session(t).await?),
        None => Ok(None),
    }
}

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
        if let Some(session) = cookies::session(headers) {
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

/// Body of `POST /session`: exactly one of the two.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginForm {
    token: Option<String>,
    code: Option<String>,
}

/// `POST /session` — sign in with `token` or `code`, as JSON or a form.
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Result<FormOrJson<LoginForm>, ApiError>,
) -> Result<Response, ApiError> {
    let engine = &state.engine;
    // Before the body is judged: a malformed attempt is an attempt too.
    if let Err(retry) = state.login_limiter.check(peer.ip(), engine.now_ms()) {
        return Ok(ApiError::rate_limited(retry));
    }
    let FormOrJson {
        value: parsed,
        form,
    } = body?;
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
            return Err(ApiError::malformed("send exactly one of `token` or `code`"));
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
    let mut response = if form {
        Redirect::to("/").into_response()
    } else {
        Json(serde_json::json!({
            "ok": true,
            "expiresAt": stagehand_engine::clock::rfc3339(session.expires_ms),
        }))
        .into_response()
    };
    cookies::set_session(&mut response, session.id.expose(), ttl)?;
    Ok(response)
}

/// `POST /session/logout` — ends the session and clears the cookie.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(session) = cookies::session(&headers)
        && state.engine.logout(session).await?
    {
        state
            .engine
            .audit()
            .record(AuditEntry::new("streamer", "auth.logout", Outcome::Ok))
            .await?;
    }
    let mut response = Redirect::to("/login").into_response();
    cookies::clear_session(&mut response)?;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

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
}
