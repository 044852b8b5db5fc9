//! Picks, once per process, the fastest build of the scan's sweep this CPU
//! runs.
//!
//! The agent is built for the baseline of its target (a gateway may be an
//! Atom without AVX), so the portable sweep uses 128-bit vectors. On x86-64
//! CPUs with AVX2 the same sweep, compiled for 256-bit vectors, does the
//! statistics, the extremes and the copy in one pass instead of two and
//! halves the scan's share of a window. Both builds add in the same order,
//! so they return bit-identical results (a test checks it).
//!
//! This is the only module of the workspace that contains `unsafe`: calling
//! a function compiled for CPU features is unsound unless the CPU has them,
//! which is checked at run time just before.
#![allow(unsafe_code)]

use super::scan::{BLOCK, LANES, Sweep, sweep_portable};

/// The sweep over `body` (a multiple of [`LANES`] long), with the copy into
/// `copy` when `COPY`.
pub(super) fn sweep<const COPY: bool>(body: &[f32], shift: f32, copy: &mut [f64]) -> Sweep {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU reports AVX2 and FMA (`has_avx2`), the features
        // `sweep_avx2` is compiled for.
        return unsafe { sweep_avx2::<COPY>(body, shift, copy) };
    }
    sweep_portable::<COPY>(body, shift, copy)
}

/// Whether the 256-bit build runs here (cached by the std macro).
#[cfg(target_arch = "x86_64")]
pub(super) fn has_avx2() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

/// The sweep of [`sweep_portable`] in 256-bit vectors: one pass per
/// block (sixteen registers hold all the accumulators), same arithmetic in
/// the same order.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,avx2,fma")]
fn sweep_avx2<const COPY: bool>(body: &[f32], shift: f32, copy: &mut [f64]) -> Sweep {
    use std::arch::x86_64::*;
    let load = |chunk: &[f32]| -> __m256 {
        assert_eq!(chunk.len(), LANES);
        // SAFETY: `chunk` holds LANES = 8 floats; unaligned load.
        unsafe { _mm256_loadu_ps(chunk.as_ptr()) }
    };
    let to_array = |v: __m256| -> [f32; LANES] {
        let mut out = [0.0f32; LANES];
        // SAFETY: `out` holds 8 floats; unaligned store.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), v) };
        out
    };
    let shift_v = _mm256_set1_ps(shift);
    let mut totals = [0.0f64; 4];
    let mut lo = _mm256_set1_ps(f32::INFINITY);
    let mut hi = _mm256_set1_ps(f32::NEG_INFINITY);
    let mut flat_blocks = 0;
    for (b, block) in body.chunks(BLOCK).enumerate() {
        let mut sums = [_mm256_setzero_ps(); 4];
        let mut block_lo = _mm256_set1_ps(f32::INFINITY);
        let mut block_hi = _mm256_set1_ps(f32::NEG_INFINITY);
        let copy_block: &mut [f64] = if COPY {
            &mut copy[b * BLOCK..b * BLOCK + block.len()]
        } else {
            &mut []
        };
        let mut copy_chunks = copy_block.chunks_exact_mut(LANES);
        for chunk in block.chunks_exact(LANES) {
            let x = load(chunk);
            let d = _mm256_sub_ps(x, shift_v);
            let d2 = _mm256_mul_ps(d, d);
            sums[0] = _mm256_add_ps(sums[0], d);
            sums[1] = _mm256_add_ps(sums[1], d2);
            sums[2] = _mm256_add_ps(sums[2], _mm256_mul_ps(d2, d));
            sums[3] = _mm256_add_ps(sums[3], _mm256_mul_ps(d2, d2));
            block_lo = _mm256_min_ps(block_lo, x);
            block_hi = _mm256_max_ps(block_hi, x);
            if let Some(out) = copy_chunks.next() {
                let low = _mm256_cvtps_pd(_mm256_castps256_ps128(x));
                let high = _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(x));
                assert_eq!(out.len(), LANES);
                // SAFETY: `out` holds 8 doubles: two unaligned stores of 4.
                unsafe {
                    _mm256_storeu_pd(out.as_mut_ptr(), low);
                    _mm256_storeu_pd(out.as_mut_ptr().add(4), high);
                }
            }
        }
        for (total, lane) in totals.iter_mut().zip(sums) {
            *total += to_array(lane).iter().map(|&v| v as f64).sum::<f64>();
        }
        lo = _mm256_min_ps(lo, block_lo);
        hi = _mm256_max_ps(hi, block_hi);
        let fold = |v: __m256, f: fn(f32, f32) -> f32| to_array(v).into_iter().reduce(f);
        if block.len() == BLOCK && fold(block_lo, f32::min) == fold(block_hi, f32::max) {
            flat_blocks += 1;
        }
    }
    Sweep {
        totals,
        min: to_array(lo).into_iter().fold(f32::INFINITY, f32::min),
        max: to_array(hi).into_iter().fold(f32::NEG_INFINITY, f32::max),
        flat_blocks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs with the cases the sweep must get right: lengths that end
    /// mid-block, flat blocks, extremes, a NaN and an infinity.
    fn cases() -> Vec<Vec<f32>> {
        let varying = |i: usize| ((i * 7919) % 101) as f32 * 0.013 - 0.4;
        let mut cases = Vec::new();
        for len in [
            0,
            LANES,
            BLOCK,
            BLOCK + LANES,
            3 * BLOCK + 5 * LANES,
            25_600,
        ] {
            cases.push((0..len).map(varying).collect::<Vec<_>>());
        }
        let mut flat: Vec<f32> = (0..4 * BLOCK).map(varying).collect();
        flat[BLOCK..3 * BLOCK].fill(0.25);
        cases.push(flat);
        let mut spiky: Vec<f32> = (0..2 * BLOCK).map(varying).collect();
        spiky[17] = 7.9;
        spiky[300] = -8.0;
        cases.push(spiky.clone());
        spiky[40] = f32::NAN;
        spiky[41] = f32::INFINITY;
        cases.push(spiky);
        cases
    }

    fn same(a: &Sweep, b: &Sweep) -> bool {
        let bits = |s: &Sweep| {
            (
                s.totals.map(f64::to_bits),
                s.min.to_bits(),
                s.max.to_bits(),
                s.flat_blocks,
            )
        };
        bits(a) == bits(b)
    }

    #[test]
    fn every_build_of_the_sweep_returns_the_same_bits() {
        #[cfg(target_arch = "x86_64")]
        if !has_avx2() {
            eprintln!("skipped: this CPU has no AVX2, only the portable sweep runs here");
            return;
        }
        for xs in cases() {
            let shift = xs.first().copied().unwrap_or(0.0);
            let portable = sweep_portable::<false>(&xs, shift, &mut []);
            let chosen = sweep::<false>(&xs, shift, &mut []);
            assert!(
                same(&portable, &chosen),
                "len {}: {portable:?} vs {chosen:?}",
                xs.len()
            );
            let (mut copy_a, mut copy_b) = (vec![f64::NAN; xs.len()], vec![0.0; xs.len()]);
            let a = sweep_portable::<true>(&xs, shift, &mut copy_a);
            let b = sweep::<true>(&xs, shift, &mut copy_b);
            assert!(same(&a, &b) && same(&a, &portable), "len {}", xs.len());
            let to_bits = |c: &[f64]| c.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(to_bits(&copy_a), to_bits(&copy_b), "len {}", xs.len());
            assert!(
                xs.iter()
                    .zip(&copy_b)
                    .all(|(&x, &c)| c.to_bits() == (x as f64).to_bits())
            );
        }
    }
}
