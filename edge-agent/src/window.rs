//! Cuts the sample stream of one asset into analysis windows.
//!
//! Features need a fixed number of consecutive samples. Blocks arrive in
//! whatever size the source likes; the windower buffers them and emits a
//! window every `hop` samples once `len` samples are available (windows
//! overlap when `hop < len`). A block that does not start where the previous
//! one ended is a **gap**: the partial window is discarded and the gap
//! counted, because a window spliced across a gap would show a spectrum the
//! machine never had.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::source::Block;

/// Largest difference between where a block starts and where the previous
/// one ended that is still taken as contiguous (timestamp jitter of a node's
/// sampling loop), unless 1.5 sample periods is more.
pub const GAP_TOLERANCE_US: f64 = 2_000.0;

/// Consecutive samples of one asset, ready for feature extraction.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Per-asset sequence number of the window.
    pub seq: u64,
    /// Time of the first sample, microseconds since the Unix epoch.
    pub start_us: u64,
    pub sample_rate_hz: f64,
    pub vibration: Vec<f32>,
    /// Temperature readings taken during the window (or, if none was, the
    /// latest one before it).
    pub temperature: Vec<f32>,
}

/// Sample buffers of windows that have been scored, for the next windows.
///
/// Windows are cut on one thread and dropped on another after scoring. With
/// dozens of channels, each thread's allocator would keep its own freed
/// windows (a tenth of a megabyte each at 25.6 kS/s); recycling them here
/// keeps only as many as are in flight at once.
static RECYCLED: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());
/// Most buffers kept for reuse.
const MAX_RECYCLED: usize = 16;

fn recycled_buffer(len: usize) -> Vec<f32> {
    let mut pool = RECYCLED.lock().unwrap_or_else(|p| p.into_inner());
    match pool
        .iter()
        .position(|b| b.capacity() >= len && b.capacity() <= 2 * len)
    {
        Some(i) => pool.swap_remove(i),
        None => Vec::with_capacity(len),
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        let mut buffer = std::mem::take(&mut self.vibration);
        if buffer.capacity() == 0 {
            return;
        }
        buffer.clear();
        let mut pool = RECYCLED.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < MAX_RECYCLED {
            pool.push(buffer);
        }
    }
}

impl Window {
    /// Time just after the last sample.
    pub fn end_us(&self) -> u64 {
        self.start_us + (self.vibration.len() as f64 * 1e6 / self.sample_rate_hz) as u64
    }
}

/// Samples waiting to complete a window.
enum Pending {
    /// Windows that overlap (hop < len): a ring the windows are copied from.
    Ring(VecDeque<f32>),
    /// Back-to-back windows (hop == len): filled in place and handed out
    /// whole, so no sample is copied twice.
    Direct(Vec<f32>),
}

impl Pending {
    fn len(&self) -> usize {
        match self {
            Pending::Ring(r) => r.len(),
            Pending::Direct(v) => v.len(),
        }
    }

    fn clear(&mut self) {
        match self {
            Pending::Ring(r) => r.clear(),
            Pending::Direct(v) => v.clear(),
        }
    }

    fn extend(&mut self, samples: &[f32]) {
        match self {
            Pending::Ring(r) => r.extend(samples),
            Pending::Direct(v) => v.extend_from_slice(samples),
        }
    }

    /// The first `len` samples as a window's buffer; then drops `hop`.
    fn take(&mut self, len: usize, hop: usize) -> Vec<f32> {
        match self {
            Pending::Ring(r) => {
                let mut v = recycled_buffer(len);
                v.extend(r.range(..len));
                r.drain(..hop);
                v
            }
            Pending::Direct(v) => std::mem::replace(v, recycled_buffer(len)),
        }
    }
}

pub struct Windower {
    len: usize,
    hop: usize,
    sample_rate_hz: f64,
    buffer: Pending,
    /// Global index of `buffer[0]`.
    buffer_start: u64,
    /// Temperature readings with the index of the sample they came with.
    readings: VecDeque<(u64, f32)>,
    /// (sample index, time) of the start of the current gap-free segment.
    anchor: Option<(u64, u64)>,
    next_seq: u64,
    gaps: u64,
}

impl Windower {
    /// `len` and `hop` in samples; `hop` is clamped to `1..=len`.
    pub fn new(len: usize, hop: usize, sample_rate_hz: f64) -> Self {
        let len = len.max(1);
        Windower {
            len,
            hop: hop.clamp(1, len),
            sample_rate_hz,
            buffer: if hop.clamp(1, len) == len {
                Pending::Direct(Vec::with_capacity(len))
            } else {
                Pending::Ring(VecDeque::with_capacity(len))
            },
            buffer_start: 0,
            readings: VecDeque::new(),
            anchor: None,
            next_seq: 0,
            gaps: 0,
        }
    }

    /// Gaps seen so far.
    pub fn gaps(&self) -> u64 {
        self.gaps
    }

    /// Time of sample `index`, from the latest anchor (the index may lie
    /// before it: a window started in an earlier block).
    fn time_of(&self, index: u64) -> u64 {
        let (anchor_index, anchor_us) = self.anchor.unwrap_or((0, 0));
        let offset = (index as i128 - anchor_index as i128) as f64 * 1e6 / self.sample_rate_hz;
        (anchor_us as f64 + offset).max(0.0) as u64
    }

    /// Adds a block and returns the windows it completes.
    pub fn push(&mut self, block: Block) -> Vec<Window> {
        self.push_samples(block.start_us, &block.vibration, &block.temperature)
    }

    /// As [`Self::push`], from borrowed samples (they are copied into the
    /// windows either way).
    pub fn push_samples(
        &mut self,
        start_us: u64,
        vibration: &[f32],
        temperature: &[f32],
    ) -> Vec<Window> {
        let next_index = self.buffer_start + self.buffer.len() as u64;
        match self.anchor {
            None => self.anchor = Some((next_index, start_us)),
            Some(_) => {
                let expected = self.time_of(next_index) as f64;
                let period = 1e6 / self.sample_rate_hz;
                let late = start_us as f64 - expected;
                if late.abs() > (1.5 * period).max(GAP_TOLERANCE_US) {
                    self.gaps += 1;
                    tracing::debug!(
                        expected_us = expected,
                        got_us = start_us,
                        "gap in sample stream; partial window discarded"
                    );
                    self.buffer_start = next_index;
                    self.buffer.clear();
                    // Readings from before the gap must not be carried into
                    // windows after it.
                    self.readings.clear();
                }
                // Follow the source's clock: a node's crystal drifts against
                // the gateway's by parts per million, which must not add up
                // to a false gap over hours.
                self.anchor = Some((next_index, start_us));
            }
        }
        let block_index = self.buffer_start + self.buffer.len() as u64;
        self.readings
            .extend(temperature.iter().map(|&t| (block_index, t)));

        // Fill the buffer only up to one window, cutting as it fills, so it
        // never holds more than a window (memory per channel matters at
        // tens of kilosamples per second).
        let mut windows = Vec::new();
        let mut rest: &[f32] = vibration;
        while !rest.is_empty() {
            let take = (self.len - self.buffer.len()).min(rest.len());
            self.buffer.extend(&rest[..take]);
            rest = &rest[take..];
            if self.buffer.len() == self.len {
                windows.push(self.cut());
                self.buffer_start += self.hop as u64;
                // Keep the latest reading before the next window for
                // carry-forward.
                while self.readings.len() > 1 && self.readings[1].0 <= self.buffer_start {
                    self.readings.pop_front();
                }
            }
        }
        windows
    }

    fn cut(&mut self) -> Window {
        let start = self.buffer_start;
        let end = start + self.len as u64;
        let mut temperature: Vec<f32> = self
            .readings
            .iter()
            .filter(|(i, _)| (start..end).contains(i))
            .map(|&(_, t)| t)
            .collect();
        if temperature.is_empty()
            && let Some(&(_, t)) = self.readings.iter().rev().find(|(i, _)| *i < start)
        {
            temperature.push(t);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        Window {
            seq,
            start_us: self.time_of(start),
            sample_rate_hz: self.sample_rate_hz,
            vibration: self.buffer.take(self.len, self.hop),
            temperature,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(start_us: u64, from: usize, n: usize, temp: Option<f32>) -> Block {
        Block {
            start_us,
            vibration: (from..from + n).map(|i| i as f32).collect(),
            temperature: temp.into_iter().collect(),
        }
    }

    #[test]
    fn emits_non_overlapping_windows_across_blocks() {
        // 10 Hz: a sample every 100 ms.
        let mut w = Windower::new(4, 4, 10.0);
        assert!(w.push(block(0, 0, 3, Some(20.0))).is_empty());
        let out = w.push(block(300_000, 3, 3, Some(21.0)));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].vibration, vec![0.0, 1.0, 2.0, 3.0]);
        assert_eq!(out[0].start_us, 0);
        assert_eq!(out[0].end_us(), 400_000);
        assert_eq!(out[0].temperature, vec![20.0, 21.0]);
        let out = w.push(block(600_000, 6, 3, None));
        assert_eq!(out[0].vibration, vec![4.0, 5.0, 6.0, 7.0]);
        assert_eq!(out[0].start_us, 400_000);
        assert_eq!(out[0].seq, 1);
        // No reading inside this window: the latest earlier one carries over.
        assert_eq!(out[0].temperature, vec![21.0]);
        assert_eq!(w.gaps(), 0);
    }

    #[test]
    fn overlapping_windows_advance_by_hop() {
        let mut w = Windower::new(4, 2, 10.0);
        let out = w.push(block(0, 0, 8, None));
        let starts: Vec<f32> = out.iter().map(|w| w.vibration[0]).collect();
        assert_eq!(starts, vec![0.0, 2.0, 4.0]);
        assert_eq!(out[2].start_us, 400_000);
    }

    #[test]
    fn a_gap_discards_the_partial_window_and_is_counted() {
        let mut w = Windower::new(4, 4, 10.0);
        assert!(w.push(block(0, 0, 3, None)).is_empty());
        // Next block starts 1 s late: samples were lost.
        let out = w.push(block(1_300_000, 100, 4, None));
        assert_eq!(w.gaps(), 1);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].vibration, vec![100.0, 101.0, 102.0, 103.0]);
        assert_eq!(out[0].start_us, 1_300_000);
    }

    #[test]
    fn a_drifting_source_clock_is_followed_but_a_lost_frame_is_a_gap() {
        // 1 kHz in blocks of 100 samples whose clock runs 50 us fast per block.
        let mut w = Windower::new(1000, 1000, 1000.0);
        let mut t = 0u64;
        let mut windows = 0;
        for b in 0..100 {
            windows += w.push(block(t, b * 100, 100, Some(20.0))).len();
            t += 100_050;
        }
        assert_eq!((w.gaps(), windows), (0, 10), "5 ms of drift is no gap");
        // A frame lost: the next block starts 100 ms late.
        w.push(block(t + 100_000, 0, 100, None));
        assert_eq!(w.gaps(), 1);
    }

    #[test]
    fn temperature_from_before_a_gap_is_not_carried_over() {
        let mut w = Windower::new(4, 4, 10.0);
        w.push(block(0, 0, 2, Some(20.0)));
        let out = w.push(block(5_000_000, 50, 4, None));
        assert_eq!(w.gaps(), 1);
        assert!(out[0].temperature.is_empty(), "{:?}", out[0].temperature);
    }
}
