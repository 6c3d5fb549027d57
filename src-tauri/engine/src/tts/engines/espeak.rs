//! espeak-ng, the renderer on Linux: its voice list, mapping language tags to its voices, and
//! the command line of one render.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

use super::{BoxFuture, LIST_TIMEOUT, RenderJob, TtsEngine, run};
use crate::tts::TtsError;

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

#[cfg(test)]
mod tests {
    use super::super::test_job as job;
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
}
