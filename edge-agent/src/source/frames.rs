//! Frames of a sensor node turned into the blocks of one asset.
//!
//! Shared by every source fed with node frames (a node link over serial or
//! TCP, sensors read by the gateway itself through the same sampling loop):
//!
//! - frames of other nodes and channels are ignored;
//! - counts become physical units with the frame's scale;
//! - the node clock is mapped onto the gateway clock by an offset fixed at
//!   the first frame after a [`FrameAssembler::restart`], so samples keep the
//!   node's exact spacing;
//! - a jump in the vibration channel's sequence numbers is a gap (frames
//!   lost on the way or samples lost on the node): it is counted, and the
//!   block after it carries the node's timestamp, so the windower discards
//!   the partial window instead of splicing across it;
//! - temperature readings ride with the next vibration block.

use std::collections::VecDeque;

use firmware::{ChannelKind, SampleFrame};

use super::{Block, now_us};

/// Counters of a node's frames.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LinkCounters {
    pub frames: u64,
    pub frame_errors: u64,
    pub sequence_gaps: u64,
    pub reconnects: u64,
}

/// Which frames make an asset's blocks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameSelection {
    pub node_id: u16,
    pub vibration_channel_id: u8,
    pub temperature_channel_id: u8,
    /// The rate the asset's features are planned for; frames at another
    /// rate are refused.
    pub sample_rate_hz: f64,
}

pub struct FrameAssembler {
    selection: FrameSelection,
    offset_us: Option<i128>,
    next_sequence: Option<u32>,
    temperature: Vec<f32>,
    ready: VecDeque<Block>,
    pub counters: LinkCounters,
}

impl FrameAssembler {
    pub fn new(selection: FrameSelection) -> Self {
        FrameAssembler {
            selection,
            offset_us: None,
            next_sequence: None,
            temperature: Vec::new(),
            ready: VecDeque::new(),
            counters: LinkCounters::default(),
        }
    }

    /// A new connection (maybe a rebooted node): new clock offset, and the
    /// next sequence number is not compared with the old ones.
    pub fn restart(&mut self) {
        self.offset_us = None;
        self.next_sequence = None;
    }

    /// Counts a frame that could not be decoded.
    pub fn damaged(&mut self) {
        self.counters.frame_errors += 1;
    }

    /// The oldest block not yet taken.
    pub fn next_block(&mut self) -> Option<Block> {
        self.ready.pop_front()
    }

    /// Takes in one decoded frame.
    pub fn accept(&mut self, frame: SampleFrame) {
        let h = *frame.header();
        let s = self.selection;
        if h.node_id != s.node_id {
            return;
        }
        self.counters.frames += 1;
        let scale = h.scale as f64;
        if h.channel_id == s.temperature_channel_id && h.channel_kind == ChannelKind::Temperature {
            self.temperature
                .extend(frame.samples().iter().map(|&c| (c as f64 * scale) as f32));
            return;
        }
        if h.channel_id != s.vibration_channel_id || h.channel_kind != ChannelKind::Acceleration {
            return;
        }
        let rate_hz = h.sample_rate_mhz as f64 / 1000.0;
        if (rate_hz - s.sample_rate_hz).abs() > 1e-3 * s.sample_rate_hz {
            self.counters.frame_errors += 1;
            tracing::warn!(
                node = s.node_id,
                "frame at {rate_hz} Hz refused: the asset is configured for {} Hz",
                s.sample_rate_hz
            );
            return;
        }
        if let Some(expected) = self.next_sequence
            && h.sequence != expected
        {
            self.counters.sequence_gaps += 1;
            tracing::debug!(expected, got = h.sequence, "sequence gap in node frames");
        }
        self.next_sequence = Some(h.sequence.wrapping_add(1));
        let offset = *self
            .offset_us
            .get_or_insert(now_us() as i128 - h.timestamp_us as i128);
        self.ready.push_back(Block {
            start_us: (h.timestamp_us as i128 + offset).max(0) as u64,
            vibration: frame
                .samples()
                .iter()
                .map(|&c| (c as f64 * scale) as f32)
                .collect(),
            temperature: std::mem::take(&mut self.temperature),
        });
    }
}
