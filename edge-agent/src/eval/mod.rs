//! `edge-agent eval`: a public benchmark's own protocol, run through replay.
//!
//! The figures in `models/README.md` come from here, so they measure the
//! code the field runs (features, commissioning, model, detector), not a
//! notebook's copy of it.
//!
//! One file per benchmark: [`skab`], [`cwru`], [`femto`], [`z24`].

pub mod cwru;
pub mod femto;
pub mod skab;
pub mod z24;

pub use cwru::{CwruResult, cwru, cwru_report};
pub use femto::{FemtoResult, femto, femto_report};
pub use skab::{FileResult, skab, skab_report};
pub use z24::{Z24Report, Z24Result, z24, z24_report};

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::model::AnomalyModel;
use crate::replay::ReplaySegment;
use crate::source::{RawReplayConfig, SourceConfig};

/// A public benchmark `edge-agent eval` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Benchmark {
    Skab,
    Cwru,
    Femto,
    Z24,
}

impl Benchmark {
    pub const ALL: [Benchmark; 4] = [
        Benchmark::Skab,
        Benchmark::Cwru,
        Benchmark::Femto,
        Benchmark::Z24,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Benchmark::Skab => "skab",
            Benchmark::Cwru => "cwru",
            Benchmark::Femto => "femto",
            Benchmark::Z24 => "z24",
        }
    }

    /// Its folder under the data sets' folder.
    pub fn folder(self) -> &'static str {
        match self {
            Benchmark::Skab => "skab",
            Benchmark::Cwru => "cwru-bearing",
            Benchmark::Femto => "femto-pronostia",
            Benchmark::Z24 => "z24-bridge-pdt",
        }
    }

    /// The model it measures by default.
    pub fn default_model(self) -> &'static str {
        match self {
            Benchmark::Skab => "models/pump-process-anomaly",
            Benchmark::Cwru | Benchmark::Femto => "models/bearing-anomaly",
            Benchmark::Z24 => "models/bridge-modal-anomaly",
        }
    }
}

/// Which benchmarks to run: one, or every one whose data is present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    One(Benchmark),
    All,
}

impl std::str::FromStr for Selection {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        if s == "all" {
            return Ok(Selection::All);
        }
        Benchmark::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .map(Selection::One)
            .with_context(|| {
                let known: Vec<&str> = Benchmark::ALL.iter().map(|b| b.name()).collect();
                format!("unknown benchmark `{s}`; known: {}, all", known.join(", "))
            })
    }
}

/// `edge-agent eval`'s arguments.
pub struct EvalRequest {
    pub benchmark: Selection,
    /// The set's folder (one benchmark) or the sets' folder (all).
    pub data: Option<PathBuf>,
    pub model: Option<PathBuf>,
    pub commission_rows: Option<u32>,
}

/// The folder holding the data sets: `$PDM_DATA_DIR`, else `../shared/data`.
pub fn data_sets_dir() -> PathBuf {
    std::env::var_os("PDM_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/data"))
}

/// Runs the request; returns the report to print.
pub fn run(request: &EvalRequest) -> Result<String> {
    match request.benchmark {
        Selection::One(benchmark) => {
            let data = request
                .data
                .clone()
                .unwrap_or_else(|| data_sets_dir().join(benchmark.folder()));
            run_one(benchmark, &data, request)
        }
        Selection::All => {
            anyhow::ensure!(
                request.model.is_none() && request.commission_rows.is_none(),
                "`eval all` runs each benchmark with its own model and commissioning"
            );
            let sets = request.data.clone().unwrap_or_else(data_sets_dir);
            let mut text = String::new();
            for benchmark in Benchmark::ALL {
                let data = sets.join(benchmark.folder());
                if !data.is_dir() {
                    text += &format!(
                        "{}: skipped, no data at {}\n\n",
                        benchmark.name(),
                        data.display()
                    );
                    continue;
                }
                eprintln!("eval: {} from {}", benchmark.name(), data.display());
                text += &run_one(benchmark, &data, request)?;
                text += "\n";
            }
            Ok(text)
        }
    }
}

fn run_one(benchmark: Benchmark, data: &Path, request: &EvalRequest) -> Result<String> {
    let model_dir = request
        .model
        .clone()
        .unwrap_or_else(|| PathBuf::from(benchmark.default_model()));
    let model = AnomalyModel::load_dir(&model_dir)
        .with_context(|| format!("loading {}", model_dir.display()))?;
    Ok(match benchmark {
        Benchmark::Skab => {
            let results = skab(data, &model, request.commission_rows.unwrap_or(400))?;
            skab_report(&results, &model)
        }
        Benchmark::Cwru => cwru_report(&cwru(data, &model)?, &model),
        Benchmark::Femto => {
            let baseline = request.commission_rows.or_else(|| {
                let spec = model.manifest().commissioning.as_ref();
                spec.map(|c| c.baseline_windows)
            });
            let results = femto(data, &model, baseline.unwrap_or(40))?;
            femto_report(&results, &model)
        }
        Benchmark::Z24 => z24_report(&z24(data, &model)?, &model),
    })
}

/// A raw float32 little-endian recording as a replay segment: `channel` of
/// `channels` interleaved, at `rate`, with a constant temperature reading.
pub(crate) fn f32le_segment(
    path: &Path,
    rate: f64,
    (channels, channel): (usize, usize),
    temperature_c: f64,
    start_us: u64,
) -> ReplaySegment {
    ReplaySegment {
        source: SourceConfig::F32le(RawReplayConfig {
            path: path.to_owned(),
            sample_rate_hz: rate,
            channels,
            channel,
            scale: 1.0,
            temperature_c,
            speed: 0.0,
        }),
        start_us,
    }
}

/// A scratch folder for one evaluation, removed when dropped.
pub(crate) struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> std::io::Result<Self> {
        let dir = std::env::temp_dir().join(format!("edge-agent-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Counts of a binary classification, positive = anomalous.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Confusion {
    pub true_positive: u64,
    pub false_positive: u64,
    pub true_negative: u64,
    pub false_negative: u64,
}

impl Confusion {
    pub fn add(&mut self, predicted: bool, actual: bool) {
        match (predicted, actual) {
            (true, true) => self.true_positive += 1,
            (true, false) => self.false_positive += 1,
            (false, false) => self.true_negative += 1,
            (false, true) => self.false_negative += 1,
        }
    }

    pub fn merge(&mut self, other: Confusion) {
        self.true_positive += other.true_positive;
        self.false_positive += other.false_positive;
        self.true_negative += other.true_negative;
        self.false_negative += other.false_negative;
    }

    pub fn rows(&self) -> u64 {
        self.true_positive + self.false_positive + self.true_negative + self.false_negative
    }

    /// Harmonic mean of precision and recall (0 when there is neither).
    pub fn f1(&self) -> f64 {
        let tp = self.true_positive as f64;
        let denominator = 2.0 * tp + self.false_positive as f64 + self.false_negative as f64;
        if denominator == 0.0 {
            0.0
        } else {
            2.0 * tp / denominator
        }
    }

    /// Share of normal rows flagged.
    pub fn false_alarm_rate(&self) -> f64 {
        ratio(
            self.false_positive,
            self.false_positive + self.true_negative,
        )
    }

    /// Share of anomalous rows missed.
    pub fn missed_alarm_rate(&self) -> f64 {
        ratio(
            self.false_negative,
            self.false_negative + self.true_positive,
        )
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rates_follow_their_definitions() {
        let mut c = Confusion::default();
        for (p, a, n) in [
            (true, true, 6),
            (true, false, 1),
            (false, false, 9),
            (false, true, 4),
        ] {
            for _ in 0..n {
                c.add(p, a);
            }
        }
        // Precision 6/7, recall 6/10: F1 = 12 / (12 + 1 + 4).
        assert!((c.f1() - 12.0 / 17.0).abs() < 1e-12);
        assert!((c.false_alarm_rate() - 0.1).abs() < 1e-12);
        assert!((c.missed_alarm_rate() - 0.4).abs() < 1e-12);
        assert_eq!(c.rows(), 20);
        assert_eq!(Confusion::default().f1(), 0.0);
    }
}
