//! Text-to-speech routes: the streamer's `POST /api/tts/speak`, and `GET /tts/{hash}.wav`, the
//! rendered audio overlay pages play.
//!
//! The audio needs no credential besides its name: OBS loads it from the overlay page and
//! cannot send headers, and the name is a hash that cannot be computed without the data dir's
//! instance id, so it is as unguessable as the page's own signed link.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use stagehand_engine::tts::SpeakRequest;

use crate::auth::Streamer;
use crate::error::ApiError;
use crate::state::AppState;

/// The speech routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/tts/speak", post(speak))
        .route("/tts/{file}", get(audio))
}

/// `POST /api/tts/speak`
pub async fn speak(
    _: Streamer,
    State(state): State<AppState>,
    json: Result<Json<SpeakRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = json?;
    let spoken = state.engine.tts_speak(request).await?;
    Ok((StatusCode::ACCEPTED, Json(spoken)).into_response())
}

/// `GET /tts/{hash}.wav`
pub async fn audio(
    State(state): State<AppState>,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    let bytes = state.engine.tts_audio(&file).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "audio/wav"),
            // The same name always holds the same audio.
            (header::CACHE_CONTROL, "private, max-age=86400, immutable"),
        ],
        bytes,
    )
        .into_response())
}
