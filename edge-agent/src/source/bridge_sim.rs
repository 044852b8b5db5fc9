//! A simulated bridge span, as a vertical accelerometer at mid-span sees it.
//!
//! Under ambient excitation a span vibrates in its modes: here the first and
//! second vertical bending modes and the first torsion mode (3.9, 9.8 and
//! 12.6 Hz nominal, 1.2-1.8 % damping, close to the Z24 bridge). Wind excites
//! them continuously; each crossing vehicle adds a burst whose strength
//! follows the road roughness. The accelerometer reads a few 1e-4 g RMS.
//!
//! Temperature matters: concrete stiffens when cold, so the modal frequencies
//! move by about -0.15 % per degree C around 10 C. The deck temperature
//! follows a daily cycle. Damage (stiffness loss, up to 25 % at full
//! severity) lowers every modal frequency by sqrt(1 - loss). Each seed is a
//! sister span of the same design: frequencies differ by +/-1.5 %.

use std::f64::consts::TAU;

use super::resonator::Resonator;
use super::rng::SimRng;
use super::{
    BLOCK_SECONDS, Block, FaultConfig, FaultKind, Pacing, SimConfig, Source, SourceError,
    SourcePoll, StuckSensor,
};

/// Sample rate of the simulated structural accelerometer.
pub const BRIDGE_SAMPLE_RATE_HZ: f64 = 100.0;
const NOMINAL_MODES_HZ: [f64; 3] = [3.9, 9.8, 12.6];
const NOMINAL_DAMPING: [f64; 3] = [0.012, 0.015, 0.018];
const NOMINAL_PARTICIPATION: [f64; 3] = [1.0, 0.45, 0.3];
/// Relative frequency change per degree C.
const THERMAL_COEFFICIENT: f64 = -0.0015;
/// Stiffness lost at full damage severity.
const MAX_STIFFNESS_LOSS: f64 = 0.25;

struct Vehicle {
    start_s: f64,
    duration_s: f64,
    strength: f64,
}

pub struct BridgeSim {
    rng: SimRng,
    fault: Option<FaultConfig>,
    speed: f64,
    start_us: u64,
    sample: u64,
    sample_rate_hz: f64,
    modes_hz: [f64; 3],
    damping: [f64; 3],
    participation: [f64; 3],
    modes: Vec<Resonator>,
    scale_g: f64,
    wind: f64,
    traffic_per_s: f64,
    vehicles: Vec<Vehicle>,
    next_vehicle_s: f64,
    base_temp_c: f64,
    day_phase: f64,
    stuck: StuckSensor,
}

impl BridgeSim {
    pub fn new(config: &SimConfig, start_us: u64) -> Self {
        let sample_rate_hz = config.sample_rate_hz.unwrap_or(BRIDGE_SAMPLE_RATE_HZ);
        let mut rng = SimRng::new(config.seed);
        let design = rng.range(0.985, 1.015);
        let mut modes_hz = NOMINAL_MODES_HZ;
        let mut damping = NOMINAL_DAMPING;
        let mut participation = NOMINAL_PARTICIPATION;
        for i in 0..3 {
            modes_hz[i] *= design * rng.range(0.995, 1.005);
            damping[i] *= rng.range(0.85, 1.15);
            participation[i] *= rng.range(0.8, 1.2);
        }
        let modes = (0..3)
            .map(|i| Resonator::new(modes_hz[i], damping[i], sample_rate_hz))
            .collect();
        let traffic_per_s = rng.range(0.1, 0.4);
        BridgeSim {
            scale_g: 2.0e-4 * rng.range(0.7, 1.3),
            wind: rng.range(0.6, 1.0),
            traffic_per_s,
            next_vehicle_s: rng.exponential(1.0 / traffic_per_s),
            base_temp_c: rng.range(5.0, 25.0),
            day_phase: rng.range(0.0, TAU),
            rng,
            fault: config.fault.clone(),
            speed: config.speed,
            start_us,
            sample: 0,
            sample_rate_hz,
            modes_hz,
            damping,
            participation,
            modes,
            vehicles: Vec::new(),
            stuck: StuckSensor::default(),
        }
    }

    fn severity(&self, kind: FaultKind, t: f64) -> f64 {
        FaultConfig::severity_of(self.fault.as_ref(), kind, t)
    }

    /// Deck temperature at `t` seconds: a daily cycle of +/-4 C.
    fn temperature_c(&self, t: f64) -> f64 {
        self.base_temp_c + 4.0 * (TAU * t / 86_400.0 + self.day_phase).sin()
    }

    fn traffic_force(&mut self, t: f64) -> f64 {
        while t >= self.next_vehicle_s {
            let start_s = self.next_vehicle_s;
            self.vehicles.push(Vehicle {
                start_s,
                duration_s: self.rng.range(1.5, 4.0),
                // Lognormal: most vehicles are cars, a few are heavy trucks.
                strength: 2.5 * (0.6 * self.rng.normal()).exp(),
            });
            self.next_vehicle_s = start_s + self.rng.exponential(1.0 / self.traffic_per_s);
        }
        self.vehicles.retain(|v| t < v.start_s + v.duration_s);
        let envelope: f64 = self
            .vehicles
            .iter()
            .map(|v| v.strength * (std::f64::consts::PI * (t - v.start_s) / v.duration_s).sin())
            .sum();
        envelope * self.rng.normal()
    }
}

impl Source for BridgeSim {
    fn sample_rate_hz(&self) -> f64 {
        self.sample_rate_hz
    }

    fn pacing(&self) -> Pacing {
        Pacing::from_speed(self.speed)
    }

    fn poll(&mut self) -> Result<SourcePoll, SourceError> {
        let fs = self.sample_rate_hz;
        let n = (fs * BLOCK_SECONDS).round() as usize;
        let t0 = self.sample as f64 / fs;
        let start_us = self.start_us + (t0 * 1e6) as u64;
        let temp_c = self.temperature_c(t0);
        let damage = self.severity(FaultKind::StiffnessLoss, t0);
        let stuck = self.severity(FaultKind::SensorStuck, t0) > 0.0;
        let factor = (1.0 + THERMAL_COEFFICIENT * (temp_c - 10.0))
            * (1.0 - MAX_STIFFNESS_LOSS * damage).sqrt();
        for (i, mode) in self.modes.iter_mut().enumerate() {
            mode.retune(self.modes_hz[i] * factor, self.damping[i], fs);
        }
        let gains: Vec<f64> = self.modes.iter().map(Resonator::white_gain).collect();

        let mut vibration = Vec::with_capacity(n);
        for i in 0..n {
            let t = (self.sample + i as u64) as f64 / fs;
            let force = self.wind * self.rng.normal() + self.traffic_force(t);
            let response: f64 = self
                .modes
                .iter_mut()
                .enumerate()
                .map(|(m, mode)| self.participation[m] * mode.step(gains[m] * force))
                .sum();
            let sensor_noise = 5.0e-6 * self.rng.normal();
            vibration.push((self.scale_g * response + sensor_noise) as f32);
        }
        self.stuck.apply(stuck, &mut vibration);
        self.sample += n as u64;
        let reading = temp_c + 0.05 * self.rng.normal();
        Ok(SourcePoll::Block(Block {
            start_us,
            vibration,
            temperature: vec![reading as f32],
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(fault: Option<FaultConfig>, seconds: f64) -> Vec<f32> {
        let mut sim = BridgeSim::new(
            &SimConfig {
                seed: 3,
                speed: 0.0,
                sample_rate_hz: None,
                duration_s: None,
                fault,
            },
            0,
        );
        let blocks = (seconds / BLOCK_SECONDS) as usize;
        (0..blocks)
            .flat_map(|_| sim.poll().unwrap().block().vibration)
            .collect()
    }

    /// Frequency of the strongest spectral line between 2 and 6 Hz, by a
    /// plain DFT (independent of the feature code under test elsewhere).
    fn dominant_hz(xs: &[f32]) -> f64 {
        let n = xs.len();
        let mut best = (0.0, 0.0);
        let mut f = 2.0;
        while f < 6.0 {
            let (mut re, mut im) = (0.0, 0.0);
            for (k, &x) in xs.iter().enumerate() {
                let ph = TAU * f * k as f64 / BRIDGE_SAMPLE_RATE_HZ;
                re += x as f64 * ph.cos();
                im -= x as f64 * ph.sin();
            }
            let p = (re * re + im * im) / n as f64;
            if p > best.1 {
                best = (f, p);
            }
            f += 0.02;
        }
        best.0
    }

    #[test]
    fn healthy_span_rings_at_its_first_mode_with_plausible_level() {
        let xs = run(None, 300.0);
        let rms = (xs.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / xs.len() as f64).sqrt();
        assert!((5e-5..2e-3).contains(&rms), "rms {rms} g");
        let f1 = dominant_hz(&xs);
        assert!((3.7..4.1).contains(&f1), "f1 {f1}");
    }

    #[test]
    fn stiffness_loss_lowers_the_first_mode() {
        let fault = FaultConfig {
            kind: FaultKind::StiffnessLoss,
            onset_s: 0.0,
            ramp_s: 0.0,
            severity: 1.0,
        };
        let healthy = dominant_hz(&run(None, 300.0));
        let damaged = dominant_hz(&run(Some(fault), 300.0));
        // sqrt(1 - 0.25) = 0.866
        let ratio = damaged / healthy;
        assert!((0.84..0.89).contains(&ratio), "{healthy} -> {damaged}");
    }
}
