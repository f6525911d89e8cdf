//! vegard-report: post-run reports of one run folder or a campaign (a
//! folder of run folders), as one self-contained HTML file, Markdown with
//! SVG files beside it, or JSON with every number.
//!
//! The report is first built as data ([`model::Report`]): sections of
//! tables and figures. The renderers only format that structure, which is
//! why the three formats agree.

mod error;
pub mod model;
pub mod svg;

pub use error::ReportError;
pub use model::{
    Axis, Cell, ColumnHead, DataTable, Figure, Generator, Panel, Report, ReportKind, ReportStatus,
    Scale, Section, Series, SeriesKind,
};
