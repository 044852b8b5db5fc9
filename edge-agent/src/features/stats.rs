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
    /// Third standardised moment: 0 for a symmetric signal; rubbing,
    /// looseness or a clipped sensor make it lopsided.
    pub skewness: f64,
}

/// Statistics of `xs` (non-finite samples ignored); zero-RMS input yields
/// crest factor, kurtosis and skewness 0. See [`super::scan::scan`], which
/// computes them in the same pass as the sensor checks.
pub fn stats(xs: &[f32]) -> Stats {
    super::scan::scan(xs, f64::INFINITY).stats
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
        assert!(close(s.skewness, 0.0, 1e-6), "{s:?}");
    }

    #[test]
    fn a_one_sided_signal_is_skewed() {
        // Mostly 0 with rare +1: strongly positive skew.
        let mut xs = vec![0.0f32; 100];
        xs[10] = 1.0;
        let s = stats(&xs);
        // For a Bernoulli(p) variable the skewness is (1-2p)/sqrt(p(1-p)).
        let p: f64 = 0.01;
        let expected = (1.0 - 2.0 * p) / (p * (1.0 - p)).sqrt();
        assert!(close(s.skewness, expected, 1e-6), "{s:?}");
        xs[10] = -1.0;
        assert!(close(stats(&xs).skewness, -expected, 1e-6));
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
        assert_eq!(
            (s.rms, s.crest_factor, s.kurtosis, s.skewness),
            (0.0, 0.0, 0.0, 0.0)
        );
    }
}
