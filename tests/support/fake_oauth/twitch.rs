//! Twitch's OAuth and Helix, under `/twitch`: the device flow with scripted poll answers, the
//! token endpoint's three grants with Twitch's `{"status":…,"message":…}` errors, the
//! authorize page, `validate` (`Authorization: OAuth <token>`), `revoke` and `helix/users`.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::state::{AppState, Code, Device, Provider};
use super::wire::{bearer, form, redirect_with};
use super::{
    DevicePoll, RefreshMode, TWITCH_CLIENT_ID, TWITCH_CLIENT_SECRET, TWITCH_DISPLAY_NAME,
    TWITCH_LOGIN, TWITCH_USER_ID,
};

/// Twitch's routes, at the paths the engine is pointed to.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/twitch/oauth2/device", post(twitch_device))
        .route("/twitch/oauth2/token", post(twitch_token))
        .route("/twitch/oauth2/authorize", get(twitch_authorize))
        .route("/twitch/oauth2/validate", get(twitch_validate))
        .route("/twitch/oauth2/revoke", post(twitch_revoke))
        .route("/twitch/helix/users", get(twitch_users))
}

fn twitch_error(status: u16, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (
        code,
        axum::Json(json!({ "status": status, "message": message })),
    )
        .into_response()
}

async fn twitch_device(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(form) = form(&headers, &body) else {
        return twitch_error(400, "missing client id");
    };
    if form.get("client_id").map(String::as_str) != Some(TWITCH_CLIENT_ID) {
        return twitch_error(400, "invalid client");
    }
    if form.get("scopes").is_none_or(|s| s.is_empty()) {
        return twitch_error(400, "missing scopes");
    }
    let now = s.now();
    let base = s.base.clone();
    s.with(|inner| {
        inner.count("twitch.device");
        let device_code = inner.fresh("twdc");
        inner.next += 1;
        let user_code = format!("ABCD{:04}", inner.next % 10_000);
        inner.devices.insert(
            device_code.clone(),
            Device {
                expires_ms: now + inner.device_expires_in * 1000,
                interval_s: inner.device_interval,
                last_poll_ms: None,
                script: inner.device_script.iter().copied().collect(),
                done: false,
            },
        );
        axum::Json(json!({
            "device_code": device_code,
            "expires_in": inner.device_expires_in,
            "interval": inner.device_interval,
            "user_code": user_code,
            "verification_uri": format!("{base}/twitch/activate?public=true&device-code={user_code}"),
        }))
        .into_response()
    })
}

fn twitch_tokens(access: String, refresh: Option<String>, ttl: i64) -> Response {
    axum::Json(json!({
        "access_token": access,
        "expires_in": ttl,
        "refresh_token": refresh,
        "scope": ["chat:read", "chat:edit", "moderator:read:followers",
                  "channel:read:subscriptions", "bits:read", "channel:manage:broadcast"],
        "token_type": "bearer",
    }))
    .into_response()
}

async fn twitch_token(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(form) = form(&headers, &body) else {
        return twitch_error(400, "missing grant type");
    };
    if form.get("client_id").map(String::as_str) != Some(TWITCH_CLIENT_ID) {
        return twitch_error(400, "invalid client");
    }
    let now = s.now();
    match form.get("grant_type").map(String::as_str) {
        Some("urn:ietf:params:oauth:grant-type:device_code") => s.with(|inner| {
            inner.count("twitch.poll");
            inner.poll_times.push(now);
            let code = form.get("device_code").cloned().unwrap_or_default();
            let Some(device) = inner.devices.get_mut(&code) else {
                return twitch_error(400, "invalid device code");
            };
            if device.done || now >= device.expires_ms {
                return twitch_error(400, "invalid device code");
            }
            // RFC 8628 §3.5: polling faster than the interval is slowed down.
            if let Some(last) = device.last_poll_ms
                && now - last < device.interval_s * 1000
            {
                device.last_poll_ms = Some(now);
                device.interval_s += 5;
                return twitch_error(400, "slow_down");
            }
            device.last_poll_ms = Some(now);
            match device.script.pop_front().unwrap_or(DevicePoll::Pending) {
                DevicePoll::Pending => twitch_error(400, "authorization_pending"),
                DevicePoll::SlowDown => {
                    device.interval_s += 5;
                    twitch_error(400, "slow_down")
                }
                DevicePoll::Authorize => {
                    device.done = true;
                    let (access, refresh, ttl) = inner.issue(Provider::Twitch, now, code, true);
                    twitch_tokens(access, refresh, ttl)
                }
            }
        }),
        Some("refresh_token") => s.with(|inner| {
            inner.count("twitch.refresh");
            match inner.refresh_mode {
                RefreshMode::Invalid => return twitch_invalid_refresh(),
                RefreshMode::Unavailable(n) if n > 0 => {
                    inner.refresh_mode = RefreshMode::Unavailable(n - 1);
                    return twitch_error(503, "Service Unavailable");
                }
                _ => {}
            }
            let given = form.get("refresh_token").cloned().unwrap_or_default();
            let family = match inner.refresh.get_mut(&given) {
                Some(r) if r.provider == Provider::Twitch && !r.used && !r.revoked => {
                    // Public clients' refresh tokens are single use.
                    r.used = true;
                    r.family.clone()
                }
                _ => return twitch_invalid_refresh(),
            };
            let (access, refresh, ttl) = inner.issue(Provider::Twitch, now, family, true);
            twitch_tokens(access, refresh, ttl)
        }),
        Some("authorization_code") => s.with(|inner| {
            inner.count("twitch.code");
            if form.get("client_secret").map(String::as_str) != Some(TWITCH_CLIENT_SECRET) {
                return twitch_error(403, "invalid client secret");
            }
            let given = form.get("code").cloned().unwrap_or_default();
            let ok = inner.codes.get_mut(&given).is_some_and(|c| {
                let ok = c.provider == Provider::Twitch
                    && !c.used
                    && form.get("redirect_uri") == Some(&c.redirect_uri);
                c.used = true;
                ok
            });
            if !ok {
                return twitch_error(400, "Invalid authorization code");
            }
            let (access, refresh, ttl) = inner.issue(Provider::Twitch, now, given, true);
            twitch_tokens(access, refresh, ttl)
        }),
        _ => twitch_error(400, "unsupported grant type"),
    }
}

fn twitch_invalid_refresh() -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(
            json!({ "error": "Bad Request", "status": 400, "message": "Invalid refresh token" }),
        ),
    )
        .into_response()
}

async fn twitch_authorize(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if q.get("client_id").map(String::as_str) != Some(TWITCH_CLIENT_ID)
        || q.get("response_type").map(String::as_str) != Some("code")
    {
        return twitch_error(400, "invalid client or response type");
    }
    let Some(redirect) = q
        .get("redirect_uri")
        .filter(|r| r.starts_with("http://localhost:"))
    else {
        return twitch_error(400, "redirect mismatch");
    };
    let state = q.get("state").cloned().unwrap_or_default();
    let code = s.with(|inner| {
        inner.count("twitch.authorize");
        let code = inner.fresh("twcode");
        inner.codes.insert(
            code.clone(),
            Code {
                provider: Provider::Twitch,
                client_id: TWITCH_CLIENT_ID.into(),
                redirect_uri: redirect.clone(),
                challenge: None,
                used: false,
            },
        );
        code
    });
    let location = redirect_with(
        redirect,
        &[("code", &code), ("scope", "chat:read"), ("state", &state)],
    );
    Redirect::to(&location).into_response()
}

async fn twitch_validate(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let now = s.now();
    let token = bearer(&headers, "OAuth");
    s.with(|inner| {
        inner.count("twitch.validate");
        match token.and_then(|t| inner.access_ok(&t, Provider::Twitch, now)) {
            Some(expires_ms) => axum::Json(json!({
                "client_id": TWITCH_CLIENT_ID,
                "login": TWITCH_LOGIN,
                "scopes": ["chat:read", "chat:edit"],
                "user_id": TWITCH_USER_ID,
                "expires_in": (expires_ms - now) / 1000,
            }))
            .into_response(),
            None => twitch_error(401, "invalid access token"),
        }
    })
}

async fn twitch_revoke(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(form) = form(&headers, &body) else {
        return twitch_error(400, "missing client id");
    };
    if form.get("client_id").map(String::as_str) != Some(TWITCH_CLIENT_ID) {
        return twitch_error(404, "client does not exist");
    }
    let token = form.get("token").cloned().unwrap_or_default();
    s.with(|inner| {
        inner.count("twitch.revoke");
        let family = match inner.access.get(&token) {
            Some(a) if a.provider == Provider::Twitch && !a.revoked => a.family.clone(),
            _ => return twitch_error(400, "Invalid token"),
        };
        inner.revoke_family(&family);
        inner.revoked.push(token);
        StatusCode::OK.into_response()
    })
}

async fn twitch_users(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let now = s.now();
    let token = bearer(&headers, "Bearer");
    let client = headers.get("client-id").and_then(|v| v.to_str().ok());
    if client != Some(TWITCH_CLIENT_ID) {
        return twitch_error(401, "Client-Id header required");
    }
    s.with(|inner| {
        inner.count("twitch.users");
        if token
            .and_then(|t| inner.access_ok(&t, Provider::Twitch, now))
            .is_none()
        {
            return twitch_error(401, "Invalid OAuth token");
        }
        axum::Json(json!({ "data": [{
            "id": TWITCH_USER_ID,
            "login": TWITCH_LOGIN,
            "display_name": TWITCH_DISPLAY_NAME,
        }]}))
        .into_response()
    })
}
