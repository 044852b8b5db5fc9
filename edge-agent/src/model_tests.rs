use super::*;
use crate::features::{BRIDGE_MODAL_V1, BRIDGE_V2, PUMP_V2};

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(name)
}

/// A copy of a shipped model folder that a test may break.
fn copy_of(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["model.json", "model.onnx"] {
        std::fs::copy(shipped(name).join(f), dir.path().join(f)).unwrap();
    }
    dir
}

fn edit_manifest(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join(MANIFEST_FILE);
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
}

#[test]
fn the_process_model_asks_for_commissioning_and_refuses_a_window_profile() {
    let model = AnomalyModel::load_dir(&shipped("pump-process-anomaly")).unwrap();
    let spec = model
        .manifest()
        .commissioning
        .clone()
        .expect("commissioned");
    assert!(spec.feature_scaling);
    assert_eq!(
        spec.scaling_statistic,
        crate::commissioning::ScalingStatistic::MeanStd
    );
    let names = crate::features::process::PUMP_PROCESS_V2.feature_names();
    assert_eq!(model.manifest().features, names);
    // Standardised features in, their sum of squares out.
    let scored = model.score(&[1.0, -2.0, 0.0, 0.0, 0.0, 0.5]).unwrap();
    assert!((scored.score - 5.25).abs() < 1e-5, "{scored:?}");
    let err = model
        .check_fits(AssetKind::Pump, &PUMP_V2)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("trained on feature profile pump-process-v2"),
        "{err}"
    );
}

#[test]
fn the_bearing_model_runs_on_short_windows_and_ignores_temperature() {
    let model = AnomalyModel::load_dir(&shipped("bearing-anomaly")).unwrap();
    let profile = FeatureProfile::for_model(AssetKind::Pump, &model.manifest().feature_profile);
    assert_eq!(profile.name, "bearing-v1");
    model.check_fits(AssetKind::Pump, profile).unwrap();
    let mut z = vec![0.0; 15];
    z[14] = 100.0; // temperature, standardised
    assert_eq!(model.score(&z).unwrap().score, 0.0);
    z[10] = 3.0; // env_bpfo_g
    assert!((model.score(&z).unwrap().score - 9.0).abs() < 1e-5);
    // One-sided: a bearing quieter than its baseline is not failing.
    z[10] = -3.0;
    assert_eq!(model.score(&z).unwrap().score, 0.0);
}

#[test]
fn the_bridge_modal_model_counts_only_falls_of_the_modes_and_learns_covariates() {
    let model = AnomalyModel::load_dir(&shipped("bridge-modal-anomaly")).unwrap();
    let profile = FeatureProfile::for_model(AssetKind::Bridge, &model.manifest().feature_profile);
    assert_eq!(profile.name, "bridge-modal-v1");
    model
        .check_fits(AssetKind::Bridge, &BRIDGE_MODAL_V1)
        .unwrap();
    let spec = model
        .manifest()
        .commissioning
        .clone()
        .expect("commissioned");
    let covariates: Vec<&str> = spec.covariates.iter().map(|c| c.feature.as_str()).collect();
    assert_eq!(covariates, ["temperature_c", "accel_rms_g"]);
    let mut z = vec![0.0; 15];
    z[0] = 50.0; // accel_rms_g: traffic, not the structure
    z[11] = 4.0; // mode1_freq_hz above its line: stiffer, not damaged
    assert_eq!(model.score(&z).unwrap().score, 0.0);
    z[11] = -4.0;
    z[12] = -1.0;
    assert!((model.score(&z).unwrap().score - 17.0).abs() < 1e-4);
}

#[test]
fn a_covariate_that_is_not_a_feature_is_refused_at_load() {
    let dir = copy_of("bridge-modal-anomaly");
    edit_manifest(dir.path(), |v| {
        v["commissioning"]["covariates"][0]["feature"] = "deck_temperature_c".into();
    });
    let err = AnomalyModel::load_dir(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("covariates: deck_temperature_c is not one of the model's features"),
        "{err}"
    );
    let dir = copy_of("bridge-modal-anomaly");
    edit_manifest(dir.path(), |v| {
        v["commissioning"]["feature_scaling"] = false.into();
    });
    let err = AnomalyModel::load_dir(dir.path()).unwrap_err().to_string();
    assert!(err.contains("covariates need feature_scaling"), "{err}");
}

#[test]
fn shipped_models_load_pass_self_test_and_fit_their_profiles() {
    for (name, kind, profile) in [
        ("pump-anomaly", AssetKind::Pump, &PUMP_V2),
        ("bridge-anomaly", AssetKind::Bridge, &BRIDGE_V2),
    ] {
        let model = AnomalyModel::load_dir(&shipped(name)).unwrap();
        model.check_fits(kind, profile).unwrap();
        assert_eq!(model.manifest().model_id, name);
        let other = if kind == AssetKind::Pump {
            AssetKind::Bridge
        } else {
            AssetKind::Pump
        };
        let err = model.check_fits(other, profile).unwrap_err().to_string();
        assert!(
            err.contains(&format!("is for {} assets", kind.as_str())),
            "{err}"
        );
    }
}

#[test]
fn contributions_are_non_negative_and_add_up_to_the_score() {
    let model = AnomalyModel::load_dir(&shipped("pump-anomaly")).unwrap();
    for v in &model.manifest().self_test {
        let s = model.score(&v.input).unwrap();
        assert!(s.contributions.iter().all(|&c| c >= 0.0), "{s:?}");
        let sum: f64 = s.contributions.iter().sum();
        assert!(
            (sum - s.score).abs() <= 1e-3 * s.score.max(1.0),
            "{sum} vs {}",
            s.score
        );
        assert!(s.expected.iter().all(|e| e.is_finite()), "{s:?}");
    }
}

#[test]
fn a_feature_far_from_normal_gets_the_largest_share_and_a_plausible_expectation() {
    let model = AnomalyModel::load_dir(&shipped("bridge-anomaly")).unwrap();
    let names = BRIDGE_V2.feature_names();
    let mode = names.iter().position(|n| n == "mode1_freq_hz").unwrap();
    let healthy = model.manifest().self_test[0].input.clone();
    let mut damaged = healthy.clone();
    damaged[mode] *= 0.85;
    let base = model.score(&healthy).unwrap();
    let s = model.score(&damaged).unwrap();
    assert!(s.score > 4.0 * base.score, "{} vs {}", s.score, base.score);
    let top = (0..names.len())
        .max_by(|&a, &b| s.contributions[a].total_cmp(&s.contributions[b]))
        .unwrap();
    assert_eq!(names[top], "mode1_freq_hz");
    // The model expects roughly the healthy frequency, not the damaged one.
    let expected = s.expected[mode];
    assert!(
        (expected - healthy[mode]).abs() < (expected - damaged[mode]).abs(),
        "expected {expected}, healthy {}, damaged {}",
        healthy[mode],
        damaged[mode]
    );
}

#[test]
fn a_kept_run_state_scores_like_a_fresh_one_whatever_came_before() {
    let model = AnomalyModel::load_dir(&shipped("pump-anomaly")).unwrap();
    let inputs: Vec<Vec<f64>> = model
        .manifest()
        .self_test
        .iter()
        .map(|v| v.input.clone())
        .collect();
    // The kept states, run over the vectors in turn from two clones and
    // interleaved with refused calls, against a newly loaded model (a new
    // state) per call.
    let other = model.clone();
    for round in 0..2 {
        for input in &inputs {
            assert!(model.score(&[1.0]).is_err());
            let fresh = AnomalyModel::load_dir(&shipped("pump-anomaly"))
                .unwrap()
                .score(input)
                .unwrap();
            assert_eq!(model.score(input).unwrap(), fresh, "round {round}");
            assert_eq!(other.score(input).unwrap(), fresh, "round {round}");
        }
    }
    // The shipped graph keeps no state between runs, so its states are
    // pooled; one thread scoring needs only one.
    assert!(model.reuse_states);
    assert_eq!(model.idle_states.lock().unwrap().len(), 1);
}

#[test]
fn wrong_input_length_is_an_error_not_a_panic() {
    let model = AnomalyModel::load_dir(&shipped("pump-anomaly")).unwrap();
    let err = model.score(&[1.0, 2.0]).unwrap_err().to_string();
    assert!(err.contains("2 features given"), "{err}");
}

#[test]
fn a_missing_model_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = AnomalyModel::load_dir(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains(&dir.path().join("model.json").display().to_string()),
        "{err}"
    );
}

#[test]
fn a_corrupt_onnx_file_is_refused_with_its_path() {
    let dir = copy_of("pump-anomaly");
    std::fs::write(
        dir.path().join("model.onnx"),
        b"\x08\x07garbage, not protobuf",
    )
    .unwrap();
    let err = AnomalyModel::load_dir(dir.path()).unwrap_err();
    assert!(matches!(err, ModelError::Onnx { .. }), "{err}");
    assert!(err.to_string().contains("model.onnx"), "{err}");
}

#[test]
fn a_model_that_does_not_reproduce_its_self_test_is_refused() {
    let dir = copy_of("pump-anomaly");
    edit_manifest(dir.path(), |m| {
        let s = m["self_test"][1]["score"].as_f64().unwrap();
        m["self_test"][1]["score"] = (s * 1.01).into();
    });
    let err = AnomalyModel::load_dir(dir.path()).unwrap_err();
    assert!(
        matches!(err, ModelError::SelfTest { index: 1, .. }),
        "{err}"
    );
}

#[test]
fn manifest_mistakes_are_refused_with_the_reason() {
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|m| m["feature_profile"] = "pump-v9".into()),
            "unknown feature profile `pump-v9`",
        ),
        (
            Box::new(|m| m["alarm_threshold"] = 1.0.into()),
            "thresholds must satisfy",
        ),
        (
            Box::new(|m| m["onnx_file"] = "../../etc/passwd".into()),
            "plain file name",
        ),
        (
            Box::new(|m| m["self_test"] = serde_json::json!([])),
            "no self-test",
        ),
        (
            Box::new(|m| m["surprise"] = 1.into()),
            "unknown field `surprise`",
        ),
        (
            Box::new(|m| m["model_id"] = "pump anomaly".into()),
            "model_id",
        ),
    ];
    for (edit, expected) in cases {
        let dir = copy_of("pump-anomaly");
        edit_manifest(dir.path(), edit);
        let err = AnomalyModel::load_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains(expected), "expected `{expected}` in: {err}");
        assert!(err.contains("model.json"), "{err}");
    }
}

#[test]
fn a_model_for_other_features_does_not_fit() {
    let dir = copy_of("pump-anomaly");
    edit_manifest(dir.path(), |m| {
        m["features"][0] = "velocity_rms_mm_s".into()
    });
    let model = AnomalyModel::load_dir(dir.path()).unwrap();
    let err = model
        .check_fits(AssetKind::Pump, &PUMP_V2)
        .unwrap_err()
        .to_string();
    assert!(err.contains("velocity_rms_mm_s"), "{err}");
}

#[test]
fn a_graph_whose_input_width_differs_from_the_manifest_is_refused_naming_both() {
    let dir = copy_of("pump-anomaly");
    edit_manifest(dir.path(), |m| {
        let features = m["features"].as_array_mut().unwrap();
        features.pop();
        for v in m["self_test"].as_array_mut().unwrap() {
            v["input"].as_array_mut().unwrap().pop();
        }
    });
    let err = AnomalyModel::load_dir(dir.path()).unwrap_err().to_string();
    assert!(err.contains("model.onnx"), "{err}");
    assert!(
        err.contains("declared as [1, 15], but the manifest lists 14 features"),
        "{err}"
    );
}

#[test]
fn a_graph_with_an_output_of_the_wrong_shape_is_refused_naming_it() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/short-output-model");
    let err = AnomalyModel::load_dir(&dir).unwrap_err().to_string();
    assert!(
        err.contains("output 1 (contributions) has shape [1, 1]; expected [1, 15]"),
        "{err}"
    );
}
