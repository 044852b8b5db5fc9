//! Refuses windows whose samples cannot be trusted.
//!
//! A dead or stuck sensor must not be scored: a flat line looks wildly
//! anomalous to a model (an alarm that sends a crew to a healthy pump) or,
//! worse, perfectly calm. Such a window is refused with the reason, the
//! detector goes to `sensor_fault`, and a distinct event asks for the sensor
//! to be checked rather than the asset.

use crate::window::Window;

/// Temperature range of the precision sensor (TMP117: -55 to 150 C).
pub const TEMPERATURE_RANGE_C: (f32, f32) = (-55.0, 150.0);
/// A run of identical consecutive samples this long (or [`MIN_STUCK_RUN`]
/// samples, whichever is more) means the sensor stuck. A live 20-bit
/// accelerometer's noise alone changes the reading every sample.
pub const STUCK_SECONDS: f64 = 0.5;
pub const MIN_STUCK_RUN: usize = 16;

/// Which input of the asset failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Vibration,
    Temperature,
}

/// Why a window was refused.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorFault {
    pub channel: Channel,
    pub reason: String,
}

/// Checks a window's samples; `Ok` means it may be scored.
pub fn check_window(window: &Window) -> Result<(), SensorFault> {
    let vib = &window.vibration;
    let bad = vib.iter().filter(|x| !x.is_finite()).count();
    if bad > 0 {
        return Err(SensorFault {
            channel: Channel::Vibration,
            reason: format!("{bad} of {} samples are not finite numbers", vib.len()),
        });
    }
    let limit = ((STUCK_SECONDS * window.sample_rate_hz) as usize).max(MIN_STUCK_RUN);
    let (run, value) = longest_constant_run(vib);
    if run >= limit.min(vib.len()) && run > 1 {
        return Err(SensorFault {
            channel: Channel::Vibration,
            reason: format!(
                "flat-lined at {value} g for {run} consecutive samples (stuck or disconnected sensor)"
            ),
        });
    }
    if window.temperature.is_empty() {
        return Err(SensorFault {
            channel: Channel::Temperature,
            reason: "no temperature reading".into(),
        });
    }
    let (t_lo, t_hi) = TEMPERATURE_RANGE_C;
    if let Some(t) = window
        .temperature
        .iter()
        .find(|t| !(t.is_finite() && (t_lo..=t_hi).contains(*t)))
    {
        return Err(SensorFault {
            channel: Channel::Temperature,
            reason: format!("reading {t} C is outside the sensor range {t_lo}..{t_hi} C"),
        });
    }
    Ok(())
}

/// Length and value of the longest run of identical consecutive samples.
fn longest_constant_run(xs: &[f32]) -> (usize, f32) {
    let mut best = (0, f32::NAN);
    let mut i = 0;
    while i < xs.len() {
        let start = i;
        while i + 1 < xs.len() && xs[i + 1] == xs[start] {
            i += 1;
        }
        i += 1;
        if i - start > best.0 {
            best = (i - start, xs[start]);
        }
    }
    best
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn clean_window_passes() {
        assert_eq!(
            check_window(&window(vec![0.1, -0.2, 0.3], vec![20.0])),
            Ok(())
        );
    }

    #[test]
    fn nan_flat_line_and_bad_temperature_are_refused_with_reasons() {
        let nan = check_window(&window(vec![0.1, f32::NAN, 0.2], vec![20.0])).unwrap_err();
        assert_eq!(nan.channel, Channel::Vibration);
        assert!(nan.reason.contains("1 of 3"), "{}", nan.reason);

        let flat = check_window(&window(vec![0.25; 8], vec![20.0])).unwrap_err();
        assert!(
            flat.reason.contains("flat-lined at 0.25"),
            "{}",
            flat.reason
        );

        let none = check_window(&window(vec![0.1, 0.2], vec![])).unwrap_err();
        assert_eq!(none.channel, Channel::Temperature);

        let hot = check_window(&window(vec![0.1, 0.2], vec![20.0, 900.0])).unwrap_err();
        assert!(hot.reason.contains("900"), "{}", hot.reason);

        let nan_t = check_window(&window(vec![0.1, 0.2], vec![f32::NAN])).unwrap_err();
        assert_eq!(nan_t.channel, Channel::Temperature);
    }
}
