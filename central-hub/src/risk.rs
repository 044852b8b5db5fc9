//! How urgent a work order is: risk, priority, and the due date it implies.
//!
//! Operators work a queue, not an alarm stream, so the order of that queue
//! must say what matters most: the same bearing fault is more urgent on the
//! only pump feeding a town than on one of four redundant ones. Risk is
//! therefore the product of three factors, each documented here and shown on
//! every work order so an operator can check it:
//!
//! ```text
//! risk = criticality x severity x persistence        (1 ..= 50)
//! ```
//!
//! - **criticality** (1-5): consequence of the asset failing, from the asset
//!   registry ([`DEFAULT_CRITICALITY`] for an asset not registered).
//! - **severity** (1-5): how bad the evidence is.
//!   - `anomaly`: peak score / alarm threshold, clamped to 1-5; a rotating
//!     machine whose vibration is in ISO 10816 zone C counts at least 3,
//!     zone D at least 4.
//!   - `sensor_fault` 1.5 (the asset is partly blind, not known damaged);
//!     `model_fault` and `gateway_offline` 2.5 (the asset is blind).
//! - **persistence** (1-2): `1 + min(1, age of the evidence / 24 h)`, where
//!   the age runs from the first piece of evidence to the newest: a
//!   condition that lasts a day is worse than a blip.
//!
//! Priority follows the risk: P1 at risk >= 20, P2 at >= 10, P3 at >= 5,
//! else P4. It only ever rises while evidence attaches. The due date is the
//! work order's creation plus the SLA of its priority ([`Sla`], configurable;
//! default 1, 3, 7 and 30 days), and moves earlier when the priority rises.

use protocol::IsoZone;
use serde::{Deserialize, Serialize};

use crate::work_orders::WorkOrderKind;

/// Criticality of an asset the registry does not know.
pub const DEFAULT_CRITICALITY: u8 = 3;

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: f64 = 86_400_000.0;

/// Due times per priority, in hours (`[sla]` in the hub config).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sla {
    pub p1_hours: u64,
    pub p2_hours: u64,
    pub p3_hours: u64,
    pub p4_hours: u64,
    /// A work order is `due_soon` in the last this fraction of its time.
    #[serde(default = "default_due_soon")]
    pub due_soon_fraction: f64,
}

fn default_due_soon() -> f64 {
    0.25
}

impl Default for Sla {
    fn default() -> Self {
        Sla {
            p1_hours: 24,
            p2_hours: 72,
            p3_hours: 168,
            p4_hours: 720,
            due_soon_fraction: default_due_soon(),
        }
    }
}

impl Sla {
    /// Hours allowed for a priority (1-4).
    pub fn hours(&self, priority: u8) -> u64 {
        match priority {
            0 | 1 => self.p1_hours,
            2 => self.p2_hours,
            3 => self.p3_hours,
            _ => self.p4_hours,
        }
    }

    /// When a work order created at `created_ms` with `priority` is due.
    pub fn due_ms(&self, created_ms: u64, priority: u8) -> u64 {
        created_ms + self.hours(priority) * HOUR_MS
    }

    /// Checks the table: every priority has time, and more urgent work has
    /// no more time than less urgent work.
    pub fn validate(&self) -> Result<(), String> {
        let h = [self.p1_hours, self.p2_hours, self.p3_hours, self.p4_hours];
        if h.contains(&0) {
            return Err("[sla]: every pN_hours must be at least 1".into());
        }
        if h.windows(2).any(|w| w[0] > w[1]) {
            return Err(format!(
                "[sla]: hours must not decrease from p1 to p4 (got {h:?})"
            ));
        }
        if !(0.0..1.0).contains(&self.due_soon_fraction) {
            return Err("[sla]: due_soon_fraction must be in [0, 1)".into());
        }
        Ok(())
    }
}

/// The three factors and their product.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Risk {
    pub criticality: u8,
    pub severity: f64,
    pub persistence: f64,
    pub risk: f64,
}

impl Risk {
    pub fn new(criticality: u8, severity: f64, persistence: f64) -> Self {
        let criticality = criticality.clamp(1, 5);
        let risk = f64::from(criticality) * severity * persistence;
        Risk {
            criticality,
            severity: round2(severity),
            persistence: round2(persistence),
            risk: round2(risk),
        }
    }

    /// Priority 1 (most urgent) to 4.
    pub fn priority(&self) -> u8 {
        match self.risk {
            r if r >= 20.0 => 1,
            r if r >= 10.0 => 2,
            r if r >= 5.0 => 3,
            _ => 4,
        }
    }
}

/// Severity (1-5) of a work order's evidence.
pub fn severity(kind: WorkOrderKind, peak: f64, alarm: f64, iso_zone: Option<IsoZone>) -> f64 {
    match kind {
        WorkOrderKind::SensorFault => 1.5,
        WorkOrderKind::ModelFault | WorkOrderKind::GatewayOffline => 2.5,
        WorkOrderKind::Anomaly => {
            let ratio = if alarm > 0.0 && peak.is_finite() {
                peak / alarm
            } else {
                1.0
            };
            let floor = match iso_zone {
                Some(IsoZone::D) => 4.0,
                Some(IsoZone::C) => 3.0,
                _ => 1.0,
            };
            ratio.clamp(1.0, 5.0).max(floor)
        }
    }
}

/// Persistence (1-2) of evidence spanning `first_ms..=last_ms`.
pub fn persistence(first_ms: u64, last_ms: u64) -> f64 {
    1.0 + (last_ms.saturating_sub(first_ms) as f64 / DAY_MS).min(1.0)
}

/// Where a work order stands against its due date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaState {
    OnTrack,
    DueSoon,
    Overdue,
    /// Closed on time.
    Met,
    /// Closed late.
    Missed,
}

/// The SLA state at `now_ms` of work created at `created_ms`, due at
/// `due_ms`, closed at `closed_ms` (if it is).
pub fn sla_state(
    sla: &Sla,
    created_ms: u64,
    due_ms: u64,
    closed_ms: Option<u64>,
    now_ms: u64,
) -> SlaState {
    if let Some(closed) = closed_ms {
        return if closed <= due_ms {
            SlaState::Met
        } else {
            SlaState::Missed
        };
    }
    if now_ms > due_ms {
        return SlaState::Overdue;
    }
    let window = due_ms.saturating_sub(created_ms) as f64;
    let left = (due_ms - now_ms) as f64;
    if left < window * sla.due_soon_fraction {
        SlaState::DueSoon
    } else {
        SlaState::OnTrack
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn risk_is_the_product_and_sets_the_priority() {
        let r = Risk::new(3, 4.0, 1.0);
        assert_eq!((r.risk, r.priority()), (12.0, 2));
        assert_eq!(Risk::new(5, 4.0, 1.0).priority(), 1);
        assert_eq!(Risk::new(3, 1.5, 1.0).priority(), 4);
        assert_eq!(Risk::new(5, 1.5, 1.0).priority(), 3);
        // Criticality outside 1-5 is clamped, never multiplies beyond it.
        assert_eq!(Risk::new(9, 5.0, 2.0).risk, 50.0);
    }

    #[test]
    fn severity_follows_the_evidence_and_the_iso_zone() {
        let a = WorkOrderKind::Anomaly;
        assert_eq!(severity(a, 8.0, 2.0, None), 4.0);
        assert_eq!(severity(a, 1.0, 2.0, None), 1.0);
        assert_eq!(severity(a, 100.0, 2.0, None), 5.0);
        assert_eq!(severity(a, 2.0, 2.0, Some(IsoZone::C)), 3.0);
        assert_eq!(severity(a, 2.0, 2.0, Some(IsoZone::D)), 4.0);
        assert_eq!(severity(a, f64::NAN, 2.0, None), 1.0);
        assert_eq!(severity(WorkOrderKind::SensorFault, 9.0, 1.0, None), 1.5);
    }

    #[test]
    fn persistence_grows_over_a_day() {
        assert_eq!(persistence(0, 0), 1.0);
        assert_eq!(persistence(0, 43_200_000), 1.5);
        assert_eq!(persistence(0, 10 * 86_400_000), 2.0);
        assert_eq!(persistence(5, 1), 1.0);
    }

    #[test]
    fn sla_states() {
        let sla = Sla::default();
        let due = sla.due_ms(0, 1);
        assert_eq!(due, 24 * HOUR_MS);
        assert_eq!(sla_state(&sla, 0, due, None, HOUR_MS), SlaState::OnTrack);
        assert_eq!(
            sla_state(&sla, 0, due, None, 20 * HOUR_MS),
            SlaState::DueSoon
        );
        assert_eq!(sla_state(&sla, 0, due, None, due + 1), SlaState::Overdue);
        assert_eq!(sla_state(&sla, 0, due, Some(due), due + 9), SlaState::Met);
        assert_eq!(sla_state(&sla, 0, due, Some(due + 1), 0), SlaState::Missed);
    }

    #[test]
    fn sla_tables_are_checked() {
        assert!(Sla::default().validate().is_ok());
        let bad = Sla {
            p1_hours: 100,
            ..Sla::default()
        };
        assert!(bad.validate().unwrap_err().contains("must not decrease"));
        let zero = Sla {
            p4_hours: 0,
            ..Sla::default()
        };
        assert!(zero.validate().is_err());
    }
}
