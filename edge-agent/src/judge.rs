//! Judging one asset's feature vectors: commissioning, model, detector.
//!
//! The live scoring lane (windows of samples) and the table replay (rows of
//! process readings) compute their features differently but must judge
//! them the same way: collect the commissioning baseline and learn from it,
//! standardise with what was learned, score with the model, and move the
//! detector. This is that one path; the callers add what is theirs (sensor
//! checks and events for the lane, CSV rows for the replay).

use protocol::{DetectorState, ModelRef};

use crate::commissioning::{
    Commissioning, CommissioningError, CommissioningSpec, CommissioningStore, FeatureScaling,
};
use crate::detector::{Detector, DetectorConfig, Transition};
use crate::model::{AnomalyModel, Scored};

/// What became of one feature vector.
#[derive(Debug, Clone, PartialEq)]
pub enum Judgement {
    /// It went into the commissioning baseline (not judged); `Some` when it
    /// completed the baseline and the learning failed (the baseline starts
    /// over).
    Baseline(Option<CommissioningError>),
    /// Scored; the detector's transition, if it changed state.
    Scored(Scored, Option<Transition>),
    /// The model could not score it (an error or a non-finite score); the
    /// detector's transition to `model_fault`, if it changed state.
    ModelFailed(String, Option<Transition>),
}

/// One asset's commissioning, model and detector.
pub struct Judge {
    asset_id: String,
    profile_name: &'static str,
    model: AnomalyModel,
    model_ref: ModelRef,
    detector: Detector,
    /// `None` for models that use their shipped thresholds.
    commissioning: Option<Commissioning>,
    /// Where what commissioning learned is kept (none: in memory only).
    store: Option<CommissioningStore>,
    /// Why the last commissioning could not be stored, until taken.
    unsaved: Option<String>,
}

impl Judge {
    /// With the model's shipped thresholds, or a fresh baseline if its
    /// manifest asks for commissioning.
    pub fn new(
        asset_id: &str,
        profile_name: &'static str,
        model: AnomalyModel,
        detector: DetectorConfig,
    ) -> Self {
        let m = model.manifest();
        let detector = Detector::new(detector, m.threshold, m.alarm_threshold);
        let commissioning = m
            .commissioning
            .clone()
            .map(|spec| Commissioning::start(spec, &m.features));
        Judge {
            asset_id: asset_id.to_owned(),
            profile_name,
            model_ref: model.model_ref(),
            model,
            detector,
            commissioning,
            store: None,
            unsaved: None,
        }
    }

    /// Commissions the asset with `spec` (a fresh baseline), whatever the
    /// model's manifest says (replay and evaluation choose their own).
    pub fn with_commissioning_spec(mut self, spec: CommissioningSpec) -> Self {
        let features = &self.model.manifest().features;
        self.commissioning = Some(Commissioning::start(spec, features));
        self
    }

    /// How a replay commissions: with `commission_rows > 0`, a fresh
    /// baseline of that many (the model's spec otherwise), replacing what
    /// `store` held for the asset; with 0, what `store` holds for this model,
    /// else the model's shipped thresholds, even if its manifest asks for
    /// commissioning.
    pub fn for_replay(
        mut self,
        commission_rows: u32,
        store: Option<CommissioningStore>,
    ) -> anyhow::Result<Self> {
        if let Some(store) = &store {
            // A replay must not quietly judge differently than asked.
            store.load(&self.asset_id).map_err(|e| {
                anyhow::anyhow!("reading {}'s stored commissioning: {e}", self.asset_id)
            })?;
        }
        if commission_rows > 0 {
            let model_spec = self.model.manifest().commissioning.as_ref();
            let spec = CommissioningSpec::for_baseline(model_spec, commission_rows);
            spec.validate()
                .map_err(|e| anyhow::anyhow!("--commission-rows: {e}"))?;
            if let Some(store) = &store {
                store.forget(&self.asset_id)?;
            }
            self = self.with_commissioning_spec(spec);
        } else {
            self.commissioning = None;
        }
        let judge = match store {
            Some(store) => self.with_commissioning_store(store),
            None => self,
        };
        let scales = judge
            .model
            .manifest()
            .commissioning
            .as_ref()
            .is_some_and(|c| c.feature_scaling);
        if scales && judge.commissioning.is_none() {
            anyhow::bail!(
                "model {} judges features standardised by each asset's commissioning: give commissioning rows, or a data folder holding {}'s commissioning for this model",
                judge.model.label(),
                judge.asset_id
            );
        }
        Ok(judge)
    }

    /// Why the commissioning just learned could not be stored, once (the
    /// live lane logs it and goes on; a replay stops).
    pub fn take_unsaved(&mut self) -> Option<String> {
        self.unsaved.take()
    }

    /// Keeps commissioning results in `store`, and resumes from the asset's
    /// stored record if it was learned for this model version and feature
    /// profile (also for a model that does not ask for commissioning: the
    /// record then came from `edge-agent replay --commission-rows`);
    /// otherwise a model that asks for it collects a new baseline.
    pub fn with_commissioning_store(mut self, store: CommissioningStore) -> Self {
        let asset = &self.asset_id;
        match store.load(asset) {
            Ok(Some(record))
                if record.model == self.model_ref
                    && record.feature_profile == self.profile_name =>
            {
                tracing::info!(
                    asset = %asset,
                    threshold = record.threshold,
                    "resuming with the stored commissioning"
                );
                self.detector
                    .set_thresholds(record.threshold, record.alarm_threshold);
                self.commissioning = Some(Commissioning::Done(Box::new(record)));
            }
            Ok(Some(record)) if self.commissioning.is_some() => tracing::info!(
                asset = %asset,
                stored_for = %format!("{} {}", record.model.id, record.model.version),
                "stored commissioning was for another model; collecting a new baseline"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(
                asset = %asset,
                "stored commissioning is unreadable, collecting a new baseline: {e}"
            ),
        }
        self.store = Some(store);
        self
    }

    pub fn model(&self) -> &AnomalyModel {
        &self.model
    }

    pub fn model_ref(&self) -> &ModelRef {
        &self.model_ref
    }

    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// For what the caller judges itself (sensor faults).
    pub fn detector_mut(&mut self) -> &mut Detector {
        &mut self.detector
    }

    pub fn state(&self) -> DetectorState {
        self.detector.state()
    }

    /// Where the asset's commissioning stands (`None`: not required).
    pub fn commissioning(&self) -> Option<&Commissioning> {
        self.commissioning.as_ref()
    }

    /// The feature scaling commissioning learned, if any.
    pub fn scaling(&self) -> Option<&FeatureScaling> {
        self.commissioning
            .as_ref()
            .and_then(Commissioning::record)
            .and_then(|r| r.scaling.as_ref())
    }

    /// Judges one feature vector; `now_ms` stamps a commissioning it
    /// completes.
    pub fn judge(&mut self, features: &[f64], now_ms: u64) -> Judgement {
        let scaled;
        let model_input = match &mut self.commissioning {
            Some(Commissioning::Done(record)) => match &record.scaling {
                Some(scaling) => {
                    scaled = scaling.apply(features);
                    &scaled
                }
                None => features,
            },
            Some(baseline) => {
                let failed = if baseline.collect(features) {
                    self.learn_baseline(now_ms)
                } else {
                    None
                };
                return Judgement::Baseline(failed);
            }
            None => features,
        };
        match self.model.score(model_input) {
            Ok(scored) => {
                let transition = self.detector.observe_score(scored.score);
                Judgement::Scored(scored, transition)
            }
            Err(e) => Judgement::ModelFailed(e.to_string(), self.detector.observe_model_fault()),
        }
    }

    /// Turns the full baseline into the asset's parameters, stores them
    /// and sets the detector's thresholds; the error if it could not.
    fn learn_baseline(&mut self, now_ms: u64) -> Option<CommissioningError> {
        let commissioning = self.commissioning.as_mut()?;
        let model = &self.model;
        let identity = (
            self.asset_id.as_str(),
            self.model_ref.clone(),
            self.profile_name,
        );
        let learned = commissioning.finish(identity, now_ms, |x| {
            model.score(x).map(|s| s.score).map_err(|e| e.to_string())
        });
        match learned {
            Ok(record) => {
                tracing::info!(
                    asset = %record.asset_id,
                    threshold = record.threshold,
                    alarm_threshold = record.alarm_threshold,
                    "commissioned"
                );
                self.detector
                    .set_thresholds(record.threshold, record.alarm_threshold);
                if let Some(store) = &self.store
                    && let Err(e) = store.save(record)
                {
                    // The asset is watched with what was learned; only a
                    // restart would need a new baseline.
                    tracing::error!(asset = %record.asset_id, "commissioning not stored: {e}");
                    self.unsaved = Some(e.to_string());
                }
                None
            }
            Err(e) => {
                tracing::warn!("{e}; collecting a new baseline");
                Some(e)
            }
        }
    }
}
