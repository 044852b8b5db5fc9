//! Small adapters between the RP2040 HAL and the `firmware` crate's traits,
//! each there for a reason the board has and the host tests do not: a
//! microsecond clock, a UART that must not block the loop, a liveness mark
//! for the watchdog, and a thermometer that may be missing.

use core::cell::{Cell, RefCell};
use core::sync::atomic::{AtomicU32, Ordering};

use embedded_hal::i2c::I2c;
use embedded_hal_bus::i2c::RefCellDevice;
use firmware::sensor::{AccelFifo, Clock, FrameSink, Thermometer};
use firmware::tmp117::{self, Averaging, ConversionCycle, ConversionMode, Tmp117};
use rp2040_hal::Timer;
use rp2040_hal::uart::{Enabled, UartDevice, UartPeripheral, ValidUartPinout};

/// Transmit ring: ten full frames, about 90 ms of line time.
const TX_BUFFER: usize = 8192;
/// Pause before the TMP117 is probed again after a failure.
const THERMO_RETRY_US: u64 = 1_000_000;
/// Pause before reading again while the TMP117's first conversion runs.
const THERMO_WARMUP_US: u64 = 50_000;

/// Event counters, for a debugger (gdb: `print board_rp2040::adapters::COUNTERS`).
/// The M0+ has no atomic read-modify-write; one core and no interrupts
/// touch them, so a load and a store suffice.
pub struct Counters {
    pub accel_init_failures: AtomicU32,
    pub accel_errors: AtomicU32,
    pub accel_overruns: AtomicU32,
    pub thermometer_errors: AtomicU32,
    pub tx_buffer_full: AtomicU32,
    pub frame_errors: AtomicU32,
}
#[used]
pub static COUNTERS: Counters = Counters {
    accel_init_failures: AtomicU32::new(0),
    accel_errors: AtomicU32::new(0),
    accel_overruns: AtomicU32::new(0),
    thermometer_errors: AtomicU32::new(0),
    tx_buffer_full: AtomicU32::new(0),
    frame_errors: AtomicU32::new(0),
};
/// Adds one (wrapping) to a counter.
pub fn bump(counter: &AtomicU32) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

/// The RP2040 TIMER: 1 MHz from the crystal, 64 bits, never wraps.
pub struct TimerClock(pub Timer);
impl Clock for TimerClock {
    fn now_us(&mut self) -> u64 {
        self.0.get_counter().ticks()
    }
}

/// The frame did not fit in the transmit ring; none of it was queued.
#[derive(Debug)]
pub struct TxBufferFull;

/// UART frame sink: `send` queues whole frames, `pump` feeds the UART.
pub struct UartSink<D: UartDevice, P: ValidUartPinout<D>> {
    uart: UartPeripheral<Enabled, D, P>,
    ring: [u8; TX_BUFFER],
    head: usize,
    len: usize,
}
impl<D: UartDevice, P: ValidUartPinout<D>> UartSink<D, P> {
    pub fn new(uart: UartPeripheral<Enabled, D, P>) -> Self {
        UartSink {
            uart,
            ring: [0; TX_BUFFER],
            head: 0,
            len: 0,
        }
    }

    /// Moves queued bytes into the UART's 32-byte FIFO until it is full.
    pub fn pump(&mut self) {
        while self.len > 0 {
            let chunk = &self.ring[self.head..TX_BUFFER.min(self.head + self.len)];
            let written = match self.uart.write_raw(chunk) {
                Ok(rest) => chunk.len() - rest.len(),
                Err(_) => 0, // WouldBlock: the FIFO is full
            };
            if written == 0 {
                return;
            }
            self.head = (self.head + written) % TX_BUFFER;
            self.len -= written;
        }
    }
}
impl<D: UartDevice, P: ValidUartPinout<D>> FrameSink for UartSink<D, P> {
    type Error = TxBufferFull;
    fn send(&mut self, bytes: &[u8]) -> Result<(), TxBufferFull> {
        self.pump();
        if bytes.len() > TX_BUFFER - self.len {
            return Err(TxBufferFull);
        }
        let tail = (self.head + self.len) % TX_BUFFER;
        let (first, wrapped) = bytes.split_at(bytes.len().min(TX_BUFFER - tail));
        self.ring[tail..tail + first.len()].copy_from_slice(first);
        self.ring[..wrapped.len()].copy_from_slice(wrapped);
        self.len += bytes.len();
        self.pump();
        Ok(())
    }
}

/// The ADXL355 as the sampler sees it, noting when samples last arrived
/// (for the watchdog) and counting overruns.
pub struct Watched<'a, A> {
    accel: A,
    timer: Timer,
    last_data_us: &'a Cell<u64>,
}
impl<'a, A> Watched<'a, A> {
    pub fn new(accel: A, timer: Timer, last_data_us: &'a Cell<u64>) -> Self {
        Watched {
            accel,
            timer,
            last_data_us,
        }
    }
}
impl<A: AccelFifo> AccelFifo for Watched<'_, A> {
    type Error = A::Error;
    fn fifo_sets(&mut self) -> Result<usize, A::Error> {
        self.accel.fifo_sets()
    }
    fn read_fifo(&mut self, out: &mut [[i32; 3]]) -> Result<usize, A::Error> {
        let n = self.accel.read_fifo(out)?;
        if n > 0 {
            self.last_data_us.set(self.timer.get_counter().ticks());
        }
        Ok(n)
    }
    fn take_overrun(&mut self) -> Result<bool, A::Error> {
        let overrun = self.accel.take_overrun()?;
        if overrun {
            bump(&COUNTERS.accel_overruns);
        }
        Ok(overrun)
    }
    fn sample_rate_mhz(&self) -> u32 {
        self.accel.sample_rate_mhz()
    }
    fn g_per_count(&self) -> f32 {
        self.accel.g_per_count()
    }
}

/// Why no temperature was read.
#[derive(Debug)]
pub enum ThermoError<E> {
    /// The TMP117 failed (absent, NACK, wrong id): it is probed again after
    /// [`THERMO_RETRY_US`].
    Device(tmp117::Error<E>),
    /// Waiting to probe again, or for the first conversion; no bus traffic.
    NotYet,
}

/// A TMP117 attached on first use and re-attached after any failure: the
/// driver takes its bus by value, so each attempt gets a fresh handle on
/// the shared bus.
pub struct LazyTmp117<'a, B> {
    bus: &'a RefCell<B>,
    dev: Option<Tmp117<RefCellDevice<'a, B>>>,
    timer: Timer,
    retry_at_us: u64,
}
impl<'a, B: I2c> LazyTmp117<'a, B> {
    pub fn new(bus: &'a RefCell<B>, timer: Timer) -> Self {
        LazyTmp117 {
            bus,
            dev: None,
            timer,
            retry_at_us: 0,
        }
    }

    fn read(&mut self) -> Result<i16, tmp117::Error<B::Error>> {
        let dev = match &mut self.dev {
            Some(dev) => dev,
            None => {
                let mut dev = Tmp117::new(RefCellDevice::new(self.bus), tmp117::Address::Gnd)?;
                // 8 averages take 125 ms; one result per second is plenty.
                dev.set_config(
                    ConversionMode::Continuous,
                    ConversionCycle::S1,
                    Averaging::Of8,
                )?;
                self.dev.insert(dev)
            }
        };
        dev.read_counts()
    }
}
impl<B: I2c> Thermometer for LazyTmp117<'_, B> {
    type Error = ThermoError<B::Error>;
    fn read_counts(&mut self) -> Result<i32, Self::Error> {
        let now = self.timer.get_counter().ticks();
        if now < self.retry_at_us {
            return Err(ThermoError::NotYet);
        }
        match self.read() {
            // -256 °C: no conversion has finished since power-up.
            Ok(i16::MIN) => {
                self.retry_at_us = now + THERMO_WARMUP_US;
                Err(ThermoError::NotYet)
            }
            Ok(counts) => Ok(i32::from(counts)),
            Err(e) => {
                self.dev = None;
                self.retry_at_us = now + THERMO_RETRY_US;
                Err(ThermoError::Device(e))
            }
        }
    }
    fn celsius_per_count(&self) -> f32 {
        tmp117::CELSIUS_PER_COUNT
    }
}
