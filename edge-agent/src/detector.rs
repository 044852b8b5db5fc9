//! Turns a stream of anomaly scores into a few trustworthy state changes.
//!
//! One noisy window must not send a crew out, and one quiet window must not
//! clear an alarm. The detector is a small state machine with hysteresis:
//!
//! - it escalates to `warning` (or `alarm`) only after `enter_windows`
//!   consecutive windows score at or above the warning (alarm) threshold;
//! - it de-escalates only after `exit_windows` consecutive windows score
//!   below `release_factor` times the threshold of the current state;
//! - a window refused by the sensor checks puts it in `sensor_fault` at once
//!   (the model's verdict is meaningless then); `exit_windows` consecutive
//!   good windows return it to `normal`, from where it escalates afresh.
//!
//! While in alarm it reminds every `reminder_windows` windows, so the hub
//! keeps receiving fresh evidence for an open work order.

use protocol::DetectorState;
use serde::Deserialize;

/// `[assets.detector]` in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorConfig {
    pub enter_windows: u32,
    pub exit_windows: u32,
    /// Fraction of a threshold below which a window counts towards leaving
    /// that state (0 < release_factor <= 1).
    pub release_factor: f64,
    /// Windows between reminders while in alarm (0: never).
    pub reminder_windows: u32,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            enter_windows: 3,
            exit_windows: 5,
            release_factor: 0.8,
            reminder_windows: 30,
        }
    }
}

impl DetectorConfig {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.enter_windows == 0 || self.exit_windows == 0 {
            return Err("detector.enter_windows and detector.exit_windows must be >= 1".into());
        }
        if !(self.release_factor > 0.0 && self.release_factor <= 1.0) {
            return Err(format!(
                "detector.release_factor = {} must be within (0, 1]",
                self.release_factor
            ));
        }
        Ok(())
    }
}

/// A change the detector reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: DetectorState,
    pub to: DetectorState,
    /// True for an alarm reminder (`from == to == Alarm`).
    pub reminder: bool,
}

#[derive(Debug, Clone)]
pub struct Detector {
    config: DetectorConfig,
    threshold: f64,
    alarm_threshold: f64,
    state: DetectorState,
    above_warning: u32,
    above_alarm: u32,
    calm: u32,
    since_report: u32,
}

impl Detector {
    pub fn new(config: DetectorConfig, threshold: f64, alarm_threshold: f64) -> Self {
        Detector {
            config,
            threshold,
            alarm_threshold,
            state: DetectorState::Normal,
            above_warning: 0,
            above_alarm: 0,
            calm: 0,
            since_report: 0,
        }
    }

    pub fn state(&self) -> DetectorState {
        self.state
    }

    pub fn thresholds(&self) -> (f64, f64) {
        (self.threshold, self.alarm_threshold)
    }

    /// Replaces the thresholds (commissioning learned the asset's own).
    pub fn set_thresholds(&mut self, threshold: f64, alarm_threshold: f64) {
        self.threshold = threshold;
        self.alarm_threshold = alarm_threshold;
    }

    /// Feeds the score of a window that passed the sensor checks.
    pub fn observe_score(&mut self, score: f64) -> Option<Transition> {
        use DetectorState::*;
        let c = &self.config;
        self.above_warning = if score >= self.threshold {
            self.above_warning + 1
        } else {
            0
        };
        self.above_alarm = if score >= self.alarm_threshold {
            self.above_alarm + 1
        } else {
            0
        };
        let release = match self.state {
            Alarm => c.release_factor * self.alarm_threshold,
            Warning => c.release_factor * self.threshold,
            Normal | SensorFault | ModelFault => f64::INFINITY,
        };
        self.calm = if score < release { self.calm + 1 } else { 0 };

        let next = match self.state {
            SensorFault | ModelFault => {
                // Scored windows after a sensor or model fault: back to
                // normal once they have come for long enough.
                if self.calm >= c.exit_windows {
                    Normal
                } else {
                    self.state
                }
            }
            _ if self.above_alarm >= c.enter_windows => Alarm,
            Normal if self.above_warning >= c.enter_windows => Warning,
            Alarm if self.calm >= c.exit_windows => {
                if score < c.release_factor * self.threshold {
                    Normal
                } else {
                    Warning
                }
            }
            Warning if self.calm >= c.exit_windows => Normal,
            s => s,
        };
        self.transition(next)
    }

    /// Feeds a window refused by the sensor checks.
    pub fn observe_sensor_fault(&mut self) -> Option<Transition> {
        self.above_warning = 0;
        self.above_alarm = 0;
        self.calm = 0;
        self.transition(DetectorState::SensorFault)
    }

    /// Feeds a window the model failed on (an error, a non-finite score):
    /// never an alarm, whatever the model said.
    pub fn observe_model_fault(&mut self) -> Option<Transition> {
        self.above_warning = 0;
        self.above_alarm = 0;
        self.calm = 0;
        self.transition(DetectorState::ModelFault)
    }

    fn transition(&mut self, next: DetectorState) -> Option<Transition> {
        let from = self.state;
        if next != from {
            self.state = next;
            self.calm = 0;
            self.since_report = 0;
            return Some(Transition {
                from,
                to: next,
                reminder: false,
            });
        }
        self.since_report += 1;
        let every = self.config.reminder_windows;
        if from == DetectorState::Alarm && every > 0 && self.since_report >= every {
            self.since_report = 0;
            return Some(Transition {
                from,
                to: from,
                reminder: true,
            });
        }
        None
    }
}

#[cfg(test)]
#[path = "detector_tests.rs"]
mod tests;
