use super::*;
use DetectorState::*;

fn detector() -> Detector {
    // Warning from 1.0, alarm from 2.0; enter after 3, leave after 5.
    Detector::new(DetectorConfig::default(), 1.0, 2.0)
}

/// Feeds scores and returns the state after each.
fn run(d: &mut Detector, scores: &[f64]) -> Vec<DetectorState> {
    scores
        .iter()
        .map(|&s| {
            d.observe_score(s);
            d.state()
        })
        .collect()
}

#[test]
fn single_spikes_never_raise_anything() {
    let mut d = detector();
    let states = run(&mut d, &[0.2, 9.0, 0.3, 9.0, 9.0, 0.1, 9.0, 0.2]);
    assert!(states.iter().all(|&s| s == Normal), "{states:?}");
}

#[test]
fn sustained_scores_escalate_after_enter_windows() {
    let mut d = detector();
    let states = run(&mut d, &[1.5, 1.5, 1.5, 2.5, 2.5, 2.5]);
    assert_eq!(states, [Normal, Normal, Warning, Warning, Warning, Alarm]);
}

#[test]
fn alarm_is_reached_directly_when_scores_jump() {
    let mut d = detector();
    let mut transitions = vec![];
    for _ in 0..3 {
        transitions.extend(d.observe_score(5.0));
    }
    assert_eq!(
        transitions,
        [Transition {
            from: Normal,
            to: Alarm,
            reminder: false
        }]
    );
}

#[test]
fn alarm_needs_exit_windows_below_release_to_clear() {
    let mut d = detector();
    run(&mut d, &[5.0, 5.0, 5.0]);
    assert_eq!(d.state(), Alarm);
    // 1.7 is below the alarm threshold but above 0.8 x 2.0: not calm.
    let states = run(&mut d, &[1.7; 10]);
    assert!(states.iter().all(|&s| s == Alarm), "{states:?}");
    // Four calm windows, one relapse, then five calm windows.
    let states = run(&mut d, &[0.1, 0.1, 0.1, 0.1, 5.0, 0.1, 0.1, 0.1, 0.1, 0.1]);
    assert_eq!(states[..9], [Alarm; 9]);
    assert_eq!(states[9], Normal);
}

#[test]
fn alarm_steps_down_to_warning_when_scores_stay_elevated() {
    let mut d = detector();
    run(&mut d, &[5.0, 5.0, 5.0]);
    let states = run(&mut d, &[1.2; 5]);
    assert_eq!(states[4], Warning);
}

#[test]
fn sensor_fault_is_immediate_and_clears_after_good_windows() {
    let mut d = detector();
    run(&mut d, &[1.5, 1.5]);
    let t = d.observe_sensor_fault().unwrap();
    assert_eq!((t.from, t.to), (Normal, SensorFault));
    // A second faulty window is no new transition.
    assert!(d.observe_sensor_fault().is_none());
    let states = run(&mut d, &[0.1; 5]);
    assert_eq!(
        states,
        [SensorFault, SensorFault, SensorFault, SensorFault, Normal]
    );
    // Escalation counts restarted: the two earlier windows do not count.
    let states = run(&mut d, &[1.5, 1.5]);
    assert_eq!(states, [Normal, Normal]);
}

#[test]
fn a_model_fault_leaves_alarm_at_once_and_clears_after_scored_windows() {
    let mut d = detector();
    run(&mut d, &[5.0; 3]);
    assert_eq!(d.state(), Alarm);
    // Whatever the model said before, a window it could not score is no
    // verdict: the detector leaves alarm for model_fault.
    let t = d.observe_model_fault().unwrap();
    assert_eq!((t.from, t.to), (Alarm, ModelFault));
    assert!(d.observe_model_fault().is_none());
    let states = run(&mut d, &[0.1; 5]);
    assert_eq!(
        states,
        [ModelFault, ModelFault, ModelFault, ModelFault, Normal]
    );
}

#[test]
fn alarm_sends_reminders() {
    let config = DetectorConfig {
        reminder_windows: 4,
        ..DetectorConfig::default()
    };
    let mut d = Detector::new(config, 1.0, 2.0);
    let transitions: Vec<Transition> = (0..3 + 8).filter_map(|_| d.observe_score(3.0)).collect();
    assert_eq!(transitions.len(), 3, "{transitions:?}");
    assert!(!transitions[0].reminder);
    assert!(transitions[1].reminder && transitions[2].reminder);
}

#[test]
fn invalid_configs_are_refused() {
    let bad = DetectorConfig {
        enter_windows: 0,
        ..DetectorConfig::default()
    };
    assert!(bad.validate().is_err());
    let bad = DetectorConfig {
        release_factor: 1.5,
        ..DetectorConfig::default()
    };
    assert!(bad.validate().is_err());
}
