//! The sensor node's loop: drain the accelerometer FIFO, cut per-axis frames,
//! read the thermometer on a schedule, and send everything through the codec.
//!
//! It is plain logic over the [`crate::sensor`] traits, with no MCU HAL, so
//! that the hard parts are tested on the host against fakes. Those parts, and
//! why they are done this way:
//!
//! - **Never splice.** The gateway computes spectra over consecutive frames;
//!   two stretches of signal glued together look like a transient and can
//!   raise a false alarm. So whenever samples may have been lost (a FIFO
//!   overrun, a failed FIFO read that may have popped data, or an overrun
//!   flag that could not be read), the partial per-axis buffers are dropped
//!   and each acceleration channel skips one sequence number: the gateway
//!   sees a gap and restarts its window instead of bridging it. When in
//!   doubt, the sampler assumes loss. This relies on the FIFO dropping its
//!   oldest sets when it overflows (as the ADXL355 does): what it holds when
//!   the overrun is seen is then newer than the loss, and the partial
//!   buffers are older, so only the buffers need dropping.
//! - **Timestamps from the clock, corrected for waiting.** A frame's first
//!   sample is stamped `read time - sets waiting * sample period`: the sets
//!   sat in the FIFO for that long, so however late the loop gets to them,
//!   the timestamp does not move with the read latency. Each frame is
//!   anchored to the clock anew, so the accelerometer's oscillator and the
//!   MCU's clock cannot drift apart over hours; the price is a jitter below
//!   one sample period at frame boundaries.
//! - **Reads stop at frame boundaries.** A FIFO read never takes more sets
//!   than the current frame has room for, and full frames are sent before
//!   reading more. So a failing sink leaves no samples read but unbuffered:
//!   the unsent frames stay and are retried on the next [`Sampler::poll`]
//!   (before a `0x00`, so a receiver drops any half-sent copy), and the FIFO
//!   holds the rest until it overruns, which the first point handles.
//! - **Errors are returned, never panics**, and the state after an error is
//!   one that a plain retry of `poll` continues correctly.

use core::fmt;

use heapless::Vec;

use crate::codec::{self, CodecError, MAX_ENCODED_LEN};
use crate::frame::{ChannelKind, FrameError, FrameHeader, MAX_SAMPLES_PER_FRAME, SampleFrame};
use crate::sensor::{AccelFifo, Clock, FrameSink, Thermometer, channel};

/// Channel ids of the X, Y and Z axes, in FIFO order.
const ACCEL_CHANNELS: [u8; 3] = [channel::ACCEL_X, channel::ACCEL_Y, channel::ACCEL_Z];
/// Sets read per FIFO access: the ADXL355 FIFO holds 32 sets, and 32 sets
/// are 384 bytes of stack.
const READ_CHUNK_SETS: usize = 32;
/// Longest temperature period: beyond it the rate rounds to 0 mHz.
const MAX_TEMPERATURE_PERIOD_US: u64 = 1_000_000_000;

/// How the node samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SamplerConfig {
    /// Node id written into every frame.
    pub node_id: u16,
    /// Samples per acceleration frame, `1..=MAX_SAMPLES_PER_FRAME`.
    pub samples_per_frame: usize,
    /// Sets that must wait in the FIFO before it is drained (at least 1;
    /// at most what the FIFO holds, or it will overrun before draining).
    pub fifo_watermark_sets: usize,
    /// Microseconds between temperature readings, `1..=1_000_000_000`.
    pub temperature_period_us: u64,
}

impl SamplerConfig {
    /// Checks the ranges documented on the fields.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=MAX_SAMPLES_PER_FRAME).contains(&self.samples_per_frame) {
            return Err(ConfigError::SamplesPerFrame);
        }
        if self.fifo_watermark_sets == 0 {
            return Err(ConfigError::FifoWatermark);
        }
        if !(1..=MAX_TEMPERATURE_PERIOD_US).contains(&self.temperature_period_us) {
            return Err(ConfigError::TemperaturePeriod);
        }
        Ok(())
    }

    /// Temperature sample rate in millihertz.
    fn temperature_rate_mhz(&self) -> u32 {
        // validate() bounds the period to 1..=1e9 µs, so this is 1..=1e9.
        (1_000_000_000 / self.temperature_period_us) as u32
    }
}

/// A [`SamplerConfig`] field out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    SamplesPerFrame,
    FifoWatermark,
    TemperaturePeriod,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::SamplesPerFrame => write!(
                f,
                "samples_per_frame must be between 1 and {MAX_SAMPLES_PER_FRAME}"
            ),
            ConfigError::FifoWatermark => f.write_str("fifo_watermark_sets must be at least 1"),
            ConfigError::TemperaturePeriod => write!(
                f,
                "temperature_period_us must be between 1 and {MAX_TEMPERATURE_PERIOD_US}"
            ),
        }
    }
}

/// What one [`Sampler::poll`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollReport {
    /// Frames handed to the sink (acceleration and temperature).
    pub frames_sent: usize,
    /// X/Y/Z sets read from the FIFO.
    pub sets_read: usize,
    /// Whether a FIFO overrun was found (and a sequence gap made).
    pub overrun: bool,
}

/// Why a poll stopped early. The sampler stays usable: poll again to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SamplerError<AE, TE, SE> {
    /// The accelerometer failed.
    Accel(AE),
    /// The thermometer failed.
    Thermometer(TE),
    /// The sink failed; the unsent frame is kept and retried.
    Sink(SE),
    /// A sensor reported values no frame can carry (zero rate, bad scale,
    /// sample out of range); the affected data was dropped.
    Frame(FrameError),
    /// The codec refused the frame (cannot happen with valid frames).
    Codec(CodecError),
}

impl<AE: fmt::Debug, TE: fmt::Debug, SE: fmt::Debug> fmt::Display for SamplerError<AE, TE, SE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SamplerError::Accel(e) => write!(f, "accelerometer error: {e:?}"),
            SamplerError::Thermometer(e) => write!(f, "thermometer error: {e:?}"),
            SamplerError::Sink(e) => write!(f, "frame sink error: {e:?}"),
            SamplerError::Frame(e) => write!(f, "sensor data cannot form a frame: {e:?}"),
            SamplerError::Codec(e) => write!(f, "cannot encode frame: {e}"),
        }
    }
}

/// Why one frame was not sent.
enum SendError<SE> {
    /// The frame can never be sent; drop it.
    Unsendable(FrameError),
    Codec(CodecError),
    /// The sink failed; the same frame may be sent again.
    Sink(SE),
}

impl<SE> SendError<SE> {
    fn lift<AE, TE>(self) -> SamplerError<AE, TE, SE> {
        match self {
            SendError::Unsendable(e) => SamplerError::Frame(e),
            SendError::Codec(e) => SamplerError::Codec(e),
            SendError::Sink(e) => SamplerError::Sink(e),
        }
    }
}

/// Builds, encodes and sends one frame. After a sink failure the next frame
/// is preceded by `0x00`, ending whatever part of the failed one went out.
fn send_frame<S: FrameSink>(
    header: FrameHeader,
    samples: &[i32],
    sink: &mut S,
    resync: &mut bool,
) -> Result<(), SendError<S::Error>> {
    let frame = SampleFrame::new(header, samples).map_err(SendError::Unsendable)?;
    let mut buf = [0u8; MAX_ENCODED_LEN + 1];
    let n = codec::encode(&frame, &mut buf[1..]).map_err(SendError::Codec)?;
    let bytes = if *resync { &buf[..=n] } else { &buf[1..=n] };
    match sink.send(bytes) {
        Ok(()) => {
            *resync = false;
            Ok(())
        }
        Err(e) => {
            *resync = true;
            Err(SendError::Sink(e))
        }
    }
}

/// Microseconds taken by `sets` samples at `rate_mhz` (non-zero).
fn duration_us(sets: usize, rate_mhz: u32) -> u64 {
    (sets as u64).saturating_mul(1_000_000_000) / u64::from(rate_mhz)
}

/// One acceleration channel's frame in the making.
#[derive(Debug)]
struct Axis {
    samples: Vec<i32, MAX_SAMPLES_PER_FRAME>,
    /// Timestamp of `samples[0]`.
    start_us: u64,
    /// Sequence number of the frame being built.
    sequence: u32,
}

/// The node's sampling loop over an accelerometer FIFO, a thermometer and a
/// clock; call [`Sampler::poll`] often enough that the FIFO never fills.
pub struct Sampler<A: AccelFifo, T: Thermometer, C: Clock> {
    accel: A,
    thermo: T,
    clock: C,
    config: SamplerConfig,
    /// X, Y, Z. All hold the same number of samples whenever the FIFO is
    /// read (a failed send may leave some full and some empty until retried).
    axes: [Axis; 3],
    temperature_sequence: u32,
    /// When the next temperature reading is due; `None` until the first poll.
    next_temperature_us: Option<u64>,
    /// A send failed: precede the next frame with `0x00`.
    resync: bool,
}

/// What [`Sampler::poll`] returns: `Result<PollReport, SamplerError<A::Error,
/// T::Error, S::Error>>`, spelled with the error types of the hardware in use.
pub type PollResult<A, T, S> = Result<
    PollReport,
    SamplerError<<A as AccelFifo>::Error, <T as Thermometer>::Error, <S as FrameSink>::Error>,
>;

/// What an internal step of a poll returns.
type StepResult<A, T, S> = Result<
    (),
    SamplerError<<A as AccelFifo>::Error, <T as Thermometer>::Error, <S as FrameSink>::Error>,
>;

impl<A: AccelFifo, T: Thermometer, C: Clock> Sampler<A, T, C> {
    /// Takes the hardware and a configuration, which must pass
    /// [`SamplerConfig::validate`].
    pub fn new(accel: A, thermo: T, clock: C, config: SamplerConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let axis = || Axis {
            samples: Vec::new(),
            start_us: 0,
            sequence: 0,
        };
        Ok(Sampler {
            accel,
            thermo,
            clock,
            config,
            axes: [axis(), axis(), axis()],
            temperature_sequence: 0,
            next_temperature_us: None,
            resync: false,
        })
    }

    pub fn config(&self) -> &SamplerConfig {
        &self.config
    }

    /// Gives the hardware back.
    pub fn destroy(self) -> (A, T, C) {
        (self.accel, self.thermo, self.clock)
    }

    /// Does whatever is due: handles an overrun, retries unsent frames,
    /// drains the FIFO if it reached the watermark (sending each full frame)
    /// and reads the thermometer if its period elapsed.
    pub fn poll<S: FrameSink>(&mut self, sink: &mut S) -> PollResult<A, T, S> {
        let mut report = PollReport::default();
        let rate = self.accel.sample_rate_mhz();
        let scale = self.accel.g_per_count();
        // Checked before touching the FIFO, so a bad setting loses nothing
        // (and a zero rate never reaches a division).
        if rate == 0 {
            return Err(SamplerError::Frame(FrameError::ZeroSampleRate));
        }
        if !(scale.is_finite() && scale > 0.0) {
            return Err(SamplerError::Frame(FrameError::BadScale));
        }
        match self.accel.take_overrun() {
            Ok(false) => {}
            Ok(true) => {
                self.break_accel_stream();
                report.overrun = true;
            }
            Err(e) => {
                // The flag may have been cleared unread: assume the worst.
                self.break_accel_stream();
                return Err(SamplerError::Accel(e));
            }
        }
        self.send_full_axes(sink, rate, scale, &mut report)?;
        let waiting = self.accel.fifo_sets().map_err(SamplerError::Accel)?;
        if waiting >= self.config.fifo_watermark_sets {
            let read_at = self.clock.now_us();
            self.drain(sink, waiting, read_at, rate, scale, &mut report)?;
        }
        self.poll_temperature(sink, &mut report)?;
        Ok(report)
    }

    /// Drops the partial frames and skips a sequence number on each axis,
    /// so the gateway sees a gap where samples may be missing.
    fn break_accel_stream(&mut self) {
        for axis in &mut self.axes {
            axis.samples.clear();
            axis.sequence = axis.sequence.wrapping_add(1);
        }
    }

    /// Reads the `waiting` sets counted at `read_at`, never past a frame
    /// boundary, sending each frame as it fills.
    fn drain<S: FrameSink>(
        &mut self,
        sink: &mut S,
        waiting: usize,
        read_at: u64,
        rate: u32,
        scale: f32,
        report: &mut PollReport,
    ) -> StepResult<A, T, S> {
        let mut sets = [[0i32; 3]; READ_CHUNK_SETS];
        let mut done = 0;
        while done < waiting {
            let room = self.config.samples_per_frame - self.axes[0].samples.len();
            let want = (waiting - done).min(room).min(READ_CHUNK_SETS);
            let got = match self.accel.read_fifo(&mut sets[..want]) {
                Ok(n) => n.min(want),
                Err(e) => {
                    // A failed burst read may have popped sets: assume so.
                    self.break_accel_stream();
                    return Err(SamplerError::Accel(e));
                }
            };
            if got == 0 {
                break;
            }
            if self.axes[0].samples.is_empty() {
                // Set `done` has waited behind `waiting - done` sets.
                let start = read_at.saturating_sub(duration_us(waiting - done, rate));
                for axis in &mut self.axes {
                    axis.start_us = start;
                }
            }
            for set in &sets[..got] {
                for (axis, &value) in self.axes.iter_mut().zip(set) {
                    // `want <= room` keeps every buffer within capacity.
                    let pushed = axis.samples.push(value);
                    debug_assert!(pushed.is_ok());
                }
            }
            done += got;
            report.sets_read += got;
            self.send_full_axes(sink, rate, scale, report)?;
        }
        Ok(())
    }

    /// Sends every full axis buffer, X first. A frame the sink refused is
    /// kept for the next poll; one that can never be sent is dropped with
    /// its sequence number (a gap, like any loss).
    fn send_full_axes<S: FrameSink>(
        &mut self,
        sink: &mut S,
        rate: u32,
        scale: f32,
        report: &mut PollReport,
    ) -> StepResult<A, T, S> {
        for (axis, &channel_id) in self.axes.iter_mut().zip(&ACCEL_CHANNELS) {
            if axis.samples.len() < self.config.samples_per_frame {
                continue;
            }
            let header = FrameHeader {
                node_id: self.config.node_id,
                channel_id,
                channel_kind: ChannelKind::Acceleration,
                sequence: axis.sequence,
                sample_rate_mhz: rate,
                timestamp_us: axis.start_us,
                scale,
            };
            let sent = send_frame(header, &axis.samples, sink, &mut self.resync);
            if !matches!(sent, Err(SendError::Sink(_))) {
                axis.samples.clear();
                axis.sequence = axis.sequence.wrapping_add(1);
            }
            sent.map_err(SendError::lift)?;
            report.frames_sent += 1;
        }
        Ok(())
    }

    /// Reads and sends the temperature if its period has elapsed. A reading
    /// the thermometer or the sink failed on stays due, so the next poll
    /// retries it.
    fn poll_temperature<S: FrameSink>(
        &mut self,
        sink: &mut S,
        report: &mut PollReport,
    ) -> StepResult<A, T, S> {
        let now = self.clock.now_us();
        let due = *self.next_temperature_us.get_or_insert(now);
        if now < due {
            return Ok(());
        }
        let counts = self
            .thermo
            .read_counts()
            .map_err(SamplerError::Thermometer)?;
        let header = FrameHeader {
            node_id: self.config.node_id,
            channel_id: channel::TEMPERATURE,
            channel_kind: ChannelKind::Temperature,
            sequence: self.temperature_sequence,
            sample_rate_mhz: self.config.temperature_rate_mhz(),
            timestamp_us: now,
            scale: self.thermo.celsius_per_count(),
        };
        let sent = send_frame(header, &[counts], sink, &mut self.resync);
        if !matches!(sent, Err(SendError::Sink(_))) {
            self.temperature_sequence = self.temperature_sequence.wrapping_add(1);
            // Keep the phase; after a stall longer than a period, restart
            // it from now rather than sending a burst of catch-up readings.
            let period = self.config.temperature_period_us;
            let next = due.saturating_add(period);
            self.next_temperature_us = Some(if next <= now {
                now.saturating_add(period)
            } else {
                next
            });
        }
        sent.map_err(SendError::lift)?;
        report.frames_sent += 1;
        Ok(())
    }
}

#[cfg(test)]
#[path = "sampling_tests.rs"]
mod tests;
