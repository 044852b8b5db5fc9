//! Sensor-node firmware for the Raspberry Pi Pico (RP2040): an ADXL355 on
//! SPI0, a TMP117 on I2C0, and frames out on UART0 (see README.md for the
//! wiring).
//!
//! Why this file is thin: what can be subtly wrong (the drivers, FIFO
//! draining, timestamps, sequence gaps, the wire codec) lives in the
//! `no_std` `firmware` crate, which is unit-tested on the host against mocks.
//! This binary can only be tested on a board, so it holds just what needs
//! one: clocks and pins, and in [`adapters`] a microsecond clock, a UART
//! frame sink and two sensor wrappers; then a main loop that polls
//! [`Sampler`] forever. Choices made here:
//!
//! - **Buffered UART.** A full frame is ~0.8 kB, 8.7 ms at 921 600 baud, and
//!   X, Y and Z fill together: blocking writes would stall the loop ~26 ms
//!   while the ADXL355 FIFO holds 8 ms at 4 kHz. So [`UartSink`] copies
//!   a frame whole into a RAM ring (or refuses it; the sampler keeps a
//!   refused frame and retries it) and the loop feeds the UART's FIFO
//!   between polls. No interrupts, so no state shared with a handler.
//! - **Device errors never panic.** The loop counts them in
//!   [`adapters::COUNTERS`] and polls again: the sampler is built so that a
//!   retry continues correctly. The ADXL355 is retried at boot until it
//!   answers; the TMP117 is attached lazily (and re-attached after a
//!   failure), so vibration flows without it.
//! - **Watchdog.** Fed by the loop only while the ADXL355 delivers samples:
//!   a hung bus or a sensor that silently stopped (brown-out, loose wire)
//!   resets the board, which re-runs the init path.
//!
//! The node id is [`NODE_ID`]: change it and rebuild. The LED (GP25)
//! blinks at 1 Hz when all is well, and at 5 Hz while the ADXL355 is not
//! answering or when an error was counted in the last second (a missing
//! TMP117 keeps it fast).

#![no_std]
#![no_main]

mod adapters;

use core::cell::{Cell, RefCell};

use adapters::{COUNTERS, LazyTmp117, ThermoError, TimerClock, TxBufferFull, UartSink, Watched};
use embedded_hal::delay::DelayNs;
use embedded_hal::digital::StatefulOutputPin;
use embedded_hal_bus::spi::ExclusiveDevice;
use firmware::adxl355::{self, Adxl355};
use firmware::sampling::{Sampler, SamplerConfig, SamplerError};
use hal::Clock as _;
use hal::fugit::{ExtU32, RateExtU32};
use hal::gpio::{FunctionSpi, FunctionUart, PinState};
use hal::uart::{DataBits, StopBits, UartConfig, UartPeripheral};
use hal::{Timer, pac};
use panic_halt as _;
use rp2040_hal as hal;

/// The second-stage bootloader for the Pico's W25Q16JV flash.
#[unsafe(link_section = ".boot2")]
#[used]
pub static BOOT2_FIRMWARE: [u8; 256] = rp2040_boot2::BOOT_LOADER_W25Q080;

/// This node's id, in every frame it sends. Each node on a gateway needs
/// its own, matching `node_id` in the gateway's `[assets.source]`: edit
/// this line and rebuild.
const NODE_ID: u16 = 1;
/// The Pico's crystal.
const XOSC_HZ: u32 = 12_000_000;
/// ±8 g matches the gateway's default `accel_range_g`; 4 kHz is the
/// `sample_rate_hz` to configure there.
const ACCEL_CONFIG: adxl355::Config = adxl355::Config {
    range: adxl355::Range::G8,
    odr: adxl355::OutputDataRate::Hz4000,
    hpf: adxl355::HighPassCorner::Off,
    fifo_watermark_sets: 16,
};
const SAMPLER_CONFIG: SamplerConfig = SamplerConfig {
    node_id: NODE_ID,
    samples_per_frame: firmware::MAX_SAMPLES_PER_FRAME,
    fifo_watermark_sets: ACCEL_CONFIG.fifo_watermark_sets as usize,
    temperature_period_us: 1_000_000,
};
const SPI_HZ: u32 = 5_000_000;
const I2C_HZ: u32 = 400_000;
const UART_BAUD: u32 = 921_600;
const WATCHDOG_MS: u32 = 1_000;

#[hal::entry]
fn main() -> ! {
    let mut pac = pac::Peripherals::take().expect("first and only take");
    let mut watchdog = hal::Watchdog::new(pac.WATCHDOG);
    let clocks = hal::clocks::init_clocks_and_plls(
        XOSC_HZ,
        pac.XOSC,
        pac.CLOCKS,
        pac.PLL_SYS,
        pac.PLL_USB,
        &mut pac.RESETS,
        &mut watchdog,
    )
    .unwrap_or_else(|_| panic!("crystal or PLL failed; halting"));
    let mut timer = Timer::new(pac.TIMER, &mut pac.RESETS, &clocks);
    watchdog.pause_on_debug(true);
    watchdog.start(WATCHDOG_MS.millis());

    let sio = hal::Sio::new(pac.SIO);
    let pins = hal::gpio::Pins::new(
        pac.IO_BANK0,
        pac.PADS_BANK0,
        sio.gpio_bank0,
        &mut pac.RESETS,
    );
    let mut led = pins.gpio25.into_push_pull_output();

    // ADXL355: SPI0 mode 0 (TX = MOSI, RX = MISO, SCK), CS as a plain GPIO.
    let spi_pins = (
        pins.gpio19.into_function::<FunctionSpi>(),
        pins.gpio16.into_function::<FunctionSpi>(),
        pins.gpio18.into_function::<FunctionSpi>(),
    );
    let spi = hal::Spi::<_, _, _, 8>::new(pac.SPI0, spi_pins).init(
        &mut pac.RESETS,
        clocks.peripheral_clock.freq(),
        SPI_HZ.Hz(),
        embedded_hal::spi::MODE_0,
    );
    let cs = pins.gpio17.into_push_pull_output_in_state(PinState::High);
    let Ok(mut spi_device) = ExclusiveDevice::new(spi, cs, timer);

    // TMP117: I2C0, ADD0 to GND (0x48).
    let i2c = RefCell::new(hal::I2C::i2c0(
        pac.I2C0,
        pins.gpio4.reconfigure(),
        pins.gpio5.reconfigure(),
        I2C_HZ.Hz(),
        &mut pac.RESETS,
        clocks.system_clock.freq(),
    ));

    // Frames: UART0 8N1.
    let uart_pins = (
        pins.gpio0.into_function::<FunctionUart>(),
        pins.gpio1.into_function::<FunctionUart>(),
    );
    let uart = UartPeripheral::new(pac.UART0, uart_pins, &mut pac.RESETS)
        .enable(
            UartConfig::new(UART_BAUD.Hz(), DataBits::Eight, None, StopBits::One),
            clocks.peripheral_clock.freq(),
        )
        .unwrap_or_else(|_| panic!("baud rate out of range"));
    let mut sink = UartSink::new(uart);

    // Without the accelerometer there is nothing to sample: retry until it
    // answers (it may power up after the MCU), blinking fast meanwhile.
    let accel = loop {
        match Adxl355::new(&mut spi_device, ACCEL_CONFIG) {
            Ok(accel) => break accel,
            Err(_) => {
                adapters::bump(&COUNTERS.accel_init_failures);
                let Ok(()) = led.toggle();
                watchdog.feed();
                timer.delay_ms(100);
            }
        }
    };
    let last_data_us = Cell::new(timer.get_counter().ticks());
    let accel = Watched::new(accel, timer, &last_data_us);
    let thermo = LazyTmp117::new(&i2c, timer);
    let mut sampler = Sampler::new(accel, thermo, TimerClock(timer), SAMPLER_CONFIG)
        .unwrap_or_else(|_| panic!("SAMPLER_CONFIG is out of range"));

    // No samples for this long means the ADXL355 stopped: four drain
    // periods, and at least one second.
    let watermark_us = SAMPLER_CONFIG.fifo_watermark_sets as u64 * 1_000_000_000
        / u64::from(ACCEL_CONFIG.odr.millihertz());
    let stall_us = 1_000_000 + 4 * watermark_us;
    let mut last_error_us: Option<u64> = None;
    let mut next_blink_us = 0;
    loop {
        sink.pump();
        let result = sampler.poll(&mut sink);
        let now = timer.get_counter().ticks();
        // Count and carry on: the next poll retries whatever failed.
        let counter = match result {
            Ok(_) | Err(SamplerError::Thermometer(ThermoError::NotYet)) => None,
            Err(SamplerError::Accel(_)) => Some(&COUNTERS.accel_errors),
            Err(SamplerError::Thermometer(ThermoError::Device(_))) => {
                Some(&COUNTERS.thermometer_errors)
            }
            Err(SamplerError::Sink(TxBufferFull)) => Some(&COUNTERS.tx_buffer_full),
            Err(SamplerError::Frame(_) | SamplerError::Codec(_)) => Some(&COUNTERS.frame_errors),
        };
        if let Some(counter) = counter {
            adapters::bump(counter);
            last_error_us = Some(now);
        }
        if now.saturating_sub(last_data_us.get()) < stall_us {
            watchdog.feed();
        }
        if now >= next_blink_us {
            let Ok(()) = led.toggle();
            let recent_error = last_error_us.is_some_and(|t| now - t < 1_000_000);
            next_blink_us = now + if recent_error { 100_000 } else { 500_000 };
        }
    }
}
