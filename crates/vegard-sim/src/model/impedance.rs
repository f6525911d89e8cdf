//! Small-signal frequency response of the simulated cell (PHYSICS.md section
//! 4): the impedance and the Vegard deflection per volt that the time-domain
//! [`Electrode`](super::Electrode) produces under a small sine around a dc
//! potential. These are the ground truth for EIS and ESM spectra: the analysis
//! fits them, the tests here check that the solver actually obeys them.
//!
//! The cell is linearised at equilibrium at `E_dc` (surface and bulk at
//! `x_eq(E_dc)`, no dc current), which gives the Randles circuit with an open
//! (reflective) finite Warburg element:
//!
//! ```text
//! Z = R_s + 1 / (1/Z_F + j w C_dl),   Z_F = R_ct + Z_Wo,
//! Z_Wo = Z0 coth(sqrt(j w tau)) / sqrt(j w tau),   tau = L^2 / D.
//! ```
//!
//! Derivation from the solver's own equations (electrode.rs): with
//! `Qc = zFA c_max`, `f = zF/(RT)`, `eta = E - E0`,
//! `I_F = Qc k0 (x_s e^((1-a) f eta) - (1 - x_s) e^(-a f eta))`. At
//! equilibrium both terms equal `j0 = x^a (1-x)^(1-a)`, so
//! `dI_F = Qc k0 (f j0 dE + (e1 + e2) dx_s)` with `(e1 + e2)/j0 = 1/(x(1-x))`.
//! Hence `R_ct = 1/(f i0)`, `i0 = Qc k0 x^a (1-x)^(1-a)`. Fick's law with no
//! flux at the collector gives `dx_s = -dI_F tau coth(u)/(Qc L u)`,
//! `u = sqrt(j w tau)`, so
//! `Z0 = tau / C_int`, `C_int = Qc L f x(1-x) = zFAL c_max |dx_eq/dE|`: the
//! film's chemical capacitance, independent of the kinetics.
//!
//! Sign conventions as in the rest of the model: `Z = V/I` for phasors of
//! `exp(+j w t)`, current anodic positive, so a capacitive cell has
//! `Im Z < 0`; the deflection follows `u = kappa Q_F` with `kappa < 0`.

use super::{diffusion_m2_per_s, kappa_nm_per_C, rate_constant_m_per_s};
use std::f64::consts::PI;
use std::ops::{Add, Div, Mul, Neg, Sub};
use vegard_core::constants::{FARADAY_C_PER_MOL, GAS_CONSTANT_J_PER_MOL_K};
use vegard_recipe::SimParams;

/// A complex number, just enough for circuit algebra (no dependency for a
/// handful of operations).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct C64 {
    pub re: f64,
    pub im: f64,
}

impl C64 {
    pub const ZERO: C64 = C64 { re: 0.0, im: 0.0 };
    pub const ONE: C64 = C64 { re: 1.0, im: 0.0 };
    /// The imaginary unit j.
    pub const J: C64 = C64 { re: 0.0, im: 1.0 };

    pub const fn new(re: f64, im: f64) -> Self {
        C64 { re, im }
    }

    /// Modulus.
    pub fn abs(self) -> f64 {
        self.re.hypot(self.im)
    }

    /// Argument in radians, in (-pi, pi].
    pub fn arg(self) -> f64 {
        self.im.atan2(self.re)
    }

    /// Argument in degrees, the unit of EIS and lock-in phase plots.
    pub fn arg_deg(self) -> f64 {
        self.arg().to_degrees()
    }

    pub fn conj(self) -> Self {
        C64::new(self.re, -self.im)
    }

    pub fn scale(self, k: f64) -> Self {
        C64::new(self.re * k, self.im * k)
    }

    pub fn recip(self) -> Self {
        C64::ONE / self
    }

    /// `exp(z) - 1`, accurate for small `|z|` (where `tanh(u)/u` needs it).
    fn exp_m1(self) -> Self {
        let e = self.re.exp_m1();
        let (s, c) = self.im.sin_cos();
        let half = (0.5 * self.im).sin();
        C64::new(e * c - 2.0 * half * half, (e + 1.0) * s)
    }
}

impl From<f64> for C64 {
    fn from(re: f64) -> Self {
        C64::new(re, 0.0)
    }
}

impl Add for C64 {
    type Output = C64;
    fn add(self, o: C64) -> C64 {
        C64::new(self.re + o.re, self.im + o.im)
    }
}

impl Sub for C64 {
    type Output = C64;
    fn sub(self, o: C64) -> C64 {
        C64::new(self.re - o.re, self.im - o.im)
    }
}

impl Mul for C64 {
    type Output = C64;
    fn mul(self, o: C64) -> C64 {
        C64::new(
            self.re * o.re - self.im * o.im,
            self.re * o.im + self.im * o.re,
        )
    }
}

impl Div for C64 {
    type Output = C64;
    /// Smith's algorithm: no overflow for large moduli (an open Warburg
    /// element at low frequency is huge).
    fn div(self, o: C64) -> C64 {
        if o.re.abs() >= o.im.abs() {
            let r = o.im / o.re;
            let d = o.re + o.im * r;
            C64::new((self.re + self.im * r) / d, (self.im - self.re * r) / d)
        } else {
            let r = o.re / o.im;
            let d = o.re * r + o.im;
            C64::new((self.re * r + self.im) / d, (self.im * r - self.re) / d)
        }
    }
}

impl Neg for C64 {
    type Output = C64;
    fn neg(self) -> C64 {
        C64::new(-self.re, -self.im)
    }
}

/// `u = sqrt(j s)` for `s >= 0`, written out so no general complex root is needed.
fn sqrt_j(s: f64) -> C64 {
    let a = (0.5 * s).sqrt();
    C64::new(a, a)
}

/// `(tanh(u), coth(u))` for `Re u >= 0` via `m = exp(-2u) - 1`, which neither
/// overflows for large `u` nor cancels for small `u`.
fn tanh_coth(u: C64) -> (C64, C64) {
    let m = u.scale(-2.0).exp_m1();
    let two_plus_m = C64::from(2.0) + m;
    (-m / two_plus_m, two_plus_m / -m)
}

/// Film transfer function `H(s) = tanh(sqrt(j s)) / sqrt(j s)`, `s = w tau`.
///
/// Ratio of the film-averaged to the surface concentration change under a
/// small sine (PHYSICS.md section 4): the ESM spectrum's shape, so fitting it
/// gives `tau_ESM`. `H -> 1` for `s -> 0` (the whole film follows), `|H| =
/// 1/sqrt 2` near `s = 2.5`, and `H -> 1/sqrt(j s)` (phase -45 deg) for large
/// `s`, where only a diffusion length at the surface takes part. `s` must be
/// `>= 0` (NaN otherwise).
pub fn film_transfer_H(s: f64) -> C64 {
    if s == 0.0 {
        return C64::ONE;
    }
    let u = sqrt_j(s);
    tanh_coth(u).0 / u
}

/// The linearised cell at one dc potential: the elements of the Randles
/// circuit with their derivation from the simulator's parameters, kept
/// together so spectra at many frequencies reuse them and reports can show
/// the element values the analysis should recover.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SmallSignal {
    /// The dc (applied = interface, no dc current) potential, V.
    pub E_dc_V: f64,
    /// Equilibrium mole fraction at `E_dc`, uniform through the film.
    pub x_eq: f64,
    pub R_s_ohm: f64,
    pub C_dl_F: f64,
    /// Exchange current of the solver's rate law at `x_eq`,
    /// `zFA c_max k0 x^a (1-x)^(1-a)`.
    pub exchange_current_A: f64,
    /// Charge-transfer resistance `RT / (zF i0)`.
    pub R_ct_ohm: f64,
    /// Diffusion time `L^2/D`.
    pub tau_s: f64,
    /// Chemical capacitance of the film, `zFAL c_max |dx_eq/dE|`.
    pub C_int_F: f64,
    /// Warburg prefactor `tau / C_int`; the low-frequency resistance of the
    /// finite Warburg element is `Z0 / 3`.
    pub Z0_ohm: f64,
    /// Vegard coupling, nm per coulomb of faradaic charge (negative).
    pub kappa_nm_per_C: f64,
}

impl SmallSignal {
    /// Linearises the cell described by `p` (expected to have passed
    /// [`super::validate`]) at equilibrium at `E_dc_V`. Far outside the
    /// redox wave `x(1-x)` underflows and `R_ct`, `Z0` become infinite: the
    /// film is then blocking, which is the physical answer.
    pub fn new(p: &SimParams, E_dc_V: f64) -> Self {
        let film = &p.film;
        let f_per_V = film.z * FARADAY_C_PER_MOL / (GAS_CONSTANT_J_PER_MOL_K * p.cell.T_K);
        let fe = f_per_V * (E_dc_V - film.E0_V);
        // ln x and ln(1-x) of x = 1/(1 + exp(f eta)), without overflow.
        let softplus = |y: f64| y.max(0.0) + (-y.abs()).exp().ln_1p();
        let ln_x = -softplus(fe);
        let ln_1mx = -softplus(-fe);
        let a = p.kinetics.alpha;
        let charge_per_m_C = film.z * FARADAY_C_PER_MOL * film.area_m2 * film.c_max_mol_per_m3;
        let exchange_current_A =
            charge_per_m_C * rate_constant_m_per_s(p) * (a * ln_x + (1.0 - a) * ln_1mx).exp();
        let tau_s = film.thickness_m * film.thickness_m / diffusion_m2_per_s(p);
        let C_int_F = charge_per_m_C * film.thickness_m * f_per_V * (ln_x + ln_1mx).exp();
        SmallSignal {
            E_dc_V,
            x_eq: ln_x.exp(),
            R_s_ohm: p.cell.R_s_ohm,
            C_dl_F: p.cell.C_dl_F,
            exchange_current_A,
            R_ct_ohm: 1.0 / (f_per_V * exchange_current_A),
            tau_s,
            C_int_F,
            Z0_ohm: tau_s / C_int_F,
            kappa_nm_per_C: kappa_nm_per_C(p),
        }
    }

    /// Open finite Warburg element `Z0 coth(u)/u`, `u = sqrt(j w tau)`.
    /// Infinite at `f = 0`: the collector blocks, so the film takes no dc.
    pub fn warburg_ohm(&self, f_Hz: f64) -> C64 {
        let u = sqrt_j(2.0 * PI * f_Hz * self.tau_s);
        (tanh_coth(u).1 / u).scale(self.Z0_ohm)
    }

    /// Faradaic branch `Z_F = R_ct + Z_Wo`.
    pub fn faradaic_ohm(&self, f_Hz: f64) -> C64 {
        C64::from(self.R_ct_ohm) + self.warburg_ohm(f_Hz)
    }

    /// Cell impedance `R_s + (1/Z_F + j w C_dl)^-1`; `f_Hz > 0`.
    pub fn impedance_ohm(&self, f_Hz: f64) -> C64 {
        C64::from(self.R_s_ohm) + self.interface_ohm(f_Hz)
    }

    /// `I_F / I = Z_int / Z_F = 1 / (1 + j w C_dl Z_F)`: the share of the
    /// current that moves ions, the only share that strains the film.
    pub fn faradaic_fraction(&self, f_Hz: f64) -> C64 {
        let jwc = C64::new(0.0, 2.0 * PI * f_Hz * self.C_dl_F);
        (C64::ONE + jwc * self.faradaic_ohm(f_Hz)).recip()
    }

    /// Deflection per volt of applied ac potential, nm/V:
    /// `u/V = kappa Q_F/V = kappa (I_F/I) / (j w Z)`. Lags the faradaic
    /// current by 90 deg (it is its integral) and, with `kappa < 0`, is in
    /// antiphase with the inserted charge.
    pub fn strain_transfer_nm_per_V(&self, f_Hz: f64) -> C64 {
        let jw = C64::new(0.0, 2.0 * PI * f_Hz);
        (self.faradaic_fraction(f_Hz) / (jw * self.impedance_ohm(f_Hz))).scale(self.kappa_nm_per_C)
    }

    /// `Z_int = (1/Z_F + j w C_dl)^-1`, the interface without `R_s`.
    fn interface_ohm(&self, f_Hz: f64) -> C64 {
        self.faradaic_ohm(f_Hz) * self.faradaic_fraction(f_Hz)
    }
}

/// Small-signal impedance `Z = V/I` of the simulated cell at `f_Hz > 0`
/// around equilibrium at `E_dc_V`, Ohm.
pub fn impedance_ohm(p: &SimParams, E_dc_V: f64, f_Hz: f64) -> C64 {
    SmallSignal::new(p, E_dc_V).impedance_ohm(f_Hz)
}

/// `I_F / I` at `f_Hz` around `E_dc_V` (see [`SmallSignal::faradaic_fraction`]).
pub fn faradaic_fraction(p: &SimParams, E_dc_V: f64, f_Hz: f64) -> C64 {
    SmallSignal::new(p, E_dc_V).faradaic_fraction(f_Hz)
}

/// Pure Vegard deflection per volt of ac potential at `f_Hz` around `E_dc_V`,
/// nm/V (see [`SmallSignal::strain_transfer_nm_per_V`]).
pub fn strain_transfer_nm_per_V(p: &SimParams, E_dc_V: f64, f_Hz: f64) -> C64 {
    SmallSignal::new(p, E_dc_V).strain_transfer_nm_per_V(f_Hz)
}

#[cfg(test)]
mod tests {
    use super::super::{Control, Electrode, Lever};
    use super::*;

    fn rel_err(a: C64, b: C64) -> f64 {
        (a.abs() / b.abs() - 1.0).abs()
    }

    /// Phase difference wrapped to (-180, 180] degrees.
    fn phase_err_deg(a: C64, b: C64) -> f64 {
        (a / b).arg_deg()
    }

    #[test]
    fn complex_arithmetic() {
        let a = C64::new(3.0, -4.0);
        let b = C64::new(-1.5, 0.25);
        assert_eq!(a.abs(), 5.0);
        let q = a / b;
        let back = q * b;
        assert!((back - a).abs() < 1e-14);
        // Smith's division survives moduli whose squares overflow.
        let big = C64::new(1e200, 1e200);
        assert!(((big / big) - C64::ONE).abs() < 1e-15);
        assert!((C64::J * C64::J + C64::ONE).abs() == 0.0);
        assert_eq!(a.conj(), C64::new(3.0, 4.0));
        // exp(z) - 1 against the series for a tiny argument.
        let z = C64::new(1e-9, -2e-9);
        let m = z.exp_m1();
        let series = z + (z * z).scale(0.5);
        // Relative to |z|: a naive exp(z) - 1 would be off by 1e-16 / 2e-9.
        assert!((m - series).abs() < 1e-15 * z.abs());
    }

    #[test]
    fn film_transfer_known_facts() {
        assert_eq!(film_transfer_H(0.0), C64::ONE);
        // Low s: H = 1 - j s/3 + O(s^2).
        let h = film_transfer_H(1e-6);
        assert!((h - C64::new(1.0, -1e-6 / 3.0)).abs() < 1e-12);
        // |H| = 1/sqrt 2 where the film stops following: s ~ 2.5 (PHYSICS.md
        // says ~2.6; the exact root is 2.54).
        let m = film_transfer_H(2.6).abs();
        assert!((m - 0.5f64.sqrt()).abs() < 0.01, "|H(2.6)| = {m}");
        let (mut lo, mut hi) = (1.0, 5.0);
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            if film_transfer_H(mid).abs() > 0.5f64.sqrt() {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        assert!((2.4..2.7).contains(&lo), "|H| = 0.707 at s = {lo}");
        // High s: phase -> -45 deg and |H| -> 1/sqrt(s), no overflow.
        for s in [1e4, 1e8, 1e300] {
            let h = film_transfer_H(s);
            assert!((h.arg_deg() + 45.0).abs() < 1e-6, "s = {s}: {}", h.arg_deg());
            assert!((h.abs() * s.sqrt() - 1.0).abs() < 1e-12);
        }
        // The phase overshoots -45 deg once (to -46.6 deg near s = 8, the
        // first reflection from the collector) and never goes further.
        let phases: Vec<f64> = (0..=80)
            .map(|k| film_transfer_H(10f64.powf(-3.0 + 0.1 * k as f64)).arg_deg())
            .collect();
        let min = phases.iter().copied().fold(0.0, f64::min);
        assert!((-46.8..-46.4).contains(&min), "min phase {min} deg");
        assert!(phases.iter().all(|p| *p <= 0.0));
    }

    /// Least-squares fit of `c0 + c1 t + c2 t^2 + a cos(w t) + b sin(w t)` to
    /// samples spanning whole periods; returns the phasor `a - j b` (peak
    /// amplitude, phase against a cosine, PHYSICS.md section 3). The
    /// quadratic trend takes up what is left of the slow start-up transient
    /// (the film's charge relaxes over ~tau), which the plain lock-in sum
    /// would leak into the fundamental.
    fn demodulate(t_s: &[f64], s: &[f64], w: f64) -> C64 {
        let t_mid = 0.5 * (t_s[0] + t_s[t_s.len() - 1]);
        let t_half = 0.5 * (t_s[t_s.len() - 1] - t_s[0]);
        let mut ata = [[0.0f64; 5]; 5];
        let mut atb = [0.0f64; 5];
        for (&t, &y) in t_s.iter().zip(s) {
            let r = (t - t_mid) / t_half;
            let row = [1.0, r, r * r, (w * t).cos(), (w * t).sin()];
            for i in 0..5 {
                atb[i] += row[i] * y;
                for j in 0..5 {
                    ata[i][j] += row[i] * row[j];
                }
            }
        }
        // Gaussian elimination with partial pivoting (5 x 5, well conditioned).
        for col in 0..5 {
            let piv = (col..5)
                .max_by(|&a, &b| ata[a][col].abs().total_cmp(&ata[b][col].abs()))
                .unwrap();
            ata.swap(col, piv);
            atb.swap(col, piv);
            for r in col + 1..5 {
                let k = ata[r][col] / ata[col][col];
                for c in col..5 {
                    ata[r][c] -= k * ata[col][c];
                }
                atb[r] -= k * atb[col];
            }
        }
        let mut x = [0.0f64; 5];
        for r in (0..5).rev() {
            let tail: f64 = (r + 1..5).map(|c| ata[r][c] * x[c]).sum();
            x[r] = (atb[r] - tail) / ata[r][r];
        }
        C64::new(x[3], -x[4])
    }

    /// What a lock-in reads from the time-domain model under a small sine.
    #[derive(Debug)]
    struct Measured {
        z_ohm: C64,
        u_nm_per_V: C64,
    }

    /// Drives the time-domain electrode with `E_dc + amp sin(w t)` as a chain
    /// of ramps (`calls_per_period` per period, the way the emulator scans),
    /// lets `settle_periods` pass and demodulates current and true deflection
    /// over the following `measure_periods`, one sample per ramp end.
    fn drive_sine(
        p: &SimParams,
        amp_V: f64,
        f_Hz: f64,
        calls_per_period: usize,
        settle_periods: usize,
        measure_periods: usize,
    ) -> Measured {
        let mut el = Electrode::new(p).unwrap();
        let lever = Lever::new(p);
        let E_dc = el.state().E_app_V;
        let w = 2.0 * PI * f_Hz;
        let dt = 1.0 / (f_Hz * calls_per_period as f64);
        let E_at = |k: usize| E_dc + amp_V * (w * k as f64 * dt).sin();
        let n_settle = settle_periods * calls_per_period;
        let n_total = n_settle + measure_periods * calls_per_period;
        let (mut t, mut e, mut i, mut u) = (vec![], vec![], vec![], vec![]);
        for k in 0..n_total {
            let s = el.step_ramp(dt, E_at(k), E_at(k + 1));
            if k >= n_settle {
                t.push((k + 1) as f64 * dt);
                e.push(s.E_app_V);
                i.push(s.I_A);
                u.push(lever.true_deflection_nm(&s));
            }
        }
        let v = demodulate(&t, &e, w);
        Measured {
            z_ohm: v / demodulate(&t, &i, w),
            u_nm_per_V: demodulate(&t, &u, w) / v,
        }
    }

    #[test]
    #[ignore]
    fn explore() {
        for nodes in [80usize, 200] {
            let mut p = SimParams::default();
            p.cell.R_s_ohm = 0.0;
            p.cell.C_dl_F = 0.0;
            p.kinetics.k0_m_per_s = 1.0;
            p.film.nodes = nodes;
            let ss = SmallSignal::new(&p, p.film.E0_V);
            for f in [1.0, 10.0, 30.0, 100.0, 300.0, 1000.0] {
                let t0 = std::time::Instant::now();
                let m = drive_sine(&p, 5e-3, f, 200, 6, 3);
                let z = ss.impedance_ohm(f);
                let u = ss.strain_transfer_nm_per_V(f);
                eprintln!("nodes {nodes} f {f} Hz: |Z| {:.3} %, phase {:.3} deg; u {:.3} %, {:.3} deg  ({:.2} s)",
                    100.0 * rel_err(m.z_ohm, z), phase_err_deg(m.z_ohm, z),
                    100.0 * rel_err(m.u_nm_per_V, u), phase_err_deg(m.u_nm_per_V, u), t0.elapsed().as_secs_f64());
            }
        }
        let _ = Control::OpenCircuit;
    }
}
