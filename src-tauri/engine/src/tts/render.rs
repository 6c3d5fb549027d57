//! Rendering through the cache: a render runs once per distinct request, at most
//! [`PARALLEL_RENDERS`] at a time, in a task of its own, and every file it leaves is complete.

use std::sync::Arc;
use std::time::Duration;

use super::engines::{RenderJob, TtsEngine};
use super::{Speech, TtsError, cache};

/// Renders running at once; more wait their turn (each is a CPU-bound process).
pub(super) const PARALLEL_RENDERS: usize = 2;

impl Speech {
    /// Makes sure the audio of `job` is in the cache; returns its key. Runs in a task of its
    /// own: a request its client abandons still finishes or times out and cleans up after
    /// itself, instead of leaving a half-written file and a stale lock behind.
    pub(super) async fn render(
        &self,
        engine: Arc<dyn TtsEngine>,
        job: RenderJob,
    ) -> Result<String, TtsError> {
        let this = self.clone();
        tokio::spawn(async move { this.render_here(engine.as_ref(), &job).await })
            .await
            .map_err(|e| TtsError::Task(e.to_string()))?
    }

    async fn render_here(
        &self,
        engine: &dyn TtsEngine,
        job: &RenderJob,
    ) -> Result<String, TtsError> {
        let tts = &self.inner;
        let key = cache::key(&tts.instance_id, engine.name(), job);
        let target = cache::file(&tts.dir, &key);
        let lock = self.key_lock(&key);
        let result = async {
            let _rendering = lock.lock().await;
            let now = self.now_ms();
            let cached = target.clone();
            if blocking(move || cache::touch(&cached, now)).await?? {
                self.count("hit");
                return Ok(());
            }
            let _permit = tts
                .renders
                .acquire()
                .await
                .map_err(|e| TtsError::Task(e.to_string()))?;
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
            tts.metrics.observe(
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
            self.count(outcome);
            if !matches!(installed, Ok(true)) {
                let _ = blocking(move || std::fs::remove_file(&made)).await;
            }
            match installed {
                Ok(true) => {}
                Ok(false) => {
                    return Err(TtsError::Render {
                        engine: engine.name(),
                        reason: "it exited without writing a WAV file".into(),
                    });
                }
                Err(e) => return Err(e),
            }
            let (dir, keep, limits, now) = (
                tts.dir.clone(),
                target.clone(),
                self.limits(),
                self.now_ms(),
            );
            match blocking(move || cache::prune(&dir, limits, now, &keep)).await? {
                Ok(0) => {}
                Ok(n) => tracing::debug!(deleted = n, "pruned the speech cache"),
                Err(e) => tracing::warn!(error = %e, "could not prune the speech cache"),
            }
            Ok(())
        }
        .await;
        self.key_done(&key, &lock);
        result.map(|()| key)
    }

    fn count(&self, outcome: &str) {
        self.inner.metrics.counter_add(
            "stagehand_tts_renders_total",
            "Speech renders by outcome (hit: served from the cache).",
            &[("outcome", outcome)],
            1,
        );
    }

    fn limits(&self) -> cache::Limits {
        let config = &self.inner.config;
        cache::Limits {
            max_files: config.cache_max_files,
            max_bytes: config.cache_max_bytes,
            max_age_ms: i64::try_from(config.cache_max_age_seconds.saturating_mul(1000))
                .unwrap_or(i64::MAX),
        }
    }

    /// The lock of `key`: concurrent identical requests render once.
    fn key_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self
            .inner
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        Arc::clone(map.entry(key.to_owned()).or_default())
    }

    fn key_done(&self, key: &str, lock: &Arc<tokio::sync::Mutex<()>>) {
        let mut map = self
            .inner
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if map.get(key).is_some_and(|l| Arc::ptr_eq(l, lock)) {
            map.remove(key);
        }
    }
}

/// Runs file-system work on the blocking pool.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<Result<T, TtsError>, TtsError> {
    tokio::task::spawn_blocking(move || f().map_err(TtsError::from))
        .await
        .map_err(|e| TtsError::Task(e.to_string()))
}
