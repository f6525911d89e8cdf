//! Software lock-in: the phasors of a periodic signal at a known frequency
//! and its harmonics, over whole periods, for ESM frequency sweeps.
//!
//! Why a least-squares fit rather than the textbook sum
//! `Z_n = (2/N) sum s_k exp(-i n omega t_k)`: the two agree for uniform
//! samples over exactly whole periods, but the fit also stays exact when the
//! window is not an integer number of sample intervals long, when samples
//! are missing, and — most important for a passive AFM probe — when the
//! signal rides on a slow holder drift. Offset and a linear drift are fitted
//! jointly with the harmonics (PHYSICS.md §5, "drift removal ... jointly
//! with the periodic part"), so a ramp does not leak into the fundamental.
//!
//! Convention (PHYSICS.md §3): a signal `A cos(n omega t + phi)` has the
//! phasor `A exp(i phi)`: peak amplitude, phase relative to a cosine at
//! time zero of the shared timeline. Phasors of different channels taken on
//! the same timeline can therefore be divided directly: the ratio of the
//! deflection's and the potential's fundamentals is the ESM response in
//! nm/V with its phase lag.

use nalgebra::{DMatrix, DVector};
use num_complex::Complex64;
use serde::{Deserialize, Serialize};

use crate::AnalysisError;
use crate::linalg::ScaledSvd;

/// A complex amplitude: peak value and phase against a cosine at t = 0.
///
/// The arithmetic is [`Complex64`]'s (convert with `Complex64::from(p)` and
/// `Phasor::from(z)`); this type stays because it is what analysis.json and
/// the other crates see: it serializes as `{"re": .., "im": ..}` (a bare
/// `Complex64` would be a `[re, im]` pair) and names its parts in the
/// phasor convention (peak amplitude, phase in degrees).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Phasor {
    pub re: f64,
    pub im: f64,
}

impl Phasor {
    pub const fn new(re: f64, im: f64) -> Self {
        Phasor { re, im }
    }
    /// Peak amplitude.
    pub fn amplitude(self) -> f64 {
        Complex64::from(self).norm()
    }
    pub fn phase_rad(self) -> f64 {
        Complex64::from(self).arg()
    }
    pub fn phase_deg(self) -> f64 {
        self.phase_rad().to_degrees()
    }
    /// `self / other`; NaN parts if `other` is zero.
    pub fn ratio(self, other: Phasor) -> Phasor {
        (Complex64::from(self) / Complex64::from(other)).into()
    }
}

impl From<Complex64> for Phasor {
    fn from(z: Complex64) -> Self {
        Phasor::new(z.re, z.im)
    }
}

impl From<Phasor> for Complex64 {
    fn from(p: Phasor) -> Self {
        Complex64::new(p.re, p.im)
    }
}

/// Result of [`harmonics`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Harmonics {
    /// Fundamental frequency, Hz.
    pub f_Hz: f64,
    /// Samples inside the analysed window.
    pub n_samples: usize,
    /// Window `[t_start_s, t_end_s)`, whole periods long.
    pub t_start_s: f64,
    pub t_end_s: f64,
    /// Mean of the signal over the window (fitted offset at the window centre).
    pub mean: f64,
    /// Fitted linear drift, signal units per second.
    pub drift_per_s: f64,
    /// `phasors[n - 1]` is harmonic n (n = 1 is the fundamental).
    pub phasors: Vec<Phasor>,
    /// Rms of what the model leaves over: noise plus higher harmonics.
    pub residual_rms: f64,
}

impl Harmonics {
    /// The fundamental's phasor.
    pub fn fundamental(&self) -> Phasor {
        self.phasors
            .first()
            .copied()
            .unwrap_or(Phasor::new(f64::NAN, f64::NAN))
    }
}

/// Phasors of `x(t)` at `f_Hz` and its first `n_harmonics` harmonics, over
/// `periods` whole periods starting at `t_start_s`, with offset and linear
/// drift fitted jointly. Non-finite samples are skipped.
///
/// Needs at least `2 (n_harmonics + 2)` samples in the window (a few per
/// period in practice: the caller chooses the sampling).
pub fn harmonics(
    t_s: &[f64],
    x: &[f64],
    f_Hz: f64,
    t_start_s: f64,
    periods: u32,
    n_harmonics: usize,
) -> Result<Harmonics, AnalysisError> {
    if x.len() != t_s.len() {
        return Err(AnalysisError::Length {
            name: "x",
            reference: "t_s",
            expected: t_s.len(),
            got: x.len(),
        });
    }
    if !(f_Hz.is_finite() && f_Hz > 0.0) {
        return Err(AnalysisError::Parameter {
            name: "f_Hz",
            value: f_Hz,
            why: "must be a finite frequency > 0",
        });
    }
    if periods == 0 || n_harmonics == 0 {
        return Err(AnalysisError::Insufficient(
            "at least one period and one harmonic are needed".into(),
        ));
    }
    let t_end_s = t_start_s + f64::from(periods) / f_Hz;
    let t_mid = 0.5 * (t_start_s + t_end_s);
    let omega = 2.0 * std::f64::consts::PI * f_Hz;
    let k = 2 + 2 * n_harmonics;
    let (t_in, x_in): (Vec<f64>, Vec<f64>) = t_s
        .iter()
        .zip(x)
        .filter(|&(&t, &v)| t >= t_start_s && t < t_end_s && t.is_finite() && v.is_finite())
        .map(|(&t, &v)| (t, v))
        .unzip();
    let n = t_in.len();
    if n < 2 * k {
        return Err(AnalysisError::Insufficient(format!(
            "{n} samples in {periods} period(s) at {f_Hz} Hz from t = {t_start_s} s; need >= {}",
            2 * k
        )));
    }
    // Columns: offset, drift, then cos and sin of each harmonic.
    let basis = |row: usize, col: usize| {
        let t = t_in[row];
        match col {
            0 => 1.0,
            1 => t - t_mid,
            _ => {
                let w = omega * (1 + (col - 2) / 2) as f64 * t;
                if col.is_multiple_of(2) {
                    w.cos()
                } else {
                    w.sin()
                }
            }
        }
    };
    let design = DMatrix::from_fn(n, k, basis);
    let y = DVector::from_column_slice(&x_in);
    let c = ScaledSvd::new(design.clone(), RANK_TOLERANCE)
        .and_then(|svd| svd.solve(&y))
        .ok_or_else(|| {
        AnalysisError::Degenerate(format!(
            "samples do not resolve {n_harmonics} harmonic(s) of {f_Hz} Hz (sampling too coarse?)"
        ))
    })?;
    let residual = y - design * &c;
    let phasors = (0..n_harmonics)
        .map(|h| Phasor::new(c[2 + 2 * h], -c[3 + 2 * h]))
        .collect();
    Ok(Harmonics {
        f_Hz,
        n_samples: n,
        t_start_s,
        t_end_s,
        mean: c[0],
        drift_per_s: c[1],
        phasors,
        residual_rms: (residual.norm_squared() / n as f64).sqrt(),
    })
}

/// Smallest singular value of the column-scaled design matrix, relative to
/// the largest, that the fit accepts: `sqrt(1e-13)`, the pivot threshold on
/// the normal equations that the fit used before.
const RANK_TOLERANCE: f64 = 3.2e-7;

/// One frequency of an ESM sweep: the fundamentals of the cell potential,
/// the current and the deflection over the same whole periods, and their
/// ratios.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EsmPoint {
    pub f_Hz: f64,
    pub t_start_s: f64,
    pub periods: u32,
    pub E_V: Phasor,
    pub I_A: Phasor,
    pub deflection_nm: Phasor,
    /// Deflection per volt of potential: amplitude nm/V and phase, deg.
    pub response_nm_per_V: Phasor,
    /// Cell impedance E/I at this frequency, ohm (Z = V/I, PHYSICS.md §3).
    pub Z_ohm: Phasor,
    /// Second-harmonic deflection amplitude over the fundamental's (a V^2
    /// mechanism shows here, Vegard strain does not).
    pub deflection_h2_ratio: f64,
    /// Deflection noise left after the fit, nm rms.
    pub deflection_residual_nm_rms: f64,
}

/// Demodulate one ESM frequency from aligned samples (one time axis for all
/// three channels): `periods` whole periods from `t_start_s`.
pub fn esm_point(
    t_s: &[f64],
    E_V: &[f64],
    I_A: &[f64],
    deflection_nm: &[f64],
    f_Hz: f64,
    t_start_s: f64,
    periods: u32,
) -> Result<EsmPoint, AnalysisError> {
    let e = harmonics(t_s, E_V, f_Hz, t_start_s, periods, 2)?;
    let i = harmonics(t_s, I_A, f_Hz, t_start_s, periods, 2)?;
    let u = harmonics(t_s, deflection_nm, f_Hz, t_start_s, periods, 2)?;
    let e1 = e.fundamental();
    // "No modulation": below the fit's own noise floor, or rounding-level
    // against the dc potential.
    let floor = (e.residual_rms / (e.n_samples as f64).sqrt()).max(1e-12 * e.mean.abs());
    if e1.amplitude().is_nan() || e1.amplitude() <= 3.0 * floor {
        return Err(AnalysisError::Degenerate(format!(
            "no potential modulation at {f_Hz} Hz (is the lock-in's sine out connected?)"
        )));
    }
    let u1 = u.fundamental();
    let u2 = u.phasors.get(1).map_or(f64::NAN, |p| p.amplitude());
    Ok(EsmPoint {
        f_Hz,
        t_start_s,
        periods,
        E_V: e1,
        I_A: i.fundamental(),
        deflection_nm: u1,
        response_nm_per_V: u1.ratio(e1),
        Z_ohm: e1.ratio(i.fundamental()),
        deflection_h2_ratio: u2 / u1.amplitude(),
        deflection_residual_nm_rms: u.residual_rms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};

    fn grid(dt: f64, n: usize, t0: f64) -> Vec<f64> {
        (0..n).map(|k| t0 + k as f64 * dt).collect()
    }

    #[test]
    fn recovers_amplitude_and_phase_through_drift_and_noise() {
        // 0.05 Hz, 3 periods, 20 ms samples, 2 nm at +30 deg, a 0.5 nm/min
        // drift on a 100 nm offset, 20 pm noise, plus a 2nd harmonic.
        let f = 0.05;
        let t = grid(0.02, 4000, 7.3);
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let noise = Normal::new(0.0, 0.02).unwrap();
        let w = 2.0 * std::f64::consts::PI * f;
        let x: Vec<f64> = t
            .iter()
            .map(|&t| {
                100.0
                    + 0.5 / 60.0 * t
                    + 2.0 * (w * t + 30f64.to_radians()).cos()
                    + 0.1 * (2.0 * w * t - 1.0).cos()
                    + noise.sample(&mut rng)
            })
            .collect();
        let h = harmonics(&t, &x, f, 10.0, 3, 2).unwrap();
        let p = h.fundamental();
        assert!((p.amplitude() - 2.0).abs() < 2e-3, "{}", p.amplitude());
        assert!((p.phase_deg() - 30.0).abs() < 0.1, "{}", p.phase_deg());
        assert!((h.phasors[1].amplitude() - 0.1).abs() < 2e-3);
        assert!((h.phasors[1].phase_rad() + 1.0).abs() < 0.03);
        assert!((h.drift_per_s - 0.5 / 60.0).abs() < 1e-4);
        assert!((h.residual_rms - 0.02).abs() < 0.002);
        assert_eq!(h.n_samples, 3000);
    }

    #[test]
    fn esm_ratio_is_deflection_per_volt_with_its_lag() {
        // E = 10 mV cos(wt), u = 0.5 nm cos(wt - 60 deg), I = 1 mA cos(wt + 20 deg).
        let f = 0.2;
        let w = 2.0 * std::f64::consts::PI * f;
        let t = grid(0.01, 3000, 0.0);
        let e: Vec<f64> = t.iter().map(|&t| 0.4 + 0.01 * (w * t).cos()).collect();
        let i: Vec<f64> = t
            .iter()
            .map(|&t| 1e-3 * (w * t + 20f64.to_radians()).cos())
            .collect();
        let u: Vec<f64> = t
            .iter()
            .map(|&t| 0.5 * (w * t - 60f64.to_radians()).cos())
            .collect();
        let p = esm_point(&t, &e, &i, &u, f, 5.0, 4).unwrap();
        assert!((p.response_nm_per_V.amplitude() - 50.0).abs() < 1e-6);
        assert!((p.response_nm_per_V.phase_deg() + 60.0).abs() < 1e-6);
        assert!((p.Z_ohm.amplitude() - 10.0).abs() < 1e-6);
        assert!((p.Z_ohm.phase_deg() + 20.0).abs() < 1e-6);
        assert!(p.deflection_h2_ratio < 1e-9);
    }

    #[test]
    fn too_few_samples_and_no_modulation_are_errors() {
        let t = grid(1.0, 5, 0.0);
        let x = vec![0.0; 5];
        assert!(matches!(
            harmonics(&t, &x, 0.1, 0.0, 1, 1),
            Err(AnalysisError::Insufficient(_))
        ));
        let t = grid(0.01, 1000, 0.0);
        let flat = vec![0.4; 1000];
        assert!(matches!(
            esm_point(&t, &flat, &flat, &flat, 1.0, 0.0, 5),
            Err(AnalysisError::Degenerate(_))
        ));
        assert!(harmonics(&t, &flat, f64::NAN, 0.0, 1, 1).is_err());
    }
}
