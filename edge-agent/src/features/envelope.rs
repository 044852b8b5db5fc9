//! Envelope (demodulated) spectrum: how bearing defects are seen.
//!
//! A spall is struck at a defect frequency (BPFO, BPFI, BSF, FTF); each
//! strike rings the structure at kilohertz. The defect frequency is then not
//! in the raw spectrum but in the *envelope* of the band where the ringing
//! is. The envelope is the magnitude of the analytic signal of that band,
//! computed here from the bins of the window's FFT that the periodogram
//! already made: the band's bins, shifted to baseband and inverse-transformed
//! at a reduced size, give the analytic signal at a decimated rate; its
//! magnitude is the envelope, whose own small FFT is the envelope spectrum.
//! One extra inverse and one extra forward FFT, both of the band's size
//! rather than the window's, and in single precision: an envelope level is
//! read to a few digits, far above f32 rounding (about 1e-7 of the largest
//! bin), and f32 transforms take half the memory and vectorise twice as wide.

use std::sync::Arc;

use realfft::RealToComplex;
use realfft::num_complex::Complex;
use rustfft::Fft;

use super::fft_pool;
use super::spectrum::BinView;

/// Widest band demodulated by default: the extra FFTs scale with it.
pub const DEFAULT_MAX_BAND_HZ: f64 = 2000.0;

pub struct EnvelopeSpectrum {
    window_len: usize,
    bin_hz: f64,
    first_bin: usize,
    band_bins: usize,
    size: usize,
    inverse: Arc<dyn Fft<f32>>,
    forward: Arc<dyn RealToComplex<f32>>,
}

impl EnvelopeSpectrum {
    /// For windows of `window_len` samples at `sample_rate_hz`, demodulating
    /// the band `[lo, hi)` Hz.
    pub fn new(window_len: usize, sample_rate_hz: f64, (lo, hi): (f64, f64)) -> Self {
        let bin_hz = sample_rate_hz / window_len as f64;
        let nyquist_bin = window_len / 2;
        let first_bin = ((lo / bin_hz).ceil() as usize).clamp(1, nyquist_bin);
        let last_bin = ((hi / bin_hz).ceil() as usize).clamp(first_bin + 1, nyquist_bin + 1);
        let band_bins = last_bin - first_bin;
        // The decimated analytic signal needs at least one sample per band
        // bin; a power of two keeps the extra FFTs cheap.
        let size = band_bins.next_power_of_two().max(64);
        EnvelopeSpectrum {
            window_len,
            bin_hz,
            first_bin,
            band_bins,
            size,
            inverse: fft_pool::inverse_plan_f32(size),
            forward: fft_pool::real_plan_f32(size),
        }
    }

    /// The demodulated band in Hz.
    pub fn band_hz(&self) -> (f64, f64) {
        (
            self.first_bin as f64 * self.bin_hz,
            (self.first_bin + self.band_bins) as f64 * self.bin_hz,
        )
    }

    /// Computes the envelope spectrum from the Hann-windowed FFT of the
    /// window (as a `Periodogram` makes it) and
    /// returns, for each of `freqs`, the largest envelope amplitude (in the
    /// signal's unit) within `freq * (1 +/- tolerance)`, widened to at least
    /// +/-1.5 bins (0 beyond the envelope spectrum).
    pub fn amplitudes_at<const N: usize>(
        &self,
        bins: &BinView<'_>,
        freqs: [f64; N],
        tolerance: f64,
    ) -> [f64; N] {
        self.with_spectrum(bins, |spectrum| {
            // Only the bins around the requested frequencies are turned into
            // amplitudes.
            let m = self.size as f64;
            freqs.map(|f| {
                let (lo, hi) = self.bins_near(f, tolerance, spectrum.len());
                let largest = spectrum[lo..=hi]
                    .iter()
                    .fold(0.0f32, |a, z| a.max(z.norm_sqr()));
                4.0 * (largest as f64).sqrt() / m
            })
        })
    }

    /// Runs `read` on the envelope amplitude spectrum (bin width as the
    /// window's FFT).
    pub fn with_amplitudes<R>(&self, bins: &BinView<'_>, read: impl FnOnce(&[f64]) -> R) -> R {
        let m = self.size as f64;
        self.with_spectrum(bins, |spectrum| {
            // The envelope carries the window's Hann taper (sum M/2 over M
            // samples), so a modulation of amplitude a reads |E| = a M / 4.
            let amplitude: Vec<f64> = spectrum
                .iter()
                .map(|z| 4.0 * (z.norm_sqr() as f64).sqrt() / m)
                .collect();
            read(&amplitude)
        })
    }

    /// Runs `read` on the complex spectrum of the envelope.
    fn with_spectrum<R>(&self, bins: &BinView<'_>, read: impl FnOnce(&[Complex<f32>]) -> R) -> R {
        assert_eq!(
            bins.window_len(),
            self.window_len,
            "window length differs from the envelope plan"
        );
        let scale = 2.0 / self.window_len as f64;
        fft_pool::with_envelope_buffers(self.size, &self.inverse, &self.forward, |b| {
            let (band, rest) = b.analytic.split_at_mut(self.band_bins);
            bins.windowed_into(self.first_bin, scale, band);
            rest.fill(Complex::default());
            self.inverse
                .process_with_scratch(&mut b.analytic, &mut b.inverse_scratch);
            for (e, z) in b.envelope.iter_mut().zip(&b.analytic) {
                *e = z.norm_sqr().sqrt();
            }
            self.forward
                .process_with_scratch(&mut b.envelope, &mut b.spectrum, &mut b.forward_scratch)
                .expect("buffers come from the plan");
            // The envelope's mean only lands in bin 0: drop it there rather
            // than subtracting it from every sample.
            b.spectrum[0] = Complex::default();
            read(&b.spectrum)
        })
    }

    /// Bins within `freq * (1 +/- tolerance)`, at least +/-1.5 bins, clamped
    /// to a spectrum of `bins` bins.
    fn bins_near(&self, freq: f64, tolerance: f64, bins: usize) -> (usize, usize) {
        let half_width = (freq * tolerance).max(1.5 * self.bin_hz);
        let hi = (((freq + half_width) / self.bin_hz).floor() as usize).min(bins - 1);
        let lo = (((freq - half_width) / self.bin_hz).ceil().max(1.0) as usize).min(hi);
        (lo, hi)
    }
}

#[cfg(test)]
mod tests {
    use super::super::spectrum::Periodogram;
    use super::*;
    use std::f64::consts::TAU;

    /// Envelope amplitudes of `xs` at `freqs` (2 % tolerance).
    fn envelope_at<const N: usize>(
        xs: &[f32],
        fs: f64,
        band: (f64, f64),
        freqs: [f64; N],
    ) -> [f64; N] {
        let p = Periodogram::new(xs.len(), fs);
        let e = EnvelopeSpectrum::new(xs.len(), fs, band);
        p.analyze(xs, 0.0, |s| e.amplitudes_at(s, freqs, 0.01))
    }

    #[test]
    fn modulation_amplitude_and_rate_are_recovered() {
        // 0.2 g carrier at 1500 Hz, modulated 50 % at 30 Hz: the envelope
        // swings by 0.1 g at 30 Hz.
        let fs = 5120.0;
        let xs: Vec<f32> = (0..5120)
            .map(|i| {
                let t = i as f64 / fs;
                (0.2 * (1.0 + 0.5 * (TAU * 30.0 * t).cos()) * (TAU * 1500.0 * t).sin()) as f32
            })
            .collect();
        let [at, off] = envelope_at(&xs, fs, (1000.0, 2000.0), [30.0, 47.0]);
        assert!((at - 0.1).abs() < 0.01, "amplitude at 30 Hz: {at}");
        assert!(off < 0.01 * at, "{off}");
    }

    #[test]
    fn an_impulse_train_shows_at_its_rate_not_elsewhere() {
        // Impacts at 87.3 Hz ringing a 1.8 kHz resonance, plus noise-free
        // shaft lines that must not appear in the envelope.
        let fs = 5120.0;
        let n = 5120;
        let period = fs / 87.3;
        let mut xs = vec![0f32; n];
        let mut next = 0.0;
        while (next as usize) < n {
            let start = next as usize;
            for (j, x) in xs[start..].iter_mut().enumerate().take(200) {
                let t = j as f64 / fs;
                *x += (0.5 * (-400.0 * t).exp() * (TAU * 1800.0 * t).sin()) as f32;
            }
            next += period;
        }
        for (i, x) in xs.iter_mut().enumerate() {
            *x += (0.05 * (TAU * 24.7 * i as f64 / fs).sin()) as f32;
        }
        let [line, off, second] = envelope_at(&xs, fs, (1000.0, 2500.0), [87.3, 61.0, 174.6]);
        assert!(line > 10.0 * off, "line {line}, elsewhere {off}");
        // And at its second harmonic.
        assert!(second > 5.0 * off, "{second} vs {off}");
    }
}
