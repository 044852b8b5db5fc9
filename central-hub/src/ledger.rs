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
//! Operators change work orders through the API while ingest applies
//! messages, so every read-modify-write holds the ledger's writer lock: one
//! writer at a time, readers never wait.

use std::sync::{Arc, Mutex, MutexGuard};

use protocol::{
    AnomalyEvent, Birth, Death, DeathReason, EventKind, Heartbeat, IsoZone, Message,
    OutboxCounters, PipelineCounters,
};
use serde::{Deserialize, Serialize};

use crate::assets::{AssetRecord, AssetState};
use crate::audit::{AUDIT_SEQUENCE, Actor, AuditAction, AuditEntry};
use crate::health::HealthPoint;
use crate::registry::RegistryEntry;
use crate::risk::{DEFAULT_CRITICALITY, Sla};
use crate::work_orders::{self, Terms, WorkOrder, WorkOrderStatus};
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

/// How the ledger weighs work and keeps history (from the hub config).
#[derive(Debug, Clone)]
pub struct LedgerPolicy {
    pub sla: Sla,
    /// Least time between two health history points of an unchanged asset.
    pub history_interval_ms: u64,
}

impl Default for LedgerPolicy {
    fn default() -> Self {
        LedgerPolicy {
            sla: Sla::default(),
            history_interval_ms: 60_000,
        }
    }
}

/// The hub's state, on a [`Store`].
#[derive(Clone)]
pub struct Ledger {
    store: Arc<dyn Store>,
    policy: Arc<LedgerPolicy>,
    writer: Arc<Mutex<()>>,
}

impl Ledger {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self::with_policy(store, LedgerPolicy::default())
    }

    pub fn with_policy(store: Arc<dyn Store>, policy: LedgerPolicy) -> Self {
        Ledger {
            store,
            policy: Arc::new(policy),
            writer: Arc::new(Mutex::new(())),
        }
    }

    pub fn policy(&self) -> &LedgerPolicy {
        &self.policy
    }

    /// The writer lock (a panicked writer left nothing half-done: commits
    /// are atomic).
    fn write_lock(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies one validated message received at `now_ms`.
    pub fn apply(&self, message: &Message, now_ms: u64) -> Result<Applied, StoreError> {
        let _writer = self.write_lock();
        match message {
            Message::Birth(m) => self.apply_birth(m, now_ms),
            Message::Heartbeat(m) => self.apply_heartbeat(m, now_ms),
            Message::Event(m) => self.apply_event(m, now_ms),
            Message::Death(m) => self.apply_death(m, now_ms),
            // What it says is the rollouts' business; that it said
            // something proves the gateway is alive.
            Message::Ota(m) => self.apply_alive(&m.site, &m.gateway, now_ms),
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
            if status.velocity_rms_mm_s.is_some() {
                asset.velocity_rms_mm_s = status.velocity_rms_mm_s;
                asset.iso_zone = status.iso_zone;
            }
            let before = asset.state;
            asset.observe(
                status.state,
                status.last_score,
                status.threshold,
                status.alarm_threshold,
                now_ms,
            );
            self.keep_history(&mut asset, before, now_ms, &mut writes);
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
            let before = asset.state;
            asset.observe(e.state, score, e.threshold, e.alarm_threshold, now_ms);
            self.keep_history(&mut asset, before, now_ms, &mut writes);
        }
        if asset.model.is_none() {
            asset.model = Some(e.model.clone());
        }
        writes.push(put_json(key, &asset));

        let work_order = self.work_order_for(e, asset.iso_zone, now_ms, &mut writes)?;
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
        iso_zone: Option<IsoZone>,
        now_ms: u64,
        writes: &mut Vec<Write>,
    ) -> Result<Option<String>, StoreError> {
        let criticality = self.criticality(&e.site, &e.asset_id)?;
        let terms = Terms {
            criticality,
            iso_zone,
            sla: &self.policy.sla,
        };
        let kind = work_orders::kind_of(e);
        let index = WorkOrder::open_key(&e.site, &e.asset_id, kind);
        let open = match get_json::<String>(&*self.store, &index)? {
            Some(id) => self.work_order(&id)?.filter(|wo| wo.status.is_open()),
            None => None,
        };
        if let Some(mut wo) = open {
            wo.attach(e, now_ms, terms);
            writes.push(put_json(WorkOrder::key(&wo.id), &wo));
            return Ok(Some(wo.id));
        }
        if !work_orders::opens(e) {
            return Ok(None);
        }
        let wo = WorkOrder::open(self.next_work_order_id(writes)?, e, now_ms, terms);
        tracing::info!(work_order = %wo.id, asset = %wo.asset_id, priority = wo.priority, risk = wo.risk.risk, "work order opened: {}", wo.reason);
        self.store_opened(&wo, index, now_ms, writes)?;
        Ok(Some(wo.id))
    }

    /// The id of the next work order; its number is taken in `writes`.
    fn next_work_order_id(&self, writes: &mut Vec<Write>) -> Result<String, StoreError> {
        let n = get_json::<u64>(&*self.store, WORK_ORDER_SEQUENCE)?.unwrap_or(0) + 1;
        writes.push(put_json(WORK_ORDER_SEQUENCE, &n));
        Ok(WorkOrder::id_for(n))
    }

    /// Writes a newly opened work order, its open-index entry `index` and
    /// its `opened` audit entry.
    fn store_opened(
        &self,
        wo: &WorkOrder,
        index: String,
        now_ms: u64,
        writes: &mut Vec<Write>,
    ) -> Result<(), StoreError> {
        let mut audit = self.audit_log(writes)?;
        audit.record(
            &Actor::hub(),
            &wo.id,
            AuditAction::Opened,
            None,
            Some(WorkOrderStatus::Open),
            None,
            now_ms,
            writes,
        );
        audit.finish(writes);
        writes.push(put_json(index, &wo.id));
        writes.push(put_json(WorkOrder::key(&wo.id), wo));
        Ok(())
    }

    fn apply_alive(&self, site: &str, gateway: &str, now_ms: u64) -> Result<Applied, StoreError> {
        let mut writes = Vec::new();
        if let Some(g) = self.heard_from(site, gateway, now_ms, &mut writes)? {
            writes.push(put_json(gateway_key(site, gateway), &g));
            self.store.commit(writes)?;
        }
        Ok(Applied::Stored)
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

    /// Keeps a health history point if the state changed or the interval
    /// has passed since the last one.
    fn keep_history(
        &self,
        asset: &mut AssetRecord,
        before: AssetState,
        now_ms: u64,
        writes: &mut Vec<Write>,
    ) {
        let due = now_ms.saturating_sub(asset.history_at_ms) >= self.policy.history_interval_ms;
        if !(due || asset.state != before) {
            return;
        }
        asset.history_at_ms = now_ms;
        let point = HealthPoint {
            at_ms: now_ms,
            health: asset.health,
            score: asset.last_score,
            state: asset.state,
        };
        writes.push(put_json(
            HealthPoint::key(&asset.site, &asset.id, now_ms),
            &point,
        ));
    }

    /// An asset's health history from `since_ms`, oldest first.
    pub fn health_history(
        &self,
        site: &str,
        asset: &str,
        since_ms: u64,
    ) -> Result<Vec<HealthPoint>, StoreError> {
        let mut points: Vec<HealthPoint> =
            scan_json(&*self.store, &HealthPoint::prefix(site, asset))?;
        points.retain(|p| p.at_ms >= since_ms);
        Ok(points)
    }

    /// The registry's criticality of an asset, or the default.
    fn criticality(&self, site: &str, asset: &str) -> Result<u8, StoreError> {
        Ok(self
            .registry_entry(site, asset)?
            .map_or(DEFAULT_CRITICALITY, |r| r.criticality))
    }

    pub fn registry(&self) -> Result<Vec<RegistryEntry>, StoreError> {
        scan_json(&*self.store, "registry/")
    }

    pub fn registry_entry(
        &self,
        site: &str,
        asset: &str,
    ) -> Result<Option<RegistryEntry>, StoreError> {
        get_json(&*self.store, &RegistryEntry::key(site, asset))
    }

    /// Stores registry entries (replacing those with the same site and id)
    /// in one commit.
    pub fn register(&self, entries: &[RegistryEntry]) -> Result<(), StoreError> {
        let _writer = self.write_lock();
        let writes = entries
            .iter()
            .map(|e| put_json(RegistryEntry::key(&e.site, &e.id), e))
            .collect();
        self.store.commit(writes)
    }

    /// Starts appending audit entries to the commit being built in
    /// `writes` (which may already hold some: the sequence goes on from
    /// them).
    fn audit_log(&self, writes: &[Write]) -> Result<AuditLog, StoreError> {
        let pending = writes.iter().rev().find_map(|w| match w {
            Write::Put(key, bytes) if key == AUDIT_SEQUENCE => {
                serde_json::from_slice::<u64>(bytes).ok()
            }
            _ => None,
        });
        let last = match pending {
            Some(n) => n,
            None => get_json::<u64>(&*self.store, AUDIT_SEQUENCE)?.unwrap_or(0),
        };
        Ok(AuditLog { next: last + 1 })
    }

    /// Every audit entry (of one work order, if given), oldest first.
    pub fn audit(&self, work_order: Option<&str>) -> Result<Vec<AuditEntry>, StoreError> {
        let prefix = work_order.map_or_else(|| "audit/".to_owned(), AuditEntry::prefix);
        let mut entries: Vec<AuditEntry> = scan_json(&*self.store, &prefix)?;
        entries.sort_by_key(|e| e.seq);
        Ok(entries)
    }
}

/// Audit entries being added to one commit.
struct AuditLog {
    next: u64,
}

impl AuditLog {
    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        who: &Actor,
        work_order: &str,
        action: AuditAction,
        from: Option<WorkOrderStatus>,
        to: Option<WorkOrderStatus>,
        note: Option<String>,
        at_ms: u64,
        writes: &mut Vec<Write>,
    ) {
        let entry = AuditEntry {
            seq: self.next,
            at_ms,
            who: who.name.clone(),
            role: who.role.clone(),
            work_order: work_order.to_owned(),
            action,
            from,
            to,
            note,
        };
        self.next += 1;
        writes.push(put_json(entry.key(), &entry));
    }

    /// The sequence's new value, written with the entries.
    fn finish(self, writes: &mut Vec<Write>) {
        writes.push(put_json(AUDIT_SEQUENCE, &(self.next - 1)));
    }
}

#[path = "liveness.rs"]
pub mod liveness;

#[path = "operations.rs"]
pub mod operations;

#[path = "model_registry.rs"]
pub mod model_registry;

#[path = "rollouts.rs"]
pub mod rollouts;

fn gateway_key(site: &str, gateway: &str) -> String {
    format!("gateway/{site}/{gateway}")
}

fn event_key(id: &str) -> String {
    format!("event/{id}")
}

#[cfg(test)]
#[path = "ledger_tests.rs"]
mod tests;
