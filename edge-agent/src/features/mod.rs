//! Feature vectors: the one code path from a window to what a model sees.
//!
//! Serving (`edge-agent run`) and training (`edge-agent features`, whose CSV
//! the training scripts read) both call [`FeatureExtractor::extract`], so a
//! model never sees features computed differently from the field. What is
//! computed is fixed by a named, versioned [`FeatureProfile`]; a model states
//! the profile it was trained on and the agent refuses a model whose profile
//! or feature names differ from its own. What depends on the particular
//! asset (shaft speed, bearing, the band its bearing rings in, where its
//! modes are, its ISO class) is an [`AssetAnalysis`].

pub mod bearing;
mod envelope;
pub(crate) mod fft_pool;
pub mod iso;
mod levels;
pub mod process;
mod scan;
mod spectrum;
mod stats;
mod sweep_dispatch;

use protocol::{AssetKind, IsoZone};

pub use bearing::{BearingGeometry, DefectFrequencies};
pub use envelope::EnvelopeSpectrum;
pub use iso::{MachineClass, ZoneLimits};
pub use scan::{FLAT_SCREEN_RUN, Scan, longest_run, scan};
pub use spectrum::{BinView, G0, Periodogram, PowerSpectrum, Spectrum, Welch};
pub use stats::{Stats, stats};

use crate::window::Window;

/// How a profile looks at the spectrum.
#[derive(Debug, Clone, PartialEq)]
pub enum Analysis {
    /// Rotating machines: one periodogram of the window, velocity RMS,
    /// band RMS and the envelope at the bearing defect frequencies.
    Machine {
        bands_hz: &'static [(f64, f64)],
        velocity_band_hz: (f64, f64),
    },
    /// Structures: a Welch-averaged spectrum, band RMS and the tracked
    /// frequencies of the first modes.
    Structure {
        bands_hz: &'static [(f64, f64)],
        segment_seconds: f64,
        modes: usize,
    },
}

/// What is computed for one kind of asset, and over how long a window.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureProfile {
    /// Name and version, e.g. `pump-v2`; changes whenever any feature does.
    pub name: &'static str,
    pub asset_kind: AssetKind,
    pub window_seconds: f64,
    pub hop_seconds: f64,
    pub analysis: Analysis,
}

/// Band levels of rotating machines: shaft lines (10-100 Hz), vane pass
/// (100-500 Hz), a mid band, and where bearing impacts ring (1-2.5 kHz).
const MACHINE_BANDS_HZ: &[(f64, f64)] = &[
    (10.0, 100.0),
    (100.0, 500.0),
    (500.0, 1000.0),
    (1000.0, 2500.0),
];

/// Rotating machines: time-domain shape, velocity RMS 10-1000 Hz (ISO
/// 10816), shaft lines (10-100 Hz), vane pass (100-500 Hz), mid band, the
/// band bearing impacts ring in (1-2.5 kHz), and the envelope amplitude at
/// the four bearing defect frequencies. One-second windows.
pub const PUMP_V2: FeatureProfile = FeatureProfile {
    name: "pump-v2",
    asset_kind: AssetKind::Pump,
    window_seconds: 1.0,
    hop_seconds: 1.0,
    analysis: Analysis::Machine {
        bands_hz: MACHINE_BANDS_HZ,
        velocity_band_hz: (10.0, 1000.0),
    },
};

/// Rolling-element bearings on test rigs and short records: the pump-v2
/// features over 0.1 s windows advanced every 0.05 s (10 Hz bins: enough
/// to separate the defect frequencies of a shaft at 25-30 Hz). For models
/// that learn each bearing at commissioning, where a baseline of a few
/// seconds must hold dozens of windows.
pub const BEARING_V1: FeatureProfile = FeatureProfile {
    name: "bearing-v1",
    asset_kind: AssetKind::Pump,
    window_seconds: 0.1,
    hop_seconds: 0.05,
    analysis: Analysis::Machine {
        bands_hz: MACHINE_BANDS_HZ,
        velocity_band_hz: (10.0, 1000.0),
    },
};

/// Bridge spans: the frequencies of the first three modes (each sought in
/// its own band, see [`AssetAnalysis::mode_search_hz`]), which fall when the
/// span loses stiffness, and band RMS placed around the modes of the span
/// type. 20.48 s windows advanced every 2 s; spectra averaged over three
/// half-overlapping 10.24 s segments.
pub const BRIDGE_V2: FeatureProfile = FeatureProfile {
    name: "bridge-v2",
    asset_kind: AssetKind::Bridge,
    window_seconds: 20.48,
    hop_seconds: 2.0,
    analysis: STRUCTURE_V2,
};

/// The bridge-v2 features over 61.44 s windows (eleven averaged segments
/// instead of three), advanced every 2 s. Under weak ambient excitation a
/// 20 s window often shows no mode at all (on the Z24 reference records a
/// fifth of the windows lost the first mode's peak); a minute of averaging
/// finds it in every window. For models that track modal frequencies.
pub const BRIDGE_MODAL_V1: FeatureProfile = FeatureProfile {
    name: "bridge-modal-v1",
    asset_kind: AssetKind::Bridge,
    window_seconds: 61.44,
    hop_seconds: 2.0,
    analysis: STRUCTURE_V2,
};

/// Bands around the modes of the span type, and three tracked modes, from
/// spectra averaged over half-overlapping 10.24 s segments.
const STRUCTURE_V2: Analysis = Analysis::Structure {
    bands_hz: &[
        (0.5, 3.0),
        (3.0, 3.7),
        (3.7, 4.3),
        (4.3, 9.0),
        (9.0, 11.5),
        (11.5, 20.0),
    ],
    segment_seconds: 10.24,
    modes: 3,
};

/// Every profile this agent can compute.
pub const PROFILES: [&FeatureProfile; 4] = [&PUMP_V2, &BRIDGE_V2, &BEARING_V1, &BRIDGE_MODAL_V1];

impl FeatureProfile {
    /// Looks a profile up by its name.
    pub fn by_name(name: &str) -> Option<&'static FeatureProfile> {
        PROFILES.into_iter().find(|p| p.name == name)
    }

    /// The profile a model was trained on, if it is a window profile for
    /// `kind`; else the kind's usual one.
    pub fn for_model(kind: AssetKind, model_profile: &str) -> &'static FeatureProfile {
        Self::by_name(model_profile)
            .filter(|p| p.asset_kind == kind)
            .unwrap_or_else(|| Self::for_kind(kind))
    }

    /// The profile used for a kind of asset.
    pub fn for_kind(kind: AssetKind) -> &'static FeatureProfile {
        match kind {
            AssetKind::Pump => &PUMP_V2,
            AssetKind::Bridge => &BRIDGE_V2,
        }
    }

    /// Feature names in vector order; the units are in the names.
    pub fn feature_names(&self) -> Vec<String> {
        let mut names: Vec<String> = [
            "accel_rms_g",
            "accel_peak_g",
            "crest_factor",
            "kurtosis",
            "skewness",
        ]
        .map(String::from)
        .to_vec();
        let band = |(lo, hi): &(f64, f64)| format!("band_{lo}_{hi}hz_rms_g");
        match &self.analysis {
            Analysis::Machine { bands_hz, .. } => {
                names.push("velocity_rms_mm_s".into());
                names.extend(bands_hz.iter().map(band));
                names.extend(
                    ["env_bpfo_g", "env_bpfi_g", "env_bsf_g", "env_ftf_g"].map(String::from),
                );
            }
            Analysis::Structure {
                bands_hz, modes, ..
            } => {
                names.extend(bands_hz.iter().map(band));
                names.extend((1..=*modes).map(|m| format!("mode{m}_freq_hz")));
            }
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
        let bands = match &self.analysis {
            Analysis::Machine { bands_hz, .. } | Analysis::Structure { bands_hz, .. } => bands_hz,
        };
        let top = bands.iter().map(|b| b.1).fold(0.0, f64::max);
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

/// What the features of one asset depend on beyond its profile.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetAnalysis {
    /// Nominal shaft speed (rotating machines).
    pub shaft_hz: f64,
    pub bearing: BearingGeometry,
    /// Band demodulated for the envelope; `None`: from 20 % of Nyquist,
    /// 2 kHz wide (or up to 80 % of Nyquist if that is narrower).
    pub envelope_band_hz: Option<(f64, f64)>,
    /// Where each tracked mode is sought (structures).
    pub mode_search_hz: Vec<(f64, f64)>,
    pub iso_limits: ZoneLimits,
}

impl Default for AssetAnalysis {
    fn default() -> Self {
        AssetAnalysis {
            shaft_hz: 1480.0 / 60.0,
            bearing: BearingGeometry::default(),
            envelope_band_hz: None,
            mode_search_hz: DEFAULT_MODE_SEARCH_HZ.to_vec(),
            iso_limits: MachineClass::II.limits(),
        }
    }
}

/// Search bands of the first three modes of the bridge type the simulator
/// and the shipped model know (3.9, 9.8 and 12.6 Hz nominal), wide enough
/// for temperature and a large stiffness loss.
pub const DEFAULT_MODE_SEARCH_HZ: [(f64, f64); 3] = [(2.5, 4.6), (7.0, 11.2), (11.2, 15.0)];

impl AssetAnalysis {
    /// The envelope band at a sample rate.
    pub fn envelope_band(&self, sample_rate_hz: f64) -> (f64, f64) {
        self.envelope_band_hz.unwrap_or_else(|| {
            let lo = 0.1 * sample_rate_hz;
            (
                lo,
                lo + (0.3 * sample_rate_hz).min(envelope::DEFAULT_MAX_BAND_HZ),
            )
        })
    }
}

/// One window's features, with the severity figures reported beside them.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureVector {
    pub values: Vec<f64>,
    pub velocity_rms_mm_s: Option<f64>,
    pub iso_zone: Option<IsoZone>,
}

enum Spectral {
    Machine {
        periodogram: Periodogram,
        envelope: EnvelopeSpectrum,
        defects: DefectFrequencies,
    },
    Structure {
        welch: Welch,
    },
}

/// Computes feature vectors for one asset's windows.
pub struct FeatureExtractor {
    profile: &'static FeatureProfile,
    /// How many features the profile has.
    features: usize,
    analysis: AssetAnalysis,
    spectral: Spectral,
}

/// Relative tolerance when reading the envelope at a defect frequency: the
/// rolling elements slip, and the shaft speed is only nominal.
pub const DEFECT_TOLERANCE: f64 = 0.02;

impl FeatureExtractor {
    pub fn new(
        profile: &'static FeatureProfile,
        sample_rate_hz: f64,
        analysis: AssetAnalysis,
    ) -> Self {
        let (len, _) = profile.window_samples(sample_rate_hz);
        let spectral = match &profile.analysis {
            Analysis::Machine { .. } => Spectral::Machine {
                periodogram: Periodogram::new(len, sample_rate_hz),
                envelope: EnvelopeSpectrum::new(
                    len,
                    sample_rate_hz,
                    analysis.envelope_band(sample_rate_hz),
                ),
                defects: analysis.bearing.defect_frequencies(analysis.shaft_hz),
            },
            Analysis::Structure {
                segment_seconds, ..
            } => Spectral::Structure {
                welch: Welch::new(
                    ((segment_seconds * sample_rate_hz).round() as usize).clamp(2, len),
                    sample_rate_hz,
                ),
            },
        };
        FeatureExtractor {
            profile,
            features: profile.feature_names().len(),
            analysis,
            spectral,
        }
    }

    pub fn profile(&self) -> &'static FeatureProfile {
        self.profile
    }

    /// The feature vector of a window, in [`FeatureProfile::feature_names`]
    /// order, without sensor checks (tests, analyses). The window must have
    /// the profile's length.
    pub fn extract(&mut self, window: &Window) -> FeatureVector {
        let mut accept_all = |_: &Scan| Ok::<(), std::convert::Infallible>(());
        match self.extract_checked(window, f64::INFINITY, &mut accept_all) {
            Ok(v) => v,
            Err(never) => match never {},
        }
    }

    /// The feature vector of a window whose samples pass `check`, which sees
    /// the one-pass [`Scan`] of the samples (clip level `clip_level`) before
    /// any feature is computed from them. For rotating machines the scan
    /// runs inside the same pass that fills the FFT input.
    pub fn extract_checked<E>(
        &mut self,
        window: &Window,
        clip_level: f64,
        check: &mut impl FnMut(&Scan) -> Result<(), E>,
    ) -> Result<FeatureVector, E> {
        let xs = &window.vibration;
        let mut values = Vec::with_capacity(self.features);
        let mut velocity = None;
        match (&mut self.spectral, &self.profile.analysis) {
            (
                Spectral::Machine {
                    periodogram,
                    envelope,
                    defects,
                },
                Analysis::Machine {
                    bands_hz,
                    velocity_band_hz: (vlo, vhi),
                },
            ) => {
                periodogram.scan_and_analyze(xs, clip_level, |scan, spectrum| {
                    check(scan)?;
                    push_stats(&mut values, scan);
                    // Velocity first, then the bands, as the profile names them.
                    let at = values.len();
                    values.push(0.0);
                    let v = levels::band_levels(spectrum, bands_hz, (*vlo, *vhi), &mut values);
                    values[at] = v;
                    velocity = Some(v);
                    values.extend(envelope.amplitudes_at(
                        spectrum,
                        [defects.bpfo, defects.bpfi, defects.bsf, defects.ftf],
                        DEFECT_TOLERANCE,
                    ));
                    Ok(())
                })?;
            }
            (
                Spectral::Structure { welch },
                Analysis::Structure {
                    bands_hz, modes, ..
                },
            ) => {
                let scan = scan(xs, clip_level);
                check(&scan)?;
                push_stats(&mut values, &scan);
                let spectrum = welch.estimate(xs, scan.stats.mean);
                values.extend(bands_hz.iter().map(|&(lo, hi)| spectrum.band_rms(lo, hi)));
                for m in 0..*modes {
                    let (lo, hi) = self
                        .analysis
                        .mode_search_hz
                        .get(m)
                        .copied()
                        .unwrap_or((f64::NAN, f64::NAN));
                    values.push(spectrum.peak_frequency(lo, hi));
                }
            }
            _ => unreachable!("the spectral state is built from the profile"),
        }
        let temps = &window.temperature;
        values.push(if temps.is_empty() {
            f64::NAN
        } else {
            temps.iter().map(|&t| t as f64).sum::<f64>() / temps.len() as f64
        });
        Ok(FeatureVector {
            values,
            velocity_rms_mm_s: velocity,
            iso_zone: velocity.map(|v| self.analysis.iso_limits.zone(v)),
        })
    }
}

fn push_stats(values: &mut Vec<f64>, scan: &Scan) {
    let s = scan.stats;
    values.extend([s.rms, s.peak, s.crest_factor, s.kurtosis, s.skewness]);
}

#[cfg(test)]
#[path = "features_tests.rs"]
mod tests;
