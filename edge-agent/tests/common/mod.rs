//! Helpers shared by the agent's integration tests (each test file is its
//! own crate and uses what it needs).
#![allow(dead_code)]

use std::process::{Command, Output};

use edge_agent::AnomalyModel;
use edge_agent::detector::DetectorConfig;
use edge_agent::features::AssetAnalysis;
use edge_agent::features::FeatureProfile;
use edge_agent::pipeline::{AssetIdentity, AssetPipeline, AssetSetup};
use edge_agent::sensor_health::SensorHealthConfig;
use edge_agent::source::{FaultConfig, SimConfig, SourceConfig, SourcePoll};
use edge_agent::window::{Window, Windower};
use protocol::AssetKind;

/// Runs the agent binary with logging off.
pub fn agent(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edge-agent"))
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .expect("edge-agent runs")
}

/// Fails the test with the run's stderr unless it succeeded; its stdout.
pub fn succeeded(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The scoring lane of asset `A-1` of `kind` with default settings.
pub fn pipeline(kind: AssetKind, model: AnomalyModel, sample_rate_hz: f64) -> AssetPipeline {
    let setup = AssetSetup {
        identity: AssetIdentity {
            site: "test".into(),
            gateway: "gw".into(),
            asset_id: "A-1".into(),
            kind,
            vibration_channel: "accel".into(),
            temperature_channel: "temp".into(),
        },
        detector: DetectorConfig::default(),
        sensor_health: SensorHealthConfig::default(),
        analysis: AssetAnalysis::default(),
    };
    AssetPipeline::new(setup, model, sample_rate_hz).unwrap()
}

/// The first `count` one-second windows of simulated pump `seed` at 5120
/// S/s, starting at 2023-11-14T22:13:20Z.
pub fn pump_windows(seed: u64, fault: Option<FaultConfig>, count: usize) -> Vec<Window> {
    let mut source = SourceConfig::Sim(SimConfig {
        seed,
        speed: 0.0,
        sample_rate_hz: Some(5120.0),
        duration_s: None,
        fault,
    })
    .open(
        AssetKind::Pump,
        1_700_000_000_000_000,
        &AssetAnalysis::default(),
    )
    .unwrap();
    let (len, hop) = FeatureProfile::for_kind(AssetKind::Pump).window_samples(5120.0);
    let mut windower = Windower::new(len, hop, 5120.0);
    let mut out = Vec::new();
    while out.len() < count {
        if let SourcePoll::Block(b) = source.poll().unwrap() {
            out.extend(windower.push(b));
        }
    }
    out.truncate(count);
    out
}
