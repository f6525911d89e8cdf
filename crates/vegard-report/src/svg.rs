//! Figures to SVG with plotters' SVG backend (placeholder, being written).

use crate::{Figure, ReportError};

/// Render a figure as an SVG element (no XML prolog) for inlining in HTML
/// or writing as a file.
pub fn render_svg(fig: &Figure) -> Result<String, ReportError> {
    Err(ReportError::Plot {
        figure: fig.id.clone(),
        msg: "not yet implemented".into(),
    })
}
