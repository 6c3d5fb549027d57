//! SAPI through Windows PowerShell: the script, and the arguments and environment of one
//! render. UNTESTED against the real program: compiled on Windows and for the unit tests only.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

use super::{BoxFuture, RenderJob, TtsEngine, run};
use crate::tts::TtsError;

/// The PowerShell script that renders with System.Speech (SAPI 5). Parameters come in
/// environment variables and the text on stdin, so nothing from a request is ever parsed as
/// PowerShell.
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
pub struct Sapi {
    program: PathBuf,
}

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
    use super::super::test_job as job;
    use super::*;

    #[test]
    fn sapi_command_lines_carry_no_text() {
        let (args, env) = Sapi::command_parts(&job(2.0, 1.0), Path::new("C:\\o.wav"));
        assert!(!args.iter().any(|a| a.contains("rm -rf")));
        assert!(env.contains(&("TTS_RATE", "10".into())));
        assert_eq!(
            Sapi::command_parts(&job(1.0, 1.0), Path::new("o")).1[3].1,
            "0"
        );
    }
}
