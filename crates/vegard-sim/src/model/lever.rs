//! The passive cantilever: turns the film's height change into the
//! photodetector voltage the deflection digitizer reads (PHYSICS.md sections
//! 2-3). The height is a sum of separately switchable mechanisms; the ideal
//! bench has only Vegard strain. Holder drift and detector noise are added on
//! top, from one seeded random stream so a run is reproducible.

use super::{CellState, kappa_nm_per_C};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use vegard_recipe::SimParams;

/// Seed offset so the lever's stream differs from other streams seeded from
/// the same `seed` (clock jitter, current noise).
const LEVER_STREAM: u64 = 0x4c45_5645_5200_0001;

/// One mechanism that moves the tip, in nm. The non-ideal ones from
/// PHYSICS.md section 2 (concentration-dependent Omega, electrostatic force,
/// electrostriction, Joule heating) become further variants, each enabled by
/// its own parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum DeflectionTerm {
    /// Vegard strain, `u = kappa Q_F` relative to the state at construction.
    Vegard { kappa_nm_per_C: f64 },
}

impl DeflectionTerm {
    fn deflection_nm(&self, state: &CellState) -> f64 {
        match self {
            DeflectionTerm::Vegard { kappa_nm_per_C } => kappa_nm_per_C * state.Q_F_C,
        }
    }
}

/// The lever, its holder and its detector.
#[derive(Debug, Clone)]
pub struct Lever {
    terms: Vec<DeflectionTerm>,
    invols_nm_per_V: f64,
    drift_nm_per_s: f64,
    /// Random-walk step scale, nm per sqrt(s).
    walk_nm_per_sqrt_s: f64,
    noise_nm_rms: f64,
    walk_nm: f64,
    walk_t_s: f64,
    rng: StdRng,
}

impl Lever {
    /// `p` is expected to have passed [`super::validate`] (as `Electrode::new`
    /// and `truth` do); a non-positive InvOLS would make the volts meaningless.
    pub fn new(p: &SimParams) -> Self {
        Lever {
            terms: vec![DeflectionTerm::Vegard {
                kappa_nm_per_C: kappa_nm_per_C(p),
            }],
            invols_nm_per_V: p.lever.invols_nm_per_V,
            drift_nm_per_s: p.drift.holder_nm_per_min / 60.0,
            walk_nm_per_sqrt_s: p.drift.random_walk_nm_per_sqrt_min / 60f64.sqrt(),
            noise_nm_rms: p.noise.deflection_nm_rms,
            walk_nm: 0.0,
            walk_t_s: 0.0,
            rng: StdRng::seed_from_u64(p.seed ^ LEVER_STREAM),
        }
    }

    /// The mechanisms currently switched on.
    pub fn terms(&self) -> &[DeflectionTerm] {
        &self.terms
    }

    /// Height change of the film under the tip, nm, without drift or noise.
    pub fn true_deflection_nm(&self, state: &CellState) -> f64 {
        self.terms.iter().map(|t| t.deflection_nm(state)).sum()
    }

    /// Holder drift at true time `t_true_s`, nm: linear part plus a random
    /// walk advanced to `t_true_s` (queries earlier than the last one reuse
    /// the walk's current value; time never runs backwards for the holder).
    pub fn drift_nm(&mut self, t_true_s: f64) -> f64 {
        if t_true_s > self.walk_t_s && self.walk_nm_per_sqrt_s > 0.0 {
            let step: f64 = self.rng.sample(StandardNormal);
            self.walk_nm += self.walk_nm_per_sqrt_s * (t_true_s - self.walk_t_s).sqrt() * step;
        }
        self.walk_t_s = self.walk_t_s.max(t_true_s);
        self.drift_nm_per_s * t_true_s + self.walk_nm
    }

    /// One detector sample at true time `t_true_s`: deflection + holder
    /// drift + white detector noise, divided by the InvOLS.
    pub fn measured_volts(&mut self, t_true_s: f64, state: &CellState) -> f64 {
        let drift = self.drift_nm(t_true_s);
        let noise = if self.noise_nm_rms > 0.0 {
            let n: f64 = self.rng.sample(StandardNormal);
            self.noise_nm_rms * n
        } else {
            0.0
        };
        (self.true_deflection_nm(state) + drift + noise) / self.invols_nm_per_V
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(Q_F_C: f64) -> CellState {
        CellState {
            E_app_V: 0.5,
            E_int_V: 0.5,
            I_A: 1e-3,
            I_F_A: 1e-3,
            Q_F_C,
            Q_C: Q_F_C + 1e-5,
            x_surface: 0.5,
            x_mean: 0.5,
            T_K: 298.15,
        }
    }

    fn quiet() -> SimParams {
        let mut p = SimParams::default();
        p.noise.deflection_nm_rms = 0.0;
        p.drift.holder_nm_per_min = 0.0;
        p.drift.random_walk_nm_per_sqrt_min = 0.0;
        p
    }

    #[test]
    fn pure_vegard_deflection_is_kappa_times_faradaic_charge() {
        let p = quiet();
        let mut lever = Lever::new(&p);
        let kappa = kappa_nm_per_C(&p);
        for q in [-5e-3, 0.0, 2e-3, 1.5e-2] {
            let s = state(q);
            assert_eq!(lever.true_deflection_nm(&s), kappa * q);
            let v = lever.measured_volts(10.0, &s);
            assert!((v * p.lever.invols_nm_per_V - kappa * q).abs() < 1e-12);
        }
        // Extraction (Q_F > 0) shrinks the film.
        assert!(lever.true_deflection_nm(&state(1e-3)) < 0.0);
    }

    #[test]
    fn linear_holder_drift() {
        let mut p = quiet();
        p.drift.holder_nm_per_min = 0.3;
        let mut lever = Lever::new(&p);
        let v = lever.measured_volts(120.0, &state(0.0));
        assert!((v * p.lever.invols_nm_per_V - 0.6).abs() < 1e-12);
    }

    #[test]
    fn detector_noise_has_the_configured_rms() {
        let mut p = quiet();
        p.noise.deflection_nm_rms = 0.02;
        let mut lever = Lever::new(&p);
        let n = 20_000;
        let samples: Vec<f64> = (0..n)
            .map(|k| lever.measured_volts(k as f64 * 1e-3, &state(0.0)) * p.lever.invols_nm_per_V)
            .collect();
        let mean = samples.iter().sum::<f64>() / n as f64;
        let rms = (samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
        // Standard error of an rms estimate from n samples: 1/sqrt(2n) = 0.5 %.
        assert!((rms / 0.02 - 1.0).abs() < 0.03, "rms {rms} nm");
        assert!(mean.abs() < 5.0 * 0.02 / (n as f64).sqrt());
    }

    #[test]
    fn random_walk_grows_as_sqrt_time() {
        let mut p = quiet();
        p.drift.random_walk_nm_per_sqrt_min = 0.05;
        let mut lever = Lever::new(&p);
        // Increments over 1-minute intervals must have std 0.05 nm.
        let n = 4000;
        let mut prev = lever.drift_nm(0.0);
        let mut sum_sq = 0.0;
        for k in 1..=n {
            // Two sub-queries per interval: increments must add up.
            lever.drift_nm(k as f64 * 60.0 - 17.0);
            let d = lever.drift_nm(k as f64 * 60.0);
            sum_sq += (d - prev).powi(2);
            prev = d;
        }
        let std = (sum_sq / n as f64).sqrt();
        assert!(
            (std / 0.05 - 1.0).abs() < 0.05,
            "std {std} nm per sqrt(min)"
        );
    }

    #[test]
    fn same_seed_same_signal_other_seed_other_signal() {
        let p = SimParams::default();
        let run = |p: &SimParams| {
            let mut lever = Lever::new(p);
            (0..100)
                .map(|k| lever.measured_volts(k as f64 * 0.01, &state(1e-3)))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(&p), run(&p));
        let mut q = p.clone();
        q.seed += 1;
        assert_ne!(run(&p), run(&q));
    }
}
