//! macOS `say`: voices by locale and the command line of one render. UNTESTED against the
//! real program: compiled on macOS and for the unit tests only.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

use super::{BoxFuture, LIST_TIMEOUT, RenderJob, TtsEngine, run};
use crate::tts::TtsError;

/// macOS `say`, writing 16-bit PCM WAV. UNTESTED against the real program.
pub struct Say {
    program: PathBuf,
}

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

#[cfg(test)]
mod tests {
    use super::super::test_job as job;
    use super::*;

    #[test]
    fn say_command_lines_carry_no_text() {
        let args = Say::args(&job(1.0, 1.0), Path::new("/tmp/o.wav"));
        assert!(args.contains(&"--file-format=WAVE".into()) && args.contains(&"-".into()));
        assert!(!args.iter().any(|a| a.to_string_lossy().contains("rm -rf")));
    }
}
