//! From a signed model package to a model this gateway may run.
//!
//! A package reaches a gateway from far away; before the gateway believes
//! anything it says, [`protocol::package::open`] checks the signature
//! against the keys this gateway trusts and every file's hash. This module
//! then does what only the gateway can: load the ONNX graph in tract (which
//! runs the model's self-test vectors), check that the package's manifest
//! and the model's own `model.json` agree on every field they share (a
//! package cannot promise one input spec and ship another), that the model
//! fits the assets and feature pipeline it is meant for, and that it is not
//! an older version than the one running (a downgrade needs an engineer's
//! explicit rollback).

use std::path::Path;

use protocol::AssetKind;
use protocol::package::{
    self, CommissioningPolicy, MODEL_OUTPUTS, PACKAGE_FORMAT, PackageError, PackageManifest,
    SelfTestVector, SigningKey, VerifiedPackage, VerifyingKey, Version,
};
use thiserror::Error;

use crate::features::FeatureProfile;
use crate::model::{AnomalyModel, MANIFEST_FILE, ModelError};

/// Why a package cannot be run here.
#[derive(Debug, Error)]
pub enum PackageModelError {
    #[error(transparent)]
    Package(#[from] PackageError),
    #[error("package {package}: it has no file {file}")]
    MissingFile { package: String, file: String },
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("package {package}: its manifest and model.json disagree on {field}")]
    Disagree {
        package: String,
        field: &'static str,
    },
    #[error("package {package}: is for {kinds}, not {kind} assets")]
    WrongKind {
        package: String,
        kinds: String,
        kind: &'static str,
    },
    #[error(
        "package {package}: version {offered} is older than {running}, which runs now (a downgrade needs an engineer's rollback)"
    )]
    Downgrade {
        package: String,
        offered: Version,
        running: Version,
    },
}

/// Builds a signed package from a model folder (`model.json` and its ONNX
/// file). The model is loaded and self-tested first: an engineer's key never
/// signs a model that does not run.
pub fn package_dir(
    dir: &Path,
    key: &SigningKey,
    commissioning: CommissioningPolicy,
    created_at_ms: u64,
) -> Result<(PackageManifest, Vec<u8>), PackageModelError> {
    let model = AnomalyModel::load_dir(dir)?;
    let j = model.manifest();
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|error| ModelError::Read { path, error })
    };
    let version = Version::parse(&j.version).map_err(|reason| ModelError::Manifest {
        path: dir.join(MANIFEST_FILE),
        reason: format!("version: {reason}"),
    })?;
    let manifest = PackageManifest {
        format: PACKAGE_FORMAT,
        name: j.model_id.clone(),
        version,
        asset_kinds: vec![j.asset_kind],
        feature_profile: j.feature_profile.clone(),
        inputs: j.features.clone(),
        outputs: MODEL_OUTPUTS.iter().map(|s| s.to_string()).collect(),
        threshold: j.threshold,
        alarm_threshold: j.alarm_threshold,
        self_test: j
            .self_test
            .iter()
            .map(|v| SelfTestVector {
                input: v.input.clone(),
                score: v.score,
                tolerance: v.tolerance,
            })
            .collect(),
        commissioning,
        created_at_ms,
        files: Vec::new(),
    };
    let files = vec![
        (MANIFEST_FILE.to_owned(), read(MANIFEST_FILE)?),
        (j.onnx_file.clone(), read(&j.onnx_file)?),
    ];
    let bytes = package::seal(manifest, &files, key)?;
    let sealed = package::read_manifest_unverified(&bytes)?;
    Ok((sealed, bytes))
}

/// A package checked and loaded: the model is ready to score.
#[derive(Debug, Clone)]
pub struct PackagedModel {
    pub package: VerifiedPackage,
    pub model: AnomalyModel,
}

impl PackagedModel {
    /// `name version`.
    pub fn label(&self) -> String {
        let m = &self.package.manifest;
        format!("{} {}", m.name, m.version)
    }
}

/// Opens `bytes` as a package signed by one of `trusted`, and loads its
/// model (self-test included).
pub fn load(bytes: &[u8], trusted: &[VerifyingKey]) -> Result<PackagedModel, PackageModelError> {
    let package = package::open(bytes, trusted)?;
    let m = &package.manifest;
    let label = format!("{} {}", m.name, m.version);
    let missing = |file: &str| PackageModelError::MissingFile {
        package: label.clone(),
        file: file.to_owned(),
    };
    let manifest_json = package
        .file(MANIFEST_FILE)
        .ok_or_else(|| missing(MANIFEST_FILE))?;
    let origin = Path::new("package").join(&label);
    let model_json: crate::model::ModelManifest =
        serde_json::from_slice(manifest_json).map_err(|e| ModelError::Manifest {
            path: origin.join(MANIFEST_FILE),
            reason: e.to_string(),
        })?;
    let onnx = package
        .file(&model_json.onnx_file)
        .ok_or_else(|| missing(&model_json.onnx_file))?;
    let model = AnomalyModel::from_bytes(manifest_json, onnx, &origin)?;
    check_agreement(&package, &model_json, &label)?;
    Ok(PackagedModel { package, model })
}

/// The package manifest must describe exactly the model it ships.
fn check_agreement(
    package: &VerifiedPackage,
    j: &crate::model::ModelManifest,
    label: &str,
) -> Result<(), PackageModelError> {
    let m = &package.manifest;
    let disagree = |field| {
        Err(PackageModelError::Disagree {
            package: label.to_owned(),
            field,
        })
    };
    if j.model_id != m.name {
        return disagree("the name");
    }
    if Version::parse(&j.version).ok() != Some(m.version) {
        return disagree("the version");
    }
    if !m.asset_kinds.contains(&j.asset_kind) {
        return disagree("the asset kinds");
    }
    if j.feature_profile != m.feature_profile {
        return disagree("the feature profile");
    }
    if j.features != m.inputs {
        return disagree("the inputs");
    }
    if j.threshold != m.threshold || j.alarm_threshold != m.alarm_threshold {
        return disagree("the thresholds");
    }
    let same_tests = j.self_test.len() == m.self_test.len()
        && j.self_test
            .iter()
            .zip(&m.self_test)
            .all(|(a, b)| a.input == b.input && a.score == b.score && a.tolerance == b.tolerance);
    if !same_tests {
        return disagree("the self-test vectors");
    }
    Ok(())
}

impl PackagedModel {
    /// Checks that the model may replace `running` (if any) on an asset of
    /// `kind` whose features this gateway computes with `profile`; an older
    /// version only when `allow_downgrade` (an engineer's rollback).
    pub fn check_for(
        &self,
        kind: AssetKind,
        profile: &FeatureProfile,
        running: Option<Version>,
        allow_downgrade: bool,
    ) -> Result<(), PackageModelError> {
        let m = &self.package.manifest;
        if !m.asset_kinds.contains(&kind) {
            let kinds: Vec<&str> = m.asset_kinds.iter().map(|k| k.as_str()).collect();
            return Err(PackageModelError::WrongKind {
                package: self.label(),
                kinds: kinds.join(", "),
                kind: kind.as_str(),
            });
        }
        self.model.check_fits(kind, profile)?;
        if let Some(running) = running
            && m.version < running
            && !allow_downgrade
        {
            return Err(PackageModelError::Downgrade {
                package: self.label(),
                offered: m.version,
                running,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "model_package_tests.rs"]
mod tests;
