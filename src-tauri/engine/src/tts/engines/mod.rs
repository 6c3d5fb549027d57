//! Speech renderers: the [`TtsEngine`] trait, the platform programs behind it, and finding
//! which one this machine has.
//!
//! Every renderer is an outside program (espeak-ng, `say`, PowerShell with SAPI). The text goes
//! to it on stdin, never through a shell or the argument list, so nothing in it can become an
//! option or a command, and long texts never hit argument limits. [`run`] owns the process:
//! it feeds stdin, collects stdout and stderr, and kills the child when the time is up.
//!
//! Only espeak-ng is exercised here (Linux CI). `say` (macOS) and SAPI (Windows) are compiled
//! on their platforms and in unit tests, which check the command lines they build; they have
//! never run against the real programs.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::TtsError;
use crate::config::TtsEngineChoice;

/// A boxed future, so [`TtsEngine`] stays usable as `Arc<dyn TtsEngine>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How long listing voices may take.
const LIST_TIMEOUT: Duration = Duration::from_secs(10);

/// Most stderr kept for an error message.
const STDERR_KEPT: usize = 2048;

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

/// Runs `command` with `stdin` as its input; returns its stdout. A non-zero exit is
/// [`TtsError::Render`] with the start of stderr; taking over `timeout` kills the child and is
/// [`TtsError::Timeout`].
pub async fn run(
    engine: &'static str,
    mut command: Command,
    stdin: &str,
    timeout: Duration,
) -> Result<Vec<u8>, TtsError> {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|e| TtsError::Render {
        engine,
        reason: format!("cannot start it: {e}"),
    })?;
    let input = child.stdin.take();
    let output = child.stdout.take();
    let errors = child.stderr.take();
    let work = async {
        // All three at once: a child that fills its stderr pipe while we are still writing its
        // stdin would otherwise wait on us forever.
        let write = async {
            if let Some(mut input) = input {
                // A child that exits without reading everything closes the pipe; its exit
                // status says whether that was a failure.
                let _ = input.write_all(stdin.as_bytes()).await;
                let _ = input.shutdown().await;
            }
        };
        let (_, out, err, status) = tokio::join!(
            write,
            read_all(output, usize::MAX),
            read_all(errors, STDERR_KEPT),
            child.wait()
        );
        (out, err, status)
    };
    let (out, err, status) = match tokio::time::timeout(timeout, work).await {
        Ok(done) => done,
        Err(_) => {
            // kill() also reaps the child, so no zombie is left behind.
            if let Err(e) = child.kill().await {
                tracing::warn!(engine, error = %e, "could not kill a speech renderer that timed out");
            }
            return Err(TtsError::Timeout {
                engine,
                ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            });
        }
    };
    let status = status.map_err(|e| TtsError::Render {
        engine,
        reason: format!("lost track of it: {e}"),
    })?;
    if !status.success() {
        let stderr = String::from_utf8_lossy(&err);
        return Err(TtsError::Render {
            engine,
            reason: format!("{status}: {}", stderr.trim()),
        });
    }
    Ok(out)
}

/// Reads a pipe to its end, keeping at most `keep` bytes (the rest is drained, not stored).
async fn read_all(pipe: Option<impl tokio::io::AsyncRead + Unpin>, keep: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut pipe) = pipe else { return kept };
    let mut buf = [0u8; 8192];
    while let Ok(n) = pipe.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let room = keep.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
    kept
}

// ---- espeak-ng (Linux) ----

/// espeak-ng: small, offline, on every Linux distribution (`apt-get install espeak-ng`).
pub struct EspeakNg {
    program: PathBuf,
    voices: tokio::sync::OnceCell<EspeakVoices>,
}

/// The voices an espeak-ng install has, from `--voices` and `--voices=variant`.
#[derive(Debug, Default, Clone)]
struct EspeakVoices {
    /// Lower-case language tag → (priority, the `-v` value that speaks it); lowest priority
    /// wins, as in espeak-ng's own list.
    languages: HashMap<String, (u32, String)>,
    /// Voice files (`gmw/en-US`), usable as `-v` values too.
    files: HashSet<String>,
    /// Variant names (`f3`, `klatt`), appended as `+variant`.
    variants: HashSet<String>,
}

impl EspeakVoices {
    /// Parses `espeak-ng --voices` output (and `--voices=variant` into `variants`).
    fn parse(voices: &str, variants: &str) -> Self {
        let mut list = Self::default();
        for line in voices.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let [priority, language, _, _, file, rest @ ..] = cols.as_slice() else {
                continue;
            };
            // MBROLA voices need a separate program and voice data that are rarely installed.
            if file.starts_with("mb/") {
                continue;
            }
            let priority: u32 = priority.parse().unwrap_or(9);
            let language = language.to_ascii_lowercase();
            list.add(&language, 0, &language);
            list.files.insert((*file).to_owned());
            // "Other Languages" are pairs like `(en 2)`: this voice also speaks `en`.
            let others = rest.join(" ");
            for other in others.split('(').filter_map(|s| s.split(')').next()) {
                let mut parts = other.split_whitespace();
                if let (Some(tag), Some(p)) = (parts.next(), parts.next()) {
                    let p = p.parse().unwrap_or(priority);
                    list.add(&tag.to_ascii_lowercase(), p, &language);
                }
            }
        }
        for line in variants.lines().skip(1) {
            if let Some(file) = line.split_whitespace().nth(4)
                && let Some(name) = file.strip_prefix("!v/")
            {
                list.variants.insert(name.to_owned());
            }
        }
        list
    }

    fn add(&mut self, tag: &str, priority: u32, voice: &str) {
        let entry = self
            .languages
            .entry(tag.to_owned())
            .or_insert((u32::MAX, String::new()));
        if priority < entry.0 {
            *entry = (priority, voice.to_owned());
        }
    }

    /// The voice for a language tag: the exact tag, else with subtags dropped from the end
    /// (`de-DE` → `de`).
    fn for_lang(&self, lang: &str) -> Option<String> {
        let mut tag = lang.to_ascii_lowercase();
        loop {
            if let Some((_, voice)) = self.languages.get(&tag) {
                return Some(voice.clone());
            }
            tag.truncate(tag.rfind('-')?);
        }
    }

    /// Whether `voice` (`en-us`, `gmw/en-US`, `en-us+f3`) names something installed.
    fn knows(&self, voice: &str) -> bool {
        let (base, variant) = match voice.split_once('+') {
            Some((b, v)) => (b, Some(v)),
            None => (voice, None),
        };
        let base_ok =
            self.languages.contains_key(&base.to_ascii_lowercase()) || self.files.contains(base);
        base_ok && variant.is_none_or(|v| self.variants.contains(v))
    }
}

impl EspeakNg {
    /// espeak-ng at `program`.
    pub fn new(program: PathBuf) -> Self {
        Self {
            program,
            voices: tokio::sync::OnceCell::new(),
        }
    }

    async fn voices(&self) -> Result<&EspeakVoices, TtsError> {
        self.voices
            .get_or_try_init(|| async {
                let list = |arg: &'static str| {
                    let mut command = Command::new(&self.program);
                    command.arg(arg);
                    run("espeak-ng", command, "", LIST_TIMEOUT)
                };
                let voices = list("--voices").await?;
                let variants = list("--voices=variant").await?;
                Ok(EspeakVoices::parse(
                    &String::from_utf8_lossy(&voices),
                    &String::from_utf8_lossy(&variants),
                ))
            })
            .await
    }

    /// The arguments for one render (the text goes to stdin).
    fn args(job: &RenderJob, out: &Path) -> Vec<OsString> {
        // espeak-ng speaks about 175 words a minute at 1.0 and accepts 80-450; pitch is 0-99
        // around 50. Volume is not rendered in: the page applies it, so one file serves every
        // volume.
        let wpm = (175.0 * job.rate).round().clamp(80.0, 450.0);
        let pitch = (50.0 * job.pitch).round().clamp(0.0, 99.0);
        let mut args: Vec<OsString> = vec![
            "--stdin".into(),
            "-b".into(),
            "1".into(),
            "-w".into(),
            out.as_os_str().to_owned(),
            "-s".into(),
            format!("{wpm}").into(),
            "-p".into(),
            format!("{pitch}").into(),
        ];
        if !job.voice.is_empty() {
            args.push("-v".into());
            args.push(job.voice.clone().into());
        }
        args
    }
}

impl TtsEngine for EspeakNg {
    fn name(&self) -> &'static str {
        "espeak-ng"
    }

    fn resolve_voice<'a>(
        &'a self,
        lang: Option<&'a str>,
        voice: Option<&'a str>,
    ) -> BoxFuture<'a, Result<String, TtsError>> {
        Box::pin(async move {
            if voice.is_none() && lang.is_none() {
                return Ok(String::new());
            }
            let voices = self.voices().await?;
            let unavailable = |wanted: String| TtsError::VoiceUnavailable {
                engine: "espeak-ng",
                wanted,
            };
            match (voice, lang) {
                (Some(voice), _) if voices.knows(voice) => Ok(voice.to_owned()),
                (Some(voice), _) => Err(unavailable(format!("voice `{voice}`"))),
                (None, Some(lang)) => voices
                    .for_lang(lang)
                    .ok_or_else(|| unavailable(format!("language `{lang}`"))),
                (None, None) => Ok(String::new()),
            }
        })
    }

    fn render<'a>(
        &'a self,
        job: &'a RenderJob,
        out: &'a Path,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), TtsError>> {
        Box::pin(async move {
            let mut command = Command::new(&self.program);
            command.args(Self::args(job, out));
            run("espeak-ng", command, &job.text, timeout)
                .await
                .map(drop)
        })
    }
}

// ---- say (macOS; untested: compiled on macOS and for the unit tests below only) ----

/// macOS `say`, writing 16-bit PCM WAV. UNTESTED against the real program.
#[cfg(any(target_os = "macos", test))]
pub struct Say {
    program: PathBuf,
}

#[cfg(any(target_os = "macos", test))]
impl Say {
    /// `say` at `program`.
    pub fn new(program: PathBuf) -> Self {
        Self { program }
    }

    fn args(job: &RenderJob, out: &Path) -> Vec<OsString> {
        // `say` has no pitch option; its rate is words per minute (about 175 by default).
        let wpm = (175.0 * job.rate).round().clamp(50.0, 500.0);
        let mut args: Vec<OsString> = vec![
            "-o".into(),
            out.as_os_str().to_owned(),
            "--file-format=WAVE".into(),
            "--data-format=LEI16@22050".into(),
            "-r".into(),
            format!("{wpm}").into(),
            "-f".into(),
            "-".into(),
        ];
        if !job.voice.is_empty() {
            args.push("-v".into());
            args.push(job.voice.clone().into());
        }
        args
    }
}

#[cfg(any(target_os = "macos", test))]
impl TtsEngine for Say {
    fn name(&self) -> &'static str {
        "say"
    }

    fn resolve_voice<'a>(
        &'a self,
        lang: Option<&'a str>,
        voice: Option<&'a str>,
    ) -> BoxFuture<'a, Result<String, TtsError>> {
        Box::pin(async move {
            if let Some(voice) = voice {
                return Ok(voice.to_owned());
            }
            let Some(lang) = lang else {
                return Ok(String::new());
            };
            // `say -v '?'` lines: `Alex   en_US   # Most people recognize me by my voice.`
            let mut command = Command::new(&self.program);
            command.args(["-v", "?"]);
            let list = run("say", command, "", LIST_TIMEOUT).await?;
            let list = String::from_utf8_lossy(&list);
            let wanted = lang.to_ascii_lowercase();
            let primary = wanted.split('-').next().unwrap_or_default().to_owned();
            let voices: Vec<(String, String)> = list
                .lines()
                .filter_map(|line| {
                    let (head, _) = line.split_once('#')?;
                    let mut parts = head.split_whitespace().collect::<Vec<_>>();
                    let locale = parts.pop()?.replace('_', "-").to_ascii_lowercase();
                    Some((parts.join(" "), locale))
                })
                .collect();
            voices
                .iter()
                .find(|(_, locale)| *locale == wanted)
                .or_else(|| {
                    voices
                        .iter()
                        .find(|(_, locale)| locale.split('-').next() == Some(primary.as_str()))
                })
                .map(|(name, _)| name.clone())
                .ok_or_else(|| TtsError::VoiceUnavailable {
                    engine: "say",
                    wanted: format!("language `{lang}`"),
                })
        })
    }

    fn render<'a>(
        &'a self,
        job: &'a RenderJob,
        out: &'a Path,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), TtsError>> {
        Box::pin(async move {
            let mut command = Command::new(&self.program);
            command.args(Self::args(job, out));
            run("say", command, &job.text, timeout).await.map(drop)
        })
    }
}

// ---- SAPI via PowerShell (Windows; untested: compiled on Windows and for unit tests only) ----

/// The PowerShell script that renders with System.Speech (SAPI 5). Parameters come in
/// environment variables and the text on stdin, so nothing from a request is ever parsed as
/// PowerShell.
#[cfg(any(target_os = "windows", test))]
const SAPI_SCRIPT: &str = "$ErrorActionPreference = 'Stop'
[Console]::InputEncoding = [System.Text.Encoding]::UTF8
Add-Type -AssemblyName System.Speech
$s = New-Object System.Speech.Synthesis.SpeechSynthesizer
if ($env:TTS_VOICE) { $s.SelectVoice($env:TTS_VOICE) }
elseif ($env:TTS_LANG) { $s.SelectVoiceByHints([System.Speech.Synthesis.VoiceGender]::NotSet, [System.Speech.Synthesis.VoiceAge]::NotSet, 0, [System.Globalization.CultureInfo]::new($env:TTS_LANG)) }
$s.Rate = [int]$env:TTS_RATE
$s.SetOutputToWaveFile($env:TTS_OUT)
$s.Speak([Console]::In.ReadToEnd())
$s.Dispose()";

/// SAPI through Windows PowerShell. UNTESTED against the real program.
#[cfg(any(target_os = "windows", test))]
pub struct Sapi {
    program: PathBuf,
}

#[cfg(any(target_os = "windows", test))]
impl Sapi {
    /// PowerShell at `program`.
    pub fn new(program: PathBuf) -> Self {
        Self { program }
    }

    /// Arguments and environment for one render. SAPI's rate is -10..10, roughly a doubling
    /// every 10 steps; it has no pitch setting outside SSML.
    fn command_parts(
        job: &RenderJob,
        out: &Path,
    ) -> (Vec<&'static str>, Vec<(&'static str, OsString)>) {
        let rate = (job.rate.log2() * 10.0).round().clamp(-10.0, 10.0);
        let args = vec![
            "-NoProfile",
            "-NonInteractive",
            "-ExecutionPolicy",
            "Bypass",
            "-Command",
            SAPI_SCRIPT,
        ];
        let env = vec![
            ("TTS_OUT", out.as_os_str().to_owned()),
            ("TTS_VOICE", job.voice.clone().into()),
            ("TTS_LANG", job.lang.clone().unwrap_or_default().into()),
            ("TTS_RATE", format!("{rate}").into()),
        ];
        (args, env)
    }
}

#[cfg(any(target_os = "windows", test))]
impl TtsEngine for Sapi {
    fn name(&self) -> &'static str {
        "sapi"
    }

    fn resolve_voice<'a>(
        &'a self,
        _lang: Option<&'a str>,
        voice: Option<&'a str>,
    ) -> BoxFuture<'a, Result<String, TtsError>> {
        // SAPI picks by language itself at render time; an unknown voice fails the render.
        Box::pin(async move { Ok(voice.unwrap_or_default().to_owned()) })
    }

    fn render<'a>(
        &'a self,
        job: &'a RenderJob,
        out: &'a Path,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), TtsError>> {
        Box::pin(async move {
            let (args, env) = Self::command_parts(job, out);
            let mut command = Command::new(&self.program);
            command.args(args).envs(env);
            run("sapi", command, &job.text, timeout).await.map(drop)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VOICES: &str = "Pty Language       Age/Gender VoiceName          File                 Other Languages
 5  af              --/M      Afrikaans          gmw/af
 5  cmn             --/M      Chinese_(Mandarin,_latin_as_English) sit/cmn              (zh-cmn 5)(zh 5)
 5  de              --/M      German             gmw/de
 2  en-gb           --/M      English_(Great_Britain) gmw/en               (en 2)
 2  en-us           --/M      English_(America)  gmw/en-US            (en 3)
 5  en-us           --/F      us-mbrola-1        mb/mb-us1            (en 8)
 5  en-uk           --/M      english-mb-en1     mb/mb-en1            (en-gb 3)(en 2)
";
    const VARIANTS: &str =
        "Pty Language       Age/Gender VoiceName          File                 Other Languages
 5  variant         --/M      Adam               !v/adam
 5  variant         --/F      female3            !v/f3
";

    fn job(rate: f64, pitch: f64) -> RenderJob {
        RenderJob {
            text: "-v evil; rm -rf /".into(),
            voice: "en-us".into(),
            lang: Some("en-US".into()),
            rate,
            pitch,
        }
    }

    #[test]
    fn languages_map_to_espeak_voices_with_fallback_to_the_primary_tag() {
        let v = EspeakVoices::parse(VOICES, VARIANTS);
        assert_eq!(v.for_lang("en-US").as_deref(), Some("en-us"));
        assert_eq!(
            v.for_lang("de-DE").as_deref(),
            Some("de"),
            "de-DE falls back to de"
        );
        assert_eq!(
            v.for_lang("en").as_deref(),
            Some("en-gb"),
            "en's best voice by priority"
        );
        assert_eq!(
            v.for_lang("zh-CN").as_deref(),
            Some("cmn"),
            "other languages count"
        );
        assert_eq!(v.for_lang("xx-YY"), None);
        assert!(v.knows("en-us+f3") && v.knows("gmw/en-US") && v.knows("DE"));
        assert!(!v.knows("en-us+nope"), "unknown variant");
        assert!(
            !v.knows("mb/mb-us1"),
            "MBROLA voices need MBROLA, rarely installed"
        );
    }

    #[test]
    fn espeak_gets_the_text_on_stdin_never_as_an_argument() {
        let args = EspeakNg::args(&job(2.0, 2.0), Path::new("/tmp/o.wav"));
        let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into()).collect();
        assert_eq!(
            args,
            [
                "--stdin",
                "-b",
                "1",
                "-w",
                "/tmp/o.wav",
                "-s",
                "350",
                "-p",
                "99",
                "-v",
                "en-us"
            ]
        );
        let slow = EspeakNg::args(&job(0.5, 0.0), Path::new("o.wav"));
        assert!(slow.contains(&"88".into()) && slow.contains(&"0".into()));
    }

    #[test]
    fn say_and_sapi_command_lines_carry_no_text() {
        let args = Say::args(&job(1.0, 1.0), Path::new("/tmp/o.wav"));
        assert!(args.contains(&"--file-format=WAVE".into()) && args.contains(&"-".into()));
        assert!(!args.iter().any(|a| a.to_string_lossy().contains("rm -rf")));
        let (args, env) = Sapi::command_parts(&job(2.0, 1.0), Path::new("C:\\o.wav"));
        assert!(!args.iter().any(|a| a.contains("rm -rf")));
        assert!(env.contains(&("TTS_RATE", "10".into())));
        assert_eq!(
            Sapi::command_parts(&job(1.0, 1.0), Path::new("o")).1[3].1,
            "0"
        );
    }

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

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_renderer_that_overruns_is_killed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pid_file = dir.path().join("pid");
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg("echo $$ > \"$1\"; exec sleep 30")
            .arg("sh")
            .arg(&pid_file);
        let started = std::time::Instant::now();
        let err = run("test", command, "", Duration::from_millis(300))
            .await
            .expect_err("sleep 30 cannot finish in 300 ms");
        assert!(matches!(err, TtsError::Timeout { ms: 300, .. }), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "gave up on time"
        );
        let pid = std::fs::read_to_string(&pid_file).expect("child wrote its pid");
        assert!(
            !Path::new(&format!("/proc/{}", pid.trim())).exists(),
            "the child was killed and reaped, not left running"
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_failing_renderer_reports_its_stderr_and_stdin_arrives_whole() {
        let mut command = Command::new("sh");
        command.arg("-c").arg("echo 'no voice' >&2; exit 3");
        let err = run("test", command, "hello", Duration::from_secs(5))
            .await
            .expect_err("exit 3 is a failure");
        assert!(err.to_string().contains("no voice"), "{err}");
        let echoed = run(
            "test",
            Command::new("cat"),
            "héllo -v x",
            Duration::from_secs(5),
        )
        .await
        .expect("cat succeeds");
        assert_eq!(echoed, "héllo -v x".as_bytes());
    }
}
