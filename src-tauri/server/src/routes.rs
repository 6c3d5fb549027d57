//! The one place the server's doors are put together: every capability's `routes()` merged,
//! the fallbacks for unknown paths and methods, the default body limit, and the layers every
//! request passes (outermost first: `observe`, the LAN surface check, the Host/Origin guard).

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use stagehand_protocol::ErrorCode;

use crate::error::ApiError;
use crate::state::AppState;
use crate::{
    accounts, auth, guard, media, moderators, obs, observe, overlays, pages, probes, relay, scenes,
    status, tts, webhooks, ws,
};

/// Builds the app for an engine served at `state.local_url`.
pub fn router(state: AppState) -> Router {
    let limit = state.engine.config().security.json_body_limit_bytes;
    Router::new()
        .merge(pages::routes())
        .merge(auth::routes())
        .merge(probes::routes())
        .merge(status::routes())
        .merge(ws::routes())
        .merge(overlays::routes())
        .merge(scenes::routes())
        .merge(moderators::routes())
        .merge(obs::routes())
        .merge(accounts::routes())
        .merge(webhooks::routes())
        .merge(media::routes(&state))
        .merge(tts::routes())
        .merge(relay::routes())
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                "this path does not accept that method",
            )
        })
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(state.clone(), guard::guard))
        .layer(middleware::from_fn(guard::lan_surface))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            observe::observe,
        ))
        .with_state(state)
}
