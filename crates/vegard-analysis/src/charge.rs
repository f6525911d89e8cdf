//! Charge: the integral of current, the double-layer capacitance from CV
//! vertex current jumps, and the faradaic charge that drives Vegard strain.
//!
//! Only faradaic charge inserts ions, so only Q_F moves the lattice; the
//! double-layer charge C_dl*(E - E0) must be taken out of the total Q first
//! (PHYSICS.md section 5).

use serde::Serialize;

use crate::AnalysisError;
use crate::fit::Line;

/// Check that `other` is as long as `t_s`.
pub(crate) fn check_len(
    name: &'static str,
    t_s: &[f64],
    other: &[impl Sized],
) -> Result<(), AnalysisError> {
    if other.len() == t_s.len() {
        Ok(())
    } else {
        Err(AnalysisError::Length {
            name,
            reference: "t_s",
            expected: t_s.len(),
            got: other.len(),
        })
    }
}

/// Q(t) = integral of I dt from the first sample, in C, by the trapezoid rule.
///
/// Samples where t or I is not finite get `NaN` and are bridged: the
/// integral runs straight from the previous finite sample to the next, so one
/// dropped reading does not poison the rest of the run. Time must not
/// decrease (equal stamps contribute nothing).
pub fn cumulative_charge_C(t_s: &[f64], I_A: &[f64]) -> Result<Vec<f64>, AnalysisError> {
    check_len("I_A", t_s, I_A)?;
    let mut q = vec![f64::NAN; t_s.len()];
    let mut acc = 0.0;
    let mut prev: Option<(f64, f64)> = None;
    for (k, (&t, &i)) in t_s.iter().zip(I_A).enumerate() {
        if !(t.is_finite() && i.is_finite()) {
            continue;
        }
        if let Some((tp, ip)) = prev {
            if t < tp {
                return Err(AnalysisError::TimeOrder {
                    index: k,
                    before: tp,
                    after: t,
                });
            }
            acc += 0.5 * (i + ip) * (t - tp);
        }
        q[k] = acc;
        prev = Some((t, i));
    }
    Ok(q)
}

/// Q_F = Q - C_dl*(E - E0), i.e. the integral of (I - C_dl dE/dt), in C.
/// E0 is the potential at the first sample with a finite charge. Where E is
/// not finite, Q_F is NaN.
pub fn faradaic_charge_C(
    t_s: &[f64],
    E_V: &[f64],
    I_A: &[f64],
    C_dl_F: f64,
) -> Result<Vec<f64>, AnalysisError> {
    check_len("E_V", t_s, E_V)?;
    check_capacitance(C_dl_F)?;
    let q = cumulative_charge_C(t_s, I_A)?;
    Ok(subtract_double_layer_in_place(q, E_V, C_dl_F))
}

pub(crate) fn check_capacitance(C_dl_F: f64) -> Result<(), AnalysisError> {
    if C_dl_F.is_finite() && C_dl_F >= 0.0 {
        Ok(())
    } else {
        Err(AnalysisError::Parameter {
            name: "C_dl_F",
            value: C_dl_F,
            why: "must be finite and >= 0",
        })
    }
}

/// Q_F = Q - C_dl (E - E0) in `q`'s own storage (a day-long CV's copy
/// would be 70 MB); E0 as in [`faradaic_charge_C`].
pub(crate) fn subtract_double_layer_in_place(
    mut q: Vec<f64>,
    E_V: &[f64],
    C_dl_F: f64,
) -> Vec<f64> {
    let e0 = q
        .iter()
        .zip(E_V)
        .find(|(q, e)| q.is_finite() && e.is_finite())
        .map_or(f64::NAN, |(_, &e)| e);
    for (q, &e) in q.iter_mut().zip(E_V) {
        *q -= C_dl_F * (e - e0);
    }
    q
}

/// Tuning of the vertex-jump estimate. The defaults suit CVs sampled at
/// 5-50 samples per 100 mV with R_s*C_dl well under one sample interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CdlOptions {
    /// Samples left out on each side of the extreme-potential sample, so the
    /// R_s*C_dl relaxation right after the reversal (and the uncertainty of
    /// where between two samples the vertex lies) does not bias the lines.
    pub skip_samples: usize,
    /// Samples per side used for the straight-line extrapolation. More
    /// averages noise; too many lets curvature of the faradaic current bias
    /// the extrapolation.
    pub fit_samples: usize,
}

impl Default for CdlOptions {
    fn default() -> Self {
        Self {
            skip_samples: 3,
            fit_samples: 8,
        }
    }
}

/// Double-layer capacitance from CV vertex current jumps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CdlEstimate {
    /// Mean over the vertices.
    pub C_dl_F: f64,
    pub n_vertices: usize,
    /// Sample standard deviation of the per-vertex values; `None` with one vertex.
    pub spread_F: Option<f64>,
    /// One value per accepted vertex, in time order.
    pub per_vertex_F: Vec<f64>,
}

/// [`estimate_C_dl_F_with`] with default options.
pub fn estimate_C_dl_F(
    t_s: &[f64],
    E_V: &[f64],
    I_A: &[f64],
) -> Result<CdlEstimate, AnalysisError> {
    estimate_C_dl_F_with(t_s, E_V, I_A, &CdlOptions::default())
}

/// Estimate C_dl from the current jumps at CV vertices.
///
/// Why this works: the total current is I = I_F + C_dl dE/dt. At a vertex
/// the scan rate flips sign (from s1 to s2) instantly, so the capacitive
/// part jumps by C_dl*(s2 - s1) = -2*C_dl*s1 for a symmetric scan, while the
/// faradaic current is continuous in time (it depends on the potential and
/// the concentrations, which are continuous). Only its *slope* changes at the
/// vertex, so I is extrapolated to the vertex time by a separate straight
/// line from each side; the difference of the two extrapolations is the
/// capacitive jump. The vertex time itself is where the two fitted E(t)
/// lines cross, which places it between samples. Each vertex gives
/// C_dl = dI / (s2 - s1); the estimate is their mean.
///
/// Vertices are the sign changes of dE/dt with at least
/// `skip_samples + fit_samples` monotonic samples on both sides; samples
/// with a non-finite t, E or I are ignored. A vertex whose two scan rates
/// differ by more than 4x is not a CV reversal and is ignored.
pub fn estimate_C_dl_F_with(
    t_s: &[f64],
    E_V: &[f64],
    I_A: &[f64],
    options: &CdlOptions,
) -> Result<CdlEstimate, AnalysisError> {
    check_len("E_V", t_s, E_V)?;
    check_len("I_A", t_s, I_A)?;
    let (skip, fit) = (options.skip_samples, options.fit_samples.max(2));

    let mut t = Vec::with_capacity(t_s.len());
    let mut e = Vec::with_capacity(t_s.len());
    let mut i = Vec::with_capacity(t_s.len());
    for k in 0..t_s.len() {
        if t_s[k].is_finite() && E_V[k].is_finite() && I_A[k].is_finite() {
            if let Some(&tp) = t.last()
                && t_s[k] < tp
            {
                return Err(AnalysisError::TimeOrder {
                    index: k,
                    before: tp,
                    after: t_s[k],
                });
            }
            t.push(t_s[k]);
            e.push(E_V[k]);
            i.push(I_A[k]);
        }
    }
    let n = t.len();
    if n < 2 * (skip + fit) + 1 {
        return Err(AnalysisError::Insufficient(format!(
            "{n} finite samples; a vertex needs {} on each side",
            skip + fit
        )));
    }

    // Direction of each step; flat steps continue the current direction.
    let mut dir = vec![0_i8; n - 1];
    let mut last = 0_i8;
    for k in 0..n - 1 {
        let d = e[k + 1] - e[k];
        let s = if d > 0.0 {
            1
        } else if d < 0.0 {
            -1
        } else {
            last
        };
        dir[k] = s;
        if s != 0 {
            last = s;
        }
    }
    let Some(&first) = dir.iter().find(|&&s| s != 0) else {
        return Err(AnalysisError::Degenerate(
            "E_V never changes: no CV vertex".to_owned(),
        ));
    };
    for s in dir.iter_mut().take_while(|s| **s == 0) {
        *s = first;
    }

    // Runs of equal direction: (first step, last step), inclusive.
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut start = 0;
    for k in 1..=dir.len() {
        if k == dir.len() || dir[k] != dir[start] {
            runs.push((start, k - 1));
            start = k;
        }
    }

    let mut per_vertex = Vec::new();
    for pair in runs.windows(2) {
        let ((a, _), (_, c)) = (pair[0], pair[1]);
        // v: the extreme sample (end of the first run, start of the second).
        let v = pair[1].0;
        if v < a + skip + fit || v + skip + fit > c + 1 {
            continue;
        }
        let before = v - skip - fit..v - skip;
        let after = v + skip + 1..v + skip + fit + 1;
        let (Some(e1), Some(e2), Some(i1), Some(i2)) = (
            Line::fit(&t[before.clone()], &e[before.clone()]),
            Line::fit(&t[after.clone()], &e[after.clone()]),
            Line::fit(&t[before.clone()], &i[before.clone()]),
            Line::fit(&t[after.clone()], &i[after.clone()]),
        ) else {
            continue;
        };
        let (s1, s2) = (e1.slope, e2.slope);
        let consistent = s1.signum() == f64::from(dir[v - 1]) && s2.signum() == f64::from(dir[v]);
        let (lo, hi) = (s1.abs().min(s2.abs()), s1.abs().max(s2.abs()));
        if !consistent || lo < 0.25 * hi {
            continue;
        }
        // Where the two potential lines cross: the reversal instant.
        // Solved relative to the extreme sample to avoid cancellation at large t.
        let t_v = t[v] + (e2.at(t[v]) - e1.at(t[v])) / (s1 - s2);
        if !(t[before.end - 1]..=t[after.start]).contains(&t_v) {
            continue;
        }
        let c_dl = (i2.at(t_v) - i1.at(t_v)) / (s2 - s1);
        if c_dl.is_finite() {
            per_vertex.push(c_dl);
        }
    }

    if per_vertex.is_empty() {
        return Err(AnalysisError::Insufficient(format!(
            "no CV vertex with {} monotonic samples on both sides",
            skip + fit
        )));
    }
    let m = per_vertex.len() as f64;
    let mean = per_vertex.iter().sum::<f64>() / m;
    if mean <= 0.0 {
        return Err(AnalysisError::Degenerate(format!(
            "current jumps at the {} vertices have the wrong sign for a capacitance \
             (mean {mean:.3e} F)",
            per_vertex.len()
        )));
    }
    let spread_F = (per_vertex.len() > 1)
        .then(|| (per_vertex.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / (m - 1.0)).sqrt());
    Ok(CdlEstimate {
        C_dl_F: mean,
        n_vertices: per_vertex.len(),
        spread_F,
        per_vertex_F: per_vertex,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn charge_of_constant_and_linear_currents_is_exact() {
        let t: Vec<f64> = (0..11).map(|k| k as f64 * 0.1).collect();
        let q = cumulative_charge_C(&t, &[2e-3; 11]).unwrap();
        assert!((q[10] - 2e-3).abs() < 1e-15);
        // I = t: Q = t^2/2, exact for the trapezoid rule on a linear function.
        let q = cumulative_charge_C(&t, &t).unwrap();
        for k in 0..11 {
            assert!((q[k] - t[k] * t[k] / 2.0).abs() < 1e-15);
        }
    }

    #[test]
    fn non_finite_samples_are_bridged() {
        let t = [0.0, 1.0, 2.0, f64::NAN, 4.0];
        let i = [1.0, f64::NAN, 1.0, 1.0, 3.0];
        let q = cumulative_charge_C(&t, &i).unwrap();
        assert_eq!(q[0], 0.0);
        assert!(q[1].is_nan() && q[3].is_nan());
        assert_eq!(q[2], 2.0); // 0 -> 2 s at 1 A
        assert_eq!(q[4], 2.0 + 4.0); // 2 -> 4 s, mean 2 A
    }

    #[test]
    fn bad_shapes_and_backwards_time_are_errors() {
        assert!(matches!(
            cumulative_charge_C(&[0.0, 1.0], &[0.0]),
            Err(AnalysisError::Length {
                name: "I_A",
                reference: "t_s",
                expected: 2,
                got: 1
            })
        ));
        assert!(matches!(
            cumulative_charge_C(&[0.0, 1.0, 0.5], &[0.0; 3]),
            Err(AnalysisError::TimeOrder { index: 2, .. })
        ));
        assert!(faradaic_charge_C(&[0.0], &[0.0], &[0.0], -1.0).is_err());
    }

    #[test]
    fn faradaic_charge_of_a_pure_capacitor_is_zero() {
        // Triangle 0 -> 1 -> 0 V at 1 V/s, C = 1 mF: I = C dE/dt.
        let t: Vec<f64> = (0..=200).map(|k| k as f64 * 0.01).collect();
        let e: Vec<f64> = t
            .iter()
            .map(|&t| if t <= 1.0 { t } else { 2.0 - t })
            .collect();
        let i: Vec<f64> = t
            .iter()
            .map(|&t| if t < 1.0 { 1e-3 } else { -1e-3 })
            .collect();
        let qf = faradaic_charge_C(&t, &e, &i, 1e-3).unwrap();
        // Only the sample interval at the vertex is off, by at most C*v*dt.
        for q in qf {
            assert!(q.abs() <= 1e-3 * 0.01 + 1e-15, "{q}");
        }
    }
}
