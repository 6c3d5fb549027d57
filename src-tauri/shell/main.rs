//! The desktop shell: a window onto the engine, and nothing more.
//!
//! Everything Stagehand does lives in the engine and is served by its local HTTP server; the
//! browser, OBS and the command line reach it there, and so does this window. The shell exists
//! so that streamers have an app to double-click: it builds the one tokio runtime that Tauri and
//! the engine share, opens the engine, binds the server, and points a window at it, signed in
//! with a one-time login code so the streamer token never appears in a URL. It is glue: it owns
//! no state and makes no decisions, and anything that starts growing here belongs in the engine.

mod window;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use stagehand_engine::clock::SystemClock;
use stagehand_engine::config::{Config, ConfigSources};
use stagehand_engine::{Engine, logging};
use stagehand_server::Server;
use tauri::{AppHandle, RunEvent};
use tokio::sync::oneshot;

/// How long the server gets to finish in-flight requests once the app is exiting.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A running engine with its server bound but not yet serving.
struct Started {
    engine: Engine,
    server: Server,
    url: String,
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("stagehand")
        .build()
        .context("starting the async runtime")?;
    // One runtime for everything: without this Tauri would start a second one of its own.
    tauri::async_runtime::set(runtime.handle().clone());

    let (log_guard, started) = match Config::load(&ConfigSources::from_process_env()) {
        Ok(config) => {
            let filter = std::env::var("STAGEHAND_LOG").ok();
            let log_guard = logging::init(&config, filter.as_deref(), true)
                .inspect_err(|e| eprintln!("stagehand: logging is off: {e}"))
                .ok();
            (log_guard, runtime.block_on(start(config)))
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
    let startup_failed = started.is_err();

    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let (stopped_tx, stopped_rx) = oneshot::channel::<()>();
    let app = tauri::Builder::default()
        .setup(move |app| {
            // Tauri panics on a setup error, so everything that can fail is handled inside.
            open_windows(app.handle(), started, shutdown_rx, stopped_tx);
            stop_on_ctrl_c(app.handle().clone());
            Ok(())
        })
        .build(tauri::generate_context!())
        .context("starting the desktop shell")?;

    let mut shutdown_tx = Some(shutdown_tx);
    let exit_code = app.run_return(move |_, event| {
        if let RunEvent::Exit = event
            && let Some(tx) = shutdown_tx.take()
        {
            let _ = tx.send(());
        }
    });

    // The windows are gone: let the server finish what it is doing before the process ends.
    let stopped =
        runtime.block_on(async { tokio::time::timeout(SHUTDOWN_GRACE, stopped_rx).await });
    if stopped.is_err() {
        tracing::warn!("the local server did not stop within {SHUTDOWN_GRACE:?}");
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
    drop(log_guard);
    match (exit_code, startup_failed) {
        (0, false) => Ok(()),
        (0, true) => std::process::exit(1),
        (code, _) => std::process::exit(code),
    }
}

/// Opens the engine and binds its server; nothing is served until the window exists.
async fn start(config: Config) -> anyhow::Result<Started> {
    let engine = Engine::open(config, Arc::new(SystemClock))
        .await
        .context("opening the engine")?;
    let server = Server::bind_configured(engine.clone())
        .await
        .context("starting the local server")?;
    engine.obs_start();
    engine.relay_start();
    let url = server.local_url();
    Ok(Started {
        engine,
        server,
        url,
    })
}

/// Opens the main window and starts serving, or explains in a window why that is impossible.
fn open_windows(
    app: &AppHandle,
    started: anyhow::Result<Started>,
    shutdown: oneshot::Receiver<()>,
    stopped: oneshot::Sender<()>,
) {
    let opened = started.and_then(|started| {
        window::open_main(app, &started.engine, &started.url)?;
        tracing::info!(url = %started.url, "Stagehand is running");
        tauri::async_runtime::spawn(serve(app.clone(), started.server, shutdown, stopped));
        Ok(())
    });
    if let Err(error) = opened {
        show_failure(app, "Stagehand could not start", &error);
    }
}

/// Serves until the app exits; if the server stops early, the window says so.
async fn serve(
    app: AppHandle,
    server: Server,
    shutdown: oneshot::Receiver<()>,
    stopped: oneshot::Sender<()>,
) {
    let until_exit = async {
        let _ = shutdown.await;
    };
    match server.serve(until_exit).await {
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

/// Ctrl-C in the terminal quits through Tauri, so the server still shuts down cleanly.
fn stop_on_ctrl_c(app: AppHandle) {
    tauri::async_runtime::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            app.exit(0);
        }
    });
}
