//! The desktop shell: a window onto the engine, and nothing more.
//!
//! Everything Stagehand does lives in the engine and is served by its local HTTP server; the
//! browser, OBS and the command line reach it there, and so does this window. The shell exists
//! so that streamers have an app to double-click: it builds the one tokio runtime that Tauri and
//! the engine share, starts Stagehand the one way the CLI and the tests do (`stagehand_app`),
//! and points a window at it, signed in
//! with a one-time login code so the streamer token never appears in a URL (`window`). A tray
//! icon keeps Stagehand at hand while the window is closed (`tray`), a second launch hands over
//! to the first, pages elsewhere open in the system browser, and the engine's notices become OS
//! notifications (`notify`). It is glue: it owns no state and makes no decisions (what the tray
//! says and what deserves a notification are the engine's), and anything that starts growing
//! here belongs in the engine.

mod notify;
mod tray;
mod window;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};
use stagehand_app::Running;
use stagehand_engine::config::{Config, ConfigSources};
use stagehand_engine::logging;
use tauri::{AppHandle, Manager as _, RunEvent, WindowEvent};
use tokio::sync::oneshot;

/// How long the server gets to finish in-flight requests once the app is exiting.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("stagehand")
        .build()
        .context("starting the async runtime")?;
    // One runtime for everything: without this Tauri would start a second one of its own.
    tauri::async_runtime::set(runtime.handle().clone());

    let (log_guard, config) = match Config::load(&ConfigSources::from_process_env()) {
        Ok(config) => {
            let filter = std::env::var("STAGEHAND_LOG").ok();
            let log_guard = logging::init(&config, filter.as_deref(), true)
                .inspect_err(|e| eprintln!("stagehand: logging is off: {e}"))
                .ok();
            (log_guard, Ok(config))
        }
        Err(e) => {
            // Without a configuration there is no logging yet, so stderr is the only log.
            eprintln!("stagehand: cannot read the configuration: {e}");
            (
                None,
                Err(anyhow::Error::new(e).context("reading the configuration")),
            )
        }
    };
    let signals = runtime.block_on(async { QuitSignals::register() })?;
    let instance = single_instance(config.as_ref().ok());
    let startup_failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let failed = Arc::clone(&startup_failed);

    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let (stopped_tx, stopped_rx) = oneshot::channel::<()>();
    let app = tauri::Builder::default()
        // First, so a second launch hands over to the first before it opens anything.
        .plugin(instance)
        .plugin(tauri_plugin_opener::init())
        .plugin(tauri_plugin_notification::init())
        .setup(move |app| {
            // Tauri panics on a setup error, so everything that can fail is handled inside.
            signals.quit_on_first(app.handle().clone());
            let started = config.and_then(|config| tauri::async_runtime::block_on(start(config)));
            failed.store(started.is_err(), std::sync::atomic::Ordering::SeqCst);
            open_windows(app.handle(), started, shutdown_rx, stopped_tx);
            Ok(())
        })
        .on_window_event(|window, event| {
            // The main window hides in the tray; Quit is in the tray's menu. Without a tray
            // (none on this desktop) closing it quits, or there would be no way back.
            if let WindowEvent::CloseRequested { api, .. } = event
                && window.label() == window::MAIN
                && window.app_handle().tray_by_id(tray::ID).is_some()
            {
                api.prevent_close();
                if let Err(e) = window.hide() {
                    tracing::warn!(error = %e, "cannot hide the main window");
                }
            }
        })
        .build(tauri::generate_context!())
        .context("starting the desktop shell")?;

    let mut shutdown_tx = Some(shutdown_tx);
    let exit_code = app.run_return(move |_app, event| match event {
        RunEvent::Exit => {
            if let Some(tx) = shutdown_tx.take() {
                let _ = tx.send(());
            }
        }
        // macOS: a click on the Dock icon brings back the window that was closed into the tray.
        #[cfg(target_os = "macos")]
        RunEvent::Reopen { .. } => window::show_main(_app),
        _ => {}
    });

    // The windows are gone: let the server finish what it is doing before the process ends.
    let stopped =
        runtime.block_on(async { tokio::time::timeout(SHUTDOWN_GRACE, stopped_rx).await });
    if stopped.is_err() {
        tracing::warn!("the local server did not stop within {SHUTDOWN_GRACE:?}");
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
    drop(log_guard);
    match (
        exit_code,
        startup_failed.load(std::sync::atomic::Ordering::SeqCst),
    ) {
        (0, false) => Ok(()),
        (0, true) => std::process::exit(1),
        (code, _) => std::process::exit(code),
    }
}

/// The single-instance plugin: a second launch brings the first one's window back and exits.
///
/// On Linux the instance is one per data directory (its D-Bus name carries a hash of the
/// path), so a portable copy with its own `--data-dir`, or a test, runs beside the streamer's
/// app instead of handing over to it. Windows and macOS have one instance per user.
fn single_instance(config: Option<&Config>) -> tauri::plugin::TauriPlugin<tauri::Wry> {
    let builder = tauri_plugin_single_instance::Builder::new().callback(|app, _args, _cwd| {
        tracing::info!("Stagehand was launched again; showing this one");
        window::show_main(app);
    });
    #[cfg(target_os = "linux")]
    let builder = match config {
        Some(config) => builder.dbus_id(dbus_id(&config.data_dir)),
        None => builder,
    };
    #[cfg(not(target_os = "linux"))]
    let _ = config;
    builder.build()
}

/// `dev.stagehand.desktop.d` and 16 hex digits of the data directory's SHA-256: a valid
/// D-Bus name element, the same for every launch on that directory.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn dbus_id(data_dir: &std::path::Path) -> String {
    let path = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let digest = Sha256::digest(path.as_os_str().as_encoded_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("dev.stagehand.desktop.d{hex}")
}

/// Starts Stagehand the one way the CLI and the tests start it too (`stagehand_app::start`).
async fn start(config: Config) -> anyhow::Result<Running> {
    Ok(stagehand_app::start(config, stagehand_app::Options::default()).await?)
}

/// Opens the main window and the tray and starts serving, or explains in a window why that
/// is impossible.
fn open_windows(
    app: &AppHandle,
    started: anyhow::Result<Running>,
    shutdown: oneshot::Receiver<()>,
    stopped: oneshot::Sender<()>,
) {
    // A `Running` dropped on the way (the window failed) stops its server.
    let opened = started.and_then(|running| {
        let (engine, url) = (running.engine(), running.local_url());
        window::open_main(app, engine, url)?;
        if let Err(e) = tray::install(app, engine, url) {
            // The window still works; closing it then quits (see `on_window_event`).
            tracing::warn!(error = format!("{e:#}"), "no tray icon");
        }
        notify::forward(app, engine);
        tracing::info!(url = %url, "Stagehand is running");
        tauri::async_runtime::spawn(serve(app.clone(), running, shutdown, stopped));
        Ok(())
    });
    if let Err(error) = opened {
        show_failure(app, "Stagehand could not start", &error);
    }
}

/// Serves until the app exits; if the server stops early, the window says so.
async fn serve(
    app: AppHandle,
    mut running: Running,
    shutdown: oneshot::Receiver<()>,
    stopped: oneshot::Sender<()>,
) {
    running.shutdown_on(async {
        let _ = shutdown.await;
    });
    match running.stopped().await {
        Ok(()) => tracing::info!("the local server stopped"),
        Err(e) => show_failure(
            &app,
            "Stagehand's local server stopped",
            &anyhow::Error::new(e),
        ),
    }
    let _ = stopped.send(());
}

/// Logs a failure and shows it in a window; quits if even that is impossible.
fn show_failure(app: &AppHandle, headline: &str, error: &anyhow::Error) {
    tracing::error!(error = format!("{error:#}"), "{headline}");
    if let Err(e) = window::open_failure(app, headline, error) {
        tracing::error!(error = format!("{e:#}"), "cannot show the failure window");
        app.exit(1);
    }
}

/// Ctrl-C in the terminal, and SIGTERM (a session ending, `kill`), quit through Tauri, so the
/// server still shuts down cleanly. Registered before anything starts, so a signal that
/// arrives while the engine is starting is not lost.
struct QuitSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl QuitSignals {
    /// Registers the handlers; call inside the runtime.
    fn register() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt()).context("listening for SIGINT")?,
                terminate: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Quits the app on the first signal.
    fn quit_on_first(self, app: AppHandle) {
        tauri::async_runtime::spawn(async move {
            #[cfg(unix)]
            {
                let Self {
                    mut interrupt,
                    mut terminate,
                } = self;
                tokio::select! {
                    _ = interrupt.recv() => tracing::info!("interrupted; quitting"),
                    _ = terminate.recv() => tracing::info!("terminated; quitting"),
                }
            }
            #[cfg(not(unix))]
            {
                let _ = self;
                if tokio::signal::ctrl_c().await.is_err() {
                    return;
                }
                tracing::info!("interrupted; quitting");
            }
            app.exit(0);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dbus_ids_are_valid_names_and_differ_per_data_dir() {
        let a = dbus_id(std::path::Path::new("/nonexistent/a"));
        let b = dbus_id(std::path::Path::new("/nonexistent/b"));
        assert_ne!(a, b, "two data dirs are two instances");
        assert_eq!(a, dbus_id(std::path::Path::new("/nonexistent/a")));
        let last = a.rsplit('.').next().unwrap_or_default();
        assert!(
            last.starts_with('d') && last.len() == 17,
            "a D-Bus name element may not start with a digit: {a}"
        );
    }
}
