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

/// Why a run is not separated, or `None` when it varies enough.
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
    let cv_steps = plan
        .iter()
        .filter(|p| matches!(p.step, Step::Cv(_)))
        .count();
    let esm_steps = plan
        .iter()
        .filter(|p| matches!(p.step, Step::EsmSweep(_)))
        .count();
    if esm_steps == 0 && cv_steps < 2 {
        // A plain CV or EIS run: nothing that looks like an attempt.
        return Ok(OriginOutcome::default());
    }
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
        out.note = Some(
            "not separated: no usable EIS fit in the run, so R_s and C_dl are unknown and \
             neither the interface potential (electrostriction) nor the faradaic charge (Vegard) \
             can be formed; add an EIS step (recipes/signal-origin.toml)"
                .into(),
        );
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn plan(extra: &str) -> Vec<PlannedStep> {
        let text = format!(
            "[run]\nname = \"t\"\n[limits]\ncurrent_max_A = 0.01\npotential_window_V = [-0.2, 1.0]\n\
             [[step]]\nkind = \"ocp\"\nduration_s = 1.0\nsample_interval_s = 0.1\n{extra}"
        );
        vegard_recipe::parse_recipe(&text, "t.toml").unwrap().plan()
    }

    const ESM: &str = "[[step]]\nkind = \"esm_sweep\"\ndc_V = DC\namplitude_V = 0.02\n\
                       freq_range_Hz = [1.0, 0.1]\npoints_per_decade = 2\nperiods = 2\n";
    const CV: &str = "[[step]]\nkind = \"cv\"\nbegin_V = 0.4\nvertex_V = [0.6, 0.2]\n\
                      scan_rate_V_per_s = RATE\nstep_V = 0.002\ncycles = 2\n";

    /// One ESM spectrum or two CVs cannot separate the mechanisms: a note
    /// that says what the experiment needs, and no attempt. Two dc
    /// potentials, or three scan rates, are attempted.
    #[test]
    fn a_run_that_varies_nothing_gets_a_note_not_a_fit() {
        let one = plan(&ESM.replace("DC", "0.4"));
        let note = design_note(&one).unwrap();
        assert!(
            note.contains("1 (dc potential, amplitude) setting(s)"),
            "{note}"
        );
        assert!(note.contains("recipes/signal-origin.toml"), "{note}");
        let two_cv = plan(&(CV.replace("RATE", "0.05") + &CV.replace("RATE", "0.1")));
        assert!(design_note(&two_cv).is_some());
        let two_dc = plan(&(ESM.replace("DC", "0.3") + &ESM.replace("DC", "0.5")));
        assert_eq!(design_note(&two_dc), None);
        let three_cv = plan(
            &(CV.replace("RATE", "0.02")
                + &CV.replace("RATE", "0.05")
                + &CV.replace("RATE", "0.1")),
        );
        assert_eq!(design_note(&three_cv), None);
    }

    /// Each complete CV cycle is one window of one period from half a
    /// sample before its first sample; a cycle cut short is left out.
    #[test]
    fn cv_windows_are_the_complete_cycles() {
        let p = plan(&CV.replace("RATE", "0.1"));
        let Step::Cv(cv) = &p[1].step else {
            panic!("not a cv")
        };
        // 0.8 V per cycle at 0.1 V/s: 8 s, 400 samples of 20 ms.
        let dt = cv.sample_interval_s();
        let n = cv.samples_per_cycle() as usize;
        assert_eq!(n, 400);
        let mut t = Vec::new();
        let mut cycle = Vec::new();
        for k in 0..(n + n / 2) {
            t.push(10.0 + (k + 1) as f64 * dt);
            cycle.push(1 + (k / n) as i64);
        }
        let w = cv_windows(&t, &cycle, cv);
        assert_eq!(w.len(), 1, "the half cycle is left out");
        assert!((w[0].f_Hz - 1.0 / 8.0).abs() < 1e-12);
        assert!((w[0].t_start_s - (10.0 + 0.5 * dt)).abs() < 1e-9);
        assert_eq!(w[0].periods, 1);
    }
}
