//! Small least-squares fits, written out by hand because they are tiny and
//! a linear-algebra dependency would cost more than it saves.
//!
//! The deformation model u = kappa*Q_F + d*t + b_c (one intercept b_c per
//! cycle) is solved with the Frisch-Waugh-Lovell theorem: subtracting each
//! cycle's mean from u, Q_F and t removes the intercepts exactly, leaving a
//! 2x2 normal-equation system for (kappa, d) with the same estimates, the
//! same residuals and the same covariance as the full model. Demeaning also
//! keeps the system well conditioned (t may be 1e4 s while it varies by 10 s
//! within a cycle). The degrees of freedom are n - 2 - (number of cycles).

/// Straight line y = y_mean + slope*(x - x_mean), by ordinary least squares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Line {
    pub x_mean: f64,
    pub y_mean: f64,
    pub slope: f64,
}

impl Line {
    /// `None` if fewer than two points or all x are equal.
    pub fn fit(x: &[f64], y: &[f64]) -> Option<Line> {
        let n = x.len();
        if n < 2 || y.len() != n {
            return None;
        }
        let x_mean = x.iter().sum::<f64>() / n as f64;
        let y_mean = y.iter().sum::<f64>() / n as f64;
        let (mut sxx, mut sxy) = (0.0, 0.0);
        for (xi, yi) in x.iter().zip(y) {
            let dx = xi - x_mean;
            sxx += dx * dx;
            sxy += dx * (yi - y_mean);
        }
        (sxx > 0.0).then(|| Line {
            x_mean,
            y_mean,
            slope: sxy / sxx,
        })
    }

    pub fn at(&self, x: f64) -> f64 {
        self.y_mean + self.slope * (x - self.x_mean)
    }
}

/// Result of the grouped fit u = kappa*q + d*t + b_group.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GroupedFit {
    /// du/dq in u-units per q-unit.
    pub kappa: f64,
    pub kappa_se: f64,
    /// du/dt.
    pub drift: f64,
    /// R^2 of the full model against the variance of u about its overall mean.
    pub r2: f64,
    /// Share of the drift-corrected, per-group-demeaned variance of u that
    /// kappa*q explains: how well deformation follows charge once drift and
    /// offsets are out of the way.
    pub r2_vs_charge: f64,
    pub n_points: usize,
}

/// Why a grouped fit has no answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FitFailure {
    TooFewPoints { n: usize, params: usize },
    ChargeConstant,
    TimeConstant,
    Collinear { correlation: f64 },
}

impl std::fmt::Display for FitFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FitFailure::TooFewPoints { n, params } => {
                write!(f, "{n} points cannot determine {params} parameters")
            }
            FitFailure::ChargeConstant => write!(f, "faradaic charge does not vary"),
            FitFailure::TimeConstant => write!(f, "time does not vary"),
            FitFailure::Collinear { correlation } => write!(
                f,
                "faradaic charge and time are collinear (correlation {correlation:.12}); \
                 deformation cannot be separated from drift"
            ),
        }
    }
}

/// Relative determinant (1 - correlation^2 of Q_F and t after demeaning)
/// below which kappa and drift are not separable in f64.
const COLLINEAR_LIMIT: f64 = 1e-10;

/// Fit u = kappa*q + d*t + b_g over `groups` (index lists into q, t, u).
/// All referenced samples must be finite.
pub(crate) fn grouped_fit(
    groups: &[Vec<usize>],
    q: &[f64],
    t: &[f64],
    u: &[f64],
) -> Result<GroupedFit, FitFailure> {
    let n: usize = groups.iter().map(Vec::len).sum();
    let params = 2 + groups.len();
    if n <= params {
        return Err(FitFailure::TooFewPoints { n, params });
    }
    let mean = |v: &[f64], idx: &[usize]| idx.iter().map(|&i| v[i]).sum::<f64>() / idx.len() as f64;
    let means: Vec<(f64, f64, f64)> = groups
        .iter()
        .map(|g| (mean(q, g), mean(t, g), mean(u, g)))
        .collect();

    let (mut sqq, mut sqt, mut stt, mut squ, mut stu) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (g, &(mq, mt, mu)) in groups.iter().zip(&means) {
        for &i in g {
            let (dq, dt, du) = (q[i] - mq, t[i] - mt, u[i] - mu);
            sqq += dq * dq;
            sqt += dq * dt;
            stt += dt * dt;
            squ += dq * du;
            stu += dt * du;
        }
    }
    if sqq <= 0.0 {
        return Err(FitFailure::ChargeConstant);
    }
    if stt <= 0.0 {
        return Err(FitFailure::TimeConstant);
    }
    let det = sqq * stt - sqt * sqt;
    if det <= COLLINEAR_LIMIT * sqq * stt {
        return Err(FitFailure::Collinear {
            correlation: sqt / (sqq * stt).sqrt(),
        });
    }
    let kappa = (stt * squ - sqt * stu) / det;
    let drift = (sqq * stu - sqt * squ) / det;

    // Second pass for the residuals (more accurate than Syy - beta.X'y).
    let u_mean_all = groups.iter().flatten().map(|&i| u[i]).sum::<f64>() / n as f64;
    let (mut rss, mut tss, mut tss_dd) = (0.0, 0.0, 0.0);
    for (g, &(mq, mt, mu)) in groups.iter().zip(&means) {
        for &i in g {
            let (dq, dt, du) = (q[i] - mq, t[i] - mt, u[i] - mu);
            let resid = du - kappa * dq - drift * dt;
            rss += resid * resid;
            tss += (u[i] - u_mean_all).powi(2);
            tss_dd += (du - drift * dt).powi(2);
        }
    }
    let dof = (n - params) as f64;
    let sigma2 = rss / dof;
    // (X'X)^-1 of the 2x2 system: the kappa entry is stt/det.
    let kappa_se = (sigma2 * stt / det).sqrt();
    // R^2 is undefined (NaN, serialised as null) when u does not vary at all.
    let r2 = if tss > 0.0 { 1.0 - rss / tss } else { f64::NAN };
    let r2_vs_charge = if tss_dd > 0.0 {
        1.0 - rss / tss_dd
    } else {
        f64::NAN
    };
    Ok(GroupedFit {
        kappa,
        kappa_se,
        drift,
        r2,
        r2_vs_charge,
        n_points: n,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn grouped_fit_recovers_exact_plane_with_offsets() {
        // Two groups with different intercepts; exact data.
        let q: Vec<f64> = (0..40).map(|k| ((k as f64) * 0.7).sin()).collect();
        let t: Vec<f64> = (0..40).map(|k| 1.0e4 + k as f64).collect();
        let u: Vec<f64> = (0..40)
            .map(|k| -3.0 * q[k] + 0.25 * t[k] + if k < 20 { 1.0 } else { -7.0 })
            .collect();
        let groups = vec![(0..20).collect(), (20..40).collect()];
        let f = grouped_fit(&groups, &q, &t, &u).unwrap();
        assert!((f.kappa + 3.0).abs() < 1e-9, "{f:?}");
        assert!((f.drift - 0.25).abs() < 1e-9, "{f:?}");
        assert!(f.kappa_se < 1e-8 && f.r2 > 1.0 - 1e-12 && f.r2_vs_charge > 1.0 - 1e-12);
        assert_eq!(f.n_points, 40);
    }

    #[test]
    fn collinear_and_constant_inputs_are_reported() {
        let t: Vec<f64> = (0..20).map(f64::from).collect();
        let g = vec![(0..20).collect::<Vec<_>>()];
        let q2: Vec<f64> = t.iter().map(|x| 2.0 * x).collect();
        assert!(matches!(
            grouped_fit(&g, &q2, &t, &t),
            Err(FitFailure::Collinear { .. })
        ));
        let q0 = vec![1.0; 20];
        assert_eq!(
            grouped_fit(&g, &q0, &t, &t).unwrap_err(),
            FitFailure::ChargeConstant
        );
        let few = vec![vec![0, 1, 2]];
        assert!(matches!(
            grouped_fit(&few, &q2, &t, &t),
            Err(FitFailure::TooFewPoints { n: 3, params: 3 })
        ));
    }

    #[test]
    fn line_fit_extrapolates() {
        let x = [1.0, 2.0, 3.0, 4.0];
        let y = [3.0, 5.0, 7.0, 9.0];
        let l = Line::fit(&x, &y).unwrap();
        assert!((l.at(10.0) - 21.0).abs() < 1e-12);
        assert!(Line::fit(&[1.0, 1.0], &[0.0, 1.0]).is_none());
    }
}
