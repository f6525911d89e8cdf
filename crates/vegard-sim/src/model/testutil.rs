//! Helpers shared by the model's and the world's unit tests.
#![allow(clippy::unwrap_used)]

use nalgebra::{DMatrix, DVector};

use super::C64;

/// Least squares `min |X b - y|` over the columns of `X`: SVD of the
/// columns scaled to unit norm, so the result is as accurate as the
/// columns' conditioning allows (not its square, as with the normal
/// equations) even when they differ by orders of magnitude (1, Q, Q^2).
/// Panics on a zero column or a failed SVD: a test helper.
pub(crate) fn lstsq(cols: &[Vec<f64>], y: &[f64]) -> Vec<f64> {
    let scale: Vec<f64> = cols
        .iter()
        .map(|c| c.iter().map(|v| v * v).sum::<f64>().sqrt())
        .collect();
    assert!(scale.iter().all(|s| *s > 0.0), "zero column");
    let x = DMatrix::from_fn(y.len(), cols.len(), |i, j| cols[j][i] / scale[j]);
    let b = x
        .svd(true, true)
        .solve(&DVector::from_column_slice(y), 0.0)
        .unwrap();
    b.iter().zip(&scale).map(|(b, s)| b / s).collect()
}

/// Least-squares fit of `c0 + c1 t + c2 t^2 + a cos(w t) + b sin(w t)` to
/// samples spanning whole periods; returns the phasor `a - j b` (peak
/// amplitude, phase against a cosine, PHYSICS.md section 3). The
/// quadratic trend takes up what is left of the slow start-up transient
/// (the film's charge relaxes over ~tau), which the plain lock-in sum
/// would leak into the fundamental.
pub(crate) fn demodulate(t_s: &[f64], s: &[f64], w: f64) -> C64 {
    let t_mid = 0.5 * (t_s[0] + t_s[t_s.len() - 1]);
    let t_half = 0.5 * (t_s[t_s.len() - 1] - t_s[0]);
    let r: Vec<f64> = t_s.iter().map(|&t| (t - t_mid) / t_half).collect();
    let cols = [
        vec![1.0; t_s.len()],
        r.clone(),
        r.iter().map(|r| r * r).collect(),
        t_s.iter().map(|&t| (w * t).cos()).collect(),
        t_s.iter().map(|&t| (w * t).sin()).collect(),
    ];
    let x = lstsq(&cols, s);
    C64::new(x[3], -x[4])
}
