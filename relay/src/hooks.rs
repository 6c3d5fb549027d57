//! The public door: `POST /h/{tunnel_id}/{*path}` stores a webhook and answers 202 only once
//! it is committed. Also `/healthz` and the JSON 404 for everything else.
//!
//! Checks run cheapest and least revealing first: tunnel, path, source address, declared size,
//! rate, then the body is read under a size cap and a time limit.

use std::net::{IpAddr, SocketAddr};

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use serde_json::json;
use stagehand_protocol::relay::FORWARDED_HEADERS;

use crate::error::ApiError;
use crate::store::NewDelivery;
use crate::{Relay, tunnel};

/// `POST /h/{tunnel_id}/{*path}`; every outcome is counted for `/metrics`.
pub(crate) async fn receive(
    State(relay): State<Relay>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    params: Result<Path<(String, String)>, PathRejection>,
    req: Request,
) -> Result<Response, ApiError> {
    let result = store_webhook(&relay, peer, params, req).await;
    if let Err(e) = &result {
        relay.metrics().refused(e.code);
    }
    result
}

async fn store_webhook(
    relay: &Relay,
    peer: SocketAddr,
    params: Result<Path<(String, String)>, PathRejection>,
    req: Request,
) -> Result<Response, ApiError> {
    let Path((tunnel_id, path)) = params.map_err(|_| ApiError::not_found())?;
    let tunnel = relay
        .tunnel(&tunnel_id)
        .ok_or_else(ApiError::unknown_tunnel)?;
    let path = tunnel::webhook_path(&path).ok_or_else(ApiError::unknown_path)?;
    let limits = &relay.config().limits;

    let client = client_ip(peer.ip(), req.headers(), &relay.config().trusted_proxies);
    if !tunnel.allows(&path, client) {
        tracing::info!(tunnel = %tunnel.id, %path, %client, "refused: source not allowed");
        return Err(ApiError::forbidden_source());
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body_bytes as u64) {
        return Err(ApiError::body_too_large(limits.max_body_bytes));
    }
    if let Err(retry_after) = tunnel.take_token(limits, relay.config().clock.now_ms()) {
        tracing::debug!(tunnel = %tunnel.id, "refused: rate limited");
        return Err(ApiError::rate_limited(retry_after));
    }

    let query = req.uri().query().unwrap_or_default().to_owned();
    let headers = forwarded_headers(req.headers());
    let capacity = declared.map_or(0, |n| n as usize);
    let body = tokio::time::timeout(
        limits.body_timeout,
        read_body(req, limits.max_body_bytes, capacity),
    )
    .await
    .map_err(|_| ApiError::body_timeout())??;

    let bytes = body.len();
    let stored = relay
        .writer()
        .insert(NewDelivery {
            tunnel: tunnel.key,
            path,
            query,
            headers,
            body,
            received_at_ms: relay.config().clock.now_ms(),
            remote_addr: Some(client.to_string()),
        })
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    tunnel.wake_link(stored.evicted);
    relay.metrics().stored(bytes, stored.evicted);
    tracing::debug!(tunnel = %tunnel.id, seq = stored.seq, bytes, "stored webhook");
    if stored.evicted {
        tracing::warn!(tunnel = %tunnel.id, "buffer full: evicted the oldest delivery");
    }
    let delivery_id = format!("{}-{}", tunnel.id, stored.seq);
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "deliveryId": delivery_id, "seq": stored.seq })),
    )
        .into_response())
}

/// Reads the body, refusing it as soon as it passes `max` bytes.
async fn read_body(req: Request, max: usize, capacity: usize) -> Result<Vec<u8>, ApiError> {
    let mut stream = req.into_body().into_data_stream();
    let mut buf = Vec::with_capacity(capacity.min(max));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| ApiError::body_unreadable())?;
        if buf.len() + chunk.len() > max {
            return Err(ApiError::body_too_large(max));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// The headers the engine needs, in the order received; everything else is dropped.
fn forwarded_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| FORWARDED_HEADERS.contains(&name.as_str()))
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// The sender's address: the TCP peer, unless the peer is a trusted proxy, in which case the
/// rightmost `X-Forwarded-For` entry that is not itself a trusted proxy.
pub(crate) fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.contains(&peer) {
        return peer;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let mut client = peer;
    for entry in entries.into_iter().rev() {
        let Ok(ip) = entry.trim().parse::<IpAddr>() else {
            break;
        };
        client = ip.to_canonical();
        if !trusted.contains(&client) {
            break;
        }
    }
    client
}

/// `GET /healthz`.
pub(crate) async fn healthz(State(relay): State<Relay>) -> Response {
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "tunnels": relay.tunnel_count(),
        "connectedLinks": relay.connected_links(),
    }))
    .into_response()
}

/// Everything else.
pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.1.1.1, 52.89.214.238"),
        );
        let proxy: IpAddr = [127, 0, 0, 1].into();
        assert_eq!(
            client_ip(proxy, &headers, &[]),
            proxy,
            "no trusted proxy: the header is anyone's to forge"
        );
        assert_eq!(
            client_ip(proxy, &headers, &[proxy]),
            IpAddr::from([52, 89, 214, 238]),
            "the proxy appended the real peer last; earlier entries are the sender's claims"
        );
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &[proxy]), proxy);
    }

    #[test]
    fn only_listed_headers_are_kept() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert("cookie", HeaderValue::from_static("a=b"));
        headers.insert("authorization", HeaderValue::from_static("Bearer x"));
        headers.insert("x-signature", HeaderValue::from_static("sig"));
        assert_eq!(
            forwarded_headers(&headers),
            vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                ("x-signature".to_owned(), "sig".to_owned()),
            ]
        );
    }
}
