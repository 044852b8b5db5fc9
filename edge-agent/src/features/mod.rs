//! Feature vectors: the one code path from a window to what a model sees.
//!
//! Serving (`edge-agent run`) and training (`edge-agent features`, whose CSV
//! the training scripts read) both call [`FeatureExtractor::extract`], so a
//! model never sees features computed differently from the field. What is
//! computed is fixed by a named, versioned [`FeatureProfile`]; a model states
//! the profile it was trained on and the agent refuses a model whose profile
//! or feature names differ from its own.

mod spectrum;
mod stats;

use protocol::AssetKind;

pub use spectrum::BandSpectrum;
pub use stats::{Stats, stats};

use crate::window::Window;

/// What is computed for one kind of asset, and over how long a window.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureProfile {
    /// Name and version, e.g. `pump-v1`; changes whenever any feature does.
    pub name: &'static str,
    pub asset_kind: AssetKind,
    pub window_seconds: f64,
    pub hop_seconds: f64,
    /// `[lo, hi)` bands in Hz whose RMS are features.
    pub bands_hz: &'static [(f64, f64)],
    /// Band in which the first structural mode is sought; its frequency is
    /// a feature (stiffness loss lowers it).
    pub mode_search_hz: Option<(f64, f64)>,
}

/// Rotating machines: shaft lines (10-100 Hz), vane pass and its harmonics
/// (100-500 Hz), mid band, and the bearing-housing resonance band that
/// impacts excite (1-2.5 kHz). One-second windows.
pub const PUMP_V1: FeatureProfile = FeatureProfile {
    name: "pump-v1",
    asset_kind: AssetKind::Pump,
    window_seconds: 1.0,
    hop_seconds: 1.0,
    bands_hz: &[
        (10.0, 100.0),
        (100.0, 500.0),
        (500.0, 1000.0),
        (1000.0, 2500.0),
    ],
    mode_search_hz: None,
};

/// Bridge spans: the frequency of the first vertical bending mode (sought
/// in 2.5-4.5 Hz), which falls when the span loses stiffness, and bands
/// placed around the modes of the span type so that a modal frequency that
/// drops moves energy out of its band into the one below. 20.48 s windows
/// (0.05 Hz resolution at 100 Hz), advanced every 2 s.
pub const BRIDGE_V1: FeatureProfile = FeatureProfile {
    name: "bridge-v1",
    asset_kind: AssetKind::Bridge,
    window_seconds: 20.48,
    hop_seconds: 2.0,
    bands_hz: &[
        (0.5, 3.0),
        (3.0, 3.7),
        (3.7, 4.3),
        (4.3, 9.0),
        (9.0, 11.5),
        (11.5, 20.0),
    ],
    mode_search_hz: Some((2.5, 4.5)),
};

/// Every profile this agent can compute.
pub const PROFILES: [&FeatureProfile; 2] = [&PUMP_V1, &BRIDGE_V1];

impl FeatureProfile {
    /// Looks a profile up by its name.
    pub fn by_name(name: &str) -> Option<&'static FeatureProfile> {
        PROFILES.into_iter().find(|p| p.name == name)
    }

    /// The profile used for a kind of asset.
    pub fn for_kind(kind: AssetKind) -> &'static FeatureProfile {
        match kind {
            AssetKind::Pump => &PUMP_V1,
            AssetKind::Bridge => &BRIDGE_V1,
        }
    }

    /// Feature names in vector order; the units are in the names.
    pub fn feature_names(&self) -> Vec<String> {
        let mut names = vec![
            "accel_rms_g".to_owned(),
            "accel_peak_g".to_owned(),
            "crest_factor".to_owned(),
            "kurtosis".to_owned(),
        ];
        names.extend(
            self.bands_hz
                .iter()
                .map(|(lo, hi)| format!("band_{lo}_{hi}hz_rms_g")),
        );
        if self.mode_search_hz.is_some() {
            names.push("mode1_freq_hz".to_owned());
        }
        names.push("temperature_c".to_owned());
        names
    }

    /// Window and hop in samples at a sample rate.
    pub fn window_samples(&self, sample_rate_hz: f64) -> (usize, usize) {
        let len = (self.window_seconds * sample_rate_hz).round().max(1.0) as usize;
        let hop = (self.hop_seconds * sample_rate_hz).round().max(1.0) as usize;
        (len, hop)
    }

    /// Whether a sample rate can resolve every band of the profile.
    pub fn check_sample_rate(&self, sample_rate_hz: f64) -> Result<(), String> {
        let top = self.bands_hz.iter().map(|b| b.1).fold(0.0, f64::max);
        if sample_rate_hz < 2.0 * top {
            return Err(format!(
                "profile {} needs bands up to {top} Hz, but the sample rate {sample_rate_hz} Hz only resolves up to {} Hz",
                self.name,
                sample_rate_hz / 2.0
            ));
        }
        Ok(())
    }
}

/// Computes feature vectors for one asset's windows.
pub struct FeatureExtractor {
    profile: &'static FeatureProfile,
    spectrum: BandSpectrum,
}

impl FeatureExtractor {
    pub fn new(profile: &'static FeatureProfile, sample_rate_hz: f64) -> Self {
        let (len, _) = profile.window_samples(sample_rate_hz);
        FeatureExtractor {
            profile,
            spectrum: BandSpectrum::new(len, sample_rate_hz),
        }
    }

    pub fn profile(&self) -> &'static FeatureProfile {
        self.profile
    }

    /// The feature vector of a window, in [`FeatureProfile::feature_names`]
    /// order. The window must have the profile's length; values are only
    /// meaningful for windows that passed the sensor checks.
    pub fn extract(&mut self, window: &Window) -> Vec<f64> {
        let s = stats(&window.vibration);
        let mut features = vec![s.rms, s.peak, s.crest_factor, s.kurtosis];
        self.spectrum.transform(&window.vibration, s.mean);
        features.extend(self.spectrum.band_rms(self.profile.bands_hz));
        if let Some(search) = self.profile.mode_search_hz {
            features.push(self.spectrum.peak_frequency(search));
        }
        let temps = &window.temperature;
        let temperature = if temps.is_empty() {
            f64::NAN
        } else {
            temps.iter().map(|&t| t as f64).sum::<f64>() / temps.len() as f64
        };
        features.push(temperature);
        features
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::TAU;

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
            let window = Window {
                seq: 0,
                start_us: 0,
                sample_rate_hz: fs,
                vibration: (0..len).map(|i| (i % 7) as f32).collect(),
                temperature: vec![20.0],
            };
            let v = FeatureExtractor::new(p, fs).extract(&window);
            assert_eq!(v.len(), names.len(), "{}", p.name);
            assert!(v.iter().all(|x| x.is_finite()), "{v:?}");
        }
        assert_eq!(PUMP_V1.feature_names()[4], "band_10_100hz_rms_g");
        assert_eq!(BRIDGE_V1.feature_names()[6], "band_3.7_4.3hz_rms_g");
    }

    #[test]
    fn sine_features_match_analytic_values() {
        let fs = 5120.0;
        // 24 Hz shaft line, 0.1 g amplitude, over a 1 g gravity offset.
        let vibration: Vec<f32> = (0..5120)
            .map(|i| (1.0 + 0.1 * (TAU * 24.0 * i as f64 / fs).sin()) as f32)
            .collect();
        let window = Window {
            seq: 0,
            start_us: 0,
            sample_rate_hz: fs,
            vibration,
            temperature: vec![40.0, 42.0],
        };
        let v = FeatureExtractor::new(&PUMP_V1, fs).extract(&window);
        let rms = 0.1 / 2f64.sqrt();
        assert!((v[0] - rms).abs() < 1e-4, "rms {}", v[0]);
        assert!((v[1] - 0.1).abs() < 1e-4, "peak {}", v[1]);
        assert!((v[3] - 1.5).abs() < 1e-2, "kurtosis {}", v[3]);
        assert!((v[4] - rms).abs() < 2e-3, "10-100 Hz band {}", v[4]);
        assert!(v[5] < 1e-3, "100-500 Hz band {}", v[5]);
        assert_eq!(v[8], 41.0);
    }

    #[test]
    fn sample_rate_too_low_for_a_profile_is_refused_with_the_reason() {
        let err = PUMP_V1.check_sample_rate(1000.0).unwrap_err();
        assert!(err.contains("2500"), "{err}");
        assert!(BRIDGE_V1.check_sample_rate(100.0).is_ok());
    }
}
