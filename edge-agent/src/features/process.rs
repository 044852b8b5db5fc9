//! Process features: pumps watched through slow process channels.
//!
//! Many pump stations already log, about once a second, the RMS of a
//! housing accelerometer or two, the motor current and voltage, the loop
//! pressure and the flow (the SKAB test rig logs exactly these). A valve
//! stuck half-way, a cavitating impeller or a blocked strainer moves them
//! together in ways a healthy pump does not. Each feature is one channel
//! smoothed, which steadies 1 Hz sensor noise without hiding a change for
//! long:
//!
//! - `pump-process-v1` takes the mean of the latest 5 readings;
//! - `pump-process-v2` takes an exponentially weighted moving average
//!   (EWMA) with weight 0.2 on the newest reading. That is the control
//!   chart statistical process control uses for small persistent shifts
//!   (Roberts 1959; Lucas and Saccucci 1990; the multivariate form, Lowry
//!   et al. 1992), with its textbook weight (Hunter 1986 and the NIST/
//!   SEMATECH e-Handbook, section 6.3.2.4: usually 0.2 to 0.3; Montgomery:
//!   0.05, 0.1 and 0.2 are the popular choices). It averages away as much
//!   noise as a 9-reading mean (variance ratio 0.2 / 1.8) yet gives the
//!   newest reading 0.2 of the say instead of 1/9, and it remembers a
//!   slow shift in flow or pressure for longer than any short mean.
//!
//! Temperatures are read but not featured: over a commissioning baseline of
//! minutes they only drift (the motor and the fluid warm up over hours), so
//! a baseline cannot say what their normal range is and every later warm-up
//! would look like a fault.

use std::collections::VecDeque;

use protocol::AssetKind;

/// A profile over rows of process readings.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessProfile {
    /// Name and version; changes whenever any feature does.
    pub name: &'static str,
    pub asset_kind: AssetKind,
    /// Feature names in vector order (units in the names), one per channel.
    pub features: &'static [&'static str],
    /// How each channel's readings become its feature.
    pub smoothing: Smoothing,
}

/// How a channel's readings are smoothed into its feature.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Smoothing {
    /// The mean of the latest `rows` good readings (fewer at the start).
    Mean { rows: usize },
    /// `feature = weight * reading + (1 - weight) * feature`, started at
    /// the first good reading (0 < weight <= 1).
    Ewma { weight: f64 },
}

/// The channels both pump profiles read, in vector order.
const PUMP_PROCESS_FEATURES: &[&str] = &[
    "accel1_rms_g",
    "accel2_rms_g",
    "current_a",
    "pressure_bar",
    "voltage_v",
    "flow_l_min",
];

/// Pumps: both housing accelerometers' RMS, motor current, loop pressure,
/// motor voltage and flow, each averaged over the last 5 readings. Kept so
/// that gateways still running `pump-process-anomaly` 1.x compute its
/// features.
pub const PUMP_PROCESS_V1: ProcessProfile = ProcessProfile {
    name: "pump-process-v1",
    asset_kind: AssetKind::Pump,
    features: PUMP_PROCESS_FEATURES,
    smoothing: Smoothing::Mean { rows: 5 },
};

/// Pumps: the same channels as v1, each an EWMA with weight 0.2.
pub const PUMP_PROCESS_V2: ProcessProfile = ProcessProfile {
    name: "pump-process-v2",
    asset_kind: AssetKind::Pump,
    features: PUMP_PROCESS_FEATURES,
    smoothing: Smoothing::Ewma { weight: 0.2 },
};

/// Every process profile this agent can compute.
pub const PROCESS_PROFILES: [&ProcessProfile; 2] = [&PUMP_PROCESS_V1, &PUMP_PROCESS_V2];

impl ProcessProfile {
    pub fn by_name(name: &str) -> Option<&'static ProcessProfile> {
        PROCESS_PROFILES.into_iter().find(|p| p.name == name)
    }

    pub fn feature_names(&self) -> Vec<String> {
        self.features.iter().map(|s| s.to_string()).collect()
    }
}

/// Why a row gives no feature vector.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RowError {
    #[error("{got} values for {expected} channels")]
    Width { got: usize, expected: usize },
    #[error("channel {channel} is not a finite number")]
    NotFinite { channel: &'static str },
}

/// Turns rows of readings into feature vectors, one per row.
pub struct ProcessExtractor {
    profile: &'static ProcessProfile,
    /// The latest good rows (mean smoothing only).
    recent: VecDeque<Vec<f64>>,
    /// The running average (EWMA smoothing only; empty before a good row).
    average: Vec<f64>,
}

impl ProcessExtractor {
    pub fn new(profile: &'static ProcessProfile) -> Self {
        let capacity = match profile.smoothing {
            Smoothing::Mean { rows } => rows.max(1),
            Smoothing::Ewma { .. } => 0,
        };
        ProcessExtractor {
            profile,
            recent: VecDeque::with_capacity(capacity),
            average: Vec::new(),
        }
    }

    pub fn profile(&self) -> &'static ProcessProfile {
        self.profile
    }

    /// The features after `row` (readings in profile order), each channel
    /// smoothed as the profile says. A bad row is refused and does not
    /// enter the smoothing.
    pub fn push(&mut self, row: &[f64]) -> Result<Vec<f64>, RowError> {
        let expected = self.profile.features.len();
        if row.len() != expected {
            return Err(RowError::Width {
                got: row.len(),
                expected,
            });
        }
        if let Some(i) = row.iter().position(|x| !x.is_finite()) {
            return Err(RowError::NotFinite {
                channel: self.profile.features[i],
            });
        }
        match self.profile.smoothing {
            Smoothing::Mean { rows } => {
                if self.recent.len() == rows.max(1) {
                    self.recent.pop_front();
                }
                self.recent.push_back(row.to_vec());
                let n = self.recent.len() as f64;
                Ok((0..expected)
                    .map(|i| self.recent.iter().map(|r| r[i]).sum::<f64>() / n)
                    .collect())
            }
            Smoothing::Ewma { weight } => {
                if self.average.is_empty() {
                    self.average = row.to_vec();
                } else {
                    for (average, reading) in self.average.iter_mut().zip(row) {
                        *average += weight * (reading - *average);
                    }
                }
                Ok(self.average.clone())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_means_of_the_latest_good_rows() {
        let mut x = ProcessExtractor::new(&PUMP_PROCESS_V1);
        let row = |v: f64| vec![v; 6];
        assert_eq!(x.push(&row(1.0)).unwrap(), row(1.0));
        assert_eq!(x.push(&row(3.0)).unwrap(), row(2.0));
        for v in [5.0, 7.0, 9.0] {
            x.push(&row(v)).unwrap();
        }
        // The window holds 1, 3, 5, 7, 9; then 1 drops out.
        assert_eq!(x.push(&row(11.0)).unwrap(), row(7.0));
        let mut bad = row(0.0);
        bad[3] = f64::NAN;
        assert_eq!(
            x.push(&bad),
            Err(RowError::NotFinite {
                channel: "pressure_bar"
            })
        );
        assert_eq!(
            x.push(&[1.0]),
            Err(RowError::Width {
                got: 1,
                expected: 6
            })
        );
        // Refused rows left the mean alone: 5, 7, 9, 11, 13.
        assert_eq!(x.push(&row(13.0)).unwrap(), row(9.0));
    }

    #[test]
    fn ewma_starts_at_the_first_good_row_and_weighs_the_newest_by_0_2() {
        let mut x = ProcessExtractor::new(&PUMP_PROCESS_V2);
        let row = |v: f64| vec![v; 6];
        let mut bad = row(0.0);
        bad[5] = f64::INFINITY;
        assert_eq!(
            x.push(&bad),
            Err(RowError::NotFinite {
                channel: "flow_l_min"
            })
        );
        // The refused row did not start the average.
        assert_eq!(x.push(&row(10.0)).unwrap(), row(10.0));
        // 10 + 0.2 * (20 - 10) = 12, then 12 + 0.2 * (2 - 12) = 10.
        let close = |got: Vec<f64>, want: f64| got.iter().all(|v| (v - want).abs() < 1e-12);
        assert!(close(x.push(&row(20.0)).unwrap(), 12.0));
        assert!(x.push(&bad).is_err());
        assert!(close(x.push(&row(2.0)).unwrap(), 10.0));
        // A step is followed geometrically: after n rows at 0 the feature
        // is 10 * 0.8^n.
        let mut last = Vec::new();
        for _ in 0..10 {
            last = x.push(&row(0.0)).unwrap();
        }
        assert!(close(last, 10.0 * 0.8f64.powi(10)));
    }

    #[test]
    fn profiles_share_channels_and_differ_in_smoothing() {
        assert_eq!(PUMP_PROCESS_V1.features, PUMP_PROCESS_V2.features);
        assert_ne!(PUMP_PROCESS_V1.smoothing, PUMP_PROCESS_V2.smoothing);
        assert_eq!(
            ProcessProfile::by_name("pump-process-v2"),
            Some(&PUMP_PROCESS_V2)
        );
    }
}
