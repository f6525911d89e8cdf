//! Scan-rate analysis of a CV series (issue 19, item 4; building blocks).
//!
//! - **b-value**: a peak quantity (current, or the deformation's swing)
//!   against scan rate follows a power law `y = a v^b`; `b = 1/2` for a
//!   diffusion-limited (semi-infinite) current, `b = 1` for a capacitive or
//!   surface-limited one. Fitted as a straight line in log-log space, which
//!   is the least-squares fit when the noise is relative (a few % per
//!   peak, as peak currents scatter).
//! - **Dunn split** (Wang, Polleux, Lim, Dunn, J. Phys. Chem. C 111 (2007)
//!   14925): at a fixed potential the current of every scan rate is
//!   `i(v) = k1 v + k2 v^(1/2)`, capacitive plus diffusive. The paper plots
//!   the linearised `i / v^(1/2) = k1 v^(1/2) + k2`; here the two-term model
//!   itself is fitted by least squares (no intercept), which keeps additive
//!   current noise homoscedastic so the standard errors mean what they say
//!   (the linearised form weights slow scans up by `v^(-1/2)`).
//!
//! Both give standard errors from the residuals and 95 % intervals from
//! Student's t with `n - 2` degrees of freedom; the coverage tests below
//! check that they cover the truth as often as they claim.

use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::AnalysisError;

/// `y = a v^b` fitted in log-log space.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerLaw {
    /// The exponent b (1/2 diffusion, 1 capacitive).
    pub b: f64,
    pub b_se: f64,
    pub b_ci95: [f64; 2],
    /// `log10 a`, with `a` in the unit of `y` at 1 V/s.
    pub log10_a: f64,
    pub log10_a_se: f64,
    /// Scan rates fitted.
    pub n: usize,
}

/// `i(v) = k1 v + k2 v^(1/2)` at one potential.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DunnSplit {
    /// Capacitive coefficient, A s/V (current per scan rate).
    pub k1_A_s_per_V: f64,
    pub k1_se_A_s_per_V: f64,
    /// Diffusive coefficient, A (s/V)^(1/2).
    pub k2_A_sqrt_s_per_V: f64,
    pub k2_se_A_sqrt_s_per_V: f64,
    /// Correlation of the two estimates (they share the data).
    pub k1_k2_correlation: f64,
    pub n: usize,
}

impl DunnSplit {
    /// Capacitive share of the current at scan rate `v`, `k1 v / i(v)`
    /// (NaN where the model current is 0).
    pub fn capacitive_fraction(&self, scan_rate_V_per_s: f64) -> f64 {
        let cap = self.k1_A_s_per_V * scan_rate_V_per_s;
        let total = cap + self.k2_A_sqrt_s_per_V * scan_rate_V_per_s.sqrt();
        if total == 0.0 { f64::NAN } else { cap / total }
    }
}

/// Checks a scan-rate series: equal lengths, at least 3 points (a fit of 2
/// parameters needs a residual to estimate its error), finite positive
/// scan rates of which at least two differ.
fn check(scan_rate_V_per_s: &[f64], y: &[f64], y_name: &'static str) -> Result<(), AnalysisError> {
    if y.len() != scan_rate_V_per_s.len() {
        return Err(AnalysisError::Length {
            name: y_name,
            got: y.len(),
            reference: "scan_rate_V_per_s",
            expected: scan_rate_V_per_s.len(),
        });
    }
    if y.len() < 3 {
        return Err(AnalysisError::Insufficient(format!(
            "{} scan rate(s); a scan-rate analysis needs at least 3",
            y.len()
        )));
    }
    for (&v, &yi) in scan_rate_V_per_s.iter().zip(y) {
        if !(v.is_finite() && v > 0.0) {
            return Err(AnalysisError::Parameter {
                name: "scan_rate_V_per_s",
                value: v,
                why: "must be finite and > 0",
            });
        }
        if !yi.is_finite() {
            return Err(AnalysisError::Parameter {
                name: y_name,
                value: yi,
                why: "must be finite",
            });
        }
    }
    let (lo, hi) = scan_rate_V_per_s
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), &v| (a.min(v), b.max(v)));
    if hi <= lo * (1.0 + 1e-9) {
        return Err(AnalysisError::Degenerate(
            "all scan rates are equal: nothing to fit against".into(),
        ));
    }
    Ok(())
}

fn t_975(dof: usize) -> Result<f64, AnalysisError> {
    StudentsT::new(0.0, 1.0, dof as f64)
        .map(|t| t.inverse_cdf(0.975))
        .map_err(|e| AnalysisError::Degenerate(format!("Student t: {e}")))
}

/// The b-value of `y = a v^b` (e.g. the anodic peak current, or the
/// deformation's peak-to-peak swing, per scan rate). `y` must be > 0: pass
/// magnitudes (a cathodic peak's absolute value).
pub fn b_value(scan_rate_V_per_s: &[f64], y: &[f64]) -> Result<PowerLaw, AnalysisError> {
    check(scan_rate_V_per_s, y, "y")?;
    if let Some(&bad) = y.iter().find(|&&y| y <= 0.0) {
        return Err(AnalysisError::Parameter {
            name: "y",
            value: bad,
            why: "must be > 0 for a power law (pass magnitudes)",
        });
    }
    let x: Vec<f64> = scan_rate_V_per_s.iter().map(|v| v.log10()).collect();
    let l: Vec<f64> = y.iter().map(|y| y.log10()).collect();
    let n = x.len();
    let x_mean = x.iter().sum::<f64>() / n as f64;
    let l_mean = l.iter().sum::<f64>() / n as f64;
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for (x, l) in x.iter().zip(&l) {
        sxx += (x - x_mean) * (x - x_mean);
        sxy += (x - x_mean) * (l - l_mean);
    }
    let b = sxy / sxx;
    let log10_a = l_mean - b * x_mean;
    let dof = n - 2;
    let s2 = x
        .iter()
        .zip(&l)
        .map(|(x, l)| (l - log10_a - b * x).powi(2))
        .sum::<f64>()
        / dof as f64;
    let b_se = (s2 / sxx).sqrt();
    let t = t_975(dof)?;
    Ok(PowerLaw {
        b,
        b_se,
        b_ci95: [b - t * b_se, b + t * b_se],
        log10_a,
        log10_a_se: (s2 * (1.0 / n as f64 + x_mean * x_mean / sxx)).sqrt(),
        n,
    })
}

/// The Dunn split `i = k1 v + k2 v^(1/2)` of the currents `I_A` measured at
/// one potential (and sweep direction) at each scan rate.
pub fn dunn_split(scan_rate_V_per_s: &[f64], I_A: &[f64]) -> Result<DunnSplit, AnalysisError> {
    check(scan_rate_V_per_s, I_A, "I_A")?;
    // Columns v and sqrt(v), scaled to unit norm so the 2x2 normal
    // equations are well conditioned whatever the scan-rate unit range.
    let c1: Vec<f64> = scan_rate_V_per_s.to_vec();
    let c2: Vec<f64> = scan_rate_V_per_s.iter().map(|v| v.sqrt()).collect();
    let norm = |c: &[f64]| c.iter().map(|x| x * x).sum::<f64>().sqrt();
    let (n1, n2) = (norm(&c1), norm(&c2));
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(a, b)| a * b).sum::<f64>();
    let (a11, a12, a22) = (
        dot(&c1, &c1) / (n1 * n1),
        dot(&c1, &c2) / (n1 * n2),
        dot(&c2, &c2) / (n2 * n2),
    );
    let det = a11 * a22 - a12 * a12;
    if det.is_nan() || det <= 1e-12 {
        return Err(AnalysisError::Degenerate(
            "the scan rates do not separate v from v^(1/2)".into(),
        ));
    }
    let (r1, r2) = (dot(&c1, I_A) / n1, dot(&c2, I_A) / n2);
    let u1 = (a22 * r1 - a12 * r2) / det;
    let u2 = (a11 * r2 - a12 * r1) / det;
    let (k1, k2) = (u1 / n1, u2 / n2);
    let n = I_A.len();
    let dof = n - 2;
    let s2 = c1
        .iter()
        .zip(&c2)
        .zip(I_A)
        .map(|((v, s), i)| (i - k1 * v - k2 * s).powi(2))
        .sum::<f64>()
        / dof as f64;
    // Covariance of (u1, u2) is s2 A^-1; back to k by the column norms.
    let (v11, v22, v12) = (a22 / det, a11 / det, -a12 / det);
    let k1_se = (s2 * v11).sqrt() / n1;
    let k2_se = (s2 * v22).sqrt() / n2;
    Ok(DunnSplit {
        k1_A_s_per_V: k1,
        k1_se_A_s_per_V: k1_se,
        k2_A_sqrt_s_per_V: k2,
        k2_se_A_sqrt_s_per_V: k2_se,
        k1_k2_correlation: v12 / (v11 * v22).sqrt(),
        n,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use rand_distr::StandardNormal;

    const RATES: [f64; 6] = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2];

    #[test]
    fn exact_power_laws_give_their_exponent() {
        for b in [0.5, 0.73, 1.0] {
            let y: Vec<f64> = RATES.iter().map(|v| 2.5e-4 * v.powf(b)).collect();
            let p = b_value(&RATES, &y).unwrap();
            assert!((p.b - b).abs() < 1e-12, "{p:?}");
            assert!((p.log10_a - 2.5e-4f64.log10()).abs() < 1e-12);
            assert!(p.b_se < 1e-12);
        }
    }

    #[test]
    fn exact_dunn_currents_split_into_their_coefficients() {
        let (k1, k2) = (3e-3, 1.2e-4);
        let i: Vec<f64> = RATES.iter().map(|v| k1 * v + k2 * v.sqrt()).collect();
        let d = dunn_split(&RATES, &i).unwrap();
        assert!((d.k1_A_s_per_V / k1 - 1.0).abs() < 1e-9, "{d:?}");
        assert!((d.k2_A_sqrt_s_per_V / k2 - 1.0).abs() < 1e-9, "{d:?}");
        // At 0.1 V/s: 3e-4 A capacitive of 3e-4 + 1.2e-4 sqrt(0.1) = 3.379e-4.
        let f = d.capacitive_fraction(0.1);
        assert!(
            (f - 3e-4 / (3e-4 + 1.2e-4 * 0.1f64.sqrt())).abs() < 1e-9,
            "{f}"
        );
    }

    /// The 95 % intervals cover the truth 95 % of the time: 2000 synthetic
    /// series each, relative noise for the power law, additive noise for
    /// the split. Binomial SE of a 95 % rate over 2000 tries is 0.5 %.
    #[test]
    fn intervals_cover_the_truth_as_often_as_they_claim() {
        let mut rng = StdRng::seed_from_u64(19);
        let tries = 2000;
        let (mut b_hits, mut k1_hits, mut k2_hits) = (0, 0, 0);
        let (k1, k2, b) = (3e-3, 1.2e-4, 0.62);
        for _ in 0..tries {
            let y: Vec<f64> = RATES
                .iter()
                .map(|v| {
                    let e: f64 = rng.sample(StandardNormal);
                    1e-4 * v.powf(b) * (0.03 * e).exp()
                })
                .collect();
            let p = b_value(&RATES, &y).unwrap();
            b_hits += usize::from(p.b_ci95[0] <= b && b <= p.b_ci95[1]);
            let i: Vec<f64> = RATES
                .iter()
                .map(|v| {
                    let e: f64 = rng.sample(StandardNormal);
                    k1 * v + k2 * v.sqrt() + 2e-6 * e
                })
                .collect();
            let d = dunn_split(&RATES, &i).unwrap();
            let t = t_975(RATES.len() - 2).unwrap();
            k1_hits += usize::from((d.k1_A_s_per_V - k1).abs() <= t * d.k1_se_A_s_per_V);
            k2_hits += usize::from((d.k2_A_sqrt_s_per_V - k2).abs() <= t * d.k2_se_A_sqrt_s_per_V);
        }
        for (name, hits) in [("b", b_hits), ("k1", k1_hits), ("k2", k2_hits)] {
            let rate = hits as f64 / f64::from(tries);
            eprintln!(
                "{name}: 95 % interval covered the truth in {:.1} %",
                100.0 * rate
            );
            assert!((0.935..=0.965).contains(&rate), "{name}: coverage {rate}");
        }
    }

    #[test]
    fn bad_series_are_errors_not_numbers() {
        assert!(matches!(
            b_value(&[0.01, 0.02], &[1.0, 2.0]),
            Err(AnalysisError::Insufficient(_))
        ));
        assert!(matches!(
            b_value(&[0.01, 0.01, 0.01], &[1.0, 2.0, 3.0]),
            Err(AnalysisError::Degenerate(_))
        ));
        assert!(matches!(
            b_value(&[0.01, 0.02, 0.05], &[1.0, -2.0, 3.0]),
            Err(AnalysisError::Parameter { name: "y", .. })
        ));
        assert!(matches!(
            dunn_split(&[0.01, 0.0, 0.05], &[1.0, 2.0, 3.0]),
            Err(AnalysisError::Parameter {
                name: "scan_rate_V_per_s",
                ..
            })
        ));
        assert!(matches!(
            dunn_split(&[0.01, 0.02, 0.05], &[1.0, f64::NAN, 3.0]),
            Err(AnalysisError::Parameter { name: "I_A", .. })
        ));
        assert!(matches!(
            dunn_split(&[0.01, 0.02], &[1.0, 2.0, 3.0]),
            Err(AnalysisError::Length { .. })
        ));
    }
}
