//! Whether each gateway is alive, and a work order when one stays away.
//!
//! A gateway proves it is alive with every message (birth, heartbeat,
//! event). It goes offline at once when its death arrives (a clean
//! shutdown, or the broker's last will when its connection was lost), and
//! after [`LivenessPolicy::offline_after`] of silence otherwise: a gateway
//! whose power failed, or whose cellular link is down while the broker has
//! not yet noticed, says nothing at all. Its assets then show `offline`.
//!
//! An outage shorter than [`LivenessPolicy::work_order_after`] is only shown;
//! a longer one opens a `gateway_offline` work order (its assets are
//! unwatched). The first message from the gateway closes it, with the
//! outage's length as its resolution, and its outbox then delivers what it
//! kept meanwhile.
//!
//! This is part of the ledger (a child module) so that the sweep and the
//! message handlers share one writer: the ingest task runs both.

use std::time::Duration;

use protocol::{AssetKind, DeathReason, ModelRef};

use super::{GatewayRecord, Ledger, gateway_key};
use crate::assets::{AssetRecord, AssetState};
use crate::audit::{Actor, AuditAction};
use crate::work_orders::{GatewayOffline, Terms, WorkOrder, WorkOrderKind, WorkOrderStatus};
use store::{StoreError, Write, get_json, put_json, scan_json};

/// When the hub calls a silent gateway offline, and when that becomes work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LivenessPolicy {
    /// Silence after which a gateway is offline (default 60 s; several
    /// heartbeat intervals).
    pub offline_after: Duration,
    /// Time offline after which a work order is opened (default 10 min).
    pub work_order_after: Duration,
}

impl Default for LivenessPolicy {
    fn default() -> Self {
        LivenessPolicy {
            offline_after: Duration::from_secs(60),
            work_order_after: Duration::from_secs(600),
        }
    }
}

/// What a sweep changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Gateways marked offline for silence.
    pub went_silent: Vec<String>,
    /// Work orders opened for gateways offline too long.
    pub work_orders: Vec<String>,
}

/// The cause shown for a gateway that said it was going.
pub fn death_cause(reason: DeathReason) -> &'static str {
    match reason {
        DeathReason::Shutdown => "stopped",
        DeathReason::ConnectionLost => "connection lost",
    }
}

fn open_key(g: &GatewayRecord) -> String {
    WorkOrder::open_key(&g.site, &g.id, WorkOrderKind::GatewayOffline)
}

fn minutes(ms: u64) -> String {
    format!("{:.0} min", ms as f64 / 60_000.0)
}

impl Ledger {
    /// Marks the gateway as heard from at `now_ms`; if it was offline, it
    /// is back and its open `gateway_offline` work order is closed (in
    /// `writes`). Returns its record, updated but not yet written, or
    /// `None` for a gateway without a birth.
    pub(super) fn heard_from(
        &self,
        site: &str,
        gateway: &str,
        now_ms: u64,
        writes: &mut Vec<Write>,
    ) -> Result<Option<GatewayRecord>, StoreError> {
        let Some(mut g) = self.gateway(site, gateway)? else {
            return Ok(None);
        };
        if !g.online {
            let away = now_ms.saturating_sub(g.last_seen_ms);
            tracing::info!(site, gateway, "gateway back online after {}", minutes(away));
            let key = open_key(&g);
            if let Some(id) = get_json::<String>(&*self.store, &key)?
                && let Some(mut wo) = self.work_order(&id)?.filter(|w| w.status.is_open())
            {
                let from = wo.status;
                wo.status = WorkOrderStatus::Done;
                wo.updated_at_ms = now_ms;
                wo.closed_at_ms = Some(now_ms);
                let resolution = format!(
                    "Gateway back online after {} offline; closed by the hub.",
                    minutes(away)
                );
                wo.resolution = Some(resolution.clone());
                tracing::info!(work_order = %wo.id, gateway, "work order closed: gateway back online");
                let mut audit = self.audit_log(writes)?;
                audit.record(
                    &Actor::hub(),
                    &wo.id,
                    AuditAction::ClosedByHub,
                    Some(from),
                    Some(WorkOrderStatus::Done),
                    Some(resolution),
                    now_ms,
                    writes,
                );
                audit.finish(writes);
                writes.push(put_json(WorkOrder::key(&wo.id), &wo));
                writes.push(Write::Delete(key));
            }
        }
        g.online = true;
        g.last_seen_ms = now_ms;
        g.offline_cause = None;
        Ok(Some(g))
    }

    /// Applies the policy at `now_ms`: silent gateways go offline, long
    /// outages become work orders.
    pub fn sweep_liveness(
        &self,
        now_ms: u64,
        policy: &LivenessPolicy,
    ) -> Result<Sweep, StoreError> {
        let _writer = self.write_lock();
        let mut sweep = Sweep::default();
        for mut g in self.gateways()? {
            let silent_ms = now_ms.saturating_sub(g.last_seen_ms);
            let mut writes = Vec::new();
            if g.online && silent_ms > policy.offline_after.as_millis() as u64 {
                g.online = false;
                g.offline_cause = Some("silent".into());
                tracing::warn!(site = %g.site, gateway = %g.id, "gateway silent for {} s: offline", silent_ms / 1000);
                for mut asset in
                    scan_json::<AssetRecord>(&*self.store, &format!("asset/{}/", g.site))?
                {
                    if asset.gateway == g.id {
                        asset.state = AssetState::Offline;
                        writes.push(put_json(AssetRecord::key(&asset.site, &asset.id), &asset));
                    }
                }
                writes.push(put_json(gateway_key(&g.site, &g.id), &g));
                sweep.went_silent.push(g.id.clone());
            }
            let long = silent_ms > policy.work_order_after.as_millis() as u64;
            if !g.online && long && get_json::<String>(&*self.store, &open_key(&g))?.is_none() {
                let wo = self.offline_work_order(&g, now_ms, &mut writes)?;
                sweep.work_orders.push(wo);
            }
            if !writes.is_empty() {
                self.store.commit(writes)?;
            }
        }
        Ok(sweep)
    }

    fn offline_work_order(
        &self,
        g: &GatewayRecord,
        now_ms: u64,
        writes: &mut Vec<Write>,
    ) -> Result<String, StoreError> {
        let first = match g.assets.first() {
            Some(id) => get_json::<AssetRecord>(&*self.store, &AssetRecord::key(&g.site, id))?,
            None => None,
        };
        let cause = g.offline_cause.clone().unwrap_or_else(|| "silent".into());
        let about = GatewayOffline {
            id: &g.id,
            site: &g.site,
            cause: &cause,
            assets: &g.assets,
            asset_kind: first.as_ref().map_or(AssetKind::Pump, |a| a.kind),
            model: first.and_then(|a| a.model).unwrap_or_else(|| ModelRef {
                id: "none".into(),
                version: "-".into(),
            }),
        };
        // The gateway's criticality is its most critical asset's.
        let mut criticality = 1;
        for id in &g.assets {
            criticality = criticality.max(self.criticality(&g.site, id)?);
        }
        let terms = Terms {
            criticality,
            iso_zone: None,
            sla: &self.policy.sla,
        };
        let id = self.next_work_order_id(writes)?;
        let wo = WorkOrder::gateway_offline(id, &about, g.last_seen_ms, now_ms, terms);
        tracing::warn!(work_order = %wo.id, gateway = %g.id, "work order opened: {}", wo.reason);
        self.store_opened(&wo, open_key(g), now_ms, writes)?;
        Ok(wo.id)
    }
}

#[cfg(test)]
#[path = "liveness_tests.rs"]
mod tests;
