//! Google's quirks, under `/google`: its code-flow endpoints at Google's paths (a confidential
//! "desktop" client with a secret that is not secret) and YouTube's
//! `GET /youtube/v3/channels?mine=true`.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::code_flow::{self, Paths};
use super::state::{AppState, Provider};
use super::wire::bearer;
use super::{YOUTUBE_CHANNEL_ID, YOUTUBE_CHANNEL_TITLE};

/// Google's and YouTube's routes.
pub(super) fn routes() -> Router<AppState> {
    let paths = Paths {
        authorize: "/google/o/oauth2/v2/auth",
        token: "/google/token",
        revoke: "/google/revoke",
    };
    code_flow::routes(Provider::Google, &paths)
        .route("/google/youtube/v3/channels", get(youtube_channels))
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
