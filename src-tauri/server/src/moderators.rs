//! Moderator doors: generating links (streamer), opening them (anyone with the key, rate
//! limited), the panel page and its socket (moderator session), listing and revoking sessions
//! (streamer). Scopes are enforced by the engine; this only finds out who is asking. The
//! panel's socket is in `moderator_socket`.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Deserializer};
use stagehand_engine::EngineError;
use stagehand_engine::moderators::Via;

use crate::auth::{self, Streamer};
use crate::cookies::{self, CookieScope};
use crate::error::ApiError;
use crate::extract::FormOrJson;
use crate::guard::Relayed;
use crate::moderator_socket;
use crate::pages::PAGE_CSP;
use crate::state::AppState;

/// The moderator routes: links, sessions, the panel and its socket.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/moderator-keys/generate", post(generate))
        .route("/api/moderator-keys/consume", post(consume))
        .route("/api/moderator-sessions", get(sessions))
        .route("/api/moderator-sessions/{id}", delete(revoke))
        .route("/m/{key}", get(link_page))
        .route("/moderator", get(panel))
        .route("/ws/moderator", get(moderator_socket::socket))
}

/// Body of `POST /api/moderator-keys/generate`, as JSON or a form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateKey {
    label: String,
    #[serde(deserialize_with = "scope_list")]
    scopes: Vec<String>,
    #[serde(default, deserialize_with = "whole_number")]
    ttl_seconds: Option<u64>,
    #[serde(default)]
    streamer_id: Option<String>,
}

/// Scopes: a JSON array, repeated form fields, or one string; each string may hold several
/// scopes separated by commas or spaces.
fn scope_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let split = |s: &str| {
        s.split([',', ' '])
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    match OneOrMany::deserialize(d) {
        Ok(OneOrMany::One(s)) => Ok(split(&s)),
        Ok(OneOrMany::Many(list)) => Ok(list.iter().flat_map(|s| split(s)).collect()),
        Err(_) => Err(serde::de::Error::custom(
            "`scopes` is a list of strings or one string",
        )),
    }
}

/// A whole number, as a JSON number or its decimal text (a form field); `null` is none.
fn whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumberOrText {
        Number(u64),
        Text(String),
    }
    let invalid = || serde::de::Error::custom("`ttl_seconds` must be a whole number");
    match Option::<NumberOrText>::deserialize(d) {
        Ok(None) => Ok(None),
        Ok(Some(NumberOrText::Number(n))) => Ok(Some(n)),
        Ok(Some(NumberOrText::Text(s))) => s.parse().map(Some).map_err(|_| invalid()),
        Err(_) => Err(invalid()),
    }
}

/// `POST /api/moderator-keys/generate` — `{label, scopes, ttl_seconds?, streamer_id?}`.
pub async fn generate(
    _: Streamer,
    State(state): State<AppState>,
    FormOrJson { value: body, .. }: FormOrJson<GenerateKey>,
) -> Result<Response, ApiError> {
    let GenerateKey {
        label,
        scopes,
        ttl_seconds: ttl,
        streamer_id,
    } = body;
    let made = state
        .engine
        .moderator_key_generate(&label, &scopes, ttl, streamer_id)
        .await?;
    // With a relay configured, moderators anywhere get the relay's link; the local (or LAN)
    // one stays in the answer for someone in the same room.
    let local_link = format!("{}/m/{}", state.moderator_url, made.key.expose());
    let relay_link = state.engine.relay_moderator_link(made.key.expose());
    let link = relay_link.clone().unwrap_or_else(|| local_link.clone());
    let local_link = if state.moderator_url == state.local_url {
        local_link
    } else {
        format!("{}/m/{}", state.local_url, made.key.expose())
    };
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({
            "key": made.key.expose(),
            "link": link,
            "local_link": local_link,
            "relay_link": relay_link,
            "expires_at": stagehand_engine::clock::rfc3339(made.expires_ms),
            "scopes": made.scopes,
        })),
    )
        .into_response())
}

/// The path prefix of a moderator's pages: `/t/{tunnel}` through the relay, else nothing.
fn base(relayed: Option<&Relayed>) -> &str {
    relayed.map_or("", |r| r.door.prefix.as_str())
}

/// Where the moderator's session cookie applies: under the relay's tunnel path (and `Secure`
/// over TLS) when the moderator came through the relay.
fn cookie_scope(relayed: Option<&Relayed>) -> CookieScope<'_> {
    CookieScope {
        prefix: base(relayed),
        secure: relayed.is_some_and(|r| r.door.secure),
    }
}

fn refused_page(status: StatusCode, relayed: Option<&Relayed>) -> Response {
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
        ],
        Html(stagehand_ui::moderator_link_refused_page(base(relayed))),
    )
        .into_response()
}

/// Body of `POST /api/moderator-keys/consume`; other fields are ignored, and a missing key is
/// refused like a wrong one.
#[derive(Debug, Deserialize)]
pub struct ConsumeKey {
    #[serde(default)]
    key: Option<String>,
}

/// `POST /api/moderator-keys/consume` — form or JSON `key`; sets the session cookie.
pub async fn consume(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    relayed: Option<Extension<Relayed>>,
    body: Result<FormOrJson<ConsumeKey>, ApiError>,
) -> Result<Response, ApiError> {
    let relayed = relayed.map(|Extension(r)| r);
    let relayed = relayed.as_ref();
    // Through the relay the TCP peer is this engine; the relay names the moderator. Relayed
    // attempts whose address the relay did not give share a bucket of their own ("::"), never
    // the one of this machine's own browser.
    let client = match relayed {
        Some(r) => r
            .client
            .unwrap_or(std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)),
        None => peer.ip(),
    };
    if let Err(retry) = state.consume_limiter.check(client, state.engine.now_ms()) {
        return Ok(ApiError::rate_limited(retry));
    }
    let FormOrJson { value, form } = body?;
    let key = value.key.unwrap_or_default();
    let via = if relayed.is_some() {
        Via::Relay
    } else {
        Via::Local
    };
    match state
        .engine
        .moderator_key_consume(&key, Some(client.to_string()), via)
        .await
    {
        Ok(opened) => {
            let max_age = (opened.session.expires_ms - state.engine.now_ms()) / 1000;
            let mut response = if form {
                Redirect::to(&format!("{}/moderator", base(relayed))).into_response()
            } else {
                Json(serde_json::json!({
                    "session": opened.token.expose(),
                    "expires_at": opened.session.expires_at,
                    "scopes": opened.session.scopes,
                }))
                .into_response()
            };
            cookies::set_moderator(
                &mut response,
                opened.token.expose(),
                max_age,
                cookie_scope(relayed),
            )?;
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(response)
        }
        Err(EngineError::Moderator(_)) if form => {
            Ok(refused_page(StatusCode::UNAUTHORIZED, relayed))
        }
        Err(e) => Err(e.into()),
    }
}

/// `GET /m/{key}` — a page that opens the panel by posting the key (never consumed by a GET, so
/// link previews cannot burn it).
pub async fn link_page(Path(key): Path<String>, relayed: Option<Extension<Relayed>>) -> Response {
    let relayed = relayed.map(|Extension(r)| r);
    if key.len() > 128
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return refused_page(StatusCode::UNAUTHORIZED, relayed.as_ref());
    }
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
        ],
        Html(stagehand_ui::moderator_link_page(
            &key,
            base(relayed.as_ref()),
        )),
    )
        .into_response()
}

/// `GET /moderator` — the panel, for a live moderator session.
pub async fn panel(
    State(state): State<AppState>,
    relayed: Option<Extension<Relayed>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let relayed = relayed.map(|Extension(r)| r);
    let prefix = base(relayed.as_ref()).to_owned();
    let Some(session) = auth::moderator(&state, &headers, &HashMap::new()).await? else {
        // A cookie that no longer opens anything means access ended (revoked or expired);
        // no cookie at all means the link was never opened here.
        if cookies::moderator(&headers).is_some() {
            return Ok((
                StatusCode::UNAUTHORIZED,
                [
                    (header::CACHE_CONTROL, "no-store"),
                    (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
                ],
                Html(stagehand_ui::moderator_access_ended_page(&prefix)),
            )
                .into_response());
        }
        return Ok(refused_page(StatusCode::UNAUTHORIZED, relayed.as_ref()));
    };
    let view = stagehand_ui::ModeratorView {
        label: session.label.clone(),
        scopes: session
            .scopes
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect(),
        expires_at: session.expires_at.clone(),
        base: prefix,
    };
    Ok((
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
        ],
        Html(stagehand_ui::moderator_panel_page(&view)),
    )
        .into_response())
}

/// `GET /api/moderator-sessions`
pub async fn sessions(
    _: Streamer,
    State(state): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let sessions = state.engine.moderator_sessions().await?;
    Ok(Json(serde_json::json!({ "sessions": sessions })))
}

/// `DELETE /api/moderator-sessions/{id}`
pub async fn revoke(
    _: Streamer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.engine.moderator_session_revoke(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
