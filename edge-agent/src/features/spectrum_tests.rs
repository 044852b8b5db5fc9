use super::*;
use std::f64::consts::TAU;

fn tone(freq: f64, amp: f64, fs: f64, n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (amp * (TAU * freq * i as f64 / fs).sin()) as f32)
        .collect()
}

fn add(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

#[test]
fn sine_reads_its_rms_in_its_band_only() {
    let (fs, n) = (5120.0, 5120);
    let p = Periodogram::new(n, fs);
    p.analyze(&tone(150.0, 0.5, fs, n), 0.0, |s| {
        let expected = 0.5 / 2f64.sqrt();
        assert!((s.band_rms(100.0, 500.0) - expected).abs() < 1e-3 * expected);
        assert!(s.band_rms(10.0, 100.0) < 1e-6 && s.band_rms(500.0, 1000.0) < 1e-6);
    });
}

#[test]
fn bands_covering_the_spectrum_add_up_to_the_total_rms() {
    let (fs, n) = (100.0, 2048);
    // Two tones off bin centres: leakage stays inside the covering bands.
    let xs = add(&tone(3.91, 1e-3, fs, n), &tone(12.57, 4e-4, fs, n));
    let total = Periodogram::new(n, fs).analyze(&xs, 0.0, |s| {
        (s.band_rms(0.0, 8.0).powi(2) + s.band_rms(8.0, 50.1).powi(2)).sqrt()
    });
    let expected = ((1e-3f64.powi(2) + 4e-4f64.powi(2)) / 2.0).sqrt();
    assert!(
        (total - expected).abs() < 0.02 * expected,
        "{total} vs {expected}"
    );
}

#[test]
fn velocity_of_a_sine_is_its_acceleration_over_omega() {
    // 0.1 g at 50 Hz: velocity amplitude 0.1 * 9.80665 / (2 pi 50) m/s.
    let (fs, n) = (5120.0, 5120);
    let p = Periodogram::new(n, fs);
    let expected = 0.1 * G0 / (TAU * 50.0) * 1000.0 / 2f64.sqrt();
    let got = p.analyze(&tone(50.0, 0.1, fs, n), 0.0, |s| {
        s.velocity_rms_mm_s(10.0, 1000.0)
    });
    assert!(
        (got - expected).abs() < 0.01 * expected,
        "{got} vs {expected} mm/s"
    );
    // Outside the 10-1000 Hz band it does not count.
    let out = p.analyze(&tone(1500.0, 0.1, fs, n), 0.0, |s| {
        s.velocity_rms_mm_s(10.0, 1000.0)
    });
    assert!(out < 0.01);
}

#[test]
fn mean_is_removed_before_the_transform() {
    let p = Periodogram::new(1024, 1000.0);
    assert!(p.analyze(&[1.0f32; 1024], 1.0, |s| s.band_rms(0.0, 500.0)) < 1e-9);
}

#[test]
fn peak_frequency_is_found_between_bins() {
    let (fs, n) = (100.0, 2048);
    for f in [3.38, 3.91, 4.02] {
        let xs = add(&tone(f, 1e-3, fs, n), &tone(9.8, 2e-3, fs, n));
        let got = Periodogram::new(n, fs).analyze(&xs, 0.0, |s| s.peak_frequency(2.5, 4.5));
        assert!((got - f).abs() < 0.005, "{f} Hz read as {got}");
    }
}

#[test]
fn a_band_edge_on_the_flank_of_stronger_energy_outside_is_not_the_peak() {
    // Strong energy just below the band (traffic under a bridge's first
    // mode) makes the band's lowest bin its largest; the mode inside the
    // band is weaker but is a line.
    let (fs, n) = (100.0, 2048);
    let xs = add(&tone(2.3, 2e-2, fs, n), &tone(3.9, 1e-3, fs, n));
    let s = Periodogram::new(n, fs).analyze(&xs, 0.0, |s| {
        let edge = s.bin_range(2.5, 4.6).start;
        assert!(
            s.power(edge) > s.power(edge + 40),
            "the flank dominates the band"
        );
        s.peak_frequency(2.5, 4.6)
    });
    assert!((s - 3.9).abs() < 0.01, "{s}");
    // With no line in the band (a falling flank), its strongest bin, the
    // first, is still returned.
    let flank = PowerSpectrum {
        power: (0..100).map(|k| 1.0 / (1.0 + k as f64)).collect(),
        bin_hz: 0.1,
    };
    let at = flank.peak_frequency(2.5, 4.0);
    assert!((at - 2.5).abs() < 1e-9, "{at}");
    // A line in the same band is preferred over the flank.
    let mut lined = flank.clone();
    lined.power[33] = 0.1;
    let at = lined.peak_frequency(2.5, 4.0);
    assert!((at - 3.3).abs() < 0.05, "{at}");
}

#[test]
fn welch_keeps_the_mean_square_and_averages_segments() {
    let (fs, n) = (100.0, 2048);
    let xs = tone(3.91, 1e-3, fs, n);
    let mut w = Welch::new(1024, fs);
    let s = w.estimate(&xs, 0.0);
    assert!((s.bin_hz - 100.0 / 1024.0).abs() < 1e-12);
    let rms = s.band_rms(2.0, 6.0);
    assert!((rms - 1e-3 / 2f64.sqrt()).abs() < 0.02e-3, "{rms}");
    let f = s.peak_frequency(2.5, 4.5);
    assert!((f - 3.91).abs() < 0.01, "{f}");
}

#[test]
fn window_applied_to_the_bins_equals_the_windowed_transform() {
    // A direct DFT of the time-windowed samples, bin by bin, for even and
    // odd lengths (the edges use conjugate symmetry differently).
    for n in [16usize, 17, 30, 31] {
        let xs: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 23) as f32 * 0.1 - 1.0)
            .collect();
        Periodogram::new(n, 1.0).analyze(&xs, 0.0, |view| {
            let mut batch = vec![Complex::<f64>::default(); n / 2 + 1];
            view.windowed_into(0, 1.0, &mut batch);
            let mut interior = vec![Complex::<f64>::default(); n / 2 - 1];
            view.windowed_into(1, 1.0, &mut interior);
            for k in 0..=n / 2 {
                let direct: Complex<f64> = (0..n)
                    .map(|i| {
                        let w = 0.5 - 0.5 * (TAU * i as f64 / n as f64).cos();
                        let phase = -TAU * (k * i) as f64 / n as f64;
                        Complex::new(phase.cos(), phase.sin()) * (xs[i] as f64 * w)
                    })
                    .sum();
                for (how, got) in [("bin", view.windowed(k)), ("batch", batch[k])] {
                    assert!(
                        (got - direct).norm() < 1e-9,
                        "n {n} k {k} {how}: {got} vs {direct}"
                    );
                }
                if (1..n / 2).contains(&k) {
                    assert!(
                        (interior[k - 1] - direct).norm() < 1e-9,
                        "n {n} k {k} interior"
                    );
                }
            }
        });
    }
}
