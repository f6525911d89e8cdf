//! `vegard analyze`: the post-run analysis of one run folder, written to
//! `analysis.json` and summarised on stdout from the typed result; or of a
//! folder of runs (a campaign, as `vegard report` takes it): every run's
//! analysis and the Arrhenius comparison pooled over them, written to
//! `campaign-analysis.json`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use vegard_analysis::{CdlSource, HalfCycleFit, SweepDirection};
use vegard_pipeline::{
    ArrheniusComparison, Branch, CvStepAnalysis, RunAnalysis, ScanRateAnalysis, SpectraOptions,
};
use vegard_report::ReportKind;

use crate::input::{BadInput, bad_input};

/// The file a folder of runs' analysis is written to, in that folder.
pub const CAMPAIGN_ANALYSIS_FILE: &str = "campaign-analysis.json";

pub fn cmd_analyze(path: &Path, json: bool, include_partial_sweeps: bool) -> Result<ExitCode> {
    let opts = SpectraOptions {
        include_partial_sweeps,
        ..SpectraOptions::default()
    };
    if !path.exists() {
        return Err(BadInput(format!("{}: no such folder", path.display())).into());
    }
    let (kind, runs) = vegard_report::build::run_folders(path).map_err(bad_input)?;
    match kind {
        ReportKind::Run => analyze_one(path, json, &opts),
        ReportKind::Campaign => analyze_campaign(path, &runs, json, &opts),
    }
}

fn analyze_one(run: &Path, json: bool, opts: &SpectraOptions) -> Result<ExitCode> {
    let analysis = vegard_pipeline::analyze_run(run, opts)
        .with_context(|| format!("analysing {}", run.display()))?;
    let path = run.join(vegard_store::ANALYSIS_FILE);
    let text = serde_json::to_string_pretty(&analysis.to_json())?;
    std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    if json {
        println!("{text}");
    } else {
        print_summary(&analysis);
        println!("  written: {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Every run of the folder (each one's analysis.json written as `vegard
/// analyze RUN` writes it), then the Arrhenius comparison pooled over all
/// of them by measured temperature. A run that cannot be analysed is
/// named and the others still are; the exit status is then 1.
fn analyze_campaign(
    folder: &Path,
    runs: &[std::path::PathBuf],
    json: bool,
    opts: &SpectraOptions,
) -> Result<ExitCode> {
    eprintln!(
        "vegard analyze: analysing {} run(s) in {}",
        runs.len(),
        folder.display()
    );
    let mut analyses = Vec::new();
    let mut failed: Vec<(String, String)> = Vec::new();
    for (k, run) in runs.iter().enumerate() {
        eprintln!("  [{}/{}] {}", k + 1, runs.len(), run.display());
        match vegard_pipeline::analyze_run(run, opts) {
            Ok(a) => {
                let path = run.join(vegard_store::ANALYSIS_FILE);
                let text = serde_json::to_string_pretty(&a.to_json())?;
                std::fs::write(&path, &text)
                    .with_context(|| format!("writing {}", path.display()))?;
                analyses.push(a);
            }
            Err(e) => failed.push((run.display().to_string(), e.to_string())),
        }
    }
    let mut pooled_errors = Vec::new();
    let refs: Vec<&RunAnalysis> = analyses.iter().collect();
    let arrhenius =
        vegard_pipeline::pooled_arrhenius(&refs, opts.include_partial_sweeps, &mut pooled_errors);
    let doc = serde_json::json!({
        "folder": folder,
        "runs": analyses.iter().map(RunAnalysis::to_json).collect::<Vec<_>>(),
        "runs_not_analysed": failed
            .iter()
            .map(|(run, why)| serde_json::json!({"run_dir": run, "message": why}))
            .collect::<Vec<_>>(),
        "arrhenius": arrhenius,
        "analysis_errors": pooled_errors,
    });
    let path = folder.join(CAMPAIGN_ANALYSIS_FILE);
    let text = serde_json::to_string_pretty(&doc)?;
    std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    if json {
        println!("{text}");
    } else {
        for a in &analyses {
            print_summary(a);
        }
        println!(
            "{}: {} run(s) analysed, pooled over their measured temperatures",
            folder.display(),
            analyses.len()
        );
        match &arrhenius {
            Some(arr) => print_arrhenius(arr),
            None => println!("  Arrhenius: fewer than two temperatures with a spectrum fit"),
        }
        for e in &pooled_errors {
            println!("  error: {e}");
        }
        println!("  written: {}", path.display());
    }
    for (run, why) in &failed {
        eprintln!("vegard analyze: {run} not analysed: {why}");
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The human summary: the first CV step in detail, then every spectrum fit,
/// the Arrhenius comparison, and what could not be analysed.
fn print_summary(a: &RunAnalysis) {
    println!("{}", a.run_dir.display());
    match (&a.headline_withheld, a.cv_steps.first()) {
        (Some(issue), _) => println!("  deformation vs charge: withheld — {}", issue.message),
        (None, None) => println!("  no CV step could be analysed"),
        (None, Some(cv)) => {
            print_cv(cv);
            print_nonlinearity(cv);
        }
    }
    for s in &a.spectra.eis {
        println!(
            "  EIS step {} at {:.2} K: tau = {:.3} ± {:.3} s, R_s = {:.2} ohm, R_ct = {:.2} ohm ({})",
            s.step, s.T_K, s.tau_s, s.tau_se_s, s.R_s_ohm, s.R_ct_ohm, s.fit.circuit
        );
    }
    for s in &a.spectra.esm {
        println!(
            "  ESM step {} at {:.2} K: tau = {:.3} ± {:.3} s{}",
            s.step,
            s.T_K,
            s.fit.tau_s,
            s.fit.tau_se_s,
            if s.eis_step.is_none() {
                " (not corrected for R_s + R_ct)"
            } else {
                ""
            }
        );
    }
    if let Some(arr) = &a.spectra.arrhenius {
        print_arrhenius(arr);
    }
    match (&a.signal_origin, &a.signal_origin_note) {
        (Some(o), _) => print_origin(o),
        (None, Some(note)) => println!("  signal origin: {note}"),
        (None, None) => {}
    }
    if let Some(sr) = &a.scan_rate {
        print_scan_rate(sr);
    }
    for e in &a.analysis_errors {
        println!("  error: {e}");
    }
    for w in &a.analysis_warnings {
        println!("  warning: {w}");
    }
}

/// The signal-origin separation: the verdict, then each mechanism with its
/// coefficients and whether it is resolved.
fn print_origin(o: &vegard_analysis::SignalOrigin) {
    use vegard_analysis::{Estimate, Mechanism};
    use vegard_core::format::value_se;
    let est = |e: &Estimate, unit: &str| {
        format!(
            "{} {unit} [{}, {}]",
            value_se(e.value, Some(e.se)),
            vegard_core::format::sig(e.ci95[0], 4),
            vegard_core::format::sig(e.ci95[1], 4)
        )
    };
    let opt = |e: &Option<Estimate>, unit: &str, why: &str| match e {
        Some(e) => est(e, unit),
        None => format!("— ({why})"),
    };
    println!(
        "  signal origin ({} equations, reduced chi-square {:.2}): {}",
        o.n_equations, o.reduced_chi2, o.verdict_text
    );
    let c = &o.coefficients;
    for t in &o.mechanisms {
        let verdict = if t.significant {
            if t.p_value < 1e-4 {
                "resolved, p < 1e-4".to_string()
            } else {
                format!("resolved, p = {}", vegard_core::format::sig(t.p_value, 2))
            }
        } else {
            format!(
                "consistent with zero, p = {}",
                vegard_core::format::sig(t.p_value, 2)
            )
        };
        let what = match t.mechanism {
            Mechanism::Vegard => format!("kappa = {}", est(&c.kappa_nm_per_mC, "nm/mC")),
            Mechanism::Electrostatic => format!(
                "gamma = {}, V_cpd = {}",
                est(&c.electrostatic_nm_per_V2, "nm/V²"),
                opt(&c.V_cpd_V, "V", "not identifiable")
            ),
            Mechanism::Electrostriction => format!(
                "c = {}, E_zero = {}",
                est(&c.electrostriction_nm_per_V2, "nm/V²"),
                opt(&c.E_zero_V, "V", "not identifiable")
            ),
            Mechanism::JouleHeating => format!(
                "J = {}, tau = {}",
                est(&c.joule_nm_per_W, "nm/W"),
                opt(&c.joule_tau_s, "s", "not identifiable")
            ),
        };
        println!("    {:<17} {what} ({verdict})", t.mechanism.words());
    }
    for n in &o.notes {
        println!("    note: {n}");
    }
}

/// Activation energies from EIS and ESM and their difference.
fn print_arrhenius(arr: &ArrheniusComparison) {
    for (method, fit) in [("EIS", &arr.eis), ("ESM", &arr.esm)] {
        let Some(f) = fit else { continue };
        let ci = match f.ea_ci95_eV {
            Some([lo, hi]) => format!("95 % CI [{lo:.4}, {hi:.4}] eV"),
            None => "no interval (two temperatures)".to_string(),
        };
        println!(
            "  Arrhenius ({method}): Ea = {:.4} ± {:.4} eV ({:.1} kJ/mol), {ci}",
            f.ea_eV, f.ea_se_eV, f.ea_kJ_per_mol,
        );
    }
    if let Some(d) = &arr.difference {
        println!(
            "  Ea(ESM) - Ea(EIS) = {:+.4} ± {:.4} eV",
            d.diff_eV, d.se_eV
        );
    }
}

/// ", 4.2 dof" when the SE's degrees of freedom are few enough to widen
/// the interval beyond 1.96 SE.
fn dof_note(dof: f64) -> String {
    if dof.is_finite() && dof < 100.0 {
        format!(", {dof:.1} dof")
    } else {
        String::new()
    }
}

fn print_cv(cv: &CvStepAnalysis) {
    let dvc = &cv.analysis.deformation_vs_charge;
    println!(
        "  deformation vs faradaic charge: {:+.4} ± {:.4} nm/mC (95 % interval [{:+.4}, {:+.4}]{}), R² = {:.4}",
        dvc.slope_nm_per_mC,
        dvc.slope_se_nm_per_mC,
        dvc.slope_ci95_nm_per_mC[0],
        dvc.slope_ci95_nm_per_mC[1],
        dof_note(dvc.slope_dof),
        dvc.r2
    );
    for c in &dvc.per_cycle {
        println!(
            "    cycle {}: {:+.4} ± {:.4} nm/mC, R² = {:.4}",
            c.cycle, c.slope_nm_per_mC, c.slope_se_nm_per_mC, c.r2
        );
    }
    print_half_cycles(&dvc.per_half_cycle);
    let source = match dvc.C_dl_source {
        CdlSource::Eis => match cv.C_dl_eis_step {
            Some(step) => format!("from the EIS fit of step {step}"),
            None => "from EIS".to_string(),
        },
        CdlSource::VertexJump => "from the CV's vertex current jumps".to_string(),
        CdlSource::Given => "given".to_string(),
        CdlSource::Uncorrected => "not removed".to_string(),
    };
    println!("    C_dl = {:.1} µF ({source})", 1e6 * dvc.C_dl_F);
}

/// Anodic and cathodic sweep slopes, summarised: mean and spread per
/// direction (the full list is in analysis.json).
fn print_half_cycles(halves: &[HalfCycleFit]) {
    for (dir, name) in [
        (SweepDirection::Anodic, "anodic"),
        (SweepDirection::Cathodic, "cathodic"),
    ] {
        let slopes: Vec<f64> = halves
            .iter()
            .filter(|h| h.direction == dir)
            .map(|h| h.slope_nm_per_mC)
            .collect();
        if slopes.is_empty() {
            continue;
        }
        let mean = slopes.iter().sum::<f64>() / slopes.len() as f64;
        let (lo, hi) = slopes
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            });
        println!(
            "    {name} sweeps: {mean:+.4} nm/mC (mean of {}, range {lo:+.4} .. {hi:+.4})",
            slopes.len()
        );
    }
}

/// The nonlinearity of one CV step: headline numbers and the verdicts in
/// words.
fn print_nonlinearity(cv: &CvStepAnalysis) {
    let Some(nl) = &cv.analysis.nonlinearity else {
        if let Some(note) = &cv.analysis.nonlinearity_note {
            println!("  nonlinearity: {note}");
        }
        return;
    };
    let g = &nl.regression;
    println!(
        "  nonlinearity over {} periods of {:.2} s: THD u {:.1} %, Q_F {:.1} %, E {:.1} %; \
         lag of u behind Q_F {:+.1} ms",
        nl.n_periods,
        nl.period_s,
        100.0 * nl.thd_u,
        100.0 * nl.thd_Q_F,
        100.0 * nl.thd_E,
        1e3 * nl.lag_s,
    );
    println!(
        "    u = κQ + κ2Q² + βE + γE² + ...: κ(Q_F = 0) = {:+.4} ± {:.4} nm/mC, κ2 = {:+.2e} ± {:.1e} nm/mC², \
         β = {:+.3} ± {:.3} nm/V, γ = {:+.3} ± {:.3} nm/V²",
        g.kappa_at_Q0_nm_per_mC,
        g.kappa_at_Q0_se_nm_per_mC,
        g.kappa2_nm_per_mC2,
        g.kappa2_se_nm_per_mC2,
        g.beta_nm_per_V,
        g.beta_se_nm_per_V,
        g.gamma_nm_per_V2,
        g.gamma_se_nm_per_V2,
    );
    for line in &nl.findings {
        println!("    → {line}");
    }
}

/// The scan-rate series: one line per CV step, the b-values with their
/// verdicts, the Dunn split's capacitive fraction at each potential, and
/// the ESM's deformation per charge beside the CVs' kappa (the full
/// numbers are in analysis.json `scan_rate`).
fn print_scan_rate(sr: &ScanRateAnalysis) {
    let opt = |x: Option<f64>, scale: f64, digits: usize| match x {
        Some(x) => format!("{:.*}", digits, x * scale),
        None => "-".to_owned(),
    };
    println!(
        "  scan-rate series ({} CV steps): peaks of the last complete sweeps, swing of the last full cycle",
        sr.steps.len()
    );
    for s in &sr.steps {
        println!(
            "    step {}: {:.1} mV/s, I_pa = {} mA at {} V, I_pc = {} mA at {} V, swing {} nm, \
             kappa {:+.4} ± {:.4} nm/mC, f_eq = {:.3e} Hz",
            s.step,
            1e3 * s.scan_rate_V_per_s,
            opt(s.I_peak_anodic_A, 1e3, 3),
            opt(s.E_peak_anodic_V, 1.0, 3),
            opt(s.I_peak_cathodic_A, 1e3, 3),
            opt(s.E_peak_cathodic_V, 1.0, 3),
            opt(s.deflection_swing_nm, 1.0, 3),
            s.kappa_nm_per_mC,
            s.kappa_se_nm_per_mC,
            s.f_eq_Hz,
        );
    }
    for (name, fit) in [
        ("anodic peak current", &sr.b_anodic_peak),
        ("cathodic peak current", &sr.b_cathodic_peak),
        ("deformation swing", &sr.b_deflection_swing),
    ] {
        if let Some(f) = fit {
            println!(
                "    b ({name}) = {:.3} ± {:.3}: {}",
                f.b, f.b_se, f.interpretation
            );
        }
    }
    for branch in [Branch::Anodic, Branch::Cathodic] {
        let pts: Vec<String> = sr
            .dunn
            .iter()
            .filter(|d| d.branch == branch)
            .map(|d| {
                let f = &d.capacitive_fraction;
                if !d.model_holds {
                    return format!("{:.3} V model does not hold", d.E_V);
                }
                format!(
                    "{:.3} V {:.0}-{:.0} %",
                    d.E_V,
                    100.0 * f.first().copied().unwrap_or(f64::NAN),
                    100.0 * f.last().copied().unwrap_or(f64::NAN)
                )
            })
            .collect();
        if !pts.is_empty() {
            println!(
                "    Dunn capacitive fraction, {} sweeps (slowest-fastest scan): {}",
                if branch == Branch::Anodic {
                    "anodic"
                } else {
                    "cathodic"
                },
                pts.join(", ")
            );
        }
    }
    if !sr.esm_per_faradaic_charge.is_empty() {
        let (lo, hi) = sr
            .esm_per_faradaic_charge
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
                (a.min(p.u_per_Q_F_nm_per_mC), b.max(p.u_per_Q_F_nm_per_mC))
            });
        println!(
            "    ESM deformation per faradaic charge: {:+.4} .. {:+.4} nm/mC over {} frequencies",
            lo,
            hi,
            sr.esm_per_faradaic_charge.len()
        );
    }
    if sr.dunn.iter().any(|d| !d.model_holds) {
        println!(
            "    (where the model does not hold, k1 or k2 has the wrong sign: the peaks move with \
             scan rate, see analysis.json scan_rate.dunn[].note)"
        );
    }
    if let Some(n) = &sr.esm_note {
        println!("    note: {n}");
    }
    for n in &sr.notes {
        println!("    note: {n}");
    }
}
