//! Inspection work orders: what must be looked at, why, and how urgently.
//!
//! A work order is opened when an asset reaches `alarm` (kind `anomaly`) or
//! when one of its sensors fails (kind `sensor_fault`: check the sensor, not
//! the asset) or when its model cannot score it (kind `model_fault`: for an
//! engineer; the asset is unwatched until it is fixed), or when a gateway
//! has been offline for longer than the hub's liveness policy allows (kind
//! `gateway_offline`: its `asset_id` is the gateway's id; every asset it
//! watches is unwatched; the hub closes it when the gateway is back). There
//! is at most one open work order per asset and kind:
//! further events for the same problem attach to it as evidence instead of
//! flooding the queue. A work order stays open when the detector calms down;
//! closing it is the operator's decision after the inspection.
//!
//! Priority (1 = most urgent):
//!
//! | kind | condition | priority |
//! | --- | --- | --- |
//! | anomaly | peak score >= 4x the alarm threshold, or a bridge at >= 2x | 1 |
//! | anomaly | otherwise (the alarm threshold was reached) | 2 |
//! | model_fault | always (the asset is blind, and likely every asset on that model) | 2 |
//! | gateway_offline | always (every asset of the gateway is blind) | 2 |
//! | sensor_fault | always | 3 |
//!
//! The priority only rises as evidence attaches, never falls by itself.

use protocol::{AnomalyEvent, AssetKind, DetectorState, EventKind, FeatureContribution, ModelRef};
use serde::{Deserialize, Serialize};

/// Most evidence entries kept on a work order (the newest); all events stay
/// stored under their ids.
pub const MAX_EVIDENCE: usize = 50;

/// What a work order asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkOrderKind {
    /// Inspect the asset: the model sees behaviour it has not seen healthy.
    Anomaly,
    /// Inspect the sensor: its data cannot be trusted.
    SensorFault,
    /// Fix the model (an engineer): it cannot score the asset.
    ModelFault,
    /// Bring the gateway back (power, network): its assets are unwatched.
    GatewayOffline,
}

impl WorkOrderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkOrderKind::Anomaly => "anomaly",
            WorkOrderKind::SensorFault => "sensor_fault",
            WorkOrderKind::ModelFault => "model_fault",
            WorkOrderKind::GatewayOffline => "gateway_offline",
        }
    }
}

/// Where a work order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkOrderStatus {
    Open,
    Acknowledged,
    Scheduled,
    InProgress,
    Done,
    Dismissed,
}

impl WorkOrderStatus {
    /// Whether new evidence still attaches to it.
    pub fn is_open(self) -> bool {
        !matches!(self, WorkOrderStatus::Done | WorkOrderStatus::Dismissed)
    }
}

/// One event attached to a work order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub event_id: String,
    pub state: DetectorState,
    pub score: f64,
    pub window_end_ms: u64,
    pub top_features: Vec<FeatureContribution>,
    pub detail: Option<String>,
}

/// The stored record (key `wo/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkOrder {
    pub id: String,
    pub asset_id: String,
    pub asset_kind: AssetKind,
    pub site: String,
    pub kind: WorkOrderKind,
    pub status: WorkOrderStatus,
    pub priority: u8,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    /// Why it was opened, in words, with the model that saw it.
    pub reason: String,
    pub model: ModelRef,
    pub alarm_threshold: f64,
    pub peak_score: f64,
    pub event_count: u64,
    /// Newest last, at most [`MAX_EVIDENCE`].
    pub evidence: Vec<Evidence>,
    /// How it was closed, when the hub closed it itself (a gateway back
    /// online).
    #[serde(default)]
    pub resolution: Option<String>,
}

impl WorkOrder {
    pub fn key(id: &str) -> String {
        format!("wo/{id}")
    }

    /// Key of the index entry pointing at the open work order of an asset
    /// and kind.
    pub fn open_key(site: &str, asset_id: &str, kind: WorkOrderKind) -> String {
        format!("wo-open/{site}/{asset_id}/{}", kind.as_str())
    }

    /// The id of the `n`-th work order.
    pub fn id_for(n: u64) -> String {
        format!("WO-{n:06}")
    }

    /// Opens a work order from the event that warrants it.
    pub fn open(id: String, event: &AnomalyEvent, now_ms: u64) -> Self {
        let kind = kind_of(event);
        let mut wo = WorkOrder {
            id,
            asset_id: event.asset_id.clone(),
            asset_kind: event.asset_kind,
            site: event.site.clone(),
            kind,
            status: WorkOrderStatus::Open,
            priority: 4,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
            reason: reason(event),
            model: event.model.clone(),
            alarm_threshold: event.alarm_threshold,
            peak_score: 0.0,
            event_count: 0,
            evidence: Vec::new(),
            resolution: None,
        };
        wo.attach(event, now_ms);
        wo
    }

    /// Opens the work order for a gateway silent for too long: `since_ms`
    /// is when it was last heard, `cause` why it is offline, `assets` the
    /// assets it watches (kind and model of the first one describe it).
    pub fn gateway_offline(
        id: String,
        gateway: &GatewayOffline<'_>,
        since_ms: u64,
        now_ms: u64,
    ) -> Self {
        let minutes = now_ms.saturating_sub(since_ms) as f64 / 60_000.0;
        let reason = format!(
            "Gateway {} at site {} offline ({}) for {minutes:.0} min: its {} asset(s) ({}) are not watched. Check its power and network link.",
            gateway.id,
            gateway.site,
            gateway.cause,
            gateway.assets.len(),
            gateway.assets.join(", "),
        );
        WorkOrder {
            id,
            asset_id: gateway.id.to_owned(),
            asset_kind: gateway.asset_kind,
            site: gateway.site.to_owned(),
            kind: WorkOrderKind::GatewayOffline,
            status: WorkOrderStatus::Open,
            priority: priority(WorkOrderKind::GatewayOffline, gateway.asset_kind, 0.0, 1.0),
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
            reason,
            model: gateway.model.clone(),
            alarm_threshold: 0.0,
            peak_score: 0.0,
            event_count: 0,
            evidence: Vec::new(),
            resolution: None,
        }
    }

    /// Attaches an event as evidence; the priority may rise.
    pub fn attach(&mut self, event: &AnomalyEvent, now_ms: u64) {
        self.event_count += 1;
        self.updated_at_ms = now_ms;
        if event.kind == EventKind::Anomaly {
            self.peak_score = self.peak_score.max(event.score);
        }
        self.evidence.push(Evidence {
            event_id: event.event_id.clone(),
            state: event.state,
            score: event.score,
            window_end_ms: event.window_end_ms,
            top_features: event.top_features.clone(),
            detail: event.detail.clone(),
        });
        if self.evidence.len() > MAX_EVIDENCE {
            self.evidence.remove(0);
        }
        self.priority = self.priority.min(priority(
            self.kind,
            self.asset_kind,
            self.peak_score,
            self.alarm_threshold,
        ));
    }
}

/// What a gateway-offline work order says about the gateway.
#[derive(Debug, Clone)]
pub struct GatewayOffline<'a> {
    pub id: &'a str,
    pub site: &'a str,
    /// Why it is offline, in words ("connection lost", "silent", ...).
    pub cause: &'a str,
    pub assets: &'a [String],
    pub asset_kind: AssetKind,
    pub model: ModelRef,
}

/// Whether an event warrants a work order (if none of its kind is open).
pub fn opens(event: &AnomalyEvent) -> bool {
    match event.kind {
        EventKind::Anomaly => event.state == DetectorState::Alarm,
        EventKind::SensorFault => event.state == DetectorState::SensorFault,
        EventKind::ModelFault => event.state == DetectorState::ModelFault,
    }
}

/// The kind of work order an event belongs to.
pub fn kind_of(event: &AnomalyEvent) -> WorkOrderKind {
    match event.kind {
        EventKind::Anomaly => WorkOrderKind::Anomaly,
        EventKind::SensorFault => WorkOrderKind::SensorFault,
        EventKind::ModelFault => WorkOrderKind::ModelFault,
    }
}

fn priority(kind: WorkOrderKind, asset: AssetKind, peak: f64, alarm: f64) -> u8 {
    match kind {
        WorkOrderKind::SensorFault => 3,
        WorkOrderKind::ModelFault | WorkOrderKind::GatewayOffline => 2,
        WorkOrderKind::Anomaly => {
            let severity = peak / alarm.max(f64::EPSILON);
            let structural = asset == AssetKind::Bridge && severity >= 2.0;
            if severity >= 4.0 || structural { 1 } else { 2 }
        }
    }
}

/// Three significant digits, without exponent for everyday magnitudes.
fn num(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let digits = (2 - x.abs().log10().floor() as i32).max(0) as usize;
    if x.abs() >= 1e-3 {
        format!("{x:.digits$}")
    } else {
        format!("{x:.2e}")
    }
}

fn reason(event: &AnomalyEvent) -> String {
    let asset = format!("{} {}", event.asset_kind.as_str(), event.asset_id);
    match event.kind {
        EventKind::SensorFault => format!(
            "Sensor fault on {asset}, channel {}: {}. Check the sensor and its cabling; until then the model cannot judge this asset.",
            event.channel,
            event.detail.as_deref().unwrap_or("no detail given"),
        ),
        EventKind::ModelFault => format!(
            "Model fault on {asset}: model {} {} cannot score it ({}). Nothing judges this asset until an engineer fixes or replaces the model.",
            event.model.id,
            event.model.version,
            event.detail.as_deref().unwrap_or("no detail given"),
        ),
        EventKind::Anomaly => {
            let features: Vec<String> = event
                .top_features
                .iter()
                .map(|f| {
                    format!(
                        "{} {} (normally {}, {:.0} % of the deviation)",
                        f.name,
                        num(f.value),
                        num(f.expected),
                        100.0 * f.share
                    )
                })
                .collect();
            let mut text = format!(
                "Alarm on {asset} (channel {}): anomaly score {} is {:.1}x the alarm level {} of model {} {}.",
                event.channel,
                num(event.score),
                event.score / event.alarm_threshold,
                num(event.alarm_threshold),
                event.model.id,
                event.model.version,
            );
            if !features.is_empty() {
                text.push_str(" Driven by: ");
                text.push_str(&features.join("; "));
                text.push('.');
            }
            text
        }
    }
}

#[cfg(test)]
#[path = "work_orders_tests.rs"]
mod tests;
