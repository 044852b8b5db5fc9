//! The shipped models in the real pipeline (windows, sensor checks, features,
//! tract, detector) on simulated assets the models never saw in training
//! (seeds 3000+; training used 1000-2200): healthy ones must stay quiet,
//! faulty ones must alarm, and the explanation must point at the physics.

use std::path::Path;

use edge_agent::AnomalyModel;
use edge_agent::detector::DetectorConfig;
use edge_agent::features::FeatureProfile;
use edge_agent::pipeline::{AssetIdentity, AssetPipeline};
use edge_agent::source::{
    CsvReplayConfig, FaultConfig, FaultKind, SimConfig, Source, SourceConfig,
};
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
    let source = sim(seed, fault).open(kind, 1_700_000_000_000_000).unwrap();
    run(kind, source, seconds)
}

fn sim(seed: u64, fault: Option<FaultConfig>) -> SourceConfig {
    SourceConfig::Sim(SimConfig {
        seed,
        speed: 0.0,
        shaft_rpm: 1480.0,
        fault,
    })
}

/// Runs up to `seconds` of a source through the pipeline; returns the events.
fn run(kind: AssetKind, mut source: Box<dyn Source>, seconds: f64) -> Vec<AnomalyEvent> {
    let rate = source.sample_rate_hz();
    let identity = AssetIdentity {
        site: "test".into(),
        gateway: "gw".into(),
        asset_id: "A-1".into(),
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
        let Some(block) = source.next_block().unwrap() else {
            break;
        };
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

#[test]
fn a_csv_recording_replays_through_the_same_pipeline() {
    // Record 90 s of a pump whose bearing fails from 40 s, with one
    // corrupted cell at 5 s, as a CSV file.
    let fault = fault(FaultKind::BearingOuterRace, 40.0, 60.0);
    let mut recorder = sim(3021, fault).open(AssetKind::Pump, 0).unwrap();
    let rate = recorder.sample_rate_hz();
    let mut csv = String::from("time_s,accel_g,temp_c\n");
    let mut n = 0u64;
    while (n as f64) < 90.0 * rate {
        let block = recorder.next_block().unwrap().unwrap();
        for (i, v) in block.vibration.iter().enumerate() {
            let t = n as f64 / rate;
            let temp = if i == 0 {
                block.temperature[0].to_string()
            } else {
                String::new()
            };
            let value = if n == 5 * 5120 {
                "ERR".to_owned()
            } else {
                v.to_string()
            };
            csv += &format!("{t},{value},{temp}\n");
            n += 1;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.csv");
    std::fs::write(&path, csv).unwrap();

    let replay = SourceConfig::Csv(CsvReplayConfig {
        path,
        sample_rate_hz: rate,
        vibration_column: "accel_g".into(),
        temperature_column: "temp_c".into(),
        speed: 0.0,
        separator: ',',
    })
    .open(AssetKind::Pump, 1_700_000_000_000_000)
    .unwrap();
    let events = run(AssetKind::Pump, replay, 1e9);
    let path: Vec<(EventKind, DetectorState)> = events.iter().map(|e| (e.kind, e.state)).collect();
    // The bad cell: one refused window, then back to normal; then the fault.
    assert_eq!(
        path[0],
        (EventKind::SensorFault, DetectorState::SensorFault),
        "{path:?}"
    );
    assert!(
        events[0].detail.as_deref().unwrap().contains("not finite"),
        "{:?}",
        events[0]
    );
    assert_eq!(
        path[1],
        (EventKind::SensorFault, DetectorState::Normal),
        "{path:?}"
    );
    assert!(
        path.contains(&(EventKind::Anomaly, DetectorState::Alarm)),
        "{path:?}"
    );
    let alarm = events
        .iter()
        .find(|e| e.state == DetectorState::Alarm)
        .unwrap();
    assert!(
        alarm.window_start_ms >= 1_700_000_000_000 + 40_000,
        "{alarm:?}"
    );
}

#[test]
fn a_bridge_sensor_sticking_mid_window_is_a_sensor_fault_not_an_anomaly() {
    // Windows are 20.48 s long: for a while each one is only partly stuck.
    for seed in [3121, 3122] {
        let events = simulate(
            AssetKind::Bridge,
            seed,
            fault(FaultKind::SensorStuck, 100.0, 0.0),
            300.0,
        );
        let kinds: Vec<(EventKind, DetectorState)> =
            events.iter().map(|e| (e.kind, e.state)).collect();
        assert_eq!(
            kinds,
            [(EventKind::SensorFault, DetectorState::SensorFault)],
            "seed {seed}"
        );
        // Caught once 0.5 s of flat line is inside a window (windows end
        // every 2 s).
        assert!(
            events[0].window_end_ms <= 1_700_000_000_000 + 103_000,
            "{:?}",
            events[0]
        );
    }
}
