//! The health index: one number per asset, 0 (failed) to 100 (as new).
//!
//! Defined here, beside the detector states it reads, because both sides
//! compute it: the hub for every asset it shows, and the agent's evaluation
//! for the health trend of a run-to-failure benchmark. One formula, so the
//! benchmark measures what operators see.

use crate::DetectorState;

/// The health index, 0 (failed) to 100 (as new):
///
/// | detector state | health | at the edges |
/// | --- | --- | --- |
/// | normal | 100 - 20 * min(score / warning, 1) | 100 at score 0, 80 at the warning threshold |
/// | warning | 79 - 29 * clamp((score - warning) / (alarm - warning), 0, 1) | 79 down to 50 at the alarm threshold |
/// | alarm | 49 * min(alarm / score, 1) | 49 at the alarm threshold, 24.5 at twice it |
/// | sensor fault | unchanged (`None`): the input says nothing about the asset | |
///
/// Without a score yet, the index stays where it was.
pub fn health_index(
    state: DetectorState,
    score: Option<f64>,
    warning: f64,
    alarm: f64,
) -> Option<f64> {
    let score = score?.max(0.0);
    let h = match state {
        DetectorState::Normal => 100.0 - 20.0 * (score / warning).min(1.0),
        DetectorState::Warning => {
            let span = (alarm - warning).max(f64::EPSILON);
            79.0 - 29.0 * ((score - warning) / span).clamp(0.0, 1.0)
        }
        DetectorState::Alarm => 49.0 * (alarm / score.max(f64::EPSILON)).min(1.0),
        DetectorState::SensorFault | DetectorState::ModelFault => return None,
    };
    Some((h * 10.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use DetectorState::*;

    #[test]
    fn health_bands_follow_the_documented_formula() {
        let h = |state, score| health_index(state, Some(score), 10.0, 20.0).unwrap();
        assert_eq!(h(Normal, 0.0), 100.0);
        assert_eq!(h(Normal, 5.0), 90.0);
        assert_eq!(h(Normal, 50.0), 80.0);
        assert_eq!(h(Warning, 10.0), 79.0);
        assert_eq!(h(Warning, 15.0), 64.5);
        assert_eq!(h(Warning, 99.0), 50.0);
        assert_eq!(h(Alarm, 20.0), 49.0);
        assert_eq!(h(Alarm, 40.0), 24.5);
        assert_eq!(h(Alarm, 5.0), 49.0);
        assert_eq!(health_index(SensorFault, Some(5.0), 10.0, 20.0), None);
        assert_eq!(health_index(Normal, None, 10.0, 20.0), None);
    }

    #[test]
    fn health_never_rises_as_the_score_grows_within_a_state() {
        for state in [Normal, Warning, Alarm] {
            let mut last = f64::INFINITY;
            for i in 0..200 {
                let h = health_index(state, Some(i as f64 * 0.5), 10.0, 20.0).unwrap();
                assert!(h <= last, "{state:?} at {i}");
                assert!((0.0..=100.0).contains(&h));
                last = h;
            }
        }
    }
}
