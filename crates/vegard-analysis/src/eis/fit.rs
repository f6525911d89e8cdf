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
use super::global::{DataScales, Rng, random_start};
use super::quality::{FitProblem, FitStatus, PositiveScale, Quality, assess, curvature};
use super::structure::{ArcSummary, arc_summaries, canonical_permutation, permute};
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
/// `status`, `parameters`, `stderr` and `initial_guess` as name -> value
/// maps in parameter order; `rmse` in ohm; the quality figures flattened
/// in (`chi2_weighted`, `rmse_weighted`, `chi2_reduced`, `dof`, `aic`,
/// `bic`). Non-finite numbers are JSON null.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EisFit {
    pub circuit: String,
    /// Whether the numbers mean anything: `Ok`, `Unidentifiable` (the
    /// optimum is reported but the data do not pin it down) or `Failed`
    /// (the parameters are NaN). Never use a non-Ok fit as a result.
    pub status: FitStatus,
    /// Fitted values, in canonical order (see `relabelled`).
    #[serde(serialize_with = "as_map")]
    pub parameters: Vec<(String, f64)>,
    /// One standard error per parameter (same unit). NaN (JSON null) when
    /// J^T J is singular: the data do not determine that parameter.
    #[serde(serialize_with = "as_map")]
    pub stderr: Vec<(String, f64)>,
    /// The starting point of the winning LM run, as it was given to LM
    /// (before any relabelling).
    #[serde(serialize_with = "as_map")]
    pub initial_guess: Vec<(String, f64)>,
    /// Which start won: `given guess`, `automatic guess`, `previous fit
    /// (...)`, `multi-start k (...)`.
    pub start: String,
    /// Number of starts LM ran from.
    pub n_starts: usize,
    /// Weighted SSR that LM reached from the given guess (None without a
    /// guess, or when that run failed): compare with `chi2_weighted`.
    pub given_guess_chi2: Option<f64>,
    /// Whether interchangeable blocks were reordered into canonical order
    /// (highest characteristic frequency first).
    pub relabelled: bool,
    /// sqrt(mean |Z_model - Z_data|^2), unweighted, ohm (impedance.py
    /// `rmse`; the key stays `rmse` for compatibility).
    #[serde(rename = "rmse")]
    pub rmse_ohm: f64,
    /// The same number under an explicit name.
    pub rmse_unweighted_ohm: f64,
    /// Weighted chi^2, weighted RMSE, reduced chi^2, AIC, BIC for the
    /// weighting used (module `quality` has the formulas).
    #[serde(flatten)]
    pub quality: Quality,
    /// Condition number of the unit-diagonal-scaled J^T J at the optimum.
    pub condition_number: f64,
    /// Time constant and effective capacitance of every R||C and R||CPE
    /// block.
    pub arcs: Vec<ArcSummary>,
    pub n_points: usize,
    pub weighting: Weighting,
    /// Residual evaluations of the accepted run (LM iterations plus
    /// rejected trial steps).
    pub n_evaluations: usize,
    /// Wall time of the fit itself (starts, minimisations, covariance);
    /// parsing and file reading are not included.
    pub fit_time_s: f64,
    /// Covariance of the parameters (`cov[i][j]`, in parameter order and
    /// units); NaN when singular. Not serialised.
    #[serde(skip)]
    pub covariance: Vec<Vec<f64>>,
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

    /// A fit that could not be done: NaN parameters and the reason.
    fn failed(
        circuit: &Circuit,
        n_points: usize,
        weighting: Weighting,
        guess: Option<&[f64]>,
        reason: FitProblem,
        started: Instant,
    ) -> EisFit {
        let names = circuit.param_names();
        let nan: Vec<(String, f64)> = names.iter().map(|n| (n.clone(), f64::NAN)).collect();
        let initial_guess = match guess {
            Some(g) => names.iter().cloned().zip(g.iter().copied()).collect(),
            None => nan.clone(),
        };
        EisFit {
            circuit: circuit.as_str().to_string(),
            status: FitStatus::Failed { reason },
            parameters: nan.clone(),
            stderr: nan,
            initial_guess,
            start: "none".to_string(),
            n_starts: 0,
            given_guess_chi2: None,
            relabelled: false,
            rmse_ohm: f64::NAN,
            rmse_unweighted_ohm: f64::NAN,
            quality: super::quality::quality(f64::NAN, n_points, circuit.n_params()),
            condition_number: f64::NAN,
            arcs: Vec::new(),
            n_points,
            weighting,
            n_evaluations: 0,
            fit_time_s: started.elapsed().as_secs_f64(),
            covariance: Vec::new(),
        }
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

    /// Weighted SSR at `p` (original parameters), without moving the
    /// problem's own parameters: the global stage's screening.
    fn ssr_at(&self, p: &[f64]) -> f64 {
        let n = self.w_rad_s.len();
        let mut ss = 0.0;
        for i in 0..n {
            let z = self.circuit.z_at(p, self.w_rad_s[i]);
            let a = (z.re - self.z_re[i]) * self.weight_re[i];
            let b = (z.im - self.z_im[i]) * self.weight_im[i];
            ss += a * a + b * b;
        }
        ss
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

/// Evaluation budget of an LM run from a random start, in units of
/// `n_params + 1` evaluations (MINPACK's `patience`): 30 (240 evaluations
/// for 7 parameters, ~20 ms on 70 points in release) is ample for a start
/// in the right valley. Random starts that run off towards a bound (a CPE
/// exponent creeping to 1, Q to 1e60) would otherwise use the full
/// `PATIENCE` budget each, ~0.8 s, and then fail anyway.
const RANDOM_START_PATIENCE: usize = 30;

fn run_lm<'a>(problem: CnlsProblem<'a>, patience: usize) -> Result<Run<'a>, AnalysisError> {
    let lm = LevenbergMarquardt::new()
        .with_ftol(TOL)
        .with_xtol(TOL)
        .with_gtol(TOL)
        .with_patience(patience);
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

/// Most impedance points a fit (and the lin-KK test) accepts: 10 000.
/// The fit's time is linear in the points but with a large constant (every
/// one of ~15 Levenberg-Marquardt runs and 300 screened starts evaluates
/// the whole spectrum): about 0.6 ms per point, so 10 000 points take ~6 s
/// and the 930 000 rows of issue 16 took minutes. A measured spectrum has
/// 10-1000 frequencies; vegard records at most
/// `vegard_recipe::MAX_SWEEP_POINTS` (the same 10 000) per EIS step.
pub const MAX_FIT_POINTS: usize = 10_000;

/// [`MAX_FIT_POINTS`] as an error that says how to decimate.
pub(crate) fn check_fit_points(n: usize) -> Result<(), AnalysisError> {
    if n <= MAX_FIT_POINTS {
        return Ok(());
    }
    Err(AnalysisError::TooMuchData(format!(
        "{n} impedance points, at most {MAX_FIT_POINTS} can be fitted (a measured spectrum \
         has 10-1000 frequencies): decimate the spectrum, e.g. keep one point in {}, or \
         average repeated frequencies",
        n.div_ceil(MAX_FIT_POINTS)
    )))
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
            reference: "f_Hz",
            expected: f_Hz.len(),
            got: Z.len(),
        });
    }
    check_fit_points(f_Hz.len())?;
    // Too few points is not an input error but a failed fit
    // (`quality::precheck`): the caller gets the reason as a status.
    if f_Hz.is_empty() {
        return Err(AnalysisError::Insufficient("no impedance points".into()));
    }
    let p = circuit.n_params();
    for (i, (&f, &(re, im))) in f_Hz.iter().zip(Z).enumerate() {
        if !(f.is_finite() && f > 0.0 && re.is_finite() && im.is_finite()) {
            return Err(AnalysisError::Degenerate(format!(
                "point {}: f = {} Hz, Z = {} + {}j ohm (need f > 0 and finite values)",
                i + 1,
                crate::error::num(&f),
                crate::error::num(&re),
                crate::error::num(&im)
            )));
        }
    }
    if let Some(g) = guess {
        if g.len() != p {
            return Err(AnalysisError::GuessLength {
                circuit: circuit.to_string(),
                names: circuit.param_names().join(", "),
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
/// `1e-2 / w_max <= tau <= TAU_MAX_X / w_min` (module `quality` flags a
/// tau outside as at a bound).
///
/// Why this matters: outside that window a Wo/Ws degenerates (tau -> inf
/// with Z0/sqrt(tau) fixed is a semi-infinite W; tau -> 0 is an R or R-C),
/// and such a boundary solution can have a slightly LOWER SSR than the
/// physical one. On impedance.py's example spectrum, `R0-p(R1-Wo1,C1)`
/// unweighted reaches rmse 1.4402e-3 ohm with tau ~ 1e26 s against
/// 1.4540e-3 ohm at the published tau = 221 s. The published answer is
/// the local minimum inside the window, and so is ours.
///
/// The upper end is `w_min tau = 10` ([`TAU_MAX_X`]): beyond it the open
/// Warburg's phase at the lowest frequency is within 0.1 deg of the
/// semi-infinite 45 deg (see `wo_x_for_phase`), so the data cannot tell
/// tau from any larger value. With the global stage this matters: on the
/// same spectrum a random start stops on that flat slope at tau = 1406 s
/// (`w_min tau` = 28, relative SE of tau 6, SSR 2 % below the published
/// minimum); with the old bound `1e2 / w_min` it won.
fn taus_inside_window(circuit: &Circuit, p: &[f64], w_lo: f64, w_hi: f64) -> bool {
    circuit
        .elements()
        .iter()
        .filter(|e| matches!(e.kind, ElementKind::Wo | ElementKind::Ws))
        .all(|e| {
            let tau = p[e.first_param + 1];
            tau >= 1e-2 / w_hi && tau <= TAU_MAX_X / w_lo
        })
}

/// Options of [`fit_circuit_with`]. The default is what [`fit_circuit`]
/// does: the automatic guess plus the global stage.
#[derive(Debug, Clone, PartialEq)]
pub struct FitOptions {
    pub weighting: Weighting,
    /// A user's starting point: tried first, and reported as the winner
    /// when it reaches the best minimum (`given_guess_chi2` says what it reached).
    pub guess: Option<Vec<f64>>,
    /// Further named starts tried after the guess, e.g. the previous
    /// temperature's result in a series (`"previous fit (300.0 K)"`).
    pub extra_starts: Vec<(String, Vec<f64>)>,
    /// Random starts drawn over the data's scales and screened by their
    /// weighted SSR (0 switches the global stage off).
    pub n_candidates: usize,
    /// How many of the best screened random starts LM runs from.
    pub n_lm_starts: usize,
    /// Seed of the random starts (fits are reproducible).
    pub seed: u64,
}

/// Random starts screened per fit: screening costs one spectrum evaluation
/// each (~10 us), so hundreds are cheap.
pub const DEFAULT_CANDIDATES: usize = 300;
/// LM runs from the best screened random starts: with the automatic and
/// given starts, about 15 LM runs per fit.
pub const DEFAULT_LM_STARTS: usize = 12;

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            weighting: Weighting::Unit,
            guess: None,
            extra_starts: Vec::new(),
            n_candidates: DEFAULT_CANDIDATES,
            n_lm_starts: DEFAULT_LM_STARTS,
            seed: 0x5EED_0013,
        }
    }
}

/// Largest `w_min tau` of a finite Warburg the data can resolve; see
/// `taus_inside_window`.
pub(crate) const TAU_MAX_X: f64 = 10.0;

/// A random start's optimum must have a weighted SSR lower by more than
/// this (relative) to replace the best of the given, chained and automatic
/// starts: equal within rounding is the same minimum, and the
/// deterministic start is reported.
const SAME_MINIMUM_REL: f64 = 1e-8;

/// Fit `circuit` to the spectrum (`f_Hz`, `Z` as (Z', Z'') in ohm) by CNLS.
///
/// [`fit_circuit_with`] with the default options and the given guess and
/// weighting: the guess (if any), the automatic guess (every finite
/// Warburg tau also at x10 and x0.1) and the global stage's best random
/// starts are all run through LM; see [`fit_circuit_with`]. The result is
/// always checked: read [`EisFit::status`] before using the numbers.
pub fn fit_circuit(
    circuit: &Circuit,
    f_Hz: &[f64],
    Z: &[(f64, f64)],
    guess: Option<&[f64]>,
    weighting: Weighting,
) -> Result<EisFit, AnalysisError> {
    fit_circuit_with(
        circuit,
        f_Hz,
        Z,
        &FitOptions {
            weighting,
            guess: guess.map(<[f64]>::to_vec),
            ..FitOptions::default()
        },
    )
}

/// Fit `circuit` by CNLS from several starts and keep the best.
///
/// Starts, in order: the given guess, `extra_starts`, the automatic guess
/// ([`initial_guess`], with every Warburg tau also x10 and x0.1), then the
/// `n_lm_starts` best of `n_candidates` random starts (module `global`).
/// LM runs from each. Runs whose finite-Warburg taus stay inside the
/// measured window (`taus_inside_window`) win over degenerate ones; among
/// equals the lowest weighted SSR wins, a random start only when it is
/// lower by more than rounding (`SAME_MINIMUM_REL`). [`EisFit::start`]
/// names the winner, [`EisFit::given_guess_chi2`] what the guess reached.
///
/// The parameters are then put in canonical order (module `structure`:
/// interchangeable blocks sorted by characteristic frequency, highest
/// first), and the standard errors, covariance and identifiability checks
/// (module `quality`) are computed at the relabelled optimum.
///
/// Errors are for input the caller must fix (lengths, non-finite values,
/// a guess outside its range, an impossible weighting). Data that cannot
/// determine the circuit (too few points, all frequencies equal, no start
/// converging) give `Ok` with [`FitStatus::Failed`]; an optimum the data
/// do not pin down gives [`FitStatus::Unidentifiable`].
pub fn fit_circuit_with(
    circuit: &Circuit,
    f_Hz: &[f64],
    Z: &[(f64, f64)],
    opts: &FitOptions,
) -> Result<EisFit, AnalysisError> {
    let guess = opts.guess.as_deref();
    validate(circuit, f_Hz, Z, guess)?;
    let started = Instant::now();
    let weighting = opts.weighting;
    let names = circuit.param_names();
    let np = circuit.n_params();
    // Weights are checked here, once, so that a bad weighting is an error
    // even when the fit cannot start.
    let screen = CnlsProblem::new(circuit, f_Hz, Z, weighting, &vec![1.0; np])?;
    if let Some(problem) = super::quality::precheck(f_Hz, np) {
        return Ok(EisFit::failed(
            circuit,
            f_Hz.len(),
            weighting,
            guess,
            problem,
            started,
        ));
    }

    let mut starts: Vec<(String, Vec<f64>)> = Vec::new();
    if let Some(g) = guess {
        starts.push(("given guess".to_string(), g.to_vec()));
    }
    for (label, s) in &opts.extra_starts {
        if s.len() == np && validate(circuit, f_Hz, Z, Some(s)).is_ok() {
            starts.push((label.clone(), s.clone()));
        }
    }
    if let Ok(g) = initial_guess(circuit, f_Hz, Z) {
        let taus: Vec<usize> = circuit
            .elements()
            .iter()
            .filter(|e| matches!(e.kind, ElementKind::Wo | ElementKind::Ws))
            .map(|e| e.first_param + 1)
            .collect();
        starts.push(("automatic guess".to_string(), g.clone()));
        if !taus.is_empty() {
            for scale in [10.0, 0.1] {
                let mut s = g.clone();
                for &k in &taus {
                    s[k] *= scale;
                }
                starts.push((format!("automatic guess, Warburg tau x{scale}"), s));
            }
        }
    }
    let n_deterministic = starts.len();
    if opts.n_candidates > 0 && opts.n_lm_starts > 0 {
        let sc = DataScales::of(f_Hz, Z);
        let mut rng = Rng::new(opts.seed);
        let mut cands: Vec<(f64, Vec<f64>)> = (0..opts.n_candidates)
            .map(|_| {
                let p = random_start(circuit, &sc, &mut rng);
                (screen.ssr_at(&p), p)
            })
            .filter(|(ssr, _)| ssr.is_finite())
            .collect();
        cands.sort_by(|a, b| a.0.total_cmp(&b.0));
        let n = cands.len();
        for (k, (_, p)) in cands.into_iter().take(opts.n_lm_starts).enumerate() {
            starts.push((
                format!("multi-start {} (best {} of {n} random)", k + 1, k + 1),
                p,
            ));
        }
    }

    let (w_lo, w_hi) = f_Hz.iter().fold((f64::INFINITY, 0.0_f64), |(lo, hi), &f| {
        let w = std::f64::consts::TAU * f;
        (lo.min(w), hi.max(w))
    });
    let n_starts = starts.len();
    // (run, start index, taus inside the window?)
    let mut best: Option<(Run, usize, bool)> = None;
    let mut given_guess_chi2 = None;
    let mut last_err = None;
    for (i, (_, start)) in starts.iter().enumerate() {
        let problem = CnlsProblem::new(circuit, f_Hz, Z, weighting, start)?;
        let patience = if i < n_deterministic {
            PATIENCE
        } else {
            RANDOM_START_PATIENCE
        };
        match run_lm(problem, patience) {
            Ok(run) if run.objective.is_finite() => {
                let ssr = 2.0 * run.objective;
                if guess.is_some() && i == 0 {
                    given_guess_chi2 = Some(ssr);
                }
                let inside = taus_inside_window(circuit, run.problem.original_params(), w_lo, w_hi);
                // A random start must beat the deterministic ones by more
                // than rounding; among deterministic starts the lowest wins
                // (as before the global stage, so known fits keep their
                // reported start).
                let margin = if i < n_deterministic {
                    1.0
                } else {
                    1.0 - SAME_MINIMUM_REL
                };
                let better = match &best {
                    None => true,
                    Some((b, _, b_inside)) => {
                        (inside && !b_inside)
                            || (inside == *b_inside && run.objective < b.objective * margin)
                    }
                };
                if better {
                    best = Some((run, i, inside));
                }
            }
            Ok(run) => last_err = Some(format!("objective is {} at the end", run.objective)),
            Err(e) => last_err = Some(e.to_string()),
        }
    }
    let Some((run, won, _)) = best else {
        let why = last_err.unwrap_or_else(|| "no usable start".to_string());
        return Ok(EisFit::failed(
            circuit,
            f_Hz.len(),
            weighting,
            guess,
            FitProblem::NoConvergence(why),
            started,
        ));
    };

    let p_fit = run.problem.original_params().to_vec();
    let perm = canonical_permutation(circuit, &p_fit, w_lo, w_hi);
    let relabelled = perm.is_some();
    let relabelled_problem;
    let pr = match &perm {
        Some(perm) => {
            relabelled_problem =
                CnlsProblem::new(circuit, f_Hz, Z, weighting, &permute(&p_fit, perm))?;
            &relabelled_problem
        }
        None => &run.problem,
    };
    let p = pr.original_params().to_vec();
    let r = pr.residual_vector();
    let ssr = r.norm_squared();
    let q = super::quality::quality(ssr, f_Hz.len(), np);
    let curv = curvature(&pr.jacobian_original(), ssr / q.dof as f64);
    let stderr: Vec<f64> = (0..np).map(|k| curv.cov[k][k].sqrt()).collect();
    let problems = assess(circuit, &p, &stderr, &curv, PositiveScale::of(f_Hz, Z));
    let status = if problems.is_empty() {
        FitStatus::Ok
    } else {
        FitStatus::Unidentifiable { reasons: problems }
    };
    let arcs = arc_summaries(circuit, &p, &curv.cov);
    let rmse_ohm = pr.rmse_ohm();
    let named = |v: &[f64]| -> Vec<(String, f64)> {
        names.iter().cloned().zip(v.iter().copied()).collect()
    };
    let (start_label, start_values) = &starts[won];
    Ok(EisFit {
        circuit: circuit.as_str().to_string(),
        status,
        parameters: named(&p),
        stderr: named(&stderr),
        initial_guess: named(start_values),
        start: start_label.clone(),
        n_starts,
        given_guess_chi2,
        relabelled,
        rmse_ohm,
        rmse_unweighted_ohm: rmse_ohm,
        quality: q,
        condition_number: curv.condition,
        arcs,
        n_points: f_Hz.len(),
        weighting,
        n_evaluations: run.evaluations,
        fit_time_s: started.elapsed().as_secs_f64(),
        covariance: curv.cov,
    })
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
