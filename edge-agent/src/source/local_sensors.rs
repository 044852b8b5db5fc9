//! Sensors wired to the gateway itself: an ADXL355 on SPI and a TMP117 on
//! I2C of a Linux board, read through `linux-embedded-hal`.
//!
//! The gateway runs exactly the code a sensor node runs: the `firmware`
//! crate's drivers and its sampling loop, whose frames are decoded and
//! assembled into blocks like frames from a node link. So one sampling loop
//! (FIFO at a watermark, timestamps, overruns turned into sequence gaps) is
//! tested once and serves both ways of wiring a sensor.
//!
//! [`DriverSource`] is generic over the sensor traits and always built (the
//! tests drive it with simulated sensors); opening real devices needs the
//! `linux-hal` cargo feature.

use std::fmt::Debug;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use firmware::codec::FrameDecoder;
use firmware::sampling::{Sampler, SamplerConfig};
use firmware::sensor::{AccelFifo, Clock, FrameSink, Thermometer, channel};
use serde::Deserialize;

use super::frames::{FrameAssembler, FrameSelection};
use super::{Pacing, Source, SourceError, SourcePoll};

/// `[assets.source]` with `type = "local"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalSensorsConfig {
    #[serde(default = "default_spi")]
    pub spi: PathBuf,
    #[serde(default = "default_spi_hz")]
    pub spi_hz: u32,
    #[serde(default = "default_i2c")]
    pub i2c: PathBuf,
    /// TMP117 address, 0x48 to 0x4B.
    #[serde(default = "default_tmp117")]
    pub tmp117_address: u8,
    /// ADXL355 range: 2, 4 or 8 g.
    #[serde(default = "default_range")]
    pub range_g: u8,
    /// ADXL355 output data rate: 4000, 2000, 1000, 500, 250, 125 ... Hz.
    pub sample_rate_hz: f64,
    /// The axis analysed: x, y or z.
    #[serde(default = "default_axis")]
    pub axis: char,
}

fn default_spi() -> PathBuf {
    "/dev/spidev0.0".into()
}
fn default_spi_hz() -> u32 {
    5_000_000
}
fn default_i2c() -> PathBuf {
    "/dev/i2c-1".into()
}
fn default_tmp117() -> u8 {
    0x48
}
fn default_range() -> u8 {
    8
}
fn default_axis() -> char {
    'z'
}

impl LocalSensorsConfig {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if !matches!(self.range_g, 2 | 4 | 8) {
            return Err(format!(
                "source.range_g = {} must be 2, 4 or 8",
                self.range_g
            ));
        }
        if !(0x48..=0x4B).contains(&self.tmp117_address) {
            return Err(format!(
                "source.tmp117_address = {:#x} must be 0x48 to 0x4B",
                self.tmp117_address
            ));
        }
        self.axis_channel()?;
        if !ADXL355_RATES_HZ.contains(&self.sample_rate_hz) {
            return Err(format!(
                "source.sample_rate_hz = {} is not an ADXL355 output data rate {ADXL355_RATES_HZ:?}",
                self.sample_rate_hz
            ));
        }
        Ok(())
    }

    fn axis_channel(&self) -> Result<u8, String> {
        match self.axis {
            'x' => Ok(channel::ACCEL_X),
            'y' => Ok(channel::ACCEL_Y),
            'z' => Ok(channel::ACCEL_Z),
            other => Err(format!("source.axis = `{other}` must be x, y or z")),
        }
    }
}

/// ADXL355 output data rates, Hz.
pub const ADXL355_RATES_HZ: [f64; 9] = [
    4000.0, 2000.0, 1000.0, 500.0, 250.0, 125.0, 62.5, 31.25, 15.625,
];

/// Node id the gateway's own sampling loop uses in its frames.
const LOCAL_NODE: u16 = 0;

/// Microseconds since the source started, from the monotonic clock.
pub struct MonotonicClock(Instant);

impl Clock for MonotonicClock {
    fn now_us(&mut self) -> u64 {
        self.0.elapsed().as_micros() as u64
    }
}

/// Collects the sampling loop's encoded frames.
#[derive(Default)]
struct Collected(Vec<u8>);

impl FrameSink for Collected {
    type Error = std::convert::Infallible;
    fn send(&mut self, bytes: &[u8]) -> Result<(), Self::Error> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

/// A source reading sensors through the firmware's sampling loop.
pub struct DriverSource<A: AccelFifo, T: Thermometer> {
    sampler: Sampler<A, T, MonotonicClock>,
    collected: Collected,
    decoder: FrameDecoder,
    frames: FrameAssembler,
    sample_rate_hz: f64,
    /// How long a poll sleeps when the FIFO has not reached its watermark.
    idle_sleep: Duration,
    errors: u64,
}

impl<A, T> DriverSource<A, T>
where
    A: AccelFifo,
    T: Thermometer,
{
    /// Samples `accel` and `thermo`; `axis` is the analysed channel id.
    pub fn new(accel: A, thermo: T, axis: u8, watermark_sets: usize) -> Result<Self, SourceError> {
        let sample_rate_hz = accel.sample_rate_mhz() as f64 / 1000.0;
        let config = SamplerConfig {
            node_id: LOCAL_NODE,
            samples_per_frame: 128,
            fifo_watermark_sets: watermark_sets,
            temperature_period_us: 250_000,
        };
        let sampler =
            Sampler::new(accel, thermo, MonotonicClock(Instant::now()), config).map_err(|e| {
                SourceError::Recording {
                    path: "local sensors".into(),
                    message: format!("sampling loop: {e}"),
                }
            })?;
        Ok(DriverSource {
            sampler,
            collected: Collected::default(),
            decoder: FrameDecoder::new(),
            frames: FrameAssembler::new(FrameSelection {
                node_id: LOCAL_NODE,
                vibration_channel_id: axis,
                temperature_channel_id: channel::TEMPERATURE,
                sample_rate_hz,
            }),
            sample_rate_hz,
            // Half the time the FIFO takes to fill to its watermark.
            idle_sleep: Duration::from_secs_f64(0.5 * watermark_sets as f64 / sample_rate_hz),
            errors: 0,
        })
    }
}

impl<A, T> Source for DriverSource<A, T>
where
    A: AccelFifo + Send,
    T: Thermometer + Send,
    A::Error: Debug,
    T::Error: Debug,
{
    fn sample_rate_hz(&self) -> f64 {
        self.sample_rate_hz
    }

    fn pacing(&self) -> Pacing {
        Pacing::Live {
            speed: f64::INFINITY,
        }
    }

    fn frame_errors(&self) -> u64 {
        self.errors + self.frames.counters.frame_errors
    }

    fn sequence_gaps(&self) -> u64 {
        self.frames.counters.sequence_gaps
    }

    fn poll(&mut self) -> Result<SourcePoll, SourceError> {
        if let Some(block) = self.frames.next_block() {
            return Ok(SourcePoll::Block(block));
        }
        if let Err(e) = self.sampler.poll(&mut self.collected) {
            // A bus error is not the end: count it, try again next poll.
            self.errors += 1;
            tracing::warn!("reading the local sensors failed: {e:?}");
        }
        let bytes = std::mem::take(&mut self.collected.0);
        for result in self.decoder.feed(&bytes) {
            match result {
                Ok(frame) => self.frames.accept(frame),
                Err(_) => self.frames.damaged(),
            }
        }
        match self.frames.next_block() {
            Some(block) => Ok(SourcePoll::Block(block)),
            None => {
                std::thread::sleep(self.idle_sleep);
                Ok(SourcePoll::Idle)
            }
        }
    }
}

/// Opens the sensors of a Linux gateway.
#[cfg(feature = "linux-hal")]
pub fn open(config: &LocalSensorsConfig) -> Result<Box<dyn Source>, SourceError> {
    use firmware::adxl355::{self, Adxl355};
    use firmware::tmp117::{self, Tmp117};
    use linux_embedded_hal::spidev::{SpiModeFlags, SpidevOptions};
    use linux_embedded_hal::{I2cdev, SpidevDevice};

    let fail = |what: &std::path::Path, message: String| SourceError::Recording {
        path: what.display().to_string(),
        message,
    };
    let mut spi = SpidevDevice::open(&config.spi).map_err(|e| fail(&config.spi, e.to_string()))?;
    spi.configure(
        &SpidevOptions::new()
            .bits_per_word(8)
            .max_speed_hz(config.spi_hz)
            .mode(SpiModeFlags::SPI_MODE_0)
            .build(),
    )
    .map_err(|e| fail(&config.spi, e.to_string()))?;
    let i2c = I2cdev::new(&config.i2c).map_err(|e| fail(&config.i2c, e.to_string()))?;
    let odr = match config.sample_rate_hz as u32 {
        4000 => adxl355::OutputDataRate::Hz4000,
        2000 => adxl355::OutputDataRate::Hz2000,
        1000 => adxl355::OutputDataRate::Hz1000,
        500 => adxl355::OutputDataRate::Hz500,
        250 => adxl355::OutputDataRate::Hz250,
        125 => adxl355::OutputDataRate::Hz125,
        62 => adxl355::OutputDataRate::Hz62_5,
        31 => adxl355::OutputDataRate::Hz31_25,
        _ => adxl355::OutputDataRate::Hz15_625,
    };
    let range = match config.range_g {
        2 => adxl355::Range::G2,
        4 => adxl355::Range::G4,
        _ => adxl355::Range::G8,
    };
    let watermark = 16;
    let accel = Adxl355::new(
        spi,
        adxl355::Config {
            range,
            odr,
            hpf: adxl355::HighPassCorner::Off,
            fifo_watermark_sets: watermark,
        },
    )
    .map_err(|e| fail(&config.spi, format!("ADXL355: {e:?}")))?;
    let address = match config.tmp117_address {
        0x49 => tmp117::Address::Vplus,
        0x4A => tmp117::Address::Sda,
        0x4B => tmp117::Address::Scl,
        _ => tmp117::Address::Gnd,
    };
    let mut thermo =
        Tmp117::new(i2c, address).map_err(|e| fail(&config.i2c, format!("TMP117: {e:?}")))?;
    thermo
        .set_config(
            tmp117::ConversionMode::Continuous,
            tmp117::ConversionCycle::Ms125,
            tmp117::Averaging::Of8,
        )
        .map_err(|e| fail(&config.i2c, format!("TMP117: {e:?}")))?;
    let axis = config.axis_channel().map_err(|e| fail(&config.spi, e))?;
    Ok(Box::new(DriverSource::new(
        accel,
        thermo,
        axis,
        watermark as usize,
    )?))
}

/// Without the `linux-hal` feature, local sensors cannot be opened.
#[cfg(not(feature = "linux-hal"))]
pub fn open(config: &LocalSensorsConfig) -> Result<Box<dyn Source>, SourceError> {
    Err(SourceError::Recording {
        path: config.spi.display().to_string(),
        message: "this edge-agent was built without local sensor support; rebuild with `--features linux-hal`".into(),
    })
}

#[cfg(test)]
#[path = "local_sensors_tests.rs"]
mod tests;
