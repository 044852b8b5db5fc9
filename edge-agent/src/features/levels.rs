//! The band levels of a machine window, from one pass over its spectrum.
//!
//! Velocity RMS (10-1000 Hz) and the band RMS levels cover overlapping bins.
//! Reading each level separately computes the windowed power of a bin once
//! per level that covers it, and integrating to velocity divides every bin
//! by its squared frequency. Here every bin's power is computed once into a
//! buffer, each band is then a sum over a slice of it, and the velocity is a
//! weighted sum; both sums run in four lanes at a time.

use std::cell::RefCell;
use std::ops::Range;

use super::spectrum::{G0, Spectrum};

thread_local! {
    /// Bin powers of the current window, reused from window to window by the
    /// scoring thread (a few thousand values).
    static POWERS: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

/// RMS of each of `bands_hz` (appended to `levels`, in the signal's unit)
/// and the returned velocity RMS in mm/s over `velocity_hz`, of an
/// acceleration spectrum in g. Equal, up to rounding, to
/// [`Spectrum::band_rms`] and [`Spectrum::velocity_rms_mm_s`].
pub fn band_levels<S: Spectrum>(
    spectrum: &S,
    bands_hz: &[(f64, f64)],
    velocity_hz: (f64, f64),
    levels: &mut Vec<f64>,
) -> f64 {
    let velocity = spectrum.bin_range(velocity_hz.0, velocity_hz.1);
    let bands: Vec<Range<usize>> = bands_hz
        .iter()
        .map(|&(lo, hi)| spectrum.bin_range(lo, hi))
        .collect();
    let first = bands
        .iter()
        .map(|r| r.start)
        .fold(velocity.start, usize::min);
    let end = bands.iter().map(|r| r.end).fold(velocity.end, usize::max);
    POWERS.with_borrow_mut(|powers| {
        powers.clear();
        powers.resize(end - first, 0.0);
        spectrum.powers_into(first..end, powers);
        let slice = |r: &Range<usize>| &powers[r.start - first..r.end - first];
        levels.extend(bands.iter().map(|r| lane_sum(slice(r)).sqrt()));
        // (g0 * 1000 / (2 pi k bin_hz))^2 = c / k^2.
        let c = (G0 * 1000.0 / (std::f64::consts::TAU * spectrum.bin_hz())).powi(2);
        (c * inverse_square_weighted_sum(slice(&velocity), velocity.start)).sqrt()
    })
}

/// Lanes of the sums below: one chain of dependent additions would wait on
/// each addition's latency; four independent ones overlap and vectorise.
const LANES: usize = 4;

/// `sum(p)`, in [`LANES`] independent lanes.
fn lane_sum(p: &[f64]) -> f64 {
    let mut lanes = [0.0f64; LANES];
    let chunks = p.chunks_exact(LANES);
    let tail: f64 = chunks.remainder().iter().sum();
    for chunk in chunks {
        for (lane, &p) in lanes.iter_mut().zip(chunk) {
            *lane += p;
        }
    }
    lanes.iter().sum::<f64>() + tail
}

/// `sum(p[i] / (k0 + i)^2)`, in [`LANES`] independent lanes.
fn inverse_square_weighted_sum(p: &[f64], k0: usize) -> f64 {
    let mut lanes = [0.0f64; LANES];
    let chunks = p.chunks_exact(LANES);
    let rest = chunks.remainder();
    for (i, chunk) in chunks.enumerate() {
        let k = (k0 + i * LANES) as f64;
        for (j, (lane, &p)) in lanes.iter_mut().zip(chunk).enumerate() {
            let kj = k + j as f64;
            *lane += p / (kj * kj);
        }
    }
    let k_rest = k0 + p.len() - rest.len();
    let tail: f64 = rest
        .iter()
        .enumerate()
        .map(|(j, &p)| {
            let k = (k_rest + j) as f64;
            p / (k * k)
        })
        .sum();
    lanes.iter().sum::<f64>() + tail
}

#[cfg(test)]
mod tests {
    use super::super::spectrum::Periodogram;
    use super::*;

    #[test]
    fn one_pass_levels_equal_the_level_by_level_ones() {
        // A broadband, tonal signal; bands that overlap the velocity band,
        // leave gaps and reach the edges of the spectrum.
        let (fs, n) = (5120.0, 5120);
        let xs: Vec<f32> = (0..n)
            .map(|i| {
                let t = i as f64 / fs;
                let noise = ((i * 7919 + 13) % 101) as f64 / 101.0 - 0.5;
                (0.3 * (std::f64::consts::TAU * 157.0 * t).sin() + 0.05 * noise) as f32
            })
            .collect();
        let bands = [(0.0, 10.0), (10.0, 100.0), (150.0, 700.0), (1000.0, 2560.0)];
        for velocity_hz in [(10.0, 1000.0), (3.0, 7.0), (2000.0, 2560.0)] {
            Periodogram::new(n, fs).analyze(&xs, 0.0, |s| {
                let mut levels = Vec::new();
                let velocity = band_levels(s, &bands, velocity_hz, &mut levels);
                let expected = s.velocity_rms_mm_s(velocity_hz.0, velocity_hz.1);
                assert!(
                    (velocity - expected).abs() <= 1e-12 * expected,
                    "{velocity} vs {expected}"
                );
                for (got, &(lo, hi)) in levels.iter().zip(&bands) {
                    let want = s.band_rms(lo, hi);
                    assert!(
                        (got - want).abs() <= 1e-12 * want,
                        "{lo}-{hi}: {got} vs {want}"
                    );
                }
                assert_eq!(levels.len(), bands.len());
            });
        }
    }
}
