//! What the sampling loop needs from the hardware, as small traits.
//!
//! The loop is host-tested against fakes; the ADXL355 and TMP117 drivers
//! implement these traits on a real bus; a board binary supplies the clock
//! and the byte sink (a UART).

/// Channel ids a node uses in its frames.
pub mod channel {
    pub const ACCEL_X: u8 = 0;
    pub const ACCEL_Y: u8 = 1;
    pub const ACCEL_Z: u8 = 2;
    pub const TEMPERATURE: u8 = 3;
}

/// A three-axis accelerometer with a sample FIFO.
pub trait AccelFifo {
    type Error;
    /// Complete X/Y/Z sample sets waiting in the FIFO.
    fn fifo_sets(&mut self) -> Result<usize, Self::Error>;
    /// Reads up to `out.len()` complete sets (raw counts, X/Y/Z), oldest
    /// first; returns how many were read.
    fn read_fifo(&mut self, out: &mut [[i32; 3]]) -> Result<usize, Self::Error>;
    /// Whether the FIFO overflowed (samples were lost) since the last call;
    /// reading clears the condition.
    fn take_overrun(&mut self) -> Result<bool, Self::Error>;
    /// Output data rate in millihertz.
    fn sample_rate_mhz(&self) -> u32;
    /// g per count at the configured range.
    fn g_per_count(&self) -> f32;
}

/// A temperature sensor.
pub trait Thermometer {
    type Error;
    /// The latest conversion, raw counts.
    fn read_counts(&mut self) -> Result<i32, Self::Error>;
    /// Degrees Celsius per count.
    fn celsius_per_count(&self) -> f32;
}

/// A free-running microsecond clock.
pub trait Clock {
    fn now_us(&mut self) -> u64;
}

/// Where encoded frames go (a UART, a socket).
pub trait FrameSink {
    type Error;
    fn send(&mut self, bytes: &[u8]) -> Result<(), Self::Error>;
}
