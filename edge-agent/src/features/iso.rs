//! ISO 10816-style vibration severity zones.
//!
//! Maintenance people judge a machine by its broadband velocity RMS
//! (10-1000 Hz) against zone limits that depend on the machine class: A (new
//! machine), B (unrestricted long-term operation), C (restricted, plan
//! action), D (damage likely). The limits below are those of ISO 10816-1 for
//! its four classes; an asset may set its own.

pub use protocol::IsoZone;
use serde::Deserialize;

/// Machine classes of ISO 10816-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum MachineClass {
    /// Small machines, up to 15 kW.
    I,
    /// Medium machines, 15-75 kW, or up to 300 kW on special foundations.
    II,
    /// Large machines on rigid foundations.
    III,
    /// Large machines on soft foundations.
    IV,
}

/// Upper limits of zones A, B and C in mm/s RMS.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "[f64; 3]")]
pub struct ZoneLimits {
    pub ab: f64,
    pub bc: f64,
    pub cd: f64,
}

impl TryFrom<[f64; 3]> for ZoneLimits {
    type Error = String;
    fn try_from([ab, bc, cd]: [f64; 3]) -> Result<Self, String> {
        if ab > 0.0 && ab < bc && bc < cd && cd.is_finite() {
            Ok(ZoneLimits { ab, bc, cd })
        } else {
            Err(format!(
                "zone limits [{ab}, {bc}, {cd}] mm/s must be positive and increasing"
            ))
        }
    }
}

impl MachineClass {
    pub fn limits(self) -> ZoneLimits {
        let (ab, bc, cd) = match self {
            MachineClass::I => (0.71, 1.8, 4.5),
            MachineClass::II => (1.12, 2.8, 7.1),
            MachineClass::III => (1.8, 4.5, 11.2),
            MachineClass::IV => (2.8, 7.1, 18.0),
        };
        ZoneLimits { ab, bc, cd }
    }
}

impl ZoneLimits {
    /// The zone of a velocity RMS in mm/s.
    pub fn zone(&self, velocity_rms_mm_s: f64) -> IsoZone {
        if velocity_rms_mm_s <= self.ab {
            IsoZone::A
        } else if velocity_rms_mm_s <= self.bc {
            IsoZone::B
        } else if velocity_rms_mm_s <= self.cd {
            IsoZone::C
        } else {
            IsoZone::D
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_ii_zones_follow_the_standard_limits() {
        let l = MachineClass::II.limits();
        assert_eq!(l.zone(0.5), IsoZone::A);
        assert_eq!(l.zone(1.12), IsoZone::A);
        assert_eq!(l.zone(1.13), IsoZone::B);
        assert_eq!(l.zone(4.0), IsoZone::C);
        assert_eq!(l.zone(7.2), IsoZone::D);
    }

    #[test]
    fn custom_limits_must_increase() {
        assert!(ZoneLimits::try_from([1.0, 2.0, 3.0]).is_ok());
        assert!(ZoneLimits::try_from([2.0, 1.0, 3.0]).is_err());
        assert!(ZoneLimits::try_from([0.0, 1.0, 3.0]).is_err());
    }
}
