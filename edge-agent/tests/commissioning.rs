//! Commissioning in the real pipeline: a model that asks for it makes each
//! asset learn its baseline before it is judged, sets the thresholds from
//! the baseline's own scores, keeps what it learned across a restart, and
//! starts over for another model version.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use edge_agent::AnomalyModel;
use edge_agent::commissioning::{CommissioningStore, quantile};
use edge_agent::pipeline::{AssetPipeline, Outcome};
use edge_agent::source::{FaultConfig, FaultKind};
use edge_agent::window::Window;
use protocol::{AssetKind, CommissioningPhase, DetectorState, EventKind};
use store::SledStore;

mod common;

const BASELINE: usize = 30;

/// A copy of the shipped pump model whose manifest asks for commissioning
/// (and carries `version`).
fn commissioning_model(dir: &Path, version: &str) -> AnomalyModel {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/pump-anomaly");
    let folder = dir.join(format!("pump-{version}"));
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::copy(shipped.join("model.onnx"), folder.join("model.onnx")).unwrap();
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(shipped.join("model.json")).unwrap()).unwrap();
    manifest["version"] = version.into();
    manifest["commissioning"] = serde_json::json!({
        "baseline_windows": BASELINE,
        "threshold_quantile": 0.95,
        "threshold_margin": 1.5,
        "alarm_factor": 2.0,
    });
    std::fs::write(folder.join("model.json"), manifest.to_string()).unwrap();
    AnomalyModel::load_dir(&folder).unwrap()
}

fn shipped_model() -> AnomalyModel {
    AnomalyModel::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/pump-anomaly"))
        .unwrap()
}

fn pipeline(model: AnomalyModel) -> AssetPipeline {
    common::pipeline(AssetKind::Pump, model, 5120.0)
}

fn windows(seed: u64, fault: Option<FaultConfig>, seconds: usize) -> Vec<Window> {
    common::pump_windows(seed, fault, seconds)
}

fn store(dir: &Path) -> CommissioningStore {
    CommissioningStore::new(Arc::new(SledStore::open(dir).unwrap()))
}

#[test]
fn an_asset_learns_its_baseline_first_and_its_thresholds_come_from_its_own_scores() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = pipeline(commissioning_model(dir.path(), "2.0.0-c"));
    let ws = windows(4001, None, BASELINE + 60);
    for (i, w) in ws[..BASELINE].iter().enumerate() {
        let status = p.status().commissioning.expect("the model asks for it");
        assert_eq!(status.phase, CommissioningPhase::Baseline);
        assert_eq!(status.windows, i as u64);
        let (outcome, event) = p.process(w);
        assert_eq!(outcome, Outcome::Baseline(None), "window {i}");
        assert!(event.is_none());
    }
    let status = p.status().commissioning.unwrap();
    assert_eq!(status.phase, CommissioningPhase::Commissioned);
    assert_eq!(
        (status.windows, status.windows_needed),
        (BASELINE as u64, BASELINE as u64)
    );

    // The same windows scored by the same graph without commissioning give
    // the baseline scores; the thresholds must follow from them.
    let mut plain = pipeline(shipped_model());
    let scores: Vec<f64> = ws[..BASELINE]
        .iter()
        .map(|w| match plain.process(w).0 {
            Outcome::Scored(s) => s.score,
            other => panic!("{other:?}"),
        })
        .collect();
    let q = quantile(&scores, 0.95);
    let s = p.status();
    assert!((status.baseline_score_quantile.unwrap() - q).abs() < 1e-9 * q);
    assert!(
        (s.threshold - 1.5 * q).abs() < 1e-9 * q,
        "{} vs {q}",
        s.threshold
    );
    assert!((s.alarm_threshold - 2.0 * s.threshold).abs() < 1e-9 * q);

    // Then it is judged: a healthy minute raises nothing.
    for w in &ws[BASELINE..] {
        let (outcome, event) = p.process(w);
        assert!(matches!(outcome, Outcome::Scored(_)), "{outcome:?}");
        assert!(event.is_none(), "{event:?}");
    }
}

#[test]
fn a_commissioned_asset_alarms_on_a_bearing_fault() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = pipeline(commissioning_model(dir.path(), "2.0.0-c"));
    let fault = FaultConfig {
        kind: FaultKind::BearingOuterRace,
        onset_s: 60.0,
        ramp_s: 60.0,
        severity: 1.0,
    };
    let events: Vec<_> = windows(4002, Some(fault), 240)
        .iter()
        .filter_map(|w| p.process(w).1)
        .collect();
    let alarm = events
        .iter()
        .find(|e| e.state == DetectorState::Alarm)
        .unwrap_or_else(|| panic!("no alarm: {events:#?}"));
    assert_eq!(alarm.kind, EventKind::Anomaly);
    assert!(alarm.window_start_ms >= 1_700_000_060_000, "{alarm:?}");
    assert_eq!(alarm.top_features[0].name, "env_bpfo_g", "{alarm:#?}");
}

#[test]
fn what_was_learned_survives_a_restart_and_another_model_version_starts_over() {
    let dir = tempfile::tempdir().unwrap();
    let data: PathBuf = dir.path().join("data");
    let ws = windows(4003, None, BASELINE + 2);
    let learned = {
        let mut p = pipeline(commissioning_model(dir.path(), "2.0.0-c"))
            .with_commissioning_store(store(&data));
        for w in &ws[..BASELINE] {
            p.process(w);
        }
        p.status()
    };
    assert_eq!(
        learned.commissioning.as_ref().unwrap().phase,
        CommissioningPhase::Commissioned
    );

    // Restart: the same model resumes commissioned and judges at once.
    let mut p =
        pipeline(commissioning_model(dir.path(), "2.0.0-c")).with_commissioning_store(store(&data));
    let resumed = p.status();
    assert_eq!(resumed.commissioning, learned.commissioning);
    assert_eq!(
        (resumed.threshold, resumed.alarm_threshold),
        (learned.threshold, learned.alarm_threshold)
    );
    assert!(matches!(p.process(&ws[BASELINE]).0, Outcome::Scored(_)));
    drop(p);

    // Another version of the model: a new baseline.
    let mut p =
        pipeline(commissioning_model(dir.path(), "2.0.1-c")).with_commissioning_store(store(&data));
    let status = p.status().commissioning.unwrap();
    assert_eq!(
        (status.phase, status.windows),
        (CommissioningPhase::Baseline, 0)
    );
    assert_eq!(p.process(&ws[BASELINE + 1]).0, Outcome::Baseline(None));
}
