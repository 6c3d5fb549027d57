//! Text to speech for overlays: `tts.speak` messages with audio rendered by the engine.
//!
//! OBS's browser source does not capture Web SpeechSynthesis audio when "Control audio via
//! OBS" is on (obs-studio issue 8424) and its embedded Chromium often has no voices at all, so
//! the engine renders speech to a WAV file with a local program ([`engines::TtsEngine`]:
//! espeak-ng, `say` or SAPI, found at start) and the overlay page plays it as media, which OBS
//! captures like any page sound. Without a renderer the message goes out without audio and the
//! page falls back to SpeechSynthesis. Renders are cached by content ([`cache`]), so the same
//! words with the same voice are rendered once.

pub mod cache;
pub mod engines;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use engines::{RenderJob, TtsEngine};

use crate::config::{Config, TtsConfig};
use crate::{Engine, EngineError};

/// Most characters of text in one request.
pub const MAX_TEXT_CHARS: usize = 500;

/// Renders running at once; more wait their turn (each is a CPU-bound process).
const PARALLEL_RENDERS: usize = 2;

/// Errors of speech requests.
#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    /// A field is missing or out of range.
    #[error("{0}")]
    Invalid(String),
    /// The renderer has no voice for the requested language or voice name.
    #[error("{engine} has no voice for {wanted}; leave it out to use the default voice")]
    VoiceUnavailable {
        /// The renderer.
        engine: &'static str,
        /// What was asked for, in words.
        wanted: String,
    },
    /// The renderer failed.
    #[error("{engine} could not render the speech: {reason}")]
    Render {
        /// The renderer.
        engine: &'static str,
        /// Why (may quote the program's stderr; logged, not sent to clients).
        reason: String,
    },
    /// The renderer took longer than `tts.render_timeout_ms` and was stopped.
    #[error("{engine} took longer than {ms} ms to render the speech and was stopped")]
    Timeout {
        /// The renderer.
        engine: &'static str,
        /// The limit.
        ms: u64,
    },
    /// No cached audio with that id (never rendered, or pruned since).
    #[error("no speech audio with that id")]
    AudioNotFound,
    /// Reading or writing the cache directory failed.
    #[error("speech cache: {0}")]
    Cache(#[from] std::io::Error),
}

/// `POST /api/tts/speak`: what to say, and where.
#[derive(Debug, Clone, Default, Deserialize)]
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
#[derive(Debug, Clone, Serialize)]
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
    pub engine: Option<&'static str>,
}

/// A request that passed validation, with defaults filled in.
#[derive(Debug, Clone, PartialEq)]
struct Speech {
    text: String,
    lang: Option<String>,
    voice: Option<String>,
    rate: f64,
    pitch: f64,
    volume: f64,
}

fn ranged(what: &str, value: Option<f64>, low: f64, high: f64) -> Result<f64, TtsError> {
    let value = value.unwrap_or(1.0);
    if (low..=high).contains(&value) {
        // Two decimals: finer steps are inaudible and would only split the cache.
        Ok((value * 100.0).round() / 100.0)
    } else {
        Err(TtsError::Invalid(format!(
            "{what} must be between {low} and {high}"
        )))
    }
}

/// `en`, `en-US`, `zh-Hant-TW`: a primary language of 2-3 letters and up to three subtags.
fn lang_ok(lang: &str) -> bool {
    let mut parts = lang.split('-');
    let primary = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    (2..=3).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_alphabetic())
        && rest.len() <= 3
        && rest
            .iter()
            .all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Voice names are handed to a program as one argument; keep them to plain characters.
fn voice_ok(voice: &str) -> bool {
    (1..=64).contains(&voice.len())
        && !voice.starts_with('-')
        && voice
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" _-+./()".contains(&b))
}

fn validate(req: &SpeakRequest) -> Result<Speech, TtsError> {
    let chars = req.text.chars().count();
    if req.text.trim().is_empty() || chars > MAX_TEXT_CHARS {
        return Err(TtsError::Invalid(format!(
            "text must be 1-{MAX_TEXT_CHARS} characters (it has {chars})"
        )));
    }
    if req
        .text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(TtsError::Invalid(
            "text must not contain control characters".into(),
        ));
    }
    if let Some(lang) = &req.lang
        && !lang_ok(lang)
    {
        return Err(TtsError::Invalid(
            "lang must be a language tag such as en or en-US".into(),
        ));
    }
    if let Some(voice) = &req.voice
        && !voice_ok(voice)
    {
        return Err(TtsError::Invalid(
            "voice must be 1-64 of letters, digits, space and _ - + . / ( ), not starting with -"
                .into(),
        ));
    }
    Ok(Speech {
        text: req.text.clone(),
        lang: req.lang.clone(),
        voice: req.voice.clone(),
        rate: ranged("rate", req.rate, 0.5, 2.0)?,
        pitch: ranged("pitch", req.pitch, 0.0, 2.0)?,
        volume: ranged("volume", req.volume, 0.0, 1.0)?,
    })
}

/// The engine's speech state: the renderer, the cache and renders in flight.
pub(crate) struct Tts {
    engine: Option<Arc<dyn TtsEngine>>,
    dir: PathBuf,
    config: TtsConfig,
    /// One lock per key being rendered, so concurrent identical requests render once.
    in_flight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    renders: tokio::sync::Semaphore,
}

impl Tts {
    /// Finds the renderer (`PATH` of this process) and clears half-written files a crash left.
    pub(crate) async fn start(config: &Config) -> Result<Self, EngineError> {
        let tts = config.tts.clone();
        let dir = config.data_dir.join("tts-cache");
        let choice = tts.engine;
        let clean = dir.clone();
        let engine = tokio::task::spawn_blocking(move || {
            if let Err(e) = cache::remove_temp_files(&clean) {
                tracing::warn!(error = %e, "could not clear half-written speech files");
            }
            engines::detect(choice, std::env::var_os("PATH"))
        })
        .await
        .map_err(|e| EngineError::Task(e.to_string()))?;
        match &engine {
            Some(e) => tracing::info!(engine = e.name(), "text to speech renders audio"),
            None => tracing::info!(
                "no text-to-speech program found (espeak-ng on Linux); overlay pages will use \
                 the browser's voices, which OBS does not capture when it controls page audio"
            ),
        }
        Ok(Self {
            engine,
            dir,
            config: tts,
            in_flight: Mutex::default(),
            renders: tokio::sync::Semaphore::new(PARALLEL_RENDERS),
        })
    }

    /// The active renderer's name.
    pub(crate) fn engine_name(&self) -> Option<&'static str> {
        self.engine.as_ref().map(|e| e.name())
    }

    fn limits(&self) -> cache::Limits {
        cache::Limits {
            max_files: self.config.cache_max_files,
            max_bytes: self.config.cache_max_bytes,
            max_age_ms: i64::try_from(self.config.cache_max_age_seconds.saturating_mul(1000))
                .unwrap_or(i64::MAX),
        }
    }

    fn key_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(map.entry(key.to_owned()).or_default())
    }

    fn key_done(&self, key: &str, lock: &Arc<tokio::sync::Mutex<()>>) {
        let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(key).is_some_and(|l| Arc::ptr_eq(l, lock)) {
            map.remove(key);
        }
    }
}

impl Engine {
    /// Says `req.text` on one overlay or all of them: renders it (or takes it from the cache)
    /// and pushes `tts.speak` with the audio's URL. Bad input is refused before anything is
    /// rendered, written or sent.
    pub async fn tts_speak(&self, req: SpeakRequest) -> Result<Spoken, EngineError> {
        let speech = validate(&req)?;
        if let Some(id) = &req.overlay_id {
            self.overlays().get(id).await?;
        }
        let tts = &self.inner.tts;
        let audio_url = match &tts.engine {
            Some(engine) => {
                let voice = engine
                    .resolve_voice(speech.lang.as_deref(), speech.voice.as_deref())
                    .await?;
                let job = RenderJob {
                    text: speech.text.clone(),
                    voice,
                    lang: speech.lang.clone(),
                    rate: speech.rate,
                    pitch: speech.pitch,
                };
                let key = self.tts_render(Arc::clone(engine), job).await?;
                Some(format!("/tts/{key}.wav"))
            }
            None => None,
        };
        let id = format!("tts_{}", crate::random::token(9)?);
        let mut message = serde_json::json!({
            "type": "tts.speak",
            "id": id,
            "text": speech.text,
            "lang": speech.lang,
            "voice": speech.voice,
            "rate": speech.rate,
            "pitch": speech.pitch,
            "volume": speech.volume,
        });
        if let (Some(url), Some(map)) = (&audio_url, message.as_object_mut()) {
            map.insert("audio_url".into(), url.clone().into());
        }
        let message: Arc<str> = Arc::from(message.to_string());
        let hub = self.overlays().hub();
        let pages = match &req.overlay_id {
            Some(overlay) => hub.send(overlay, &message),
            None => hub.send_all(&message),
        };
        let engine = tts.engine_name();
        self.metrics().counter_add(
            "stagehand_tts_requests_total",
            "Speech requests sent to overlays, by renderer.",
            &[("engine", engine.unwrap_or("none"))],
            1,
        );
        Ok(Spoken {
            id,
            pages,
            audio_url,
            engine,
        })
    }

    /// Makes sure the audio of `job` is in the cache; returns its key. Runs in a task of its
    /// own: a request its client abandons still finishes or times out and cleans up after
    /// itself, instead of leaving a half-written file and a stale lock behind.
    async fn tts_render(
        &self,
        engine: Arc<dyn TtsEngine>,
        job: RenderJob,
    ) -> Result<String, EngineError> {
        let this = self.clone();
        tokio::spawn(async move { this.tts_render_here(engine.as_ref(), &job).await })
            .await
            .map_err(|e| EngineError::Task(e.to_string()))?
    }

    async fn tts_render_here(
        &self,
        engine: &dyn TtsEngine,
        job: &RenderJob,
    ) -> Result<String, EngineError> {
        let tts = &self.inner.tts;
        let key = cache::key(self.instance_id(), engine.name(), job);
        let target = cache::file(&tts.dir, &key);
        let lock = tts.key_lock(&key);
        let result = async {
            let _rendering = lock.lock().await;
            let now = self.now_ms();
            let cached = target.clone();
            if blocking(move || cache::touch(&cached, now)).await?? {
                self.tts_count("hit");
                return Ok(());
            }
            let _permit = tts
                .renders
                .acquire()
                .await
                .map_err(|e| EngineError::Task(e.to_string()))?;
            let dir = tts.dir.clone();
            let temp = dir.join(format!(
                "{}{}.wav",
                cache::TEMP_PREFIX,
                crate::random::token(9)?
            ));
            let made = temp.clone();
            blocking(move || std::fs::create_dir_all(&dir)).await??;
            let started = std::time::Instant::now();
            let timeout = Duration::from_millis(tts.config.render_timeout_ms);
            let rendered = engine.render(job, &temp, timeout).await;
            self.metrics().observe(
                "stagehand_tts_render_seconds",
                "Time to render speech to audio.",
                &[("engine", engine.name())],
                started.elapsed().as_secs_f64(),
            );
            let installed = match rendered {
                Ok(()) => {
                    let (from, to, now) = (temp.clone(), target.clone(), self.now_ms());
                    blocking(move || cache::install(&from, &to, now)).await?
                }
                Err(e) => Err(e),
            };
            let outcome = match &installed {
                Ok(true) => "ok",
                Err(TtsError::Timeout { .. }) => "timeout",
                _ => "failed",
            };
            self.tts_count(outcome);
            if !matches!(installed, Ok(true)) {
                let _ = blocking(move || std::fs::remove_file(&made)).await;
            }
            match installed {
                Ok(true) => {}
                Ok(false) => {
                    return Err(TtsError::Render {
                        engine: engine.name(),
                        reason: "it exited without writing a WAV file".into(),
                    }
                    .into());
                }
                Err(e) => return Err(e.into()),
            }
            let (dir, keep, limits, now) =
                (tts.dir.clone(), target.clone(), tts.limits(), self.now_ms());
            match blocking(move || cache::prune(&dir, limits, now, &keep)).await? {
                Ok(0) => {}
                Ok(n) => tracing::debug!(deleted = n, "pruned the speech cache"),
                Err(e) => tracing::warn!(error = %e, "could not prune the speech cache"),
            }
            Ok(())
        }
        .await;
        tts.key_done(&key, &lock);
        result.map(|()| key)
    }

    fn tts_count(&self, outcome: &str) {
        self.metrics().counter_add(
            "stagehand_tts_renders_total",
            "Speech renders by outcome (hit: served from the cache).",
            &[("outcome", outcome)],
            1,
        );
    }

    /// The active speech renderer, for status.
    pub fn tts_engine(&self) -> Option<&'static str> {
        self.inner.tts.engine_name()
    }

    /// The cached audio `file` (`{hash}.wav`), for `GET /tts/{file}`.
    pub async fn tts_audio(&self, file: &str) -> Result<Vec<u8>, EngineError> {
        let key = file
            .strip_suffix(".wav")
            .filter(|k| cache::is_key(k))
            .ok_or(TtsError::AudioNotFound)?;
        match tokio::fs::read(cache::file(&self.inner.tts.dir, key)).await {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(TtsError::AudioNotFound.into())
            }
            Err(e) => Err(TtsError::Cache(e).into()),
        }
    }
}

/// Runs file-system work on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<Result<T, TtsError>, EngineError> {
    tokio::task::spawn_blocking(move || f().map_err(TtsError::from))
        .await
        .map_err(|e| EngineError::Task(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(text: &str) -> SpeakRequest {
        SpeakRequest {
            text: text.into(),
            ..SpeakRequest::default()
        }
    }

    #[test]
    fn defaults_fill_in_and_values_round_to_two_decimals() {
        let s = validate(&req("hello")).expect("valid");
        assert_eq!((s.rate, s.pitch, s.volume), (1.0, 1.0, 1.0));
        let s = validate(&SpeakRequest {
            rate: Some(1.23456),
            lang: Some("zh-Hant-TW".into()),
            voice: Some("en-us+f3".into()),
            ..req("hello")
        })
        .expect("valid");
        assert_eq!(s.rate, 1.23);
    }

    #[test]
    fn out_of_range_and_malformed_fields_are_refused() {
        let long = "a".repeat(MAX_TEXT_CHARS + 1);
        let at_limit = "é".repeat(MAX_TEXT_CHARS);
        assert!(validate(&req(&at_limit)).is_ok(), "characters, not bytes");
        for bad in [
            req(""),
            req("   \n"),
            req(&long),
            req("bell\u{7}"),
            SpeakRequest {
                rate: Some(0.49),
                ..req("x")
            },
            SpeakRequest {
                rate: Some(2.01),
                ..req("x")
            },
            SpeakRequest {
                pitch: Some(-0.1),
                ..req("x")
            },
            SpeakRequest {
                volume: Some(1.5),
                ..req("x")
            },
            SpeakRequest {
                lang: Some("english".into()),
                ..req("x")
            },
            SpeakRequest {
                lang: Some("en_US".into()),
                ..req("x")
            },
            SpeakRequest {
                lang: Some("en-".into()),
                ..req("x")
            },
            SpeakRequest {
                voice: Some("-w /etc/x".into()),
                ..req("x")
            },
            SpeakRequest {
                voice: Some("a;b".into()),
                ..req("x")
            },
            SpeakRequest {
                voice: Some(String::new()),
                ..req("x")
            },
        ] {
            assert!(
                matches!(validate(&bad), Err(TtsError::Invalid(_))),
                "{bad:?} must be refused"
            );
        }
    }
}
