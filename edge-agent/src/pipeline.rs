//! The scoring lane of one asset: window -> checks -> features -> model ->
//! detector -> event.
//!
//! Pure and synchronous, so that the live agent, the feature export and the
//! tests run exactly the same code. It owns the asset's detector state and
//! hands back, for each window, what happened and the event to publish if
//! the detector changed state.

use protocol::{
    AnomalyEvent, AssetKind, AssetStatus, DetectorState, EventKind, FeatureContribution, ModelRef,
};

use crate::detector::{Detector, DetectorConfig, Transition};
use crate::features::{FeatureExtractor, FeatureProfile};
use crate::model::{AnomalyModel, ModelError, Scored};
use crate::sensor_check::{self, Channel, SensorFault};
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

/// What became of one window.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Scored(Scored),
    Refused(SensorFault),
    /// The model failed on this window; the window is lost, the detector
    /// state is unchanged.
    ModelFailed(String),
}

pub struct AssetPipeline {
    identity: AssetIdentity,
    extractor: FeatureExtractor,
    model: AnomalyModel,
    model_ref: ModelRef,
    feature_names: Vec<String>,
    detector: Detector,
    last_score: Option<f64>,
    windows_scored: u64,
}

impl AssetPipeline {
    /// Builds the lane; fails if the model does not fit the asset or the
    /// sample rate cannot resolve the profile's bands.
    pub fn new(
        identity: AssetIdentity,
        model: AnomalyModel,
        detector: DetectorConfig,
        sample_rate_hz: f64,
    ) -> Result<Self, ModelError> {
        let profile = FeatureProfile::for_kind(identity.kind);
        model.check_fits(identity.kind, profile)?;
        profile
            .check_sample_rate(sample_rate_hz)
            .map_err(|reason| ModelError::Spec {
                model: model.label_with_origin(),
                reason: format!("asset {}: {reason}", identity.asset_id),
            })?;
        let m = model.manifest();
        let detector = Detector::new(detector, m.threshold, m.alarm_threshold);
        Ok(AssetPipeline {
            extractor: FeatureExtractor::new(profile, sample_rate_hz),
            feature_names: profile.feature_names(),
            model_ref: model.model_ref(),
            model,
            detector,
            identity,
            last_score: None,
            windows_scored: 0,
        })
    }

    pub fn identity(&self) -> &AssetIdentity {
        &self.identity
    }

    pub fn profile(&self) -> &'static FeatureProfile {
        self.extractor.profile()
    }

    /// The asset's line in a heartbeat.
    pub fn status(&self) -> AssetStatus {
        let (threshold, alarm_threshold) = self.detector.thresholds();
        AssetStatus {
            id: self.identity.asset_id.clone(),
            state: self.detector.state(),
            last_score: self.last_score,
            threshold,
            alarm_threshold,
            windows_scored: self.windows_scored,
        }
    }

    /// Processes one window.
    pub fn process(&mut self, window: &Window) -> (Outcome, Option<AnomalyEvent>) {
        if let Err(fault) = sensor_check::check_window(window) {
            let event = self
                .detector
                .observe_sensor_fault()
                .map(|t| self.sensor_event(window, t, &fault.reason, fault.channel));
            return (Outcome::Refused(fault), event);
        }
        let features = self.extractor.extract(window);
        let scored = match self.model.score(&features) {
            Ok(s) => s,
            Err(e) => return (Outcome::ModelFailed(e.to_string()), None),
        };
        self.windows_scored += 1;
        self.last_score = Some(scored.score);
        let event = self.detector.observe_score(scored.score).map(|t| {
            if t.from == DetectorState::SensorFault {
                self.sensor_event(
                    window,
                    t,
                    "channel delivers plausible data again",
                    Channel::Vibration,
                )
            } else {
                self.anomaly_event(window, t, &features, &scored)
            }
        });
        (Outcome::Scored(scored), event)
    }

    fn base_event(
        &self,
        window: &Window,
        t: Transition,
        kind: EventKind,
        channel: &str,
    ) -> AnomalyEvent {
        let (threshold, alarm_threshold) = self.detector.thresholds();
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
            window_start_ms: window.start_us / 1000,
            window_end_ms: window.end_us() / 1000,
            raised_at_ms: crate::source::now_us() / 1000,
            score: self.last_score.unwrap_or(0.0),
            threshold,
            alarm_threshold,
            model: self.model_ref.clone(),
            top_features: Vec::new(),
            detail: None,
        }
    }

    fn anomaly_event(
        &self,
        window: &Window,
        t: Transition,
        features: &[f64],
        scored: &Scored,
    ) -> AnomalyEvent {
        let mut event = self.base_event(
            window,
            t,
            EventKind::Anomaly,
            &self.identity.vibration_channel,
        );
        event.score = scored.score;
        event.top_features = explain(&self.feature_names, features, scored);
        if t.reminder {
            event.detail = Some("alarm persists".into());
        }
        event
    }

    fn sensor_event(
        &self,
        window: &Window,
        t: Transition,
        reason: &str,
        channel: Channel,
    ) -> AnomalyEvent {
        let channel = match channel {
            Channel::Vibration => &self.identity.vibration_channel,
            Channel::Temperature => &self.identity.temperature_channel,
        };
        let mut event = self.base_event(window, t, EventKind::SensorFault, channel);
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
