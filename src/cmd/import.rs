//! `vegard import`: read a potentiostat file and a deflection trace with
//! `vegard_formats`, hand them to `vegard_pipeline::import_run`, print the
//! run folder and the alignment. Unreadable or unalignable input is bad
//! input (exit 2), with the message naming the file.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use vegard_pipeline::{ImportInput, ImportOptions, PotentiostatEvents, SyncChoice};

use crate::cli::{ImportArgs, SyncArg, SyncChannelArg};
use crate::input::bad_input;

pub fn cmd_import(args: &ImportArgs) -> Result<ExitCode> {
    let mut err = std::io::stderr();
    let ec = vegard_formats::read_ec_series(&args.potentiostat).map_err(bad_input)?;
    let _ = writeln!(
        err,
        "{}: {} ({} samples{})",
        args.potentiostat.display(),
        ec.format.name(),
        ec.t_s.len(),
        ec.technique
            .as_deref()
            .map_or(String::new(), |t| format!(", {t}"))
    );
    let trace = vegard_formats::read_trace(&args.deflection).map_err(bad_input)?;
    let _ = writeln!(
        err,
        "{}: {} ({} samples in {}{})",
        args.deflection.display(),
        trace.format.name(),
        trace.t_s.len(),
        if trace.unit.is_empty() {
            "?"
        } else {
            &trace.unit
        },
        if trace.sync.is_some() {
            ", with a sync channel"
        } else {
            ""
        }
    );
    let opts = ImportOptions {
        sync: match args.sync {
            SyncArg::Auto => SyncChoice::Auto,
            SyncArg::Edges => SyncChoice::Edges,
            SyncArg::Timestamps => SyncChoice::Timestamps,
            SyncArg::Xcorr => SyncChoice::Xcorr,
        },
        events: match args.sync_channel {
            SyncChannelArg::Cycles => PotentiostatEvents::CycleStarts,
            SyncChannelArg::Start => PotentiostatEvents::Start,
        },
        timestamp_uncertainty_s: args.timestamp_uncertainty_s,
        invols_nm_per_V: args.invols_nm_per_V,
        xcorr_fit_drift: args.xcorr_drift,
        name: args.name.clone(),
    };
    let input = ImportInput {
        ec: &ec,
        ec_path: &args.potentiostat,
        trace: &trace,
        trace_path: &args.deflection,
    };
    let out = match vegard_pipeline::import_run(&input, &opts, &args.out) {
        Ok(o) => o,
        Err(e) if e.is_bad_input() => return Err(bad_input(e)),
        Err(e) => return Err(anyhow::Error::new(e).context("importing")),
    };
    let a = &out.alignment;
    let dvc = out
        .cv_steps
        .first()
        .map(|c| &c.analysis.deformation_vs_charge);
    let _ = writeln!(
        err,
        "aligned by {} ({}): offset {:+.4} s ± {:.4} s, drift {:+.1} ± {:.1} ppm{}; \
         alignment error estimate {:.4} s (2σ)",
        a.method.name(),
        out.chosen_because,
        a.offset_s,
        a.offset_se_s,
        a.drift_ppm,
        a.drift_se_ppm,
        if a.drift_fitted {
            ""
        } else {
            " (not resolved)"
        },
        a.alignment_error_estimate_s
    );
    let _ = writeln!(
        err,
        "{} of {} potentiostat samples have a deflection",
        out.aligned_with_deflection, out.n_potentiostat
    );
    if args.json {
        let v = serde_json::json!({
            "run_dir": out.run_dir,
            "status": "complete",
            "alignment_method": a.method.name(),
            "alignment_error_estimate_s": a.alignment_error_estimate_s,
            "alignment": a,
            "chosen_because": out.chosen_because,
            "n_potentiostat": out.n_potentiostat,
            "n_deflection": out.n_deflection,
            "aligned_with_deflection": out.aligned_with_deflection,
            "analysis_errors": out.analysis_errors,
            "deformation_vs_charge": dvc,
        });
        println!("{v}");
    } else {
        let mut o = std::io::stdout().lock();
        writeln!(o, "  run folder: {}", out.run_dir.display())?;
        if let Some(d) = dvc {
            writeln!(
                o,
                "  kappa:     {:+.4} ± {:.4} nm/mC  (95 % interval [{:+.4}, {:+.4}]; R² = {:.4}, {} cycles, deformation vs faradaic charge)",
                d.slope_nm_per_mC,
                d.slope_se_nm_per_mC,
                d.slope_ci95_nm_per_mC[0],
                d.slope_ci95_nm_per_mC[1],
                d.r2,
                d.per_cycle.len()
            )?;
        }
        writeln!(
            o,
            "  clock alignment error estimate: {:.4} s ({})",
            a.alignment_error_estimate_s,
            a.method.name()
        )?;
        for e in &out.analysis_errors {
            writeln!(o, "  analysis:  {e}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
