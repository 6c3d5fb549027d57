//! The authorization-code flow with PKCE that Google and Discord share: the consent redirect
//! to the loopback `redirect_uri`, the token endpoint (code and refresh grants, a reused code
//! revoking what it issued) and revocation. Each provider mounts it at its own paths.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::state::{AppState, Code, Provider, Shared};
use super::wire::{form, loopback, oauth_error, redirect_with, s256};
use super::{DISCORD_CLIENT_ID, GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET, RefreshMode};

/// Where a provider serves the code flow's three endpoints.
pub(super) struct Paths {
    pub(super) authorize: &'static str,
    pub(super) token: &'static str,
    pub(super) revoke: &'static str,
}

/// The code flow's routes for `provider`, at its `paths`.
pub(super) fn routes(provider: Provider, paths: &Paths) -> Router<AppState> {
    Router::new()
        .route(
            paths.authorize,
            get(
                move |State(s): State<AppState>, Query(q): Query<HashMap<String, String>>| async move {
                    authorize(&s, provider, &q)
                },
            ),
        )
        .route(
            paths.token,
            post(
                move |State(s): State<AppState>, headers: HeaderMap, body: Bytes| async move {
                    token_endpoint(&s, provider, &headers, &body)
                },
            ),
        )
        .route(
            paths.revoke,
            post(
                move |State(s): State<AppState>, headers: HeaderMap, body: Bytes| async move {
                    revoke_endpoint(&s, provider, &headers, &body)
                },
            ),
        )
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
