//! Band RMS from a Hann-windowed real FFT.
//!
//! Faults show up as energy in particular frequency bands: imbalance at the
//! shaft speed, bearing impacts at the housing resonance, a stiffness loss as
//! a modal peak leaving its band. The band RMS is scaled so that, by
//! Parseval, a sine of amplitude A inside a band reads A/sqrt(2) there and the
//! bands together add up to the signal's RMS.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

pub struct BandSpectrum {
    fft: Arc<dyn RealToComplex<f64>>,
    window_fn: Vec<f64>,
    window_power: f64,
    input: Vec<f64>,
    output: Vec<Complex<f64>>,
    scratch: Vec<Complex<f64>>,
    sample_rate_hz: f64,
}

impl BandSpectrum {
    /// Plans an FFT of `len` samples (any length; powers of two are fastest).
    pub fn new(len: usize, sample_rate_hz: f64) -> Self {
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(len);
        let window_fn: Vec<f64> = (0..len)
            .map(|i| {
                let x = std::f64::consts::TAU * i as f64 / len as f64;
                0.5 - 0.5 * x.cos()
            })
            .collect();
        let window_power = window_fn.iter().map(|w| w * w).sum();
        BandSpectrum {
            input: fft.make_input_vec(),
            output: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            fft,
            window_fn,
            window_power,
            sample_rate_hz,
        }
    }

    pub fn len(&self) -> usize {
        self.window_fn.len()
    }

    pub fn is_empty(&self) -> bool {
        self.window_fn.is_empty()
    }

    /// Transforms `xs` (mean removed); the band and peak queries below read
    /// the result. `xs` must have the planned length.
    pub fn transform(&mut self, xs: &[f32], mean: f64) {
        assert_eq!(
            xs.len(),
            self.len(),
            "window length differs from the FFT plan"
        );
        for ((dst, &x), w) in self.input.iter_mut().zip(xs).zip(&self.window_fn) {
            *dst = (x as f64 - mean) * w;
        }
        self.fft
            .process_with_scratch(&mut self.input, &mut self.output, &mut self.scratch)
            .expect("buffers come from the plan");
    }

    /// Frequency of the strongest spectral line within `[lo, hi)` Hz of the
    /// last transform, refined between bins by fitting a parabola to the log
    /// power of the peak bin and its neighbours (accurate to a few percent of
    /// a bin for a Hann window).
    pub fn peak_frequency(&self, (lo, hi): (f64, f64)) -> f64 {
        let bin_hz = self.sample_rate_hz / self.len() as f64;
        let first = ((lo / bin_hz).ceil() as usize).max(1);
        let last = ((hi / bin_hz).ceil() as usize).min(self.output.len() - 1);
        let power = |k: usize| self.output[k].norm_sqr().max(f64::MIN_POSITIVE);
        let Some(k) = (first..last).max_by(|&a, &b| power(a).total_cmp(&power(b))) else {
            return f64::NAN;
        };
        let (a, b, c) = (power(k - 1).ln(), power(k).ln(), power(k + 1).ln());
        let curvature = a - 2.0 * b + c;
        let offset = if curvature < 0.0 {
            (0.5 * (a - c) / curvature).clamp(-0.5, 0.5)
        } else {
            0.0
        };
        (k as f64 + offset) * bin_hz
    }

    /// RMS within each `[lo, hi)` band in Hz of the last transform.
    pub fn band_rms(&self, bands_hz: &[(f64, f64)]) -> Vec<f64> {
        let n = self.len();
        let bin_hz = self.sample_rate_hz / n as f64;
        let nyquist_bin = n / 2;
        let scale = 1.0 / (n as f64 * self.window_power);
        bands_hz
            .iter()
            .map(|&(lo, hi)| {
                let first = (lo / bin_hz).ceil().max(1.0) as usize;
                let last = ((hi / bin_hz).ceil() as usize).min(nyquist_bin + 1);
                let power: f64 = (first..last)
                    .map(|k| {
                        // Bins other than DC and Nyquist stand for both signs.
                        let one_sided = if 2 * k == n { 1.0 } else { 2.0 };
                        one_sided * self.output[k].norm_sqr()
                    })
                    .sum();
                (power * scale).sqrt()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::TAU;

    fn tone(freq: f64, amp: f64, fs: f64, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (amp * (TAU * freq * i as f64 / fs).sin()) as f32)
            .collect()
    }

    #[test]
    fn sine_reads_its_rms_in_its_band_only() {
        let fs = 5120.0;
        let n = 5120;
        let xs = tone(150.0, 0.5, fs, n);
        let mut s = BandSpectrum::new(n, fs);
        let bands = [(10.0, 100.0), (100.0, 500.0), (500.0, 1000.0)];
        s.transform(&xs, 0.0);
        let rms = s.band_rms(&bands);
        let expected = 0.5 / 2f64.sqrt();
        assert!((rms[1] - expected).abs() < 1e-3 * expected, "{rms:?}");
        assert!(rms[0] < 1e-6 && rms[2] < 1e-6, "{rms:?}");
    }

    #[test]
    fn bands_covering_the_spectrum_add_up_to_the_total_rms() {
        let fs = 100.0;
        let n = 2048;
        // Two tones off bin centres: leakage stays inside the covering bands.
        let a = tone(3.91, 1e-3, fs, n);
        let b = tone(12.57, 4e-4, fs, n);
        let xs: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
        let mut s = BandSpectrum::new(n, fs);
        s.transform(&xs, 0.0);
        let rms = s.band_rms(&[(0.0, 8.0), (8.0, 50.1)]);
        let total = (rms[0].powi(2) + rms[1].powi(2)).sqrt();
        let expected = ((1e-3f64.powi(2) + 4e-4f64.powi(2)) / 2.0).sqrt();
        assert!(
            (total - expected).abs() < 0.02 * expected,
            "{total} vs {expected}"
        );
        assert!((rms[0] - 1e-3 / 2f64.sqrt()).abs() < 0.02e-3, "{rms:?}");
    }

    #[test]
    fn mean_is_removed_before_the_transform() {
        let xs = vec![1.0f32; 1024];
        let mut s = BandSpectrum::new(1024, 1000.0);
        s.transform(&xs, 1.0);
        let rms = s.band_rms(&[(0.0, 500.0)]);
        assert!(rms[0] < 1e-9, "{rms:?}");
    }

    #[test]
    fn peak_frequency_is_found_between_bins() {
        let (fs, n) = (100.0, 2048);
        // Bins are 0.0488 Hz apart; these tones fall between them.
        for f in [3.38, 3.91, 4.02] {
            let xs: Vec<f32> = tone(f, 1e-3, fs, n)
                .iter()
                .zip(tone(9.8, 2e-3, fs, n))
                .map(|(a, b)| a + b)
                .collect();
            let mut s = BandSpectrum::new(n, fs);
            s.transform(&xs, 0.0);
            let got = s.peak_frequency((2.5, 4.5));
            assert!((got - f).abs() < 0.005, "{f} Hz read as {got}");
        }
    }
}
