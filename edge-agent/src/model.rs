//! Anomaly models: an ONNX graph run by tract, described by a manifest.
//!
//! A model folder holds `model.json` (the manifest: id, version, the asset
//! kind and feature profile it was trained for, its feature names, its
//! thresholds and self-test vectors) and the ONNX file it names. Loading
//! checks everything that can be checked before the model sees live data:
//! the manifest's fields, that its features are exactly this agent's, that
//! the graph loads and has the expected outputs, and that it reproduces the
//! scores its training script computed for the self-test inputs.
//!
//! The ONNX contract: one input `[1, N]` float32 of raw features in profile
//! order; three outputs: the anomaly score `[1, 1]`, each feature's
//! contribution to it `[1, N]` (non-negative, summing to the score) and the
//! value the model expected for each feature `[1, N]`, in the feature's unit.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use protocol::{AssetKind, ModelRef, validate_id};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

use crate::features::FeatureProfile;

/// Name of the manifest inside a model folder.
pub const MANIFEST_FILE: &str = "model.json";

/// `model.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelManifest {
    pub model_id: String,
    pub version: String,
    pub asset_kind: AssetKind,
    pub feature_profile: String,
    pub features: Vec<String>,
    /// File name of the ONNX graph, relative to the manifest.
    pub onnx_file: String,
    /// Score from which the detector counts towards `warning`.
    pub threshold: f64,
    /// Score from which the detector counts towards `alarm`.
    pub alarm_threshold: f64,
    pub self_test: Vec<SelfTestVector>,
    /// Whether (and how) each asset is commissioned before it is judged;
    /// absent: the thresholds above are used as shipped.
    #[serde(default)]
    pub commissioning: Option<crate::commissioning::CommissioningSpec>,
    /// How the model was made (data, script, date); informational.
    #[serde(default)]
    pub training: serde_json::Value,
}

/// An input with the score the training script computed for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelfTestVector {
    pub input: Vec<f64>,
    pub score: f64,
    /// Largest accepted relative difference.
    pub tolerance: f64,
}

/// What a model says about one feature vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub score: f64,
    pub contributions: Vec<f64>,
    pub expected: Vec<f64>,
}

/// A model that cannot be used, naming the file and the problem.
#[derive(Debug, Error)]
pub enum ModelError {
    /// The I/O error is part of the message, not a chained source, so a
    /// report that prints the chain names it once.
    #[error("model file {path}: cannot read: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("model file {path}: {reason}")]
    Manifest { path: PathBuf, reason: String },
    #[error("model file {path}: not a usable ONNX graph: {reason}")]
    Onnx { path: PathBuf, reason: String },
    #[error("model {model}: {reason}")]
    Spec { model: String, reason: String },
    #[error("model {model}: self-test {index} failed: expected score {expected}, got {got}")]
    SelfTest {
        model: String,
        index: usize,
        expected: f64,
        got: f64,
    },
    #[error("model {model}: inference failed: {reason}")]
    Inference { model: String, reason: String },
}

/// A loaded, checked model, cheap to share between lanes.
#[derive(Clone)]
pub struct AnomalyModel {
    manifest: Arc<ModelManifest>,
    plan: Arc<TypedRunnableModel>,
    /// The folder it came from, for error messages.
    origin: PathBuf,
    /// Run states kept from one window to the next: setting one up (a slot
    /// per node, the constants put in place) and tearing it down cost a
    /// tenth of running this small graph. Shared by the clones (the assets
    /// the agent runs this model for, see `agent::prepare`), so there are
    /// only as many as run at once. Only for graphs whose operators keep no
    /// state between runs (tract clears every computed value); a graph with
    /// stateful operators (recurrent ones) gets a fresh state per window,
    /// see `reuse_states`. (tract keeps a matrix
    /// product's small scratch per thread and state, so a state that moves
    /// between scoring threads leaves one on each; bounded by threads times
    /// states.)
    idle_states: Arc<Mutex<Vec<TypedSimpleState>>>,
    /// Whether no operator of the graph keeps state between runs.
    reuse_states: bool,
}

impl std::fmt::Debug for AnomalyModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AnomalyModel({})", self.label())
    }
}

impl AnomalyModel {
    /// Loads `model.json` and its ONNX file from a folder.
    pub fn load_dir(dir: &Path) -> Result<Self, ModelError> {
        let manifest_path = dir.join(MANIFEST_FILE);
        let manifest_bytes = std::fs::read(&manifest_path).map_err(|error| ModelError::Read {
            path: manifest_path.clone(),
            error,
        })?;
        let manifest = parse_manifest(&manifest_bytes, &manifest_path)?;
        let onnx_path = dir.join(&manifest.onnx_file);
        let onnx = std::fs::read(&onnx_path).map_err(|error| ModelError::Read {
            path: onnx_path.clone(),
            error,
        })?;
        Self::from_parts(manifest, &onnx, dir)
    }

    /// Loads a model from bytes (e.g. compiled into a binary); `origin`
    /// names it in errors.
    pub fn from_bytes(manifest: &[u8], onnx: &[u8], origin: &Path) -> Result<Self, ModelError> {
        let manifest = parse_manifest(manifest, &origin.join(MANIFEST_FILE))?;
        Self::from_parts(manifest, onnx, origin)
    }

    fn from_parts(manifest: ModelManifest, onnx: &[u8], dir: &Path) -> Result<Self, ModelError> {
        let path = &dir.join(&manifest.onnx_file);
        let n = manifest.features.len();
        let onnx_err = |e: TractError| ModelError::Onnx {
            path: path.to_owned(),
            reason: format!("{e:#}"),
        };
        let graph = tract_onnx::onnx()
            .model_for_read(&mut &onnx[..])
            .map_err(onnx_err)?;
        // The graph's declared input must be what the manifest promises:
        // say so plainly rather than let inference fail on a broadcast.
        // Unknown (symbolic) dimensions are shown as -1 and not compared.
        let declared: Vec<i64> = graph
            .input_fact(0)
            .map_err(onnx_err)?
            .shape
            .dims()
            .map(|d| d.concretize().and_then(|d| d.to_i64().ok()).unwrap_or(-1))
            .collect();
        let fits = declared.len() == 2
            && [1, n as i64]
                .iter()
                .zip(&declared)
                .all(|(want, got)| *got == -1 || got == want);
        if !fits {
            return Err(ModelError::Onnx {
                path: path.to_owned(),
                reason: format!(
                    "its input is declared as {declared:?}, but the manifest lists {n} features (expected [1, {n}])"
                ),
            });
        }
        let plan = graph
            .with_input_fact(0, f32::fact([1, n]).into())
            .map_err(onnx_err)?
            .into_optimized()
            .map_err(onnx_err)?
            .into_runnable()
            .map_err(onnx_err)?;
        let outputs = plan.model().output_outlets().map_err(onnx_err)?.len();
        if outputs != 3 {
            return Err(ModelError::Onnx {
                path: path.to_owned(),
                reason: format!(
                    "has {outputs} outputs; expected 3 (score, contributions, expected)"
                ),
            });
        }
        for (i, (name, want)) in [
            ("score", [1, 1]),
            ("contributions", [1, n]),
            ("expected", [1, n]),
        ]
        .into_iter()
        .enumerate()
        {
            let shape = plan.model().output_fact(i).map_err(onnx_err)?.shape.clone();
            if let Some(got) = shape.as_concrete()
                && got.iter().product::<usize>() != want[0] * want[1]
            {
                return Err(ModelError::Onnx {
                    path: path.to_owned(),
                    reason: format!(
                        "output {i} ({name}) has shape {got:?}; expected {want:?} for {n} features"
                    ),
                });
            }
        }
        let reuse_states = plan
            .spawn()
            .map_err(onnx_err)?
            .op_states
            .iter()
            .all(Option::is_none);
        let model = AnomalyModel {
            manifest: Arc::new(manifest),
            plan,
            origin: dir.to_owned(),
            idle_states: Arc::default(),
            reuse_states,
        };
        model.run_self_test()?;
        Ok(model)
    }

    pub fn manifest(&self) -> &ModelManifest {
        &self.manifest
    }

    pub fn model_ref(&self) -> ModelRef {
        ModelRef {
            id: self.manifest.model_id.clone(),
            version: self.manifest.version.clone(),
        }
    }

    /// `id version`, for messages.
    pub fn label(&self) -> String {
        format!("{} {}", self.manifest.model_id, self.manifest.version)
    }

    /// `id version (folder)`, for errors an operator must act on.
    pub(crate) fn label_with_origin(&self) -> String {
        format!("{} ({})", self.label(), self.origin.display())
    }

    /// Checks that this model fits an asset of `kind` whose features are
    /// computed with `profile`.
    pub fn check_fits(&self, kind: AssetKind, profile: &FeatureProfile) -> Result<(), ModelError> {
        let m = &self.manifest;
        let spec = |reason: String| ModelError::Spec {
            model: self.label_with_origin(),
            reason,
        };
        if m.asset_kind != kind {
            return Err(spec(format!(
                "is for {} assets, not {}",
                m.asset_kind.as_str(),
                kind.as_str()
            )));
        }
        if m.feature_profile != profile.name {
            return Err(spec(format!(
                "was trained on feature profile {}, this agent computes {}",
                m.feature_profile, profile.name
            )));
        }
        let ours = profile.feature_names();
        if m.features != ours {
            return Err(spec(format!(
                "expects features {:?}, profile {} computes {:?}",
                m.features, profile.name, ours
            )));
        }
        Ok(())
    }

    /// Scores one feature vector.
    pub fn score(&self, features: &[f64]) -> Result<Scored, ModelError> {
        let n = self.manifest.features.len();
        let fail = |reason: String| ModelError::Inference {
            model: self.label(),
            reason,
        };
        if features.len() != n {
            return Err(fail(format!(
                "{} features given, {n} expected",
                features.len()
            )));
        }
        let input =
            ndarray::Array2::from_shape_vec((1, n), features.iter().map(|&x| x as f32).collect())
                .map_err(|e| fail(e.to_string()))?;
        let state = self
            .idle_states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop();
        let mut state = match state {
            Some(state) => state,
            None => self.plan.spawn().map_err(|e| fail(format!("{e:#}")))?,
        };
        let outputs = state
            .run(tvec!(Tensor::from(input).into()))
            .map_err(|e| fail(format!("{e:#}")))?;
        // Only a state that ran cleanly is kept for the next window.
        if self.reuse_states {
            self.idle_states
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(state);
        }
        let read = |i: usize, len: usize| -> Result<Vec<f64>, ModelError> {
            let view = outputs[i]
                .to_plain_array_view::<f32>()
                .map_err(|e| fail(format!("output {i}: {e:#}")))?;
            if view.len() != len {
                return Err(fail(format!(
                    "output {i} has {} values, {len} expected",
                    view.len()
                )));
            }
            Ok(view.iter().map(|&x| x as f64).collect())
        };
        let score = read(0, 1)?[0];
        let contributions = read(1, n)?;
        let expected = read(2, n)?;
        if !score.is_finite() || score < 0.0 {
            return Err(fail(format!(
                "score {score} is not a finite non-negative number"
            )));
        }
        Ok(Scored {
            score,
            contributions,
            expected,
        })
    }

    fn run_self_test(&self) -> Result<(), ModelError> {
        for (index, v) in self.manifest.self_test.iter().enumerate() {
            let got = self.score(&v.input)?.score;
            let tolerance = v.tolerance * v.score.abs().max(1e-6);
            // Written so that a NaN score fails too.
            let within = (got - v.score).abs() <= tolerance;
            if !within {
                return Err(ModelError::SelfTest {
                    model: self.label_with_origin(),
                    index,
                    expected: v.score,
                    got,
                });
            }
        }
        Ok(())
    }
}

fn parse_manifest(bytes: &[u8], path: &Path) -> Result<ModelManifest, ModelError> {
    let err = |reason: String| ModelError::Manifest {
        path: path.to_owned(),
        reason,
    };
    let m: ModelManifest = serde_json::from_slice(bytes).map_err(|e| err(e.to_string()))?;
    validate_id("model_id", &m.model_id).map_err(|e| err(e.to_string()))?;
    if m.version.trim().is_empty() {
        return Err(err("version is empty".into()));
    }
    let known = FeatureProfile::by_name(&m.feature_profile).is_some()
        || crate::features::process::ProcessProfile::by_name(&m.feature_profile).is_some();
    if !known {
        return Err(err(format!(
            "unknown feature profile `{}`",
            m.feature_profile
        )));
    }
    if m.features.is_empty() {
        return Err(err("lists no features".into()));
    }
    if !(m.threshold.is_finite()
        && m.threshold > 0.0
        && m.alarm_threshold.is_finite()
        && m.alarm_threshold >= m.threshold)
    {
        return Err(err(format!(
            "thresholds must satisfy 0 < threshold <= alarm_threshold, found {} and {}",
            m.threshold, m.alarm_threshold
        )));
    }
    if m.self_test.is_empty() {
        return Err(err("has no self-test vectors".into()));
    }
    if let Some(spec) = &m.commissioning {
        spec.validate_for(&m.features).map_err(err)?;
    }
    for (i, v) in m.self_test.iter().enumerate() {
        if v.input.len() != m.features.len() {
            return Err(err(format!(
                "self-test {i} has {} inputs for {} features",
                v.input.len(),
                m.features.len()
            )));
        }
    }
    if m.onnx_file.contains('/') || m.onnx_file.contains('\\') || m.onnx_file.starts_with('.') {
        return Err(err(format!(
            "onnx_file `{}` must be a plain file name next to the manifest",
            m.onnx_file
        )));
    }
    Ok(m)
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
