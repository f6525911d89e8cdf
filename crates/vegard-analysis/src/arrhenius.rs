//! Arrhenius analysis of diffusion times (PHYSICS.md §5): the activation
//! energy of `D(T) = D0 exp(-Ea / (k_B T))` from `tau(T) = L^2 / D(T)`
//! measured at several temperatures, by EIS (`tau_EIS`) or ESM (`tau_ESM`).
//!
//! `ln(1/tau) = ln(1/tau0) - (Ea/k_B) (1/T)` is a straight line in `1/T`
//! and `L` cancels from its slope, so the film thickness need not be known
//! for `Ea`; it is needed only to turn the prefactor into `D0 = L^2/tau0`.
//!
//! Weighted least squares, weights `1/var(ln tau)` with
//! `se(ln tau) = se(tau)/tau`: the per-temperature fits do not have equal
//! relative errors (a fast film at 65 degC puts its knee at the edge of the
//! window). The per-point errors are the propagated ("internal") ones; when
//! the scatter about the line is larger than they say (reduced chi^2 > 1)
//! every standard error is multiplied by the Birge ratio sqrt(chi^2_red)
//! and the 95 % interval uses Student t with `n - 2` degrees of freedom.
//! When the scatter is smaller (chi^2_red <= 1) the propagated errors
//! stand: with 3-5 temperatures a small chi^2 is mostly luck (its own
//! relative spread is sqrt(2/dof)), and scaling down by it had made the
//! interval up to 2.8x narrower than the propagated one. Then the interval
//! uses the normal quantile 1.96 (the errors are taken as known). With two
//! temperatures there is no scatter to judge: the internal error is used
//! and no interval is given.
//!
//! `D0 = L^2 / tau0` carries the intercept's error only: the film
//! thickness `L` is treated as exact (on the virtual bench it is; a real
//! film's thickness error adds `2 se(L)/L` to `se(ln D0)`).

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};
use vegard_core::constants::{BOLTZMANN_EV_PER_K, FARADAY_C_PER_MOL};

use crate::AnalysisError;

/// 97.5 % quantile of the standard normal distribution.
const NORMAL_975: f64 = 1.959_963_984_540_054;

/// kJ/mol per eV (per particle): `e N_A / 1000 = F / 1000`.
const KJ_PER_MOL_PER_EV: f64 = FARADAY_C_PER_MOL / 1000.0;

/// Result of [`fit_arrhenius`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arrhenius {
    /// Temperatures used.
    pub n_points: usize,
    /// `n_points - 2`.
    pub dof: usize,
    /// Activation energy, eV.
    pub ea_eV: f64,
    /// Its standard error, eV: the internal one, times the Birge ratio
    /// sqrt(chi^2_red) when that is > 1 (never scaled down).
    pub ea_se_eV: f64,
    /// Standard error from the input errors alone, eV.
    pub ea_se_internal_eV: f64,
    /// 95 % confidence interval `[lo, hi]`, Student t with `dof` degrees of
    /// freedom; `None` for two temperatures.
    pub ea_ci95_eV: Option<[f64; 2]>,
    pub ea_kJ_per_mol: f64,
    pub ea_se_kJ_per_mol: f64,
    pub ea_ci95_kJ_per_mol: Option<[f64; 2]>,
    /// The 97.5 % quantile used for the interval: Student t with `dof`
    /// degrees of freedom when the errors were scaled by the Birge ratio,
    /// else the normal 1.96.
    pub t_975: Option<f64>,
    /// `ln(1/tau0)` with `1/tau0` in 1/s: the line's intercept at `1/T = 0`.
    pub ln_inv_tau0: f64,
    pub ln_inv_tau0_se: f64,
    /// Prefactor `1/tau0`, 1/s.
    pub inv_tau0_per_s: f64,
    /// Weighted sum of squared residuals over `dof`; `None` for two points.
    pub chi2_reduced: Option<f64>,
    /// Weighted mean of `1/T`, 1/K: where the line's intercept and slope are
    /// uncorrelated, so the line's uncertainty is smallest there.
    pub inv_T_mean_per_K: f64,
    /// Standard error of `ln(1/tau)` on the line at `inv_T_mean_per_K`.
    pub ln_inv_tau_se_at_mean: f64,
}

impl Arrhenius {
    /// `1/tau` at `T_K` on the fitted line, 1/s.
    pub fn inv_tau_per_s(&self, T_K: f64) -> f64 {
        (self.ln_inv_tau0 - self.ea_eV / (BOLTZMANN_EV_PER_K * T_K)).exp()
    }

    /// `tau` at `T_K` on the fitted line, s.
    pub fn tau_s(&self, T_K: f64) -> f64 {
        1.0 / self.inv_tau_per_s(T_K)
    }

    /// `ln(1/tau)` on the fitted line at `inv_T_per_K` = 1/T and its
    /// standard error, for confidence bands: `se^2 = se_mean^2 + (1/T -
    /// mean)^2 se_slope^2` (intercept at the weighted mean is uncorrelated
    /// with the slope).
    pub fn ln_inv_tau_at(&self, inv_T_per_K: f64) -> (f64, f64) {
        let y = self.ln_inv_tau0 - self.ea_eV / BOLTZMANN_EV_PER_K * inv_T_per_K;
        let slope_se = self.ea_se_eV / BOLTZMANN_EV_PER_K;
        let dx = inv_T_per_K - self.inv_T_mean_per_K;
        (y, self.ln_inv_tau_se_at_mean.hypot(dx * slope_se))
    }

    /// Diffusion prefactor `D0 = L^2 / tau0`, m^2/s, for film thickness `L_m`.
    pub fn D0_m2_per_s(&self, L_m: f64) -> f64 {
        L_m * L_m * self.inv_tau0_per_s
    }

    /// 95 % interval of `D0` for an exact thickness `L_m`: `ln D0 +- q
    /// se(ln 1/tau0)` with the interval's quantile `q` (`t_975`); `None`
    /// without an interval (two temperatures).
    pub fn D0_ci95_m2_per_s(&self, L_m: f64) -> Option<[f64; 2]> {
        let q = self.t_975?;
        let d0 = self.D0_m2_per_s(L_m);
        let f = (q * self.ln_inv_tau0_se).exp();
        Some([d0 / f, d0 * f])
    }

    /// `D(T) = L^2 / tau(T)`, m^2/s.
    pub fn D_m2_per_s(&self, L_m: f64, T_K: f64) -> f64 {
        L_m * L_m * self.inv_tau_per_s(T_K)
    }
}

/// Difference of two activation energies (e.g. ESM minus EIS) with its
/// combined uncertainty; the two fits are taken as independent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EaDifference {
    /// `a.ea_eV - b.ea_eV`.
    pub diff_eV: f64,
    /// `sqrt(se_a^2 + se_b^2)`.
    pub se_eV: f64,
    pub diff_kJ_per_mol: f64,
    pub se_kJ_per_mol: f64,
    /// `diff / se`.
    pub z: f64,
    /// Two-sided normal p-value of `z` (NaN when `se` is 0).
    pub p_two_sided: f64,
}

/// Weighted straight-line fit of `ln(1/tau)` against `1/T`; see the module
/// documentation. `tau_se_s` are the standard errors of `tau_s` (all > 0).
pub fn fit_arrhenius(
    T_K: &[f64],
    tau_s: &[f64],
    tau_se_s: &[f64],
) -> Result<Arrhenius, AnalysisError> {
    let n = T_K.len();
    for (name, len) in [("tau_s", tau_s.len()), ("tau_se_s", tau_se_s.len())] {
        if len != n {
            return Err(AnalysisError::Degenerate(format!(
                "{name} has {len} points but T_K has {n}"
            )));
        }
    }
    if n < 2 {
        return Err(AnalysisError::Insufficient(format!(
            "{n} temperature(s); an Arrhenius line needs at least 2"
        )));
    }
    let mut x = Vec::with_capacity(n);
    let mut y = Vec::with_capacity(n);
    let mut w = Vec::with_capacity(n);
    for ((&t, &tau), &se) in T_K.iter().zip(tau_s).zip(tau_se_s) {
        for (name, value) in [("T_K", t), ("tau_s", tau), ("tau_se_s", se)] {
            if !(value.is_finite() && value > 0.0) {
                return Err(AnalysisError::Parameter {
                    name,
                    value,
                    why: "must be finite and > 0",
                });
            }
        }
        x.push(1.0 / t);
        y.push(-tau.ln());
        let se_ln = se / tau;
        w.push(1.0 / (se_ln * se_ln));
    }
    let sw: f64 = w.iter().sum();
    let x_mean = w.iter().zip(&x).map(|(w, x)| w * x).sum::<f64>() / sw;
    let y_mean = w.iter().zip(&y).map(|(w, y)| w * y).sum::<f64>() / sw;
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for ((w, x), y) in w.iter().zip(&x).zip(&y) {
        sxx += w * (x - x_mean) * (x - x_mean);
        sxy += w * (x - x_mean) * (y - y_mean);
    }
    // Relative to the spread of 1/T itself: equal temperatures give 0.
    if sxx.is_nan() || sxx <= 1e-20 * sw * x_mean * x_mean {
        return Err(AnalysisError::Degenerate(
            "all temperatures are equal: no slope".into(),
        ));
    }
    let slope = sxy / sxx;
    let intercept = y_mean - slope * x_mean;
    let chi2: f64 = w
        .iter()
        .zip(&x)
        .zip(&y)
        .map(|((w, x), y)| w * (y - intercept - slope * x).powi(2))
        .sum();
    let dof = n - 2;
    let chi2_reduced = (dof > 0).then(|| chi2 / dof as f64);
    // Birge ratio^2: only ever inflates (module documentation).
    let scaled = chi2_reduced.is_some_and(|c| c > 1.0);
    let scale = chi2_reduced.map_or(1.0, |c| c.max(1.0));
    let slope_var_internal = 1.0 / sxx;
    let ea_eV = -BOLTZMANN_EV_PER_K * slope;
    let ea_se_internal_eV = BOLTZMANN_EV_PER_K * slope_var_internal.sqrt();
    let ea_se_eV = BOLTZMANN_EV_PER_K * (scale * slope_var_internal).sqrt();
    let ln_inv_tau0_se = (scale * (1.0 / sw + x_mean * x_mean / sxx)).sqrt();
    let t_975 = if dof > 0 && scaled {
        let t = StudentsT::new(0.0, 1.0, dof as f64)
            .map_err(|e| AnalysisError::Degenerate(format!("Student t: {e}")))?;
        Some(t.inverse_cdf(0.975))
    } else if dof > 0 {
        Some(NORMAL_975)
    } else {
        None
    };
    let ea_ci95_eV = t_975.map(|t| [ea_eV - t * ea_se_eV, ea_eV + t * ea_se_eV]);
    Ok(Arrhenius {
        n_points: n,
        dof,
        ea_eV,
        ea_se_eV,
        ea_se_internal_eV,
        ea_ci95_eV,
        ea_kJ_per_mol: ea_eV * KJ_PER_MOL_PER_EV,
        ea_se_kJ_per_mol: ea_se_eV * KJ_PER_MOL_PER_EV,
        ea_ci95_kJ_per_mol: ea_ci95_eV
            .map(|[lo, hi]| [lo * KJ_PER_MOL_PER_EV, hi * KJ_PER_MOL_PER_EV]),
        t_975,
        ln_inv_tau0: intercept,
        ln_inv_tau0_se,
        inv_tau0_per_s: intercept.exp(),
        chi2_reduced,
        inv_T_mean_per_K: x_mean,
        ln_inv_tau_se_at_mean: (scale / sw).sqrt(),
    })
}

/// `a - b` with the combined standard error, for "do ESM and EIS see the
/// same activation energy?".
pub fn compare(a: &Arrhenius, b: &Arrhenius) -> EaDifference {
    let diff_eV = a.ea_eV - b.ea_eV;
    let se_eV = a.ea_se_eV.hypot(b.ea_se_eV);
    let z = diff_eV / se_eV;
    let p_two_sided = match Normal::new(0.0, 1.0) {
        Ok(n) if z.is_finite() => 2.0 * n.sf(z.abs()),
        _ => f64::NAN,
    };
    EaDifference {
        diff_eV,
        se_eV,
        diff_kJ_per_mol: diff_eV * KJ_PER_MOL_PER_EV,
        se_kJ_per_mol: se_eV * KJ_PER_MOL_PER_EV,
        z,
        p_two_sided,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn two_points_give_exact_line_without_interval() {
        let ea = 0.3;
        let t = [300.0, 350.0];
        let tau: Vec<f64> = t
            .iter()
            .map(|t| 1e-4 * (ea / (BOLTZMANN_EV_PER_K * t)).exp())
            .collect();
        let se: Vec<f64> = tau.iter().map(|t| 0.01 * t).collect();
        let r = fit_arrhenius(&t, &tau, &se).unwrap();
        assert!((r.ea_eV - ea).abs() < 1e-12);
        assert!((r.inv_tau0_per_s - 1e4).abs() < 1e-6);
        assert!(r.ea_ci95_eV.is_none() && r.chi2_reduced.is_none() && r.dof == 0);
        // Internal error of a two-point slope: k_B sqrt(2) 0.01 / (1/300 - 1/350).
        let expect = BOLTZMANN_EV_PER_K * 2f64.sqrt() * 0.01 / (1.0 / 300.0 - 1.0 / 350.0);
        assert!((r.ea_se_eV / expect - 1.0).abs() < 1e-9, "{}", r.ea_se_eV);
        assert!((r.ea_kJ_per_mol - 0.3 * 96.485_332_12).abs() < 1e-9);
    }

    #[test]
    fn line_uncertainty_matches_intercept_and_is_smallest_at_the_mean() {
        let t = [290.0, 300.0, 315.0, 330.0];
        let noise = [0.01, -0.02, 0.015, -0.005];
        let tau: Vec<f64> = t
            .iter()
            .zip(noise)
            .map(|(t, n)| 1e-6 * (0.45 / (BOLTZMANN_EV_PER_K * t) + n).exp())
            .collect();
        let se: Vec<f64> = tau.iter().map(|t| 0.02 * t).collect();
        let r = fit_arrhenius(&t, &tau, &se).unwrap();
        // At 1/T = 0 the line is the intercept, with the intercept's error.
        let (y0, se0) = r.ln_inv_tau_at(0.0);
        assert!((y0 - r.ln_inv_tau0).abs() < 1e-12);
        assert!(
            (se0 / r.ln_inv_tau0_se - 1.0).abs() < 1e-9,
            "{se0} {}",
            r.ln_inv_tau0_se
        );
        // On the line through the data, and narrowest at the weighted mean.
        let (y, _) = r.ln_inv_tau_at(1.0 / 300.0);
        assert!((y - r.inv_tau_per_s(300.0).ln()).abs() < 1e-9);
        let at = |x: f64| r.ln_inv_tau_at(x).1;
        let m = r.inv_T_mean_per_K;
        assert!(at(m) < at(m + 1e-5) && at(m) < at(m - 1e-5));
        assert!((at(m) - r.ln_inv_tau_se_at_mean).abs() < 1e-15);
    }

    /// Issue 13 item 6d: the error is never scaled below the propagated
    /// one, and is scaled up by the Birge ratio when the scatter exceeds it.
    #[test]
    fn errors_are_scaled_up_by_the_birge_ratio_never_down() {
        let t = [298.15, 308.15, 318.15, 328.15, 338.15];
        let fit_with = |noise: [f64; 5]| {
            let tau: Vec<f64> = t
                .iter()
                .zip(noise)
                .map(|(t, n)| 1e-6 * (0.45 / (BOLTZMANN_EV_PER_K * t) + n).exp())
                .collect();
            let se: Vec<f64> = tau.iter().map(|t| 0.02 * t).collect();
            fit_arrhenius(&t, &tau, &se).unwrap()
        };
        // Scatter far below the 2 % errors: chi2_red << 1, internal errors.
        let quiet = fit_with([0.001, -0.001, 0.0, 0.001, -0.001]);
        assert!(quiet.chi2_reduced.unwrap() < 0.1);
        assert_eq!(quiet.ea_se_eV, quiet.ea_se_internal_eV);
        assert_eq!(quiet.t_975, Some(NORMAL_975));
        let [lo, hi] = quiet.ea_ci95_eV.unwrap();
        assert!(((hi - lo) / (2.0 * NORMAL_975 * quiet.ea_se_internal_eV) - 1.0).abs() < 1e-12);
        // Scatter well above: scaled by sqrt(chi2_red), Student t (3 dof).
        let loud = fit_with([0.06, -0.05, 0.0, 0.05, -0.06]);
        let c = loud.chi2_reduced.unwrap();
        assert!(c > 1.0);
        assert!((loud.ea_se_eV / (loud.ea_se_internal_eV * c.sqrt()) - 1.0).abs() < 1e-12);
        assert!((loud.t_975.unwrap() - 3.182_446_305).abs() < 1e-6);
        // D0 = L^2/tau0 with the intercept's error (L exact).
        let l_m = 200e-9;
        let [d_lo, d_hi] = quiet.D0_ci95_m2_per_s(l_m).unwrap();
        let d0 = quiet.D0_m2_per_s(l_m);
        assert!(d_lo < d0 && d0 < d_hi);
        assert!(((d_hi / d0).ln() / (NORMAL_975 * quiet.ln_inv_tau0_se) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(matches!(
            fit_arrhenius(&[300.0], &[1.0], &[0.1]),
            Err(AnalysisError::Insufficient(_))
        ));
        assert!(fit_arrhenius(&[300.0, 310.0], &[1.0], &[0.1, 0.1]).is_err());
        assert!(matches!(
            fit_arrhenius(&[300.0, 310.0], &[1.0, -1.0], &[0.1, 0.1]),
            Err(AnalysisError::Parameter { name: "tau_s", .. })
        ));
        assert!(matches!(
            fit_arrhenius(&[300.0, 300.0, 300.0], &[1.0, 2.0, 3.0], &[0.1; 3]),
            Err(AnalysisError::Degenerate(_))
        ));
    }

    #[test]
    fn compare_combines_errors() {
        let t = [298.15, 318.15, 338.15];
        let make = |ea: f64, rel: f64| {
            let tau: Vec<f64> = t
                .iter()
                .map(|t| (ea / (BOLTZMANN_EV_PER_K * t)).exp() * 1e-6)
                .collect();
            let se: Vec<f64> = tau.iter().map(|t| rel * t).collect();
            fit_arrhenius(&t, &tau, &se).unwrap()
        };
        let mut a = make(0.45, 0.02);
        let mut b = make(0.40, 0.02);
        // Exact data: scaled errors vanish; set them by hand to test compare.
        a.ea_se_eV = 0.03;
        b.ea_se_eV = 0.04;
        let d = compare(&a, &b);
        assert!((d.diff_eV - 0.05).abs() < 1e-9);
        assert!((d.se_eV - 0.05).abs() < 1e-12);
        assert!((d.z - 1.0).abs() < 1e-7);
        assert!(
            (d.p_two_sided - 0.317_310_5).abs() < 1e-6,
            "{}",
            d.p_two_sided
        );
    }
}
