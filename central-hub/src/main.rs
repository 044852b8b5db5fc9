//! `central-hub`: serve the hub, run an embedded broker, or run the demo.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use central_hub::config::HubConfig;
use central_hub::demo::{self, DemoOptions};
use central_hub::hub::{self, HubSettings};
use central_hub::ingest::IngestSettings;
use central_hub::ledger::liveness::LivenessPolicy;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

mod models_cmd;
mod rollout_cmd;

#[derive(Parser)]
#[command(
    version,
    about = "Predictive-maintenance hub: ingest, asset health, work orders, API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the hub against an MQTT broker.
    Serve {
        /// Broker address (host:port).
        #[arg(long, default_value = "127.0.0.1:1883")]
        mqtt: String,
        /// Address of the HTTP API and operators' page.
        #[arg(long, default_value = "127.0.0.1:8080")]
        http: SocketAddr,
        /// Where the hub keeps its database.
        #[arg(long, default_value = "hub-data")]
        data_dir: PathBuf,
        /// MQTT client id; the persistent session is keyed by it.
        #[arg(long, default_value = "central-hub")]
        client_id: String,
        /// Also run the embedded broker on the --mqtt address (for tests
        /// and small sites; production uses a real broker).
        #[arg(long)]
        embedded_broker: bool,
        /// Seconds of silence after which a gateway is shown offline.
        #[arg(long, default_value_t = 60)]
        offline_after_s: u64,
        /// Seconds offline after which a gateway_offline work order opens.
        #[arg(long, default_value_t = 600)]
        offline_work_order_after_s: u64,
        /// The hub config (users and tokens, SLA, crews, asset registry).
        /// Without it (or without users in it) the hub makes an operator
        /// and an engineer token for this run and prints them.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run only the embedded MQTT broker (rumqttd) until stopped.
    Broker {
        #[arg(long, default_value = "127.0.0.1:1883")]
        listen: SocketAddr,
    },
    /// Model packages: make a signing key, sign a model, check a package.
    Models {
        #[command(subcommand)]
        command: models_cmd::ModelsCommand,
    },
    /// Rollouts of model packages to gateways: start (and follow), list,
    /// watch, pause, resume, rollback.
    Rollout {
        #[command(flatten)]
        access: rollout_cmd::HubAccess,
        #[command(subcommand)]
        command: rollout_cmd::RolloutCommand,
    },
    /// Run broker, hub and simulated gateways together.
    Demo {
        #[arg(long, default_value = "127.0.0.1:8080")]
        http: SocketAddr,
        /// Exit cleanly after this many seconds (default: until Ctrl-C).
        #[arg(long = "for", value_name = "SECONDS")]
        run_for: Option<u64>,
        /// Keep the hub's data here (default: a temporary directory).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    // Colours only on a terminal: logs in files and journals stay plain.
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rumqttd=off,sled=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("central-hub: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("central-hub: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    tokio::spawn(stop_on_signal(stop.clone()));
    match cli.command {
        Command::Serve {
            mqtt,
            http,
            data_dir,
            client_id,
            embedded_broker,
            offline_after_s,
            offline_work_order_after_s,
            config,
        } => {
            let mut config = match &config {
                Some(path) => HubConfig::load(path)?,
                None => HubConfig::default(),
            };
            let made = config.ensure_users()?;
            if !made.is_empty() {
                tracing::warn!(
                    "no users configured: made an operator and an engineer token for this run only; put [[users]] in --config to keep them"
                );
                for u in &made {
                    println!("{} token: {}", u.role.as_str(), u.token);
                }
            }
            anyhow::ensure!(
                offline_after_s >= 1 && offline_work_order_after_s >= offline_after_s,
                "--offline-after-s must be at least 1 and --offline-work-order-after-s at least as long"
            );
            let (host, port) = split_host_port(&mqtt)?;
            if embedded_broker {
                let addr: SocketAddr = mqtt.parse().with_context(|| {
                    format!("--embedded-broker needs --mqtt as IP:port, got `{mqtt}`")
                })?;
                central_hub::broker::start(addr)?;
            }
            let hub = hub::start(HubSettings {
                mqtt: IngestSettings {
                    host,
                    port,
                    client_id,
                    keep_alive: Duration::from_secs(30),
                    liveness: LivenessPolicy {
                        offline_after: Duration::from_secs(offline_after_s),
                        work_order_after: Duration::from_secs(offline_work_order_after_s),
                    },
                },
                http,
                data_dir,
                config,
            })
            .await?;
            println!("hub listening on http://{}", hub.http_addr);
            stop.cancelled().await;
            hub.stop().await;
        }
        Command::Models { command } => models_cmd::run(command)?,
        Command::Rollout { access, command } => {
            tokio::task::spawn_blocking(move || rollout_cmd::run(access, command)).await??
        }
        Command::Broker { listen } => {
            let broker = central_hub::broker::start(listen)?;
            println!("MQTT broker listening on {}", broker.addr);
            stop.cancelled().await;
        }
        Command::Demo {
            http,
            run_for,
            data_dir,
        } => {
            demo::run(
                DemoOptions {
                    http,
                    run_for: run_for.map(Duration::from_secs),
                    data_dir,
                },
                stop,
            )
            .await?;
        }
    }
    Ok(())
}

fn split_host_port(s: &str) -> anyhow::Result<(String, u16)> {
    let (host, port) = s
        .rsplit_once(':')
        .with_context(|| format!("--mqtt `{s}` must be host:port"))?;
    let port = port
        .parse()
        .with_context(|| format!("--mqtt `{s}`: `{port}` is not a port number"))?;
    Ok((host.trim_matches(['[', ']']).to_owned(), port))
}

/// Cancels on Ctrl-C or SIGTERM.
async fn stop_on_signal(stop: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutdown requested");
    stop.cancel();
}
