//! Dense least squares shared by the software lock-in and the ESM fit: an
//! SVD of the design matrix (or Jacobian) with its columns scaled to unit
//! norm first.
//!
//! Why not the normal equations: `A^T A` squares the condition number, and
//! the columns here differ by orders of magnitude (an offset next to a time
//! in seconds, `ln tau` next to nm/V). Scaling the columns makes the rank
//! test a statement about collinearity rather than about units.

use nalgebra::{DMatrix, DVector, Dyn, SVD};

/// A column-scaled SVD of a full-rank `m x p` matrix (`m >= p`).
pub(crate) struct ScaledSvd {
    svd: SVD<f64, Dyn, Dyn>,
    /// Norm of each original column.
    scale: Vec<f64>,
}

impl ScaledSvd {
    /// `None` when a column is zero or not finite, or when the scaled
    /// columns are numerically dependent: the smallest singular value is
    /// at most `rank_tolerance` times the largest.
    pub(crate) fn new(mut a: DMatrix<f64>, rank_tolerance: f64) -> Option<ScaledSvd> {
        let mut scale = Vec::with_capacity(a.ncols());
        for mut col in a.column_iter_mut() {
            let norm = col.norm();
            if !(norm.is_finite() && norm > 0.0) {
                return None;
            }
            col /= norm;
            scale.push(norm);
        }
        let svd = a.svd(true, true);
        let (s_min, s_max) = (svd.singular_values.min(), svd.singular_values.max());
        (s_min > rank_tolerance * s_max).then_some(ScaledSvd { svd, scale })
    }

    /// The least-squares solution of `A c = y` in the original units;
    /// `None` if it is not finite.
    pub(crate) fn solve(&self, y: &DVector<f64>) -> Option<DVector<f64>> {
        let mut c = self.svd.solve(y, 0.0).ok()?;
        for (ci, s) in c.iter_mut().zip(&self.scale) {
            *ci /= s;
        }
        c.iter().all(|v| v.is_finite()).then_some(c)
    }

    /// The whole of `(A^T A)^-1` in the original units: times the residual
    /// variance, the parameters' covariance (the signal-origin fit needs the
    /// correlations for its joint tests and derived quantities).
    pub(crate) fn inverse_gram(&self) -> Option<DMatrix<f64>> {
        let v_t = self.svd.v_t.as_ref()?;
        let s = &self.svd.singular_values;
        let p = self.scale.len();
        Some(DMatrix::from_fn(p, p, |j, l| {
            let g: f64 = (0..s.len())
                .map(|i| v_t[(i, j)] * v_t[(i, l)] / (s[i] * s[i]))
                .sum();
            g / (self.scale[j] * self.scale[l])
        }))
    }

    /// The diagonal of `(A^T A)^-1` in the original units: times the
    /// residual variance, the parameters' variances.
    pub(crate) fn inverse_gram_diagonal(&self) -> Option<Vec<f64>> {
        let v_t = self.svd.v_t.as_ref()?;
        let s = &self.svd.singular_values;
        Some(
            self.scale
                .iter()
                .enumerate()
                .map(|(j, d)| {
                    let var: f64 = (0..s.len()).map(|i| (v_t[(i, j)] / s[i]).powi(2)).sum();
                    var / (d * d)
                })
                .collect(),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn solves_badly_scaled_columns_and_refuses_dependent_ones() {
        // y = 3 + 2e-6 t on t in seconds up to 1e6: columns 1 and t.
        let t: Vec<f64> = (0..50).map(|k| k as f64 * 2e4).collect();
        let a = DMatrix::from_fn(t.len(), 2, |i, j| if j == 0 { 1.0 } else { t[i] });
        let y = DVector::from_iterator(t.len(), t.iter().map(|t| 3.0 + 2e-6 * t));
        let svd = ScaledSvd::new(a.clone(), 1e-7).unwrap();
        let c = svd.solve(&y).unwrap();
        assert!((c[0] - 3.0).abs() < 1e-12 && (c[1] / 2e-6 - 1.0).abs() < 1e-12);
        // (A^T A)^-1 of the same matrix from the textbook 2x2 inverse.
        let (n, st, stt) = (
            t.len() as f64,
            t.iter().sum::<f64>(),
            t.iter().map(|t| t * t).sum::<f64>(),
        );
        let det = n * stt - st * st;
        let d = svd.inverse_gram_diagonal().unwrap();
        assert!((d[0] / (stt / det) - 1.0).abs() < 1e-10);
        assert!((d[1] / (n / det) - 1.0).abs() < 1e-10);
        let g = svd.inverse_gram().unwrap();
        assert!((g[(0, 1)] / (-st / det) - 1.0).abs() < 1e-10);
        assert!((g[(1, 1)] / d[1] - 1.0).abs() < 1e-12);
        // A repeated column and a zero column are refused.
        let dep = DMatrix::from_fn(t.len(), 2, |i, _| t[i]);
        assert!(ScaledSvd::new(dep, 1e-7).is_none());
        let zero = DMatrix::from_fn(t.len(), 2, |i, j| if j == 0 { t[i] } else { 0.0 });
        assert!(ScaledSvd::new(zero, 1e-7).is_none());
    }
}
