//! Per-asset commissioning: one shipped model, fitted to each machine.
//!
//! Two pumps of one design do not vibrate alike: mounting, foundation and
//! duty differ, and a fleet-wide threshold is either blind on the quiet one
//! or noisy on the rough one. So a model may ask (in its manifest) for each
//! asset to be commissioned: the first `baseline_windows` windows that pass
//! the sensor checks are taken as the asset's normal. From them the agent
//! learns, per asset,
//!
//! - optionally the **feature scaling**: each feature's baseline median and
//!   robust spread (1.4826 x the median absolute deviation), with which
//!   every later feature vector is standardised before the model sees it
//!   (models trained on standardised features then serve any machine),
//!   and the features' normal dependence on covariates such as the
//!   temperature (see [`crate::feature_scaling`]);
//! - the **thresholds**: the baseline's scores at a quantile, times a
//!   margin, give `warning`; a factor above that gives `alarm`.
//!
//! While the baseline is collected the asset raises no anomaly (its normal
//! is not known yet); sensor faults are still raised. What was learned is
//! stored durably (see [`CommissioningStore`]) with the model it was learned
//! for, so a restart resumes watching at once; a different model version or
//! feature profile starts a new baseline.

use std::sync::Arc;

use protocol::{CommissioningPhase, CommissioningStatus, ModelRef};
use serde::{Deserialize, Serialize};
use store::{Store, StoreError, get_json, put_json};

pub use crate::feature_scaling::{CovariateSpec, FeatureScaling, ScalingStatistic};

/// `commissioning` in a model manifest: what each asset must learn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommissioningSpec {
    /// Windows that make the baseline.
    pub baseline_windows: u32,
    /// Whether the model expects features standardised with the asset's
    /// baseline centre and spread.
    #[serde(default)]
    pub feature_scaling: bool,
    /// Which centre and spread (default: median and MAD).
    #[serde(default)]
    pub scaling_statistic: ScalingStatistic,
    /// Quantile of the baseline scores the thresholds start from (0.5-1).
    pub threshold_quantile: f64,
    /// `warning` threshold = margin x that quantile (>= 1).
    pub threshold_margin: f64,
    /// `alarm` threshold = factor x `warning` threshold (>= 1).
    pub alarm_factor: f64,
    /// Features whose normal influence on the others is learned with the
    /// scaling (see [`crate::feature_scaling`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub covariates: Vec<CovariateSpec>,
}

/// Commissioning used when the model's manifest has none: the thresholds
/// from the baseline's 99th-percentile score, no feature scaling.
pub const DEFAULT_SPEC: CommissioningSpec = CommissioningSpec {
    baseline_windows: 0,
    feature_scaling: false,
    scaling_statistic: ScalingStatistic::MedianMad,
    threshold_quantile: 0.99,
    threshold_margin: 1.5,
    alarm_factor: 2.0,
    covariates: Vec::new(),
};

impl CommissioningSpec {
    /// The model's commissioning (or [`DEFAULT_SPEC`] if it has none) with
    /// a baseline of `windows`: what replay and an asset's config ask for.
    pub fn for_baseline(model: Option<&CommissioningSpec>, windows: u32) -> Self {
        CommissioningSpec {
            baseline_windows: windows,
            ..model.cloned().unwrap_or(DEFAULT_SPEC)
        }
    }

    /// Checks the numbers make sense; the error says which does not.
    pub fn validate(&self) -> Result<(), String> {
        if self.baseline_windows < 10 {
            return Err(format!(
                "commissioning.baseline_windows = {} is too few (>= 10)",
                self.baseline_windows
            ));
        }
        if !(0.5..=1.0).contains(&self.threshold_quantile) {
            return Err(format!(
                "commissioning.threshold_quantile = {} must be within [0.5, 1]",
                self.threshold_quantile
            ));
        }
        for (name, v) in [
            ("threshold_margin", self.threshold_margin),
            ("alarm_factor", self.alarm_factor),
        ] {
            if !(v.is_finite() && v >= 1.0) {
                return Err(format!("commissioning.{name} = {v} must be >= 1"));
            }
        }
        if !self.covariates.is_empty() && !self.feature_scaling {
            return Err("commissioning.covariates need feature_scaling = true".into());
        }
        for c in &self.covariates {
            if !(c.min_spread.is_finite() && c.min_spread > 0.0) {
                return Err(format!(
                    "commissioning.covariates: {} has min_spread = {}, must be > 0",
                    c.feature, c.min_spread
                ));
            }
        }
        Ok(())
    }

    /// [`Self::validate`], and every covariate is one of `features`, once.
    pub fn validate_for(&self, features: &[String]) -> Result<(), String> {
        self.validate()?;
        for (k, c) in self.covariates.iter().enumerate() {
            if !features.contains(&c.feature) {
                return Err(format!(
                    "commissioning.covariates: {} is not one of the model's features",
                    c.feature
                ));
            }
            if self.covariates[..k].iter().any(|o| o.feature == c.feature) {
                return Err(format!(
                    "commissioning.covariates: {} is listed twice",
                    c.feature
                ));
            }
        }
        Ok(())
    }
}

/// What commissioning learned for one asset, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommissioningRecord {
    pub asset_id: String,
    /// The model and feature profile it was learned for.
    pub model: ModelRef,
    pub feature_profile: String,
    pub spec: CommissioningSpec,
    pub windows: u64,
    pub completed_at_ms: u64,
    pub scaling: Option<FeatureScaling>,
    pub baseline_score_quantile: f64,
    pub threshold: f64,
    pub alarm_threshold: f64,
}

impl CommissioningRecord {
    pub fn status(&self) -> CommissioningStatus {
        CommissioningStatus {
            phase: CommissioningPhase::Commissioned,
            windows: self.windows,
            windows_needed: self.spec.baseline_windows as u64,
            completed_at_ms: Some(self.completed_at_ms),
            baseline_score_quantile: Some(self.baseline_score_quantile),
            feature_scaling: self.scaling.is_some(),
            covariates_learned: self
                .scaling
                .iter()
                .flat_map(|s| &s.covariates)
                .filter(|c| c.learned)
                .map(|c| c.spec.feature.clone())
                .collect(),
        }
    }
}

/// Why a baseline could not be turned into parameters.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("commissioning of {asset}: {reason}")]
pub struct CommissioningError {
    pub asset: String,
    pub reason: String,
}

/// An asset's commissioning in progress, or done.
#[derive(Debug, Clone)]
pub enum Commissioning {
    Baseline {
        spec: CommissioningSpec,
        rows: Vec<Vec<f64>>,
        /// The spec's covariates and where they are in a feature vector.
        covariates: Vec<(CovariateSpec, usize)>,
    },
    Done(Box<CommissioningRecord>),
}

impl Commissioning {
    /// A fresh baseline for a model with these `features` (covariates not
    /// among them are ignored: the model's load refuses such a manifest).
    pub fn start(spec: CommissioningSpec, features: &[String]) -> Self {
        let covariates = spec
            .covariates
            .iter()
            .filter_map(|c| Some((c.clone(), features.iter().position(|f| *f == c.feature)?)))
            .collect();
        Commissioning::Baseline {
            rows: Vec::with_capacity(spec.baseline_windows as usize),
            spec,
            covariates,
        }
    }

    pub fn status(&self) -> CommissioningStatus {
        match self {
            Commissioning::Baseline { spec, rows, .. } => CommissioningStatus {
                phase: CommissioningPhase::Baseline,
                windows: rows.len() as u64,
                windows_needed: spec.baseline_windows as u64,
                completed_at_ms: None,
                baseline_score_quantile: None,
                feature_scaling: spec.feature_scaling,
                covariates_learned: Vec::new(),
            },
            Commissioning::Done(record) => record.status(),
        }
    }

    pub fn record(&self) -> Option<&CommissioningRecord> {
        match self {
            Commissioning::Done(record) => Some(record),
            Commissioning::Baseline { .. } => None,
        }
    }

    /// Adds a baseline window's features; true once the baseline is full.
    pub fn collect(&mut self, features: &[f64]) -> bool {
        match self {
            Commissioning::Baseline { spec, rows, .. } => {
                rows.push(features.to_vec());
                rows.len() >= spec.baseline_windows as usize
            }
            Commissioning::Done(_) => false,
        }
    }

    /// Learns the parameters from the full baseline; `score` scores a
    /// feature vector (standardised if the spec asks for it). On success
    /// the commissioning is done; on failure the baseline starts over.
    pub fn finish(
        &mut self,
        identity: (&str, ModelRef, &str),
        now_ms: u64,
        mut score: impl FnMut(&[f64]) -> Result<f64, String>,
    ) -> Result<&CommissioningRecord, CommissioningError> {
        let (asset_id, model, feature_profile) = identity;
        let Commissioning::Baseline {
            spec,
            rows,
            covariates,
        } = self
        else {
            return Err(CommissioningError {
                asset: asset_id.to_owned(),
                reason: "already commissioned".into(),
            });
        };
        let fail = |reason: String| CommissioningError {
            asset: asset_id.to_owned(),
            reason,
        };
        let result = (|| {
            if let Some(i) = rows.iter().flatten().position(|x| !x.is_finite()) {
                return Err(fail(format!(
                    "baseline feature {} of window {} is not finite",
                    i % rows[0].len().max(1),
                    i / rows[0].len().max(1)
                )));
            }
            let scaling = spec
                .feature_scaling
                .then(|| FeatureScaling::learn_with(rows, spec.scaling_statistic, covariates));
            let scores = rows
                .iter()
                .map(|r| match &scaling {
                    Some(s) => score(&s.apply(r)),
                    None => score(r),
                })
                .collect::<Result<Vec<f64>, String>>()
                .map_err(|e| fail(format!("scoring the baseline: {e}")))?;
            let at_quantile = quantile(&scores, spec.threshold_quantile);
            let threshold = spec.threshold_margin * at_quantile;
            if !(threshold.is_finite() && threshold > 0.0) {
                return Err(fail(format!(
                    "baseline score quantile {at_quantile} gives no usable threshold"
                )));
            }
            Ok(CommissioningRecord {
                asset_id: asset_id.to_owned(),
                model,
                feature_profile: feature_profile.to_owned(),
                spec: spec.clone(),
                windows: rows.len() as u64,
                completed_at_ms: now_ms,
                scaling,
                baseline_score_quantile: at_quantile,
                threshold,
                alarm_threshold: spec.alarm_factor * threshold,
            })
        })();
        match result {
            Ok(record) => {
                *self = Commissioning::Done(Box::new(record));
                Ok(self.record().expect("just done"))
            }
            Err(e) => {
                rows.clear();
                Err(e)
            }
        }
    }
}

/// The `q` quantile of `xs` (linear between order statistics); NaN if empty.
pub fn quantile(xs: &[f64], q: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo as f64)
}

/// Commissioning records in the agent's store, one per asset.
#[derive(Clone)]
pub struct CommissioningStore {
    store: Arc<dyn Store>,
}

fn key(asset_id: &str) -> String {
    format!("commissioning/{asset_id}")
}

impl CommissioningStore {
    pub fn new(store: Arc<dyn Store>) -> Self {
        CommissioningStore { store }
    }

    /// The gateway's store underneath (the outbox keeps its records there
    /// too, under its own prefix).
    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// The record of `asset_id`, if one was stored and is readable.
    pub fn load(&self, asset_id: &str) -> Result<Option<CommissioningRecord>, StoreError> {
        get_json(self.store.as_ref(), &key(asset_id))
    }

    /// Stores a record durably (replacing the asset's previous one).
    pub fn save(&self, record: &CommissioningRecord) -> Result<(), StoreError> {
        self.store
            .commit(vec![put_json(key(&record.asset_id), record)])
    }

    /// Forgets an asset's record: its next start collects a new baseline.
    pub fn forget(&self, asset_id: &str) -> Result<(), StoreError> {
        self.store.commit(vec![store::Write::Delete(key(asset_id))])
    }
}

#[cfg(test)]
#[path = "commissioning_tests.rs"]
mod tests;
