//! One pass over a window's samples for everything that needs each sample.
//!
//! At tens of kilosamples per second, every pass over a window costs about
//! as much as a tenth of its FFT. The time-domain statistics and the sensor
//! checks (non-finite samples, clipping, a stuck output) all need every
//! sample once, so they share this single pass. (It walks the window in
//! blocks of a kilobyte. The portable build sweeps each block twice while
//! it sits in the L1 cache, which is nearly free, to keep each sweep's
//! accumulators in its sixteen 128-bit registers; on CPUs with AVX2 a
//! 256-bit build does it in one sweep, see `sweep_dispatch`.) A stuck output is screened for by the blocks whose samples
//! are all equal, which the extremes needed for the peak already show. The
//! moments are accumulated around the first sample, which keeps them exact
//! enough whatever the DC offset (gravity on a vertical axis), and converted
//! to central moments at the end.

use wide::f32x8;

use super::stats::Stats;

/// What one pass over the samples found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scan {
    pub len: usize,
    pub stats: Stats,
    /// Samples that are NaN or infinite (excluded from the statistics).
    pub non_finite: usize,
    /// Samples at or beyond the clip level in magnitude.
    pub clipped: usize,
    /// Whole aligned blocks of [`BLOCK`] samples in which every sample is
    /// the same. Any run of [`FLAT_SCREEN_RUN`] or more identical samples
    /// covers one, so none rules such a run out without looking for it (see
    /// [`longest_run`]).
    pub flat_blocks: usize,
}

/// Samples summed in single precision before the block's sums are added in
/// double precision: short enough that f32 rounding stays far below what
/// any feature resolves, long enough to keep the vector loop busy.
pub const BLOCK: usize = 256;
/// Lanes of the vector type: the sums are one long dependency chain per
/// lane, so eight independent lanes let the CPU overlap them, and the
/// explicit vector type guarantees SIMD instructions on any target.
pub(super) const LANES: usize = 8;

/// Runs of identical samples at least this long always cover a whole
/// aligned block (one starts within `BLOCK - 1` samples of the run's start,
/// and the last `LANES - 1` samples are outside the blocks).
pub const FLAT_SCREEN_RUN: usize = 2 * BLOCK + LANES;

fn lanes(chunk: &[f32]) -> f32x8 {
    f32x8::from(<[f32; LANES]>::try_from(chunk).expect("chunks_exact(LANES)"))
}

/// Scans `xs`; samples with `|x| >= clip_level` count as clipped.
pub fn scan(xs: &[f32], clip_level: f64) -> Scan {
    scan_inner::<false>(xs, clip_level, &mut [])
}

/// Scans `xs` like [`scan`] and, in the same pass, copies it into `copy`
/// (the input of a transform), which must be as long.
pub fn scan_and_copy(xs: &[f32], clip_level: f64, copy: &mut [f64]) -> Scan {
    assert_eq!(
        xs.len(),
        copy.len(),
        "the copy must be as long as the samples"
    );
    scan_inner::<true>(xs, clip_level, copy)
}

/// What the vectorised sweep over whole lanes of samples gathers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Sweep {
    /// Sums of the first four powers of the samples minus the shift.
    pub totals: [f64; 4],
    pub min: f32,
    pub max: f32,
    pub flat_blocks: usize,
}

/// The portable sweep: `body.len()` is a multiple of [`LANES`], and `copy`
/// is as long as `body` when `COPY`.
pub(super) fn sweep_portable<const COPY: bool>(
    body: &[f32],
    shift: f32,
    copy: &mut [f64],
) -> Sweep {
    let shift_v = f32x8::splat(shift);
    let mut totals = [0.0f64; 4];
    let mut lo_v = f32x8::splat(f32::INFINITY);
    let mut hi_v = f32x8::splat(f32::NEG_INFINITY);
    let mut flat_blocks = 0;
    for (b, block) in body.chunks(BLOCK).enumerate() {
        let mut sums = [f32x8::ZERO; 4];
        for chunk in block.chunks_exact(LANES) {
            let x = lanes(chunk);
            let d = x - shift_v;
            let d2 = d * d;
            sums[0] += d;
            sums[1] += d2;
            sums[2] += d2 * d;
            sums[3] += d2 * d2;
        }
        for (total, lane) in totals.iter_mut().zip(sums) {
            *total += lane.to_array().iter().map(|&v| v as f64).sum::<f64>();
        }
        // The block's own extremes (equal: the block is flat) and the copy,
        // in a second pass over it while it is in the L1 cache: in the
        // first, the registers they need made the compiler spill the sums.
        let mut block_lo = f32x8::splat(f32::INFINITY);
        let mut block_hi = f32x8::splat(f32::NEG_INFINITY);
        let copy_block: &mut [f64] = if COPY {
            &mut copy[b * BLOCK..b * BLOCK + block.len()]
        } else {
            &mut []
        };
        let mut copy_chunks = copy_block.chunks_exact_mut(LANES);
        for chunk in block.chunks_exact(LANES) {
            let x = lanes(chunk);
            block_lo = block_lo.fast_min(x);
            block_hi = block_hi.fast_max(x);
            if let Some(out) = copy_chunks.next() {
                for (o, v) in out.iter_mut().zip(x.to_array()) {
                    *o = v as f64;
                }
            }
        }
        lo_v = lo_v.fast_min(block_lo);
        hi_v = hi_v.fast_max(block_hi);
        let fold = |v: f32x8, f: fn(f32, f32) -> f32| v.to_array().into_iter().reduce(f);
        if block.len() == BLOCK && fold(block_lo, f32::min) == fold(block_hi, f32::max) {
            flat_blocks += 1;
        }
    }
    let fold = |v: f32x8, init: f32, f: fn(f32, f32) -> f32| v.to_array().into_iter().fold(init, f);
    Sweep {
        totals,
        min: fold(lo_v, f32::INFINITY, f32::min),
        max: fold(hi_v, f32::NEG_INFINITY, f32::max),
        flat_blocks,
    }
}

// Kept out of line: inlined into a caller's closure it lost much of its
// vectorisation in a measurement.
#[inline(never)]
fn scan_inner<const COPY: bool>(xs: &[f32], clip_level: f64, copy: &mut [f64]) -> Scan {
    let shift = xs.iter().copied().find(|x| x.is_finite()).unwrap_or(0.0);
    let clip = clip_level as f32;
    let body = xs.len() / LANES * LANES;
    let copy_body: &mut [f64] = if COPY { &mut copy[..body] } else { &mut [] };
    let Sweep {
        mut totals,
        mut min,
        mut max,
        flat_blocks,
    } = super::sweep_dispatch::sweep::<COPY>(&xs[..body], shift, copy_body);
    for (i, &x) in xs.iter().enumerate().skip(body) {
        let d = (x - shift) as f64;
        totals[0] += d;
        totals[1] += d * d;
        totals[2] += d * d * d;
        totals[3] += d * d * d * d;
        min = min.min(x);
        max = max.max(x);
        if COPY {
            copy[i] = x as f64;
        }
    }
    // Clipping is rare: count it only when the extremes reach the level.
    let clipped = if max.abs() >= clip || min.abs() >= clip {
        xs.iter().filter(|x| x.abs() >= clip).count()
    } else {
        0
    };
    let shift = shift as f64;
    let mut non_finite = 0;
    if !totals.iter().all(|t| t.is_finite()) {
        // Rare: redo the sums without the bad samples.
        non_finite = xs.iter().filter(|x| !x.is_finite()).count();
        totals = [0.0; 4];
        (min, max) = (f32::INFINITY, f32::NEG_INFINITY);
        for &x in xs.iter().filter(|x| x.is_finite()) {
            let d = x as f64 - shift;
            totals[0] += d;
            totals[1] += d * d;
            totals[2] += d * d * d;
            totals[3] += d * d * d * d;
            min = min.min(x);
            max = max.max(x);
        }
    }
    let finite = xs.len() - non_finite;
    let n = finite.max(1) as f64;
    let [a1, a2, a3, a4] = totals.map(|t| t / n);
    let m2 = (a2 - a1 * a1).max(0.0);
    let m3 = a3 - 3.0 * a1 * a2 + 2.0 * a1.powi(3);
    let m4 = (a4 - 4.0 * a1 * a3 + 6.0 * a1 * a1 * a2 - 3.0 * a1.powi(4)).max(0.0);
    let mean = shift + a1;
    let rms = m2.sqrt();
    let peak = if finite > 0 {
        (max as f64 - mean).abs().max((min as f64 - mean).abs())
    } else {
        0.0
    };
    // A window of identical samples has no shape (and rounding must not
    // invent one from a vanishing variance).
    let flat = rms <= 1e-12 * (1.0 + mean.abs());
    let (crest_factor, kurtosis, skewness) = if flat {
        (0.0, 0.0, 0.0)
    } else {
        (peak / rms, m4 / (m2 * m2), m3 / (m2 * rms))
    };
    Scan {
        len: xs.len(),
        stats: Stats {
            mean,
            rms: if flat { 0.0 } else { rms },
            peak: if flat { 0.0 } else { peak },
            crest_factor,
            kurtosis,
            skewness,
        },
        non_finite,
        clipped,
        flat_blocks,
    }
}

/// Length and value of the longest run of identical consecutive samples.
pub fn longest_run(xs: &[f32]) -> (usize, f32) {
    let mut best = (0, f32::NAN);
    let mut i = 0;
    while i < xs.len() {
        let start = i;
        while i + 1 < xs.len() && xs[i + 1] == xs[start] {
            i += 1;
        }
        i += 1;
        if i - start > best.0 {
            best = (i - start, xs[start]);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_facts_are_counted_in_the_same_pass() {
        let xs = [0.1, 0.2, 0.2, 0.2, f32::NAN, 8.0, -8.5, 0.3, 0.3];
        let s = scan(&xs, 7.9);
        assert_eq!((s.non_finite, s.clipped, s.flat_blocks), (1, 2, 0));
        assert_eq!(longest_run(&xs), (3, 0.2));
        assert_eq!(s.len, 9);
        // The statistics ignore the NaN.
        let clean = scan(&[0.1, 0.2, 0.2, 0.2, 8.0, -8.5, 0.3, 0.3], 7.9).stats;
        assert!((s.stats.rms - clean.rms).abs() < 1e-6 * clean.rms);
    }

    #[test]
    fn the_vectorised_sums_match_a_plain_two_pass_computation() {
        let xs: Vec<f32> = (0..1003)
            .map(|i| ((i * 7919) % 101) as f32 * 0.01 - 0.3)
            .collect();
        let n = xs.len() as f64;
        let mean = xs.iter().map(|&x| x as f64).sum::<f64>() / n;
        let m = |p: i32| xs.iter().map(|&x| (x as f64 - mean).powi(p)).sum::<f64>() / n;
        let s = scan(&xs, f64::INFINITY).stats;
        // Single-precision partial sums: agreement to a few parts in 1e7.
        assert!((s.mean - mean).abs() < 1e-6, "{} vs {mean}", s.mean);
        assert!((s.rms - m(2).sqrt()).abs() < 1e-6 * s.rms);
        assert!((s.skewness - m(3) / m(2).powf(1.5)).abs() < 1e-5);
        assert!((s.kurtosis - m(4) / m(2).powi(2)).abs() < 1e-5);
    }

    #[test]
    fn the_copy_holds_at_every_length() {
        for len in 0..40 {
            let xs: Vec<f32> = (0..len).map(|i| (i / 3) as f32 * 0.5 - 2.0).collect();
            let mut copy = vec![f64::NAN; len];
            let s = scan_and_copy(&xs, f64::INFINITY, &mut copy);
            assert_eq!(s, scan(&xs, f64::INFINITY), "len {len}");
            assert!(
                copy.iter().zip(&xs).all(|(&c, &x)| c == x as f64),
                "len {len}"
            );
        }
    }

    #[test]
    fn every_long_run_covers_a_flat_block_and_short_ones_never_do() {
        let len = 3 * BLOCK + 5;
        let varying = |i: usize| ((i * 7919) % 101) as f32 * 0.01;
        for run in [BLOCK - 1, FLAT_SCREEN_RUN, FLAT_SCREEN_RUN + 37] {
            for start in 0..=len - run {
                let xs: Vec<f32> = (0..len)
                    .map(|i| {
                        if (start..start + run).contains(&i) {
                            0.5
                        } else {
                            varying(i)
                        }
                    })
                    .collect();
                let flat = scan(&xs, f64::INFINITY).flat_blocks;
                if run >= FLAT_SCREEN_RUN {
                    assert!(flat >= 1, "run {run} at {start}");
                } else {
                    assert_eq!(flat, 0, "run {run} at {start}");
                }
            }
        }
    }

    #[test]
    fn moments_survive_a_large_offset() {
        // A 1e-3 g vibration riding on 1 g of gravity.
        let xs: Vec<f32> = (0..4096)
            .map(|i| 1.0 + 1e-3 * (i as f32 * 0.1).sin())
            .collect();
        let s = scan(&xs, f64::INFINITY).stats;
        assert!((s.rms - 1e-3 / 2f64.sqrt()).abs() < 2e-6, "{s:?}");
        assert!((s.kurtosis - 1.5).abs() < 0.02, "{s:?}");
        assert!(s.skewness.abs() < 0.02, "{s:?}");
    }
}
