//! Power spectra and what is read off them.
//!
//! Faults show up at frequencies: imbalance at the shaft speed, bearing
//! impacts at the housing resonance, a stiffness loss as a modal peak moving
//! down. A [`PowerSpectrum`] holds the one-sided spectrum of a window scaled
//! so that, by Parseval, the bins of a band add up to the band's mean square:
//! a sine of amplitude A inside a band reads A/sqrt(2) there. It is estimated
//! either from one Hann-windowed FFT of the whole window ([`Periodogram`],
//! which also keeps the complex bins for the envelope analysis) or by
//! averaging overlapping segments ([`Welch`], steadier for the random
//! excitation of a bridge).

use std::sync::Arc;

use realfft::num_complex::Complex;
use wide::f64x2;

use super::fft_pool::{self, RealPlan};
use super::scan::{Scan, scan_and_copy};

/// Standard gravity, m/s^2 per g.
pub const G0: f64 = 9.80665;

/// A one-sided power spectrum: `power(k)` is the mean square in bin `k`.
pub trait Spectrum {
    fn bins(&self) -> usize;
    fn power(&self, k: usize) -> f64;
    fn bin_hz(&self) -> f64;

    /// Bins whose centre lies in `[lo, hi)` Hz, DC excluded.
    fn bin_range(&self, lo: f64, hi: f64) -> std::ops::Range<usize> {
        let first = ((lo / self.bin_hz()).ceil() as usize).max(1);
        let last = ((hi / self.bin_hz()).ceil() as usize).min(self.bins());
        first..last.max(first)
    }

    /// `(sum of power(k), sum of power(k) / k^2)` over `range`; the second
    /// only if `inverse_square`, else 0. Implementations may override it
    /// with a faster loop; band and velocity levels all go through it.
    fn power_sums(&self, range: std::ops::Range<usize>, inverse_square: bool) -> (f64, f64) {
        power_sums_by_bin(self, range, inverse_square)
    }

    /// RMS within `[lo, hi)` Hz, in the signal's unit.
    fn band_rms(&self, lo: f64, hi: f64) -> f64 {
        self.power_sums(self.bin_range(lo, hi), false).0.sqrt()
    }

    /// RMS velocity in mm/s within `[lo, hi)` Hz of an acceleration
    /// spectrum in g: each bin is integrated by dividing by 2*pi*f.
    fn velocity_rms_mm_s(&self, lo: f64, hi: f64) -> f64 {
        let weighted = self.power_sums(self.bin_range(lo, hi), true).1;
        (velocity_scale(self.bin_hz()) * weighted).sqrt()
    }

    /// Frequency of the strongest line within `[lo, hi)` Hz, refined between
    /// bins by a parabola through the log power of the peak bin and its
    /// neighbours (a few percent of a bin for a Hann window). A line is a
    /// local maximum (above its neighbours, which may lie outside the band):
    /// the band's edge bin is only the flank of something beside the band,
    /// such as low-frequency traffic energy below a bridge's first mode, so
    /// it is taken only if the band holds no maximum at all. NaN if the
    /// band holds no bin.
    fn peak_frequency(&self, lo: f64, hi: f64) -> f64 {
        let p = |k: usize| self.power(k).max(f64::MIN_POSITIVE);
        let is_line =
            |k: usize| k > 0 && k + 1 < self.bins() && p(k) > p(k - 1) && p(k) >= p(k + 1);
        let strongest =
            |bins: &mut dyn Iterator<Item = usize>| bins.max_by(|&a, &b| p(a).total_cmp(&p(b)));
        let range = self.bin_range(lo, hi);
        let Some(k) = strongest(&mut range.clone().filter(|&k| is_line(k)))
            .or_else(|| strongest(&mut range.clone()))
        else {
            return f64::NAN;
        };
        if k == 0 || k + 1 >= self.bins() {
            return k as f64 * self.bin_hz();
        }
        let (a, b, c) = (p(k - 1).ln(), p(k).ln(), p(k + 1).ln());
        let curvature = a - 2.0 * b + c;
        let offset = if curvature < 0.0 {
            (0.5 * (a - c) / curvature).clamp(-0.5, 0.5)
        } else {
            0.0
        };
        (k as f64 + offset) * self.bin_hz()
    }
}

/// `c` such that `c * power(k) / k^2` is bin `k`'s mean square velocity in
/// (mm/s)^2, for an acceleration spectrum in g with bins `bin_hz` wide:
/// each bin is integrated by dividing by 2*pi*f, f = k * bin_hz.
pub fn velocity_scale(bin_hz: f64) -> f64 {
    (G0 * 1000.0 / (std::f64::consts::TAU * bin_hz)).powi(2)
}

/// [`Spectrum::power_sums`] bin by bin.
fn power_sums_by_bin<S: Spectrum + ?Sized>(
    spectrum: &S,
    range: std::ops::Range<usize>,
    inverse_square: bool,
) -> (f64, f64) {
    let plain = range.clone().map(|k| spectrum.power(k)).sum();
    let weighted = if inverse_square {
        range.map(|k| spectrum.power(k) / (k * k) as f64).sum()
    } else {
        0.0
    };
    (plain, weighted)
}

/// An owned power spectrum (a Welch average).
#[derive(Debug, Clone, Default)]
pub struct PowerSpectrum {
    pub power: Vec<f64>,
    pub bin_hz: f64,
}

impl Spectrum for PowerSpectrum {
    fn bins(&self) -> usize {
        self.power.len()
    }
    fn power(&self, k: usize) -> f64 {
        self.power[k]
    }
    fn bin_hz(&self) -> f64 {
        self.bin_hz
    }
}

/// The spectrum of one Hann-windowed FFT, read straight off the complex
/// bins of the plain transform (nothing is copied).
///
/// The periodic Hann window is `0.5 - 0.25 e^(+i2pi n/N) - 0.25 e^(-i2pi n/N)`,
/// so the windowed transform is the three-tap convolution
/// `0.5 X[k] - 0.25 (X[k-1] + X[k+1])` of the plain one. Applying it to the
/// few thousand bins that features read is exact and costs far less than
/// multiplying every one of tens of thousands of samples by the window.
pub struct BinView<'a> {
    bins: &'a [Complex<f64>],
    n: usize,
    scale: f64,
    bin_hz: f64,
}

impl BinView<'_> {
    /// Bin `k` of the Hann-windowed transform (unscaled).
    #[inline]
    pub fn windowed(&self, k: usize) -> Complex<f64> {
        let bins = self.bins;
        if self.n < 2 {
            // A one-sample Hann window is zero.
            return Complex::default();
        }
        // Beyond the stored half, X[j] = conj(X[N - j]) for a real signal.
        let previous = if k == 0 { bins[1].conj() } else { bins[k - 1] };
        let next = if k + 1 < bins.len() {
            bins[k + 1]
        } else {
            bins[self.n - k - 1].conj()
        };
        bins[k] * 0.5 - (previous + next) * 0.25
    }

    /// Writes bins `first..first + out.len()` of the Hann-windowed transform,
    /// times `scale`, into `out` (in double or single precision).
    pub fn windowed_into<C: FromBin>(&self, first: usize, scale: f64, out: &mut [C]) {
        let end = first + out.len();
        if first >= 1 && end < self.bins.len() {
            // Both neighbours stored for every bin: one branch-free loop.
            let (half, quarter) = (f64x2::splat(0.5 * scale), f64x2::splat(0.25 * scale));
            for (o, b) in out.iter_mut().zip(self.bins[first - 1..end + 1].windows(3)) {
                let [re, im] =
                    (lanes(&b[1]) * half - (lanes(&b[0]) + lanes(&b[2])) * quarter).to_array();
                *o = C::from_bin(Complex::new(re, im));
            }
        } else {
            for (o, k) in out.iter_mut().zip(first..) {
                *o = C::from_bin(self.windowed(k) * scale);
            }
        }
    }

    /// Length of the transformed window, in samples.
    pub fn window_len(&self) -> usize {
        self.n
    }
}

impl Spectrum for BinView<'_> {
    fn bins(&self) -> usize {
        self.bins.len()
    }
    fn power(&self, k: usize) -> f64 {
        // Bins other than DC and Nyquist stand for both signs.
        let one_sided = if k == 0 || 2 * k == self.n { 1.0 } else { 2.0 };
        one_sided * self.windowed(k).norm_sqr() * self.scale
    }
    fn bin_hz(&self) -> f64 {
        self.bin_hz
    }
    fn power_sums(&self, range: std::ops::Range<usize>, inverse_square: bool) -> (f64, f64) {
        if range.is_empty() || range.start < 1 || range.end >= self.bins.len() {
            return power_sums_by_bin(self, range, inverse_square);
        }
        // Every bin has both neighbours stored and stands for both signs.
        // Bins are taken two at a time, real parts in one two-lane vector
        // and imaginary parts in another, so that the stencil, the squares,
        // the sums and the 1/k^2 weights each take one vector operation per
        // pair of bins.
        let neighbourhood = &self.bins[range.start - 1..range.end + 1];
        let (half, quarter) = (f64x2::splat(0.5), f64x2::splat(0.25));
        let (mut plain, mut weighted) = (f64x2::ZERO, f64x2::ZERO);
        let mut k = range.start as f64;
        for b in neighbourhood.windows(4).step_by(2).take(range.len() / 2) {
            let re = |i: usize| f64x2::new([b[i].re, b[i + 1].re]);
            let im = |i: usize| f64x2::new([b[i].im, b[i + 1].im]);
            let w_re = re(1) * half - (re(0) + re(2)) * quarter;
            let w_im = im(1) * half - (im(0) + im(2)) * quarter;
            let power = w_re * w_re + w_im * w_im;
            plain += power;
            if inverse_square {
                let ks = f64x2::new([k, k + 1.0]);
                weighted += power / (ks * ks);
            }
            k += 2.0;
        }
        let (mut plain, mut weighted) = (plain.reduce_add(), weighted.reduce_add());
        if range.len() % 2 == 1 {
            // The last bin of an odd count, on its own.
            let last = range.end - 1;
            let b = &self.bins[last - 1..last + 2];
            let w = lanes(&b[1]) * half - (lanes(&b[0]) + lanes(&b[2])) * quarter;
            let power = (w * w).reduce_add();
            plain += power;
            if inverse_square {
                weighted += power / (last * last) as f64;
            }
        }
        let scale = 2.0 * self.scale;
        (plain * scale, weighted * scale)
    }
}

/// A bin's real and imaginary parts as one two-lane vector.
#[inline]
fn lanes(z: &Complex<f64>) -> f64x2 {
    f64x2::new([z.re, z.im])
}

/// A complex number a bin can be written as.
pub trait FromBin {
    fn from_bin(z: Complex<f64>) -> Self;
}

impl FromBin for Complex<f64> {
    fn from_bin(z: Complex<f64>) -> Self {
        z
    }
}

impl FromBin for Complex<f32> {
    fn from_bin(z: Complex<f64>) -> Self {
        Complex::new(z.re as f32, z.im as f32)
    }
}

/// One Hann-windowed real FFT of a whole window.
pub struct Periodogram {
    plan: Arc<RealPlan>,
    sample_rate_hz: f64,
}

impl Periodogram {
    /// For windows of `len` samples (any length; small prime factors are
    /// fastest).
    pub fn new(len: usize, sample_rate_hz: f64) -> Self {
        Periodogram {
            plan: fft_pool::real_plan(len),
            sample_rate_hz,
        }
    }

    pub fn len(&self) -> usize {
        self.plan.len
    }

    pub fn is_empty(&self) -> bool {
        self.plan.len == 0
    }

    /// The view of the transform in `output`, as [`Self::analyze`] leaves it.
    fn view<'a>(&self, output: &'a [Complex<f64>]) -> BinView<'a> {
        let n = self.len();
        BinView {
            bins: output,
            n,
            scale: 1.0 / (n as f64 * self.plan.hann_power),
            bin_hz: self.sample_rate_hz / n as f64,
        }
    }

    /// Transforms `xs` after removing `mean` and lets `read` look at the
    /// spectrum; `xs` must have the planned length.
    pub fn analyze<R>(&self, xs: &[f32], mean: f64, read: impl FnOnce(&BinView<'_>) -> R) -> R {
        assert_eq!(
            xs.len(),
            self.len(),
            "window length differs from the FFT plan"
        );
        fft_pool::with_real_buffers(&self.plan, |b| {
            for (dst, &x) in b.input.iter_mut().zip(xs) {
                *dst = x as f64 - mean;
            }
            self.plan
                .fft
                .process_with_scratch(&mut b.input, &mut b.output, &mut b.scratch)
                .expect("buffers come from the plan");
            read(&self.view(&b.output))
        })
    }
}

impl Periodogram {
    /// Scans the window's samples (statistics and sensor facts, see
    /// [`super::scan::scan`]) and transforms them, then lets `read` look at
    /// both. The mean is not removed: with a Hann window it only touches
    /// the first two bins, which no feature reads.
    pub fn scan_and_analyze<R>(
        &self,
        xs: &[f32],
        clip_level: f64,
        read: impl FnOnce(&Scan, &BinView<'_>) -> R,
    ) -> R {
        assert_eq!(
            xs.len(),
            self.len(),
            "window length differs from the FFT plan"
        );
        fft_pool::with_real_buffers(&self.plan, |b| {
            let scan = scan_and_copy(xs, clip_level, &mut b.input);
            self.plan
                .fft
                .process_with_scratch(&mut b.input, &mut b.output, &mut b.scratch)
                .expect("buffers come from the plan");
            read(&scan, &self.view(&b.output))
        })
    }
}

/// Welch's method: the average of Hann-windowed periodograms of segments
/// overlapping by half. Averaging steadies the spectrum of a randomly
/// excited structure, so its modal peaks do not jump from window to window.
pub struct Welch {
    segment: Periodogram,
    hop: usize,
    spectrum: PowerSpectrum,
}

impl Welch {
    /// Segments of `segment_len` samples, advanced by half a segment.
    pub fn new(segment_len: usize, sample_rate_hz: f64) -> Self {
        Welch {
            segment: Periodogram::new(segment_len, sample_rate_hz),
            hop: (segment_len / 2).max(1),
            spectrum: PowerSpectrum {
                power: vec![0.0; segment_len / 2 + 1],
                bin_hz: sample_rate_hz / segment_len as f64,
            },
        }
    }

    /// Estimates the spectrum of `xs` (mean removed).
    pub fn estimate(&mut self, xs: &[f32], mean: f64) -> &PowerSpectrum {
        let len = self.segment.len();
        let power = &mut self.spectrum.power;
        power.iter_mut().for_each(|p| *p = 0.0);
        let mut count = 0;
        let mut start = 0;
        while start + len <= xs.len() {
            self.segment.analyze(&xs[start..start + len], mean, |s| {
                for (k, acc) in power.iter_mut().enumerate() {
                    *acc += s.power(k);
                }
            });
            count += 1;
            start += self.hop;
        }
        if count > 0 {
            power.iter_mut().for_each(|p| *p /= count as f64);
        }
        &self.spectrum
    }
}

#[cfg(test)]
#[path = "spectrum_tests.rs"]
mod tests;
