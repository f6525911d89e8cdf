//! Frequency-domain analysis of a run folder: an equivalent-circuit fit of
//! every EIS step, a film-transfer fit of every ESM sweep (corrected with
//! the series resistance from the EIS of the same temperature), and, when
//! the run visited two or more temperatures, the Arrhenius comparison of
//! the diffusion time seen electrically (tau_EIS) and mechanically
//! (tau_ESM). Reads only `data/eis.parquet`, `data/esm.parquet` and the
//! recipe's plan; the analysis never knows whether the data came from the
//! virtual bench.

use std::path::Path;

use serde::Serialize;
use vegard_analysis::{
    Arrhenius, CellCorrection, Circuit, EaDifference, EisFit, EisWeighting, EsmFit, EsmFitOptions,
    Phasor, compare, deflection_per_faradaic_charge, fit_arrhenius, fit_circuit, fit_esm_h,
    fit_esm_h_corrected,
};
use vegard_recipe::{PlannedStep, Step};
use vegard_store::Table;

use crate::EngineError;

/// The cell's equivalent circuit: solution resistance, then the double
/// layer in parallel with charge transfer in series with the film's open
/// (reflective) finite Warburg (PHYSICS.md section 4). `Wo1_1` is the
/// film's diffusion time tau = L^2/D.
pub const CELL_CIRCUIT: &str = "R0-p(R1-Wo1,C1)";

/// One EIS step fitted with [`CELL_CIRCUIT`].
#[derive(Debug, Clone, Serialize)]
pub struct EisStepFit {
    pub step: i64,
    pub sweep_iteration: Option<u32>,
    pub setpoint_K: Option<f64>,
    /// Mean temperature measured during the step, K (NaN without a stage).
    pub T_K: f64,
    pub tau_s: f64,
    pub tau_se_s: f64,
    /// R0 + R1: what the film surface does not see of the cell potential.
    pub R_series_ohm: f64,
    pub fit: EisFit,
}

/// One ESM sweep fitted with the film transfer function.
#[derive(Debug, Clone, Serialize)]
pub struct EsmStepFit {
    pub step: i64,
    pub sweep_iteration: Option<u32>,
    pub setpoint_K: Option<f64>,
    pub T_K: f64,
    /// The EIS step whose R0, R1 and C1 corrected this fit, if any.
    pub eis_step: Option<i64>,
    pub fit: EsmFit,
    /// Deflection per faradaic charge at each frequency (needs the EIS):
    /// flat at kappa for pure Vegard strain.
    pub per_faradaic_charge: Vec<KappaPoint>,
}

/// `u / Q_F` at one ESM frequency.
#[derive(Debug, Clone, Serialize)]
pub struct KappaPoint {
    pub f_Hz: f64,
    /// |u / Q_F|, nm/mC.
    pub kappa_nm_per_mC: f64,
    /// arg(u / Q_F), degrees (+-180 for a film that shrinks on extraction).
    pub kappa_phase_deg: f64,
}

/// Activation energies of tau from both methods and their difference.
#[derive(Debug, Clone, Serialize)]
pub struct ArrheniusComparison {
    pub eis: Option<Arrhenius>,
    pub esm: Option<Arrhenius>,
    /// `esm - eis`, with the combined standard error.
    pub difference: Option<EaDifference>,
    /// D0 = L^2 / tau0 when the film thickness is known (virtual bench).
    pub film_thickness_m: Option<f64>,
    pub eis_D0_m2_per_s: Option<f64>,
    pub esm_D0_m2_per_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct SpectraAnalysis {
    pub eis: Vec<EisStepFit>,
    pub esm: Vec<EsmStepFit>,
    pub arrhenius: Option<ArrheniusComparison>,
    /// Steps that could not be fitted, and why.
    pub errors: Vec<String>,
}

/// The double-layer capacitance for plan step `k` from the EIS fits of the
/// same run: the fit of the same sweep iteration (same temperature) if
/// there is one, else the EIS step nearest in the plan. Returns C1 of
/// [`CELL_CIRCUIT`] (F) and the EIS step's index; `None` without a usable
/// fit (no EIS, or C1 not determined).
pub fn c_dl_for_step(eis: &[EisStepFit], plan: &[PlannedStep], k: usize) -> Option<(f64, i64)> {
    let iteration = plan.get(k).and_then(|p| p.label.sweep_iteration);
    let usable = |f: &&EisStepFit| {
        matches!((f.fit.get("C1"), f.fit.stderr_of("C1")),
                 (Some(c), Some(se)) if c.is_finite() && c > 0.0 && se.is_finite())
    };
    let nearest = |same_iteration: bool| {
        eis.iter()
            .filter(usable)
            .filter(|f| !same_iteration || f.sweep_iteration == iteration)
            .min_by_key(|f| (f.step - k as i64).unsigned_abs())
    };
    let pick = nearest(iteration.is_some()).or_else(|| nearest(false))?;
    Some((pick.fit.get("C1")?, pick.step))
}

fn mean_finite(v: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = v
        .filter(|x| x.is_finite())
        .fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 { f64::NAN } else { s / n as f64 }
}

fn read(dir: &Path, name: &str) -> Result<Option<Table>, EngineError> {
    let p = dir.join("data").join(name);
    if p.exists() {
        Ok(Some(vegard_store::read_parquet(&p)?))
    } else {
        Ok(None)
    }
}

/// Fit every EIS and ESM step of a finished run and compare the
/// temperature dependence of both taus. `film_thickness_m` (known on the
/// virtual bench) turns tau0 into D0.
pub fn analyze_spectra(
    dir: &Path,
    plan: &[PlannedStep],
    film_thickness_m: Option<f64>,
) -> Result<SpectraAnalysis, EngineError> {
    let mut out = SpectraAnalysis::default();
    let circuit = Circuit::parse(CELL_CIRCUIT).map_err(|e| EngineError::Finalize {
        dir: dir.display().to_string(),
        msg: e.to_string(),
    })?;
    if let Some(t) = read(dir, "eis.parquet")?
        && !t.is_empty()
    {
        let (step, f, zr, zi, T) = (
            t.i64("step")?,
            t.f64("f_Hz")?,
            t.f64("Z_re_ohm")?,
            t.f64("Z_im_ohm")?,
            t.f64("T_K")?,
        );
        for (k, p) in plan.iter().enumerate() {
            if !matches!(p.step, Step::Eis(_)) {
                continue;
            }
            let rows: Vec<usize> = (0..step.len()).filter(|&i| step[i] == k as i64).collect();
            if rows.is_empty() {
                out.errors
                    .push(format!("step {k} (eis): no impedance points"));
                continue;
            }
            let ff: Vec<f64> = rows.iter().map(|&i| f[i]).collect();
            let zz: Vec<(f64, f64)> = rows.iter().map(|&i| (zr[i], zi[i])).collect();
            match fit_circuit(&circuit, &ff, &zz, None, EisWeighting::Modulus) {
                Ok(fit) => {
                    let get = |n: &str| fit.get(n).unwrap_or(f64::NAN);
                    let se = |n: &str| fit.stderr_of(n).unwrap_or(f64::NAN);
                    out.eis.push(EisStepFit {
                        step: k as i64,
                        sweep_iteration: p.label.sweep_iteration,
                        setpoint_K: p.label.setpoint_K,
                        T_K: mean_finite(rows.iter().map(|&i| T[i])),
                        tau_s: get("Wo1_1"),
                        tau_se_s: se("Wo1_1"),
                        R_series_ohm: get("R0") + get("R1"),
                        fit,
                    });
                }
                Err(e) => out.errors.push(format!("step {k} (eis): {e}")),
            }
        }
    }
    if let Some(t) = read(dir, "esm.parquet")?
        && !t.is_empty()
    {
        let (step, f, amp, ph, e_amp, zr, zi, T) = (
            t.i64("step")?,
            t.f64("f_Hz")?,
            t.f64("response_nm_per_V")?,
            t.f64("response_phase_deg")?,
            t.f64("E_amp_V")?,
            t.f64("Z_re_ohm")?,
            t.f64("Z_im_ohm")?,
            t.f64("T_K")?,
        );
        for (k, p) in plan.iter().enumerate() {
            if !matches!(p.step, Step::EsmSweep(_)) {
                continue;
            }
            let rows: Vec<usize> = (0..step.len()).filter(|&i| step[i] == k as i64).collect();
            if rows.len() < 4 {
                out.errors.push(format!(
                    "step {k} (esm_sweep): {} demodulated frequencies, need >= 4",
                    rows.len()
                ));
                continue;
            }
            let ff: Vec<f64> = rows.iter().map(|&i| f[i]).collect();
            // Phasors relative to the potential's: E real, I = E / Z, u/V
            // from its amplitude and phase.
            let response: Vec<Phasor> = rows
                .iter()
                .map(|&i| {
                    let (s, c) = ph[i].to_radians().sin_cos();
                    Phasor::new(amp[i] * c, amp[i] * s)
                })
                .collect();
            let E: Vec<Phasor> = rows.iter().map(|&i| Phasor::new(e_amp[i], 0.0)).collect();
            let I: Vec<Phasor> = rows
                .iter()
                .zip(&E)
                .map(|(&i, e)| e.ratio(Phasor::new(zr[i], zi[i])))
                .collect();
            // The EIS of the same temperature: same sweep iteration, else
            // the latest EIS step before this one with the same setpoint.
            let eis = out
                .eis
                .iter()
                .rev()
                .filter(|s| s.step < k as i64)
                .find(|s| {
                    s.sweep_iteration == p.label.sweep_iteration
                        && s.setpoint_K == p.label.setpoint_K
                });
            let options = EsmFitOptions::default();
            let fitted = match eis {
                Some(s) if s.R_series_ohm.is_finite() => {
                    let get = |n: &str| s.fit.get(n).unwrap_or(f64::NAN);
                    let cell = CellCorrection {
                        R_s_ohm: get("R0"),
                        R_ct_ohm: get("R1"),
                        C_dl_F: get("C1"),
                    };
                    let per_q = deflection_per_faradaic_charge(&ff, &response, &E, &I, &cell)
                        .map(|v| {
                            ff.iter()
                                .zip(v)
                                .map(|(&f_Hz, p)| KappaPoint {
                                    f_Hz,
                                    kappa_nm_per_mC: p.amplitude(),
                                    kappa_phase_deg: p.phase_deg(),
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    fit_esm_h_corrected(&ff, &response, &E, &I, &cell, &options)
                        .map(|f| (f, Some(s.step), per_q))
                }
                _ => {
                    out.errors.push(format!(
                        "step {k} (esm_sweep): no EIS at the same temperature; tau_ESM \
                         uncorrected for R_s + R_ct (biased long)"
                    ));
                    fit_esm_h(&ff, &response, &options).map(|f| (f, None, Vec::new()))
                }
            };
            match fitted {
                Ok((fit, eis_step, per_faradaic_charge)) => out.esm.push(EsmStepFit {
                    step: k as i64,
                    sweep_iteration: p.label.sweep_iteration,
                    setpoint_K: p.label.setpoint_K,
                    T_K: mean_finite(rows.iter().map(|&i| T[i])),
                    eis_step,
                    fit,
                    per_faradaic_charge,
                }),
                Err(e) => out.errors.push(format!("step {k} (esm_sweep): {e}")),
            }
        }
    }
    let mut errors = Vec::new();
    out.arrhenius = arrhenius(&out, film_thickness_m, &mut errors);
    out.errors.extend(errors);
    Ok(out)
}

/// Arrhenius fits of tau_EIS and tau_ESM over the measured temperatures.
fn arrhenius(
    a: &SpectraAnalysis,
    film_thickness_m: Option<f64>,
    errors: &mut Vec<String>,
) -> Option<ArrheniusComparison> {
    let distinct = |T: &[f64]| {
        let mut t: Vec<f64> = T.iter().copied().filter(|x| x.is_finite()).collect();
        t.sort_by(f64::total_cmp);
        t.dedup_by(|x, y| (*x - *y).abs() < 0.5);
        t.len()
    };
    let mut fit = |what: &str, T: Vec<f64>, tau: Vec<f64>, se: Vec<f64>| {
        if distinct(&T) < 2 {
            return None;
        }
        match fit_arrhenius(&T, &tau, &se) {
            Ok(f) => Some(f),
            Err(e) => {
                errors.push(format!("arrhenius ({what}): {e}"));
                None
            }
        }
    };
    let eis = fit(
        "eis",
        a.eis.iter().map(|s| s.T_K).collect(),
        a.eis.iter().map(|s| s.tau_s).collect(),
        a.eis.iter().map(|s| s.tau_se_s).collect(),
    );
    let esm = fit(
        "esm",
        a.esm.iter().map(|s| s.T_K).collect(),
        a.esm.iter().map(|s| s.fit.tau_s).collect(),
        a.esm.iter().map(|s| s.fit.tau_se_s).collect(),
    );
    if eis.is_none() && esm.is_none() {
        return None;
    }
    let difference = match (&eis, &esm) {
        (Some(e), Some(m)) => Some(compare(m, e)),
        _ => None,
    };
    let d0 =
        |f: &Option<Arrhenius>| film_thickness_m.and_then(|l| f.as_ref().map(|f| f.D0_m2_per_s(l)));
    Some(ArrheniusComparison {
        eis_D0_m2_per_s: d0(&eis),
        esm_D0_m2_per_s: d0(&esm),
        eis,
        esm,
        difference,
        film_thickness_m,
    })
}
