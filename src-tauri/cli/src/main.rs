//! `stagehand`: the headless engine and its tools.
//!
//! `stagehand serve` runs the same engine and server the desktop app runs, without a window;
//! the other subcommands read the same configuration and secret store. This is a binary edge,
//! so errors are `anyhow` here and typed everywhere below.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use stagehand_engine::config::{Config, ConfigSources};
use stagehand_engine::{auth, logging, secrets};

/// Stagehand: a desktop companion for live streamers.
#[derive(Debug, Parser)]
#[command(name = "stagehand", version, about, long_about = None)]
struct Cli {
    /// Data directory (database, logs, encrypted secrets). Default: the OS data directory.
    /// With this flag, `<DIR>/config.toml` is the config file (portable mode).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Config file to read instead of the default one.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the headless engine: HTTP on 127.0.0.1 until Ctrl-C or SIGTERM.
    Serve {
        /// Port on 127.0.0.1 (default 7420, or server.port / STAGEHAND_PORT).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Print the streamer token (creating it on first use).
    Token,
    /// Secret storage tools.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Show the configuration in effect: data dir, config file, unknown keys.
    Config,
}

#[derive(Debug, Subcommand)]
enum SecretsCommand {
    /// Report the active secret backend and whether it works (write, read back, delete).
    Doctor,
    /// Print a fresh key for STAGEHAND_SECRETS_KEY (base64 of 32 random bytes).
    Genkey,
}

fn load_config(cli: &Cli, port: Option<u16>) -> anyhow::Result<Config> {
    let mut sources = ConfigSources::from_process_env();
    sources.data_dir = cli.data_dir.clone();
    sources.config_file = cli.config.clone();
    sources.port = port;
    Config::load(&sources).context("loading configuration")
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("stagehand: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let log_env = std::env::var("STAGEHAND_LOG").ok();
    match &cli.command {
        Command::Serve { port } => {
            let config = load_config(&cli, *port)?;
            let _logs = logging::init(&config, log_env.as_deref(), true)?;
            runtime.block_on(serve(config))?;
        }
        Command::Token => {
            let config = load_config(&cli, None)?;
            let _logs = logging::init(&config, Some(log_env.as_deref().unwrap_or("warn")), false)?;
            let (_store, instance) = stagehand_engine::open_store_blocking(&config)?;
            let secrets = stagehand_engine::open_secrets_blocking(&config, &instance)?;
            let token = auth::ensure_streamer_token(secrets.as_ref())?;
            println!("{}", token.expose());
        }
        Command::Secrets {
            command: SecretsCommand::Genkey,
        } => {
            println!("{}", secrets::FileSecretStore::generate_key()?.expose());
        }
        Command::Secrets {
            command: SecretsCommand::Doctor,
        } => {
            let config = load_config(&cli, None)?;
            let _logs = logging::init(&config, Some(log_env.as_deref().unwrap_or("warn")), false)?;
            let (_store, instance) = stagehand_engine::open_store_blocking(&config)?;
            println!("backend: {}", config.secrets.backend.as_str());
            match stagehand_engine::open_secrets_blocking(&config, &instance) {
                Ok(store) => {
                    let report = secrets::doctor(store.as_ref());
                    println!("location: {}", report.location);
                    match report.problem {
                        None => {
                            println!("status: works (wrote, read back and deleted a probe secret)")
                        }
                        Some(problem) => {
                            println!("status: BROKEN: {problem}");
                            return Ok(std::process::ExitCode::FAILURE);
                        }
                    }
                }
                Err(e) => {
                    println!("status: NOT AVAILABLE: {e}");
                    return Ok(std::process::ExitCode::FAILURE);
                }
            }
        }
        Command::Config => {
            let config = load_config(&cli, None)?;
            println!("data dir:     {}", config.data_dir.display());
            match &config.config_file {
                Some(f) => println!("config file:  {}", f.display()),
                None => println!("config file:  (none; defaults and environment only)"),
            }
            println!("port:         {}", config.server.port);
            println!("secrets:      {}", config.secrets.backend.as_str());
            for w in &config.warnings {
                println!("warning:      {w}");
            }
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let mut running = stagehand_app::start(config, stagehand_app::Options::default()).await?;
    let engine = running.engine().clone();
    let url = running.local_url().to_owned();
    let status = engine.status(&url);
    println!("Stagehand {} is running at {url}", status.version);
    if let Some(lan) = running.lan_url() {
        println!("LAN access is on: devices on your network reach it at {lan}");
    }
    println!("Data folder: {}", status.data_dir);
    println!(
        "Streamer token: kept in the {} ({}).",
        status.secret_backend, status.secret_location
    );
    println!(
        "  Print it with: stagehand token --data-dir {}",
        shell_quote(&status.data_dir)
    );
    println!("Press Ctrl-C to stop.");
    tracing::info!(url = %url, "serving");
    engine
        .audit()
        .record(stagehand_engine::audit::AuditEntry::new(
            "system",
            "engine.start",
            stagehand_engine::audit::Outcome::Ok,
        ))
        .await?;
    running.shutdown_on(shutdown_signal());
    running.stopped().await?;
    tracing::info!("stopped");
    println!("Stagehand stopped.");
    Ok(())
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C: shutting down"),
        () = term => tracing::info!("SIGTERM: shutting down"),
    }
}
