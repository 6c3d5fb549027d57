//! Running a renderer program: text on stdin, stdout and stderr collected at once, and the
//! child killed (and reaped) when it takes too long.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::TtsError;

/// Most stderr kept for an error message.
const STDERR_KEPT: usize = 2048;

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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

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
