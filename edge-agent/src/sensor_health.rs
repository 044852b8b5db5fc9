//! Sensor health: refuses data that cannot be trusted, and says why.
//!
//! A dead, stuck or saturated sensor must not be scored: a flat line looks
//! wildly anomalous to a model (an alarm that sends a crew to a healthy
//! pump) or, worse, perfectly calm. Each window is checked before its
//! features are computed; a refused window puts the detector in
//! `sensor_fault`, and a distinct event asks for the sensor to be checked
//! rather than the asset. Silence (no data at all) is noticed by the
//! acquisition lane, which has the clock; see [`SensorHealthConfig::silence_s`].
//!
//! Checks, in order: non-finite samples; a stuck output (identical
//! consecutive samples for `stuck_s`); clipping (samples at the
//! accelerometer's full scale); a missing temperature reading; a reading
//! outside the thermometer's range; an implausible temperature step between
//! consecutive readings.

use serde::Deserialize;

use crate::features::{FLAT_SCREEN_RUN, Scan, longest_run, scan};
use crate::window::Window;

/// Temperature range of the default precision sensor (TMP117: -55 to
/// 150 C).
pub const TEMPERATURE_RANGE_C: (f64, f64) = (-55.0, 150.0);
/// A stuck run is at least this many samples, however high the rate.
pub const MIN_STUCK_RUN: usize = 16;
/// Samples at or beyond this fraction of full scale count as clipped.
pub const CLIP_FRACTION: f64 = 0.99;

/// `[assets.sensor_health]` in the config file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SensorHealthConfig {
    /// Full-scale range of the accelerometer, g (ADXL355: 2, 4 or 8).
    pub accel_range_g: f64,
    /// Clipped samples tolerated per window.
    pub max_clipped_samples: usize,
    /// Identical consecutive samples for this long mean a stuck sensor. A
    /// live 20-bit accelerometer's noise changes the reading every sample.
    pub stuck_s: f64,
    /// Largest believable change between consecutive temperature readings.
    pub max_temperature_step_c: f64,
    /// What the temperature sensor can read, C: a reading outside is a
    /// fault (default: the TMP117's -55 to 150).
    pub temperature_range_c: (f64, f64),
    /// No data for this long puts the channel in `sensor_fault` (a
    /// disconnected node or cable).
    pub silence_s: f64,
}

impl Default for SensorHealthConfig {
    fn default() -> Self {
        SensorHealthConfig {
            accel_range_g: 8.0,
            max_clipped_samples: 2,
            stuck_s: 0.5,
            max_temperature_step_c: 5.0,
            temperature_range_c: TEMPERATURE_RANGE_C,
            silence_s: 5.0,
        }
    }
}

impl SensorHealthConfig {
    pub(crate) fn validate(&self) -> Result<(), String> {
        let positive = [
            ("accel_range_g", self.accel_range_g),
            ("stuck_s", self.stuck_s),
            ("max_temperature_step_c", self.max_temperature_step_c),
            ("silence_s", self.silence_s),
        ];
        if let Some((name, v)) = positive.iter().find(|(_, v)| !(v.is_finite() && *v > 0.0)) {
            return Err(format!("sensor_health.{name} = {v} must be > 0"));
        }
        let (lo, hi) = self.temperature_range_c;
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return Err(format!(
                "sensor_health.temperature_range_c = [{lo}, {hi}] must be two finite readings, low first"
            ));
        }
        Ok(())
    }
}

/// Which input of the asset failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Vibration,
    Temperature,
}

/// Why data was refused.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorFault {
    pub channel: Channel,
    pub reason: String,
}

impl SensorFault {
    fn vibration(reason: String) -> Self {
        SensorFault {
            channel: Channel::Vibration,
            reason,
        }
    }
    fn temperature(reason: String) -> Self {
        SensorFault {
            channel: Channel::Temperature,
            reason,
        }
    }
}

/// The checks of one asset, with what they remember between windows.
#[derive(Debug, Clone)]
pub struct SensorHealth {
    config: SensorHealthConfig,
    last_temperature: Option<f32>,
}

impl SensorHealth {
    pub fn new(config: SensorHealthConfig) -> Self {
        SensorHealth {
            config,
            last_temperature: None,
        }
    }

    pub fn config(&self) -> &SensorHealthConfig {
        &self.config
    }

    /// The level from which an acceleration sample counts as clipped.
    pub fn clip_level_g(&self) -> f64 {
        CLIP_FRACTION * self.config.accel_range_g
    }

    /// Checks a window; `Ok` means it may be scored.
    pub fn check(&mut self, window: &Window) -> Result<(), SensorFault> {
        let scan = scan(&window.vibration, self.clip_level_g());
        self.check_scanned(window, &scan)
    }

    /// As [`Self::check`], with the window's samples already scanned at
    /// [`Self::clip_level_g`].
    pub fn check_scanned(&mut self, window: &Window, scan: &Scan) -> Result<(), SensorFault> {
        let c = &self.config;
        if scan.non_finite > 0 {
            return Err(SensorFault::vibration(format!(
                "{} of {} samples are not finite numbers",
                scan.non_finite, scan.len
            )));
        }
        let limit = ((c.stuck_s * window.sample_rate_hz) as usize)
            .max(MIN_STUCK_RUN)
            .min(scan.len)
            .max(2);
        // Look for the run only if the scan could not rule it out (at high
        // rates every stuck run is long enough to flatten a whole block).
        if limit < FLAT_SCREEN_RUN || scan.flat_blocks > 0 {
            let (run, value) = longest_run(&window.vibration);
            if run >= limit {
                return Err(SensorFault::vibration(format!(
                    "flat-lined at {value} g for {run} consecutive samples (stuck or disconnected sensor)"
                )));
            }
        }
        if scan.clipped > c.max_clipped_samples {
            return Err(SensorFault::vibration(format!(
                "{} samples at the +/-{} g full scale (saturated: range too small or sensor damaged)",
                scan.clipped, c.accel_range_g
            )));
        }
        self.check_temperature(&window.temperature)
    }

    fn check_temperature(&mut self, readings: &[f32]) -> Result<(), SensorFault> {
        if readings.is_empty() {
            return Err(SensorFault::temperature("no temperature reading".into()));
        }
        let (lo, hi) = self.config.temperature_range_c;
        let (lo, hi) = (lo as f32, hi as f32);
        if let Some(t) = readings
            .iter()
            .find(|t| !(t.is_finite() && (lo..=hi).contains(*t)))
        {
            return Err(SensorFault::temperature(format!(
                "reading {t} C is outside the sensor range {lo}..{hi} C"
            )));
        }
        let max_step = self.config.max_temperature_step_c as f32;
        let mut previous = self.last_temperature;
        for &t in readings {
            if let Some(p) = previous
                && (t - p).abs() > max_step
            {
                // Remember the new level: if it persists, the next windows
                // are judged against it and the channel recovers.
                self.last_temperature = Some(t);
                return Err(SensorFault::temperature(format!(
                    "temperature jumped from {p} C to {t} C between readings (more than {max_step} C: loose probe or electrical fault)"
                )));
            }
            previous = Some(t);
        }
        self.last_temperature = previous;
        Ok(())
    }

    /// The fault to report after `seconds` without any data.
    pub fn silence(&self, seconds: f64) -> SensorFault {
        SensorFault::vibration(format!(
            "no data for {seconds:.1} s (node, cable or sensor disconnected)"
        ))
    }
}

#[cfg(test)]
#[path = "sensor_health_tests.rs"]
mod tests;
