//! The three output formats, all printed from the same [`Report`]:
//! one self-contained HTML file (inline CSS and SVG, no scripts, nothing
//! fetched), Markdown with the figures as SVG files beside it, and JSON
//! (the report structure itself).

use std::fmt::Write as _;

use crate::ReportError;
use crate::model::{Cell, DataTable, Report, ReportStatus};
use crate::svg::render_svg;

/// Output formats of `vegard report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Html,
    Markdown,
    Json,
}

impl Format {
    /// File extension of the format.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Html => "html",
            Format::Markdown => "md",
            Format::Json => "json",
        }
    }
}

/// A number for people (`value ± se`): [`vegard_core::format::value_se`],
/// kept under this name because the report's tests and users call it so.
pub fn format_number(value: f64, se: Option<f64>) -> String {
    vegard_core::format::value_se(value, se)
}

fn cell_text(c: &Cell) -> String {
    match c {
        Cell::Text(s) => s.clone(),
        Cell::Num { value, se } => format_number(*value, *se),
    }
}

fn head_text(name: &str, unit: &str) -> String {
    if unit.is_empty() {
        name.to_owned()
    } else {
        format!("{name} / {unit}")
    }
}

/// Escape text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = r#"
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #1a1a1a; max-width: 70rem; margin: 2rem auto; padding: 0 1.5rem; line-height: 1.45; }
h1 { font-size: 1.7rem; margin-bottom: .2rem; }
h2 { font-size: 1.3rem; border-bottom: 1px solid #ccc; padding-bottom: .2rem; margin-top: 2.2rem; }
h3 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; }
.meta { color: #555; font-size: .9rem; }
.status { display: inline-block; padding: .1rem .6rem; border-radius: .3rem; font-weight: 600; }
.status.ok { background: #dff3e4; color: #14532d; }
.status.analysis_failed { background: #fde2e1; color: #7f1d1d; }
ul.failures li { color: #7f1d1d; }
nav ol { columns: 2; font-size: .95rem; }
table { border-collapse: collapse; margin: .4rem 0 1rem; font-size: .88rem; }
th, td { border: 1px solid #d0d0d0; padding: .2rem .5rem; vertical-align: top; }
th { background: #f3f3f3; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.tablewrap { overflow-x: auto; }
.note { color: #555; font-size: .85rem; margin-top: -.6rem; }
figure { margin: 1rem 0 1.6rem; break-inside: avoid; }
figure svg { max-width: 100%; height: auto; display: block; }
figcaption { font-size: .88rem; color: #333; margin-top: .3rem; }
figcaption b { color: #000; }
@media print { body { max-width: none; margin: 0; } nav { display: none; }
  h2 { break-after: avoid; } table, figure { break-inside: avoid; } }
"#;

/// The report as one self-contained HTML5 document.
pub fn html(report: &Report) -> Result<String, ReportError> {
    let mut o = String::new();
    let e = escape_html;
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"{} {}\">\n<title>{}</title>\n<style>{CSS}</style>\n\
         </head>\n<body>\n",
        e(&report.generator.name),
        e(&report.generator.version),
        e(&report.title)
    );
    let _ = writeln!(o, "<header>\n<h1>{}</h1>", e(&report.title));
    let status = match report.status {
        ReportStatus::Ok => "ok",
        ReportStatus::AnalysisFailed => "analysis_failed",
    };
    let _ = writeln!(
        o,
        "<p class=\"meta\">Status: <span class=\"status {status}\" id=\"report-status\">{}</span> · \
         generated {} by {} {} · {} run(s){}</p>",
        status.replace('_', " "),
        e(&report.created_utc),
        e(&report.generator.name),
        e(&report.generator.version),
        report.sources.len(),
        report
            .spec_file
            .as_ref()
            .map(|f| format!(" · spec {}", e(f)))
            .unwrap_or_default()
    );
    if !report.failures.is_empty() {
        o.push_str("<ul class=\"failures\">\n");
        for f in &report.failures {
            let _ = writeln!(o, "<li>{}</li>", e(f));
        }
        o.push_str("</ul>\n");
    }
    o.push_str("</header>\n<nav><ol>\n");
    for s in &report.sections {
        let _ = writeln!(o, "<li><a href=\"#{}\">{}</a></li>", e(&s.id), e(&s.title));
    }
    o.push_str("</ol></nav>\n");
    for s in &report.sections {
        let _ = writeln!(o, "<section id=\"{}\">\n<h2>{}</h2>", e(&s.id), e(&s.title));
        for p in &s.text {
            let _ = writeln!(o, "<p>{}</p>", e(p));
        }
        for t in &s.tables {
            html_table(&mut o, t);
        }
        for f in &s.figures {
            let svg = render_svg(f)?;
            let _ = write!(
                o,
                "<figure id=\"fig-{}\">\n{svg}\n<figcaption><b>{}</b>",
                e(&f.id),
                e(&f.title)
            );
            if let Some(c) = &f.caption {
                let _ = write!(o, " {}", e(c));
            }
            o.push_str("</figcaption>\n</figure>\n");
        }
        o.push_str("</section>\n");
    }
    o.push_str("</body>\n</html>\n");
    Ok(o)
}

fn html_table(o: &mut String, t: &DataTable) {
    let e = escape_html;
    let _ = writeln!(
        o,
        "<h3>{}</h3>\n<div class=\"tablewrap\"><table id=\"tab-{}\">\n<thead><tr>",
        e(&t.title),
        e(&t.id)
    );
    for c in &t.columns {
        let _ = write!(o, "<th>{}</th>", e(&head_text(&c.name, &c.unit)));
    }
    o.push_str("</tr></thead>\n<tbody>\n");
    for row in &t.rows {
        o.push_str("<tr>");
        for c in row {
            let class = if matches!(c, Cell::Num { .. }) {
                " class=\"num\""
            } else {
                ""
            };
            let _ = write!(o, "<td{class}>{}</td>", e(&cell_text(c)));
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody></table></div>\n");
    if let Some(n) = &t.note {
        let _ = writeln!(o, "<p class=\"note\">{}</p>", e(n));
    }
}

/// Escape a Markdown table cell.
fn md_cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('\n', " ")
}

/// The report as Markdown plus its figures: `(markdown, [(file name, svg)])`.
/// Figures are linked as `{figure_dir}/{id}.svg`, relative to the Markdown
/// file.
pub fn markdown(
    report: &Report,
    figure_dir: &str,
) -> Result<(String, Vec<(String, String)>), ReportError> {
    let mut o = String::new();
    let mut files = Vec::new();
    let _ = writeln!(o, "# {}\n", report.title);
    let status = match report.status {
        ReportStatus::Ok => "ok",
        ReportStatus::AnalysisFailed => "**analysis failed**",
    };
    let _ = writeln!(
        o,
        "Status: {status} · generated {} by {} {} · {} run(s){}\n",
        report.created_utc,
        report.generator.name,
        report.generator.version,
        report.sources.len(),
        report
            .spec_file
            .as_ref()
            .map(|f| format!(" · spec `{f}`"))
            .unwrap_or_default()
    );
    for f in &report.failures {
        let _ = writeln!(o, "- **failed:** {f}");
    }
    if !report.failures.is_empty() {
        o.push('\n');
    }
    for s in &report.sections {
        let _ = writeln!(o, "## {}\n", s.title);
        for p in &s.text {
            let _ = writeln!(o, "{p}\n");
        }
        for t in &s.tables {
            let _ = writeln!(o, "### {}\n", t.title);
            let heads: Vec<String> = t
                .columns
                .iter()
                .map(|c| md_cell(&head_text(&c.name, &c.unit)))
                .collect();
            let _ = writeln!(o, "| {} |", heads.join(" | "));
            let _ = writeln!(
                o,
                "|{}|",
                t.columns
                    .iter()
                    .map(|_| "---")
                    .collect::<Vec<_>>()
                    .join("|")
            );
            for row in &t.rows {
                let cells: Vec<String> = row.iter().map(|c| md_cell(&cell_text(c))).collect();
                let _ = writeln!(o, "| {} |", cells.join(" | "));
            }
            o.push('\n');
            if let Some(n) = &t.note {
                let _ = writeln!(o, "*{n}*\n");
            }
        }
        for f in &s.figures {
            let name = format!("{}.svg", f.id);
            let svg = render_svg(f)?;
            // <...> keeps a folder name with spaces a valid link.
            let _ = writeln!(o, "![{}](<{figure_dir}/{name}>)\n", f.title);
            let mut caption = format!("**{}**", f.title);
            if let Some(c) = &f.caption {
                caption.push(' ');
                caption.push_str(c);
            }
            let _ = writeln!(o, "{caption}\n");
            files.push((name, svg));
        }
    }
    Ok((o, files))
}

/// The report as pretty JSON (the [`Report`] structure; schema in the README).
pub fn json(report: &Report) -> Result<String, ReportError> {
    serde_json::to_string_pretty(report).map_err(|e| ReportError::Input {
        path: "report".to_owned(),
        msg: format!("serialising JSON: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_two_significant_digits_of_the_error() {
        assert_eq!(
            format_number(-0.205273, Some(0.000083)),
            "-0.205273 ± 0.000083"
        );
        assert_eq!(format_number(0.4498, Some(0.0009)), "0.44980 ± 0.00090");
        assert_eq!(format_number(26.76, Some(0.35)), "26.76 ± 0.35");
        assert_eq!(format_number(150.4e-6, Some(2.1e-6)), "(1.504 ± 0.021)e-4");
        assert_eq!(format_number(12345.0, Some(120.0)), "12345 ± 120");
        assert_eq!(format_number(f64::NAN, Some(1.0)), "—");
        assert_eq!(format_number(1.5, Some(f64::NAN)), "1.500 ± —");
        assert_eq!(format_number(3.0, None), "3");
        assert_eq!(format_number(0.012346, None), "0.01235");
        assert_eq!(format_number(-2.0531e-7, None), "-2.053e-7");
        assert_eq!(format_number(298.16, None), "298.2");
    }

    #[test]
    fn html_escapes_and_markdown_escapes_pipes() {
        assert_eq!(
            escape_html("a<b & 'c' \"d\""),
            "a&lt;b &amp; &#39;c&#39; &quot;d&quot;"
        );
        assert_eq!(md_cell("a|b\nc"), "a\\|b c");
    }
}
