//! Logging: `tracing` to stderr (human or JSON) and to daily JSON files in `<data dir>/logs`.
//!
//! Binaries call [`init`] once and keep the returned guard alive until exit so the file writer
//! flushes. Nothing here knows about secrets: they are redacted by their type ([`crate::Secret`])
//! and request logs carry paths without query strings.

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{Builder, Rotation};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{Config, LogFormat};

/// Keeps the file writer alive; drop it last.
#[derive(Debug)]
pub struct LogGuard {
    _file: Option<WorkerGuard>,
}

/// Errors setting up logging.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The filter directive is not valid.
    #[error("invalid log filter `{0}`")]
    Filter(String),
    /// A global subscriber was already installed.
    #[error("logging was already initialised")]
    AlreadySet,
}

/// Installs the global subscriber. `STAGEHAND_LOG` (in `env_filter`) beats `logging.level`.
pub fn init(
    config: &Config,
    env_filter: Option<&str>,
    to_file: bool,
) -> Result<LogGuard, LogError> {
    let directive = env_filter.unwrap_or(&config.logging.level);
    // tungstenite logs whole handshakes at trace level, the relay's bearer secret included:
    // keep it at info whatever the filter says.
    let filter = EnvFilter::try_new(directive)
        .map_err(|_| LogError::Filter(directive.to_owned()))?
        .add_directive(
            "tungstenite=info"
                .parse()
                .map_err(|_| LogError::Filter(directive.to_owned()))?,
        )
        .add_directive(
            "tokio_tungstenite=info"
                .parse()
                .map_err(|_| LogError::Filter(directive.to_owned()))?,
        );

    let (file_layer, file_guard) = if to_file {
        let made_dir = std::fs::create_dir_all(config.log_dir());
        match made_dir.and_then(|()| {
            Builder::new()
                .rotation(Rotation::DAILY)
                .filename_prefix("stagehand")
                .filename_suffix("log")
                .max_log_files(config.logging.max_files.max(1))
                .build(config.log_dir())
                .map_err(std::io::Error::other)
        }) {
            Ok(appender) => {
                let (writer, guard) = tracing_appender::non_blocking(appender);
                let layer = tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(writer)
                    .with_ansi(false);
                (Some(layer), Some(guard))
            }
            Err(e) => {
                eprintln!(
                    "stagehand: cannot write logs to {}: {e}; logging to stderr only",
                    config.log_dir().display()
                );
                (None, None)
            }
        }
    } else {
        (None, None)
    };

    let (human, json) = match config.logging.format {
        LogFormat::Human => (
            Some(tracing_subscriber::fmt::layer().with_writer(std::io::stderr)),
            None,
        ),
        LogFormat::Json => (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            ),
        ),
    };

    tracing_subscriber::registry()
        .with(filter)
        .with(human)
        .with(json)
        .with(file_layer)
        .try_init()
        .map_err(|_| LogError::AlreadySet)?;
    Ok(LogGuard { _file: file_guard })
}
