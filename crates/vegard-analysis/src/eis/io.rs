//! Reading impedance spectra from plain text: one point per line,
//! frequency (Hz), Z' (ohm), Z'' (ohm), separated by commas and/or
//! whitespace (the impedance.py `exampleData.csv` layout). One header line
//! is tolerated; blank lines and lines starting with `#` are skipped.

use std::path::Path;

use crate::AnalysisError;

/// Spectrum as read: frequencies in Hz and (Z', Z'') in ohm, file order.
pub type Spectrum = (Vec<f64>, Vec<(f64, f64)>);

/// Read a three-column spectrum file. Errors name `FILE:LINE`.
pub fn read_eis_csv(path: impl AsRef<Path>) -> Result<Spectrum, AnalysisError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| AnalysisError::File {
        path: path.display().to_string(),
        line: 0,
        why: e.to_string(),
    })?;
    parse_eis_text(&text, &path.display().to_string())
}

/// [`read_eis_csv`] on text already in memory; `source` names it in errors.
pub fn parse_eis_text(text: &str, source: &str) -> Result<Spectrum, AnalysisError> {
    let mut f_Hz = Vec::new();
    let mut z = Vec::new();
    let mut seen_data = false;
    let mut header_used = false;
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let err = |why: String| AnalysisError::File {
            path: source.to_string(),
            line: line_no,
            why,
        };
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = trimmed
            .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .collect();
        let parsed: Result<Vec<f64>, _> = fields.iter().map(|s| s.parse::<f64>()).collect();
        let values = match parsed {
            Ok(v) => v,
            // A single non-numeric first line is a header (column names).
            Err(_) if !seen_data && !header_used => {
                header_used = true;
                continue;
            }
            Err(e) => return Err(err(format!("not a number ({e}) in '{trimmed}'"))),
        };
        if values.len() < 3 {
            return Err(err(format!(
                "expected 3 columns (f Hz, Z' ohm, Z'' ohm), found {}",
                values.len()
            )));
        }
        let (f, re, im) = (values[0], values[1], values[2]);
        if !(f.is_finite() && f > 0.0) {
            return Err(err(format!("frequency must be finite and > 0, got {f}")));
        }
        if !(re.is_finite() && im.is_finite()) {
            return Err(err(format!("impedance must be finite, got {re}, {im}")));
        }
        seen_data = true;
        f_Hz.push(f);
        z.push((re, im));
    }
    if f_Hz.is_empty() {
        return Err(AnalysisError::File {
            path: source.to_string(),
            line: text.lines().count(),
            why: "no data lines".to_string(),
        });
    }
    Ok((f_Hz, z))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_header_whitespace_and_commas() {
        let (f, z) = parse_eis_text("freq,re,im\n1, 2, -3\n\n10\t4  -5\n", "x").unwrap();
        assert_eq!(f, [1.0, 10.0]);
        assert_eq!(z, [(2.0, -3.0), (4.0, -5.0)]);
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = parse_eis_text("1,2,3\n2,abc,3\n", "spec.csv").unwrap_err();
        assert!(e.to_string().starts_with("spec.csv:2:"), "{e}");
        let e = parse_eis_text("h\n1,2\n", "s.csv").unwrap_err();
        assert!(
            e.to_string().starts_with("s.csv:2: expected 3 columns"),
            "{e}"
        );
        let e = read_eis_csv("/nonexistent/file.csv").unwrap_err();
        // No line to point at: no `:0`.
        assert!(e.to_string().starts_with("/nonexistent/file.csv: "), "{e}");
    }

    #[test]
    fn reads_the_fixture() {
        let (f, z) = read_eis_csv(super::super::tests::FIXTURE).unwrap();
        assert_eq!(f.len(), 66);
        assert!((f[0] - 3.1623e-3).abs() < 1e-12);
        assert!((z[0].1 + 2.043_869_854_441_892_5e-2).abs() < 1e-15);
    }
}
