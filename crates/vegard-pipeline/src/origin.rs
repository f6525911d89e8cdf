//! The signal-origin separation of a run (issue 19): which ESM frequencies
//! and CV cycles go into [`vegard_analysis::separate_origins`], with the
//! cell's R_s and C_dl from the run's EIS fit.
//!
//! Attempted only when the run varies what tells the mechanisms apart:
//! ESM sweeps at two or more (dc potential, amplitude) settings, or CVs at
//! three or more scan rates. A single CV or a single ESM spectrum cannot
//! separate a first harmonic linear in `E` from Vegard strain with a
//! confidence worth printing; the run then gets a note saying what the
//! experiment needs (`recipes/signal-origin.toml`), not a result.

use std::collections::BTreeMap;

use vegard_analysis::{OriginCell, OriginStep, OriginStepKind, OriginWindow, SignalOrigin};
use vegard_recipe::{PlannedStep, Step};
use vegard_store::schema::EsmData;

use crate::spectra::EisStepFit;
use crate::steps::AlignedFile;
use crate::{AnalysisIssue, IssueKind, PipelineError};

/// The separation, or why there is none.
#[derive(Debug, Clone, Default)]
pub struct OriginOutcome {
    pub origin: Option<SignalOrigin>,
    /// Why the separation was not attempted (the run does not vary what
    /// tells the mechanisms apart); `None` when it was.
    pub note: Option<String>,
    /// What went wrong when it was attempted.
    pub issues: Vec<AnalysisIssue>,
}

/// The steps a separation would use, and whether they vary enough.
fn design_note(plan: &[PlannedStep]) -> Option<String> {
    let mut esm_settings: Vec<(f64, f64)> = Vec::new();
    let mut scan_rates: Vec<f64> = Vec::new();
    for p in plan {
        match &p.step {
            Step::EsmSweep(e)
                if !esm_settings
                    .iter()
                    .any(|&(d, a)| d == e.dc_V && a == e.amplitude_V) =>
            {
                esm_settings.push((e.dc_V, e.amplitude_V));
            }
            Step::Cv(c) if !scan_rates.contains(&c.scan_rate_V_per_s) => {
                scan_rates.push(c.scan_rate_V_per_s);
            }
            _ => {}
        }
    }
    if esm_settings.len() >= 2 || scan_rates.len() >= 3 {
        None
    } else {
        Some(format!(
            "not separated: the run has ESM sweeps at {} (dc potential, amplitude) setting(s) and \
             CVs at {} scan rate(s); telling Vegard strain from electrostatic, electrostrictive \
             and thermal deflection needs ESM sweeps at two or more dc potentials or amplitudes, \
             or CVs at three or more scan rates (see recipes/signal-origin.toml)",
            esm_settings.len(),
            scan_rates.len()
        ))
    }
}

/// Separate the run's deflection into its mechanisms (see the module doc).
/// `untrusted` lists plan steps whose clock alignment is untrusted (left
/// out); `esm` is `data/esm.parquet` (its unflagged frequencies are the ESM
/// windows, over the same periods the ESM spectrum used).
pub fn analyze_origin(
    plan: &[PlannedStep],
    aligned: &AlignedFile,
    eis: &[EisStepFit],
    esm: Option<&EsmData>,
    untrusted: &BTreeMap<i64, (i64, String)>,
) -> Result<OriginOutcome, PipelineError> {
    if let Some(note) = design_note(plan) {
        return Ok(OriginOutcome {
            note: Some(note),
            ..OriginOutcome::default()
        });
    }
    let mut out = OriginOutcome::default();
    let fail = |msg: String| AnalysisIssue::new(None, IssueKind::FitFailed, msg);
    // R_s and C_dl: the first usable EIS fit (the bench's and a real
    // cell's R_s barely change over a run; C_dl is a small correction).
    let Some(cell_fit) = eis.iter().find(|f| {
        f.R_s_ohm.is_finite() && f.R_s_ohm >= 0.0 && f.C_dl_F.is_finite() && f.C_dl_F > 0.0
    }) else {
        out.issues.push(fail(
            "signal origin: no usable EIS fit in the run, so R_s and C_dl are unknown: the \
             interface potential (electrostriction) and the faradaic charge (Vegard) cannot be \
             formed; add an EIS step"
                .into(),
        ));
        return Ok(out);
    };
    let cell = OriginCell {
        R_s_ohm: cell_fit.R_s_ohm,
        C_dl_F: cell_fit.C_dl_F,
    };
    let mut steps = Vec::new();
    for (k, p) in plan.iter().enumerate() {
        let k = k as i64;
        let (kind, windows): (OriginStepKind, Vec<OriginWindow>) = match &p.step {
            Step::EsmSweep(e) => {
                let Some(esm) = esm else { continue };
                let w = (0..esm.len())
                    .filter(|&r| esm.step[r] == k && esm.flagged[r] == 0)
                    .filter(|&r| esm.f_Hz[r].is_finite() && esm.t_start_s[r].is_finite())
                    .map(|r| OriginWindow {
                        f_Hz: esm.f_Hz[r],
                        t_start_s: esm.t_start_s[r],
                        periods: e.periods,
                    })
                    .collect();
                (
                    OriginStepKind::EsmSweep {
                        dc_V: e.dc_V,
                        amplitude_V: e.amplitude_V,
                    },
                    w,
                )
            }
            Step::Cv(c) => (
                OriginStepKind::Cv {
                    scan_rate_V_per_s: c.scan_rate_V_per_s,
                },
                Vec::new(), // from the rows below
            ),
            _ => continue,
        };
        if untrusted.contains_key(&k) {
            continue; // the ESM table and the CV analysis name these already
        }
        let a = aligned.step_rows(k)?;
        if a.is_empty() {
            continue;
        }
        let windows = match &p.step {
            Step::Cv(c) => cv_windows(&a.t_s, &a.cycle, c),
            _ => windows,
        };
        if windows.is_empty() {
            continue;
        }
        steps.push(OriginStep {
            step: k,
            kind,
            t_s: a.t_s,
            E_V: a.E_V,
            I_A: a.I_A,
            deflection_nm: a.deflection_nm,
            windows,
        });
    }
    match vegard_analysis::separate_origins(&steps, cell) {
        Ok(o) => out.origin = Some(o),
        Err(e) => out.issues.push(fail(format!("signal origin: {e}"))),
    }
    Ok(out)
}

/// One window per complete CV cycle: its rows' first sample less half a
/// sample interval, one period long. A cycle with fewer than 95 % of its
/// samples (a run stopped in it) is left out.
fn cv_windows(t_s: &[f64], cycle: &[i64], cv: &vegard_recipe::CvStep) -> Vec<OriginWindow> {
    let period_s = cv.cycle_span_V() / cv.scan_rate_V_per_s;
    let dt_s = cv.sample_interval_s();
    let want = cv.samples_per_cycle() as f64;
    let mut out = Vec::new();
    for c in 1..=i64::from(cv.cycles) {
        let rows: Vec<usize> = (0..t_s.len())
            .filter(|&i| cycle[i] == c && t_s[i].is_finite())
            .collect();
        let Some(&first) = rows.first() else { continue };
        if (rows.len() as f64) < 0.95 * want || period_s.is_nan() || period_s <= 0.0 {
            continue;
        }
        out.push(OriginWindow {
            f_Hz: 1.0 / period_s,
            t_start_s: t_s[first] - 0.5 * dt_s,
            periods: 1,
        });
    }
    out
}
