//! Helpers shared by the agent's integration tests (each test file is its
//! own crate and uses what it needs).
#![allow(dead_code)]

use std::process::{Command, Output};

use edge_agent::AnomalyModel;
use edge_agent::detector::DetectorConfig;
use edge_agent::features::AssetAnalysis;
use edge_agent::pipeline::{AssetIdentity, AssetPipeline, AssetSetup};
use edge_agent::sensor_health::SensorHealthConfig;
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
