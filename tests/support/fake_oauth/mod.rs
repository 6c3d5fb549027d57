//! Fake Twitch, Google and Discord OAuth servers on one `127.0.0.1:0` listener, written from the
//! providers' documentation:
//!
//! * Twitch ("Getting OAuth Access Tokens", "Refreshing Access Tokens", "Validating Tokens",
//!   "Revoking Access Tokens"), under `/twitch`: `POST /oauth2/device`, `POST /oauth2/token`
//!   (the device grant `urn:ietf:params:oauth:grant-type:device_code` answering pending,
//!   slow_down and so on as scripted, with Twitch's `{"status":400,"message":"…"}` errors; the
//!   refresh grant answering `400 Invalid refresh token`; the authorization-code grant for
//!   confidential apps), `GET /oauth2/authorize`, `GET /oauth2/validate` (`Authorization: OAuth
//!   <token>`), `POST /oauth2/revoke`, Helix `GET /helix/users`. Token responses carry `scope`
//!   as a JSON array, as Twitch's do.
//! * Google ("OAuth 2.0 for Mobile & Desktop Apps"), under `/google`: the authorization endpoint
//!   redirects to the loopback `redirect_uri` with `code` and `state` as a browser would be
//!   sent; the token endpoint checks the client, the redirect URI and
//!   `BASE64URL(SHA256(code_verifier)) == code_challenge` (RFC 7636 S256), refuses a code used
//!   before with `invalid_grant` (and revokes what it issued, RFC 6749 §4.1.2); refresh answers
//!   a new access token only; `POST /revoke`; YouTube `GET /youtube/v3/channels?mine=true`.
//! * Discord ("OAuth2"), under `/discord/api`: the same code flow with PKCE for a public client,
//!   rotating refresh tokens, `POST /oauth2/token/revoke`, `GET /users/@me`.
//!
//! Time is the engine's injected clock, so device codes and tokens expire when the test moves
//! it. Every token issued is remembered, so tests can scan responses, logs and the database
//! for them.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use sha2::{Digest, Sha256};
use stagehand_engine::clock::Clock;
use tokio::sync::Notify;

pub const TWITCH_CLIENT_ID: &str = "fake-twitch-client";
pub const TWITCH_CLIENT_SECRET: &str = "fake-twitch-secret";
pub const GOOGLE_CLIENT_ID: &str = "fake-google-client.apps.googleusercontent.com";
pub const GOOGLE_CLIENT_SECRET: &str = "fake-google-not-so-secret";
pub const DISCORD_CLIENT_ID: &str = "100200300400";

pub const TWITCH_USER_ID: &str = "141981764";
pub const TWITCH_LOGIN: &str = "stagehandtester";
pub const TWITCH_DISPLAY_NAME: &str = "StagehandTester";
pub const YOUTUBE_CHANNEL_ID: &str = "UCfake0channel0id0000001";
pub const YOUTUBE_CHANNEL_TITLE: &str = "Stagehand Test Channel";
pub const DISCORD_USER_ID: &str = "80351110224678912";
pub const DISCORD_NAME: &str = "Stagehand Tester";

/// What the Twitch token endpoint answers to one device-code poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevicePoll {
    /// `400 {"status":400,"message":"authorization_pending"}`.
    Pending,
    /// `400 {"status":400,"message":"slow_down"}`.
    SlowDown,
    /// The streamer entered the code: tokens.
    Authorize,
}

/// How the refresh grant answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshMode {
    /// New tokens for a good refresh token.
    Normal,
    /// The refresh token is refused (revoked at the provider's site).
    Invalid,
    /// `503` for the next `n` refreshes, then normal.
    Unavailable(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Provider {
    Twitch,
    Google,
    Discord,
}

struct Device {
    expires_ms: i64,
    interval_s: i64,
    last_poll_ms: Option<i64>,
    script: VecDeque<DevicePoll>,
    done: bool,
}

struct AccessToken {
    provider: Provider,
    expires_ms: i64,
    revoked: bool,
    /// The code or refresh token it came from (to revoke together).
    family: String,
}

struct RefreshToken {
    provider: Provider,
    used: bool,
    revoked: bool,
    family: String,
}

struct Code {
    provider: Provider,
    client_id: String,
    redirect_uri: String,
    challenge: Option<String>,
    used: bool,
}

struct Inner {
    device_script: Vec<DevicePoll>,
    device_expires_in: i64,
    device_interval: i64,
    devices: HashMap<String, Device>,
    access: HashMap<String, AccessToken>,
    refresh: HashMap<String, RefreshToken>,
    codes: HashMap<String, Code>,
    refresh_mode: RefreshMode,
    deny: bool,
    ttl: HashMap<Provider, i64>,
    counts: HashMap<&'static str, u32>,
    poll_times: Vec<i64>,
    issued: Vec<String>,
    revoked: Vec<String>,
    next: u64,
}

struct Shared {
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner>,
    changed: Notify,
    base: String,
}

impl Shared {
    /// Runs `f` on the state and wakes everyone waiting for a change.
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let out = self.read(f);
        self.changed.notify_waiters();
        out
    }

    /// Runs `f` on the state without announcing a change (for the test's own queries, which
    /// must not wake their own waits).
    fn read<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut inner)
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }
}

impl Inner {
    fn count(&mut self, key: &'static str) {
        *self.counts.entry(key).or_default() += 1;
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.next += 1;
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(self.next);
        let value = format!("{prefix}{}x{:016x}", self.next, hasher.finish());
        self.issued.push(value.clone());
        value
    }

    /// Issues an access token (and a refresh token unless `keep_refresh`); answers the token
    /// response body.
    fn issue(
        &mut self,
        provider: Provider,
        now: i64,
        family: String,
        with_refresh: bool,
    ) -> (String, Option<String>, i64) {
        let ttl = self.ttl.get(&provider).copied().unwrap_or(3600);
        let prefix = match provider {
            Provider::Twitch => "twat",
            Provider::Google => "ya29.fake",
            Provider::Discord => "dcat",
        };
        let access = self.fresh(prefix);
        self.access.insert(
            access.clone(),
            AccessToken {
                provider,
                expires_ms: now + ttl * 1000,
                revoked: false,
                family: family.clone(),
            },
        );
        let refresh = with_refresh.then(|| {
            let refresh = self.fresh(&format!("{prefix}-rt"));
            self.refresh.insert(
                refresh.clone(),
                RefreshToken {
                    provider,
                    used: false,
                    revoked: false,
                    family,
                },
            );
            refresh
        });
        (access, refresh, ttl)
    }

    fn access_ok(&self, token: &str, provider: Provider, now: i64) -> Option<i64> {
        self.access
            .get(token)
            .filter(|a| a.provider == provider && !a.revoked && a.expires_ms > now)
            .map(|a| a.expires_ms)
    }

    fn revoke_family(&mut self, family: &str) {
        for a in self.access.values_mut().filter(|a| a.family == family) {
            a.revoked = true;
        }
        for r in self.refresh.values_mut().filter(|r| r.family == family) {
            r.revoked = true;
        }
    }
}

/// The running fake.
pub struct FakeOAuth {
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeOAuth {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type AppState = Arc<Shared>;

fn form(headers: &HeaderMap, body: &[u8]) -> Option<HashMap<String, String>> {
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

fn twitch_error(status: u16, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (
        code,
        axum::Json(json!({ "status": status, "message": message })),
    )
        .into_response()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

fn bearer(headers: &HeaderMap, scheme: &str) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (s, token) = value.split_once(' ')?;
    s.eq_ignore_ascii_case(scheme)
        .then(|| token.trim().to_owned())
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// RFC 8252 §7.3: a loopback IP literal with any port; Twitch additionally accepts localhost.
fn loopback(redirect: &str) -> bool {
    redirect.starts_with("http://127.0.0.1:") || redirect.starts_with("http://localhost:")
}

// ---------------------------------------------------------------- Twitch

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

// ---------------------------------------------------------------- Google and Discord

fn redirect_with(redirect: &str, params: &[(&str, &str)]) -> String {
    let query = serde_urlencoded::to_string(params).unwrap_or_default();
    let sep = if redirect.contains('?') { '&' } else { '?' };
    format!("{redirect}{sep}{query}")
}

fn authorize(s: &Shared, provider: Provider, q: &HashMap<String, String>) -> Response {
    let client_id = match provider {
        Provider::Google => GOOGLE_CLIENT_ID,
        _ => DISCORD_CLIENT_ID,
    };
    if q.get("client_id").map(String::as_str) != Some(client_id) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            "The OAuth client was not found.",
        );
    }
    let Some(redirect) = q.get("redirect_uri").filter(|r| loopback(r)) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "redirect_uri_mismatch",
        );
    };
    if q.get("response_type").map(String::as_str) != Some("code")
        || q.get("code_challenge_method").map(String::as_str) != Some("S256")
        || q.get("code_challenge").is_none_or(|c| c.len() < 43)
        || q.get("scope").is_none_or(|s| s.is_empty())
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "PKCE S256 and a scope are required",
        );
    }
    let state = q.get("state").cloned().unwrap_or_default();
    let issued = s.with(|inner| {
        inner.count(match provider {
            Provider::Google => "google.authorize",
            _ => "discord.authorize",
        });
        if inner.deny {
            return None;
        }
        let code = inner.fresh(match provider {
            Provider::Google => "4/0fake-code",
            _ => "dccode",
        });
        inner.codes.insert(
            code.clone(),
            Code {
                provider,
                client_id: client_id.to_owned(),
                redirect_uri: redirect.clone(),
                challenge: q.get("code_challenge").cloned(),
                used: false,
            },
        );
        Some(code)
    });
    let location = match issued {
        Some(code) => redirect_with(
            redirect,
            &[
                ("state", &state),
                ("code", &code),
                ("scope", q["scope"].as_str()),
            ],
        ),
        None => redirect_with(redirect, &[("error", "access_denied"), ("state", &state)]),
    };
    Redirect::to(&location).into_response()
}

async fn google_authorize(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    authorize(&s, Provider::Google, &q)
}

async fn discord_authorize(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    authorize(&s, Provider::Discord, &q)
}

fn token_endpoint(s: &Shared, provider: Provider, headers: &HeaderMap, body: &[u8]) -> Response {
    let Some(form) = form(headers, body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "form body required",
        );
    };
    let (client_id, secret) = match provider {
        Provider::Google => (GOOGLE_CLIENT_ID, Some(GOOGLE_CLIENT_SECRET)),
        _ => (DISCORD_CLIENT_ID, None),
    };
    if form.get("client_id").map(String::as_str) != Some(client_id)
        || (secret.is_some() && form.get("client_secret").map(String::as_str) != secret)
    {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Unauthorized");
    }
    let now = s.now();
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => s.with(|inner| {
            inner.count(if provider == Provider::Google {
                "google.code"
            } else {
                "discord.code"
            });
            let given = form.get("code").cloned().unwrap_or_default();
            let Some(code) = inner
                .codes
                .get_mut(&given)
                .filter(|c| c.provider == provider)
            else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Malformed auth code.",
                );
            };
            if code.used {
                // RFC 6749 §4.1.2: a code used twice revokes what it was exchanged for.
                inner.revoke_family(&given);
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Bad Request");
            }
            code.used = true;
            if code.client_id != client_id || form.get("redirect_uri") != Some(&code.redirect_uri) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "redirect_uri mismatch",
                );
            }
            let verified = match (&code.challenge, form.get("code_verifier")) {
                (Some(challenge), Some(verifier)) => &s256(verifier) == challenge,
                _ => false,
            };
            if !verified {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Invalid code verifier.",
                );
            }
            let (access, refresh, ttl) = inner.issue(provider, now, given, true);
            standard_tokens(provider, access, refresh, ttl)
        }),
        Some("refresh_token") => s.with(|inner| {
            inner.count(if provider == Provider::Google {
                "google.refresh"
            } else {
                "discord.refresh"
            });
            match inner.refresh_mode {
                RefreshMode::Invalid => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "Token has been expired or revoked.",
                    );
                }
                RefreshMode::Unavailable(n) if n > 0 => {
                    inner.refresh_mode = RefreshMode::Unavailable(n - 1);
                    return (StatusCode::SERVICE_UNAVAILABLE, "<html>unavailable</html>")
                        .into_response();
                }
                _ => {}
            }
            let given = form.get("refresh_token").cloned().unwrap_or_default();
            let family = match inner.refresh.get_mut(&given) {
                Some(r) if r.provider == provider && !r.used && !r.revoked => {
                    // Discord rotates refresh tokens; Google keeps the one it gave.
                    r.used = provider == Provider::Discord;
                    r.family.clone()
                }
                _ => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "Token has been expired or revoked.",
                    );
                }
            };
            let (access, refresh, ttl) =
                inner.issue(provider, now, family, provider == Provider::Discord);
            standard_tokens(provider, access, refresh, ttl)
        }),
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Invalid grant_type",
        ),
    }
}

fn standard_tokens(
    provider: Provider,
    access: String,
    refresh: Option<String>,
    ttl: i64,
) -> Response {
    let mut body = json!({
        "access_token": access,
        "expires_in": ttl,
        "token_type": "Bearer",
        "scope": match provider {
            Provider::Google => "https://www.googleapis.com/auth/youtube.force-ssl",
            _ => "identify",
        },
    });
    if let Some(refresh) = refresh {
        body["refresh_token"] = refresh.into();
    }
    axum::Json(body).into_response()
}

async fn google_token(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    token_endpoint(&s, Provider::Google, &headers, &body)
}

async fn discord_token(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    token_endpoint(&s, Provider::Discord, &headers, &body)
}

fn revoke_endpoint(s: &Shared, provider: Provider, headers: &HeaderMap, body: &[u8]) -> Response {
    let Some(form) = form(headers, body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "form body required",
        );
    };
    let token = form.get("token").cloned().unwrap_or_default();
    s.with(|inner| {
        inner.count(if provider == Provider::Google {
            "google.revoke"
        } else {
            "discord.revoke"
        });
        let family = inner
            .refresh
            .get(&token)
            .filter(|r| r.provider == provider && !r.revoked)
            .map(|r| r.family.clone())
            .or_else(|| {
                inner
                    .access
                    .get(&token)
                    .filter(|a| a.provider == provider && !a.revoked)
                    .map(|a| a.family.clone())
            });
        let Some(family) = family else {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_token",
                "Token expired or revoked",
            );
        };
        inner.revoke_family(&family);
        inner.revoked.push(token);
        axum::Json(json!({})).into_response()
    })
}

async fn google_revoke(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    revoke_endpoint(&s, Provider::Google, &headers, &body)
}

async fn discord_revoke(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    revoke_endpoint(&s, Provider::Discord, &headers, &body)
}

async fn youtube_channels(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let now = s.now();
    let token = bearer(&headers, "Bearer");
    s.with(|inner| {
        inner.count("google.channels");
        if token.and_then(|t| inner.access_ok(&t, Provider::Google, now)).is_none() {
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({ "error": { "code": 401, "message": "Request had invalid authentication credentials." } })),
            )
                .into_response();
        }
        if q.get("mine").map(String::as_str) != Some("true") {
            return StatusCode::BAD_REQUEST.into_response();
        }
        axum::Json(json!({
            "kind": "youtube#channelListResponse",
            "items": [{ "kind": "youtube#channel", "id": YOUTUBE_CHANNEL_ID,
                        "snippet": { "title": YOUTUBE_CHANNEL_TITLE } }],
        }))
        .into_response()
    })
}

async fn discord_me(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let now = s.now();
    let token = bearer(&headers, "Bearer");
    s.with(|inner| {
        inner.count("discord.me");
        if token
            .and_then(|t| inner.access_ok(&t, Provider::Discord, now))
            .is_none()
        {
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({ "message": "401: Unauthorized", "code": 0 })),
            )
                .into_response();
        }
        axum::Json(json!({
            "id": DISCORD_USER_ID,
            "username": "stagehandtester",
            "global_name": DISCORD_NAME,
            "discriminator": "0",
        }))
        .into_response()
    })
}

impl FakeOAuth {
    /// Starts the fake; `clock` is the engine's.
    pub async fn start(clock: Arc<dyn Clock>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds 127.0.0.1:0");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let url = format!("http://{addr}");
        let shared = Arc::new(Shared {
            clock,
            base: url.clone(),
            changed: Notify::new(),
            inner: Mutex::new(Inner {
                device_script: vec![DevicePoll::Authorize],
                device_expires_in: 1800,
                device_interval: 5,
                devices: HashMap::new(),
                access: HashMap::new(),
                refresh: HashMap::new(),
                codes: HashMap::new(),
                refresh_mode: RefreshMode::Normal,
                deny: false,
                ttl: [
                    (Provider::Twitch, 14_400),
                    (Provider::Google, 3_599),
                    (Provider::Discord, 604_800),
                ]
                .into_iter()
                .collect(),
                counts: HashMap::new(),
                poll_times: Vec::new(),
                issued: Vec::new(),
                revoked: Vec::new(),
                next: 0,
            }),
        });
        let app = Router::new()
            .route("/twitch/oauth2/device", post(twitch_device))
            .route("/twitch/oauth2/token", post(twitch_token))
            .route("/twitch/oauth2/authorize", get(twitch_authorize))
            .route("/twitch/oauth2/validate", get(twitch_validate))
            .route("/twitch/oauth2/revoke", post(twitch_revoke))
            .route("/twitch/helix/users", get(twitch_users))
            .route("/google/o/oauth2/v2/auth", get(google_authorize))
            .route("/google/token", post(google_token))
            .route("/google/revoke", post(google_revoke))
            .route("/google/youtube/v3/channels", get(youtube_channels))
            .route("/discord/api/oauth2/authorize", get(discord_authorize))
            .route("/discord/api/oauth2/token", post(discord_token))
            .route("/discord/api/oauth2/token/revoke", post(discord_revoke))
            .route("/discord/api/users/@me", get(discord_me))
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, shared, task }
    }

    /// The environment that points an engine at this fake, every provider configured.
    pub fn env(&self) -> Vec<(String, String)> {
        let u = &self.url;
        [
            ("STAGEHAND_TWITCH_CLIENT_ID", TWITCH_CLIENT_ID.to_owned()),
            ("STAGEHAND_TWITCH_ID_URL", format!("{u}/twitch")),
            ("STAGEHAND_TWITCH_API_URL", format!("{u}/twitch/helix")),
            ("STAGEHAND_GOOGLE_CLIENT_ID", GOOGLE_CLIENT_ID.to_owned()),
            (
                "STAGEHAND_GOOGLE_CLIENT_SECRET",
                GOOGLE_CLIENT_SECRET.to_owned(),
            ),
            (
                "STAGEHAND_GOOGLE_AUTH_URL",
                format!("{u}/google/o/oauth2/v2/auth"),
            ),
            ("STAGEHAND_GOOGLE_TOKEN_URL", format!("{u}/google/token")),
            ("STAGEHAND_GOOGLE_REVOKE_URL", format!("{u}/google/revoke")),
            (
                "STAGEHAND_GOOGLE_YOUTUBE_API_URL",
                format!("{u}/google/youtube/v3"),
            ),
            ("STAGEHAND_DISCORD_CLIENT_ID", DISCORD_CLIENT_ID.to_owned()),
            ("STAGEHAND_DISCORD_API_URL", format!("{u}/discord/api")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// What the next device codes answer to their polls, in order (then pending forever).
    pub fn script_device(&self, answers: &[DevicePoll]) {
        self.shared.with(|i| i.device_script = answers.to_vec());
    }

    /// How the refresh grant answers from now on.
    pub fn refresh_mode(&self, mode: RefreshMode) {
        self.shared.with(|i| i.refresh_mode = mode);
    }

    /// The streamer declines on the consent page (Google and Discord).
    pub fn deny_consent(&self, deny: bool) {
        self.shared.with(|i| i.deny = deny);
    }

    /// Revokes every Twitch access token, as the streamer disconnecting the app on twitch.tv
    /// would (refresh tokens keep working).
    pub fn expire_twitch_access_tokens(&self) {
        self.shared.with(|i| {
            for a in i
                .access
                .values_mut()
                .filter(|a| a.provider == Provider::Twitch)
            {
                a.revoked = true;
            }
        });
    }

    /// How many requests an endpoint got (`twitch.poll`, `twitch.refresh`, `google.code`, …).
    pub fn count(&self, key: &str) -> u32 {
        self.shared
            .read(|i| i.counts.get(key).copied().unwrap_or(0))
    }

    /// Waits (up to `seconds`) until `key` has been requested at least `n` times.
    pub async fn wait_count(&self, key: &str, n: u32, seconds: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.count(key) >= n {
                return;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                panic!(
                    "{key} was requested {} times, not {n}, within {seconds} s",
                    self.count(key)
                );
            }
        }
    }

    /// Whether `key` is requested again within `millis` (for "nothing more happens" checks).
    pub async fn requested_within(&self, key: &str, millis: u64) -> bool {
        let before = self.count(key);
        let deadline = tokio::time::Instant::now() + Duration::from_millis(millis);
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.count(key) > before {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return false;
            }
        }
    }

    /// When each device poll arrived, by the engine's clock.
    pub fn poll_times(&self) -> Vec<i64> {
        self.shared.read(|i| i.poll_times.clone())
    }

    /// Every token, code and device code the fake ever issued.
    pub fn issued(&self) -> Vec<String> {
        self.shared.read(|i| i.issued.clone())
    }

    /// The tokens revoked through a revocation endpoint.
    pub fn revoked(&self) -> Vec<String> {
        self.shared.read(|i| i.revoked.clone())
    }

    /// Whether an access token is live at the provider.
    pub fn access_live(&self, token: &str) -> bool {
        let now = self.shared.now();
        self.shared.read(|i| {
            i.access
                .get(token)
                .is_some_and(|a| !a.revoked && a.expires_ms > now)
        })
    }
}
