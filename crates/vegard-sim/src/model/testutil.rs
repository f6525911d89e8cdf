//! Helpers shared by the model's and the world's unit tests.
#![allow(clippy::unwrap_used)]

use super::C64;

/// Least-squares fit of `c0 + c1 t + c2 t^2 + a cos(w t) + b sin(w t)` to
/// samples spanning whole periods; returns the phasor `a - j b` (peak
/// amplitude, phase against a cosine, PHYSICS.md section 3). The
/// quadratic trend takes up what is left of the slow start-up transient
/// (the film's charge relaxes over ~tau), which the plain lock-in sum
/// would leak into the fundamental.
pub(crate) fn demodulate(t_s: &[f64], s: &[f64], w: f64) -> C64 {
    let t_mid = 0.5 * (t_s[0] + t_s[t_s.len() - 1]);
    let t_half = 0.5 * (t_s[t_s.len() - 1] - t_s[0]);
    let mut ata = [[0.0f64; 5]; 5];
    let mut atb = [0.0f64; 5];
    for (&t, &y) in t_s.iter().zip(s) {
        let r = (t - t_mid) / t_half;
        let row = [1.0, r, r * r, (w * t).cos(), (w * t).sin()];
        for i in 0..5 {
            atb[i] += row[i] * y;
            for j in 0..5 {
                ata[i][j] += row[i] * row[j];
            }
        }
    }
    // Gaussian elimination with partial pivoting (5 x 5, well conditioned).
    for col in 0..5 {
        let piv = (col..5)
            .max_by(|&a, &b| ata[a][col].abs().total_cmp(&ata[b][col].abs()))
            .unwrap();
        ata.swap(col, piv);
        atb.swap(col, piv);
        let pivot_row = ata[col];
        let pivot_b = atb[col];
        for r in col + 1..5 {
            let k = ata[r][col] / pivot_row[col];
            for (a, p) in ata[r].iter_mut().zip(&pivot_row).skip(col) {
                *a -= k * p;
            }
            atb[r] -= k * pivot_b;
        }
    }
    let mut x = [0.0f64; 5];
    for r in (0..5).rev() {
        let tail: f64 = (r + 1..5).map(|c| ata[r][c] * x[c]).sum();
        x[r] = (atb[r] - tail) / ata[r][r];
    }
    C64::new(x[3], -x[4])
}
