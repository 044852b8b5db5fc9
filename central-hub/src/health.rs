//! The health index (0-100) of an asset, and its history for trend plots.
//!
//! One number per asset lets an operator sort a fleet; it must move with
//! what the detector sees, with how long it has seen it, and (for rotating
//! machines) with the ISO 10816 vibration zone, which maintenance staff
//! already know. The formula:
//!
//! ```text
//! base        from the detector state and the latest anomaly score s against
//!             the warning (w) and alarm (a) thresholds (protocol::health_index):
//!               normal   100 - 20 * min(s / w, 1)            100 .. 80
//!               warning   79 - 29 * clamp((s - w) / (a - w))  79 .. 50
//!               alarm     49 * min(a / s, 1)                  49 .. 0
//! persistence minus 10 * min(1, hours in warning or alarm / 24): a
//!             condition that lasts a day costs up to 10 more points
//! ISO zone    at most 60 in zone C (restricted long-term operation),
//!             at most 30 in zone D (vibration causes damage)
//! health      clamp(base - persistence, 0, 100), then the zone cap
//! ```
//!
//! A sensor or model fault keeps the last health (the hub cannot judge the
//! asset then; its state says so).
//!
//! History: a point `{at_ms, health, score, state}` is kept when the state
//! changes and otherwise at most once per history interval (hub config
//! `history_interval_s`, default 60 s), under `health/{site}/{id}/{at_ms}`.

use protocol::{DetectorState, IsoZone, health_index};
use serde::{Deserialize, Serialize};

use crate::assets::AssetState;

const DAY_MS: f64 = 86_400_000.0;

/// What the health index is computed from.
#[derive(Debug, Clone, Copy)]
pub struct HealthInputs {
    pub state: DetectorState,
    pub score: Option<f64>,
    pub warning: f64,
    pub alarm: f64,
    /// How long the detector has been in `state`.
    pub in_state_ms: u64,
    pub iso_zone: Option<IsoZone>,
}

/// The health index, or `None` when it cannot be judged (sensor or model
/// fault, no score yet).
pub fn health(i: HealthInputs) -> Option<f64> {
    let base = health_index(i.state, i.score, i.warning, i.alarm)?;
    let persistence = match i.state {
        DetectorState::Warning | DetectorState::Alarm => {
            10.0 * (i.in_state_ms as f64 / DAY_MS).min(1.0)
        }
        _ => 0.0,
    };
    let cap = match i.iso_zone {
        Some(IsoZone::C) => 60.0,
        Some(IsoZone::D) => 30.0,
        _ => 100.0,
    };
    let h = (base - persistence).clamp(0.0, 100.0).min(cap);
    Some((h * 10.0).round() / 10.0)
}

/// One point of an asset's health history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthPoint {
    pub at_ms: u64,
    pub health: f64,
    pub score: Option<f64>,
    pub state: AssetState,
}

impl HealthPoint {
    pub fn key(site: &str, asset: &str, at_ms: u64) -> String {
        format!("health/{site}/{asset}/{at_ms:020}")
    }

    pub fn prefix(site: &str, asset: &str) -> String {
        format!("health/{site}/{asset}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DetectorState::*;

    fn h(state: DetectorState, score: f64, hours: f64, zone: Option<IsoZone>) -> f64 {
        health(HealthInputs {
            state,
            score: Some(score),
            warning: 10.0,
            alarm: 20.0,
            in_state_ms: (hours * 3_600_000.0) as u64,
            iso_zone: zone,
        })
        .unwrap()
    }

    #[test]
    fn the_documented_formula() {
        assert_eq!(h(Normal, 5.0, 48.0, None), 90.0);
        assert_eq!(h(Alarm, 40.0, 0.0, None), 24.5);
        assert_eq!(h(Alarm, 40.0, 12.0, None), 19.5);
        assert_eq!(h(Alarm, 40.0, 72.0, None), 14.5);
        assert_eq!(h(Warning, 15.0, 24.0, None), 54.5);
        assert_eq!(h(Normal, 0.0, 0.0, Some(IsoZone::C)), 60.0);
        assert_eq!(h(Normal, 0.0, 0.0, Some(IsoZone::D)), 30.0);
        assert_eq!(h(Alarm, 40.0, 0.0, Some(IsoZone::D)), 24.5);
        assert_eq!(h(Normal, 0.0, 0.0, Some(IsoZone::B)), 100.0);
        let fault = HealthInputs {
            state: SensorFault,
            score: Some(1.0),
            warning: 10.0,
            alarm: 20.0,
            in_state_ms: 0,
            iso_zone: None,
        };
        assert_eq!(health(fault), None);
    }
}
