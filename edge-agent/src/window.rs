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

use crate::source::Block;

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

impl Window {
    /// Time just after the last sample.
    pub fn end_us(&self) -> u64 {
        self.start_us + (self.vibration.len() as f64 * 1e6 / self.sample_rate_hz) as u64
    }
}

pub struct Windower {
    len: usize,
    hop: usize,
    sample_rate_hz: f64,
    buffer: VecDeque<f32>,
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
            buffer: VecDeque::with_capacity(2 * len),
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

    fn time_of(&self, index: u64) -> u64 {
        let (anchor_index, anchor_us) = self.anchor.unwrap_or((0, 0));
        anchor_us + ((index - anchor_index) as f64 * 1e6 / self.sample_rate_hz) as u64
    }

    /// Adds a block and returns the windows it completes.
    pub fn push(&mut self, block: Block) -> Vec<Window> {
        let next_index = self.buffer_start + self.buffer.len() as u64;
        match self.anchor {
            None => self.anchor = Some((next_index, block.start_us)),
            Some(_) => {
                let expected = self.time_of(next_index) as f64;
                let period = 1e6 / self.sample_rate_hz;
                if (block.start_us as f64 - expected).abs() > 1.5 * period {
                    self.gaps += 1;
                    tracing::debug!(
                        expected_us = expected,
                        got_us = block.start_us,
                        "gap in sample stream; partial window discarded"
                    );
                    self.buffer_start = next_index;
                    self.buffer.clear();
                    // Readings from before the gap must not be carried into
                    // windows after it.
                    self.readings.clear();
                    self.anchor = Some((next_index, block.start_us));
                }
            }
        }
        let block_index = self.buffer_start + self.buffer.len() as u64;
        self.readings
            .extend(block.temperature.iter().map(|&t| (block_index, t)));
        self.buffer.extend(block.vibration);

        let mut windows = Vec::new();
        while self.buffer.len() >= self.len {
            windows.push(self.cut());
            self.buffer.drain(..self.hop);
            self.buffer_start += self.hop as u64;
            // Keep the latest reading before the next window for carry-forward.
            while self.readings.len() > 1 && self.readings[1].0 <= self.buffer_start {
                self.readings.pop_front();
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
            vibration: self.buffer.range(..self.len).copied().collect(),
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
    fn temperature_from_before_a_gap_is_not_carried_over() {
        let mut w = Windower::new(4, 4, 10.0);
        w.push(block(0, 0, 2, Some(20.0)));
        let out = w.push(block(5_000_000, 50, 4, None));
        assert_eq!(w.gaps(), 1);
        assert!(out[0].temperature.is_empty(), "{:?}", out[0].temperature);
    }
}
