//! Applies validated gateway messages to the hub's stored state.
//!
//! Every message becomes one atomic, durable commit: the event record (its id
//! is the deduplication key), the asset's new state and health, and the work
//! order it opens or attaches to. Because the event is stored in the same
//! commit as its effects, a redelivered event is recognised by its id and
//! changes nothing: at-least-once delivery, exactly-once effects.
//!
//! Assets, gateways and open work orders are keyed by site: every pump
//! station may have its own `P-101`.
//!
//! The ledger is used by a single ingest task, so read-modify-write needs no
//! locking; the HTTP API only reads.

use std::sync::Arc;

use protocol::{
    AnomalyEvent, Birth, Death, DeathReason, EventKind, Heartbeat, Message, OutboxCounters,
    PipelineCounters,
};
use serde::{Deserialize, Serialize};

use crate::assets::{AssetRecord, AssetState};
use crate::work_orders::{self, WorkOrder};
use store::{Store, StoreError, Write, get_json, put_json, scan_json};

const WORK_ORDER_SEQUENCE: &str = "seq/wo";

/// What applying a message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Stored,
    /// An event already stored (a redelivery); nothing changed.
    Duplicate,
}

/// The stored record of a gateway (key `gateway/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayRecord {
    pub id: String,
    pub site: String,
    pub agent_version: String,
    pub online: bool,
    pub started_at_ms: u64,
    pub last_seen_ms: u64,
    pub assets: Vec<String>,
    pub counters: Option<PipelineCounters>,
    pub last_death: Option<DeathReason>,
    /// The gateway's time of the newest heartbeat applied; older ones
    /// (replayed from its outbox after an outage) only prove it is back.
    #[serde(default)]
    pub last_heartbeat_ts_ms: u64,
    /// What its outbox held and dropped, as of that heartbeat.
    #[serde(default)]
    pub outbox: Option<OutboxCounters>,
    /// Why it is offline, in words, while it is.
    #[serde(default)]
    pub offline_cause: Option<String>,
}

/// An event as stored (key `event/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub received_at_ms: u64,
    pub work_order: Option<String>,
    pub event: AnomalyEvent,
}

/// The hub's state, on a [`Store`].
#[derive(Clone)]
pub struct Ledger {
    store: Arc<dyn Store>,
}

impl Ledger {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Ledger { store }
    }

    /// Applies one validated message received at `now_ms`.
    pub fn apply(&self, message: &Message, now_ms: u64) -> Result<Applied, StoreError> {
        match message {
            Message::Birth(m) => self.apply_birth(m, now_ms),
            Message::Heartbeat(m) => self.apply_heartbeat(m, now_ms),
            Message::Event(m) => self.apply_event(m, now_ms),
            Message::Death(m) => self.apply_death(m, now_ms),
        }
    }

    pub fn assets(&self) -> Result<Vec<AssetRecord>, StoreError> {
        scan_json(&*self.store, "asset/")
    }

    pub fn gateways(&self) -> Result<Vec<GatewayRecord>, StoreError> {
        scan_json(&*self.store, "gateway/")
    }

    pub fn work_orders(&self) -> Result<Vec<WorkOrder>, StoreError> {
        scan_json(&*self.store, "wo/")
    }

    pub fn work_order(&self, id: &str) -> Result<Option<WorkOrder>, StoreError> {
        get_json(&*self.store, &WorkOrder::key(id))
    }

    /// Every stored event, in id order (event ids are UUIDv7: time order).
    pub fn events(&self) -> Result<Vec<StoredEvent>, StoreError> {
        scan_json(&*self.store, "event/")
    }

    pub fn event(&self, id: &str) -> Result<Option<StoredEvent>, StoreError> {
        get_json(&*self.store, &event_key(id))
    }

    /// Whether a birth of this gateway has been stored.
    pub fn knows_gateway(&self, site: &str, gateway: &str) -> bool {
        matches!(self.store.get(&gateway_key(site, gateway)), Ok(Some(_)))
    }

    fn gateway(&self, site: &str, gateway: &str) -> Result<Option<GatewayRecord>, StoreError> {
        get_json(&*self.store, &gateway_key(site, gateway))
    }

    /// A birth (re)announces the gateway's assets. Their state stays the
    /// last one known (offline becomes it again) until the gateway's next
    /// heartbeat or event says otherwise: a restarted agent's fresh
    /// detector does not mean the machine got better.
    fn apply_birth(&self, m: &Birth, now_ms: u64) -> Result<Applied, StoreError> {
        let mut writes = Vec::new();
        let previous = self.heard_from(&m.site, &m.gateway, now_ms, &mut writes)?;
        // A new run of the agent may have a different clock (a gateway
        // without a real-time clock boots in 1970 until NTP answers): the
        // newest-report marks of the old run do not apply to it.
        let new_run = previous
            .as_ref()
            .is_none_or(|g| g.started_at_ms != m.started_at_ms);
        for info in &m.assets {
            let key = AssetRecord::key(&m.site, &info.id);
            let mut asset = get_json::<AssetRecord>(&*self.store, &key)?.unwrap_or_else(|| {
                AssetRecord::new(&info.id, info.kind, &m.site, &m.gateway, now_ms)
            });
            asset.kind = info.kind;
            asset.site = m.site.clone();
            asset.gateway = m.gateway.clone();
            asset.channels = info.channels.clone();
            asset.model = Some(info.model.clone());
            asset.last_seen_ms = now_ms;
            asset.state = asset.detector_state.into();
            if new_run {
                asset.reported_at_ms = 0;
            }
            writes.push(put_json(key, &asset));
        }
        let gateway = GatewayRecord {
            id: m.gateway.clone(),
            site: m.site.clone(),
            agent_version: m.agent_version.clone(),
            online: true,
            started_at_ms: m.started_at_ms,
            last_seen_ms: now_ms,
            assets: m.assets.iter().map(|a| a.id.clone()).collect(),
            counters: previous.as_ref().and_then(|g| g.counters.clone()),
            last_death: None,
            last_heartbeat_ts_ms: match &previous {
                Some(g) if !new_run => g.last_heartbeat_ts_ms,
                _ => 0,
            },
            outbox: previous.and_then(|g| g.outbox),
            offline_cause: None,
        };
        writes.push(put_json(gateway_key(&m.site, &m.gateway), &gateway));
        self.store.commit(writes)?;
        Ok(Applied::Stored)
    }

    fn apply_heartbeat(&self, m: &Heartbeat, now_ms: u64) -> Result<Applied, StoreError> {
        let mut writes = Vec::new();
        let Some(mut gateway) = self.heard_from(&m.site, &m.gateway, now_ms, &mut writes)? else {
            // Assets wait for the birth the ingest asks for.
            return Ok(Applied::Stored);
        };
        if m.ts_ms < gateway.last_heartbeat_ts_ms {
            // Replayed from the outbox after an outage: newer news is in.
            writes.push(put_json(gateway_key(&m.site, &m.gateway), &gateway));
            self.store.commit(writes)?;
            return Ok(Applied::Stored);
        }
        gateway.last_heartbeat_ts_ms = m.ts_ms;
        gateway.counters = Some(m.counters.clone());
        gateway.outbox = Some(m.outbox.clone());
        writes.push(put_json(gateway_key(&m.site, &m.gateway), &gateway));
        for status in &m.assets {
            let key = AssetRecord::key(&m.site, &status.id);
            let Some(mut asset) = get_json::<AssetRecord>(&*self.store, &key)? else {
                tracing::debug!(asset = %status.id, gateway = %m.gateway, "heartbeat for an asset without birth; waiting for its birth");
                continue;
            };
            if asset.is_stale(m.ts_ms) {
                continue;
            }
            asset.observe(
                status.state,
                status.last_score,
                status.threshold,
                status.alarm_threshold,
                now_ms,
            );
            if status.velocity_rms_mm_s.is_some() {
                asset.velocity_rms_mm_s = status.velocity_rms_mm_s;
                asset.iso_zone = status.iso_zone;
            }
            asset.commissioning = status.commissioning.clone();
            if status.model.is_some() {
                asset.model = status.model.clone();
            }
            writes.push(put_json(key, &asset));
        }
        self.store.commit(writes)?;
        Ok(Applied::Stored)
    }

    fn apply_event(&self, e: &AnomalyEvent, now_ms: u64) -> Result<Applied, StoreError> {
        if self.store.get(&event_key(&e.event_id))?.is_some() {
            return Ok(Applied::Duplicate);
        }
        let mut writes = Vec::new();
        if let Some(gateway) = self.heard_from(&e.site, &e.gateway, now_ms, &mut writes)? {
            writes.push(put_json(gateway_key(&e.site, &e.gateway), &gateway));
        }
        let key = AssetRecord::key(&e.site, &e.asset_id);
        let mut asset = get_json::<AssetRecord>(&*self.store, &key)?.unwrap_or_else(|| {
            AssetRecord::new(&e.asset_id, e.asset_kind, &e.site, &e.gateway, now_ms)
        });
        // An event older than the newest report (replayed after an outage)
        // is evidence, but the asset's state is the newer one.
        if !asset.is_stale(e.raised_at_ms) {
            let score = (e.kind == EventKind::Anomaly).then_some(e.score);
            asset.observe(e.state, score, e.threshold, e.alarm_threshold, now_ms);
        }
        if asset.model.is_none() {
            asset.model = Some(e.model.clone());
        }
        writes.push(put_json(key, &asset));

        let work_order = self.work_order_for(e, now_ms, &mut writes)?;
        let stored = StoredEvent {
            received_at_ms: now_ms,
            work_order,
            event: e.clone(),
        };
        writes.push(put_json(event_key(&e.event_id), &stored));
        self.store.commit(writes)?;
        Ok(Applied::Stored)
    }

    /// Opens or updates the work order an event belongs to; returns its id.
    fn work_order_for(
        &self,
        e: &AnomalyEvent,
        now_ms: u64,
        writes: &mut Vec<Write>,
    ) -> Result<Option<String>, StoreError> {
        let kind = work_orders::kind_of(e);
        let index = WorkOrder::open_key(&e.site, &e.asset_id, kind);
        let open = match get_json::<String>(&*self.store, &index)? {
            Some(id) => self.work_order(&id)?.filter(|wo| wo.status.is_open()),
            None => None,
        };
        if let Some(mut wo) = open {
            wo.attach(e, now_ms);
            writes.push(put_json(WorkOrder::key(&wo.id), &wo));
            return Ok(Some(wo.id));
        }
        if !work_orders::opens(e) {
            return Ok(None);
        }
        let n = get_json::<u64>(&*self.store, WORK_ORDER_SEQUENCE)?.unwrap_or(0) + 1;
        let wo = WorkOrder::open(WorkOrder::id_for(n), e, now_ms);
        tracing::info!(work_order = %wo.id, asset = %wo.asset_id, priority = wo.priority, "work order opened: {}", wo.reason);
        writes.push(put_json(WORK_ORDER_SEQUENCE, &n));
        writes.push(put_json(index, &wo.id));
        writes.push(put_json(WorkOrder::key(&wo.id), &wo));
        Ok(Some(wo.id))
    }

    fn apply_death(&self, m: &Death, now_ms: u64) -> Result<Applied, StoreError> {
        let mut writes = Vec::new();
        if let Some(mut gateway) = self.gateway(&m.site, &m.gateway)? {
            gateway.online = false;
            gateway.last_seen_ms = now_ms;
            gateway.last_death = Some(m.reason);
            gateway.offline_cause = Some(liveness::death_cause(m.reason).to_owned());
            writes.push(put_json(gateway_key(&m.site, &m.gateway), &gateway));
        }
        for mut asset in scan_json::<AssetRecord>(&*self.store, &format!("asset/{}/", m.site))? {
            if asset.gateway == m.gateway {
                asset.state = AssetState::Offline;
                writes.push(put_json(AssetRecord::key(&asset.site, &asset.id), &asset));
            }
        }
        self.store.commit(writes)?;
        Ok(Applied::Stored)
    }
}

#[path = "liveness.rs"]
pub mod liveness;

fn gateway_key(site: &str, gateway: &str) -> String {
    format!("gateway/{site}/{gateway}")
}

fn event_key(id: &str) -> String {
    format!("event/{id}")
}

#[cfg(test)]
#[path = "ledger_tests.rs"]
mod tests;
