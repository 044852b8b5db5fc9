//! A simulated centrifugal pump, as its bearing-housing accelerometer and
//! temperature probe see it.
//!
//! The healthy signal is what a vibration analyst expects on a 4-pole pump:
//! lines at 1x and 2x shaft speed (residual imbalance, misalignment) and at
//! the vane-pass frequency (6 vanes), whose amplitude wanders with the flow;
//! broadband flow noise; and the bearing housing's structural resonance,
//! lightly excited by that noise. Amplitudes correspond to velocity levels of
//! 1-3 mm/s RMS, ISO 10816 zone A/B. Each seed is a different pump of the
//! same design: its amplitudes and resonance differ within +/-40 %.
//!
//! Faults grow from an onset with a ramp: an outer-race spall makes impacts at
//! the ball-pass frequency (BPFO) that ring the housing resonance and heat the
//! bearing; an inner-race spall does the same at BPFI, its impacts stronger
//! while the spall passes the load zone (once per shaft turn); imbalance
//! raises the 1x line; a stuck sensor freezes the output. The defect
//! frequencies come from the asset's bearing geometry and shaft speed, as
//! the feature code computes them.

use std::f64::consts::TAU;

use super::resonator::Resonator;
use super::rng::SimRng;
use super::{
    BLOCK_SECONDS, Block, FaultConfig, FaultKind, Pacing, SimConfig, Source, SourceError,
    SourcePoll, StuckSensor,
};
use crate::features::AssetAnalysis;

/// Default sample rate of the simulated accelerometer (2.56 x a 2 kHz
/// analysis band), also the lowest it accepts.
pub const PUMP_SAMPLE_RATE_HZ: f64 = 5120.0;
const VANES: f64 = 6.0;

pub struct PumpSim {
    rng: SimRng,
    fault: Option<FaultConfig>,
    speed: f64,
    start_us: u64,
    sample: u64,
    sample_rate_hz: f64,
    shaft_hz: f64,
    bpfo_hz: f64,
    bpfi_hz: f64,
    amp_1x: f64,
    amp_2x: f64,
    amp_vane: f64,
    phases: [f64; 3],
    flow_noise: f64,
    housing: Resonator,
    housing_noise: f64,
    flow_modulation: f64,
    next_impact_s: f64,
    base_temp_c: f64,
    stuck: StuckSensor,
}

impl PumpSim {
    pub fn new(config: &SimConfig, start_us: u64, analysis: &AssetAnalysis) -> Self {
        let sample_rate_hz = config.sample_rate_hz.unwrap_or(PUMP_SAMPLE_RATE_HZ);
        let mut rng = SimRng::new(config.seed);
        let mut vary = |nominal: f64| nominal * rng.range(0.6, 1.4);
        let amp_1x = vary(0.033);
        let amp_2x = vary(0.022);
        let amp_vane = vary(0.10);
        let flow_noise = vary(0.03);
        let housing_noise = vary(0.02);
        let resonance_hz = 1800.0 * rng.range(0.9, 1.1);
        let base_temp_c = rng.range(32.0, 48.0);
        // Load changes the slip of an induction motor by a few rpm.
        let shaft_hz = analysis.shaft_hz * rng.range(0.997, 1.003);
        let defects = analysis.bearing.defect_frequencies(shaft_hz);
        let phases = [
            rng.range(0.0, TAU),
            rng.range(0.0, TAU),
            rng.range(0.0, TAU),
        ];
        PumpSim {
            rng,
            fault: config.fault.clone(),
            speed: config.speed,
            start_us,
            sample: 0,
            sample_rate_hz,
            shaft_hz,
            bpfo_hz: defects.bpfo,
            bpfi_hz: defects.bpfi,
            amp_1x,
            amp_2x,
            amp_vane,
            phases,
            flow_noise,
            housing: Resonator::new(resonance_hz, 0.04, sample_rate_hz),
            housing_noise,
            flow_modulation: 0.0,
            next_impact_s: 0.0,
            base_temp_c,
            stuck: StuckSensor::default(),
        }
    }

    fn severity(&self, kind: FaultKind, t: f64) -> f64 {
        FaultConfig::severity_of(self.fault.as_ref(), kind, t)
    }
}

impl Source for PumpSim {
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
        let outer = self.severity(FaultKind::BearingOuterRace, t0);
        let inner = self.severity(FaultKind::BearingInnerRace, t0);
        let bearing = outer.max(inner);
        let imbalance = self.severity(FaultKind::Imbalance, t0);
        let stuck = self.severity(FaultKind::SensorStuck, t0) > 0.0;
        // Flow turbulence: the vane-pass amplitude wanders by about 10 %.
        self.flow_modulation = 0.98 * self.flow_modulation + 0.02 * self.rng.normal();
        let (impact_hz, impact_g) = if inner > outer {
            (self.bpfi_hz, 2.5 * inner)
        } else {
            (self.bpfo_hz, 2.5 * outer)
        };
        let white = self.housing.white_gain();
        let impulse = self.housing.impulse_gain();

        let mut vibration = Vec::with_capacity(n);
        for i in 0..n {
            let t = (self.sample + i as u64) as f64 / fs;
            let shaft = TAU * self.shaft_hz * t;
            let mut drive = white * self.housing_noise * self.rng.normal();
            if impact_g > 0.0 && t >= self.next_impact_s {
                // An inner-race spall turns with the shaft through the load
                // zone: its impacts are modulated at 1x.
                let load = if inner > outer {
                    0.55 + 0.45 * shaft.cos()
                } else {
                    1.0
                };
                drive += impulse * impact_g * load * (1.0 + 0.2 * self.rng.normal());
                // Rolling elements slip: impacts are not perfectly periodic.
                self.next_impact_s = t + (1.0 + 0.01 * self.rng.normal()) / impact_hz;
            }
            let a = self.amp_1x * (1.0 + 6.0 * imbalance) * (shaft + self.phases[0]).sin()
                + self.amp_2x * (2.0 * shaft + self.phases[1]).sin()
                + self.amp_vane
                    * (1.0 + 0.1 * self.flow_modulation)
                    * (VANES * shaft + self.phases[2]).sin()
                + self.flow_noise * self.rng.normal()
                + self.housing.step(drive);
            vibration.push(a as f32);
        }
        self.stuck.apply(stuck, &mut vibration);
        self.sample += n as u64;

        // Slow thermal drift of the housing plus the heat of a failing bearing.
        let temperature = self.base_temp_c
            + 0.6 * (TAU * t0 / 1800.0).sin()
            + 10.0 * bearing
            + 3.0 * imbalance
            + 0.02 * self.rng.normal();
        Ok(SourcePoll::Block(Block {
            start_us,
            vibration,
            temperature: vec![temperature as f32],
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim(fault: Option<FaultConfig>) -> PumpSim {
        PumpSim::new(
            &SimConfig {
                seed: 11,
                speed: 0.0,
                sample_rate_hz: None,
                duration_s: None,
                fault,
            },
            1_000_000,
            &AssetAnalysis::default(),
        )
    }

    fn rms(xs: &[f32]) -> f64 {
        let mean = xs.iter().map(|&x| x as f64).sum::<f64>() / xs.len() as f64;
        (xs.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / xs.len() as f64).sqrt()
    }

    fn collect(s: &mut PumpSim, blocks: usize) -> (Vec<f32>, Vec<f32>, Vec<u64>) {
        let (mut v, mut t, mut starts) = (vec![], vec![], vec![]);
        for _ in 0..blocks {
            let b = s.poll().unwrap().block();
            starts.push(b.start_us);
            v.extend(b.vibration);
            t.extend(b.temperature);
        }
        (v, t, starts)
    }

    #[test]
    fn healthy_pump_has_plausible_levels_and_contiguous_timestamps() {
        let (v, t, starts) = collect(&mut sim(None), 40);
        let r = rms(&v);
        assert!((0.03..0.2).contains(&r), "rms {r} g");
        assert!(t.iter().all(|&c| (30.0..52.0).contains(&c)), "{t:?}");
        for w in starts.windows(2) {
            assert_eq!(w[1] - w[0], 250_000);
        }
    }

    #[test]
    fn same_seed_gives_the_same_signal() {
        let (a, _, _) = collect(&mut sim(None), 2);
        let (b, _, _) = collect(&mut sim(None), 2);
        assert_eq!(a, b);
    }

    #[test]
    fn bearing_fault_raises_impulsiveness_and_temperature() {
        let fault = FaultConfig {
            kind: FaultKind::BearingOuterRace,
            onset_s: 0.0,
            ramp_s: 0.0,
            severity: 1.0,
        };
        let (healthy, th, _) = collect(&mut sim(None), 8);
        let (faulty, tf, _) = collect(&mut sim(Some(fault)), 8);
        let kurt = |xs: &[f32]| {
            let r = rms(xs);
            let m = xs.iter().map(|&x| x as f64).sum::<f64>() / xs.len() as f64;
            xs.iter()
                .map(|&x| ((x as f64 - m) / r).powi(4))
                .sum::<f64>()
                / xs.len() as f64
        };
        assert!(kurt(&faulty) > kurt(&healthy) + 2.0);
        assert!(tf[0] > th[0] + 5.0);
    }

    #[test]
    fn stuck_sensor_repeats_one_value() {
        let fault = FaultConfig {
            kind: FaultKind::SensorStuck,
            onset_s: 0.5,
            ramp_s: 0.0,
            severity: 1.0,
        };
        let (v, _, _) = collect(&mut sim(Some(fault)), 4);
        let tail = &v[v.len() - 2560..];
        assert!(tail.iter().all(|&x| x == tail[0]));
        assert!(rms(&v[..1280]) > 0.01);
    }
}
