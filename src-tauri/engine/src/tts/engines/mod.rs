//! Speech renderers: the [`TtsEngine`] trait, the platform programs behind it, and finding
//! which one this machine has.
//!
//! Every renderer is an outside program (espeak-ng, `say`, PowerShell with SAPI). The text goes
//! to it on stdin, never through a shell or the argument list, so nothing in it can become an
//! option or a command, and long texts never hit argument limits. [`run`] ([`process`]) owns the
//! process: it feeds stdin, collects stdout and stderr, and kills the child when the time is up.
//! Each program has its module: [`espeak`], `say` and `sapi`.
//!
//! Only espeak-ng is exercised here (Linux CI). `say` (macOS) and SAPI (Windows) are compiled
//! on their platforms and in unit tests, which check the command lines they build; they have
//! never run against the real programs.

mod espeak;
mod process;
#[cfg(any(target_os = "windows", test))]
mod sapi;
#[cfg(any(target_os = "macos", test))]
mod say;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A boxed future, so [`TtsEngine`] stays usable as `Arc<dyn TtsEngine>`.
pub use futures_util::future::BoxFuture;

pub use self::espeak::EspeakNg;
pub use self::process::run;
#[cfg(any(target_os = "windows", test))]
pub use self::sapi::Sapi;
#[cfg(any(target_os = "macos", test))]
pub use self::say::Say;
use super::TtsError;
use crate::config::TtsEngineChoice;

/// How long listing voices may take.
const LIST_TIMEOUT: Duration = Duration::from_secs(10);

/// What to render: validated text and parameters, with the voice already resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderJob {
    /// 1-500 characters.
    pub text: String,
    /// The renderer's own voice id, from [`TtsEngine::resolve_voice`]; empty for its default.
    pub voice: String,
    /// The requested language tag (SAPI picks a voice by it at render time).
    pub lang: Option<String>,
    /// Speed factor, 0.5-2.0 (1.0 normal).
    pub rate: f64,
    /// Pitch factor, 0.0-2.0 (1.0 normal).
    pub pitch: f64,
}

/// A program that turns text into a WAV file.
pub trait TtsEngine: Send + Sync + 'static {
    /// Shown in status and mixed into cache keys (`espeak-ng`, `say`, `sapi`).
    fn name(&self) -> &'static str;

    /// The voice id to render with for a request's `lang` and `voice` ("" for the default), or
    /// [`TtsError::VoiceUnavailable`] when this renderer has nothing for them.
    fn resolve_voice<'a>(
        &'a self,
        lang: Option<&'a str>,
        voice: Option<&'a str>,
    ) -> BoxFuture<'a, Result<String, TtsError>>;

    /// Writes `job` as a WAV file to `out`, killing the program if it takes over `timeout`.
    fn render<'a>(
        &'a self,
        job: &'a RenderJob,
        out: &'a Path,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), TtsError>>;
}

/// Finds the renderer to use: the configured one, or with `auto` the platform's, on `path`
/// (the value of `PATH`). `None` when there is none: overlay pages then speak with the
/// browser's SpeechSynthesis.
pub fn detect(choice: TtsEngineChoice, path: Option<OsString>) -> Option<Arc<dyn TtsEngine>> {
    let find = |name: &str| find_program(name, path.as_deref());
    let espeak = || find("espeak-ng").map(|p| Arc::new(EspeakNg::new(p)) as Arc<dyn TtsEngine>);
    match choice {
        TtsEngineChoice::None => None,
        TtsEngineChoice::EspeakNg => espeak(),
        TtsEngineChoice::Say => platform_say(&find),
        TtsEngineChoice::Sapi => platform_sapi(&find),
        TtsEngineChoice::Auto => {
            if cfg!(target_os = "windows") {
                platform_sapi(&find).or_else(espeak)
            } else if cfg!(target_os = "macos") {
                platform_say(&find).or_else(espeak)
            } else {
                espeak()
            }
        }
    }
}

#[cfg(target_os = "macos")]
fn platform_say(find: &dyn Fn(&str) -> Option<PathBuf>) -> Option<Arc<dyn TtsEngine>> {
    find("say").map(|p| Arc::new(Say::new(p)) as Arc<dyn TtsEngine>)
}

#[cfg(not(target_os = "macos"))]
fn platform_say(_: &dyn Fn(&str) -> Option<PathBuf>) -> Option<Arc<dyn TtsEngine>> {
    tracing::warn!("tts.engine = \"say\" only works on macOS");
    None
}

#[cfg(target_os = "windows")]
fn platform_sapi(find: &dyn Fn(&str) -> Option<PathBuf>) -> Option<Arc<dyn TtsEngine>> {
    find("powershell").map(|p| Arc::new(Sapi::new(p)) as Arc<dyn TtsEngine>)
}

#[cfg(not(target_os = "windows"))]
fn platform_sapi(_: &dyn Fn(&str) -> Option<PathBuf>) -> Option<Arc<dyn TtsEngine>> {
    tracing::warn!("tts.engine = \"sapi\" only works on Windows");
    None
}

/// The first executable file called `name` in the directories of `path`.
pub fn find_program(name: &str, path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    let names: Vec<String> = if cfg!(windows) {
        vec![format!("{name}.exe"), name.to_owned()]
    } else {
        vec![name.to_owned()]
    };
    std::env::split_paths(path?)
        .filter(|dir| dir.is_absolute())
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|candidate| is_executable(candidate))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

/// A job whose text would be dangerous as an argument, for the renderers' tests.
#[cfg(test)]
fn test_job(rate: f64, pitch: f64) -> RenderJob {
    RenderJob {
        text: "-v evil; rm -rf /".into(),
        voice: "en-us".into(),
        lang: Some("en-US".into()),
        rate,
        pitch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_on_path_only_when_executable() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = std::env::join_paths([dir.path()]).expect("path");
        assert_eq!(find_program("espeak-ng", Some(&path)), None);
        let program = dir.path().join(if cfg!(windows) {
            "espeak-ng.exe"
        } else {
            "espeak-ng"
        });
        std::fs::write(&program, "").expect("write");
        #[cfg(unix)]
        {
            assert_eq!(
                find_program("espeak-ng", Some(&path)),
                None,
                "not executable"
            );
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
        }
        assert_eq!(find_program("espeak-ng", Some(&path)), Some(program));
        assert_eq!(find_program("espeak-ng", None), None);
        assert!(detect(TtsEngineChoice::None, Some(path)).is_none());
    }
}
