//! The temperature curves of the virtual 336 and the physics of the
//! stage's sensor, a PT100 platinum resistor.
//!
//! Owns: the sensor's resistance as a function of temperature (the
//! Callendar-Van Dusen equation of IEC 60751 / DIN 43760, which the
//! standard PT-100 and PT-1000 curves of Lake Shore controllers follow)
//! and its inverse, the curve table (`INCRV`, `CRVHDR?`) and the input
//! ranges of platinum sensors.

/// Callendar-Van Dusen coefficients (IEC 60751).
const CVD_A: f64 = 3.9083e-3;
const CVD_B: f64 = -5.775e-7;
const CVD_C: f64 = -4.183e-12;
const ZERO_C_K: f64 = 273.15;
/// PT100 nominal resistance at 0 degC, ohm.
const PT100_R0_OHM: f64 = 100.0;

/// Highest curve number (1-20 standard, 21-59 user).
pub(crate) const CURVE_MAX: u8 = 59;
/// Standard curve number of the PT-100 (the stage's sensor).
pub(crate) const PT100: u8 = 6;
/// Standard curve number of the PT-1000.
const PT1000: u8 = 7;

/// Platinum RTD input ranges 0..6, ohm (10 ohm ... 10 kohm).
pub(crate) const PTC_RANGES_OHM: [f64; 7] = [10.0, 30.0, 100.0, 300.0, 1e3, 3e3, 10e3];

/// Resistance of a platinum RTD of `r0_ohm` at 0 degC, at `t_K`, ohm.
fn platinum_ohm(r0_ohm: f64, t_K: f64) -> f64 {
    let t = t_K - ZERO_C_K;
    let c = if t < 0.0 {
        CVD_C * (t - 100.0) * t.powi(3)
    } else {
        0.0
    };
    r0_ohm * (1.0 + CVD_A * t + CVD_B * t * t + c)
}

/// The stage sensor's (PT100) resistance at `t_K`, ohm.
pub(crate) fn pt100_ohm(t_K: f64) -> f64 {
    platinum_ohm(PT100_R0_OHM, t_K)
}

/// One temperature curve: a platinum RTD of nominal `r0_ohm`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Curve {
    name: &'static str,
    r0_ohm: f64,
    pub low_K: f64,
    pub limit_K: f64,
}

impl Curve {
    /// Temperature of sensor reading `ohm`, K (bisection on the monotonic
    /// Callendar-Van Dusen curve, 1 mK at worst).
    pub(crate) fn kelvin_from_sensor(&self, ohm: f64) -> f64 {
        let (mut lo, mut hi) = (1.0_f64, 2000.0_f64);
        for _ in 0..64 {
            let mid = 0.5 * (lo + hi);
            if platinum_ohm(self.r0_ohm, mid) < ohm {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        0.5 * (lo + hi)
    }

    /// Sensor reading at `t_K`, ohm.
    pub(crate) fn sensor_from_kelvin(&self, t_K: f64) -> f64 {
        platinum_ohm(self.r0_ohm, t_K)
    }

    /// Whether the curve converts readings of `sensor_type` (2 = platinum).
    pub(crate) fn suits(&self, sensor_type: u8) -> bool {
        sensor_type == 2
    }
}

/// Curve `n`, if the virtual controller holds it: the standard PT-100 (6)
/// and PT-1000 (7); every other slot is empty.
pub(crate) fn curve(n: u8) -> Option<Curve> {
    match n {
        PT100 => Some(Curve {
            name: "PT-100",
            r0_ohm: 100.0,
            low_K: 30.0,
            limit_K: 800.0,
        }),
        PT1000 => Some(Curve {
            name: "PT-1000",
            r0_ohm: 1000.0,
            low_K: 30.0,
            limit_K: 800.0,
        }),
        _ => None,
    }
}

/// `CRVHDR? n`: name (15 characters), serial number (10), format
/// (3 = ohm/K), limit (K) and coefficient (2 = positive); an empty slot
/// has blank fields and zeros.
pub(crate) fn header(n: u8) -> String {
    match curve(n) {
        Some(c) => format!("{:<15},{:<10},3,{:+.3},2", c.name, "STANDARD", c.limit_K),
        None => format!("{:<15},{:<10},0,{:+.3},0", "", "", 0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pt100_follows_iec_60751() {
        // Table values: 100.00 ohm at 0 degC, 138.51 at 100, 18.52 at -200.
        assert!((pt100_ohm(273.15) - 100.0).abs() < 1e-9);
        assert!((pt100_ohm(373.15) - 138.5055).abs() < 1e-3);
        assert!((pt100_ohm(73.15) - 18.52).abs() < 0.01);
        let c = curve(PT100).unwrap();
        for t in [40.0, 77.0, 298.15, 500.0] {
            assert!((c.kelvin_from_sensor(pt100_ohm(t)) - t).abs() < 1e-6, "{t}");
        }
        // The PT-1000 curve reads a PT100 as far colder.
        assert!(curve(PT1000).unwrap().kelvin_from_sensor(pt100_ohm(300.0)) < 80.0);
        assert_eq!(header(6), "PT-100         ,STANDARD  ,3,+800.000,2");
        assert!(curve(21).is_none());
    }
}
