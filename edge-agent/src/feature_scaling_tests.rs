use super::*;

fn temperature(min_spread: f64) -> CovariateSpec {
    CovariateSpec {
        feature: "temperature_c".into(),
        log: false,
        min_spread,
    }
}

/// A span whose first mode falls 0.006 Hz per C, over a baseline from 0 to
/// 20 C, with a little measurement noise (deterministic).
fn thermal_baseline() -> Vec<Vec<f64>> {
    (0..200)
        .map(|i| {
            let t = 20.0 * i as f64 / 199.0;
            let noise = 0.002 * ((i * 37 % 11) as f64 - 5.0) / 5.0;
            vec![3.9 - 0.006 * t + noise, t]
        })
        .collect()
}

#[test]
fn a_learned_temperature_dependence_is_not_a_fault_but_a_stiffness_loss_is() {
    let rows = thermal_baseline();
    let s =
        FeatureScaling::learn_with(&rows, ScalingStatistic::MedianMad, &[(temperature(1.0), 1)]);
    assert!(s.covariates[0].learned);
    assert!((s.slopes[0][0] + 0.006).abs() < 2e-4, "{:?}", s.slopes);
    // The covariate itself is standardised as usual, not fitted to itself.
    assert_eq!(s.slopes[1][0], 0.0);
    // Cold (-20 C, beyond the baseline) and on the line: normal.
    let cold = s.apply(&[3.9 + 0.12, -20.0]);
    assert!(cold[0].abs() < 3.0, "{cold:?}");
    // Warm (20 C) and 0.05 Hz lower than the line: far below normal.
    let damaged = s.apply(&[3.9 - 0.12 - 0.05, 20.0]);
    assert!(damaged[0] < -20.0, "{damaged:?}");
    // Without the covariate the cold day reads as far out.
    let plain = FeatureScaling::learn(&rows, ScalingStatistic::MedianMad);
    assert!(plain.apply(&[4.02, -20.0])[0] > 3.0);
}

#[test]
fn a_covariate_the_baseline_did_not_vary_is_left_out() {
    // Five days of baseline at one temperature (spread 0.03 C).
    let rows: Vec<Vec<f64>> = (0..50)
        .map(|i| vec![3.9 + 0.001 * (i % 5) as f64, 12.0 + 0.01 * (i % 7) as f64])
        .collect();
    let s = FeatureScaling::learn_with(&rows, ScalingStatistic::MeanStd, &[(temperature(0.5), 1)]);
    assert!(!s.covariates[0].learned, "{:?}", s.covariates);
    assert_eq!(s.slopes[0], vec![0.0]);
    assert_eq!(
        s.apply(&[3.95, 30.0]),
        FeatureScaling::learn(&rows, ScalingStatistic::MeanStd).apply(&[3.95, 30.0])
    );
}

#[test]
fn a_log_covariate_fits_levels_spanning_decades() {
    // A feature that rises by 0.01 per e-fold of the excitation RMS.
    let rows: Vec<Vec<f64>> = (0..60)
        .map(|i| {
            let rms = 1e-5 * 10f64.powf(i as f64 / 30.0);
            vec![5.0 + 0.01 * rms.ln(), rms]
        })
        .collect();
    let spec = CovariateSpec {
        feature: "accel_rms_g".into(),
        log: true,
        min_spread: 0.1,
    };
    let s = FeatureScaling::learn_with(&rows, ScalingStatistic::MeanStd, &[(spec, 1)]);
    assert!((s.slopes[0][0] - 0.01).abs() < 1e-6, "{:?}", s.slopes);
    let z = s.apply(&[5.0 + 0.01 * 1e-3f64.ln(), 1e-3]);
    assert!(z[0].abs() < 1e-3, "{z:?}");
}

#[test]
fn units_and_standardised_values_are_inverse() {
    let rows = thermal_baseline();
    let s = FeatureScaling::learn_with(&rows, ScalingStatistic::MeanStd, &[(temperature(1.0), 1)]);
    let x = [3.81, 7.5];
    let back = s.to_units(&x, &s.apply(&x));
    assert!((back[0] - x[0]).abs() < 1e-12 && (back[1] - x[1]).abs() < 1e-12);
}

#[test]
fn a_record_from_before_covariates_still_reads() {
    let old = r#"{"center":[1.0,2.0],"scale":[0.5,0.25]}"#;
    let s: FeatureScaling = serde_json::from_str(old).unwrap();
    assert!(s.covariates.is_empty() && s.slopes.is_empty());
    assert_eq!(s.apply(&[1.5, 2.5]), vec![1.0, 2.0]);
    // And one without covariates is written as before.
    assert_eq!(serde_json::to_string(&s).unwrap(), old);
}

#[test]
fn a_covariate_that_moved_with_an_earlier_one_is_left_out() {
    // The deck warms as the traffic (excitation) grows over the day: the
    // baseline cannot tell which one moves the mode.
    let rows: Vec<Vec<f64>> = (0..200)
        .map(|i| {
            let t = 20.0 * i as f64 / 199.0;
            let rms = 1e-4 * (0.05 * t).exp() * (1.0 + 0.001 * ((i * 13 % 7) as f64 - 3.0));
            vec![3.9 - 0.006 * t, t, rms]
        })
        .collect();
    let excitation = CovariateSpec {
        feature: "accel_rms_g".into(),
        log: true,
        min_spread: 0.1,
    };
    let s = FeatureScaling::learn_with(
        &rows,
        ScalingStatistic::MeanStd,
        &[(temperature(1.0), 1), (excitation, 2)],
    );
    assert!(s.covariates[0].learned, "{:?}", s.covariates);
    assert!(!s.covariates[1].learned, "{:?}", s.covariates);
    assert_eq!(
        s.covariates[1].collinear_with.as_deref(),
        Some("temperature_c")
    );
    assert!(
        (s.slopes[0][0] + 0.006).abs() < 1e-6 && s.slopes[0][1] == 0.0,
        "{:?}",
        s.slopes
    );
    // A cold day with heavy traffic, a combination the baseline never saw,
    // is still read from the temperature alone: on the line.
    let z = s.apply(&[3.9 + 0.03, -5.0, 5e-4]);
    assert!(z[0].abs() < 1.0, "{z:?}");
}

#[test]
fn two_independent_covariates_are_both_learned() {
    let rows: Vec<Vec<f64>> = (0..400)
        .map(|i| {
            let t = (i % 20) as f64;
            let load = ((i / 20) % 20) as f64;
            vec![5.0 - 0.01 * t + 0.02 * load, t, load]
        })
        .collect();
    let load = CovariateSpec {
        feature: "load".into(),
        log: false,
        min_spread: 1.0,
    };
    let s = FeatureScaling::learn_with(
        &rows,
        ScalingStatistic::MeanStd,
        &[(temperature(1.0), 1), (load, 2)],
    );
    assert!(s.covariates.iter().all(|c| c.learned), "{:?}", s.covariates);
    assert!((s.slopes[0][0] + 0.01).abs() < 1e-9 && (s.slopes[0][1] - 0.02).abs() < 1e-9);
}
