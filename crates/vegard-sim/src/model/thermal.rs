//! The temperature stage under the cell: a second-order system driven by its
//! controller, so a new setpoint is approached with the overshoot a real
//! heated stage with a tuned PID loop shows (PROTOCOLS.md, Lake Shore 336).
//!
//! `T'' + 2 zeta w T' + w^2 (T - T_target) = 0`, `w = 1/tau_s`, with
//! `T_target` the setpoint while a heater range is on and the ambient (the
//! bench's `cell.T_K`) with the heater off. The target is piecewise constant
//! in time, so the state is advanced with the exact matrix exponential of the
//! 2x2 system: no step-size error however long or short the interval, and
//! the same result whether the world advances in 2 ms chunks or in one go.
//!
//! Saturation of the heater is not modelled in the dynamics (the stage
//! always reaches the setpoint); [`ThermalStage::heater_percent`] reports
//! what the heater would deliver, for `HTR?`.

use vegard_recipe::ThermalParams;

/// Temperature rise above ambient the heater holds at 100 % output on each
/// heater range, K (index = range; 0 = off). Ranges are a decade of power
/// apart, as on the Lake Shore 336 (low, medium, high).
const FULL_SCALE_RISE_K: [f64; 4] = [0.0, 2.0, 20.0, 200.0];

/// The stage: ambient, controller setting and the thermal state.
#[derive(Debug, Clone, PartialEq)]
pub struct ThermalStage {
    omega_per_s: f64,
    zeta: f64,
    ambient_K: f64,
    setpoint_K: f64,
    heater_range: u8,
    T_K: f64,
    dT_K_per_s: f64,
}

impl ThermalStage {
    /// At rest at `ambient_K` with the heater off and the setpoint at ambient.
    /// `p` is expected to have passed [`super::validate`].
    pub fn new(p: &ThermalParams, ambient_K: f64) -> Self {
        ThermalStage {
            omega_per_s: 1.0 / p.tau_s,
            zeta: p.damping,
            ambient_K,
            setpoint_K: ambient_K,
            heater_range: 0,
            T_K: ambient_K,
            dT_K_per_s: 0.0,
        }
    }

    /// True stage temperature, K.
    pub fn temperature_K(&self) -> f64 {
        self.T_K
    }

    /// Rate of change of the stage temperature, K/s.
    pub fn rate_K_per_s(&self) -> f64 {
        self.dT_K_per_s
    }

    pub fn setpoint_K(&self) -> f64 {
        self.setpoint_K
    }

    pub fn set_setpoint_K(&mut self, setpoint_K: f64) {
        if setpoint_K.is_finite() && setpoint_K > 0.0 {
            self.setpoint_K = setpoint_K;
        }
    }

    pub fn heater_range(&self) -> u8 {
        self.heater_range
    }

    /// 0 switches the heater off (the stage relaxes to ambient); ranges above
    /// 3 are clamped to 3.
    pub fn set_heater_range(&mut self, range: u8) {
        self.heater_range = range.min(3);
    }

    /// Where the stage is heading: the setpoint with a heater range on,
    /// ambient with the heater off.
    pub fn target_K(&self) -> f64 {
        if self.heater_range > 0 {
            self.setpoint_K
        } else {
            self.ambient_K
        }
    }

    /// Heater output, percent of the range's full scale: the power that
    /// holds the present temperature against the losses to ambient plus the
    /// power that moves it at its present rate (first-order part of the
    /// stage, time constant `2 zeta / w`), clamped to 0..100.
    pub fn heater_percent(&self) -> f64 {
        let full = FULL_SCALE_RISE_K[usize::from(self.heater_range.min(3))];
        if full <= 0.0 {
            return 0.0;
        }
        let drive_K =
            self.T_K - self.ambient_K + 2.0 * self.zeta / self.omega_per_s * self.dT_K_per_s;
        (100.0 * drive_K / full).clamp(0.0, 100.0)
    }

    /// Advances by `dt_s` with the present target, exactly:
    /// `[y, y'](t) = exp(A t) [y, y'](0)`, `y = T - T_target`,
    /// `A = [[0, 1], [-w^2, -2 zeta w]]`, written with the eigenvalues
    /// `s +- q`, `s = -zeta w`, `q^2 = w^2 (zeta^2 - 1)` (oscillating for
    /// `zeta < 1`, critically damped at 1, overdamped above).
    pub fn advance(&mut self, dt_s: f64) {
        if !(dt_s > 0.0 && dt_s.is_finite()) {
            return;
        }
        let w = self.omega_per_s;
        let s = -self.zeta * w;
        let d = w * w * (self.zeta * self.zeta - 1.0);
        // exp(A t) = e^(s t) [c I + g (A - s I)] with c = cosh(q t) and
        // g = sinh(q t)/q (d > 0), cos and sin/q (d < 0), 1 and t (d = 0).
        let (c, g) = if d > 0.0 {
            let q = d.sqrt();
            ((q * dt_s).cosh(), (q * dt_s).sinh() / q)
        } else if d < 0.0 {
            let q = (-d).sqrt();
            ((q * dt_s).cos(), (q * dt_s).sin() / q)
        } else {
            (1.0, dt_s)
        };
        let e = (s * dt_s).exp();
        let target = self.target_K();
        let y = self.T_K - target;
        let v = self.dT_K_per_s;
        // A - s I = [[-s, 1], [-w^2, -2 zeta w - s]] = [[-s, 1], [-w^2, s]].
        let y1 = e * (c * y + g * (-s * y + v));
        let v1 = e * (c * v + g * (-w * w * y + s * v));
        self.T_K = target + y1;
        self.dT_K_per_s = v1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(tau_s: f64, damping: f64) -> ThermalParams {
        ThermalParams {
            tau_s,
            damping,
            sensor_noise_K_rms: 0.0,
        }
    }

    /// Steps from 298.15 K to 338.15 K with the heater on and follows the
    /// stage in 2 ms steps (the world's chunks) for `t_end_s`; returns the
    /// highest temperature and the final one.
    fn step_response(p: &ThermalParams, t_end_s: f64) -> (f64, f64, ThermalStage) {
        let mut st = ThermalStage::new(p, 298.15);
        st.set_setpoint_K(338.15);
        st.set_heater_range(3);
        let mut peak = st.temperature_K();
        let n = (t_end_s / 2e-3).round() as usize;
        for _ in 0..n {
            st.advance(2e-3);
            peak = peak.max(st.temperature_K());
        }
        (peak, st.temperature_K(), st)
    }

    #[test]
    fn at_rest_the_stage_stays_at_ambient() {
        let mut st = ThermalStage::new(&ThermalParams::default(), 298.15);
        st.advance(1000.0);
        assert_eq!(st.temperature_K(), 298.15);
        assert_eq!(st.heater_percent(), 0.0);
    }

    #[test]
    fn underdamped_stage_overshoots_by_the_textbook_amount_and_settles() {
        // Known answer: overshoot exp(-pi zeta / sqrt(1 - zeta^2)) =
        // exp(-0.6 pi / 0.8) = 9.478 % at zeta = 0.6, at the peak time
        // pi / (w sqrt(1 - zeta^2)) = 20 pi / 0.8 = 78.54 s.
        let p = ThermalParams::default();
        let (peak, _, _) = step_response(&p, 120.0);
        let overshoot = (peak - 338.15) / 40.0;
        assert!(
            (overshoot - 0.094_78).abs() < 1e-4,
            "overshoot {:.4} %",
            100.0 * overshoot
        );
        // Settled within 0.01 K after 20 tau (envelope exp(-0.6 * 20) = 6e-6).
        let (_, end, st) = step_response(&p, 400.0);
        assert!((end - 338.15).abs() < 0.01, "T = {end}");
        // Holding 40 K above ambient on the high range: 20 % output.
        assert!((st.heater_percent() - 20.0).abs() < 0.1);
    }

    #[test]
    fn exact_propagation_does_not_depend_on_the_step() {
        let p = ThermalParams::default();
        let (_, chunked, _) = step_response(&p, 50.0);
        let mut st = ThermalStage::new(&p, 298.15);
        st.set_setpoint_K(338.15);
        st.set_heater_range(2);
        st.advance(50.0);
        assert!((st.temperature_K() - chunked).abs() < 1e-8);
        // Closed form for zeta < 1: y(t) = -dT e^(-zeta w t) (cos(wd t) +
        // zeta / sqrt(1 - zeta^2) sin(wd t)), wd = w sqrt(1 - zeta^2).
        let (w, z) = (1.0 / 20.0, 0.6);
        let wd = w * (1.0f64 - z * z).sqrt();
        let t = 50.0;
        let y = -40.0
            * (-z * w * t).exp()
            * ((wd * t).cos() + z / (1.0 - z * z).sqrt() * (wd * t).sin());
        assert!((st.temperature_K() - (338.15 + y)).abs() < 1e-9);
    }

    #[test]
    fn critically_and_over_damped_stages_do_not_overshoot() {
        for zeta in [1.0, 2.0] {
            let (peak, end, _) = step_response(&params(20.0, zeta), 600.0);
            assert!(peak <= 338.15 + 1e-9, "zeta {zeta}: peak {peak}");
            assert!((end - 338.15).abs() < 0.05, "zeta {zeta}: {end}");
        }
        // Critical damping: y = -dT (1 + w t) e^(-w t).
        let mut st = ThermalStage::new(&params(20.0, 1.0), 298.15);
        st.set_setpoint_K(338.15);
        st.set_heater_range(1);
        st.advance(30.0);
        let y = -40.0 * (1.0 + 1.5) * (-1.5f64).exp();
        assert!((st.temperature_K() - 338.15 - y).abs() < 1e-9);
    }

    #[test]
    fn heater_off_relaxes_to_ambient() {
        let p = ThermalParams::default();
        let (_, _, mut st) = step_response(&p, 300.0);
        st.set_heater_range(0);
        assert_eq!(st.heater_percent(), 0.0);
        st.advance(600.0);
        assert!((st.temperature_K() - 298.15).abs() < 1e-3);
        // The setpoint is remembered for the next time the heater is on.
        assert_eq!(st.setpoint_K(), 338.15);
    }
}
