use super::*;
use store::SledStore;

fn spec(windows: u32, scaling: bool) -> CommissioningSpec {
    CommissioningSpec {
        baseline_windows: windows,
        feature_scaling: scaling,
        scaling_statistic: ScalingStatistic::MedianMad,
        threshold_quantile: 0.9,
        threshold_margin: 2.0,
        alarm_factor: 3.0,
        covariates: Vec::new(),
    }
}

fn model() -> ModelRef {
    ModelRef {
        id: "m".into(),
        version: "1.0.0".into(),
    }
}

#[test]
fn quantiles_interpolate_between_order_statistics() {
    let xs = [4.0, 1.0, 3.0, 2.0, 5.0];
    assert_eq!(quantile(&xs, 0.0), 1.0);
    assert_eq!(quantile(&xs, 0.5), 3.0);
    assert_eq!(quantile(&xs, 1.0), 5.0);
    assert!((quantile(&xs, 0.9) - 4.6).abs() < 1e-12);
    assert!(quantile(&[], 0.5).is_nan());
}

#[test]
fn scaling_is_median_and_robust_spread_and_ignores_an_outlier() {
    // Feature 0: 1..=9 plus one wild value; feature 1 never varies.
    let mut rows: Vec<Vec<f64>> = (1..=9).map(|i| vec![i as f64, 7.0]).collect();
    rows.push(vec![1e6, 7.0]);
    let s = FeatureScaling::learn(&rows, ScalingStatistic::MedianMad);
    // Median of 1..9 and 1e6 is 5.5; absolute deviations' median is 2.5.
    assert_eq!(s.center, vec![5.5, 7.0]);
    assert!((s.scale[0] - 1.4826 * 2.5).abs() < 1e-12, "{:?}", s.scale);
    assert!((s.scale[1] - 7e-6).abs() < 1e-18, "{:?}", s.scale);
    let z = s.apply(&[5.5 + 1.4826 * 2.5, 7.0 + 7e-5]);
    assert!(
        (z[0] - 1.0).abs() < 1e-12 && (z[1] - 10.0).abs() < 1e-6,
        "{z:?}"
    );
}

#[test]
fn mean_and_standard_deviation_scaling_is_hotellings() {
    let rows: Vec<Vec<f64>> = [1.0, 2.0, 3.0, 4.0, 5.0].iter().map(|&x| vec![x]).collect();
    let s = FeatureScaling::learn(&rows, ScalingStatistic::MeanStd);
    assert_eq!(s.center, vec![3.0]);
    assert!((s.scale[0] - 2.5f64.sqrt()).abs() < 1e-12, "{:?}", s.scale);
    // A quantised channel whose MAD is zero still gets a usable spread.
    let quantised: Vec<Vec<f64>> = [32.0, 32.0, 32.0, 32.0, 33.0]
        .iter()
        .map(|&x| vec![x])
        .collect();
    let mad = FeatureScaling::learn(&quantised, ScalingStatistic::MedianMad);
    let std = FeatureScaling::learn(&quantised, ScalingStatistic::MeanStd);
    assert!(mad.scale[0] < 1e-4 && std.scale[0] > 0.4, "{mad:?} {std:?}");
}

#[test]
fn thresholds_come_from_the_baseline_scores() {
    let mut c = Commissioning::start(spec(10, false), &[]);
    let mut full = false;
    for i in 1..=10 {
        assert!(!full, "full before the last window");
        full = c.collect(&[i as f64]);
    }
    assert!(full);
    assert_eq!(c.status().phase, CommissioningPhase::Baseline);
    let record = c
        .finish(("P-1", model(), "pump-v2"), 42, |x| Ok(x[0] * 10.0))
        .unwrap()
        .clone();
    // Scores 10..=100; their 0.9 quantile is 91; margin 2; alarm factor 3.
    assert!((record.baseline_score_quantile - 91.0).abs() < 1e-9);
    assert!((record.threshold - 182.0).abs() < 1e-9);
    assert!((record.alarm_threshold - 546.0).abs() < 1e-9);
    assert_eq!(record.completed_at_ms, 42);
    let status = c.status();
    assert_eq!(status.phase, CommissioningPhase::Commissioned);
    assert_eq!((status.windows, status.windows_needed), (10, 10));
    assert!(!c.collect(&[1.0]), "a commissioned asset collects nothing");
}

#[test]
fn with_scaling_the_model_scores_standardised_baseline_features() {
    let mut c = Commissioning::start(spec(10, true), &[]);
    for i in 0..10 {
        c.collect(&[100.0 + i as f64, -3.0]);
    }
    let mut seen = Vec::new();
    let record = c
        .finish(("P-1", model(), "pump-v2"), 0, |x| {
            seen.push(x.to_vec());
            Ok(x.iter().map(|v| v * v).sum())
        })
        .unwrap()
        .clone();
    assert_eq!(seen.len(), 10);
    // Standardised: centred on the median, so the middle windows are near 0.
    assert!(seen.iter().all(|z| z[0].abs() < 2.0), "{seen:?}");
    let scaling = record.scaling.expect("learned");
    assert!((scaling.center[0] - 104.5).abs() < 1e-12);
}

#[test]
fn the_covariates_a_baseline_taught_are_in_the_status() {
    let covariate = |feature: &str| CovariateSpec {
        feature: feature.into(),
        log: false,
        min_spread: 0.5,
    };
    let spec = CommissioningSpec {
        covariates: vec![covariate("temperature_c"), covariate("load")],
        ..spec(20, true)
    };
    let names: Vec<String> = ["mode1_freq_hz", "temperature_c", "load"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    spec.validate_for(&names).unwrap();
    let mut c = Commissioning::start(spec, &names);
    for i in 0..20 {
        // The temperature swings over 10 C; the load never moves.
        let t = i as f64 / 2.0;
        c.collect(&[3.9 - 0.006 * t, t, 1.0]);
    }
    let record = c
        .finish(("SPAN-1", model(), "bridge-modal-v1"), 0, |x| {
            Ok(x.iter().map(|v| v * v).sum())
        })
        .unwrap();
    let status = record.status();
    assert_eq!(status.covariates_learned, ["temperature_c"]);
    let slope = record.scaling.as_ref().unwrap().slopes[0][0];
    assert!((slope + 0.006).abs() < 1e-9, "{slope}");
}

#[test]
fn a_baseline_that_cannot_be_scored_starts_over_with_the_reason() {
    let mut c = Commissioning::start(spec(10, false), &[]);
    for _ in 0..10 {
        c.collect(&[1.0]);
    }
    let err = c
        .finish(("P-1", model(), "pump-v2"), 0, |_| Ok(0.0))
        .unwrap_err();
    assert!(err.to_string().contains("no usable threshold"), "{err}");
    assert_eq!(c.status().windows, 0, "baseline restarted");
    for _ in 0..10 {
        c.collect(&[f64::NAN]);
    }
    let err = c
        .finish(("P-1", model(), "pump-v2"), 0, |_| Ok(1.0))
        .unwrap_err();
    assert!(err.to_string().contains("not finite"), "{err}");
}

#[test]
fn specs_with_unusable_numbers_are_refused_by_name() {
    assert!(spec(10, false).validate().is_ok());
    let too_short = CommissioningSpec {
        baseline_windows: 3,
        ..spec(10, false)
    };
    assert!(
        too_short
            .validate()
            .unwrap_err()
            .contains("baseline_windows")
    );
    let below_one = CommissioningSpec {
        alarm_factor: 0.5,
        ..spec(10, false)
    };
    assert!(below_one.validate().unwrap_err().contains("alarm_factor"));
    let quantile = CommissioningSpec {
        threshold_quantile: 1.5,
        ..spec(10, false)
    };
    assert!(
        quantile
            .validate()
            .unwrap_err()
            .contains("threshold_quantile")
    );
}

#[test]
fn records_survive_reopening_the_store_and_can_be_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Commissioning::start(spec(10, true), &[]);
    for i in 0..10 {
        c.collect(&[i as f64, 1.0]);
    }
    let record = c
        .finish(("P-7", model(), "pump-v2"), 9, |x| Ok(1.0 + x[0].abs()))
        .unwrap()
        .clone();
    {
        let s = CommissioningStore::new(Arc::new(SledStore::open(dir.path()).unwrap()));
        s.save(&record).unwrap();
    }
    let s = CommissioningStore::new(Arc::new(SledStore::open(dir.path()).unwrap()));
    assert_eq!(s.load("P-7").unwrap(), Some(record));
    assert_eq!(s.load("P-8").unwrap(), None);
    s.forget("P-7").unwrap();
    assert_eq!(s.load("P-7").unwrap(), None);
}
