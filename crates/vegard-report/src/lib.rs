//! vegard-report: post-run reports of one run folder or a campaign (a
//! folder of run folders), as one self-contained HTML file, Markdown with
//! SVG files beside it, or JSON with every number.
//!
//! The report is first built as data ([`model::Report`]): sections of
//! tables and figures. The renderers only format that structure, which is
//! why the three formats agree.

pub mod build;
pub mod decimate;
mod error;
pub mod model;
pub mod spec;
pub mod svg;

pub use error::ReportError;
pub use model::{
    Axis, Cell, ColumnHead, DataTable, Figure, Generator, Panel, Report, ReportKind, ReportStatus,
    Scale, Section, Series, SeriesKind, Tick, TopAxis,
};
pub use spec::{ReportSpec, SECTION_IDS};
pub mod export;
pub mod render;
pub mod series;

pub use build::build_report;
pub use export::{ExportFormat, export_aligned, export_raw_csv};
pub use render::Format;
pub use series::series_report;

use std::path::{Path, PathBuf};

/// Write `report` to `out` in `format`. Markdown also writes its figures to
/// `<out stem>-figures/` beside it. Returns every file written.
pub fn write_report(
    report: &Report,
    format: Format,
    out: &Path,
) -> Result<Vec<PathBuf>, ReportError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| ReportError::Io { path, source }
    };
    let mut written = Vec::new();
    // `--out reports/2026/run.html`: make the folder rather than fail
    // after the analysis has been done.
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let text = match format {
        Format::Html => render::html(report)?,
        Format::Json => render::json(report)?,
        Format::Markdown => {
            let stem = out
                .file_stem()
                .map_or_else(|| "report".to_owned(), |s| s.to_string_lossy().into_owned());
            let dir_name = format!("{stem}-figures");
            let dir = out.with_file_name(&dir_name);
            let (md, files) = render::markdown(report, &dir_name)?;
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
            for (name, svg) in files {
                let p = dir.join(name);
                std::fs::write(&p, svg).map_err(io(&p))?;
                written.push(p);
            }
            md
        }
    };
    std::fs::write(out, text).map_err(io(out))?;
    written.insert(0, out.to_path_buf());
    Ok(written)
}
