//! `edge-agent`: run a gateway, check its config, or export features.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use edge_agent::AgentConfig;
use edge_agent::export::ExportRequest;
use edge_agent::source::{CsvReplayConfig, RawReplayConfig, SourceConfig};
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
    /// Run a simulated sensor node serving its frames on a TCP port (the
    /// firmware's sampling loop over simulated sensors).
    NodeSim {
        #[arg(long, default_value = "127.0.0.1:4000")]
        listen: std::net::SocketAddr,
        /// pump or bridge.
        #[arg(long, default_value = "pump")]
        kind: String,
        #[arg(long, default_value_t = 1)]
        node_id: u16,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Accelerometer sample rate (default: 5120 Hz for a pump, 100 Hz for
        /// a bridge).
        #[arg(long)]
        sample_rate: Option<f64>,
        /// Simulated seconds per wall-clock second.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// A fault to develop: bearing_outer_race, bearing_inner_race,
        /// imbalance, stiffness_loss or sensor_stuck.
        #[arg(long)]
        fault: Option<String>,
        #[arg(long, default_value_t = 10.0)]
        onset_s: f64,
        #[arg(long, default_value_t = 60.0)]
        ramp_s: f64,
        /// Stop after this many seconds (default: run until killed).
        #[arg(long = "for")]
        run_for: Option<f64>,
    },
    /// Measure throughput and memory: channels per core through the full
    /// pipeline against a bare FFT, and RSS with many channels running.
    Bench {
        /// The pump model folder to run.
        #[arg(long, default_value = "models/pump-anomaly")]
        model: PathBuf,
        #[arg(long, default_value_t = 25_600.0)]
        sample_rate: f64,
        /// Channels running for the memory measurement.
        #[arg(long, default_value_t = 64)]
        rss_channels: usize,
        /// Seconds they run before the memory is read.
        #[arg(long, default_value_t = 10.0)]
        rss_seconds: f64,
        /// Least seconds each timing loop runs.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
    },
    /// Export feature vectors (the training data of a model) to CSV, from
    /// the assets' configured sources or from a recording (--input).
    Features {
        #[arg(long)]
        config: PathBuf,
        /// Seconds of signal per asset (default: 600, or the whole --input).
        #[arg(long)]
        seconds: Option<f64>,
        /// Export only these assets (repeatable); default: all.
        #[arg(long = "asset")]
        assets: Vec<String>,
        #[arg(long)]
        output: PathBuf,
        #[command(flatten)]
        input: InputArgs,
    },
    /// Run a public benchmark's protocol through replay and print its
    /// metrics (skab, cwru).
    Eval {
        /// The benchmark: skab, cwru, femto, z24, or all (each one whose
        /// data is present; the results table of models/README.md).
        benchmark: String,
        /// The data set's folder (default: $PDM_DATA_DIR/<set>, else
        /// ../shared/data/<set>; for `all`, the folder of the sets).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Default: the benchmark's model (see models/README.md).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Windows (skab: rows of each file; femto: snapshots) that
        /// commission the asset. Default: skab 400, femto the model's
        /// baseline.
        #[arg(long)]
        commission_rows: Option<u32>,
    },
    /// Replay a recording through the whole pipeline (features,
    /// commissioning, model, detector); one `datetime,score,anomaly` line
    /// per window after the commissioning part.
    Replay {
        /// Feature profile: pump-v2, bearing-v1, bridge-v2, bridge-modal-v1
        /// (sample streams) or pump-process-v1, pump-process-v2 (tables).
        #[arg(long)]
        profile: String,
        /// Windows that commission the asset first (0: resume from
        /// --data-dir, or use the model's thresholds).
        #[arg(long, default_value_t = 0)]
        commission_rows: u32,
        /// Model folder (default: the shipped model of the profile's kind).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Keep (and resume) commissioning here between replays.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Time of the first sample, RFC 3339.
        #[arg(long, default_value = "2000-01-01T00:00:00Z")]
        start: String,
        /// Nominal shaft speed (rotating machines): the bearing defect
        /// frequencies.
        #[arg(long)]
        shaft_rpm: Option<f64>,
        #[arg(long)]
        output: PathBuf,
        #[command(flatten)]
        input: InputArgs,
    },
}

/// A recording to read instead of an asset's configured source.
#[derive(clap::Args)]
struct InputArgs {
    /// The recording.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Its format.
    #[arg(long, value_enum, requires = "input")]
    format: Option<InputFormat>,
    /// Sample rate of the recording, Hz.
    #[arg(long, requires = "input")]
    sample_rate: Option<f64>,
    /// csv: the vibration column (in g).
    #[arg(long, default_value = "accel_g")]
    vibration_column: String,
    /// csv: the temperature column (degrees C).
    #[arg(long, default_value = "temp_c")]
    temperature_column: String,
    /// f32le: constant temperature to report (the format has none).
    #[arg(long)]
    temperature_c: Option<f64>,
    /// f32le: interleaved channels in the file and the one to read.
    #[arg(long, default_value_t = 1)]
    channels: usize,
    #[arg(long, default_value_t = 0)]
    channel: usize,
    /// f32le: factor turning the stored unit into g.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// table: the time column (copied to the output as written).
    #[arg(long, default_value = "datetime")]
    time_column: String,
    /// table: the columns of the profile's channels, in its order,
    /// comma-separated.
    #[arg(long, value_delimiter = ',')]
    columns: Vec<String>,
    /// table: a 0/1 label column, if any.
    #[arg(long)]
    label_column: Option<String>,
    /// table: the field separator.
    #[arg(long, default_value_t = ',')]
    separator: char,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum InputFormat {
    /// CSV with a header, one row per sample.
    Csv,
    /// Headerless float32 little-endian samples.
    F32le,
    /// replay: the SKAB benchmark's table of process readings.
    Skab,
    /// replay: a CSV table of process readings, one row per reading time
    /// (--time-column, --columns, --label-column, --separator).
    Table,
}

impl InputArgs {
    /// What `replay` reads: a sample stream or a table.
    fn replay_input(&self) -> anyhow::Result<edge_agent::replay_cli::ReplayInput> {
        use edge_agent::replay_cli::ReplayInput;
        use edge_agent::table::TableFormat;
        let path = self.input.clone().context("replay needs --input FILE")?;
        let format = match self.format {
            Some(InputFormat::Skab) => TableFormat::Skab,
            Some(InputFormat::Table) => TableFormat::Csv {
                separator: self.separator,
                time_column: self.time_column.clone(),
                columns: self.columns.clone(),
                label_column: self.label_column.clone(),
            },
            _ => {
                let source = self.source()?.context("replay needs --input FILE")?;
                return Ok(ReplayInput::Samples(source));
            }
        };
        Ok(ReplayInput::Table { path, format })
    }

    fn source(&self) -> anyhow::Result<Option<SourceConfig>> {
        let Some(path) = &self.input else {
            return Ok(None);
        };
        let format = self
            .format
            .context("--input needs --format (csv or f32le)")?;
        if matches!(format, InputFormat::Skab | InputFormat::Table) {
            anyhow::bail!(
                "--format skab and table are tables of process readings, not sample streams: replay them with a process profile (pump-process-v2)"
            );
        }
        let sample_rate_hz = self
            .sample_rate
            .context("--input needs --sample-rate (Hz)")?;
        let source = match format {
            InputFormat::Skab | InputFormat::Table => unreachable!("refused above"),
            InputFormat::Csv => SourceConfig::Csv(CsvReplayConfig {
                path: path.clone(),
                sample_rate_hz,
                vibration_column: self.vibration_column.clone(),
                temperature_column: self.temperature_column.clone(),
                speed: 0.0,
                separator: ',',
            }),
            InputFormat::F32le => SourceConfig::F32le(RawReplayConfig {
                path: path.clone(),
                sample_rate_hz,
                channels: self.channels,
                channel: self.channel,
                scale: self.scale,
                temperature_c: self.temperature_c.context(
                    "--format f32le carries no temperature: give --temperature-c (degrees C)",
                )?,
                speed: 0.0,
            }),
        };
        Ok(Some(source))
    }
}

fn main() -> ExitCode {
    // Colours only on a terminal: logs in files and journals stay plain.
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
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
            let store = edge_agent::open_store(&config)?;
            let outbox = edge_agent::open_outbox(&config, &store)?;
            let assets = edge_agent::prepare(&config)?
                .into_iter()
                .map(|a| {
                    a.with_commissioning_store(store.clone())
                        .with_installed_model(&config, &store)
                })
                .collect();
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
                let counters = edge_agent::run(config, assets, outbox, shutdown).await;
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
        Command::NodeSim {
            listen,
            kind,
            node_id,
            seed,
            sample_rate,
            speed,
            fault,
            onset_s,
            ramp_s,
            run_for,
        } => {
            let kind: protocol::AssetKind =
                serde_json::from_value(serde_json::Value::String(kind.clone()))
                    .map_err(|_| anyhow::anyhow!("--kind `{kind}` must be pump or bridge"))?;
            let fault = match fault {
                Some(name) => Some(edge_agent::source::FaultConfig {
                    kind: serde_json::from_value(serde_json::Value::String(name.clone())).map_err(
                        |_| anyhow::anyhow!("--fault `{name}` is not a simulated fault"),
                    )?,
                    onset_s,
                    ramp_s,
                    severity: 1.0,
                }),
                None => None,
            };
            let default_rate = match kind {
                protocol::AssetKind::Pump => 5120.0,
                protocol::AssetKind::Bridge => 100.0,
            };
            anyhow::ensure!(speed > 0.0 && speed.is_finite(), "--speed must be > 0");
            edge_agent::node_sim::serve(&edge_agent::node_sim::NodeSimOptions {
                listen,
                kind,
                node_id,
                seed,
                sample_rate_hz: sample_rate.unwrap_or(default_rate),
                speed,
                range_g: 8.0,
                fault,
                run_for: run_for.map(std::time::Duration::from_secs_f64),
            })
        }
        Command::Bench {
            model,
            sample_rate,
            rss_channels,
            rss_seconds,
            seconds,
        } => {
            let options = edge_agent::bench::BenchOptions {
                model,
                sample_rate_hz: sample_rate,
                windows: 16,
                min_seconds: seconds,
                rss_channels,
                rss_seconds,
            };
            let r = edge_agent::bench::run(&options)?;
            println!("window: 1 s at {sample_rate} S/s (one window per channel per second)");
            println!(
                "bare real FFT:  {:9.1} us/window  {:8.0} channels/core",
                r.fft_us_per_window,
                r.fft_channels_per_core()
            );
            println!(
                "full pipeline:  {:9.1} us/window  {:8.0} channels/core  ({:.2}x the bare FFT)",
                r.full_us_per_window,
                r.channels_per_core(),
                r.full_vs_fft()
            );
            println!(
                "(best of {} rounds each; median of the paired rounds {:.2}x, higher when the machine is busy)",
                r.rounds, r.median_full_vs_fft
            );
            println!(
                "memory: RSS {:.1} MB (peak {:.1} MB) with {} channels running; {} windows scored, {} dropped",
                r.rss_mb,
                r.peak_rss_mb,
                r.rss_channels,
                r.rss_windows_scored,
                r.rss_windows_dropped
            );
            println!(
                "channels_per_core={:.0} full_vs_fft={:.2} rss_mb={:.1}",
                r.channels_per_core(),
                r.full_vs_fft(),
                r.rss_mb
            );
            Ok(())
        }
        Command::Eval {
            benchmark,
            data,
            model,
            commission_rows,
        } => {
            let request = edge_agent::eval::EvalRequest {
                benchmark: benchmark.parse()?,
                data,
                model,
                commission_rows,
            };
            print!("{}", edge_agent::eval::run(&request)?);
            Ok(())
        }
        Command::Replay {
            profile,
            commission_rows,
            model,
            data_dir,
            start,
            shaft_rpm,
            output,
            input,
        } => {
            let cmd = edge_agent::replay_cli::ReplayCommand {
                profile,
                commission_rows,
                model,
                data_dir,
                start,
                shaft_rpm,
                output,
                input: input.replay_input()?,
            };
            println!("{}", edge_agent::replay_cli::run(cmd)?);
            Ok(())
        }
        Command::Features {
            config,
            seconds,
            assets,
            output,
            input,
        } => {
            let config = AgentConfig::load(&config)?;
            let input = input.source()?;
            let seconds = seconds.unwrap_or(if input.is_some() {
                f64::INFINITY
            } else {
                600.0
            });
            let request = ExportRequest {
                assets,
                seconds,
                input,
            };
            let summary = edge_agent::export::export_features(&config, &request, &output)?;
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
