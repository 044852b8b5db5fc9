//! Time-domain statistics of a vibration window.
//!
//! Computed around the window mean, because an accelerometer's DC part is
//! gravity and offset, not vibration.

/// Level and shape of a signal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub mean: f64,
    /// RMS of the signal around its mean (its standard deviation).
    pub rms: f64,
    /// Largest absolute deviation from the mean.
    pub peak: f64,
    /// Peak over RMS: about 1.41 for a sine, higher when impacts appear.
    pub crest_factor: f64,
    /// Fourth standardised moment: 3 for Gaussian noise, 1.5 for a sine,
    /// well above 3 for impacts from a damaged bearing.
    pub kurtosis: f64,
}

/// Statistics of `xs`; zero-RMS input yields crest factor and kurtosis 0.
pub fn stats(xs: &[f32]) -> Stats {
    let n = xs.len().max(1) as f64;
    let mean = xs.iter().map(|&x| x as f64).sum::<f64>() / n;
    let (mut m2, mut m4, mut peak) = (0.0f64, 0.0f64, 0.0f64);
    for &x in xs {
        let d = x as f64 - mean;
        let d2 = d * d;
        m2 += d2;
        m4 += d2 * d2;
        peak = peak.max(d.abs());
    }
    m2 /= n;
    m4 /= n;
    let rms = m2.sqrt();
    let (crest_factor, kurtosis) = if m2 > 0.0 {
        (peak / rms, m4 / (m2 * m2))
    } else {
        (0.0, 0.0)
    };
    Stats {
        mean,
        rms,
        peak,
        crest_factor,
        kurtosis,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::TAU;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn sine_with_offset_has_the_textbook_values() {
        // Amplitude 2 over a DC offset of 1 g, an integer number of periods.
        let xs: Vec<f32> = (0..1000)
            .map(|i| (1.0 + 2.0 * (TAU * 5.0 * i as f64 / 1000.0).sin()) as f32)
            .collect();
        let s = stats(&xs);
        assert!(close(s.mean, 1.0, 1e-6), "{s:?}");
        assert!(close(s.rms, 2.0 / 2f64.sqrt(), 1e-5), "{s:?}");
        assert!(close(s.peak, 2.0, 1e-5), "{s:?}");
        assert!(close(s.crest_factor, 2f64.sqrt(), 1e-4), "{s:?}");
        assert!(close(s.kurtosis, 1.5, 1e-4), "{s:?}");
    }

    #[test]
    fn a_single_impact_dominates_kurtosis_and_crest() {
        let mut xs = vec![0.0f32; 1000];
        xs[500] = 1.0;
        let s = stats(&xs);
        assert!(s.kurtosis > 900.0, "{s:?}");
        assert!(s.crest_factor > 30.0, "{s:?}");
    }

    #[test]
    fn flat_signal_has_no_shape() {
        let s = stats(&[0.5; 16]);
        assert_eq!((s.rms, s.crest_factor, s.kurtosis), (0.0, 0.0, 0.0));
    }
}
