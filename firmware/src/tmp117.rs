//! Driver for the Texas Instruments TMP117 precision thermometer (I2C).
//!
//! Bearing and motor-housing temperature is a slow channel next to the
//! vibration data: the TMP117 gives ±0.1 °C without calibration and a
//! 16-bit result, and the node sends its raw counts with the fixed scale of
//! 7.8125 m°C per count. The driver checks the device id, sets conversion
//! mode, cycle and averaging, and reads the result and the offset register.
//!
//! Registers are 16-bit big-endian behind an 8-bit pointer, as in the TMP117
//! data sheet (SNOSD82). Nothing read from the device can make it panic.

use embedded_hal::i2c::I2c;

use crate::sensor::Thermometer;

/// Register pointers used by the driver (data sheet register map).
struct Register;
impl Register {
    const TEMP_RESULT: u8 = 0x00;
    const CONFIGURATION: u8 = 0x01;
    const TEMP_OFFSET: u8 = 0x07;
    const DEVICE_ID: u8 = 0x0F;
}

/// Fields of the configuration register.
struct ConfigBits;
impl ConfigBits {
    const DATA_READY: u16 = 1 << 13;
    const MOD_SHIFT: u16 = 10;
    const CONV_SHIFT: u16 = 7;
    const AVG_SHIFT: u16 = 5;
}

/// Device_ID bits 11:0; bits 15:12 are the revision.
const DEVICE_ID_MASK: u16 = 0x0FFF;
const DEVICE_ID: u16 = 0x0117;

/// Degrees Celsius per count of the result, limit and offset registers.
pub const CELSIUS_PER_COUNT: f32 = 0.0078125;

/// Errors of the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// The I2C bus failed (including a NACK: no device at the address).
    Bus(E),
    /// Device_ID bits 11:0 are not 0x117; carries the whole register.
    WrongDeviceId(u16),
}

/// I2C address, set by what the ADD0 pin is tied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Address {
    /// ADD0 to GND: 0x48.
    #[default]
    Gnd = 0x48,
    /// ADD0 to V+: 0x49.
    Vplus = 0x49,
    /// ADD0 to SDA: 0x4A.
    Sda = 0x4A,
    /// ADD0 to SCL: 0x4B.
    Scl = 0x4B,
}

/// Conversion mode (configuration bits 11:10, MOD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConversionMode {
    /// Convert every conversion cycle.
    #[default]
    Continuous = 0b00,
    /// No conversions; about 150 nA.
    Shutdown = 0b01,
    /// One conversion (with its averaging), then shutdown.
    OneShot = 0b11,
}

/// Continuous-mode conversion cycle (configuration bits 9:7, CONV). The
/// cycle is never shorter than the averaging takes (about 15.5 ms per
/// conversion), so e.g. `Ms15_5` with 8 averages cycles every 125 ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConversionCycle {
    Ms15_5 = 0b000,
    Ms125 = 0b001,
    Ms250 = 0b010,
    Ms500 = 0b011,
    /// The power-on default.
    #[default]
    S1 = 0b100,
    S4 = 0b101,
    S8 = 0b110,
    S16 = 0b111,
}

/// Conversions averaged per result (configuration bits 6:5, AVG).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Averaging {
    /// One conversion per result.
    Off = 0b00,
    /// The power-on default.
    #[default]
    Of8 = 0b01,
    Of32 = 0b10,
    Of64 = 0b11,
}

/// The configuration word for `mode`, `cycle` and `averaging`, with the
/// alert bits (T/nA, POL, DR/Alert) and Soft_Reset at 0: alert mode,
/// ALERT active low and driven by the alert flags.
pub fn configuration_word(
    mode: ConversionMode,
    cycle: ConversionCycle,
    averaging: Averaging,
) -> u16 {
    ((mode as u16) << ConfigBits::MOD_SHIFT)
        | ((cycle as u16) << ConfigBits::CONV_SHIFT)
        | ((averaging as u16) << ConfigBits::AVG_SHIFT)
}

/// Counts to degrees Celsius.
pub fn counts_to_celsius(counts: i16) -> f32 {
    f32::from(counts) * CELSIUS_PER_COUNT
}

/// Degrees Celsius to the nearest count, saturating at the register range
/// (-256 to +255.9921875 °C); NaN gives 0.
pub fn celsius_to_counts(celsius: f32) -> i16 {
    let scaled = celsius / CELSIUS_PER_COUNT;
    // `as` saturates; adding ±0.5 first rounds half away from zero.
    if scaled >= 0.0 {
        (scaled + 0.5) as i16
    } else {
        (scaled - 0.5) as i16
    }
}

/// TMP117 on an I2C bus.
#[derive(Debug)]
pub struct Tmp117<I2C> {
    i2c: I2C,
    address: u8,
}

impl<I2C: I2c> Tmp117<I2C> {
    /// Checks Device_ID at `address`. The device keeps its power-on (or
    /// EEPROM) configuration until [`Tmp117::set_config`]. On error the bus
    /// is dropped.
    pub fn new(i2c: I2C, address: Address) -> Result<Self, Error<I2C::Error>> {
        let mut dev = Tmp117 {
            i2c,
            address: address as u8,
        };
        let id = dev.read_register(Register::DEVICE_ID)?;
        if id & DEVICE_ID_MASK != DEVICE_ID {
            return Err(Error::WrongDeviceId(id));
        }
        Ok(dev)
    }

    /// Gives the bus back.
    pub fn destroy(self) -> I2C {
        self.i2c
    }

    /// Writes the configuration register (see [`configuration_word`]).
    /// Writing `OneShot` starts a conversion.
    pub fn set_config(
        &mut self,
        mode: ConversionMode,
        cycle: ConversionCycle,
        averaging: Averaging,
    ) -> Result<(), Error<I2C::Error>> {
        self.write_register(
            Register::CONFIGURATION,
            configuration_word(mode, cycle, averaging),
        )
    }

    /// The temperature result register, raw counts. Reads -256 °C (0x8000)
    /// until the first conversion after power-up has finished.
    pub fn read_counts(&mut self) -> Result<i16, Error<I2C::Error>> {
        Ok(self.read_register(Register::TEMP_RESULT)? as i16)
    }

    /// The temperature result in degrees Celsius.
    pub fn read_celsius(&mut self) -> Result<f32, Error<I2C::Error>> {
        Ok(counts_to_celsius(self.read_counts()?))
    }

    /// Whether a conversion finished since the configuration or result
    /// register was last read. Reading the configuration register clears
    /// Data_Ready (and, in alert mode, the HIGH/LOW alert flags).
    pub fn data_ready(&mut self) -> Result<bool, Error<I2C::Error>> {
        Ok(self.read_register(Register::CONFIGURATION)? & ConfigBits::DATA_READY != 0)
    }

    /// Sets the offset the device adds to every result, in counts. This
    /// writes the register only, not the EEPROM: it is lost at power-off.
    pub fn set_offset_counts(&mut self, counts: i16) -> Result<(), Error<I2C::Error>> {
        self.write_register(Register::TEMP_OFFSET, counts as u16)
    }

    /// Sets the offset in degrees Celsius, rounded to the nearest count.
    pub fn set_offset_celsius(&mut self, celsius: f32) -> Result<(), Error<I2C::Error>> {
        self.set_offset_counts(celsius_to_counts(celsius))
    }

    fn read_register(&mut self, reg: u8) -> Result<u16, Error<I2C::Error>> {
        let mut b = [0u8; 2];
        self.i2c
            .write_read(self.address, &[reg], &mut b)
            .map_err(Error::Bus)?;
        Ok(u16::from_be_bytes(b))
    }

    fn write_register(&mut self, reg: u8, value: u16) -> Result<(), Error<I2C::Error>> {
        let [msb, lsb] = value.to_be_bytes();
        self.i2c
            .write(self.address, &[reg, msb, lsb])
            .map_err(Error::Bus)
    }
}

impl<I2C: I2c> Thermometer for Tmp117<I2C> {
    type Error = Error<I2C::Error>;

    fn read_counts(&mut self) -> Result<i32, Self::Error> {
        Tmp117::read_counts(self).map(i32::from)
    }

    fn celsius_per_count(&self) -> f32 {
        CELSIUS_PER_COUNT
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal::i2c::ErrorKind;
    use embedded_hal_mock::eh1::i2c::{Mock, Transaction};

    const ADDR: u8 = 0x48;

    fn id_ok(addr: u8) -> Transaction {
        Transaction::write_read(addr, vec![0x0F], vec![0x01, 0x17])
    }

    fn result(msb: u8, lsb: u8) -> Transaction {
        Transaction::write_read(ADDR, vec![0x00], vec![msb, lsb])
    }

    fn open(rest: &[Transaction]) -> Tmp117<Mock> {
        let mut steps = vec![id_ok(ADDR)];
        steps.extend_from_slice(rest);
        Tmp117::new(Mock::new(&steps), Address::Gnd).unwrap()
    }

    #[test]
    fn new_checks_device_id_at_the_selected_address() {
        Tmp117::new(Mock::new(&[id_ok(0x4B)]), Address::Scl)
            .unwrap()
            .destroy()
            .done();
        // Bits 15:12 are the die revision and do not matter.
        let spi = Mock::new(&[Transaction::write_read(ADDR, vec![0x0F], vec![0x21, 0x17])]);
        Tmp117::new(spi, Address::default())
            .unwrap()
            .destroy()
            .done();
        assert_eq!(
            [Address::Gnd, Address::Vplus, Address::Sda, Address::Scl].map(|a| a as u8),
            [0x48, 0x49, 0x4A, 0x4B]
        );
    }

    #[test]
    fn new_refuses_another_device() {
        // 0x0116 is a TMP116.
        let mut i2c = Mock::new(&[Transaction::write_read(ADDR, vec![0x0F], vec![0x01, 0x16])]);
        assert_eq!(
            Tmp117::new(i2c.clone(), Address::Gnd).unwrap_err(),
            Error::WrongDeviceId(0x0116)
        );
        i2c.done();
    }

    #[test]
    fn configuration_word_places_mod_conv_and_avg() {
        // The power-on default, 0x0220: continuous, 1 s, 8 averages.
        let default = configuration_word(
            ConversionMode::default(),
            ConversionCycle::default(),
            Averaging::default(),
        );
        assert_eq!(default, 0x0220);
        let w = configuration_word(
            ConversionMode::OneShot,
            ConversionCycle::Ms15_5,
            Averaging::Off,
        );
        assert_eq!(w, 0b11 << 10);
        let w = configuration_word(
            ConversionMode::Shutdown,
            ConversionCycle::S16,
            Averaging::Of64,
        );
        assert_eq!(w, (0b01 << 10) | (0b111 << 7) | (0b11 << 5));
        let w = configuration_word(
            ConversionMode::Continuous,
            ConversionCycle::Ms250,
            Averaging::Of32,
        );
        assert_eq!(w, (0b010 << 7) | (0b10 << 5));
    }

    #[test]
    fn set_config_writes_the_word_big_endian() {
        let mut dev = open(&[
            Transaction::write(ADDR, vec![0x01, 0x02, 0x20]),
            Transaction::write(ADDR, vec![0x01, 0x07, 0xE0]),
        ]);
        dev.set_config(
            ConversionMode::Continuous,
            ConversionCycle::S1,
            Averaging::Of8,
        )
        .unwrap();
        dev.set_config(
            ConversionMode::Shutdown,
            ConversionCycle::S16,
            Averaging::Of64,
        )
        .unwrap();
        dev.destroy().done();
    }

    #[test]
    fn results_convert_at_the_extremes() {
        let mut dev = open(&[
            result(0x7F, 0xFF),
            result(0x80, 0x00),
            result(0xFF, 0xFF),
            result(0x0C, 0x80),
            result(0xF3, 0x80),
        ]);
        // 255.9921875 °C, exactly representable.
        assert_eq!(dev.read_celsius().unwrap(), 255.0 + 127.0 / 128.0);
        assert_eq!(dev.read_celsius().unwrap(), -256.0);
        assert_eq!(dev.read_celsius().unwrap(), -0.007_812_5);
        assert_eq!(dev.read_celsius().unwrap(), 25.0);
        assert_eq!(dev.read_celsius().unwrap(), -25.0);
        dev.destroy().done();
    }

    #[test]
    fn thermometer_trait_gives_signed_counts_and_the_scale() {
        let mut dev = open(&[result(0xFF, 0xFF), result(0x80, 0x00)]);
        assert_eq!(Thermometer::read_counts(&mut dev).unwrap(), -1);
        assert_eq!(Thermometer::read_counts(&mut dev).unwrap(), -32_768);
        assert_eq!(dev.celsius_per_count(), 0.0078125);
        dev.destroy().done();
    }

    #[test]
    fn data_ready_is_bit_13_of_the_configuration() {
        let mut dev = open(&[
            Transaction::write_read(ADDR, vec![0x01], vec![0x22, 0x20]),
            Transaction::write_read(ADDR, vec![0x01], vec![0x02, 0x20]),
        ]);
        assert!(dev.data_ready().unwrap());
        assert!(!dev.data_ready().unwrap());
        dev.destroy().done();
    }

    #[test]
    fn offset_is_rounded_and_saturated() {
        let mut dev = open(&[
            Transaction::write(ADDR, vec![0x07, 0xFF, 0x40]), // -1.5 °C = -192
            Transaction::write(ADDR, vec![0x07, 0x00, 0x01]), // 0.004 °C rounds to 1
            Transaction::write(ADDR, vec![0x07, 0x7F, 0xFF]), // saturates
            Transaction::write(ADDR, vec![0x07, 0x80, 0x00]),
        ]);
        dev.set_offset_celsius(-1.5).unwrap();
        dev.set_offset_celsius(0.004).unwrap();
        dev.set_offset_celsius(1000.0).unwrap();
        dev.set_offset_celsius(f32::NEG_INFINITY).unwrap();
        dev.destroy().done();
        assert_eq!(celsius_to_counts(f32::NAN), 0);
        assert_eq!(celsius_to_counts(-0.0039), 0);
    }

    #[test]
    fn bus_errors_are_wrapped() {
        let mut i2c = Mock::new(&[
            Transaction::write_read(ADDR, vec![0x0F], vec![0, 0]).with_error(ErrorKind::Other)
        ]);
        assert_eq!(
            Tmp117::new(i2c.clone(), Address::Gnd).unwrap_err(),
            Error::Bus(ErrorKind::Other)
        );
        i2c.done();
        let mut dev = open(&[
            result(0, 0).with_error(ErrorKind::Other),
            Transaction::write(ADDR, vec![0x01, 0x0C, 0x00]).with_error(ErrorKind::Other),
        ]);
        assert_eq!(dev.read_celsius(), Err(Error::Bus(ErrorKind::Other)));
        assert_eq!(
            dev.set_config(
                ConversionMode::OneShot,
                ConversionCycle::Ms15_5,
                Averaging::Off
            ),
            Err(Error::Bus(ErrorKind::Other))
        );
        dev.destroy().done();
    }
}
