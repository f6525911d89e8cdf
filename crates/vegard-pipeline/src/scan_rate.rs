//! Scan-rate analysis of a CV series (issue 19, item 4): the CV steps of a
//! run that share a temperature and use at least three distinct scan rates.
//!
//! Per CV step: the anodic and cathodic peak currents and their potentials,
//! the deformation's peak-to-peak swing, kappa (the step's deformation vs
//! charge fit) and the equivalent frequency `f_eq = 1 / period`. Over the
//! series: the b-values of `y = a v^b` for both peaks and the swing, the
//! Dunn split `i(E) = k1 v + k2 v^(1/2)` at five potentials per branch, and
//! the deformation per faradaic charge of the CVs and of the run's ESM
//! sweeps on one frequency axis (for pure Vegard strain both are kappa at
//! every frequency).
//!
//! **Which part of a CV step is used.** Peaks and the Dunn currents come
//! from the *last complete sweep* of each direction (a monotonic stretch of
//! potential from one vertex to the other, found from the measured
//! potential, not from the cycle numbers): a CV that starts between its
//! vertices (e.g. at the rest potential) has its first anodic stretch begin
//! from rest, whose current is a transient, not the periodic response; and
//! the cycle boundary lies inside the anodic sweep, so a whole anodic sweep
//! spans two cycles. The last sweeps are closest to the periodic state.
//! Averaging all complete sweeps would mix the transient of the first one
//! (from a film at rest) into a quantity meant to be periodic, and the
//! steps of a series usually run 1-3 cycles, so nothing would be gained in
//! noise. The swing is that of the last cycle that covers both vertices,
//! as the step's per-cycle fit measured it (drift removed).

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;
use vegard_analysis::dunn_split;
use vegard_analysis::{CellCorrection, Phasor, PowerLaw, b_value, deflection_per_faradaic_charge};
use vegard_recipe::{CvStep, PlannedStep, Step};
use vegard_store::schema::{EsmData, data_path};

use crate::analyze::CvStepAnalysis;
use crate::spectra::{SpectraAnalysis, c_dl_for_step};
use crate::steps::AlignedFile;
use crate::{AnalysisIssue, IssueKind, PipelineError};

/// A scan-rate series needs at least this many distinct scan rates: a
/// two-parameter fit (b and a; k1 and k2) needs a residual to have an error.
pub const MIN_SCAN_RATES: usize = 3;

/// Potentials of the Dunn split per branch, evenly inside the common window.
pub const DUNN_POTENTIALS: usize = 5;

/// One CV step of the series.
#[derive(Debug, Clone, Serialize)]
pub struct ScanRateStep {
    pub step: i64,
    pub scan_rate_V_per_s: f64,
    pub vertex_low_V: f64,
    pub vertex_high_V: f64,
    /// One cycle of the drive (begin -> vertex -> vertex -> begin), s.
    pub period_s: f64,
    /// `1 / period_s`: where this CV sits on the ESM spectrum's axis.
    pub f_eq_Hz: f64,
    /// Largest current of the last complete anodic sweep (A) and the
    /// potential where it lies (V); null when the sweep has no peak inside
    /// it (the current still rising at the vertex) or no complete sweep.
    pub I_peak_anodic_A: Option<f64>,
    pub E_peak_anodic_V: Option<f64>,
    /// Most negative current of the last complete cathodic sweep (A, signed).
    pub I_peak_cathodic_A: Option<f64>,
    pub E_peak_cathodic_V: Option<f64>,
    /// Cycle whose swing is given (the last one covering both vertices).
    pub swing_cycle: Option<i64>,
    /// Peak-to-peak deflection of that cycle after its fitted drift, nm.
    pub deflection_swing_nm: Option<f64>,
    /// The step's pooled deformation vs faradaic charge (`cv_steps[]`).
    pub kappa_nm_per_mC: f64,
    pub kappa_se_nm_per_mC: f64,
    pub kappa_ci95_nm_per_mC: [f64; 2],
}

/// `y = a v^b` over the series, with what it means.
#[derive(Debug, Clone, Serialize)]
pub struct PowerLawFit {
    pub b: f64,
    pub b_se: f64,
    pub b_ci95: [f64; 2],
    /// `log10 a`, `a` in the quantity's unit at 1 V/s.
    pub log10_a: f64,
    pub log10_a_se: f64,
    /// The steps fitted.
    pub steps: Vec<i64>,
    /// The verdict in words, judged with the 95 % interval.
    pub interpretation: String,
}

/// Sweep direction of a Dunn point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Branch {
    Anodic,
    Cathodic,
}

/// `i(v) = k1 v + k2 v^(1/2)` at one potential of one branch.
#[derive(Debug, Clone, Serialize)]
pub struct DunnPoint {
    pub branch: Branch,
    pub E_V: f64,
    /// The series' scan rates and the current at `E_V` on each (A),
    /// interpolated on the last complete sweep of the branch.
    pub scan_rate_V_per_s: Vec<f64>,
    pub I_A: Vec<f64>,
    pub k1_A_s_per_V: f64,
    pub k1_se_A_s_per_V: f64,
    pub k2_A_sqrt_s_per_V: f64,
    pub k2_se_A_sqrt_s_per_V: f64,
    pub k1_k2_correlation: f64,
    /// `k1 v / (k1 v + k2 v^(1/2))` at each scan rate.
    pub capacitive_fraction: Vec<f64>,
    /// Whether the two-term model describes these currents: both terms
    /// carry the current's sign (within 2 SE), so every fraction lies in
    /// [0, 1], and they fit the currents within [`DUNN_MAX_MISFIT`]. When the peak moves with
    /// scan rate (slow charge transfer, ohmic drop) the current at a fixed
    /// potential is not `k1 v + k2 v^(1/2)` and the split means nothing:
    /// then `false`, with why in `note`, and the fractions are not results.
    pub model_holds: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Deflection per faradaic charge at one ESM frequency.
#[derive(Debug, Clone, Serialize)]
pub struct EsmChargePoint {
    pub step: i64,
    pub f_Hz: f64,
    /// `|u1| / |Q_F1|`, nm/mC, signed by `Re(u1 / Q_F1)` like every kappa.
    pub u_per_Q_F_nm_per_mC: f64,
    /// `arg(u1 / Q_F1)`, degrees (+-180 for a film that expands on
    /// insertion, the bench's sign).
    pub phase_deg: f64,
}

/// The scan-rate analysis of one run.
#[derive(Debug, Clone, Serialize)]
pub struct ScanRateAnalysis {
    /// Stage setpoint of the series' steps (null without a stage step).
    pub setpoint_K: Option<f64>,
    /// In plan order.
    pub steps: Vec<ScanRateStep>,
    pub b_anodic_peak: Option<PowerLawFit>,
    /// Of the cathodic peak's magnitude.
    pub b_cathodic_peak: Option<PowerLawFit>,
    /// Of the deformation's peak-to-peak swing: the deformation follows the
    /// charge per sweep, `Q ~ i / v`, so a current with exponent b gives a
    /// swing with exponent b - 1.
    pub b_deflection_swing: Option<PowerLawFit>,
    pub dunn: Vec<DunnPoint>,
    /// The run's ESM sweeps on the CVs' quantity (empty without ESM).
    pub esm_per_faradaic_charge: Vec<EsmChargePoint>,
    /// How the ESM points' double-layer current was removed.
    pub esm_note: Option<String>,
    /// Anything else a reader must know (a second series not analysed).
    pub notes: Vec<String>,
}

/// The CV steps forming a series: grouped by stage setpoint, the first
/// group with at least [`MIN_SCAN_RATES`] distinct planned scan rates.
/// Returns the planned steps of that group and how many groups qualified.
fn series_of(plan: &[PlannedStep]) -> (Vec<(usize, &CvStep)>, Option<f64>, usize) {
    type Group<'a> = (Option<f64>, Vec<(usize, &'a CvStep)>);
    let mut groups: Vec<Group<'_>> = Vec::new();
    for (k, p) in plan.iter().enumerate() {
        let Step::Cv(cv) = &p.step else { continue };
        let sp = p.label.setpoint_K;
        match groups.iter_mut().find(|(s, _)| *s == sp) {
            Some((_, g)) => g.push((k, cv)),
            None => groups.push((sp, vec![(k, cv)])),
        }
    }
    let mut qualified = groups.into_iter().filter(|(_, g)| {
        distinct_rates(g.iter().map(|(_, cv)| cv.scan_rate_V_per_s)) >= MIN_SCAN_RATES
    });
    let first = qualified.next();
    let more = qualified.count();
    match first {
        Some((sp, g)) => (g, sp, 1 + more),
        None => (Vec::new(), None, 0),
    }
}

/// Scan rates differing by more than 0.1 % from the next smaller one
/// count as distinct.
fn distinct_rates(v: impl Iterator<Item = f64>) -> usize {
    let mut v: Vec<f64> = v.filter(|x| x.is_finite() && *x > 0.0).collect();
    v.sort_by(f64::total_cmp);
    v.windows(2).filter(|w| w[1] > w[0] * 1.001).count() + usize::from(!v.is_empty())
}

fn cv_period_s(cv: &CvStep) -> f64 {
    let [v1, v2] = cv.vertex_V;
    ((v1 - cv.begin_V).abs() + (v2 - v1).abs() + (cv.begin_V - v2).abs()) / cv.scan_rate_V_per_s
}

/// The scan-rate analysis of a run, if its plan has a CV series (else
/// `None`, silently: an ordinary run has no series). What cannot be
/// analysed goes to `errors`, naming the step(s).
pub(crate) fn analyze_scan_rate(
    dir: &Path,
    plan: &[PlannedStep],
    cv_steps: &[CvStepAnalysis],
    spectra: &SpectraAnalysis,
    aligned: &AlignedFile,
    errors: &mut Vec<AnalysisIssue>,
) -> Result<Option<ScanRateAnalysis>, PipelineError> {
    let (series, setpoint_K, n_series) = series_of(plan);
    if series.is_empty() {
        return Ok(None);
    }
    let names = step_list(series.iter().map(|(k, _)| *k as i64));
    let mut notes = Vec::new();
    if n_series > 1 {
        notes.push(format!(
            "{} CV series at different setpoints; only the first (steps {names}) is analysed here",
            n_series
        ));
    }
    let mut steps = Vec::new();
    for &(k, cv) in &series {
        // Steps not analysed (no data, untrusted clock, failed fit) have
        // their own issue already.
        let Some(a) = cv_steps.iter().find(|s| s.step == k as i64) else {
            continue;
        };
        let s = aligned.cv_samples(k as i64)?;
        steps.push(step_of(
            k as i64, cv, a, &s.t_s, &s.E_V, &s.I_A, &s.cycle, errors,
        ));
    }
    if distinct_rates(steps.iter().map(|s| s.scan_rate_V_per_s)) < MIN_SCAN_RATES {
        errors.push(AnalysisIssue::new(
            None,
            IssueKind::NoData,
            format!(
                "scan-rate series (steps {names}): {} distinct scan rate(s) analysed, the analysis \
                 needs {MIN_SCAN_RATES}",
                distinct_rates(steps.iter().map(|s| s.scan_rate_V_per_s))
            ),
        ));
        return Ok(None);
    }
    let fit = |name: &str,
               y: &dyn Fn(&ScanRateStep) -> Option<f64>,
               swing: bool,
               errors: &mut Vec<AnalysisIssue>| {
        let pts: Vec<(i64, f64, f64)> = steps
            .iter()
            .filter_map(|s| y(s).map(|y| (s.step, s.scan_rate_V_per_s, y)))
            .collect();
        let v: Vec<f64> = pts.iter().map(|p| p.1).collect();
        let yy: Vec<f64> = pts.iter().map(|p| p.2).collect();
        let fitted = step_list(pts.iter().map(|p| p.0));
        match b_value(&v, &yy) {
            Ok(p) => Some(power_law(&p, pts.iter().map(|p| p.0).collect(), swing)),
            Err(e) => {
                errors.push(AnalysisIssue::new(
                    None,
                    IssueKind::FitFailed,
                    format!("scan-rate series (steps {fitted}): b-value of the {name}: {e}"),
                ));
                None
            }
        }
    };
    let b_anodic_peak = fit("anodic peak current", &|s| s.I_peak_anodic_A, false, errors);
    let b_cathodic_peak = fit(
        "cathodic peak current",
        &|s| s.I_peak_cathodic_A.map(f64::abs),
        false,
        errors,
    );
    let b_deflection_swing = fit(
        "deformation swing",
        &|s| s.deflection_swing_nm.filter(|x| *x > 0.0),
        true,
        errors,
    );
    let dunn = dunn_points(&series, cv_steps, aligned, errors)?;
    let (esm_per_faradaic_charge, esm_note) = esm_points(dir, plan, spectra)?;
    Ok(Some(ScanRateAnalysis {
        setpoint_K,
        steps,
        b_anodic_peak,
        b_cathodic_peak,
        b_deflection_swing,
        dunn,
        esm_per_faradaic_charge,
        esm_note,
        notes,
    }))
}

fn step_list(steps: impl Iterator<Item = i64>) -> String {
    steps.map(|s| s.to_string()).collect::<Vec<_>>().join(", ")
}

fn power_law(p: &PowerLaw, steps: Vec<i64>, swing: bool) -> PowerLawFit {
    let interpretation = if swing {
        let (b, lo, hi) = (p.b + 1.0, p.b_ci95[0] + 1.0, p.b_ci95[1] + 1.0);
        format!(
            "the swing follows the charge per sweep (Q ~ i/v), so b + 1 = {} is the current's \
             b seen through the deformation: {}",
            vegard_core::format::sig(b, 3),
            verdict(b, [lo, hi])
        )
    } else {
        verdict(p.b, p.b_ci95)
    };
    PowerLawFit {
        b: p.b,
        b_se: p.b_se,
        b_ci95: p.b_ci95,
        log10_a: p.log10_a,
        log10_a_se: p.log10_a_se,
        steps,
        interpretation,
    }
}

/// b = 1/2: diffusion-limited; b = 1: capacitive or surface-limited;
/// judged by whether the 95 % interval holds each.
pub(crate) fn verdict(b: f64, ci: [f64; 2]) -> String {
    let [lo, hi] = ci;
    let has = |x: f64| lo <= x && x <= hi;
    let range = format!(
        "b = {} (95 % interval [{}, {}])",
        vegard_core::format::sig(b, 3),
        vegard_core::format::sig(lo, 3),
        vegard_core::format::sig(hi, 3)
    );
    match (has(0.5), has(1.0)) {
        (true, true) => format!(
            "{range}: holds both 0.5 and 1, not decided (more scan rates or a wider range needed)"
        ),
        (true, false) => format!("{range}: consistent with 0.5, diffusion-limited"),
        (false, true) => format!("{range}: consistent with 1, capacitive or surface-limited"),
        (false, false) if lo > 0.5 && hi < 1.0 => format!(
            "{range}: between 0.5 and 1, partly diffusion-limited and partly surface-limited \
             (e.g. a film of finite thickness scanned near its diffusion time)"
        ),
        (false, false) if hi < 0.5 => format!(
            "{range}: below 0.5, rises slower than diffusion alone allows: the charge transfer \
             or the ohmic drop limits the peaks (they also move apart)"
        ),
        _ => format!("{range}: above 1, not a capacitive or diffusive current"),
    }
}

/// One monotonic stretch of potential, `start..=end` sample indices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sweep {
    pub start: usize,
    pub end: usize,
    pub branch: Branch,
}

/// Splits a potential record into monotonic sweeps. A reversal is declared
/// once the potential has moved back by more than `hysteresis_V` from its
/// running extreme, so noise on a measured potential does not split a
/// sweep; the turning point is the extreme itself.
pub(crate) fn sweeps(E_V: &[f64], hysteresis_V: f64) -> Vec<Sweep> {
    let n = E_V.len();
    if n < 2 {
        return Vec::new();
    }
    let mut turns = vec![0usize];
    let mut dir = 0i8;
    let (mut lo, mut hi) = (0usize, 0usize);
    let mut ext = 0usize;
    for i in 1..n {
        let e = E_V[i];
        match dir {
            0 => {
                if e < E_V[lo] {
                    lo = i;
                }
                if e > E_V[hi] {
                    hi = i;
                }
                if e - E_V[lo] > hysteresis_V {
                    if lo != 0 {
                        turns.push(lo);
                    }
                    dir = 1;
                    ext = i;
                } else if E_V[hi] - e > hysteresis_V {
                    if hi != 0 {
                        turns.push(hi);
                    }
                    dir = -1;
                    ext = i;
                }
            }
            1 => {
                if e >= E_V[ext] {
                    ext = i;
                } else if E_V[ext] - e > hysteresis_V {
                    turns.push(ext);
                    dir = -1;
                    ext = i;
                }
            }
            _ => {
                if e <= E_V[ext] {
                    ext = i;
                } else if e - E_V[ext] > hysteresis_V {
                    turns.push(ext);
                    dir = 1;
                    ext = i;
                }
            }
        }
    }
    if dir != 0 {
        turns.push(ext);
    }
    turns
        .windows(2)
        .filter(|w| w[1] > w[0])
        .map(|w| Sweep {
            start: w[0],
            end: w[1],
            branch: if E_V[w[1]] > E_V[w[0]] {
                Branch::Anodic
            } else {
                Branch::Cathodic
            },
        })
        .collect()
}

/// The last sweep of `branch` running from one vertex to the other (within
/// `tol_V` of each).
pub(crate) fn last_complete(
    sweeps: &[Sweep],
    E_V: &[f64],
    branch: Branch,
    [low_V, high_V]: [f64; 2],
    tol_V: f64,
) -> Option<Sweep> {
    sweeps.iter().rev().copied().find(|s| {
        let (a, b) = (E_V[s.start], E_V[s.end]);
        let (from, to) = match branch {
            Branch::Anodic => (low_V, high_V),
            Branch::Cathodic => (high_V, low_V),
        };
        s.branch == branch && (a - from).abs() <= tol_V && (b - to).abs() <= tol_V
    })
}

/// Centred moving average over `2 half + 1` samples, narrowed near the
/// ends so it stays centred (exact for a straight line everywhere).
pub(crate) fn moving_average(x: &[f64], half: usize) -> Vec<f64> {
    let n = x.len();
    (0..n)
        .map(|i| {
            let h = half.min(i).min(n - 1 - i);
            let w = &x[i - h..=i + h];
            w.iter().sum::<f64>() / w.len() as f64
        })
        .collect()
}

/// Samples averaged around each point of a sweep before its peak is taken:
/// a peak of raw samples is biased outward by the noise. 1/200 of the sweep
/// each side (3 mV of a 600 mV sweep sampled every mV) is far narrower
/// than a peak (~4 RT/F = 100 mV), so the average does not flatten it.
fn smoothing_half_width(n: usize) -> usize {
    (n / 200).clamp(1, 10)
}

/// The peak of a sweep: the largest current (anodic) or most negative
/// (cathodic) of the smoothed current, and its potential. An error, in
/// words, when the extreme lies at either end of the sweep (within 2 %):
/// then the current is still rising at the vertex and there is no peak.
pub(crate) fn peak(E_V: &[f64], I_A: &[f64], s: Sweep) -> Result<(f64, f64), String> {
    let e = &E_V[s.start..=s.end];
    let i = moving_average(&I_A[s.start..=s.end], smoothing_half_width(e.len()));
    let sign = match s.branch {
        Branch::Anodic => 1.0,
        Branch::Cathodic => -1.0,
    };
    let (k, &ik) = i
        .iter()
        .enumerate()
        .filter(|(_, x)| x.is_finite())
        .max_by(|a, b| (sign * a.1).total_cmp(&(sign * b.1)))
        .ok_or_else(|| "no finite current".to_owned())?;
    let margin = (e.len() / 50).max(2);
    if k < margin || k + margin >= e.len() {
        return Err(format!(
            "the current is largest at the end of the sweep ({} V): no peak inside the window",
            vegard_core::format::sig(e[k], 4)
        ));
    }
    if sign * ik <= 0.0 {
        return Err("the current never has the sweep's sign".to_owned());
    }
    Ok((ik, e[k]))
}

/// The (smoothed) current where a sweep first crosses `E_target_V`, by
/// linear interpolation; `None` when it does not reach it.
pub(crate) fn current_at(E_V: &[f64], I_A: &[f64], s: Sweep, E_target_V: f64) -> Option<f64> {
    let e = &E_V[s.start..=s.end];
    let i = moving_average(&I_A[s.start..=s.end], smoothing_half_width(e.len()));
    e.windows(2).enumerate().find_map(|(k, w)| {
        let (a, b) = (w[0] - E_target_V, w[1] - E_target_V);
        if a == 0.0 {
            Some(i[k])
        } else if a * b < 0.0 || b == 0.0 {
            let f = a / (a - b);
            Some(i[k] + f * (i[k + 1] - i[k]))
        } else {
            None
        }
    })
}

/// Finite samples only (a gap in the current or potential would break a
/// sweep or a peak).
fn finite(t_s: &[f64], E_V: &[f64], I_A: &[f64], cycle: &[i64]) -> (Vec<f64>, Vec<f64>, Vec<i64>) {
    let mut out = (Vec::new(), Vec::new(), Vec::new());
    for k in 0..t_s.len().min(E_V.len()).min(I_A.len()).min(cycle.len()) {
        if t_s[k].is_finite() && E_V[k].is_finite() && I_A[k].is_finite() {
            out.0.push(E_V[k]);
            out.1.push(I_A[k]);
            out.2.push(cycle[k]);
        }
    }
    out
}

/// Vertices of a CV, `[low, high]`, and the tolerance within which a
/// sweep counts as reaching one: 2 % of the window or two potential steps.
fn window(cv: &CvStep) -> ([f64; 2], f64) {
    let [a, b] = cv.vertex_V;
    let (lo, hi) = (a.min(b), a.max(b));
    ([lo, hi], (0.02 * (hi - lo)).max(2.0 * cv.step_V.abs()))
}

#[allow(clippy::too_many_arguments)]
fn step_of(
    step: i64,
    cv: &CvStep,
    a: &CvStepAnalysis,
    t_s: &[f64],
    E_V: &[f64],
    I_A: &[f64],
    cycle: &[i64],
    errors: &mut Vec<AnalysisIssue>,
) -> ScanRateStep {
    let (E, I, cyc) = finite(t_s, E_V, I_A, cycle);
    let ([lo, hi], tol) = window(cv);
    let sw = sweeps(&E, tol);
    let mut peak_of = |branch: Branch| -> (Option<f64>, Option<f64>) {
        let name = match branch {
            Branch::Anodic => "anodic",
            Branch::Cathodic => "cathodic",
        };
        let Some(s) = last_complete(&sw, &E, branch, [lo, hi], tol) else {
            errors.push(AnalysisIssue::new(
                step,
                IssueKind::NoData,
                format!(
                    "step {step} (cv): no complete {name} sweep from vertex to vertex: left out of \
                     the scan-rate series' {name} peak and Dunn split (run 2 cycles when the CV \
                     starts between its vertices)"
                ),
            ));
            return (None, None);
        };
        match peak(&E, &I, s) {
            Ok((i, e)) => (Some(i), Some(e)),
            Err(why) => {
                errors.push(AnalysisIssue::new(
                    step,
                    IssueKind::FitFailed,
                    format!("step {step} (cv): {name} peak: {why}; left out of its b-value"),
                ));
                (None, None)
            }
        }
    };
    let (I_pa, E_pa) = peak_of(Branch::Anodic);
    let (I_pc, E_pc) = peak_of(Branch::Cathodic);
    // The last cycle whose samples reach both vertices.
    let swing_cycle = cyc
        .iter()
        .copied()
        .collect::<BTreeSet<i64>>()
        .into_iter()
        .rev()
        .find(|&c| {
            let (mn, mx) = E
                .iter()
                .zip(&cyc)
                .filter(|(_, k)| **k == c)
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (e, _)| {
                    (a.min(*e), b.max(*e))
                });
            mn <= lo + tol && mx >= hi - tol
        });
    let dvc = &a.analysis.deformation_vs_charge;
    let swing = swing_cycle.and_then(|c| {
        dvc.per_cycle
            .iter()
            .find(|f| f.cycle == c)
            .map(|f| f.deflection_swing_nm)
            .filter(|x| x.is_finite())
    });
    if swing.is_none() {
        errors.push(AnalysisIssue::new(
            step,
            IssueKind::NoData,
            format!(
                "step {step} (cv): no fitted cycle reaches both vertices: left out of the \
                 scan-rate series' deformation swing"
            ),
        ));
    }
    let period_s = cv_period_s(cv);
    ScanRateStep {
        step,
        scan_rate_V_per_s: cv.scan_rate_V_per_s,
        vertex_low_V: lo,
        vertex_high_V: hi,
        period_s,
        f_eq_Hz: 1.0 / period_s,
        I_peak_anodic_A: I_pa,
        E_peak_anodic_V: E_pa,
        I_peak_cathodic_A: I_pc,
        E_peak_cathodic_V: E_pc,
        swing_cycle: swing.and(swing_cycle),
        deflection_swing_nm: swing,
        kappa_nm_per_mC: dvc.slope_nm_per_mC,
        kappa_se_nm_per_mC: dvc.slope_se_nm_per_mC,
        kappa_ci95_nm_per_mC: dvc.slope_ci95_nm_per_mC,
    }
}

/// Dunn split at [`DUNN_POTENTIALS`] potentials per branch, evenly inside
/// the window every CV of the series covers (vertices excluded: there the
/// current jumps with the double layer).
fn dunn_points(
    series: &[(usize, &CvStep)],
    cv_steps: &[CvStepAnalysis],
    aligned: &AlignedFile,
    errors: &mut Vec<AnalysisIssue>,
) -> Result<Vec<DunnPoint>, PipelineError> {
    // Per analysed step: its sweeps, read once.
    struct Sw {
        v: f64,
        E: Vec<f64>,
        I: Vec<f64>,
        anodic: Option<Sweep>,
        cathodic: Option<Sweep>,
    }
    let mut per = Vec::new();
    let (mut lo, mut hi) = (f64::NEG_INFINITY, f64::INFINITY);
    for &(k, cv) in series {
        if !cv_steps.iter().any(|s| s.step == k as i64) {
            continue;
        }
        let s = aligned.cv_samples(k as i64)?;
        let (E, I, _) = finite(&s.t_s, &s.E_V, &s.I_A, &s.cycle);
        let (w, tol) = window(cv);
        let sw = sweeps(&E, tol);
        lo = lo.max(w[0]);
        hi = hi.min(w[1]);
        per.push(Sw {
            v: cv.scan_rate_V_per_s,
            anodic: last_complete(&sw, &E, Branch::Anodic, w, tol),
            cathodic: last_complete(&sw, &E, Branch::Cathodic, w, tol),
            E,
            I,
        });
    }
    let names = step_list(series.iter().map(|(k, _)| *k as i64));
    // NaN-safe: a window that is empty or not finite.
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        errors.push(AnalysisIssue::new(
            None,
            IssueKind::NoData,
            format!(
                "scan-rate series (steps {names}): Dunn split: the CVs share no potential window"
            ),
        ));
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for branch in [Branch::Anodic, Branch::Cathodic] {
        for j in 0..DUNN_POTENTIALS {
            let E_V = lo + (hi - lo) * (j + 1) as f64 / (DUNN_POTENTIALS + 1) as f64;
            let (v, I): (Vec<f64>, Vec<f64>) = per
                .iter()
                .filter_map(|p| {
                    let s = match branch {
                        Branch::Anodic => p.anodic,
                        Branch::Cathodic => p.cathodic,
                    }?;
                    current_at(&p.E, &p.I, s, E_V).map(|i| (p.v, i))
                })
                .unzip();
            match dunn_split(&v, &I) {
                Ok(d) => out.push(DunnPoint {
                    model_holds: dunn_holds(&d, &v, &I).is_none(),
                    note: dunn_holds(&d, &v, &I),
                    branch,
                    E_V,
                    capacitive_fraction: v.iter().map(|&v| d.capacitive_fraction(v)).collect(),
                    scan_rate_V_per_s: v,
                    I_A: I,
                    k1_A_s_per_V: d.k1_A_s_per_V,
                    k1_se_A_s_per_V: d.k1_se_A_s_per_V,
                    k2_A_sqrt_s_per_V: d.k2_A_sqrt_s_per_V,
                    k2_se_A_sqrt_s_per_V: d.k2_se_A_sqrt_s_per_V,
                    k1_k2_correlation: d.k1_k2_correlation,
                }),
                Err(e) => errors.push(AnalysisIssue::new(
                    None,
                    IssueKind::FitFailed,
                    format!(
                        "scan-rate series (steps {names}): Dunn split at {} V ({}): {e}",
                        vegard_core::format::sig(E_V, 4),
                        match branch {
                            Branch::Anodic => "anodic",
                            Branch::Cathodic => "cathodic",
                        }
                    ),
                )),
            }
        }
    }
    Ok(out)
}

/// Largest rms misfit of the Dunn model, as a fraction of the currents'
/// rms, for it to count as describing them. Noise on bench peaks is
/// ~0.1 %; where the peak moves with scan rate the misfit is 10-60 %.
pub const DUNN_MAX_MISFIT: f64 = 0.05;

/// `None` when the Dunn model holds at a point, else why not: k1 and k2
/// must have the sign of the current (within 2 SE), so every capacitive
/// fraction lies in [0, 1], and the two terms must fit the currents to
/// within [`DUNN_MAX_MISFIT`] of their rms.
fn dunn_holds(d: &vegard_analysis::DunnSplit, v: &[f64], I: &[f64]) -> Option<String> {
    let rms = |x: &mut dyn Iterator<Item = f64>| {
        let (s, n) = x.fold((0.0, 0usize), |(s, n), x| (s + x * x, n + 1));
        (s / n.max(1) as f64).sqrt()
    };
    let mean = I.iter().sum::<f64>() / I.len().max(1) as f64;
    let sign = if mean < 0.0 { -1.0 } else { 1.0 };
    let wrong = |k: f64, se: f64| sign * k < -2.0 * se;
    let mut why: Vec<String> = [
        ("k1", wrong(d.k1_A_s_per_V, d.k1_se_A_s_per_V)),
        ("k2", wrong(d.k2_A_sqrt_s_per_V, d.k2_se_A_sqrt_s_per_V)),
    ]
    .into_iter()
    .filter(|&(_, w)| w)
    .map(|(n, _)| format!("{n} has the wrong sign (beyond 2 SE)"))
    .collect();
    let misfit = rms(&mut v
        .iter()
        .zip(I)
        .map(|(&v, &i)| i - d.k1_A_s_per_V * v - d.k2_A_sqrt_s_per_V * v.sqrt()))
        / rms(&mut I.iter().copied());
    // NaN (no current at all) does not hold either.
    if misfit.partial_cmp(&DUNN_MAX_MISFIT) != Some(std::cmp::Ordering::Less) {
        why.push(format!(
            "the two terms miss the currents by {} % rms (more than {} %)",
            vegard_core::format::sig(100.0 * misfit, 2),
            100.0 * DUNN_MAX_MISFIT
        ));
    }
    (!why.is_empty()).then(|| {
        format!(
            "{}: the current at this potential is not k1 v + k2 v^(1/2); typically the peak \
             moves with scan rate (slow charge transfer, ohmic drop) or the film's finite \
             thickness changes the regime across the series, so the capacitive fraction is \
             not given",
            why.join("; ")
        )
    })
}

/// `u1 / Q_F1` at every ESM frequency of the run's fitted sweeps, with
/// `Q_F1 = I_F1 / (j 2 pi f)` and `I_F1 = I1 - j 2 pi f C_dl (E1 - I1 R_s)`
/// (the double layer charged by the interface potential); C_dl and R_s
/// from the EIS the sweep's fit used, else the nearest EIS of the run,
/// else none (`Q` from `I1` alone: the double layer's charge then counts
/// as faradaic, which lowers `|u/Q|` where `omega C_dl |Z_F|` is not
/// small, at high frequency).
fn esm_points(
    dir: &Path,
    plan: &[PlannedStep],
    spectra: &SpectraAnalysis,
) -> Result<(Vec<EsmChargePoint>, Option<String>), PipelineError> {
    if spectra.esm.is_empty() {
        return Ok((Vec::new(), None));
    }
    let Some(t) = EsmData::read_parquet_if_exists(&data_path(dir, EsmData::FILE))? else {
        return Ok((Vec::new(), None));
    };
    let mut out = Vec::new();
    let mut uncorrected = Vec::new();
    for fit in &spectra.esm {
        let k = fit.step;
        let eis = fit
            .eis_step
            .and_then(|s| spectra.eis.iter().find(|e| e.step == s))
            .or_else(|| {
                usize::try_from(k)
                    .ok()
                    .and_then(|k| c_dl_for_step(&spectra.eis, plan, k))
                    .and_then(|(_, s)| spectra.eis.iter().find(|e| e.step == s))
            })
            .filter(|e| e.C_dl_F.is_finite() && e.R_s_ohm.is_finite());
        let cell = CellCorrection {
            R_s_ohm: eis.map_or(0.0, |e| e.R_s_ohm),
            R_ct_ohm: eis.map_or(0.0, |e| e.R_ct_ohm),
            C_dl_F: eis.map_or(0.0, |e| e.C_dl_F),
            thermal_voltage_V: None,
        };
        if eis.is_none() {
            uncorrected.push(k);
        }
        let rows: Vec<usize> = (0..t.step.len())
            .filter(|&i| t.step[i] == k && t.flagged[i] == 0)
            .collect();
        let f: Vec<f64> = rows.iter().map(|&i| t.f_Hz[i]).collect();
        let response: Vec<Phasor> = rows
            .iter()
            .map(|&i| {
                let (s, c) = t.response_phase_deg[i].to_radians().sin_cos();
                Phasor::new(t.response_nm_per_V[i] * c, t.response_nm_per_V[i] * s)
            })
            .collect();
        let E: Vec<Phasor> = rows
            .iter()
            .map(|&i| Phasor::new(t.E_amp_V[i], 0.0))
            .collect();
        let I: Vec<Phasor> = rows
            .iter()
            .zip(&E)
            .map(|(&i, e)| e.ratio(Phasor::new(t.Z_re_ohm[i], t.Z_im_ohm[i])))
            .collect();
        let Ok(p) = deflection_per_faradaic_charge(&f, &response, &E, &I, &cell) else {
            continue;
        };
        for (&f_Hz, p) in f.iter().zip(p) {
            let m = p.amplitude();
            if !(m.is_finite() && f_Hz > 0.0) {
                continue;
            }
            out.push(EsmChargePoint {
                step: k,
                f_Hz,
                u_per_Q_F_nm_per_mC: if p.re < 0.0 { -m } else { m },
                phase_deg: p.phase_deg(),
            });
        }
    }
    let note = (!uncorrected.is_empty()).then(|| {
        format!(
            "ESM step(s) {}: no EIS fit with C_dl in the run, so Q is the whole current's \
             (I1 / (j 2 pi f)): the double layer's charge counts as faradaic and |u/Q| reads low \
             where it matters (high frequency)",
            step_list(uncorrected.into_iter())
        )
    });
    Ok((out, note))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// A triangle 0.4 -> 0.7 -> 0.1 -> 0.4, `cycles` times, sampled every
    /// `dE` V, with `noise` V of alternating noise on the potential.
    fn triangle(cycles: usize, dE: f64, noise: f64) -> Vec<f64> {
        let mut e = Vec::new();
        let mut x = 0.4;
        let mut k = 0;
        let mut push = |x: f64| {
            e.push(x + if k % 2 == 0 { noise } else { -noise });
            k += 1;
        };
        for _ in 0..cycles {
            while x < 0.7 - 1e-12 {
                push(x);
                x += dE;
            }
            while x > 0.1 + 1e-12 {
                push(x);
                x -= dE;
            }
            while x < 0.4 - 1e-12 {
                push(x);
                x += dE;
            }
        }
        push(x);
        e
    }

    /// One cycle starting between the vertices: an anodic stretch from the
    /// start, a complete cathodic sweep, an anodic stretch to the end; with
    /// two cycles there is a complete anodic sweep across the cycle
    /// boundary. Noise of 0.3 mV (below the 12 mV hysteresis) splits
    /// nothing.
    #[test]
    fn sweeps_and_complete_ones() {
        for noise in [0.0, 3e-4] {
            let e = triangle(1, 0.001, noise);
            let s = sweeps(&e, 0.012);
            assert_eq!(s.len(), 3, "{s:?}");
            assert_eq!(
                s.iter().map(|s| s.branch).collect::<Vec<_>>(),
                [Branch::Anodic, Branch::Cathodic, Branch::Anodic]
            );
            // Turning points at the vertices, within the noise.
            assert!((e[s[0].end] - 0.7).abs() < 1e-3, "{}", e[s[0].end]);
            assert!((e[s[1].end] - 0.1).abs() < 1e-3, "{}", e[s[1].end]);
            let w = [0.1, 0.7];
            assert!(last_complete(&s, &e, Branch::Anodic, w, 0.012).is_none());
            assert_eq!(
                last_complete(&s, &e, Branch::Cathodic, w, 0.012),
                Some(s[1])
            );

            let e = triangle(2, 0.001, noise);
            let s = sweeps(&e, 0.012);
            assert_eq!(s.len(), 5, "{s:?}");
            let an = last_complete(&s, &e, Branch::Anodic, w, 0.012).unwrap();
            assert_eq!(an, s[2]);
            assert_eq!((an.end - an.start) as i64, 600, "{an:?}");
            assert_eq!(
                last_complete(&s, &e, Branch::Cathodic, w, 0.012),
                Some(s[3])
            );
        }
    }

    /// Peak of a Gaussian current on a sweep, with noise: found at its
    /// potential and height within what the 7-point average allows; a
    /// current still rising at the vertex is no peak.
    #[test]
    fn peaks_of_known_shape() {
        let e: Vec<f64> = (0..=600).map(|k| 0.1 + 0.001 * k as f64).collect();
        let s = Sweep {
            start: 0,
            end: 600,
            branch: Branch::Anodic,
        };
        // 2 mA at 0.45 V, width 50 mV, +-10 uA alternating noise.
        let i: Vec<f64> = e
            .iter()
            .enumerate()
            .map(|(k, e)| {
                2e-3 * (-((e - 0.45) / 0.05f64).powi(2) / 2.0).exp()
                    + if k % 2 == 0 { 1e-5 } else { -1e-5 }
            })
            .collect();
        let (ip, ep) = peak(&e, &i, s).unwrap();
        assert!((ip / 2e-3 - 1.0).abs() < 2e-3, "{ip}");
        assert!((ep - 0.45).abs() < 0.0015, "{ep}");
        // Cathodic: the same mirrored.
        let neg: Vec<f64> = i.iter().map(|x| -x).collect();
        let sc = Sweep {
            branch: Branch::Cathodic,
            ..s
        };
        let (ic, ec) = peak(&e, &neg, sc).unwrap();
        assert!((ic / -2e-3 - 1.0).abs() < 2e-3 && (ec - 0.45).abs() < 0.0015);
        // Rising to the vertex: an error naming the vertex.
        let rising: Vec<f64> = e.iter().map(|e| e * 1e-3).collect();
        let err = peak(&e, &rising, s).unwrap_err();
        assert!(err.contains("end of the sweep (0.7 V)"), "{err}");
        // The wrong sign: no anodic peak.
        assert!(peak(&e, &neg, s).is_err());
    }

    /// Interpolation: a linear current is exact between samples, also on a
    /// descending sweep; a potential outside the sweep is None.
    #[test]
    fn current_interpolated_at_a_potential() {
        let e: Vec<f64> = (0..=60).map(|k| 0.7 - 0.01 * k as f64).collect();
        let i: Vec<f64> = e.iter().map(|e| 1e-3 * (e - 0.4)).collect();
        let s = Sweep {
            start: 0,
            end: 60,
            branch: Branch::Cathodic,
        };
        for target in [0.655, 0.4, 0.2003, 0.1] {
            let got = current_at(&e, &i, s, target).unwrap();
            assert!(
                (got - 1e-3 * (target - 0.4)).abs() < 1e-12,
                "{target}: {got}"
            );
        }
        assert!(current_at(&e, &i, s, 0.75).is_none());
        assert!(current_at(&e, &i, s, 0.05).is_none());
    }

    #[test]
    fn verdicts_are_judged_with_the_interval() {
        assert!(verdict(0.52, [0.45, 0.6]).contains("consistent with 0.5"));
        assert!(verdict(0.97, [0.9, 1.05]).contains("consistent with 1,"));
        assert!(verdict(0.75, [0.7, 0.8]).contains("between 0.5 and 1"));
        assert!(verdict(0.75, [0.4, 1.1]).contains("not decided"));
        assert!(verdict(0.37, [0.33, 0.41]).contains("below 0.5"));
        assert!(verdict(1.3, [1.2, 1.4]).contains("above 1"));
    }

    /// Currents that are `k1 v + k2 v^(1/2)` (0.3 % alternating noise):
    /// the model holds and the split's fractions lie in [0, 1], growing
    /// with v, near the true `k1 v / i`. A current that falls with scan
    /// rate at a fixed potential (a peak moving away) is refused.
    #[test]
    fn dunn_model_holds_only_where_it_describes_the_currents() {
        let v: [f64; 5] = [0.005, 0.01, 0.02, 0.05, 0.1];
        let (k1, k2): (f64, f64) = (1.5e-2, 5e-3);
        let i: Vec<f64> = v
            .iter()
            .enumerate()
            .map(|(n, &v)| (k1 * v + k2 * v.sqrt()) * if n % 2 == 0 { 1.003 } else { 0.997 })
            .collect();
        let d = dunn_split(&v, &i).unwrap();
        assert_eq!(dunn_holds(&d, &v, &i), None);
        for &v in &v {
            let f = d.capacitive_fraction(v);
            let truth = k1 * v / (k1 * v + k2 * v.sqrt());
            assert!((f - truth).abs() < 0.02, "{v}: {f} vs {truth}");
        }
        // Cathodic: the same, negative.
        let neg: Vec<f64> = i.iter().map(|x| -x).collect();
        let d = dunn_split(&v, &neg).unwrap();
        assert_eq!(dunn_holds(&d, &v, &neg), None);
        // Falling with v: k1 negative, misfit large.
        let falling: Vec<f64> = v.iter().map(|v| 2e-3 * (1.0 - 5.0 * v)).collect();
        let d = dunn_split(&v, &falling).unwrap();
        let why = dunn_holds(&d, &v, &falling).unwrap();
        assert!(why.contains("k1 has the wrong sign"), "{why}");
    }

    #[test]
    fn distinct_scan_rates() {
        assert_eq!(distinct_rates([0.1, 0.1, 0.10001, 0.2].into_iter()), 2);
        assert_eq!(distinct_rates([0.005, 0.01, 0.02].into_iter()), 3);
    }
}
