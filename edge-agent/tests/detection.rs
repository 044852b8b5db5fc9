//! The shipped models in the real pipeline (windows, sensor checks, features,
//! tract, detector) on simulated assets the models never saw in training
//! (seeds 3000+; training used 1000-2200): healthy ones must stay quiet,
//! faulty ones must alarm, and the explanation must point at the physics.

use std::path::Path;

use edge_agent::AnomalyModel;
use edge_agent::detector::DetectorConfig;
use edge_agent::features::FeatureProfile;
use edge_agent::pipeline::{AssetIdentity, AssetPipeline};
use edge_agent::source::{FaultConfig, FaultKind, SimConfig, SourceConfig};
use edge_agent::window::Windower;
use protocol::{AnomalyEvent, AssetKind, DetectorState, EventKind};

fn model(kind: AssetKind) -> AnomalyModel {
    let name = match kind {
        AssetKind::Pump => "pump-anomaly",
        AssetKind::Bridge => "bridge-anomaly",
    };
    AnomalyModel::load_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../models")
            .join(name),
    )
    .unwrap()
}

/// Runs `seconds` of a simulated asset through the pipeline; returns the
/// events raised.
fn simulate(
    kind: AssetKind,
    seed: u64,
    fault: Option<FaultConfig>,
    seconds: f64,
) -> Vec<AnomalyEvent> {
    let source_config = SourceConfig::Sim(SimConfig {
        seed,
        speed: 0.0,
        shaft_rpm: 1480.0,
        fault,
    });
    let mut source = source_config.open(kind, 1_700_000_000_000_000).unwrap();
    let rate = source.sample_rate_hz();
    let identity = AssetIdentity {
        site: "test".into(),
        gateway: "gw".into(),
        asset_id: format!("A-{seed}"),
        kind,
        vibration_channel: "accel".into(),
        temperature_channel: "temp".into(),
    };
    let mut pipeline =
        AssetPipeline::new(identity, model(kind), DetectorConfig::default(), rate).unwrap();
    let (len, hop) = FeatureProfile::for_kind(kind).window_samples(rate);
    let mut windower = Windower::new(len, hop, rate);
    let mut events = Vec::new();
    let mut t = 0.0;
    while t < seconds {
        let block = source.next_block().unwrap().unwrap();
        t += block.vibration.len() as f64 / rate;
        for window in windower.push(block) {
            events.extend(pipeline.process(&window).1);
        }
    }
    events
}

fn fault(kind: FaultKind, onset_s: f64, ramp_s: f64) -> Option<FaultConfig> {
    Some(FaultConfig {
        kind,
        onset_s,
        ramp_s,
        severity: 1.0,
    })
}

#[test]
fn healthy_pumps_raise_nothing_in_ten_minutes() {
    for seed in [3001, 3002, 3003] {
        let events = simulate(AssetKind::Pump, seed, None, 600.0);
        assert!(events.is_empty(), "pump {seed}: {events:#?}");
    }
}

#[test]
fn healthy_bridges_raise_nothing_in_thirty_minutes() {
    for seed in [3101, 3102, 3103] {
        let events = simulate(AssetKind::Bridge, seed, None, 1800.0);
        assert!(events.is_empty(), "bridge {seed}: {events:#?}");
    }
}

#[test]
fn bearing_fault_escalates_to_alarm_explained_by_impact_features() {
    let events = simulate(
        AssetKind::Pump,
        3011,
        fault(FaultKind::BearingOuterRace, 30.0, 120.0),
        200.0,
    );
    let alarm = events
        .iter()
        .find(|e| e.state == DetectorState::Alarm)
        .unwrap_or_else(|| panic!("no alarm: {events:#?}"));
    assert_eq!(alarm.kind, EventKind::Anomaly);
    assert!(alarm.score >= alarm.alarm_threshold);
    // Nothing before the fault existed.
    assert!(
        events
            .iter()
            .all(|e| e.window_start_ms >= 1_700_000_000_000 + 30_000)
    );
    let top: Vec<&str> = alarm.top_features.iter().map(|f| f.name.as_str()).collect();
    let impact_features = [
        "kurtosis",
        "crest_factor",
        "accel_peak_g",
        "band_1000_2500hz_rms_g",
        "band_500_1000hz_rms_g",
    ];
    assert!(impact_features.contains(&top[0]), "explained by {top:?}");
}

#[test]
fn imbalance_escalates_to_alarm_explained_by_the_shaft_band() {
    let events = simulate(
        AssetKind::Pump,
        3012,
        fault(FaultKind::Imbalance, 30.0, 120.0),
        200.0,
    );
    let alarm = events
        .iter()
        .find(|e| e.state == DetectorState::Alarm)
        .unwrap_or_else(|| panic!("no alarm: {events:#?}"));
    assert_eq!(
        alarm.top_features[0].name, "band_10_100hz_rms_g",
        "{alarm:#?}"
    );
    let f = &alarm.top_features[0];
    // Caught early: the 1x line is well above what the other features imply.
    assert!(f.value > 1.3 * f.expected, "{f:?}");
}

#[test]
fn stiffness_loss_escalates_to_alarm_explained_by_the_first_mode() {
    let events = simulate(
        AssetKind::Bridge,
        3111,
        fault(FaultKind::StiffnessLoss, 60.0, 60.0),
        400.0,
    );
    let alarm = events
        .iter()
        .find(|e| e.state == DetectorState::Alarm)
        .unwrap_or_else(|| panic!("no alarm: {events:#?}"));
    let names: Vec<&str> = alarm.top_features.iter().map(|f| f.name.as_str()).collect();
    let mode = alarm
        .top_features
        .iter()
        .find(|f| f.name == "mode1_freq_hz")
        .unwrap_or_else(|| panic!("mode 1 not among {names:?}"));
    // 25 % stiffness loss: the mode falls by 1 - sqrt(0.75) = 13 %.
    assert!(mode.value < 0.92 * mode.expected, "{mode:?}");
}

#[test]
fn stuck_sensor_is_a_sensor_fault_not_an_anomaly() {
    let events = simulate(
        AssetKind::Pump,
        3013,
        fault(FaultKind::SensorStuck, 20.0, 0.0),
        60.0,
    );
    assert_eq!(events.len(), 1, "{events:#?}");
    let e = &events[0];
    assert_eq!(
        (e.kind, e.state),
        (EventKind::SensorFault, DetectorState::SensorFault)
    );
    assert!(e.detail.as_deref().unwrap().contains("flat-lined"), "{e:?}");
}
