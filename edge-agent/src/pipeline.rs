//! The scoring lane of one asset: window -> checks -> features -> model ->
//! detector -> event.
//!
//! Pure and synchronous, so that the live agent, the feature export and the
//! tests run exactly the same code. It owns the asset's detector state and
//! hands back, for each window, what happened and the event to publish if
//! the detector changed state.

use protocol::{
    AnomalyEvent, AssetKind, AssetStatus, DetectorState, EventKind, FeatureContribution,
};

use crate::commissioning::{Commissioning, CommissioningError, CommissioningStore};
use crate::config::{AgentConfig, AssetConfig};
use crate::detector::{DetectorConfig, Transition};
use crate::features::{AssetAnalysis, FeatureExtractor, FeatureProfile, FeatureVector};
use crate::judge::{Judge, Judgement};
use crate::model::{AnomalyModel, ModelError, Scored};
use crate::sensor_health::{Channel, SensorFault, SensorHealth, SensorHealthConfig};
use crate::window::Window;

/// Most features named in an event's explanation.
pub const TOP_FEATURES: usize = 3;
/// Features below this share of the score are not named (except the first).
pub const MIN_SHARE: f64 = 0.05;

/// Who is speaking: the gateway and the asset a lane belongs to.
#[derive(Debug, Clone)]
pub struct AssetIdentity {
    pub site: String,
    pub gateway: String,
    pub asset_id: String,
    pub kind: AssetKind,
    pub vibration_channel: String,
    pub temperature_channel: String,
}

/// Everything about an asset the scoring lane needs besides its model.
#[derive(Debug, Clone)]
pub struct AssetSetup {
    pub identity: AssetIdentity,
    pub detector: DetectorConfig,
    pub sensor_health: SensorHealthConfig,
    pub analysis: AssetAnalysis,
}

impl AssetSetup {
    /// The setup of an asset of a gateway's config.
    pub fn from_config(config: &AgentConfig, asset: &AssetConfig) -> Self {
        AssetSetup {
            identity: AssetIdentity {
                site: config.site.clone(),
                gateway: config.gateway.clone(),
                asset_id: asset.id.clone(),
                kind: asset.kind,
                vibration_channel: asset.vibration_channel.clone(),
                temperature_channel: asset.temperature_channel.clone(),
            },
            detector: asset.detector.clone(),
            sensor_health: asset.sensor_health.clone(),
            analysis: asset.analysis(),
        }
    }
}

/// What became of one window.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Scored(Scored),
    Refused(SensorFault),
    /// The model failed on this window; the window is lost, the detector
    /// state is unchanged.
    ModelFailed(String),
    /// The window went into the asset's commissioning baseline (it is not
    /// judged); `Some` when it completed the baseline and the learning
    /// failed, with the reason (the baseline starts over).
    Baseline(Option<CommissioningError>),
}

pub struct AssetPipeline {
    identity: AssetIdentity,
    health: SensorHealth,
    extractor: FeatureExtractor,
    feature_names: Vec<String>,
    /// Commissioning, model and detector.
    judge: Judge,
    last_score: Option<f64>,
    last_features: Option<FeatureVector>,
    windows_scored: u64,
}

impl AssetPipeline {
    /// Builds the lane; fails if the model does not fit the asset or the
    /// sample rate cannot resolve the profile's bands.
    pub fn new(
        setup: AssetSetup,
        model: AnomalyModel,
        sample_rate_hz: f64,
    ) -> Result<Self, ModelError> {
        let AssetSetup {
            identity,
            detector,
            sensor_health,
            analysis,
        } = setup;
        let profile = FeatureProfile::for_model(identity.kind, &model.manifest().feature_profile);
        model.check_fits(identity.kind, profile)?;
        profile
            .check_sample_rate(sample_rate_hz)
            .map_err(|reason| ModelError::Spec {
                model: model.label_with_origin(),
                reason: format!("asset {}: {reason}", identity.asset_id),
            })?;
        Ok(AssetPipeline {
            judge: Judge::new(&identity.asset_id, profile.name, model, detector),
            health: SensorHealth::new(sensor_health),
            extractor: FeatureExtractor::new(profile, sample_rate_hz, analysis),
            feature_names: profile.feature_names(),
            identity,
            last_score: None,
            last_features: None,
            windows_scored: 0,
        })
    }

    pub fn identity(&self) -> &AssetIdentity {
        &self.identity
    }

    /// Keeps commissioning results in `store` and resumes from it (see
    /// [`Judge::with_commissioning_store`]).
    pub fn with_commissioning_store(mut self, store: CommissioningStore) -> Self {
        self.judge = self.judge.with_commissioning_store(store);
        self
    }

    /// Commissions the asset with `spec` (a fresh baseline), whatever the
    /// model's manifest says (replay and evaluation choose their own).
    pub fn with_commissioning_spec(
        mut self,
        spec: crate::commissioning::CommissioningSpec,
    ) -> Self {
        self.judge = self.judge.with_commissioning_spec(spec);
        self
    }

    /// Commissions as a replay asks (see [`Judge::for_replay`]).
    pub fn for_replay(
        mut self,
        commission_rows: u32,
        store: Option<CommissioningStore>,
    ) -> anyhow::Result<Self> {
        self.judge = self.judge.for_replay(commission_rows, store)?;
        Ok(self)
    }

    /// Why the commissioning just learned could not be stored, once.
    pub fn take_unsaved_commissioning(&mut self) -> Option<String> {
        self.judge.take_unsaved()
    }

    /// Where the asset's commissioning stands (`None`: not required).
    pub fn commissioning(&self) -> Option<&Commissioning> {
        self.judge.commissioning()
    }

    pub fn profile(&self) -> &'static FeatureProfile {
        self.extractor.profile()
    }

    /// The detector's state.
    pub fn state(&self) -> DetectorState {
        self.judge.state()
    }

    /// The asset's line in a heartbeat.
    pub fn status(&self) -> AssetStatus {
        let (threshold, alarm_threshold) = self.judge.detector().thresholds();
        AssetStatus {
            id: self.identity.asset_id.clone(),
            state: self.judge.state(),
            last_score: self.last_score,
            threshold,
            alarm_threshold,
            windows_scored: self.windows_scored,
            velocity_rms_mm_s: self
                .last_features
                .as_ref()
                .and_then(|f| f.velocity_rms_mm_s),
            iso_zone: self.last_features.as_ref().and_then(|f| f.iso_zone),
            commissioning: self.judge.commissioning().map(Commissioning::status),
            model: Some(self.judge.model_ref().clone()),
        }
    }

    /// The feature vector the model was last given (scaled as commissioning
    /// learned, if it did), for a candidate model to score in shadow.
    pub fn last_model_input(&self) -> Option<Vec<f64>> {
        let raw = &self.last_features.as_ref()?.values;
        Some(match self.judge.scaling() {
            Some(scaling) => scaling.apply(raw),
            None => raw.clone(),
        })
    }

    /// How long without data counts as a disconnected sensor.
    pub fn silence_limit_s(&self) -> f64 {
        self.health.config().silence_s
    }

    /// Reports that no data has come for `seconds`, up to `now_us`.
    pub fn silence(&mut self, seconds: f64, now_us: u64) -> Option<AnomalyEvent> {
        let fault = self.health.silence(seconds);
        let t = self.judge.detector_mut().observe_sensor_fault()?;
        let start_ms = (now_us / 1000).saturating_sub((seconds * 1000.0) as u64);
        Some(self.sensor_event(start_ms, now_us / 1000, t, &fault.reason, fault.channel))
    }

    /// Processes one window.
    pub fn process(&mut self, window: &Window) -> (Outcome, Option<AnomalyEvent>) {
        let (start_ms, end_ms) = (window.start_us / 1000, window.end_us() / 1000);
        // One pass over the samples serves the sensor checks, the
        // statistics and the FFT input.
        let health = &mut self.health;
        let clip = health.clip_level_g();
        let checked = self
            .extractor
            .extract_checked(window, clip, &mut |scan| health.check_scanned(window, scan));
        let features = match checked {
            Ok(f) => f,
            Err(fault) => {
                let event =
                    self.judge.detector_mut().observe_sensor_fault().map(|t| {
                        self.sensor_event(start_ms, end_ms, t, &fault.reason, fault.channel)
                    });
                return (Outcome::Refused(fault), event);
            }
        };
        let (scored, transition) = match self.judge.judge(&features.values, end_ms) {
            Judgement::Baseline(failed) => {
                self.last_features = Some(features);
                return (Outcome::Baseline(failed), None);
            }
            Judgement::ModelFailed(reason, transition) => {
                let event = transition.map(|t| self.model_event(start_ms, end_ms, t, &reason));
                return (Outcome::ModelFailed(reason), event);
            }
            Judgement::Scored(scored, transition) => (scored, transition),
        };
        self.windows_scored += 1;
        self.last_score = Some(scored.score);
        let event = transition.map(|t| {
            if t.from == DetectorState::ModelFault {
                self.model_event(start_ms, end_ms, t, "the model scores this asset again")
            } else if t.from == DetectorState::SensorFault {
                self.sensor_event(
                    start_ms,
                    end_ms,
                    t,
                    "channel delivers plausible data again",
                    Channel::Vibration,
                )
            } else {
                self.anomaly_event(start_ms, end_ms, t, &features.values, &scored)
            }
        });
        self.last_features = Some(features);
        (Outcome::Scored(scored), event)
    }

    fn base_event(
        &self,
        start_ms: u64,
        end_ms: u64,
        t: Transition,
        kind: EventKind,
        channel: &str,
    ) -> AnomalyEvent {
        let (threshold, alarm_threshold) = self.judge.detector().thresholds();
        AnomalyEvent {
            event_id: uuid::Uuid::now_v7().to_string(),
            site: self.identity.site.clone(),
            gateway: self.identity.gateway.clone(),
            asset_id: self.identity.asset_id.clone(),
            asset_kind: self.identity.kind,
            channel: channel.to_owned(),
            kind,
            state: t.to,
            previous_state: t.from,
            window_start_ms: start_ms,
            window_end_ms: end_ms,
            raised_at_ms: crate::source::now_us() / 1000,
            score: self.last_score.unwrap_or(0.0),
            threshold,
            alarm_threshold,
            model: self.judge.model_ref().clone(),
            top_features: Vec::new(),
            detail: None,
        }
    }

    fn anomaly_event(
        &self,
        start_ms: u64,
        end_ms: u64,
        t: Transition,
        features: &[f64],
        scored: &Scored,
    ) -> AnomalyEvent {
        let mut event = self.base_event(
            start_ms,
            end_ms,
            t,
            EventKind::Anomaly,
            &self.identity.vibration_channel,
        );
        event.score = scored.score;
        event.top_features = match self.judge.scaling() {
            // The model's typical values are standardised: back to units.
            Some(s) => {
                let mut raw = scored.clone();
                raw.expected = s.to_units(features, &scored.expected);
                explain(&self.feature_names, features, &raw)
            }
            None => explain(&self.feature_names, features, scored),
        };
        if t.reminder {
            event.detail = Some("alarm persists".into());
        }
        event
    }

    fn model_event(&self, start_ms: u64, end_ms: u64, t: Transition, reason: &str) -> AnomalyEvent {
        let mut event = self.base_event(
            start_ms,
            end_ms,
            t,
            EventKind::ModelFault,
            &self.identity.vibration_channel,
        );
        event.detail = Some(reason.to_owned());
        event
    }

    fn sensor_event(
        &self,
        start_ms: u64,
        end_ms: u64,
        t: Transition,
        reason: &str,
        channel: Channel,
    ) -> AnomalyEvent {
        let channel = match channel {
            Channel::Vibration => &self.identity.vibration_channel,
            Channel::Temperature => &self.identity.temperature_channel,
        };
        let mut event = self.base_event(start_ms, end_ms, t, EventKind::SensorFault, channel);
        event.detail = Some(reason.to_owned());
        event
    }
}

/// The features that contributed most to a score, largest first.
pub fn explain(names: &[String], features: &[f64], scored: &Scored) -> Vec<FeatureContribution> {
    let total: f64 = scored.contributions.iter().sum();
    if total <= 0.0 {
        return Vec::new();
    }
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by(|&a, &b| scored.contributions[b].total_cmp(&scored.contributions[a]));
    order
        .into_iter()
        .take(TOP_FEATURES)
        .enumerate()
        .filter(|&(rank, i)| rank == 0 || scored.contributions[i] / total >= MIN_SHARE)
        .map(|(_, i)| FeatureContribution {
            name: names[i].clone(),
            value: features[i],
            expected: scored.expected[i],
            share: (scored.contributions[i] / total).clamp(0.0, 1.0),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explanation_names_the_largest_contributions_first() {
        let names: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let scored = Scored {
            score: 10.0,
            contributions: vec![1.0, 6.0, 0.2, 2.8],
            expected: vec![0.0, 1.0, 2.0, 3.0],
        };
        let top = explain(&names, &[5.0, 6.0, 7.0, 8.0], &scored);
        let names: Vec<&str> = top.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["b", "d", "a"]);
        for (f, share) in top.iter().zip([0.6, 0.28, 0.1]) {
            assert!((f.share - share).abs() < 1e-12, "{f:?}");
        }
        assert_eq!((top[0].value, top[0].expected), (6.0, 1.0));
    }

    #[test]
    fn tiny_contributions_are_left_out() {
        let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let scored = Scored {
            score: 1.0,
            contributions: vec![0.97, 0.02, 0.01],
            expected: vec![0.0; 3],
        };
        let top = explain(&names, &[0.0; 3], &scored);
        assert_eq!(top.len(), 1);
        assert_eq!(top[0].name, "a");
    }
}
