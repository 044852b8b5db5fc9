//! The gateway's durable outbox: what the hub must get is on disk before it
//! is published, and leaves the disk only once it is safe elsewhere.
//!
//! Why ours: rumqttc keeps unacknowledged QoS 1 publishes in memory only,
//! and forgets them when the broker reports no session; a gateway that
//! loses power, or a broker that restarts, would lose them. So every event
//! and heartbeat is committed here (sled, flushed) first and the link
//! publishes from here (see [`crate::link`]). A heartbeat is deleted on the
//! broker's PUBACK. An event is deleted only when the hub's receipt names
//! it: a broker without persistence (the embedded one) that restarts loses
//! what it had acknowledged but not yet delivered, and the gateway then
//! sends it again (the hub deduplicates by event id).
//!
//! **Order.** Events (detector transitions, sensor and model faults) go
//! before telemetry (heartbeats), each oldest first: a backlog of telemetry
//! never delays a live event, and the hub sees each asset's transitions in
//! the order they happened. A live event waits only behind older events.
//!
//! **Bounds.** At most `max_bytes` of records and `max_age_s` of age. When
//! a new record does not fit, the oldest record of the least important
//! class goes first: telemetry, then non-alarm events, then alarms; never a
//! record more important than the newcomer (then the newcomer is dropped).
//! Every drop is counted by class and reported in the heartbeat.
//!
//! **Bad records.** Each record carries a CRC-32. One that is torn or
//! garbage is logged with the reason, counted, deleted and skipped: it never
//! stops the agent nor hides the records behind it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use protocol::Message;
use serde::Deserialize;
use store::{Store, StoreError, Write};
use thiserror::Error;

mod record;

#[cfg(test)]
use record::HEADER;
pub use record::{Class, Record};
use record::{decode, encode};

const PREFIX: &str = "outbox/";

/// The outbox's bounds (the agent config's `[outbox]` table).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxConfig {
    /// Most bytes of records kept (default 64 MiB).
    pub max_bytes: u64,
    /// Records older than this are dropped, as expired (default 7 days).
    pub max_age_s: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            max_bytes: 64 << 20,
            max_age_s: 7 * 24 * 3600,
        }
    }
}

impl OutboxConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.max_bytes < 64 * 1024 {
            return Err(format!(
                "outbox.max_bytes must be at least 65536 (one large event), not {}",
                self.max_bytes
            ));
        }
        if self.max_age_s == 0 {
            return Err("outbox.max_age_s must be at least 1".into());
        }
        Ok(())
    }
}

/// Why a record was not kept.
#[derive(Debug, Error)]
pub enum OutboxError {
    #[error("outbox write failed (disk full?): {0}")]
    Store(#[from] StoreError),
}

/// What [`Outbox::push`] did with the new record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Kept under this sequence number (older records may have been dropped
    /// to make room; they are counted).
    Kept(u64),
    /// Not kept: the outbox is full of more important records.
    Dropped,
}

/// Figures for the heartbeat.
pub use protocol::OutboxCounters;

#[derive(Debug, Clone)]
struct Entry {
    class: Class,
    bytes: u64,
    enqueued_ms: u64,
    /// Events: the id the hub's receipt names.
    event_id: Option<String>,
    /// When the broker acknowledged it (events then wait for a receipt).
    delivered: Option<std::time::Instant>,
}

#[derive(Debug, Default)]
struct Index {
    /// Events and alarms, by sequence number.
    urgent: BTreeMap<u64, Entry>,
    telemetry: BTreeMap<u64, Entry>,
    by_event: HashMap<String, u64>,
    bytes: u64,
    next_seq: u64,
}

impl Index {
    fn lane(&mut self, class: Class) -> &mut BTreeMap<u64, Entry> {
        match class {
            Class::Telemetry => &mut self.telemetry,
            _ => &mut self.urgent,
        }
    }

    fn insert(&mut self, seq: u64, entry: Entry) {
        self.bytes += entry.bytes;
        if let Some(id) = &entry.event_id {
            self.by_event.insert(id.clone(), seq);
        }
        self.lane(entry.class).insert(seq, entry);
    }

    fn remove(&mut self, seq: u64) -> Option<Entry> {
        let entry = self
            .urgent
            .remove(&seq)
            .or_else(|| self.telemetry.remove(&seq))?;
        self.bytes -= entry.bytes;
        if let Some(id) = &entry.event_id {
            self.by_event.remove(id);
        }
        Some(entry)
    }

    fn get_mut(&mut self, seq: u64) -> Option<&mut Entry> {
        match self.urgent.get_mut(&seq) {
            Some(e) => Some(e),
            None => self.telemetry.get_mut(&seq),
        }
    }

    /// The record to drop first for a newcomer of class `limit`: the oldest
    /// of the least important class, never one above `limit`. Entries in
    /// `taken` are already chosen.
    fn victim(&self, limit: Class, taken: &[(u64, Entry)]) -> Option<(u64, Entry)> {
        let free = |(seq, _): &(&u64, &Entry)| !taken.iter().any(|(t, _)| t == *seq);
        let oldest = |lane: &BTreeMap<u64, Entry>, class: Class| {
            lane.iter()
                .filter(|(_, e)| e.class == class)
                .find(|x| free(x))
                .map(|(s, e)| (*s, e.clone()))
        };
        [Class::Telemetry, Class::Event, Class::Alarm]
            .into_iter()
            .filter(|c| *c <= limit)
            .find_map(|c| match c {
                Class::Telemetry => oldest(&self.telemetry, c),
                _ => oldest(&self.urgent, c),
            })
    }
}

#[derive(Debug, Default)]
struct Stats {
    accepted: AtomicU64,
    acknowledged: AtomicU64,
    confirmed: AtomicU64,
    dropped: [AtomicU64; 3],
    expired: AtomicU64,
    corrupt: AtomicU64,
    write_failures: AtomicU64,
}

/// The durable outbox (shared by the lanes, the heartbeat and the link).
pub struct Outbox {
    store: Arc<dyn Store>,
    config: OutboxConfig,
    index: Mutex<Index>,
    stats: Stats,
    changed: tokio::sync::Notify,
}

fn key(seq: u64) -> String {
    format!("{PREFIX}{seq:020}")
}

impl Outbox {
    /// The gateway's store it keeps its records in (shared with the other
    /// durable state, under their own prefixes).
    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// Opens the outbox kept in `store`: every readable record is kept for
    /// sending; unreadable ones are logged, counted and deleted.
    pub fn open(store: Arc<dyn Store>, config: OutboxConfig) -> Result<Outbox, StoreError> {
        let mut index = Index::default();
        let stats = Stats::default();
        let mut bad = Vec::new();
        let mut last = 0;
        for (k, bytes) in store.scan_prefix(PREFIX)? {
            let seq = k[PREFIX.len()..].parse::<u64>();
            let record = match seq {
                Ok(seq) => decode(seq, &bytes),
                Err(_) => Err("key is not a sequence number".into()),
            };
            match record {
                Ok(r) => {
                    last = last.max(r.seq);
                    let entry = Entry {
                        class: r.class,
                        bytes: bytes.len() as u64,
                        enqueued_ms: r.enqueued_ms,
                        event_id: r.event_id,
                        delivered: None,
                    };
                    index.insert(r.seq, entry);
                }
                Err(reason) => {
                    tracing::warn!(key = %k, "outbox record skipped: {reason}");
                    stats.corrupt.fetch_add(1, Relaxed);
                    bad.push(Write::Delete(k));
                }
            }
        }
        if !bad.is_empty() {
            store.commit(bad)?;
        }
        index.next_seq = last + 1;
        let kept = index.urgent.len() + index.telemetry.len();
        if kept > 0 {
            tracing::info!(
                records = kept,
                events = index.urgent.len(),
                bytes = index.bytes,
                "outbox holds records from before the restart; they will be sent"
            );
        }
        Ok(Outbox {
            store,
            config,
            index: Mutex::new(index),
            stats,
            changed: tokio::sync::Notify::new(),
        })
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count_drop(&self, class: Class, n: u64) {
        self.stats.dropped[class as usize].fetch_add(n, Relaxed);
    }

    /// Keeps a message durably (committed and flushed on return). Makes
    /// room by the drop policy; expired records go first.
    pub fn push(&self, message: &Message, now_ms: u64) -> Result<Pushed, OutboxError> {
        let class = Class::of(message).expect("births and deaths are not kept");
        let envelope = match protocol::encode(message) {
            Ok(e) => e,
            // A bug, not a field condition: never keep what a hub refuses.
            Err(e) => {
                tracing::error!("refusing to keep an invalid message: {e}");
                self.count_drop(class, 1);
                return Ok(Pushed::Dropped);
            }
        };
        let event_id = match message {
            Message::Event(e) => Some(e.event_id.as_str()),
            _ => None,
        };
        self.push_raw(class, event_id, &envelope.topic, &envelope.payload, now_ms)
    }

    /// [`Outbox::push`] for an encoded message (`event_id` for an event).
    pub fn push_raw(
        &self,
        class: Class,
        event_id: Option<&str>,
        topic: &str,
        payload: &[u8],
        now_ms: u64,
    ) -> Result<Pushed, OutboxError> {
        let mut index = self.index();
        let seq = index.next_seq;
        let value = encode(class, now_ms, event_id, topic, payload);
        let size = value.len() as u64;
        let oldest_kept = now_ms.saturating_sub(self.config.max_age_s * 1000);
        let mut victims: Vec<(u64, Entry)> = index
            .urgent
            .iter()
            .chain(index.telemetry.iter())
            .filter(|(_, e)| e.enqueued_ms < oldest_kept)
            .map(|(s, e)| (*s, e.clone()))
            .collect();
        let expired = victims.len();
        let mut freed: u64 = victims.iter().map(|(_, e)| e.bytes).sum();
        let mut fits = size <= self.config.max_bytes;
        while fits && index.bytes - freed + size > self.config.max_bytes {
            match index.victim(class, &victims) {
                Some(v) => {
                    freed += v.1.bytes;
                    victims.push(v);
                }
                None => fits = false,
            }
        }
        let mut writes: Vec<Write> = victims
            .iter()
            .map(|(s, _)| Write::Delete(key(*s)))
            .collect();
        if fits {
            writes.push(Write::Put(key(seq), value));
        }
        if let Err(e) = self.store.commit(writes) {
            self.stats.write_failures.fetch_add(1, Relaxed);
            self.count_drop(class, 1);
            return Err(e.into());
        }
        for (i, (s, entry)) in victims.iter().enumerate() {
            index.remove(*s);
            if i < expired {
                self.stats.expired.fetch_add(1, Relaxed);
            } else {
                self.count_drop(entry.class, 1);
            }
        }
        if victims.len() > expired {
            tracing::warn!(
                dropped = victims.len() - expired,
                "outbox full ({} bytes): oldest records of the least important class dropped",
                self.config.max_bytes
            );
        }
        if !fits {
            self.count_drop(class, 1);
            tracing::warn!(
                ?class,
                "outbox full of more important records: new record dropped"
            );
            return Ok(Pushed::Dropped);
        }
        index.next_seq += 1;
        index.insert(
            seq,
            Entry {
                class,
                bytes: size,
                enqueued_ms: now_ms,
                event_id: event_id.map(str::to_owned),
                delivered: None,
            },
        );
        drop(index);
        self.stats.accepted.fetch_add(1, Relaxed);
        self.changed.notify_one();
        Ok(Pushed::Kept(seq))
    }

    /// The next record to send after `cursor` (events first, then
    /// telemetry, each oldest first); advances the cursor past it. A record
    /// that turns out unreadable is counted, deleted and skipped.
    pub fn next(&self, cursor: &mut Cursor) -> Option<Record> {
        loop {
            let (seq, urgent) = {
                let index = self.index();
                let after = |lane: &BTreeMap<u64, Entry>, after: u64| {
                    lane.range(after + 1..).next().map(|(s, _)| *s)
                };
                match after(&index.urgent, cursor.urgent) {
                    Some(s) => (s, true),
                    None => (after(&index.telemetry, cursor.telemetry)?, false),
                }
            };
            if urgent {
                cursor.urgent = seq;
            } else {
                cursor.telemetry = seq;
            }
            let read = self
                .store
                .get(&key(seq))
                .map_err(|e| e.to_string())
                .and_then(|v| v.ok_or_else(|| "vanished".to_string()))
                .and_then(|v| decode(seq, &v));
            match read {
                Ok(record) => return Some(record),
                Err(reason) => {
                    tracing::warn!(seq, "outbox record skipped: {reason}");
                    self.stats.corrupt.fetch_add(1, Relaxed);
                    self.index().remove(seq);
                    let _ = self.store.commit(vec![Write::Delete(key(seq))]);
                }
            }
        }
    }

    /// Notes records the broker acknowledged: telemetry is deleted, events
    /// wait for the hub's receipt. Unknown ones (already dropped or
    /// confirmed) are ignored. Returns how many were still kept.
    pub fn acknowledge(&self, seqs: &[u64]) -> Result<usize, StoreError> {
        let mut index = self.index();
        let mut known = 0;
        let mut deletes = Vec::new();
        for &s in seqs {
            let Some(entry) = index.get_mut(s) else {
                continue;
            };
            known += 1;
            if entry.class == Class::Telemetry {
                deletes.push(s);
            } else {
                entry.delivered.get_or_insert_with(std::time::Instant::now);
            }
        }
        self.delete(&mut index, &deletes)?;
        drop(index);
        self.stats.acknowledged.fetch_add(known, Relaxed);
        self.changed.notify_one();
        Ok(known as usize)
    }

    /// Deletes the events a hub receipt names (unknown ids are ignored).
    /// Returns how many were still kept.
    pub fn confirm(&self, event_ids: &[String]) -> Result<usize, StoreError> {
        let mut index = self.index();
        let seqs: Vec<u64> = event_ids
            .iter()
            .filter_map(|id| index.by_event.get(id).copied())
            .collect();
        self.delete(&mut index, &seqs)?;
        drop(index);
        self.stats.confirmed.fetch_add(seqs.len() as u64, Relaxed);
        self.changed.notify_one();
        Ok(seqs.len())
    }

    fn delete(&self, index: &mut Index, seqs: &[u64]) -> Result<(), StoreError> {
        if seqs.is_empty() {
            return Ok(());
        }
        self.store
            .commit(seqs.iter().map(|s| Write::Delete(key(*s))).collect())?;
        for s in seqs {
            index.remove(*s);
        }
        Ok(())
    }

    /// How long the event longest awaiting its receipt has waited since the
    /// broker acknowledged it.
    pub fn longest_unconfirmed(&self) -> Option<std::time::Duration> {
        let index = self.index();
        index
            .urgent
            .values()
            .filter_map(|e| e.delivered)
            .min()
            .map(|t| t.elapsed())
    }

    /// Records kept (events, all).
    pub fn depth(&self) -> (usize, usize) {
        let index = self.index();
        (
            index.urgent.len(),
            index.urgent.len() + index.telemetry.len(),
        )
    }

    /// Resolves after the next push or acknowledgement (one waiter).
    pub async fn changed(&self) {
        self.changed.notified().await
    }

    pub fn counters(&self) -> OutboxCounters {
        let index = self.index();
        let dropped = |c: Class| self.stats.dropped[c as usize].load(Relaxed);
        OutboxCounters {
            records: (index.urgent.len() + index.telemetry.len()) as u64,
            events: index.urgent.len() as u64,
            bytes: index.bytes,
            accepted: self.stats.accepted.load(Relaxed),
            acknowledged: self.stats.acknowledged.load(Relaxed),
            awaiting_receipt: index
                .urgent
                .values()
                .filter(|e| e.delivered.is_some())
                .count() as u64,
            confirmed: self.stats.confirmed.load(Relaxed),
            dropped_telemetry: dropped(Class::Telemetry),
            dropped_events: dropped(Class::Event),
            dropped_alarms: dropped(Class::Alarm),
            expired: self.stats.expired.load(Relaxed),
            corrupt: self.stats.corrupt.load(Relaxed),
            write_failures: self.stats.write_failures.load(Relaxed),
        }
    }
}

/// Where a sender is in the outbox: the last event and the last telemetry
/// record it took. A new connection starts a new cursor, so everything not
/// yet acknowledged is sent again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    urgent: u64,
    telemetry: u64,
}

#[cfg(test)]
#[path = "outbox_tests.rs"]
mod tests;
