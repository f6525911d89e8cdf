//! The passive cantilever: turns the film's height change into the
//! photodetector voltage the deflection digitizer reads (PHYSICS.md sections
//! 2-3). The height is a sum of separately switchable mechanisms; the ideal
//! bench has only Vegard strain, and the non-ideal ones are added only when
//! their parameter is non-zero, so the ideal bench's numbers do not change
//! by a bit. Holder drift and detector noise are added on top, from one
//! seeded random stream so a run is reproducible.

use super::{CellState, electrostatic_nm_per_V2, kappa_nm_per_C, kappa2_nm_per_C2};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use vegard_recipe::SimParams;

/// Seed offset so the lever's stream differs from other streams seeded from
/// the same `seed` (clock jitter, current noise).
const LEVER_STREAM: u64 = 0x4c45_5645_5200_0001;

/// One mechanism that moves the tip, in nm: Vegard strain and, each
/// switchable by its own parameter, its quadratic correction, the
/// electrostatic force, electrostriction of the film and thermal expansion
/// from Joule heating (PHYSICS.md sections 2 and 7).
#[derive(Debug, Clone, PartialEq)]
pub enum DeflectionTerm {
    /// Vegard strain, `u = kappa Q_F` relative to the state at construction.
    Vegard { kappa_nm_per_C: f64 },
    /// Second-order Vegard strain of a concentration-dependent partial molar
    /// volume, `u = kappa2 Q_F^2` with `Q_F` counted from the rest state at
    /// `x_initial` (derivation, sign and the uniform-profile approximation:
    /// [`kappa2_nm_per_C2`]). Present when `strain.dOmega_dx_m3_per_mol != 0`.
    QuadraticVegard { kappa2_nm_per_C2: f64 },
    /// Electrostatic attraction of the tip, `u = -F/k = c (E - V_cpd)^2` with
    /// `c = -0.5 (dC/dz) / k` (see [`electrostatic_nm_per_V2`]). Present
    /// when `electrostatic.dC_dz_F_per_m != 0`.
    ///
    /// `E` is the state's `E_app_V`: the working electrode's potential vs the
    /// reference, i.e. the tip is taken to sit at the reference's potential
    /// and any fixed offset between them is part of `V_cpd`. With the cell
    /// switched off the state reports the open-circuit potential there, and
    /// the force follows it: a disconnected electrode still sits at its OCP
    /// against the solution, and the deflection does not jump when the
    /// potentiostat switches the cell on or off at the rest potential. It is
    /// flat in frequency, but quadratic in `E`: a sine on `E` gives a second
    /// harmonic, a CV a parabola in `E`.
    Electrostatic {
        electrostatic_nm_per_V2: f64,
        V_cpd_V: f64,
    },
    /// Electrostriction of the film, `u = c (E_int - E_zero)^2` with
    /// `E_int = E - I R_s` across the interface: flat in frequency, in
    /// phase with `E`, zero where the field across the film vanishes.
    /// Present when `electrostriction.coefficient_nm_per_V2 != 0`.
    Electrostriction {
        coefficient_nm_per_V2: f64,
        E_zero_V: f64,
    },
    /// Thermal expansion from Joule heating, `u = expansion dT` with `dT`
    /// the state's lagged `I^2 R_s R_th` (integrated by the electrode).
    /// Present when `joule_heating.R_th_K_per_W > 0`.
    JouleExpansion { expansion_nm_per_K: f64 },
}

impl DeflectionTerm {
    fn deflection_nm(&self, state: &CellState) -> f64 {
        match self {
            DeflectionTerm::Vegard { kappa_nm_per_C } => kappa_nm_per_C * state.Q_F_C,
            DeflectionTerm::QuadraticVegard { kappa2_nm_per_C2 } => {
                kappa2_nm_per_C2 * state.Q_F_C * state.Q_F_C
            }
            DeflectionTerm::Electrostatic {
                electrostatic_nm_per_V2,
                V_cpd_V,
            } => {
                let dV = state.E_app_V - V_cpd_V;
                electrostatic_nm_per_V2 * dV * dV
            }
            DeflectionTerm::Electrostriction {
                coefficient_nm_per_V2,
                E_zero_V,
            } => {
                let dV = state.E_int_V - E_zero_V;
                coefficient_nm_per_V2 * dV * dV
            }
            DeflectionTerm::JouleExpansion { expansion_nm_per_K } => {
                expansion_nm_per_K * state.dT_joule_K
            }
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
        let mut terms = vec![DeflectionTerm::Vegard {
            kappa_nm_per_C: kappa_nm_per_C(p),
        }];
        if p.strain.dOmega_dx_m3_per_mol != 0.0 {
            terms.push(DeflectionTerm::QuadraticVegard {
                kappa2_nm_per_C2: kappa2_nm_per_C2(p),
            });
        }
        if p.electrostatic.dC_dz_F_per_m != 0.0 {
            terms.push(DeflectionTerm::Electrostatic {
                electrostatic_nm_per_V2: electrostatic_nm_per_V2(p),
                V_cpd_V: p.electrostatic.V_cpd_V,
            });
        }
        let es = &p.electrostriction;
        if es.coefficient_nm_per_V2 != 0.0 {
            terms.push(DeflectionTerm::Electrostriction {
                coefficient_nm_per_V2: es.coefficient_nm_per_V2,
                E_zero_V: es.E_zero_V,
            });
        }
        if p.joule_heating.R_th_K_per_W > 0.0 && p.joule_heating.expansion_nm_per_K != 0.0 {
            terms.push(DeflectionTerm::JouleExpansion {
                expansion_nm_per_K: p.joule_heating.expansion_nm_per_K,
            });
        }
        Lever {
            terms,
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
            dT_joule_K: 0.0,
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

    /// The non-ideal settings of configs/sim-nonideal.toml on the quiet bench.
    fn non_ideal() -> SimParams {
        let mut p = quiet();
        p.strain.dOmega_dx_m3_per_mol = 3e-6;
        p.electrostatic.dC_dz_F_per_m = 2e-9;
        p.electrostatic.V_cpd_V = -0.1;
        p
    }

    fn state_at(Q_F_C: f64, E_app_V: f64) -> CellState {
        CellState {
            E_app_V,
            ..state(Q_F_C)
        }
    }

    #[test]
    fn default_bench_has_only_the_vegard_term() {
        let p = quiet();
        let lever = Lever::new(&p);
        assert_eq!(
            lever.terms(),
            [DeflectionTerm::Vegard {
                kappa_nm_per_C: kappa_nm_per_C(&p)
            }]
        );
        // A contact potential alone switches nothing on: the force needs C'.
        let mut q = p.clone();
        q.electrostatic.V_cpd_V = 0.3;
        assert_eq!(Lever::new(&q).terms().len(), 1);
        for (Q, E) in [(1e-3, 0.9), (-7e-3, -0.1)] {
            assert_eq!(
                Lever::new(&q).true_deflection_nm(&state_at(Q, E)),
                kappa_nm_per_C(&p) * Q
            );
        }
    }

    #[test]
    fn quadratic_vegard_term_is_kappa2_times_charge_squared() {
        let mut p = quiet();
        p.strain.dOmega_dx_m3_per_mol = 3e-6;
        let lever = Lever::new(&p);
        // By hand (Python, CODATA F): G = 1.3/0.7, zFA = 9.648533212 C/mol,
        // L c_max = 4.734e-3 mol/m^2:
        // kappa2 = G 3e-6 / (6 (zFA)^2 L c_max) = 2.1070e-6 m/C^2
        // = 2106.9997 nm/C^2; kappa = -205.31125 nm/C.
        let kappa2 = kappa2_nm_per_C2(&p);
        assert!((kappa2 / 2_106.999_686 - 1.0).abs() < 1e-9, "{kappa2}");
        let kappa = kappa_nm_per_C(&p);
        assert!((kappa / -205.311_246_5 - 1.0).abs() < 1e-9, "{kappa}");
        assert_eq!(lever.terms().len(), 2);
        for q in [-1.5e-2, -2e-3, 0.0, 4e-3, 2e-2] {
            let u = lever.true_deflection_nm(&state(q));
            let expected = -205.311_246_5 * q + 2_106.999_686 * q * q;
            assert!(
                (u - expected).abs() <= 1e-9 * expected.abs().max(1e-3),
                "Q_F = {q}: {u} vs {expected}"
            );
        }
        // Curves up on both sides (dOmega/dx > 0): above the line kappa Q_F.
        for q in [-1e-2, 1e-2] {
            assert!(lever.true_deflection_nm(&state(q)) > kappa * q);
        }
        // 20 mC extracted: -4.106 nm linear, +0.843 nm quadratic.
        let u = lever.true_deflection_nm(&state(2e-2));
        assert!((u - (-4.106_225 + 0.842_800)).abs() < 1e-5, "{u}");
        // The quadratic term reads the state's charge, not the potential.
        assert_eq!(
            lever.true_deflection_nm(&state_at(3e-3, 0.9)),
            lever.true_deflection_nm(&state_at(3e-3, -0.1))
        );
    }

    #[test]
    fn electrostatic_term_is_minus_half_c_prime_dv_squared_over_k() {
        let mut p = quiet();
        p.electrostatic.dC_dz_F_per_m = 2e-9;
        p.electrostatic.V_cpd_V = -0.1;
        let lever = Lever::new(&p);
        // -0.5 C' / k = -0.5 * 2e-9 / 0.8 = -1.25e-9 m/V^2 = -1.25 nm/V^2.
        assert!((electrostatic_nm_per_V2(&p) + 1.25).abs() < 1e-12);
        let kappa = kappa_nm_per_C(&p);
        for (E, es) in [(-0.1, 0.0), (0.4, -0.3125), (0.9, -1.25), (-0.6, -0.3125)] {
            let s = state_at(1e-3, E);
            let u = lever.true_deflection_nm(&s) - kappa * 1e-3;
            assert!((u - es).abs() < 1e-12, "E = {E}: {u} vs {es}");
        }
        // The force only ever pulls the tip toward the surface.
        for k in 0..=40 {
            let E = -1.0 + 0.05 * f64::from(k);
            assert!(lever.true_deflection_nm(&state_at(0.0, E)) <= 0.0);
        }
        // Open circuit: the state reports the OCP as E_app_V; the lever
        // uses it like any applied potential (no special case).
        let ocp = CellState {
            E_app_V: 0.25,
            E_int_V: 0.25,
            I_A: 0.0,
            I_F_A: 0.0,
            ..state(0.0)
        };
        assert!((lever.true_deflection_nm(&ocp) + 1.25 * 0.35 * 0.35).abs() < 1e-12);
        // The digitizer sees it through the InvOLS.
        let mut lever = lever;
        let v = lever.measured_volts(1.0, &state_at(0.0, 0.9));
        assert!((v * p.lever.invols_nm_per_V + 1.25).abs() < 1e-12);
    }

    #[test]
    fn electrostatic_term_under_a_sine_has_a_second_harmonic() {
        // u = c (d + a sin wt)^2 = c (d^2 + a^2/2) + 2 c d a sin wt
        //   - (c a^2 / 2) cos 2wt, with c = -1.25 nm/V^2, d = E_dc - V_cpd.
        let p = non_ideal();
        let lever = Lever::new(&p);
        let (E_dc, a) = (0.4, 0.02);
        let d = E_dc - p.electrostatic.V_cpd_V;
        // Lock-in sum over two whole periods (PHYSICS.md section 3):
        // Z_n = (2/N) sum u_k exp(-j n phi_k), peak phasor against a cosine.
        let N = 400;
        let phi: Vec<f64> = (0..N)
            .map(|k| 2.0 * std::f64::consts::TAU * k as f64 / N as f64)
            .collect();
        let u: Vec<f64> = phi
            .iter()
            .map(|&ph| lever.true_deflection_nm(&state_at(0.0, E_dc + a * ph.sin())))
            .collect();
        let harmonic = |n: f64| {
            let (re, im) = phi.iter().zip(&u).fold((0.0, 0.0), |(re, im), (ph, u)| {
                (re + u * (n * ph).cos(), im - u * (n * ph).sin())
            });
            (2.0 * re / N as f64, 2.0 * im / N as f64)
        };
        let (first, second, third) = (harmonic(1.0), harmonic(2.0), harmonic(3.0));
        // sin wt is the phasor -j, cos 2wt is 1.
        let c = -1.25;
        let tol = 1e-12;
        assert!(
            first.0.abs() < tol && (first.1 + 2.0 * c * d * a).abs() < tol,
            "{first:?}"
        );
        assert!(
            (second.0 + 0.5 * c * a * a).abs() < tol && second.1.abs() < tol,
            "{second:?}"
        );
        assert!(third.0.abs() < tol && third.1.abs() < tol, "{third:?}");
        // First harmonic per volt: the small-signal -C'(E_dc - V_cpd)/k.
        let ss = super::super::SmallSignal::new(&p, E_dc);
        assert!((ss.electrostatic_nm_per_V + 1.25).abs() < 1e-12);
        assert!((first.1.abs() / a - ss.electrostatic_nm_per_V.abs()).abs() < 1e-9);
    }

    #[test]
    fn non_ideal_terms_add_up() {
        let p = non_ideal();
        let lever = Lever::new(&p);
        assert_eq!(lever.terms().len(), 3);
        let (q, E) = (-8e-3, 0.65);
        let expected = kappa_nm_per_C(&p) * q + kappa2_nm_per_C2(&p) * q * q - 1.25 * 0.75 * 0.75;
        let u = lever.true_deflection_nm(&state_at(q, E));
        assert!((u / expected - 1.0).abs() < 1e-12, "{u} vs {expected}");
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

    /// Electrostriction follows the potential across the interface,
    /// `c (E_int - E_zero)^2`, not the applied one or the contact
    /// potential; Joule expansion is `expansion dT`. Each is added only when
    /// switched on.
    #[test]
    fn electrostriction_and_joule_terms_follow_their_own_variables() {
        let mut p = quiet();
        p.electrostriction.coefficient_nm_per_V2 = 0.8;
        p.electrostriction.E_zero_V = 0.1;
        let lever = Lever::new(&p);
        assert_eq!(lever.terms().len(), 2);
        let s = CellState {
            E_app_V: 0.9,
            E_int_V: 0.6,
            ..state(0.0)
        };
        assert!((lever.true_deflection_nm(&s) - 0.8 * 0.5 * 0.5).abs() < 1e-12);
        let mut q = quiet();
        q.joule_heating.R_th_K_per_W = 1000.0;
        q.joule_heating.expansion_nm_per_K = 4.0;
        let lever = Lever::new(&q);
        assert_eq!(
            lever.terms()[1],
            DeflectionTerm::JouleExpansion {
                expansion_nm_per_K: 4.0
            }
        );
        let hot = CellState {
            dT_joule_K: 0.025,
            ..state(0.0)
        };
        assert!((lever.true_deflection_nm(&hot) - 0.1).abs() < 1e-12);
        // Joule heating needs R_th: its other parameters alone add nothing.
        let mut r = quiet();
        r.joule_heating.expansion_nm_per_K = 4.0;
        assert_eq!(Lever::new(&r).terms().len(), 1);
    }
}
