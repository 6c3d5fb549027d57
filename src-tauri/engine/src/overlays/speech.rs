//! What overlays offer speech: [`crate::tts::SpeechPages`], the narrow trait the speech
//! capability names for finding an overlay and queuing `tts.speak` on its pages.
//!
//! It lives here, beside the pages it reaches, so speech never holds more of overlays than
//! these two calls.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::{OverlayError, Overlays};
use crate::EngineError;
use crate::tts::{SpeechPages, TtsError, TtsSpeak};

impl SpeechPages for Overlays {
    fn overlay_exists<'a>(&'a self, overlay_id: &'a str) -> BoxFuture<'a, Result<bool, TtsError>> {
        Box::pin(async move {
            match self.get(overlay_id).await {
                Ok(_) => Ok(true),
                Err(EngineError::Overlay(OverlayError::NotFound)) => Ok(false),
                Err(EngineError::Store(e)) => Err(TtsError::Store(e)),
                Err(other) => Err(TtsError::Task(format!("looking up the overlay: {other}"))),
            }
        })
    }

    fn push(&self, overlay_id: Option<&str>, message: &TtsSpeak) -> usize {
        let message: Arc<str> = match serde_json::to_string(message) {
            Ok(text) => Arc::from(text),
            Err(e) => {
                tracing::error!(error = %e, "could not serialise a tts.speak message");
                return 0;
            }
        };
        let hub = self.hub();
        match overlay_id {
            Some(overlay) => hub.send(overlay, &message),
            None => hub.send_all(&message),
        }
    }
}
