//! `vegard report` and `vegard export`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::{ExportFormatArg, ReportFormatArg};
use crate::input::BadInput;

/// `vegard report`: build the report document once and print it in the
/// chosen format.
pub fn cmd_report(
    path: &Path,
    format: ReportFormatArg,
    out: Option<PathBuf>,
    spec: Option<&Path>,
) -> Result<ExitCode> {
    use vegard_report::{Format, ReportError, ReportKind, ReportSpec, ReportStatus};
    let spec = match spec {
        Some(p) => ReportSpec::load(p).map_err(|e| match e {
            ReportError::Spec(msg) => anyhow::Error::new(BadInput(msg)),
            other => anyhow::Error::new(BadInput(other.to_string())),
        })?,
        None => ReportSpec::default(),
    };
    let format = match format {
        ReportFormatArg::Html => Format::Html,
        ReportFormatArg::Md => Format::Markdown,
        ReportFormatArg::Json => Format::Json,
    };
    if !path.exists() {
        return Err(BadInput(format!("{}: no such folder", path.display())).into());
    }
    let (kind, runs) = vegard_report::build::run_folders(path)?;
    eprintln!(
        "vegard report: analysing {} run(s) in {}",
        runs.len(),
        path.display()
    );
    let now = vegard_core::UtcStamp::now().rfc3339();
    let report = vegard_report::build_report(path, &spec, &now)?;
    let out = out.unwrap_or_else(|| {
        let stem = match kind {
            ReportKind::Run => "report",
            ReportKind::Campaign => "campaign-report",
        };
        path.join(format!("{stem}.{}", format.extension()))
    });
    let files = vegard_report::write_report(&report, format, &out)
        .with_context(|| format!("writing {}", out.display()))?;
    let n_fig: usize = report.sections.iter().map(|s| s.figures.len()).sum();
    let n_tab: usize = report.sections.iter().map(|s| s.tables.len()).sum();
    println!(
        "report: {} ({} sections, {} tables, {} figures{})",
        out.display(),
        report.sections.len(),
        n_tab,
        n_fig,
        if files.len() > 1 {
            format!(", {} figure files beside it", files.len() - 1)
        } else {
            String::new()
        }
    );
    if report.status == ReportStatus::AnalysisFailed {
        for f in &report.failures {
            eprintln!("vegard report: analysis failed: {f}");
        }
        return Ok(ExitCode::from(5));
    }
    Ok(ExitCode::SUCCESS)
}

/// `vegard export`: the aligned table as CSV or Parquet.
pub fn cmd_export(
    run: &Path,
    format: ExportFormatArg,
    out: Option<PathBuf>,
    raw: Option<&str>,
) -> Result<ExitCode> {
    use vegard_report::ExportFormat;
    if let Some(stream) = raw {
        if matches!(format, ExportFormatArg::Parquet) {
            return Err(BadInput(format!(
                "--raw exports text (--format csv); a finished run already holds \
                 {}/data/{stream}.parquet",
                run.display()
            ))
            .into());
        }
        let out = out.unwrap_or_else(|| PathBuf::from(format!("{stream}.csv")));
        let rows = vegard_report::export_raw_csv(run, stream, &out)?;
        println!(
            "exported {rows} rows of raw stream {stream} of {} -> {}",
            run.display(),
            out.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let (format, ext) = match format {
        ExportFormatArg::Csv => (ExportFormat::Csv, "csv"),
        ExportFormatArg::Parquet => (ExportFormat::Parquet, "parquet"),
    };
    let out = out.unwrap_or_else(|| PathBuf::from(format!("aligned.{ext}")));
    let rows = vegard_report::export_aligned(run, format, &out)?;
    println!(
        "exported {rows} rows of {} -> {}",
        run.display(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
