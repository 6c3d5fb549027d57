//! Text-to-speech routes: the streamer's `POST /api/tts/speak`, and `GET /tts/{hash}.wav`, the
//! rendered audio overlay pages play.
//!
//! The audio needs no credential besides its name: OBS loads it from the overlay page and
//! cannot send headers, and the name is a hash that cannot be computed without the data dir's
//! instance id, so it is as unguessable as the page's own signed link.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use stagehand_engine::EngineError;
use stagehand_engine::tts::{SpeakRequest, TtsError};

use crate::AppState;
use crate::auth::Streamer;
use crate::error::ApiError;

/// `POST /api/tts/speak`
pub async fn speak(
    _: Streamer,
    State(state): State<AppState>,
    json: Result<Json<SpeakRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = json?;
    let spoken = state.engine.speech().speak(request).await?;
    Ok((StatusCode::ACCEPTED, Json(spoken)).into_response())
}

/// `GET /tts/{hash}.wav`
pub async fn audio(
    State(state): State<AppState>,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    let bytes = state.engine.speech().audio(&file).await?;
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

/// The status and code of each speech error.
pub(crate) fn error(err: TtsError) -> ApiError {
    let message = err.to_string();
    match err {
        TtsError::Invalid(_) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_fields", message)
        }
        TtsError::VoiceUnavailable { .. } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "tts_voice_unavailable",
            message,
        ),
        TtsError::Render { engine, .. } => {
            // The program's stderr may quote paths; it goes to the log only.
            tracing::error!(error = %message, "speech render failed");
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "tts_render_failed",
                format!("{engine} could not render the speech; details are in Stagehand's log"),
            )
        }
        TtsError::Timeout { .. } => {
            tracing::warn!(error = %message, "speech render timed out");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "tts_render_timeout",
                message,
            )
        }
        TtsError::AudioNotFound => {
            ApiError::new(StatusCode::NOT_FOUND, "tts_audio_not_found", message)
        }
        TtsError::Cache(e) => {
            tracing::error!(error = %e, "speech cache failed");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "tts_cache_error",
                "Stagehand could not read or write its speech cache; details are in its log",
            )
        }
        TtsError::OverlayNotFound => {
            ApiError::new(StatusCode::NOT_FOUND, "overlay_not_found", message)
        }
        TtsError::Store(e) => EngineError::Store(e).into(),
        TtsError::Random(e) => EngineError::Random(e).into(),
        TtsError::Task(e) => EngineError::Task(e).into(),
    }
}

impl From<TtsError> for ApiError {
    fn from(err: TtsError) -> Self {
        error(err)
    }
}
