//! A lightly damped mode: the building block of both simulators.
//!
//! A structure (a bridge mode, a bearing housing) answers a force with a
//! decaying oscillation at its natural frequency. Sampled, that is the
//! two-pole recursion `y[n] = a1*y[n-1] + a2*y[n-2] + x[n]` with poles at
//! `r*exp(±iθ)`, `r = exp(-ζω/fs)` and `θ = ω·sqrt(1-ζ²)/fs`. The
//! simulators retune it as temperature or damage changes the frequency.

use std::f64::consts::TAU;

pub struct Resonator {
    a1: f64,
    a2: f64,
    y1: f64,
    y2: f64,
    white_gain: f64,
    impulse_gain: f64,
}

impl Resonator {
    pub fn new(freq_hz: f64, damping_ratio: f64, sample_rate_hz: f64) -> Self {
        let mut r = Resonator {
            a1: 0.0,
            a2: 0.0,
            y1: 0.0,
            y2: 0.0,
            white_gain: 0.0,
            impulse_gain: 0.0,
        };
        r.retune(freq_hz, damping_ratio, sample_rate_hz);
        r
    }

    /// Changes frequency and damping, keeping the oscillation's state.
    pub fn retune(&mut self, freq_hz: f64, damping_ratio: f64, sample_rate_hz: f64) {
        let omega = TAU * freq_hz;
        let r = (-damping_ratio * omega / sample_rate_hz).exp();
        let theta = omega * (1.0 - damping_ratio * damping_ratio).sqrt() / sample_rate_hz;
        self.a1 = 2.0 * r * theta.cos();
        self.a2 = -r * r;
        // Variance of an AR(2) process driven by unit white noise.
        let (a1, a2) = (self.a1, self.a2);
        let var = (1.0 - a2) / ((1.0 + a2) * ((1.0 - a2).powi(2) - a1 * a1));
        self.white_gain = 1.0 / var.sqrt();
        // The impulse response is r^n·sin((n+1)θ)/sin θ, peaking near 1/sin θ.
        self.impulse_gain = theta.sin();
    }

    /// Input scale that makes unit white noise give unit-RMS output.
    pub fn white_gain(&self) -> f64 {
        self.white_gain
    }

    /// Input scale that makes a unit impulse ring with a peak of about 1.
    pub fn impulse_gain(&self) -> f64 {
        self.impulse_gain
    }

    pub fn step(&mut self, x: f64) -> f64 {
        let y = self.a1 * self.y1 + self.a2 * self.y2 + x;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

#[cfg(test)]
mod tests {
    use super::super::rng::SimRng;
    use super::*;

    #[test]
    fn white_gain_gives_unit_rms() {
        let mut res = Resonator::new(3.9, 0.015, 100.0);
        let mut rng = SimRng::new(5);
        let g = res.white_gain();
        let n = 400_000;
        let mut sum_sq = 0.0;
        for i in 0..n {
            let y = res.step(g * rng.normal());
            if i > 10_000 {
                sum_sq += y * y;
            }
        }
        let rms = (sum_sq / (n - 10_000) as f64).sqrt();
        assert!((rms - 1.0).abs() < 0.08, "rms {rms}");
    }

    #[test]
    fn impulse_rings_at_the_natural_frequency_with_unit_peak() {
        let fs = 5120.0;
        let mut res = Resonator::new(1800.0, 0.04, fs);
        let g = res.impulse_gain();
        let ys: Vec<f64> = (0..512)
            .map(|i| res.step(if i == 0 { g } else { 0.0 }))
            .collect();
        let peak = ys.iter().fold(0.0f64, |m, y| m.max(y.abs()));
        assert!((0.7..=1.05).contains(&peak), "peak {peak}");
        // Count zero crossings over the first 100 samples: 2 per period.
        let crossings = ys[..100]
            .windows(2)
            .filter(|w| w[0].signum() != w[1].signum())
            .count();
        let freq = crossings as f64 / 2.0 / (100.0 / fs);
        assert!((freq - 1800.0).abs() < 120.0, "freq {freq}");
    }
}
