//! Driver for the Analog Devices ADXL355 low-noise three-axis accelerometer
//! (SPI, 20-bit).
//!
//! The node's vibration channels come from this part: its 32-set FIFO lets
//! the sampling loop wake at a watermark and drain many X/Y/Z sets in one SPI
//! burst instead of one transaction per sample. The driver hands out raw
//! counts (the frame carries the scale), keeps the FIFO stream aligned on the
//! X-axis marker the device stores with every set, and reports any samples it
//! had to discard so the gateway sees a gap instead of a shifted timeline.
//!
//! Register map, bit fields and data format follow the ADXL354/ADXL355 data
//! sheet. Nothing read from the device can make the driver panic.

use embedded_hal::spi::{Operation, SpiDevice};

use crate::sensor::AccelFifo;

/// Register addresses used by the driver (data sheet register map).
struct Register;
impl Register {
    /// DEVID_AD (0xAD), followed by DEVID_MST (0x1D) and PARTID (0xED).
    const DEVID_AD: u8 = 0x00;
    const STATUS: u8 = 0x04;
    const FIFO_ENTRIES: u8 = 0x05;
    /// TEMP2 (bits 3:0 = temperature bits 11:8), followed by TEMP1.
    const TEMP2: u8 = 0x06;
    /// XDATA3..ZDATA1 are nine consecutive bytes from here.
    const XDATA3: u8 = 0x08;
    const FIFO_DATA: u8 = 0x11;
    const FILTER: u8 = 0x28;
    const FIFO_SAMPLES: u8 = 0x29;
    const RANGE: u8 = 0x2C;
    const POWER_CTL: u8 = 0x2D;
    const RESET: u8 = 0x2F;
}

/// Bits of the STATUS register.
struct StatusBits;
impl StatusBits {
    const DATA_RDY: u8 = 1 << 0;
    const FIFO_FULL: u8 = 1 << 1;
    const FIFO_OVR: u8 = 1 << 2;
    const ACTIVITY: u8 = 1 << 3;
    const NVM_BUSY: u8 = 1 << 4;
}

/// DEVID_AD, DEVID_MST and PARTID of an ADXL355.
const EXPECTED_ID: [u8; 3] = [0xAD, 0x1D, 0xED];
/// Writing this code to RESET is equivalent to a power-on reset.
const RESET_CODE: u8 = 0x52;
/// RANGE bits 7:6 after reset: I2C_HS = 1, INT_POL = 0 (reset value 0x81).
const RANGE_UPPER_BITS: u8 = 0x80;
/// POWER_CTL = 0: measurement mode, temperature and DRDY enabled.
const POWER_CTL_MEASURE: u8 = 0x00;
/// STATUS polls allowed while the NVM reloads its trim after a reset.
const NVM_POLL_LIMIT: u16 = 1024;

/// FIFO capacity: 96 entries of 3 bytes, three entries (X, Y, Z) per set.
const FIFO_ENTRIES_MAX: usize = 96;
const ENTRY_BYTES: usize = 3;
const AXES: usize = 3;
/// Most complete X/Y/Z sets the FIFO can hold.
pub const FIFO_MAX_SETS: usize = FIFO_ENTRIES_MAX / AXES;
/// DATA1 bit 0 of a FIFO entry: this entry is an X-axis sample.
const ENTRY_X_MARKER: u8 = 1 << 0;
/// DATA1 bit 1 of a FIFO entry: the FIFO was empty, no sample.
const ENTRY_EMPTY: u8 = 1 << 1;

/// TEMP2/TEMP1 are not double-buffered, so a read can mix two conversions
/// (a jump of about 256 counts). Two reads further apart than this are
/// treated as torn and settled by a third.
const TEMP_TEAR_LIMIT: u16 = 64;
/// Temperature counts at 25 °C (nominal intercept).
const TEMP_COUNTS_AT_25C: f32 = 1885.0;
/// Temperature slope, counts per °C (nominal).
const TEMP_COUNTS_PER_C: f32 = -9.05;

/// Errors of the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// The SPI bus failed.
    Bus(E),
    /// The ID registers do not read as an ADXL355 (0xAD, 0x1D, 0xED).
    WrongDeviceId {
        devid_ad: u8,
        devid_mst: u8,
        partid: u8,
    },
    /// `fifo_watermark_sets` must be 1 to 32.
    InvalidConfig,
    /// NVM_BUSY never cleared after the soft reset.
    NvmBusy,
}

/// Measurement range (RANGE bits 1:0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Range {
    /// ±2 g, 256 000 LSB/g (3.9 µg/LSB).
    #[default]
    G2 = 0b01,
    /// ±4 g, 128 000 LSB/g (7.8 µg/LSB).
    G4 = 0b10,
    /// ±8 g, 64 000 LSB/g (15.6 µg/LSB).
    G8 = 0b11,
}

impl Range {
    /// g per count (the inverse of the nominal sensitivity).
    pub fn g_per_count(self) -> f32 {
        match self {
            Range::G2 => 1.0 / 256_000.0,
            Range::G4 => 1.0 / 128_000.0,
            Range::G8 => 1.0 / 64_000.0,
        }
    }
}

/// Output data rate (FILTER bits 3:0, ODR_LPF). The low-pass corner is
/// a quarter of the ODR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputDataRate {
    #[default]
    Hz4000 = 0b0000,
    Hz2000 = 0b0001,
    Hz1000 = 0b0010,
    Hz500 = 0b0011,
    Hz250 = 0b0100,
    Hz125 = 0b0101,
    Hz62_5 = 0b0110,
    Hz31_25 = 0b0111,
    Hz15_625 = 0b1000,
    /// 7.8125 Hz (4000 / 512); the data sheet prints 7.813 Hz.
    Hz7_813 = 0b1001,
    /// 3.90625 Hz (4000 / 1024); the data sheet prints 3.906 Hz.
    Hz3_906 = 0b1010,
}

impl OutputDataRate {
    /// The rate in millihertz. The two slowest rates are not whole
    /// millihertz; they are rounded to the nearest (error below 130 ppm).
    pub fn millihertz(self) -> u32 {
        match self {
            OutputDataRate::Hz4000 => 4_000_000,
            OutputDataRate::Hz2000 => 2_000_000,
            OutputDataRate::Hz1000 => 1_000_000,
            OutputDataRate::Hz500 => 500_000,
            OutputDataRate::Hz250 => 250_000,
            OutputDataRate::Hz125 => 125_000,
            OutputDataRate::Hz62_5 => 62_500,
            OutputDataRate::Hz31_25 => 31_250,
            OutputDataRate::Hz15_625 => 15_625,
            OutputDataRate::Hz7_813 => 7_813,
            OutputDataRate::Hz3_906 => 3_906,
        }
    }
}

/// High-pass filter corner (FILTER bits 6:4, HPF_CORNER). Each variant is
/// named after its -3 dB corner as a multiple of 10⁻⁴ × ODR, e.g. `X24_7`
/// is 24.7 × 10⁻⁴ × ODR (9.88 Hz at 4 kHz).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HighPassCorner {
    /// No high-pass filter: the output keeps its DC (gravity) component.
    #[default]
    Off = 0b000,
    X24_7 = 0b001,
    X6_2084 = 0b010,
    X1_5545 = 0b011,
    X0_3862 = 0b100,
    X0_0954 = 0b101,
    X0_0238 = 0b110,
}

/// What [`Adxl355::new`] programs into the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub range: Range,
    pub odr: OutputDataRate,
    pub hpf: HighPassCorner,
    /// FIFO watermark in X/Y/Z sets, 1 to 32 (FIFO_SAMPLES = 3 × this).
    pub fifo_watermark_sets: u8,
}

impl Default for Config {
    /// ±2 g, 4 kHz, no high-pass, watermark at half the FIFO: at 4 kHz that
    /// leaves 4 ms between the watermark and an overrun to drain it.
    fn default() -> Self {
        Config {
            range: Range::G2,
            odr: OutputDataRate::Hz4000,
            hpf: HighPassCorner::Off,
            fifo_watermark_sets: 16,
        }
    }
}

/// The STATUS register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Status {
    pub data_ready: bool,
    /// FIFO holds at least the watermark.
    pub fifo_full: bool,
    /// The FIFO overran and the oldest data was lost.
    pub fifo_overrun: bool,
    pub activity: bool,
    pub nvm_busy: bool,
}

impl Status {
    fn from_bits(bits: u8) -> Self {
        Status {
            data_ready: bits & StatusBits::DATA_RDY != 0,
            fifo_full: bits & StatusBits::FIFO_FULL != 0,
            fifo_overrun: bits & StatusBits::FIFO_OVR != 0,
            activity: bits & StatusBits::ACTIVITY != 0,
            nvm_busy: bits & StatusBits::NVM_BUSY != 0,
        }
    }
}

/// Decodes a 20-bit two's complement sample left-justified over three bytes
/// (DATA3 = bits 19:12, DATA2 = bits 11:4, DATA1 bits 7:4 = bits 3:0).
/// DATA1 bits 3:0 (the FIFO markers) are ignored.
pub fn decode_sample(data3: u8, data2: u8, data1: u8) -> i32 {
    let raw = (u32::from(data3) << 12) | (u32::from(data2) << 4) | (u32::from(data1) >> 4);
    // Move bit 19 to bit 31, then shift back arithmetically to sign-extend.
    ((raw << 12) as i32) >> 12
}

/// Converts the 12-bit temperature reading to °C with the nominal
/// intercept (1885 counts at 25 °C) and slope (-9.05 counts/°C).
pub fn temperature_counts_to_celsius(counts: u16) -> f32 {
    25.0 + (f32::from(counts) - TEMP_COUNTS_AT_25C) / TEMP_COUNTS_PER_C
}

fn median3(a: u16, b: u16, c: u16) -> u16 {
    a.max(b).min(a.min(b).max(c))
}

/// ADXL355 on an SPI device (mode 0, its own chip select).
#[derive(Debug)]
pub struct Adxl355<SPI> {
    spi: SPI,
    config: Config,
    /// Samples were lost (overrun seen by [`Adxl355::status`], or FIFO
    /// entries discarded to realign) and not yet reported by
    /// [`AccelFifo::take_overrun`].
    samples_lost: bool,
}

impl<SPI: SpiDevice> Adxl355<SPI> {
    /// Checks the ID registers, resets the device, programs `config` and
    /// starts measuring. On error the bus is dropped.
    pub fn new(spi: SPI, config: Config) -> Result<Self, Error<SPI::Error>> {
        if !(1..=FIFO_MAX_SETS as u8).contains(&config.fifo_watermark_sets) {
            return Err(Error::InvalidConfig);
        }
        let mut dev = Adxl355 {
            spi,
            config,
            samples_lost: false,
        };
        let mut id = [0u8; 3];
        dev.read_registers(Register::DEVID_AD, &mut id)?;
        if id != EXPECTED_ID {
            return Err(Error::WrongDeviceId {
                devid_ad: id[0],
                devid_mst: id[1],
                partid: id[2],
            });
        }
        dev.write_register(Register::RESET, RESET_CODE)?;
        // The shadow registers are valid only once the NVM reload is done.
        let mut polls = 0;
        while dev.read_register(Register::STATUS)? & StatusBits::NVM_BUSY != 0 {
            polls += 1;
            if polls >= NVM_POLL_LIMIT {
                return Err(Error::NvmBusy);
            }
        }
        // The device is in standby after reset; configure, then measure.
        dev.write_register(Register::RANGE, RANGE_UPPER_BITS | config.range as u8)?;
        dev.write_register(
            Register::FILTER,
            ((config.hpf as u8) << 4) | config.odr as u8,
        )?;
        dev.write_register(
            Register::FIFO_SAMPLES,
            config.fifo_watermark_sets * AXES as u8,
        )?;
        dev.write_register(Register::POWER_CTL, POWER_CTL_MEASURE)?;
        Ok(dev)
    }

    /// Gives the bus back.
    pub fn destroy(self) -> SPI {
        self.spi
    }

    /// The configuration in use.
    pub fn config(&self) -> Config {
        self.config
    }

    /// The latest X/Y/Z sample (data registers, not the FIFO), raw counts.
    pub fn read_xyz_counts(&mut self) -> Result<[i32; 3], Error<SPI::Error>> {
        let mut b = [0u8; 9];
        self.read_registers(Register::XDATA3, &mut b)?;
        Ok([
            decode_sample(b[0], b[1], b[2]),
            decode_sample(b[3], b[4], b[5]),
            decode_sample(b[6], b[7], b[8]),
        ])
    }

    /// The latest X/Y/Z sample in g.
    pub fn read_xyz_g(&mut self) -> Result<[f32; 3], Error<SPI::Error>> {
        let scale = self.config.range.g_per_count();
        Ok(self.read_xyz_counts()?.map(|c| c as f32 * scale))
    }

    /// The 12-bit temperature reading. Two reads that disagree by more
    /// than a torn read could explain are settled by the median of three.
    pub fn temperature_counts(&mut self) -> Result<u16, Error<SPI::Error>> {
        let a = self.read_temperature_once()?;
        let b = self.read_temperature_once()?;
        if a.abs_diff(b) <= TEMP_TEAR_LIMIT {
            return Ok(b);
        }
        let c = self.read_temperature_once()?;
        Ok(median3(a, b, c))
    }

    /// Die temperature in °C (nominal calibration, about ±2 °C).
    pub fn temperature_c(&mut self) -> Result<f32, Error<SPI::Error>> {
        Ok(temperature_counts_to_celsius(self.temperature_counts()?))
    }

    /// Reads STATUS. An overrun seen here is remembered for
    /// [`AccelFifo::take_overrun`], since reading STATUS may clear it.
    pub fn status(&mut self) -> Result<Status, Error<SPI::Error>> {
        let status = Status::from_bits(self.read_register(Register::STATUS)?);
        self.samples_lost |= status.fifo_overrun;
        Ok(status)
    }

    /// FIFO_ENTRIES: valid entries (not sets) in the FIFO, at most 96.
    pub fn fifo_entries(&mut self) -> Result<usize, Error<SPI::Error>> {
        let n = usize::from(self.read_register(Register::FIFO_ENTRIES)? & 0x7F);
        Ok(n.min(FIFO_ENTRIES_MAX))
    }

    fn read_temperature_once(&mut self) -> Result<u16, Error<SPI::Error>> {
        let mut b = [0u8; 2];
        self.read_registers(Register::TEMP2, &mut b)?;
        Ok((u16::from(b[0] & 0x0F) << 8) | u16::from(b[1]))
    }

    fn read_register(&mut self, reg: u8) -> Result<u8, Error<SPI::Error>> {
        let mut b = [0u8; 1];
        self.read_registers(reg, &mut b)?;
        Ok(b[0])
    }

    /// One transaction: the read command, then `buf.len()` bytes. The
    /// address auto-increments, except on FIFO_DATA, which pops entries.
    fn read_registers(&mut self, reg: u8, buf: &mut [u8]) -> Result<(), Error<SPI::Error>> {
        self.spi
            .transaction(&mut [Operation::Write(&[(reg << 1) | 1]), Operation::Read(buf)])
            .map_err(Error::Bus)
    }

    fn write_register(&mut self, reg: u8, value: u8) -> Result<(), Error<SPI::Error>> {
        self.spi.write(&[reg << 1, value]).map_err(Error::Bus)
    }
}

/// Splits a stream of FIFO entries into X/Y/Z sets. A set starts at an
/// X-marked entry; entries that cannot belong to a complete set (no X
/// before them, or a set cut short by the next X) are counted as dropped.
#[derive(Default)]
struct FifoParser {
    partial: [i32; 3],
    /// Entries in `partial`; 0 = waiting for an X entry.
    have: usize,
    dropped: usize,
    /// An empty-FIFO entry was seen; everything after it is empty too.
    empty: bool,
}

impl FifoParser {
    /// Parses whole entries of `bytes`, writing complete sets to `out`;
    /// returns how many were written.
    fn feed(&mut self, bytes: &[u8], out: &mut [[i32; 3]]) -> usize {
        let mut written = 0;
        for e in bytes.chunks_exact(ENTRY_BYTES) {
            if self.empty || e[2] & ENTRY_EMPTY != 0 {
                self.empty = true;
                break;
            }
            let value = decode_sample(e[0], e[1], e[2]);
            if e[2] & ENTRY_X_MARKER != 0 {
                self.dropped += self.have;
                self.partial[0] = value;
                self.have = 1;
            } else if self.have == 0 {
                self.dropped += 1;
            } else {
                self.partial[self.have] = value;
                self.have += 1;
                if self.have == AXES {
                    self.have = 0;
                    match out.get_mut(written) {
                        Some(slot) => {
                            *slot = self.partial;
                            written += 1;
                        }
                        None => self.dropped += AXES,
                    }
                }
            }
        }
        written
    }

    /// Entries still needed to complete the set in progress.
    fn missing(&self) -> usize {
        if self.have == 0 { 0 } else { AXES - self.have }
    }
}

impl<SPI: SpiDevice> AccelFifo for Adxl355<SPI> {
    type Error = Error<SPI::Error>;

    fn fifo_sets(&mut self) -> Result<usize, Self::Error> {
        Ok(self.fifo_entries()? / AXES)
    }

    /// Reads whole sets only (a set still being written stays in the FIFO)
    /// in one burst. If the stream did not start on an X entry, the entries
    /// before the first X are dropped, and the set cut at the end of the
    /// burst is completed by a second, short read so the next call starts
    /// aligned. Dropped entries are reported by `take_overrun`.
    fn read_fifo(&mut self, out: &mut [[i32; 3]]) -> Result<usize, Self::Error> {
        let wanted = out.len().min(FIFO_MAX_SETS);
        if wanted == 0 {
            return Ok(0);
        }
        let available = self.fifo_entries()?;
        let entries = (available / AXES).min(wanted) * AXES;
        if entries == 0 {
            return Ok(0);
        }
        let mut buf = [0u8; FIFO_ENTRIES_MAX * ENTRY_BYTES];
        let burst = &mut buf[..entries * ENTRY_BYTES];
        self.read_registers(Register::FIFO_DATA, burst)?;
        let mut parser = FifoParser::default();
        let mut n = parser.feed(burst, &mut out[..wanted]);

        let missing = parser.missing();
        if missing > 0 && !parser.empty && available - entries >= missing {
            let mut tail = [0u8; (AXES - 1) * ENTRY_BYTES];
            let tail = &mut tail[..missing * ENTRY_BYTES];
            self.read_registers(Register::FIFO_DATA, tail)?;
            n += parser.feed(tail, &mut out[n..wanted]);
        }
        if parser.dropped + parser.have > 0 {
            self.samples_lost = true;
        }
        Ok(n)
    }

    /// Reads STATUS (FIFO_OVR); also true if samples were discarded since
    /// the last call (an overrun seen by `status`, or a realignment).
    fn take_overrun(&mut self) -> Result<bool, Self::Error> {
        self.status()?;
        Ok(core::mem::take(&mut self.samples_lost))
    }

    fn sample_rate_mhz(&self) -> u32 {
        self.config.odr.millihertz()
    }

    fn g_per_count(&self) -> f32 {
        self.config.range.g_per_count()
    }
}

#[cfg(test)]
#[path = "adxl355_tests.rs"]
mod tests;
