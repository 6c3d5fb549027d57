//! Discord's quirks, under `/discord/api`: its code-flow endpoints (a public client with PKCE,
//! rotating refresh tokens) and `GET /users/@me`.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::code_flow::{self, Paths};
use super::state::{AppState, Provider};
use super::wire::bearer;
use super::{DISCORD_NAME, DISCORD_USER_ID};

/// Discord's routes.
pub(super) fn routes() -> Router<AppState> {
    let paths = Paths {
        authorize: "/discord/api/oauth2/authorize",
        token: "/discord/api/oauth2/token",
        revoke: "/discord/api/oauth2/token/revoke",
    };
    code_flow::routes(Provider::Discord, &paths).route("/discord/api/users/@me", get(discord_me))
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
