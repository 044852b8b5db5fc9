//! What a scripted gateway at site `north` (gateway `gw-1`, pumps with one
//! accelerometer on model pump-anomaly 1.0.0) says, for the hub's tests.

#![allow(dead_code)] // each test binary uses its own part

use protocol::*;

pub fn model() -> ModelRef {
    ModelRef {
        id: "pump-anomaly".into(),
        version: "1.0.0".into(),
    }
}

/// The birth of `gw-1` watching these pumps.
pub fn birth(pumps: &[&str]) -> Message {
    Message::Birth(Birth {
        site: "north".into(),
        gateway: "gw-1".into(),
        agent_version: "test".into(),
        started_at_ms: 1,
        ts_ms: 1,
        assets: pumps
            .iter()
            .map(|id| AssetInfo {
                id: id.to_string(),
                kind: AssetKind::Pump,
                channels: vec![ChannelInfo {
                    id: "accel".into(),
                    quantity: Quantity::Acceleration,
                    unit: "g".into(),
                    sample_rate_hz: 5120.0,
                }],
                model: model(),
            })
            .collect(),
    })
}

/// An event about `asset` (thresholds 60 and 120; a sensor fault says
/// "flat-lined").
pub fn event(id: &str, asset: &str, kind: EventKind, state: DetectorState, score: f64) -> Message {
    Message::Event(AnomalyEvent {
        event_id: id.into(),
        site: "north".into(),
        gateway: "gw-1".into(),
        asset_id: asset.into(),
        asset_kind: AssetKind::Pump,
        channel: "accel".into(),
        kind,
        state,
        previous_state: DetectorState::Warning,
        window_start_ms: 1_000,
        window_end_ms: 2_000,
        raised_at_ms: 2_000,
        score,
        threshold: 60.0,
        alarm_threshold: 120.0,
        model: model(),
        top_features: vec![FeatureContribution {
            name: "kurtosis".into(),
            value: 8.0,
            expected: 2.0,
            share: 0.8,
        }],
        detail: (kind == EventKind::SensorFault).then(|| "flat-lined".into()),
    })
}
