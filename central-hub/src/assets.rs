//! What the hub knows about each asset, and its health index.
//!
//! Assets are announced by their gateway's birth message and kept up to date
//! by heartbeats and events. The health index (0-100, see [`crate::health`])
//! summarises the detector's state, how far the latest score is from the
//! thresholds, how long that has lasted, and the ISO zone, so an operator
//! can sort a fleet by it; the state says what the detector concluded, plus
//! `offline` when the gateway is gone.

use protocol::{AssetKind, ChannelInfo, CommissioningStatus, DetectorState, IsoZone, ModelRef};

use crate::health::{HealthInputs, health};
use serde::{Deserialize, Serialize};

/// The state shown for an asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetState {
    Normal,
    Warning,
    Alarm,
    SensorFault,
    /// The model cannot score it: nothing judges it until that is fixed.
    ModelFault,
    /// The gateway watching it is gone; the other fields are its last
    /// known condition.
    Offline,
}

impl From<DetectorState> for AssetState {
    fn from(s: DetectorState) -> Self {
        match s {
            DetectorState::Normal => AssetState::Normal,
            DetectorState::Warning => AssetState::Warning,
            DetectorState::Alarm => AssetState::Alarm,
            DetectorState::SensorFault => AssetState::SensorFault,
            DetectorState::ModelFault => AssetState::ModelFault,
        }
    }
}

/// The stored record of one asset (key `asset/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssetRecord {
    pub id: String,
    pub kind: AssetKind,
    pub site: String,
    pub gateway: String,
    pub state: AssetState,
    /// What the detector last reported, kept while the gateway is offline.
    pub detector_state: DetectorState,
    pub health: f64,
    pub last_score: Option<f64>,
    pub threshold: Option<f64>,
    pub alarm_threshold: Option<f64>,
    pub model: Option<ModelRef>,
    pub channels: Vec<ChannelInfo>,
    pub last_seen_ms: u64,
    /// Rotating machines: latest velocity RMS 10-1000 Hz and its ISO zone.
    #[serde(default)]
    pub velocity_rms_mm_s: Option<f64>,
    #[serde(default)]
    pub iso_zone: Option<IsoZone>,
    /// The asset's commissioning on its gateway, for models that commission
    /// each asset (what the latest heartbeat said).
    #[serde(default)]
    pub commissioning: Option<CommissioningStatus>,
    /// The gateway's time of the newest report applied (heartbeat or
    /// event): an older one, replayed from the gateway's outbox after an
    /// outage, is stored but does not set the asset's state back.
    #[serde(default)]
    pub reported_at_ms: u64,
    /// Since when (hub time) the detector has been in `detector_state`.
    #[serde(default)]
    pub state_since_ms: u64,
    /// When the newest health history point was kept.
    #[serde(default)]
    pub history_at_ms: u64,
}

impl AssetRecord {
    pub fn key(site: &str, id: &str) -> String {
        format!("asset/{site}/{id}")
    }

    /// A newly seen asset: healthy until told otherwise.
    pub fn new(id: &str, kind: AssetKind, site: &str, gateway: &str, now_ms: u64) -> Self {
        AssetRecord {
            id: id.to_owned(),
            kind,
            site: site.to_owned(),
            gateway: gateway.to_owned(),
            state: AssetState::Normal,
            detector_state: DetectorState::Normal,
            health: 100.0,
            last_score: None,
            threshold: None,
            alarm_threshold: None,
            model: None,
            channels: Vec::new(),
            last_seen_ms: now_ms,
            velocity_rms_mm_s: None,
            iso_zone: None,
            commissioning: None,
            reported_at_ms: 0,
            state_since_ms: now_ms,
            history_at_ms: 0,
        }
    }

    /// Whether a report made at `reported_at_ms` (gateway time) is older
    /// than one already applied; if not, it becomes the newest.
    pub fn is_stale(&mut self, reported_at_ms: u64) -> bool {
        if reported_at_ms < self.reported_at_ms {
            return true;
        }
        self.reported_at_ms = reported_at_ms;
        false
    }

    /// Records what the detector says now and recomputes the health index.
    pub fn observe(
        &mut self,
        state: DetectorState,
        score: Option<f64>,
        threshold: f64,
        alarm_threshold: f64,
        now_ms: u64,
    ) {
        if state != self.detector_state {
            self.state_since_ms = now_ms;
        }
        self.detector_state = state;
        self.state = state.into();
        if score.is_some() {
            self.last_score = score;
        }
        self.threshold = Some(threshold);
        self.alarm_threshold = Some(alarm_threshold);
        self.last_seen_ms = now_ms;
        let inputs = HealthInputs {
            state,
            score: self.last_score,
            warning: threshold,
            alarm: alarm_threshold,
            in_state_ms: now_ms.saturating_sub(self.state_since_ms),
            iso_zone: self.iso_zone,
        };
        if let Some(h) = health(inputs) {
            self.health = h;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DetectorState::*;

    #[test]
    fn a_sensor_fault_keeps_the_last_health() {
        let mut a = AssetRecord::new("P-1", AssetKind::Pump, "s", "g", 0);
        a.observe(Alarm, Some(40.0), 10.0, 20.0, 1);
        assert_eq!(a.health, 24.5);
        a.observe(SensorFault, None, 10.0, 20.0, 2);
        assert_eq!((a.state, a.health), (AssetState::SensorFault, 24.5));
    }
}
