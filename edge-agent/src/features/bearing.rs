//! Rolling-element bearing geometry and its defect frequencies.
//!
//! A spall on a race or a ball is struck at a rate fixed by the geometry and
//! the shaft speed; the envelope spectrum shows a line there. The formulas
//! are the classical kinematic ones (stationary outer race, rotating inner
//! race), e.g. Randall and Antoni, MSSP 25 (2011).

use serde::Deserialize;

/// A bearing, as in its catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BearingGeometry {
    pub balls: u32,
    pub ball_diameter_mm: f64,
    pub pitch_diameter_mm: f64,
    #[serde(default)]
    pub contact_angle_deg: f64,
}

/// Defect frequencies in Hz at a shaft speed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DefectFrequencies {
    /// Ball pass, outer race.
    pub bpfo: f64,
    /// Ball pass, inner race.
    pub bpfi: f64,
    /// Ball spin (one defect on a ball; the ball strikes twice per turn).
    pub bsf: f64,
    /// Fundamental train (cage).
    pub ftf: f64,
}

impl Default for BearingGeometry {
    /// A 6309 deep-groove ball bearing, common on mid-size pump motors.
    fn default() -> Self {
        BearingGeometry {
            balls: 8,
            ball_diameter_mm: 17.462,
            pitch_diameter_mm: 72.5,
            contact_angle_deg: 0.0,
        }
    }
}

impl BearingGeometry {
    /// The SKF 6205-2RS drive-end bearing of the CWRU test rig.
    pub const SKF_6205: BearingGeometry = BearingGeometry {
        balls: 9,
        ball_diameter_mm: 7.94,
        pitch_diameter_mm: 39.04,
        contact_angle_deg: 0.0,
    };

    pub fn validate(&self) -> Result<(), String> {
        let ok = self.balls >= 3
            && self.ball_diameter_mm > 0.0
            && self.pitch_diameter_mm > self.ball_diameter_mm
            && (0.0..90.0).contains(&self.contact_angle_deg);
        if ok {
            Ok(())
        } else {
            Err(format!(
                "bearing geometry {self:?} is not physical (need >= 3 balls, 0 < ball diameter < pitch diameter, contact angle 0..90)"
            ))
        }
    }

    /// Defect frequencies at `shaft_hz` revolutions per second.
    pub fn defect_frequencies(&self, shaft_hz: f64) -> DefectFrequencies {
        let ratio = self.ball_diameter_mm / self.pitch_diameter_mm
            * self.contact_angle_deg.to_radians().cos();
        let n = self.balls as f64;
        DefectFrequencies {
            bpfo: n / 2.0 * shaft_hz * (1.0 - ratio),
            bpfi: n / 2.0 * shaft_hz * (1.0 + ratio),
            bsf: self.pitch_diameter_mm / (2.0 * self.ball_diameter_mm)
                * shaft_hz
                * (1.0 - ratio * ratio),
            ftf: shaft_hz / 2.0 * (1.0 - ratio),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cwru_6205_orders_match_the_published_ones() {
        // CWRU publishes, as multiples of shaft speed: BPFI 5.4152,
        // BPFO 3.5848, BSF 2.3570, FTF 0.39828.
        let f = BearingGeometry::SKF_6205.defect_frequencies(1.0);
        assert!((f.bpfi - 5.4152).abs() < 2e-3, "{f:?}");
        assert!((f.bpfo - 3.5848).abs() < 2e-3, "{f:?}");
        assert!((f.bsf - 2.3570).abs() < 2e-3, "{f:?}");
        assert!((f.ftf - 0.39828).abs() < 2e-4, "{f:?}");
    }

    #[test]
    fn frequencies_scale_with_shaft_speed() {
        let g = BearingGeometry::default();
        let a = g.defect_frequencies(10.0);
        let b = g.defect_frequencies(20.0);
        assert!((b.bpfo - 2.0 * a.bpfo).abs() < 1e-9);
        // BPFO + BPFI = balls x shaft speed.
        assert!((a.bpfo + a.bpfi - 80.0).abs() < 1e-9);
    }

    #[test]
    fn impossible_geometry_is_refused() {
        let g = BearingGeometry {
            ball_diameter_mm: 100.0,
            ..BearingGeometry::default()
        };
        assert!(g.validate().is_err());
        assert!(BearingGeometry::default().validate().is_ok());
    }
}
