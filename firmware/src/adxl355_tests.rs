//! Mock-bus tests of the ADXL355 driver. Command bytes are written out
//! literally ((address << 1) | R/W) so they check the register map too.

use super::*;
use embedded_hal::spi::{ErrorKind, ErrorType};
use embedded_hal_mock::eh1::spi::{Mock, Transaction};

// Read commands: (address << 1) | 1.
const RD_DEVID_AD: u8 = 0x01; // 0x00
const RD_STATUS: u8 = 0x09; // 0x04
const RD_FIFO_ENTRIES: u8 = 0x0B; // 0x05
const RD_TEMP2: u8 = 0x0D; // 0x06
const RD_XDATA3: u8 = 0x11; // 0x08
const RD_FIFO_DATA: u8 = 0x23; // 0x11
// Write commands: address << 1.
const WR_FILTER: u8 = 0x50; // 0x28
const WR_FIFO_SAMPLES: u8 = 0x52; // 0x29
const WR_RANGE: u8 = 0x58; // 0x2C
const WR_POWER_CTL: u8 = 0x5A; // 0x2D
const WR_RESET: u8 = 0x5E; // 0x2F

fn read(cmd: u8, response: &[u8]) -> Vec<Transaction<u8>> {
    vec![
        Transaction::transaction_start(),
        Transaction::write_vec(vec![cmd]),
        Transaction::read_vec(response.to_vec()),
        Transaction::transaction_end(),
    ]
}

fn write(cmd: u8, value: u8) -> Vec<Transaction<u8>> {
    vec![
        Transaction::transaction_start(),
        Transaction::write_vec(vec![cmd, value]),
        Transaction::transaction_end(),
    ]
}

fn mock(steps: &[Vec<Transaction<u8>>]) -> Mock<u8> {
    Mock::new(&steps.concat())
}

/// A driver on `spi` as if `new` had run with the default configuration.
fn driver<S: SpiDevice>(spi: S) -> Adxl355<S> {
    Adxl355 {
        spi,
        config: Config::default(),
        samples_lost: false,
    }
}

/// One FIFO entry holding `value`, optionally X-marked.
fn entry(value: i32, x: bool) -> [u8; 3] {
    let raw = (value as u32) & 0xF_FFFF;
    [
        (raw >> 12) as u8,
        (raw >> 4) as u8,
        ((raw & 0xF) << 4) as u8 | u8::from(x),
    ]
}

fn entries(list: &[(i32, bool)]) -> Vec<u8> {
    list.iter().flat_map(|&(v, x)| entry(v, x)).collect()
}

/// A bus whose every transaction fails.
#[derive(Debug)]
struct FailingSpi;
impl ErrorType for FailingSpi {
    type Error = ErrorKind;
}
impl SpiDevice for FailingSpi {
    fn transaction(&mut self, _: &mut [Operation<'_, u8>]) -> Result<(), ErrorKind> {
        Err(ErrorKind::Other)
    }
}

#[test]
fn new_checks_ids_resets_waits_for_nvm_and_configures() {
    let spi = mock(&[
        read(RD_DEVID_AD, &[0xAD, 0x1D, 0xED]),
        write(WR_RESET, 0x52),
        read(RD_STATUS, &[0x10]), // NVM_BUSY
        read(RD_STATUS, &[0x00]),
        write(WR_RANGE, 0x82),        // I2C_HS kept, ±4 g
        write(WR_FILTER, 0x13),       // HPF 001, ODR 500 Hz
        write(WR_FIFO_SAMPLES, 0x1E), // 10 sets = 30 entries
        write(WR_POWER_CTL, 0x00),    // measure
    ]);
    let config = Config {
        range: Range::G4,
        odr: OutputDataRate::Hz500,
        hpf: HighPassCorner::X24_7,
        fifo_watermark_sets: 10,
    };
    let dev = Adxl355::new(spi, config).unwrap();
    assert_eq!(dev.config(), config);
    assert_eq!(dev.sample_rate_mhz(), 500_000);
    assert_eq!(dev.g_per_count(), 1.0 / 128_000.0);
    dev.destroy().done();
}

#[test]
fn new_with_default_config_writes_reset_values_and_half_fifo_watermark() {
    let spi = mock(&[
        read(RD_DEVID_AD, &[0xAD, 0x1D, 0xED]),
        write(WR_RESET, 0x52),
        read(RD_STATUS, &[0x00]),
        write(WR_RANGE, 0x81),
        write(WR_FILTER, 0x00),
        write(WR_FIFO_SAMPLES, 48),
        write(WR_POWER_CTL, 0x00),
    ]);
    Adxl355::new(spi, Config::default())
        .unwrap()
        .destroy()
        .done();
}

#[test]
fn new_refuses_another_part() {
    // PARTID 0xE9 is an ADXL359.
    let mut spi = mock(&[read(RD_DEVID_AD, &[0xAD, 0x1D, 0xE9])]);
    let err = Adxl355::new(spi.clone(), Config::default()).unwrap_err();
    assert_eq!(
        err,
        Error::WrongDeviceId {
            devid_ad: 0xAD,
            devid_mst: 0x1D,
            partid: 0xE9
        }
    );
    spi.done();
}

#[test]
fn new_refuses_a_watermark_the_fifo_cannot_hold_without_touching_the_bus() {
    for sets in [0, 33] {
        let mut spi = mock(&[]);
        let config = Config {
            fifo_watermark_sets: sets,
            ..Config::default()
        };
        assert_eq!(
            Adxl355::new(spi.clone(), config).unwrap_err(),
            Error::InvalidConfig
        );
        spi.done();
    }
}

#[test]
fn new_gives_up_if_nvm_stays_busy() {
    let mut steps = vec![
        read(RD_DEVID_AD, &[0xAD, 0x1D, 0xED]),
        write(WR_RESET, 0x52),
    ];
    steps.extend((0..NVM_POLL_LIMIT).map(|_| read(RD_STATUS, &[0x10])));
    let mut spi = mock(&steps);
    assert_eq!(
        Adxl355::new(spi.clone(), Config::default()).unwrap_err(),
        Error::NvmBusy
    );
    spi.done();
}

#[test]
fn data_registers_decode_20_bit_extremes() {
    let spi = mock(&[
        read(
            RD_XDATA3,
            &[0x7F, 0xFF, 0xF0, 0x80, 0x00, 0x00, 0xFF, 0xFF, 0xF0],
        ),
        read(
            RD_XDATA3,
            &[0x7F, 0xFF, 0xF0, 0x80, 0x00, 0x00, 0x00, 0x00, 0x10],
        ),
    ]);
    let mut dev = driver(spi);
    assert_eq!(dev.read_xyz_counts().unwrap(), [524_287, -524_288, -1]);
    let g = dev.read_xyz_g().unwrap();
    assert!((g[0] - 2.0479).abs() < 1e-4, "{}", g[0]);
    assert!((g[1] + 2.048).abs() < 1e-6, "{}", g[1]);
    assert!((g[2] - 3.906_25e-6).abs() < 1e-9, "{}", g[2]);
    dev.destroy().done();
}

#[test]
fn decoding_ignores_the_fifo_marker_bits() {
    assert_eq!(decode_sample(0xFF, 0xFF, 0xF3), -1);
    assert_eq!(decode_sample(0x00, 0x00, 0x1F), 1);
}

#[test]
fn scales_and_rates_follow_the_data_sheet() {
    assert!((Range::G2.g_per_count() - 3.9e-6).abs() < 0.01e-6);
    assert!((Range::G4.g_per_count() - 7.8e-6).abs() < 0.02e-6);
    assert!((Range::G8.g_per_count() - 15.6e-6).abs() < 0.04e-6);
    assert_eq!(OutputDataRate::Hz4000.millihertz(), 4_000_000);
    assert_eq!(OutputDataRate::Hz62_5.millihertz(), 62_500);
    assert_eq!(OutputDataRate::Hz15_625.millihertz(), 15_625);
    assert_eq!(OutputDataRate::Hz3_906.millihertz(), 3_906);
}

#[test]
fn fifo_sets_counts_whole_sets_only() {
    let spi = mock(&[read(RD_FIFO_ENTRIES, &[0x60]), read(RD_FIFO_ENTRIES, &[5])]);
    let mut dev = driver(spi);
    assert_eq!(dev.fifo_sets().unwrap(), 32);
    assert_eq!(dev.fifo_sets().unwrap(), 1);
    dev.destroy().done();
}

#[test]
fn fifo_burst_of_two_sets_is_one_transaction() {
    let data = entries(&[
        (1, true),
        (2, false),
        (3, false),
        (-4, true),
        (-5, false),
        (-6, false),
    ]);
    let spi = mock(&[
        read(RD_FIFO_ENTRIES, &[7]), // a third set is being written
        read(RD_FIFO_DATA, &data),
        read(RD_STATUS, &[0x00]),
    ]);
    let mut dev = driver(spi);
    let mut out = [[0; 3]; 4];
    assert_eq!(dev.read_fifo(&mut out).unwrap(), 2);
    assert_eq!(&out[..2], &[[1, 2, 3], [-4, -5, -6]]);
    assert!(!dev.take_overrun().unwrap());
    dev.destroy().done();
}

#[test]
fn fifo_read_stops_at_the_callers_buffer() {
    let data = entries(&[(1, true), (2, false), (3, false)]);
    let spi = mock(&[read(RD_FIFO_ENTRIES, &[9]), read(RD_FIFO_DATA, &data)]);
    let mut dev = driver(spi);
    let mut out = [[0; 3]; 1];
    assert_eq!(dev.read_fifo(&mut out).unwrap(), 1);
    assert_eq!(out, [[1, 2, 3]]);
    // An empty buffer costs no bus traffic.
    assert_eq!(dev.read_fifo(&mut []).unwrap(), 0);
    dev.destroy().done();
}

#[test]
fn fifo_stream_starting_mid_set_is_realigned_on_the_x_marker() {
    // Y and Z of a set whose X someone else popped, then two full sets.
    let burst = entries(&[
        (8, false),
        (9, false),
        (10, true),
        (11, false),
        (12, false),
        (20, true),
    ]);
    let tail = entries(&[(21, false), (22, false)]);
    let spi = mock(&[
        read(RD_FIFO_ENTRIES, &[8]),
        read(RD_FIFO_DATA, &burst),
        read(RD_FIFO_DATA, &tail), // completes the cut set
        read(RD_STATUS, &[0x00]),
        read(RD_STATUS, &[0x00]),
    ]);
    let mut dev = driver(spi);
    let mut out = [[0; 3]; 4];
    assert_eq!(dev.read_fifo(&mut out).unwrap(), 2);
    assert_eq!(&out[..2], &[[10, 11, 12], [20, 21, 22]]);
    // The two orphans were lost; that is reported once.
    assert!(dev.take_overrun().unwrap());
    assert!(!dev.take_overrun().unwrap());
    dev.destroy().done();
}

#[test]
fn fifo_set_cut_short_by_the_next_x_is_dropped_not_misassigned() {
    let burst = entries(&[
        (1, true),
        (2, false),
        (5, true),
        (6, false),
        (7, false),
        (9, false),
    ]);
    let spi = mock(&[read(RD_FIFO_ENTRIES, &[6]), read(RD_FIFO_DATA, &burst)]);
    let mut dev = driver(spi);
    let mut out = [[0; 3]; 2];
    assert_eq!(dev.read_fifo(&mut out).unwrap(), 1);
    assert_eq!(out[0], [5, 6, 7]);
    assert!(dev.samples_lost);
    dev.destroy().done();
}

#[test]
fn fifo_empty_marker_ends_the_read() {
    let mut data = entries(&[(1, true), (2, false), (3, false)]);
    data.extend([0x00, 0x00, 0x02].repeat(3));
    let spi = mock(&[read(RD_FIFO_ENTRIES, &[6]), read(RD_FIFO_DATA, &data)]);
    let mut dev = driver(spi);
    let mut out = [[0; 3]; 2];
    assert_eq!(dev.read_fifo(&mut out).unwrap(), 1);
    assert_eq!(out[0], [1, 2, 3]);
    assert!(!dev.samples_lost);
    dev.destroy().done();
}

#[test]
fn overrun_bit_is_taken_and_not_lost_to_a_status_read() {
    let spi = mock(&[
        read(RD_STATUS, &[0x04]),
        read(RD_STATUS, &[0x00]),
        read(RD_STATUS, &[0x06]),
        read(RD_STATUS, &[0x00]),
    ]);
    let mut dev = driver(spi);
    assert!(dev.take_overrun().unwrap());
    assert!(!dev.take_overrun().unwrap());
    let status = dev.status().unwrap();
    assert!(status.fifo_overrun && status.fifo_full && !status.data_ready);
    // STATUS cleared on that read, but the overrun is still reported.
    assert!(dev.take_overrun().unwrap());
    dev.destroy().done();
}

#[test]
fn status_bits_decode() {
    let s = Status::from_bits(0x1F);
    assert!(s.data_ready && s.fifo_full && s.fifo_overrun && s.activity && s.nvm_busy);
    assert_eq!(Status::from_bits(0xE0), Status::default());
}

#[test]
fn temperature_follows_the_nominal_line() {
    // 1885 = 0x75D is 25 °C; 1704 = 0x6A8 is 20 °C above (181 / 9.05).
    let spi = mock(&[
        read(RD_TEMP2, &[0x07, 0x5D]),
        read(RD_TEMP2, &[0xF7, 0x5D]), // reserved upper bits ignored
        read(RD_TEMP2, &[0x06, 0xA8]),
        read(RD_TEMP2, &[0x06, 0xA8]),
    ]);
    let mut dev = driver(spi);
    assert!((dev.temperature_c().unwrap() - 25.0).abs() < 1e-4);
    assert!((dev.temperature_c().unwrap() - 45.0).abs() < 1e-4);
    dev.destroy().done();
    assert!((temperature_counts_to_celsius(0x836) - 1.02).abs() < 0.01);
}

#[test]
fn torn_temperature_read_is_outvoted() {
    // 0x85D mixes TEMP2 of one conversion with TEMP1 of another.
    let spi = mock(&[
        read(RD_TEMP2, &[0x07, 0x5D]),
        read(RD_TEMP2, &[0x08, 0x5D]),
        read(RD_TEMP2, &[0x07, 0x5E]),
    ]);
    let mut dev = driver(spi);
    assert_eq!(dev.temperature_counts().unwrap(), 0x75E);
    dev.destroy().done();
}

#[test]
fn bus_errors_are_wrapped() {
    assert_eq!(
        Adxl355::new(FailingSpi, Config::default()).unwrap_err(),
        Error::Bus(ErrorKind::Other)
    );
    let mut dev = driver(FailingSpi);
    let mut out = [[0; 3]; 2];
    assert_eq!(dev.read_fifo(&mut out), Err(Error::Bus(ErrorKind::Other)));
    assert_eq!(dev.take_overrun(), Err(Error::Bus(ErrorKind::Other)));
    assert_eq!(dev.temperature_c(), Err(Error::Bus(ErrorKind::Other)));
}
