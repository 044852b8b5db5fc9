//! The band levels of a machine window, from one pass over its spectrum.
//!
//! Velocity RMS (10-1000 Hz) and the band RMS levels cover overlapping bins.
//! Reading each level separately computes the windowed power of a bin once
//! per level that covers it. Here the covered bins are cut into segments at
//! every band edge and each segment is summed once (weighted by 1/f^2 too
//! where velocity needs it); a level is then the sum of its segments. No
//! buffer is kept: each asset has its own scoring thread, and a per-thread
//! buffer of a few thousand bins would cost memory on every one.

use std::ops::Range;

use super::spectrum::{Spectrum, velocity_scale};

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
    let mut edges: Vec<usize> = bands
        .iter()
        .chain([&velocity])
        .flat_map(|r| [r.start, r.end])
        .collect();
    edges.sort_unstable();
    edges.dedup();
    let first = levels.len();
    levels.resize(first + bands.len(), 0.0);
    let mut velocity_power = 0.0;
    for segment in edges.windows(2).map(|e| e[0]..e[1]) {
        let covers = |r: &Range<usize>| r.start <= segment.start && segment.end <= r.end;
        let in_velocity = covers(&velocity);
        if !in_velocity && !bands.iter().any(covers) {
            continue;
        }
        let (plain, weighted) = spectrum.power_sums(segment.clone(), in_velocity);
        velocity_power += weighted;
        for (level, band) in levels[first..].iter_mut().zip(&bands) {
            if covers(band) {
                *level += plain;
            }
        }
    }
    for level in &mut levels[first..] {
        *level = level.sqrt();
    }
    (velocity_scale(spectrum.bin_hz()) * velocity_power).sqrt()
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
