//! Browser-facing defences for a server on 127.0.0.1.
//!
//! * Host: only our own names (127.0.0.1, localhost, `[::1]` with our port, plus names added in
//!   config) are served. A page on another site that rebinds its DNS name to 127.0.0.1 still
//!   sends its own name as Host, and is refused here.
//! * Origin: a state-changing request or WebSocket upgrade that comes from a foreign page
//!   carries that page's Origin and is refused. In strict mode a browser request with no Origin
//!   at all is refused too; API clients that authenticate with the token header are not
//!   browsers (a page cannot set that header cross-origin without a CORS preflight, which we
//!   never grant), so they pass.
//! * Relayed: a request the relay door serves in process ([`crate::relay_door`]) carries
//!   [`Relayed`] as an extension, which nothing from the network can set; it is held to the
//!   moderator surface and the relay's own Origin instead of our Host and Origins.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use std::net::IpAddr;

use stagehand_engine::relay_door::RelayDoor;
use stagehand_protocol::ErrorCode;
use stagehand_protocol::relay::moderator_surface;

use crate::error::ApiError;
use crate::state::AppState;

pub use crate::allowed::{Allowed, RefusalLog};

fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

fn has_token(headers: &HeaderMap) -> bool {
    matches!(crate::auth::token_header(headers), Some(Some(_)))
}

/// What a device on the LAN may reach when LAN access is on: the moderator surface and the
/// panel's assets (the same surface the relay carries), and `/healthz`. The streamer's API,
/// overlays, media uploads and metrics stay loopback-only.
pub fn lan_may_reach(path: &str) -> bool {
    moderator_surface(path) || path == "/healthz"
}

/// The mark of a request that came through the relay's moderator door: a request extension
/// that only the in-process door ([`crate::relay_door`]) sets, never anything from the
/// network.
#[derive(Debug, Clone)]
pub struct Relayed {
    /// The relay's origin, the tunnel's path prefix, and whether it is reached over TLS.
    pub door: RelayDoor,
    /// The moderator's address as the relay saw it.
    pub client: Option<IpAddr>,
}

/// Holds a relayed request to the moderator surface and to the relay's own Origin (a page on
/// another site cannot post through the door with a moderator's cookie).
async fn relayed(request: Request, next: Next, door: &RelayDoor) -> Response {
    if !moderator_surface(request.uri().path()) {
        return ApiError::not_found().into_response();
    }
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or(""));
    if origin.is_some_and(|o| !o.trim_end_matches('/').eq_ignore_ascii_case(&door.origin)) {
        return ApiError::new(
            ErrorCode::OriginNotAllowed,
            "requests from other sites are not accepted",
        )
        .into_response();
    }
    next.run(request).await
}

/// Refuses everything but the moderator surface to peers that are not this machine.
pub async fn lan_surface(request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let local = peer.is_none_or(|ip| ip.is_loopback());
    if !local && !lan_may_reach(request.uri().path()) {
        return ApiError::new(
            ErrorCode::LanNotAllowed,
            "from the local network only the moderator panel is reachable",
        )
        .into_response();
    }
    next.run(request).await
}

/// Refuses requests for foreign Host names and from foreign Origins.
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(relayed_by) = request.extensions().get::<Relayed>() {
        let door = relayed_by.door.clone();
        return relayed(request, next, &door).await;
    }
    let allowed = &state.allowed;
    let headers = request.headers();
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if !host.is_some_and(|h| allowed.host_ok(h)) {
        if state.refusal_log.allow(state.engine.now_ms()) {
            tracing::warn!(
                host = host.unwrap_or("<none>"),
                "refused a request for a foreign Host (further refusals this minute are not logged)"
            );
        }
        return ApiError::new(
            ErrorCode::HostNotAllowed,
            "this server only answers to its local address; add the name to server.allowed_hosts to allow it",
        )
        .into_response();
    }
    let writes = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if writes || is_websocket_upgrade(headers) {
        match headers
            .get(header::ORIGIN)
            .map(|v| v.to_str().unwrap_or(""))
        {
            Some(origin) if !allowed.origin_ok(origin) => {
                if state.refusal_log.allow(state.engine.now_ms()) {
                    tracing::warn!(
                        origin,
                        "refused a request from a foreign Origin (further refusals this minute are not logged)"
                    );
                }
                return ApiError::new(
                    ErrorCode::OriginNotAllowed,
                    "requests from other sites are not accepted; add the origin to security.allowed_origins to allow it",
                )
                .into_response();
            }
            // Webhook senders are servers and never send an Origin; the engine refuses
            // webhooks that do carry one.
            None if allowed.strict_origin
                && !has_token(headers)
                && !request.uri().path().starts_with("/webhooks/") =>
            {
                return ApiError::new(
                    ErrorCode::OriginRequired,
                    "strict Origin checking is on and this request has no Origin header",
                )
                .into_response();
            }
            _ => {}
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lan_reaches_the_moderator_surface_only() {
        for ok in [
            "/m/abc",
            "/moderator",
            "/ws/moderator",
            "/api/moderator-keys/consume",
            "/ui/moderator.js",
        ] {
            assert!(lan_may_reach(ok), "{ok}");
        }
        for no in [
            "/",
            "/login",
            "/session",
            "/api/status",
            "/metrics",
            "/overlays",
            "/o/ov_x",
            "/api/moderator-keys/generate",
            "/api/moderator-sessions",
            "/media/x",
            "/ws/events",
        ] {
            assert!(!lan_may_reach(no), "{no}");
        }
    }
}
