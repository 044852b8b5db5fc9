//! Process features: pumps watched through slow process channels.
//!
//! Many pump stations already log, about once a second, the RMS of a
//! housing accelerometer or two, the motor current and voltage, the loop
//! pressure and the flow (the SKAB test rig logs exactly these). A valve
//! stuck half-way, a cavitating impeller or a blocked strainer moves them
//! together in ways a healthy pump does not. The features are each
//! channel's mean over the last few readings, which steadies 1 Hz sensor
//! noise without hiding a change for long.
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
    /// Readings averaged into each feature (the latest ones).
    pub smoothing_rows: usize,
}

/// Pumps: both housing accelerometers' RMS, motor current, loop pressure,
/// motor voltage and flow, each averaged over the last 5 readings.
pub const PUMP_PROCESS_V1: ProcessProfile = ProcessProfile {
    name: "pump-process-v1",
    asset_kind: AssetKind::Pump,
    features: &[
        "accel1_rms_g",
        "accel2_rms_g",
        "current_a",
        "pressure_bar",
        "voltage_v",
        "flow_l_min",
    ],
    smoothing_rows: 5,
};

/// Every process profile this agent can compute.
pub const PROCESS_PROFILES: [&ProcessProfile; 1] = [&PUMP_PROCESS_V1];

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
    recent: VecDeque<Vec<f64>>,
}

impl ProcessExtractor {
    pub fn new(profile: &'static ProcessProfile) -> Self {
        ProcessExtractor {
            profile,
            recent: VecDeque::with_capacity(profile.smoothing_rows),
        }
    }

    pub fn profile(&self) -> &'static ProcessProfile {
        self.profile
    }

    /// The features after `row` (readings in profile order): the mean of
    /// each channel over the latest `smoothing_rows` good rows (fewer at
    /// the start). A bad row is refused and does not enter the mean.
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
        if self.recent.len() == self.profile.smoothing_rows.max(1) {
            self.recent.pop_front();
        }
        self.recent.push_back(row.to_vec());
        let n = self.recent.len() as f64;
        Ok((0..expected)
            .map(|i| self.recent.iter().map(|r| r[i]).sum::<f64>() / n)
            .collect())
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
}
