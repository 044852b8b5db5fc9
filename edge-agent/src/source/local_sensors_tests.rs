use super::*;
use crate::features::AssetAnalysis;
use crate::source::sim_sensors::{FIFO_SETS, simulated_sensors};
use crate::source::{SimConfig, SourceConfig};
use protocol::AssetKind;

fn pump(seed: u64) -> Box<dyn Source> {
    SourceConfig::Sim(SimConfig {
        seed,
        speed: 0.0,
        sample_rate_hz: Some(4000.0),
        duration_s: None,
        fault: None,
    })
    .open(AssetKind::Pump, 0, &AssetAnalysis::default())
    .unwrap()
}

/// Polls until `n` blocks came (bounded by a deadline).
fn blocks(source: &mut impl Source, n: usize) -> Vec<super::super::Block> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        if let SourcePoll::Block(b) = source.poll().unwrap() {
            out.push(b);
        }
    }
    out
}

#[test]
fn the_sampling_loop_delivers_the_sensor_signal_as_contiguous_blocks() {
    let (accel, thermo) = simulated_sensors(pump(42), 8.0, 1.0, FIFO_SETS);
    let g_per_count = accel.g_per_count() as f64;
    let mut source = DriverSource::new(accel, thermo, channel::ACCEL_Z, 8).unwrap();
    assert_eq!(source.sample_rate_hz(), 4000.0);
    let got = blocks(&mut source, 6);
    assert_eq!(got.len(), 6, "blocks in time");
    // 128 samples at 4 kHz per frame, back to back (the loop re-reads the
    // clock per frame: up to one sample period of jitter).
    for w in got.windows(2) {
        let step = w[1].start_us as i64 - w[0].start_us as i64;
        assert!((step - 32_000).abs() <= 250, "step {step} us");
    }
    // The samples are the simulator's, quantised to the ADXL355 counts.
    let mut reference = pump(42);
    let expected: Vec<f32> = (0..3)
        .flat_map(|_| reference.poll().unwrap().block().vibration)
        .collect();
    let received: Vec<f32> = got.iter().flat_map(|b| b.vibration.clone()).collect();
    for (i, (r, e)) in received.iter().zip(&expected).enumerate() {
        assert!(
            ((r - e) as f64).abs() <= 0.51 * g_per_count + 1e-6,
            "sample {i}: {r} vs {e}"
        );
    }
    // Temperature readings arrive with the blocks.
    let temps: Vec<f32> = got.iter().flat_map(|b| b.temperature.clone()).collect();
    assert!(
        !temps.is_empty() && temps.iter().all(|t| (30.0..55.0).contains(t)),
        "{temps:?}"
    );
    assert_eq!(source.sequence_gaps(), 0);
}

#[test]
fn a_fifo_overrun_becomes_a_sequence_gap_not_spliced_data() {
    let (accel, thermo) = simulated_sensors(pump(43), 8.0, 1.0, FIFO_SETS);
    let mut source = DriverSource::new(accel, thermo, channel::ACCEL_Z, 8).unwrap();
    assert_eq!(blocks(&mut source, 1).len(), 1);
    // Do not read for 50 ms: 200 samples arrive, the FIFO holds 32.
    std::thread::sleep(Duration::from_millis(50));
    let after = blocks(&mut source, 3);
    assert_eq!(after.len(), 3);
    assert!(source.sequence_gaps() >= 1, "overrun not reported");
}

#[test]
fn local_sensor_settings_are_checked() {
    let mut c = LocalSensorsConfig {
        spi: default_spi(),
        spi_hz: default_spi_hz(),
        i2c: default_i2c(),
        tmp117_address: 0x48,
        range_g: 8,
        sample_rate_hz: 4000.0,
        axis: 'z',
    };
    assert!(c.validate().is_ok());
    c.sample_rate_hz = 5120.0;
    assert!(
        c.validate()
            .unwrap_err()
            .contains("not an ADXL355 output data rate")
    );
    c.sample_rate_hz = 125.0;
    c.axis = 'w';
    assert!(c.validate().unwrap_err().contains("x, y or z"));
    c.axis = 'x';
    c.range_g = 3;
    assert!(c.validate().is_err());
}

#[cfg(not(feature = "linux-hal"))]
#[test]
fn without_the_feature_opening_says_how_to_get_it() {
    let c = LocalSensorsConfig {
        spi: default_spi(),
        spi_hz: default_spi_hz(),
        i2c: default_i2c(),
        tmp117_address: 0x48,
        range_g: 8,
        sample_rate_hz: 4000.0,
        axis: 'z',
    };
    let err = open(&c).err().unwrap().to_string();
    assert!(err.contains("--features linux-hal"), "{err}");
}
