use super::*;

fn window(vibration: Vec<f32>, temperature: Vec<f32>) -> Window {
    Window {
        seq: 0,
        start_us: 0,
        sample_rate_hz: 100.0,
        vibration,
        temperature,
    }
}

fn noise(n: usize) -> Vec<f32> {
    (0..n).map(|i| (i as f32 * 0.37).sin() * 0.1).collect()
}

fn health() -> SensorHealth {
    SensorHealth::new(SensorHealthConfig::default())
}

#[test]
fn clean_window_passes() {
    assert_eq!(health().check(&window(noise(200), vec![20.0])), Ok(()));
}

#[test]
fn nan_samples_are_refused() {
    let mut v = noise(200);
    v[3] = f32::NAN;
    let f = health().check(&window(v, vec![20.0])).unwrap_err();
    assert_eq!(f.channel, Channel::Vibration);
    assert!(f.reason.contains("1 of 200"), "{}", f.reason);
}

#[test]
fn a_stuck_sensor_is_refused_even_part_way_through_a_window() {
    let f = health()
        .check(&window(vec![0.25; 8], vec![20.0]))
        .unwrap_err();
    assert!(f.reason.contains("flat-lined at 0.25"), "{}", f.reason);
    // Stuck for 0.6 s in the middle of a 100 Hz window.
    let mut part = noise(200);
    part[80..140].iter_mut().for_each(|x| *x = 0.125);
    let f = health()
        .check(&window(part.clone(), vec![20.0]))
        .unwrap_err();
    assert!(f.reason.contains("60 consecutive samples"), "{}", f.reason);
    // 0.3 s of repeats is not enough.
    part[110..140]
        .iter_mut()
        .enumerate()
        .for_each(|(i, x)| *x = i as f32 * 1e-3);
    assert_eq!(health().check(&window(part, vec![20.0])), Ok(()));
}

#[test]
fn clipping_at_full_scale_is_refused_beyond_the_tolerance() {
    let mut v = noise(200);
    v[10] = 8.0;
    v[20] = -7.95;
    // Two clipped samples are tolerated (a real shock can touch the rail).
    assert_eq!(health().check(&window(v.clone(), vec![20.0])), Ok(()));
    v[30] = 8.0;
    let f = health().check(&window(v, vec![20.0])).unwrap_err();
    assert!(
        f.reason.contains("3 samples at the +/-8 g full scale"),
        "{}",
        f.reason
    );
    // With a larger range the same samples are fine.
    let mut wide = SensorHealth::new(SensorHealthConfig {
        accel_range_g: 16.0,
        ..SensorHealthConfig::default()
    });
    let mut v = noise(200);
    v[10..20].iter_mut().for_each(|x| *x += 8.0);
    assert_eq!(wide.check(&window(v, vec![20.0])), Ok(()));
}

#[test]
fn missing_and_out_of_range_temperatures_are_refused() {
    let f = health().check(&window(noise(50), vec![])).unwrap_err();
    assert_eq!(
        (f.channel, f.reason.as_str()),
        (Channel::Temperature, "no temperature reading")
    );
    let f = health()
        .check(&window(noise(50), vec![20.0, 900.0]))
        .unwrap_err();
    assert!(f.reason.contains("900"), "{}", f.reason);
    let f = health()
        .check(&window(noise(50), vec![f32::NAN]))
        .unwrap_err();
    assert_eq!(f.channel, Channel::Temperature);
}

#[test]
fn an_implausible_temperature_step_is_refused_within_and_across_windows() {
    let mut h = health();
    assert_eq!(h.check(&window(noise(50), vec![40.0, 40.1])), Ok(()));
    // 40.1 -> 48 C between two consecutive readings of the next window.
    let f = h.check(&window(noise(50), vec![48.0])).unwrap_err();
    assert!(
        f.reason.contains("jumped from 40.1 C to 48 C"),
        "{}",
        f.reason
    );
    // If the new level persists, it becomes the reference again.
    assert_eq!(h.check(&window(noise(50), vec![48.1, 48.2])), Ok(()));
    let f = h.check(&window(noise(50), vec![48.2, 20.0])).unwrap_err();
    assert_eq!(f.channel, Channel::Temperature);
}

#[test]
fn silence_names_the_duration() {
    let f = health().silence(6.04);
    assert!(f.reason.starts_with("no data for 6.0 s"), "{}", f.reason);
}

#[test]
fn invalid_settings_are_refused() {
    let bad = SensorHealthConfig {
        silence_s: 0.0,
        ..SensorHealthConfig::default()
    };
    assert!(bad.validate().unwrap_err().contains("silence_s"));
    let upside_down = SensorHealthConfig {
        temperature_range_c: (150.0, -55.0),
        ..SensorHealthConfig::default()
    };
    assert!(
        upside_down
            .validate()
            .unwrap_err()
            .contains("temperature_range_c = [150, -55]")
    );
}

#[test]
fn a_hot_bearing_reads_within_an_rtds_range() {
    let hot = window(noise(50), vec![160.0]);
    let f = health().check(&hot).unwrap_err();
    assert!(
        f.reason.contains("outside the sensor range -55..150 C"),
        "{}",
        f.reason
    );
    let toml = "temperature_range_c = [-50.0, 250.0]";
    let rtd: SensorHealthConfig = toml::from_str(toml).unwrap();
    assert_eq!(rtd.temperature_range_c, (-50.0, 250.0));
    assert_eq!(SensorHealth::new(rtd).check(&hot), Ok(()));
}
