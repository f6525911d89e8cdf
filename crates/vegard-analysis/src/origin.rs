//! Signal origin (issue 19; PHYSICS.md sections 2 and 7): how much of the
//! measured deformation is Vegard strain, and how much the electrostatic
//! force on the tip, electrostriction of the film and thermal expansion
//! from Joule heating.
//!
//! # Model
//!
//! Over every analysed window (an ESM frequency's analysed periods, a CV
//! cycle) of every step, the deflection is
//!
//! ```text
//! u(t) = kappa Q_F(t)                                   Vegard
//!      + a2 E(t)^2     + a1 E(t)                         electrostatic: gamma (E - V_cpd)^2
//!      + b2 E_int(t)^2 + b1 E_int(t)                     electrostriction: c (E_int - E_zero)^2
//!      + J lag_tau(I(t)^2 R_s)                           Joule heating through a first-order lag
//!      + offset + drift (per window)
//! ```
//!
//! with `E` the measured electrode potential, `E_int = E - I R_s` the
//! potential across the interface, `Q_F = integral(I) - C_dl (E_int -
//! E_int(0))` the faradaic charge, and `R_s`, `C_dl` from the run's EIS fit.
//! So `gamma = a2`, `V_cpd = -a1 / (2 a2)`, `c = b2`, `E_zero = -b1 / (2 b2)`.
//!
//! Vegard strain enters through the *measured* faradaic charge, which
//! carries the film's transfer `H(omega tau)` whatever it is: no model of
//! the film is assumed, and `kappa` is the film's deformation per charge.
//! What tells the mechanisms apart is exactly what PHYSICS.md section 7
//! lists: Vegard follows the charge (it lags the potential and falls above
//! the film's corner), electrostatics and electrostriction are quadratic
//! in a potential (a second harmonic; a first harmonic that changes sign
//! across a dc sweep), electrostatics follows the electrode potential and
//! electrostriction the interface potential (they differ by the IR drop,
//! which on a thin film is large at the upper ESM frequencies and the fast
//! CVs), and Joule heating follows `I^2` with a lag.
//!
//! # Fit
//!
//! The same linear operator (a least-squares fit of offset, linear drift
//! and harmonics `1..n` over the window, as the software lock-in does)
//! is applied to `u` and to every regressor, so the model holds exactly
//! between the harmonic coefficients whatever the signals' shape (a CV's
//! triangle, a first cycle that does not close). The coefficients are
//! then one weighted linear least-squares fit across all windows, except
//! the thermal time constant, which is profiled (a grid in `ln tau`, then
//! golden section) and gets its standard error from the full Jacobian.
//!
//! Weights: each window's harmonic-coefficient variance from what the
//! first fit leaves over, the larger of a white-noise estimate and, for
//! windows of two or more periods, the power in the neighbouring
//! frequency bins (which sees the holder's random-walk drift that a white
//! estimate misses at low frequencies). The covariance is scaled by the
//! reduced chi-square when that exceeds 1.
//!
//! Trapezoidal integration of a sampled sine scales it by
//! `(x/2)/tan(x/2)`, `x = n omega dt`; the charge's harmonic coefficients
//! are divided by it (0.2 % at 40 samples per period, which matters at the
//! precision a long run reaches).
//!
//! # Limits
//!
//! A concentration-dependent partial molar volume (`kappa2 Q_F^2`) is not
//! in the model: it needs the charge relative to the rest state, which a
//! run does not record across unrecorded holds; with it present `kappa`
//! is the slope at the steps' states of charge (the CV nonlinearity
//! analysis measures `kappa2`).

use nalgebra::{DMatrix, DVector};
use num_complex::Complex64;
use serde::Serialize;
use statrs::distribution::{ContinuousCDF, FisherSnedecor, StudentsT};

use crate::AnalysisError;
use crate::linalg::ScaledSvd;

/// Harmonics fitted in an ESM window (the drive is a sine: 1st and 2nd).
pub const ESM_HARMONICS: usize = 2;
/// Harmonics fitted in a CV cycle (a triangle: its charge and `E^2` are
/// rich in harmonics; three carry nearly all of the signal).
pub const CV_HARMONICS: usize = 3;

/// What kind of step a window comes from, with the settings that label it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "technique", rename_all = "snake_case")]
pub enum OriginStepKind {
    Cv { scan_rate_V_per_s: f64 },
    EsmSweep { dc_V: f64, amplitude_V: f64 },
}

/// One window to analyse: `periods` whole periods of `f_Hz` from
/// `t_start_s`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OriginWindow {
    pub f_Hz: f64,
    pub t_start_s: f64,
    pub periods: u32,
}

/// One step's aligned samples (time order) and its windows.
#[derive(Debug, Clone, PartialEq)]
pub struct OriginStep {
    /// Plan step index.
    pub step: i64,
    pub kind: OriginStepKind,
    pub t_s: Vec<f64>,
    pub E_V: Vec<f64>,
    pub I_A: Vec<f64>,
    pub deflection_nm: Vec<f64>,
    pub windows: Vec<OriginWindow>,
}

/// The cell's series resistance and double-layer capacitance (from the
/// run's EIS fit): they give the interface potential and the faradaic
/// charge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OriginCell {
    pub R_s_ohm: f64,
    pub C_dl_F: f64,
}

/// A fitted quantity with its standard error and 95 % interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    pub value: f64,
    pub se: f64,
    pub ci95: [f64; 2],
}

impl Estimate {
    fn symmetric(value: f64, se: f64, t95: f64) -> Self {
        Estimate {
            value,
            se,
            ci95: [value - t95 * se, value + t95 * se],
        }
    }
    /// True when the 95 % interval contains `x`.
    pub fn covers(&self, x: f64) -> bool {
        self.ci95[0] <= x && x <= self.ci95[1]
    }
}

/// The mechanisms of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mechanism {
    Vegard,
    Electrostatic,
    Electrostriction,
    JouleHeating,
}

impl Mechanism {
    pub const ALL: [Mechanism; 4] = [
        Mechanism::Vegard,
        Mechanism::Electrostatic,
        Mechanism::Electrostriction,
        Mechanism::JouleHeating,
    ];
    /// Words for verdicts and reports.
    pub fn words(self) -> &'static str {
        match self {
            Mechanism::Vegard => "Vegard strain",
            Mechanism::Electrostatic => "electrostatics",
            Mechanism::Electrostriction => "electrostriction",
            Mechanism::JouleHeating => "Joule heating",
        }
    }
}

/// The fitted coefficients. A derived zero crossing (`V_cpd_V`,
/// `E_zero_V`) or time constant is `None` when its mechanism is not
/// significant: it is then not identifiable, and a number would be noise.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OriginCoefficients {
    /// Vegard strain, deflection per faradaic charge, nm/mC.
    pub kappa_nm_per_mC: Estimate,
    /// Electrostatic `gamma` of `gamma (E - V_cpd)^2`, nm/V^2.
    pub electrostatic_nm_per_V2: Estimate,
    pub V_cpd_V: Option<Estimate>,
    /// Electrostriction `c` of `c (E_int - E_zero)^2`, nm/V^2.
    pub electrostriction_nm_per_V2: Estimate,
    pub E_zero_V: Option<Estimate>,
    /// Joule heating: deflection per watt of `I^2 R_s` at steady state,
    /// nm/W (thermal resistance x expansion per kelvin).
    pub joule_nm_per_W: Estimate,
    /// Its thermal time constant, s (interval from the profile in ln tau).
    pub joule_tau_s: Option<Estimate>,
    /// The linear coefficients of `E` and `E_int` (nm/V) the zero
    /// crossings derive from.
    pub electrostatic_linear_nm_per_V: Estimate,
    pub electrostriction_linear_nm_per_V: Estimate,
}

/// Whether a mechanism is resolved: a joint Wald (F) test of its
/// coefficients against zero.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MechanismTest {
    pub mechanism: Mechanism,
    pub F: f64,
    pub dof: u32,
    pub p_value: f64,
    /// `p_value < 0.05`.
    pub significant: bool,
}

/// A share of the fitted first-harmonic amplitude, as a fraction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Share {
    pub value: f64,
    pub se: f64,
}

/// What each mechanism explains of one window's first harmonic: the
/// projection `Re(c_m conj(u)) / |u|^2` of each mechanism's fitted phasor
/// `c_m` on the fitted total `u` (the shares add up to 1; one may be
/// negative when it opposes the others).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowShares {
    pub step: i64,
    #[serde(flatten)]
    pub kind: OriginStepKind,
    pub f_Hz: f64,
    /// Measured first-harmonic deflection amplitude, nm (peak).
    pub measured_amp_nm: f64,
    /// Fitted first-harmonic amplitude, nm (peak).
    pub fitted_amp_nm: f64,
    pub vegard: Share,
    pub electrostatic: Share,
    pub electrostriction: Share,
    pub joule_heating: Share,
}

impl WindowShares {
    pub fn share(&self, m: Mechanism) -> Share {
        match m {
            Mechanism::Vegard => self.vegard,
            Mechanism::Electrostatic => self.electrostatic,
            Mechanism::Electrostriction => self.electrostriction,
            Mechanism::JouleHeating => self.joule_heating,
        }
    }
}

/// The verdict in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    /// Vegard strain resolved, no other mechanism significant.
    Vegard,
    /// Vegard strain and at least one other mechanism.
    Mixed,
    /// No Vegard strain resolved.
    NotVegard,
}

/// The separation of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignalOrigin {
    pub coefficients: OriginCoefficients,
    pub mechanisms: Vec<MechanismTest>,
    pub windows: Vec<WindowShares>,
    pub verdict: VerdictKind,
    /// The verdict in words.
    pub verdict_text: String,
    /// Harmonic-coefficient equations fitted (2 per harmonic per window).
    pub n_equations: usize,
    pub dof: usize,
    /// Weighted residual per degree of freedom (about 1 when the model and
    /// the noise estimates hold; the covariance is scaled up by it above 1).
    pub reduced_chi2: f64,
    /// The holder's random-walk drift the noise model found, nm/sqrt(min)
    /// (the bench's `random_walk_nm_per_sqrt_min`).
    pub drift_walk_nm_per_sqrt_min: f64,
    /// The R_s and C_dl used.
    pub R_s_ohm: f64,
    pub C_dl_F: f64,
    pub notes: Vec<String>,
}

/// Columns of the linear model, in order.
const KAPPA: usize = 0;
const A2: usize = 1;
const A1: usize = 2;
const B2: usize = 3;
const B1: usize = 4;
const JOULE: usize = 5;
const N_LINEAR: usize = 6;

/// Smallest scaled singular value accepted (relative); below it the
/// mechanisms are not separable by this experiment.
const RANK_TOLERANCE: f64 = 1e-9;

/// The fixed per-step series.
struct StepSeries {
    t_s: Vec<f64>,
    /// Trapezoid integral of I, C.
    q_int_C: Vec<f64>,
    e: Vec<f64>,
    e_int: Vec<f64>,
    u: Vec<f64>,
    /// `I^2 R_s`, W (non-finite current: the previous value).
    p_W: Vec<f64>,
}

/// One window with its basis and the harmonic coefficients of the fixed
/// series, `[cos_1, sin_1, cos_2, ...]`.
struct Win {
    step: usize,
    rows: Vec<usize>,
    f_Hz: f64,
    periods: u32,
    n_h: usize,
    svd: ScaledSvd,
    t_mid: f64,
    u: Vec<f64>,
    /// Columns KAPPA..B1 (JOULE depends on tau).
    x: [Vec<f64>; 5],
    /// Median sample interval, s.
    dt: f64,
    /// Covariance of the harmonic coefficients per unit noise variance:
    /// the harmonic block of `(A^T A)^-1` of the window's basis. Not a
    /// multiple of the identity: over whole periods the sines correlate
    /// with the drift column (18 % more variance at the fundamental of a
    /// two-period window), which equal weights would ignore.
    h_cov: DMatrix<f64>,
    /// `L^-1` of the Cholesky factor of the coefficients' covariance:
    /// multiplies the window's equations into independent unit-variance ones.
    whiten: DMatrix<f64>,
}

fn window_basis(t: &[f64], f_Hz: f64, t_mid: f64, n_h: usize) -> DMatrix<f64> {
    let w = 2.0 * std::f64::consts::PI * f_Hz;
    DMatrix::from_fn(t.len(), 2 + 2 * n_h, |r, c| match c {
        0 => 1.0,
        1 => t[r] - t_mid,
        _ => {
            let h = (1 + (c - 2) / 2) as f64;
            if c.is_multiple_of(2) {
                (w * h * t[r]).cos()
            } else {
                (w * h * t[r]).sin()
            }
        }
    })
}

/// Harmonic coefficients (without offset and drift) of `v` at `rows`.
fn coefs(svd: &ScaledSvd, v: &[f64], rows: &[usize]) -> Option<Vec<f64>> {
    let y = DVector::from_iterator(rows.len(), rows.iter().map(|&i| v[i]));
    let c = svd.solve(&y)?;
    Some(c.iter().skip(2).copied().collect())
}

/// Exact first-order lag `tau y' + y = p` of a piecewise-linear input,
/// from `y = y0` at the first sample.
fn lag(t_s: &[f64], p: &[f64], tau_s: f64, y0: f64) -> Vec<f64> {
    let mut y = Vec::with_capacity(p.len());
    let mut prev: Option<(f64, f64, f64)> = None; // (t, p, y)
    for (&t, &pk) in t_s.iter().zip(p) {
        let yk = match prev {
            None => y0,
            Some((tp, pp, yp)) => {
                let h = t - tp;
                if tau_s <= 0.0 || h <= 0.0 {
                    if tau_s <= 0.0 { pk } else { yp }
                } else {
                    let a = (-h / tau_s).exp();
                    // (1 - a) tau / h, computed without cancellation.
                    let r = -(-h / tau_s).exp_m1() * tau_s / h;
                    a * yp + pk * (1.0 - r) + pp * (r - a)
                }
            }
        };
        y.push(yk);
        prev = Some((t, pk, yk));
    }
    y
}

/// [`lag`] of every step's power, carried from one step into the next:
/// the heat of one step is still there when the next begins (after a CV
/// at mA, for about a second), and a filter restarted from zero at each
/// step would leave that transient in the deflection unexplained. Across
/// a gap (the engine switches the cell off between steps; a step not
/// analysed here) the heat decays as with no current. The first step
/// starts from rest.
fn step_lags(steps: &[StepSeries], tau_s: f64) -> Vec<Vec<f64>> {
    let mut out: Vec<Vec<f64>> = Vec::with_capacity(steps.len());
    let mut end: Option<(f64, f64)> = None; // (t, y) at the previous step's end
    for s in steps {
        let first = s.t_s.first().copied().unwrap_or(f64::NAN);
        let y0 = match end {
            Some((t_end, y_end)) if tau_s > 0.0 && first >= t_end => {
                y_end * (-(first - t_end) / tau_s).exp()
            }
            _ => 0.0,
        };
        let y = lag(&s.t_s, &s.p_W, tau_s, y0);
        if let (Some(&t), Some(&yl)) = (s.t_s.last(), y.last()) {
            end = Some((t, yl));
        }
        out.push(y);
    }
    out
}

fn prepare_step(s: &OriginStep, cell: OriginCell) -> Result<StepSeries, AnalysisError> {
    let n = s.t_s.len();
    for (name, v) in [
        ("E_V", &s.E_V),
        ("I_A", &s.I_A),
        ("deflection_nm", &s.deflection_nm),
    ] {
        if v.len() != n {
            return Err(AnalysisError::Length {
                name,
                reference: "t_s",
                expected: n,
                got: v.len(),
            });
        }
    }
    let q_int_C = crate::charge::cumulative_charge_C(&s.t_s, &s.I_A)?;
    let e_int: Vec<f64> = s
        .E_V
        .iter()
        .zip(&s.I_A)
        .map(|(e, i)| e - i * cell.R_s_ohm)
        .collect();
    let mut last = 0.0;
    let p_W = s
        .I_A
        .iter()
        .map(|&i| {
            if i.is_finite() {
                last = i * i * cell.R_s_ohm;
            }
            last
        })
        .collect();
    Ok(StepSeries {
        t_s: s.t_s.clone(),
        q_int_C,
        e: s.E_V.clone(),
        e_int,
        u: s.deflection_nm.clone(),
        p_W,
    })
}

/// `(x/2)/tan(x/2)`: what trapezoidal integration of samples `dt` apart
/// does to a sine of angular frequency `omega`, `x = omega dt`.
fn trapezoid_gain(x: f64) -> f64 {
    if x.abs() < 1e-8 {
        1.0
    } else {
        (0.5 * x) / (0.5 * x).tan()
    }
}

fn median_dt(t: &[f64], rows: &[usize]) -> f64 {
    let mut d: Vec<f64> = rows
        .windows(2)
        .map(|w| t[w[1]] - t[w[0]])
        .filter(|d| d.is_finite() && *d > 0.0)
        .collect();
    if d.is_empty() {
        return f64::NAN;
    }
    d.sort_by(f64::total_cmp);
    d[d.len() / 2]
}

fn build_window(
    k: usize,
    st: &StepSeries,
    w: &OriginWindow,
    n_h: usize,
    cell: OriginCell,
) -> Result<Win, String> {
    if !(w.f_Hz.is_finite() && w.f_Hz > 0.0 && w.periods > 0) {
        return Err(format!("window at {} Hz: no whole period", w.f_Hz));
    }
    let t_end = w.t_start_s + f64::from(w.periods) / w.f_Hz;
    let rows: Vec<usize> = (0..st.t_s.len())
        .filter(|&i| {
            let t = st.t_s[i];
            t >= w.t_start_s
                && t < t_end
                && [st.q_int_C[i], st.e[i], st.e_int[i], st.u[i]]
                    .iter()
                    .all(|v| v.is_finite())
        })
        .collect();
    let kcols = 2 + 2 * n_h;
    if rows.len() < 4 * kcols {
        return Err(format!(
            "window at {} Hz from t = {:.3} s: {} samples, need {}",
            w.f_Hz,
            w.t_start_s,
            rows.len(),
            4 * kcols
        ));
    }
    let t: Vec<f64> = rows.iter().map(|&i| st.t_s[i]).collect();
    let t_mid = 0.5 * (w.t_start_s + t_end);
    let svd = ScaledSvd::new(window_basis(&t, w.f_Hz, t_mid, n_h), 3.2e-7).ok_or_else(|| {
        format!(
            "window at {} Hz: samples do not resolve its harmonics",
            w.f_Hz
        )
    })?;
    let c = |v: &[f64]| {
        coefs(&svd, v, &rows).ok_or_else(|| format!("window at {} Hz: harmonic fit failed", w.f_Hz))
    };
    let u = c(&st.u)?;
    let q = c(&st.q_int_C)?;
    let e = c(&st.e)?;
    let ei = c(&st.e_int)?;
    let e2 = c(&st.e.iter().map(|v| v * v).collect::<Vec<f64>>())?;
    let ei2 = c(&st.e_int.iter().map(|v| v * v).collect::<Vec<f64>>())?;
    let h_cov = svd
        .inverse_gram()
        .map(|g| g.view((2, 2), (2 * n_h, 2 * n_h)).into_owned())
        .ok_or_else(|| format!("window at {} Hz: harmonic fit failed", w.f_Hz))?;
    let whiten = whitening(&h_cov, 1.0, &[])
        .ok_or_else(|| format!("window at {} Hz: harmonic fit failed", w.f_Hz))?;
    let dt = median_dt(&st.t_s, &rows);
    let omega = 2.0 * std::f64::consts::PI * w.f_Hz;
    // Faradaic charge in mC, the integral's trapezoid gain undone.
    let qf: Vec<f64> = (0..2 * n_h)
        .map(|j| {
            let h = (1 + j / 2) as f64;
            let g = trapezoid_gain(h * omega * dt);
            (q[j] / g - cell.C_dl_F * ei[j]) * 1e3
        })
        .collect();
    Ok(Win {
        step: k,
        rows,
        f_Hz: w.f_Hz,
        periods: w.periods,
        n_h,
        svd,
        t_mid,
        u,
        x: [qf, e2, e, ei2, ei],
        dt,
        whiten,
        h_cov,
    })
}

/// `L^-1` with `L L^T = white H + diag(rw)`: white noise through the
/// window's basis, plus the drift's variance at each harmonic.
fn whitening(h_cov: &DMatrix<f64>, white: f64, rw: &[f64]) -> Option<DMatrix<f64>> {
    let c = DMatrix::from_fn(h_cov.nrows(), h_cov.ncols(), |i, j| {
        white * h_cov[(i, j)]
            + if i == j {
                rw.get(i / 2).copied().unwrap_or(0.0)
            } else {
                0.0
            }
    });
    c.cholesky()?.l().try_inverse()
}

/// Transfer of [`lag`] (exact for a piecewise-linear input) to a sampled
/// sine `exp(j omega k dt)`: `(b0 + b1 z^-1) / (1 - a z^-1)`.
fn lag_transfer(omega: f64, dt: f64, tau_s: f64) -> Complex64 {
    if tau_s <= 0.0 || dt <= 0.0 {
        return Complex64::new(1.0, 0.0);
    }
    let a = (-dt / tau_s).exp();
    let r = -(-dt / tau_s).exp_m1() * tau_s / dt;
    let z1 = Complex64::from_polar(1.0, -omega * dt);
    (Complex64::new(1.0 - r, 0.0) + z1 * (r - a)) / (1.0 - z1 * a)
}

/// Per-window harmonic coefficients of the Joule regressor at `tau_s`.
///
/// The power `I^2 R_s` is filtered in time over each whole step, so what
/// is not periodic in a window (the heat still settling after the drive's
/// frequency or amplitude changed, a CV's first cycle) is in the regressor
/// as it is in the deflection. Filtering the samples as piecewise linear
/// misses ~1 % of the second harmonic at 40 samples per period (a bias a
/// long run resolves), so each harmonic is then corrected by the exact lag
/// over the piecewise-linear one's transfer, `(1/(1 + j h omega tau)) /
/// G_pl(h omega)`: exact for the periodic part, and slow parts pass the
/// piecewise-linear filter unharmed.
fn joule_coefs(steps: &[StepSeries], wins: &[Win], tau_s: f64) -> Option<Vec<Vec<f64>>> {
    let lags = step_lags(steps, tau_s);
    wins.iter()
        .map(|w| {
            let c = coefs(&w.svd, &lags[w.step], &w.rows)?;
            let omega = 2.0 * std::f64::consts::PI * w.f_Hz;
            Some(
                (0..w.n_h)
                    .flat_map(|h| {
                        let wh = (h + 1) as f64 * omega;
                        let exact = 1.0 / Complex64::new(1.0, wh * tau_s);
                        let k = exact / lag_transfer(wh, w.dt, tau_s);
                        let z = Complex64::new(c[2 * h], -c[2 * h + 1]) * k;
                        [z.re, -z.im]
                    })
                    .collect(),
            )
        })
        .collect()
}

/// `d/d(ln tau)` of [`joule_coefs`], by central differences.
fn joule_dcoefs(steps: &[StepSeries], wins: &[Win], tau_s: f64) -> Option<Vec<Vec<f64>>> {
    let h: f64 = 0.01;
    let p = joule_coefs(steps, wins, tau_s * h.exp())?;
    let m = joule_coefs(steps, wins, tau_s * (-h).exp())?;
    Some(
        p.iter()
            .zip(&m)
            .map(|(a, b)| a.iter().zip(b).map(|(a, b)| (a - b) / (2.0 * h)).collect())
            .collect(),
    )
}

/// The weighted design and data: rows `(window, coefficient)`.
fn design(
    wins: &[Win],
    joule: &[Vec<f64>],
    dlag: Option<&[Vec<f64>]>,
    joule_coef: f64,
) -> (DMatrix<f64>, DVector<f64>) {
    let m: usize = wins.iter().map(|w| 2 * w.n_h).sum();
    let p = N_LINEAR + usize::from(dlag.is_some());
    let mut x = DMatrix::zeros(m, p);
    let mut y = DVector::zeros(m);
    let mut r = 0;
    for (wi, w) in wins.iter().enumerate() {
        let k = 2 * w.n_h;
        let mut xl = DMatrix::zeros(k, p);
        let mut yl = DVector::zeros(k);
        for j in 0..k {
            for (c, col) in w.x.iter().enumerate() {
                xl[(j, c)] = col[j];
            }
            xl[(j, JOULE)] = joule[wi][j];
            if let Some(d) = dlag {
                xl[(j, N_LINEAR)] = joule_coef * d[wi][j];
            }
            yl[j] = w.u[j];
        }
        let xw = &w.whiten * xl;
        let yw = &w.whiten * yl;
        x.view_mut((r, 0), (k, p)).copy_from(&xw);
        y.rows_mut(r, k).copy_from(&yw);
        r += k;
    }
    (x, y)
}

struct LinearFit {
    theta: DVector<f64>,
    rss: f64,
}

fn solve_linear(wins: &[Win], joule: &[Vec<f64>]) -> Option<LinearFit> {
    let (x, y) = design(wins, joule, None, 0.0);
    let svd = ScaledSvd::new(x.clone(), RANK_TOLERANCE)?;
    let theta = svd.solve(&y)?;
    let rss = (y - x * &theta).norm_squared();
    Some(LinearFit { theta, rss })
}

/// Profile the thermal time constant: a grid in `ln tau`, then golden
/// section around the best point. Returns `(tau, fit, joule coefs)`.
fn profile_tau(
    steps: &[StepSeries],
    wins: &[Win],
    tau_range_s: [f64; 2],
) -> Option<(f64, LinearFit, Vec<Vec<f64>>)> {
    let (l0, l1) = (tau_range_s[0].ln(), tau_range_s[1].ln());
    let n_grid = 25;
    let eval = |ln_tau: f64| -> Option<(f64, LinearFit, Vec<Vec<f64>>)> {
        let tau = ln_tau.exp();
        let jc = joule_coefs(steps, wins, tau)?;
        let fit = solve_linear(wins, &jc)?;
        Some((tau, fit, jc))
    };
    let grid: Vec<f64> = (0..n_grid)
        .map(|i| l0 + (l1 - l0) * i as f64 / (n_grid - 1) as f64)
        .collect();
    let mut best: Option<(usize, f64)> = None;
    for (i, &g) in grid.iter().enumerate() {
        if let Some((_, fit, _)) = eval(g)
            && best.is_none_or(|(_, r)| fit.rss < r)
        {
            best = Some((i, fit.rss));
        }
    }
    let (bi, _) = best?;
    let (a, b) = (grid[bi.saturating_sub(1)], grid[(bi + 1).min(n_grid - 1)]);
    let rss_at = |l: f64| eval(l).map_or(f64::INFINITY, |(_, f, _)| f.rss);
    eval(crate::esm_fit::golden_min(rss_at, a, b, 1e-4))
}

/// 95 % intervals of the linear coefficients with the thermal time
/// constant profiled out: the set of values whose best fit over `tau`
/// stays within `t95^2 s^2` of the minimum. At fixed `tau` the residual is
/// quadratic in a coefficient, `RSS_min(tau) + (c - c(tau))^2 / G_cc(tau)`,
/// so each `tau` of a grid contributes an interval and the union is the
/// profile-likelihood interval. Why: the Joule coefficient and `tau` are
/// strongly and non-linearly correlated (above `1/tau` only `J / tau` is
/// seen); the linearised interval covered the truth 91 % of the time on the
/// synthetic bench, this one 95 %.
fn profile_intervals(
    steps: &[StepSeries],
    wins: &[Win],
    tau_grid: &[f64],
    rss_min: f64,
    threshold: f64,
) -> [[f64; 2]; N_LINEAR] {
    let mut ci = [[f64::INFINITY, f64::NEG_INFINITY]; N_LINEAR];
    for &tau in tau_grid {
        let Some(jc) = joule_coefs(steps, wins, tau) else {
            continue;
        };
        let (x, y) = design(wins, &jc, None, 0.0);
        let Some(svd) = ScaledSvd::new(x.clone(), RANK_TOLERANCE) else {
            continue;
        };
        let (Some(th), Some(g)) = (svd.solve(&y), svd.inverse_gram()) else {
            continue;
        };
        let rss = (y - x * &th).norm_squared();
        let room = rss_min + threshold - rss;
        if room < 0.0 {
            continue;
        }
        for (k, c) in ci.iter_mut().enumerate() {
            let half = (room * g[(k, k)]).sqrt();
            c[0] = c[0].min(th[k] - half);
            c[1] = c[1].max(th[k] + half);
        }
    }
    ci
}

/// The noise behind each window's harmonic coefficients, from what the
/// first fit leaves over in the time domain: white noise per window
/// (`s^2` of the residual outside the harmonics), plus a random-walk drift
/// of the holder common to the run, whose power falls as `1/f^2`: a
/// coefficient at `f` over a window `L` long gets `D / (2 pi^2 f^2 L)`.
/// `D` (nm^2/s) is estimated from the residual's power in the frequency
/// bins between the harmonics (`m / L`, `m` not a multiple of the
/// periods) of every window of two or more periods, less the white part.
/// Why a model and not each window's own bins: four to eight numbers per
/// window make random weights (the fit then claims more than it has),
/// and a white estimate alone misses the drift at the lowest frequencies,
/// where the charge and the Joule term are largest.
fn update_variances(
    steps: &[StepSeries],
    wins: &mut [Win],
    theta: &DVector<f64>,
    tau_s: f64,
    C_dl_F: f64,
) -> f64 {
    let lags = step_lags(steps, tau_s);
    let two_pi2 = 2.0 * std::f64::consts::PI * std::f64::consts::PI;
    let (mut num, mut den) = (0.0, 0.0);
    let mut whites = Vec::with_capacity(wins.len());
    for w in wins.iter() {
        let st = &steps[w.step];
        // Q_F in mC without the trapezoid correction: the time-domain
        // residual only estimates the noise.
        let r: Vec<f64> = w
            .rows
            .iter()
            .map(|&i| {
                let qf = (st.q_int_C[i] - C_dl_F * st.e_int[i]) * 1e3;
                st.u[i]
                    - theta[KAPPA] * qf
                    - theta[A2] * st.e[i] * st.e[i]
                    - theta[A1] * st.e[i]
                    - theta[B2] * st.e_int[i] * st.e_int[i]
                    - theta[B1] * st.e_int[i]
                    - theta[JOULE] * lags[w.step][i]
            })
            .collect();
        let t: Vec<f64> = w.rows.iter().map(|&i| st.t_s[i]).collect();
        let n = t.len();
        let kcols = 2 + 2 * w.n_h;
        let base = window_basis(&t, w.f_Hz, w.t_mid, w.n_h);
        let y = DVector::from_column_slice(&r);
        // Noise variance per sample.
        let white = w.svd.solve(&y).map_or(f64::NAN, |c| {
            (&y - &base * c).norm_squared() / (n - kcols) as f64
        });
        whites.push(white);
        let p = w.periods as usize;
        if p < 2 || !white.is_finite() {
            continue;
        }
        // Bins m / L next to each harmonic h P / L.
        let mut bins: Vec<usize> = Vec::new();
        for h in 1..=w.n_h {
            for d in [-2i64, -1, 1, 2] {
                let m = (h * p) as i64 + d;
                if m >= 2 && !(m as usize).is_multiple_of(p) && !bins.contains(&(m as usize)) {
                    bins.push(m as usize);
                }
            }
        }
        let all: Vec<usize> = (1..=w.n_h)
            .map(|h| h * p)
            .chain(bins.iter().copied())
            .collect();
        let len_s = p as f64 / w.f_Hz;
        let om = 2.0 * std::f64::consts::PI / len_s;
        let a = DMatrix::from_fn(n, 2 + 2 * all.len(), |rr, c| match c {
            0 => 1.0,
            1 => t[rr] - w.t_mid,
            _ => {
                let m = all[(c - 2) / 2] as f64;
                if c.is_multiple_of(2) {
                    (om * m * t[rr]).cos()
                } else {
                    (om * m * t[rr]).sin()
                }
            }
        });
        if n <= 2 * a.ncols() {
            continue;
        }
        let Some(c) = ScaledSvd::new(a, 3.2e-7).and_then(|s| s.solve(&y)) else {
            continue;
        };
        for (j, &m) in all.iter().enumerate().skip(w.n_h) {
            let f_m = m as f64 / len_s;
            for v in [c[2 + 2 * j], c[3 + 2 * j]] {
                num += v * v - 2.0 * white / n as f64;
                den += 1.0 / (two_pi2 * f_m * f_m * len_s);
            }
        }
    }
    let walk = if den > 0.0 { (num / den).max(0.0) } else { 0.0 };
    for (w, white) in wins.iter_mut().zip(whites) {
        if !white.is_finite() {
            continue;
        }
        let len_s = f64::from(w.periods) / w.f_Hz;
        let rw: Vec<f64> = (1..=w.n_h)
            .map(|h| {
                let f = h as f64 * w.f_Hz;
                walk / (two_pi2 * f * f * len_s)
            })
            .collect();
        if let Some(wh) = whitening(&w.h_cov, white, &rw) {
            w.whiten = wh;
        }
    }
    walk
}

fn t_quantile(dof: usize) -> f64 {
    StudentsT::new(0.0, 1.0, dof.max(1) as f64).map_or(1.96, |t| t.inverse_cdf(0.975))
}

fn wald(theta: &DVector<f64>, cov: &DMatrix<f64>, idx: &[usize], dof: usize) -> (f64, f64) {
    let q = idx.len();
    let sub = DMatrix::from_fn(q, q, |i, j| cov[(idx[i], idx[j])]);
    let th = DVector::from_iterator(q, idx.iter().map(|&i| theta[i]));
    let Some(inv) = sub.try_inverse() else {
        return (f64::NAN, f64::NAN);
    };
    let f = (th.transpose() * inv * &th)[(0, 0)] / q as f64;
    let p = FisherSnedecor::new(q as f64, dof.max(1) as f64).map_or(f64::NAN, |d| 1.0 - d.cdf(f));
    (f, p)
}

/// Separate the deflection of `steps` into its mechanisms.
///
/// Needs ESM or CV windows that vary what tells the mechanisms apart (see
/// the module doc); when they do not, the fit is rank deficient and the
/// error says so.
pub fn separate_origins(
    steps: &[OriginStep],
    cell: OriginCell,
) -> Result<SignalOrigin, AnalysisError> {
    if !(cell.R_s_ohm.is_finite() && cell.R_s_ohm >= 0.0) {
        return Err(AnalysisError::Parameter {
            name: "R_s_ohm",
            value: cell.R_s_ohm,
            why: "must be finite and >= 0",
        });
    }
    crate::charge::check_capacitance(cell.C_dl_F)?;
    let series: Vec<StepSeries> = steps
        .iter()
        .map(|s| prepare_step(s, cell))
        .collect::<Result<_, _>>()?;
    let mut notes = Vec::new();
    let mut wins = Vec::new();
    let mut meta = Vec::new();
    for (k, (s, st)) in steps.iter().zip(&series).enumerate() {
        let n_h = match s.kind {
            OriginStepKind::Cv { .. } => CV_HARMONICS,
            OriginStepKind::EsmSweep { .. } => ESM_HARMONICS,
        };
        for w in &s.windows {
            match build_window(k, st, w, n_h, cell) {
                Ok(win) => {
                    wins.push(win);
                    meta.push((s.step, s.kind));
                }
                Err(why) => notes.push(format!("step {}: {why}; left out", s.step)),
            }
        }
    }
    let n_equations: usize = wins.iter().map(|w| 2 * w.n_h).sum();
    if wins.len() < 3 || n_equations < 4 * (N_LINEAR + 1) {
        return Err(AnalysisError::Insufficient(format!(
            "{} analysable windows ({} equations) for {} coefficients",
            wins.len(),
            n_equations,
            N_LINEAR + 1
        )));
    }
    // tau between two samples and where the slowest window's fundamental
    // lags by 45 degrees: a thermal lag beyond it would filter the heat
    // away everywhere, and the Joule coefficient would grow unbounded
    // with it (above 1/tau only J/tau is seen).
    let dt_min = wins
        .iter()
        .map(|w| median_dt(&series[w.step].t_s, &w.rows))
        .filter(|d| d.is_finite())
        .fold(f64::INFINITY, f64::min);
    let t_max = wins.iter().map(|w| 1.0 / w.f_Hz).fold(0.0f64, f64::max);
    let tau_range_s = [
        (2.0 * dt_min).max(1e-4),
        (t_max / (2.0 * std::f64::consts::PI)).max(4.0 * dt_min),
    ];
    let not_separable = || {
        AnalysisError::Degenerate(
            "the steps do not tell the mechanisms apart (the design is rank deficient): \
             vary the dc potential, the amplitude and the frequency or scan rate"
                .into(),
        )
    };
    // Pass 1 (unit variances), noise estimates, pass 2.
    let (tau1, fit1, _) = profile_tau(&series, &wins, tau_range_s).ok_or_else(not_separable)?;
    let walk_nm2_per_s = update_variances(&series, &mut wins, &fit1.theta, tau1, cell.C_dl_F);
    let (tau, fit, jc) = profile_tau(&series, &wins, tau_range_s).ok_or_else(not_separable)?;
    let theta_lin = fit.theta.clone();
    // The Joule term's derivative in ln tau, for the full covariance.
    let dlag = joule_dcoefs(&series, &wins, tau).ok_or_else(not_separable)?;
    let m = n_equations;
    // First the covariance with tau fixed: is Joule heating there at all?
    let (x6, _) = design(&wins, &jc, None, 0.0);
    let g6 = ScaledSvd::new(x6, RANK_TOLERANCE)
        .and_then(|s| s.inverse_gram())
        .ok_or_else(not_separable)?;
    let dof6 = m - N_LINEAR;
    let s2_6 = (fit.rss / dof6 as f64).max(1.0);
    let joule_t = theta_lin[JOULE] / (g6[(JOULE, JOULE)] * s2_6).sqrt();
    let t95_6 = t_quantile(dof6);
    let tau_identified = joule_t.abs() > t95_6;
    let (cov, dof, with_tau) = if tau_identified {
        let (x7, _) = design(&wins, &jc, Some(&dlag), theta_lin[JOULE]);
        match ScaledSvd::new(x7, RANK_TOLERANCE).and_then(|s| s.inverse_gram()) {
            Some(g7) => {
                let dof = m - N_LINEAR - 1;
                (g7 * (fit.rss / dof as f64).max(1.0), dof, true)
            }
            None => (g6 * s2_6, dof6, false),
        }
    } else {
        (g6 * s2_6, dof6, false)
    };
    let reduced_chi2 = fit.rss / dof as f64;
    if reduced_chi2 > 3.0 {
        notes.push(format!(
            "the model leaves {:.1} times the noise estimate over (reduced chi-square): \
             a mechanism outside the model, or disturbed windows; the uncertainties are scaled \
             up by it",
            reduced_chi2
        ));
    }
    let t95 = t_quantile(dof);
    let p = cov.nrows();
    let mut theta = DVector::zeros(p);
    for i in 0..N_LINEAR {
        theta[i] = theta_lin[i];
    }
    let se = |i: usize| cov[(i, i)].max(0.0).sqrt();
    // The tau grid of the profile intervals: the whole range, and finely
    // around the estimate when it is identified.
    let (l0, l1) = (tau_range_s[0].ln(), tau_range_s[1].ln());
    let mut tau_grid: Vec<f64> = (0..=60)
        .map(|i| (l0 + (l1 - l0) * f64::from(i) / 60.0).exp())
        .collect();
    if with_tau {
        let se_ln = se(N_LINEAR);
        tau_grid.extend((-40..=40).map(|i| tau * (f64::from(i) / 10.0 * se_ln).exp()));
    }
    tau_grid.push(tau);
    let s2 = (fit.rss / dof as f64).max(1.0);
    let profile = profile_intervals(&series, &wins, &tau_grid, fit.rss, t95 * t95 * s2);
    let est = |i: usize| {
        let mut e = Estimate::symmetric(theta[i], se(i), t95);
        let [lo, hi] = profile[i];
        if lo.is_finite() && hi.is_finite() {
            e.ci95 = [lo.min(e.value), hi.max(e.value)];
        }
        e
    };
    let mut mechanisms = Vec::new();
    for (mech, idx) in [
        (Mechanism::Vegard, vec![KAPPA]),
        (Mechanism::Electrostatic, vec![A2, A1]),
        (Mechanism::Electrostriction, vec![B2, B1]),
        (Mechanism::JouleHeating, vec![JOULE]),
    ] {
        let (f, pv) = wald(&theta, &cov, &idx, dof);
        mechanisms.push(MechanismTest {
            mechanism: mech,
            F: f,
            dof: idx.len() as u32,
            p_value: pv,
            significant: pv < 0.05,
        });
    }
    let significant = |m: Mechanism| mechanisms.iter().any(|t| t.mechanism == m && t.significant);
    // A zero crossing -a1 / (2 a2), by the delta method.
    let crossing = |i2: usize, i1: usize| -> Estimate {
        let (a2, a1) = (theta[i2], theta[i1]);
        let v = -a1 / (2.0 * a2);
        let (d2, d1) = (a1 / (2.0 * a2 * a2), -1.0 / (2.0 * a2));
        let var = d2 * d2 * cov[(i2, i2)] + d1 * d1 * cov[(i1, i1)] + 2.0 * d1 * d2 * cov[(i1, i2)];
        Estimate::symmetric(v, var.max(0.0).sqrt(), t95)
    };
    let joule_tau_s = (with_tau && significant(Mechanism::JouleHeating)).then(|| {
        let se_ln = se(N_LINEAR);
        Estimate {
            value: tau,
            se: tau * se_ln,
            ci95: [tau * (-t95 * se_ln).exp(), tau * (t95 * se_ln).exp()],
        }
    });
    if joule_tau_s.is_none() {
        notes.push(
            "no significant Joule-heating term: its time constant is not identifiable".into(),
        );
    }
    let coefficients = OriginCoefficients {
        kappa_nm_per_mC: est(KAPPA),
        electrostatic_nm_per_V2: est(A2),
        V_cpd_V: significant(Mechanism::Electrostatic)
            .then(|| crossing(A2, A1))
            .filter(|e| (theta[A2] / se(A2)).abs() > t95 && e.se.is_finite()),
        electrostriction_nm_per_V2: est(B2),
        E_zero_V: significant(Mechanism::Electrostriction)
            .then(|| crossing(B2, B1))
            .filter(|e| (theta[B2] / se(B2)).abs() > t95 && e.se.is_finite()),
        joule_nm_per_W: est(JOULE),
        joule_tau_s,
        electrostatic_linear_nm_per_V: est(A1),
        electrostriction_linear_nm_per_V: est(B1),
    };
    // Shares of each window's first harmonic.
    let windows: Vec<WindowShares> = wins
        .iter()
        .enumerate()
        .map(|(wi, w)| {
            let ph = |a: f64, b: f64| Complex64::new(a, -b);
            let comps = |th: &DVector<f64>| -> [Complex64; 4] {
                let xj = |c: usize| ph(w.x[c][0], w.x[c][1]);
                let dl = if with_tau { th[N_LINEAR] } else { 0.0 };
                let jj = ph(jc[wi][0] + dl * dlag[wi][0], jc[wi][1] + dl * dlag[wi][1]);
                [
                    xj(KAPPA) * th[KAPPA],
                    xj(A2) * th[A2] + xj(A1) * th[A1],
                    xj(B2) * th[B2] + xj(B1) * th[B1],
                    jj * th[JOULE],
                ]
            };
            let shares = |th: &DVector<f64>| -> [f64; 4] {
                let c = comps(th);
                let total: Complex64 = c.iter().sum();
                let n2 = total.norm_sqr();
                c.map(|ci| (ci * total.conj()).re / n2)
            };
            let base = shares(&theta);
            let mut grads = [[0.0; 4]; 8];
            for i in 0..p {
                let step = (se(i) * 1e-3).max(1e-12 * theta[i].abs()).max(1e-300);
                let mut tp = theta.clone();
                tp[i] += step;
                let mut tm = theta.clone();
                tm[i] -= step;
                let (sp, sm) = (shares(&tp), shares(&tm));
                for k in 0..4 {
                    grads[i][k] = (sp[k] - sm[k]) / (2.0 * step);
                }
            }
            let share = |k: usize| {
                let mut var = 0.0;
                for i in 0..p {
                    for j in 0..p {
                        var += grads[i][k] * grads[j][k] * cov[(i, j)];
                    }
                }
                Share {
                    value: base[k],
                    se: var.max(0.0).sqrt(),
                }
            };
            let fitted: Complex64 = comps(&theta).iter().sum();
            WindowShares {
                step: meta[wi].0,
                kind: meta[wi].1,
                f_Hz: w.f_Hz,
                measured_amp_nm: ph(w.u[0], w.u[1]).norm(),
                fitted_amp_nm: fitted.norm(),
                vegard: share(0),
                electrostatic: share(1),
                electrostriction: share(2),
                joule_heating: share(3),
            }
        })
        .collect();
    let (verdict, verdict_text) = verdict(&mechanisms, &windows);
    Ok(SignalOrigin {
        coefficients,
        mechanisms,
        windows,
        verdict,
        verdict_text,
        n_equations,
        dof,
        reduced_chi2,
        drift_walk_nm_per_sqrt_min: (walk_nm2_per_s * 60.0).sqrt(),
        R_s_ohm: cell.R_s_ohm,
        C_dl_F: cell.C_dl_F,
        notes,
    })
}

fn fmt_f(f_Hz: f64) -> String {
    if f_Hz >= 1.0 {
        format!("{} Hz", vegard_core::format::sig(f_Hz, 3))
    } else {
        format!("{} mHz", vegard_core::format::sig(f_Hz * 1e3, 3))
    }
}

fn pct(s: Share) -> String {
    let dec = if s.se < 0.001 { 1 } else { 0 };
    format!(
        "{:.*} ± {:.*} %",
        dec,
        s.value * 100.0,
        dec,
        (s.se * 100.0).max(if dec == 1 { 0.1 } else { 1.0 })
    )
}

/// The verdict in one word and in a sentence: what the signal is where
/// Vegard strain is clearest, and where another mechanism dominates.
fn verdict(mechanisms: &[MechanismTest], windows: &[WindowShares]) -> (VerdictKind, String) {
    let sig = |m: Mechanism| mechanisms.iter().any(|t| t.mechanism == m && t.significant);
    let others: Vec<&MechanismTest> = mechanisms
        .iter()
        .filter(|t| t.mechanism != Mechanism::Vegard)
        .collect();
    let p_list = others
        .iter()
        .map(|t| {
            format!(
                "{} p = {}",
                t.mechanism.words(),
                vegard_core::format::sig(t.p_value, 2)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    // The reference series: the ESM step with the largest mean deflection
    // (where the film's signal is largest, near E0), else the CVs.
    let mut by_step: Vec<(i64, f64, usize)> = Vec::new();
    for w in windows {
        if matches!(w.kind, OriginStepKind::EsmSweep { .. }) {
            match by_step.iter_mut().find(|(s, _, _)| *s == w.step) {
                Some((_, a, n)) => {
                    *a += w.measured_amp_nm;
                    *n += 1;
                }
                None => by_step.push((w.step, w.measured_amp_nm, 1)),
            }
        }
    }
    let ref_step = by_step
        .iter()
        .max_by(|a, b| (a.1 / a.2 as f64).total_cmp(&(b.1 / b.2 as f64)))
        .map(|(s, _, _)| *s);
    let mut series: Vec<&WindowShares> = windows
        .iter()
        .filter(|w| ref_step.is_none_or(|s| w.step == s))
        .collect();
    series.sort_by(|a, b| a.f_Hz.total_cmp(&b.f_Hz));
    let label = series.first().map_or(String::new(), |w| match w.kind {
        OriginStepKind::EsmSweep { dc_V, amplitude_V } => format!(
            " (ESM at {} V dc, {} mV)",
            vegard_core::format::sig(dc_V, 3),
            vegard_core::format::sig(amplitude_V * 1e3, 3)
        ),
        OriginStepKind::Cv { .. } => " (CV cycles)".into(),
    });
    // Where Vegard strain is surely largest: the highest lower bound.
    let best = series.iter().max_by(|a, b| {
        (a.vegard.value - 2.0 * a.vegard.se).total_cmp(&(b.vegard.value - 2.0 * b.vegard.se))
    });
    if !sig(Mechanism::Vegard) {
        return (
            VerdictKind::NotVegard,
            format!("no Vegard strain resolved (kappa consistent with zero); {p_list}"),
        );
    }
    let Some(best) = best else {
        return (VerdictKind::Vegard, "Vegard strain".into());
    };
    let head = format!(
        "the signal is Vegard strain to {} at {}{label}",
        pct(best.vegard),
        fmt_f(best.f_Hz)
    );
    let sig_others: Vec<Mechanism> = others
        .iter()
        .filter(|t| t.significant)
        .map(|t| t.mechanism)
        .collect();
    if sig_others.is_empty() {
        return (
            VerdictKind::Vegard,
            format!("Vegard strain: no other mechanism is significant ({p_list}); {head}"),
        );
    }
    // Where another mechanism explains more than Vegard strain does.
    let mut parts = Vec::new();
    for m in &sig_others {
        let dom: Vec<f64> = series
            .iter()
            .filter(|w| {
                let s = w.share(*m).value;
                s > w.vegard.value
                    && Mechanism::ALL
                        .iter()
                        .all(|o| o == m || w.share(*o).value <= s)
            })
            .map(|w| w.f_Hz)
            .collect();
        if dom.is_empty() {
            continue;
        }
        let (lo, hi) = (
            series.first().map_or(0.0, |w| w.f_Hz),
            series.last().map_or(0.0, |w| w.f_Hz),
        );
        let n_dom = dom.len();
        let all_low = series.iter().take(n_dom).all(|w| dom.contains(&w.f_Hz));
        let all_high = series
            .iter()
            .rev()
            .take(n_dom)
            .all(|w| dom.contains(&w.f_Hz));
        let fmax = dom.iter().copied().fold(f64::MIN, f64::max);
        let fmin = dom.iter().copied().fold(f64::MAX, f64::min);
        let text = if n_dom == series.len() {
            format!("{} dominates at every frequency", m.words())
        } else if all_low && fmin <= lo {
            format!("at and below {} {} dominates", fmt_f(fmax), m.words())
        } else if all_high && fmax >= hi {
            format!("at and above {} {} dominates", fmt_f(fmin), m.words())
        } else {
            format!(
                "{} dominates at {}",
                m.words(),
                dom.iter().map(|f| fmt_f(*f)).collect::<Vec<_>>().join(", ")
            )
        };
        parts.push(text);
    }
    let also = sig_others
        .iter()
        .map(|m| m.words())
        .collect::<Vec<_>>()
        .join(", ");
    let tail = if parts.is_empty() {
        format!("; also significant, but never dominant: {also}")
    } else {
        format!("; {}", parts.join("; "))
    };
    (VerdictKind::Mixed, format!("{head}{tail}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn lag_matches_the_analytic_step_and_sine_responses() {
        // A unit step: 1 - exp(-t/tau) at the samples.
        let t: Vec<f64> = (0..2001).map(|k| k as f64 * 0.01).collect();
        let p: Vec<f64> = t.iter().map(|_| 1.0).collect();
        let y = lag(&t, &p, 0.5, 0.0);
        // y(0) = 0 with p(0) = 1: the filter starts from rest.
        for (tk, yk) in t.iter().zip(&y).skip(1) {
            assert!((yk - (1.0 - (-tk / 0.5).exp())).abs() < 1e-3, "{tk} {yk}");
        }
        // tau = 0 passes the input through.
        assert_eq!(lag(&t, &p, 0.0, 0.0)[5], 1.0);
    }

    #[test]
    fn trapezoid_gain_is_what_the_rule_does_to_a_sine() {
        let (w, dt) = (2.0 * std::f64::consts::PI, 0.025);
        let t: Vec<f64> = (0..4001).map(|k| k as f64 * dt).collect();
        let i: Vec<f64> = t.iter().map(|t| (w * t).cos()).collect();
        let q = crate::charge::cumulative_charge_C(&t, &i).unwrap();
        // Amplitude of the integrated sine over whole periods vs 1/w.
        let h = crate::harmonics(&t, &q, 1.0, 20.0, 40, 1).unwrap();
        let amp = h.fundamental().amplitude() * w;
        assert!((amp / trapezoid_gain(w * dt) - 1.0).abs() < 1e-6, "{amp}");
        assert!((trapezoid_gain(w * dt) - 0.99794).abs() < 1e-4);
    }

    /// The true coefficients of a synthetic bench.
    #[derive(Clone, Copy)]
    struct Truth {
        kappa: f64,
        gamma: f64,
        v_cpd: f64,
        c: f64,
        e_zero: f64,
        joule: f64,
        tau: f64,
    }

    const R_S: f64 = 10.0;
    const C_DL: f64 = 150e-6;

    /// An ESM-like step at one frequency: `E = E_dc + A cos(wt)`, the
    /// current of a Randles cell with a capacitive film (`R_ct` 11 ohm,
    /// `C_int` 0.44 F), the deflection of every mechanism in steady state
    /// (Joule heating's lag analytic), white noise and a drifting holder.
    fn esm_step(
        step: i64,
        dc: f64,
        amp: f64,
        f: f64,
        truth: Truth,
        rng: &mut rand::rngs::StdRng,
    ) -> OriginStep {
        use rand_distr::{Distribution, Normal};
        let w = 2.0 * std::f64::consts::PI * f;
        let j = Complex64::new(0.0, w);
        let z_f = Complex64::new(11.0, 0.0) + 1.0 / (j * 0.44);
        let z = R_S + 1.0 / (1.0 / z_f + j * C_DL);
        let i1 = Complex64::new(amp, 0.0) / z; // phasor of I
        let settle = 2.0 / f + 5.0 * truth.tau;
        let periods = 2u32;
        let dt = 1.0 / (40.0 * f);
        let n = ((settle + f64::from(periods) / f) / dt).round() as usize;
        let noise = Normal::new(0.0, 0.02).unwrap();
        let t0 = 1000.0 * step as f64;
        let mut walk = 0.0;
        let (mut t_s, mut e_v, mut i_a, mut u) = (vec![], vec![], vec![], vec![]);
        for k in 0..n {
            let t = t0 + k as f64 * dt;
            let ph = Complex64::from_polar(1.0, w * t);
            let e = dc + amp * (w * t).cos();
            let i = (i1 * ph).re;
            let e_int = e - i * R_S;
            // Q = integral I, exact; Q_F = Q - C_dl E_int (offsets cancel).
            let q = (i1 * ph / j).re;
            let q_f_mC = (q - C_DL * e_int) * 1e3;
            // I^2 R_s = |I1|^2 R_s / 2 (1 + cos(2wt + 2 arg I1)), lagged.
            let p0 = i1.norm_sqr() * R_S / 2.0;
            let p2 = i1 * i1 * R_S / 2.0 / Complex64::new(1.0, 2.0 * w * truth.tau);
            let heat = p0 + (p2 * ph * ph).re;
            walk += 0.05 / 60f64.sqrt() * dt.sqrt() * noise.sample(rng) / 0.02;
            let defl = truth.kappa * q_f_mC
                + truth.gamma * (e - truth.v_cpd).powi(2)
                + truth.c * (e_int - truth.e_zero).powi(2)
                + truth.joule * heat
                + 0.3 / 60.0 * (t - t0)
                + walk
                + noise.sample(rng);
            t_s.push(t);
            e_v.push(e + 50e-6 * noise.sample(rng) / 0.02);
            i_a.push(i + 50e-9 * noise.sample(rng) / 0.02);
            u.push(defl);
        }
        OriginStep {
            step,
            kind: OriginStepKind::EsmSweep {
                dc_V: dc,
                amplitude_V: amp,
            },
            t_s,
            E_V: e_v,
            I_A: i_a,
            deflection_nm: u,
            windows: vec![OriginWindow {
                f_Hz: f,
                t_start_s: t0 + settle,
                periods,
            }],
        }
    }

    fn bench(truth: Truth, seed: u64) -> Vec<OriginStep> {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut steps = Vec::new();
        let mut k = 0;
        for dc in [0.2, 0.4, 0.6] {
            for amp in [0.02, 0.06] {
                for f in [2.0, 0.5, 0.1, 0.02] {
                    steps.push(esm_step(k, dc, amp, f, truth, &mut rng));
                    k += 1;
                }
            }
        }
        steps
    }

    const ALL_ON: Truth = Truth {
        kappa: -0.205,
        gamma: -1.25,
        v_cpd: 0.1,
        c: 4.0,
        e_zero: 0.7,
        joule: 2e4,
        tau: 0.3,
    };

    /// Every coefficient of a bench with all mechanisms on comes back
    /// within its interval, each mechanism is significant, and the zero
    /// crossings and the time constant are identified.
    #[test]
    fn recovers_every_mechanism_of_a_synthetic_bench() {
        let cell = OriginCell {
            R_s_ohm: R_S,
            C_dl_F: C_DL,
        };
        let o = separate_origins(&bench(ALL_ON, 7), cell).unwrap();
        let c = &o.coefficients;
        let show = format!("{c:#?}\n{:#?}\n{}", o.mechanisms, o.verdict_text);
        assert!(c.kappa_nm_per_mC.covers(ALL_ON.kappa), "{show}");
        assert!(c.electrostatic_nm_per_V2.covers(ALL_ON.gamma), "{show}");
        assert!(c.electrostriction_nm_per_V2.covers(ALL_ON.c), "{show}");
        assert!(c.joule_nm_per_W.covers(ALL_ON.joule), "{show}");
        assert!(c.V_cpd_V.unwrap().covers(ALL_ON.v_cpd), "{show}");
        assert!(c.E_zero_V.unwrap().covers(ALL_ON.e_zero), "{show}");
        assert!(c.joule_tau_s.unwrap().covers(ALL_ON.tau), "{show}");
        assert!(o.mechanisms.iter().all(|m| m.significant), "{show}");
        assert_eq!(o.verdict, VerdictKind::Mixed, "{show}");
        assert!(o.reduced_chi2 < 2.0, "{show}");
        // Shares add up to one.
        for w in &o.windows {
            let sum: f64 = Mechanism::ALL.iter().map(|m| w.share(*m).value).sum();
            assert!((sum - 1.0).abs() < 1e-9);
        }
    }

    /// Pure Vegard strain: the verdict is "Vegard", nothing else is
    /// significant, and kappa is recovered.
    #[test]
    fn an_ideal_bench_is_vegard() {
        let truth = Truth {
            gamma: 0.0,
            c: 0.0,
            joule: 0.0,
            ..ALL_ON
        };
        let cell = OriginCell {
            R_s_ohm: R_S,
            C_dl_F: C_DL,
        };
        let o = separate_origins(&bench(truth, 11), cell).unwrap();
        let show = format!(
            "{:#?}\n{:#?}\n{}",
            o.coefficients, o.mechanisms, o.verdict_text
        );
        assert_eq!(o.verdict, VerdictKind::Vegard, "{show}");
        assert!(o.coefficients.kappa_nm_per_mC.covers(truth.kappa), "{show}");
        assert!(o.coefficients.V_cpd_V.is_none() && o.coefficients.joule_tau_s.is_none());
        assert!(
            o.verdict_text
                .starts_with("Vegard strain: no other mechanism is significant")
        );
    }

    /// The 95 % intervals cover the truth about 95 % of the time: over 200
    /// seeds of the all-on bench (with the holder's drift and random walk),
    /// each coefficient's coverage is at least 90 % (binomial: 95 % of 200
    /// is 190 +- 3.1; 180 is 3.2 sigma below). Measured over 300 seeds:
    /// 94.7, 95.0, 95.3, 95.0 and 96.3 % for kappa, gamma, c, J and tau.
    #[test]
    fn intervals_cover_the_truth_as_often_as_they_claim() {
        let cell = OriginCell {
            R_s_ohm: R_S,
            C_dl_F: C_DL,
        };
        let n = 200;
        let mut hits = [0usize; 5];
        for seed in 0..n {
            let o = separate_origins(&bench(ALL_ON, 1000 + seed), cell).unwrap();
            let c = &o.coefficients;
            for (k, ok) in [
                c.kappa_nm_per_mC.covers(ALL_ON.kappa),
                c.electrostatic_nm_per_V2.covers(ALL_ON.gamma),
                c.electrostriction_nm_per_V2.covers(ALL_ON.c),
                c.joule_nm_per_W.covers(ALL_ON.joule),
                c.joule_tau_s.is_some_and(|t| t.covers(ALL_ON.tau)),
            ]
            .into_iter()
            .enumerate()
            {
                hits[k] += usize::from(ok);
            }
        }
        eprintln!("coverage of kappa, gamma, c, J, tau over {n} seeds: {hits:?}");
        assert!(hits.iter().all(|&h| h >= 180), "{hits:?} of {n}");
    }
}
