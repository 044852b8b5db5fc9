//! `edge-agent bench`: how many 25.6 kS/s channels one core keeps up with.
//!
//! Three measurements on this machine, in one run so they can be compared:
//!
//! 1. **Memory**: the agent's resident set size with `rss_channels`
//!    simulated channels running in real time through the real lanes
//!    (acquisition and scoring threads, shared FFT plans and buffers). It
//!    runs first, in a process that has allocated nothing else yet.
//! 2. **Bare FFT**: a loop of forward real FFTs over one-second windows,
//!    with nothing else; the floor any spectral pipeline stands on.
//! 3. **Full pipeline** over the same windows: windowing, sensor-health
//!    checks, every feature (statistics, velocity, bands, envelope at the
//!    bearing defect frequencies), the ONNX model and the detector.
//!
//! The two timing loops alternate in short rounds (one pass over the
//! windows each, about a millisecond) and each keeps its best round: on a
//! shared machine, load from elsewhere only ever adds time, and with
//! hundreds of rounds each loop gets some that ran undisturbed, so the best
//! rounds compare the two loops' own costs. The median of the rounds, paired
//! in time, is reported beside it to show how noisy the run was. A channel
//! yields one window per second, so channels per core is one second divided
//! by the time per window. The last line,
//! `channels_per_core=N full_vs_fft=R rss_mb=M`, is meant for comparing runs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use protocol::AssetKind;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::agent::{Lanes, PreparedAsset};
use crate::config::AgentConfig;
use crate::features::{AssetAnalysis, FeatureProfile, fft_pool};
use crate::model::AnomalyModel;
use crate::pipeline::{AssetPipeline, AssetSetup};
use crate::source::{Block, SimConfig, SourceConfig, SourcePoll};
use crate::telemetry::{AssetBoard, Counters};
use crate::window::{Window, Windower};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub model: PathBuf,
    pub sample_rate_hz: f64,
    /// Distinct one-second windows cycled through by the timing loops.
    pub windows: usize,
    /// Least time each timing loop runs.
    pub min_seconds: f64,
    pub rss_channels: usize,
    pub rss_seconds: f64,
}

/// The figures, as measured.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchReport {
    /// Best round of each loop.
    pub fft_us_per_window: f64,
    pub full_us_per_window: f64,
    /// Median over the rounds of full / FFT, each pair run back to back.
    pub median_full_vs_fft: f64,
    /// Rounds of each loop.
    pub rounds: usize,
    pub rss_mb: f64,
    pub peak_rss_mb: f64,
    pub rss_channels: usize,
    pub rss_windows_scored: u64,
    pub rss_windows_dropped: u64,
}

impl BenchReport {
    pub fn channels_per_core(&self) -> f64 {
        1e6 / self.full_us_per_window
    }
    pub fn fft_channels_per_core(&self) -> f64 {
        1e6 / self.fft_us_per_window
    }
    pub fn full_vs_fft(&self) -> f64 {
        self.full_us_per_window / self.fft_us_per_window
    }
}

/// Runs the three measurements, printing progress to stderr.
pub fn run(options: &BenchOptions) -> Result<BenchReport> {
    let model = AnomalyModel::load_dir(&options.model)?;
    eprintln!(
        "memory: {} channels at {} S/s in real time for {} s ...",
        options.rss_channels, options.sample_rate_hz, options.rss_seconds
    );
    let (rss_mb, peak_rss_mb, scored, dropped) = measure_rss(options, &model)?;
    let blocks = simulated_blocks(options.sample_rate_hz, options.windows)?;
    let windows = cut_windows(&blocks, options.sample_rate_hz);
    eprintln!(
        "bare FFT and full pipeline over the same {} windows, alternating passes for {} s ...",
        windows.len(),
        2.0 * options.min_seconds
    );
    let mut bare_fft = BareFft::new(&windows);
    let mut full = FullPipeline::new(&blocks, options, &model)?;
    // Warm up: plans, buffers, caches.
    bare_fft.pass();
    full.pass();
    let (mut fft_rounds, mut full_rounds) = (Vec::new(), Vec::new());
    let started = Instant::now();
    while started.elapsed().as_secs_f64() < 2.0 * options.min_seconds {
        fft_rounds.push(time_pass(|| bare_fft.pass()));
        full_rounds.push(time_pass(|| full.pass()));
    }
    let paired: Vec<f64> = full_rounds
        .iter()
        .zip(&fft_rounds)
        .map(|(full, fft)| full / fft)
        .collect();
    Ok(BenchReport {
        fft_us_per_window: fft_rounds.iter().copied().fold(f64::INFINITY, f64::min),
        full_us_per_window: full_rounds.iter().copied().fold(f64::INFINITY, f64::min),
        median_full_vs_fft: median(paired),
        rounds: fft_rounds.len(),
        rss_mb,
        peak_rss_mb,
        rss_channels: options.rss_channels,
        rss_windows_scored: scored,
        rss_windows_dropped: dropped,
    })
}

fn sim_source(seed: u64, sample_rate_hz: f64, speed: f64) -> SourceConfig {
    SourceConfig::Sim(SimConfig {
        seed,
        speed,
        sample_rate_hz: Some(sample_rate_hz),
        duration_s: None,
        fault: None,
    })
}

/// `windows` seconds of a simulated pump, as the blocks a source yields.
fn simulated_blocks(sample_rate_hz: f64, windows: usize) -> Result<Vec<Block>> {
    let mut source =
        sim_source(1, sample_rate_hz, 0.0).open(AssetKind::Pump, 0, &AssetAnalysis::default())?;
    let mut blocks = Vec::new();
    let mut seconds = 0.0;
    while seconds < windows as f64 {
        if let SourcePoll::Block(b) = source.poll()? {
            seconds += b.vibration.len() as f64 / sample_rate_hz;
            blocks.push(b);
        }
    }
    Ok(blocks)
}

fn cut_windows(blocks: &[Block], sample_rate_hz: f64) -> Vec<Window> {
    let (len, hop) = FeatureProfile::for_kind(AssetKind::Pump).window_samples(sample_rate_hz);
    let mut windower = Windower::new(len, hop, sample_rate_hz);
    blocks
        .iter()
        .flat_map(|b| windower.push(b.clone()))
        .collect()
}

/// Microseconds per window of one call to `pass` (which returns the
/// windows it handled).
fn time_pass(pass: impl FnOnce() -> usize) -> f64 {
    let started = Instant::now();
    let windows = pass();
    started.elapsed().as_secs_f64() * 1e6 / windows.max(1) as f64
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Forward real FFTs of the windows, input copy included, nothing else:
/// the same shared plan and pooled buffers as the pipeline's own FFT, so
/// the two loops differ only in what the pipeline does beyond it.
struct BareFft<'a> {
    windows: &'a [Window],
    plan: Arc<fft_pool::RealPlan>,
}

impl<'a> BareFft<'a> {
    fn new(windows: &'a [Window]) -> Self {
        BareFft {
            windows,
            plan: fft_pool::real_plan(windows[0].vibration.len()),
        }
    }

    fn pass(&mut self) -> usize {
        for w in self.windows {
            fft_pool::with_real_buffers(&self.plan, |b| {
                for (dst, &x) in b.input.iter_mut().zip(&w.vibration) {
                    *dst = x as f64;
                }
                self.plan
                    .fft
                    .process_with_scratch(&mut b.input, &mut b.output, &mut b.scratch)
                    .expect("buffers come from the plan");
                std::hint::black_box(&b.output);
            });
        }
        self.windows.len()
    }
}

/// Windowing, checks, features, model and detector, fed block by block as
/// the acquisition lane does.
struct FullPipeline<'a> {
    blocks: &'a [Block],
    pipeline: AssetPipeline,
    windower: Windower,
    block_us: u64,
    next_start_us: u64,
}

impl<'a> FullPipeline<'a> {
    fn new(blocks: &'a [Block], options: &BenchOptions, model: &AnomalyModel) -> Result<Self> {
        let rate = options.sample_rate_hz;
        let config = AgentConfig::parse(
            &fleet_toml(1, rate, 0.0, &options.model),
            std::path::Path::new("."),
        )?;
        let setup = AssetSetup::from_config(&config, &config.assets[0]);
        let pipeline = AssetPipeline::new(setup, model.clone(), rate)?;
        let (len, hop) = pipeline.profile().window_samples(rate);
        Ok(FullPipeline {
            blocks,
            pipeline,
            windower: Windower::new(len, hop, rate),
            block_us: (blocks[0].vibration.len() as f64 * 1e6 / rate) as u64,
            next_start_us: 0,
        })
    }

    fn pass(&mut self) -> usize {
        let mut processed = 0;
        for b in self.blocks {
            // Fresh, contiguous timestamps on every pass: no gap.
            let start_us = self.next_start_us;
            self.next_start_us += self.block_us;
            for window in self
                .windower
                .push_samples(start_us, &b.vibration, &b.temperature)
            {
                std::hint::black_box(self.pipeline.process(&window));
                processed += 1;
            }
        }
        processed
    }
}

fn fleet_toml(channels: usize, sample_rate_hz: f64, speed: f64, model: &std::path::Path) -> String {
    let mut toml = String::from("site = \"bench\"\ngateway = \"bench\"\n[mqtt]\n");
    for i in 0..channels {
        toml += &format!(
            "[[assets]]\nid = \"P-{i}\"\nkind = \"pump\"\nmodel = \"{}\"\nsource = {{ type = \"sim\", seed = {}, speed = {speed}, sample_rate_hz = {sample_rate_hz} }}\n",
            model.display(),
            100 + i
        );
    }
    toml
}

/// Runs `rss_channels` real lanes in real time and reads the process's
/// resident set size (now and peak) at the end.
fn measure_rss(options: &BenchOptions, model: &AnomalyModel) -> Result<(f64, f64, u64, u64)> {
    let toml = fleet_toml(
        options.rss_channels,
        options.sample_rate_hz,
        1.0,
        &options.model,
    );
    let config = AgentConfig::parse(&toml, std::path::Path::new("."))?;
    let assets = config
        .assets
        .iter()
        .map(|a| PreparedAsset::new(&config, a, model.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let counters = Arc::new(Counters::default());
    let board = Arc::new(AssetBoard::new(assets.iter().map(|a| a.status()).collect()));
    let (tx, mut rx) = mpsc::channel(1024);
    let shutdown = CancellationToken::new();
    let lanes = Lanes::start(assets, tx, counters.clone(), board, shutdown.clone());
    let drain = std::thread::spawn(move || while rx.blocking_recv().is_some() {});
    std::thread::sleep(Duration::from_secs_f64(options.rss_seconds));
    let (rss, peak) = read_rss_mb().context("reading /proc/self/status")?;
    shutdown.cancel();
    lanes.join();
    let _ = drain.join();
    let c = counters.snapshot();
    Ok((rss, peak, c.windows_scored, c.windows_dropped))
}

/// (VmRSS, VmHWM) of this process in MB.
fn read_rss_mb() -> Result<(f64, f64)> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let field = |name: &str| -> Result<f64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("no {name} in /proc/self/status"))?;
        let kb: f64 = line
            .split_whitespace()
            .nth(1)
            .context("malformed line")?
            .parse()?;
        Ok(kb / 1024.0)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}
