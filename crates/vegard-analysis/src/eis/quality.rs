//! Whether a circuit fit means anything, and how good it is.
//!
//! A fit is **failed** when there is nothing to report (too few points,
//! all frequencies equal, no start converged) and **unidentifiable** when
//! the minimisation ran but the data do not pin the parameters down. The
//! checks, with their thresholds (each a [`FitProblem`]):
//!
//! - the Jacobian at the optimum is rank-deficient (a parameter has no
//!   effect, or a combination of parameters has none, e.g. `R0-R1`): the
//!   scaled `J^T J` has a zero (or negative, by rounding) eigenvalue;
//! - it is ill-conditioned: the condition number of `J^T J` scaled to unit
//!   diagonal exceeds [`MAX_CONDITION`] = 1e12 (beyond that the standard
//!   errors have fewer than ~4 significant digits left of double precision
//!   and a tiny change of the data moves the parameters along a valley);
//! - a standard error is not finite, or more than [`MAX_RELATIVE_SE`] = 10
//!   times the parameter's value (the data do not even fix its order of
//!   magnitude);
//! - a parameter sits at a bound of its transform: a CPE exponent within
//!   [`ALPHA_BOUND_TOL`] = 1e-4 of 0 or 1 (the logistic transform's edge:
//!   alpha -> 1 means the CPE is an ideal capacitor, fit a C), or a
//!   positive parameter driven 1e6 times past what the data can see
//!   ([`PositiveScale`]: R or Z0 below 1e-6 min|Z| or above 1e6 max|Z|,
//!   C or Q whose impedance is below 1e-6 min|Z| at the lowest frequency
//!   or above 1e6 max|Z| at the highest, a finite Warburg tau outside
//!   `[1e-2/w_max, 10/w_min]` (above it the diffusion knee is below the
//!   window and tau is not determined: see `fit::taus_inside_window`).
//!
//! Quality figures (for the weighting used, over the `n = 2N` real
//! residuals of `N` complex points and `k` parameters):
//! `chi2_weighted = SSR = sum r_i^2` of the weighted residuals;
//! `rmse_weighted = sqrt(SSR / N)` (the same per-point definition as the
//! unweighted `rmse`, so for modulus weighting it is a relative error of
//! |Z|); `chi2_reduced = SSR / (n - k)`;
//! `AIC = n ln(SSR/n) + 2k`, `BIC = n ln(SSR/n) + k ln n` (Gaussian
//! likelihood with unknown common variance; constants dropped, so only
//! differences between fits of the SAME data and weighting mean anything).

use nalgebra::DMatrix;
use serde::{Serialize, Serializer};

use super::circuit::{Circuit, ElementKind};

/// Condition number of the unit-diagonal-scaled `J^T J` above which a fit
/// is unidentifiable.
pub const MAX_CONDITION: f64 = 1e12;
/// Standard error over |value| above which a parameter is unidentified.
pub const MAX_RELATIVE_SE: f64 = 10.0;
/// A CPE exponent closer than this to 0 or 1 sits at its bound.
pub const ALPHA_BOUND_TOL: f64 = 1e-4;

/// Why a fit failed or is unidentifiable. Serialised as its sentence.
#[derive(Debug, Clone, PartialEq)]
pub enum FitProblem {
    /// `2 N_distinct <= p`: fewer real numbers than parameters plus one.
    TooFewPoints {
        n_points: usize,
        n_distinct_frequencies: usize,
        n_params: usize,
    },
    /// Every point at one frequency: no spectrum.
    AllFrequenciesEqual {
        f_Hz: f64,
    },
    /// No start converged to a finite optimum.
    NoConvergence(String),
    /// `J^T J` singular; the parameters involved in its null direction.
    RankDeficient {
        params: Vec<String>,
    },
    IllConditioned {
        condition: f64,
    },
    NonFiniteStderr {
        param: String,
    },
    LargeRelativeStderr {
        param: String,
        ratio: f64,
    },
    AtBound {
        param: String,
        value: f64,
        bound: &'static str,
    },
}

impl std::fmt::Display for FitProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FitProblem::TooFewPoints {
                n_points,
                n_distinct_frequencies,
                n_params,
            } => write!(
                f,
                "too few points: {n_points} points at {n_distinct_frequencies} distinct \
                 frequencies give {} real numbers for {n_params} parameters (need more than \
                 the parameters)",
                2 * n_distinct_frequencies
            ),
            FitProblem::AllFrequenciesEqual { f_Hz } => {
                write!(f, "all points are at the same frequency ({f_Hz} Hz)")
            }
            FitProblem::NoConvergence(why) => write!(f, "no start converged: {why}"),
            FitProblem::RankDeficient { params } => write!(
                f,
                "Jacobian is rank-deficient: the data determine only a combination of {}",
                params.join(", ")
            ),
            FitProblem::IllConditioned { condition } => write!(
                f,
                "Jacobian is ill-conditioned: condition number of the scaled J^T J is \
                 {condition:.2e} (limit {MAX_CONDITION:.0e})"
            ),
            FitProblem::NonFiniteStderr { param } => {
                write!(f, "standard error of {param} is not finite")
            }
            FitProblem::LargeRelativeStderr { param, ratio } => write!(
                f,
                "standard error of {param} is {ratio:.3e} times its value (limit \
                 {MAX_RELATIVE_SE})"
            ),
            FitProblem::AtBound {
                param,
                value,
                bound,
            } => write!(f, "{param} = {value:.4e} sits at a bound: {bound}"),
        }
    }
}

impl Serialize for FitProblem {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The verdict on a fit. JSON: `{"kind": "ok"}`,
/// `{"kind": "unidentifiable", "reasons": ["..."]}` or
/// `{"kind": "failed", "reason": "..."}`.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FitStatus {
    #[default]
    Ok,
    Unidentifiable {
        reasons: Vec<FitProblem>,
    },
    Failed {
        reason: FitProblem,
    },
}

impl FitStatus {
    pub fn is_ok(&self) -> bool {
        matches!(self, FitStatus::Ok)
    }

    /// The reasons in words, `; `-separated (empty for Ok).
    pub fn reasons_text(&self) -> String {
        match self {
            FitStatus::Ok => String::new(),
            FitStatus::Unidentifiable { reasons } => reasons
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
            FitStatus::Failed { reason } => reason.to_string(),
        }
    }

    /// `ok`, `unidentifiable` or `failed`.
    pub fn name(&self) -> &'static str {
        match self {
            FitStatus::Ok => "ok",
            FitStatus::Unidentifiable { .. } => "unidentifiable",
            FitStatus::Failed { .. } => "failed",
        }
    }
}

/// Problems that make a fit impossible before it starts: too few points
/// or all frequencies equal (both counted on distinct frequencies, since a
/// repeated frequency adds no information about the shape).
pub(crate) fn precheck(f_Hz: &[f64], n_params: usize) -> Option<FitProblem> {
    let mut distinct: Vec<f64> = f_Hz.to_vec();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    if distinct.len() == 1 && f_Hz.len() > 1 {
        return Some(FitProblem::AllFrequenciesEqual { f_Hz: distinct[0] });
    }
    if 2 * distinct.len() <= n_params {
        return Some(FitProblem::TooFewPoints {
            n_points: f_Hz.len(),
            n_distinct_frequencies: distinct.len(),
            n_params,
        });
    }
    None
}

/// Covariance and identifiability at the optimum from the Jacobian of the
/// weighted residuals in the ORIGINAL parameters.
pub(crate) struct Curvature {
    /// `s2 (J^T J)^-1`; NaN entries when singular.
    pub cov: Vec<Vec<f64>>,
    /// Condition number of the unit-diagonal-scaled `J^T J` (inf when
    /// singular).
    pub condition: f64,
    /// Parameters in the null direction when singular, else empty.
    pub null_params: Vec<usize>,
}

/// `s2` is `SSR / (2N - p)`. `J^T J` is scaled to unit diagonal before the
/// eigen-decomposition and the inverse (parameters span ~1e-9 F to ~1e4
/// ohm, and the unscaled matrix would lose digits).
pub(crate) fn curvature(j: &DMatrix<f64>, s2: f64) -> Curvature {
    let np = j.ncols();
    let nan = || vec![vec![f64::NAN; np]; np];
    let a = j.transpose() * j;
    let d: Vec<f64> = (0..np).map(|k| a[(k, k)].sqrt()).collect();
    let zero_cols: Vec<usize> = (0..np)
        .filter(|&k| !(d[k] > 0.0 && d[k].is_finite()))
        .collect();
    if !zero_cols.is_empty() {
        return Curvature {
            cov: nan(),
            condition: f64::INFINITY,
            null_params: zero_cols,
        };
    }
    let b = DMatrix::from_fn(np, np, |r, c| a[(r, c)] / (d[r] * d[c]));
    let eig = b.clone().symmetric_eigen();
    let (mut i_min, mut i_max) = (0, 0);
    for k in 0..np {
        if eig.eigenvalues[k] < eig.eigenvalues[i_min] {
            i_min = k;
        }
        if eig.eigenvalues[k] > eig.eigenvalues[i_max] {
            i_max = k;
        }
    }
    let (l_min, l_max) = (eig.eigenvalues[i_min], eig.eigenvalues[i_max]);
    // Below ~n eps relative the smallest eigenvalue is rounding noise:
    // the matrix is singular to working precision.
    let singular = l_min.is_nan() || l_min <= l_max * 1e-15 * np as f64;
    let condition = if singular {
        f64::INFINITY
    } else {
        l_max / l_min
    };
    let null_params = if singular {
        let v = eig.eigenvectors.column(i_min);
        (0..np).filter(|&k| v[k].abs() > 0.1).collect()
    } else {
        Vec::new()
    };
    let cov = match (!singular).then(|| b.cholesky()).flatten() {
        Some(ch) => {
            let inv = ch.inverse();
            (0..np)
                .map(|r| (0..np).map(|c| s2 * inv[(r, c)] / (d[r] * d[c])).collect())
                .collect()
        }
        None => nan(),
    };
    Curvature {
        cov,
        condition,
        null_params,
    }
}

/// Data scales for the at-bound test.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PositiveScale {
    pub z_min_ohm: f64,
    pub z_max_ohm: f64,
    pub w_lo: f64,
    pub w_hi: f64,
}

impl PositiveScale {
    pub(crate) fn of(f_Hz: &[f64], Z: &[(f64, f64)]) -> PositiveScale {
        let mods = Z.iter().map(|z| z.0.hypot(z.1));
        let (z_min_ohm, z_max_ohm) = mods.fold((f64::INFINITY, 0.0_f64), |(lo, hi), m| {
            (lo.min(m), hi.max(m))
        });
        let (w_lo, w_hi) = f_Hz.iter().fold((f64::INFINITY, 0.0_f64), |(lo, hi), &f| {
            let w = std::f64::consts::TAU * f;
            (lo.min(w), hi.max(w))
        });
        PositiveScale {
            z_min_ohm: z_min_ohm.max(f64::MIN_POSITIVE),
            z_max_ohm,
            w_lo,
            w_hi,
        }
    }
}

/// Every [`FitProblem`] of a finished fit (empty: identifiable).
pub(crate) fn assess(
    circuit: &Circuit,
    p: &[f64],
    stderr: &[f64],
    curv: &Curvature,
    sc: PositiveScale,
) -> Vec<FitProblem> {
    let names = circuit.param_names();
    let mut out = Vec::new();
    if !curv.null_params.is_empty() {
        out.push(FitProblem::RankDeficient {
            params: curv.null_params.iter().map(|&k| names[k].clone()).collect(),
        });
    } else if curv.condition > MAX_CONDITION {
        out.push(FitProblem::IllConditioned {
            condition: curv.condition,
        });
    }
    for ((name, &v), &se) in names.iter().zip(p).zip(stderr) {
        if !se.is_finite() {
            // Already said by RankDeficient when singular.
            if curv.null_params.is_empty() {
                out.push(FitProblem::NonFiniteStderr {
                    param: name.clone(),
                });
            }
        } else if se > MAX_RELATIVE_SE * v.abs() {
            out.push(FitProblem::LargeRelativeStderr {
                param: name.clone(),
                ratio: se / v.abs(),
            });
        }
    }
    let (lo, hi) = (1e-6, 1e6);
    for e in circuit.elements() {
        let k = e.first_param;
        let mut flag = |idx: usize, bound: &'static str| {
            out.push(FitProblem::AtBound {
                param: names[idx].clone(),
                value: p[idx],
                bound,
            })
        };
        match e.kind {
            ElementKind::R => {
                if p[k] < lo * sc.z_min_ohm {
                    flag(k, "R -> 0 (below 1e-6 of the smallest |Z|)");
                } else if p[k] > hi * sc.z_max_ohm {
                    flag(k, "R -> infinity (above 1e6 times the largest |Z|)");
                }
            }
            ElementKind::C | ElementKind::Cpe => {
                let alpha = if e.kind == ElementKind::Cpe {
                    p[k + 1]
                } else {
                    1.0
                };
                // |Z| of the element at the window's ends.
                let z_at = |w: f64| 1.0 / (p[k] * w.powf(alpha));
                if z_at(sc.w_lo) < lo * sc.z_min_ohm {
                    flag(
                        k,
                        "capacitance -> infinity (a short at every measured frequency)",
                    );
                } else if z_at(sc.w_hi) > hi * sc.z_max_ohm {
                    flag(k, "capacitance -> 0 (an open at every measured frequency)");
                }
                if e.kind == ElementKind::Cpe {
                    if alpha > 1.0 - ALPHA_BOUND_TOL {
                        flag(
                            k + 1,
                            "CPE exponent -> 1 (an ideal capacitor: fit a C instead)",
                        );
                    } else if alpha < ALPHA_BOUND_TOL {
                        flag(k + 1, "CPE exponent -> 0 (a resistor)");
                    }
                }
            }
            ElementKind::W => {
                let z = p[k] / sc.w_hi.sqrt();
                if p[k] / sc.w_lo.sqrt() < lo * sc.z_min_ohm {
                    flag(k, "Warburg coefficient -> 0");
                } else if z > hi * sc.z_max_ohm {
                    flag(k, "Warburg coefficient -> infinity");
                }
            }
            ElementKind::Wo | ElementKind::Ws => {
                if p[k] < lo * sc.z_min_ohm {
                    flag(k, "Z0 -> 0");
                } else if p[k] > hi * sc.z_max_ohm {
                    flag(k, "Z0 -> infinity");
                }
                let tau = p[k + 1];
                if tau < 1e-2 / sc.w_hi {
                    flag(
                        k + 1,
                        "tau below 1e-2/w_max: the diffusion knee is above the measured window",
                    );
                } else if tau > super::fit::TAU_MAX_X / sc.w_lo {
                    flag(
                        k + 1,
                        "tau above 10/w_min: the diffusion knee is below the measured window",
                    );
                }
            }
            ElementKind::L => {}
        }
    }
    out
}

/// Fit-quality figures; see the module documentation for the formulas.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quality {
    pub chi2_weighted: f64,
    pub rmse_weighted: f64,
    pub chi2_reduced: f64,
    pub dof: usize,
    pub aic: f64,
    pub bic: f64,
}

pub(crate) fn quality(ssr: f64, n_points: usize, n_params: usize) -> Quality {
    let n = (2 * n_points) as f64;
    let k = n_params as f64;
    let dof = (2 * n_points).saturating_sub(n_params);
    let ln_term = n * (ssr / n).ln();
    Quality {
        chi2_weighted: ssr,
        rmse_weighted: (ssr / n_points as f64).sqrt(),
        chi2_reduced: if dof > 0 { ssr / dof as f64 } else { f64::NAN },
        dof,
        aic: ln_term + 2.0 * k,
        bic: ln_term + k * n.ln(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn information_criteria_follow_their_formulas() {
        // 10 points -> 20 residuals, 3 parameters, SSR 0.2.
        let q = quality(0.2, 10, 3);
        let base = 20.0 * (0.01_f64).ln();
        assert!((q.aic - (base + 6.0)).abs() < 1e-12);
        assert!((q.bic - (base + 3.0 * 20f64.ln())).abs() < 1e-12);
        assert!((q.rmse_weighted - (0.02_f64).sqrt()).abs() < 1e-15);
        assert_eq!(q.dof, 17);
        assert!((q.chi2_reduced - 0.2 / 17.0).abs() < 1e-15);
    }

    #[test]
    fn prechecks() {
        assert!(matches!(
            precheck(&[10.0; 8], 3),
            Some(FitProblem::AllFrequenciesEqual { .. })
        ));
        assert!(precheck(&[1.0, 2.0, 3.0, 4.0], 5).is_none());
        assert!(matches!(
            precheck(&[1.0, 2.0], 5),
            Some(FitProblem::TooFewPoints { .. })
        ));
        // Duplicates do not count: 2 distinct frequencies, 5 parameters.
        assert!(matches!(
            precheck(&[1.0, 2.0, 1.0, 2.0], 5),
            Some(FitProblem::TooFewPoints { .. })
        ));
    }

    #[test]
    fn identical_columns_are_rank_deficient() {
        let j = DMatrix::from_row_slice(3, 2, &[1.0, 1.0, 2.0, 2.0, 3.0, 3.0]);
        let c = curvature(&j, 1.0);
        assert_eq!(c.null_params, [0, 1]);
        assert!(c.cov[0][0].is_nan());
        let j = DMatrix::from_row_slice(3, 2, &[1.0, 0.0, 0.0, 2.0, 1.0, 1.0]);
        let c = curvature(&j, 1.0);
        assert!(c.null_params.is_empty() && c.condition < 10.0);
        // (J^T J)^-1 = [[2,1],[1,5]]^-1 = [[5,-1],[-1,2]]/9.
        assert!((c.cov[0][0] - 5.0 / 9.0).abs() < 1e-14);
        assert!((c.cov[0][1] + 1.0 / 9.0).abs() < 1e-14);
    }
}
