//! The append-only audit trail of work orders: who did what, and when.
//!
//! A utility must be able to show, after the fact, who acknowledged an
//! inspection, who scheduled it to which crew, and what they found or why
//! they dismissed it. Every change to a work order writes one entry, in the
//! same commit as the change itself, so the trail can never disagree with
//! the work order. Entries are only ever added: nothing in the hub updates
//! or deletes a key under `audit/`.

use serde::{Deserialize, Serialize};

use crate::work_orders::WorkOrderStatus;

/// Key of the audit sequence counter.
pub const AUDIT_SEQUENCE: &str = "seq/audit";

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// The hub opened it from evidence.
    Opened,
    /// An operator moved it to another state.
    Transition,
    /// A crew was assigned.
    Assigned,
    /// A crew and a day were set.
    Scheduled,
    /// The hub closed it (the problem went away by itself, e.g. a gateway
    /// back online).
    ClosedByHub,
}

/// One entry (key `audit/{work order}/{seq:012}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    pub at_ms: u64,
    /// A user's name from the hub config, or `hub`.
    pub who: String,
    /// `operator`, `engineer` or `system`.
    pub role: String,
    pub work_order: String,
    pub action: AuditAction,
    pub from: Option<WorkOrderStatus>,
    pub to: Option<WorkOrderStatus>,
    pub note: Option<String>,
}

impl AuditEntry {
    pub fn key(&self) -> String {
        format!("audit/{}/{:012}", self.work_order, self.seq)
    }

    /// The key prefix of one work order's entries.
    pub fn prefix(work_order: &str) -> String {
        format!("audit/{work_order}/")
    }
}

/// Who acts on a work order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub role: String,
}

impl Actor {
    /// The hub itself.
    pub fn hub() -> Self {
        Actor {
            name: "hub".into(),
            role: "system".into(),
        }
    }
}
