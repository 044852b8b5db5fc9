//! `edge-agent replay` on recordings of a simulated pump: one line per
//! window after the commissioning part, the fault flagged once it has
//! developed and not before, commissioning kept between replays in a data
//! folder, and bad arguments refused in one line.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::{agent, succeeded};

use edge_agent::features::AssetAnalysis;
use edge_agent::source::{FaultConfig, FaultKind, SimConfig, SourceConfig, SourcePoll};
use protocol::AssetKind;

const RATE: f64 = 5120.0;

fn model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/pump-anomaly")
}

/// Writes `seconds` of simulated pump `seed` as float32 little-endian.
fn record(path: &Path, seed: u64, fault: Option<FaultConfig>, seconds: usize) {
    let mut source = SourceConfig::Sim(SimConfig {
        seed,
        speed: 0.0,
        sample_rate_hz: Some(RATE),
        duration_s: None,
        fault,
    })
    .open(AssetKind::Pump, 0, &AssetAnalysis::default())
    .unwrap();
    let mut bytes = Vec::new();
    while bytes.len() < seconds * RATE as usize * 4 {
        if let SourcePoll::Block(b) = source.poll().unwrap() {
            bytes.extend(b.vibration.iter().flat_map(|x| x.to_le_bytes()));
        }
    }
    bytes.truncate(seconds * RATE as usize * 4);
    std::fs::write(path, bytes).unwrap();
}

fn replay(input: &Path, output: &Path, extra: &[&str]) -> Output {
    replay_as("pump-v2", &model(), input, output, extra)
}

/// A replay of a 5120 S/s recording with `profile` and `model`.
fn replay_as(profile: &str, model: &Path, input: &Path, output: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "replay",
        "--profile",
        profile,
        "--format",
        "f32le",
        "--sample-rate",
        "5120",
        "--temperature-c",
        "40",
        "--start",
        "2024-01-01T00:00:00Z",
        "--model",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    agent(&args)
}

/// (datetime, score, anomaly) of each row, after checking the header.
fn rows(path: &Path) -> Vec<(String, f64, u8)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("datetime,score,anomaly"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 3, "{l}");
            (
                f[0].to_owned(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_row_per_window_after_the_baseline_and_the_fault_flagged_once_developed() {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("pump.f32"), dir.path().join("out.csv"));
    let fault = FaultConfig {
        kind: FaultKind::BearingOuterRace,
        onset_s: 40.0,
        ramp_s: 10.0,
        severity: 1.0,
    };
    record(&input, 4201, Some(fault), 90);
    let stdout = succeeded(&replay(&input, &output, &["--commission-rows", "20"]));
    assert!(
        stdout.contains("wrote 70 rows") && stdout.contains("after 20 baseline windows"),
        "{stdout}"
    );
    assert!(stdout.contains("commissioning on 20 windows"), "{stdout}");
    let rows = rows(&output);
    assert_eq!(rows.len(), 70);
    // Window i (0-based over the recording) starts i seconds in.
    for (k, (datetime, score, _)) in rows.iter().enumerate() {
        let second = 20 + k;
        let expected = format!("2024-01-01T00:{:02}:{:02}.000Z", second / 60, second % 60);
        assert_eq!(datetime, &expected);
        assert!(score.is_finite() && *score >= 0.0, "{datetime}: {score}");
    }
    let at = |second: usize| &rows[second - 20];
    assert!(
        (20..40).all(|s| at(s).2 == 0),
        "anomaly before the fault: {rows:?}"
    );
    assert!((60..90).all(|s| at(s).2 == 1), "fault missed: {rows:?}");
    assert!(stdout.contains(&format!(
        "({} anomalous)",
        rows.iter().filter(|r| r.2 == 1).count()
    )));
}

#[test]
fn commissioning_is_kept_between_replays_in_a_data_folder() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let healthy = dir.path().join("healthy.f32");
    let faulty = dir.path().join("faulty.f32");
    record(&healthy, 4202, None, 40);
    let fault = FaultConfig {
        kind: FaultKind::BearingOuterRace,
        onset_s: 0.0,
        ramp_s: 0.0,
        severity: 1.0,
    };
    record(&faulty, 4202, Some(fault), 20);
    let data_arg = ["--data-dir", data.to_str().unwrap()];

    let first = succeeded(&replay(
        &healthy,
        &dir.path().join("healthy.csv"),
        &[&["--commission-rows", "20"][..], &data_arg].concat(),
    ));
    assert!(first.contains("(0 anomalous)"), "{first}");
    let second = succeeded(&replay(&faulty, &dir.path().join("faulty.csv"), &data_arg));
    // Judged at once with what the healthy recording taught.
    assert!(
        second.contains("wrote 20 rows") && second.contains("after 0 baseline windows"),
        "{second}"
    );
    let judged = |s: &str| {
        s.split("judged with ")
            .nth(1)
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(judged(&second), judged(&first));
    let rows = rows(&dir.path().join("faulty.csv"));
    // The detector needs three windows above the threshold to enter.
    assert!(rows[3..].iter().all(|r| r.2 == 1), "{rows:?}");

    // Without the data folder nothing was learned: the model's thresholds.
    let third = succeeded(&replay(&faulty, &dir.path().join("plain.csv"), &[]));
    assert!(
        third.contains("judged with the model's own thresholds"),
        "{third}"
    );
}

#[test]
fn bad_arguments_are_one_line_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("pump.f32");
    record(&input, 4203, None, 2);
    let output = dir.path().join("out.csv");
    let out = replay(&input, &output, &["--commission-rows", "5"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--commission-rows") && err.contains("too few"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let refused = |profile: &str, model: &Path| {
        let out = replay_as(profile, model, &input, &output, &[]);
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = refused("pump-v9", &model());
    assert!(
        err.contains(
            "pump-v9: unknown; known: pump-v2, bridge-v2, bearing-v1, bridge-modal-v1, pump-process-v1, pump-process-v2"
        ),
        "{err}"
    );
    // A model that judges standardised features has no thresholds of its
    // own to fall back on: without commissioning it is refused.
    let bearing = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/bearing-anomaly");
    let err = refused("bearing-v1", &bearing);
    assert!(
        err.contains("judges features standardised by each asset's commissioning"),
        "{err}"
    );
}

/// A table of process readings with one row per second: pressure steps up
/// by ten spreads at row 450; the commissioning part is the first 400 rows.
#[test]
fn a_process_table_is_judged_row_by_row_after_its_commissioning_rows() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("station.csv");
    let mut text = String::from("time,vib1,vib2,amps,bar,volts,flow,label\n");
    for i in 0..500u32 {
        // Deterministic noise in [-0.5, 0.5).
        let noise = |k: u32| ((i * 7919 + k * 104_729) % 1000) as f64 / 1000.0 - 0.5;
        let step = if i >= 450 { 10.0 } else { 0.0 };
        let cell = if i == 420 {
            "n/a".to_string()
        } else {
            format!("{}", 2.0 + noise(5))
        };
        text += &format!(
            "t{i},{},{},{},{},{},{cell},{}\n",
            0.03 + 0.001 * noise(1),
            0.04 + 0.001 * noise(2),
            1.3 + 0.01 * noise(3),
            1.0 + 0.01 * noise(4) + 0.01 * step,
            230.0 + noise(6),
            u8::from(i >= 450)
        );
    }
    std::fs::write(&input, text).unwrap();
    let output = dir.path().join("out.csv");
    let out = agent(&[
        "replay",
        "--profile",
        "pump-process-v2",
        "--format",
        "table",
        "--time-column",
        "time",
        "--columns",
        "vib1,vib2,amps,bar,volts,flow",
        "--input",
        input.to_str().unwrap(),
        "--commission-rows",
        "400",
        "--model",
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../models/pump-process-anomaly")
            .to_str()
            .unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]);
    let stdout = succeeded(&out);
    assert!(
        stdout.contains("wrote 100 rows") && stdout.contains("1 windows refused"),
        "{stdout}"
    );
    let text = std::fs::read_to_string(&output).unwrap();
    let lines: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(lines.len(), 100);
    assert_eq!(lines[20], "t420,,0", "the unreadable row");
    let anomaly = |i: usize| lines[i - 400].ends_with(",1");
    assert!((400..450).all(|i| !anomaly(i)), "{lines:?}");
    assert!((455..500).all(anomaly), "{lines:?}");
    assert!(lines[0].starts_with("t400,"), "{}", lines[0]);
}

/// Several recordings of one asset replay as its history: each window lies
/// within one recording, at that recording's own time, and the rows reach
/// the caller with the detector's state.
#[test]
fn segments_replay_in_order_and_no_window_spans_two() {
    use edge_agent::replay::{ReplayRequest, ReplaySegment, replay_rows};
    use edge_agent::source::RawReplayConfig;

    let dir = tempfile::tempdir().unwrap();
    let segment = |name: &str, seed: u64, start_ms: u64| {
        let path = dir.path().join(name);
        // 1.5 s: one one-second window each, where the two joined would
        // give three.
        record(&path, seed, None, 2);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..(1.5 * RATE) as usize * 4]).unwrap();
        ReplaySegment {
            source: SourceConfig::F32le(RawReplayConfig {
                path,
                sample_rate_hz: RATE,
                channels: 1,
                channel: 0,
                scale: 1.0,
                temperature_c: 40.0,
                speed: 0.0,
            }),
            start_us: start_ms * 1_000,
        }
    };
    let request = |segments| ReplayRequest {
        profile: &edge_agent::features::PUMP_V2,
        model: edge_agent::AnomalyModel::load_dir(&model()).unwrap(),
        segments,
        commission_rows: 0,
        data_dir: None,
        asset_id: "P-1".into(),
        analysis: AssetAnalysis::default(),
        detector: Default::default(),
        sensor_health: Default::default(),
    };
    // Contiguous on the clock (the second starts where the first ends):
    // joined they would hold three windows, apart they hold one each.
    let mut rows = Vec::new();
    let summary = replay_rows(
        request(vec![
            segment("a.f32", 1, 100_000),
            segment("b.f32", 2, 101_500),
        ]),
        &mut std::io::sink(),
        |r| rows.push(*r),
    )
    .unwrap();
    assert_eq!(summary.windows, 2, "{summary:?}");
    let starts: Vec<u64> = rows.iter().map(|r| r.start_us / 1_000).collect();
    assert_eq!(starts, [100_000, 101_500]);
    assert!(rows.iter().all(|r| r.score.is_some()), "{rows:?}");

    let err = replay_rows(request(Vec::new()), &mut std::io::sink(), |_| {}).unwrap_err();
    assert!(err.to_string().contains("no recording given"), "{err}");
}
