//! The shipped models in the real pipeline (windows, sensor checks, features,
//! tract, detector) on simulated assets the models never saw in training
//! (seeds 3000+; training used 1000-2200): healthy ones must stay quiet,
//! faulty ones must alarm, and the explanation must point at the physics.

use std::path::Path;

use edge_agent::AnomalyModel;
use edge_agent::features::AssetAnalysis;
use edge_agent::features::FeatureProfile;
use edge_agent::source::{
    CsvReplayConfig, FaultConfig, FaultKind, SimConfig, Source, SourceConfig, SourcePoll,
};
use edge_agent::window::Windower;
use protocol::{AnomalyEvent, AssetKind, DetectorState, EventKind};

mod common;

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
    let source = sim(seed, fault)
        .open(kind, 1_700_000_000_000_000, &AssetAnalysis::default())
        .unwrap();
    run(kind, source, seconds)
}

fn sim(seed: u64, fault: Option<FaultConfig>) -> SourceConfig {
    SourceConfig::Sim(SimConfig {
        seed,
        speed: 0.0,
        sample_rate_hz: None,
        duration_s: None,
        fault,
    })
}

/// Runs up to `seconds` of a source through the pipeline; returns the events.
fn run(kind: AssetKind, mut source: Box<dyn Source>, seconds: f64) -> Vec<AnomalyEvent> {
    let rate = source.sample_rate_hz();
    let mut pipeline = common::pipeline(kind, model(kind), rate);
    let (len, hop) = FeatureProfile::for_kind(kind).window_samples(rate);
    let mut windower = Windower::new(len, hop, rate);
    let mut events = Vec::new();
    let mut t = 0.0;
    while t < seconds {
        let block = match source.poll().unwrap() {
            SourcePoll::Block(b) => b,
            SourcePoll::Idle => continue,
            SourcePoll::End => break,
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
    // The envelope at the outer-race defect frequency names the fault.
    let top = &alarm.top_features[0];
    assert_eq!(top.name, "env_bpfo_g", "{alarm:#?}");
    assert!(top.value > 3.0 * top.expected, "{top:?}");
}

#[test]
fn inner_race_fault_is_explained_by_the_bpfi_envelope() {
    let events = simulate(
        AssetKind::Pump,
        3014,
        fault(FaultKind::BearingInnerRace, 30.0, 120.0),
        200.0,
    );
    let alarm = events
        .iter()
        .find(|e| e.state == DetectorState::Alarm)
        .unwrap_or_else(|| panic!("no alarm: {events:#?}"));
    let names: Vec<&str> = alarm.top_features.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names[0], "env_bpfi_g", "{alarm:#?}");
    assert!(!names.contains(&"env_bpfo_g"), "{names:?}");
}

#[test]
fn imbalance_escalates_to_alarm_explained_by_velocity_and_the_shaft_band() {
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
    let f = &alarm.top_features[0];
    assert!(
        ["velocity_rms_mm_s", "band_10_100hz_rms_g"].contains(&f.name.as_str()),
        "{alarm:#?}"
    );
    // Caught early: well above its typical value.
    assert!(f.value > 1.5 * f.expected, "{f:?}");
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
    let mut recorder = sim(3021, fault)
        .open(AssetKind::Pump, 0, &AssetAnalysis::default())
        .unwrap();
    let rate = recorder.sample_rate_hz();
    let mut csv = String::from("time_s,accel_g,temp_c\n");
    let mut n = 0u64;
    while (n as f64) < 90.0 * rate {
        let block = recorder.poll().unwrap().block();
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
    .open(
        AssetKind::Pump,
        1_700_000_000_000_000,
        &AssetAnalysis::default(),
    )
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
