//! The report spec: a TOML file a lab keeps next to its recipes so every
//! run of a campaign gets the same report (which sections, in which order,
//! which circuit to fit). Without a spec the report has every section the
//! data allows, with the bench cell's circuit.
//!
//! ```toml
//! title = "LiMn2O4 film, in-situ ESM"
//! sections = ["metadata", "clocks", "timeseries", "cv", "deformation",
//!             "harmonics", "eis", "esm", "scan_rate", "arrhenius",
//!             "origin", "warnings"]
//! fail_on_warnings = false
//!
//! [timeseries]
//! max_points = 2000          # per trace, after min-max decimation
//!
//! [eis]
//! circuit = "R0-p(R1-Wo1,C1)"
//! weighting = "modulus"      # unit | modulus | proportional
//! tau_parameter = "Wo1_1"
//! R_s_parameter = "R0"
//! R_ct_parameter = "R1"
//! C_dl_parameter = "C1"
//! kramers_kronig = true
//! kk_max_residual = 0.01     # fraction of |Z|
//!
//! [esm]
//! background = true
//! weighting = "modulus"      # modulus | unit
//!
//! [arrhenius]
//! include_partial_sweeps = false  # keep sweeps a stopped run cut short
//! ```
//!
//! Every error names the place: `spec.toml:3:12: ...`.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;
use vegard_core::limits;
use vegard_pipeline::SpectraOptions;
use vegard_recipe::error_at;

use crate::ReportError;

/// Section ids in their default order. A spec's `sections` picks and orders
/// them.
pub const SECTION_IDS: [&str; 12] = [
    "metadata",
    "clocks",
    "timeseries",
    "cv",
    "deformation",
    "harmonics",
    "eis",
    "esm",
    "scan_rate",
    "arrhenius",
    "origin",
    "warnings",
];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    title: Option<String>,
    sections: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    fail_on_warnings: bool,
    #[serde(default)]
    timeseries: RawTimeseries,
    #[serde(default)]
    eis: RawEis,
    #[serde(default)]
    esm: RawEsm,
    #[serde(default)]
    arrhenius: RawArrhenius,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArrhenius {
    include_partial_sweeps: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeseries {
    max_points: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
struct RawEis {
    circuit: Option<Spanned<String>>,
    weighting: Option<Spanned<String>>,
    tau_parameter: Option<Spanned<String>>,
    R_s_parameter: Option<Spanned<String>>,
    R_ct_parameter: Option<Spanned<String>>,
    C_dl_parameter: Option<Spanned<String>>,
    kramers_kronig: Option<bool>,
    kk_max_residual: Option<Spanned<f64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEsm {
    background: Option<bool>,
    weighting: Option<Spanned<String>>,
}

/// A checked report spec.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSpec {
    /// Where it came from (for the report's metadata), `None` for defaults.
    pub file: Option<String>,
    pub title: Option<String>,
    /// Sections in order.
    pub sections: Vec<String>,
    /// True when the spec listed the sections: then a listed section the
    /// data cannot fill is a failure, not silently left out.
    pub sections_explicit: bool,
    /// Analysis warnings (failed KK test, nonlinearity flags, ...) make the
    /// report's status `analysis_failed`.
    pub fail_on_warnings: bool,
    /// Points per trace in the time-series figure.
    pub max_points: usize,
    pub spectra: SpectraOptions,
}

impl Default for ReportSpec {
    fn default() -> Self {
        ReportSpec {
            file: None,
            title: None,
            sections: SECTION_IDS.iter().map(|s| (*s).to_owned()).collect(),
            sections_explicit: false,
            fail_on_warnings: false,
            max_points: 2000,
            spectra: SpectraOptions::default(),
        }
    }
}

impl ReportSpec {
    /// Read and check a spec file: the same limits as recipes (size,
    /// UTF-8, line length and nesting checked before parsing, each error
    /// with the file's name and, where there is one, the position).
    pub fn load(path: &Path) -> Result<ReportSpec, ReportError> {
        let src = vegard_recipe::Source::read(path).map_err(|e| match e {
            vegard_recipe::RecipeError::Io { file, reason } => ReportError::Io {
                path: file,
                source: reason,
            },
            other => ReportError::Spec(other.to_string()),
        })?;
        ReportSpec::parse(&src.file, &src.text)
    }

    /// Parse and check spec text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<ReportSpec, ReportError> {
        let at = |span: std::ops::Range<usize>, msg: String| {
            ReportError::Spec(error_at(file, text, span, msg).to_string())
        };
        let bytes = text.as_bytes();
        limits::check_line_lengths(bytes, limits::MAX_CONFIG_LINE_BYTES)
            .and_then(|()| limits::check_toml_depth(bytes, limits::MAX_TOML_DEPTH))
            .map_err(|e| ReportError::Spec(format!("{file}:{e}")))?;
        let raw: RawSpec = toml::from_str(text).map_err(|e| {
            let msg = e.message().to_owned();
            at(e.span().unwrap_or(0..0), msg)
        })?;
        let mut spec = ReportSpec {
            file: Some(file.to_owned()),
            title: raw.title,
            fail_on_warnings: raw.fail_on_warnings,
            ..ReportSpec::default()
        };
        if let Some(list) = raw.sections {
            let mut seen: Vec<String> = Vec::new();
            for s in &list {
                let name = s.get_ref();
                if !SECTION_IDS.contains(&name.as_str()) {
                    return Err(at(
                        s.span(),
                        format!(
                            "unknown section {name:?}; sections are {}",
                            SECTION_IDS.join(", ")
                        ),
                    ));
                }
                if seen.contains(name) {
                    return Err(at(s.span(), format!("section {name:?} listed twice")));
                }
                seen.push(name.clone());
            }
            spec.sections = seen;
            spec.sections_explicit = true;
        }
        if let Some(n) = raw.timeseries.max_points {
            let v = *n.get_ref();
            if !(10..=1_000_000).contains(&v) {
                return Err(at(
                    n.span(),
                    format!("max_points = {v}: must be 10 ..= 1000000"),
                ));
            }
            spec.max_points = v as usize;
        }
        let o = &mut spec.spectra;
        let eis = raw.eis;
        if let Some(c) = &eis.circuit {
            o.circuit = c.get_ref().clone();
        }
        if let Some(w) = &eis.weighting {
            o.weighting = w.get_ref().parse().map_err(|_| {
                at(
                    w.span(),
                    format!(
                        "weighting = {:?}: use \"unit\", \"modulus\" or \"proportional\"",
                        w.get_ref()
                    ),
                )
            })?;
        }
        let spanned_roles = [
            ("tau_parameter", &eis.tau_parameter, &mut o.tau_parameter),
            ("R_s_parameter", &eis.R_s_parameter, &mut o.R_s_parameter),
            ("R_ct_parameter", &eis.R_ct_parameter, &mut o.R_ct_parameter),
            ("C_dl_parameter", &eis.C_dl_parameter, &mut o.C_dl_parameter),
        ];
        for (_, value, slot) in spanned_roles {
            if let Some(v) = value {
                *slot = v.get_ref().clone();
            }
        }
        // The engine checks circuit and roles together; the error points
        // at the role's key when the spec set it, else at the circuit.
        if let Err(e) = o.checked_circuit() {
            let circuit_span = eis.circuit.as_ref().map_or(0..0, |c| c.span());
            let role_key = [
                ("tau_parameter", &eis.tau_parameter),
                ("R_s_parameter", &eis.R_s_parameter),
                ("R_ct_parameter", &eis.R_ct_parameter),
                ("C_dl_parameter", &eis.C_dl_parameter),
            ]
            .into_iter()
            .find(|(role, _)| Some(*role) == e.role)
            .map(|(_, key)| key);
            let (span, msg) = match role_key {
                Some(Some(key)) => (key.span(), e.msg),
                Some(None) => (
                    circuit_span,
                    e.msg.replacen(" is not", " (the default) is not", 1),
                ),
                None => (circuit_span, e.msg),
            };
            return Err(at(span, msg));
        }
        if let Some(kk) = eis.kramers_kronig {
            o.kramers_kronig = kk;
        }
        if let Some(r) = eis.kk_max_residual {
            let v = *r.get_ref();
            if !(v.is_finite() && v > 0.0 && v < 1.0) {
                return Err(at(
                    r.span(),
                    format!("kk_max_residual = {v}: a fraction of |Z|, 0 < x < 1"),
                ));
            }
            o.kk_max_residual = v;
        }
        if let Some(b) = raw.arrhenius.include_partial_sweeps {
            o.include_partial_sweeps = b;
        }
        if let Some(b) = raw.esm.background {
            o.esm.background = b;
        }
        if let Some(w) = &raw.esm.weighting {
            o.esm.weighting = match w.get_ref().as_str() {
                "modulus" => vegard_analysis::EsmWeighting::Modulus,
                "unit" => vegard_analysis::EsmWeighting::Unit,
                other => {
                    return Err(at(
                        w.span(),
                        format!("weighting = {other:?}: use \"modulus\" or \"unit\""),
                    ));
                }
            };
        }
        Ok(spec)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        ReportSpec::parse("spec.toml", text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn empty_spec_is_the_default() {
        let s = ReportSpec::parse("spec.toml", "").unwrap();
        assert_eq!(s.sections, SECTION_IDS.to_vec());
        assert!(!s.sections_explicit);
        assert_eq!(s.spectra, SpectraOptions::default());
        assert_eq!(s.file.as_deref(), Some("spec.toml"));
    }

    #[test]
    fn spec_picks_sections_and_circuit() {
        let s = ReportSpec::parse(
            "spec.toml",
            "title = \"T\"\nsections = [\"eis\", \"metadata\"]\n[eis]\ncircuit = \"R0-p(R1,C1)\"\n\
             tau_parameter = \"R1\"\nweighting = \"unit\"\nkramers_kronig = false\n",
        )
        .unwrap();
        assert_eq!(s.sections, ["eis", "metadata"]);
        assert!(s.sections_explicit);
        assert_eq!(s.title.as_deref(), Some("T"));
        assert_eq!(s.spectra.circuit, "R0-p(R1,C1)");
        assert_eq!(s.spectra.weighting, vegard_analysis::EisWeighting::Unit);
        assert!(!s.spectra.kramers_kronig);
    }

    #[test]
    fn errors_name_line_and_column() {
        assert!(
            err("sections = [\"eis\", \"bode\"]")
                .starts_with("spec.toml:1:20: unknown section \"bode\""),
            "{}",
            err("sections = [\"eis\", \"bode\"]")
        );
        let e = err("\n[eis]\ncircuit = \"R0-p(R1,C1)\"\n");
        assert!(
            e.starts_with(
                "spec.toml:3:11: tau_parameter = \"Wo1_1\" (the default) is not a parameter"
            ),
            "{e}"
        );
        let e = err("[eis]\ntau_parameter = \"Wo2_1\"\n");
        assert!(
            e.starts_with("spec.toml:2:17: tau_parameter = \"Wo2_1\" is not a parameter"),
            "{e}"
        );
        let e = err("[eis]\ncircuit = \"R0-q(R1,C1)\"\n");
        assert!(e.starts_with("spec.toml:2:11: "), "{e}");
        let e = err("[timeseries]\nmax_points = 3\n");
        assert!(e.starts_with("spec.toml:2:14: max_points = 3"), "{e}");
        let e = err("colour = \"red\"\n");
        assert!(
            e.starts_with("spec.toml:1:1: ") && e.contains("colour"),
            "{e}"
        );
        let e = err("[esm]\nweighting = \"log\"\n");
        assert!(e.starts_with("spec.toml:2:13: "), "{e}");
        let e = err("sections = [\"eis\", \"eis\"]");
        assert!(e.contains("listed twice"), "{e}");
    }
}
