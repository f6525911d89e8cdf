//! ESM spectrum fit: the diffusion time `tau_ESM` of the film from the
//! deflection per volt measured at a set of frequencies (PHYSICS.md §4-5).
//!
//! The film's inserted amount under a small sine follows
//! `N(w) = L dc_s H(w tau)`, `H(s) = tanh(sqrt(j s)) / sqrt(j s)`, and the
//! Vegard deflection is `kappa` times the faradaic charge. Linearising the
//! isotherm, the surface concentration change is the potential across the
//! Warburg element (`V_W`) times a real constant, so for pure Vegard strain
//!
//! ```text
//! u / V_W = kappa C_int H(w tau),   C_int = tau / Z0,
//! ```
//!
//! a *real* amplitude `A = kappa C_int` (negative for a film that expands on
//! insertion) times `H`. That is why `A` is real here: a complex `A` would
//! absorb exactly the phase information that determines `tau`. An
//! electrostatic force on the lever (or any other response that follows the
//! cell potential instantly) adds a frequency-flat real term `B` per volt of
//! cell potential.
//!
//! The cell potential `E` is not `V_W`: `R_s` and `R_ct` in series take
//! their share, more so at high frequency where `|Z_W|` is small. Fitting
//! `u/E = A H + B` directly ([`fit_esm_h`]) therefore distorts the shape and
//! biases `tau`: on the default bench at 25 degC (`R_s + R_ct` = 21 ohm
//! against `|Z_W|` ~ 40 ohm at the knee) the raw fit gives twice the true
//! `tau` (+110 %) with a 30 % relative misfit, and the bias grows as `tau`
//! shortens with temperature (Arrhenius on raw fits: 0.17 eV instead of
//! 0.45 eV); see tests/esm_arrhenius.rs. A large `misfit_rms` is the
//! warning sign. [`fit_esm_h_corrected`] removes the distortion
//! with `R_s`, `R_ct` and `C_dl` from the EIS fit at the same temperature:
//! `V_eff` is the driving potential of the film, and the
//! model becomes `u/E = A H (V_eff/E) + B`, i.e. `A H = (u - B E)/V_eff`.
//! `B` stays per volt of *cell* potential because the electrostatic force
//! follows the potential between sample and tip, not the interface
//! potential. With `B = 0` and modulus weighting this is the same fit as
//! dividing `u` by `V_eff` and fitting `A H`.
//!
//! The film's driving potential is `V_film = E - I R_s - I_F R_ct` with
//! `I_F = I - j w C_dl (E - I R_s)` (the double layer takes the rest), and
//! with the sweep's temperature known it comes from the film's large-signal
//! rate law rather than its linearisation ([`film_drive_V`]): the 20-30 mV
//! drives that lift the ESM signal above the detector noise are several
//! `RT/F`, and the small-signal film then reads the isotherm's cubic terms
//! as a tau 1-5 % short (tests/esm_bench.rs, on the bench's own model).
//!
//! Method: `A` and `B` enter linearly, so for each trial `tau` they follow
//! from a 2x2 linear least-squares problem (variable projection). `ln tau`
//! is found by a grid over the window the frequencies can resolve, refined
//! by golden-section search; no starting guess is needed and the search
//! cannot wander to negative `tau`. Standard errors come from the Jacobian
//! of all three parameters at the optimum, scaled by the residual variance
//! (so they reflect the actual scatter, including model misfit).

use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

use nalgebra::DMatrix;
use num_complex::Complex64;

use crate::linalg::ScaledSvd;
use crate::{AnalysisError, Phasor};
use vegard_core::constants::{FARADAY_C_PER_MOL, GAS_CONSTANT_J_PER_MOL_K};

/// How the complex residuals are weighted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Weighting {
    /// Divide each residual by the measured `|u/E|`: every frequency counts
    /// by its relative error, as for lock-in noise proportional to the
    /// signal. The spectrum spans an order of magnitude between the plateau
    /// and 1 Hz, so unit weights would let the plateau alone decide.
    #[default]
    Modulus,
    /// Plain least squares in nm/V (constant absolute noise).
    Unit,
}

/// Options for [`fit_esm_h`] and [`fit_esm_h_corrected`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EsmFitOptions {
    /// Fit the frequency-flat real background `B` (electrostatic term).
    pub background: bool,
    pub weighting: Weighting,
    /// Charge number `z` of the inserted ion: with it a caller that knows
    /// the sweep's temperature sets [`CellCorrection::thermal_voltage_V`] =
    /// `RT/(zF)` so the film drive is taken from the large-signal rate law
    /// ([`film_drive_V`]); `None` keeps the small-signal film. Default
    /// `Some(1.0)` (Li+, Na+).
    pub ion_charge_z: Option<f64>,
}

impl Default for EsmFitOptions {
    fn default() -> Self {
        EsmFitOptions {
            background: true,
            weighting: Weighting::Modulus,
            ion_charge_z: Some(1.0),
        }
    }
}

impl EsmFitOptions {
    /// `RT/(zF)` at `T_K` when [`EsmFitOptions::ion_charge_z`] is set and
    /// both are usable, else `None` (small-signal film).
    pub fn thermal_voltage_V(&self, T_K: f64) -> Option<f64> {
        let z = self.ion_charge_z?;
        let vt = GAS_CONSTANT_J_PER_MOL_K * T_K / (z.abs() * FARADAY_C_PER_MOL);
        (vt.is_finite() && vt > 0.0).then_some(vt)
    }
}

/// Result of an ESM spectrum fit `u/E = A H(2 pi f tau) g + B`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EsmFit {
    /// Diffusion time `L^2/D` seen by the strain, s.
    pub tau_s: f64,
    /// Standard error of `tau_s` (`tau_s * ln_tau_se`), s.
    pub tau_se_s: f64,
    /// Standard error of `ln tau`, what the Arrhenius fit wants.
    pub ln_tau_se: f64,
    /// Real amplitude `kappa C_int`, nm per volt of film driving potential.
    pub A_nm_per_V: f64,
    pub A_se_nm_per_V: f64,
    /// Frequency-flat real background, nm per volt of cell potential; 0 when
    /// not fitted.
    pub B_nm_per_V: f64,
    /// `None` when `B` was not fitted.
    pub B_se_nm_per_V: Option<f64>,
    /// `sqrt(weighted RSS / dof)`: with modulus weighting the relative
    /// misfit per real component (about the noise level for a good fit).
    pub misfit_rms: f64,
    /// Frequencies used.
    pub n_points: usize,
    /// `2 n_points - parameters` (each frequency gives two real residuals).
    pub dof: usize,
    /// True for [`fit_esm_h_corrected`].
    pub corrected: bool,
}

/// `H(s) = tanh(sqrt(j s)) / sqrt(j s)` as a phasor, `s = w tau >= 0`.
///
/// `H -> 1 - j s/3` for small `s`; `|H| = 1/sqrt 2` at `s = 2.61`; phase ->
/// -45 deg for large `s`. NaN for negative or non-finite `s`.
pub fn film_transfer_H(s: f64) -> Phasor {
    transfer(s).0.into()
}

/// Fit `u/E = A H(2 pi f tau) + B` to an ESM spectrum (`response` = the
/// lock-in's `u/E` in nm/V at `f_Hz`). Biased when `R_s + R_ct` are not
/// small against the Warburg impedance; see [`fit_esm_h_corrected`].
pub fn fit_esm_h(
    f_Hz: &[f64],
    response: &[Phasor],
    options: &EsmFitOptions,
) -> Result<EsmFit, AnalysisError> {
    check_len("response", f_Hz.len(), response.len())?;
    let drive = vec![Complex64::ONE; f_Hz.len()];
    fit(f_Hz, response, drive, options, false)
}

/// The cell around the film, from the EIS fit at the same temperature:
/// what stands between the cell potential and the film's own driving
/// potential.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CellCorrection {
    /// Solution resistance (R0 of `R0-p(R1-Wo1,C1)`).
    pub R_s_ohm: f64,
    /// Charge-transfer resistance (R1).
    pub R_ct_ohm: f64,
    /// Double-layer capacitance (C1); 0 treats all current as faradaic.
    pub C_dl_F: f64,
    /// `RT/(zF)` of the film during the sweep, V. With it the film's
    /// driving potential is found from the full rate law instead of its
    /// linearisation (see [`film_drive_V`]): the drive amplitudes that give
    /// an ESM signal above the detector noise (20-30 mV) are several
    /// `RT/F` and the linear film model then shortens `tau` by 1-5 %.
    /// `None`: small-signal (linear) film.
    pub thermal_voltage_V: Option<f64>,
}

/// Points per period for the first harmonic of the large-signal film drive:
/// the integrand is smooth and periodic, so the trapezoid rule converges
/// geometrically; 64 points are exact to 1e-12 for drives below 10 RT/F.
const LARGE_SIGNAL_POINTS: usize = 64;

/// The film's driving potential at one frequency, V (phasor): the quantity
/// that the film's surface concentration follows, `-4 (RT/zF) y_1` with
/// `y_1` the first harmonic of the surface mole fraction's excursion.
///
/// Small signal (`thermal_voltage_V = None`): `V_int - I_F R_ct`, with
/// `V_int = E - I R_s` and `I_F = I - j w C_dl V_int`.
///
/// Large signal: why the linearisation fails. The film's ESM response is
/// `u/V_film = kappa C_int H(w tau)` only while the surface concentration
/// is linear in `V_film`. The rate law of a lattice-gas film
/// (PHYSICS.md section 1, Butler-Volmer against `E0`) is, with
/// `p = (E_int - E_dc)/(RT/zF)`, `x_s = 1/2 + y` and the sweep at the
/// formal potential (`x = 1/2`, where ESM is run: the film's capacity
/// peaks there) and symmetric kinetics (`alpha = 1/2`),
///
/// ```text
/// I_F / i0 = 2 sinh(p/2) + 4 y cosh(p/2),   i0 = RT / (zF R_ct),
/// ```
///
/// so `y(t)` follows *instantaneously* from the measured `E_int(t)` and
/// `I_F(t)` (no diffusion model needed): `y = (I_F/i0 - 2 sinh(p/2)) /
/// (4 cosh(p/2))`, which is `(I_F R_ct - V_int)/(4 RT/zF)` for small `p`.
/// Diffusion is linear in `y`, so the film-averaged charge's first harmonic
/// is `H(w tau)` times `y_1` exactly; the linearised `V_film` instead
/// misses the cubic terms of the isotherm, which shrink `y_1` by about
/// `(V/(RT/zF))^2 / 16` where the whole cell potential reaches the film (low
/// frequency) and hardly at all where `R_s + R_ct` take it (high
/// frequency): a distortion of the spectrum's shape that the fit reads as a
/// shorter `tau` (-1.3 % at 25 degC and -2.1 % at 65 degC for 20 mV on the
/// default bench, -3.0 % and -4.9 % for 30 mV; tests/esm_bench.rs).
/// `E_int(t)` and `I_F(t)` are rebuilt from their fundamentals (their
/// harmonics change `y_1` only at fifth order in the amplitude).
///
/// Off the formal potential (`x != 1/2`) or with `alpha != 1/2` the cubic
/// term differs (it vanishes near `x = 0.21`); there this correction is an
/// approximation of the same order as the error it removes.
pub fn film_drive_V(f_Hz: f64, E_V: Phasor, I_A: Phasor, cell: &CellCorrection) -> Phasor {
    let (e, i) = (Complex64::from(E_V), Complex64::from(I_A));
    let v_int = e - i.scale(cell.R_s_ohm);
    let i_f = i - Complex64::new(0.0, std::f64::consts::TAU * f_Hz * cell.C_dl_F) * v_int;
    let linear = v_int - i_f.scale(cell.R_ct_ohm);
    let Some(vt) = cell.thermal_voltage_V.filter(|v| v.is_finite() && *v > 0.0) else {
        return linear.into();
    };
    // p(theta) and I_F/i0 = I_F R_ct / vt (theta) on one period.
    let p_amp = v_int.unscale(vt);
    let i_amp = i_f.scale(cell.R_ct_ohm / vt);
    let mut y_1 = Complex64::new(0.0, 0.0);
    for k in 0..LARGE_SIGNAL_POINTS {
        let theta = std::f64::consts::TAU * k as f64 / LARGE_SIGNAL_POINTS as f64;
        let rot = Complex64::from_polar(1.0, theta);
        let p = (p_amp * rot).re;
        let i_rel = (i_amp * rot).re;
        let y = (i_rel - 2.0 * (0.5 * p).sinh()) / (4.0 * (0.5 * p).cosh());
        y_1 += rot.conj().scale(y);
    }
    y_1 = y_1.scale(2.0 / LARGE_SIGNAL_POINTS as f64);
    y_1.scale(-4.0 * vt).into()
}

/// Fit `u/E = A H(2 pi f tau) (V_film/E) + B` with the film's driving
/// potential `V_film = E - I R_s - I_F R_ct`, from the potential and current
/// phasors `E_V`, `I_A` of the same periods as `response`. The faradaic
/// current is what the double layer does not take:
/// `I_F = I - j w C_dl (E - I R_s)` (the interface sees `E - I R_s`), so
/// only I_F crosses R_ct. With `C_dl_F = 0` this is `E - I (R_s + R_ct)`,
/// which overstates the drop by the double layer's share of I (0.4 % of
/// tau on the default bench).
pub fn fit_esm_h_corrected(
    f_Hz: &[f64],
    response: &[Phasor],
    E_V: &[Phasor],
    I_A: &[Phasor],
    cell: &CellCorrection,
    options: &EsmFitOptions,
) -> Result<EsmFit, AnalysisError> {
    let n = f_Hz.len();
    check_len("response", n, response.len())?;
    check_len("E_V", n, E_V.len())?;
    check_len("I_A", n, I_A.len())?;
    for (name, value) in [
        ("R_s_ohm", cell.R_s_ohm),
        ("R_ct_ohm", cell.R_ct_ohm),
        ("C_dl_F", cell.C_dl_F),
        ("thermal_voltage_V", cell.thermal_voltage_V.unwrap_or(1.0)),
    ] {
        if !(value.is_finite() && value >= 0.0) {
            return Err(AnalysisError::Parameter {
                name,
                value,
                why: "must be finite and >= 0",
            });
        }
    }
    let mut drive = Vec::with_capacity(n);
    for (k, ((e, i), f)) in E_V.iter().zip(I_A).zip(f_Hz).enumerate() {
        let v_film = Complex64::from(film_drive_V(*f, *e, *i, cell));
        let e = Complex64::from(*e);
        let g = v_film / e;
        if !g.is_finite() || g.norm() < 1e-6 {
            return Err(AnalysisError::Degenerate(format!(
                "no film driving potential at point {k} (E = {e:?}, V_film = {v_film:?})"
            )));
        }
        drive.push(g);
    }
    fit(f_Hz, response, drive, options, true)
}

/// Deflection per faradaic charge at each frequency, nm/mC:
/// `u / Q_F` with `u = response E`, `Q_F = I_F / (j w)` and `I_F` as in
/// [`fit_esm_h_corrected`]. Pure Vegard strain makes it flat at kappa with
/// the phase of kappa's sign (180 deg for a film that shrinks on
/// extraction) at every frequency; a frequency-flat electrostatic term
/// makes it grow where Q_F falls off (high frequency).
pub fn deflection_per_faradaic_charge(
    f_Hz: &[f64],
    response: &[Phasor],
    E_V: &[Phasor],
    I_A: &[Phasor],
    cell: &CellCorrection,
) -> Result<Vec<Phasor>, AnalysisError> {
    let n = f_Hz.len();
    check_len("response", n, response.len())?;
    check_len("E_V", n, E_V.len())?;
    check_len("I_A", n, I_A.len())?;
    Ok((0..n)
        .map(|k| {
            let (e, i) = (Complex64::from(E_V[k]), Complex64::from(I_A[k]));
            let w = std::f64::consts::TAU * f_Hz[k];
            let u = Complex64::from(response[k]) * e;
            let i_f = i - Complex64::new(0.0, w * cell.C_dl_F) * (e - i.scale(cell.R_s_ohm));
            // Q_F in mC: I_F / (j w) * 1e3.
            let q_mC = i_f / Complex64::new(0.0, w / 1e3);
            (u / q_mC).into()
        })
        .collect())
}

fn check_len(name: &str, expected: usize, got: usize) -> Result<(), AnalysisError> {
    if expected == got {
        Ok(())
    } else {
        Err(AnalysisError::Degenerate(format!(
            "{name} has {got} points but f_Hz has {expected}"
        )))
    }
}

/// Grid points per decade of `tau` in the coarse search: the cost surface
/// has one minimum a decade or more wide, 20/decade brackets it safely.
const GRID_PER_DECADE: f64 = 20.0;
/// `tau` is searched from `0.01/w_max` to `100/w_min`: beyond that `H` is in
/// its asymptote (1 or `1/sqrt(j s)`) at every frequency and `tau` is not
/// determined.
const SEARCH_MARGIN: f64 = 100.0;

struct Problem {
    omega: Vec<f64>,
    /// Weighted data `w_k y_k`.
    y: Vec<Complex64>,
    /// Weighted model factor `w_k g_k` of `A H`.
    a: Vec<Complex64>,
    /// Weight `w_k` (the model column of `B`).
    w: Vec<f64>,
    background: bool,
}

/// `(A, B, RSS)` at one `ln tau`.
struct Linear {
    a: f64,
    b: f64,
    rss: f64,
}

impl Problem {
    fn linear(&self, ln_tau: f64) -> Option<Linear> {
        let tau = ln_tau.exp();
        let (mut aa, mut ab, mut bb, mut ay, mut by) = (0.0, 0.0, 0.0, 0.0, 0.0);
        let cols: Vec<Complex64> = self
            .omega
            .iter()
            .zip(&self.a)
            .map(|(&om, &a)| a * transfer(om * tau).0)
            .collect();
        for ((c, y), &w) in cols.iter().zip(&self.y).zip(&self.w) {
            aa += c.norm_sqr();
            ab += c.re * w;
            bb += w * w;
            ay += dot(*c, *y);
            by += y.re * w;
        }
        let (a, b) = if self.background {
            let det = aa * bb - ab * ab;
            if det.is_nan() || det <= 1e-12 * aa * bb {
                return None;
            }
            ((bb * ay - ab * by) / det, (aa * by - ab * ay) / det)
        } else {
            if aa.is_nan() || aa <= 0.0 {
                return None;
            }
            (ay / aa, 0.0)
        };
        let rss = cols
            .iter()
            .zip(&self.y)
            .zip(&self.w)
            .map(|((c, y), &w)| {
                let r = *y - c.scale(a) - Complex64::new(b * w, 0.0);
                r.norm_sqr()
            })
            .sum();
        Some(Linear { a, b, rss })
    }

    fn rss(&self, ln_tau: f64) -> f64 {
        self.linear(ln_tau).map_or(f64::INFINITY, |l| l.rss)
    }
}

fn fit(
    f_Hz: &[f64],
    response: &[Phasor],
    drive: Vec<Complex64>,
    options: &EsmFitOptions,
    corrected: bool,
) -> Result<EsmFit, AnalysisError> {
    let n = f_Hz.len();
    let p = if options.background { 3 } else { 2 };
    if 2 * n <= p {
        return Err(AnalysisError::Insufficient(format!(
            "{n} frequencies cannot determine {p} parameters"
        )));
    }
    for (&f, r) in f_Hz.iter().zip(response) {
        if !(f.is_finite() && f > 0.0) {
            return Err(AnalysisError::Parameter {
                name: "f_Hz",
                value: f,
                why: "must be a finite frequency > 0",
            });
        }
        if !(r.re.is_finite() && r.im.is_finite()) {
            return Err(AnalysisError::Degenerate(format!(
                "non-finite response at {} Hz",
                crate::error::num(&f)
            )));
        }
    }
    let omega: Vec<f64> = f_Hz.iter().map(|f| 2.0 * PI * f).collect();
    let w: Vec<f64> = match options.weighting {
        Weighting::Unit => vec![1.0; n],
        Weighting::Modulus => response.iter().map(|r| 1.0 / r.amplitude()).collect(),
    };
    if w.iter().any(|w| !w.is_finite()) {
        return Err(AnalysisError::Degenerate(
            "zero response cannot be modulus-weighted".into(),
        ));
    }
    let problem = Problem {
        y: response
            .iter()
            .zip(&w)
            .map(|(r, &w)| Complex64::from(*r).scale(w))
            .collect(),
        a: drive.iter().zip(&w).map(|(g, &w)| g.scale(w)).collect(),
        omega,
        w,
        background: options.background,
    };

    // Coarse grid over ln tau.
    let w_min = problem.omega.iter().copied().fold(f64::INFINITY, f64::min);
    let w_max = problem.omega.iter().copied().fold(0.0, f64::max);
    let lo = (1.0 / SEARCH_MARGIN / w_max).ln();
    let hi = (SEARCH_MARGIN / w_min).ln();
    let steps = ((hi - lo) / std::f64::consts::LN_10 * GRID_PER_DECADE).ceil() as usize;
    let step = (hi - lo) / steps as f64;
    let (best, best_rss) = (0..=steps)
        .map(|k| (k, problem.rss(lo + k as f64 * step)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .ok_or_else(|| AnalysisError::Degenerate("empty tau search".into()))?;
    if !best_rss.is_finite() {
        return Err(AnalysisError::Degenerate(
            "the model columns are degenerate at every tau".into(),
        ));
    }
    if best == 0 || best == steps {
        return Err(AnalysisError::Degenerate(format!(
            "tau is outside what {:.3e}..{:.3e} Hz can resolve (best at the search edge, {:.3e} s)",
            w_min / (2.0 * PI),
            w_max / (2.0 * PI),
            (lo + best as f64 * step).exp()
        )));
    }
    let ln_tau = golden_min(
        |x| problem.rss(x),
        lo + (best - 1) as f64 * step,
        lo + (best + 1) as f64 * step,
        1e-10,
    );
    let lin = problem
        .linear(ln_tau)
        .ok_or_else(|| AnalysisError::Degenerate("degenerate model at the optimum".into()))?;

    // Jacobian of the weighted model in (ln tau, A, B), two real rows per point.
    let tau = ln_tau.exp();
    let mut jacobian = DMatrix::zeros(2 * n, p);
    for k in 0..n {
        let (h, dh) = transfer(problem.omega[k] * tau);
        let d_ln_tau = (problem.a[k] * dh).scale(lin.a);
        let d_a = problem.a[k] * h;
        let d_b = Complex64::new(problem.w[k], 0.0);
        for (j, col) in [d_ln_tau, d_a, d_b].iter().take(p).enumerate() {
            jacobian[(2 * k, j)] = col.re;
            jacobian[(2 * k + 1, j)] = col.im;
        }
    }
    let cov_diag = ScaledSvd::new(jacobian, RANK_TOLERANCE)
        .and_then(|svd| svd.inverse_gram_diagonal())
        .ok_or_else(|| {
            AnalysisError::Degenerate(
                "tau, A and B are not separable with these frequencies".into(),
            )
        })?;
    let dof = 2 * n - p;
    let s2 = lin.rss / dof as f64;
    let se = |i: usize| (s2 * cov_diag[i]).max(0.0).sqrt();
    let ln_tau_se = se(0);
    Ok(EsmFit {
        tau_s: tau,
        tau_se_s: tau * ln_tau_se,
        ln_tau_se,
        A_nm_per_V: lin.a,
        A_se_nm_per_V: se(1),
        B_nm_per_V: lin.b,
        B_se_nm_per_V: options.background.then(|| se(2)),
        misfit_rms: s2.sqrt(),
        n_points: n,
        dof,
        corrected,
    })
}

/// Golden-section minimum of a unimodal `f` on `[a, b]`, to `tol` in `x`
/// (the ESM fit asks 1e-10 in ln tau: a relative tau precision far below
/// any noise; the signal-origin profile, whose evaluations filter a whole
/// run, 1e-4).
pub(crate) fn golden_min(f: impl Fn(f64) -> f64, mut a: f64, mut b: f64, tol: f64) -> f64 {
    let r = 0.5 * (5f64.sqrt() - 1.0);
    let mut c = b - r * (b - a);
    let mut d = a + r * (b - a);
    let (mut fc, mut fd) = (f(c), f(d));
    for _ in 0..200 {
        if (b - a).abs() < tol {
            break;
        }
        if fc < fd {
            b = d;
            d = c;
            fd = fc;
            c = b - r * (b - a);
            fc = f(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + r * (b - a);
            fd = f(d);
        }
    }
    0.5 * (a + b)
}

/// Smallest singular value of the column-scaled Jacobian, relative to the
/// largest, for which the standard errors mean something: `sqrt(1e-14)`,
/// the pivot threshold on `J^T J` that the fit used before.
const RANK_TOLERANCE: f64 = 1e-7;

/// `(H(s), dH/d ln s)`. With `u = sqrt(j s)`, `t = tanh u`:
/// `dH/d ln s = (1 - t^2 - H)/2`.
fn transfer(s: f64) -> (Complex64, Complex64) {
    if s == 0.0 {
        return (Complex64::ONE, Complex64::new(0.0, 0.0));
    }
    if !(s.is_finite() && s > 0.0) {
        return (
            Complex64::new(f64::NAN, f64::NAN),
            Complex64::new(f64::NAN, f64::NAN),
        );
    }
    let a = (0.5 * s).sqrt();
    let u = Complex64::new(a, a);
    // tanh u = -m/(2 + m), m = exp(-2u) - 1: no overflow for large u, no
    // cancellation for small u.
    let m = exp_m1(u.scale(-2.0));
    let t = -m / (Complex64::new(2.0, 0.0) + m);
    let h = t / u;
    let dh = (Complex64::ONE - t * t - h).scale(0.5);
    (h, dh)
}

/// Real inner product `Re(a conj(b))`: residuals are stacked as (re, im)
/// pairs, so this is the dot product of two such pairs.
fn dot(a: Complex64, b: Complex64) -> f64 {
    a.re * b.re + a.im * b.im
}

/// `exp(z) - 1`, accurate for small `|z|` (`Complex64::exp` minus one
/// cancels there, and `tanh(u)/u` needs it).
fn exp_m1(z: Complex64) -> Complex64 {
    let e = z.re.exp_m1();
    let (s, c) = z.im.sin_cos();
    let half = (0.5 * z.im).sin();
    Complex64::new(e * c - 2.0 * half * half, (e + 1.0) * s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn transfer_limits_and_derivative() {
        // Small s: H = 1 - j s/3 + O(s^2).
        let h = film_transfer_H(1e-6);
        assert!((h.re - 1.0).abs() < 1e-11 && (h.im + 1e-6 / 3.0).abs() < 1e-12);
        // Large s: H -> 1/sqrt(j s), phase -45 deg.
        let h = film_transfer_H(1e6);
        assert!((h.phase_deg() + 45.0).abs() < 1e-9, "{}", h.phase_deg());
        assert!((h.amplitude() - 1e-3).abs() < 1e-12);
        // Analytic derivative against a central difference in ln s.
        for s in [0.01, 0.7, 2.6, 40.0, 900.0] {
            let d: f64 = 1e-5;
            let (hp, hm) = (transfer(s * d.exp()).0, transfer(s * (-d).exp()).0);
            let num = (hp - hm).scale(0.5 / d);
            let ana = transfer(s).1;
            assert!((num - ana).norm() < 1e-8 * ana.norm().max(1e-3), "{s}");
        }
        assert!(film_transfer_H(-1.0).re.is_nan());
    }

    #[test]
    fn exact_h_spectrum_is_recovered_exactly() {
        let tau = 12.5;
        let f: Vec<f64> = (0..13).map(|k| 10f64.powf(-2.5 + k as f64 / 4.0)).collect();
        let y: Vec<Phasor> = f
            .iter()
            .map(|f| {
                let h = film_transfer_H(2.0 * PI * f * tau);
                Phasor::new(-90.0 * h.re + 3.0, -90.0 * h.im)
            })
            .collect();
        for weighting in [Weighting::Modulus, Weighting::Unit] {
            let opt = EsmFitOptions {
                background: true,
                weighting,
                ion_charge_z: None,
            };
            let r = fit_esm_h(&f, &y, &opt).unwrap();
            assert!((r.tau_s / tau - 1.0).abs() < 1e-8, "{r:?}");
            assert!((r.A_nm_per_V + 90.0).abs() < 1e-6, "{r:?}");
            assert!((r.B_nm_per_V - 3.0).abs() < 1e-6, "{r:?}");
            assert!(r.misfit_rms < 1e-8 && r.dof == 23);
        }
    }

    #[test]
    fn large_signal_drive_is_the_isotherms_first_harmonic() {
        let vt = 0.025_693;
        let cell = CellCorrection {
            R_s_ohm: 10.0,
            R_ct_ohm: 11.0,
            C_dl_F: 150e-6,
            thermal_voltage_V: Some(vt),
        };
        // No faradaic current: the surface sits on the isotherm, x = 1/2 -
        // tanh(p/2)/2, whose first harmonic is a (1 - (a/vt)^2/16 + ...).
        let no_dl = CellCorrection {
            C_dl_F: 0.0,
            ..cell
        };
        for a in [0.005, 0.02, 0.03] {
            let v = film_drive_V(0.01, Phasor::new(a, 0.0), Phasor::new(0.0, 0.0), &no_dl);
            let b = a / vt;
            let series = a * (1.0 - b * b / 16.0 + b.powi(4) / 192.0);
            // Next term: -17/315 * 35/64 * (b/2)^6 = -4.61e-4 b^6.
            assert!(
                (v.re / series - 1.0 + 4.61e-4 * b.powi(6)).abs() < 1e-4 * b.powi(6),
                "{a}: {v:?} vs {series}"
            );
            assert!(v.im.abs() < 1e-15);
        }
        // Small drive: the linear V_int - I_F R_ct (to (a/vt)^2 / 16).
        let (e, i) = (Phasor::new(1e-4, 2e-5), Phasor::new(3e-6, -1e-6));
        let small = Complex64::from(film_drive_V(0.3, e, i, &cell));
        let linear = Complex64::from(film_drive_V(
            0.3,
            e,
            i,
            &CellCorrection {
                thermal_voltage_V: None,
                ..cell
            },
        ));
        assert!(
            (small - linear).norm() < 1e-5 * linear.norm(),
            "{small} vs {linear}"
        );
    }

    #[test]
    fn bad_inputs_are_errors() {
        let f = [0.1, 0.01];
        let y = [Phasor::new(1.0, 0.0); 2];
        let opt = EsmFitOptions::default();
        assert!(fit_esm_h(&f, &y[..1], &opt).is_err());
        assert!(matches!(
            fit_esm_h(&[0.1], &y[..1], &opt),
            Err(AnalysisError::Insufficient(_))
        ));
        assert!(matches!(
            fit_esm_h(&[0.1, -1.0], &y, &opt),
            Err(AnalysisError::Parameter { .. })
        ));
        // A flat spectrum has no knee: tau runs to the (short) search edge.
        let f: Vec<f64> = (0..8).map(|k| 10f64.powf(-k as f64 / 3.0)).collect();
        let flat = vec![Phasor::new(-5.0, 0.0); 8];
        let no_bg = EsmFitOptions {
            background: false,
            ..opt
        };
        assert!(matches!(
            fit_esm_h(&f, &flat, &no_bg),
            Err(AnalysisError::Degenerate(_))
        ));
        let nan = CellCorrection {
            R_s_ohm: f64::NAN,
            R_ct_ohm: 0.0,
            C_dl_F: 0.0,
            thermal_voltage_V: None,
        };
        assert!(fit_esm_h_corrected(&f, &flat, &flat, &flat, &nan, &opt).is_err());
    }
}
