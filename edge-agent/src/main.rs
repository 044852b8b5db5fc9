//! `edge-agent`: run a gateway, check its config, or export features.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use edge_agent::AgentConfig;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(version, about = "Predictive-maintenance agent for a field gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway: acquire, score, publish (until Ctrl-C, or until
    /// every recording has been replayed).
    Run {
        #[arg(long)]
        config: PathBuf,
    },
    /// Validate the config and load every model, then exit.
    Check {
        #[arg(long)]
        config: PathBuf,
    },
    /// Export feature vectors (the training data of a model) to CSV.
    Features {
        #[arg(long)]
        config: PathBuf,
        /// Seconds of signal per asset.
        #[arg(long, default_value_t = 600.0)]
        seconds: f64,
        /// Export only these assets (repeatable); default: all.
        #[arg(long = "asset")]
        assets: Vec<String>,
        #[arg(long)]
        output: PathBuf,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, naming the file and the problem.
            eprintln!("edge-agent: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run { config } => {
            let config = AgentConfig::load(&config)?;
            let assets = edge_agent::prepare(&config)?;
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(async {
                let shutdown = CancellationToken::new();
                tokio::spawn(stop_on_signal(shutdown.clone()));
                tracing::info!(
                    gateway = %config.gateway,
                    site = %config.site,
                    assets = config.assets.len(),
                    broker = %format!("{}:{}", config.mqtt.host, config.mqtt.port),
                    "edge agent starting"
                );
                let counters = edge_agent::run(config, assets, shutdown).await;
                tracing::info!(?counters, "edge agent stopped");
            });
            Ok(())
        }
        Command::Check { config: path } => {
            let config = AgentConfig::load(&path)?;
            let assets = edge_agent::prepare(&config)?;
            println!(
                "{}: ok, gateway {} at site {}, {} asset(s)",
                path.display(),
                config.gateway,
                config.site,
                assets.len()
            );
            for a in &config.assets {
                println!(
                    "  {} ({}) model {}",
                    a.id,
                    a.kind.as_str(),
                    a.model.display()
                );
            }
            Ok(())
        }
        Command::Features {
            config,
            seconds,
            assets,
            output,
        } => {
            let config = AgentConfig::load(&config)?;
            let summary = edge_agent::export::export_features(&config, &assets, seconds, &output)?;
            println!(
                "wrote {} rows to {} ({} windows refused by sensor checks, {} gaps)",
                summary.rows,
                output.display(),
                summary.refused_windows,
                summary.gaps
            );
            Ok(())
        }
    }
}

/// Cancels on Ctrl-C or SIGTERM (how systemd stops a service).
async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let term = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested");
    shutdown.cancel();
}
