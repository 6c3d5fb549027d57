//! Text to speech for overlays: `tts.speak` messages with audio rendered by the engine.
//!
//! OBS's browser source does not capture Web SpeechSynthesis audio when "Control audio via
//! OBS" is on (obs-studio issue 8424) and its embedded Chromium often has no voices at all, so
//! the engine renders speech to a WAV file with a local program ([`engines::TtsEngine`]:
//! espeak-ng, `say` or SAPI, found at start) and the overlay page plays it as media, which OBS
//! captures like any page sound. Without a renderer the message goes out without audio and the
//! page falls back to SpeechSynthesis. Renders are cached by content ([`cache`]), so the same
//! words with the same voice are rendered once.
//!
//! [`Speech`] is the capability. It reaches overlay pages only through [`SpeechPages`], the
//! little it needs from overlays.

pub mod cache;
pub mod engines;
mod render;
mod request;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;

pub use self::engines::{RenderJob, TtsEngine};
use crate::Core;
use crate::clock::Clock;
use crate::config::{Config, TtsConfig};
use crate::metrics::Metrics;
pub use crate::protocol::tts::{SpeakRequest, Spoken, TtsSpeak};
use crate::random::RandomError;
use crate::store::StoreError;

/// Most characters of text in one request.
pub const MAX_TEXT_CHARS: usize = 500;

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
    /// The request names an overlay that does not exist.
    #[error("no overlay with that id")]
    OverlayNotFound,
    /// The store failed while looking the overlay up.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No randomness for a message id or a temporary file's name.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// A blocking or rendering task failed.
    #[error("background task failed: {0}")]
    Task(String),
}

/// What speech needs from overlays: whether an overlay exists, and a way to its pages.
pub trait SpeechPages: Send + Sync + 'static {
    /// Whether an overlay with id `overlay_id` exists (a malformed id does not).
    fn overlay_exists<'a>(&'a self, overlay_id: &'a str) -> BoxFuture<'a, Result<bool, TtsError>>;

    /// Queues `message` for the connected pages of `overlay_id`, or of every overlay when
    /// `None`; returns how many pages got it.
    fn push(&self, overlay_id: Option<&str>, message: &TtsSpeak) -> usize;
}

/// The speech capability: the renderer found at start, the audio cache and renders in flight.
/// Cheap to clone.
#[derive(Clone)]
pub struct Speech {
    inner: Arc<Inner>,
}

struct Inner {
    renderer: Option<Arc<dyn TtsEngine>>,
    dir: PathBuf,
    config: TtsConfig,
    instance_id: Arc<str>,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    pages: Arc<dyn SpeechPages>,
    /// One lock per key being rendered, so concurrent identical requests render once.
    in_flight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    renders: tokio::sync::Semaphore,
}

impl std::fmt::Debug for Speech {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Speech")
            .field("renderer", &self.renderer())
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

/// The speech cache directory of a configuration.
fn cache_dir(config: &Config) -> PathBuf {
    config.data_dir.join("tts-cache")
}

impl Speech {
    /// Finds the renderer (`PATH` of this process), clears half-written files a crash left, and
    /// speaks to overlay pages through `pages`.
    pub async fn open(core: &Core, pages: Arc<dyn SpeechPages>) -> Result<Self, TtsError> {
        let config = core.config.tts.clone();
        let dir = cache_dir(&core.config);
        let choice = config.engine;
        let clean = dir.clone();
        let renderer = tokio::task::spawn_blocking(move || {
            if let Err(e) = cache::remove_temp_files(&clean) {
                tracing::warn!(error = %e, "could not clear half-written speech files");
            }
            engines::detect(choice, std::env::var_os("PATH"))
        })
        .await
        .map_err(|e| TtsError::Task(e.to_string()))?;
        match &renderer {
            Some(e) => tracing::info!(engine = e.name(), "text to speech renders audio"),
            None => tracing::info!(
                "no text-to-speech program found (espeak-ng on Linux); overlay pages will use \
                 the browser's voices, which OBS does not capture when it controls page audio"
            ),
        }
        Ok(Self {
            inner: Arc::new(Inner {
                renderer,
                dir,
                config,
                instance_id: Arc::clone(&core.instance_id),
                clock: Arc::clone(&core.clock),
                metrics: core.metrics.clone(),
                pages,
                in_flight: Mutex::default(),
                renders: tokio::sync::Semaphore::new(render::PARALLEL_RENDERS),
            }),
        })
    }

    /// The active renderer's name (`espeak-ng`, `say`, `sapi`), for status; `None` when pages
    /// speak with the browser's voices.
    pub fn renderer(&self) -> Option<&'static str> {
        self.inner.renderer.as_ref().map(|e| e.name())
    }

    fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    /// Says `req.text` on one overlay or all of them: renders it (or takes it from the cache)
    /// and pushes `tts.speak` with the audio's URL. Bad input is refused before anything is
    /// rendered, written or sent.
    pub async fn speak(&self, req: SpeakRequest) -> Result<Spoken, TtsError> {
        let speech = request::validate(&req)?;
        if let Some(id) = &req.overlay_id
            && !self.inner.pages.overlay_exists(id).await?
        {
            return Err(TtsError::OverlayNotFound);
        }
        let audio_url = match &self.inner.renderer {
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
                let key = self.render(Arc::clone(engine), job).await?;
                Some(format!("/tts/{key}.wav"))
            }
            None => None,
        };
        let id = format!("tts_{}", crate::random::token(9)?);
        let message = TtsSpeak {
            id: id.clone(),
            text: speech.text,
            lang: speech.lang,
            voice: speech.voice,
            rate: speech.rate,
            pitch: speech.pitch,
            volume: speech.volume,
            audio_url: audio_url.clone(),
        };
        let pages = self.inner.pages.push(req.overlay_id.as_deref(), &message);
        let engine = self.renderer();
        self.inner.metrics.counter_add(
            "stagehand_tts_requests_total",
            "Speech requests sent to overlays, by renderer.",
            &[("engine", engine.unwrap_or("none"))],
            1,
        );
        Ok(Spoken {
            id,
            pages,
            audio_url,
            engine: engine.map(str::to_owned),
        })
    }

    /// The cached audio `file` (`{hash}.wav`), for `GET /tts/{file}`.
    pub async fn audio(&self, file: &str) -> Result<Vec<u8>, TtsError> {
        let key = file
            .strip_suffix(".wav")
            .filter(|k| cache::is_key(k))
            .ok_or(TtsError::AudioNotFound)?;
        match tokio::fs::read(cache::file(&self.inner.dir, key)).await {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(TtsError::AudioNotFound),
            Err(e) => Err(TtsError::Cache(e)),
        }
    }
}
