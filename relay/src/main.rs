//! `stagehand-relay`: runs the relay (`serve`) and manages tunnels (`tunnel create`,
//! `tunnel allow`). Glue only: every operation is a library call.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use stagehand_relay::config::{
    DEFAULT_DOOR_MAX_BODY_BYTES, DEFAULT_DOOR_MAX_STREAMS, DEFAULT_DOOR_RATE_BURST,
    DEFAULT_DOOR_RATE_PER_SEC, DEFAULT_DOOR_WS_MESSAGES_PER_SEC, DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_BUFFERED, DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_RATE_BURST, DEFAULT_RATE_PER_SEC,
};
use stagehand_relay::{DoorLimits, Limits, Relay, RelayConfig, TRADINGVIEW_ADDRESSES, TunnelId};
use tracing_subscriber::EnvFilter;

/// Stagehand's cloud relay: a public webhook door that keeps what it receives until the
/// streamer's desktop engine has it.
#[derive(Debug, Parser)]
#[command(name = "stagehand-relay", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve webhooks and engine links.
    Serve(ServeArgs),
    /// Manage tunnels.
    #[command(subcommand)]
    Tunnel(TunnelCommand),
}

#[derive(Debug, Args)]
struct DataDir {
    /// Where the relay keeps its SQLite file.
    #[arg(
        long,
        env = "STAGEHAND_RELAY_DATA_DIR",
        default_value = "stagehand-relay-data"
    )]
    data_dir: PathBuf,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    data: DataDir,
    /// Address to listen on. 0.0.0.0 (all interfaces) suits a public relay; use 127.0.0.1
    /// when a TLS proxy on the same VM is the only way in.
    #[arg(long, env = "STAGEHAND_RELAY_BIND", default_value = "0.0.0.0")]
    bind: IpAddr,
    /// Port to listen on.
    #[arg(long, env = "STAGEHAND_RELAY_PORT", default_value_t = 8787)]
    port: u16,
    /// Largest webhook body in bytes (413 above).
    #[arg(long, env = "STAGEHAND_RELAY_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Sustained webhooks per second per tunnel (429 above).
    #[arg(long, env = "STAGEHAND_RELAY_RATE_PER_SEC", default_value_t = DEFAULT_RATE_PER_SEC)]
    rate_per_sec: u32,
    /// Webhooks per tunnel accepted at once before the sustained rate applies.
    #[arg(long, env = "STAGEHAND_RELAY_RATE_BURST", default_value_t = DEFAULT_RATE_BURST)]
    rate_burst: u32,
    /// Unacknowledged deliveries kept per tunnel; the oldest are evicted (and reported) beyond.
    #[arg(long, env = "STAGEHAND_RELAY_MAX_BUFFERED", default_value_t = DEFAULT_MAX_BUFFERED)]
    max_buffered: u64,
    /// Bytes of unacknowledged bodies kept per tunnel; the oldest are evicted beyond.
    #[arg(
        long,
        env = "STAGEHAND_RELAY_MAX_BUFFERED_BYTES",
        default_value_t = DEFAULT_MAX_BUFFERED_BYTES
    )]
    max_buffered_bytes: u64,
    /// How long an unacknowledged delivery is kept (e.g. 24h, 90m).
    #[arg(long, env = "STAGEHAND_RELAY_MAX_BUFFERED_AGE", default_value = "24h", value_parser = humantime::parse_duration)]
    max_buffered_age: std::time::Duration,
    /// Sustained moderator panel requests per second per tunnel (429 above).
    #[arg(long, env = "STAGEHAND_RELAY_MODERATOR_RATE_PER_SEC", default_value_t = DEFAULT_DOOR_RATE_PER_SEC)]
    moderator_rate_per_sec: u32,
    /// Moderator panel requests per tunnel accepted at once before the sustained rate applies.
    #[arg(long, env = "STAGEHAND_RELAY_MODERATOR_RATE_BURST", default_value_t = DEFAULT_DOOR_RATE_BURST)]
    moderator_rate_burst: u32,
    /// Sustained WebSocket messages per second from one moderator (faster ones wait).
    #[arg(long, env = "STAGEHAND_RELAY_MODERATOR_MESSAGES_PER_SEC", default_value_t = DEFAULT_DOOR_WS_MESSAGES_PER_SEC)]
    moderator_messages_per_sec: u32,
    /// Largest moderator request body, and largest message from a moderator's socket (413
    /// above).
    #[arg(long, env = "STAGEHAND_RELAY_MODERATOR_MAX_BODY_BYTES", default_value_t = DEFAULT_DOOR_MAX_BODY_BYTES)]
    moderator_max_body_bytes: usize,
    /// How long the streamer's app may take to start answering a moderator request (504
    /// after), e.g. 30s.
    #[arg(long, env = "STAGEHAND_RELAY_MODERATOR_RESPONSE_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    moderator_response_timeout: std::time::Duration,
    /// Moderator requests and sockets open at once per tunnel (503 above; the app itself takes
    /// at most 1024).
    #[arg(long, env = "STAGEHAND_RELAY_MODERATOR_MAX_STREAMS", default_value_t = DEFAULT_DOOR_MAX_STREAMS)]
    moderator_max_streams: usize,
    /// The relay's public address as browsers see it (e.g. https://relay.example.com). A
    /// moderator's browser must send it as its Origin; without it, the Origin must match the
    /// Host header, which a proxy in front must then pass on unchanged.
    #[arg(long, env = "STAGEHAND_RELAY_PUBLIC_URL")]
    public_url: Option<String>,
    /// Proxy whose X-Forwarded-For is believed (e.g. 127.0.0.1 behind Caddy on the same VM).
    /// Repeat or comma-separate.
    #[arg(
        long = "trusted-proxy",
        env = "STAGEHAND_RELAY_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<IpAddr>,
    /// Bearer token that unlocks GET /metrics from anywhere; without one, /metrics answers
    /// only clients on this machine (behind --trusted-proxy, the real client counts).
    #[arg(long, env = "STAGEHAND_RELAY_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// Sync every commit to disk (survives power loss, not only a crash), at some throughput.
    #[arg(long, env = "STAGEHAND_RELAY_SYNC_FULL")]
    sync_full: bool,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "STAGEHAND_RELAY_LOG_JSON")]
    log_json: bool,
}

#[derive(Debug, Subcommand)]
enum TunnelCommand {
    /// Create a tunnel; prints {"tunnelId": "...", "secret": "..."}. The secret is shown once.
    Create {
        #[command(flatten)]
        data: DataDir,
    },
    /// Restrict one webhook path of a tunnel to the given source addresses (replaces the
    /// path's previous list).
    Allow {
        #[command(flatten)]
        data: DataDir,
        /// Add TradingView's published webhook addresses.
        #[arg(long)]
        tradingview: bool,
        /// The tunnel (ids made before 0.1 may start with '-'; they are accepted here).
        #[arg(allow_hyphen_values = true)]
        tunnel_id: String,
        /// The engine path, e.g. webhooks/tradingview.
        path: String,
        /// Allowed source addresses.
        ips: Vec<IpAddr>,
    },
}

/// `https://relay.example.com/` → `https://relay.example.com`: the origin browsers send.
fn public_origin(url: &str) -> anyhow::Result<String> {
    let url = url.trim().trim_end_matches('/');
    match url.split_once("://") {
        Some((scheme @ ("http" | "https"), host)) if !host.is_empty() && !host.contains('/') => {
            Ok(format!("{scheme}://{}", host.to_ascii_lowercase()))
        }
        _ => anyhow::bail!(
            "--public-url must be http(s)://host[:port] with no path, e.g. https://relay.example.com"
        ),
    }
}

/// The largest `--moderator-max-body-bytes`.
const MODERATOR_MAX_BODY_CEILING: usize = 2 * 1024 * 1024;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Tunnel(cmd) => runtime.block_on(tunnel(cmd)),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if args.log_json {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let mut config = RelayConfig::new(&args.data.data_dir);
    config.limits = Limits {
        max_body_bytes: args.max_body_bytes,
        rate_per_sec: args.rate_per_sec,
        rate_burst: args.rate_burst,
        max_buffered: args.max_buffered,
        max_buffered_bytes: args.max_buffered_bytes,
        max_buffered_age: args.max_buffered_age,
        ..Limits::default()
    };
    if args.moderator_max_streams == 0
        || args.moderator_max_body_bytes == 0
        || args.moderator_response_timeout.is_zero()
    {
        anyhow::bail!(
            "--moderator-max-streams, --moderator-max-body-bytes and \
             --moderator-response-timeout must be above zero"
        );
    }
    if args.moderator_max_body_bytes > MODERATOR_MAX_BODY_CEILING {
        // A moderator's socket message crosses the engine link as one frame, JSON-escaped
        // (up to six times longer): past this it could exceed the link's 16 MiB frame limit.
        anyhow::bail!(
            "--moderator-max-body-bytes may be at most {MODERATOR_MAX_BODY_CEILING} (2 MiB)"
        );
    }
    config.door = DoorLimits {
        rate_per_sec: args.moderator_rate_per_sec,
        rate_burst: args.moderator_rate_burst,
        ws_messages_per_sec: args.moderator_messages_per_sec,
        ws_burst: args.moderator_messages_per_sec.saturating_mul(2),
        max_body_bytes: args.moderator_max_body_bytes,
        response_timeout: args.moderator_response_timeout,
        max_streams: args.moderator_max_streams,
        public_origin: args.public_url.as_deref().map(public_origin).transpose()?,
        ..DoorLimits::default()
    };
    config.trusted_proxies = args.trusted_proxies;
    config.sync_full = args.sync_full;
    config.metrics_token = args.metrics_token.filter(|t| !t.is_empty());
    let data_dir = config.data_dir.clone();
    let relay = tokio::task::spawn_blocking(move || Relay::open(config))
        .await
        .context("opening the relay panicked")?
        .with_context(|| format!("cannot open the relay in {}", data_dir.display()))?;
    let addr = SocketAddr::new(args.bind, args.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(
        %addr,
        data_dir = %data_dir.display(),
        limits = ?relay.config().limits,
        tunnels = relay.tunnel_ids().len(),
        "relay listening"
    );
    // Every 202 was answered after its commit, so nothing owed is lost when the process exits
    // here; a last queued acknowledgement may be, which only means a resend.
    stagehand_relay::serve(relay, listener, shutdown_signal()).await?;
    tracing::info!("relay stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down");
}

async fn tunnel(cmd: TunnelCommand) -> anyhow::Result<()> {
    match cmd {
        TunnelCommand::Create { data } => {
            let relay = open(data.data_dir).await?;
            let tunnel = relay.create_tunnel().await?;
            println!("{}", serde_json::to_string(&tunnel)?);
        }
        TunnelCommand::Allow {
            data,
            tradingview,
            tunnel_id,
            path,
            mut ips,
        } => {
            if tradingview {
                ips.extend(TRADINGVIEW_ADDRESSES);
            }
            anyhow::ensure!(
                !ips.is_empty(),
                "name at least one address, or pass --tradingview"
            );
            let id = TunnelId::parse(&tunnel_id).context("that is not a tunnel id")?;
            let relay = open(data.data_dir).await?;
            relay
                .set_allowlist(&id, &path, ips.clone())
                .await
                .with_context(|| format!("cannot set the allow list of {tunnel_id}"))?;
            let ips: Vec<String> = ips.iter().map(ToString::to_string).collect();
            println!(
                "{}",
                serde_json::json!({ "tunnelId": id, "path": path, "allowed": ips })
            );
        }
    }
    Ok(())
}

async fn open(data_dir: PathBuf) -> anyhow::Result<Relay> {
    let shown = data_dir.display().to_string();
    tokio::task::spawn_blocking(move || Relay::open(RelayConfig::new(data_dir)))
        .await
        .context("opening the relay panicked")?
        .with_context(|| format!("cannot open the relay in {shown}"))
}
