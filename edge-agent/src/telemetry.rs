//! What the agent reports about itself in heartbeats.
//!
//! Lanes run on their own threads and only ever add to these counters or
//! overwrite their own asset's status line; the heartbeat task reads a
//! snapshot. Nothing here is on a lane's critical path beyond an atomic add
//! and an uncontended lock per window.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use protocol::{AssetStatus, PipelineCounters};

#[derive(Debug, Default)]
pub struct Counters {
    windows_acquired: AtomicU64,
    windows_scored: AtomicU64,
    windows_dropped: AtomicU64,
    windows_rejected: AtomicU64,
    windows_baseline: AtomicU64,
    model_failures: AtomicU64,
    gaps: AtomicU64,
    frame_errors: AtomicU64,
    sequence_gaps: AtomicU64,
    events_raised: AtomicU64,
    events_published: AtomicU64,
    publish_failures: AtomicU64,
}

impl Counters {
    pub fn add_window_acquired(&self) {
        self.windows_acquired.fetch_add(1, Relaxed);
    }
    pub fn add_frame_errors(&self, n: u64) {
        self.frame_errors.fetch_add(n, Relaxed);
    }
    pub fn add_sequence_gaps(&self, n: u64) {
        self.sequence_gaps.fetch_add(n, Relaxed);
    }
    pub fn add_window_scored(&self) {
        self.windows_scored.fetch_add(1, Relaxed);
    }
    pub fn add_window_dropped(&self) {
        self.windows_dropped.fetch_add(1, Relaxed);
    }
    pub fn add_window_rejected(&self) {
        self.windows_rejected.fetch_add(1, Relaxed);
    }
    pub fn add_window_baseline(&self) {
        self.windows_baseline.fetch_add(1, Relaxed);
    }
    pub fn add_model_failure(&self) {
        self.model_failures.fetch_add(1, Relaxed);
    }
    pub fn add_gaps(&self, n: u64) {
        self.gaps.fetch_add(n, Relaxed);
    }
    pub fn add_event_raised(&self) {
        self.events_raised.fetch_add(1, Relaxed);
    }
    pub fn add_event_published(&self) {
        self.events_published.fetch_add(1, Relaxed);
    }
    pub fn add_publish_failure(&self) {
        self.publish_failures.fetch_add(1, Relaxed);
    }

    pub fn snapshot(&self) -> PipelineCounters {
        PipelineCounters {
            windows_acquired: self.windows_acquired.load(Relaxed),
            frame_errors: self.frame_errors.load(Relaxed),
            sequence_gaps: self.sequence_gaps.load(Relaxed),
            windows_scored: self.windows_scored.load(Relaxed),
            windows_dropped: self.windows_dropped.load(Relaxed),
            windows_rejected: self.windows_rejected.load(Relaxed),
            windows_baseline: self.windows_baseline.load(Relaxed),
            model_failures: self.model_failures.load(Relaxed),
            gaps: self.gaps.load(Relaxed),
            events_raised: self.events_raised.load(Relaxed),
            events_published: self.events_published.load(Relaxed),
            publish_failures: self.publish_failures.load(Relaxed),
        }
    }
}

/// Latest status line of every asset, in config order.
#[derive(Debug)]
pub struct AssetBoard {
    lines: Mutex<Vec<AssetStatus>>,
}

impl AssetBoard {
    pub fn new(initial: Vec<AssetStatus>) -> Self {
        AssetBoard {
            lines: Mutex::new(initial),
        }
    }

    pub fn update(&self, index: usize, status: AssetStatus) {
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(line) = lines.get_mut(index) {
            *line = status;
        }
    }

    pub fn snapshot(&self) -> Vec<AssetStatus> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
