//! The unit of data a sensor node sends: one channel's consecutive samples.
//!
//! A frame carries enough to be placed on the gateway's timeline without any
//! other context: which node and channel, a per-channel sequence number (so
//! the gateway can count lost frames instead of bridging gaps), the sample
//! rate and the timestamp of the first sample. Samples are raw sensor counts
//! (signed, at most 24 bits: enough for the 20-bit ADXL355 and the 16-bit
//! TMP117) and the header carries the scale (units per count), so the node
//! never converts and the gateway needs no knowledge of the sensor's range.

use heapless::Vec;

/// Most samples in one frame: 256 samples of a 4 kHz accelerometer are 64 ms,
/// small enough for a node's RAM and a UART's latency budget.
pub const MAX_SAMPLES_PER_FRAME: usize = 256;
/// Largest magnitude a sample may have (signed 24-bit).
pub const SAMPLE_MAX: i32 = (1 << 23) - 1;
/// Smallest value a sample may have (signed 24-bit).
pub const SAMPLE_MIN: i32 = -(1 << 23);

/// What a channel measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ChannelKind {
    /// One accelerometer axis; counts scale to g.
    Acceleration = 1,
    /// Temperature; counts scale to degrees Celsius.
    Temperature = 2,
}

impl ChannelKind {
    /// Parses the wire value of a channel kind.
    pub fn from_u8(value: u8) -> Option<Self> {
        match value {
            1 => Some(ChannelKind::Acceleration),
            2 => Some(ChannelKind::Temperature),
            _ => None,
        }
    }
}

/// Everything in a frame except the samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameHeader {
    pub node_id: u16,
    pub channel_id: u8,
    pub channel_kind: ChannelKind,
    /// Increments by one per frame of this channel, wrapping at `u32::MAX`.
    pub sequence: u32,
    /// Sample rate in millihertz, so that 0.5 Hz temperature is exact.
    pub sample_rate_mhz: u32,
    /// Node clock at the first sample, in microseconds.
    pub timestamp_us: u64,
    /// Physical units per count: g for acceleration, degrees C for
    /// temperature.
    pub scale: f32,
}

/// Why a frame could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// More than [`MAX_SAMPLES_PER_FRAME`] samples.
    TooManySamples,
    /// A sample rate of zero cannot be placed on a timeline.
    ZeroSampleRate,
    /// A sample outside the signed 24-bit range.
    SampleOutOfRange,
    /// A scale that is zero, negative or not finite.
    BadScale,
}

/// One channel's consecutive samples.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleFrame {
    header: FrameHeader,
    samples: Vec<i32, MAX_SAMPLES_PER_FRAME>,
}

impl SampleFrame {
    /// Builds a frame; refuses an empty rate or too many samples.
    pub fn new(header: FrameHeader, samples: &[i32]) -> Result<Self, FrameError> {
        if header.sample_rate_mhz == 0 {
            return Err(FrameError::ZeroSampleRate);
        }
        if !(header.scale.is_finite() && header.scale > 0.0) {
            return Err(FrameError::BadScale);
        }
        if samples
            .iter()
            .any(|s| !(SAMPLE_MIN..=SAMPLE_MAX).contains(s))
        {
            return Err(FrameError::SampleOutOfRange);
        }
        let samples = Vec::from_slice(samples).map_err(|_| FrameError::TooManySamples)?;
        Ok(SampleFrame { header, samples })
    }

    /// The header, as validated by [`SampleFrame::new`].
    pub fn header(&self) -> &FrameHeader {
        &self.header
    }

    pub fn samples(&self) -> &[i32] {
        &self.samples
    }

    /// Sequence number the next frame of this channel must carry.
    pub fn next_sequence(&self) -> u32 {
        self.header.sequence.wrapping_add(1)
    }

    /// Node time just after the last sample, in microseconds.
    pub fn end_timestamp_us(&self) -> u64 {
        let n = self.samples.len() as u64;
        self.header.timestamp_us + n * 1_000_000_000 / u64::from(self.header.sample_rate_mhz)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> FrameHeader {
        FrameHeader {
            node_id: 7,
            channel_id: 0,
            channel_kind: ChannelKind::Acceleration,
            sequence: u32::MAX,
            sample_rate_mhz: 4_000_000,
            timestamp_us: 1_000,
            scale: 3.9e-6,
        }
    }

    #[test]
    fn frame_holds_its_samples_and_places_them_in_time() {
        let f = SampleFrame::new(header(), &[1, -2, 3, 4]).unwrap();
        assert_eq!(f.samples(), &[1, -2, 3, 4]);
        // 4 samples at 4 kHz last 1 ms.
        assert_eq!(f.end_timestamp_us(), 2_000);
        // The sequence wraps instead of overflowing.
        assert_eq!(f.next_sequence(), 0);
    }

    #[test]
    fn frame_refuses_what_it_cannot_carry() {
        let too_many = [0i32; MAX_SAMPLES_PER_FRAME + 1];
        assert_eq!(
            SampleFrame::new(header(), &too_many),
            Err(FrameError::TooManySamples)
        );
        let mut h = header();
        h.sample_rate_mhz = 0;
        assert_eq!(SampleFrame::new(h, &[1]), Err(FrameError::ZeroSampleRate));
        let mut h = header();
        h.scale = 0.0;
        assert_eq!(SampleFrame::new(h, &[1]), Err(FrameError::BadScale));
        assert_eq!(
            SampleFrame::new(header(), &[SAMPLE_MAX + 1]),
            Err(FrameError::SampleOutOfRange)
        );
        assert!(SampleFrame::new(header(), &[SAMPLE_MIN, SAMPLE_MAX]).is_ok());
    }

    #[test]
    fn channel_kind_wire_values_round_trip() {
        for k in [ChannelKind::Acceleration, ChannelKind::Temperature] {
            assert_eq!(ChannelKind::from_u8(k as u8), Some(k));
        }
        assert_eq!(ChannelKind::from_u8(0), None);
    }
}
