use super::*;
use std::f64::consts::TAU;

fn window(vibration: Vec<f32>, fs: f64) -> Window {
    Window {
        seq: 0,
        start_us: 0,
        sample_rate_hz: fs,
        vibration,
        temperature: vec![40.0, 42.0],
    }
}

#[test]
fn names_match_vector_length_and_are_unique() {
    for p in PROFILES {
        let names = p.feature_names();
        let unique: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        let fs = if p.asset_kind == AssetKind::Pump {
            5120.0
        } else {
            100.0
        };
        let (len, _) = p.window_samples(fs);
        let w = window((0..len).map(|i| ((i * 7919) % 13) as f32).collect(), fs);
        let v = FeatureExtractor::new(p, fs, AssetAnalysis::default()).extract(&w);
        assert_eq!(v.values.len(), names.len(), "{}", p.name);
        assert!(v.values.iter().all(|x| x.is_finite()), "{v:?}");
    }
    let pump = PUMP_V2.feature_names();
    assert_eq!(pump[5], "velocity_rms_mm_s");
    assert_eq!(pump[6], "band_10_100hz_rms_g");
    assert_eq!(
        pump[10..14],
        ["env_bpfo_g", "env_bpfi_g", "env_bsf_g", "env_ftf_g"]
    );
    let bridge = BRIDGE_V2.feature_names();
    assert_eq!(
        bridge[11..14],
        ["mode1_freq_hz", "mode2_freq_hz", "mode3_freq_hz"]
    );
}

#[test]
fn a_sine_gives_its_known_rms_velocity_and_zone() {
    // 24 Hz shaft line of 0.05 g over a 1 g gravity offset.
    let fs = 5120.0;
    let xs: Vec<f32> = (0..5120)
        .map(|i| (1.0 + 0.05 * (TAU * 24.0 * i as f64 / fs).sin()) as f32)
        .collect();
    let v = FeatureExtractor::new(&PUMP_V2, fs, AssetAnalysis::default()).extract(&window(xs, fs));
    let rms = 0.05 / 2f64.sqrt();
    assert!((v.values[0] - rms).abs() < 1e-4, "rms {}", v.values[0]);
    assert!((v.values[1] - 0.05).abs() < 1e-4, "peak {}", v.values[1]);
    assert!((v.values[3] - 1.5).abs() < 1e-2, "kurtosis {}", v.values[3]);
    let velocity = 0.05 * G0 / (TAU * 24.0) * 1000.0 / 2f64.sqrt();
    assert!(
        (v.values[5] - velocity).abs() < 0.01 * velocity,
        "velocity {}",
        v.values[5]
    );
    assert_eq!(v.velocity_rms_mm_s, Some(v.values[5]));
    // 2.3 mm/s is zone B for a class II machine.
    assert_eq!(v.iso_zone, Some(IsoZone::B));
    assert!(
        (v.values[6] - rms).abs() < 2e-3,
        "10-100 Hz band {}",
        v.values[6]
    );
    assert_eq!(*v.values.last().unwrap(), 41.0);
}

/// Impacts at `rate_hz` ringing a 1.8 kHz resonance over background noise.
fn impacts(rate_hz: f64, fs: f64, n: usize) -> Vec<f32> {
    let mut xs: Vec<f32> = (0..n)
        .map(|i| (0.02 * ((i as f64 * 12.9898).sin() * 43758.5453).fract()) as f32)
        .collect();
    let mut next = 0.0;
    while (next as usize) < n {
        for (j, x) in xs[next as usize..].iter_mut().enumerate().take(300) {
            let t = j as f64 / fs;
            *x += (0.4 * (-300.0 * t).exp() * (TAU * 1800.0 * t).sin()) as f32;
        }
        next += fs / rate_hz;
    }
    xs
}

#[test]
fn an_impulse_train_at_bpfo_shows_in_the_bpfo_envelope_feature_only() {
    let fs = 5120.0;
    let analysis = AssetAnalysis::default();
    let f = analysis.bearing.defect_frequencies(analysis.shaft_hz);
    let mut extractor = FeatureExtractor::new(&PUMP_V2, fs, analysis);
    let v = extractor
        .extract(&window(impacts(f.bpfo, fs, 5120), fs))
        .values;
    let (bpfo, bpfi, bsf, ftf) = (v[10], v[11], v[12], v[13]);
    assert!(
        bpfo > 5.0 * bpfi.max(bsf).max(ftf),
        "bpfo {bpfo}, bpfi {bpfi}, bsf {bsf}, ftf {ftf}"
    );
    let v = extractor
        .extract(&window(impacts(f.bpfi, fs, 5120), fs))
        .values;
    assert!(v[11] > 5.0 * v[10].max(v[12]), "{:?}", &v[10..14]);
}

#[test]
fn bridge_modes_are_tracked_in_their_search_bands() {
    let fs = 100.0;
    let n = 2048;
    let modes = [3.87, 9.71, 12.44];
    let xs: Vec<f32> = (0..n)
        .map(|i| {
            let t = i as f64 / fs;
            modes
                .iter()
                .zip([1e-3, 5e-4, 3e-4])
                .map(|(f, a)| a * (TAU * f * t).sin())
                .sum::<f64>() as f32
        })
        .collect();
    let v =
        FeatureExtractor::new(&BRIDGE_V2, fs, AssetAnalysis::default()).extract(&window(xs, fs));
    for (m, f) in modes.iter().enumerate() {
        let got = v.values[11 + m];
        assert!(
            (got - f).abs() < 0.02,
            "mode {} at {f} Hz read as {got}",
            m + 1
        );
    }
    assert_eq!(v.velocity_rms_mm_s, None);
    assert_eq!(v.iso_zone, None);
}

#[test]
fn sample_rate_too_low_for_a_profile_is_refused_with_the_reason() {
    let err = PUMP_V2.check_sample_rate(1000.0).unwrap_err();
    assert!(err.contains("2500"), "{err}");
    assert!(BRIDGE_V2.check_sample_rate(100.0).is_ok());
}
