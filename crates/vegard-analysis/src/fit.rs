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
    /// Standard error of kappa for white noise plus a wandering holder
    /// ([`drift_noise_variance`]), never below `kappa_se_white`.
    pub kappa_se: f64,
    /// Ordinary least-squares error (white residuals): what the fit
    /// quoted before; 4x too small on the bench, whose holder drift leaves
    /// smooth residuals.
    pub kappa_se_white: f64,
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
    let kappa_se_white = (sigma2 * stt / det).sqrt();
    // q~ (the demeaned charge's part that the demeaned time does not
    // explain; Frisch-Waugh-Lovell: kappa - kappa_true = sum q~ eps / sum
    // q~^2) and the residuals, in time order (groups are consecutive
    // cycles), with the group of each sample.
    let q_on_t = sqt / stt;
    let mut rows: Vec<(f64, f64, f64, usize)> = Vec::with_capacity(n);
    for (k, (g, &(mq, mt, mu))) in groups.iter().zip(&means).enumerate() {
        for &i in g {
            let (dq, dt, du) = (q[i] - mq, t[i] - mt, u[i] - mu);
            rows.push((t[i], dq - q_on_t * dt, du - kappa * dq - drift * dt, k));
        }
    }
    let sxx_tilde = det / stt;
    let kappa_se_hac = drift_noise_variance(&rows, n as f64 / dof)
        .map(|v| v.sqrt() / sxx_tilde)
        .unwrap_or(f64::NAN);
    // The white-noise error is the floor: with few effective samples the
    // HAC estimate can come out below it by chance.
    let kappa_se = if kappa_se_hac.is_finite() {
        kappa_se_hac.max(kappa_se_white)
    } else {
        kappa_se_white
    };
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
        kappa_se_white,
        drift,
        r2,
        r2_vs_charge,
        n_points: n,
    })
}

/// `q~' Cov(eps) q~` for the slope's variance (`/ (sum q~^2)^2`), with the
/// deflection noise `eps` = white noise + a random walk (the holder's
/// thermal wander): `Cov = s_w^2 I + s_rw^2 min(t_i, t_j)`. `rows` are
/// `(t, q~, residual, group)` in time order; the result is multiplied by
/// `dof_factor` (`n / (n - p)`).
///
/// Why a noise model and not a generic HAC: the residuals are not white
/// (the random walk leaves a smooth wander that the fitted linear drift
/// only partly absorbs, and the charge is smooth too, so the white-noise
/// error understated the slope's scatter 4x on the bench), and a random
/// walk's correlation reaches across the whole record, which no kernel
/// estimator with a bandwidth short against the record can see (Newey-West
/// with Andrews' bandwidth covered the truth in 30 % of synthetic runs).
/// White noise plus a random walk is how the bench (and an AFM holder)
/// drifts, and its two parameters are read off the residuals' variogram
/// at short lags, where the fitted drift and offsets have not yet bent it:
/// `E[(e_(i+l) - e_i)^2] = 2 s_w^2 + s_rw^2 (t_(i+l) - t_i)`, a straight
/// line in the lag time, fitted over lags up to 1/8 of the shortest group
/// (pairs within a group only). With `S_k = sum_(i >= k) q~_i` the
/// random-walk term is `s_rw^2 sum_k (t_k - t_(k-1)) S_k^2` (O(n)).
/// `None` when there are too few samples for a variogram.
pub(crate) fn drift_noise_variance(
    rows: &[(f64, f64, f64, usize)],
    dof_factor: f64,
) -> Option<f64> {
    let n = rows.len();
    let mut group_len: Vec<usize> = Vec::new();
    for r in rows {
        if group_len.len() <= r.3 {
            group_len.resize(r.3 + 1, 0);
        }
        group_len[r.3] += 1;
    }
    let shortest = group_len.iter().copied().filter(|&c| c > 0).min()?;
    let max_lag = shortest / 8;
    if max_lag < 2 {
        return None;
    }
    // Variogram points (lag time, mean squared increment).
    let mut pts: Vec<(f64, f64)> = Vec::with_capacity(max_lag);
    for l in 1..=max_lag {
        let (mut s_dt, mut s_de2, mut m) = (0.0, 0.0, 0usize);
        for (a, b) in rows[l..].iter().zip(rows) {
            if a.3 == b.3 {
                s_dt += a.0 - b.0;
                s_de2 += (a.2 - b.2).powi(2);
                m += 1;
            }
        }
        if m > 0 {
            pts.push((s_dt / m as f64, s_de2 / m as f64));
        }
    }
    let (xs, ys): (Vec<f64>, Vec<f64>) = pts.into_iter().unzip();
    let line = Line::fit(&xs, &ys)?;
    let s_rw2 = line.slope.max(0.0);
    let s_w2 = (0.5 * line.at(0.0)).max(0.0);
    let (mut sqq, mut walk, mut suffix) = (0.0, 0.0, 0.0);
    for k in (0..n).rev() {
        let (tk, qk, _, _) = rows[k];
        sqq += qk * qk;
        suffix += qk;
        if k > 0 {
            walk += (tk - rows[k - 1].0) * suffix * suffix;
        }
    }
    let v = (s_w2 * sqq + s_rw2 * walk) * dof_factor;
    (v.is_finite() && v > 0.0).then_some(v)
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
