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
//! Priority (1 = most urgent) and due date come from the risk
//! (criticality x severity x persistence, see [`crate::risk`]); the priority
//! only rises as evidence attaches, never falls by itself.
//!
//! Operators move a work order through its life
//! (`open -> acknowledged -> scheduled -> in_progress -> done`, or
//! `dismissed` with a reason, from any active state); see
//! [`WorkOrderStatus::can_become`]. Every change is also written to the
//! append-only audit trail ([`crate::audit`]) in the same commit.

use protocol::{
    AnomalyEvent, AssetKind, DetectorState, EventKind, FeatureContribution, IsoZone, ModelRef,
};
use serde::{Deserialize, Serialize};

use crate::risk::{self, Risk, Sla};
use crate::scheduler::Day;

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

    pub fn as_str(self) -> &'static str {
        match self {
            WorkOrderStatus::Open => "open",
            WorkOrderStatus::Acknowledged => "acknowledged",
            WorkOrderStatus::Scheduled => "scheduled",
            WorkOrderStatus::InProgress => "in_progress",
            WorkOrderStatus::Done => "done",
            WorkOrderStatus::Dismissed => "dismissed",
        }
    }

    /// Whether an operator may move a work order from `self` to `to`.
    /// `scheduled` is reached by scheduling (a crew and a day), also again
    /// from `scheduled` (re-scheduling); `done` and `dismissed` are final.
    pub fn can_become(self, to: WorkOrderStatus) -> bool {
        use WorkOrderStatus::*;
        matches!(
            (self, to),
            (Open, Acknowledged | Scheduled | Dismissed)
                | (Acknowledged, Scheduled | InProgress | Dismissed)
                | (Scheduled, Scheduled | Acknowledged | InProgress | Dismissed)
                | (InProgress, Done | Dismissed)
        )
    }
}

/// Which crews can do a work order's inspection.
pub fn required_skill(kind: WorkOrderKind, asset: AssetKind) -> &'static str {
    match kind {
        WorkOrderKind::Anomaly if asset == AssetKind::Bridge => "structural",
        WorkOrderKind::Anomaly => "mechanical",
        WorkOrderKind::SensorFault | WorkOrderKind::GatewayOffline => "instrumentation",
        WorkOrderKind::ModelFault => "engineering",
    }
}

/// What the hub knows about an asset when it weighs a work order.
#[derive(Debug, Clone, Copy)]
pub struct Terms<'a> {
    /// 1-5, from the asset registry.
    pub criticality: u8,
    /// The asset's latest ISO 10816 zone (rotating machines).
    pub iso_zone: Option<IsoZone>,
    pub sla: &'a Sla,
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
    /// Criticality, severity, persistence and their product.
    #[serde(flatten)]
    pub risk: Risk,
    /// Window end of the first evidence (persistence runs from it).
    pub first_evidence_ms: u64,
    pub due_at_ms: u64,
    /// The crew assigned, and the day it is scheduled for.
    #[serde(default)]
    pub crew: Option<String>,
    #[serde(default)]
    pub scheduled_day: Option<Day>,
    /// What the inspection found (required to close it as done).
    #[serde(default)]
    pub findings: Option<String>,
    /// Why it was dismissed (required; kept as feedback for model tuning).
    #[serde(default)]
    pub dismissal_reason: Option<String>,
    #[serde(default)]
    pub closed_at_ms: Option<u64>,
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

    /// A new, open work order about `subject`, with no evidence yet.
    fn opened(id: String, subject: Subject, now_ms: u64, terms: Terms<'_>) -> Self {
        WorkOrder {
            id,
            asset_id: subject.asset_id,
            asset_kind: subject.asset_kind,
            site: subject.site,
            kind: subject.kind,
            status: WorkOrderStatus::Open,
            priority: 4,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
            reason: subject.reason,
            model: subject.model,
            alarm_threshold: subject.alarm_threshold,
            peak_score: 0.0,
            event_count: 0,
            evidence: Vec::new(),
            resolution: None,
            risk: Risk::new(terms.criticality, 1.0, 1.0),
            first_evidence_ms: subject.first_evidence_ms,
            due_at_ms: terms.sla.due_ms(now_ms, 4),
            crew: None,
            scheduled_day: None,
            findings: None,
            dismissal_reason: None,
            closed_at_ms: None,
        }
    }

    /// Opens a work order from the event that warrants it.
    pub fn open(id: String, event: &AnomalyEvent, now_ms: u64, terms: Terms<'_>) -> Self {
        let subject = Subject {
            asset_id: event.asset_id.clone(),
            asset_kind: event.asset_kind,
            site: event.site.clone(),
            kind: kind_of(event),
            reason: reason(event),
            model: event.model.clone(),
            alarm_threshold: event.alarm_threshold,
            first_evidence_ms: event.window_end_ms,
        };
        let mut wo = Self::opened(id, subject, now_ms, terms);
        wo.attach(event, now_ms, terms);
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
        terms: Terms<'_>,
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
        let subject = Subject {
            asset_id: gateway.id.to_owned(),
            asset_kind: gateway.asset_kind,
            site: gateway.site.to_owned(),
            kind: WorkOrderKind::GatewayOffline,
            reason,
            model: gateway.model.clone(),
            alarm_threshold: 0.0,
            first_evidence_ms: since_ms,
        };
        let mut wo = Self::opened(id, subject, now_ms, terms);
        wo.reassess(now_ms, terms);
        wo
    }

    /// Recomputes the risk with evidence up to `last_ms`; the priority may
    /// rise (never fall), and the due date moves earlier with it.
    pub fn reassess(&mut self, last_ms: u64, terms: Terms<'_>) {
        let severity = risk::severity(
            self.kind,
            self.peak_score,
            self.alarm_threshold,
            terms.iso_zone,
        );
        let persistence = risk::persistence(self.first_evidence_ms, last_ms);
        let assessed = Risk::new(terms.criticality, severity, persistence);
        if assessed.risk >= self.risk.risk || assessed.criticality != self.risk.criticality {
            self.risk = assessed;
        }
        let priority = self.priority.min(self.risk.priority());
        self.priority = priority;
        self.due_at_ms = self
            .due_at_ms
            .min(terms.sla.due_ms(self.created_at_ms, priority));
    }

    /// Attaches an event as evidence; the priority may rise.
    pub fn attach(&mut self, event: &AnomalyEvent, now_ms: u64, terms: Terms<'_>) {
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
        self.first_evidence_ms = self.first_evidence_ms.min(event.window_end_ms);
        self.reassess(event.window_end_ms, terms);
    }
}

/// What a new work order is about.
struct Subject {
    asset_id: String,
    asset_kind: AssetKind,
    site: String,
    kind: WorkOrderKind,
    reason: String,
    model: ModelRef,
    alarm_threshold: f64,
    first_evidence_ms: u64,
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
