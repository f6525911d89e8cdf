//! Complex nonlinear least squares (CNLS) of an equivalent circuit to an
//! impedance spectrum, by Levenberg-Marquardt (MINPACK port, crate
//! `levenberg-marquardt`).
//!
//! Residuals are stacked `[Re; Im]` of `(Z_model - Z_data) * weight`, as in
//! impedance.py, so the optimum and the standard errors are comparable with
//! its `CustomCircuit.fit`. Positivity is enforced by fitting `ln p`
//! (every element parameter is physically positive); a CPE exponent is
//! fitted through a logistic transform so it stays in (0, 1). The Jacobian
//! is analytic (see `circuit.rs`), chained through the transforms.
//!
//! Standard errors come from the Jacobian at the optimum in the ORIGINAL
//! parameters: cov = s^2 (J^T J)^-1 with s^2 = SSR / (2N - p), the
//! `scipy.optimize.curve_fit` convention impedance.py reports.

use std::time::Instant;

use levenberg_marquardt::{LeastSquaresProblem, LevenbergMarquardt};
use nalgebra::{DMatrix, DVector, Dyn, Owned};
use serde::{Serialize, Serializer, ser::SerializeMap};

use super::circuit::{C64, Circuit, ElementKind};
use crate::AnalysisError;

/// How each residual is scaled before squaring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Weighting {
    /// Plain residuals in ohm: the high-impedance (low-frequency) end
    /// dominates. impedance.py's default.
    #[default]
    Unit,
    /// Divide both parts by |Z_data|: every decade counts about equally
    /// (impedance.py `weight_by_modulus=True`).
    Modulus,
    /// Divide Re by |Re Z_data| and Im by |Im Z_data| (relative errors of
    /// each part). Fails if a data point has an exactly zero part.
    Proportional,
}

impl std::str::FromStr for Weighting {
    type Err = AnalysisError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "unit" | "none" => Ok(Weighting::Unit),
            "modulus" => Ok(Weighting::Modulus),
            "proportional" => Ok(Weighting::Proportional),
            _ => Err(AnalysisError::Degenerate(format!(
                "unknown weighting '{s}' (expected unit, modulus or proportional)"
            ))),
        }
    }
}

/// Result of [`fit_circuit`]. Serialises to the JSON the CLI prints:
/// `parameters`, `stderr` and `initial_guess` as name -> value maps in
/// parameter order; `rmse` in ohm.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EisFit {
    pub circuit: String,
    #[serde(serialize_with = "as_map")]
    pub parameters: Vec<(String, f64)>,
    /// One standard error per parameter (same unit). NaN (JSON null) when
    /// J^T J is singular: the data do not determine that parameter.
    #[serde(serialize_with = "as_map")]
    pub stderr: Vec<(String, f64)>,
    /// The starting point actually used (given or automatic).
    #[serde(serialize_with = "as_map")]
    pub initial_guess: Vec<(String, f64)>,
    /// sqrt(mean |Z_model - Z_data|^2), unweighted, ohm (impedance.py `rmse`).
    #[serde(rename = "rmse")]
    pub rmse_ohm: f64,
    pub n_points: usize,
    pub weighting: Weighting,
    /// Residual evaluations of the accepted run (LM iterations plus
    /// rejected trial steps).
    pub n_evaluations: usize,
    /// Wall time of the fit itself (initial guess, minimisation,
    /// covariance); parsing and file reading are not included.
    pub fit_time_s: f64,
}

impl EisFit {
    /// Fitted values in parameter order.
    pub fn values(&self) -> Vec<f64> {
        self.parameters.iter().map(|(_, v)| *v).collect()
    }

    /// Fitted value by impedance.py name (`"Wo1_1"`).
    pub fn get(&self, name: &str) -> Option<f64> {
        self.parameters
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }

    /// Standard error by impedance.py name; NaN inside when undetermined.
    pub fn stderr_of(&self, name: &str) -> Option<f64> {
        self.stderr.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
}

fn as_map<S: Serializer>(v: &[(String, f64)], s: S) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(Some(v.len()))?;
    for (k, x) in v {
        m.serialize_entry(k, x)?;
    }
    m.end()
}

/// Smallest/largest CPE exponent a guess is clamped to: the logistic
/// transform cannot represent exactly 0 or 1.
const ALPHA_MIN: f64 = 1e-6;
const ALPHA_MAX: f64 = 1.0 - 1e-9;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transform {
    /// p = exp(theta): p > 0.
    Log,
    /// p = 1 / (1 + exp(-theta)): 0 < p < 1 (CPE alpha).
    Logistic,
}

impl Transform {
    fn to_theta(self, p: f64) -> f64 {
        match self {
            Transform::Log => p.ln(),
            Transform::Logistic => {
                let a = p.clamp(ALPHA_MIN, ALPHA_MAX);
                (a / (1.0 - a)).ln()
            }
        }
    }
    fn to_param(self, theta: f64) -> f64 {
        match self {
            Transform::Log => theta.exp(),
            Transform::Logistic => 1.0 / (1.0 + (-theta).exp()),
        }
    }
    /// dp/dtheta expressed through p.
    fn dp_dtheta(self, p: f64) -> f64 {
        match self {
            Transform::Log => p,
            Transform::Logistic => p * (1.0 - p),
        }
    }
}

fn transforms(circuit: &Circuit) -> Vec<Transform> {
    let mut t = vec![Transform::Log; circuit.n_params()];
    for e in circuit.elements() {
        if e.kind == ElementKind::Cpe {
            t[e.first_param + 1] = Transform::Logistic;
        }
    }
    t
}

/// The CNLS problem in transformed parameters. Data are held as separate
/// flat vectors so the residual and Jacobian loops only read slices; the
/// only allocations per call are the output vector/matrix the
/// `LeastSquaresProblem` trait returns by value (and, for the Jacobian, one
/// gradient buffer of `n_params`).
pub(crate) struct CnlsProblem<'a> {
    circuit: &'a Circuit,
    w_rad_s: Vec<f64>,
    z_re: Vec<f64>,
    z_im: Vec<f64>,
    weight_re: Vec<f64>,
    weight_im: Vec<f64>,
    transforms: Vec<Transform>,
    theta: DVector<f64>,
    p: Vec<f64>,
}

impl<'a> CnlsProblem<'a> {
    pub(crate) fn new(
        circuit: &'a Circuit,
        f_Hz: &[f64],
        Z: &[(f64, f64)],
        weighting: Weighting,
        p0: &[f64],
    ) -> Result<Self, AnalysisError> {
        let n = f_Hz.len();
        let mut weight_re = Vec::with_capacity(n);
        let mut weight_im = Vec::with_capacity(n);
        for (i, &(re, im)) in Z.iter().enumerate() {
            let (a, b) = match weighting {
                Weighting::Unit => (1.0, 1.0),
                Weighting::Modulus => {
                    let m = re.hypot(im);
                    (1.0 / m, 1.0 / m)
                }
                Weighting::Proportional => (1.0 / re.abs(), 1.0 / im.abs()),
            };
            if !(a.is_finite() && b.is_finite()) {
                return Err(AnalysisError::Degenerate(format!(
                    "{weighting:?} weighting is infinite at point {i} (Z = {re} + {im}j)"
                )));
            }
            weight_re.push(a);
            weight_im.push(b);
        }
        let transforms = transforms(circuit);
        let theta = DVector::from_iterator(
            p0.len(),
            p0.iter().zip(&transforms).map(|(&p, t)| t.to_theta(p)),
        );
        let p = theta
            .iter()
            .zip(&transforms)
            .map(|(&th, t)| t.to_param(th))
            .collect();
        Ok(CnlsProblem {
            circuit,
            w_rad_s: f_Hz.iter().map(|f| std::f64::consts::TAU * f).collect(),
            z_re: Z.iter().map(|z| z.0).collect(),
            z_im: Z.iter().map(|z| z.1).collect(),
            weight_re,
            weight_im,
            transforms,
            theta,
            p,
        })
    }

    pub(crate) fn original_params(&self) -> &[f64] {
        &self.p
    }

    /// Jacobian of the weighted residuals with respect to the original
    /// parameters (for the covariance).
    fn jacobian_original(&self) -> DMatrix<f64> {
        let mut j = self.jacobian_theta();
        for (k, mut col) in j.column_iter_mut().enumerate() {
            col /= self.transforms[k].dp_dtheta(self.p[k]);
        }
        j
    }

    fn jacobian_theta(&self) -> DMatrix<f64> {
        let n = self.w_rad_s.len();
        let np = self.p.len();
        let mut j = DMatrix::zeros(2 * n, np);
        let mut g = vec![C64::new(0.0, 0.0); np];
        let dp: Vec<f64> = self
            .p
            .iter()
            .zip(&self.transforms)
            .map(|(&p, t)| t.dp_dtheta(p))
            .collect();
        for i in 0..n {
            self.circuit.z_and_grad_at(&self.p, self.w_rad_s[i], &mut g);
            for k in 0..np {
                j[(i, k)] = g[k].re * dp[k] * self.weight_re[i];
                j[(n + i, k)] = g[k].im * dp[k] * self.weight_im[i];
            }
        }
        j
    }

    fn residual_vector(&self) -> DVector<f64> {
        let n = self.w_rad_s.len();
        let mut r = DVector::zeros(2 * n);
        for i in 0..n {
            let z = self.circuit.z_at(&self.p, self.w_rad_s[i]);
            r[i] = (z.re - self.z_re[i]) * self.weight_re[i];
            r[n + i] = (z.im - self.z_im[i]) * self.weight_im[i];
        }
        r
    }

    /// Unweighted sqrt(mean |Z_model - Z_data|^2), ohm.
    fn rmse_ohm(&self) -> f64 {
        let n = self.w_rad_s.len();
        let ss: f64 = (0..n)
            .map(|i| {
                let z = self.circuit.z_at(&self.p, self.w_rad_s[i]);
                (z - C64::new(self.z_re[i], self.z_im[i])).norm_sqr()
            })
            .sum();
        (ss / n as f64).sqrt()
    }
}

impl LeastSquaresProblem<f64, Dyn, Dyn> for CnlsProblem<'_> {
    type ResidualStorage = Owned<f64, Dyn>;
    type JacobianStorage = Owned<f64, Dyn, Dyn>;
    type ParameterStorage = Owned<f64, Dyn>;

    fn set_params(&mut self, x: &DVector<f64>) {
        self.theta.copy_from(x);
        for ((p, &th), t) in self.p.iter_mut().zip(x.iter()).zip(&self.transforms) {
            *p = t.to_param(th);
        }
    }

    fn params(&self) -> DVector<f64> {
        self.theta.clone()
    }

    fn residuals(&self) -> Option<DVector<f64>> {
        Some(self.residual_vector())
    }

    fn jacobian(&self) -> Option<DMatrix<f64>> {
        Some(self.jacobian_theta())
    }
}

/// Relative tolerances for LM: tighter than needed for four significant
/// digits, loose enough that MINPACK's "no improvement possible" (which the
/// crate counts as failure) is not hit at machine precision.
const TOL: f64 = 1e-10;
const PATIENCE: usize = 1000;

struct Run<'a> {
    problem: CnlsProblem<'a>,
    objective: f64,
    evaluations: usize,
}

fn run_lm<'a>(problem: CnlsProblem<'a>) -> Result<Run<'a>, AnalysisError> {
    let lm = LevenbergMarquardt::new()
        .with_ftol(TOL)
        .with_xtol(TOL)
        .with_gtol(TOL)
        .with_patience(PATIENCE);
    let (problem, report) = lm.minimize(problem);
    if !report.termination.was_successful() {
        return Err(AnalysisError::FitFailed(format!(
            "Levenberg-Marquardt stopped after {} evaluations: {:?}",
            report.number_of_evaluations, report.termination
        )));
    }
    Ok(Run {
        problem,
        objective: report.objective_function,
        evaluations: report.number_of_evaluations,
    })
}

fn validate(
    circuit: &Circuit,
    f_Hz: &[f64],
    Z: &[(f64, f64)],
    guess: Option<&[f64]>,
) -> Result<(), AnalysisError> {
    if Z.len() != f_Hz.len() {
        return Err(AnalysisError::Length {
            name: "Z",
            expected: f_Hz.len(),
            got: Z.len(),
        });
    }
    let p = circuit.n_params();
    if 2 * f_Hz.len() <= p {
        return Err(AnalysisError::Insufficient(format!(
            "{} points (2 residuals each) cannot determine {p} parameters with an error estimate",
            f_Hz.len()
        )));
    }
    for (i, (&f, &(re, im))) in f_Hz.iter().zip(Z).enumerate() {
        if !(f.is_finite() && f > 0.0 && re.is_finite() && im.is_finite()) {
            return Err(AnalysisError::Degenerate(format!(
                "point {i}: f = {f} Hz, Z = {re} + {im}j (need f > 0 and finite values)"
            )));
        }
    }
    if let Some(g) = guess {
        if g.len() != p {
            return Err(AnalysisError::Length {
                name: "guess",
                expected: p,
                got: g.len(),
            });
        }
        let tr = transforms(circuit);
        for ((&v, name), t) in g.iter().zip(circuit.param_names()).zip(&tr) {
            let ok = match t {
                Transform::Log => v.is_finite() && v > 0.0,
                Transform::Logistic => v > 0.0 && v <= 1.0,
            };
            if !ok {
                return Err(AnalysisError::Degenerate(format!(
                    "initial guess {name} = {v} is outside its range ({})",
                    if *t == Transform::Log {
                        "> 0"
                    } else {
                        "(0, 1]"
                    }
                )));
            }
        }
    }
    Ok(())
}

/// Whether every finite-Warburg tau ended where the data can see its knee:
/// `1e-2 / w_max <= tau <= 1e2 / w_min`.
///
/// Why this matters: outside that window a Wo/Ws degenerates (tau -> inf
/// with Z0/sqrt(tau) fixed is a semi-infinite W; tau -> 0 is an R or R-C),
/// and such a boundary solution can have a slightly LOWER SSR than the
/// physical one. On impedance.py's example spectrum, `R0-p(R1-Wo1,C1)`
/// unweighted reaches rmse 1.4402e-3 ohm with tau ~ 1e26 s against
/// 1.4540e-3 ohm at the published tau = 221 s. The published answer is
/// the local minimum inside the window, and so is ours.
fn taus_inside_window(circuit: &Circuit, p: &[f64], w_lo: f64, w_hi: f64) -> bool {
    circuit
        .elements()
        .iter()
        .filter(|e| matches!(e.kind, ElementKind::Wo | ElementKind::Ws))
        .all(|e| {
            let tau = p[e.first_param + 1];
            tau >= 1e-2 / w_hi && tau <= 1e2 / w_lo
        })
}

/// Fit `circuit` to the spectrum (`f_Hz`, `Z` as (Z', Z'') in ohm) by CNLS.
///
/// With `guess = None` the starting point comes from [`initial_guess`];
/// because a finite Warburg's tau is often poorly constrained by where the
/// spectrum stops, the automatic start is tried with every Warburg tau at
/// x1, x10 and x0.1. Runs whose taus stay inside the measured window (see
/// `taus_inside_window`) win over degenerate ones; among equals the lowest
/// weighted SSR wins. A given `guess` is used alone, as is.
pub fn fit_circuit(
    circuit: &Circuit,
    f_Hz: &[f64],
    Z: &[(f64, f64)],
    guess: Option<&[f64]>,
    weighting: Weighting,
) -> Result<EisFit, AnalysisError> {
    validate(circuit, f_Hz, Z, guess)?;
    let started = Instant::now();
    let starts: Vec<Vec<f64>> = match guess {
        Some(g) => vec![g.to_vec()],
        None => {
            let g = initial_guess(circuit, f_Hz, Z)?;
            let mut starts = vec![g.clone()];
            let taus: Vec<usize> = circuit
                .elements()
                .iter()
                .filter(|e| matches!(e.kind, ElementKind::Wo | ElementKind::Ws))
                .map(|e| e.first_param + 1)
                .collect();
            if !taus.is_empty() {
                for scale in [10.0, 0.1] {
                    let mut s = g.clone();
                    for &k in &taus {
                        s[k] *= scale;
                    }
                    starts.push(s);
                }
            }
            starts
        }
    };

    let (w_lo, w_hi) = f_Hz.iter().fold((f64::INFINITY, 0.0_f64), |(lo, hi), &f| {
        let w = std::f64::consts::TAU * f;
        (lo.min(w), hi.max(w))
    });
    // (run, start, tau inside the window?)
    let mut best: Option<(Run, Vec<f64>, bool)> = None;
    let mut last_err = None;
    for start in starts {
        let problem = CnlsProblem::new(circuit, f_Hz, Z, weighting, &start)?;
        match run_lm(problem) {
            Ok(run) if run.objective.is_finite() => {
                let inside = taus_inside_window(circuit, run.problem.original_params(), w_lo, w_hi);
                let better = match &best {
                    None => true,
                    Some((b, _, b_inside)) => {
                        (inside && !b_inside)
                            || (inside == *b_inside && run.objective < b.objective)
                    }
                };
                if better {
                    best = Some((run, start, inside));
                }
            }
            Ok(run) => {
                last_err = Some(AnalysisError::FitFailed(format!(
                    "objective is {} at the end",
                    run.objective
                )))
            }
            Err(e) => last_err = Some(e),
        }
    }
    let Some((run, start, _)) = best else {
        return Err(last_err.unwrap_or_else(|| AnalysisError::FitFailed("no start".into())));
    };

    let pr = &run.problem;
    let p = pr.original_params().to_vec();
    let r = pr.residual_vector();
    let ssr = r.norm_squared();
    let dof = (r.len() - p.len()) as f64;
    let stderr = standard_errors(&pr.jacobian_original(), ssr / dof);
    let rmse_ohm = pr.rmse_ohm();
    let fit_time_s = started.elapsed().as_secs_f64();

    let names = circuit.param_names();
    let named = |v: &[f64]| -> Vec<(String, f64)> {
        names.iter().cloned().zip(v.iter().copied()).collect()
    };
    Ok(EisFit {
        circuit: circuit.as_str().to_string(),
        parameters: named(&p),
        stderr: named(&stderr),
        initial_guess: named(&start),
        rmse_ohm,
        n_points: f_Hz.len(),
        weighting,
        n_evaluations: run.evaluations,
        fit_time_s,
    })
}

/// sqrt(diag(s2 (J^T J)^-1)), with J^T J scaled to unit diagonal before the
/// Cholesky factorisation (parameters span ~1e-2 ohm to ~1e2 s, and the
/// unscaled matrix would lose digits). NaN where it is not invertible.
fn standard_errors(j: &DMatrix<f64>, s2: f64) -> Vec<f64> {
    let np = j.ncols();
    let a = j.transpose() * j;
    let d: Vec<f64> = (0..np).map(|k| a[(k, k)].sqrt()).collect();
    if d.iter().any(|&x| !(x > 0.0 && x.is_finite())) {
        return vec![f64::NAN; np];
    }
    let b = DMatrix::from_fn(np, np, |r, c| a[(r, c)] / (d[r] * d[c]));
    match b.cholesky() {
        Some(ch) => {
            let inv = ch.inverse();
            (0..np).map(|k| (s2 * inv[(k, k)]).sqrt() / d[k]).collect()
        }
        None => vec![f64::NAN; np],
    }
}

/// Features of a spectrum the initial-guess heuristic reads off.
#[derive(Debug, Clone, Copy)]
struct Features {
    /// Re Z at the highest frequency: the series (ohmic) resistance.
    r_hf: f64,
    /// Angular frequency of the first -Im maximum coming from high f.
    w_apex: f64,
    /// Re Z at the -Im minimum between the arc and the diffusion tail (or
    /// the lowest frequency when there is none).
    r_valley: f64,
    /// The valley point itself and the lowest-frequency point.
    z_valley: C64,
    w_valley: f64,
    z_lf: C64,
    w_lf: f64,
    z_hf: C64,
    w_hf: f64,
}

fn features(f_Hz: &[f64], Z: &[(f64, f64)]) -> Features {
    let mut idx: Vec<usize> = (0..f_Hz.len()).collect();
    // High to low frequency.
    idx.sort_by(|&a, &b| f_Hz[b].total_cmp(&f_Hz[a]));
    let w = |i: usize| std::f64::consts::TAU * f_Hz[idx[i]];
    let z = |i: usize| C64::new(Z[idx[i]].0, Z[idx[i]].1);
    let mim = |i: usize| -Z[idx[i]].1;
    let n = idx.len();
    // A point is a local extremum if it beats its neighbours within +-2
    // points: robust to single-point noise.
    let is_extreme = |i: usize, max: bool| {
        let lo = i.saturating_sub(2);
        let hi = (i + 2).min(n - 1);
        (lo..=hi).filter(|&k| k != i).all(|k| {
            if max {
                mim(i) >= mim(k)
            } else {
                mim(i) <= mim(k)
            }
        })
    };
    let apex = (1..n.saturating_sub(1))
        .find(|&i| is_extreme(i, true))
        .unwrap_or_else(|| {
            (0..n)
                .max_by(|&a, &b| mim(a).total_cmp(&mim(b)))
                .unwrap_or(0)
        });
    let valley = (apex + 1..n.saturating_sub(1))
        .find(|&i| is_extreme(i, false))
        .unwrap_or(n - 1);
    Features {
        r_hf: z(0).re,
        w_apex: w(apex),
        r_valley: z(valley).re,
        z_valley: z(valley),
        w_valley: w(valley),
        z_lf: z(n - 1),
        w_lf: w(n - 1),
        z_hf: z(0),
        w_hf: w(0),
    }
}

/// Solve `arg(coth(s)/s) = -phase_rad`, s = sqrt(j x), for x = w tau by
/// bisection in log x. The open Warburg's phase falls monotonically from 90
/// deg (x -> 0, capacitive) to 45 deg (x -> inf).
///
/// x is capped at 10: beyond it the phase is within 0.1 deg of 45, so a
/// tail that looks semi-infinite only says the spectrum stops before the
/// plateau (tau > ~10 / w_lf), and the crude tail phase (the arc is not
/// fully removed) cannot tell 10 from 10^4. Starting at 10^4 / w_lf, LM
/// ran tau off to 1e278 on a 1 kHz - 0.05 Hz spectrum with tau = 20 s.
fn wo_x_for_phase(phase_rad: f64) -> f64 {
    let c = Circuit::parse("Wo0");
    let Ok(c) = c else { return 3.0 };
    let ph = |x: f64| -c.z_at(&[1.0, x], 1.0).arg();
    let (mut lo, mut hi) = (-3.0_f64, 1.0_f64);
    if phase_rad >= ph(10f64.powf(lo)) {
        return 10f64.powf(lo);
    }
    if phase_rad <= ph(10f64.powf(hi)) {
        return 10f64.powf(hi);
    }
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if ph(10f64.powf(mid)) > phase_rad {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    10f64.powf(0.5 * (lo + hi))
}

/// A starting point read off the spectrum, by element role:
///
/// - R in the outer series chain: the high-frequency intercept (shared
///   equally if there are several);
/// - R inside `p(...)`: the arc width (valley Re minus intercept), shared;
/// - C / CPE inside `p(...)`: from the arc apex, `w_apex R C = 1`
///   (CPE alpha 0.9, `Q = 1/(R w_apex^alpha)`);
/// - C / CPE in series: from the lowest-frequency point, `-1/(w Im Z)`;
/// - L: `Im Z / w` at the highest frequency if inductive there, else tiny;
/// - W: the Warburg coefficient from the low-frequency tail,
///   `A_W = dRe Z / d(w^-1/2)` between the valley and the lowest frequency;
/// - Wo: tau from the tail's phase at the lowest frequency (inverting the
///   Wo phase, 45 deg = knee not reached), Z0 = A_W sqrt(2 tau) (the
///   semi-infinite limit of Wo has A_W = Z0/sqrt(2 tau));
/// - Ws: tau = 3/w_lf (knee at the bottom of the range), Z0 likewise.
pub fn initial_guess(
    circuit: &Circuit,
    f_Hz: &[f64],
    Z: &[(f64, f64)],
) -> Result<Vec<f64>, AnalysisError> {
    validate(circuit, f_Hz, Z, None)?;
    let ft = features(f_Hz, Z);
    let z_scale = ft.z_lf.norm().max(ft.z_hf.norm()).max(f64::MIN_POSITIVE);
    let positive = |x: f64, fallback: f64| {
        if x.is_finite() && x > 0.0 {
            x
        } else {
            fallback
        }
    };

    let n_series_r = circuit
        .elements()
        .iter()
        .filter(|e| e.kind == ElementKind::R && e.parallel_depth == 0)
        .count()
        .max(1);
    let n_par_r = circuit
        .elements()
        .iter()
        .filter(|e| e.kind == ElementKind::R && e.parallel_depth > 0)
        .count()
        .max(1);
    let r_hf = positive(ft.r_hf, 0.01 * z_scale);
    let r_arc_total = positive(ft.r_valley - ft.r_hf, 0.1 * z_scale);
    let r_arc = r_arc_total / n_par_r as f64;

    // Tail relative to the valley (the arc's contribution mostly removed).
    let tail = ft.z_lf - ft.z_valley;
    let dw = ft.w_lf.powf(-0.5) - ft.w_valley.powf(-0.5);
    let a_w = positive(
        tail.re / dw,
        positive(-ft.z_lf.im * ft.w_lf.sqrt(), 0.1 * z_scale),
    );

    let mut g = vec![0.0; circuit.n_params()];
    for e in circuit.elements() {
        let k = e.first_param;
        let inner = e.parallel_depth > 0;
        match e.kind {
            ElementKind::R if inner => g[k] = r_arc,
            ElementKind::R => g[k] = r_hf / n_series_r as f64,
            ElementKind::C if inner => g[k] = 1.0 / (ft.w_apex * r_arc),
            ElementKind::C => {
                g[k] = positive(-1.0 / (ft.w_lf * ft.z_lf.im), 1.0 / (ft.w_lf * z_scale))
            }
            ElementKind::Cpe => {
                let alpha = 0.9;
                g[k + 1] = alpha;
                g[k] = if inner {
                    1.0 / (r_arc * ft.w_apex.powf(alpha))
                } else {
                    1.0 / (ft.z_lf.norm() * ft.w_lf.powf(alpha))
                };
            }
            ElementKind::L => {
                g[k] = positive(ft.z_hf.im / ft.w_hf, 1e-3 * z_scale / ft.w_hf);
            }
            ElementKind::W => g[k] = a_w,
            ElementKind::Wo => {
                let phase = -tail.arg();
                let x = if tail.norm() > 0.0 && phase > 0.0 {
                    wo_x_for_phase(phase)
                } else {
                    3.0
                };
                let tau = x / ft.w_lf;
                g[k + 1] = tau;
                g[k] = a_w * (2.0 * tau).sqrt();
            }
            ElementKind::Ws => {
                let tau = 3.0 / ft.w_lf;
                g[k + 1] = tau;
                g[k] = a_w * (2.0 * tau).sqrt();
            }
        }
    }
    for (v, name) in g.iter_mut().zip(circuit.param_names()) {
        if !(v.is_finite() && *v > 0.0) {
            return Err(AnalysisError::Degenerate(format!(
                "no usable initial guess for {name} from this spectrum ({v}); give one"
            )));
        }
    }
    Ok(g)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use levenberg_marquardt::differentiate_numerically;

    #[test]
    fn jacobian_matches_numerical_differentiation() {
        let c = Circuit::parse("R0-p(R1-Wo1,CPE1)-L2").unwrap();
        let f: Vec<f64> = (0..30).map(|k| 10f64.powf(-2.0 + 0.2 * k as f64)).collect();
        let truth = [0.02, 0.012, 0.06, 220.0, 1.2, 0.85, 1e-7];
        let z: Vec<(f64, f64)> = c
            .impedance_spectrum(&truth, &f)
            .unwrap()
            .iter()
            .map(|z| (z.re * 1.01, z.im * 0.98))
            .collect();
        for weighting in [Weighting::Unit, Weighting::Modulus, Weighting::Proportional] {
            let start = [0.015, 0.01, 0.05, 150.0, 0.9, 0.7, 2e-7];
            let mut pr = CnlsProblem::new(&c, &f, &z, weighting, &start).unwrap();
            let analytic = pr.jacobian().unwrap();
            let numeric = differentiate_numerically(&mut pr).unwrap();
            let scale = analytic.amax();
            let diff = (&analytic - &numeric).amax();
            assert!(diff < 1e-6 * scale, "{weighting:?}: {diff} vs {scale}");
        }
    }

    #[test]
    fn recovers_exact_synthetic_parameters_with_stderr_near_zero() {
        let c = Circuit::parse("R0-p(R1,CPE1)-W2").unwrap();
        let f: Vec<f64> = (0..40)
            .map(|k| 10f64.powf(-2.0 + 0.15 * k as f64))
            .collect();
        let truth = [10.0, 50.0, 1e-4, 0.8, 20.0];
        let z: Vec<(f64, f64)> = c
            .impedance_spectrum(&truth, &f)
            .unwrap()
            .iter()
            .map(|z| (z.re, z.im))
            .collect();
        for weighting in [Weighting::Unit, Weighting::Modulus, Weighting::Proportional] {
            let fit = fit_circuit(&c, &f, &z, None, weighting).unwrap();
            for (got, want) in fit.values().iter().zip(truth) {
                assert!((got / want - 1.0).abs() < 1e-6, "{weighting:?} {fit:?}");
            }
            assert!(fit.rmse_ohm < 1e-6, "{fit:?}");
        }
    }

    #[test]
    fn open_warburg_converges_when_the_spectrum_stops_before_the_plateau() {
        // The virtual bench at 30 C seen from 1 kHz to 0.05 Hz, 3 points per
        // decade: w_lf tau = 6.3, the tail still looks semi-infinite. The
        // automatic guess once started tau at 3e4 s and LM ran off to 1e278.
        let c = Circuit::parse("R0-p(R1-Wo1,C1)").unwrap();
        let f: Vec<f64> = (0..14)
            .map(|k| 1000.0 * 10f64.powf(-k as f64 / 3.0))
            .collect();
        let truth = [10.0, 9.2, 45.7, 20.0, 150e-6];
        let z: Vec<(f64, f64)> = c
            .impedance_spectrum(&truth, &f)
            .unwrap()
            .iter()
            .map(|z| (z.re, z.im))
            .collect();
        let guess = initial_guess(&c, &f, &z).unwrap();
        assert!(guess[3] < 40.0, "tau guess {}", guess[3]);
        for weighting in [Weighting::Unit, Weighting::Modulus] {
            let fit = fit_circuit(&c, &f, &z, None, weighting).unwrap();
            for (got, want) in fit.values().iter().zip(truth) {
                assert!((got / want - 1.0).abs() < 1e-4, "{weighting:?} {fit:?}");
            }
        }
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        let c = Circuit::parse("R0-p(R1,C1)").unwrap();
        let f = [1.0, 10.0];
        let z = [(1.0, -1.0), (1.0, -0.5)];
        assert!(matches!(
            fit_circuit(&c, &f, &z[..1], None, Weighting::Unit),
            Err(AnalysisError::Length { .. })
        ));
        assert!(matches!(
            fit_circuit(&c, &f, &z, Some(&[1.0, -1.0, 1.0]), Weighting::Unit),
            Err(AnalysisError::Degenerate(_))
        ));
        let zero_im = [(1.0, 0.0), (1.0, -0.5)];
        let f3 = [1.0, 10.0];
        assert!(
            fit_circuit(
                &c,
                &f3,
                &zero_im,
                Some(&[1.0, 1.0, 1.0]),
                Weighting::Proportional
            )
            .is_err()
        );
        assert!("modulus".parse::<Weighting>().unwrap() == Weighting::Modulus);
        assert!("x".parse::<Weighting>().is_err());
    }
}
