//! EIS temperature series: one circuit fitted to the spectra of several
//! temperatures, with stable labels and chained starts, and the Arrhenius
//! lines of its resistances, time constants and conductivities.
//!
//! - The spectra are fitted in order of temperature; each fit also starts
//!   from the previous temperature's result (`previous fit (T K)`), beside
//!   the automatic guess and the global stage. Canonical labels (module
//!   `structure`) keep arc 1 the highest-frequency arc at every
//!   temperature, so `R1` is the same physical resistance along the series.
//! - Only fits with status Ok enter the Arrhenius lines; the others are
//!   listed in `excluded` with their reason.
//! - Lines (`y` vs `1/T`, `Ea = -k_B dy/d(1/T)`): `ln(1/R)` for every
//!   resistance of the circuit; `ln(1/tau)` for every R||C / R||CPE arc;
//!   `ln(1/R_total)` with `R_total` the sum of the ARC resistances (bulk +
//!   grain boundary: series resistances and electrode/blocking elements
//!   outside the arcs are excluded, the usual convention for a solid
//!   electrolyte's total conductivity); and, when the sample's thickness L
//!   and area A are given, `ln(sigma T)` with `sigma = L / (R A)` in S/cm
//!   for every arc and for the total (the form of `sigma T = A0
//!   exp(-Ea/k_B T)` for ionic hopping).
//! - The straight line is weighted least squares with weights
//!   `1/se(y)^2`, `se(y)` propagated from each fit's covariance
//!   (`se(ln R) = se(R)/R`; `ln tau = (ln R + ln Q)/alpha` through the full
//!   covariance; `R_total` through the covariance of its terms). The
//!   standard error of the slope is the propagated one, multiplied by the
//!   Birge ratio `sqrt(chi2_red)` only when `chi2_red > 1` (scatter larger
//!   than the per-point errors say), never scaled below the propagated
//!   error; the 95 % interval is Student t with `n - 2` degrees of freedom
//!   (none for two temperatures).

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};
use vegard_core::constants::{BOLTZMANN_EV_PER_K, FARADAY_C_PER_MOL};

use super::circuit::{Circuit, ElementKind};
use super::fit::{EisFit, FitOptions, fit_circuit_with};
use super::structure::simple_arcs;
use crate::AnalysisError;

/// kJ/mol per eV (per particle): `e N_A / 1000 = F / 1000`.
const KJ_PER_MOL_PER_EV: f64 = FARADAY_C_PER_MOL / 1000.0;

/// One spectrum of a series.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSpectrum {
    /// Where it came from (a file name), for tables and messages.
    pub label: String,
    pub T_K: f64,
    pub f_Hz: Vec<f64>,
    pub Z: Vec<(f64, f64)>,
}

/// One fitted temperature.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesPoint {
    pub label: String,
    pub T_K: f64,
    pub fit: EisFit,
}

/// A fitted series, in order of increasing temperature.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EisSeries {
    pub circuit: String,
    pub points: Vec<SeriesPoint>,
}

/// Fit `circuit` to every spectrum, coldest first, each fit also starting
/// from the previous one's result (the module documentation).
/// `opts.extra_starts` are kept and the chained start is added after them.
pub fn fit_series(
    circuit: &Circuit,
    spectra: &[SeriesSpectrum],
    opts: &FitOptions,
) -> Result<EisSeries, AnalysisError> {
    for s in spectra {
        if !(s.T_K.is_finite() && s.T_K > 0.0) {
            return Err(AnalysisError::Parameter {
                name: "T_K",
                value: s.T_K,
                why: "a temperature must be finite and > 0 K",
            });
        }
    }
    let mut order: Vec<usize> = (0..spectra.len()).collect();
    order.sort_by(|&a, &b| spectra[a].T_K.total_cmp(&spectra[b].T_K));
    let mut points: Vec<SeriesPoint> = Vec::with_capacity(spectra.len());
    for i in order {
        let s = &spectra[i];
        let mut o = opts.clone();
        if let Some(prev) = points.last() {
            let v = prev.fit.values();
            if v.iter().all(|x| x.is_finite()) {
                o.extra_starts
                    .push((format!("previous fit ({:.2} K)", prev.T_K), v));
            }
        }
        let fit = fit_circuit_with(circuit, &s.f_Hz, &s.Z, &o).map_err(|e| match e {
            AnalysisError::Degenerate(m) => AnalysisError::Degenerate(format!("{}: {m}", s.label)),
            AnalysisError::Insufficient(m) => {
                AnalysisError::Insufficient(format!("{}: {m}", s.label))
            }
            other => other,
        })?;
        points.push(SeriesPoint {
            label: s.label.clone(),
            T_K: s.T_K,
            fit,
        });
    }
    Ok(EisSeries {
        circuit: circuit.as_str().to_string(),
        points,
    })
}

/// Sample geometry for conductivities.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Geometry {
    pub thickness_cm: f64,
    pub area_cm2: f64,
}

/// A weighted straight line `y = a + b / T` and the activation energy
/// `Ea = -k_B b`; see the module documentation for the error rules.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArrheniusLine {
    /// What was fitted: `R1`, `tau p(R1,CPE1)`, `R_total`,
    /// `sigma p(R1,CPE1)`, `sigma_total`.
    pub quantity: String,
    /// The ordinate: `ln(1/R)` (R in ohm), `ln(1/tau)` (tau in s) or
    /// `ln(sigma T)` (sigma in S/cm, T in K).
    pub y: &'static str,
    pub n_points: usize,
    pub dof: usize,
    pub ea_eV: f64,
    /// The reported standard error: `ea_se_propagated_eV` times
    /// `max(1, birge_ratio)`.
    pub ea_se_eV: f64,
    /// From the per-point errors alone.
    pub ea_se_propagated_eV: f64,
    /// `sqrt(chi2_reduced)`; None for two points.
    pub birge_ratio: Option<f64>,
    pub chi2_reduced: Option<f64>,
    /// Student t, `dof` degrees of freedom; None for two points.
    pub ea_ci95_eV: Option<[f64; 2]>,
    pub ea_kJ_per_mol: f64,
    pub ea_se_kJ_per_mol: f64,
    pub ea_ci95_kJ_per_mol: Option<[f64; 2]>,
    /// `y` at `1/T = 0` and its standard error (same scaling).
    pub intercept: f64,
    pub intercept_se: f64,
    /// The points: `1/T` in 1/K, `y`, `se(y)`.
    pub inv_T_per_K: Vec<f64>,
    pub y_values: Vec<f64>,
    pub y_se: Vec<f64>,
}

/// Weighted straight-line fit of `y` against `1/T`.
pub fn fit_arrhenius_line(
    quantity: &str,
    y_name: &'static str,
    T_K: &[f64],
    y: &[f64],
    y_se: &[f64],
) -> Result<ArrheniusLine, AnalysisError> {
    let n = T_K.len();
    if y.len() != n || y_se.len() != n {
        return Err(AnalysisError::Length {
            name: "y",
            reference: "T_K",
            expected: n,
            got: y.len().min(y_se.len()),
        });
    }
    if n < 2 {
        return Err(AnalysisError::Insufficient(format!(
            "{quantity}: {n} usable temperature(s); a line needs 2"
        )));
    }
    for i in 0..n {
        if !(T_K[i] > 0.0 && y[i].is_finite() && y_se[i].is_finite() && y_se[i] > 0.0) {
            return Err(AnalysisError::Degenerate(format!(
                "{quantity}: point at {} K has y = {}, se = {} (need finite y and se > 0)",
                T_K[i], y[i], y_se[i]
            )));
        }
    }
    let x: Vec<f64> = T_K.iter().map(|t| 1.0 / t).collect();
    let w: Vec<f64> = y_se.iter().map(|s| 1.0 / (s * s)).collect();
    let sw: f64 = w.iter().sum();
    let xm = w.iter().zip(&x).map(|(w, x)| w * x).sum::<f64>() / sw;
    let ym = w.iter().zip(y).map(|(w, y)| w * y).sum::<f64>() / sw;
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for i in 0..n {
        sxx += w[i] * (x[i] - xm) * (x[i] - xm);
        sxy += w[i] * (x[i] - xm) * (y[i] - ym);
    }
    if sxx.is_nan() || sxx <= 1e-20 * sw * xm * xm {
        return Err(AnalysisError::Degenerate(format!(
            "{quantity}: all temperatures are equal: no slope"
        )));
    }
    let b = sxy / sxx;
    let a = ym - b * xm;
    let chi2: f64 = (0..n).map(|i| w[i] * (y[i] - a - b * x[i]).powi(2)).sum();
    let dof = n - 2;
    let chi2_reduced = (dof > 0).then(|| chi2 / dof as f64);
    let birge_ratio = chi2_reduced.map(f64::sqrt);
    // Never below the propagated error.
    let scale = birge_ratio.unwrap_or(1.0).max(1.0);
    let b_se_prop = (1.0 / sxx).sqrt();
    let ea_eV = -BOLTZMANN_EV_PER_K * b;
    let ea_se_propagated_eV = BOLTZMANN_EV_PER_K * b_se_prop;
    let ea_se_eV = ea_se_propagated_eV * scale;
    let t975 = if dof > 0 {
        let t = StudentsT::new(0.0, 1.0, dof as f64)
            .map_err(|e| AnalysisError::Degenerate(format!("Student t: {e}")))?;
        Some(t.inverse_cdf(0.975))
    } else {
        None
    };
    let ea_ci95_eV = t975.map(|t| [ea_eV - t * ea_se_eV, ea_eV + t * ea_se_eV]);
    Ok(ArrheniusLine {
        quantity: quantity.to_string(),
        y: y_name,
        n_points: n,
        dof,
        ea_eV,
        ea_se_eV,
        ea_se_propagated_eV,
        birge_ratio,
        chi2_reduced,
        ea_ci95_eV,
        ea_kJ_per_mol: ea_eV * KJ_PER_MOL_PER_EV,
        ea_se_kJ_per_mol: ea_se_eV * KJ_PER_MOL_PER_EV,
        ea_ci95_kJ_per_mol: ea_ci95_eV
            .map(|[lo, hi]| [lo * KJ_PER_MOL_PER_EV, hi * KJ_PER_MOL_PER_EV]),
        intercept: a,
        intercept_se: scale * (1.0 / sw + xm * xm / sxx).sqrt(),
        inv_T_per_K: x,
        y_values: y.to_vec(),
        y_se: y_se.to_vec(),
    })
}

/// The Arrhenius analysis of a series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesArrhenius {
    /// The conventions, in words (what `R_total` sums, what sigma is).
    pub convention: String,
    /// Resistances summed into `R_total` (the arcs' R).
    pub total_includes: Vec<String>,
    pub geometry: Option<Geometry>,
    /// Temperatures left out (fit not Ok), with the reason.
    pub excluded: Vec<String>,
    pub lines: Vec<ArrheniusLine>,
    /// Lines that could not be fitted, with the reason.
    pub failed_lines: Vec<String>,
}

/// Arrhenius lines of every resistance, arc time constant and (with a
/// geometry) conductivity of a fitted series.
pub fn series_arrhenius(
    circuit: &Circuit,
    series: &EisSeries,
    geometry: Option<Geometry>,
) -> SeriesArrhenius {
    let names = circuit.param_names();
    let arcs = simple_arcs(circuit);
    let mut excluded = Vec::new();
    let ok: Vec<&SeriesPoint> = series
        .points
        .iter()
        .filter(|p| {
            let keep = p.fit.status.is_ok();
            if !keep {
                excluded.push(format!(
                    "{} ({:.2} K): {} fit: {}",
                    p.label,
                    p.T_K,
                    p.fit.status.name(),
                    p.fit.status.reasons_text()
                ));
            }
            keep
        })
        .collect();
    let T: Vec<f64> = ok.iter().map(|p| p.T_K).collect();
    let mut lines = Vec::new();
    let mut failed_lines = Vec::new();
    let mut push = |r: Result<ArrheniusLine, AnalysisError>| match r {
        Ok(l) => lines.push(l),
        Err(e) => failed_lines.push(e.to_string()),
    };
    // ln(1/R) and its se for a sum of resistances (indices).
    let ln_inv_sum = |fit: &EisFit, idx: &[usize]| -> (f64, f64) {
        let v = fit.values();
        let r: f64 = idx.iter().map(|&k| v[k]).sum();
        let var: f64 = if fit.covariance.len() == v.len() {
            idx.iter()
                .flat_map(|&i| idx.iter().map(move |&j| (i, j)))
                .map(|(i, j)| fit.covariance[i][j])
                .sum()
        } else {
            f64::NAN
        };
        (-r.ln(), var.sqrt() / r)
    };
    for e in circuit
        .elements()
        .iter()
        .filter(|e| e.kind == ElementKind::R)
    {
        let (y, se): (Vec<f64>, Vec<f64>) = ok
            .iter()
            .map(|p| ln_inv_sum(&p.fit, &[e.first_param]))
            .unzip();
        push(fit_arrhenius_line(
            &names[e.first_param],
            "ln(1/R)",
            &T,
            &y,
            &se,
        ));
    }
    for (k, (label, _)) in arcs.iter().enumerate() {
        let (y, se): (Vec<f64>, Vec<f64>) = ok
            .iter()
            .map(|p| match p.fit.arcs.get(k) {
                Some(a) => (-a.tau_s.ln(), a.tau_se_s / a.tau_s),
                None => (f64::NAN, f64::NAN),
            })
            .unzip();
        push(fit_arrhenius_line(
            &format!("tau {label}"),
            "ln(1/tau)",
            &T,
            &y,
            &se,
        ));
    }
    let arc_r: Vec<usize> = arcs.iter().map(|(_, a)| a.r).collect();
    if !arc_r.is_empty() {
        let (y, se): (Vec<f64>, Vec<f64>) = ok.iter().map(|p| ln_inv_sum(&p.fit, &arc_r)).unzip();
        push(fit_arrhenius_line("R_total", "ln(1/R)", &T, &y, &se));
    }
    if let Some(g) = geometry {
        // ln(sigma T) = ln(L/A) + ln(1/R) + ln T; se as ln(1/R).
        let ln_la = (g.thickness_cm / g.area_cm2).ln();
        let mut sigma_line = |quantity: String, idx: &[usize]| {
            let (y, se): (Vec<f64>, Vec<f64>) = ok
                .iter()
                .map(|p| {
                    let (y, se) = ln_inv_sum(&p.fit, idx);
                    (ln_la + y + p.T_K.ln(), se)
                })
                .unzip();
            push(fit_arrhenius_line(&quantity, "ln(sigma T)", &T, &y, &se));
        };
        for (label, a) in &arcs {
            sigma_line(format!("sigma {label}"), &[a.r]);
        }
        if arc_r.len() > 1 {
            sigma_line("sigma_total".to_string(), &arc_r);
        }
    }
    let total_includes: Vec<String> = arc_r.iter().map(|&k| names[k].clone()).collect();
    let convention = format!(
        "Ea = -k_B d y / d(1/T), weighted least squares with per-point SEs propagated from each \
         fit; SE scaled by the Birge ratio only when chi2_red > 1; 95 % CI Student t with n-2 dof. \
         R_total = {} (the R||C/R||CPE arc resistances: bulk + grain boundary; series \
         resistances and electrode elements outside the arcs excluded).{}",
        if total_includes.is_empty() {
            "none (no arcs)".to_string()
        } else {
            total_includes.join(" + ")
        },
        match geometry {
            Some(g) => format!(
                " sigma = L/(R A) in S/cm with L = {} cm, A = {} cm^2; fitted as ln(sigma T) \
                 (sigma T = A0 exp(-Ea/k_B T)).",
                g.thickness_cm, g.area_cm2
            ),
            None => String::new(),
        }
    );
    SeriesArrhenius {
        convention,
        total_includes,
        geometry,
        excluded,
        lines,
        failed_lines,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn line_recovers_slope_and_never_shrinks_the_propagated_error() {
        // Exact line, Ea = 0.5 eV: chi2 = 0, so the SE stays propagated.
        let T = [300.0, 320.0, 340.0, 360.0];
        let y: Vec<f64> = T
            .iter()
            .map(|t| 3.0 - 0.5 / (BOLTZMANN_EV_PER_K * t))
            .collect();
        let se = [0.01; 4];
        let l = fit_arrhenius_line("R", "ln(1/R)", &T, &y, &se).unwrap();
        assert!((l.ea_eV - 0.5).abs() < 1e-10, "{l:?}");
        assert!((l.intercept - 3.0).abs() < 1e-8);
        assert_eq!(l.ea_se_eV, l.ea_se_propagated_eV);
        // Propagated SE of the slope: se / sqrt(sum (x - mean)^2).
        let xm = T.iter().map(|t| 1.0 / t).sum::<f64>() / 4.0;
        let sxx: f64 = T.iter().map(|t| (1.0 / t - xm).powi(2)).sum();
        assert!((l.ea_se_propagated_eV - BOLTZMANN_EV_PER_K * 0.01 / sxx.sqrt()).abs() < 1e-15);
        // Scatter 10x the stated errors: scaled up by the Birge ratio.
        let y2: Vec<f64> = y
            .iter()
            .zip([0.1, -0.1, -0.1, 0.1])
            .map(|(a, b)| a + b)
            .collect();
        let l2 = fit_arrhenius_line("R", "ln(1/R)", &T, &y2, &se).unwrap();
        let birge = l2.birge_ratio.unwrap();
        assert!(birge > 1.0);
        assert!((l2.ea_se_eV / l2.ea_se_propagated_eV - birge).abs() < 1e-12);
        // t(0.975, 2 dof) = 4.302653.
        let [lo, hi] = l2.ea_ci95_eV.unwrap();
        assert!(((hi - lo) / (2.0 * l2.ea_se_eV) - 4.302653).abs() < 1e-5);
        assert!(
            fit_arrhenius_line("R", "ln(1/R)", &[300.0, 300.0], &[1.0, 2.0], &[0.1, 0.1]).is_err()
        );
    }
}
