//! The agent binary refuses bad configs and models at start-up with one line
//! that names the file and the problem, and `check` accepts a good config.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::agent;

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
}

fn config(dir: &Path, model: &Path) -> PathBuf {
    let path = dir.join("gateway.toml");
    std::fs::write(
        &path,
        format!(
            "site = \"s\"\ngateway = \"g\"\n[mqtt]\nport = 1\n[[assets]]\nid = \"P-1\"\nkind = \"pump\"\nmodel = \"{}\"\nsource = {{ type = \"sim\", seed = 1 }}\n",
            model.display()
        ),
    )
    .unwrap();
    path
}

/// Fails the test with the run's stderr unless it succeeded.
fn assert_succeeded(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The single stderr line of a failed run.
fn failure_line(out: &Output) -> String {
    assert!(!out.status.success(), "expected failure");
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    assert_eq!(stderr.lines().count(), 1, "more than one line: {stderr}");
    stderr
}

#[test]
fn missing_config_is_one_line_naming_the_file() {
    let line = failure_line(&agent(&["run", "--config", "/nonexistent/gw.toml"]));
    assert!(
        line.contains("config file /nonexistent/gw.toml: cannot read"),
        "{line}"
    );
}

#[test]
fn invalid_config_is_one_line_with_the_location() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "site = \"s\"\ngateway = \"g\"\n[mqtt]\nport = \"x\"\n",
    )
    .unwrap();
    let line = failure_line(&agent(&["run", "--config", path.to_str().unwrap()]));
    assert!(line.contains(&path.display().to_string()), "{line}");
    assert!(line.contains("line 4"), "{line}");
}

#[test]
fn missing_model_is_one_line_naming_the_model_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), &dir.path().join("no-such-model"));
    let line = failure_line(&agent(&["run", "--config", path.to_str().unwrap()]));
    assert!(
        line.contains("no-such-model/model.json: cannot read"),
        "{line}"
    );
}

#[test]
fn corrupt_model_is_one_line_naming_the_onnx_file() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir(&model).unwrap();
    std::fs::copy(
        models().join("pump-anomaly/model.json"),
        model.join("model.json"),
    )
    .unwrap();
    std::fs::write(model.join("model.onnx"), b"definitely not onnx").unwrap();
    let path = config(dir.path(), &model);
    let line = failure_line(&agent(&["run", "--config", path.to_str().unwrap()]));
    assert!(
        line.contains("model/model.onnx: not a usable ONNX graph"),
        "{line}"
    );
}

#[test]
fn check_accepts_a_good_config_and_loads_its_models() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), &models().join("pump-anomaly"));
    let out = agent(&["check", "--config", path.to_str().unwrap()]);
    assert_succeeded(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ok, gateway g at site s, 1 asset(s)"),
        "{stdout}"
    );
}

#[test]
fn features_export_writes_the_profile_header_and_one_row_per_window() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), &models().join("pump-anomaly"));
    let csv = dir.path().join("features.csv");
    let out = agent(&[
        "features",
        "--config",
        path.to_str().unwrap(),
        "--seconds",
        "5",
        "--output",
        csv.to_str().unwrap(),
    ]);
    assert_succeeded(&out);
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "asset_id,window_start_ms,accel_rms_g,accel_peak_g,crest_factor,kurtosis,skewness,velocity_rms_mm_s,band_10_100hz_rms_g,band_100_500hz_rms_g,band_500_1000hz_rms_g,band_1000_2500hz_rms_g,env_bpfo_g,env_bpfi_g,env_bsf_g,env_ftf_g,temperature_c"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 5, "{text}");
    assert!(
        rows.iter()
            .all(|r| r.starts_with("P-1,") && r.split(',').count() == 17)
    );
}

#[test]
fn the_example_config_is_valid_and_its_models_load() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/pump-station.toml");
    let out = agent(&["check", "--config", example.to_str().unwrap()]);
    assert_succeeded(&out);
}

#[test]
fn a_model_failing_its_self_test_is_one_line_naming_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tampered-model");
    std::fs::create_dir(&model).unwrap();
    std::fs::copy(
        models().join("pump-anomaly/model.onnx"),
        model.join("model.onnx"),
    )
    .unwrap();
    let manifest = std::fs::read_to_string(models().join("pump-anomaly/model.json")).unwrap();
    let mut m: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let score = m["self_test"][0]["score"].as_f64().unwrap();
    m["self_test"][0]["score"] = (score * 2.0).into();
    std::fs::write(model.join("model.json"), m.to_string()).unwrap();
    let path = config(dir.path(), &model);
    let line = failure_line(&agent(&["run", "--config", path.to_str().unwrap()]));
    assert!(line.contains("self-test 0 failed"), "{line}");
    assert!(line.contains("tampered-model"), "{line}");
}

#[test]
fn a_pump_sampled_too_slowly_for_its_profile_is_refused_at_start_up() {
    // An ADXL355 node at its top output data rate (4 kHz) cannot resolve the
    // pump profile's 1-2.5 kHz band: the agent must say so, not score it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(
        &path,
        format!(
            "site = \"s\"\ngateway = \"g\"\n[mqtt]\nport = 1\n[[assets]]\nid = \"P-1\"\nkind = \"pump\"\nmodel = \"{}\"\nsource = {{ type = \"node\", connect = \"tcp://127.0.0.1:1\", node_id = 1, sample_rate_hz = 4000 }}\n",
            models().join("pump-anomaly").display()
        ),
    )
    .unwrap();
    let line = failure_line(&agent(&["check", "--config", path.to_str().unwrap()]));
    assert!(
        line.contains("asset P-1") && line.contains("2500 Hz") && line.contains("4000 Hz"),
        "{line}"
    );
}

#[test]
fn features_from_a_raw_float32_recording_match_the_analytic_sine() {
    // Three seconds of a 0.3 g, 157 Hz sine as headerless f32le at 5120 S/s.
    let dir = tempfile::tempdir().unwrap();
    let (fs, freq, amp) = (5120.0, 157.0, 0.3);
    let raw: Vec<u8> = (0..3 * 5120)
        .flat_map(|i| {
            let x = amp * (std::f64::consts::TAU * freq * i as f64 / fs).sin();
            (x as f32).to_le_bytes()
        })
        .collect();
    let input = dir.path().join("recording.f32");
    std::fs::write(&input, raw).unwrap();
    let path = config(dir.path(), &models().join("pump-anomaly"));
    let csv = dir.path().join("features.csv");
    let out = agent(&[
        "features",
        "--config",
        path.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--format",
        "f32le",
        "--sample-rate",
        "5120",
        "--temperature-c",
        "40",
        "--output",
        csv.to_str().unwrap(),
    ]);
    assert_succeeded(&out);
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').skip(1).map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 3, "one row per one-second window: {text}");
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap() - 1;
    let velocity = amp * 9.80665e3 / (std::f64::consts::TAU * freq) / 2f64.sqrt();
    for row in &rows {
        let close = |got: f64, want: f64| (got - want).abs() <= 1e-3 * want;
        assert!(
            close(row[column("accel_rms_g")], amp / 2f64.sqrt()),
            "{row:?}"
        );
        assert!(close(row[column("velocity_rms_mm_s")], velocity), "{row:?}");
        assert!(
            close(row[column("band_100_500hz_rms_g")], amp / 2f64.sqrt()),
            "{row:?}"
        );
        assert!(row[column("band_1000_2500hz_rms_g")] < 1e-6, "{row:?}");
        assert_eq!(row[column("temperature_c")], 40.0);
    }
}

/// `bench` (here on the debug build, for its output, not its figures) ends
/// with the one comparable line, whose figures agree with the lines above.
#[test]
fn bench_ends_with_the_comparable_line() {
    let model = models().join("pump-anomaly");
    let out = agent(&[
        "bench",
        "--model",
        model.to_str().unwrap(),
        "--seconds",
        "0.2",
        "--rss-channels",
        "2",
        "--rss-seconds",
        "1",
    ]);
    assert_succeeded(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let figures: Vec<(&str, f64)> = last
        .split(' ')
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("key=value");
            (k, v.parse().expect("a number"))
        })
        .collect();
    let names: Vec<&str> = figures.iter().map(|f| f.0).collect();
    assert_eq!(
        names,
        ["channels_per_core", "full_vs_fft", "rss_mb"],
        "{last}"
    );
    let (channels, ratio, rss) = (figures[0].1, figures[1].1, figures[2].1);
    // The pipeline runs the same FFT and more: it cannot be cheaper.
    assert!(channels > 0.0 && ratio > 1.0 && rss > 1.0, "{last}");
    assert!(
        stdout.contains(&format!("({ratio:.2}x the bare FFT)")),
        "{stdout}"
    );
    assert!(stdout.contains("with 2 channels running"), "{stdout}");
}
