//! Moderator doors: generating links (streamer), opening them (anyone with the key, rate
//! limited), the panel page and its socket (moderator session), listing and revoking sessions
//! (streamer). Scopes are enforced by the engine; this only finds out who is asking. The
//! panel's socket is in `moderator_socket`.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Json};
use stagehand_engine::EngineError;
use stagehand_engine::moderators::{ModeratorSession, Via};

use crate::AppState;
use crate::auth::{Streamer, cookie};
use crate::error::ApiError;
use crate::guard::Relayed;

/// The moderator session cookie (separate from the streamer's).
pub const MODERATOR_COOKIE: &str = "stagehand_moderator";

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// Fields of a JSON object or a urlencoded form; repeated form keys collect into arrays.
fn fields(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    if is_form(headers) {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|e| ApiError::bad_request("invalid_fields", format!("invalid form: {e}")))?;
        let mut map = serde_json::Map::new();
        for (k, v) in pairs {
            match map.get_mut(&k) {
                Some(serde_json::Value::Array(list)) => list.push(v.into()),
                Some(existing) => {
                    *existing = serde_json::Value::Array(vec![existing.take(), v.into()])
                }
                None => {
                    map.insert(k, v.into());
                }
            }
        }
        Ok(map)
    } else {
        match serde_json::from_slice(body) {
            Ok(serde_json::Value::Object(map)) => Ok(map),
            Ok(_) => Err(ApiError::bad_request("invalid_json", "send a JSON object")),
            Err(e) => Err(ApiError::bad_request("invalid_json", e.to_string())),
        }
    }
}

fn string_field(
    map: &serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<Option<String>, ApiError> {
    match map.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_fields",
            format!("`{name}` must be a string"),
        )),
    }
}

/// `POST /api/moderator-keys/generate` — `{label, scopes, ttl_seconds?, streamer_id?}`.
pub async fn generate(
    _: Streamer,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let map = fields(&headers, &body?)?;
    let invalid = |m: &str| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_fields",
            m.to_owned(),
        )
    };
    for key in map.keys() {
        if !["label", "scopes", "ttl_seconds", "streamer_id"].contains(&key.as_str()) {
            return Err(invalid(&format!(
                "unknown field `{}`",
                key.chars().take(40).collect::<String>()
            )));
        }
    }
    let label = string_field(&map, "label")?.ok_or_else(|| invalid("`label` is required"))?;
    // Scopes: a JSON array, repeated form fields, or one string separated by commas or spaces.
    let scopes: Vec<String> = match map.get("scopes") {
        Some(serde_json::Value::Array(list)) => list
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid("`scopes` holds strings"))
            })
            .collect::<Result<Vec<_>, _>>()?
            .iter()
            .flat_map(|s| {
                s.split([',', ' '])
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect(),
        Some(serde_json::Value::String(s)) => s
            .split([',', ' '])
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => return Err(invalid("`scopes` is required")),
    };
    let ttl = match map.get("ttl_seconds") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) => Some(
            n.as_u64()
                .ok_or_else(|| invalid("`ttl_seconds` must be a whole number"))?,
        ),
        Some(serde_json::Value::String(s)) => Some(
            s.parse()
                .map_err(|_| invalid("`ttl_seconds` must be a whole number"))?,
        ),
        Some(_) => return Err(invalid("`ttl_seconds` must be a whole number")),
    };
    let streamer_id = string_field(&map, "streamer_id")?;
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

/// The session cookie, scoped to the relay's tunnel path (and `Secure` over TLS) when the
/// moderator came through the relay, so it is never sent to anything else on the relay's name.
fn session_cookie(
    token: &str,
    max_age: i64,
    relayed: Option<&Relayed>,
) -> Result<HeaderValue, ApiError> {
    let path = format!("{}/", base(relayed));
    let secure = if relayed.is_some_and(|r| r.door.secure) {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{MODERATOR_COOKIE}={token}; HttpOnly; SameSite=Strict; Path={path}; Max-Age={}{secure}",
        max_age.max(0)
    ))
    .map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "bad cookie",
        )
    })
}

fn refused_page(status: StatusCode, relayed: Option<&Relayed>) -> Response {
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, crate::routes::PAGE_CSP),
        ],
        Html(stagehand_ui::moderator_link_refused_page(base(relayed))),
    )
        .into_response()
}

/// `POST /api/moderator-keys/consume` — form or JSON `key`; sets the session cookie.
pub async fn consume(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    relayed: Option<Extension<Relayed>>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
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
        return Ok(crate::auth::rate_limited(retry));
    }
    let form = is_form(&headers);
    let map = fields(&headers, &body?)?;
    let key = string_field(&map, "key")?.unwrap_or_default();
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
            let cookie = session_cookie(opened.token.expose(), max_age, relayed)?;
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
            response.headers_mut().insert(header::SET_COOKIE, cookie);
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
            (header::CONTENT_SECURITY_POLICY, crate::routes::PAGE_CSP),
        ],
        Html(stagehand_ui::moderator_link_page(
            &key,
            base(relayed.as_ref()),
        )),
    )
        .into_response()
}

pub(crate) async fn moderator_from(
    state: &AppState,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<Option<ModeratorSession>, ApiError> {
    let token =
        cookie(headers, MODERATOR_COOKIE).or_else(|| query.get("session").map(String::as_str));
    match token {
        Some(t) => Ok(state.engine.moderator_session(t).await?),
        None => Ok(None),
    }
}

/// `GET /moderator` — the panel, for a live moderator session.
pub async fn panel(
    State(state): State<AppState>,
    relayed: Option<Extension<Relayed>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let relayed = relayed.map(|Extension(r)| r);
    let prefix = base(relayed.as_ref()).to_owned();
    let Some(session) = moderator_from(&state, &headers, &HashMap::new()).await? else {
        // A cookie that no longer opens anything means access ended (revoked or expired);
        // no cookie at all means the link was never opened here.
        if cookie(&headers, MODERATOR_COOKIE).is_some() {
            return Ok((
                StatusCode::UNAUTHORIZED,
                [
                    (header::CACHE_CONTROL, "no-store"),
                    (header::CONTENT_SECURITY_POLICY, crate::routes::PAGE_CSP),
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
            (header::CONTENT_SECURITY_POLICY, crate::routes::PAGE_CSP),
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
