//! The lock-in's dual-phase demodulator as a pure function of its samples,
//! so it can be checked against a synthetic sine without the bench.
//!
//! Owns: the sample grid (uniform in reference phase), the phase-sensitive
//! detection, the optional synchronous filter and the cascaded first-order
//! low-pass filters (6/12/18/24 dB/oct). Output convention of the SR860:
//! X and Y are RMS volts, `X = R cos(theta)`, `Y = R sin(theta)` for an
//! input `sqrt(2) R sin(phi_ref + theta)`.

use std::collections::VecDeque;
use std::f64::consts::SQRT_2;

/// Samples per reference period on the internal grid.
pub(crate) const SAMPLES_PER_PERIOD: usize = 32;
/// Shortest interval between two samples, true s: bounds the work per
/// simulated second at high frequency (above `1 / (32 * 1 ms) = 31.25 Hz`
/// the grid skips whole periods, see [`sample_interval_s`]).
pub(crate) const MIN_SAMPLE_INTERVAL_S: f64 = 1e-3;

/// Interval between samples at reference frequency `f_Hz`, true s. Always
/// `(M + 1/N) / f` with `N` = [`SAMPLES_PER_PERIOD`] and the smallest whole
/// number of skipped periods `M >= 0` that keeps the interval at or above
/// [`MIN_SAMPLE_INTERVAL_S`]: consecutive samples advance the reference
/// phase by exactly `2 pi / N` (modulo whole turns), so N consecutive
/// samples cover one period uniformly (equivalent-time sampling). For a
/// steady periodic input this demodulates exactly what the dense grid
/// would, at a bounded cost.
pub(crate) fn sample_interval_s(f_Hz: f64) -> f64 {
    let period_s = 1.0 / f_Hz;
    let base_s = period_s / SAMPLES_PER_PERIOD as f64;
    if base_s >= MIN_SAMPLE_INTERVAL_S {
        return base_s;
    }
    let skipped = ((MIN_SAMPLE_INTERVAL_S - base_s) / period_s).ceil();
    skipped * period_s + base_s
}

/// Dual-phase detector + filters.
#[derive(Debug, Clone)]
pub(crate) struct Demodulator {
    tc_s: f64,
    /// Cascaded first-order sections: 1..=4 (6..24 dB/oct).
    stages: usize,
    sync: bool,
    /// Products (in-phase, quadrature) of the last period, for the
    /// synchronous filter.
    ring: VecDeque<(f64, f64)>,
    ring_sum: (f64, f64),
    filters: [(f64, f64); 4],
}

impl Demodulator {
    pub(crate) fn new(tc_s: f64, stages: usize, sync: bool) -> Self {
        Demodulator {
            tc_s,
            stages: stages.clamp(1, 4),
            sync,
            ring: VecDeque::with_capacity(SAMPLES_PER_PERIOD),
            ring_sum: (0.0, 0.0),
            filters: [(0.0, 0.0); 4],
        }
    }

    pub(crate) fn set_time_constant_s(&mut self, tc_s: f64) {
        self.tc_s = tc_s;
    }

    pub(crate) fn set_stages(&mut self, stages: usize) {
        self.stages = stages.clamp(1, 4);
    }

    pub(crate) fn set_sync(&mut self, sync: bool) {
        self.sync = sync;
        self.restart_period();
    }

    /// Forgets the partial period of the synchronous filter (the reference
    /// frequency changed, so the old samples no longer tile a period).
    pub(crate) fn restart_period(&mut self) {
        self.ring.clear();
        self.ring_sum = (0.0, 0.0);
    }

    /// Feeds one input sample `v_V` taken at reference phase `phase_rad`
    /// (the phase-shifted reference), `dt_s` after the previous sample.
    pub(crate) fn push(&mut self, v_V: f64, phase_rad: f64, dt_s: f64) {
        let (s, c) = phase_rad.sin_cos();
        let product = (v_V * s, v_V * c);
        let input = if self.sync {
            if self.ring.len() == SAMPLES_PER_PERIOD
                && let Some(old) = self.ring.pop_front()
            {
                self.ring_sum.0 -= old.0;
                self.ring_sum.1 -= old.1;
            }
            self.ring.push_back(product);
            self.ring_sum.0 += product.0;
            self.ring_sum.1 += product.1;
            let n = self.ring.len() as f64;
            (self.ring_sum.0 / n, self.ring_sum.1 / n)
        } else {
            product
        };
        let alpha = if self.tc_s > 0.0 {
            -(-dt_s / self.tc_s).exp_m1()
        } else {
            1.0
        };
        let mut x = input;
        for stage in self.filters.iter_mut().take(self.stages) {
            stage.0 += alpha * (x.0 - stage.0);
            stage.1 += alpha * (x.1 - stage.1);
            x = *stage;
        }
    }

    /// (X, Y), RMS volts.
    pub(crate) fn xy_V_rms(&self) -> (f64, f64) {
        let last = self.filters[self.stages - 1];
        (SQRT_2 * last.0, SQRT_2 * last.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::{FRAC_PI_2, PI, TAU};

    /// Runs the demodulator on `A sin(2 pi f t + theta)` for `periods`.
    fn run(f_Hz: f64, amp_V: f64, theta: f64, tc_s: f64, stages: usize, sync: bool) -> (f64, f64) {
        let mut d = Demodulator::new(tc_s, stages, sync);
        let dt = sample_interval_s(f_Hz);
        let duration = 40.0 * tc_s * stages as f64 + 4.0 / f_Hz;
        let n = (duration / dt).ceil() as u64;
        for k in 0..n {
            let t = k as f64 * dt;
            let phase = TAU * f_Hz * t;
            d.push(amp_V * (phase + theta).sin(), phase, dt);
        }
        d.xy_V_rms()
    }

    fn close(got: f64, want: f64, rel: f64, scale: f64) -> bool {
        (got - want).abs() <= rel * scale
    }

    #[test]
    fn the_grid_is_uniform_in_phase_and_bounded() {
        let dt = sample_interval_s(1.0);
        assert!((dt - 1.0 / 32.0).abs() < 1e-15);
        for f in [40.0, 1e3, 12_345.0, 5e5] {
            let dt = sample_interval_s(f);
            assert!(dt >= MIN_SAMPLE_INTERVAL_S - 1e-15, "{f}: {dt}");
            let turns = dt * f * SAMPLES_PER_PERIOD as f64;
            assert!((turns - turns.round()).abs() < 1e-6, "{f}: {turns}");
            assert_eq!(turns.round() as u64 % SAMPLES_PER_PERIOD as u64, 1);
        }
    }

    #[test]
    fn a_known_sine_gives_its_rms_components_within_half_a_percent() {
        // amplitude 0.1 V peak = 70.71 mV rms, at 30 degrees.
        let (amp, theta) = (0.1, PI / 6.0);
        let r = amp / SQRT_2;
        for (f, tc, stages, sync) in [
            (1.0, 3.0, 4, true),
            (1.0, 30.0, 1, false),
            (0.1, 30.0, 2, true),
            (1e3, 0.1, 4, false),
            (137.0, 0.3, 3, true),
        ] {
            let (x, y) = run(f, amp, theta, tc, stages, sync);
            assert!(
                close(x, r * theta.cos(), 0.005, r) && close(y, r * theta.sin(), 0.005, r),
                "f {f} tc {tc} stages {stages} sync {sync}: x {x} y {y}"
            );
        }
    }

    #[test]
    fn quadrature_input_lands_in_y() {
        let (x, y) = run(2.0, 1.0, FRAC_PI_2, 3.0, 4, true);
        assert!(
            x.abs() < 1e-3 && (y - 1.0 / SQRT_2).abs() < 3.5e-3,
            "{x} {y}"
        );
    }

    #[test]
    fn the_synchronous_filter_removes_the_2f_ripple() {
        // tc of one period, 6 dB/oct: without the synchronous filter the 2f
        // term leaks through at ~1/(4 pi) of the signal.
        let spread = |sync: bool| {
            let mut d = Demodulator::new(1.0, 1, sync);
            let dt = sample_interval_s(1.0);
            let (mut lo, mut hi) = (f64::MAX, f64::MIN);
            for k in 0..(40 * 32) {
                let t = k as f64 * dt;
                let phase = TAU * t;
                d.push(phase.sin(), phase, dt);
                if k >= 30 * 32 {
                    let (x, _) = d.xy_V_rms();
                    lo = lo.min(x);
                    hi = hi.max(x);
                }
            }
            hi - lo
        };
        assert!(spread(false) > 0.02, "{}", spread(false));
        assert!(spread(true) < 1e-9, "{}", spread(true));
    }
}
