//! Where samples come from: one trait, several sources.
//!
//! A source yields [`Block`]s: a short run of consecutive vibration samples
//! with the temperature readings taken meanwhile, stamped with the time of the
//! first sample. Everything downstream (windowing, features, the model) sees
//! only blocks, so a simulator, a recording and (later) a real sensor node are
//! interchangeable.
//!
//! Sources are synchronous: a real driver blocks on its bus, a simulator
//! computes. How fast they are drained is the acquisition lane's business
//! (see [`Pacing`]).

mod bridge_sim;
mod csv_replay;
mod frames;
mod local_sensors;
mod node_link;
mod pump_sim;
mod raw_replay;
mod resonator;
mod rng;
pub mod sim_sensors;

use std::path::Path;

use protocol::AssetKind;
use serde::Deserialize;
use thiserror::Error;

use crate::features::AssetAnalysis;

pub use bridge_sim::BridgeSim;
pub use csv_replay::{CsvReplay, CsvReplayConfig};
pub use frames::{FrameAssembler, FrameSelection, LinkCounters};
pub use local_sensors::{DriverSource, LocalSensorsConfig, MonotonicClock};
pub use node_link::{NodeLink, NodeLinkConfig};
pub use pump_sim::PumpSim;
pub use raw_replay::{RawReplay, RawReplayConfig};

/// Seconds of signal in one block of the built-in sources.
pub const BLOCK_SECONDS: f64 = 0.25;

/// A run of consecutive samples from one asset's sensors.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// Time of the first vibration sample, microseconds since the Unix epoch.
    pub start_us: u64,
    /// Acceleration samples in g at the source's sample rate.
    pub vibration: Vec<f32>,
    /// Temperature readings (degrees C) taken during this block.
    pub temperature: Vec<f32>,
}

/// What a source has to give when asked.
#[derive(Debug, Clone, PartialEq)]
pub enum SourcePoll {
    Block(Block),
    /// Nothing yet (a live link that is quiet); ask again.
    Idle,
    /// A finite recording has ended.
    End,
}

/// A stream of blocks.
pub trait Source: Send {
    /// Vibration sample rate in Hz; constant for the life of the source.
    fn sample_rate_hz(&self) -> f64;
    /// The next block, or why there is none. A live source waits at most a
    /// fraction of a second before answering `Idle`.
    fn poll(&mut self) -> Result<SourcePoll, SourceError>;
    /// How blocks should be drained.
    fn pacing(&self) -> Pacing;
    /// Frames that arrived damaged so far (sources fed by a node link).
    fn frame_errors(&self) -> u64 {
        0
    }
    /// Jumps in the node's sequence numbers so far (lost frames).
    fn sequence_gaps(&self) -> u64 {
        0
    }
}

/// How the acquisition lane drains a source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// Blocks arrive in (possibly scaled) real time, like a live sensor:
    /// `speed` seconds of signal per wall-clock second. Acquisition never
    /// waits for scoring; windows that cannot be handed over are dropped.
    Live { speed: f64 },
    /// As fast as scoring can take them (recordings, exports); nothing is
    /// dropped because nothing is live.
    AsFastAsPossible,
}

impl SourcePoll {
    /// The block; panics otherwise (for tests and simulators that always
    /// have one).
    pub fn block(self) -> Block {
        match self {
            SourcePoll::Block(b) => b,
            other => panic!("expected a block, got {other:?}"),
        }
    }
}

impl Pacing {
    fn from_speed(speed: f64) -> Self {
        if speed > 0.0 {
            Pacing::Live { speed }
        } else {
            Pacing::AsFastAsPossible
        }
    }
}

/// A source that failed.
#[derive(Debug, Error)]
pub enum SourceError {
    #[error("recording {path}: {message}")]
    Recording { path: String, message: String },
    #[error("recording {path}: cannot read: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// `[assets.source]` in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SourceConfig {
    /// A physically motivated simulator of the asset's kind.
    Sim(SimConfig),
    /// A CSV recording replayed sample by sample.
    Csv(CsvReplayConfig),
    /// A headerless float32 little-endian recording.
    F32le(RawReplayConfig),
    /// Frames from a sensor node over serial, TCP or a Unix socket.
    Node(NodeLinkConfig),
    /// An ADXL355 and a TMP117 wired to the gateway (Linux SPI and I2C).
    Local(LocalSensorsConfig),
}

/// Settings of a simulated asset.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    /// Seed of this simulated machine: it fixes the machine's own
    /// characteristics (amplitudes, resonances) and its noise.
    pub seed: u64,
    /// Seconds of signal per wall-clock second; 0 means as fast as possible.
    #[serde(default = "default_speed")]
    pub speed: f64,
    /// Accelerometer sample rate; default 5120 Hz for pumps, 100 Hz for
    /// bridges.
    pub sample_rate_hz: Option<f64>,
    /// A fault that develops during the run.
    pub fault: Option<FaultConfig>,
    /// Seconds of signal, after which the simulator ends like a recording
    /// (default: it runs until the agent stops).
    #[serde(default)]
    pub duration_s: Option<f64>,
}

/// A fault injected into a simulator.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    pub kind: FaultKind,
    /// Seconds of signal before the fault starts.
    pub onset_s: f64,
    /// Seconds from onset until the fault reaches full severity.
    #[serde(default = "default_ramp")]
    pub ramp_s: f64,
    /// Final severity, 0 to 1.
    #[serde(default = "default_severity")]
    pub severity: f64,
}

/// Faults the simulators know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Pump: a spall on a bearing's outer race, impacts at BPFO.
    BearingOuterRace,
    /// Pump: a spall on the inner race, impacts at BPFI, stronger as the
    /// spall passes through the load zone once per shaft turn.
    BearingInnerRace,
    /// Pump: growing rotor imbalance (1x shaft speed).
    Imbalance,
    /// Bridge: loss of stiffness (cracking, tendon rupture), modal
    /// frequencies fall.
    StiffnessLoss,
    /// Any: the accelerometer output freezes at one value.
    SensorStuck,
}

fn default_speed() -> f64 {
    1.0
}
fn default_ramp() -> f64 {
    60.0
}
fn default_severity() -> f64 {
    1.0
}

impl FaultConfig {
    /// Severity (0 to 1) at `t` of a fault of `kind`: 0 when the configured
    /// fault (if any) is of another kind.
    pub fn severity_of(fault: Option<&FaultConfig>, kind: FaultKind, t: f64) -> f64 {
        match fault {
            Some(f) if f.kind == kind => f.severity_at(t),
            _ => 0.0,
        }
    }

    /// Severity (0 to 1) at `t` seconds of signal.
    pub fn severity_at(&self, t: f64) -> f64 {
        if t < self.onset_s {
            0.0
        } else if self.ramp_s <= 0.0 {
            self.severity
        } else {
            self.severity * ((t - self.onset_s) / self.ramp_s).min(1.0)
        }
    }
}

impl SourceConfig {
    pub(crate) fn validate(&self, kind: AssetKind) -> Result<(), String> {
        match self {
            SourceConfig::Sim(sim) => sim.validate(kind),
            SourceConfig::Csv(csv) => csv.validate(),
            SourceConfig::F32le(raw) => raw.validate(),
            SourceConfig::Node(node) => node.validate(),
            SourceConfig::Local(local) => local.validate(),
        }
    }

    pub(crate) fn resolve_paths(&mut self, base: &Path) {
        match self {
            SourceConfig::Csv(csv) => crate::config::resolve_in_place(base, &mut csv.path),
            SourceConfig::F32le(raw) => crate::config::resolve_in_place(base, &mut raw.path),
            SourceConfig::Sim(_) | SourceConfig::Node(_) | SourceConfig::Local(_) => {}
        }
    }

    /// Opens the source. `start_us` stamps the first sample of simulators;
    /// a simulated pump runs at the asset's shaft speed with its bearing.
    pub fn open(
        &self,
        kind: AssetKind,
        start_us: u64,
        analysis: &AssetAnalysis,
    ) -> Result<Box<dyn Source>, SourceError> {
        Ok(match (self, kind) {
            (SourceConfig::Sim(sim), _) => {
                let source: Box<dyn Source> = match kind {
                    AssetKind::Pump => Box::new(PumpSim::new(sim, start_us, analysis)),
                    AssetKind::Bridge => Box::new(BridgeSim::new(sim, start_us)),
                };
                match sim.duration_s {
                    Some(seconds) => Box::new(Limited::new(source, seconds)),
                    None => source,
                }
            }
            (SourceConfig::Csv(csv), _) => Box::new(CsvReplay::open(csv, start_us)?),
            (SourceConfig::F32le(raw), _) => Box::new(RawReplay::open(raw, start_us)?),
            (SourceConfig::Node(node), _) => Box::new(NodeLink::open(node)?),
            (SourceConfig::Local(local), _) => local_sensors::open(local)?,
        })
    }
}

/// A simulator that ends after a number of seconds of signal.
struct Limited {
    inner: Box<dyn Source>,
    samples_left: f64,
}

impl Limited {
    fn new(inner: Box<dyn Source>, seconds: f64) -> Self {
        let samples_left = seconds * inner.sample_rate_hz();
        Limited {
            inner,
            samples_left,
        }
    }
}

impl Source for Limited {
    fn sample_rate_hz(&self) -> f64 {
        self.inner.sample_rate_hz()
    }

    fn poll(&mut self) -> Result<SourcePoll, SourceError> {
        if self.samples_left < 1.0 {
            return Ok(SourcePoll::End);
        }
        let poll = self.inner.poll()?;
        if let SourcePoll::Block(b) = &poll {
            self.samples_left -= b.vibration.len() as f64;
        }
        Ok(poll)
    }

    fn pacing(&self) -> Pacing {
        self.inner.pacing()
    }
}

/// A source's `sample_rate_hz` must be a positive number.
fn check_sample_rate(rate: f64) -> Result<(), String> {
    if rate.is_finite() && rate > 0.0 {
        Ok(())
    } else {
        Err(format!("source.sample_rate_hz = {rate} must be > 0"))
    }
}

/// A replay's or simulator's `speed` must be a number >= 0.
fn check_speed(speed: f64) -> Result<(), String> {
    if speed.is_finite() && speed >= 0.0 {
        Ok(())
    } else {
        Err(format!("source.speed = {speed} must be >= 0"))
    }
}

impl SimConfig {
    fn validate(&self, kind: AssetKind) -> Result<(), String> {
        check_speed(self.speed)?;
        if let Some(d) = self.duration_s
            && !(d.is_finite() && d > 0.0)
        {
            return Err(format!("source.duration_s = {d} must be > 0"));
        }
        let min_rate = match kind {
            AssetKind::Pump => pump_sim::PUMP_SAMPLE_RATE_HZ,
            AssetKind::Bridge => 50.0,
        };
        if let Some(rate) = self.sample_rate_hz
            && !(rate.is_finite() && (min_rate..=1_000_000.0).contains(&rate))
        {
            return Err(format!(
                "source.sample_rate_hz = {rate} must be within {min_rate}..1000000 for a simulated {}",
                kind.as_str()
            ));
        }
        if let Some(f) = &self.fault {
            let fits = match f.kind {
                FaultKind::BearingOuterRace
                | FaultKind::BearingInnerRace
                | FaultKind::Imbalance => kind == AssetKind::Pump,
                FaultKind::StiffnessLoss => kind == AssetKind::Bridge,
                FaultKind::SensorStuck => true,
            };
            if !fits {
                return Err(format!(
                    "fault {:?} cannot be simulated on a {}",
                    f.kind,
                    kind.as_str()
                ));
            }
            if !(f.onset_s.is_finite()
                && f.onset_s >= 0.0
                && f.ramp_s.is_finite()
                && f.ramp_s >= 0.0)
            {
                return Err("fault.onset_s and fault.ramp_s must be >= 0".into());
            }
            if !(0.0..=1.0).contains(&f.severity) {
                return Err(format!(
                    "fault.severity = {} must be within 0..1",
                    f.severity
                ));
            }
        }
        Ok(())
    }
}

/// A sensor whose output froze: once stuck, it repeats the first value it
/// froze at for ever.
#[derive(Debug, Default)]
struct StuckSensor {
    frozen_at: Option<f32>,
}

impl StuckSensor {
    fn apply(&mut self, stuck: bool, samples: &mut [f32]) {
        if stuck && let Some(&first) = samples.first() {
            let value = *self.frozen_at.get_or_insert(first);
            samples.iter_mut().for_each(|v| *v = value);
        }
    }
}

/// Microseconds since the Unix epoch, now.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simulator_with_a_duration_ends_like_a_recording() {
        let config = SourceConfig::Sim(SimConfig {
            seed: 1,
            speed: 0.0,
            sample_rate_hz: None,
            duration_s: Some(1.0),
            fault: None,
        });
        let mut source = config
            .open(AssetKind::Bridge, 0, &AssetAnalysis::default())
            .unwrap();
        let mut samples = 0;
        for _ in 0..100 {
            match source.poll().unwrap() {
                SourcePoll::Block(b) => samples += b.vibration.len(),
                SourcePoll::End => break,
                SourcePoll::Idle => {}
            }
        }
        assert_eq!(
            samples as f64,
            source.sample_rate_hz(),
            "one second of signal"
        );
        assert_eq!(source.poll().unwrap(), SourcePoll::End);
        let SourceConfig::Sim(mut bad) = config else {
            unreachable!()
        };
        bad.duration_s = Some(0.0);
        assert!(
            bad.validate(AssetKind::Pump)
                .unwrap_err()
                .contains("duration_s")
        );
    }
}
