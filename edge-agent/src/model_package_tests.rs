use super::*;
use crate::features::FeatureProfile;

fn key(seed: u8) -> SigningKey {
    package::secret_key_from_seed([seed; 32])
}

fn model_dir(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(name)
}

fn pump_package() -> Vec<u8> {
    package_dir(
        &model_dir("pump-anomaly"),
        &key(1),
        CommissioningPolicy::Rerun,
        1,
    )
    .unwrap()
    .1
}

/// Seals `model.json` (as given) and the pump model's ONNX under a manifest
/// that says what `manifest_json` says.
fn custom_package(model_json: &str, manifest_json: &str) -> Vec<u8> {
    let (mut manifest, _) = package_dir(
        &model_dir("pump-anomaly"),
        &key(1),
        CommissioningPolicy::Keep,
        1,
    )
    .unwrap();
    let claims: crate::model::ModelManifest = serde_json::from_str(manifest_json).unwrap();
    manifest.threshold = claims.threshold;
    manifest.alarm_threshold = claims.alarm_threshold;
    manifest.self_test = claims
        .self_test
        .iter()
        .map(|v| SelfTestVector {
            input: v.input.clone(),
            score: v.score,
            tolerance: v.tolerance,
        })
        .collect();
    let onnx = std::fs::read(model_dir("pump-anomaly").join("model.onnx")).unwrap();
    package::seal(
        manifest,
        &[
            ("model.json".into(), model_json.as_bytes().to_vec()),
            ("model.onnx".into(), onnx),
        ],
        &key(1),
    )
    .unwrap()
}

fn pump_json() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(model_dir("pump-anomaly").join("model.json")).unwrap())
        .unwrap()
}

#[test]
fn a_packaged_model_loads_and_fits_its_assets() {
    let bytes = pump_package();
    let loaded = load(&bytes, &[key(1).verifying_key()]).unwrap();
    let m = &loaded.package.manifest;
    assert_eq!(
        (m.name.as_str(), m.version.to_string()),
        ("pump-anomaly", "2.0.0".into())
    );
    assert_eq!(loaded.model.manifest().model_id, "pump-anomaly");
    let profile = FeatureProfile::by_name(&m.feature_profile).unwrap();
    let older = Version::parse("1.0.0").unwrap();
    loaded
        .check_for(AssetKind::Pump, profile, Some(older), false)
        .unwrap();
    let err = loaded
        .check_for(AssetKind::Bridge, profile, None, false)
        .unwrap_err();
    assert!(err.to_string().contains("not bridge assets"), "{err}");
    let newer = Version::parse("2.0.1").unwrap();
    let err = loaded
        .check_for(AssetKind::Pump, profile, Some(newer), false)
        .unwrap_err();
    assert!(matches!(err, PackageModelError::Downgrade { .. }), "{err}");
    // An engineer's rollback may go back.
    loaded
        .check_for(AssetKind::Pump, profile, Some(newer), true)
        .unwrap();
}

#[test]
fn an_untrusted_package_is_refused_before_its_model_is_loaded() {
    let err = load(&pump_package(), &[key(2).verifying_key()]).unwrap_err();
    assert!(
        matches!(err, PackageModelError::Package(PackageError::UnknownKey(_))),
        "{err}"
    );
}

#[test]
fn a_model_failing_its_self_test_is_refused() {
    let mut j = pump_json();
    j["self_test"][0]["score"] = (j["self_test"][0]["score"].as_f64().unwrap() * 1.5).into();
    let text = j.to_string();
    let err = load(&custom_package(&text, &text), &[key(1).verifying_key()]).unwrap_err();
    assert!(
        matches!(
            err,
            PackageModelError::Model(ModelError::SelfTest { index: 0, .. })
        ),
        "{err}"
    );
}

#[test]
fn a_manifest_promising_other_thresholds_than_the_model_is_refused() {
    let real = pump_json().to_string();
    let mut claimed = pump_json();
    claimed["threshold"] = 1.0.into();
    let err = load(
        &custom_package(&real, &claimed.to_string()),
        &[key(1).verifying_key()],
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("disagree on the thresholds"),
        "{err}"
    );
}
