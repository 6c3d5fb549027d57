//! The door's checks, run before anything reaches the engine: the tunnel and the moderator
//! surface, the method, a browser's Origin, the per-client and per-tunnel request rates, the
//! declared body size, and whether an engine is linked at all.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use stagehand_protocol::relay::moderator_surface;

use super::offline;
use crate::Relay;
use crate::error::ApiError;
use crate::link::LinkShared;

/// Why a request stops at the door.
pub(super) enum Refusal {
    /// An error with its stable code.
    Api(ApiError),
    /// No engine is linked.
    Offline,
}

impl Refusal {
    pub(super) fn into_response(self, path: &str) -> Response {
        match self {
            Refusal::Api(e) => e.into_response(),
            Refusal::Offline => offline(path),
        }
    }
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal::Api(e)
    }
}

/// What a request that passed the door's checks carries on.
pub(super) struct Admitted {
    pub(super) link: Arc<LinkShared>,
    pub(super) client: String,
    pub(super) prefix: String,
}

pub(super) fn admit(
    relay: &Relay,
    peer: SocketAddr,
    tunnel_id: &str,
    path: &str,
    request: &Request,
) -> Result<Admitted, Refusal> {
    // An unknown tunnel and a path off the surface get the same 404: the door reveals nothing
    // about what lies behind it.
    let tunnel = relay
        .tunnel(tunnel_id)
        .filter(|_| moderator_surface(path))
        .ok_or_else(ApiError::not_found)?;
    let method = request.method();
    if ![Method::GET, Method::HEAD, Method::POST].contains(method) {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "the moderator panel only uses GET, HEAD and POST",
        )
        .into());
    }
    let headers = request.headers();
    let door = &relay.config().door;
    if (method == Method::POST || is_upgrade(headers))
        && !same_origin(headers, door.public_origin.as_deref())
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "requests from other sites are not accepted",
        )
        .into());
    }
    let client = crate::hooks::client_ip(peer.ip(), headers, &relay.config().trusted_proxies);
    let now_ms = relay.config().clock.now_ms();
    // The address first: one client hammering a tunnel's public id must not use up the
    // allowance its moderators share.
    relay
        .take_door_client_token(client, now_ms)
        .and_then(|()| tunnel.take_door_token(door.rate_per_sec, door.rate_burst, now_ms))
        .map_err(|retry_after| {
            ApiError::rate_limited_as(
                retry_after,
                "too many requests for this moderator panel; retry later",
            )
        })?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > door.max_body_bytes as u64) {
        return Err(ApiError::body_too_large(door.max_body_bytes).into());
    }
    let link = tunnel
        .link
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .ok_or(Refusal::Offline)?;
    Ok(Admitted {
        link,
        client: client.to_string(),
        prefix: stagehand_protocol::relay::moderator_prefix(tunnel.id.as_str()),
    })
}

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// A browser's Origin must name this relay: its configured public origin, or else the Host
/// the browser reached. A client that sends no Origin is not a browser page and passes.
fn same_origin(headers: &HeaderMap, public_origin: Option<&str>) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return headers.get(header::ORIGIN).is_none();
    };
    let origin = origin.trim_end_matches('/');
    if let Some(public) = public_origin {
        return origin.eq_ignore_ascii_case(public.trim_end_matches('/'));
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let authority = origin
        .split_once("://")
        .filter(|(scheme, _)| matches!(*scheme, "http" | "https"))
        .map(|(_, rest)| rest);
    matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn a_browser_origin_must_be_the_relay_itself() {
        assert!(same_origin(&headers(&[("host", "relay.example")]), None));
        assert!(same_origin(
            &headers(&[
                ("host", "relay.example"),
                ("origin", "https://Relay.example")
            ]),
            None
        ));
        assert!(same_origin(
            &headers(&[
                ("host", "127.0.0.1:9000"),
                ("origin", "http://127.0.0.1:9000")
            ]),
            None
        ));
        for origin in [
            "https://evil.example",
            "null",
            "https://relay.example.evil.example",
            "ftp://relay.example",
        ] {
            assert!(
                !same_origin(
                    &headers(&[("host", "relay.example"), ("origin", origin)]),
                    None
                ),
                "{origin}"
            );
        }
        // Behind a proxy that rewrites Host, the configured public origin decides, scheme and
        // all.
        let proxied = |origin| headers(&[("host", "127.0.0.1:8787"), ("origin", origin)]);
        let public = Some("https://relay.example");
        assert!(same_origin(&proxied("https://relay.example"), public));
        assert!(!same_origin(&proxied("http://relay.example"), public));
        assert!(!same_origin(&proxied("http://127.0.0.1:8787"), public));
    }
}
