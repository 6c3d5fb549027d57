//! Text to speech on the wire: the `POST /api/tts/speak` body (also a moderator action), its
//! answer, and the `tts.speak` message overlay pages receive.

use serde::{Deserialize, Serialize};

/// `POST /api/tts/speak`: what to say, and where.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeakRequest {
    /// Only this overlay; all overlays when absent.
    #[serde(rename = "overlayId")]
    pub overlay_id: Option<String>,
    /// 1-500 characters.
    pub text: String,
    /// Language tag such as `en-US`; picks the renderer's voice for it.
    pub lang: Option<String>,
    /// The renderer's voice name (espeak-ng: `en-us`, `gmw/en-US`, `en-us+f3`).
    pub voice: Option<String>,
    /// Speed, 0.5-2.0 (default 1).
    pub rate: Option<f64>,
    /// Pitch, 0-2 (default 1).
    pub pitch: Option<f64>,
    /// Loudness on the page, 0-1 (default 1).
    pub volume: Option<f64>,
}

/// What a speech request did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spoken {
    /// Id of the `tts.speak` message.
    pub id: String,
    /// Pages it was queued for.
    pub pages: usize,
    /// Where the pages load the audio (`/tts/{hash}.wav`); `null` without a renderer, when
    /// pages speak with the browser's voices.
    pub audio_url: Option<String>,
    /// The renderer used (`espeak-ng`, `say`, `sapi`), or `null`.
    pub engine: Option<String>,
}

/// The `tts.speak` message overlay pages receive: `{"type": "tts.speak", ...}`, snake_case
/// like the other page messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "tts.speak")]
pub struct TtsSpeak {
    /// Message id (`tts_…`), the same as [`Spoken::id`].
    pub id: String,
    /// What to say.
    pub text: String,
    /// Language tag, or `null`.
    pub lang: Option<String>,
    /// Voice name, or `null`.
    pub voice: Option<String>,
    /// Speed, 0.5-2.0.
    pub rate: f64,
    /// Pitch, 0-2.
    pub pitch: f64,
    /// Loudness on the page, 0-1.
    pub volume: f64,
    /// The rendered audio; absent without a renderer, when the page speaks with the browser's
    /// SpeechSynthesis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_message_keeps_its_shape_and_leaves_out_missing_audio() {
        let mut message = TtsSpeak {
            id: "tts_x".into(),
            text: "hi".into(),
            lang: None,
            voice: Some("en-us".into()),
            rate: 1.0,
            pitch: 1.0,
            volume: 0.5,
            audio_url: None,
        };
        assert_eq!(
            serde_json::to_value(&message).expect("serialises"),
            serde_json::json!({
                "type": "tts.speak", "id": "tts_x", "text": "hi", "lang": null,
                "voice": "en-us", "rate": 1.0, "pitch": 1.0, "volume": 0.5,
            }),
            "pages fall back to the browser's voices when audio_url is absent"
        );
        message.audio_url = Some("/tts/a.wav".into());
        let value = serde_json::to_value(&message).expect("serialises");
        assert_eq!(value["audio_url"], "/tts/a.wav");
    }

    #[test]
    fn unknown_request_fields_are_refused() {
        let parsed: Result<SpeakRequest, _> =
            serde_json::from_value(serde_json::json!({ "text": "hi", "speed": 2 }));
        assert!(parsed.is_err(), "a misspelt field must not be ignored");
        let parsed: SpeakRequest =
            serde_json::from_value(serde_json::json!({ "text": "hi", "overlayId": "ov_1" }))
                .expect("valid");
        assert_eq!(parsed.overlay_id.as_deref(), Some("ov_1"));
    }
}
