//! A simulated ADXL355 and TMP117, fed by a simulator, behind the firmware's
//! sensor traits.
//!
//! They let the node's real sampling loop run without hardware: in
//! `edge-agent node-sim` (a sensor node on a TCP port, for trying the node
//! link and for system tests) and in the tests of [`super::DriverSource`].
//! The accelerometer's FIFO fills with the simulator's samples at the
//! output data rate as the wall clock advances (optionally faster), holds
//! as many sets as asked (32 like the real part, or more for a simulated node
//! on a busy host), and reports an overrun when it is not read in time.
//! Samples are quantised to counts at the configured range.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use firmware::sensor::{AccelFifo, Clock, Thermometer};

use super::{Source, SourcePoll};

/// Sets the ADXL355 FIFO holds.
pub const FIFO_SETS: usize = 32;
/// ADXL355 full scale in counts (20-bit signed).
const COUNTS_MAX: i32 = (1 << 19) - 1;
/// TMP117 degrees C per count.
const TMP117_C_PER_COUNT: f32 = 0.007_812_5;

struct Shared {
    source: Box<dyn Source>,
    /// Samples not yet in the FIFO, in g.
    pending: VecDeque<f32>,
    temperature_c: f32,
}

impl Shared {
    fn next_sample(&mut self) -> Option<f32> {
        while self.pending.is_empty() {
            match self.source.poll() {
                Ok(SourcePoll::Block(b)) => {
                    if let Some(&t) = b.temperature.last() {
                        self.temperature_c = t;
                    }
                    self.pending.extend(b.vibration);
                }
                Ok(SourcePoll::Idle) => continue,
                Ok(SourcePoll::End) | Err(_) => return None,
            }
        }
        self.pending.pop_front()
    }
}

/// The simulated accelerometer: the simulator's signal on the Z axis, a
/// tenth of it on X and Y.
pub struct SimulatedAccel {
    shared: Arc<Mutex<Shared>>,
    rate_hz: f64,
    g_per_count: f32,
    speed: f64,
    started: Instant,
    produced: u64,
    /// `produced`, shared with the [`SampleClock`].
    produced_shared: Arc<AtomicU64>,
    fifo: VecDeque<[i32; 3]>,
    fifo_sets: usize,
    overrun: bool,
}

/// The simulated thermometer, reading the simulator's temperature.
pub struct SimulatedThermometer {
    shared: Arc<Mutex<Shared>>,
}

/// Builds the pair from a simulator (at its sample rate), range `range_g`,
/// running `speed` times faster than the wall clock, with a FIFO of
/// `fifo_sets` sets ([`FIFO_SETS`] is the ADXL355's).
pub fn simulated_sensors(
    source: Box<dyn Source>,
    range_g: f64,
    speed: f64,
    fifo_sets: usize,
) -> (SimulatedAccel, SimulatedThermometer) {
    let rate_hz = source.sample_rate_hz();
    let mut shared = Shared {
        source,
        pending: VecDeque::new(),
        temperature_c: f32::NAN,
    };
    // Prime the first block so the thermometer has a reading from the start.
    if let Some(first) = shared.next_sample() {
        shared.pending.push_front(first);
    }
    let shared = Arc::new(Mutex::new(shared));
    (
        SimulatedAccel {
            shared: shared.clone(),
            rate_hz,
            g_per_count: (range_g / (COUNTS_MAX as f64 + 1.0)) as f32,
            speed,
            started: Instant::now(),
            produced: 0,
            produced_shared: Arc::new(AtomicU64::new(0)),
            fifo: VecDeque::with_capacity(fifo_sets),
            fifo_sets,
            overrun: false,
        },
        SimulatedThermometer { shared },
    )
}

/// A node clock locked to the simulated accelerometer's samples: the time
/// of the latest sample put into the FIFO. A simulation running faster than
/// real time on a busy host has no other clock consistent with its samples.
pub struct SampleClock {
    produced: Arc<AtomicU64>,
    rate_hz: f64,
}

impl Clock for SampleClock {
    fn now_us(&mut self) -> u64 {
        (self.produced.load(Ordering::Relaxed) as f64 * 1e6 / self.rate_hz) as u64
    }
}

impl SimulatedAccel {
    /// The node clock that goes with this accelerometer's samples.
    pub fn sample_clock(&self) -> SampleClock {
        SampleClock {
            produced: self.produced_shared.clone(),
            rate_hz: self.rate_hz,
        }
    }

    /// Moves the samples due by now into the FIFO.
    fn advance(&mut self) {
        let due = (self.started.elapsed().as_secs_f64() * self.speed * self.rate_hz) as u64;
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        while self.produced < due {
            let Some(g) = shared.next_sample() else {
                break;
            };
            self.produced += 1;
            let z = (g / self.g_per_count).round() as i32;
            let z = z.clamp(-COUNTS_MAX - 1, COUNTS_MAX);
            if self.fifo.len() == self.fifo_sets {
                // The ADXL355 drops the oldest data when its FIFO is full.
                self.fifo.pop_front();
                self.overrun = true;
            }
            self.fifo.push_back([z / 10, -z / 10, z]);
        }
        self.produced_shared.store(self.produced, Ordering::Relaxed);
    }
}

impl AccelFifo for SimulatedAccel {
    type Error = std::convert::Infallible;

    fn fifo_sets(&mut self) -> Result<usize, Self::Error> {
        self.advance();
        Ok(self.fifo.len())
    }

    fn read_fifo(&mut self, out: &mut [[i32; 3]]) -> Result<usize, Self::Error> {
        self.advance();
        let n = out.len().min(self.fifo.len());
        for slot in out.iter_mut().take(n) {
            *slot = self.fifo.pop_front().expect("counted above");
        }
        Ok(n)
    }

    fn take_overrun(&mut self) -> Result<bool, Self::Error> {
        Ok(std::mem::take(&mut self.overrun))
    }

    fn sample_rate_mhz(&self) -> u32 {
        (self.rate_hz * 1000.0).round() as u32
    }

    fn g_per_count(&self) -> f32 {
        self.g_per_count
    }
}

impl Thermometer for SimulatedThermometer {
    type Error = std::convert::Infallible;

    fn read_counts(&mut self) -> Result<i32, Self::Error> {
        let t = self
            .shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .temperature_c;
        Ok((t / TMP117_C_PER_COUNT).round() as i32)
    }

    fn celsius_per_count(&self) -> f32 {
        TMP117_C_PER_COUNT
    }
}
